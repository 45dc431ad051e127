//! The sans-IO encoder: queue packets, flush them as frames, merging and compressing per the spec
//! and the negotiated settings.

use std::cell::RefCell;
use std::collections::VecDeque;

use bytes::{BufMut, BytesMut};

use crate::compress::Deflater;
use crate::config::{Compression, EncoderConfig, Limits};
use crate::error::Error;
use crate::header::{self, MAX_PING_BODY};
use crate::packet::Packet;
use crate::types::{FrameType, TypeRange};
use crate::varint::VarInt;

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
    /// The takeover stream's compressor, made on first use ([WIRE-7]: idle connections never pay
    /// for DEFLATE state). Per-frame compressors and all work buffers are the thread's
    /// ([`FrameDeflate`]).
    takeover: Option<Box<Deflater>>,
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
            takeover: None,
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

    /// Compresses at this DEFLATE level (0 ..= 9, clamped) from the next compressed frame on;
    /// a takeover stream keeps the level it started with.
    pub fn set_compression_level(&mut self, level: u32) {
        self.config.compression_level = level.min(9);
    }

    /// Applies the negotiated compression mode, from the next frame on.
    pub fn set_compression(&mut self, compression: Compression) {
        if compression != self.config.compression {
            self.takeover = None;
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

    /// Gives back the memory an encoder with nothing queued holds in its queue. Work buffers are
    /// the thread's, and a takeover compressor is kept (its window is the stream's state). For
    /// connections that go idle.
    pub fn release_memory(&mut self) {
        if self.queue.is_empty() {
            self.queue = VecDeque::new();
        }
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

    /// Writes `body` as one frame, compressed ([WIRE-7.4]: if that makes it smaller, or always in
    /// takeover mode, whose peer window must see every compressed body, [WIRE-7.3]).
    fn write_compressed(
        &mut self,
        ty: FrameType,
        id: Option<VarInt>,
        body: &[u8],
        dst: &mut BytesMut,
    ) -> Result<(), Error> {
        let level = self.config.compression_level;
        FRAME_DEFLATE.with(|shared| {
            let FrameDeflate { deflaters, out, .. } = &mut *shared.borrow_mut();
            let send_compressed = if self.config.compression == Compression::DeflateTakeover {
                let deflater = self
                    .takeover
                    .get_or_insert_with(|| Box::new(Deflater::new(level, true)));
                if let Err(e) = deflater.compress(body, out, ty) {
                    self.broken = true;
                    return Err(e);
                }
                true
            } else {
                // The encoder clamps its level to 9.
                let deflater = deflaters[level.min(9) as usize]
                    .get_or_insert_with(|| Deflater::new(level, false));
                deflater.compress(body, out, ty)?;
                out.len() < body.len()
            };
            if send_compressed {
                header::write(dst, ty, id, true, out.len());
                dst.put_slice(out);
            } else {
                header::write(dst, ty, id, false, body.len());
                dst.put_slice(body);
            }
            if out.capacity() > KEEP_BUFFER {
                *out = Vec::new();
            }
            Ok(())
        })
    }

    fn write_frame(&mut self, packet: &Packet, dst: &mut BytesMut) -> Result<(), Error> {
        let (ty, id, body) = (packet.ty(), packet.id(), packet.body());
        if self.should_compress(ty, body.len()) {
            return self.write_compressed(ty, id, body, dst);
        }
        header::write(dst, ty, id, false, body.len());
        dst.put_slice(body);
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
        // The body is built in the thread's buffer, taken out while the frame is written.
        let mut body = FRAME_DEFLATE.with(|shared| std::mem::take(&mut shared.borrow_mut().body));
        body.clear();
        body.reserve(size);
        for packet in packets {
            write_inner(&packet, &mut body);
        }
        let result = self.write_compressed(FrameType::CONTAINER, None, &body, dst);
        if body.capacity() <= KEEP_BUFFER {
            FRAME_DEFLATE.with(|shared| shared.borrow_mut().body = body);
        }
        result
    }
}

/// The compression state of one thread, shared by its encoders.
///
/// In per-frame mode ([WIRE-7.2]) every body is a stream of its own, so a compressor carries
/// nothing from one frame to the next and need not belong to a connection. Sharing one per
/// thread keeps its several hundred KiB of DEFLATE state out of every connection that ever
/// compressed a frame (a client that synced once would otherwise hold it for good) and keeps it
/// warm in the cache. The work buffers serve both modes: no frame's body or output outlives its
/// write.
#[derive(Default)]
struct FrameDeflate {
    /// A compressor per level (0 ..= 9), made on first use: encoders of different levels on one
    /// thread (a server and the clients of a test) would otherwise rebuild it in turn.
    deflaters: [Option<Deflater>; 10],
    /// A container body about to be compressed.
    body: BytesMut,
    /// The compressed body.
    out: Vec<u8>,
}

thread_local! {
    static FRAME_DEFLATE: RefCell<FrameDeflate> = RefCell::default();
}

/// Bytes of buffer a thread's [`FrameDeflate`] keeps between frames; larger ones are given back.
const KEEP_BUFFER: usize = 64 * 1024;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoder, DecoderConfig};

    fn chat(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                format!("message {i}: see you at the station at {}. ", i % 7).into_bytes()
            })
            .collect()
    }

    /// Per-frame encoders of one thread share a compressor: encoders with different levels and
    /// a takeover encoder, interleaved, each still write frames their own peer decodes.
    #[test]
    fn encoders_sharing_the_thread_compressor_stay_independent() {
        let limits = Limits::default();
        let per_frame = |level| {
            Encoder::new(
                EncoderConfig::default()
                    .peer_limits(limits)
                    .compression(Compression::Deflate)
                    .compression_threshold(64)
                    .compression_level(level),
            )
        };
        let mut encoders = [
            (per_frame(1), Compression::Deflate),
            (per_frame(9), Compression::Deflate),
            (
                Encoder::new(
                    EncoderConfig::default()
                        .peer_limits(limits)
                        .compression(Compression::DeflateTakeover)
                        .compression_threshold(64),
                ),
                Compression::DeflateTakeover,
            ),
        ];
        let mut decoders: Vec<Decoder> = encoders
            .iter()
            .map(|(_, c)| {
                let mut d = Decoder::new(DecoderConfig::default());
                d.set_compression(*c);
                d
            })
            .collect();
        for round in 0..6 {
            for ((encoder, _), decoder) in encoders.iter_mut().zip(&mut decoders) {
                let bodies: Vec<Vec<u8>> = (0..=round % 3).map(|k| chat(20 + round + k)).collect();
                for body in &bodies {
                    encoder
                        .push(Packet::new(FrameType::SEND, body.clone()))
                        .expect("push");
                }
                let mut wire = BytesMut::new();
                encoder.flush(&mut wire).expect("flush");
                assert!(
                    wire.len() < bodies.iter().map(Vec::len).sum::<usize>(),
                    "compressed"
                );
                for body in &bodies {
                    let packet = decoder
                        .decode(&mut wire)
                        .expect("decode")
                        .expect("a packet");
                    assert_eq!(&packet.body()[..], &body[..]);
                }
                assert!(wire.is_empty());
            }
        }
    }
}
