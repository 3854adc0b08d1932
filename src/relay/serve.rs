//! One relay session: every request a client sends, answered from the registry, the cache, or
//! the publisher that owns the namespace.

use super::config::Action;
use super::registry::{NsEvent, Origin, Publisher, Registry, Route, TrackEntry};
use super::upstream::{join_route, release, track_for, UPSTREAM_ANSWER};
use super::RelayConfig;
use moqlink_model::control::*;
use moqlink_model::params::VersionParameters;
use moqlink_model::{GroupOrder, Location, TrackNamespace};
use moqlink_transport::client::AnySession;
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::session::{
    FetchResponse, IncomingEvent, IncomingRequest, PublishAccept, SessionError, INTERNAL_ERROR,
    TRACK_DOES_NOT_EXIST,
};
use moqlink_transport::track::TrackName;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// SUBSCRIBE_NAMESPACE_ERROR: the prefix overlaps an active one (§9.28).
const NAMESPACE_PREFIX_OVERLAP: u64 = 0x5;

/// Session ID used for routes through the upstream relay.
const UPSTREAM_SESSION: u64 = 0;

/// What every session task shares.
pub(crate) struct Shared {
    pub(crate) registry: Registry,
    pub(crate) config: RelayConfig,
    /// The one shared session to the upstream relay, connected on first use.
    pub(crate) upstream: tokio::sync::Mutex<Option<AnySession>>,
}

impl Shared {
    /// The upstream relay's session, (re)connecting when needed.
    pub(crate) async fn upstream_session(self: &Arc<Self>) -> Option<AnySession> {
        let up = self.config.upstream.as_ref()?;
        let mut slot = self.upstream.lock().await;
        if let Some(s) = slot.as_ref() {
            if s.close_reason().is_none() {
                return Some(s.clone());
            }
        }
        match moqlink_transport::client::connect(&up.client, &up.url, self.config.session.clone())
            .await
        {
            Ok((session, events)) => {
                tracing::info!(url = %up.url, "connected to the upstream relay");
                *slot = Some(session.clone());
                // Requests from the upstream relay are served like any session's, but never
                // forwarded back up.
                let ctx = Ctx {
                    id: UPSTREAM_SESSION,
                    session: session.clone(),
                    shared: self.clone(),
                    upstream_link: true,
                };
                spawn_serve(ctx, events);
                Some(session)
            }
            Err(e) => {
                tracing::warn!(url = %up.url, error = %e, "upstream relay unreachable");
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
}

/// Serves a session on its own task.
pub(crate) fn spawn_serve(ctx: Ctx, events: mpsc::Receiver<IncomingEvent>) {
    tokio::spawn(serve(ctx, events));
}

/// Answers the session's requests until it ends, then removes its routes.
pub(crate) async fn serve(ctx: Ctx, mut events: mpsc::Receiver<IncomingEvent>) {
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(IncomingEvent::Request(req)) => {
                    let ctx = ctx.clone();
                    tokio::spawn(async move { ctx.request(req).await });
                }
                Some(IncomingEvent::Notice(n)) => ctx.notice(n),
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

/// *_ERROR code 0x1 (UNAUTHORIZED).
const UNAUTHORIZED: u64 = 0x1;

/// What a request needs authorization for, and on which namespace.
fn authorization_scope(msg: &ControlMessage) -> Option<(Action, TrackNamespace)> {
    use ControlMessage as M;
    Some(match msg {
        M::PublishNamespace(m) => (Action::Publish, m.namespace.clone()),
        M::Publish(m) => (Action::Publish, m.namespace.clone()),
        M::Subscribe(m) | M::TrackStatus(m) => (Action::Subscribe, m.namespace.clone()),
        M::SubscribeNamespace(m) => (Action::Subscribe, m.namespace_prefix.clone()),
        M::Fetch(f) => match &f.fetch {
            FetchKind::Standalone { namespace, .. } => (Action::Subscribe, namespace.clone()),
            _ => return None,
        },
        _ => return None,
    })
}

/// The publisher for `namespace`: a local route, else (when allowed) the upstream relay.
async fn route(shared: &Arc<Shared>, namespace: &TrackNamespace, upstream: bool) -> Option<Route> {
    if let Some(r) = shared.registry.route_for(namespace) {
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
    let session = shared.upstream_session().await?;
    Some(Route {
        session_id: UPSTREAM_SESSION,
        publisher: Publisher::Ietf(session),
        namespace: namespace.clone(),
    })
}

impl Ctx {
    async fn route(&self, namespace: &TrackNamespace) -> Option<Route> {
        route(&self.shared, namespace, !self.upstream_link).await
    }

    /// Whether the request's tokens (and the session's SETUP tokens) allow `action`.
    fn allowed(&self, action: Action, namespace: &TrackNamespace, req: &IncomingRequest) -> bool {
        let mut tokens = req.tokens.clone();
        tokens.extend_from_slice(self.session.setup_tokens());
        self.shared.config.auth.allows(action, namespace, &tokens)
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
        if let Some((action, ns)) = authorization_scope(&req.message) {
            if !self.allowed(action, &ns, &req) {
                tracing::info!(session = self.id, request = kind.name(), namespace = %ns, "unauthorized");
                let _ = req
                    .responder
                    .reject(UNAUTHORIZED, "not authorized for this namespace")
                    .await;
                return;
            }
        }
        let name = TrackName::requested_by(&req.message);
        let result = match (&req.message, name) {
            (ControlMessage::PublishNamespace(m), _) => {
                let ns = m.namespace.clone();
                self.publish_namespace(req, ns).await
            }
            (ControlMessage::Subscribe(_), Some(name)) => self.subscribe(req, name).await,
            (ControlMessage::TrackStatus(_), Some(name)) => self.track_status(req, name).await,
            (ControlMessage::Fetch(_), _) => self.fetch(req).await,
            (ControlMessage::Publish(_), _) => self.publish(req).await,
            (ControlMessage::SubscribeNamespace(m), _) => {
                let prefix = m.namespace_prefix.clone();
                self.subscribe_namespace(req, prefix).await
            }
            _ => req.responder.not_supported(kind.name()).await,
        };
        if let Err(e) = result {
            tracing::debug!(session = self.id, request = kind.name(), error = %e, "request failed");
        }
    }

    async fn publish_namespace(
        &self,
        req: IncomingRequest,
        ns: TrackNamespace,
    ) -> Result<(), SessionError> {
        let id = req.responder.id();
        tracing::info!(session = self.id, namespace = %ns, "PUBLISH_NAMESPACE");
        let route = Route {
            session_id: self.id,
            publisher: Publisher::Ietf(self.session.clone()),
            namespace: ns,
        };
        self.shared.registry.add_route(route.clone());
        join_route(&self.shared, &route);
        req.responder
            .accept(ControlMessage::PublishNamespaceOk(RequestRef {
                request_id: id,
            }))
            .await
    }

    async fn track_for(&self, name: &TrackName) -> Result<Arc<TrackEntry>, (u64, String)> {
        track_for(&self.shared, name, !self.upstream_link).await
    }

    async fn subscribe(&self, req: IncomingRequest, name: TrackName) -> Result<(), SessionError> {
        let entry = match self.track_for(&name).await {
            Ok(e) => e,
            Err((code, reason)) => return req.responder.reject(code, &reason).await,
        };
        entry.acquire();
        let handle = match self.session.serve_subscribe(req, &entry.producer).await {
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
        match upstream.track_status(&name).await {
            Ok(mut ok) => {
                ok.request_id = id;
                ok.track_alias = 0;
                req.responder
                    .accept(ControlMessage::TrackStatusOk(ok))
                    .await
            }
            Err(SessionError::Rejected { code, reason, .. }) => {
                req.responder.reject(code, &reason).await
            }
            Err(e) => req.responder.reject(INTERNAL_ERROR, &e.to_string()).await,
        }
    }

    async fn fetch(&self, req: IncomingRequest) -> Result<(), SessionError> {
        let ControlMessage::Fetch(f) = &req.message else {
            return Ok(());
        };
        let (FetchKind::Standalone { start, .. }, Some(track_name)) =
            (&f.fetch, TrackName::requested_by(&req.message))
        else {
            // Joining fetches refer to a subscription this session serves.
            return self.session.serve_fetch(req, None).await;
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
                        // Refused upstream: the cache still answers what it holds.
                        Err(e) => tracing::debug!(error = %e, "upstream FETCH refused"),
                    }
                }
            }
            return self.session.serve_fetch(req, Some(&t.producer)).await;
        }
        match self.route(&track_name.namespace).await {
            Some(route) => self.fetch_upstream(req, route).await,
            None => self.session.serve_fetch(req, None).await,
        }
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
                req.responder.reject(code, &reason).await
            }
            Err(e) => req.responder.reject(INTERNAL_ERROR, &e.to_string()).await,
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

    async fn publish(&self, req: IncomingRequest) -> Result<(), SessionError> {
        let Some(name) = TrackName::requested_by(&req.message) else {
            return Ok(());
        };
        tracing::info!(session = self.id, track = %name, "PUBLISH");
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
        entry.add_upstream(self.id, Box::new(sub));
        self.shared.registry.add_track(name, entry);
        Ok(())
    }

    async fn subscribe_namespace(
        &self,
        req: IncomingRequest,
        prefix: TrackNamespace,
    ) -> Result<(), SessionError> {
        let registry = &self.shared.registry;
        if registry.ns_overlap(self.id, &prefix) {
            return req
                .responder
                .reject(
                    NAMESPACE_PREFIX_OVERLAP,
                    "prefix overlaps an active SUBSCRIBE_NAMESPACE",
                )
                .await;
        }
        let id = req.responder.id();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let current = registry.add_ns_subscriber(self.id, prefix.clone(), tx.clone());
        req.responder
            .accept(ControlMessage::SubscribeNamespaceOk(RequestRef {
                request_id: id,
            }))
            .await?;
        for ev in current {
            let _ = tx.send(ev);
        }
        drop(tx);
        let session = self.session.clone();
        tokio::spawn(async move {
            let mut published = HashMap::new();
            while let Some(ev) = rx.recv().await {
                match ev {
                    NsEvent::Namespace(ns) => {
                        match session
                            .publish_namespace(ns.clone(), VersionParameters::new())
                            .await
                        {
                            Ok(p) => {
                                published.insert(ns, p);
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "PUBLISH_NAMESPACE to a namespace subscriber failed")
                            }
                        }
                    }
                    NsEvent::NamespaceDone(ns) => {
                        if let Some(p) = published.remove(&ns) {
                            let _ = p.done().await;
                        }
                    }
                    NsEvent::Track(track) => {
                        let s = session.clone();
                        tokio::spawn(async move {
                            if let Err(e) = s.publish(&track, true, VersionParameters::new()).await
                            {
                                tracing::debug!(error = %e, "PUBLISH to a namespace subscriber failed");
                            }
                        });
                    }
                }
            }
        });
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
            kind: "FETCH_ERROR",
            code: TRACK_DOES_NOT_EXIST,
            reason: "the publisher speaks moq-lite, which has no FETCH".into(),
        });
    };
    // A publisher that never answers must not leave the downstream FETCH unanswered (its late
    // FETCH_OK is cancelled by the session).
    let fetch = publisher.fetch(
        f.fetch.clone(),
        f.subscriber_priority,
        f.group_order,
        f.parameters.clone(),
    );
    tokio::time::timeout(UPSTREAM_ANSWER, fetch)
        .await
        .unwrap_or_else(|_| {
            Err(SessionError::Rejected {
                kind: "FETCH_ERROR",
                code: INTERNAL_ERROR,
                reason: format!("publisher did not answer within {UPSTREAM_ANSWER:?}"),
            })
        })
}
