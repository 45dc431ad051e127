//! The same frames over WebSocket (B1), and token revocation through the admin API ([AUTH-6]).

mod common;

use std::time::Instant;

use common::*;
use futures::{SinkExt, StreamExt};
use magpie_auth::Platform;
use magpie_session::{ClientConfig, ClientConnection, ClientEvent, close};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn websocket_carries_the_same_frames() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(dir.path(), |s| {
        s.ws_listen = Some("127.0.0.1:0".parse().expect("addr"))
    })
    .await;
    let ws_addr = server.ws_addr().expect("ws enabled");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{ws_addr}/"))
        .await
        .expect("ws connect");
    let mut conn = ClientConnection::new(
        &ClientConfig::default(),
        hello(token("wendy", "browser"), "browser", Platform::Web, None),
        Instant::now(),
    );
    let mut welcome = None;
    let deadline = tokio::time::Instant::now() + WAIT;
    while welcome.is_none() {
        if let Some(bytes) = conn.poll_transmit(Instant::now()) {
            ws.send(Message::Binary(bytes)).await.expect("ws send");
        }
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("in time");
        match msg {
            Some(Ok(Message::Binary(data))) => conn.handle_bytes(Instant::now(), &data),
            other => panic!("unexpected {other:?}"),
        }
        while let Some(ev) = conn.poll_event() {
            match ev {
                ClientEvent::Welcome(w) => welcome = Some(w),
                ClientEvent::Closed(c) => panic!("closed: {c:?}"),
                _ => {}
            }
        }
    }
    assert_eq!(welcome.map(|w| w.user_id), Some("wendy".to_owned()));
    server.shutdown().await;
}

async fn post(addr: std::net::SocketAddr, path: &str, headers: &[(&str, String)]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 0\r\nconnection: close\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    tokio::time::timeout(WAIT, s.read_to_string(&mut out))
        .await
        .expect("in time")
        .expect("read");
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

#[tokio::test]
async fn revocation_ends_sessions_and_refuses_older_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(dir.path(), |s| {
        s.admin_listen = Some("127.0.0.1:0".parse().expect("addr"))
    })
    .await;
    let admin = server.admin_addr().expect("admin enabled");
    let mut alice = TestClient::login(server.local_addr(), "alice", "a-phone").await;
    // A token minted now, before the revocation, for a second login afterwards.
    let early = token_with(
        "alice",
        "a-web",
        Platform::Web,
        now_unix() - 1,
        now_unix() + 600,
    );

    let path = "/v1/apps/test/users/alice/revoke";
    let ts = now_unix();
    let (status, body) = post(
        admin,
        path,
        &[
            ("x-magpie-timestamp", ts.to_string()),
            ("x-magpie-signature", "00".repeat(32)),
        ],
    )
    .await;
    assert_eq!(status, 401, "a bad signature is refused: {body}");
    let sig = magpied::admin_signature(SECRET, "POST", path, ts);
    let (status, body) = post(
        admin,
        path,
        &[
            ("x-magpie-timestamp", ts.to_string()),
            ("x-magpie-signature", sig),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    alice.pump_until(|c| c.closed.is_some()).await;
    assert_eq!(
        alice.closed.as_ref().map(|c| c.code),
        Some(close::TOKEN_REVOKED)
    );
    let again = TestClient::open(
        server.local_addr(),
        hello(early, "a-web", Platform::Web, None),
    )
    .await;
    assert_eq!(
        again.closed.as_ref().map(|c| c.code),
        Some(close::TOKEN_REVOKED)
    );
    // A token minted after the revocation works.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let now = now_unix();
    let fresh_token = token_with("alice", "a-web2", Platform::Web, now, now + 600);
    let fresh = TestClient::open(
        server.local_addr(),
        hello(fresh_token, "a-web2", Platform::Web, None),
    )
    .await;
    assert!(fresh.welcome.is_some(), "{:?}", fresh.closed);
    server.shutdown().await;
}
