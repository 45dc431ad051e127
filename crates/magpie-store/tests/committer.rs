//! The group committer: concurrent submits are merged into fewer durable commits, every one is
//! answered, and seqs stay unique and gap-free.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{APP, append, open};
use magpie_store::{
    ConversationInfo, Delivered, Durability, GroupCommitter, GroupRecord, GroupRole,
    RetentionStats, Store, StoreConfig, StoreError, StoredMessage, StreamHead, Write, WriteResult,
};

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

/// A store whose `commit` and `sync` each wait for a permit of the test's: to see what the
/// committer does between a batch's write and its fsync.
struct Gated {
    inner: Arc<magpie_store::FjallStore>,
    commit_permits: Mutex<mpsc::Receiver<()>>,
    sync_permits: Mutex<mpsc::Receiver<()>>,
    /// `sync` fails after its permit.
    fail_sync: bool,
    /// Calls entered so far: (commit, sync).
    entered: Arc<(AtomicU64, AtomicU64)>,
}

/// The test's side of a [`Gated`] store.
struct Gates {
    commit: mpsc::Sender<()>,
    sync: mpsc::Sender<()>,
    entered: Arc<(AtomicU64, AtomicU64)>,
}

fn gated(dir: &std::path::Path, fail_sync: bool) -> (Arc<dyn Store>, Gates) {
    let (commit, commit_permits) = mpsc::channel();
    let (sync, sync_permits) = mpsc::channel();
    let entered = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let store = Gated {
        inner: open(dir),
        commit_permits: Mutex::new(commit_permits),
        sync_permits: Mutex::new(sync_permits),
        fail_sync,
        entered: entered.clone(),
    };
    let gates = Gates {
        commit,
        sync,
        entered,
    };
    (Arc::new(store), gates)
}

impl Store for Gated {
    fn commit(&self, batch: &[Write]) -> Result<Vec<WriteResult>, StoreError> {
        self.entered.0.fetch_add(1, Ordering::SeqCst);
        let permit = self.commit_permits.lock().expect("gate").recv();
        permit.map_err(|_| StoreError::CommitterStopped)?;
        self.inner.commit(batch)
    }
    fn write(&self, batch: &[Write]) -> Result<Vec<WriteResult>, StoreError> {
        self.inner.write(batch)
    }
    fn sync(&self) -> Result<(), StoreError> {
        self.entered.1.fetch_add(1, Ordering::SeqCst);
        let permit = self.sync_permits.lock().expect("gate").recv();
        if self.fail_sync || permit.is_err() {
            return Err(StoreError::InvalidInput("the disk is on fire".into()));
        }
        self.inner.sync()
    }
    fn durability(&self) -> Durability {
        self.inner.durability()
    }
    fn stream(&self, app: &str, user: &str) -> Result<Option<StreamHead>, StoreError> {
        self.inner.stream(app, user)
    }
    fn read_events(
        &self,
        app: &str,
        user: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Delivered>, StoreError> {
        self.inner.read_events(app, user, after, limit)
    }
    fn history(
        &self,
        app: &str,
        conversation: &str,
        from: u64,
        backward: bool,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.inner.history(app, conversation, from, backward, limit)
    }
    fn conversation(&self, app: &str, conversation: &str) -> Result<ConversationInfo, StoreError> {
        self.inner.conversation(app, conversation)
    }
    fn read_seq(&self, app: &str, user: &str, conversation: &str) -> Result<u64, StoreError> {
        self.inner.read_seq(app, user, conversation)
    }
    fn group(&self, app: &str, group: &str) -> Result<Option<GroupRecord>, StoreError> {
        self.inner.group(app, group)
    }
    fn user_groups(
        &self,
        app: &str,
        user: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, GroupRole)>, StoreError> {
        self.inner.user_groups(app, user, after, limit)
    }
    fn revoked_before(&self, app: &str, user: &str) -> Result<u64, StoreError> {
        self.inner.revoked_before(app, user)
    }
    fn apply_retention(
        &self,
        now_ms: u64,
        max_age_ms: u64,
        max_count: u64,
    ) -> Result<RetentionStats, StoreError> {
        self.inner.apply_retention(now_ms, max_age_ms, max_count)
    }
}

/// Waits (up to 5 s) until `done`.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 5 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How long a future that must not finish is given.
const NOT_YET: Duration = Duration::from_millis(150);

async fn still_pending<F: Future + Unpin>(what: &str, f: &mut F) {
    assert!(
        tokio::time::timeout(NOT_YET, f).await.is_err(),
        "{what} finished too early"
    );
}

fn message(i: u32) -> Write {
    append("u:a:b", "a", &i.to_string(), "x", &["a", "b"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_load_the_fsync_runs_beside_the_writes_and_reads_wait_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, gates) = gated(dir.path(), false);
    let committer = GroupCommitter::start(store.clone(), 1);
    // A lone write: committed with its own fsync, no sync thread. It waits in `commit` while
    // two more queue.
    let first = committer.enqueue(message(1)).unwrap();
    eventually("the first commit", || {
        gates.entered.0.load(Ordering::SeqCst) == 1
    })
    .await;
    let mut second = Box::pin(committer.enqueue(message(2)).unwrap());
    // A retry of the second: a batch that changes nothing, so it needs no fsync of its own,
    // but it must not be answered, nor let readers on, before the second is durable.
    let mut retry = Box::pin(committer.enqueue(message(2)).unwrap());
    gates.commit.send(()).unwrap();
    assert_eq!(common::seq_of(&first.await.unwrap()), 1);
    // The first went through `commit` (its own fsync, `entered.0` above), not the sync thread;
    // by now the second may already be waiting in its fsync, but nothing else.
    assert!(
        gates.entered.1.load(Ordering::SeqCst) <= 1,
        "only the second's fsync beside"
    );
    // The second had the retry behind it: written, handed to the sync thread, waiting in its
    // fsync. The retry follows it there, since the second is not settled.
    eventually("the second's fsync", || {
        gates.entered.1.load(Ordering::SeqCst) == 1
    })
    .await;
    eventually("the retry's write", || committer.stats().commits == 3).await;
    assert_eq!(
        gates.entered.0.load(Ordering::SeqCst),
        1,
        "no commit of its own"
    );
    assert_eq!(
        store.conversation(APP, "u:a:b").unwrap().last_seq,
        2,
        "visible before the fsync"
    );
    let mut settled = Box::pin(committer.settled());
    still_pending("the second's answer", &mut second).await;
    still_pending("the retry's answer", &mut retry).await;
    still_pending("a reader that saw the second", &mut settled).await;
    gates.sync.send(()).unwrap();
    gates.sync.send(()).unwrap();
    assert_eq!(common::seq_of(&second.await.unwrap()), 2);
    assert!(matches!(
        retry.await.unwrap(),
        WriteResult::Appended {
            seq: 2,
            duplicate: true,
            ..
        }
    ));
    settled.await.expect("durable");
    let stats = committer.stats();
    assert_eq!(stats.commits, 3, "{stats:?}");
    assert!((1..=2).contains(&stats.syncs), "{stats:?}");
    committer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failed_fsync_nothing_is_acknowledged_or_shown() {
    let dir = tempfile::tempdir().unwrap();
    let (store, gates) = gated(dir.path(), true);
    let committer = GroupCommitter::start(store, 1);
    let first = committer.enqueue(message(1)).unwrap();
    eventually("the first commit", || {
        gates.entered.0.load(Ordering::SeqCst) == 1
    })
    .await;
    let second = committer.enqueue(message(2)).unwrap();
    let third = committer.enqueue(message(3)).unwrap();
    gates.commit.send(()).unwrap();
    assert!(first.await.is_ok());
    eventually("the second's fsync", || {
        gates.entered.1.load(Ordering::SeqCst) == 1
    })
    .await;
    let settled = committer.settled();
    gates.sync.send(()).unwrap();
    let second = second.await;
    assert!(
        matches!(second, Err(StoreError::InvalidInput(_))),
        "{second:?}"
    );
    // Written during the failed fsync, or after it: not acknowledged either.
    gates.sync.send(()).unwrap();
    gates.commit.send(()).unwrap();
    assert!(third.await.is_err(), "acknowledged after a failed fsync");
    gates.commit.send(()).unwrap();
    let later = tokio::time::timeout(Duration::from_secs(5), committer.submit(message(4)))
        .await
        .expect("answered");
    assert!(
        later.is_err(),
        "acknowledged after a failed fsync: {later:?}"
    );
    let settled = tokio::time::timeout(Duration::from_secs(5), settled)
        .await
        .expect("a failed batch still settles");
    assert!(settled.is_err(), "what the reader saw may not be durable");
    committer.close().await;
}

#[tokio::test]
async fn with_relaxed_durability_nothing_waits_for_an_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.durability = Durability::Relaxed;
    let store = Arc::new(magpie_store::FjallStore::open(&config).unwrap());
    let committer = GroupCommitter::start(store as Arc<dyn Store>, 0);
    assert!(committer.submit(message(1)).await.is_ok());
    committer.settled().await.expect("settled at once");
    assert_eq!(committer.stats().syncs, 0);
    committer.close().await;
}
