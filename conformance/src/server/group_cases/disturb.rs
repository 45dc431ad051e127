//! Do-not-disturb per member (E9; `spec/groups.md` §1.7).

use magpie_session::pb;
use pb::group::Op;

use super::helpers::*;
use crate::case::{Case, Level};
use crate::conn::Conn;
use crate::server::{send_ack, server};

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
        "A member may ask not to be disturbed by a group (do_not_disturb): no notice is written, info shows it on their own entry only, and the group's stored messages still reach them, pushed with silent set, while every other push of a group event is not silent; clearing it ends that. A non-member's do_not_disturb is NOT_PERMITTED.",
        |t| async move {
            let s = server(&t);
            let [own, bob, carol, dave] = names(["own", "bob", "carol", "dave"]);
            let (gid, c) = new_group();
            let exp = "create (1); bob's do_not_disturb on: seq 0 and last_seq stays 1; outsider dave's: 0x10A; bob's info shows it on his entry, carol's info shows bob's entry without it; the owner's text (2) is pushed to bob silent and to carol not silent; bob clears it (seq 0) and the next text (3) reaches him not silent";
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
            pushed_until(&mut cb, &c, 2).await;
            pushed_until(&mut cc, &c, 2).await;
            ch.that(
                silent_at(&cb, &c, 2) == Some(true) && silent_at(&cc, &c, 2) == Some(false),
                format!(
                    "seq 2 pushed silent: to bob {:?}, to carol {:?}",
                    silent_at(&cb, &c, 2),
                    silent_at(&cc, &c, 2)
                ),
            );
            tryv!(
                ch.replied(&mut cb, &gid, dnd(false), "bob clears it", 0)
                    .await,
                exp
            );
            tryv!(send_ack(&mut co, &c, "q-2", "loudly").await, exp);
            pushed_until(&mut cb, &c, 3).await;
            ch.that(
                silent_at(&cb, &c, 3) == Some(false),
                format!("seq 3 pushed to bob silent: {:?}", silent_at(&cb, &c, 3)),
            );
            ch.done(exp, [co, cb, cc, cd]).await
        },
    )
}
