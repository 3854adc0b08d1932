//! Opening a MoQ session by URL: connect (`https://`, `moqt://`, `moql://`), then SETUP.

use crate::connection::any::AnyConnection;
use crate::endpoint::{Client, EndpointError};
use crate::session::{ClientTarget, IncomingEvent, Session, SessionConfig, SessionError};
use tokio::sync::mpsc;

/// A session over any real or in-memory connection.
pub type AnySession = Session<AnyConnection>;

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The QUIC / WebTransport connection failed.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// SETUP failed or the session closed.
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// Connects to `url` and completes SETUP; raw QUIC URLs send PATH and AUTHORITY (§9.3.2).
pub async fn connect(
    client: &Client,
    url: &str,
    cfg: SessionConfig,
) -> Result<(AnySession, mpsc::Receiver<IncomingEvent>), ConnectError> {
    let connected = client.connect(url).await?;
    let target = connected.setup.map(ClientTarget::from).unwrap_or_default();
    Ok(Session::connect(connected.conn, cfg, target).await?)
}
