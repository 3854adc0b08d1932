//! `moqlink relay`: run the relay on one UDP port for WebTransport and raw QUIC.

use anyhow::{bail, Context};
use clap::Args;
use moqlink::relay::auth::AuthRules;
use moqlink::relay::config::FileConfig;
use moqlink::relay::{Relay, RelayConfig, SessionLimits, Upstream};
use moqlink_model::Version;
use moqlink_transport::endpoint::{Client, ClientConfig};
use moqlink_transport::session::{SendLimits, SessionConfig};
use moqlink_transport::tls::ClientTls;
use moqlink_transport::tls::ServerIdentity;
use moqlink_transport::track::{ByteBudget, TrackConfig};
use moqlink_transport::ServerLimits;
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
    /// Versions accepted, comma separated (draft-14, lite-02, lite-01, or 0x hex; default all three).
    #[arg(long, value_delimiter = ',')]
    versions: Vec<Version>,
    /// Seconds sessions may drain after GOAWAY on shutdown (default 5).
    #[arg(long)]
    drain_secs: Option<u64>,
    /// TOML file with everything else (versions, cache, upstream, auth rules, log level).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Upstream relay URL (moqt:// or https://): requests no local publisher serves go there.
    #[arg(long)]
    upstream: Option<String>,
    /// Accept any certificate from the upstream relay.
    #[arg(long)]
    tls_disable_verify: bool,
    /// Subgroup streams a subscription may have open or opening at once; bounds what a
    /// subscriber that stops reading pins (overrides `[limits] send_streams`; default 64).
    #[arg(long, value_name = "N")]
    send_streams: Option<usize>,
    /// TCP address of the HTTP side door: /metrics, /certificate.sha256, /healthz, /state
    /// (overrides `http` in the config file; off by default).
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// Write a qlog trace of every session into this directory (overrides `qlog_dir`).
    #[arg(long, value_name = "DIR")]
    qlog_dir: Option<PathBuf>,
    /// Largest qlog file in bytes (overrides `qlog_max_bytes`; default 64 MiB).
    #[arg(long, value_name = "BYTES")]
    qlog_max_bytes: Option<u64>,
}

fn identity(args: &RelayArgs, file: &FileConfig) -> anyhow::Result<ServerIdentity> {
    let runner_cert = PathBuf::from("/certs/cert.pem");
    let runner_key = PathBuf::from("/certs/priv.key");
    let cert = args.cert.clone().or_else(|| file.cert.clone());
    let key = args.key.clone().or_else(|| file.key.clone());
    let files = match (&cert, &key) {
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

/// The configuration file, if any, read before logging starts (it may set the log level).
pub fn load_file(args: &RelayArgs) -> anyhow::Result<FileConfig> {
    match &args.config {
        Some(p) => FileConfig::load(p).map_err(anyhow::Error::msg),
        None => Ok(FileConfig::default()),
    }
}

/// Runs `moqlink relay` until SIGINT or SIGTERM.
pub async fn run(args: RelayArgs, file: FileConfig) -> anyhow::Result<()> {
    if let Ok(role) = std::env::var("MOQT_ROLE") {
        if role != "relay" {
            bail!("MOQT_ROLE={role} is not a role `moqlink relay` plays");
        }
    }
    let bind = match (args.bind.or(file.bind), std::env::var("MOQT_PORT")) {
        (Some(b), _) => b,
        (None, Ok(port)) => format!("[::]:{port}").parse().context("MOQT_PORT")?,
        (None, Err(_)) => "127.0.0.1:4443".parse()?,
    };
    let identity = identity(&args, &file)?;
    let mut versions = args.versions.clone();
    if versions.is_empty() {
        for v in file.versions.iter().flatten() {
            versions.push(v.parse().map_err(anyhow::Error::msg)?);
        }
    }
    if versions.is_empty() {
        versions = vec![Version::DRAFT_14, Version::LITE_02, Version::LITE_01];
    }
    let mut track = TrackConfig::default();
    if let Some(g) = file.cache.max_groups {
        track.max_groups = g;
    }
    if let Some(b) = file.cache.max_bytes_per_track {
        track.max_bytes = b;
    }
    track.max_age = file.cache.max_age_ms.map(Duration::from_millis);
    track.budget = Some(ByteBudget::new(file.cache.max_bytes.unwrap_or(1 << 30)));
    let upstream = match args.upstream.clone().or(file.upstream.clone()) {
        Some(url) => {
            let disable =
                args.tls_disable_verify || file.upstream_tls_disable_verify.unwrap_or(false);
            let tls = if disable {
                ClientTls::DisableVerify
            } else {
                ClientTls::default()
            };
            let client = Client::new(ClientConfig {
                tls,
                ..Default::default()
            })?;
            tracing::info!(%url, "edge relay: forwarding to upstream");
            Some(Upstream {
                url,
                client,
                token: file.upstream_token.clone(),
            })
        }
        None => None,
    };
    let config = RelayConfig {
        bind,
        session: SessionConfig {
            versions,
            send_limits: {
                let mut l = send_limits(&file);
                l.max_streams = args.send_streams.unwrap_or(l.max_streams).max(1);
                l
            },
            request_window: file.limits.requests_per_session.unwrap_or(100),
            qlog: super::common::qlog_config(
                args.qlog_dir.as_ref().or(file.qlog_dir.as_ref()),
                args.qlog_max_bytes.or(file.qlog_max_bytes),
            ),
            ..Default::default()
        },
        server: server_limits(&file),
        drain: Duration::from_secs(args.drain_secs.or(file.drain_secs).unwrap_or(5)),
        namespace_wait: Duration::from_millis(file.namespace_wait_ms.unwrap_or(1000)),
        track,
        auth: AuthRules::new(&file.auth, file.auth_default),
        limits: session_limits(&file),
        upstream,
        http: args.http.or(file.http),
    };
    let relay = Relay::bind(config, &identity)?;
    tracing::info!(addr = %relay.local_addr()?, "relay listening (WebTransport and raw QUIC)");
    relay.run(shutdown_signal()).await?;
    Ok(())
}

/// Per-session limits: the file's, else the defaults.
fn session_limits(file: &FileConfig) -> SessionLimits {
    let l = &file.limits;
    let d = SessionLimits::default();
    SessionLimits {
        namespaces: l.namespaces_per_session.unwrap_or(d.namespaces),
        namespace_subscriptions: l
            .namespace_subscriptions_per_session
            .unwrap_or(d.namespace_subscriptions),
        subscriptions: l.subscriptions_per_session.unwrap_or(d.subscriptions),
        fetches: l.fetches_per_session.unwrap_or(d.fetches),
        published_tracks: l.published_tracks_per_session.unwrap_or(d.published_tracks),
        namespace_events: l.namespace_events_queued.unwrap_or(d.namespace_events),
    }
}

/// Connection-level limits: the file's, else the defaults.
fn server_limits(file: &FileConfig) -> ServerLimits {
    let l = &file.limits;
    let mut s = ServerLimits::default();
    let c = &mut s.connection;
    let ms = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_millis);
    c.receive_window = l.receive_window.unwrap_or(c.receive_window);
    c.stream_receive_window = l.stream_receive_window.unwrap_or(c.stream_receive_window);
    c.max_uni_streams = l.max_uni_streams.unwrap_or(c.max_uni_streams);
    c.max_bi_streams = l.max_bidi_streams.unwrap_or(c.max_bi_streams);
    c.idle_timeout = ms(l.idle_timeout_ms, c.idle_timeout);
    c.keep_alive = match l.keep_alive_ms {
        Some(0) => None,
        Some(v) => Some(Duration::from_millis(v)),
        None => c.keep_alive,
    };
    c.max_object_size = l.max_object_size.unwrap_or(c.max_object_size);
    c.partial_object_bytes = l.partial_object_bytes.unwrap_or(c.partial_object_bytes);
    c.header_deadline = ms(l.header_deadline_ms, c.header_deadline);
    c.lite_max_message = l.lite_max_message.unwrap_or(c.lite_max_message);
    c.lite_max_announce_paths = l
        .lite_max_announce_paths
        .unwrap_or(c.lite_max_announce_paths);
    c.lite_max_announce_init = l.lite_max_announce_init.unwrap_or(c.lite_max_announce_init);
    s.max_handshakes = l.max_handshakes.unwrap_or(s.max_handshakes);
    s.max_sessions = l.max_sessions.unwrap_or(s.max_sessions);
    s.handshake_timeout = ms(l.handshake_timeout_ms, s.handshake_timeout);
    s
}

/// What a subscription may hold for a subscriber that does not read: the file's, else the
/// defaults.
fn send_limits(file: &FileConfig) -> SendLimits {
    let l = &file.limits;
    let d = SendLimits::default();
    SendLimits {
        max_queued_bytes: l.send_queued_bytes.unwrap_or(d.max_queued_bytes),
        max_streams: l.send_streams.unwrap_or(d.max_streams),
        drain_timeout: l
            .send_drain_ms
            .map_or(d.drain_timeout, Duration::from_millis),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_in_relay_toml_reaches_the_relay() {
        let file: FileConfig = toml::from_str(
            r#"
            [limits]
            namespaces_per_session = 1
            namespace_subscriptions_per_session = 2
            subscriptions_per_session = 3
            fetches_per_session = 4
            published_tracks_per_session = 5
            namespace_events_queued = 6
            receive_window = 7
            stream_receive_window = 8
            max_uni_streams = 9
            max_bidi_streams = 10
            idle_timeout_ms = 11
            max_object_size = 12
            partial_object_bytes = 13
            header_deadline_ms = 14
            lite_max_message = 15
            lite_max_announce_paths = 16
            lite_max_announce_init = 17
            requests_per_session = 18
            max_handshakes = 19
            max_sessions = 20
            handshake_timeout_ms = 21
            send_queued_bytes = 22
            send_streams = 23
            send_drain_ms = 24
            keep_alive_ms = 25
            "#,
        )
        .unwrap();
        let s = session_limits(&file);
        assert_eq!(
            (
                s.namespaces,
                s.namespace_subscriptions,
                s.subscriptions,
                s.fetches
            ),
            (1, 2, 3, 4)
        );
        assert_eq!((s.published_tracks, s.namespace_events), (5, 6));
        let v = server_limits(&file);
        let c = &v.connection;
        assert_eq!((c.receive_window, c.stream_receive_window), (7, 8));
        assert_eq!((c.max_uni_streams, c.max_bi_streams), (9, 10));
        assert_eq!(c.idle_timeout, Duration::from_millis(11));
        assert_eq!(c.keep_alive, Some(Duration::from_millis(25)));
        assert_eq!((c.max_object_size, c.partial_object_bytes), (12, 13));
        assert_eq!(c.header_deadline, Duration::from_millis(14));
        assert_eq!(
            (
                c.lite_max_message,
                c.lite_max_announce_paths,
                c.lite_max_announce_init
            ),
            (15, 16, 17)
        );
        assert_eq!((v.max_handshakes, v.max_sessions), (19, 20));
        assert_eq!(v.handshake_timeout, Duration::from_millis(21));
        let d = send_limits(&file);
        assert_eq!((d.max_queued_bytes, d.max_streams), (22, 23));
        assert_eq!(d.drain_timeout, Duration::from_millis(24));
        // Nothing set: the documented defaults.
        let none = FileConfig::default();
        assert_eq!(session_limits(&none).subscriptions, 1024);
        assert_eq!(server_limits(&none).connection.receive_window, 16 << 20);
        assert_eq!(send_limits(&none).max_queued_bytes, 1 << 20);
        let quiet = server_limits(&none).connection;
        assert_eq!(quiet.idle_timeout, Duration::from_secs(10));
        assert_eq!(quiet.keep_alive, Some(Duration::from_secs(4)));
        let off: FileConfig = toml::from_str("[limits]\nkeep_alive_ms = 0").unwrap();
        assert_eq!(server_limits(&off).connection.keep_alive, None);
    }
}
