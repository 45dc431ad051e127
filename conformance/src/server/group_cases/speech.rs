//! Who may speak in a group (E6; `spec/groups.md` §1.5, §2.6, §4.5): mutes of members and of
//! the whole group, and the speaking list.

use magpie_session::pb;
use pb::group::Op;
use pb::group_notice::Kind;

use super::helpers::*;
use crate::case::{Case, Level};
use crate::conn::Conn;
use crate::server::{send_ack, send_body, server};

/// `MUTED` ([GROUP-4.5]).
const MUTED: u32 = 0x10E;
/// `max_group_mute_secs`'s default ([GROUP-2.6]).
const MAX_GROUP_MUTE_SECS: u32 = 30 * 24 * 3600;
/// How far a mute's end may sit from the notice's time plus its duration: the server may read
/// its clock twice.
const CLOCK_SLACK_MS: u64 = 2_000;

fn mute<S: AsRef<str>>(who: &[S], duration_secs: u32) -> Op {
    Op::Mute(pb::GroupMute {
        users: users(who).users,
        duration_secs,
    })
}

fn mute_all(on: bool) -> Op {
    Op::MuteAll(pb::GroupMuteAll { on })
}

fn allow_speaking<S: AsRef<str>>(who: &[S], allowed: bool) -> Op {
    Op::AllowSpeaking(pb::GroupAllowSpeaking {
        users: users(who).users,
        allowed,
    })
}

/// `user`'s mute end and speaking-list bit as `info` shows them.
fn speech_of(g: &pb::GroupInfo, user: &str) -> Option<(u64, bool)> {
    g.members
        .iter()
        .find(|m| m.user_id == user)
        .map(|m| (m.muted_until_ms, m.speaking_allowed))
}

/// A SEND of `class` by `c`, which must be refused with `MUTED`.
async fn refused_send(
    ch: &mut Checks,
    c: &mut Conn,
    conversation: &str,
    what: &str,
    class: pb::MessageClass,
) -> Result<(), String> {
    let cmid = format!("muted-{}", what.replace(' ', "-"));
    let r = c
        .request(send_body(conversation, &cmid, what, class))
        .await?;
    ch.code(what, &r, MUTED);
    Ok(())
}

/// [GROUP-4.5]: a muted member, and anyone off the speaking list in a group muted as a whole, is
/// refused; notices and `info` tell who may speak.
pub(super) fn refused_while_muted() -> Case {
    Case::new(
        "group/4.5/1",
        &[
            "GROUP-4.5",
            "GROUP-1.5",
            "GROUP-2.3",
            "GROUP-2.5",
            "GROUP-3.1",
        ],
        Level::Must,
        "A SEND to a group, of any class, is answered MUTED and stores and relays nothing when the sender is muted, or when the group is muted as a whole and the sender is neither the owner, an admin, nor on the speaking list. mute, mute_all and allow_speaking each write their notice (MUTED with the end time, 0 when lifted; MUTED_ALL, UNMUTED_ALL; SPEAKING_ALLOWED), and info shows each member's mute end and list bit and whether the group is muted as a whole.",
        |t| async move {
            let s = server(&t);
            let [own, adm, bob, carol] = names(["own", "adm", "bob", "carol"]);
            let (gid, c) = new_group();
            let exp = "create (1), adm made admin (2); adm mutes bob for 600 s (3, MUTED naming bob, until = notice time + 600,000 ms); bob's CONTENT, STATUS and TRANSIENT: 0x10E, nothing relayed to carol, last_seq stays 3, carol sees bob's end in info; the owner unmutes bob (4, MUTED until 0) and bob sends (5); adm mutes the group (6, MUTED_ALL): carol 0x10E, adm (7) and the owner (8) send, info muted_all; the owner mutes adm (9) and adm is refused; the owner puts carol on the speaking list (10, SPEAKING_ALLOWED) and she sends (11); the owner lifts the group's mute (12, UNMUTED_ALL) and bob sends (13)";
            let ((mut co, _), (mut ca, _), (mut cb, _), (mut cc, _)) =
                loginsv!(s, &own, &adm, &bob, &carol);
            let mut ch = Checks::default();
            tryv!(
                group_with_admin(&mut co, &gid, "Quiet", &adm, &[&bob, &carol]).await,
                exp
            );
            tryv!(
                ch.replied(&mut ca, &gid, mute(&[&bob], 600), "adm mutes bob", 3)
                    .await,
                exp
            );
            let got = pushed_until(&mut cc, &c, 3).await;
            let notice = got.iter().find(|m| m.seq == 3);
            let until = notice.and_then(notice_of).map_or(0, |n| n.muted_until_ms);
            let due = notice.map_or(0, |m| m.server_time_ms + 600_000);
            ch.that(
                notice.is_some_and(|m| is_notice(m, Kind::Muted, &adm, Some(&[&bob])))
                    && until.abs_diff(due) <= CLOCK_SLACK_MS,
                format!(
                    "carol pushed the MUTED notice, until {until} (want about {due}): {}",
                    show_all(&got)
                ),
            );
            tryv!(
                refused_send(
                    &mut ch,
                    &mut cb,
                    &c,
                    "bob's text while muted",
                    pb::MessageClass::Content
                )
                .await,
                exp
            );
            tryv!(
                refused_send(
                    &mut ch,
                    &mut cb,
                    &c,
                    "bob's typing while muted",
                    pb::MessageClass::Status
                )
                .await,
                exp
            );
            tryv!(
                refused_send(
                    &mut ch,
                    &mut cb,
                    &c,
                    "bob's ringing while muted",
                    pb::MessageClass::Transient
                )
                .await,
                exp
            );
            cc.drain(QUIET).await;
            let relayed = live(&cc, &c);
            ch.that(
                relayed.is_empty(),
                format!("live at carol from muted bob {}", show_all(&relayed)),
            );
            let last = tryv!(last_seq(&mut co, &c).await, exp);
            ch.that(
                last == 3,
                format!("last_seq {last} after bob's refused SENDs (want 3)"),
            );
            let g = tryv!(info(&mut cc, &gid).await, exp);
            ch.that(
                speech_of(&g, &bob) == Some((until, false))
                    && speech_of(&g, &carol) == Some((0, false))
                    && !g.muted_all,
                format!("carol's info {}", describe_speech(&g)),
            );
            tryv!(
                ch.replied(&mut co, &gid, mute(&[&bob], 0), "the owner unmutes bob", 4)
                    .await,
                exp
            );
            ch.pushed_at("bob", &mut cb, &c, 4, |m| {
                is_notice(m, Kind::Muted, &own, Some(&[&bob]))
                    && notice_of(m).is_some_and(|n| n.muted_until_ms == 0)
            })
            .await;
            sends(&mut ch, &mut cb, &c, "bob after his unmute", 5).await;
            tryv!(
                ch.replied(&mut ca, &gid, mute_all(true), "adm mutes the group", 6)
                    .await,
                exp
            );
            ch.pushed_at("carol", &mut cc, &c, 6, |m| {
                is_notice(m, Kind::MutedAll, &adm, Some(&[]))
            })
            .await;
            tryv!(
                refused_send(
                    &mut ch,
                    &mut cc,
                    &c,
                    "carol's text in a muted group",
                    pb::MessageClass::Content
                )
                .await,
                exp
            );
            sends(&mut ch, &mut ca, &c, "the admin in a muted group", 7).await;
            sends(&mut ch, &mut co, &c, "the owner in a muted group", 8).await;
            let g = tryv!(info(&mut cc, &gid).await, exp);
            ch.that(g.muted_all, format!("carol's info {}", describe_speech(&g)));
            tryv!(
                ch.replied(&mut co, &gid, mute(&[&adm], 600), "the owner mutes adm", 9)
                    .await,
                exp
            );
            tryv!(
                refused_send(
                    &mut ch,
                    &mut ca,
                    &c,
                    "adm muted by the owner",
                    pb::MessageClass::Content
                )
                .await,
                exp
            );
            tryv!(
                ch.replied(
                    &mut co,
                    &gid,
                    allow_speaking(&[&carol], true),
                    "the owner lets carol speak",
                    10
                )
                .await,
                exp
            );
            ch.pushed_at("carol", &mut cc, &c, 10, |m| {
                is_notice(m, Kind::SpeakingAllowed, &own, Some(&[&carol]))
            })
            .await;
            sends(&mut ch, &mut cc, &c, "carol on the speaking list", 11).await;
            let g = tryv!(info(&mut cb, &gid).await, exp);
            ch.that(
                speech_of(&g, &carol) == Some((0, true)),
                format!("bob's info {}", describe_speech(&g)),
            );
            tryv!(
                ch.replied(
                    &mut co,
                    &gid,
                    mute_all(false),
                    "the owner lifts the group's mute",
                    12
                )
                .await,
                exp
            );
            ch.pushed_at("bob", &mut cb, &c, 12, |m| {
                is_notice(m, Kind::UnmutedAll, &own, Some(&[]))
            })
            .await;
            sends(&mut ch, &mut cb, &c, "bob after the group's mute", 13).await;
            ch.done(exp, [co, ca, cb, cc]).await
        },
    )
}

/// A text by `c` that must be acked with `seq`.
async fn sends(ch: &mut Checks, c: &mut Conn, conversation: &str, what: &str, seq: u64) {
    let cmid = format!("speaks-{seq}");
    match send_ack(c, conversation, &cmid, what).await {
        Ok(ack) => ch.that(
            ack.seq == seq,
            format!("{what}: acked seq {} (want {seq})", ack.seq),
        ),
        Err(e) => ch.that(false, format!("{what}: {e} (want an ack with seq {seq})")),
    }
}

fn describe_speech(g: &pb::GroupInfo) -> String {
    let members: Vec<String> = g
        .members
        .iter()
        .map(|m| {
            format!(
                "{} until {} list {}",
                m.user_id, m.muted_until_ms, m.speaking_allowed
            )
        })
        .collect();
    format!("muted_all {} members [{}]", g.muted_all, members.join(", "))
}

/// [GROUP-2.6], [GROUP-2.3], [GROUP-1.5]: who may mute whom, what is refused or skipped, and
/// that a member who leaves loses their mute.
pub(super) fn who_mutes_whom() -> Case {
    Case::new(
        "group/2.6/1",
        &["GROUP-2.6", "GROUP-2.3", "GROUP-2.4", "GROUP-1.5"],
        Level::Must,
        "Only the owner and admins mute, mute the group and keep the speaking list; nobody mutes the owner and admins mute members only; mute and allow_speaking naming a non-member are NOT_PERMITTED, a mute longer than max_group_mute_secs (default 30 days) is BAD_REQUEST, and either changes nothing. Lifting the mute of an unmuted member, mute_all to the group's state and allow_speaking that changes nothing are skipped (seq 0). A member who leaves loses their mute: joining again, they speak.",
        |t| async move {
            let s = server(&t);
            let [own, adm, bob, carol, dave] = names(["own", "adm", "bob", "carol", "dave"]);
            let (gid, c) = new_group();
            let exp = "member bob's mute, mute_all and allow_speaking: 0x10A; adm muting the owner or himself, the owner muting himself: 0x10A; the owner muting [carol, outsider dave] or putting dave on the list: 0x10A, carol not muted; a mute one second past 30 days: 0x100; unmute of unmuted carol, mute_all off, allow_speaking off for carol: seq 0; a 30-day mute of carol: seq 3; carol leaves (4) and joins again (5) unmuted, and sends (6); a 1-second mute of carol (7): refused at once, her text acked (8) once it has ended";
            let ((mut co, _), (mut ca, _), (mut cb, _), (mut cc, _)) =
                loginsv!(s, &own, &adm, &bob, &carol);
            let mut ch = Checks::default();
            tryv!(
                group_with_admin(&mut co, &gid, "Rules", &adm, &[&bob, &carol]).await,
                exp
            );
            for (what, op) in [
                ("member bob mutes carol", mute(&[&carol], 60)),
                ("member bob mutes the group", mute_all(true)),
                ("member bob lists himself", allow_speaking(&[&bob], true)),
            ] {
                tryv!(
                    ch.refused(&mut cb, &gid, op, what, NOT_PERMITTED).await,
                    exp
                );
            }
            for (what, op) in [
                ("adm mutes the owner", mute(&[&own], 60)),
                ("adm mutes himself, an admin", mute(&[&adm], 60)),
            ] {
                tryv!(
                    ch.refused(&mut ca, &gid, op, what, NOT_PERMITTED).await,
                    exp
                );
            }
            for (what, op, want) in [
                ("the owner mutes himself", mute(&[&own], 60), NOT_PERMITTED),
                (
                    "the owner mutes [carol, outsider dave]",
                    mute(&[&carol, &dave], 60),
                    NOT_PERMITTED,
                ),
                (
                    "the owner lists outsider dave",
                    allow_speaking(&[&dave], true),
                    NOT_PERMITTED,
                ),
                (
                    "a mute one second past the limit",
                    mute(&[&carol], MAX_GROUP_MUTE_SECS + 1),
                    BAD_REQUEST,
                ),
            ] {
                tryv!(ch.refused(&mut co, &gid, op, what, want).await, exp);
            }
            let g = tryv!(info(&mut co, &gid).await, exp);
            ch.that(
                g.members
                    .iter()
                    .all(|m| m.muted_until_ms == 0 && !m.speaking_allowed)
                    && !g.muted_all,
                format!("after the refusals {}", describe_speech(&g)),
            );
            for (what, op) in [
                ("unmute of unmuted carol", mute(&[&carol], 0)),
                ("mute_all off in an unmuted group", mute_all(false)),
                (
                    "carol off a list she is not on",
                    allow_speaking(&[&carol], false),
                ),
            ] {
                tryv!(ch.replied(&mut co, &gid, op, what, 0).await, exp);
            }
            tryv!(
                ch.replied(
                    &mut co,
                    &gid,
                    mute(&[&carol], MAX_GROUP_MUTE_SECS),
                    "a 30-day mute of carol",
                    3
                )
                .await,
                exp
            );
            tryv!(
                refused_send(
                    &mut ch,
                    &mut cc,
                    &c,
                    "carol while muted",
                    pb::MessageClass::Content
                )
                .await,
                exp
            );
            tryv!(group_ok(&mut cc, &gid, Op::Leave(none()), 4).await, exp);
            tryv!(group_ok(&mut cc, &gid, Op::Join(none()), 5).await, exp);
            let g = tryv!(info(&mut cc, &gid).await, exp);
            ch.that(
                speech_of(&g, &carol) == Some((0, false)),
                format!("carol back in the group {}", describe_speech(&g)),
            );
            sends(&mut ch, &mut cc, &c, "carol after joining again", 6).await;
            tryv!(
                ch.replied(
                    &mut co,
                    &gid,
                    mute(&[&carol], 1),
                    "a 1-second mute of carol",
                    7
                )
                .await,
                exp
            );
            tryv!(
                refused_send(
                    &mut ch,
                    &mut cc,
                    &c,
                    "carol in her short mute",
                    pb::MessageClass::Content
                )
                .await,
                exp
            );
            tokio::time::sleep(std::time::Duration::from_millis(1_300)).await;
            sends(&mut ch, &mut cc, &c, "carol after her mute ended", 8).await;
            ch.done(exp, [co, ca, cb, cc]).await
        },
    )
}
