//! Drives a client and a server connection against each other in memory, without sockets.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use magpie_session::{
    Body, ClientConfig, ClientConnection, ClientEvent, Initiator, Rate, ServerConfig,
    ServerConnection, ServerEvent, close, compression_to_proto, limits_to_proto, pb,
};
use magpie_wire::{Compression, ErrorCode, FrameType, Packet, VarInt};

struct Pair {
    now: Instant,
    client: ClientConnection,
    server: ServerConnection,
    server_events: Vec<ServerEvent>,
    client_events: Vec<ClientEvent>,
}

impl Pair {
    fn new(client_config: ClientConfig) -> Pair {
        Pair::with_server(client_config, ServerConfig::default())
    }

    fn with_server(client_config: ClientConfig, server_config: ServerConfig) -> Pair {
        let now = Instant::now();
        let hello = pb::Hello {
            app_id: "demo".into(),
            credential: Some(pb::hello::Credential::Token("t".into())),
            device_id: "phone-1".into(),
            platform: pb::Platform::Ios as i32,
            ..Default::default()
        };
        Pair {
            now,
            client: ClientConnection::new(&client_config, hello, now),
            server: ServerConnection::new(server_config, now),
            server_events: Vec::new(),
            client_events: Vec::new(),
        }
    }

    /// Moves bytes both ways until nothing moves.
    fn drive(&mut self) {
        loop {
            let mut moved = false;
            if let Some(bytes) = self.client.poll_transmit(self.now) {
                self.server.handle_bytes(self.now, &bytes);
                moved = true;
            }
            while let Some(ev) = self.server.poll_event() {
                self.server_events.push(ev);
            }
            if let Some(bytes) = self.server.poll_transmit(self.now) {
                self.client.handle_bytes(self.now, &bytes);
                moved = true;
            }
            while let Some(ev) = self.client.poll_event() {
                self.client_events.push(ev);
            }
            if !moved {
                break;
            }
        }
    }

    fn open(&mut self) -> pb::Welcome {
        self.drive();
        let Some(ServerEvent::Hello { id, hello }) = self.server_events.pop() else {
            panic!("expected HELLO, got {:?}", self.server_events);
        };
        let negotiated = self.server.negotiate(&hello).expect("negotiates");
        let welcome = pb::Welcome {
            user_id: "alice".into(),
            compression: compression_to_proto(negotiated.compression) as i32,
            limits: Some(limits_to_proto(&magpie_wire::Limits::default())),
            heartbeat_ms: negotiated.heartbeat.as_millis() as u32,
            idle_timeout_ms: negotiated.idle_timeout.as_millis() as u32,
            ..Default::default()
        };
        self.server
            .accept(self.now, id, welcome.clone(), &negotiated);
        self.drive();
        assert!(matches!(
            self.client_events.pop(),
            Some(ClientEvent::Welcome(_))
        ));
        welcome
    }
}

#[test]
fn handshake_request_and_compressed_reply() {
    let mut pair = Pair::new(ClientConfig::default());
    let welcome = pair.open();
    assert_eq!(
        welcome.compression,
        pb::CompressionMode::CompressionDeflate as i32
    );
    assert!(pair.server.is_open() && pair.client.is_open());

    let text = "see you at the station at six ".repeat(20);
    let send = pb::Send {
        to: "bob".into(),
        client_msg_id: "c1".into(),
        content: Some(pb::Content {
            kind: Some(pb::content::Kind::Text(pb::Text {
                text: text.clone(),
                mentions: vec![],
            })),
        }),
        ..Default::default()
    };
    let id = pair.client.request(Body::Send(send.clone())).expect("open");
    pair.drive();
    assert_eq!(
        pair.server_events.pop(),
        Some(ServerEvent::Request {
            id,
            body: Body::Send(send)
        })
    );
    let ack = pb::SendAck {
        conversation_id: "d:alice:bob".into(),
        seq: 1,
        ..Default::default()
    };
    pair.server.reply(id, Body::SendAck(ack.clone()));
    pair.drive();
    assert_eq!(
        pair.client_events.pop(),
        Some(ClientEvent::Reply {
            id,
            body: Body::SendAck(ack)
        })
    );
}

#[test]
fn requests_before_welcome_are_refused() {
    let mut pair = Pair::new(ClientConfig::default());
    pair.drive();
    // A raw SEND written before the server accepted: NOT_AUTHENTICATED ([SESSION-2.2]).
    let mut server = ServerConnection::new(ServerConfig::default(), pair.now);
    let mut bytes = BytesMut::from(&b"MAGP\x01"[..]);
    let mut enc = magpie_wire::Encoder::default();
    enc.encode(
        Packet::new(FrameType::SEND, vec![]).with_id(VarInt::from_u32(5)),
        &mut bytes,
    )
    .expect("encodes");
    server.handle_bytes(pair.now, &bytes);
    let closed = std::iter::from_fn(|| server.poll_event())
        .find_map(|e| match e {
            ServerEvent::Closed(c) => Some(c),
            _ => None,
        })
        .expect("closed");
    assert_eq!(closed.code, close::NOT_AUTHENTICATED);
    assert_eq!(closed.initiator, Initiator::Local);
    let written = server.poll_transmit(pair.now).expect("preface and CLOSE");
    assert!(written.starts_with(b"MAGP\x01"));
    assert!(server.is_done());
}

#[test]
fn stray_traffic_gets_no_reply() {
    let now = Instant::now();
    let mut server = ServerConnection::new(ServerConfig::default(), now);
    server.handle_bytes(now, b"GET / HTTP/1.1\r\n");
    assert!(
        matches!(server.poll_event(), Some(ServerEvent::Closed(c)) if c.code == ErrorCode::PROTOCOL_ERROR)
    );
    assert_eq!(server.poll_transmit(now), None);
    assert!(server.is_done());
}

#[test]
fn heartbeat_and_idle_timeout() {
    let mut pair = Pair::new(ClientConfig {
        heartbeat: Duration::from_secs(10),
        ..ClientConfig::default()
    });
    pair.open();
    // The client pings when it has been quiet for the interval; the server answers.
    let due = pair.client.poll_timeout().expect("timer");
    assert_eq!(due, pair.now + Duration::from_secs(10));
    pair.now = due;
    pair.client.handle_timeout(pair.now);
    let ping = pair.client.poll_transmit(pair.now).expect("a ping");
    assert_eq!(&ping[..], [0x00, 0x01, 0x00]);
    pair.server.handle_bytes(pair.now, &ping);
    assert_eq!(
        &pair.server.poll_transmit(pair.now).expect("pong")[..],
        [0x00, 0x02, 0x00]
    );
    // Silence past 2.5 × heartbeat: the server closes with IDLE_TIMEOUT ([SESSION-3.2]).
    pair.now += Duration::from_secs(26);
    pair.server.handle_timeout(pair.now);
    let closed = std::iter::from_fn(|| pair.server.poll_event()).find_map(|e| match e {
        ServerEvent::Closed(c) => Some(c),
        _ => None,
    });
    assert_eq!(closed.map(|c| c.code), Some(ErrorCode::IDLE_TIMEOUT));
}

#[test]
fn handshake_timeout() {
    let now = Instant::now();
    let mut server = ServerConnection::new(ServerConfig::default(), now);
    server.handle_timeout(now + Duration::from_secs(9));
    assert!(server.poll_event().is_none());
    server.handle_timeout(now + Duration::from_secs(10));
    assert!(
        matches!(server.poll_event(), Some(ServerEvent::Closed(c)) if c.code == ErrorCode::IDLE_TIMEOUT)
    );
}

#[test]
fn takeover_compression_negotiated_both_ways() {
    let mut pair = Pair::new(ClientConfig {
        compression: vec![Compression::DeflateTakeover],
        ..ClientConfig::default()
    });
    let welcome = pair.open();
    assert_eq!(
        welcome.compression,
        pb::CompressionMode::CompressionDeflateTakeover as i32
    );
    for i in 0..5u32 {
        let q = pb::PresenceQuery {
            users: vec!["bob".repeat(60), format!("carol{i}")],
        };
        let id = pair
            .client
            .request(Body::PresenceQuery(q.clone()))
            .expect("open");
        pair.drive();
        assert_eq!(
            pair.server_events.pop(),
            Some(ServerEvent::Request {
                id,
                body: Body::PresenceQuery(q)
            })
        );
        pair.server
            .reply(id, Body::PresenceReply(pb::PresenceReply::default()));
        pair.drive();
        assert!(matches!(
            pair.client_events.pop(),
            Some(ClientEvent::Reply { .. })
        ));
    }
}

#[test]
fn bad_request_body_is_a_request_error_not_a_close() {
    let mut pair = Pair::new(ClientConfig::default());
    pair.open();
    // A SEND whose body is not protobuf: REQUEST_ERROR BAD_REQUEST, the session stays open.
    let mut raw = BytesMut::new();
    magpie_wire::Encoder::default()
        .encode(
            Packet::new(FrameType::SEND, vec![0xFF, 0xFF]).with_id(VarInt::from_u32(77)),
            &mut raw,
        )
        .expect("encodes");
    pair.server.handle_bytes(pair.now, &raw);
    let reply = pair.server.poll_transmit(pair.now).expect("a reply");
    pair.client.handle_bytes(pair.now, &reply);
    match pair.client.poll_event() {
        Some(ClientEvent::Reply {
            id,
            body: Body::RequestError(e),
        }) => {
            assert_eq!(id, VarInt::from_u32(77));
            assert_eq!(e.code, magpie_session::RequestCode::BAD_REQUEST.0);
        }
        other => panic!("expected a request error, got {other:?}"),
    }
    assert!(pair.server.is_open());
}

fn request_error(message: &str) -> Body {
    Body::RequestError(pb::RequestError {
        code: magpie_session::RequestCode::UNKNOWN_CONVERSATION.0,
        message: message.into(),
        retry_after_ms: 0,
    })
}

#[test]
fn request_error_flood_closes_just_past_the_limit() {
    // [SESSION-6.2]: more than max_request_errors in a minute closes with BAD_REQUEST_FLOOD.
    let config = ServerConfig {
        max_request_errors: 3,
        ..ServerConfig::default()
    };
    let mut pair = Pair::with_server(ClientConfig::default(), config);
    pair.open();
    for id in 1..=3 {
        pair.server
            .reply(VarInt::from_u32(id), request_error("not yours"));
        assert!(pair.server.is_open(), "open after {id} errors");
    }
    pair.server
        .reply(VarInt::from_u32(4), request_error("not yours"));
    assert!(!pair.server.is_open(), "closed after 4 errors");
    pair.drive();
    let closed = pair.client_events.iter().find_map(|e| match e {
        ClientEvent::Closed(c) => Some(c.code),
        _ => None,
    });
    assert_eq!(closed, Some(close::BAD_REQUEST_FLOOD));
}

#[test]
fn rate_limited_answers_are_not_request_errors() {
    // [SESSION-6.2]: a client that waits out RATE_LIMITED is not flooding.
    let config = ServerConfig {
        max_request_errors: 3,
        ..ServerConfig::default()
    };
    let mut pair = Pair::with_server(ClientConfig::default(), config);
    pair.open();
    for id in 1..=10 {
        pair.server.reply(
            VarInt::from_u32(id),
            magpie_session::rate_limited(Duration::from_micros(1500), "wait"),
        );
    }
    assert!(pair.server.is_open(), "10 RATE_LIMITED answers");
    pair.drive();
    let waits: Vec<u32> = pair
        .client_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Reply {
                body: Body::RequestError(e),
                ..
            } => Some(e.retry_after_ms),
            _ => None,
        })
        .collect();
    assert_eq!(waits, vec![2; 10], "1.5 ms rounds up to 2");
}

#[test]
fn request_error_count_starts_over_each_minute() {
    let config = ServerConfig {
        max_request_errors: 3,
        ..ServerConfig::default()
    };
    let mut pair = Pair::with_server(ClientConfig::default(), config);
    pair.open();
    for id in 1..=3 {
        pair.server
            .reply(VarInt::from_u32(id), request_error("not yours"));
    }
    // A minute later (time moves on with what the server reads) the window starts over.
    pair.now += Duration::from_secs(61);
    pair.server.handle_bytes(pair.now, &[]);
    for id in 4..=6 {
        pair.server
            .reply(VarInt::from_u32(id), request_error("not yours"));
    }
    assert!(pair.server.is_open(), "3 errors in each of two minutes");
    // Within the same minute the count goes on.
    pair.now += Duration::from_secs(30);
    pair.server.handle_bytes(pair.now, &[]);
    pair.server
        .reply(VarInt::from_u32(7), request_error("not yours"));
    assert!(!pair.server.is_open(), "4 errors within a minute");
}

/// `n` frames of type `ty` (empty bodies), as a peer would write them.
fn frames(ty: FrameType, n: usize) -> BytesMut {
    let mut raw = BytesMut::new();
    let mut enc = magpie_wire::Encoder::default();
    for _ in 0..n {
        enc.encode(Packet::new(ty, Vec::new()), &mut raw)
            .expect("encodes");
    }
    raw
}

fn closed_with(pair: &mut Pair) -> Option<ErrorCode> {
    pair.drive();
    pair.client_events.iter().find_map(|e| match e {
        ClientEvent::Closed(c) => Some(c.code),
        _ => None,
    })
}

/// A server whose packet rate is 10 a second with bursts of 5 ([SESSION-6.6]), opened (the HELLO
/// took one packet).
fn rate_limited_pair() -> Pair {
    let config = ServerConfig {
        packet_rate: Rate::new(10, 5).expect("a rate"),
        ..ServerConfig::default()
    };
    let mut pair = Pair::with_server(ClientConfig::default(), config);
    pair.open();
    pair
}

#[test]
fn a_ping_flood_closes_just_past_the_packet_rate() {
    let mut pair = rate_limited_pair();
    // The HELLO took 1 of the burst of 5: 4 PINGs pass, the fifth closes.
    pair.server
        .handle_bytes(pair.now, &frames(FrameType::PING, 4));
    assert!(
        pair.server.is_open(),
        "4 PINGs after the HELLO fit the burst"
    );
    pair.server
        .handle_bytes(pair.now, &frames(FrameType::PING, 1));
    assert!(
        !pair.server.is_open(),
        "the sixth packet at once is past it"
    );
    assert_eq!(closed_with(&mut pair), Some(close::BAD_REQUEST_FLOOD));
}

#[test]
fn packets_at_the_rate_pass_forever() {
    let mut pair = rate_limited_pair();
    for _ in 0..100 {
        pair.now += Duration::from_millis(100);
        pair.server
            .handle_bytes(pair.now, &frames(FrameType::PING, 1));
        pair.drive();
    }
    assert!(pair.server.is_open(), "one PING every 100 ms is the rate");
    // After idling, a full burst again, and no more.
    pair.now += Duration::from_secs(5);
    pair.server
        .handle_bytes(pair.now, &frames(FrameType::PING, 5));
    assert!(pair.server.is_open());
    pair.server
        .handle_bytes(pair.now, &frames(FrameType::PING, 1));
    assert!(!pair.server.is_open());
}

#[test]
fn skipped_frames_count_against_the_packet_rate() {
    // [WIRE-5.2]: grease frames deliver nothing; [SESSION-6.6] counts them all the same.
    let mut pair = rate_limited_pair();
    pair.server
        .handle_bytes(pair.now, &frames(FrameType::grease(3), 4));
    assert!(
        pair.server.is_open(),
        "4 skipped frames fit what the HELLO left"
    );
    pair.server
        .handle_bytes(pair.now, &frames(FrameType::grease(7), 1));
    assert_eq!(closed_with(&mut pair), Some(close::BAD_REQUEST_FLOOD));
}
