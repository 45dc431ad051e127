//! Groups end to end against an in-process `magpied` (`spec/groups.md`): one SEND reaches every
//! member's stream, notices tell members of changes, roles gate operations, and a new member's
//! history starts at their join.

mod common;

use common::*;
use magpie_session::{Body, RequestCode, pb};
use pb::group::Op;

fn group(id: &str, op: Op) -> Body {
    Body::Group(pb::Group {
        group_id: id.into(),
        op: Some(op),
    })
}

fn users(v: &[&str]) -> pb::GroupUsers {
    pb::GroupUsers {
        users: v.iter().map(|u| (*u).into()).collect(),
    }
}

fn reply(body: Body) -> pb::GroupReply {
    match body {
        Body::GroupReply(r) => r,
        other => panic!("expected GROUP_REPLY, got {other:?}"),
    }
}

fn code(body: Body) -> u32 {
    match body {
        Body::RequestError(e) => e.code,
        other => panic!("expected REQUEST_ERROR, got {other:?}"),
    }
}

fn notice(m: &pb::Message) -> &pb::GroupNotice {
    match m.content.as_ref().and_then(|c| c.kind.as_ref()) {
        Some(pb::content::Kind::GroupNotice(n)) => n,
        other => panic!("expected a group notice, got {other:?}"),
    }
}

#[tokio::test]
async fn a_group_message_reaches_every_member_once_with_one_seq() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let addr = server.local_addr();
    let mut own = TestClient::login(addr, "own", "d").await;
    let mut bob = TestClient::login(addr, "bob", "d").await;
    let mut carol = TestClient::login(addr, "carol", "d").await;

    let created = reply(
        own.request(group(
            "team",
            Op::Create(pb::GroupCreate {
                name: "Team".into(),
                private: false,
                members: vec!["bob".into(), "carol".into()],
            }),
        ))
        .await,
    );
    assert_eq!(created.seq, 1);
    let summary = created.group.expect("summary");
    assert_eq!((summary.owner.as_str(), summary.member_count), ("own", 3));
    // [GROUP-2.2]: the answer to a change carries no lists; `info` does.
    assert!(summary.members.is_empty());
    let info = reply(
        bob.request(group("team", Op::Info(pb::GroupInfoQuery::default())))
            .await,
    )
    .group
    .expect("info");
    let joined: Vec<(&str, u64)> = info
        .members
        .iter()
        .map(|m| (m.user_id.as_str(), m.joined_seq))
        .collect();
    assert_eq!(joined, [("own", 1), ("bob", 1), ("carol", 1)]);
    assert_eq!(info.members_next, 0);

    // [GROUP-3.1]: the CREATED notice, then the message, in both members' streams.
    let a = ack(own.send_text("g:team", "m1", "hello team").await);
    assert_eq!((a.conversation_id.as_str(), a.seq), ("g:team", 2));
    for member in [&mut bob, &mut carol] {
        let events = member.events(2).await;
        let got = messages(&events);
        assert_eq!(notice(got[0]).kind, pb::group_notice::Kind::Created as i32);
        assert_eq!(text_of(got[1]), "hello team");
        assert_eq!((got[1].seq, got[1].peer.as_str()), (2, ""));
    }

    // [GROUP-3.1]: only the server writes notices.
    let forged = Body::Send(pb::Send {
        to: "g:team".into(),
        client_msg_id: "f1".into(),
        class: pb::MessageClass::Notification as i32,
        content: Some(pb::Content {
            kind: Some(pb::content::Kind::GroupNotice(pb::GroupNotice::default())),
        }),
        ..Default::default()
    });
    assert_eq!(code(own.request(forged).await), RequestCode::BAD_REQUEST.0);
    // [GROUP-1.3]: one request names at most `max_group_request_users` (100) users.
    let many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(
        code(own.request(group("team", Op::Invite(users(&many)))).await),
        RequestCode::BAD_REQUEST.0
    );

    // [GROUP-4.1]: a non-member's SEND stores nothing.
    let mut eve = TestClient::login(addr, "eve", "d").await;
    assert_eq!(
        code(eve.send_text("g:team", "e1", "let me in").await),
        RequestCode::UNKNOWN_CONVERSATION.0
    );
    assert_eq!(
        code(eve.send_text("g:nosuch", "e2", "x").await),
        RequestCode::UNKNOWN_CONVERSATION.0
    );
    server.shutdown().await;
}

#[tokio::test]
async fn roles_gate_changes_and_the_kicked_stop_receiving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_server(dir.path()).await;
    let addr = server.local_addr();
    let mut own = TestClient::login(addr, "own", "d").await;
    let mut bob = TestClient::login(addr, "bob", "d").await;
    reply(
        own.request(group(
            "p",
            Op::Create(pb::GroupCreate {
                name: "Private".into(),
                private: true,
                members: vec!["bob".into()],
            }),
        ))
        .await,
    );
    // A member may not invite to a private group, nor kick.
    assert_eq!(
        code(bob.request(group("p", Op::Invite(users(&["x"])))).await),
        RequestCode::NOT_PERMITTED.0
    );
    assert_eq!(
        code(bob.request(group("p", Op::Kick(users(&["own"])))).await),
        RequestCode::NOT_PERMITTED.0
    );
    // A private join waits for approval.
    let mut dan = TestClient::login(addr, "dan", "d").await;
    let asked = reply(dan.request(group("p", Op::Join(pb::GroupNone {}))).await);
    assert!(asked.pending);
    assert_eq!(
        code(dan.send_text("g:p", "d1", "early").await),
        RequestCode::UNKNOWN_CONVERSATION.0
    );
    let approved = reply(own.request(group("p", Op::Approve(users(&["dan"])))).await);
    let joined_seq = approved.seq;
    assert_eq!(approved.group.expect("summary").member_count, 3);
    ack(dan.send_text("g:p", "d2", "hi all").await);

    // [GROUP-4.4]: dan's history starts at the notice that let him in.
    let h = match dan
        .request(Body::History(pb::History {
            conversation_id: "g:p".into(),
            from_seq: 1,
            backward: false,
            limit: 50,
        }))
        .await
    {
        Body::HistoryReply(h) => h,
        other => panic!("{other:?}"),
    };
    assert_eq!(h.visible_from, joined_seq);
    assert!(h.messages.iter().all(|m| m.seq >= joined_seq));
    assert_eq!(h.messages.len(), 2);

    // [GROUP-3.2]: bob gets the KICKED notice, then nothing more of the group.
    bob.drain(std::time::Duration::from_millis(100)).await;
    bob.events(0).await;
    let kicked = reply(own.request(group("p", Op::Kick(users(&["bob"])))).await);
    let events = bob.events(1).await;
    assert_eq!(
        notice(messages(&events)[0]).kind,
        pb::group_notice::Kind::Kicked as i32
    );
    assert_eq!(kicked.group.expect("summary").member_count, 2);
    ack(own.send_text("g:p", "o1", "after bob").await);
    bob.drain(std::time::Duration::from_millis(200)).await;
    let after = bob.events(0).await;
    assert!(after.is_empty(), "bob got {after:?}");

    // The owner cannot leave; transfer, then leave as a member.
    assert_eq!(
        code(own.request(group("p", Op::Leave(pb::GroupNone {}))).await),
        RequestCode::NOT_PERMITTED.0
    );
    reply(
        own.request(group(
            "p",
            Op::Transfer(pb::GroupTransfer { to: "dan".into() }),
        ))
        .await,
    );
    reply(own.request(group("p", Op::Leave(pb::GroupNone {}))).await);
    let dismissed = reply(dan.request(group("p", Op::Dismiss(pb::GroupNone {}))).await);
    assert!(dismissed.group.expect("info").dismissed);
    assert_eq!(
        code(
            dan.request(group("p", Op::Info(pb::GroupInfoQuery::default())))
                .await
        ),
        RequestCode::UNKNOWN_GROUP.0
    );
    assert_eq!(
        code(
            dan.request(group(
                "p",
                Op::Create(pb::GroupCreate {
                    name: "again".into(),
                    private: false,
                    members: vec![],
                })
            ))
            .await
        ),
        RequestCode::GROUP_EXISTS.0
    );
    server.shutdown().await;
}

#[tokio::test]
async fn group_changes_and_sends_share_the_senders_rate() {
    // [SESSION-6.4]: one bucket per user for SENDs and group changes; `info` costs nothing.
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_with(dir.path(), |s| {
        s.send_rate = 1;
        s.send_burst = 2;
    })
    .await;
    let addr = server.local_addr();
    let mut own = TestClient::login(addr, "own", "d").await;
    // At 1/s a slow machine may refill a token between two requests: each refusal below is
    // asserted only if less than a second passed since the bucket was emptied.
    let emptied = std::time::Instant::now();
    let created = reply(
        own.request(group(
            "rated",
            Op::Create(pb::GroupCreate {
                name: "Rated".into(),
                private: false,
                members: vec!["bob".into()],
            }),
        ))
        .await,
    );
    assert_eq!(created.seq, 1);
    assert!(matches!(
        own.send_text("g:rated", "m1", "hi").await,
        Body::SendAck(_)
    ));
    let info = || group("rated", Op::Info(pb::GroupInfoQuery::default()));
    for _ in 0..5 {
        reply(own.request(info()).await);
    }
    let refused = own.request(group("rated", Op::Kick(users(&["bob"])))).await;
    let quick = emptied.elapsed() < std::time::Duration::from_secs(1);
    match &refused {
        Body::RequestError(e) => {
            assert_eq!(e.code, RequestCode::RATE_LIMITED.0, "{e:?}");
            assert!((1..=1000).contains(&e.retry_after_ms), "{e:?}");
            // Nothing changed: bob is still a member.
            let after = reply(own.request(info()).await).group.expect("info");
            assert_eq!(after.member_count, 2);
        }
        other => assert!(
            !quick,
            "expected RATE_LIMITED within a second, got {other:?}"
        ),
    }
    let again = own.send_text("g:rated", "m2", "again").await;
    if emptied.elapsed() < std::time::Duration::from_secs(1) {
        assert_eq!(
            code(again),
            RequestCode::RATE_LIMITED.0,
            "the SEND shares the bucket"
        );
    }
}
