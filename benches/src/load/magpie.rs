//! Magpie through its client library (`magpie-client`): a connection is a [`Client`] logged in
//! as one user with a token minted here from the app secret; a send completes on SEND_ACK, which
//! magpied answers once the message is committed (fsync'd with the default durability). A
//! fan-out goes to a group (`spec/groups.md`): the sender creates it once with every receiver as
//! a member, then each message is one SEND to `g:` + the group, stored with one commit that
//! appends it to every member's stream.

use std::task::Poll;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use magpie_auth::{AppSecret, Device, Platform, TokenClaims, mint, random_nonce};
use magpie_client::{Client, ClientOptions, Event, Events, pb, text};
use tempfile::TempDir;

use super::transport::{Ack, Inbox, Rx, Transport, Tx};

/// Users named per GROUP request: magpied's default `max_group_request_users` ([GROUP-1.3]).
const GROUP_REQUEST_USERS: usize = 100;

/// The device id every bench connection uses, unless a scenario names its own.
pub(crate) const DEVICE: &str = "bench";

/// A magpied reached at one address.
pub(crate) struct Magpie {
    addr: String,
    app: String,
    secret: AppSecret,
}

impl Magpie {
    /// A target at `addr`, logging in to `app` with tokens minted from `secret`.
    pub(crate) fn new(addr: String, app: String, secret: &str) -> Result<Magpie> {
        magpie_auth::validate_app_id(&app).map_err(|e| anyhow!("--app {app:?}: {e}"))?;
        let secret = AppSecret::new(secret).map_err(|e| anyhow!("--secret: {e}"))?;
        Ok(Magpie { addr, app, secret })
    }

    /// The server address.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// A login token for `user`, any device, valid for an hour.
    fn token(&self, user: &str) -> Result<String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = TokenClaims {
            app_id: self.app.clone(),
            user_id: user.to_owned(),
            device: Device::Any,
            platform: Platform::Other,
            not_before: now.saturating_sub(60),
            expires: now + 3600,
            nonce: random_nonce().map_err(|e| anyhow!("token nonce: {e}"))?,
        };
        mint(&claims, &self.secret).map_err(|e| anyhow!("minting a token for {user:?}: {e}"))
    }

    /// Client options for `user` on `device`, connecting to `server` (the target's address, or
    /// a proxy in front of it). A bench client gives up after a few failed reconnects, so a dead
    /// server ends the run instead of stalling it.
    pub(crate) fn options(&self, user: &str, device: &str, server: &str) -> Result<ClientOptions> {
        let mut options = ClientOptions::new(
            vec![server.to_owned()],
            self.app.clone(),
            self.token(user)?,
            device,
            Platform::Other,
        );
        options.max_reconnects = Some(3);
        Ok(options)
    }

    /// Connects with `options`.
    pub(crate) async fn connect_with(
        &self,
        options: ClientOptions,
    ) -> Result<(MagpieTx, MagpieRx)> {
        let (client, events) = Client::connect(options).await.with_context(|| {
            format!(
                "cannot log in to magpied at {} (is it running, and are --app/--secret right?)",
                self.addr
            )
        })?;
        let rx = MagpieRx {
            _client: client.clone(),
            events,
        };
        Ok((MagpieTx { client }, rx))
    }
}

impl Transport for Magpie {
    type Tx = MagpieTx;
    type Rx = MagpieRx;

    fn name(&self) -> &'static str {
        "magpie"
    }

    fn ack(&self) -> &'static str {
        "SEND_ACK: the server stored the message (committed per its durability setting)"
    }

    fn fanout_mechanism(&self, receivers: u32) -> String {
        let members = u64::from(receivers) + 1;
        format!(
            "one send per message to a group of the {receivers} receivers and the sender \
             (one commit, {members} stream events)"
        )
    }

    fn group_address(&self, group: &str) -> String {
        format!("g:{group}")
    }

    /// One `create` of a public group, owned by the sender, then `invite`s: at most
    /// [`GROUP_REQUEST_USERS`] members per request, magpied's default `max_group_request_users`
    /// ([GROUP-1.3]). A few notices in all, which every member's [`MagpieRx`] skips. (Each
    /// receiver joining on its own would write a JOINED notice to the stream of every member so
    /// far: O(N²) events.)
    async fn prepare_group(&self, tx: &MagpieTx, group: &str, members: &[String]) -> Result<()> {
        let mut chunks = members.chunks(GROUP_REQUEST_USERS);
        let create = pb::GroupCreate {
            name: group.to_owned(),
            private: false,
            members: chunks.next().unwrap_or_default().to_vec(),
        };
        let ops = std::iter::once(pb::group::Op::Create(create))
            .chain(chunks.map(|c| pb::group::Op::Invite(pb::GroupUsers { users: c.to_vec() })));
        for op in ops {
            tx.client.group(group, op).await.with_context(|| {
                format!(
                    "making group {group} of {} members (magpied's max_group_members, \
                     3000 by default, counts the owner too)",
                    members.len()
                )
            })?;
        }
        Ok(())
    }

    /// Every inbox is the user's own stream: a [`Inbox::Group`] receiver only logs in, and
    /// [`prepare_group`](Transport::prepare_group) makes it a member.
    async fn connect(&self, name: &str, _inbox: Inbox<'_>) -> Result<(MagpieTx, MagpieRx)> {
        let options = self.options(name, DEVICE, &self.addr)?;
        self.connect_with(options).await
    }
}

/// Sends as one Magpie user.
#[derive(Clone)]
pub(crate) struct MagpieTx {
    client: Client,
}

impl MagpieTx {
    /// The device's cursor (epoch, offset), to reconnect from later.
    pub(crate) fn cursor(&self) -> Option<(u64, u64)> {
        self.client.cursor().map(|c| (c.epoch, c.offset))
    }

    /// Closes the session gracefully.
    pub(crate) async fn close(&self) {
        self.client.close().await;
    }
}

impl Tx for MagpieTx {
    async fn send(&self, to: &str, body: Bytes) -> Result<Ack> {
        let body = String::from_utf8(body.to_vec()).context("a Magpie body must be text")?;
        let client = self.client.clone();
        let to = to.to_owned();
        let mut sending = Box::pin(async move {
            client
                .send(&to, text(body), pb::MessageClass::Content)
                .await
                .with_context(|| format!("SEND to {to}"))
        });
        // `Client::send` hands the SEND to the connection's task before its first await (the
        // reply), so one poll queues it, in call order.
        if let Poll::Ready(result) = futures::poll!(sending.as_mut()) {
            result?;
            return Ok(Box::pin(std::future::ready(Ok(()))));
        }
        Ok(Box::pin(async move {
            sending.await?;
            Ok(())
        }))
    }
}

/// The events of one Magpie client: message bodies, in offset order. Group notices (class
/// NOTIFICATION, `GroupNotice` content, such as the CREATED of a fan-out's group) are not the
/// scenario's messages and are skipped; any other non-text message is returned as an empty body,
/// which the scenario's check counts as foreign.
pub(crate) struct MagpieRx {
    /// The session lasts while a handle does, so the receiving half keeps one.
    _client: Client,
    events: Events,
}

impl Rx for MagpieRx {
    async fn recv(&mut self) -> Result<Bytes> {
        loop {
            match self.events.recv().await {
                Some(Event::Message(m)) => {
                    let notification = m.item.class == pb::MessageClass::Notification as i32;
                    match m.item.content.and_then(|c| c.kind) {
                        Some(pb::content::Kind::GroupNotice(_)) if notification => {}
                        Some(pb::content::Kind::Text(t)) => return Ok(Bytes::from(t.text)),
                        _ => return Ok(Bytes::new()),
                    }
                }
                Some(Event::Disconnected {
                    reconnecting: false,
                    name,
                    reason,
                    ..
                }) => bail!("magpie session ended: {name}: {reason}"),
                Some(_) => {}
                None => bail!("magpie client stopped"),
            }
        }
    }
}

/// A magpied running inside this process on 127.0.0.1 with a fresh temporary data directory.
pub(crate) struct Embedded {
    server: magpied::Server,
    _dir: TempDir,
}

/// A packet rate (a second) and burst for magpied ([SESSION-6.6]) that no scenario comes near;
/// a tenth of it for the send rate, which must leave room in the packet rate.
const UNREACHED_RATE: u32 = 1_000_000_000;

impl Embedded {
    /// Starts it, serving `app` with `secret`.
    pub(crate) async fn start(
        app: &str,
        secret: &str,
        durability: magpied::DurabilityMode,
    ) -> Result<Embedded> {
        let dir = tempfile::tempdir().context("temporary data directory")?;
        let settings = magpied::Settings {
            durability,
            // The peers run without rate limits; here the limiters still run, at rates no
            // scenario reaches (the same as `benches/bench.toml` for the scripts).
            send_rate: UNREACHED_RATE / 10,
            send_burst: UNREACHED_RATE / 10,
            packet_rate: UNREACHED_RATE,
            packet_burst: UNREACHED_RATE,
            ..magpied::Settings::embedded(dir.path(), app, secret)
        };
        let server = magpied::Server::start(settings)
            .await
            .context("starting the embedded magpied")?;
        Ok(Embedded { server, _dir: dir })
    }

    /// Its address.
    pub(crate) fn addr(&self) -> String {
        self.server.local_addr().to_string()
    }

    /// Stops it gracefully.
    pub(crate) async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
