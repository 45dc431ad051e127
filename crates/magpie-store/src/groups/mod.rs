//! Groups (`spec/groups.md`): the record the store keeps per group, the operations on it, and the
//! rules of who may do what.
//!
//! The rules live here, in a pure function (`rules::plan`), rather than in the server, because a
//! change must be judged against the group as the write transaction sees it: two admins kicking
//! and inviting at once, or a kick racing a SEND, are ordered by the store's writer and judged
//! one after the other, never against a stale copy.

mod codec;
mod rules;

use std::collections::BTreeMap;

pub(crate) use codec::{decode, encode};
pub(crate) use rules::plan;

/// A member's role ([GROUP-1.2]). The numbers are those of `GroupRole` in the `.proto` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupRole {
    /// May send, leave, and invite to a public group.
    Member = 1,
    /// Also invites, approves, rejects and kicks members.
    Admin = 2,
    /// Exactly one per group: everything, and nobody kicks them.
    Owner = 3,
}

impl GroupRole {
    /// The role of its stored number, `None` for a number that is no role.
    pub(crate) fn from_u8(n: u8) -> Option<Self> {
        match n {
            1 => Some(GroupRole::Member),
            2 => Some(GroupRole::Admin),
            3 => Some(GroupRole::Owner),
            _ => None,
        }
    }
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The user.
    pub user: String,
    /// Their role.
    pub role: GroupRole,
    /// The seq of the notice that made them a member: their history starts here ([GROUP-4.4]).
    pub joined_seq: u64,
    /// When their mute ends (ms since the Unix epoch); 0 if they were never muted or it was
    /// lifted ([GROUP-1.5]). A past time is an ended mute.
    pub muted_until_ms: u64,
    /// On the speaking list: may send while the group is muted as a whole ([GROUP-1.5]).
    pub speaking_allowed: bool,
    /// Asked not to be disturbed by the group: their pushes are silent ([GROUP-1.7]).
    pub do_not_disturb: bool,
}

impl GroupMember {
    /// A new member with `role`, unmuted and off the speaking list ([GROUP-1.5]).
    pub fn new(user: impl Into<String>, role: GroupRole) -> Self {
        Self {
            user: user.into(),
            role,
            joined_seq: 0,
            muted_until_ms: 0,
            speaking_allowed: false,
            do_not_disturb: false,
        }
    }

    /// Whether their mute lasts at `now_ms`.
    pub fn is_muted(&self, now_ms: u64) -> bool {
        self.muted_until_ms > now_ms
    }
}

/// A group as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupRecord {
    /// Its name.
    pub name: String,
    /// Joining needs approval.
    pub private: bool,
    /// Dismissed: the id stays taken and nothing else is allowed ([GROUP-1.4]).
    pub dismissed: bool,
    /// The members, in the order they joined; exactly one is the owner.
    pub members: Vec<GroupMember>,
    /// Users whose join request waits for approval.
    pub pending: Vec<String>,
    /// Muted as a whole: only the owner, the admins and the speaking list send ([GROUP-4.5]).
    pub muted_all: bool,
    /// The avatar URL ([GROUP-1.6]).
    pub avatar_url: String,
    /// The announcement ([GROUP-1.6]).
    pub announcement: String,
    /// The attributes, by key ([GROUP-1.6]).
    pub attributes: BTreeMap<String, String>,
}

impl GroupRecord {
    /// The member record of `user`, if they are a member.
    pub fn member(&self, user: &str) -> Option<&GroupMember> {
        self.members.iter().find(|m| m.user == user)
    }

    /// The owner's user id.
    pub fn owner(&self) -> &str {
        self.members
            .iter()
            .find(|m| m.role == GroupRole::Owner)
            .map_or("", |m| m.user.as_str())
    }

    fn role_of(&self, user: &str) -> Option<GroupRole> {
        self.member(user).map(|m| m.role)
    }

    /// Whether `user` waits for approval to join.
    pub fn is_pending(&self, user: &str) -> bool {
        self.pending.iter().any(|p| p == user)
    }

    /// Whether `member` may send at `now_ms` ([GROUP-4.5]).
    pub fn may_speak(&self, member: &GroupMember, now_ms: u64) -> bool {
        self.silence(member, now_ms).is_none()
    }

    /// Why `member` may not send at `now_ms` ([GROUP-4.5]), `None` if they may: their own mute,
    /// or the group muted as a whole while they are neither the owner, an admin nor on the
    /// speaking list.
    pub fn silence(&self, member: &GroupMember, now_ms: u64) -> Option<Silence> {
        if member.is_muted(now_ms) {
            return Some(Silence::Muted {
                until_ms: member.muted_until_ms,
            });
        }
        let spared =
            member.speaking_allowed || matches!(member.role, GroupRole::Owner | GroupRole::Admin);
        (self.muted_all && !spared).then_some(Silence::GroupMuted)
    }
}

/// Why a member may not send now ([GROUP-4.5]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silence {
    /// Their own mute, until then (ms since the Unix epoch).
    Muted {
        /// When it ends.
        until_ms: u64,
    },
    /// The group is muted as a whole.
    GroupMuted,
}

/// An operation on a group ([GROUP-2.3]); `info` is a read, not a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOp {
    /// A new group owned by the actor, with these other members.
    Create {
        /// Its name.
        name: String,
        /// Joining needs approval.
        private: bool,
        /// Members besides the owner.
        members: Vec<String>,
    },
    /// The actor joins (or asks to, in a private group).
    Join,
    /// The users become members.
    Invite(Vec<String>),
    /// The pending users become members.
    Approve(Vec<String>),
    /// The pending users stop being pending.
    Reject(Vec<String>),
    /// The users stop being members.
    Kick(Vec<String>),
    /// The actor stops being a member.
    Leave,
    /// The member becomes owner; the old owner a member.
    Transfer(String),
    /// The members get the role (admin or member).
    SetRole(Vec<String>, GroupRole),
    /// The group ends.
    Dismiss,
    /// The members are muted for `duration_ms` from the commit's time; 0 lifts their mute.
    Mute(Vec<String>, u64),
    /// The group is muted as a whole (`true`) or no longer.
    MuteAll(bool),
    /// The members join the speaking list (`true`) or leave it.
    AllowSpeaking(Vec<String>, bool),
    /// The profile changes ([GROUP-1.6]).
    SetInfo(InfoChange),
    /// The actor's own do-not-disturb is set (`true`) or cleared ([GROUP-1.7]).
    DoNotDisturb(bool),
}

/// A change of a group's profile: the fields given change, the rest stay ([GROUP-1.6]). The
/// server checks each value's size; the store judges the attribute count on the result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InfoChange {
    /// A new name.
    pub name: Option<String>,
    /// A new avatar URL.
    pub avatar_url: Option<String>,
    /// A new announcement.
    pub announcement: Option<String>,
    /// Attributes added or replaced.
    pub set_attributes: BTreeMap<String, String>,
    /// Keys of attributes removed, after `set_attributes`.
    pub remove_attributes: Vec<String>,
    /// The most attributes the group may have after the change.
    pub max_attributes: usize,
}

impl GroupOp {
    /// The user ids the operation names.
    pub fn users(&self) -> &[String] {
        match self {
            GroupOp::Create { members, .. } => members,
            GroupOp::Invite(u)
            | GroupOp::Approve(u)
            | GroupOp::Reject(u)
            | GroupOp::Kick(u)
            | GroupOp::SetRole(u, _)
            | GroupOp::Mute(u, _)
            | GroupOp::AllowSpeaking(u, _) => u,
            GroupOp::Transfer(u) => std::slice::from_ref(u),
            GroupOp::Join
            | GroupOp::Leave
            | GroupOp::Dismiss
            | GroupOp::MuteAll(_)
            | GroupOp::SetInfo(_)
            | GroupOp::DoNotDisturb(_) => &[],
        }
    }
}

/// What a notice says happened ([GROUP-3.1]). The numbers are those of `GroupNotice.Kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// The group was created with `users` as members.
    Created = 1,
    /// `users` became members (by joining, or by the actor's approval).
    Joined = 2,
    /// The actor asked to join.
    JoinRequested = 3,
    /// The actor turned down `users`' requests.
    JoinRejected = 4,
    /// The actor added `users`.
    Invited = 5,
    /// The actor removed `users`.
    Kicked = 6,
    /// The actor left.
    Left = 7,
    /// `users[0]` is the new owner.
    OwnerChanged = 8,
    /// `users` got `role`.
    RoleChanged = 9,
    /// The group ended.
    Dismissed = 10,
    /// `users` are muted until `muted_until_ms` (0: their mute was lifted).
    Muted = 11,
    /// The group was muted as a whole.
    MutedAll = 12,
    /// The group is no longer muted as a whole.
    UnmutedAll = 13,
    /// `users` joined the speaking list.
    SpeakingAllowed = 14,
    /// `users` left the speaking list.
    SpeakingDisallowed = 15,
    /// The profile changed: `fields` name what, `name` is the new name if it changed.
    InfoChanged = 16,
}

/// The content of a notice, for the server to render into the wire's `GroupNotice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupNotice {
    /// What happened.
    pub kind: NoticeKind,
    /// Who did it.
    pub actor: String,
    /// Whom it names.
    pub users: Vec<String>,
    /// For [`NoticeKind::RoleChanged`].
    pub role: Option<GroupRole>,
    /// For [`NoticeKind::Created`].
    pub name: String,
    /// For [`NoticeKind::Muted`]: when the mute ends, 0 when it was lifted.
    pub muted_until_ms: u64,
    /// For [`NoticeKind::InfoChanged`]: the fields that changed (`name`, `avatar_url`,
    /// `announcement`, `attributes`).
    pub fields: Vec<&'static str>,
}

/// Why a group operation was refused; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupDenied {
    /// The actor's role does not allow it (the text says what).
    NotPermitted(String),
    /// `create` of an id already taken.
    Exists,
    /// Past the member limit (members or pending).
    Full {
        /// The limit.
        limit: usize,
    },
    /// No such group, or it was dismissed.
    Unknown,
    /// The change would leave more attributes than allowed ([GROUP-1.6]).
    TooManyAttributes {
        /// The limit.
        limit: usize,
    },
}
