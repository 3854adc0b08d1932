//! The relay's one registry of routes (namespaces announced with PUBLISH_NAMESPACE), tracks
//! (upstream subscriptions and PUBLISHed tracks) and namespace subscribers.

use moqlink_model::control::Filter;
use moqlink_model::{Location, TrackNamespace};
use moqlink_transport::client::AnySession;
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::lite::LiteSession;
use moqlink_transport::session::{SessionError, SubscribeOptions, INTERNAL_ERROR, TRACK_ENDED};
use moqlink_transport::track::{TrackEnd, TrackName, TrackProducer};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, Notify};

/// Whatever keeps an upstream subscription alive; dropping it unsubscribes.
pub(crate) type Keepalive = Box<dyn std::any::Any + Send + Sync>;

/// A session that publishes: draft-14 or moq-lite.
#[derive(Clone)]
pub(crate) enum Publisher {
    /// A draft-14 session (PUBLISH_NAMESPACE).
    Ietf(AnySession),
    /// A moq-lite session (ANNOUNCE).
    Lite(LiteSession<AnyConnection>),
}

/// How an upstream subscription ended.
pub(crate) type Ended = Pin<Box<dyn Future<Output = TrackEnd> + Send>>;

impl Publisher {
    /// Subscribes to `name` on this publisher, writing its objects into `into` alongside any
    /// other publisher's; returns what keeps the subscription alive and when it ends, and
    /// notes in `into` from where on it is complete (for FETCH from the cache).
    pub(crate) async fn subscribe(
        &self,
        name: &TrackName,
        into: &TrackProducer,
    ) -> Result<(Keepalive, Ended), SessionError> {
        match self {
            Publisher::Ietf(s) => {
                let opts = SubscribeOptions {
                    filter: Filter::LargestObject,
                    forward: true,
                    into: Some(into.clone()),
                    ..Default::default()
                };
                let sub = s.subscribe(name.clone(), opts).await?;
                into.set_complete_from(Location::after_largest(sub.largest()));
                let ended = sub.ended();
                let ended: Ended = Box::pin(async move {
                    match ended.await {
                        Some(d) => TrackEnd {
                            status: d.status_code,
                            reason: d.reason.to_string(),
                        },
                        None => TrackEnd {
                            status: INTERNAL_ERROR,
                            reason: "publisher session ended".into(),
                        },
                    }
                });
                Ok((Box::new(sub), ended))
            }
            Publisher::Lite(s) => {
                let path = moqlink_transport::lite::path_of(&name.namespace);
                let sub = s
                    .subscribe_into(&path, &name.name, 128, into.clone())
                    .await?;
                let ended = sub.ended();
                let ended: Ended = Box::pin(async move {
                    ended.await;
                    TrackEnd {
                        status: TRACK_ENDED,
                        reason: "subscribe stream closed".into(),
                    }
                });
                Ok((Box::new(sub), ended))
            }
        }
    }

    /// The draft-14 session, if this is one (FETCH and TRACK_STATUS need it).
    pub(crate) fn ietf(&self) -> Option<&AnySession> {
        match self {
            Publisher::Ietf(s) => Some(s),
            Publisher::Lite(_) => None,
        }
    }
}

/// A namespace a publisher session announced.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) session_id: u64,
    pub(crate) publisher: Publisher,
    pub(crate) namespace: TrackNamespace,
}

/// Where a track's objects come from.
pub(crate) enum Origin {
    /// A subscription this relay made upstream on behalf of its subscribers.
    Upstream,
    /// The publisher on this session sent PUBLISH for it.
    Published {
        /// The publisher's session ID.
        session: u64,
        /// The publisher's session, for FETCHes of what the cache does not hold.
        publisher: AnySession,
    },
}

impl Origin {
    /// The route to the publisher of a PUBLISHed track.
    pub(crate) fn published_route(&self, namespace: &TrackNamespace) -> Option<Route> {
        match self {
            Origin::Published { session, publisher } if publisher.close_reason().is_none() => {
                Some(Route {
                    session_id: *session,
                    publisher: Publisher::Ietf(publisher.clone()),
                    namespace: namespace.clone(),
                })
            }
            _ => None,
        }
    }
}

/// One track the relay carries: a shared producer that every downstream subscription reads,
/// written by every upstream subscription (one per matching publisher, §8.4) or by the
/// publisher that sent PUBLISH.
pub(crate) struct TrackEntry {
    pub(crate) producer: TrackProducer,
    pub(crate) origin: Origin,
    /// Upstream subscriptions (or the accepted PUBLISH) by publisher session; dropping one
    /// unsubscribes.
    upstreams: Mutex<Upstreams>,
    refs: AtomicUsize,
}

#[derive(Default)]
struct Upstreams {
    live: Vec<(u64, Keepalive)>,
    /// No more upstreams are taken: the last subscriber left or every upstream ended.
    closed: bool,
}

impl TrackEntry {
    /// An entry with no upstream yet (subscriptions are added as publishers answer).
    pub(crate) fn new(producer: TrackProducer, origin: Origin) -> Arc<Self> {
        Arc::new(TrackEntry {
            producer,
            origin,
            upstreams: Mutex::new(Upstreams::default()),
            refs: AtomicUsize::new(0),
        })
    }

    fn upstreams(&self) -> MutexGuard<'_, Upstreams> {
        self.upstreams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the track has ended (PUBLISH_DONE or its publisher left).
    pub(crate) fn ended(&self) -> bool {
        self.producer.status().end.is_some()
    }

    /// Whether `session_id` already feeds this track.
    pub(crate) fn has_upstream(&self, session_id: u64) -> bool {
        self.upstreams().live.iter().any(|(s, _)| *s == session_id)
    }

    /// Adds a publisher's subscription; false (and it is dropped) once the entry is closed.
    pub(crate) fn add_upstream(&self, session_id: u64, keepalive: Keepalive) -> bool {
        let mut up = self.upstreams();
        if up.closed || self.ended() {
            drop(up);
            drop(keepalive);
            return false;
        }
        up.live.push((session_id, keepalive));
        true
    }

    /// A publisher's subscription ended; the last one to end ends the track with its status.
    /// True when the track ended.
    pub(crate) fn upstream_ended(&self, session_id: u64, end: TrackEnd) -> bool {
        let mut up = self.upstreams();
        let Some(i) = up.live.iter().position(|(s, _)| *s == session_id) else {
            return false;
        };
        let gone = up.live.swap_remove(i);
        if !up.live.is_empty() {
            return false;
        }
        up.closed = true;
        drop(up);
        drop(gone);
        self.producer.finish(end);
        true
    }

    /// Drops every upstream subscription (unsubscribing) and takes no more.
    pub(crate) fn close_upstreams(&self) {
        let live = {
            let mut up = self.upstreams();
            up.closed = true;
            std::mem::take(&mut up.live)
        };
        drop(live);
    }

    pub(crate) fn acquire(&self) {
        self.refs.fetch_add(1, Ordering::AcqRel);
    }

    /// Drops one downstream reference; true when it was the last.
    pub(crate) fn release(&self) -> bool {
        self.refs.fetch_sub(1, Ordering::AcqRel) == 1
    }
}

/// Something a namespace subscriber should hear about.
#[derive(Clone)]
pub(crate) enum NsEvent {
    /// A namespace was announced under its prefix.
    Namespace(TrackNamespace),
    /// A namespace was withdrawn.
    NamespaceDone(TrackNamespace),
    /// A track was PUBLISHed under its prefix.
    Track(TrackProducer),
}

struct NsSubscriber {
    session_id: u64,
    prefix: TrackNamespace,
    tx: mpsc::UnboundedSender<NsEvent>,
}

#[derive(Default)]
struct State {
    routes: Vec<Route>,
    tracks: HashMap<TrackName, Arc<TrackEntry>>,
    ns_subscribers: Vec<NsSubscriber>,
}

/// Routes, tracks and namespace subscribers, shared by every session task.
#[derive(Default)]
pub(crate) struct Registry {
    state: Mutex<State>,
    /// Wakes subscriptions waiting for a namespace or track to appear.
    pub(crate) changed: Notify,
    /// Serializes upstream SUBSCRIBEs per track so concurrent subscribers share one.
    locks: Mutex<HashMap<TrackName, Arc<tokio::sync::Mutex<()>>>>,
}

impl Registry {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lock held while creating the upstream subscription for `name`.
    pub(crate) fn track_lock(&self, name: &TrackName) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        // Track names come from peers: keep only the locks someone still holds, so the map
        // stays as small as the number of upstream SUBSCRIBEs in flight.
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(name.clone()).or_default().clone()
    }

    /// Adds a route and tells matching namespace subscribers.
    pub(crate) fn add_route(&self, route: Route) {
        {
            let mut st = self.state();
            st.routes
                .retain(|r| !(r.session_id == route.session_id && r.namespace == route.namespace));
            let ns = route.namespace.clone();
            let from = route.session_id;
            st.routes.push(route);
            notify_ns(&mut st, &ns, from, NsEvent::Namespace(ns.clone()));
        }
        self.changed.notify_waiters();
    }

    /// Removes a session's route for `namespace` (PUBLISH_NAMESPACE_DONE).
    pub(crate) fn remove_route(&self, session_id: u64, namespace: &TrackNamespace) {
        let mut st = self.state();
        let before = st.routes.len();
        st.routes
            .retain(|r| !(r.session_id == session_id && &r.namespace == namespace));
        if st.routes.len() != before {
            notify_ns(
                &mut st,
                namespace,
                session_id,
                NsEvent::NamespaceDone(namespace.clone()),
            );
        }
    }

    /// Forgets everything a session published or subscribed to namespaces (it ended).
    pub(crate) fn remove_session(&self, session_id: u64) {
        let mut st = self.state();
        let gone: Vec<TrackNamespace> = st
            .routes
            .iter()
            .filter(|r| r.session_id == session_id)
            .map(|r| r.namespace.clone())
            .collect();
        st.routes.retain(|r| r.session_id != session_id);
        for ns in gone {
            notify_ns(&mut st, &ns, session_id, NsEvent::NamespaceDone(ns.clone()));
        }
        st.ns_subscribers.retain(|s| s.session_id != session_id);
        // The session's PUBLISHed tracks go even if their end has not been processed yet, and
        // so do ended tracks (a later request creates them afresh); tracks other publishers
        // still feed stay with their cache.
        st.tracks.retain(|_, t| {
            !t.ended()
                && !matches!(t.origin, Origin::Published { session, .. } if session == session_id)
        });
    }

    /// The route whose namespace is the longest prefix of `namespace`.
    pub(crate) fn route_for(&self, namespace: &TrackNamespace) -> Option<Route> {
        self.state()
            .routes
            .iter()
            .filter(|r| r.namespace.is_prefix_of(namespace))
            .max_by_key(|r| r.namespace.fields().len())
            .cloned()
    }

    /// Every publisher session with a namespace that is a prefix of `namespace` (§8.4), each
    /// once (by its longest matching route), longest match first.
    pub(crate) fn routes_for(&self, namespace: &TrackNamespace) -> Vec<Route> {
        let st = self.state();
        let mut matching: Vec<&Route> = st
            .routes
            .iter()
            .filter(|r| r.namespace.is_prefix_of(namespace))
            .collect();
        matching.sort_by_key(|r| std::cmp::Reverse(r.namespace.fields().len()));
        let mut out: Vec<Route> = Vec::new();
        for r in matching {
            if !out.iter().any(|o| o.session_id == r.session_id) {
                out.push(r.clone());
            }
        }
        out
    }

    /// Live tracks fed by upstream subscriptions whose namespace `prefix` matches.
    pub(crate) fn upstream_tracks_under(
        &self,
        prefix: &TrackNamespace,
    ) -> Vec<(TrackName, Arc<TrackEntry>)> {
        self.state()
            .tracks
            .iter()
            .filter(|(n, t)| {
                matches!(t.origin, Origin::Upstream)
                    && !t.ended()
                    && prefix.is_prefix_of(&n.namespace)
            })
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect()
    }

    /// A live track entry.
    pub(crate) fn track(&self, name: &TrackName) -> Option<Arc<TrackEntry>> {
        let mut st = self.state();
        match st.tracks.get(name) {
            Some(t) if t.ended() => {
                st.tracks.remove(name);
                None
            }
            Some(t) => Some(t.clone()),
            None => None,
        }
    }

    /// Adds a track; PUBLISHed tracks are announced to matching namespace subscribers.
    pub(crate) fn add_track(&self, name: TrackName, entry: Arc<TrackEntry>) {
        {
            let mut st = self.state();
            if let Origin::Published { session, .. } = entry.origin {
                let ev = NsEvent::Track(entry.producer.clone());
                notify_ns(&mut st, &name.namespace, session, ev);
            }
            st.tracks.insert(name, entry);
        }
        self.changed.notify_waiters();
    }

    /// Removes a track entry if it is still `entry`.
    pub(crate) fn remove_track(&self, name: &TrackName, entry: &Arc<TrackEntry>) {
        let mut st = self.state();
        if st.tracks.get(name).is_some_and(|t| Arc::ptr_eq(t, entry)) {
            st.tracks.remove(name);
        }
    }

    /// Whether `prefix` overlaps (prefix of, extension of, or equal to) an active namespace
    /// subscription of the same session (§9.28).
    pub(crate) fn ns_overlap(&self, session_id: u64, prefix: &TrackNamespace) -> bool {
        self.state().ns_subscribers.iter().any(|s| {
            s.session_id == session_id
                && (s.prefix.is_prefix_of(prefix) || prefix.is_prefix_of(&s.prefix))
        })
    }

    /// Registers a namespace subscriber and returns what currently matches its prefix.
    pub(crate) fn add_ns_subscriber(
        &self,
        session_id: u64,
        prefix: TrackNamespace,
        tx: mpsc::UnboundedSender<NsEvent>,
    ) -> Vec<NsEvent> {
        let mut st = self.state();
        let mut now: Vec<NsEvent> = st
            .routes
            .iter()
            .filter(|r| r.session_id != session_id && prefix.is_prefix_of(&r.namespace))
            .map(|r| NsEvent::Namespace(r.namespace.clone()))
            .collect();
        now.dedup_by(|a, b| match (a, b) {
            (NsEvent::Namespace(x), NsEvent::Namespace(y)) => x == y,
            _ => false,
        });
        for (name, t) in &st.tracks {
            if matches!(t.origin, Origin::Published { session, .. } if session != session_id)
                && !t.ended()
                && prefix.is_prefix_of(&name.namespace)
            {
                now.push(NsEvent::Track(t.producer.clone()));
            }
        }
        st.ns_subscribers.push(NsSubscriber {
            session_id,
            prefix,
            tx,
        });
        now
    }

    /// Ends a namespace subscription (UNSUBSCRIBE_NAMESPACE).
    pub(crate) fn remove_ns_subscriber(&self, session_id: u64, prefix: &TrackNamespace) {
        self.state()
            .ns_subscribers
            .retain(|s| !(s.session_id == session_id && &s.prefix == prefix));
    }
}

fn notify_ns(st: &mut State, ns: &TrackNamespace, from: u64, ev: NsEvent) {
    st.ns_subscribers.retain(|s| {
        if s.session_id == from || !s.prefix.is_prefix_of(ns) {
            return !s.tx.is_closed();
        }
        s.tx.send(ev.clone()).is_ok()
    });
}
