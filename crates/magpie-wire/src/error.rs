//! Wire error codes ([WIRE-10.3]) and the crate's error type.

use crate::types::FrameType;

/// A connection error code carried by CLOSE ([WIRE-10.3]). Unknown codes are representable.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub u64);

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        impl ErrorCode {
            $($(#[$doc])* pub const $name: ErrorCode = ErrorCode($value);)*

            /// The registry name, if the code is assigned.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(ErrorCode::$name => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// A code from its registry name.
            pub fn from_name(name: &str) -> Option<ErrorCode> {
                match name {
                    $(stringify!($name) => Some(ErrorCode::$name),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    /// Graceful close.
    NO_ERROR = 0x00;
    /// A rule of the protocol was broken.
    PROTOCOL_ERROR = 0x01;
    /// Bytes that do not parse (an overlong integer, a body that does not hold its fields).
    MALFORMED = 0x02;
    /// Length above the receiver's `max_frame_size`.
    FRAME_TOO_LARGE = 0x03;
    /// A body inflated past `max_decompressed_size`.
    DECOMPRESSION_LIMIT = 0x04;
    /// No common wire version.
    UNSUPPORTED_VERSION = 0x05;
    /// A container broke the rules of [WIRE-8].
    CONTAINER_INVALID = 0x06;
    /// COMPRESSED without negotiation, or a body that is not valid DEFLATE.
    COMPRESSION_ERROR = 0x07;
    /// The peer failed on its own side.
    INTERNAL_ERROR = 0x08;
    /// No frame within the negotiated heartbeat timeout.
    IDLE_TIMEOUT = 0x09;
    /// The server is shutting down.
    GOING_AWAY = 0x0A;
}

impl std::fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "ErrorCode({:#x})", self.0),
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// What was wrong with a container ([WIRE-8]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerFault {
    /// No packets ([WIRE-8.1]).
    Empty,
    /// The CONTAINER frame carried an Id ([WIRE-8.1]).
    HasId,
    /// An inner packet runs past the end of the body ([WIRE-8.1]).
    Overrun,
    /// A container inside a container ([WIRE-8.2]).
    Nested,
    /// An inner packet with the COMPRESSED flag ([WIRE-8.3]).
    InnerCompressed,
    /// More packets than `max_container_packets` ([WIRE-8.4]).
    TooManyPackets {
        /// The receiver's cap.
        limit: u16,
    },
}

impl std::fmt::Display for ContainerFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContainerFault::Empty => f.write_str("empty container"),
            ContainerFault::HasId => f.write_str("container frame carries an id"),
            ContainerFault::Overrun => f.write_str("inner packet runs past the container body"),
            ContainerFault::Nested => f.write_str("nested container"),
            ContainerFault::InnerCompressed => f.write_str("inner packet has the COMPRESSED flag"),
            ContainerFault::TooManyPackets { limit } => {
                write!(f, "more than {limit} packets in a container")
            }
        }
    }
}

/// Everything that can go wrong in this crate.
///
/// Decode errors carry the stream offset of the offending field (bytes since the first frame
/// byte; the preface is not counted) and the frame type where it is known. [`Error::code`] maps
/// each to the code a CLOSE carries; that mapping lives only here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// [WIRE-3.2]: a varint in a longer form than needed.
    #[error("overlong varint encoding for {field} at offset {offset}")]
    NonMinimalVarint {
        /// The header field being read.
        field: &'static str,
        /// Stream offset of the varint.
        offset: u64,
    },
    /// [WIRE-4.2]: a reserved flag bit is set.
    #[error("reserved flag bits set ({flags:#x}) at offset {offset}")]
    ReservedFlags {
        /// The flags value read.
        flags: u64,
        /// Stream offset of the flags.
        offset: u64,
    },
    /// [WIRE-5.1]: an unassigned core type.
    #[error("unknown core packet type {ty} at offset {offset}")]
    UnknownCoreType {
        /// The type read.
        ty: FrameType,
        /// Stream offset of the type.
        offset: u64,
    },
    /// [WIRE-4.3]: an Id on a type that never carries one.
    #[error("{ty} must not carry an id (offset {offset})")]
    UnexpectedId {
        /// The frame type.
        ty: FrameType,
        /// Stream offset of the frame.
        offset: u64,
    },
    /// [WIRE-9.1]: a PING body longer than 64 bytes.
    #[error("PING body of {len} bytes exceeds 64 (offset {offset})")]
    PingTooLong {
        /// The body length.
        len: u64,
        /// Stream offset of the frame.
        offset: u64,
    },
    /// [WIRE-4.5]: the Length field is above `max_frame_size`.
    #[error("frame too large: {len} > {limit} ({ty} at offset {offset})")]
    FrameTooLarge {
        /// The frame type.
        ty: FrameType,
        /// The Length read.
        len: u64,
        /// The receiver's `max_frame_size`.
        limit: u32,
        /// Stream offset of the frame.
        offset: u64,
    },
    /// [WIRE-7.5]: the body inflated past `max_decompressed_size`.
    #[error("{ty} body inflates past max_decompressed_size {limit} (offset {offset})")]
    DecompressionLimit {
        /// The frame type.
        ty: FrameType,
        /// The receiver's `max_decompressed_size`.
        limit: u32,
        /// Stream offset of the frame.
        offset: u64,
    },
    /// [WIRE-7.1]: COMPRESSED set though compression was not negotiated.
    #[error("compressed frame but compression was not negotiated (offset {offset})")]
    CompressionNotNegotiated {
        /// Stream offset of the frame.
        offset: u64,
    },
    /// [WIRE-5.4]: COMPRESSED set on an extension or grease frame.
    #[error("extension frame {ty} must not be compressed (offset {offset})")]
    CompressedExtension {
        /// The frame type.
        ty: FrameType,
        /// Stream offset of the frame.
        offset: u64,
    },
    /// [WIRE-7.2], [WIRE-7.3]: the body is not valid DEFLATE for the negotiated mode.
    #[error("invalid DEFLATE body in {ty}: {reason} (offset {offset})")]
    InvalidDeflate {
        /// The frame type.
        ty: FrameType,
        /// What the inflater found.
        reason: &'static str,
        /// Stream offset of the frame.
        offset: u64,
    },
    /// [WIRE-8]: a container that breaks its rules.
    #[error("invalid container: {fault} (packet {index}, offset {offset})")]
    Container {
        /// What was wrong.
        fault: ContainerFault,
        /// Index of the offending inner packet (0 for faults of the container itself).
        index: usize,
        /// Stream offset of the container frame.
        offset: u64,
    },
    /// [WIRE-2.2]: the stream does not start with the Magpie magic.
    #[error("not a Magpie stream: byte {offset} of the preface is {byte:#04x}")]
    BadMagic {
        /// Position in the preface.
        offset: u64,
        /// The byte found.
        byte: u8,
    },
    /// [WIRE-2.6]: the server's reply is neither the expected preface nor a version rejection.
    #[error("unexpected server preface: version {version:#04x}, offered {offered:#04x}")]
    BadServerPreface {
        /// The version byte the server sent.
        version: u8,
        /// The version the client offered.
        offered: u8,
    },
    /// [WIRE-2.4], [WIRE-2.6]: no common wire version.
    #[error("unsupported wire version {offered}; peer supports {supported:?}")]
    UnsupportedVersion {
        /// The version offered.
        offered: u8,
        /// The versions the server listed (or this side supports).
        supported: Vec<u8>,
    },
    /// [WIRE-10.3]: a CLOSE body that does not hold its two integers.
    #[error("malformed CLOSE body")]
    MalformedClose,
    /// [WIRE-6.4]: a packet that cannot fit the peer's limits was given to the encoder.
    #[error("{ty} body of {len} bytes exceeds the peer's limit of {limit}")]
    PacketTooLarge {
        /// The packet type.
        ty: FrameType,
        /// The body length.
        len: usize,
        /// The limit it breaks.
        limit: u32,
    },
    /// A packet the encoder must not send as given (an Id on PING, a CONTAINER built by hand).
    #[error("cannot send {ty}: {reason}")]
    InvalidPacket {
        /// The packet type.
        ty: FrameType,
        /// Why.
        reason: &'static str,
    },
    /// The decoder already failed; the stream cannot be trusted ([WIRE-10.1]).
    #[error("decoder already failed with {code}")]
    Poisoned {
        /// The code of the first failure.
        code: ErrorCode,
    },
    /// An I/O error from the transport (tokio adapter only).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The wire code a CLOSE carries for this error ([WIRE-10.3]).
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::NonMinimalVarint { .. } | Error::MalformedClose => ErrorCode::MALFORMED,
            Error::ReservedFlags { .. }
            | Error::UnknownCoreType { .. }
            | Error::UnexpectedId { .. }
            | Error::PingTooLong { .. }
            | Error::CompressedExtension { .. }
            | Error::BadMagic { .. }
            | Error::BadServerPreface { .. } => ErrorCode::PROTOCOL_ERROR,
            Error::FrameTooLarge { .. } | Error::PacketTooLarge { .. } => {
                ErrorCode::FRAME_TOO_LARGE
            }
            Error::DecompressionLimit { .. } => ErrorCode::DECOMPRESSION_LIMIT,
            Error::CompressionNotNegotiated { .. } | Error::InvalidDeflate { .. } => {
                ErrorCode::COMPRESSION_ERROR
            }
            Error::Container { .. } => ErrorCode::CONTAINER_INVALID,
            Error::UnsupportedVersion { .. } => ErrorCode::UNSUPPORTED_VERSION,
            Error::InvalidPacket { .. } | Error::Io(_) => ErrorCode::INTERNAL_ERROR,
            Error::Poisoned { code } => *code,
        }
    }

    /// The type of the offending frame, where known; CLOSE carries it ([WIRE-10.2]).
    pub fn frame_type(&self) -> Option<FrameType> {
        match self {
            Error::UnknownCoreType { ty, .. }
            | Error::UnexpectedId { ty, .. }
            | Error::FrameTooLarge { ty, .. }
            | Error::DecompressionLimit { ty, .. }
            | Error::CompressedExtension { ty, .. }
            | Error::InvalidDeflate { ty, .. }
            | Error::PacketTooLarge { ty, .. }
            | Error::InvalidPacket { ty, .. } => Some(*ty),
            Error::PingTooLong { .. } => Some(FrameType::PING),
            Error::Container { .. } => Some(FrameType::CONTAINER),
            Error::MalformedClose => Some(FrameType::CLOSE),
            _ => None,
        }
    }
}
