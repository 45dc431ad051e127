//! The throughput scenarios, `pairs` and `fanout`, and what every scenario shares: connecting
//! many clients, windowed sending, and receivers that check their stream.
//!
//! Every scenario is generic over [`Transport`], so magpied, mosquitto and nats-server run the
//! same code; a fan-out goes to a group, which [`Transport::prepare_group`] sets up and
//! [`Transport::group_address`] names: a topic (MQTT, NATS) or a Magpie group.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::stream::{FuturesUnordered, StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use serde_json::json;

use super::proc::Meter;
use super::stats::{Check, Progress, Record, Tracker, add_usage, histogram};
use super::transport::{Inbox, Rx, Stamp, Transport, Tx, body, now_ns, parse};

/// What every scenario is given besides its own parameters.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// Prefix of every name this run uses, so runs against one server never meet.
    pub(crate) run: String,
    /// The server's pid, for CPU and RSS figures.
    pub(crate) server_pid: Option<u32>,
    /// How long any one phase may take before the run gives up.
    pub(crate) timeout: Duration,
    /// Message body length in bytes.
    pub(crate) body_len: usize,
    /// Connections opened at once.
    pub(crate) connect_concurrency: usize,
}

impl Ctx {
    /// The name of participant `what` in this run.
    pub(crate) fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.run)
    }
}

/// A record with the fields every scenario fills the same way.
pub(crate) fn record<T: Transport>(t: &T, scenario: &str, addr: &str) -> Record {
    Record::new(scenario, t.name(), addr, t.ack())
}

/// Opens one connection per name, `concurrency` at a time, in the order of `names`.
pub(crate) async fn connect_all<T: Transport>(
    t: &T,
    names: &[String],
    inbox: Inbox<'_>,
    concurrency: usize,
) -> Result<Vec<(T::Tx, T::Rx)>> {
    futures::stream::iter(names)
        .map(|name| t.connect(name, inbox))
        .buffered(concurrency.max(1))
        .try_collect()
        .await
}

/// What one receiver saw.
pub(crate) struct Received {
    /// The stream's check.
    pub(crate) tracker: Tracker,
    /// End-to-end latencies (ns) of messages sent at or after `record_from`.
    pub(crate) latency: Histogram<u64>,
    /// When the last message arrived ([`now_ns`]).
    pub(crate) last_ns: u64,
    /// Why receiving stopped early, if it did.
    pub(crate) error: Option<String>,
}

/// Receives stream `stream` of `expected` messages until all arrived or `deadline` passes.
/// Latencies are recorded for messages stamped at or after `record_from` (ns).
pub(crate) async fn receive<R: Rx>(
    mut rx: R,
    stream: u32,
    expected: u64,
    deadline: tokio::time::Instant,
    record_from: u64,
    progress: Progress,
) -> Received {
    let mut out = Received {
        tracker: Tracker::new(expected),
        latency: histogram(),
        last_ns: now_ns(),
        error: None,
    };
    while !out.tracker.complete() {
        let got = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(got)) => got,
            Ok(Err(e)) => {
                out.error = Some(format!("{e:#}"));
                break;
            }
            Err(_) => {
                out.error = Some("timed out".into());
                break;
            }
        };
        let now = now_ns();
        out.last_ns = now;
        match parse(&got) {
            Some(s) if s.stream == stream => {
                out.tracker.on(s.seq);
                progress.received.fetch_add(1, Ordering::Relaxed);
                if s.sent_ns >= record_from {
                    // Out of range only past 10 minutes: then the run has failed anyway.
                    let _ = out.latency.record(now.saturating_sub(s.sent_ns).max(1));
                }
            }
            _ => out.tracker.on_foreign(),
        }
    }
    out
}

/// Sends `count` messages of stream `stream` to `to` with at most `window` unacknowledged.
pub(crate) async fn send_windowed<X: Tx>(
    tx: X,
    to: String,
    stream: u32,
    count: u64,
    window: usize,
    body_len: usize,
    progress: Progress,
) -> Result<()> {
    let mut inflight = FuturesUnordered::new();
    for seq in 0..count {
        if inflight.len() >= window.max(1)
            && let Some(r) = inflight.next().await
        {
            r?;
            progress.acked.fetch_add(1, Ordering::Relaxed);
        }
        let stamp = Stamp {
            stream,
            seq,
            sent_ns: now_ns(),
        };
        let ack = tx.send(&to, body(stamp, body_len)).await?;
        inflight.push(ack);
    }
    while let Some(r) = inflight.next().await {
        r?;
        progress.acked.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Joins the receivers: see [`merge`].
pub(crate) async fn join_receivers(
    tasks: Vec<tokio::task::JoinHandle<Received>>,
    notes: &mut Vec<String>,
) -> Result<(Check, Histogram<u64>, u64)> {
    let mut all = Vec::with_capacity(tasks.len());
    for task in tasks {
        all.push(task.await.context("a receiver task panicked")?);
    }
    Ok(merge(all, notes))
}

/// The check over all receivers, their merged latencies, and the last arrival; why any stopped
/// early goes to `notes`.
pub(crate) fn merge(
    received: Vec<Received>,
    notes: &mut Vec<String>,
) -> (Check, Histogram<u64>, u64) {
    let mut check = Check::default();
    let mut latency = histogram();
    let mut last = 0;
    let mut errors = BTreeMap::<String, usize>::new();
    for r in received {
        check.add(&r.tracker);
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = latency.add(&r.latency);
        last = last.max(r.last_ns);
        if let Some(e) = r.error {
            *errors.entry(e).or_default() += 1;
        }
    }
    for (e, n) in errors {
        notes.push(format!("{n} receiver(s) stopped early: {e}"));
    }
    (check, latency, last)
}

/// `pairs`: P senders each send M messages to their own receiver, `window` in flight.
pub(crate) async fn pairs<T: Transport>(
    t: &T,
    ctx: &Ctx,
    addr: &str,
    pairs: u32,
    messages: u64,
    window: usize,
) -> Result<Record> {
    let mut rec = record(t, "pairs", addr);
    rec.params = BTreeMap::from([
        ("pairs".into(), json!(pairs)),
        ("messages_per_pair".into(), json!(messages)),
        ("window".into(), json!(window)),
        ("body_bytes".into(), json!(ctx.body_len)),
    ]);
    let senders: Vec<String> = (0..pairs).map(|p| ctx.name(&format!("s{p}"))).collect();
    let receivers: Vec<String> = (0..pairs).map(|p| ctx.name(&format!("r{p}"))).collect();
    let rx = connect_all(t, &receivers, Inbox::Own, ctx.connect_concurrency).await?;
    let tx = connect_all(t, &senders, Inbox::None, ctx.connect_concurrency).await?;
    let total = u64::from(pairs) * messages;
    let progress = Progress::default();
    let _ticker = progress.report("pairs", total);
    let meter = Meter::start(ctx.server_pid)?;
    let t0 = now_ns();
    let deadline = tokio::time::Instant::now() + ctx.timeout;
    let mut receiving = Vec::new();
    for (p, (_, r)) in (0..pairs).zip(rx) {
        receiving.push(tokio::spawn(receive(
            r,
            p,
            messages,
            deadline,
            u64::MAX,
            progress.clone(),
        )));
    }
    let mut sending = Vec::new();
    let mut keep = Vec::new();
    for (p, ((s, _), to)) in (0..pairs).zip(tx.into_iter().zip(&receivers)) {
        keep.push(s.clone());
        let send = send_windowed(
            s,
            to.clone(),
            p,
            messages,
            window,
            ctx.body_len,
            progress.clone(),
        );
        sending.push(tokio::spawn(tokio::time::timeout_at(deadline, send)));
    }
    let mut send_error = None;
    for s in sending {
        match s.await.context("a sender task panicked")? {
            Ok(Ok(())) => {}
            Ok(Err(e)) => send_error = Some(format!("{e:#}")),
            Err(_) => send_error = Some("sending timed out".into()),
        }
    }
    let acked_ns = now_ns() - t0;
    let (check, _, last) = join_receivers(receiving, &mut rec.notes).await?;
    let usage = meter.stop()?;
    if let Some(e) = send_error {
        rec.notes.push(format!("a sender failed: {e}"));
    }
    let elapsed = (last.saturating_sub(t0)).max(1) as f64 / 1e9;
    let f = &mut rec.figures;
    f.insert("messages".into(), total as f64);
    f.insert("delivered".into(), check.received as f64);
    f.insert("elapsed_s".into(), elapsed);
    f.insert("msgs_per_s".into(), check.received as f64 / elapsed);
    f.insert("acked_per_s".into(), total as f64 / (acked_ns as f64 / 1e9));
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

/// `fanout`: one sender reaches N online receivers with M messages each, one send per message to
/// a group: a topic all receivers subscribed to (MQTT, NATS), or a Magpie group the sender
/// creates with all receivers as members before the first message (set up outside the measured
/// phase).
pub(crate) async fn fanout<T: Transport>(
    t: &T,
    ctx: &Ctx,
    addr: &str,
    receivers: u32,
    messages: u64,
    window: usize,
) -> Result<Record> {
    let mut rec = record(t, "fanout", addr);
    rec.mechanism = Some(t.fanout_mechanism(receivers));
    rec.params = BTreeMap::from([
        ("receivers".into(), json!(receivers)),
        ("messages".into(), json!(messages)),
        ("window".into(), json!(window)),
        ("body_bytes".into(), json!(ctx.body_len)),
    ]);
    let group = ctx.name("fan");
    let names: Vec<String> = (0..receivers).map(|i| ctx.name(&format!("f{i}"))).collect();
    let rx = connect_all(t, &names, Inbox::Group(&group), ctx.connect_concurrency).await?;
    let (tx, _own) = t.connect(&ctx.name("fan-sender"), Inbox::None).await?;
    tokio::time::timeout(ctx.timeout, t.prepare_group(&tx, &group, &names))
        .await
        .context("setting up the group timed out")??;
    let to = t.group_address(&group);
    let progress = Progress::default();
    let _ticker = progress.report("fanout (acked = sends, received = deliveries)", messages);
    let meter = Meter::start(ctx.server_pid)?;
    let t0 = now_ns();
    let deadline = tokio::time::Instant::now() + ctx.timeout;
    let receiving: Vec<_> = rx
        .into_iter()
        .map(|(_, r)| {
            tokio::spawn(receive(
                r,
                0,
                messages,
                deadline,
                u64::MAX,
                progress.clone(),
            ))
        })
        .collect();
    let send = send_windowed(
        tx.clone(),
        to,
        0,
        messages,
        window,
        ctx.body_len,
        progress.clone(),
    );
    let sent = tokio::time::timeout_at(deadline, send).await;
    let (check, _, last) = join_receivers(receiving, &mut rec.notes).await?;
    let usage = meter.stop()?;
    match sent {
        Ok(Ok(())) => {}
        Ok(Err(e)) => rec.notes.push(format!("the sender failed: {e:#}")),
        Err(_) => rec.notes.push("sending timed out".into()),
    }
    let elapsed = (last.saturating_sub(t0)).max(1) as f64 / 1e9;
    let f = &mut rec.figures;
    f.insert("deliveries".into(), check.received as f64);
    f.insert("sends".into(), messages as f64);
    f.insert("elapsed_s".into(), elapsed);
    f.insert("deliveries_per_s".into(), check.received as f64 / elapsed);
    add_usage(
        &mut rec.figures,
        &mut rec.notes,
        &usage,
        "deliveries",
        check.received as f64,
    );
    rec.check = Some(check);
    let lost = rec.check.as_ref().is_some_and(|c| c.missing > 0);
    if lost && t.name() == "nats" {
        rec.notes.push(
            "core NATS drops messages for a slow consumer: a loss here is the protocol's \
             at-most-once delivery"
                .into(),
        );
    }
    Ok(rec)
}

/// Fails the run when its check failed, after the record was printed and written.
pub(crate) fn require_ok(rec: &Record) -> Result<()> {
    if let Some(c) = &rec.check
        && !c.ok
    {
        bail!("{} against {}: {}", rec.scenario, rec.label, c.summary());
    }
    Ok(())
}
