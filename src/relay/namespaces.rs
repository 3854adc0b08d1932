//! What a draft-14 namespace subscriber is told: PUBLISH_NAMESPACE for each namespace under its
//! prefix and PUBLISH for each PUBLISHed track, as its credentials allow, each request to it
//! bounded in time so a subscriber that never answers holds up only itself.

use super::registry::{NsEvent, NsFilter};
use super::serve::Shared;
use super::upstream::UPSTREAM_ANSWER;
use moqlink_model::params::VersionParameters;
use moqlink_model::TrackNamespace;
use moqlink_transport::client::AnySession;
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::session::NamespacePublication;
use moqlink_transport::track::{TrackName, TrackProducer};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// What one draft-14 namespace subscriber has been told: PUBLISH_NAMESPACE for each namespace,
/// PUBLISH for each PUBLISHed track. Fed by registry events; when they overflowed its queue it
/// resynchronises from a registry snapshot.
pub(crate) struct NsFeed {
    session: AnySession,
    shared: Arc<Shared>,
    session_id: u64,
    prefix: TrackNamespace,
    filter: NsFilter,
    lagged: Arc<AtomicBool>,
    namespaces: HashMap<TrackNamespace, NamespacePublication<AnyConnection>>,
    /// PUBLISHed tracks offered, until they end (a track PUBLISHed again is offered again).
    tracks: HashMap<TrackName, TrackProducer>,
}

impl NsFeed {
    /// A feed for `session`'s subscription to `prefix`, told what `filter` allows.
    pub(crate) fn new(
        session: AnySession,
        shared: Arc<Shared>,
        prefix: TrackNamespace,
        filter: NsFilter,
        lagged: Arc<AtomicBool>,
        session_id: u64,
    ) -> Self {
        NsFeed {
            session,
            shared,
            session_id,
            prefix,
            filter,
            lagged,
            namespaces: HashMap::new(),
            tracks: HashMap::new(),
        }
    }

    pub(crate) async fn run(mut self, current: Vec<NsEvent>, mut rx: mpsc::Receiver<NsEvent>) {
        for ev in current {
            self.apply(ev).await;
        }
        while let Some(ev) = rx.recv().await {
            self.apply(ev).await;
            if rx.is_empty() && self.lagged.swap(false, Ordering::AcqRel) {
                self.resync().await;
            }
        }
    }

    /// Makes what the subscriber was told match the registry now.
    async fn resync(&mut self) {
        let now = self
            .shared
            .registry
            .ns_snapshot(self.session_id, &self.prefix, &self.filter);
        let live: HashSet<TrackNamespace> = now
            .iter()
            .filter_map(|ev| match ev {
                NsEvent::Namespace(ns) => Some(ns.clone()),
                _ => None,
            })
            .collect();
        let gone: Vec<TrackNamespace> = self
            .namespaces
            .keys()
            .filter(|ns| !live.contains(*ns))
            .cloned()
            .collect();
        for ns in gone {
            self.apply(NsEvent::NamespaceDone(ns)).await;
        }
        for ev in now {
            self.apply(ev).await;
        }
    }

    async fn apply(&mut self, ev: NsEvent) {
        match ev {
            NsEvent::Namespace(ns) => {
                if self.namespaces.contains_key(&ns) {
                    return;
                }
                let publish = self
                    .session
                    .publish_namespace(ns.clone(), VersionParameters::new());
                match tokio::time::timeout(UPSTREAM_ANSWER, publish).await {
                    Ok(Ok(p)) => {
                        self.namespaces.insert(ns, p);
                    }
                    Err(_) => {
                        tracing::debug!(namespace = %ns, "namespace subscriber did not answer PUBLISH_NAMESPACE in time")
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "PUBLISH_NAMESPACE to a namespace subscriber failed")
                    }
                }
            }
            NsEvent::NamespaceDone(ns) => {
                if let Some(p) = self.namespaces.remove(&ns) {
                    let _ = tokio::time::timeout(UPSTREAM_ANSWER, p.done()).await;
                }
            }
            NsEvent::Track(track) => {
                self.tracks.retain(|_, t| t.status().end.is_none());
                if self.tracks.contains_key(track.name()) {
                    return;
                }
                self.tracks.insert(track.name().clone(), track.clone());
                let s = self.session.clone();
                tokio::spawn(async move {
                    let publish = s.publish(&track, true, VersionParameters::new());
                    match tokio::time::timeout(UPSTREAM_ANSWER, publish).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "PUBLISH to a namespace subscriber failed")
                        }
                        Err(_) => {
                            tracing::debug!("namespace subscriber did not answer PUBLISH in time")
                        }
                    }
                });
            }
        }
    }
}
