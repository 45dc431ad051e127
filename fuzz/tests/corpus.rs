//! The stable fuzz harness: every fuzz target over (a) the seeds derived from the shared test
//! vectors (spec/vectors/*.json, or `$MAGPIE_VECTORS_DIR`) and (b) a deterministic set of
//! pseudo-random mutations of those seeds and of a few built-in ones.
//!
//! `cargo test --manifest-path fuzz/Cargo.toml` runs it on stable, no sanitizer, no libFuzzer.
//! `MAGPIE_FUZZ_ITERATIONS` sets the mutated inputs per target (default 10,000; 3,000 for
//! `roundtrip`). A failing input is printed in hex and written to
//! `fuzz/artifacts/harness/<target>-<hash>`, which `cargo fuzz run <target> <file>` replays.

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::OnceLock;

use magpie_wire_fuzz::alloc_track::Tracking;
use magpie_wire_fuzz::vectors::{Seed, Vector, default_dir, load_dir, seeds};
use magpie_wire_fuzz::{TARGETS, run_target};

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// Mutated inputs per target: `roundtrip` compresses up to 1 MiB per input, the others are cheap.
fn default_iterations(target: &str) -> usize {
    if target == "roundtrip" { 3_000 } else { 10_000 }
}
const MAX_INPUT: usize = 20_000;

fn vectors() -> &'static [Vector] {
    static VECTORS: OnceLock<Result<Vec<Vector>, String>> = OnceLock::new();
    match VECTORS.get_or_init(|| load_dir(&default_dir())) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

fn vector_seeds() -> Vec<Seed> {
    vectors().iter().flat_map(seeds).collect()
}

/// Runs one input; on failure, reports it and saves it as an artifact before failing the test.
fn run_checked(target: &str, data: &[u8], origin: &str) {
    let result = catch_unwind(AssertUnwindSafe(|| run_target(target, data)));
    if result.is_err() {
        let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts/harness");
        let path = dir.join(format!("{target}-{hash:016x}"));
        let saved = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::File::create(&path)?.write_all(data))
            .map_or_else(
                |e| format!("(not saved: {e})"),
                |()| path.display().to_string(),
            );
        panic!(
            "{target} failed on {origin} ({} bytes), saved to {saved}\ninput hex: {}",
            data.len(),
            hex::encode(data)
        );
    }
}

#[test]
fn every_target_on_every_vector_seed() {
    let vectors = vectors();
    let seeds = vector_seeds();
    for seed in &seeds {
        run_checked(
            seed.target,
            &seed.data,
            &format!("seed {}/{}", seed.target, seed.name),
        );
    }
    // roundtrip takes structured input; the raw vector bytes still drive `arbitrary`.
    for vector in vectors {
        run_checked("roundtrip", &vector.bytes, &format!("vector {}", vector.id));
    }
    println!("{} vectors, {} seeds", vectors.len(), seeds.len());
}

#[test]
fn an_empty_vectors_directory_is_an_error() {
    let dir = std::env::temp_dir().join(format!("magpie-fuzz-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let err = load_dir(&dir).expect_err("no vectors must be an error");
    assert!(err.contains("no *.json test vectors"), "{err}");
    let _ = std::fs::remove_dir(&dir);
}

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(target: &str) -> Rng {
        Rng(target.bytes().fold(0x9E37_79B9_7F4A_7C15, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const INTERESTING: [u8; 12] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x12, 0x3F, 0x40, 0x7F, 0x80, 0xC0, 0xFF,
];

fn mutate(rng: &mut Rng, base: &[u8], pool: &[Vec<u8>]) -> Vec<u8> {
    let mut d = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = d.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                d[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                d[i] = rng.next() as u8;
            }
            2 if len > 0 => {
                let i = rng.below(len);
                d[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            3 => d.truncate(rng.below(len + 1)),
            4 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let bytes = rng.bytes(n);
                d.splice(at..at, bytes);
            }
            5 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(16)).min(len);
                d.drain(at..end);
            }
            6 if !pool.is_empty() => {
                let other = &pool[rng.below(pool.len())];
                let cut = rng.below(len + 1);
                d.truncate(cut);
                let from = rng.below(other.len() + 1);
                d.extend_from_slice(&other[from..]);
            }
            7 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(32)).min(len);
                let copy = d[at..end].to_vec();
                let to = rng.below(len + 1);
                d.splice(to..to, copy);
            }
            8 if !pool.is_empty() => d.extend_from_slice(&pool[rng.below(pool.len())]),
            _ => {}
        }
    }
    d.truncate(MAX_INPUT);
    d
}

/// A few inputs that do not depend on the vectors: spec worked examples and edge cases.
fn builtin_seeds(target: &str) -> Vec<Vec<u8>> {
    let deflate = |data: &[u8]| {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("deflate");
        e.finish().expect("deflate")
    };
    let frames: Vec<Vec<u8>> = [
        "000100",                                      // PING (§9)
        "0112070268 69",                               // SEND id 7 "hi" (§4)
        "0003090001000112010268 69",                   // PING + SEND merged (§8)
        "031201 10 DDC0810000000080 20D6FC25F6381E02", // SEND id 1, 200 × "a", deflate (§7)
        "01120780040001",                              // SEND with Length 262,145 (§10.2)
        "00040f0312 6672616d6520746f6f20626967",       // CLOSE FRAME_TOO_LARGE, SEND (§10.2)
        "00440100 000200 004400 02aabb",               // grease 0x401, PONG, extension 0x400
    ]
    .iter()
    .map(|h| hex::decode(h.replace(' ', "")).expect("builtin hex"))
    .collect();
    match target {
        "inflate" => vec![
            deflate(b""),
            deflate(b"hello hello hello"),
            deflate(&[0u8; 16_384]),
            deflate(&[0u8; 16_385]),
            deflate(&b"magpie ".repeat(900)),
            frames[2].clone(),
        ],
        "container_decode" => vec![
            hex::decode("0001000112010268 69".replace(' ', "")).expect("hex"),
            [0x00, 0x01, 0x00].repeat(16),
            [0x00, 0x01, 0x00].repeat(17),
            hex::decode("00440102aabb000200").expect("hex"),
        ],
        "chunked_decode" => frames
            .iter()
            .map(|f| [&[0x01, 0x02, 0x01, 0x07][..], f].concat())
            .collect(),
        _ => frames,
    }
}

fn mutations(target: &str) {
    let iterations = std::env::var("MAGPIE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| default_iterations(target));
    let mut pool: Vec<Vec<u8>> = vector_seeds()
        .into_iter()
        .filter(|s| s.target == target || target == "roundtrip")
        .map(|s| s.data)
        .collect();
    pool.extend(builtin_seeds(target));
    let mut rng = Rng::new(target);
    for i in 0..iterations {
        let input = if rng.below(8) == 0 {
            let n = rng.below(if target == "roundtrip" { 4096 } else { 256 });
            rng.bytes(n)
        } else {
            let base = &pool[rng.below(pool.len())];
            mutate(&mut rng, base, &pool)
        };
        run_checked(target, &input, &format!("mutation {i}"));
    }
}

#[test]
fn mutations_frame_decode() {
    mutations("frame_decode");
}

#[test]
fn mutations_container_decode() {
    mutations("container_decode");
}

#[test]
fn mutations_inflate() {
    mutations("inflate");
}

#[test]
fn mutations_chunked_decode() {
    mutations("chunked_decode");
}

#[test]
fn mutations_roundtrip() {
    mutations("roundtrip");
}

#[test]
fn targets_list_matches_the_manifest() {
    let manifest = include_str!("../Cargo.toml");
    for target in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "{target} is not a [[bin]] in fuzz/Cargo.toml"
        );
    }
}
