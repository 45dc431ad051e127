//! Messages to chosen members of a group (E7; `spec/groups.md` §4.6).

use std::time::Duration;

use magpie_session::{Body, pb};

use super::helpers::*;
use crate::case::{Case, Level};
use crate::server::{server, text, text_of};

/// `CLIENT_MSG_ID_REUSED` ([SYNC-5.3]).
const CLIENT_MSG_ID_REUSED: u32 = 0x104;

/// A SEND of `body` to `to` for `members` only.
fn directed(
    to: &str,
    cmid: &str,
    body: &str,
    class: pb::MessageClass,
    members: &[&String],
) -> Body {
    Body::Send(pb::Send {
        to: to.into(),
        client_msg_id: cmid.into(),
        class: class as i32,
        content: Some(text(body)),
        to_members: members.iter().map(|u| (*u).clone()).collect(),
    })
}

/// A tombstone with nothing of the message in it.
fn bare_tombstone(m: &pb::Message) -> bool {
    m.tombstone
        && m.content.is_none()
        && m.sender.is_empty()
        && m.sender_device.is_empty()
        && m.client_msg_id.is_empty()
        && m.server_time_ms == 0
        && m.to_members.is_empty()
}

/// [GROUP-4.6]: a directed message reaches the named members and the sender only.
pub(super) fn to_chosen_members() -> Case {
    Case::new(
        "group/4.6/1",
        &["GROUP-4.6", "GROUP-4.2"],
        Level::Must,
        "A SEND to a group may name to_members: the message takes the next seq and reaches the sender (all their devices) and the named members only, carrying to_members; any other member's HISTORY shows that seq as a tombstone with nothing of the message. A non-member in the list is NOT_PERMITTED and nothing is stored; to_members on a 1:1 message or naming more than max_group_request_users (100) is BAD_REQUEST, a bad id in it INVALID_USER_ID; a retry with other to_members is CLIENT_MSG_ID_REUSED, with the same names in another order a duplicate; a directed TRANSIENT is relayed to the named members only, and naming a non-member is NOT_PERMITTED.",
        |t| async move {
            let s = server(&t);
            let [own, bob, carol, eve] = names(["own", "bob", "carol", "eve"]);
            let (gid, c) = new_group();
            let exp = "create (1); the owner's text to_members [bob]: seq 2, bob and the owner's other device pushed it with to_members [bob], carol not; carol's HISTORY: seq 2 a bare tombstone, the owner's: the text with to_members; to_members [bob, eve] (no member): 0x10A; on a 1:1 SEND: 0x100; 101 names: 0x100; a bad id: 0x102; the same client id to [carol]: 0x104; last_seq stays 2; to [carol, bob] (3) and again as [bob, carol]: a duplicate of 3; a TRANSIENT to [carol]: at carol only, to [eve]: 0x10A; carol's text (4) reaches bob, whose stream is [1, 2, 3, 4] while carol's is [1, 3, 4]";
            let ((mut co, _), (mut cb, wb), (mut cc, wc)) = loginsv!(s, &own, &bob, &carol);
            let (mut co2, _) = loginv!(s, &own, "d2");
            let mut ch = Checks::default();
            tryv!(
                group_ok(&mut co, &gid, create("Whisper", false, &[&bob, &carol]), 1).await,
                exp
            );
            let content = pb::MessageClass::Content;
            let r = tryv!(
                co.request(directed(&c, "d-1", "for bob", content, &[&bob]))
                    .await,
                exp
            );
            ch.that(
                matches!(&r, Body::SendAck(a) if a.seq == 2),
                format!("the directed text: {}", describe(&r)),
            );
            let for_bob =
                |m: &pb::Message| text_of(m) == "for bob" && m.to_members == [bob.clone()];
            ch.pushed_at("bob", &mut cb, &c, 2, |m| for_bob(m) && !m.tombstone)
                .await;
            ch.pushed_at("the owner's other device", &mut co2, &c, 2, for_bob)
                .await;
            cc.drain(QUIET).await;
            let at_carol = pushed(&cc, &c);
            ch.that(
                at_carol.iter().all(|m| m.seq != 2),
                format!("carol pushed {}", show_all(&at_carol)),
            );
            match &tryv!(history(&mut cc, &c, 1, false).await, exp) {
                Body::HistoryReply(h) => {
                    let two = h.messages.iter().find(|m| m.seq == 2);
                    ch.that(
                        two.is_some_and(bare_tombstone),
                        format!("carol's HISTORY {}", show_all(&h.messages)),
                    );
                }
                other => ch.that(false, format!("carol's HISTORY {}", describe(other))),
            }
            match &tryv!(history(&mut co, &c, 1, false).await, exp) {
                Body::HistoryReply(h) => {
                    let two = h.messages.iter().find(|m| m.seq == 2);
                    ch.that(
                        two.is_some_and(|m| {
                            text_of(m) == "for bob" && m.to_members == [bob.clone()]
                        }),
                        format!("the owner's HISTORY {}", show_all(&h.messages)),
                    );
                }
                other => ch.that(false, format!("the owner's HISTORY {}", describe(other))),
            }
            let r = tryv!(
                co.request(directed(&c, "d-2", "for eve", content, &[&bob, &eve]))
                    .await,
                exp
            );
            ch.code("to_members naming outsider eve", &r, NOT_PERMITTED);
            let r = tryv!(
                co.request(directed(&bob, "d-3", "1:1", content, &[&bob]))
                    .await,
                exp
            );
            ch.code("to_members on a 1:1 SEND", &r, BAD_REQUEST);
            let many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
            let many: Vec<&String> = many.iter().collect();
            let r = tryv!(
                co.request(directed(&c, "d-4", "crowd", content, &many))
                    .await,
                exp
            );
            ch.code("101 names", &r, BAD_REQUEST);
            let bad = "bad id".to_owned();
            let r = tryv!(
                co.request(directed(&c, "d-5", "x", content, &[&bob, &bad]))
                    .await,
                exp
            );
            ch.code("a bad id in to_members", &r, INVALID_USER_ID);
            let r = tryv!(
                co.request(directed(&c, "d-1", "for bob", content, &[&carol]))
                    .await,
                exp
            );
            ch.code(
                "the first client id to other members",
                &r,
                CLIENT_MSG_ID_REUSED,
            );
            let last = tryv!(last_seq(&mut co, &c).await, exp);
            ch.that(last == 2, format!("last_seq {last} (want 2)"));
            for (what, names) in [
                ("to [carol, bob]", [&carol, &bob]),
                ("again as [bob, carol]", [&bob, &carol]),
            ] {
                let r = tryv!(
                    co.request(directed(&c, "d-6", "for two", content, &names))
                        .await,
                    exp
                );
                let duplicate = what.starts_with("again");
                ch.that(
                    matches!(&r, Body::SendAck(a) if a.seq == 3 && a.duplicate == duplicate),
                    format!("{what}: {}", describe(&r)),
                );
            }
            let r = tryv!(
                co.request(directed(
                    &c,
                    "t-1",
                    "psst",
                    pb::MessageClass::Transient,
                    &[&carol]
                ))
                .await,
                exp
            );
            ch.that(
                matches!(&r, Body::SendAck(a) if a.seq == 0),
                format!("the directed TRANSIENT: {}", describe(&r)),
            );
            let r = tryv!(
                co.request(directed(
                    &c,
                    "t-2",
                    "psst",
                    pb::MessageClass::Transient,
                    &[&eve]
                ))
                .await,
                exp
            );
            ch.code("a TRANSIENT to outsider eve", &r, NOT_PERMITTED);
            live_until(&mut cc, &c, 1).await;
            cb.drain(QUIET).await;
            let at =
                |conn: &crate::conn::Conn| live(conn, &c).iter().map(text_of).collect::<Vec<_>>();
            ch.that(
                at(&cc) == ["psst"] && at(&cb).is_empty(),
                format!("live at carol {:?}, at bob {:?}", at(&cc), at(&cb)),
            );
            tryv!(send_ack_seq(&mut cc, &c, "c-1", "to all", 4).await, exp);
            cb.drain(Duration::from_millis(50)).await;
            let bobs = tryv!(stream(&mut cb, &wb, &c).await, exp);
            let carols = tryv!(stream(&mut cc, &wc, &c).await, exp);
            ch.that(
                seqs(&bobs) == [1, 2, 3, 4] && seqs(&carols) == [1, 3, 4],
                format!(
                    "streams: bob {}, carol {}",
                    show_all(&bobs),
                    show_all(&carols)
                ),
            );
            ch.done(exp, [co, co2, cb, cc]).await
        },
    )
}

/// A text that must be acked with `seq` (the case's setup).
async fn send_ack_seq(
    c: &mut crate::conn::Conn,
    conversation: &str,
    cmid: &str,
    body: &str,
    seq: u64,
) -> Result<(), String> {
    match send_text(c, conversation, cmid, body).await? {
        Body::SendAck(a) if a.seq == seq => Ok(()),
        other => Err(format!(
            "SEND {cmid}: want seq {seq}, got {}",
            describe(&other)
        )),
    }
}
