//! `frame_decode` and `chunked_decode`: the stream decoder on raw bytes.

use bytes::BytesMut;
use magpie_wire::{Compression, ErrorCode, FrameType, Limits, Packet};

use crate::vectors::take_varint;
use crate::{Setup, alloc_track, contains, drain, limits, plain_frame};

/// The negotiated extension used by the fixed setups (not grease: 0x400 mod 31 = 1).
const EXTENSION: u32 = 0x400;

/// Three receivers the raw bytes are tried against: the defaults; DEFLATE at the floors with an
/// extension; takeover at the floors.
fn setups() -> [Setup; 3] {
    [
        Setup::new(Limits::default(), Compression::None, &[]),
        Setup::new(
            Limits::FLOOR,
            Compression::Deflate,
            &[FrameType::from_u32(EXTENSION)],
        ),
        Setup::new(Limits::FLOOR, Compression::DeflateTakeover, &[]),
    ]
}

/// Feeds `data` to a [`Decoder`](magpie_wire::Decoder) in one piece, under each of three
/// receiver setups, until `Ok(None)` or an error.
///
/// Asserts: termination; consumed bytes = input − buffered (so never more than the input);
/// `Ok(None)` is stable; an error has a registered decode code, CLOSE carries it, and the decoder
/// is poisoned after it; delivered packets are deliverable ([WIRE-4.3], [WIRE-5], [WIRE-9.1],
/// [WIRE-10.3]); without compression every delivered packet's canonical encoding occurs in the
/// bytes consumed for it ([WIRE-3.2]: nothing overlong was accepted); memory stays within one
/// frame's worst case ([WIRE-11]).
pub fn frame_decode(data: &[u8]) {
    for setup in setups() {
        let (_, usage) = alloc_track::measure(|| decode_once(data, &setup));
        if let Some(usage) = usage {
            let budget = setup.memory_budget(data.len());
            assert!(
                usage.peak <= budget,
                "frame_decode: peak {} bytes > budget {budget} ({setup:?})",
                usage.peak
            );
        }
    }
}

fn decode_once(data: &[u8], setup: &Setup) {
    let mut decoder = setup.decoder();
    let mut src = BytesMut::from(data);
    let canonical = setup.compression == Compression::None;
    // Bytes of the last call that consumed anything: a plain frame, or a container whose later
    // packets come out of later calls that consume nothing.
    let mut frame: &[u8] = &[];
    drain(&mut decoder, &mut src, data, setup, |packet, consumed| {
        if !consumed.is_empty() {
            frame = consumed;
        }
        if canonical {
            let encoded = plain_frame(&packet);
            assert!(
                contains(frame, &encoded),
                "frame_decode: {packet:?} is not canonically encoded in the bytes it came from"
            );
        }
    });
}

/// The outcome of one decode run, for comparison.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    packets: Vec<Packet>,
    error: Option<ErrorCode>,
    consumed: u64,
}

/// Parses the chunked-decode prefix: the receiver setup and the chunk sizes.
///
/// ```text
/// config (1)      bits 0-1: compression (0 none, 1 deflate, 2 deflate-takeover, 3 none)
///                 bit 2: explicit limits follow, else the defaults
///                 bit 3: one negotiated extension type follows
/// [frame (v), decompressed (v), packets (v)]   limits, clamped into the spec's ranges
/// [extension (v)]
/// count (1)       (count & 7) + 1 chunk sizes follow
/// size (1) ...    chunk sizes, used in a cycle; 0 feeds nothing (an idle decode call)
/// stream bytes
/// ```
pub(crate) fn chunked_prefix(mut data: &[u8]) -> Option<(Setup, Vec<usize>, &[u8])> {
    let (&config, rest) = data.split_first()?;
    data = rest;
    let compression = match config & 3 {
        1 => Compression::Deflate,
        2 => Compression::DeflateTakeover,
        _ => Compression::None,
    };
    let limits = if config & 4 != 0 {
        let frame = take_varint(&mut data)?;
        let decompressed = take_varint(&mut data)?;
        let packets = take_varint(&mut data)?;
        limits(frame, decompressed, packets)
    } else {
        Limits::default()
    };
    let mut extensions = Vec::new();
    if config & 8 != 0 {
        let ty = take_varint(&mut data)?;
        extensions.push(FrameType::new(magpie_wire::VarInt::new(ty)?));
    }
    let (&count, rest) = data.split_first()?;
    let count = usize::from(count & 7) + 1;
    let sizes = rest.get(..count)?.iter().map(|b| usize::from(*b)).collect();
    Some((
        Setup::new(limits, compression, &extensions),
        sizes,
        &rest[count..],
    ))
}

/// The prefix [`chunked_prefix`] reads, for seeds.
pub(crate) fn write_chunked_prefix(setup: &Setup, explicit: bool, sizes: &[u8], out: &mut Vec<u8>) {
    let mut config = match setup.compression {
        Compression::None => 0,
        Compression::Deflate => 1,
        Compression::DeflateTakeover => 2,
    };
    if explicit {
        config |= 4;
    }
    if !setup.extensions.is_empty() {
        config |= 8;
    }
    out.push(config);
    if explicit {
        crate::varint(setup.limits.max_frame_size().into(), out);
        crate::varint(setup.limits.max_decompressed_size().into(), out);
        crate::varint(setup.limits.max_container_packets().into(), out);
    }
    if let Some(ty) = setup.extensions.first() {
        crate::varint(ty.value().into_inner(), out);
    }
    let sizes = if sizes.is_empty() { &[1][..] } else { sizes };
    let count = sizes.len().min(8);
    out.push((count - 1) as u8);
    out.extend_from_slice(&sizes[..count]);
}

/// The "any chunking" property: the stream bytes fed in the chunks the prefix picks give the same
/// packets, the same error code (or none) and the same consumed count as fed in one piece
/// ([WIRE-4.6]; the decoder's partial-input handling must not change what it decodes).
pub fn chunked_decode(data: &[u8]) {
    let Some((setup, sizes, stream)) = chunked_prefix(data) else {
        return;
    };
    // Big limits and a long stream only slow the fuzzer down: the property is about boundaries.
    let stream = &stream[..stream.len().min(64 * 1024)];
    let whole = run(&setup, stream, &[stream.len().max(1)]);
    let sizes = if sizes.iter().all(|s| *s == 0) {
        vec![1]
    } else {
        sizes
    };
    let chunked = run(&setup, stream, &sizes);
    assert_eq!(
        whole, chunked,
        "chunked_decode: one piece vs chunks {sizes:?} differ ({setup:?})"
    );
}

fn run(setup: &Setup, stream: &[u8], sizes: &[usize]) -> Outcome {
    let mut decoder = setup.decoder();
    let mut src = BytesMut::new();
    let mut packets = Vec::new();
    let mut fed = 0usize;
    let mut error = None;
    for size in sizes.iter().cycle() {
        let end = (fed + size).min(stream.len());
        src.extend_from_slice(&stream[fed..end]);
        fed = end;
        if let Some(e) = drain(&mut decoder, &mut src, &stream[..fed], setup, |p, _| {
            packets.push(p)
        }) {
            error = Some(e.code());
            break;
        }
        if fed == stream.len() {
            break;
        }
    }
    Outcome {
        packets,
        error,
        consumed: decoder.bytes_consumed(),
    }
}
