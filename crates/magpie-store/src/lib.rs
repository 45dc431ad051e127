//! Durable storage for the Magpie reference server `magpied`.
//!
//! Per app, the store keeps each conversation's message log with a gap-free sequence, each user's
//! event stream, the dedup index of client message ids, read markers, used login-token nonces and
//! each user's revocation time. The session code talks to the [`Store`] trait, so that another
//! backend (PostgreSQL) can be added without changing it; [`open`] gives the embedded one,
//! [`FjallStore`].
//!
//! The server acks a SEND only after its write is durable, and reaches throughput by group
//! commit: [`GroupCommitter`] merges the writes of concurrent sessions into one transaction, and
//! under load writes the next transaction while the previous one is fsynced ([`Store::write`],
//! [`Store::sync`]).
//!
//! # Semantics worth knowing
//!
//! - **Epochs.** A user's stream gets its random non-zero epoch when it is created: by the first
//!   event written to it, or by [`Write::OpenStream`], which a server commits before it shows a
//!   user their stream's head, so that the epoch a client sees never changes.
//! - **Time.** A message stored with `time_ms == 0` is stamped with the system clock. Nonce
//!   expiry is checked against the system clock.
//! - **Retention** ([`Store::apply_retention`]) drops the events that point at dropped messages
//!   (and read events pointing below `visible_from`), so [`Store::read_events`] skips them: the
//!   offsets simply have holes. Should an event outlive its message anyway (a crash in the
//!   middle of a retention pass), it is delivered with `message: None`. Dedup entries go with
//!   their messages, so a client retrying after its message was purged stores it anew.
//!
//! # Choice of engine
//!
//! fjall (an LSM tree with a journal), chosen over redb (a copy-on-write B-tree) and SQLite (WAL
//! mode, `synchronous = FULL`) by `examples/engine-bench.rs`:
//!
//! ```sh
//! cargo run --release -p magpie-store --features engine-bench --example engine-bench
//! ```
//!
//! It runs on this project's machine (2 cores, a VM disk) with an fsync on every commit, one write
//! being a 200-byte message record plus two small event records, 3 s per case. A quiet run:
//!
//! | engine | writes/commit | commits/s | writes/s | p50 commit | p99 commit |
//! |---|---:|---:|---:|---:|---:|
//! | redb | 1 | 1081 | 1081 | 0.84 ms | 3.60 ms |
//! | fjall | 1 | 3540 | 3540 | 0.19 ms | 0.54 ms |
//! | sqlite | 1 | 2465 | 2465 | 0.29 ms | 2.84 ms |
//! | redb | 16 | 543 | 8687 | 1.84 ms | 3.01 ms |
//! | fjall | 16 | 1507 | 24114 | 0.51 ms | 3.66 ms |
//! | sqlite | 16 | 612 | 9799 | 1.10 ms | 20.26 ms |
//! | redb | 128 | 106 | 13545 | 9.36 ms | 16.96 ms |
//! | fjall | 128 | 371 | 47463 | 2.36 ms | 3.46 ms |
//! | sqlite | 128 | 93 | 11862 | 7.01 ms | 39.05 ms |
//!
//! The disk's fsync time varies a lot with the host's load: in a run while other builds were
//! running it was about 4 ms, and batches of 128 gave fjall 17,790–29,394 writes/s against redb's
//! 6,727–7,565 and SQLite's 7,866–11,578. The order never changed.
//!
//! fjall wins the case that matters, durable group commit, because a commit appends the batch to
//! one journal file and fsyncs it, so a batch of 128 costs little more than a batch of 1; redb
//! writes and syncs every B-tree page the batch touched (a batch spread over many conversations
//! and streams touches many pages), and SQLite's WAL appends whole pages too. Also weighed:
//!
//! - *Crash safety*: fjall's journal is checksummed and replayed on open, and a failed fsync
//!   poisons the database so that nothing is acked after it (the PostgreSQL "fsyncgate" lesson).
//!   `tests/crash.rs` kills a committing process with SIGKILL and finds every acked write.
//! - *Relaxed durability*: fjall can hand each commit to the OS (so it survives a process crash)
//!   and fsync in the background. redb's non-durable commits are lost with the process.
//! - *Cost*: fjall brings about 45 crates (many of them already in the workspace through tokio)
//!   and took 66 s to build from scratch in release here, against redb's 0 crates and 43 s. It also
//!   runs background flush and compaction threads. The throughput is worth that.
//!
//! # Throughput
//!
//! `examples/commit-throughput.rs` has N tasks submit 1:1 messages through a [`GroupCommitter`]
//! and wait for each ack. Durable, in the same quiet period as the table above:
//!
//! | submitters | commits/s | writes/s | mean batch | p50 ack | p99 ack |
//! |---:|---:|---:|---:|---:|---:|
//! | 1 | 2615 | 2615 | 1.0 | 0.28 ms | 0.96 ms |
//! | 8 | 1425 | 8316 | 5.8 | 0.75 ms | 4.99 ms |
//! | 64 | 376 | 14195 | 37.7 | 4.22 ms | 15.66 ms |
//! | 256 | 122 | 20890 | 170.9 | 11.73 ms | 23.86 ms |
//! | 1024 | 77 | 19832 | 256.0 | 48.77 ms | 187.64 ms |
//!
//! With large batches the commit thread is CPU-bound, not fsync-bound: `Durability::Relaxed` (no
//! fsync) reaches only about 24,000 writes/s. Most of the time goes into inserting into fjall's
//! memtable skip list; a write inserts one message record, one event per participant and one
//! dedup entry. Two design choices come from profiling this: keys start with a hash (see the
//! `codec` module), and conversation and stream heads are derived and cached instead of being
//! rewritten on every append (see the `engine::heads` module). Together they took the CPU time of
//! a write from about 80 µs to about 49 µs (single-threaded relaxed commits of 128 writes).

mod codec;
mod committer;
mod engine;
mod error;
mod groups;
mod types;

use std::sync::Arc;

pub use codec::{MAX_ID_LEN, MAX_TEXT_LEN};
pub use committer::{CommitterStats, GroupCommitter};
pub use engine::FjallStore;
pub use error::StoreError;
pub use groups::{
    GroupDenied, GroupMember, GroupNotice, GroupOp, GroupRecord, GroupRole, InfoChange, NoticeKind,
    Silence,
};
pub use types::{
    ConversationInfo, Delivered, Durability, EventKind, GroupChange, NoticeRenderer,
    RetentionStats, StoreConfig, StoredEvent, StoredMessage, StreamHead, Write, WriteResult,
};

/// A Magpie store. Every method may be called from any thread; writes are serialized inside.
pub trait Store: Send + Sync + 'static {
    /// Applies the writes in order in ONE durable transaction (group commit); result `i` answers
    /// write `i`. Returns only after the data is on disk (per the configured [`Durability`]).
    /// Says nothing of earlier [`Store::write`]s: a batch that changes nothing may need no fsync.
    /// If any write is invalid ([`Write::validate`]) or the engine fails, nothing is applied.
    fn commit(&self, batch: &[Write]) -> Result<Vec<WriteResult>, StoreError>;

    /// Applies the writes like [`Store::commit`], but returns once they are written to the
    /// operating system, before they are durable: a crash of the process loses nothing, a power
    /// loss may lose them until [`Store::sync`] returns. Readers see them at once, so a caller
    /// must not show what a read returns before a `sync` that began after the read
    /// ([`GroupCommitter::settled`] does this for the server).
    fn write(&self, batch: &[Write]) -> Result<Vec<WriteResult>, StoreError>;

    /// Makes every [`Store::write`] that returned before this call durable (fsync). After one
    /// failure it fails for good: what that fsync left unsynced is unknown.
    fn sync(&self) -> Result<(), StoreError>;

    /// The durability the store was opened with.
    fn durability(&self) -> Durability;

    /// The user's stream head, `None` if the stream does not exist yet ([`Write::OpenStream`]
    /// creates it; so does the first event for the user).
    fn stream(&self, app: &str, user: &str) -> Result<Option<StreamHead>, StoreError>;

    /// Events with offset > `after`, in order, at most `limit`, joined with their messages.
    /// Events dropped by retention are skipped (the offsets have holes).
    fn read_events(
        &self,
        app: &str,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Delivered>, StoreError>;

    /// A page of a conversation: seqs from `from` (inclusive) upward, or downward if `backward`
    /// (`from = 0` with `backward` means from the last seq); never below `visible_from`; at most
    /// `limit` messages.
    fn history(
        &self,
        app: &str,
        conversation: &str,
        from: u64,
        backward: bool,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError>;

    /// The conversation's last seq and `visible_from` (`{0, 1}` for an unknown conversation).
    fn conversation(&self, app: &str, conversation: &str) -> Result<ConversationInfo, StoreError>;

    /// The user's read marker in the conversation, 0 if never set.
    fn read_seq(&self, app: &str, user: &str, conversation: &str) -> Result<u64, StoreError>;

    /// The group `group` of the app, `None` if it was never created (a dismissed group is kept,
    /// marked dismissed).
    fn group(&self, app: &str, group: &str) -> Result<Option<GroupRecord>, StoreError>;

    /// Up to `limit` of the groups `user` is a member of, with their role, in the store's order
    /// from just after group `after` (empty: from the start) ([GROUP-2.7]).
    fn user_groups(
        &self,
        app: &str,
        user: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, GroupRole)>, StoreError>;

    /// The user's "revoked before" time (Unix seconds), 0 if never revoked.
    fn revoked_before(&self, app: &str, user: &str) -> Result<u64, StoreError>;

    /// Retention over every conversation of every app: drops messages older than
    /// `now_ms - max_age_ms` (`max_age_ms = 0`: no age limit) and beyond the newest `max_count`
    /// (`0`: no count limit), advancing `visible_from`; drops the events that point below
    /// `visible_from` and the dedup entries of dropped messages; drops expired nonces. Age is
    /// judged from the oldest message up and stops at the first young one, so `visible_from`
    /// never skips a message that is still young.
    fn apply_retention(
        &self,
        now_ms: u64,
        max_age_ms: u64,
        max_count: u64,
    ) -> Result<RetentionStats, StoreError>;
}

/// Opens (or creates) the embedded store described by `config`.
pub fn open(config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(FjallStore::open(config)?))
}
