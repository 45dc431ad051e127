//! The Magpie client library (tokio) behind the `magpie` command-line client.
//!
//! [`Client::connect`] opens a session and spawns one task that owns the TCP connection and
//! drives the sans-IO [`magpie_session::ClientConnection`]; the task keeps the device's cursor in
//! its event stream, pulls what it missed after each WELCOME and on every gap, drops duplicates,
//! reconnects with backoff and resume tokens, and sends unanswered requests again
//! (`spec/session.md`, `spec/sync.md`). The application sees requests as `async fn`s on
//! [`Client`] and everything else as [`Event`]s, in order, on [`Events`].
//!
//! ```no_run
//! use magpie_client::{Client, ClientOptions, Event, Platform};
//!
//! # async fn demo() -> Result<(), magpie_client::ClientError> {
//! let options = ClientOptions::new(
//!     vec!["127.0.0.1:7700".into()],
//!     "demo",
//!     "mt1.…",
//!     "phone-1",
//!     Platform::Ios,
//! );
//! let (client, mut events) = Client::connect(options).await?;
//! let ack = client.send_text("bob", "hi").await?;
//! println!("stored as {}", ack.message_id);
//! while let Some(event) = events.recv().await {
//!     if let Event::Message(m) = event {
//!         println!("{}: {:?}", m.sender, m.content);
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The cursor, gap and de-duplication rules live in [`SyncState`], which has no I/O and can be
//! tested (and reused) on its own.

mod client;
mod driver;
mod error;
mod event;
mod options;
mod sync;

pub use client::{Client, Events, new_client_msg_id, text};
pub use error::ClientError;
pub use event::{Event, Stored};
pub use options::{Backoff, ClientOptions};
pub use sync::{InitialSync, SyncOutput, SyncState};

pub use magpie_auth::Platform;
pub use magpie_session::{ClientConfig, pb};
pub use magpie_wire::ErrorCode;

/// The id of the 1:1 conversation of users `a` and `b` ([SYNC-1.1]): `d:` + the smaller id +
/// `:` + the larger, in byte order, whoever sends.
pub fn conversation_id(a: &str, b: &str) -> String {
    let (low, high) = if a.as_bytes() <= b.as_bytes() {
        (a, b)
    } else {
        (b, a)
    };
    format!("d:{low}:{high}")
}

#[cfg(test)]
mod tests {
    use super::conversation_id;

    #[test]
    fn conversation_ids() {
        assert_eq!(conversation_id("alice", "bob"), "d:alice:bob");
        assert_eq!(conversation_id("bob", "alice"), "d:alice:bob");
        assert_eq!(conversation_id("alice", "alice"), "d:alice:alice");
        // Byte order: upper case sorts before lower case, digits before both.
        assert_eq!(conversation_id("bob", "Bob"), "d:Bob:bob");
        assert_eq!(conversation_id("a1", "a"), "d:a:a1");
    }
}
