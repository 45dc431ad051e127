//! Do-not-disturb per member (E9; `spec/groups.md` §1.7).

use magpie_session::{Body, pb};
use pb::group::Op;

use super::helpers::*;
use crate::case::{Case, Level};
use crate::conn::Conn;
use crate::server::{send_ack, send_body, server};

fn dnd(on: bool) -> Op {
    Op::DoNotDisturb(pb::GroupDoNotDisturb { on })
}

/// Whether the push that carried the event of `seq` in `conversation` was silent; `None` if
/// none carried it.
fn silent_at(c: &Conn, conversation: &str, seq: u64) -> Option<bool> {
    c.pushes.iter().find_map(|p| {
        p.events
            .iter()
            .any(|e| {
                matches!(&e.kind, Some(pb::event::Kind::Message(m))
                    if m.conversation_id == conversation && m.seq == seq)
            })
            .then_some(p.silent)
    })
}

/// Whether the push that carried the first live message of `conversation` was silent.
fn live_silent(c: &Conn, conversation: &str) -> Option<bool> {
    c.pushes
        .iter()
        .find(|p| p.live.iter().any(|m| m.conversation_id == conversation))
        .map(|p| p.silent)
}

fn own_flag(g: &pb::GroupInfo, user: &str) -> Option<bool> {
    g.members
        .iter()
        .find(|m| m.user_id == user)
        .map(|m| m.do_not_disturb)
}

/// [GROUP-1.7]: a member's do-not-disturb makes their pushes of the group silent.
pub(super) fn silent_pushes() -> Case {
    Case::new(
        "group/1.7/1",
        &["GROUP-1.7", "GROUP-2.3"],
        Level::Must,
        "A member may ask not to be disturbed by a group (do_not_disturb): no notice is written, info shows it on their own entry only and mine with the group, and the group's messages, notices and live messages still reach them, pushed with silent set, while every other push of the group is not silent; clearing it ends that, and a member kicked meanwhile gets the KICKED notice without. A non-member's do_not_disturb is NOT_PERMITTED.",
        |t| async move {
            let s = server(&t);
            let [own, bob, carol, dave] = names(["own", "bob", "carol", "dave"]);
            let (gid, c) = new_group();
            let exp = "create (1); bob's do_not_disturb on: seq 0 and last_seq stays 1; outsider dave's: 0x10A; bob's info shows it on his entry, his mine with the group, carol's info shows bob's entry without it; the owner's text (2), the INVITED notice of dave (3) and a TYPING are pushed to bob silent and to carol not silent; bob clears it (seq 0) and the next text (4) reaches him not silent; set again, bob is kicked (5) and his KICKED push is not silent";
            let ((mut co, _), (mut cb, _), (mut cc, _), (mut cd, _)) =
                loginsv!(s, &own, &bob, &carol, &dave);
            let mut ch = Checks::default();
            tryv!(
                group_ok(&mut co, &gid, create("Quiet", false, &[&bob, &carol]), 1).await,
                exp
            );
            tryv!(
                ch.replied(&mut cb, &gid, dnd(true), "bob's do_not_disturb", 0)
                    .await,
                exp
            );
            tryv!(
                ch.refused(
                    &mut cd,
                    &gid,
                    dnd(true),
                    "outsider dave's do_not_disturb",
                    NOT_PERMITTED
                )
                .await,
                exp
            );
            let last = tryv!(last_seq(&mut co, &c).await, exp);
            ch.that(last == 1, format!("last_seq {last} (want 1: no notice)"));
            let g = tryv!(info(&mut cb, &gid).await, exp);
            ch.that(
                own_flag(&g, &bob) == Some(true),
                format!("bob's own entry: {:?}", own_flag(&g, &bob)),
            );
            match tryv!(
                group(&mut cb, "", Op::Mine(pb::GroupMineQuery::default())).await,
                exp
            ) {
                Body::GroupReply(r) => ch.that(
                    r.groups
                        .iter()
                        .any(|g| g.group_id == gid && g.do_not_disturb),
                    format!(
                        "bob's mine has the group with do_not_disturb: {}",
                        r.groups.len()
                    ),
                ),
                other => ch.that(false, format!("bob's mine {}", describe(&other))),
            }
            let g = tryv!(info(&mut cc, &gid).await, exp);
            ch.that(
                own_flag(&g, &bob) == Some(false) && own_flag(&g, &carol) == Some(false),
                format!(
                    "carol sees bob {:?}, herself {:?}",
                    own_flag(&g, &bob),
                    own_flag(&g, &carol)
                ),
            );
            tryv!(send_ack(&mut co, &c, "q-1", "quietly").await, exp);
            tryv!(
                group_ok(&mut co, &gid, Op::Invite(users(&[&dave])), 3).await,
                exp
            );
            let typing = send_body(&c, "typing-1", "typing", pb::MessageClass::Status);
            tryv!(co.request(typing).await, exp);
            pushed_until(&mut cb, &c, 3).await;
            pushed_until(&mut cc, &c, 3).await;
            live_until(&mut cb, &c, 1).await;
            live_until(&mut cc, &c, 1).await;
            for seq in [2, 3] {
                ch.that(
                    silent_at(&cb, &c, seq) == Some(true) && silent_at(&cc, &c, seq) == Some(false),
                    format!(
                        "seq {seq} pushed silent: to bob {:?}, to carol {:?}",
                        silent_at(&cb, &c, seq),
                        silent_at(&cc, &c, seq)
                    ),
                );
            }
            ch.that(
                live_silent(&cb, &c) == Some(true) && live_silent(&cc, &c) == Some(false),
                format!(
                    "the typing pushed silent: to bob {:?}, to carol {:?}",
                    live_silent(&cb, &c),
                    live_silent(&cc, &c)
                ),
            );
            tryv!(
                ch.replied(&mut cb, &gid, dnd(false), "bob clears it", 0)
                    .await,
                exp
            );
            tryv!(send_ack(&mut co, &c, "q-2", "loudly").await, exp);
            pushed_until(&mut cb, &c, 4).await;
            ch.that(
                silent_at(&cb, &c, 4) == Some(false),
                format!("seq 4 pushed to bob silent: {:?}", silent_at(&cb, &c, 4)),
            );
            tryv!(
                ch.replied(&mut cb, &gid, dnd(true), "bob sets it again", 0)
                    .await,
                exp
            );
            tryv!(
                group_ok(&mut co, &gid, Op::Kick(users(&[&bob])), 5).await,
                exp
            );
            pushed_until(&mut cb, &c, 5).await;
            ch.that(
                silent_at(&cb, &c, 5) == Some(false),
                format!(
                    "bob's KICKED (5) pushed silent: {:?}",
                    silent_at(&cb, &c, 5)
                ),
            );
            ch.done(exp, [co, cb, cc, cd]).await
        },
    )
}
