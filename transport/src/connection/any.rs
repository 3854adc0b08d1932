//! One connection type over every transport, dispatching by enum (no boxing), so sessions and
//! the relay can hold raw QUIC, WebTransport and in-memory peers side by side.

use super::memory::{MemoryConnection, MemoryRecv, MemorySend};
use super::quic::{QuicConnection, QuicRecv, QuicSend};
use super::webtransport::{WebTransportConnection, WebTransportRecv, WebTransportSend};
use super::{Connection, ConnectionError, RecvStream, SendStream, StreamError, TransportKind};
use bytes::Bytes;

/// A connection over any of the supported transports.
#[derive(Clone)]
pub enum AnyConnection {
    /// Raw QUIC (`moq-00` or `moql`).
    Quic(QuicConnection),
    /// WebTransport over HTTP/3.
    WebTransport(WebTransportConnection),
    /// The in-memory test transport.
    Memory(MemoryConnection),
}

/// The sending half of a stream on an [`AnyConnection`].
pub enum AnySend {
    /// Raw QUIC.
    Quic(QuicSend),
    /// WebTransport.
    WebTransport(WebTransportSend),
    /// In-memory.
    Memory(MemorySend),
}

/// The receiving half of a stream on an [`AnyConnection`].
pub enum AnyRecv {
    /// Raw QUIC.
    Quic(QuicRecv),
    /// WebTransport.
    WebTransport(WebTransportRecv),
    /// In-memory.
    Memory(MemoryRecv),
}

impl From<QuicConnection> for AnyConnection {
    fn from(c: QuicConnection) -> Self {
        AnyConnection::Quic(c)
    }
}

impl From<WebTransportConnection> for AnyConnection {
    fn from(c: WebTransportConnection) -> Self {
        AnyConnection::WebTransport(c)
    }
}

impl From<MemoryConnection> for AnyConnection {
    fn from(c: MemoryConnection) -> Self {
        AnyConnection::Memory(c)
    }
}

impl std::fmt::Debug for AnyConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnyConnection({:?}, {})", self.kind(), self.peer())
    }
}

impl AnyConnection {
    /// Attaches a server's connection limits and the session slot `permit` (memory
    /// connections take only the limits).
    pub(crate) fn with_server_parts(
        self,
        limits: std::sync::Arc<crate::limits::ConnectionLimits>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Self {
        match self {
            AnyConnection::Quic(c) => {
                let slot = super::SessionSlot::watch(permit, c.quinn().clone());
                c.with_limits(limits).with_slot(slot).into()
            }
            AnyConnection::WebTransport(c) => {
                let slot = super::SessionSlot::watch(permit, c.inner().quic_connection().clone());
                c.with_limits(limits).with_slot(slot).into()
            }
            AnyConnection::Memory(c) => c.with_limits(limits).into(),
        }
    }

    /// The negotiated ALPN protocol: `h3`, `moq-00`, `moql`, or `memory`.
    pub fn alpn(&self) -> &str {
        match self {
            AnyConnection::Quic(c) => c.alpn(),
            AnyConnection::WebTransport(_) => "h3",
            AnyConnection::Memory(_) => "memory",
        }
    }
}

fn bi<S, R>(
    pair: (S, R),
    fs: impl FnOnce(S) -> AnySend,
    fr: impl FnOnce(R) -> AnyRecv,
) -> (AnySend, AnyRecv) {
    (fs(pair.0), fr(pair.1))
}

impl Connection for AnyConnection {
    type Send = AnySend;
    type Recv = AnyRecv;

    async fn open_bi(&self) -> Result<(AnySend, AnyRecv), ConnectionError> {
        Ok(match self {
            AnyConnection::Quic(c) => bi(c.open_bi().await?, AnySend::Quic, AnyRecv::Quic),
            AnyConnection::WebTransport(c) => bi(
                c.open_bi().await?,
                AnySend::WebTransport,
                AnyRecv::WebTransport,
            ),
            AnyConnection::Memory(c) => bi(c.open_bi().await?, AnySend::Memory, AnyRecv::Memory),
        })
    }

    async fn accept_bi(&self) -> Result<(AnySend, AnyRecv), ConnectionError> {
        Ok(match self {
            AnyConnection::Quic(c) => bi(c.accept_bi().await?, AnySend::Quic, AnyRecv::Quic),
            AnyConnection::WebTransport(c) => bi(
                c.accept_bi().await?,
                AnySend::WebTransport,
                AnyRecv::WebTransport,
            ),
            AnyConnection::Memory(c) => bi(c.accept_bi().await?, AnySend::Memory, AnyRecv::Memory),
        })
    }

    async fn open_uni(&self) -> Result<AnySend, ConnectionError> {
        Ok(match self {
            AnyConnection::Quic(c) => AnySend::Quic(c.open_uni().await?),
            AnyConnection::WebTransport(c) => AnySend::WebTransport(c.open_uni().await?),
            AnyConnection::Memory(c) => AnySend::Memory(c.open_uni().await?),
        })
    }

    async fn accept_uni(&self) -> Result<AnyRecv, ConnectionError> {
        Ok(match self {
            AnyConnection::Quic(c) => AnyRecv::Quic(c.accept_uni().await?),
            AnyConnection::WebTransport(c) => AnyRecv::WebTransport(c.accept_uni().await?),
            AnyConnection::Memory(c) => AnyRecv::Memory(c.accept_uni().await?),
        })
    }

    fn send_datagram(&self, data: Bytes) -> Result<(), ConnectionError> {
        match self {
            AnyConnection::Quic(c) => c.send_datagram(data),
            AnyConnection::WebTransport(c) => c.send_datagram(data),
            AnyConnection::Memory(c) => c.send_datagram(data),
        }
    }

    async fn recv_datagram(&self) -> Result<Bytes, ConnectionError> {
        match self {
            AnyConnection::Quic(c) => c.recv_datagram().await,
            AnyConnection::WebTransport(c) => c.recv_datagram().await,
            AnyConnection::Memory(c) => c.recv_datagram().await,
        }
    }

    fn max_datagram_size(&self) -> Option<usize> {
        match self {
            AnyConnection::Quic(c) => c.max_datagram_size(),
            AnyConnection::WebTransport(c) => c.max_datagram_size(),
            AnyConnection::Memory(c) => c.max_datagram_size(),
        }
    }

    fn close(&self, code: u64, reason: &str) {
        match self {
            AnyConnection::Quic(c) => c.close(code, reason),
            AnyConnection::WebTransport(c) => c.close(code, reason),
            AnyConnection::Memory(c) => c.close(code, reason),
        }
    }

    async fn closed(&self) -> ConnectionError {
        match self {
            AnyConnection::Quic(c) => c.closed().await,
            AnyConnection::WebTransport(c) => c.closed().await,
            AnyConnection::Memory(c) => c.closed().await,
        }
    }

    fn kind(&self) -> TransportKind {
        match self {
            AnyConnection::Quic(c) => c.kind(),
            AnyConnection::WebTransport(c) => c.kind(),
            AnyConnection::Memory(c) => c.kind(),
        }
    }

    fn peer(&self) -> String {
        match self {
            AnyConnection::Quic(c) => c.peer(),
            AnyConnection::WebTransport(c) => c.peer(),
            AnyConnection::Memory(c) => c.peer(),
        }
    }

    fn limits(&self) -> std::sync::Arc<crate::limits::ConnectionLimits> {
        match self {
            AnyConnection::Quic(c) => c.limits(),
            AnyConnection::WebTransport(c) => c.limits(),
            AnyConnection::Memory(c) => c.limits(),
        }
    }
}

impl SendStream for AnySend {
    async fn write(&mut self, buf: &[u8]) -> Result<(), StreamError> {
        match self {
            AnySend::Quic(s) => s.write(buf).await,
            AnySend::WebTransport(s) => s.write(buf).await,
            AnySend::Memory(s) => s.write(buf).await,
        }
    }

    async fn write_chunk(&mut self, buf: Bytes) -> Result<(), StreamError> {
        match self {
            AnySend::Quic(s) => s.write_chunk(buf).await,
            AnySend::WebTransport(s) => s.write_chunk(buf).await,
            AnySend::Memory(s) => s.write_chunk(buf).await,
        }
    }

    fn finish(&mut self) -> Result<(), StreamError> {
        match self {
            AnySend::Quic(s) => s.finish(),
            AnySend::WebTransport(s) => s.finish(),
            AnySend::Memory(s) => s.finish(),
        }
    }

    fn reset(&mut self, code: u64) -> Result<(), StreamError> {
        match self {
            AnySend::Quic(s) => s.reset(code),
            AnySend::WebTransport(s) => s.reset(code),
            AnySend::Memory(s) => s.reset(code),
        }
    }

    fn set_priority(&self, priority: i32) {
        match self {
            AnySend::Quic(s) => s.set_priority(priority),
            AnySend::WebTransport(s) => s.set_priority(priority),
            AnySend::Memory(s) => s.set_priority(priority),
        }
    }

    async fn stopped(&mut self) -> Option<u64> {
        match self {
            AnySend::Quic(s) => s.stopped().await,
            AnySend::WebTransport(s) => s.stopped().await,
            AnySend::Memory(s) => s.stopped().await,
        }
    }

    fn stream_id(&self) -> Option<u64> {
        match self {
            AnySend::Quic(s) => s.stream_id(),
            AnySend::WebTransport(s) => s.stream_id(),
            AnySend::Memory(s) => s.stream_id(),
        }
    }
}

impl RecvStream for AnyRecv {
    async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, StreamError> {
        match self {
            AnyRecv::Quic(r) => r.read_chunk(max).await,
            AnyRecv::WebTransport(r) => r.read_chunk(max).await,
            AnyRecv::Memory(r) => r.read_chunk(max).await,
        }
    }

    fn stop(&mut self, code: u64) {
        match self {
            AnyRecv::Quic(r) => r.stop(code),
            AnyRecv::WebTransport(r) => r.stop(code),
            AnyRecv::Memory(r) => r.stop(code),
        }
    }

    fn stream_id(&self) -> Option<u64> {
        match self {
            AnyRecv::Quic(r) => r.stream_id(),
            AnyRecv::WebTransport(r) => r.stream_id(),
            AnyRecv::Memory(r) => r.stream_id(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_through_any() {
        let (a, b) = super::super::memory::pair();
        let (a, b) = (AnyConnection::from(a), AnyConnection::from(b));
        assert_eq!(a.kind(), TransportKind::Memory);
        assert_eq!(a.alpn(), "memory");
        let (mut s, _r) = a.open_bi().await.unwrap();
        s.write(b"hi").await.unwrap();
        s.finish().unwrap();
        let (_s2, mut r2) = b.accept_bi().await.unwrap();
        assert_eq!(&r2.read_chunk(10).await.unwrap().unwrap()[..], b"hi");
        assert_eq!(r2.read_chunk(10).await.unwrap(), None);
        a.close(7, "bye");
        assert_eq!(
            b.closed().await,
            ConnectionError::ClosedByPeer {
                code: 7,
                reason: "bye".into()
            }
        );
    }
}
