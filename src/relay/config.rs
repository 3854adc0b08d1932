//! The relay's TOML configuration file and its authorization rules.

use moqlink_model::TrackNamespace;
use moqlink_transport::session::AuthToken;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `--config FILE` may set; command-line flags override it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// UDP address to listen on.
    pub bind: Option<SocketAddr>,
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
    /// Authorization rules; none = open relay.
    #[serde(default)]
    pub auth: Vec<AuthRuleConfig>,
}

/// Cache limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Groups kept per track.
    pub max_groups: Option<usize>,
    /// Payload bytes kept per track.
    pub max_bytes_per_track: Option<usize>,
    /// Payload bytes kept across all tracks.
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

/// What a rule decides about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// PUBLISH_NAMESPACE and PUBLISH.
    Publish,
    /// SUBSCRIBE, FETCH, TRACK_STATUS and SUBSCRIBE_NAMESPACE.
    Subscribe,
}

/// Authorization rules per namespace prefix: the longest matching prefix decides; namespaces
/// no rule covers are open.
#[derive(Debug, Clone, Default)]
pub struct AuthRules {
    rules: Vec<(TrackNamespace, Vec<String>, Vec<String>)>,
}

impl AuthRules {
    /// Rules from the configuration file.
    pub fn new(rules: &[AuthRuleConfig]) -> Self {
        AuthRules {
            rules: rules
                .iter()
                .map(|r| {
                    (
                        TrackNamespace::from_path(&r.prefix),
                        r.publish.clone(),
                        r.subscribe.clone(),
                    )
                })
                .collect(),
        }
    }

    /// Whether `tokens` allow `action` on `namespace`.
    pub fn allows(&self, action: Action, namespace: &TrackNamespace, tokens: &[AuthToken]) -> bool {
        let Some((_, publish, subscribe)) = self
            .rules
            .iter()
            .filter(|(p, _, _)| p.is_prefix_of(namespace))
            .max_by_key(|(p, _, _)| p.fields().len())
        else {
            return true;
        };
        let allowed = match action {
            Action::Publish => publish,
            Action::Subscribe => subscribe,
        };
        allowed.iter().any(|a| {
            a == "*"
                || tokens
                    .iter()
                    .any(|t| t.value.as_text().is_some_and(|v| v == a))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moqlink_model::Blob;

    #[test]
    fn longest_prefix_decides_and_uncovered_namespaces_are_open() {
        let file: FileConfig = toml::from_str(
            r#"
            upstream = "moqt://origin:4443"
            [cache]
            max_groups = 4
            [[auth]]
            prefix = "live"
            publish = ["pub-secret"]
            subscribe = ["*"]
            [[auth]]
            prefix = "live/private"
            publish = ["pub-secret"]
            subscribe = ["sub-secret"]
            "#,
        )
        .unwrap();
        assert_eq!(file.cache.max_groups, Some(4));
        let rules = AuthRules::new(&file.auth);
        let tok = |v: &str| {
            vec![AuthToken {
                token_type: 0,
                value: Blob::from(v),
            }]
        };
        let ns = |p: &str| TrackNamespace::from_path(p);
        assert!(rules.allows(Action::Subscribe, &ns("live/a"), &[]));
        assert!(!rules.allows(Action::Publish, &ns("live/a"), &[]));
        assert!(rules.allows(Action::Publish, &ns("live/a"), &tok("pub-secret")));
        assert!(!rules.allows(Action::Subscribe, &ns("live/private/x"), &tok("wrong")));
        assert!(rules.allows(Action::Subscribe, &ns("live/private/x"), &tok("sub-secret")));
        assert!(rules.allows(Action::Publish, &ns("other"), &[]));
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<FileConfig>("bogus = 1").is_err());
    }
}
