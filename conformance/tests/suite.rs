//! CI: the codec suite against the reference shim, the server suite against an in-process magpied,
//! coverage of the spec's MUST clauses, and the report schema.

use std::time::Duration;

use magpie_conformance::{
    Config, Level, Outcome, Report, Retention, ServerTarget, Target, coverage, run,
};

mod common;

const APP: &str = "conf";
const SECRET: &str = "conformance-secret-0123456789";
/// The in-process server's per-conversation message limit, declared to the retention case.
const RETENTION_LIMIT: u64 = 1_000;

fn config() -> Config {
    Config {
        jobs: 8,
        seed: Some(7),
        overall: Duration::from_secs(240),
        implementation: "magpied (in-process)".into(),
        ..Config::default()
    }
}

fn assert_no_must_failures(report: &Report) {
    println!("{}", report.summary());
    let failures = report.must_failures();
    assert!(failures.is_empty(), "MUST failures: {failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn codec_suite_against_the_reference_shim() {
    let shim = env!("CARGO_BIN_EXE_magpie-wire-shim").to_string();
    let report = run(Target::Codec { shim }, &config()).await;
    assert!(report.cases.len() > 100, "every vector is a case");
    assert_no_must_failures(&report);
    assert_eq!(report.failed(), 0);
}

async fn start_magpied(dir: &std::path::Path) -> magpied::Server {
    let settings = common::with_rates(magpied::Settings {
        handshake_timeout_secs: 1,
        session_queue: 16,
        max_messages_per_conversation: RETENTION_LIMIT,
        retention_interval_secs: 1,
        admin_listen: Some("127.0.0.1:0".parse().expect("addr")),
        ws_listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..magpied::Settings::embedded(dir, APP, SECRET)
    });
    magpied::Server::start(settings)
        .await
        .expect("server starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_suite_against_magpied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_magpied(dir.path()).await;
    let target = Target::Server(ServerTarget {
        addr: server.local_addr(),
        app: APP.into(),
        secret: SECRET.into(),
        ws: server.ws_addr().map(|a| format!("ws://{a}/")),
        admin: server.admin_addr(),
        retention: Some(Retention {
            max_messages_per_conversation: RETENTION_LIMIT,
            within: Duration::from_secs(10),
        }),
        rates: common::RATES,
    });
    let report = run(target, &config()).await;
    assert_no_must_failures(&report);
    server.shutdown().await;
}

#[test]
fn every_must_clause_is_named_by_a_case() {
    let all = coverage();
    assert!(all.len() > 80, "clauses found: {}", all.len());
    let uncovered: Vec<String> = all
        .iter()
        .filter(|c| c.level == Level::Must && c.cases.is_empty() && c.not_observable.is_none())
        .map(|c| format!("{} ({})", c.clause, c.file))
        .collect();
    for c in all
        .iter()
        .filter(|c| c.level == Level::Should && c.cases.is_empty())
    {
        println!("uncovered SHOULD clause: {}", c.clause);
    }
    assert!(
        uncovered.is_empty(),
        "MUST clauses named by no case: {uncovered:#?}"
    );
}

#[test]
fn report_schema() {
    let report = Report {
        implementation: "example".into(),
        spec_version: "v1".into(),
        suite: "server".into(),
        strict: false,
        seed: Some(1),
        duration_ms: 12,
        cases: vec![magpie_conformance::CaseResult {
            id: "v1/wire/4.5/1".into(),
            clauses: vec!["WIRE-4.5".into()],
            level: Level::Must,
            requirement: "A receiver MUST check Length ...".into(),
            outcome: Outcome::WrongCode,
            expected: "CLOSE FRAME_TOO_LARGE".into(),
            observed: "CLOSE PROTOCOL_ERROR".into(),
            duration_ms: 3,
        }],
    };
    insta::assert_snapshot!("report_json", report.to_json());
    insta::assert_snapshot!("report_junit", report.to_junit());
    insta::assert_snapshot!("report_summary", report.summary());
}

/// [SESSION-6.3], which the runner cannot drive: on shutdown magpied closes sessions GOING_AWAY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sessions_going_away() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_magpied(dir.path()).await;
    let mut s = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = magpie_auth::TokenClaims {
        app_id: APP.into(),
        user_id: "bye".into(),
        device: magpie_auth::Device::Id("d1".into()),
        platform: magpie_auth::Platform::Web,
        not_before: now - 10,
        expires: now + 600,
        nonce: magpie_auth::random_nonce().expect("nonce"),
    };
    let token = magpie_auth::mint(
        &claims,
        &magpie_auth::AppSecret::new(SECRET).expect("secret"),
    )
    .expect("mint");
    let hello = magpie_session::pb::Hello {
        app_id: APP.into(),
        credential: Some(magpie_session::pb::hello::Credential::Token(token)),
        device_id: "d1".into(),
        platform: magpie_auth::Platform::Web.to_proto_i32(),
        ..Default::default()
    };
    let mut bytes = vec![0x4D, 0x41, 0x47, 0x50, 0x01];
    let mut wire = bytes::BytesMut::new();
    magpie_wire::Encoder::default()
        .encode(
            magpie_session::Body::Hello(hello).into_packet(Some(magpie_wire::VarInt::from_u32(1))),
            &mut wire,
        )
        .expect("encode");
    bytes.extend_from_slice(&wire);
    s.write_all(&bytes).await.expect("write");
    let mut buf = bytes::BytesMut::new();
    let mut decoder = magpie_wire::Decoder::default();
    let mut chunk = [0u8; 4096];
    let mut welcomed = false;
    let mut preface = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut shutdown = Some(server);
    loop {
        if welcomed && let Some(server) = shutdown.take() {
            tokio::spawn(server.shutdown());
        }
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .expect("no CLOSE within 5 s")
            .expect("read");
        assert!(n > 0, "end of stream without CLOSE GOING_AWAY");
        buf.extend_from_slice(&chunk[..n]);
        if !preface && buf.len() >= 5 {
            let _ = buf.split_to(5);
            preface = true;
        }
        while let Some(p) = decoder.decode(&mut buf).expect("decodes") {
            if p.ty() == magpie_wire::FrameType::WELCOME {
                welcomed = true;
            }
            if p.ty() == magpie_wire::FrameType::CLOSE {
                let close = magpie_wire::Close::decode(p.body()).expect("close body");
                assert_eq!(close.code().0, 0x0A, "GOING_AWAY");
                return;
            }
        }
    }
}
