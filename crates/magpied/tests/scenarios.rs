//! Seeded random scenarios against a real server: several users and devices, random sends,
//! graceful and abrupt disconnects, reconnects and server restarts. Invariant: every acknowledged
//! message reaches every device of its sender and receiver exactly once, in per-conversation
//! order ([SYNC-2.1], [SYNC-3.2], [SYNC-4.3], [SYNC-5.2]). proptest prints the failing case and
//! shrinks it.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::*;
use magpie_session::pb;
use proptest::prelude::*;

const USERS: usize = 3;
const DEVICES: usize = 2;

#[derive(Debug, Clone)]
enum Op {
    Send {
        user: usize,
        device: usize,
        to: usize,
    },
    Disconnect {
        user: usize,
        device: usize,
        abrupt: bool,
    },
    Connect {
        user: usize,
        device: usize,
    },
    Restart,
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..USERS, 0..DEVICES, 0..USERS).prop_map(|(user, device, to)| Op::Send { user, device, to }),
        2 => (0..USERS, 0..DEVICES, any::<bool>()).prop_map(|(user, device, abrupt)| Op::Disconnect { user, device, abrupt }),
        3 => (0..USERS, 0..DEVICES).prop_map(|(user, device)| Op::Connect { user, device }),
        1 => Just(Op::Restart),
        2 => Just(Op::Drain),
    ]
}

struct Device {
    user: String,
    id: String,
    client: Option<TestClient>,
    cursor: pb::Cursor,
    /// Messages processed, in order: (conversation, seq).
    seen: Vec<(String, u64)>,
}

impl Device {
    /// Applies events in offset order: duplicates are dropped, a gap triggers a pull ([SYNC-4.3]).
    async fn process(&mut self, events: Vec<pb::Event>, epoch: u64) {
        for event in events {
            if epoch != 0 && self.cursor.epoch != 0 && epoch != self.cursor.epoch {
                panic!("{}: epoch changed without a reset", self.id);
            }
            if event.offset <= self.cursor.offset {
                continue;
            }
            if event.offset > self.cursor.offset + 1 {
                self.pull().await;
                if event.offset <= self.cursor.offset {
                    continue;
                }
            }
            self.apply(&event, epoch);
        }
    }

    fn apply(&mut self, event: &pb::Event, epoch: u64) {
        if let Some(pb::event::Kind::Message(m)) = &event.kind {
            self.seen.push((m.conversation_id.clone(), m.seq));
        }
        self.cursor = pb::Cursor {
            epoch: if epoch != 0 { epoch } else { self.cursor.epoch },
            offset: event.offset,
        };
    }

    async fn pull(&mut self) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        if client.closed.is_some() {
            return;
        }
        let (events, reply) = client.sync_all(self.cursor).await;
        assert!(!reply.reset, "{}: unexpected reset", self.id);
        for e in &events {
            if e.offset > self.cursor.offset {
                assert_eq!(
                    e.offset,
                    self.cursor.offset + 1,
                    "{}: SYNC returned a gap",
                    self.id
                );
                self.apply(e, reply.epoch);
            }
        }
    }

    async fn drain(&mut self) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        client.drain(Duration::from_millis(15)).await;
        let pushes: Vec<pb::Push> = client.pushes.drain(..).collect();
        for p in pushes {
            self.process(p.events, p.epoch).await;
        }
        if self.client.as_ref().is_some_and(|c| c.closed.is_some()) {
            self.client = None;
        }
    }
}

async fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start_server(dir.path()).await;
    let mut devices: Vec<Device> = (0..USERS * DEVICES)
        .map(|i| Device {
            user: format!("u{}", i / DEVICES),
            id: format!("u{}-d{}", i / DEVICES, i % DEVICES),
            client: None,
            cursor: pb::Cursor::default(),
            seen: Vec::new(),
        })
        .collect();
    // (conversation, seq) → the two users it belongs to.
    let mut acked: BTreeMap<(String, u64), (String, String)> = BTreeMap::new();
    let mut n = 0;
    for op in ops {
        match op {
            Op::Send { user, device, to } => {
                let d = &mut devices[user * DEVICES + device];
                let Some(client) = d.client.as_mut().filter(|c| c.closed.is_none()) else {
                    continue;
                };
                n += 1;
                let to_user = format!("u{to}");
                let body = client
                    .send_text(&to_user, &format!("m{n}"), &format!("message {n}"))
                    .await;
                if let magpie_session::Body::SendAck(a) = body {
                    acked.insert((a.conversation_id, a.seq), (d.user.clone(), to_user));
                }
            }
            Op::Disconnect {
                user,
                device,
                abrupt,
            } => {
                let d = &mut devices[user * DEVICES + device];
                if let Some(c) = d.client.take()
                    && !abrupt
                {
                    c.close().await;
                }
            }
            Op::Connect { user, device } => {
                let d = &mut devices[user * DEVICES + device];
                if d.client.is_none() {
                    d.client = Some(
                        TestClient::login(server.local_addr(), &d.user.clone(), &d.id.clone())
                            .await,
                    );
                    d.pull().await;
                }
            }
            Op::Restart => {
                for d in &mut devices {
                    d.client = None;
                }
                let addr = server.local_addr();
                server.shutdown().await;
                server = start_server_on(dir.path(), addr).await;
            }
            Op::Drain => {
                for d in &mut devices {
                    d.drain().await;
                }
            }
        }
    }
    // Everyone comes back and catches up.
    for d in &mut devices {
        if d.client.is_none() {
            d.client =
                Some(TestClient::login(server.local_addr(), &d.user.clone(), &d.id.clone()).await);
        }
        d.drain().await;
        d.pull().await;
    }
    for d in &devices {
        let unique: HashSet<&(String, u64)> = d.seen.iter().collect();
        assert_eq!(
            unique.len(),
            d.seen.len(),
            "{}: a message was processed twice: {:?}",
            d.id,
            d.seen
        );
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        for (conv, seq) in &d.seen {
            let prev = last.insert(conv, *seq).unwrap_or(0);
            assert!(*seq > prev, "{}: {conv} seq {seq} after {prev}", d.id);
        }
        for ((conv, seq), (from, to)) in &acked {
            if &d.user == from || &d.user == to {
                assert!(
                    unique.contains(&(conv.clone(), *seq)),
                    "{}: acked {conv}/{seq} never arrived",
                    d.id
                );
            }
        }
    }
    server.shutdown().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, max_shrink_iters: 16, ..ProptestConfig::default() })]

    #[test]
    fn every_acked_message_reaches_every_device_once_in_order(ops in prop::collection::vec(op(), 10..40)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(run(ops));
    }
}
