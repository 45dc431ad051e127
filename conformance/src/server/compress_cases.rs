//! Cases that need compression negotiated ([WIRE-5.4], [WIRE-7.2], [WIRE-7.5]).

use std::io::Write as _;

use magpie_session::pb;
use magpie_wire::Compression;

use crate::case::{Case, Level, Outcome, Verdict};
use crate::conn::{Conn, WAIT};
use crate::raw::frame;
use crate::server::{fresh, hello_for, judge_close, send_many, server};

const PROTOCOL_ERROR: u64 = 0x01;
const DECOMPRESSION_LIMIT: u64 = 0x04;
const COMPRESSION_ERROR: u64 = 0x07;

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// Logs in asking for `deflate`, sends `bytes(max_decompressed_size)`, expects CLOSE `code`.
fn neg(
    path: &str,
    clauses: &[&str],
    req: &str,
    bytes: fn(u32) -> Vec<u8>,
    code: u64,
    name: &'static str,
) -> Case {
    Case::new(path, clauses, Level::Must, req, move |t| async move {
        let s = server(&t);
        let user = fresh("defl");
        let mut h = hello_for(s, &user, "d1");
        h.compression = vec![pb::CompressionMode::CompressionDeflate as i32];
        let mut c = match Conn::connect(s.addr).await {
            Ok(c) => c,
            Err(e) => return Verdict::fail("a connection", e),
        };
        let w = match c.handshake(&h).await {
            Ok(w) => w,
            Err(seen) => return Verdict::fail("WELCOME", seen.describe()),
        };
        if w.compression != pb::CompressionMode::CompressionDeflate as i32 {
            return Verdict::new(
                Outcome::Unimplemented,
                "deflate negotiated",
                format!("WELCOME compression {}", w.compression),
            );
        }
        c.set_compression(Compression::Deflate);
        // Our own receive limits are the defaults; the server's are in WELCOME.
        let limit = w
            .limits
            .map(|l| l.max_decompressed_size)
            .filter(|&x| x > 0)
            .unwrap_or(1_048_576);
        let _ = c.send(&bytes(limit)).await;
        let seen = c.expect_close(WAIT).await;
        judge_close(s, seen, code, name).await
    })
}

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "session/2.6/1",
            &["SESSION-2.6", "WIRE-6.2"],
            Level::Must,
            "The server MUST write WELCOME as a frame of its own (not merged with later packets in a container) under the pre-handshake settings and only then switch.",
            |t| async move {
                let s = server(&t);
                let user = fresh("w26");
                let mut h = hello_for(s, &user, "d1");
                h.compression = vec![pb::CompressionMode::CompressionDeflate as i32];
                let mut c = match Conn::connect(s.addr).await {
                    Ok(c) => c,
                    Err(e) => return Verdict::fail("a connection", e),
                };
                let mut bytes = crate::raw::PREFACE.to_vec();
                bytes.extend(frame(1, 0x10, Some(1), &prost::Message::encode_to_vec(&h)));
                let _ = c.send(&bytes).await;
                if let Err(e) = c.read_preface().await {
                    return Verdict::fail("server preface", e);
                }
                c.fill(2, WAIT).await;
                let head = c
                    .buffered()
                    .get(..2)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default();
                let expected = "the first frame after the preface is WELCOME: flags 01 (ID only, not COMPRESSED), type 11";
                let v = Verdict::check(
                    head == [0x01, 0x11],
                    expected,
                    format!("first frame starts {}", hex::encode(&head)),
                );
                c.close().await;
                v
            },
        ),
        neg(
            "wire/5.4/1",
            &["WIRE-5.4"],
            "The COMPRESSED flag MUST NOT be set on a frame of the extension range, grease included; a receiver MUST treat it as a connection error of type PROTOCOL_ERROR.",
            |_| frame(0x02, 0x401, None, &deflate(b"grease")),
            PROTOCOL_ERROR,
            "PROTOCOL_ERROR",
        ),
        neg(
            "wire/7.2/1",
            &["WIRE-7.2"],
            "A receiver MUST treat a Body that is not a valid DEFLATE stream, that ends before the final block ends, or that has bytes after it, as a connection error of type COMPRESSION_ERROR.",
            |_| frame(0x02, 0x01, None, &[0xFF, 0xFF, 0xFF, 0xFF]),
            COMPRESSION_ERROR,
            "COMPRESSION_ERROR",
        ),
        neg(
            "wire/7.2/2",
            &["WIRE-7.2"],
            "A receiver MUST treat a Body ... that has bytes after it, as a connection error of type COMPRESSION_ERROR.",
            |_| {
                let mut body = deflate(b"");
                body.push(0x00);
                frame(0x02, 0x01, None, &body)
            },
            COMPRESSION_ERROR,
            "COMPRESSION_ERROR",
        ),
        neg(
            "wire/7.5/1",
            &["WIRE-7.5", "WIRE-6.3"],
            "A receiver MUST bound inflation by its max_decompressed_size: it MUST stop inflating once it has produced max_decompressed_size + 1 bytes, and treat that as a connection error of type DECOMPRESSION_LIMIT.",
            |limit| {
                // A SEND whose body inflates to one byte more than the server's bound.
                let body = vec![0u8; limit as usize + 1];
                frame(0x03, 0x12, Some(1), &deflate(&body))
            },
            DECOMPRESSION_LIMIT,
            "DECOMPRESSION_LIMIT",
        ),
        Case::new(
            "compress/7.1/2",
            &["WIRE-7.1", "SESSION-2.4", "SESSION-2.5"],
            Level::Must,
            "A sender MUST NOT set the COMPRESSED flag unless compression was negotiated: the mode WELCOME announces is the mode the server then writes in.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("cmode-a"), fresh("cmode-b"));
                let exp = "after WELCOME announces a compression mode, 30 compressible 1 KiB messages arrive in frames valid under exactly that mode";
                tryv!(
                    send_many(s, &a, &b, 30, &"compressible ".repeat(80)).await,
                    exp
                );
                let mut h = hello_for(s, &b, "d1");
                h.compression = vec![pb::CompressionMode::CompressionDeflate as i32];
                let mut cb = match Conn::connect(s.addr).await {
                    Ok(c) => c,
                    Err(e) => return Verdict::fail(exp, e),
                };
                let w = match cb.handshake(&h).await {
                    Ok(w) => w,
                    Err(seen) => {
                        return Verdict::fail(exp, format!("no WELCOME: {}", seen.describe()));
                    }
                };
                let mode = match pb::CompressionMode::try_from(w.compression) {
                    Ok(pb::CompressionMode::CompressionDeflate) => Compression::Deflate,
                    Ok(pb::CompressionMode::CompressionNone) => Compression::None,
                    other => {
                        return Verdict::fail(
                            exp,
                            format!("WELCOME announces {other:?}, which was not offered"),
                        );
                    }
                };
                cb.set_compression(mode);
                let epoch = w.head.map(|h| h.epoch).unwrap_or(0);
                let synced = crate::server::sync_all(&mut cb, epoch, 0).await;
                cb.close().await;
                match synced {
                    Ok((events, _)) => Verdict::check(
                        crate::server::messages(&events).len() == 30,
                        exp,
                        format!("mode {mode:?}: {} messages synced", events.len()),
                    ),
                    Err(e) => Verdict::fail(exp, format!("mode {mode:?}: {e}")),
                }
            },
        ),
    ]
}
