//! Groups (`spec/groups.md`): ids, requests and who may make them, notices, and group messages.
//! Every user and group id is fresh, so cases never meet across runs.

/// Logs each user in on device `d1`, in order: a tuple of `(Conn, Welcome)`, one per user, or
/// returns the first failing verdict. For two users or more (one is [`loginv!`]).
macro_rules! loginsv {
    ($s:expr, $($u:expr),+ $(,)?) => {
        ($(loginv!($s, $u, "d1")),+)
    };
}

mod directed;
mod disturb;
mod helpers;
mod limits;
mod members;
mod messages;
mod mine;
mod notices;
mod profile;
mod requests;
mod speech;

use crate::case::Case;

/// The group cases, in the order they run.
pub(crate) fn cases() -> Vec<Case> {
    vec![
        limits::ids(),
        requests::malformed(),
        limits::member_limit(),
        limits::request_users(),
        limits::dismissed(),
        requests::join_public(),
        requests::join_private(),
        requests::not_permitted(),
        requests::allowed(),
        members::skipped(),
        members::info_by_role(),
        members::info_pages(),
        mine::lists_my_groups(),
        notices::written(),
        notices::reach(),
        messages::stored(),
        messages::live_only(),
        messages::visible_from(),
        speech::refused_while_muted(),
        speech::who_mutes_whom(),
        profile::profile(),
        directed::to_chosen_members(),
        disturb::silent_pushes(),
    ]
}
