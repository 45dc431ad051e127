//! The store's key layout version, and the upgrade from older layouts on open.
//!
//! - Layout 1 (no marker): a dedup key hashed all three of its components, so each new client
//!   message id landed at a random place in the `dedup` index.
//! - Layout 2: a dedup key hashes only (app, sender), then carries the client message id
//!   ([`codec::dedup_key`]). A sender's entries sit together, and ids that increase (the
//!   reference client's counter, or time-ordered ids) append at the end of that run, where the
//!   memtable's search path is still in the cache: 10–18% more messages per server CPU-second
//!   in `magpie-bench pairs` (durable, 100 pairs × 1000, alternating runs).
//!
//! - Layout 3: the `memberships` index lists each user's groups ([GROUP-2.7]); before, it did
//!   not exist.
//!
//! A store without a marker is upgraded by re-keying its dedup entries in durable batches; a
//! store before layout 3 gets its membership index built from its group records; then it is
//! marked. Each step is idempotent (an entry already in layout 2 is left alone, an index entry
//! is written again with the same value), so a crash part way through is finished by the next
//! open. Until it is marked, nothing else runs.

use fjall::{Database, Keyspace, PersistMode, Readable};

use super::Keyspaces;
use crate::StoreError;
use crate::codec::{self, Reader};
use crate::error::Context;
use crate::groups;

/// The layout this code reads and writes.
pub(super) const CURRENT: u32 = 3;

/// The marker's key in the `meta` keyspace.
const LAYOUT_KEY: &[u8] = b"layout";

/// Re-keyed entries per durable batch of the upgrade.
const UPGRADE_BATCH: usize = 4096;

/// An empty batch that is fsynced when committed: every step of the upgrade is durable before
/// the next one starts.
fn durable_batch(db: &Database) -> fjall::OwnedWriteBatch {
    db.batch().durability(Some(PersistMode::SyncAll))
}

/// Brings the store in `db` to [`CURRENT`], or refuses a newer one. Returns how many dedup
/// entries were re-keyed and how many memberships were indexed.
pub(super) fn upgrade(db: &Database, ks: &Keyspaces) -> Result<(u64, u64), StoreError> {
    // Layouts before 2 have no marker.
    let layout = match ks
        .meta
        .get(LAYOUT_KEY)
        .context("reading the store layout")?
    {
        Some(v) => {
            let mut r = Reader::new(&v, "store layout", LAYOUT_KEY);
            let layout = r.u32()?;
            r.end()?;
            layout
        }
        None => 1,
    };
    if layout > CURRENT {
        return Err(StoreError::corrupt(
            "store layout",
            LAYOUT_KEY,
            format!("layout {layout} is newer than this build's {CURRENT}"),
        ));
    }
    if layout == CURRENT {
        return Ok((0, 0));
    }
    let moved = if layout < 2 {
        rekey_dedup(db, &ks.dedup)?
    } else {
        0
    };
    let indexed = index_memberships(db, &ks.groups, &ks.memberships)?;
    let mut batch = durable_batch(db);
    batch.insert(&ks.meta, LAYOUT_KEY, CURRENT.to_be_bytes());
    batch.commit().context("marking the store layout")?;
    if moved > 0 || indexed > 0 {
        tracing::info!(
            dedup_entries = moved,
            memberships = indexed,
            from = layout,
            layout = CURRENT,
            "store upgraded"
        );
    }
    Ok((moved, indexed))
}

/// Writes a `memberships` entry for every member of every live group (layout 3), after
/// clearing what an interrupted earlier run left: groups may have changed since under a build
/// that did not keep the index.
fn index_memberships(
    db: &Database,
    groups_ks: &Keyspace,
    memberships: &Keyspace,
) -> Result<u64, StoreError> {
    let snapshot = db.snapshot();
    let mut batch = durable_batch(db);
    for guard in snapshot.iter(memberships) {
        let (k, _) = guard.into_inner().context("scanning memberships")?;
        batch.remove(memberships, k.to_vec());
        if batch.len() == UPGRADE_BATCH {
            let full = std::mem::replace(&mut batch, durable_batch(db));
            full.commit().context("clearing memberships")?;
        }
    }
    // Committed before the rebuild, so no batch removes and writes one key.
    if !batch.is_empty() {
        let full = std::mem::replace(&mut batch, durable_batch(db));
        full.commit().context("clearing memberships")?;
    }
    let mut indexed = 0u64;
    for guard in snapshot.iter(groups_ks) {
        let (k, v) = guard.into_inner().context("scanning groups")?;
        let mut r = Reader::of_key(&k, "group")?;
        let (app, group) = (r.str()?, r.str()?);
        r.end()?;
        let record = groups::decode(&k, &v)?;
        for m in &record.members {
            batch.insert(
                memberships,
                codec::membership_key(&app, &m.user, &group),
                [m.role as u8],
            );
            indexed += 1;
            if batch.len() == UPGRADE_BATCH {
                let full = std::mem::replace(&mut batch, durable_batch(db));
                full.commit().context("indexing memberships")?;
            }
        }
    }
    if !batch.is_empty() {
        batch.commit().context("indexing memberships")?;
    }
    Ok(indexed)
}

/// Moves every layout-1 dedup entry to its layout-2 key, value unchanged.
fn rekey_dedup(db: &Database, dedup: &Keyspace) -> Result<u64, StoreError> {
    let snapshot = db.snapshot();
    let mut moved = 0u64;
    let mut batch = durable_batch(db);
    for guard in snapshot.iter(dedup) {
        let (k, v) = guard.into_inner().context("scanning dedup entries")?;
        let mut r = Reader::of_key(&k, "dedup")?;
        let (app, sender, client_msg_id) = (r.str()?, r.str()?, r.str()?);
        r.end()?;
        let new = codec::dedup_key(&app, &sender, &client_msg_id);
        if new[..] == k[..] {
            continue;
        }
        batch.remove(dedup, k.to_vec());
        batch.insert(dedup, new, v.to_vec());
        moved += 1;
        // Two records (remove, insert) per entry.
        if batch.len() == 2 * UPGRADE_BATCH {
            let full = std::mem::replace(&mut batch, durable_batch(db));
            full.commit().context("re-keying dedup entries")?;
        }
    }
    if !batch.is_empty() {
        batch.commit().context("re-keying dedup entries")?;
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::{FjallStore, Store, StoreConfig, StoredMessage, Write, WriteResult};

    fn append(client_msg_id: &str) -> Write {
        Write::AppendMessage {
            app: "app".into(),
            message: StoredMessage {
                conversation: "c".into(),
                seq: 0,
                sender: "alice".into(),
                sender_device: "phone".into(),
                client_msg_id: client_msg_id.into(),
                time_ms: 0,
                class: 0,
                content: Bytes::from_static(b"hi"),
                tombstone: false,
                audience: Vec::new(),
            },
            content_hash: [7; 32],
            participants: vec!["alice".into(), "bob".into()],
        }
    }

    /// A layout-1 store (dedup keys hashed over the client id too, no marker) is re-keyed on
    /// open: retries of its messages are still found, and a second open moves nothing.
    #[test]
    fn a_layout_1_store_is_upgraded_and_its_retries_still_deduplicated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = StoreConfig::new(dir.path());
        let ids: Vec<String> = (0..UPGRADE_BATCH + 5).map(|i| format!("id-{i}")).collect();
        {
            let store = FjallStore::open(&config).expect("open");
            let writes: Vec<Write> = ids.iter().map(|id| append(id)).collect();
            store.commit(&writes).expect("commit");
            // Turn the store back into layout 1.
            let mut batch = store.db.batch();
            for id in &ids {
                let new = codec::dedup_key("app", "alice", id);
                let old = codec::key(&["app", "alice", id], None);
                let v = store.ks.dedup.get(&new).expect("get").expect("entry");
                batch.remove(&store.ks.dedup, new);
                batch.insert(&store.ks.dedup, old, v.to_vec());
            }
            batch.remove(&store.ks.meta, LAYOUT_KEY);
            batch.commit().expect("downgrade");
        }
        let store = FjallStore::open(&config).expect("reopen");
        let retries: Vec<Write> = [0, UPGRADE_BATCH, UPGRADE_BATCH + 4]
            .iter()
            .map(|&i| append(&ids[i]))
            .collect();
        let seqs: Vec<_> = store
            .commit(&retries)
            .expect("retry")
            .into_iter()
            .map(|r| match r {
                WriteResult::Appended {
                    seq,
                    duplicate: true,
                    ..
                } => seq,
                other => panic!("not a duplicate: {other:?}"),
            })
            .collect();
        let expected: Vec<u64> = [1, UPGRADE_BATCH + 1, UPGRADE_BATCH + 5]
            .iter()
            .map(|&s| s as u64)
            .collect();
        assert_eq!(seqs, expected);
        assert_eq!(upgrade(&store.db, &store.ks).expect("again"), (0, 0));
    }

    /// A layout-2 store (groups, no membership index) gets its index built on open.
    #[test]
    fn a_layout_2_store_gets_its_membership_index() {
        use crate::{GroupOp, GroupRole, NoticeRenderer};
        let dir = tempfile::tempdir().expect("tempdir");
        let config = StoreConfig::new(dir.path());
        let group = |group: &str, members: &[&str]| Write::Group {
            app: "app".into(),
            group: group.into(),
            actor: "own".into(),
            device: "d".into(),
            op: GroupOp::Create {
                name: String::new(),
                private: false,
                members: members.iter().map(|m| (*m).to_owned()).collect(),
            },
            max_members: 10,
            render: NoticeRenderer(|_| Bytes::new()),
        };
        {
            let store = FjallStore::open(&config).expect("open");
            store
                .commit(&[group("a", &["bob"]), group("b", &["bob", "carol"])])
                .expect("commit");
            // Back to layout 2: no index.
            let snapshot = store.db.snapshot();
            let mut batch = store.db.batch();
            for guard in snapshot.iter(&store.ks.memberships) {
                let (k, _) = guard.into_inner().expect("scan");
                batch.remove(&store.ks.memberships, k.to_vec());
            }
            batch.insert(&store.ks.meta, LAYOUT_KEY, 2u32.to_be_bytes());
            // What an interrupted upgrade under a later-rolled-back build could leave: an
            // entry whose group no longer has the user.
            batch.insert(
                &store.ks.memberships,
                codec::membership_key("app", "ghost", "a"),
                [1u8],
            );
            batch.commit().expect("downgrade");
            assert!(
                store
                    .user_groups("app", "bob", "", 10)
                    .expect("read")
                    .is_empty()
            );
        }
        let store = FjallStore::open(&config).expect("reopen");
        let mut bobs = store.user_groups("app", "bob", "", 10).expect("read");
        bobs.sort();
        assert_eq!(
            bobs,
            [
                ("a".to_owned(), GroupRole::Member),
                ("b".to_owned(), GroupRole::Member)
            ]
        );
        assert_eq!(
            store.user_groups("app", "own", "", 10).expect("read").len(),
            2
        );
        assert!(
            store
                .user_groups("app", "ghost", "", 10)
                .expect("read")
                .is_empty(),
            "the stale entry is cleared"
        );
        assert_eq!(upgrade(&store.db, &store.ks).expect("again"), (0, 0));
    }

    #[test]
    fn a_newer_layout_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = StoreConfig::new(dir.path());
        {
            let store = FjallStore::open(&config).expect("open");
            store
                .ks
                .meta
                .insert(LAYOUT_KEY, (CURRENT + 1).to_be_bytes())
                .expect("mark");
        }
        let err = FjallStore::open(&config).expect_err("newer layout");
        assert!(err.to_string().contains("newer than this build"), "{err}");
    }
}
