//! `magpie group`: one operation on a group (`spec/groups.md`), printed as the GROUP_REPLY's JSON
//! line (the group as it is after the request, the seq of the notice it wrote, and whether a join
//! request waits for approval).

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use magpie_client::{Client, InitialSync, pb};

use crate::{CliError, ConnectArgs, options, print_line, view, within};

/// `magpie group OPERATION`.
#[derive(Debug, Args)]
pub(crate) struct GroupArgs {
    #[command(subcommand)]
    op: GroupCommand,
}

/// What every operation takes: where to connect, how long to wait, and the group.
#[derive(Debug, Args)]
struct Target {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// The group id (its conversation is `g:<group>`; a leading `g:` is accepted).
    group: String,
}

/// `magpie group mine`: a page of the user's groups.
#[derive(Debug, Args)]
struct MineArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Continue after this group id.
    #[arg(long, default_value = "")]
    after: String,
    /// At most this many (at most 100).
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

/// Users an operation names.
#[derive(Debug, Args)]
struct Users {
    #[command(flatten)]
    target: Target,
    /// User ids.
    #[arg(required = true, num_args = 1..)]
    users: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Role {
    Admin,
    Member,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// Create a group owned by you, with the listed users as members.
    Create {
        #[command(flatten)]
        target: Target,
        /// The group's name (default: the group id).
        #[arg(long)]
        name: Option<String>,
        /// Joining needs an owner's or admin's approval.
        #[arg(long)]
        private: bool,
        /// Members besides you.
        #[arg(num_args = 0..)]
        members: Vec<String>,
    },
    /// Join: a public group at once, a private one once approved (`"pending": true`).
    Join(Target),
    /// Make the listed users members (owner, admins; any member of a public group).
    Invite(Users),
    /// Let the listed pending users in (owner, admins).
    Approve(Users),
    /// Turn down the listed pending users (owner, admins).
    Reject(Users),
    /// Remove the listed users (owner; admins remove members only).
    Kick(Users),
    /// Leave the group (the owner transfers it or dismisses it instead).
    Leave(Target),
    /// Hand the group to a member, who becomes the owner; you become a member (owner).
    Transfer {
        #[command(flatten)]
        target: Target,
        /// The new owner.
        to: String,
    },
    /// Make the listed members admins or members (owner).
    SetRole {
        #[command(flatten)]
        target: Target,
        /// The new role.
        #[arg(value_enum)]
        role: Role,
        /// Member ids.
        #[arg(required = true, num_args = 1..)]
        users: Vec<String>,
    },
    /// End the group; its id cannot be used again (owner).
    Dismiss(Target),
    /// Mute the listed members for a while (owner; admins mute members only).
    Mute {
        #[command(flatten)]
        target: Target,
        /// How long, in seconds (at most the server's `max_group_mute_secs`, 30 days by
        /// default).
        #[arg(long = "for", value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..))]
        secs: u32,
        /// Member ids.
        #[arg(required = true, num_args = 1..)]
        users: Vec<String>,
    },
    /// Lift the listed members' mutes (owner; admins for members only).
    Unmute(Users),
    /// Mute the group as a whole: only the owner, admins and the speaking list send (owner,
    /// admins).
    MuteAll(Target),
    /// Lift the mute of the group as a whole (owner, admins).
    UnmuteAll(Target),
    /// Let the listed members speak while the group is muted (owner, admins).
    AllowSpeaking(Users),
    /// Take the listed members off the speaking list (owner, admins).
    DisallowSpeaking(Users),
    /// Ask not to be disturbed by the group: its messages still come, pushed silently (any
    /// member, for yourself).
    DoNotDisturb {
        #[command(flatten)]
        target: Target,
        /// Be disturbed again.
        #[arg(long)]
        off: bool,
    },
    /// Change the group's profile: only the options given change (owner, admins).
    SetInfo {
        #[command(flatten)]
        target: Target,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// A new avatar URL ("" clears it).
        #[arg(long)]
        avatar_url: Option<String>,
        /// A new announcement ("" clears it).
        #[arg(long)]
        announcement: Option<String>,
        /// Set an attribute (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = key_value)]
        set: Vec<(String, String)>,
        /// Remove an attribute (repeatable).
        #[arg(long = "remove", value_name = "KEY")]
        remove: Vec<String>,
    },
    /// List your groups, a page at a time: `next`, when given, is the `--after` of the rest.
    Mine(MineArgs),
    /// Show the group: members for members, pending requests for the owner and admins. A page
    /// that does not end the member list gives `members_next`, to pass as `--members-from`.
    Info {
        #[command(flatten)]
        target: Target,
        /// The index of the first member to list.
        #[arg(long, default_value_t = 0)]
        members_from: u32,
    },
}

impl GroupCommand {
    /// The request's target and its operation.
    fn into_request(self) -> (Target, pb::group::Op) {
        use pb::group::Op;
        let users = |u: Users, op: fn(pb::GroupUsers) -> Op| {
            (u.target, op(pb::GroupUsers { users: u.users }))
        };
        match self {
            GroupCommand::Create {
                target,
                name,
                private,
                members,
            } => {
                let name = name.unwrap_or_else(|| group_id(&target.group).to_owned());
                let create = pb::GroupCreate {
                    name,
                    private,
                    members,
                };
                (target, Op::Create(create))
            }
            GroupCommand::Join(target) => (target, Op::Join(pb::GroupNone {})),
            GroupCommand::Invite(u) => users(u, Op::Invite),
            GroupCommand::Approve(u) => users(u, Op::Approve),
            GroupCommand::Reject(u) => users(u, Op::Reject),
            GroupCommand::Kick(u) => users(u, Op::Kick),
            GroupCommand::Leave(target) => (target, Op::Leave(pb::GroupNone {})),
            GroupCommand::Transfer { target, to } => {
                (target, Op::Transfer(pb::GroupTransfer { to }))
            }
            GroupCommand::SetRole {
                target,
                role,
                users,
            } => {
                let role = match role {
                    Role::Admin => pb::GroupRole::Admin,
                    Role::Member => pb::GroupRole::Member,
                };
                let set = pb::GroupSetRole {
                    users,
                    role: role as i32,
                };
                (target, Op::SetRole(set))
            }
            GroupCommand::Dismiss(target) => (target, Op::Dismiss(pb::GroupNone {})),
            GroupCommand::Mute {
                target,
                secs,
                users,
            } => {
                let mute = pb::GroupMute {
                    users,
                    duration_secs: secs,
                };
                (target, Op::Mute(mute))
            }
            GroupCommand::Unmute(u) => {
                let mute = pb::GroupMute {
                    users: u.users,
                    duration_secs: 0,
                };
                (u.target, Op::Mute(mute))
            }
            GroupCommand::MuteAll(target) => (target, Op::MuteAll(pb::GroupMuteAll { on: true })),
            GroupCommand::UnmuteAll(target) => {
                (target, Op::MuteAll(pb::GroupMuteAll { on: false }))
            }
            GroupCommand::AllowSpeaking(u) => {
                let allow = pb::GroupAllowSpeaking {
                    users: u.users,
                    allowed: true,
                };
                (u.target, Op::AllowSpeaking(allow))
            }
            GroupCommand::DisallowSpeaking(u) => {
                let allow = pb::GroupAllowSpeaking {
                    users: u.users,
                    allowed: false,
                };
                (u.target, Op::AllowSpeaking(allow))
            }
            GroupCommand::DoNotDisturb { target, off } => {
                let dnd = pb::GroupDoNotDisturb { on: !off };
                (target, Op::DoNotDisturb(dnd))
            }
            GroupCommand::SetInfo {
                target,
                name,
                avatar_url,
                announcement,
                set,
                remove,
            } => {
                let info = pb::GroupSetInfo {
                    name,
                    avatar_url,
                    announcement,
                    set_attributes: set.into_iter().collect(),
                    remove_attributes: remove,
                };
                (target, Op::SetInfo(Box::new(info)))
            }
            GroupCommand::Info {
                target,
                members_from,
            } => (target, Op::Info(pb::GroupInfoQuery { members_from })),
            GroupCommand::Mine(args) => {
                // A GROUP with an empty group id ([GROUP-2.7]).
                let target = Target {
                    connect: args.connect,
                    timeout: args.timeout,
                    group: String::new(),
                };
                let query = pb::GroupMineQuery {
                    after: args.after,
                    limit: args.limit,
                };
                (target, Op::Mine(query))
            }
        }
    }
}

/// `KEY=VALUE`, split at the first `=`.
fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

/// The group id of `g:<id>` or `<id>`.
fn group_id(group: &str) -> &str {
    group.strip_prefix("g:").unwrap_or(group)
}

/// Runs one operation and prints the GROUP_REPLY as a JSON line.
pub(crate) async fn group(args: GroupArgs) -> Result<(), CliError> {
    let (target, op) = args.op.into_request();
    let mine = matches!(op, pb::group::Op::Mine(_));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(target.timeout);
    let mut connect = target.connect;
    connect.max_reconnects = connect.max_reconnects.or(Some(5));
    let options = options(connect, InitialSync::FromHead)?;
    let (client, _events) = within(
        deadline,
        "connect",
        target.timeout,
        Client::connect(options),
    )
    .await?;
    let request = async {
        match op {
            pb::group::Op::Mine(q) => client.my_groups(&q.after, q.limit).await,
            op => client.group(group_id(&target.group), op).await,
        }
    };
    let reply = within(deadline, "group", target.timeout, request).await;
    client.close().await;
    let reply = reply?;
    let line = if mine {
        serde_json::to_string(&view::mine_view(&reply))
    } else {
        serde_json::to_string(&view::group_reply_view(&reply))
    }
    .map_err(|e| CliError::Other(e.to_string()))?;
    print_line(&line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        op: GroupCommand,
    }

    /// `group OP --server .. --app .. --token .. REST..` for `[OP, REST..]`.
    fn try_parse(args: &[&str]) -> Result<GroupCommand, clap::Error> {
        let connect = ["--server", "127.0.0.1:1", "--app", "a", "--token", "t"];
        let mut argv = vec!["group", args[0]];
        argv.extend(connect);
        argv.extend(&args[1..]);
        Cli::try_parse_from(argv).map(|c| c.op)
    }

    fn parse(args: &[&str]) -> (Target, pb::group::Op) {
        try_parse(args)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .into_request()
    }

    #[test]
    fn operations_parse() {
        use pb::group::Op;
        let (t, op) = parse(&["create", "g:team", "--private", "bob", "carol"]);
        assert_eq!(t.group, "g:team");
        assert_eq!(
            op,
            Op::Create(pb::GroupCreate {
                name: "team".into(),
                private: true,
                members: vec!["bob".into(), "carol".into()],
            })
        );
        let (_, op) = parse(&["create", "team", "--name", "The team"]);
        assert!(matches!(op, Op::Create(c) if c.name == "The team" && c.members.is_empty()));
        let (_, op) = parse(&["set-role", "team", "admin", "bob"]);
        assert_eq!(
            op,
            Op::SetRole(pb::GroupSetRole {
                users: vec!["bob".into()],
                role: pb::GroupRole::Admin as i32,
            })
        );
        let (_, op) = parse(&["kick", "team", "bob", "carol"]);
        assert!(matches!(op, Op::Kick(u) if u.users == ["bob", "carol"]));
        let (_, op) = parse(&["transfer", "team", "bob"]);
        assert_eq!(op, Op::Transfer(pb::GroupTransfer { to: "bob".into() }));
        assert!(matches!(
            parse(&["info", "team"]).1,
            Op::Info(pb::GroupInfoQuery { members_from: 0 })
        ));
        assert!(matches!(
            parse(&["info", "team", "--members-from", "7"]).1,
            Op::Info(pb::GroupInfoQuery { members_from: 7 })
        ));
        assert!(
            try_parse(&["invite", "team"]).is_err(),
            "invite names users"
        );
        assert!(try_parse(&["set-role", "team", "owner", "bob"]).is_err());
        assert_eq!(
            parse(&["mute", "team", "--for", "600", "bob"]).1,
            Op::Mute(pb::GroupMute {
                users: vec!["bob".into()],
                duration_secs: 600,
            })
        );
        assert!(
            try_parse(&["mute", "team", "--for", "0", "bob"]).is_err(),
            "unmute lifts a mute"
        );
        assert!(
            try_parse(&["mute", "team", "bob"]).is_err(),
            "mute needs --for"
        );
        assert_eq!(
            parse(&["unmute", "team", "bob"]).1,
            Op::Mute(pb::GroupMute {
                users: vec!["bob".into()],
                duration_secs: 0,
            })
        );
        assert_eq!(
            parse(&[
                "set-info",
                "team",
                "--announcement",
                "",
                "--set",
                "topic=a=b",
                "--remove",
                "old"
            ])
            .1,
            Op::SetInfo(Box::new(pb::GroupSetInfo {
                name: None,
                avatar_url: None,
                announcement: Some(String::new()),
                set_attributes: [("topic".to_owned(), "a=b".to_owned())].into(),
                remove_attributes: vec!["old".into()],
            }))
        );
        assert!(try_parse(&["set-info", "team", "--set", "novalue"]).is_err());
        assert_eq!(
            parse(&["do-not-disturb", "team"]).1,
            Op::DoNotDisturb(pb::GroupDoNotDisturb { on: true })
        );
        assert_eq!(
            parse(&["do-not-disturb", "team", "--off"]).1,
            Op::DoNotDisturb(pb::GroupDoNotDisturb { on: false })
        );
        assert_eq!(
            parse(&["unmute-all", "team"]).1,
            Op::MuteAll(pb::GroupMuteAll { on: false })
        );
        assert_eq!(
            parse(&["allow-speaking", "team", "bob"]).1,
            Op::AllowSpeaking(pb::GroupAllowSpeaking {
                users: vec!["bob".into()],
                allowed: true,
            })
        );
        assert_eq!(group_id("g:team"), "team");
        assert_eq!(group_id("team"), "team");
    }
}
