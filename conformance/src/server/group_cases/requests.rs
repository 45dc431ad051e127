//! §2.1–2.3 of `spec/groups.md`: malformed requests, and who may make which request.

use magpie_session::{Body, pb};
use pb::group::Op;
use pb::group_notice::Kind;

use super::helpers::*;
use crate::case::{Case, Level};
use crate::server::{fresh, send_ack, server};

/// [GROUP-2.1]: malformed requests, and requests about no group, have no effect.
pub(super) fn malformed() -> Case {
    Case::new(
        "group/2.1/1",
        &["GROUP-2.1", "GROUP-1.2", "GROUP-2.3", "ERR-1.2"],
        Level::Must,
        "A GROUP without an operation is BAD_REQUEST; a name over max_group_name (default 128) is BAD_REQUEST; a bad user id in a list is INVALID_USER_ID; a request about a group that does not exist is UNKNOWN_GROUP. A request that fails has no effect.",
        |t| async move {
            let s = server(&t);
            let [own, bob, carol] = names(["own", "bob", "carol"]);
            let exp = "GROUP without op: 0x100; create with a 129-byte name: 0x100 and no group; create naming \"bad id\": 0x102 and no group; info/join/invite of a group never created: 0x10D; a 128-byte name is accepted; invite [carol, \"bad id\"]: 0x102 and carol is no member, no notice written";
            let (mut co, _) = loginv!(s, &own, "d1");
            let mut ch = Checks::default();
            let [g1, g2, g3, nosuch] = names(["g"; 4]);

            let r = tryv!(group_without_op(&mut co, &g1).await, exp);
            ch.code("GROUP without an operation", &r, BAD_REQUEST);
            let long_name = "n".repeat(MAX_GROUP_NAME + 1);
            let op = create(&long_name, false, &[&bob]);
            tryv!(
                ch.refused(&mut co, &g1, op, "create with a 129-byte name", BAD_REQUEST)
                    .await,
                exp
            );
            let nothing = "info after the refused create (nothing created)";
            tryv!(
                ch.refused(&mut co, &g1, info_op(), nothing, UNKNOWN_GROUP)
                    .await,
                exp
            );
            let op = create("ok", false, &[bob.as_str(), "bad id"]);
            tryv!(
                ch.refused(
                    &mut co,
                    &g2,
                    op,
                    "create naming \"bad id\"",
                    INVALID_USER_ID
                )
                .await,
                exp
            );
            tryv!(
                ch.refused(&mut co, &g2, info_op(), nothing, UNKNOWN_GROUP)
                    .await,
                exp
            );
            for (what, op) in about_the_group(&bob) {
                let what = format!("{what} of a group never created");
                tryv!(
                    ch.refused(&mut co, &nosuch, op, &what, UNKNOWN_GROUP).await,
                    exp
                );
            }

            let name = "n".repeat(MAX_GROUP_NAME);
            let op = create(&name, false, &[&bob]);
            let r = tryv!(
                ch.replied(&mut co, &g3, op, "create with a 128-byte name", 1)
                    .await,
                exp
            );
            if let Some(reply) = r {
                let g = reply.group.unwrap_or_default();
                ch.that(g.name == name, format!("name kept: {} bytes", g.name.len()));
            }
            let op = Op::Invite(users(&[carol.as_str(), "bad id"]));
            tryv!(
                ch.refused(
                    &mut co,
                    &g3,
                    op,
                    "invite [carol, \"bad id\"]",
                    INVALID_USER_ID
                )
                .await,
                exp
            );
            let r = tryv!(group_without_op(&mut co, &g3).await, exp);
            ch.code("GROUP without an operation on a group", &r, BAD_REQUEST);
            if let Some(reply) = tryv!(ch.replied(&mut co, &g3, info_op(), "info", 0).await, exp) {
                let g = reply.group.unwrap_or_default();
                ch.that(
                    g.member_count == 2 && role_of(&g, &carol).is_none(),
                    format!(
                        "after the refusals carol is no member: {}",
                        describe_info(&g)
                    ),
                );
            }
            let last = tryv!(last_seq(&mut co, &gconv(&g3)).await, exp);
            ch.that(
                last == 1,
                format!("last_seq after the refusals {last} (want 1: no notice)"),
            );
            ch.done(exp, [co]).await
        },
    )
}

/// [GROUP-2.3]: join of a public group.
pub(super) fn join_public() -> Case {
    Case::new(
        "group/2.3/1",
        &["GROUP-2.3", "GROUP-2.2", "GROUP-3.2"],
        Level::Must,
        "join by any user of a public group makes them a member (JOINED notice, pending not set); the notice reaches the members after the change, the new member included.",
        |t| async move {
            let s = server(&t);
            let [own, eve] = names(["own", "eve"]);
            let (gid, c) = new_group();
            let exp = "eve's join: GROUP_REPLY seq 2, pending false, member_count 2; info: eve a MEMBER with joined_seq 2; owner pushed JOINED {actor eve, users [eve]}; eve's stream holds that notice and not the CREATED before it; eve's SEND acked seq 3";
            let ((mut co, _), (mut ce, we)) = loginsv!(s, &own, &eve);
            let mut ch = Checks::default();
            tryv!(
                group_ok(&mut co, &gid, create("Open", false, NOBODY), 1).await,
                exp
            );
            let r = tryv!(
                ch.replied(&mut ce, &gid, Op::Join(none()), "eve's join", 2)
                    .await,
                exp
            );
            if let Some(reply) = r {
                let n = reply.group.map_or(0, |g| g.member_count);
                ch.that(
                    !reply.pending && n == 2,
                    format!("pending {} member_count {n}", reply.pending),
                );
            }
            let g = tryv!(info(&mut ce, &gid).await, exp);
            ch.that(
                role_of(&g, &eve) == Some(pb::GroupRole::Member as i32)
                    && joined_seq_of(&g, &eve) == Some(2),
                format!("eve's info {}", describe_info(&g)),
            );
            let joined = |m: &pb::Message| is_notice(m, Kind::Joined, &eve, Some(&[&eve]));
            ch.pushed_at("owner", &mut co, &c, 2, joined).await;
            let at_eve = tryv!(stream(&mut ce, &we, &c).await, exp);
            ch.that(
                seqs(&at_eve) == [2] && joined(&at_eve[0]),
                format!("eve's stream {}", show_all(&at_eve)),
            );
            let ack = tryv!(send_ack(&mut ce, &c, "j-1", "hello").await, exp);
            ch.that(ack.seq == 3, format!("eve's SEND acked seq {}", ack.seq));
            ch.done(exp, [co, ce]).await
        },
    )
}

/// [GROUP-2.3]: join of a private group, approve and reject.
pub(super) fn join_private() -> Case {
    Case::new(
        "group/2.3/2",
        &["GROUP-2.3", "GROUP-2.2", "GROUP-3.2", "GROUP-4.1"],
        Level::Must,
        "join of a private group makes the user pending (pending set, JOIN_REQUESTED, which the members and the requester receive); only the owner and admins approve (JOINED) or reject (JOIN_REJECTED); a pending user is no member; a rejected requester still learns of it and receives nothing of the group after.",
        |t| async move {
            let s = server(&t);
            let [own, bob, dan, erin] = names(["own", "bob", "dan", "erin"]);
            let (gid, c) = new_group();
            let exp = "dan's join: seq 2, pending set, member_count 2; owner and bob pushed JOIN_REQUESTED {actor dan}, dan's stream holds it; dan's SEND 0x105; bob's approve 0x10A; owner's approve: seq 3, then info: no pending, dan MEMBER joined_seq 3; dan's stream gets JOINED [dan]; dan's SEND acked seq 4; erin's join seq 5 (owner's info: pending [erin]), owner's reject seq 6 (pending empty); erin's stream ends with JOIN_REJECTED [erin], erin gets nothing of seq 7; erin's SEND 0x105";
            let ((mut co, _), (mut cb, _), (mut cd, wd), (mut ce, we)) =
                loginsv!(s, &own, &bob, &dan, &erin);
            let mut ch = Checks::default();
            tryv!(
                group_ok(&mut co, &gid, create("Closed", true, &[&bob]), 1).await,
                exp
            );
            let r = tryv!(
                ch.replied(&mut cd, &gid, Op::Join(none()), "dan's join", 2)
                    .await,
                exp
            );
            if let Some(reply) = r {
                let n = reply.group.map_or(0, |g| g.member_count);
                ch.that(
                    reply.pending && n == 2,
                    format!("pending {} member_count {n}", reply.pending),
                );
            }
            let requested = |m: &pb::Message| is_notice(m, Kind::JoinRequested, &dan, None);
            for (who, conn) in [("owner", &mut co), ("bob", &mut cb)] {
                ch.pushed_at(who, conn, &c, 2, requested).await;
            }
            let r = tryv!(send_text(&mut cd, &c, "p-1", "early").await, exp);
            ch.code("SEND by pending dan", &r, UNKNOWN_CONVERSATION);
            let approve = || Op::Approve(users(&[&dan]));
            tryv!(
                ch.refused(
                    &mut cb,
                    &gid,
                    approve(),
                    "approve by the member bob",
                    NOT_PERMITTED
                )
                .await,
                exp
            );
            tryv!(
                ch.replied(&mut co, &gid, approve(), "approve by the owner", 3)
                    .await,
                exp
            );
            let g = tryv!(info(&mut co, &gid).await, exp);
            ch.that(
                g.pending.is_empty()
                    && role_of(&g, &dan) == Some(pb::GroupRole::Member as i32)
                    && joined_seq_of(&g, &dan) == Some(3),
                format!("owner's info after the approval {}", describe_info(&g)),
            );
            let at_dan = tryv!(stream(&mut cd, &wd, &c).await, exp);
            ch.that(
                at_dan.iter().any(|m| m.seq == 2 && requested(m))
                    && at_dan
                        .iter()
                        .any(|m| m.seq == 3 && is_notice(m, Kind::Joined, &own, Some(&[&dan]))),
                format!("dan's stream {}", show_all(&at_dan)),
            );
            let r = tryv!(send_text(&mut cd, &c, "p-2", "hi all").await, exp);
            ch.that(
                matches!(&r, Body::SendAck(a) if a.seq == 4),
                format!("dan's SEND as a member: {} (want seq 4)", describe(&r)),
            );

            let r = tryv!(
                ch.replied(&mut ce, &gid, Op::Join(none()), "erin's join", 5)
                    .await,
                exp
            );
            if let Some(reply) = r {
                ch.that(reply.pending, format!("erin pending {}", reply.pending));
            }
            let g = tryv!(info(&mut co, &gid).await, exp);
            ch.that(
                g.pending == [erin.clone()],
                format!("owner's info {}", describe_info(&g)),
            );
            let op = Op::Reject(users(&[&erin]));
            tryv!(
                ch.replied(&mut co, &gid, op, "reject of erin by the owner", 6)
                    .await,
                exp
            );
            let g = tryv!(info(&mut co, &gid).await, exp);
            ch.that(
                g.pending.is_empty() && role_of(&g, &erin).is_none(),
                format!("owner's info after the rejection {}", describe_info(&g)),
            );
            tryv!(send_ack(&mut co, &c, "p-3", "after erin").await, exp);
            ce.drain(QUIET).await;
            let at_erin = tryv!(stream(&mut ce, &we, &c).await, exp);
            ch.that(
                at_erin.last().is_some_and(|m| {
                    m.seq == 6 && is_notice(m, Kind::JoinRejected, &own, Some(&[&erin]))
                }),
                format!("erin's stream {}", show_all(&at_erin)),
            );
            let late = pushed(&ce, &c);
            ch.that(
                late.iter().all(|m| m.seq <= 6),
                format!("erin pushed {}", show_all(&late)),
            );
            let r = tryv!(send_text(&mut ce, &c, "p-4", "please").await, exp);
            ch.code("SEND by rejected erin", &r, UNKNOWN_CONVERSATION);
            ch.done(exp, [co, cb, cd, ce]).await
        },
    )
}

/// [GROUP-2.3]: every request the table refuses.
pub(super) fn not_permitted() -> Case {
    Case::new(
        "group/2.3/3",
        &["GROUP-2.3", "GROUP-2.1", "ERR-1.2"],
        Level::Must,
        "A request by someone the table does not allow is NOT_PERMITTED and has no effect: a member's invite to a private group, kick, approve, reject, set_role, dismiss; an admin's kick of an admin or the owner, set_role, transfer, dismiss; the owner's kick of themself and leave; any request but join and info by a non-member.",
        |t| async move {
            let s = server(&t);
            let [own, adm, adm2, m1, m2, out, x] =
                names(["own", "adm", "adm2", "m1", "m2", "out", "x"]);
            let (gid, c) = new_group();
            let exp = "every refused request REQUEST_ERROR NOT_PERMITTED (0x10A); after them the members and roles are as before and last_seq is still 2; then the admin's invite to the private group is allowed (seq 3)";
            let ((mut co, _), (ca, _), (cm, _), (cx, _)) = loginsv!(s, &own, &adm, &m1, &out);
            let mut ch = Checks::default();
            let op = create("Strict", true, &[&adm, &adm2, &m1, &m2]);
            tryv!(group_ok(&mut co, &gid, op, 1).await, exp);
            let op = set_role(&[&adm, &adm2], pb::GroupRole::Admin);
            tryv!(group_ok(&mut co, &gid, op, 2).await, exp);
            let mut conns = [co, ca, cm, cx];
            let (by_own, by_adm, by_mem, by_out) = (0, 1, 2, 3);
            let refused = [
                (
                    "member invites to a private group",
                    by_mem,
                    Op::Invite(users(&[&x])),
                ),
                ("member kicks a member", by_mem, Op::Kick(users(&[&m2]))),
                ("member approves", by_mem, Op::Approve(users(&[&x]))),
                ("member rejects", by_mem, Op::Reject(users(&[&x]))),
                (
                    "member sets a role",
                    by_mem,
                    set_role(&[&m1], pb::GroupRole::Admin),
                ),
                ("member transfers", by_mem, transfer(&m1)),
                ("member dismisses", by_mem, Op::Dismiss(none())),
                ("admin kicks an admin", by_adm, Op::Kick(users(&[&adm2]))),
                ("admin kicks the owner", by_adm, Op::Kick(users(&[&own]))),
                (
                    "admin sets a role",
                    by_adm,
                    set_role(&[&m1], pb::GroupRole::Admin),
                ),
                ("admin transfers", by_adm, transfer(&m1)),
                ("admin dismisses", by_adm, Op::Dismiss(none())),
                ("owner kicks themself", by_own, Op::Kick(users(&[&own]))),
                ("owner leaves", by_own, Op::Leave(none())),
                ("non-member invites", by_out, Op::Invite(users(&[&x]))),
                ("non-member kicks", by_out, Op::Kick(users(&[&m1]))),
                ("non-member leaves", by_out, Op::Leave(none())),
                ("non-member dismisses", by_out, Op::Dismiss(none())),
            ];
            for (what, by, op) in refused {
                tryv!(
                    ch.refused(&mut conns[by], &gid, op, what, NOT_PERMITTED)
                        .await,
                    exp
                );
            }
            let what = "owner's info after the refusals";
            let r = tryv!(
                ch.replied(&mut conns[by_own], &gid, info_op(), what, 0)
                    .await,
                exp
            );
            if let Some(reply) = r {
                let g = reply.group.unwrap_or_default();
                let roles = [
                    (&own, pb::GroupRole::Owner),
                    (&adm, pb::GroupRole::Admin),
                    (&adm2, pb::GroupRole::Admin),
                    (&m1, pb::GroupRole::Member),
                    (&m2, pb::GroupRole::Member),
                ];
                ch.that(
                    g.member_count == 5
                        && g.owner == own
                        && roles.iter().all(|(u, r)| role_of(&g, u) == Some(*r as i32)),
                    format!("unchanged: {}", describe_info(&g)),
                );
            }
            let last = tryv!(last_seq(&mut conns[by_own], &c).await, exp);
            ch.that(
                last == 2,
                format!("last_seq {last} (want 2: no notice written)"),
            );
            let (op, what) = (
                Op::Invite(users(&[&x])),
                "admin invites to the private group",
            );
            tryv!(ch.replied(&mut conns[by_adm], &gid, op, what, 3).await, exp);
            let g = tryv!(info(&mut conns[by_own], &gid).await, exp);
            ch.that(
                role_of(&g, &x) == Some(pb::GroupRole::Member as i32),
                format!("owner's info after the invite {}", describe_info(&g)),
            );
            ch.done(exp, conns).await
        },
    )
}

/// [GROUP-2.3]: what the allowed requests do.
pub(super) fn allowed() -> Case {
    Case::new(
        "group/2.3/4",
        &["GROUP-2.3", "GROUP-2.2", "GROUP-1.2"],
        Level::Must,
        "What the allowed operations do: any member invites to a public group; an admin kicks a member; the owner kicks an admin; set_role makes admins; transfer makes the named member owner and the old owner a member (exactly one OWNER), who may then leave; the new owner dismisses.",
        |t| async move {
            let s = server(&t);
            let [own, adm, m1, m2, x] = names(["own", "adm", "m1", "m2", "x"]);
            let gid = fresh("g");
            let exp = "seqs 1..=8 for create, set_role, member's invite, admin's kick of a member, owner's kick of the admin, transfer, old owner's leave, new owner's dismiss; after each, m1's info shows the group as the change leaves it";
            let ((mut co, _), (mut ca, _), (mut cm, _)) = loginsv!(s, &own, &adm, &m1);
            let mut ch = Checks::default();
            let (owner, admin, member) = (
                Some(pb::GroupRole::Owner as i32),
                Some(pb::GroupRole::Admin as i32),
                Some(pb::GroupRole::Member as i32),
            );
            let op = create("Public", false, &[&adm, &m1, &m2]);
            tryv!(ch.replied(&mut co, &gid, op, "create", 1).await, exp);
            let g = tryv!(info(&mut cm, &gid).await, exp);
            ch.that(
                !g.private
                    && g.owner == own
                    && owners(&g) == 1
                    && role_of(&g, &own) == owner
                    && [&adm, &m1, &m2].iter().all(|u| role_of(&g, u) == member),
                format!("after create {}", describe_info(&g)),
            );
            let op = set_role(&[&adm], pb::GroupRole::Admin);
            tryv!(
                ch.replied(&mut co, &gid, op, "owner makes adm ADMIN", 2)
                    .await,
                exp
            );
            let g = tryv!(info(&mut cm, &gid).await, exp);
            ch.that(
                role_of(&g, &adm) == admin,
                format!("after set_role {}", describe_info(&g)),
            );
            let (op, what) = (
                Op::Invite(users(&[&x])),
                "member invites to the public group",
            );
            tryv!(ch.replied(&mut cm, &gid, op, what, 3).await, exp);
            let g = tryv!(info(&mut cm, &gid).await, exp);
            ch.that(
                role_of(&g, &x) == member && joined_seq_of(&g, &x) == Some(3),
                format!("after the invite {}", describe_info(&g)),
            );
            let op = Op::Kick(users(&[&m2]));
            tryv!(
                ch.replied(&mut ca, &gid, op, "admin kicks a member", 4)
                    .await,
                exp
            );
            let g = tryv!(info(&mut cm, &gid).await, exp);
            ch.that(
                role_of(&g, &m2).is_none() && g.member_count == 4,
                format!("after the admin's kick {}", describe_info(&g)),
            );
            let op = Op::Kick(users(&[&adm]));
            tryv!(
                ch.replied(&mut co, &gid, op, "owner kicks the admin", 5)
                    .await,
                exp
            );
            let g = tryv!(info(&mut cm, &gid).await, exp);
            ch.that(
                role_of(&g, &adm).is_none() && g.member_count == 3,
                format!("after the owner's kick {}", describe_info(&g)),
            );
            let r = tryv!(
                ch.replied(&mut co, &gid, transfer(&m1), "owner transfers to m1", 6)
                    .await,
                exp
            );
            if let Some(reply) = r {
                let new_owner = reply.group.map(|g| g.owner).unwrap_or_default();
                ch.that(new_owner == m1, format!("the reply's owner {new_owner}"));
            }
            let g = tryv!(info(&mut cm, &gid).await, exp);
            ch.that(
                g.owner == m1
                    && owners(&g) == 1
                    && role_of(&g, &m1) == owner
                    && role_of(&g, &own) == member,
                format!("after the transfer {}", describe_info(&g)),
            );
            let op = Op::Leave(none());
            tryv!(
                ch.replied(&mut co, &gid, op, "the old owner leaves", 7)
                    .await,
                exp
            );
            let g = tryv!(info(&mut cm, &gid).await, exp);
            ch.that(
                g.owner == m1 && g.member_count == 2 && role_of(&g, &own).is_none(),
                format!("after the leave {}", describe_info(&g)),
            );
            let op = Op::Dismiss(none());
            tryv!(
                ch.replied(&mut cm, &gid, op, "the new owner dismisses", 8)
                    .await,
                exp
            );
            ch.done(exp, [co, ca, cm]).await
        },
    )
}
