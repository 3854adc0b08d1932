//! One relay session: every request a client sends, answered from the registry, the cache, or
//! the publisher that owns the namespace.

use super::registry::{
    ended_of, subscribe_filter, Hold, NsRefusal, NsSubscriber, Origin, Publisher, Registry, Route,
    TrackEntry,
};
use super::request::{admit, Ask, Peer, Permit};
use super::upstream::{acquire_track, join_route, release, upstream_answer};
use super::RelayConfig;
use moqlink_model::codes::{FetchErrorCode, RequestErrorCode, SubscribeNamespaceErrorCode};
use moqlink_model::control::*;
use moqlink_model::params::VersionParameters;
use moqlink_model::{GroupOrder, Location, TrackNamespace};
use moqlink_transport::client::AnySession;
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::session::{
    FetchResponse, IncomingEvent, IncomingRequest, PublishAccept, SessionError,
};
use moqlink_transport::track::TrackName;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// What every session task shares.
pub(crate) struct Shared {
    pub(crate) registry: Registry,
    pub(crate) config: RelayConfig,
    /// The one shared session to the upstream relay, connected on first use.
    pub(crate) upstream: tokio::sync::Mutex<Upstream>,
    /// The next relay session ID (client sessions and each upstream connection).
    pub(crate) next_id: std::sync::atomic::AtomicU64,
    /// Live sessions and requests, relay-wide.
    pub(crate) live: Arc<super::LiveCounts>,
    /// Counters and open sessions, for `/metrics` and `/state`.
    pub(crate) metrics: Arc<super::metrics::Metrics>,
}

/// The states `moqlink_upstream_state` reports.
pub(crate) const UPSTREAM_STATES: [&str; 5] = ["none", "idle", "connecting", "connected", "down"];

impl Shared {
    /// A session ID no other session of this relay has had.
    pub(crate) fn new_session_id(&self) -> u64 {
        self.next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

/// The upstream relay's session, and when a failed connection may next be retried.
#[derive(Default)]
pub(crate) struct Upstream {
    /// The live connection and its relay session ID (fresh for each connection, so the end of
    /// an old one never removes what a new one registered).
    session: Option<(AnySession, u64)>,
    /// After a failure: not before this instant, and the wait after the next failure.
    retry: Option<(tokio::time::Instant, std::time::Duration)>,
}

/// The first wait after a failed upstream connection; it doubles with each failure.
const UPSTREAM_BACKOFF: std::time::Duration = std::time::Duration::from_millis(500);
/// The longest wait between upstream connection attempts.
const UPSTREAM_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(30);

impl Shared {
    /// The session to the upstream relay: `none` configured, `idle` (connected on first use),
    /// `connecting`, `connected`, or `down` (waiting to retry).
    pub(crate) fn upstream_state(&self) -> &'static str {
        if self.config.upstream.is_none() {
            return "none";
        }
        // Held only while connecting (or for a moment while a request looks it up).
        let Ok(slot) = self.upstream.try_lock() else {
            return "connecting";
        };
        match (&slot.session, slot.retry) {
            (Some((s, _)), _) if s.close_reason().is_none() => "connected",
            (_, Some(_)) => "down",
            (Some(_), None) => "down",
            (None, None) => "idle",
        }
    }

    /// The upstream relay's session, (re)connecting when needed.
    pub(crate) async fn upstream_session(self: &Arc<Self>) -> Option<(AnySession, u64)> {
        let up = self.config.upstream.as_ref()?;
        let mut slot = self.upstream.lock().await;
        if let Some((s, id)) = slot.session.as_ref() {
            if s.close_reason().is_none() {
                return Some((s.clone(), *id));
            }
        }
        // A relay that is down is not dialled again for every request: requests meanwhile
        // are answered at once (as if no upstream served them).
        if slot
            .retry
            .is_some_and(|(at, _)| tokio::time::Instant::now() < at)
        {
            return None;
        }
        // The relay presents its own credentials upstream, never a client's.
        let mut cfg = self.config.session.clone();
        cfg.auth_tokens = up.token.iter().map(|t| t.as_str().into()).collect();
        match moqlink_transport::client::connect(&up.client, &up.url, cfg).await {
            Ok((session, events)) => {
                tracing::info!(url = %up.url, "connected to the upstream relay");
                let id = self.new_session_id();
                slot.session = Some((session.clone(), id));
                slot.retry = None;
                // Requests from the upstream relay are served like any session's, but never
                // forwarded back up.
                let ctx = Ctx {
                    id,
                    session: session.clone(),
                    shared: self.clone(),
                    upstream_link: true,
                    peer: Peer::new(id, Default::default(), self.live.clone()),
                };
                spawn_serve(ctx, events);
                Some((session, id))
            }
            Err(e) => {
                let wait = slot
                    .retry
                    .map_or(UPSTREAM_BACKOFF, |(_, w)| (w * 2).min(UPSTREAM_BACKOFF_MAX));
                tracing::warn!(url = %up.url, error = %e, retry_in = ?wait, "upstream relay unreachable");
                slot.retry = Some((tokio::time::Instant::now() + wait, wait));
                None
            }
        }
    }
}

/// One client session of the relay.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) id: u64,
    pub(crate) session: AnySession,
    pub(crate) shared: Arc<Shared>,
    /// This is the session to the upstream relay.
    pub(crate) upstream_link: bool,
    /// Who the session is to the request path (credentials, what it holds).
    pub(crate) peer: Arc<Peer>,
}

/// Serves a session on its own task.
pub(crate) fn spawn_serve(ctx: Ctx, events: mpsc::Receiver<IncomingEvent>) {
    tokio::spawn(serve(ctx, events));
}

/// Answers the session's requests until it ends, then removes its routes.
pub(crate) async fn serve(ctx: Ctx, mut events: mpsc::Receiver<IncomingEvent>) {
    ctx.shared.registry.open_session(ctx.id);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                // Namespace requests are decided in order with the notices that end them
                // (PUBLISH_NAMESPACE_DONE, UNSUBSCRIBE_NAMESPACE): a DONE right behind its
                // PUBLISH_NAMESPACE must find the route. They wait on nothing but this
                // session's own control stream.
                Some(IncomingEvent::Request(req))
                    if matches!(
                        req.message,
                        ControlMessage::PublishNamespace(_) | ControlMessage::SubscribeNamespace(_)
                    ) =>
                {
                    ctx.request(*req).await;
                }
                Some(IncomingEvent::Request(req)) => {
                    let ctx = ctx.clone();
                    tokio::spawn(async move { ctx.request(*req).await });
                }
                Some(IncomingEvent::Notice(n)) => ctx.notice(*n),
                None => break,
            },
            close = ctx.session.closed() => {
                tracing::info!(session = ctx.id, %close, "session ended");
                break;
            }
        }
    }
    ctx.shared.registry.remove_session(ctx.id);
}

/// The request path's view of a draft-14 request; `None` for a message that is no request the
/// relay serves.
fn ask_of(msg: &ControlMessage) -> Option<Ask> {
    use ControlMessage as M;
    let name = TrackName::requested_by(msg);
    Some(match (msg, name) {
        (M::PublishNamespace(m), _) => Ask::PublishNamespace(m.namespace.clone()),
        (M::SubscribeNamespace(m), _) => Ask::SubscribeNamespace(m.namespace_prefix.clone()),
        (M::Publish(_), Some(n)) => Ask::Publish(n),
        (M::Subscribe(_), Some(n)) => Ask::Subscribe(n),
        (M::TrackStatus(_), Some(n)) => Ask::TrackStatus(n),
        (M::Fetch(_), Some(n)) => Ask::Fetch(n),
        (M::Fetch(_), None) => Ask::JoiningFetch,
        _ => return None,
    })
}

/// The publisher for `namespace`: a local route, else (when allowed) the upstream relay.
async fn route(shared: &Arc<Shared>, namespace: &TrackNamespace, upstream: bool) -> Option<Route> {
    let rules = &shared.config.auth;
    if let Some(r) = shared
        .registry
        .route_for(namespace, |r| r.may_publish(rules, namespace))
    {
        return Some(r);
    }
    if !upstream {
        return None;
    }
    upstream_route(shared, namespace).await
}

/// The upstream relay as the publisher of `namespace`, when one is configured and reachable.
pub(crate) async fn upstream_route(
    shared: &Arc<Shared>,
    namespace: &TrackNamespace,
) -> Option<Route> {
    let (session, id) = shared.upstream_session().await?;
    Some(Route {
        session_id: id,
        publisher: Publisher::Ietf(session),
        namespace: namespace.clone(),
        hold: Arc::new(()),
        credentials: None,
    })
}

impl Ctx {
    async fn route(&self, namespace: &TrackNamespace) -> Option<Route> {
        route(&self.shared, namespace, !self.upstream_link).await
    }

    fn notice(&self, msg: ControlMessage) {
        match msg {
            ControlMessage::PublishNamespaceDone(d) => {
                tracing::info!(session = self.id, namespace = %d.namespace, "PUBLISH_NAMESPACE_DONE");
                self.shared.registry.remove_route(self.id, &d.namespace);
            }
            ControlMessage::UnsubscribeNamespace(u) => {
                self.shared
                    .registry
                    .remove_ns_subscriber(self.id, &u.namespace_prefix);
            }
            other => tracing::debug!(msg = other.message_type().name(), "notice ignored"),
        }
    }

    async fn request(&self, req: IncomingRequest) {
        let kind = req.message.message_type();
        let Some(ask) = ask_of(&req.message) else {
            if let Err(e) = req.responder.not_supported(kind.name()).await {
                tracing::debug!(session = self.id, request = kind.name(), error = %e, "request failed");
            }
            return;
        };
        let shared = &self.shared;
        let permit = match admit(
            &shared.config.auth,
            &shared.config.limits,
            &self.peer,
            &ask,
            &req.tokens,
        ) {
            Ok(p) => p,
            Err(refusal) => {
                tracing::info!(session = self.id, request = kind.name(), code = refusal.code.code(), reason = %refusal.reason, "refused");
                let _ = req.responder.reject(refusal.code, &refusal.reason).await;
                return;
            }
        };
        let result = match ask {
            Ask::PublishNamespace(ns) => self.publish_namespace(req, ns, permit).await,
            Ask::Subscribe(name) => self.subscribe(req, name, permit).await,
            Ask::TrackStatus(name) => self.track_status(req, name).await,
            Ask::Fetch(name) => self.fetch(req, name, permit).await,
            // Joining fetches refer to a subscription this session serves.
            Ask::JoiningFetch => self.serve_counted_fetch(req, None, permit).await,
            Ask::Publish(name) => self.publish(req, name, permit).await,
            Ask::SubscribeNamespace(prefix) => self.subscribe_namespace(req, prefix, permit).await,
        };
        if let Err(e) = result {
            tracing::debug!(session = self.id, request = kind.name(), error = %e, "request failed");
        }
    }

    async fn publish_namespace(
        &self,
        req: IncomingRequest,
        ns: TrackNamespace,
        permit: Permit,
    ) -> Result<(), SessionError> {
        let IncomingRequest {
            responder,
            followups,
            ..
        } = req;
        let id = responder.id();
        tracing::info!(session = self.id, namespace = %ns, "PUBLISH_NAMESPACE");
        // The route holds the request (its credit returns at PUBLISH_NAMESPACE_DONE) and the
        // permit (the session's namespace count).
        let credentials = Some(permit.credentials.clone());
        let hold: Hold = Arc::new(Mutex::new((permit, followups)));
        let route = Route {
            session_id: self.id,
            publisher: Publisher::Ietf(self.session.clone()),
            namespace: ns,
            hold,
            credentials,
        };
        if !self.shared.registry.add_route(route.clone()) {
            return responder
                .reject(
                    RequestErrorCode::INTERNAL_ERROR,
                    "namespace already published on this session",
                )
                .await;
        }
        join_route(&self.shared, &route);
        responder
            .accept(ControlMessage::PublishNamespaceOk(RequestRef {
                request_id: id,
            }))
            .await
    }

    async fn subscribe(
        &self,
        req: IncomingRequest,
        name: TrackName,
        permit: Permit,
    ) -> Result<(), SessionError> {
        let got = match acquire_track(&self.shared, &name, !self.upstream_link).await {
            Ok(e) => e,
            Err((code, reason)) => return req.responder.reject(code, &reason).await,
        };
        let entry = got.entry;
        // The request that opened the track is answered as its publisher answered the relay:
        // objects sent for it may already be here, and Largest Object must not skip them.
        let largest = match got.opened {
            Some(upstream) => upstream,
            None => entry.producer.status().largest,
        };
        let served = self
            .session
            .serve_subscribe_from(req, &entry.producer, largest)
            .await;
        let handle = match served {
            Ok(Some(h)) => h,
            other => {
                self.release(&name, &entry);
                return other.map(|_| ());
            }
        };
        let me = self.clone();
        tokio::spawn(async move {
            let _ = handle.await;
            me.release(&name, &entry);
            drop(permit);
        });
        Ok(())
    }

    fn release(&self, name: &TrackName, entry: &Arc<TrackEntry>) {
        release(&self.shared, name, entry);
    }

    async fn track_status(
        &self,
        req: IncomingRequest,
        name: TrackName,
    ) -> Result<(), SessionError> {
        if let Some(t) = self.shared.registry.track(&name) {
            return self
                .session
                .serve_track_status(req, Some(&t.producer))
                .await;
        }
        let Some(route) = self.route(&name.namespace).await else {
            return self.session.serve_track_status(req, None).await;
        };
        let id = req.responder.id();
        let Some(upstream) = route.publisher.ietf() else {
            return self.session.serve_track_status(req, None).await;
        };
        match upstream_answer(MessageType::TrackStatusError, upstream.track_status(&name)).await {
            Ok(mut ok) => {
                ok.request_id = id;
                ok.track_alias = 0;
                req.responder
                    .accept(ControlMessage::TrackStatusOk(ok))
                    .await
            }
            Err(SessionError::Rejected { code, reason, .. }) => {
                req.responder
                    .reject(RequestErrorCode::raw(code), &reason)
                    .await
            }
            Err(e) => {
                req.responder
                    .reject(RequestErrorCode::INTERNAL_ERROR, &e.to_string())
                    .await
            }
        }
    }

    /// A standalone FETCH, served while `permit` counts it against the session's limit.
    async fn fetch(
        &self,
        req: IncomingRequest,
        track_name: TrackName,
        permit: Permit,
    ) -> Result<(), SessionError> {
        // `Ask::Fetch` is made for a standalone FETCH only.
        let ControlMessage::Fetch(f) = &req.message else {
            return Ok(());
        };
        let FetchKind::Standalone { start, .. } = &f.fetch else {
            return Ok(());
        };
        if let Some(t) = self.shared.registry.track(&track_name) {
            // What the cache never had, or no longer has, comes from the publisher: the one
            // that PUBLISHed the track, else one whose namespace routes it.
            if !t.producer.retains_from(*start) {
                let route = match t.origin.published_route(&track_name.namespace) {
                    Some(route) => Some(route),
                    None => self.route(&track_name.namespace).await,
                };
                // Never back to the requester itself: it asked because it lacks the objects.
                let route = route.filter(|r| r.session_id != self.id);
                if let Some(route) = route.filter(|r| r.publisher.ietf().is_some()) {
                    match upstream_fetch(&route, f).await {
                        Ok(up) => return self.relay_fetch(req, up).await,
                        // Refused upstream: the cache answers if it holds the whole range,
                        // else FETCH_ERROR UNKNOWN_STATUS_IN_RANGE (§9.16.3).
                        Err(e) => tracing::debug!(error = %e, "upstream FETCH refused"),
                    }
                }
            }
            return self
                .serve_counted_fetch(req, Some(&t.producer), permit)
                .await;
        }
        match self.route(&track_name.namespace).await {
            Some(route) => self.fetch_upstream(req, route).await,
            None => self.session.serve_fetch(req, None).await,
        }
    }

    /// Serves a FETCH from `track` (or the subscription it joins); `permit` counts it until
    /// its stream is sent, not just until FETCH_OK.
    async fn serve_counted_fetch(
        &self,
        req: IncomingRequest,
        track: Option<&moqlink_transport::track::TrackProducer>,
        permit: Permit,
    ) -> Result<(), SessionError> {
        if let Some(task) = self.session.serve_fetch_sending(req, track).await? {
            let _ = task.await;
        }
        drop(permit);
        Ok(())
    }

    /// A FETCH for a track not in the cache: forwarded to the publisher, its objects relayed;
    /// the publisher's refusal is passed on.
    async fn fetch_upstream(&self, req: IncomingRequest, route: Route) -> Result<(), SessionError> {
        let ControlMessage::Fetch(f) = &req.message else {
            return Ok(());
        };
        match upstream_fetch(&route, f).await {
            Ok(up) => self.relay_fetch(req, up).await,
            Err(SessionError::Rejected { code, reason, .. }) => {
                req.responder
                    .reject(RequestErrorCode::raw(code), &reason)
                    .await
            }
            Err(e) => {
                req.responder
                    .reject(RequestErrorCode::INTERNAL_ERROR, &e.to_string())
                    .await
            }
        }
    }

    /// Answers FETCH_OK as the publisher did and relays the publisher's objects until the
    /// stream ends or the requester cancels.
    async fn relay_fetch(
        &self,
        req: IncomingRequest,
        mut up: FetchResponse<AnyConnection>,
    ) -> Result<(), SessionError> {
        let IncomingRequest {
            message,
            responder,
            mut followups,
            ..
        } = req;
        let ControlMessage::Fetch(f) = message else {
            return Ok(());
        };
        let mut ok = up.ok.clone();
        ok.request_id = f.request_id;
        responder.accept(ControlMessage::FetchOk(ok)).await?;
        let mut writer = match self.session.open_fetch(f.request_id, 0).await {
            Ok(w) => w,
            Err(e) => return Err(SessionError::Unexpected(e.to_string())),
        };
        loop {
            tokio::select! {
                obj = up.next() => match obj {
                    Ok(Some(o)) => {
                        if writer.write(&o).await.is_err() {
                            let _ = up.cancel().await;
                            return Ok(());
                        }
                    }
                    Ok(None) => {
                        let _ = writer.finish();
                        return Ok(());
                    }
                    Err(_) => {
                        let _ = writer.reset(moqlink_model::data::reset_code::INTERNAL_ERROR);
                        return Ok(());
                    }
                },
                msg = followups.next() => {
                    if matches!(msg, Some(ControlMessage::FetchCancel(_)) | None) {
                        let _ = writer.reset(moqlink_model::data::reset_code::CANCELLED);
                        let _ = up.cancel().await;
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn publish(
        &self,
        req: IncomingRequest,
        name: TrackName,
        permit: Permit,
    ) -> Result<(), SessionError> {
        tracing::info!(session = self.id, track = %name, "PUBLISH");
        // One publisher per PUBLISHed track: a second session's PUBLISH of a live track is
        // refused, so it can neither replace nor interleave with the first one's objects.
        if self.shared.registry.published_elsewhere(&name) {
            return req
                .responder
                .reject(
                    RequestErrorCode::INTERNAL_ERROR,
                    "this track is already published by another session",
                )
                .await;
        }
        let accept = PublishAccept {
            forward: true,
            group_order: GroupOrder::Original,
            // Everything the publisher sends from now on is cached for later subscribers.
            filter: Filter::AbsoluteStart {
                start: moqlink_model::Location::new(0, 0),
            },
            track: self.shared.config.track.clone(),
            ..Default::default()
        };
        let sub = self.session.accept_publish(req, accept).await?;
        sub.track()
            .set_complete_from(Location::after_largest(sub.largest()));
        let entry = TrackEntry::new(
            sub.track().clone(),
            Origin::Published {
                session: self.id,
                publisher: self.session.clone(),
            },
        );
        let ended = ended_of(sub.ended());
        entry.add_upstream(self.id, Box::new((sub, permit)));
        if !self.shared.registry.add_track(name.clone(), entry.clone()) {
            // Lost a race with another PUBLISH of the same name, or the session ended: end
            // ours (UNSUBSCRIBE).
            tracing::info!(session = self.id, track = %name, "PUBLISH of a track published meanwhile ended");
            entry.close_upstreams();
            return Ok(());
        }
        // At PUBLISH_DONE the track leaves the registry and its permit is freed, so a
        // long-lived publisher's ended tracks do not count against its limit.
        let (shared, id) = (self.shared.clone(), self.id);
        tokio::spawn(async move {
            let end = ended.await;
            entry.upstream_ended(id, end);
            shared.registry.remove_track(&name, &entry);
        });
        Ok(())
    }

    async fn subscribe_namespace(
        &self,
        req: IncomingRequest,
        prefix: TrackNamespace,
        permit: Permit,
    ) -> Result<(), SessionError> {
        let registry = &self.shared.registry;
        let IncomingRequest {
            responder,
            followups,
            ..
        } = req;
        let id = responder.id();
        let (tx, rx) = mpsc::channel(self.shared.config.limits.namespace_events.max(1));
        let lagged = Arc::new(AtomicBool::new(false));
        let filter = subscribe_filter(&self.shared.config.auth, &permit.credentials);
        let added = registry.add_ns_subscriber(
            NsSubscriber {
                key: 0,
                session_id: self.id,
                prefix: prefix.clone(),
                filter: filter.clone(),
                tx,
                lagged: lagged.clone(),
                // Held until UNSUBSCRIBE_NAMESPACE or the session's end: the request's credit
                // returns then.
                hold: Arc::new(Mutex::new((permit, followups))),
            },
            true,
        );
        let current = match added {
            Ok((_, current)) => current,
            Err(NsRefusal::Overlap) => {
                return responder
                    .reject(
                        SubscribeNamespaceErrorCode::NamespacePrefixOverlap,
                        "prefix overlaps an active SUBSCRIBE_NAMESPACE",
                    )
                    .await
            }
            Err(NsRefusal::Gone) => return Ok(()),
        };
        responder
            .accept(ControlMessage::SubscribeNamespaceOk(RequestRef {
                request_id: id,
            }))
            .await?;
        let feed = super::namespaces::NsFeed::new(
            self.session.clone(),
            self.shared.clone(),
            prefix,
            filter,
            lagged,
            self.id,
        );
        tokio::spawn(feed.run(current, rx));
        Ok(())
    }
}

/// Sends the FETCH `f` to `route`'s publisher.
async fn upstream_fetch(
    route: &Route,
    f: &Fetch,
) -> Result<FetchResponse<AnyConnection>, SessionError> {
    let Some(publisher) = route.publisher.ietf() else {
        return Err(SessionError::Rejected {
            kind: MessageType::FetchError,
            code: FetchErrorCode::TrackDoesNotExist.code(),
            reason: "the publisher speaks moq-lite, which has no FETCH".into(),
        });
    };
    // The requester's AUTHORIZATION_TOKENs are for this relay, never for the publisher. (A
    // late FETCH_OK after the timeout is cancelled by the session.)
    let fetch = publisher.fetch(
        f.fetch.clone(),
        f.subscriber_priority,
        f.group_order,
        without_tokens(&f.parameters),
    );
    upstream_answer(MessageType::FetchError, fetch).await
}

/// `params` without AUTHORIZATION_TOKEN: what the relay forwards of a client's request.
fn without_tokens(params: &VersionParameters) -> VersionParameters {
    let mut out = VersionParameters::new();
    for p in &params.0 {
        if !matches!(
            p,
            moqlink_model::params::Parameter::AuthorizationToken { .. }
        ) {
            out.push(p.clone());
        }
    }
    out
}
