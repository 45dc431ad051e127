//! `inflate`: COMPRESSED bodies ([WIRE-7]) against a plain flate2 reference.

use std::cell::OnceCell;
use std::sync::OnceLock;

use bytes::BytesMut;
use flate2::{Decompress, FlushDecompress, Status};
use magpie_wire::{Compression, Error, ErrorCode, FrameType, Limits, Packet};

use crate::{Setup, alloc_track, check_error, drain, header};

/// What a sync flush ends with; the receiver appends it in takeover mode ([WIRE-7.3]).
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];
/// Bodies are cut to this, so every frame fits the floor of `max_frame_size` ([WIRE-6]).
const MAX_BODY: usize = Limits::MIN_FRAME_SIZE as usize;
const INFLATE_CODES: [ErrorCode; 2] =
    [ErrorCode::DECOMPRESSION_LIMIT, ErrorCode::COMPRESSION_ERROR];

/// What the reference makes of a body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reference {
    /// A valid body for the mode; its inflation, at most `limit` bytes.
    Ok(Vec<u8>),
    /// Not valid DEFLATE for the mode, or more than `limit` bytes: an error either way.
    Bad,
}

/// Inflates `input` (plus the sync tail in takeover mode) with `d`, stopping at `limit + 1`
/// bytes of output, and classifies it by [WIRE-7.2] / [WIRE-7.3] / [WIRE-7.5].
pub(crate) fn reference(
    d: &mut Decompress,
    input: &[u8],
    takeover: bool,
    limit: usize,
) -> Reference {
    let mut full = input.to_vec();
    if takeover {
        full.extend_from_slice(&SYNC_TAIL);
    }
    let start = d.total_in();
    let mut out = Vec::with_capacity(limit + 1);
    loop {
        let consumed = (d.total_in() - start) as usize;
        let before = (d.total_in(), d.total_out());
        let status = d.decompress_vec(&full[consumed..], &mut out, FlushDecompress::None);
        let consumed = (d.total_in() - start) as usize;
        match status {
            Err(_) => return Reference::Bad,
            _ if out.len() > limit => return Reference::Bad,
            Ok(Status::StreamEnd) if takeover || consumed != input.len() => return Reference::Bad,
            Ok(Status::StreamEnd) => return Reference::Ok(out),
            Ok(_) if before == (d.total_in(), d.total_out()) || consumed == full.len() => {
                // Stopped with room to spare: a takeover body is complete, a plain one is cut.
                if takeover && consumed == full.len() && out.len() < out.capacity() {
                    return Reference::Ok(out);
                }
                if out.len() < out.capacity() {
                    return Reference::Bad;
                }
            }
            Ok(_) => {}
        }
    }
}

/// Output past the limit within which a decoder may still report a corrupt stream rather than
/// the limit: the inflater decodes up to a window (32 KiB) ahead of what it hands out.
const SLACK: u64 = 64 * 1024;

/// How a `deflate`-mode body ends when inflated without a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// One complete DEFLATE stream with nothing after it ([WIRE-7.2]).
    Valid,
    /// Corrupt, cut short, or with bytes after the final block.
    Invalid,
    /// Still going after `limit + SLACK` bytes.
    Stopped,
}

/// Inflates a `deflate`-mode body with a small reused buffer: (bytes produced, how it ends).
fn scan(input: &[u8], limit: usize) -> (u64, Ending) {
    let mut d = Decompress::new(false);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if d.total_out() > limit as u64 + SLACK {
            return (d.total_out(), Ending::Stopped);
        }
        let consumed = d.total_in() as usize;
        let before = (d.total_in(), d.total_out());
        match d.decompress(&input[consumed..], &mut buf, FlushDecompress::None) {
            Err(_) => return (d.total_out(), Ending::Invalid),
            Ok(Status::StreamEnd) if d.total_in() as usize == input.len() => {
                return (d.total_out(), Ending::Valid);
            }
            Ok(Status::StreamEnd) => return (d.total_out(), Ending::Invalid),
            Ok(_) if before == (d.total_in(), d.total_out()) => {
                return (d.total_out(), Ending::Invalid);
            }
            Ok(_) => {}
        }
    }
}

/// What a fresh inflater allocates (its window and tables), measured once: (peak, largest).
fn inflater_state() -> (usize, usize) {
    static SIZE: OnceLock<(usize, usize)> = OnceLock::new();
    *SIZE.get_or_init(|| {
        alloc_track::measure(|| Decompress::new(false))
            .1
            .map_or((0, 0), |u| (u.peak, u.largest))
    })
}

/// Decodes `frame` under `setup` and checks the memory it took: no single allocation above
/// `max_decompressed_size + 1` except the input copy and the inflater state ([WIRE-7.5]).
fn decode(frame: &[u8], setup: &Setup) -> (Vec<Packet>, Option<Error>) {
    let ((packets, error), usage) = alloc_track::measure(|| {
        let mut decoder = setup.decoder();
        let mut src = BytesMut::from(frame);
        let mut packets = Vec::new();
        let error = drain(&mut decoder, &mut src, frame, setup, |p, _| packets.push(p));
        (packets, error)
    });
    if let Some(usage) = usage {
        let limit = setup.limits.max_decompressed_size() as usize;
        let (state, state_largest) = inflater_state();
        let largest = (limit + 1).max(frame.len()).max(state_largest);
        assert!(
            usage.largest <= largest,
            "inflate: an allocation of {} bytes > {largest} ([WIRE-7.5])",
            usage.largest
        );
        // The output buffer may be mid-growth (old and new block both live) at its largest.
        let peak = 2 * frame.len() + 2 * (limit + 1) + state + 32 * 1024;
        assert!(
            usage.peak <= peak,
            "inflate: peak {} bytes > {peak}",
            usage.peak
        );
    }
    (packets, error)
}

/// A one-frame stream: `flags type [id] len body`.
fn frame(flags: u64, ty: u64, id: Option<u64>, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    header(flags, ty, id, body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// Checks an inflation error against the facts of a `deflate`-mode body (scanned once, lazily):
/// DECOMPRESSION_LIMIT only if it inflates past the limit; COMPRESSION_ERROR only if it is not a
/// valid stream, and not after more than the limit (plus the inflater's look-ahead) was
/// producible ([WIRE-7.5]: stop at `limit + 1` bytes).
fn check_bad(
    error: &Error,
    facts: &OnceCell<(u64, Ending)>,
    body: &[u8],
    limit: usize,
    what: &str,
) {
    let code = check_error(error, &INFLATE_CODES, what);
    let (produced, ending) = *facts.get_or_init(|| scan(body, limit));
    let over = produced > limit as u64;
    match code {
        ErrorCode::DECOMPRESSION_LIMIT => assert!(
            over,
            "{what}: DECOMPRESSION_LIMIT but the body inflates to {produced} <= {limit}"
        ),
        _ => assert!(
            ending == Ending::Invalid && produced <= limit as u64 + SLACK,
            "{what}: COMPRESSION_ERROR for a body that inflates to {produced} bytes ({ending:?})"
        ),
    }
}

/// Wraps `data` (cut to 16 KiB) as COMPRESSED bodies and decodes them at the floors
/// (`max_decompressed_size` 16,384), comparing with a plain flate2 inflation:
///
/// - `deflate`, SEND id 0 (`03 12 00 <len>`): a body that is one complete stream inflating to at
///   most the limit is delivered byte for byte; anything else fails with COMPRESSION_ERROR (not a
///   valid stream, cut, trailing bytes) or DECOMPRESSION_LIMIT (more than the limit) — and each
///   code is checked against the body's facts ([WIRE-7.2], [WIRE-7.5]);
/// - `deflate`, CONTAINER (`02 03 <len>`): the same as the inflated body sent uncompressed
///   ([WIRE-7.6]);
/// - `deflate`, PING (`02 01 <len>`): over 64 inflated bytes is PROTOCOL_ERROR ([WIRE-9.1]);
/// - `deflate-takeover`, SEND: the whole body, then its two halves as two frames of one stream;
///   each result agrees with the reference, which keeps its own window ([WIRE-7.3]).
///
/// Every decode is measured: no allocation beyond `max_decompressed_size + 1` bytes other than
/// the input copy and the inflater's own state.
pub fn inflate(data: &[u8]) {
    let body = &data[..data.len().min(MAX_BODY)];
    let limit = Limits::MIN_DECOMPRESSED_SIZE as usize;
    let deflate = Setup::new(Limits::FLOOR, Compression::Deflate, &[]);
    let expected = reference(&mut Decompress::new(false), body, false, limit);
    let facts = OnceCell::new();

    // SEND, deflate.
    let (packets, error) = decode(&frame(3, 0x12, Some(0), body), &deflate);
    match (&expected, error) {
        (Reference::Ok(v), None) => {
            assert_eq!(packets.len(), 1, "inflate: one SEND expected");
            assert_eq!(&packets[0].body()[..], &v[..], "inflate: SEND body");
        }
        (Reference::Ok(v), Some(e)) => {
            panic!("inflate: valid body ({} bytes) failed: {e}", v.len())
        }
        (Reference::Bad, None) => panic!("inflate: bad body accepted as {packets:?}"),
        (Reference::Bad, Some(e)) => check_bad(&e, &facts, body, limit, "inflate/send"),
    }

    // CONTAINER, deflate: as if the inflated body came uncompressed.
    let (packets, error) = decode(&frame(2, 0x03, None, body), &deflate);
    match &expected {
        Reference::Ok(v) => {
            let plain = Setup::new(Limits::FLOOR, Compression::None, &[]);
            let mut decoder = plain.decoder();
            let bytes = frame(0, 0x03, None, v);
            let mut src = BytesMut::from(&bytes[..]);
            let mut want = Vec::new();
            let want_error = drain(&mut decoder, &mut src, &bytes, &plain, |p, _| want.push(p));
            assert_eq!(packets, want, "inflate/container: packets");
            assert_eq!(
                error.map(|e| e.code()),
                want_error.map(|e| e.code()),
                "inflate/container: error code"
            );
        }
        Reference::Bad => {
            let error = error.expect("inflate/container: bad body accepted");
            check_bad(&error, &facts, body, limit, "inflate/container");
        }
    }

    // PING, deflate: the 64-byte bound applies after inflation.
    let (packets, error) = decode(&frame(2, 0x01, None, body), &deflate);
    match (&expected, error) {
        (Reference::Ok(v), None) if v.len() <= 64 => {
            assert_eq!(
                packets,
                [Packet::new(FrameType::PING, v.clone())],
                "inflate/ping"
            );
        }
        (Reference::Ok(v), error) => {
            let error = error.expect("inflate/ping: PING over 64 bytes accepted");
            assert!(
                v.len() > 64,
                "inflate/ping: valid short PING failed: {error}"
            );
            assert_eq!(
                error.code(),
                ErrorCode::PROTOCOL_ERROR,
                "inflate/ping: {error}"
            );
        }
        (Reference::Bad, error) => {
            let error = error.expect("inflate/ping: bad body accepted");
            check_bad(&error, &facts, body, limit, "inflate/ping");
        }
    }

    // SEND, takeover: the whole body as one frame, then its halves as two frames of one stream.
    let takeover = Setup::new(Limits::FLOOR, Compression::DeflateTakeover, &[]);
    takeover_stream(&[body], &takeover, limit);
    let (first, second) = body.split_at(body.len() / 2);
    takeover_stream(&[first, second], &takeover, limit);
}

/// Sends `bodies` as consecutive compressed SENDs of one takeover stream and compares each with
/// the reference's shared window, until the first error.
fn takeover_stream(bodies: &[&[u8]], setup: &Setup, limit: usize) {
    let mut bytes = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        bytes.extend_from_slice(&frame(3, 0x12, Some(i as u64), body));
    }
    let (packets, error) = decode(&bytes, setup);
    let mut reference_window = Decompress::new(false);
    for (i, body) in bodies.iter().enumerate() {
        match reference(&mut reference_window, body, true, limit) {
            Reference::Ok(v) => {
                let got = packets.get(i).unwrap_or_else(|| {
                    panic!("inflate/takeover: frame {i} valid for the reference, got {error:?}")
                });
                assert_eq!(&got.body()[..], &v[..], "inflate/takeover: frame {i} body");
            }
            Reference::Bad => {
                assert_eq!(
                    packets.len(),
                    i,
                    "inflate/takeover: frame {i} bad but delivered"
                );
                let error = error.expect("inflate/takeover: bad body accepted");
                // The window depends on earlier frames: the code alone is checked.
                check_error(&error, &INFLATE_CODES, "inflate/takeover");
                return;
            }
        }
    }
    assert_eq!(
        packets.len(),
        bodies.len(),
        "inflate/takeover: packet count"
    );
    assert!(
        error.is_none(),
        "inflate/takeover: error after all frames: {error:?}"
    );
}
