//! The CLOSE body ([WIRE-10.2]).

use bytes::{Bytes, BytesMut};

use crate::error::{Error, ErrorCode};
use crate::packet::Packet;
use crate::types::FrameType;
use crate::varint::{VarInt, raw_varint};

/// Reasons longer than this are cut (at a character boundary) ([WIRE-10.3]).
pub const MAX_REASON_LEN: usize = 256;

/// A decoded CLOSE: code, offending frame type, reason for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    code: ErrorCode,
    frame_type: Option<FrameType>,
    reason: String,
}

impl Close {
    /// A CLOSE with `code`, the offending `frame_type` (if any) and a reason, cut to
    /// [`MAX_REASON_LEN`] bytes.
    pub fn new(code: ErrorCode, frame_type: Option<FrameType>, reason: impl Into<String>) -> Close {
        let mut reason = reason.into();
        if reason.len() > MAX_REASON_LEN {
            let mut cut = MAX_REASON_LEN;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        Close {
            code,
            frame_type,
            reason,
        }
    }

    /// The CLOSE that reports `error` ([WIRE-10.1]).
    pub fn for_error(error: &Error) -> Close {
        Close::new(error.code(), error.frame_type(), error.to_string())
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The offending frame type (none if the wire value was 0).
    pub fn frame_type(&self) -> Option<FrameType> {
        self.frame_type
    }

    /// The reason text.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The CLOSE packet.
    pub fn to_packet(&self) -> Packet {
        let mut body = BytesMut::new();
        VarInt::new(self.code.0)
            .unwrap_or(VarInt::MAX)
            .encode(&mut body);
        self.frame_type
            .map_or(VarInt::ZERO, FrameType::value)
            .encode(&mut body);
        body.extend_from_slice(self.reason.as_bytes());
        Packet::new(FrameType::CLOSE, body.freeze())
    }

    /// Parses a CLOSE body. Invalid UTF-8 in the reason is replaced, never an error
    /// ([WIRE-10.3]); missing or overlong integers are [`Error::MalformedClose`].
    pub fn decode(body: &Bytes) -> Result<Close, Error> {
        let (rest, code) = raw_varint(body).map_err(|_| Error::MalformedClose)?;
        let (rest, ty) = raw_varint(rest).map_err(|_| Error::MalformedClose)?;
        if !code.is_minimal() || !ty.is_minimal() {
            return Err(Error::MalformedClose);
        }
        let frame_type = VarInt::new(ty.value)
            .filter(|v| v.into_inner() != 0)
            .map(FrameType::new);
        Ok(Close::new(
            ErrorCode(code.value),
            frame_type,
            String::from_utf8_lossy(rest).into_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_lossy_reason() {
        let close = Close::new(ErrorCode::FRAME_TOO_LARGE, Some(FrameType::SEND), "too big");
        let packet = close.to_packet();
        assert_eq!(&packet.body()[..3], [0x03, 0x12, b't']);
        assert_eq!(Close::decode(packet.body()).expect("valid"), close);

        let odd = Bytes::from_static(&[0x00, 0x00, 0xFF, b'x']);
        let parsed = Close::decode(&odd).expect("lossy reason is fine");
        assert_eq!(parsed.code(), ErrorCode::NO_ERROR);
        assert_eq!(parsed.frame_type(), None);
        assert_eq!(parsed.reason(), "\u{FFFD}x");
    }

    #[test]
    fn malformed_bodies() {
        for body in [&[][..], &[0x03], &[0x40, 0x03, 0x12]] {
            assert!(matches!(
                Close::decode(&Bytes::copy_from_slice(body)),
                Err(Error::MalformedClose)
            ));
        }
    }

    #[test]
    fn long_reasons_are_cut_on_a_char_boundary() {
        let close = Close::new(ErrorCode::PROTOCOL_ERROR, None, "é".repeat(200));
        assert!(close.reason().len() <= MAX_REASON_LEN);
        assert_eq!(close.reason().len() % 2, 0);
    }
}
