//! Quick figures for the core server, in one run against an in-process `magpied` on 127.0.0.1
//! with durable commits (fsync before every ack): messages/s for P sender/receiver pairs, and the
//! time for a device that missed K messages to reconnect and sync. The full load tool with peers
//! and percentiles is `magpie-bench`; this is the smoke-sized version.
//!
//! `cargo run --release -p magpie-client --example measure -- [PAIRS] [MESSAGES_PER_PAIR] [MISSED]`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use magpie_auth::{AppSecret, Device, Platform, TokenClaims, mint, random_nonce};
use magpie_client::{Client, ClientOptions, Event, text};

const APP: &str = "bench";
const SECRET: &str = "bench-secret-0123456789";

fn token(user: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = TokenClaims {
        app_id: APP.into(),
        user_id: user.into(),
        device: Device::Any,
        platform: Platform::Other,
        not_before: now - 5,
        expires: now + 3600,
        nonce: random_nonce().expect("random"),
    };
    mint(&claims, &AppSecret::new(SECRET).expect("secret")).expect("mint")
}

async fn connect(addr: &str, user: &str) -> (Client, magpie_client::Events) {
    let opts = ClientOptions::new(
        vec![addr.to_owned()],
        APP,
        token(user),
        format!("{user}-dev"),
        Platform::Other,
    );
    Client::connect(opts).await.expect("connects")
}

/// Sends `n` messages to `to` with up to `window` in flight.
async fn send_many(client: &Client, to: &str, n: u64, window: usize) {
    let mut inflight = FuturesUnordered::new();
    for i in 0..n {
        if inflight.len() >= window {
            inflight
                .next()
                .await
                .map(|r: Result<_, _>| r.expect("acked"));
        }
        let c = client.clone();
        let to = to.to_owned();
        inflight.push(async move {
            c.send(
                &to,
                text(format!(
                    "{{\"text\":\"message number {i} from the measure run\"}}"
                )),
                Default::default(),
            )
            .await
        });
    }
    while let Some(r) = inflight.next().await {
        r.expect("acked");
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let pairs = args.first().copied().unwrap_or(100);
    let per_pair = args.get(1).copied().unwrap_or(200);
    let missed = args.get(2).copied().unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = magpied::Settings::embedded(dir.path(), APP, SECRET);
    let server = magpied::Server::start(settings).await.expect("server");
    let addr = server.local_addr().to_string();

    // Pairs: every sender sends to its receiver; receivers count what arrives.
    let received = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for p in 0..pairs {
        let (s, _events) = connect(&addr, &format!("s{p}")).await;
        let (_r, mut events) = connect(&addr, &format!("r{p}")).await;
        let received = received.clone();
        receivers.push(tokio::spawn(async move {
            let mut got = 0;
            while got < per_pair {
                match tokio::time::timeout(Duration::from_secs(60), events.recv()).await {
                    Ok(Some(Event::Message(_))) => {
                        got += 1;
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
            drop(_r);
        }));
        senders.push((s, format!("r{p}")));
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (s, to) in senders {
        tasks.push(tokio::spawn(async move {
            send_many(&s, &to, per_pair, 16).await;
            s
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let acked_at = start.elapsed();
    for r in receivers {
        let _ = r.await;
    }
    let all = start.elapsed();
    let total = pairs * per_pair;
    println!("| scenario | figure |");
    println!("|---|---|");
    println!("| pairs | {pairs} pairs × {per_pair} messages, durable, 16 in flight per sender |");
    println!(
        "| acked | {total} in {:.2} s = {:.0} msg/s |",
        acked_at.as_secs_f64(),
        total as f64 / acked_at.as_secs_f64()
    );
    println!(
        "| delivered | {} in {:.2} s = {:.0} msg/s |",
        received.load(Ordering::Relaxed),
        all.as_secs_f64(),
        received.load(Ordering::Relaxed) as f64 / all.as_secs_f64()
    );

    // Sync: a device misses `missed` messages, then reconnects and pulls them all.
    let (sender, _e) = connect(&addr, "sync-sender").await;
    send_many(&sender, "sync-receiver", missed, 64).await;
    let start = Instant::now();
    let (_receiver, mut events) = connect(&addr, "sync-receiver").await;
    let mut got = 0;
    while got < missed {
        match tokio::time::timeout(Duration::from_secs(60), events.recv()).await {
            Ok(Some(Event::Message(_))) => got += 1,
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    let took = start.elapsed();
    println!(
        "| sync | {got} of {missed} missed messages in {:.0} ms (connect + handshake + pull) |",
        took.as_secs_f64() * 1000.0
    );
    server.shutdown().await;
}
