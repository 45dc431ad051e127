//! Delivery and sync cases (`spec/sync.md`).

use std::time::Duration;

use magpie_session::{Body, pb};

use crate::case::{Case, Level, Outcome, Verdict};
use crate::server::{
    conv, fresh, messages, send_ack, send_body, server, still_alive, sync_all, text, text_of,
};

/// The largest declared per-conversation limit the retention case fills (one SEND at a time).
const MAX_RETENTION_LIMIT: u64 = 2_000;

/// The retention case's own bound: filling the limit, then [`crate::Retention::within`] at its default.
/// A longer declared wait is cut off here.
const RETENTION_CASE_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "sync/5.2/1",
            &["SYNC-5.2", "SYNC-1.1", "SYNC-3.1", "SYNC-4.1"],
            Level::Must,
            "For stored classes the server MUST send SEND_ACK only after the message, its seq and its events are durably committed. The ack carries the conversation id, the seq, the message id (<conversation id>/<seq>) and the server time.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("alice"), fresh("bob"));
                let (mut ca, _) = loginv!(s, &a, "d1");
                let exp = "ack {conv, seq 1, conv/1}; the recipient's SYNC from 0 holds the message at offset 1";
                let ack = tryv!(send_ack(&mut ca, &b, "m1", "hello").await, exp);
                let (mut cb, w) = loginv!(s, &b, "d1");
                let epoch = w.head.map(|h| h.epoch).unwrap_or(0);
                let (events, _) = tryv!(sync_all(&mut cb, epoch, 0).await, exp);
                let msgs = messages(&events);
                let ok = ack.conversation_id == conv(&a, &b)
                    && ack.seq == 1
                    && ack.message_id == format!("{}/1", ack.conversation_id)
                    && ack.server_time_ms > 0
                    && events.first().map(|e| e.offset) == Some(1)
                    && msgs.len() == 1
                    && text_of(&msgs[0]) == "hello"
                    && msgs[0].seq == 1
                    && msgs[0].sender == a;
                ca.close().await;
                cb.close().await;
                Verdict::check(
                    ok,
                    exp,
                    format!(
                        "ack {ack:?}; events {:?}",
                        events.iter().map(|e| e.offset).collect::<Vec<_>>()
                    ),
                )
            },
        ),
        Case::new(
            "sync/5.3/1",
            &["SYNC-5.3"],
            Level::Must,
            "A SEND with a (sender, client_msg_id) already stored MUST NOT be stored again: the server answers with the first SEND_ACK's values and duplicate set. If the content differs, the server answers CLIENT_MSG_ID_REUSED instead.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("alice"), fresh("bob"));
                let (mut ca, _) = loginv!(s, &a, "d1");
                let exp = "retry: same seq and message id, duplicate set; different content: REQUEST_ERROR 0x104; one stored message";
                let first = tryv!(send_ack(&mut ca, &b, "retry-1", "same").await, exp);
                let again = tryv!(send_ack(&mut ca, &b, "retry-1", "same").await, exp);
                let reused = tryv!(
                    ca.request(send_body(
                        &b,
                        "retry-1",
                        "different",
                        pb::MessageClass::Content
                    ))
                    .await,
                    exp
                );
                let (mut cb, w) = loginv!(s, &b, "d1");
                let (events, _) = tryv!(
                    sync_all(&mut cb, w.head.map(|h| h.epoch).unwrap_or(0), 0).await,
                    exp
                );
                let ok = again.duplicate
                    && again.seq == first.seq
                    && again.message_id == first.message_id
                    && matches!(&reused, Body::RequestError(e) if e.code == 0x104)
                    && messages(&events).len() == 1;
                ca.close().await;
                cb.close().await;
                Verdict::check(
                    ok,
                    exp,
                    format!(
                        "first {first:?}; retry {again:?}; reuse {reused:?}; stored {}",
                        messages(&events).len()
                    ),
                )
            },
        ),
        Case::new(
            "sync/5.4/1",
            &["SYNC-5.4", "SYNC-2.1", "SYNC-4.2", "SESSION-1.3"],
            Level::Must,
            "Two SENDs of one session to one conversation get seqs in the order the server received them. The first stored message gets seq 1 and each next stored message the next integer.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("alice"), fresh("bob"));
                let (mut ca, _) = loginv!(s, &a, "d1");
                let (mut cb, _) = loginv!(s, &b, "d1");
                let exp = "pipelined SENDs acked with seqs 1..=8 in sending order; pushed to the online recipient in order";
                let mut ids = Vec::new();
                for i in 0..8 {
                    let id = ca.id();
                    tryv!(
                        ca.send_body(
                            id,
                            &send_body(
                                &b,
                                &format!("o{i}"),
                                &format!("n{i}"),
                                pb::MessageClass::Content
                            )
                        )
                        .await,
                        exp
                    );
                    ids.push(id);
                }
                let mut seqs = Vec::new();
                for id in ids {
                    match tryv!(ca.reply(id).await, exp) {
                        Body::SendAck(a) => seqs.push(a.seq),
                        other => return Verdict::fail(exp, format!("{other:?}")),
                    }
                }
                let pushed = cb.pushed_events(8, Duration::from_secs(3)).await;
                let texts: Vec<String> = messages(&pushed).iter().map(text_of).collect();
                let want: Vec<String> = (0..8).map(|i| format!("n{i}")).collect();
                let ok = seqs == (1..=8).collect::<Vec<u64>>() && texts == want;
                ca.close().await;
                cb.close().await;
                Verdict::check(ok, exp, format!("seqs {seqs:?}; pushed {texts:?}"))
            },
        ),
        Case::new(
            "sync/4.1/1",
            &["SYNC-4.1", "SYNC-3.1", "SYNC-2.1"],
            Level::Must,
            "Pull: SYNC after a cursor returns the events with offset greater than after.offset, in offset order, at most limit, with messages inline, and head.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("alice"), fresh("bob"));
                let (mut ca, _) = loginv!(s, &a, "d1");
                let exp = "offline recipient: SYNC pages (limit 2) return offsets 1..=5 gap-free, seqs 1..=5, head 5";
                for i in 0..5 {
                    tryv!(
                        send_ack(&mut ca, &b, &format!("off{i}"), &format!("t{i}")).await,
                        exp
                    );
                }
                let (mut cb, w) = loginv!(s, &b, "d1");
                let epoch = w.head.map(|h| h.epoch).unwrap_or(0);
                let mut offsets = Vec::new();
                let mut seqs = Vec::new();
                let mut after = 0;
                let mut head = 0;
                for _ in 0..10 {
                    let r = match tryv!(
                        cb.request(Body::Sync(pb::Sync {
                            after: Some(pb::Cursor {
                                epoch,
                                offset: after
                            }),
                            limit: 2
                        }))
                        .await,
                        exp
                    ) {
                        Body::SyncReply(r) => r,
                        other => return Verdict::fail(exp, format!("{other:?}")),
                    };
                    head = r.head;
                    offsets.extend(r.events.iter().map(|e| e.offset));
                    seqs.extend(messages(&r.events).iter().map(|m| m.seq));
                    match r.events.last() {
                        Some(e) if e.offset < r.head => after = e.offset,
                        _ => break,
                    }
                }
                ca.close().await;
                cb.close().await;
                Verdict::check(
                    offsets == [1, 2, 3, 4, 5] && seqs == [1, 2, 3, 4, 5] && head == 5,
                    exp,
                    format!("offsets {offsets:?} seqs {seqs:?} head {head}"),
                )
            },
        ),
        Case::new(
            "sync/3.2/1",
            &["SYNC-3.2"],
            Level::Must,
            "The sender's own messages are events of the sender's stream, so the sender's other devices receive them.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("alice"), fresh("bob"));
                let (mut ca, _) = loginv!(s, &a, "phone");
                let exp = "the sender's second device syncs its own message with its client_msg_id";
                tryv!(send_ack(&mut ca, &b, "own-1", "mine").await, exp);
                let (mut c2, w) = loginv!(s, &a, "laptop");
                let (events, _) = tryv!(
                    sync_all(&mut c2, w.head.map(|h| h.epoch).unwrap_or(0), 0).await,
                    exp
                );
                let m = messages(&events);
                let ok = m.len() == 1
                    && m[0].client_msg_id == "own-1"
                    && m[0].sender == a
                    && text_of(&m[0]) == "mine";
                ca.close().await;
                c2.close().await;
                Verdict::check(ok, exp, format!("{m:?}"))
            },
        ),
        Case::new(
            "sync/6.1/1",
            &["SYNC-6.1"],
            Level::Must,
            "TRANSIENT and STATUS messages MUST NOT be stored: they are delivered in Push.live to the devices online at that moment and acked with seq 0.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("alice"), fresh("bob"));
                let (mut ca, _) = loginv!(s, &a, "d1");
                let (mut cb, w) = loginv!(s, &b, "d1");
                let exp =
                    "ack seq 0; online recipient gets it in Push.live; SYNC holds no event for it";
                let ack = tryv!(
                    ca.request(send_body(&b, "tr-1", "typing", pb::MessageClass::Transient))
                        .await,
                    exp
                );
                cb.drain(Duration::from_millis(700)).await;
                let live: usize = cb.pushes.iter().map(|p| p.live.len()).sum();
                let (events, _) = tryv!(
                    sync_all(&mut cb, w.head.map(|h| h.epoch).unwrap_or(0), 0).await,
                    exp
                );
                let ok = matches!(&ack, Body::SendAck(a) if a.seq == 0)
                    && live == 1
                    && events.is_empty();
                ca.close().await;
                cb.close().await;
                Verdict::check(
                    ok,
                    exp,
                    format!("ack {ack:?}; live {live}; stored events {}", events.len()),
                )
            },
        ),
        Case::new(
            "sync/6.2/2",
            &["SYNC-6.2"],
            Level::Must,
            "The encoded Content of a SEND MUST NOT exceed the server's max_content_size: content of exactly that size is accepted.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("alice"), fresh("bob"));
                let (mut ca, w) = loginv!(s, &a, "d1");
                let max = if w.max_content_size == 0 {
                    16_384
                } else {
                    w.max_content_size as usize
                };
                let exp = format!("a SEND whose encoded Content is exactly {max} bytes is acked");
                // Text length such that the encoded Content is exactly `max` bytes.
                let mut n = max.saturating_sub(8);
                while prost::Message::encoded_len(&text(&"x".repeat(n))) < max {
                    n += 1;
                }
                let content = text(&"x".repeat(n));
                let size = prost::Message::encoded_len(&content);
                let r = tryv!(
                    ca.request(Body::Send(pb::Send {
                        to: b.clone(),
                        client_msg_id: "at-limit".into(),
                        class: 0,
                        content: Some(content),
                        ..Default::default()
                    }))
                    .await,
                    &exp
                );
                ca.close().await;
                Verdict::check(
                    size == max && matches!(&r, Body::SendAck(a) if a.seq == 1),
                    &exp,
                    format!("content of {size} bytes: {r:?}"),
                )
            },
        ),
        Case::new(
            "sync/6.2/1",
            &["SYNC-6.2", "WIRE-10.2", "ERR-1.1", "ERR-1.2"],
            Level::Must,
            "The encoded Content of a SEND MUST NOT exceed the server's max_content_size; a larger one is CONTENT_TOO_LARGE and nothing is stored.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("alice"), fresh("bob"));
                let (mut ca, w) = loginv!(s, &a, "d1");
                let max = if w.max_content_size == 0 {
                    16_384
                } else {
                    w.max_content_size as usize
                };
                let exp = "REQUEST_ERROR CONTENT_TOO_LARGE (0x101) with the request's Id; session open (PONG); nothing stored";
                let big = Body::Send(pb::Send {
                    to: b.clone(),
                    client_msg_id: "big".into(),
                    class: 0,
                    content: Some(text(&"x".repeat(max + 1))),
                    ..Default::default()
                });
                let r = tryv!(ca.request(big).await, exp);
                let pong = ca.ping(b"ok").await;
                let (mut cb, wb) = loginv!(s, &b, "d1");
                let (events, _) = tryv!(
                    sync_all(&mut cb, wb.head.map(|h| h.epoch).unwrap_or(0), 0).await,
                    exp
                );
                let ok = matches!(&r, Body::RequestError(e) if e.code == 0x101)
                    && pong.is_ok()
                    && events.is_empty();
                ca.close().await;
                cb.close().await;
                still_alive(
                    s,
                    Verdict::check(
                        ok,
                        exp,
                        format!("{r:?}; ping {pong:?}; stored {}", events.len()),
                    ),
                )
                .await
            },
        ),
        Case::new(
            "sync/7.1/1",
            &["SYNC-7.1"],
            Level::Must,
            "READ sets the user's read seq for a conversation to the larger of the stored value and the given seq: read state is a stored high-water mark and never moves back.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("alice"), fresh("bob"));
                let (mut ca, _) = loginv!(s, &a, "d1");
                let exp = "READ 3 then READ 1 both OK; the reader's other device sees read markers never moving back (max 3, none at 1 after 3)";
                for i in 0..3 {
                    tryv!(send_ack(&mut ca, &b, &format!("r{i}"), "x").await, exp);
                }
                let (mut cb, _) = loginv!(s, &b, "d1");
                let c = conv(&a, &b);
                let r1 = tryv!(
                    cb.request(Body::Read(pb::Read {
                        conversation_id: c.clone(),
                        seq: 3
                    }))
                    .await,
                    exp
                );
                let r2 = tryv!(
                    cb.request(Body::Read(pb::Read {
                        conversation_id: c.clone(),
                        seq: 1
                    }))
                    .await,
                    exp
                );
                let (mut cb2, w) = loginv!(s, &b, "d2");
                let (events, _) = tryv!(
                    sync_all(&mut cb2, w.head.map(|h| h.epoch).unwrap_or(0), 0).await,
                    exp
                );
                let marks: Vec<u64> = events
                    .iter()
                    .filter_map(|e| match &e.kind {
                        Some(pb::event::Kind::Read(r)) if r.conversation_id == c => Some(r.seq),
                        _ => None,
                    })
                    .collect();
                let ok = matches!(r1, Body::Ok(_)) && matches!(r2, Body::Ok(_)) && marks == [3];
                ca.close().await;
                cb.close().await;
                cb2.close().await;
                Verdict::check(
                    ok,
                    exp,
                    format!("replies {r1:?} {r2:?}; read markers {marks:?}"),
                )
            },
        ),
        Case::new(
            "sync/8.2/1",
            &["SYNC-8.2", "SYNC-2.3"],
            Level::Must,
            "HISTORY returns up to limit messages of a conversation the user is part of, from from_seq upward, or downward with backward, with visible_from and last_seq.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("alice"), fresh("bob"));
                let (mut ca, _) = loginv!(s, &a, "d1");
                let exp = "pages [1,2], [3,4], [5]; backward from newest limit 2: {4,5}; last_seq 5, visible_from 1";
                for i in 0..5 {
                    tryv!(send_ack(&mut ca, &b, &format!("h{i}"), "x").await, exp);
                }
                let c = conv(&a, &b);
                let mut pages = Vec::new();
                let mut last = (0, 0);
                for (from, backward) in [(1, false), (3, false), (5, false), (0, true)] {
                    match tryv!(
                        ca.request(Body::History(pb::History {
                            conversation_id: c.clone(),
                            from_seq: from,
                            backward,
                            limit: 2
                        }))
                        .await,
                        exp
                    ) {
                        Body::HistoryReply(r) => {
                            let mut seqs: Vec<u64> = r.messages.iter().map(|m| m.seq).collect();
                            seqs.sort_unstable();
                            pages.push(seqs);
                            last = (r.last_seq, r.visible_from);
                        }
                        other => return Verdict::fail(exp, format!("{other:?}")),
                    }
                }
                ca.close().await;
                let ok = pages == [vec![1, 2], vec![3, 4], vec![5], vec![4, 5]] && last == (5, 1);
                Verdict::check(
                    ok,
                    exp,
                    format!("pages {pages:?}; (last_seq, visible_from) {last:?}"),
                )
            },
        ),
        Case::new(
            "sync/5.1/1",
            &["SYNC-5.1", "ERR-1.1"],
            Level::Must,
            "A bad recipient id is INVALID_USER_ID; a missing or overlong client_msg_id is INVALID_CLIENT_MSG_ID.",
            |t| async move {
                let s = server(&t);
                let (mut ca, _) = loginv!(s, &fresh("alice"), "d1");
                let exp = "REQUEST_ERROR 0x102 for recipient \"bad id:x\", 0x103 for an empty client_msg_id";
                let r1 = tryv!(
                    ca.request(send_body("bad id:x", "m", "x", pb::MessageClass::Content))
                        .await,
                    exp
                );
                let r2 = tryv!(
                    ca.request(send_body("bob", "", "x", pb::MessageClass::Content))
                        .await,
                    exp
                );
                ca.close().await;
                let ok = matches!(&r1, Body::RequestError(e) if e.code == 0x102)
                    && matches!(&r2, Body::RequestError(e) if e.code == 0x103);
                Verdict::check(ok, exp, format!("{r1:?}; {r2:?}"))
            },
        ),
        Case::new(
            "sync/3.4/1",
            &["SYNC-3.4", "SYNC-3.3"],
            Level::Must,
            "If a client presents a cursor whose epoch is not the stream's, the server MUST answer SYNC with reset set and events from the start of what it holds.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("alice"), fresh("bob"));
                let (mut ca, w) = loginv!(s, &a, "d1");
                let exp = "SYNC with a wrong epoch: reset set, events from offset 1";
                tryv!(send_ack(&mut ca, &b, "e1", "x").await, exp);
                let epoch = w.head.map(|h| h.epoch).unwrap_or(0);
                let wrong = epoch.wrapping_add(12345) | 1;
                let r = tryv!(
                    ca.request(Body::Sync(pb::Sync {
                        after: Some(pb::Cursor {
                            epoch: wrong,
                            offset: 1
                        }),
                        limit: 0
                    }))
                    .await,
                    exp
                );
                ca.close().await;
                match r {
                    Body::SyncReply(r) => Verdict::check(
                        r.reset && r.epoch != 0 && r.events.first().map(|e| e.offset) == Some(1),
                        exp,
                        format!(
                            "reset {} epoch {} first offset {:?}",
                            r.reset,
                            r.epoch,
                            r.events.first().map(|e| e.offset)
                        ),
                    ),
                    other => Verdict::fail(exp, format!("{other:?}")),
                }
            },
        ),
        Case::new(
            "sync/8.1/1",
            &["SYNC-8.1", "SYNC-2.3"],
            Level::Must,
            "A server keeps at most max_messages_per_conversation per conversation: messages past the limit are removed, the conversation's visible_from moves past them, and their events are removed from the streams.",
            |t| async move {
                let s = server(&t);
                let Some(retention) = s.retention else {
                    return Verdict::new(
                        Outcome::Unimplemented,
                        "a server with max_messages_per_conversation set",
                        "no limit declared (--max-messages-per-conversation N)",
                    );
                };
                let limit = retention.max_messages_per_conversation;
                if !(1..=MAX_RETENTION_LIMIT).contains(&limit) {
                    return Verdict::info(
                        format!("a limit of 1..={MAX_RETENTION_LIMIT} to fill"),
                        format!("limit {limit} is too large to fill within the case's bound"),
                    );
                }
                let (a, b) = (fresh("alice"), fresh("bob"));
                let (mut ca, _) = loginv!(s, &a, "d1");
                let total = limit + 3;
                let exp = format!(
                    "after {total} messages with a limit of {limit}: HISTORY from 1 starts at seq 4 with visible_from 4 and last_seq {total}; the recipient's stream holds seqs 4..={total} only"
                );
                for i in 0..total {
                    tryv!(send_ack(&mut ca, &b, &format!("r{i}"), "x").await, &exp);
                }
                let c = conv(&a, &b);
                let deadline = tokio::time::Instant::now() + retention.within;
                let reply = loop {
                    let reply = match tryv!(
                        ca.request(Body::History(pb::History {
                            conversation_id: c.clone(),
                            from_seq: 1,
                            backward: false,
                            limit: 2,
                        }))
                        .await,
                        &exp
                    ) {
                        Body::HistoryReply(r) => r,
                        other => return Verdict::fail(&exp, format!("{other:?}")),
                    };
                    if reply.visible_from > 1 || tokio::time::Instant::now() >= deadline {
                        break reply;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                };
                let seqs: Vec<u64> = reply.messages.iter().map(|m| m.seq).collect();
                // A server may remove the messages and their events in separate steps: poll the
                // recipient's stream until it is trimmed too, within the same bound.
                let (mut cb, w) = loginv!(s, &b, "d1");
                let epoch = w.head.map(|h| h.epoch).unwrap_or(0);
                let streamed = loop {
                    let (events, _) = tryv!(sync_all(&mut cb, epoch, 0).await, &exp);
                    let streamed: Vec<u64> = messages(&events).iter().map(|m| m.seq).collect();
                    if streamed.first().is_none_or(|&first| first >= 4)
                        || tokio::time::Instant::now() >= deadline
                    {
                        break streamed;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                };
                ca.close().await;
                cb.close().await;
                let ok = reply.visible_from == 4
                    && reply.last_seq == total
                    && seqs == [4, 5]
                    && streamed == (4..=total).collect::<Vec<_>>();
                Verdict::check(
                    ok,
                    exp,
                    format!(
                        "visible_from {}, last_seq {}, first page {seqs:?}; stream seqs {}..={} ({} messages)",
                        reply.visible_from,
                        reply.last_seq,
                        streamed.first().copied().unwrap_or(0),
                        streamed.last().copied().unwrap_or(0),
                        streamed.len()
                    ),
                )
            },
        )
        .timeout(RETENTION_CASE_TIMEOUT),
    ]
}
