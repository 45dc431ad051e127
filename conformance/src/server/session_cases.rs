//! Session cases (`spec/session.md`).

use std::time::Duration;

use magpie_session::{Body, pb};
use prost::Message as _;

use crate::case::{Case, Level, Verdict};
use crate::conn::{Conn, WAIT};
use crate::raw::{self, frame};
use crate::server::{
    close_after_welcome, fresh, hello_for, judge_close, login, server, still_alive,
};

const PROTOCOL_ERROR: u64 = 0x01;
const IDLE_TIMEOUT: u64 = 0x09;
const NOT_AUTHENTICATED: u64 = 0x0B;
const HANDSHAKE_INVALID: u64 = 0x12;
const SESSION_REPLACED: u64 = 0x14;
const BAD_REQUEST_FLOOD: u64 = 0x16;

/// Bad requests sent by `session/6.2/1`: past the spec's default `max_request_errors` of 100.
const FLOOD_REQUESTS: usize = 150;

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case::new("session/2.2/1", &["SESSION-2.2", "SESSION-2.1"], Level::Must,
            "Before it has sent WELCOME, a server MUST NOT accept any packet but HELLO, PING and PONG: anything else is a connection error NOT_AUTHENTICATED.",
            |t| async move {
                let s = server(&t);
                let mut c = match Conn::connect(s.addr).await {
                    Ok(c) => c,
                    Err(e) => return Verdict::fail("a connection", e),
                };
                let mut bytes = raw::PREFACE.to_vec();
                let send = pb::Send { to: "x".into(), client_msg_id: "m".into(), ..Default::default() };
                bytes.extend(frame(1, 0x12, Some(1), &send.encode_to_vec()));
                let _ = c.send(&bytes).await;
                if let Err(e) = c.read_preface().await {
                    return Verdict::fail("server preface then CLOSE NOT_AUTHENTICATED", e);
                }
                let seen = c.expect_close(WAIT).await;
                judge_close(s, seen, NOT_AUTHENTICATED, "NOT_AUTHENTICATED").await
            }),
        Case::new("session/2.2/3", &["SESSION-2.2"], Level::Must,
            "Before WELCOME, anything but HELLO, PING and PONG is NOT_AUTHENTICATED: also a packet whose body does not parse (it is not a HELLO, so not HANDSHAKE_INVALID).",
            |t| async move {
                let s = server(&t);
                let mut c = match Conn::connect(s.addr).await {
                    Ok(c) => c,
                    Err(e) => return Verdict::fail("a connection", e),
                };
                let mut bytes = raw::PREFACE.to_vec();
                bytes.extend(frame(1, 0x12, Some(1), &[0xFF, 0xFF]));
                let _ = c.send(&bytes).await;
                if let Err(e) = c.read_preface().await {
                    return Verdict::fail("server preface then CLOSE NOT_AUTHENTICATED", e);
                }
                let seen = c.expect_close(WAIT).await;
                judge_close(s, seen, NOT_AUTHENTICATED, "NOT_AUTHENTICATED").await
            }),
        Case::new("session/2.2/2", &["SESSION-2.2"], Level::Must,
            "A second HELLO after WELCOME is a PROTOCOL_ERROR.",
            |t| async move {
                let s = server(&t);
                let user = fresh("hello2");
                let h = hello_for(s, &user, "d1");
                close_after_welcome(&t, frame(1, 0x10, Some(9), &h.encode_to_vec()), PROTOCOL_ERROR, "PROTOCOL_ERROR").await
            }),
        Case::new("session/1.2/1", &["SESSION-1.2"], Level::Must,
            "A request MUST carry an Id. A server MUST treat a request without an Id as PROTOCOL_ERROR.",
            |t| async move {
                let send = pb::Send { to: "bob".into(), client_msg_id: "m1".into(), ..Default::default() };
                close_after_welcome(&t, frame(0, 0x12, None, &send.encode_to_vec()), PROTOCOL_ERROR, "PROTOCOL_ERROR").await
            }),
        Case::new("session/1.4/1", &["SESSION-1.4"], Level::Must,
            "A server MUST treat a client-sent PUSH, WELCOME, SEND_ACK, ... as PROTOCOL_ERROR.",
            |t| async move {
                close_after_welcome(&t, frame(0, 0x14, None, &pb::Push::default().encode_to_vec()), PROTOCOL_ERROR, "PROTOCOL_ERROR").await
            }),
        Case::new("session/1.1/1", &["SESSION-1.1", "ERR-1.1", "WIRE-10.2"], Level::Must,
            "A body that does not parse is a request error BAD_REQUEST for requests.",
            |t| async move {
                let s = server(&t);
                let (mut c, _) = match login(s, &fresh("badreq"), "d1").await {
                    Ok(x) => x,
                    Err(v) => return v,
                };
                let expected = "REQUEST_ERROR 0x100 with the request's Id; connection stays open (PONG)";
                let _ = c.send(&frame(1, 0x12, Some(42), &[0xFF, 0xFF, 0xFF])).await;
                let observed = match c.reply(42).await {
                    Ok(Body::RequestError(e)) if e.code == 0x100 => {
                        match c.ping(b"still").await {
                            Ok(()) => return Verdict::pass(expected, format!("REQUEST_ERROR 0x100 {:?}, PONG", e.message)),
                            Err(e) => e,
                        }
                    }
                    Ok(other) => format!("{other:?}"),
                    Err(e) => e,
                };
                still_alive(s, Verdict::fail(expected, observed)).await
            }),
        Case::new("session/1.1/2", &["SESSION-1.1", "SESSION-2.5"], Level::Must,
            "A body that does not parse is ... a connection error HANDSHAKE_INVALID for HELLO.",
            |t| async move {
                let s = server(&t);
                let mut c = match Conn::connect(s.addr).await {
                    Ok(c) => c,
                    Err(e) => return Verdict::fail("a connection", e),
                };
                let mut bytes = raw::PREFACE.to_vec();
                bytes.extend(frame(1, 0x10, Some(1), &[0xFF, 0xFF, 0xFF]));
                let _ = c.send(&bytes).await;
                let _ = c.read_preface().await;
                let seen = c.expect_close(WAIT).await;
                judge_close(s, seen, HANDSHAKE_INVALID, "HANDSHAKE_INVALID").await
            }),
        Case::new("session/2.5/1", &["SESSION-2.5", "SESSION-2.4", "SESSION-2.6"], Level::Must,
            "heartbeat: the HELLO's heartbeat_ms clamped to the server's [min_heartbeat, max_heartbeat]; idle_timeout_ms is 2.5 × the negotiated heartbeat.",
            |t| async move {
                let s = server(&t);
                let user = fresh("hb");
                let mut h = hello_for(s, &user, "d1");
                h.heartbeat_ms = 1;
                let mut c = match Conn::connect(s.addr).await {
                    Ok(c) => c,
                    Err(e) => return Verdict::fail("a connection", e),
                };
                let expected = "WELCOME for the user, heartbeat_ms > 1 (clamped), idle_timeout_ms = 2.5 × heartbeat_ms";
                match c.handshake(&h).await {
                    Ok(w) => {
                        let ok = w.user_id == user && w.heartbeat_ms > 1 && u64::from(w.idle_timeout_ms) * 2 == u64::from(w.heartbeat_ms) * 5;
                        c.close().await;
                        Verdict::check(ok, expected, format!("user {:?} heartbeat_ms {} idle_timeout_ms {}", w.user_id, w.heartbeat_ms, w.idle_timeout_ms))
                    }
                    Err(seen) => Verdict::fail(expected, seen.describe()),
                }
            }),
        Case::new("session/2.5/2", &["SESSION-2.5", "WIRE-6.1"], Level::Must,
            "limits: ... values outside floor and ceiling are HANDSHAKE_INVALID.",
            |t| async move {
                let s = server(&t);
                let user = fresh("lim");
                let mut h = hello_for(s, &user, "d1");
                h.limits = Some(pb::Limits { max_frame_size: 100, ..Default::default() });
                let mut c = match Conn::connect(s.addr).await {
                    Ok(c) => c,
                    Err(e) => return Verdict::fail("a connection", e),
                };
                match c.handshake(&h).await {
                    Ok(_) => Verdict::fail("CLOSE HANDSHAKE_INVALID", "WELCOME"),
                    Err(seen) => judge_close(s, seen, HANDSHAKE_INVALID, "HANDSHAKE_INVALID").await,
                }
            }),
        Case::new("session/5.1/1", &["SESSION-5.1"], Level::Must,
            "When a device connects while a session of the same (app, user, device id) is open, the server MUST close the older session with SESSION_REPLACED.",
            |t| async move {
                let s = server(&t);
                let user = fresh("repl");
                let (mut old, _) = match login(s, &user, "d1").await {
                    Ok(x) => x,
                    Err(v) => return v,
                };
                let (new, _) = match login(s, &user, "d1").await {
                    Ok(x) => x,
                    Err(v) => return v,
                };
                let seen = old.expect_close(WAIT).await;
                let v = judge_close(s, seen, SESSION_REPLACED, "SESSION_REPLACED").await;
                new.close().await;
                v
            }),
        Case::new("session/7.2/1", &["SESSION-7.2", "SESSION-7.1"], Level::Must,
            "When a watched user goes from no open session to one, or from one to none, the server MUST push a PresenceEvent to every session watching that user.",
            |t| async move {
                let s = server(&t);
                let (watcher, target) = (fresh("watcher"), fresh("watched"));
                let (mut w, _) = match login(s, &watcher, "d1").await {
                    Ok(x) => x,
                    Err(v) => return v,
                };
                let expected = "OK to WATCH; PresenceEvent online=true then online=false";
                match w.request(Body::Watch(pb::Watch { users: vec![target.clone()], unwatch: false })).await {
                    Ok(Body::Ok(_)) => {}
                    other => return Verdict::fail(expected, format!("WATCH answered {other:?}")),
                }
                let (c, _) = match login(s, &target, "d1").await {
                    Ok(x) => x,
                    Err(v) => return v,
                };
                w.drain(Duration::from_millis(700)).await;
                c.close().await;
                w.drain(Duration::from_millis(1500)).await;
                let seen: Vec<bool> = w.pushes.iter().flat_map(|p| p.presence.iter()).filter(|e| e.user_id == target).map(|e| e.online).collect();
                Verdict::check(seen == [true, false], expected, format!("presence events for the watched user: {seen:?}"))
            }),
        Case::new("session/7.2/2", &["SESSION-7.2"], Level::Must,
            "When a watched user goes from one open session to none, the server MUST push a PresenceEvent to every session watching that user: also when the connection drops without a CLOSE.",
            |t| async move {
                let s = server(&t);
                let (watcher, target) = (fresh("watcher"), fresh("dropped"));
                let (c, _) = match login(s, &target, "d1").await {
                    Ok(x) => x,
                    Err(v) => return v,
                };
                let (mut w, _) = match login(s, &watcher, "d1").await {
                    Ok(x) => x,
                    Err(v) => return v,
                };
                let expected = "after the watched user's connection drops without CLOSE: PresenceEvent online=false";
                match w.request(Body::Watch(pb::Watch { users: vec![target.clone()], unwatch: false })).await {
                    Ok(Body::Ok(_)) => {}
                    other => return Verdict::fail(expected, format!("WATCH answered {other:?}")),
                }
                c.abort().await;
                w.drain(Duration::from_millis(1500)).await;
                let seen: Vec<bool> = w.pushes.iter().flat_map(|p| p.presence.iter()).filter(|e| e.user_id == target).map(|e| e.online).collect();
                w.close().await;
                Verdict::check(seen == [false], expected, format!("presence events for the watched user: {seen:?}"))
            }),
        Case::new("session/2.3/1", &["SESSION-2.3"], Level::Must,
            "A server MUST close a connection that has not completed the handshake within its handshake_timeout (default 10 s) with IDLE_TIMEOUT.",
            |t| async move {
                let s = server(&t);
                let mut c = match Conn::connect(s.addr).await {
                    Ok(c) => c,
                    Err(e) => return Verdict::fail("a connection", e),
                };
                let _ = c.send(&raw::PREFACE).await;
                let _ = c.read_preface().await;
                let seen = c.expect_close(Duration::from_secs(13)).await;
                judge_close(s, seen, IDLE_TIMEOUT, "IDLE_TIMEOUT").await
            })
        .timeout(Duration::from_secs(25)),
        Case::new("session/3.2/1", &["SESSION-3.2"], Level::Must,
            "A server MUST close a session with IDLE_TIMEOUT when it has received no frame for idle_timeout_ms.",
            |t| async move {
                let s = server(&t);
                let user = fresh("idle");
                let mut h = hello_for(s, &user, "d1");
                h.heartbeat_ms = 1;
                let mut c = match Conn::connect(s.addr).await {
                    Ok(c) => c,
                    Err(e) => return Verdict::fail("a connection", e),
                };
                let w = match c.handshake(&h).await {
                    Ok(w) => w,
                    Err(seen) => return Verdict::fail("WELCOME", seen.describe()),
                };
                if w.idle_timeout_ms > 14_000 {
                    return Verdict::info("idle timeout short enough to test", format!("idle_timeout_ms {} too long to wait for", w.idle_timeout_ms));
                }
                let seen = c.expect_close(Duration::from_millis(u64::from(w.idle_timeout_ms) + 3000)).await;
                judge_close(s, seen, IDLE_TIMEOUT, "IDLE_TIMEOUT").await
            })
        .timeout(Duration::from_secs(25)),
        Case::new("session/6.2/1", &["SESSION-6.2"], Level::May,
            "A server MAY close a session that sends more than max_request_errors (default 100) request errors per minute with BAD_REQUEST_FLOOD.",
            |t| async move {
                let s = server(&t);
                let (mut c, _) = match login(s, &fresh("flood"), "d1").await {
                    Ok(x) => x,
                    Err(v) => return v,
                };
                // HISTORY of a conversation the user is not part of: a request error
                // (UNKNOWN_CONVERSATION) that costs the server no write.
                let bad = Body::History(pb::History {
                    conversation_id: format!("d:{}:{}", fresh("x"), fresh("y")),
                    from_seq: 1,
                    limit: 1,
                    backward: false,
                });
                let mut bytes = Vec::new();
                for _ in 0..FLOOD_REQUESTS {
                    let id = c.id();
                    bytes.extend(frame(1, bad.frame_type().value().into_inner(), Some(id), &crate::conn::body_bytes(&bad)));
                }
                if let Err(e) = c.send(&bytes).await {
                    return Verdict::fail("the requests are sent", e);
                }
                let seen = c.expect_close(WAIT).await;
                let errors = c.other.iter().filter(|o| o.starts_with("REQUEST_ERROR")).count();
                match seen {
                    crate::conn::Seen::Timeout => still_alive(s, Verdict::info(
                        "CLOSE BAD_REQUEST_FLOOD after more than max_request_errors request errors (optional)",
                        format!("no CLOSE after {FLOOD_REQUESTS} bad requests ({errors} REQUEST_ERROR replies seen): the server does not limit request errors"),
                    )).await,
                    seen => judge_close(s, seen, BAD_REQUEST_FLOOD, "BAD_REQUEST_FLOOD").await
                        .note(format!("{errors} REQUEST_ERROR replies before the CLOSE")),
                }
            }),
    ]
}
