//! The dedup index across its tiers ([SYNC-5.3]): changes in memory, changes being ingested,
//! ingested tables, and the log replayed after a reopen. A small `dedup_ingest_entries` makes
//! ingestions happen within a few commits.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{APP, append, seq_of};
use magpie_store::{FjallStore, Store, StoreConfig, WriteResult};

const CONVERSATION: &str = "d:alice:bob";

fn open_with(dir: &Path, ingest_entries: usize) -> FjallStore {
    let config = StoreConfig {
        dedup_ingest_entries: ingest_entries,
        ..StoreConfig::new(dir)
    };
    FjallStore::open(&config).expect("open store")
}

fn send(id: &str, body: &str) -> magpie_store::Write {
    append(CONVERSATION, "alice", id, body, &["alice", "bob"])
}

/// Waits until the changes in memory fall below `below` (ingestions run on their own thread).
fn wait_for_ingestion(store: &FjallStore, below: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = store.dedup_in_memory();
        if n < below {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "{n} dedup changes still in memory"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Every id retried with its body is answered with the first append's values; retried with
/// another body, it is refused.
fn check_retries(store: &FjallStore, firsts: &[(String, WriteResult)]) {
    let retries: Vec<_> = firsts.iter().map(|(id, _)| send(id, "hello")).collect();
    let answers = store.commit(&retries).expect("retry");
    for ((id, first), answer) in firsts.iter().zip(&answers) {
        let (
            WriteResult::Appended {
                seq,
                time_ms,
                offsets,
                duplicate: false,
            },
            WriteResult::Appended {
                seq: seq2,
                time_ms: time2,
                offsets: offsets2,
                duplicate: true,
            },
        ) = (first, answer)
        else {
            panic!("{id}: first {first:?}, retry {answer:?}");
        };
        assert_eq!((seq, time_ms, offsets), (seq2, time2, offsets2), "{id}");
    }
    let reused: Vec<_> = firsts.iter().map(|(id, _)| send(id, "changed")).collect();
    for (answer, (id, _)) in store.commit(&reused).expect("reuse").iter().zip(firsts) {
        assert!(
            matches!(answer, WriteResult::ClientIdReused),
            "{id}: {answer:?}"
        );
    }
}

#[test]
fn retries_are_answered_from_every_tier_and_after_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_with(dir.path(), 16);
    let mut firsts = Vec::new();
    for b in 0..10 {
        let batch: Vec<_> = (0..10)
            .map(|i| send(&format!("m{b}-{i}"), "hello"))
            .collect();
        let ids = (0..10).map(|i| format!("m{b}-{i}"));
        firsts.extend(ids.zip(store.commit(&batch).expect("commit")));
    }
    // 100 changes with 16 per ingestion: most of them are in tables by now, on their own.
    wait_for_ingestion(&store, 100);
    store.ingest_dedup_now().expect("ingest");
    assert_eq!(store.dedup_in_memory(), 0);
    // Ten more stay in memory: fewer than an ingestion takes.
    for i in 0..10 {
        let id = format!("late{i}");
        let r = store.commit(&[send(&id, "hello")]).expect("commit");
        firsts.push((id, r.into_iter().next().expect("one result")));
    }
    assert_eq!(store.dedup_in_memory(), 10);
    check_retries(&store, &firsts);
    assert_eq!(
        store
            .history(APP, CONVERSATION, 1, false, 1000)
            .unwrap()
            .len(),
        110,
        "retries stored nothing"
    );
    drop(store);

    // The log holds what was not ingested, and only that: ingested records were deleted.
    let store = open_with(dir.path(), 16);
    assert_eq!(store.dedup_in_memory(), 10, "replayed from the log");
    check_retries(&store, &firsts);
    drop(store);

    // With a threshold never reached, the replayed log alone answers for the late ten.
    let store = open_with(dir.path(), 1 << 16);
    assert_eq!(store.dedup_in_memory(), 10);
    check_retries(&store, &firsts);
    assert_eq!(store.conversation(APP, CONVERSATION).unwrap().last_seq, 110);
}

#[test]
fn retention_removes_entries_from_every_tier_for_good() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_with(dir.path(), 4);
    for i in 0..20 {
        let r = store
            .commit(&[send(&format!("r{i}"), "hello")])
            .expect("commit");
        assert_eq!(seq_of(&r[0]), i + 1);
    }
    wait_for_ingestion(&store, 20);
    let stats = store
        .apply_retention(u64::MAX / 2, 0, 5)
        .expect("retention");
    assert_eq!((stats.messages, stats.dedup_entries), (15, 15));

    let again = |store: &FjallStore, id: &str| match &store.commit(&[send(id, "hello")]).unwrap()[0]
    {
        WriteResult::Appended { seq, duplicate, .. } => (*seq, *duplicate),
        other => panic!("{id}: {other:?}"),
    };
    // A dropped message's id is new again ([SYNC-5.3] keeps entries with their messages).
    assert_eq!(again(&store, "r0"), (21, false));
    assert_eq!(again(&store, "r19"), (20, true));
    drop(store);

    // A reopen replays the log, removals included: nothing dropped comes back.
    let store = open_with(dir.path(), 4);
    assert_eq!(again(&store, "r1"), (22, false));
    assert_eq!(again(&store, "r0"), (21, true));
    assert_eq!(again(&store, "r15"), (16, true));
    wait_for_ingestion(&store, 4);
    drop(store);

    let store = open_with(dir.path(), 1 << 16);
    assert_eq!(again(&store, "r2"), (23, false));
    assert_eq!(again(&store, "r1"), (22, true));
    assert_eq!(again(&store, "r14"), (24, false));
}
