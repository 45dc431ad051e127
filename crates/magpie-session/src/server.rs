//! The server's half of a connection, sans-IO: bytes and time in, events and bytes out.
//!
//! The driver (magpied) feeds received bytes to [`ServerConnection::handle_bytes`], acts on
//! [`ServerEvent`]s (authenticating a HELLO, serving requests), writes what
//! [`ServerConnection::poll_transmit`] returns, and calls
//! [`ServerConnection::handle_timeout`] at [`ServerConnection::poll_timeout`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use magpie_proto::v1 as pb;
use magpie_wire::{Compression, ErrorCode, FrameType, Limits, Packet, VarInt, preface};

use crate::body::{Body, request_error};
use crate::codes::{RequestCode, close};
use crate::link::{Closed, Link};
use crate::rate::{Bucket, Rate};

/// Server-side session settings, with documented defaults.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// What this server accepts as a receiver (default [`Limits::default`]).
    pub limits: Limits,
    /// Compression modes the server enables, in its preference (default: deflate, takeover).
    pub compression: Vec<Compression>,
    /// [SESSION-2.3]: time to complete the handshake (default 10 s).
    pub handshake_timeout: Duration,
    /// [SESSION-2.5]: heartbeat bounds and default (5 s, 300 s, 30 s).
    pub min_heartbeat: Duration,
    /// Upper bound of the heartbeat interval.
    pub max_heartbeat: Duration,
    /// Interval when the HELLO asks for none.
    pub default_heartbeat: Duration,
    /// [SESSION-6.2]: request errors per minute before `BAD_REQUEST_FLOOD` (default 100).
    pub max_request_errors: u32,
    /// [SESSION-6.6]: packets (and frames that deliver none) a connection may send, on average
    /// and in a burst, before it is closed with `BAD_REQUEST_FLOOD` (default 1,000 a second,
    /// bursts of 2,000).
    pub packet_rate: Rate,
    /// [WIRE-7.4]: compress only bodies of at least this many bytes (default: the codec's,
    /// [`EncoderConfig::DEFAULT_COMPRESSION_THRESHOLD`](magpie_wire::EncoderConfig::DEFAULT_COMPRESSION_THRESHOLD)).
    pub compression_threshold: usize,
    /// [WIRE-7]: the DEFLATE level of the frames the server compresses (default: the codec's,
    /// [`EncoderConfig::DEFAULT_COMPRESSION_LEVEL`](magpie_wire::EncoderConfig::DEFAULT_COMPRESSION_LEVEL)).
    pub compression_level: u32,
}

impl ServerConfig {
    /// [SESSION-6.6]: 1,000 packets a second, bursts of 2,000.
    pub const DEFAULT_PACKET_RATE: Rate = Rate::per_sec_with_burst(1000, 2000);
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            compression: vec![Compression::Deflate, Compression::DeflateTakeover],
            handshake_timeout: Duration::from_secs(10),
            min_heartbeat: Duration::from_secs(5),
            max_heartbeat: Duration::from_secs(300),
            default_heartbeat: Duration::from_secs(30),
            max_request_errors: 100,
            packet_rate: Self::DEFAULT_PACKET_RATE,
            compression_threshold: magpie_wire::EncoderConfig::DEFAULT_COMPRESSION_THRESHOLD,
            compression_level: magpie_wire::EncoderConfig::DEFAULT_COMPRESSION_LEVEL,
        }
    }
}

/// What the handshake settled ([SESSION-2.5]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Compression for both directions.
    pub compression: Compression,
    /// The client's receive limits.
    pub client_limits: Limits,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Idle timeout: 2.5 × heartbeat.
    pub idle_timeout: Duration,
}

/// What the driver must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// A HELLO to authenticate; answer with [`ServerConnection::accept`] or
    /// [`ServerConnection::reject`]. Nothing more is read until then.
    Hello {
        /// The HELLO's id, for the WELCOME.
        id: VarInt,
        /// The HELLO.
        hello: pb::Hello,
    },
    /// A request of an open session; answer with [`ServerConnection::reply`].
    Request {
        /// The request id.
        id: VarInt,
        /// The request body (SEND, SYNC, HISTORY, READ, WATCH, PRESENCE_QUERY).
        body: Body,
    },
    /// The connection ended; write what is left and shut the transport.
    Closed(Closed),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Preface,
    AwaitHello,
    Authenticating,
    Open,
}

/// The server's half of one connection.
pub struct ServerConnection {
    /// Shared by the connections of a server (an idle connection should not carry a copy).
    config: Arc<ServerConfig>,
    link: Link,
    phase: Phase,
    events: VecDeque<ServerEvent>,
    created: Instant,
    idle_timeout: Duration,
    errors_window_start: Instant,
    errors_in_window: u32,
    /// [SESSION-6.6]: the packets this connection has sent.
    packets: Bucket,
    close_reported: bool,
}

impl ServerConnection {
    /// A connection that has just been accepted.
    pub fn new(config: impl Into<Arc<ServerConfig>>, now: Instant) -> ServerConnection {
        let config = config.into();
        ServerConnection {
            link: Link::new(config.limits, now),
            config,
            phase: Phase::Preface,
            events: VecDeque::new(),
            created: now,
            idle_timeout: Duration::MAX,
            errors_window_start: now,
            errors_in_window: 0,
            packets: Bucket::default(),
            close_reported: false,
        }
    }

    /// Computes the negotiated settings for a HELLO ([SESSION-2.5]).
    pub fn negotiate(&self, hello: &pb::Hello) -> Result<Negotiated, String> {
        let compression = hello
            .compression
            .iter()
            .filter_map(|m| match pb::CompressionMode::try_from(*m).ok()? {
                pb::CompressionMode::CompressionDeflate => Some(Compression::Deflate),
                pb::CompressionMode::CompressionDeflateTakeover => {
                    Some(Compression::DeflateTakeover)
                }
                pb::CompressionMode::CompressionNone => None,
            })
            .find(|m| self.config.compression.contains(m))
            .unwrap_or(Compression::None);
        let client_limits = limits_from_proto(hello.limits.as_ref())?;
        let asked = Duration::from_millis(u64::from(hello.heartbeat_ms));
        let heartbeat = if asked.is_zero() {
            self.config.default_heartbeat
        } else {
            asked.clamp(self.config.min_heartbeat, self.config.max_heartbeat)
        };
        Ok(Negotiated {
            compression,
            client_limits,
            heartbeat,
            idle_timeout: heartbeat * 5 / 2,
        })
    }

    /// Feeds bytes read from the transport.
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) {
        if self.link.closed.is_some() {
            return;
        }
        self.link.last_rx = now;
        self.link.rx.extend_from_slice(data);
        self.process();
        self.link.release_rx();
    }

    /// The transport ended (EOF or error).
    pub fn handle_eof(&mut self) {
        self.link
            .peer_closed(ErrorCode::NO_ERROR, "connection closed by peer".into());
        self.report_close();
    }

    fn process(&mut self) {
        if self.phase == Phase::Preface {
            match preface::read_client_preface(&mut self.link.rx) {
                Ok(None) => return,
                Ok(Some(offered)) => {
                    let mut reply = bytes::BytesMut::new();
                    match preface::answer_client_preface(
                        offered,
                        preface::SUPPORTED_VERSIONS,
                        &mut reply,
                    ) {
                        Ok(_) => {
                            self.link.write_raw(&reply);
                            self.phase = Phase::AwaitHello;
                        }
                        Err(e) => {
                            // [WIRE-2.4]: the rejection, then close.
                            self.link.write_raw(&reply);
                            self.link.close_silently(e.code(), e.to_string());
                        }
                    }
                }
                Err(e) => self.link.close_silently(e.code(), e.to_string()),
            }
        }
        while self.link.closed.is_none() && matches!(self.phase, Phase::AwaitHello | Phase::Open) {
            let decoded = self.link.decoder.decode(&mut self.link.rx);
            let cost =
                self.link.decoder.take_frames_skipped() + u64::from(matches!(decoded, Ok(Some(_))));
            if !self.charge_packets(cost) {
                break;
            }
            match decoded {
                Ok(Some(packet)) => self.on_packet(packet),
                Ok(None) => break,
                Err(e) => self.link.fail(&e),
            }
        }
        self.report_close();
    }

    /// Takes `n` packets from the connection's packet rate; past it, closes the connection with
    /// `BAD_REQUEST_FLOOD` and returns `false` ([SESSION-6.6]).
    fn charge_packets(&mut self, n: u64) -> bool {
        let now = self.link.last_rx;
        for _ in 0..n {
            if self.packets.take(self.config.packet_rate, now).is_err() {
                self.link.close(
                    close::BAD_REQUEST_FLOOD,
                    None,
                    "packets faster than the packet rate".into(),
                );
                return false;
            }
        }
        true
    }

    fn on_packet(&mut self, packet: Packet) {
        let Some(packet) = self.link.control(packet) else {
            return;
        };
        let ty = packet.ty();
        let decoded = Body::decode(ty, packet.body());
        match (self.phase, decoded) {
            (Phase::AwaitHello, Ok(Some(Body::Hello(hello)))) => match packet.id() {
                Some(id) => {
                    self.phase = Phase::Authenticating;
                    self.events.push_back(ServerEvent::Hello { id, hello });
                }
                None => self.protocol_error(ty, "HELLO without an id"),
            },
            (Phase::AwaitHello, Err(e)) if ty == FrameType::HELLO => {
                self.link.close(
                    close::HANDSHAKE_INVALID,
                    Some(ty),
                    format!("HELLO does not parse: {e}"),
                );
            }
            // [SESSION-2.2]
            (Phase::AwaitHello, _) => self.link.close(
                close::NOT_AUTHENTICATED,
                Some(ty),
                format!("{ty} before the handshake"),
            ),
            (Phase::Open, Ok(Some(body))) if body.is_client_request() => match packet.id() {
                Some(id) => self.events.push_back(ServerEvent::Request { id, body }),
                // [SESSION-1.2]
                None => self.protocol_error(ty, "request without an id"),
            },
            (Phase::Open, Ok(Some(_))) => self.protocol_error(ty, "not a client packet"),
            (Phase::Open, Ok(None)) => {} // a negotiated extension: nothing is negotiated yet
            (Phase::Open, Err(e)) => {
                if let Some(id) = packet.id() {
                    self.request_failed(
                        id,
                        request_error(
                            RequestCode::BAD_REQUEST,
                            format!("{ty} body does not parse: {e}"),
                        ),
                    );
                } else {
                    self.protocol_error(ty, "request without an id");
                }
            }
            (Phase::Preface | Phase::Authenticating, _) => {}
        }
    }

    fn protocol_error(&mut self, ty: FrameType, reason: &str) {
        self.link
            .close(ErrorCode::PROTOCOL_ERROR, Some(ty), reason.to_owned());
    }

    fn report_close(&mut self) {
        if let (Some(closed), false) = (&self.link.closed, self.close_reported) {
            self.close_reported = true;
            self.events
                .push_back(ServerEvent::Closed(Closed::clone(closed)));
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.report_close();
        let event = self.events.pop_front();
        if event.is_none() && self.events.capacity() > 0 {
            // Events are large (a HELLO, a request body): an idle session keeps no room for them.
            self.events = VecDeque::new();
        }
        event
    }

    /// Accepts the HELLO: writes WELCOME alone, then switches to the negotiated settings
    /// ([SESSION-2.6]) and resumes reading.
    pub fn accept(
        &mut self,
        now: Instant,
        id: VarInt,
        welcome: pb::Welcome,
        negotiated: &Negotiated,
    ) {
        if self.phase != Phase::Authenticating {
            return;
        }
        let _ = self.link.send(Body::Welcome(welcome).into_packet(Some(id)));
        self.link.flush();
        self.link.encoder.set_peer_limits(negotiated.client_limits);
        self.link.encoder.set_compression(negotiated.compression);
        self.link
            .encoder
            .set_compression_threshold(self.config.compression_threshold);
        self.link
            .encoder
            .set_compression_level(self.config.compression_level);
        self.link.decoder.set_compression(negotiated.compression);
        self.idle_timeout = negotiated.idle_timeout;
        self.link.last_rx = now;
        self.phase = Phase::Open;
        self.process();
    }

    /// Refuses the HELLO with a connection error ([AUTH-4.1]).
    pub fn reject(&mut self, code: ErrorCode, reason: String) {
        self.link.close(code, Some(FrameType::HELLO), reason);
        self.report_close();
    }

    /// Answers request `id`. A reply too large for the client becomes `INTERNAL`.
    pub fn reply(&mut self, id: VarInt, body: Body) {
        match &body {
            // [SESSION-6.2]: RATE_LIMITED is no bad request; the packet rate bounds a client
            // that does not wait ([SESSION-6.6]).
            Body::RequestError(e) if e.code != RequestCode::RATE_LIMITED.0 => {
                self.request_failed(id, body);
                return;
            }
            _ => {}
        }
        if let Err(e) = self.link.send(body.into_packet(Some(id))) {
            let _ = self.link.send(
                request_error(RequestCode::INTERNAL, format!("reply does not fit: {e}"))
                    .into_packet(Some(id)),
            );
        }
    }

    fn request_failed(&mut self, id: VarInt, body: Body) {
        let _ = self.link.send(body.into_packet(Some(id)));
        // [SESSION-6.2]: a flood of bad requests ends the session.
        let now = self.link.last_rx;
        if now.duration_since(self.errors_window_start) > Duration::from_secs(60) {
            self.errors_window_start = now;
            self.errors_in_window = 0;
        }
        self.errors_in_window += 1;
        if self.errors_in_window > self.config.max_request_errors {
            self.link.close(
                close::BAD_REQUEST_FLOOD,
                None,
                "too many request errors".into(),
            );
            self.report_close();
        }
    }

    /// Pushes to the client ([SYNC-4.2]). Returns `false` if the push does not fit the client's
    /// limits (the client will pull instead).
    pub fn push(&mut self, push: pb::Push) -> bool {
        self.phase == Phase::Open && self.link.send(Body::Push(push).into_packet(None)).is_ok()
    }

    /// Closes the session with `code` (kick, shutdown, slow reader, revocation).
    pub fn close(&mut self, code: ErrorCode, reason: String) {
        self.link.close(code, None, reason);
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
            Phase::Open => self.link.idle_deadline(self.idle_timeout),
            _ => self.created + self.config.handshake_timeout,
        })
    }

    /// Applies timers: handshake timeout ([SESSION-2.3]) and idle timeout ([SESSION-3.2]).
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.poll_timeout() {
            Some(deadline) if now >= deadline => {
                let reason = if self.phase == Phase::Open {
                    "no frame within the idle timeout"
                } else {
                    "handshake not completed in time"
                };
                self.link
                    .close(ErrorCode::IDLE_TIMEOUT, None, reason.into());
                self.report_close();
            }
            _ => {}
        }
    }

    /// Closed and fully written: shut the transport.
    pub fn is_done(&self) -> bool {
        self.link.is_done()
    }

    /// Whether the session is open (WELCOME sent, not closed).
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open && self.link.closed.is_none()
    }
}

/// Reads the limits of a HELLO or WELCOME: zero fields mean the default ([SESSION-2.5]).
pub fn limits_from_proto(limits: Option<&pb::Limits>) -> Result<Limits, String> {
    let mut out = Limits::default();
    if let Some(l) = limits {
        if l.max_frame_size != 0 {
            out.set_max_frame_size(l.max_frame_size)
                .map_err(|e| e.to_string())?;
        }
        if l.max_decompressed_size != 0 {
            out.set_max_decompressed_size(l.max_decompressed_size)
                .map_err(|e| e.to_string())?;
        }
        if l.max_container_packets != 0 {
            let n = u16::try_from(l.max_container_packets)
                .map_err(|_| "max_container_packets too large".to_owned())?;
            out.set_max_container_packets(n)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(out)
}

/// The proto form of limits.
pub fn limits_to_proto(limits: &Limits) -> pb::Limits {
    pb::Limits {
        max_frame_size: limits.max_frame_size(),
        max_decompressed_size: limits.max_decompressed_size(),
        max_container_packets: u32::from(limits.max_container_packets()),
    }
}

/// The proto form of a compression mode.
pub fn compression_to_proto(c: Compression) -> pb::CompressionMode {
    match c {
        Compression::None => pb::CompressionMode::CompressionNone,
        Compression::Deflate => pb::CompressionMode::CompressionDeflate,
        Compression::DeflateTakeover => pb::CompressionMode::CompressionDeflateTakeover,
    }
}
