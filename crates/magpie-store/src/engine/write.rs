//! Applying one [`Write`] inside a write transaction.

use super::heads::{Tracked, WriteCtx};
use super::new_epoch;
use crate::codec::{self, DedupRecord, key};
use crate::{EventKind, StoreError, StreamHead, Write, WriteResult};

/// Applies `w` in `cx`; `now_ms` stamps messages that come without a time.
pub(super) fn apply(
    cx: &mut WriteCtx<'_>,
    w: &Write,
    now_ms: u64,
) -> Result<WriteResult, StoreError> {
    let ks = cx.ks;
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
                && let Some(v) = cx.get(Tracked::Dedup, k)?
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
            let mut info = cx.conversation(app, conversation)?;
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
            cx.insert(
                &ks.messages,
                key(&[app, conversation], Some(seq)),
                codec::encode_message(&stored),
            );
            // The record is written when the conversation starts; later the newest key tells.
            cx.set_conversation(app, conversation, info, seq == 1);

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
                let offset = append_event(cx, app, user, &event)?;
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
                cx.put(Tracked::Dedup, k, codec::encode_dedup(&record));
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
            let old = match cx.get(Tracked::Reads, &k)? {
                Some(v) => codec::decode_u64s::<1>("read marker", &k, &v)?[0],
                None => 0,
            };
            if *seq <= old {
                return Ok(WriteResult::ReadSet {
                    seq: old,
                    offset: None,
                });
            }
            cx.put(Tracked::Reads, k, codec::encode_u64s(&[*seq]));
            let event = EventKind::Read {
                conversation: conversation.clone(),
                seq: *seq,
                device: device.clone(),
            };
            let offset = append_event(cx, app, user, &event)?;
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
            if let Some(v) = cx.get(Tracked::Nonces, &k)?
                && codec::decode_u64s::<1>("nonce", &k, &v)?[0] > now_secs
            {
                return Ok(WriteResult::NonceReplayed);
            }
            cx.put(Tracked::Nonces, k, codec::encode_u64s(&[*expires_at]));
            Ok(WriteResult::NonceAccepted)
        }
        Write::Revoke { app, user, at } => {
            cx.insert(
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
    cx: &mut WriteCtx<'_>,
    app: &str,
    user: &str,
) -> Result<StreamHead, StoreError> {
    if let Some(head) = cx.stream(app, user)? {
        return Ok(head);
    }
    let head = StreamHead {
        epoch: new_epoch(),
        last_offset: 0,
    };
    cx.set_stream(app, user, head, true);
    Ok(head)
}

/// Appends `event` to the user's stream and returns its offset.
fn append_event(
    cx: &mut WriteCtx<'_>,
    app: &str,
    user: &str,
    event: &EventKind,
) -> Result<u64, StoreError> {
    let mut head = head_or_create(cx, app, user)?;
    head.last_offset = head
        .last_offset
        .checked_add(1)
        .ok_or_else(|| StoreError::InvalidInput(format!("stream of {user} is full")))?;
    let ks = cx.ks;
    cx.insert(
        &ks.events,
        key(&[app, user], Some(head.last_offset)),
        codec::encode_event(event),
    );
    cx.set_stream(app, user, head, false);
    Ok(head.last_offset)
}
