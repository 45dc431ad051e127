//! Normative statements without RFC 2119 keywords: conversation kinds, presence queries, custom
//! content, id rules, device policy.

use magpie_auth::Platform;
use magpie_session::{Body, pb};

use crate::case::{Case, Level, Verdict};
use crate::conn::{Conn, WAIT};
use crate::server::{claims, fresh, hello, judge_close, messages, mint_with, server, sync_all};

const DEVICE_KICKED: u64 = 0x13;

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "sync/1.2/1",
            &["SYNC-1.2"],
            Level::Must,
            "Conversation ids of other kinds (g: groups, s: super groups, r: chatrooms) are reserved for later revisions; a server that does not serve a kind answers UNKNOWN_CONVERSATION.",
            |t| async move {
                let s = server(&t);
                let (mut c, _) = loginv!(s, &fresh("kind"), "d1");
                let exp =
                    "HISTORY of g:nosuchgroup answered REQUEST_ERROR UNKNOWN_CONVERSATION (0x105)";
                let r = c
                    .request(Body::History(pb::History {
                        conversation_id: "g:nosuchgroup".into(),
                        from_seq: 1,
                        backward: false,
                        limit: 10,
                    }))
                    .await;
                c.close().await;
                Verdict::check(
                    matches!(&r, Ok(Body::RequestError(e)) if e.code == 0x105),
                    exp,
                    format!("{r:?}"),
                )
            },
        ),
        Case::new(
            "session/7.3/1",
            &["SESSION-7.3"],
            Level::Must,
            "PRESENCE_QUERY returns a PresenceStatus for each listed user, in order, without watching them.",
            |t| async move {
                let s = server(&t);
                let (a, b, z) = (fresh("pq"), fresh("online"), fresh("offline"));
                let (mut ca, _) = loginv!(s, &a, "d1");
                let (cb, _) = loginv!(s, &b, "d1");
                let exp = "statuses [offline user: online false, online user: online true], in the order asked";
                let r = ca
                    .request(Body::PresenceQuery(pb::PresenceQuery {
                        users: vec![z.clone(), b.clone()],
                    }))
                    .await;
                ca.close().await;
                cb.close().await;
                let got: Vec<(String, bool)> = match &r {
                    Ok(Body::PresenceReply(p)) => p
                        .statuses
                        .iter()
                        .map(|s| (s.user_id.clone(), s.online))
                        .collect(),
                    _ => vec![],
                };
                Verdict::check(got == [(z, false), (b, true)], exp, format!("{r:?}"))
            },
        ),
        Case::new(
            "sync/6.3/1",
            &["SYNC-6.3"],
            Level::Must,
            "The server stores and relays every type, including custom types it does not know, without interpreting them.",
            |t| async move {
                let s = server(&t);
                let (a, b) = (fresh("cust"), fresh("cust"));
                let (mut ca, _) = loginv!(s, &a, "d1");
                let content = pb::Content {
                    kind: Some(pb::content::Kind::Custom(pb::Custom {
                        r#type: "x-game/move".into(),
                        data: vec![0, 1, 2, 0xFF].into(),
                    })),
                };
                let exp = "the recipient syncs the custom content byte for byte";
                let r = ca
                    .request(Body::Send(pb::Send {
                        to: b.clone(),
                        client_msg_id: "c1".into(),
                        class: 0,
                        content: Some(content.clone()),
                        ..Default::default()
                    }))
                    .await;
                ca.close().await;
                if !matches!(r, Ok(Body::SendAck(_))) {
                    return Verdict::fail(exp, format!("SEND answered {r:?}"));
                }
                let (mut cb, w) = loginv!(s, &b, "d1");
                let got = sync_all(&mut cb, w.head.map(|h| h.epoch).unwrap_or(0), 0).await;
                cb.close().await;
                match got {
                    Ok((events, _)) => {
                        let m = messages(&events);
                        Verdict::check(
                            m.len() == 1 && m[0].content.as_ref() == Some(&content),
                            exp,
                            format!("{:?}", m.first().map(|m| &m.content)),
                        )
                    }
                    Err(e) => Verdict::fail(exp, e),
                }
            },
        ),
        Case::new(
            "auth/1.2/1",
            &["AUTH-1.2", "SESSION-7.1"],
            Level::Must,
            "A user id is 1 to 64 bytes of A-Z a-z 0-9 _ - . @ =. Anything else is rejected with a specific error: INVALID_USER_ID in requests.",
            |t| async move {
                let s = server(&t);
                let (mut c, _) = loginv!(s, &fresh("ids"), "d1");
                let exp = "WATCH of \"has space\" and of a 65-byte id: REQUEST_ERROR INVALID_USER_ID (0x102)";
                let r1 = c
                    .request(Body::Watch(pb::Watch {
                        users: vec!["has space".into()],
                        unwatch: false,
                    }))
                    .await;
                let r2 = c
                    .request(Body::Watch(pb::Watch {
                        users: vec!["u".repeat(65)],
                        unwatch: false,
                    }))
                    .await;
                c.close().await;
                let bad = |r: &Result<Body, String>| matches!(r, Ok(Body::RequestError(e)) if e.code == 0x102);
                Verdict::check(bad(&r1) && bad(&r2), exp, format!("{r1:?}; {r2:?}"))
            },
        ),
        Case::new(
            "session/5.2/1",
            &["SESSION-5.2", "AUTH-1.3"],
            Level::May,
            "Device policy: per app, per platform, a maximum number of concurrent sessions (defaults: ios 1, ...) and a rule for a new session beyond it: kick-oldest (default: the oldest session of that platform is closed with DEVICE_KICKED).",
            |t| async move {
                let s = server(&t);
                let user = fresh("ios");
                let mut sessions = Vec::new();
                for dev in ["phone-a", "phone-b"] {
                    let mut cl = claims(s, &user, dev);
                    cl.platform = Platform::Ios;
                    let mut c = match Conn::connect(s.addr).await {
                        Ok(c) => c,
                        Err(e) => return Verdict::fail("a connection", e),
                    };
                    if let Err(seen) = c
                        .handshake(&hello(s, mint_with(&cl, &s.secret), dev, Platform::Ios))
                        .await
                    {
                        return Verdict::fail("WELCOME for each ios device", seen.describe());
                    }
                    sessions.push(c);
                }
                let newer = sessions.pop();
                let Some(mut older) = sessions.pop() else {
                    return Verdict::fail("two sessions", "none");
                };
                let seen = older.expect_close(WAIT).await;
                if let Some(n) = newer {
                    n.close().await;
                }
                judge_close(s, seen, DEVICE_KICKED, "DEVICE_KICKED (default policy)").await
            },
        ),
    ]
}
