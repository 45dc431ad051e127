//! Property tests: any packet sequence, encoded with any settings and fed to the decoder in any
//! chunking, decodes to the same sequence; sizes add up; encodings are canonical.

use bytes::BytesMut;
use magpie_wire::{
    Compression, Decoder, DecoderConfig, Encoder, EncoderConfig, FrameType, Limits, Packet,
    TypeRange, VarInt,
};
use proptest::prelude::*;

fn frame_type() -> impl Strategy<Value = FrameType> {
    prop_oneof![
        8 => prop::sample::select(
            FrameType::ASSIGNED_V1
                .iter()
                .copied()
                .filter(|t| *t != FrameType::CONTAINER)
                .collect::<Vec<_>>()
        ),
        1 => (0u32..1000).prop_map(FrameType::grease),
        1 => (0x400u32..0x4000).prop_map(FrameType::from_u32),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Incompressible.
        prop::collection::vec(any::<u8>(), 0..300),
        // Chat-like text, which compresses.
        prop::collection::vec(
            prop::sample::select(b"the quick brown fox says hi ".to_vec()),
            0..600
        ),
    ]
}

fn packet() -> impl Strategy<Value = Packet> {
    (frame_type(), prop::option::of(0u64..(1 << 40)), body()).prop_map(|(ty, id, mut body)| {
        if ty == FrameType::PING {
            body.truncate(64);
        }
        let packet = Packet::new(ty, body);
        match id {
            Some(id) if !matches!(ty, FrameType::PING | FrameType::PONG | FrameType::CLOSE) => {
                packet.with_id(VarInt::new(id).expect("below 2^62"))
            }
            _ => packet,
        }
    })
}

#[derive(Debug, Clone)]
struct Setup {
    compression: Compression,
    merge: bool,
    threshold: usize,
    floor_limits: bool,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        prop::sample::select(vec![
            Compression::None,
            Compression::Deflate,
            Compression::DeflateTakeover,
        ]),
        any::<bool>(),
        0usize..300,
        any::<bool>(),
    )
        .prop_map(|(compression, merge, threshold, floor_limits)| Setup {
            compression,
            merge,
            threshold,
            floor_limits,
        })
}

impl Setup {
    fn limits(&self) -> Limits {
        if self.floor_limits {
            Limits::FLOOR
        } else {
            Limits::default()
        }
    }

    fn encoder(&self) -> Encoder {
        Encoder::new(
            EncoderConfig::default()
                .peer_limits(self.limits())
                .compression(self.compression)
                .merge(self.merge)
                .compression_threshold(self.threshold),
        )
    }

    fn decoder(&self) -> Decoder {
        Decoder::new(
            DecoderConfig::default()
                .limits(self.limits())
                .compression(self.compression),
        )
    }
}

/// Encodes `batches` (one flush per batch).
fn encode(setup: &Setup, batches: &[Vec<Packet>]) -> BytesMut {
    let mut encoder = setup.encoder();
    let mut out = BytesMut::new();
    for batch in batches {
        for p in batch {
            encoder.push(p.clone()).expect("within limits");
        }
        encoder.flush(&mut out).expect("flush");
    }
    out
}

fn decode_chunked(mut decoder: Decoder, bytes: &[u8], cuts: &[usize]) -> Vec<Packet> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut cuts = cuts.iter().cycle();
    while pos < bytes.len() {
        let n = (*cuts.next().unwrap_or(&1)).clamp(1, bytes.len() - pos);
        buf.extend_from_slice(&bytes[pos..pos + n]);
        pos += n;
        while let Some(p) = decoder.decode(&mut buf).expect("valid stream") {
            out.push(p);
        }
    }
    assert!(
        buf.is_empty() && decoder.is_between_frames(),
        "stream ends on a frame boundary"
    );
    out
}

fn delivered(batches: &[Vec<Packet>]) -> Vec<Packet> {
    batches
        .iter()
        .flatten()
        .filter(|p| p.ty().range() == TypeRange::Core)
        .cloned()
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_packets_any_settings_any_chunking(
        setup in setup(),
        batches in prop::collection::vec(prop::collection::vec(packet(), 0..40), 1..4),
        cuts in prop::collection::vec(1usize..64, 1..16),
    ) {
        let wire = encode(&setup, &batches);
        let got = decode_chunked(setup.decoder(), &wire, &cuts);
        // Grease and non-negotiated extensions are skipped ([WIRE-5.2], [WIRE-5.3]).
        prop_assert_eq!(got, delivered(&batches));
    }

    #[test]
    fn encoded_len_is_what_is_written(packets in prop::collection::vec(packet(), 1..20)) {
        let setup = Setup { compression: Compression::None, merge: false, threshold: 0, floor_limits: false };
        let wire = encode(&setup, std::slice::from_ref(&packets));
        prop_assert_eq!(wire.len(), packets.iter().map(Packet::encoded_len).sum::<usize>());
    }

    #[test]
    fn uncompressed_encoding_is_canonical(
        packets in prop::collection::vec(packet(), 1..40),
        merge in any::<bool>(),
    ) {
        // decode(encode(x)) == x, and encode(decode(b)) == b.
        let packets: Vec<Packet> = packets.into_iter().filter(|p| p.ty().range() == TypeRange::Core).collect();
        let setup = Setup { compression: Compression::None, merge, threshold: 0, floor_limits: false };
        let wire = encode(&setup, std::slice::from_ref(&packets));
        let decoded = decode_chunked(setup.decoder(), &wire, &[wire.len().max(1)]);
        prop_assert_eq!(&decoded, &packets);
        let again = encode(&setup, &[decoded]);
        prop_assert_eq!(&again[..], &wire[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), compressed in any::<bool>()) {
        let compression = if compressed { Compression::Deflate } else { Compression::None };
        let mut decoder = Decoder::new(DecoderConfig::default().compression(compression));
        let mut buf = BytesMut::from(&bytes[..]);
        let mut rounds = 0;
        while let Ok(Some(_)) = decoder.decode(&mut buf) {
            rounds += 1;
            prop_assert!(rounds <= bytes.len() + 1, "the decoder makes progress");
        }
    }
}

#[test]
fn merging_never_exceeds_the_peer_caps() {
    // 200 packets at the floor: containers of at most 16 packets, each within 16 KiB.
    let setup = Setup {
        compression: Compression::None,
        merge: true,
        threshold: 0,
        floor_limits: true,
    };
    let packets: Vec<Packet> = (0..200u32)
        .map(|i| Packet::new(FrameType::SEND, vec![b'x'; 3000]).with_id(VarInt::from_u32(i)))
        .collect();
    let wire = encode(&setup, std::slice::from_ref(&packets));
    // A decoder at the floor rejects any container over 16 packets or 16,384 bytes, so decoding
    // proves the caps were kept ([WIRE-8.4], [WIRE-8.6]).
    let decoded = decode_chunked(setup.decoder(), &wire, &[4096]);
    assert_eq!(decoded, packets);
    // Five ~3,005-byte packets fit in 16,384 bytes and six do not: 40 containers, each adding a
    // 4-byte header (flags, type, 2-byte length) to the packets' own encodings.
    let packets_len: usize = packets.iter().map(Packet::encoded_len).sum();
    assert_eq!(wire.len() - packets_len, 40 * 4);
}
