//! What a delivered message carries, who a live message reaches, and the edges of SEND and of
//! conversation ids (`spec/sync.md` §1, §5, §6).

use std::time::Duration;

use magpie_session::{Body, pb};

use crate::case::{Case, Level, Verdict};
use crate::conn::Conn;
use crate::server::{
    conv, fresh, hello_for, messages, send_body, send_many, server, sync_all, text_of,
};

/// What a delivered message must carry ([SYNC-5.5]).
struct Want<'a> {
    conversation: &'a str,
    /// 0 for a live message.
    seq: u64,
    sender: &'a str,
    sender_device: &'a str,
    client_msg_id: &'a str,
    server_time_ms: u64,
    class: pb::MessageClass,
    text: &'a str,
    /// The other user, from the reader's side.
    peer: &'a str,
}

/// The fields of `m` that differ from `want`, as `field: got (want)`.
fn mismatches(m: &pb::Message, want: &Want<'_>) -> Vec<String> {
    let message_id = if want.seq == 0 {
        String::new()
    } else {
        format!("{}/{}", want.conversation, want.seq)
    };
    let mut out = Vec::new();
    let mut check = |field: &str, got: String, expected: String| {
        if got != expected {
            out.push(format!("{field}: {got:?} (want {expected:?})"));
        }
    };
    check(
        "conversation_id",
        m.conversation_id.clone(),
        want.conversation.into(),
    );
    check("seq", m.seq.to_string(), want.seq.to_string());
    check("message_id", m.message_id.clone(), message_id);
    check("sender", m.sender.clone(), want.sender.into());
    check(
        "sender_device",
        m.sender_device.clone(),
        want.sender_device.into(),
    );
    check(
        "client_msg_id",
        m.client_msg_id.clone(),
        want.client_msg_id.into(),
    );
    check(
        "server_time_ms",
        m.server_time_ms.to_string(),
        want.server_time_ms.to_string(),
    );
    check(
        "class",
        m.class.to_string(),
        (want.class as i32).to_string(),
    );
    check("content", text_of(m), want.text.into());
    check("tombstone", m.tombstone.to_string(), "false".into());
    check("peer", m.peer.clone(), want.peer.into());
    out
}

/// Judges where each message came from: `("bob SYNC", Some(message))`.
fn judge(expected: &str, seen: Vec<(&str, Option<pb::Message>, Want<'_>)>) -> Verdict {
    let mut problems = Vec::new();
    for (place, m, want) in &seen {
        match m {
            None => problems.push(format!("{place}: no message")),
            Some(m) => {
                let wrong = mismatches(m, want);
                if !wrong.is_empty() {
                    problems.push(format!("{place}: {}", wrong.join(", ")));
                }
            }
        }
    }
    let observed = if problems.is_empty() {
        format!(
            "every field as wanted in {}",
            seen.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
        )
    } else {
        problems.join("; ")
    };
    Verdict::check(problems.is_empty(), expected, observed)
}

fn first_live(c: &Conn) -> Option<pb::Message> {
    c.pushes.iter().flat_map(|p| p.live.iter()).next().cloned()
}

fn live_count(c: &Conn) -> usize {
    c.pushes.iter().map(|p| p.live.len()).sum()
}

fn first_pushed_message(c: &Conn) -> Option<pb::Message> {
    c.pushes
        .iter()
        .find_map(|p| messages(&p.events).into_iter().next())
}

async fn history(c: &mut Conn, conversation: &str) -> Result<Option<pb::Message>, String> {
    match c
        .request(Body::History(pb::History {
            conversation_id: conversation.into(),
            from_seq: 1,
            backward: false,
            limit: 10,
        }))
        .await?
    {
        Body::HistoryReply(r) => Ok(r.messages.into_iter().next()),
        other => Err(format!("HISTORY answered {other:?}")),
    }
}

/// The messages of the stream, pulled with SYNC from offset 0.
async fn synced_all(c: &mut Conn, w: &pb::Welcome) -> Result<Vec<pb::Message>, String> {
    let epoch = w.head.map(|h| h.epoch).unwrap_or(0);
    let (events, _) = sync_all(c, epoch, 0).await?;
    Ok(messages(&events))
}

/// The first message of the stream.
async fn synced(c: &mut Conn, w: &pb::Welcome) -> Result<Option<pb::Message>, String> {
    Ok(synced_all(c, w).await?.into_iter().next())
}

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "sync/5.5/1",
            &["SYNC-5.5", "SYNC-3.2", "SYNC-4.2"],
            Level::Must,
            "Every Message a server delivers MUST carry the conversation id, the sender's user and device ids, the client_msg_id, class and content as sent, server_time_ms equal to the SEND_ACK's, and peer: the other user from the receiving user's side; a stored message also its seq and message_id.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("alice"), fresh("bob"));
                let c = conv(&a, &b);
                let exp = "the same message, every field right, in bob's PUSH, SYNC and HISTORY and in the SYNC of alice's other device and alice's HISTORY";
                let (mut cb, wb) = loginv!(s, &b, "b1");
                let (mut ca, _) = loginv!(s, &a, "a1");
                let ack = match tryv!(
                    ca.request(send_body(
                        &b,
                        "fields-1",
                        "every field",
                        pb::MessageClass::Content
                    ))
                    .await,
                    exp
                ) {
                    Body::SendAck(ack) => ack,
                    other => return Verdict::fail(exp, format!("SEND answered {other:?}")),
                };
                cb.drain(Duration::from_millis(700)).await;
                let pushed = first_pushed_message(&cb);
                let bob_sync = tryv!(synced(&mut cb, &wb).await, exp);
                let bob_history = tryv!(history(&mut cb, &c).await, exp);
                let (mut ca2, wa2) = loginv!(s, &a, "a2");
                let alice_sync = tryv!(synced(&mut ca2, &wa2).await, exp);
                let alice_history = tryv!(history(&mut ca2, &c).await, exp);
                for conn in [ca, ca2, cb] {
                    conn.close().await;
                }
                let want = |peer| Want {
                    conversation: &c,
                    seq: ack.seq,
                    sender: &a,
                    sender_device: "a1",
                    client_msg_id: "fields-1",
                    server_time_ms: ack.server_time_ms,
                    class: pb::MessageClass::Content,
                    text: "every field",
                    peer,
                };
                judge(
                    exp,
                    vec![
                        ("bob PUSH", pushed, want(&a)),
                        ("bob SYNC", bob_sync, want(&a)),
                        ("bob HISTORY", bob_history, want(&a)),
                        ("alice/a2 SYNC", alice_sync, want(&b)),
                        ("alice/a2 HISTORY", alice_history, want(&b)),
                    ],
                )
            },
        ),
        Case::new(
            "sync/5.5/2",
            &["SYNC-5.5", "SYNC-1.1"],
            Level::Must,
            "A user MAY message themself (d:alice:alice); peer is then the user themself.",
            |t| async move {
                let s = server(&t);
                let a = fresh("solo");
                let exp = "a message to oneself: conversation d:a:a, peer a, in SYNC and HISTORY";
                let (mut ca, wa) = loginv!(s, &a, "d1");
                let ack = match tryv!(
                    ca.request(send_body(
                        &a,
                        "self-1",
                        "note to self",
                        pb::MessageClass::Content
                    ))
                    .await,
                    exp
                ) {
                    Body::SendAck(ack) => ack,
                    other => return Verdict::fail(exp, format!("SEND answered {other:?}")),
                };
                let c = conv(&a, &a);
                let from_sync = tryv!(synced(&mut ca, &wa).await, exp);
                let from_history = tryv!(history(&mut ca, &c).await, exp);
                ca.close().await;
                let want = || Want {
                    conversation: &c,
                    seq: ack.seq,
                    sender: &a,
                    sender_device: "d1",
                    client_msg_id: "self-1",
                    server_time_ms: ack.server_time_ms,
                    class: pb::MessageClass::Content,
                    text: "note to self",
                    peer: &a,
                };
                judge(
                    exp,
                    vec![
                        ("SYNC", from_sync, want()),
                        ("HISTORY", from_history, want()),
                    ],
                )
            },
        ),
        Case::new(
            "sync/6.4/1",
            &["SYNC-6.4", "SYNC-6.1", "SYNC-5.5"],
            Level::Must,
            "A TRANSIENT message MUST reach the recipient's online devices and the sender's other online devices, in Push.live, with seq 0 and the fields of SYNC-5.5.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("alice"), fresh("bob"));
                let c = conv(&a, &b);
                let exp = "ack {conv, seq 0, no message id}; one live message at bob (peer alice) and at alice's other device (peer bob), none back at the sending device";
                let (mut cb, _) = loginv!(s, &b, "b1");
                let (mut ca2, _) = loginv!(s, &a, "a2");
                let (mut ca, _) = loginv!(s, &a, "a1");
                let ack = match tryv!(
                    ca.request(send_body(
                        &b,
                        "call-1",
                        "ringing",
                        pb::MessageClass::Transient
                    ))
                    .await,
                    exp
                ) {
                    Body::SendAck(ack) => ack,
                    other => return Verdict::fail(exp, format!("SEND answered {other:?}")),
                };
                cb.drain(Duration::from_millis(700)).await;
                ca2.drain(Duration::from_millis(100)).await;
                ca.drain(Duration::from_millis(100)).await;
                let counts = (live_count(&cb), live_count(&ca2), live_count(&ca));
                let (at_bob, at_a2) = (first_live(&cb), first_live(&ca2));
                for conn in [ca, ca2, cb] {
                    conn.close().await;
                }
                let ack_ok = ack.conversation_id == c
                    && ack.seq == 0
                    && ack.message_id.is_empty()
                    && ack.server_time_ms > 0;
                if !ack_ok || counts != (1, 1, 0) {
                    return Verdict::fail(
                        exp,
                        format!(
                            "ack {ack:?}; live messages at bob, alice/a2, alice/a1: {counts:?}"
                        ),
                    );
                }
                let want = |peer| Want {
                    conversation: &c,
                    seq: 0,
                    sender: &a,
                    sender_device: "a1",
                    client_msg_id: "call-1",
                    server_time_ms: ack.server_time_ms,
                    class: pb::MessageClass::Transient,
                    text: "ringing",
                    peer,
                };
                judge(
                    exp,
                    vec![
                        ("bob live", at_bob, want(&a)),
                        ("alice/a2 live", at_a2, want(&b)),
                    ],
                )
            },
        ),
        Case::new(
            "sync/6.4/2",
            &["SYNC-6.4", "SYNC-6.1"],
            Level::Must,
            "A STATUS message MUST reach only the recipient's online devices, not the sender's other devices.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("alice"), fresh("bob"));
                let exp =
                    "one live message at bob; none at alice's other device or the sending device";
                let (mut cb, _) = loginv!(s, &b, "b1");
                let (mut ca2, _) = loginv!(s, &a, "a2");
                let (mut ca, _) = loginv!(s, &a, "a1");
                let ack = tryv!(
                    ca.request(send_body(
                        &b,
                        "typing-1",
                        "typing",
                        pb::MessageClass::Status
                    ))
                    .await,
                    exp
                );
                cb.drain(Duration::from_millis(700)).await;
                ca2.drain(Duration::from_millis(100)).await;
                ca.drain(Duration::from_millis(100)).await;
                let counts = (live_count(&cb), live_count(&ca2), live_count(&ca));
                for conn in [ca, ca2, cb] {
                    conn.close().await;
                }
                Verdict::check(
                    matches!(&ack, Body::SendAck(a) if a.seq == 0) && counts == (1, 0, 0),
                    exp,
                    format!("ack {ack:?}; live messages at bob, alice/a2, alice/a1: {counts:?}"),
                )
            },
        ),
        Case::new(
            "sync/5.1/2",
            &["SYNC-5.1", "ERR-1.1"],
            Level::Must,
            "A SEND carries a client_msg_id of 1 to 64 bytes; an overlong one is INVALID_CLIENT_MSG_ID.",
            |t| async move {
                let s = server(&t);
                let exp = "a 64-byte client_msg_id is acked; a 65-byte one is REQUEST_ERROR 0x103";
                let (mut ca, _) = loginv!(s, &fresh("alice"), "d1");
                let bob = fresh("bob");
                let at_limit = tryv!(
                    ca.request(send_body(
                        &bob,
                        &"m".repeat(64),
                        "x",
                        pb::MessageClass::Content
                    ))
                    .await,
                    exp
                );
                let over = tryv!(
                    ca.request(send_body(
                        &bob,
                        &"m".repeat(65),
                        "x",
                        pb::MessageClass::Content
                    ))
                    .await,
                    exp
                );
                ca.close().await;
                Verdict::check(
                    matches!(&at_limit, Body::SendAck(a) if a.seq == 1)
                        && matches!(&over, Body::RequestError(e) if e.code == 0x103),
                    exp,
                    format!("64 bytes: {at_limit:?}; 65 bytes: {over:?}"),
                )
            },
        ),
        Case::new(
            "sync/1.1/1",
            &["SYNC-1.1", "SYNC-8.2"],
            Level::Must,
            "A 1:1 conversation has the id d: + the smaller user id + : + the larger; any other form of d: id names no conversation (UNKNOWN_CONVERSATION).",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("alice"), fresh("bob"));
                let exp = "HISTORY of d:<smaller>:<larger> answers; d:<larger>:<smaller> and d:<a>: are UNKNOWN_CONVERSATION (0x105)";
                let (mut ca, _) = loginv!(s, &a, "d1");
                tryv!(
                    ca.request(send_body(&b, "order-1", "x", pb::MessageClass::Content))
                        .await,
                    exp
                );
                let (lo, hi) = if a <= b { (&a, &b) } else { (&b, &a) };
                let mut replies = Vec::new();
                for id in [
                    format!("d:{lo}:{hi}"),
                    format!("d:{hi}:{lo}"),
                    format!("d:{a}:"),
                ] {
                    let r = tryv!(
                        ca.request(Body::History(pb::History {
                            conversation_id: id,
                            from_seq: 1,
                            backward: false,
                            limit: 10,
                        }))
                        .await,
                        exp
                    );
                    replies.push(r);
                }
                ca.close().await;
                let unknown = |r: &Body| matches!(r, Body::RequestError(e) if e.code == 0x105);
                Verdict::check(
                    matches!(&replies[0], Body::HistoryReply(h) if h.messages.len() == 1)
                        && unknown(&replies[1])
                        && unknown(&replies[2]),
                    exp,
                    format!("{replies:?}"),
                )
            },
        ),
        Case::new(
            "sync/7.1/2",
            &["SYNC-7.1", "SYNC-4.2"],
            Level::Must,
            "When read state moves, an event with the marker (conversation, seq, device) is appended to the user's stream and pushed to every open session of the user.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("alice"), fresh("bob"));
                let c = conv(&a, &b);
                let exp = "READ on alice/a1: alice/a2, online, is pushed a read event {conv, seq 1, device a1}";
                let (mut cb, _) = loginv!(s, &b, "b1");
                tryv!(
                    crate::server::send_ack(&mut cb, &a, "read-1", "read me").await,
                    exp
                );
                cb.close().await;
                let (mut ca2, _) = loginv!(s, &a, "a2");
                let (mut ca, _) = loginv!(s, &a, "a1");
                let r = tryv!(
                    ca.request(Body::Read(pb::Read {
                        conversation_id: c.clone(),
                        seq: 1,
                    }))
                    .await,
                    exp
                );
                ca2.drain(Duration::from_millis(700)).await;
                let markers: Vec<pb::ReadMarker> = ca2
                    .pushes
                    .iter()
                    .flat_map(|p| p.events.iter())
                    .filter_map(|e| match &e.kind {
                        Some(pb::event::Kind::Read(m)) => Some(m.clone()),
                        _ => None,
                    })
                    .collect();
                ca.close().await;
                ca2.close().await;
                let ok = matches!(r, Body::Ok(_))
                    && markers.len() == 1
                    && markers[0].conversation_id == c
                    && markers[0].seq == 1
                    && markers[0].device_id == "a1";
                Verdict::check(
                    ok,
                    exp,
                    format!("READ answered {r:?}; pushed markers {markers:?}"),
                )
            },
        ),
        Case::new(
            "session/7.1/2",
            &["SESSION-7.1"],
            Level::Must,
            "More than max_watched (default 1,000) users per session is TOO_MANY_WATCHED. (The case assumes the default.)",
            |t| async move {
                let s = server(&t);
                let exp =
                    "WATCH of 1,000 users: OK; of one more: REQUEST_ERROR TOO_MANY_WATCHED (0x109)";
                let (mut c, _) = loginv!(s, &fresh("watcher"), "d1");
                let base = fresh("w");
                let users: Vec<String> = (0..1000).map(|i| format!("{base}-{i}")).collect();
                let first = tryv!(
                    c.request(Body::Watch(pb::Watch {
                        users,
                        unwatch: false
                    }))
                    .await,
                    exp
                );
                let more = tryv!(
                    c.request(Body::Watch(pb::Watch {
                        users: vec![format!("{base}-extra")],
                        unwatch: false
                    }))
                    .await,
                    exp
                );
                c.close().await;
                Verdict::check(
                    matches!(first, Body::Ok(_))
                        && matches!(&more, Body::RequestError(e) if e.code == 0x109),
                    exp,
                    format!("1,000: {first:?}; 1,001st: {more:?}"),
                )
            },
        ),
        Case::new(
            "session/2.5/3",
            &["SESSION-2.5", "WIRE-6.4"],
            Level::Must,
            "Zero limit fields mean the default; a server MUST NOT send a frame larger than the max_frame_size the client announced.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("alice"), fresh("bob"));
                let exp = "WELCOME for limits {max_frame_size 16384, rest 0}; 40 messages of 1 KiB synced in frames of at most 16384 bytes";
                tryv!(send_many(s, &a, &b, 40, &"x".repeat(1000)).await, exp);
                let mut h = hello_for(s, &b, "d1");
                h.limits = Some(pb::Limits {
                    max_frame_size: 16_384,
                    ..Default::default()
                });
                let mut cb = tryv!(Conn::connect(s.addr).await, exp);
                let mut own = magpie_wire::Limits::default();
                if own.set_max_frame_size(16_384).is_err() {
                    return Verdict::fail(exp, "16384 is not a valid frame limit");
                }
                cb.set_limits(own);
                let w = match cb.handshake(&h).await {
                    Ok(w) => w,
                    Err(seen) => {
                        return Verdict::fail(exp, format!("no WELCOME: {}", seen.describe()));
                    }
                };
                let result = synced_all(&mut cb, &w).await.map(|m| m.len());
                cb.close().await;
                match result {
                    Ok(n) => Verdict::check(
                        n == 40,
                        exp,
                        format!("{n} messages synced, no frame over the limit"),
                    ),
                    Err(e) => Verdict::fail(exp, e),
                }
            },
        ),
    ]
}
