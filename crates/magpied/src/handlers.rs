//! Serving requests of an open session (`spec/sync.md`, `spec/session.md` §7).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use magpie_auth::validate_user_id;
use magpie_session::{Body, RequestCode, pb, rate_limited, request_error};
use magpie_store::{Delivered, EventKind, StoredMessage, Write, WriteResult};
use prost::Message as _;
use sha2::{Digest, Sha256};

use crate::auth::Identity;
use crate::groups::{self, group_of};
use crate::hub::{Mailbox, copy_or_take};
use crate::{Shared, unix_now_ms};

/// The session a request comes from.
pub(crate) struct SessionCtx {
    pub(crate) id: Identity,
    pub(crate) session: u64,
    pub(crate) mailbox: Mailbox,
    /// The client's `max_frame_size`, to size SYNC pages.
    pub(crate) client_frame: usize,
}

pub(crate) fn err(code: RequestCode, message: impl Into<String>) -> Body {
    request_error(code, message)
}

/// [SYNC-1.1]: `d:` + the smaller id + `:` + the larger.
pub(crate) fn direct_conversation(a: &str, b: &str) -> String {
    if a <= b {
        format!("d:{a}:{b}")
    } else {
        format!("d:{b}:{a}")
    }
}

/// The two users of a 1:1 conversation id, if it is one.
fn parse_direct(conversation: &str) -> Option<(&str, &str)> {
    let rest = conversation.strip_prefix("d:")?;
    let (a, b) = rest.split_once(':')?;
    (a <= b && !a.is_empty() && !b.is_empty()).then_some((a, b))
}

fn peer_of<'a>(conversation: &'a str, user: &str) -> &'a str {
    match parse_direct(conversation) {
        Some((a, b)) if a == user => b,
        Some((a, _)) => a,
        None => "",
    }
}

/// A stored message as the proto for `reader` (its `peer` is the other user). A directed group
/// message is a bare tombstone for anyone it was not sent to ([GROUP-4.6]).
pub(crate) fn to_proto(m: &StoredMessage, reader: &str) -> pb::Message {
    if !m.visible_to(reader) {
        return pb::Message {
            conversation_id: m.conversation.clone(),
            seq: m.seq,
            message_id: format!("{}/{}", m.conversation, m.seq),
            tombstone: true,
            ..Default::default()
        };
    }
    pb::Message {
        conversation_id: m.conversation.clone(),
        seq: m.seq,
        message_id: format!("{}/{}", m.conversation, m.seq),
        sender: m.sender.clone(),
        sender_device: m.sender_device.clone(),
        client_msg_id: m.client_msg_id.clone(),
        server_time_ms: m.time_ms,
        class: i32::from(m.class),
        content: if m.tombstone {
            None
        } else {
            pb::Content::decode(m.content.clone()).ok()
        },
        tombstone: m.tombstone,
        peer: peer_of(&m.conversation, reader).to_owned(),
        to_members: m.audience.clone(),
    }
}

fn to_event(d: Delivered, reader: &str) -> pb::Event {
    let kind = match (d.kind, d.message) {
        (EventKind::Message { .. }, Some(m)) => {
            Some(pb::event::Kind::Message(to_proto(&m, reader)))
        }
        (EventKind::Message { conversation, seq }, None) => {
            Some(pb::event::Kind::Message(pb::Message {
                // Purged by retention after the event was written: a tombstone keeps the stream gap-free.
                message_id: format!("{conversation}/{seq}"),
                peer: peer_of(&conversation, reader).to_owned(),
                conversation_id: conversation,
                seq,
                tombstone: true,
                ..Default::default()
            }))
        }
        (
            EventKind::Read {
                conversation,
                seq,
                device,
            },
            _,
        ) => Some(pb::event::Kind::Read(pb::ReadMarker {
            conversation_id: conversation,
            seq,
            device_id: device,
        })),
    };
    pb::Event {
        offset: d.offset,
        kind,
    }
}

/// The reply to a request, once it is ready.
pub(crate) type Pending = Pin<Box<dyn Future<Output = Body> + Send>>;

pub(crate) fn ready(body: Body) -> Pending {
    Box::pin(std::future::ready(body))
}

/// The reply to a read, once every write the read may have seen is durable: the store shows
/// written batches before their fsync, and a client must not see what a power loss could take
/// back ([SYNC-5.2]).
pub(crate) fn after_settled(shared: &Shared, body: Body) -> Pending {
    let settled = shared.committer.settled();
    Box::pin(async move {
        match settled.await {
            Ok(()) => body,
            Err(e) => err(RequestCode::INTERNAL, format!("store: {e}")),
        }
    })
}

/// Starts serving one request. Writes are queued for group commit before this returns, so the
/// requests of a session are applied in the order they came ([SYNC-5.4]) even with several in
/// flight; the returned future resolves to the reply once the commit is durable ([SYNC-5.2]).
pub(crate) fn start(shared: &Arc<Shared>, ctx: &Arc<SessionCtx>, body: Body) -> Pending {
    match body {
        Body::Send(send) => start_send(shared, ctx, send),
        Body::Sync(sync) => after_settled(shared, handle_sync(shared, ctx, sync)),
        Body::History(h) => after_settled(shared, handle_history(shared, ctx, h)),
        Body::Read(r) => start_read(shared, ctx, r),
        Body::Watch(w) => ready(handle_watch(shared, ctx, w)),
        Body::PresenceQuery(q) => ready(handle_presence(shared, ctx, q)),
        Body::Group(g) => groups::start_group(shared, ctx, g),
        other => ready(err(
            RequestCode::UNSUPPORTED,
            format!("{:?} is not a request", other.frame_type()),
        )),
    }
}

/// [SESSION-6.4]: takes one SEND (or group change) of `me` from the user's rate, or the
/// RATE_LIMITED answer if there is none to take.
pub(crate) fn charge_send_rate(shared: &Shared, me: &Identity) -> Option<Body> {
    #[allow(unused_mut)]
    let mut key = &me.user;
    #[cfg(feature = "faults")]
    if shared.settings.faults.send_rate_per_device {
        key = &me.device;
    }
    let wait = shared
        .send_rates
        .take(&me.app, key, std::time::Instant::now())
        .err()?;
    #[allow(unused_mut)]
    let mut refusal = rate_limited(
        wait,
        format!(
            "{} sends at most {}/s in bursts of {}",
            me.user, shared.settings.send_rate, shared.settings.send_burst
        ),
    );
    #[cfg(feature = "faults")]
    if shared.settings.faults.rate_limited_without_wait
        && let Body::RequestError(e) = &mut refusal
    {
        e.retry_after_ms = 0;
    }
    Some(refusal)
}

fn start_send(shared: &Arc<Shared>, ctx: &Arc<SessionCtx>, mut send: pb::Send) -> Pending {
    let me = &ctx.id;
    // [GROUP-4.1]: `to` is a user id, or a group's conversation id (`:` is in no user id).
    let group = if send.to.starts_with("g:") {
        match group_of(&send.to) {
            Some(g) => Some(g.to_owned()),
            None => {
                return ready(err(
                    RequestCode::UNKNOWN_CONVERSATION,
                    format!("{:?} names no group", send.to),
                ));
            }
        }
    } else if let Err(e) = validate_user_id(&send.to) {
        return ready(err(RequestCode::INVALID_USER_ID, format!("recipient: {e}")));
    } else {
        None
    };
    // [GROUP-4.6]: a directed message goes to a group, to a bounded list of valid user ids.
    if !send.to_members.is_empty() {
        if group.is_none() {
            return ready(err(
                RequestCode::BAD_REQUEST,
                "to_members is for messages to a group",
            ));
        }
        let max = shared.settings.max_group_request_users;
        if send.to_members.len() > max {
            return ready(err(
                RequestCode::BAD_REQUEST,
                format!(
                    "{} members named, a message names at most {max}",
                    send.to_members.len()
                ),
            ));
        }
        if let Err(e) = check_users(&send.to_members) {
            return ready(err(RequestCode::INVALID_USER_ID, e));
        }
        // A set: the order of the names does not make another message.
        send.to_members.sort_unstable();
        send.to_members.dedup();
    }
    if send.client_msg_id.is_empty() || send.client_msg_id.len() > 64 {
        return ready(err(
            RequestCode::INVALID_CLIENT_MSG_ID,
            "client_msg_id must be 1 to 64 bytes",
        ));
    }
    let content = send.content.take().unwrap_or_default();
    if let Some(pb::content::Kind::GroupNotice(_)) = content.kind {
        // [GROUP-3.1]: only the server writes notices.
        return ready(err(
            RequestCode::BAD_REQUEST,
            "group notices are written by the server, not sent",
        ));
    }
    let encoded = content.encode_to_vec();
    let max = shared.settings.max_content_size as usize;
    if encoded.len() > max {
        // [SYNC-6.2]
        return ready(err(
            RequestCode::CONTENT_TOO_LARGE,
            format!("content is {} bytes, the limit is {max}", encoded.len()),
        ));
    }
    // After the checks that cost nothing, before the relay or commit that costs.
    if let Some(refusal) = charge_send_rate(shared, me) {
        return ready(refusal);
    }
    let class = pb::MessageClass::try_from(send.class).unwrap_or(pb::MessageClass::Content);
    let conversation = match &group {
        Some(_) => send.to.clone(),
        None => direct_conversation(&me.user, &send.to),
    };
    let now = unix_now_ms();
    if matches!(
        class,
        pb::MessageClass::Transient | pb::MessageClass::Status
    ) {
        // [SYNC-6.1]: never stored; the devices online now.
        let live = pb::Message {
            conversation_id: conversation.clone(),
            sender: me.user.clone(),
            sender_device: me.device.clone(),
            client_msg_id: send.client_msg_id,
            server_time_ms: now,
            class: class as i32,
            content: Some(content),
            ..Default::default()
        };
        let relayed = match group.as_deref() {
            Some(group) => relay_live_to_group(shared, ctx, live, group, &send.to_members),
            None => {
                relay_live(shared, ctx, live, &send.to);
                Ok(())
            }
        };
        return ready(match relayed {
            Ok(()) => Body::SendAck(pb::SendAck {
                conversation_id: conversation,
                server_time_ms: now,
                ..Default::default()
            }),
            Err((code, message)) => err(code, message),
        });
    }
    let mut hasher = Sha256::new();
    hasher.update(send.to.as_bytes());
    hasher.update([0, class as u8]);
    hasher.update(&encoded);
    // [GROUP-4.6]: a retry to other members is another message. Each name is length-prefixed
    // so that no two lists hash alike; none for an undirected message, whose hash is unchanged.
    for u in &send.to_members {
        hasher.update((u.len() as u64).to_be_bytes());
        hasher.update(u.as_bytes());
    }
    let content_hash: [u8; 32] = hasher.finalize().into();
    // What readers get, but for the seq and time of the commit: the content the SEND carried,
    // so it is not decoded again from the stored bytes.
    let template = pb::Message {
        conversation_id: conversation.clone(),
        sender: me.user.clone(),
        sender_device: me.device.clone(),
        client_msg_id: send.client_msg_id.clone(),
        class: class as i32,
        content: Some(content),
        to_members: send.to_members.clone(),
        ..Default::default()
    };
    let message = StoredMessage {
        conversation: conversation.clone(),
        seq: 0,
        sender: me.user.clone(),
        sender_device: me.device.clone(),
        client_msg_id: send.client_msg_id,
        time_ms: now,
        class: class as u8,
        content: encoded.into(),
        tombstone: false,
        audience: send.to_members,
    };
    let write = match group {
        Some(group) => Write::AppendGroupMessage {
            app: me.app.clone(),
            group,
            message,
            content_hash,
        },
        None => Write::AppendMessage {
            app: me.app.clone(),
            message,
            content_hash,
            participants: vec![me.user.clone(), send.to],
        },
    };
    #[cfg(feature = "faults")]
    if shared.settings.faults.ack_without_commit {
        return ready(fault_ack_without_commit(shared, &me.app, conversation, now));
    }
    let pusher = shared.clone();
    let ctx = ctx.clone();
    commit_then(shared, write, move |result| match result {
        WriteResult::Appended {
            seq,
            time_ms,
            offsets,
            duplicate,
            silent,
        } => {
            let message_id = format!("{conversation}/{seq}");
            if !duplicate {
                let message = pb::Message {
                    seq,
                    message_id: message_id.clone(),
                    server_time_ms: time_ms,
                    ..template
                };
                push_stored(&pusher, &ctx.id.app, message, &offsets, &silent);
            }
            Body::SendAck(pb::SendAck {
                message_id,
                conversation_id: conversation,
                seq,
                server_time_ms: time_ms,
                duplicate,
            })
        }
        WriteResult::ClientIdReused => err(
            RequestCode::CLIENT_MSG_ID_REUSED,
            "this client_msg_id was used for a different message",
        ),
        WriteResult::NotMember => not_your_group(&conversation),
        WriteResult::AudienceNotMember(user) => {
            let (code, why) = groups::audience_not_member(&user, &conversation);
            err(code, why)
        }
        WriteResult::Muted(silence) => {
            let (code, why) = groups::muted(silence);
            err(code, why)
        }
        other => err(RequestCode::INTERNAL, format!("store answered {other:?}")),
    })
}

/// Queues `write` for group commit now, so that a session's writes are applied in the order
/// it sent them ([SYNC-5.4]), and answers with `reply` of its result once the commit is durable
/// ([SYNC-5.2]). A write the store did not commit is answered `INTERNAL`.
pub(crate) fn commit_then(
    shared: &Shared,
    write: Write,
    reply: impl FnOnce(WriteResult) -> Body + Send + 'static,
) -> Pending {
    let committed = match shared.committer.enqueue(write) {
        Ok(f) => f,
        Err(e) => return ready(err(RequestCode::INTERNAL, format!("not committed: {e}"))),
    };
    Box::pin(async move {
        match committed.await {
            Ok(result) => reply(result),
            Err(e) => err(RequestCode::INTERNAL, format!("not committed: {e}")),
        }
    })
}

/// Pushes a stored message's events ([SYNC-4.2]): `offsets` gives each reader's offset, and
/// the readers in `silent` get the push silently ([GROUP-1.7]). `template` is the message as
/// delivered; only its `peer` differs per reader, and the last session pushed to gets
/// `template` itself.
pub(crate) fn push_stored(
    shared: &Shared,
    app: &str,
    template: pb::Message,
    offsets: &[(String, u64)],
    silent: &[String],
) {
    let mut template = Some(template);
    let silent: HashSet<&str> = silent.iter().map(String::as_str).collect();
    let readers = offsets.iter().map(|(user, _)| user.as_str());
    // The hub stamps each session's stream epoch.
    shared.hub.push_each(app, readers, None, |i, last| {
        let (user, offset) = &offsets[i];
        let mut message = copy_or_take(&mut template, last);
        message.peer = peer_of(&message.conversation_id, user).to_owned();
        let event = pb::Event {
            offset: *offset,
            kind: Some(pb::event::Kind::Message(message)),
        };
        pb::Push {
            events: vec![event],
            silent: silent.contains(user.as_str()),
            ..Default::default()
        }
    });
}

/// [SYNC-6.4]: a live 1:1 message to the recipient's online devices (TRANSIENT: and the
/// sender's other devices).
fn relay_live(shared: &Shared, ctx: &SessionCtx, mut live: pb::Message, to: &str) {
    let me = &ctx.id;
    let transient = live.class == pb::MessageClass::Transient as i32;
    live.peer.clone_from(&me.user);
    let own = (transient && to != me.user).then(|| pb::Message {
        peer: to.to_owned(),
        ..live.clone()
    });
    let push = pb::Push {
        live: vec![live],
        ..Default::default()
    };
    shared.hub.push_to_user(&me.app, to, push, None);
    if let Some(own) = own {
        let push = pb::Push {
            live: vec![own],
            ..Default::default()
        };
        shared
            .hub
            .push_to_user(&me.app, &me.user, push, Some(ctx.session));
    }
}

/// [GROUP-4.2]: a live message to the online devices of the other members (TRANSIENT: and the
/// sender's other devices); refused unless the sender is a member.
fn relay_live_to_group(
    shared: &Shared,
    ctx: &SessionCtx,
    mut live: pb::Message,
    group: &str,
    to_members: &[String],
) -> Result<(), (RequestCode, String)> {
    let me = &ctx.id;
    let members = groups::live_audience(shared, &me.app, group, &me.user, to_members)?;
    live.to_members = to_members.to_vec();
    let transient = live.class == pb::MessageClass::Transient as i32;
    let mut push = Some(pb::Push {
        live: vec![live],
        ..Default::default()
    });
    let own = if transient { push.clone() } else { None };
    let audience = members.iter().map(|(m, _)| m.as_str());
    shared.hub.push_each(&me.app, audience, None, |i, last| {
        let mut p = copy_or_take(&mut push, last);
        // [GROUP-1.7]
        p.silent = members[i].1;
        p
    });
    if let Some(own) = own {
        shared
            .hub
            .push_to_user(&me.app, &me.user, own, Some(ctx.session));
    }
    Ok(())
}

/// The `ack_without_commit` fault: an ack for the seq the message would get, and no write.
#[cfg(feature = "faults")]
fn fault_ack_without_commit(shared: &Shared, app: &str, conversation: String, now: u64) -> Body {
    let seq = shared
        .store
        .conversation(app, &conversation)
        .map_or(1, |c| c.last_seq + 1);
    Body::SendAck(pb::SendAck {
        message_id: format!("{conversation}/{seq}"),
        conversation_id: conversation,
        seq,
        server_time_ms: now,
        duplicate: false,
    })
}

fn handle_sync(shared: &Shared, ctx: &SessionCtx, sync: pb::Sync) -> Body {
    let me = &ctx.id;
    // The session opened the stream when it started.
    let head = match shared.store.stream(&me.app, &me.user) {
        Ok(Some(h)) => h,
        Ok(None) => return err(RequestCode::INTERNAL, format!("no stream for {}", me.user)),
        Err(e) => return err(RequestCode::INTERNAL, format!("store: {e}")),
    };
    let after = sync.after.unwrap_or_default();
    // [SYNC-3.4]: a cursor from another epoch is reset, never read as a gap.
    let reset = after.epoch != 0 && after.epoch != head.epoch;
    let from = if reset { 0 } else { after.offset };
    let cap = shared.settings.sync_page as usize;
    let limit = if sync.limit == 0 {
        cap
    } else {
        (sync.limit as usize).min(cap)
    };
    let delivered = match shared.store.read_events(&me.app, &me.user, from, limit) {
        Ok(d) => d,
        Err(e) => return err(RequestCode::INTERNAL, format!("store: {e}")),
    };
    // Keep the page inside the client's frame limit, with room for the envelope.
    let budget = ctx.client_frame.saturating_sub(1024);
    let mut used = 0;
    let mut events = Vec::with_capacity(delivered.len());
    for d in delivered {
        let event = to_event(d, &me.user);
        used += event.encoded_len() + 8;
        if used > budget && !events.is_empty() {
            break;
        }
        events.push(event);
    }
    #[cfg(feature = "faults")]
    if shared.settings.faults.reverse_sync_pages {
        events.reverse();
    }
    Body::SyncReply(pb::SyncReply {
        epoch: head.epoch,
        events,
        head: head.last_offset,
        reset,
    })
}

/// Where `user`'s view of the conversation starts: `Ok(Some(1))` for a 1:1 conversation of
/// theirs, the join seq for a group they are a member of ([GROUP-4.4]), `Ok(None)` otherwise.
fn horizon_of(
    shared: &Shared,
    app: &str,
    conversation: &str,
    user: &str,
) -> Result<Option<u64>, String> {
    if let Some((a, b)) = parse_direct(conversation) {
        return Ok((a == user || b == user).then_some(1));
    }
    groups::member_horizon(shared, app, conversation, user)
}

/// [GROUP-4.1]: a group message from someone who is not a member, or to no group.
fn not_your_group(conversation: &str) -> Body {
    err(
        RequestCode::UNKNOWN_CONVERSATION,
        not_your_group_message(conversation),
    )
}

pub(crate) fn not_your_group_message(conversation: &str) -> String {
    format!("{conversation:?} is not a group of yours")
}

fn not_yours(conversation: &str) -> Body {
    err(
        RequestCode::UNKNOWN_CONVERSATION,
        format!("{conversation:?} is not a conversation of yours"),
    )
}

fn handle_history(shared: &Shared, ctx: &SessionCtx, h: pb::History) -> Body {
    let me = &ctx.id;
    let horizon = match horizon_of(shared, &me.app, &h.conversation_id, &me.user) {
        Ok(Some(horizon)) => horizon,
        Ok(None) => return not_yours(&h.conversation_id),
        Err(e) => return err(RequestCode::INTERNAL, e),
    };
    let limit = if h.limit == 0 { 50 } else { h.limit.min(100) } as usize;
    let from = if h.backward {
        h.from_seq
    } else {
        h.from_seq.max(horizon)
    };
    let info = shared.store.conversation(&me.app, &h.conversation_id);
    let page = shared
        .store
        .history(&me.app, &h.conversation_id, from, h.backward, limit);
    match (info, page) {
        (Ok(info), Ok(page)) => Body::HistoryReply(pb::HistoryReply {
            messages: page
                .iter()
                .filter(|m| m.seq >= horizon)
                .map(|m| to_proto(m, &me.user))
                .collect(),
            visible_from: info.visible_from.max(horizon),
            last_seq: info.last_seq,
        }),
        (Err(e), _) | (_, Err(e)) => err(RequestCode::INTERNAL, format!("store: {e}")),
    }
}

fn start_read(shared: &Arc<Shared>, ctx: &Arc<SessionCtx>, r: pb::Read) -> Pending {
    let me = &ctx.id;
    match horizon_of(shared, &me.app, &r.conversation_id, &me.user) {
        Ok(Some(_)) => {}
        Ok(None) => return ready(not_yours(&r.conversation_id)),
        Err(e) => return ready(err(RequestCode::INTERNAL, e)),
    }
    let write = Write::SetRead {
        app: me.app.clone(),
        user: me.user.clone(),
        device: me.device.clone(),
        conversation: r.conversation_id.clone(),
        seq: r.seq,
    };
    let pusher = shared.clone();
    let ctx = ctx.clone();
    commit_then(shared, write, move |result| match result {
        WriteResult::ReadSet {
            seq,
            offset: Some(offset),
        } => {
            let me = &ctx.id;
            // [SYNC-7.1]: the user's other devices learn it through the stream.
            let event = pb::Event {
                offset,
                kind: Some(pb::event::Kind::Read(pb::ReadMarker {
                    conversation_id: r.conversation_id,
                    seq,
                    device_id: me.device.clone(),
                })),
            };
            let push = pb::Push {
                events: vec![event],
                ..Default::default()
            };
            pusher.hub.push_to_user(&me.app, &me.user, push, None);
            Body::Ok(pb::Ok {})
        }
        WriteResult::ReadSet { offset: None, .. } => Body::Ok(pb::Ok {}),
        other => err(RequestCode::INTERNAL, format!("store answered {other:?}")),
    })
}

/// The first invalid user id, as a message.
pub(crate) fn check_users(users: &[String]) -> Result<(), String> {
    for u in users {
        validate_user_id(u).map_err(|e| format!("{u:?}: {e}"))?;
    }
    Ok(())
}

fn handle_watch(shared: &Shared, ctx: &SessionCtx, w: pb::Watch) -> Body {
    if let Err(e) = check_users(&w.users) {
        return err(RequestCode::INVALID_USER_ID, e);
    }
    let max = shared.settings.max_watched;
    if !w.unwatch && shared.hub.watched_count(ctx.session) + w.users.len() > max {
        return err(
            RequestCode::TOO_MANY_WATCHED,
            format!("a session may watch at most {max} users"),
        );
    }
    shared
        .hub
        .watch(&ctx.id.app, ctx.session, &ctx.mailbox, &w.users, w.unwatch);
    Body::Ok(pb::Ok {})
}

fn handle_presence(shared: &Shared, ctx: &SessionCtx, q: pb::PresenceQuery) -> Body {
    if let Err(e) = check_users(&q.users) {
        return err(RequestCode::INVALID_USER_ID, e);
    }
    Body::PresenceReply(pb::PresenceReply {
        statuses: shared.hub.presence(&ctx.id.app, &q.users),
    })
}
