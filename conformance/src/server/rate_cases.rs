//! Rate cases (`spec/session.md` §6.4–6.6), judged against the rates the server declares
//! (`--send-rate`, `--send-burst`, `--packet-rate`, `--packet-burst`; by default the reference
//! server's).

use std::time::{Duration, Instant};

use magpie_session::{Body, pb};

use crate::case::{Case, Level, Verdict};
use crate::conn::{Conn, Seen, WAIT};
use crate::raw::frame;
use crate::server::{
    RATE_LIMITED, judge_close, login, send_ack, send_body, server, still_alive, wait_out,
};

const BAD_REQUEST_FLOOD: u64 = 0x16;

/// The longest `retry_after_ms` the send-rate case waits out.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// What a server answered to SENDs written back to back.
#[derive(Default)]
struct Answers {
    acked: Vec<pb::SendAck>,
    /// The client message ids refused with `RATE_LIMITED`, and the refusals.
    refused: Vec<(String, pb::RequestError)>,
}

/// Writes a SEND of text "r" to `to` for each id, all before reading any answer, then reads
/// the answers.
async fn back_to_back(c: &mut Conn, to: &str, cmids: &[String]) -> Result<Answers, String> {
    let mut sent = Vec::with_capacity(cmids.len());
    for cmid in cmids {
        let id = c.id();
        c.send_body(id, &send_body(to, cmid, "r", pb::MessageClass::Content))
            .await?;
        sent.push((id, cmid));
    }
    let mut answers = Answers::default();
    for (id, cmid) in sent {
        match c.reply(id).await? {
            Body::SendAck(a) => answers.acked.push(a),
            Body::RequestError(e) if e.code == RATE_LIMITED => {
                answers.refused.push((cmid.clone(), e));
            }
            other => return Err(format!("SEND {cmid} answered with {other:?}")),
        }
    }
    Ok(answers)
}

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case::new("session/6.4/1", &["SESSION-6.4", "ERR-1.4", "SESSION-6.6"], Level::Must,
            "A server MUST bound how fast it accepts each user's SENDs, counted over all of the user's sessions together. A SEND past the bound is answered RATE_LIMITED and has no effect: no seq is allocated, and its client_msg_id stays unused. The RequestError carries retry_after_ms, at least 1 (and 0 with every other code). The packet rate MUST NOT be below what the send rate lets a user send.",
            |t| async move {
                let s = server(&t);
                let rates = s.rates;
                let (a, b) = (crate::server::fresh("rated"), crate::server::fresh("peer"));
                let (mut c1, _) = match login(s, &a, "d1").await { Ok(x) => x, Err(v) => return v };
                let (mut c2, _) = match login(s, &a, "d2").await { Ok(x) => x, Err(v) => return v };
                let burst = rates.send_burst as usize;
                let exp = format!(
                    "at the declared {}/s with bursts of {burst}: a burst from one session, then RATE_LIMITED on the other within the bound (burst + rate × elapsed + 1) with retry_after_ms ≥ 1; the refused SEND sent again later is new and takes the next seq; other errors carry retry_after_ms 0; both sessions stay open",
                    rates.send_rate
                );
                // [ERR-1.4]: another refusal says nothing of waiting.
                match c1.request(send_body(&b, "", "r", pb::MessageClass::Content)).await {
                    Ok(Body::RequestError(e)) if e.code != RATE_LIMITED && e.retry_after_ms == 0 => {}
                    other => return Verdict::fail(&exp, format!("SEND without a client_msg_id answered {other:?}")),
                }
                let started = Instant::now();
                let mut answers = Answers::default();
                // A burst from the first session, then from the other until refused or a whole
                // burst more (a bound per session would let it have one). Ten at a time: the
                // user's other session is pushed every message, and a server may take a larger
                // burst of pushes to a session that reads nothing as a slow reader ([SESSION-6.1]).
                let mut first = 0;
                let mut second = 0;
                while first < burst || (answers.refused.is_empty() && second < burst) {
                    let (c, sent, prefix) = if first < burst {
                        (&mut c1, &mut first, "one")
                    } else {
                        (&mut c2, &mut second, "two")
                    };
                    let ids: Vec<String> = (*sent..(*sent + 10).min(burst)).map(|i| format!("{prefix}-{i}")).collect();
                    *sent += ids.len();
                    match back_to_back(c, &b, &ids).await {
                        Ok(more) => {
                            answers.acked.extend(more.acked);
                            answers.refused.extend(more.refused);
                        }
                        Err(e) => return Verdict::fail(&exp, e),
                    }
                }
                let elapsed = started.elapsed();
                let acked = answers.acked.len();
                let bound = burst + (f64::from(rates.send_rate) * elapsed.as_secs_f64()).ceil() as usize + 1;
                let observed = format!(
                    "{acked} of {} SENDs acknowledged ({first} sent from the first session, {second} from the second) in {} ms, {} refused",
                    first + second,
                    elapsed.as_millis(),
                    answers.refused.len()
                );
                let Some((cmid, refusal)) = answers.refused.first().cloned() else {
                    // Twice the burst within burst / rate outpaces any bucket of that rate; a
                    // slower run proves nothing either way.
                    let window = f64::from(rates.send_burst) / f64::from(rates.send_rate);
                    if elapsed.as_secs_f64() > window {
                        return Verdict::info(&exp, format!("{observed}: slower than the {window:.2} s it takes the declared rate to refill a burst, so not judged"));
                    }
                    return Verdict::fail(&exp, format!("{observed}: never RATE_LIMITED"));
                };
                if acked > bound {
                    return Verdict::fail(&exp, format!("{observed}: past the bound of {bound}"));
                }
                if refusal.retry_after_ms == 0 {
                    return Verdict::fail(&exp, format!("{observed}: RATE_LIMITED with retry_after_ms 0"));
                }
                let wait = Duration::from_millis(u64::from(refusal.retry_after_ms));
                if wait > MAX_WAIT {
                    return Verdict::info(&exp, format!("{observed}: retry_after_ms {} is past what this case waits", refusal.retry_after_ms));
                }
                // [ERR-1.2]: the refused SEND left nothing behind.
                wait_out(&refusal).await;
                let ack = match send_ack(&mut c2, &b, &cmid, "r").await {
                    Ok(a) => a,
                    Err(e) => return Verdict::fail(&exp, format!("{observed}; {cmid} sent again: {e}")),
                };
                if ack.duplicate || ack.seq != acked as u64 + 1 {
                    return Verdict::fail(&exp, format!(
                        "{observed}; {cmid} sent again after {} ms: seq {} duplicate {} (expected seq {}, new)",
                        refusal.retry_after_ms, ack.seq, ack.duplicate, acked + 1
                    ));
                }
                // [SESSION-6.6]: a burst of SENDs is no reason to close the connection.
                if let Err(e) = c1.ping(b"rate").await {
                    return Verdict::fail(&exp, format!("{observed}; the first session is gone: {e}"));
                }
                c1.close().await;
                c2.close().await;
                Verdict::pass(exp, format!(
                    "{observed}; retry_after_ms {}; sent again it got seq {}, new; both sessions open",
                    refusal.retry_after_ms, ack.seq
                ))
            })
        .timeout(Duration::from_secs(30)),
        Case::new("session/6.6/1", &["SESSION-6.6"], Level::Should,
            "A server SHOULD bound the packets it accepts on one connection in time, PING and every other packet counted: a peer that exceeds the bound is closed with BAD_REQUEST_FLOOD.",
            |t| async move {
                let s = server(&t);
                let (mut c, _) = match login(s, &crate::server::fresh("pinger"), "d1").await {
                    Ok(x) => x,
                    Err(v) => return v,
                };
                // Twice the declared burst at once: past it however fast the server refills.
                let n = 2 * s.rates.packet_burst as usize + 100;
                let bytes: Vec<u8> = (0..n).flat_map(|_| frame(0, 0x01, None, b"p")).collect();
                let exp = format!("CLOSE BAD_REQUEST_FLOOD after {n} PINGs at once (declared {}/s, bursts of {})", s.rates.packet_rate, s.rates.packet_burst);
                if let Err(e) = c.send(&bytes).await {
                    return Verdict::fail(exp, e);
                }
                match c.expect_close(WAIT).await {
                    Seen::Timeout => still_alive(s, Verdict::fail(exp, format!("no CLOSE after {n} PINGs at once"))).await,
                    seen => judge_close(s, seen, BAD_REQUEST_FLOOD, "BAD_REQUEST_FLOOD").await,
                }
            }),
    ]
}
