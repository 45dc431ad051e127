//! Snapshots of the encoded bytes of representative packets, annotated for people.

use bytes::BytesMut;
use magpie_wire::{
    Close, Compression, Encoder, EncoderConfig, ErrorCode, FrameType, Limits, Packet, VarInt,
};

fn dump(bytes: &[u8]) -> String {
    let mut out = format!("{} bytes\n", bytes.len());
    for line in bytes.chunks(16) {
        let hex: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
        out.push_str(&hex.join(" "));
        out.push('\n');
    }
    out
}

fn encode(config: EncoderConfig, packets: Vec<Packet>) -> String {
    let mut encoder = Encoder::new(config);
    let mut out = BytesMut::new();
    for p in packets {
        encoder.push(p).expect("fits");
    }
    encoder.flush(&mut out).expect("flush");
    dump(&out)
}

fn send(id: u32, text: &str) -> Packet {
    Packet::new(FrameType::SEND, text.as_bytes().to_vec()).with_id(VarInt::from_u32(id))
}

fn chat() -> Vec<Packet> {
    [
        "{\"text\":\"are we still on for dinner tonight?\"}",
        "{\"text\":\"yes! 7pm at the noodle place near the station\"}",
        "{\"text\":\"great, I'll bring the photos from the trip\"}",
        "{\"text\":\"running 10 minutes late, sorry\"}",
    ]
    .iter()
    .enumerate()
    .map(|(i, t)| send(100 + i as u32, t))
    .collect()
}

fn defaults() -> EncoderConfig {
    EncoderConfig::default().peer_limits(Limits::default())
}

#[test]
fn heartbeat_is_three_bytes() {
    insta::assert_snapshot!("ping", encode(defaults(), vec![Packet::ping()]));
    insta::assert_snapshot!(
        "pong",
        encode(defaults(), vec![Packet::pong_for(&Packet::ping())])
    );
}

#[test]
fn chat_message_frames() {
    insta::assert_snapshot!("send_id_7_hi", encode(defaults(), vec![send(7, "hi")]));
    insta::assert_snapshot!(
        "send_id_300_text",
        encode(
            defaults(),
            vec![send(300, "{\"text\":\"see you at the station at six\"}")]
        )
    );
}

#[test]
fn close_frame() {
    let close = Close::new(
        ErrorCode::FRAME_TOO_LARGE,
        Some(FrameType::SEND),
        "frame too large",
    );
    insta::assert_snapshot!(
        "close_frame_too_large",
        encode(defaults(), vec![close.to_packet()])
    );
}

#[test]
fn merged_frames() {
    insta::assert_snapshot!(
        "container_ping_send",
        encode(defaults(), vec![Packet::ping(), send(1, "hi")])
    );
    insta::assert_snapshot!("container_chat_plain", encode(defaults(), chat()));
    insta::assert_snapshot!(
        "container_chat_deflate",
        encode(
            defaults()
                .compression(Compression::Deflate)
                .compression_threshold(128),
            chat()
        )
    );
    insta::assert_snapshot!(
        "chat_takeover_unmerged",
        encode(
            defaults()
                .compression(Compression::DeflateTakeover)
                .merge(false)
                .compression_threshold(0),
            chat()
        )
    );
}
