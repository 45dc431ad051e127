//! Sans-IO codec for the Magpie wire format, version 1 (`spec/wire.md`).
//!
//! This crate contains no networking code and reads no clock. Bytes go in, packets come out, and
//! the reverse; the server, the client, the conformance suite, the fuzzers and the benchmarks all
//! drive the same code.
//!
//! ```text
//!                   ┌──────────── preface (once per stream, [WIRE-2]) ───────────┐
//!   transport ──►   │ read_client_preface / read_server_preface                  │
//!    bytes          └────────────────────────────────────────────────────────────┘
//!      │
//!      ▼            ┌─ Decoder ──────────────────────────────────────────────────┐
//!   BytesMut  ──►   │ header (checked field by field, limits before the body)    │ ──► Packet
//!                   │   → skip (grease, unknown extension) or buffer the body     │     (type, id,
//!                   │   → inflate (bounded) → unpack container (validated whole)  │      Bytes body)
//!                   └────────────────────────────────────────────────────────────┘
//!                   ┌─ Encoder ──────────────────────────────────────────────────┐
//!   Packet ──push─► │ queue → flush: merge into containers → compress → frames    │ ──► BytesMut
//!                   └────────────────────────────────────────────────────────────┘
//! ```
//!
//! ```
//! use bytes::BytesMut;
//! use magpie_wire::{Decoder, Encoder, FrameType, Packet, VarInt};
//!
//! let mut encoder = Encoder::default();
//! let mut wire = BytesMut::new();
//! encoder.encode(Packet::new(FrameType::SEND, &b"hi"[..]).with_id(VarInt::from_u32(7)), &mut wire)?;
//! assert_eq!(&wire[..], [0x01, 0x12, 0x07, 0x02, b'h', b'i']); // spec/wire.md §4
//!
//! let mut decoder = Decoder::default();
//! let packet = decoder.decode(&mut wire)?.expect("a whole frame");
//! assert_eq!(packet.ty(), FrameType::SEND);
//! assert_eq!(&packet.body()[..], b"hi");
//! # Ok::<(), magpie_wire::Error>(())
//! ```

mod close;
#[cfg(feature = "tokio-codec")]
mod codec;
mod compress;
mod config;
mod container;
mod decoder;
mod encoder;
mod error;
mod header;
mod packet;
pub mod preface;
mod types;
mod varint;

pub use close::{Close, MAX_REASON_LEN};
#[cfg(feature = "tokio-codec")]
pub use codec::MagpieCodec;
pub use config::{Compression, DecoderConfig, EncoderConfig, LimitOutOfRange, Limits};
pub use decoder::Decoder;
pub use encoder::Encoder;
pub use error::{ContainerFault, Error, ErrorCode};
pub use packet::Packet;
pub use types::{FrameType, TypeRange, TypeRegistry};
pub use varint::{VarInt, VarIntBoundsExceeded};
