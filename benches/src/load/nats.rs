//! Core NATS (no JetStream) through async-nats: a connection receives what is published to the
//! subject of its name (or of its group). Core NATS has no publish acknowledgement (at most once),
//! so a send completes when async-nats has flushed the publish to the socket: the closest thing
//! to an ack the protocol has.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use futures::StreamExt;

use super::transport::{Ack, Inbox, Rx, Transport, Tx};

/// Time allowed to connect and to see a subscription take effect.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A nats-server at one address.
pub(crate) struct Nats {
    addr: String,
}

impl Nats {
    /// A target at `addr` (`HOST:PORT`).
    pub(crate) fn new(addr: String) -> Nats {
        Nats { addr }
    }
}

/// Subject of a name or group.
fn subject(name: &str) -> String {
    format!("magpie-bench.{name}")
}

impl Transport for Nats {
    type Tx = NatsTx;
    type Rx = NatsRx;

    fn name(&self) -> &'static str {
        "nats"
    }

    fn ack(&self) -> &'static str {
        "none in core NATS (at most once): a send completes when the publish is flushed to the socket"
    }

    async fn connect(&self, name: &str, inbox: Inbox<'_>) -> Result<(NatsTx, NatsRx)> {
        let connect = async_nats::ConnectOptions::new()
            .name(name)
            // Receivers read as fast as they can; a deep buffer keeps a burst from being
            // dropped in the client as a slow consumer.
            .subscription_capacity(1 << 18)
            .connect(self.addr.as_str());
        let client = tokio::time::timeout(READY_TIMEOUT, connect)
            .await
            .map_err(|_| anyhow!("connecting to nats-server at {}: timed out", self.addr))?
            .with_context(|| {
                format!(
                    "cannot connect to nats-server at {} (is it running?)",
                    self.addr
                )
            })?;
        let wanted = match inbox {
            Inbox::None => None,
            Inbox::Own => Some(subject(name)),
            Inbox::Group(group) => Some(subject(group)),
        };
        let subscriber = match wanted {
            Some(s) => {
                let sub = client.subscribe(s).await.context("nats SUB")?;
                confirm_subscribed(&client, name).await?;
                Some(sub)
            }
            None => None,
        };
        Ok((
            NatsTx {
                client: client.clone(),
            },
            NatsRx {
                _client: client,
                subscriber,
            },
        ))
    }
}

/// Waits until the server has processed this connection's SUB: it handles a connection's
/// operations in order, so once a probe published after the SUB comes back on a probe
/// subscription made after it, the SUB is in effect for publishers on other connections.
async fn confirm_subscribed(client: &async_nats::Client, name: &str) -> Result<()> {
    let probe = subject(&format!("probe.{name}"));
    let mut sub = client
        .subscribe(probe.clone())
        .await
        .context("nats SUB (probe)")?;
    client
        .publish(probe, Bytes::from_static(b"probe"))
        .await
        .context("nats PUB (probe)")?;
    client.flush().await.context("nats flush (probe)")?;
    match tokio::time::timeout(READY_TIMEOUT, sub.next()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => bail!("nats connection ended while subscribing"),
        Err(_) => bail!("nats subscription not confirmed in {READY_TIMEOUT:?}"),
    }
}

/// Publishes on one connection.
#[derive(Clone)]
pub(crate) struct NatsTx {
    client: async_nats::Client,
}

impl Tx for NatsTx {
    async fn send(&self, to: &str, body: Bytes) -> Result<Ack> {
        self.client
            .publish(subject(to), body)
            .await
            .context("nats PUB")?;
        let client = self.client.clone();
        Ok(Box::pin(async move {
            client.flush().await.context("nats flush")?;
            Ok(())
        }))
    }
}

/// Payloads of what a connection's subscription receives.
pub(crate) struct NatsRx {
    /// Kept so the connection lives as long as the receiving half.
    _client: async_nats::Client,
    subscriber: Option<async_nats::Subscriber>,
}

impl Rx for NatsRx {
    async fn recv(&mut self) -> Result<Bytes> {
        let Some(sub) = self.subscriber.as_mut() else {
            bail!("this nats connection subscribed to nothing");
        };
        sub.next()
            .await
            .map(|m| m.payload)
            .ok_or_else(|| anyhow!("nats subscription ended"))
    }
}
