//! Durable group-commit throughput of the store through [`GroupCommitter`].
//!
//! ```sh
//! cargo run --release -p magpie-store --example commit-throughput [-- SECONDS [relaxed]]
//! ```
//!
//! N concurrent submitters (tokio tasks) each send 1:1 messages (≈200-byte content, two
//! participants, so one message record, two events and one dedup entry per write) one after the
//! other, waiting for each ack, for a few seconds (3 by default) per N. Every commit is fsynced
//! (`Durability::Immediate`), or with `relaxed` only handed to the OS (`Durability::Relaxed`,
//! which shows the CPU cost alone). Prints commits/s, acked writes/s, the mean batch and the ack
//! latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use magpie_store::{Durability, GroupCommitter, Store, StoreConfig, StoredMessage, Write};

const SUBMITTERS: [usize; 5] = [1, 8, 64, 256, 1024];

fn write(task: usize, i: u64) -> Write {
    let a = format!("user-{:04}", task % 1000);
    let b = format!("user-{:04}", (task * 7 + 1) % 1000);
    let content: Vec<u8> = (0..200u32)
        .map(|j| (j.wrapping_mul(31) ^ i as u32) as u8)
        .collect();
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&i.to_be_bytes());
    Write::AppendMessage {
        app: "bench".into(),
        message: StoredMessage {
            conversation: format!("u:{a}:{b}"),
            seq: 0,
            sender: a.clone(),
            sender_device: "phone".into(),
            client_msg_id: format!("{task}-{i}"),
            time_ms: 0,
            class: 0,
            content: Bytes::from(content),
            tombstone: false,
            audience: Vec::new(),
        },
        content_hash: hash,
        participants: vec![a, b],
    }
}

#[tokio::main]
async fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("SECONDS must be a number"))
        .unwrap_or(3.0);
    let relaxed = std::env::args().nth(2).as_deref() == Some("relaxed");
    let durability = if relaxed {
        Durability::Relaxed
    } else {
        Durability::Immediate
    };
    println!("group commit through GroupCommitter, {durability:?} durability, {secs} s per case");
    println!(
        "| submitters | commits/s | writes/s | mean batch | p50 ack | p99 ack |\n|---:|---:|---:|---:|---:|---:|"
    );
    for n in SUBMITTERS {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = StoreConfig::new(dir.path());
        config.durability = durability;
        let store = magpie_store::open(&config).expect("open");
        let committer = GroupCommitter::start(Arc::clone(&store) as Arc<dyn Store>, 0);
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let start = Instant::now();
        let tasks: Vec<_> = (0..n)
            .map(|t| {
                let c = committer.clone();
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut i = 0u64;
                    while Instant::now() < deadline {
                        let w = write(t, i);
                        i += 1;
                        let t0 = Instant::now();
                        c.submit(w).await.expect("submit");
                        lat.push(t0.elapsed());
                    }
                    lat
                })
            })
            .collect();
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await.expect("task"));
        }
        let elapsed = start.elapsed().as_secs_f64();
        let stats = committer.stats();
        committer.close().await;
        lat.sort_unstable();
        let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
        println!(
            "| {n} | {:.0} | {:.0} | {:.1} | {:.2} ms | {:.2} ms |",
            stats.commits as f64 / elapsed,
            stats.writes as f64 / elapsed,
            stats.writes as f64 / stats.commits.max(1) as f64,
            pct(0.5),
            pct(0.99),
        );
    }
}
