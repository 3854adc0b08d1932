//! Track handles: the model users and the relay share. A [`TrackProducer`] writes subgroups,
//! objects and datagrams; any number of [`TrackConsumer`]s read them, each at its own pace, from
//! one shared copy (payloads are `Bytes`, never copied per consumer).
//!
//! Memory is bounded: a track retains at most `max_groups` groups and `max_bytes` of accounted
//! cost (payload, extension headers and fixed per-object, per-subgroup and per-group overheads,
//! see [`TrackConfig`]), and nothing older than `max_age` is handed to new readers. Over a limit,
//! the oldest group goes first; once only one group is left, its oldest objects are dropped from
//! the front. When a group is evicted, readers still inside it see [`SubgroupEnd::Evicted`] and
//! lose that whole group; a reader behind a trimmed group front skips to its oldest retained
//! object (counted by [`SubgroupConsumer::skipped`]). The producer and the other consumers never
//! wait for a slow one.

mod budget;
mod consumer;
mod evict;
mod producer;

pub use budget::ByteBudget;
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

/// Fixed cost counted for every object a track retains, on top of its payload and extension
/// header bytes: its slot in the subgroup's queue, `(Object, Instant)`, twice (the queue's
/// capacity can be up to twice its length), plus 64 bytes for the reference-counted header a
/// shared payload handle allocates and allocator rounding: 256 bytes on 64-bit targets (a
/// counting allocator sees about 180 bytes per retained 1-byte object, tests/track_memory.rs).
pub const OBJECT_OVERHEAD: usize = 2 * std::mem::size_of::<(Object, Instant)>() + 64;

/// Extra fixed cost of an object received as a datagram: it is kept both in its group and in
/// the track's arrival log (its slot there, twice for capacity). 224 bytes on 64-bit targets.
pub const DATAGRAM_OVERHEAD: usize = 2 * std::mem::size_of::<(u64, u8, Object, Instant)>();

/// Fixed cost counted for every subgroup a track retains: its shared state and wake-up channel
/// and its slots in the group and in the arrival log: 1 KiB (a counting allocator sees about
/// 730 bytes per retained empty subgroup, tests/track_memory.rs).
pub const SUBGROUP_OVERHEAD: usize = 1024;

/// Fixed cost counted for every group a track retains: its entry in the group queue (counted
/// twice, for queue capacity) and the first allocations of its subgroup and datagram lists:
/// 256 bytes (measured: about 860 bytes per group of one empty subgroup, against 1280
/// accounted).
pub const GROUP_OVERHEAD: usize = 256;

/// How much history a track keeps.
///
/// Every retained object is charged its payload length + extension header length +
/// [`OBJECT_OVERHEAD`] (+ [`DATAGRAM_OVERHEAD`] for a datagram), every subgroup
/// [`SUBGROUP_OVERHEAD`] and every group [`GROUP_OVERHEAD`]; `max_bytes` and `budget` limit the
/// sum. Over a limit the oldest group (by arrival) is evicted; when only one group is left, its
/// oldest objects (by arrival, across its subgroups and datagrams) are dropped from the front,
/// then its empty subgroups. The object being written is never dropped by its own write, so a
/// track (and a shared budget) can exceed its limit by at most that one object's cost (with its
/// subgroup's and group's overhead) until the next write.
#[derive(Debug, Clone)]
pub struct TrackConfig {
    /// Groups retained (at least 1). Default 16.
    pub max_groups: usize,
    /// Accounted bytes retained by this track (see above). Default 64 MiB.
    pub max_bytes: usize,
    /// Objects older than this are not served from the cache (MAX_CACHE_DURATION). Default none.
    pub max_age: Option<Duration>,
    /// Accounted bytes shared with other tracks (e.g. relay-wide); over it, the track holding
    /// the most bytes drops its oldest data (the one being written included). Default none.
    pub budget: Option<Arc<ByteBudget>>,
    /// Counters of what flows through the track (objects in and out, resets, evictions,
    /// forward delay). Default none.
    pub stats: Option<Arc<crate::stats::TrackStats>>,
}

impl Default for TrackConfig {
    fn default() -> Self {
        TrackConfig {
            max_groups: 16,
            max_bytes: 64 * 1024 * 1024,
            max_age: None,
            budget: None,
            stats: None,
        }
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
    pub status: moqlink_model::codes::PublishDoneCode,
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
    /// The DELIVERY_TIMEOUT (ms) the upstream publisher specified, if any (§9.2.1.2).
    pub delivery_timeout: Option<u64>,
}

pub(crate) struct SubgroupState {
    /// Retained objects; `objects[0]` is the `first`-th object the subgroup ever held.
    pub(crate) objects: VecDeque<(Object, Instant)>,
    /// Objects dropped from the front so far (readers index objects from the first ever).
    pub(crate) first: usize,
    /// The last object ID written, retained or not.
    pub(crate) last_id: Option<u64>,
    pub(crate) end: Option<SubgroupEnd>,
    /// Producers writing this subgroup (more than one when publishers are merged).
    pub(crate) writers: usize,
    /// Object IDs not known to follow the object before them here (§10.4.3): written by a
    /// producer whose own previous object was not that one, after a gap in IDs. Entries below
    /// the oldest retained object are pruned as objects are written.
    pub(crate) breaks: VecDeque<u64>,
}

pub(crate) struct SubgroupShared {
    pub(crate) info: SubgroupInfo,
    /// Its sequence number in the track's arrival log.
    pub(crate) seq: u64,
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
    /// Datagram objects: arrival-log sequence number, priority, object, arrival time.
    pub(crate) datagrams: VecDeque<(u64, u8, Object, Instant)>,
    /// The object IDs in `datagrams`: a datagram already held is not stored again (two
    /// merged publishers send the same ones).
    pub(crate) datagram_ids: std::collections::HashSet<u64>,
    /// Accounted cost of the group, its subgroups and its objects.
    pub(crate) bytes: usize,
}

pub(crate) struct TrackState {
    /// Arrival log: consumers walk it by sequence number (increasing; dropped items leave
    /// gaps).
    pub(crate) items: VecDeque<(u64, Item)>,
    pub(crate) next_seq: u64,
    /// Retained groups, oldest first (by arrival).
    pub(crate) groups: VecDeque<GroupEntry>,
    /// Accounted cost of everything retained.
    pub(crate) bytes: usize,
    pub(crate) largest: Option<Location>,
    pub(crate) group_order: GroupOrder,
    pub(crate) end: Option<TrackEnd>,
    pub(crate) evicted_groups: u64,
    /// Objects dropped from the front of a retained group so far.
    pub(crate) trimmed_objects: u64,
    /// The highest location dropped so far (an evicted group counts as its whole range:
    /// groups arrive, and leave, in any order).
    pub(crate) max_dropped: Option<Location>,
    /// From here on the track received every object its source sent (see `set_complete_from`).
    pub(crate) complete_from: Option<Location>,
    /// Objects older than this are not served from the cache: the config's `max_age`, or a
    /// publisher's stricter MAX_CACHE_DURATION (`limit_max_age`).
    pub(crate) max_age: Option<Duration>,
    /// The upstream publisher's DELIVERY_TIMEOUT in ms (`set_delivery_timeout`).
    pub(crate) delivery_timeout: Option<u64>,
}

pub(crate) struct TrackShared {
    pub(crate) name: TrackName,
    pub(crate) config: TrackConfig,
    pub(crate) state: Mutex<TrackState>,
    pub(crate) changed: tokio::sync::watch::Sender<u64>,
    /// `state.bytes`, readable without the lock (the shared budget picks its victim by it).
    pub(crate) accounted: std::sync::atomic::AtomicUsize,
}

impl TrackShared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, TrackState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Charges `n` accounted bytes to the track (and its budget).
    pub(crate) fn charge(&self, st: &mut TrackState, n: usize) {
        st.bytes += n;
        self.accounted
            .store(st.bytes, std::sync::atomic::Ordering::Relaxed);
        if let Some(b) = &self.config.budget {
            b.add(n);
        }
    }

    /// Refunds `n` accounted bytes.
    pub(crate) fn refund(&self, st: &mut TrackState, n: usize) {
        let n = n.min(st.bytes);
        st.bytes -= n;
        self.accounted
            .store(st.bytes, std::sync::atomic::Ordering::Relaxed);
        if let Some(b) = &self.config.budget {
            b.sub(n);
        }
    }
}

/// The accounted cost of retaining `object` in a subgroup.
pub(crate) fn object_cost(object: &Object) -> usize {
    object.payload.len() + object.extensions.raw().len() + OBJECT_OVERHEAD
}

impl Drop for TrackShared {
    fn drop(&mut self) {
        if let Some(b) = &self.config.budget {
            let bytes = self.lock().bytes;
            b.sub(bytes);
        }
    }
}
