//! Retention: dropping old messages, the events and dedup entries that point at them, and
//! expired nonces.
//!
//! Each pass decides what to drop from a snapshot, without holding the writer lock, and deletes in
//! write transactions of at most [`CHUNK`] records so that group commits are never held up for
//! long. Only retention moves `visible_from`, and passes are serialized, so a decision taken on a
//! snapshot stays right: messages below the new `visible_from` never change, and appends only add
//! higher seqs.
//!
//! A pass runs in three phases, each committed before the next: conversations (advance
//! `visible_from`, drop the messages below it and their dedup entries), then events (drop every
//! event whose conversation seq is below its conversation's `visible_from`, message and read
//! events alike), then nonces. A crash between phases leaves events whose message is gone; they
//! are delivered with `message: None` until the next pass that advances a conversation drops them.

use std::collections::HashMap;

use fjall::Readable;

use super::heads::Tracked;
use super::{FjallStore, conversation_in, visible_from_in};
use crate::codec::{self, Reader, key};
use crate::error::Context;
use crate::{EventKind, RetentionStats, StoreError};

/// The most records deleted in one write transaction.
const CHUNK: usize = 4096;

/// A conversation whose `visible_from` advances, with what to delete.
struct Advance {
    app: String,
    conversation: String,
    visible_from: u64,
    /// Message keys, and for each the dedup key to drop if it still points at the message.
    messages: Vec<(Vec<u8>, Option<Vec<u8>>, u64)>,
}

pub(super) fn apply(
    store: &FjallStore,
    now_ms: u64,
    max_age_ms: u64,
    max_count: u64,
) -> Result<RetentionStats, StoreError> {
    let _serial = store
        .retention
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut stats = RetentionStats::default();
    conversations(store, now_ms, max_age_ms, max_count, &mut stats)?;
    if stats.conversations > 0 {
        events(store, &mut stats)?;
    }
    nonces(store, now_ms / 1000, &mut stats)?;
    Ok(stats)
}

/// Phase 1: advance `visible_from` and drop messages below it.
fn conversations(
    store: &FjallStore,
    now_ms: u64,
    max_age_ms: u64,
    max_count: u64,
    stats: &mut RetentionStats,
) -> Result<(), StoreError> {
    let ks = &store.ks;
    let cutoff = (max_age_ms > 0).then(|| now_ms.saturating_sub(max_age_ms));
    let snap = store.db.snapshot();
    let mut pending: Vec<Advance> = Vec::new();
    let mut pending_ops = 0usize;
    for guard in snap.iter(&ks.conversations) {
        let (k, _) = guard.into_inner().context("scanning conversations")?;
        let mut r = Reader::of_key(&k, "conversation key")?;
        let app = r.str()?;
        let conversation = r.str()?;
        r.end()?;
        let info = conversation_in(&snap, ks, &app, &conversation)?;
        let mut vf = info.visible_from;
        if max_count > 0 {
            vf = vf.max(info.last_seq.saturating_sub(max_count) + 1);
        }
        let prefix = key(&[&app, &conversation], None);
        let mut messages = Vec::new();
        let scan = key(&[&app, &conversation], Some(info.visible_from))
            ..=key(&[&app, &conversation], Some(info.last_seq));
        for guard in snap.range(&ks.messages, scan) {
            let (mk, mv) = guard.into_inner().context("scanning messages")?;
            let seq = super::trailing_number("message", &prefix, &mk)?;
            let m = codec::decode_message(&conversation, seq, &mk, &mv)?;
            let old = cutoff.is_some_and(|c| m.time_ms < c);
            if seq >= vf && !old {
                break;
            }
            vf = vf.max(seq + 1);
            let dedup = (!m.client_msg_id.is_empty())
                .then(|| codec::dedup_key(&app, &m.sender, &m.client_msg_id));
            messages.push((mk.to_vec(), dedup, seq));
        }
        let vf = vf.min(info.last_seq.saturating_add(1));
        if vf <= info.visible_from {
            continue;
        }
        pending_ops += messages.len() + 1;
        pending.push(Advance {
            app,
            conversation,
            visible_from: vf,
            messages,
        });
        if pending_ops >= CHUNK {
            commit_advances(store, std::mem::take(&mut pending), stats)?;
            pending_ops = 0;
        }
    }
    commit_advances(store, pending, stats)
}

fn commit_advances(
    store: &FjallStore,
    advances: Vec<Advance>,
    stats: &mut RetentionStats,
) -> Result<(), StoreError> {
    if advances.is_empty() {
        return Ok(());
    }
    let ks = &store.ks;
    let mut cache = store.writer();
    let mut cx = store.transaction(&mut cache, 0)?;
    for a in advances {
        let mut info = cx.conversation(&a.app, &a.conversation)?;
        if a.visible_from <= info.visible_from {
            continue;
        }
        for (mk, dedup, seq) in a.messages {
            cx.remove(&ks.messages, mk);
            stats.messages += 1;
            let Some(dk) = dedup else { continue };
            if let Some(v) = cx.get(Tracked::Dedup, &dk)? {
                let d = codec::decode_dedup(&dk, &v)?;
                if d.conversation == a.conversation && d.seq == seq {
                    cx.delete(Tracked::Dedup, dk);
                    stats.dedup_entries += 1;
                }
            }
        }
        info.visible_from = a.visible_from;
        cx.set_conversation(&a.app, &a.conversation, info, true);
        stats.conversations += 1;
    }
    cx.commit("committing retention of messages")
}

/// Phase 2: drop events that point below their conversation's `visible_from`.
fn events(store: &FjallStore, stats: &mut RetentionStats) -> Result<(), StoreError> {
    let ks = &store.ks;
    let snap = store.db.snapshot();
    let mut visible: HashMap<(String, String), u64> = HashMap::new();
    let mut doomed = Vec::new();
    for guard in snap.iter(&ks.events) {
        let (k, v) = guard.into_inner().context("scanning events")?;
        let mut r = Reader::of_key(&k, "event key")?;
        let app = r.str()?;
        let user = r.str()?;
        let (EventKind::Message { conversation, seq }
        | EventKind::Read {
            conversation, seq, ..
        }) = codec::decode_event(&k, &v)?;
        let id = (app, conversation);
        let vf = match visible.get(&id) {
            Some(vf) => *vf,
            None => {
                let vf = visible_from_in(&snap, ks, &id.0, &id.1)?;
                visible.insert(id.clone(), vf);
                vf
            }
        };
        if seq < vf {
            doomed.push((id.0, user, k.to_vec()));
            if doomed.len() >= CHUNK {
                stats.events += drop_events(store, std::mem::take(&mut doomed))?;
            }
        }
    }
    stats.events += drop_events(store, doomed)?;
    Ok(())
}

/// Deletes events `(app, user, key)`. A stream's last offset is derived from its newest event,
/// so each stream's head record is written first: offsets never go back.
fn drop_events(
    store: &FjallStore,
    doomed: Vec<(String, String, Vec<u8>)>,
) -> Result<u64, StoreError> {
    if doomed.is_empty() {
        return Ok(0);
    }
    let n = doomed.len() as u64;
    let mut cache = store.writer();
    let mut cx = store.transaction(&mut cache, 0)?;
    let mut streams: Vec<(&str, &str)> = doomed
        .iter()
        .map(|(app, user, _)| (app.as_str(), user.as_str()))
        .collect();
    streams.sort_unstable();
    streams.dedup();
    for (app, user) in streams {
        if let Some(head) = cx.stream(app, user)? {
            cx.set_stream(app, user, head, true);
        }
    }
    for (_, _, k) in &doomed {
        cx.remove(&store.ks.events, k.clone());
    }
    cx.commit("committing retention of events")?;
    Ok(n)
}

/// Phase 3: drop nonces whose `expires_at` has passed.
fn nonces(store: &FjallStore, now_secs: u64, stats: &mut RetentionStats) -> Result<(), StoreError> {
    let ks = &store.ks;
    let snap = store.db.snapshot();
    let mut doomed = Vec::new();
    for guard in snap.iter(&ks.nonces) {
        let (k, v) = guard.into_inner().context("scanning nonces")?;
        let [expires_at] = codec::decode_u64s::<1>("nonce", &k, &v)?;
        if expires_at <= now_secs {
            doomed.push(k.to_vec());
            if doomed.len() >= CHUNK {
                stats.nonces += remove_all(store, now_secs, std::mem::take(&mut doomed))?;
            }
        }
    }
    stats.nonces += remove_all(store, now_secs, doomed)?;
    Ok(())
}

/// Removes expired nonces, under the writer mutex so that a nonce used again meanwhile (with a
/// new expiry) is checked again instead of being removed.
fn remove_all(store: &FjallStore, now_secs: u64, keys: Vec<Vec<u8>>) -> Result<u64, StoreError> {
    if keys.is_empty() {
        return Ok(0);
    }
    let mut cache = store.writer();
    let mut cx = store.transaction(&mut cache, 0)?;
    let mut n = 0;
    for k in keys {
        let still_expired = match cx.get(Tracked::Nonces, &k)? {
            Some(v) => codec::decode_u64s::<1>("nonce", &k, &v)?[0] <= now_secs,
            None => false,
        };
        if still_expired {
            cx.delete(Tracked::Nonces, k);
            n += 1;
        }
    }
    cx.commit("committing retention of nonces")?;
    Ok(n)
}
