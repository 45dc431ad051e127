//! A thin tokio-util adapter over the sans-IO [`Decoder`] and [`Encoder`].
//!
//! The preface ([WIRE-2]) is exchanged before framing starts; see [`crate::preface`].

use bytes::BytesMut;

use crate::{Decoder, Encoder, Error, Packet};

/// A `tokio_util::codec` codec for Magpie frames, for use with `Framed`.
///
/// Encoding a single [`Packet`] writes it at once; encoding a `Vec<Packet>` merges the batch into
/// containers ([WIRE-8.6]).
#[derive(Debug, Default)]
pub struct MagpieCodec {
    decoder: Decoder,
    encoder: Encoder,
}

impl MagpieCodec {
    /// A codec from a decoder and an encoder.
    pub fn new(decoder: Decoder, encoder: Encoder) -> MagpieCodec {
        MagpieCodec { decoder, encoder }
    }

    /// The decoder, to apply negotiated settings.
    pub fn decoder_mut(&mut self) -> &mut Decoder {
        &mut self.decoder
    }

    /// The encoder, to apply negotiated settings.
    pub fn encoder_mut(&mut self) -> &mut Encoder {
        &mut self.encoder
    }
}

impl tokio_util::codec::Decoder for MagpieCodec {
    type Item = Packet;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, Error> {
        self.decoder.decode(src)
    }
}

impl tokio_util::codec::Encoder<Packet> for MagpieCodec {
    type Error = Error;

    fn encode(&mut self, item: Packet, dst: &mut BytesMut) -> Result<(), Error> {
        self.encoder.encode(item, dst)
    }
}

impl tokio_util::codec::Encoder<Vec<Packet>> for MagpieCodec {
    type Error = Error;

    fn encode(&mut self, items: Vec<Packet>, dst: &mut BytesMut) -> Result<(), Error> {
        for item in items {
            self.encoder.push(item)?;
        }
        self.encoder.flush(dst)
    }
}
