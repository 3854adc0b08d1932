//! The relay's one registry of routes (namespaces announced with PUBLISH_NAMESPACE), tracks
//! (upstream subscriptions and PUBLISHed tracks) and namespace subscribers.

use super::auth::{Action, AuthRules, Credentials};
use moqlink_model::codes::PublishDoneCode;
use moqlink_model::control::Filter;
use moqlink_model::{Location, TrackNamespace};
use moqlink_transport::client::AnySession;
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::lite::LiteSession;
use moqlink_transport::session::{SessionError, SubscribeOptions};
use moqlink_transport::track::{TrackEnd, TrackName, TrackProducer};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
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
    ) -> Result<(Keepalive, Ended, Option<Location>), SessionError> {
        match self {
            Publisher::Ietf(s) => {
                let opts = SubscribeOptions {
                    filter: Filter::LargestObject,
                    forward: true,
                    into: Some(into.clone()),
                    ..Default::default()
                };
                let sub = s.subscribe(name.clone(), opts).await?;
                let largest = sub.largest();
                into.set_complete_from(Location::after_largest(largest));
                let ended = ended_of(sub.ended());
                Ok((Box::new(sub), ended, largest))
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
                        status: PublishDoneCode::TrackEnded,
                        reason: "subscribe stream closed".into(),
                    }
                });
                // moq-lite reports no largest: the new track holds only what this sends.
                Ok((Box::new(sub), ended, None))
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

/// Whatever a registry entry holds for its session until it goes: the request's permit, and
/// for draft-14 the request itself, whose request credit returns only then.
pub(crate) type Hold = Arc<dyn std::any::Any + Send + Sync>;

/// How a draft-14 subscription ended (its PUBLISH_DONE, or its session's end).
pub(crate) fn ended_of(
    ended: impl Future<Output = Option<moqlink_model::control::PublishDone>> + Send + 'static,
) -> Ended {
    Box::pin(async move {
        match ended.await {
            Some(d) => TrackEnd {
                status: PublishDoneCode::from_code(d.status_code),
                reason: d.reason.to_string(),
            },
            None => TrackEnd {
                status: PublishDoneCode::InternalError,
                reason: "publisher session ended".into(),
            },
        }
    })
}

/// A namespace a publisher session announced.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) session_id: u64,
    pub(crate) publisher: Publisher,
    pub(crate) namespace: TrackNamespace,
    /// Released when the route goes (PUBLISH_NAMESPACE_DONE, ANNOUNCE ended, session end).
    pub(crate) hold: Hold,
    /// What the publisher presented when it announced; `None` for publishers the relay trusts
    /// (its upstream relay, the session that PUBLISHed the very track).
    pub(crate) credentials: Option<Credentials>,
}

impl Route {
    /// Whether this publisher may publish tracks in `namespace`: announcing a prefix does not
    /// make it the publisher of namespaces under it that a longer rule protects (§8.4).
    pub(crate) fn may_publish(&self, rules: &AuthRules, namespace: &TrackNamespace) -> bool {
        self.credentials
            .as_ref()
            .is_none_or(|c| rules.allows(Action::Publish, namespace, c))
    }
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
                    hold: Arc::new(()),
                    credentials: None,
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
}

#[derive(Default)]
struct Upstreams {
    live: Vec<(u64, Keepalive)>,
    /// No more upstreams are taken: the last subscriber left or every upstream ended.
    closed: bool,
    /// Downstream subscriptions reading the track (counted under the same lock as `closed`,
    /// so a subscriber never joins an entry its last subscriber is closing).
    refs: usize,
}

impl TrackEntry {
    /// An entry with no upstream yet (subscriptions are added as publishers answer).
    pub(crate) fn new(producer: TrackProducer, origin: Origin) -> Arc<Self> {
        Arc::new(TrackEntry {
            producer,
            origin,
            upstreams: Mutex::new(Upstreams::default()),
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

    /// Counts one more downstream subscription; false when the entry is already closed (the
    /// caller looks the track up again).
    pub(crate) fn acquire(&self) -> bool {
        let mut up = self.upstreams();
        if up.closed {
            return false;
        }
        up.refs += 1;
        true
    }

    /// Downstream subscriptions reading the track now.
    pub(crate) fn subscribers(&self) -> usize {
        self.upstreams().refs
    }

    /// Drops one downstream subscription. The last one closes a track the relay subscribed
    /// to upstream (unsubscribing); true when it did.
    pub(crate) fn release(&self) -> bool {
        let live = {
            let mut up = self.upstreams();
            up.refs = up.refs.saturating_sub(1);
            if up.refs > 0 || !matches!(self.origin, Origin::Upstream) || up.closed {
                return false;
            }
            up.closed = true;
            std::mem::take(&mut up.live)
        };
        drop(live);
        true
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

/// Decides which namespaces a namespace subscriber may learn of (its credentials).
pub(crate) type NsFilter = Arc<dyn Fn(&TrackNamespace) -> bool + Send + Sync>;

/// The filter of a namespace subscription made with `creds`: the namespaces they may subscribe
/// to under `rules`.
pub(crate) fn subscribe_filter(rules: &AuthRules, creds: &Credentials) -> NsFilter {
    let (rules, creds) = (rules.clone(), creds.clone());
    Arc::new(move |ns| rules.allows(Action::Subscribe, ns, &creds))
}

/// A namespace subscription's end of the registry.
pub(crate) struct NsSubscriber {
    /// Set by the registry: tells this subscription from others of the same session.
    pub(crate) key: u64,
    pub(crate) session_id: u64,
    pub(crate) prefix: TrackNamespace,
    /// Only namespaces this allows are told (and their tracks offered).
    pub(crate) filter: NsFilter,
    pub(crate) tx: mpsc::Sender<NsEvent>,
    /// Set when an event did not fit the queue: the subscriber resynchronises from
    /// [`Registry::ns_snapshot`] once it has drained what is queued.
    pub(crate) lagged: Arc<AtomicBool>,
    pub(crate) hold: Hold,
}

/// Why a namespace subscription was not registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NsRefusal {
    /// Its prefix overlaps one the session already has (§9.28).
    Overlap,
    /// Its session has ended.
    Gone,
}

#[derive(Default)]
struct State {
    /// Sessions that have started and not ended: only they may add anything, so nothing a
    /// session adds outlives its end.
    live: HashSet<u64>,
    next_key: u64,
    /// Routes by their exact namespace (a lookup walks a name's prefixes, at most 32).
    routes: HashMap<TrackNamespace, Vec<Route>>,
    /// The namespaces each session has routes for.
    by_session: HashMap<u64, HashSet<TrackNamespace>>,
    tracks: HashMap<TrackName, Arc<TrackEntry>>,
    ns_subscribers: Vec<NsSubscriber>,
}

impl State {
    /// Routes whose namespace is a prefix of `namespace`, longest first.
    fn matching(&self, namespace: &TrackNamespace) -> Vec<&Route> {
        let fields = namespace.fields();
        let mut out = Vec::new();
        for n in (0..=fields.len()).rev() {
            let prefix = TrackNamespace(fields[..n].to_vec());
            if let Some(rs) = self.routes.get(&prefix) {
                out.extend(rs.iter());
            }
        }
        out
    }
}

/// What the registry holds, counted (see [`Registry::counts`]).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistryCounts {
    /// Sessions started and not ended.
    pub live_sessions: usize,
    /// Publisher routes (PUBLISH_NAMESPACE, moq-lite ANNOUNCE), over all namespaces.
    pub routes: usize,
    /// Sessions that have at least one route.
    pub sessions_with_routes: usize,
    /// Track entries (relayed or PUBLISHed tracks).
    pub tracks: usize,
    /// Namespace subscribers (SUBSCRIBE_NAMESPACE, ANNOUNCE_PLEASE).
    pub ns_subscribers: usize,
    /// Per-track upstream SUBSCRIBE locks someone still holds.
    pub track_locks: usize,
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

    /// How much the registry holds now (test hook: every count is zero once all sessions ended).
    pub(crate) fn counts(&self) -> RegistryCounts {
        let st = self.state();
        RegistryCounts {
            live_sessions: st.live.len(),
            routes: st.routes.values().map(Vec::len).sum(),
            sessions_with_routes: st.by_session.len(),
            tracks: st.tracks.len(),
            ns_subscribers: st.ns_subscribers.len(),
            track_locks: self
                .locks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .filter(|l| Arc::strong_count(l) > 1)
                .count(),
        }
    }

    /// Up to `cap` tracks and `cap` namespaces, and how many tracks there are (for metrics and
    /// `/state`; the entries are inspected after the registry's lock is released).
    pub(crate) fn listing(&self, cap: usize) -> super::state::Listing {
        let st = self.state();
        let tracks = st.tracks.iter().take(cap);
        super::state::Listing {
            total_tracks: st.tracks.len(),
            tracks: tracks.map(|(n, t)| (n.clone(), t.clone())).collect(),
            namespaces: st.routes.keys().take(cap).cloned().collect(),
            total_namespaces: st.routes.len(),
        }
    }

    /// A session started: from now until [`Registry::remove_session`] it may add routes,
    /// tracks and namespace subscriptions.
    pub(crate) fn open_session(&self, session_id: u64) {
        self.state().live.insert(session_id);
    }

    /// Adds a route; false (and nothing changes) when the session already has one for its
    /// namespace or has ended. Namespace subscribers hear of a namespace when its first route
    /// comes.
    pub(crate) fn add_route(&self, route: Route) -> bool {
        {
            let mut st = self.state();
            let ns = route.namespace.clone();
            let from = route.session_id;
            if !st.live.contains(&from) {
                return false;
            }
            let list = st.routes.entry(ns.clone()).or_default();
            if list.iter().any(|r| r.session_id == from) {
                return false;
            }
            list.push(route);
            let first = list.len() == 1;
            st.by_session.entry(from).or_default().insert(ns.clone());
            if first {
                notify_ns(&mut st, &ns, from, NsEvent::Namespace(ns.clone()));
            }
        }
        self.changed.notify_waiters();
        true
    }

    /// Removes a session's route for `namespace` (PUBLISH_NAMESPACE_DONE); namespace
    /// subscribers hear of it when the namespace's last route goes.
    pub(crate) fn remove_route(&self, session_id: u64, namespace: &TrackNamespace) {
        let gone = {
            let mut st = self.state();
            let gone = take_route(&mut st, session_id, namespace);
            if let Some(set) = st.by_session.get_mut(&session_id) {
                set.remove(namespace);
            }
            gone
        };
        drop(gone);
    }

    /// Forgets everything a session published or subscribed to namespaces (it ended).
    pub(crate) fn remove_session(&self, session_id: u64) {
        let mut held: Vec<Hold> = Vec::new();
        {
            let mut st = self.state();
            st.live.remove(&session_id);
            let gone = st.by_session.remove(&session_id).unwrap_or_default();
            for ns in gone {
                held.extend(take_route(&mut st, session_id, &ns).map(|r| r.hold));
            }
            st.ns_subscribers.retain(|s| {
                if s.session_id == session_id {
                    held.push(s.hold.clone());
                    false
                } else {
                    true
                }
            });
            // The session's PUBLISHed tracks go even if their end has not been processed yet,
            // and so do ended tracks (a later request creates them afresh); tracks other
            // publishers still feed stay with their cache.
            st.tracks.retain(|_, t| {
                !t.ended()
                    && !matches!(t.origin, Origin::Published { session, .. } if session == session_id)
            });
        }
        drop(held);
    }

    /// The route whose namespace is the longest prefix of `namespace`, among those `allowed`.
    pub(crate) fn route_for(
        &self,
        namespace: &TrackNamespace,
        allowed: impl Fn(&Route) -> bool,
    ) -> Option<Route> {
        self.state()
            .matching(namespace)
            .into_iter()
            .find(|r| allowed(r))
            .cloned()
    }

    /// Every publisher session with a namespace that is a prefix of `namespace` (§8.4), each
    /// once (by its longest matching route), longest match first, among those `allowed`.
    pub(crate) fn routes_for(
        &self,
        namespace: &TrackNamespace,
        allowed: impl Fn(&Route) -> bool,
    ) -> Vec<Route> {
        let st = self.state();
        let mut out: Vec<Route> = Vec::new();
        for r in st.matching(namespace) {
            if allowed(r) && !out.iter().any(|o| o.session_id == r.session_id) {
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

    /// Adds a track; PUBLISHed tracks are announced to matching namespace subscribers. A
    /// PUBLISHed track is refused (false) while another live PUBLISHed track has its name.
    pub(crate) fn add_track(&self, name: TrackName, entry: Arc<TrackEntry>) -> bool {
        {
            let mut st = self.state();
            let published = |t: &TrackEntry| matches!(t.origin, Origin::Published { .. });
            if matches!(entry.origin, Origin::Published { session, .. } if !st.live.contains(&session))
            {
                return false;
            }
            if published(&entry)
                && st
                    .tracks
                    .get(&name)
                    .is_some_and(|t| published(t) && !t.ended())
            {
                return false;
            }
            if let Origin::Published { session, .. } = entry.origin {
                let ev = NsEvent::Track(entry.producer.clone());
                notify_ns(&mut st, &name.namespace, session, ev);
            }
            st.tracks.insert(name, entry);
        }
        self.changed.notify_waiters();
        true
    }

    /// Whether a live PUBLISHed track named `name` exists (one PUBLISH per track).
    pub(crate) fn published_elsewhere(&self, name: &TrackName) -> bool {
        self.state()
            .tracks
            .get(name)
            .is_some_and(|t| matches!(t.origin, Origin::Published { .. }) && !t.ended())
    }

    /// Removes a track entry if it is still `entry`.
    pub(crate) fn remove_track(&self, name: &TrackName, entry: &Arc<TrackEntry>) {
        let mut st = self.state();
        if st.tracks.get(name).is_some_and(|t| Arc::ptr_eq(t, entry)) {
            st.tracks.remove(name);
        }
    }

    /// What a namespace subscriber should know now: the namespaces under its prefix (each
    /// once) and the PUBLISHed tracks under them that other sessions publish, both as its
    /// filter allows.
    pub(crate) fn ns_snapshot(
        &self,
        session_id: u64,
        prefix: &TrackNamespace,
        filter: &NsFilter,
    ) -> Vec<NsEvent> {
        snapshot(&self.state(), session_id, prefix, filter)
    }

    /// Registers a namespace subscriber and returns its key and what currently matches its
    /// prefix. With `exclusive`, a prefix overlapping (prefix of, extension of, or equal to)
    /// another subscription of the same session is refused (§9.28), checked under the same
    /// lock as the registration.
    pub(crate) fn add_ns_subscriber(
        &self,
        mut sub: NsSubscriber,
        exclusive: bool,
    ) -> Result<(u64, Vec<NsEvent>), NsRefusal> {
        let mut st = self.state();
        if !st.live.contains(&sub.session_id) {
            return Err(NsRefusal::Gone);
        }
        let overlap = st.ns_subscribers.iter().any(|s| {
            s.session_id == sub.session_id
                && (s.prefix.is_prefix_of(&sub.prefix) || sub.prefix.is_prefix_of(&s.prefix))
        });
        if exclusive && overlap {
            return Err(NsRefusal::Overlap);
        }
        st.next_key += 1;
        sub.key = st.next_key;
        let now = snapshot(&st, sub.session_id, &sub.prefix, &sub.filter);
        st.ns_subscribers.push(sub);
        Ok((st.next_key, now))
    }

    /// Ends a session's namespace subscription to `prefix` (UNSUBSCRIBE_NAMESPACE).
    pub(crate) fn remove_ns_subscriber(&self, session_id: u64, prefix: &TrackNamespace) {
        self.remove_ns_where(|s| s.session_id == session_id && &s.prefix == prefix);
    }

    /// Ends the namespace subscription registered under `key`.
    pub(crate) fn remove_ns_key(&self, key: u64) {
        self.remove_ns_where(|s| s.key == key);
    }

    fn remove_ns_where(&self, which: impl Fn(&NsSubscriber) -> bool) {
        let mut gone = Vec::new();
        self.state().ns_subscribers.retain(|s| {
            if which(s) {
                gone.push(s.hold.clone());
                false
            } else {
                true
            }
        });
        drop(gone);
    }
}

fn snapshot(
    st: &State,
    session_id: u64,
    prefix: &TrackNamespace,
    filter: &NsFilter,
) -> Vec<NsEvent> {
    let mut now: Vec<NsEvent> = st
        .routes
        .iter()
        .filter(|(ns, rs)| {
            prefix.is_prefix_of(ns) && rs.iter().any(|r| r.session_id != session_id) && filter(ns)
        })
        .map(|(ns, _)| NsEvent::Namespace(ns.clone()))
        .collect();
    for (name, t) in &st.tracks {
        if matches!(t.origin, Origin::Published { session, .. } if session != session_id)
            && !t.ended()
            && prefix.is_prefix_of(&name.namespace)
            && filter(&name.namespace)
        {
            now.push(NsEvent::Track(t.producer.clone()));
        }
    }
    now
}

/// Takes `session_id`'s route for `namespace` out; subscribers hear the namespace is gone when
/// it was the last.
fn take_route(st: &mut State, session_id: u64, namespace: &TrackNamespace) -> Option<Route> {
    let list = st.routes.get_mut(namespace)?;
    let i = list.iter().position(|r| r.session_id == session_id)?;
    let gone = list.swap_remove(i);
    if list.is_empty() {
        st.routes.remove(namespace);
        notify_ns(
            st,
            namespace,
            session_id,
            NsEvent::NamespaceDone(namespace.clone()),
        );
    }
    Some(gone)
}

fn notify_ns(st: &mut State, ns: &TrackNamespace, from: u64, ev: NsEvent) {
    st.ns_subscribers.retain(|s| {
        if s.session_id == from || !s.prefix.is_prefix_of(ns) || !(s.filter)(ns) {
            return !s.tx.is_closed();
        }
        match s.tx.try_send(ev.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                // Bounded queue: the subscriber catches up from a snapshot instead.
                s.lagged.store(true, Ordering::Release);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use moqlink_transport::track::TrackConfig;

    #[test]
    fn a_subscriber_never_joins_an_entry_its_last_subscriber_closed() {
        // The race: a SUBSCRIBE finds the entry, the last subscriber then leaves (closing the
        // upstream subscriptions), and the new one would wait on a track nothing feeds.
        let producer = TrackProducer::new(TrackName::new("a", "t"), TrackConfig::default());
        let entry = TrackEntry::new(producer, Origin::Upstream);
        assert!(entry.acquire());
        assert!(entry.acquire());
        assert!(!entry.release(), "one reader is left");
        assert!(entry.release(), "the last reader closes the entry");
        assert!(!entry.acquire(), "a closed entry was joined");
        assert!(
            !entry.add_upstream(1, Box::new(())),
            "a closed entry took an upstream"
        );
    }

    #[test]
    fn nothing_is_added_for_a_session_that_has_ended() {
        // A request task can finish after its session's cleanup ran; what it adds then would
        // never be removed.
        let registry = Registry::default();
        let (tx, _rx) = mpsc::channel(1);
        let sub = |tx| NsSubscriber {
            key: 0,
            session_id: 7,
            prefix: TrackNamespace::from_path("a"),
            filter: Arc::new(|_| true),
            tx,
            lagged: Default::default(),
            hold: Arc::new(()),
        };
        registry.open_session(7);
        assert!(registry.add_ns_subscriber(sub(tx.clone()), true).is_ok());
        assert_eq!(
            registry.add_ns_subscriber(sub(tx.clone()), true).err(),
            Some(NsRefusal::Overlap)
        );
        registry.remove_session(7);
        assert_eq!(
            registry.add_ns_subscriber(sub(tx), true).err(),
            Some(NsRefusal::Gone)
        );
        // Tracks the relay subscribes to itself belong to no session.
        let producer = TrackProducer::new(TrackName::new("a", "t"), TrackConfig::default());
        let entry = TrackEntry::new(producer, Origin::Upstream);
        assert!(registry.add_track(TrackName::new("a", "t"), entry));
    }
}
