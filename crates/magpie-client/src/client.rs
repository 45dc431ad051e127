//! The application's handle: [`Client`] for requests, [`Events`] for what happens.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use magpie_session::{Body, pb};
use tokio::sync::{mpsc, oneshot, watch};

use crate::driver::{Command, Driver, DriverParts, UserRequest};
use crate::error::ClientError;
use crate::event::Event;
use crate::options::ClientOptions;

/// A handle to a connected client. Cheap to clone; every clone talks to the same connection.
///
/// One background task owns the connection; it reconnects on its own ([SESSION-4.2]) and sends
/// again what was not answered. The task ends after [`close`](Client::close), after a final
/// CLOSE (token errors, kicks, refusals), after `max_reconnects` failed attempts, or when every
/// `Client` handle is dropped.
#[derive(Clone, Debug)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    cursor: watch::Receiver<Option<pb::Cursor>>,
    user_id: String,
    session_id: String,
    device_id: String,
    ended: Arc<OnceLock<String>>,
    /// [`ClientOptions::rate_limit_waits`].
    rate_limit_waits: u32,
    /// [`ClientOptions::rate_limit_max_wait`].
    rate_limit_max_wait: std::time::Duration,
}

/// The events of a client, in order (see [`Event`]). Also a [`futures::Stream`].
///
/// The channel is unbounded: an app that does not read its events keeps them in memory.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Events {
    /// The next event; `None` once the client has stopped and every event was read.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is ready.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

impl futures::Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}

/// A fresh client message id ([SYNC-5.1]: unique per sender while the message is retained):
/// 22 characters of base64url from 128 random bits drawn once per process, then a counter in
/// hex, at most 38 characters.
///
/// Random bits from the operating system for every message cost a system call each (3% of a
/// sending client's CPU in `magpie-bench pairs`), and a run of ids that share their first 22
/// characters compresses where independent random ids cannot (merged containers of chat
/// messages: 37% of their size instead of 47%, `benches/` wire report). Two processes of one
/// sender collide only if they draw the same 128 bits.
pub fn new_client_msg_id() -> Result<String, ClientError> {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let prefix = match PREFIX.get() {
        Some(p) => p,
        None => {
            let drawn = magpie_auth::random_nonce().map_err(ClientError::Random)?;
            PREFIX.get_or_init(|| drawn)
        }
    };
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(format!("{prefix}{n:x}"))
}

/// Text content.
pub fn text(text: impl Into<String>) -> pb::Content {
    pb::Content {
        kind: Some(pb::content::Kind::Text(pb::Text {
            text: text.into(),
            mentions: Vec::new(),
        })),
    }
}

fn unexpected(request: &'static str, body: &Body) -> ClientError {
    match body {
        Body::RequestError(e) => ClientError::request(e),
        other => ClientError::UnexpectedReply {
            request,
            got: other.frame_type().to_string(),
        },
    }
}

impl Client {
    /// Connects to the first server of `options.servers` that answers (B6) and returns once the
    /// session is open (WELCOME), or with the error that prevented it: a CLOSE such as
    /// `TOKEN_EXPIRED` ([`ClientError::Closed`]), or no server reachable
    /// ([`ClientError::Connect`]).
    ///
    /// Must be called inside a tokio runtime: it spawns the connection's task.
    pub async fn connect(options: ClientOptions) -> Result<(Client, Events), ClientError> {
        options.validate()?;
        let device_id = options.device_id.clone();
        let (rate_limit_waits, rate_limit_max_wait) =
            (options.rate_limit_waits, options.rate_limit_max_wait);
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (cursor_tx, cursor_rx) = watch::channel(
            options
                .cursor
                .map(|(epoch, offset)| pb::Cursor { epoch, offset }),
        );
        let (ready_tx, ready_rx) = oneshot::channel();
        let ended = Arc::new(OnceLock::new());
        let driver = Driver::new(DriverParts {
            options,
            events: events_tx,
            commands: commands_rx,
            cursor: cursor_tx,
            ready: ready_tx,
            ended: Arc::clone(&ended),
        });
        tokio::spawn(driver.run());
        let opened = match ready_rx.await {
            Ok(result) => result?,
            Err(_) => {
                return Err(ClientError::Shutdown {
                    reason: ended.get().cloned(),
                });
            }
        };
        Ok((
            Client {
                commands: commands_tx,
                cursor: cursor_rx,
                user_id: opened.user_id,
                session_id: opened.session_id,
                device_id,
                ended,
                rate_limit_waits,
                rate_limit_max_wait,
            },
            Events { rx: events_rx },
        ))
    }

    /// The authenticated user id (from the first WELCOME).
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The session id of the first WELCOME.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// This device's id.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The cursor: epoch and highest offset processed. Keep it to start the next run there
    /// ([`ClientOptions::cursor`]).
    pub fn cursor(&self) -> Option<pb::Cursor> {
        *self.cursor.borrow()
    }

    /// Whether the background task has stopped.
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    fn shutdown(&self) -> ClientError {
        ClientError::Shutdown {
            reason: self.ended.get().cloned(),
        }
    }

    /// Sends a request and waits for its reply. Requests made while disconnected wait for the
    /// next session; requests unanswered when a connection drops are sent again on the next.
    async fn request(&self, body: Body) -> Result<Body, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Request(UserRequest {
                body: Box::new(body),
                reply,
            }))
            .map_err(|_| self.shutdown())?;
        answer.await.map_err(|_| self.shutdown())?
    }

    /// Sends a message to user `to` with a fresh client message id and waits for SEND_ACK
    /// ([SYNC-5.2]). If the connection drops before the ack, the same SEND (same id) goes again
    /// after reconnecting; the server stores it once ([SYNC-5.3]).
    pub async fn send(
        &self,
        to: &str,
        content: pb::Content,
        class: pb::MessageClass,
    ) -> Result<pb::SendAck, ClientError> {
        let id = new_client_msg_id()?;
        self.send_with_id(to, &id, content, class).await
    }

    /// [`send`](Self::send) of text content, class CONTENT.
    pub async fn send_text(&self, to: &str, body: &str) -> Result<pb::SendAck, ClientError> {
        self.send(to, text(body), pb::MessageClass::Content).await
    }

    /// [`send`](Self::send) with the given client message id (1 to 64 bytes, unique per sender).
    pub async fn send_with_id(
        &self,
        to: &str,
        client_msg_id: &str,
        content: pb::Content,
        class: pb::MessageClass,
    ) -> Result<pb::SendAck, ClientError> {
        self.send_to_members(to, &[], client_msg_id, content, class)
            .await
    }

    /// [`send_with_id`](Self::send_with_id) to group conversation `group` (`g:<id>`) for the
    /// listed members only (`spec/groups.md` §4.6): the others see its seq as a tombstone. A
    /// non-member in the list is `NOT_PERMITTED` and nothing is stored. With no members listed
    /// it is [`send_with_id`](Self::send_with_id), to a user or a whole group.
    pub async fn send_to_members(
        &self,
        group: &str,
        to_members: &[&str],
        client_msg_id: &str,
        content: pb::Content,
        class: pb::MessageClass,
    ) -> Result<pb::SendAck, ClientError> {
        let send = pb::Send {
            to: group.to_owned(),
            client_msg_id: client_msg_id.to_owned(),
            class: class as i32,
            content: Some(content),
            to_members: to_members.iter().map(|u| (*u).to_owned()).collect(),
        };
        self.send_packet(send).await
    }

    /// Sends `send`, waiting out up to `rate_limit_waits` RATE_LIMITED answers of at most
    /// `rate_limit_max_wait` each ([SESSION-6.5]): the same SEND (same client message id) goes
    /// again after each wait.
    async fn send_packet(&self, send: pb::Send) -> Result<pb::SendAck, ClientError> {
        let mut waits = 0;
        loop {
            match self.request(Body::Send(send.clone())).await? {
                Body::SendAck(ack) => return Ok(ack),
                other => match unexpected("SEND", &other) {
                    ClientError::Request {
                        retry_after: Some(wait),
                        ..
                    } if waits < self.rate_limit_waits && wait <= self.rate_limit_max_wait => {
                        waits += 1;
                        tokio::time::sleep(wait).await;
                    }
                    e => return Err(e),
                },
            }
        }
    }

    /// A page of a conversation ([SYNC-8.2]): up to `limit` messages from `from_seq` upward, or
    /// downward with `backward` (`from_seq` 0 and `backward`: from the newest).
    pub async fn history(
        &self,
        conversation: &str,
        from_seq: u64,
        backward: bool,
        limit: u32,
    ) -> Result<pb::HistoryReply, ClientError> {
        let history = pb::History {
            conversation_id: conversation.to_owned(),
            from_seq,
            backward,
            limit,
        };
        match self.request(Body::History(history)).await? {
            Body::HistoryReply(reply) => Ok(reply),
            other => Err(unexpected("HISTORY", &other)),
        }
    }

    /// Marks a conversation read up to `seq` ([SYNC-7.1]).
    pub async fn read(&self, conversation: &str, seq: u64) -> Result<(), ClientError> {
        let read = pb::Read {
            conversation_id: conversation.to_owned(),
            seq,
        };
        match self.request(Body::Read(read)).await? {
            Body::Ok(_) => Ok(()),
            other => Err(unexpected("READ", &other)),
        }
    }

    async fn watch_request(&self, users: Vec<String>, unwatch: bool) -> Result<(), ClientError> {
        match self
            .request(Body::Watch(pb::Watch { users, unwatch }))
            .await?
        {
            Body::Ok(_) => Ok(()),
            other => Err(unexpected("WATCH", &other)),
        }
    }

    /// Receives presence events for these users ([SESSION-7.1]); the list is restored after each
    /// reconnect.
    pub async fn watch(&self, users: Vec<String>) -> Result<(), ClientError> {
        self.watch_request(users, false).await
    }

    /// Stops receiving presence events for these users.
    pub async fn unwatch(&self, users: Vec<String>) -> Result<(), ClientError> {
        self.watch_request(users, true).await
    }

    /// The current status of these users, in order, without watching them ([SESSION-7.3]).
    pub async fn presence(
        &self,
        users: Vec<String>,
    ) -> Result<Vec<pb::PresenceStatus>, ClientError> {
        match self
            .request(Body::PresenceQuery(pb::PresenceQuery { users }))
            .await?
        {
            Body::PresenceReply(reply) => Ok(reply.statuses),
            other => Err(unexpected("PRESENCE_QUERY", &other)),
        }
    }

    /// One operation on a group (`spec/groups.md`), answered with the group as it is after it.
    /// Like every request, one unanswered when the connection drops is sent again after
    /// reconnecting. Most operations are idempotent ([GROUP-2.4]); a retry of one that did take
    /// effect can still be refused: `create` with `GROUP_EXISTS`, `leave` and `transfer` with
    /// `NOT_PERMITTED`, `dismiss` with `UNKNOWN_GROUP`. Ask `info` to see where the group stands.
    pub async fn group(
        &self,
        group_id: &str,
        op: pb::group::Op,
    ) -> Result<pb::GroupReply, ClientError> {
        let group = pb::Group {
            group_id: group_id.to_owned(),
            op: Some(op),
        };
        match self.request(Body::Group(group)).await? {
            Body::GroupReply(reply) => Ok(reply),
            other => Err(unexpected("GROUP", &other)),
        }
    }

    /// A page of the groups the user is a member of (`spec/groups.md` §2.7), from just after
    /// group `after` (empty: from the start), at most `limit` (0: 100): the reply's `groups`,
    /// each with the user's `role`, and `next`, the `after` of the rest (empty at the end).
    pub async fn my_groups(&self, after: &str, limit: u32) -> Result<pb::GroupReply, ClientError> {
        let query = pb::GroupMineQuery {
            after: after.to_owned(),
            limit,
        };
        self.group("", pb::group::Op::Mine(query)).await
    }

    /// Closes the session gracefully (CLOSE `NO_ERROR`) and waits for the task to end. Requests
    /// still pending fail with [`ClientError::Shutdown`]. Closing a closed client is a no-op.
    pub async fn close(&self) {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Close(done)).is_ok() {
            let _ = finished.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_msg_ids_are_distinct_valid_and_share_their_random_part() {
        let ids: Vec<String> = (0..1000)
            .map(|_| new_client_msg_id().expect("random bits"))
            .collect();
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        for id in &ids {
            assert!((1..=64).contains(&id.len()), "[SYNC-5.1] length of {id}");
            assert_eq!(id[..22], ids[0][..22]);
        }
    }
}
