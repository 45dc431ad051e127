//! A user's groups (E4; `spec/groups.md` §2.7).

use magpie_session::{Body, pb};
use pb::group::Op;

use super::helpers::*;
use crate::case::{Case, Level};
use crate::conn::Conn;
use crate::server::server;

fn mine_op(after: &str, limit: u32) -> Op {
    Op::Mine(pb::GroupMineQuery {
        after: after.into(),
        limit,
    })
}

/// A page of `mine`: (group id, role name, group name) each, and `next`.
async fn page(
    c: &mut Conn,
    after: &str,
    limit: u32,
) -> Result<(Vec<(String, &'static str, String)>, String), String> {
    match group(c, "", mine_op(after, limit)).await? {
        Body::GroupReply(r) => Ok((
            r.groups
                .iter()
                .map(|g| (g.group_id.clone(), role_name(g.role), g.name.clone()))
                .collect(),
            r.next,
        )),
        other => Err(format!("mine after {after:?}: {}", describe(&other))),
    }
}

/// [GROUP-2.7]: `mine` lists the live groups the requester is a member of.
pub(super) fn lists_my_groups() -> Case {
    Case::new(
        "group/2.7/1",
        &["GROUP-2.7", "GROUP-1.1"],
        Level::Must,
        "mine (with an empty group id) answers the requester's live groups, each with its summary and the requester's role, at most limit per page, with next to continue after (empty at the end); a group they were kicked from, a dismissed group and others' groups are not listed; mine with a group id, or an after that is no group id, is BAD_REQUEST.",
        |t| async move {
            let s = server(&t);
            let [own, usr, lone] = names(["own", "usr", "lone"]);
            let [ga, gb, gc, gd, ge, gf] = names(["ga", "gb", "gc", "gd", "ge", "gf"]);
            let exp = "usr is a member of A, an admin of B and owns C; kicked from D, E dismissed, not in F: mine lists exactly A (member), B (admin), C (owner) with their names and next empty; pages of 1 list the same three once each, the last with next empty; mine naming a group, or after \"bad id\": 0x100; lone's mine: no groups";
            let ((mut co, _), (mut cu, _), (mut cl, _)) = loginsv!(s, &own, &usr, &lone);
            let mut ch = Checks::default();
            for (g, name) in [(&ga, "A"), (&gb, "B"), (&gd, "D"), (&ge, "E")] {
                tryv!(
                    group_ok(&mut co, g, create(name, false, &[&usr]), 1).await,
                    exp
                );
            }
            tryv!(
                group_ok(&mut cu, &gc, create("C", false, NOBODY), 1).await,
                exp
            );
            tryv!(
                group_ok(&mut co, &gf, create("F", false, NOBODY), 1).await,
                exp
            );
            tryv!(
                group_ok(&mut co, &gd, Op::Kick(users(&[&usr])), 2).await,
                exp
            );
            tryv!(group_ok(&mut co, &ge, Op::Dismiss(none()), 2).await, exp);
            tryv!(
                group_ok(&mut co, &gb, set_role(&[&usr], pb::GroupRole::Admin), 2).await,
                exp
            );
            let mut want = vec![
                (ga.clone(), "MEMBER", "A".to_owned()),
                (gb.clone(), "ADMIN", "B".to_owned()),
                (gc.clone(), "OWNER", "C".to_owned()),
            ];
            want.sort();
            let (mut all, next) = tryv!(page(&mut cu, "", 0).await, exp);
            all.sort();
            ch.that(
                all == want && next.is_empty(),
                format!("usr's mine {all:?} next {next:?}"),
            );
            let mut paged = Vec::new();
            let mut after = String::new();
            let mut pages = 0;
            loop {
                let (got, next) = tryv!(page(&mut cu, &after, 1).await, exp);
                pages += 1;
                paged.extend(got);
                if next.is_empty() || pages > want.len() + 1 {
                    break;
                }
                after = next;
            }
            paged.sort();
            ch.that(
                paged == want && pages == want.len(),
                format!("{pages} pages of 1: {paged:?}"),
            );
            tryv!(
                ch.refused(
                    &mut cu,
                    &ga,
                    mine_op("", 0),
                    "mine naming a group",
                    BAD_REQUEST
                )
                .await,
                exp
            );
            tryv!(
                ch.refused(
                    &mut cu,
                    "",
                    mine_op("bad id", 0),
                    "mine after \"bad id\"",
                    BAD_REQUEST
                )
                .await,
                exp
            );
            let (got, next) = tryv!(page(&mut cl, "", 0).await, exp);
            ch.that(
                got.is_empty() && next.is_empty(),
                format!("lone's mine {got:?} next {next:?}"),
            );
            ch.done(exp, [co, cu, cl]).await
        },
    )
}
