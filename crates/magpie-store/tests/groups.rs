//! Groups in the store (`spec/groups.md`): a change and its notice commit together, a group
//! message gets one event per member, membership is judged inside the batch, and all of it
//! survives a reopen.

mod common;

use bytes::Bytes;
use common::*;
use magpie_store::{
    GroupChange, GroupDenied, GroupNotice, GroupOp, GroupRole, InfoChange, NoticeKind,
    NoticeRenderer, Silence, Store, Write, WriteResult,
};

fn render(n: &GroupNotice) -> Bytes {
    Bytes::from(format!("{:?} by {} of {:?}", n.kind, n.actor, n.users))
}

fn op(actor: &str, op: GroupOp) -> Write {
    op_in("team", actor, op)
}

fn op_in(group: &str, actor: &str, op: GroupOp) -> Write {
    Write::Group {
        app: APP.into(),
        group: group.into(),
        actor: actor.into(),
        device: format!("{actor}-phone"),
        op,
        max_members: 4,
        render: NoticeRenderer(render),
    }
}

fn to_group(sender: &str, id: &str, body: &str) -> Write {
    Write::AppendGroupMessage {
        app: APP.into(),
        group: "team".into(),
        message: message("g:team", sender, id, body),
        content_hash: hash(body),
    }
}

fn changed(r: &WriteResult) -> &GroupChange {
    match r {
        WriteResult::GroupChanged(c) => c,
        other => panic!("expected a change, got {other:?}"),
    }
}

fn users(v: &[&str]) -> Vec<String> {
    v.iter().map(|u| (*u).to_owned()).collect()
}

fn create_group(name: &str, private: bool, members: &[&str]) -> GroupOp {
    GroupOp::Create {
        name: name.into(),
        private,
        members: users(members),
    }
}

#[test]
fn a_change_commits_with_its_notice_and_messages_reach_every_member() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let create = create_group("Team", false, &["bob", "carol"]);
    let r = store.commit(&[op("own", create)]).expect("commit");
    let c = changed(&r[0]);
    let notice = c.notice.as_ref().expect("a CREATED notice");
    assert_eq!((notice.seq, notice.class), (1, 1));
    assert_eq!(
        notice.content,
        render(&GroupNotice {
            kind: NoticeKind::Created,
            actor: "own".into(),
            users: users(&["bob", "carol"]),
            role: None,
            name: "Team".into(),
            muted_until_ms: 0,
            fields: Vec::new(),
        })
    );
    assert_eq!(c.offsets.len(), 3);
    assert!(c.record.members.iter().all(|m| m.joined_seq == 1));

    let r = store
        .commit(&[to_group("bob", "b1", "hi"), to_group("eve", "e1", "no")])
        .expect("commit");
    match &r[0] {
        WriteResult::Appended { seq, offsets, .. } => {
            assert_eq!(*seq, 2);
            let mut who: Vec<&str> = offsets.iter().map(|(u, _)| u.as_str()).collect();
            who.sort_unstable();
            assert_eq!(who, ["bob", "carol", "own"]);
            assert!(offsets.iter().all(|(_, o)| *o == 2));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r[1], WriteResult::NotMember);
    // A retry is stored once; its answer carries no per-member offsets.
    let r = store
        .commit(&[to_group("bob", "b1", "hi")])
        .expect("commit");
    assert!(matches!(
        &r[0],
        WriteResult::Appended { seq: 2, duplicate: true, offsets, .. } if offsets.is_empty()
    ));
    assert_eq!(store.conversation(APP, "g:team").expect("info").last_seq, 2);
}

#[test]
fn a_kick_and_a_send_in_one_batch_are_judged_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let create = create_group("", false, &["bob"]);
    store.commit(&[op("own", create)]).expect("commit");
    let r = store
        .commit(&[
            to_group("bob", "b1", "before"),
            op("own", GroupOp::Kick(users(&["bob"]))),
            to_group("bob", "b2", "after"),
        ])
        .expect("commit");
    assert!(matches!(r[0], WriteResult::Appended { seq: 2, .. }));
    let kick = changed(&r[1]);
    assert_eq!(kick.notice.as_ref().map(|n| n.seq), Some(3));
    // The kicked member still gets the KICKED notice ([GROUP-3.2]).
    assert!(kick.offsets.iter().any(|(u, _)| u == "bob"));
    assert_eq!(r[2], WriteResult::NotMember);
}

#[test]
fn limits_and_roles_refuse_without_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let create = create_group("", true, &["a", "b"]);
    store.commit(&[op("own", create)]).expect("commit");
    let r = store
        .commit(&[
            op("own", GroupOp::Invite(users(&["c", "d"]))),
            op("a", GroupOp::Invite(users(&["c"]))),
            op("own", GroupOp::SetRole(users(&["a"]), GroupRole::Admin)),
            op("a", GroupOp::Kick(users(&["own"]))),
            op("x", GroupOp::Join),
        ])
        .expect("commit");
    assert_eq!(
        r[0],
        WriteResult::GroupDenied(GroupDenied::Full { limit: 4 })
    );
    assert!(matches!(
        r[1],
        WriteResult::GroupDenied(GroupDenied::NotPermitted(_))
    ));
    assert!(changed(&r[2]).notice.is_some());
    assert!(matches!(
        r[3],
        WriteResult::GroupDenied(GroupDenied::NotPermitted(_))
    ));
    let join = changed(&r[4]);
    assert!(join.pending && join.record.pending == users(&["x"]));
    // Only the role change and the join request wrote notices.
    assert_eq!(store.conversation(APP, "g:team").expect("info").last_seq, 3);
}

#[test]
fn groups_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        let create = create_group("Team", false, &["bob"]);
        store.commit(&[op("own", create)]).expect("commit");
        store
            .commit(&[op("carol", GroupOp::Join), op("own", GroupOp::Dismiss)])
            .expect("commit");
    }
    let store = open(dir.path());
    let g = store.group(APP, "team").expect("read").expect("kept");
    assert!(g.dismissed && g.members.is_empty() && g.name == "Team");
    let again = create_group("", false, &[]);
    let r = store.commit(&[op("own", again)]).expect("commit");
    assert_eq!(r[0], WriteResult::GroupDenied(GroupDenied::Exists));
    assert_eq!(store.conversation(APP, "g:team").expect("info").last_seq, 3);
    assert!(store.group(APP, "other").expect("read").is_none());
}

#[test]
fn mutes_are_judged_in_the_batch_at_the_commit_time_and_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hour = 3_600_000;
    {
        let store = open(dir.path());
        let create = create_group("", false, &["adm", "bob", "carol"]);
        store.commit(&[op("own", create)]).expect("commit");
        store
            .commit(&[op(
                "own",
                GroupOp::SetRole(users(&["adm"]), GroupRole::Admin),
            )])
            .expect("commit");
        let r = store
            .commit(&[
                to_group("bob", "b1", "before"),
                op("adm", GroupOp::Mute(users(&["bob"]), hour)),
                to_group("bob", "b2", "after"),
                // A retry of a message stored before the mute is answered as before.
                to_group("bob", "b1", "before"),
            ])
            .expect("commit");
        assert!(matches!(r[0], WriteResult::Appended { seq: 3, .. }));
        let mute = changed(&r[1]);
        let until = mute.record.member("bob").expect("bob").muted_until_ms;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        assert!(
            until > now + hour - 60_000 && until <= now + hour,
            "{until}"
        );
        assert_eq!(r[2], WriteResult::Muted(Silence::Muted { until_ms: until }));
        assert!(matches!(
            r[3],
            WriteResult::Appended {
                seq: 3,
                duplicate: true,
                ..
            }
        ));
        let r = store
            .commit(&[
                op("adm", GroupOp::MuteAll(true)),
                to_group("carol", "c1", "quiet?"),
                to_group("adm", "a1", "admins speak"),
                op(
                    "own",
                    GroupOp::AllowSpeaking(users(&["carol", "bob"]), true),
                ),
                to_group("carol", "c2", "on the list"),
                to_group("bob", "b3", "still muted himself"),
            ])
            .expect("commit");
        assert!(changed(&r[0]).record.muted_all);
        assert_eq!(r[1], WriteResult::Muted(Silence::GroupMuted));
        assert!(matches!(r[2], WriteResult::Appended { .. }));
        assert!(matches!(r[4], WriteResult::Appended { .. }));
        assert_eq!(r[5], WriteResult::Muted(Silence::Muted { until_ms: until }));
    }
    let store = open(dir.path());
    let g = store.group(APP, "team").expect("read").expect("kept");
    assert!(g.muted_all);
    assert!(g.attributes.is_empty() && g.announcement.is_empty());
    let bob = g.member("bob").expect("bob");
    assert!(bob.muted_until_ms > 0 && bob.speaking_allowed);
    assert!(g.member("carol").expect("carol").speaking_allowed);
    // Lifted, bob speaks again: he is on the list while the group stays muted.
    let r = store
        .commit(&[
            op("own", GroupOp::Mute(users(&["bob"]), 0)),
            to_group("bob", "b4", "back"),
        ])
        .expect("commit");
    let lift = changed(&r[0]);
    assert_eq!(lift.notice.as_ref().map(|n| n.class), Some(1));
    assert!(matches!(r[1], WriteResult::Appended { .. }));
}

#[test]
fn a_profile_change_commits_with_its_notice_and_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let change = InfoChange {
        avatar_url: Some("https://example.com/t.png".into()),
        announcement: Some("Standup at 10".into()),
        set_attributes: [("topic".to_owned(), "rust".to_owned())].into(),
        max_attributes: 1,
        ..InfoChange::default()
    };
    {
        let store = open(dir.path());
        let create = create_group("Team", false, &["bob"]);
        store.commit(&[op("own", create)]).expect("commit");
        let more = InfoChange {
            set_attributes: [("more".to_owned(), "x".to_owned())].into(),
            ..change.clone()
        };
        let r = store
            .commit(&[
                op("bob", GroupOp::SetInfo(change.clone())),
                op("own", GroupOp::SetInfo(change.clone())),
                op("own", GroupOp::SetInfo(change.clone())),
                op("own", GroupOp::SetInfo(more)),
            ])
            .expect("commit");
        assert!(matches!(
            r[0],
            WriteResult::GroupDenied(GroupDenied::NotPermitted(_))
        ));
        let set = changed(&r[1]);
        let notice = set.notice.as_ref().expect("INFO_CHANGED");
        assert_eq!(notice.seq, 2);
        // Both members are told ([GROUP-3.2]).
        assert_eq!(set.offsets.len(), 2);
        assert!(changed(&r[2]).notice.is_none(), "nothing changed");
        assert_eq!(
            r[3],
            WriteResult::GroupDenied(GroupDenied::TooManyAttributes { limit: 1 })
        );
    }
    let store = open(dir.path());
    let g = store.group(APP, "team").expect("read").expect("kept");
    assert_eq!(g.avatar_url, "https://example.com/t.png");
    assert_eq!(g.announcement, "Standup at 10");
    assert_eq!(g.attributes.get("topic").map(String::as_str), Some("rust"));
    assert_eq!(g.name, "Team");
    // A text past the store's field is refused before anything is written.
    let huge = InfoChange {
        announcement: Some("x".repeat(magpie_store::MAX_TEXT_LEN + 1)),
        ..InfoChange::default()
    };
    assert!(op("own", GroupOp::SetInfo(huge)).validate().is_err());
}

#[test]
fn a_directed_message_reaches_its_audience_only_and_keeps_it_across_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let directed = |to: &[&str], id: &str| {
        let mut m = message("g:team", "own", id, "psst");
        m.audience = users(to);
        Write::AppendGroupMessage {
            app: APP.into(),
            group: "team".into(),
            message: m,
            content_hash: hash(&format!("psst to {to:?}")),
        }
    };
    {
        let store = open(dir.path());
        let create = create_group("", false, &["bob", "carol"]);
        store.commit(&[op("own", create)]).expect("commit");
        let r = store
            .commit(&[directed(&["bob"], "d1"), directed(&["bob", "eve"], "d2")])
            .expect("commit");
        match &r[0] {
            WriteResult::Appended { seq, offsets, .. } => {
                assert_eq!(*seq, 2);
                let told: Vec<&str> = offsets.iter().map(|(u, _)| u.as_str()).collect();
                assert_eq!(
                    told,
                    ["own", "bob"],
                    "the sender and the audience, in join order"
                );
            }
            other => panic!("expected an append, got {other:?}"),
        }
        assert_eq!(r[1], WriteResult::AudienceNotMember("eve".into()));
        assert_eq!(store.conversation(APP, "g:team").expect("info").last_seq, 2);
    }
    let store = open(dir.path());
    let page = store.history(APP, "g:team", 2, false, 10).expect("history");
    assert_eq!(page[0].audience, users(&["bob"]));
    assert!(page[0].visible_to("bob") && page[0].visible_to("own"));
    assert!(!page[0].visible_to("carol"));
    // The store's own checks: an audience of valid ids, on group messages only.
    assert!(directed(&[""], "d3").validate().is_err(), "an empty id");
    let mut one_to_one = message("d:bob:own", "own", "d4", "x");
    one_to_one.audience = users(&["bob"]);
    let w = Write::AppendMessage {
        app: APP.into(),
        message: one_to_one,
        content_hash: hash("x"),
        participants: users(&["own", "bob"]),
    };
    assert!(w.validate().is_err(), "a 1:1 message with an audience");
}

#[test]
fn a_users_groups_follow_joins_roles_kicks_and_dismissals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let in_group = |g: &str, actor: &str, op: GroupOp| {
        let r = store.commit(&[op_in(g, actor, op)]).expect("commit");
        assert!(matches!(r[0], WriteResult::GroupChanged(_)), "{r:?}");
    };
    let create = |members: &[&str]| create_group("", false, members);
    in_group("team", "own", create(&["bob"]));
    in_group("other", "own", create(&["bob", "carol"]));
    in_group("third", "carol", create(&[]));
    in_group("third", "bob", GroupOp::Join);
    let mine = |user: &str, after: &str, limit: usize| {
        store
            .user_groups(APP, user, after, limit)
            .expect("user_groups")
    };
    let all = mine("bob", "", 10);
    let mut names: Vec<&str> = all.iter().map(|(g, _)| g.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["other", "team", "third"]);
    assert!(all.iter().all(|(_, r)| *r == GroupRole::Member));
    // Paged one at a time, the same groups, each once.
    let mut paged = Vec::new();
    let mut after = String::new();
    loop {
        let page = mine("bob", &after, 1);
        let Some((g, _)) = page.first() else { break };
        after = g.clone();
        paged.push(g.clone());
    }
    assert_eq!(
        paged,
        all.iter().map(|(g, _)| g.clone()).collect::<Vec<_>>()
    );
    in_group(
        "team",
        "own",
        GroupOp::SetRole(users(&["bob"]), GroupRole::Admin),
    );
    in_group("other", "own", GroupOp::Kick(users(&["bob"])));
    in_group("third", "carol", GroupOp::Dismiss);
    assert_eq!(mine("bob", "", 10), [("team".to_owned(), GroupRole::Admin)]);
    assert_eq!(mine("own", "", 10).len(), 2);
    assert_eq!(
        mine("carol", "", 10),
        [("other".to_owned(), GroupRole::Member)]
    );
    assert!(mine("nobody", "", 10).is_empty());
    // Invite, leave and transfer move the index too.
    in_group("team", "own", GroupOp::Invite(users(&["carol"])));
    in_group("team", "bob", GroupOp::Leave);
    in_group("team", "own", GroupOp::Transfer("carol".into()));
    let mut carols = mine("carol", "", 10);
    carols.sort();
    assert_eq!(
        carols,
        [
            ("other".to_owned(), GroupRole::Member),
            ("team".to_owned(), GroupRole::Owner)
        ]
    );
    assert!(mine("bob", "", 10).is_empty());
    assert!(mine("own", "", 10).contains(&("team".to_owned(), GroupRole::Member)));
    // An `after` past the store's id limit is refused, not a key.
    assert!(
        store
            .user_groups(APP, "bob", &"x".repeat(70_000), 10)
            .is_err()
    );
}
