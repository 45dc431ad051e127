//! What a run measured: the exactly-once-in-order check, latency percentiles, CPU figures, and
//! the record printed as a table and written as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::proc::Usage;

/// Version of the JSON layout.
pub(crate) const SCHEMA: u32 = 1;

/// Checks that one stream's messages arrive exactly once and in order: sequence numbers
/// `0..expected`, each once, each after the one before.
#[derive(Debug)]
pub(crate) struct Tracker {
    seen: Vec<bool>,
    distinct: u64,
    next: u64,
    duplicates: u64,
    out_of_order: u64,
    foreign: u64,
}

impl Tracker {
    /// A stream of `expected` messages.
    pub(crate) fn new(expected: u64) -> Tracker {
        Tracker {
            seen: vec![false; usize::try_from(expected).unwrap_or(usize::MAX)],
            distinct: 0,
            next: 0,
            duplicates: 0,
            out_of_order: 0,
            foreign: 0,
        }
    }

    /// Message `seq` arrived.
    pub(crate) fn on(&mut self, seq: u64) {
        let Some(slot) = usize::try_from(seq).ok().and_then(|i| self.seen.get_mut(i)) else {
            self.foreign += 1;
            return;
        };
        if *slot {
            self.duplicates += 1;
            return;
        }
        *slot = true;
        self.distinct += 1;
        if seq != self.next {
            self.out_of_order += 1;
        }
        self.next = seq + 1;
    }

    /// Something that is not one of ours arrived.
    pub(crate) fn on_foreign(&mut self) {
        self.foreign += 1;
    }

    /// Every expected message arrived.
    pub(crate) fn complete(&self) -> bool {
        self.distinct == self.seen.len() as u64
    }
}

/// The check over all streams of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Streams checked (pairs, or receivers of a fan-out).
    pub streams: u64,
    /// Messages expected over all streams.
    pub expected: u64,
    /// Distinct expected messages that arrived.
    pub received: u64,
    /// Expected messages that never arrived.
    pub missing: u64,
    /// Messages that arrived again.
    pub duplicates: u64,
    /// Messages that arrived before one sent earlier in their stream.
    pub out_of_order: u64,
    /// Bodies that were not of this stream (unparsable, wrong stream, sequence out of range).
    pub foreign: u64,
    /// Every expected message arrived, exactly once, in order, and nothing else.
    pub ok: bool,
}

impl Check {
    /// Adds one stream's result.
    pub(crate) fn add(&mut self, t: &Tracker) {
        self.streams += 1;
        self.expected += t.seen.len() as u64;
        self.received += t.distinct;
        self.missing += t.seen.len() as u64 - t.distinct;
        self.duplicates += t.duplicates;
        self.out_of_order += t.out_of_order;
        self.foreign += t.foreign;
        self.ok = self.missing == 0
            && self.duplicates == 0
            && self.out_of_order == 0
            && self.foreign == 0;
    }

    /// One line for people.
    pub(crate) fn summary(&self) -> String {
        let verdict = if self.ok { "OK" } else { "FAILED" };
        format!(
            "check {verdict}: {} streams, {} of {} messages arrived; missing {}, duplicates {}, \
             out of order {}, foreign {}",
            self.streams,
            self.received,
            self.expected,
            self.missing,
            self.duplicates,
            self.out_of_order,
            self.foreign
        )
    }
}

/// A histogram of latencies in nanoseconds, 1 ns to 10 minutes, 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy the constructor's rules.
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid histogram bounds")
}

/// Adds p50/p99/p999/max/mean (ms) and the count of `h` to `figures`, names prefixed.
pub(crate) fn add_latency(figures: &mut BTreeMap<String, f64>, prefix: &str, h: &Histogram<u64>) {
    let ms = |ns: u64| ns as f64 / 1e6;
    figures.insert(format!("{prefix}count"), h.len() as f64);
    figures.insert(format!("{prefix}p50_ms"), ms(h.value_at_quantile(0.50)));
    figures.insert(format!("{prefix}p99_ms"), ms(h.value_at_quantile(0.99)));
    figures.insert(format!("{prefix}p999_ms"), ms(h.value_at_quantile(0.999)));
    figures.insert(format!("{prefix}max_ms"), ms(h.max()));
    figures.insert(format!("{prefix}mean_ms"), h.mean() / 1e6);
}

/// Adds the CPU figures of a measured phase; `work` names the unit counted (`msgs`,
/// `deliveries`) and `count` how many were done, for the per-CPU-second figure.
pub(crate) fn add_usage(
    figures: &mut BTreeMap<String, f64>,
    notes: &mut Vec<String>,
    usage: &Usage,
    work: &str,
    count: f64,
) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let pct = |cpu: f64| 100.0 * cpu / usage.wall_s.max(1e-9);
    figures.insert("wall_s".into(), usage.wall_s);
    figures.insert("generator_cpu_s".into(), usage.generator_cpu_s);
    figures.insert("generator_cpu_pct".into(), pct(usage.generator_cpu_s));
    if let Some((steal, iowait)) = usage.steal_iowait_pct {
        figures.insert("machine_steal_pct".into(), steal);
        figures.insert("machine_iowait_pct".into(), iowait);
        if steal >= 2.0 {
            notes.push(format!(
                "the hypervisor took {steal:.1}% of this machine's CPU time (steal): every \
                 thread here, the load generator's included, waited for it"
            ));
        }
    }
    match usage.server_cpu_s {
        Some(server) => {
            figures.insert("server_cpu_s".into(), server);
            figures.insert("server_cpu_pct".into(), pct(server));
            if server > 0.0 {
                figures.insert(format!("{work}_per_server_cpu_s"), count / server);
            }
            let both = server + usage.generator_cpu_s;
            if both > 0.0 {
                figures.insert(
                    "generator_share_pct".into(),
                    100.0 * usage.generator_cpu_s / both,
                );
            }
            let busy = 100.0 * both / (usage.wall_s.max(1e-9) * cores);
            figures.insert("machine_busy_pct".into(), busy);
            if busy >= 90.0 {
                notes.push(format!(
                    "the machine was {busy:.0}% busy: server and load generator compete for \
                     {cores} cores; the generator took {:.0}% of the CPU used",
                    100.0 * usage.generator_cpu_s / both
                ));
            }
        }
        None => notes.push(
            "server CPU not measured (no --server-pid; an embedded server's CPU is in the \
             generator's)"
                .into(),
        ),
    }
}

/// Everything one run measured: printed as a table, written as JSON, read back by `report`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// [`SCHEMA`].
    pub schema: u32,
    /// `pairs`, `latency`, `fanout`, `idle` or `sync`.
    pub scenario: String,
    /// `magpie`, `mqtt` or `nats`.
    pub target: String,
    /// The configuration's name in reports (`--label`, default the target).
    pub label: String,
    /// A control run (`--control`): shown beside the others, but neither a peer that ratios are
    /// taken against nor a target's baseline.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub control: bool,
    /// The server address.
    pub addr: String,
    /// What completes a send for this target.
    pub ack: String,
    /// How a fan-out reached its receivers, for the fanout scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<String>,
    /// The scenario's parameters.
    pub params: BTreeMap<String, serde_json::Value>,
    /// The measured figures, by name (units in the name: `_s`, `_ms`, `_pct`, `_kib`, `per_s`).
    pub figures: BTreeMap<String, f64>,
    /// The exactly-once-in-order check, where the scenario has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
    /// Remarks for people: what limits a figure, what was not measured.
    pub notes: Vec<String>,
    /// Clock ticks per second used for the CPU figures.
    pub clk_tck: u64,
    /// Unix time the run ended, seconds.
    pub unix_time: u64,
}

impl Record {
    /// An empty record of `scenario` against `target` (also its label) at `addr`, whose sends
    /// complete on `ack`, ending now.
    pub(crate) fn new(scenario: &str, target: &str, addr: &str, ack: &str) -> Record {
        Record {
            schema: SCHEMA,
            scenario: scenario.to_owned(),
            target: target.to_owned(),
            label: target.to_owned(),
            control: false,
            addr: addr.to_owned(),
            ack: ack.to_owned(),
            mechanism: None,
            params: BTreeMap::new(),
            figures: BTreeMap::new(),
            check: None,
            notes: Vec::new(),
            clk_tck: super::proc::clock_ticks(),
            unix_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// Whether the run passed its check (runs without one pass).
    pub fn ok(&self) -> bool {
        self.check.as_ref().is_none_or(|c| c.ok)
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "magpie-bench {} against {} ({}) at {}",
            self.scenario, self.label, self.target, self.addr
        );
        let _ = writeln!(o, "ack: {}", self.ack);
        if let Some(m) = &self.mechanism {
            let _ = writeln!(o, "fan-out: {m}");
        }
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(o, "params: {}\n", params.join(" "));
        let _ = writeln!(o, "| figure | value |");
        let _ = writeln!(o, "|---|---:|");
        for (k, v) in &self.figures {
            let _ = writeln!(o, "| {k} | {} |", format_figure(*v));
        }
        if let Some(c) = &self.check {
            let _ = writeln!(o, "\n{}", c.summary());
        }
        for n in &self.notes {
            let _ = writeln!(o, "note: {n}");
        }
        o
    }
}

/// A figure with the precision people want: integers for big numbers, 3 decimals for small.
pub(crate) fn format_figure(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Counters a long run reports on stderr once a second.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    /// Sends acknowledged.
    pub(crate) acked: Arc<AtomicU64>,
    /// Messages received.
    pub(crate) received: Arc<AtomicU64>,
}

impl Progress {
    /// Prints `what: acked A/T, received R/T` every second until the guard is dropped.
    pub(crate) fn report(&self, what: &str, total: u64) -> Ticker {
        let this = self.clone();
        let what = what.to_owned();
        Ticker::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let mut secs = 0u64;
            loop {
                tick.tick().await;
                secs += 1;
                eprintln!(
                    "[{secs:>3} s] {what}: acked {}/{total}, received {}/{total}",
                    this.acked.load(Ordering::Relaxed),
                    this.received.load(Ordering::Relaxed)
                );
            }
        })
    }
}

/// Stops a progress report when dropped.
#[derive(Debug)]
pub(crate) struct Ticker(tokio::task::JoinHandle<()>);

impl Ticker {
    /// Runs `report` until the ticker is dropped.
    pub(crate) fn spawn(report: impl Future<Output = ()> + Send + 'static) -> Ticker {
        Ticker(tokio::spawn(report))
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(seqs: &[u64], expected: u64) -> Check {
        let mut t = Tracker::new(expected);
        for &s in seqs {
            t.on(s);
        }
        let mut c = Check::default();
        c.add(&t);
        c
    }

    #[test]
    fn in_order_once_is_ok() {
        let c = check(&[0, 1, 2, 3], 4);
        assert!(c.ok, "{c:?}");
        assert_eq!((c.received, c.missing), (4, 0));
    }

    #[test]
    fn every_fault_is_counted() {
        let c = check(&[0, 2, 1, 1, 9], 4);
        assert!(!c.ok);
        assert_eq!(c.missing, 1, "3 never came");
        assert_eq!(c.duplicates, 1);
        assert_eq!(c.out_of_order, 2, "2 skipped ahead, 1 came late");
        assert_eq!(c.foreign, 1, "9 is out of range");
        let c = check(&[0, 1], 3);
        assert!(!c.ok);
        assert_eq!(c.missing, 1);
    }

    #[test]
    fn latency_figures() {
        let mut h = histogram();
        for ns in [1_000_000u64, 2_000_000, 3_000_000] {
            assert!(h.record(ns).is_ok());
        }
        let mut f = BTreeMap::new();
        add_latency(&mut f, "", &h);
        assert_eq!(f.get("count"), Some(&3.0));
        let p50 = f.get("p50_ms").copied().unwrap_or_default();
        assert!((p50 - 2.0).abs() < 0.01, "{p50}");
    }
}
