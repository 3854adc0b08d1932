//! Raw QUIC connections (ALPN `moq-00` for draft-14, `moql` for moq-lite) over quinn.
//!
//! Stream reset / stop codes and the connection close code are QUIC application error codes,
//! passed through unchanged.

use super::{
    Connection, ConnectionError, RecvStream, SendStream, SessionSlot, StreamError, TransportKind,
};
use crate::limits::ConnectionLimits;
use bytes::Bytes;
use std::sync::{Arc, OnceLock};
use wtransport::quinn;

/// The code and reason this side closed with, remembered so `closed()` can report them.
pub(crate) type LocalClose = Arc<OnceLock<(u64, String)>>;

/// A QUIC varint from a u64, saturating at the largest encodable value.
pub(crate) fn varint(code: u64) -> quinn::VarInt {
    quinn::VarInt::from_u64(code).unwrap_or(quinn::VarInt::MAX)
}

/// Maps a quinn connection error; `decode` translates a peer's application close code.
pub(crate) fn map_conn_error(
    err: &quinn::ConnectionError,
    local: &LocalClose,
    decode: fn(u64) -> u64,
) -> ConnectionError {
    match err {
        quinn::ConnectionError::ApplicationClosed(close) => ConnectionError::ClosedByPeer {
            code: decode(close.error_code.into_inner()),
            reason: String::from_utf8_lossy(&close.reason).into_owned(),
        },
        quinn::ConnectionError::LocallyClosed => {
            let (code, reason) = local.get().cloned().unwrap_or((0, String::new()));
            ConnectionError::ClosedLocally { code, reason }
        }
        quinn::ConnectionError::TimedOut => ConnectionError::Transport("idle timeout".into()),
        other => ConnectionError::Transport(other.to_string()),
    }
}

fn identity(code: u64) -> u64 {
    code
}

/// A raw QUIC connection.
#[derive(Clone, Debug)]
pub struct QuicConnection {
    conn: quinn::Connection,
    local: LocalClose,
    alpn: Arc<str>,
    limits: Arc<ConnectionLimits>,
    slot: SessionSlot,
}

impl QuicConnection {
    /// Wraps an established quinn connection that negotiated `alpn`.
    pub fn new(conn: quinn::Connection, alpn: &str) -> Self {
        QuicConnection {
            conn,
            local: Arc::new(OnceLock::new()),
            alpn: alpn.into(),
            limits: ConnectionLimits::shared_default(),
            slot: SessionSlot::default(),
        }
    }

    /// The same connection with these receive limits (see [`Connection::limits`]).
    pub fn with_limits(mut self, limits: Arc<ConnectionLimits>) -> Self {
        self.limits = limits;
        self
    }

    pub(crate) fn with_slot(mut self, slot: SessionSlot) -> Self {
        self.slot = slot;
        self
    }

    /// The negotiated ALPN protocol (`moq-00` or `moql`).
    pub fn alpn(&self) -> &str {
        &self.alpn
    }

    /// The underlying quinn connection.
    pub fn quinn(&self) -> &quinn::Connection {
        &self.conn
    }

    fn err(&self, e: &quinn::ConnectionError) -> ConnectionError {
        map_conn_error(e, &self.local, identity)
    }

    fn send(&self, s: quinn::SendStream) -> QuicSend {
        QuicSend {
            inner: s,
            local: self.local.clone(),
        }
    }

    fn recv(&self, r: quinn::RecvStream) -> QuicRecv {
        QuicRecv {
            inner: r,
            local: self.local.clone(),
        }
    }
}

impl Connection for QuicConnection {
    type Send = QuicSend;
    type Recv = QuicRecv;

    async fn open_bi(&self) -> Result<(QuicSend, QuicRecv), ConnectionError> {
        let (s, r) = self.conn.open_bi().await.map_err(|e| self.err(&e))?;
        Ok((self.send(s), self.recv(r)))
    }

    async fn accept_bi(&self) -> Result<(QuicSend, QuicRecv), ConnectionError> {
        let (s, r) = self.conn.accept_bi().await.map_err(|e| self.err(&e))?;
        Ok((self.send(s), self.recv(r)))
    }

    async fn open_uni(&self) -> Result<QuicSend, ConnectionError> {
        let s = self.conn.open_uni().await.map_err(|e| self.err(&e))?;
        Ok(self.send(s))
    }

    async fn accept_uni(&self) -> Result<QuicRecv, ConnectionError> {
        let r = self.conn.accept_uni().await.map_err(|e| self.err(&e))?;
        Ok(self.recv(r))
    }

    fn send_datagram(&self, data: Bytes) -> Result<(), ConnectionError> {
        match self.conn.send_datagram(data) {
            Ok(()) => Ok(()),
            Err(quinn::SendDatagramError::TooLarge) => {
                tracing::debug!("datagram larger than the path allows: dropped");
                Ok(())
            }
            Err(quinn::SendDatagramError::ConnectionLost(e)) => Err(self.err(&e)),
            Err(e) => Err(ConnectionError::Transport(e.to_string())),
        }
    }

    async fn recv_datagram(&self) -> Result<Bytes, ConnectionError> {
        self.conn.read_datagram().await.map_err(|e| self.err(&e))
    }

    fn max_datagram_size(&self) -> Option<usize> {
        self.conn.max_datagram_size()
    }

    fn close(&self, code: u64, reason: &str) {
        let _ = self.local.set((code, reason.to_string()));
        self.conn.close(varint(code), reason.as_bytes());
        self.slot.release();
    }

    async fn closed(&self) -> ConnectionError {
        let e = self.conn.closed().await;
        self.err(&e)
    }

    fn kind(&self) -> TransportKind {
        TransportKind::RawQuic
    }

    fn peer(&self) -> String {
        self.conn.remote_address().to_string()
    }

    fn limits(&self) -> Arc<ConnectionLimits> {
        self.limits.clone()
    }
}

/// Maps a quinn write error; `decode` translates the peer's STOP_SENDING code.
pub(crate) fn map_write_error(
    e: quinn::WriteError,
    local: &LocalClose,
    decode: fn(u64) -> u64,
) -> StreamError {
    match e {
        quinn::WriteError::Stopped(code) => StreamError::Stopped(decode(code.into_inner())),
        quinn::WriteError::ConnectionLost(e) => {
            StreamError::Connection(map_conn_error(&e, local, decode))
        }
        quinn::WriteError::ClosedStream => StreamError::Closed,
        quinn::WriteError::ZeroRttRejected => {
            StreamError::Connection(ConnectionError::Transport("0-RTT rejected".into()))
        }
    }
}

/// Maps a quinn read error; `decode` translates the peer's RESET_STREAM code.
pub(crate) fn map_read_error(
    e: quinn::ReadError,
    local: &LocalClose,
    decode: fn(u64) -> u64,
) -> StreamError {
    match e {
        quinn::ReadError::Reset(code) => StreamError::Reset(decode(code.into_inner())),
        quinn::ReadError::ConnectionLost(e) => {
            StreamError::Connection(map_conn_error(&e, local, decode))
        }
        quinn::ReadError::ClosedStream | quinn::ReadError::IllegalOrderedRead => {
            StreamError::Closed
        }
        quinn::ReadError::ZeroRttRejected => {
            StreamError::Connection(ConnectionError::Transport("0-RTT rejected".into()))
        }
    }
}

/// The sending half of a raw QUIC stream.
#[derive(Debug)]
pub struct QuicSend {
    inner: quinn::SendStream,
    local: LocalClose,
}

impl QuicSend {
    /// The underlying quinn stream.
    pub fn quinn(&mut self) -> &mut quinn::SendStream {
        &mut self.inner
    }
}

impl SendStream for QuicSend {
    async fn write(&mut self, buf: &[u8]) -> Result<(), StreamError> {
        self.inner
            .write_all(buf)
            .await
            .map_err(|e| map_write_error(e, &self.local, identity))
    }

    async fn write_chunk(&mut self, buf: Bytes) -> Result<(), StreamError> {
        self.inner
            .write_chunk(buf)
            .await
            .map_err(|e| map_write_error(e, &self.local, identity))
    }

    fn finish(&mut self) -> Result<(), StreamError> {
        self.inner.finish().map_err(|_| StreamError::Closed)
    }

    fn reset(&mut self, code: u64) -> Result<(), StreamError> {
        self.inner
            .reset(varint(code))
            .map_err(|_| StreamError::Closed)
    }

    fn set_priority(&self, priority: i32) {
        let _ = self.inner.set_priority(priority);
    }

    async fn stopped(&mut self) -> Option<u64> {
        match self.inner.stopped().await {
            Ok(Some(code)) => Some(code.into_inner()),
            _ => None,
        }
    }

    fn stream_id(&self) -> Option<u64> {
        Some(self.inner.id().into())
    }
}

/// The receiving half of a raw QUIC stream.
#[derive(Debug)]
pub struct QuicRecv {
    inner: quinn::RecvStream,
    local: LocalClose,
}

impl QuicRecv {
    /// The underlying quinn stream.
    pub fn quinn(&mut self) -> &mut quinn::RecvStream {
        &mut self.inner
    }
}

impl RecvStream for QuicRecv {
    async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, StreamError> {
        match self.inner.read_chunk(max, true).await {
            Ok(chunk) => Ok(chunk.map(|c| c.bytes)),
            Err(e) => Err(map_read_error(e, &self.local, identity)),
        }
    }

    fn stop(&mut self, code: u64) {
        let _ = self.inner.stop(varint(code));
    }

    fn stream_id(&self) -> Option<u64> {
        Some(self.inner.id().into())
    }
}
