//! Limits and settings ([WIRE-6], [WIRE-7]).
//!
//! [`Limits`] are what a receiver enforces and announces in the handshake. A [`Decoder`] is built
//! with its own limits; an [`Encoder`] with the limits its peer announced.
//!
//! [`Decoder`]: crate::Decoder
//! [`Encoder`]: crate::Encoder

use std::sync::{Arc, OnceLock};

use crate::types::TypeRegistry;

/// A receiver's limits ([WIRE-6]). Fields are private: the setters keep every value between the
/// floor every implementation accepts and the ceiling of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    max_frame_size: u32,
    max_decompressed_size: u32,
    max_container_packets: u16,
}

/// A limit set outside the range the spec allows ([WIRE-6.1]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{limit} = {value} is outside {min}..={max}")]
pub struct LimitOutOfRange {
    /// Which limit.
    pub limit: &'static str,
    /// The value given.
    pub value: u64,
    /// The floor.
    pub min: u64,
    /// The ceiling.
    pub max: u64,
}

fn check(limit: &'static str, value: u64, min: u64, max: u64) -> Result<(), LimitOutOfRange> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(LimitOutOfRange {
            limit,
            value,
            min,
            max,
        })
    }
}

impl Limits {
    /// Floor of `max_frame_size`: every implementation accepts 16 KiB frames.
    pub const MIN_FRAME_SIZE: u32 = 16_384;
    /// Default `max_frame_size`: 256 KiB holds a sync page of many messages and keeps the
    /// worst-case buffer per connection small.
    pub const DEFAULT_FRAME_SIZE: u32 = 262_144;
    /// Ceiling of `max_frame_size`: 2^24 - 1.
    pub const MAX_FRAME_SIZE: u32 = 16_777_215;

    /// Floor of `max_decompressed_size`.
    pub const MIN_DECOMPRESSED_SIZE: u32 = 16_384;
    /// Default `max_decompressed_size`: 1 MiB, a 4:1 ratio on a full default frame and far more
    /// on small ones; bounds what one compressed frame can cost.
    pub const DEFAULT_DECOMPRESSED_SIZE: u32 = 1_048_576;
    /// Ceiling of `max_decompressed_size`: 64 MiB.
    pub const MAX_DECOMPRESSED_SIZE: u32 = 67_108_864;

    /// Floor of `max_container_packets`.
    pub const MIN_CONTAINER_PACKETS: u16 = 16;
    /// Default `max_container_packets`: a whole burst of a busy group chat, and a cap on the work
    /// one frame can cause (HTTP/2's CONTINUATION flood: a byte cap alone does not bound items).
    pub const DEFAULT_CONTAINER_PACKETS: u16 = 64;
    /// Ceiling of `max_container_packets`.
    pub const MAX_CONTAINER_PACKETS: u16 = 1_024;

    /// The floors: what a sender may use before it knows the peer's limits ([WIRE-6.2]).
    pub const FLOOR: Limits = Limits {
        max_frame_size: Self::MIN_FRAME_SIZE,
        max_decompressed_size: Self::MIN_DECOMPRESSED_SIZE,
        max_container_packets: Self::MIN_CONTAINER_PACKETS,
    };

    /// The largest Length a frame may have.
    pub fn max_frame_size(&self) -> u32 {
        self.max_frame_size
    }

    /// The largest size of a body after inflation.
    pub fn max_decompressed_size(&self) -> u32 {
        self.max_decompressed_size
    }

    /// The most packets one container may hold.
    pub fn max_container_packets(&self) -> u16 {
        self.max_container_packets
    }

    /// Sets `max_frame_size` (default 262,144; range 16,384 ..= 16,777,215).
    pub fn set_max_frame_size(&mut self, value: u32) -> Result<&mut Self, LimitOutOfRange> {
        check(
            "max_frame_size",
            value.into(),
            Self::MIN_FRAME_SIZE.into(),
            Self::MAX_FRAME_SIZE.into(),
        )?;
        self.max_frame_size = value;
        Ok(self)
    }

    /// Sets `max_decompressed_size` (default 1,048,576; range 16,384 ..= 67,108,864).
    pub fn set_max_decompressed_size(&mut self, value: u32) -> Result<&mut Self, LimitOutOfRange> {
        check(
            "max_decompressed_size",
            value.into(),
            Self::MIN_DECOMPRESSED_SIZE.into(),
            Self::MAX_DECOMPRESSED_SIZE.into(),
        )?;
        self.max_decompressed_size = value;
        Ok(self)
    }

    /// Sets `max_container_packets` (default 64; range 16 ..= 1,024).
    pub fn set_max_container_packets(&mut self, value: u16) -> Result<&mut Self, LimitOutOfRange> {
        check(
            "max_container_packets",
            value.into(),
            Self::MIN_CONTAINER_PACKETS.into(),
            Self::MAX_CONTAINER_PACKETS.into(),
        )?;
        self.max_container_packets = value;
        Ok(self)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_size: Self::DEFAULT_FRAME_SIZE,
            max_decompressed_size: Self::DEFAULT_DECOMPRESSED_SIZE,
            max_container_packets: Self::DEFAULT_CONTAINER_PACKETS,
        }
    }
}

/// The negotiated compression mode ([WIRE-7]); the same for both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Not negotiated: COMPRESSED is a `COMPRESSION_ERROR` ([WIRE-7.1]).
    #[default]
    None,
    /// Each compressed body is an independent raw DEFLATE stream ([WIRE-7.2]).
    Deflate,
    /// One raw DEFLATE stream per direction, sync-flushed per body ([WIRE-7.3]).
    DeflateTakeover,
}

impl Compression {
    /// The name used in the handshake and in test vectors.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Deflate => "deflate",
            Compression::DeflateTakeover => "deflate-takeover",
        }
    }

    /// A mode from its name.
    pub fn from_name(name: &str) -> Option<Compression> {
        match name {
            "none" => Some(Compression::None),
            "deflate" => Some(Compression::Deflate),
            "deflate-takeover" => Some(Compression::DeflateTakeover),
            _ => None,
        }
    }
}

/// Settings for a [`Decoder`](crate::Decoder): what this side accepts. Decoding only.
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    pub(crate) limits: Limits,
    pub(crate) compression: Compression,
    /// Shared: every connection of a server knows the same types, and the 1,024-bit core set
    /// would otherwise be most of an idle decoder.
    pub(crate) types: Arc<TypeRegistry>,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        static V1: OnceLock<Arc<TypeRegistry>> = OnceLock::new();
        DecoderConfig {
            limits: Limits::default(),
            compression: Compression::default(),
            types: Arc::clone(V1.get_or_init(|| Arc::new(TypeRegistry::v1()))),
        }
    }
}

impl DecoderConfig {
    /// This side's limits (default [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The negotiated compression mode (default none).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// The known core types and negotiated extensions (default [`TypeRegistry::v1`]).
    pub fn types(mut self, types: TypeRegistry) -> Self {
        self.types = Arc::new(types);
        self
    }
}

/// Settings for an [`Encoder`](crate::Encoder): what the peer accepts and how to pack. Encoding
/// only.
#[derive(Debug, Clone)]
pub struct EncoderConfig {
    pub(crate) peer_limits: Limits,
    pub(crate) compression: Compression,
    pub(crate) compression_threshold: usize,
    pub(crate) compression_level: u32,
    pub(crate) merge: bool,
}

impl EncoderConfig {
    /// Default compression threshold: 512 bytes. Measured on a corpus of chat messages (see
    /// `benches/`), deflating ~100-byte bodies one by one saved under half a byte each at a
    /// fixed cost per stream (resetting the compressor's tables), so small packets are left to
    /// containers and takeover streams, where they do compress ([WIRE-7.4]).
    pub const DEFAULT_COMPRESSION_THRESHOLD: usize = 512;
    /// Default DEFLATE level: 6, zlib's own default. Servers that compress for many peers may
    /// want less (`magpied` uses 2: with the zlib-rs backend level 1 is a static-Huffman quick
    /// mode that barely shrinks chat traffic).
    pub const DEFAULT_COMPRESSION_LEVEL: u32 = 6;

    /// The peer's announced limits (default [`Limits::FLOOR`], as required before the handshake,
    /// [WIRE-6.2]).
    pub fn peer_limits(mut self, limits: Limits) -> Self {
        self.peer_limits = limits;
        self
    }

    /// The negotiated compression mode (default none).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Compress only bodies of at least this many bytes (default 512).
    pub fn compression_threshold(mut self, bytes: usize) -> Self {
        self.compression_threshold = bytes;
        self
    }

    /// DEFLATE level, 0 ..= 9 (default 6). Values above 9 are clamped to 9.
    pub fn compression_level(mut self, level: u32) -> Self {
        self.compression_level = level.min(9);
        self
    }

    /// Merge the packets queued at a flush into containers (default on, [WIRE-8.6]).
    pub fn merge(mut self, merge: bool) -> Self {
        self.merge = merge;
        self
    }
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            peer_limits: Limits::FLOOR,
            compression: Compression::None,
            compression_threshold: Self::DEFAULT_COMPRESSION_THRESHOLD,
            compression_level: Self::DEFAULT_COMPRESSION_LEVEL,
            merge: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setters_enforce_floor_and_ceiling() {
        let mut limits = Limits::default();
        assert!(limits.set_max_frame_size(16_383).is_err());
        assert!(limits.set_max_frame_size(16_777_216).is_err());
        assert!(limits.set_max_frame_size(16_384).is_ok());
        assert_eq!(limits.max_frame_size(), 16_384);
        let err = limits.set_max_container_packets(2_000).unwrap_err();
        assert_eq!(err.limit, "max_container_packets");
        assert_eq!(limits.max_container_packets(), 64);
        assert!(limits.set_max_decompressed_size(67_108_864).is_ok());
        assert!(limits.set_max_decompressed_size(67_108_865).is_err());
    }
}
