//! Dropping history: whole groups oldest first, then the front of the last group.

use super::*;

/// What an eviction must not drop: what the write that triggered it just added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Anything may go.
    Nothing,
    /// A subgroup (by address) and, if given, its object with this ID.
    Subgroup(usize, Option<u64>),
    /// A datagram, by arrival-log sequence number.
    Datagram(u64),
}

impl Keep {
    /// Keeps `sub` and its object `id`.
    pub(crate) fn subgroup(sub: &Arc<SubgroupShared>, id: Option<u64>) -> Keep {
        Keep::Subgroup(Arc::as_ptr(sub) as usize, id)
    }

    fn is_subgroup(self, sub: &Arc<SubgroupShared>) -> bool {
        matches!(self, Keep::Subgroup(p, _) if p == Arc::as_ptr(sub) as usize)
    }

    fn is_object(self, sub: &Arc<SubgroupShared>, id: u64) -> bool {
        self.is_subgroup(sub) && matches!(self, Keep::Subgroup(_, Some(k)) if k == id)
    }

    fn in_group(self, g: &GroupEntry) -> bool {
        match self {
            Keep::Nothing => false,
            Keep::Subgroup(..) => g.subgroups.iter().any(|s| self.is_subgroup(s)),
            // Datagrams are held in arrival order, so by increasing sequence number.
            Keep::Datagram(seq) => g.datagrams.binary_search_by_key(&seq, |d| d.0).is_ok(),
        }
    }
}

/// Applies the track's own limits (`max_groups`, `max_bytes`); `keep` stays.
pub(crate) fn enforce_track(st: &mut TrackState, shared: &TrackShared, keep: Keep) {
    let max_groups = shared.config.max_groups.max(1);
    while st.groups.len() > max_groups || st.bytes > shared.config.max_bytes {
        if !evict_one(st, shared, keep) {
            break;
        }
    }
}

/// Drops the oldest thing the track holds: its oldest group (by arrival) while it has more
/// than one; then, in the last group, an ended subgroup with no objects left, else the object
/// that arrived first, else an open subgroup with no objects left, else the group itself.
/// False when nothing but `keep` is left.
pub(crate) fn evict_one(st: &mut TrackState, shared: &TrackShared, keep: Keep) -> bool {
    if st.groups.len() > 1 {
        drop_front_group(st, shared);
        return true;
    }
    if st.groups.is_empty() {
        return false;
    }
    if remove_empty_subgroup(st, shared, keep, true)
        || trim_oldest(st, shared, keep)
        || remove_empty_subgroup(st, shared, keep, false)
    {
        return true;
    }
    if st.groups.front().is_some_and(|g| !keep.in_group(g)) {
        drop_front_group(st, shared);
        return true;
    }
    false
}

pub(crate) fn note_dropped(st: &mut TrackState, loc: Location) {
    st.max_dropped = Some(st.max_dropped.map_or(loc, |m| m.max(loc)));
}

/// Removes item `seq` from the arrival log (readers count the gap as lost).
fn remove_item(st: &mut TrackState, seq: u64) {
    if let Ok(i) = st.items.binary_search_by_key(&seq, |(s, _)| *s) {
        st.items.remove(i);
    }
}

/// Evicts the oldest group whole: readers inside it see [`SubgroupEnd::Evicted`].
fn drop_front_group(st: &mut TrackState, shared: &TrackShared) {
    let Some(g) = st.groups.pop_front() else {
        return;
    };
    shared.refund(st, g.bytes);
    st.evicted_groups += 1;
    if let Some(s) = &shared.config.stats {
        s.group_evicted();
    }
    // Objects of the group may still arrive (and be discarded): the whole group counts.
    note_dropped(st, Location::new(g.id, u64::MAX));
    for sub in &g.subgroups {
        {
            let mut s = sub.lock();
            s.first += s.objects.len();
            s.objects = VecDeque::new();
            s.end = Some(SubgroupEnd::Evicted);
        }
        sub.bump();
    }
    // Out of the arrival log: item by item when the group had few (they sit near the front),
    // else in one pass (removing thousands one by one, spread through the log, would shift
    // it once each under the track's lock).
    if g.subgroups.len() + g.datagrams.len() <= 8 {
        for seq in g
            .subgroups
            .iter()
            .map(|s| s.seq)
            .chain(g.datagrams.iter().map(|d| d.0))
        {
            remove_item(st, seq);
        }
    } else {
        st.items.retain(|(_, item)| item.group() != g.id);
    }
}

/// Drops the object of the (only) group that arrived first, `keep` excepted.
fn trim_oldest(st: &mut TrackState, shared: &TrackShared, keep: Keep) -> bool {
    let Some(g) = st.groups.front_mut() else {
        return false;
    };
    // (arrival, subgroup index, or None for the oldest datagram)
    let mut best: Option<(Instant, Option<usize>)> = None;
    for (i, sub) in g.subgroups.iter().enumerate() {
        let s = sub.lock();
        if let Some((o, t)) = s.objects.front() {
            if !keep.is_object(sub, o.id) && best.is_none_or(|(b, _)| *t < b) {
                best = Some((*t, Some(i)));
            }
        }
    }
    if let Some((seq, _, _, t)) = g.datagrams.front() {
        if keep != Keep::Datagram(*seq) && best.is_none_or(|(b, _)| *t < b) {
            best = Some((*t, None));
        }
    }
    let Some((_, which)) = best else {
        return false;
    };
    let (id, cost, seq) = match which {
        Some(i) => {
            let mut s = g.subgroups[i].lock();
            let Some((o, _)) = s.objects.pop_front() else {
                return false;
            };
            s.first += 1;
            (o.id, object_cost(&o), None)
        }
        None => {
            let Some((seq, _, o, _)) = g.datagrams.pop_front() else {
                return false;
            };
            g.datagram_ids.remove(&o.id);
            (o.id, object_cost(&o) + DATAGRAM_OVERHEAD, Some(seq))
        }
    };
    g.bytes = g.bytes.saturating_sub(cost);
    let loc = Location::new(g.id, id);
    shared.refund(st, cost);
    st.trimmed_objects += 1;
    note_dropped(st, loc);
    if let Some(seq) = seq {
        remove_item(st, seq);
    }
    true
}

/// Removes a subgroup of the (only) group that has no objects left, ended or open as `ended`
/// says, `keep` excepted. An open one is evicted: its later objects are discarded.
fn remove_empty_subgroup(
    st: &mut TrackState,
    shared: &TrackShared,
    keep: Keep,
    ended: bool,
) -> bool {
    let Some(g) = st.groups.front_mut() else {
        return false;
    };
    let pos = g.subgroups.iter().position(|sub| {
        if keep.is_subgroup(sub) {
            return false;
        }
        let s = sub.lock();
        s.objects.is_empty() && s.end.is_some() == ended
    });
    let Some(i) = pos else {
        return false;
    };
    let sub = g.subgroups.remove(i);
    g.bytes = g.bytes.saturating_sub(SUBGROUP_OVERHEAD);
    let gid = g.id;
    let evicted = {
        let mut s = sub.lock();
        let open = s.end.is_none();
        if open {
            s.end = Some(SubgroupEnd::Evicted);
        }
        open
    };
    if evicted {
        sub.bump();
        note_dropped(st, Location::new(gid, u64::MAX));
    }
    shared.refund(st, SUBGROUP_OVERHEAD);
    remove_item(st, sub.seq);
    true
}
