//! Rate bounds ([SESSION-6.4], [SESSION-6.6]) as the generic cell rate algorithm (GCRA): a token
//! bucket whose whole state is one instant, the "theoretical arrival time" at which the bucket
//! would be full again. One `Option<Instant>` per bucket keeps an idle connection small (the
//! idle-memory target in `benches/`) and makes a per-user table cheap to prune: a bucket whose
//! instant has passed is full, the same as no bucket at all.
//!
//! Written by hand: the crates that do this (`governor`) keep their state in atomics behind a
//! clock abstraction of their own, while the session cores here take `Instant`s in (sans-IO).

use std::time::{Duration, Instant};

/// A bound of `per_sec` events a second on average, with bursts of up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// The time one event "costs": one second over the rate.
    interval: Duration,
    /// How far ahead of `now` the bucket may be booked: `burst - 1` intervals.
    tolerance: Duration,
}

impl Rate {
    /// The highest rate: one event a nanosecond, the clock's resolution.
    pub const MAX_PER_SEC: u32 = 1_000_000_000;

    /// A bound of `per_sec` events a second (1 to [`Rate::MAX_PER_SEC`]) with bursts of `burst`
    /// (at least 1).
    pub fn new(per_sec: u32, burst: u32) -> Result<Rate, String> {
        if per_sec == 0 || burst == 0 || per_sec > Self::MAX_PER_SEC {
            return Err(format!(
                "a rate needs 1 to {} events a second and a burst of at least 1 (got {per_sec}/s, burst {burst})",
                Self::MAX_PER_SEC
            ));
        }
        Ok(Rate::per_sec_with_burst(per_sec, burst))
    }

    /// [`Rate::new`] for constants.
    ///
    /// # Panics
    ///
    /// If `per_sec` is 0 or past [`Rate::MAX_PER_SEC`], or `burst` is 0 (at compile time in a
    /// constant).
    pub const fn per_sec_with_burst(per_sec: u32, burst: u32) -> Rate {
        assert!(
            per_sec > 0 && per_sec <= Self::MAX_PER_SEC && burst > 0,
            "a rate is 1 to 10^9 a second and its burst at least 1"
        );
        let interval_ns = 1_000_000_000 / per_sec as u64;
        Rate {
            interval: Duration::from_nanos(interval_ns),
            tolerance: Duration::from_nanos(interval_ns * (burst as u64 - 1)),
        }
    }
}

/// The state of one bucket: full when new.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    /// When the bucket is full again; `None` (or a time passed) means full now.
    full_at: Option<Instant>,
}

impl Bucket {
    /// Takes one event at `now`: `Ok` if `rate` allows it, else how long until it would.
    /// A refused event takes nothing.
    pub fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        let booked = self.full_at.map_or(now, |t| t.max(now));
        let ahead = booked - now;
        if ahead > rate.tolerance {
            return Err(ahead - rate.tolerance);
        }
        self.full_at = Some(booked + rate.interval);
        Ok(())
    }

    /// Whether the bucket is full at `now`: it then holds nothing worth keeping.
    pub fn is_full(&self, now: Instant) -> bool {
        self.full_at.is_none_or(|t| t <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let rate = Rate::new(10, 3).unwrap();
        let t0 = Instant::now();
        let mut b = Bucket::default();
        for _ in 0..3 {
            assert_eq!(b.take(rate, t0), Ok(()));
        }
        // The fourth at once waits one interval (100 ms) for a token.
        assert_eq!(b.take(rate, t0), Err(ms(100)));
        assert_eq!(
            b.take(rate, t0 + ms(40)),
            Err(ms(60)),
            "a refusal takes nothing"
        );
        assert_eq!(b.take(rate, t0 + ms(100)), Ok(()));
        assert_eq!(b.take(rate, t0 + ms(100)), Err(ms(100)));
        // Steady at the rate: one every 100 ms passes, forever.
        for i in 2..50 {
            assert_eq!(b.take(rate, t0 + ms(100 * i)), Ok(()), "event {i}");
        }
    }

    #[test]
    fn an_idle_bucket_fills_up_to_the_burst_and_no_further() {
        let rate = Rate::new(10, 3).unwrap();
        let t0 = Instant::now();
        let mut b = Bucket::default();
        assert!(b.is_full(t0));
        b.take(rate, t0).unwrap();
        assert!(!b.is_full(t0));
        assert!(b.is_full(t0 + ms(100)));
        // An hour idle still allows a burst of 3 only.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            b.take(rate, later).unwrap();
        }
        assert!(b.take(rate, later).is_err());
    }

    #[test]
    fn a_burst_of_one_is_a_plain_rate_and_zero_is_refused() {
        let rate = Rate::new(1000, 1).unwrap();
        let t0 = Instant::now();
        let mut b = Bucket::default();
        b.take(rate, t0).unwrap();
        assert_eq!(b.take(rate, t0), Err(ms(1)));
        b.take(rate, t0 + ms(1)).unwrap();
        assert!(Rate::new(0, 5).is_err());
        assert!(Rate::new(5, 0).is_err());
        // Past one a nanosecond the interval would be 0 and bound nothing.
        assert!(Rate::new(Rate::MAX_PER_SEC + 1, 5).is_err());
        let fastest = Rate::new(Rate::MAX_PER_SEC, 1).unwrap();
        let mut b = Bucket::default();
        b.take(fastest, t0 + ms(10)).unwrap();
        assert_eq!(b.take(fastest, t0 + ms(10)), Err(Duration::from_nanos(1)));
    }
}
