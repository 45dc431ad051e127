//! Encodes a short chat exchange, prints the frames byte by byte, and decodes them back.
//!
//! `cargo run --release -p magpie-wire --example wire-demo`

use bytes::BytesMut;
use magpie_wire::{
    Compression, Decoder, DecoderConfig, Encoder, EncoderConfig, Error, FrameType, Limits, Packet,
    VarInt, preface,
};

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> Result<(), Error> {
    let lines = [
        "are we still on for dinner tonight?",
        "yes! 7pm at the noodle place near the station",
        "great, I'll bring the photos from the trip",
        "今晚见，别忘了带伞",
        "running 10 minutes late, sorry",
    ];
    let packets: Vec<Packet> = lines
        .iter()
        .enumerate()
        .map(|(i, text)| {
            Packet::new(FrameType::SEND, format!("{{\"text\":\"{text}\"}}"))
                .with_id(VarInt::from_u32(i as u32 + 1))
        })
        .collect();
    let body_bytes: usize = packets.iter().map(|p| p.body().len()).sum();

    let mut wire = BytesMut::new();
    preface::write_preface(preface::VERSION_1, &mut wire);
    println!("preface            {}", hex(&wire));

    let mut encoder = Encoder::new(EncoderConfig::default().peer_limits(Limits::default()));
    let mut frame = BytesMut::new();
    encoder.encode(Packet::ping(), &mut frame)?;
    println!("ping               {}", hex(&frame));
    let mut frame = BytesMut::new();
    encoder.encode(packets[0].clone(), &mut frame)?;
    println!(
        "one SEND           {} bytes for a {}-byte body",
        frame.len(),
        packets[0].body().len()
    );

    for (name, compression) in [
        ("merged", Compression::None),
        ("merged + deflate", Compression::Deflate),
    ] {
        let config = EncoderConfig::default()
            .peer_limits(Limits::default())
            .compression(compression);
        let mut encoder = Encoder::new(config);
        let mut out = BytesMut::new();
        for p in &packets {
            encoder.push(p.clone())?;
        }
        encoder.flush(&mut out)?;
        println!(
            "{name:<18} {} packets, {} body bytes -> {} wire bytes ({:.0}%)",
            packets.len(),
            body_bytes,
            out.len(),
            100.0 * out.len() as f64 / body_bytes as f64
        );
        let mut decoder = Decoder::new(DecoderConfig::default().compression(compression));
        let mut decoded = Vec::new();
        while let Some(p) = decoder.decode(&mut out)? {
            decoded.push(p);
        }
        assert_eq!(decoded, packets, "round trip");
    }
    println!("all frames decoded back to the packets they came from");
    Ok(())
}
