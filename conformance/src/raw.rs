//! The suite's own frame builder: independent of the reference encoder, so it can write invalid,
//! overlong, oversize and truncated frames on purpose.

/// A minimal QUIC varint ([WIRE-3.1]).
pub(crate) fn varint(v: u64) -> Vec<u8> {
    let len = if v < 64 {
        1
    } else if v < 16_384 {
        2
    } else if v < 1 << 30 {
        4
    } else {
        8
    };
    varint_len(v, len)
}

/// `v` in exactly `len` bytes (1, 2, 4 or 8): longer than minimal on purpose when asked.
pub(crate) fn varint_len(v: u64, len: usize) -> Vec<u8> {
    let tag: u8 = match len {
        1 => 0x00,
        2 => 0x40,
        4 => 0x80,
        _ => 0xC0,
    };
    let bytes = v.to_be_bytes();
    let mut out = bytes[8 - len..].to_vec();
    out[0] |= tag;
    out
}

/// Flags, Type, [Id], Length, Body ([WIRE-4.1]).
pub(crate) fn frame(flags: u64, ty: u64, id: Option<u64>, body: &[u8]) -> Vec<u8> {
    let mut out = varint(flags);
    out.extend(varint(ty));
    if let Some(id) = id {
        out.extend(varint(id));
    }
    out.extend(varint(body.len() as u64));
    out.extend_from_slice(body);
    out
}

/// A frame header announcing `len` body bytes, without the body.
pub(crate) fn header(flags: u64, ty: u64, id: Option<u64>, len: u64) -> Vec<u8> {
    let mut out = varint(flags);
    out.extend(varint(ty));
    if let Some(id) = id {
        out.extend(varint(id));
    }
    out.extend(varint(len));
    out
}

/// The v1 client preface.
pub(crate) const PREFACE: [u8; 5] = [0x4D, 0x41, 0x47, 0x50, 0x01];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        assert_eq!(varint(37), [0x25]);
        assert_eq!(varint(15_293), [0x7B, 0xBD]);
        assert_eq!(varint(494_878_333), [0x9D, 0x7F, 0x3E, 0x7D]);
        assert_eq!(
            varint(151_288_809_941_952_652),
            [0xC2, 0x19, 0x7C, 0x5E, 0xFF, 0x14, 0xE8, 0x8C]
        );
        assert_eq!(varint_len(37, 2), [0x40, 0x25]);
        assert_eq!(
            frame(1, 0x12, Some(7), b"hi"),
            [0x01, 0x12, 0x07, 0x02, b'h', b'i']
        );
    }
}
