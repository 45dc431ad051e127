//! The dedup index's write path: changes kept in memory over a log, and ingested into the
//! `dedup` keyspace in bulk.
//!
//! # Why not a record per message
//!
//! Every new message with a client id must be looked up in the dedup index ([SYNC-5.3]) and
//! recorded in it. Both were searches of the `dedup` keyspace's memtable, a skip list whose
//! keys start with a hash, so every search walked cold nodes: with `magpie-bench pairs`, leaving
//! the two out (an experiment, not a store) raised messages per server CPU-second from about
//! 41,600 to 52,700 (+27%, alternating runs).
//!
//! So a transaction writes its dedup changes as ONE record of the `dedup_log` keyspace, whose
//! keys are increasing numbers (an insert there only walks the list's right edge, which is hot),
//! and the writer keeps them in a hash map ([`DedupTier`]). Once
//! [`StoreConfig::dedup_ingest_entries`](crate::StoreConfig::dedup_ingest_entries) changes have
//! gathered, a thread of their own sorts them into a table that fjall ingests into `dedup`
//! without a memtable, and then deletes the log records they came from. Until the ingestion is
//! done they are answered from memory. On open, the log is replayed into memory.
//!
//! The price is a pause per ingestion: fjall finishes an ingested table under its journal lock,
//! so commits wait for the table's and the version's fsyncs. Writing the filesystem's dirty data
//! out first (`syncfs`, outside the lock) cut that pause from 45-55 ms to 16-19 ms for 65,536
//! changes on the project's 2-core VM. Building the table takes about 3 µs per change on the
//! ingestion thread: what a memtable flush of the old records cost too, only now it is paid
//! once per change, not on top of a cold insert and a cold lookup.
//!
//! # Why this is exact
//!
//! - A lookup asks the newest tier first: this transaction, the changes in memory, the changes
//!   being ingested, then the keyspace as the transaction's snapshot has it. The tier that
//!   ingested last is dropped before the next transaction takes its snapshot, so one of them
//!   always holds an ingested change.
//! - fjall gives an ingested table a sequence number above everything already in the keyspace,
//!   so a later ingestion shadows an earlier one, the way the log orders the changes.
//! - Removals (retention drops the entries of dropped messages) travel the same way, as
//!   tombstones in the log and in the ingested table, never as a direct delete: a direct delete
//!   would be older than a later ingestion of the same log record after a crash, which would
//!   bring the entry back.
//! - A log record is deleted only after the table that holds its changes is ingested. A crash
//!   in between replays records already ingested, which ingests the same values again.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fjall::{Database, Keyspace, PersistMode, Readable, Slice, Snapshot};

use super::journal::Journals;
use crate::StoreError;
use crate::codec::{FORMAT, Reader};
use crate::error::Context;

/// A dedup change: the new record, or `None` for a removal.
pub(super) type Change = Option<Slice>;

/// What a dedup lookup found outside the current transaction.
pub(super) enum Found {
    /// A record, or a removal, not yet ingested.
    InMemory(Change),
    /// Nothing in memory: the keyspace has the answer.
    NotInMemory,
}

/// The dedup changes committed but not yet ingested, owned by the writer.
pub(super) struct DedupTier {
    /// Changes committed since the last ingestion began.
    recent: HashMap<Slice, Change>,
    /// The changes of the ingestion under way (or failed, to be retried).
    ingesting: Option<Ingestion>,
    /// The number of the next log record.
    next_log: u64,
    /// The first log record whose changes are in `recent`.
    recent_from: u64,
    /// Changes in `recent` that start an ingestion.
    ingest_entries: usize,
    /// Where ingestions go.
    target: Target,
}

/// What an ingestion thread writes to.
#[derive(Clone)]
pub(super) struct Target {
    pub(super) db: Database,
    pub(super) dedup: Keyspace,
    pub(super) log: Keyspace,
    pub(super) journals: Arc<Journals>,
}

/// Changes handed to an ingestion thread.
struct Ingestion {
    changes: Arc<HashMap<Slice, Change>>,
    /// The log records these changes came from.
    log: std::ops::Range<u64>,
    /// `None` after a failure: a trigger after `retry_at` tries again.
    thread: Option<JoinHandle<Result<(), StoreError>>>,
    retry_at: Instant,
}

/// The most changes `recent` has room for from the start (it keeps its room when drained).
const MAX_RESERVED: usize = 1 << 17;

/// Log records deleted per batch after an ingestion.
const DELETE_CHUNK: u64 = 1024;

/// How long a failed ingestion waits before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

impl DedupTier {
    /// Replays the log: every change committed and not yet known to be ingested.
    pub(super) fn recover(
        snapshot: &Snapshot,
        target: Target,
        ingest_entries: usize,
    ) -> Result<Self, StoreError> {
        let ingest_entries = ingest_entries.max(1);
        let mut tier = Self {
            // Sized once: growing it rehashes every change again.
            recent: HashMap::with_capacity(ingest_entries.min(MAX_RESERVED)),
            ingesting: None,
            next_log: 0,
            recent_from: 0,
            ingest_entries,
            target,
        };
        let mut first = None;
        for guard in snapshot.iter(&tier.target.log) {
            let (k, v) = guard.into_inner().context("replaying the dedup log")?;
            let n = log_number(&k)?;
            first.get_or_insert(n);
            for (key, change) in decode_log_record(&k, &v)? {
                tier.recent.insert(key, change);
            }
            tier.next_log = n + 1;
        }
        tier.recent_from = first.unwrap_or(0);
        Ok(tier)
    }

    /// The change in memory for `k`, if any: the newest tier first.
    pub(super) fn get(&self, k: &[u8]) -> Found {
        if let Some(change) = self.recent.get(k) {
            return Found::InMemory(change.clone());
        }
        if let Some(change) = self.ingesting.as_ref().and_then(|i| i.changes.get(k)) {
            return Found::InMemory(change.clone());
        }
        Found::NotInMemory
    }

    /// The log record (key and value) for a transaction's `changes`; it commits with them.
    pub(super) fn log_record(&self, changes: &HashMap<Slice, Change>) -> (Vec<u8>, Vec<u8>) {
        (
            self.next_log.to_be_bytes().to_vec(),
            encode_log_record(changes),
        )
    }

    /// Takes in the changes of a transaction that committed with [`Self::log_record`], and
    /// starts an ingestion if enough have gathered and none is under way.
    pub(super) fn committed(&mut self, changes: HashMap<Slice, Change>) {
        self.next_log += 1;
        self.recent.extend(changes);
        match &mut self.ingesting {
            // A failed ingestion is retried first, whatever the size of `recent`, so that
            // tables keep the log's order.
            Some(ing) if ing.thread.is_none() && Instant::now() >= ing.retry_at => {
                ing.thread = spawn_ingestion(&ing.changes, ing.log.clone(), &self.target);
                ing.retry_at = Instant::now() + RETRY_AFTER;
            }
            Some(_) => {}
            None if self.recent.len() >= self.ingest_entries => {
                // Moved, not copied: the commit thread should not pay for the ingestion.
                let changes = Arc::new(std::mem::replace(
                    &mut self.recent,
                    HashMap::with_capacity(self.ingest_entries.min(MAX_RESERVED)),
                ));
                let range = self.recent_from..self.next_log;
                self.recent_from = self.next_log;
                let thread = spawn_ingestion(&changes, range.clone(), &self.target);
                self.ingesting = Some(Ingestion {
                    changes,
                    log: range,
                    thread,
                    retry_at: Instant::now() + RETRY_AFTER,
                });
            }
            None => {}
        }
    }

    /// Drops the changes of a finished ingestion. Called by every transaction before it takes
    /// its snapshot, which then sees the ingested table.
    pub(super) fn settle(&mut self) {
        let Some(ing) = &mut self.ingesting else {
            return;
        };
        if !ing.thread.as_ref().is_some_and(JoinHandle::is_finished) {
            return;
        }
        self.settle_now();
    }

    /// Waits for the ingestion under way, if any, and settles it.
    pub(super) fn settle_now(&mut self) {
        let Some(ing) = &mut self.ingesting else {
            return;
        };
        let Some(thread) = ing.thread.take() else {
            return;
        };
        match thread.join() {
            Ok(Ok(())) => {
                if let Some(done) = self.ingesting.take() {
                    // Freeing a map of this size takes milliseconds, which the commit thread
                    // should not spend with the writer mutex held.
                    let changes = done.changes;
                    let freed = std::thread::Builder::new()
                        .name("magpie-dedup-free".into())
                        .spawn(move || drop(changes));
                    if let Err(e) = freed {
                        tracing::debug!(error = %e, "freeing ingested dedup changes inline");
                    }
                }
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "ingesting dedup entries failed; kept in memory")
            }
            Err(_) => {
                tracing::error!("the dedup ingestion thread panicked; entries kept in memory")
            }
        }
    }

    /// Ingests every change in memory and waits for it (tests; see
    /// [`FjallStore::ingest_dedup_now`](super::FjallStore::ingest_dedup_now)).
    pub(super) fn ingest_now(&mut self) -> Result<(), StoreError> {
        self.settle_now();
        if self.ingesting.is_none() && !self.recent.is_empty() {
            let changes = Arc::new(std::mem::take(&mut self.recent));
            let range = self.recent_from..self.next_log;
            self.recent_from = self.next_log;
            self.ingesting = Some(Ingestion {
                thread: spawn_ingestion(&changes, range.clone(), &self.target),
                changes,
                log: range,
                retry_at: Instant::now() + RETRY_AFTER,
            });
            self.settle_now();
        }
        match self.in_memory() {
            0 => Ok(()),
            n => Err(StoreError::backend(
                "ingesting dedup changes",
                std::io::Error::other(format!("{n} changes are still in memory")),
            )),
        }
    }

    /// Changes not yet ingested (in memory).
    pub(super) fn in_memory(&self) -> usize {
        self.recent.len() + self.ingesting.as_ref().map_or(0, |i| i.changes.len())
    }
}

/// Starts a thread that ingests `changes` and then deletes the log records they came from;
/// `None` if the thread could not start (the next trigger tries again).
fn spawn_ingestion(
    changes: &Arc<HashMap<Slice, Change>>,
    records: std::ops::Range<u64>,
    target: &Target,
) -> Option<JoinHandle<Result<(), StoreError>>> {
    let (changes, target) = (Arc::clone(changes), target.clone());
    let spawned = std::thread::Builder::new()
        .name("magpie-dedup-ingest".into())
        .spawn(move || ingest(&changes, records, &target));
    match spawned {
        Ok(thread) => Some(thread),
        Err(e) => {
            tracing::error!(error = %e, "starting the dedup ingestion thread");
            None
        }
    }
}

/// Writes `changes` into `dedup` as an ingested table, then deletes the log records they came
/// from.
///
/// The journal is fsynced first: a change is in memory once its batch is written, which under
/// load is before its fsync ([`Store::write`](crate::Store::write)), and a table must not make a
/// dedup entry durable whose message a power loss could still take back (a retry would then be
/// answered with a seq that was never kept). The deletions need no fsync of their own: if they
/// are lost, the records are replayed and ingested again, with the same values.
fn ingest(
    changes: &HashMap<Slice, Change>,
    records: std::ops::Range<u64>,
    target: &Target,
) -> Result<(), StoreError> {
    let started = Instant::now();
    super::sync(&target.db, &target.journals)?;
    let synced = started.elapsed();
    // A table is written in key order; the keys of a map are unique.
    let mut sorted: Vec<(&Slice, &Change)> = changes.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut ingestion = target
        .dedup
        .start_ingestion()
        .context("starting a dedup ingestion")?;
    for (k, change) in sorted {
        match change {
            Some(v) => ingestion.write(k.clone(), v.clone()),
            None => ingestion.write_tombstone(k.clone()),
        }
        .context("writing a dedup table")?;
    }
    // fjall holds its journal lock, and so every commit, while it finishes the table, which
    // fsyncs it: the table's data goes to the disk first, so that fsync has little to write.
    presync(target.dedup.path());
    let written = started.elapsed();
    ingestion.finish().context("ingesting a dedup table")?;
    let finished = started.elapsed();
    // In chunks, oldest first, so that commits wait for one chunk at most; a crash part-way
    // leaves the newest records of the range, which replay as the values the table holds.
    let mut first = records.start;
    while first < records.end {
        let end = records.end.min(first.saturating_add(DELETE_CHUNK));
        let mut batch = fjall::OwnedWriteBatch::with_capacity(target.db.clone(), 0)
            .durability(Some(PersistMode::Buffer));
        for n in first..end {
            batch.remove(&target.log, n.to_be_bytes().to_vec());
        }
        batch
            .commit()
            .context("deleting ingested dedup log records")?;
        first = end;
    }
    tracing::debug!(
        changes = changes.len(),
        records = records.end - records.start,
        sync_ms = synced.as_secs_f64() * 1e3,
        write_ms = (written - synced).as_secs_f64() * 1e3,
        finish_ms = (finished - written).as_secs_f64() * 1e3,
        delete_ms = (started.elapsed() - finished).as_secs_f64() * 1e3,
        "ingested dedup changes"
    );
    Ok(())
}

/// Writes the dirty data of the filesystem that holds `path` to the disk (`syncfs`). Only an
/// optimization: a failure is logged, and the fsyncs that durability rests on come after it.
fn presync(path: &std::path::Path) {
    #[cfg(target_os = "linux")]
    {
        let synced = std::fs::File::open(path).and_then(|dir| Ok(rustix::fs::syncfs(&dir)?));
        if let Err(e) = synced {
            tracing::debug!(error = %e, "syncfs before finishing a dedup table");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = path;
}

/// The number of a log record's key.
fn log_number(k: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(k)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::corrupt("dedup log", k, "key is not 8 bytes"))
}

/// A log record: the format byte, then per change a `u32` key length and the key, and a kind
/// byte (0: removal, 1: a `u32` value length and the value follow).
fn encode_log_record(changes: &HashMap<Slice, Change>) -> Vec<u8> {
    let len: usize = changes
        .iter()
        .map(|(k, v)| 9 + k.len() + v.as_ref().map_or(0, |v| v.len()))
        .sum();
    let mut out = Vec::with_capacity(1 + len);
    out.push(FORMAT);
    for (k, change) in changes {
        put_bytes(&mut out, k);
        match change {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                put_bytes(&mut out, v);
            }
        }
    }
    out
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // Keys and values are far below 4 GiB: ids are at most `MAX_ID_LEN` bytes.
    let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b);
}

fn decode_log_record(key: &[u8], value: &[u8]) -> Result<Vec<(Slice, Change)>, StoreError> {
    let mut r = Reader::new(value, "dedup log", key);
    r.format()?;
    let mut changes = Vec::new();
    while !r.is_done() {
        let k = r.bytes32()?;
        let change = match r.u8()? {
            0 => None,
            1 => Some(Slice::from(r.bytes32()?)),
            kind => {
                return Err(StoreError::corrupt(
                    "dedup log",
                    key,
                    format!("change kind {kind}"),
                ));
            }
        };
        changes.push((Slice::from(k), change));
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_records_round_trip_values_and_removals() {
        let mut changes = HashMap::new();
        changes.insert(Slice::from(&b"k1"[..]), Some(Slice::from(&b"v1"[..])));
        changes.insert(Slice::from(&b"k2"[..]), None);
        let encoded = encode_log_record(&changes);
        let mut decoded: HashMap<Slice, Change> = decode_log_record(b"0", &encoded)
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(
            decoded.remove(&b"k1"[..]),
            Some(Some(Slice::from(&b"v1"[..])))
        );
        assert_eq!(decoded.remove(&b"k2"[..]), Some(None));
        assert!(decoded.is_empty());
    }

    #[test]
    fn corrupt_log_records_are_errors_not_panics() {
        let mut changes = HashMap::new();
        changes.insert(Slice::from(&b"key"[..]), Some(Slice::from(&b"value"[..])));
        let encoded = encode_log_record(&changes);
        // Cut inside the one change (a cut right after the format byte is an empty record).
        for cut in 2..encoded.len() {
            assert!(
                decode_log_record(b"0", &encoded[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut bad_kind = encoded.clone();
        bad_kind[1 + 4 + 3] = 7;
        assert!(decode_log_record(b"0", &bad_kind).is_err());
        assert!(log_number(b"short").is_err());
    }
}
