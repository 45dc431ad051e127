//! The unit the codec carries: a typed packet with an optional id and a body.

use bytes::Bytes;

use crate::header;
use crate::types::FrameType;
use crate::varint::VarInt;

/// A packet: type, optional id, body ([WIRE-4]).
///
/// The body is a [`Bytes`]: on the uncompressed receive path it is a slice of the read buffer, not
/// a copy.
#[derive(Clone, PartialEq, Eq)]
pub struct Packet {
    ty: FrameType,
    id: Option<VarInt>,
    body: Bytes,
}

impl Packet {
    /// A packet without an id.
    pub fn new(ty: FrameType, body: impl Into<Bytes>) -> Packet {
        Packet {
            ty,
            id: None,
            body: body.into(),
        }
    }

    /// The same packet carrying `id` ([WIRE-4.3]).
    pub fn with_id(mut self, id: VarInt) -> Packet {
        self.id = Some(id);
        self
    }

    /// An empty PING: the smallest frame, `00 01 00` ([WIRE-9.1]).
    pub fn ping() -> Packet {
        Packet::new(FrameType::PING, Bytes::new())
    }

    /// The PONG that answers `ping` ([WIRE-9.1]): the same body.
    pub fn pong_for(ping: &Packet) -> Packet {
        Packet::new(FrameType::PONG, ping.body.clone())
    }

    /// The type.
    pub fn ty(&self) -> FrameType {
        self.ty
    }

    /// The id, if the packet carries one.
    pub fn id(&self) -> Option<VarInt> {
        self.id
    }

    /// The body (uncompressed).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Takes the body.
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// The bytes this packet takes as an uncompressed frame, or inside a container.
    pub fn encoded_len(&self) -> usize {
        header::size(self.ty, self.id, self.body.len()) + self.body.len()
    }
}

impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("Packet");
        s.field("ty", &self.ty);
        if let Some(id) = self.id {
            s.field("id", &id.into_inner());
        }
        s.field("body_len", &self.body.len()).finish()
    }
}
