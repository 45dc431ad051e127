//! Setup shared by the criterion benches, the report and its test: the corpus as packets, codec
//! configurations, and the encode/decode loops every measurement runs.

use bytes::{Buf, Bytes, BytesMut};
use magpie_wire::{Compression, Decoder, DecoderConfig, Encoder, EncoderConfig, Limits, Packet};
use prost::Message;

use crate::chat::{self, ChatMessage};

/// Errors of the measured loops (codec or prost failures; none are expected).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Messages in the standard corpus: 4096 × ~100 B ≈ 400 KiB, far more than the 32 KiB DEFLATE
/// window, so a takeover stream cycling through it never sees a batch twice within its window.
pub const CORPUS_SIZE: usize = 4096;
/// Seed of the standard corpus.
pub const SEED: u64 = 0x6D61_6770_6965;
/// Id of the first packet: a connection that has been up a while uses 2-byte ids.
pub const FIRST_ID: u32 = 1000;

/// The corpus, its prost bodies and the SEND packets carrying them.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The messages.
    pub messages: Vec<ChatMessage>,
    /// Their prost encodings.
    pub bodies: Vec<Bytes>,
    /// SEND packets, ids counting up from [`FIRST_ID`].
    pub packets: Vec<Packet>,
    /// Index of the typical packet: the one whose body size is the corpus median.
    pub typical: usize,
}

impl Fixture {
    /// A fixture of `n` messages (at least 1) from the standard seed.
    pub fn new(n: usize) -> Fixture {
        let messages = chat::corpus(n.max(1), SEED);
        let bodies = chat::encode_bodies(&messages);
        let packets = chat::to_packets(&bodies, FIRST_ID);
        let mut order: Vec<usize> = (0..bodies.len()).collect();
        order.sort_by_key(|&i| (bodies[i].len(), i));
        let typical = order[order.len() / 2];
        Fixture {
            messages,
            bodies,
            packets,
            typical,
        }
    }

    /// The standard fixture.
    pub fn standard() -> Fixture {
        Fixture::new(CORPUS_SIZE)
    }

    /// The typical packet.
    pub fn typical_packet(&self) -> &Packet {
        &self.packets[self.typical]
    }

    /// The whole batches of `size` packets, in corpus order.
    pub fn batches(&self, size: usize) -> impl Iterator<Item = &[Packet]> {
        self.packets.chunks_exact(size.max(1))
    }

    /// The first batch of `size` packets (the whole corpus if it is smaller).
    pub fn batch(&self, size: usize) -> &[Packet] {
        &self.packets[..size.min(self.packets.len())]
    }

    /// Bodies of the first batch of `size` packets.
    pub fn batch_bodies(&self, size: usize) -> &[Bytes] {
        &self.bodies[..size.min(self.bodies.len())]
    }
}

/// Limits a peer announces after the handshake: the defaults (64 packets per container).
pub fn peer_limits() -> Limits {
    Limits::default()
}

/// An encoder for a peer with default limits, in `compression` mode, compressing bodies of at
/// least `threshold` bytes.
pub fn encoder(compression: Compression, threshold: usize) -> Encoder {
    Encoder::new(
        EncoderConfig::default()
            .peer_limits(peer_limits())
            .compression(compression)
            .compression_threshold(threshold),
    )
}

/// An encoder with the default threshold.
pub fn default_encoder(compression: Compression) -> Encoder {
    encoder(compression, EncoderConfig::DEFAULT_COMPRESSION_THRESHOLD)
}

/// A `deflate` encoder at DEFLATE `level` (the default is 6), default threshold.
pub fn deflate_level_encoder(level: u32) -> Encoder {
    let config = default_encoder(Compression::Deflate).config().clone();
    Encoder::new(config.compression_level(level))
}

/// A decoder with default limits in `compression` mode.
pub fn decoder(compression: Compression) -> Decoder {
    Decoder::new(DecoderConfig::default().compression(compression))
}

/// Queues `packets` and flushes once: merged into containers ([WIRE-8.6]).
pub fn encode_merged(
    encoder: &mut Encoder,
    packets: &[Packet],
    dst: &mut BytesMut,
) -> Result<(), BoxError> {
    for packet in packets {
        encoder.push(packet.clone())?;
    }
    encoder.flush(dst)?;
    Ok(())
}

/// Encodes `packets` one frame each.
pub fn encode_each(
    encoder: &mut Encoder,
    packets: &[Packet],
    dst: &mut BytesMut,
) -> Result<(), BoxError> {
    for packet in packets {
        encoder.encode(packet.clone(), dst)?;
    }
    Ok(())
}

/// Wire bytes of `packets` merged into containers of `size`, flushed batch by batch through one
/// encoder (so a takeover stream continues across batches). Trailing packets are ignored.
pub fn merged_stream(
    packets: &[Packet],
    size: usize,
    compression: Compression,
) -> Result<Vec<Bytes>, BoxError> {
    merged_stream_with(default_encoder(compression), packets, size)
}

/// [`merged_stream`] through a given encoder (e.g. another compression level).
pub fn merged_stream_with(
    mut enc: Encoder,
    packets: &[Packet],
    size: usize,
) -> Result<Vec<Bytes>, BoxError> {
    let mut out = Vec::new();
    for batch in packets.chunks_exact(size.max(1)) {
        let mut dst = BytesMut::new();
        encode_merged(&mut enc, batch, &mut dst)?;
        out.push(dst.freeze());
    }
    Ok(out)
}

/// Wire bytes of `packets`, one frame each, through one encoder (`threshold` 0 compresses all).
pub fn single_stream(
    packets: &[Packet],
    compression: Compression,
    threshold: usize,
) -> Result<Vec<Bytes>, BoxError> {
    let mut enc = encoder(compression, threshold);
    let mut out = Vec::with_capacity(packets.len());
    for packet in packets {
        let mut dst = BytesMut::new();
        enc.encode(packet.clone(), &mut dst)?;
        out.push(dst.freeze());
    }
    Ok(out)
}

/// Concatenates wire chunks.
pub fn concat(chunks: &[Bytes]) -> BytesMut {
    let mut out = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
    for chunk in chunks {
        out.extend_from_slice(chunk);
    }
    out
}

/// Decodes every whole packet in `src`, returning how many; fails if bytes are left over.
pub fn decode_all(decoder: &mut Decoder, src: &mut BytesMut) -> Result<usize, BoxError> {
    let mut n = 0;
    while let Some(packet) = decoder.decode(src)? {
        n += 1;
        std::hint::black_box(&packet);
    }
    if src.is_empty() {
        Ok(n)
    } else {
        Err(format!("{} bytes left after {n} packets", src.len()).into())
    }
}

/// Decodes every packet in `src` into `out`.
pub fn decode_into(
    decoder: &mut Decoder,
    src: &mut BytesMut,
    out: &mut Vec<Packet>,
) -> Result<(), BoxError> {
    while let Some(packet) = decoder.decode(src)? {
        out.push(packet);
    }
    if src.is_empty() {
        Ok(())
    } else {
        Err(format!("{} bytes left after {} packets", src.len(), out.len()).into())
    }
}

/// One transport read: appends `wire` to the connection's read buffer `src` (the copy a socket read
/// makes; the buffer is reused, as a framed reader reuses it) and decodes every packet in it,
/// followed by a prost decode of each body when `prost`.
pub fn read_and_decode(
    decoder: &mut Decoder,
    src: &mut BytesMut,
    wire: &[u8],
    prost: bool,
) -> Result<usize, BoxError> {
    src.extend_from_slice(wire);
    if prost {
        decode_all_prost(decoder, src)
    } else {
        decode_all(decoder, src)
    }
}

/// Framed decode followed by prost decode of each body; returns the summed text lengths.
pub fn decode_all_prost(decoder: &mut Decoder, src: &mut BytesMut) -> Result<usize, BoxError> {
    let mut n = 0;
    while let Some(packet) = decoder.decode(src)? {
        n += ChatMessage::decode(&packet.body()[..])?.text.len();
    }
    Ok(n)
}

/// prost decode of bodies without any framing; returns the summed text lengths.
pub fn prost_decode_all(bodies: &[Bytes]) -> Result<usize, BoxError> {
    let mut n = 0;
    for body in bodies {
        n += ChatMessage::decode(&body[..])?.text.len();
    }
    Ok(n)
}

/// A lower bound for any framed decoder: reads Flags, Type, [Id] and Length as QUIC varints with
/// no validation at all and splits the body off as `Bytes`; with `prost`, decodes each body too.
/// Returns the frame count (or the summed text lengths with `prost`).
pub fn minimal_split(src: &mut BytesMut, prost: bool) -> Result<usize, BoxError> {
    let mut n = 0;
    while !src.is_empty() {
        let mut pos = 0;
        let flags = varint(src, &mut pos)?;
        varint(src, &mut pos)?;
        if flags & 1 != 0 {
            varint(src, &mut pos)?;
        }
        let len = usize::try_from(varint(src, &mut pos)?)?;
        if src.len() - pos < len {
            return Err("truncated frame".into());
        }
        src.advance(pos);
        let body = src.split_to(len).freeze();
        n += match prost {
            true => ChatMessage::decode(&body[..])?.text.len(),
            false => std::hint::black_box(body).len().min(1),
        };
    }
    Ok(n)
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, BoxError> {
    let first = *buf.get(*pos).ok_or("truncated varint")?;
    let len = 1usize << (first >> 6);
    let rest = buf.get(*pos + 1..*pos + len).ok_or("truncated varint")?;
    *pos += len;
    Ok(rest
        .iter()
        .fold(u64::from(first & 0x3F), |acc, b| (acc << 8) | u64::from(*b)))
}
