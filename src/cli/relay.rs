//! `moqlink relay`: run the relay on one UDP port for WebTransport and raw QUIC.

use anyhow::{bail, Context};
use clap::Args;
use moqlink::relay::{Relay, RelayConfig};
use moqlink_model::Version;
use moqlink_transport::session::SessionConfig;
use moqlink_transport::tls::ServerIdentity;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `moqlink relay`.
#[derive(Args, Debug)]
pub struct RelayArgs {
    /// UDP address to listen on (default 127.0.0.1:4443, or [::]:$MOQT_PORT when MOQT_PORT is set).
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// PEM certificate chain (default /certs/cert.pem when it exists).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key (default /certs/priv.key when it exists).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Use a generated self-signed certificate (the default when no certificate is found).
    #[arg(long, conflicts_with = "cert")]
    dev: bool,
    /// Versions accepted, comma separated (draft-14, lite-02, lite-01, or 0x hex).
    #[arg(long, value_delimiter = ',', default_value = "draft-14")]
    versions: Vec<Version>,
    /// Seconds sessions may drain after GOAWAY on shutdown.
    #[arg(long, default_value_t = 5)]
    drain_secs: u64,
}

fn identity(args: &RelayArgs) -> anyhow::Result<ServerIdentity> {
    let runner_cert = PathBuf::from("/certs/cert.pem");
    let runner_key = PathBuf::from("/certs/priv.key");
    let files = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ if !args.dev && runner_cert.exists() && runner_key.exists() => {
            Some((runner_cert, runner_key))
        }
        _ => None,
    };
    match files {
        Some((c, k)) => {
            tracing::info!(cert = %c.display(), key = %k.display(), "loading certificate");
            ServerIdentity::load(&c, &k).with_context(|| format!("loading {}", c.display()))
        }
        None => {
            let id =
                ServerIdentity::self_signed().context("generating a self-signed certificate")?;
            tracing::info!(
                fingerprint = %id.fingerprint(),
                "development certificate (self-signed, localhost; clients need --tls-disable-verify or this fingerprint)"
            );
            Ok(id)
        }
    }
}

/// Runs `moqlink relay` until SIGINT or SIGTERM.
pub async fn run(args: RelayArgs) -> anyhow::Result<()> {
    if let Ok(role) = std::env::var("MOQT_ROLE") {
        if role != "relay" {
            bail!("MOQT_ROLE={role} is not a role `moqlink relay` plays");
        }
    }
    let bind = match (args.bind, std::env::var("MOQT_PORT")) {
        (Some(b), _) => b,
        (None, Ok(port)) => format!("[::]:{port}").parse().context("MOQT_PORT")?,
        (None, Err(_)) => "127.0.0.1:4443".parse()?,
    };
    let identity = identity(&args)?;
    let config = RelayConfig {
        bind,
        session: SessionConfig {
            versions: args.versions.clone(),
            ..Default::default()
        },
        drain: Duration::from_secs(args.drain_secs),
        ..Default::default()
    };
    let relay = Relay::bind(config, &identity)?;
    tracing::info!(addr = %relay.local_addr()?, "relay listening (WebTransport and raw QUIC)");
    relay.run(shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
