//! Which clauses of `spec/*.md` the cases name.

use std::collections::BTreeMap;

use crate::case::Level;
use crate::{codec_suite, server};

const SPECS: [(&str, &str); 6] = [
    ("wire.md", include_str!("../../spec/wire.md")),
    ("session.md", include_str!("../../spec/session.md")),
    ("sync.md", include_str!("../../spec/sync.md")),
    ("auth.md", include_str!("../../spec/auth.md")),
    ("errors.md", include_str!("../../spec/errors.md")),
    ("groups.md", include_str!("../../spec/groups.md")),
];

/// Conventions, not requirements.
const NOT_REQUIREMENTS: [&str; 1] = ["WIRE-1.1"];

/// Requirements no case over the wire or through a shim can observe, with the reason.
const NOT_OBSERVABLE: [(&str, &str); 6] = [
    (
        "AUTH-1.1",
        "the server refusing to load an app with a short secret is configuration, not wire behaviour",
    ),
    (
        "AUTH-2.3",
        "nonce entropy and lifetimes are the minter's (the app server's) business",
    ),
    (
        "SESSION-3.3",
        "client behaviour; the suite has no client target yet",
    ),
    (
        "SESSION-4.2",
        "client behaviour; the suite has no client target yet",
    ),
    (
        "SYNC-4.4",
        "client behaviour; the suite has no client target yet",
    ),
    (
        "SESSION-6.3",
        "needs control of the server's shutdown; checked against magpied in tests/suite.rs",
    ),
];

/// One clause and the cases naming it.
#[derive(Clone, Debug)]
pub struct ClauseCoverage {
    /// `WIRE-4.5`.
    pub clause: String,
    /// The spec file it is in.
    pub file: &'static str,
    /// MUST if its paragraph has MUST/SHALL/REQUIRED, else SHOULD if SHOULD/RECOMMENDED, else MAY.
    pub level: Level,
    /// Ids of the cases naming it (codec and server suites).
    pub cases: Vec<String>,
    /// Why no case can observe it over the wire, if so.
    pub not_observable: Option<&'static str>,
}

/// Every clause (a `[PREFIX-n.m]` starting a paragraph) of `spec/*.md` with its cases.
pub fn coverage() -> Vec<ClauseCoverage> {
    let mut named: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for case in codec_suite::cases()
        .into_iter()
        .chain(server::cases(Some(0)))
    {
        for clause in &case.clauses {
            named
                .entry(clause.clone())
                .or_default()
                .push(case.id.clone());
        }
    }
    let mut out = Vec::new();
    for (file, text) in SPECS {
        for para in text.split("\n\n") {
            let para = para.trim_start();
            let Some(rest) = para.strip_prefix('[') else {
                continue;
            };
            let Some(end) = rest.find(']') else { continue };
            let clause = &rest[..end];
            let valid = clause.split_once('-').is_some_and(|(p, n)| {
                !p.is_empty()
                    && p.chars().all(|c| c.is_ascii_uppercase())
                    && n.contains('.')
                    && n.chars().all(|c| c.is_ascii_digit() || c == '.')
            });
            if !valid || NOT_REQUIREMENTS.contains(&clause) {
                continue;
            }
            let has = |w: &str| {
                para.split(|c: char| !c.is_ascii_alphabetic())
                    .any(|x| x == w)
            };
            let level = if has("MUST") || has("SHALL") || has("REQUIRED") {
                Level::Must
            } else if has("SHOULD") || has("RECOMMENDED") {
                Level::Should
            } else {
                Level::May
            };
            out.push(ClauseCoverage {
                clause: clause.to_string(),
                file,
                level,
                cases: named.get(clause).cloned().unwrap_or_default(),
                not_observable: NOT_OBSERVABLE
                    .iter()
                    .find(|(c, _)| *c == clause)
                    .map(|(_, why)| *why),
            });
        }
    }
    out
}

/// The paragraph of `clause` (e.g. `WIRE-4.5`) in `spec/*.md`, whitespace collapsed.
pub(crate) fn clause_text(clause: &str) -> Option<String> {
    let tag = format!("[{clause}]");
    SPECS.iter().find_map(|(_, text)| {
        text.split("\n\n")
            .map(str::trim_start)
            .find(|p| p.starts_with(&tag))
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
    })
}
