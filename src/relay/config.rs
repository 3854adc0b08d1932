//! The relay's TOML configuration file and its authorization rules.

use super::auth::Policy;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `--config FILE` may set; command-line flags override it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// UDP address to listen on.
    pub bind: Option<SocketAddr>,
    /// TCP address of the HTTP side door (`/metrics`, `/certificate.sha256`, `/healthz`,
    /// `/state`); off when unset.
    pub http: Option<SocketAddr>,
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// Versions accepted, e.g. `["draft-14"]`.
    pub versions: Option<Vec<String>>,
    /// Log filter, e.g. `info` or `moqlink=debug`.
    pub log_level: Option<String>,
    /// Seconds sessions may drain after GOAWAY on shutdown.
    pub drain_secs: Option<u64>,
    /// Milliseconds a SUBSCRIBE waits for its namespace.
    pub namespace_wait_ms: Option<u64>,
    /// Upstream relay URL for requests no local publisher serves (makes this an edge relay).
    pub upstream: Option<String>,
    /// Accept any certificate from the upstream relay.
    pub upstream_tls_disable_verify: Option<bool>,
    /// Cache limits.
    #[serde(default)]
    pub cache: CacheConfig,
    /// The token the relay presents to its upstream relay (AUTHORIZATION_TOKEN in SETUP);
    /// clients' tokens are never forwarded.
    pub upstream_token: Option<String>,
    /// Where no rule applies: `"allow"` or `"deny"` (default: deny once any `[[auth]]` rule
    /// exists, allow when there is none).
    pub auth_default: Option<Policy>,
    /// Authorization rules; none = open relay (with a warning at start-up).
    #[serde(default)]
    pub auth: Vec<AuthRuleConfig>,
    /// Per-session and connection limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Directory for one qlog trace per session (MoQT events, JSON-SEQ); none = off.
    pub qlog_dir: Option<PathBuf>,
    /// Largest qlog file in bytes (default 64 MiB).
    pub qlog_max_bytes: Option<u64>,
}

/// Per-session limits (defaults in [`super::SessionLimits`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Namespaces one session may publish at once (PUBLISH_NAMESPACE, moq-lite ANNOUNCE).
    pub namespaces_per_session: Option<usize>,
    /// Namespace subscriptions one session may hold (SUBSCRIBE_NAMESPACE, ANNOUNCE_PLEASE).
    pub namespace_subscriptions_per_session: Option<usize>,
    /// Subscriptions one session may hold (SUBSCRIBE, moq-lite SUBSCRIBE).
    pub subscriptions_per_session: Option<usize>,
    /// FETCHes one session may have in progress.
    pub fetches_per_session: Option<usize>,
    /// Tracks one session may PUBLISH at once.
    pub published_tracks_per_session: Option<usize>,
    /// Namespace events queued per namespace subscription before it is resynchronised.
    pub namespace_events_queued: Option<usize>,
    /// QUIC connection receive window, bytes.
    pub receive_window: Option<u64>,
    /// QUIC receive window per stream, bytes.
    pub stream_receive_window: Option<u64>,
    /// Concurrent unidirectional streams a peer may open.
    pub max_uni_streams: Option<u32>,
    /// Concurrent bidirectional streams a peer may open.
    pub max_bidi_streams: Option<u32>,
    /// Milliseconds a connection may be silent before it is closed.
    pub idle_timeout_ms: Option<u64>,
    /// Milliseconds between the relay's keep-alive PINGs on a quiet connection; 0 = none.
    pub keep_alive_ms: Option<u64>,
    /// Largest object accepted, bytes.
    pub max_object_size: Option<usize>,
    /// Bytes of partial objects buffered per session.
    pub partial_object_bytes: Option<usize>,
    /// Milliseconds a data stream may take to deliver its header.
    pub header_deadline_ms: Option<u64>,
    /// Largest moq-lite request message, bytes.
    pub lite_max_message: Option<usize>,
    /// Paths one moq-lite ANNOUNCE_INIT may carry.
    pub lite_max_announce_paths: Option<usize>,
    /// Bytes one moq-lite ANNOUNCE_INIT may take.
    pub lite_max_announce_init: Option<usize>,
    /// Requests a draft-14 session may have open at once (its MAX_REQUEST_ID window).
    pub requests_per_session: Option<u64>,
    /// Handshakes in progress at once.
    pub max_handshakes: Option<usize>,
    /// Established sessions at once.
    pub max_sessions: Option<usize>,
    /// Milliseconds a handshake may take.
    pub handshake_timeout_ms: Option<u64>,
    /// Bytes a subscription may hold for a subscriber that does not read.
    pub send_queued_bytes: Option<usize>,
    /// Streams a subscription may have open or opening at once.
    pub send_streams: Option<usize>,
    /// Milliseconds an ended track's streams may take to deliver.
    pub send_drain_ms: Option<u64>,
}

/// Cache limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Groups kept per track.
    pub max_groups: Option<usize>,
    /// Bytes kept per track (payload, extension headers and per-object, per-subgroup and
    /// per-group overhead).
    pub max_bytes_per_track: Option<usize>,
    /// Bytes kept across all tracks, counted the same way.
    pub max_bytes: Option<usize>,
    /// Milliseconds an object may be served from the cache.
    pub max_age_ms: Option<u64>,
}

/// One rule as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthRuleConfig {
    /// Namespace prefix, fields separated by `/`.
    pub prefix: String,
    /// Token values allowed to publish (`*` = anyone).
    #[serde(default)]
    pub publish: Vec<String>,
    /// Token values allowed to subscribe (`*` = anyone).
    #[serde(default)]
    pub subscribe: Vec<String>,
}

impl FileConfig {
    /// Reads and parses a TOML file.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_parses_and_unknown_keys_are_refused() {
        let file: FileConfig = toml::from_str(
            r#"
            upstream = "moqt://origin:4443"
            http = "127.0.0.1:9090"
            upstream_token = "relay-secret"
            auth_default = "deny"
            [cache]
            max_groups = 4
            [limits]
            subscriptions_per_session = 10
            [[auth]]
            prefix = "live"
            subscribe = ["*"]
            "#,
        )
        .unwrap();
        assert_eq!(file.cache.max_groups, Some(4));
        assert_eq!(file.http, Some("127.0.0.1:9090".parse().unwrap()));
        assert_eq!(file.limits.subscriptions_per_session, Some(10));
        assert_eq!(file.auth_default, Some(Policy::Deny));
        assert!(toml::from_str::<FileConfig>("bogus = 1").is_err());
        assert!(toml::from_str::<FileConfig>("[limits]\nbogus = 1").is_err());
        assert!(toml::from_str::<FileConfig>("auth_default = \"maybe\"").is_err());
    }
}
