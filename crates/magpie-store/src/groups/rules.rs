//! Who may do what to a group ([GROUP-2.3], [GROUP-2.4]), as a pure function of the group as the
//! write transaction sees it.

use super::{
    GroupDenied, GroupMember, GroupNotice, GroupOp, GroupRecord, GroupRole, InfoChange, NoticeKind,
};

/// What an allowed operation does.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The group after it (the new members' `joined_seq` still 0).
    pub(crate) record: GroupRecord,
    /// The notice to write, `None` when every named user was skipped ([GROUP-2.4]).
    pub(crate) notice: Option<GroupNotice>,
    /// The users who became members, whose `joined_seq` is the notice's seq.
    pub(crate) joined: Vec<String>,
    /// Users who get the notice without being members after it ([GROUP-3.2]).
    pub(crate) also_told: Vec<String>,
    /// A join request was recorded rather than granted.
    pub(crate) pending: bool,
}

fn denied(why: impl Into<String>) -> GroupDenied {
    GroupDenied::NotPermitted(why.into())
}

/// Judges `op` by `actor` against the group as it is (`None`: no such group) at `now_ms` (ms
/// since the Unix epoch, the commit's time); the rules of [GROUP-2.3], [GROUP-2.4] and
/// [GROUP-2.6].
pub(crate) fn plan(
    group: Option<&GroupRecord>,
    actor: &str,
    op: &GroupOp,
    max_members: usize,
    now_ms: u64,
) -> Result<Plan, GroupDenied> {
    let mut users: Vec<String> = Vec::new();
    for u in op.users() {
        if !users.contains(u) {
            users.push(u.clone());
        }
    }
    let notice = |kind, users: Vec<String>| GroupNotice {
        kind,
        actor: actor.to_owned(),
        users,
        role: None,
        name: String::new(),
        muted_until_ms: 0,
        fields: Vec::new(),
    };
    let full = GroupDenied::Full { limit: max_members };

    if let GroupOp::Create { name, private, .. } = op {
        if group.is_some() {
            return Err(GroupDenied::Exists);
        }
        let mut record = GroupRecord {
            name: name.clone(),
            private: *private,
            ..GroupRecord::default()
        };
        record
            .members
            .push(GroupMember::new(actor, GroupRole::Owner));
        let others: Vec<String> = users.into_iter().filter(|u| u != actor).collect();
        if others.len() + 1 > max_members {
            return Err(full);
        }
        record.members.extend(
            others
                .iter()
                .map(|u| GroupMember::new(u.as_str(), GroupRole::Member)),
        );
        let mut joined = vec![actor.to_owned()];
        joined.extend(others.iter().cloned());
        return Ok(Plan {
            record,
            notice: Some(GroupNotice {
                name: name.clone(),
                ..notice(NoticeKind::Created, others)
            }),
            joined,
            also_told: Vec::new(),
            pending: false,
        });
    }

    let group = match group {
        Some(g) if !g.dismissed => g,
        _ => return Err(GroupDenied::Unknown),
    };
    let mut record = group.clone();
    let role = group.role_of(actor);
    let is_admin = matches!(role, Some(GroupRole::Admin | GroupRole::Owner));
    let unchanged = |record: GroupRecord| Plan {
        record,
        notice: None,
        joined: Vec::new(),
        also_told: Vec::new(),
        pending: false,
    };
    // A change whose notice goes to the members after it, and nobody joined or asked.
    let changed = |record: GroupRecord, notice: GroupNotice| Plan {
        record,
        notice: Some(notice),
        joined: Vec::new(),
        also_told: Vec::new(),
        pending: false,
    };
    let add_members = |record: &mut GroupRecord, new: &[String]| -> Result<(), GroupDenied> {
        if record.members.len() + new.len() > max_members {
            return Err(GroupDenied::Full { limit: max_members });
        }
        record.pending.retain(|p| !new.contains(p));
        record.members.extend(
            new.iter()
                .map(|u| GroupMember::new(u.as_str(), GroupRole::Member)),
        );
        Ok(())
    };

    // Invite and approve: the users not yet members join, with a notice of `kind`; a request
    // naming only members changes nothing ([GROUP-2.4]).
    let admit = |mut record: GroupRecord, mut users: Vec<String>, kind| {
        users.retain(|u| group.member(u).is_none());
        if users.is_empty() {
            return Ok(unchanged(record));
        }
        add_members(&mut record, &users)?;
        Ok(Plan {
            record,
            notice: Some(notice(kind, users.clone())),
            joined: users,
            also_told: Vec::new(),
            pending: false,
        })
    };

    match op {
        GroupOp::Create { .. } => unreachable!("handled above"),
        GroupOp::Join => {
            if role.is_some() || group.is_pending(actor) {
                return Ok(Plan {
                    pending: role.is_none(),
                    ..unchanged(record)
                });
            }
            if group.private {
                if record.pending.len() >= max_members {
                    return Err(full);
                }
                record.pending.push(actor.to_owned());
                return Ok(Plan {
                    record,
                    notice: Some(notice(NoticeKind::JoinRequested, Vec::new())),
                    joined: Vec::new(),
                    also_told: vec![actor.to_owned()],
                    pending: true,
                });
            }
            let me = [actor.to_owned()];
            add_members(&mut record, &me)?;
            Ok(Plan {
                record,
                notice: Some(notice(NoticeKind::Joined, me.to_vec())),
                joined: me.to_vec(),
                also_told: Vec::new(),
                pending: false,
            })
        }
        GroupOp::Invite(_) => {
            if !(is_admin || (role.is_some() && !group.private)) {
                return Err(denied(if role.is_none() {
                    "only members invite"
                } else {
                    "only the owner and admins invite to a private group"
                }));
            }
            admit(record, users, NoticeKind::Invited)
        }
        GroupOp::Approve(_) => {
            if !is_admin {
                return Err(denied("only the owner and admins approve"));
            }
            if let Some(u) = users
                .iter()
                .find(|u| group.member(u).is_none() && !group.is_pending(u))
            {
                return Err(denied(format!("{u} has not asked to join")));
            }
            admit(record, users, NoticeKind::Joined)
        }
        GroupOp::Reject(_) => {
            if !is_admin {
                return Err(denied("only the owner and admins reject"));
            }
            users.retain(|u| group.is_pending(u));
            if users.is_empty() {
                return Ok(unchanged(record));
            }
            record.pending.retain(|p| !users.contains(p));
            Ok(Plan {
                record,
                notice: Some(notice(NoticeKind::JoinRejected, users.clone())),
                joined: Vec::new(),
                also_told: users,
                pending: false,
            })
        }
        GroupOp::Kick(_) => {
            if !is_admin {
                return Err(denied("only the owner and admins kick"));
            }
            users.retain(|u| group.member(u).is_some());
            for u in &users {
                let target = group.role_of(u);
                if target == Some(GroupRole::Owner) {
                    return Err(denied("nobody kicks the owner"));
                }
                if role == Some(GroupRole::Admin) && target == Some(GroupRole::Admin) {
                    return Err(denied("admins kick members only"));
                }
            }
            if users.is_empty() {
                return Ok(unchanged(record));
            }
            record.members.retain(|m| !users.contains(&m.user));
            Ok(Plan {
                record,
                notice: Some(notice(NoticeKind::Kicked, users.clone())),
                joined: Vec::new(),
                also_told: users,
                pending: false,
            })
        }
        GroupOp::Leave => match role {
            None => Err(denied("not a member")),
            Some(GroupRole::Owner) => Err(denied(
                "the owner cannot leave: transfer the group or dismiss it",
            )),
            Some(_) => {
                record.members.retain(|m| m.user != actor);
                Ok(Plan {
                    record,
                    notice: Some(notice(NoticeKind::Left, Vec::new())),
                    joined: Vec::new(),
                    also_told: vec![actor.to_owned()],
                    pending: false,
                })
            }
        },
        GroupOp::Transfer(to) => {
            if role != Some(GroupRole::Owner) {
                return Err(denied("only the owner transfers the group"));
            }
            if to == actor {
                return Ok(unchanged(record));
            }
            if group.member(to).is_none() {
                return Err(denied(format!("{to} is not a member")));
            }
            for m in &mut record.members {
                if m.user == *actor {
                    m.role = GroupRole::Member;
                } else if m.user == *to {
                    m.role = GroupRole::Owner;
                    // [GROUP-1.5]: the owner is never muted, and nobody could lift it.
                    m.muted_until_ms = 0;
                }
            }
            Ok(changed(
                record,
                notice(NoticeKind::OwnerChanged, vec![to.clone()]),
            ))
        }
        GroupOp::SetRole(_, new_role) => {
            if role != Some(GroupRole::Owner) {
                return Err(denied("only the owner sets roles"));
            }
            if *new_role == GroupRole::Owner {
                return Err(denied("the owner is changed by transfer"));
            }
            for u in &users {
                match group.role_of(u) {
                    None => return Err(denied(format!("{u} is not a member"))),
                    Some(GroupRole::Owner) => return Err(denied("the owner's role is owner")),
                    Some(_) => {}
                }
            }
            users.retain(|u| group.role_of(u) != Some(*new_role));
            if users.is_empty() {
                return Ok(unchanged(record));
            }
            for m in &mut record.members {
                if users.contains(&m.user) {
                    m.role = *new_role;
                }
            }
            Ok(changed(
                record,
                GroupNotice {
                    role: Some(*new_role),
                    ..notice(NoticeKind::RoleChanged, users)
                },
            ))
        }
        GroupOp::Dismiss => {
            if role != Some(GroupRole::Owner) {
                return Err(denied("only the owner dismisses the group"));
            }
            record.dismissed = true;
            // Everyone who was a member or pending gets the notice, so nobody waits on a dead
            // group ([GROUP-3.2]).
            let also_told = record
                .members
                .drain(..)
                .map(|m| m.user)
                .chain(record.pending.drain(..))
                .collect();
            Ok(Plan {
                record,
                notice: Some(notice(NoticeKind::Dismissed, Vec::new())),
                joined: Vec::new(),
                also_told,
                pending: false,
            })
        }
        GroupOp::Mute(_, duration_ms) => {
            if !is_admin {
                return Err(denied("only the owner and admins mute"));
            }
            for u in &users {
                match group.role_of(u) {
                    None => return Err(denied(format!("{u} is not a member"))),
                    Some(GroupRole::Owner) => return Err(denied("nobody mutes the owner")),
                    Some(GroupRole::Admin) if role == Some(GroupRole::Admin) => {
                        return Err(denied("admins mute members only"));
                    }
                    Some(_) => {}
                }
            }
            // [GROUP-2.6]: lifting skips who is not muted; a duration always sets a new end.
            let until = if *duration_ms == 0 {
                users.retain(|u| group.member(u).is_some_and(|m| m.is_muted(now_ms)));
                0
            } else {
                now_ms.saturating_add(*duration_ms)
            };
            if users.is_empty() {
                return Ok(unchanged(record));
            }
            for m in &mut record.members {
                if users.contains(&m.user) {
                    m.muted_until_ms = until;
                }
            }
            Ok(changed(
                record,
                GroupNotice {
                    muted_until_ms: until,
                    ..notice(NoticeKind::Muted, users)
                },
            ))
        }
        GroupOp::MuteAll(on) => {
            if !is_admin {
                return Err(denied("only the owner and admins mute the group"));
            }
            if group.muted_all == *on {
                return Ok(unchanged(record));
            }
            record.muted_all = *on;
            let kind = if *on {
                NoticeKind::MutedAll
            } else {
                NoticeKind::UnmutedAll
            };
            Ok(changed(record, notice(kind, Vec::new())))
        }
        GroupOp::DoNotDisturb(on) => {
            // [GROUP-1.7]: the member's own setting; no notice either way.
            let Some(me) = record.members.iter_mut().find(|m| m.user == actor) else {
                return Err(denied("not a member"));
            };
            me.do_not_disturb = *on;
            Ok(unchanged(record))
        }
        GroupOp::SetInfo(change) => {
            if !is_admin {
                return Err(denied(
                    "only the owner and admins change the group's profile",
                ));
            }
            let fields = apply_info(&mut record, change)?;
            if fields.is_empty() {
                return Ok(unchanged(record));
            }
            let name = if fields.contains(&"name") {
                record.name.clone()
            } else {
                String::new()
            };
            Ok(changed(
                record,
                GroupNotice {
                    name,
                    fields,
                    ..notice(NoticeKind::InfoChanged, Vec::new())
                },
            ))
        }
        GroupOp::AllowSpeaking(_, allowed) => {
            if !is_admin {
                return Err(denied("only the owner and admins keep the speaking list"));
            }
            if let Some(u) = users.iter().find(|u| group.member(u).is_none()) {
                return Err(denied(format!("{u} is not a member")));
            }
            users.retain(|u| {
                group
                    .member(u)
                    .is_some_and(|m| m.speaking_allowed != *allowed)
            });
            if users.is_empty() {
                return Ok(unchanged(record));
            }
            for m in &mut record.members {
                if users.contains(&m.user) {
                    m.speaking_allowed = *allowed;
                }
            }
            let kind = if *allowed {
                NoticeKind::SpeakingAllowed
            } else {
                NoticeKind::SpeakingDisallowed
            };
            Ok(changed(record, notice(kind, users)))
        }
    }
}

/// Applies a profile change to `record`; returns the names of the fields that changed, in the
/// order of [`GroupNotice::fields`], or the refusal when the attributes would pass
/// `max_attributes` ([GROUP-1.6]).
fn apply_info(
    record: &mut GroupRecord,
    change: &InfoChange,
) -> Result<Vec<&'static str>, GroupDenied> {
    let mut fields = Vec::new();
    let mut set = |field: &mut String, new: &Option<String>, name: &'static str| {
        if let Some(new) = new
            && field != new
        {
            field.clone_from(new);
            fields.push(name);
        }
    };
    set(&mut record.name, &change.name, "name");
    set(&mut record.avatar_url, &change.avatar_url, "avatar_url");
    set(
        &mut record.announcement,
        &change.announcement,
        "announcement",
    );
    let mut attributes = record.attributes.clone();
    for (k, v) in &change.set_attributes {
        attributes.insert(k.clone(), v.clone());
    }
    for k in &change.remove_attributes {
        attributes.remove(k);
    }
    // Judged on the result, but a change that does not add to a group past a lowered limit
    // goes through ([GROUP-1.6]).
    if attributes.len() > change.max_attributes && attributes.len() > record.attributes.len() {
        return Err(GroupDenied::TooManyAttributes {
            limit: change.max_attributes,
        });
    }
    if attributes != record.attributes {
        record.attributes = attributes;
        fields.push("attributes");
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The commit time of these plans.
    const NOW: u64 = 1_000_000;

    /// A `set_info` as `f` fills it, for groups of at most 2 attributes.
    fn change(f: fn(&mut InfoChange)) -> GroupOp {
        let mut c = InfoChange {
            max_attributes: 2,
            ..InfoChange::default()
        };
        f(&mut c);
        GroupOp::SetInfo(c)
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|u| (*u).to_owned()).collect()
    }

    fn created(private: bool) -> GroupRecord {
        plan(
            None,
            "own",
            &GroupOp::Create {
                name: "g".into(),
                private,
                members: s(&["adm", "mem"]),
            },
            10,
            NOW,
        )
        .map(|mut p| {
            p.record.members[1].role = GroupRole::Admin;
            p.record
        })
        .expect("create")
    }

    #[test]
    fn create_makes_the_actor_owner_and_refuses_a_taken_id() {
        let g = created(false);
        assert_eq!(g.owner(), "own");
        assert_eq!(g.members.len(), 3);
        assert_eq!(
            plan(Some(&g), "x", &GroupOp::Join, 10, NOW).map(|p| p.pending),
            Ok(false)
        );
        let again = GroupOp::Create {
            name: "g".into(),
            private: false,
            members: vec![],
        };
        assert_eq!(
            plan(Some(&g), "own", &again, 10, NOW).err(),
            Some(GroupDenied::Exists)
        );
    }

    #[test]
    fn roles_decide_who_kicks_whom() {
        let g = created(false);
        let kick = |actor, who: &[&str]| plan(Some(&g), actor, &GroupOp::Kick(s(who)), 10, NOW);
        assert!(matches!(
            kick("mem", &["adm"]),
            Err(GroupDenied::NotPermitted(_))
        ));
        assert!(matches!(
            kick("adm", &["own"]),
            Err(GroupDenied::NotPermitted(_))
        ));
        let p = kick("adm", &["mem"]).expect("admin kicks a member");
        assert_eq!(p.also_told, s(&["mem"]));
        assert!(p.record.member("mem").is_none());
        // Kicking a non-member is skipped, without a notice ([GROUP-2.4]).
        assert!(kick("own", &["nobody"]).expect("skip").notice.is_none());
    }

    #[test]
    fn private_groups_queue_joins_until_approved() {
        let g = created(true);
        let asked = plan(Some(&g), "new", &GroupOp::Join, 10, NOW).expect("ask");
        assert!(asked.pending && asked.record.pending == s(&["new"]));
        let g2 = asked.record;
        assert!(matches!(
            plan(Some(&g2), "mem", &GroupOp::Approve(s(&["new"])), 10, NOW),
            Err(GroupDenied::NotPermitted(_))
        ));
        let ok = plan(Some(&g2), "adm", &GroupOp::Approve(s(&["new"])), 10, NOW).expect("approve");
        assert!(ok.record.member("new").is_some() && ok.record.pending.is_empty());
        assert_eq!(ok.joined, s(&["new"]));
    }

    #[test]
    fn the_member_limit_counts_members_and_pending() {
        let g = created(false);
        assert_eq!(
            plan(Some(&g), "own", &GroupOp::Invite(s(&["a", "b"])), 4, NOW).err(),
            Some(GroupDenied::Full { limit: 4 })
        );
        assert!(plan(Some(&g), "own", &GroupOp::Invite(s(&["a"])), 4, NOW).is_ok());
    }

    #[test]
    fn owner_leaves_only_by_transfer_and_dismiss_ends_the_group() {
        let g = created(false);
        assert!(plan(Some(&g), "own", &GroupOp::Leave, 10, NOW).is_err());
        let t = plan(Some(&g), "own", &GroupOp::Transfer("mem".into()), 10, NOW).expect("transfer");
        assert_eq!(t.record.owner(), "mem");
        assert_eq!(t.record.role_of("own"), Some(GroupRole::Member));
        let d = plan(Some(&g), "own", &GroupOp::Dismiss, 10, NOW).expect("dismiss");
        assert!(d.record.dismissed && d.also_told.len() == 3);
        assert_eq!(
            plan(Some(&d.record), "own", &GroupOp::Join, 10, NOW).err(),
            Some(GroupDenied::Unknown)
        );
    }

    #[test]
    fn owner_and_admins_mute_by_role_and_lifting_skips_the_unmuted() {
        let g = created(false);
        let mute =
            |actor, who: &[&str], ms| plan(Some(&g), actor, &GroupOp::Mute(s(who), ms), 10, NOW);
        let denied = |r: Result<Plan, GroupDenied>| matches!(r, Err(GroupDenied::NotPermitted(_)));
        assert!(denied(mute("mem", &["adm"], 5)), "a member mutes nobody");
        assert!(denied(mute("adm", &["own"], 5)), "nobody mutes the owner");
        assert!(denied(mute("own", &["own"], 5)), "not even the owner");
        assert!(denied(mute("adm", &["adm"], 5)), "admins mute members only");
        assert!(denied(mute("own", &["mem", "nobody"], 5)), "members only");
        let p = mute("adm", &["mem"], 5_000).expect("admin mutes a member");
        let n = p.notice.as_ref().expect("notice");
        assert_eq!((n.kind, n.muted_until_ms), (NoticeKind::Muted, NOW + 5_000));
        assert_eq!(n.users, s(&["mem"]));
        let muted = p.record;
        let m = muted.member("mem").expect("member");
        assert!(m.is_muted(NOW) && m.is_muted(NOW + 4_999) && !m.is_muted(NOW + 5_000));
        assert!(!muted.may_speak(m, NOW) && muted.may_speak(m, NOW + 5_000));
        // The owner mutes an admin too; lifting names who is muted, skips who is not.
        let lift = plan(
            Some(&muted),
            "own",
            &GroupOp::Mute(s(&["mem", "adm"]), 0),
            10,
            NOW,
        )
        .expect("lift");
        let n = lift.notice.expect("a notice for mem");
        assert_eq!((n.users, n.muted_until_ms), (s(&["mem"]), 0));
        assert!(!lift.record.member("mem").expect("member").is_muted(NOW));
        assert!(mute("own", &["mem"], 0).expect("skip").notice.is_none());
        // After its end, a mute is over: lifting it then is skipped too.
        let later = plan(
            Some(&muted),
            "own",
            &GroupOp::Mute(s(&["mem"]), 0),
            10,
            NOW + 5_000,
        );
        assert!(later.expect("skip").notice.is_none());
    }

    #[test]
    fn muting_the_group_leaves_the_owner_admins_and_the_speaking_list() {
        let g = created(false);
        assert!(matches!(
            plan(Some(&g), "mem", &GroupOp::MuteAll(true), 10, NOW),
            Err(GroupDenied::NotPermitted(_))
        ));
        assert!(
            plan(Some(&g), "own", &GroupOp::MuteAll(false), 10, NOW)
                .expect("skip")
                .notice
                .is_none()
        );
        let on = plan(Some(&g), "adm", &GroupOp::MuteAll(true), 10, NOW).expect("mute all");
        assert_eq!(
            on.notice.as_ref().map(|n| n.kind),
            Some(NoticeKind::MutedAll)
        );
        let g = on.record;
        let speaks = |g: &GroupRecord, u: &str| g.may_speak(g.member(u).expect("member"), NOW);
        assert!(speaks(&g, "own") && speaks(&g, "adm") && !speaks(&g, "mem"));
        assert!(matches!(
            plan(
                Some(&g),
                "own",
                &GroupOp::AllowSpeaking(s(&["nobody"]), true),
                10,
                NOW
            ),
            Err(GroupDenied::NotPermitted(_))
        ));
        let allow = plan(
            Some(&g),
            "own",
            &GroupOp::AllowSpeaking(s(&["mem"]), true),
            10,
            NOW,
        )
        .expect("allow");
        assert_eq!(
            allow.notice.as_ref().map(|n| n.kind),
            Some(NoticeKind::SpeakingAllowed)
        );
        let g = allow.record;
        assert!(speaks(&g, "mem"));
        assert!(
            plan(
                Some(&g),
                "own",
                &GroupOp::AllowSpeaking(s(&["mem"]), true),
                10,
                NOW
            )
            .expect("skip")
            .notice
            .is_none()
        );
        // A member's own mute binds them even on the list; leaving drops both.
        let muted = plan(Some(&g), "own", &GroupOp::Mute(s(&["mem"]), 10), 10, NOW).expect("mute");
        assert!(!speaks(&muted.record, "mem"));
        let left = plan(Some(&muted.record), "mem", &GroupOp::Leave, 10, NOW).expect("leave");
        let back = plan(Some(&left.record), "mem", &GroupOp::Join, 10, NOW).expect("join");
        let m = back.record.member("mem").expect("member");
        assert!(!m.speaking_allowed && !m.is_muted(NOW));
        let off =
            plan(Some(&back.record), "adm", &GroupOp::MuteAll(false), 10, NOW).expect("unmute");
        assert_eq!(off.notice.map(|n| n.kind), Some(NoticeKind::UnmutedAll));
        assert!(!off.record.muted_all);
    }

    #[test]
    fn profile_changes_name_what_changed_and_bound_the_attributes() {
        let g = created(false);
        let op = change(|c| {
            c.announcement = Some("Be kind".into());
            c.name = Some("g".into());
            c.set_attributes = [("a".to_owned(), "1".to_owned())].into();
        });
        assert!(matches!(
            plan(Some(&g), "mem", &op, 10, NOW),
            Err(GroupDenied::NotPermitted(_))
        ));
        let p = plan(Some(&g), "adm", &op, 10, NOW).expect("set");
        let n = p.notice.expect("notice");
        // The name was already "g": only the announcement and the attributes changed.
        assert_eq!(n.fields, ["announcement", "attributes"]);
        assert!(n.name.is_empty());
        let g = p.record;
        assert_eq!(g.announcement, "Be kind");
        assert!(
            plan(Some(&g), "own", &op, 10, NOW)
                .expect("same")
                .notice
                .is_none()
        );
        let too_many = change(|c| {
            c.set_attributes = [("b", "2"), ("c", "3")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into();
        });
        assert_eq!(
            plan(Some(&g), "own", &too_many, 10, NOW).err(),
            Some(GroupDenied::TooManyAttributes { limit: 2 })
        );
        // Removing one first makes room: judged on the result.
        let swap = change(|c| {
            c.set_attributes = [("b", "2"), ("c", "3")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into();
            c.remove_attributes = vec!["a".into()];
            c.name = Some("New".into());
        });
        let p = plan(Some(&g), "own", &swap, 10, NOW).expect("swap");
        let n = p.notice.expect("notice");
        assert_eq!(
            (n.fields, n.name.as_str()),
            (vec!["name", "attributes"], "New")
        );
        assert_eq!(p.record.attributes.keys().collect::<Vec<_>>(), ["b", "c"]);
        let gone = change(|c| c.remove_attributes = vec!["zzz".into()]);
        assert!(
            plan(Some(&p.record), "own", &gone, 10, NOW)
                .expect("skip")
                .notice
                .is_none()
        );
    }

    #[test]
    fn a_muted_member_made_owner_is_unmuted() {
        let g = created(false);
        let muted = plan(
            Some(&g),
            "own",
            &GroupOp::Mute(s(&["mem"]), 60_000),
            10,
            NOW,
        )
        .expect("mute")
        .record;
        let t = plan(
            Some(&muted),
            "own",
            &GroupOp::Transfer("mem".into()),
            10,
            NOW,
        )
        .expect("transfer")
        .record;
        let owner = t.member("mem").expect("owner");
        assert!(!owner.is_muted(NOW) && t.may_speak(owner, NOW));
    }

    #[test]
    fn a_group_past_a_lowered_attribute_limit_may_still_change() {
        let mut g = created(false);
        g.attributes = [("a", "1"), ("b", "2"), ("c", "3")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        let rename = change(|c| c.name = Some("renamed".into()));
        assert!(plan(Some(&g), "own", &rename, 10, NOW).is_ok());
        let replace = change(|c| c.set_attributes = [("a".to_owned(), "9".to_owned())].into());
        assert!(plan(Some(&g), "own", &replace, 10, NOW).is_ok());
        let add = change(|c| c.set_attributes = [("d".to_owned(), "4".to_owned())].into());
        assert_eq!(
            plan(Some(&g), "own", &add, 10, NOW).err(),
            Some(GroupDenied::TooManyAttributes { limit: 2 })
        );
    }

    #[test]
    fn do_not_disturb_is_a_members_own_setting_without_a_notice() {
        let g = created(false);
        assert!(matches!(
            plan(Some(&g), "outsider", &GroupOp::DoNotDisturb(true), 10, NOW),
            Err(GroupDenied::NotPermitted(_))
        ));
        let p = plan(Some(&g), "mem", &GroupOp::DoNotDisturb(true), 10, NOW).expect("set");
        assert!(p.notice.is_none());
        assert!(p.record.member("mem").expect("mem").do_not_disturb);
        assert!(!p.record.member("adm").expect("adm").do_not_disturb);
        // It ends with the membership.
        let left = plan(Some(&p.record), "mem", &GroupOp::Leave, 10, NOW).expect("leave");
        let back = plan(Some(&left.record), "mem", &GroupOp::Join, 10, NOW).expect("join");
        assert!(!back.record.member("mem").expect("mem").do_not_disturb);
    }
}
