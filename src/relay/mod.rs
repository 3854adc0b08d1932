//! The relay: accepts WebTransport and raw QUIC sessions on one UDP port and serves them from
//! one registry of namespaces and tracks. Every track has one upstream subscription per matching
//! publisher however many subscribers read it; each downstream subscription reads its own
//! consumer of the shared track.

pub mod auth;
pub mod config;
mod http;
mod lite;
mod metrics;
mod namespaces;
mod registry;
mod request;
mod serve;
mod state;
#[doc(hidden)]
pub mod testing;
mod upstream;

pub use request::{LiveCounts, SessionLimits};

use moqlink_model::SessionErrorCode;
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::endpoint::{Alpn, EndpointError, Incoming, Server};
use moqlink_transport::session::{Accepted, Session, SessionConfig};
use moqlink_transport::tls::ServerIdentity;
use moqlink_transport::track::TrackConfig;
use serve::{Ctx, Shared};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// What the relay needs to run.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// UDP address to listen on.
    pub bind: SocketAddr,
    /// Session behaviour (versions accepted, request window...).
    pub session: SessionConfig,
    /// How long sessions may drain after GOAWAY on shutdown.
    pub drain: Duration,
    /// How long a SUBSCRIBE waits for its namespace to be announced.
    pub namespace_wait: Duration,
    /// History each relayed track keeps (the cache FETCH is served from).
    pub track: TrackConfig,
    /// Who may publish and subscribe where; empty = open.
    pub auth: auth::AuthRules,
    /// What one session may hold at once.
    pub limits: SessionLimits,
    /// Connection-level limits (QUIC windows, streams, handshakes, sessions, idle time).
    pub server: moqlink_transport::ServerLimits,
    /// The relay to forward requests to when no local publisher serves them.
    pub upstream: Option<Upstream>,
    /// TCP address of the HTTP side door (`/metrics`, `/certificate.sha256`, `/healthz`,
    /// `/state`); none = off.
    pub http: Option<SocketAddr>,
}

/// An upstream relay: its URL and how to connect to it.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `moqt://` or `https://` URL.
    pub url: String,
    /// The QUIC / WebTransport client (its TLS policy).
    pub client: moqlink_transport::endpoint::Client,
    /// The token the relay presents upstream (its own; clients' tokens are never forwarded).
    pub token: Option<String>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 4443)),
            session: SessionConfig::default(),
            drain: Duration::from_secs(5),
            namespace_wait: Duration::from_secs(1),
            track: TrackConfig::default(),
            auth: auth::AuthRules::default(),
            limits: SessionLimits::default(),
            server: Default::default(),
            upstream: None,
            http: None,
        }
    }
}

/// Why the relay stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Binding or serving the endpoint failed.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The HTTP side door's TCP port could not be bound.
    #[error("binding the HTTP listener: {0}")]
    Http(#[from] std::io::Error),
}

/// A running relay endpoint.
pub struct Relay {
    server: Server,
    core: Arc<Core>,
    /// The HTTP side door's listener, served by `run`.
    http: Option<std::net::TcpListener>,
    /// The certificate's SHA-256, lowercase hex (`/certificate.sha256`).
    fingerprint: String,
}

/// The relay without its endpoint: the registry and the sessions it serves.
pub(crate) struct Core {
    shared: Arc<Shared>,
    sessions: tokio::sync::Mutex<Vec<moqlink_transport::client::AnySession>>,
    /// moq-lite sessions, closed at shutdown.
    lite: tokio::sync::Mutex<Vec<moqlink_transport::lite::LiteSession<AnyConnection>>>,
}

impl Relay {
    /// Binds the UDP port.
    pub fn bind(config: RelayConfig, identity: &ServerIdentity) -> Result<Self, RelayError> {
        if config.auth.is_open() {
            tracing::warn!("no authorization rules: anyone may publish and subscribe anything (set [[auth]] rules and auth_default = \"deny\" in relay.toml)");
        }
        let server = Server::bind_with(config.bind, identity, config.server.clone())?;
        let http = match config.http {
            Some(addr) => {
                let l = std::net::TcpListener::bind(addr)?;
                l.set_nonblocking(true)?;
                Some(l)
            }
            None => None,
        };
        let core = Arc::new(Core::new(config));
        let _ = core.shared.metrics.server.set(server.refusals());
        Ok(Relay {
            server,
            core,
            http,
            fingerprint: identity.fingerprint().to_string(),
        })
    }

    /// The HTTP side door's bound address, when it is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// What the relay holds right now (sessions, requests), for tests and soak checks.
    pub fn live(&self) -> Arc<LiveCounts> {
        self.core.shared.live.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, RelayError> {
        Ok(self.server.local_addr()?)
    }

    /// Serves sessions until `shutdown` resolves, then sends GOAWAY to every session, lets them
    /// drain and closes.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), RelayError> {
        tokio::pin!(shutdown);
        let mut me = self;
        // Accepting from here on, before the HTTP listener can answer /healthz.
        let metrics = me.core.shared.metrics.clone();
        metrics
            .accepting
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let http = match me.http.take() {
            Some(l) => {
                let listener = tokio::net::TcpListener::from_std(l)?;
                tracing::info!(addr = %listener.local_addr()?, "HTTP side door listening (/metrics, /certificate.sha256, /healthz, /state)");
                let door = http::Door {
                    shared: me.core.shared.clone(),
                    fingerprint: me.fingerprint.clone(),
                };
                Some(tokio::spawn(http::serve(listener, Arc::new(door))))
            }
            None => None,
        };
        let me = Arc::new(me);
        loop {
            tokio::select! {
                incoming = me.server.accept() => {
                    let Some(incoming) = incoming else { break };
                    let core = me.core.clone();
                    tokio::spawn(async move { core.serve(incoming).await });
                }
                _ = &mut shutdown => break,
            }
        }
        tracing::info!("shutting down: GOAWAY to every session");
        metrics
            .accepting
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let drain = me.core.shared.config.drain;
        let sessions: Vec<_> = me.core.sessions.lock().await.drain(..).collect();
        let lite: Vec<_> = me.core.lite.lock().await.drain(..).collect();
        // Whatever the peers do (a full control stream, no close), shutdown ends with the
        // drain time: GOAWAYs are queued concurrently and each may wait at most that long.
        let deadline = tokio::time::Instant::now() + drain;
        let mut goaways = tokio::task::JoinSet::new();
        for s in sessions.iter().filter(|s| s.close_reason().is_none()) {
            let s = s.clone();
            goaways
                .spawn(async move { tokio::time::timeout_at(deadline, s.goaway("", drain)).await });
        }
        while goaways.join_next().await.is_some() {}
        let _ = tokio::time::timeout_at(deadline, async {
            for s in &sessions {
                s.closed().await;
            }
        })
        .await;
        for s in &sessions {
            s.close(SessionErrorCode::GoawayTimeout, "relay shutting down");
        }
        for s in &lite {
            s.close(SessionErrorCode::NoError, "relay shutting down");
        }
        me.server
            .shutdown(
                SessionErrorCode::NoError.code(),
                "relay shutting down",
                drain,
            )
            .await;
        if let Some(h) = http {
            h.abort();
        }
        Ok(())
    }
}

impl Core {
    fn new(mut config: RelayConfig) -> Self {
        let metrics = Arc::new(metrics::Metrics::default());
        // Every relayed track and every session counts into the relay's metrics.
        config.track.stats = Some(metrics.track.clone());
        config.session.request_stats = Some(metrics.requests.clone());
        Core {
            shared: Arc::new(Shared {
                metrics,
                registry: Default::default(),
                config,
                upstream: Default::default(),
                next_id: AtomicU64::new(1),
                live: Default::default(),
            }),
            sessions: Default::default(),
            lite: Default::default(),
        }
    }

    /// Serves one accepted connection until its session ends.
    async fn serve(&self, incoming: Incoming) {
        let remote = incoming.remote;
        let alpn = incoming.alpn;
        let url_path = incoming.path.clone();
        let mut cfg = self.shared.config.session.clone();
        if alpn == Alpn::MoqLite {
            // ALPN moql: moq-lite only, whatever else SETUP offers.
            cfg.versions.retain(|v| v.is_lite());
            if cfg.versions.is_empty() {
                moqlink_transport::Connection::close(
                    &incoming.conn,
                    SessionErrorCode::VersionNegotiationFailed.code(),
                    "moq-lite is not enabled on this relay (--versions)",
                );
                return;
            }
        }
        // The handshake, the draft-14 and the moq-lite serving futures are boxed: inline, this
        // task would carry the largest of the three (7 KiB) for the whole session.
        let accepted = match Box::pin(Session::accept_any(incoming.conn, cfg)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(%remote, error = %e, "setup failed");
                return;
            }
        };
        let id = self.shared.new_session_id();
        let listed = |version, peer: &Arc<request::Peer>| {
            let info = metrics::SessionInfo {
                version: metrics::version_label(version),
                transport: metrics::transport_label(alpn),
                remote,
                peer: peer.clone(),
            };
            self.shared.metrics.session_opened(id, info)
        };
        match accepted {
            Accepted::Ietf(session, events) => {
                tracing::info!(session = id, %remote, %alpn, version = %session.version(), "session established");
                {
                    let mut all = self.sessions.lock().await;
                    all.retain(|s| s.close_reason().is_none());
                    all.push(session.clone());
                }
                // Credentials: SETUP's AUTHORIZATION_TOKENs, and a token in the URL (the
                // WebTransport path or the PATH parameter) as browsers can only send it there.
                let url = url_path
                    .as_deref()
                    .or_else(|| lite::setup_path(session.peer_setup()));
                let tokens = session.setup_tokens().iter().map(|t| t.value.to_vec());
                let credentials = auth::Credentials::of_session(url, tokens);
                let ctx = Ctx {
                    id,
                    session,
                    shared: self.shared.clone(),
                    upstream_link: false,
                    peer: request::Peer::new(id, credentials, self.shared.live.clone()),
                };
                let _listed = listed(ctx.session.version(), &ctx.peer);
                Box::pin(serve::serve(ctx, events)).await;
                // This session has ended: drop it (and any other ended one) now, not at the next
                // connection.
                self.sessions
                    .lock()
                    .await
                    .retain(|s| s.close_reason().is_none());
            }
            Accepted::Lite(session, events) => {
                tracing::info!(session = id, %remote, %alpn, version = %session.version().label(), "moq-lite session established");
                {
                    let mut all = self.lite.lock().await;
                    all.retain(|s| s.close_reason().is_none());
                    all.push(session.clone());
                }
                let credentials = lite::lite_credentials(&session, url_path.as_deref());
                let peer = request::Peer::new(id, credentials, self.shared.live.clone());
                let _listed = listed(session.version(), &peer);
                Box::pin(lite::serve_lite(self.shared.clone(), peer, session, events)).await;
                // As for draft-14: an ended session is not kept until the next connection.
                self.lite
                    .lock()
                    .await
                    .retain(|s| s.close_reason().is_none());
            }
        }
    }
}
