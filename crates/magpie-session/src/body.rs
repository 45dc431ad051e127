//! Typed packet bodies: which protobuf message goes with which wire type (`spec/wire.md` §5.4).

use bytes::{Bytes, BytesMut};
use magpie_proto::v1 as pb;
use magpie_wire::{FrameType, Packet, VarInt};
use prost::Message as _;

macro_rules! bodies {
    ($($variant:ident($msg:ty) = $ty:ident,)*) => {
        /// A session-layer packet body.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Body {
            $(#[allow(missing_docs)] $variant($msg),)*
        }

        impl Body {
            /// The wire type this body travels as.
            pub fn frame_type(&self) -> FrameType {
                match self {
                    $(Body::$variant(_) => FrameType::$ty,)*
                }
            }

            /// Decodes the body of a session-layer packet. `Ok(None)` for wire-layer types
            /// (PING, PONG, CLOSE) and negotiated extensions.
            pub fn decode(ty: FrameType, body: &Bytes) -> Result<Option<Body>, prost::DecodeError> {
                Ok(Some(match ty {
                    $(FrameType::$ty => Body::$variant(<$msg>::decode(body.clone())?),)*
                    _ => return Ok(None),
                }))
            }

            fn encode_body(&self) -> Bytes {
                let mut buf = BytesMut::new();
                let result = match self {
                    $(Body::$variant(m) => { buf.reserve(m.encoded_len()); m.encode(&mut buf) })*
                };
                // Encoding into a BytesMut grows it as needed; it cannot run out of room.
                debug_assert!(result.is_ok());
                buf.freeze()
            }
        }
    };
}

bodies! {
    Hello(pb::Hello) = HELLO,
    Welcome(pb::Welcome) = WELCOME,
    Send(pb::Send) = SEND,
    SendAck(pb::SendAck) = SEND_ACK,
    Push(pb::Push) = PUSH,
    Sync(pb::Sync) = SYNC,
    SyncReply(pb::SyncReply) = SYNC_REPLY,
    RequestError(pb::RequestError) = REQUEST_ERROR,
    History(pb::History) = HISTORY,
    HistoryReply(pb::HistoryReply) = HISTORY_REPLY,
    Read(pb::Read) = READ,
    Ok(pb::Ok) = OK,
    Watch(pb::Watch) = WATCH,
    PresenceQuery(pb::PresenceQuery) = PRESENCE_QUERY,
    PresenceReply(pb::PresenceReply) = PRESENCE_REPLY,
    Group(pb::Group) = GROUP,
    GroupReply(pb::GroupReply) = GROUP_REPLY,
}

impl Body {
    /// The packet for this body, with `id` if given.
    pub fn into_packet(self, id: Option<VarInt>) -> Packet {
        let packet = Packet::new(self.frame_type(), self.encode_body());
        match id {
            Some(id) => packet.with_id(id),
            None => packet,
        }
    }

    /// Requests a client may send once the session is open ([SESSION-1.2]).
    pub(crate) fn is_client_request(&self) -> bool {
        matches!(
            self,
            Body::Send(_)
                | Body::Sync(_)
                | Body::History(_)
                | Body::Read(_)
                | Body::Watch(_)
                | Body::PresenceQuery(_)
                | Body::Group(_)
        )
    }
}

/// A request error body ([ERR-1.1]).
pub fn request_error(code: crate::RequestCode, message: impl Into<String>) -> Body {
    Body::RequestError(pb::RequestError {
        code: code.0,
        message: message.into(),
        retry_after_ms: 0,
    })
}

/// A `RATE_LIMITED` request error ([SESSION-6.4]) saying to wait `retry_after` (rounded up to
/// whole milliseconds, at least 1).
pub fn rate_limited(retry_after: std::time::Duration, message: impl Into<String>) -> Body {
    let ms = retry_after.as_nanos().div_ceil(1_000_000).max(1);
    Body::RequestError(pb::RequestError {
        code: crate::RequestCode::RATE_LIMITED.0,
        message: message.into(),
        retry_after_ms: u32::try_from(ms).unwrap_or(u32::MAX),
    })
}
