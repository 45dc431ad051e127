//! Criterion benches of the magpie-wire codec on a corpus of varied chat messages.
//!
//! ```text
//! cargo bench -p magpie-benches --bench wire            # about a minute on 2 idle cores
//! cargo test  -p magpie-benches --benches               # each bench once (smoke test)
//! ```
//!
//! Every codec case sits in a group with its baselines: memcpy of the same wire bytes into a
//! preallocated `BytesMut`, and prost-decoding the same bodies without framing. The one-run
//! summary with ratios is `cargo run --release -p magpie-benches --bin wire-report`.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
};
use magpie_benches::fixture::{self, Fixture};
use magpie_benches::sizes::check_roundtrip;
use magpie_wire::{Compression, Decoder, Encoder, Packet};

type Group<'a> = BenchmarkGroup<'a, WallTime>;

fn wire(chunks: Vec<Bytes>) -> Bytes {
    fixture::concat(&chunks).freeze()
}

/// Wire bytes of `packets` (one frame each, or merged), checked to round-trip: setup only.
fn prepare(packets: &[Packet], mode: Compression, merged: bool, threshold: usize) -> Bytes {
    let chunks = if merged {
        fixture::merged_stream(packets, packets.len(), mode)
    } else {
        fixture::single_stream(packets, mode, threshold)
    }
    .expect("encode the fixture");
    check_roundtrip(&chunks, packets, mode).expect("fixture round-trips");
    wire(chunks)
}

fn bench_encode(
    g: &mut Group<'_>,
    name: &str,
    mut enc: Encoder,
    batches: &[&[Packet]],
    merged: bool,
) {
    let mut dst = BytesMut::with_capacity(1 << 16);
    let mut i = 0;
    g.bench_function(name, |b| {
        b.iter(|| {
            dst.clear();
            let batch = batches[i % batches.len()];
            i += 1;
            if merged {
                fixture::encode_merged(&mut enc, batch, &mut dst)
            } else {
                fixture::encode_each(&mut enc, batch, &mut dst)
            }
        })
    });
}

/// One transport read of `wire` into a reused buffer, then the decode: the bytes are warm, as right
/// after a socket read (the memcpy baseline of the same bytes shows what the copy costs).
fn bench_decode(g: &mut Group<'_>, name: &str, mode: Compression, wire: &Bytes, prost: bool) {
    let mut dec = fixture::decoder(mode);
    let mut src = BytesMut::with_capacity(wire.len());
    g.bench_function(name, |b| {
        b.iter(|| fixture::read_and_decode(&mut dec, &mut src, black_box(wire), prost))
    });
}

/// The two baselines for `wire` carrying `bodies`.
fn bench_baselines(g: &mut Group<'_>, wire: &Bytes, bodies: &[Bytes]) {
    g.throughput(Throughput::Elements(bodies.len() as u64));
    g.bench_function("prost decode alone", |b| {
        b.iter(|| fixture::prost_decode_all(black_box(bodies)))
    });
    g.throughput(Throughput::Bytes(wire.len() as u64));
    let mut dst = BytesMut::with_capacity(wire.len());
    g.bench_function(format!("memcpy {} B", wire.len()), |b| {
        b.iter(|| {
            dst.clear();
            dst.extend_from_slice(black_box(wire));
            dst.len()
        })
    });
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> Group<'a> {
    let mut g = c.benchmark_group(name);
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1));
    g
}

fn single(c: &mut Criterion) {
    use Compression::{Deflate, None as Plain};
    let fx = Fixture::standard();
    let typical = std::slice::from_ref(fx.typical_packet());
    let plain = prepare(typical, Plain, false, 0);
    let mut g = configure(c, "single");
    g.throughput(Throughput::Elements(1));
    bench_encode(
        &mut g,
        "encode none",
        fixture::default_encoder(Plain),
        &[typical],
        false,
    );
    bench_encode(
        &mut g,
        "encode deflate (threshold 128)",
        fixture::default_encoder(Deflate),
        &[typical],
        false,
    );
    bench_encode(
        &mut g,
        "encode deflate threshold 0",
        fixture::encoder(Deflate, 0),
        &[typical],
        false,
    );
    bench_decode(&mut g, "decode none", Plain, &plain, false);
    bench_decode(&mut g, "decode + prost", Plain, &plain, true);
    bench_baselines(&mut g, &plain, std::slice::from_ref(&fx.bodies[fx.typical]));
    g.finish();

    // Typical packets as they arrive on a busy connection: 64 single frames in one read buffer.
    let stream = prepare(fx.batch(64), Plain, false, 0);
    let mut g = configure(c, "stream64");
    g.throughput(Throughput::Elements(64));
    bench_decode(&mut g, "decode none", Plain, &stream, false);
    bench_decode(&mut g, "decode + prost", Plain, &stream, true);
    // The lower bound of any framing: varint header + Bytes split, no checks.
    let mut src = BytesMut::with_capacity(stream.len());
    g.bench_function("minimal split + prost (lower bound)", |b| {
        b.iter(|| {
            src.extend_from_slice(black_box(&stream));
            fixture::minimal_split(&mut src, true)
        })
    });
    bench_baselines(&mut g, &stream, fx.batch_bodies(64));
    g.finish();
}

fn merged(c: &mut Criterion) {
    use Compression::{Deflate, DeflateTakeover, None as Plain};
    let fx = Fixture::standard();
    let batch = fx.batch(32);
    let mut g = configure(c, "merged32");
    g.throughput(Throughput::Elements(32));
    for mode in [Plain, Deflate] {
        bench_encode(
            &mut g,
            &format!("encode {}", mode.name()),
            fixture::default_encoder(mode),
            &[batch],
            true,
        );
    }
    // A takeover stream must not be fed batches its window already holds: walk the corpus.
    let batches: Vec<&[Packet]> = fx.batches(32).collect();
    bench_encode(
        &mut g,
        "encode deflate-takeover (corpus cycle)",
        fixture::default_encoder(DeflateTakeover),
        &batches,
        true,
    );
    let plain = prepare(batch, Plain, true, 0);
    let deflate = prepare(batch, Deflate, true, 0);
    bench_decode(&mut g, "decode none", Plain, &plain, false);
    bench_decode(&mut g, "decode deflate", Deflate, &deflate, false);
    bench_decode(&mut g, "decode + prost, none", Plain, &plain, true);
    bench_decode(&mut g, "decode + prost, deflate", Deflate, &deflate, true);
    bench_baselines(&mut g, &plain, fx.batch_bodies(32));
    g.finish();

    // Takeover decode needs the stream from its start: the whole corpus, fresh decoder each time.
    let chunks = fixture::merged_stream(&fx.packets, 32, DeflateTakeover).expect("encode corpus");
    let msgs = chunks.len() * 32;
    check_roundtrip(&chunks, &fx.packets[..msgs], DeflateTakeover).expect("corpus round-trips");
    let takeover = wire(chunks);
    let mut g = configure(c, "takeover_stream");
    g.throughput(Throughput::Elements(msgs as u64));
    let mut src = BytesMut::with_capacity(takeover.len());
    g.bench_function(format!("decode {msgs} msgs merged 32"), |b| {
        b.iter_batched(
            || fixture::decoder(DeflateTakeover),
            |mut dec: Decoder| fixture::read_and_decode(&mut dec, &mut src, &takeover, false),
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let batch = fx.batch(64);
    let deflate = prepare(batch, Deflate, true, 0);
    let mut g = configure(c, "merged64_deflate");
    g.throughput(Throughput::Elements(64));
    bench_encode(
        &mut g,
        "encode",
        fixture::default_encoder(Deflate),
        &[batch],
        true,
    );
    let level1 = fixture::deflate_level_encoder(1);
    bench_encode(&mut g, "encode level 1", level1, &[batch], true);
    bench_decode(&mut g, "decode", Deflate, &deflate, false);
    bench_decode(&mut g, "decode + prost", Deflate, &deflate, true);
    bench_baselines(&mut g, &deflate, fx.batch_bodies(64));
    g.finish();
}

criterion_group!(benches, single, merged);
criterion_main!(benches);
