//! Groups (`spec/groups.md`): ids, requests and who may make them, notices, and group messages.
//! Every user and group id is fresh, so cases never meet across runs.

use std::time::Duration;

use magpie_session::{Body, pb};
use pb::group::Op;
use pb::group_notice::Kind;

use crate::ServerTarget;
use crate::case::{Case, Level, Verdict};
use crate::conn::Conn;
use crate::server::{fresh, hello_for, messages, send_ack, send_body, server, sync_all, text_of};

const BAD_REQUEST: u32 = 0x100;
const INVALID_USER_ID: u32 = 0x102;
const UNKNOWN_CONVERSATION: u32 = 0x105;
const NOT_PERMITTED: u32 = 0x10A;
const GROUP_EXISTS: u32 = 0x10B;
const GROUP_FULL: u32 = 0x10C;
const UNKNOWN_GROUP: u32 = 0x10D;

/// The default `max_group_members` ([GROUP-1.3]); the limit case assumes it.
const MAX_GROUP_MEMBERS: usize = 3000;
/// The default `max_group_request_users` ([GROUP-1.3]); the list length case assumes it.
const MAX_REQUEST_USERS: usize = 100;
/// The default `max_group_name` ([GROUP-1.2]); the name case assumes it.
const MAX_GROUP_NAME: usize = 128;

/// How long the suite waits for pushes it expects.
const PUSHED: Duration = Duration::from_secs(3);
/// How long the suite listens for pushes that must not come.
const QUIET: Duration = Duration::from_millis(400);

/// The conversation id of group `id` ([GROUP-1.1]).
fn gconv(id: &str) -> String {
    format!("g:{id}")
}

fn none() -> pb::GroupNone {
    pb::GroupNone {}
}

fn users<S: AsRef<str>>(v: &[S]) -> pb::GroupUsers {
    pb::GroupUsers {
        users: v.iter().map(|u| u.as_ref().to_owned()).collect(),
    }
}

fn create<S: AsRef<str>>(name: &str, private: bool, members: &[S]) -> Op {
    Op::Create(pb::GroupCreate {
        name: name.into(),
        private,
        members: users(members).users,
    })
}

fn set_role<S: AsRef<str>>(who: &[S], role: pb::GroupRole) -> Op {
    Op::SetRole(pb::GroupSetRole {
        users: users(who).users,
        role: role as i32,
    })
}

fn info_op() -> Op {
    info_from(0)
}

fn info_from(members_from: u32) -> Op {
    Op::Info(pb::GroupInfoQuery { members_from })
}

fn transfer(to: &str) -> Op {
    Op::Transfer(pb::GroupTransfer { to: to.into() })
}

/// Sends GROUP `op` on group `id` and returns the answer.
async fn group(c: &mut Conn, id: &str, op: Op) -> Result<Body, String> {
    c.request(Body::Group(pb::Group {
        group_id: id.into(),
        op: Some(op),
    }))
    .await
}

/// A GROUP that must be answered GROUP_REPLY with notice seq `seq` (the case's setup).
async fn group_ok(c: &mut Conn, id: &str, op: Op, seq: u64) -> Result<pb::GroupReply, String> {
    let what = format!("{op:?}");
    match group(c, id, op).await? {
        Body::GroupReply(r) if r.seq == seq => Ok(r),
        other => Err(format!(
            "setup GROUP {} on {id}: want GROUP_REPLY seq {seq}, got {}",
            short(&what, 80),
            describe(&other)
        )),
    }
}

/// The group as `info` shows it to the requester ([GROUP-2.5]).
async fn info(c: &mut Conn, id: &str) -> Result<pb::GroupInfo, String> {
    match group(c, id, info_op()).await? {
        Body::GroupReply(r) => Ok(r.group.unwrap_or_default()),
        other => Err(format!("info of {id}: {}", describe(&other))),
    }
}

async fn history(
    c: &mut Conn,
    conversation: &str,
    from_seq: u64,
    backward: bool,
) -> Result<Body, String> {
    c.request(Body::History(pb::History {
        conversation_id: conversation.into(),
        from_seq,
        backward,
        limit: 100,
    }))
    .await
}

async fn read(c: &mut Conn, conversation: &str, seq: u64) -> Result<Body, String> {
    c.request(Body::Read(pb::Read {
        conversation_id: conversation.into(),
        seq,
    }))
    .await
}

/// The conversation's `last_seq` as HISTORY tells a member.
async fn last_seq(c: &mut Conn, conversation: &str) -> Result<u64, String> {
    match history(c, conversation, 0, true).await? {
        Body::HistoryReply(h) => Ok(h.last_seq),
        other => Err(format!(
            "HISTORY of {conversation} answered {}",
            describe(&other)
        )),
    }
}

/// The messages of `conversation` in the user's stream, pulled with SYNC from offset 0.
async fn stream(
    c: &mut Conn,
    w: &pb::Welcome,
    conversation: &str,
) -> Result<Vec<pb::Message>, String> {
    let epoch = w.head.map(|h| h.epoch).unwrap_or(0);
    let (events, _) = sync_all(c, epoch, 0).await?;
    Ok(of(&messages(&events), conversation))
}

fn of(msgs: &[pb::Message], conversation: &str) -> Vec<pb::Message> {
    msgs.iter()
        .filter(|m| m.conversation_id == conversation)
        .cloned()
        .collect()
}

/// The stored messages of `conversation` pushed to `c` so far.
fn pushed(c: &Conn, conversation: &str) -> Vec<pb::Message> {
    let events: Vec<pb::Event> = c.pushes.iter().flat_map(|p| p.events.clone()).collect();
    of(&messages(&events), conversation)
}

/// Waits until `c` has been pushed stored messages of `conversation` up to seq `seq` (or
/// [`PUSHED`] passes), then returns them.
async fn pushed_until(c: &mut Conn, conversation: &str, seq: u64) -> Vec<pb::Message> {
    let deadline = tokio::time::Instant::now() + PUSHED;
    loop {
        let got = pushed(c, conversation);
        if got.iter().any(|m| m.seq >= seq) || tokio::time::Instant::now() >= deadline {
            return got;
        }
        c.drain(Duration::from_millis(50)).await;
    }
}

/// The live messages of `conversation` pushed to `c` so far.
fn live(c: &Conn, conversation: &str) -> Vec<pb::Message> {
    c.pushes
        .iter()
        .flat_map(|p| p.live.iter())
        .filter(|m| m.conversation_id == conversation)
        .cloned()
        .collect()
}

/// Waits until `c` has been pushed `n` live messages of `conversation` (or [`PUSHED`] passes).
async fn live_until(c: &mut Conn, conversation: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + PUSHED;
    while live(c, conversation).len() < n && tokio::time::Instant::now() < deadline {
        c.drain(Duration::from_millis(50)).await;
    }
}

fn seqs(msgs: &[pb::Message]) -> Vec<u64> {
    msgs.iter().map(|m| m.seq).collect()
}

fn code(b: &Body) -> Option<u32> {
    match b {
        Body::RequestError(e) => Some(e.code),
        _ => None,
    }
}

fn short(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_owned();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn role_name(r: i32) -> &'static str {
    match pb::GroupRole::try_from(r) {
        Ok(pb::GroupRole::Owner) => "OWNER",
        Ok(pb::GroupRole::Admin) => "ADMIN",
        Ok(pb::GroupRole::Member) => "MEMBER",
        _ => "?",
    }
}

fn describe_info(g: &pb::GroupInfo) -> String {
    let members: Vec<String> = g
        .members
        .iter()
        .take(6)
        .map(|m| format!("{}:{}@{}", m.user_id, role_name(m.role), m.joined_seq))
        .collect();
    format!(
        "{{id {:?} name {:?} private {} owner {:?} count {} members {}[{}] pending {:?}{}}}",
        short(&g.group_id, 70),
        short(&g.name, 20),
        g.private,
        g.owner,
        g.member_count,
        g.members.len(),
        members.join(", "),
        g.pending,
        if g.dismissed { " dismissed" } else { "" }
    )
}

/// A short account of an answer.
fn describe(b: &Body) -> String {
    match b {
        Body::GroupReply(r) => format!(
            "GROUP_REPLY seq {} pending {} group {}",
            r.seq,
            r.pending,
            r.group
                .as_ref()
                .map_or_else(|| "none".into(), describe_info)
        ),
        Body::RequestError(e) => format!("REQUEST_ERROR 0x{:X} {:?}", e.code, e.message),
        Body::SendAck(a) => format!("SEND_ACK {} seq {}", a.conversation_id, a.seq),
        other => short(&format!("{other:?}"), 200),
    }
}

fn notice_of(m: &pb::Message) -> Option<&pb::GroupNotice> {
    match m.content.as_ref().and_then(|c| c.kind.as_ref()) {
        Some(pb::content::Kind::GroupNotice(n)) => Some(n),
        _ => None,
    }
}

/// A short account of a message.
fn show(m: &pb::Message) -> String {
    let what = match notice_of(m) {
        Some(n) => format!(
            "notice {:?} actor {} users {:?} role {} name {:?}",
            Kind::try_from(n.kind).unwrap_or(Kind::Unspecified),
            n.actor,
            n.users,
            role_name(n.role),
            n.name
        ),
        None => format!("text {:?}", text_of(m)),
    };
    format!(
        "#{} class {} sender {} cmid {:?} peer {:?} {what}",
        m.seq, m.class, m.sender, m.client_msg_id, m.peer
    )
}

fn show_all(msgs: &[pb::Message]) -> String {
    format!(
        "[{}]",
        msgs.iter().map(show).collect::<Vec<_>>().join(" | ")
    )
}

/// Whether `m` is the notice [GROUP-3.1] describes: class NOTIFICATION, empty client_msg_id,
/// sent by `actor`, content a `GroupNotice` of `kind` with `actor` and (if given) exactly `named`.
fn is_notice(m: &pb::Message, kind: Kind, actor: &str, named: Option<&[&String]>) -> bool {
    let Some(n) = notice_of(m) else {
        return false;
    };
    let same_users = named.is_none_or(|want| {
        let mut got: Vec<&str> = n.users.iter().map(String::as_str).collect();
        let mut want: Vec<&str> = want.iter().map(|u| u.as_str()).collect();
        got.sort_unstable();
        want.sort_unstable();
        got == want
    });
    m.class == pb::MessageClass::Notification as i32
        && m.client_msg_id.is_empty()
        && m.sender == actor
        && n.kind == kind as i32
        && n.actor == actor
        && same_users
}

fn role_of(g: &pb::GroupInfo, user: &str) -> Option<i32> {
    g.members.iter().find(|m| m.user_id == user).map(|m| m.role)
}

fn joined_seq_of(g: &pb::GroupInfo, user: &str) -> Option<u64> {
    g.members
        .iter()
        .find(|m| m.user_id == user)
        .map(|m| m.joined_seq)
}

fn owners(g: &pb::GroupInfo) -> usize {
    g.members
        .iter()
        .filter(|m| m.role == pb::GroupRole::Owner as i32)
        .count()
}

/// `n` distinct fresh user ids of at least `len` bytes (at most 64): `<fresh>.<i>`, padded.
fn fresh_users(n: usize, len: usize) -> Vec<String> {
    let base = fresh("u");
    (0..n)
        .map(|i| {
            let mut u = format!("{base}.{i}");
            while u.len() < len.min(64) {
                u.push('=');
            }
            u
        })
        .collect()
}

/// Logs `user` in on `device`, announcing (and holding the suite's reading to) a max_frame_size of
/// 16384, the smallest allowed.
async fn login_small_frames(s: &ServerTarget, user: &str, device: &str) -> Result<Conn, String> {
    let mut h = hello_for(s, user, device);
    h.limits = Some(pb::Limits {
        max_frame_size: 16_384,
        ..Default::default()
    });
    let mut c = Conn::connect(s.addr).await?;
    let mut limits = magpie_wire::Limits::default();
    limits
        .set_max_frame_size(16_384)
        .map_err(|e| format!("16384 is not a valid frame limit: {e:?}"))?;
    c.set_limits(limits);
    c.handshake(&h)
        .await
        .map_err(|seen| format!("no WELCOME for {user}/{device}: {}", seen.describe()))?;
    Ok(c)
}

/// The evidence of a case: every check made, and which failed.
#[derive(Default)]
struct Checks {
    held: Vec<String>,
    failed: Vec<String>,
}

impl Checks {
    fn that(&mut self, ok: bool, what: impl Into<String>) {
        if ok {
            self.held.push(what.into());
        } else {
            self.failed.push(what.into());
        }
    }

    /// `b` is REQUEST_ERROR `want`.
    fn code(&mut self, what: &str, b: &Body, want: u32) {
        self.that(
            code(b) == Some(want),
            format!("{what}: {} (want 0x{want:X})", describe(b)),
        );
    }

    /// `b` is GROUP_REPLY with notice seq `seq`; returns it.
    fn reply(&mut self, what: &str, b: &Body, seq: u64) -> Option<pb::GroupReply> {
        let r = match b {
            Body::GroupReply(r) => Some(r.clone()),
            _ => None,
        };
        self.that(
            r.as_ref().is_some_and(|r| r.seq == seq),
            format!(
                "{what}: {} (want GROUP_REPLY seq {seq})",
                short(&describe(b), 300)
            ),
        );
        r
    }

    fn verdict(self, expected: &str) -> Verdict {
        if self.failed.is_empty() {
            Verdict::pass(
                expected,
                format!("{} checks held: {}", self.held.len(), self.held.join("; ")),
            )
        } else {
            Verdict::fail(
                expected,
                format!(
                    "{} of {} checks failed: {}",
                    self.failed.len(),
                    self.failed.len() + self.held.len(),
                    self.failed.join("; ")
                ),
            )
        }
    }
}

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "group/1.1/1",
            &["GROUP-1.1", "GROUP-2.3"],
            Level::Must,
            "A group id follows the user id rule (1 to 64 bytes of A-Z a-z 0-9 _ - . @ =) and is unique within its app; its conversation id is g: + the id. A GROUP request with a bad group id is BAD_REQUEST; create of an existing id is GROUP_EXISTS.",
            |t| async move {
                let s = server(&t);
                let (own, other) = (fresh("own"), fresh("other"));
                let exp = "create with ids \"\", \"bad id\", \"a:b\", \"caf\\u{e9}\", 65 bytes and info with \"bad id\": REQUEST_ERROR BAD_REQUEST (0x100); a 64-byte id of every allowed character class is created and its SEND acked in conversation g:<id>; create of it again (by anyone) is GROUP_EXISTS (0x10B)";
                let (mut co, _) = loginv!(s, &own, "d1");
                let (mut cx, _) = loginv!(s, &other, "d1");
                let mut ch = Checks::default();
                let base = fresh("g");
                let mut good = format!("{base}_AZaz09.@=");
                while good.len() < 64 {
                    good.push('-');
                }
                let long = format!("{good}x");
                for bad in ["", "bad id", "a:b", "caf\u{e9}", long.as_str()] {
                    let r = tryv!(
                        group(&mut co, bad, create("x", false, &[] as &[&str])).await,
                        exp
                    );
                    ch.code(&format!("create {:?}", short(bad, 20)), &r, BAD_REQUEST);
                }
                let r = tryv!(group(&mut co, "bad id", info_op()).await, exp);
                ch.code("info \"bad id\"", &r, BAD_REQUEST);
                let r = tryv!(
                    group(&mut co, &good, create("x", false, &[] as &[&str])).await,
                    exp
                );
                if let Some(reply) = ch.reply("create of the 64-byte id", &r, 1) {
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
                let again = tryv!(
                    group(&mut co, &good, create("y", true, &[] as &[&str])).await,
                    exp
                );
                ch.code("create again by the owner", &again, GROUP_EXISTS);
                let again = tryv!(
                    group(&mut cx, &good, create("y", false, &[] as &[&str])).await,
                    exp
                );
                ch.code("create again by another user", &again, GROUP_EXISTS);
                co.close().await;
                cx.close().await;
                ch.verdict(exp)
            },
        ),
        Case::new(
            "group/2.1/1",
            &["GROUP-2.1", "GROUP-1.2", "GROUP-2.3", "ERR-1.2"],
            Level::Must,
            "A GROUP without an operation is BAD_REQUEST; a name over max_group_name (default 128) is BAD_REQUEST; a bad user id in a list is INVALID_USER_ID; a request about a group that does not exist is UNKNOWN_GROUP. A request that fails has no effect.",
            |t| async move {
                let s = server(&t);
                let (own, bob, carol) = (fresh("own"), fresh("bob"), fresh("carol"));
                let exp = "GROUP without op: 0x100; create with a 129-byte name: 0x100 and no group; create naming \"bad id\": 0x102 and no group; info/join/invite of a group never created: 0x10D; a 128-byte name is accepted; invite [carol, \"bad id\"]: 0x102 and carol is no member, no notice written";
                let (mut co, _) = loginv!(s, &own, "d1");
                let mut ch = Checks::default();
                let (g1, g2, g3, nosuch) = (fresh("g"), fresh("g"), fresh("g"), fresh("g"));

                let r = tryv!(
                    co.request(Body::Group(pb::Group {
                        group_id: g1.clone(),
                        op: None
                    }))
                    .await,
                    exp
                );
                ch.code("GROUP without an operation", &r, BAD_REQUEST);
                let long_name = "n".repeat(MAX_GROUP_NAME + 1);
                let r = tryv!(
                    group(&mut co, &g1, create(&long_name, false, &[&bob])).await,
                    exp
                );
                ch.code("create with a 129-byte name", &r, BAD_REQUEST);
                let r = tryv!(group(&mut co, &g1, info_op()).await, exp);
                ch.code(
                    "info after the refused create (nothing created)",
                    &r,
                    UNKNOWN_GROUP,
                );
                let r = tryv!(
                    group(&mut co, &g2, create("ok", false, &[bob.as_str(), "bad id"])).await,
                    exp
                );
                ch.code("create naming \"bad id\"", &r, INVALID_USER_ID);
                let r = tryv!(group(&mut co, &g2, info_op()).await, exp);
                ch.code(
                    "info after the refused create (nothing created)",
                    &r,
                    UNKNOWN_GROUP,
                );
                for (what, op) in [
                    ("info", info_op()),
                    ("join", Op::Join(none())),
                    ("invite", Op::Invite(users(&[&bob]))),
                    ("dismiss", Op::Dismiss(none())),
                ] {
                    let r = tryv!(group(&mut co, &nosuch, op).await, exp);
                    ch.code(
                        &format!("{what} of a group never created"),
                        &r,
                        UNKNOWN_GROUP,
                    );
                }

                let name = "n".repeat(MAX_GROUP_NAME);
                let r = tryv!(
                    group(&mut co, &g3, create(&name, false, &[&bob])).await,
                    exp
                );
                if let Some(reply) = ch.reply("create with a 128-byte name", &r, 1) {
                    let g = reply.group.unwrap_or_default();
                    ch.that(g.name == name, format!("name kept: {} bytes", g.name.len()));
                }
                let r = tryv!(
                    group(&mut co, &g3, Op::Invite(users(&[carol.as_str(), "bad id"]))).await,
                    exp
                );
                ch.code("invite [carol, \"bad id\"]", &r, INVALID_USER_ID);
                let r = tryv!(
                    co.request(Body::Group(pb::Group {
                        group_id: g3.clone(),
                        op: None
                    }))
                    .await,
                    exp
                );
                ch.code("GROUP without an operation on a group", &r, BAD_REQUEST);
                let r = tryv!(group(&mut co, &g3, info_op()).await, exp);
                if let Some(reply) = ch.reply("info", &r, 0) {
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
                co.close().await;
                ch.verdict(exp)
            },
        ),
        member_limit_case(),
        Case::new(
            "group/1.3/2",
            &["GROUP-1.3", "GROUP-2.1"],
            Level::Must,
            "One request names at most max_group_request_users users (default 100); a longer list is BAD_REQUEST, judged before anything else in the request, and has no effect. (The case assumes the default.)",
            |t| async move {
                let s = server(&t);
                let (own, out) = (fresh("own"), fresh("out"));
                let (gid, g2, nosuch) = (fresh("g"), fresh("g"), fresh("g"));
                let exp = "create naming 100 others: accepted, member_count 101; naming 101: BAD_REQUEST (0x100) and no group; kick and reject of 101 non-members by the owner, invite of 101 by an outsider, invite of 101 with a bad id among them, kick of 101 in an unknown group: BAD_REQUEST; member_count and last_seq unchanged";
                let (mut co, _) = loginv!(s, &own, "d1");
                let (mut cx, _) = loginv!(s, &out, "d1");
                let mut ch = Checks::default();
                let names = fresh_users(MAX_REQUEST_USERS + 1, 0);
                let hundred = &names[..MAX_REQUEST_USERS];
                let r = tryv!(
                    group(&mut co, &gid, create("Hundred", false, hundred)).await,
                    exp
                );
                if let Some(reply) = ch.reply("create naming 100 others", &r, 1) {
                    let n = reply.group.map_or(0, |g| g.member_count);
                    ch.that(n == 101, format!("member_count {n} (want 101)"));
                }
                let r = tryv!(
                    group(&mut co, &g2, create("Too many", false, &names)).await,
                    exp
                );
                ch.code("create naming 101 others", &r, BAD_REQUEST);
                let r = tryv!(group(&mut co, &g2, info_op()).await, exp);
                ch.code("info after it (nothing created)", &r, UNKNOWN_GROUP);
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
                    let r = tryv!(group(conn, id, op).await, exp);
                    ch.code(what, &r, BAD_REQUEST);
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
                co.close().await;
                cx.close().await;
                ch.verdict(exp)
            },
        ),
        Case::new(
            "group/1.4/1",
            &["GROUP-1.4", "GROUP-2.3", "GROUP-3.2"],
            Level::Must,
            "A dismissed group keeps its id: it cannot be created again (GROUP_EXISTS), and every other request about it is UNKNOWN_GROUP (GROUP) or UNKNOWN_CONVERSATION (SEND, HISTORY, READ). DISMISSED goes to everyone who was a member or pending.",
            |t| async move {
                let s = server(&t);
                let (own, bob, p) = (fresh("own"), fresh("bob"), fresh("p"));
                let gid = fresh("g");
                let c = gconv(&gid);
                let exp = "private group: p's join pending (seq 2), a text (seq 3); bob dismisses: NOT_PERMITTED; owner dismisses: seq 4; member bob and pending p are pushed DISMISSED (p's stream: [2, 4]); then create (owner, bob): 0x10B; info, join, invite, dismiss: 0x10D; SEND, HISTORY, READ: 0x105";
                let (mut co, _) = loginv!(s, &own, "d1");
                let (mut cb, _) = loginv!(s, &bob, "d1");
                let (mut cp, wp) = loginv!(s, &p, "d1");
                let mut ch = Checks::default();
                tryv!(
                    group_ok(&mut co, &gid, create("Doomed", true, &[&bob]), 1).await,
                    exp
                );
                tryv!(group_ok(&mut cp, &gid, Op::Join(none()), 2).await, exp);
                tryv!(send_ack(&mut co, &c, "d-1", "last words").await, exp);
                let r = tryv!(group(&mut cb, &gid, Op::Dismiss(none())).await, exp);
                ch.code("dismiss by a member", &r, NOT_PERMITTED);
                let r = tryv!(group(&mut co, &gid, Op::Dismiss(none())).await, exp);
                ch.reply("dismiss by the owner", &r, 4);
                for (who, conn) in [("bob", &mut cb), ("pending p", &mut cp)] {
                    let got = pushed_until(conn, &c, 4).await;
                    ch.that(
                        got.iter()
                            .any(|m| m.seq == 4 && is_notice(m, Kind::Dismissed, &own, None)),
                        format!("{who} pushed {}", show_all(&got)),
                    );
                }
                let at_p = tryv!(stream(&mut cp, &wp, &c).await, exp);
                ch.that(
                    seqs(&at_p) == [2, 4] && is_notice(&at_p[1], Kind::Dismissed, &own, None),
                    format!("p's stream {}", show_all(&at_p)),
                );
                for (who, conn) in [("owner", &mut co), ("bob", &mut cb)] {
                    let r = tryv!(
                        group(conn, &gid, create("again", false, &[] as &[&str])).await,
                        exp
                    );
                    ch.code(&format!("create by {who}"), &r, GROUP_EXISTS);
                }
                for (what, op) in [
                    ("info", info_op()),
                    ("join", Op::Join(none())),
                    ("invite", Op::Invite(users(&[&bob]))),
                    ("dismiss", Op::Dismiss(none())),
                ] {
                    let r = tryv!(group(&mut co, &gid, op).await, exp);
                    ch.code(&format!("{what} by the owner"), &r, UNKNOWN_GROUP);
                }
                let r = tryv!(group(&mut cb, &gid, info_op()).await, exp);
                ch.code("info by bob", &r, UNKNOWN_GROUP);
                for (who, conn) in [("owner", &mut co), ("bob", &mut cb)] {
                    let r = tryv!(
                        conn.request(send_body(&c, "d-2", "anyone?", pb::MessageClass::Content))
                            .await,
                        exp
                    );
                    ch.code(&format!("SEND by {who}"), &r, UNKNOWN_CONVERSATION);
                    let r = tryv!(history(conn, &c, 1, false).await, exp);
                    ch.code(&format!("HISTORY by {who}"), &r, UNKNOWN_CONVERSATION);
                    let r = tryv!(read(conn, &c, 2).await, exp);
                    ch.code(&format!("READ by {who}"), &r, UNKNOWN_CONVERSATION);
                }
                for conn in [co, cb, cp] {
                    conn.close().await;
                }
                ch.verdict(exp)
            },
        ),
        Case::new(
            "group/2.3/1",
            &["GROUP-2.3", "GROUP-2.2", "GROUP-3.2"],
            Level::Must,
            "join by any user of a public group makes them a member (JOINED notice, pending not set); the notice reaches the members after the change, the new member included.",
            |t| async move {
                let s = server(&t);
                let (own, eve) = (fresh("own"), fresh("eve"));
                let gid = fresh("g");
                let c = gconv(&gid);
                let exp = "eve's join: GROUP_REPLY seq 2, pending false, member_count 2; info: eve a MEMBER with joined_seq 2; owner pushed JOINED {actor eve, users [eve]}; eve's stream holds that notice and not the CREATED before it; eve's SEND acked seq 3";
                let (mut co, _) = loginv!(s, &own, "d1");
                let (mut ce, we) = loginv!(s, &eve, "d1");
                let mut ch = Checks::default();
                tryv!(
                    group_ok(&mut co, &gid, create("Open", false, &[] as &[&str]), 1).await,
                    exp
                );
                let r = tryv!(group(&mut ce, &gid, Op::Join(none())).await, exp);
                if let Some(reply) = ch.reply("eve's join", &r, 2) {
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
                let got = pushed_until(&mut co, &c, 2).await;
                ch.that(
                    got.iter()
                        .any(|m| m.seq == 2 && is_notice(m, Kind::Joined, &eve, Some(&[&eve]))),
                    format!("owner pushed {}", show_all(&got)),
                );
                let at_eve = tryv!(stream(&mut ce, &we, &c).await, exp);
                ch.that(
                    seqs(&at_eve) == [2]
                        && is_notice(&at_eve[0], Kind::Joined, &eve, Some(&[&eve])),
                    format!("eve's stream {}", show_all(&at_eve)),
                );
                let ack = tryv!(send_ack(&mut ce, &c, "j-1", "hello").await, exp);
                ch.that(ack.seq == 3, format!("eve's SEND acked seq {}", ack.seq));
                co.close().await;
                ce.close().await;
                ch.verdict(exp)
            },
        ),
        Case::new(
            "group/2.3/2",
            &["GROUP-2.3", "GROUP-2.2", "GROUP-3.2", "GROUP-4.1"],
            Level::Must,
            "join of a private group makes the user pending (pending set, JOIN_REQUESTED, which the members and the requester receive); only the owner and admins approve (JOINED) or reject (JOIN_REJECTED); a pending user is no member; a rejected requester still learns of it and receives nothing of the group after.",
            |t| async move {
                let s = server(&t);
                let (own, bob, dan, erin) =
                    (fresh("own"), fresh("bob"), fresh("dan"), fresh("erin"));
                let gid = fresh("g");
                let c = gconv(&gid);
                let exp = "dan's join: seq 2, pending set, member_count 2; owner and bob pushed JOIN_REQUESTED {actor dan}, dan's stream holds it; dan's SEND 0x105; bob's approve 0x10A; owner's approve: seq 3, then info: no pending, dan MEMBER joined_seq 3; dan's stream gets JOINED [dan]; dan's SEND acked seq 4; erin's join seq 5 (owner's info: pending [erin]), owner's reject seq 6 (pending empty); erin's stream ends with JOIN_REJECTED [erin], erin gets nothing of seq 7; erin's SEND 0x105";
                let (mut co, _) = loginv!(s, &own, "d1");
                let (mut cb, _) = loginv!(s, &bob, "d1");
                let (mut cd, wd) = loginv!(s, &dan, "d1");
                let (mut ce, we) = loginv!(s, &erin, "d1");
                let mut ch = Checks::default();
                tryv!(
                    group_ok(&mut co, &gid, create("Closed", true, &[&bob]), 1).await,
                    exp
                );
                let r = tryv!(group(&mut cd, &gid, Op::Join(none())).await, exp);
                if let Some(reply) = ch.reply("dan's join", &r, 2) {
                    let n = reply.group.map_or(0, |g| g.member_count);
                    ch.that(
                        reply.pending && n == 2,
                        format!("pending {} member_count {n}", reply.pending),
                    );
                }
                for (who, conn) in [("owner", &mut co), ("bob", &mut cb)] {
                    let got = pushed_until(conn, &c, 2).await;
                    ch.that(
                        got.iter()
                            .any(|m| m.seq == 2 && is_notice(m, Kind::JoinRequested, &dan, None)),
                        format!("{who} pushed {}", show_all(&got)),
                    );
                }
                let r = tryv!(
                    cd.request(send_body(&c, "p-1", "early", pb::MessageClass::Content))
                        .await,
                    exp
                );
                ch.code("SEND by pending dan", &r, UNKNOWN_CONVERSATION);
                let r = tryv!(group(&mut cb, &gid, Op::Approve(users(&[&dan]))).await, exp);
                ch.code("approve by the member bob", &r, NOT_PERMITTED);
                let r = tryv!(group(&mut co, &gid, Op::Approve(users(&[&dan]))).await, exp);
                ch.reply("approve by the owner", &r, 3);
                let g = tryv!(info(&mut co, &gid).await, exp);
                ch.that(
                    g.pending.is_empty()
                        && role_of(&g, &dan) == Some(pb::GroupRole::Member as i32)
                        && joined_seq_of(&g, &dan) == Some(3),
                    format!("owner's info after the approval {}", describe_info(&g)),
                );
                let at_dan = tryv!(stream(&mut cd, &wd, &c).await, exp);
                ch.that(
                    at_dan
                        .iter()
                        .any(|m| m.seq == 2 && is_notice(m, Kind::JoinRequested, &dan, None))
                        && at_dan
                            .iter()
                            .any(|m| m.seq == 3 && is_notice(m, Kind::Joined, &own, Some(&[&dan]))),
                    format!("dan's stream {}", show_all(&at_dan)),
                );
                let r = tryv!(
                    cd.request(send_body(&c, "p-2", "hi all", pb::MessageClass::Content))
                        .await,
                    exp
                );
                ch.that(
                    matches!(&r, Body::SendAck(a) if a.seq == 4),
                    format!("dan's SEND as a member: {} (want seq 4)", describe(&r)),
                );

                let r = tryv!(group(&mut ce, &gid, Op::Join(none())).await, exp);
                if let Some(reply) = ch.reply("erin's join", &r, 5) {
                    ch.that(reply.pending, format!("erin pending {}", reply.pending));
                }
                let g = tryv!(info(&mut co, &gid).await, exp);
                ch.that(
                    g.pending == [erin.clone()],
                    format!("owner's info {}", describe_info(&g)),
                );
                let r = tryv!(group(&mut co, &gid, Op::Reject(users(&[&erin]))).await, exp);
                ch.reply("reject of erin by the owner", &r, 6);
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
                let r = tryv!(
                    ce.request(send_body(&c, "p-4", "please", pb::MessageClass::Content))
                        .await,
                    exp
                );
                ch.code("SEND by rejected erin", &r, UNKNOWN_CONVERSATION);
                for conn in [co, cb, cd, ce] {
                    conn.close().await;
                }
                ch.verdict(exp)
            },
        ),
        Case::new(
            "group/2.3/3",
            &["GROUP-2.3", "GROUP-2.1", "ERR-1.2"],
            Level::Must,
            "A request by someone the table does not allow is NOT_PERMITTED and has no effect: a member's invite to a private group, kick, approve, reject, set_role, dismiss; an admin's kick of an admin or the owner, set_role, transfer, dismiss; the owner's kick of themself and leave; any request but join and info by a non-member.",
            |t| async move {
                let s = server(&t);
                let (own, adm, adm2, m1, m2, out) = (
                    fresh("own"),
                    fresh("adm"),
                    fresh("adm2"),
                    fresh("m1"),
                    fresh("m2"),
                    fresh("out"),
                );
                let x = fresh("x");
                let gid = fresh("g");
                let c = gconv(&gid);
                let exp = "every refused request REQUEST_ERROR NOT_PERMITTED (0x10A); after them the members and roles are as before and last_seq is still 2; then the admin's invite to the private group is allowed (seq 3)";
                let (mut co, _) = loginv!(s, &own, "d1");
                let (ca, _) = loginv!(s, &adm, "d1");
                let (cm, _) = loginv!(s, &m1, "d1");
                let (cx, _) = loginv!(s, &out, "d1");
                let mut ch = Checks::default();
                tryv!(
                    group_ok(
                        &mut co,
                        &gid,
                        create("Strict", true, &[&adm, &adm2, &m1, &m2]),
                        1
                    )
                    .await,
                    exp
                );
                tryv!(
                    group_ok(
                        &mut co,
                        &gid,
                        set_role(&[&adm, &adm2], pb::GroupRole::Admin),
                        2
                    )
                    .await,
                    exp
                );
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
                    let r = tryv!(group(&mut conns[by], &gid, op).await, exp);
                    ch.code(what, &r, NOT_PERMITTED);
                }
                let r = tryv!(group(&mut conns[by_own], &gid, info_op()).await, exp);
                if let Some(reply) = ch.reply("owner's info after the refusals", &r, 0) {
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
                let r = tryv!(
                    group(&mut conns[by_adm], &gid, Op::Invite(users(&[&x]))).await,
                    exp
                );
                ch.reply("admin invites to the private group", &r, 3);
                let g = tryv!(info(&mut conns[by_own], &gid).await, exp);
                ch.that(
                    role_of(&g, &x) == Some(pb::GroupRole::Member as i32),
                    format!("owner's info after the invite {}", describe_info(&g)),
                );
                for conn in conns {
                    conn.close().await;
                }
                ch.verdict(exp)
            },
        ),
        Case::new(
            "group/2.3/4",
            &["GROUP-2.3", "GROUP-2.2", "GROUP-1.2"],
            Level::Must,
            "What the allowed operations do: any member invites to a public group; an admin kicks a member; the owner kicks an admin; set_role makes admins; transfer makes the named member owner and the old owner a member (exactly one OWNER), who may then leave; the new owner dismisses.",
            |t| async move {
                let s = server(&t);
                let (own, adm, m1, m2, x) = (
                    fresh("own"),
                    fresh("adm"),
                    fresh("m1"),
                    fresh("m2"),
                    fresh("x"),
                );
                let gid = fresh("g");
                let exp = "seqs 1..=8 for create, set_role, member's invite, admin's kick of a member, owner's kick of the admin, transfer, old owner's leave, new owner's dismiss; after each, m1's info shows the group as the change leaves it";
                let (mut co, _) = loginv!(s, &own, "d1");
                let (mut ca, _) = loginv!(s, &adm, "d1");
                let (mut cm, _) = loginv!(s, &m1, "d1");
                let mut ch = Checks::default();
                let (owner, admin, member) = (
                    Some(pb::GroupRole::Owner as i32),
                    Some(pb::GroupRole::Admin as i32),
                    Some(pb::GroupRole::Member as i32),
                );
                let r = tryv!(
                    group(&mut co, &gid, create("Public", false, &[&adm, &m1, &m2])).await,
                    exp
                );
                ch.reply("create", &r, 1);
                let g = tryv!(info(&mut cm, &gid).await, exp);
                ch.that(
                    !g.private
                        && g.owner == own
                        && owners(&g) == 1
                        && role_of(&g, &own) == owner
                        && [&adm, &m1, &m2].iter().all(|u| role_of(&g, u) == member),
                    format!("after create {}", describe_info(&g)),
                );
                let r = tryv!(
                    group(&mut co, &gid, set_role(&[&adm], pb::GroupRole::Admin)).await,
                    exp
                );
                ch.reply("owner makes adm ADMIN", &r, 2);
                let g = tryv!(info(&mut cm, &gid).await, exp);
                ch.that(
                    role_of(&g, &adm) == admin,
                    format!("after set_role {}", describe_info(&g)),
                );
                let r = tryv!(group(&mut cm, &gid, Op::Invite(users(&[&x]))).await, exp);
                ch.reply("member invites to the public group", &r, 3);
                let g = tryv!(info(&mut cm, &gid).await, exp);
                ch.that(
                    role_of(&g, &x) == member && joined_seq_of(&g, &x) == Some(3),
                    format!("after the invite {}", describe_info(&g)),
                );
                let r = tryv!(group(&mut ca, &gid, Op::Kick(users(&[&m2]))).await, exp);
                ch.reply("admin kicks a member", &r, 4);
                let g = tryv!(info(&mut cm, &gid).await, exp);
                ch.that(
                    role_of(&g, &m2).is_none() && g.member_count == 4,
                    format!("after the admin's kick {}", describe_info(&g)),
                );
                let r = tryv!(group(&mut co, &gid, Op::Kick(users(&[&adm]))).await, exp);
                ch.reply("owner kicks the admin", &r, 5);
                let g = tryv!(info(&mut cm, &gid).await, exp);
                ch.that(
                    role_of(&g, &adm).is_none() && g.member_count == 3,
                    format!("after the owner's kick {}", describe_info(&g)),
                );
                let r = tryv!(group(&mut co, &gid, transfer(&m1)).await, exp);
                if let Some(reply) = ch.reply("owner transfers to m1", &r, 6) {
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
                let r = tryv!(group(&mut co, &gid, Op::Leave(none())).await, exp);
                ch.reply("the old owner leaves", &r, 7);
                let g = tryv!(info(&mut cm, &gid).await, exp);
                ch.that(
                    g.owner == m1 && g.member_count == 2 && role_of(&g, &own).is_none(),
                    format!("after the leave {}", describe_info(&g)),
                );
                let r = tryv!(group(&mut cm, &gid, Op::Dismiss(none())).await, exp);
                ch.reply("the new owner dismisses", &r, 8);
                for conn in [co, ca, cm] {
                    conn.close().await;
                }
                ch.verdict(exp)
            },
        ),
        Case::new(
            "group/2.4/1",
            &["GROUP-2.4", "GROUP-2.2"],
            Level::Must,
            "join by a member, invite and approve of members, kick of non-members and reject of users not pending are skipped without error; a request where every listed user is skipped writes no notice and answers seq 0. approve of a user neither pending nor a member, transfer or set_role naming a non-member are NOT_PERMITTED.",
            |t| async move {
                let s = server(&t);
                let (own, bob, carol, nobody) =
                    (fresh("own"), fresh("bob"), fresh("carol"), fresh("nobody"));
                let gid = fresh("g");
                let c = gconv(&gid);
                let exp = "bob's join, invite [bob], invite [owner], approve [bob], kick [nobody], reject [nobody]: GROUP_REPLY seq 0 and last_seq stays 1; approve [nobody], transfer nobody, set_role [nobody]: 0x10A; invite [bob, carol]: seq 2, INVITED naming carol only";
                let (mut co, _) = loginv!(s, &own, "d1");
                let (mut cb, _) = loginv!(s, &bob, "d1");
                let mut ch = Checks::default();
                tryv!(
                    group_ok(&mut co, &gid, create("Same", false, &[&bob]), 1).await,
                    exp
                );
                let r = tryv!(group(&mut cb, &gid, Op::Join(none())).await, exp);
                if let Some(reply) = ch.reply("join by the member bob", &r, 0) {
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
                    let r = tryv!(group(&mut co, &gid, op).await, exp);
                    ch.reply(what, &r, 0);
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
                    let r = tryv!(group(&mut co, &gid, op).await, exp);
                    ch.code(what, &r, NOT_PERMITTED);
                }
                let r = tryv!(
                    group(&mut co, &gid, Op::Invite(users(&[&bob, &carol]))).await,
                    exp
                );
                ch.reply("invite [bob, carol]", &r, 2);
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
                co.close().await;
                cb.close().await;
                ch.verdict(exp)
            },
        ),
        Case::new(
            "group/2.5/1",
            &["GROUP-2.5", "GROUP-1.2", "GROUP-2.2"],
            Level::Must,
            "info answers every user with the group's id, name, kind, owner and member count; for a member it lists the members in the order they joined from index members_from (members_next 0 when the list is complete); for the owner and admins it also lists the pending users. A change's answer carries no lists.",
            |t| async move {
                let s = server(&t);
                let (own, adm, mem, p, out) = (
                    fresh("own"),
                    fresh("adm"),
                    fresh("mem"),
                    fresh("p"),
                    fresh("out"),
                );
                let gid = fresh("g");
                let exp = "everyone: id, name \"Secret\", private, owner, member_count 3; outsider and pending user: no members, no pending; member: [own OWNER@1, adm ADMIN@2, mem MEMBER@3] in that order, members_next 0, no pending; admin and owner: the same and pending [p]; from index 1: [adm, mem], from 2: [mem]; change replies without lists";
                let (mut co, _) = loginv!(s, &own, "d1");
                let (mut ca, _) = loginv!(s, &adm, "d1");
                let (mut cm, _) = loginv!(s, &mem, "d1");
                let (mut cp, _) = loginv!(s, &p, "d1");
                let (mut cx, _) = loginv!(s, &out, "d1");
                let mut ch = Checks::default();
                let mut replies = Vec::new();
                for (seq, op) in [
                    (1, create("Secret", true, &[] as &[&str])),
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
                for conn in [co, ca, cm, cp, cx] {
                    conn.close().await;
                }
                ch.verdict(exp)
            },
        ),
        Case::new(
            "group/2.5/2",
            &["GROUP-2.5"],
            Level::Must,
            "info lists a member as many members as fit the requester's max_frame_size, from index members_from, and sets members_next to the index of the next one (0 when the list is complete): paging from 0 yields every member once, in the order they joined.",
            |t| async move {
                let s = server(&t);
                let own = fresh("own");
                let gid = fresh("g");
                let exp = "a group of 400 members with 64-byte ids; the owner with max_frame_size 16384: at least 2 non-empty pages, each members_next the index after the page, every frame within 16384 bytes, together the 400 members once each in join order (joined_seq never decreasing); with the default frame limit: one page of 400, members_next 0";
                let (mut co, _) = loginv!(s, &own, "d1");
                let mut ch = Checks::default();
                let others = fresh_users(399, 64);
                let (first, rest) = others.split_at(MAX_REQUEST_USERS - 1);
                tryv!(
                    group_ok(&mut co, &gid, create("Big", false, first), 1).await,
                    exp
                );
                let mut seq = 1;
                for chunk in rest.chunks(MAX_REQUEST_USERS) {
                    seq += 1;
                    tryv!(
                        group_ok(&mut co, &gid, Op::Invite(users(chunk)), seq).await,
                        exp
                    );
                }
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
                co.close().await;
                ch.verdict(exp)
            },
        ),
        Case::new(
            "group/3.1/1",
            &["GROUP-3.1", "GROUP-3.2", "GROUP-2.2"],
            Level::Must,
            "Every change to a group's members or roles MUST be committed together with a notice: a stored NOTIFICATION message in the group's conversation, sent by the requester, whose content is a GroupNotice (kind, the requester as actor, the users it names, the new role or the name) and whose client_msg_id is empty; it gets the next seq like any message, and is pushed to the members like any event. Only the server writes notices: a SEND whose content is a GroupNotice is BAD_REQUEST.",
            |t| async move {
                let s = server(&t);
                let (own, bob, carol) = (fresh("own"), fresh("bob"), fresh("carol"));
                let gid = fresh("g");
                let c = gconv(&gid);
                let exp = "replies seq 1 (create), 2 is a text, 3 (invite carol), 4 (bob ADMIN), 5 (transfer to bob), 6 (carol leaves); bob is pushed and syncs seqs 1..=6 in order: CREATED{own, name \"Notices\", names bob}, the text, INVITED{own,[carol]}, ROLE_CHANGED{own,[bob],ADMIN}, OWNER_CHANGED{own,[bob]}, LEFT{carol}, every notice NOTIFICATION with empty client_msg_id sent by its actor; a SEND whose content is a GroupNotice (to the group or a user): BAD_REQUEST, nothing stored";
                let (mut cb, wb) = loginv!(s, &bob, "d1");
                let (co, _) = loginv!(s, &own, "d1");
                let (cc, _) = loginv!(s, &carol, "d1");
                let mut ch = Checks::default();
                let mut conns = [co, cc];
                let (by_own, by_carol) = (0, 1);
                let steps = [
                    ("create", by_own, create("Notices", false, &[&bob])),
                    ("invite carol", by_own, Op::Invite(users(&[&carol]))),
                    ("bob ADMIN", by_own, set_role(&[&bob], pb::GroupRole::Admin)),
                    ("transfer to bob", by_own, transfer(&bob)),
                    ("carol leaves", by_carol, Op::Leave(none())),
                ];
                let mut seq = 0;
                for (what, by, op) in steps {
                    seq += 1;
                    if seq == 2 {
                        let ack = tryv!(send_ack(&mut conns[by_own], &c, "n-1", "chat").await, exp);
                        ch.that(ack.seq == 2, format!("the text acked seq {}", ack.seq));
                        seq += 1;
                    }
                    let r = tryv!(group(&mut conns[by], &gid, op).await, exp);
                    ch.reply(what, &r, seq);
                }
                let is_created = |m: &pb::Message| {
                    is_notice(m, Kind::Created, &own, None)
                        && notice_of(m).is_some_and(|n| {
                            n.name == "Notices"
                                && n.users.contains(&bob)
                                && n.users.iter().all(|u| *u == bob || *u == own)
                        })
                };
                let is_role = |m: &pb::Message| {
                    is_notice(m, Kind::RoleChanged, &own, Some(&[&bob]))
                        && notice_of(m).is_some_and(|n| n.role == pb::GroupRole::Admin as i32)
                };
                let want = |msgs: &[pb::Message]| {
                    seqs(msgs) == [1, 2, 3, 4, 5, 6]
                        && is_created(&msgs[0])
                        && msgs[1].class == pb::MessageClass::Content as i32
                        && msgs[1].client_msg_id == "n-1"
                        && text_of(&msgs[1]) == "chat"
                        && is_notice(&msgs[2], Kind::Invited, &own, Some(&[&carol]))
                        && is_role(&msgs[3])
                        && is_notice(&msgs[4], Kind::OwnerChanged, &own, Some(&[&bob]))
                        && is_notice(&msgs[5], Kind::Left, &carol, None)
                };
                let at_bob = pushed_until(&mut cb, &c, 6).await;
                ch.that(want(&at_bob), format!("bob pushed {}", show_all(&at_bob)));
                let synced = tryv!(stream(&mut cb, &wb, &c).await, exp);
                ch.that(want(&synced), format!("bob synced {}", show_all(&synced)));
                // Only the server writes notices: a forged one is refused, to the group or a user.
                let forged = |to: &str, class: pb::MessageClass| {
                    Body::Send(pb::Send {
                        to: to.into(),
                        client_msg_id: format!("forged-{}", class as i32),
                        class: class as i32,
                        content: Some(pb::Content {
                            kind: Some(pb::content::Kind::GroupNotice(pb::GroupNotice {
                                kind: Kind::Kicked as i32,
                                actor: bob.clone(),
                                users: vec![own.clone()],
                                ..Default::default()
                            })),
                        }),
                    })
                };
                for (what, to, class) in [
                    (
                        "to the group, class NOTIFICATION",
                        c.as_str(),
                        pb::MessageClass::Notification,
                    ),
                    (
                        "to the group, class CONTENT",
                        c.as_str(),
                        pb::MessageClass::Content,
                    ),
                    ("to a user", carol.as_str(), pb::MessageClass::Notification),
                ] {
                    let r = tryv!(cb.request(forged(to, class)).await, exp);
                    ch.code(&format!("SEND of a GroupNotice {what}"), &r, BAD_REQUEST);
                }
                let last = tryv!(last_seq(&mut cb, &c).await, exp);
                ch.that(
                    last == 6,
                    format!("last_seq after the forged notices {last} (want 6)"),
                );
                cb.close().await;
                for conn in conns {
                    conn.close().await;
                }
                ch.verdict(exp)
            },
        ),
        Case::new(
            "group/3.2/1",
            &["GROUP-3.2", "GROUP-4.1", "GROUP-4.4"],
            Level::Must,
            "A notice is appended to the streams of the members after the change and of the users it names, so a kicked user and a user who left still learn of it; a user who is no longer a member receives nothing of the group after it.",
            |t| async move {
                let s = server(&t);
                let (own, bob, carol, dan) =
                    (fresh("own"), fresh("bob"), fresh("carol"), fresh("dan"));
                let gid = fresh("g");
                let c = gconv(&gid);
                let exp = "kick carol (seq 2), dan leaves (seq 3), a text (seq 4): bob's stream 1..=4; carol's stream [1, 2] ending with KICKED naming carol, and carol pushed nothing past 2; dan's stream [1, 2, 3] ending with LEFT by dan; carol's SEND and HISTORY, dan's READ: 0x105";
                let (mut co, _) = loginv!(s, &own, "d1");
                let (mut cb, wb) = loginv!(s, &bob, "d1");
                let (mut cc, wc) = loginv!(s, &carol, "d1");
                let (mut cd, wd) = loginv!(s, &dan, "d1");
                let mut ch = Checks::default();
                tryv!(
                    group_ok(
                        &mut co,
                        &gid,
                        create("Churn", false, &[&bob, &carol, &dan]),
                        1
                    )
                    .await,
                    exp
                );
                tryv!(
                    group_ok(&mut co, &gid, Op::Kick(users(&[&carol])), 2).await,
                    exp
                );
                let kicked = pushed_until(&mut cc, &c, 2).await;
                ch.that(
                    kicked
                        .iter()
                        .any(|m| m.seq == 2 && is_notice(m, Kind::Kicked, &own, Some(&[&carol]))),
                    format!("carol pushed {}", show_all(&kicked)),
                );
                tryv!(group_ok(&mut cd, &gid, Op::Leave(none()), 3).await, exp);
                let ack = tryv!(send_ack(&mut co, &c, "k-1", "after them").await, exp);
                ch.that(ack.seq == 4, format!("the text acked seq {}", ack.seq));
                let at_bob = pushed_until(&mut cb, &c, 4).await;
                ch.that(
                    seqs(&at_bob) == [1, 2, 3, 4],
                    format!("bob pushed {}", show_all(&at_bob)),
                );
                cc.drain(QUIET).await;
                cd.drain(Duration::from_millis(50)).await;
                let late = pushed(&cc, &c);
                ch.that(
                    late.iter().all(|m| m.seq <= 2),
                    format!("carol pushed after the kick {}", show_all(&late)),
                );
                let late = pushed(&cd, &c);
                ch.that(
                    late.iter().all(|m| m.seq <= 3),
                    format!("dan pushed after leaving {}", show_all(&late)),
                );
                let synced = tryv!(stream(&mut cb, &wb, &c).await, exp);
                ch.that(
                    seqs(&synced) == [1, 2, 3, 4],
                    format!("bob's stream {}", show_all(&synced)),
                );
                let synced = tryv!(stream(&mut cc, &wc, &c).await, exp);
                ch.that(
                    seqs(&synced) == [1, 2]
                        && is_notice(&synced[1], Kind::Kicked, &own, Some(&[&carol])),
                    format!("carol's stream {}", show_all(&synced)),
                );
                let synced = tryv!(stream(&mut cd, &wd, &c).await, exp);
                ch.that(
                    seqs(&synced) == [1, 2, 3] && is_notice(&synced[2], Kind::Left, &dan, None),
                    format!("dan's stream {}", show_all(&synced)),
                );
                let r = tryv!(
                    cc.request(send_body(
                        &c,
                        "k-2",
                        "let me back",
                        pb::MessageClass::Content
                    ))
                    .await,
                    exp
                );
                ch.code("SEND by kicked carol", &r, UNKNOWN_CONVERSATION);
                let r = tryv!(history(&mut cc, &c, 1, false).await, exp);
                ch.code("HISTORY by kicked carol", &r, UNKNOWN_CONVERSATION);
                let r = tryv!(read(&mut cd, &c, 4).await, exp);
                ch.code("READ by dan who left", &r, UNKNOWN_CONVERSATION);
                for conn in [co, cb, cc, cd] {
                    conn.close().await;
                }
                ch.verdict(exp)
            },
        ),
        Case::new(
            "group/4.1/1",
            &["GROUP-4.1", "GROUP-4.3", "GROUP-2.2", "GROUP-1.1"],
            Level::Must,
            "SEND to g: + id sends to the group: one stored message with one seq, acked after it and one event in the stream of every member (the sender included) are committed; a group Message carries the group's conversation id and an empty peer. Anyone but a member, and any SEND to an unknown group, is UNKNOWN_CONVERSATION and nothing is stored.",
            |t| async move {
                let s = server(&t);
                let (own, bob, carol, dave) =
                    (fresh("own"), fresh("bob"), fresh("carol"), fresh("dave"));
                let gid = fresh("g");
                let c = gconv(&gid);
                let exp = "create: seq 1, 3 members with joined_seq 1; SEND acked {g:<id>, seq 2, g:<id>/2}; bob, carol and the owner's other device are pushed seqs [1, 2] and sync each seq once, the text with sender, device, client_msg_id and empty peer; the owner's HISTORY the same; outsider dave's SEND and SEND to an unknown group: 0x105, dave pushed nothing, last_seq stays 2";
                let (mut cb, wb) = loginv!(s, &bob, "d1");
                let (mut cc, wc) = loginv!(s, &carol, "d1");
                let (mut co2, wo2) = loginv!(s, &own, "d2");
                let (mut cd, _) = loginv!(s, &dave, "d1");
                let (mut co, _) = loginv!(s, &own, "d1");
                let mut ch = Checks::default();
                let r = tryv!(
                    group(&mut co, &gid, create("Team", false, &[&bob, &carol])).await,
                    exp
                );
                if let Some(reply) = ch.reply("create", &r, 1) {
                    let g = reply.group.unwrap_or_default();
                    ch.that(
                        g.group_id == gid
                            && g.owner == own
                            && g.member_count == 3
                            && g.members.is_empty()
                            && g.pending.is_empty()
                            && !reply.pending,
                        format!("the create's answer (no lists) {}", describe_info(&g)),
                    );
                }
                let g = tryv!(info(&mut cb, &gid).await, exp);
                ch.that(
                    g.members.len() == 3 && g.members.iter().all(|m| m.joined_seq == 1),
                    format!("bob's info {}", describe_info(&g)),
                );
                let ack = tryv!(send_ack(&mut co, &c, "gm-1", "hello team").await, exp);
                ch.that(
                    ack.conversation_id == c && ack.seq == 2 && ack.message_id == format!("{c}/2"),
                    format!(
                        "ack {} seq {} id {}",
                        ack.conversation_id, ack.seq, ack.message_id
                    ),
                );
                let text_ok = |m: &pb::Message| {
                    m.seq == 2
                        && m.conversation_id == c
                        && m.message_id == format!("{c}/2")
                        && m.sender == own
                        && m.sender_device == "d1"
                        && m.client_msg_id == "gm-1"
                        && m.class == pb::MessageClass::Content as i32
                        && text_of(m) == "hello team"
                        && m.server_time_ms == ack.server_time_ms
                        && m.peer.is_empty()
                };
                let all_ok = |msgs: &[pb::Message]| {
                    seqs(msgs) == [1, 2]
                        && is_notice(&msgs[0], Kind::Created, &own, None)
                        && msgs.iter().all(|m| m.peer.is_empty())
                        && text_ok(&msgs[1])
                };
                for (who, conn, w) in [
                    ("bob", &mut cb, &wb),
                    ("carol", &mut cc, &wc),
                    ("owner/d2", &mut co2, &wo2),
                ] {
                    let got = pushed_until(conn, &c, 2).await;
                    ch.that(all_ok(&got), format!("{who} pushed {}", show_all(&got)));
                    let synced = tryv!(stream(conn, w, &c).await, exp);
                    ch.that(
                        all_ok(&synced),
                        format!("{who} synced {}", show_all(&synced)),
                    );
                }
                let h = tryv!(history(&mut co, &c, 1, false).await, exp);
                match &h {
                    Body::HistoryReply(h) => ch.that(
                        all_ok(&h.messages) && h.last_seq == 2,
                        format!(
                            "owner's HISTORY last_seq {} {}",
                            h.last_seq,
                            show_all(&h.messages)
                        ),
                    ),
                    other => ch.that(false, format!("owner's HISTORY {}", describe(other))),
                }
                let r = tryv!(
                    cd.request(send_body(
                        &c,
                        "gm-x",
                        "let me in",
                        pb::MessageClass::Content
                    ))
                    .await,
                    exp
                );
                ch.code("SEND by outsider dave", &r, UNKNOWN_CONVERSATION);
                let r = tryv!(
                    cd.request(send_body(
                        &gconv(&fresh("nosuch")),
                        "gm-y",
                        "x",
                        pb::MessageClass::Content
                    ))
                    .await,
                    exp
                );
                ch.code("SEND to an unknown group", &r, UNKNOWN_CONVERSATION);
                cd.drain(QUIET).await;
                let at_dave = pushed(&cd, &c);
                ch.that(
                    at_dave.is_empty(),
                    format!("dave pushed {}", show_all(&at_dave)),
                );
                let last = tryv!(last_seq(&mut co, &c).await, exp);
                ch.that(
                    last == 2,
                    format!("last_seq after dave's SEND {last} (want 2: nothing stored)"),
                );
                for conn in [co, co2, cb, cc, cd] {
                    conn.close().await;
                }
                ch.verdict(exp)
            },
        ),
        Case::new(
            "group/4.2/1",
            &["GROUP-4.2", "GROUP-4.3", "SYNC-6.1"],
            Level::Must,
            "TRANSIENT and STATUS messages to a group are relayed to the online devices of the other members (TRANSIENT: also to the sender's other devices), never stored; a non-member's is UNKNOWN_CONVERSATION.",
            |t| async move {
                let s = server(&t);
                let (own, bob, carol, dave) =
                    (fresh("own"), fresh("bob"), fresh("carol"), fresh("dave"));
                let gid = fresh("g");
                let c = gconv(&gid);
                let exp = "TRANSIENT: ack seq 0; one live message (g:<id>, seq 0, empty peer) at bob, carol and the owner's other device, none at the sending device or at outsider dave; STATUS: one more at bob and carol only; dave's TRANSIENT: 0x105 and relayed to nobody; last_seq stays 1, bob's stream holds only the CREATED notice";
                let (mut cb, wb) = loginv!(s, &bob, "d1");
                let (mut cc, _) = loginv!(s, &carol, "d1");
                let (mut cd, _) = loginv!(s, &dave, "d1");
                let (mut co2, _) = loginv!(s, &own, "d2");
                let (mut co, _) = loginv!(s, &own, "d1");
                let mut ch = Checks::default();
                tryv!(
                    group_ok(&mut co, &gid, create("Live", false, &[&bob, &carol]), 1).await,
                    exp
                );
                let r = tryv!(
                    co.request(send_body(&c, "t-1", "ringing", pb::MessageClass::Transient))
                        .await,
                    exp
                );
                ch.that(
                    matches!(&r, Body::SendAck(a) if a.seq == 0 && a.conversation_id == c),
                    format!("TRANSIENT {}", describe(&r)),
                );
                let r = tryv!(
                    co.request(send_body(&c, "s-1", "typing", pb::MessageClass::Status))
                        .await,
                    exp
                );
                ch.that(
                    matches!(&r, Body::SendAck(a) if a.seq == 0 && a.conversation_id == c),
                    format!("STATUS {}", describe(&r)),
                );
                let r = tryv!(
                    cd.request(send_body(&c, "t-2", "psst", pb::MessageClass::Transient))
                        .await,
                    exp
                );
                ch.code("TRANSIENT by outsider dave", &r, UNKNOWN_CONVERSATION);
                for (conn, n) in [(&mut cb, 2), (&mut cc, 2), (&mut co2, 1)] {
                    live_until(conn, &c, n).await;
                }
                // What must not come has had as long as the rest took, and a little more.
                co.drain(QUIET).await;
                cd.drain(Duration::from_millis(50)).await;
                let kinds = |conn: &Conn| {
                    live(conn, &c)
                        .iter()
                        .map(|m| {
                            let ok = m.seq == 0
                                && m.peer.is_empty()
                                && m.sender == own
                                && m.sender_device == "d1";
                            format!("{}{}", text_of(m), if ok { "" } else { "(bad fields)" })
                        })
                        .collect::<Vec<_>>()
                };
                for (who, conn, want) in [
                    ("bob", &cb, vec!["ringing", "typing"]),
                    ("carol", &cc, vec!["ringing", "typing"]),
                    ("owner/d2", &co2, vec!["ringing"]),
                    ("owner/d1 (the sender)", &co, vec![]),
                    ("dave (outsider)", &cd, vec![]),
                ] {
                    let got = kinds(conn);
                    ch.that(got == want, format!("{who} live {got:?} (want {want:?})"));
                }
                let last = tryv!(last_seq(&mut co, &c).await, exp);
                ch.that(
                    last == 1,
                    format!("last_seq {last} (want 1: nothing stored)"),
                );
                let synced = tryv!(stream(&mut cb, &wb, &c).await, exp);
                ch.that(
                    seqs(&synced) == [1],
                    format!("bob's stream {}", show_all(&synced)),
                );
                for conn in [co, co2, cb, cc, cd] {
                    conn.close().await;
                }
                ch.verdict(exp)
            },
        ),
        Case::new(
            "group/4.4/1",
            &["GROUP-4.4", "GROUP-4.1"],
            Level::Must,
            "A member sees the group's history from the seq of the notice that made them a member: HISTORY answers only messages at or above it, with visible_from that seq. HISTORY and READ of a group conversation by a non-member are UNKNOWN_CONVERSATION.",
            |t| async move {
                let s = server(&t);
                let (own, carol, dave) = (fresh("own"), fresh("carol"), fresh("dave"));
                let gid = fresh("g");
                let c = gconv(&gid);
                let exp = "texts at 2, 3; carol joins at 4; text at 5: carol's HISTORY forward from 1 and backward from the newest: seqs [4, 5], visible_from 4, last_seq 5; the owner's: [1..=5], visible_from 1; carol's READ 5: OK; outsider dave's HISTORY and READ: 0x105";
                let (mut co, _) = loginv!(s, &own, "d1");
                let (mut cc, _) = loginv!(s, &carol, "d1");
                let (mut cd, _) = loginv!(s, &dave, "d1");
                let mut ch = Checks::default();
                tryv!(
                    group_ok(&mut co, &gid, create("Late", false, &[] as &[&str]), 1).await,
                    exp
                );
                tryv!(send_ack(&mut co, &c, "h-1", "before 1").await, exp);
                tryv!(send_ack(&mut co, &c, "h-2", "before 2").await, exp);
                tryv!(group_ok(&mut cc, &gid, Op::Join(none()), 4).await, exp);
                tryv!(send_ack(&mut co, &c, "h-3", "after").await, exp);
                for (who, carols, from, backward, want, visible) in [
                    ("carol forward from 1", true, 1, false, vec![4, 5], 4),
                    (
                        "carol backward from the newest",
                        true,
                        0,
                        true,
                        vec![4, 5],
                        4,
                    ),
                    ("carol backward from 3", true, 3, true, vec![], 4),
                    (
                        "owner forward from 1",
                        false,
                        1,
                        false,
                        vec![1, 2, 3, 4, 5],
                        1,
                    ),
                ] {
                    let conn = if carols { &mut cc } else { &mut co };
                    let r = tryv!(history(conn, &c, from, backward).await, exp);
                    match &r {
                        Body::HistoryReply(h) => {
                            let mut got = seqs(&h.messages);
                            got.sort_unstable();
                            ch.that(
                                got == want && h.visible_from == visible && h.last_seq == 5,
                                format!(
                                    "{who}: seqs {got:?} visible_from {} last_seq {}",
                                    h.visible_from, h.last_seq
                                ),
                            );
                        }
                        other => ch.that(false, format!("{who}: {}", describe(other))),
                    }
                }
                let r = tryv!(read(&mut cc, &c, 5).await, exp);
                ch.that(
                    matches!(r, Body::Ok(_)),
                    format!("carol's READ 5: {}", describe(&r)),
                );
                let r = tryv!(history(&mut cd, &c, 1, false).await, exp);
                ch.code("HISTORY by outsider dave", &r, UNKNOWN_CONVERSATION);
                let r = tryv!(read(&mut cd, &c, 1).await, exp);
                ch.code("READ by outsider dave", &r, UNKNOWN_CONVERSATION);
                for conn in [co, cc, cd] {
                    conn.close().await;
                }
                ch.verdict(exp)
            },
        ),
    ]
}

/// [GROUP-1.3] at the default limit: its own function, as it builds a 3000-member group and has a
/// longer timeout.
fn member_limit_case() -> Case {
    Case::new(
        "group/1.3/1",
        &["GROUP-1.3"],
        Level::Must,
        "A group has at most max_group_members members (default 3000). A request that would take it past the limit is GROUP_FULL and changes nothing. (The case assumes the defaults: 3000 members, 100 users per request.)",
        |t| async move {
            let s = server(&t);
            let own = fresh("own");
            let gid = fresh("g");
            let exp = "the group filled to exactly 3000 members in requests of 100 users (create seq 1, invites seq 2..=30, all accepted); then invite of one more and join by an outsider: GROUP_FULL (0x10C); member_count stays 3000 and last_seq 30";
            let (mut co, _) = loginv!(s, &own, "d1");
            let (mut cx, _) = loginv!(s, &fresh("out"), "d1");
            let mut ch = Checks::default();
            let all = fresh_users(MAX_GROUP_MEMBERS, 0);
            // The owner and 99 others, then 29 invites of 100: 3000 members; one user left over.
            let (first, rest) = all.split_at(MAX_REQUEST_USERS - 1);
            let (fill, extra) = rest.split_at(MAX_GROUP_MEMBERS - MAX_REQUEST_USERS);
            tryv!(group_ok(&mut co, &gid, create("Full", false, first), 1).await, exp);
            let mut seq = 1;
            for chunk in fill.chunks(MAX_REQUEST_USERS) {
                seq += 1;
                tryv!(group_ok(&mut co, &gid, Op::Invite(users(chunk)), seq).await, exp);
            }
            let g = tryv!(info(&mut cx, &gid).await, exp);
            ch.that(g.member_count == 3000, format!("member_count when full {}", g.member_count));
            let r = tryv!(group(&mut co, &gid, Op::Invite(users(extra))).await, exp);
            ch.code("invite of one more", &r, GROUP_FULL);
            let r = tryv!(group(&mut cx, &gid, Op::Join(none())).await, exp);
            ch.code("join of the full public group by an outsider", &r, GROUP_FULL);
            let g = tryv!(info(&mut cx, &gid).await, exp);
            ch.that(
                g.member_count == 3000,
                format!("member_count after the refusals {} (want 3000)", g.member_count),
            );
            let last = tryv!(last_seq(&mut co, &gconv(&gid)).await, exp);
            ch.that(last == seq, format!("last_seq after the refusals {last} (want {seq})"));
            co.close().await;
            cx.close().await;
            ch.verdict(exp)
        },
    )
    .timeout(Duration::from_secs(30))
}
