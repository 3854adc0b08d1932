//! The connection abstraction sessions run on: bidirectional and unidirectional streams,
//! datagrams, and closing with a code and a reason. Implemented by raw QUIC, WebTransport and an
//! in-memory pair for tests.

pub mod any;
pub mod memory;
pub mod quic;
pub mod stalling;
pub mod webtransport;

use crate::limits::ConnectionLimits;
use bytes::Bytes;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, OwnedSemaphorePermit};

/// One of a server's session slots, shared by every handle of an accepted connection. It is
/// freed as soon as the connection is closed (by either side, or by the idle timeout); when the
/// last handle is dropped first, the connection is closed (as quinn does for a dropped
/// connection) and the slot freed with it.
#[derive(Clone, Debug, Default)]
pub(crate) struct SessionSlot(Option<Arc<SlotInner>>);

#[derive(Debug)]
struct SlotInner {
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    /// Dropped with the last handle: tells the watcher to close the connection.
    _gone: oneshot::Sender<()>,
}

impl SlotInner {
    fn release(&self) {
        self.permit.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

impl SessionSlot {
    /// A slot holding `permit` until `conn` closes or every handle is dropped.
    pub(crate) fn watch(permit: OwnedSemaphorePermit, conn: wtransport::quinn::Connection) -> Self {
        let (gone_tx, gone_rx) = oneshot::channel::<()>();
        let inner = Arc::new(SlotInner {
            permit: Mutex::new(Some(permit)),
            _gone: gone_tx,
        });
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            tokio::select! {
                _ = conn.closed() => {
                    if let Some(inner) = weak.upgrade() {
                        inner.release();
                    }
                }
                _ = gone_rx => conn.close(0u32.into(), b""),
            }
        });
        SessionSlot(Some(inner))
    }

    /// Frees the slot now.
    pub(crate) fn release(&self) {
        if let Some(inner) = &self.0 {
            inner.release();
        }
    }
}

/// Which transport carries a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// Raw QUIC with ALPN `moq-00` (or `moql` for moq-lite).
    RawQuic,
    /// WebTransport over HTTP/3.
    WebTransport,
    /// An in-process pair, for tests.
    Memory,
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// The peer closed the session with an application code (a draft §13.1.1 code).
    #[error("closed by peer with code 0x{code:x}: {reason}")]
    ClosedByPeer {
        /// The application error code.
        code: u64,
        /// The reason phrase.
        reason: String,
    },
    /// This side closed the session.
    #[error("closed locally with code 0x{code:x}: {reason}")]
    ClosedLocally {
        /// The application error code.
        code: u64,
        /// The reason phrase.
        reason: String,
    },
    /// The transport failed (timeout, reset, TLS, ...).
    #[error("transport error: {0}")]
    Transport(String),
}

/// Why a stream operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The peer reset the stream with this code.
    #[error("stream reset by peer with code 0x{0:x}")]
    Reset(u64),
    /// The peer asked us to stop sending with this code.
    #[error("stream stopped by peer with code 0x{0:x}")]
    Stopped(u64),
    /// The stream was already finished or reset here.
    #[error("stream already closed")]
    Closed,
    /// The whole connection ended.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
}

/// The sending half of a stream.
pub trait SendStream: Send + Sync + Unpin + 'static {
    /// Writes all of `buf`.
    fn write(&mut self, buf: &[u8]) -> impl Future<Output = Result<(), StreamError>> + Send;
    /// Writes a chunk without copying it when the transport allows.
    fn write_chunk(&mut self, buf: Bytes) -> impl Future<Output = Result<(), StreamError>> + Send;
    /// Ends the stream gracefully (FIN).
    fn finish(&mut self) -> Result<(), StreamError>;
    /// Abandons the stream with an error code (RESET_STREAM).
    fn reset(&mut self, code: u64) -> Result<(), StreamError>;
    /// Sets the send priority: higher values are sent first.
    fn set_priority(&self, priority: i32);
    /// Resolves when the peer sends STOP_SENDING, with its code; `None` if the stream ended first.
    fn stopped(&mut self) -> impl Future<Output = Option<u64>> + Send;
    /// The transport's stream ID, where it has one (for qlog).
    fn stream_id(&self) -> Option<u64> {
        None
    }
}

/// The receiving half of a stream.
pub trait RecvStream: Send + Sync + Unpin + 'static {
    /// The next chunk of at most `max` bytes; `None` at FIN.
    fn read_chunk(
        &mut self,
        max: usize,
    ) -> impl Future<Output = Result<Option<Bytes>, StreamError>> + Send;
    /// Asks the peer to stop sending (STOP_SENDING).
    fn stop(&mut self, code: u64);
    /// The transport's stream ID, where it has one (for qlog).
    fn stream_id(&self) -> Option<u64> {
        None
    }
}

/// A connection a MoQ session runs on.
pub trait Connection: Clone + Send + Sync + 'static {
    /// Sending half of a stream.
    type Send: SendStream;
    /// Receiving half of a stream.
    type Recv: RecvStream;

    /// Opens a bidirectional stream.
    fn open_bi(
        &self,
    ) -> impl Future<Output = Result<(Self::Send, Self::Recv), ConnectionError>> + Send;
    /// Accepts the peer's next bidirectional stream.
    fn accept_bi(
        &self,
    ) -> impl Future<Output = Result<(Self::Send, Self::Recv), ConnectionError>> + Send;
    /// Opens a unidirectional stream.
    fn open_uni(&self) -> impl Future<Output = Result<Self::Send, ConnectionError>> + Send;
    /// Accepts the peer's next unidirectional stream.
    fn accept_uni(&self) -> impl Future<Output = Result<Self::Recv, ConnectionError>> + Send;
    /// Sends a datagram (dropped silently by the network if too large or congested).
    fn send_datagram(&self, data: Bytes) -> Result<(), ConnectionError>;
    /// Receives the next datagram.
    fn recv_datagram(&self) -> impl Future<Output = Result<Bytes, ConnectionError>> + Send;
    /// Largest datagram payload the path allows now, if datagrams are supported.
    fn max_datagram_size(&self) -> Option<usize>;
    /// Closes the session with an application code and a reason phrase.
    fn close(&self, code: u64, reason: &str);
    /// Resolves when the connection has ended, with why.
    fn closed(&self) -> impl Future<Output = ConnectionError> + Send;
    /// Which transport this is.
    fn kind(&self) -> TransportKind;
    /// The peer's address, for logs.
    fn peer(&self) -> String;
    /// The receive limits readers of this connection apply.
    fn limits(&self) -> Arc<ConnectionLimits> {
        ConnectionLimits::shared_default()
    }
}
