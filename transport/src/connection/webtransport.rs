//! WebTransport (over HTTP/3) sessions via wtransport.
//!
//! Error codes: WebTransport application error codes are 32-bit and travel in RESET_STREAM,
//! STOP_SENDING and CONNECTION_CLOSE frames mapped into the HTTP/3 range starting at
//! `0x52e4a40fa8db` (draft-ietf-webtrans-http3 §4.4). wtransport 0.7 passes codes through
//! unmapped, so this module applies the mapping itself ([`code_to_http3`] on the way out,
//! [`code_from_http3`] on the way in; codes outside the range are reported as they arrived, which
//! keeps unmapped peers working). Codes above `u32::MAX` saturate.
//!
//! Closing: wtransport 0.7 cannot send a CLOSE_WEBTRANSPORT_SESSION capsule; `close` sends a QUIC
//! CONNECTION_CLOSE whose application code is the mapped code and whose reason is the reason
//! phrase (what web-transport-quinn does as its fallback too). A capsule *received* from the peer
//! is surfaced by `closed()` as `ClosedByPeer` with the capsule's code and reason.

use super::quic::{map_conn_error, map_read_error, map_write_error, varint, LocalClose};
use super::{
    Connection, ConnectionError, RecvStream, SendStream, SessionSlot, StreamError, TransportKind,
};
use crate::limits::ConnectionLimits;
use bytes::Bytes;
use std::sync::{Arc, OnceLock};
use wtransport::error::{
    ConnectionError as WtConnError, SendDatagramError, StreamOpeningError, StreamWriteError,
};
use wtransport::quinn;

/// First HTTP/3 error code reserved for WebTransport application error codes.
pub const WT_CODE_FIRST: u64 = 0x52e4a40fa8db;
/// Last HTTP/3 error code reserved for WebTransport application error codes.
pub const WT_CODE_LAST: u64 = 0x52e5ac983162;

/// Maps a WebTransport application error code (saturated to 32 bits) to its HTTP/3 code.
pub fn code_to_http3(code: u64) -> u64 {
    let n = code.min(u64::from(u32::MAX));
    WT_CODE_FIRST + n + n / 0x1e
}

/// Maps an HTTP/3 code back to the WebTransport application error code; codes outside the
/// WebTransport range are returned unchanged.
pub fn code_from_http3(code: u64) -> u64 {
    if !(WT_CODE_FIRST..=WT_CODE_LAST).contains(&code) {
        return code;
    }
    let shifted = code - WT_CODE_FIRST;
    shifted - shifted / 0x1f
}

/// A WebTransport session.
#[derive(Clone, Debug)]
pub struct WebTransportConnection {
    conn: wtransport::Connection,
    local: LocalClose,
    limits: Arc<ConnectionLimits>,
    slot: SessionSlot,
}

impl WebTransportConnection {
    /// Wraps an established wtransport session.
    pub fn new(conn: wtransport::Connection) -> Self {
        WebTransportConnection {
            conn,
            local: Arc::new(OnceLock::new()),
            limits: ConnectionLimits::shared_default(),
            slot: SessionSlot::default(),
        }
    }

    /// The same session with these receive limits (see [`Connection::limits`]).
    pub fn with_limits(mut self, limits: Arc<ConnectionLimits>) -> Self {
        self.limits = limits;
        self
    }

    pub(crate) fn with_slot(mut self, slot: SessionSlot) -> Self {
        self.slot = slot;
        self
    }

    /// The underlying wtransport session.
    pub fn inner(&self) -> &wtransport::Connection {
        &self.conn
    }

    fn err(&self, e: &WtConnError) -> ConnectionError {
        match e {
            // Either a CLOSE_WEBTRANSPORT_SESSION capsule (raw 32-bit code) or a CONNECTION_CLOSE
            // (mapped code); the capsule codes lie below the mapped range, so decoding is safe.
            WtConnError::ApplicationClosed(close) => ConnectionError::ClosedByPeer {
                code: code_from_http3(close.code().into_inner()),
                reason: String::from_utf8_lossy(close.reason()).into_owned(),
            },
            WtConnError::LocallyClosed => {
                let (code, reason) = self.local.get().cloned().unwrap_or((0, String::new()));
                ConnectionError::ClosedLocally { code, reason }
            }
            WtConnError::TimedOut => ConnectionError::Transport("idle timeout".into()),
            other => ConnectionError::Transport(other.to_string()),
        }
    }

    /// The error for a call that failed because the connection is gone.
    fn gone(&self) -> ConnectionError {
        match self.conn.quic_connection().close_reason() {
            Some(e) => map_conn_error(&e, &self.local, code_from_http3),
            None => ConnectionError::Transport("WebTransport session not connected".into()),
        }
    }

    fn opening(&self, e: StreamOpeningError) -> ConnectionError {
        match e {
            StreamOpeningError::NotConnected => self.gone(),
            StreamOpeningError::Refused => {
                ConnectionError::Transport("peer refused the stream".into())
            }
        }
    }

    fn send(&self, s: wtransport::SendStream) -> WebTransportSend {
        WebTransportSend {
            inner: s,
            local: self.local.clone(),
        }
    }

    fn recv(&self, r: wtransport::RecvStream) -> WebTransportRecv {
        WebTransportRecv {
            inner: r,
            local: self.local.clone(),
        }
    }
}

impl Connection for WebTransportConnection {
    type Send = WebTransportSend;
    type Recv = WebTransportRecv;

    async fn open_bi(&self) -> Result<(WebTransportSend, WebTransportRecv), ConnectionError> {
        let opening = self.conn.open_bi().await.map_err(|e| self.err(&e))?;
        let (s, r) = opening.await.map_err(|e| self.opening(e))?;
        Ok((self.send(s), self.recv(r)))
    }

    async fn accept_bi(&self) -> Result<(WebTransportSend, WebTransportRecv), ConnectionError> {
        let (s, r) = self.conn.accept_bi().await.map_err(|e| self.err(&e))?;
        Ok((self.send(s), self.recv(r)))
    }

    async fn open_uni(&self) -> Result<WebTransportSend, ConnectionError> {
        let opening = self.conn.open_uni().await.map_err(|e| self.err(&e))?;
        let s = opening.await.map_err(|e| self.opening(e))?;
        Ok(self.send(s))
    }

    async fn accept_uni(&self) -> Result<WebTransportRecv, ConnectionError> {
        let r = self.conn.accept_uni().await.map_err(|e| self.err(&e))?;
        Ok(self.recv(r))
    }

    fn send_datagram(&self, data: Bytes) -> Result<(), ConnectionError> {
        match self.conn.send_datagram(&data) {
            Ok(()) => Ok(()),
            Err(SendDatagramError::TooLarge) => {
                tracing::debug!("datagram larger than the path allows: dropped");
                Ok(())
            }
            Err(SendDatagramError::NotConnected) => Err(self.gone()),
            Err(SendDatagramError::UnsupportedByPeer) => Err(ConnectionError::Transport(
                "peer does not support datagrams".into(),
            )),
        }
    }

    async fn recv_datagram(&self) -> Result<Bytes, ConnectionError> {
        let dgram = self
            .conn
            .receive_datagram()
            .await
            .map_err(|e| self.err(&e))?;
        Ok(dgram.payload())
    }

    fn max_datagram_size(&self) -> Option<usize> {
        self.conn.max_datagram_size()
    }

    fn close(&self, code: u64, reason: &str) {
        let _ = self.local.set((code, reason.to_string()));
        self.conn
            .quic_connection()
            .close(varint(code_to_http3(code)), reason.as_bytes());
        self.slot.release();
    }

    async fn closed(&self) -> ConnectionError {
        let e = self.conn.quic_connection().closed().await;
        if matches!(e, quinn::ConnectionError::LocallyClosed) && self.local.get().is_none() {
            // wtransport's driver closed the QUIC connection: the peer sent
            // CLOSE_WEBTRANSPORT_SESSION (or broke HTTP/3). The driver's verdict comes out of
            // any driver call once its queues are drained.
            for _ in 0..8 {
                if let Err(e) = self.conn.receive_datagram().await {
                    return self.err(&e);
                }
            }
        }
        map_conn_error(&e, &self.local, code_from_http3)
    }

    fn kind(&self) -> TransportKind {
        TransportKind::WebTransport
    }

    fn peer(&self) -> String {
        self.conn.remote_address().to_string()
    }

    fn limits(&self) -> Arc<ConnectionLimits> {
        self.limits.clone()
    }
}

/// The sending half of a WebTransport stream.
#[derive(Debug)]
pub struct WebTransportSend {
    inner: wtransport::SendStream,
    local: LocalClose,
}

impl WebTransportSend {
    /// The underlying wtransport stream.
    pub fn inner(&mut self) -> &mut wtransport::SendStream {
        &mut self.inner
    }
}

impl SendStream for WebTransportSend {
    async fn write(&mut self, buf: &[u8]) -> Result<(), StreamError> {
        self.inner
            .quic_stream_mut()
            .write_all(buf)
            .await
            .map_err(|e| map_write_error(e, &self.local, code_from_http3))
    }

    async fn write_chunk(&mut self, buf: Bytes) -> Result<(), StreamError> {
        self.inner
            .quic_stream_mut()
            .write_chunk(buf)
            .await
            .map_err(|e| map_write_error(e, &self.local, code_from_http3))
    }

    fn finish(&mut self) -> Result<(), StreamError> {
        self.inner
            .quic_stream_mut()
            .finish()
            .map_err(|_| StreamError::Closed)
    }

    fn reset(&mut self, code: u64) -> Result<(), StreamError> {
        let mapped = wtransport::VarInt::try_from_u64(code_to_http3(code))
            .unwrap_or(wtransport::VarInt::MAX);
        self.inner.reset(mapped).map_err(|_| StreamError::Closed)
    }

    fn set_priority(&self, priority: i32) {
        self.inner.set_priority(priority);
    }

    async fn stopped(&mut self) -> Option<u64> {
        match self.inner.stopped().await {
            StreamWriteError::Stopped(code) => Some(code_from_http3(code.into_inner())),
            _ => None,
        }
    }

    fn stream_id(&self) -> Option<u64> {
        Some(self.inner.id().into_u64())
    }
}

/// The receiving half of a WebTransport stream.
#[derive(Debug)]
pub struct WebTransportRecv {
    inner: wtransport::RecvStream,
    local: LocalClose,
}

impl WebTransportRecv {
    /// The underlying wtransport stream.
    pub fn inner(&mut self) -> &mut wtransport::RecvStream {
        &mut self.inner
    }
}

impl RecvStream for WebTransportRecv {
    async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, StreamError> {
        match self.inner.quic_stream_mut().read_chunk(max, true).await {
            Ok(chunk) => Ok(chunk.map(|c| c.bytes)),
            Err(e) => Err(map_read_error(e, &self.local, code_from_http3)),
        }
    }

    fn stop(&mut self, code: u64) {
        let _ = self
            .inner
            .quic_stream_mut()
            .stop(varint(code_to_http3(code)));
    }

    fn stream_id(&self) -> Option<u64> {
        Some(self.inner.id().into_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http3_code_mapping_round_trips_and_skips_reserved() {
        for n in (0u64..200).chain([0xffff, 0xdead_beef, u64::from(u32::MAX)]) {
            let h = code_to_http3(n);
            assert!((WT_CODE_FIRST..=WT_CODE_LAST).contains(&h));
            // Reserved (GREASE) code points 0x1f * N + 0x21 are never produced.
            assert_ne!(
                (h - 0x21) % 0x1f,
                0,
                "code {n} mapped onto a reserved value"
            );
            assert_eq!(code_from_http3(h), n);
        }
        assert_eq!(code_to_http3(u64::from(u32::MAX)), WT_CODE_LAST);
        assert_eq!(code_to_http3(u64::MAX), WT_CODE_LAST);
        assert_eq!(code_from_http3(5), 5);
        assert_eq!(code_from_http3(0x100), 0x100);
    }
}
