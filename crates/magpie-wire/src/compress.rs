//! Raw DEFLATE bodies ([WIRE-7]) with bounded inflation ([WIRE-7.5]).
//!
//! flate2 (zlib-rs backend) does the DEFLATE work; this module only adds what the spec needs
//! on top: the per-frame vs. takeover stream modes, the sync-flush tail handling of [WIRE-7.3], and
//! an output bound that stops at `limit + 1` bytes without ever allocating more.

use flate2::{Compress, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::Error;
use crate::types::FrameType;

/// The four bytes a sync flush ends with; removed on the wire in takeover mode ([WIRE-7.3]).
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// A sender's compressor. Allocated on first use: a connection that never compresses never pays
/// for the several hundred KiB of DEFLATE state.
pub(crate) struct Deflater {
    inner: Compress,
    takeover: bool,
}

impl Deflater {
    pub(crate) fn new(level: u32, takeover: bool) -> Deflater {
        Deflater {
            inner: Compress::new(flate2::Compression::new(level), false),
            takeover,
        }
    }

    /// Compresses `input` into `out` (cleared first): one complete stream, or in takeover mode
    /// the next sync-flushed piece of the connection's stream without its `00 00 FF FF` tail.
    pub(crate) fn compress(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        ty: FrameType,
    ) -> Result<(), Error> {
        out.clear();
        let failed = |_| Error::InvalidPacket {
            ty,
            reason: "compressor failed",
        };
        if !self.takeover {
            self.inner.reset();
            let start = self.inner.total_in();
            loop {
                reserve(out, input.len());
                let consumed = self.consumed_since(start, input.len());
                let status = self
                    .inner
                    .compress_vec(&input[consumed..], out, FlushCompress::Finish)
                    .map_err(failed)?;
                if status == Status::StreamEnd {
                    return Ok(());
                }
            }
        }
        // Takeover: one sync-flush call with room for DEFLATE's worst case. A backend may
        // complete a sync flush (the empty stored block ending `00 00 FF FF`) only in the call
        // that still has room for it (miniz_oxide, the backend before zlib-rs, did so): a flush
        // that had to pause for output space resumes in a later call *without* its trailing
        // block, and the remainder would then lead the next frame's body (found by the
        // roundtrip fuzz target; pinned in fuzz/tests/regressions.rs).
        if input.is_empty() {
            // zlib refuses a second sync flush with no input in between (Z_BUF_ERROR, nothing
            // written), so write what that flush is: an empty stored block, whose byte-aligned
            // header `00` precedes the `00 00 FF FF` the wire leaves out.
            out.push(0x00);
            return Ok(());
        }
        let start = self.inner.total_in();
        out.reserve(input.len() + input.len() / 4 + 1024);
        self.inner
            .compress_vec(input, out, FlushCompress::Sync)
            .map_err(failed)?;
        if self.consumed_since(start, input.len()) == input.len() && out.ends_with(&SYNC_TAIL) {
            out.truncate(out.len() - SYNC_TAIL.len());
            Ok(())
        } else {
            // The stream is now out of step with the peer's: the encoder refuses to go on.
            Err(Error::InvalidPacket {
                ty,
                reason: "compressor did not complete its sync flush",
            })
        }
    }

    fn consumed_since(&self, start: u64, len: usize) -> usize {
        usize::try_from(self.inner.total_in() - start).map_or(len, |n| n.min(len))
    }
}

/// Makes sure `out` has spare room for the compressor to write into.
fn reserve(out: &mut Vec<u8>, hint: usize) {
    if out.capacity() - out.len() < 64 {
        out.reserve(hint / 2 + 128);
    }
}

/// A receiver's inflater, bounded by `max_decompressed_size`.
pub(crate) struct Inflater {
    inner: Decompress,
    takeover: bool,
}

impl Inflater {
    pub(crate) fn new(takeover: bool) -> Inflater {
        Inflater {
            inner: Decompress::new(false),
            takeover,
        }
    }

    /// Inflates one body. Never holds more than `limit + 1` bytes of output ([WIRE-7.5]).
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        limit: u32,
        ty: FrameType,
        offset: u64,
    ) -> Result<Vec<u8>, Error> {
        let invalid = |reason| Error::InvalidDeflate { ty, reason, offset };
        let over = || Error::DecompressionLimit { ty, limit, offset };
        if !self.takeover {
            self.inner.reset(false);
        }
        let bound = limit as usize + 1;
        let tail: &[u8] = if self.takeover { &SYNC_TAIL } else { &[] };
        let total = input.len() + tail.len();
        let start = self.inner.total_in();
        let mut out: Vec<u8> =
            Vec::with_capacity(bound.min(input.len().saturating_mul(4).max(256)));
        loop {
            if out.len() == out.capacity() {
                if out.len() >= bound {
                    return Err(over());
                }
                let grow = out.capacity().max(256).min(bound - out.len());
                out.reserve_exact(grow);
            }
            let consumed = usize::try_from(self.inner.total_in() - start).unwrap_or(total);
            let src = if consumed < input.len() {
                &input[consumed..]
            } else {
                tail.get(consumed - input.len()..).unwrap_or_default()
            };
            let before = (self.inner.total_in(), self.inner.total_out());
            let status = self
                .inner
                .decompress_vec(src, &mut out, FlushDecompress::None)
                .map_err(|_| invalid("not a valid DEFLATE stream"))?;
            if out.len() > limit as usize {
                return Err(over());
            }
            let consumed = usize::try_from(self.inner.total_in() - start).unwrap_or(total);
            match status {
                Status::StreamEnd if self.takeover => {
                    return Err(invalid("final block (BFINAL) in a takeover stream"));
                }
                Status::StreamEnd if consumed != input.len() => {
                    return Err(invalid("bytes after the end of the DEFLATE stream"));
                }
                Status::StreamEnd => return Ok(out),
                Status::Ok | Status::BufError => {
                    let has_room = out.len() < out.capacity();
                    if consumed == total && has_room {
                        // All input used and the inflater stopped with room to spare: it has
                        // nothing more to give.
                        if self.takeover {
                            return Ok(out);
                        }
                        return Err(invalid("stream ends before its final block"));
                    }
                    let progressed = before != (self.inner.total_in(), self.inner.total_out());
                    if !progressed && has_room {
                        return Err(invalid("inflater made no progress"));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(takeover: bool, bodies: &[&[u8]]) {
        let mut d = Deflater::new(6, takeover);
        let mut i = Inflater::new(takeover);
        let mut buf = Vec::new();
        for body in bodies {
            d.compress(body, &mut buf, FrameType::SEND)
                .expect("compress");
            let out = i
                .inflate(&buf, 1 << 20, FrameType::SEND, 0)
                .expect("inflate");
            assert_eq!(&out[..], *body);
        }
    }

    #[test]
    fn independent_and_takeover_roundtrip() {
        let bodies: [&[u8]; 4] = [
            b"hello hello hello",
            b"",
            &[7u8; 5000],
            b"hello again hello",
        ];
        roundtrip(false, &bodies);
        roundtrip(true, &bodies);
    }

    #[test]
    fn takeover_shrinks_repeats() {
        let mut d = Deflater::new(6, true);
        let mut buf = Vec::new();
        let msg = b"{\"type\":\"text\",\"text\":\"see you at the station at six\"}";
        d.compress(msg, &mut buf, FrameType::SEND)
            .expect("compress");
        let first = buf.len();
        d.compress(msg, &mut buf, FrameType::SEND)
            .expect("compress");
        assert!(
            buf.len() < first / 3,
            "second copy {} vs first {first}",
            buf.len()
        );
    }

    #[test]
    fn inflation_bound_is_exact() {
        let mut d = Deflater::new(6, false);
        let mut buf = Vec::new();
        let body = vec![0u8; 20_000];
        d.compress(&body, &mut buf, FrameType::SEND)
            .expect("compress");
        let mut i = Inflater::new(false);
        assert_eq!(
            i.inflate(&buf, 20_000, FrameType::SEND, 0)
                .expect("at limit")
                .len(),
            20_000
        );
        let err = i.inflate(&buf, 19_999, FrameType::SEND, 0).unwrap_err();
        assert!(
            matches!(err, Error::DecompressionLimit { limit: 19_999, .. }),
            "{err}"
        );
    }

    #[test]
    fn truncated_and_trailing_streams_fail() {
        let mut d = Deflater::new(6, false);
        let mut buf = Vec::new();
        d.compress(&[1u8; 300], &mut buf, FrameType::SEND)
            .expect("compress");
        let mut i = Inflater::new(false);
        let cut = &buf[..buf.len() - 1];
        assert!(matches!(
            i.inflate(cut, 1 << 20, FrameType::SEND, 0),
            Err(Error::InvalidDeflate { .. })
        ));
        let mut extra = buf.clone();
        extra.push(0);
        assert!(matches!(
            i.inflate(&extra, 1 << 20, FrameType::SEND, 0),
            Err(Error::InvalidDeflate { .. })
        ));
        assert!(matches!(
            i.inflate(&[0xFF, 0xFF, 0xFF], 1 << 20, FrameType::SEND, 0),
            Err(Error::InvalidDeflate { .. })
        ));
    }
}
