//! A seeded property case: random users, devices, sends, abrupt disconnects and reconnects, then
//! the invariants of `spec/sync.md`: nothing acked is lost, nothing is duplicated, each
//! conversation is in seq order without gaps.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use magpie_session::{Body, pb};

use crate::case::{Case, Level, Verdict};
use crate::conn::Conn;
use crate::server::{fresh, login, messages, send_body, server, sync_all};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub(crate) fn case(seed: Option<u64>) -> Case {
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    Case::new("sync/property/1", &["SYNC-5.2", "SYNC-5.3", "SYNC-5.4", "SYNC-2.1", "SYNC-4.3"], Level::Must,
        "Nothing acknowledged is lost, duplicated or reordered: SEND_ACK only after commit; a retry is not stored again; messages in one conversation are ordered by seq, never reused or skipped.",
        move |t| async move {
            let s = server(&t);
            let exp = format!("seed {seed}: every acked message synced exactly once per involved user; per conversation seqs 1..=n in order");
            let mut rng = Rng(seed);
            let users: Vec<String> = (0..3).map(|_| fresh("prop")).collect();
            let devices = ["d1", "d2"];
            let mut conns: BTreeMap<(usize, usize), Conn> = BTreeMap::new();
            // (sender, client_msg_id) -> (to, text); acked ones and in-flight ones.
            let mut acked: BTreeMap<(usize, String), usize> = BTreeMap::new();
            let mut pending: Vec<(usize, usize, String, String, usize)> = Vec::new();
            let mut log = Vec::new();
            for step in 0..40 {
                let (u, d) = (rng.below(users.len()), rng.below(devices.len()));
                if let std::collections::btree_map::Entry::Vacant(e) = conns.entry((u, d)) {
                    match login(s, &users[u], devices[d]).await {
                        Ok((c, _)) => {
                            e.insert(c);
                        }
                        Err(v) => return Verdict::fail(exp, format!("step {step}: {}", v.observed)),
                    }
                    // Retry what this device left unacked (same id, same content).
                    let retry: Vec<_> = pending.iter().filter(|p| p.0 == u && p.1 == d).cloned().collect();
                    pending.retain(|p| !(p.0 == u && p.1 == d));
                    for (_, _, cmid, text, to) in retry {
                        let Some(c) = conns.get_mut(&(u, d)) else { continue };
                        match c.request(send_body(&users[to], &cmid, &text, pb::MessageClass::Content)).await {
                            Ok(Body::SendAck(_)) => {
                                acked.insert((u, cmid), to);
                            }
                            other => return Verdict::fail(exp, format!("step {step}: retry of {cmid}: {other:?}")),
                        }
                    }
                }
                let roll = rng.below(10);
                let to = rng.below(users.len());
                let cmid = format!("p{step}");
                let text = format!("s{step}");
                let Some(c) = conns.get_mut(&(u, d)) else { continue };
                if roll < 6 {
                    match c.request(send_body(&users[to], &cmid, &text, pb::MessageClass::Content)).await {
                        Ok(Body::SendAck(_)) => {
                            acked.insert((u, cmid), to);
                        }
                        other => return Verdict::fail(exp, format!("step {step}: {other:?}")),
                    }
                } else if roll < 8 {
                    // Send and drop the connection before reading the ack.
                    let id = c.id();
                    let _ = c.send_body(id, &send_body(&users[to], &cmid, &text, pb::MessageClass::Content)).await;
                    pending.push((u, d, cmid.clone(), text, to));
                    if let Some(c) = conns.remove(&(u, d)) {
                        c.abort().await;
                    }
                    log.push(format!("{step}: abort {u}/{d} after {cmid}"));
                } else if let Some(c) = conns.remove(&(u, d)) {
                    c.abort().await;
                }
            }
            // Settle: reconnect devices with pending sends and retry them.
            for (u, d, cmid, text, to) in std::mem::take(&mut pending) {
                let mut c = match login(s, &users[u], devices[d]).await {
                    Ok((c, _)) => c,
                    Err(v) => return Verdict::fail(exp, v.observed),
                };
                match c.request(send_body(&users[to], &cmid, &text, pb::MessageClass::Content)).await {
                    Ok(Body::SendAck(_)) => {
                        acked.insert((u, cmid), to);
                    }
                    other => return Verdict::fail(exp, format!("settle retry {cmid}: {other:?}")),
                }
                conns.insert((u, d), c);
            }
            for (_, c) in std::mem::take(&mut conns) {
                c.close().await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            // Check every user from a fresh device.
            for (ui, user) in users.iter().enumerate() {
                let (mut c, w) = match login(s, user, "checker").await {
                    Ok(x) => x,
                    Err(v) => return Verdict::fail(exp, v.observed),
                };
                let (events, _) = match sync_all(&mut c, w.head.map(|h| h.epoch).unwrap_or(0), 0).await {
                    Ok(x) => x,
                    Err(e) => return Verdict::fail(exp, e),
                };
                c.close().await;
                let msgs = messages(&events);
                let mut seen = BTreeSet::new();
                let mut per_conv: BTreeMap<String, Vec<u64>> = BTreeMap::new();
                for m in &msgs {
                    if !seen.insert(m.message_id.clone()) {
                        return Verdict::fail(exp, format!("seed {seed}: user {ui} got {} twice", m.message_id));
                    }
                    per_conv.entry(m.conversation_id.clone()).or_default().push(m.seq);
                }
                for (conv, seqs) in &per_conv {
                    if *seqs != (1..=seqs.len() as u64).collect::<Vec<_>>() {
                        return Verdict::fail(exp, format!("seed {seed}: user {ui} conversation {conv} seqs {seqs:?}"));
                    }
                }
                let got: BTreeSet<(String, String)> = msgs.iter().map(|m| (m.sender.clone(), m.client_msg_id.clone())).collect();
                for ((sender, cmid), to) in &acked {
                    if (*sender == ui || *to == ui) && !got.contains(&(users[*sender].clone(), cmid.clone())) {
                        return Verdict::fail(exp, format!("seed {seed}: acked {cmid} from user {sender} missing for user {ui}"));
                    }
                }
            }
            Verdict::pass(exp, format!("seed {seed}: {} acked messages checked; {} aborts", acked.len(), log.len()))
        })
    .timeout(Duration::from_secs(60))
}
