//! The one-run comparison report: every codec case, its baselines, the size figures and the two
//! target checks, measured in one process so the ratios share the same machine state.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use magpie_wire::{Compression, Decoder, Encoder, Packet};

use crate::fixture::{self, BoxError, Fixture};
use crate::measure::{self, Settings, Timing};
use crate::sizes::{self, Sizes};

pub use crate::table::markdown;

/// The framing target: framed decode + prost decode takes at most this multiple of prost alone.
pub const FRAMING_TARGET: f64 = 1.15;
/// The framing the target applies to: typical packets as they arrive on a busy connection, many
/// single frames per read buffer.
pub const FRAMING_TARGET_CASE: &str = "64 single frames (one read)";

/// One timed case.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// What was timed.
    pub name: String,
    /// `encode`, `decode`, `decode+prost` or `baseline`.
    pub group: &'static str,
    /// Messages per iteration.
    pub msgs: usize,
    /// Wire bytes per iteration (written or read).
    pub wire_bytes: usize,
    /// The same messages as uncompressed single frames, bytes (the basis of `mb_per_s`).
    pub frame_bytes: usize,
    /// Nanoseconds per message (median).
    pub ns_per_msg: f64,
    /// Messages per second.
    pub msgs_per_s: f64,
    /// Uncompressed frame MB (10^6 B) per second.
    pub mb_per_s: f64,
    /// Time / time of copying `wire_bytes` into a preallocated `BytesMut`.
    pub vs_memcpy: f64,
    /// Time / time of prost-decoding the same bodies without framing.
    pub vs_prost: f64,
    /// Raw timing.
    pub timing: Timing,
}

/// Framed decode + prost vs prost alone, measured interleaved ([`measure::time_pair`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Overhead {
    /// The framing.
    pub name: String,
    /// Framed decode + prost decode, ns per message.
    pub framed_ns: f64,
    /// prost decode alone, ns per message.
    pub prost_ns: f64,
    /// `framed_ns / prost_ns`.
    pub ratio: f64,
}

/// Everything the report prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Whether this was a `--quick` run (timings meaningless).
    pub quick: bool,
    /// The timed cases.
    pub rows: Vec<Row>,
    /// Framing overhead per framing; [`FRAMING_TARGET_CASE`] carries the target.
    pub overhead: Vec<Overhead>,
    /// Deterministic size figures.
    pub sizes: Sizes,
    /// Framing target verdict (meaningless in a quick run).
    pub framing_target_met: bool,
    /// Merged-compression target verdict (deterministic).
    pub merged_target_met: bool,
}

impl Report {
    /// The overhead row that carries the framing target.
    pub fn target_overhead(&self) -> Option<&Overhead> {
        self.overhead.iter().find(|o| o.name == FRAMING_TARGET_CASE)
    }
}

struct Ctx<'a> {
    settings: Settings,
    fx: &'a Fixture,
    /// Source for memcpy baselines: the corpus as single frames.
    copy_src: Bytes,
    memcpy: HashMap<usize, f64>,
    prost: HashMap<usize, f64>,
    rows: Vec<Row>,
}

impl Ctx<'_> {
    /// Bodies of a case of `msgs` messages: the typical one, or the first `msgs`.
    fn bodies(&self, msgs: usize) -> &[Bytes] {
        match msgs {
            1 => std::slice::from_ref(&self.fx.bodies[self.fx.typical]),
            n => &self.fx.bodies[..n],
        }
    }

    fn memcpy_ns(&mut self, len: usize) -> Result<f64, BoxError> {
        if let Some(ns) = self.memcpy.get(&len) {
            return Ok(*ns);
        }
        let src = self.copy_src.slice(..len.min(self.copy_src.len()));
        let mut dst = BytesMut::with_capacity(len);
        let t = measure::time(
            &self.settings,
            || (),
            |()| {
                dst.clear();
                dst.extend_from_slice(&src);
                Ok(dst.len())
            },
        )?;
        self.memcpy.insert(len, t.ns_per_iter);
        Ok(t.ns_per_iter)
    }

    fn prost_ns(&mut self, msgs: usize) -> Result<f64, BoxError> {
        if let Some(ns) = self.prost.get(&msgs) {
            return Ok(*ns);
        }
        let bodies = self.bodies(msgs);
        let t = measure::time(
            &self.settings,
            || (),
            |()| fixture::prost_decode_all(bodies),
        )?;
        self.prost.insert(msgs, t.ns_per_iter);
        Ok(t.ns_per_iter)
    }

    /// Records a case over [`Ctx::bodies`]`(msgs)`.
    fn push(
        &mut self,
        name: &str,
        group: &'static str,
        msgs: usize,
        wire: usize,
        t: Timing,
    ) -> Result<(), BoxError> {
        let frame_bytes = match msgs {
            1 => self.fx.typical_packet().encoded_len(),
            n => self.fx.packets[..n].iter().map(Packet::encoded_len).sum(),
        };
        let (memcpy, prost) = (self.memcpy_ns(wire)?, self.prost_ns(msgs)?);
        let ns = t.ns_per_iter;
        self.rows.push(Row {
            name: name.to_owned(),
            group,
            msgs,
            wire_bytes: wire,
            frame_bytes,
            ns_per_msg: ns / msgs as f64,
            msgs_per_s: msgs as f64 * 1e9 / ns,
            mb_per_s: frame_bytes as f64 * 1e3 / ns,
            vs_memcpy: ns / memcpy,
            vs_prost: ns / prost,
            timing: t,
        });
        Ok(())
    }
}

fn wire_of(chunks: &[Bytes]) -> Bytes {
    fixture::concat(chunks).freeze()
}

/// An encode case: name, encoder, batches walked in a cycle, merged, messages, wire bytes.
type EncodeCase<'a> = (&'a str, Encoder, &'a [&'a [Packet]], bool, usize, usize);

/// Times encoding one batch per iteration (merged when `merged`, else one frame each), walking
/// `batches` in a cycle: a takeover stream must not be fed what its window already holds.
fn time_encode(
    settings: &Settings,
    mut enc: Encoder,
    batches: &[&[Packet]],
    merged: bool,
) -> Result<Timing, BoxError> {
    let mut dst = BytesMut::with_capacity(1 << 16);
    let mut i = 0;
    measure::time(
        settings,
        || (),
        |()| {
            dst.clear();
            let batch = batches[i % batches.len()];
            i += 1;
            match merged {
                true => fixture::encode_merged(&mut enc, batch, &mut dst)?,
                false => fixture::encode_each(&mut enc, batch, &mut dst)?,
            }
            Ok(dst.len())
        },
    )
}

/// Setup and run closures for one transport read of `wire` into a reused buffer, then the decode
/// ([`fixture::read_and_decode`]): the bytes are warm, as right after a socket read.
fn decoding(
    mode: Compression,
    wire: &Bytes,
    prost: bool,
) -> (impl FnMut(), impl FnMut(()) -> Result<usize, BoxError> + '_) {
    let mut dec = fixture::decoder(mode);
    let mut src = BytesMut::with_capacity(wire.len());
    let run = move |()| fixture::read_and_decode(&mut dec, &mut src, wire, prost);
    (|| (), run)
}

/// Like [`decoding`] for the lower bound: the minimal split instead of the codec.
fn splitting(
    wire: &Bytes,
    prost: bool,
) -> (impl FnMut(), impl FnMut(()) -> Result<usize, BoxError> + '_) {
    let mut src = BytesMut::with_capacity(wire.len());
    let run = move |()| {
        src.extend_from_slice(wire);
        fixture::minimal_split(&mut src, prost)
    };
    (|| (), run)
}

/// Runs every case. With [`Settings::quick`] the timings are meaningless but every code path,
/// the round trips and the size figures are exercised.
pub fn run(settings: Settings, fx: &Fixture) -> Result<Report, BoxError> {
    use Compression::{Deflate, DeflateTakeover, None as Plain};
    let sizes = sizes::measure(fx)?;
    let s = &settings;
    let mut cx = Ctx {
        settings,
        fx,
        copy_src: wire_of(&fixture::single_stream(&fx.packets, Plain, 0)?),
        memcpy: HashMap::new(),
        prost: HashMap::new(),
        rows: Vec::new(),
    };
    let typical = std::slice::from_ref(fx.typical_packet());
    let single = wire_of(&fixture::single_stream(typical, Plain, 0)?);
    let single_t0 = wire_of(&fixture::single_stream(typical, Deflate, 0)?);
    let stream64 = wire_of(&fixture::single_stream(fx.batch(64), Plain, 0)?);
    let m32 = |mode| fixture::merged_stream(fx.batch(32), 32, mode).map(|c| wire_of(&c));
    let (m32_plain, m32_deflate) = (m32(Plain)?, m32(Deflate)?);
    let m64_deflate = wire_of(&fixture::merged_stream(fx.batch(64), 64, Deflate)?);
    let takeover_chunks = fixture::merged_stream(&fx.packets, 32, DeflateTakeover)?;
    let takeover = wire_of(&takeover_chunks);
    let takeover_msgs = takeover_chunks.len() * 32;
    let b32: Vec<&[Packet]> = fx.batches(32).collect();
    let per_msg: Vec<&[Packet]> = fx.packets.chunks(1).collect();
    let per_msg_takeover = sizes
        .rows
        .iter()
        .find(|r| r.name.contains("takeover stream"));
    let per_msg_takeover =
        per_msg_takeover.map_or(single.len(), |r| r.bytes_per_msg.round() as usize);

    // Encode.
    let (enc, enc_t0) = (fixture::default_encoder, fixture::encoder);
    let takeover_avg = takeover.len() / takeover_chunks.len().max(1);
    let level1 = fixture::deflate_level_encoder;
    let m64_level1 = wire_of(&fixture::merged_stream_with(level1(1), fx.batch(64), 64)?);
    #[rustfmt::skip]
    let encodes: [EncodeCase<'_>; 9] = [
        ("single, none", enc(Plain), &[typical], false, 1, single.len()),
        ("single, deflate (threshold 512: stays plain)", enc(Deflate), &[typical], false, 1, single.len()),
        ("single, deflate threshold 0", enc_t0(Deflate, 0), &[typical], false, 1, single_t0.len()),
        ("single, takeover threshold 0 (corpus cycle)", enc_t0(DeflateTakeover, 0), &per_msg, false, 1, per_msg_takeover),
        ("merged 32, none", enc(Plain), &[fx.batch(32)], true, 32, m32_plain.len()),
        ("merged 32, deflate", enc(Deflate), &[fx.batch(32)], true, 32, m32_deflate.len()),
        ("merged 32, deflate-takeover (corpus cycle)", enc(DeflateTakeover), &b32, true, 32, takeover_avg),
        ("merged 64, deflate", enc(Deflate), &[fx.batch(64)], true, 64, m64_deflate.len()),
        ("merged 64, deflate level 1", level1(1), &[fx.batch(64)], true, 64, m64_level1.len()),
    ];
    for (name, encoder, batches, merged, msgs, wire) in encodes {
        let t = time_encode(s, encoder, batches, merged)?;
        cx.push(&format!("encode {name}"), "encode", msgs, wire, t)?;
    }

    // Decode; then decode + prost interleaved with prost alone for the overhead ratio.
    #[rustfmt::skip]
    let cases: [(&str, Compression, &Bytes, usize); 5] = [
        ("single frame (one per read)", Plain, &single, 1),
        (FRAMING_TARGET_CASE, Plain, &stream64, 64),
        ("merged 32, none", Plain, &m32_plain, 32),
        ("merged 32, deflate", Deflate, &m32_deflate, 32),
        ("merged 64, deflate", Deflate, &m64_deflate, 64),
    ];
    let mut overhead = Vec::new();
    for (name, mode, wire, msgs) in cases {
        let (setup, run) = decoding(mode, wire, false);
        let t = measure::time(s, setup, run)?;
        cx.push(&format!("decode {name}"), "decode", msgs, wire.len(), t)?;
        let bodies = cx.bodies(msgs);
        let prost_alone = (|| (), |()| fixture::prost_decode_all(bodies));
        let (framed, alone) = measure::time_pair(s, decoding(mode, wire, true), prost_alone)?;
        cx.push(
            &format!("decode+prost {name}"),
            "decode+prost",
            msgs,
            wire.len(),
            framed,
        )?;
        let (framed_ns, prost_ns) = (
            framed.ns_per_iter / msgs as f64,
            alone.ns_per_iter / msgs as f64,
        );
        if let Some(row) = cx.rows.last_mut() {
            row.vs_prost = framed_ns / prost_ns; // the interleaved figure
        }
        overhead.push(Overhead {
            name: name.to_owned(),
            framed_ns,
            prost_ns,
            ratio: framed_ns / prost_ns,
        });
    }
    // A takeover stream decodes from its start: a fresh decoder per pass over the corpus.
    let mut src = BytesMut::with_capacity(takeover.len());
    let t = measure::time(
        s,
        || fixture::decoder(DeflateTakeover),
        |mut dec: Decoder| fixture::read_and_decode(&mut dec, &mut src, &takeover, false),
    )?;
    cx.push(
        "decode merged 32 stream, deflate-takeover (whole corpus)",
        "decode",
        takeover_msgs,
        takeover.len(),
        t,
    )?;

    // Baselines as rows of their own, and the lower bound of any framing.
    let (setup, run) = splitting(&stream64, false);
    let t = measure::time(s, setup, run)?;
    cx.push(
        "baseline: minimal frame split, 64 frames (no checks)",
        "baseline",
        64,
        stream64.len(),
        t,
    )?;
    let bodies = cx.bodies(64);
    let minimal = splitting(&stream64, true);
    let (framed, alone) =
        measure::time_pair(s, minimal, (|| (), |()| fixture::prost_decode_all(bodies)))?;
    let (framed_ns, prost_ns) = (framed.ns_per_iter / 64.0, alone.ns_per_iter / 64.0);
    let name = "lower bound: minimal split of 64 single frames (no checks)".to_owned();
    overhead.push(Overhead {
        name,
        framed_ns,
        prost_ns,
        ratio: framed_ns / prost_ns,
    });
    for (n, len) in [
        (1, single.len()),
        (32, m32_plain.len()),
        (64, stream64.len()),
    ] {
        let ns = cx.prost_ns(n)?;
        let t = Timing {
            ns_per_iter: ns,
            min_ns_per_iter: ns,
            batch: 0,
        };
        cx.push(
            &format!("baseline: prost decode {n} (no framing)"),
            "baseline",
            n,
            len,
            t,
        )?;
        let ns = cx.memcpy_ns(len)?;
        let t = Timing {
            ns_per_iter: ns,
            min_ns_per_iter: ns,
            batch: 0,
        };
        cx.push(&format!("baseline: memcpy {len} B"), "baseline", n, len, t)?;
    }
    let mut report = Report {
        quick: settings.quick,
        rows: cx.rows,
        overhead,
        merged_target_met: sizes.merged_target_met(),
        sizes,
        framing_target_met: false,
    };
    report.framing_target_met = report
        .target_overhead()
        .is_some_and(|o| o.ratio <= FRAMING_TARGET);
    Ok(report)
}
