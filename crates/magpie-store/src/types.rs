//! The values the store keeps and the writes it applies.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use crate::StoreError;
use crate::codec::{MAX_ID_LEN, MAX_TEXT_LEN};
use crate::groups::{GroupDenied, GroupNotice, GroupOp, GroupRecord, InfoChange, Silence};

/// How the server turns a group notice into message content (the store does not know the wire's
/// encoding of contents; it stores the bytes this gives).
#[derive(Clone, Copy)]
pub struct NoticeRenderer(pub fn(&GroupNotice) -> Bytes);

impl std::fmt::Debug for NoticeRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NoticeRenderer")
    }
}

impl PartialEq for NoticeRenderer {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::fn_addr_eq(self.0, other.0)
    }
}

impl Eq for NoticeRenderer {}

/// A stored message. The content is opaque encoded bytes; the store never interprets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The conversation id.
    pub conversation: String,
    /// The message's place in the conversation, from 1, without gaps. Ignored on input.
    pub seq: u64,
    /// The sending user.
    pub sender: String,
    /// The sending device.
    pub sender_device: String,
    /// The sender's id for the message, unique per sender; empty means "no deduplication".
    pub client_msg_id: String,
    /// Server time in milliseconds since the Unix epoch. On input, 0 means "stamp it now".
    pub time_ms: u64,
    /// The message class (`MessageClass` of `spec/proto/magpie.proto`), not interpreted.
    pub class: u8,
    /// The encoded content.
    pub content: Bytes,
    /// The seq carries no content any more (purged, recalled, blocked).
    pub tombstone: bool,
    /// A directed group message: the members who alone, with the sender, receive it; empty for
    /// every other message ([GROUP-4.6]).
    pub audience: Vec<String>,
}

impl StoredMessage {
    /// Whether `reader` may see the message's content: anyone may, unless it is directed to
    /// others ([GROUP-4.6]).
    pub fn visible_to(&self, reader: &str) -> bool {
        self.audience.is_empty()
            || self.sender == reader
            || self.audience.iter().any(|u| u == reader)
    }
}

/// What an entry of a user's event stream says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A message was stored in a conversation the user takes part in.
    Message {
        /// The conversation id.
        conversation: String,
        /// The message's seq.
        seq: u64,
    },
    /// The user's read marker of a conversation moved (from `device`).
    Read {
        /// The conversation id.
        conversation: String,
        /// The new read marker.
        seq: u64,
        /// The device that moved it.
        device: String,
    },
}

/// An entry of a user's event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The event's offset in the stream, from 1, increasing.
    pub offset: u64,
    /// What happened.
    pub kind: EventKind,
}

/// An event joined with its message for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The event's offset.
    pub offset: u64,
    /// What happened.
    pub kind: EventKind,
    /// The message of a [`EventKind::Message`] event; `None` for read events, and for a message
    /// event whose message is gone (retention drops such events in the same pass, so this is
    /// rare: see [`Store::apply_retention`](crate::Store::apply_retention)).
    pub message: Option<StoredMessage>,
}

/// Where a user's event stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHead {
    /// A random non-zero number chosen when the stream was created and persisted with it. A
    /// client whose cursor has another epoch holds a stale cache.
    pub epoch: u64,
    /// The last offset written, 0 for an empty stream.
    pub last_offset: u64,
}

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationInfo {
    /// The last seq allocated, 0 for an empty conversation.
    pub last_seq: u64,
    /// The lowest seq still kept (retention), from 1.
    pub visible_from: u64,
}

impl Default for ConversationInfo {
    fn default() -> Self {
        Self {
            last_seq: 0,
            visible_from: 1,
        }
    }
}

/// One write of a group commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Stores a message. Deduplicated by (app, sender, client_msg_id): a known id answers with the
    /// first result and `duplicate = true` (or [`WriteResult::ClientIdReused`] if `content_hash`
    /// differs), storing nothing. Otherwise allocates `seq = last_seq + 1` in the conversation,
    /// stores the message and appends one [`EventKind::Message`] event to the stream of each
    /// participant, all in the same transaction. The participant list is deduplicated (a
    /// self-conversation gets one event) and the sender is added if it is missing.
    AppendMessage {
        /// The app.
        app: String,
        /// The message; its `seq` is ignored.
        message: StoredMessage,
        /// A hash of the content, to tell a retry from a reused client message id.
        content_hash: [u8; 32],
        /// The users whose streams get the event.
        participants: Vec<String>,
    },
    /// Moves the user's read marker of a conversation to `max(old, seq)`. If it moved, appends an
    /// [`EventKind::Read`] event to the user's stream.
    SetRead {
        /// The app.
        app: String,
        /// The reader.
        user: String,
        /// The reader's device.
        device: String,
        /// The conversation id.
        conversation: String,
        /// Read up to here, inclusive.
        seq: u64,
    },
    /// Records a login-token nonce until `expires_at` (Unix seconds). Replayed if the nonce is
    /// already recorded with an `expires_at` still in the future (by the system clock).
    UseNonce {
        /// The app.
        app: String,
        /// The token's nonce.
        nonce: String,
        /// Keep it until then (the token's expiry plus the clock skew), Unix seconds.
        expires_at: u64,
    },
    /// Stores a message in a group's conversation (`g:` + `group`) for every member
    /// ([GROUP-4.1]): deduplicated like [`Write::AppendMessage`], then, if the sender is a member
    /// of the group (which exists and is not dismissed), stored with one event per member;
    /// otherwise [`WriteResult::NotMember`] and nothing is written; a member who may not speak
    /// at the commit's time gets [`WriteResult::Muted`] ([GROUP-4.5]), and a message directed
    /// to a non-member ([`StoredMessage::audience`]) [`WriteResult::AudienceNotMember`]
    /// ([GROUP-4.6]). A retry's result has no
    /// offsets: the dedup record of a group message does not keep one per member.
    AppendGroupMessage {
        /// The app.
        app: String,
        /// The group id.
        group: String,
        /// The message; its `seq` is ignored and its conversation must be `g:` + `group`.
        message: StoredMessage,
        /// A hash of the content, as for [`Write::AppendMessage`].
        content_hash: [u8; 32],
    },
    /// Applies a group operation ([GROUP-2.3]) and, if it changed anything, stores its notice
    /// ([GROUP-3.1]) in the group's conversation with one event per member after the change and
    /// per user the notice names; refused operations write nothing.
    Group {
        /// The app.
        app: String,
        /// The group id.
        group: String,
        /// Who asks.
        actor: String,
        /// The actor's device, the notice's sender device.
        device: String,
        /// What they ask.
        op: GroupOp,
        /// [GROUP-1.3]'s limit.
        max_members: usize,
        /// Renders the notice's content.
        render: NoticeRenderer,
    },
    /// Sets the user's "revoked before" time (Unix seconds).
    Revoke {
        /// The app.
        app: String,
        /// The user.
        user: String,
        /// Tokens minted before this are rejected.
        at: u64,
    },
    /// Creates the user's stream with a fresh epoch if it does not exist yet ([SYNC-3.1]), and
    /// answers its head, [`WriteResult::Stream`]. Through the group committer, so that a storm
    /// of first logins shares fsyncs instead of taking one each.
    OpenStream {
        /// The app.
        app: String,
        /// The user.
        user: String,
    },
}

/// The answer to one [`Write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    /// The message is stored (or was, if `duplicate`).
    Appended {
        /// Its seq.
        seq: u64,
        /// Its server time.
        time_ms: u64,
        /// The offset of its event in each participant's stream.
        offsets: Vec<(String, u64)>,
        /// A retry: these are the first append's values.
        duplicate: bool,
        /// Of the participants, those who asked not to be disturbed by the group: their pushes
        /// are silent ([GROUP-1.7]). Empty for a 1:1 message and for a retry.
        silent: Vec<String>,
    },
    /// The client message id was already used for different content; nothing was stored.
    ClientIdReused,
    /// The read marker.
    ReadSet {
        /// The marker now.
        seq: u64,
        /// The Read event's offset; `None` if the marker did not move.
        offset: Option<u64>,
    },
    /// The nonce was not seen before (or had expired) and is now recorded.
    NonceAccepted,
    /// The nonce was already used.
    NonceReplayed,
    /// The revocation time is set.
    Revoked,
    /// The stream's head ([`Write::OpenStream`]): the epoch it will keep.
    Stream(StreamHead),
    /// A group message's sender is not a member of the group, or there is no such group.
    NotMember,
    /// A directed group message names a user who is not a member ([GROUP-4.6]); nothing was
    /// written.
    AudienceNotMember(String),
    /// A group message's sender may not speak now ([GROUP-4.5]), and why; nothing was
    /// written.
    Muted(Silence),
    /// A group operation was applied.
    GroupChanged(Box<GroupChange>),
    /// A group operation was refused; nothing was written.
    GroupDenied(GroupDenied),
}

/// What an applied group operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChange {
    /// The group after it.
    pub record: GroupRecord,
    /// The notice it stored, with its seq and time; `None` if nothing changed.
    pub notice: Option<StoredMessage>,
    /// The offset of the notice's event in each stream it went to.
    pub offsets: Vec<(String, u64)>,
    /// A join request was recorded rather than granted.
    pub pending: bool,
}

fn check_id(what: &str, id: &str, allow_empty: bool) -> Result<(), StoreError> {
    if id.len() > MAX_ID_LEN {
        return Err(StoreError::InvalidInput(format!(
            "{what} is {} bytes, the store's limit is {MAX_ID_LEN}",
            id.len()
        )));
    }
    if id.is_empty() && !allow_empty {
        return Err(StoreError::InvalidInput(format!("{what} is empty")));
    }
    Ok(())
}

/// A profile change's texts fit the store's fields ([`MAX_TEXT_LEN`]; a name, [`MAX_ID_LEN`]).
fn check_info(change: &InfoChange) -> Result<(), StoreError> {
    if let Some(name) = &change.name {
        check_id("group name", name, true)?;
    }
    let texts = [
        ("avatar URL", change.avatar_url.as_deref()),
        ("announcement", change.announcement.as_deref()),
    ]
    .into_iter()
    .filter_map(|(what, t)| Some((what, t?)))
    .chain(change.set_attributes.iter().flat_map(|(k, v)| {
        [
            ("attribute key", k.as_str()),
            ("attribute value", v.as_str()),
        ]
    }))
    .chain(
        change
            .remove_attributes
            .iter()
            .map(|k| ("attribute key", k.as_str())),
    );
    for (what, text) in texts {
        if text.len() > MAX_TEXT_LEN {
            return Err(StoreError::InvalidInput(format!(
                "{what} is {} bytes, the store's limit is {MAX_TEXT_LEN}",
                text.len()
            )));
        }
    }
    Ok(())
}

/// The checks of a message to append that do not depend on where it goes.
fn check_message(message: &StoredMessage) -> Result<(), StoreError> {
    check_id("sender", &message.sender, false)?;
    check_id("sender_device", &message.sender_device, true)?;
    check_id("client_msg_id", &message.client_msg_id, true)?;
    // The record keeps the audience's size in two bytes ([GROUP-4.6]).
    if message.audience.len() > usize::from(u16::MAX) {
        return Err(StoreError::InvalidInput(format!(
            "an audience of {} users",
            message.audience.len()
        )));
    }
    message
        .audience
        .iter()
        .try_for_each(|u| check_id("audience member", u, false))?;
    if u32::try_from(message.content.len()).is_err() {
        return Err(StoreError::InvalidInput("content over 4 GiB".into()));
    }
    Ok(())
}

impl Write {
    /// Checks that the store can represent this write. [`Store::commit`](crate::Store::commit)
    /// rejects a whole batch with one invalid write; the
    /// [`GroupCommitter`](crate::GroupCommitter) checks each write first and rejects it alone.
    pub fn validate(&self) -> Result<(), StoreError> {
        match self {
            Write::AppendMessage {
                app,
                message,
                participants,
                ..
            } => {
                check_id("app", app, false)?;
                check_id("conversation", &message.conversation, false)?;
                check_message(message)?;
                // [GROUP-4.6]: only a group message has an audience.
                if !message.audience.is_empty() {
                    return Err(StoreError::InvalidInput(
                        "an audience is for group messages only".into(),
                    ));
                }
                if participants.len() > usize::from(u16::MAX) - 1 {
                    return Err(StoreError::InvalidInput(format!(
                        "{} participants",
                        participants.len()
                    )));
                }
                participants
                    .iter()
                    .try_for_each(|p| check_id("participant", p, false))
            }
            Write::SetRead {
                app,
                user,
                device,
                conversation,
                ..
            } => {
                check_id("app", app, false)?;
                check_id("user", user, false)?;
                check_id("device", device, true)?;
                check_id("conversation", conversation, false)
            }
            Write::UseNonce { app, nonce, .. } => {
                check_id("app", app, false)?;
                check_id("nonce", nonce, false)
            }
            Write::Revoke { app, user, .. } | Write::OpenStream { app, user } => {
                check_id("app", app, false)?;
                check_id("user", user, false)
            }
            Write::AppendGroupMessage {
                app,
                group,
                message,
                ..
            } => {
                check_id("app", app, false)?;
                check_id("group", group, false)?;
                if message.conversation.strip_prefix("g:") != Some(group.as_str()) {
                    return Err(StoreError::InvalidInput(format!(
                        "conversation {} is not group {group}'s",
                        message.conversation
                    )));
                }
                check_message(message)
            }
            Write::Group {
                app,
                group,
                actor,
                device,
                op,
                ..
            } => {
                check_id("app", app, false)?;
                check_id("group", group, false)?;
                check_id("actor", actor, false)?;
                check_id("device", device, true)?;
                match op {
                    GroupOp::Create { name, .. } => check_id("group name", name, true)?,
                    GroupOp::SetInfo(change) => check_info(change)?,
                    _ => {}
                }
                op.users()
                    .iter()
                    .try_for_each(|u| check_id("user", u, false))
            }
        }
    }
}

/// What [`Store::apply_retention`](crate::Store::apply_retention) removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionStats {
    /// Conversations whose `visible_from` advanced.
    pub conversations: u64,
    /// Messages dropped.
    pub messages: u64,
    /// Dedup entries dropped with their messages.
    pub dedup_entries: u64,
    /// Events dropped because they pointed below their conversation's `visible_from`.
    pub events: u64,
    /// Expired nonces dropped.
    pub nonces: u64,
}

/// When a commit counts as done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is fsynced before it returns: an acked write survives a power loss.
    #[default]
    Immediate,
    /// Every commit is written to the operating system before it returns, and a background
    /// thread fsyncs every [`StoreConfig::flush_interval`]. An acked write survives a crash of
    /// the process, but a power loss or kernel crash may lose the writes of the last interval.
    Relaxed,
}

/// How to open a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The directory of the database; created if missing.
    pub path: PathBuf,
    /// When a commit counts as done. Default: [`Durability::Immediate`].
    pub durability: Durability,
    /// The background fsync interval of [`Durability::Relaxed`]. Default: 200 ms.
    pub flush_interval: Duration,
    /// The engine's block cache, in bytes. Default: 64 MiB.
    pub cache_size: u64,
}

impl StoreConfig {
    /// The defaults for a database in `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            durability: Durability::Immediate,
            flush_interval: Duration::from_millis(200),
            cache_size: 64 << 20,
        }
    }
}
