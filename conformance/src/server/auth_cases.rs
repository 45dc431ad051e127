//! Authentication cases (`spec/auth.md`): each refusal with its own CLOSE code.

use magpie_auth::{Device, Platform, TokenClaims};
use magpie_session::pb;

use crate::ServerTarget;
use crate::case::{Case, Level, Verdict};
use crate::conn::Conn;
use crate::server::{
    claims, fresh, hello, judge_close, login, mint_with, now_unix, server, still_alive,
};

const APP_UNKNOWN: u64 = 0x0C;
const TOKEN_INVALID: u64 = 0x0D;
const TOKEN_EXPIRED: u64 = 0x0E;
const TOKEN_NOT_YET_VALID: u64 = 0x0F;
const TOKEN_REPLAYED: u64 = 0x10;

/// Presents `hello` on a fresh connection and expects CLOSE `code`.
async fn refused(s: &ServerTarget, h: pb::Hello, code: u64, name: &str) -> Verdict {
    let mut c = match Conn::connect(s.addr).await {
        Ok(c) => c,
        Err(e) => return Verdict::fail("a connection", e),
    };
    match c.handshake(&h).await {
        Ok(_) => {
            still_alive(
                s,
                Verdict::fail(format!("CLOSE {name}"), "WELCOME: the login was accepted"),
            )
            .await
        }
        Err(seen) => judge_close(s, seen, code, name).await,
    }
}

type Tweak = fn(&ServerTarget, &mut TokenClaims, &mut pb::Hello, &mut String);

fn token_case(
    path: &str,
    clauses: &[&str],
    req: &str,
    code: u64,
    name: &'static str,
    tweak: Tweak,
) -> Case {
    Case::new(path, clauses, Level::Must, req, move |t| async move {
        let s = server(&t);
        let user = fresh("auth");
        let mut cl = claims(s, &user, "d1");
        let mut secret = s.secret.clone();
        let mut h = hello(s, String::new(), "d1", Platform::Web);
        tweak(s, &mut cl, &mut h, &mut secret);
        h.credential = Some(pb::hello::Credential::Token(mint_with(&cl, &secret)));
        refused(s, h, code, name).await
    })
}

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "auth/4.1/1",
            &["AUTH-4.1"],
            Level::Should,
            "the CLOSE reason SHOULD say which field failed (for example \"token expired at 1767312000, server time 1767400000\"). A server MUST NOT reveal the expected tag.",
            |t| async move {
                let s = server(&t);
                let mut cl = claims(s, &fresh("why"), "d1");
                cl.not_before = now_unix() - 20 * 86_400;
                cl.expires = now_unix() - 10 * 86_400;
                let h = hello(s, mint_with(&cl, &s.secret), "d1", Platform::Web);
                let mut c = match Conn::connect(s.addr).await {
                    Ok(c) => c,
                    Err(e) => return Verdict::fail("a connection", e),
                };
                let expected = "a CLOSE reason naming the expiry";
                match c.handshake(&h).await {
                    Err(crate::conn::Seen::Close { reason, .. }) => Verdict::check(
                        reason.to_lowercase().contains("expire"),
                        expected,
                        format!("reason {reason:?}"),
                    ),
                    Err(seen) => Verdict::fail(expected, seen.describe()),
                    Ok(_) => Verdict::fail(expected, "WELCOME"),
                }
            },
        ),
        token_case(
            "auth/2.2/1",
            &["AUTH-2.2", "AUTH-2.1", "AUTH-3.2", "AUTH-4.1"],
            "A verifier MUST reject a token whose tag does not match ... with TOKEN_INVALID.",
            TOKEN_INVALID,
            "TOKEN_INVALID",
            |_, _, _, secret| *secret = "not-the-app-secret-forged-0000".into(),
        ),
        token_case(
            "auth/2.2/2",
            &["AUTH-2.2", "AUTH-4.1"],
            "It MUST reject ... a token whose device or platform differs from the HELLO's (unless device is *), with TOKEN_INVALID.",
            TOKEN_INVALID,
            "TOKEN_INVALID",
            |_, cl, _, _| cl.platform = Platform::Ios,
        ),
        token_case(
            "auth/2.2/3",
            &["AUTH-2.2", "AUTH-4.1"],
            "It MUST reject ... a token whose device or platform differs from the HELLO's (unless device is *), with TOKEN_INVALID.",
            TOKEN_INVALID,
            "TOKEN_INVALID",
            |_, cl, _, _| cl.device = Device::Id("other-device".into()),
        ),
        token_case(
            "auth/2.2/4",
            &["AUTH-2.2", "AUTH-4.1"],
            "It MUST reject a token for another app than the HELLO's app_id ... with TOKEN_INVALID.",
            TOKEN_INVALID,
            "TOKEN_INVALID",
            |_, cl, _, _| cl.app_id = "another-app".into(),
        ),
        token_case(
            "auth/3.3/1",
            &["AUTH-3.3", "AUTH-4.1"],
            "if expires <= now - clock_skew, TOKEN_EXPIRED.",
            TOKEN_EXPIRED,
            "TOKEN_EXPIRED",
            |_, cl, _, _| {
                cl.not_before = now_unix() - 20 * 86_400;
                cl.expires = now_unix() - 10 * 86_400;
            },
        ),
        token_case(
            "auth/3.3/2",
            &["AUTH-3.3", "AUTH-4.1"],
            "if not_before > now + clock_skew, TOKEN_NOT_YET_VALID.",
            TOKEN_NOT_YET_VALID,
            "TOKEN_NOT_YET_VALID",
            |_, cl, _, _| {
                cl.not_before = now_unix() + 86_400;
                cl.expires = now_unix() + 2 * 86_400;
            },
        ),
        token_case(
            "auth/2.4/1",
            &["AUTH-2.4", "AUTH-2.2"],
            "Verifiers MUST check in this order: the tag, then the fields and the binding to the HELLO, then time. So a token that is both expired and presented on the wrong device is TOKEN_INVALID.",
            TOKEN_INVALID,
            "TOKEN_INVALID",
            |_, cl, _, _| {
                cl.not_before = now_unix() - 20 * 86_400;
                cl.expires = now_unix() - 10 * 86_400;
                cl.device = Device::Id("other-device".into());
            },
        ),
        token_case(
            "auth/3.1/1",
            &["AUTH-3.1", "AUTH-4.1"],
            "The app id is known, else APP_UNKNOWN.",
            APP_UNKNOWN,
            "APP_UNKNOWN",
            |_, cl, h, _| {
                cl.app_id = "no-such-app-xyz".into();
                h.app_id = "no-such-app-xyz".into();
            },
        ),
        Case::new(
            "auth/2.4/2",
            &["AUTH-2.4"],
            Level::Must,
            "Tokens longer than 512 bytes are TOKEN_INVALID without being decoded.",
            |t| async move {
                let s = server(&t);
                let h = hello(s, format!("mt1.{}", "A".repeat(600)), "d1", Platform::Web);
                refused(s, h, TOKEN_INVALID, "TOKEN_INVALID").await
            },
        ),
        Case::new(
            "auth/3.5/1",
            &["AUTH-3.5", "AUTH-4.1"],
            Level::Must,
            "The server MUST reject a second login with the same nonce with TOKEN_REPLAYED.",
            |t| async move {
                let s = server(&t);
                let user = fresh("replay");
                let token = mint_with(&claims(s, &user, "d1"), &s.secret);
                let mut c = match Conn::connect(s.addr).await {
                    Ok(c) => c,
                    Err(e) => return Verdict::fail("a connection", e),
                };
                if let Err(seen) = c
                    .handshake(&hello(s, token.clone(), "d1", Platform::Web))
                    .await
                {
                    return Verdict::fail("WELCOME for the first use", seen.describe());
                }
                c.close().await;
                refused(
                    s,
                    hello(s, token, "d1", Platform::Web),
                    TOKEN_REPLAYED,
                    "TOKEN_REPLAYED",
                )
                .await
            },
        ),
        Case::new(
            "auth/5.2/1",
            &["AUTH-5.2", "AUTH-5.1", "SESSION-4.1", "SESSION-2.4"],
            Level::Must,
            "A resume token ... MAY be presented any number of times until it expires. A server MUST accept a resume token of a paused session as long as it is valid.",
            |t| async move {
                let s = server(&t);
                let user = fresh("resume");
                let (c, w) = match login(s, &user, "d1").await {
                    Ok(x) => x,
                    Err(v) => return v,
                };
                c.abort().await;
                let expected = "WELCOME with an mr1. resume token; the resume token logs in twice";
                if !w.resume_token.starts_with("mr1.") || w.user_id != user {
                    return Verdict::fail(
                        expected,
                        format!(
                            "WELCOME user {:?} resume token {:?}",
                            w.user_id, w.resume_token
                        ),
                    );
                }
                for round in 1..=2 {
                    let mut h = hello(s, String::new(), "d1", Platform::Web);
                    h.credential = Some(pb::hello::Credential::ResumeToken(w.resume_token.clone()));
                    h.cursor = w.head;
                    let mut c = match Conn::connect(s.addr).await {
                        Ok(c) => c,
                        Err(e) => return Verdict::fail(expected, e),
                    };
                    match c.handshake(&h).await {
                        Ok(_) => c.close().await,
                        Err(seen) => {
                            return Verdict::fail(
                                expected,
                                format!("resume {round}: {}", seen.describe()),
                            );
                        }
                    }
                }
                Verdict::pass(expected, "both resumes got WELCOME")
            },
        ),
    ]
}
