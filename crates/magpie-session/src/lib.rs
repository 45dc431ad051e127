//! Sans-IO Magpie session state machines (`spec/session.md`): the server's half
//! ([`ServerConnection`]) and the client's half ([`ClientConnection`]) of one connection.
//!
//! Neither touches a socket or a clock: they take bytes and `Instant`s in and give bytes and events
//! out, so the reference server, the client library, the conformance suite and the tests all drive
//! the same code. What a server does with a request (authenticate, store, route) is the driver's
//! business; this crate enforces the protocol around it: the preface, the handshake order, ids on
//! requests, heartbeats, timeouts, and the close path with its codes.
//!
//! ```text
//!   client driver                                        server driver (magpied)
//!   ClientConnection ── preface, HELLO ──────────────►   ServerConnection ─► ServerEvent::Hello
//!                    ◄────────────── preface, WELCOME ──  accept(welcome)   ◄─ auth, store
//!   request(SEND) ───────────────────────────────────►   ServerEvent::Request
//!   ClientEvent::Reply ◄──────────────────── SEND_ACK ──  reply(id, ack)    ◄─ after commit
//!   ClientEvent::Push  ◄─────────────────────── PUSH ───  push(events)
//! ```

mod body;
mod client;
mod codes;
mod link;
mod rate;
mod server;

pub use body::{Body, rate_limited, request_error};
pub use client::{ClientConfig, ClientConnection, ClientEvent};
pub use codes::{RequestCode, close};
pub use link::{Closed, Initiator};
pub use rate::{Bucket, Rate};
pub use server::{
    Negotiated, ServerConfig, ServerConnection, ServerEvent, compression_to_proto,
    limits_from_proto, limits_to_proto,
};

pub use magpie_proto::v1 as pb;
