//! Wire-layer cases (`spec/wire.md`) against a server.

use std::sync::Arc;
use std::time::Duration;

use crate::case::{Case, Level, Verdict};
use crate::conn::{Conn, WAIT};
use crate::raw::{self, frame, header, varint_len};
use crate::server::{close_after_welcome, fresh, login, server, still_alive};

const PROTOCOL_ERROR: u64 = 0x01;
const MALFORMED: u64 = 0x02;
const FRAME_TOO_LARGE: u64 = 0x03;
const CONTAINER_INVALID: u64 = 0x06;
const COMPRESSION_ERROR: u64 = 0x07;

/// A case that sends `bytes` after WELCOME and expects CLOSE `code`.
fn neg(
    path: &str,
    clauses: &[&str],
    req: &str,
    bytes: Vec<u8>,
    code: u64,
    name: &'static str,
) -> Case {
    let bytes = Arc::new(bytes);
    Case::new(path, clauses, Level::Must, req, move |t| {
        let bytes = bytes.clone();
        async move { close_after_welcome(&t, bytes.to_vec(), code, name).await }
    })
}

/// A case that sends `bytes` (preface included) and expects `reply` then end of stream.
fn preface(
    path: &str,
    clauses: &[&str],
    req: &str,
    bytes: &'static [u8],
    reply: Option<&'static [u8]>,
) -> Case {
    Case::new(path, clauses, Level::Must, req, move |t| async move {
        let s = server(&t);
        let mut c = match Conn::connect(s.addr).await {
            Ok(c) => c,
            Err(e) => return Verdict::fail("a connection", e),
        };
        if let Err(e) = c.send(bytes).await {
            return Verdict::fail("the bytes are sent", e);
        }
        let eof = c.fill(64, WAIT).await;
        let got = c.take_raw();
        let expected = match reply {
            Some(r) => format!("reply {} then end of stream", hex::encode(r)),
            None => "no byte at all, then end of stream".into(),
        };
        let observed = format!(
            "{} then {}",
            hex::encode(&got),
            if eof {
                "end of stream"
            } else {
                "stream still open"
            }
        );
        let ok = eof && got == reply.unwrap_or(&[]);
        still_alive(s, Verdict::check(ok, expected, observed)).await
    })
}

fn pings(
    path: &str,
    clauses: &[&str],
    level: Level,
    req: &str,
    bytes: Vec<u8>,
    pongs: Vec<Vec<u8>>,
) -> Case {
    let bytes = Arc::new(bytes);
    let pongs = Arc::new(pongs);
    Case::new(path, clauses, level, req, move |t| {
        let (bytes, pongs) = (bytes.clone(), pongs.clone());
        async move {
            let s = server(&t);
            let (mut c, _) = match login(s, &fresh("ping"), "d1").await {
                Ok(x) => x,
                Err(v) => return v,
            };
            let expected = format!(
                "PONGs echoing {:?}, connection open",
                pongs.iter().map(hex::encode).collect::<Vec<_>>()
            );
            if let Err(e) = c.send(&bytes).await {
                return Verdict::fail(expected, e);
            }
            for p in pongs.iter() {
                if let Err(e) = c.expect_pong(p).await {
                    return still_alive(s, Verdict::fail(expected, e)).await;
                }
            }
            c.close().await;
            Verdict::pass(expected, "every PONG arrived with the PING's body")
        }
    })
}

pub(crate) fn cases() -> Vec<Case> {
    let mut grease_then_ping = frame(0, 0x401, None, b"grease body");
    grease_then_ping.extend(frame(0, 0x01, None, b"after-grease"));
    let mut inner = frame(0, 0x420, None, b"g");
    inner.extend(frame(0, 0x01, None, b"in-container"));
    let grease_container = frame(0, 0x03, None, &inner);
    let mut two = frame(0, 0x01, None, b"one");
    two.extend(frame(0, 0x01, None, b"two"));
    let two_container = frame(0, 0x03, None, &two);
    let mut big_grease = frame(0, 0x43F, None, &vec![0x5A; 16_000]);
    big_grease.extend(frame(0, 0x01, None, b"floor"));
    let deflated_ping: Vec<u8> = vec![0x03, 0x00]; // an empty DEFLATE stream (fixed block, BFINAL)
    vec![
        preface("wire/2.3/1", &["WIRE-2.1", "WIRE-2.3"],
            "If the magic matches and the server supports the offered version, the server MUST reply with a server preface equal to the client's.",
            &raw::PREFACE, None)
            .with_reply_check(),
        preface("wire/2.4/1", &["WIRE-2.4"],
            "If the server does not support the offered version, it MUST reply with a version rejection and then close the stream.",
            &[0x4D, 0x41, 0x47, 0x50, 0x07], Some(&[0x4D, 0x41, 0x47, 0x50, 0x00, 0x01, 0x01])),
        preface("wire/2.5/1", &["WIRE-2.5"],
            "Version 00 MUST NOT be offered by a client; a server receiving it MUST answer with a version rejection.",
            &[0x4D, 0x41, 0x47, 0x50, 0x00], Some(&[0x4D, 0x41, 0x47, 0x50, 0x00, 0x01, 0x01])),
        preface("wire/2.2/1", &["WIRE-2.2"],
            "A server MUST check the magic byte by byte as it arrives and, at the first byte that differs, MUST close the stream without sending anything.",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None),
        preface("wire/2.2/2", &["WIRE-2.2"],
            "A server MUST check the magic byte by byte as it arrives and, at the first byte that differs, MUST close the stream without sending anything.",
            &[0x4D, 0x41, 0x58], None),
        neg("wire/4.2/1", &["WIRE-4.2", "WIRE-10.1", "WIRE-10.3"],
            "A receiver MUST treat a frame with any reserved bit set as a connection error of type PROTOCOL_ERROR, as soon as it has read the Flags field.",
            frame(0x04, 0x01, None, b""), PROTOCOL_ERROR, "PROTOCOL_ERROR"),
        neg("wire/5.1/1", &["WIRE-5.1", "WIRE-5.5"],
            "A receiver MUST treat a frame whose Type is in the core range and not assigned as a connection error of type PROTOCOL_ERROR.",
            frame(0x00, 0x3FF, None, b""), PROTOCOL_ERROR, "PROTOCOL_ERROR"),
        neg("wire/3.2/1", &["WIRE-3.1", "WIRE-3.2"],
            "A receiver MUST treat a longer encoding (for example 40 25 for 37) as a connection error of type MALFORMED.",
            [vec![0x00], varint_len(0x01, 2), vec![0x00]].concat(), MALFORMED, "MALFORMED"),
        neg("wire/4.5/1", &["WIRE-4.5", "WIRE-6.3"],
            "A receiver MUST check Length against its max_frame_size as soon as it has read the Length field, before reading or buffering any Body byte, and MUST treat a larger Length as a connection error of type FRAME_TOO_LARGE.",
            header(0x01, 0x12, Some(7), 16_777_216), FRAME_TOO_LARGE, "FRAME_TOO_LARGE"),
        neg("wire/7.1/1", &["WIRE-7.1", "WIRE-6.2"],
            "A receiver MUST treat a COMPRESSED frame when compression was not negotiated as a connection error of type COMPRESSION_ERROR.",
            frame(0x02, 0x01, None, &deflated_ping), COMPRESSION_ERROR, "COMPRESSION_ERROR"),
        neg("wire/8.1/1", &["WIRE-8.1"],
            "A receiver MUST treat an empty container, a packet that runs past the end of the Body, or a CONTAINER frame with the ID flag as a connection error of type CONTAINER_INVALID.",
            frame(0, 0x03, None, b""), CONTAINER_INVALID, "CONTAINER_INVALID"),
        neg("wire/8.1/2", &["WIRE-8.1", "WIRE-4.3"],
            "A receiver MUST treat ... a CONTAINER frame with the ID flag as a connection error of type CONTAINER_INVALID.",
            frame(1, 0x03, Some(1), &frame(0, 0x01, None, b"")), CONTAINER_INVALID, "CONTAINER_INVALID"),
        neg("wire/8.1/3", &["WIRE-8.1"],
            "A receiver MUST treat ... a packet that runs past the end of the Body ... as a connection error of type CONTAINER_INVALID.",
            frame(0, 0x03, None, &[0x00, 0x01, 0x05, 0x61]), CONTAINER_INVALID, "CONTAINER_INVALID"),
        neg("wire/8.2/1", &["WIRE-8.2"],
            "A receiver MUST treat a nested container as a connection error of type CONTAINER_INVALID.",
            frame(0, 0x03, None, &frame(0, 0x03, None, &frame(0, 0x01, None, b""))), CONTAINER_INVALID, "CONTAINER_INVALID"),
        neg("wire/8.3/1", &["WIRE-8.3"],
            "A receiver MUST treat an inner packet with the COMPRESSED flag as a connection error of type CONTAINER_INVALID.",
            frame(0, 0x03, None, &frame(0x02, 0x01, None, &deflated_ping)), CONTAINER_INVALID, "CONTAINER_INVALID"),
        neg("wire/8.4/1", &["WIRE-8.4", "WIRE-6.3"],
            "A container MUST NOT hold more than the receiver's max_container_packets packets (skipped packets count).",
            frame(0, 0x03, None, &frame(0, 0x01, None, b"").repeat(1025)), CONTAINER_INVALID, "CONTAINER_INVALID"),
        neg("wire/9.1/2", &["WIRE-9.1"],
            "A PING Body SHOULD be empty and MUST NOT be longer than 64 bytes; the receiver of a longer one MUST treat it as a connection error of type PROTOCOL_ERROR.",
            frame(0, 0x01, None, &[0x61; 65]), PROTOCOL_ERROR, "PROTOCOL_ERROR"),
        neg("wire/4.3/1", &["WIRE-4.3"],
            "Packets that need no id (PING, PONG, CLOSE, CONTAINER) MUST NOT carry one: a receiver MUST treat an Id on those types as a connection error of type PROTOCOL_ERROR.",
            frame(0x01, 0x01, Some(5), b""), PROTOCOL_ERROR, "PROTOCOL_ERROR"),
        pings("wire/9.1/1", &["WIRE-9.1", "WIRE-4.6", "WIRE-2.7", "SESSION-3.1"], Level::Must,
            "On receiving a PING, a peer MUST answer with a PONG whose Body is the PING's Body.",
            frame(0, 0x01, None, b"echo-me-0123"), vec![b"echo-me-0123".to_vec()]),
        pings("wire/5.3/1", &["WIRE-5.3", "WIRE-5.2"], Level::Must,
            "A receiver MUST skip grease frames exactly as in [WIRE-5.2], including grease packets inside containers.",
            grease_then_ping, vec![b"after-grease".to_vec()]),
        pings("wire/5.3/2", &["WIRE-5.3", "WIRE-8.3", "WIRE-8.5"], Level::Must,
            "A receiver MUST skip grease frames exactly as in [WIRE-5.2], including grease packets inside containers.",
            grease_container, vec![b"in-container".to_vec()]),
        pings("wire/8.5/1", &["WIRE-8.5", "WIRE-7.6"], Level::Must,
            "A receiver MUST deliver its packets in order, each with its own Type and Id, exactly as if they had arrived as separate frames.",
            two_container, vec![b"one".to_vec(), b"two".to_vec()]),
        pings("wire/6.1/1", &["WIRE-6.1", "WIRE-5.2"], Level::Must,
            "A receiver MUST accept any frame within the floors.",
            big_grease, vec![b"floor".to_vec()]),
        Case::new("wire/10.4/1", &["WIRE-10.4", "WIRE-10.5", "ERR-1.3"], Level::Must,
            "A receiver MUST accept a CLOSE with any code, known or not. After sending or receiving CLOSE a peer MUST NOT send further frames.",
            |t| async move {
                let s = server(&t);
                let (mut c, _) = match login(s, &fresh("close"), "d1").await {
                    Ok(x) => x,
                    Err(v) => return v,
                };
                let mut bytes = frame(0, 0x04, None, &[0x3E, 0x00, b'b', b'y', b'e']);
                bytes.extend(frame(0, 0x01, None, b"after-close"));
                let _ = c.send(&bytes).await;
                let eof = c.fill(1, WAIT).await;
                let got = c.take_raw();
                let observed = format!("{} then {}", hex::encode(&got), if eof { "end of stream" } else { "stream open" });
                let v = Verdict::check(eof && !got.windows(3).any(|w| w == [0x00, 0x02, 0x0B]),
                    "no PONG for a PING after CLOSE; the stream ends", observed);
                still_alive(s, v).await
            }),
        Case::new("wire/2.7/1", &["WIRE-2.7"], Level::Must,
            "The server MUST NOT process those frames unless it accepted the version.",
            |t| async move {
                let s = server(&t);
                let mut c = match Conn::connect(s.addr).await {
                    Ok(c) => c,
                    Err(e) => return Verdict::fail("a connection", e),
                };
                let mut bytes = vec![0x4D, 0x41, 0x47, 0x50, 0x07];
                bytes.extend(frame(0, 0x01, None, b"x"));
                let _ = c.send(&bytes).await;
                let eof = c.fill(64, Duration::from_secs(2)).await;
                let got = c.take_raw();
                let v = Verdict::check(got.starts_with(&[0x4D, 0x41, 0x47, 0x50, 0x00]) && !got.windows(2).any(|w| w == [0x02, 0x01]) && eof,
                    "version rejection only (no PONG), then end of stream", hex::encode(&got));
                still_alive(s, v).await
            }),
    ]
}

trait ReplyCheck {
    fn with_reply_check(self) -> Case;
}

impl ReplyCheck for Case {
    /// The accept case: the preface echo, and the stream stays open (no end of stream).
    fn with_reply_check(self) -> Case {
        Case::new(
            &self.id["v1/".len()..],
            &self.clauses.iter().map(String::as_str).collect::<Vec<_>>(),
            self.level,
            &self.requirement.clone(),
            |t| async move {
                let s = server(&t);
                let mut c = match Conn::connect(s.addr).await {
                    Ok(c) => c,
                    Err(e) => return Verdict::fail("a connection", e),
                };
                let _ = c.send(&raw::PREFACE).await;
                match c.read_preface().await {
                    Ok(()) => Verdict::pass("server preface 4d41475001", "4d41475001"),
                    Err(e) => Verdict::fail("server preface 4d41475001", e),
                }
            },
        )
    }
}
