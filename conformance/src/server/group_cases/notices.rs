//! §3 of `spec/groups.md`: the notices a change writes, and whose streams they reach.

use std::time::Duration;

use magpie_session::{Body, pb};
use pb::group::Op;
use pb::group_notice::Kind;

use super::helpers::*;
use crate::case::{Case, Level};
use crate::server::{send_ack, server, text_of};

/// [GROUP-3.1]: every change writes its notice, and only the server writes them.
pub(super) fn written() -> Case {
    Case::new(
        "group/3.1/1",
        &["GROUP-3.1", "GROUP-3.2", "GROUP-2.2"],
        Level::Must,
        "Every change to a group's members or roles MUST be committed together with a notice: a stored NOTIFICATION message in the group's conversation, sent by the requester, whose content is a GroupNotice (kind, the requester as actor, the users it names, the new role or the name) and whose client_msg_id is empty; it gets the next seq like any message, and is pushed to the members like any event. Only the server writes notices: a SEND whose content is a GroupNotice is BAD_REQUEST.",
        |t| async move {
            let s = server(&t);
            let [own, bob, carol] = names(["own", "bob", "carol"]);
            let (gid, c) = new_group();
            let exp = "replies seq 1 (create), 2 is a text, 3 (invite carol), 4 (bob ADMIN), 5 (transfer to bob), 6 (carol leaves); bob is pushed and syncs seqs 1..=6 in order: CREATED{own, name \"Notices\", names bob}, the text, INVITED{own,[carol]}, ROLE_CHANGED{own,[bob],ADMIN}, OWNER_CHANGED{own,[bob]}, LEFT{carol}, every notice NOTIFICATION with empty client_msg_id sent by its actor; a SEND whose content is a GroupNotice (to the group or a user): BAD_REQUEST, nothing stored";
            let ((mut cb, wb), (co, _), (cc, _)) = loginsv!(s, &bob, &own, &carol);
            let mut ch = Checks::default();
            let mut conns = [co, cc];
            let (by_own, by_carol) = (0, 1);
            let steps = [
                ("create", by_own, create("Notices", false, &[&bob])),
                ("invite carol", by_own, Op::Invite(users(&[&carol]))),
                ("bob ADMIN", by_own, set_role(&[&bob], pb::GroupRole::Admin)),
                ("transfer to bob", by_own, transfer(&bob)),
                ("carol leaves", by_carol, Op::Leave(none())),
            ];
            let mut seq = 0;
            for (what, by, op) in steps {
                seq += 1;
                if seq == 2 {
                    let ack = tryv!(send_ack(&mut conns[by_own], &c, "n-1", "chat").await, exp);
                    ch.that(ack.seq == 2, format!("the text acked seq {}", ack.seq));
                    seq += 1;
                }
                tryv!(ch.replied(&mut conns[by], &gid, op, what, seq).await, exp);
            }
            let is_created = |m: &pb::Message| {
                is_notice(m, Kind::Created, &own, None)
                    && notice_of(m).is_some_and(|n| {
                        n.name == "Notices"
                            && n.users.contains(&bob)
                            && n.users.iter().all(|u| *u == bob || *u == own)
                    })
            };
            let is_role = |m: &pb::Message| {
                is_notice(m, Kind::RoleChanged, &own, Some(&[&bob]))
                    && notice_of(m).is_some_and(|n| n.role == pb::GroupRole::Admin as i32)
            };
            let want = |msgs: &[pb::Message]| {
                seqs(msgs) == [1, 2, 3, 4, 5, 6]
                    && is_created(&msgs[0])
                    && msgs[1].class == pb::MessageClass::Content as i32
                    && msgs[1].client_msg_id == "n-1"
                    && text_of(&msgs[1]) == "chat"
                    && is_notice(&msgs[2], Kind::Invited, &own, Some(&[&carol]))
                    && is_role(&msgs[3])
                    && is_notice(&msgs[4], Kind::OwnerChanged, &own, Some(&[&bob]))
                    && is_notice(&msgs[5], Kind::Left, &carol, None)
            };
            let at_bob = pushed_until(&mut cb, &c, 6).await;
            ch.that(want(&at_bob), format!("bob pushed {}", show_all(&at_bob)));
            let synced = tryv!(stream(&mut cb, &wb, &c).await, exp);
            ch.that(want(&synced), format!("bob synced {}", show_all(&synced)));
            // Only the server writes notices: a forged one is refused, to the group or a user.
            let forged = |to: &str, class: pb::MessageClass| {
                Body::Send(pb::Send {
                    to: to.into(),
                    client_msg_id: format!("forged-{}", class as i32),
                    class: class as i32,
                    content: Some(pb::Content {
                        kind: Some(pb::content::Kind::GroupNotice(pb::GroupNotice {
                            kind: Kind::Kicked as i32,
                            actor: bob.clone(),
                            users: vec![own.clone()],
                            ..Default::default()
                        })),
                    }),
                    ..Default::default()
                })
            };
            for (what, to, class) in [
                (
                    "to the group, class NOTIFICATION",
                    c.as_str(),
                    pb::MessageClass::Notification,
                ),
                (
                    "to the group, class CONTENT",
                    c.as_str(),
                    pb::MessageClass::Content,
                ),
                ("to a user", carol.as_str(), pb::MessageClass::Notification),
            ] {
                let r = tryv!(cb.request(forged(to, class)).await, exp);
                ch.code(&format!("SEND of a GroupNotice {what}"), &r, BAD_REQUEST);
            }
            let last = tryv!(last_seq(&mut cb, &c).await, exp);
            ch.that(
                last == 6,
                format!("last_seq after the forged notices {last} (want 6)"),
            );
            let [co, cc] = conns;
            ch.done(exp, [cb, co, cc]).await
        },
    )
}

/// [GROUP-3.2]: a notice reaches the users it names, and former members get nothing after it.
pub(super) fn reach() -> Case {
    Case::new(
        "group/3.2/1",
        &["GROUP-3.2", "GROUP-4.1", "GROUP-4.4"],
        Level::Must,
        "A notice is appended to the streams of the members after the change and of the users it names, so a kicked user and a user who left still learn of it; a user who is no longer a member receives nothing of the group after it.",
        |t| async move {
            let s = server(&t);
            let [own, bob, carol, dan] = names(["own", "bob", "carol", "dan"]);
            let (gid, c) = new_group();
            let exp = "kick carol (seq 2), dan leaves (seq 3), a text (seq 4): bob's stream 1..=4; carol's stream [1, 2] ending with KICKED naming carol, and carol pushed nothing past 2; dan's stream [1, 2, 3] ending with LEFT by dan; carol's SEND and HISTORY, dan's READ: 0x105";
            let ((mut co, _), (mut cb, wb), (mut cc, wc), (mut cd, wd)) =
                loginsv!(s, &own, &bob, &carol, &dan);
            let mut ch = Checks::default();
            let op = create("Churn", false, &[&bob, &carol, &dan]);
            tryv!(group_ok(&mut co, &gid, op, 1).await, exp);
            tryv!(
                group_ok(&mut co, &gid, Op::Kick(users(&[&carol])), 2).await,
                exp
            );
            let kicked = |m: &pb::Message| is_notice(m, Kind::Kicked, &own, Some(&[&carol]));
            ch.pushed_at("carol", &mut cc, &c, 2, kicked).await;
            tryv!(group_ok(&mut cd, &gid, Op::Leave(none()), 3).await, exp);
            let ack = tryv!(send_ack(&mut co, &c, "k-1", "after them").await, exp);
            ch.that(ack.seq == 4, format!("the text acked seq {}", ack.seq));
            let at_bob = pushed_until(&mut cb, &c, 4).await;
            ch.that(
                seqs(&at_bob) == [1, 2, 3, 4],
                format!("bob pushed {}", show_all(&at_bob)),
            );
            cc.drain(QUIET).await;
            cd.drain(Duration::from_millis(50)).await;
            let late = pushed(&cc, &c);
            ch.that(
                late.iter().all(|m| m.seq <= 2),
                format!("carol pushed after the kick {}", show_all(&late)),
            );
            let late = pushed(&cd, &c);
            ch.that(
                late.iter().all(|m| m.seq <= 3),
                format!("dan pushed after leaving {}", show_all(&late)),
            );
            let synced = tryv!(stream(&mut cb, &wb, &c).await, exp);
            ch.that(
                seqs(&synced) == [1, 2, 3, 4],
                format!("bob's stream {}", show_all(&synced)),
            );
            let synced = tryv!(stream(&mut cc, &wc, &c).await, exp);
            ch.that(
                seqs(&synced) == [1, 2] && kicked(&synced[1]),
                format!("carol's stream {}", show_all(&synced)),
            );
            let synced = tryv!(stream(&mut cd, &wd, &c).await, exp);
            ch.that(
                seqs(&synced) == [1, 2, 3] && is_notice(&synced[2], Kind::Left, &dan, None),
                format!("dan's stream {}", show_all(&synced)),
            );
            let r = tryv!(send_text(&mut cc, &c, "k-2", "let me back").await, exp);
            ch.code("SEND by kicked carol", &r, UNKNOWN_CONVERSATION);
            let r = tryv!(history(&mut cc, &c, 1, false).await, exp);
            ch.code("HISTORY by kicked carol", &r, UNKNOWN_CONVERSATION);
            let r = tryv!(read(&mut cd, &c, 4).await, exp);
            ch.code("READ by dan who left", &r, UNKNOWN_CONVERSATION);
            ch.done(exp, [co, cb, cc, cd]).await
        },
    )
}
