//! The client's half of a connection, sans-IO.
//!
//! [`ClientConnection::new`] writes the preface and the HELLO; the driver writes what
//! [`poll_transmit`](ClientConnection::poll_transmit) returns, feeds received bytes to
//! [`handle_bytes`](ClientConnection::handle_bytes), and acts on [`ClientEvent`]s. Heartbeats are
//! sent by [`handle_timeout`](ClientConnection::handle_timeout) ([SESSION-3.1]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use magpie_proto::v1 as pb;
use magpie_wire::{Compression, Error, ErrorCode, FrameType, Limits, Packet, VarInt, preface};

use crate::body::Body;
use crate::link::{Closed, Link};
use crate::server::{compression_to_proto, limits_from_proto, limits_to_proto};

/// Client-side settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// What the client accepts as a receiver (default [`Limits::default`]).
    pub limits: Limits,
    /// Compression modes to offer, most preferred first (default: deflate).
    pub compression: Vec<Compression>,
    /// Heartbeat interval to ask for (default 30 s; 0 for the server's default).
    pub heartbeat: Duration,
    /// Time allowed for the handshake (default 10 s).
    pub handshake_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            limits: Limits::default(),
            compression: vec![Compression::Deflate],
            heartbeat: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// What the driver must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// The session is open.
    Welcome(pb::Welcome),
    /// The reply to request `id`.
    Reply {
        /// The request id.
        id: VarInt,
        /// SEND_ACK, SYNC_REPLY, HISTORY_REPLY, OK, PRESENCE_REPLY, GROUP_REPLY or REQUEST_ERROR.
        body: Body,
    },
    /// Events and live messages pushed by the server.
    Push(pb::Push),
    /// The connection ended.
    Closed(Closed),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitPreface,
    AwaitWelcome,
    Open,
}

const HELLO_ID: VarInt = VarInt::from_u32(1);

/// The client's half of one connection.
pub struct ClientConnection {
    link: Link,
    phase: Phase,
    events: VecDeque<ClientEvent>,
    next_id: u64,
    created: Instant,
    handshake_timeout: Duration,
    heartbeat: Duration,
    idle_timeout: Duration,
    close_reported: bool,
}

impl ClientConnection {
    /// Starts a connection: writes the preface and `hello` (its limits, compression and heartbeat
    /// fields are filled from `config`).
    pub fn new(config: &ClientConfig, mut hello: pb::Hello, now: Instant) -> ClientConnection {
        hello.limits = Some(limits_to_proto(&config.limits));
        hello.compression = config
            .compression
            .iter()
            .map(|c| compression_to_proto(*c) as i32)
            .collect();
        hello.heartbeat_ms = u32::try_from(config.heartbeat.as_millis()).unwrap_or(u32::MAX);
        let mut link = Link::new(config.limits, now);
        let mut preface_bytes = bytes::BytesMut::new();
        preface::write_preface(preface::VERSION_1, &mut preface_bytes);
        link.write_raw(&preface_bytes);
        // [SESSION-2.1]: HELLO first, right behind the preface ([WIRE-2.7]).
        let _ = link.send(Body::Hello(hello).into_packet(Some(HELLO_ID)));
        ClientConnection {
            link,
            phase: Phase::AwaitPreface,
            events: VecDeque::new(),
            next_id: 2,
            created: now,
            handshake_timeout: config.handshake_timeout,
            heartbeat: config.heartbeat,
            idle_timeout: Duration::MAX,
            close_reported: false,
        }
    }

    /// Feeds bytes read from the transport.
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        if self.link.closed.is_some() {
            return;
        }
        self.link.last_rx = now;
        self.link.rx.extend_from_slice(data);
        if self.phase == Phase::AwaitPreface {
            match preface::read_server_preface(&mut self.link.rx, preface::VERSION_1) {
                Ok(None) => return,
                Ok(Some(_)) => self.phase = Phase::AwaitWelcome,
                // [WIRE-2.6]: UNSUPPORTED_VERSION with the server's list, or PROTOCOL_ERROR.
                Err(e @ Error::UnsupportedVersion { .. }) => {
                    self.link.peer_closed(e.code(), e.to_string());
                }
                Err(e) => self.link.close_silently(e.code(), e.to_string()),
            }
        }
        while self.link.closed.is_none() && self.phase != Phase::AwaitPreface {
            match self.link.decoder.decode(&mut self.link.rx) {
                Ok(Some(packet)) => self.on_packet(now, packet),
                Ok(None) => break,
                Err(e) => self.link.fail(&e),
            }
        }
        self.report_close();
    }

    /// The transport ended.
    pub fn handle_eof(&mut self) {
        self.link.peer_closed(
            ErrorCode::NO_ERROR,
            "connection closed by the server".into(),
        );
        self.report_close();
    }

    fn on_packet(&mut self, now: Instant, packet: Packet) {
        let Some(packet) = self.link.control(packet) else {
            return;
        };
        let ty = packet.ty();
        let body = match Body::decode(ty, packet.body()) {
            Ok(Some(body)) => body,
            Ok(None) => return,
            Err(e) => {
                self.link.close(
                    ErrorCode::MALFORMED,
                    Some(ty),
                    format!("{ty} does not parse: {e}"),
                );
                return;
            }
        };
        match (self.phase, body, packet.id()) {
            (Phase::AwaitWelcome, Body::Welcome(welcome), Some(HELLO_ID)) => {
                self.on_welcome(now, welcome)
            }
            (Phase::Open, Body::Push(push), _) => self.events.push_back(ClientEvent::Push(push)),
            (
                Phase::Open,
                body @ (Body::SendAck(_)
                | Body::SyncReply(_)
                | Body::HistoryReply(_)
                | Body::Ok(_)
                | Body::PresenceReply(_)
                | Body::GroupReply(_)
                | Body::RequestError(_)),
                Some(id),
            ) => self.events.push_back(ClientEvent::Reply { id, body }),
            _ => self.link.close(
                ErrorCode::PROTOCOL_ERROR,
                Some(ty),
                format!("unexpected {ty}"),
            ),
        }
    }

    fn on_welcome(&mut self, now: Instant, welcome: pb::Welcome) {
        // [SESSION-2.6]: switch to the negotiated settings on reading WELCOME.
        let limits = match limits_from_proto(welcome.limits.as_ref()) {
            Ok(l) => l,
            Err(e) => {
                self.link
                    .close(ErrorCode::PROTOCOL_ERROR, Some(FrameType::WELCOME), e);
                return;
            }
        };
        let compression = match pb::CompressionMode::try_from(welcome.compression) {
            Ok(pb::CompressionMode::CompressionDeflate) => Compression::Deflate,
            Ok(pb::CompressionMode::CompressionDeflateTakeover) => Compression::DeflateTakeover,
            _ => Compression::None,
        };
        self.link.encoder.set_peer_limits(limits);
        self.link.encoder.set_compression(compression);
        self.link.decoder.set_compression(compression);
        if welcome.heartbeat_ms > 0 {
            self.heartbeat = Duration::from_millis(u64::from(welcome.heartbeat_ms));
        }
        if welcome.idle_timeout_ms > 0 {
            self.idle_timeout = Duration::from_millis(u64::from(welcome.idle_timeout_ms));
        }
        self.link.last_rx = now;
        self.phase = Phase::Open;
        self.events.push_back(ClientEvent::Welcome(welcome));
    }

    fn report_close(&mut self) {
        if let (Some(closed), false) = (&self.link.closed, self.close_reported) {
            self.close_reported = true;
            self.events
                .push_back(ClientEvent::Closed(Closed::clone(closed)));
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.report_close();
        self.events.pop_front()
    }

    /// Sends a request and returns its id, or the reason it cannot be sent (not open, too large).
    pub fn request(&mut self, body: Body) -> Result<VarInt, Error> {
        if self.phase != Phase::Open || self.link.closed.is_some() {
            return Err(Error::InvalidPacket {
                ty: body.frame_type(),
                reason: "the session is not open",
            });
        }
        let id = VarInt::new(self.next_id).unwrap_or(VarInt::MAX);
        self.next_id += 1;
        self.link.send(body.into_packet(Some(id)))?;
        Ok(id)
    }

    /// Closes the connection gracefully (`NO_ERROR`).
    pub fn close(&mut self, reason: &str) {
        self.link
            .close(ErrorCode::NO_ERROR, None, reason.to_owned());
        self.report_close();
    }

    /// Bytes to write now.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.link.poll_transmit(now)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.link.closed.is_some() {
            return None;
        }
        Some(match self.phase {
            Phase::Open => {
                let ping = self.link.last_tx + self.heartbeat;
                let idle = self.link.idle_deadline(self.idle_timeout);
                ping.min(idle)
            }
            _ => self.created + self.handshake_timeout,
        })
    }

    /// Sends a PING when due ([SESSION-3.1]); closes when the server went silent.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.link.closed.is_some() {
            return;
        }
        match self.phase {
            Phase::Open => {
                if now >= self.link.idle_deadline(self.idle_timeout) {
                    self.link.close(
                        ErrorCode::IDLE_TIMEOUT,
                        None,
                        "server silent past the idle timeout".into(),
                    );
                } else if now >= self.link.last_tx + self.heartbeat {
                    let _ = self.link.send(Packet::ping());
                    // Count the PING as sent now so the timer moves even before the driver writes.
                    self.link.last_tx = now;
                }
            }
            _ if now >= self.created + self.handshake_timeout => {
                self.link.close(
                    ErrorCode::IDLE_TIMEOUT,
                    None,
                    "handshake not completed in time".into(),
                );
            }
            _ => {}
        }
        self.report_close();
    }

    /// Closed and fully written.
    pub fn is_done(&self) -> bool {
        self.link.is_done()
    }

    /// Whether the session is open.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open && self.link.closed.is_none()
    }
}
