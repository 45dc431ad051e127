//! The revocation API (`spec/auth.md` §6) and flow control (`spec/session.md` §6).

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use magpie_auth::Platform;
use magpie_session::pb;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::ServerTarget;
use crate::case::{Case, Level, Outcome, Verdict};
use crate::conn::{Conn, Seen, WAIT};
use crate::server::{
    RATE_LIMITED, claims, fresh, hello, judge_close, login, messages, mint_with, now_unix,
    send_ack, server, still_alive, sync_all, text,
};

const INTERNAL_ERROR: u64 = 0x08;
const TOKEN_REVOKED: u64 = 0x11;

fn sign(secret: &str, path: &str, ts: u64) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("POST\n{path}\n{ts}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// POSTs with the given headers; returns (status, body).
async fn post(
    s: &ServerTarget,
    path: &str,
    headers: &[(&str, String)],
) -> Result<(u16, String), String> {
    let addr = s.admin.ok_or("no admin address")?;
    let mut stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .map_err(|_| "admin connect timed out".to_string())?
        .map_err(|e| format!("admin connect: {e}"))?;
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut out))
        .await
        .map_err(|_| "admin reply timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or(format!("not HTTP: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case::new("auth/6.2/1", &["AUTH-6.2"], Level::Must,
            "A server MUST refuse a missing, stale or wrong signature with 401.",
            |t| async move {
                let s = server(&t);
                if s.admin.is_none() {
                    return Verdict::new(Outcome::Unimplemented, "an admin API (--admin)", "none given");
                }
                let user = fresh("rv");
                let path = format!("/v1/apps/{}/users/{user}/revoke", s.app);
                let now = now_unix();
                let tries = [
                    ("missing", vec![]),
                    ("stale", vec![("x-magpie-timestamp", (now - 86_400).to_string()), ("x-magpie-signature", sign(&s.secret, &path, now - 86_400))]),
                    ("wrong", vec![("x-magpie-timestamp", now.to_string()), ("x-magpie-signature", sign("another-secret-0000000000", &path, now))]),
                ];
                let mut seen = Vec::new();
                for (what, headers) in tries {
                    match post(s, &path, &headers).await {
                        Ok((code, _)) => seen.push(format!("{what}: {code}")),
                        Err(e) => return Verdict::fail("401 three times", e),
                    }
                }
                Verdict::check(seen.iter().all(|x| x.ends_with("401")), "401 for missing, stale and wrong signatures", seen.join(", "))
            }),
        Case::new("auth/6.1/1", &["AUTH-6.1", "AUTH-3.4"], Level::Must,
            "POST /v1/apps/{app}/users/{user}/revoke sets the user's revoked-before time, closes the user's open sessions with TOKEN_REVOKED, and answers 200 with {\"revoked_before\": <unix seconds>}.",
            |t| async move {
                let s = server(&t);
                if s.admin.is_none() {
                    return Verdict::new(Outcome::Unimplemented, "an admin API (--admin)", "none given");
                }
                let user = fresh("rv");
                // Mint the later login's token before revoking: its not_before is earlier.
                let old = mint_with(&claims(s, &user, "d2"), &s.secret);
                let (mut c, _) = match login(s, &user, "d1").await {
                    Ok(x) => x,
                    Err(v) => return v,
                };
                let path = format!("/v1/apps/{}/users/{user}/revoke", s.app);
                let now = now_unix();
                let exp = "200 {\"revoked_before\": n}; the open session closed TOKEN_REVOKED; an earlier token refused TOKEN_REVOKED";
                let (code, body) = match post(s, &path, &[("x-magpie-timestamp", now.to_string()), ("x-magpie-signature", sign(&s.secret, &path, now))]).await {
                    Ok(x) => x,
                    Err(e) => return Verdict::fail(exp, e),
                };
                if code != 200 || !body.contains("revoked_before") {
                    return Verdict::fail(exp, format!("{code} {body}"));
                }
                let seen = c.expect_close(WAIT).await;
                if !matches!(seen, Seen::Close { code: TOKEN_REVOKED, .. }) {
                    return Verdict::fail(exp, format!("open session: {}", seen.describe()));
                }
                let mut c2 = match Conn::connect(s.addr).await {
                    Ok(c) => c,
                    Err(e) => return Verdict::fail(exp, e),
                };
                match c2.handshake(&hello(s, old, "d2", Platform::Web)).await {
                    Ok(_) => Verdict::fail(exp, "the earlier token still logs in"),
                    Err(seen) => judge_close(s, seen, TOKEN_REVOKED, "TOKEN_REVOKED").await,
                }
            }),
        Case::new("session/6.1/1", &["SESSION-6.1", "SYNC-4.2"], Level::Must,
            "A server MUST bound what it queues for each session. A session whose queue is full is paused: its connection is closed with INTERNAL_ERROR; the device resumes with SYNC and loses nothing. A slow reader MUST NOT delay other sessions.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("fast"), fresh("slow"));
                let (mut ca, _) = match login(s, &a, "d1").await { Ok(x) => x, Err(v) => return v };
                let (mut cb, _) = match login(s, &b, "d1").await { Ok(x) => x, Err(v) => return v };
                let exp = "the sender is never delayed (every ack within 3 s); the unread session is closed INTERNAL_ERROR or holds everything; a later SYNC loses nothing";
                let n = 600;
                let payload = "z".repeat(12_000);
                for batch in 0..(n / 8) {
                    let mut ids = Vec::new();
                    for i in 0..8 {
                        let id = ca.id();
                        let cmid = format!("q{batch}-{i}");
                        let body = magpie_session::Body::Send(pb::Send { to: b.clone(), client_msg_id: cmid.clone(), class: 0, content: Some(text(&payload)), ..Default::default() });
                        if let Err(e) = ca.send_body(id, &body).await {
                            return Verdict::fail(exp, e);
                        }
                        ids.push((id, cmid));
                    }
                    for (id, cmid) in ids {
                        let answer = match ca.reply(id).await {
                            // Past the server's send rate: sent again after the wait ([SESSION-6.5]).
                            Ok(magpie_session::Body::RequestError(e)) if e.code == RATE_LIMITED => {
                                send_ack(&mut ca, &b, &cmid, &payload).await.map(|_| ())
                            }
                            Ok(_) => Ok(()),
                            Err(e) => Err(e),
                        };
                        if let Err(e) = answer {
                            return still_alive(s, Verdict::fail(exp, format!("sender delayed or failed: {e}"))).await;
                        }
                    }
                    ca.pushes.clear();
                }
                ca.close().await;
                let seen = cb.expect_close(Duration::from_secs(10)).await;
                let pushed: usize = cb.pushes.iter().map(|p| p.events.len()).sum();
                let (mut c2, w) = match login(s, &b, "d2").await { Ok(x) => x, Err(v) => return v };
                let stored = match sync_all(&mut c2, w.head.map(|h| h.epoch).unwrap_or(0), 0).await {
                    Ok((events, _)) => messages(&events).len(),
                    Err(e) => return Verdict::fail(exp, e),
                };
                c2.close().await;
                let observed = format!("{n} acks; unread session: {}; {pushed} events pushed before; {stored} synced after", seen.describe());
                if stored != n {
                    return Verdict::fail(exp, observed);
                }
                match seen {
                    Seen::Close { code: INTERNAL_ERROR, .. } => still_alive(s, Verdict::pass(exp, observed)).await,
                    Seen::Timeout if pushed == n => Verdict::info(exp, format!("queue bound not reached: {observed}")),
                    Seen::Timeout => Verdict::info(exp, format!("session neither closed nor fully pushed: {observed}")),
                    _ => Verdict::new(Outcome::WrongCode, exp, observed),
                }
            })
        .timeout(Duration::from_secs(90)),
    ]
}
