//! `container_decode`: container bodies ([WIRE-8]).

use bytes::BytesMut;
use magpie_wire::{Compression, Encoder, EncoderConfig, ErrorCode, FrameType, Limits, Packet};

use crate::vectors::split_frames;
use crate::{Setup, check_error, drain, header, plain_frame};

/// Codes a bad (uncompressed) container may fail with ([WIRE-8.1] – [WIRE-8.4]; inner packets
/// obey §4/§5, so PROTOCOL_ERROR and MALFORMED too).
const CONTAINER_CODES: [ErrorCode; 3] = [
    ErrorCode::CONTAINER_INVALID,
    ErrorCode::PROTOCOL_ERROR,
    ErrorCode::MALFORMED,
];

/// Wraps `data` as the body of one uncompressed CONTAINER frame (`00 03 <len> data`, the body
/// cut to the 16 KiB floor of `max_frame_size`) and decodes it under two receivers: the defaults,
/// and the floors (16 packets) with extension 0x400 negotiated.
///
/// Asserts: on error, the code is CONTAINER_INVALID / PROTOCOL_ERROR / MALFORMED and no packet
/// was delivered first ([WIRE-8.5]: validated whole); on success, the whole frame is consumed, at
/// most `max_container_packets` packets come out, the delivered packets are exactly the body's
/// deliverable packets byte for byte (canonical, skipped ones dropped), and re-encoding them, alone
/// or merged, decodes back equal; with nothing skipped the merged encoding is the input frame
/// itself (a single packet: its plain frame, [WIRE-8.6]).
pub fn container_decode(data: &[u8]) {
    let body = &data[..data.len().min(Limits::MIN_FRAME_SIZE as usize)];
    let setups = [
        Setup::new(Limits::default(), Compression::None, &[]),
        Setup::new(
            Limits::FLOOR,
            Compression::None,
            &[FrameType::from_u32(0x400)],
        ),
    ];
    for setup in &setups {
        check(body, setup);
    }
}

fn check(body: &[u8], setup: &Setup) {
    let mut frame = Vec::with_capacity(body.len() + 8);
    header(0, 3, None, body.len(), &mut frame);
    frame.extend_from_slice(body);

    let mut decoder = setup.decoder();
    let mut src = BytesMut::from(&frame[..]);
    let mut packets = Vec::new();
    let error = drain(&mut decoder, &mut src, &frame, setup, |p, _| {
        packets.push(p)
    });
    if let Some(error) = error {
        check_error(&error, &CONTAINER_CODES, "container_decode");
        assert!(
            packets.is_empty(),
            "container_decode: {} packets delivered before {error} ([WIRE-8.5])",
            packets.len()
        );
        return;
    }
    assert!(
        src.is_empty(),
        "container_decode: a valid frame left bytes behind"
    );
    let cap = usize::from(setup.limits.max_container_packets());
    assert!(
        packets.len() <= cap,
        "container_decode: more packets than the cap"
    );

    // The body's packets as raw bytes: a valid container splits exactly ([WIRE-8.1]).
    let (raw, rest) = split_frames(body);
    assert!(
        rest.is_empty(),
        "container_decode: accepted body does not split into packets"
    );
    assert!(
        raw.len() <= cap,
        "container_decode: cap not enforced ([WIRE-8.4])"
    );
    let delivered_raw: Vec<u8> = raw
        .iter()
        .filter(|f| setup.delivers(f.ty))
        .flat_map(|f| f.bytes.iter().copied())
        .collect();
    let inner: Vec<u8> = packets.iter().flat_map(plain_frame).collect();
    assert_eq!(
        inner, delivered_raw,
        "container_decode: delivered packets differ from the body's (non-canonical or a skip wrong)"
    );

    let alone = encode(&packets, setup, false);
    assert_eq!(
        decode_all(&alone, setup),
        packets,
        "container_decode: alone"
    );
    let merged = encode(&packets, setup, true);
    assert_eq!(
        decode_all(&merged, setup),
        packets,
        "container_decode: merged"
    );
    if raw.len() == packets.len() {
        let expected = if packets.len() == 1 { &inner } else { &frame };
        assert_eq!(
            &merged, expected,
            "container_decode: re-encoding is not canonical"
        );
    }
}

/// Encodes `packets` with compression off for a peer with `setup`'s limits.
fn encode(packets: &[Packet], setup: &Setup, merge: bool) -> Vec<u8> {
    let config = EncoderConfig::default()
        .peer_limits(setup.limits)
        .merge(merge);
    let mut encoder = Encoder::new(config);
    for packet in packets {
        encoder
            .push(packet.clone())
            .expect("a packet the decoder delivered is one the encoder accepts");
    }
    let mut out = BytesMut::new();
    encoder.flush(&mut out).expect("flush");
    out.to_vec()
}

/// Decodes `bytes` completely; any error is a failure.
pub(crate) fn decode_all(bytes: &[u8], setup: &Setup) -> Vec<Packet> {
    let mut decoder = setup.decoder();
    let mut src = BytesMut::from(bytes);
    let mut packets = Vec::new();
    if let Some(error) = drain(&mut decoder, &mut src, bytes, setup, |p, _| packets.push(p)) {
        panic!("decoding the encoder's output failed: {error}");
    }
    assert!(src.is_empty(), "the encoder's output ends mid-frame");
    packets
}
