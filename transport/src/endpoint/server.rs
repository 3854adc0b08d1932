//! The server endpoint: one UDP socket accepting WebTransport and raw QUIC sessions, with caps on
//! handshakes in progress and on established sessions ([`ServerLimits`]).

use super::{
    parse_sf_string_list, Alpn, EndpointError, ALPN_H3, ALPN_MOQ, ALPN_MOQ_LITE, WT_PROTOCOLS,
};
use crate::connection::any::AnyConnection;
use crate::connection::quic::QuicConnection;
use crate::connection::webtransport::WebTransportConnection;
use crate::limits::{ConnectionLimits, ServerLimits, SESSION_LIMIT_CODE, SESSION_LIMIT_REASON};
use crate::tls::{Fingerprint, ServerIdentity, TlsError};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Mutex, OwnedSemaphorePermit, Semaphore};
use wtransport::quinn;

/// A newly accepted session, ready for the MoQ layer.
#[derive(Debug)]
pub struct Incoming {
    /// The connection.
    pub conn: AnyConnection,
    /// The negotiated ALPN.
    pub alpn: Alpn,
    /// The WebTransport request `:path` (with query); `None` on raw QUIC, where the PATH setup
    /// parameter carries it.
    pub path: Option<String>,
    /// The WebTransport request `:authority`; `None` on raw QUIC (AUTHORITY setup parameter).
    pub authority: Option<String>,
    /// The TLS server name (SNI) the client asked for, if any.
    pub server_name: Option<String>,
    /// Subprotocols the client offered in `WT-Available-Protocols` (empty if none / raw QUIC).
    pub wt_protocols: Vec<String>,
    /// The subprotocol this server selected in `WT-Protocol`, if any.
    pub wt_protocol: Option<String>,
    /// The client's UDP address.
    pub remote: SocketAddr,
}

/// A server endpoint: one UDP socket accepting WebTransport and raw QUIC sessions.
pub struct Server {
    endpoint: quinn::Endpoint,
    incoming: Mutex<mpsc::Receiver<Incoming>>,
    accept_task: tokio::task::JoinHandle<()>,
    fingerprint: Fingerprint,
    limits: ServerLimits,
    sessions: Arc<Semaphore>,
    handshakes: Arc<Semaphore>,
    refusals: Arc<crate::stats::ServerRefusals>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.endpoint.local_addr().ok())
            .field("fingerprint", &self.fingerprint)
            .field("limits", &self.limits)
            .finish()
    }
}

/// What the accept loop shares with each handshake task.
struct Shared {
    tx: mpsc::Sender<Incoming>,
    limits: ServerLimits,
    connection: Arc<ConnectionLimits>,
    sessions: Arc<Semaphore>,
    handshakes: Arc<Semaphore>,
    refusals: Arc<crate::stats::ServerRefusals>,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) with the default [`ServerLimits`] and starts
    /// accepting; needs a tokio runtime.
    pub fn bind(addr: SocketAddr, identity: &ServerIdentity) -> Result<Self, EndpointError> {
        Self::bind_with(addr, identity, ServerLimits::default())
    }

    /// Binds `addr` with these limits and starts accepting; needs a tokio runtime.
    pub fn bind_with(
        addr: SocketAddr,
        identity: &ServerIdentity,
        limits: ServerLimits,
    ) -> Result<Self, EndpointError> {
        let alpns = [ALPN_H3, ALPN_MOQ, ALPN_MOQ_LITE].map(str::as_bytes);
        let crypto =
            quinn::crypto::rustls::QuicServerConfig::try_from(identity.server_config(&alpns)?)
                .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        // One transport config for every ALPN: WebTransport sessions get the same limits.
        config.transport_config(Arc::new(limits.connection.transport_config()));
        let endpoint = quinn::Endpoint::server(config, addr)?;
        let (tx, rx) = mpsc::channel(64);
        let sessions = Arc::new(Semaphore::new(limits.max_sessions));
        let handshakes = Arc::new(Semaphore::new(limits.max_handshakes));
        let refusals = Arc::new(crate::stats::ServerRefusals::default());
        let shared = Arc::new(Shared {
            tx,
            limits: limits.clone(),
            connection: Arc::new(limits.connection.clone()),
            sessions: sessions.clone(),
            handshakes: handshakes.clone(),
            refusals: refusals.clone(),
        });
        let accept_task = tokio::spawn(accept_loop(endpoint.clone(), shared));
        tracing::info!(addr = %endpoint.local_addr()?, fingerprint = %identity.fingerprint(),
            "listening for WebTransport (h3) and raw QUIC (moq-00, moql)");
        Ok(Server {
            endpoint,
            incoming: Mutex::new(rx),
            accept_task,
            fingerprint: identity.fingerprint(),
            limits,
            sessions,
            handshakes,
            refusals,
        })
    }

    /// Connections refused at this server's limits so far.
    pub fn refusals(&self) -> Arc<crate::stats::ServerRefusals> {
        self.refusals.clone()
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, EndpointError> {
        Ok(self.endpoint.local_addr()?)
    }

    /// The SHA-256 fingerprint of the served leaf certificate.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The limits this server applies.
    pub fn limits(&self) -> &ServerLimits {
        &self.limits
    }

    /// Established sessions holding a slot now (freed when the connection closes or every handle
    /// is dropped).
    pub fn sessions(&self) -> usize {
        self.limits
            .max_sessions
            .saturating_sub(self.sessions.available_permits())
    }

    /// Handshakes in progress now.
    pub fn handshakes(&self) -> usize {
        self.limits
            .max_handshakes
            .saturating_sub(self.handshakes.available_permits())
    }

    /// The next established session; `None` once the server is closed.
    pub async fn accept(&self) -> Option<Incoming> {
        self.incoming.lock().await.recv().await
    }

    /// Stops accepting and closes every connection with this application code. Does not wait
    /// for any peer: CONNECTION_CLOSE is queued and the call returns.
    pub fn close(&self, code: u64, reason: &str) {
        self.accept_task.abort();
        self.endpoint
            .close(crate::connection::quic::varint(code), reason.as_bytes());
    }

    /// Closes like [`Server::close`], then waits at most `drain` for the connections to finish
    /// closing; true if they all did. Bounded whatever the peers do.
    pub async fn shutdown(&self, code: u64, reason: &str, drain: Duration) -> bool {
        self.close(code, reason);
        tokio::time::timeout(drain, self.endpoint.wait_idle())
            .await
            .is_ok()
    }

    /// Waits until every connection has been cleanly shut down (QUIC's closing period, about
    /// three round-trip timeouts, whatever the peer does; see [`Server::shutdown`] for a bound).
    pub async fn wait_idle(&self) {
        self.endpoint.wait_idle().await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

async fn accept_loop(endpoint: quinn::Endpoint, shared: Arc<Shared>) {
    while let Some(incoming) = endpoint.accept().await {
        let remote = incoming.remote_address();
        let Ok(permit) = shared.handshakes.clone().try_acquire_owned() else {
            tracing::debug!(%remote, max = shared.limits.max_handshakes,
                "too many handshakes in progress: connection refused");
            shared.refusals.handshake_refused();
            incoming.refuse();
            continue;
        };
        let shared = shared.clone();
        // Each handshake runs on its own task so a slow client cannot hold up the others.
        tokio::spawn(async move {
            let timeout = shared.limits.handshake_timeout;
            let result = tokio::time::timeout(timeout, handshake(incoming, &shared)).await;
            drop(permit);
            match result {
                Ok(Ok((mut session, slot))) => {
                    session.conn = session
                        .conn
                        .with_server_parts(shared.connection.clone(), slot);
                    tracing::debug!(%remote, alpn = %session.alpn,
                        path = ?session.path.as_deref().map(|p| p.split('?').next().unwrap_or(p)),
                        "session accepted");
                    // If the server is gone the session is dropped, which closes it.
                    let _ = shared.tx.send(session).await;
                }
                Ok(Err(e)) => tracing::debug!(%remote, error = %e, "incoming session failed"),
                Err(_) => {
                    shared.refusals.handshake_timed_out();
                    tracing::debug!(%remote, "incoming session timed out");
                }
            }
        });
    }
}

/// Takes a session slot for a connection whose handshake completed.
fn session_slot(shared: &Shared) -> Option<OwnedSemaphorePermit> {
    let slot = shared.sessions.clone().try_acquire_owned().ok();
    if slot.is_none() {
        shared.refusals.session_refused();
        tracing::warn!("too many sessions: new session refused");
    }
    slot
}

/// Completes the QUIC (and WebTransport) handshake and takes a session slot: with none free, a
/// WebTransport request is answered 429 and a raw QUIC connection closed with
/// [`SESSION_LIMIT_CODE`] and [`SESSION_LIMIT_REASON`].
async fn handshake(
    incoming: quinn::Incoming,
    shared: &Shared,
) -> Result<(Incoming, OwnedSemaphorePermit), String> {
    let remote = incoming.remote_address();
    let mut connecting = incoming.accept().map_err(|e| e.to_string())?;
    let data = connecting
        .handshake_data()
        .await
        .map_err(|e| e.to_string())?;
    let data = data
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .map_err(|_| "unexpected handshake data type".to_string())?;
    let server_name = data.server_name.clone();
    let alpn = data.protocol.as_deref().and_then(Alpn::from_bytes);
    match alpn {
        Some(Alpn::H3) => {
            let request =
                wtransport::endpoint::IncomingSessionFuture::with_quic_connecting(connecting)
                    .await
                    .map_err(|e| e.to_string())?;
            let Some(slot) = session_slot(shared) else {
                request.too_many_requests().await;
                return Err(SESSION_LIMIT_REASON.into());
            };
            let path = request.path().to_string();
            let authority = request.authority().to_string();
            let offered = request
                .headers()
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("wt-available-protocols"))
                .map(|(_, v)| parse_sf_string_list(v))
                .unwrap_or_default();
            let selected = offered
                .iter()
                .find(|p| WT_PROTOCOLS.contains(&p.as_str()))
                .cloned();
            let conn = match &selected {
                Some(p) => request
                    .accept_with_headers([("wt-protocol", format!("\"{p}\""))])
                    .await
                    .map_err(|e| e.to_string())?,
                None => request.accept().await.map_err(|e| e.to_string())?,
            };
            let session = Incoming {
                conn: WebTransportConnection::new(conn).into(),
                alpn: Alpn::H3,
                path: Some(path),
                authority: Some(authority),
                server_name,
                wt_protocols: offered,
                wt_protocol: selected,
                remote,
            };
            Ok((session, slot))
        }
        Some(alpn) => {
            let conn = connecting.await.map_err(|e| e.to_string())?;
            let Some(slot) = session_slot(shared) else {
                conn.close(
                    crate::connection::quic::varint(SESSION_LIMIT_CODE),
                    SESSION_LIMIT_REASON.as_bytes(),
                );
                return Err(SESSION_LIMIT_REASON.into());
            };
            let session = Incoming {
                conn: QuicConnection::new(conn, alpn.as_str()).into(),
                alpn,
                path: None,
                authority: None,
                server_name,
                wt_protocols: Vec::new(),
                wt_protocol: None,
                remote,
            };
            Ok((session, slot))
        }
        None => {
            // The client offered no ALPN (with an unknown one rustls already refused).
            if let Ok(conn) = connecting.await {
                conn.close(0u32.into(), b"no application protocol");
            }
            Err("client offered no ALPN".into())
        }
    }
}
