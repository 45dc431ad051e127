//! Applying one [`Write`] inside a write transaction.

use std::collections::{HashMap, HashSet};

use super::heads::{Tracked, WriteCtx};
use super::new_epoch;
use crate::codec::{self, DedupRecord, key};
use crate::groups::{self, GroupRecord, GroupRole};
use crate::{EventKind, GroupChange, StoreError, StoredMessage, StreamHead, Write, WriteResult};

/// `MESSAGE_CLASS_NOTIFICATION` of `spec/proto/magpie.proto`: the class of group notices
/// ([GROUP-3.1]).
const NOTIFICATION_CLASS: u8 = 1;

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
            let dedup_key = dedup_key(app, message);
            if let Some(first) = first_append(cx, dedup_key.as_deref(), content_hash)? {
                return Ok(first);
            }
            let mut users: Vec<&str> = Vec::with_capacity(participants.len() + 1);
            for p in participants.iter().chain(std::iter::once(&message.sender)) {
                if !users.contains(&p.as_str()) {
                    users.push(p);
                }
            }
            let retry = Retry {
                dedup_key,
                content_hash,
                keep_offsets: true,
            };
            append_new(cx, app, message, retry, &users, now_ms)
        }
        Write::AppendGroupMessage {
            app,
            group,
            message,
            content_hash,
        } => {
            let dedup_key = dedup_key(app, message);
            if let Some(first) = first_append(cx, dedup_key.as_deref(), content_hash)? {
                return Ok(first);
            }
            // [GROUP-4.1]: judged against the group as this transaction sees it, so a SEND
            // committed after a kick in the same batch is refused.
            let record = match read_group(cx, app, group)? {
                Some(g) if !g.dismissed && g.member(&message.sender).is_some() => g,
                _ => return Ok(WriteResult::NotMember),
            };
            // [GROUP-4.5]: judged at the commit's time, like membership above.
            if let Some(silence) = record
                .member(&message.sender)
                .and_then(|sender| record.silence(sender, now_ms))
            {
                return Ok(WriteResult::Muted(silence));
            }
            // [GROUP-4.6]: a directed message names members only, and reaches them and the
            // sender, in the order they joined.
            if let Some(u) = message.audience.iter().find(|u| record.member(u).is_none()) {
                return Ok(WriteResult::AudienceNotMember(u.clone()));
            }
            // And who of them gets silent pushes ([GROUP-1.7]), in the same pass.
            let mut users: Vec<&str> = Vec::with_capacity(record.members.len());
            let mut silent: Vec<String> = Vec::new();
            for m in record
                .members
                .iter()
                .filter(|m| message.visible_to(&m.user))
            {
                users.push(&m.user);
                if m.do_not_disturb {
                    silent.push(m.user.clone());
                }
            }
            // One offset per member would make the dedup record as large as the group.
            let retry = Retry {
                dedup_key,
                content_hash,
                keep_offsets: false,
            };
            let mut appended = append_new(cx, app, message, retry, &users, now_ms)?;
            if let WriteResult::Appended { silent: s, .. } = &mut appended {
                *s = silent;
            }
            Ok(appended)
        }
        Write::Group {
            app,
            group,
            actor,
            device,
            op,
            max_members,
            render,
        } => {
            let current = read_group(cx, app, group)?;
            let plan = match groups::plan(current.as_ref(), actor, op, *max_members, now_ms) {
                Ok(plan) => plan,
                Err(denied) => return Ok(WriteResult::GroupDenied(denied)),
            };
            let mut record = plan.record;
            let (notice, offsets) = match &plan.notice {
                None => (None, Vec::new()),
                Some(notice) => {
                    // [GROUP-3.2]: the members after the change and the users it names (a set:
                    // a dismissal names every former member).
                    let mut users: Vec<&str> =
                        record.members.iter().map(|m| m.user.as_str()).collect();
                    let mut seen: HashSet<&str> = users.iter().copied().collect();
                    users.extend(
                        plan.also_told
                            .iter()
                            .map(String::as_str)
                            .filter(|u| seen.insert(u)),
                    );
                    let message = StoredMessage {
                        conversation: format!("g:{group}"),
                        seq: 0,
                        sender: actor.clone(),
                        sender_device: device.clone(),
                        client_msg_id: String::new(),
                        time_ms: 0,
                        class: NOTIFICATION_CLASS,
                        content: (render.0)(notice),
                        tombstone: false,
                        audience: Vec::new(),
                    };
                    let (stored, offsets) = store_message(cx, app, &message, &users, now_ms)?;
                    // [GROUP-4.4]: a new member's history starts at the notice that let them in.
                    for m in &mut record.members {
                        if plan.joined.contains(&m.user) {
                            m.joined_seq = stored.seq;
                        }
                    }
                    (Some(stored), offsets)
                }
            };
            // Every change of what members see writes a notice; a member's own setting
            // ([GROUP-1.7]) changes the record alone; a request that changed nothing writes
            // nothing.
            if plan.notice.is_some() || current.as_ref() != Some(&record) {
                index_members(cx, app, group, current.as_ref(), &record);
                cx.put(
                    Tracked::Groups,
                    key(&[app, group], None),
                    groups::encode(&record),
                );
            }
            Ok(WriteResult::GroupChanged(Box::new(GroupChange {
                record,
                notice,
                offsets,
                pending: plan.pending,
            })))
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
        Write::OpenStream { app, user } => head_or_create(cx, app, user).map(WriteResult::Stream),
    }
}

/// The dedup key of a message, `None` for a message without a client id.
fn dedup_key(app: &str, message: &StoredMessage) -> Option<Vec<u8>> {
    (!message.client_msg_id.is_empty())
        .then(|| codec::dedup_key(app, &message.sender, &message.client_msg_id))
}

/// The answer to a retry ([SYNC-5.3]): the first append's values, or
/// [`WriteResult::ClientIdReused`]; `None` if the id is new.
fn first_append(
    cx: &WriteCtx<'_>,
    dedup_key: Option<&[u8]>,
    content_hash: &[u8; 32],
) -> Result<Option<WriteResult>, StoreError> {
    let Some(k) = dedup_key else {
        return Ok(None);
    };
    let Some(v) = cx.get(Tracked::Dedup, k)? else {
        return Ok(None);
    };
    let first = codec::decode_dedup(k, &v)?;
    if first.content_hash != *content_hash {
        return Ok(Some(WriteResult::ClientIdReused));
    }
    Ok(Some(WriteResult::Appended {
        seq: first.seq,
        time_ms: first.time_ms,
        offsets: first.offsets,
        duplicate: true,
        silent: Vec::new(),
    }))
}

/// What a new message's dedup record keeps, for answering its retries ([SYNC-5.3]).
struct Retry<'a> {
    /// `None` for a message without a client id: nothing is recorded.
    dedup_key: Option<Vec<u8>>,
    content_hash: &'a [u8; 32],
    /// Keep the stream offsets, which a retry's answer repeats.
    keep_offsets: bool,
}

/// Stores a message not seen before for `users` and records its client id.
fn append_new(
    cx: &mut WriteCtx<'_>,
    app: &str,
    message: &StoredMessage,
    retry: Retry<'_>,
    users: &[&str],
    now_ms: u64,
) -> Result<WriteResult, StoreError> {
    let (stored, offsets) = store_message(cx, app, message, users, now_ms)?;
    if let Some(k) = retry.dedup_key {
        let record = DedupRecord {
            conversation: stored.conversation,
            seq: stored.seq,
            time_ms: stored.time_ms,
            content_hash: *retry.content_hash,
            offsets: if retry.keep_offsets {
                offsets.clone()
            } else {
                Vec::new()
            },
        };
        cx.put(Tracked::Dedup, k, codec::encode_dedup(&record));
    }
    Ok(WriteResult::Appended {
        seq: stored.seq,
        time_ms: stored.time_ms,
        offsets,
        duplicate: false,
        silent: Vec::new(),
    })
}

/// Allocates the next seq of the message's conversation, stores the message and appends its
/// event to each of `users`' streams (`users` without repeats); returns the stored message and
/// the offsets.
fn store_message(
    cx: &mut WriteCtx<'_>,
    app: &str,
    message: &StoredMessage,
    users: &[&str],
    now_ms: u64,
) -> Result<(StoredMessage, Vec<(String, u64)>), StoreError> {
    let conversation = &message.conversation;
    let mut info = cx.conversation(app, conversation)?;
    let seq = info
        .last_seq
        .checked_add(1)
        .ok_or_else(|| StoreError::InvalidInput(format!("conversation {conversation} is full")))?;
    info.last_seq = seq;
    let time_ms = if message.time_ms == 0 {
        now_ms
    } else {
        message.time_ms
    };
    let mut stored = message.clone();
    stored.seq = seq;
    stored.time_ms = time_ms;
    let ks = cx.ks;
    cx.insert(
        &ks.messages,
        key(&[app, conversation], Some(seq)),
        codec::encode_message(&stored),
    );
    // The record is written when the conversation starts; later the newest key tells.
    cx.set_conversation(app, conversation, info, seq == 1);

    let event = EventKind::Message {
        conversation: conversation.clone(),
        seq,
    };
    let mut offsets = Vec::with_capacity(users.len());
    for user in users {
        let offset = append_event(cx, app, user, &event)?;
        offsets.push(((*user).to_owned(), offset));
    }
    Ok((stored, offsets))
}

/// Brings the `memberships` index of `group` from its members in `before` to those in `after`
/// ([GROUP-2.7]): in the group record's transaction, so the two never disagree.
fn index_members(
    cx: &mut WriteCtx<'_>,
    app: &str,
    group: &str,
    before: Option<&GroupRecord>,
    after: &GroupRecord,
) {
    let ks = cx.ks;
    // By user, so that a change to a group of thousands is not a scan per member.
    let roles_before: HashMap<&str, GroupRole> = before
        .map_or(&[][..], |g| &g.members[..])
        .iter()
        .map(|m| (m.user.as_str(), m.role))
        .collect();
    let users_after: HashSet<&str> = after.members.iter().map(|m| m.user.as_str()).collect();
    for user in roles_before.keys().filter(|u| !users_after.contains(*u)) {
        cx.remove(&ks.memberships, codec::membership_key(app, user, group));
    }
    for m in &after.members {
        if roles_before.get(m.user.as_str()) != Some(&m.role) {
            cx.insert(
                &ks.memberships,
                codec::membership_key(app, &m.user, group),
                vec![m.role as u8],
            );
        }
    }
}

/// The group as this transaction sees it.
fn read_group(
    cx: &WriteCtx<'_>,
    app: &str,
    group: &str,
) -> Result<Option<GroupRecord>, StoreError> {
    let k = key(&[app, group], None);
    match cx.get(Tracked::Groups, &k)? {
        Some(v) => groups::decode(&k, &v).map(Some),
        None => Ok(None),
    }
}

/// The user's stream head, creating the stream (with a fresh epoch) if it does not exist.
fn head_or_create(cx: &mut WriteCtx<'_>, app: &str, user: &str) -> Result<StreamHead, StoreError> {
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
