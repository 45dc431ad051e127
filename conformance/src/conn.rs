//! A raw client connection: the suite's bytes out, the reference decoder for what comes back.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use magpie_session::{Body, pb};
use magpie_wire::{Close, Decoder, FrameType, Packet};
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::raw;

/// How long the suite waits for an answer that should come at once.
pub(crate) const WAIT: Duration = Duration::from_secs(3);

pub(crate) enum Ev {
    Packet(Packet),
    Eof,
    Timeout,
    Bad(String),
}

/// What the peer did when the suite expected a CLOSE.
#[derive(Debug)]
pub(crate) enum Seen {
    /// A CLOSE frame; `eof`: the stream ended after it.
    Close {
        code: u64,
        frame_type: u64,
        reason: String,
        eof: bool,
    },
    Eof,
    Timeout,
    Bad(String),
}

impl Seen {
    pub(crate) fn describe(&self) -> String {
        match self {
            Seen::Close {
                code,
                frame_type,
                reason,
                eof,
            } => format!(
                "CLOSE code 0x{code:02X} frame type 0x{frame_type:X} reason {reason:?}{}",
                if *eof {
                    ", then end of stream"
                } else {
                    ", but the stream stayed open"
                }
            ),
            Seen::Eof => "end of stream without CLOSE".into(),
            Seen::Timeout => "nothing (timeout)".into(),
            Seen::Bad(e) => format!("bytes that do not decode: {e}"),
        }
    }
}

/// A byte stream the suite speaks over (TCP, or a bridge to WebSocket messages).
pub(crate) trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

pub(crate) struct Conn {
    stream: Box<dyn Io>,
    buf: BytesMut,
    decoder: Decoder,
    next_id: u64,
    pub(crate) pushes: Vec<pb::Push>,
    /// Bodies of packets that were neither the awaited reply nor pushes.
    pub(crate) other: Vec<String>,
    /// Replies that came while another was awaited (requests written back to back), by id.
    early: std::collections::HashMap<u64, Packet>,
}

impl Conn {
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Conn, String> {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connect to {addr} timed out"))?
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        Ok(Conn::over(Box::new(stream)))
    }

    /// A connection over any byte stream.
    pub(crate) fn over(stream: Box<dyn Io>) -> Conn {
        Conn {
            stream,
            buf: BytesMut::new(),
            decoder: Decoder::default(),
            next_id: 1,
            pushes: Vec::new(),
            other: Vec::new(),
            early: std::collections::HashMap::new(),
        }
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| format!("write: {e}"))
    }

    /// Reads until `n` bytes are buffered, the stream ends (`true`) or `dur` passes.
    pub(crate) async fn fill(&mut self, n: usize, dur: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + dur;
        while self.buf.len() < n {
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(k)) => self.buf.extend_from_slice(&chunk[..k]),
            }
        }
        false
    }

    /// Bytes received and not yet decoded.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes received and not yet consumed.
    pub(crate) fn take_raw(&mut self) -> Vec<u8> {
        self.buf.split().to_vec()
    }

    /// Reads and checks the v1 server preface.
    pub(crate) async fn read_preface(&mut self) -> Result<(), String> {
        self.fill(5, WAIT).await;
        if self.buf.len() >= 5 && self.buf[..5] == raw::PREFACE {
            let _ = self.buf.split_to(5);
            Ok(())
        } else {
            Err(format!(
                "expected server preface 4d41475001, got {}",
                hex::encode(&self.buf)
            ))
        }
    }

    /// The next packet, end of stream or timeout.
    pub(crate) async fn next(&mut self, dur: Duration) -> Ev {
        let deadline = tokio::time::Instant::now() + dur;
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(p)) => return Ev::Packet(p),
                Ok(None) => {}
                Err(e) => return Ev::Bad(e.to_string()),
            }
            let mut chunk = [0u8; 16384];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Ev::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return Ev::Eof,
                Ok(Ok(k)) => self.buf.extend_from_slice(&chunk[..k]),
            }
        }
    }

    /// Waits for a CLOSE (skipping other packets), then for the end of the stream.
    pub(crate) async fn expect_close(&mut self, dur: Duration) -> Seen {
        let deadline = tokio::time::Instant::now() + dur;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Ev::Packet(p) if p.ty() == FrameType::CLOSE => {
                    let (code, frame_type, reason) = match Close::decode(p.body()) {
                        Ok(c) => (
                            c.code().0,
                            c.frame_type().map(|t| t.value().into_inner()).unwrap_or(0),
                            c.reason().to_string(),
                        ),
                        Err(e) => return Seen::Bad(format!("CLOSE body does not parse: {e}")),
                    };
                    let eof = matches!(self.next(Duration::from_secs(2)).await, Ev::Eof);
                    return Seen::Close {
                        code,
                        frame_type,
                        reason,
                        eof,
                    };
                }
                Ev::Packet(p) => self.note(&p),
                Ev::Eof => return Seen::Eof,
                Ev::Timeout => return Seen::Timeout,
                Ev::Bad(e) => return Seen::Bad(e),
            }
        }
    }

    fn note(&mut self, p: &Packet) {
        if p.ty() == FrameType::PUSH
            && let Ok(push) = pb::Push::decode(p.body().clone())
        {
            self.pushes.push(push);
            return;
        }
        self.other.push(format!(
            "{:?} id {:?}",
            p.ty(),
            p.id().map(|i| i.into_inner())
        ));
    }

    /// Sends the preface and HELLO in one write ([WIRE-2.7]) and reads until WELCOME or CLOSE.
    pub(crate) async fn handshake(&mut self, hello: &pb::Hello) -> Result<pb::Welcome, Seen> {
        let mut out = raw::PREFACE.to_vec();
        out.extend(raw::frame(1, 0x10, Some(0), &hello.encode_to_vec()));
        if let Err(e) = self.send(&out).await {
            return Err(Seen::Bad(e));
        }
        if let Err(e) = self.read_preface().await {
            return Err(Seen::Bad(e));
        }
        loop {
            match self.next(WAIT).await {
                Ev::Packet(p) if p.ty() == FrameType::WELCOME => {
                    return pb::Welcome::decode(p.body().clone())
                        .map_err(|e| Seen::Bad(format!("WELCOME does not parse: {e}")));
                }
                Ev::Packet(p) if p.ty() == FrameType::CLOSE => {
                    let c = Close::decode(p.body()).map_err(|e| Seen::Bad(e.to_string()))?;
                    let eof = matches!(self.next(Duration::from_secs(2)).await, Ev::Eof);
                    return Err(Seen::Close {
                        code: c.code().0,
                        frame_type: c.frame_type().map(|t| t.value().into_inner()).unwrap_or(0),
                        reason: c.reason().to_string(),
                        eof,
                    });
                }
                Ev::Packet(p) => self.note(&p),
                Ev::Eof => return Err(Seen::Eof),
                Ev::Timeout => return Err(Seen::Timeout),
                Ev::Bad(e) => return Err(Seen::Bad(e)),
            }
        }
    }

    /// Holds what the suite reads to `limits` (the limits it announced in HELLO), so a frame over
    /// them is reported as bad.
    pub(crate) fn set_limits(&mut self, limits: magpie_wire::Limits) {
        self.decoder = Decoder::new(magpie_wire::DecoderConfig::default().limits(limits));
    }

    /// Applies a negotiated compression mode to what the suite reads.
    pub(crate) fn set_compression(&mut self, c: magpie_wire::Compression) {
        self.decoder.set_compression(c);
    }

    /// A fresh request id.
    pub(crate) fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Sends a request body with `id`.
    pub(crate) async fn send_body(&mut self, id: u64, body: &Body) -> Result<(), String> {
        let bytes = body_bytes(body);
        self.send(&raw::frame(
            1,
            body.frame_type().value().into_inner(),
            Some(id),
            &bytes,
        ))
        .await
    }

    /// Waits for the reply with `id`, keeping pushes aside.
    pub(crate) async fn reply(&mut self, id: u64) -> Result<Body, String> {
        let decode = |p: Packet| match Body::decode(p.ty(), p.body()) {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(format!("reply of type {:?} has no known body", p.ty())),
            Err(e) => Err(format!("reply body does not parse: {e}")),
        };
        if let Some(p) = self.early.remove(&id) {
            return decode(p);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Ev::Packet(p)
                    if p.id().map(|i| i.into_inner()) == Some(id) && p.ty() != FrameType::PUSH =>
                {
                    return decode(p);
                }
                Ev::Packet(p)
                    if p.ty() != FrameType::PUSH
                        && p.ty() != FrameType::CLOSE
                        && p.id().is_some_and(|i| i.into_inner() <= self.next_id) =>
                {
                    // A reply to another request still to be read: kept for its reader.
                    self.note(&p);
                    if let Some(other) = p.id() {
                        self.early.insert(other.into_inner(), p);
                    }
                }
                Ev::Packet(p) if p.ty() == FrameType::CLOSE => {
                    let c = Close::decode(p.body())
                        .map(|c| format!("0x{:02X} {:?}", c.code().0, c.reason()));
                    return Err(format!("closed while waiting for reply {id}: {c:?}"));
                }
                Ev::Packet(p) => self.note(&p),
                Ev::Eof => return Err(format!("end of stream while waiting for reply {id}")),
                Ev::Timeout => return Err(format!("no reply to request {id} within {WAIT:?}")),
                Ev::Bad(e) => return Err(e),
            }
        }
    }

    /// Sends a request and waits for its reply.
    pub(crate) async fn request(&mut self, body: Body) -> Result<Body, String> {
        let id = self.id();
        self.send_body(id, &body).await?;
        self.reply(id).await
    }

    /// PING with `body`; `Ok` if the PONG echoes it.
    pub(crate) async fn ping(&mut self, body: &[u8]) -> Result<(), String> {
        self.send(&raw::frame(0, 0x01, None, body)).await?;
        self.expect_pong(body).await
    }

    pub(crate) async fn expect_pong(&mut self, body: &[u8]) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Ev::Packet(p) if p.ty() == FrameType::PONG => {
                    return if p.body()[..] == *body {
                        Ok(())
                    } else {
                        Err(format!(
                            "PONG body {} for PING body {}",
                            hex::encode(p.body()),
                            hex::encode(body)
                        ))
                    };
                }
                Ev::Packet(p) if p.ty() == FrameType::CLOSE => {
                    let c = Close::decode(p.body())
                        .map(|c| format!("0x{:02X} {:?}", c.code().0, c.reason()));
                    return Err(format!("CLOSE instead of PONG: {c:?}"));
                }
                Ev::Packet(p) => self.note(&p),
                Ev::Eof => return Err("end of stream instead of PONG".into()),
                Ev::Timeout => return Err("no PONG".into()),
                Ev::Bad(e) => return Err(e),
            }
        }
    }

    /// Waits until pushes hold at least `n` stored events (or `dur` passes).
    pub(crate) async fn pushed_events(&mut self, n: usize, dur: Duration) -> Vec<pb::Event> {
        let deadline = tokio::time::Instant::now() + dur;
        while self.pushes.iter().map(|p| p.events.len()).sum::<usize>() < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Ev::Packet(p) => self.note(&p),
                _ => break,
            }
        }
        self.pushes.iter().flat_map(|p| p.events.clone()).collect()
    }

    /// Reads whatever arrives for `dur`.
    pub(crate) async fn drain(&mut self, dur: Duration) {
        let deadline = tokio::time::Instant::now() + dur;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Ev::Packet(p) => self.note(&p),
                _ => return,
            }
        }
    }

    /// Ends the stream without CLOSE (an abrupt disconnect).
    pub(crate) async fn abort(mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// Sends CLOSE NO_ERROR and ends the stream.
    pub(crate) async fn close(mut self) {
        let _ = self.send(&raw::frame(0, 0x04, None, &[0x00, 0x00])).await;
        let _ = self.stream.shutdown().await;
    }
}

pub(crate) fn body_bytes(body: &Body) -> Bytes {
    body.clone().into_packet(None).into_body()
}
