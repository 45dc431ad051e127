//! The figures that do not depend on timing: wire bytes per message in each framing and
//! compression mode, and the round trip of every generated stream.

use bytes::Bytes;
use magpie_wire::{Compression, Packet};

use crate::fixture::{self, BoxError, Fixture};

/// The size target: a compressed container of 64 chat messages is at most this share of the same
/// messages sent as plain single frames.
pub const MERGED_TARGET: f64 = 0.40;

/// Wire bytes of the corpus in one framing/compression mode.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SizeRow {
    /// What was encoded.
    pub name: String,
    /// Messages encoded (whole batches only).
    pub msgs: usize,
    /// Total wire bytes.
    pub wire_bytes: usize,
    /// Wire bytes per message.
    pub bytes_per_msg: f64,
    /// Wire bytes / prost body bytes of the same messages.
    pub vs_body: f64,
    /// Wire bytes / the same messages as uncompressed single frames.
    pub vs_frames: f64,
    /// Worst (largest) `vs_frames` of one batch, for merged modes.
    pub worst_batch_vs_frames: Option<f64>,
}

/// The size figures of the corpus.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sizes {
    /// Messages in the corpus.
    pub msgs: usize,
    /// Mean prost body size.
    pub mean_body: f64,
    /// Median prost body size (the typical packet's).
    pub typical_body: usize,
    /// One row per mode.
    pub rows: Vec<SizeRow>,
    /// Merged 64 + deflate as a share of uncompressed single frames.
    pub merged64_deflate_vs_frames: f64,
    /// Merged 64 + deflate vs deflating each message alone (wire bytes ratio).
    pub merged64_vs_each_alone: f64,
    /// Bodies of at least the default compression threshold (128 B), compressed alone in
    /// `deflate` mode by a default encoder.
    pub bodies_at_threshold: usize,
    /// Bytes that compressing those alone saves, in total.
    pub threshold_saving: usize,
}

impl Sizes {
    /// Whether the merged-compression target holds.
    pub fn merged_target_met(&self) -> bool {
        self.merged64_deflate_vs_frames <= MERGED_TARGET
    }
}

fn len_of(chunks: &[Bytes]) -> usize {
    chunks.iter().map(Bytes::len).sum()
}

/// Measures the wire size of the corpus in every mode. Every stream is also decoded and compared
/// with the packets that went in, so a size is never reported for bytes that do not round-trip.
pub fn measure(fx: &Fixture) -> Result<Sizes, BoxError> {
    let packets = &fx.packets;
    let body_total = |n: usize| -> usize { fx.bodies[..n].iter().map(Bytes::len).sum() };
    let frame_total = |n: usize| -> usize { packets[..n].iter().map(Packet::encoded_len).sum() };
    let row = |name: &str, n: usize, chunks: &[Bytes], per_batch: bool| -> SizeRow {
        let wire = len_of(chunks);
        let worst = per_batch.then(|| {
            let per = n / chunks.len().max(1);
            chunks
                .iter()
                .zip(packets.chunks_exact(per.max(1)))
                .map(|(c, b)| {
                    c.len() as f64 / b.iter().map(Packet::encoded_len).sum::<usize>() as f64
                })
                .fold(0.0, f64::max)
        });
        SizeRow {
            name: name.to_owned(),
            msgs: n,
            wire_bytes: wire,
            bytes_per_msg: wire as f64 / n as f64,
            vs_body: wire as f64 / body_total(n) as f64,
            vs_frames: wire as f64 / frame_total(n) as f64,
            worst_batch_vs_frames: worst,
        }
    };
    let n = packets.len();
    let mut rows = vec![SizeRow {
        name: "prost body alone".to_owned(),
        msgs: n,
        wire_bytes: body_total(n),
        bytes_per_msg: body_total(n) as f64 / n as f64,
        vs_body: 1.0,
        vs_frames: body_total(n) as f64 / frame_total(n) as f64,
        worst_batch_vs_frames: None,
    }];
    let singles: [(&str, Compression, usize); 4] = [
        ("single frames, no compression", Compression::None, 0),
        (
            "single frames, deflate (threshold 128)",
            Compression::Deflate,
            128,
        ),
        (
            "single frames, deflate each alone (threshold 0)",
            Compression::Deflate,
            0,
        ),
        (
            "single frames, deflate-takeover stream (threshold 0)",
            Compression::DeflateTakeover,
            0,
        ),
    ];
    let mut each_alone = 0;
    let mut at_threshold = 0;
    for (name, mode, threshold) in singles {
        let chunks = fixture::single_stream(packets, mode, threshold)?;
        check_roundtrip(&chunks, packets, mode)?;
        if mode == Compression::Deflate && threshold == 128 {
            at_threshold = len_of(&chunks);
        }
        if mode == Compression::Deflate && threshold == 0 {
            each_alone = len_of(&chunks[..n - n % 64]);
        }
        rows.push(row(name, n, &chunks, false));
    }
    let mut merged64 = 0;
    for size in [32, 64] {
        for mode in [
            Compression::None,
            Compression::Deflate,
            Compression::DeflateTakeover,
        ] {
            let whole = n - n % size;
            let chunks = fixture::merged_stream(packets, size, mode)?;
            check_roundtrip(&chunks, &packets[..whole], mode)?;
            if size == 64 && mode == Compression::Deflate {
                merged64 = len_of(&chunks);
            }
            let name = format!("merged {size}, {}", mode.name());
            rows.push(row(
                &name,
                whole,
                &chunks,
                mode != Compression::DeflateTakeover,
            ));
        }
    }
    // The DEFLATE level trades CPU for ratio (the encoder's default is 6).
    let whole64 = n - n % 64;
    for level in [1, 9] {
        let chunks =
            fixture::merged_stream_with(fixture::deflate_level_encoder(level), packets, 64)?;
        check_roundtrip(&chunks, &packets[..whole64], Compression::Deflate)?;
        rows.push(row(
            &format!("merged 64, deflate level {level}"),
            whole64,
            &chunks,
            true,
        ));
    }
    Ok(Sizes {
        msgs: n,
        mean_body: body_total(n) as f64 / n as f64,
        typical_body: fx.bodies[fx.typical].len(),
        rows,
        merged64_deflate_vs_frames: merged64 as f64 / frame_total(whole64).max(1) as f64,
        merged64_vs_each_alone: merged64 as f64 / each_alone.max(1) as f64,
        bodies_at_threshold: fx.bodies.iter().filter(|b| b.len() >= 128).count(),
        threshold_saving: frame_total(n).saturating_sub(at_threshold),
    })
}

/// Decodes `chunks` as one stream and checks it yields exactly `expected`.
pub fn check_roundtrip(
    chunks: &[Bytes],
    expected: &[Packet],
    mode: Compression,
) -> Result<(), BoxError> {
    let mut dec = fixture::decoder(mode);
    let mut src = fixture::concat(chunks);
    let mut got = Vec::with_capacity(expected.len());
    fixture::decode_into(&mut dec, &mut src, &mut got)?;
    if got.len() != expected.len() {
        return Err(format!(
            "{}: decoded {} packets, expected {}",
            mode.name(),
            got.len(),
            expected.len()
        )
        .into());
    }
    match got.iter().zip(expected).position(|(a, b)| a != b) {
        Some(i) => Err(format!("{}: packet {i} differs after the round trip", mode.name()).into()),
        None => Ok(()),
    }
}
