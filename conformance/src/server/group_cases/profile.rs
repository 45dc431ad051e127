//! A group's profile (E3; `spec/groups.md` §1.6): avatar URL, announcement and attributes, who
//! changes them, what `info` shows to whom, and the limits.

use std::collections::BTreeMap;

use magpie_session::pb;
use pb::group::Op;
use pb::group_notice::Kind;

use super::helpers::*;
use crate::case::{Case, Level};
use crate::server::server;

/// The defaults of [GROUP-1.6].
const MAX_AVATAR_URL: usize = 1024;
const MAX_ANNOUNCEMENT: usize = 4096;
const MAX_ATTRIBUTES: usize = 16;
const MAX_ATTRIBUTE_BYTES: usize = 256;

fn set_info(f: impl FnOnce(&mut pb::GroupSetInfo)) -> Op {
    let mut info = pb::GroupSetInfo::default();
    f(&mut info);
    Op::SetInfo(Box::new(info))
}

fn attributes<const N: usize>(pairs: [(&str, &str); N]) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn describe_profile(g: &pb::GroupInfo) -> String {
    format!(
        "name {:?} avatar {:?} announcement {} attributes {:?}",
        g.name,
        g.avatar_url,
        short(&g.announcement, 40),
        g.attributes
    )
}

/// [GROUP-1.6], [GROUP-2.3], [GROUP-2.5]: the profile.
pub(super) fn profile() -> Case {
    Case::new(
        "group/1.6/1",
        &[
            "GROUP-1.6",
            "GROUP-2.3",
            "GROUP-2.5",
            "GROUP-2.6",
            "GROUP-3.1",
        ],
        Level::Must,
        "The owner and admins change a group's profile with set_info: the fields it carries change, and an INFO_CHANGED notice names them (with the new name). info shows the name and avatar URL to everyone and the announcement and attributes to members; a set_info that changes nothing is skipped. A text past its limit (name 128, avatar URL 1,024, announcement 4,096, attribute key 1 to 64, key and value 256 bytes) or more than 16 attributes after the change is BAD_REQUEST and changes nothing. An admin removes attributes.",
        |t| async move {
            let s = server(&t);
            let [own, bob, dave, adm] = names(["own", "bob", "dave", "adm"]);
            let (gid, c) = new_group();
            let exp = "member bob's set_info: 0x10A; the owner's set_info of name, avatar, announcement and {topic: rust}: seq 2, its answer with the new name and avatar and without the announcement, bob pushed INFO_CHANGED naming the 4 fields and the name; bob's info shows all of it, outsider dave's only name and avatar; the same set_info again: seq 0; an avatar of 1,025, an announcement of 4,097 bytes, a 65-byte key, a 257-byte attribute, a 17th attribute, a 129-byte name, an empty key: 0x100 each and the profile unchanged; an announcement of 4,096 bytes and 15 more attributes of 256 bytes: seq 4; admin adm removes topic: seq 5, 15 attributes left, topic gone";
            let ((mut co, _), (mut cb, _), (mut cd, _), (mut ca, _)) =
                loginsv!(s, &own, &bob, &dave, &adm);
            let mut ch = Checks::default();
            tryv!(
                group_with_admin(&mut co, &gid, "Before", &adm, &[&bob]).await,
                exp
            );
            let change = || {
                set_info(|i| {
                    i.name = Some("After".into());
                    i.avatar_url = Some("https://example.com/a.png".into());
                    i.announcement = Some("Standup at 10".into());
                    i.set_attributes = attributes([("topic", "rust")]);
                })
            };
            tryv!(
                ch.refused(
                    &mut cb,
                    &gid,
                    change(),
                    "member bob's set_info",
                    NOT_PERMITTED
                )
                .await,
                exp
            );
            if let Some(r) = tryv!(
                ch.replied(&mut co, &gid, change(), "the owner's set_info", 3)
                    .await,
                exp
            ) {
                let g = r.group.unwrap_or_default();
                ch.that(
                    g.name == "After"
                        && g.avatar_url == "https://example.com/a.png"
                        && g.announcement.is_empty()
                        && g.attributes.is_empty(),
                    format!("the change's answer {}", describe_profile(&g)),
                );
            }
            ch.pushed_at("bob", &mut cb, &c, 3, |m| {
                is_notice(m, Kind::InfoChanged, &own, Some(&[]))
                    && notice_of(m).is_some_and(|n| {
                        let mut fields = n.fields.clone();
                        fields.sort_unstable();
                        fields == ["announcement", "attributes", "avatar_url", "name"]
                            && n.name == "After"
                    })
            })
            .await;
            let want = |g: &pb::GroupInfo, member: bool| {
                g.name == "After"
                    && g.avatar_url == "https://example.com/a.png"
                    && if member {
                        g.announcement == "Standup at 10"
                            && g.attributes == attributes([("topic", "rust")])
                    } else {
                        g.announcement.is_empty() && g.attributes.is_empty()
                    }
            };
            let g = tryv!(info(&mut cb, &gid).await, exp);
            ch.that(
                want(&g, true),
                format!("bob's info {}", describe_profile(&g)),
            );
            let g = tryv!(info(&mut cd, &gid).await, exp);
            ch.that(
                want(&g, false),
                format!("dave's info {}", describe_profile(&g)),
            );
            tryv!(
                ch.replied(&mut co, &gid, change(), "the same set_info again", 0)
                    .await,
                exp
            );
            let many = |n: usize, len: usize| {
                (0..n)
                    .map(|i| {
                        let k = format!("k{i:02}");
                        let v = "v".repeat(len - k.len());
                        (k, v)
                    })
                    .collect::<BTreeMap<_, _>>()
            };
            let refusals = [
                (
                    "an avatar URL of 1,025 bytes",
                    set_info(|i| i.avatar_url = Some("a".repeat(MAX_AVATAR_URL + 1))),
                ),
                (
                    "an announcement of 4,097 bytes",
                    set_info(|i| i.announcement = Some("a".repeat(MAX_ANNOUNCEMENT + 1))),
                ),
                (
                    "a 65-byte key",
                    set_info(|i| i.set_attributes = [("k".repeat(65), String::new())].into()),
                ),
                (
                    "an attribute of 257 bytes",
                    set_info(|i| i.set_attributes = many(1, MAX_ATTRIBUTE_BYTES + 1)),
                ),
                (
                    "16 more attributes (17 in all)",
                    set_info(|i| i.set_attributes = many(MAX_ATTRIBUTES, 8)),
                ),
                (
                    "a name of 129 bytes",
                    set_info(|i| i.name = Some("n".repeat(MAX_GROUP_NAME + 1))),
                ),
                (
                    "an empty key",
                    set_info(|i| i.set_attributes = [(String::new(), "v".into())].into()),
                ),
            ];
            for (what, op) in refusals {
                tryv!(ch.refused(&mut co, &gid, op, what, BAD_REQUEST).await, exp);
            }
            let g = tryv!(info(&mut cb, &gid).await, exp);
            ch.that(
                want(&g, true),
                format!("after the refusals {}", describe_profile(&g)),
            );
            let at_limits = set_info(|i| {
                i.announcement = Some("a".repeat(MAX_ANNOUNCEMENT));
                i.set_attributes = many(MAX_ATTRIBUTES - 1, MAX_ATTRIBUTE_BYTES);
            });
            tryv!(
                ch.replied(
                    &mut co,
                    &gid,
                    at_limits,
                    "every limit reached, none passed",
                    4
                )
                .await,
                exp
            );
            let g = tryv!(info(&mut cb, &gid).await, exp);
            ch.that(
                g.announcement.len() == MAX_ANNOUNCEMENT && g.attributes.len() == MAX_ATTRIBUTES,
                format!(
                    "at the limits: announcement {} bytes, {} attributes",
                    g.announcement.len(),
                    g.attributes.len()
                ),
            );
            let remove = set_info(|i| i.remove_attributes = vec!["topic".into()]);
            tryv!(
                ch.replied(&mut ca, &gid, remove, "admin adm removes topic", 5)
                    .await,
                exp
            );
            let g = tryv!(info(&mut cb, &gid).await, exp);
            ch.that(
                g.attributes.len() == MAX_ATTRIBUTES - 1 && !g.attributes.contains_key("topic"),
                format!(
                    "after the removal, {} attributes: {:?}",
                    g.attributes.len(),
                    g.attributes.keys()
                ),
            );
            ch.done(exp, [co, cb, cd, ca]).await
        },
    )
}
