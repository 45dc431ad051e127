//! The client library against an in-process server (`common::FakeServer`) on 127.0.0.1:
//! connect, send, receive, sync, gaps, resend after a drop, reconnects and final closes.

mod common;

use std::future::Future;
use std::time::Duration;

use common::{APP, FakeServer, LIMIT, conversation};
use magpie_client::{
    Backoff, Client, ClientError, ClientOptions, ErrorCode, Event, Events, InitialSync, Platform,
    Stored, pb, text,
};
use magpie_session::{Body, close};

fn options(server: &FakeServer, user: &str, device: &str) -> ClientOptions {
    let mut o = ClientOptions::new(
        vec![server.addr()],
        APP,
        format!("ok:{user}"),
        device,
        Platform::Other,
    );
    o.backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    };
    o
}

async fn bounded<F: Future<Output = ()>>(test: F) {
    tokio::time::timeout(LIMIT * 3, test)
        .await
        .expect("test finished in time");
}

async fn next(events: &mut Events) -> Event {
    tokio::time::timeout(LIMIT, events.recv())
        .await
        .expect("an event in time")
        .expect("the client is running")
}

/// The next event that is not about the connection.
async fn next_data(events: &mut Events) -> Event {
    loop {
        match next(events).await {
            Event::Connected { .. } => {}
            Event::Disconnected {
                reconnecting: true, ..
            } => {}
            other => return other,
        }
    }
}

async fn next_message(events: &mut Events) -> Stored<pb::Message> {
    match next_data(events).await {
        Event::Message(m) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn text_of(m: &pb::Message) -> &str {
    match m.content.as_ref().and_then(|c| c.kind.as_ref()) {
        Some(pb::content::Kind::Text(t)) => &t.text,
        _ => "",
    }
}

/// No data event arrives for a short while.
async fn quiet(events: &mut Events) {
    let waited = tokio::time::timeout(Duration::from_millis(200), async {
        loop {
            match events.recv().await {
                Some(Event::Connected { .. }) => {}
                other => return other,
            }
        }
    })
    .await;
    if let Ok(event) = waited {
        panic!("expected nothing, got {event:?}");
    }
}

#[tokio::test]
async fn send_and_receive_on_both_sides() {
    bounded(async {
        let server = FakeServer::start().await;
        let (alice, mut alice_events) = Client::connect(options(&server, "alice", "phone"))
            .await
            .expect("alice connects");
        let (_bob, mut bob_events) = Client::connect(options(&server, "bob", "laptop"))
            .await
            .expect("bob connects");
        assert_eq!(alice.user_id(), "alice");
        assert!(matches!(next(&mut alice_events).await, Event::Connected { user_id, .. } if user_id == "alice"));

        let ack = alice
            .send_with_id("bob", "c-1", text("hi bob"), pb::MessageClass::Content)
            .await
            .expect("acked");
        assert_eq!(ack.conversation_id, "d:alice:bob");
        assert_eq!(ack.seq, 1);
        assert_eq!(ack.message_id, "d:alice:bob/1");
        assert!(!ack.duplicate);

        let got = next_message(&mut bob_events).await;
        assert_eq!((got.sender.as_str(), text_of(&got)), ("alice", "hi bob"));
        assert_eq!(got.offset, 1);
        // The sender's own stream carries it too ([SYNC-3.2]), recognisable by client_msg_id.
        let own = next_message(&mut alice_events).await;
        assert_eq!(own.client_msg_id, "c-1");
        assert_eq!(own.sender_device, "phone");
        assert_eq!(alice.cursor(), Some(pb::Cursor { epoch: 7, offset: 1 }));

        // Transient: never stored, delivered live, acked with seq 0.
        let ack = alice
            .send("bob", text("typing"), pb::MessageClass::Status)
            .await
            .expect("acked");
        assert_eq!(ack.seq, 0);
        assert!(matches!(next_data(&mut bob_events).await, Event::Live(m) if text_of(&m) == "typing"));
        alice.close().await;
    })
    .await;
}

#[tokio::test]
async fn offline_messages_are_synced_in_pages() {
    bounded(async {
        let server = FakeServer::start().await;
        server.state().page = 2;
        for i in 1..=5 {
            server.inject("alice", "bob", &format!("m{i}"));
        }
        let (bob, mut events) = Client::connect(options(&server, "bob", "laptop"))
            .await
            .expect("connects");
        for i in 1..=5u64 {
            let m = next_message(&mut events).await;
            assert_eq!((m.offset, m.seq), (i, i));
            assert_eq!(text_of(&m), format!("m{i}"));
        }
        quiet(&mut events).await;
        // Three SYNCs of two: 0→2, 2→4, 4→5.
        let syncs = server
            .state()
            .requests
            .iter()
            .filter(|(_, b)| matches!(b, Body::Sync(_)))
            .count();
        assert_eq!(syncs, 3);
        assert_eq!(
            bob.cursor(),
            Some(pb::Cursor {
                epoch: 7,
                offset: 5
            })
        );
    })
    .await;
}

#[tokio::test]
async fn new_device_from_head_skips_the_past() {
    bounded(async {
        let server = FakeServer::start().await;
        server.inject("alice", "bob", "old");
        let mut o = options(&server, "bob", "laptop");
        o.initial_sync = InitialSync::FromHead;
        let (_bob, mut events) = Client::connect(o).await.expect("connects");
        server.inject("alice", "bob", "new");
        let m = next_message(&mut events).await;
        assert_eq!((text_of(&m), m.offset), ("new", 2));
    })
    .await;
}

#[tokio::test]
async fn a_gap_in_pushes_is_pulled() {
    bounded(async {
        let server = FakeServer::start().await;
        let (_bob, mut events) = Client::connect(options(&server, "bob", "laptop"))
            .await
            .expect("connects");
        server.state().skip_pushes = 1;
        server.inject("alice", "bob", "lost push");
        server.inject("alice", "bob", "after the gap");
        let first = next_message(&mut events).await;
        let second = next_message(&mut events).await;
        assert_eq!(
            (
                text_of(&first),
                first.offset,
                text_of(&second),
                second.offset
            ),
            ("lost push", 1, "after the gap", 2)
        );
        quiet(&mut events).await;
    })
    .await;
}

#[tokio::test]
async fn send_is_resent_after_a_drop_and_stored_once() {
    bounded(async {
        let server = FakeServer::start().await;
        let (alice, mut events) = Client::connect(options(&server, "alice", "phone"))
            .await
            .expect("connects");
        server.state().drop_before_ack = 1;
        let ack = alice
            .send_with_id("bob", "retry-1", text("once"), pb::MessageClass::Content)
            .await
            .expect("acked after the reconnect");
        assert!(
            ack.duplicate,
            "the second SEND is the retry of a stored one"
        );
        assert_eq!(ack.seq, 1);
        {
            let state = server.state();
            assert_eq!(state.conversations[&conversation("alice", "bob")].len(), 1);
            // The reconnect used the resume token of the first WELCOME ([AUTH-5]).
            assert_eq!(state.hellos.len(), 2);
            assert!(matches!(
                &state.hellos[1].credential,
                Some(pb::hello::Credential::ResumeToken(t)) if t == "resume:alice:1"
            ));
            assert_eq!(state.hellos[1].cursor.map(|c| c.epoch), Some(7));
        }
        // The own message arrives once, whichever way.
        let m = next_message(&mut events).await;
        assert_eq!(m.client_msg_id, "retry-1");
        quiet(&mut events).await;
    })
    .await;
}

#[tokio::test]
async fn request_errors_come_back_typed() {
    bounded(async {
        let server = FakeServer::start().await;
        let (alice, _events) = Client::connect(options(&server, "alice", "phone"))
            .await
            .expect("connects");
        let err = alice
            .send("not valid!", text("x"), pb::MessageClass::Content)
            .await
            .expect_err("refused");
        assert!(
            matches!(
                &err,
                ClientError::Request {
                    name: "INVALID_USER_ID",
                    code: 0x102,
                    ..
                }
            ),
            "{err:?}"
        );
        alice
            .send_with_id("bob", "same", text("a"), pb::MessageClass::Content)
            .await
            .expect("first");
        let err = alice
            .send_with_id("bob", "same", text("b"), pb::MessageClass::Content)
            .await
            .expect_err("reused id");
        assert_eq!(err.code_name(), Some("CLIENT_MSG_ID_REUSED"));
    })
    .await;
}

#[tokio::test]
async fn refused_login_reports_the_close_code() {
    bounded(async {
        let server = FakeServer::start().await;
        let mut o = options(&server, "alice", "phone");
        o.token = "expired".into();
        let err = Client::connect(o).await.expect_err("refused");
        match err {
            ClientError::Closed { name, reason, code } => {
                assert_eq!((name, code), ("TOKEN_EXPIRED", 0x0E));
                assert!(reason.contains("expired"), "{reason}");
            }
            other => panic!("expected TOKEN_EXPIRED, got {other:?}"),
        }
        // Refused logins are not retried.
        assert_eq!(server.state().hellos.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn real_login_tokens_work() {
    bounded(async {
        let server = FakeServer::start().await;
        let secret = magpie_auth::AppSecret::new(common::SECRET).expect("secret");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let claims = magpie_auth::TokenClaims {
            app_id: APP.into(),
            user_id: "carol".into(),
            device: magpie_auth::Device::Id("tab".into()),
            platform: Platform::Web,
            not_before: now,
            expires: now + 60,
            nonce: magpie_auth::random_nonce().expect("nonce"),
        };
        let token = magpie_auth::mint(&claims, &secret).expect("mint");
        let mut o = options(&server, "x", "tab");
        o.token = token;
        o.platform = Platform::Web;
        let (carol, _events) = Client::connect(o.clone()).await.expect("connects");
        assert_eq!(carol.user_id(), "carol");
        // Another device than the token's: TOKEN_INVALID.
        o.device_id = "phone".into();
        let err = Client::connect(o).await.expect_err("wrong device");
        assert_eq!(err.code_name(), Some("TOKEN_INVALID"));
    })
    .await;
}

#[tokio::test]
async fn unreachable_first_server_fails_over() {
    bounded(async {
        let server = FakeServer::start().await;
        // A port nobody listens on: bind, note the port, close.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let dead_addr = dead.local_addr().expect("addr").to_string();
        drop(dead);
        let mut o = options(&server, "alice", "phone");
        o.servers = vec![dead_addr.clone(), server.addr()];
        let (alice, _events) = Client::connect(o).await.expect("fails over");
        assert_eq!(alice.user_id(), "alice");

        let mut o = options(&server, "alice", "phone");
        o.servers = vec![dead_addr];
        let err = Client::connect(o).await.expect_err("nobody there");
        assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn going_away_reconnects_and_catches_up() {
    bounded(async {
        let server = FakeServer::start().await;
        let (bob, mut events) = Client::connect(options(&server, "bob", "laptop"))
            .await
            .expect("connects");
        bob.watch(vec!["alice".into()]).await.expect("watching");
        assert!(matches!(next(&mut events).await, Event::Connected { .. }));
        server.close_sessions("bob", ErrorCode::GOING_AWAY, "restarting");
        match next(&mut events).await {
            Event::Disconnected {
                code,
                name,
                reconnecting,
                ..
            } => {
                assert_eq!(
                    (code, name, reconnecting),
                    (ErrorCode::GOING_AWAY, "GOING_AWAY", true)
                );
            }
            other => panic!("expected Disconnected, got {other:?}"),
        }
        // Sent while bob is away (or reconnecting): synced or pushed, once.
        server.inject("alice", "bob", "while away");
        let mut connected = false;
        let mut got = Vec::new();
        while got.is_empty() || !connected {
            match next(&mut events).await {
                Event::Connected { .. } => connected = true,
                Event::Message(m) => got.push(text_of(&m).to_owned()),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(got, ["while away"]);
        // The watch list was restored on the new session.
        server
            .wait_for("the WATCH again", |s| {
                s.requests
                    .iter()
                    .filter(|(u, b)| {
                        u == "bob" && matches!(b, Body::Watch(w) if w.users == ["alice"])
                    })
                    .count()
                    == 2
            })
            .await;
        quiet(&mut events).await;
        // Requests work on the new session.
        let statuses = bob
            .presence(vec!["alice".into(), "bob".into()])
            .await
            .expect("presence");
        assert_eq!(
            statuses.iter().map(|s| s.online).collect::<Vec<_>>(),
            [false, true]
        );
    })
    .await;
}

#[tokio::test]
async fn session_replaced_is_final() {
    bounded(async {
        let server = FakeServer::start().await;
        let (alice, mut events) = Client::connect(options(&server, "alice", "phone"))
            .await
            .expect("connects");
        assert!(matches!(next(&mut events).await, Event::Connected { .. }));
        server.close_sessions("alice", close::SESSION_REPLACED, "same device connected again");
        match next(&mut events).await {
            Event::Disconnected {
                name,
                reason,
                reconnecting,
                ..
            } => {
                assert_eq!(name, "SESSION_REPLACED");
                assert_eq!(reason, "same device connected again");
                assert!(!reconnecting);
            }
            other => panic!("expected Disconnected, got {other:?}"),
        }
        assert!(
            tokio::time::timeout(LIMIT, events.recv())
                .await
                .expect("ends")
                .is_none()
        );
        let err = alice.read("d:alice:bob", 1).await.expect_err("closed");
        assert!(
            matches!(&err, ClientError::Shutdown { reason: Some(r) } if r.contains("SESSION_REPLACED")),
            "{err:?}"
        );
        assert_eq!(server.state().hellos.len(), 1, "no reconnect");
    })
    .await;
}

#[tokio::test]
async fn max_reconnects_gives_up() {
    bounded(async {
        let server = FakeServer::start().await;
        let mut o = options(&server, "alice", "phone");
        o.max_reconnects = Some(2);
        let (_alice, mut events) = Client::connect(o).await.expect("connects");
        assert!(matches!(next(&mut events).await, Event::Connected { .. }));
        // Every later HELLO is refused with a retryable code.
        for _ in 0..5 {
            server
                .state()
                .refuse
                .push_back((ErrorCode::INTERNAL_ERROR, "overloaded".into()));
        }
        server.close_sessions("alice", ErrorCode::GOING_AWAY, "bye");
        assert!(matches!(
            next(&mut events).await,
            Event::Disconnected {
                reconnecting: true,
                ..
            }
        ));
        match next(&mut events).await {
            Event::Disconnected {
                reconnecting: false,
                name,
                ..
            } => assert_eq!(name, "INTERNAL_ERROR"),
            other => panic!("expected the final Disconnected, got {other:?}"),
        }
        // The first HELLO and two reconnect attempts.
        assert_eq!(server.state().hellos.len(), 3);
    })
    .await;
}

#[tokio::test]
async fn stream_reset_is_reported_and_rebuilt() {
    bounded(async {
        let server = FakeServer::start().await;
        server.inject("alice", "bob", "one");
        let (_bob, mut events) = Client::connect(options(&server, "bob", "laptop"))
            .await
            .expect("connects");
        let m = next_message(&mut events).await;
        assert_eq!(text_of(&m), "one");
        server.reset_streams();
        server.close_sessions("bob", ErrorCode::GOING_AWAY, "restarting");
        assert!(matches!(next_data(&mut events).await, Event::Reset));
        let m = next_message(&mut events).await;
        assert_eq!((text_of(&m), m.offset, m.seq), ("one", 1, 1));
        server.inject("alice", "bob", "two");
        let m = next_message(&mut events).await;
        assert_eq!((text_of(&m), m.offset), ("two", 2));
    })
    .await;
}

#[tokio::test]
async fn read_history_and_close() {
    bounded(async {
        let server = FakeServer::start().await;
        for i in 1..=3 {
            server.inject("alice", "bob", &format!("m{i}"));
        }
        let mut o = options(&server, "bob", "laptop");
        o.initial_sync = InitialSync::FromHead;
        let (bob, mut events) = Client::connect(o).await.expect("connects");
        let page = bob
            .history(&conversation("alice", "bob"), 0, true, 2)
            .await
            .expect("history");
        assert_eq!(
            page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
            [3, 2]
        );
        assert_eq!(page.last_seq, 3);
        bob.read(&conversation("alice", "bob"), 3)
            .await
            .expect("read");
        match next_data(&mut events).await {
            Event::Read(r) => assert_eq!((r.seq, r.device_id.as_str(), r.offset), (3, "laptop", 4)),
            other => panic!("expected a read marker, got {other:?}"),
        }
        bob.close().await;
        assert!(bob.is_closed());
        match next(&mut events).await {
            Event::Disconnected { reconnecting, .. } => assert!(!reconnecting),
            other => panic!("expected Disconnected, got {other:?}"),
        }
        server
            .wait_for("the CLOSE", |s| {
                s.client_closes
                    .iter()
                    .any(|(code, _)| *code == ErrorCode::NO_ERROR)
            })
            .await;
        let err = bob.read("d:alice:bob", 1).await.expect_err("closed");
        assert!(matches!(err, ClientError::Shutdown { .. }));
    })
    .await;
}
