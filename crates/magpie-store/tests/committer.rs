//! The group committer: concurrent submits are merged into fewer durable commits, every one is
//! answered, and seqs stay unique and gap-free.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{APP, append, open};
use magpie_store::{GroupCommitter, Store, StoreError, WriteResult};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_submits_are_grouped() {
    const TASKS: usize = 50;
    const PER_TASK: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let committer = GroupCommitter::start(store.clone() as Arc<dyn Store>, 0);
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let committer = committer.clone();
        handles.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for i in 0..PER_TASK {
                let conversation = format!("g:room-{}", (t + i) % 4);
                let w = append(
                    &conversation,
                    &format!("user-{t}"),
                    &format!("{t}-{i}"),
                    "hello",
                    &[&format!("user-{t}"), "watcher"],
                );
                let r = committer.submit(w).await.expect("submit");
                acks.push((conversation, r));
            }
            acks
        }));
    }
    let mut seqs: HashMap<String, Vec<u64>> = HashMap::new();
    for h in handles {
        for (conversation, r) in h.await.unwrap() {
            let WriteResult::Appended {
                seq,
                duplicate: false,
                offsets,
                ..
            } = r
            else {
                panic!("{r:?}")
            };
            assert_eq!(offsets.len(), 2);
            seqs.entry(conversation).or_default().push(seq);
        }
    }
    let mut total = 0;
    for (conversation, mut s) in seqs {
        s.sort_unstable();
        let n = s.len() as u64;
        assert_eq!(s, (1..=n).collect::<Vec<_>>(), "{conversation}");
        assert_eq!(store.conversation(APP, &conversation).unwrap().last_seq, n);
        total += n;
    }
    assert_eq!(total, (TASKS * PER_TASK) as u64);
    // Every message reached the shared watcher's stream, each offset once.
    let head = store.stream(APP, "watcher").unwrap().expect("stream");
    assert_eq!(head.last_offset, total);

    let stats = committer.stats();
    assert_eq!(stats.writes, total);
    assert!(stats.largest_batch > 1, "no batch was merged: {stats:?}");
    assert!(stats.commits < total, "{stats:?}");
    assert_eq!(store.commits(), stats.commits);
    eprintln!("{stats:?}");
    committer.close().await;
}

#[tokio::test]
async fn an_invalid_write_is_refused_alone_and_close_drains_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let committer = GroupCommitter::start(store.clone() as Arc<dyn Store>, 4);
    let long = "x".repeat(magpie_store::MAX_ID_LEN + 1);
    let (bad, good) = tokio::join!(
        committer.submit(append("u:a:b", &long, "1", "x", &["b"])),
        committer.submit(append("u:a:b", "a", "2", "y", &["a", "b"])),
    );
    assert!(matches!(bad, Err(StoreError::InvalidInput(_))), "{bad:?}");
    assert!(matches!(good, Ok(WriteResult::Appended { seq: 1, .. })));

    // Writes whose submitters went away are still committed before the thread exits.
    let c2 = committer.clone();
    let pending: Vec<_> = (0..10)
        .map(|i| {
            let c = c2.clone();
            tokio::spawn(async move {
                c.submit(append("u:a:b", "a", &format!("late-{i}"), "z", &["a", "b"]))
                    .await
            })
        })
        .collect();
    drop(c2);
    for p in pending {
        assert!(p.await.unwrap().is_ok());
    }
    committer.close().await;
    assert_eq!(store.conversation(APP, "u:a:b").unwrap().last_seq, 11);
    // The thread dropped its reference to the store.
    assert_eq!(Arc::strong_count(&store), 1);
}
