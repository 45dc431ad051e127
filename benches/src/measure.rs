//! A small timing harness for the one-run report: calibrated batches, warm-up, median of repeats.
//!
//! Inputs are prepared outside the timed region (like criterion's `iter_batched`), so a decode is
//! timed on bytes already in memory, as the transport leaves them.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::fixture::BoxError;

/// How long and how often to measure.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// A timed batch lasts at least this long (the batch size is calibrated to reach it).
    pub target_batch: Duration,
    /// Timed batches per case; the median is reported.
    pub repeats: usize,
    /// Upper bound on iterations per batch (bounds setup memory).
    pub max_batch: usize,
    /// Skip calibration and warm-up: two iterations, one batch (tests).
    pub quick: bool,
}

impl Settings {
    /// The release report: 10 ms batches, 21 repeats.
    pub fn full() -> Settings {
        Settings {
            target_batch: Duration::from_millis(10),
            repeats: 21,
            max_batch: 1 << 16,
            quick: false,
        }
    }

    /// Tiny counts for tests: the figures are meaningless, only the code paths run.
    pub fn quick() -> Settings {
        Settings {
            target_batch: Duration::ZERO,
            repeats: 1,
            max_batch: 2,
            quick: true,
        }
    }
}

/// One measured figure.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Timing {
    /// Median nanoseconds per iteration.
    pub ns_per_iter: f64,
    /// Fastest batch, nanoseconds per iteration.
    pub min_ns_per_iter: f64,
    /// Iterations per timed batch.
    pub batch: usize,
}

fn run_batch<S, F, R>(n: usize, setup: &mut S, run: &mut R) -> Result<Duration, BoxError>
where
    S: FnMut() -> F,
    R: FnMut(F) -> Result<usize, BoxError>,
{
    let inputs: Vec<F> = (0..n).map(|_| setup()).collect();
    let start = Instant::now();
    for input in inputs {
        black_box(run(black_box(input))?);
    }
    Ok(start.elapsed())
}

fn calibrate<S, F, R>(settings: &Settings, setup: &mut S, run: &mut R) -> Result<usize, BoxError>
where
    S: FnMut() -> F,
    R: FnMut(F) -> Result<usize, BoxError>,
{
    if settings.quick {
        return Ok(settings.max_batch.max(1));
    }
    // Calibrate (this is also the warm-up), then one more untimed batch at full size.
    let mut n = 1usize;
    loop {
        let elapsed = run_batch(n, setup, run)?;
        if elapsed >= settings.target_batch || n >= settings.max_batch {
            break;
        }
        let scale = settings.target_batch.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
        n = ((n as f64 * scale.clamp(1.5, 10.0)).ceil() as usize).min(settings.max_batch);
    }
    run_batch(n, setup, run)?;
    Ok(n)
}

fn summarize(mut samples: Vec<f64>, batch: usize) -> Timing {
    samples.sort_by(f64::total_cmp);
    Timing {
        ns_per_iter: samples[samples.len() / 2],
        min_ns_per_iter: samples[0],
        batch,
    }
}

fn sample<S, F, R>(n: usize, setup: &mut S, run: &mut R) -> Result<f64, BoxError>
where
    S: FnMut() -> F,
    R: FnMut(F) -> Result<usize, BoxError>,
{
    Ok(run_batch(n, setup, run)?.as_secs_f64() * 1e9 / n as f64)
}

/// Times `run` on inputs made by `setup` (untimed). `run` returns any number, kept alive with
/// `black_box`, or the error that aborts the measurement.
pub fn time<S, F, R>(settings: &Settings, mut setup: S, mut run: R) -> Result<Timing, BoxError>
where
    S: FnMut() -> F,
    R: FnMut(F) -> Result<usize, BoxError>,
{
    let n = calibrate(settings, &mut setup, &mut run)?;
    let mut samples = Vec::with_capacity(settings.repeats.max(1));
    for _ in 0..settings.repeats.max(1) {
        samples.push(sample(n, &mut setup, &mut run)?);
    }
    Ok(summarize(samples, n))
}

/// Times two cases with their batches interleaved (a, b, a, b, ...), so slow drift of the
/// machine (frequency, neighbours) affects both alike: use it for ratios that carry a target.
pub fn time_pair<SA, FA, RA, SB, FB, RB>(
    settings: &Settings,
    (mut setup_a, mut run_a): (SA, RA),
    (mut setup_b, mut run_b): (SB, RB),
) -> Result<(Timing, Timing), BoxError>
where
    SA: FnMut() -> FA,
    RA: FnMut(FA) -> Result<usize, BoxError>,
    SB: FnMut() -> FB,
    RB: FnMut(FB) -> Result<usize, BoxError>,
{
    let na = calibrate(settings, &mut setup_a, &mut run_a)?;
    let nb = calibrate(settings, &mut setup_b, &mut run_b)?;
    let repeats = settings.repeats.max(1);
    let (mut a, mut b) = (Vec::with_capacity(repeats), Vec::with_capacity(repeats));
    for _ in 0..repeats {
        a.push(sample(na, &mut setup_a, &mut run_a)?);
        b.push(sample(nb, &mut setup_b, &mut run_b)?);
    }
    Ok((summarize(a, na), summarize(b, nb)))
}
