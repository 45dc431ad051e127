//! The sans-IO encoder: queue packets, flush them as frames, merging and compressing per the spec
//! and the negotiated settings.

use std::collections::VecDeque;

use bytes::{BufMut, BytesMut};

use crate::compress::Deflater;
use crate::config::{Compression, EncoderConfig, Limits};
use crate::error::Error;
use crate::header::{self, MAX_PING_BODY};
use crate::packet::Packet;
use crate::types::{FrameType, TypeRange};

/// Turns packets into frames.
///
/// [`push`](Encoder::push) checks a packet against the peer's limits and queues it;
/// [`flush`](Encoder::flush) writes everything queued. At a flush, consecutive queued packets are
/// merged into containers up to the peer's caps ([WIRE-8.6]); nothing is ever held back to wait
/// for more. Bodies of at least the compression threshold are compressed when compression was
/// negotiated ([WIRE-7.4]).
pub struct Encoder {
    config: EncoderConfig,
    queue: VecDeque<Packet>,
    /// Created on first use ([WIRE-7]: idle connections never pay for DEFLATE state).
    deflater: Option<Deflater>,
    /// Container bodies that are about to be compressed.
    scratch: BytesMut,
    compressed: Vec<u8>,
    /// A takeover compressor failed: its stream no longer matches the peer's window, so nothing
    /// more may be sent ([WIRE-7.3]).
    broken: bool,
}

impl Encoder {
    /// An encoder with the given settings.
    pub fn new(config: EncoderConfig) -> Encoder {
        Encoder {
            config,
            queue: VecDeque::new(),
            deflater: None,
            scratch: BytesMut::new(),
            compressed: Vec::new(),
            broken: false,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// Applies the limits the peer announced (after the handshake).
    pub fn set_peer_limits(&mut self, limits: Limits) {
        self.config.peer_limits = limits;
    }

    /// Applies the negotiated compression mode, from the next frame on.
    pub fn set_compression(&mut self, compression: Compression) {
        if compression != self.config.compression {
            self.deflater = None;
        }
        self.config.compression = compression;
    }

    /// Compresses only bodies of at least `bytes` from the next frame on ([WIRE-7.4]).
    pub fn set_compression_threshold(&mut self, bytes: usize) {
        self.config.compression_threshold = bytes;
    }

    /// Packets queued and not yet flushed.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The largest body the peer accepts from this encoder.
    pub fn max_body(&self) -> usize {
        let limits = self.config.peer_limits;
        let frame = limits.max_frame_size() as usize;
        match self.config.compression {
            Compression::None => frame,
            Compression::Deflate | Compression::DeflateTakeover => {
                frame.min(limits.max_decompressed_size() as usize)
            }
        }
    }

    /// Checks `packet` against the spec and the peer's limits, and queues it.
    pub fn push(&mut self, packet: Packet) -> Result<(), Error> {
        let ty = packet.ty();
        let invalid = |reason| Err(Error::InvalidPacket { ty, reason });
        if ty == FrameType::CONTAINER {
            return invalid("containers are built by the encoder");
        }
        if packet.id().is_some() && ty.forbids_id() {
            return invalid("this type never carries an id");
        }
        if ty == FrameType::PING && packet.body().len() as u64 > MAX_PING_BODY {
            return invalid("PING body longer than 64 bytes");
        }
        let limit = self.max_body();
        if packet.body().len() > limit {
            return Err(Error::PacketTooLarge {
                ty,
                len: packet.body().len(),
                limit: limit as u32,
            });
        }
        self.queue.push_back(packet);
        Ok(())
    }

    /// Writes every queued packet to `dst`.
    pub fn flush(&mut self, dst: &mut BytesMut) -> Result<(), Error> {
        if self.broken {
            return Err(Error::InvalidPacket {
                ty: FrameType::CONTAINER,
                reason: "the compression stream failed earlier",
            });
        }
        let cap = usize::from(self.config.peer_limits.max_container_packets());
        let budget = self.max_body();
        while let Some(first) = self.queue.pop_front() {
            // [WIRE-8.6]: merge what is queued now, in order, up to the caps.
            let mut count = 1;
            let mut size = first.encoded_len();
            if self.config.merge {
                while count < cap {
                    match self.queue.get(count - 1) {
                        Some(next) if size + next.encoded_len() <= budget => {
                            size += next.encoded_len();
                            count += 1;
                        }
                        _ => break,
                    }
                }
            }
            if count == 1 {
                self.write_frame(&first, dst)?;
            } else {
                self.write_container(first, count - 1, size, dst)?;
            }
        }
        Ok(())
    }

    /// Gives back the memory an encoder with nothing queued holds in its queue and work buffers
    /// (a container's body, a compressed body: up to a frame each). The compressor is kept. For
    /// connections that go idle.
    pub fn release_memory(&mut self) {
        if self.queue.is_empty() {
            self.queue = VecDeque::new();
        }
        self.scratch = BytesMut::new();
        self.compressed = Vec::new();
    }

    /// Queues `packet` and flushes: one packet, one frame (unless others were queued before).
    pub fn encode(&mut self, packet: Packet, dst: &mut BytesMut) -> Result<(), Error> {
        self.push(packet)?;
        self.flush(dst)
    }

    fn should_compress(&self, ty: FrameType, len: usize) -> bool {
        let takeover_fits = || {
            // A takeover stream must send what it compressed ([WIRE-7.3]), so only bodies whose
            // worst-case DEFLATE growth still fits the peer's frame limit are compressed: 9 bits
            // per literal in a fixed-Huffman block bounds it by len/8, plus block headers and the
            // flush. Larger bodies go uncompressed, which never touches the stream.
            let worst = len + len / 4 + 256;
            worst <= self.config.peer_limits.max_frame_size() as usize
        };
        match self.config.compression {
            Compression::None => false,
            Compression::Deflate => {
                ty.range() == TypeRange::Core && len >= self.config.compression_threshold
            }
            Compression::DeflateTakeover => {
                ty.range() == TypeRange::Core // [WIRE-5.4]
                    && len >= self.config.compression_threshold
                    && takeover_fits()
            }
        }
    }

    /// Compresses `body` into `self.compressed`; `true` if the result is to be sent ([WIRE-7.4]).
    fn compress(&mut self, ty: FrameType, body: &[u8]) -> Result<bool, Error> {
        let takeover = self.config.compression == Compression::DeflateTakeover;
        let level = self.config.compression_level;
        let deflater = self
            .deflater
            .get_or_insert_with(|| Deflater::new(level, takeover));
        if let Err(e) = deflater.compress(body, &mut self.compressed, ty) {
            self.broken = takeover;
            return Err(e);
        }
        // In takeover mode the peer's window must see every compressed body ([WIRE-7.3]).
        Ok(takeover || self.compressed.len() < body.len())
    }

    fn write_frame(&mut self, packet: &Packet, dst: &mut BytesMut) -> Result<(), Error> {
        let (ty, id, body) = (packet.ty(), packet.id(), packet.body());
        if self.should_compress(ty, body.len()) && self.compress(ty, body)? {
            header::write(dst, ty, id, true, self.compressed.len());
            dst.put_slice(&self.compressed);
        } else {
            header::write(dst, ty, id, false, body.len());
            dst.put_slice(body);
        }
        Ok(())
    }

    /// Writes `first` and the next `more` queued packets as one container of `size` body bytes.
    fn write_container(
        &mut self,
        first: Packet,
        more: usize,
        size: usize,
        dst: &mut BytesMut,
    ) -> Result<(), Error> {
        let compress = self.should_compress(FrameType::CONTAINER, size);
        let packets = std::iter::once(first).chain(self.queue.drain(..more));
        if !compress {
            header::write(dst, FrameType::CONTAINER, None, false, size);
            dst.reserve(size);
            for packet in packets {
                write_inner(&packet, dst);
            }
            return Ok(());
        }
        let mut body = std::mem::take(&mut self.scratch);
        body.clear();
        body.reserve(size);
        for packet in packets {
            write_inner(&packet, &mut body);
        }
        let result = self.compress(FrameType::CONTAINER, &body);
        match result {
            Ok(true) => {
                header::write(dst, FrameType::CONTAINER, None, true, self.compressed.len());
                dst.put_slice(&self.compressed);
            }
            Ok(false) => {
                header::write(dst, FrameType::CONTAINER, None, false, body.len());
                dst.put_slice(&body);
            }
            Err(_) => {}
        }
        self.scratch = body;
        result.map(|_| ())
    }
}

/// An inner packet: the frame layout, never compressed ([WIRE-8.3]).
fn write_inner(packet: &Packet, dst: &mut BytesMut) {
    header::write(dst, packet.ty(), packet.id(), false, packet.body().len());
    dst.put_slice(packet.body());
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new(EncoderConfig::default())
    }
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("config", &self.config)
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}
