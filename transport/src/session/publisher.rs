//! The publisher side: answering SUBSCRIBE, FETCH and TRACK_STATUS from a [`TrackProducer`],
//! sending objects on subgroup streams and datagrams with the subscription's filter, forward
//! state, end group, priorities and group order; SUBSCRIBE_UPDATE and UNSUBSCRIBE; PUBLISH_DONE;
//! and publisher-initiated PUBLISH.

use super::incoming::IncomingRequest;
use super::sending::{send, send_fetch, Terms};
use super::{Session, SessionError};
use crate::connection::Connection;
use crate::track::TrackProducer;
use moqlink_model::codes::{FetchErrorCode, RequestErrorCode, SubscribeErrorCode};
use moqlink_model::control::*;
use moqlink_model::params::{Parameter, VersionParameters};
use moqlink_model::{Location, SessionErrorCode};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

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
        let largest = track.status().largest;
        self.serve_subscribe_from(req, track, largest).await
    }

    /// As [`Session::serve_subscribe`], for the SUBSCRIBE that opened `track`'s upstream
    /// subscription (a relay): the filter is resolved against `largest`, the Largest Location
    /// the upstream publisher reported, not against what has arrived since. Objects the
    /// publisher sent for this very request (they may overtake the answer) are then not missed.
    pub async fn serve_subscribe_from(
        &self,
        req: IncomingRequest,
        track: &TrackProducer,
        largest: Option<Location>,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, SessionError> {
        let IncomingRequest {
            message,
            responder,
            followups,
            ..
        } = req;
        let ControlMessage::Subscribe(sub) = message else {
            responder
                .reject(RequestErrorCode::INTERNAL_ERROR, "not a SUBSCRIBE")
                .await?;
            return Ok(None);
        };
        if let Filter::AbsoluteRange { start, end_group } = sub.filter {
            if end_group < start.group {
                responder
                    .reject(
                        SubscribeErrorCode::InvalidRange,
                        "End Group is before the start group",
                    )
                    .await?;
                return Ok(None);
            }
        }
        let status = track.status();
        let (start, end_group) = resolve_filter(&sub.filter, largest);
        let order = sub.group_order.or_publisher(status.group_order);
        let alias = self.alloc_alias();
        // §9.2.1.2: the subscription uses the min of both sides' values; SUBSCRIBE_OK carries
        // the upstream publisher's when there is one.
        let timeout = match (sub.parameters.delivery_timeout(), status.delivery_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut parameters = VersionParameters::new();
        if let Some(t) = status
            .delivery_timeout
            .or(sub.parameters.delivery_timeout())
        {
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
                    largest,
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
                largest_location: largest,
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
                .reject(RequestErrorCode::INTERNAL_ERROR, "not a TRACK_STATUS")
                .await;
        };
        let Some(track) = track else {
            return req
                .responder
                .reject(SubscribeErrorCode::TrackDoesNotExist, "no such track")
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
        self.serve_fetch_sending(req, track).await.map(drop)
    }

    /// [`Session::serve_fetch`], returning the task sending the fetch stream when one was
    /// started (it ends when the stream is sent, reset, or cancelled).
    pub async fn serve_fetch_sending(
        &self,
        req: IncomingRequest,
        track: Option<&TrackProducer>,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, SessionError> {
        let IncomingRequest {
            message,
            responder,
            followups,
            ..
        } = req;
        let ControlMessage::Fetch(f) = message else {
            return responder
                .reject(RequestErrorCode::INTERNAL_ERROR, "not a FETCH")
                .await
                .map(|()| None);
        };
        let (track, start, end) = match &f.fetch {
            FetchKind::Standalone { start, end, .. } => {
                let Some(track) = track else {
                    return responder
                        .reject(FetchErrorCode::TrackDoesNotExist, "no such track")
                        .await
                        .map(|()| None);
                };
                if end.group < start.group
                    || (end.group == start.group && end.object.is_some_and(|o| o < start.object))
                {
                    return responder
                        .reject(
                            FetchErrorCode::InvalidRange,
                            "End Location is before Start Location",
                        )
                        .await
                        .map(|()| None);
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
                            FetchErrorCode::InvalidJoiningRequestId,
                            "no active subscription with that request ID",
                        )
                        .await
                        .map(|()| None);
                };
                if !served.largest_object_filter {
                    // §9.16.2: joining anything but a Largest Object subscription.
                    self.close(
                        SessionErrorCode::ProtocolViolation,
                        "joining FETCH for a subscription whose filter is not Largest Object",
                    );
                    return Ok(None);
                }
                let Some(largest) = served.largest else {
                    return responder
                        .reject(
                            FetchErrorCode::InvalidRange,
                            "the track had no objects at SUBSCRIBE_OK",
                        )
                        .await
                        .map(|()| None);
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
                .reject(FetchErrorCode::InvalidRange, "the track has no objects yet")
                .await
                .map(|()| None);
        };
        if start > largest {
            return responder
                .reject(
                    FetchErrorCode::InvalidRange,
                    "Start Location is beyond the largest object",
                )
                .await
                .map(|()| None);
        }
        if track.gap_from(start) {
            // Standalone and joining alike: serving what is left would tell the subscriber the
            // missing objects do not exist (§9.16.3: gaps mean Object Does Not Exist).
            return responder
                .reject(
                    FetchErrorCode::UnknownStatusInRange,
                    "objects in the range were dropped from (or never reached) this cache",
                )
                .await
                .map(|()| None);
        }
        let order = f.group_order.or_publisher(status.group_order);
        let objects = track.fetch(start, end, order);
        if objects.is_empty() {
            return responder
                .reject(FetchErrorCode::NoObjects, "no objects in the range")
                .await
                .map(|()| None);
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
        Ok(Some(tokio::spawn(send_fetch(
            session,
            f.request_id,
            priority,
            order,
            objects,
            followups,
        ))))
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
            // Object 2^62-1 is the last a group can have, and "+1" on the wire would not fit a
            // varint: the whole group says the same.
            object: (largest.object < moqlink_model::limits::MAX_VARINT).then_some(largest.object),
        }
    } else {
        end
    }
}
