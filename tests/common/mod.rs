//! What the relay tests share: a relay on an ephemeral loopback port and a client for it.
#![allow(dead_code)]

use moqlink::relay::auth::AuthRules;
use moqlink::relay::config::AuthRuleConfig;
use moqlink::relay::{Relay, RelayConfig, SessionLimits};
use moqlink_model::params::VersionParameters;
use moqlink_model::{Blob, TrackNamespace, Version};
use moqlink_transport::client::{connect, AnySession};
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::endpoint::{Client, ClientConfig};
use moqlink_transport::session::{
    IncomingEvent, NamespaceSubscription, SessionConfig, SessionError,
};
use moqlink_transport::tls::{ClientTls, ServerIdentity};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::oneshot;

/// How long a test waits for anything.
pub const T: Duration = Duration::from_secs(5);

pub fn client() -> Client {
    Client::new(ClientConfig {
        tls: ClientTls::DisableVerify,
        ..Default::default()
    })
    .unwrap()
}

pub struct Running {
    pub addr: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.addr.port())
    }
}

pub fn start(mut config: RelayConfig) -> Running {
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.namespace_wait = Duration::from_millis(200);
    config.drain = Duration::from_millis(300);
    let relay = Relay::bind(config, &ServerIdentity::self_signed().unwrap()).unwrap();
    let addr = relay.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        relay
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

pub async fn subscriber(url: &str) -> AnySession {
    connect(&client(), url, SessionConfig::default())
        .await
        .unwrap()
        .0
}

pub fn rule(prefix: &str, publish: &[&str], subscribe: &[&str]) -> AuthRuleConfig {
    AuthRuleConfig {
        prefix: prefix.into(),
        publish: publish.iter().map(|s| s.to_string()).collect(),
        subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
    }
}

/// A relay accepting draft-14 and moq-lite, as `moqlink relay` does by default.
pub fn both() -> RelayConfig {
    let mut config = RelayConfig::default();
    config.session.versions = vec![Version::DRAFT_14, Version::LITE_02, Version::LITE_01];
    config
}

pub fn with_rules(rules: &[AuthRuleConfig]) -> RelayConfig {
    RelayConfig {
        auth: AuthRules::new(rules, None),
        ..both()
    }
}

/// A relay holding each session to `limits`.
pub fn limited(limits: SessionLimits) -> RelayConfig {
    RelayConfig {
        limits,
        ..Default::default()
    }
}

/// A session subscribed to the namespaces under `prefix`: the session, its events, and the
/// subscription (dropping it unsubscribes).
pub async fn watch(
    url: &str,
    prefix: &str,
) -> (
    AnySession,
    mpsc::Receiver<IncomingEvent>,
    NamespaceSubscription<AnyConnection>,
) {
    let (watcher, events) = session(url, "").await;
    let sub = watcher
        .subscribe_namespace(TrackNamespace::from_path(prefix), VersionParameters::new())
        .await
        .unwrap();
    (watcher, events, sub)
}

/// A draft-14 session presenting `token` in CLIENT_SETUP (none when empty).
pub async fn session(url: &str, token: &str) -> (AnySession, mpsc::Receiver<IncomingEvent>) {
    let cfg = SessionConfig {
        auth_tokens: (!token.is_empty())
            .then(|| Blob::from(token))
            .into_iter()
            .collect(),
        ..Default::default()
    };
    connect(&client(), url, cfg).await.unwrap()
}

pub fn rejected(err: &SessionError) -> Option<(u64, String)> {
    match err {
        SessionError::Rejected { code, reason, .. } => Some((*code, reason.clone())),
        _ => None,
    }
}
