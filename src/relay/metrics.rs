//! The relay's counters and their Prometheus exposition. Per-object figures are the transport's
//! plain atomics ([`TrackStats`], in every relayed track's config); per-request and per-session
//! figures are atomics here and in [`super::LiveCounts`]; gauges of what the registry holds are
//! read at scrape time. Nothing on the forward path takes a lock to count.

use super::serve::Shared;
use moqlink_model::codes::ResetCode;
use moqlink_model::control::MessageType;
use moqlink_model::Version;
use moqlink_transport::endpoint::Alpn;
use moqlink_transport::stats::{RequestStats, TrackStats, ERROR_CODES, REQUEST_KINDS, RESET_CODES};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};

/// Tracks listed one by one in `moqlink_track_subscribers` (and in `/state`); the rest are
/// only counted in `moqlink_tracks`.
pub(crate) const MAX_TRACK_SERIES: usize = 1000;

/// Bytes of a track name kept in a label or in `/state` (longer ones are cut, marked `…`).
pub(crate) const MAX_NAME_BYTES: usize = 256;

/// Versions labelled one by one, in index order.
const VERSIONS: [&str; 4] = ["draft-14", "lite-01", "lite-02", "other"];
/// Transports, in index order.
const TRANSPORTS: [&str; 2] = ["webtransport", "quic"];
/// Reset code names (§13.1.8), in slot order, then every other code.
const RESET_NAMES: [&str; RESET_CODES + 1] = {
    let mut names = ["other"; RESET_CODES + 1];
    let mut i = 0;
    while i < RESET_CODES {
        names[i] = match ResetCode::from_code(i as u64).name() {
            Some(n) => n,
            None => "other",
        };
        i += 1;
    }
    names
};

/// The label of a negotiated version.
pub(crate) fn version_label(v: Version) -> &'static str {
    match v {
        Version::DRAFT_14 => VERSIONS[0],
        Version::LITE_01 => VERSIONS[1],
        Version::LITE_02 => VERSIONS[2],
        _ => VERSIONS[3],
    }
}

/// The label of the transport a connection came over.
pub(crate) fn transport_label(alpn: Alpn) -> &'static str {
    match alpn {
        Alpn::H3 => TRANSPORTS[0],
        Alpn::Moq | Alpn::MoqLite => TRANSPORTS[1],
    }
}

/// moq-lite requests, in index order: their label and the draft-14 request whose error codes
/// the relay refuses them with.
const LITE_KINDS: [(&str, MessageType); 3] = [
    ("LITE_SUBSCRIBE", MessageType::Subscribe),
    ("LITE_ANNOUNCE", MessageType::PublishNamespace),
    ("LITE_ANNOUNCE_PLEASE", MessageType::SubscribeNamespace),
];

/// A moq-lite request the relay answers (or, for ANNOUNCE, routes or not).
#[derive(Debug, Clone, Copy)]
pub(crate) enum LiteKind {
    /// SUBSCRIBE.
    Subscribe = 0,
    /// ANNOUNCE of a broadcast.
    Announce = 1,
    /// ANNOUNCE_PLEASE.
    AnnouncePlease = 2,
}

/// One open session, as `/state` and the open-sessions gauge show it.
pub(crate) struct SessionInfo {
    pub(crate) version: &'static str,
    pub(crate) transport: &'static str,
    pub(crate) remote: SocketAddr,
    pub(crate) peer: Arc<super::request::Peer>,
}

/// Everything the relay counts beyond what [`super::LiveCounts`] holds.
#[derive(Default)]
pub(crate) struct Metrics {
    /// Objects, bytes, resets, evictions and forward delay of every relayed track.
    pub(crate) track: Arc<TrackStats>,
    /// How draft-14 requests were answered.
    pub(crate) requests: Arc<RequestStats>,
    /// Sessions established, by version and transport.
    accepted: [[AtomicU64; TRANSPORTS.len()]; VERSIONS.len()],
    /// Open sessions by relay session ID (as many as the endpoint admits: `max_sessions`).
    open: Mutex<BTreeMap<u64, SessionInfo>>,
    /// The relay accepts sessions (set while `run` serves; `/healthz`).
    pub(crate) accepting: AtomicBool,
    /// Connections the endpoint refused at its limits (none for an in-memory relay).
    pub(crate) server: std::sync::OnceLock<Arc<moqlink_transport::stats::ServerRefusals>>,
    /// moq-lite requests by kind: [ok, code 0x0 .. code 0x12, other code].
    lite: [[AtomicU64; ERROR_CODES + 2]; LITE_KINDS.len()],
}

/// Keeps a session in the open-sessions table until dropped.
pub(crate) struct OpenSession {
    metrics: Arc<Metrics>,
    id: u64,
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        self.metrics.sessions().remove(&self.id);
    }
}

impl Metrics {
    /// A moq-lite request was served (`None`) or refused with the draft-14 `code` the relay
    /// maps the refusal to.
    pub(crate) fn lite_answered(&self, kind: LiteKind, code: Option<u64>) {
        let slot = match code {
            None => 0,
            Some(c) => 1 + usize::try_from(c).map_or(ERROR_CODES, |c| c.min(ERROR_CODES)),
        };
        self.lite[kind as usize][slot].fetch_add(1, Relaxed);
    }

    /// The open sessions.
    pub(crate) fn sessions(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, SessionInfo>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an established session and lists it until the guard is dropped.
    pub(crate) fn session_opened(self: &Arc<Self>, id: u64, info: SessionInfo) -> OpenSession {
        let v = VERSIONS
            .iter()
            .position(|l| *l == info.version)
            .unwrap_or(3);
        let t = TRANSPORTS
            .iter()
            .position(|l| *l == info.transport)
            .unwrap_or(1);
        self.accepted[v][t].fetch_add(1, Relaxed);
        self.sessions().insert(id, info);
        OpenSession {
            metrics: self.clone(),
            id,
        }
    }
}

/// The name of request error `code` for a request of type `kind` (§13.1.2-§13.1.7), `other`
/// for a value its table does not define.
fn error_name(kind: MessageType, code: u64) -> &'static str {
    moqlink_model::codes::request_error_name(kind, code).unwrap_or("other")
}

/// `name` cut to [`MAX_NAME_BYTES`] at a character boundary.
pub(crate) fn short_name(name: String) -> String {
    if name.len() <= MAX_NAME_BYTES {
        return name;
    }
    let mut end = MAX_NAME_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &name[..end])
}

/// Encodes the relay's metrics at each scrape.
#[derive(Debug)]
pub(crate) struct RelayCollector {
    pub(crate) shared: Weak<Shared>,
}

type Labels<'a, const N: usize> = [(&'static str, &'a str); N];

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(v).encode(m)
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> std::fmt::Result {
    let m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(v).encode(m)
}

fn saturating(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Collector for RelayCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(());
        };
        let m = &shared.metrics;
        let live = &shared.live;

        // Sessions.
        let mut open = [[0i64; TRANSPORTS.len()]; VERSIONS.len()];
        for info in m.sessions().values() {
            let v = VERSIONS
                .iter()
                .position(|l| *l == info.version)
                .unwrap_or(3);
            let t = usize::from(info.transport != TRANSPORTS[0]);
            open[v][t] += 1;
        }
        let mut e = enc.encode_descriptor(
            "moqlink_sessions_open",
            "Client sessions established and not ended, by version and transport.",
            None,
            MetricType::Gauge,
        )?;
        for (v, version) in VERSIONS.iter().enumerate() {
            for (t, transport) in TRANSPORTS.iter().enumerate() {
                let l: Labels<2> = [("version", version), ("transport", transport)];
                ConstGauge::new(open[v][t]).encode(e.encode_family(&l)?)?;
            }
        }
        let mut e = enc.encode_descriptor(
            "moqlink_sessions_accepted",
            "Client sessions established, by version and transport.",
            None,
            MetricType::Counter,
        )?;
        for (v, version) in VERSIONS.iter().enumerate() {
            for (t, transport) in TRANSPORTS.iter().enumerate() {
                let l: Labels<2> = [("version", version), ("transport", transport)];
                ConstCounter::new(m.accepted[v][t].load(Relaxed)).encode(e.encode_family(&l)?)?;
            }
        }

        // Requests.
        let mut e = enc.encode_descriptor(
            "moqlink_requests",
            "Requests answered, by message type (LITE_* for moq-lite) and outcome (ok or the error code's name).",
            None,
            MetricType::Counter,
        )?;
        for (k, kind) in REQUEST_KINDS.iter().enumerate() {
            for (code, n) in m.requests.answers(k) {
                let outcome = code.map_or("ok", |c| error_name(*kind, c));
                let l: Labels<2> = [("type", kind.name()), ("outcome", outcome)];
                ConstCounter::new(n).encode(e.encode_family(&l)?)?;
            }
        }
        for ((label, kind), row) in LITE_KINDS.iter().zip(&m.lite) {
            for (slot, n) in row.iter().enumerate() {
                let n = n.load(Relaxed);
                if n == 0 {
                    continue;
                }
                let outcome = match slot {
                    0 => "ok",
                    s if s > ERROR_CODES => "other",
                    s => error_name(*kind, s as u64 - 1),
                };
                let l: Labels<2> = [("type", label), ("outcome", outcome)];
                ConstCounter::new(n).encode(e.encode_family(&l)?)?;
            }
        }
        counter(
            &mut enc,
            "moqlink_auth_denials",
            "Requests refused by the authorization rules (UNAUTHORIZED), both protocols.",
            live.denials(),
        )?;
        let mut e = enc.encode_descriptor(
            "moqlink_limit_hits",
            "Requests refused at a per-session limit, and connections refused at an endpoint limit, by limit.",
            None,
            MetricType::Counter,
        )?;
        let server = m.server.get().map_or([0; 3], |r| {
            [r.max_handshakes(), r.max_sessions(), r.handshake_timeouts()]
        });
        let endpoint = ["max_handshakes", "max_sessions", "handshake_timeout"].into_iter();
        for (limit, n) in live.limit_hits().into_iter().chain(endpoint.zip(server)) {
            let l: Labels<1> = [("limit", limit)];
            ConstCounter::new(n).encode(e.encode_family(&l)?)?;
        }

        // Objects.
        let t = &m.track;
        counter(
            &mut enc,
            "moqlink_objects_in",
            "Objects stored in relayed tracks.",
            t.objects_in(),
        )?;
        counter(
            &mut enc,
            "moqlink_bytes_in",
            "Payload bytes stored in relayed tracks.",
            t.bytes_in(),
        )?;
        counter(
            &mut enc,
            "moqlink_objects_out",
            "Objects written to subscribers' subgroup streams and datagrams (not FETCH).",
            t.objects_out(),
        )?;
        counter(
            &mut enc,
            "moqlink_bytes_out",
            "Payload bytes written to subscribers (not FETCH).",
            t.bytes_out(),
        )?;
        let mut e = enc.encode_descriptor(
            "moqlink_stream_resets",
            "Data streams reset: sent to subscribers (draft-14) or received from publishers, by code.",
            None,
            MetricType::Counter,
        )?;
        for (direction, counts) in [("sent", t.resets_sent()), ("received", t.resets_received())] {
            for (code, n) in RESET_NAMES.iter().zip(counts) {
                let l: Labels<2> = [("direction", direction), ("code", code)];
                ConstCounter::new(n).encode(e.encode_family(&l)?)?;
            }
        }
        // The encoder adds the +Inf bucket (the count).
        let d = t.delay();
        let mut e = enc.encode_descriptor(
            "moqlink_forward_delay_seconds",
            "Time from an object's arrival in the relay to its write on a subscriber's stream.",
            None,
            MetricType::Histogram,
        )?;
        e.encode_histogram::<NoLabelSet>(d.sum, d.count, &d.buckets, None)?;

        // Cache and tracks.
        let view = shared.registry.tracks_view(MAX_TRACK_SERIES);
        let budget = shared.config.track.budget.as_ref();
        let bytes = budget.map_or(view.bytes, |b| b.used());
        gauge(
            &mut enc,
            "moqlink_cache_bytes",
            "Accounted bytes the relayed tracks retain.",
            saturating(bytes),
        )?;
        gauge(
            &mut enc,
            "moqlink_cache_groups",
            "Groups the relayed tracks retain.",
            saturating(view.groups),
        )?;
        counter(
            &mut enc,
            "moqlink_cache_evicted_groups",
            "Groups evicted whole from relayed tracks.",
            t.evicted_groups(),
        )?;
        gauge(
            &mut enc,
            "moqlink_tracks",
            "Tracks in the registry.",
            saturating(view.total),
        )?;
        let mut e = enc.encode_descriptor(
            "moqlink_track_subscribers",
            "Downstream subscriptions per track, while the track is in the registry (at most 1000 tracks listed).",
            None,
            MetricType::Gauge,
        )?;
        for tr in &view.tracks {
            let l: Labels<1> = [("track", tr.name.as_str())];
            ConstGauge::new(saturating(tr.subscribers)).encode(e.encode_family(&l)?)?;
        }

        // Upstream.
        let state = shared.upstream_state();
        let mut e = enc.encode_descriptor(
            "moqlink_upstream_state",
            "The session to the upstream relay: 1 for its current state.",
            None,
            MetricType::Gauge,
        )?;
        for s in super::serve::UPSTREAM_STATES {
            let l: Labels<1> = [("state", s)];
            ConstGauge::new(i64::from(s == state)).encode(e.encode_family(&l)?)?;
        }
        Ok(())
    }
}

/// The Prometheus text exposition (format 0.0.4) of the relay's metrics.
pub(crate) fn exposition(shared: &Arc<Shared>) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(RelayCollector {
        shared: Arc::downgrade(shared),
    }));
    let mut out = String::new();
    if prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_named_as_their_request_type_names_them() {
        // §13.1.2, §13.1.5, §13.1.7: 0x4 and 0x5 mean different things per request type.
        assert_eq!(
            error_name(MessageType::Subscribe, 0x4),
            "TRACK_DOES_NOT_EXIST"
        );
        assert_eq!(
            error_name(MessageType::SubscribeNamespace, 0x5),
            "NAMESPACE_PREFIX_OVERLAP"
        );
        assert_eq!(
            error_name(MessageType::Fetch, 0x8),
            "UNKNOWN_STATUS_IN_RANGE"
        );
        assert_eq!(error_name(MessageType::Publish, 0x1), "UNAUTHORIZED");
        assert_eq!(error_name(MessageType::Publish, 0x7), "other");
        // §13.1.4: PUBLISH_ERROR's table has no 0x10 (the other request tables do).
        assert_eq!(error_name(MessageType::Publish, 0x10), "other");
        assert_eq!(error_name(MessageType::Fetch, 0x10), "MALFORMED_AUTH_TOKEN");
        assert_eq!(
            RESET_NAMES,
            [
                "INTERNAL_ERROR",
                "CANCELLED",
                "DELIVERY_TIMEOUT",
                "SESSION_CLOSED",
                "other"
            ]
        );
        assert_eq!(error_name(MessageType::Subscribe, u64::MAX), "other");
        let long = "é".repeat(MAX_NAME_BYTES);
        let cut = short_name(long);
        assert!(cut.len() <= MAX_NAME_BYTES + "…".len() && cut.ends_with('…'));
    }
}
