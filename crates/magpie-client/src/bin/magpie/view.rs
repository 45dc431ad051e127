//! The JSON-line views the CLI prints: one object per event, ack or group reply, serde-friendly.

use std::collections::BTreeMap;

use magpie_client::{Event, pb};
use serde::Serialize;

/// One line of `magpie listen`.
#[derive(Debug, Default, Serialize)]
pub(crate) struct EventView {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) conversation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sender: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sender_device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) peer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_msg_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tombstone: Option<bool>,
    /// A directed group message: the members it went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) to_members: Option<Vec<String>>,
    /// Pushed silently: the user asked not to be disturbed by the group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) silent: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) server_time_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) online: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) platform: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) at_ms: Option<u64>,
}

/// The SEND_ACK line of `magpie send`.
#[derive(Debug, Serialize)]
pub(crate) struct AckView<'a> {
    pub(crate) conversation_id: &'a str,
    pub(crate) seq: u64,
    pub(crate) message_id: &'a str,
    pub(crate) duplicate: bool,
    pub(crate) server_time_ms: u64,
    pub(crate) client_msg_id: &'a str,
}

/// The GROUP_REPLY line of `magpie group`.
#[derive(Debug, Serialize)]
pub(crate) struct GroupReplyView<'a> {
    /// `g:` + the group id: where `magpie send --to` sends to the group.
    pub(crate) conversation_id: String,
    pub(crate) group: GroupInfoView<'a>,
    /// The seq of the notice the request wrote; 0 if it wrote none.
    pub(crate) seq: u64,
    /// A join request was recorded and waits for approval.
    pub(crate) pending: bool,
}

/// A group as GROUP_REPLY describes it.
#[derive(Debug, Serialize)]
pub(crate) struct GroupInfoView<'a> {
    pub(crate) group_id: &'a str,
    pub(crate) name: &'a str,
    pub(crate) private: bool,
    pub(crate) owner: &'a str,
    pub(crate) member_count: u32,
    /// `info` only, for members only: a page of the members.
    pub(crate) members: Vec<MemberView<'a>>,
    /// `info` only, for the owner and admins only.
    pub(crate) pending: &'a [String],
    pub(crate) dismissed: bool,
    /// Muted as a whole: only the owner, the admins and the speaking list send.
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) muted_all: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub(crate) avatar_url: &'a str,
    /// `info` only, for members only, like the attributes.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub(crate) announcement: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) attributes: &'a BTreeMap<String, String>,
    /// More members follow from this index (0: the page ends the list).
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) members_next: u32,
    /// `mine` only: the user's role in the group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) role: Option<&'static str>,
    /// `mine` only: the user asked not to be disturbed by the group.
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) do_not_disturb: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One member of a group.
#[derive(Debug, Serialize)]
pub(crate) struct MemberView<'a> {
    pub(crate) user_id: &'a str,
    pub(crate) role: &'static str,
    /// The seq of the notice that made them a member: their history starts there.
    pub(crate) joined_seq: u64,
    /// When their mute ends (ms since the Unix epoch); absent when they are not muted.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub(crate) muted_until_ms: u64,
    /// May send while the group is muted as a whole.
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) speaking_allowed: bool,
    /// Your own entry only: you asked not to be disturbed by the group.
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) do_not_disturb: bool,
}

/// The lowercase role name.
pub(crate) fn role_name(role: i32) -> &'static str {
    match pb::GroupRole::try_from(role) {
        Ok(pb::GroupRole::Owner) => "owner",
        Ok(pb::GroupRole::Admin) => "admin",
        Ok(pb::GroupRole::Member) => "member",
        Ok(pb::GroupRole::Unspecified) | Err(_) => "unspecified",
    }
}

/// The view of a GROUP_REPLY.
pub(crate) fn group_reply_view(reply: &pb::GroupReply) -> GroupReplyView<'_> {
    static NONE: pb::GroupInfo = pb::GroupInfo {
        group_id: String::new(),
        name: String::new(),
        private: false,
        owner: String::new(),
        member_count: 0,
        members: Vec::new(),
        pending: Vec::new(),
        dismissed: false,
        members_next: 0,
        muted_all: false,
        avatar_url: String::new(),
        announcement: String::new(),
        attributes: BTreeMap::new(),
        role: 0,
        do_not_disturb: false,
    };
    let g = reply.group.as_deref().unwrap_or(&NONE);
    GroupReplyView {
        conversation_id: format!("g:{}", g.group_id),
        group: group_info_view(g),
        seq: reply.seq,
        pending: reply.pending,
    }
}

/// The view of one group.
fn group_info_view(g: &pb::GroupInfo) -> GroupInfoView<'_> {
    GroupInfoView {
        group_id: &g.group_id,
        name: &g.name,
        private: g.private,
        owner: &g.owner,
        member_count: g.member_count,
        members: g
            .members
            .iter()
            .map(|m| MemberView {
                user_id: &m.user_id,
                role: role_name(m.role),
                joined_seq: m.joined_seq,
                muted_until_ms: m.muted_until_ms,
                speaking_allowed: m.speaking_allowed,
                do_not_disturb: m.do_not_disturb,
            })
            .collect(),
        pending: &g.pending,
        dismissed: g.dismissed,
        muted_all: g.muted_all,
        avatar_url: &g.avatar_url,
        announcement: &g.announcement,
        attributes: &g.attributes,
        members_next: g.members_next,
        role: (g.role != 0).then(|| role_name(g.role)),
        do_not_disturb: g.do_not_disturb,
    }
}

/// The line of `magpie group mine`: a page of the user's groups.
#[derive(Debug, Serialize)]
pub(crate) struct MineView<'a> {
    pub(crate) groups: Vec<GroupInfoView<'a>>,
    /// Pass as `--after` for the rest; absent when the list is complete.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub(crate) next: &'a str,
}

/// The view of a GROUP_REPLY to `mine`.
pub(crate) fn mine_view(reply: &pb::GroupReply) -> MineView<'_> {
    MineView {
        groups: reply.groups.iter().map(group_info_view).collect(),
        next: &reply.next,
    }
}

/// The lowercase class name.
pub(crate) fn class_name(class: i32) -> &'static str {
    match pb::MessageClass::try_from(class) {
        Ok(pb::MessageClass::Content) => "content",
        Ok(pb::MessageClass::Notification) => "notification",
        Ok(pb::MessageClass::Command) => "command",
        Ok(pb::MessageClass::Transient) => "transient",
        Ok(pb::MessageClass::Status) => "status",
        Err(_) => "unknown",
    }
}

fn platform_name(platform: i32) -> &'static str {
    magpie_client::Platform::from_proto_i32(platform).map_or("unspecified", |p| p.as_str())
}

fn media(kind: &str, m: &pb::Media) -> String {
    let mut s = format!("{kind} {}", m.url);
    if !m.mime.is_empty() {
        s.push_str(&format!(" ({}", m.mime));
        if m.size > 0 {
            s.push_str(&format!(", {} bytes", m.size));
        }
        s.push(')');
    }
    s
}

/// The text of a text message, or a one-line summary of other content.
pub(crate) fn content_summary(content: Option<&pb::Content>) -> (Option<String>, Option<String>) {
    use pb::content::Kind;
    match content.and_then(|c| c.kind.as_ref()) {
        Some(Kind::Text(t)) => (Some(t.text.clone()), None),
        Some(Kind::Image(m)) => (None, Some(media("image", m))),
        Some(Kind::Voice(m)) => (None, Some(media("voice", m))),
        Some(Kind::Video(m)) => (None, Some(media("video", m))),
        Some(Kind::File(m)) => (None, Some(media("file", m))),
        Some(Kind::Location(l)) => (
            None,
            Some(format!(
                "location {},{} {}",
                l.latitude, l.longitude, l.title
            )),
        ),
        Some(Kind::Custom(c)) => (
            None,
            Some(format!("custom {} ({} bytes)", c.r#type, c.data.len())),
        ),
        Some(Kind::GroupNotice(n)) => (None, Some(notice_summary(n))),
        None => (None, None),
    }
}

/// A group notice in one line: "group: alice invited bob, carol".
fn notice_summary(n: &pb::GroupNotice) -> String {
    use pb::group_notice::Kind;
    let users = n.users.join(", ");
    let what = match Kind::try_from(n.kind).unwrap_or(Kind::Unspecified) {
        Kind::Created => format!("created {:?} with {users}", n.name),
        Kind::Joined if n.users.as_slice() == std::slice::from_ref(&n.actor) => "joined".to_owned(),
        Kind::Joined => format!("let {users} in"),
        Kind::JoinRequested => "asked to join".to_owned(),
        Kind::JoinRejected => format!("turned down {users}"),
        Kind::Invited => format!("invited {users}"),
        Kind::Kicked => format!("removed {users}"),
        Kind::Left => "left".to_owned(),
        Kind::OwnerChanged => format!("made {users} the owner"),
        Kind::RoleChanged => {
            let role = pb::GroupRole::try_from(n.role).map_or("?", |r| r.as_str_name());
            format!("made {users} {role}")
        }
        Kind::Dismissed => "dismissed the group".to_owned(),
        Kind::Muted if n.muted_until_ms == 0 => format!("unmuted {users}"),
        Kind::Muted => format!("muted {users} until {} UTC", clock(n.muted_until_ms)),
        Kind::MutedAll => "muted the group".to_owned(),
        Kind::UnmutedAll => "unmuted the group".to_owned(),
        Kind::SpeakingAllowed => format!("let {users} speak while the group is muted"),
        Kind::SpeakingDisallowed => format!("took {users} off the speaking list"),
        Kind::InfoChanged if n.name.is_empty() => format!("changed the {}", n.fields.join(", ")),
        Kind::InfoChanged => format!("changed the {} (name: {:?})", n.fields.join(", "), n.name),
        Kind::Unspecified => format!("changed the group ({})", n.kind),
    };
    format!("group: {} {what}", n.actor)
}

fn message_view(kind: &'static str, offset: Option<u64>, m: &pb::Message) -> EventView {
    let (text, content) = content_summary(m.content.as_ref());
    EventView {
        kind,
        offset,
        conversation_id: Some(m.conversation_id.clone()),
        seq: Some(m.seq),
        message_id: (!m.message_id.is_empty()).then(|| m.message_id.clone()),
        sender: Some(m.sender.clone()),
        sender_device: Some(m.sender_device.clone()),
        peer: (!m.peer.is_empty()).then(|| m.peer.clone()),
        client_msg_id: Some(m.client_msg_id.clone()),
        class: Some(class_name(m.class)),
        text,
        content,
        tombstone: m.tombstone.then_some(true),
        to_members: (!m.to_members.is_empty()).then(|| m.to_members.clone()),
        server_time_ms: Some(m.server_time_ms),
        ..EventView::default()
    }
}

/// The view of an event the CLI prints; `None` for connection events (logged instead).
pub(crate) fn event_view(event: &Event) -> Option<EventView> {
    Some(match event {
        Event::Message(m) => EventView {
            silent: m.silent.then_some(true),
            ..message_view("message", Some(m.offset), m)
        },
        Event::Live(m) => message_view("live", None, m),
        Event::Read(r) => EventView {
            kind: "read",
            offset: Some(r.offset),
            conversation_id: Some(r.conversation_id.clone()),
            seq: Some(r.seq),
            device_id: Some(r.device_id.clone()),
            ..EventView::default()
        },
        Event::Presence(p) => EventView {
            kind: "presence",
            user_id: Some(p.user_id.clone()),
            online: Some(p.online),
            platform: Some(platform_name(p.platform)),
            at_ms: Some(p.at_ms),
            ..EventView::default()
        },
        Event::Reset => EventView {
            kind: "reset",
            ..EventView::default()
        },
        Event::Connected { .. } | Event::Disconnected { .. } => return None,
    })
}

/// `HH:MM:SS` (UTC) of a time in milliseconds since the Unix epoch.
pub(crate) fn clock(ms: u64) -> String {
    let secs = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}",
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use magpie_client::Stored;

    #[test]
    fn message_line() {
        let event = Event::Message(Stored {
            silent: false,
            offset: 4,
            item: pb::Message {
                conversation_id: "d:alice:bob".into(),
                seq: 2,
                message_id: "d:alice:bob/2".into(),
                sender: "alice".into(),
                sender_device: "phone".into(),
                client_msg_id: "c1".into(),
                server_time_ms: 1000,
                content: Some(magpie_client::text("hi")),
                ..Default::default()
            },
        });
        let line = serde_json::to_string(&event_view(&event).expect("printed")).expect("json");
        assert_eq!(
            line,
            r#"{"type":"message","offset":4,"conversation_id":"d:alice:bob","seq":2,"message_id":"d:alice:bob/2","sender":"alice","sender_device":"phone","client_msg_id":"c1","class":"content","text":"hi","server_time_ms":1000}"#
        );
    }

    #[test]
    fn group_reply_line() {
        let reply = pb::GroupReply {
            group: Some(Box::new(pb::GroupInfo {
                group_id: "team".into(),
                name: "The team".into(),
                owner: "alice".into(),
                member_count: 2,
                members: vec![
                    pb::GroupMember {
                        user_id: "alice".into(),
                        role: pb::GroupRole::Owner as i32,
                        joined_seq: 1,
                        ..Default::default()
                    },
                    pb::GroupMember {
                        user_id: "bob".into(),
                        role: pb::GroupRole::Member as i32,
                        joined_seq: 1,
                        muted_until_ms: 1_767_225_600_000,
                        speaking_allowed: true,
                        do_not_disturb: false,
                    },
                ],
                muted_all: true,
                ..Default::default()
            })),
            seq: 1,
            pending: false,
            ..Default::default()
        };
        let line = serde_json::to_string(&group_reply_view(&reply)).expect("json");
        assert_eq!(
            line,
            r#"{"conversation_id":"g:team","group":{"group_id":"team","name":"The team","private":false,"owner":"alice","member_count":2,"members":[{"user_id":"alice","role":"owner","joined_seq":1},{"user_id":"bob","role":"member","joined_seq":1,"muted_until_ms":1767225600000,"speaking_allowed":true}],"pending":[],"dismissed":false,"muted_all":true},"seq":1,"pending":false}"#
        );
    }

    #[test]
    fn clock_is_utc() {
        assert_eq!(clock(1_767_225_600_000 + 3_723_000), "01:02:03");
    }
}
