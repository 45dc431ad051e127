//! The Magpie wire test vectors (`spec/vectors/*.json`, format in `spec/wire.md` §12), generated
//! from structured descriptions. `cargo run -p magpie-vectors` writes them; the test in
//! `tests/fresh.rs` fails when the checked-in files differ from what this crate generates.

pub mod model;
mod preface;
mod suites;
mod tokens;

use serde::Serialize;

use model::{Frame, PacketJson, Takeover};

/// Settings a vector assumes (`spec/wire.md` §6, §7).
#[derive(Serialize, Clone, Debug)]
pub struct Settings {
    /// Receiver's `max_frame_size`.
    pub max_frame_size: u32,
    /// Receiver's `max_decompressed_size`.
    pub max_decompressed_size: u32,
    /// Receiver's `max_container_packets`.
    pub max_container_packets: u16,
    /// "none", "deflate" or "deflate-takeover".
    pub compression: &'static str,
    /// Negotiated extension types.
    pub extensions: Vec<u64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_frame_size: 262_144,
            max_decompressed_size: 1_048_576,
            max_container_packets: 64,
            compression: "none",
            extensions: Vec::new(),
        }
    }
}

/// The floors of `spec/wire.md` §6.
pub fn floor_settings() -> Settings {
    Settings {
        max_frame_size: 16_384,
        max_decompressed_size: 16_384,
        max_container_packets: 16,
        ..Settings::default()
    }
}

/// An expected connection error.
#[derive(Serialize, Clone, Debug)]
pub struct ErrorJson {
    /// Code number (`spec/wire.md` §10.3).
    pub code: u64,
    /// Registry name.
    pub name: &'static str,
}

/// The error registry of `spec/wire.md` §10.3, by name.
pub fn error(name: &'static str) -> ErrorJson {
    let code = match name {
        "PROTOCOL_ERROR" => 0x01,
        "MALFORMED" => 0x02,
        "FRAME_TOO_LARGE" => 0x03,
        "DECOMPRESSION_LIMIT" => 0x04,
        "UNSUPPORTED_VERSION" => 0x05,
        "CONTAINER_INVALID" => 0x06,
        "COMPRESSION_ERROR" => 0x07,
        other => panic!("no such code in the registry: {other}"),
    };
    ErrorJson { code, name }
}

/// One frame-stream vector.
#[derive(Serialize, Clone, Debug)]
pub struct Vector {
    /// Stable id.
    pub id: String,
    /// What it shows.
    pub description: String,
    /// Clause ids it illustrates.
    pub clauses: Vec<&'static str>,
    /// What the receiver assumes.
    pub settings: Settings,
    /// The bytes, lowercase hex.
    pub hex: String,
    /// Packets delivered (before the error, for error vectors).
    pub packets: Vec<PacketJson>,
    /// Ends on a frame boundary (absent for error vectors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complete: Option<bool>,
    /// "per-packet" / "merged": the reference encoder writes exactly `hex` for `packets`
    /// flushing each packet alone / pushing all then flushing once. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canonical: Option<&'static str>,
    /// The connection error the bytes end in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorJson>,
}

/// Builds a vector from frames: `frames` are valid, then optionally one bad frame (raw bytes
/// from its description) that must end in `error`.
pub struct Case {
    id: String,
    description: String,
    clauses: Vec<&'static str>,
    settings: Settings,
    frames: Vec<Frame>,
    bad: Option<(Vec<u8>, ErrorJson)>,
    truncate: Option<usize>,
}

impl Case {
    /// A case with default settings and no frames.
    pub fn new(id: &str, description: &str, clauses: &[&'static str]) -> Case {
        Case {
            id: id.to_owned(),
            description: description.to_owned(),
            clauses: clauses.to_vec(),
            settings: Settings::default(),
            frames: Vec::new(),
            bad: None,
            truncate: None,
        }
    }

    /// Sets the settings.
    pub fn settings(mut self, settings: Settings) -> Case {
        self.settings = settings;
        self
    }

    /// Appends a valid frame.
    pub fn frame(mut self, frame: Frame) -> Case {
        self.frames.push(frame);
        self
    }

    /// Ends the stream with a frame that must fail with `error`.
    pub fn fails(mut self, bad: Frame, error_name: &'static str) -> Case {
        self.bad = Some((bad.encode(&mut Takeover::new()), error(error_name)));
        self
    }

    /// Ends the stream with raw bytes that must fail with `error`.
    pub fn fails_raw(mut self, bytes: Vec<u8>, error_name: &'static str) -> Case {
        self.bad = Some((bytes, error(error_name)));
        self
    }

    /// Keeps only the first `n` bytes.
    pub fn truncate(mut self, n: usize) -> Case {
        self.truncate = Some(n);
        self
    }

    /// Total bytes of the valid frames.
    pub fn len(&self) -> usize {
        let mut t = Takeover::new();
        self.frames.iter().map(|f| f.encode(&mut t).len()).sum()
    }

    /// Whether there are no frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The vector.
    pub fn build(self) -> Vector {
        let ext = &self.settings.extensions;
        let mut takeover = Takeover::new();
        let mut hex_bytes = Vec::new();
        let mut packets = Vec::new();
        let mut boundary = self.truncate == Some(0);
        for frame in &self.frames {
            let bytes = frame.encode(&mut takeover);
            let end = hex_bytes.len() + bytes.len();
            hex_bytes.extend(bytes);
            // Under truncation only the frames that arrive whole are delivered.
            if self.truncate.is_none_or(|n| end <= n) {
                packets.extend(frame.delivered(ext));
            }
            boundary |= self.truncate == Some(end);
        }
        let canonical = if self.bad.is_some() || self.truncate.is_some() {
            None
        } else if !self.frames.is_empty() && self.frames.iter().all(Frame::is_plain) {
            Some("per-packet")
        } else if let [only] = &self.frames[..] {
            match &only.payload {
                model::Payload::Packets(inner)
                    if only.flags == 0 && inner.len() > 1 && inner.iter().all(Frame::is_plain) =>
                {
                    Some("merged")
                }
                _ => None,
            }
        } else {
            None
        };
        let (complete, error) = match self.bad {
            Some((bytes, error)) => {
                hex_bytes.extend(bytes);
                (None, Some(error))
            }
            None => (Some(self.truncate.is_none() || boundary), None),
        };
        if let Some(n) = self.truncate {
            hex_bytes.truncate(n);
        }
        Vector {
            id: self.id,
            description: self.description,
            clauses: self.clauses,
            settings: self.settings,
            hex: hex::encode(hex_bytes),
            packets,
            complete,
            canonical,
            error,
        }
    }
}

/// A vector file.
#[derive(Serialize)]
pub struct VectorFile<T: Serialize> {
    /// Always "wire/1".
    pub spec: &'static str,
    /// The vectors.
    pub vectors: Vec<T>,
}

/// Every vector file: (file name, pretty JSON with a final newline).
pub fn files() -> Vec<(&'static str, String)> {
    fn json<T: Serialize>(vectors: Vec<T>) -> String {
        let file = VectorFile {
            spec: "wire/1",
            vectors,
        };
        let mut s = serde_json::to_string_pretty(&file).expect("vectors serialise");
        s.push('\n');
        s
    }
    vec![
        ("frames.json", json(suites::frames())),
        ("containers.json", json(suites::containers())),
        ("compression.json", json(suites::compression())),
        ("truncation.json", json(suites::truncation())),
        ("preface.json", json(preface::vectors())),
        ("tokens.json", json(tokens::vectors())),
    ]
}
