//! Packet types, flags and the registry of known types ([WIRE-4.2], [WIRE-5]).

use crate::varint::VarInt;

/// A packet type ([WIRE-5]). Unknown values are representable, as the wire allows them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrameType(VarInt);

macro_rules! frame_types {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        impl FrameType {
            $($(#[$doc])* pub const $name: FrameType = FrameType(VarInt::from_u32($value));)*

            /// The registry name of an assigned core type.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(FrameType::$name => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// Every core type assigned by wire version 1 ([WIRE-5.4]).
            pub const ASSIGNED_V1: &'static [FrameType] = &[$(FrameType::$name),*];
        }
    };
}

frame_types! {
    /// Heartbeat request ([WIRE-9.1]).
    PING = 0x01;
    /// Heartbeat reply ([WIRE-9.1]).
    PONG = 0x02;
    /// Several packets merged in one frame ([WIRE-8]).
    CONTAINER = 0x03;
    /// Connection close with an error code ([WIRE-10.2]).
    CLOSE = 0x04;
    /// Client handshake (`spec/session.md`).
    HELLO = 0x10;
    /// Server handshake reply (`spec/session.md`).
    WELCOME = 0x11;
    /// A message to store and deliver (`spec/sync.md`).
    SEND = 0x12;
    /// Commit acknowledgement of a SEND (`spec/sync.md`).
    SEND_ACK = 0x13;
    /// Messages and events pushed to a device (`spec/sync.md`).
    PUSH = 0x14;
    /// Pull request by cursor (`spec/sync.md`).
    SYNC = 0x15;
    /// A page of what was missed (`spec/sync.md`).
    SYNC_REPLY = 0x16;
    /// A request error (`spec/errors.md`).
    REQUEST_ERROR = 0x17;
    /// A page of a conversation's history by seq (`spec/sync.md`).
    HISTORY = 0x18;
    /// The history page (`spec/sync.md`).
    HISTORY_REPLY = 0x19;
    /// Moves a read marker (`spec/sync.md`).
    READ = 0x1A;
    /// Success reply with no body of its own (`spec/session.md`).
    OK = 0x1B;
    /// Watch or unwatch users' presence (`spec/session.md`).
    WATCH = 0x1C;
    /// Presence status query (`spec/session.md`).
    PRESENCE_QUERY = 0x1D;
    /// Presence statuses (`spec/session.md`).
    PRESENCE_REPLY = 0x1E;
    /// A group request (`spec/groups.md`, revision 1.1).
    GROUP = 0x1F;
    /// The group after a request (`spec/groups.md`, revision 1.1).
    GROUP_REPLY = 0x20;
}

impl FrameType {
    /// The last value of the core range ([WIRE-5.1]).
    pub const CORE_MAX: u64 = 0x3FF;
    /// The first value of the extension range ([WIRE-5.2]).
    pub const EXTENSION_MIN: u64 = 0x400;

    /// A frame type from its value.
    pub const fn new(value: VarInt) -> FrameType {
        FrameType(value)
    }

    /// A frame type from a `u32` value.
    pub const fn from_u32(value: u32) -> FrameType {
        FrameType(VarInt::from_u32(value))
    }

    /// The value.
    pub const fn value(self) -> VarInt {
        self.0
    }

    /// Which range the type falls in.
    pub const fn range(self) -> TypeRange {
        let v = self.0.into_inner();
        if v <= Self::CORE_MAX {
            TypeRange::Core
        } else if v % 31 == 2 {
            // [WIRE-5.3]: 31·N + 33 in the extension range.
            TypeRange::Grease
        } else {
            TypeRange::Extension
        }
    }

    /// The `n`th grease type ([WIRE-5.3]), for senders that grease their peers.
    pub fn grease(n: u32) -> FrameType {
        // 0x401 is the first grease value; every 31st value after it is grease too.
        FrameType(VarInt::new(0x401 + 31 * u64::from(n)).unwrap_or(VarInt::from_u32(0x401)))
    }

    /// Types that never carry an Id ([WIRE-4.3]).
    pub(crate) fn forbids_id(self) -> bool {
        matches!(
            self,
            FrameType::PING | FrameType::PONG | FrameType::CONTAINER | FrameType::CLOSE
        )
    }
}

impl std::fmt::Debug for FrameType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "FrameType({:#x})", self.0.into_inner()),
        }
    }
}

impl std::fmt::Display for FrameType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// The three ranges of the type space ([WIRE-5.1] – [WIRE-5.3]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeRange {
    /// `0x000 ..= 0x3FF`: unknown values are a protocol error.
    Core,
    /// `0x400 ..`: skipped unless negotiated.
    Extension,
    /// Extension values with `value % 31 == 2`: always skipped.
    Grease,
}

/// Frame flags ([WIRE-4.2]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Flags(u8);

impl Flags {
    pub(crate) const ID: u8 = 0x01;
    pub(crate) const COMPRESSED: u8 = 0x02;
    const DEFINED: u64 = (Self::ID | Self::COMPRESSED) as u64;

    /// Flags from the wire value, or `None` if a reserved bit is set.
    pub(crate) fn from_wire(value: u64) -> Option<Flags> {
        if value & !Self::DEFINED == 0 {
            // Fits in a u8: only the defined bits are set.
            Some(Flags(value as u8))
        } else {
            None
        }
    }

    pub(crate) fn new(has_id: bool, compressed: bool) -> Flags {
        let mut bits = 0;
        if has_id {
            bits |= Self::ID;
        }
        if compressed {
            bits |= Self::COMPRESSED;
        }
        Flags(bits)
    }

    pub(crate) fn has_id(self) -> bool {
        self.0 & Self::ID != 0
    }

    pub(crate) fn compressed(self) -> bool {
        self.0 & Self::COMPRESSED != 0
    }

    pub(crate) fn bits(self) -> u8 {
        self.0
    }
}

/// What a receiver does with a type ([WIRE-5]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Known core type or negotiated extension: process it.
    Deliver,
    /// Grease or non-negotiated extension: discard the body.
    Skip,
    /// Unassigned core type: `PROTOCOL_ERROR`.
    Unknown,
}

/// The core types a receiver knows and the extension types it negotiated.
///
/// Core types are a fixed 1,024-bit set, so the check on every frame is one bit test.
#[derive(Clone, PartialEq, Eq)]
pub struct TypeRegistry {
    core: [u64; 16],
    extensions: Vec<FrameType>,
}

impl TypeRegistry {
    /// The core types assigned by wire version 1 ([WIRE-5.4]) and no extensions.
    pub fn v1() -> TypeRegistry {
        let mut registry = TypeRegistry {
            core: [0; 16],
            extensions: Vec::new(),
        };
        for ty in FrameType::ASSIGNED_V1 {
            registry.insert_core(*ty);
        }
        registry
    }

    fn insert_core(&mut self, ty: FrameType) {
        let v = ty.value().into_inner() as usize;
        self.core[v / 64] |= 1 << (v % 64);
    }

    /// Marks an extension type as negotiated, so its frames are delivered instead of skipped.
    ///
    /// Returns `false` (and changes nothing) for a core or grease type: those cannot be negotiated.
    pub fn negotiate_extension(&mut self, ty: FrameType) -> bool {
        if ty.range() != TypeRange::Extension {
            return false;
        }
        if !self.extensions.contains(&ty) {
            self.extensions.push(ty);
        }
        true
    }

    /// The negotiated extension types.
    pub fn extensions(&self) -> &[FrameType] {
        &self.extensions
    }

    #[inline]
    pub(crate) fn disposition(&self, ty: FrameType) -> Disposition {
        match ty.range() {
            TypeRange::Core => {
                let v = ty.value().into_inner() as usize;
                if self.core[v / 64] & (1 << (v % 64)) != 0 {
                    Disposition::Deliver
                } else {
                    Disposition::Unknown
                }
            }
            TypeRange::Grease => Disposition::Skip,
            TypeRange::Extension if self.extensions.contains(&ty) => Disposition::Deliver,
            TypeRange::Extension => Disposition::Skip,
        }
    }
}

impl Default for TypeRegistry {
    fn default() -> Self {
        TypeRegistry::v1()
    }
}

impl std::fmt::Debug for TypeRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypeRegistry")
            .field("extensions", &self.extensions)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_grease() {
        assert_eq!(FrameType::SEND.range(), TypeRange::Core);
        assert_eq!(FrameType::from_u32(0x3FF).range(), TypeRange::Core);
        assert_eq!(FrameType::from_u32(0x400).range(), TypeRange::Extension);
        // The examples listed in [WIRE-5.3].
        for v in [0x401, 0x420, 0x43F] {
            assert_eq!(FrameType::from_u32(v).range(), TypeRange::Grease, "{v:#x}");
        }
        for n in 0..100 {
            assert_eq!(FrameType::grease(n).range(), TypeRange::Grease);
        }
    }

    #[test]
    fn registry_dispositions() {
        let mut reg = TypeRegistry::v1();
        assert_eq!(reg.disposition(FrameType::PING), Disposition::Deliver);
        assert_eq!(
            reg.disposition(FrameType::from_u32(0)),
            Disposition::Unknown
        );
        assert_eq!(
            reg.disposition(FrameType::from_u32(0x3F0)),
            Disposition::Unknown
        );
        assert_eq!(reg.disposition(FrameType::grease(3)), Disposition::Skip);
        let ext = FrameType::from_u32(0x500);
        assert_eq!(reg.disposition(ext), Disposition::Skip);
        assert!(reg.negotiate_extension(ext));
        assert_eq!(reg.disposition(ext), Disposition::Deliver);
        assert!(!reg.negotiate_extension(FrameType::grease(0)));
        assert!(!reg.negotiate_extension(FrameType::SEND));
    }

    #[test]
    fn flags_reject_reserved_bits() {
        assert_eq!(Flags::from_wire(3).map(Flags::bits), Some(3));
        assert_eq!(Flags::from_wire(4), None);
        assert_eq!(Flags::from_wire(1 << 40), None);
    }
}
