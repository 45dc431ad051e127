//! `disk`: how long an fsync takes on the disk under a durable store, measured in the same run
//! as the scenarios, so that the durable latency figures can be read against it.
//!
//! The probe appends `bytes` to a fresh file in `dir` (put it on the data directory's
//! filesystem) and fsyncs after each append, as a busy group committer does with its journal:
//! `fsync(2)`, like magpied's journal sync, which also writes the grown file's size. Back to back
//! by default; with a `rate`, paced instead (`rate` a second), to keep a disk as busy as a durable
//! server keeps it beside some other program under test. It runs for `duration` (slow fsyncs come
//! in bursts seconds apart, so a probe of a few hundred milliseconds can miss them all) or
//! `syncs` calls, whichever ends first, and removes the file.
//!
//! What the back-to-back figures bound: magpied's group committer runs one fsync at a time, and
//! a write that arrives while one is in flight waits for it to finish and then for its own. If
//! writes arrive independently of the fsyncs (open loop) while one is always in flight, a write
//! waits longer than a bound `b` whenever it lands in the first `d - b` of an fsync of length
//! `d > b`; so the share of fsync time past `b`, `Σ max(0, d - b) / Σ d`, is a floor under the
//! share of writes slower than `b`, provided the server's fsyncs are no faster than the probe's
//! on the same disk at that time. A store that ran several fsyncs at once, or fsynced less of
//! the file, would not be bound by it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::stats::{Record, add_latency, histogram};

/// The scenario, target and label of the probe's records.
pub(crate) const NAME: &str = "disk";

/// The bound the report reads the probe against: the durable p99 target.
pub(crate) const BOUND: Duration = Duration::from_millis(2);

/// The figure of [`Beyond::calls_pct`] (its name says [`BOUND`]).
pub(crate) const OVER_BOUND_CALLS_PCT: &str = "fsync_over_2ms_calls_pct";

/// The figure of [`Beyond::time_pct`] (its name says [`BOUND`]).
pub(crate) const BEYOND_BOUND_TIME_PCT: &str = "fsync_beyond_2ms_time_pct";

/// Parameters of a probe.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// Directory to write the probe's file in.
    pub(crate) dir: PathBuf,
    /// fsync calls at most.
    pub(crate) syncs: u64,
    /// Bytes appended before each fsync.
    pub(crate) bytes: usize,
    /// How long to probe.
    pub(crate) duration: Duration,
    /// fsyncs a second, paced; 0: back to back.
    pub(crate) rate: f64,
}

/// How much of a run of fsyncs went past `bound`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Beyond {
    /// Calls that took longer than the bound, % of calls.
    pub(crate) calls_pct: f64,
    /// Time spent in fsyncs beyond the bound (each call's duration less the bound, where
    /// positive), % of the time spent in fsyncs: for back-to-back fsyncs, the floor described in
    /// the module docs.
    pub(crate) time_pct: f64,
}

/// [`Beyond`] of `durations`.
pub(crate) fn beyond(durations: &[Duration], bound: Duration) -> Beyond {
    let total: Duration = durations.iter().sum();
    if durations.is_empty() || total.is_zero() {
        return Beyond {
            calls_pct: 0.0,
            time_pct: 0.0,
        };
    }
    let over = durations.iter().filter(|d| **d > bound).count();
    let past: Duration = durations.iter().map(|d| d.saturating_sub(bound)).sum();
    Beyond {
        calls_pct: 100.0 * over as f64 / durations.len() as f64,
        time_pct: 100.0 * past.as_secs_f64() / total.as_secs_f64(),
    }
}

/// Runs the probe.
pub(crate) fn disk(p: &Params) -> Result<Record> {
    if p.syncs == 0 || p.bytes == 0 {
        bail!("disk needs at least one fsync (--syncs) of at least one byte (--bytes)");
    }
    if p.rate < 0.0 || !p.rate.is_finite() {
        bail!("--rate is fsyncs a second, 0 for back to back");
    }
    let interval = match p.rate {
        0.0 => None,
        rate => Some(
            Duration::try_from_secs_f64(1.0 / rate)
                .with_context(|| format!("--rate {rate} is too small to pace"))?,
        ),
    };
    let path = probe_path(&p.dir);
    let (durations, wall) = {
        let mut file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        // Only once the file is ours: a name taken already is left alone.
        let _remove = RemoveOnDrop(&path);
        let chunk = vec![0x5a_u8; p.bytes];
        let start = Instant::now();
        let mut durations = Vec::new();
        while (durations.len() as u64) < p.syncs && start.elapsed() < p.duration {
            if let Some(interval) = interval {
                // Due times from the start, so that a slow fsync is followed by quicker ones
                // instead of lowering the rate; never past the end of the probe.
                let n = u32::try_from(durations.len()).unwrap_or(u32::MAX);
                let due = interval.saturating_mul(n).min(p.duration);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                    continue;
                }
            }
            file.write_all(&chunk)
                .with_context(|| format!("appending to {}", path.display()))?;
            let t = Instant::now();
            file.sync_all()
                .with_context(|| format!("fsyncing {}", path.display()))?;
            durations.push(t.elapsed());
        }
        (durations, start.elapsed())
    };
    if durations.is_empty() {
        bail!("no fsync completed in the probe's {:?}", p.duration);
    }
    let mut h = histogram();
    for d in &durations {
        let _ = h.record(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1));
    }
    let b = beyond(&durations, BOUND);
    let mut rec = Record::new(
        NAME,
        NAME,
        &p.dir.display().to_string(),
        "fsync(2) after each append",
    );
    rec.params = BTreeMap::from([
        ("syncs".into(), json!(p.syncs)),
        ("bytes".into(), json!(p.bytes)),
        ("duration_s".into(), json!(p.duration.as_secs_f64())),
        ("rate".into(), json!(p.rate)),
    ]);
    let f = &mut rec.figures;
    add_latency(f, "fsync_", &h);
    f.insert("wall_s".into(), wall.as_secs_f64());
    // 0: back to back. A figure, so that `report` can tell paced probes from the others.
    f.insert("paced_per_s".into(), p.rate);
    f.insert(
        "fsyncs_per_s".into(),
        durations.len() as f64 / wall.as_secs_f64().max(1e-9),
    );
    f.insert(OVER_BOUND_CALLS_PCT.into(), b.calls_pct);
    f.insert(BEYOND_BOUND_TIME_PCT.into(), b.time_pct);
    if interval.is_none() && b.time_pct > 1.0 {
        rec.notes.push(format!(
            "{:.1}% of the fsync time went past {} ms: a server that runs one fsync at a time \
             on this disk, under a load that keeps one in flight, has more than 1% of its writes \
             slower than that",
            b.time_pct,
            BOUND.as_millis()
        ));
    }
    Ok(rec)
}

/// A file name in `dir` no other probe uses.
fn probe_path(dir: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    dir.join(format!(
        "magpie-bench-disk-{}-{nanos:09}.probe",
        std::process::id()
    ))
}

/// Removes the probe's file however the probe ends.
struct RemoveOnDrop<'a>(&'a Path);

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_millis(*m)).collect()
    }

    #[test]
    fn figure_names_say_the_bound() {
        let ms = format!("_{}ms_", BOUND.as_millis());
        assert!(OVER_BOUND_CALLS_PCT.contains(&ms));
        assert!(BEYOND_BOUND_TIME_PCT.contains(&ms));
    }

    #[test]
    fn beyond_counts_calls_over_and_the_time_past_the_bound() {
        // 1 + 1 + 1 + 7 = 10 ms of fsyncs; one call over 2 ms, 5 ms of it past the bound.
        let b = beyond(&ms(&[1, 1, 1, 7]), BOUND);
        assert_eq!(b.calls_pct, 25.0);
        assert!((b.time_pct - 50.0).abs() < 1e-9, "{b:?}");
        // A call of exactly the bound is not over it.
        assert_eq!(beyond(&ms(&[2, 2]), BOUND).calls_pct, 0.0);
        assert_eq!(beyond(&[], BOUND).time_pct, 0.0);
    }

    #[test]
    fn probe_writes_a_record_and_removes_its_file() {
        let dir = std::env::temp_dir().join(format!("magpie-disk-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let rec = disk(&Params {
            dir: dir.clone(),
            syncs: 20,
            bytes: 512,
            duration: Duration::from_secs(30),
            rate: 0.0,
        })
        .expect("probe");
        assert_eq!(rec.scenario, NAME);
        assert_eq!(rec.figures.get("fsync_count"), Some(&20.0));
        assert!(rec.figures["fsync_p50_ms"] > 0.0);
        assert!(rec.figures.contains_key(BEYOND_BOUND_TIME_PCT));
        let left: Vec<_> = std::fs::read_dir(&dir).expect("list").collect();
        assert!(left.is_empty(), "the probe left {left:?}");
        let paced = disk(&Params {
            dir: dir.clone(),
            syncs: 1000,
            bytes: 512,
            duration: Duration::from_millis(300),
            rate: 20.0,
        })
        .expect("paced probe");
        // 20 a second for 0.3 s: due at 0, 50, ..., 250 ms.
        assert_eq!(paced.figures.get("fsync_count"), Some(&6.0), "{paced:?}");
        let _ = std::fs::remove_dir(&dir);
        let bad = |dir: PathBuf, duration: Duration, rate: f64| {
            disk(&Params {
                dir,
                syncs: 1,
                bytes: 1,
                duration,
                rate,
            })
            .is_err()
        };
        assert!(bad(dir.join("missing"), Duration::from_secs(1), 0.0));
        assert!(
            bad(std::env::temp_dir(), Duration::ZERO, 0.0),
            "no fsync, no record"
        );
        assert!(
            bad(std::env::temp_dir(), Duration::from_secs(1), 1e-300),
            "unpaceable"
        );
        assert!(bad(std::env::temp_dir(), Duration::from_secs(1), -1.0));
    }
}
