//! What the client reports to the application.

use std::ops::Deref;

use magpie_session::pb;
use magpie_wire::ErrorCode;

/// An item of the user's event stream, with its offset (`spec/sync.md` §3).
///
/// Dereferences to the item, so `Event::Message(m)` reads like a [`pb::Message`]: `m.sender`,
/// `m.client_msg_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    /// The event's offset in the user's stream.
    pub offset: u64,
    /// The message or read marker.
    pub item: T,
    /// Pushed silently: of a group the user asked not to be disturbed by (`spec/groups.md`
    /// §1.7), to show without an alert. Events that come by SYNC, and read markers, are never
    /// silent.
    pub silent: bool,
}

impl<T> Stored<T> {
    /// The item without its offset.
    pub fn into_inner(self) -> T {
        self.item
    }
}

impl<T> Deref for Stored<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.item
    }
}

/// Something that happened on the client's session, in the order it happened.
///
/// Stored events ([`Event::Message`], [`Event::Read`]) come strictly in offset order, each once
/// ([SYNC-4.3]), whether they arrived by push or by sync.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A session is open (after every WELCOME, the first and each reconnect).
    Connected {
        /// The authenticated user.
        user_id: String,
        /// The server's id for this session.
        session_id: String,
    },
    /// A stored message involving the user: received, or sent by them from any device (the app
    /// recognises its own by `client_msg_id`, [SYNC-3.2]).
    Message(Stored<pb::Message>),
    /// A read marker the user set on one of their devices ([SYNC-7.1]).
    Read(Stored<pb::ReadMarker>),
    /// A transient or status message (never stored, [SYNC-6.1]).
    Live(pb::Message),
    /// A watched user came online or went offline ([SESSION-7.2]).
    Presence(pb::PresenceEvent),
    /// The server reset the user's event stream (a new epoch, [SYNC-3.4]): what the app cached
    /// is stale; the events that follow rebuild it from the start. Not a loss of messages.
    Reset,
    /// The connection ended.
    Disconnected {
        /// The close code; `NO_ERROR` when the transport ended without a CLOSE.
        code: ErrorCode,
        /// The code's registry name.
        name: &'static str,
        /// The reason, for people.
        reason: String,
        /// Whether the client is reconnecting; `false` means the client has stopped.
        reconnecting: bool,
    },
}
