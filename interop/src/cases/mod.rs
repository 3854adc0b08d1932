//! The interop runner's test cases (../shared/INTEROP.md), each checking what the peer actually
//! sent.

mod control;
mod data;
mod discovery;
mod peer;
mod publish;
mod setup;

pub use peer::Peer;

use crate::tap::{CaseResult, Outcome};
use moqlink_model::codes;
use moqlink_model::control::MessageType;
use moqlink_model::{Blob, TrackNamespace};
use moqlink_transport::client::{connect, AnySession, ConnectError};
use moqlink_transport::endpoint::Client;
use moqlink_transport::session::{IncomingEvent, SessionConfig, SessionError};
use moqlink_transport::track::TrackName;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What every case needs.
#[derive(Clone)]
pub struct Ctx {
    /// The relay URL (`https://` WebTransport, `moqt://` raw QUIC).
    pub relay: String,
    /// The QUIC / WebTransport client (TLS policy included).
    pub client: Client,
    /// Session settings (versions offered...).
    pub session: SessionConfig,
}

impl Ctx {
    /// Opens a session to the relay.
    pub async fn connect(
        &self,
    ) -> Result<(AnySession, mpsc::Receiver<IncomingEvent>, String), ConnectError> {
        let (s, rx) = connect(&self.client, &self.relay, self.session.clone()).await?;
        Ok((s, rx, connection_id()))
    }
}

/// A test case the runner knows.
#[derive(Debug, Clone, Copy)]
pub struct CaseInfo {
    /// Its id.
    pub id: &'static str,
    /// The runner's time limit.
    pub limit: Duration,
    /// Whether moqlink-interop implements it yet.
    pub implemented: bool,
}

/// Every case id: the runner's draft-14 cases in the runner's order, then the data-plane cases
/// strict clients also run.
pub const CASES: &[CaseInfo] = &[
    case("setup-only", 2000, true),
    case("announce-only", 2000, true),
    case("publish-namespace-done", 2000, true),
    case("subscribe-error", 2000, true),
    case("announce-subscribe", 3000, true),
    case("subscribe-before-announce", 3500, true),
    case("publish-track-only", 10_000, true),
    case("publish-track-subscribe", 10_000, true),
    case("data-subgroup-basic", 15_000, true),
    case("namespace-discovery", 10_000, true),
    case("fetch", 15_000, true),
    case("join", 15_000, true),
];

const fn case(id: &'static str, ms: u64, implemented: bool) -> CaseInfo {
    CaseInfo {
        id,
        limit: Duration::from_millis(ms),
        implemented,
    }
}

/// Looks a case up by id.
pub fn find(id: &str) -> Option<&'static CaseInfo> {
    CASES.iter().find(|c| c.id == id)
}

/// The namespace most cases use: `moq-test/interop`.
pub fn test_namespace() -> TrackNamespace {
    TrackNamespace::from_strs(&["moq-test", "interop"])
}

/// The track most cases use: `moq-test/interop` / `test-track`.
pub fn test_track() -> TrackName {
    TrackName {
        namespace: test_namespace(),
        name: Blob::from("test-track"),
    }
}

/// A run-unique track for the cases whose names the runner's definitions do not fix
/// (`data-subgroup-basic`, `namespace-discovery`, `fetch`, `join`): namespace
/// `moq-test/interop-<case>-<nonce>`, track `test-track`. A relay that keeps a track after its
/// publisher's session ended then cannot answer one run with an earlier run's state.
pub fn run_track(case: &str) -> TrackName {
    let nonce = &connection_id()[..8];
    TrackName {
        namespace: TrackNamespace::from_strs(&[
            "moq-test",
            format!("interop-{case}-{nonce}").as_str(),
        ]),
        name: Blob::from("test-track"),
    }
}

/// Why a SUBSCRIBE answered without a word to this run's publisher points at the relay's
/// memory: it answered from the state of an ended session that used the same track name.
pub fn stale_state_hint(publisher_seen: &str) -> Option<String> {
    (publisher_seen == "nothing").then(|| {
        "the relay answered without sending anything to this run's publisher: it answered from \
         state kept from an ended session (an earlier run that used the same track name)"
            .to_string()
    })
}

/// A failed check: what was expected, what the peer did, and why it matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What the case expected.
    pub expected: String,
    /// What actually arrived.
    pub received: String,
    /// A one-line explanation.
    pub message: String,
}

impl Failure {
    /// A failure with expected / received / message.
    pub fn new(
        expected: impl Into<String>,
        received: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Failure {
            expected: expected.into(),
            received: received.into(),
            message: message.into(),
        }
    }
}

impl From<Failure> for Outcome {
    fn from(f: Failure) -> Self {
        Outcome::Fail {
            expected: f.expected,
            received: f.received,
            message: f.message,
        }
    }
}

/// A failure with expected / received / message.
pub fn fail(
    expected: impl Into<String>,
    received: impl Into<String>,
    message: impl Into<String>,
) -> Outcome {
    Failure::new(expected, received, message).into()
}

/// What a running case records as it goes, kept even when the case runs out of time.
#[derive(Debug, Default)]
pub struct Record {
    connections: Mutex<Vec<(&'static str, String)>>,
    step: Mutex<String>,
}

impl Record {
    /// Notes a connection ID under its YAML key (`connection_id`, `publisher_connection_id`...).
    pub fn connection(&self, key: &'static str, id: &str) {
        lock(&self.connections).push((key, id.to_string()));
    }

    /// Notes what the case is waiting for now (reported if the time limit hits).
    pub fn step(&self, what: impl Into<String>) {
        let what = what.into();
        tracing::debug!(step = %what);
        *lock(&self.step) = what;
    }

    /// The connection IDs noted so far.
    pub fn connections(&self) -> Vec<(&'static str, String)> {
        lock(&self.connections).clone()
    }

    /// The step the case was at.
    pub fn current_step(&self) -> String {
        lock(&self.step).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A case body's result: a pass message, or the failure.
pub type CaseOutput = Result<String, Failure>;

/// Awaits `fut` for at most `limit`; on timeout fails with "`expected` within N ms".
pub async fn within<T>(
    limit: Duration,
    expected: &str,
    fut: impl Future<Output = T>,
) -> Result<T, Failure> {
    tokio::time::timeout(limit, fut).await.map_err(|_| {
        Failure::new(
            expected,
            format!("nothing within {} ms", limit.as_millis()),
            format!("no {expected} in time"),
        )
    })
}

/// The draft-14 name of an error code in the table of `kind` (a *_ERROR type or the request
/// it answers; §13.1.2-§13.1.7), or "not a draft-14 code".
pub fn request_error_name(kind: MessageType, code: u64) -> &'static str {
    codes::request_error_name(kind, code).unwrap_or("not a draft-14 code")
}

/// The draft-14 name of a PUBLISH_DONE status code (§13.1.3), or "not a draft-14 code".
pub fn publish_done_name(code: u64) -> &'static str {
    codes::PublishDoneCode::from_code(code)
        .name()
        .unwrap_or("not a draft-14 code")
}

/// How a request's outcome reads in the YAML block: `SUBSCRIBE_ERROR code 0x4
/// (TRACK_DOES_NOT_EXIST) "reason"`, or the session error.
pub fn describe_error(e: &SessionError) -> String {
    match e {
        SessionError::Rejected { kind, code, reason } => format!(
            "{} code 0x{code:x} ({}) {reason:?}",
            kind.name(),
            request_error_name(*kind, *code)
        ),
        other => other.to_string(),
    }
}

/// Runs one case within its time limit.
pub async fn run(info: &CaseInfo, ctx: &Ctx) -> CaseResult {
    let start = Instant::now();
    if !info.implemented {
        return CaseResult {
            id: info.id,
            outcome: Outcome::Skip("not implemented by moqlink-interop yet".into()),
            duration: Duration::ZERO,
            connections: vec![],
            message: None,
            section: None,
            requirement: None,
        };
    }
    let record = Arc::new(Record::default());
    let body = dispatch(info.id, ctx, record.clone());
    let (outcome, message) = match tokio::time::timeout(info.limit, body).await {
        Ok(Ok(msg)) => (Outcome::Pass, Some(msg)),
        Ok(Err(f)) => (f.into(), None),
        Err(_) => {
            let step = record.current_step();
            (
                fail(
                    format!("completion within {} ms", info.limit.as_millis()),
                    if step.is_empty() {
                        "timeout".to_string()
                    } else {
                        format!("timeout while waiting for {step}")
                    },
                    "the case did not finish in time",
                ),
                None,
            )
        }
    };
    let result = CaseResult {
        id: info.id,
        outcome,
        duration: start.elapsed(),
        connections: record.connections(),
        message,
        section: None,
        requirement: None,
    };
    tracing::info!(case = info.id, failed = result.failed(), "case finished");
    result
}

type Body<'a> = std::pin::Pin<Box<dyn Future<Output = CaseOutput> + Send + 'a>>;

fn dispatch<'a>(id: &str, ctx: &'a Ctx, r: Arc<Record>) -> Body<'a> {
    match id {
        "setup-only" => Box::pin(async move { setup::setup_only(ctx, &r).await }),
        "announce-only" => Box::pin(async move { control::announce_only(ctx, &r).await }),
        "publish-namespace-done" => {
            Box::pin(async move { control::publish_namespace_done(ctx, &r).await })
        }
        "subscribe-error" => Box::pin(async move { control::subscribe_error(ctx, &r).await }),
        "announce-subscribe" => Box::pin(async move { control::announce_subscribe(ctx, &r).await }),
        "subscribe-before-announce" => {
            Box::pin(async move { control::subscribe_before_announce(ctx, &r).await })
        }
        "publish-track-only" => Box::pin(async move { publish::publish_track_only(ctx, &r).await }),
        "publish-track-subscribe" => {
            Box::pin(async move { publish::publish_track_subscribe(ctx, &r).await })
        }
        "data-subgroup-basic" => Box::pin(async move { data::subgroup_basic(ctx, &r).await }),
        "namespace-discovery" => {
            Box::pin(async move { discovery::namespace_discovery(ctx, &r).await })
        }
        "fetch" => Box::pin(async move { data::fetch(ctx, &r).await }),
        "join" => Box::pin(async move { data::join(ctx, &r).await }),
        other => {
            let other = other.to_string();
            Box::pin(async move {
                Err(Failure::new(
                    "a known case",
                    other,
                    "moqlink-interop has no such case",
                ))
            })
        }
    }
}

/// A fresh random-looking 16-byte hex ID to correlate a connection in logs.
pub fn connection_id() -> String {
    let mut out = String::with_capacity(32);
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}
