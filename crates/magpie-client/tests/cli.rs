//! The `magpie` binary: `token`, and `send`/`listen`/`chat` against the in-process server;
//! `group` against a magpied on 127.0.0.1 (the in-process server has no groups).

mod common;

use std::process::Stdio;

use common::{APP, FakeServer, LIMIT, SECRET, conversation, start_magpied};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

struct Output {
    success: bool,
    stdout: String,
    stderr: String,
}

async fn magpie(args: &[&str]) -> Output {
    let out = tokio::time::timeout(
        LIMIT * 2,
        Command::new(env!("CARGO_BIN_EXE_magpie"))
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("magpie finished in time")
    .expect("magpie runs");
    Output {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

async fn mint(user: &str, device: &str, platform: &str) -> String {
    let out = magpie(&[
        "token",
        "--app",
        APP,
        "--secret",
        SECRET,
        "--user",
        user,
        "--device",
        device,
        "--platform",
        platform,
        "--ttl",
        "600",
    ])
    .await;
    assert!(out.success, "{}", out.stderr);
    out.stdout.lines().last().expect("a token line").to_owned()
}

#[tokio::test]
async fn token_is_verifiable_and_last() {
    let token = mint("alice", "phone-1", "ios").await;
    let secret = magpie_auth::AppSecret::new(SECRET).expect("secret");
    let hello =
        magpie_auth::LoginContext::new(APP, "phone-1", magpie_auth::Platform::Ios).expect("ctx");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let ok = magpie_auth::verify(
        &token,
        &secret,
        &hello,
        now,
        &magpie_auth::VerifyPolicy::default(),
    )
    .expect("valid");
    assert_eq!(ok.claims.user_id, "alice");
    assert_eq!(ok.claims.expires - ok.claims.not_before, 600);
    assert!(ok.claims.not_before.abs_diff(now) <= 5);

    let bad = magpie(&["token", "--app", APP, "--secret", "short", "--user", "a"]).await;
    assert!(!bad.success);
    assert!(bad.stderr.contains("secret"), "{}", bad.stderr);
}

#[tokio::test]
async fn send_then_listen() {
    let server = FakeServer::start().await;
    let addr = server.addr();
    let token = mint("alice", "*", "other").await;
    let send = [
        "send",
        "--server",
        &addr,
        "--app",
        APP,
        "--token",
        &token,
        "--to",
        "bob",
        "--client-msg-id",
        "cli-1",
        "hello",
        "there",
    ];
    let out = magpie(&send).await;
    assert!(out.success, "{}", out.stderr);
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert_eq!(lines[0]["conversation_id"], "d:alice:bob");
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[0]["message_id"], "d:alice:bob/1");
    assert_eq!(lines[0]["duplicate"], false);

    // The same client message id again: stored once ([SYNC-5.3]).
    let out = magpie(&send).await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(json_lines(&out.stdout)[0]["duplicate"], true);
    assert_eq!(
        server.state().conversations[&conversation("alice", "bob")].len(),
        1
    );

    let out = magpie(&[
        "listen",
        "--server",
        &addr,
        "--app",
        APP,
        "--token",
        "ok:bob",
        "--count",
        "1",
        "--timeout",
        "10",
    ])
    .await;
    assert!(out.success, "{}", out.stderr);
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    let m = &lines[0];
    assert_eq!(m["type"], "message");
    assert_eq!(m["offset"], 1);
    assert_eq!(m["seq"], 1);
    assert_eq!(m["sender"], "alice");
    assert_eq!(m["client_msg_id"], "cli-1");
    assert_eq!(m["text"], "hello there");
    assert!(m["server_time_ms"].as_u64().is_some_and(|t| t > 0));
}

#[tokio::test]
async fn listen_prints_live_events_until_count() {
    let server = FakeServer::start().await;
    let addr = server.addr();
    server.inject("alice", "bob", "old");
    let mut child = Command::new(env!("CARGO_BIN_EXE_magpie"))
        .args([
            "listen",
            "--server",
            &addr,
            "--app",
            APP,
            "--token",
            "ok:bob",
            "--new-only",
            "--count",
            "2",
            "--timeout",
            "10",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    server.wait_for("bob online", |s| s.online("bob")).await;
    server.inject("alice", "bob", "one");
    server.inject("alice", "bob", "two");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut texts = Vec::new();
    while let Some(line) = tokio::time::timeout(LIMIT, lines.next_line())
        .await
        .expect("a line in time")
        .expect("read")
    {
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        texts.push(v["text"].as_str().unwrap_or_default().to_owned());
    }
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success());
    // --new-only: what was stored before the session opened is skipped.
    assert_eq!(texts, ["one", "two"]);
}

#[tokio::test]
async fn failures_exit_non_zero_with_the_code_name() {
    let server = FakeServer::start().await;
    let addr = server.addr();
    let out = magpie(&[
        "send", "--server", &addr, "--app", APP, "--token", "expired", "--to", "bob", "hi",
    ])
    .await;
    assert!(!out.success);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("TOKEN_EXPIRED"), "{}", out.stderr);
    assert!(out.stderr.contains("token expired at"), "{}", out.stderr);

    let out = magpie(&[
        "send", "--server", &addr, "--app", APP, "--token", "ok:alice", "--to", "b c", "hi",
    ])
    .await;
    assert!(!out.success);
    assert!(out.stderr.contains("INVALID_USER_ID"), "{}", out.stderr);

    let out = magpie(&[
        "listen",
        "--server",
        &addr,
        "--app",
        APP,
        "--token",
        "ok:bob",
        "--count",
        "1",
        "--timeout",
        "1",
    ])
    .await;
    assert!(!out.success);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
}

#[tokio::test]
async fn chat_sends_lines_and_prints_messages() {
    let server = FakeServer::start().await;
    let addr = server.addr();
    server.inject("bob", "alice", "earlier");
    let mut child = Command::new(env!("CARGO_BIN_EXE_magpie"))
        .args([
            "chat", "--server", &addr, "--app", APP, "--token", "ok:alice", "--to", "bob",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = async || {
        tokio::time::timeout(LIMIT, lines.next_line())
            .await
            .expect("a line in time")
            .expect("read")
            .expect("a line")
    };
    // History first.
    assert!(next().await.ends_with("bob: earlier"));
    server.inject("bob", "alice", "ping");
    assert!(next().await.ends_with("bob: ping"));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"pong\n").await.expect("write");
    drop(stdin);
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .expect("exits on EOF")
        .expect("status");
    assert!(status.success());
    let state = server.state();
    let messages = &state.conversations[&conversation("alice", "bob")];
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[2].sender, "alice");
}

/// `magpie CMD --server ADDR --app APP --token (fresh for USER) ARGS..`: magpied refuses a
/// token used before, so every run mints its own.
async fn magpie_as(addr: &str, user: &str, cmd: &[&str], args: &[&str]) -> Output {
    let token = mint(user, "*", "other").await;
    let mut all = cmd.to_vec();
    all.extend(["--server", addr, "--app", APP, "--token", &token]);
    all.extend(args);
    magpie(&all).await
}

#[tokio::test]
async fn group_create_send_and_info() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_magpied(dir.path(), "127.0.0.1:0".parse().expect("addr")).await;
    let addr = server.local_addr().to_string();

    let out = magpie_as(
        &addr,
        "alice",
        &["group", "create"],
        &["team", "--name", "The team", "bob", "carol"],
    )
    .await;
    assert!(out.success, "{}", out.stderr);
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    let reply = &lines[0];
    assert_eq!(reply["conversation_id"], "g:team");
    assert_eq!(reply["seq"], 1, "the CREATED notice");
    assert_eq!(reply["pending"], false);
    let group = &reply["group"];
    assert_eq!(group["group_id"], "team");
    assert_eq!(group["name"], "The team");
    assert_eq!(group["private"], false);
    assert_eq!(group["owner"], "alice");
    assert_eq!(group["member_count"], 3);

    let out = magpie_as(
        &addr,
        "alice",
        &["send"],
        &["--to", "g:team", "hello", "team"],
    )
    .await;
    assert!(out.success, "{}", out.stderr);
    let ack = &json_lines(&out.stdout)[0];
    assert_eq!(ack["conversation_id"], "g:team");
    assert_eq!(ack["seq"], 2);

    // Bob's stream: the notice that made him a member, then the message.
    let out = magpie_as(
        &addr,
        "bob",
        &["listen"],
        &["--count", "2", "--timeout", "10"],
    )
    .await;
    assert!(out.success, "{}", out.stderr);
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert_eq!(lines[0]["conversation_id"], "g:team");
    assert_eq!(lines[0]["class"], "notification");
    assert_eq!(lines[0]["sender"], "alice");
    assert!(
        lines[0]["content"]
            .as_str()
            .is_some_and(|c| c.starts_with("group: alice created")),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1]["conversation_id"], "g:team");
    assert_eq!(lines[1]["seq"], 2);
    assert_eq!(lines[1]["sender"], "alice");
    assert_eq!(lines[1]["text"], "hello team");

    // The owner makes bob an admin; carol sees it in `info` (`g:` accepted).
    let out = magpie_as(
        &addr,
        "alice",
        &["group", "set-role"],
        &["team", "admin", "bob"],
    )
    .await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(json_lines(&out.stdout)[0]["seq"], 3);
    let out = magpie_as(&addr, "carol", &["group", "info"], &["g:team"]).await;
    assert!(out.success, "{}", out.stderr);
    let info = &json_lines(&out.stdout)[0];
    assert_eq!(info["seq"], 0, "info writes no notice");
    let roles: Vec<(String, String)> = info["group"]["members"]
        .as_array()
        .expect("members, for a member")
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().unwrap_or_default().to_owned(),
                m["role"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for want in [("alice", "owner"), ("bob", "admin"), ("carol", "member")] {
        assert!(
            roles.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} in {roles:?}"
        );
    }

    // A request error: the code name on stderr, nothing on stdout, a non-zero exit.
    let out = magpie_as(&addr, "dave", &["group", "kick"], &["team", "bob"]).await;
    assert!(!out.success);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("NOT_PERMITTED"), "{}", out.stderr);
    let out = magpie_as(&addr, "dave", &["send"], &["--to", "g:team", "let me in"]).await;
    assert!(!out.success);
    assert!(
        out.stderr.contains("UNKNOWN_CONVERSATION"),
        "{}",
        out.stderr
    );

    // Admin bob mutes carol for an hour: her send is refused, and `info` shows the mute's end.
    let out = magpie_as(
        &addr,
        "bob",
        &["group", "mute"],
        &["team", "--for", "3600", "carol"],
    )
    .await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(json_lines(&out.stdout)[0]["seq"], 4);
    let out = magpie_as(&addr, "carol", &["send"], &["--to", "g:team", "hush?"]).await;
    assert!(!out.success);
    assert!(out.stderr.contains("MUTED"), "{}", out.stderr);
    let out = magpie_as(&addr, "alice", &["group", "info"], &["team"]).await;
    assert!(out.success, "{}", out.stderr);
    let info = &json_lines(&out.stdout)[0];
    let carol = info["group"]["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["user_id"] == "carol"))
        .cloned()
        .unwrap_or_default();
    assert!(
        carol["muted_until_ms"].as_u64().is_some_and(|t| t > 0),
        "{carol}"
    );
    // Lifted, she speaks again.
    let out = magpie_as(&addr, "alice", &["group", "unmute"], &["team", "carol"]).await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(json_lines(&out.stdout)[0]["seq"], 5);
    let out = magpie_as(&addr, "carol", &["send"], &["--to", "g:team", "thanks"]).await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(json_lines(&out.stdout)[0]["seq"], 6);

    // A message for bob only: carol's stream skips it, bob's carries it with its audience.
    let out = magpie_as(
        &addr,
        "alice",
        &["send"],
        &["--to", "g:team", "--only", "bob", "just", "you"],
    )
    .await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(json_lines(&out.stdout)[0]["seq"], 7);
    let out = magpie_as(
        &addr,
        "bob",
        &["listen"],
        &["--count", "7", "--timeout", "10"],
    )
    .await;
    assert!(out.success, "{}", out.stderr);
    let last = json_lines(&out.stdout).pop().unwrap_or_default();
    assert_eq!(last["seq"], 7, "{last}");
    assert_eq!(last["text"], "just you");
    assert_eq!(last["to_members"], serde_json::json!(["bob"]));

    // Bob's groups: the one, where he is an admin.
    let out = magpie_as(&addr, "bob", &["group", "mine"], &[]).await;
    assert!(out.success, "{}", out.stderr);
    let mine = &json_lines(&out.stdout)[0];
    assert_eq!(mine["groups"][0]["group_id"], "team", "{mine}");
    assert_eq!(mine["groups"][0]["role"], "admin");
    assert_eq!(mine["groups"].as_array().map(Vec::len), Some(1));
    assert!(mine.get("next").is_none(), "the list is complete: {mine}");

    // Carol asks not to be disturbed: her next push of the group is silent.
    let out = magpie_as(&addr, "carol", &["group", "do-not-disturb"], &["team"]).await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(json_lines(&out.stdout)[0]["seq"], 0, "no notice");
    let listen = {
        let addr = addr.clone();
        tokio::spawn(async move {
            magpie_as(
                &addr,
                "carol",
                &["listen"],
                &["--new-only", "--count", "1", "--timeout", "10"],
            )
            .await
        })
    };
    // The listener skips what came before it connected: send until it has heard one.
    for _ in 0..20 {
        if listen.is_finished() {
            break;
        }
        let out = magpie_as(&addr, "alice", &["send"], &["--to", "g:team", "shh"]).await;
        assert!(out.success, "{}", out.stderr);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let out = listen.await.expect("listener");
    assert!(out.success, "{}", out.stderr);
    let line = &json_lines(&out.stdout)[0];
    assert_eq!(line["text"], "shh", "{line}");
    assert_eq!(line["silent"], true, "{line}");

    server.shutdown().await;
}
