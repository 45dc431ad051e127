//! QUIC-style variable-length integers ([WIRE-3]).
//!
//! The two most significant bits of the first byte give the length (1, 2, 4 or 8 bytes); the rest is
//! the value, big-endian. Only the minimal encoding is accepted ([WIRE-3.2]), so every value has
//! exactly one encoding and frames are canonical.

use bytes::BufMut;
use nom::{IResult, Parser, bytes::streaming::take, number::streaming::be_u8};

/// An integer that fits the Magpie varint encoding: `0 ..= 2^62 - 1`.
///
/// The bound is enforced at construction, so every `VarInt` can be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct VarInt(u64);

impl VarInt {
    /// The largest value: `2^62 - 1`.
    pub const MAX: VarInt = VarInt((1 << 62) - 1);
    /// The longest encoding, in bytes.
    pub const MAX_SIZE: usize = 8;

    /// Zero.
    pub const ZERO: VarInt = VarInt(0);

    /// A `VarInt` from a `u32`; every `u32` fits.
    pub const fn from_u32(value: u32) -> VarInt {
        VarInt(value as u64)
    }

    /// A `VarInt` from a `u64`, or `None` if it is `2^62` or more.
    pub const fn new(value: u64) -> Option<VarInt> {
        if value <= Self::MAX.0 {
            Some(VarInt(value))
        } else {
            None
        }
    }

    /// The value.
    pub const fn into_inner(self) -> u64 {
        self.0
    }

    /// The number of bytes of the minimal encoding.
    pub const fn size(self) -> usize {
        size_of_value(self.0)
    }

    /// Appends the minimal encoding to `dst`.
    pub fn encode<B: BufMut>(self, dst: &mut B) {
        let v = self.0;
        match self.size() {
            1 => dst.put_u8(v as u8),
            2 => dst.put_u16(0x4000 | v as u16),
            4 => dst.put_u32(0x8000_0000 | v as u32),
            _ => dst.put_u64(0xC000_0000_0000_0000 | v),
        }
    }
}

impl From<u32> for VarInt {
    fn from(value: u32) -> Self {
        VarInt::from_u32(value)
    }
}

impl From<u16> for VarInt {
    fn from(value: u16) -> Self {
        VarInt(u64::from(value))
    }
}

impl From<u8> for VarInt {
    fn from(value: u8) -> Self {
        VarInt(u64::from(value))
    }
}

impl TryFrom<u64> for VarInt {
    type Error = VarIntBoundsExceeded;
    fn try_from(value: u64) -> Result<Self, Self::Error> {
        VarInt::new(value).ok_or(VarIntBoundsExceeded(value))
    }
}

impl std::fmt::Display for VarInt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A value of `2^62` or more was given where a [`VarInt`] is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} does not fit a varint (max 2^62-1)")]
pub struct VarIntBoundsExceeded(pub u64);

pub(crate) const fn size_of_value(v: u64) -> usize {
    if v < 1 << 6 {
        1
    } else if v < 1 << 14 {
        2
    } else if v < 1 << 30 {
        4
    } else {
        8
    }
}

/// A varint as read from the wire, before the minimality check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawVarint {
    pub(crate) value: u64,
    /// Bytes it took on the wire.
    pub(crate) len: usize,
}

impl RawVarint {
    /// [WIRE-3.2]: the encoding is minimal.
    pub(crate) fn is_minimal(self) -> bool {
        size_of_value(self.value) == self.len
    }
}

/// Streaming nom parser for one varint: `Err(Incomplete)` until all its bytes are there.
#[inline]
pub(crate) fn raw_varint(input: &[u8]) -> IResult<&[u8], RawVarint> {
    let (rest, first) = be_u8(input)?;
    let len = 1usize << (first >> 6);
    if len == 1 {
        // The common case for flags, types, small ids: no second parser call.
        return Ok((
            rest,
            RawVarint {
                value: u64::from(first),
                len,
            },
        ));
    }
    let (rest, tail) = take(len - 1).parse(rest)?;
    let value = tail
        .iter()
        .fold(u64::from(first & 0x3F), |acc, b| (acc << 8) | u64::from(*b));
    Ok((rest, RawVarint { value, len }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        VarInt::new(v).expect("in range").encode(&mut out);
        out
    }

    #[test]
    fn rfc9000_examples() {
        // RFC 9000 §A.1, repeated in spec/wire.md §3.
        assert_eq!(enc(37), [0x25]);
        assert_eq!(enc(15_293), [0x7B, 0xBD]);
        assert_eq!(enc(494_878_333), [0x9D, 0x7F, 0x3E, 0x7D]);
        assert_eq!(
            enc(151_288_809_941_952_652),
            [0xC2, 0x19, 0x7C, 0x5E, 0xFF, 0x14, 0xE8, 0x8C]
        );
    }

    #[test]
    fn boundaries_pick_the_shortest_form() {
        for (v, len) in [
            (0, 1),
            (63, 1),
            (64, 2),
            (16_383, 2),
            (16_384, 4),
            ((1 << 30) - 1, 4),
            (1 << 30, 8),
            (VarInt::MAX.0, 8),
        ] {
            let bytes = enc(v);
            assert_eq!(bytes.len(), len, "{v}");
            let (rest, raw) = raw_varint(&bytes).expect("complete");
            assert!(rest.is_empty());
            assert_eq!(raw, RawVarint { value: v, len });
            assert!(raw.is_minimal());
        }
        assert_eq!(VarInt::new(VarInt::MAX.0 + 1), None);
    }

    #[test]
    fn overlong_is_detected() {
        let (_, raw) = raw_varint(&[0x40, 0x25]).expect("complete");
        assert_eq!(raw.value, 37);
        assert!(!raw.is_minimal());
    }

    #[test]
    fn partial_input_is_incomplete_not_an_error() {
        for prefix in [&[][..], &[0x80], &[0x80, 0, 0], &[0xC0, 1, 2, 3, 4, 5, 6]] {
            assert!(matches!(raw_varint(prefix), Err(nom::Err::Incomplete(_))));
        }
    }
}
