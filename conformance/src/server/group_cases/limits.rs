//! §1 of `spec/groups.md`: group ids, the limits on a group and a request, and dismissed groups.

use std::time::Duration;

use magpie_session::pb;
use pb::group::Op;
use pb::group_notice::Kind;

use super::helpers::*;
use crate::case::{Case, Level};
use crate::server::{fresh, send_ack, server};

/// [GROUP-1.1]: the id rule, uniqueness, and the conversation id.
pub(super) fn ids() -> Case {
    Case::new(
        "group/1.1/1",
        &["GROUP-1.1", "GROUP-2.3"],
        Level::Must,
        "A group id follows the user id rule (1 to 64 bytes of A-Z a-z 0-9 _ - . @ =) and is unique within its app; its conversation id is g: + the id. A GROUP request with a bad group id is BAD_REQUEST; create of an existing id is GROUP_EXISTS.",
        |t| async move {
            let s = server(&t);
            let [own, other] = names(["own", "other"]);
            let exp = "create with ids \"\", \"bad id\", \"a:b\", \"caf\\u{e9}\", 65 bytes and info with \"bad id\": REQUEST_ERROR BAD_REQUEST (0x100); a 64-byte id of every allowed character class is created and its SEND acked in conversation g:<id>; create of it again (by anyone) is GROUP_EXISTS (0x10B)";
            let ((mut co, _), (mut cx, _)) = loginsv!(s, &own, &other);
            let mut ch = Checks::default();
            let base = fresh("g");
            let mut good = format!("{base}_AZaz09.@=");
            while good.len() < 64 {
                good.push('-');
            }
            let long = format!("{good}x");
            for bad in ["", "bad id", "a:b", "caf\u{e9}", long.as_str()] {
                let what = format!("create {:?}", short(bad, 20));
                let op = create("x", false, NOBODY);
                tryv!(ch.refused(&mut co, bad, op, &what, BAD_REQUEST).await, exp);
            }
            tryv!(
                ch.refused(&mut co, "bad id", info_op(), "info \"bad id\"", BAD_REQUEST)
                    .await,
                exp
            );
            let op = create("x", false, NOBODY);
            let r = tryv!(
                ch.replied(&mut co, &good, op, "create of the 64-byte id", 1)
                    .await,
                exp
            );
            if let Some(reply) = r {
                let g = reply.group.unwrap_or_default();
                ch.that(
                    g.group_id == good && g.owner == own,
                    format!("its info {}", describe_info(&g)),
                );
            }
            let ack = tryv!(send_ack(&mut co, &gconv(&good), "id-1", "hi").await, exp);
            ch.that(
                ack.conversation_id == gconv(&good) && ack.seq == 2,
                format!(
                    "SEND to g:<id> acked {} seq {}",
                    ack.conversation_id, ack.seq
                ),
            );
            for (who, conn, private) in [
                ("the owner", &mut co, true),
                ("another user", &mut cx, false),
            ] {
                let what = format!("create again by {who}");
                let op = create("y", private, NOBODY);
                tryv!(ch.refused(conn, &good, op, &what, GROUP_EXISTS).await, exp);
            }
            ch.done(exp, [co, cx]).await
        },
    )
}

/// [GROUP-1.3] at the default limit: it builds a 3000-member group, so it has a longer timeout.
pub(super) fn member_limit() -> Case {
    Case::new(
        "group/1.3/1",
        &["GROUP-1.3"],
        Level::Must,
        "A group has at most max_group_members members (default 3000). A request that would take it past the limit is GROUP_FULL and changes nothing. (The case assumes the defaults: 3000 members, 100 users per request.)",
        |t| async move {
            let s = server(&t);
            let [own, out] = names(["own", "out"]);
            let gid = fresh("g");
            let exp = "the group filled to exactly 3000 members in requests of 100 users (create seq 1, invites seq 2..=30, all accepted); then invite of one more and join by an outsider: GROUP_FULL (0x10C); member_count stays 3000 and last_seq 30";
            let ((mut co, _), (mut cx, _)) = loginsv!(s, &own, &out);
            let mut ch = Checks::default();
            let all = fresh_users(MAX_GROUP_MEMBERS, 0);
            // The owner and 99 others, then 29 invites of 100: 3000 members; one user left over.
            let (first, rest) = all.split_at(MAX_REQUEST_USERS - 1);
            let (fill, extra) = rest.split_at(MAX_GROUP_MEMBERS - MAX_REQUEST_USERS);
            let seq = tryv!(fill_group(&mut co, &gid, "Full", first, fill).await, exp);
            let g = tryv!(info(&mut cx, &gid).await, exp);
            ch.that(g.member_count == 3000, format!("member_count when full {}", g.member_count));
            tryv!(ch.refused(&mut co, &gid, Op::Invite(users(extra)), "invite of one more", GROUP_FULL).await, exp);
            let what = "join of the full public group by an outsider";
            tryv!(ch.refused(&mut cx, &gid, Op::Join(none()), what, GROUP_FULL).await, exp);
            let g = tryv!(info(&mut cx, &gid).await, exp);
            ch.that(
                g.member_count == 3000,
                format!("member_count after the refusals {} (want 3000)", g.member_count),
            );
            let last = tryv!(last_seq(&mut co, &gconv(&gid)).await, exp);
            ch.that(last == seq, format!("last_seq after the refusals {last} (want {seq})"));
            ch.done(exp, [co, cx]).await
        },
    )
    .timeout(Duration::from_secs(30))
}

/// [GROUP-1.3]: the length of a request's user list, judged first.
pub(super) fn request_users() -> Case {
    Case::new(
        "group/1.3/2",
        &["GROUP-1.3", "GROUP-2.1"],
        Level::Must,
        "One request names at most max_group_request_users users (default 100); a longer list is BAD_REQUEST, judged before anything else in the request, and has no effect. (The case assumes the default.)",
        |t| async move {
            let s = server(&t);
            let [own, out] = names(["own", "out"]);
            let [gid, g2, nosuch] = names(["g", "g", "g"]);
            let exp = "create naming 100 others: accepted, member_count 101; naming 101: BAD_REQUEST (0x100) and no group; kick and reject of 101 non-members by the owner, invite of 101 by an outsider, invite of 101 with a bad id among them, kick of 101 in an unknown group: BAD_REQUEST; member_count and last_seq unchanged";
            let ((mut co, _), (mut cx, _)) = loginsv!(s, &own, &out);
            let mut ch = Checks::default();
            let names = fresh_users(MAX_REQUEST_USERS + 1, 0);
            let hundred = &names[..MAX_REQUEST_USERS];
            let op = create("Hundred", false, hundred);
            let r = tryv!(
                ch.replied(&mut co, &gid, op, "create naming 100 others", 1)
                    .await,
                exp
            );
            if let Some(reply) = r {
                let n = reply.group.map_or(0, |g| g.member_count);
                ch.that(n == 101, format!("member_count {n} (want 101)"));
            }
            let op = create("Too many", false, &names);
            tryv!(
                ch.refused(&mut co, &g2, op, "create naming 101 others", BAD_REQUEST)
                    .await,
                exp
            );
            let what = "info after it (nothing created)";
            tryv!(
                ch.refused(&mut co, &g2, info_op(), what, UNKNOWN_GROUP)
                    .await,
                exp
            );
            let strangers = fresh_users(MAX_REQUEST_USERS + 1, 0);
            let mut with_bad = strangers.clone();
            with_bad[0] = "bad id".into();
            // Each would be answered otherwise were the length not judged first: skipped
            // (seq 0), NOT_PERMITTED, INVALID_USER_ID, UNKNOWN_GROUP.
            for (what, by_owner, id, op) in [
                (
                    "owner kicks 101 non-members",
                    true,
                    &gid,
                    Op::Kick(users(&strangers)),
                ),
                (
                    "owner rejects 101 users",
                    true,
                    &gid,
                    Op::Reject(users(&strangers)),
                ),
                (
                    "outsider invites 101 users",
                    false,
                    &gid,
                    Op::Invite(users(&strangers)),
                ),
                (
                    "owner invites 101 users, one \"bad id\"",
                    true,
                    &gid,
                    Op::Invite(users(&with_bad)),
                ),
                (
                    "owner kicks 101 users of an unknown group",
                    true,
                    &nosuch,
                    Op::Kick(users(&strangers)),
                ),
            ] {
                let conn = if by_owner { &mut co } else { &mut cx };
                tryv!(ch.refused(conn, id, op, what, BAD_REQUEST).await, exp);
            }
            let g = tryv!(info(&mut co, &gid).await, exp);
            ch.that(
                g.member_count == 101,
                format!(
                    "member_count after the refusals {} (want 101)",
                    g.member_count
                ),
            );
            let last = tryv!(last_seq(&mut co, &gconv(&gid)).await, exp);
            ch.that(
                last == 1,
                format!("last_seq after the refusals {last} (want 1)"),
            );
            ch.done(exp, [co, cx]).await
        },
    )
}

/// [GROUP-1.4]: what is left of a dismissed group.
pub(super) fn dismissed() -> Case {
    Case::new(
        "group/1.4/1",
        &["GROUP-1.4", "GROUP-2.3", "GROUP-3.2"],
        Level::Must,
        "A dismissed group keeps its id: it cannot be created again (GROUP_EXISTS), and every other request about it is UNKNOWN_GROUP (GROUP) or UNKNOWN_CONVERSATION (SEND, HISTORY, READ). DISMISSED goes to everyone who was a member or pending.",
        |t| async move {
            let s = server(&t);
            let [own, bob, p] = names(["own", "bob", "p"]);
            let (gid, c) = new_group();
            let exp = "private group: p's join pending (seq 2), a text (seq 3); bob dismisses: NOT_PERMITTED; owner dismisses: seq 4; member bob and pending p are pushed DISMISSED (p's stream: [2, 4]); then create (owner, bob): 0x10B; info, join, invite, dismiss: 0x10D; SEND, HISTORY, READ: 0x105";
            let ((mut co, _), (mut cb, _), (mut cp, wp)) = loginsv!(s, &own, &bob, &p);
            let mut ch = Checks::default();
            tryv!(
                group_ok(&mut co, &gid, create("Doomed", true, &[&bob]), 1).await,
                exp
            );
            tryv!(group_ok(&mut cp, &gid, Op::Join(none()), 2).await, exp);
            tryv!(send_ack(&mut co, &c, "d-1", "last words").await, exp);
            let dismiss = || Op::Dismiss(none());
            tryv!(
                ch.refused(
                    &mut cb,
                    &gid,
                    dismiss(),
                    "dismiss by a member",
                    NOT_PERMITTED
                )
                .await,
                exp
            );
            tryv!(
                ch.replied(&mut co, &gid, dismiss(), "dismiss by the owner", 4)
                    .await,
                exp
            );
            for (who, conn) in [("bob", &mut cb), ("pending p", &mut cp)] {
                ch.pushed_at(who, conn, &c, 4, |m| {
                    is_notice(m, Kind::Dismissed, &own, None)
                })
                .await;
            }
            let at_p = tryv!(stream(&mut cp, &wp, &c).await, exp);
            ch.that(
                seqs(&at_p) == [2, 4] && is_notice(&at_p[1], Kind::Dismissed, &own, None),
                format!("p's stream {}", show_all(&at_p)),
            );
            for (who, conn) in [("owner", &mut co), ("bob", &mut cb)] {
                let what = format!("create by {who}");
                let op = create("again", false, NOBODY);
                tryv!(ch.refused(conn, &gid, op, &what, GROUP_EXISTS).await, exp);
            }
            for (what, op) in about_the_group(&bob) {
                let what = format!("{what} by the owner");
                tryv!(
                    ch.refused(&mut co, &gid, op, &what, UNKNOWN_GROUP).await,
                    exp
                );
            }
            tryv!(
                ch.refused(&mut cb, &gid, info_op(), "info by bob", UNKNOWN_GROUP)
                    .await,
                exp
            );
            for (who, conn) in [("owner", &mut co), ("bob", &mut cb)] {
                let r = tryv!(send_text(conn, &c, "d-2", "anyone?").await, exp);
                ch.code(&format!("SEND by {who}"), &r, UNKNOWN_CONVERSATION);
                let r = tryv!(history(conn, &c, 1, false).await, exp);
                ch.code(&format!("HISTORY by {who}"), &r, UNKNOWN_CONVERSATION);
                let r = tryv!(read(conn, &c, 2).await, exp);
                ch.code(&format!("READ by {who}"), &r, UNKNOWN_CONVERSATION);
            }
            ch.done(exp, [co, cb, cp]).await
        },
    )
}
