//! `magpie-bench`: the load tool. Scenarios `pairs`, `latency`, `fanout`, `idle`, `sync` against
//! magpied (`--target magpie`, or `--embedded`), mosquitto (`--target mqtt`) or nats-server
//! (`--target nats`); `report` aggregates JSON records into markdown. See `--help` of each, and
//! `benches/compare.sh` for the side-by-side run.
//!
//! ```text
//! cargo run --release -p magpie-benches --bin magpie-bench -- pairs --embedded
//! magpie-bench pairs --target mqtt --addr 127.0.0.1:1883 --json out.json
//! ```

use std::process::ExitCode;

use clap::Parser;
use magpie_benches::load::{self, Cli};

/// The generator's allocator, for every target alike: with glibc's, allocation was a quarter of
/// the generator's CPU, which on a 2-core machine is taken from the server under test.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    load::main(Cli::parse())
}
