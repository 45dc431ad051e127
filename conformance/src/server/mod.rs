//! The server suite: cases over TCP, tokens minted by the suite, fresh users per case.

/// `?`-like early return of a verdict, for the cases' modules.
macro_rules! tryv {
    ($e:expr, $expected:expr) => {
        match $e {
            Ok(x) => x,
            Err(e) => return crate::case::Verdict::fail($expected, e.to_string()),
        }
    };
}

/// Logs `$u` in on device `$d`, or returns the failing verdict.
macro_rules! loginv {
    ($s:expr, $u:expr, $d:expr) => {
        match crate::server::login($s, $u, $d).await {
            Ok(x) => x,
            Err(v) => return v,
        }
    };
}

mod admin_cases;
mod auth_cases;
mod compress_cases;
mod group_cases;
mod message_cases;
mod misc_cases;
mod property;
mod rate_cases;
mod session_cases;
mod sync_cases;
mod wire_cases;
mod ws_cases;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use magpie_auth::{AppSecret, Device, Platform, TokenClaims, mint, random_nonce};
use magpie_session::{Body, pb};

use crate::case::{Case, Outcome, Verdict};
use crate::conn::{Conn, Seen};
use crate::{ServerTarget, Target};

/// Every server case.
pub(crate) fn cases(seed: Option<u64>) -> Vec<Case> {
    let mut out = wire_cases::cases();
    out.extend(session_cases::cases());
    out.extend(rate_cases::cases());
    out.extend(auth_cases::cases());
    out.extend(sync_cases::cases());
    out.extend(message_cases::cases());
    out.extend(group_cases::cases());
    out.extend(admin_cases::cases());
    out.extend(compress_cases::cases());
    out.extend(ws_cases::cases());
    out.extend(misc_cases::cases());
    out.push(property::case(seed));
    out
}

pub(crate) fn server(t: &Target) -> &ServerTarget {
    match t {
        Target::Server(s) => s,
        // Server cases are only registered for a server target.
        Target::Codec { .. } => unreachable!("server case on a codec target"),
    }
}

pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A user id no other case (or run) uses.
pub(crate) fn fresh(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

/// Token claims for `user` on `device` (web), valid now for an hour.
pub(crate) fn claims(s: &ServerTarget, user: &str, device: &str) -> TokenClaims {
    let now = now_unix();
    TokenClaims {
        app_id: s.app.clone(),
        user_id: user.into(),
        device: Device::Id(device.into()),
        platform: Platform::Web,
        not_before: now - 10,
        expires: now + 3600,
        nonce: random_nonce().unwrap_or_else(|_| fresh("n").replace('.', "_")),
    }
}

pub(crate) fn mint_with(claims: &TokenClaims, secret: &str) -> String {
    AppSecret::new(secret)
        .and_then(|s| mint(claims, &s))
        .unwrap_or_else(|e| format!("mint failed: {e}"))
}

pub(crate) fn hello(
    s: &ServerTarget,
    token: String,
    device: &str,
    platform: Platform,
) -> pb::Hello {
    pb::Hello {
        app_id: s.app.clone(),
        credential: Some(pb::hello::Credential::Token(token)),
        device_id: device.into(),
        platform: platform.to_proto_i32(),
        ..Default::default()
    }
}

/// The HELLO [`login`] sends: a fresh valid token for `user` on `device` (web).
pub(crate) fn hello_for(s: &ServerTarget, user: &str, device: &str) -> pb::Hello {
    hello(
        s,
        mint_with(&claims(s, user, device), &s.secret),
        device,
        Platform::Web,
    )
}

/// Logs `from` in, sends `to` `n` text messages of `body` one at a time (each acked), and closes:
/// a backlog for `to` to fetch.
pub(crate) async fn send_many(
    s: &ServerTarget,
    from: &str,
    to: &str,
    n: usize,
    body: &str,
) -> Result<(), String> {
    let (mut c, _) = login(s, from, "d1").await.map_err(|v| v.observed)?;
    for i in 0..n {
        send_ack(&mut c, to, &format!("many-{i}"), body).await?;
    }
    c.close().await;
    Ok(())
}

/// Connects and logs `user` in on `device`; the WELCOME is returned with the connection.
pub(crate) async fn login(
    s: &ServerTarget,
    user: &str,
    device: &str,
) -> Result<(Conn, pb::Welcome), Verdict> {
    let mut c = Conn::connect(s.addr)
        .await
        .map_err(|e| Verdict::fail("a connection", e))?;
    match c.handshake(&hello_for(s, user, device)).await {
        Ok(w) => Ok((c, w)),
        Err(seen) => Err(Verdict::fail(
            format!("WELCOME for {user}/{device} with a valid token"),
            seen.describe(),
        )),
    }
}

/// After a negative case: a fresh connection still gets WELCOME and a PONG.
pub(crate) async fn alive(s: &ServerTarget) -> Result<(), String> {
    let user = fresh("alive");
    let (mut c, _) = login(s, &user, "d1").await.map_err(|v| v.observed)?;
    c.ping(b"alive").await?;
    c.close().await;
    Ok(())
}

/// Judges a CLOSE against the expected code, then checks the server is alive.
pub(crate) async fn judge_close(s: &ServerTarget, seen: Seen, code: u64, name: &str) -> Verdict {
    let expected = format!("CLOSE {name} (0x{code:02X}) and end of stream; server alive after");
    let v = match &seen {
        Seen::Close {
            code: c, eof: true, ..
        } if *c == code => Verdict::pass(&expected, seen.describe()),
        Seen::Close {
            code: c,
            eof: false,
            ..
        } if *c == code => Verdict::new(Outcome::UncleanClose, &expected, seen.describe()),
        Seen::Close { .. } => Verdict::new(Outcome::WrongCode, &expected, seen.describe()),
        Seen::Eof => Verdict::new(Outcome::UncleanClose, &expected, seen.describe()),
        Seen::Timeout | Seen::Bad(_) => Verdict::fail(&expected, seen.describe()),
    };
    still_alive(s, v).await
}

/// Turns `v` into a FAIL if the server no longer serves a fresh connection.
pub(crate) async fn still_alive(s: &ServerTarget, v: Verdict) -> Verdict {
    match alive(s).await {
        Ok(()) => v.note("alive check: WELCOME and PONG on a fresh connection"),
        Err(e) => Verdict::fail(
            v.expected,
            format!("{}; server NOT alive after the case: {e}", v.observed),
        ),
    }
}

/// Logs in a fresh user, sends `bytes` after WELCOME, expects CLOSE `code`.
pub(crate) async fn close_after_welcome(
    t: &Target,
    bytes: Vec<u8>,
    code: u64,
    name: &str,
) -> Verdict {
    let s = server(t);
    let (mut c, _) = match login(s, &fresh("neg"), "d1").await {
        Ok(x) => x,
        Err(v) => return v,
    };
    if let Err(e) = c.send(&bytes).await {
        return Verdict::fail("the bytes are sent", e);
    }
    let seen = c.expect_close(crate::conn::WAIT).await;
    judge_close(s, seen, code, name).await
}

/// The 1:1 conversation id of `a` and `b` ([SYNC-1.1]).
pub(crate) fn conv(a: &str, b: &str) -> String {
    if a <= b {
        format!("d:{a}:{b}")
    } else {
        format!("d:{b}:{a}")
    }
}

pub(crate) fn text(t: &str) -> pb::Content {
    pb::Content {
        kind: Some(pb::content::Kind::Text(pb::Text {
            text: t.into(),
            mentions: vec![],
        })),
    }
}

pub(crate) fn send_body(to: &str, cmid: &str, t: &str, class: pb::MessageClass) -> Body {
    Body::Send(pb::Send {
        to: to.into(),
        client_msg_id: cmid.into(),
        class: class as i32,
        content: Some(text(t)),
        ..Default::default()
    })
}

pub(crate) fn text_of(m: &pb::Message) -> String {
    match m.content.as_ref().and_then(|c| c.kind.as_ref()) {
        Some(pb::content::Kind::Text(t)) => t.text.clone(),
        _ => String::new(),
    }
}

pub(crate) fn messages(events: &[pb::Event]) -> Vec<pb::Message> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::event::Kind::Message(m)) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// Pulls every event after `offset` ([SYNC-4.1]).
pub(crate) async fn sync_all(
    c: &mut Conn,
    epoch: u64,
    offset: u64,
) -> Result<(Vec<pb::Event>, pb::SyncReply), String> {
    let mut cursor = pb::Cursor { epoch, offset };
    let mut all = Vec::new();
    for _ in 0..100 {
        let reply = match c
            .request(Body::Sync(pb::Sync {
                after: Some(cursor),
                limit: 0,
            }))
            .await?
        {
            Body::SyncReply(r) => r,
            other => return Err(format!("SYNC answered with {other:?}")),
        };
        let last = reply.events.last().map(|e| e.offset);
        all.extend(reply.events.iter().cloned());
        match last {
            Some(o) if o < reply.head => {
                cursor = pb::Cursor {
                    epoch: reply.epoch,
                    offset: o,
                }
            }
            _ => return Ok((all, reply)),
        }
    }
    Err("SYNC did not reach head in 100 pages".into())
}

/// `RATE_LIMITED` ([SESSION-6.4]).
pub(crate) const RATE_LIMITED: u32 = magpie_session::RequestCode::RATE_LIMITED.0;

/// The most `RATE_LIMITED` answers [`send_ack`] waits out for one message.
const RATE_WAITS: usize = 20;

/// Sends a text message and returns its ack. Past the server's send rate it waits as a client
/// should ([SESSION-6.5]) and sends again, so that cases which need volume work against any
/// server's rate; a wait longer than the case's own bound fails by the case's timeout.
pub(crate) async fn send_ack(
    c: &mut Conn,
    to: &str,
    cmid: &str,
    t: &str,
) -> Result<pb::SendAck, String> {
    let body = send_body(to, cmid, t, pb::MessageClass::Content);
    for _ in 0..RATE_WAITS {
        match c.request(body.clone()).await? {
            Body::SendAck(a) => return Ok(a),
            Body::RequestError(e) if e.code == RATE_LIMITED => wait_out(&e).await,
            other => return Err(format!("SEND answered with {other:?}")),
        }
    }
    Err(format!(
        "SEND {cmid} still RATE_LIMITED after {RATE_WAITS} waits"
    ))
}

/// Waits what a `RATE_LIMITED` answer asks ([SESSION-6.5]), at least 1 ms.
pub(crate) async fn wait_out(e: &pb::RequestError) {
    tokio::time::sleep(Duration::from_millis(u64::from(e.retry_after_ms.max(1)))).await;
}
