//! The receiving half of a subscription: subgroup streams and datagrams written into its
//! track until PUBLISH_DONE and the streams it counts, UNSUBSCRIBE, or the session's end.

use super::incoming::Followups;
use super::subscriber::Command;
use super::Session;
use crate::connection::Connection;
use crate::data::{IncomingSubgroup, SubgroupEvent, TrackData};
use crate::track::{Object, SubgroupInfo, SubgroupProducer, TrackEnd, TrackProducer};
use moqlink_model::codes::PublishDoneCode;
use moqlink_model::control::*;
use moqlink_model::data::{reset_code, SubgroupIdMode};
use moqlink_model::{Blob, Location};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// How long a subscription waits for late streams after PUBLISH_DONE (§9.12).
const DONE_GRACE: Duration = Duration::from_secs(2);

/// Writes everything received for a subscription into its track, until PUBLISH_DONE and the
/// streams it counts, UNSUBSCRIBE, or the session's end.
#[allow(clippy::too_many_arguments)]
pub(super) async fn receive<C: Connection>(
    session: Session<C>,
    track: TrackProducer,
    mut data: TrackData,
    mut followups: Followups,
    mut cmd: mpsc::Receiver<Command>,
    done_tx: watch::Sender<Option<PublishDone>>,
    alias: u64,
    owned: bool,
) {
    let mut streams = JoinSet::new();
    let (mut seen, mut finished) = (0u64, 0u64);
    let mut done: Option<PublishDone> = None;
    let deadline = tokio::time::sleep(Duration::from_secs(u64::MAX / 4));
    tokio::pin!(deadline);
    let end = loop {
        if let Some(d) = &done {
            if finished >= d.stream_count && seen >= d.stream_count {
                break Some(d.clone());
            }
        }
        tokio::select! {
            sub = data.subgroups.recv() => match sub {
                Some(sub) => {
                    seen += 1;
                    streams.spawn(ingest(track.clone(), sub));
                }
                None => break done.clone(),
            },
            Some(d) = data.datagrams.recv() => write_datagram(&track, d),
            Some(_) = streams.join_next(), if !streams.is_empty() => finished += 1,
            msg = followups.next() => match msg {
                Some(ControlMessage::PublishDone(d)) => {
                    tracing::debug!(status = d.status_code, streams = d.stream_count, "PUBLISH_DONE");
                    deadline.as_mut().reset(tokio::time::Instant::now() + DONE_GRACE);
                    let _ = done_tx.send(Some(d.clone()));
                    done = Some(d);
                }
                Some(other) => tracing::debug!(msg = other.message_type().name(), "ignored for a subscription"),
                None => break done.clone(),
            },
            _ = &mut deadline, if done.is_some() => break done.clone(),
            // This task holds the session, so its routes never close by themselves: watch the
            // session's end, which ends every subscription on it.
            _ = session.closed() => break done.clone(),
            Some(Command::Unsubscribe) = cmd.recv() => {
                if done.is_none() && session.close_reason().is_none() {
                    let _ = session
                        .send(ControlMessage::Unsubscribe(RequestRef { request_id: followups.id() }))
                        .await;
                }
                streams.abort_all();
                break Some(PublishDone {
                    request_id: followups.id(),
                    status_code: PublishDoneCode::InternalError.code(),
                    stream_count: seen,
                    reason: Blob::from("unsubscribed"),
                });
            }
        }
    };
    // Datagrams already queued belong to the subscription too (they may arrive after the last
    // stream); keep them, briefly waiting for stragglers once PUBLISH_DONE was seen.
    if done.is_some() {
        let grace = tokio::time::sleep(DATAGRAM_GRACE);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                Some(d) = data.datagrams.recv() => write_datagram(&track, d),
                _ = &mut grace => break,
            }
        }
    }
    while let Ok(d) = data.datagrams.try_recv() {
        write_datagram(&track, d);
    }
    session.data().unregister_track(alias);
    let end = end.unwrap_or(PublishDone {
        request_id: followups.id(),
        status_code: PublishDoneCode::InternalError.code(),
        stream_count: seen,
        reason: Blob::from("session ended"),
    });
    if owned {
        track.finish(TrackEnd {
            status: PublishDoneCode::from_code(end.status_code),
            reason: end.reason.to_string(),
        });
    }
    let _ = done_tx.send_if_modified(|d| {
        if d.is_none() {
            *d = Some(end);
            true
        } else {
            false
        }
    });
}

/// How long datagrams may still trail PUBLISH_DONE.
const DATAGRAM_GRACE: Duration = Duration::from_millis(100);

/// Writes a received datagram into the track.
fn write_datagram(track: &TrackProducer, d: moqlink_model::data::ObjectDatagram) {
    let object = Object {
        id: d.object_id,
        status: d.status(),
        extensions: d.extensions.clone().unwrap_or_default(),
        payload: match &d.body {
            moqlink_model::data::DatagramBody::Payload(p) => p.bytes().clone(),
            moqlink_model::data::DatagramBody::Status(_) => bytes::Bytes::new(),
        },
    };
    track.write_datagram(d.group_id, d.publisher_priority, object);
}

/// Writes one incoming subgroup stream into the track.
async fn ingest(track: TrackProducer, mut sub: IncomingSubgroup) {
    let h = sub.header;
    // Unless the stream ends with FIN, the subgroup ends reset, never finished: a stream cut
    // by a reset, a lost connection, UNSUBSCRIBE or a dropped task may have carried only part
    // of it (§10.4.2).
    let mut producer: Option<SubgroupProducer> = None;
    while let Some(ev) = sub.next().await {
        match ev {
            SubgroupEvent::Begun(id) => track.note_largest(Location::new(h.group_id, id)),
            SubgroupEvent::Object(o) => {
                let p = producer.get_or_insert_with(|| {
                    let subgroup = h.subgroup_id(Some(o.object_id)).unwrap_or(o.object_id);
                    let info = SubgroupInfo {
                        group: h.group_id,
                        subgroup,
                        priority: h.publisher_priority,
                        mode: match h.subgroup_id {
                            SubgroupIdMode::Explicit(_) => SubgroupIdMode::Explicit(subgroup),
                            m => m,
                        },
                        extensions: h.extensions_present,
                        end_of_group: h.end_of_group,
                    };
                    track
                        .join_subgroup(info)
                        .reset_on_drop(reset_code::CANCELLED)
                });
                let object = Object {
                    id: o.object_id,
                    status: o.status,
                    extensions: o.extensions,
                    payload: o.payload.0,
                };
                if let Err(e) = p.write(object) {
                    tracing::debug!(error = %e, "object refused by the track");
                    sub.stop(reset_code::INTERNAL_ERROR);
                    return;
                }
            }
            SubgroupEvent::Finished => {
                if let Some(p) = producer.take() {
                    p.finish();
                }
                return;
            }
            SubgroupEvent::Reset(code) => {
                if let Some(p) = producer.take() {
                    p.reset(code);
                }
                return;
            }
        }
    }
    // The stream went away without saying how it ended: not a clean end.
    if let Some(p) = producer.take() {
        p.reset(reset_code::INTERNAL_ERROR);
    }
}
