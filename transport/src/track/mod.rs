//! Track handles: the model users and the relay share. A [`TrackProducer`] writes subgroups,
//! objects and datagrams; any number of [`TrackConsumer`]s read them, each at its own pace, from
//! one shared copy (payloads are `Bytes`, never copied per consumer).
//!
//! Memory is bounded: a track retains at most `max_groups` groups and `max_bytes` of payload
//! (and nothing older than `max_age` is handed to new readers). When a group is evicted, readers
//! still inside it see [`SubgroupEnd::Evicted`] and lose that whole group; the producer and the
//! other consumers never wait for a slow one.

mod consumer;
mod producer;

pub use consumer::{FetchedObject, SubgroupConsumer, TrackConsumer, TrackItem};
pub use producer::{SubgroupProducer, TrackError, TrackProducer};

use bytes::Bytes;
use moqlink_model::data::{Extensions, ObjectStatus, SubgroupIdMode};
use moqlink_model::{Blob, GroupOrder, Location, TrackNamespace};
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// A full track name: namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackName {
    /// The namespace tuple.
    pub namespace: TrackNamespace,
    /// The track name.
    pub name: Blob,
}

impl TrackName {
    /// A track name from text, e.g. `("moq-test/interop", "test-track")`.
    pub fn new(namespace: &str, name: &str) -> Self {
        TrackName {
            namespace: TrackNamespace::from_path(namespace),
            name: Blob::from(name),
        }
    }
}

impl TrackName {
    /// The full track name a SUBSCRIBE, TRACK_STATUS, standalone FETCH or PUBLISH asks about.
    pub fn requested_by(msg: &moqlink_model::control::ControlMessage) -> Option<TrackName> {
        use moqlink_model::control::{ControlMessage as M, FetchKind};
        let (namespace, name) = match msg {
            M::Subscribe(m) | M::TrackStatus(m) => (&m.namespace, &m.name),
            M::Publish(m) => (&m.namespace, &m.name),
            M::Fetch(f) => match &f.fetch {
                FetchKind::Standalone {
                    namespace, name, ..
                } => (namespace, name),
                _ => return None,
            },
            _ => return None,
        };
        Some(TrackName {
            namespace: namespace.clone(),
            name: name.clone(),
        })
    }
}

impl fmt::Display for TrackName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// How much history a track keeps.
#[derive(Debug, Clone)]
pub struct TrackConfig {
    /// Groups retained (at least 1: the newest group is never evicted).
    pub max_groups: usize,
    /// Payload bytes retained across groups.
    pub max_bytes: usize,
    /// Objects older than this are not served from the cache (MAX_CACHE_DURATION).
    pub max_age: Option<Duration>,
    /// A byte budget shared with other tracks (e.g. relay-wide); over it, tracks drop their
    /// oldest groups.
    pub budget: Option<Arc<ByteBudget>>,
}

impl Default for TrackConfig {
    fn default() -> Self {
        TrackConfig {
            max_groups: 16,
            max_bytes: 64 * 1024 * 1024,
            max_age: None,
            budget: None,
        }
    }
}

/// Payload bytes retained by several tracks together, against one limit.
#[derive(Debug)]
pub struct ByteBudget {
    limit: usize,
    used: std::sync::atomic::AtomicUsize,
}

impl ByteBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(ByteBudget {
            limit,
            used: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Bytes retained now.
    pub fn used(&self) -> usize {
        self.used.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn add(&self, n: usize) {
        self.used.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn sub(&self, n: usize) {
        let _ = self.used.fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |u| Some(u.saturating_sub(n)),
        );
    }

    pub(crate) fn over(&self) -> bool {
        self.used() > self.limit
    }
}

/// One object as stored in a track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Object ID.
    pub id: u64,
    /// Status (payload is empty unless Normal).
    pub status: ObjectStatus,
    /// Extension headers, byte-exact as received.
    pub extensions: Extensions,
    /// Payload.
    pub payload: Bytes,
}

impl Object {
    /// A normal object with `payload`.
    pub fn new(id: u64, payload: impl Into<Bytes>) -> Self {
        Object {
            id,
            status: ObjectStatus::Normal,
            extensions: Extensions::empty(),
            payload: payload.into(),
        }
    }

    /// A payload-less object with `status` (e.g. END_OF_GROUP).
    pub fn status(id: u64, status: ObjectStatus) -> Self {
        Object {
            id,
            status,
            extensions: Extensions::empty(),
            payload: Bytes::new(),
        }
    }
}

/// How a subgroup was (or will be) carried: its IDs, priority and SUBGROUP_HEADER layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubgroupInfo {
    /// Group ID.
    pub group: u64,
    /// Subgroup ID.
    pub subgroup: u64,
    /// Publisher priority.
    pub priority: u8,
    /// Header layout: how the Subgroup ID is written.
    pub mode: SubgroupIdMode,
    /// Header layout: whether objects carry extension headers.
    pub extensions: bool,
    /// Header layout: whether the stream's last object ends the group.
    pub end_of_group: bool,
}

impl SubgroupInfo {
    /// Subgroup `subgroup` of `group` with an explicit ID field and extensions allowed.
    pub fn new(group: u64, subgroup: u64, priority: u8) -> Self {
        SubgroupInfo {
            group,
            subgroup,
            priority,
            mode: SubgroupIdMode::Explicit(subgroup),
            extensions: true,
            end_of_group: false,
        }
    }
}

/// How a subgroup ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubgroupEnd {
    /// Every object was written (FIN).
    Finished,
    /// Abandoned with a stream reset code.
    Reset(u64),
    /// Dropped from the track's history before this reader finished it.
    Evicted,
}

/// How a track ended (PUBLISH_DONE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackEnd {
    /// PUBLISH_DONE status code (§13.1.3).
    pub status: u64,
    /// Reason phrase.
    pub reason: String,
}

/// What a track reports for TRACK_STATUS and SUBSCRIBE_OK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackStatus {
    /// Largest location published, if any.
    pub largest: Option<Location>,
    /// The publisher's group order.
    pub group_order: GroupOrder,
    /// The end, once the publisher finished.
    pub end: Option<TrackEnd>,
}

pub(crate) struct SubgroupState {
    pub(crate) objects: Vec<(Object, Instant)>,
    pub(crate) end: Option<SubgroupEnd>,
    /// Producers writing this subgroup (more than one when publishers are merged).
    pub(crate) writers: usize,
}

pub(crate) struct SubgroupShared {
    pub(crate) info: SubgroupInfo,
    pub(crate) state: Mutex<SubgroupState>,
    pub(crate) changed: tokio::sync::watch::Sender<u64>,
}

impl SubgroupShared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, SubgroupState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

pub(crate) enum Item {
    Subgroup(Arc<SubgroupShared>),
    Datagram {
        group: u64,
        priority: u8,
        object: Object,
    },
}

impl Item {
    pub(crate) fn group(&self) -> u64 {
        match self {
            Item::Subgroup(s) => s.info.group,
            Item::Datagram { group, .. } => *group,
        }
    }
}

pub(crate) struct GroupEntry {
    pub(crate) id: u64,
    pub(crate) subgroups: Vec<Arc<SubgroupShared>>,
    pub(crate) datagrams: Vec<(u8, Object, Instant)>,
    pub(crate) bytes: usize,
}

pub(crate) struct TrackState {
    /// Arrival log: consumers walk it by sequence number.
    pub(crate) items: VecDeque<(u64, Item)>,
    pub(crate) next_seq: u64,
    /// Retained groups, oldest first (by arrival).
    pub(crate) groups: VecDeque<GroupEntry>,
    pub(crate) bytes: usize,
    pub(crate) largest: Option<Location>,
    pub(crate) group_order: GroupOrder,
    pub(crate) end: Option<TrackEnd>,
    pub(crate) evicted_groups: u64,
    /// The highest group ID evicted so far (groups arrive, and leave, in any order).
    pub(crate) max_evicted: Option<u64>,
    /// From here on the track received every object its source sent (see `set_complete_from`).
    pub(crate) complete_from: Option<Location>,
}

pub(crate) struct TrackShared {
    pub(crate) name: TrackName,
    pub(crate) config: TrackConfig,
    pub(crate) state: Mutex<TrackState>,
    pub(crate) changed: tokio::sync::watch::Sender<u64>,
}

impl TrackShared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, TrackState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

impl Drop for TrackShared {
    fn drop(&mut self) {
        if let Some(b) = &self.config.budget {
            let bytes = self.lock().bytes;
            b.sub(bytes);
        }
    }
}
