//! What one peer may make this endpoint hold: QUIC flow-control windows and stream counts, bytes
//! buffered for partial objects, how long a new stream may take to say what it is, lite message
//! sizes, and (on a server) handshakes and sessions at once. Every limit is a field with a
//! documented default; [`ConnectionLimits`] travels with each connection, [`ServerLimits`] with
//! a [`crate::endpoint::Server`].
//!
//! What happens at each limit:
//! - QUIC windows and stream counts: the peer is held back by flow control (MAX_DATA,
//!   MAX_STREAM_DATA, MAX_STREAMS); nothing is closed.
//! - Partial-object bytes or object size on a data stream: that stream gets STOP_SENDING with
//!   [`STOP_OVER_BUDGET`] and its subscription sees the subgroup reset; the session lives
//!   (draft-14 §12.1: "MUST cancel a stream ... after reaching a resource limit").
//! - Header deadline: the stream gets STOP_SENDING with [`STOP_HEADER_TIMEOUT`]; the session
//!   lives (§3.4 DATA_STREAM_TIMEOUT would close it; cancelling the stream is the gentler choice
//!   §12.2 leaves to the implementation).
//! - Lite: an oversized message or an ANNOUNCE_INIT with too many paths ends that stream (reset
//!   and STOP_SENDING with [`LITE_STOP_OVER_LIMIT`]); lite-02 "Streams": the transaction is
//!   terminated, the session lives.
//! - Handshakes in progress: further Initial packets are refused (QUIC CONNECTION_REFUSED).
//! - Sessions: a handshake completing with no session slot free is refused: a WebTransport
//!   CONNECT is answered 429, a raw QUIC connection closed with [`SESSION_LIMIT_CODE`] and
//!   reason [`SESSION_LIMIT_REASON`].

use moqlink_model::data::reset_code;
use moqlink_model::lite;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use wtransport::quinn;

/// STOP_SENDING code for a data stream over the partial-object budget or the object size cap
/// (draft-14 §10.4.2 INTERNAL_ERROR: an implementation-specific limit).
pub const STOP_OVER_BUDGET: u64 = reset_code::INTERNAL_ERROR;
/// STOP_SENDING code for a data stream that sent no complete header in time (DELIVERY_TIMEOUT).
pub const STOP_HEADER_TIMEOUT: u64 = reset_code::DELIVERY_TIMEOUT;
/// Reset / STOP_SENDING code ending a lite stream over a message limit (moq-net INTERNAL, 0x0).
pub const LITE_STOP_OVER_LIMIT: u64 = lite::reset::to_code(lite::reset::moq_net_0_3::INTERNAL);
/// Reset / STOP_SENDING code for a lite stream that sent no first message or GROUP in time.
pub const LITE_STOP_TIMEOUT: u64 = lite::reset::to_code(lite::reset::moq_net_0_3::DELIVERY_TIMEOUT);
/// Session close code when the server is at its session cap (draft-14 §3.4 INTERNAL_ERROR).
pub const SESSION_LIMIT_CODE: u64 = moqlink_model::SessionErrorCode::InternalError.code();
/// Session close reason when the server is at its session cap.
pub const SESSION_LIMIT_REASON: &str = "too many sessions";

/// Per-connection receive limits, on both ends of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// QUIC connection receive window (MAX_DATA) in bytes: unread bytes across all streams.
    pub receive_window: u64,
    /// QUIC stream receive window (MAX_STREAM_DATA) in bytes, per stream.
    pub stream_receive_window: u64,
    /// Concurrent unidirectional streams the peer may open (one per subgroup / lite group).
    pub max_uni_streams: u32,
    /// Concurrent bidirectional streams the peer may open (draft-14: 1; lite: one per request).
    pub max_bi_streams: u32,
    /// QUIC idle timeout: the connection ends after this long without a packet from the peer.
    pub idle_timeout: Duration,
    /// QUIC keep-alive PING interval (shorter than `idle_timeout`), or `None` to send none.
    pub keep_alive: Option<Duration>,
    /// Bytes of received datagrams QUIC buffers before dropping.
    pub datagram_receive_buffer: usize,
    /// Largest object (lite frame) a data stream may carry, in bytes.
    pub max_object_size: usize,
    /// Bytes buffered at once for objects still arriving, across the session's data streams.
    pub partial_object_bytes: usize,
    /// How long a new data stream (or lite stream) may take to deliver its type and header.
    pub header_deadline: Duration,
    /// Largest lite control message received on a bidirectional stream, in bytes.
    pub lite_max_message: usize,
    /// Largest ANNOUNCE_INIT received, in bytes.
    pub lite_max_announce_init: usize,
    /// Most paths one received ANNOUNCE_INIT may carry.
    pub lite_max_announce_paths: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            receive_window: 16 * 1024 * 1024,
            stream_receive_window: 1024 * 1024,
            max_uni_streams: 256,
            max_bi_streams: 128,
            idle_timeout: Duration::from_secs(30),
            keep_alive: Some(Duration::from_secs(4)),
            datagram_receive_buffer: 1024 * 1024,
            max_object_size: moqlink_model::limits::DEFAULT_MAX_OBJECT_SIZE,
            partial_object_bytes: 32 * 1024 * 1024,
            header_deadline: Duration::from_secs(10),
            lite_max_message: 64 * 1024,
            lite_max_announce_init: 1024 * 1024,
            lite_max_announce_paths: 10_000,
        }
    }
}

impl ConnectionLimits {
    /// The shared default limits (for connections built without any).
    pub fn shared_default() -> Arc<ConnectionLimits> {
        static DEFAULT: OnceLock<Arc<ConnectionLimits>> = OnceLock::new();
        DEFAULT.get_or_init(Arc::default).clone()
    }

    /// The quinn transport settings for these limits (datagrams on).
    pub fn transport_config(&self) -> quinn::TransportConfig {
        let varint = |v: u64| quinn::VarInt::from_u64(v).unwrap_or(quinn::VarInt::MAX);
        let mut t = quinn::TransportConfig::default();
        t.max_concurrent_uni_streams(self.max_uni_streams.into());
        t.max_concurrent_bidi_streams(self.max_bi_streams.into());
        t.receive_window(varint(self.receive_window));
        t.stream_receive_window(varint(self.stream_receive_window));
        t.keep_alive_interval(self.keep_alive);
        t.max_idle_timeout(quinn::IdleTimeout::try_from(self.idle_timeout).ok());
        t.datagram_receive_buffer_size(Some(self.datagram_receive_buffer));
        t.datagram_send_buffer_size(1 << 20);
        t
    }
}

/// Server-wide limits: handshakes and sessions at once, and each connection's limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Limits of each accepted connection. The server defaults to a 10 s idle timeout with a
    /// PING every 4 s: a live peer answers the PINGs, so only a vanished one reaches the timeout,
    /// and what it held is freed three times sooner than with a client's 30 s.
    pub connection: ConnectionLimits,
    /// Handshakes (QUIC, TLS, WebTransport CONNECT) in progress at once; more are refused.
    pub max_handshakes: usize,
    /// Established sessions at once; a handshake completing beyond this is closed.
    pub max_sessions: usize,
    /// How long an incoming connection may take from first packet to an accepted session.
    pub handshake_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            connection: ConnectionLimits {
                idle_timeout: Duration::from_secs(10),
                keep_alive: Some(Duration::from_secs(4)),
                ..ConnectionLimits::default()
            },
            max_handshakes: 64,
            max_sessions: 10_000,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Bytes one session may buffer for data still arriving; shared by its data stream readers.
#[derive(Debug)]
pub(crate) struct ReceiveBudget {
    used: AtomicUsize,
    max: usize,
}

impl ReceiveBudget {
    /// A budget of `max` bytes.
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(ReceiveBudget {
            used: AtomicUsize::new(0),
            max,
        })
    }

    /// Bytes in use now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `n` more bytes; false (nothing taken) if that would exceed the budget.
    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|t| *t <= self.max)
            })
            .is_ok()
    }

    fn give(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
    }
}

/// One stream's share of a [`ReceiveBudget`], returned when dropped.
#[derive(Debug)]
pub(crate) struct BudgetShare {
    budget: Arc<ReceiveBudget>,
    held: usize,
}

impl BudgetShare {
    /// An empty share of `budget`.
    pub(crate) fn new(budget: Arc<ReceiveBudget>) -> Self {
        BudgetShare { budget, held: 0 }
    }

    /// Holds exactly `n` bytes: false (holding what it held) if growing to `n` would exceed
    /// the session's budget.
    pub(crate) fn hold(&mut self, n: usize) -> bool {
        if n > self.held {
            if !self.budget.take(n - self.held) {
                return false;
            }
        } else {
            self.budget.give(self.held - n);
        }
        self.held = n;
        true
    }
}

impl Drop for BudgetShare {
    fn drop(&mut self) {
        self.budget.give(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_stay_within_the_budget_and_return_on_drop() {
        let b = ReceiveBudget::new(100);
        let mut a = BudgetShare::new(b.clone());
        let mut c = BudgetShare::new(b.clone());
        assert!(a.hold(60));
        assert!(!c.hold(41));
        assert!(c.hold(40));
        assert_eq!(b.used(), 100);
        assert!(a.hold(10));
        assert_eq!(b.used(), 50);
        drop(c);
        assert_eq!(b.used(), 10);
        drop(a);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn defaults_keep_alive_below_idle_timeout() {
        let c = ConnectionLimits::default();
        assert!(c.keep_alive.unwrap() < c.idle_timeout);
        assert!(c.stream_receive_window <= c.receive_window);
        let s = ServerLimits::default().connection;
        assert!(s.keep_alive.unwrap() < s.idle_timeout);
        let _ = c.transport_config();
    }
}
