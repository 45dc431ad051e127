//! The fjall-backed [`Store`].
//!
//! One fjall database (a single-writer transactional LSM tree with one journal) holds a keyspace
//! per kind of record. Keys are built by [`crate::codec::key`] (a hash, then the components):
//!
//! | keyspace | key | value |
//! |---|---|---|
//! | `messages` | app, conversation, seq | message record |
//! | `conversations` | app, conversation | last_seq, visible_from (\*) |
//! | `dedup` | app, sender, client_msg_id (\*\*) | seq, time, content hash, offsets |
//! | `streams` | app, user | epoch, last_offset (\*) |
//! | `events` | app, user, offset | event record |
//! | `reads` | app, user, conversation | read seq |
//! | `nonces` | app, nonce | expires_at |
//! | `revocations` | app, user | revoked-before time |
//! | `groups` | app, group | name, kind, members with roles and join seqs, pending users |
//! | `memberships` | app, user (\*\*\*) | the user's role in the group |
//! | `meta` | `layout` | the key layout version (the `layout` module) |
//!
//! (\*) Written when the conversation or stream starts and when retention changes it, not on
//! every append: the last seq and the last offset are the larger of the record's and the newest
//! key's (see the `heads` module).
//!
//! (\*\*) The hash covers the app and the sender only ([`codec::dedup_key`]), so that a sender's
//! ids sit together; stores written before that are upgraded on open (the `layout` module).
//!
//! (\*\*\*) Then the group id, outside the hash ([`codec::membership_key`]), so that a user's
//! groups sit together; written with the group record, in the same transaction.
//!
//! Writes run in the transactions of the `heads` module: a snapshot read under the writer mutex
//! and one atomic [`fjall::OwnedWriteBatch`], with the few records a write reads back kept aside, so
//! one group commit can append several messages to the same conversation or stream. A batch of
//! [`Store::commit`] has its journal entry written and (with [`Durability::Immediate`]) fsynced
//! before its changes become visible to readers. A batch of [`Store::write`] is visible once
//! written, before its fsync ([`Store::sync`]): the group committer uses it under load, and
//! readers wait for [`GroupCommitter::settled`](crate::GroupCommitter::settled) before they show
//! what they read. Reads use snapshots.

mod heads;
mod journal;
mod layout;
mod retention;
mod write;

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};

use crate::codec::{self, Reader, key};
use crate::error::Context;
use crate::{
    ConversationInfo, Delivered, Durability, EventKind, GroupRecord, RetentionStats, Store,
    StoreConfig, StoreError, StoredMessage, StreamHead, Write, WriteResult,
};

/// The keyspaces of the database.
struct Keyspaces {
    messages: Keyspace,
    conversations: Keyspace,
    dedup: Keyspace,
    streams: Keyspace,
    events: Keyspace,
    reads: Keyspace,
    nonces: Keyspace,
    revocations: Keyspace,
    groups: Keyspace,
    /// Each user's groups, by user ([GROUP-2.7]).
    memberships: Keyspace,
    /// The store's own records: its key layout version (the `layout` module).
    meta: Keyspace,
}

/// The background fsync thread of [`Durability::Relaxed`].
struct Flusher {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

/// A [`Store`] on the fjall LSM engine, in one directory.
pub struct FjallStore {
    db: Database,
    ks: Keyspaces,
    durability: Durability,
    /// The journals, for [`Store::sync`] and the relaxed mode's background fsync.
    journals: Arc<journal::Journals>,
    flusher: Mutex<Option<Flusher>>,
    /// The heads the writer committed; held for every write transaction.
    writer: Mutex<heads::HeadCache>,
    /// Serializes retention passes.
    retention: Mutex<()>,
    commits: AtomicU64,
}

impl std::fmt::Debug for FjallStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallStore")
            .field("durability", &self.durability)
            .field("commits", &self.commits.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl FjallStore {
    /// Opens (or creates) the store in `config.path`, recovering from the journal after a crash.
    pub fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        std::fs::create_dir_all(&config.path)
            .map_err(|e| StoreError::backend(format!("creating {}", config.path.display()), e))?;
        let db = Database::builder(&config.path)
            .cache_size(config.cache_size)
            .open()
            .context(&format!("opening {}", config.path.display()))?;
        let open = |name: &str| {
            db.keyspace(name, KeyspaceCreateOptions::default)
                .context(&format!("opening keyspace {name}"))
        };
        let ks = Keyspaces {
            messages: open("messages")?,
            conversations: open("conversations")?,
            dedup: open("dedup")?,
            streams: open("streams")?,
            events: open("events")?,
            reads: open("reads")?,
            nonces: open("nonces")?,
            revocations: open("revocations")?,
            groups: open("groups")?,
            memberships: open("memberships")?,
            meta: open("meta")?,
        };
        layout::upgrade(&db, &ks)?;
        let journals = Arc::new(journal::Journals::new(&config.path));
        let flusher = match config.durability {
            Durability::Immediate => None,
            Durability::Relaxed => {
                let (stop, rx) = mpsc::channel::<()>();
                let flush_db = db.clone();
                let interval = config.flush_interval;
                let flush_journals = Arc::clone(&journals);
                let thread = std::thread::Builder::new()
                    .name("magpie-store-flush".into())
                    .spawn(move || {
                        while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(interval) {
                            if let Err(e) = sync(&flush_db, &flush_journals) {
                                tracing::error!(error = %e, "background fsync failed");
                            }
                        }
                    })
                    .map_err(|e| StoreError::backend("starting the flush thread", e))?;
                Some(Flusher { stop, thread })
            }
        };
        Ok(Self {
            db,
            ks,
            durability: config.durability,
            journals,
            flusher: Mutex::new(flusher),
            writer: Mutex::new(heads::HeadCache::default()),
            retention: Mutex::new(()),
            commits: AtomicU64::new(0),
        })
    }

    /// How many transactions [`Store::commit`] has committed since the store was opened.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// How [`Store::commit`] persists its batch: fsynced, or with relaxed durability written to
    /// the operating system for the background fsync.
    fn persist(&self) -> PersistMode {
        match self.durability {
            Durability::Immediate => PersistMode::SyncAll,
            Durability::Relaxed => PersistMode::Buffer,
        }
    }

    /// An empty write batch persisted with `persist`, with room for `records`.
    fn batch(&self, records: usize, persist: PersistMode) -> fjall::OwnedWriteBatch {
        fjall::OwnedWriteBatch::with_capacity(self.db.clone(), records).durability(Some(persist))
    }

    /// The writer's head cache. A panic in a writer cannot leave it wrong (changes enter it only
    /// after their commit), so a poisoned lock is taken over.
    fn writer(&self) -> std::sync::MutexGuard<'_, heads::HeadCache> {
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a write transaction on the locked head cache, sized for about `writes` writes (a
    /// message is about four records). The snapshot is taken after the lock, so it sees every
    /// committed write.
    fn transaction<'a>(
        &'a self,
        cache: &'a mut heads::HeadCache,
        writes: usize,
    ) -> Result<heads::WriteCtx<'a>, StoreError> {
        self.transaction_with(cache, writes, self.persist())
    }

    /// [`Self::transaction`], its batch persisted with `persist`. Refused after a failed fsync:
    /// what reached the disk is unknown, so nothing more is written (every writer starts here).
    fn transaction_with<'a>(
        &'a self,
        cache: &'a mut heads::HeadCache,
        writes: usize,
        persist: PersistMode,
    ) -> Result<heads::WriteCtx<'a>, StoreError> {
        if self.journals.failed() {
            return Err(StoreError::backend(
                "writing",
                std::io::Error::other("an fsync of the journal failed; reopen the store"),
            ));
        }
        Ok(heads::WriteCtx::new(
            &self.ks,
            self.db.snapshot(),
            self.batch(writes * 4, persist),
            writes,
            cache,
        ))
    }

    /// Applies `batch` in one transaction persisted with `persist` ([`Store::commit`] and
    /// [`Store::write`]).
    fn apply_batch(
        &self,
        batch: &[Write],
        persist: PersistMode,
    ) -> Result<Vec<WriteResult>, StoreError> {
        batch.iter().try_for_each(Write::validate)?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let mut cache = self.writer();
        let mut cx = self.transaction_with(&mut cache, batch.len(), persist)?;
        let mut results = Vec::with_capacity(batch.len());
        for w in batch {
            // On error `cx` is dropped, which rolls the whole batch back.
            results.push(write::apply(&mut cx, w, now)?);
        }
        cx.commit("committing a batch")?;
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(results)
    }
}

impl Drop for FjallStore {
    fn drop(&mut self) {
        let flusher = match self.flusher.get_mut() {
            Ok(f) => f.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(Flusher { stop, thread }) = flusher {
            drop(stop);
            let _ = thread.join();
            if let Err(e) = self.db.persist(PersistMode::SyncAll) {
                tracing::error!(error = %e, "final fsync failed");
            }
        }
    }
}

/// Makes every written commit durable: an fsync of the journals without fjall's journal lock
/// (see the `journal` module), or fjall's own persist when no journal is found. After a failed
/// fsync every later commit fails instead of acknowledging what may be lost ("fsyncgate").
fn sync(db: &Database, journals: &journal::Journals) -> Result<(), StoreError> {
    if journals.failed() {
        // What the failed fsync left unsynced is unknown; a later success would prove nothing.
        return Err(StoreError::backend(
            "fsyncing the journal",
            std::io::Error::other("an earlier fsync of the journal failed; reopen the store"),
        ));
    }
    match journals.sync() {
        Ok(n) if n > 0 => Ok(()),
        Ok(_) => db
            .persist(PersistMode::SyncAll)
            .context("fsyncing the journal"),
        Err(e) => {
            // fjall's turn, so that it poisons itself too; the writes are refused either way
            // (`Journals::failed`).
            let _ = db.persist(PersistMode::SyncAll);
            Err(StoreError::backend("fsyncing the journal", e))
        }
    }
}

/// A conversation's info as `r` sees it (the default for an unknown conversation).
///
/// The `conversations` record is written when the conversation starts and when retention moves
/// `visible_from`, not on every append: the last seq is the larger of the record's and the
/// newest message key's.
fn conversation_in(
    r: &impl Readable,
    ks: &Keyspaces,
    app: &str,
    conversation: &str,
) -> Result<ConversationInfo, StoreError> {
    let k = key(&[app, conversation], None);
    let mut info = match get_u64s::<2>(r, &ks.conversations, "conversation", &k)? {
        Some([last_seq, visible_from]) => ConversationInfo {
            last_seq,
            visible_from,
        },
        None => ConversationInfo::default(),
    };
    let newest = last_number_in(r, &ks.messages, "message", app, conversation)?;
    info.last_seq = info.last_seq.max(newest.unwrap_or(0));
    Ok(info)
}

/// A conversation's `visible_from` as `r` sees it (1 for an unknown conversation).
fn visible_from_in(
    r: &impl Readable,
    ks: &Keyspaces,
    app: &str,
    conversation: &str,
) -> Result<u64, StoreError> {
    let k = key(&[app, conversation], None);
    Ok(get_u64s::<2>(r, &ks.conversations, "conversation", &k)?.map_or(1, |[_, vf]| vf))
}

/// A user's stream head as `r` sees it, `None` if the stream does not exist.
///
/// Like conversations, the `streams` record is written when the stream is created and when
/// retention drops events, and the last offset is the larger of the record's and the newest
/// event key's.
fn stream_in(
    r: &impl Readable,
    ks: &Keyspaces,
    app: &str,
    user: &str,
) -> Result<Option<StreamHead>, StoreError> {
    let k = key(&[app, user], None);
    let Some([epoch, last_offset]) = get_u64s::<2>(r, &ks.streams, "stream head", &k)? else {
        return Ok(None);
    };
    let newest = last_number_in(r, &ks.events, "event", app, user)?;
    Ok(Some(StreamHead {
        epoch,
        last_offset: last_offset.max(newest.unwrap_or(0)),
    }))
}

/// The number of the last key of the group `(app, id)` in `ks`.
fn last_number_in(
    r: &impl Readable,
    ks: &Keyspace,
    what: &'static str,
    app: &str,
    id: &str,
) -> Result<Option<u64>, StoreError> {
    let prefix = key(&[app, id], None);
    let range = key(&[app, id], Some(0))..=key(&[app, id], Some(u64::MAX));
    match r.range(ks, range).next_back() {
        Some(guard) => {
            let k = guard.key().context("reading the last key")?;
            trailing_number(what, &prefix, &k).map(Some)
        }
        None => Ok(None),
    }
}

/// A message as `r` sees it.
fn message_in(
    r: &impl Readable,
    ks: &Keyspaces,
    app: &str,
    conversation: &str,
    seq: u64,
) -> Result<Option<StoredMessage>, StoreError> {
    let k = key(&[app, conversation], Some(seq));
    match r.get(&ks.messages, &k).context("reading a message")? {
        Some(v) => codec::decode_message(conversation, seq, &k, &v).map(Some),
        None => Ok(None),
    }
}

/// Reads a record of `N` numbers.
fn get_u64s<const N: usize>(
    r: &impl Readable,
    ks: &Keyspace,
    what: &'static str,
    k: &[u8],
) -> Result<Option<[u64; N]>, StoreError> {
    match r.get(ks, k).context(&format!("reading a {what} record"))? {
        Some(v) => codec::decode_u64s::<N>(what, k, &v).map(Some),
        None => Ok(None),
    }
}

/// The current time in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A random non-zero epoch. Not a secret, only unlikely to repeat: std's randomly keyed SipHash
/// over the time and a counter.
pub(crate) fn new_epoch() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(now_ms());
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        let e = h.finish();
        if e != 0 {
            return e;
        }
    }
}

/// The number at the end of a key that starts with `prefix`.
fn trailing_number(what: &'static str, prefix: &[u8], k: &[u8]) -> Result<u64, StoreError> {
    if k.len() != prefix.len() + 8 || !k.starts_with(prefix) {
        return Err(StoreError::corrupt(
            what,
            k,
            "key outside the scanned range",
        ));
    }
    let mut r = Reader::new(&k[prefix.len()..], what, k);
    r.u64()
}

impl Store for FjallStore {
    fn commit(&self, batch: &[Write]) -> Result<Vec<WriteResult>, StoreError> {
        self.apply_batch(batch, self.persist())
    }

    fn write(&self, batch: &[Write]) -> Result<Vec<WriteResult>, StoreError> {
        // Into the operating system, so that `sync`'s own descriptors cover it.
        self.apply_batch(batch, PersistMode::Buffer)
    }

    fn sync(&self) -> Result<(), StoreError> {
        sync(&self.db, &self.journals)
    }

    fn durability(&self) -> Durability {
        self.durability
    }

    fn stream(&self, app: &str, user: &str) -> Result<Option<StreamHead>, StoreError> {
        stream_in(&self.db.snapshot(), &self.ks, app, user)
    }

    fn read_events(
        &self,
        app: &str,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Delivered>, StoreError> {
        let Some(first) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        let prefix = key(&[app, user], None);
        let snap = self.db.snapshot();
        let range = key(&[app, user], Some(first))..=key(&[app, user], Some(u64::MAX));
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut visible = std::collections::HashMap::<String, u64>::new();
        for guard in snap.range(&self.ks.events, range).take(limit) {
            let (k, v) = guard.into_inner().context("scanning events")?;
            let offset = trailing_number("event", &prefix, &k)?;
            let kind = codec::decode_event(&k, &v)?;
            let message = match &kind {
                EventKind::Message { conversation, seq } => {
                    let vf = match visible.get(conversation) {
                        Some(vf) => *vf,
                        None => {
                            let vf =
                                conversation_in(&snap, &self.ks, app, conversation)?.visible_from;
                            visible.insert(conversation.clone(), vf);
                            vf
                        }
                    };
                    if *seq < vf {
                        None
                    } else {
                        message_in(&snap, &self.ks, app, conversation, *seq)?
                    }
                }
                EventKind::Read { .. } => None,
            };
            out.push(Delivered {
                offset,
                kind,
                message,
            });
        }
        Ok(out)
    }

    fn history(
        &self,
        app: &str,
        conversation: &str,
        from: u64,
        backward: bool,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let snap = self.db.snapshot();
        let info = conversation_in(&snap, &self.ks, app, conversation)?;
        let (lo, hi) = if backward {
            let hi = if from == 0 {
                info.last_seq
            } else {
                from.min(info.last_seq)
            };
            (info.visible_from, hi)
        } else {
            (from.max(info.visible_from), info.last_seq)
        };
        if lo > hi || limit == 0 {
            return Ok(Vec::new());
        }
        let prefix = key(&[app, conversation], None);
        let range = key(&[app, conversation], Some(lo))..=key(&[app, conversation], Some(hi));
        let iter = snap.range(&self.ks.messages, range);
        let iter: Box<dyn Iterator<Item = fjall::Guard>> = if backward {
            Box::new(iter.rev())
        } else {
            Box::new(iter)
        };
        let mut out = Vec::with_capacity(limit.min(1024));
        for guard in iter.take(limit) {
            let (k, v) = guard.into_inner().context("scanning messages")?;
            let seq = trailing_number("message", &prefix, &k)?;
            out.push(codec::decode_message(conversation, seq, &k, &v)?);
        }
        Ok(out)
    }

    fn conversation(&self, app: &str, conversation: &str) -> Result<ConversationInfo, StoreError> {
        conversation_in(&self.db.snapshot(), &self.ks, app, conversation)
    }

    fn read_seq(&self, app: &str, user: &str, conversation: &str) -> Result<u64, StoreError> {
        let k = key(&[app, user, conversation], None);
        let snap = self.db.snapshot();
        Ok(get_u64s::<1>(&snap, &self.ks.reads, "read marker", &k)?.map_or(0, |[s]| s))
    }

    fn group(&self, app: &str, group: &str) -> Result<Option<GroupRecord>, StoreError> {
        let k = key(&[app, group], None);
        let snap = self.db.snapshot();
        match snap.get(&self.ks.groups, &k).context("reading a group")? {
            Some(v) => crate::groups::decode(&k, &v).map(Some),
            None => Ok(None),
        }
    }

    fn user_groups(
        &self,
        app: &str,
        user: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, crate::GroupRole)>, StoreError> {
        use std::ops::Bound;
        if after.len() > codec::MAX_ID_LEN {
            // A key past fjall's 64 KiB would not even be a bound.
            return Err(StoreError::InvalidInput(format!(
                "after is {} bytes, the store's limit is {}",
                after.len(),
                codec::MAX_ID_LEN
            )));
        }
        let prefix = key(&[app, user], None);
        // Length-prefixed components make the prefix end where the user's keys diverge from
        // any other's, hash collisions included.
        let start = if after.is_empty() {
            prefix.clone()
        } else {
            codec::membership_key(app, user, after)
        };
        let snap = self.db.snapshot();
        let mut out = Vec::with_capacity(limit.min(128));
        let range = (Bound::Excluded(start), Bound::Unbounded);
        for guard in snap.range(&self.ks.memberships, range) {
            if out.len() == limit {
                break;
            }
            let (k, v) = guard.into_inner().context("scanning memberships")?;
            let Some(rest) = k.strip_prefix(&prefix[..]) else {
                break;
            };
            let mut r = Reader::new(rest, "membership", &k);
            let group = r.str()?;
            r.end()?;
            let role = match v.first().copied().and_then(crate::GroupRole::from_u8) {
                Some(role) if v.len() == 1 => role,
                _ => return Err(StoreError::corrupt("membership", &k, "not a role")),
            };
            out.push((group, role));
        }
        Ok(out)
    }

    fn revoked_before(&self, app: &str, user: &str) -> Result<u64, StoreError> {
        let k = key(&[app, user], None);
        let snap = self.db.snapshot();
        Ok(get_u64s::<1>(&snap, &self.ks.revocations, "revocation", &k)?.map_or(0, |[t]| t))
    }

    fn apply_retention(
        &self,
        now_ms: u64,
        max_age_ms: u64,
        max_count: u64,
    ) -> Result<RetentionStats, StoreError> {
        retention::apply(self, now_ms, max_age_ms, max_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sync` finds fjall's journal where it expects it (if fjall moves it, this fails and
    /// `sync` falls back to `Database::persist`).
    #[test]
    fn the_journal_is_found_and_synced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = StoreConfig::new(dir.path());
        config.durability = Durability::Relaxed;
        let store = FjallStore::open(&config).expect("open");
        store
            .commit(&[Write::Revoke {
                app: "app".into(),
                user: "u".into(),
                at: 1,
            }])
            .expect("commit");
        assert!(store.journals.sync().expect("sync") >= 1);
    }
}
