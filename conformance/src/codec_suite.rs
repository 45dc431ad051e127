//! The codec suite: every vector of `spec/vectors/{frames,containers,compression,truncation}.json`
//! through a shim (`SHIM.md`), one case per vector (plus one per canonical encoding).

use std::process::Stdio;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::Target;
use crate::case::{Case, Level, Outcome, Verdict};

const FILES: [(&str, &str); 4] = [
    ("frames", include_str!("../../spec/vectors/frames.json")),
    (
        "containers",
        include_str!("../../spec/vectors/containers.json"),
    ),
    (
        "compression",
        include_str!("../../spec/vectors/compression.json"),
    ),
    (
        "truncation",
        include_str!("../../spec/vectors/truncation.json"),
    ),
];

/// Every codec case.
pub(crate) fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (_, text) in FILES {
        let Ok(doc) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        for v in doc["vectors"].as_array().into_iter().flatten() {
            let id = v["id"].as_str().unwrap_or("?").to_string();
            let clauses: Vec<String> = v["clauses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect();
            let clause_refs: Vec<&str> = clauses.iter().map(String::as_str).collect();
            let quoted: Vec<String> = clauses
                .iter()
                .filter_map(|c| crate::coverage::clause_text(c))
                .collect();
            let requirement = format!(
                "{} (vector {id}: {})",
                quoted.join(" "),
                v["description"].as_str().unwrap_or("")
            );
            let vector = Arc::new(v.clone());
            let vd = vector.clone();
            out.push(Case::new(
                &format!("codec/{id}/decode"),
                &clause_refs,
                Level::Must,
                &requirement,
                move |t| decode_case(t, vd.clone()),
            ));
            if let Some(mode) = v["canonical"].as_str() {
                let compressed = v["settings"]["compression"].as_str() != Some("none");
                let ve = vector.clone();
                let mode = mode.to_string();
                out.push(Case::new(
                    &format!("codec/{id}/encode"),
                    &clause_refs,
                    Level::Must,
                    "[WIRE-3.2] The encoding MUST be minimal: a value MUST use the shortest length whose range contains it.",
                    move |t| encode_case(t, ve.clone(), mode.clone(), compressed),
                ));
            }
        }
    }
    out.extend(extra_cases());
    out
}

/// A request and the answer fields that must match exactly.
fn exact(path: &str, clauses: &[&str], req_text: &str, req: Value, want: Value) -> Case {
    let (req, want) = (Arc::new(req), Arc::new(want));
    Case::new(path, clauses, Level::Must, req_text, move |t| {
        let (req, want) = (req.clone(), want.clone());
        async move {
            let expected = format!("answer with {want}");
            let answer = match ask(&t, &req).await {
                Ok(a) => a,
                Err(e) => return Verdict::fail(expected, e),
            };
            if answer.get("unsupported").is_some() {
                return Verdict::new(Outcome::Unimplemented, expected, answer.to_string());
            }
            let ok = want
                .as_object()
                .is_some_and(|w| w.iter().all(|(k, v)| answer.get(k) == Some(v)));
            let wrong_code = !ok && want["error"].is_object() && answer["error"].is_object();
            let outcome = if ok {
                Outcome::Pass
            } else if wrong_code {
                Outcome::WrongCode
            } else {
                Outcome::Fail
            };
            Verdict::new(outcome, expected, answer.to_string())
        }
    })
}

fn extra_cases() -> Vec<Case> {
    let floor = json!({"max_frame_size": 16384, "max_decompressed_size": 16384,
        "max_container_packets": 16, "compression": "none", "extensions": []});
    let too_big = json!([{"type": 0x12, "id": 1, "body": "61".repeat(16_385)}]);
    let pref = |hex: &str| json!({"op": "client_preface", "offered": 1, "hex": hex});
    let rej = "A client that receives a version rejection MUST report the error UNSUPPORTED_VERSION (code 0x05) to its user together with the listed versions.";
    let other = "A client that receives anything else that is not a valid server preface for the version it offered MUST close the stream with PROTOCOL_ERROR.";
    vec![
        exact(
            "codec/client-preface/accept",
            &["WIRE-2.3", "WIRE-2.6"],
            "the server MUST reply with a server preface equal to the client's",
            pref("4d41475001"),
            json!({"accepted": 1}),
        ),
        exact(
            "codec/client-preface/rejection",
            &["WIRE-2.6", "WIRE-2.5"],
            rej,
            pref("4d414750000101"),
            json!({"error": {"code": 5, "supported": [1]}}),
        ),
        exact(
            "codec/client-preface/other-version",
            &["WIRE-2.6"],
            other,
            pref("4d41475002"),
            json!({"error": {"code": 1}}),
        ),
        exact(
            "codec/client-preface/stray",
            &["WIRE-2.6"],
            other,
            pref("485454502f312e31"),
            json!({"error": {"code": 1}}),
        ),
        Case::new(
            "codec/encode/too-large",
            &["WIRE-6.4"],
            Level::Must,
            "A sender MUST NOT send a packet that cannot fit the peer's limits; it reports the failure to its own user instead.",
            move |t| {
                let req = json!({"op": "encode", "settings": floor, "packets": too_big, "mode": "per-packet"});
                async move {
                    let expected = "an error answer, no bytes";
                    match ask(&t, &req).await {
                        Ok(a) if a.get("unsupported").is_some() => {
                            Verdict::new(Outcome::Unimplemented, expected, a.to_string())
                        }
                        Ok(a) => Verdict::check(
                            a.get("error").is_some() && a.get("hex").is_none(),
                            expected,
                            a.to_string(),
                        ),
                        Err(e) => Verdict::fail(expected, e),
                    }
                }
            },
        ),
    ]
}

/// Sends one request line to a fresh shim process and reads one answer line.
async fn ask(target: &Target, req: &Value) -> Result<Value, String> {
    let Target::Codec { shim } = target else {
        return Err("not a codec target".into());
    };
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(shim)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the shim: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    stdin
        .write_all(format!("{req}\n").as_bytes())
        .await
        .map_err(|e| format!("write to shim: {e}"))?;
    drop(stdin);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .map_err(|e| format!("read from shim: {e}"))?;
    let _ = child.kill().await;
    serde_json::from_str(line.trim()).map_err(|e| format!("shim answered {line:?}: {e}"))
}

fn packets_of(v: &Value) -> Value {
    Value::Array(
        v.as_array()
            .into_iter()
            .flatten()
            .map(|p| json!({"type": p["type"], "id": p["id"], "body": p["body"]}))
            .collect(),
    )
}

async fn decode_case(target: Arc<Target>, v: Arc<Value>) -> Verdict {
    let req = json!({"op": "decode", "settings": v["settings"], "hex": v["hex"]});
    let want_packets = packets_of(&v["packets"]);
    let expected = match v.get("error") {
        Some(e) => format!(
            "packets {want_packets} then connection error {} ({})",
            e["code"], e["name"]
        ),
        None => format!("packets {want_packets}, complete {}", v["complete"]),
    };
    let answer = match ask(&target, &req).await {
        Ok(a) => a,
        Err(e) => return Verdict::fail(expected, e),
    };
    if answer.get("unsupported").is_some() {
        return Verdict::new(Outcome::Unimplemented, expected, answer.to_string());
    }
    let got_packets = packets_of(&answer["packets"]);
    let observed = answer.to_string();
    if got_packets != want_packets {
        return Verdict::fail(expected, observed);
    }
    match (v.get("error"), answer.get("error")) {
        (Some(want), Some(got)) if want["code"] == got["code"] => Verdict::pass(expected, observed),
        (Some(_), Some(_)) => Verdict::new(Outcome::WrongCode, expected, observed),
        (None, None) => Verdict::check(answer["complete"] == v["complete"], expected, observed),
        _ => Verdict::fail(expected, observed),
    }
}

async fn encode_case(
    target: Arc<Target>,
    v: Arc<Value>,
    mode: String,
    compressed: bool,
) -> Verdict {
    let req = json!({"op": "encode", "settings": v["settings"], "packets": packets_of(&v["packets"]), "mode": mode});
    let expected = format!("{mode} encoding writes exactly {}", v["hex"]);
    let answer = match ask(&target, &req).await {
        Ok(a) => a,
        Err(e) => return Verdict::fail(expected, e),
    };
    if answer.get("unsupported").is_some() {
        return Verdict::new(Outcome::Unimplemented, expected, answer.to_string());
    }
    let observed = answer.to_string();
    if answer["hex"] == v["hex"] {
        Verdict::pass(expected, observed)
    } else if compressed {
        // Another compressor may write other bytes for the same body ([WIRE-7.2]).
        Verdict::info(expected, observed)
    } else {
        Verdict::fail(expected, observed)
    }
}
