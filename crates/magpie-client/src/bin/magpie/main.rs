//! `magpie`: the Magpie command-line client.
//!
//! - `magpie token`: mint a login token (what an app's server does, `spec/auth.md` §2);
//! - `magpie send`: send one message (to a user, or to a group as `g:<group>`) and print the
//!   SEND_ACK as a JSON line;
//! - `magpie group`: one operation on a group (create, join, invite, ..., info) and print the
//!   GROUP_REPLY as a JSON line;
//! - `magpie listen`: sync what was missed, then print each event as a JSON line;
//! - `magpie chat`: an interactive 1:1 chat on stdin/stdout.
//!
//! Results go to stdout; logs (tracing, filtered by `RUST_LOG`) and errors go to stderr.

mod group;
mod view;

use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand, ValueEnum};
use magpie_auth::{AppSecret, Device, TokenClaims};
use magpie_client::{
    Client, ClientError, ClientOptions, Event, Events, InitialSync, Platform, conversation_id, pb,
};
use tokio::io::AsyncBufReadExt;
use tracing::{info, warn};

#[derive(Debug, Parser)]
#[command(name = "magpie", version, about = "The Magpie command-line client")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Mint a login token with the app secret; prints it as the last line.
    Token(TokenArgs),
    /// Send one message to a user or a group (`g:<group>`); prints the SEND_ACK as a JSON line
    /// once the server stored it.
    Send(SendArgs),
    /// One operation on a group; prints the GROUP_REPLY (the group, the seq of the notice
    /// written, whether a join waits for approval) as a JSON line.
    Group(group::GroupArgs),
    /// Sync what was missed, then print each event as a JSON line.
    Listen(ListenArgs),
    /// Chat with one user: stdin lines are sent, received messages printed.
    Chat(ChatArgs),
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// App id.
    #[arg(long)]
    app: String,
    /// App secret (at least 16 bytes).
    #[arg(long)]
    secret: String,
    /// User id.
    #[arg(long)]
    user: String,
    /// Device id, or `*` for any device of the user.
    #[arg(long, default_value = "*")]
    device: String,
    /// Platform: ios, android, web, desktop, server or other.
    #[arg(long, default_value = "other")]
    platform: Platform,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 86_400)]
    ttl: u64,
}

#[derive(Debug, Args)]
struct ConnectArgs {
    /// Server address (host:port); repeat for failover, tried in order.
    #[arg(long = "server", required = true)]
    servers: Vec<String>,
    /// App id.
    #[arg(long)]
    app: String,
    /// Login token.
    #[arg(long)]
    token: String,
    /// Device id (default: "cli-" and 12 random characters); must match the token's unless it was minted for `*`.
    #[arg(long)]
    device: Option<String>,
    /// Platform; must match the token's.
    #[arg(long, default_value = "other")]
    platform: Platform,
    /// Reconnect attempts in a row before giving up (default: unlimited for listen and chat,
    /// 5 for send and group).
    #[arg(long)]
    max_reconnects: Option<u32>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Class {
    Content,
    Transient,
    Status,
    Notification,
    Command,
}

impl From<Class> for pb::MessageClass {
    fn from(c: Class) -> pb::MessageClass {
        match c {
            Class::Content => pb::MessageClass::Content,
            Class::Transient => pb::MessageClass::Transient,
            Class::Status => pb::MessageClass::Status,
            Class::Notification => pb::MessageClass::Notification,
            Class::Command => pb::MessageClass::Command,
        }
    }
}

#[derive(Debug, Args)]
struct SendArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Recipient: a user id, or `g:<group>` for a group you are a member of.
    #[arg(long)]
    to: String,
    /// Message class.
    #[arg(long, value_enum, default_value = "content")]
    class: Class,
    /// Client message id (default: random); a retry with the same id is stored once.
    #[arg(long)]
    client_msg_id: Option<String>,
    /// To a group: only this member receives it, with you (repeatable; the other members see a
    /// tombstone in its place).
    #[arg(long = "only", value_name = "USER")]
    only: Vec<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// The text to send (several words are joined with spaces).
    #[arg(required = true, num_args = 1..)]
    text: Vec<String>,
}

#[derive(Debug, Args)]
struct ListenArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Stop after this many events (resets are printed but not counted).
    #[arg(long)]
    count: Option<u64>,
    /// Stop after this many seconds (an error if --count events did not come by then).
    #[arg(long)]
    timeout: Option<u64>,
    /// Only what happens from now on: skip the stream's past (default: sync all retained).
    #[arg(long)]
    new_only: bool,
    /// Watch these users' presence (repeatable).
    #[arg(long)]
    watch: Vec<String>,
}

#[derive(Debug, Args)]
struct ChatArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The other user.
    #[arg(long)]
    to: String,
    /// How many earlier messages to show first.
    #[arg(long, default_value_t = 20)]
    history: u32,
}

/// A failure the CLI reports on stderr with exit status 1.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("{0}")]
    Auth(#[from] magpie_auth::AuthError),
    #[error("{0}")]
    Other(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let result = match cli.command {
        Command::Token(args) => token(&args),
        command => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(async {
                match command {
                    Command::Send(args) => send(args).await,
                    Command::Group(args) => group::group(args).await,
                    Command::Listen(args) => listen(args).await,
                    Command::Chat(args) => chat(args).await,
                    Command::Token(args) => token(&args),
                }
            }),
            Err(e) => Err(CliError::Other(format!("cannot start the runtime: {e}"))),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("magpie: {e}");
            ExitCode::FAILURE
        }
    }
}

fn unix_now() -> Result<u64, CliError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|e| CliError::Other(format!("system clock before 1970: {e}")))
}

fn token(args: &TokenArgs) -> Result<(), CliError> {
    let secret = AppSecret::new(args.secret.clone())?;
    let now = unix_now()?;
    let claims = TokenClaims {
        app_id: args.app.clone(),
        user_id: args.user.clone(),
        device: if args.device == "*" {
            Device::Any
        } else {
            Device::Id(args.device.clone())
        },
        platform: args.platform,
        not_before: now,
        expires: now.saturating_add(args.ttl),
        nonce: magpie_auth::random_nonce()?,
    };
    let token = magpie_auth::mint(&claims, &secret)?;
    println!("{token}");
    Ok(())
}

fn options(args: ConnectArgs, initial_sync: InitialSync) -> Result<ClientOptions, CliError> {
    let device = match args.device {
        Some(d) => d,
        None => {
            let mut random = magpie_client::new_client_msg_id()?;
            random.truncate(12);
            format!("cli-{random}")
        }
    };
    let mut options = ClientOptions::new(args.servers, args.app, args.token, device, args.platform);
    options.max_reconnects = args.max_reconnects;
    options.initial_sync = initial_sync;
    Ok(options)
}

async fn within<T>(
    deadline: tokio::time::Instant,
    what: &str,
    seconds: u64,
    f: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, CliError> {
    match tokio::time::timeout_at(deadline, f).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(CliError::Other(format!(
            "{what}: timed out after {seconds} s"
        ))),
    }
}

async fn send(args: SendArgs) -> Result<(), CliError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    let mut connect = args.connect;
    connect.max_reconnects = connect.max_reconnects.or(Some(5));
    let options = options(connect, InitialSync::FromHead)?;
    let (client, _events) =
        within(deadline, "connect", args.timeout, Client::connect(options)).await?;
    let client_msg_id = match args.client_msg_id {
        Some(id) => id,
        None => magpie_client::new_client_msg_id()?,
    };
    let content = magpie_client::text(args.text.join(" "));
    let only: Vec<&str> = args.only.iter().map(String::as_str).collect();
    let send = async {
        if only.is_empty() {
            client
                .send_with_id(&args.to, &client_msg_id, content, args.class.into())
                .await
        } else {
            client
                .send_to_members(&args.to, &only, &client_msg_id, content, args.class.into())
                .await
        }
    };
    let ack = within(deadline, "send", args.timeout, send).await;
    client.close().await;
    let ack = ack?;
    let line = serde_json::to_string(&view::AckView {
        conversation_id: &ack.conversation_id,
        seq: ack.seq,
        message_id: &ack.message_id,
        duplicate: ack.duplicate,
        server_time_ms: ack.server_time_ms,
        client_msg_id: &client_msg_id,
    })
    .map_err(|e| CliError::Other(e.to_string()))?;
    print_line(&line)
}

/// Prints a line on stdout and flushes it (scripts read line by line).
fn print_line(line: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| CliError::Other(format!("stdout: {e}")))
}

/// What happened to the session, for events the CLI does not print.
fn connection_event(event: &Event) -> Result<(), CliError> {
    match event {
        Event::Connected {
            user_id,
            session_id,
        } => {
            info!(%user_id, %session_id, "connected");
            Ok(())
        }
        Event::Disconnected {
            name,
            reason,
            reconnecting: true,
            ..
        } => {
            warn!(%name, %reason, "disconnected, reconnecting");
            Ok(())
        }
        Event::Disconnected { name, reason, .. } => {
            Err(CliError::Other(format!("disconnected: {name}: {reason}")))
        }
        _ => Ok(()),
    }
}

async fn next_event(events: &mut Events) -> Result<Event, CliError> {
    events
        .recv()
        .await
        .ok_or_else(|| CliError::Other("the client stopped".into()))
}

async fn listen(args: ListenArgs) -> Result<(), CliError> {
    let start = tokio::time::Instant::now();
    let deadline = args.timeout.map(|s| start + Duration::from_secs(s));
    let initial = if args.new_only {
        InitialSync::FromHead
    } else {
        InitialSync::FromStart
    };
    let options = options(args.connect, initial)?;
    let connecting = Client::connect(options);
    let (client, mut events) = match deadline {
        Some(at) => within(at, "connect", args.timeout.unwrap_or(0), connecting).await?,
        None => connecting.await?,
    };
    if !args.watch.is_empty() {
        client.watch(args.watch.clone()).await?;
    }
    let result = listen_loop(&mut events, args.count, deadline, args.timeout).await;
    client.close().await;
    result
}

async fn listen_loop(
    events: &mut Events,
    count: Option<u64>,
    deadline: Option<tokio::time::Instant>,
    timeout: Option<u64>,
) -> Result<(), CliError> {
    let mut seen = 0u64;
    if count == Some(0) {
        return Ok(());
    }
    let timer = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(timer);
    loop {
        tokio::select! {
            event = next_event(events) => {
                let event = event?;
                connection_event(&event)?;
                let Some(view) = view::event_view(&event) else { continue };
                let line = serde_json::to_string(&view).map_err(|e| CliError::Other(e.to_string()))?;
                print_line(&line)?;
                if !matches!(event, Event::Reset) {
                    seen += 1;
                    if count.is_some_and(|n| seen >= n) {
                        return Ok(());
                    }
                }
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
            () = &mut timer => {
                return match count {
                    Some(n) => Err(CliError::Other(format!(
                        "timed out after {} s with {seen} of {n} events",
                        timeout.unwrap_or(0)
                    ))),
                    None => Ok(()),
                };
            }
        }
    }
}

fn chat_line(me: &str, m: &pb::Message) -> String {
    let (text, content) = view::content_summary(m.content.as_ref());
    let body = text.or(content).unwrap_or_else(|| {
        if m.tombstone {
            "(removed)".into()
        } else {
            "(empty)".into()
        }
    });
    let who = if m.sender == me { "me" } else { &m.sender };
    format!("[{}] {who}: {body}", view::clock(m.server_time_ms))
}

async fn chat(args: ChatArgs) -> Result<(), CliError> {
    let options = options(args.connect, InitialSync::FromHead)?;
    let device = options.device_id.clone();
    let (client, mut events) = Client::connect(options).await?;
    let me = client.user_id().to_owned();
    let conversation = conversation_id(&me, &args.to);
    eprintln!(
        "chatting with {} as {me} ({conversation}); Ctrl-D or Ctrl-C to leave",
        args.to
    );
    let mut last_seq = 0u64;
    if args.history > 0 {
        let page = client.history(&conversation, 0, true, args.history).await?;
        let mut messages = page.messages;
        messages.sort_by_key(|m| m.seq);
        for m in &messages {
            print_line(&chat_line(&me, m))?;
            last_seq = last_seq.max(m.seq);
        }
    }
    // Lines are sent one after the other, in order, by their own task.
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let sender = {
        let client = client.clone();
        let to = args.to.clone();
        tokio::spawn(async move {
            while let Some(line) = lines_rx.recv().await {
                if let Err(e) = client.send_text(&to, &line).await {
                    eprintln!("magpie: not sent: {e}");
                }
            }
        })
    };
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let result = loop {
        tokio::select! {
            line = stdin.next_line() => match line {
                Ok(Some(line)) => {
                    let line = line.trim();
                    if !line.is_empty() {
                        let _ = lines_tx.send(line.to_owned());
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(CliError::Other(format!("stdin: {e}"))),
            },
            event = next_event(&mut events) => {
                let event = match event {
                    Ok(e) => e,
                    Err(e) => break Err(e),
                };
                if let Err(e) = connection_event(&event) {
                    break Err(e);
                }
                match &event {
                    Event::Message(m) if m.conversation_id == conversation && m.seq > last_seq => {
                        last_seq = m.seq;
                        // What this device typed is on screen already.
                        if !(m.sender == me && m.sender_device == device) {
                            print_line(&chat_line(&me, m))?;
                        }
                    }
                    Event::Live(m) if m.sender == args.to => {
                        if m.class == pb::MessageClass::Status as i32 {
                            eprintln!("({} {})", m.sender, view::content_summary(m.content.as_ref()).0.unwrap_or_else(|| "…".into()));
                        } else {
                            print_line(&chat_line(&me, m))?;
                        }
                    }
                    Event::Reset => eprintln!("(the server reset the message stream)"),
                    _ => {}
                }
            }
            _ = tokio::signal::ctrl_c() => break Ok(()),
        }
    };
    // Let what was typed go out before leaving.
    drop(lines_tx);
    let _ = tokio::time::timeout(Duration::from_secs(10), sender).await;
    client.close().await;
    result
}
