//! `idle`: C authenticated connections that do nothing, and what they cost the server in
//! resident memory. Each connection is subscribed to its own inbox (a Magpie session, an MQTT
//! client with one subscription, a NATS client with one subscription), as an idle chat client
//! would be.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures::stream::{StreamExt, TryStreamExt};
use serde_json::json;

use super::proc::{Meter, raise_nofile, rss_kib};
use super::scenarios::{Ctx, record};
use super::stats::{Record, Ticker, add_usage};
use super::transport::{Inbox, Transport};

/// File descriptors kept free beyond one per connection.
const FD_MARGIN: u64 = 512;

/// Runs it: RSS of the server before, C connections opened `concurrency` at a time, `hold`
/// for the server to settle, RSS after.
pub(crate) async fn idle<T: Transport>(
    t: &T,
    ctx: &Ctx,
    addr: &str,
    connections: u32,
    hold: Duration,
) -> Result<Record> {
    let Some(pid) = ctx.server_pid else {
        bail!(
            "idle measures the server's RSS: it needs --server-pid (and a server in its own \
             process, not --embedded)"
        );
    };
    let mut rec = record(t, "idle", addr);
    rec.params = BTreeMap::from([
        ("connections".into(), json!(connections)),
        ("concurrency".into(), json!(ctx.connect_concurrency)),
        ("hold_s".into(), json!(hold.as_secs_f64())),
    ]);
    let limit = raise_nofile(u64::from(connections) + FD_MARGIN)?;
    if limit < u64::from(connections) + FD_MARGIN / 2 {
        bail!(
            "the open-file limit is {limit}, too low for {connections} connections \
             (raise the hard limit: ulimit -Hn)"
        );
    }
    let names: Vec<String> = (0..connections)
        .map(|i| ctx.name(&format!("i{i}")))
        .collect();
    let before = rss_kib(pid)?;
    let generator_before = rss_kib(std::process::id())?;
    let meter = Meter::start(Some(pid))?;
    let opened = Arc::new(AtomicU64::new(0));
    let ticker = {
        let opened = opened.clone();
        Ticker::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                eprintln!(
                    "idle: {}/{connections} connected",
                    opened.load(Ordering::Relaxed)
                );
            }
        })
    };
    let started = Instant::now();
    let connect = futures::stream::iter(&names)
        .map(|name| {
            let opened = opened.clone();
            async move {
                let c = t.connect(name, Inbox::Own).await?;
                opened.fetch_add(1, Ordering::Relaxed);
                anyhow::Ok(c)
            }
        })
        .buffer_unordered(ctx.connect_concurrency.max(1))
        .try_collect::<Vec<_>>();
    let held = tokio::time::timeout(ctx.timeout, connect)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "opened {} of {connections} connections in {:?}",
                opened.load(Ordering::Relaxed),
                ctx.timeout
            )
        })??;
    let connect_s = started.elapsed().as_secs_f64();
    drop(ticker);
    tokio::time::sleep(hold).await;
    let after = rss_kib(pid)?;
    let generator_after = rss_kib(std::process::id())?;
    let usage = meter.stop()?;
    drop(held);
    let n = f64::from(connections.max(1));
    let f = &mut rec.figures;
    f.insert("connections".into(), f64::from(connections));
    f.insert("connect_s".into(), connect_s);
    f.insert("connects_per_s".into(), n / connect_s.max(1e-9));
    f.insert("server_rss_before_kib".into(), before as f64);
    f.insert("server_rss_after_kib".into(), after as f64);
    f.insert(
        "server_kib_per_connection".into(),
        (after as f64 - before as f64) / n,
    );
    f.insert(
        "generator_kib_per_connection".into(),
        (generator_after as f64 - generator_before as f64) / n,
    );
    add_usage(
        &mut rec.figures,
        &mut rec.notes,
        &usage,
        "connects",
        f64::from(connections),
    );
    rec.notes.push(
        "server_kib_per_connection = (server VmRSS with the connections open - before) / C".into(),
    );
    Ok(rec)
}
