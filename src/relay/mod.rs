//! The relay: accepts WebTransport and raw QUIC sessions on one UDP port and serves them.
//!
//! This first version completes SETUP with version negotiation and answers every request with
//! the matching *_ERROR (NOT_SUPPORTED); routing, fan-out and the cache come with the relay issue.

use moqlink_model::SessionErrorCode;
use moqlink_transport::endpoint::{Alpn, EndpointError, Incoming, Server};
use moqlink_transport::session::{IncomingEvent, Session, SessionConfig};
use moqlink_transport::tls::ServerIdentity;
use std::net::SocketAddr;
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
}

/// Why the relay stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Binding or serving the endpoint failed.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
}

/// A running relay endpoint.
pub struct Relay {
    server: Server,
    config: RelayConfig,
    sessions: tokio::sync::Mutex<Vec<moqlink_transport::client::AnySession>>,
}

impl Relay {
    /// Binds the UDP port.
    pub fn bind(config: RelayConfig, identity: &ServerIdentity) -> Result<Self, RelayError> {
        let server = Server::bind(config.bind, identity)?;
        Ok(Relay {
            server,
            config,
            sessions: Default::default(),
        })
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
        let me = std::sync::Arc::new(self);
        loop {
            tokio::select! {
                incoming = me.server.accept() => {
                    let Some(incoming) = incoming else { break };
                    let me = me.clone();
                    tokio::spawn(async move { me.serve(incoming).await });
                }
                _ = &mut shutdown => break,
            }
        }
        tracing::info!("shutting down: GOAWAY to every session");
        let sessions: Vec<_> = me.sessions.lock().await.drain(..).collect();
        for s in &sessions {
            if s.close_reason().is_none() {
                let _ = s.goaway("", me.config.drain).await;
            }
        }
        let _ = tokio::time::timeout(me.config.drain, async {
            for s in &sessions {
                s.closed().await;
            }
        })
        .await;
        me.server
            .close(SessionErrorCode::NoError.code(), "relay shutting down");
        Ok(())
    }

    async fn serve(&self, incoming: Incoming) {
        let remote = incoming.remote;
        if incoming.alpn == Alpn::MoqLite {
            tracing::info!(%remote, "moq-lite (ALPN moql) is not served yet");
            moqlink_transport::Connection::close(
                &incoming.conn,
                SessionErrorCode::VersionNegotiationFailed.code(),
                "moq-lite is not supported by this relay yet",
            );
            return;
        }
        let (session, mut events) =
            match Session::accept(incoming.conn, self.config.session.clone()).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::info!(%remote, error = %e, "setup failed");
                    return;
                }
            };
        tracing::info!(%remote, alpn = %incoming.alpn, version = %session.version(), "session established");
        {
            let mut all = self.sessions.lock().await;
            all.retain(|s| s.close_reason().is_none());
            all.push(session.clone());
        }
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(IncomingEvent::Request(req)) => {
                        let what = req.message.message_type().name();
                        let _ = req.responder.not_supported(what).await;
                    }
                    Some(IncomingEvent::Notice(_)) => {}
                    None => break,
                },
                close = session.closed() => {
                    tracing::info!(%remote, %close, "session ended");
                    break;
                }
            }
        }
    }
}
