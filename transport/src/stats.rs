//! Counters an application (the relay's metrics) reads: objects and bytes into and out of its
//! tracks, data stream resets, evicted groups, the receive→forward delay, and how peer requests
//! were answered. Everything is a plain atomic added to with `Relaxed` ordering: the per-object
//! paths take no lock and allocate nothing to count. Nothing is counted unless the application
//! hands these in ([`crate::track::TrackConfig::stats`],
//! [`crate::session::SessionConfig::request_stats`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Reset codes counted one by one (the §13.1.8 codes 0x0..=0x3); any other counts as "other".
pub const RESET_CODES: usize = moqlink_model::codes::ResetCode::KNOWN.len();

/// Upper bounds of the receive→forward delay buckets, in seconds (10 µs to 1 s; above it, +Inf).
pub const DELAY_BUCKETS: [f64; 16] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0,
];

/// The same bounds in nanoseconds.
const DELAY_BOUNDS_NS: [u64; 16] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
];

/// What flows through tracks made with these stats in their [`crate::track::TrackConfig`].
/// The in and out counters sit on their own cache lines: tasks receiving and sending on
/// different cores do not contend for one line.
#[derive(Debug, Default)]
pub struct TrackStats {
    inbound: Inbound,
    outbound: Outbound,
    evicted_groups: AtomicU64,
    resets_sent: [AtomicU64; RESET_CODES + 1],
    resets_received: [AtomicU64; RESET_CODES + 1],
}

#[derive(Debug, Default)]
#[repr(align(64))]
struct Inbound {
    objects: AtomicU64,
    bytes: AtomicU64,
}

#[derive(Debug, Default)]
#[repr(align(64))]
struct Outbound {
    objects: AtomicU64,
    bytes: AtomicU64,
    /// Per bucket (not cumulative), the last one +Inf.
    delay: [AtomicU64; DELAY_BUCKETS.len() + 1],
    delay_sum_ns: AtomicU64,
}

/// A snapshot of the receive→forward delay histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct DelaySnapshot {
    /// Sum of all observed delays, seconds.
    pub sum: f64,
    /// Observations.
    pub count: u64,
    /// (upper bound in seconds, cumulative count) for each of [`DELAY_BUCKETS`].
    pub buckets: Vec<(f64, u64)>,
}

fn reset_slot(code: u64) -> usize {
    usize::try_from(code).map_or(RESET_CODES, |c| c.min(RESET_CODES))
}

impl TrackStats {
    /// An object (with `bytes` of payload) was stored in a track.
    pub(crate) fn object_in(&self, bytes: usize) {
        self.inbound.objects.fetch_add(1, Relaxed);
        self.inbound.bytes.fetch_add(bytes as u64, Relaxed);
    }

    /// An object (with `bytes` of payload) was handed to a subscriber's stream or datagram,
    /// `delay` after it arrived in the track (`None` when not timed).
    pub fn object_out(&self, bytes: usize, delay: Option<Duration>) {
        self.outbound.objects.fetch_add(1, Relaxed);
        self.outbound.bytes.fetch_add(bytes as u64, Relaxed);
        if let Some(d) = delay {
            let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
            let i = DELAY_BOUNDS_NS
                .iter()
                .position(|b| ns <= *b)
                .unwrap_or(DELAY_BOUNDS_NS.len());
            self.outbound.delay[i].fetch_add(1, Relaxed);
            self.outbound.delay_sum_ns.fetch_add(ns, Relaxed);
        }
    }

    /// A group was evicted whole from a track's history.
    pub(crate) fn group_evicted(&self) {
        self.evicted_groups.fetch_add(1, Relaxed);
    }

    /// A data stream to a subscriber was reset with `code`.
    pub fn reset_sent(&self, code: u64) {
        self.resets_sent[reset_slot(code)].fetch_add(1, Relaxed);
    }

    /// A subgroup being received into a track ended with a reset `code`.
    pub(crate) fn reset_received(&self, code: u64) {
        self.resets_received[reset_slot(code)].fetch_add(1, Relaxed);
    }

    /// Objects stored in tracks.
    pub fn objects_in(&self) -> u64 {
        self.inbound.objects.load(Relaxed)
    }

    /// Payload bytes stored in tracks.
    pub fn bytes_in(&self) -> u64 {
        self.inbound.bytes.load(Relaxed)
    }

    /// Objects handed to subscribers.
    pub fn objects_out(&self) -> u64 {
        self.outbound.objects.load(Relaxed)
    }

    /// Payload bytes handed to subscribers.
    pub fn bytes_out(&self) -> u64 {
        self.outbound.bytes.load(Relaxed)
    }

    /// Groups evicted whole.
    pub fn evicted_groups(&self) -> u64 {
        self.evicted_groups.load(Relaxed)
    }

    /// Resets sent, by code 0..[`RESET_CODES`], then every other code together.
    pub fn resets_sent(&self) -> [u64; RESET_CODES + 1] {
        std::array::from_fn(|i| self.resets_sent[i].load(Relaxed))
    }

    /// Resets received, as [`Self::resets_sent`].
    pub fn resets_received(&self) -> [u64; RESET_CODES + 1] {
        std::array::from_fn(|i| self.resets_received[i].load(Relaxed))
    }

    /// The receive→forward delay histogram now.
    pub fn delay(&self) -> DelaySnapshot {
        let mut cumulative = 0u64;
        let mut buckets = Vec::with_capacity(DELAY_BUCKETS.len());
        for (i, bound) in DELAY_BUCKETS.iter().enumerate() {
            cumulative += self.outbound.delay[i].load(Relaxed);
            buckets.push((*bound, cumulative));
        }
        let count = cumulative + self.outbound.delay[DELAY_BUCKETS.len()].load(Relaxed);
        DelaySnapshot {
            sum: self.outbound.delay_sum_ns.load(Relaxed) as f64 / 1e9,
            count,
            buckets,
        }
    }
}

/// Connections a server refused at its limits (`ServerLimits`).
#[derive(Debug, Default)]
pub struct ServerRefusals {
    handshakes: AtomicU64,
    sessions: AtomicU64,
    timeouts: AtomicU64,
}

impl ServerRefusals {
    pub(crate) fn handshake_refused(&self) {
        self.handshakes.fetch_add(1, Relaxed);
    }

    pub(crate) fn session_refused(&self) {
        self.sessions.fetch_add(1, Relaxed);
    }

    pub(crate) fn handshake_timed_out(&self) {
        self.timeouts.fetch_add(1, Relaxed);
    }

    /// Refused because `max_handshakes` were in progress.
    pub fn max_handshakes(&self) -> u64 {
        self.handshakes.load(Relaxed)
    }

    /// Refused because `max_sessions` were established.
    pub fn max_sessions(&self) -> u64 {
        self.sessions.load(Relaxed)
    }

    /// Dropped because the handshake took longer than `handshake_timeout`.
    pub fn handshake_timeouts(&self) -> u64 {
        self.timeouts.load(Relaxed)
    }
}

/// Request types counted by [`RequestStats`], in its index order.
pub const REQUEST_KINDS: [moqlink_model::control::MessageType; 6] = {
    use moqlink_model::control::MessageType::*;
    [
        Subscribe,
        Publish,
        Fetch,
        TrackStatus,
        PublishNamespace,
        SubscribeNamespace,
    ]
};

/// Error codes counted one by one (0x0..=0x12, every code of §13.1.2-§13.1.7); others together.
pub const ERROR_CODES: usize = 0x13;

/// How the peer requests of sessions made with these stats were answered.
#[derive(Debug, Default)]
pub struct RequestStats {
    /// Per kind: [ok, code 0x0 .. code 0x12, other code].
    answers: [[AtomicU64; ERROR_CODES + 2]; REQUEST_KINDS.len()],
}

impl RequestStats {
    /// `kind` was answered: `None` with its *_OK (or the accepted PUBLISH's reply), else with
    /// the error code.
    pub(crate) fn answered(&self, kind: moqlink_model::control::MessageType, code: Option<u64>) {
        let Some(k) = REQUEST_KINDS.iter().position(|r| *r == kind) else {
            return;
        };
        let slot = match code {
            None => 0,
            Some(c) => 1 + usize::try_from(c).map_or(ERROR_CODES, |c| c.min(ERROR_CODES)),
        };
        self.answers[k][slot].fetch_add(1, Relaxed);
    }

    /// Answers so far for `REQUEST_KINDS[kind]`: (`None` = ok, or `Some(code)`; `u64::MAX`
    /// stands for every code above 0x12), count; zero counts left out.
    pub fn answers(&self, kind: usize) -> Vec<(Option<u64>, u64)> {
        let Some(row) = self.answers.get(kind) else {
            return Vec::new();
        };
        row.iter()
            .enumerate()
            .map(|(i, n)| (i, n.load(Relaxed)))
            .filter(|(_, n)| *n > 0)
            .map(|(i, n)| {
                let code = match i {
                    0 => None,
                    i if i > ERROR_CODES => Some(u64::MAX),
                    i => Some(i as u64 - 1),
                };
                (code, n)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moqlink_model::control::MessageType;

    #[test]
    fn delays_land_in_their_bucket_and_codes_in_their_slot() {
        let s = TrackStats::default();
        s.object_out(10, Some(Duration::from_micros(10)));
        s.object_out(10, Some(Duration::from_micros(11)));
        s.object_out(10, Some(Duration::from_secs(5)));
        let d = s.delay();
        assert_eq!(d.count, 3);
        assert_eq!(d.buckets[0], (0.000_01, 1));
        assert_eq!(d.buckets[1], (0.000_025, 2));
        assert_eq!(d.buckets[15], (1.0, 2));
        assert_eq!(s.bytes_out(), 30);
        s.reset_sent(2);
        s.reset_sent(0x99);
        assert_eq!(s.resets_sent(), [0, 0, 1, 0, 1]);
        let r = RequestStats::default();
        r.answered(MessageType::Subscribe, None);
        r.answered(MessageType::Subscribe, Some(1));
        r.answered(MessageType::Subscribe, Some(0x400));
        r.answered(MessageType::Unsubscribe, None);
        assert_eq!(
            r.answers(0),
            vec![(None, 1), (Some(1), 1), (Some(u64::MAX), 1)]
        );
    }
}
