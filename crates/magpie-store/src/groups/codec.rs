//! The stored form of a group record (see the `codec` module of the crate for the conventions).

use std::collections::BTreeMap;

use super::{GroupMember, GroupRecord, GroupRole};
use crate::StoreError;
use crate::codec::{Reader, put_str};

/// Flag bits of the record's second byte.
const PRIVATE: u8 = 1;
const DISMISSED: u8 = 1 << 1;
const MUTED_ALL: u8 = 1 << 2;
/// Each member carries its mute end and speaking-list bit ([GROUP-1.5]). Records written
/// before groups could be muted lack it, and decode as nobody muted.
const MEMBER_SPEECH: u8 = 1 << 3;
/// The profile (avatar URL, announcement, attributes; [GROUP-1.6]) follows the pending list.
/// Records written before profiles decode with an empty one.
const PROFILE: u8 = 1 << 4;
const KNOWN_FLAGS: u8 = PRIVATE | DISMISSED | MUTED_ALL | MEMBER_SPEECH | PROFILE;

/// A member's flag bits, after its mute end: on the speaking list, do-not-disturb. Records
/// written before do-not-disturb hold 0 or 1.
const SPEAKING: u8 = 1;
const DO_NOT_DISTURB: u8 = 1 << 1;

/// Bytes of a member besides its user id: role, joined seq, mute end, member flags.
const MEMBER_FIXED: usize = 1 + 8 + 8 + 1;

/// Encodes a group record: format, flags, name, member count, members (user, role, joined seq,
/// mute end, member flags), pending count, pending, then the profile (avatar URL,
/// announcement, attribute count, attributes).
pub(crate) fn encode(g: &GroupRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        16 + g.name.len()
            + g.members
                .iter()
                .map(|m| m.user.len() + 2 + MEMBER_FIXED)
                .sum::<usize>(),
    );
    out.push(crate::codec::FORMAT);
    let flag = |on: bool, bit: u8| if on { bit } else { 0 };
    out.push(
        flag(g.private, PRIVATE)
            | flag(g.dismissed, DISMISSED)
            | flag(g.muted_all, MUTED_ALL)
            | MEMBER_SPEECH
            | PROFILE,
    );
    put_str(&mut out, &g.name);
    out.extend_from_slice(&(g.members.len() as u32).to_be_bytes());
    for m in &g.members {
        put_str(&mut out, &m.user);
        out.push(m.role as u8);
        out.extend_from_slice(&m.joined_seq.to_be_bytes());
        out.extend_from_slice(&m.muted_until_ms.to_be_bytes());
        let flag = |on: bool, bit: u8| if on { bit } else { 0 };
        out.push(flag(m.speaking_allowed, SPEAKING) | flag(m.do_not_disturb, DO_NOT_DISTURB));
    }
    out.extend_from_slice(&(g.pending.len() as u32).to_be_bytes());
    for p in &g.pending {
        put_str(&mut out, p);
    }
    put_str(&mut out, &g.avatar_url);
    put_str(&mut out, &g.announcement);
    out.extend_from_slice(&(g.attributes.len() as u32).to_be_bytes());
    for (k, v) in &g.attributes {
        put_str(&mut out, k);
        put_str(&mut out, v);
    }
    out
}

/// Decodes a group record stored at `key`.
pub(crate) fn decode(key: &[u8], value: &[u8]) -> Result<GroupRecord, StoreError> {
    let mut r = Reader::new(value, "group", key);
    r.format()?;
    let flags = r.u8()?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(StoreError::corrupt(
            "group",
            key,
            format!("unknown flags {flags:#04x}"),
        ));
    }
    let speech = flags & MEMBER_SPEECH != 0;
    let name = r.str()?;
    let count = r.u32()?;
    // Each member takes at least 11 bytes: a bound from the record's own length, not its header.
    let mut members = Vec::with_capacity((count as usize).min(value.len() / 11));
    for _ in 0..count {
        let user = r.str()?;
        let role = r.u8()?;
        let role = GroupRole::from_u8(role)
            .ok_or_else(|| StoreError::corrupt("group", key, format!("role {role} of {user}")))?;
        let joined_seq = r.u64()?;
        let (muted_until_ms, member_flags) = if speech {
            let until = r.u64()?;
            let member_flags = r.u8()?;
            if member_flags & !(SPEAKING | DO_NOT_DISTURB) != 0 {
                return Err(StoreError::corrupt(
                    "group",
                    key,
                    format!("member flags {member_flags:#04x} of {user}"),
                ));
            }
            (until, member_flags)
        } else {
            (0, 0)
        };
        members.push(GroupMember {
            user,
            role,
            joined_seq,
            muted_until_ms,
            speaking_allowed: member_flags & SPEAKING != 0,
            do_not_disturb: member_flags & DO_NOT_DISTURB != 0,
        });
    }
    let count = r.u32()?;
    let mut pending = Vec::with_capacity((count as usize).min(value.len() / 2));
    for _ in 0..count {
        pending.push(r.str()?);
    }
    let (avatar_url, announcement, attributes) = if flags & PROFILE != 0 {
        let avatar_url = r.str()?;
        let announcement = r.str()?;
        let count = r.u32()?;
        let mut attributes = BTreeMap::new();
        for _ in 0..count {
            let k = r.str()?;
            let v = r.str()?;
            attributes.insert(k, v);
        }
        (avatar_url, announcement, attributes)
    } else {
        Default::default()
    };
    r.end()?;
    Ok(GroupRecord {
        name,
        private: flags & PRIVATE != 0,
        dismissed: flags & DISMISSED != 0,
        muted_all: flags & MUTED_ALL != 0,
        members,
        pending,
        avatar_url,
        announcement,
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_truncations_fail() {
        let member = |user: &str, role, joined_seq| GroupMember {
            joined_seq,
            ..GroupMember::new(user, role)
        };
        let mut muted = member("mem", GroupRole::Member, 7);
        muted.muted_until_ms = 1_700_000_000_123;
        let mut allowed = member("adm", GroupRole::Admin, 1);
        allowed.speaking_allowed = true;
        allowed.do_not_disturb = true;
        let g = GroupRecord {
            name: "Team ✓".into(),
            private: true,
            dismissed: false,
            muted_all: true,
            members: vec![member("own", GroupRole::Owner, 1), allowed, muted],
            pending: vec!["p1".into(), "p2".into()],
            avatar_url: "https://example.com/a.png".into(),
            announcement: "Be kind ✓".into(),
            attributes: [("topic", "rust"), ("level", "")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
        };
        let bytes = encode(&g);
        assert_eq!(decode(b"k", &bytes).expect("decode"), g);
        for n in 0..bytes.len() {
            assert!(decode(b"k", &bytes[..n]).is_err(), "prefix of {n} bytes");
        }
    }

    /// A record written before groups could be muted (flags without `MEMBER_SPEECH`, members of
    /// user, role and joined seq only) reads as nobody muted and nobody on the speaking list.
    #[test]
    fn records_from_before_mutes_decode_unmuted() {
        let mut old = vec![crate::codec::FORMAT, PRIVATE];
        put_str(&mut old, "Old");
        old.extend_from_slice(&2u32.to_be_bytes());
        for (user, role, seq) in [("own", 3u8, 1u64), ("mem", 1, 4)] {
            put_str(&mut old, user);
            old.push(role);
            old.extend_from_slice(&seq.to_be_bytes());
        }
        old.extend_from_slice(&0u32.to_be_bytes());
        let g = decode(b"k", &old).expect("decode");
        assert!(g.private && !g.muted_all && !g.dismissed);
        assert!(g.avatar_url.is_empty() && g.announcement.is_empty() && g.attributes.is_empty());
        assert_eq!(g.members.len(), 2);
        assert_eq!(g.members[1].joined_seq, 4);
        assert!(
            g.members
                .iter()
                .all(|m| m.muted_until_ms == 0 && !m.speaking_allowed)
        );
        // Re-encoded, it carries the new fields and round-trips.
        assert_eq!(decode(b"k", &encode(&g)).expect("decode"), g);
    }

    #[test]
    fn unknown_flags_and_bad_speaking_bits_are_corrupt() {
        let g = GroupRecord {
            members: vec![GroupMember::new("own", GroupRole::Owner)],
            ..GroupRecord::default()
        };
        let mut bytes = encode(&g);
        bytes[1] |= 1 << 7;
        assert!(decode(b"k", &bytes).is_err());
        let mut bytes = encode(&g);
        // The last member's speaking bit sits before the pending count (4), the empty avatar
        // and announcement (2 each) and the attribute count (4).
        let last_member_byte = bytes.len() - 4 - 2 - 2 - 4 - 1;
        bytes[last_member_byte] = 1 << 2;
        assert!(decode(b"k", &bytes).is_err());
    }
}
