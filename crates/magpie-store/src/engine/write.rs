//! Applying one [`Write`] inside a write transaction.

use fjall::{Readable, SingleWriterWriteTx};

use super::{Keyspaces, conversation_in, get_u64s, new_epoch};
use crate::codec::{self, DedupRecord, key};
use crate::error::Context;
use crate::{EventKind, StoreError, StreamHead, Write, WriteResult};

type Tx<'a> = SingleWriterWriteTx<'a>;

/// Applies `w` in `tx`; `now_ms` stamps messages that come without a time.
pub(super) fn apply(
    ks: &Keyspaces,
    tx: &mut Tx<'_>,
    w: &Write,
    now_ms: u64,
) -> Result<WriteResult, StoreError> {
    match w {
        Write::AppendMessage {
            app,
            message,
            content_hash,
            participants,
        } => {
            let dedup_key = (!message.client_msg_id.is_empty())
                .then(|| key(&[app, &message.sender, &message.client_msg_id], None));
            if let Some(k) = &dedup_key
                && let Some(v) = tx.get(&ks.dedup, k).context("reading a dedup record")?
            {
                let first = codec::decode_dedup(k, &v)?;
                if first.content_hash != *content_hash {
                    return Ok(WriteResult::ClientIdReused);
                }
                return Ok(WriteResult::Appended {
                    seq: first.seq,
                    time_ms: first.time_ms,
                    offsets: first.offsets,
                    duplicate: true,
                });
            }

            let conversation = &message.conversation;
            let mut info = conversation_in(tx, ks, app, conversation)?;
            let seq = info.last_seq.checked_add(1).ok_or_else(|| {
                StoreError::InvalidInput(format!("conversation {conversation} is full"))
            })?;
            info.last_seq = seq;
            let time_ms = if message.time_ms == 0 {
                now_ms
            } else {
                message.time_ms
            };
            let mut stored = message.clone();
            stored.seq = seq;
            stored.time_ms = time_ms;
            tx.insert(
                &ks.messages,
                key(&[app, conversation], Some(seq)),
                codec::encode_message(&stored),
            );
            tx.insert(
                &ks.conversations,
                key(&[app, conversation], None),
                codec::encode_u64s(&[info.last_seq, info.visible_from]),
            );

            let mut users: Vec<&str> = Vec::with_capacity(participants.len() + 1);
            for p in participants.iter().chain(std::iter::once(&message.sender)) {
                if !users.contains(&p.as_str()) {
                    users.push(p);
                }
            }
            let event = EventKind::Message {
                conversation: conversation.clone(),
                seq,
            };
            let mut offsets = Vec::with_capacity(users.len());
            for user in users {
                let offset = append_event(ks, tx, app, user, &event)?;
                offsets.push((user.to_owned(), offset));
            }

            if let Some(k) = dedup_key {
                let record = DedupRecord {
                    conversation: conversation.clone(),
                    seq,
                    time_ms,
                    content_hash: *content_hash,
                    offsets: offsets.clone(),
                };
                tx.insert(&ks.dedup, k, codec::encode_dedup(&record));
            }
            Ok(WriteResult::Appended {
                seq,
                time_ms,
                offsets,
                duplicate: false,
            })
        }
        Write::SetRead {
            app,
            user,
            device,
            conversation,
            seq,
        } => {
            let k = key(&[app, user, conversation], None);
            let old = get_u64s::<1>(tx, &ks.reads, "read marker", &k)?.map_or(0, |[s]| s);
            if *seq <= old {
                return Ok(WriteResult::ReadSet {
                    seq: old,
                    offset: None,
                });
            }
            tx.insert(&ks.reads, k, codec::encode_u64s(&[*seq]));
            let event = EventKind::Read {
                conversation: conversation.clone(),
                seq: *seq,
                device: device.clone(),
            };
            let offset = append_event(ks, tx, app, user, &event)?;
            Ok(WriteResult::ReadSet {
                seq: *seq,
                offset: Some(offset),
            })
        }
        Write::UseNonce {
            app,
            nonce,
            expires_at,
        } => {
            let k = key(&[app, nonce], None);
            let now_secs = now_ms / 1000;
            if let Some([stored]) = get_u64s::<1>(tx, &ks.nonces, "nonce", &k)?
                && stored > now_secs
            {
                return Ok(WriteResult::NonceReplayed);
            }
            tx.insert(&ks.nonces, k, codec::encode_u64s(&[*expires_at]));
            Ok(WriteResult::NonceAccepted)
        }
        Write::Revoke { app, user, at } => {
            tx.insert(
                &ks.revocations,
                key(&[app, user], None),
                codec::encode_u64s(&[*at]),
            );
            Ok(WriteResult::Revoked)
        }
    }
}

/// The user's stream head, creating the stream (with a fresh epoch) if it does not exist.
pub(super) fn head_or_create(
    ks: &Keyspaces,
    tx: &mut Tx<'_>,
    app: &str,
    user: &str,
) -> Result<StreamHead, StoreError> {
    let k = key(&[app, user], None);
    if let Some([epoch, last_offset]) = get_u64s::<2>(tx, &ks.streams, "stream head", &k)? {
        return Ok(StreamHead { epoch, last_offset });
    }
    let head = StreamHead {
        epoch: new_epoch(),
        last_offset: 0,
    };
    tx.insert(&ks.streams, k, codec::encode_u64s(&[head.epoch, 0]));
    Ok(head)
}

/// Appends `event` to the user's stream and returns its offset.
fn append_event(
    ks: &Keyspaces,
    tx: &mut Tx<'_>,
    app: &str,
    user: &str,
    event: &EventKind,
) -> Result<u64, StoreError> {
    let head = head_or_create(ks, tx, app, user)?;
    let offset = head
        .last_offset
        .checked_add(1)
        .ok_or_else(|| StoreError::InvalidInput(format!("stream of {user} is full")))?;
    tx.insert(
        &ks.events,
        key(&[app, user], Some(offset)),
        codec::encode_event(event),
    );
    tx.insert(
        &ks.streams,
        key(&[app, user], None),
        codec::encode_u64s(&[head.epoch, offset]),
    );
    Ok(offset)
}
