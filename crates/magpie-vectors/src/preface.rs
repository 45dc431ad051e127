//! Preface vectors ([WIRE-2]).

use serde::Serialize;

/// One preface vector: what a server (or client) reads and what it must do.
#[derive(Serialize, Clone, Debug)]
pub(crate) struct PrefaceVector {
    id: &'static str,
    description: &'static str,
    clauses: Vec<&'static str>,
    /// "server": `hex` is what a server reads from a client; "client": what a client reads
    /// from the server after offering `offered`.
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    offered: Option<u8>,
    hex: String,
    /// "accept", "reject" (a version rejection: server writes `reply`, client reports
    /// UNSUPPORTED_VERSION with `supported`), "close" (stray traffic: close, write nothing),
    /// "incomplete" (wait for more bytes), "error" (client: not a valid server preface).
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    supported: Option<Vec<u8>>,
}

fn server(
    id: &'static str,
    description: &'static str,
    clauses: &[&'static str],
    hex: &[u8],
    outcome: &'static str,
    reply: Option<&[u8]>,
) -> PrefaceVector {
    PrefaceVector {
        id,
        description,
        clauses: clauses.to_vec(),
        role: "server",
        offered: None,
        hex: hex::encode(hex),
        outcome,
        reply: reply.map(hex::encode),
        supported: None,
    }
}

fn client(
    id: &'static str,
    description: &'static str,
    clauses: &[&'static str],
    offered: u8,
    hex: &[u8],
    outcome: &'static str,
    supported: Option<Vec<u8>>,
) -> PrefaceVector {
    PrefaceVector {
        id,
        description,
        clauses: clauses.to_vec(),
        role: "client",
        offered: Some(offered),
        hex: hex::encode(hex),
        outcome,
        reply: None,
        supported,
    }
}

const MAGIC: &[u8] = b"MAGP";

fn preface(version: u8) -> Vec<u8> {
    [MAGIC, &[version]].concat()
}

pub(crate) fn vectors() -> Vec<PrefaceVector> {
    let reject = [MAGIC, &[0x00, 0x01, 0x01]].concat();
    vec![
        server(
            "preface/server/accept-v1",
            "a v1 client preface is accepted and echoed",
            &["WIRE-2.1", "WIRE-2.3"],
            &preface(1),
            "accept",
            Some(&preface(1)),
        ),
        server(
            "preface/server/reject-v7",
            "an unsupported version is answered with a version rejection listing [1]",
            &["WIRE-2.4"],
            &preface(7),
            "reject",
            Some(&reject),
        ),
        server(
            "preface/server/reject-v0",
            "version 0 is never a wire version and is rejected",
            &["WIRE-2.5"],
            &preface(0),
            "reject",
            Some(&reject),
        ),
        server(
            "preface/server/http-get",
            "an HTTP request fails at its first byte; nothing is written back",
            &["WIRE-2.2"],
            b"GET / HTTP/1.1\r\n",
            "close",
            None,
        ),
        server(
            "preface/server/bad-fourth-byte",
            "a wrong fourth magic byte fails as soon as it arrives",
            &["WIRE-2.2"],
            b"MAGX",
            "close",
            None,
        ),
        server(
            "preface/server/partial",
            "three correct magic bytes: wait for more",
            &["WIRE-2.2"],
            b"MAG",
            "incomplete",
            None,
        ),
        client(
            "preface/client/accepted",
            "the server echoes the offered version",
            &["WIRE-2.3"],
            1,
            &preface(1),
            "accept",
            None,
        ),
        client(
            "preface/client/rejected",
            "a version rejection is reported as UNSUPPORTED_VERSION with the listed versions",
            &["WIRE-2.4", "WIRE-2.6"],
            7,
            &reject,
            "reject",
            Some(vec![1]),
        ),
        client(
            "preface/client/other-version",
            "a server preface with another version than offered is a PROTOCOL_ERROR",
            &["WIRE-2.6"],
            1,
            &preface(2),
            "error",
            None,
        ),
    ]
}
