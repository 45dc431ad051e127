//! Who may do what to a group ([GROUP-2.3], [GROUP-2.4]), as a pure function of the group as the
//! write transaction sees it.

use super::{GroupDenied, GroupMember, GroupNotice, GroupOp, GroupRecord, GroupRole, NoticeKind};

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

/// Judges `op` by `actor` against the group as it is (`None`: no such group); the rules of
/// [GROUP-2.3] and [GROUP-2.4].
pub(crate) fn plan(
    group: Option<&GroupRecord>,
    actor: &str,
    op: &GroupOp,
    max_members: usize,
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
        record.members.push(GroupMember {
            user: actor.to_owned(),
            role: GroupRole::Owner,
            joined_seq: 0,
        });
        let others: Vec<String> = users.into_iter().filter(|u| u != actor).collect();
        if others.len() + 1 > max_members {
            return Err(full);
        }
        record.members.extend(others.iter().map(|u| GroupMember {
            user: u.clone(),
            role: GroupRole::Member,
            joined_seq: 0,
        }));
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
    let add_members = |record: &mut GroupRecord, new: &[String]| -> Result<(), GroupDenied> {
        if record.members.len() + new.len() > max_members {
            return Err(GroupDenied::Full { limit: max_members });
        }
        record.pending.retain(|p| !new.contains(p));
        record.members.extend(new.iter().map(|u| GroupMember {
            user: u.clone(),
            role: GroupRole::Member,
            joined_seq: 0,
        }));
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
                }
            }
            Ok(Plan {
                record,
                notice: Some(notice(NoticeKind::OwnerChanged, vec![to.clone()])),
                joined: Vec::new(),
                also_told: Vec::new(),
                pending: false,
            })
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
            Ok(Plan {
                record,
                notice: Some(GroupNotice {
                    role: Some(*new_role),
                    ..notice(NoticeKind::RoleChanged, users)
                }),
                joined: Vec::new(),
                also_told: Vec::new(),
                pending: false,
            })
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            plan(Some(&g), "x", &GroupOp::Join, 10).map(|p| p.pending),
            Ok(false)
        );
        let again = GroupOp::Create {
            name: "g".into(),
            private: false,
            members: vec![],
        };
        assert_eq!(
            plan(Some(&g), "own", &again, 10).err(),
            Some(GroupDenied::Exists)
        );
    }

    #[test]
    fn roles_decide_who_kicks_whom() {
        let g = created(false);
        let kick = |actor, who: &[&str]| plan(Some(&g), actor, &GroupOp::Kick(s(who)), 10);
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
        let asked = plan(Some(&g), "new", &GroupOp::Join, 10).expect("ask");
        assert!(asked.pending && asked.record.pending == s(&["new"]));
        let g2 = asked.record;
        assert!(matches!(
            plan(Some(&g2), "mem", &GroupOp::Approve(s(&["new"])), 10),
            Err(GroupDenied::NotPermitted(_))
        ));
        let ok = plan(Some(&g2), "adm", &GroupOp::Approve(s(&["new"])), 10).expect("approve");
        assert!(ok.record.member("new").is_some() && ok.record.pending.is_empty());
        assert_eq!(ok.joined, s(&["new"]));
    }

    #[test]
    fn the_member_limit_counts_members_and_pending() {
        let g = created(false);
        assert_eq!(
            plan(Some(&g), "own", &GroupOp::Invite(s(&["a", "b"])), 4).err(),
            Some(GroupDenied::Full { limit: 4 })
        );
        assert!(plan(Some(&g), "own", &GroupOp::Invite(s(&["a"])), 4).is_ok());
    }

    #[test]
    fn owner_leaves_only_by_transfer_and_dismiss_ends_the_group() {
        let g = created(false);
        assert!(plan(Some(&g), "own", &GroupOp::Leave, 10).is_err());
        let t = plan(Some(&g), "own", &GroupOp::Transfer("mem".into()), 10).expect("transfer");
        assert_eq!(t.record.owner(), "mem");
        assert_eq!(t.record.role_of("own"), Some(GroupRole::Member));
        let d = plan(Some(&g), "own", &GroupOp::Dismiss, 10).expect("dismiss");
        assert!(d.record.dismissed && d.also_told.len() == 3);
        assert_eq!(
            plan(Some(&d.record), "own", &GroupOp::Join, 10).err(),
            Some(GroupDenied::Unknown)
        );
    }
}
