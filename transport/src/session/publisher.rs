//! The publisher side: answering SUBSCRIBE, FETCH and TRACK_STATUS from a [`TrackProducer`],
//! sending objects on subgroup streams and datagrams with the subscription's filter, forward
//! state, end group, priorities and group order; SUBSCRIBE_UPDATE and UNSUBSCRIBE; PUBLISH_DONE;
//! and publisher-initiated PUBLISH.

use super::incoming::{Followups, IncomingRequest};
use super::subscriber::{INTERNAL_ERROR, SUBSCRIPTION_ENDED, TRACK_ENDED};
use super::{Session, SessionError};
use crate::connection::Connection;
use crate::data::stream_priority;
use crate::track::{SubgroupConsumer, SubgroupEnd, TrackConsumer, TrackItem, TrackProducer};
use moqlink_model::control::*;
use moqlink_model::data::{
    reset_code, DatagramBody, Extensions, FetchObject, ObjectDatagram, SubgroupHeader,
    SubgroupIdMode, SubgroupObject,
};
use moqlink_model::params::{Parameter, VersionParameters};
use moqlink_model::{Blob, GroupOrder, Location, SessionErrorCode};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// SUBSCRIBE_ERROR / FETCH_ERROR / TRACK_STATUS_ERROR code: the track is not available.
pub const TRACK_DOES_NOT_EXIST: u64 = 0x4;
/// SUBSCRIBE_ERROR / FETCH_ERROR code: the range is invalid.
pub const INVALID_RANGE: u64 = 0x5;
/// FETCH_ERROR code: no objects in the range.
pub const NO_OBJECTS: u64 = 0x6;
/// FETCH_ERROR code: the joined subscription does not exist.
pub const INVALID_JOINING_REQUEST_ID: u64 = 0x7;

/// How long a joining FETCH waits for the SUBSCRIBE it names to be answered.
const JOIN_WAIT: Duration = Duration::from_secs(3);

/// A subscription this endpoint serves, kept for joining FETCH.
#[derive(Clone)]
pub(crate) struct Served {
    track: TrackProducer,
    largest_object_filter: bool,
    largest: Option<Location>,
}

/// The first location and last group a filter selects, given the track's largest location
/// (§9.7).
pub fn resolve_filter(filter: &Filter, largest: Option<Location>) -> (Location, Option<u64>) {
    match *filter {
        Filter::LargestObject => (Location::after_largest(largest), None),
        Filter::NextGroupStart => (
            largest.map_or(Location::new(0, 0), |l| Location::new(l.group + 1, 0)),
            None,
        ),
        Filter::AbsoluteStart { start } => (start, None),
        Filter::AbsoluteRange { start, end_group } => (start, Some(end_group)),
    }
}

/// Why a SUBSCRIBE_UPDATE breaks §9.10 against the subscription's current range, if it does:
/// the Start Location must not decrease, the End Group must not increase (an open end counts
/// as the largest), and the End Group must not precede the Start group.
pub fn widens(start: Location, end_group: Option<u64>, u: &SubscribeUpdate) -> Option<String> {
    if u.start < start {
        return Some(format!(
            "SUBSCRIBE_UPDATE for request {} moves Start from {start} back to {}",
            u.subscription_request_id, u.start
        ));
    }
    if let Some(end) = end_group {
        if u.end_group.is_none_or(|e| e > end) {
            let new = u.end_group.map_or("open".to_string(), |e| e.to_string());
            return Some(format!(
                "SUBSCRIBE_UPDATE for request {} raises End Group from {end} to {new}",
                u.subscription_request_id
            ));
        }
    }
    if let Some(e) = u.end_group.filter(|e| *e < u.start.group) {
        return Some(format!(
            "SUBSCRIBE_UPDATE for request {} has End Group {e} below its Start group {}",
            u.subscription_request_id, u.start.group
        ));
    }
    None
}

/// The subscription's terms as the sender applies them.
#[derive(Debug, Clone, Copy)]
struct Terms {
    alias: u64,
    subscriber_priority: u8,
    order: GroupOrder,
    forward: bool,
    delivery_timeout: Option<Duration>,
}

/// A track published with PUBLISH.
pub struct Publication {
    /// The PUBLISH request ID.
    pub request_id: u64,
    /// The PUBLISH_OK.
    pub ok: PublishOk,
    done: watch::Receiver<Option<PublishDone>>,
}

impl Publication {
    /// Waits until the subscription ends; `None` if the subscriber unsubscribed.
    pub async fn done(&self) -> Option<PublishDone> {
        let mut rx = self.done.clone();
        loop {
            if let Some(d) = rx.borrow_and_update().clone() {
                return Some(d);
            }
            if rx.changed().await.is_err() {
                return None;
            }
        }
    }
}

impl<C: Connection> Session<C> {
    /// The served subscription a joining FETCH names. A SUBSCRIBE sent just before the FETCH may
    /// still be on its way to SUBSCRIBE_OK (peers pipeline them): while that request is open,
    /// wait for it (bounded).
    async fn joinable(&self, id: u64) -> Option<Served> {
        let deadline = tokio::time::Instant::now() + JOIN_WAIT;
        loop {
            // Registered before checking, so a notify_waiters() in between is not missed.
            let notified = self.inner.served_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(s) = self
                .inner
                .served
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&id)
            {
                return Some(s.clone());
            }
            let pending = self.inner.state().routes.contains_key(&id);
            if !pending || tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// A track alias not used before in this session.
    pub fn alloc_alias(&self) -> u64 {
        self.inner.next_alias.fetch_add(1, Ordering::Relaxed)
    }

    /// Answers a SUBSCRIBE from `track`: SUBSCRIBE_OK (or INVALID_RANGE), then objects until the
    /// track or the filter ends (PUBLISH_DONE) or the subscriber unsubscribes. Returns the task
    /// sending the subscription (finished when the subscription is over), or `None` if refused.
    pub async fn serve_subscribe(
        &self,
        req: IncomingRequest,
        track: &TrackProducer,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, SessionError> {
        let IncomingRequest {
            message,
            responder,
            followups,
            ..
        } = req;
        let ControlMessage::Subscribe(sub) = message else {
            responder.reject(INTERNAL_ERROR, "not a SUBSCRIBE").await?;
            return Ok(None);
        };
        if let Filter::AbsoluteRange { start, end_group } = sub.filter {
            if end_group < start.group {
                responder
                    .reject(INVALID_RANGE, "End Group is before the start group")
                    .await?;
                return Ok(None);
            }
        }
        let status = track.status();
        let (start, end_group) = resolve_filter(&sub.filter, status.largest);
        let order = sub.group_order.or_publisher(status.group_order);
        let alias = self.alloc_alias();
        let timeout = sub.parameters.delivery_timeout();
        let mut parameters = VersionParameters::new();
        if let Some(t) = timeout {
            parameters.push(Parameter::DeliveryTimeout { value: t });
        }
        self.inner
            .served
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                sub.request_id,
                Served {
                    track: track.clone(),
                    largest_object_filter: sub.filter == Filter::LargestObject,
                    largest: status.largest,
                },
            );
        self.inner.served_changed.notify_waiters();
        let consumer = track.consume(start, end_group);
        responder
            .accept(ControlMessage::SubscribeOk(SubscribeOk {
                request_id: sub.request_id,
                track_alias: alias,
                expires: 0,
                group_order: order,
                largest_location: status.largest,
                parameters,
            }))
            .await?;
        let terms = Terms {
            alias,
            subscriber_priority: sub.subscriber_priority,
            order,
            forward: sub.forward,
            delivery_timeout: timeout.map(Duration::from_millis),
        };
        let (done_tx, _) = watch::channel(None);
        Ok(Some(tokio::spawn(send(
            self.clone(),
            consumer,
            terms,
            followups,
            done_tx,
        ))))
    }

    /// Answers TRACK_STATUS from `track`, or TRACK_STATUS_ERROR TRACK_DOES_NOT_EXIST.
    pub async fn serve_track_status(
        &self,
        req: IncomingRequest,
        track: Option<&TrackProducer>,
    ) -> Result<(), SessionError> {
        let ControlMessage::TrackStatus(ts) = &req.message else {
            return req
                .responder
                .reject(INTERNAL_ERROR, "not a TRACK_STATUS")
                .await;
        };
        let Some(track) = track else {
            return req
                .responder
                .reject(TRACK_DOES_NOT_EXIST, "no such track")
                .await;
        };
        let status = track.status();
        let order = ts.group_order.or_publisher(status.group_order);
        req.responder
            .accept(ControlMessage::TrackStatusOk(SubscribeOk {
                request_id: ts.request_id,
                // §9.21: Track Alias is 0 in TRACK_STATUS_OK.
                track_alias: 0,
                expires: 0,
                group_order: order,
                largest_location: status.largest,
                parameters: VersionParameters::new(),
            }))
            .await
    }

    /// Answers a FETCH: standalone from `track` (None = unknown track), joining from the
    /// subscription it names; FETCH_OK, then the objects on a fetch stream.
    pub async fn serve_fetch(
        &self,
        req: IncomingRequest,
        track: Option<&TrackProducer>,
    ) -> Result<(), SessionError> {
        let IncomingRequest {
            message,
            responder,
            followups,
            ..
        } = req;
        let ControlMessage::Fetch(f) = message else {
            return responder.reject(INTERNAL_ERROR, "not a FETCH").await;
        };
        let (track, start, end) = match &f.fetch {
            FetchKind::Standalone { start, end, .. } => {
                let Some(track) = track else {
                    return responder
                        .reject(TRACK_DOES_NOT_EXIST, "no such track")
                        .await;
                };
                if end.group < start.group
                    || (end.group == start.group && end.object.is_some_and(|o| o < start.object))
                {
                    return responder
                        .reject(INVALID_RANGE, "End Location is before Start Location")
                        .await;
                }
                (track.clone(), *start, *end)
            }
            FetchKind::RelativeJoining {
                joining_request_id,
                joining_start,
            }
            | FetchKind::AbsoluteJoining {
                joining_request_id,
                joining_start,
            } => {
                let served = self.joinable(*joining_request_id).await;
                let Some(served) = served else {
                    return responder
                        .reject(
                            INVALID_JOINING_REQUEST_ID,
                            "no active subscription with that request ID",
                        )
                        .await;
                };
                if !served.largest_object_filter {
                    // §9.16.2: joining anything but a Largest Object subscription.
                    self.close(
                        SessionErrorCode::ProtocolViolation,
                        "joining FETCH for a subscription whose filter is not Largest Object",
                    );
                    return Ok(());
                }
                let Some(largest) = served.largest else {
                    return responder
                        .reject(INVALID_RANGE, "the track had no objects at SUBSCRIBE_OK")
                        .await;
                };
                let start_group = if matches!(f.fetch, FetchKind::RelativeJoining { .. }) {
                    largest.group.saturating_sub(*joining_start)
                } else {
                    *joining_start
                };
                let end = FetchEnd {
                    group: largest.group,
                    object: Some(largest.object),
                };
                (served.track, Location::new(start_group, 0), end)
            }
        };
        let status = track.status();
        let Some(largest) = status.largest else {
            return responder
                .reject(INVALID_RANGE, "the track has no objects yet")
                .await;
        };
        if start > largest {
            return responder
                .reject(INVALID_RANGE, "Start Location is beyond the largest object")
                .await;
        }
        let order = f.group_order.or_publisher(status.group_order);
        let objects = track.fetch(start, end, order);
        if objects.is_empty() {
            return responder
                .reject(NO_OBJECTS, "no objects in the range")
                .await;
        }
        let end_location = fetch_ok_end(end, largest);
        let end_of_track = status.end.is_some() && end_location.covers(largest);
        responder
            .accept(ControlMessage::FetchOk(FetchOk {
                request_id: f.request_id,
                group_order: order,
                end_of_track,
                end_location,
                parameters: VersionParameters::new(),
            }))
            .await?;
        let session = self.clone();
        let priority = f.subscriber_priority;
        tokio::spawn(send_fetch(
            session,
            f.request_id,
            priority,
            order,
            objects,
            followups,
        ));
        Ok(())
    }

    /// Publishes `track` with PUBLISH, waits for PUBLISH_OK, then sends objects on the terms the
    /// subscriber set.
    pub async fn publish(
        &self,
        track: &TrackProducer,
        forward: bool,
        parameters: VersionParameters,
    ) -> Result<Publication, SessionError> {
        let alias = self.alloc_alias();
        let status = track.status();
        let name = track.name().clone();
        let mut req = self
            .request(|request_id| {
                ControlMessage::Publish(Publish {
                    request_id,
                    namespace: name.namespace,
                    name: name.name,
                    track_alias: alias,
                    group_order: status.group_order,
                    largest_location: status.largest,
                    forward,
                    parameters,
                })
            })
            .await?;
        let ok = match req.reply().await? {
            ControlMessage::PublishOk(ok) => ok,
            other => {
                return Err(SessionError::Unexpected(format!(
                    "{} in reply to PUBLISH",
                    other.message_type().name()
                )))
            }
        };
        let (start, end_group) = resolve_filter(&ok.filter, track.status().largest);
        let terms = Terms {
            alias,
            subscriber_priority: ok.subscriber_priority,
            order: ok.group_order,
            forward: ok.forward,
            delivery_timeout: ok.parameters.delivery_timeout().map(Duration::from_millis),
        };
        let (done_tx, done_rx) = watch::channel(None);
        let request_id = req.id();
        tokio::spawn(send(
            self.clone(),
            track.consume(start, end_group),
            terms,
            req.followups,
            done_tx,
        ));
        Ok(Publication {
            request_id,
            ok,
            done: done_rx,
        })
    }
}

/// FETCH_OK's End Location for a requested `end` given the largest object (§9.17).
pub fn fetch_ok_end(end: FetchEnd, largest: Location) -> FetchEnd {
    let beyond = end.group > largest.group
        || (end.group == largest.group && end.object.is_none_or(|o| o > largest.object));
    if beyond {
        FetchEnd {
            group: largest.group,
            object: Some(largest.object),
        }
    } else {
        end
    }
}

/// Sends a subscription's objects until the track or filter ends, or UNSUBSCRIBE.
async fn send<C: Connection>(
    session: Session<C>,
    mut consumer: TrackConsumer,
    mut terms: Terms,
    mut followups: Followups,
    done_tx: watch::Sender<Option<PublishDone>>,
) {
    let request_id = followups.id();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (prio_tx, prio_rx) = watch::channel(terms.subscriber_priority);
    let mut streams = JoinSet::new();
    let mut opened = 0u64;
    let mut item_open = true;
    let end_watch = consumer.clone();
    loop {
        tokio::select! {
            item = consumer.next(), if terms.forward && item_open => match item {
                Some(TrackItem::Subgroup(sc)) => {
                    streams.spawn(send_subgroup(
                        session.clone(), sc, terms, prio_rx.clone(), stop_rx.clone(),
                    ));
                }
                Some(TrackItem::Datagram { group, priority, object }) => {
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
                    if let Err(e) = session.send_datagram(&d) {
                        tracing::debug!(error = %e, "datagram not sent");
                    }
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
                    let _ = stop_tx.send(true);
                    while streams.join_next().await.is_some() {}
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
        None if consumer.past_end() => (SUBSCRIPTION_ENDED, "end group reached".into()),
        None => (TRACK_ENDED, "track ended".into()),
    };
    let done = PublishDone {
        request_id,
        status_code: code,
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
    stop: watch::Receiver<bool>,
) -> bool {
    let mut opened = false;
    send_subgroup_inner(session, &mut sc, terms, prio, stop, &mut opened).await;
    opened
}

async fn send_subgroup_inner<C: Connection>(
    session: Session<C>,
    sc: &mut SubgroupConsumer,
    terms: Terms,
    mut prio: watch::Receiver<u8>,
    mut stop: watch::Receiver<bool>,
    opened: &mut bool,
) {
    let info = sc.info();
    let priority = |sub: u8| stream_priority(sub, info.priority, terms.order, info.group);
    // Wait for the first object: it decides the header's Subgroup ID form.
    let first = tokio::select! {
        r = sc.next_timed() => r,
        _ = stop.wait_for(|s| *s) => return,
    };
    let (first, arrived) = match first {
        Ok(v) => v,
        Err(_) => return,
    };
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
    let mut writer = match session.open_subgroup(header, initial).await {
        Ok(w) => {
            *opened = true;
            w
        }
        Err(e) => {
            tracing::debug!(error = %e, "could not open a subgroup stream");
            return;
        }
    };
    let mut next = Ok((first, arrived));
    loop {
        match next {
            Ok((o, arrived)) => {
                if terms
                    .delivery_timeout
                    .is_some_and(|t| arrived.elapsed() > t)
                {
                    let _ = writer.reset(reset_code::DELIVERY_TIMEOUT);
                    return;
                }
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
                if let Err(e) = writer.write(&obj).await {
                    tracing::debug!(error = %e, "subgroup stream write failed");
                    return;
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
            tokio::select! {
                r = sc.next_timed() => break r,
                _ = stop.wait_for(|s| *s) => {
                    let _ = writer.reset(reset_code::CANCELLED);
                    return;
                }
                code = writer.stopped() => {
                    tracing::debug!(?code, "subscriber stopped the stream");
                    let _ = writer.reset(reset_code::CANCELLED);
                    return;
                }
                Ok(()) = prio.changed() => {
                    let p = priority(*prio.borrow());
                    writer.set_priority(p);
                }
            }
        };
    }
}

/// Sends a fetch's objects on the fetch stream; FETCH_CANCEL resets it.
async fn send_fetch<C: Connection>(
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
