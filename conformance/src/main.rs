//! `magpie-conformance`: judges a Magpie server or codec against `spec/`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use magpie_conformance::{
    Config, Level, Rates, Retention, ServerTarget, Target, coverage, list, run,
};

#[derive(Parser)]
#[command(version, about = "The Magpie conformance suite")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Print every MUST/SHOULD clause of spec/*.md with the cases naming it, and exit.
    #[arg(long)]
    coverage: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server suite over TCP.
    Server {
        /// HOST:PORT of the server.
        #[arg(long)]
        target: String,
        /// An app id the server serves.
        #[arg(long)]
        app: String,
        /// That app's secret (the suite mints its own tokens).
        #[arg(long)]
        secret: String,
        /// WebSocket URL (ws://HOST:PORT/) for the WebSocket transport cases.
        #[arg(long)]
        ws: Option<String>,
        /// HOST:PORT of the admin API (revocation, spec/auth.md §6).
        #[arg(long)]
        admin: Option<String>,
        /// The server's per-conversation message limit, if it has one: enables the retention
        /// case (spec/sync.md SYNC-8.1), which sends that many messages plus three.
        #[arg(long, value_name = "N")]
        max_messages_per_conversation: Option<u64>,
        /// Seconds the server may take to apply that limit [default: 75].
        #[arg(long, value_name = "SECS", default_value_t = 75)]
        retention_wait: u64,
        /// The server's send rate per user, SENDs a second (spec/session.md SESSION-6.4)
        /// [default: the reference server's, 20].
        #[arg(long, value_name = "N")]
        send_rate: Option<u32>,
        /// The server's send burst per user [default: 100].
        #[arg(long, value_name = "N")]
        send_burst: Option<u32>,
        /// The server's packet rate per connection, a second (SESSION-6.6) [default: 1000].
        #[arg(long, value_name = "N")]
        packet_rate: Option<u32>,
        /// The server's packet burst per connection [default: 2000].
        #[arg(long, value_name = "N")]
        packet_burst: Option<u32>,
        #[command(flatten)]
        common: Common,
    },
    /// Run the codec suite through a shim (conformance/SHIM.md).
    Codec {
        /// The shim command, run with `sh -c`.
        #[arg(long)]
        shim: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args)]
struct Common {
    /// List the cases and exit.
    #[arg(long)]
    list: bool,
    /// Only cases whose id contains PATTERN.
    #[arg(long, value_name = "PATTERN")]
    filter: Option<String>,
    /// Count NON_STRICT (missed SHOULD) as failures.
    #[arg(long)]
    strict: bool,
    /// Cases run at once.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Write the JSON and JUnit reports into DIR.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Seed of the property case (printed by every run).
    #[arg(long)]
    seed: Option<u64>,
    /// Bound on the whole run, in seconds.
    #[arg(long, default_value_t = 600)]
    overall_secs: u64,
    /// Name of the implementation in reports.
    #[arg(long, default_value = "unknown")]
    implementation: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.coverage {
        return print_coverage();
    }
    let Some(command) = cli.command else {
        eprintln!("a subcommand is needed (server or codec); see --help");
        return ExitCode::from(2);
    };
    let (target, common) = match command {
        Command::Server {
            target,
            app,
            secret,
            ws,
            admin,
            max_messages_per_conversation,
            retention_wait,
            send_rate,
            send_burst,
            packet_rate,
            packet_burst,
            common,
        } => {
            let reference = Rates::default();
            let rates = Rates {
                send_rate: send_rate.unwrap_or(reference.send_rate),
                send_burst: send_burst.unwrap_or(reference.send_burst),
                packet_rate: packet_rate.unwrap_or(reference.packet_rate),
                packet_burst: packet_burst.unwrap_or(reference.packet_burst),
            };
            let admin =
                admin.and_then(|a| std::net::ToSocketAddrs::to_socket_addrs(&a).ok()?.next());
            let addr = match std::net::ToSocketAddrs::to_socket_addrs(&target).map(|mut a| a.next())
            {
                Ok(Some(a)) => a,
                _ => {
                    eprintln!("cannot resolve {target}");
                    return ExitCode::from(2);
                }
            };
            (
                Target::Server(ServerTarget {
                    addr,
                    app,
                    secret,
                    ws,
                    admin,
                    retention: max_messages_per_conversation.map(|n| Retention {
                        max_messages_per_conversation: n,
                        within: std::time::Duration::from_secs(retention_wait),
                    }),
                    rates,
                }),
                common,
            )
        }
        Command::Codec { shim, common } => (Target::Codec { shim }, common),
    };
    let seed = common.seed.or_else(|| {
        Some(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1),
        )
    });
    let config = Config {
        filter: common.filter,
        strict: common.strict,
        jobs: common.jobs,
        seed,
        overall: Duration::from_secs(common.overall_secs),
        report_dir: common.report,
        implementation: common.implementation,
    };
    if common.list {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        for (id, level, clauses) in list(&target, &config) {
            if writeln!(out, "{id}\t{level:?}\t{}", clauses.join(",")).is_err() {
                break;
            }
        }
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let report = rt.block_on(run(target, &config));
    println!("{}", report.summary());
    // Cases that timed out may leave tasks behind; never wait for them.
    rt.shutdown_timeout(Duration::from_secs(1));
    if report.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_coverage() -> ExitCode {
    let mut uncovered_must = 0;
    for c in coverage() {
        let mark = match (c.cases.is_empty(), c.not_observable) {
            (false, _) => "covered",
            (true, Some(why)) => {
                println!(
                    "{:<10} {:<6} {:<12} ({why})",
                    "n/a",
                    level_word(c.level),
                    c.clause
                );
                continue;
            }
            (true, None) => "UNCOVERED",
        };
        if c.cases.is_empty() && c.level == Level::Must {
            uncovered_must += 1;
        }
        println!(
            "{:<10} {:<6} {:<12} {}",
            mark,
            level_word(c.level),
            c.clause,
            c.cases.join(" ")
        );
    }
    println!("{uncovered_must} MUST clauses uncovered");
    if uncovered_must == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// MUST, SHOULD, or `none` for a clause without an RFC 2119 keyword (normative all the same).
fn level_word(l: Level) -> &'static str {
    match l {
        Level::Must => "MUST",
        Level::Should => "SHOULD",
        Level::May => "none",
    }
}
