//! Keys and record encodings.
//!
//! A key is a 4-byte hash of its string components, the components, each a big-endian `u16`
//! length and the bytes, and optionally a big-endian `u64` at the end. The length prefixes make
//! every component sequence a prefix of exactly its own keys, so `(app, conversation)` ranges
//! never run into a conversation whose id merely starts the same; the big-endian number sorts
//! numerically, so a conversation's messages and a stream's events are contiguous and in order.
//!
//! The hash comes first for speed: the engine's memtable compares keys by a 4-byte inline prefix
//! before it follows a pointer to the rest, and without the hash every key would start with the
//! same app id, so every comparison would miss the cache. Nothing ranges across groups, so the
//! order the hash gives them does not matter. The hash is FNV-1a (32 bits) of the encoded
//! components; it is part of the on-disk format. Dedup keys hash the app and the sender only
//! ([`dedup_key`]).
//!
//! Values start with a format byte ([`FORMAT`]) so that a later layout can live beside this one.
//! Every decoder checks lengths and UTF-8 and returns [`StoreError::Corrupt`] instead of panicking.

use bytes::Bytes;

use crate::{EventKind, StoreError, StoredMessage};

/// The value layout version written by this code.
pub(crate) const FORMAT: u8 = 1;

/// The longest id (app, user, device, conversation, client message id, nonce) the store accepts.
pub const MAX_ID_LEN: usize = 1024;

/// The longest text a group's profile field (avatar URL, announcement, attribute key or value)
/// may hold in the store: its length is kept in two bytes.
pub const MAX_TEXT_LEN: usize = u16::MAX as usize;

/// Bytes of the hash at the start of every key.
pub(crate) const KEY_HASH_LEN: usize = 4;

/// Builds a key from string components and an optional trailing number.
pub(crate) fn key(parts: &[&str], n: Option<u64>) -> Vec<u8> {
    let mut k =
        Vec::with_capacity(KEY_HASH_LEN + parts.iter().map(|p| p.len() + 2).sum::<usize>() + 8);
    k.extend_from_slice(&[0; KEY_HASH_LEN]);
    for p in parts {
        put_str(&mut k, p);
    }
    let hash = fnv1a(&k[KEY_HASH_LEN..]);
    k[..KEY_HASH_LEN].copy_from_slice(&hash.to_be_bytes());
    if let Some(n) = n {
        k.extend_from_slice(&n.to_be_bytes());
    }
    k
}

/// The key of a dedup entry: [`key`] of (app, sender), then the client message id, so that the
/// hash leaves the id out. A sender's entries sit together in the index, and ids that increase
/// (the reference client's counter, or time-ordered ids) are appended where the index was last
/// written, instead of at a random place whose search path is out of the cache (`layout`).
pub(crate) fn dedup_key(app: &str, sender: &str, client_msg_id: &str) -> Vec<u8> {
    let mut k = key(&[app, sender], None);
    put_str(&mut k, client_msg_id);
    k
}

/// The key of a user's membership of a group: [`key`] of (app, user), then the group id, so
/// that a user's groups sit together in the index, in the order of their ids' encoding.
pub(crate) fn membership_key(app: &str, user: &str, group: &str) -> Vec<u8> {
    let mut k = key(&[app, user], None);
    put_str(&mut k, group);
    k
}

/// 32-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h: u32, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    // Callers validate lengths (`MAX_ID_LEN`) before building keys; clamp defensively.
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
}

/// Reads keys and values, failing with [`StoreError::Corrupt`].
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
    key: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads `buf`, a `what` record stored at `key` (for error messages).
    pub(crate) fn new(buf: &'a [u8], what: &'static str, key: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            what,
            key,
        }
    }

    /// A reader over a key's components (after its hash).
    pub(crate) fn of_key(key: &'a [u8], what: &'static str) -> Result<Self, StoreError> {
        let mut r = Self::new(key, what, key);
        r.take(KEY_HASH_LEN)?;
        Ok(r)
    }

    fn err(&self, detail: impl Into<String>) -> StoreError {
        StoreError::corrupt(self.what, self.key, detail)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(self.err(format!(
                "truncated: wanted {n} bytes at {}, have {}",
                self.pos,
                self.buf.len()
            )));
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, StoreError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, StoreError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, StoreError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    pub(crate) fn array32(&mut self) -> Result<[u8; 32], StoreError> {
        let b = self.take(32)?;
        let mut a = [0u8; 32];
        a.copy_from_slice(b);
        Ok(a)
    }

    pub(crate) fn str(&mut self) -> Result<String, StoreError> {
        let b = self.take(2)?;
        let len = usize::from(u16::from_be_bytes([b[0], b[1]]));
        let s = self.take(len)?;
        String::from_utf8(s.to_vec()).map_err(|_| self.err("string is not UTF-8"))
    }

    /// The remaining bytes.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    /// Checks the format byte.
    pub(crate) fn format(&mut self) -> Result<(), StoreError> {
        match self.u8()? {
            FORMAT => Ok(()),
            v => Err(self.err(format!("unknown record format {v}"))),
        }
    }

    /// Fails unless every byte was read.
    pub(crate) fn end(&self) -> Result<(), StoreError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(self.err(format!("{} trailing bytes", self.buf.len() - self.pos)))
        }
    }
}

/// Encodes a message record; the conversation and seq live in the key.
pub(crate) fn encode_message(m: &StoredMessage) -> Vec<u8> {
    let mut v = Vec::with_capacity(
        24 + m.sender.len() + m.sender_device.len() + m.client_msg_id.len() + m.content.len(),
    );
    v.push(FORMAT);
    let audience = if m.audience.is_empty() { 0 } else { AUDIENCE };
    v.push(u8::from(m.tombstone) | audience);
    v.push(m.class);
    v.extend_from_slice(&m.time_ms.to_be_bytes());
    put_str(&mut v, &m.sender);
    put_str(&mut v, &m.sender_device);
    put_str(&mut v, &m.client_msg_id);
    if !m.audience.is_empty() {
        // `Write::validate` keeps the count within two bytes and each id within `MAX_ID_LEN`.
        v.extend_from_slice(
            &u16::try_from(m.audience.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        for u in m.audience.iter().take(usize::from(u16::MAX)) {
            put_str(&mut v, u);
        }
    }
    v.extend_from_slice(&m.content);
    v
}

/// The message flags byte: bit 0 a tombstone, bit 1 an audience list follows the client id
/// ([GROUP-4.6]). Records written before directed messages hold 0 or 1.
const TOMBSTONE: u8 = 1;
const AUDIENCE: u8 = 1 << 1;

/// Decodes a message record stored at `key` for `conversation`/`seq`.
pub(crate) fn decode_message(
    conversation: &str,
    seq: u64,
    key: &[u8],
    value: &[u8],
) -> Result<StoredMessage, StoreError> {
    let mut r = Reader::new(value, "message", key);
    r.format()?;
    let flags = r.u8()?;
    if flags & !(TOMBSTONE | AUDIENCE) != 0 {
        return Err(StoreError::corrupt(
            "message",
            key,
            format!("message flags {flags:#04x}"),
        ));
    }
    let class = r.u8()?;
    let time_ms = r.u64()?;
    let sender = r.str()?;
    let sender_device = r.str()?;
    let client_msg_id = r.str()?;
    let mut audience = Vec::new();
    if flags & AUDIENCE != 0 {
        let b = r.u16()?;
        for _ in 0..b {
            audience.push(r.str()?);
        }
    }
    let content = Bytes::copy_from_slice(r.rest());
    Ok(StoredMessage {
        conversation: conversation.to_owned(),
        seq,
        sender,
        sender_device,
        client_msg_id,
        time_ms,
        class,
        content,
        tombstone: flags & TOMBSTONE != 0,
        audience,
    })
}

const EVENT_MESSAGE: u8 = 1;
const EVENT_READ: u8 = 2;

/// Encodes an event record; the offset lives in the key.
pub(crate) fn encode_event(kind: &EventKind) -> Vec<u8> {
    // Sized up front: records are built in the commit thread, where regrowth showed up.
    let (conversation, device) = match kind {
        EventKind::Message { conversation, .. } => (conversation, ""),
        EventKind::Read {
            conversation,
            device,
            ..
        } => (conversation, device.as_str()),
    };
    let mut v = Vec::with_capacity(2 + 2 + conversation.len() + 8 + 2 + device.len());
    v.push(FORMAT);
    match kind {
        EventKind::Message { conversation, seq } => {
            v.push(EVENT_MESSAGE);
            put_str(&mut v, conversation);
            v.extend_from_slice(&seq.to_be_bytes());
        }
        EventKind::Read {
            conversation,
            seq,
            device,
        } => {
            v.push(EVENT_READ);
            put_str(&mut v, conversation);
            v.extend_from_slice(&seq.to_be_bytes());
            put_str(&mut v, device);
        }
    }
    v
}

/// Decodes an event record.
pub(crate) fn decode_event(key: &[u8], value: &[u8]) -> Result<EventKind, StoreError> {
    let mut r = Reader::new(value, "event", key);
    r.format()?;
    let kind = match r.u8()? {
        EVENT_MESSAGE => EventKind::Message {
            conversation: r.str()?,
            seq: r.u64()?,
        },
        EVENT_READ => EventKind::Read {
            conversation: r.str()?,
            seq: r.u64()?,
            device: r.str()?,
        },
        t => return Err(StoreError::corrupt("event", key, format!("event kind {t}"))),
    };
    r.end()?;
    Ok(kind)
}

/// The first answer to a client message id, kept for retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DedupRecord {
    pub(crate) conversation: String,
    pub(crate) seq: u64,
    pub(crate) time_ms: u64,
    pub(crate) content_hash: [u8; 32],
    pub(crate) offsets: Vec<(String, u64)>,
}

pub(crate) fn encode_dedup(d: &DedupRecord) -> Vec<u8> {
    let users: usize = d.offsets.iter().map(|(u, _)| 2 + u.len() + 8).sum();
    let mut v = Vec::with_capacity(1 + 2 + d.conversation.len() + 8 + 8 + 32 + 2 + users);
    v.push(FORMAT);
    put_str(&mut v, &d.conversation);
    v.extend_from_slice(&d.seq.to_be_bytes());
    v.extend_from_slice(&d.time_ms.to_be_bytes());
    v.extend_from_slice(&d.content_hash);
    let n = u16::try_from(d.offsets.len()).unwrap_or(u16::MAX);
    v.extend_from_slice(&n.to_be_bytes());
    for (user, offset) in d.offsets.iter().take(usize::from(n)) {
        put_str(&mut v, user);
        v.extend_from_slice(&offset.to_be_bytes());
    }
    v
}

pub(crate) fn decode_dedup(key: &[u8], value: &[u8]) -> Result<DedupRecord, StoreError> {
    let mut r = Reader::new(value, "dedup", key);
    r.format()?;
    let conversation = r.str()?;
    let seq = r.u64()?;
    let time_ms = r.u64()?;
    let content_hash = r.array32()?;
    let hi = r.u8()?;
    let lo = r.u8()?;
    let n = u16::from_be_bytes([hi, lo]);
    let mut offsets = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        offsets.push((r.str()?, r.u64()?));
    }
    r.end()?;
    Ok(DedupRecord {
        conversation,
        seq,
        time_ms,
        content_hash,
        offsets,
    })
}

/// Encodes a record of fixed-size numbers.
pub(crate) fn encode_u64s(ns: &[u64]) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + 8 * ns.len());
    v.push(FORMAT);
    for n in ns {
        v.extend_from_slice(&n.to_be_bytes());
    }
    v
}

/// Decodes a record of `N` numbers.
pub(crate) fn decode_u64s<const N: usize>(
    what: &'static str,
    key: &[u8],
    value: &[u8],
) -> Result<[u64; N], StoreError> {
    let mut r = Reader::new(value, what, key);
    r.format()?;
    let mut out = [0u64; N];
    for n in &mut out {
        *n = r.u64()?;
    }
    r.end()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> StoredMessage {
        StoredMessage {
            conversation: "u:alice:bob".into(),
            seq: 7,
            sender: "alice".into(),
            sender_device: "phone".into(),
            client_msg_id: "c-1".into(),
            time_ms: 1_767_225_600_000,
            class: 2,
            content: Bytes::from_static(b"\x0a\x02hi"),
            tombstone: true,
            audience: vec!["bob".into(), "carol".into()],
        }
    }

    #[test]
    fn keys_are_prefix_free_and_sort_by_number() {
        let a = key(&["demo", "ab"], Some(2));
        let b = key(&["demo", "abc"], Some(1));
        assert!(!b.starts_with(&key(&["demo", "ab"], None)));
        assert!(key(&["demo", "ab"], Some(1)) < a);
        assert!(key(&["demo", "ab"], Some(255)) < key(&["demo", "ab"], Some(256)));
        assert_eq!(
            a[..4],
            key(&["demo", "ab"], Some(7))[..4],
            "same group, same hash"
        );
        assert_ne!(a[..4], key(&["demo", "abc"], Some(2))[..4]);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
        let mut r = Reader::of_key(&a, "key").unwrap();
        assert_eq!(r.str().unwrap(), "demo");
        assert_eq!(r.str().unwrap(), "ab");
        assert_eq!(r.u64().unwrap(), 2);
        r.end().unwrap();
    }

    #[test]
    fn records_round_trip() {
        let m = message();
        let k = key(&["demo", &m.conversation], Some(m.seq));
        assert_eq!(
            decode_message(&m.conversation, m.seq, &k, &encode_message(&m)).unwrap(),
            m
        );
        // Without an audience, the flags byte is what records written before directed
        // messages hold (0 or 1), and they decode as sent to everyone.
        let plain = StoredMessage {
            audience: Vec::new(),
            ..message()
        };
        let bytes = encode_message(&plain);
        assert_eq!(bytes[1], 1, "the tombstone flag alone");
        assert_eq!(
            decode_message(&m.conversation, m.seq, &k, &bytes).unwrap(),
            plain
        );
        let mut unknown = bytes.clone();
        unknown[1] |= 1 << 5;
        assert!(decode_message(&m.conversation, m.seq, &k, &unknown).is_err());
        for kind in [
            EventKind::Message {
                conversation: "c".into(),
                seq: 9,
            },
            EventKind::Read {
                conversation: "c".into(),
                seq: 3,
                device: "d".into(),
            },
        ] {
            assert_eq!(decode_event(b"k", &encode_event(&kind)).unwrap(), kind);
        }
        let d = DedupRecord {
            conversation: "c".into(),
            seq: 1,
            time_ms: 2,
            content_hash: [7; 32],
            offsets: vec![("alice".into(), 3), ("bob".into(), 4)],
        };
        assert_eq!(decode_dedup(b"k", &encode_dedup(&d)).unwrap(), d);
        assert_eq!(
            decode_u64s::<2>("head", b"k", &encode_u64s(&[5, 6])).unwrap(),
            [5, 6]
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let m = message();
        let full_event = encode_event(&EventKind::Read {
            conversation: "conv".into(),
            seq: 1,
            device: "dev".into(),
        });
        for i in 0..full_event.len() {
            assert!(
                decode_event(b"k", &full_event[..i]).is_err(),
                "event cut at {i}"
            );
        }
        let full_msg = encode_message(&m);
        // The content is the tail, so only cuts inside the header are detectable.
        let header = full_msg.len() - m.content.len();
        for i in 0..header {
            assert!(decode_message("c", 1, b"k", &full_msg[..i]).is_err());
        }
        let mut bad = full_msg.clone();
        bad[0] = 99;
        let err = decode_message("c", 1, b"k\x00", &bad).unwrap_err();
        assert!(
            err.to_string().contains("unknown record format 99"),
            "{err}"
        );
        assert!(err.to_string().contains("k\\x00"), "{err}");
        assert!(decode_u64s::<2>("head", b"k", &encode_u64s(&[1])).is_err());
        assert!(decode_u64s::<1>("head", b"k", &encode_u64s(&[1, 2])).is_err());
    }
}
