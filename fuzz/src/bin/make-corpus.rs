//! Writes the seed corpus from the shared test vectors (spec/wire.md §12).
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --bin make-corpus [-- VECTORS_DIR [CORPUS_DIR]]
//! ```
//!
//! Reads `spec/vectors/*.json` (or `VECTORS_DIR`, or `$MAGPIE_VECTORS_DIR`) and writes one file per
//! seed to `fuzz/corpus/<target>/<sanitised-vector-id>[.suffix]` (or under `CORPUS_DIR`). Files it
//! wrote before are overwritten; files the fuzzer added are left alone. The corpus is generated,
//! never committed (`fuzz/corpus/*/` is git-ignored).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use magpie_wire_fuzz::vectors::{default_dir, load_dir, seeds};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let vectors_dir = args.next().map_or_else(default_dir, PathBuf::from);
    let corpus_dir = args.next().map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"),
        PathBuf::from,
    );
    match run(&vectors_dir, &corpus_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make-corpus: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(vectors_dir: &Path, corpus_dir: &Path) -> Result<(), String> {
    let vectors = load_dir(vectors_dir)?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for vector in &vectors {
        for seed in seeds(vector) {
            let dir = corpus_dir.join(seed.target);
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let path = dir.join(&seed.name);
            std::fs::write(&path, &seed.data)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            *counts.entry(seed.target).or_default() += 1;
        }
    }
    println!(
        "make-corpus: {} vectors from {} -> {}",
        vectors.len(),
        vectors_dir.display(),
        corpus_dir.display()
    );
    for (target, n) in counts {
        println!("  {target}: {n} seeds");
    }
    Ok(())
}
