//! Serving GROUP requests and the group side of SEND, HISTORY and READ (`spec/groups.md`).
//!
//! Who may do what is judged by the store inside the write transaction (`magpie_store`'s group
//! rules), so that concurrent changes are judged one after the other; this module checks what
//! can be checked from the request alone, renders notices and answers.

use std::sync::Arc;

use bytes::Bytes;
use magpie_auth::validate_user_id;
use magpie_session::{Body, RequestCode, pb};
use magpie_store::{
    GroupChange, GroupDenied, GroupNotice, GroupOp, GroupRecord, GroupRole, InfoChange,
    NoticeRenderer, Silence, Write, WriteResult,
};
use prost::Message as _;

use crate::Shared;
use crate::handlers::{
    Pending, SessionCtx, after_settled, charge_send_rate, check_users, commit_then, err,
    not_your_group_message, push_stored, ready, to_proto,
};

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
        muted_until_ms: n.muted_until_ms,
        fields: n.fields.iter().map(|f| (*f).to_owned()).collect(),
    };
    pb::Content {
        kind: Some(pb::content::Kind::GroupNotice(notice)),
    }
    .encode_to_vec()
    .into()
}

/// [GROUP-2.2]: the group without its lists, as the answer to a change.
fn summary(group_id: &str, g: &GroupRecord) -> pb::GroupInfo {
    pb::GroupInfo {
        group_id: group_id.to_owned(),
        name: g.name.clone(),
        private: g.private,
        owner: g.owner().to_owned(),
        member_count: u32::try_from(g.members.len()).unwrap_or(u32::MAX),
        dismissed: g.dismissed,
        muted_all: g.muted_all,
        avatar_url: g.avatar_url.clone(),
        ..Default::default()
    }
}

/// [GROUP-2.5]: what `viewer` may see of the group at `now_ms`, the lists paged to fit `budget`
/// bytes.
fn page(
    group_id: &str,
    g: &GroupRecord,
    viewer: &str,
    from: u32,
    budget: usize,
    now_ms: u64,
) -> pb::GroupInfo {
    let mut info = summary(group_id, g);
    let Some(role) = g.member(viewer).map(|m| m.role) else {
        return info;
    };
    // The profile fits any frame by the settings' bound (`Settings::MAX_GROUP_PROFILE`), so
    // every page carries it.
    info.announcement.clone_from(&g.announcement);
    info.attributes.clone_from(&g.attributes);
    let mut used = info.encoded_len();
    let from = from as usize;
    for (i, m) in g.members.iter().enumerate().skip(from) {
        let member = pb::GroupMember {
            user_id: m.user.clone(),
            role: role_to_pb(m.role) as i32,
            joined_seq: m.joined_seq,
            // An ended mute shows as none ([GROUP-2.5]).
            muted_until_ms: if m.is_muted(now_ms) {
                m.muted_until_ms
            } else {
                0
            },
            speaking_allowed: m.speaking_allowed,
            // [GROUP-1.7]: the viewer's own setting only.
            do_not_disturb: m.do_not_disturb && m.user == viewer,
        };
        // The tag and length prefix of a repeated message field take at most 4 bytes here.
        used += member.encoded_len() + 4;
        if used > budget && !info.members.is_empty() {
            info.members_next = u32::try_from(i).unwrap_or(u32::MAX);
            return info;
        }
        info.members.push(member);
    }
    if matches!(role, GroupRole::Admin | GroupRole::Owner) {
        for p in &g.pending {
            used += p.len() + 4;
            if used > budget {
                break;
            }
            info.pending.push(p.clone());
        }
    }
    info
}

/// What a GROUP asks for: a change, which the store judges and commits, or a read.
enum Request {
    Change(GroupOp),
    Info { members_from: u32 },
}

/// The request a GROUP operation makes, checked as far as the request alone allows.
fn to_request(shared: &Shared, op: pb::group::Op) -> Result<Request, (RequestCode, String)> {
    use pb::group::Op;
    let op = match op {
        Op::Create(c) => {
            // Past the store's id limit a name could not be stored, whatever the setting says.
            let max = shared.settings.max_group_name.min(magpie_store::MAX_ID_LEN);
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
        Op::Mute(m) => {
            // [GROUP-2.6]
            let max = shared.settings.max_group_mute_secs;
            if m.duration_secs > max {
                return Err((
                    RequestCode::BAD_REQUEST,
                    format!("a mute of {} s, the limit is {max} s", m.duration_secs),
                ));
            }
            GroupOp::Mute(m.users, u64::from(m.duration_secs) * 1000)
        }
        Op::MuteAll(m) => GroupOp::MuteAll(m.on),
        Op::AllowSpeaking(a) => GroupOp::AllowSpeaking(a.users, a.allowed),
        Op::SetInfo(i) => GroupOp::SetInfo(info_change(&shared.settings, *i)?),
        Op::DoNotDisturb(d) => GroupOp::DoNotDisturb(d.on),
        Op::Info(q) => {
            return Ok(Request::Info {
                members_from: q.members_from,
            });
        }
        Op::Mine(_) => {
            return Err((
                RequestCode::BAD_REQUEST,
                "mine is answered before it gets here".into(),
            ));
        }
    };
    // [GROUP-1.3]: judged first, so a long list costs nothing more.
    let max = shared.settings.max_group_request_users;
    if op.users().len() > max {
        return Err((
            RequestCode::BAD_REQUEST,
            format!(
                "{} users named, one request names at most {max}",
                op.users().len()
            ),
        ));
    }
    check_users(op.users()).map_err(|e| (RequestCode::INVALID_USER_ID, e))?;
    Ok(Request::Change(op))
}

/// A `set_info` whose every value is within its limit ([GROUP-1.2], [GROUP-1.6]); the count
/// of attributes is judged by the store on the result.
fn info_change(
    settings: &crate::Settings,
    i: pb::GroupSetInfo,
) -> Result<InfoChange, (RequestCode, String)> {
    let too_long = |what: &str, len: usize, max: usize| {
        (
            RequestCode::BAD_REQUEST,
            format!("the {what} is {len} bytes, the limit is {max}"),
        )
    };
    let text = |what: &str, t: &Option<String>, max: usize| match t {
        Some(t) if t.len() > max => Err(too_long(what, t.len(), max)),
        _ => Ok(()),
    };
    text(
        "group name",
        &i.name,
        settings.max_group_name.min(magpie_store::MAX_ID_LEN),
    )?;
    // Within the store's fields: `Settings::check` bounds the profile to 12 KiB.
    text("avatar URL", &i.avatar_url, settings.max_group_avatar_url)?;
    text(
        "announcement",
        &i.announcement,
        settings.max_group_announcement,
    )?;
    let max_attributes = settings.max_group_attributes;
    let max_bytes = settings.max_group_attribute_bytes;
    for (k, v) in &i.set_attributes {
        check_key(k)?;
        if k.len() + v.len() > max_bytes {
            return Err(too_long(
                &format!("attribute {k:?} (key and value)"),
                k.len() + v.len(),
                max_bytes,
            ));
        }
    }
    for k in &i.remove_attributes {
        check_key(k)?;
    }
    Ok(InfoChange {
        name: i.name,
        avatar_url: i.avatar_url,
        announcement: i.announcement,
        set_attributes: i.set_attributes,
        remove_attributes: i.remove_attributes,
        max_attributes,
    })
}

/// [GROUP-1.6]: an attribute key is 1 to 64 bytes.
fn check_key(k: &str) -> Result<(), (RequestCode, String)> {
    if k.is_empty() || k.len() > 64 {
        return Err((
            RequestCode::BAD_REQUEST,
            format!("attribute key {k:?} is {} bytes, keys are 1 to 64", k.len()),
        ));
    }
    Ok(())
}

/// Starts serving a GROUP request ([GROUP-2.1]).
pub(crate) fn start_group(shared: &Arc<Shared>, ctx: &Arc<SessionCtx>, g: pb::Group) -> Pending {
    let me = &ctx.id;
    if let Some(pb::group::Op::Mine(q)) = &g.op {
        // [GROUP-1.1], [GROUP-2.7]: `mine` is about no one group.
        if !g.group_id.is_empty() {
            return ready(err(
                RequestCode::BAD_REQUEST,
                "mine lists your groups: its group id is empty",
            ));
        }
        return after_settled(shared, handle_mine(shared, ctx, q));
    }
    if let Err(e) = validate_user_id(&g.group_id) {
        return ready(err(
            RequestCode::BAD_REQUEST,
            format!("group id {:?}: {e}", g.group_id),
        ));
    }
    let Some(op) = g.op else {
        return ready(err(RequestCode::BAD_REQUEST, "GROUP without an operation"));
    };
    let op = match to_request(shared, op) {
        Ok(Request::Change(op)) => op,
        Ok(Request::Info { members_from }) => {
            return after_settled(shared, handle_info(shared, ctx, &g.group_id, members_from));
        }
        Err((code, message)) => return ready(err(code, message)),
    };
    // [SESSION-6.4]: a change may store a notice for every member, like a SEND.
    if let Some(refusal) = charge_send_rate(shared, me) {
        return ready(refusal);
    }
    let write = Write::Group {
        app: me.app.clone(),
        group: g.group_id.clone(),
        actor: me.user.clone(),
        device: me.device.clone(),
        op,
        max_members: shared.settings.max_group_members,
        render: NoticeRenderer(render_notice),
    };
    let pusher = shared.clone();
    let ctx = ctx.clone();
    commit_then(shared, write, move |result| match result {
        WriteResult::GroupChanged(change) => {
            let GroupChange {
                record,
                notice,
                offsets,
                pending,
            } = *change;
            let seq = notice.as_ref().map_or(0, |n| n.seq);
            if let Some(notice) = &notice {
                // [GROUP-3.2]: pushed like any event.
                let message = to_proto(notice, &notice.sender);
                // [GROUP-1.7]: silent for the members who asked (not for those it tells who
                // are no longer members).
                let silent: Vec<String> = record
                    .members
                    .iter()
                    .filter(|m| m.do_not_disturb)
                    .map(|m| m.user.clone())
                    .collect();
                push_stored(&pusher, &ctx.id.app, message, &offsets, &silent);
            }
            Body::GroupReply(pb::GroupReply {
                group: Some(Box::new(summary(&g.group_id, &record))),
                seq,
                pending,
                ..Default::default()
            })
        }
        WriteResult::GroupDenied(denied) => denied_body(&g.group_id, denied),
        other => err(RequestCode::INTERNAL, format!("store answered {other:?}")),
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
        GroupDenied::TooManyAttributes { limit } => err(
            RequestCode::BAD_REQUEST,
            format!("a group holds at most {limit} attributes"),
        ),
    }
}

fn handle_info(shared: &Shared, ctx: &SessionCtx, group: &str, from: u32) -> Body {
    match live_group(shared, &ctx.id.app, group) {
        Ok(Some(g)) => {
            // Like a SYNC page: inside the client's frame limit, with room for the envelope.
            let budget = ctx.client_frame.saturating_sub(1024);
            Body::GroupReply(pb::GroupReply {
                group: Some(Box::new(page(
                    group,
                    &g,
                    &ctx.id.user,
                    from,
                    budget,
                    crate::unix_now_ms(),
                ))),
                seq: 0,
                pending: g.is_pending(&ctx.id.user),
                ..Default::default()
            })
        }
        Ok(None) => denied_body(group, GroupDenied::Unknown),
        Err(e) => err(RequestCode::INTERNAL, e),
    }
}

/// [GROUP-2.7]: a page of the requester's groups, as many as `limit` allows and the client's
/// frame holds.
fn handle_mine(shared: &Shared, ctx: &SessionCtx, q: &pb::GroupMineQuery) -> Body {
    const MOST: usize = 100;
    let me = &ctx.id;
    let limit = match q.limit as usize {
        0 => MOST,
        n => n.min(MOST),
    };
    if !q.after.is_empty()
        && let Err(e) = validate_user_id(&q.after)
    {
        return err(RequestCode::BAD_REQUEST, format!("after: {e}"));
    }
    // One more than the page, to tell whether the list goes on.
    let listed = match shared
        .store
        .user_groups(&me.app, &me.user, &q.after, limit + 1)
    {
        Ok(l) => l,
        Err(e) => return err(RequestCode::INTERNAL, format!("store: {e}")),
    };
    let budget = ctx.client_frame.saturating_sub(1024);
    let mut reply = pb::GroupReply::default();
    let mut used = 0;
    for (i, (id, _)) in listed.iter().enumerate() {
        if i == limit {
            reply.next = listed[i - 1].0.clone();
            break;
        }
        // The record decides, not the index: the two are written together, but an index
        // rebuilt after a rollback to an older build could still hold a stale entry.
        let (record, me_in_it) = match live_group(shared, &me.app, id) {
            Ok(Some(g)) => match g.member(&me.user).cloned() {
                Some(m) => (g, m),
                None => continue,
            },
            Ok(None) => continue,
            Err(e) => return err(RequestCode::INTERNAL, e),
        };
        let info = pb::GroupInfo {
            role: role_to_pb(me_in_it.role) as i32,
            do_not_disturb: me_in_it.do_not_disturb,
            ..summary(id, &record)
        };
        // The tag and length prefix of a repeated message field take at most 4 bytes here.
        used += info.encoded_len() + 4;
        if used > budget && !reply.groups.is_empty() {
            reply.next = listed[i - 1].0.clone();
            break;
        }
        reply.groups.push(info);
    }
    Body::GroupReply(reply)
}

/// The group if it exists and was not dismissed.
fn live_group(shared: &Shared, app: &str, group: &str) -> Result<Option<GroupRecord>, String> {
    match shared.store.group(app, group) {
        Ok(g) => Ok(g.filter(|g| !g.dismissed)),
        Err(e) => Err(format!("store: {e}")),
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
    Ok(live_group(shared, app, group)?.and_then(|g| g.member(user).map(|m| m.joined_seq)))
}

/// [GROUP-4.2]: the members a live message to the group reaches (all but the sender; with
/// `to_members`, those of them only, [GROUP-4.6]), each with whether their push is silent
/// ([GROUP-1.7]), or why the sender may not send it: not a member of a live group
/// ([GROUP-4.1]), may not speak now ([GROUP-4.5]), or names a non-member.
pub(crate) fn live_audience(
    shared: &Shared,
    app: &str,
    group: &str,
    sender: &str,
    to_members: &[String],
) -> Result<Vec<(String, bool)>, (RequestCode, String)> {
    let g = live_group(shared, app, group).map_err(|e| (RequestCode::INTERNAL, e))?;
    let Some((g, member)) = g.and_then(|g| g.member(sender).cloned().map(|m| (g, m))) else {
        return Err((
            RequestCode::UNKNOWN_CONVERSATION,
            not_your_group_message(&format!("g:{group}")),
        ));
    };
    if let Some(silence) = g.silence(&member, crate::unix_now_ms()) {
        return Err(muted(silence));
    }
    if let Some(u) = to_members.iter().find(|u| g.member(u).is_none()) {
        return Err(audience_not_member(u, &format!("g:{group}")));
    }
    Ok(g.members
        .into_iter()
        .filter(|m| m.user != sender && (to_members.is_empty() || to_members.contains(&m.user)))
        .map(|m| (m.user, m.do_not_disturb))
        .collect())
}

/// [GROUP-4.6]: the refusal of a directed message naming a non-member.
pub(crate) fn audience_not_member(user: &str, conversation: &str) -> (RequestCode, String) {
    (
        RequestCode::NOT_PERMITTED,
        format!("{user} is not a member of {conversation}"),
    )
}

/// [GROUP-4.5]: the refusal of a member who may not speak.
pub(crate) fn muted(silence: Silence) -> (RequestCode, String) {
    let why = match silence {
        Silence::Muted { until_ms } => {
            format!("you are muted in this group until {until_ms} (ms since the Unix epoch)")
        }
        Silence::GroupMuted => {
            "the group is muted: only the owner, the admins and the speaking list send".into()
        }
    };
    (RequestCode::MUTED, why)
}

#[cfg(test)]
mod tests {
    use magpie_store::GroupMember;

    use super::*;

    #[test]
    fn info_pages_the_members_to_fit_the_frame() {
        let g = GroupRecord {
            members: (0..1000)
                .map(|i| GroupMember {
                    joined_seq: i,
                    ..GroupMember::new(
                        format!("user-{i:0>40}"),
                        if i == 0 {
                            GroupRole::Owner
                        } else {
                            GroupRole::Member
                        },
                    )
                })
                .collect(),
            pending: vec!["waiting".into()],
            ..GroupRecord::default()
        };
        let owner = g.members[0].user.clone();
        let budget = 16 * 1024 - 1024;
        let mut seen = Vec::new();
        let mut from = 0;
        loop {
            let p = page("g", &g, &owner, from, budget, 0);
            assert!(
                p.encoded_len() <= budget,
                "a page of {} bytes",
                p.encoded_len()
            );
            assert!(!p.members.is_empty());
            seen.extend(p.members.iter().map(|m| m.user_id.clone()));
            if p.members_next == 0 {
                // The owner sees the pending list on the page that ends the members.
                assert_eq!(p.pending, ["waiting"]);
                break;
            }
            assert!(p.pending.is_empty());
            from = p.members_next;
        }
        let all: Vec<String> = g.members.iter().map(|m| m.user.clone()).collect();
        assert_eq!(seen, all);
        // Not a member: the summary only.
        let outsider = page("g", &g, "someone", 0, budget, 0);
        assert!(outsider.members.is_empty() && outsider.pending.is_empty());
        assert_eq!(outsider.member_count, 1000);
    }
}
