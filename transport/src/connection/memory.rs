//! An in-process connection pair with QUIC-like streams, for testing sessions without sockets.

use super::{Connection, ConnectionError, RecvStream, SendStream, StreamError, TransportKind};
use crate::limits::ConnectionLimits;
use bytes::Bytes;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, watch, Mutex};

/// Chunks a stream may have in flight before the writer waits (flow control).
const STREAM_WINDOW: usize = 64;
/// Datagrams queued before new ones are dropped.
const DATAGRAM_QUEUE: usize = 256;

enum Frame {
    Data(Bytes),
    Fin,
    Reset(u64),
}

#[derive(Clone, Debug)]
struct CloseInfo {
    by: u8,
    code: u64,
    reason: String,
}

struct Queues {
    bi: Mutex<mpsc::UnboundedReceiver<(MemorySend, MemoryRecv)>>,
    uni: Mutex<mpsc::UnboundedReceiver<MemoryRecv>>,
    dgram: Mutex<mpsc::Receiver<Bytes>>,
}

struct Outlets {
    bi: mpsc::UnboundedSender<(MemorySend, MemoryRecv)>,
    uni: mpsc::UnboundedSender<MemoryRecv>,
    dgram: mpsc::Sender<Bytes>,
}

/// One end of an in-memory connection.
#[derive(Clone)]
pub struct MemoryConnection {
    id: u8,
    inbox: Arc<Queues>,
    to_peer: Arc<Outlets>,
    closed: Arc<watch::Sender<Option<CloseInfo>>>,
    limits: Arc<ConnectionLimits>,
    /// Bidirectional and unidirectional streams this end opened, for QUIC-style stream IDs.
    opened: Arc<[AtomicU64; 2]>,
}

/// Creates two connected ends: what one opens, the other accepts.
pub fn pair() -> (MemoryConnection, MemoryConnection) {
    let (bi_a, bi_a_rx) = mpsc::unbounded_channel();
    let (bi_b, bi_b_rx) = mpsc::unbounded_channel();
    let (uni_a, uni_a_rx) = mpsc::unbounded_channel();
    let (uni_b, uni_b_rx) = mpsc::unbounded_channel();
    let (dg_a, dg_a_rx) = mpsc::channel(DATAGRAM_QUEUE);
    let (dg_b, dg_b_rx) = mpsc::channel(DATAGRAM_QUEUE);
    let closed = Arc::new(watch::channel(None).0);
    let a = MemoryConnection {
        id: 0,
        inbox: Arc::new(Queues {
            bi: Mutex::new(bi_a_rx),
            uni: Mutex::new(uni_a_rx),
            dgram: Mutex::new(dg_a_rx),
        }),
        to_peer: Arc::new(Outlets {
            bi: bi_b,
            uni: uni_b,
            dgram: dg_b,
        }),
        closed: closed.clone(),
        limits: ConnectionLimits::shared_default(),
        opened: Arc::default(),
    };
    let b = MemoryConnection {
        id: 1,
        inbox: Arc::new(Queues {
            bi: Mutex::new(bi_b_rx),
            uni: Mutex::new(uni_b_rx),
            dgram: Mutex::new(dg_b_rx),
        }),
        to_peer: Arc::new(Outlets {
            bi: bi_a,
            uni: uni_a,
            dgram: dg_a,
        }),
        closed,
        limits: ConnectionLimits::shared_default(),
        opened: Arc::default(),
    };
    (a, b)
}

fn stream(
    closed: &Arc<watch::Sender<Option<CloseInfo>>>,
    id: u8,
    sid: u64,
) -> (MemorySend, MemoryRecv) {
    let (tx, rx) = mpsc::channel(STREAM_WINDOW);
    let (stop_tx, stop_rx) = watch::channel(None);
    (
        MemorySend {
            tx: Some(tx),
            stop: stop_rx,
            priority: Arc::new(AtomicI32::new(0)),
            closed: closed.subscribe(),
            id,
            sid,
        },
        MemoryRecv {
            rx,
            stop: stop_tx,
            pending: None,
            done: false,
            closed: closed.subscribe(),
            id: id ^ 1,
            sid,
        },
    )
}

fn close_error(info: &CloseInfo, me: u8) -> ConnectionError {
    if info.by == me {
        ConnectionError::ClosedLocally {
            code: info.code,
            reason: info.reason.clone(),
        }
    } else {
        ConnectionError::ClosedByPeer {
            code: info.code,
            reason: info.reason.clone(),
        }
    }
}

async fn wait_closed(mut rx: watch::Receiver<Option<CloseInfo>>, me: u8) -> ConnectionError {
    loop {
        if let Some(info) = rx.borrow_and_update().clone() {
            return close_error(&info, me);
        }
        if rx.changed().await.is_err() {
            return ConnectionError::Transport("connection dropped".into());
        }
    }
}

impl MemoryConnection {
    /// The same end with these receive limits (see [`Connection::limits`]).
    pub fn with_limits(mut self, limits: Arc<ConnectionLimits>) -> Self {
        self.limits = limits;
        self
    }

    /// The next stream ID as QUIC numbers them (RFC 9000 §2.1): the opener in bit 0 (end 0
    /// acts as client), unidirectional in bit 1.
    fn next_stream_id(&self, uni: bool) -> u64 {
        let n = self.opened[usize::from(uni)].fetch_add(1, Ordering::Relaxed);
        (n << 2) | (u64::from(uni) << 1) | u64::from(self.id)
    }

    fn check_open(&self) -> Result<(), ConnectionError> {
        match &*self.closed.borrow() {
            Some(info) => Err(close_error(info, self.id)),
            None => Ok(()),
        }
    }
}

impl Connection for MemoryConnection {
    type Send = MemorySend;
    type Recv = MemoryRecv;

    async fn open_bi(&self) -> Result<(MemorySend, MemoryRecv), ConnectionError> {
        self.check_open()?;
        let sid = self.next_stream_id(false);
        let (our_send, their_recv) = stream(&self.closed, self.id, sid);
        let (their_send, our_recv) = stream(&self.closed, self.id ^ 1, sid);
        self.to_peer
            .bi
            .send((their_send, their_recv))
            .map_err(|_| ConnectionError::Transport("peer gone".into()))?;
        Ok((our_send, our_recv))
    }

    async fn accept_bi(&self) -> Result<(MemorySend, MemoryRecv), ConnectionError> {
        self.check_open()?;
        let mut q = self.inbox.bi.lock().await;
        tokio::select! {
            s = q.recv() => s.ok_or_else(|| ConnectionError::Transport("peer gone".into())),
            e = wait_closed(self.closed.subscribe(), self.id) => Err(e),
        }
    }

    async fn open_uni(&self) -> Result<MemorySend, ConnectionError> {
        self.check_open()?;
        let (send, recv) = stream(&self.closed, self.id, self.next_stream_id(true));
        self.to_peer
            .uni
            .send(recv)
            .map_err(|_| ConnectionError::Transport("peer gone".into()))?;
        Ok(send)
    }

    async fn accept_uni(&self) -> Result<MemoryRecv, ConnectionError> {
        self.check_open()?;
        let mut q = self.inbox.uni.lock().await;
        tokio::select! {
            s = q.recv() => s.ok_or_else(|| ConnectionError::Transport("peer gone".into())),
            e = wait_closed(self.closed.subscribe(), self.id) => Err(e),
        }
    }

    fn send_datagram(&self, data: Bytes) -> Result<(), ConnectionError> {
        self.check_open()?;
        // A full queue drops the datagram, as a congested network would.
        let _ = self.to_peer.dgram.try_send(data);
        Ok(())
    }

    async fn recv_datagram(&self) -> Result<Bytes, ConnectionError> {
        self.check_open()?;
        let mut q = self.inbox.dgram.lock().await;
        tokio::select! {
            d = q.recv() => d.ok_or_else(|| ConnectionError::Transport("peer gone".into())),
            e = wait_closed(self.closed.subscribe(), self.id) => Err(e),
        }
    }

    fn max_datagram_size(&self) -> Option<usize> {
        Some(1200)
    }

    fn close(&self, code: u64, reason: &str) {
        self.closed.send_if_modified(|c| {
            if c.is_none() {
                *c = Some(CloseInfo {
                    by: self.id,
                    code,
                    reason: reason.to_string(),
                });
                true
            } else {
                false
            }
        });
    }

    async fn closed(&self) -> ConnectionError {
        wait_closed(self.closed.subscribe(), self.id).await
    }

    fn kind(&self) -> TransportKind {
        TransportKind::Memory
    }

    fn peer(&self) -> String {
        format!("memory:{}", self.id ^ 1)
    }

    fn limits(&self) -> Arc<ConnectionLimits> {
        self.limits.clone()
    }
}

/// Sending half of an in-memory stream.
pub struct MemorySend {
    tx: Option<mpsc::Sender<Frame>>,
    stop: watch::Receiver<Option<u64>>,
    priority: Arc<AtomicI32>,
    closed: watch::Receiver<Option<CloseInfo>>,
    id: u8,
    sid: u64,
}

impl MemorySend {
    fn ready(&self) -> Result<&mpsc::Sender<Frame>, StreamError> {
        if let Some(info) = &*self.closed.borrow() {
            return Err(StreamError::Connection(close_error(info, self.id)));
        }
        if let Some(code) = *self.stop.borrow() {
            return Err(StreamError::Stopped(code));
        }
        self.tx.as_ref().ok_or(StreamError::Closed)
    }

    /// The priority last set (tests inspect how sessions map MoQ priorities).
    pub fn priority(&self) -> i32 {
        self.priority.load(Ordering::Relaxed)
    }
}

impl SendStream for MemorySend {
    async fn write(&mut self, buf: &[u8]) -> Result<(), StreamError> {
        self.write_chunk(Bytes::copy_from_slice(buf)).await
    }

    async fn write_chunk(&mut self, buf: Bytes) -> Result<(), StreamError> {
        let tx = self.ready()?.clone();
        let mut stop = self.stop.clone();
        tokio::select! {
            r = tx.send(Frame::Data(buf)) => r.map_err(|_| StreamError::Stopped(0)),
            _ = stop.changed() => Err(StreamError::Stopped(stop.borrow().unwrap_or(0))),
            e = wait_closed(self.closed.clone(), self.id) => Err(StreamError::Connection(e)),
        }
    }

    fn finish(&mut self) -> Result<(), StreamError> {
        self.ready()?;
        let tx = self.tx.take().ok_or(StreamError::Closed)?;
        // The window may be full; a detached task delivers FIN behind the queued data.
        tokio::spawn(async move {
            let _ = tx.send(Frame::Fin).await;
        });
        Ok(())
    }

    fn reset(&mut self, code: u64) -> Result<(), StreamError> {
        let tx = self.tx.take().ok_or(StreamError::Closed)?;
        if tx.try_send(Frame::Reset(code)).is_err() {
            tokio::spawn(async move {
                let _ = tx.send(Frame::Reset(code)).await;
            });
        }
        Ok(())
    }

    fn set_priority(&self, priority: i32) {
        self.priority.store(priority, Ordering::Relaxed);
    }

    async fn stopped(&mut self) -> Option<u64> {
        let mut stop = self.stop.clone();
        loop {
            if let Some(code) = *stop.borrow_and_update() {
                return Some(code);
            }
            if stop.changed().await.is_err() {
                return None;
            }
        }
    }

    fn stream_id(&self) -> Option<u64> {
        Some(self.sid)
    }
}

impl Drop for MemorySend {
    fn drop(&mut self) {
        // Like quinn, a send stream dropped without finish or reset is finished implicitly,
        // unless the connection is already closed.
        if self.closed.borrow().is_some() {
            return;
        }
        if let Some(tx) = self.tx.take() {
            if tx.try_send(Frame::Fin).is_err() {
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    handle.spawn(async move {
                        let _ = tx.send(Frame::Fin).await;
                    });
                }
            }
        }
    }
}

/// Receiving half of an in-memory stream.
pub struct MemoryRecv {
    rx: mpsc::Receiver<Frame>,
    stop: watch::Sender<Option<u64>>,
    pending: Option<Bytes>,
    done: bool,
    closed: watch::Receiver<Option<CloseInfo>>,
    id: u8,
    sid: u64,
}

impl RecvStream for MemoryRecv {
    async fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, StreamError> {
        let max = max.max(1);
        if let Some(mut p) = self.pending.take() {
            if p.len() > max {
                self.pending = Some(p.split_off(max));
            }
            return Ok(Some(p));
        }
        if self.done {
            return Ok(None);
        }
        let frame = tokio::select! {
            biased;
            f = self.rx.recv() => f,
            e = wait_closed(self.closed.clone(), self.id) => return Err(StreamError::Connection(e)),
        };
        match frame {
            Some(Frame::Data(mut d)) => {
                if d.len() > max {
                    self.pending = Some(d.split_off(max));
                }
                Ok(Some(d))
            }
            Some(Frame::Fin) => {
                self.done = true;
                Ok(None)
            }
            None => {
                // The sender vanished without FIN: the connection closed under it.
                self.done = true;
                match &*self.closed.borrow() {
                    Some(info) => Err(StreamError::Connection(close_error(info, self.id))),
                    None => Ok(None),
                }
            }
            Some(Frame::Reset(code)) => {
                self.done = true;
                Err(StreamError::Reset(code))
            }
        }
    }

    fn stop(&mut self, code: u64) {
        let _ = self.stop.send(Some(code));
        self.rx.close();
    }

    fn stream_id(&self) -> Option<u64> {
        Some(self.sid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streams_carry_data_fin_reset_and_stop() {
        let (a, b) = pair();
        let (mut s, _r) = a.open_bi().await.unwrap();
        let (_s2, mut r2) = b.accept_bi().await.unwrap();
        s.write(b"hello").await.unwrap();
        s.finish().unwrap();
        assert_eq!(
            r2.read_chunk(3).await.unwrap().unwrap(),
            Bytes::from_static(b"hel")
        );
        assert_eq!(
            r2.read_chunk(9).await.unwrap().unwrap(),
            Bytes::from_static(b"lo")
        );
        assert_eq!(r2.read_chunk(9).await.unwrap(), None);

        let mut u = a.open_uni().await.unwrap();
        let mut ur = b.accept_uni().await.unwrap();
        u.reset(2).unwrap();
        assert_eq!(ur.read_chunk(9).await, Err(StreamError::Reset(2)));

        let mut u = b.open_uni().await.unwrap();
        let mut ur = a.accept_uni().await.unwrap();
        ur.stop(7);
        assert_eq!(u.stopped().await, Some(7));
        assert_eq!(u.write(b"x").await, Err(StreamError::Stopped(7)));
    }

    #[tokio::test]
    async fn close_reaches_both_sides_with_code_and_reason() {
        let (a, b) = pair();
        let pending = tokio::spawn({
            let b = b.clone();
            async move { b.accept_bi().await.err() }
        });
        a.close(0x3, "protocol violation");
        assert_eq!(
            b.closed().await,
            ConnectionError::ClosedByPeer {
                code: 3,
                reason: "protocol violation".into()
            }
        );
        assert!(matches!(
            a.closed().await,
            ConnectionError::ClosedLocally { code: 3, .. }
        ));
        assert!(matches!(
            pending.await.unwrap(),
            Some(ConnectionError::ClosedByPeer { .. })
        ));
        assert!(a.open_uni().await.is_err());
    }

    #[tokio::test]
    async fn datagrams_flow() {
        let (a, b) = pair();
        a.send_datagram(Bytes::from_static(b"d")).unwrap();
        assert_eq!(b.recv_datagram().await.unwrap(), Bytes::from_static(b"d"));
    }
}
