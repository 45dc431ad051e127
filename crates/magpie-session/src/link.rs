//! What both halves of a connection share: the codec, the byte buffers, the close path.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use magpie_wire::{
    Close, Decoder, DecoderConfig, Encoder, EncoderConfig, ErrorCode, FrameType, Limits, Packet,
};

/// Who ended the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// This side sent CLOSE (or closed without a word, for stray traffic).
    Local,
    /// The peer sent CLOSE, or the transport ended.
    Peer,
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The code (`spec/wire.md` §10.3, `spec/errors.md` §2).
    pub code: ErrorCode,
    /// The reason, for people.
    pub reason: String,
    /// Who ended it.
    pub initiator: Initiator,
}

pub(crate) struct Link {
    pub(crate) decoder: Decoder,
    pub(crate) encoder: Encoder,
    pub(crate) rx: BytesMut,
    tx: BytesMut,
    /// Boxed: every live connection carries the field, few carry a value for long.
    pub(crate) closed: Option<Box<Closed>>,
    pub(crate) last_rx: Instant,
    pub(crate) last_tx: Instant,
}

impl Link {
    pub(crate) fn new(own_limits: Limits, now: Instant) -> Link {
        Link {
            decoder: Decoder::new(DecoderConfig::default().limits(own_limits)),
            // [WIRE-6.2]: the floors until the peer's limits are known.
            encoder: Encoder::new(EncoderConfig::default()),
            rx: BytesMut::new(),
            tx: BytesMut::new(),
            closed: None,
            last_rx: now,
            last_tx: now,
        }
    }

    /// Queues a packet. A packet the peer could not accept is refused ([WIRE-6.4]).
    pub(crate) fn send(&mut self, packet: Packet) -> Result<(), magpie_wire::Error> {
        if self.closed.is_some() {
            return Ok(());
        }
        self.encoder.push(packet)
    }

    /// Writes bytes outside framing (the preface, [WIRE-2]).
    pub(crate) fn write_raw(&mut self, bytes: &[u8]) {
        self.tx.extend_from_slice(bytes);
    }

    /// Writes what is queued to the transmit buffer (merging what was queued together).
    pub(crate) fn flush(&mut self) {
        // Packets were checked on push; a flush can only fail inside the compressor, and then
        // the connection cannot go on.
        if let Err(e) = self.encoder.flush(&mut self.tx) {
            self.close(
                ErrorCode::INTERNAL_ERROR,
                None,
                format!("encoder failed: {e}"),
            );
        }
    }

    /// Ends the connection with a CLOSE ([WIRE-10.1]): what was queued goes first.
    pub(crate) fn close(&mut self, code: ErrorCode, frame_type: Option<FrameType>, reason: String) {
        if self.closed.is_some() {
            return;
        }
        let close = Close::new(code, frame_type, reason);
        let _ = self.encoder.flush(&mut self.tx);
        if self
            .encoder
            .encode(close.to_packet(), &mut self.tx)
            .is_err()
        {
            // A CLOSE is always small enough; nothing else can fail here.
        }
        self.closed = Some(Box::new(Closed {
            code,
            reason: close.reason().to_owned(),
            initiator: Initiator::Local,
        }));
    }

    /// Ends the connection without writing anything (stray traffic, [WIRE-2.2]).
    pub(crate) fn close_silently(&mut self, code: ErrorCode, reason: String) {
        if self.closed.is_none() {
            self.closed = Some(Box::new(Closed {
                code,
                reason,
                initiator: Initiator::Local,
            }));
        }
    }

    /// The peer said CLOSE, or hung up.
    pub(crate) fn peer_closed(&mut self, code: ErrorCode, reason: String) {
        if self.closed.is_none() {
            self.closed = Some(Box::new(Closed {
                code,
                reason,
                initiator: Initiator::Peer,
            }));
        }
    }

    /// Handles the wire layer's own packets: answers PING ([WIRE-9.1]), drops PONG, and records
    /// a CLOSE ([WIRE-10.4]). Every other packet is handed back.
    pub(crate) fn control(&mut self, packet: Packet) -> Option<Packet> {
        match packet.ty() {
            FrameType::PING => {
                let _ = self.send(Packet::pong_for(&packet));
                None
            }
            FrameType::PONG => None,
            FrameType::CLOSE => {
                let (code, reason) = match Close::decode(packet.body()) {
                    Ok(c) => (c.code(), c.reason().to_owned()),
                    Err(e) => (e.code(), e.to_string()),
                };
                self.peer_closed(code, reason);
                None
            }
            _ => Some(packet),
        }
    }

    /// When the peer counts as silent: `timeout` after the last received byte. Capped at a day so
    /// an "infinite" timeout (before the handshake sets one) cannot overflow `Instant`.
    pub(crate) fn idle_deadline(&self, timeout: Duration) -> Instant {
        self.last_rx + timeout.min(Duration::from_secs(86_400))
    }

    /// Bytes to write to the transport, if any.
    pub(crate) fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        if self.closed.is_none() {
            self.flush();
        }
        if self.tx.is_empty() {
            return None;
        }
        self.last_tx = now;
        // The whole buffer goes, and the encoder's work space with it: an idle connection keeps
        // neither.
        self.encoder.release_memory();
        Some(std::mem::take(&mut self.tx).freeze())
    }

    /// Closed, and everything written: the driver may shut the transport.
    pub(crate) fn is_done(&self) -> bool {
        self.closed.is_some() && self.tx.is_empty()
    }

    /// Drops the receive buffer once everything in it is decoded, so an idle connection holds
    /// none (a busy one allocates per read, which it copies into anyway).
    pub(crate) fn release_rx(&mut self) {
        if self.rx.is_empty() && self.rx.capacity() > 0 {
            self.rx = BytesMut::new();
        }
    }

    /// Handles a decode error: the stream cannot be trusted ([WIRE-10.1]).
    pub(crate) fn fail(&mut self, error: &magpie_wire::Error) {
        self.close(error.code(), error.frame_type(), error.to_string());
    }
}
