//! The subscriber side: SUBSCRIBE, SUBSCRIBE_UPDATE, UNSUBSCRIBE and PUBLISH_DONE; accepting a
//! peer's PUBLISH; FETCH and FETCH_CANCEL; TRACK_STATUS; PUBLISH_NAMESPACE and
//! SUBSCRIBE_NAMESPACE. Objects that arrive are written into a [`TrackProducer`] that any number
//! of readers consume.

use super::incoming::{Followups, IncomingRequest};
use super::{Session, SessionError};
use crate::connection::Connection;
use crate::data::{ExpectedFetch, FetchEvent, IncomingFetch};
use crate::track::{TrackConfig, TrackConsumer, TrackName, TrackProducer};
use moqlink_model::codes::RequestErrorCode;
use moqlink_model::control::*;
use moqlink_model::data::{reset_code, FetchObject};
use moqlink_model::params::VersionParameters;
use moqlink_model::{GroupOrder, Location, SessionErrorCode, TrackNamespace};
use tokio::sync::{mpsc, watch};

/// What a SUBSCRIBE asks for.
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    /// Lower is more important.
    pub subscriber_priority: u8,
    /// Requested group order (Original = the publisher's).
    pub group_order: GroupOrder,
    /// Whether objects are forwarded.
    pub forward: bool,
    /// Which objects pass.
    pub filter: Filter,
    /// Parameters (AUTHORIZATION TOKEN, DELIVERY TIMEOUT).
    pub parameters: VersionParameters,
    /// History kept by the local track the objects are written into.
    pub track: TrackConfig,
    /// Write into this existing track instead of a new one (a relay merging the same track from
    /// several publishers, §8.4): objects already in it are skipped, and the subscription
    /// leaves ending the track to its owner (`Subscription::ended` tells when it ended).
    pub into: Option<TrackProducer>,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            subscriber_priority: 128,
            group_order: GroupOrder::Original,
            forward: true,
            filter: Filter::LargestObject,
            parameters: VersionParameters::new(),
            track: TrackConfig::default(),
            into: None,
        }
    }
}

/// How the subscriber answers a PUBLISH.
#[derive(Debug, Clone)]
pub struct PublishAccept {
    /// Forward state.
    pub forward: bool,
    /// Subscriber priority.
    pub subscriber_priority: u8,
    /// Group order (Ascending or Descending; Original takes the publisher's).
    pub group_order: GroupOrder,
    /// Filter.
    pub filter: Filter,
    /// Parameters of PUBLISH_OK.
    pub parameters: VersionParameters,
    /// History kept by the local track.
    pub track: TrackConfig,
}

impl Default for PublishAccept {
    fn default() -> Self {
        PublishAccept {
            forward: true,
            subscriber_priority: 128,
            group_order: GroupOrder::Original,
            filter: Filter::LargestObject,
            parameters: VersionParameters::new(),
            track: TrackConfig::default(),
        }
    }
}

pub(super) enum Command {
    Unsubscribe,
}

/// A live subscription: the track its objects are written into, and the controls of SUBSCRIBE.
pub struct Subscription<C: Connection> {
    session: Session<C>,
    request_id: u64,
    track_alias: u64,
    largest: Option<Location>,
    group_order: GroupOrder,
    track: TrackProducer,
    cmd: mpsc::Sender<Command>,
    done: watch::Receiver<Option<PublishDone>>,
}

impl<C: Connection> std::fmt::Debug for Subscription<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Subscription({} alias {})",
            self.request_id, self.track_alias
        )
    }
}

impl<C: Connection> Subscription<C> {
    /// The SUBSCRIBE (or PUBLISH) request ID.
    pub fn request_id(&self) -> u64 {
        self.request_id
    }

    /// The track alias the publisher chose.
    pub fn track_alias(&self) -> u64 {
        self.track_alias
    }

    /// The largest location the publisher reported in SUBSCRIBE_OK / PUBLISH.
    pub fn largest(&self) -> Option<Location> {
        self.largest
    }

    /// The delivery group order.
    pub fn group_order(&self) -> GroupOrder {
        self.group_order
    }

    /// The track the objects are written into (shared with every reader).
    pub fn track(&self) -> &TrackProducer {
        &self.track
    }

    /// A reader of everything received so far and from now on.
    pub fn consumer(&self) -> TrackConsumer {
        self.track.consume(Location::new(0, 0), None)
    }

    /// Resolves when the subscription has ended (PUBLISH_DONE and its streams, UNSUBSCRIBE, or
    /// the session's end), with the PUBLISH_DONE when one arrived; independent of `self`.
    pub fn ended(&self) -> impl std::future::Future<Output = Option<PublishDone>> + Send + 'static {
        let mut rx = self.done.clone();
        // The receiving task holds the sender until its last stream is written.
        async move {
            while rx.changed().await.is_ok() {}
            let done = rx.borrow().clone();
            done
        }
    }

    /// PUBLISH_DONE, once it arrived.
    pub fn publish_done(&self) -> Option<PublishDone> {
        self.done.borrow().clone()
    }

    /// Waits for the subscription to end and returns the PUBLISH_DONE (or `None` when the
    /// session ended first or we unsubscribed).
    pub async fn done(&self) -> Option<PublishDone> {
        let mut rx = self.done.clone();
        loop {
            if let Some(d) = rx.borrow_and_update().clone() {
                return Some(d);
            }
            if rx.changed().await.is_err() {
                return rx.borrow().clone();
            }
        }
    }

    /// Sends SUBSCRIBE_UPDATE: the start may only move forward and the end group only back
    /// (§9.10).
    pub async fn update(
        &self,
        start: Location,
        end_group: Option<u64>,
        subscriber_priority: u8,
        forward: bool,
    ) -> Result<(), SessionError> {
        let id = self.request_id;
        let _req = self
            .session
            .request(|request_id| {
                ControlMessage::SubscribeUpdate(SubscribeUpdate {
                    request_id,
                    subscription_request_id: id,
                    start,
                    end_group,
                    subscriber_priority,
                    forward,
                    parameters: VersionParameters::new(),
                })
            })
            .await?;
        Ok(())
    }

    /// Sends UNSUBSCRIBE; the publisher resets the streams and sends nothing more.
    pub async fn unsubscribe(self) {
        let _ = self.cmd.send(Command::Unsubscribe).await;
    }
}

impl<C: Connection> Drop for Subscription<C> {
    fn drop(&mut self) {
        let _ = self.cmd.try_send(Command::Unsubscribe);
    }
}

impl<C: Connection> Session<C> {
    /// Subscribes to `name` and waits for SUBSCRIBE_OK; a SUBSCRIBE_ERROR becomes
    /// [`SessionError::Rejected`].
    pub async fn subscribe(
        &self,
        name: TrackName,
        opts: SubscribeOptions,
    ) -> Result<Subscription<C>, SessionError> {
        let ns = name.namespace.clone();
        let track_name = name.name.clone();
        let mut req = self
            .request(|request_id| {
                ControlMessage::Subscribe(Subscribe {
                    request_id,
                    namespace: ns,
                    name: track_name,
                    subscriber_priority: opts.subscriber_priority,
                    group_order: opts.group_order,
                    forward: opts.forward,
                    filter: opts.filter,
                    parameters: opts.parameters.clone(),
                })
            })
            .await?;
        let ok = match req.reply().await? {
            ControlMessage::SubscribeOk(ok) => ok,
            other => {
                return Err(SessionError::Unexpected(format!(
                    "{} in reply to SUBSCRIBE",
                    other.message_type().name()
                )))
            }
        };
        self.start_receiving(
            name,
            opts.track,
            opts.into,
            req.followups,
            ok.track_alias,
            ok.largest_location,
            ok.group_order,
            ok.parameters.max_cache_duration(),
            ok.parameters.delivery_timeout(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn start_receiving(
        &self,
        name: TrackName,
        config: TrackConfig,
        into: Option<TrackProducer>,
        followups: Followups,
        alias: u64,
        largest: Option<Location>,
        group_order: GroupOrder,
        max_cache_ms: Option<u64>,
        delivery_timeout_ms: Option<u64>,
    ) -> Result<Subscription<C>, SessionError> {
        let data = match self.data().register_track(alias) {
            Ok(d) => d,
            Err(e) => {
                // §9.8, §9.13: an alias already in use for another track closes the session.
                self.close(SessionErrorCode::DuplicateTrackAlias, &e.to_string());
                return Err(SessionError::Closed(self.close_reason().unwrap_or_else(
                    || super::SessionClose {
                        code: SessionErrorCode::DuplicateTrackAlias.code(),
                        reason: e.to_string(),
                        by_peer: false,
                    },
                )));
            }
        };
        let owned = into.is_none();
        let track = into.unwrap_or_else(|| TrackProducer::new(name, config));
        track.set_group_order(group_order);
        if let Some(ms) = max_cache_ms {
            track.limit_max_age(std::time::Duration::from_millis(ms));
        }
        track.set_delivery_timeout(delivery_timeout_ms);
        // A track shared with other publishers (a relay's) takes a publisher's claimed Largest
        // Location only as its first word on the track (§9.8: the relay reports it to its first
        // subscriber); after that, from what arrives — a later publisher's claim could put it
        // at 2^62-1 for every subscriber.
        if let Some(l) = largest.filter(|_| owned || track.status().largest.is_none()) {
            track.note_largest(l);
        }
        let (cmd, cmd_rx) = mpsc::channel(4);
        let (done_tx, done_rx) = watch::channel(None);
        let request_id = followups.id();
        tokio::spawn(super::receive::receive(
            self.clone(),
            track.clone(),
            data,
            followups,
            cmd_rx,
            done_tx,
            alias,
            owned,
        ));
        Ok(Subscription {
            session: self.clone(),
            request_id,
            track_alias: alias,
            largest,
            group_order,
            track,
            cmd,
            done: done_rx,
        })
    }

    /// Accepts a peer's PUBLISH with PUBLISH_OK and starts receiving its objects.
    pub async fn accept_publish(
        &self,
        req: IncomingRequest,
        accept: PublishAccept,
    ) -> Result<Subscription<C>, SessionError> {
        let ControlMessage::Publish(p) = &req.message else {
            let _ = req
                .responder
                .reject(RequestErrorCode::INTERNAL_ERROR, "not a PUBLISH")
                .await;
            return Err(SessionError::Unexpected(
                "accept_publish on a non-PUBLISH".into(),
            ));
        };
        let name = TrackName {
            namespace: p.namespace.clone(),
            name: p.name.clone(),
        };
        let group_order = accept.group_order.or_publisher(p.group_order);
        let (alias, largest, request_id) = (p.track_alias, p.largest_location, p.request_id);
        let max_cache_ms = p.parameters.max_cache_duration();
        let sub = self.start_receiving(
            name,
            accept.track,
            None,
            req.followups,
            alias,
            largest,
            group_order,
            max_cache_ms,
            p.parameters.delivery_timeout(),
        )?;
        req.responder
            .accept(ControlMessage::PublishOk(PublishOk {
                request_id,
                forward: accept.forward,
                subscriber_priority: accept.subscriber_priority,
                group_order,
                filter: accept.filter,
                parameters: accept.parameters,
            }))
            .await?;
        Ok(sub)
    }

    /// Sends TRACK_STATUS and returns TRACK_STATUS_OK.
    pub async fn track_status(&self, name: &TrackName) -> Result<SubscribeOk, SessionError> {
        let mut req = self
            .request(|request_id| {
                ControlMessage::TrackStatus(Subscribe {
                    request_id,
                    namespace: name.namespace.clone(),
                    name: name.name.clone(),
                    subscriber_priority: 128,
                    group_order: GroupOrder::Original,
                    forward: true,
                    filter: Filter::LargestObject,
                    parameters: VersionParameters::new(),
                })
            })
            .await?;
        match req.reply().await? {
            ControlMessage::TrackStatusOk(ok) => Ok(ok),
            other => Err(SessionError::Unexpected(format!(
                "{} in reply to TRACK_STATUS",
                other.message_type().name()
            ))),
        }
    }

    /// Sends FETCH and waits for FETCH_OK; objects then arrive through the response.
    pub async fn fetch(
        &self,
        fetch: FetchKind,
        subscriber_priority: u8,
        group_order: GroupOrder,
        parameters: VersionParameters,
    ) -> Result<FetchResponse<C>, SessionError> {
        let mut stream_rx = None;
        let data = self.data();
        let standalone_start = match &fetch {
            FetchKind::Standalone { start, .. } => Some(*start),
            _ => None,
        };
        let mut req = self
            .request(|request_id| {
                stream_rx = Some(data.expect_fetch(request_id));
                ControlMessage::Fetch(Fetch {
                    request_id,
                    subscriber_priority,
                    group_order,
                    fetch,
                    parameters,
                })
            })
            .await?;
        let ok = match req.reply().await? {
            ControlMessage::FetchOk(ok) => ok,
            other => {
                return Err(SessionError::Unexpected(format!(
                    "{} in reply to FETCH",
                    other.message_type().name()
                )))
            }
        };
        // §9.17: an End Location smaller than the FETCH's Start closes the session.
        if let Some(start) = standalone_start {
            let end = ok.end_location;
            if end.group < start.group
                || (end.group == start.group && end.object.is_some_and(|o| o < start.object))
            {
                let reason = format!(
                    "FETCH_OK End Location below the FETCH's Start Location {}.{}",
                    start.group, start.object
                );
                self.close(SessionErrorCode::ProtocolViolation, &reason);
                return Err(SessionError::Unexpected(reason));
            }
        }
        Ok(FetchResponse {
            session: self.clone(),
            ok,
            request_id: req.id(),
            pending: stream_rx,
            stream: None,
            done: false,
            _followups: req.followups,
        })
    }

    /// Sends PUBLISH_NAMESPACE and waits for PUBLISH_NAMESPACE_OK.
    pub async fn publish_namespace(
        &self,
        namespace: TrackNamespace,
        parameters: VersionParameters,
    ) -> Result<NamespacePublication<C>, SessionError> {
        let ns = namespace.clone();
        let mut req = self
            .request(|request_id| {
                ControlMessage::PublishNamespace(PublishNamespace {
                    request_id,
                    namespace: ns,
                    parameters,
                })
            })
            .await?;
        match req.reply().await? {
            ControlMessage::PublishNamespaceOk(_) => Ok(NamespacePublication {
                session: self.clone(),
                namespace,
                active: true,
            }),
            other => Err(SessionError::Unexpected(format!(
                "{} in reply to PUBLISH_NAMESPACE",
                other.message_type().name()
            ))),
        }
    }

    /// Sends SUBSCRIBE_NAMESPACE and waits for SUBSCRIBE_NAMESPACE_OK; the PUBLISH_NAMESPACE and
    /// PUBLISH that follow arrive as incoming requests.
    pub async fn subscribe_namespace(
        &self,
        prefix: TrackNamespace,
        parameters: VersionParameters,
    ) -> Result<NamespaceSubscription<C>, SessionError> {
        let p = prefix.clone();
        let mut req = self
            .request(|request_id| {
                ControlMessage::SubscribeNamespace(SubscribeNamespace {
                    request_id,
                    namespace_prefix: p,
                    parameters,
                })
            })
            .await?;
        match req.reply().await? {
            ControlMessage::SubscribeNamespaceOk(_) => Ok(NamespaceSubscription {
                session: self.clone(),
                prefix,
                active: true,
            }),
            other => Err(SessionError::Unexpected(format!(
                "{} in reply to SUBSCRIBE_NAMESPACE",
                other.message_type().name()
            ))),
        }
    }
}

/// A namespace this session published; dropping it (or `done`) sends PUBLISH_NAMESPACE_DONE.
pub struct NamespacePublication<C: Connection> {
    session: Session<C>,
    namespace: TrackNamespace,
    active: bool,
}

impl<C: Connection> std::fmt::Debug for NamespacePublication<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NamespacePublication({})", self.namespace)
    }
}

impl<C: Connection> NamespacePublication<C> {
    /// The namespace.
    pub fn namespace(&self) -> &TrackNamespace {
        &self.namespace
    }

    /// Sends PUBLISH_NAMESPACE_DONE.
    pub async fn done(mut self) -> Result<(), SessionError> {
        self.active = false;
        self.session
            .send(ControlMessage::PublishNamespaceDone(PublishNamespaceDone {
                namespace: self.namespace.clone(),
            }))
            .await
    }
}

impl<C: Connection> Drop for NamespacePublication<C> {
    fn drop(&mut self) {
        if self.active {
            let (s, ns) = (self.session.clone(), self.namespace.clone());
            tokio::spawn(async move {
                let _ = s
                    .send(ControlMessage::PublishNamespaceDone(PublishNamespaceDone {
                        namespace: ns,
                    }))
                    .await;
            });
        }
    }
}

/// A namespace subscription; dropping it (or `unsubscribe`) sends UNSUBSCRIBE_NAMESPACE.
pub struct NamespaceSubscription<C: Connection> {
    session: Session<C>,
    prefix: TrackNamespace,
    active: bool,
}

impl<C: Connection> std::fmt::Debug for NamespaceSubscription<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NamespaceSubscription({})", self.prefix)
    }
}

impl<C: Connection> NamespaceSubscription<C> {
    /// The prefix.
    pub fn prefix(&self) -> &TrackNamespace {
        &self.prefix
    }

    /// Sends UNSUBSCRIBE_NAMESPACE.
    pub async fn unsubscribe(mut self) -> Result<(), SessionError> {
        self.active = false;
        self.session
            .send(ControlMessage::UnsubscribeNamespace(UnsubscribeNamespace {
                namespace_prefix: self.prefix.clone(),
            }))
            .await
    }
}

impl<C: Connection> Drop for NamespaceSubscription<C> {
    fn drop(&mut self) {
        if self.active {
            let (s, p) = (self.session.clone(), self.prefix.clone());
            tokio::spawn(async move {
                let _ = s
                    .send(ControlMessage::UnsubscribeNamespace(UnsubscribeNamespace {
                        namespace_prefix: p,
                    }))
                    .await;
            });
        }
    }
}

/// The objects of an accepted FETCH, in the order the publisher sends them.
pub struct FetchResponse<C: Connection> {
    session: Session<C>,
    /// The FETCH_OK.
    pub ok: FetchOk,
    request_id: u64,
    /// Unregisters the expected stream when dropped (the fetch ended or was abandoned).
    pending: Option<ExpectedFetch>,
    stream: Option<IncomingFetch>,
    done: bool,
    _followups: Followups,
}

impl<C: Connection> std::fmt::Debug for FetchResponse<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FetchResponse({})", self.request_id)
    }
}

/// How a fetch stream ended early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchStreamError {
    /// The publisher reset the stream.
    #[error("fetch stream reset with code 0x{0:x}")]
    Reset(u64),
    /// The stream never arrived or the session ended.
    #[error("fetch stream lost")]
    Lost,
}

impl<C: Connection> FetchResponse<C> {
    /// The next object; `Ok(None)` at the end of the stream.
    pub async fn next(&mut self) -> Result<Option<FetchObject>, FetchStreamError> {
        if self.done {
            return Ok(None);
        }
        if self.stream.is_none() {
            let rx = self.pending.take().ok_or(FetchStreamError::Lost)?;
            self.stream = Some(rx.await.map_err(|_| FetchStreamError::Lost)?);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(FetchStreamError::Lost);
        };
        match stream.next().await {
            Some(FetchEvent::Object(o)) => Ok(Some(o)),
            Some(FetchEvent::Finished) => {
                self.done = true;
                Ok(None)
            }
            Some(FetchEvent::Reset(code)) => {
                self.done = true;
                Err(FetchStreamError::Reset(code))
            }
            None => Err(FetchStreamError::Lost),
        }
    }

    /// Sends FETCH_CANCEL and stops the stream.
    pub async fn cancel(mut self) -> Result<(), SessionError> {
        if let Some(s) = self.stream.take() {
            s.stop(reset_code::CANCELLED);
        }
        self.session
            .send(ControlMessage::FetchCancel(RequestRef {
                request_id: self.request_id,
            }))
            .await
    }
}
