//! "Ack only after commit" at the store level: a child process commits in a loop and prints every
//! acked seq; the test kills it with SIGKILL mid-stream, reopens the store, and finds every acked
//! seq, with no gap below the last one.
//!
//! The child is this test binary itself, run with `CRASH_CHILD_DIR` set, filtered to the
//! `crash_child` test.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{APP, append, seq_of};
use magpie_store::{Durability, FjallStore, Store, StoreConfig, WriteResult};

const DIR_VAR: &str = "CRASH_CHILD_DIR";
const MODE_VAR: &str = "CRASH_CHILD_MODE";
const CONVERSATION: &str = "u:alice:bob";

/// The client ids of the child's batch `n`: `n % 4 + 1` of them.
fn batch_ids(n: u64) -> impl Iterator<Item = String> {
    (0..=(n % 4)).map(move |i| format!("c{n}-{i}"))
}

/// The message with client id `id`, as the child sends it and the check retries it.
fn send(id: &str) -> magpie_store::Write {
    append(CONVERSATION, "alice", id, "x", &["alice", "bob"])
}

/// In the child: commit batches of 1 to 4 messages until killed (or 30 s pass), printing
/// `ACK <seq>` for each after its commit returns. In a normal test run: does nothing.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let mut config = StoreConfig::new(dir);
    if std::env::var(MODE_VAR).as_deref() == Ok("relaxed") {
        config.durability = Durability::Relaxed;
    }
    let store = FjallStore::open(&config).unwrap();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(30) {
        let batch: Vec<_> = batch_ids(n).map(|id| send(&id)).collect();
        n += 1;
        for r in store.commit(&batch).unwrap() {
            // `println!` goes through a line-buffered stdout: each ack leaves as its own line.
            println!("ACK {}", seq_of(&r));
        }
    }
}

fn crash_and_check(mode: &str, kill_after: usize) {
    let dir = tempfile::tempdir().expect("crash test step");
    let mut child = Command::new(std::env::current_exe().expect("crash test step"))
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(DIR_VAR, dir.path())
        .env(MODE_VAR, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("crash test step");
    let mut lines = BufReader::new(child.stdout.take().expect("crash test step")).lines();
    let mut acked = Vec::new();
    let mut killed = false;
    for line in lines.by_ref() {
        let line = line.expect("crash test step");
        // libtest may print "test crash_child ... " before the first ack, on the same line.
        if let Some(at) = line.find("ACK ") {
            acked.push(line[at + 4..].parse::<u64>().expect("crash test step"));
        }
        if !killed && acked.len() >= kill_after {
            child.kill().expect("crash test step"); // SIGKILL: no destructor, no final flush
            killed = true;
        }
    }
    // The loop ends at EOF, after the kill: the acks still in the pipe were read too.
    assert!(killed, "the child stopped after {} acks", acked.len());
    let status = child.wait().expect("crash test step");
    assert!(!status.success(), "the child was killed: {status:?}");

    let store = FjallStore::open(&StoreConfig::new(dir.path())).expect("crash test step");
    let last = store
        .conversation(APP, CONVERSATION)
        .expect("crash test step")
        .last_seq;
    let max_acked = *acked.iter().max().expect("crash test step");
    assert_eq!(acked.len() as u64, max_acked, "every ack line was read");
    assert!(
        last >= max_acked,
        "acked up to {max_acked}, store has {last}"
    );
    let stored: Vec<u64> = store
        .history(APP, CONVERSATION, 1, false, usize::MAX)
        .expect("crash test step")
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(stored, (1..=last).collect::<Vec<_>>(), "gap-free");
    // Every stored message has its events.
    assert_eq!(
        store
            .stream(APP, "bob")
            .expect("crash test step")
            .expect("stream")
            .last_offset,
        last
    );
    // [SYNC-5.3]: every stored message is found by its client id after the crash.
    let retries: Vec<_> = (0..)
        .flat_map(batch_ids)
        .take(usize::try_from(last).expect("crash test step"))
        .map(|id| send(&id))
        .collect();
    for (seq, answer) in (1..).zip(store.commit(&retries).expect("crash test step")) {
        assert!(
            matches!(answer, WriteResult::Appended { seq: s, duplicate: true, .. } if s == seq),
            "retry of seq {seq}: {answer:?}"
        );
    }
    eprintln!(
        "{mode}: {} acked (max {max_acked}), {last} stored",
        acked.len()
    );
}

#[test]
fn every_acked_commit_survives_sigkill() {
    crash_and_check("immediate", 300);
}

#[test]
fn relaxed_commits_survive_a_process_crash() {
    crash_and_check("relaxed", 2000);
}
