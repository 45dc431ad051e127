//! The client library and the `magpie` CLI against the reference server, `magpied`, on
//! 127.0.0.1.
//!
//! It uses `magpied::{Server, Settings, AppConfig}`: `Server::start(settings)`, `local_addr()`,
//! `shutdown()`.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use common::{APP, SECRET, start_magpied, start_magpied_with};
use magpie_auth::{AppSecret, Device, Platform, TokenClaims};
use magpie_client::{
    Backoff, Client, ClientError, ClientOptions, ErrorCode, Event, Events, Stored, conversation_id,
    pb, text,
};

const LIMIT: Duration = Duration::from_secs(10);

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn token(user: &str, device: &str) -> String {
    let claims = TokenClaims {
        app_id: APP.into(),
        user_id: user.into(),
        device: Device::Id(device.into()),
        platform: Platform::Other,
        not_before: now() - 10,
        expires: now() + 3600,
        nonce: magpie_auth::random_nonce().expect("nonce"),
    };
    magpie_auth::mint(&claims, &AppSecret::new(SECRET).expect("secret")).expect("mint")
}

fn options(addr: SocketAddr, user: &str, device: &str) -> ClientOptions {
    let mut o = ClientOptions::new(
        vec![addr.to_string()],
        APP,
        token(user, device),
        device,
        Platform::Other,
    );
    o.backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
    };
    o
}

async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(LIMIT * 4, test)
        .await
        .expect("test finished in time");
}

async fn next(events: &mut Events) -> Event {
    tokio::time::timeout(LIMIT, events.recv())
        .await
        .expect("an event in time")
        .expect("the client is running")
}

async fn next_message(events: &mut Events) -> Stored<pb::Message> {
    loop {
        match next(events).await {
            Event::Message(m) => return m,
            Event::Connected { .. }
            | Event::Disconnected {
                reconnecting: true, ..
            } => {}
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

fn text_of(m: &pb::Message) -> String {
    match m.content.as_ref().and_then(|c| c.kind.as_ref()) {
        Some(pb::content::Kind::Text(t)) => t.text.clone(),
        _ => String::new(),
    }
}

#[tokio::test]
async fn send_receive_dedup_and_offline_sync() {
    bounded(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = start_magpied(dir.path(), "127.0.0.1:0".parse().expect("addr")).await;
        let addr = server.local_addr();
        let (alice, mut alice_events) = Client::connect(options(addr, "alice", "phone"))
            .await
            .expect("alice connects");
        let (bob, mut bob_events) = Client::connect(options(addr, "bob", "laptop"))
            .await
            .expect("bob connects");

        let ack = alice
            .send_with_id("bob", "m-1", text("hello bob"), pb::MessageClass::Content)
            .await
            .expect("acked");
        assert_eq!(ack.conversation_id, conversation_id("alice", "bob"));
        assert_eq!(ack.seq, 1);
        assert!(!ack.duplicate);
        let got = next_message(&mut bob_events).await;
        assert_eq!(
            (got.sender.as_str(), text_of(&got)),
            ("alice", "hello bob".into())
        );
        let own = next_message(&mut alice_events).await;
        assert_eq!(own.client_msg_id, "m-1");

        // A retry with the same id is stored once ([SYNC-5.3]).
        let again = alice
            .send_with_id("bob", "m-1", text("hello bob"), pb::MessageClass::Content)
            .await
            .expect("acked");
        assert!(again.duplicate);
        assert_eq!(again.seq, 1);

        // Bob goes offline; what alice sends meanwhile is synced when he is back.
        let cursor = bob.cursor().expect("a cursor");
        bob.close().await;
        for i in 2..=4 {
            alice
                .send(
                    "bob",
                    text(format!("offline {i}")),
                    pb::MessageClass::Content,
                )
                .await
                .expect("acked");
        }
        let mut o = options(addr, "bob", "laptop");
        o.cursor = Some((cursor.epoch, cursor.offset));
        let (_bob, mut bob_events) = Client::connect(o).await.expect("bob is back");
        for i in 2..=4 {
            let m = next_message(&mut bob_events).await;
            assert_eq!((m.seq, text_of(&m)), (i, format!("offline {i}")));
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_send_past_the_rate_waits_or_fails_with_when_to_retry() {
    // [SESSION-6.4], [SESSION-6.5]: 10 SENDs a second per user, bursts of 2.
    bounded(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = start_magpied_with(dir.path(), |s| {
            s.send_rate = 10;
            s.send_burst = 2;
        })
        .await;
        // By default a send waits out RATE_LIMITED and goes again.
        let (alice, _a) = Client::connect(options(server.local_addr(), "alice", "a1"))
            .await
            .expect("alice connects");
        let started = std::time::Instant::now();
        for i in 1..=4 {
            let ack = alice
                .send_text("bob", &format!("m{i}"))
                .await
                .expect("sent");
            assert_eq!((ack.seq, ack.duplicate), (i, false));
        }
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "two waits of about 100 ms: {:?}",
            started.elapsed()
        );
        // Without waits the third fails, saying when to send again; then it is new.
        let mut o = options(server.local_addr(), "carol", "c1");
        o.rate_limit_waits = 0;
        let (carol, _c) = Client::connect(o).await.expect("carol connects");
        let send =
            |id: &'static str| carol.send_with_id("bob", id, text(id), pb::MessageClass::Content);
        send("c1").await.expect("first");
        send("c2").await.expect("second");
        let wait = match send("c3").await {
            Err(ClientError::Request {
                name: "RATE_LIMITED",
                retry_after: Some(wait),
                ..
            }) => wait,
            other => panic!("expected RATE_LIMITED with a wait, got {other:?}"),
        };
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        tokio::time::sleep(wait).await;
        let ack = send("c3").await.expect("after the wait");
        assert_eq!(
            (ack.seq, ack.duplicate),
            (3, false),
            "the refusal took no seq"
        );
        // A wait past rate_limit_max_wait is not waited out.
        let mut o = options(server.local_addr(), "dan", "d1");
        o.rate_limit_max_wait = Duration::from_millis(1);
        let (dan, _d) = Client::connect(o).await.expect("dan connects");
        dan.send_text("bob", "1").await.expect("first");
        dan.send_text("bob", "2").await.expect("second");
        let err = dan
            .send_text("bob", "3")
            .await
            .expect_err("too long a wait");
        assert_eq!(err.code_name(), Some("RATE_LIMITED"));
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn resumes_across_a_server_restart() {
    bounded(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = start_magpied(dir.path(), "127.0.0.1:0".parse().expect("addr")).await;
        let addr = server.local_addr();
        let (_bob, mut events) = Client::connect(options(addr, "bob", "laptop"))
            .await
            .expect("bob connects");
        assert!(matches!(next(&mut events).await, Event::Connected { .. }));
        server.shutdown().await;
        match next(&mut events).await {
            Event::Disconnected {
                code, reconnecting, ..
            } => {
                assert_eq!(code, ErrorCode::GOING_AWAY);
                assert!(reconnecting);
            }
            other => panic!("expected GOING_AWAY, got {other:?}"),
        }
        // Same address, same data: bob comes back with his resume token.
        let server = start_magpied(dir.path(), addr).await;
        let (alice, _alice_events) = Client::connect(options(addr, "alice", "phone"))
            .await
            .expect("alice connects");
        alice
            .send_text("bob", "after the restart")
            .await
            .expect("acked");
        let m = next_message(&mut events).await;
        assert_eq!(text_of(&m), "after the restart");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn cli_send_and_listen() {
    bounded(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = start_magpied(dir.path(), "127.0.0.1:0".parse().expect("addr")).await;
        let addr = server.local_addr().to_string();
        let magpie = env!("CARGO_BIN_EXE_magpie");
        let run = |args: Vec<String>| async move {
            tokio::time::timeout(
                LIMIT,
                tokio::process::Command::new(magpie)
                    .args(args)
                    .stdin(Stdio::null())
                    .kill_on_drop(true)
                    .output(),
            )
            .await
            .expect("in time")
            .expect("runs")
        };
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let out = run(args(&[
            "token", "--app", APP, "--secret", SECRET, "--user", "alice",
        ]))
        .await;
        assert!(out.status.success());
        let alice_token = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("token")
            .to_owned();
        let out = run(args(&[
            "send",
            "--server",
            &addr,
            "--app",
            APP,
            "--token",
            &alice_token,
            "--to",
            "bob",
            "hi from the cli",
        ]))
        .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ack: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(ack["seq"], 1);
        assert_eq!(ack["conversation_id"], "d:alice:bob");

        let out = run(args(&[
            "token", "--app", APP, "--secret", SECRET, "--user", "bob",
        ]))
        .await;
        let bob_token = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("token")
            .to_owned();
        let out = run(args(&[
            "listen",
            "--server",
            &addr,
            "--app",
            APP,
            "--token",
            &bob_token,
            "--count",
            "1",
            "--timeout",
            "5",
        ]))
        .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(line["type"], "message");
        assert_eq!(line["text"], "hi from the cli");
        assert_eq!(line["sender"], "alice");

        // A token that is already used: TOKEN_REPLAYED, non-zero exit, the name on stderr.
        let out = run(args(&[
            "send",
            "--server",
            &addr,
            "--app",
            APP,
            "--token",
            &alice_token,
            "--to",
            "bob",
            "again",
        ]))
        .await;
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("TOKEN_REPLAYED"));
        server.shutdown().await;
    })
    .await;
}
