//! One-run comparison report for the magpie-wire codec.
//!
//! ```text
//! cargo run --release -p magpie-benches --bin wire-report [-- --json PATH] [--quick]
//! ```
//!
//! Prints a markdown table of every codec case against memcpy and prost baselines, the wire
//! bytes per message in each mode, and the two target checks. `--quick` runs every path with tiny
//! iteration counts (timings meaningless). Exit status 0 even on a MISS: this is a report.

use std::process::ExitCode;
use std::time::Instant;

use magpie_benches::fixture::{BoxError, Fixture};
use magpie_benches::measure::Settings;
use magpie_benches::report;

struct Args {
    json: Option<String>,
    quick: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        json: None,
        quick: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => args.json = Some(it.next().ok_or("--json needs a PATH")?),
            "--quick" => args.quick = true,
            // `cargo bench` / test harness flags, harmless here.
            "--bench" | "--nocapture" => {}
            "-h" | "--help" => {
                return Err("usage: wire-report [--json PATH] [--quick]".to_owned());
            }
            other => return Err(format!("unknown argument {other:?}; try --help")),
        }
    }
    Ok(args)
}

fn run(args: &Args) -> Result<(), BoxError> {
    let started = Instant::now();
    if cfg!(debug_assertions) && !args.quick {
        eprintln!("warning: debug build; run with --release for meaningful figures");
    }
    let settings = if args.quick {
        Settings::quick()
    } else {
        Settings::full()
    };
    let fixture = Fixture::standard();
    let report = report::run(settings, &fixture)?;
    print!("{}", report::markdown(&report));
    println!("\n(measured in {:.1} s)", started.elapsed().as_secs_f64());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        eprintln!("wrote {path}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wire-report: {e}");
            ExitCode::FAILURE
        }
    }
}
