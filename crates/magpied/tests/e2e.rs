//! End to end against an in-process `magpied` on an ephemeral port: delivery online and offline,
//! multi-device fan-out, own-message sync, retry de-duplication, transient messages, presence,
//! read markers, history, and the handshake's refusals.

mod common;

use common::*;
use magpie_auth::Platform;
use magpie_session::{Body, RequestCode, close, pb};
use magpie_wire::ErrorCode;

#[tokio::test]
async fn online_delivery_with_ack_after_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let mut alice = TestClient::login(server.local_addr(), "alice", "a-phone").await;
    let mut bob = TestClient::login(server.local_addr(), "bob", "b-phone").await;

    let a = ack(alice.send_text("bob", "m1", "hello bob").await);
    assert_eq!(a.conversation_id, "d:alice:bob");
    assert_eq!(a.seq, 1);
    assert_eq!(a.message_id, "d:alice:bob/1");
    assert!(!a.duplicate);

    let events = bob.events(1).await;
    let got = messages(&events);
    assert_eq!(got.len(), 1);
    assert_eq!(text_of(got[0]), "hello bob");
    assert_eq!(
        (got[0].sender.as_str(), got[0].peer.as_str(), got[0].seq),
        ("alice", "alice", 1)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn offline_messages_arrive_in_order_on_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let mut alice = TestClient::login(server.local_addr(), "alice", "a-phone").await;
    for i in 1..=5 {
        let a = ack(alice
            .send_text("bob", &format!("m{i}"), &format!("msg {i}"))
            .await);
        assert_eq!(a.seq, i);
    }
    let mut bob = TestClient::login(server.local_addr(), "bob", "b-phone").await;
    let head = bob.welcome.as_ref().and_then(|w| w.head).expect("head");
    assert_eq!(head.offset, 5);
    let (events, reply) = bob
        .sync_all(pb::Cursor {
            epoch: head.epoch,
            offset: 0,
        })
        .await;
    assert!(!reply.reset);
    let texts: Vec<&str> = messages(&events).into_iter().map(text_of).collect();
    assert_eq!(texts, ["msg 1", "msg 2", "msg 3", "msg 4", "msg 5"]);
    let offsets: Vec<u64> = events.iter().map(|e| e.offset).collect();
    assert_eq!(offsets, [1, 2, 3, 4, 5]);
    server.shutdown().await;
}

#[tokio::test]
async fn multi_device_fan_out_and_own_message_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let mut phone = TestClient::login(server.local_addr(), "alice", "a-phone").await;
    let mut web = TestClient::login(server.local_addr(), "alice", "a-web").await;
    let mut bob = TestClient::login(server.local_addr(), "bob", "b-phone").await;
    ack(phone.send_text("bob", "x1", "from the phone").await);
    // C18: the sender's other device gets its own message, marked with the client id.
    let on_web = web.events(1).await;
    let m = messages(&on_web);
    assert_eq!(
        (
            m[0].client_msg_id.as_str(),
            m[0].sender_device.as_str(),
            m[0].peer.as_str()
        ),
        ("x1", "a-phone", "bob")
    );
    assert_eq!(text_of(messages(&bob.events(1).await)[0]), "from the phone");
    // The sending device sees it in its own stream too, so its cursor stays gap-free.
    assert_eq!(phone.events(1).await.len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn retried_send_is_stored_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let mut alice = TestClient::login(server.local_addr(), "alice", "a-phone").await;
    let first = ack(alice.send_text("bob", "same-id", "once").await);
    let again = ack(alice.send_text("bob", "same-id", "once").await);
    assert!(again.duplicate);
    assert_eq!(
        (again.seq, again.message_id.clone()),
        (first.seq, first.message_id.clone())
    );
    // Same id, other content: refused, nothing stored ([SYNC-5.3]).
    match alice.send_text("bob", "same-id", "different").await {
        Body::RequestError(e) => assert_eq!(e.code, RequestCode::CLIENT_MSG_ID_REUSED.0),
        other => panic!("expected CLIENT_MSG_ID_REUSED, got {other:?}"),
    }
    let mut bob = TestClient::login(server.local_addr(), "bob", "b-phone").await;
    let (events, _) = bob.sync_all(pb::Cursor::default()).await;
    assert_eq!(messages(&events).len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn transient_and_status_are_never_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let mut alice = TestClient::login(server.local_addr(), "alice", "a-phone").await;
    let mut bob = TestClient::login(server.local_addr(), "bob", "b-phone").await;
    let a = ack(alice
        .send_class("bob", "t1", "typing…", pb::MessageClass::Status)
        .await);
    assert_eq!(a.seq, 0);
    bob.pump_until(|c| c.pushes.iter().any(|p| !p.live.is_empty()))
        .await;
    let live: Vec<pb::Message> = bob.pushes.drain(..).flat_map(|p| p.live).collect();
    assert_eq!(text_of(&live[0]), "typing…");
    bob.close().await;
    ack(alice
        .send_class("bob", "t2", "ephemeral", pb::MessageClass::Transient)
        .await);
    // Bob was offline for that one and never gets it; nothing is in his stream.
    let mut bob = TestClient::login(server.local_addr(), "bob", "b-phone").await;
    let (events, reply) = bob.sync_all(pb::Cursor::default()).await;
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(reply.head, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn presence_watch_and_query() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let mut carol = TestClient::login(server.local_addr(), "carol", "c-web").await;
    assert!(matches!(
        carol
            .request(Body::Watch(pb::Watch {
                users: vec!["bob".into()],
                unwatch: false
            }))
            .await,
        Body::Ok(_)
    ));
    let bob = TestClient::login(server.local_addr(), "bob", "b-phone").await;
    carol
        .pump_until(|c| c.pushes.iter().any(|p| !p.presence.is_empty()))
        .await;
    let p: Vec<pb::PresenceEvent> = carol.pushes.drain(..).flat_map(|p| p.presence).collect();
    assert_eq!((p[0].user_id.as_str(), p[0].online), ("bob", true));
    let Body::PresenceReply(r) = carol
        .request(Body::PresenceQuery(pb::PresenceQuery {
            users: vec!["bob".into(), "dave".into()],
        }))
        .await
    else {
        panic!("expected PRESENCE_REPLY");
    };
    assert_eq!((r.statuses[0].online, r.statuses[1].online), (true, false));
    bob.close().await;
    carol
        .pump_until(|c| {
            c.pushes
                .iter()
                .any(|p| p.presence.iter().any(|e| !e.online))
        })
        .await;
    assert!(
        carol
            .pushes
            .iter()
            .flat_map(|p| &p.presence)
            .any(|e| e.user_id == "bob" && !e.online)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn read_marker_syncs_to_other_devices_and_history_pages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let mut alice = TestClient::login(server.local_addr(), "alice", "a-phone").await;
    for i in 1..=7 {
        ack(alice
            .send_text("bob", &format!("h{i}"), &format!("h {i}"))
            .await);
    }
    let mut bob = TestClient::login(server.local_addr(), "bob", "b-phone").await;
    let mut bob_web = TestClient::login(server.local_addr(), "bob", "b-web").await;
    assert!(matches!(
        bob.request(Body::Read(pb::Read {
            conversation_id: "d:alice:bob".into(),
            seq: 5
        }))
        .await,
        Body::Ok(_)
    ));
    bob_web
        .pump_until(|c| {
            c.pushes
                .iter()
                .flat_map(|p| &p.events)
                .any(|e| matches!(e.kind, Some(pb::event::Kind::Read(_))))
        })
        .await;
    let read = bob_web
        .pushes
        .iter()
        .flat_map(|p| &p.events)
        .find_map(|e| match &e.kind {
            Some(pb::event::Kind::Read(r)) => Some(r.clone()),
            _ => None,
        });
    assert_eq!(
        read.map(|r| (r.seq, r.device_id)),
        Some((5, "b-phone".to_owned()))
    );
    // Moving it back is a no-op: read state is a high-water mark.
    assert!(matches!(
        bob.request(Body::Read(pb::Read {
            conversation_id: "d:alice:bob".into(),
            seq: 2
        }))
        .await,
        Body::Ok(_)
    ));
    let Body::HistoryReply(page) = bob
        .request(Body::History(pb::History {
            conversation_id: "d:alice:bob".into(),
            from_seq: 0,
            backward: true,
            limit: 3,
        }))
        .await
    else {
        panic!("expected HISTORY_REPLY");
    };
    let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [7, 6, 5]);
    assert_eq!((page.last_seq, page.visible_from), (7, 1));
    match bob
        .request(Body::History(pb::History {
            conversation_id: "d:alice:carol".into(),
            ..Default::default()
        }))
        .await
    {
        Body::RequestError(e) => assert_eq!(e.code, RequestCode::UNKNOWN_CONVERSATION.0),
        other => panic!("expected UNKNOWN_CONVERSATION, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn handshake_refusals_say_which() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let addr = server.local_addr();
    let now = now_unix();
    let cases = [
        (
            "expired",
            token_with("alice", "d1", Platform::Web, now - 7200, now - 3600),
            close::TOKEN_EXPIRED,
        ),
        (
            "not yet valid",
            token_with("alice", "d1", Platform::Web, now + 3600, now + 7200),
            close::TOKEN_NOT_YET_VALID,
        ),
        (
            "wrong platform",
            token_with("alice", "d1", Platform::Ios, now, now + 60),
            close::TOKEN_INVALID,
        ),
        (
            "forged",
            format!("{}x", token("alice", "d1")),
            close::TOKEN_INVALID,
        ),
    ];
    for (what, tok, code) in cases {
        let c = TestClient::open(addr, hello(tok, "d1", Platform::Web, None)).await;
        let closed = c
            .closed
            .unwrap_or_else(|| panic!("{what}: expected a CLOSE"));
        assert_eq!(closed.code, code, "{what}: {}", closed.reason);
    }
    // Replay: the same login token twice.
    let tok = token("alice", "d2");
    let first = TestClient::open(addr, hello(tok.clone(), "d2", Platform::Web, None)).await;
    assert!(first.welcome.is_some());
    let second = TestClient::open(addr, hello(tok, "d2", Platform::Web, None)).await;
    assert_eq!(second.closed.map(|c| c.code), Some(close::TOKEN_REPLAYED));
    // A resume token from WELCOME works, more than once ([AUTH-5.2]).
    let resume = first
        .welcome
        .as_ref()
        .map(|w| w.resume_token.clone())
        .expect("resume token");
    for _ in 0..2 {
        let mut h = hello(String::new(), "d2", Platform::Web, None);
        h.credential = Some(pb::hello::Credential::ResumeToken(resume.clone()));
        let again = TestClient::open(addr, h).await;
        assert!(again.welcome.is_some(), "{:?}", again.closed);
    }
    // Unknown app.
    let mut h = hello(token("alice", "d3"), "d3", Platform::Web, None);
    h.app_id = "nope".into();
    let c = TestClient::open(addr, h).await;
    assert_eq!(c.closed.map(|c| c.code), Some(close::APP_UNKNOWN));
    server.shutdown().await;
}

#[tokio::test]
async fn device_policy_kicks_and_replaces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let addr = server.local_addr();
    let now = now_unix();
    let ios = |device: &str| {
        hello(
            token_with("alice", device, Platform::Ios, now - 5, now + 600),
            device,
            Platform::Ios,
            None,
        )
    };
    let mut first = TestClient::open(addr, ios("iphone-1")).await;
    assert!(first.welcome.is_some());
    // ios allows one session: a second iPhone kicks the first ([SESSION-5.2]).
    let _second = TestClient::open(addr, ios("iphone-2")).await;
    first.pump_until(|c| c.closed.is_some()).await;
    assert_eq!(
        first.closed.as_ref().map(|c| c.code),
        Some(close::DEVICE_KICKED)
    );
    // The same device again replaces its own session ([SESSION-5.1]).
    let mut web1 = TestClient::login(addr, "alice", "laptop").await;
    let _web2 = TestClient::login(addr, "alice", "laptop").await;
    web1.pump_until(|c| c.closed.is_some()).await;
    assert_eq!(
        web1.closed.as_ref().map(|c| c.code),
        Some(close::SESSION_REPLACED)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_its_code_and_others_keep_being_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let addr = server.local_addr();
    let mut alice = TestClient::login(addr, "alice", "a-phone").await;
    // Oversize content: a request error, the session goes on ([SYNC-6.2]).
    match alice.send_text("bob", "big", &"x".repeat(20_000)).await {
        Body::RequestError(e) => assert_eq!(e.code, RequestCode::CONTENT_TOO_LARGE.0),
        other => panic!("expected CONTENT_TOO_LARGE, got {other:?}"),
    }
    match alice.send_text("not valid!", "m", "hi").await {
        Body::RequestError(e) => assert_eq!(e.code, RequestCode::INVALID_USER_ID.0),
        other => panic!("expected INVALID_USER_ID, got {other:?}"),
    }
    // Raw garbage on other connections: each gets its own code, none disturbs alice.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let raw_cases: [(&[u8], Option<ErrorCode>); 4] = [
        (b"GET / HTTP/1.1\r\n\r\n", None), // stray: closed, no reply
        (b"MAGP\x01\x04\x01\x00", Some(ErrorCode::PROTOCOL_ERROR)), // reserved flag bit
        (
            b"MAGP\x01\x01\x12\x07\x80\x04\x00\x01",
            Some(ErrorCode::FRAME_TOO_LARGE),
        ),
        (
            b"MAGP\x01\x01\x12\x07\x02hi",
            Some(close::NOT_AUTHENTICATED),
        ), // SEND before HELLO
    ];
    for (bytes, want) in raw_cases {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(bytes).await.expect("write");
        let mut got = Vec::new();
        let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut got))
            .await
            .expect("server closes");
        match want {
            None => assert!(got.is_empty(), "stray traffic got {got:?}"),
            Some(code) => {
                assert!(got.starts_with(b"MAGP\x01"), "{got:?}");
                // CLOSE frame: 00 04 len code ...
                let frame = &got[5..];
                assert_eq!(&frame[..2], [0x00, 0x04], "{got:?}");
                assert_eq!(u64::from(frame[3]), code.0, "{got:?}");
            }
        }
    }
    let a = ack(alice.send_text("bob", "still-here", "still served").await);
    assert_eq!(a.seq, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_slow_reader_is_dropped_and_others_keep_being_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(dir.path(), |s| {
        s.session_queue = 16;
        s.write_timeout_secs = 1;
        // Alice sends 1,000 messages as fast as acks come ([SESSION-6.4] out of the way).
        s.send_rate = 100_000;
        s.send_burst = 100_000;
        s.packet_rate = 200_000;
        s.packet_burst = 200_000;
    })
    .await;
    let addr = server.local_addr();
    // Bob logs in and then never reads again.
    let slow = TestClient::login(addr, "bob", "b-phone").await;
    let mut alice = TestClient::login(addr, "alice", "a-phone").await;
    // Incompressible text, so that compression cannot hide the volume.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let body: String = (0..15_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 90) as u8)
        })
        .collect();
    for i in 0..1000 {
        let a = ack(alice.send_text("bob", &format!("s{i}"), &body).await);
        assert_eq!(a.seq, i + 1);
    }
    // Alice got every ack although bob never read, and bob's session is gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.session_count() > 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(server.session_count(), 1, "the slow reader was dropped");
    drop(slow);
    // Bob loses nothing: he syncs all 1,000 later.
    let mut bob = TestClient::login(addr, "bob", "b-phone2").await;
    let (events, _) = bob.sync_all(pb::Cursor::default()).await;
    assert_eq!(messages(&events).len(), 1000);
    server.shutdown().await;
}

#[tokio::test]
async fn refusals_answered_at_once_never_stall_the_connection() {
    // [SESSION-6.4]: every class counts against the send rate, and 200 SENDs written back to
    // back past it all get their answer (the backlog is refilled as refusals make room).
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(dir.path(), |s| {
        s.send_rate = 1;
        s.send_burst = 2;
    })
    .await;
    let mut alice = TestClient::login(server.local_addr(), "alice", "a-phone").await;
    let class = |i: usize| {
        if i < 2 {
            pb::MessageClass::Transient
        } else {
            pb::MessageClass::Content
        }
    };
    let sends = (0..200)
        .map(|i| {
            Body::Send(pb::Send {
                to: "bob".into(),
                client_msg_id: format!("p{i}"),
                class: class(i) as i32,
                content: Some(text_content("x")),
                ..Default::default()
            })
        })
        .collect();
    let started = std::time::Instant::now();
    let answers = alice.pipelined(sends).await;
    let refill = started.elapsed().as_secs() as usize + 1;
    let acked = answers
        .iter()
        .filter(|b| matches!(b, Body::SendAck(_)))
        .count();
    let refused = answers
        .iter()
        .filter(|b| matches!(b, Body::RequestError(e) if e.code == RequestCode::RATE_LIMITED.0))
        .count();
    assert_eq!(acked + refused, 200, "{answers:?}");
    assert!(
        (2..=2 + refill).contains(&acked),
        "two TRANSIENTs took the burst: {acked} acknowledged"
    );
    assert!(matches!(answers[0], Body::SendAck(_)));
    assert!(matches!(answers[1], Body::SendAck(_)));
    // The session is still open and serving.
    assert!(alice.closed.is_none(), "{:?}", alice.closed);
}
