//! A MoQ session over any [`Connection`]: SETUP and version negotiation, the control stream,
//! request IDs and their flow control, GOAWAY, and closing with the draft's codes.

mod control;
pub mod ids;
mod incoming;
mod mailbox;
mod outbound;
mod publisher;
mod receive;
mod sending;
mod setup;
mod subscriber;
mod tokens;

pub use ids::Role;
pub use incoming::{IncomingEvent, IncomingRequest, OutgoingRequest, Responder};
pub use publisher::*;
pub use setup::ClientTarget;
pub use subscriber::*;
pub use tokens::{AuthToken, TokenCache, TokenOutcome};

use crate::connection::{Connection, ConnectionError};
pub use crate::data::SendLimits;
use crate::data::{DataRouter, FetchWriter, SendTotals, SubgroupWriter, WriteError};
use crate::lite::{LiteEvent, LiteSession};
use ids::{Issue, LocalIds, PeerIds, Violation};
use moqlink_model::control::*;
use moqlink_model::data::{ObjectDatagram, SubgroupHeader};
use moqlink_model::params::SetupParameters;
use moqlink_model::{Blob, SessionErrorCode, Version};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};

/// How a session behaves; the same for clients and servers.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Versions offered (client, in preference order) or accepted (server).
    pub versions: Vec<Version>,
    /// Concurrent requests the peer may have open; sets MAX_REQUEST_ID.
    pub request_window: u64,
    /// Bytes of registered authorization tokens we store (MAX_AUTH_TOKEN_CACHE_SIZE).
    pub max_auth_token_cache_size: u64,
    /// Sent as the implementation setup parameter.
    pub implementation: String,
    /// How long to wait for the peer's SETUP.
    pub setup_timeout: Duration,
    /// Incoming requests queued for the application before the control stream waits.
    pub incoming_queue: usize,
    /// Tokens a client presents in CLIENT_SETUP (AUTHORIZATION_TOKEN, USE_VALUE, type 0);
    /// unused by servers. Default none.
    pub auth_tokens: Vec<Blob>,
    /// What a served subscription may hold for a subscriber that does not read (streams,
    /// queued bytes); also used by moq-lite sessions. Default: [`SendLimits::default`].
    pub send_limits: SendLimits,
    /// Advertise every MAX_REQUEST_ID one lower than `request_window` gives, allowing the same
    /// Request IDs: a client peer then sees an odd limit (tests of peers). Default false.
    pub max_request_id_one_lower: bool,
    /// Counters of how the peer's requests were answered (OK or error code). Default none.
    pub request_stats: Option<Arc<crate::stats::RequestStats>>,
    /// Write a qlog trace of each session into this directory. Default none (off).
    pub qlog: Option<crate::qlog::QlogConfig>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            versions: vec![Version::DRAFT_14],
            request_window: 100,
            max_auth_token_cache_size: 4096,
            implementation: format!("moqlink/{}", env!("CARGO_PKG_VERSION")),
            setup_timeout: Duration::from_secs(10),
            incoming_queue: 256,
            auth_tokens: Vec::new(),
            send_limits: SendLimits::default(),
            max_request_id_one_lower: false,
            request_stats: None,
            qlog: None,
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClose {
    /// The session error code (§13.1.1).
    pub code: u64,
    /// The reason phrase.
    pub reason: String,
    /// Whether the peer closed it.
    pub by_peer: bool,
}

impl SessionClose {
    /// The draft's name for the code, if it has one.
    pub fn code_name(&self) -> &'static str {
        moqlink_model::codes::session_code_name(self.code).unwrap_or("UNKNOWN")
    }
}

impl std::fmt::Display for SessionClose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (0x{:x}): {}",
            if self.by_peer {
                "peer closed with"
            } else {
                "closed with"
            },
            self.code_name(),
            self.code,
            self.reason
        )
    }
}

/// Why a session operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The session is closed.
    #[error("{0}")]
    Closed(SessionClose),
    /// The peer sent GOAWAY, so no new requests are made (§9.4).
    #[error("peer sent GOAWAY (new session URI {0:?})")]
    GoingAway(String),
    /// The connection failed before a session existed.
    #[error("connection: {0}")]
    Connection(#[from] ConnectionError),
    /// The peer answered a request with an error message.
    #[error("{} error 0x{code:x}: {reason}", kind.name())]
    Rejected {
        /// The error message type, e.g. SUBSCRIBE_ERROR.
        kind: MessageType,
        /// Its error code, from the table of `kind` ([`moqlink_model::codes::request_error_name`]).
        code: u64,
        /// Its reason phrase.
        reason: String,
    },
    /// The peer answered with a message of the wrong type.
    #[error("unexpected reply: {0}")]
    Unexpected(String),
    /// A message this side built cannot be encoded (e.g. a field past its limit); nothing was
    /// sent and the session goes on.
    #[error("{kind} not sent: {reason}")]
    Unencodable {
        /// The message type.
        kind: &'static str,
        /// Which rule the message broke.
        reason: String,
    },
}

impl From<&ConnectionError> for SessionClose {
    fn from(e: &ConnectionError) -> Self {
        match e {
            ConnectionError::ClosedByPeer { code, reason } => SessionClose {
                code: *code,
                reason: reason.clone(),
                by_peer: true,
            },
            ConnectionError::ClosedLocally { code, reason } => SessionClose {
                code: *code,
                reason: reason.clone(),
                by_peer: false,
            },
            ConnectionError::Transport(t) => SessionClose {
                code: SessionErrorCode::InternalError.code(),
                reason: t.clone(),
                by_peer: true,
            },
        }
    }
}

pub(crate) struct State {
    pub(crate) local: LocalIds,
    pub(crate) peer: PeerIds,
    /// Where messages referring to a request ID go.
    pub(crate) routes: HashMap<u64, mailbox::Postbox>,
    /// Our requests the peer has answered (a second answer is a protocol error, §5.1, §6.2).
    pub(crate) answered: std::collections::HashSet<u64>,
    pub(crate) goaway_received: Option<Blob>,
    pub(crate) goaway_sent: bool,
    pub(crate) tokens: tokens::TokenCache,
}

pub(crate) struct Inner<C: Connection> {
    pub(crate) conn: C,
    pub(crate) data: Arc<DataRouter>,
    /// Takes the data stream writers in priority order when flow control is short (§7.2).
    pub(crate) arbiter: Arc<crate::data::SendArbiter>,
    /// Held while a request takes its ID and queues its message, so IDs go out in order.
    pub(crate) request_order: tokio::sync::Mutex<()>,
    pub(crate) role: Role,
    pub(crate) version: Version,
    pub(crate) peer_setup: SetupParameters,
    pub(crate) setup_tokens: Vec<AuthToken>,
    pub(crate) out: mpsc::Sender<outbound::Outbound>,
    pub(crate) state: Mutex<State>,
    pub(crate) credit: Notify,
    pub(crate) close: watch::Sender<Option<SessionClose>>,
    /// Track aliases this endpoint hands out as a publisher.
    pub(crate) next_alias: std::sync::atomic::AtomicU64,
    /// Subscriptions this endpoint serves as a publisher, for joining FETCH (§9.16.2).
    pub(crate) served: Mutex<HashMap<u64, publisher::Served>>,
    /// Wakes joining FETCHes waiting for their subscription.
    pub(crate) served_changed: Notify,
    /// Bounds on what each served subscription holds for its subscriber.
    pub(crate) send_limits: SendLimits,
    /// What the served subscriptions hold together.
    pub(crate) sending: Arc<SendTotals>,
    /// Where answers to the peer's requests are counted.
    pub(crate) request_stats: Option<Arc<crate::stats::RequestStats>>,
    /// The session's qlog trace, if tracing is on.
    pub(crate) qlog: Option<crate::qlog::Qlog>,
}

impl<C: Connection> Inner<C> {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug; keep serving with the data as it is.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the session with `code` and `reason`, once.
    pub(crate) fn close(&self, code: u64, reason: &str, by_peer: bool) {
        let first = self.close.send_if_modified(|c| {
            if c.is_some() {
                return false;
            }
            // §3.3: the connection closes before anyone watching wakes, so no task reacting to
            // the close (the control writer dropping its stream) can still send on it.
            if !by_peer {
                self.conn.close(code, reason);
            }
            *c = Some(SessionClose {
                code,
                reason: reason.to_string(),
                by_peer,
            });
            true
        });
        if first {
            if by_peer {
                tracing::info!(code, reason, "session closed by peer");
            } else {
                tracing::info!(code, reason, "closing session");
            }
            if let Some(q) = &self.qlog {
                let by = if by_peer { "by the peer" } else { "locally" };
                q.info(format!("session closed {by}: code 0x{code:x} {reason:?}"));
                q.finish();
            }
            self.credit.notify_waiters();
            // Every request's follow-up channel ends with the session, so whoever waits on a
            // reply or a follow-up sees the end instead of waiting forever.
            let routes = std::mem::take(&mut self.state().routes);
            drop(routes);
        }
    }

    pub(crate) fn violation(&self, v: &Violation) {
        tracing::warn!(code = v.code.name(), reason = %v.reason, "protocol violation");
        self.close(v.code.code(), &v.reason, false);
    }

    pub(crate) fn closed_state(&self) -> Option<SessionClose> {
        self.close.borrow().clone()
    }

    pub(crate) fn check_open(&self) -> Result<(), SessionError> {
        match self.closed_state() {
            Some(c) => Err(SessionError::Closed(c)),
            None => Ok(()),
        }
    }
}

/// A session of either profile, as SETUP chose.
pub enum Accepted<C: Connection> {
    /// MoQ Transport draft-14.
    Ietf(Session<C>, mpsc::Receiver<IncomingEvent>),
    /// moq-lite.
    Lite(LiteSession<C>, mpsc::Receiver<LiteEvent<C>>),
}

impl<C: Connection> Accepted<C> {
    /// The draft-14 session; a moq-lite one is closed and refused.
    pub fn into_ietf(self) -> Result<(Session<C>, mpsc::Receiver<IncomingEvent>), SessionError> {
        match self {
            Accepted::Ietf(s, rx) => Ok((s, rx)),
            Accepted::Lite(s, _) => {
                let reason = "a moq-lite version was negotiated where draft-14 was expected";
                s.close(SessionErrorCode::VersionNegotiationFailed, reason);
                Err(SessionError::Closed(SessionClose {
                    code: SessionErrorCode::VersionNegotiationFailed.code(),
                    reason: reason.into(),
                    by_peer: false,
                }))
            }
        }
    }
}

/// A running session. Cheap to clone; the session ends when closed or when the connection ends.
pub struct Session<C: Connection> {
    inner: Arc<Inner<C>>,
}

impl<C: Connection> Clone for Session<C> {
    fn clone(&self) -> Self {
        Session {
            inner: self.inner.clone(),
        }
    }
}

impl<C: Connection> Session<C> {
    /// Connects as a client over `conn`: SETUP, then the control stream runs in the background.
    /// Returns the session and the stream of the peer's requests.
    pub async fn connect(
        conn: C,
        cfg: SessionConfig,
        target: ClientTarget,
    ) -> Result<(Self, mpsc::Receiver<IncomingEvent>), SessionError> {
        Self::connect_any(conn, cfg, target).await?.into_ietf()
    }

    /// Accepts a client over `conn` whichever profile SETUP chooses: draft-14 or moq-lite.
    pub async fn accept_any(conn: C, cfg: SessionConfig) -> Result<Accepted<C>, SessionError> {
        let mut peer = PeerIds::new(Role::Client, cfg.request_window);
        if cfg.max_request_id_one_lower {
            peer = peer.advertise_one_lower();
        }
        let qlog = setup::start_trace(&conn, &cfg, crate::qlog::Vantage::Server);
        let (send, recv, mut reader, client, version) =
            setup::server(&conn, &cfg, peer.granted(), qlog.as_ref()).await?;
        if version.is_lite() {
            let leftover = reader.take_buffered();
            let (s, rx) = LiteSession::start(
                conn,
                version,
                Role::Server,
                (send, recv, leftover),
                client.parameters,
                cfg.send_limits,
            );
            setup::lite_trace(qlog, &s);
            return Ok(Accepted::Lite(s, rx));
        }
        let local = LocalIds::new(
            Role::Server,
            client.parameters.max_request_id().unwrap_or(0),
        );
        let (s, rx) = Self::start(
            conn,
            &cfg,
            Role::Server,
            version,
            client.parameters,
            local,
            peer,
            (send, recv, reader),
            qlog,
        );
        Ok(Accepted::Ietf(s, rx))
    }

    /// Connects as a client whichever profile the server chooses among `cfg.versions`.
    pub async fn connect_any(
        conn: C,
        cfg: SessionConfig,
        target: ClientTarget,
    ) -> Result<Accepted<C>, SessionError> {
        let mut peer = PeerIds::new(Role::Server, cfg.request_window);
        if cfg.max_request_id_one_lower {
            peer = peer.advertise_one_lower();
        }
        let qlog = setup::start_trace(&conn, &cfg, crate::qlog::Vantage::Client);
        let (send, recv, mut reader, server) =
            setup::client(&conn, &cfg, &target, peer.granted(), qlog.as_ref()).await?;
        if server.version.is_lite() {
            let leftover = reader.take_buffered();
            let (s, rx) = LiteSession::start(
                conn,
                server.version,
                Role::Client,
                (send, recv, leftover),
                Default::default(),
                cfg.send_limits,
            );
            setup::lite_trace(qlog, &s);
            return Ok(Accepted::Lite(s, rx));
        }
        let local = LocalIds::new(
            Role::Client,
            server.parameters.max_request_id().unwrap_or(0),
        );
        let (s, rx) = Self::start(
            conn,
            &cfg,
            Role::Client,
            server.version,
            server.parameters,
            local,
            peer,
            (send, recv, reader),
            qlog,
        );
        Ok(Accepted::Ietf(s, rx))
    }

    /// Accepts a client over `conn`: SETUP with version negotiation, then the control stream runs
    /// in the background. Returns the session and the stream of the peer's requests.
    pub async fn accept(
        conn: C,
        cfg: SessionConfig,
    ) -> Result<(Self, mpsc::Receiver<IncomingEvent>), SessionError> {
        Self::accept_any(conn, cfg).await?.into_ietf()
    }

    #[allow(clippy::too_many_arguments)]
    fn start(
        conn: C,
        cfg: &SessionConfig,
        role: Role,
        version: Version,
        peer_setup: SetupParameters,
        local: LocalIds,
        peer: PeerIds,
        control: (C::Send, C::Recv, ControlReader),
        qlog: Option<crate::qlog::Qlog>,
    ) -> (Self, mpsc::Receiver<IncomingEvent>) {
        let (out, out_rx) = mpsc::channel(1024);
        let mut tokens = tokens::TokenCache::new(cfg.max_auth_token_cache_size);
        let setup_tokens = tokens.apply_setup(peer_setup.auth_tokens());
        let (incoming_tx, incoming_rx) = mpsc::channel(cfg.incoming_queue.max(1));
        let inner = Arc::new(Inner {
            conn,
            data: Arc::new(DataRouter::default()),
            arbiter: crate::data::SendArbiter::new(),
            request_order: tokio::sync::Mutex::new(()),
            role,
            version,
            peer_setup,
            setup_tokens,
            out,
            state: Mutex::new(State {
                local,
                peer,
                routes: HashMap::new(),
                answered: Default::default(),
                goaway_received: None,
                goaway_sent: false,
                tokens,
            }),
            credit: Notify::new(),
            close: watch::channel(None).0,
            next_alias: std::sync::atomic::AtomicU64::new(0),
            served: Mutex::new(HashMap::new()),
            served_changed: Notify::new(),
            send_limits: cfg.send_limits,
            sending: Arc::default(),
            request_stats: cfg.request_stats.clone(),
            qlog,
        });
        let (send, recv, reader) = control;
        control::spawn(inner.clone(), send, recv, reader, out_rx, incoming_tx);
        let weak = Arc::downgrade(&inner);
        inner.data.spawn(
            inner.conn.clone(),
            Arc::new(move |code: SessionErrorCode, reason: String| {
                if let Some(inner) = weak.upgrade() {
                    inner.close(code.code(), &reason, false);
                }
            }),
            inner.qlog.clone(),
        );
        (Session { inner }, incoming_rx)
    }

    /// Incoming data streams and datagrams, routed by track alias and fetch request.
    pub fn data(&self) -> &DataRouter {
        &self.inner.data
    }

    /// Opens a subgroup stream at `priority` (see [`crate::data::stream_priority`]).
    pub async fn open_subgroup(
        &self,
        header: SubgroupHeader,
        priority: i32,
    ) -> Result<SubgroupWriter<C::Send>, WriteError> {
        SubgroupWriter::open(&self.inner.conn, &self.inner.arbiter, header, priority)
            .await
            .map(|w| w.traced(self.inner.qlog.as_ref()))
    }

    /// Opens the fetch stream answering `request_id`.
    pub async fn open_fetch(
        &self,
        request_id: u64,
        priority: i32,
    ) -> Result<FetchWriter<C::Send>, WriteError> {
        FetchWriter::open(&self.inner.conn, &self.inner.arbiter, request_id, priority)
            .await
            .map(|w| w.traced(self.inner.qlog.as_ref()))
    }

    /// Sends one object as a datagram (dropped silently if larger than the path allows).
    pub fn send_datagram(&self, d: &ObjectDatagram) -> Result<(), WriteError> {
        let mut buf = bytes::BytesMut::new();
        d.encode(&mut buf, moqlink_model::Encoding::new(self.inner.version))?;
        if self
            .inner
            .conn
            .max_datagram_size()
            .is_some_and(|max| buf.len() > max)
        {
            tracing::debug!(
                len = buf.len(),
                "datagram larger than the path allows, dropped"
            );
            return Ok(());
        }
        if let Some(q) = &self.inner.qlog {
            q.data_event(
                crate::qlog::DataEvent::ObjectDatagram,
                crate::qlog::Dir::Created,
                crate::qlog::datagram(d),
            );
        }
        self.inner
            .conn
            .send_datagram(buf.freeze())
            .map_err(|e| WriteError::Stream(e.into()))
    }

    /// This endpoint's role.
    pub fn role(&self) -> Role {
        self.inner.role
    }

    /// The negotiated version.
    pub fn version(&self) -> Version {
        self.inner.version
    }

    /// The peer's setup parameters.
    pub fn peer_setup(&self) -> &SetupParameters {
        &self.inner.peer_setup
    }

    /// The authorization tokens the peer gave in its SETUP (§9.3.2.5).
    pub fn setup_tokens(&self) -> &[AuthToken] {
        &self.inner.setup_tokens
    }

    /// The connection under the session.
    pub fn connection(&self) -> &C {
        &self.inner.conn
    }

    /// The URI from the peer's GOAWAY, once one arrived (empty = reconnect to the same URI).
    pub fn goaway_received(&self) -> Option<String> {
        self.inner
            .state()
            .goaway_received
            .as_ref()
            .map(|b| b.to_string())
    }

    /// How the session ended, if it has.
    pub fn close_reason(&self) -> Option<SessionClose> {
        self.inner.closed_state()
    }

    /// Waits until the session ends.
    pub async fn closed(&self) -> SessionClose {
        let mut rx = self.inner.close.subscribe();
        loop {
            if let Some(c) = rx.borrow_and_update().clone() {
                return c;
            }
            if rx.changed().await.is_err() {
                return SessionClose {
                    code: SessionErrorCode::InternalError.code(),
                    reason: "session dropped".into(),
                    by_peer: false,
                };
            }
        }
    }

    /// Closes the session with a draft error code and a reason phrase, at once.
    pub fn close(&self, code: SessionErrorCode, reason: &str) {
        self.inner.close(code.code(), reason, false);
    }

    /// Closes the session after the control messages already queued (e.g. UNSUBSCRIBE,
    /// PUBLISH_NAMESPACE_DONE) were handed to the transport, waiting at most `limit`.
    pub async fn close_gracefully(&self, code: SessionErrorCode, reason: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.inner.out.capacity() < self.inner.out.max_capacity()
            && tokio::time::Instant::now() < deadline
            && self.inner.closed_state().is_none()
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The writer may still be inside its last write; give it a moment to finish.
        tokio::time::sleep(Duration::from_millis(20).min(limit)).await;
        self.inner.close(code.code(), reason, false);
    }

    /// Sends a message that is not a new request (e.g. UNSUBSCRIBE, PUBLISH_DONE).
    pub async fn send(&self, msg: ControlMessage) -> Result<(), SessionError> {
        self.inner.check_open()?;
        let out = outbound::Outbound::encode(&msg)?;
        self.inner.out.send(out).await.map_err(|_| self.gone())
    }

    fn gone(&self) -> SessionError {
        SessionError::Closed(self.inner.closed_state().unwrap_or(SessionClose {
            code: SessionErrorCode::InternalError.code(),
            reason: "control stream writer stopped".into(),
            by_peer: false,
        }))
    }

    /// Issues a new request: waits for a Request ID within the peer's MAX_REQUEST_ID (sending
    /// REQUESTS_BLOCKED when blocked), lets `build` fill in the message, and returns a handle on
    /// which the replies and follow-ups for that ID arrive.
    pub async fn request(
        &self,
        build: impl FnOnce(u64) -> ControlMessage,
    ) -> Result<OutgoingRequest, SessionError> {
        // §9.1: Request IDs must reach the peer in order, so taking an ID and queueing its
        // message happen under one lock (concurrent requests would otherwise race).
        let _order = self.inner.request_order.lock().await;
        let id = self.next_request_id().await?;
        let msg = build(id);
        debug_assert_eq!(msg.request_id(), Some(id));
        // Encoded before the ID is spent: an unencodable request gives its ID back, so the
        // next request still carries the next ID the peer expects (§9.1).
        let out = match outbound::Outbound::encode(&msg) {
            Ok(out) => out,
            Err(e) => {
                self.inner.state().local.give_back(id);
                return Err(e);
            }
        };
        let (post, mail) = mailbox::mailbox();
        self.inner.state().routes.insert(id, post);
        let handle = OutgoingRequest::new(id, mail, self.inner.clone());
        self.inner.check_open()?;
        self.inner.out.send(out).await.map_err(|_| self.gone())?;
        Ok(handle)
    }

    async fn next_request_id(&self) -> Result<u64, SessionError> {
        loop {
            self.inner.check_open()?;
            // Registered before checking, so a notify_waiters() in between is not missed.
            let notified = self.inner.credit.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let issue = {
                let mut st = self.inner.state();
                if let Some(uri) = &st.goaway_received {
                    return Err(SessionError::GoingAway(uri.to_string()));
                }
                st.local.issue()
            };
            match issue {
                Issue::Ready(id) => return Ok(id),
                Issue::BlockedSend(max) => {
                    tracing::debug!(max, "blocked on MAX_REQUEST_ID, sending REQUESTS_BLOCKED");
                    self.send(ControlMessage::RequestsBlocked(RequestsBlocked {
                        max_request_id: max,
                    }))
                    .await?;
                }
                Issue::Blocked => {}
            }
            if !matches!(issue, Issue::Ready(_)) {
                notified.await;
            }
        }
    }

    /// Sends GOAWAY (servers may name a new URI), then closes the session once the peer has
    /// closed or `drain` has passed (GOAWAY_TIMEOUT).
    pub async fn goaway(&self, new_session_uri: &str, drain: Duration) -> Result<(), SessionError> {
        self.inner.state().goaway_sent = true;
        let uri = if self.inner.role == Role::Server {
            new_session_uri
        } else {
            ""
        };
        self.send(ControlMessage::Goaway(Goaway {
            new_session_uri: Blob::from(uri),
        }))
        .await?;
        let me = self.clone();
        tokio::spawn(async move {
            if tokio::time::timeout(drain, me.closed()).await.is_err() {
                me.inner.close(
                    SessionErrorCode::GoawayTimeout.code(),
                    "peer did not close after GOAWAY",
                    false,
                );
            }
        });
        Ok(())
    }
}
