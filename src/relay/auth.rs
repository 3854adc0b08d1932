//! Who may publish and subscribe where: credentials a session presents (draft-14
//! AUTHORIZATION_TOKENs, or a token in the URL a moq-lite or browser client connected to), and
//! rules per namespace prefix. Tokens are compared in constant time and never printed.

use moqlink_model::TrackNamespace;
use moqlink_transport::session::AuthToken;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// What a rule decides about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// PUBLISH_NAMESPACE, PUBLISH, and moq-lite ANNOUNCE.
    Publish,
    /// SUBSCRIBE, FETCH, TRACK_STATUS, SUBSCRIBE_NAMESPACE, and moq-lite SUBSCRIBE and
    /// ANNOUNCE_PLEASE (checked per namespace they would reveal).
    Subscribe,
}

/// What happens to a namespace no rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Anyone may publish and subscribe.
    #[default]
    Allow,
    /// Nobody may (fail closed).
    Deny,
}

/// Token values a session presents. Its `Debug` shows how many, never what.
#[derive(Clone, Default)]
pub struct Credentials {
    /// Shared: every request and namespace filter of a session holds a copy.
    tokens: Arc<[Vec<u8>]>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({} token(s))", self.tokens.len())
    }
}

/// URL query keys a token may come in: `token`, and `jwt` as moq-dev's relay and clients use.
const QUERY_KEYS: [&str; 2] = ["token", "jwt"];

/// Most tokens one session may present (more are ignored).
const MAX_TOKENS: usize = 16;

impl Credentials {
    /// Credentials from token values.
    pub fn new<I: IntoIterator<Item = Vec<u8>>>(tokens: I) -> Self {
        Credentials {
            tokens: tokens.into_iter().take(MAX_TOKENS).collect(),
        }
    }

    /// The tokens in a URL's query (`?token=...` or `?jwt=...`, percent-encoded), e.g. the
    /// WebTransport request path or the PATH setup parameter.
    pub fn from_url(path_and_query: &str) -> Self {
        Credentials::new(url_tokens(path_and_query))
    }

    /// A session's credentials: the tokens in the URL it connected to (its WebTransport path,
    /// else its PATH setup parameter), then those it presented in SETUP.
    pub fn of_session(url: Option<&str>, setup: impl IntoIterator<Item = Vec<u8>>) -> Self {
        Credentials::new(url.map(url_tokens).into_iter().flatten().chain(setup))
    }

    /// These credentials plus draft-14 AUTHORIZATION_TOKEN values (any token type).
    pub fn with_tokens(&self, tokens: &[AuthToken]) -> Self {
        let more = tokens.iter().map(|t| t.value.to_vec());
        Credentials::new(self.tokens.iter().cloned().chain(more))
    }

    /// Whether any token equals `secret`; every token is compared in full, in constant time
    /// for equal lengths.
    fn presents(&self, secret: &[u8]) -> bool {
        let mut found = subtle::Choice::from(0);
        for t in self.tokens.iter() {
            found |= t.as_slice().ct_eq(secret);
        }
        found.into()
    }
}

/// The `token` / `jwt` values of a URL's query, percent-decoded.
fn url_tokens(path_and_query: &str) -> Vec<Vec<u8>> {
    let Some((_, query)) = path_and_query.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            QUERY_KEYS.contains(&k).then(|| percent_decode(v))
        })
        .take(MAX_TOKENS)
        .collect()
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Who may act on one namespace prefix.
#[derive(Clone)]
struct Rule {
    prefix: TrackNamespace,
    publish: Allowed,
    subscribe: Allowed,
}

#[derive(Clone)]
struct Allowed {
    anyone: bool,
    tokens: Vec<Vec<u8>>,
}

impl Allowed {
    fn new(values: &[String]) -> Self {
        Allowed {
            anyone: values.iter().any(|v| v == "*"),
            tokens: values
                .iter()
                .filter(|v| *v != "*")
                .map(|v| v.as_bytes().to_vec())
                .collect(),
        }
    }

    fn admits(&self, creds: &Credentials) -> bool {
        // Every allowed value is checked, so the time taken says nothing about which matched.
        let mut ok = self.anyone;
        for t in &self.tokens {
            ok |= creds.presents(t);
        }
        ok
    }
}

/// Authorization rules per namespace prefix: the longest matching prefix decides; namespaces
/// no rule covers follow the default policy.
#[derive(Clone, Default)]
pub struct AuthRules {
    /// Shared: every namespace subscription's filter holds a copy.
    rules: Arc<[Rule]>,
    default: Policy,
}

impl std::fmt::Debug for AuthRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AuthRules({} rule(s), default {:?})",
            self.rules.len(),
            self.default
        )
    }
}

impl AuthRules {
    /// Rules from the configuration file; `default` applies where no rule does (when not
    /// given: deny once any rule exists, allow when there are none).
    pub fn new(rules: &[super::config::AuthRuleConfig], default: Option<Policy>) -> Self {
        let default = default.unwrap_or(if rules.is_empty() {
            Policy::Allow
        } else {
            Policy::Deny
        });
        AuthRules {
            rules: rules
                .iter()
                .map(|r| Rule {
                    prefix: TrackNamespace::from_path(&r.prefix),
                    publish: Allowed::new(&r.publish),
                    subscribe: Allowed::new(&r.subscribe),
                })
                .collect(),
            default,
        }
    }

    /// Whether anyone may do anything anywhere (no rule and an allowing default).
    pub fn is_open(&self) -> bool {
        self.rules.is_empty() && self.default == Policy::Allow
    }

    /// Whether `creds` allow `action` on `namespace`.
    pub fn allows(&self, action: Action, namespace: &TrackNamespace, creds: &Credentials) -> bool {
        let Some(rule) = self
            .rules
            .iter()
            .filter(|r| r.prefix.is_prefix_of(namespace))
            .max_by_key(|r| r.prefix.fields().len())
        else {
            return self.default == Policy::Allow;
        };
        match action {
            Action::Publish => rule.publish.admits(creds),
            Action::Subscribe => rule.subscribe.admits(creds),
        }
    }

    /// Whether `creds` may subscribe to namespaces under `prefix` at all: some namespace under
    /// it is allowed. (What a namespace subscription then sees is checked per namespace.)
    pub fn may_subscribe_under(&self, prefix: &TrackNamespace, creds: &Credentials) -> bool {
        if self.allows(Action::Subscribe, prefix, creds) {
            return true;
        }
        self.rules
            .iter()
            .any(|r| prefix.is_prefix_of(&r.prefix) && r.subscribe.admits(creds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::config::FileConfig;

    fn creds(v: &str) -> Credentials {
        Credentials::new([v.as_bytes().to_vec()])
    }

    fn ns(p: &str) -> TrackNamespace {
        TrackNamespace::from_path(p)
    }

    #[test]
    fn longest_prefix_decides_and_uncovered_namespaces_are_denied_once_rules_exist() {
        let file: FileConfig = toml::from_str(
            r#"
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
        let rules = AuthRules::new(&file.auth, file.auth_default);
        let none = Credentials::default();
        assert!(rules.allows(Action::Subscribe, &ns("live/a"), &none));
        assert!(!rules.allows(Action::Publish, &ns("live/a"), &none));
        assert!(rules.allows(Action::Publish, &ns("live/a"), &creds("pub-secret")));
        assert!(!rules.allows(Action::Subscribe, &ns("live/private/x"), &creds("wrong")));
        assert!(rules.allows(
            Action::Subscribe,
            &ns("live/private/x"),
            &creds("sub-secret")
        ));
        // Fail closed: with rules configured and no default, an uncovered namespace is denied.
        assert!(!rules.allows(Action::Publish, &ns("other"), &none));
        assert!(!rules.allows(Action::Subscribe, &ns("other"), &none));
        assert!(!rules.is_open());
        // A token that is a prefix or an extension of the secret is not the secret.
        assert!(!rules.allows(Action::Publish, &ns("live/a"), &creds("pub-secre")));
        assert!(!rules.allows(Action::Publish, &ns("live/a"), &creds("pub-secret!")));
    }

    #[test]
    fn the_default_policy_is_explicit_or_follows_the_rules() {
        let open: FileConfig = toml::from_str("").unwrap();
        assert!(AuthRules::new(&open.auth, open.auth_default).is_open());
        let closed: FileConfig = toml::from_str(r#"auth_default = "deny""#).unwrap();
        let rules = AuthRules::new(&closed.auth, closed.auth_default);
        assert!(!rules.is_open());
        assert!(!rules.allows(Action::Subscribe, &ns("a"), &Credentials::default()));
        let allow: FileConfig = toml::from_str(
            "auth_default = \"allow\"\n[[auth]]\nprefix = \"p\"\nsubscribe = [\"s\"]",
        )
        .unwrap();
        let rules = AuthRules::new(&allow.auth, allow.auth_default);
        assert!(rules.allows(Action::Subscribe, &ns("other"), &Credentials::default()));
        assert!(!rules.allows(Action::Subscribe, &ns("p/x"), &Credentials::default()));
    }

    #[test]
    fn a_namespace_subscription_is_allowed_where_some_namespace_under_it_is() {
        let file: FileConfig = toml::from_str(
            "[[auth]]\nprefix = \"live\"\nsubscribe = [\"*\"]\n[[auth]]\nprefix = \"live/private\"\nsubscribe = [\"s\"]",
        )
        .unwrap();
        let rules = AuthRules::new(&file.auth, None);
        let none = Credentials::default();
        assert!(rules.may_subscribe_under(&ns("live"), &none));
        assert!(!rules.may_subscribe_under(&ns("live/private"), &none));
        // The empty prefix (moq-lite ANNOUNCE_PLEASE "") reaches "live", so it is allowed —
        // and what it then sees is checked namespace by namespace.
        assert!(rules.may_subscribe_under(&TrackNamespace::default(), &none));
        assert!(!rules.may_subscribe_under(&ns("other"), &none));
    }

    #[test]
    fn url_tokens_are_read_from_the_query_and_never_printed() {
        let c = Credentials::from_url("/moq?jwt=a%2Bb&x=1&token=t+1");
        assert!(c.presents(b"a+b"));
        assert!(c.presents(b"t 1"));
        assert!(!c.presents(b"1"));
        assert_eq!(format!("{c:?}"), "Credentials(2 token(s))");
        assert!(Credentials::from_url("/no-query").tokens.is_empty());
        let many: String = (0..100).map(|i| format!("token={i}&")).collect();
        assert_eq!(
            Credentials::from_url(&format!("/?{many}")).tokens.len(),
            MAX_TOKENS
        );
    }
}
