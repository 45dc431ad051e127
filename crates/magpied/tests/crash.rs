//! kill -9 of the server right after an ack: after a restart on the same data directory, every
//! acknowledged message is there ([SYNC-5.2]).

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use common::*;
use magpie_session::pb;

fn spawn_server(dir: &std::path::Path) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_magpied"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(["--app", &format!("{APP}:{SECRET}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("magpied starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("magpied prints its address")
            .expect("utf-8");
        if let Some(rest) = line.strip_prefix("magpied listening on ") {
            break rest.trim().parse().expect("an address");
        }
    };
    (child, addr)
}

#[tokio::test]
async fn acknowledged_messages_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, addr) = spawn_server(dir.path());
    let mut alice = TestClient::login(addr, "alice", "a-phone").await;
    let mut acked = Vec::new();
    for i in 0..20 {
        let a = ack(alice
            .send_text("bob", &format!("k{i}"), &format!("before the crash {i}"))
            .await);
        acked.push(a.seq);
    }
    // SIGKILL: no shutdown path runs.
    child.kill().expect("kill -9");
    let _ = child.wait();

    let (mut child, addr) = spawn_server(dir.path());
    let mut bob = TestClient::login(addr, "bob", "b-phone").await;
    let (events, _) = bob.sync_all(pb::Cursor::default()).await;
    let seqs: Vec<u64> = messages(&events).iter().map(|m| m.seq).collect();
    assert_eq!(seqs, acked, "every acknowledged message is there, in order");
    let _ = child.kill();
    let _ = child.wait();
}
