//! Cases, levels, outcomes and verdicts: the runner's vocabulary.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::Target;

/// The spec version every case id starts with.
pub const SPEC_VERSION: &str = "v1";

/// How strong the requirement a case proves is (RFC 2119).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// MUST / MUST NOT / REQUIRED / SHALL.
    Must,
    /// SHOULD / SHOULD NOT / RECOMMENDED.
    Should,
    /// MAY / OPTIONAL: never a failure.
    May,
}

/// What a case found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// The requirement holds.
    Pass,
    /// A MUST is broken.
    Fail,
    /// A SHOULD is missed (a failure only with `--strict`).
    NonStrict,
    /// The right refusal with the wrong error code.
    WrongCode,
    /// The peer ended the stream without a CLOSE frame, or sent one and kept the stream open.
    UncleanClose,
    /// The implementation does not offer what the case needs.
    Unimplemented,
    /// Observed and recorded, not judged.
    Informational,
}

impl Outcome {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::NonStrict => "NON_STRICT",
            Outcome::WrongCode => "WRONG_CODE",
            Outcome::UncleanClose => "UNCLEAN_CLOSE",
            Outcome::Unimplemented => "UNIMPLEMENTED",
            Outcome::Informational => "INFORMATIONAL",
        }
    }

    /// Whether this outcome counts as a failure (`strict`: NON_STRICT does too).
    pub fn is_failure(self, strict: bool) -> bool {
        match self {
            Outcome::Fail | Outcome::WrongCode | Outcome::UncleanClose => true,
            Outcome::NonStrict => strict,
            _ => false,
        }
    }
}

/// A case's finding with its evidence.
#[derive(Clone, Debug)]
pub(crate) struct Verdict {
    pub(crate) outcome: Outcome,
    pub(crate) expected: String,
    pub(crate) observed: String,
}

impl Verdict {
    pub(crate) fn new(
        outcome: Outcome,
        expected: impl Into<String>,
        observed: impl Into<String>,
    ) -> Verdict {
        Verdict {
            outcome,
            expected: expected.into(),
            observed: observed.into(),
        }
    }
    pub(crate) fn pass(expected: impl Into<String>, observed: impl Into<String>) -> Verdict {
        Verdict::new(Outcome::Pass, expected, observed)
    }
    pub(crate) fn fail(expected: impl Into<String>, observed: impl Into<String>) -> Verdict {
        Verdict::new(Outcome::Fail, expected, observed)
    }
    pub(crate) fn check(
        ok: bool,
        expected: impl Into<String>,
        observed: impl Into<String>,
    ) -> Verdict {
        Verdict::new(
            if ok { Outcome::Pass } else { Outcome::Fail },
            expected,
            observed,
        )
    }
    pub(crate) fn info(expected: impl Into<String>, observed: impl Into<String>) -> Verdict {
        Verdict::new(Outcome::Informational, expected, observed)
    }
    /// Appends to the observed evidence.
    pub(crate) fn note(mut self, more: impl AsRef<str>) -> Verdict {
        self.observed.push_str("; ");
        self.observed.push_str(more.as_ref());
        self
    }
}

pub(crate) type BoxFut = Pin<Box<dyn Future<Output = Verdict> + Send>>;
pub(crate) type CaseFn = Arc<dyn Fn(Arc<Target>) -> BoxFut + Send + Sync>;

/// One conformance case.
#[derive(Clone)]
pub(crate) struct Case {
    pub(crate) id: String,
    pub(crate) clauses: Vec<String>,
    pub(crate) level: Level,
    pub(crate) requirement: String,
    pub(crate) timeout: Duration,
    pub(crate) run: CaseFn,
}

/// Default per-case time bound.
pub(crate) const CASE_TIMEOUT: Duration = Duration::from_secs(10);

impl Case {
    /// A case whose id is `v1/<path>` (path like `wire/4.5/1`).
    pub(crate) fn new<F, Fut>(
        path: &str,
        clauses: &[&str],
        level: Level,
        requirement: &str,
        f: F,
    ) -> Case
    where
        F: Fn(Arc<Target>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Verdict> + Send + 'static,
    {
        Case {
            id: format!("{SPEC_VERSION}/{path}"),
            clauses: clauses.iter().map(|c| c.to_string()).collect(),
            level,
            requirement: requirement.to_string(),
            timeout: CASE_TIMEOUT,
            run: Arc::new(move |t| Box::pin(f(t))),
        }
    }

    pub(crate) fn timeout(mut self, t: Duration) -> Case {
        self.timeout = t;
        self
    }
}
