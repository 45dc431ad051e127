//! §4 of `spec/groups.md`: messages to a group, stored and live, and what a member may read.

use std::time::Duration;

use magpie_session::{Body, pb};
use pb::group::Op;
use pb::group_notice::Kind;

use super::helpers::*;
use crate::case::{Case, Level};
use crate::conn::Conn;
use crate::server::{fresh, send_ack, send_body, server, text_of};

/// [GROUP-4.1]: a stored message to a group reaches every member once.
pub(super) fn stored() -> Case {
    Case::new(
        "group/4.1/1",
        &["GROUP-4.1", "GROUP-4.3", "GROUP-2.2", "GROUP-1.1"],
        Level::Must,
        "SEND to g: + id sends to the group: one stored message with one seq, acked after it and one event in the stream of every member (the sender included) are committed; a group Message carries the group's conversation id and an empty peer. Anyone but a member, and any SEND to an unknown group, is UNKNOWN_CONVERSATION and nothing is stored.",
        |t| async move {
            let s = server(&t);
            let [own, bob, carol, dave] = names(["own", "bob", "carol", "dave"]);
            let (gid, c) = new_group();
            let exp = "create: seq 1, 3 members with joined_seq 1; SEND acked {g:<id>, seq 2, g:<id>/2}; bob, carol and the owner's other device are pushed seqs [1, 2] and sync each seq once, the text with sender, device, client_msg_id and empty peer; the owner's HISTORY the same; outsider dave's SEND and SEND to an unknown group: 0x105, dave pushed nothing, last_seq stays 2";
            let ((mut cb, wb), (mut cc, wc)) = loginsv!(s, &bob, &carol);
            let (mut co2, wo2) = loginv!(s, &own, "d2");
            let (mut cd, _) = loginv!(s, &dave, "d1");
            let (mut co, _) = loginv!(s, &own, "d1");
            let mut ch = Checks::default();
            let op = create("Team", false, &[&bob, &carol]);
            if let Some(reply) = tryv!(ch.replied(&mut co, &gid, op, "create", 1).await, exp) {
                let g = reply.group.unwrap_or_default();
                ch.that(
                    g.group_id == gid
                        && g.owner == own
                        && g.member_count == 3
                        && g.members.is_empty()
                        && g.pending.is_empty()
                        && !reply.pending,
                    format!("the create's answer (no lists) {}", describe_info(&g)),
                );
            }
            let g = tryv!(info(&mut cb, &gid).await, exp);
            ch.that(
                g.members.len() == 3 && g.members.iter().all(|m| m.joined_seq == 1),
                format!("bob's info {}", describe_info(&g)),
            );
            let ack = tryv!(send_ack(&mut co, &c, "gm-1", "hello team").await, exp);
            ch.that(
                ack.conversation_id == c && ack.seq == 2 && ack.message_id == format!("{c}/2"),
                format!(
                    "ack {} seq {} id {}",
                    ack.conversation_id, ack.seq, ack.message_id
                ),
            );
            let text_ok = |m: &pb::Message| {
                m.seq == 2
                    && m.conversation_id == c
                    && m.message_id == format!("{c}/2")
                    && m.sender == own
                    && m.sender_device == "d1"
                    && m.client_msg_id == "gm-1"
                    && m.class == pb::MessageClass::Content as i32
                    && text_of(m) == "hello team"
                    && m.server_time_ms == ack.server_time_ms
                    && m.peer.is_empty()
            };
            let all_ok = |msgs: &[pb::Message]| {
                seqs(msgs) == [1, 2]
                    && is_notice(&msgs[0], Kind::Created, &own, None)
                    && msgs.iter().all(|m| m.peer.is_empty())
                    && text_ok(&msgs[1])
            };
            for (who, conn, w) in [
                ("bob", &mut cb, &wb),
                ("carol", &mut cc, &wc),
                ("owner/d2", &mut co2, &wo2),
            ] {
                let got = pushed_until(conn, &c, 2).await;
                ch.that(all_ok(&got), format!("{who} pushed {}", show_all(&got)));
                let synced = tryv!(stream(conn, w, &c).await, exp);
                ch.that(
                    all_ok(&synced),
                    format!("{who} synced {}", show_all(&synced)),
                );
            }
            match &tryv!(history(&mut co, &c, 1, false).await, exp) {
                Body::HistoryReply(h) => ch.that(
                    all_ok(&h.messages) && h.last_seq == 2,
                    format!(
                        "owner's HISTORY last_seq {} {}",
                        h.last_seq,
                        show_all(&h.messages)
                    ),
                ),
                other => ch.that(false, format!("owner's HISTORY {}", describe(other))),
            }
            let r = tryv!(send_text(&mut cd, &c, "gm-x", "let me in").await, exp);
            ch.code("SEND by outsider dave", &r, UNKNOWN_CONVERSATION);
            let r = tryv!(
                send_text(&mut cd, &gconv(&fresh("nosuch")), "gm-y", "x").await,
                exp
            );
            ch.code("SEND to an unknown group", &r, UNKNOWN_CONVERSATION);
            cd.drain(QUIET).await;
            let at_dave = pushed(&cd, &c);
            ch.that(
                at_dave.is_empty(),
                format!("dave pushed {}", show_all(&at_dave)),
            );
            let last = tryv!(last_seq(&mut co, &c).await, exp);
            ch.that(
                last == 2,
                format!("last_seq after dave's SEND {last} (want 2: nothing stored)"),
            );
            ch.done(exp, [co, co2, cb, cc, cd]).await
        },
    )
}

/// [GROUP-4.2]: TRANSIENT and STATUS to a group are relayed, never stored.
pub(super) fn live_only() -> Case {
    Case::new(
        "group/4.2/1",
        &["GROUP-4.2", "GROUP-4.3", "SYNC-6.1"],
        Level::Must,
        "TRANSIENT and STATUS messages to a group are relayed to the online devices of the other members (TRANSIENT: also to the sender's other devices), never stored; a non-member's is UNKNOWN_CONVERSATION.",
        |t| async move {
            let s = server(&t);
            let [own, bob, carol, dave] = names(["own", "bob", "carol", "dave"]);
            let (gid, c) = new_group();
            let exp = "TRANSIENT: ack seq 0; one live message (g:<id>, seq 0, empty peer) at bob, carol and the owner's other device, none at the sending device or at outsider dave; STATUS: one more at bob and carol only; dave's TRANSIENT: 0x105 and relayed to nobody; last_seq stays 1, bob's stream holds only the CREATED notice";
            let ((mut cb, wb), (mut cc, _), (mut cd, _)) = loginsv!(s, &bob, &carol, &dave);
            let (mut co2, _) = loginv!(s, &own, "d2");
            let (mut co, _) = loginv!(s, &own, "d1");
            let mut ch = Checks::default();
            let op = create("Live", false, &[&bob, &carol]);
            tryv!(group_ok(&mut co, &gid, op, 1).await, exp);
            for (what, cmid, text, class) in [
                ("TRANSIENT", "t-1", "ringing", pb::MessageClass::Transient),
                ("STATUS", "s-1", "typing", pb::MessageClass::Status),
            ] {
                let r = tryv!(co.request(send_body(&c, cmid, text, class)).await, exp);
                ch.that(
                    matches!(&r, Body::SendAck(a) if a.seq == 0 && a.conversation_id == c),
                    format!("{what} {}", describe(&r)),
                );
            }
            let r = tryv!(
                cd.request(send_body(&c, "t-2", "psst", pb::MessageClass::Transient))
                    .await,
                exp
            );
            ch.code("TRANSIENT by outsider dave", &r, UNKNOWN_CONVERSATION);
            for (conn, n) in [(&mut cb, 2), (&mut cc, 2), (&mut co2, 1)] {
                live_until(conn, &c, n).await;
            }
            // What must not come has had as long as the rest took, and a little more.
            co.drain(QUIET).await;
            cd.drain(Duration::from_millis(50)).await;
            let kinds = |conn: &Conn| {
                live(conn, &c)
                    .iter()
                    .map(|m| {
                        let ok = m.seq == 0
                            && m.peer.is_empty()
                            && m.sender == own
                            && m.sender_device == "d1";
                        format!("{}{}", text_of(m), if ok { "" } else { "(bad fields)" })
                    })
                    .collect::<Vec<_>>()
            };
            for (who, conn, want) in [
                ("bob", &cb, vec!["ringing", "typing"]),
                ("carol", &cc, vec!["ringing", "typing"]),
                ("owner/d2", &co2, vec!["ringing"]),
                ("owner/d1 (the sender)", &co, vec![]),
                ("dave (outsider)", &cd, vec![]),
            ] {
                let got = kinds(conn);
                ch.that(got == want, format!("{who} live {got:?} (want {want:?})"));
            }
            let last = tryv!(last_seq(&mut co, &c).await, exp);
            ch.that(
                last == 1,
                format!("last_seq {last} (want 1: nothing stored)"),
            );
            let synced = tryv!(stream(&mut cb, &wb, &c).await, exp);
            ch.that(
                seqs(&synced) == [1],
                format!("bob's stream {}", show_all(&synced)),
            );
            ch.done(exp, [co, co2, cb, cc, cd]).await
        },
    )
}

/// [GROUP-4.4]: a member's history starts where they became a member.
pub(super) fn visible_from() -> Case {
    Case::new(
        "group/4.4/1",
        &["GROUP-4.4", "GROUP-4.1"],
        Level::Must,
        "A member sees the group's history from the seq of the notice that made them a member: HISTORY answers only messages at or above it, with visible_from that seq. HISTORY and READ of a group conversation by a non-member are UNKNOWN_CONVERSATION.",
        |t| async move {
            let s = server(&t);
            let [own, carol, dave] = names(["own", "carol", "dave"]);
            let (gid, c) = new_group();
            let exp = "texts at 2, 3; carol joins at 4; text at 5: carol's HISTORY forward from 1 and backward from the newest: seqs [4, 5], visible_from 4, last_seq 5; the owner's: [1..=5], visible_from 1; carol's READ 5: OK; outsider dave's HISTORY and READ: 0x105";
            let ((mut co, _), (mut cc, _), (mut cd, _)) = loginsv!(s, &own, &carol, &dave);
            let mut ch = Checks::default();
            tryv!(
                group_ok(&mut co, &gid, create("Late", false, NOBODY), 1).await,
                exp
            );
            tryv!(send_ack(&mut co, &c, "h-1", "before 1").await, exp);
            tryv!(send_ack(&mut co, &c, "h-2", "before 2").await, exp);
            tryv!(group_ok(&mut cc, &gid, Op::Join(none()), 4).await, exp);
            tryv!(send_ack(&mut co, &c, "h-3", "after").await, exp);
            for (who, carols, from, backward, want, visible) in [
                ("carol forward from 1", true, 1, false, vec![4, 5], 4),
                (
                    "carol backward from the newest",
                    true,
                    0,
                    true,
                    vec![4, 5],
                    4,
                ),
                ("carol backward from 3", true, 3, true, vec![], 4),
                (
                    "owner forward from 1",
                    false,
                    1,
                    false,
                    vec![1, 2, 3, 4, 5],
                    1,
                ),
            ] {
                let conn = if carols { &mut cc } else { &mut co };
                match &tryv!(history(conn, &c, from, backward).await, exp) {
                    Body::HistoryReply(h) => {
                        let mut got = seqs(&h.messages);
                        got.sort_unstable();
                        ch.that(
                            got == want && h.visible_from == visible && h.last_seq == 5,
                            format!(
                                "{who}: seqs {got:?} visible_from {} last_seq {}",
                                h.visible_from, h.last_seq
                            ),
                        );
                    }
                    other => ch.that(false, format!("{who}: {}", describe(other))),
                }
            }
            let r = tryv!(read(&mut cc, &c, 5).await, exp);
            ch.that(
                matches!(r, Body::Ok(_)),
                format!("carol's READ 5: {}", describe(&r)),
            );
            let r = tryv!(history(&mut cd, &c, 1, false).await, exp);
            ch.code("HISTORY by outsider dave", &r, UNKNOWN_CONVERSATION);
            let r = tryv!(read(&mut cd, &c, 1).await, exp);
            ch.code("READ by outsider dave", &r, UNKNOWN_CONVERSATION);
            ch.done(exp, [co, cc, cd]).await
        },
    )
}
