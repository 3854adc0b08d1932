//! Writing a track: subgroups, objects, datagrams, and the track's end.

use super::evict::{enforce_track, note_dropped, Keep};
use super::*;
use moqlink_model::control::FetchEnd;
use moqlink_model::data::ObjectStatus;

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    /// Object IDs within a subgroup must increase.
    #[error("object {id} does not follow object {prev} in the subgroup")]
    OutOfOrder {
        /// The refused ID.
        id: u64,
        /// The previous ID.
        prev: u64,
    },
    /// The subgroup already ended.
    #[error("the subgroup has ended")]
    Ended,
    /// A non-Normal object carried a payload.
    #[error("an object with status {0:?} cannot carry a payload")]
    StatusWithPayload(ObjectStatus),
}

/// Writes a track. Cheap to clone; every clone writes the same track.
#[derive(Clone)]
pub struct TrackProducer {
    pub(crate) shared: Arc<TrackShared>,
}

impl fmt::Debug for TrackProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrackProducer({})", self.shared.name)
    }
}

impl TrackProducer {
    /// A new, empty track.
    pub fn new(name: TrackName, config: TrackConfig) -> Self {
        let max_age = config.max_age;
        let shared = Arc::new(TrackShared {
            name,
            config,
            state: Mutex::new(TrackState {
                items: VecDeque::new(),
                next_seq: 0,
                groups: VecDeque::new(),
                bytes: 0,
                largest: None,
                group_order: GroupOrder::Ascending,
                end: None,
                evicted_groups: 0,
                trimmed_objects: 0,
                max_dropped: None,
                complete_from: None,
                max_age,
                delivery_timeout: None,
            }),
            changed: tokio::sync::watch::channel(0).0,
            accounted: std::sync::atomic::AtomicUsize::new(0),
        });
        if let Some(b) = &shared.config.budget {
            b.register(&shared);
        }
        TrackProducer { shared }
    }

    /// The track's name.
    pub fn name(&self) -> &TrackName {
        &self.shared.name
    }

    /// Whether `other` writes the same track.
    pub fn same_track(&self, other: &TrackProducer) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Sets the publisher's group order (reported in SUBSCRIBE_OK / PUBLISH).
    pub fn set_group_order(&self, order: GroupOrder) {
        if order != GroupOrder::Original {
            self.shared.lock().group_order = order;
        }
    }

    /// Largest location, group order and end, as TRACK_STATUS reports them.
    pub fn status(&self) -> TrackStatus {
        let st = self.shared.lock();
        TrackStatus {
            largest: st.largest,
            group_order: st.group_order,
            end: st.end.clone(),
            delivery_timeout: st.delivery_timeout,
        }
    }

    /// Records the DELIVERY_TIMEOUT (ms) the upstream publisher specified (§9.2.1.2), which
    /// a relay passes on in its SUBSCRIBE_OKs.
    pub fn set_delivery_timeout(&self, ms: Option<u64>) {
        if ms.is_some() {
            self.shared.lock().delivery_timeout = ms;
        }
    }

    /// Raises the largest location without an object (e.g. what an upstream SUBSCRIBE_OK
    /// reported before any object arrived here).
    pub fn note_largest(&self, loc: Location) {
        let mut st = self.shared.lock();
        if st.largest.is_none_or(|l| loc > l) {
            st.largest = Some(loc);
        }
    }

    /// Records that this track got every object its source sent from `start` on (e.g. the
    /// start of the subscription that fills it); the earliest such start is kept.
    pub fn set_complete_from(&self, start: Location) {
        let mut st = self.shared.lock();
        if st.complete_from.is_none_or(|c| start < c) {
            st.complete_from = Some(start);
        }
    }

    /// Whether the track still holds everything from `start` on: it was complete from there
    /// (`set_complete_from`) and nothing at or after `start` was dropped since (no evicted
    /// group at or after `start.group`, no object at or after `start` trimmed from a group's
    /// front).
    pub fn retains_from(&self, start: Location) -> bool {
        let st = self.shared.lock();
        let Some(from) = st.complete_from else {
            return false;
        };
        // Eviction follows arrival order, not group order: anything dropped at or after
        // `start` leaves a gap.
        if start < from || st.max_dropped.is_some_and(|m| start <= m) {
            return false;
        }
        !expired_from(&st, start)
    }

    /// Serves nothing older than `age` from the cache from now on, if that is stricter than
    /// the limit so far: the publisher's MAX_CACHE_DURATION (§9.2.1.3).
    pub fn limit_max_age(&self, age: Duration) {
        let mut st = self.shared.lock();
        st.max_age = Some(st.max_age.map_or(age, |a| a.min(age)));
    }

    /// Whether a FETCH from `start` would meet objects of unknown status here: something at or
    /// after `start` was dropped from history, or the track is complete only from a later
    /// location (`set_complete_from`). A track never marked complete (an original publisher's
    /// own) holds every object it was given, less what was dropped.
    pub fn gap_from(&self, start: Location) -> bool {
        let st = self.shared.lock();
        st.complete_from.is_some_and(|c| start < c)
            || st.max_dropped.is_some_and(|m| start <= m)
            || expired_from(&st, start)
    }

    /// Groups dropped from history so far.
    pub fn evicted_groups(&self) -> u64 {
        self.shared.lock().evicted_groups
    }

    /// Objects dropped from the front of a retained group so far.
    pub fn trimmed_objects(&self) -> u64 {
        self.shared.lock().trimmed_objects
    }

    /// Bytes the track is charged for now (see [`TrackConfig`]).
    pub fn accounted_bytes(&self) -> usize {
        self.shared.lock().bytes
    }

    /// Groups retained now.
    pub fn retained_groups(&self) -> usize {
        self.shared.lock().groups.len()
    }

    /// Objects retained now (subgroup objects and datagrams).
    pub fn retained_objects(&self) -> usize {
        let st = self.shared.lock();
        st.groups
            .iter()
            .map(|g| {
                g.datagrams.len()
                    + g.subgroups
                        .iter()
                        .map(|s| s.lock().objects.len())
                        .sum::<usize>()
            })
            .sum()
    }

    /// The ID a new group should take: one past the largest, or 0.
    pub fn next_group_id(&self) -> u64 {
        self.shared.lock().largest.map_or(0, |l| l.group + 1)
    }

    /// Starts a subgroup; readers see it at once.
    pub fn create_subgroup(&self, info: SubgroupInfo) -> SubgroupProducer {
        let sub = {
            let mut st = self.shared.lock();
            insert_subgroup(&mut st, &self.shared, info)
        };
        self.shared.bump();
        enforce_budget(&self.shared, Keep::subgroup(&sub, None));
        self.producer(sub)
    }

    /// Writes subgroup `info.subgroup` of `info.group` together with whoever else writes it
    /// (the same subgroup arriving from several publishers, §8.4.1): objects already present
    /// are skipped, so readers see each object once. Starts the subgroup when it is new.
    pub fn join_subgroup(&self, info: SubgroupInfo) -> SubgroupProducer {
        let (sub, created) = {
            // One critical section: two writers arriving together must not both create it.
            let mut st = self.shared.lock();
            let existing = st.groups.iter().find(|g| g.id == info.group).and_then(|g| {
                g.subgroups
                    .iter()
                    .find(|s| s.info.subgroup == info.subgroup)
                    .cloned()
            });
            match existing {
                Some(sub) => {
                    sub.lock().writers += 1;
                    (sub, false)
                }
                None => (insert_subgroup(&mut st, &self.shared, info), true),
            }
        };
        if created {
            self.shared.bump();
            enforce_budget(&self.shared, Keep::subgroup(&sub, None));
        }
        self.producer(sub)
    }

    fn producer(&self, sub: Arc<SubgroupShared>) -> SubgroupProducer {
        SubgroupProducer {
            sub,
            track: self.shared.clone(),
            last: None,
            ended: false,
            dropped: None,
        }
    }

    /// Adds an object sent as a datagram.
    pub fn write_datagram(&self, group: u64, priority: u8, object: Object) {
        let seq;
        {
            let mut st = self.shared.lock();
            let now = Instant::now();
            let loc = Location::new(group, object.id);
            if st.largest.is_none_or(|l| loc > l) {
                st.largest = Some(loc);
            }
            // The same datagram from a second merged publisher is delivered once; one for a
            // group already evicted whole is discarded, as a subgroup's object is (it would
            // come back as the newest group and push a live one out).
            let held = st.groups.iter().find(|g| g.id == group);
            let evicted = held.is_none()
                && st
                    .max_dropped
                    .is_some_and(|m| m >= Location::new(group, u64::MAX));
            if evicted || held.is_some_and(|g| g.datagram_ids.contains(&object.id)) {
                return;
            }
            let cost = object_cost(&object) + DATAGRAM_OVERHEAD;
            if let Some(s) = &self.shared.config.stats {
                s.object_in(object.payload.len());
            }
            seq = st.next_seq;
            st.next_seq += 1;
            let g = group_entry(&mut st, &self.shared, group);
            g.datagram_ids.insert(object.id);
            g.datagrams.push_back((seq, priority, object.clone(), now));
            g.bytes += cost;
            self.shared.charge(&mut st, cost);
            st.items.push_back((
                seq,
                Item::Datagram {
                    group,
                    priority,
                    object,
                },
            ));
            enforce_track(&mut st, &self.shared, Keep::Datagram(seq));
        }
        self.shared.bump();
        enforce_budget(&self.shared, Keep::Datagram(seq));
    }

    /// Ends the track (PUBLISH_DONE): readers finish what is retained, then see the end.
    pub fn finish(&self, end: TrackEnd) {
        {
            let mut st = self.shared.lock();
            if st.end.is_none() {
                st.end = Some(end);
            }
        }
        self.shared.bump();
    }

    /// A reader of everything at or after `start` (and up to `end_group`, inclusive), starting
    /// with what the track still retains.
    pub fn consume(&self, start: Location, end_group: Option<u64>) -> TrackConsumer {
        TrackConsumer::new(self.shared.clone(), start, end_group)
    }

    /// A reader of objects published from now on (after the current largest object).
    pub fn consume_new(&self) -> TrackConsumer {
        self.consume(Location::after_largest(self.status().largest), None)
    }

    /// The retained objects between `start` and `end` in `order` (within a group by object ID),
    /// as a FETCH returns them. Only what is retained: [`TrackProducer::retains_from`] says
    /// whether that is everything from `start` on (evicted groups and trimmed group fronts
    /// leave gaps).
    pub fn fetch(&self, start: Location, end: FetchEnd, order: GroupOrder) -> Vec<FetchedObject> {
        let st = self.shared.lock();
        let max_age = st.max_age;
        let fresh = |t: &Instant| max_age.is_none_or(|age| t.elapsed() <= age);
        let mut groups: Vec<&GroupEntry> = st
            .groups
            .iter()
            .filter(|g| g.id >= start.group && g.id <= end.group)
            .collect();
        groups.sort_by_key(|g| g.id);
        if order == GroupOrder::Descending {
            groups.reverse();
        }
        let mut out = Vec::new();
        for g in groups {
            let mut objs: Vec<FetchedObject> = Vec::new();
            for sub in &g.subgroups {
                let s = sub.lock();
                for (o, _) in s.objects.iter().filter(|(_, t)| fresh(t)) {
                    objs.push(FetchedObject {
                        group: g.id,
                        subgroup: sub.info.subgroup,
                        priority: sub.info.priority,
                        object: o.clone(),
                    });
                }
            }
            for (_, p, o, _) in g.datagrams.iter().filter(|(_, _, _, t)| fresh(t)) {
                objs.push(FetchedObject {
                    group: g.id,
                    // §10.4.4: datagram objects travel with Subgroup ID = Object ID.
                    subgroup: o.id,
                    priority: *p,
                    object: o.clone(),
                });
            }
            objs.sort_by_key(|f| f.object.id);
            objs.dedup_by_key(|f| f.object.id);
            out.extend(objs.into_iter().filter(|f| {
                let loc = Location::new(f.group, f.object.id);
                loc >= start && end.covers(loc)
            }));
        }
        out
    }
}

/// Adds a new subgroup to the track (its group created if needed) and to the arrival log.
fn insert_subgroup(
    st: &mut TrackState,
    shared: &TrackShared,
    info: SubgroupInfo,
) -> Arc<SubgroupShared> {
    let seq = st.next_seq;
    st.next_seq += 1;
    let sub = Arc::new(SubgroupShared {
        info,
        seq,
        state: Mutex::new(SubgroupState {
            objects: VecDeque::new(),
            first: 0,
            last_id: None,
            end: None,
            writers: 1,
            breaks: VecDeque::new(),
        }),
        changed: tokio::sync::watch::channel(0).0,
    });
    let g = group_entry(st, shared, info.group);
    g.subgroups.push(sub.clone());
    g.bytes += SUBGROUP_OVERHEAD;
    shared.charge(st, SUBGROUP_OVERHEAD);
    st.items.push_back((seq, Item::Subgroup(sub.clone())));
    enforce_track(st, shared, Keep::subgroup(&sub, None));
    sub
}

/// The retained group `id`, created (and charged) if new.
fn group_entry<'a>(st: &'a mut TrackState, shared: &TrackShared, id: u64) -> &'a mut GroupEntry {
    let pos = match st.groups.iter().position(|g| g.id == id) {
        Some(p) => p,
        None => {
            st.groups.push_back(GroupEntry {
                id,
                subgroups: Vec::new(),
                datagrams: VecDeque::new(),
                datagram_ids: Default::default(),
                bytes: GROUP_OVERHEAD,
            });
            shared.charge(st, GROUP_OVERHEAD);
            st.groups.len() - 1
        }
    };
    &mut st.groups[pos]
}

/// Applies the shared budget, if any, after a write (no track lock held).
fn enforce_budget(shared: &Arc<TrackShared>, keep: Keep) {
    if let Some(b) = &shared.config.budget {
        if b.over() {
            b.enforce(shared, keep);
        }
    }
}

/// Writes one subgroup. Dropping it without `finish` or `reset` finishes it.
pub struct SubgroupProducer {
    sub: Arc<SubgroupShared>,
    track: Arc<TrackShared>,
    last: Option<u64>,
    ended: bool,
    /// How a drop without `finish` or `reset` ends the subgroup: `None` as the last writer's
    /// finish (a local publisher done writing), or a reset (an ingest whose stream was cut).
    dropped: Option<SubgroupEnd>,
}

impl SubgroupProducer {
    /// Makes a drop without `finish` reset the subgroup with `code`: for a writer copying a
    /// received stream, where an unannounced end means the subgroup may be incomplete
    /// (§10.4.2) and must not be passed on with a FIN.
    pub fn reset_on_drop(mut self, code: u64) -> Self {
        self.dropped = Some(SubgroupEnd::Reset(code));
        self
    }

    /// The subgroup's IDs and header layout.
    pub fn info(&self) -> SubgroupInfo {
        self.sub.info
    }

    /// The last object ID written.
    pub fn last_object_id(&self) -> Option<u64> {
        self.last
    }

    /// Appends an object; IDs must increase.
    pub fn write(&mut self, object: Object) -> Result<(), TrackError> {
        if self.ended {
            return Err(TrackError::Ended);
        }
        if let Some(prev) = self.last {
            if object.id <= prev {
                return Err(TrackError::OutOfOrder {
                    id: object.id,
                    prev,
                });
            }
        }
        if object.status != ObjectStatus::Normal && !object.payload.is_empty() {
            return Err(TrackError::StatusWithPayload(object.status));
        }
        let now = Instant::now();
        let cost = object_cost(&object);
        let loc = Location::new(self.sub.info.group, object.id);
        let new_group;
        let id;
        {
            let mut st = self.track.lock();
            // Readers of the whole track only need waking when a later group begins (a bounded
            // reader checks it against its end); the object itself wakes the subgroup's readers.
            new_group = st.largest.is_none_or(|l| loc.group > l.group);
            if st.largest.is_none_or(|l| loc > l) {
                st.largest = Some(loc);
            }
            let mut s = self.sub.lock();
            let present = s.last_id.is_some_and(|l| l >= object.id);
            let group = st.groups.iter_mut().find(|g| g.id == loc.group);
            let evicted = s.end == Some(SubgroupEnd::Evicted) || group.is_none();
            if s.end.is_some() || present || group.is_none() {
                // Evicted while being written (readers already moved on), ended by another
                // writer, or already written by one: nothing new for readers.
                drop(s);
                if evicted && !present {
                    // Discarded: a FETCH from here on can no longer be served from the cache.
                    note_dropped(&mut st, loc);
                }
                self.last = Some(object.id);
                return Ok(());
            }
            if let Some(g) = group {
                g.bytes += cost;
            }
            id = object.id;
            // §10.4.3: the object is known to be the next one only when its ID is one more
            // than the previous object's, or this producer's own stream carried that object
            // just before it; otherwise a reader sending the subgroup needs a new stream.
            if let Some(prev) = s.last_id {
                if id != prev + 1 && self.last != Some(prev) {
                    let oldest = s.objects.front().map_or(id, |(o, _)| o.id);
                    while s.breaks.front().is_some_and(|b| *b < oldest) {
                        s.breaks.pop_front();
                    }
                    s.breaks.push_back(id);
                }
            }
            s.last_id = Some(id);
            if let Some(stats) = &self.track.config.stats {
                stats.object_in(object.payload.len());
            }
            s.objects.push_back((object, now));
            drop(s);
            self.track.charge(&mut st, cost);
            enforce_track(&mut st, &self.track, Keep::subgroup(&self.sub, Some(id)));
        }
        self.last = Some(id);
        self.sub.bump();
        if new_group {
            self.track.bump();
        }
        enforce_budget(&self.track, Keep::subgroup(&self.sub, Some(id)));
        Ok(())
    }

    /// Appends a normal object with the next ID (0 for the first).
    pub fn write_next(&mut self, payload: impl Into<Bytes>) -> Result<u64, TrackError> {
        let id = self.last.map_or(0, |l| l + 1);
        self.write(Object::new(id, payload))?;
        Ok(id)
    }

    /// Leaves the subgroup with `end`; `None` when the writer is dropped without saying.
    fn end(&mut self, end: Option<SubgroupEnd>) {
        if self.ended {
            return;
        }
        self.ended = true;
        {
            let mut s = self.sub.lock();
            s.writers = s.writers.saturating_sub(1);
            // One writer's FIN completes the subgroup; a reset, or a writer dropped (its
            // publisher gone), ends it only when no other writer can still complete it. The
            // last writer dropped finishes it.
            let end = match end {
                Some(SubgroupEnd::Finished) => Some(SubgroupEnd::Finished),
                Some(reset) if s.writers == 0 => Some(reset),
                None if s.writers == 0 => Some(SubgroupEnd::Finished),
                _ => None,
            };
            if s.end.is_none() {
                s.end = end;
            }
        }
        self.sub.bump();
    }

    /// Ends the subgroup: every object was written.
    pub fn finish(mut self) {
        self.end(Some(SubgroupEnd::Finished));
    }

    /// Abandons the subgroup with a stream reset code.
    pub fn reset(mut self, code: u64) {
        if let Some(s) = &self.track.config.stats {
            s.reset_received(code);
        }
        self.end(Some(SubgroupEnd::Reset(code)));
    }
}

impl Drop for SubgroupProducer {
    fn drop(&mut self) {
        self.end(self.dropped);
    }
}

/// Whether a retained object in group `start.group` or later is past the track's max age: its
/// status is unknown again (§9.2.1.3: expired objects are re-requested).
fn expired_from(st: &TrackState, start: Location) -> bool {
    let Some(age) = st.max_age else {
        return false;
    };
    let stale = |t: &Instant| t.elapsed() > age;
    st.groups.iter().filter(|g| g.id >= start.group).any(|g| {
        g.datagrams.iter().any(|(_, _, _, t)| stale(t))
            || g.subgroups
                .iter()
                .any(|sub| sub.lock().objects.iter().any(|(_, t)| stale(t)))
    })
}
