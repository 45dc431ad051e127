//! Serving GROUP requests and the group side of SEND, HISTORY and READ (`spec/groups.md`).
//!
//! Who may do what is judged by the store inside the write transaction (`magpie_store`'s group
//! rules), so that concurrent changes are judged one after the other; this module checks what
//! can be checked from the request alone, renders notices and answers.

use std::sync::Arc;

use bytes::Bytes;
use magpie_auth::validate_user_id;
use magpie_session::{Body, RequestCode, pb, request_error};
use magpie_store::{
    GroupChange, GroupDenied, GroupNotice, GroupOp, GroupRecord, GroupRole, NoticeRenderer, Write,
    WriteResult,
};
use prost::Message as _;

use crate::Shared;
use crate::handlers::{Pending, SessionCtx, push_stored, ready};

/// The group id of a group conversation id (`g:` + id, [GROUP-1.1]), if it is one.
pub(crate) fn group_of(conversation: &str) -> Option<&str> {
    conversation
        .strip_prefix("g:")
        .filter(|id| validate_user_id(id).is_ok())
}

fn role_to_pb(role: GroupRole) -> pb::GroupRole {
    match role {
        GroupRole::Member => pb::GroupRole::Member,
        GroupRole::Admin => pb::GroupRole::Admin,
        GroupRole::Owner => pb::GroupRole::Owner,
    }
}

/// [GROUP-3.1]: a notice as the `Content` of its message.
fn render_notice(n: &GroupNotice) -> Bytes {
    let notice = pb::GroupNotice {
        kind: n.kind as i32,
        actor: n.actor.clone(),
        users: n.users.clone(),
        role: n.role.map_or(0, |r| role_to_pb(r) as i32),
        name: n.name.clone(),
    };
    pb::Content {
        kind: Some(pb::content::Kind::GroupNotice(notice)),
    }
    .encode_to_vec()
    .into()
}

/// [GROUP-2.5]: what `viewer` may see of the group.
fn info(group_id: &str, g: &GroupRecord, viewer: &str) -> pb::GroupInfo {
    let role = g.member(viewer).map(|m| m.role);
    pb::GroupInfo {
        group_id: group_id.to_owned(),
        name: g.name.clone(),
        private: g.private,
        owner: g.owner().to_owned(),
        member_count: u32::try_from(g.members.len()).unwrap_or(u32::MAX),
        members: if role.is_some() {
            g.members
                .iter()
                .map(|m| pb::GroupMember {
                    user_id: m.user.clone(),
                    role: role_to_pb(m.role) as i32,
                    joined_seq: m.joined_seq,
                })
                .collect()
        } else {
            Vec::new()
        },
        pending: if matches!(role, Some(GroupRole::Admin | GroupRole::Owner)) {
            g.pending.clone()
        } else {
            Vec::new()
        },
        dismissed: g.dismissed,
    }
}

fn err(code: RequestCode, message: impl Into<String>) -> Body {
    request_error(code, message)
}

/// The store operation a GROUP asks for; `Ok(None)` for `info`, a read.
fn to_op(shared: &Shared, op: pb::group::Op) -> Result<Option<GroupOp>, (RequestCode, String)> {
    use pb::group::Op;
    let op = match op {
        Op::Create(c) => {
            let max = shared.settings.max_group_name;
            if c.name.len() > max {
                return Err((
                    RequestCode::BAD_REQUEST,
                    format!(
                        "the group name is {} bytes, the limit is {max}",
                        c.name.len()
                    ),
                ));
            }
            GroupOp::Create {
                name: c.name,
                private: c.private,
                members: c.members,
            }
        }
        Op::Join(_) => GroupOp::Join,
        Op::Invite(u) => GroupOp::Invite(u.users),
        Op::Approve(u) => GroupOp::Approve(u.users),
        Op::Reject(u) => GroupOp::Reject(u.users),
        Op::Kick(u) => GroupOp::Kick(u.users),
        Op::Leave(_) => GroupOp::Leave,
        Op::Transfer(t) => GroupOp::Transfer(t.to),
        Op::SetRole(r) => {
            let role = match pb::GroupRole::try_from(r.role) {
                Ok(pb::GroupRole::Admin) => GroupRole::Admin,
                Ok(pb::GroupRole::Member) => GroupRole::Member,
                _ => {
                    return Err((
                        RequestCode::BAD_REQUEST,
                        "set_role takes GROUP_ROLE_ADMIN or GROUP_ROLE_MEMBER".into(),
                    ));
                }
            };
            GroupOp::SetRole(r.users, role)
        }
        Op::Dismiss(_) => GroupOp::Dismiss,
        Op::Info(_) => return Ok(None),
    };
    for u in op.users() {
        if let Err(e) = validate_user_id(u) {
            return Err((RequestCode::INVALID_USER_ID, format!("{u:?}: {e}")));
        }
    }
    // A list longer than the limit could never fit ([GROUP-1.3]); refused before any work.
    let max = shared.settings.max_group_members;
    if op.users().len() > max {
        return Err((
            RequestCode::GROUP_FULL,
            format!(
                "{} users named, a group holds at most {max}",
                op.users().len()
            ),
        ));
    }
    Ok(Some(op))
}

/// Starts serving a GROUP request ([GROUP-2.1]).
pub(crate) fn start_group(shared: &Arc<Shared>, ctx: &Arc<SessionCtx>, g: pb::Group) -> Pending {
    let me = &ctx.id;
    if let Err(e) = validate_user_id(&g.group_id) {
        return ready(err(
            RequestCode::BAD_REQUEST,
            format!("group id {:?}: {e}", g.group_id),
        ));
    }
    let Some(op) = g.op else {
        return ready(err(RequestCode::BAD_REQUEST, "GROUP without an operation"));
    };
    let op = match to_op(shared, op) {
        Ok(Some(op)) => op,
        Ok(None) => return ready(handle_info(shared, ctx, &g.group_id)),
        Err((code, message)) => return ready(err(code, message)),
    };
    let write = Write::Group {
        app: me.app.clone(),
        group: g.group_id.clone(),
        actor: me.user.clone(),
        device: me.device.clone(),
        op,
        max_members: shared.settings.max_group_members,
        render: NoticeRenderer(render_notice),
    };
    let committed = match shared.committer.enqueue(write) {
        Ok(f) => f,
        Err(e) => return ready(err(RequestCode::INTERNAL, format!("not committed: {e}"))),
    };
    let shared = shared.clone();
    let ctx = ctx.clone();
    Box::pin(async move {
        let me = &ctx.id;
        match committed.await {
            Ok(WriteResult::GroupChanged(change)) => {
                let GroupChange {
                    record,
                    notice,
                    offsets,
                    pending,
                } = *change;
                let seq = notice.as_ref().map_or(0, |n| n.seq);
                if let Some(notice) = &notice {
                    // [GROUP-3.2]: pushed like any event.
                    push_stored(&shared, &me.app, notice, &offsets);
                }
                Body::GroupReply(pb::GroupReply {
                    group: Some(info(&g.group_id, &record, &me.user)),
                    seq,
                    pending,
                })
            }
            Ok(WriteResult::GroupDenied(denied)) => denied_body(&g.group_id, denied),
            Ok(other) => err(RequestCode::INTERNAL, format!("store answered {other:?}")),
            Err(e) => err(RequestCode::INTERNAL, format!("not committed: {e}")),
        }
    })
}

fn denied_body(group: &str, denied: GroupDenied) -> Body {
    match denied {
        GroupDenied::NotPermitted(why) => err(RequestCode::NOT_PERMITTED, why),
        GroupDenied::Exists => err(
            RequestCode::GROUP_EXISTS,
            format!("group {group:?} exists (or existed)"),
        ),
        GroupDenied::Full { limit } => err(
            RequestCode::GROUP_FULL,
            format!("a group holds at most {limit} members (and {limit} waiting)"),
        ),
        GroupDenied::Unknown => err(
            RequestCode::UNKNOWN_GROUP,
            format!("no group {group:?} (or it was dismissed)"),
        ),
    }
}

fn handle_info(shared: &Shared, ctx: &SessionCtx, group: &str) -> Body {
    match shared.store.group(&ctx.id.app, group) {
        Ok(Some(g)) if !g.dismissed => Body::GroupReply(pb::GroupReply {
            group: Some(info(group, &g, &ctx.id.user)),
            seq: 0,
            pending: g.pending.contains(&ctx.id.user),
        }),
        Ok(_) => denied_body(group, GroupDenied::Unknown),
        Err(e) => err(RequestCode::INTERNAL, format!("store: {e}")),
    }
}

/// Where `user`'s view of a group conversation starts ([GROUP-4.4]): `Ok(Some(joined_seq))` for
/// a member of a live group, `Ok(None)` for anyone else.
pub(crate) fn member_horizon(
    shared: &Shared,
    app: &str,
    conversation: &str,
    user: &str,
) -> Result<Option<u64>, String> {
    let Some(group) = group_of(conversation) else {
        return Ok(None);
    };
    match shared.store.group(app, group) {
        Ok(Some(g)) if !g.dismissed => Ok(g.member(user).map(|m| m.joined_seq)),
        Ok(_) => Ok(None),
        Err(e) => Err(format!("store: {e}")),
    }
}

/// [GROUP-4.2]: the online members a live message to the group reaches (all but the sender), or
/// `None` if the sender may not send to it.
pub(crate) fn live_audience(
    shared: &Shared,
    app: &str,
    group: &str,
    sender: &str,
) -> Result<Option<Vec<String>>, String> {
    match shared.store.group(app, group) {
        Ok(Some(g)) if !g.dismissed && g.member(sender).is_some() => Ok(Some(
            g.members
                .into_iter()
                .map(|m| m.user)
                .filter(|u| u != sender)
                .collect(),
        )),
        Ok(_) => Ok(None),
        Err(e) => Err(format!("store: {e}")),
    }
}
