//! The sans-IO frame decoder.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use crate::compress::Inflater;
use crate::config::{Compression, DecoderConfig, Limits};
use crate::container;
use crate::error::{Error, ErrorCode};
use crate::header::{self, Header, MAX_PING_BODY, Place, Rules};
use crate::packet::Packet;
use crate::types::{Disposition, FrameType, TypeRegistry};

/// Turns bytes from the stream into packets ([WIRE-4] – [WIRE-9]).
///
/// Follows the tokio-util framing contract: [`decode`](Decoder::decode) consumes what it can from
/// the buffer and returns `Ok(None)` when it needs more bytes, which is never an error. Once it has
/// returned an error the stream cannot be trusted ([WIRE-10.1]) and every later call fails with
/// [`Error::Poisoned`].
///
/// Memory: the decoder buffers at most one frame body (bounded by `max_frame_size`, checked from
/// the header before any body byte is kept, [WIRE-4.5]) plus one inflated body (bounded by
/// `max_decompressed_size`). Skipped frames are discarded as they arrive ([WIRE-5.2]).
pub struct Decoder {
    config: DecoderConfig,
    state: State,
    /// Packets of a validated container not yet returned ([WIRE-8.5]).
    pending: VecDeque<Packet>,
    /// Stream bytes consumed so far, for error context.
    offset: u64,
    /// Boxed: the backend's stream state is held inline, and most connections never inflate.
    inflater: Option<Box<Inflater>>,
    failed: Option<ErrorCode>,
    /// Frames that delivered no packet since [`Decoder::take_frames_skipped`] last looked.
    skipped: u64,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Head,
    /// Header read (stream offset of the frame start); waiting for the whole body.
    Body(Header, u64),
    /// Discarding the body of a skipped frame: bytes still to discard.
    Skip(u64),
}

impl Decoder {
    /// A decoder with the given settings.
    pub fn new(config: DecoderConfig) -> Decoder {
        Decoder {
            config,
            state: State::Head,
            pending: VecDeque::new(),
            offset: 0,
            inflater: None,
            failed: None,
            skipped: 0,
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Applies new limits (after the handshake). Takes effect from the next frame header.
    pub fn set_limits(&mut self, limits: Limits) {
        self.config.limits = limits;
    }

    /// Applies the negotiated compression mode. Takes effect from the next frame header.
    pub fn set_compression(&mut self, compression: Compression) {
        if compression != self.config.compression {
            self.inflater = None;
        }
        self.config.compression = compression;
    }

    /// Applies the negotiated types.
    pub fn set_types(&mut self, types: TypeRegistry) {
        self.config.types = std::sync::Arc::new(types);
    }

    /// Bytes of the stream consumed so far (frames only; the preface is read separately).
    pub fn bytes_consumed(&self) -> u64 {
        self.offset
    }

    /// Frames that delivered no packet since the last call: skipped frames ([WIRE-5.2]) and
    /// containers whose packets were all skipped. They cost a receiver work yet deliver nothing,
    /// so a session layer bounds their rate like that of packets (`spec/session.md`
    /// [SESSION-6.6]).
    pub fn take_frames_skipped(&mut self) -> u64 {
        std::mem::take(&mut self.skipped)
    }

    /// `true` when the decoder is between frames with nothing pending: a stream that ends now ends
    /// cleanly. `false` mid-frame (the peer closed with a frame half sent).
    pub fn is_between_frames(&self) -> bool {
        matches!(self.state, State::Head) && self.pending.is_empty()
    }

    /// Decodes the next packet from `src`. `Ok(None)`: more bytes are needed.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, Error> {
        if let Some(code) = self.failed {
            return Err(Error::Poisoned { code });
        }
        match self.decode_inner(src) {
            Ok(packet) => Ok(packet),
            Err(e) => {
                self.failed = Some(e.code());
                self.pending.clear();
                Err(e)
            }
        }
    }

    fn decode_inner(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, Error> {
        loop {
            if let Some(packet) = self.pending.pop_front() {
                return Ok(Some(packet));
            }
            match self.state {
                State::Head => {
                    let rules = Rules {
                        types: &self.config.types,
                        place: Place::Stream {
                            max_frame_size: self.config.limits.max_frame_size(),
                            compression: self.config.compression,
                        },
                    };
                    let Some(head) = header::parse(src, &rules, self.offset)? else {
                        return Ok(None);
                    };
                    let frame_offset = self.offset;
                    src.advance(head.header_len);
                    self.offset += head.header_len as u64;
                    let len = head.len as usize;
                    let plain = !head.flags.compressed() && head.ty != FrameType::CONTAINER;
                    if plain && head.disposition == Disposition::Deliver && src.len() >= len {
                        // Fast path: the whole body is here and needs no further work (the PING
                        // length was checked in the header).
                        self.offset += len as u64;
                        let packet = Packet::new(head.ty, src.split_to(len).freeze());
                        return Ok(Some(match head.id {
                            Some(id) => packet.with_id(id),
                            None => packet,
                        }));
                    }
                    self.state = match head.disposition {
                        Disposition::Skip => {
                            self.skipped += 1;
                            State::Skip(head.len)
                        }
                        _ => State::Body(head, frame_offset),
                    };
                }
                State::Skip(remaining) => {
                    let n = remaining.min(src.len() as u64);
                    src.advance(n as usize);
                    self.offset += n;
                    if n < remaining {
                        self.state = State::Skip(remaining - n);
                        return Ok(None);
                    }
                    self.state = State::Head;
                }
                State::Body(head, frame_offset) => {
                    // The length was checked against max_frame_size, so it fits in usize.
                    let len = head.len as usize;
                    if src.len() < len {
                        // Reserve for the rest of the body so the next read can fill it.
                        src.reserve(len - src.len());
                        return Ok(None);
                    }
                    let body = src.split_to(len).freeze();
                    let body_offset = self.offset;
                    self.offset += len as u64;
                    self.state = State::Head;
                    if let Some(packet) = self.finish(head, body, frame_offset, body_offset)? {
                        return Ok(Some(packet));
                    }
                }
            }
        }
    }

    /// Inflates and unpacks one complete frame.
    fn finish(
        &mut self,
        head: Header,
        body: Bytes,
        frame_offset: u64,
        body_offset: u64,
    ) -> Result<Option<Packet>, Error> {
        let (body, base) = if head.flags.compressed() {
            let takeover = self.config.compression == Compression::DeflateTakeover;
            let inflater = self
                .inflater
                .get_or_insert_with(|| Box::new(Inflater::new(takeover)));
            let limit = self.config.limits.max_decompressed_size();
            let inflated = inflater.inflate(&body, limit, head.ty, frame_offset)?;
            (Bytes::from(inflated), frame_offset)
        } else {
            (body, body_offset)
        };
        if head.ty == FrameType::PING && body.len() as u64 > MAX_PING_BODY {
            return Err(Error::PingTooLong {
                len: body.len() as u64,
                offset: frame_offset,
            });
        }
        if head.ty == FrameType::CONTAINER {
            container::parse(
                &body,
                &self.config.types,
                self.config.limits.max_container_packets(),
                base,
                &mut self.pending,
            )
            .map_err(|e| match e {
                Error::Container { fault, index, .. } => Error::Container {
                    fault,
                    index,
                    offset: frame_offset,
                },
                other => other,
            })?;
            let first = self.pending.pop_front();
            if first.is_none() {
                // Every packet in it skipped ([WIRE-5.2]): it counts as a skipped frame.
                self.skipped += 1;
            }
            return Ok(first);
        }
        let mut packet = Packet::new(head.ty, body);
        if let Some(id) = head.id {
            packet = packet.with_id(id);
        }
        Ok(Some(packet))
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DecoderConfig::default())
    }
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("state", &self.state)
            .field("pending", &self.pending.len())
            .field("offset", &self.offset)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
