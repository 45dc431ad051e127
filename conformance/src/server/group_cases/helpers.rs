//! What the group cases share: requests, reading answers and streams, and the checks of a case.

use std::time::Duration;

use magpie_session::{Body, pb};
use pb::group::Op;
use pb::group_notice::Kind;

use crate::ServerTarget;
use crate::case::Verdict;
use crate::conn::Conn;
use crate::server::{fresh, hello_for, messages, send_body, sync_all, text_of};

pub(super) const BAD_REQUEST: u32 = 0x100;
pub(super) const INVALID_USER_ID: u32 = 0x102;
pub(super) const UNKNOWN_CONVERSATION: u32 = 0x105;
pub(super) const NOT_PERMITTED: u32 = 0x10A;
pub(super) const GROUP_EXISTS: u32 = 0x10B;
pub(super) const GROUP_FULL: u32 = 0x10C;
pub(super) const UNKNOWN_GROUP: u32 = 0x10D;

/// The default `max_group_members` ([GROUP-1.3]); the limit case assumes it.
pub(super) const MAX_GROUP_MEMBERS: usize = 3000;
/// The default `max_group_request_users` ([GROUP-1.3]); the list length case assumes it.
pub(super) const MAX_REQUEST_USERS: usize = 100;
/// The default `max_group_name` ([GROUP-1.2]); the name case assumes it.
pub(super) const MAX_GROUP_NAME: usize = 128;

/// How long the suite waits for pushes it expects.
pub(super) const PUSHED: Duration = Duration::from_secs(3);
/// How long the suite listens for pushes that must not come.
pub(super) const QUIET: Duration = Duration::from_millis(400);

/// The conversation id of group `id` ([GROUP-1.1]).
pub(super) fn gconv(id: &str) -> String {
    format!("g:{id}")
}

pub(super) fn none() -> pb::GroupNone {
    pb::GroupNone {}
}

pub(super) fn users<S: AsRef<str>>(v: &[S]) -> pb::GroupUsers {
    pb::GroupUsers {
        users: v.iter().map(|u| u.as_ref().to_owned()).collect(),
    }
}

pub(super) fn create<S: AsRef<str>>(name: &str, private: bool, members: &[S]) -> Op {
    Op::Create(pb::GroupCreate {
        name: name.into(),
        private,
        members: users(members).users,
    })
}

pub(super) fn set_role<S: AsRef<str>>(who: &[S], role: pb::GroupRole) -> Op {
    Op::SetRole(pb::GroupSetRole {
        users: users(who).users,
        role: role as i32,
    })
}

pub(super) fn info_op() -> Op {
    info_from(0)
}

pub(super) fn info_from(members_from: u32) -> Op {
    Op::Info(pb::GroupInfoQuery { members_from })
}

pub(super) fn transfer(to: &str) -> Op {
    Op::Transfer(pb::GroupTransfer { to: to.into() })
}

/// Sends GROUP `op` on group `id` and returns the answer.
pub(super) async fn group(c: &mut Conn, id: &str, op: Op) -> Result<Body, String> {
    c.request(Body::Group(pb::Group {
        group_id: id.into(),
        op: Some(op),
    }))
    .await
}

/// A GROUP that must be answered GROUP_REPLY with notice seq `seq` (the case's setup).
pub(super) async fn group_ok(
    c: &mut Conn,
    id: &str,
    op: Op,
    seq: u64,
) -> Result<pb::GroupReply, String> {
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

/// Public group `id` created by `c` with `admin` and `others` as members (seq 1), `admin` then
/// made an admin (seq 2): the setup of the cases where roles decide.
pub(super) async fn group_with_admin(
    c: &mut Conn,
    id: &str,
    name: &str,
    admin: &String,
    others: &[&String],
) -> Result<(), String> {
    let mut members = vec![admin];
    members.extend_from_slice(others);
    group_ok(c, id, create(name, false, &members), 1).await?;
    group_ok(c, id, set_role(&[admin], pb::GroupRole::Admin), 2).await?;
    Ok(())
}

/// The group as `info` shows it to the requester ([GROUP-2.5]).
pub(super) async fn info(c: &mut Conn, id: &str) -> Result<pb::GroupInfo, String> {
    match group(c, id, info_op()).await? {
        Body::GroupReply(r) => Ok(r.group.map(|g| *g).unwrap_or_default()),
        other => Err(format!("info of {id}: {}", describe(&other))),
    }
}

pub(super) async fn history(
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

pub(super) async fn read(c: &mut Conn, conversation: &str, seq: u64) -> Result<Body, String> {
    c.request(Body::Read(pb::Read {
        conversation_id: conversation.into(),
        seq,
    }))
    .await
}

/// The conversation's `last_seq` as HISTORY tells a member.
pub(super) async fn last_seq(c: &mut Conn, conversation: &str) -> Result<u64, String> {
    match history(c, conversation, 0, true).await? {
        Body::HistoryReply(h) => Ok(h.last_seq),
        other => Err(format!(
            "HISTORY of {conversation} answered {}",
            describe(&other)
        )),
    }
}

/// The messages of `conversation` in the user's stream, pulled with SYNC from offset 0.
pub(super) async fn stream(
    c: &mut Conn,
    w: &pb::Welcome,
    conversation: &str,
) -> Result<Vec<pb::Message>, String> {
    let epoch = w.head.map(|h| h.epoch).unwrap_or(0);
    let (events, _) = sync_all(c, epoch, 0).await?;
    Ok(of(&messages(&events), conversation))
}

pub(super) fn of(msgs: &[pb::Message], conversation: &str) -> Vec<pb::Message> {
    msgs.iter()
        .filter(|m| m.conversation_id == conversation)
        .cloned()
        .collect()
}

/// The stored messages of `conversation` pushed to `c` so far.
pub(super) fn pushed(c: &Conn, conversation: &str) -> Vec<pb::Message> {
    let events: Vec<pb::Event> = c.pushes.iter().flat_map(|p| p.events.clone()).collect();
    of(&messages(&events), conversation)
}

/// Waits until `c` has been pushed stored messages of `conversation` up to seq `seq` (or
/// [`PUSHED`] passes), then returns them.
pub(super) async fn pushed_until(c: &mut Conn, conversation: &str, seq: u64) -> Vec<pb::Message> {
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
pub(super) fn live(c: &Conn, conversation: &str) -> Vec<pb::Message> {
    c.pushes
        .iter()
        .flat_map(|p| p.live.iter())
        .filter(|m| m.conversation_id == conversation)
        .cloned()
        .collect()
}

/// Waits until `c` has been pushed `n` live messages of `conversation` (or [`PUSHED`] passes).
pub(super) async fn live_until(c: &mut Conn, conversation: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + PUSHED;
    while live(c, conversation).len() < n && tokio::time::Instant::now() < deadline {
        c.drain(Duration::from_millis(50)).await;
    }
}

pub(super) fn seqs(msgs: &[pb::Message]) -> Vec<u64> {
    msgs.iter().map(|m| m.seq).collect()
}

pub(super) fn code(b: &Body) -> Option<u32> {
    match b {
        Body::RequestError(e) => Some(e.code),
        _ => None,
    }
}

pub(super) fn short(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_owned();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

pub(super) fn role_name(r: i32) -> &'static str {
    match pb::GroupRole::try_from(r) {
        Ok(pb::GroupRole::Owner) => "OWNER",
        Ok(pb::GroupRole::Admin) => "ADMIN",
        Ok(pb::GroupRole::Member) => "MEMBER",
        _ => "?",
    }
}

pub(super) fn describe_info(g: &pb::GroupInfo) -> String {
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
pub(super) fn describe(b: &Body) -> String {
    match b {
        Body::GroupReply(r) => format!(
            "GROUP_REPLY seq {} pending {} group {}",
            r.seq,
            r.pending,
            r.group
                .as_ref()
                .map_or_else(|| "none".into(), |g| describe_info(g))
        ),
        Body::RequestError(e) => format!("REQUEST_ERROR 0x{:X} {:?}", e.code, e.message),
        Body::SendAck(a) => format!("SEND_ACK {} seq {}", a.conversation_id, a.seq),
        other => short(&format!("{other:?}"), 200),
    }
}

pub(super) fn notice_of(m: &pb::Message) -> Option<&pb::GroupNotice> {
    match m.content.as_ref().and_then(|c| c.kind.as_ref()) {
        Some(pb::content::Kind::GroupNotice(n)) => Some(n),
        _ => None,
    }
}

/// A short account of a message.
pub(super) fn show(m: &pb::Message) -> String {
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

pub(super) fn show_all(msgs: &[pb::Message]) -> String {
    format!(
        "[{}]",
        msgs.iter().map(show).collect::<Vec<_>>().join(" | ")
    )
}

/// Whether `m` is the notice [GROUP-3.1] describes: class NOTIFICATION, empty client_msg_id,
/// sent by `actor`, content a `GroupNotice` of `kind` with `actor` and (if given) exactly `named`.
pub(super) fn is_notice(
    m: &pb::Message,
    kind: Kind,
    actor: &str,
    named: Option<&[&String]>,
) -> bool {
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

pub(super) fn role_of(g: &pb::GroupInfo, user: &str) -> Option<i32> {
    g.members.iter().find(|m| m.user_id == user).map(|m| m.role)
}

pub(super) fn joined_seq_of(g: &pb::GroupInfo, user: &str) -> Option<u64> {
    g.members
        .iter()
        .find(|m| m.user_id == user)
        .map(|m| m.joined_seq)
}

pub(super) fn owners(g: &pb::GroupInfo) -> usize {
    g.members
        .iter()
        .filter(|m| m.role == pb::GroupRole::Owner as i32)
        .count()
}

/// `n` distinct fresh user ids of at least `len` bytes (at most 64): `<fresh>.<i>`, padded.
pub(super) fn fresh_users(n: usize, len: usize) -> Vec<String> {
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
pub(super) async fn login_small_frames(
    s: &ServerTarget,
    user: &str,
    device: &str,
) -> Result<Conn, String> {
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
pub(super) struct Checks {
    held: Vec<String>,
    failed: Vec<String>,
}

impl Checks {
    pub(super) fn that(&mut self, ok: bool, what: impl Into<String>) {
        if ok {
            self.held.push(what.into());
        } else {
            self.failed.push(what.into());
        }
    }

    /// `b` is REQUEST_ERROR `want`.
    pub(super) fn code(&mut self, what: &str, b: &Body, want: u32) {
        self.that(
            code(b) == Some(want),
            format!("{what}: {} (want 0x{want:X})", describe(b)),
        );
    }

    /// `b` is GROUP_REPLY with notice seq `seq`; returns it.
    pub(super) fn reply(&mut self, what: &str, b: &Body, seq: u64) -> Option<pb::GroupReply> {
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

    pub(super) fn verdict(self, expected: &str) -> Verdict {
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

/// An empty user list, for a create that names nobody.
pub(super) const NOBODY: &[&str] = &[];

/// One fresh id per prefix, in order: `let [own, bob] = names(["own", "bob"]);`.
pub(super) fn names<const N: usize>(prefixes: [&str; N]) -> [String; N] {
    prefixes.map(fresh)
}

/// A fresh group id and its conversation id.
pub(super) fn new_group() -> (String, String) {
    let gid = fresh("g");
    let c = gconv(&gid);
    (gid, c)
}

/// A CONTENT SEND of `text` to `conversation`, and the answer, whatever it is.
pub(super) async fn send_text(
    c: &mut Conn,
    conversation: &str,
    client_msg_id: &str,
    text: &str,
) -> Result<Body, String> {
    c.request(send_body(
        conversation,
        client_msg_id,
        text,
        pb::MessageClass::Content,
    ))
    .await
}

impl Checks {
    /// GROUP `op` on `id` by `c` must be answered REQUEST_ERROR `want`.
    pub(super) async fn refused(
        &mut self,
        c: &mut Conn,
        id: &str,
        op: Op,
        what: &str,
        want: u32,
    ) -> Result<(), String> {
        let r = group(c, id, op).await?;
        self.code(what, &r, want);
        Ok(())
    }

    /// GROUP `op` on `id` by `c` must be answered GROUP_REPLY with notice seq `seq`; returns it.
    pub(super) async fn replied(
        &mut self,
        c: &mut Conn,
        id: &str,
        op: Op,
        what: &str,
        seq: u64,
    ) -> Result<Option<pb::GroupReply>, String> {
        let r = group(c, id, op).await?;
        Ok(self.reply(what, &r, seq))
    }

    /// `who` (on `c`) must be pushed, by seq `seq` of `conversation`, the message of seq `seq`,
    /// and `want` must hold of it.
    pub(super) async fn pushed_at(
        &mut self,
        who: &str,
        c: &mut Conn,
        conversation: &str,
        seq: u64,
        want: impl Fn(&pb::Message) -> bool,
    ) {
        let got = pushed_until(c, conversation, seq).await;
        self.that(
            got.iter().any(|m| m.seq == seq && want(m)),
            format!("{who} pushed {}", show_all(&got)),
        );
    }

    /// Closes the case's connections, then gives its verdict.
    pub(super) async fn done(
        self,
        expected: &str,
        conns: impl IntoIterator<Item = Conn>,
    ) -> Verdict {
        for c in conns {
            c.close().await;
        }
        self.verdict(expected)
    }
}

/// Creates public group `id` by `c` naming `first`, then invites `rest` in requests of
/// [`MAX_REQUEST_USERS`] users, each of which must be accepted with the next seq. Returns the
/// last seq.
pub(super) async fn fill_group(
    c: &mut Conn,
    id: &str,
    name: &str,
    first: &[String],
    rest: &[String],
) -> Result<u64, String> {
    group_ok(c, id, create(name, false, first), 1).await?;
    let mut seq = 1;
    for chunk in rest.chunks(MAX_REQUEST_USERS) {
        seq += 1;
        group_ok(c, id, Op::Invite(users(chunk)), seq).await?;
    }
    Ok(seq)
}

/// A GROUP without an operation on `id`, and the answer.
pub(super) async fn group_without_op(c: &mut Conn, id: &str) -> Result<Body, String> {
    c.request(Body::Group(pb::Group {
        group_id: id.into(),
        op: None,
    }))
    .await
}

/// Requests that are judged against the group first: info, join, invite of `user`, dismiss.
pub(super) fn about_the_group(user: &str) -> [(&'static str, Op); 4] {
    [
        ("info", info_op()),
        ("join", Op::Join(none())),
        ("invite", Op::Invite(users(&[user]))),
        ("dismiss", Op::Dismiss(none())),
    ]
}
