//! The background task: owns the socket and the sans-IO [`ClientConnection`], and reconnects.
//!
//! The task is thin: bytes from the socket go to `handle_bytes`, what `poll_transmit` gives is
//! written, the timer calls `handle_timeout`; events go through [`SyncState`] to the app, and
//! replies to the callers waiting for them. Everything the protocol needs is in
//! `magpie-session`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use magpie_session::{Body, ClientConnection, ClientEvent, Closed, Initiator, pb};
use magpie_wire::ErrorCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::error::ClientError;
use crate::event::Event;
use crate::options::{ClientOptions, Credential};
use crate::sync::SyncState;

/// A write that does not finish in this time means the transport is dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// What a caller asks of the task.
pub(crate) enum Command {
    /// Send a request and answer `reply` with the reply body.
    Request(UserRequest),
    /// Close gracefully, then answer.
    Close(oneshot::Sender<()>),
}

/// A request of the application, kept until answered (and sent again after a reconnect).
pub(crate) struct UserRequest {
    /// Boxed: a packet body is large next to the driver's other commands and states.
    pub(crate) body: Box<Body>,
    pub(crate) reply: oneshot::Sender<Result<Body, ClientError>>,
}

/// The user and session of the first WELCOME.
#[derive(Debug, Clone)]
pub(crate) struct Opened {
    pub(crate) user_id: String,
    pub(crate) session_id: String,
}

enum InFlight {
    /// An application request, with its place in the order of requests.
    User(u64, UserRequest),
    /// The SYNC of [`SyncState`].
    Sync,
    /// The WATCH that restores the watch list after a reconnect.
    Watch,
}

/// How one connection ended.
enum End {
    /// The application closed the client (or dropped every handle).
    Local,
    /// A CLOSE was sent or received.
    Closed(Closed),
    /// The transport failed or ended without a CLOSE.
    Transport(String),
}

/// Per-connection state.
#[derive(Default)]
struct Conn {
    in_flight: HashMap<u64, InFlight>,
    welcomed: bool,
    closed: Option<Closed>,
}

pub(crate) struct Driver {
    options: ClientOptions,
    credential: Credential,
    sync: SyncState,
    events: mpsc::UnboundedSender<Event>,
    commands: mpsc::UnboundedReceiver<Command>,
    /// Requests not sent yet (or to send again), in the order they were made.
    queue: BTreeMap<u64, UserRequest>,
    next_seq: u64,
    /// The watch list, restored after each reconnect (a new session starts with none).
    watched: BTreeSet<String>,
    /// Index of the server to try next.
    server: usize,
    cursor: watch::Sender<Option<pb::Cursor>>,
    ready: Option<oneshot::Sender<Result<Opened, ClientError>>>,
    close_waiters: Vec<oneshot::Sender<()>>,
    closing: bool,
    ended: Arc<OnceLock<String>>,
}

pub(crate) struct DriverParts {
    pub(crate) options: ClientOptions,
    pub(crate) events: mpsc::UnboundedSender<Event>,
    pub(crate) commands: mpsc::UnboundedReceiver<Command>,
    pub(crate) cursor: watch::Sender<Option<pb::Cursor>>,
    pub(crate) ready: oneshot::Sender<Result<Opened, ClientError>>,
    pub(crate) ended: Arc<OnceLock<String>>,
}

/// Whether a connection that ended this way is worth reconnecting.
fn retryable(closed: &Closed) -> bool {
    match closed.initiator {
        // Transient server-side ends; token errors, kicks, refusals and the rest are final.
        Initiator::Peer => matches!(
            closed.code,
            ErrorCode::IDLE_TIMEOUT | ErrorCode::GOING_AWAY | ErrorCode::INTERNAL_ERROR
        ),
        // This side found the server silent or its bytes broken; NO_ERROR is the app's close.
        Initiator::Local => closed.code != ErrorCode::NO_ERROR,
    }
}

fn request_name(body: &Body) -> &'static str {
    match body {
        Body::Send(_) => "SEND",
        Body::Sync(_) => "SYNC",
        Body::History(_) => "HISTORY",
        Body::Read(_) => "READ",
        Body::Watch(_) => "WATCH",
        Body::PresenceQuery(_) => "PRESENCE_QUERY",
        _ => "request",
    }
}

impl Driver {
    pub(crate) fn new(parts: DriverParts) -> Driver {
        let sync = SyncState::new(parts.options.cursor, parts.options.initial_sync);
        Driver {
            credential: Credential::Login(parts.options.token.clone()),
            options: parts.options,
            sync,
            events: parts.events,
            commands: parts.commands,
            queue: BTreeMap::new(),
            next_seq: 0,
            watched: BTreeSet::new(),
            server: 0,
            cursor: parts.cursor,
            ready: Some(parts.ready),
            close_waiters: Vec::new(),
            closing: false,
            ended: parts.ended,
        }
    }

    /// Connects, serves, reconnects, until the client is closed or gives up.
    pub(crate) async fn run(mut self) {
        let servers = self.options.servers.len().max(1);
        // Reconnect attempts since the last WELCOME.
        let mut attempts: u32 = 0;
        // Failed attempts before the first WELCOME (one pass over the servers).
        let mut first_failures = 0usize;
        let final_reason = loop {
            let addr = self.options.servers[self.server % servers].clone();
            let (end, welcomed) = self.attempt(&addr).await;
            self.sync.on_disconnect();
            if welcomed {
                attempts = 0;
            }
            let (code, reason, retry) = match &end {
                End::Local => {
                    self.emit(Event::Disconnected {
                        code: ErrorCode::NO_ERROR,
                        name: "NO_ERROR",
                        reason: "closed by the client".into(),
                        reconnecting: false,
                    });
                    break "closed by the client".to_owned();
                }
                End::Closed(c) => (c.code, c.reason.clone(), retryable(c)),
                End::Transport(reason) => (ErrorCode::NO_ERROR, reason.clone(), true),
            };
            let name = magpie_session::close::name(code);
            if let Some(ready) = self.ready.take() {
                // Not connected yet: connect() is waiting.
                first_failures += 1;
                let error = match &end {
                    End::Transport(reason) => ClientError::Connect {
                        addr: addr.clone(),
                        reason: reason.clone(),
                    },
                    _ => ClientError::closed(code, reason.clone()),
                };
                if retry && first_failures < servers {
                    info!(%addr, %error, "server unavailable, trying the next one");
                    self.ready = Some(ready);
                    self.server += 1;
                    continue;
                }
                let reason = error.to_string();
                let _ = ready.send(Err(error));
                break reason;
            }
            let gave_up = self
                .options
                .max_reconnects
                .is_some_and(|max| attempts >= max);
            let reconnecting = retry && !gave_up;
            if welcomed || !reconnecting {
                self.emit(Event::Disconnected {
                    code,
                    name,
                    reason: reason.clone(),
                    reconnecting,
                });
            }
            if !reconnecting {
                let why = if gave_up {
                    format!("gave up after {attempts} reconnect attempts: {name}: {reason}")
                } else {
                    format!("{name}: {reason}")
                };
                break why;
            }
            if !welcomed || code == ErrorCode::GOING_AWAY {
                // Fail over to the next server (B6).
                self.server += 1;
            }
            let delay = self.options.backoff.delay(attempts);
            attempts = attempts.saturating_add(1);
            info!(%addr, %name, %reason, ?delay, attempt = attempts, "reconnecting");
            if !self.pause(delay).await {
                self.emit(Event::Disconnected {
                    code: ErrorCode::NO_ERROR,
                    name: "NO_ERROR",
                    reason: "closed by the client".into(),
                    reconnecting: false,
                });
                break "closed by the client".to_owned();
            }
        };
        self.finish(final_reason);
    }

    /// Fails what is pending, answers the close waiters, and stops taking commands.
    fn finish(&mut self, reason: String) {
        let _ = self.ended.set(reason.clone());
        let _ = self.cursor.send(self.sync.cursor());
        for (_, req) in std::mem::take(&mut self.queue) {
            let _ = req.reply.send(Err(ClientError::Shutdown {
                reason: Some(reason.clone()),
            }));
        }
        self.commands.close();
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::Request(req) => {
                    let _ = req.reply.send(Err(ClientError::Shutdown {
                        reason: Some(reason.clone()),
                    }));
                }
                Command::Close(done) => self.close_waiters.push(done),
            }
        }
        for done in self.close_waiters.drain(..) {
            let _ = done.send(());
        }
        debug!(%reason, "client task ended");
    }

    fn emit(&self, event: Event) {
        // The app may have dropped its Events: then nobody listens, and that is fine.
        let _ = self.events.send(event);
    }

    fn publish_cursor(&self) {
        let cursor = self.sync.cursor();
        self.cursor.send_if_modified(|c| {
            if *c == cursor {
                false
            } else {
                *c = cursor;
                true
            }
        });
    }

    /// Takes a request into the queue order; keeps the watch list up to date.
    fn admit(&mut self, req: &UserRequest) -> u64 {
        if let Body::Watch(w) = req.body.as_ref() {
            for user in &w.users {
                if w.unwatch {
                    self.watched.remove(user);
                } else {
                    self.watched.insert(user.clone());
                }
            }
        }
        self.next_seq += 1;
        self.next_seq
    }

    /// A command while no session is open. Returns `false` if the client must stop.
    fn on_idle_command(&mut self, cmd: Option<Command>) -> bool {
        match cmd {
            Some(Command::Request(req)) => {
                let seq = self.admit(&req);
                self.queue.insert(seq, req);
                true
            }
            Some(Command::Close(done)) => {
                self.close_waiters.push(done);
                self.closing = true;
                false
            }
            None => {
                self.closing = true;
                false
            }
        }
    }

    /// Waits `delay` while taking commands. `false` if the client was closed meanwhile.
    async fn pause(&mut self, delay: Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return true,
                cmd = self.commands.recv() => {
                    if !self.on_idle_command(cmd) {
                        return false;
                    }
                }
            }
        }
    }

    /// One connection: connect, handshake, serve until it ends. Returns how it ended and whether
    /// it got a WELCOME. Requests in flight go back to the queue.
    async fn attempt(&mut self, addr: &str) -> (End, bool) {
        let mut conn = Conn::default();
        let end = self.connection(addr, &mut conn).await;
        for (_, f) in conn.in_flight.drain() {
            if let InFlight::User(seq, req) = f {
                self.queue.insert(seq, req);
            }
        }
        (end, conn.welcomed)
    }

    async fn connection(&mut self, addr: &str, conn: &mut Conn) -> End {
        debug!(%addr, "connecting");
        let connect = tokio::time::timeout(
            self.options.config.handshake_timeout,
            TcpStream::connect(addr.to_owned()),
        );
        tokio::pin!(connect);
        let stream = loop {
            tokio::select! {
                r = &mut connect => match r {
                    Ok(Ok(stream)) => break stream,
                    Ok(Err(e)) => return End::Transport(format!("connect to {addr}: {e}")),
                    Err(_) => return End::Transport(format!("connect to {addr}: timed out")),
                },
                cmd = self.commands.recv() => {
                    if !self.on_idle_command(cmd) {
                        return End::Local;
                    }
                }
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            debug!(%addr, "TCP_NODELAY: {e}");
        }
        let hello = self.options.hello(&self.credential, self.sync.cursor());
        let mut session = ClientConnection::new(&self.options.config, hello, Instant::now());
        let (mut rd, mut wr) = stream.into_split();
        let mut buf = BytesMut::with_capacity(64 * 1024);
        loop {
            self.drain(&mut session, conn);
            while let Some(bytes) = session.poll_transmit(Instant::now()) {
                match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(&bytes)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return self.lost(conn, format!("write to {addr}: {e}")),
                    Err(_) => return self.lost(conn, format!("write to {addr}: timed out")),
                }
            }
            if session.is_done() {
                let _ = wr.shutdown().await;
                if self.closing {
                    return End::Local;
                }
                return match conn.closed.take() {
                    Some(closed) => End::Closed(closed),
                    None => End::Transport("connection ended".into()),
                };
            }
            let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
            let timer = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = rd.read_buf(&mut buf) => match r {
                    Ok(0) => return self.lost(conn, format!("{addr} closed the connection")),
                    Ok(_) => {
                        session.handle_bytes(Instant::now(), &buf);
                        buf.clear();
                    }
                    Err(e) => return self.lost(conn, format!("read from {addr}: {e}")),
                },
                cmd = self.commands.recv(), if !self.closing => match cmd {
                    Some(Command::Request(req)) => {
                        let seq = self.admit(&req);
                        if session.is_open() {
                            self.send_user(&mut session, conn, seq, req);
                        } else {
                            self.queue.insert(seq, req);
                        }
                    }
                    Some(Command::Close(done)) => {
                        self.close_waiters.push(done);
                        self.closing = true;
                        session.close("client closing");
                    }
                    None => {
                        self.closing = true;
                        session.close("client dropped");
                    }
                },
                () = timer => session.handle_timeout(Instant::now()),
            }
        }
    }

    /// The transport is gone. A CLOSE read just before counts as the end.
    fn lost(&mut self, conn: &mut Conn, reason: String) -> End {
        if self.closing {
            return End::Local;
        }
        match conn.closed.take() {
            Some(closed) => End::Closed(closed),
            None => End::Transport(reason),
        }
    }

    fn drain(&mut self, session: &mut ClientConnection, conn: &mut Conn) {
        while let Some(event) = session.poll_event() {
            match event {
                ClientEvent::Welcome(welcome) => self.on_welcome(session, conn, welcome),
                ClientEvent::Reply { id, body } => {
                    self.on_reply(session, conn, id.into_inner(), body)
                }
                ClientEvent::Push(push) => {
                    let out = self.sync.on_push(push);
                    self.deliver(session, conn, out);
                }
                ClientEvent::Closed(closed) => {
                    debug!(code = %magpie_session::close::name(closed.code), reason = %closed.reason, initiator = ?closed.initiator, "session closed");
                    conn.closed = Some(closed);
                }
            }
        }
    }

    fn on_welcome(
        &mut self,
        session: &mut ClientConnection,
        conn: &mut Conn,
        welcome: pb::Welcome,
    ) {
        conn.welcomed = true;
        info!(user = %welcome.user_id, session = %welcome.session_id, "session open");
        if !welcome.resume_token.is_empty() {
            // [AUTH-5.2]: keep the newest resume token for the next reconnect.
            self.credential = Credential::Resume(welcome.resume_token.clone());
        }
        self.emit(Event::Connected {
            user_id: welcome.user_id.clone(),
            session_id: welcome.session_id.clone(),
        });
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Ok(Opened {
                user_id: welcome.user_id.clone(),
                session_id: welcome.session_id.clone(),
            }));
        }
        if !self.watched.is_empty() {
            let watch = pb::Watch {
                users: self.watched.iter().cloned().collect(),
                unwatch: false,
            };
            match session.request(Body::Watch(watch)) {
                Ok(id) => {
                    conn.in_flight.insert(id.into_inner(), InFlight::Watch);
                }
                Err(e) => warn!("cannot restore the watch list: {e}"),
            }
        }
        for (seq, req) in std::mem::take(&mut self.queue) {
            self.send_user(session, conn, seq, req);
        }
        if let Some(sync) = self.sync.on_welcome(welcome.head.as_ref()) {
            self.send_sync(session, conn, sync);
        }
        self.publish_cursor();
    }

    fn send_user(
        &mut self,
        session: &mut ClientConnection,
        conn: &mut Conn,
        seq: u64,
        req: UserRequest,
    ) {
        if req.reply.is_closed() {
            return; // The caller gave up waiting.
        }
        match session.request((*req.body).clone()) {
            Ok(id) => {
                conn.in_flight
                    .insert(id.into_inner(), InFlight::User(seq, req));
            }
            Err(source) if session.is_open() => {
                let what = request_name(&req.body);
                let _ = req.reply.send(Err(ClientError::Wire { what, source }));
            }
            Err(_) => {
                self.queue.insert(seq, req);
            }
        }
    }

    fn send_sync(&mut self, session: &mut ClientConnection, conn: &mut Conn, sync: pb::Sync) {
        debug!(after = ?sync.after, "SYNC");
        match session.request(Body::Sync(sync)) {
            Ok(id) => {
                conn.in_flight.insert(id.into_inner(), InFlight::Sync);
            }
            Err(e) => {
                warn!("cannot send SYNC: {e}");
                self.sync.on_sync_failed();
            }
        }
    }

    fn on_reply(&mut self, session: &mut ClientConnection, conn: &mut Conn, id: u64, body: Body) {
        match conn.in_flight.remove(&id) {
            Some(InFlight::User(_, req)) => {
                let _ = req.reply.send(Ok(body));
            }
            Some(InFlight::Sync) => match body {
                Body::SyncReply(reply) => {
                    debug!(
                        epoch = reply.epoch,
                        head = reply.head,
                        reset = reply.reset,
                        events = reply.events.len(),
                        "SYNC_REPLY"
                    );
                    let out = self.sync.on_sync_reply(reply);
                    self.deliver(session, conn, out);
                }
                Body::RequestError(e) => {
                    warn!("SYNC failed: {}", ClientError::request(&e));
                    self.sync.on_sync_failed();
                }
                other => {
                    warn!("unexpected reply to SYNC: {}", other.frame_type());
                    self.sync.on_sync_failed();
                }
            },
            Some(InFlight::Watch) => {
                if let Body::RequestError(e) = body {
                    warn!(
                        "restoring the watch list failed: {}",
                        ClientError::request(&e)
                    );
                }
            }
            None => debug!(id, "reply to an unknown request"),
        }
    }

    fn deliver(
        &mut self,
        session: &mut ClientConnection,
        conn: &mut Conn,
        out: crate::sync::SyncOutput,
    ) {
        for event in out.events {
            self.emit(event);
        }
        if let Some(sync) = out.sync {
            self.send_sync(session, conn, sync);
        }
        self.publish_cursor();
    }
}
