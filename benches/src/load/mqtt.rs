//! MQTT 3.1.1 through rumqttc, at QoS 1: the analogue of an acknowledged message. A connection
//! is a clean-session client whose id is the scenario's name; it receives what is published to
//! the topic of its name (or of its group). A send completes when the broker's PUBACK for that
//! publish comes back.
//!
//! rumqttc reports acks by packet id, and ids are given out by its event loop, which takes
//! publish requests in order and announces each as `Outgoing::Publish(pkid)` in that order. So a
//! send queues its completion in a FIFO (under a lock held until the request is in rumqttc's
//! channel), the event loop moves the head of the FIFO to the pkid it announces, and the PUBACK
//! for that pkid completes it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::transport::{Ack, Inbox, Rx, Transport, Tx};

/// Time allowed for CONNACK and SUBACK.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A broker at one address.
pub(crate) struct Mqtt {
    host: String,
    port: u16,
    /// Publishes in flight per connection at most (rumqttc's `inflight`).
    inflight: u16,
}

impl Mqtt {
    /// A target at `addr` (`HOST:PORT`). `inflight` bounds unacknowledged publishes per
    /// connection; keep it at or above the scenario's send window.
    pub(crate) fn new(addr: &str, inflight: u16) -> Result<Mqtt> {
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("--addr {addr:?}: want HOST:PORT"))?;
        let port = port
            .parse()
            .with_context(|| format!("--addr {addr:?}: bad port"))?;
        Ok(Mqtt {
            host: host.to_owned(),
            port,
            inflight: inflight.max(1),
        })
    }
}

/// Topic of a name or group.
fn topic(name: &str) -> String {
    format!("magpie-bench/{name}")
}

type Done = oneshot::Sender<Result<()>>;

/// Sends waiting for their pkid, then for their PUBACK.
#[derive(Default)]
struct Acks {
    /// Queued in rumqttc's channel, not yet given a pkid.
    queued: VecDeque<Done>,
    /// Published, waiting for PUBACK.
    by_pkid: HashMap<u16, Done>,
    /// Why the connection failed, once it has.
    failed: Option<String>,
}

impl Acks {
    fn fail(&mut self, why: &str) {
        self.failed.get_or_insert_with(|| why.to_owned());
        let err = || Err(anyhow!("mqtt connection failed: {why}"));
        for ack in self.queued.drain(..) {
            let _ = ack.send(err());
        }
        for (_, ack) in self.by_pkid.drain() {
            let _ = ack.send(err());
        }
    }
}

/// Progress of the connection, for [`Mqtt::connect`] to wait on.
#[derive(Debug, Clone, Default)]
struct Ready {
    connected: bool,
    subscribed: usize,
    failed: Option<String>,
}

/// Aborts the event loop when the last half of the connection is dropped.
struct Abort(JoinHandle<()>);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Drives rumqttc's event loop: hands out pkids to queued sends, completes them on PUBACK,
/// forwards incoming publishes to the receiving half.
async fn drive(
    mut eventloop: EventLoop,
    acks: Arc<Mutex<Acks>>,
    ready: watch::Sender<Ready>,
    inbox: mpsc::UnboundedSender<Bytes>,
) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                // A sender's inbox is not read: dropping what arrives there is fine.
                let _ = inbox.send(p.payload);
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                let done = lock(&acks).by_pkid.remove(&ack.pkid);
                if let Some(done) = done {
                    let _ = done.send(Ok(()));
                }
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                let mut a = lock(&acks);
                if let Some(done) = a.queued.pop_front() {
                    a.by_pkid.insert(pkid, done);
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                ready.send_modify(|r| r.connected = true);
            }
            Ok(Event::Incoming(Packet::SubAck(s))) => {
                let refused = s
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure));
                ready.send_modify(|r| {
                    if refused {
                        r.failed = Some("the broker refused a subscription".into());
                    } else {
                        r.subscribed += 1;
                    }
                });
            }
            Ok(_) => {}
            Err(e) => {
                // No reconnects: a lost connection ends the run.
                let why = e.to_string();
                lock(&acks).fail(&why);
                ready.send_modify(|r| r.failed = Some(why));
                return;
            }
        }
    }
}

fn lock(acks: &Mutex<Acks>) -> std::sync::MutexGuard<'_, Acks> {
    // A panic while holding the lock leaves nothing half-done worth refusing to read.
    acks.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Transport for Mqtt {
    type Tx = MqttTx;
    type Rx = MqttRx;

    fn name(&self) -> &'static str {
        "mqtt"
    }

    fn ack(&self) -> &'static str {
        "PUBACK (QoS 1): the broker took responsibility for the message (mosquitto: in memory)"
    }

    async fn connect(&self, name: &str, inbox: Inbox<'_>) -> Result<(MqttTx, MqttRx)> {
        let mut options = MqttOptions::new(name, self.host.clone(), self.port);
        options
            .set_keep_alive(Duration::from_secs(60))
            .set_clean_session(true)
            .set_inflight(self.inflight)
            .set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 4096);
        // Like the other two clients: without TCP_NODELAY, Nagle holds a publish back until the
        // previous one's PUBACK, and loopback throughput collapses to the delayed-ACK clock.
        let mut network = rumqttc::NetworkOptions::new();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        let acks = Arc::new(Mutex::new(Acks::default()));
        let (ready_tx, mut ready) = watch::channel(Ready::default());
        let (inbox_tx, inbox_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(drive(eventloop, acks.clone(), ready_tx, inbox_tx));
        let abort = Arc::new(Abort(task));
        let wanted = match inbox {
            Inbox::None => None,
            Inbox::Own => Some(topic(name)),
            Inbox::Group(group) => Some(topic(group)),
        };
        if let Some(t) = &wanted {
            client
                .subscribe(t.clone(), QoS::AtLeastOnce)
                .await
                .context("mqtt SUBSCRIBE")?;
        }
        let subscriptions = usize::from(wanted.is_some());
        let waited = tokio::time::timeout(
            READY_TIMEOUT,
            ready
                .wait_for(|r| r.failed.is_some() || (r.connected && r.subscribed >= subscriptions)),
        )
        .await;
        let state = match waited {
            Ok(Ok(state)) => state.clone(),
            Ok(Err(_)) => bail!("mqtt event loop ended"),
            Err(_) => bail!(
                "no CONNACK/SUBACK from the MQTT broker at {}:{} in {READY_TIMEOUT:?}",
                self.host,
                self.port
            ),
        };
        if let Some(why) = state.failed {
            bail!(
                "cannot connect to the MQTT broker at {}:{} (is mosquitto running?): {why}",
                self.host,
                self.port
            );
        }
        let tx = MqttTx {
            client,
            acks,
            order: Arc::new(tokio::sync::Mutex::new(())),
            _abort: abort.clone(),
        };
        Ok((
            tx,
            MqttRx {
                inbox: inbox_rx,
                _abort: abort,
            },
        ))
    }
}

/// Publishes at QoS 1 on one connection.
#[derive(Clone)]
pub(crate) struct MqttTx {
    client: AsyncClient,
    acks: Arc<Mutex<Acks>>,
    /// Held from queuing the completion until rumqttc has the request, so the FIFO of
    /// completions has the order of rumqttc's channel even when clones send concurrently.
    order: Arc<tokio::sync::Mutex<()>>,
    _abort: Arc<Abort>,
}

impl Tx for MqttTx {
    async fn send(&self, to: &str, body: Bytes) -> Result<Ack> {
        let (done, acked) = oneshot::channel();
        {
            let _order = self.order.lock().await;
            {
                let mut a = lock(&self.acks);
                if let Some(why) = &a.failed {
                    bail!("mqtt connection failed: {why}");
                }
                a.queued.push_back(done);
            }
            if let Err(e) = self
                .client
                .publish_bytes(topic(to), QoS::AtLeastOnce, false, body)
                .await
            {
                // The event loop is gone; fail what is queued, this send included.
                lock(&self.acks).fail(&e.to_string());
            }
        }
        Ok(Box::pin(async move {
            acked
                .await
                .map_err(|_| anyhow!("mqtt event loop ended before PUBACK"))?
        }))
    }
}

/// Payloads of the publishes a connection receives.
pub(crate) struct MqttRx {
    inbox: mpsc::UnboundedReceiver<Bytes>,
    _abort: Arc<Abort>,
}

impl Rx for MqttRx {
    async fn recv(&mut self) -> Result<Bytes> {
        self.inbox
            .recv()
            .await
            .ok_or_else(|| anyhow!("mqtt connection ended"))
    }
}
