//! `magpie-wire-shim`: the reference codec behind the line protocol of `conformance/SHIM.md`.

use std::io::{BufRead, Write};

use bytes::BytesMut;
use magpie_wire::{
    Compression, Decoder, DecoderConfig, Encoder, EncoderConfig, FrameType, Limits, Packet,
    TypeRegistry, VarInt,
};
use serde_json::{Value, json};

fn main() {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Value>(&line) {
            Ok(req) => answer(&req),
            Err(e) => json!({"unsupported": format!("bad request: {e}")}),
        };
        if writeln!(out, "{answer}")
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
    }
}

fn answer(req: &Value) -> Value {
    let settings = &req["settings"];
    match req["op"].as_str().unwrap_or("decode") {
        "decode" => decode(settings, req["hex"].as_str().unwrap_or("")),
        "encode" => encode(
            settings,
            &req["packets"],
            req["mode"].as_str().unwrap_or("per-packet"),
        ),
        "client_preface" => client_preface(
            req["offered"].as_u64().unwrap_or(1) as u8,
            req["hex"].as_str().unwrap_or(""),
        ),
        other => json!({"unsupported": format!("unknown op {other}")}),
    }
}

fn limits(s: &Value) -> Result<Limits, String> {
    let mut l = Limits::default();
    let n = |k: &str| s[k].as_u64();
    if let Some(v) = n("max_frame_size") {
        l.set_max_frame_size(v as u32)
            .map_err(|e| format!("{e:?}"))?;
    }
    if let Some(v) = n("max_decompressed_size") {
        l.set_max_decompressed_size(v as u32)
            .map_err(|e| format!("{e:?}"))?;
    }
    if let Some(v) = n("max_container_packets") {
        l.set_max_container_packets(v as u16)
            .map_err(|e| format!("{e:?}"))?;
    }
    Ok(l)
}

fn compression(s: &Value) -> Compression {
    s["compression"]
        .as_str()
        .and_then(Compression::from_name)
        .unwrap_or(Compression::None)
}

fn packet_json(p: &Packet) -> Value {
    json!({
        "type": p.ty().value().into_inner(),
        "id": p.id().map(|i| i.into_inner()),
        "body": hex::encode(p.body()),
    })
}

fn decode(settings: &Value, hex_in: &str) -> Value {
    let Ok(bytes) = hex::decode(hex_in) else {
        return json!({"unsupported": "bad hex"});
    };
    let limits = match limits(settings) {
        Ok(l) => l,
        Err(e) => return json!({"unsupported": e}),
    };
    let mut types = TypeRegistry::v1();
    for ext in settings["extensions"].as_array().into_iter().flatten() {
        if let Some(v) = ext.as_u64().and_then(VarInt::new) {
            types.negotiate_extension(FrameType::new(v));
        }
    }
    let config = DecoderConfig::default()
        .limits(limits)
        .compression(compression(settings))
        .types(types);
    let mut decoder = Decoder::new(config);
    let mut src = BytesMut::from(&bytes[..]);
    let mut packets = Vec::new();
    loop {
        match decoder.decode(&mut src) {
            Ok(Some(p)) => packets.push(packet_json(&p)),
            Ok(None) => {
                let complete = src.is_empty() && decoder.is_between_frames();
                return json!({"packets": packets, "complete": complete});
            }
            Err(e) => return json!({"packets": packets, "error": {"code": e.code().0}}),
        }
    }
}

fn encode(settings: &Value, packets: &Value, mode: &str) -> Value {
    let limits = match limits(settings) {
        Ok(l) => l,
        Err(e) => return json!({"unsupported": e}),
    };
    let config = EncoderConfig::default()
        .peer_limits(limits)
        .compression(compression(settings))
        .merge(mode == "merged");
    let mut encoder = Encoder::new(config);
    let mut dst = BytesMut::new();
    for p in packets.as_array().into_iter().flatten() {
        let ty = p["type"]
            .as_u64()
            .and_then(VarInt::new)
            .unwrap_or(VarInt::ZERO);
        let body = hex::decode(p["body"].as_str().unwrap_or("")).unwrap_or_default();
        let mut packet = Packet::new(FrameType::new(ty), body);
        if let Some(id) = p["id"].as_u64().and_then(VarInt::new) {
            packet = packet.with_id(id);
        }
        let r = if mode == "merged" {
            encoder.push(packet)
        } else {
            encoder.encode(packet, &mut dst)
        };
        if let Err(e) = r {
            return json!({"error": {"code": e.code().0}});
        }
    }
    if let Err(e) = encoder.flush(&mut dst) {
        return json!({"error": {"code": e.code().0}});
    }
    json!({"hex": hex::encode(&dst)})
}

fn client_preface(offered: u8, hex_in: &str) -> Value {
    let Ok(bytes) = hex::decode(hex_in) else {
        return json!({"unsupported": "bad hex"});
    };
    let mut src = BytesMut::from(&bytes[..]);
    match magpie_wire::preface::read_server_preface(&mut src, offered) {
        Ok(Some(v)) => json!({"accepted": v}),
        Ok(None) => json!({"incomplete": true}),
        Err(magpie_wire::Error::UnsupportedVersion { supported, .. }) => {
            json!({"error": {"code": 5, "supported": supported}})
        }
        Err(e) => json!({"error": {"code": e.code().0}}),
    }
}
