//! `latency`: the pairs of [`pairs`](super::scenarios::pairs) at a fixed offered rate, with
//! end-to-end latency percentiles.
//!
//! Open loop, so coordinated omission cannot hide latency: a pacer thread (not the tokio timer,
//! whose 1 ms granularity would be most of what is measured) walks a fixed schedule, message
//! `k` due at `t0 + k / rate` for pair `k mod P`, and hands each to its pair's task, which sends
//! it at once whatever is still unacknowledged. Each body carries its *due* time, and a receiver
//! records `arrival - due`: if the server (or the generator) stalls, the messages that should
//! have gone out meanwhile count the stall. The pacer's own lag is reported beside the
//! percentiles.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::stream::{FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::mpsc;

use super::proc::Meter;
use super::scenarios::{Ctx, connect_all, join_receivers, receive, record};
use super::stats::{Progress, Record, add_latency, add_usage, histogram};
use super::transport::{Inbox, Stamp, Transport, Tx, body, now_ns};

/// Time between starting the pacer and the first message, so every task is waiting.
const LEAD: Duration = Duration::from_millis(100);

/// Parameters of a latency run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    /// Sender/receiver pairs.
    pub(crate) pairs: u32,
    /// Offered messages per second, over all pairs.
    pub(crate) rate: f64,
    /// Seconds of sending.
    pub(crate) duration: Duration,
    /// Leading seconds not recorded in the histogram.
    pub(crate) warmup: Duration,
}

/// Runs it.
pub(crate) async fn latency<T: Transport>(
    t: &T,
    ctx: &Ctx,
    addr: &str,
    p: Params,
) -> Result<Record> {
    if p.pairs == 0 || p.rate.is_nan() || p.rate <= 0.0 {
        bail!("latency needs at least one pair and a positive --rate");
    }
    let mut rec = record(t, "latency", addr);
    let total = (p.rate * p.duration.as_secs_f64()).round() as u64;
    rec.params = BTreeMap::from([
        ("pairs".into(), json!(p.pairs)),
        ("rate".into(), json!(p.rate)),
        ("duration_s".into(), json!(p.duration.as_secs_f64())),
        ("warmup_s".into(), json!(p.warmup.as_secs_f64())),
        ("messages".into(), json!(total)),
        ("body_bytes".into(), json!(ctx.body_len)),
    ]);
    let senders: Vec<String> = (0..p.pairs).map(|i| ctx.name(&format!("ls{i}"))).collect();
    let receivers: Vec<String> = (0..p.pairs).map(|i| ctx.name(&format!("lr{i}"))).collect();
    let rx = connect_all(t, &receivers, Inbox::Own, ctx.connect_concurrency).await?;
    let tx = connect_all(t, &senders, Inbox::None, ctx.connect_concurrency).await?;
    let progress = Progress::default();
    let _ticker = progress.report("latency", total);
    let lanes = u64::from(p.pairs);
    let expected = |i: u64| total / lanes + u64::from(i < total % lanes);
    let meter = Meter::start(ctx.server_pid)?;
    let t0 = now_ns() + u64::try_from(LEAD.as_nanos()).unwrap_or(0);
    let record_from = t0 + u64::try_from(p.warmup.as_nanos()).unwrap_or(0);
    let deadline = tokio::time::Instant::now() + LEAD + p.duration + ctx.timeout;
    let mut receiving = Vec::new();
    for (i, (_, r)) in (0..p.pairs).zip(rx) {
        receiving.push(tokio::spawn(receive(
            r,
            i,
            expected(u64::from(i)),
            deadline,
            record_from,
            progress.clone(),
        )));
    }
    let mut queues = Vec::new();
    let mut sending = Vec::new();
    let mut keep = Vec::new();
    for (i, ((s, _), to)) in (0..p.pairs).zip(tx.into_iter().zip(&receivers)) {
        let (q, due) = mpsc::unbounded_channel();
        queues.push(q);
        keep.push(s.clone());
        let lane = lane(s, to.clone(), i, due, ctx.body_len, progress.clone());
        sending.push(tokio::spawn(tokio::time::timeout_at(deadline, lane)));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let pacer = {
        let stop = stop.clone();
        let rate = p.rate;
        tokio::task::spawn_blocking(move || pace(t0, total, rate, queues, &stop))
    };
    let mut max_inflight = 0;
    let mut send_error = None;
    for s in sending {
        match s.await.context("a sender task panicked")? {
            Ok(Ok(n)) => max_inflight = max_inflight.max(n),
            Ok(Err(e)) => send_error = Some(format!("{e:#}")),
            Err(_) => send_error = Some("sending timed out".into()),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let lag = pacer.await.context("the pacer thread panicked")?;
    let (check, latency, last) = join_receivers(receiving, &mut rec.notes).await?;
    let usage = meter.stop()?;
    if let Some(e) = send_error {
        rec.notes.push(format!("a sender failed: {e}"));
    }
    let elapsed = (last.saturating_sub(t0)).max(1) as f64 / 1e9;
    let f = &mut rec.figures;
    f.insert("offered_per_s".into(), p.rate);
    f.insert("messages".into(), total as f64);
    f.insert("delivered".into(), check.received as f64);
    f.insert("achieved_per_s".into(), check.received as f64 / elapsed);
    f.insert("max_in_flight_per_pair".into(), max_inflight as f64);
    add_latency(f, "", &latency);
    add_latency(f, "pacer_lag_", &lag);
    f.retain(|k, _| !matches!(k.as_str(), "pacer_lag_count" | "pacer_lag_mean_ms"));
    let lag_max = lag.max() as f64 / 1e6;
    if lag_max > 1.0 {
        rec.notes.push(format!(
            "the pacer fell behind its schedule by up to {lag_max:.2} ms; latencies count from \
             the scheduled time, so that lag is inside them"
        ));
    }
    add_usage(
        &mut rec.figures,
        &mut rec.notes,
        &usage,
        "msgs",
        check.received as f64,
    );
    rec.check = Some(check);
    drop(keep);
    Ok(rec)
}

/// One pair's sender: sends each message as it comes due, never waiting for acks first.
/// Returns the most sends it had unacknowledged at once.
async fn lane<X: Tx>(
    tx: X,
    to: String,
    stream: u32,
    mut due: mpsc::UnboundedReceiver<(u64, u64)>,
    body_len: usize,
    progress: Progress,
) -> Result<usize> {
    let mut inflight = FuturesUnordered::new();
    let mut open = true;
    let mut most = 0;
    loop {
        tokio::select! {
            next = due.recv(), if open => match next {
                Some((seq, due_ns)) => {
                    let stamp = Stamp { stream, seq, sent_ns: due_ns };
                    let ack = tx.send(&to, body(stamp, body_len)).await?;
        inflight.push(ack);
                    most = most.max(inflight.len());
                }
                None => open = false,
            },
            Some(r) = inflight.next(), if !inflight.is_empty() => {
                r?;
                progress.acked.fetch_add(1, Ordering::Relaxed);
            }
            else => break,
        }
    }
    Ok(most)
}

/// The pacer: hands message `k` to lane `k mod lanes` at `t0 + k / rate` (ns), sleeping in
/// between. Returns how late it handed them out.
fn pace(
    t0: u64,
    total: u64,
    rate: f64,
    lanes: Vec<mpsc::UnboundedSender<(u64, u64)>>,
    stop: &AtomicBool,
) -> Histogram<u64> {
    let mut lag = histogram();
    let n = lanes.len().max(1) as u64;
    let interval = 1e9 / rate;
    for k in 0..total {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let due = t0 + (k as f64 * interval) as u64;
        let now = now_ns();
        if due > now {
            std::thread::sleep(Duration::from_nanos(due - now));
        }
        let _ = lag.record(now_ns().saturating_sub(due).max(1));
        let lane = usize::try_from(k % n).unwrap_or(0);
        if let Some(q) = lanes.get(lane) {
            // A lane that stopped (failed or timed out) is reported by its task.
            let _ = q.send((k / n, due));
        }
    }
    lag
}
