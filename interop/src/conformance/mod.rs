//! The draft-14 conformance suite: checks that run against any relay URL, each citing the draft
//! section it tests. Most checks play publisher and subscriber through the relay on two or three
//! connections and compare exactly what arrives; the rest speak raw control messages to see how
//! the relay answers a rule broken on purpose.
//!
//! Every check declares the requirement it tests: its level (MUST, MUST NOT, SHOULD, SHOULD NOT,
//! MAY), its sections, and the sentence of the draft quoted. A check passes; or misses, with what
//! it expected and what it received, graded by that level: a missed MUST or MUST NOT is a failure,
//! a missed SHOULD is reported as TAP `# TODO` and not counted (unless `--strict`); or is skipped
//! with "peer does not support" when the relay answered the request it needs with NOT_SUPPORTED
//! (0x3). A MUST check may also find that the peer missed a SHOULD the same exchange shows (e.g.
//! the exact error code of §9.18): that is [`Verdict::Should`].

mod answers;
mod blocked;
mod caching;
mod control;
mod data;
mod directsub;
mod duplicates;
mod ext11;
mod fetch;
mod fields;
pub mod harness;
mod layout;
mod level;
mod namespace;
mod params;
mod priority;
pub mod raw;
mod requests;
pub mod robustness;
mod sent;
mod session;
mod setup_params;
mod should_close;
mod streams;
mod subscribe;
mod subscription;
mod timeouts;
mod tokens;
pub mod trace;
mod upstream;
mod upstream_params;

use crate::cases::{connection_id, describe_error, Ctx, Failure, Record};
use crate::tap::{CaseResult, Outcome};
use moqlink_model::TrackNamespace;
use moqlink_transport::session::SessionError;
use moqlink_transport::track::TrackName;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use level::Level;

/// Why a check did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The relay deviated from the draft.
    Fail(Failure),
    /// The relay answered NOT_SUPPORTED to a request the check needs.
    Unsupported {
        /// The request, e.g. `FETCH`.
        what: String,
        /// The relay's reason phrase.
        reason: String,
    },
    /// The check does not apply here (e.g. a WebTransport rule on a raw QUIC URL).
    NotApplicable(String),
    /// The relay met the check's requirement but missed a SHOULD of the same exchange (named in
    /// the failure's message): reported as TAP `# TODO SHOULD`, whatever the check's level.
    Should(Failure),
}

impl From<Failure> for Verdict {
    fn from(f: Failure) -> Self {
        Verdict::Fail(f)
    }
}

/// A check body's result: a pass message, or why it did not pass.
pub type CheckOutput = Result<String, Verdict>;

/// NOT_SUPPORTED's wire value, the same in every request error table (§13.1.2-§13.1.7).
pub const NOT_SUPPORTED: u64 = moqlink_model::codes::RequestErrorCode::NOT_SUPPORTED.code();

/// Maps a refused request: NOT_SUPPORTED becomes [`Verdict::Unsupported`], anything else a
/// failure with `expected` and `why`.
pub fn refused(e: SessionError, expected: &str, why: &str) -> Verdict {
    match e {
        SessionError::Rejected {
            kind,
            code: NOT_SUPPORTED,
            reason,
        } => Verdict::Unsupported {
            what: kind.answers().unwrap_or(kind).name().to_string(),
            reason,
        },
        e => Verdict::Fail(Failure::new(expected, describe_error(&e), why)),
    }
}

/// What every check gets: the relay, its record, and names unique to this run and check.
#[derive(Clone)]
pub struct Env {
    /// The relay and how to reach it.
    pub ctx: Ctx,
    /// Connection IDs and the current step, kept even when the check times out.
    pub record: Arc<Record>,
    /// A short run-unique token: namespaces never meet a cache of an earlier run.
    pub run: String,
    /// The check's id.
    pub check: &'static str,
}

impl Env {
    /// `moq-conformance/<run>/<check>`: the namespace this check publishes under.
    pub fn namespace(&self) -> TrackNamespace {
        TrackNamespace::from_strs(&["moq-conformance", self.run.as_str(), self.check])
    }

    /// The check's namespace with more fields appended.
    pub fn namespace_with(&self, extra: &[&str]) -> TrackNamespace {
        let mut ns = self.namespace();
        ns.0.extend(extra.iter().map(|f| moqlink_model::Blob::from(*f)));
        ns
    }

    /// Track `name` in the check's namespace.
    pub fn track(&self, name: &str) -> TrackName {
        TrackName {
            namespace: self.namespace(),
            name: moqlink_model::Blob::from(name),
        }
    }

    /// Notes what the check is waiting for now.
    pub fn step(&self, what: impl Into<String>) {
        self.record.step(what);
    }
}

type Runner = fn(Env) -> Pin<Box<dyn Future<Output = CheckOutput> + Send>>;

/// One conformance check.
#[derive(Clone, Copy)]
pub struct CheckInfo {
    /// Its id, e.g. `filter-largest-object`.
    pub id: &'static str,
    /// Its group: `session`, `control`, `namespace`, `subscribe`, `fetch`, `data` or
    /// `robustness`.
    pub group: &'static str,
    /// The draft-14 sections it tests, e.g. `§9.7, §9.8`.
    pub section: &'static str,
    /// Its time limit.
    pub limit: Duration,
    /// What it checks, in one line.
    pub summary: &'static str,
    /// The keyword of the requirement it tests: a missed MUST fails, a missed SHOULD is reported.
    pub level: Level,
    /// The draft's sentence it tests, quoted (whitespace normalised, possibly shortened with `…`).
    pub quote: &'static str,
    run: Runner,
}

impl std::fmt::Debug for CheckInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {})", self.id, self.group, self.section)
    }
}

macro_rules! check {
    ($id:literal, $group:literal, $section:literal, $ms:literal, $f:path, $summary:literal,
     $level:ident, $quote:literal) => {
        CheckInfo {
            id: $id,
            group: $group,
            section: $section,
            limit: Duration::from_millis($ms),
            summary: $summary,
            level: Level::$level,
            quote: $quote,
            run: |env| Box::pin($f(env)),
        }
    };
}

/// The groups, in the order the suite runs them.
pub const GROUPS: &[&str] = &[
    "session",
    "control",
    "namespace",
    "subscribe",
    "fetch",
    "data",
    "robustness",
];

// The registry: every check with its requirement (after the macro, which it uses).
mod checks;
pub use checks::CHECKS;

/// A missed requirement of `level` that does not count as a failure.
fn todo(level: Level, f: Failure) -> Outcome {
    Outcome::Todo {
        level,
        expected: f.expected,
        received: f.received,
        message: f.message,
    }
}

/// Looks a check up by id.
pub fn find(id: &str) -> Option<&'static CheckInfo> {
    CHECKS.iter().find(|c| c.id == id)
}

/// The checks `ids` (comma-separated) and `group` select; all when neither is given.
pub fn select(ids: Option<&str>, group: Option<&str>) -> Result<Vec<&'static CheckInfo>, String> {
    if let Some(g) = group {
        if !GROUPS.contains(&g) {
            return Err(format!(
                "no conformance group {g:?} (groups: {})",
                GROUPS.join(", ")
            ));
        }
    }
    let mut out: Vec<&'static CheckInfo> = Vec::new();
    match ids {
        Some(list) => {
            for id in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let c = find(id).ok_or_else(|| format!("no conformance check {id:?}"))?;
                if group.is_none_or(|g| c.group == g) && !out.iter().any(|o| o.id == c.id) {
                    out.push(c);
                }
            }
        }
        None => out.extend(CHECKS.iter().filter(|c| group.is_none_or(|g| c.group == g))),
    }
    if out.is_empty() {
        return Err("no conformance check selected".into());
    }
    Ok(out)
}

/// A run-unique token for namespaces.
pub fn run_id() -> String {
    connection_id()[..8].to_string()
}

/// Runs one check within its time limit.
pub async fn run(info: &CheckInfo, ctx: &Ctx, run: &str) -> CaseResult {
    let start = Instant::now();
    let record = Arc::new(Record::default());
    let env = Env {
        ctx: ctx.clone(),
        record: record.clone(),
        run: run.to_string(),
        check: info.id,
    };
    let body = (info.run)(env);
    let (outcome, message) = match tokio::time::timeout(info.limit, body).await {
        Ok(Ok(msg)) => (Outcome::Pass, Some(msg)),
        Ok(Err(Verdict::Fail(f))) if info.level.mandatory() => (f.into(), None),
        Ok(Err(Verdict::Fail(f))) => (todo(info.level, f), None),
        Ok(Err(Verdict::Should(f))) => (todo(Level::Should, f), None),
        Ok(Err(Verdict::Unsupported { what, reason })) => (
            Outcome::Skip(format!("peer does not support: {what} ({reason})")),
            None,
        ),
        Ok(Err(Verdict::NotApplicable(why))) => (Outcome::Skip(why), None),
        Err(_) => {
            let step = record.current_step();
            let missed = crate::cases::fail(
                format!("completion within {} ms", info.limit.as_millis()),
                if step.is_empty() {
                    "timeout".to_string()
                } else {
                    format!("timeout while waiting for {step}")
                },
                "the check did not finish in time",
            );
            match missed {
                Outcome::Fail {
                    expected,
                    received,
                    message,
                } if !info.level.mandatory() => (
                    todo(info.level, Failure::new(expected, received, message)),
                    None,
                ),
                o => (o, None),
            }
        }
    };
    let result = CaseResult {
        id: info.id,
        outcome,
        duration: start.elapsed(),
        connections: record.connections(),
        message,
        section: Some(info.section.to_string()),
        requirement: Some(crate::tap::Requirement {
            level: info.level,
            quote: info.quote,
        }),
    };
    tracing::info!(check = info.id, failed = result.failed(), "check finished");
    result
}
