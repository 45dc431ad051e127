//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use magpie_store::{FjallStore, StoreConfig, StoredMessage, Write, WriteResult};

/// The app every test uses.
pub(crate) const APP: &str = "demo";

/// Opens a store with the default (durable) settings in `dir`.
pub(crate) fn open(dir: &Path) -> Arc<FjallStore> {
    Arc::new(FjallStore::open(&StoreConfig::new(dir)).expect("open store"))
}

/// A content hash for tests: the body's bytes, cycled.
pub(crate) fn hash(body: &str) -> [u8; 32] {
    let mut h = [0u8; 32];
    for (i, b) in body.bytes().enumerate() {
        h[i % 32] ^= b.wrapping_add(i as u8);
    }
    h[31] ^= body.len() as u8;
    h
}

/// A message from `sender` in `conversation`.
pub(crate) fn message(
    conversation: &str,
    sender: &str,
    client_msg_id: &str,
    body: &str,
) -> StoredMessage {
    StoredMessage {
        conversation: conversation.into(),
        seq: 0,
        sender: sender.into(),
        sender_device: format!("{sender}-phone"),
        client_msg_id: client_msg_id.into(),
        time_ms: 0,
        class: 0,
        content: Bytes::copy_from_slice(body.as_bytes()),
        tombstone: false,
        audience: Vec::new(),
    }
}

/// An `AppendMessage` write.
pub(crate) fn append(
    conversation: &str,
    sender: &str,
    client_msg_id: &str,
    body: &str,
    participants: &[&str],
) -> Write {
    Write::AppendMessage {
        app: APP.into(),
        message: message(conversation, sender, client_msg_id, body),
        content_hash: hash(body),
        participants: participants.iter().map(|p| p.to_string()).collect(),
    }
}

/// The same append with an explicit time.
pub(crate) fn append_at(
    conversation: &str,
    sender: &str,
    client_msg_id: &str,
    time_ms: u64,
    participants: &[&str],
) -> Write {
    let mut w = append(conversation, sender, client_msg_id, "body", participants);
    if let Write::AppendMessage { message, .. } = &mut w {
        message.time_ms = time_ms;
    }
    w
}

/// The seq of an `Appended` result.
pub(crate) fn seq_of(r: &WriteResult) -> u64 {
    match r {
        WriteResult::Appended { seq, .. } => *seq,
        other => panic!("expected Appended, got {other:?}"),
    }
}
