//! The shared test vectors (spec/wire.md §12) as fuzz seeds, for `make-corpus` and the harness.

use std::path::{Path, PathBuf};

use flate2::Decompress;
use magpie_wire::{Compression, FrameType, Limits, VarInt};

use crate::decode::write_chunked_prefix;
use crate::inflate::{Reference, reference};
use crate::{Setup, limits};

/// One vector: where it came from, its bytes and the receiver settings it names.
#[derive(Debug, Clone)]
pub struct Vector {
    /// The file it was read from (file name only).
    pub file: String,
    /// The vector's stable id.
    pub id: String,
    /// The bytes a receiver reads (`hex`).
    pub bytes: Vec<u8>,
    /// `settings.compression`.
    pub compression: Compression,
    /// `settings.max_*`, clamped into the spec's ranges.
    pub limits: Limits,
    /// `settings.extensions`.
    pub extensions: Vec<FrameType>,
    /// `role`, set on preface vectors: their bytes are a preface, not frames.
    pub role: Option<String>,
}

/// One seed: the target it is for, a file name and the input.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The fuzz target (one of [`crate::TARGETS`]).
    pub target: &'static str,
    /// A file name: the sanitised vector id, with a suffix where a vector gives several seeds.
    pub name: String,
    /// The input bytes.
    pub data: Vec<u8>,
}

/// The vectors directory: `$MAGPIE_VECTORS_DIR`, else `spec/vectors/` beside `fuzz/`.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("MAGPIE_VECTORS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors");
            dir.canonicalize().unwrap_or(dir)
        }
    }
}

/// Reads the vectors of every `*.json` in `dir` (sorted by name) that carry stream bytes (`hex`).
/// An error if there is no such file or vector, or if a file is not valid.
pub fn load_dir(dir: &Path) -> Result<Vec<Vector>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "cannot read the test vectors directory {}: {e}",
            dir.display()
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "no *.json test vectors in {}: the fuzz seeds come from spec/vectors/*.json \
             (spec/wire.md §12, written by `cargo run -p magpie-vectors`); generate them, or set \
             MAGPIE_VECTORS_DIR to a directory that has them",
            dir.display()
        ));
    }
    let mut vectors = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into());
        parse_file(&text, &file, &mut vectors).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if vectors.is_empty() {
        return Err(format!(
            "no wire test vectors (with \"hex\") in the *.json files of {}",
            dir.display()
        ));
    }
    Ok(vectors)
}

fn parse_file(text: &str, file: &str, out: &mut Vec<Vector>) -> Result<(), String> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if json["spec"]
        .as_str()
        .is_some_and(|s| !s.starts_with("wire/"))
    {
        return Ok(()); // Vectors of another document.
    }
    let list = json["vectors"]
        .as_array()
        .ok_or("no \"vectors\" array (spec/wire.md §12)")?;
    for (i, v) in list.iter().enumerate() {
        let id = v["id"].as_str().ok_or(format!("vector {i}: no \"id\""))?;
        // Vectors without stream bytes (other layers' vectors kept beside these) give no seeds.
        let Some(hex_text) = v["hex"].as_str() else {
            continue;
        };
        let bytes = hex::decode(hex_text).map_err(|e| format!("vector {id}: bad hex: {e}"))?;
        let settings = &v["settings"];
        let number = |key: &str, default: u32| settings[key].as_u64().unwrap_or(default.into());
        let limits = limits(
            number("max_frame_size", Limits::DEFAULT_FRAME_SIZE),
            number("max_decompressed_size", Limits::DEFAULT_DECOMPRESSED_SIZE),
            number(
                "max_container_packets",
                Limits::DEFAULT_CONTAINER_PACKETS.into(),
            ),
        );
        let compression = match settings["compression"].as_str() {
            None => Compression::None,
            Some(name) => Compression::from_name(name)
                .ok_or(format!("vector {id}: unknown compression {name:?}"))?,
        };
        let extensions = settings["extensions"]
            .as_array()
            .map(|a| a.iter().filter_map(|t| t.as_u64().and_then(VarInt::new)))
            .into_iter()
            .flatten()
            .map(FrameType::new)
            .collect();
        out.push(Vector {
            file: file.to_owned(),
            id: id.to_owned(),
            bytes,
            compression,
            limits,
            extensions,
            role: v["role"].as_str().map(str::to_owned),
        });
    }
    Ok(())
}

/// A vector id as a file name: `frame/send-id-1byte` → `frame_send-id-1byte`.
pub fn sanitise(id: &str) -> String {
    id.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '.' => c,
            _ => '_',
        })
        .collect()
}

/// The seeds a vector gives: its bytes for `frame_decode`; its bytes behind a prefix naming its
/// settings and a chunking for `chunked_decode` (byte by byte, and a mixed pattern); the body of
/// each COMPRESSED frame for `inflate`; the (inflated) body of each CONTAINER for
/// `container_decode`. `roundtrip` takes structured input, so vectors give it no seeds.
pub fn seeds(vector: &Vector) -> Vec<Seed> {
    let name = sanitise(&vector.id);
    let mut out = vec![Seed {
        target: "frame_decode",
        name: name.clone(),
        data: vector.bytes.clone(),
    }];
    let setup = Setup::new(vector.limits, vector.compression, &vector.extensions);
    for (suffix, sizes) in [("", &[1u8][..]), (".mixed", &[3, 0, 17, 64, 2][..])] {
        let mut data = Vec::new();
        write_chunked_prefix(&setup, true, sizes, &mut data);
        data.extend_from_slice(&vector.bytes);
        out.push(Seed {
            target: "chunked_decode",
            name: format!("{name}{suffix}"),
            data,
        });
    }
    if vector.role.is_some() {
        return out; // A preface, not frames.
    }
    let takeover = vector.compression == Compression::DeflateTakeover;
    let mut window = Decompress::new(false);
    let limit = vector.limits.max_decompressed_size() as usize;
    let (frames, _) = split_frames(&vector.bytes);
    for (n, frame) in frames.iter().enumerate() {
        let compressed = frame.flags & 2 != 0;
        let body = if compressed && vector.compression != Compression::None {
            out.push(Seed {
                target: "inflate",
                name: format!("{name}.{n}"),
                data: frame.body.to_vec(),
            });
            if !takeover {
                window = Decompress::new(false);
            }
            match reference(&mut window, frame.body, takeover, limit) {
                Reference::Ok(v) => v,
                Reference::Bad => break, // A takeover window is lost after a bad body.
            }
        } else {
            frame.body.to_vec()
        };
        if frame.ty == FrameType::CONTAINER {
            out.push(Seed {
                target: "container_decode",
                name: format!("{name}.{n}"),
                data: body,
            });
        }
    }
    out
}

/// One frame as laid out on the wire ([WIRE-4.1]), before any check.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame<'a> {
    /// The Flags value.
    pub flags: u64,
    /// The Type.
    pub ty: FrameType,
    /// The Id, if the ID flag is set.
    pub id: Option<u64>,
    /// The Body bytes.
    pub body: &'a [u8],
    /// The whole frame, header included.
    pub bytes: &'a [u8],
}

/// Reads a varint from the front of `data` (any length form, minimal or not).
pub(crate) fn take_varint(data: &mut &[u8]) -> Option<u64> {
    let (&first, rest) = data.split_first()?;
    let len = 1usize << (first >> 6);
    let tail = rest.get(..len - 1)?;
    let value = tail
        .iter()
        .fold(u64::from(first & 0x3F), |acc, b| (acc << 8) | u64::from(*b));
    *data = &rest[len - 1..];
    Some(value)
}

/// Splits `bytes` into frames as far as they go; returns them and the bytes left over (a cut-off
/// frame). Checks nothing but the layout.
pub fn split_frames(bytes: &[u8]) -> (Vec<RawFrame<'_>>, &[u8]) {
    let mut frames = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut cursor = rest;
        let Some(flags) = take_varint(&mut cursor) else {
            break;
        };
        let Some(ty) = take_varint(&mut cursor).and_then(VarInt::new) else {
            break;
        };
        let id = if flags & 1 != 0 {
            let Some(id) = take_varint(&mut cursor) else {
                break;
            };
            Some(id)
        } else {
            None
        };
        let Some(len) = take_varint(&mut cursor).and_then(|l| usize::try_from(l).ok()) else {
            break;
        };
        let Some(body) = cursor.get(..len) else { break };
        let size = rest.len() - cursor.len() + len;
        frames.push(RawFrame {
            flags,
            ty: FrameType::new(ty),
            id,
            body,
            bytes: &rest[..size],
        });
        rest = &rest[size..];
    }
    (frames, rest)
}
