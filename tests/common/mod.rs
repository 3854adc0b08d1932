//! What the relay tests share: a relay on an ephemeral loopback port and a client for it.
#![allow(dead_code)]

use moqlink::relay::{Relay, RelayConfig};
use moqlink_transport::client::{connect, AnySession};
use moqlink_transport::endpoint::{Client, ClientConfig};
use moqlink_transport::session::SessionConfig;
use moqlink_transport::tls::{ClientTls, ServerIdentity};
use std::net::SocketAddr;
use std::time::Duration;
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
