//! The stored form of a group record (see the `codec` module of the crate for the conventions).

use super::{GroupMember, GroupRecord, GroupRole};
use crate::StoreError;
use crate::codec::{Reader, put_str};

/// Encodes a group record: format, flags, name, member count, members, pending count, pending.
pub(crate) fn encode(g: &GroupRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        16 + g.name.len() + g.members.iter().map(|m| m.user.len() + 11).sum::<usize>(),
    );
    out.push(crate::codec::FORMAT);
    out.push(u8::from(g.private) | (u8::from(g.dismissed) << 1));
    put_str(&mut out, &g.name);
    out.extend_from_slice(&(g.members.len() as u32).to_be_bytes());
    for m in &g.members {
        put_str(&mut out, &m.user);
        out.push(m.role as u8);
        out.extend_from_slice(&m.joined_seq.to_be_bytes());
    }
    out.extend_from_slice(&(g.pending.len() as u32).to_be_bytes());
    for p in &g.pending {
        put_str(&mut out, p);
    }
    out
}

/// Decodes a group record stored at `key`.
pub(crate) fn decode(key: &[u8], value: &[u8]) -> Result<GroupRecord, StoreError> {
    let mut r = Reader::new(value, "group", key);
    r.format()?;
    let flags = r.u8()?;
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
        members.push(GroupMember {
            user,
            role,
            joined_seq,
        });
    }
    let count = r.u32()?;
    let mut pending = Vec::with_capacity((count as usize).min(value.len() / 2));
    for _ in 0..count {
        pending.push(r.str()?);
    }
    r.end()?;
    Ok(GroupRecord {
        name,
        private: flags & 1 != 0,
        dismissed: flags & 2 != 0,
        members,
        pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_truncations_fail() {
        let member = |user: &str, role, joined_seq| GroupMember {
            user: user.into(),
            role,
            joined_seq,
        };
        let g = GroupRecord {
            name: "Team ✓".into(),
            private: true,
            dismissed: false,
            members: vec![
                member("own", GroupRole::Owner, 1),
                member("adm", GroupRole::Admin, 1),
                member("mem", GroupRole::Member, 7),
            ],
            pending: vec!["p1".into(), "p2".into()],
        };
        let bytes = encode(&g);
        assert_eq!(decode(b"k", &bytes).expect("decode"), g);
        for n in 0..bytes.len() {
            assert!(decode(b"k", &bytes[..n]).is_err(), "prefix of {n} bytes");
        }
    }
}
