//! The Magpie conformance suite: judges an implementation against `spec/`.
//!
//! Two suites: the codec suite feeds every wire vector to a codec through a shim process
//! (`SHIM.md`); the server suite talks to a server over TCP with its own raw frame builder, so it
//! can send invalid, oversize and truncated frames on purpose. Every case has a stable id carrying
//! the spec version (`v1/wire/4.5/1`), the clause ids it proves, its level, the requirement text
//! and a verdict with expected and observed evidence.

mod case;
mod codec_suite;
mod conn;
mod coverage;
mod raw;
mod report;
mod runner;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use case::{Level, Outcome, SPEC_VERSION};
pub use coverage::{ClauseCoverage, coverage};
pub use report::{CaseResult, Report};
pub use runner::run;

/// What the suite runs against.
#[derive(Clone, Debug)]
pub enum Target {
    /// A server speaking Magpie over TCP.
    Server(ServerTarget),
    /// A codec behind a shim command (`SHIM.md`).
    Codec {
        /// The shim command line, run through `sh -c`.
        shim: String,
    },
}

/// A server under test and the app the suite logs in to.
#[derive(Clone, Debug)]
pub struct ServerTarget {
    /// The TCP address.
    pub addr: SocketAddr,
    /// An app id the server serves.
    pub app: String,
    /// That app's secret (the suite mints its own tokens, `spec/auth.md`).
    pub secret: String,
    /// The WebSocket URL (`ws://host:port/`), if the suite may test that transport.
    pub ws: Option<String>,
    /// The admin API address (`spec/auth.md` §6), if the suite may test it.
    pub admin: Option<SocketAddr>,
    /// The server's per-conversation message limit, if it has one, for the retention case.
    pub retention: Option<Retention>,
    /// The server's declared rate limits, for the rate cases ([SESSION-6.4], [SESSION-6.6]).
    pub rates: Rates,
}

/// A server's declared rate limits (`spec/session.md` §6): by default the reference server's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rates {
    /// SENDs a user may make a second ([SESSION-6.4]).
    pub send_rate: u32,
    /// SENDs a user may make at once.
    pub send_burst: u32,
    /// Packets a connection may send a second ([SESSION-6.6]).
    pub packet_rate: u32,
    /// Packets a connection may send at once.
    pub packet_burst: u32,
}

impl Default for Rates {
    /// The reference server's defaults (`spec/session.md` [SESSION-6.4], [SESSION-6.6]).
    fn default() -> Self {
        Rates {
            send_rate: 20,
            send_burst: 100,
            packet_rate: 1000,
            packet_burst: 2000,
        }
    }
}

/// A server's declared per-conversation message limit ([SYNC-8.1]).
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// The server's `max_messages_per_conversation`.
    pub max_messages_per_conversation: u64,
    /// How long the server may take to apply it (the reference server's pass interval is a
    /// setting, 60 s by default).
    pub within: Duration,
}

impl Retention {
    /// The default bound on applying the limit: past the reference server's default interval.
    pub const DEFAULT_WITHIN: Duration = Duration::from_secs(75);
}

/// How a run is done.
#[derive(Clone, Debug)]
pub struct Config {
    /// Only cases whose id contains this.
    pub filter: Option<String>,
    /// NON_STRICT counts as a failure.
    pub strict: bool,
    /// Cases run at once.
    pub jobs: usize,
    /// Seed for the property case (random if `None`).
    pub seed: Option<u64>,
    /// Bound on the whole run.
    pub overall: Duration,
    /// Where to write `report.json` and `junit.xml`.
    pub report_dir: Option<PathBuf>,
    /// Name of the implementation in reports.
    pub implementation: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            filter: None,
            strict: false,
            jobs: 4,
            seed: None,
            overall: Duration::from_secs(600),
            report_dir: None,
            implementation: "unknown".into(),
        }
    }
}

/// The ids, levels and clauses of the cases a target would run (for `--list`).
pub fn list(target: &Target, config: &Config) -> Vec<(String, Level, Vec<String>)> {
    runner::cases_for(target, config)
        .into_iter()
        .map(|c| (c.id, c.level, c.clauses))
        .collect()
}
