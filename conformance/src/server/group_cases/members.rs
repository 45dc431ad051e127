//! §2.4–2.5 of `spec/groups.md`: requests that change nothing, and what info lists.

use magpie_session::{Body, pb};
use pb::group::Op;
use pb::group_notice::Kind;

use super::helpers::*;
use crate::case::{Case, Level, Verdict};
use crate::server::{fresh, server};

/// [GROUP-2.4]: users a request skips, and users it may not name.
pub(super) fn skipped() -> Case {
    Case::new(
        "group/2.4/1",
        &["GROUP-2.4", "GROUP-2.2"],
        Level::Must,
        "join by a member, invite and approve of members, kick of non-members and reject of users not pending are skipped without error; a request where every listed user is skipped writes no notice and answers seq 0. approve of a user neither pending nor a member, transfer or set_role naming a non-member are NOT_PERMITTED.",
        |t| async move {
            let s = server(&t);
            let [own, bob, carol, nobody] = names(["own", "bob", "carol", "nobody"]);
            let (gid, c) = new_group();
            let exp = "bob's join, invite [bob], invite [owner], approve [bob], kick [nobody], reject [nobody]: GROUP_REPLY seq 0 and last_seq stays 1; approve [nobody], transfer nobody, set_role [nobody]: 0x10A; invite [bob, carol]: seq 2, INVITED naming carol only";
            let ((mut co, _), (mut cb, _)) = loginsv!(s, &own, &bob);
            let mut ch = Checks::default();
            tryv!(
                group_ok(&mut co, &gid, create("Same", false, &[&bob]), 1).await,
                exp
            );
            let what = "join by the member bob";
            if let Some(reply) = tryv!(
                ch.replied(&mut cb, &gid, Op::Join(none()), what, 0).await,
                exp
            ) {
                ch.that(!reply.pending, format!("pending {}", reply.pending));
            }
            for (what, op) in [
                ("invite of a member", Op::Invite(users(&[&bob]))),
                ("invite of the owner", Op::Invite(users(&[&own]))),
                ("approve of a member", Op::Approve(users(&[&bob]))),
                ("kick of a non-member", Op::Kick(users(&[&nobody]))),
                (
                    "reject of a user not pending",
                    Op::Reject(users(&[&nobody])),
                ),
            ] {
                tryv!(ch.replied(&mut co, &gid, op, what, 0).await, exp);
            }
            let last = tryv!(last_seq(&mut co, &c).await, exp);
            ch.that(
                last == 1,
                format!("last_seq after the skips {last} (want 1: no notice)"),
            );
            for (what, op) in [
                (
                    "approve of a user neither pending nor member",
                    Op::Approve(users(&[&nobody])),
                ),
                ("transfer to a non-member", transfer(&nobody)),
                (
                    "set_role of a non-member",
                    set_role(&[&nobody], pb::GroupRole::Admin),
                ),
            ] {
                tryv!(
                    ch.refused(&mut co, &gid, op, what, NOT_PERMITTED).await,
                    exp
                );
            }
            let op = Op::Invite(users(&[&bob, &carol]));
            tryv!(
                ch.replied(&mut co, &gid, op, "invite [bob, carol]", 2)
                    .await,
                exp
            );
            let h = tryv!(history(&mut co, &c, 2, false).await, exp);
            let msgs = match &h {
                Body::HistoryReply(h) => h.messages.clone(),
                other => {
                    return Verdict::fail(exp, format!("HISTORY answered {}", describe(other)));
                }
            };
            ch.that(
                seqs(&msgs) == [2] && is_notice(&msgs[0], Kind::Invited, &own, Some(&[&carol])),
                format!("history from 2 {}", show_all(&msgs)),
            );
            ch.done(exp, [co, cb]).await
        },
    )
}

/// [GROUP-2.5]: what info shows to whom.
pub(super) fn info_by_role() -> Case {
    Case::new(
        "group/2.5/1",
        &["GROUP-2.5", "GROUP-1.2", "GROUP-2.2"],
        Level::Must,
        "info answers every user with the group's id, name, kind, owner and member count; for a member it lists the members in the order they joined from index members_from (members_next 0 when the list is complete); for the owner and admins it also lists the pending users. A change's answer carries no lists.",
        |t| async move {
            let s = server(&t);
            let [own, adm, mem, p, out] = names(["own", "adm", "mem", "p", "out"]);
            let gid = fresh("g");
            let exp = "everyone: id, name \"Secret\", private, owner, member_count 3; outsider and pending user: no members, no pending; member: [own OWNER@1, adm ADMIN@2, mem MEMBER@3] in that order, members_next 0, no pending; admin and owner: the same and pending [p]; from index 1: [adm, mem], from 2: [mem]; change replies without lists";
            let ((mut co, _), (mut ca, _), (mut cm, _), (mut cp, _), (mut cx, _)) =
                loginsv!(s, &own, &adm, &mem, &p, &out);
            let mut ch = Checks::default();
            let mut replies = Vec::new();
            for (seq, op) in [
                (1, create("Secret", true, NOBODY)),
                (2, Op::Invite(users(&[&adm]))),
                (3, Op::Invite(users(&[&mem]))),
                (4, set_role(&[&adm], pb::GroupRole::Admin)),
            ] {
                replies.push(tryv!(group_ok(&mut co, &gid, op, seq).await, exp));
            }
            replies.push(tryv!(
                group_ok(&mut cp, &gid, Op::Join(none()), 5).await,
                exp
            ));
            ch.that(
                replies.iter().all(|r| {
                    r.group
                        .as_ref()
                        .is_some_and(|g| g.members.is_empty() && g.pending.is_empty())
                }),
                "the answers to the five changes carry no member or pending list",
            );
            let listed = |g: &pb::GroupInfo| {
                g.members
                    .iter()
                    .map(|m| (m.user_id.clone(), m.role, m.joined_seq))
                    .collect::<Vec<_>>()
            };
            let all = vec![
                (own.clone(), pb::GroupRole::Owner as i32, 1),
                (adm.clone(), pb::GroupRole::Admin as i32, 2),
                (mem.clone(), pb::GroupRole::Member as i32, 3),
            ];
            for (who, conn, sees_members, sees_pending) in [
                ("outsider", &mut cx, false, false),
                ("pending user", &mut cp, false, false),
                ("member", &mut cm, true, false),
                ("admin", &mut ca, true, true),
                ("owner", &mut co, true, true),
            ] {
                let g = tryv!(info(conn, &gid).await, exp);
                let basics = g.group_id == gid
                    && g.name == "Secret"
                    && g.private
                    && g.owner == own
                    && g.member_count == 3
                    && !g.dismissed
                    && g.members_next == 0;
                let members_ok = if sees_members {
                    listed(&g) == all
                } else {
                    g.members.is_empty()
                };
                let pending_ok = if sees_pending {
                    g.pending == [p.clone()]
                } else {
                    g.pending.is_empty()
                };
                ch.that(
                    basics && members_ok && pending_ok,
                    format!("{who} sees {}", describe_info(&g)),
                );
            }
            for (from, want) in [(1, &all[1..]), (2, &all[2..])] {
                match tryv!(group(&mut cm, &gid, info_from(from)).await, exp) {
                    Body::GroupReply(r) => {
                        let g = r.group.unwrap_or_default();
                        ch.that(
                            listed(&g) == want && g.members_next == 0,
                            format!("member's info from {from}: {}", describe_info(&g)),
                        );
                    }
                    other => ch.that(
                        false,
                        format!("member's info from {from}: {}", describe(&other)),
                    ),
                }
            }
            ch.done(exp, [co, ca, cm, cp, cx]).await
        },
    )
}

/// [GROUP-2.5]: info pages its member list to fit the requester's frames.
pub(super) fn info_pages() -> Case {
    Case::new(
        "group/2.5/2",
        &["GROUP-2.5"],
        Level::Must,
        "info lists a member as many members as fit the requester's max_frame_size, from index members_from, and sets members_next to the index of the next one (0 when the list is complete): paging from 0 yields every member once, in the order they joined.",
        |t| async move {
            let s = server(&t);
            let [own, gid] = names(["own", "g"]);
            let exp = "a group of 400 members with 64-byte ids; the owner with max_frame_size 16384: at least 2 non-empty pages, each members_next the index after the page, every frame within 16384 bytes, together the 400 members once each in join order (joined_seq never decreasing); with the default frame limit: one page of 400, members_next 0";
            let (mut co, _) = loginv!(s, &own, "d1");
            let mut ch = Checks::default();
            let others = fresh_users(399, 64);
            let (first, rest) = others.split_at(MAX_REQUEST_USERS - 1);
            tryv!(fill_group(&mut co, &gid, "Big", first, rest).await, exp);
            let mut small = tryv!(login_small_frames(s, &own, "small").await, exp);
            let (mut seen, mut pages, mut from, mut steps) = (Vec::new(), 0, 0, Vec::new());
            while pages < 40 {
                let g = match tryv!(group(&mut small, &gid, info_from(from)).await, exp) {
                    Body::GroupReply(r) => r.group.unwrap_or_default(),
                    other => {
                        return Verdict::fail(
                            exp,
                            format!("info from {from}: {}", describe(&other)),
                        );
                    }
                };
                pages += 1;
                let n = g.members.len() as u32;
                steps.push(format!("from {from}: {n} members, next {}", g.members_next));
                seen.extend(g.members);
                if g.members_next == 0 || n == 0 {
                    break;
                }
                ch.that(
                    g.members_next == from + n,
                    format!(
                        "page from {from}: next {} after {n} members",
                        g.members_next
                    ),
                );
                from = g.members_next;
            }
            small.close().await;
            let mut ids: Vec<&str> = seen.iter().map(|m| m.user_id.as_str()).collect();
            let in_order = seen.windows(2).all(|w| w[0].joined_seq <= w[1].joined_seq);
            ids.sort_unstable();
            let mut want: Vec<&str> = others.iter().map(String::as_str).collect();
            want.push(&own);
            want.sort_unstable();
            let (listed, once) = (seen.len(), ids == want);
            let steps = steps.join(", ");
            ch.that(
                pages >= 2 && once && in_order,
                format!(
                    "{pages} pages ({steps}); {listed} listed; each member once: {once}; \
                     in join order: {in_order}"
                ),
            );
            let g = tryv!(info(&mut co, &gid).await, exp);
            ch.that(
                g.members.len() == 400 && g.members_next == 0 && g.member_count == 400,
                format!(
                    "with the default frame limit: {} members, next {}, count {}",
                    g.members.len(),
                    g.members_next,
                    g.member_count
                ),
            );
            ch.done(exp, [co]).await
        },
    )
}
