//! The relay without sockets, for fuzzing and tests: sessions arrive over in-memory connections
//! and are served by the same code as the endpoint's, and what the relay holds can be counted.

pub use super::registry::RegistryCounts;
use super::{Core, RelayConfig};
use moqlink_transport::connection::memory::MemoryConnection;
use moqlink_transport::endpoint::{Alpn, Incoming};
use std::net::SocketAddr;
use std::sync::Arc;

/// A relay serving in-memory connections.
#[derive(Clone)]
pub struct MemoryRelay {
    core: Arc<Core>,
}

/// What a relay holds at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayCounts {
    /// The registry's routes, tracks and namespace subscribers.
    pub registry: RegistryCounts,
    /// draft-14 sessions kept for shutdown.
    pub sessions: usize,
    /// moq-lite sessions kept for shutdown.
    pub lite_sessions: usize,
}

impl MemoryRelay {
    /// A relay with `config` (its `bind` and `server` fields are unused).
    pub fn new(config: RelayConfig) -> Self {
        MemoryRelay {
            core: Arc::new(Core::new(config)),
        }
    }

    /// Serves the client at the other end of `conn` as if it had connected over raw QUIC with
    /// ALPN `alpn`; returns when its session has ended (or SETUP failed).
    pub async fn serve(&self, conn: MemoryConnection, alpn: Alpn) {
        let incoming = Incoming {
            conn: conn.into(),
            alpn,
            path: None,
            authority: None,
            server_name: None,
            wt_protocols: Vec::new(),
            wt_protocol: None,
            remote: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        self.core.serve(incoming).await;
    }

    /// What the relay holds now; `None` while a session list is locked.
    pub fn counts(&self) -> Option<RelayCounts> {
        Some(RelayCounts {
            registry: self.core.shared.registry.counts(),
            sessions: self.core.sessions.try_lock().ok()?.len(),
            lite_sessions: self.core.lite.try_lock().ok()?.len(),
        })
    }
}
