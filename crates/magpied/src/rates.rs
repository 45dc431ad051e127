//! [SESSION-6.4]: each user's send rate, over all of the user's sessions together.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use magpie_session::{Bucket, Rate};

/// The fewest buckets kept before the table is pruned.
const MIN_PRUNE_AT: usize = 1024;

/// One bucket per user who sent lately.
///
/// Keyed by a keyed 64-bit hash of (app, user) rather than the strings, so that a SEND allocates
/// nothing here. Two users share a bucket only if their hashes collide, which for N users who
/// sent within the last burst's refill time has a chance of about N²/2⁶⁵ (a random key per
/// process, so nobody can aim for it).
pub(crate) struct SendRates {
    rate: Rate,
    hasher: std::collections::hash_map::RandomState,
    table: Mutex<Table>,
}

struct Table {
    buckets: HashMap<u64, Bucket>,
    /// Prune when the table grows to this size: twice what was left after the last pruning, so
    /// that the work of pruning is spread over the SENDs that grew it.
    prune_at: usize,
}

impl SendRates {
    pub(crate) fn new(rate: Rate) -> SendRates {
        SendRates {
            rate,
            hasher: std::collections::hash_map::RandomState::new(),
            table: Mutex::new(Table {
                buckets: HashMap::new(),
                prune_at: MIN_PRUNE_AT,
            }),
        }
    }

    /// Takes one SEND of `user` at `now`: `Err` with how long until the user may send again.
    pub(crate) fn take(&self, app: &str, user: &str, now: Instant) -> Result<(), Duration> {
        let key = self.hasher.hash_one((app, user));
        // Nothing here can panic half-way through an update that matters: keep serving.
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let taken = table.buckets.entry(key).or_default().take(self.rate, now);
        if table.buckets.len() >= table.prune_at {
            // A full bucket is the same as none: only users still paying off a burst stay.
            table.buckets.retain(|_, b| !b.is_full(now));
            table.prune_at = (table.buckets.len() * 2).max(MIN_PRUNE_AT);
        }
        taken
    }

    /// Users with a bucket kept now (for tests).
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .buckets
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_have_buckets_of_their_own() {
        let rates = SendRates::new(Rate::new(1, 2).unwrap());
        let now = Instant::now();
        for _ in 0..2 {
            rates.take("app", "alice", now).unwrap();
        }
        assert_eq!(rates.take("app", "alice", now), Err(Duration::from_secs(1)));
        rates.take("app", "bob", now).expect("bob has his own");
        rates
            .take("other", "alice", now)
            .expect("another app's alice too");
    }

    #[test]
    fn the_table_keeps_only_users_paying_off_a_burst() {
        let rates = SendRates::new(Rate::new(10, 5).unwrap());
        let t0 = Instant::now();
        // Many users once each, then a second later their buckets are full again.
        for i in 0..MIN_PRUNE_AT - 1 {
            rates.take("app", &format!("u{i}"), t0).unwrap();
        }
        let later = t0 + Duration::from_secs(1);
        rates.take("app", "late", later).unwrap();
        assert_eq!(rates.kept(), 1, "only the user who just sent");
        // A user refused before the pruning is still refused after it.
        for _ in 0..5 {
            rates.take("app", "busy", later).unwrap();
        }
        for i in 0..MIN_PRUNE_AT {
            rates.take("app", &format!("v{i}"), later).unwrap();
        }
        assert!(
            rates.kept() > MIN_PRUNE_AT,
            "nobody to prune: all just sent"
        );
        assert!(rates.take("app", "busy", later).is_err());
    }
}
