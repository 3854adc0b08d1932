//! What the relay holds right now, as `/state` shows it (JSON) and the track gauges count it.
//! Every list is capped ([`MAX_LISTED`]); the totals say how many there were.

use super::metrics::{short_name, MAX_TRACK_SERIES};
use super::registry::TrackEntry;
use super::serve::Shared;
use moqlink_model::TrackNamespace;
use moqlink_transport::track::TrackName;
use serde::Serialize;
use std::sync::Arc;

/// Entries listed per list in `/state` (sessions, namespaces, tracks).
pub(crate) const MAX_LISTED: usize = MAX_TRACK_SERIES;

/// Registry entries taken out under its lock, inspected after.
pub(crate) struct Listing {
    pub(crate) total_tracks: usize,
    pub(crate) tracks: Vec<(TrackName, Arc<TrackEntry>)>,
    pub(crate) total_namespaces: usize,
    pub(crate) namespaces: Vec<TrackNamespace>,
}

/// One track as listed.
#[derive(Debug, Serialize)]
pub(crate) struct TrackView {
    /// `namespace/name`, cut to 256 bytes.
    pub(crate) name: String,
    /// Downstream subscriptions reading it.
    pub(crate) subscribers: usize,
    /// Groups retained.
    pub(crate) groups: usize,
    /// Accounted bytes retained.
    pub(crate) bytes: usize,
}

/// The registry's tracks, summed and listed (at most `cap`).
pub(crate) struct TracksView {
    pub(crate) total: usize,
    /// Retained bytes of the listed tracks.
    pub(crate) bytes: usize,
    /// Retained groups of the listed tracks.
    pub(crate) groups: usize,
    pub(crate) tracks: Vec<TrackView>,
}

impl super::registry::Registry {
    /// Up to `cap` tracks with their subscribers and what they retain.
    pub(crate) fn tracks_view(&self, cap: usize) -> TracksView {
        tracks_view(&self.listing(cap))
    }
}

/// The listed tracks with their subscribers and what they retain.
fn tracks_view(listing: &Listing) -> TracksView {
    let tracks: Vec<TrackView> = listing
        .tracks
        .iter()
        .map(|(n, t)| TrackView {
            name: short_name(n.to_string()),
            subscribers: t.subscribers(),
            groups: t.producer.retained_groups(),
            bytes: t.producer.accounted_bytes(),
        })
        .collect();
    TracksView {
        total: listing.total_tracks,
        bytes: tracks.iter().map(|t| t.bytes).sum(),
        groups: tracks.iter().map(|t| t.groups).sum(),
        tracks,
    }
}

/// One open session as listed.
#[derive(Debug, Serialize)]
struct SessionView {
    id: u64,
    version: &'static str,
    transport: &'static str,
    peer: String,
    open_requests: usize,
}

/// The `/state` document.
#[derive(Debug, Serialize)]
struct StateView {
    sessions_total: usize,
    sessions: Vec<SessionView>,
    namespaces_total: usize,
    namespaces: Vec<String>,
    tracks_total: usize,
    tracks: Vec<TrackView>,
    upstream: &'static str,
    /// The most each list holds; totals count everything.
    list_cap: usize,
}

/// `/state` as JSON.
pub(crate) fn state_json(shared: &Arc<Shared>) -> String {
    let (sessions_total, sessions) = {
        let open = shared.metrics.sessions();
        let listed = open
            .iter()
            .take(MAX_LISTED)
            .map(|(id, s)| SessionView {
                id: *id,
                version: s.version,
                transport: s.transport,
                peer: s.remote.to_string(),
                open_requests: s.peer.open_requests(),
            })
            .collect();
        (open.len(), listed)
    };
    // One registry snapshot for both lists.
    let listing = shared.registry.listing(MAX_LISTED);
    let tracks = tracks_view(&listing);
    let view = StateView {
        sessions_total,
        sessions,
        namespaces_total: listing.total_namespaces,
        namespaces: listing
            .namespaces
            .iter()
            .map(|n| short_name(n.to_string()))
            .collect(),
        tracks_total: tracks.total,
        tracks: tracks.tracks,
        upstream: shared.upstream_state(),
        list_cap: MAX_LISTED,
    };
    serde_json::to_string_pretty(&view).unwrap_or_else(|_| "{}".into())
}
