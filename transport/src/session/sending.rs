//! Sending a served subscription's objects: one task per subgroup stream, bounded per
//! subscription by a [`Backlog`] (issue 10), and a fetch's objects on its fetch stream.
//!
//! A subscriber that stops reading costs at most [`SendLimits`]: whole old groups are dropped
//! (streams reset with DELIVERY_TIMEOUT, §9.2.1.2 / §10.4.3) and groups older than the newest
//! are not opened. Every wait of a stream task (for an object, for the stream to open, for
//! flow control) also watches its ticket, so UNSUBSCRIBE, the session's end and the end of the
//! drain after the track's end reset the streams and return at once.

use super::incoming::Followups;
use super::publisher::widens;
use super::Session;
use crate::connection::Connection;
use crate::data::{stream_priority, Backlog, SendLimits, SendTotals, SubgroupWriter, Ticket};
use crate::track::{SubgroupConsumer, SubgroupEnd, TrackConsumer, TrackItem};
use moqlink_model::codes::PublishDoneCode;
use moqlink_model::control::*;
use moqlink_model::data::{
    reset_code, DatagramBody, Extensions, FetchObject, ObjectDatagram, SubgroupHeader,
    SubgroupIdMode, SubgroupObject,
};
use moqlink_model::{Blob, GroupOrder, SessionErrorCode};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The subscription's terms as the sender applies them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Terms {
    pub(crate) alias: u64,
    pub(crate) subscriber_priority: u8,
    pub(crate) order: GroupOrder,
    pub(crate) forward: bool,
    pub(crate) delivery_timeout: Option<Duration>,
}

impl<C: Connection> Session<C> {
    /// What this session's served subscriptions hold now for their subscribers (object bytes
    /// not yet handed to the transport, streams open or opening), bounded per subscription by
    /// [`SessionConfig::send_limits`](super::SessionConfig::send_limits).
    pub fn sending(&self) -> &SendTotals {
        &self.inner.sending
    }
}

/// Sends a datagram object of a subscription.
fn send_datagram<C: Connection>(
    session: &Session<C>,
    terms: &Terms,
    group: u64,
    priority: u8,
    object: crate::track::Object,
    stats: Option<&std::sync::Arc<crate::stats::TrackStats>>,
) {
    let len = object.payload.len();
    let d = ObjectDatagram {
        track_alias: terms.alias,
        group_id: group,
        object_id: object.id,
        object_id_present: true,
        publisher_priority: priority,
        end_of_group: false,
        extensions: (!object.extensions.is_empty()).then_some(object.extensions),
        body: match object.status {
            moqlink_model::data::ObjectStatus::Normal => {
                DatagramBody::Payload(Blob(object.payload))
            }
            s => DatagramBody::Status(s),
        },
    };
    match session.send_datagram(&d) {
        Err(e) => tracing::debug!(error = %e, "datagram not sent"),
        Ok(()) => {
            if let Some(s) = stats {
                s.object_out(len, None);
            }
        }
    }
}

/// Sends a subscription's objects until the track or filter ends, or UNSUBSCRIBE.
pub(crate) async fn send<C: Connection>(
    session: Session<C>,
    mut consumer: TrackConsumer,
    mut terms: Terms,
    mut followups: Followups,
    done_tx: watch::Sender<Option<PublishDone>>,
) {
    let request_id = followups.id();
    let limits: SendLimits = session.inner.send_limits;
    let backlog = Backlog::new(
        limits,
        reset_code::DELIVERY_TIMEOUT,
        session.inner.sending.clone(),
    );
    let (prio_tx, prio_rx) = watch::channel(terms.subscriber_priority);
    let mut streams = JoinSet::new();
    let mut opened = 0u64;
    let mut item_open = true;
    // Once the track has ended: when the streams still sending are reset.
    let mut drain: Option<Instant> = None;
    let mut drained = false;
    let end_watch = consumer.clone();
    loop {
        if !item_open && drain.is_none() {
            drain = Some(Instant::now() + limits.drain_timeout);
        }
        tokio::select! {
            item = consumer.next(), if terms.forward && item_open => match item {
                Some(TrackItem::Subgroup(sc)) => {
                    if let Some(ticket) = backlog.admit(sc.info().group) {
                        streams.spawn(send_subgroup(
                            session.clone(), sc, terms, prio_rx.clone(), ticket,
                        ));
                    }
                }
                Some(TrackItem::Datagram { group, priority, object }) => {
                    send_datagram(&session, &terms, group, priority, object, consumer.stats());
                }
                None => item_open = false,
            },
            // Forward State 0: nothing is sent, but the track's end still ends the subscription.
            _ = end_watch.ended(), if !terms.forward && item_open => item_open = false,
            Some(r) = streams.join_next(), if !streams.is_empty() => {
                if r.unwrap_or(false) {
                    opened += 1;
                }
            }
            // The track ended but streams are still stuck: reset them, then PUBLISH_DONE.
            _ = tokio::time::sleep_until(drain.unwrap_or_else(Instant::now)), if drain.is_some() && !drained => {
                backlog.stop(reset_code::DELIVERY_TIMEOUT);
                drained = true;
            }
            msg = followups.next() => {
                let stop = match msg {
                    Some(ControlMessage::SubscribeUpdate(u)) => {
                        match widens(consumer.start(), consumer.end_group(), &u) {
                            // §9.10: narrowing only; anything else ends the session.
                            Some(why) => {
                                session.close(SessionErrorCode::ProtocolViolation, &why);
                                true
                            }
                            None => {
                                consumer.set_range(u.start, u.end_group);
                                terms.forward = u.forward;
                                terms.subscriber_priority = u.subscriber_priority;
                                let _ = prio_tx.send(u.subscriber_priority);
                                false
                            }
                        }
                    }
                    // §5.1: reset open streams; no PUBLISH_DONE after UNSUBSCRIBE.
                    Some(ControlMessage::Unsubscribe(_)) | None => true,
                    Some(other) => {
                        tracing::debug!(msg = other.message_type().name(), "ignored for a served subscription");
                        false
                    }
                };
                if stop {
                    // Every stream task watches the backlog: each resets its stream and ends
                    // at once, without anyone waiting for a stream the subscriber stalls.
                    backlog.stop(reset_code::CANCELLED);
                    streams.detach_all();
                    session.inner.served.lock().unwrap_or_else(|p| p.into_inner()).remove(&request_id);
                    return;
                }
            }
        }
        if !item_open && streams.is_empty() {
            break;
        }
    }
    // Every stream is closed: PUBLISH_DONE may go (§9.12).
    let status = consumer.status();
    let (code, reason) = match status.end {
        Some(end) => (end.status, end.reason),
        None if consumer.past_end() => (
            PublishDoneCode::SubscriptionEnded,
            "end group reached".into(),
        ),
        None => (PublishDoneCode::TrackEnded, "track ended".into()),
    };
    let done = PublishDone {
        request_id,
        status_code: code.code(),
        stream_count: opened,
        reason: Blob::from(reason),
    };
    session
        .inner
        .served
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&request_id);
    if session
        .send(ControlMessage::PublishDone(done.clone()))
        .await
        .is_ok()
    {
        let _ = done_tx.send(Some(done));
    }
    drop(followups);
}

/// Sends one subgroup on its own stream; returns whether a stream was opened.
async fn send_subgroup<C: Connection>(
    session: Session<C>,
    mut sc: SubgroupConsumer,
    terms: Terms,
    prio: watch::Receiver<u8>,
    ticket: Ticket,
) -> bool {
    let mut opened = false;
    send_subgroup_inner(session, &mut sc, terms, prio, &ticket, &mut opened).await;
    opened
}

/// What ended a wait of a stream task.
enum Woke<T> {
    /// The awaited thing.
    Done(T),
    /// The stream must be reset with this code.
    Cut(u64),
}

async fn send_subgroup_inner<C: Connection>(
    session: Session<C>,
    sc: &mut SubgroupConsumer,
    terms: Terms,
    mut prio: watch::Receiver<u8>,
    ticket: &Ticket,
    opened: &mut bool,
) {
    let info = sc.info();
    let priority = |sub: u8| stream_priority(sub, info.priority, terms.order, info.group);
    // Wait for the first object: it decides the header's Subgroup ID form.
    let first = tokio::select! {
        r = sc.next_timed() => r,
        _ = ticket.cancelled() => return,
    };
    let Ok((first, arrived)) = first else {
        return;
    };
    // Objects trimmed from the group's front before this reader's first one only make the
    // stream start later (like a late joiner); any trimmed after it would leave a hole.
    let skipped = sc.skipped();
    let hold = ticket.hold(first.payload.len());
    let mode = match info.mode {
        SubgroupIdMode::FirstObjectId if first.id == info.subgroup => SubgroupIdMode::FirstObjectId,
        SubgroupIdMode::Zero if info.subgroup == 0 => SubgroupIdMode::Zero,
        _ => SubgroupIdMode::Explicit(info.subgroup),
    };
    let header = SubgroupHeader {
        track_alias: terms.alias,
        group_id: info.group,
        subgroup_id: mode,
        publisher_priority: info.priority,
        extensions_present: info.extensions,
        end_of_group: info.end_of_group,
    };
    let initial = priority(*prio.borrow());
    // Waiting for the peer's stream credit holds the first object: the ticket bounds it.
    let opening =
        SubgroupWriter::open_deferred(&session.inner.conn, &session.inner.arbiter, header, initial);
    let mut writer = tokio::select! {
        r = opening => match r {
            Ok(mut w) => {
                *opened = true;
                w.count_into(sc.stats());
                w.traced(session.inner.qlog.as_ref())
            }
            Err(e) => {
                tracing::debug!(error = %e, "could not open a subgroup stream");
                return;
            }
        },
        _ = ticket.cancelled() => return,
    };
    let mut next = Ok((first, arrived, hold));
    loop {
        match next {
            Ok((o, arrived, hold)) => {
                if sc.skipped() > skipped {
                    // Objects were dropped from the group's front before this subscriber got
                    // them: the stream cannot go on as if complete. Reset it, as for a group
                    // evicted whole.
                    tracing::debug!(
                        missed = sc.skipped() - skipped,
                        "subscriber fell behind a trimmed group: stream reset"
                    );
                    let _ = writer.reset(reset_code::DELIVERY_TIMEOUT);
                    return;
                }
                if terms
                    .delivery_timeout
                    .is_some_and(|t| arrived.elapsed() > t)
                {
                    let _ = writer.reset(reset_code::DELIVERY_TIMEOUT);
                    return;
                }
                if writer.last_object_id().is_some() && !sc.known_next(o.id) {
                    // §10.4.3: not known to be the next object on this stream (it came from
                    // another upstream stream after a gap): reset this stream, open a new one.
                    let mut header = *writer.header();
                    if header.subgroup_id == SubgroupIdMode::FirstObjectId {
                        header.subgroup_id = SubgroupIdMode::Explicit(info.subgroup);
                    }
                    let _ = writer.reset(reset_code::INTERNAL_ERROR);
                    let opening = SubgroupWriter::open_deferred(
                        &session.inner.conn,
                        &session.inner.arbiter,
                        header,
                        priority(*prio.borrow()),
                    );
                    writer = tokio::select! {
                        r = opening => match r {
                            Ok(mut w) => {
                                w.count_into(sc.stats());
                                w.traced(session.inner.qlog.as_ref())
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "could not open a subgroup stream");
                                return;
                            }
                        },
                        _ = ticket.cancelled() => return,
                    };
                }
                let len = o.payload.len();
                let obj = SubgroupObject {
                    object_id: o.id,
                    extensions: if info.extensions {
                        o.extensions
                    } else {
                        Extensions::empty()
                    },
                    status: o.status,
                    payload: Blob(o.payload),
                };
                let woke = tokio::select! {
                    r = writer.write(&obj) => Woke::Done(r),
                    code = ticket.cancelled() => Woke::Cut(code),
                };
                drop(hold);
                match woke {
                    Woke::Done(Ok(())) => {
                        if let Some(s) = sc.stats() {
                            s.object_out(len, Some(arrived.elapsed()));
                        }
                    }
                    Woke::Done(Err(e)) => {
                        tracing::debug!(error = %e, "subgroup stream write failed");
                        return;
                    }
                    Woke::Cut(code) => {
                        let _ = writer.reset(code);
                        return;
                    }
                }
            }
            Err(SubgroupEnd::Finished) => {
                let _ = writer.finish();
                return;
            }
            Err(SubgroupEnd::Reset(code)) => {
                let _ = writer.reset(code);
                return;
            }
            Err(SubgroupEnd::Evicted) => {
                // This subscriber fell too far behind: the group is gone.
                let _ = writer.reset(reset_code::DELIVERY_TIMEOUT);
                return;
            }
        }
        if sc.next_arrival().is_none() {
            writer.idle();
        }
        next = loop {
            let woke = tokio::select! {
                r = sc.next_timed() => Woke::Done(Some(r)),
                code = ticket.cancelled() => Woke::Cut(code),
                code = writer.stopped() => {
                    tracing::debug!(?code, "subscriber stopped the stream");
                    Woke::Cut(reset_code::CANCELLED)
                }
                Ok(()) = prio.changed() => Woke::Done(None),
            };
            match woke {
                Woke::Done(Some(r)) => {
                    break r.map(|(o, t)| {
                        let h = ticket.hold(o.payload.len());
                        (o, t, h)
                    })
                }
                Woke::Done(None) => writer.set_priority(priority(*prio.borrow())),
                Woke::Cut(code) => {
                    let _ = writer.reset(code);
                    return;
                }
            }
        };
    }
}

/// Sends a fetch's objects on the fetch stream; FETCH_CANCEL resets it.
pub(crate) async fn send_fetch<C: Connection>(
    session: Session<C>,
    request_id: u64,
    subscriber_priority: u8,
    order: GroupOrder,
    objects: Vec<crate::track::FetchedObject>,
    mut followups: Followups,
) {
    let first_group = objects.first().map_or(0, |o| o.group);
    let priority = stream_priority(subscriber_priority, 0, order, first_group);
    let mut writer = match session.open_fetch(request_id, priority).await {
        Ok(w) => w,
        Err(e) => {
            tracing::debug!(error = %e, "could not open the fetch stream");
            return;
        }
    };
    for f in objects {
        let obj = FetchObject {
            group_id: f.group,
            subgroup_id: f.subgroup,
            object_id: f.object.id,
            publisher_priority: f.priority,
            extensions: f.object.extensions,
            status: f.object.status,
            payload: Blob(f.object.payload),
        };
        tokio::select! {
            r = writer.write(&obj) => if r.is_err() { return },
            msg = followups.next() => {
                if matches!(msg, Some(ControlMessage::FetchCancel(_)) | None) {
                    let _ = writer.reset(reset_code::CANCELLED);
                    return;
                }
            }
        }
    }
    let _ = writer.finish();
}
