//! The structured descriptions of every frame vector.

use crate::model::{Frame, flag, ty};
use crate::{Case, Settings, Vector, floor_settings};

fn text(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn close_body(code: u8, ty: u8, reason: &str) -> Vec<u8> {
    [vec![code, ty], text(reason)].concat()
}

fn with_ext() -> Settings {
    Settings {
        extensions: vec![ty::EXTENSION],
        ..Settings::default()
    }
}

fn mode(mode: &'static str) -> Settings {
    Settings {
        compression: mode,
        ..Settings::default()
    }
}

pub(crate) fn frames() -> Vec<Vector> {
    let over = [None, None, None, Some(8)];
    vec![
        Case::new(
            "frame/ping",
            "the smallest frame: an empty PING, 3 bytes",
            &["WIRE-4.1", "WIRE-9.1"],
        )
        .frame(Frame::new(ty::PING, vec![])),
        Case::new("frame/pong", "an empty PONG, 3 bytes", &["WIRE-9.1"])
            .frame(Frame::new(ty::PONG, vec![])),
        Case::new(
            "frame/ping-8-byte-body",
            "a PING with an 8-byte opaque body",
            &["WIRE-9.1"],
        )
        .frame(Frame::new(ty::PING, body(8))),
        Case::new(
            "frame/ping-64-byte-body",
            "a PING body of exactly 64 bytes is allowed",
            &["WIRE-9.1"],
        )
        .frame(Frame::new(ty::PING, body(64))),
        Case::new(
            "frame/send-id-1byte",
            "SEND id 7 \"hi\": the worked example of §4",
            &["WIRE-4.1", "WIRE-4.3"],
        )
        .frame(Frame::with_id(ty::SEND, 7, text("hi"))),
        Case::new(
            "frame/send-id-0-empty",
            "an id of 0 and an empty body are valid",
            &["WIRE-4.3", "WIRE-4.4"],
        )
        .frame(Frame::with_id(ty::SEND, 0, vec![])),
        Case::new(
            "frame/send-id-2byte-len-2byte",
            "id 300 and a 100-byte body: 2-byte id and length",
            &["WIRE-3.1", "WIRE-4.4"],
        )
        .frame(Frame::with_id(ty::SEND, 300, body(100))),
        Case::new(
            "frame/send-id-4byte",
            "id 16,384 takes the 4-byte form",
            &["WIRE-3.1"],
        )
        .frame(Frame::with_id(ty::SEND, 16_384, text("four"))),
        Case::new(
            "frame/send-id-8byte",
            "id 2^30 takes the 8-byte form",
            &["WIRE-3.1"],
        )
        .frame(Frame::with_id(ty::SEND, 1 << 30, text("eight"))),
        Case::new("frame/send-id-max", "the largest id, 2^62-1", &["WIRE-3.1"])
            .frame(Frame::with_id(ty::SEND_ACK, (1 << 62) - 1, text("max"))),
        Case::new(
            "frame/len-4byte",
            "a 16,384-byte body takes a 4-byte length",
            &["WIRE-3.1", "WIRE-6.1"],
        )
        .frame(Frame::with_id(ty::PUSH, 1, body(16_384))),
        Case::new(
            "frame/push-no-id",
            "PUSH may travel without an id",
            &["WIRE-4.3"],
        )
        .frame(Frame::new(ty::PUSH, text("event"))),
        Case::new(
            "frame/close",
            "CLOSE with FRAME_TOO_LARGE, offending type SEND, and a reason",
            &["WIRE-10.2", "WIRE-10.3"],
        )
        .frame(Frame::new(
            ty::CLOSE,
            close_body(0x03, 0x12, "frame too large: 262145 > 262144"),
        )),
        Case::new(
            "frame/stream-of-three",
            "frames follow each other with no padding",
            &["WIRE-4.1", "WIRE-4.6"],
        )
        .frame(Frame::new(ty::PING, vec![]))
        .frame(Frame::with_id(ty::SEND, 1, text("a")))
        .frame(Frame::new(ty::PONG, vec![])),
        Case::new(
            "frame/extension-negotiated",
            "a negotiated extension type is delivered",
            &["WIRE-5.2"],
        )
        .settings(with_ext())
        .frame(Frame::with_id(ty::EXTENSION, 9, text("ext"))),
        Case::new(
            "frame/extension-skipped",
            "an extension type that was not negotiated is skipped",
            &["WIRE-5.2"],
        )
        .frame(Frame::with_id(ty::EXTENSION, 9, text("ext")))
        .frame(Frame::new(ty::PING, vec![])),
        Case::new(
            "frame/grease-skipped",
            "a grease frame is skipped, the next frame delivered",
            &["WIRE-5.3"],
        )
        .settings(with_ext())
        .frame(Frame::new(ty::GREASE, body(20)))
        .frame(Frame::with_id(ty::SEND, 2, text("after grease"))),
        Case::new(
            "frame/grease-8byte-type",
            "a grease type in the 8-byte varint range is skipped",
            &["WIRE-5.3", "WIRE-3.1"],
        )
        .frame(Frame::new(31 * 40_000_000 + 33, body(3)))
        .frame(Frame::new(ty::PING, vec![])),
        Case::new(
            "frame/at-max-frame-size",
            "Length exactly max_frame_size is accepted",
            &["WIRE-4.5", "WIRE-6.1"],
        )
        .settings(floor_settings())
        .frame(Frame::with_id(ty::SEND, 1, body(16_384))),
        Case::new(
            "error/reserved-flag-0x04",
            "flag bit 0x04 is reserved",
            &["WIRE-4.2"],
        )
        .fails(Frame::new(ty::PING, vec![]).flags(0x04), "PROTOCOL_ERROR"),
        Case::new(
            "error/reserved-flag-0x20",
            "flag bit 0x20 is reserved; fails at the flags byte alone",
            &["WIRE-4.2"],
        )
        .fails_raw(vec![0x20], "PROTOCOL_ERROR"),
        Case::new(
            "error/reserved-flag-2byte",
            "flags 64 (a 2-byte varint) has reserved bits",
            &["WIRE-4.2"],
        )
        .fails(Frame::new(ty::PING, vec![]).flags(64), "PROTOCOL_ERROR"),
        Case::new(
            "error/reserved-after-valid",
            "a valid PING, then a frame with reserved bits",
            &["WIRE-4.2", "WIRE-10.1"],
        )
        .frame(Frame::new(ty::PING, vec![]))
        .fails(Frame::new(ty::PING, vec![]).flags(0x08), "PROTOCOL_ERROR"),
        Case::new(
            "error/overlong-flags",
            "flags 0 written in 2 bytes",
            &["WIRE-3.2"],
        )
        .fails(
            Frame::new(ty::PING, vec![]).widths([Some(2), None, None, None]),
            "MALFORMED",
        ),
        Case::new(
            "error/overlong-type",
            "type PING written in 2 bytes",
            &["WIRE-3.2"],
        )
        .fails(
            Frame::new(ty::PING, vec![]).widths([None, Some(2), None, None]),
            "MALFORMED",
        ),
        Case::new(
            "error/overlong-id",
            "id 5 written in 4 bytes",
            &["WIRE-3.2"],
        )
        .fails(
            Frame::with_id(ty::SEND, 5, text("x")).widths([None, None, Some(4), None]),
            "MALFORMED",
        ),
        Case::new(
            "error/overlong-length",
            "length 1 written in 8 bytes",
            &["WIRE-3.2"],
        )
        .fails(
            Frame::with_id(ty::SEND, 5, text("x")).widths(over),
            "MALFORMED",
        ),
        Case::new(
            "error/unknown-core-type",
            "type 0x3F0 is core and unassigned",
            &["WIRE-5.1"],
        )
        .fails(Frame::new(ty::UNASSIGNED, vec![]), "PROTOCOL_ERROR"),
        Case::new("error/type-zero", "type 0 is reserved", &["WIRE-5.1"])
            .fails(Frame::new(0, vec![]), "PROTOCOL_ERROR"),
        Case::new(
            "error/wire-reserved-type",
            "type 0x05 is reserved for the wire layer",
            &["WIRE-5.1"],
        )
        .fails(Frame::new(0x05, vec![]), "PROTOCOL_ERROR"),
        Case::new(
            "error/oversize-by-header",
            "Length 262,145 over the default limit: fails from the header alone, no body sent",
            &["WIRE-4.5", "WIRE-6.3"],
        )
        .fails(
            Frame::with_id(ty::SEND, 7, vec![]).length(262_145),
            "FRAME_TOO_LARGE",
        ),
        Case::new(
            "error/oversize-at-floor",
            "Length max_frame_size + 1 at the floor",
            &["WIRE-4.5", "WIRE-6.3"],
        )
        .settings(floor_settings())
        .fails(
            Frame::with_id(ty::SEND, 7, vec![]).length(16_385),
            "FRAME_TOO_LARGE",
        ),
        Case::new(
            "error/oversize-skipped-type",
            "limits apply to frames that would be skipped too",
            &["WIRE-5.2", "WIRE-4.5"],
        )
        .fails(
            Frame::new(ty::GREASE, vec![]).length(1 << 30),
            "FRAME_TOO_LARGE",
        ),
        Case::new(
            "error/ping-with-id",
            "PING never carries an id",
            &["WIRE-4.3"],
        )
        .fails(Frame::with_id(ty::PING, 1, vec![]), "PROTOCOL_ERROR"),
        Case::new(
            "error/close-with-id",
            "CLOSE never carries an id",
            &["WIRE-4.3"],
        )
        .fails(Frame::with_id(ty::CLOSE, 1, vec![0, 0]), "PROTOCOL_ERROR"),
        Case::new(
            "error/ping-65-bytes",
            "a PING body over 64 bytes",
            &["WIRE-9.1"],
        )
        .fails(Frame::new(ty::PING, body(65)), "PROTOCOL_ERROR"),
        Case::new(
            "error/compressed-not-negotiated",
            "COMPRESSED without negotiation",
            &["WIRE-7.1", "WIRE-6.2"],
        )
        .fails(
            Frame::with_id(ty::SEND, 1, text("hello")).compressed(),
            "COMPRESSION_ERROR",
        ),
        Case::new(
            "error/compressed-extension",
            "a negotiated extension frame must not be compressed",
            &["WIRE-5.4"],
        )
        .settings(Settings {
            compression: "deflate",
            ..with_ext()
        })
        .fails(
            Frame::new(ty::EXTENSION, text("ext")).compressed(),
            "PROTOCOL_ERROR",
        ),
        Case::new(
            "error/compressed-grease",
            "a grease frame must not be compressed",
            &["WIRE-5.4", "WIRE-5.3"],
        )
        .settings(mode("deflate"))
        .fails(
            Frame::new(ty::GREASE, text("g")).compressed(),
            "PROTOCOL_ERROR",
        ),
    ]
    .into_iter()
    .map(Case::build)
    .collect()
}

fn sends(n: u64) -> Vec<Frame> {
    (1..=n)
        .map(|i| Frame::with_id(ty::SEND, i, format!("message {i}").into_bytes()))
        .collect()
}

pub(crate) fn containers() -> Vec<Vector> {
    let floor = floor_settings();
    vec![
        Case::new(
            "container/ping-and-send",
            "the worked example of §8",
            &["WIRE-8.1", "WIRE-8.5"],
        )
        .frame(Frame::container(vec![
            Frame::new(ty::PING, vec![]),
            Frame::with_id(ty::SEND, 1, text("hi")),
        ])),
        Case::new(
            "container/ids-kept",
            "each inner packet keeps its own id, in order",
            &["WIRE-8.5"],
        )
        .frame(Frame::container(sends(3))),
        Case::new(
            "container/single",
            "a container of one packet is valid (though a sender should not make one)",
            &["WIRE-8.1", "WIRE-8.6"],
        )
        .frame(Frame::container(sends(1))),
        Case::new(
            "container/grease-inside",
            "grease packets inside a container are skipped",
            &["WIRE-8.3", "WIRE-5.3"],
        )
        .frame(Frame::container(vec![
            Frame::new(ty::GREASE, text("g")),
            Frame::with_id(ty::SEND, 1, text("x")),
        ])),
        Case::new(
            "container/extension-inside",
            "a negotiated extension inside a container is delivered",
            &["WIRE-8.3", "WIRE-5.2"],
        )
        .settings(with_ext())
        .frame(Frame::container(vec![
            Frame::with_id(ty::EXTENSION, 4, text("e")),
            Frame::new(ty::PONG, vec![]),
        ])),
        Case::new(
            "container/at-count-cap",
            "exactly max_container_packets packets",
            &["WIRE-8.4"],
        )
        .settings(floor.clone())
        .frame(Frame::container(sends(16))),
        Case::new(
            "container/then-frame",
            "a frame after a container",
            &["WIRE-8.5"],
        )
        .frame(Frame::container(sends(2)))
        .frame(Frame::new(ty::PING, vec![])),
        Case::new(
            "error/container-count-cap",
            "max_container_packets + 1 packets",
            &["WIRE-8.4"],
        )
        .settings(floor.clone())
        .fails(Frame::container(sends(17)), "CONTAINER_INVALID"),
        Case::new(
            "error/container-count-cap-skipped",
            "skipped packets count towards the cap",
            &["WIRE-8.4"],
        )
        .settings(floor)
        .fails(
            Frame::container((0..17).map(|_| Frame::new(ty::GREASE, vec![])).collect()),
            "CONTAINER_INVALID",
        ),
        Case::new(
            "error/container-empty",
            "a container with no packets",
            &["WIRE-8.1"],
        )
        .fails(Frame::container(vec![]), "CONTAINER_INVALID"),
        Case::new(
            "error/container-nested",
            "a container inside a container",
            &["WIRE-8.2"],
        )
        .fails(
            Frame::container(vec![Frame::container(sends(2))]),
            "CONTAINER_INVALID",
        ),
        Case::new(
            "error/container-inner-compressed",
            "an inner packet with COMPRESSED",
            &["WIRE-8.3"],
        )
        .settings(mode("deflate"))
        .fails(
            Frame::container(vec![
                Frame::with_id(ty::SEND, 1, text("x")).flags(flag::ID | flag::COMPRESSED),
            ]),
            "CONTAINER_INVALID",
        ),
        Case::new(
            "error/container-overrun",
            "an inner length that runs past the container body",
            &["WIRE-8.1"],
        )
        .fails(
            Frame::container(vec![Frame::with_id(ty::SEND, 1, text("abc")).length(9)]),
            "CONTAINER_INVALID",
        ),
        Case::new(
            "error/container-cut-header",
            "an inner header cut by the end of the body",
            &["WIRE-8.1"],
        )
        .fails(
            Frame::new(ty::CONTAINER, vec![]).raw(vec![0x00, 0x01, 0x00, 0x01, 0x12]),
            "CONTAINER_INVALID",
        ),
        Case::new(
            "error/container-with-id",
            "a CONTAINER frame with an id",
            &["WIRE-8.1", "WIRE-4.3"],
        )
        .fails(
            Frame::container(sends(2)).flags(flag::ID).with_raw_id(1),
            "CONTAINER_INVALID",
        ),
        Case::new(
            "error/container-inner-reserved-flag",
            "an inner packet with a reserved flag bit",
            &["WIRE-8.3", "WIRE-4.2"],
        )
        .fails(
            Frame::container(vec![Frame::new(ty::PING, vec![]).flags(0x10)]),
            "PROTOCOL_ERROR",
        ),
        Case::new(
            "error/container-inner-unknown-type",
            "an inner packet of an unassigned core type",
            &["WIRE-8.3", "WIRE-5.1"],
        )
        .fails(
            Frame::container(vec![Frame::new(ty::UNASSIGNED, vec![])]),
            "PROTOCOL_ERROR",
        ),
        Case::new(
            "error/container-inner-overlong",
            "an inner packet with an overlong length",
            &["WIRE-8.3", "WIRE-3.2"],
        )
        .fails(
            Frame::container(vec![Frame::new(ty::PING, vec![]).widths([
                None,
                None,
                None,
                Some(2),
            ])]),
            "MALFORMED",
        ),
        Case::new(
            "error/container-inner-ping-with-id",
            "an inner PING with an id",
            &["WIRE-8.3", "WIRE-4.3"],
        )
        .fails(
            Frame::container(vec![Frame::with_id(ty::PING, 3, vec![])]),
            "PROTOCOL_ERROR",
        ),
        Case::new(
            "error/container-not-delivered-in-part",
            "a bad last packet: none of the container is delivered",
            &["WIRE-8.5"],
        )
        .frame(Frame::new(ty::PING, vec![]))
        .fails(
            Frame::container(vec![
                Frame::with_id(ty::SEND, 1, text("a")),
                Frame::new(0, vec![]),
            ]),
            "PROTOCOL_ERROR",
        ),
    ]
    .into_iter()
    .map(Case::build)
    .collect()
}

fn chat(n: u64) -> Vec<Frame> {
    const LINES: [&str; 6] = [
        "{\"text\":\"are we still on for dinner tonight?\"}",
        "{\"text\":\"yes! 7pm at the noodle place near the station\"}",
        "{\"text\":\"great, I'll bring the photos from the trip\"}",
        "{\"text\":\"今晚见，别忘了带伞\"}",
        "{\"text\":\"running 10 minutes late, sorry\"}",
        "{\"text\":\"no problem, we'll order the dumplings first\"}",
    ];
    (0..n)
        .map(|i| Frame::with_id(ty::SEND, 100 + i, text(LINES[i as usize % LINES.len()])))
        .collect()
}

pub(crate) fn compression() -> Vec<Vector> {
    let deflate = mode("deflate");
    let takeover = mode("deflate-takeover");
    let at_floor = |mode| Settings {
        compression: mode,
        ..floor_settings()
    };
    vec![
        Case::new(
            "compress/send-200-a",
            "SEND id 1 with 200 × 'a', compressed: the example of §7",
            &["WIRE-7.2", "WIRE-7.6"],
        )
        .settings(deflate.clone())
        .frame(Frame::with_id(ty::SEND, 1, vec![b'a'; 200]).compressed()),
        Case::new(
            "compress/uncompressed-allowed",
            "with compression negotiated, uncompressed frames remain valid",
            &["WIRE-7.4"],
        )
        .settings(deflate.clone())
        .frame(Frame::with_id(ty::SEND, 1, text("short"))),
        Case::new(
            "compress/container",
            "a container of 8 chat messages compressed as a whole",
            &["WIRE-8.3", "WIRE-7.6"],
        )
        .settings(deflate.clone())
        .frame(Frame::container(chat(8)).compressed()),
        Case::new(
            "compress/takeover-stream",
            "three bodies of one takeover stream; later ones reuse the window",
            &["WIRE-7.3"],
        )
        .settings(takeover.clone())
        .frame(
            Frame::with_id(
                ty::SEND,
                1,
                text("{\"text\":\"see you at the station at six\"}"),
            )
            .takeover(),
        )
        .frame(Frame::new(ty::PING, vec![]))
        .frame(
            Frame::with_id(
                ty::SEND,
                2,
                text("{\"text\":\"see you at the station at seven\"}"),
            )
            .takeover(),
        )
        .frame(Frame::container(chat(4)).takeover()),
        Case::new(
            "compress/inflate-at-limit",
            "a body inflating to exactly max_decompressed_size passes",
            &["WIRE-7.5"],
        )
        .settings(at_floor("deflate"))
        .frame(Frame::with_id(ty::SEND, 1, vec![0; 16_384]).compressed()),
        Case::new(
            "error/inflate-limit-plus-one",
            "a body inflating to max_decompressed_size + 1 fails",
            &["WIRE-7.5"],
        )
        .settings(at_floor("deflate"))
        .fails(
            Frame::with_id(ty::SEND, 1, vec![0; 16_385]).compressed(),
            "DECOMPRESSION_LIMIT",
        ),
        Case::new(
            "error/inflate-bomb",
            "1 MiB of zeros in about a kilobyte, far past the limit",
            &["WIRE-7.5"],
        )
        .settings(at_floor("deflate"))
        .fails(
            Frame::with_id(ty::SEND, 1, vec![0; 1 << 20]).compressed(),
            "DECOMPRESSION_LIMIT",
        ),
        Case::new(
            "error/inflate-container-over-limit",
            "a compressed container inflating past the limit",
            &["WIRE-7.5", "WIRE-8.4"],
        )
        .settings(at_floor("deflate"))
        .fails(
            Frame::container(vec![Frame::with_id(ty::SEND, 1, vec![7; 16_380])]).compressed(),
            "DECOMPRESSION_LIMIT",
        ),
        Case::new(
            "error/takeover-limit-plus-one",
            "the bound holds in takeover mode too",
            &["WIRE-7.5", "WIRE-7.3"],
        )
        .settings(at_floor("deflate-takeover"))
        .fails(
            Frame::with_id(ty::SEND, 1, vec![0; 16_385]).takeover(),
            "DECOMPRESSION_LIMIT",
        ),
        Case::new(
            "error/deflate-garbage",
            "a body that is not DEFLATE",
            &["WIRE-7.2"],
        )
        .settings(deflate.clone())
        .fails(
            Frame::with_id(ty::SEND, 1, vec![])
                .compressed()
                .raw(vec![0xFF; 8]),
            "COMPRESSION_ERROR",
        ),
        Case::new(
            "error/deflate-truncated",
            "a DEFLATE stream that ends before its final block",
            &["WIRE-7.2"],
        )
        .settings(deflate.clone())
        .fails(
            Frame::with_id(ty::SEND, 1, vec![])
                .compressed()
                .raw(cut(crate::model::deflate(&body(300)))),
            "COMPRESSION_ERROR",
        ),
        Case::new(
            "error/deflate-trailing",
            "bytes after the end of the DEFLATE stream",
            &["WIRE-7.2"],
        )
        .settings(deflate)
        .fails(
            Frame::with_id(ty::SEND, 1, vec![])
                .compressed()
                .raw([crate::model::deflate(&body(300)), vec![0]].concat()),
            "COMPRESSION_ERROR",
        ),
        Case::new(
            "error/takeover-bfinal",
            "a final block in a takeover stream",
            &["WIRE-7.3"],
        )
        .settings(takeover)
        .fails(
            Frame::with_id(ty::SEND, 1, vec![])
                .compressed()
                .raw(crate::model::deflate(b"final")),
            "COMPRESSION_ERROR",
        ),
    ]
    .into_iter()
    .map(Case::build)
    .collect()
}

fn cut(mut v: Vec<u8>) -> Vec<u8> {
    v.truncate(v.len() - 2);
    v
}

/// Every proper prefix of a few streams: the decoder must deliver the frames that are whole and
/// then ask for more bytes, never fail ([WIRE-4.6]).
pub(crate) fn truncation() -> Vec<Vector> {
    let bases: Vec<(&str, Settings, Vec<Frame>)> = vec![
        (
            "send",
            Settings::default(),
            vec![Frame::with_id(ty::SEND, 300, text("hello"))],
        ),
        (
            "ping-then-send",
            Settings::default(),
            vec![
                Frame::new(ty::PING, vec![]),
                Frame::with_id(ty::SEND, 1, text("hi")),
            ],
        ),
        (
            "container",
            Settings::default(),
            vec![Frame::container(vec![
                Frame::new(ty::PING, vec![]),
                Frame::with_id(ty::SEND, 1, text("hi")),
            ])],
        ),
        (
            "compressed",
            mode("deflate"),
            vec![Frame::with_id(ty::SEND, 1, vec![b'a'; 200]).compressed()],
        ),
        (
            "grease",
            Settings::default(),
            vec![Frame::new(ty::GREASE, text("skip me"))],
        ),
    ];
    let mut out = Vec::new();
    for (name, settings, frames) in bases {
        let mut base = Case::new("", "", &[]).settings(settings.clone());
        for f in &frames {
            base = base.frame(f.clone());
        }
        for n in 1..base.len() {
            let mut case = Case::new(
                &format!("truncate/{name}/{n}"),
                &format!("the first {n} bytes of the '{name}' stream"),
                &["WIRE-4.6"],
            )
            .settings(settings.clone())
            .truncate(n);
            for f in &frames {
                case = case.frame(f.clone());
            }
            out.push(case.build());
        }
    }
    out
}
