//! `roundtrip`: arbitrary packets through the encoder and back through a matching decoder.

use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;
use flate2::Decompress;
use magpie_wire::{
    Compression, Encoder, EncoderConfig, ErrorCode, FrameType, Limits, Packet, TypeRange, VarInt,
};

use crate::container::decode_all;
use crate::inflate::{Reference, reference};
use crate::vectors::{RawFrame, split_frames};
use crate::{Setup, limits};

/// Extension types (none is grease: 0x400 % 31 = 1, 0x1234 % 31 = 10, (2^62 - 1) % 31 = 3).
const EXTENSIONS: [u64; 3] = [0x400, 0x1234, (1 << 62) - 1];
const FRAME_SIZES: [u64; 6] = [16_384, 16_385, 20_000, 65_536, 131_072, 262_144];
const DECOMPRESSED_SIZES: [u64; 4] = [16_384, 32_768, 65_536, 1 << 20];
const CONTAINER_CAPS: [u64; 4] = [16, 17, 64, 1_024];
/// Bounds on one input's work.
const MAX_PACKETS: usize = 300;
const MAX_TOTAL_BODY: usize = 1 << 20;

#[derive(Debug, Arbitrary)]
struct Plan {
    compression: u8,
    merge: bool,
    threshold: u16,
    level: u8,
    frame: u8,
    decompressed: u8,
    cap: u8,
    negotiated: [bool; 3],
    /// Give the decoder limits above the encoder's peer limits.
    roomier_decoder: bool,
    /// How many items to read after the plan (fewer if the input runs out).
    count: u16,
}

#[derive(Debug, Arbitrary)]
struct Item {
    kind: u8,
    id: Option<u64>,
    body: Body,
    /// Flush after pushing this packet.
    flush: bool,
}

#[derive(Debug, Arbitrary)]
enum Body {
    Bytes(Vec<u8>),
    /// A low-entropy body (compresses well).
    Pattern {
        len: u16,
        seed: u8,
    },
    /// An incompressible body of `max_body + delta` bytes: the push limit's edge ([WIRE-6.4]),
    /// and DEFLATE's worst-case growth in takeover mode.
    AtLimit {
        delta: i8,
        seed: u64,
    },
}

fn pick<T: Copy>(table: &[T], i: u8) -> T {
    table[usize::from(i) % table.len()]
}

/// An id spread over all four varint lengths ([WIRE-3]).
fn id_value(raw: u64) -> VarInt {
    let shift = [58, 50, 34, 2][(raw & 3) as usize];
    VarInt::new(raw >> shift).expect("shifted into range")
}

fn packet_type(kind: u8, raw: u64) -> FrameType {
    let core: Vec<FrameType> = FrameType::ASSIGNED_V1
        .iter()
        .copied()
        .filter(|t| *t != FrameType::CONTAINER)
        .collect();
    let k = usize::from(kind) % (core.len() + 5);
    if k < core.len() {
        core[k]
    } else if k < core.len() + 2 {
        FrameType::grease((raw >> 40) as u32 & if k % 2 == 0 { 0xF } else { u32::MAX })
    } else {
        let ext = EXTENSIONS[k - core.len() - 2];
        FrameType::new(VarInt::new(ext).expect("extension in range"))
    }
}

fn body(body: &Body, max_body: usize) -> Vec<u8> {
    match body {
        Body::Bytes(b) => b.clone(),
        Body::Pattern { len, seed } => (0..usize::from(*len))
            .map(|i| b"magpie, hello "[(i / usize::from(seed % 5 + 1)) % 14])
            .collect(),
        Body::AtLimit { delta, seed } => {
            let len = max_body.saturating_add_signed(isize::from(*delta));
            let mut x = seed | 1;
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        }
    }
}

/// Builds packets and encoder settings with `arbitrary`, encodes them (push all, flushing where
/// the plan says, then flush), and decodes the stream with a receiver of the same compression
/// and limits at least the encoder's peer limits.
///
/// Asserts: `push` refuses exactly the bodies above `max_body` (FRAME_TOO_LARGE, [WIRE-6.4]);
/// flushing never fails (the encoder writes every packet `push` accepted, in every compression
/// mode); every frame written obeys the spec, the peer's `max_frame_size` included (see
/// `check_wire`); the decoder returns exactly the accepted packets minus grease and
/// non-negotiated extensions ([WIRE-5.2], [WIRE-5.3]), with no error; and without compression,
/// with nothing skipped, re-encoding the decoded packets gives the same bytes (canonical,
/// [WIRE-3.2]).
pub fn roundtrip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(plan) = u.arbitrary::<Plan>() else {
        return;
    };
    // A count, then items, rather than a `Vec`: `arbitrary`'s vectors stop at the first odd
    // "continue" byte, which would keep most inputs to one or two packets.
    let mut items = Vec::new();
    while items.len() < usize::from(plan.count) % (MAX_PACKETS + 1) && !u.is_empty() {
        match u.arbitrary::<Item>() {
            Ok(item) => items.push(item),
            Err(_) => break,
        }
    }
    let compression = match plan.compression % 3 {
        0 => Compression::None,
        1 => Compression::Deflate,
        _ => Compression::DeflateTakeover,
    };
    let peer = limits(
        pick(&FRAME_SIZES, plan.frame),
        pick(&DECOMPRESSED_SIZES, plan.decompressed),
        pick(&CONTAINER_CAPS, plan.cap),
    );
    let threshold = usize::from(plan.threshold % 1024);
    let config = EncoderConfig::default()
        .peer_limits(peer)
        .compression(compression)
        .compression_threshold(threshold)
        .compression_level(u32::from(plan.level % 10))
        .merge(plan.merge);
    let own = if plan.roomier_decoder {
        limits(
            u64::from(peer.max_frame_size()) * 2,
            u64::from(peer.max_decompressed_size()) * 2,
            u64::from(peer.max_container_packets()) * 2,
        )
    } else {
        peer
    };
    let negotiated: Vec<FrameType> = EXTENSIONS
        .iter()
        .zip(plan.negotiated)
        .filter(|(_, on)| *on)
        .map(|(ty, _)| FrameType::new(VarInt::new(*ty).expect("in range")))
        .collect();
    let setup = Setup::new(own, compression, &negotiated);

    let mut encoder = Encoder::new(config.clone());
    let max_body = encoder.max_body();
    let mut wire = BytesMut::new();
    let (mut accepted, mut expected, mut flushes) = (Vec::new(), Vec::new(), Vec::new());
    let mut total = 0usize;
    for item in &items {
        let raw = item.id.unwrap_or(0);
        let ty = packet_type(item.kind, raw);
        let mut bytes = body(&item.body, max_body);
        if ty == FrameType::PING {
            bytes.truncate(64); // [WIRE-9.1]
        }
        total += bytes.len();
        if total > MAX_TOTAL_BODY {
            break;
        }
        let mut packet = Packet::new(ty, bytes);
        if let (Some(id), false) = (
            item.id,
            matches!(ty, FrameType::PING | FrameType::PONG | FrameType::CLOSE),
        ) {
            packet = packet.with_id(id_value(id));
        }
        let fits = packet.body().len() <= max_body;
        match encoder.push(packet.clone()) {
            Ok(()) => {
                assert!(
                    fits,
                    "roundtrip: push accepted {} > max_body {max_body}",
                    packet.body().len()
                );
                if setup.delivers(ty) {
                    expected.push(packet.clone());
                }
                accepted.push(packet);
            }
            Err(e) => {
                assert!(!fits, "roundtrip: push refused a fitting packet: {e}");
                assert_eq!(
                    e.code(),
                    ErrorCode::FRAME_TOO_LARGE,
                    "roundtrip: push error {e}"
                );
            }
        }
        if item.flush {
            flush(&mut encoder, &mut wire);
            flushes.push(accepted.len());
        }
    }
    flush(&mut encoder, &mut wire);
    assert_eq!(encoder.queued(), 0, "roundtrip: packets left after flush");
    // The frames first: a frame over the peer's limit is reported as such, not as a decode error.
    check_wire(&wire, threshold, peer, compression, plan.merge);

    let decoded = decode_all(&wire, &setup);
    assert_eq!(
        decoded, expected,
        "roundtrip: decoded packets ({compression:?})"
    );

    if compression == Compression::None && decoded.len() == accepted.len() {
        let mut again = Encoder::new(config);
        let mut bytes = BytesMut::new();
        for (i, packet) in decoded.into_iter().enumerate() {
            again.push(packet).expect("roundtrip: re-push");
            if flushes.contains(&(i + 1)) {
                again.flush(&mut bytes).expect("roundtrip: re-flush");
            }
        }
        again.flush(&mut bytes).expect("roundtrip: re-flush");
        assert_eq!(
            bytes, wire,
            "roundtrip: re-encoding the decoded packets differs"
        );
    }
}

/// What the encoder wrote, frame by frame: within the peer's `max_frame_size`; COMPRESSED only
/// when negotiated ([WIRE-7.1]), on core types ([WIRE-5.4]), for bodies of at least the
/// threshold, and in `deflate` mode only when shorter ([WIRE-7.4]); containers only when merging,
/// without an Id, holding 2 ..= `max_container_packets` packets, none compressed or nested
/// ([WIRE-8]).
fn check_wire(wire: &[u8], threshold: usize, peer: Limits, compression: Compression, merge: bool) {
    let (frames, rest) = split_frames(wire);
    assert!(rest.is_empty(), "check_wire: output ends mid-frame");
    let mut window = Decompress::new(false);
    let takeover = compression == Compression::DeflateTakeover;
    let limit = peer.max_decompressed_size() as usize;
    for frame in &frames {
        let what = format!("check_wire: {:?}", frame.ty);
        assert!(frame.flags <= 3, "{what}: reserved flag bits");
        assert!(
            frame.body.len() <= peer.max_frame_size() as usize,
            "{what}: {}-byte body over the peer's max_frame_size {} ([WIRE-6.4])",
            frame.body.len(),
            peer.max_frame_size()
        );
        let inflated = if frame.flags & 2 != 0 {
            assert_ne!(
                compression,
                Compression::None,
                "{what}: COMPRESSED not negotiated"
            );
            assert_eq!(
                frame.ty.range(),
                TypeRange::Core,
                "{what}: compressed extension"
            );
            if !takeover {
                window = Decompress::new(false); // [WIRE-7.2]: each body its own stream.
            }
            let Reference::Ok(v) = reference(&mut window, frame.body, takeover, limit) else {
                panic!("{what}: compressed body does not inflate within the peer's limit");
            };
            assert!(
                v.len() >= threshold,
                "{what}: compressed below the threshold"
            );
            if !takeover {
                assert!(
                    frame.body.len() < v.len(),
                    "{what}: compressed but not shorter"
                );
            }
            v
        } else {
            frame.body.to_vec()
        };
        if frame.ty == FrameType::CONTAINER {
            assert!(merge, "{what}: a container without merging");
            assert_eq!(frame.id, None, "{what}: container with an id");
            let (inner, rest) = split_frames(&inflated);
            assert!(rest.is_empty(), "{what}: container body does not split");
            let cap = usize::from(peer.max_container_packets());
            assert!(
                (2..=cap).contains(&inner.len()),
                "{what}: {} packets",
                inner.len()
            );
            for packet in &inner {
                check_inner(packet, &what);
            }
        }
    }
}

/// Flushes. Every packet in the queue passed `push`, so the encoder must write them all: any
/// error (a refused packet, a failed compressor) is a failure.
fn flush(encoder: &mut Encoder, wire: &mut BytesMut) {
    if let Err(e) = encoder.flush(wire) {
        panic!("roundtrip: flush refused packets that push accepted: {e}");
    }
}

fn check_inner(packet: &RawFrame<'_>, what: &str) {
    assert_eq!(packet.flags & 2, 0, "{what}: inner packet compressed");
    assert_ne!(packet.ty, FrameType::CONTAINER, "{what}: nested container");
}
