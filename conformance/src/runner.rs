//! Runs cases with a per-case timeout, a bound on the whole run and `--jobs` at once.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

use crate::case::{Case, Level, Outcome, Verdict};
use crate::report::{CaseResult, Report};
use crate::{Config, Target, codec_suite, server};

/// The cases for a target, filtered.
pub(crate) fn cases_for(target: &Target, config: &Config) -> Vec<Case> {
    let all = match target {
        Target::Codec { .. } => codec_suite::cases(),
        Target::Server(_) => server::cases(config.seed),
    };
    all.into_iter()
        .filter(|c| {
            config
                .filter
                .as_ref()
                .is_none_or(|f| c.id.contains(f.as_str()))
        })
        .collect()
}

/// Runs every selected case against `target`; never hangs past `config.overall` (plus one case
/// timeout). Writes the reports if `config.report_dir` is set.
pub async fn run(target: Target, config: &Config) -> Report {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + config.overall;
    let cases = cases_for(&target, config);
    let target = Arc::new(target);
    let jobs = config.jobs.max(1);
    let mut results: Vec<CaseResult> = futures::stream::iter(cases)
        .map(|case| run_one(case, target.clone(), deadline))
        .buffer_unordered(jobs)
        .collect()
        .await;
    results.sort_by(|a, b| a.id.cmp(&b.id));
    let report = Report {
        implementation: config.implementation.clone(),
        spec_version: crate::SPEC_VERSION.to_string(),
        suite: match &*target {
            Target::Codec { .. } => "codec".into(),
            Target::Server(_) => "server".into(),
        },
        strict: config.strict,
        seed: matches!(&*target, Target::Server(_))
            .then_some(config.seed)
            .flatten(),
        duration_ms: started.elapsed().as_millis() as u64,
        cases: results,
    };
    if let Some(dir) = &config.report_dir
        && let Err(e) = report.write(dir)
    {
        eprintln!("cannot write reports to {}: {e}", dir.display());
    }
    report
}

async fn run_one(case: Case, target: Arc<Target>, deadline: tokio::time::Instant) -> CaseResult {
    let started = Instant::now();
    let verdict = if tokio::time::Instant::now() >= deadline {
        Verdict::fail(
            "the case runs",
            "not run: the overall time bound was reached",
        )
    } else {
        let bound = case.timeout.min(deadline - tokio::time::Instant::now());
        let fut = (case.run)(target);
        let handle = tokio::spawn(fut);
        let abort = handle.abort_handle();
        match tokio::time::timeout(bound, handle).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => Verdict::fail("the case completes", format!("the case panicked: {e}")),
            Err(_) => {
                abort.abort();
                Verdict::fail(
                    "an answer within the case timeout",
                    format!("timed out after {bound:?}"),
                )
            }
        }
    };
    // A missed SHOULD is NON_STRICT; a MAY never fails.
    let outcome = match (case.level, verdict.outcome) {
        (Level::Should, Outcome::Fail | Outcome::WrongCode | Outcome::UncleanClose) => {
            Outcome::NonStrict
        }
        (Level::May, Outcome::Fail | Outcome::WrongCode | Outcome::UncleanClose) => {
            Outcome::Informational
        }
        (_, o) => o,
    };
    CaseResult {
        id: case.id,
        clauses: case.clauses,
        level: case.level,
        requirement: case.requirement,
        outcome,
        expected: verdict.expected,
        observed: verdict.observed,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}
