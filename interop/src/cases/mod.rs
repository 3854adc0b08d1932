//! The interop runner's test cases (../shared/INTEROP.md), each checking what the peer actually
//! sent.

mod setup;

use crate::tap::{CaseResult, Outcome};
use moqlink_transport::client::{connect, AnySession, ConnectError};
use moqlink_transport::endpoint::Client;
use moqlink_transport::session::{IncomingEvent, SessionConfig};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
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

/// Every case id of the runner's draft-14 era, in the runner's order.
pub const CASES: &[CaseInfo] = &[
    case("setup-only", 2000, true),
    case("announce-only", 2000, false),
    case("publish-namespace-done", 2000, false),
    case("subscribe-error", 2000, false),
    case("announce-subscribe", 3000, false),
    case("subscribe-before-announce", 3500, false),
    case("publish-track-only", 10_000, false),
    case("publish-track-subscribe", 10_000, false),
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

/// A case body's verdict plus the connection IDs it used.
pub type Verdict = (Outcome, Vec<(&'static str, String)>);

/// A failure with expected / received / message.
pub fn fail(
    expected: impl Into<String>,
    received: impl Into<String>,
    message: impl Into<String>,
) -> Outcome {
    Outcome::Fail {
        expected: expected.into(),
        received: received.into(),
        message: message.into(),
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
        };
    }
    let body = dispatch(info.id, ctx);
    let (outcome, connections) = match tokio::time::timeout(info.limit, body).await {
        Ok(v) => v,
        Err(_) => (
            fail(
                format!("completion within {} ms", info.limit.as_millis()),
                "timeout",
                "the case did not finish in time",
            ),
            vec![],
        ),
    };
    CaseResult {
        id: info.id,
        outcome,
        duration: start.elapsed(),
        connections,
    }
}

fn dispatch<'a>(
    id: &str,
    ctx: &'a Ctx,
) -> std::pin::Pin<Box<dyn Future<Output = Verdict> + Send + 'a>> {
    match id {
        "setup-only" => Box::pin(setup::setup_only(ctx)),
        _ => Box::pin(async { (Outcome::Skip("unknown case".into()), vec![]) }),
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
