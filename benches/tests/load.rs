//! `magpie-bench` end to end against an embedded magpied, with small counts: each scenario runs,
//! passes its exactly-once-in-order check, and writes a record with the figures `report` needs.
//! No mosquitto or nats-server needed. Each run is bounded by `--timeout-secs`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs `magpie-bench SCENARIO --embedded ARGS --json DIR/out.json` and returns the record.
fn run(dir: &Path, scenario: &str, args: &[&str]) -> Value {
    let json = dir.join(format!("{scenario}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_magpie-bench"))
        .arg(scenario)
        .args(["--embedded", "--timeout-secs", "60", "--json"])
        .arg(&json)
        .args(args)
        .output()
        .expect("magpie-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "magpie-bench {scenario} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("| figure | value |"),
        "no table on stdout:\n{stdout}"
    );
    let text = std::fs::read_to_string(&json).expect("the record was written");
    let record: Value = serde_json::from_str(&text).expect("the record is JSON");
    assert_eq!(record["schema"], 1);
    assert_eq!(record["scenario"], scenario);
    assert_eq!(record["target"], "magpie");
    assert!(
        record["ack"]
            .as_str()
            .is_some_and(|a| a.contains("SEND_ACK"))
    );
    assert!(record["clk_tck"].as_u64().is_some_and(|t| t > 0));
    record
}

/// The check passed with every expected message, once, in order.
fn assert_checked(record: &Value, streams: u64, expected: u64) {
    let check = &record["check"];
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["streams"], streams, "{check}");
    assert_eq!(check["expected"], expected, "{check}");
    assert_eq!(check["received"], expected, "{check}");
    for fault in ["missing", "duplicates", "out_of_order", "foreign"] {
        assert_eq!(check[fault], 0, "{fault}: {check}");
    }
}

fn figure(record: &Value, name: &str) -> f64 {
    record["figures"][name]
        .as_f64()
        .unwrap_or_else(|| panic!("figure {name} missing: {record}"))
}

#[test]
fn pairs_arrive_once_and_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = run(
        dir.path(),
        "pairs",
        &["--pairs", "8", "--messages", "60", "--window", "8"],
    );
    assert_checked(&r, 8, 480);
    assert_eq!(figure(&r, "messages"), 480.0);
    assert_eq!(figure(&r, "delivered"), 480.0);
    assert!(figure(&r, "msgs_per_s") > 0.0);
    assert!(figure(&r, "generator_cpu_s") >= 0.0);
    assert_eq!(r["params"]["pairs"], 8);
}

#[test]
fn latency_reports_percentiles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = run(
        dir.path(),
        "latency",
        &[
            "--pairs",
            "4",
            "--rate",
            "400",
            "--duration-secs",
            "1",
            "--warmup-secs",
            "0.2",
        ],
    );
    assert_checked(&r, 4, 400);
    let (p50, p99, p999, max) = (
        figure(&r, "p50_ms"),
        figure(&r, "p99_ms"),
        figure(&r, "p999_ms"),
        figure(&r, "max_ms"),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max, "{r}");
    // Messages due in the warm-up are checked but not timed.
    let timed = figure(&r, "count");
    assert!(timed > 0.0 && timed < 400.0, "{timed}");
    assert!(figure(&r, "pacer_lag_max_ms") >= 0.0);
    assert_eq!(figure(&r, "offered_per_s"), 400.0);
}

#[test]
fn fanout_reaches_every_receiver() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = run(
        dir.path(),
        "fanout",
        &["--receivers", "12", "--messages", "5"],
    );
    assert_checked(&r, 12, 60);
    assert_eq!(figure(&r, "deliveries"), 60.0);
    // One send per message to a group; its CREATED notice is not counted (nor foreign).
    assert_eq!(figure(&r, "sends"), 5.0, "Magpie: one send per message");
    assert!(figure(&r, "deliveries_per_s") > 0.0);
    assert!(
        r["mechanism"]
            .as_str()
            .is_some_and(|m| m.contains("to a group of the 12 receivers")),
        "{}",
        r["mechanism"]
    );
}

#[test]
fn sync_pulls_what_a_device_missed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = run(dir.path(), "sync", &["--messages", "300"]);
    // Two devices of the same user each pull all of them.
    assert_checked(&r, 2, 600);
    assert!(figure(&r, "sync_ms") > 0.0);
    assert_eq!(figure(&r, "body_bytes"), 30_000.0);
    let down = figure(&r, "wire_bytes_down");
    assert!(down > 0.0);
    assert_eq!(figure(&r, "wire_to_body_ratio"), down / 30_000.0);
}

#[test]
fn idle_needs_a_server_pid() {
    let out = Command::new(env!("CARGO_BIN_EXE_magpie-bench"))
        .args(["idle", "--embedded", "--connections", "10"])
        .output()
        .expect("magpie-bench runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--server-pid"));
}

#[test]
fn report_aggregates_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let records = dir.path().join("records");
    std::fs::create_dir(&records).expect("mkdir");
    run(
        &records,
        "pairs",
        &[
            "--pairs",
            "2",
            "--messages",
            "10",
            "--label",
            "magpie-durable",
        ],
    );
    let out = dir.path().join("RESULTS.md");
    let status = Command::new(env!("CARGO_BIN_EXE_magpie-bench"))
        .args(["report", "--in"])
        .arg(&records)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("magpie-bench report runs");
    assert!(status.success());
    let md = std::fs::read_to_string(&out).expect("report written");
    assert!(md.contains("| pairs: delivered msg/s | higher |"), "{md}");
    assert!(md.contains("magpie-durable"), "{md}");
    assert!(md.contains("## Targets (issue 5)"), "{md}");
}
