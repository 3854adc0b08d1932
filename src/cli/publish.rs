//! `moqlink pub`: publish stdin as a track, one object per line.

use super::common::{self, ConnectArgs, Served, TrackArgs};
use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{ArgAction, Args, ValueEnum};
use moqlink::AnySession;
use moqlink_model::codes::PublishDoneCode;
use moqlink_model::data::SubgroupIdMode;
use moqlink_model::params::VersionParameters;
use moqlink_model::GroupOrder;
use moqlink_transport::track::{
    Object, SubgroupInfo, SubgroupProducer, TrackConfig, TrackEnd, TrackProducer,
};
use std::io::BufRead;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long subscribers get to receive the last objects after the end of input.
const LINGER: Duration = Duration::from_secs(1);

/// How long the last datagrams get before PUBLISH_DONE: a subscriber may stop listening for a
/// track's datagrams as soon as PUBLISH_DONE arrives, and datagrams are not ordered with it.
const DATAGRAM_SETTLE: Duration = Duration::from_millis(250);

/// Groups kept for late subscribers and FETCH.
const HISTORY_GROUPS: usize = 1024;

/// Group order on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OrderArg {
    /// Ascending group IDs.
    Ascending,
    /// Descending group IDs.
    Descending,
}

impl From<OrderArg> for GroupOrder {
    fn from(o: OrderArg) -> Self {
        match o {
            OrderArg::Ascending => GroupOrder::Ascending,
            OrderArg::Descending => GroupOrder::Descending,
        }
    }
}

/// Arguments of `moqlink pub`.
#[derive(Args, Debug)]
pub struct PubArgs {
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    track: TrackArgs,
    /// Objects per group: a new group (and subgroup stream) starts every N lines.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    objects_per_group: u64,
    /// Send objects as datagrams instead of subgroup streams.
    #[arg(long)]
    datagrams: bool,
    /// Publisher priority of every object (0 = most important).
    #[arg(long, default_value_t = 128)]
    priority: u8,
    /// Group order reported to subscribers.
    #[arg(long, value_enum, default_value = "ascending")]
    group_order: OrderArg,
    /// Send PUBLISH_NAMESPACE for the namespace (SUBSCRIBE, FETCH and TRACK_STATUS for the track
    /// are answered either way).
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    announce: bool,
    /// Also send PUBLISH for the track and wait for PUBLISH_OK before reading stdin.
    #[arg(long)]
    publish: bool,
}

/// Runs `moqlink pub`.
pub async fn run(args: PubArgs) -> anyhow::Result<()> {
    let name = args.track.name();
    let track = TrackProducer::new(
        name.clone(),
        TrackConfig {
            max_groups: HISTORY_GROUPS,
            ..Default::default()
        },
    );
    track.set_group_order(args.group_order.into());
    let (session, events) = if super::lite::wants_lite(&args.conn) {
        match super::lite::connect(&args.conn).await? {
            super::lite::Connected::Lite(s, events) => {
                let answering = super::lite::answer(events, track.clone());
                let sent = tokio::select! {
                    r = read_stdin(&args, &track) => r?,
                    close = s.closed() => bail!("session ended while reading stdin: {close}"),
                };
                tracing::info!(objects = sent, "end of input, ending the track");
                track.finish(TrackEnd {
                    status: PublishDoneCode::TrackEnded,
                    reason: "end of input".into(),
                });
                tokio::time::sleep(LINGER).await;
                answering.abort();
                s.close(moqlink_model::SessionErrorCode::NoError, "");
                tokio::time::sleep(Duration::from_millis(50)).await;
                return Ok(());
            }
            super::lite::Connected::Ietf(moqlink_transport::session::Accepted::Ietf(s, e)) => {
                (s, e)
            }
            super::lite::Connected::Ietf(_) => bail!("unexpected profile"),
        }
    } else {
        args.conn.connect().await?
    };
    let served = Served::default();
    let answering =
        common::answer_requests(session.clone(), events, Some(track.clone()), served.clone());
    let result = publish(&args, &session, &track, &served).await;
    answering.abort();
    common::close(&session).await;
    result
}

async fn publish(
    args: &PubArgs,
    session: &AnySession,
    track: &TrackProducer,
    served: &Served,
) -> anyhow::Result<()> {
    let name = track.name().clone();
    let announcement = if args.announce {
        let ns = session
            .publish_namespace(name.namespace.clone(), VersionParameters::new())
            .await
            .map_err(|e| common::request_failed("PUBLISH_NAMESPACE", e))?;
        tracing::info!(namespace = %name.namespace, "namespace published");
        Some(ns)
    } else {
        None
    };
    let publication = if args.publish {
        let p = session
            .publish(track, true, VersionParameters::new())
            .await
            .map_err(|e| common::request_failed("PUBLISH", e))?;
        tracing::info!(track = %name, forward = p.ok.forward, "PUBLISH accepted");
        Some(p)
    } else {
        None
    };
    let sent = tokio::select! {
        r = read_stdin(args, track) => r?,
        close = session.closed() => bail!("session ended while reading stdin: {close}"),
    };
    tracing::info!(objects = sent, "end of input, ending the track");
    if args.datagrams && sent > 0 {
        tokio::time::sleep(DATAGRAM_SETTLE).await;
    }
    track.finish(TrackEnd {
        status: PublishDoneCode::TrackEnded,
        reason: "end of input".into(),
    });
    // Subscribers get a moment to receive the last objects and PUBLISH_DONE: until every
    // subscription is over, or LINGER.
    let deadline = tokio::time::Instant::now() + LINGER;
    if let Some(p) = &publication {
        let _ = tokio::time::timeout_at(deadline, p.done()).await;
    }
    if args.announce || served.count() > 0 {
        while !served.all_done()
            && session.close_reason().is_none()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tracing::debug!(subscriptions = served.count(), "subscriptions served");
    if let Some(ns) = announcement {
        if session.close_reason().is_none() {
            ns.done()
                .await
                .map_err(|e| common::request_failed("PUBLISH_NAMESPACE_DONE", e))?;
        }
    }
    if let Some(close) = session.close_reason() {
        if close.code != moqlink_model::SessionErrorCode::NoError.code() {
            bail!("session ended: {close}");
        }
    }
    Ok(())
}

/// Reads stdin on its own thread (a blocked read never holds up the runtime's shutdown) and
/// hands over one line at a time, without its newline.
fn stdin_lines() -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if tx.blocking_send(Ok(line)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}

/// Writes each stdin line as one object; returns how many.
async fn read_stdin(args: &PubArgs, track: &TrackProducer) -> anyhow::Result<u64> {
    let mut lines = stdin_lines();
    let (mut group, mut object, mut count) = (0u64, 0u64, 0u64);
    let mut subgroup: Option<SubgroupProducer> = None;
    while let Some(line) = lines.recv().await {
        let payload = Bytes::from(line.context("reading stdin")?);
        if args.datagrams {
            track.write_datagram(group, args.priority, Object::new(object, payload));
        } else {
            let sg = subgroup.get_or_insert_with(|| {
                track.create_subgroup(SubgroupInfo {
                    group,
                    subgroup: 0,
                    priority: args.priority,
                    mode: SubgroupIdMode::Zero,
                    extensions: false,
                    end_of_group: false,
                })
            });
            sg.write(Object::new(object, payload))
                .context("writing an object")?;
        }
        tracing::debug!(group, object, "object");
        count += 1;
        object += 1;
        if object == args.objects_per_group {
            (group, object) = (group + 1, 0);
            if let Some(sg) = subgroup.take() {
                sg.finish();
            }
        }
    }
    if let Some(sg) = subgroup.take() {
        sg.finish();
    }
    Ok(count)
}
