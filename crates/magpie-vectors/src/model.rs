//! A raw frame model written straight from `spec/wire.md`, independent of the `magpie-wire`
//! codec: frames are described as data (flags, type, id, body, even deliberately wrong widths and
//! lengths), turned into bytes here, and the packets a correct decoder must deliver are derived
//! from the same description. Only the DEFLATE compressor is shared (flate2), because compressed
//! bytes have no single correct form.

use std::io::Write;

use flate2::write::DeflateEncoder;
use serde::Serialize;

/// Type values of `spec/wire.md` §5.4.
pub mod ty {
    /// PING
    pub const PING: u64 = 0x01;
    /// PONG
    pub const PONG: u64 = 0x02;
    /// CONTAINER
    pub const CONTAINER: u64 = 0x03;
    /// CLOSE
    pub const CLOSE: u64 = 0x04;
    /// SEND
    pub const SEND: u64 = 0x12;
    /// SEND_ACK
    pub const SEND_ACK: u64 = 0x13;
    /// PUSH
    pub const PUSH: u64 = 0x14;
    /// A type in the extension range that is not grease.
    pub const EXTENSION: u64 = 0x500;
    /// The first grease type (31·32 + 33).
    pub const GREASE: u64 = 0x401;
    /// An unassigned core type.
    pub const UNASSIGNED: u64 = 0x3F0;
}

/// Flag bits of `spec/wire.md` §4.
pub mod flag {
    /// An Id follows the type.
    pub const ID: u64 = 0x01;
    /// The body is compressed.
    pub const COMPRESSED: u64 = 0x02;
}

fn is_core_assigned(t: u64) -> bool {
    matches!(t, 0x01..=0x04 | 0x10..=0x1E)
}

fn is_grease(t: u64) -> bool {
    t >= 0x400 && t % 31 == 2
}

/// Writes `v` as a varint of `width` bytes (1, 2, 4 or 8), or the minimal width if `None`.
pub fn varint(v: u64, width: Option<usize>) -> Vec<u8> {
    let min = match v {
        0..=63 => 1,
        64..=16_383 => 2,
        16_384..=1_073_741_823 => 4,
        _ => 8,
    };
    let width = width.unwrap_or(min);
    let prefix: u64 = match width {
        1 => 0,
        2 => 1,
        4 => 2,
        _ => 3,
    };
    let full = (prefix << (width * 8 - 2)) | v;
    full.to_be_bytes()[8 - width..].to_vec()
}

/// Raw DEFLATE of `data` as one complete stream (`deflate` mode, [WIRE-7.2]).
pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut enc = DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// A compressor for a `deflate-takeover` stream ([WIRE-7.3]).
pub struct Takeover(DeflateEncoder<Vec<u8>>);

impl Takeover {
    /// A new per-direction stream.
    pub fn new() -> Takeover {
        Takeover(DeflateEncoder::new(Vec::new(), flate2::Compression::new(6)))
    }

    /// Compresses one body: sync flush, `00 00 FF FF` removed.
    pub fn body(&mut self, data: &[u8]) -> Vec<u8> {
        self.0
            .write_all(data)
            .expect("writing to a Vec cannot fail");
        self.0.flush().expect("writing to a Vec cannot fail");
        let mut out = std::mem::take(self.0.get_mut());
        assert!(out.ends_with(&[0, 0, 0xFF, 0xFF]), "sync flush tail");
        out.truncate(out.len() - 4);
        out
    }
}

impl Default for Takeover {
    fn default() -> Self {
        Takeover::new()
    }
}

/// What a frame carries.
#[derive(Clone)]
pub enum Payload {
    /// Body bytes (before compression).
    Bytes(Vec<u8>),
    /// Inner packets of a container (before compression).
    Packets(Vec<Frame>),
    /// Body bytes written as they are, even with the COMPRESSED flag (for broken streams).
    Raw(Vec<u8>),
}

/// How a COMPRESSED frame's body is produced.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Squeeze {
    /// One complete DEFLATE stream.
    Independent,
    /// The next body of the stream's takeover compressor.
    Takeover,
}

/// One frame, described field by field.
#[derive(Clone)]
pub struct Frame {
    /// The Flags value written (may hold reserved bits).
    pub flags: u64,
    /// The Type value.
    pub ty: u64,
    /// The Id value, written when present (whatever the flags say).
    pub id: Option<u64>,
    /// The body.
    pub payload: Payload,
    /// How to compress when COMPRESSED is set and the payload is not raw.
    pub squeeze: Squeeze,
    /// Forced varint widths: flags, type, id, length (overlong encodings).
    pub widths: [Option<usize>; 4],
    /// A Length to write instead of the body's (the body is then written as is).
    pub length: Option<u64>,
}

impl Frame {
    /// A frame with flags 0 and the given type and body.
    pub fn new(ty: u64, body: impl Into<Vec<u8>>) -> Frame {
        Frame {
            flags: 0,
            ty,
            id: None,
            payload: Payload::Bytes(body.into()),
            squeeze: Squeeze::Independent,
            widths: [None; 4],
            length: None,
        }
    }

    /// A frame carrying an id (flag ID set).
    pub fn with_id(ty: u64, id: u64, body: impl Into<Vec<u8>>) -> Frame {
        let mut f = Frame::new(ty, body);
        f.flags |= flag::ID;
        f.id = Some(id);
        f
    }

    /// A container of `inner`.
    pub fn container(inner: Vec<Frame>) -> Frame {
        let mut f = Frame::new(ty::CONTAINER, Vec::new());
        f.payload = Payload::Packets(inner);
        f
    }

    /// Sets COMPRESSED (independent stream).
    pub fn compressed(mut self) -> Frame {
        self.flags |= flag::COMPRESSED;
        self
    }

    /// Sets COMPRESSED, body from the stream's takeover compressor.
    pub fn takeover(mut self) -> Frame {
        self.flags |= flag::COMPRESSED;
        self.squeeze = Squeeze::Takeover;
        self
    }

    /// Writes an Id field whatever the flags say.
    pub fn with_raw_id(mut self, id: u64) -> Frame {
        self.id = Some(id);
        self
    }

    /// Replaces the flags value.
    pub fn flags(mut self, flags: u64) -> Frame {
        self.flags = flags;
        self
    }

    /// Forces varint widths (flags, type, id, length).
    pub fn widths(mut self, widths: [Option<usize>; 4]) -> Frame {
        self.widths = widths;
        self
    }

    /// Writes `length` as the Length field, whatever the body.
    pub fn length(mut self, length: u64) -> Frame {
        self.length = Some(length);
        self
    }

    /// Writes the body bytes as given, even if COMPRESSED is set.
    pub fn raw(mut self, body: impl Into<Vec<u8>>) -> Frame {
        self.payload = Payload::Raw(body.into());
        self
    }

    /// The uncompressed body bytes.
    fn plain_body(&self, takeover: &mut Takeover) -> Vec<u8> {
        match &self.payload {
            Payload::Bytes(b) | Payload::Raw(b) => b.clone(),
            Payload::Packets(inner) => inner.iter().flat_map(|f| f.encode(takeover)).collect(),
        }
    }

    /// The frame's bytes.
    pub fn encode(&self, takeover: &mut Takeover) -> Vec<u8> {
        let plain = self.plain_body(takeover);
        let body = match (
            &self.payload,
            self.flags & flag::COMPRESSED != 0,
            self.squeeze,
        ) {
            (Payload::Raw(_), _, _) | (_, false, _) => plain,
            (_, true, Squeeze::Independent) => deflate(&plain),
            (_, true, Squeeze::Takeover) => takeover.body(&plain),
        };
        let [wf, wt, wi, wl] = self.widths;
        let mut out = varint(self.flags, wf);
        out.extend(varint(self.ty, wt));
        if let Some(id) = self.id {
            out.extend(varint(id, wi));
        }
        out.extend(varint(self.length.unwrap_or(body.len() as u64), wl));
        out.extend(body);
        out
    }

    /// The packets a correct decoder delivers for this (valid) frame.
    pub fn delivered(&self, extensions: &[u64]) -> Vec<PacketJson> {
        let deliver =
            is_core_assigned(self.ty) || (!is_grease(self.ty) && extensions.contains(&self.ty));
        match &self.payload {
            Payload::Packets(inner) => inner.iter().flat_map(|f| f.delivered(extensions)).collect(),
            Payload::Bytes(b) | Payload::Raw(b) if deliver => vec![PacketJson {
                r#type: self.ty,
                id: self.id,
                body: hex::encode(b),
            }],
            _ => Vec::new(),
        }
    }

    /// `true` for an uncompressed frame of a delivered type that is not a container: the
    /// reference encoder writes exactly these bytes for its packet.
    pub fn is_plain(&self) -> bool {
        self.flags & flag::COMPRESSED == 0
            && self.widths == [None; 4]
            && self.length.is_none()
            && is_core_assigned(self.ty)
            && matches!(self.payload, Payload::Bytes(_))
    }
}

/// A decoded packet as the vectors give it.
#[derive(Serialize, Clone, PartialEq, Eq, Debug)]
pub struct PacketJson {
    /// Type value.
    pub r#type: u64,
    /// Id, or null.
    pub id: Option<u64>,
    /// Body, lowercase hex.
    pub body: String,
}
