//! The frame header ([WIRE-4]): parsed field by field, each field checked as soon as it is read,
//! so a bad frame fails at its first bad byte rather than when the whole header has arrived.

use bytes::BufMut;

use crate::config::Compression;
use crate::error::{ContainerFault, Error};
use crate::types::{Disposition, Flags, FrameType, TypeRange, TypeRegistry};
use crate::varint::{RawVarint, VarInt, raw_varint};

/// A parsed and validated header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) flags: Flags,
    pub(crate) ty: FrameType,
    pub(crate) id: Option<VarInt>,
    /// Body bytes on the wire ([WIRE-4.4]).
    pub(crate) len: u64,
    /// Bytes the header itself took.
    pub(crate) header_len: usize,
    pub(crate) disposition: Disposition,
}

/// Where a header is read: at the top of the stream, or inside a container ([WIRE-8.3]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Place {
    Stream {
        max_frame_size: u32,
        compression: Compression,
    },
    Container,
}

/// The rules a header is checked against.
pub(crate) struct Rules<'a> {
    pub(crate) types: &'a TypeRegistry,
    pub(crate) place: Place,
}

/// The largest PING body ([WIRE-9.1]).
pub(crate) const MAX_PING_BODY: u64 = 64;

#[inline]
/// Reads one varint at `pos`, insisting on the minimal form ([WIRE-3.2]).
/// `Ok(None)`: more bytes are needed.
fn field(
    input: &[u8],
    pos: &mut usize,
    name: &'static str,
    offset: u64,
) -> Result<Option<u64>, Error> {
    let rest = input.get(*pos..).unwrap_or_default();
    match raw_varint(rest) {
        Ok((_, raw @ RawVarint { value, len })) => {
            if !raw.is_minimal() {
                return Err(Error::NonMinimalVarint {
                    field: name,
                    offset: offset + *pos as u64,
                });
            }
            *pos += len;
            Ok(Some(value))
        }
        Err(nom::Err::Incomplete(_)) => Ok(None),
        // The varint parser has no failure case other than running out of input.
        Err(_) => Ok(None),
    }
}

macro_rules! need {
    ($e:expr) => {
        match $e? {
            Some(v) => v,
            None => return Ok(None),
        }
    };
}

/// Parses the header at the start of `input`. `offset` is the stream offset of `input[0]`, used
/// only for error context. `Ok(None)`: the header is not complete yet, and nothing read so far
/// breaks a rule.
#[inline]
pub(crate) fn parse(input: &[u8], rules: &Rules<'_>, offset: u64) -> Result<Option<Header>, Error> {
    let mut pos = 0;

    // [WIRE-4.2] Flags: reserved bits fail as soon as the field is read.
    let raw_flags = need!(field(input, &mut pos, "flags", offset));
    let Some(flags) = Flags::from_wire(raw_flags) else {
        return Err(Error::ReservedFlags {
            flags: raw_flags,
            offset,
        });
    };
    match rules.place {
        Place::Container if flags.compressed() => {
            return Err(container(ContainerFault::InnerCompressed, offset));
        }
        // [WIRE-7.1]
        Place::Stream {
            compression: Compression::None,
            ..
        } if flags.compressed() => return Err(Error::CompressionNotNegotiated { offset }),
        _ => {}
    }

    // [WIRE-5.1] Type: unknown core types fail as soon as the field is read.
    let type_offset = offset + pos as u64;
    let raw_type = need!(field(input, &mut pos, "type", offset));
    let ty = FrameType::new(VarInt::new(raw_type).unwrap_or(VarInt::MAX));
    let disposition = rules.types.disposition(ty);
    if disposition == Disposition::Unknown {
        return Err(Error::UnknownCoreType {
            ty,
            offset: type_offset,
        });
    }
    if ty == FrameType::CONTAINER {
        match rules.place {
            Place::Container => return Err(container(ContainerFault::Nested, offset)),
            Place::Stream { .. } if flags.has_id() => {
                return Err(container(ContainerFault::HasId, offset));
            }
            Place::Stream { .. } => {}
        }
    } else if flags.has_id() && ty.forbids_id() {
        // [WIRE-4.3]
        return Err(Error::UnexpectedId { ty, offset });
    }
    if flags.compressed() && ty.range() != TypeRange::Core {
        // [WIRE-5.4]
        return Err(Error::CompressedExtension { ty, offset });
    }

    // [WIRE-4.3] Id, present iff the ID flag is set.
    let id = if flags.has_id() {
        let value = need!(field(input, &mut pos, "id", offset));
        Some(VarInt::new(value).unwrap_or(VarInt::MAX))
    } else {
        None
    };

    // [WIRE-4.5] Length, checked against the limit before any body byte is read.
    let len = need!(field(input, &mut pos, "length", offset));
    if let Place::Stream { max_frame_size, .. } = rules.place
        && len > u64::from(max_frame_size)
    {
        return Err(Error::FrameTooLarge {
            ty,
            len,
            limit: max_frame_size,
            offset,
        });
    }
    if ty == FrameType::PING && len > MAX_PING_BODY && !flags.compressed() {
        // [WIRE-9.1]; a compressed PING is checked after inflation.
        return Err(Error::PingTooLong { len, offset });
    }

    Ok(Some(Header {
        flags,
        ty,
        id,
        len,
        header_len: pos,
        disposition,
    }))
}

pub(crate) fn container(fault: ContainerFault, offset: u64) -> Error {
    Error::Container {
        fault,
        index: 0,
        offset,
    }
}

/// Writes a header ([WIRE-4.1]).
pub(crate) fn write<B: BufMut>(
    dst: &mut B,
    ty: FrameType,
    id: Option<VarInt>,
    compressed: bool,
    len: usize,
) {
    let flags = Flags::new(id.is_some(), compressed);
    VarInt::from(flags.bits()).encode(dst);
    ty.value().encode(dst);
    if let Some(id) = id {
        id.encode(dst);
    }
    // Bodies are bounded by Limits::MAX_FRAME_SIZE (< 2^24) long before they reach 2^62.
    VarInt::new(len as u64).unwrap_or(VarInt::MAX).encode(dst);
}

/// The size of the header [`write`] writes.
pub(crate) fn size(ty: FrameType, id: Option<VarInt>, len: usize) -> usize {
    1 + ty.value().size() + id.map_or(0, VarInt::size) + crate::varint::size_of_value(len as u64)
}
