//! Reports: the human summary, JSON and JUnit XML.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::case::{Level, Outcome};

/// One case's result.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// Stable id, e.g. `v1/wire/4.5/1`.
    pub id: String,
    /// Clause ids the case proves.
    pub clauses: Vec<String>,
    /// The requirement's level.
    pub level: Level,
    /// The requirement, quoted from the spec.
    pub requirement: String,
    /// What the case found.
    pub outcome: Outcome,
    /// What the spec requires the implementation to do.
    pub expected: String,
    /// What it did.
    pub observed: String,
    /// Wall time of the case.
    pub duration_ms: u64,
}

/// A run's results.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The implementation judged.
    pub implementation: String,
    /// The spec version (`v1`).
    pub spec_version: String,
    /// `codec` or `server`.
    pub suite: String,
    /// Whether NON_STRICT counted as a failure.
    pub strict: bool,
    /// The property case's seed, if one was given.
    pub seed: Option<u64>,
    /// Wall time of the run.
    pub duration_ms: u64,
    /// Every case, sorted by id.
    pub cases: Vec<CaseResult>,
}

impl Report {
    /// Cases that passed.
    pub fn passed(&self) -> usize {
        self.count(|o| o == Outcome::Pass)
    }

    /// Cases that failed (NON_STRICT included when strict).
    pub fn failed(&self) -> usize {
        self.count(|o| o.is_failure(self.strict))
    }

    /// Cases neither passed nor failed (UNIMPLEMENTED, INFORMATIONAL, and NON_STRICT unless strict).
    pub fn skipped(&self) -> usize {
        self.cases.len() - self.passed() - self.failed()
    }

    /// Failed cases whose level is MUST.
    pub fn must_failures(&self) -> Vec<&CaseResult> {
        self.cases
            .iter()
            .filter(|c| c.level == Level::Must && c.outcome.is_failure(false))
            .collect()
    }

    fn count(&self, f: impl Fn(Outcome) -> bool) -> usize {
        self.cases.iter().filter(|c| f(c.outcome)).count()
    }

    /// The human summary; its last line is `N passed, N failed`.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for c in &self.cases {
            let _ = writeln!(
                s,
                "{:<13} {:<6} {}",
                c.outcome.name(),
                level_name(c.level),
                c.id
            );
            if c.outcome != Outcome::Pass {
                let _ = writeln!(s, "    clauses:  {}", c.clauses.join(", "));
                let _ = writeln!(s, "    expected: {}", c.expected);
                let _ = writeln!(s, "    observed: {}", c.observed);
            }
        }
        let by = |o: Outcome| self.count(|x| x == o);
        let _ = writeln!(
            s,
            "skipped: {} (non-strict {}, unimplemented {}, informational {})",
            self.skipped(),
            if self.strict {
                0
            } else {
                by(Outcome::NonStrict)
            },
            by(Outcome::Unimplemented),
            by(Outcome::Informational)
        );
        if let Some(seed) = self.seed {
            let _ = writeln!(s, "seed: {seed}");
        }
        let _ = write!(s, "{} passed, {} failed", self.passed(), self.failed());
        s
    }

    /// The JSON report.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The JUnit XML report.
    pub fn to_junit(&self) -> String {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            s,
            "<testsuite name=\"magpie-conformance-{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            xml(&self.suite),
            self.cases.len(),
            self.failed(),
            self.skipped(),
            self.duration_ms as f64 / 1000.0
        );
        for c in &self.cases {
            let _ = write!(
                s,
                "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
                xml(&self.suite),
                xml(&c.id),
                c.duration_ms as f64 / 1000.0
            );
            let detail = format!(
                "{} [{}] {}\nrequirement: {}\nexpected: {}\nobserved: {}",
                c.outcome.name(),
                level_name(c.level),
                c.clauses.join(", "),
                c.requirement,
                c.expected,
                c.observed
            );
            if c.outcome.is_failure(self.strict) {
                let _ = write!(
                    s,
                    "<failure message=\"{}\">{}</failure>",
                    c.outcome.name(),
                    xml(&detail)
                );
            } else if c.outcome != Outcome::Pass {
                let _ = write!(s, "<skipped message=\"{}\"/>", c.outcome.name());
            }
            s.push_str("</testcase>\n");
        }
        s.push_str("</testsuite>\n");
        s
    }

    /// Writes `report.json` and `junit.xml` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join(format!("{}-report.json", self.suite)),
            self.to_json(),
        )?;
        std::fs::write(
            dir.join(format!("{}-junit.xml", self.suite)),
            self.to_junit(),
        )?;
        Ok(())
    }
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::Must => "MUST",
        Level::Should => "SHOULD",
        Level::May => "MAY",
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
