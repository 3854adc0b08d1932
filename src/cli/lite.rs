//! `moqlink pub` and `moqlink sub` over moq-lite, when SETUP chooses a lite version.

use super::common::{self, ConnectArgs};
use anyhow::Context;
use moqlink_model::SessionErrorCode;
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::endpoint::{Client, ClientConfig};
use moqlink_transport::lite::{path_of, LiteEvent, LiteSession};
use moqlink_transport::session::{Accepted, ClientTarget, Session};
use moqlink_transport::track::{TrackConfig, TrackName, TrackProducer};
use std::time::Duration;
use tokio::sync::mpsc;

/// A session of whichever profile SETUP chose.
pub enum Connected {
    /// draft-14.
    Ietf(Accepted<AnyConnection>),
    /// moq-lite.
    Lite(
        LiteSession<AnyConnection>,
        mpsc::Receiver<LiteEvent<AnyConnection>>,
    ),
}

/// Whether the command should negotiate with `connect_any` (a lite version offered, or moql://).
pub fn wants_lite(args: &ConnectArgs) -> bool {
    args.url.starts_with("moql://") || args.versions.iter().any(|v| v.is_lite())
}

/// Connects and completes SETUP, accepting either profile.
pub async fn connect(args: &ConnectArgs) -> anyhow::Result<Connected> {
    let client = Client::new(ClientConfig {
        tls: args.tls(),
        ..Default::default()
    })
    .context("setting up TLS")?;
    let mut versions = args.versions.clone();
    if args.url.starts_with("moql://") {
        versions.retain(|v| v.is_lite());
        if versions.is_empty() {
            versions = vec![
                moqlink_model::Version::LITE_02,
                moqlink_model::Version::LITE_01,
            ];
        }
    }
    let connected = client
        .connect(&args.url)
        .await
        .with_context(|| format!("connecting to {}", args.url))?;
    let target = connected.setup.map(ClientTarget::from).unwrap_or_default();
    let cfg = args.session_config(versions);
    let accepted = Session::connect_any(connected.conn, cfg, target)
        .await
        .with_context(|| format!("SETUP with {}", args.url))?;
    Ok(match accepted {
        Accepted::Lite(s, rx) => {
            tracing::info!(url = %args.url, version = %s.version().label(), "moq-lite session established");
            Connected::Lite(s, rx)
        }
        other => Connected::Ietf(other),
    })
}

/// `moqlink sub` over lite: prints each frame as a line.
pub async fn subscribe(
    session: LiteSession<AnyConnection>,
    name: TrackName,
    priority: u8,
    count: Option<u64>,
) -> anyhow::Result<()> {
    let path = path_of(&name.namespace);
    let sub = session
        .subscribe(&path, &name.name, priority, TrackConfig::default())
        .await
        .map_err(|e| common::request_failed("SUBSCRIBE", e))?;
    tracing::info!(broadcast = %path, track = %name.name, "subscribed (moq-lite)");
    let (tx, mut rx) = mpsc::channel(1024);
    let reader = tokio::spawn(super::sub::read_track(
        sub.track().consume(Default::default(), None),
        tx,
    ));
    let mut printed = 0u64;
    while count.is_none_or(|n| printed < n) {
        let Some(payload) = rx.recv().await else {
            break;
        };
        if common::print_line(&payload).is_err() {
            break;
        }
        printed += 1;
    }
    reader.abort();
    drop(sub);
    tokio::time::sleep(Duration::from_millis(50)).await;
    session.close(SessionErrorCode::NoError, "");
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

/// Answers the lite peer for `pub`: our broadcast in ANNOUNCE_INIT, SUBSCRIBE for our track
/// served from `track`, anything else refused.
pub fn answer(
    events: mpsc::Receiver<LiteEvent<AnyConnection>>,
    track: TrackProducer,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(moqlink_transport::lite::serve_track(events, track, None))
}
