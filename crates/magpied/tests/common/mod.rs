//! A small test client over real TCP: mints tokens, drives the sans-IO `ClientConnection`, and
//! lets a test wait for replies and pushes with a bound on time.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use magpie_auth::{AppSecret, Device, Platform, TokenClaims, mint, random_nonce};
use magpie_session::{Body, ClientConfig, ClientConnection, ClientEvent, Closed, pb};
use magpie_wire::VarInt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const APP: &str = "test";
pub const SECRET: &str = "test-secret-0123456789";
pub const WAIT: Duration = Duration::from_secs(5);

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

pub fn token_with(
    user: &str,
    device: &str,
    platform: Platform,
    not_before: u64,
    expires: u64,
) -> String {
    let claims = TokenClaims {
        app_id: APP.into(),
        user_id: user.into(),
        device: Device::Id(device.into()),
        platform,
        not_before,
        expires,
        nonce: random_nonce().expect("random"),
    };
    mint(&claims, &AppSecret::new(SECRET).expect("secret")).expect("mint")
}

pub fn token(user: &str, device: &str) -> String {
    let now = now_unix();
    token_with(user, device, Platform::Web, now - 10, now + 3600)
}

pub async fn start_server(dir: &std::path::Path) -> magpied::Server {
    start_server_on(dir, "127.0.0.1:0".parse().expect("addr")).await
}

pub async fn start_server_on(dir: &std::path::Path, listen: SocketAddr) -> magpied::Server {
    start_with(dir, |s| s.listen = listen).await
}

pub async fn start_with(
    dir: &std::path::Path,
    tweak: impl FnOnce(&mut magpied::Settings),
) -> magpied::Server {
    let mut settings = magpied::Settings::embedded(dir, APP, SECRET);
    tweak(&mut settings);
    magpied::Server::start(settings)
        .await
        .expect("server starts")
}

pub struct TestClient {
    stream: TcpStream,
    pub conn: ClientConnection,
    pub welcome: Option<pb::Welcome>,
    pub pushes: VecDeque<pb::Push>,
    replies: Vec<(VarInt, Body)>,
    pub closed: Option<Closed>,
    buf: Vec<u8>,
}

pub fn hello(
    token: String,
    device: &str,
    platform: Platform,
    cursor: Option<pb::Cursor>,
) -> pb::Hello {
    pb::Hello {
        app_id: APP.into(),
        credential: Some(pb::hello::Credential::Token(token)),
        device_id: device.into(),
        platform: platform.to_proto_i32(),
        cursor,
        ..Default::default()
    }
}

impl TestClient {
    /// Connects and completes the handshake (or records the CLOSE).
    pub async fn open(addr: SocketAddr, hello: pb::Hello) -> TestClient {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let conn = ClientConnection::new(&ClientConfig::default(), hello, Instant::now());
        let mut c = TestClient {
            stream,
            conn,
            welcome: None,
            pushes: VecDeque::new(),
            replies: Vec::new(),
            closed: None,
            buf: vec![0; 64 * 1024],
        };
        c.pump_until(|c| c.welcome.is_some() || c.closed.is_some())
            .await;
        c
    }

    pub async fn login(addr: SocketAddr, user: &str, device: &str) -> TestClient {
        let c = TestClient::open(
            addr,
            hello(token(user, device), device, Platform::Web, None),
        )
        .await;
        assert!(
            c.welcome.is_some(),
            "{user}/{device} should log in, got {:?}",
            c.closed
        );
        c
    }

    fn collect_events(&mut self) {
        while let Some(ev) = self.conn.poll_event() {
            match ev {
                ClientEvent::Welcome(w) => self.welcome = Some(w),
                ClientEvent::Push(p) => self.pushes.push_back(p),
                ClientEvent::Reply { id, body } => self.replies.push((id, body)),
                ClientEvent::Closed(c) => self.closed = Some(c),
            }
        }
    }

    /// Moves bytes until `done` holds, the connection ends, or WAIT passes.
    pub async fn pump_until(&mut self, mut done: impl FnMut(&TestClient) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            self.collect_events();
            if let Some(bytes) = self.conn.poll_transmit(Instant::now())
                && self.stream.write_all(&bytes).await.is_err()
            {
                self.conn.handle_eof();
                continue;
            }
            if done(self) || self.closed.is_some() {
                return;
            }
            match tokio::time::timeout_at(deadline, self.stream.read(&mut self.buf)).await {
                Err(_) => return,
                Ok(Ok(0)) | Ok(Err(_)) => self.conn.handle_eof(),
                Ok(Ok(n)) => {
                    let data = self.buf[..n].to_vec();
                    self.conn.handle_bytes(Instant::now(), &data);
                }
            }
        }
    }

    /// Moves bytes for `dur`, collecting whatever arrives.
    pub async fn drain(&mut self, dur: std::time::Duration) {
        let until = tokio::time::Instant::now() + dur;
        while tokio::time::Instant::now() < until && self.closed.is_none() {
            self.collect_events();
            if let Some(bytes) = self.conn.poll_transmit(Instant::now())
                && self.stream.write_all(&bytes).await.is_err()
            {
                self.conn.handle_eof();
                continue;
            }
            match tokio::time::timeout_at(until, self.stream.read(&mut self.buf)).await {
                Err(_) => break,
                Ok(Ok(0)) | Ok(Err(_)) => self.conn.handle_eof(),
                Ok(Ok(n)) => {
                    let data = self.buf[..n].to_vec();
                    self.conn.handle_bytes(Instant::now(), &data);
                }
            }
        }
        self.collect_events();
    }

    pub async fn request(&mut self, body: Body) -> Body {
        let id = self.conn.request(body).expect("session open");
        self.pump_until(|c| c.replies.iter().any(|(i, _)| *i == id))
            .await;
        let pos = self
            .replies
            .iter()
            .position(|(i, _)| *i == id)
            .unwrap_or_else(|| {
                panic!(
                    "no reply to request {id} within {WAIT:?}; closed: {:?}",
                    self.closed
                )
            });
        self.replies.remove(pos).1
    }

    /// Writes every request before reading any answer; the answers in request order.
    #[allow(dead_code)] // not every test binary pipelines
    pub async fn pipelined(&mut self, bodies: Vec<Body>) -> Vec<Body> {
        let ids: Vec<VarInt> = bodies
            .into_iter()
            .map(|b| self.conn.request(b).expect("session open"))
            .collect();
        self.pump_until(|c| ids.iter().all(|id| c.replies.iter().any(|(i, _)| i == id)))
            .await;
        ids.iter()
            .map(|id| {
                let pos = self.replies.iter().position(|(i, _)| i == id);
                let pos = pos.unwrap_or_else(|| {
                    panic!(
                        "no reply to request {id} within {WAIT:?}; {} of {} answered; closed: {:?}",
                        self.replies.len(),
                        ids.len(),
                        self.closed
                    )
                });
                self.replies.remove(pos).1
            })
            .collect()
    }

    pub async fn send_text(&mut self, to: &str, client_msg_id: &str, text: &str) -> Body {
        self.send_class(to, client_msg_id, text, pb::MessageClass::Content)
            .await
    }

    pub async fn send_class(
        &mut self,
        to: &str,
        client_msg_id: &str,
        text: &str,
        class: pb::MessageClass,
    ) -> Body {
        self.request(Body::Send(pb::Send {
            to: to.into(),
            client_msg_id: client_msg_id.into(),
            class: class as i32,
            content: Some(text_content(text)),
            ..Default::default()
        }))
        .await
    }

    /// Waits for pushed events until `n` stored events have arrived (or WAIT passes).
    pub async fn events(&mut self, n: usize) -> Vec<pb::Event> {
        self.pump_until(|c| c.pushes.iter().map(|p| p.events.len()).sum::<usize>() >= n)
            .await;
        self.pushes.drain(..).flat_map(|p| p.events).collect()
    }

    /// Pulls every event after `offset` ([SYNC-4.1]).
    pub async fn sync_all(&mut self, after: pb::Cursor) -> (Vec<pb::Event>, pb::SyncReply) {
        let mut cursor = after;
        let mut all = Vec::new();
        loop {
            let Body::SyncReply(reply) = self
                .request(Body::Sync(pb::Sync {
                    after: Some(cursor),
                    limit: 0,
                }))
                .await
            else {
                panic!("SYNC answered with something else");
            };
            let last = reply.events.last().map(|e| e.offset);
            all.extend(reply.events.iter().cloned());
            match last {
                Some(o) if o < reply.head => {
                    cursor = pb::Cursor {
                        epoch: reply.epoch,
                        offset: o,
                    }
                }
                _ => return (all, reply),
            }
        }
    }

    pub async fn close(mut self) {
        self.conn.close("bye");
        if let Some(bytes) = self.conn.poll_transmit(Instant::now()) {
            let _ = self.stream.write_all(&bytes).await;
        }
        let _ = self.stream.shutdown().await;
    }
}

pub fn text_content(text: &str) -> pb::Content {
    pb::Content {
        kind: Some(pb::content::Kind::Text(pb::Text {
            text: text.into(),
            mentions: vec![],
        })),
    }
}

pub fn text_of(m: &pb::Message) -> &str {
    match m.content.as_ref().and_then(|c| c.kind.as_ref()) {
        Some(pb::content::Kind::Text(t)) => &t.text,
        _ => "",
    }
}

pub fn messages(events: &[pb::Event]) -> Vec<&pb::Message> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::event::Kind::Message(m)) => Some(m),
            _ => None,
        })
        .collect()
}

pub fn ack(body: Body) -> pb::SendAck {
    match body {
        Body::SendAck(a) => a,
        other => panic!("expected SEND_ACK, got {other:?}"),
    }
}
