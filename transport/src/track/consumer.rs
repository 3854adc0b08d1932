//! Reading a track: subgroups and datagrams in arrival order, objects within each subgroup.

use super::*;

/// One object a FETCH returns, with its coordinates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedObject {
    /// Group ID.
    pub group: u64,
    /// Subgroup ID (the Object ID for datagram objects).
    pub subgroup: u64,
    /// Publisher priority.
    pub priority: u8,
    /// The object.
    pub object: Object,
}

/// What a track reader gets next.
pub enum TrackItem {
    /// A subgroup to read object by object (one stream on the wire).
    Subgroup(SubgroupConsumer),
    /// An object that travels as a datagram.
    Datagram {
        /// Group ID.
        group: u64,
        /// Publisher priority.
        priority: u8,
        /// The object.
        object: Object,
    },
}

/// Reads a track from a start location, at its own pace. Cheap to clone (a clone continues
/// from the same position independently).
#[derive(Clone)]
pub struct TrackConsumer {
    shared: Arc<TrackShared>,
    cursor: u64,
    start: Location,
    end_group: Option<u64>,
    lost: u64,
    /// When the track first moved past `end_group` with nothing left to hand out.
    past_end_since: Option<Instant>,
}

/// How long a bounded reader keeps waiting for its range's groups after a later group arrived:
/// upstream streams of different groups can arrive in any order (§2.1.1), so a later group
/// arriving first does not mean the range is complete.
pub const RANGE_LINGER: Duration = Duration::from_millis(500);

impl fmt::Debug for TrackConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TrackConsumer({} from {} to {:?})",
            self.shared.name, self.start, self.end_group
        )
    }
}

impl TrackConsumer {
    pub(crate) fn new(shared: Arc<TrackShared>, start: Location, end_group: Option<u64>) -> Self {
        let cursor = shared.lock().items.front().map_or(0, |(s, _)| *s);
        TrackConsumer {
            shared,
            cursor,
            start,
            end_group,
            lost: 0,
            past_end_since: None,
        }
    }

    /// The track's name.
    pub fn name(&self) -> &TrackName {
        &self.shared.name
    }

    /// The track's counters, if it has any.
    pub fn stats(&self) -> Option<&Arc<crate::stats::TrackStats>> {
        self.shared.config.stats.as_ref()
    }

    /// Largest location, group order and end.
    pub fn status(&self) -> TrackStatus {
        let st = self.shared.lock();
        TrackStatus {
            largest: st.largest,
            group_order: st.group_order,
            end: st.end.clone(),
            delivery_timeout: st.delivery_timeout,
        }
    }

    /// The first location this reader delivers.
    pub fn start(&self) -> Location {
        self.start
    }

    /// The last group this reader delivers, if bounded.
    pub fn end_group(&self) -> Option<u64> {
        self.end_group
    }

    /// Narrows the range (SUBSCRIBE_UPDATE): later items outside it are skipped.
    pub fn set_range(&mut self, start: Location, end_group: Option<u64>) {
        self.start = start;
        self.end_group = end_group;
    }

    /// Items (subgroups and datagrams) skipped because they were dropped before this reader got
    /// to them.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Waits until the track has ended (its publisher finished it) and returns how.
    pub async fn ended(&self) -> TrackEnd {
        let mut rx = self.shared.changed.subscribe();
        loop {
            if let Some(end) = self.shared.lock().end.clone() {
                return end;
            }
            if rx.changed().await.is_err() {
                // The track outlives this reader, so its sender does too; never reached.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Whether the track has moved past this reader's end group.
    pub fn past_end(&self) -> bool {
        match (self.end_group, self.shared.lock().largest) {
            (Some(end), Some(l)) => l.group > end,
            _ => false,
        }
    }

    fn wanted_group(&self, group: u64) -> bool {
        group >= self.start.group && self.end_group.is_none_or(|e| group <= e)
    }

    /// The next subgroup or datagram in arrival order; `None` once the track has ended and
    /// everything retained was read.
    pub async fn next(&mut self) -> Option<TrackItem> {
        let mut rx = self.shared.changed.subscribe();
        loop {
            {
                let st = self.shared.lock();
                // Sequence numbers increase; a dropped item leaves a gap, counted as lost.
                let pos = st.items.partition_point(|(s, _)| *s < self.cursor);
                for (seq, item) in st.items.range(pos..) {
                    self.lost += seq - self.cursor;
                    self.cursor = seq + 1;
                    if !self.wanted_group(item.group()) {
                        continue;
                    }
                    match item {
                        Item::Subgroup(s) => {
                            if s.lock().end == Some(SubgroupEnd::Evicted) {
                                self.lost += 1;
                                continue;
                            }
                            let start_object =
                                (s.info.group == self.start.group).then_some(self.start.object);
                            return Some(TrackItem::Subgroup(SubgroupConsumer {
                                shared: s.clone(),
                                index: 0,
                                start_object,
                                skipped: 0,
                                last_read: None,
                                last_break: None,
                                stats: self.shared.config.stats.clone(),
                            }));
                        }
                        Item::Datagram {
                            group,
                            priority,
                            object,
                        } => {
                            if Location::new(*group, object.id) < self.start {
                                continue;
                            }
                            return Some(TrackItem::Datagram {
                                group: *group,
                                priority: *priority,
                                object: object.clone(),
                            });
                        }
                    }
                }
                if st.end.is_some() {
                    return None;
                }
                // Everything up to the end group was handed out and the track moved past it:
                // linger a little for range groups whose streams are still on the way.
                if let (Some(end), Some(l)) = (self.end_group, st.largest) {
                    if l.group > end {
                        let since = *self.past_end_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= RANGE_LINGER {
                            return None;
                        }
                    }
                }
            }
            match self.past_end_since {
                Some(since) => {
                    let deadline = since + RANGE_LINGER;
                    if let Ok(Err(_)) = tokio::time::timeout_at(deadline, rx.changed()).await {
                        return None;
                    }
                }
                None => {
                    if rx.changed().await.is_err() {
                        return None;
                    }
                }
            }
        }
    }
}

/// Reads one subgroup's objects.
///
/// A reader that falls behind the front of the subgroup (its oldest objects were dropped to
/// keep the track within its limits, see [`TrackConfig`]) continues from the oldest retained
/// object; [`SubgroupConsumer::skipped`] counts what it missed. A reader inside a group that is
/// evicted whole sees [`SubgroupEnd::Evicted`].
pub struct SubgroupConsumer {
    shared: Arc<SubgroupShared>,
    /// The next object to read, counted from the subgroup's first object ever.
    index: usize,
    start_object: Option<u64>,
    skipped: u64,
    /// The ID of the last object read.
    last_read: Option<u64>,
    /// The ID of the last object read, when it is not known to follow the one before it.
    last_break: Option<u64>,
    /// The track's counters, for whoever sends what this reads.
    stats: Option<Arc<crate::stats::TrackStats>>,
}

impl SubgroupConsumer {
    /// The counters of the track this reads, if it has any.
    pub fn stats(&self) -> Option<&Arc<crate::stats::TrackStats>> {
        self.stats.as_ref()
    }

    /// The subgroup's IDs and header layout.
    pub fn info(&self) -> SubgroupInfo {
        self.shared.info
    }

    /// The next object, or how the subgroup ended.
    pub async fn next(&mut self) -> Result<Object, SubgroupEnd> {
        self.next_timed().await.map(|(o, _)| o)
    }

    /// The next object with the time it arrived, or how the subgroup ended.
    pub async fn next_timed(&mut self) -> Result<(Object, Instant), SubgroupEnd> {
        let mut rx = self.shared.changed.subscribe();
        loop {
            {
                let s = self.shared.lock();
                if self.index < s.first {
                    self.skipped += (s.first - self.index) as u64;
                    self.index = s.first;
                }
                while let Some((o, t)) = s.objects.get(self.index - s.first) {
                    self.index += 1;
                    if self.start_object.is_some_and(|min| o.id < min) {
                        continue;
                    }
                    // Read under the lock taken for the object anyway: `known_next` then needs none.
                    self.last_read = Some(o.id);
                    self.last_break =
                        (!s.breaks.is_empty() && s.breaks.contains(&o.id)).then_some(o.id);
                    return Ok((o.clone(), *t));
                }
                if let Some(end) = s.end {
                    return Err(end);
                }
            }
            if rx.changed().await.is_err() {
                return Err(SubgroupEnd::Reset(
                    moqlink_model::data::reset_code::INTERNAL_ERROR,
                ));
            }
        }
    }

    /// When the next unread object arrived (for delivery timeouts), if one is waiting.
    pub fn next_arrival(&self) -> Option<Instant> {
        let s = self.shared.lock();
        let i = self.index.saturating_sub(s.first);
        s.objects.get(i).map(|(_, t)| *t)
    }

    /// Objects this reader missed because they were dropped from the subgroup's front (to
    /// keep the track within its limits) before it got to them.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Whether object `id` is known to be the next object after the one before it in this
    /// subgroup (§10.4.3): false when it came from another upstream stream than that one,
    /// after a gap in IDs, so a sender must not put it on the same stream. For the object last
    /// read (a sender's case) no lock is taken: `next` noted it.
    pub fn known_next(&self, id: u64) -> bool {
        if self.last_read == Some(id) {
            return self.last_break != Some(id);
        }
        !self.shared.lock().breaks.contains(&id)
    }
}
