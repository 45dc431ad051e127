//! The writer's cache of conversation and stream heads, and the write transaction that uses it.
//!
//! Every append moves its conversation's head and the head of each participant's stream. Reading
//! them from the LSM tree, and writing a new version of each head record per append (each one
//! another entry for the same key in the memtable's skip list), was most of the CPU time of a
//! commit. So the heads are derived from the newest message or event key plus a record written
//! only when a conversation or stream starts and when retention changes it (see
//! `conversation_in` and `stream_in`), and the writer keeps them in memory.
//!
//! Changes made in a transaction are kept aside and enter the cache only once the transaction
//! has committed, so a failed commit leaves the cache as it was. All writers (commits and
//! retention) hold the cache's mutex for the whole transaction, which keeps the cache equal to
//! what the engine holds.
//!
//! # Why not fjall's transactions
//!
//! A transaction is a snapshot taken under the writer mutex plus a [`fjall::OwnedWriteBatch`], which
//! fjall commits atomically (one journal entry, fsynced before any of it becomes visible unless
//! the batch is a [`Store::write`](crate::Store::write), synced afterwards). fjall's
//! own single-writer transactions gave the same guarantees but put every write into a
//! transaction-local skip list first and into the keyspace's memtable at commit, inserting each
//! record twice; that second skip list was a fifth of a commit's CPU time. The only records a
//! write reads back before its batch commits are the dedup, read-marker and nonce records of
//! earlier writes in the same batch (a retried SEND, two READs, a replayed token), and the heads,
//! which have their own cache; [`Overlay`] keeps those few by key.

use std::collections::HashMap;

use fjall::{Keyspace, OwnedWriteBatch as WriteBatch, Readable, Slice, Snapshot};

use super::{Keyspaces, conversation_in, stream_in};
use crate::codec::{self, key};
use crate::error::Context;
use crate::{ConversationInfo, StoreError, StreamHead};

/// Entries per map beyond which the cache is emptied (about 100 bytes each).
const CACHE_LIMIT: usize = 1 << 18;

/// Committed heads by key.
#[derive(Default)]
pub(super) struct HeadCache {
    conversations: HashMap<Vec<u8>, ConversationInfo>,
    streams: HashMap<Vec<u8>, StreamHead>,
}

fn put<V>(map: &mut HashMap<Vec<u8>, V>, k: Vec<u8>, v: V) {
    if map.len() >= CACHE_LIMIT {
        map.clear();
    }
    map.insert(k, v);
}

/// The records a transaction reads back after writing them (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Tracked {
    /// `dedup`: a retry in the same batch as its first send.
    Dedup,
    /// `reads`: two READs of one conversation in the same batch.
    Reads,
    /// `nonces`: a token replayed in the same batch.
    Nonces,
    /// `groups`: two changes to, or a change and a SEND to, one group in the same batch.
    Groups,
}

/// What this transaction wrote to tracked records, by kind and key: `None` for a removal. Keys
/// and values are the batch's own (`Slice` clones share their bytes).
#[derive(Default)]
struct Overlay([HashMap<Slice, Option<Slice>>; 4]);

impl Overlay {
    fn of(&self, which: Tracked) -> &HashMap<Slice, Option<Slice>> {
        &self.0[which as usize]
    }

    fn set(&mut self, which: Tracked, k: Slice, v: Option<Slice>) {
        self.0[which as usize].insert(k, v);
    }
}

/// A write transaction that reads heads through the cache: a snapshot taken under the writer
/// mutex, the batch of writes, and the overlay of tracked records written so far.
pub(super) struct WriteCtx<'a> {
    pub(super) ks: &'a Keyspaces,
    snapshot: Snapshot,
    batch: WriteBatch,
    overlay: Overlay,
    cache: &'a mut HeadCache,
    pending: HeadCache,
}

impl<'a> WriteCtx<'a> {
    /// A transaction reading `snapshot` (taken after the writer mutex behind `cache` was locked,
    /// so that it sees every committed write) and writing `batch`.
    /// `writes` sizes the dedup overlay (one entry per message sent).
    pub(super) fn new(
        ks: &'a Keyspaces,
        snapshot: Snapshot,
        batch: WriteBatch,
        writes: usize,
        cache: &'a mut HeadCache,
    ) -> Self {
        let mut overlay = Overlay::default();
        overlay.0[Tracked::Dedup as usize].reserve(writes);
        Self {
            ks,
            snapshot,
            batch,
            overlay,
            cache,
            pending: HeadCache::default(),
        }
    }

    fn keyspace(&self, which: Tracked) -> &'a Keyspace {
        match which {
            Tracked::Dedup => &self.ks.dedup,
            Tracked::Reads => &self.ks.reads,
            Tracked::Nonces => &self.ks.nonces,
            Tracked::Groups => &self.ks.groups,
        }
    }

    /// A tracked record as this transaction sees it.
    pub(super) fn get(&self, which: Tracked, k: &[u8]) -> Result<Option<Slice>, StoreError> {
        if let Some(v) = self.overlay.of(which).get(k) {
            return Ok(v.clone());
        }
        self.snapshot
            .get(self.keyspace(which), k)
            .context("reading a record")
    }

    /// Writes a tracked record.
    pub(super) fn put(&mut self, which: Tracked, k: Vec<u8>, v: Vec<u8>) {
        let (k, v) = (Slice::from(k), Slice::from(v));
        self.batch
            .insert(self.keyspace(which), k.clone(), v.clone());
        self.overlay.set(which, k, Some(v));
    }

    /// Removes a tracked record.
    pub(super) fn delete(&mut self, which: Tracked, k: Vec<u8>) {
        let k = Slice::from(k);
        self.batch.remove(self.keyspace(which), k.clone());
        self.overlay.set(which, k, None);
    }

    /// Writes a record nothing in this transaction reads back.
    pub(super) fn insert(&mut self, keyspace: &Keyspace, k: Vec<u8>, v: Vec<u8>) {
        self.batch.insert(keyspace, k, v);
    }

    /// Removes a record nothing in this transaction reads back.
    pub(super) fn remove(&mut self, keyspace: &Keyspace, k: Vec<u8>) {
        self.batch.remove(keyspace, k);
    }

    /// The conversation's head as this transaction sees it.
    pub(super) fn conversation(
        &mut self,
        app: &str,
        conversation: &str,
    ) -> Result<ConversationInfo, StoreError> {
        let k = key(&[app, conversation], None);
        if let Some(info) = self.pending.conversations.get(&k) {
            return Ok(*info);
        }
        if let Some(info) = self.cache.conversations.get(&k) {
            return Ok(*info);
        }
        // Not written in this transaction, so the transaction reads the committed value.
        let info = conversation_in(&self.snapshot, self.ks, app, conversation)?;
        put(&mut self.cache.conversations, k, info);
        Ok(info)
    }

    /// Sets the conversation's head; `persist` also writes its record (needed when the
    /// conversation starts, and when `visible_from` moves).
    pub(super) fn set_conversation(
        &mut self,
        app: &str,
        conversation: &str,
        info: ConversationInfo,
        persist: bool,
    ) {
        let k = key(&[app, conversation], None);
        if persist {
            self.batch.insert(
                &self.ks.conversations,
                k.clone(),
                codec::encode_u64s(&[info.last_seq, info.visible_from]),
            );
        }
        self.pending.conversations.insert(k, info);
    }

    /// The user's stream head, `None` if the stream does not exist.
    pub(super) fn stream(
        &mut self,
        app: &str,
        user: &str,
    ) -> Result<Option<StreamHead>, StoreError> {
        let k = key(&[app, user], None);
        if let Some(head) = self.pending.streams.get(&k) {
            return Ok(Some(*head));
        }
        if let Some(head) = self.cache.streams.get(&k) {
            return Ok(Some(*head));
        }
        let head = stream_in(&self.snapshot, self.ks, app, user)?;
        if let Some(head) = head {
            put(&mut self.cache.streams, k, head);
        }
        Ok(head)
    }

    /// Sets the stream's head; `persist` also writes its record (needed when the stream is
    /// created, and before retention may drop its newest events).
    pub(super) fn set_stream(&mut self, app: &str, user: &str, head: StreamHead, persist: bool) {
        let k = key(&[app, user], None);
        if persist {
            self.batch.insert(
                &self.ks.streams,
                k.clone(),
                codec::encode_u64s(&[head.epoch, head.last_offset]),
            );
        }
        self.pending.streams.insert(k, head);
    }

    /// Commits the transaction, then lets its heads into the cache.
    pub(super) fn commit(self, context: &str) -> Result<(), StoreError> {
        self.batch.commit().context(context)?;
        for (k, v) in self.pending.conversations {
            put(&mut self.cache.conversations, k, v);
        }
        for (k, v) in self.pending.streams {
            put(&mut self.cache.streams, k, v);
        }
        Ok(())
    }
}
