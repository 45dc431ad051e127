//! Fuzz targets for `magpie-wire` (spec/wire.md), as plain functions over `&[u8]`.
//!
//! Each target is shared by its cargo-fuzz binary (`fuzz_targets/<name>.rs`) and by the stable
//! harness (`tests/corpus.rs`). A target panics when an invariant of the codec or the spec breaks;
//! "does not panic" is the least of what it checks:
//!
//! | target | what it feeds | what it asserts |
//! |---|---|---|
//! | [`frame_decode`] | raw stream bytes, three decoder configs | termination, poisoning, codes, `Ok(None)` is stable, consumed = input − rest, delivered packets are deliverable and canonical, memory bound |
//! | [`container_decode`] | bytes as a CONTAINER body | all-or-nothing ([WIRE-8.5]), cap, codes, re-encode (merged and alone) decodes equal, canonical |
//! | [`inflate`] | bytes as a COMPRESSED body | differential against plain flate2 with the [WIRE-7.2]/[WIRE-7.5] rules, codes, bounded output allocation |
//! | [`chunked_decode`] | a config prefix, chunk sizes, stream bytes | any chunking gives the same packets, error code and consumed count as one piece |
//! | [`roundtrip`] | `arbitrary` packets and encoder settings | decode(encode(p)) = p minus skipped packets, limits honoured, canonical |
//!
//! A target never works around a codec bug: any input that breaks an invariant fails. Bugs found
//! so far are fixed in magpie-wire and pinned by regression tests in `tests/regressions.rs`.

pub mod alloc_track;
mod container;
mod decode;
mod inflate;
mod roundtrip;
pub mod vectors;

use bytes::BytesMut;
use magpie_wire::{
    Close, Compression, Decoder, DecoderConfig, Error, ErrorCode, FrameType, Limits, Packet,
    TypeRange, TypeRegistry, VarInt,
};

pub use container::container_decode;
pub use decode::{chunked_decode, frame_decode};
pub use inflate::inflate;
pub use roundtrip::roundtrip;

/// The names of the fuzz targets, as in `Cargo.toml` and `fuzz/corpus/<name>/`.
pub const TARGETS: [&str; 5] = [
    "frame_decode",
    "container_decode",
    "inflate",
    "chunked_decode",
    "roundtrip",
];

/// Runs the target called `name` on `data`. Panics on an unknown name.
pub fn run_target(name: &str, data: &[u8]) {
    match name {
        "frame_decode" => frame_decode(data),
        "container_decode" => container_decode(data),
        "inflate" => inflate(data),
        "chunked_decode" => chunked_decode(data),
        "roundtrip" => roundtrip(data),
        other => panic!("unknown fuzz target {other:?}"),
    }
}

/// The codes a decoder may fail with: never NO_ERROR, INTERNAL_ERROR or the session-level ones.
pub(crate) const DECODE_CODES: [ErrorCode; 6] = [
    ErrorCode::PROTOCOL_ERROR,
    ErrorCode::MALFORMED,
    ErrorCode::FRAME_TOO_LARGE,
    ErrorCode::DECOMPRESSION_LIMIT,
    ErrorCode::CONTAINER_INVALID,
    ErrorCode::COMPRESSION_ERROR,
];

/// A decoder configuration plus what the checks need to know about it.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub(crate) limits: Limits,
    pub(crate) compression: Compression,
    pub(crate) extensions: Vec<FrameType>,
}

impl Setup {
    pub(crate) fn new(limits: Limits, compression: Compression, extensions: &[FrameType]) -> Setup {
        Setup {
            limits,
            compression,
            extensions: extensions.to_vec(),
        }
    }

    pub(crate) fn decoder(&self) -> Decoder {
        let mut types = TypeRegistry::v1();
        for ty in &self.extensions {
            types.negotiate_extension(*ty);
        }
        Decoder::new(
            DecoderConfig::default()
                .limits(self.limits)
                .compression(self.compression)
                .types(types),
        )
    }

    /// Extension types this setup delivers (negotiable ones only).
    pub(crate) fn delivers(&self, ty: FrameType) -> bool {
        match ty.range() {
            TypeRange::Core => FrameType::ASSIGNED_V1.contains(&ty),
            TypeRange::Grease => false,
            TypeRange::Extension => self.extensions.contains(&ty),
        }
    }

    /// What one decode run over `input_len` bytes may cost at most ([WIRE-11]: one frame costs at
    /// most `max_frame_size + max_decompressed_size + 1`), plus the input copy, a growth of the
    /// read buffer, the inflater state and the checks' own small allocations.
    pub(crate) fn memory_budget(&self, input_len: usize) -> usize {
        2 * input_len
            + self.limits.max_frame_size() as usize
            + self.limits.max_decompressed_size() as usize
            + 1
            + 256 * 1024
    }
}

/// Limits from raw values, each clamped into the spec's floor..=ceiling range ([WIRE-6.1]).
pub(crate) fn limits(frame: u64, decompressed: u64, packets: u64) -> Limits {
    let clamp = |v: u64, lo: u32, hi: u32| v.clamp(u64::from(lo), u64::from(hi)) as u32;
    let mut limits = Limits::FLOOR;
    limits
        .set_max_frame_size(clamp(frame, Limits::MIN_FRAME_SIZE, Limits::MAX_FRAME_SIZE))
        .expect("clamped into range");
    limits
        .set_max_decompressed_size(clamp(
            decompressed,
            Limits::MIN_DECOMPRESSED_SIZE,
            Limits::MAX_DECOMPRESSED_SIZE,
        ))
        .expect("clamped into range");
    let cap = packets.clamp(
        u64::from(Limits::MIN_CONTAINER_PACKETS),
        u64::from(Limits::MAX_CONTAINER_PACKETS),
    );
    limits
        .set_max_container_packets(cap as u16)
        .expect("clamped into range");
    limits
}

/// A varint's minimal encoding ([WIRE-3.2]); values above 2^62 − 1 are clamped.
pub(crate) fn varint(value: u64, out: &mut Vec<u8>) {
    VarInt::new(value).unwrap_or(VarInt::MAX).encode(out);
}

/// A frame header ([WIRE-4.1]) with the given raw fields.
pub(crate) fn header(flags: u64, ty: u64, id: Option<u64>, len: usize, out: &mut Vec<u8>) {
    varint(flags, out);
    varint(ty, out);
    if let Some(id) = id {
        varint(id, out);
    }
    varint(len as u64, out);
}

/// The canonical uncompressed encoding of `packet`, as a frame or an inner packet ([WIRE-8]).
pub(crate) fn plain_frame(packet: &Packet) -> Vec<u8> {
    let mut out = Vec::with_capacity(packet.encoded_len());
    let id = packet.id().map(VarInt::into_inner);
    header(
        u64::from(id.is_some()),
        packet.ty().value().into_inner(),
        id,
        packet.body().len(),
        &mut out,
    );
    out.extend_from_slice(packet.body());
    out
}

/// Checks a decode error: an allowed, registered code that a CLOSE can carry ([WIRE-10]).
pub(crate) fn check_error(error: &Error, allowed: &[ErrorCode], what: &str) -> ErrorCode {
    let code = error.code();
    assert!(
        !matches!(error, Error::Poisoned { .. }),
        "{what}: first error is Poisoned: {error}"
    );
    assert!(code.name().is_some(), "{what}: unregistered code {code:?}");
    assert!(
        allowed.contains(&code),
        "{what}: code {code:?} not in {allowed:?} for {error}"
    );
    // The CLOSE that reports it carries the code and decodes back ([WIRE-10.1], [WIRE-10.2]).
    let close = Close::for_error(error);
    let back = Close::decode(close.to_packet().body()).expect("our own CLOSE body decodes");
    assert_eq!(back.code(), code, "{what}: CLOSE code");
    // Type 0 is reserved and never assigned: in a CLOSE it means "no type" ([WIRE-10.2]).
    let ty = error.frame_type().filter(|t| t.value().into_inner() != 0);
    assert_eq!(back.frame_type(), ty, "{what}: CLOSE type");
    code
}

/// Checks that a delivered packet is one a receiver may deliver under `setup`.
pub(crate) fn check_delivered(packet: &Packet, setup: &Setup, what: &str) {
    let ty = packet.ty();
    assert_ne!(
        ty,
        FrameType::CONTAINER,
        "{what}: a CONTAINER was delivered"
    );
    assert!(
        setup.delivers(ty),
        "{what}: {ty:?} delivered but must be refused or skipped"
    );
    if matches!(ty, FrameType::PING | FrameType::PONG | FrameType::CLOSE) {
        assert_eq!(packet.id(), None, "{what}: {ty:?} with an id ([WIRE-4.3])");
    }
    if ty == FrameType::PING {
        assert!(
            packet.body().len() <= 64,
            "{what}: PING body > 64 ([WIRE-9.1])"
        );
    }
    if ty == FrameType::CLOSE {
        // [WIRE-10.3]: a CLOSE body holds two integers (else MALFORMED) and any reason bytes.
        match Close::decode(packet.body()) {
            Ok(close) => {
                let again = Close::decode(close.to_packet().body()).expect("re-encoded CLOSE");
                assert_eq!(again, close, "{what}: CLOSE round trip");
            }
            Err(e) => assert_eq!(e.code(), ErrorCode::MALFORMED, "{what}: CLOSE error {e}"),
        }
    }
}

/// Decodes everything `src` holds until `Ok(None)` or an error, checking the decoder contract on
/// the way. `fed` is the total number of bytes ever appended to `src`. Each packet goes to
/// `each` with the bytes consumed by the call that returned it (empty for later packets of a
/// container). Returns the error, if any.
pub(crate) fn drain<'a>(
    decoder: &mut Decoder,
    src: &mut BytesMut,
    fed: &'a [u8],
    setup: &Setup,
    mut each: impl FnMut(Packet, &'a [u8]),
) -> Option<Error> {
    let cap = usize::from(setup.limits.max_container_packets());
    let mut idle_packets = 0usize;
    loop {
        let start = fed.len() - src.len();
        assert_eq!(
            decoder.bytes_consumed(),
            start as u64,
            "consumed != fed - buffered"
        );
        let result = decoder.decode(src);
        let end = fed.len() - src.len();
        assert!(end >= start, "decode put bytes back into the buffer");
        assert_eq!(
            decoder.bytes_consumed(),
            end as u64,
            "consumed != fed - buffered"
        );
        match result {
            Ok(Some(packet)) => {
                // Termination: without consuming, only the rest of one container may come out.
                idle_packets = if end == start { idle_packets + 1 } else { 0 };
                assert!(
                    idle_packets < cap,
                    "packets without progress exceed the container cap"
                );
                check_delivered(&packet, setup, "decode");
                each(packet, &fed[start..end]);
            }
            Ok(None) => {
                // `Ok(None)` means "need more bytes" ([WIRE-4.6]): asking again without new bytes
                // must give the same answer and consume nothing.
                let again = decoder.decode(src);
                assert!(
                    matches!(again, Ok(None)),
                    "Ok(None) then {again:?} with no new bytes"
                );
                assert_eq!(decoder.bytes_consumed(), end as u64, "idle decode consumed");
                return None;
            }
            Err(error) => {
                check_error(&error, &DECODE_CODES, "decode");
                // [WIRE-10.1]: poisoned; later bytes are never processed.
                let len = src.len();
                match decoder.decode(src) {
                    Err(Error::Poisoned { code }) => assert_eq!(code, error.code(), "poison code"),
                    other => panic!("decoder not poisoned after {error}: {other:?}"),
                }
                assert_eq!(src.len(), len, "a poisoned decoder consumed bytes");
                return Some(error);
            }
        }
    }
}

/// Whether `needle` occurs in `haystack`.
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
