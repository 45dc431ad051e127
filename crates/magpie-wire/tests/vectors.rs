//! Runs the codec against every vector in `spec/vectors/` (spec/wire.md §12): decoding all at
//! once and one byte at a time, and re-encoding where the vector is canonical.

use bytes::BytesMut;
use magpie_wire::{
    Compression, Decoder, DecoderConfig, Encoder, EncoderConfig, Error, ErrorCode, FrameType,
    Limits, Packet, TypeRegistry, VarInt, preface,
};
use serde_json::Value;

fn load(file: &str) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../spec/vectors")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let parsed: Value = serde_json::from_str(&text).expect("vector file is JSON");
    assert_eq!(parsed["spec"], "wire/1");
    parsed["vectors"].as_array().expect("vectors array").clone()
}

fn limits(settings: &Value) -> Limits {
    let mut limits = Limits::default();
    let n = |k: &str| settings[k].as_u64().expect("numeric setting");
    limits
        .set_max_frame_size(n("max_frame_size") as u32)
        .and_then(|l| l.set_max_decompressed_size(n("max_decompressed_size") as u32))
        .and_then(|l| l.set_max_container_packets(n("max_container_packets") as u16))
        .expect("vector limits are within range");
    limits
}

fn compression(settings: &Value) -> Compression {
    Compression::from_name(settings["compression"].as_str().expect("compression"))
        .expect("known compression mode")
}

fn decoder(settings: &Value) -> Decoder {
    let mut types = TypeRegistry::v1();
    for ext in settings["extensions"].as_array().expect("extensions") {
        let ty = FrameType::new(VarInt::new(ext.as_u64().expect("type")).expect("varint"));
        assert!(types.negotiate_extension(ty));
    }
    Decoder::new(
        DecoderConfig::default()
            .limits(limits(settings))
            .compression(compression(settings))
            .types(types),
    )
}

fn expected_packets(v: &Value) -> Vec<Packet> {
    v["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .map(|p| {
            let ty =
                FrameType::new(VarInt::new(p["type"].as_u64().expect("type")).expect("varint"));
            let body = hex::decode(p["body"].as_str().expect("body")).expect("hex body");
            let packet = Packet::new(ty, body);
            match p["id"].as_u64() {
                Some(id) => packet.with_id(VarInt::new(id).expect("varint id")),
                None => packet,
            }
        })
        .collect()
}

#[derive(Debug, PartialEq)]
enum Outcome {
    /// Packets, then need-more (false) or a clean end (true).
    Ok(Vec<Packet>, bool),
    Err(Vec<Packet>, ErrorCode),
}

/// Feeds `bytes` in chunks of `chunk` bytes and collects what the decoder says.
fn run(mut decoder: Decoder, bytes: &[u8], chunk: usize) -> Outcome {
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(p)) => packets.push(p),
                Ok(None) => break,
                Err(e) => {
                    // [WIRE-10.1]: a failed decoder stays failed.
                    assert!(matches!(
                        decoder.decode(&mut buf),
                        Err(Error::Poisoned { .. })
                    ));
                    return Outcome::Err(packets, e.code());
                }
            }
        }
    }
    let complete = buf.is_empty() && decoder.decode(&mut buf).ok().flatten().is_none();
    Outcome::Ok(packets, complete && bytes_end_clean(&decoder, bytes))
}

/// Whether the decoder is between frames (it consumed every byte and holds no partial frame).
fn bytes_end_clean(decoder: &Decoder, bytes: &[u8]) -> bool {
    decoder.bytes_consumed() == bytes.len() as u64 && decoder.is_between_frames()
}

fn check_frames_file(file: &str) -> usize {
    let vectors = load(file);
    for v in &vectors {
        let id = v["id"].as_str().expect("id");
        let bytes = hex::decode(v["hex"].as_str().expect("hex")).expect("hex");
        let packets = expected_packets(v);
        let expected = match v.get("error") {
            Some(err) => Outcome::Err(
                packets.clone(),
                ErrorCode(err["code"].as_u64().expect("code")),
            ),
            None => Outcome::Ok(packets.clone(), v["complete"].as_bool().expect("complete")),
        };
        let whole = run(decoder(&v["settings"]), &bytes, bytes.len());
        assert_eq!(whole, expected, "{id}: decoding all at once");
        // Any chunking decodes the same ([WIRE-4.6]); one byte at a time is the hardest.
        let bytewise = run(decoder(&v["settings"]), &bytes, 1);
        assert_eq!(bytewise, expected, "{id}: decoding byte by byte");

        if let Some(mode) = v.get("canonical").and_then(Value::as_str) {
            let settings = &v["settings"];
            let mut encoder = Encoder::new(
                EncoderConfig::default()
                    .peer_limits(limits(settings))
                    .compression(compression(settings)),
            );
            let mut out = BytesMut::new();
            match mode {
                "per-packet" => {
                    for p in packets {
                        encoder.encode(p, &mut out).expect("encodes");
                    }
                }
                "merged" => {
                    for p in packets {
                        encoder.push(p).expect("fits");
                    }
                    encoder.flush(&mut out).expect("flushes");
                }
                other => panic!("{id}: unknown canonical mode {other}"),
            }
            assert_eq!(hex::encode(&out), hex::encode(&bytes), "{id}: re-encoding");
        }
    }
    vectors.len()
}

#[test]
fn frame_vectors() {
    assert!(check_frames_file("frames.json") >= 30);
}

#[test]
fn container_vectors() {
    assert!(check_frames_file("containers.json") >= 15);
}

#[test]
fn compression_vectors() {
    assert!(check_frames_file("compression.json") >= 10);
}

#[test]
fn truncation_vectors() {
    assert!(check_frames_file("truncation.json") >= 40);
}

#[test]
fn preface_vectors() {
    for v in load("preface.json") {
        let id = v["id"].as_str().expect("id");
        let bytes = hex::decode(v["hex"].as_str().expect("hex")).expect("hex");
        let outcome = v["outcome"].as_str().expect("outcome");
        let mut src = BytesMut::from(&bytes[..]);
        match v["role"].as_str().expect("role") {
            "server" => match (preface::read_client_preface(&mut src), outcome) {
                (Ok(None), "incomplete") => {}
                (Err(e @ Error::BadMagic { .. }), "close") => {
                    assert_eq!(e.code(), ErrorCode::PROTOCOL_ERROR, "{id}");
                }
                (Ok(Some(version)), "accept" | "reject") => {
                    let mut reply = BytesMut::new();
                    let answer = preface::answer_client_preface(
                        version,
                        preface::SUPPORTED_VERSIONS,
                        &mut reply,
                    );
                    assert_eq!(answer.is_ok(), outcome == "accept", "{id}");
                    assert_eq!(
                        hex::encode(&reply),
                        v["reply"].as_str().expect("reply"),
                        "{id}"
                    );
                }
                (got, want) => panic!("{id}: expected {want}, got {got:?}"),
            },
            "client" => {
                let offered = v["offered"].as_u64().expect("offered") as u8;
                match (preface::read_server_preface(&mut src, offered), outcome) {
                    (Ok(Some(version)), "accept") => assert_eq!(version, offered, "{id}"),
                    (Err(Error::UnsupportedVersion { supported, .. }), "reject") => {
                        let want: Vec<u8> = v["supported"]
                            .as_array()
                            .expect("supported")
                            .iter()
                            .map(|x| x.as_u64().expect("version") as u8)
                            .collect();
                        assert_eq!(supported, want, "{id}");
                    }
                    (Err(e), "error") => assert_eq!(e.code(), ErrorCode::PROTOCOL_ERROR, "{id}"),
                    (got, want) => panic!("{id}: expected {want}, got {got:?}"),
                }
            }
            other => panic!("{id}: unknown role {other}"),
        }
    }
}
