//! What the scenarios need from a server, so the same scenario code drives magpied, mosquitto and
//! nats-server: connections that send to a name and receive what is sent to theirs, and the
//! message body every scenario sends.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::Result;
use bytes::Bytes;

/// What a connection receives.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Inbox<'a> {
    /// Nothing the scenario reads (a sender; Magpie still pushes the sender's own copies, and
    /// they are dropped).
    None,
    /// What is sent to the connection's own name.
    Own,
    /// What is sent to this group ([`Transport::group_address`]): MQTT and NATS subscribe to its
    /// topic; a Magpie connection only logs in, and the sender makes it a member
    /// ([`Transport::prepare_group`]).
    Group(&'a str),
}

/// A server under test, reached through its own client library.
pub(crate) trait Transport: Send + Sync + 'static {
    /// The sending half of a connection.
    type Tx: Tx;
    /// The receiving half of a connection.
    type Rx: Rx;

    /// `magpie`, `mqtt` or `nats`.
    fn name(&self) -> &'static str;

    /// What the completion of [`Tx::send`] means, for the output.
    fn ack(&self) -> &'static str;

    /// How the `fanout` scenario's one send per message reaches its `receivers`, for the
    /// record. The default is pub/sub's: a topic every receiver subscribed to.
    fn fanout_mechanism(&self, receivers: u32) -> String {
        format!("one publish per message to a topic all {receivers} receivers subscribe to")
    }

    /// Where a send to `group` goes ([`Tx::send`]'s `to`). The default is the group's own name,
    /// a topic.
    fn group_address(&self, group: &str) -> String {
        group.to_owned()
    }

    /// Makes `group` reach `members`, once, from the connection that will send to it, before the
    /// first send; the members are connected already, with [`Inbox::Group`]. The default does
    /// nothing: a pub/sub receiver subscribed to the topic when it connected.
    fn prepare_group(
        &self,
        tx: &Self::Tx,
        group: &str,
        members: &[String],
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (tx, group, members);
        std::future::ready(Ok(()))
    }

    /// Opens an authenticated connection for `name` (a user id, a client id) and waits until it
    /// is ready to receive what `inbox` says.
    fn connect(
        &self,
        name: &str,
        inbox: Inbox<'_>,
    ) -> impl Future<Output = Result<(Self::Tx, Self::Rx)>> + Send;
}

/// The acknowledgement of one send: completes when the transport's ack arrives
/// ([`Transport::ack`]).
pub(crate) type Ack = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// The sending half of a connection. Cheap to clone.
pub(crate) trait Tx: Clone + Send + Sync + 'static {
    /// Queues `body` for `to` (a name, or a group) on the connection and returns once it is
    /// queued, with the [`Ack`] to wait for. Sends awaited one after another are queued, and so
    /// sent, in that order, however their acks are then awaited. (Polling many send futures at
    /// once would not do: `FuturesUnordered` does not poll new futures in the order they were
    /// pushed.)
    fn send(&self, to: &str, body: Bytes) -> impl Future<Output = Result<Ack>> + Send;
}

/// The receiving half of a connection.
pub(crate) trait Rx: Send + 'static {
    /// The next message body; an error when the connection is gone for good.
    fn recv(&mut self) -> impl Future<Output = Result<Bytes>> + Send;
}

/// Nanoseconds since the first call in this process: senders and receivers share one clock.
pub(crate) fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Bytes of the header every body starts with: stream id, sequence number and send time, as
/// fixed-width lowercase hex (so a body is valid UTF-8 text, as Magpie's text content must be).
pub(crate) const HEADER_LEN: usize = 8 + 16 + 16;

/// The smallest body: the header and one space.
pub(crate) const MIN_BODY: usize = HEADER_LEN + 1;

/// What a body says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// The stream: a pair's index, or 0 for the one fan-out sender.
    pub(crate) stream: u32,
    /// The message's sequence number in its stream, from 0.
    pub(crate) seq: u64,
    /// When it was sent (or, at a fixed rate, when it was due), in [`now_ns`] time.
    pub(crate) sent_ns: u64,
}

/// Letters and spaces for the rest of the body: text of about English letter entropy, so a
/// compressing transport gains what it would on chat, not what it would on padding.
const FILLER: &[u8; 32] = b"etaoinshrdlucmfwypvbgkqjxz      ";

/// A body of `len` bytes (at least [`MIN_BODY`]): the header, a space, then pseudo-random
/// lowercase text derived from the stamp.
pub(crate) fn body(stamp: Stamp, len: usize) -> Bytes {
    let len = len.max(MIN_BODY);
    let mut out = format!(
        "{:08x}{:016x}{:016x} ",
        stamp.stream, stamp.seq, stamp.sent_ns
    )
    .into_bytes();
    // xorshift64*, seeded from the stream and sequence number.
    let mut x = (u64::from(stamp.stream) << 40 ^ stamp.seq).wrapping_add(0x9e37_79b9_7f4a_7c15);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        out.push(FILLER[(r >> 59) as usize]);
    }
    Bytes::from(out)
}

/// Reads the header of a body; `None` if it is not one of ours.
pub(crate) fn parse(body: &[u8]) -> Option<Stamp> {
    let header = std::str::from_utf8(body.get(..HEADER_LEN)?).ok()?;
    Some(Stamp {
        stream: u32::from_str_radix(header.get(0..8)?, 16).ok()?,
        seq: u64::from_str_radix(header.get(8..24)?, 16).ok()?,
        sent_ns: u64::from_str_radix(header.get(24..40)?, 16).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trips_and_has_the_asked_length() {
        let stamp = Stamp {
            stream: 7,
            seq: 123_456,
            sent_ns: 9_876_543_210,
        };
        let b = body(stamp, 100);
        assert_eq!(b.len(), 100);
        assert!(std::str::from_utf8(&b).is_ok());
        assert_eq!(parse(&b), Some(stamp));
        assert_eq!(body(stamp, 1).len(), MIN_BODY);
        let other = body(
            Stamp {
                seq: 123_457,
                ..stamp
            },
            100,
        );
        assert_ne!(b[HEADER_LEN..], other[HEADER_LEN..], "filler varies");
    }

    #[test]
    fn foreign_bodies_are_rejected() {
        assert_eq!(parse(b"hello"), None);
        assert_eq!(parse(&[b'z'; 60]), None);
        assert_eq!(parse(&[0xff; 60]), None);
    }
}
