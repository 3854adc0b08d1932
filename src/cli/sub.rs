//! `moqlink sub`: subscribe to a track and print each object's payload as one line.

use super::common::{self, ConnectArgs, TrackArgs};
use anyhow::bail;
use bytes::Bytes;
use clap::Args;
use moqlink_model::codes::PublishDoneCode;
use moqlink_model::control::Filter;
use moqlink_model::data::ObjectStatus;
use moqlink_model::SessionErrorCode;
use moqlink_transport::session::SubscribeOptions;
use moqlink_transport::track::{SubgroupEnd, TrackConfig, TrackConsumer, TrackItem};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Arguments of `moqlink sub`.
#[derive(Args, Debug)]
pub struct SubArgs {
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(flatten)]
    track: TrackArgs,
    /// Exit after printing this many objects.
    #[arg(long)]
    count: Option<u64>,
    /// Which objects: largest, next-group, absolute:G[/O], or range:G[/O]-E (E = last group).
    #[arg(long, default_value = "largest", value_parser = parse_filter)]
    filter: Filter,
    /// Subscriber priority (0 = most important).
    #[arg(long, default_value_t = 128)]
    priority: u8,
}

/// Parses a `--filter` value.
pub fn parse_filter(s: &str) -> Result<Filter, String> {
    match s {
        "largest" | "largest-object" => return Ok(Filter::LargestObject),
        "next-group" | "next-group-start" => return Ok(Filter::NextGroupStart),
        _ => {}
    }
    if let Some(start) = s.strip_prefix("absolute:") {
        return Ok(Filter::AbsoluteStart {
            start: common::parse_location(start)?,
        });
    }
    if let Some(range) = s.strip_prefix("range:") {
        let (start, end) = range
            .split_once('-')
            .ok_or_else(|| format!("{s:?}: expected range:G/O-E"))?;
        let start = common::parse_location(start)?;
        let end_group: u64 = end
            .trim()
            .parse()
            .map_err(|_| format!("end group {end:?} is not a number"))?;
        if end_group < start.group {
            return Err(format!(
                "end group {end_group} is before start group {}",
                start.group
            ));
        }
        return Ok(Filter::AbsoluteRange { start, end_group });
    }
    Err(format!(
        "{s:?}: expected largest, next-group, absolute:G/O or range:G/O-E"
    ))
}

/// Runs `moqlink sub`.
pub async fn run(args: SubArgs) -> anyhow::Result<()> {
    let (session, events) = if super::lite::wants_lite(&args.conn) {
        match super::lite::connect(&args.conn).await? {
            super::lite::Connected::Lite(s, _events) => {
                return super::lite::subscribe(s, args.track.name(), args.priority, args.count)
                    .await
            }
            super::lite::Connected::Ietf(moqlink_transport::session::Accepted::Ietf(s, e)) => {
                (s, e)
            }
            super::lite::Connected::Ietf(_) => anyhow::bail!("unexpected profile"),
        }
    } else {
        args.conn.connect().await?
    };
    let answering = common::answer_requests(session.clone(), events, None, Default::default());
    let name = args.track.name();
    let sub = match session
        .subscribe(
            name.clone(),
            SubscribeOptions {
                subscriber_priority: args.priority,
                filter: args.filter,
                track: TrackConfig {
                    max_groups: 64,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
    {
        Ok(s) => s,
        Err(e) => {
            answering.abort();
            common::close(&session).await;
            return Err(common::request_failed("SUBSCRIBE", e));
        }
    };
    tracing::info!(
        track = %name,
        alias = sub.track_alias(),
        largest = ?sub.largest(),
        "subscribed"
    );
    let (tx, mut rx) = mpsc::channel::<Bytes>(1024);
    let reader = tokio::spawn(read_track(sub.consumer(), tx));
    let mut printed = 0u64;
    let mut count_reached = args.count == Some(0);
    let mut track_ended = false;
    while !count_reached {
        let Some(payload) = rx.recv().await else {
            track_ended = true;
            break;
        };
        if let Err(e) = common::print_line(&payload) {
            tracing::info!(error = %e, "stdout closed, stopping");
            break;
        }
        printed += 1;
        count_reached = args.count.is_some_and(|n| printed >= n);
    }
    reader.abort();
    answering.abort();
    let outcome = if !track_ended {
        tracing::info!(objects = printed, "done, unsubscribing");
        sub.unsubscribe().await;
        Ok(())
    } else {
        ended(&session, sub.publish_done(), printed)
    };
    common::close(&session).await;
    outcome
}

/// Reads subgroups concurrently and datagrams in arrival order, forwarding every normal object's
/// payload; a subgroup's objects keep their order.
pub(crate) async fn read_track(mut consumer: TrackConsumer, tx: mpsc::Sender<Bytes>) {
    let mut subgroups = JoinSet::new();
    while let Some(item) = consumer.next().await {
        match item {
            TrackItem::Subgroup(mut sc) => {
                let tx = tx.clone();
                subgroups.spawn(async move {
                    let info = sc.info();
                    loop {
                        match sc.next().await {
                            Ok(o) if o.status == ObjectStatus::Normal => {
                                if tx.send(o.payload).await.is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(SubgroupEnd::Finished) => return,
                            Err(end) => {
                                tracing::warn!(
                                    group = info.group,
                                    subgroup = info.subgroup,
                                    ?end,
                                    "subgroup cut short"
                                );
                                return;
                            }
                        }
                    }
                });
            }
            TrackItem::Datagram { object, .. } => {
                if object.status == ObjectStatus::Normal && tx.send(object.payload).await.is_err() {
                    return;
                }
            }
        }
        while subgroups.try_join_next().is_some() {}
    }
    while subgroups.join_next().await.is_some() {}
}

/// How the subscription ended, as the exit status: PUBLISH_DONE with TRACK_ENDED or
/// SUBSCRIPTION_ENDED (or the peer closing with NO_ERROR) is success.
fn ended(
    session: &moqlink::AnySession,
    done: Option<moqlink_model::control::PublishDone>,
    printed: u64,
) -> anyhow::Result<()> {
    if let Some(close) = session.close_reason() {
        if close.code == SessionErrorCode::NoError.code() {
            tracing::info!(objects = printed, %close, "session ended");
            return Ok(());
        }
        bail!("session ended before PUBLISH_DONE: {close}");
    }
    let Some(done) = done else {
        bail!("subscription ended without PUBLISH_DONE");
    };
    let name = common::publish_done_name(done.status_code);
    if done.status_code == PublishDoneCode::TrackEnded.code()
        || done.status_code == PublishDoneCode::SubscriptionEnded.code()
    {
        tracing::info!(
            objects = printed,
            status = name,
            reason = %done.reason,
            "PUBLISH_DONE"
        );
        Ok(())
    } else {
        bail!(
            "subscription ended: PUBLISH_DONE status 0x{:x} {name}, reason {:?}",
            done.status_code,
            done.reason.to_string()
        )
    }
}
