//! The suite has teeth: a faulty TCP proxy in front of magpied breaks one rule at a time, and the
//! runner must report the matching cases as failures.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use magpie_conformance::{Config, Outcome, Report, Retention, ServerTarget, Target, run};
use magpie_session::{Body, pb};
use magpie_wire::{Close, Decoder, Encoder, ErrorCode, FrameType, Packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

mod common;

const APP: &str = "teeth";
const SECRET: &str = "teeth-secret-0123456789";

#[derive(Clone, Copy)]
enum Fault {
    /// Every CLOSE the server sends carries PROTOCOL_ERROR whatever its code.
    RewriteClose,
    /// PUSH frames never reach the client.
    DropPush,
    /// The proxy answers SEND with a made-up SEND_ACK and never forwards it.
    AckBeforeForward,
    /// Reserved flag bits from the client are cleared before the server sees them: together the
    /// proxy and the server accept frames with reserved bits set ([WIRE-4.2]).
    AcceptReservedBits,
}

/// Proxies one connection, applying `fault`.
async fn proxy_conn(client: TcpStream, server: SocketAddr, fault: Fault) {
    let Ok(upstream) = TcpStream::connect(server).await else {
        return;
    };
    let _ = upstream.set_nodelay(true);
    let _ = client.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = upstream.into_split();
    // Frames the proxy itself writes to the client (fake acks) go through the down task.
    let (inject_tx, inject_rx) = mpsc::unbounded_channel::<Packet>();
    tokio::spawn(up(cr, sw, fault, inject_tx));
    tokio::spawn(down(sr, cw, fault, inject_rx));
}

/// Client → server.
async fn up(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    fault: Fault,
    inject: mpsc::UnboundedSender<Packet>,
) {
    let mut buf = BytesMut::new();
    let mut decoder = Decoder::default();
    let mut encoder = Encoder::default();
    let mut raw = !matches!(fault, Fault::AckBeforeForward);
    let mut preface_done = false;
    let mut chunk = [0u8; 16384];
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if matches!(fault, Fault::AcceptReservedBits) {
            buf.extend_from_slice(&chunk[..n]);
            let mut out = Vec::new();
            if !preface_done && buf.len() >= 5 {
                out.extend_from_slice(&buf.split_to(5));
                preface_done = true;
            }
            if preface_done {
                clear_reserved_bits(&mut buf, &mut out);
            }
            if to.write_all(&out).await.is_err() {
                break;
            }
            continue;
        }
        if raw {
            if to.write_all(&chunk[..n]).await.is_err() {
                break;
            }
            continue;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut out = BytesMut::new();
        if !preface_done {
            if buf.len() < 5 {
                continue;
            }
            out.extend_from_slice(&buf.split_to(5));
            preface_done = true;
        }
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(p)) if p.ty() == FrameType::SEND && p.id().is_some() => {
                    let ack = pb::SendAck {
                        conversation_id: "d:x:y".into(),
                        seq: 1,
                        message_id: "d:x:y/1".into(),
                        server_time_ms: 1,
                        duplicate: false,
                    };
                    let _ = inject.send(Body::SendAck(ack).into_packet(p.id()));
                }
                Ok(Some(p)) => {
                    let _ = encoder.encode(p, &mut out);
                }
                Ok(None) => break,
                Err(_) => {
                    // Not decodable: pass the rest through untouched.
                    out.extend_from_slice(&buf.split());
                    raw = true;
                    break;
                }
            }
        }
        if to.write_all(&out).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Moves every whole frame of `buf` to `out` with its reserved flag bits cleared (the proxy's own
/// walk over the header fields, [WIRE-4.1]: the reference decoder would refuse these frames).
fn clear_reserved_bits(buf: &mut BytesMut, out: &mut Vec<u8>) {
    fn varint(b: &[u8]) -> Option<(u64, usize)> {
        let first = *b.first()?;
        let len = 1usize << (first >> 6);
        let bytes = b.get(..len)?;
        let v = bytes[1..]
            .iter()
            .fold(u64::from(first & 0x3F), |v, &x| (v << 8) | u64::from(x));
        Some((v, len))
    }
    loop {
        let Some((flags, a)) = varint(buf) else {
            return;
        };
        let Some((_ty, b)) = varint(&buf[a..]) else {
            return;
        };
        let mut at = a + b;
        if flags & 0x01 != 0 {
            let Some((_id, c)) = varint(&buf[at..]) else {
                return;
            };
            at += c;
        }
        let Some((len, d)) = varint(&buf[at..]) else {
            return;
        };
        let end = at + d + usize::try_from(len).unwrap_or(usize::MAX / 2);
        if buf.len() < end {
            return;
        }
        let frame = buf.split_to(end);
        out.push(u8::try_from(flags & 0x03).unwrap_or(0));
        out.extend_from_slice(&frame[a..]);
    }
}

/// Server → client.
async fn down(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    fault: Fault,
    mut inject: mpsc::UnboundedReceiver<Packet>,
) {
    let mut buf = BytesMut::new();
    let mut decoder = Decoder::default();
    let mut encoder = Encoder::default();
    let mut raw = false;
    let mut preface_done = false;
    let mut chunk = [0u8; 16384];
    let mut injecting = true;
    loop {
        let mut out = BytesMut::new();
        tokio::select! {
            p = inject.recv(), if injecting => {
                match p {
                    Some(p) => {
                        let _ = encoder.encode(p, &mut out);
                    }
                    None => injecting = false,
                }
            }
            r = from.read(&mut chunk) => {
                let n = match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if raw {
                    out.extend_from_slice(&chunk[..n]);
                } else {
                    buf.extend_from_slice(&chunk[..n]);
                    if !preface_done {
                        if buf.len() < 5 {
                            continue;
                        }
                        if buf[..5] != [0x4D, 0x41, 0x47, 0x50, 0x01] {
                            raw = true;
                        }
                        out.extend_from_slice(&buf.split_to(5));
                        preface_done = true;
                    }
                    while !raw {
                        match decoder.decode(&mut buf) {
                            Ok(Some(p)) => {
                                let p = match (fault, p.ty()) {
                                    (Fault::DropPush, FrameType::PUSH) => continue,
                                    (Fault::RewriteClose, FrameType::CLOSE) => {
                                        let reason = Close::decode(p.body()).map(|c| c.reason().to_string()).unwrap_or_default();
                                        Close::new(ErrorCode(0x01), None, reason).to_packet()
                                    }
                                    _ => p,
                                };
                                let _ = encoder.encode(p, &mut out);
                            }
                            Ok(None) => break,
                            Err(_) => {
                                out.extend_from_slice(&buf.split());
                                raw = true;
                            }
                        }
                    }
                    if raw {
                        out.extend_from_slice(&buf.split());
                    }
                }
            }
        }
        if to.write_all(&out).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

async fn run_with_fault(fault: Fault) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = common::with_rates(magpied::Settings {
        handshake_timeout_secs: 1,
        ..magpied::Settings::embedded(dir.path(), APP, SECRET)
    });
    let server = magpied::Server::start(settings)
        .await
        .expect("server starts");
    let upstream = server.local_addr();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accept = tokio::spawn(async move {
        while let Ok((c, _)) = listener.accept().await {
            tokio::spawn(proxy_conn(c, upstream, fault));
        }
    });
    let target = Target::Server(ServerTarget {
        addr,
        app: APP.into(),
        secret: SECRET.into(),
        ws: None,
        admin: None,
        retention: None,
        rates: common::RATES,
    });
    let config = Config {
        jobs: 8,
        seed: Some(3),
        overall: Duration::from_secs(200),
        ..Config::default()
    };
    let report = run(target, &config).await;
    accept.abort();
    server.shutdown().await;
    println!("{}", report.summary());
    report
}

fn outcome(report: &Report, id: &str) -> Outcome {
    report
        .cases
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.outcome)
        .unwrap_or_else(|| panic!("no case {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rewritten_close_code_is_wrong_code() {
    let report = run_with_fault(Fault::RewriteClose).await;
    assert_eq!(outcome(&report, "v1/wire/4.5/1"), Outcome::WrongCode);
    assert_eq!(outcome(&report, "v1/auth/3.3/1"), Outcome::WrongCode);
    assert_eq!(
        outcome(&report, "v1/wire/4.2/1"),
        Outcome::Pass,
        "PROTOCOL_ERROR stays right"
    );
    assert!(report.failed() > 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accepted_reserved_bits_fail() {
    let report = run_with_fault(Fault::AcceptReservedBits).await;
    assert_eq!(outcome(&report, "v1/wire/4.2/1"), Outcome::Fail);
    // Everything else goes through the proxy unchanged.
    assert_eq!(outcome(&report, "v1/sync/5.2/1"), Outcome::Pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_pushes_fail() {
    let report = run_with_fault(Fault::DropPush).await;
    assert_eq!(outcome(&report, "v1/sync/5.4/1"), Outcome::Fail);
    assert_eq!(outcome(&report, "v1/session/7.2/1"), Outcome::Fail);
    // Pull still works: pushes are an optimisation of pull.
    assert_eq!(outcome(&report, "v1/sync/4.1/1"), Outcome::Pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acking_before_commit_fails() {
    let report = run_with_fault(Fault::AckBeforeForward).await;
    assert_eq!(outcome(&report, "v1/sync/5.2/1"), Outcome::Fail);
    assert_eq!(outcome(&report, "v1/sync/property/1"), Outcome::Fail);
}

/// The codec suite has teeth too: a shim that reports FRAME_TOO_LARGE (3) as PROTOCOL_ERROR (1)
/// and drops the first delivered packet of every answer is caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_codec_is_caught() {
    let shim = env!("CARGO_BIN_EXE_magpie-wire-shim");
    let wrong_code = format!("{shim} | sed 's/\"code\":3}}/\"code\":1}}/'");
    let report = run(
        Target::Codec { shim: wrong_code },
        &Config {
            filter: Some("error/oversize".into()),
            ..Config::default()
        },
    )
    .await;
    let wrong: Vec<_> = report
        .cases
        .iter()
        .filter(|c| c.outcome == Outcome::WrongCode)
        .collect();
    assert!(!wrong.is_empty(), "{}", report.summary());
    let dropping = format!("{shim} | sed 's/\"packets\":\\[{{[^}}]*}},\\?/\"packets\":[/'");
    let report = run(Target::Codec { shim: dropping }, &Config::default()).await;
    assert!(report.failed() > 20, "{}", report.summary());
    let report = run(
        Target::Codec { shim: "cat".into() },
        &Config {
            filter: Some("frame/ping".into()),
            ..Config::default()
        },
    )
    .await;
    assert!(
        report.failed() > 0 && report.passed() == 0,
        "{}",
        report.summary()
    );
}

/// Runs the cases whose id contains `filter` against a magpied with one fault switched on
/// (feature `faults`, compiled only for tests).
async fn run_faulty(filter: &str, fault: impl FnOnce(&mut magpied::Faults)) -> Report {
    run_against(filter, |s| fault(&mut s.faults), None).await
}

/// Runs the cases whose id contains `filter` against a magpied with `tweak`ed settings, declaring
/// `retention` to the suite.
async fn run_against(
    filter: &str,
    tweak: impl FnOnce(&mut magpied::Settings),
    retention: Option<Retention>,
) -> Report {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = common::with_rates(magpied::Settings {
        handshake_timeout_secs: 1,
        ..magpied::Settings::embedded(dir.path(), APP, SECRET)
    });
    tweak(&mut settings);
    let server = magpied::Server::start(settings)
        .await
        .expect("server starts");
    let target = Target::Server(ServerTarget {
        addr: server.local_addr(),
        app: APP.into(),
        secret: SECRET.into(),
        ws: None,
        admin: None,
        retention,
        rates: common::RATES,
    });
    let config = Config {
        filter: Some(filter.into()),
        jobs: 4,
        seed: Some(5),
        overall: Duration::from_secs(60),
        ..Config::default()
    };
    let report = run(target, &config).await;
    server.shutdown().await;
    println!("{}", report.summary());
    report
}

/// A server that does not apply the limit it declares is caught; one that does passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unapplied_message_limit_is_caught() {
    let declared = Some(Retention {
        max_messages_per_conversation: 5,
        within: Duration::from_secs(3),
    });
    let report = run_against("sync/8.1/1", |_| {}, declared).await;
    assert_eq!(outcome(&report, "v1/sync/8.1/1"), Outcome::Fail);
    let report = run_against(
        "sync/8.1/1",
        |s| {
            s.max_messages_per_conversation = 5;
            s.retention_interval_secs = 1;
        },
        declared,
    )
    .await;
    assert_eq!(outcome(&report, "v1/sync/8.1/1"), Outcome::Pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_switch_ack_without_commit_is_caught() {
    let report = run_faulty("sync/5.2/1", |f| f.ack_without_commit = true).await;
    assert_eq!(outcome(&report, "v1/sync/5.2/1"), Outcome::Fail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_switch_skipped_expiry_check_is_caught() {
    let report = run_faulty("auth/3.3", |f| f.skip_token_time_check = true).await;
    assert_eq!(outcome(&report, "v1/auth/3.3/1"), Outcome::Fail);
    assert_eq!(outcome(&report, "v1/auth/3.3/2"), Outcome::Fail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_switch_reordered_sync_is_caught() {
    let report = run_faulty("sync/4.1/1", |f| f.reverse_sync_pages = true).await;
    assert_eq!(outcome(&report, "v1/sync/4.1/1"), Outcome::Fail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_switch_send_rate_per_device_is_caught() {
    let report = run_faulty("session/6.4/1", |f| f.send_rate_per_device = true).await;
    assert_eq!(outcome(&report, "v1/session/6.4/1"), Outcome::Fail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_switch_rate_limited_without_wait_is_caught() {
    let report = run_faulty("session/6.4/1", |f| f.rate_limited_without_wait = true).await;
    assert_eq!(outcome(&report, "v1/session/6.4/1"), Outcome::Fail);
}

/// A server that bounds no packets misses the SHOULD of [SESSION-6.6]: NON_STRICT, not a pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unbounded_packet_rate_is_caught() {
    let report = run_against(
        "session/6.6/1",
        |s| {
            s.packet_rate = magpie_session::Rate::MAX_PER_SEC;
            s.packet_burst = u32::MAX;
        },
        None,
    )
    .await;
    assert_eq!(outcome(&report, "v1/session/6.6/1"), Outcome::NonStrict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_faults_the_same_cases_pass() {
    for filter in [
        "sync/5.2/1",
        "auth/3.3",
        "sync/4.1/1",
        "session/6.4/1",
        "session/6.6/1",
    ] {
        let report = run_faulty(filter, |_| {}).await;
        assert_eq!(report.failed(), 0, "{filter}: {}", report.summary());
    }
}
