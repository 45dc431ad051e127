//! `magpie-bench`, the load tool: the same scenarios against magpied (through `magpie-client`),
//! mosquitto (MQTT QoS 1 through rumqttc) and nats-server (core NATS through async-nats), on
//! loopback, each bounded in count and time.
//!
//! | scenario | what it measures |
//! |---|---|
//! | `pairs` | P sender/receiver pairs, M messages each, windowed: delivered msg/s; every message checked to arrive once and in order |
//! | `latency` | the pairs at a fixed offered rate, open loop: end-to-end p50/p99/p999/max |
//! | `fanout` | one sender to N online receivers, one send per message to a group (Magpie: a group of them and the sender; MQTT, NATS: a topic): deliveries/s |
//! | `idle` | C idle authenticated connections: server RSS per connection |
//! | `sync` | (Magpie) a device offline while K messages arrive, then reconnecting: time and wire bytes |
//! | `disk` | (no server) fsync latency of the disk under a durable store, and how much of it goes past 2 ms |
//!
//! Each prints a table on stdout, progress on stderr, and with `--json FILE` writes a [`Record`];
//! `report` turns a directory of records into the markdown table of `benches/RESULTS.md`
//! (`benches/compare.sh` runs it all). With `--server-pid` the server's CPU seconds and RSS are
//! read from `/proc`; the generator's own CPU is always reported, so a figure limited by the
//! load generator shows it.

mod disk;
mod idle;
mod latency;
mod magpie;
mod mqtt;
mod nats;
mod proc;
mod report;
mod scenarios;
mod stats;
mod sync;
mod transport;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

pub use stats::{Check, Record};

use scenarios::Ctx;
use transport::Transport;

/// The secret of the app an `--embedded` server serves, when `--secret` is not given.
const EMBEDDED_SECRET: &str = "magpie-bench-secret-0123456789";

/// Command line of `magpie-bench`.
#[derive(Debug, Parser)]
#[command(
    name = "magpie-bench",
    version,
    about = "Load tool: Magpie, MQTT (QoS 1) and NATS under the same scenarios"
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// A scenario, or a helper.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// P sender/receiver pairs exchange M messages each; delivered msg/s, exactly-once-in-order
    /// check.
    Pairs {
        /// Target and output options.
        #[command(flatten)]
        common: Common,
        /// Sender/receiver pairs.
        #[arg(long, default_value_t = 100)]
        pairs: u32,
        /// Messages per pair.
        #[arg(long, default_value_t = 1000)]
        messages: u64,
        /// Unacknowledged sends per sender at most.
        #[arg(long, default_value_t = 16)]
        window: usize,
    },
    /// The pairs at a fixed offered rate (open loop); end-to-end latency percentiles.
    Latency {
        /// Target and output options.
        #[command(flatten)]
        common: Common,
        /// Sender/receiver pairs.
        #[arg(long, default_value_t = 100)]
        pairs: u32,
        /// Offered messages per second, over all pairs.
        #[arg(long, default_value_t = 10_000.0)]
        rate: f64,
        /// Seconds of sending.
        #[arg(long, default_value_t = 5.0)]
        duration_secs: f64,
        /// Leading seconds left out of the percentiles.
        #[arg(long, default_value_t = 1.0)]
        warmup_secs: f64,
    },
    /// One sender to N online receivers through a group (Magpie: a group the sender creates
    /// with them as members; MQTT, NATS: a topic they subscribe to); deliveries/s.
    Fanout {
        /// Target and output options.
        #[command(flatten)]
        common: Common,
        /// Online receivers.
        #[arg(long, default_value_t = 500)]
        receivers: u32,
        /// Messages, each delivered to every receiver.
        #[arg(long, default_value_t = 100)]
        messages: u64,
        /// Unacknowledged sends at most.
        #[arg(long, default_value_t = 64)]
        window: usize,
    },
    /// C idle authenticated connections; server RSS per connection (needs --server-pid).
    Idle {
        /// Target and output options.
        #[command(flatten)]
        common: Common,
        /// Connections.
        #[arg(long, default_value_t = 10_000)]
        connections: u32,
        /// Seconds to hold them open before reading the server's RSS.
        #[arg(long, default_value_t = 3.0)]
        hold_secs: f64,
    },
    /// (Magpie) a device offline while K messages arrive, then reconnecting: time until synced
    /// and wire bytes.
    Sync {
        /// Target and output options.
        #[command(flatten)]
        common: Common,
        /// Messages missed while offline.
        #[arg(long, default_value_t = 10_000)]
        messages: u64,
        /// Unacknowledged sends at most while filling the mailbox.
        #[arg(long, default_value_t = 64)]
        window: usize,
    },
    /// (No server) appends to a file in DIR and fsyncs after each append (back to back, or
    /// paced with --rate): fsync latency, and how much of it went past 2 ms.
    Disk {
        /// Directory to probe: a folder on the data directory's filesystem (the probe's file is
        /// removed at the end, but stays behind if the probe is killed).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Seconds to probe for (slow fsyncs come in bursts seconds apart).
        #[arg(long, default_value_t = 5.0)]
        duration_secs: f64,
        /// fsync calls at most.
        #[arg(long, default_value_t = 200_000)]
        syncs: u64,
        /// Bytes appended before each fsync (about a small group commit's journal entry).
        #[arg(long, default_value_t = 2048)]
        bytes: usize,
        /// fsyncs a second, paced (to load the disk beside another program); 0: back to back.
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
        /// Write the record as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Aggregates the JSON records of a directory (median per configuration and scenario) into a
    /// markdown report.
    Report {
        /// Directory of `*.json` records (and optional `meta.txt`, `commands.txt`).
        #[arg(long = "in")]
        input: PathBuf,
        /// Markdown file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Prints a TCP port on 127.0.0.1 that is free now (for scripts starting servers).
    FreePort,
}

/// Which server protocol to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// magpied, through magpie-client.
    Magpie,
    /// An MQTT 3.1.1 broker (mosquitto), QoS 1, through rumqttc.
    Mqtt,
    /// nats-server, core NATS, through async-nats.
    Nats,
}

/// Store durability of an `--embedded` magpied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Durability {
    /// fsync before every ack (the default).
    Immediate,
    /// Ack after the write, fsync in the background.
    Relaxed,
}

/// Options every scenario takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Server protocol.
    #[arg(long, value_enum, default_value_t = Target::Magpie)]
    pub target: Target,
    /// Server address, HOST:PORT (not with --embedded).
    #[arg(long)]
    pub addr: Option<String>,
    /// Magpie app id.
    #[arg(long, default_value = "bench")]
    pub app: String,
    /// Magpie app secret (tokens are minted with it).
    #[arg(long)]
    pub secret: Option<String>,
    /// Start a magpied inside this process on 127.0.0.1:0 with a temporary data directory.
    #[arg(long)]
    pub embedded: bool,
    /// Durability of the --embedded magpied.
    #[arg(long, value_enum, default_value_t = Durability::Immediate)]
    pub durability: Durability,
    /// The server's pid: report its CPU seconds and RSS from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Write the record as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The configuration's name in reports [default: the target].
    #[arg(long)]
    pub label: Option<String>,
    /// Mark the record as a control run: `report` shows it but takes no ratios against it.
    #[arg(long)]
    pub control: bool,
    /// Seconds any phase may take before the run gives up (and fails).
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
    /// Message body bytes (at least 41: a 40-byte stamp and a space).
    #[arg(long, default_value_t = 100)]
    pub body_bytes: usize,
    /// Connections opened at once while setting up.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
}

impl Command {
    fn common(&self) -> Option<&Common> {
        match self {
            Command::Pairs { common, .. }
            | Command::Latency { common, .. }
            | Command::Fanout { common, .. }
            | Command::Idle { common, .. }
            | Command::Sync { common, .. } => Some(common),
            Command::Disk { .. } | Command::Report { .. } | Command::FreePort => None,
        }
    }

    /// Publishes in flight per MQTT connection: enough for the scenario's window.
    fn mqtt_inflight(&self) -> u16 {
        let want = match self {
            Command::Pairs { window, .. } | Command::Fanout { window, .. } => *window,
            Command::Latency { .. } => 1000,
            _ => 100,
        };
        u16::try_from(want.max(100)).unwrap_or(u16::MAX)
    }
}

/// Runs the command line; the exit status is non-zero when a run failed its check or could not
/// run.
pub fn main(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("magpie-bench: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("magpie-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let command = cli.command;
    let Some(common) = command.common().cloned() else {
        return match command {
            Command::Report { input, out } => report::write(&input, &out),
            Command::FreePort => {
                let l = std::net::TcpListener::bind("127.0.0.1:0").context("binding a port")?;
                println!("{}", l.local_addr()?.port());
                Ok(())
            }
            Command::Disk {
                dir,
                duration_secs,
                syncs,
                bytes,
                rate,
                json,
            } => {
                let params = disk::Params {
                    dir,
                    syncs,
                    bytes,
                    duration: secs(duration_secs)?,
                    rate,
                };
                // Blocking file I/O: off the runtime's threads.
                let record = tokio::task::spawn_blocking(move || disk::disk(&params))
                    .await
                    .context("the disk probe panicked")??;
                emit(&record, json.as_deref())
            }
            _ => Ok(()),
        };
    };
    let mut record = scenario(&command, &common).await?;
    if let Some(label) = &common.label {
        record.label.clone_from(label);
    }
    record.control = common.control;
    emit(&record, common.json.as_deref())
}

/// Prints `record`'s table, writes it as JSON to `json` if given, and fails if its check did.
fn emit(record: &Record, json: Option<&std::path::Path>) -> Result<()> {
    print!("{}", record.table());
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(record).context("encoding the record")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    scenarios::require_ok(record)
}

/// A name prefix no other run shares: runs against one server never see each other's messages.
fn run_id() -> String {
    // Milliseconds (mod 2^32, about 49 days) and the pid: unique per process on one machine.
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() % (1 << 32));
    format!("b{millis:08x}{:x}", std::process::id())
}

async fn scenario(command: &Command, common: &Common) -> Result<Record> {
    if common.embedded && common.target != Target::Magpie {
        bail!("--embedded starts a magpied: it needs --target magpie");
    }
    if common.embedded && (common.addr.is_some() || common.server_pid.is_some()) {
        bail!("--embedded runs the server in this process: drop --addr and --server-pid");
    }
    if let Some(pid) = common.server_pid {
        proc::check_pid(pid)?;
    }
    let ctx = Ctx {
        run: run_id(),
        server_pid: common.server_pid,
        timeout: Duration::from_secs(common.timeout_secs.max(1)),
        body_len: common.body_bytes.max(transport::MIN_BODY),
        connect_concurrency: common.connect_concurrency.max(1),
    };
    let embedded = if common.embedded {
        let durability = match common.durability {
            Durability::Immediate => magpied::DurabilityMode::Immediate,
            Durability::Relaxed => magpied::DurabilityMode::Relaxed,
        };
        let secret = common.secret.as_deref().unwrap_or(EMBEDDED_SECRET);
        Some(magpie::Embedded::start(&common.app, secret, durability).await?)
    } else {
        None
    };
    let addr = match (&embedded, &common.addr) {
        (Some(e), _) => e.addr(),
        (None, Some(a)) => a.clone(),
        (None, None) => bail!("--addr HOST:PORT is required (or --embedded for magpie)"),
    };
    let result = match common.target {
        Target::Magpie => {
            let secret = match (&common.secret, &embedded) {
                (Some(s), _) => s.clone(),
                (None, Some(_)) => EMBEDDED_SECRET.to_owned(),
                (None, None) => bail!("--target magpie needs --secret (the app's secret)"),
            };
            let t = magpie::Magpie::new(addr.clone(), common.app.clone(), &secret)?;
            match command {
                Command::Sync {
                    messages, window, ..
                } => sync::sync(&t, &ctx, *messages, *window).await,
                _ => run_on(&t, &ctx, &addr, command).await,
            }
        }
        Target::Mqtt => {
            let t = mqtt::Mqtt::new(&addr, command.mqtt_inflight())?;
            run_on(&t, &ctx, &addr, command).await
        }
        Target::Nats => run_on(&nats::Nats::new(addr.clone()), &ctx, &addr, command).await,
    };
    if let Some(e) = embedded {
        e.shutdown().await;
    }
    result
}

async fn run_on<T: Transport>(t: &T, ctx: &Ctx, addr: &str, command: &Command) -> Result<Record> {
    match command {
        Command::Pairs {
            pairs,
            messages,
            window,
            ..
        } => scenarios::pairs(t, ctx, addr, *pairs, *messages, *window).await,
        Command::Latency {
            pairs,
            rate,
            duration_secs,
            warmup_secs,
            ..
        } => {
            let params = latency::Params {
                pairs: *pairs,
                rate: *rate,
                duration: secs(*duration_secs)?,
                warmup: secs(*warmup_secs)?,
            };
            latency::latency(t, ctx, addr, params).await
        }
        Command::Fanout {
            receivers,
            messages,
            window,
            ..
        } => scenarios::fanout(t, ctx, addr, *receivers, *messages, *window).await,
        Command::Idle {
            connections,
            hold_secs,
            ..
        } => idle::idle(t, ctx, addr, *connections, secs(*hold_secs)?).await,
        Command::Sync { .. } => bail!("sync is a Magpie scenario (MQTT and NATS have no sync)"),
        Command::Disk { .. } | Command::Report { .. } | Command::FreePort => {
            bail!("not a scenario against a server")
        }
    }
}

fn secs(s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s).with_context(|| format!("{s} is not a number of seconds"))
}
