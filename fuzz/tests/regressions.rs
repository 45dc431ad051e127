//! Regression tests for bugs the fuzz targets found in magpie-wire, all fixed.
//!
//! They run with every `cargo test --manifest-path fuzz/Cargo.toml`; the fuzz targets themselves
//! tolerate no codec bug, so a reappearance also fails `roundtrip`.

use bytes::BytesMut;
use magpie_wire::{
    Compression, Decoder, DecoderConfig, Encoder, EncoderConfig, FrameType, Limits, Packet, VarInt,
};

/// Incompressible bytes (xorshift64).
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x1234_5678_9abc_def1u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Encodes one SEND of `max_body` incompressible bytes in `deflate-takeover` mode for a peer with
/// `max_frame_size` `frame`, and decodes it with that peer's limits.
fn takeover_at_max_body(frame: u32, level: u32) {
    let mut limits = Limits::default();
    limits
        .set_max_frame_size(frame)
        .expect("frame size in range");
    // Let max_body be bounded by the frame size alone.
    limits
        .set_max_decompressed_size(Limits::MAX_DECOMPRESSED_SIZE)
        .expect("ceiling in range");
    let config = EncoderConfig::default()
        .peer_limits(limits)
        .compression(Compression::DeflateTakeover)
        .compression_level(level);
    let mut encoder = Encoder::new(config);
    let body = noise(encoder.max_body());
    let packet = Packet::new(FrameType::SEND, body).with_id(VarInt::from_u32(1));
    let mut wire = BytesMut::new();
    // [WIRE-6.4]: the encoder accepts the packet, so it must fit the peer's limits.
    encoder
        .encode(packet.clone(), &mut wire)
        .expect("a body of max_body bytes is accepted");
    let mut decoder = Decoder::new(
        DecoderConfig::default()
            .limits(limits)
            .compression(Compression::DeflateTakeover),
    );
    let wire_len = wire.len();
    match decoder.decode(&mut wire) {
        Ok(Some(decoded)) => assert_eq!(decoded, packet),
        other => panic!(
            "max_frame_size {frame}, level {level}: the encoder wrote a {wire_len}-byte frame \
             for a {}-byte body; the peer answers {other:?}",
            packet.body().len()
        ),
    }
}

/// Regression: takeover frame above the peer's `max_frame_size` at level 1 (fixed).
///
/// (magpie-wire `Encoder::max_body`, [WIRE-6.4], [WIRE-7.3]) In `deflate-takeover` mode the room
/// kept for DEFLATE's growth on incompressible data was `max_frame_size / 8192 + 64` bytes.
/// At compression level 1 miniz_oxide's fast compressor never falls back to stored blocks, and
/// grows random data by ~0.04%: at the default `max_frame_size` (262,144) a `max_body` (262,048
/// bytes) body compressed to 262,248 bytes, a frame the peer must close with FRAME_TOO_LARGE.
/// (The same at 131,072; 65,536 still fit.)
#[test]
fn takeover_level_1_incompressible_max_body_fits_default_frame_size() {
    takeover_at_max_body(Limits::DEFAULT_FRAME_SIZE, 1);
}

/// Regression: takeover frame above the peer's `max_frame_size` for large frames (fixed).
///
/// (Same place.) The margin assumed 5 bytes per 64 KiB stored block, but miniz_oxide writes
/// stored blocks of at most 32 KiB, so at every level (0 and the default 6 included) the
/// incompressible `max_body` overflowed once `max_frame_size` was about 2 MiB or more: at 2 MiB a
/// 2,096,832-byte body became a 2,097,168-byte frame body; at the 16,777,215 ceiling,
/// 16,775,104 bytes became 16,777,750.
#[test]
fn takeover_default_level_incompressible_max_body_fits_2_mib_frame_size() {
    takeover_at_max_body(2 << 20, EncoderConfig::DEFAULT_COMPRESSION_LEVEL);
}

/// A SEND of `len` incompressible bytes in `deflate-takeover` mode at the default level and
/// limits, then a SEND of 200 × "x"; returns the encoder's answers and what a peer decodes.
fn takeover_then_next(len: usize) -> (Result<(), String>, Vec<Packet>, Vec<Packet>) {
    let config = EncoderConfig::default()
        .peer_limits(Limits::default())
        .compression(Compression::DeflateTakeover);
    let mut encoder = Encoder::new(config);
    let mut wire = BytesMut::new();
    let first = Packet::new(FrameType::SEND, noise(len)).with_id(VarInt::from_u32(1));
    let result = encoder
        .encode(first.clone(), &mut wire)
        .map_err(|e| e.to_string());
    let next = Packet::new(FrameType::SEND, vec![b'x'; 200]).with_id(VarInt::from_u32(2));
    encoder
        .encode(next.clone(), &mut wire)
        .expect("a 200-byte SEND");
    let mut decoder = Decoder::new(
        DecoderConfig::default()
            .limits(Limits::default())
            .compression(Compression::DeflateTakeover),
    );
    let mut packets = Vec::new();
    while let Ok(Some(packet)) = decoder.decode(&mut wire) {
        packets.push(packet);
    }
    // What the peer must see: the packets the encoder accepted, intact.
    let sent = if result.is_ok() {
        vec![first, next]
    } else {
        vec![next]
    };
    (result, packets, sent)
}

/// Regression: takeover encode failed for some body lengths (fixed).
///
/// (magpie-wire `Deflater::compress`, [WIRE-7.3]) In `deflate-takeover` mode the loop stopped
/// as soon as all input was consumed and the output buffer had room, which is not proof that the
/// sync flush is complete. For some body lengths (here 31,745 incompressible bytes at the default
/// level 6; at level 0 even plain text of ~31.7 KiB) the output lacked its `00 00 FF FF` tail and
/// `encode` failed with `InvalidPacket { reason: "compressor did not end with a sync flush" }`
/// for a valid packet well within the limits. (In a merged flush, the container's packets were
/// lost.)
#[test]
fn takeover_encode_of_a_31745_byte_incompressible_body_succeeds() {
    let (result, _, _) = takeover_then_next(31_745);
    assert_eq!(result, Ok(()), "encoding a valid 31,745-byte SEND");
}

/// Regression: after a failed takeover encode the next frame was corrupted (fixed).
///
/// (Consequence of the one above, silent data corruption.) The compressor kept the unsent rest
/// of the failed flush, and the *next* compressed frame started with it. A peer decoded the next
/// SEND (200 × "x") as 201 bytes, " xxx…": wrong data, and no error on either side.
#[test]
fn after_a_failed_takeover_encode_the_next_packet_arrives_intact() {
    let (_, packets, sent) = takeover_then_next(31_746);
    assert_eq!(packets, sent, "what the peer decodes");
}
