//! What a publisher holds for one subscriber, bounded (issue 10).
//!
//! Each subgroup (moq-lite: group) of a subscription is sent by its own task, which takes an
//! object from the track, then waits for the transport to take it: for a stream to open (the
//! peer's stream limit), then for flow control. A subscriber that stops reading stops both, so
//! without a bound such tasks pile up, one per new group, each pinning the object it holds.
//!
//! A [`Backlog`] per subscription counts the stream tasks (open or waiting to open) and the
//! object bytes they took from the track but have not handed to the transport yet. Over either
//! limit of [`SendLimits`], whole groups are dropped, oldest first: their streams are reset
//! (draft-14: DELIVERY_TIMEOUT, which §9.2.1.2 lets a publisher apply "at [its] discretion,
//! earlier than the negotiated DELIVERY TIMEOUT", reset code from §10.4.3) and later subgroups of
//! a dropped group, or of any older group, are not opened at all, so a subscriber that reads
//! again resumes at a newer group. The newest group is dropped only when it alone breaks the
//! limit (more streams than allowed, or more than the byte limit held across two or more
//! objects: one object, already in memory in the track, is always let through).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// Bounds on what a publisher holds for one subscription whose subscriber does not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendLimits {
    /// Object bytes taken from the track but not yet handed to the transport, across the
    /// subscription's streams; over it, old groups are dropped. Default 1 MiB.
    pub max_queued_bytes: usize,
    /// Subgroup streams (moq-lite: group streams) open or waiting to open at once; a new one
    /// past it drops the oldest group (at least 1 is allowed). Default 64.
    pub max_streams: usize,
    /// Once the track has ended, how long its streams may still take to deliver before they
    /// are reset and PUBLISH_DONE goes. Default 10 s.
    pub drain_timeout: Duration,
}

impl Default for SendLimits {
    fn default() -> Self {
        SendLimits {
            max_queued_bytes: 1024 * 1024,
            max_streams: 64,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// What one session's subscriptions hold together (a metric).
#[derive(Debug, Default)]
pub struct SendTotals {
    bytes: AtomicUsize,
    streams: AtomicUsize,
}

impl SendTotals {
    /// Object bytes taken from tracks and not yet handed to the transport.
    pub fn queued_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Data streams open or waiting to open.
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Load {
    streams: usize,
    bytes: usize,
    objects: usize,
}

#[derive(Debug, Default)]
struct Ledger {
    /// Per group with a live ticket.
    groups: BTreeMap<u64, Load>,
    /// Groups up to this one are dropped.
    floor: Option<u64>,
    /// Every stream must stop, with this reset code.
    stop: Option<u64>,
}

impl Ledger {
    fn dropped(&self, group: u64) -> bool {
        self.stop.is_some() || self.floor.is_some_and(|f| group <= f)
    }

    /// Groups not dropped yet, oldest first.
    fn live(&self) -> impl Iterator<Item = (&u64, &Load)> {
        let from = self.floor.map_or(0, |f| f.saturating_add(1));
        let all = self.floor == Some(u64::MAX);
        self.groups.range(from..).filter(move |_| !all)
    }
}

/// The marks a ticket watches: the floor and the stop code.
#[derive(Debug, Default, Clone, Copy)]
struct Marks {
    floor: Option<u64>,
    stop: Option<u64>,
}

/// One subscription's streams and held bytes, against its [`SendLimits`].
#[derive(Debug)]
pub struct Backlog {
    limits: SendLimits,
    drop_code: u64,
    totals: Arc<SendTotals>,
    ledger: Mutex<Ledger>,
    marks: watch::Sender<Marks>,
}

impl Backlog {
    /// A backlog for one subscription; dropped groups' streams are reset with `drop_code`.
    pub fn new(limits: SendLimits, drop_code: u64, totals: Arc<SendTotals>) -> Arc<Self> {
        Arc::new(Backlog {
            limits,
            drop_code,
            totals,
            ledger: Mutex::new(Ledger::default()),
            marks: watch::channel(Marks::default()).0,
        })
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops `group` and every older one.
    fn drop_up_to(&self, l: &mut Ledger, group: u64) {
        if l.floor.is_none_or(|f| group > f) {
            l.floor = Some(group);
            tracing::debug!(group, "stalled subscriber: dropping groups up to this one");
            self.marks.send_modify(|m| m.floor = Some(group));
        }
    }

    /// A place for a stream of `group`, or `None` if the group is dropped (or becomes dropped to
    /// stay within [`SendLimits::max_streams`]).
    pub fn admit(self: &Arc<Self>, group: u64) -> Option<Ticket> {
        let mut l = self.ledger();
        loop {
            if l.dropped(group) {
                return None;
            }
            let live: usize = l.live().map(|(_, g)| g.streams).sum();
            if live < self.limits.max_streams.max(1) {
                break;
            }
            let oldest = l.live().map(|(g, _)| *g).next().unwrap_or(group);
            self.drop_up_to(&mut l, oldest.min(group));
        }
        l.groups.entry(group).or_default().streams += 1;
        self.totals.streams.fetch_add(1, Ordering::Relaxed);
        Some(Ticket {
            backlog: self.clone(),
            group,
            marks: self.marks.subscribe(),
        })
    }

    /// Resets every stream of the subscription with `code` (UNSUBSCRIBE, session end, end of
    /// the drain); nothing new is admitted.
    pub fn stop(&self, code: u64) {
        let mut l = self.ledger();
        if l.stop.is_none() {
            l.stop = Some(code);
            self.marks.send_modify(|m| m.stop = Some(code));
        }
    }

    /// Object bytes this subscription's streams hold now.
    pub fn queued_bytes(&self) -> usize {
        self.ledger().groups.values().map(|g| g.bytes).sum()
    }

    /// Streams open or waiting to open now.
    pub fn streams(&self) -> usize {
        self.ledger().groups.values().map(|g| g.streams).sum()
    }

    fn hold(self: &Arc<Self>, group: u64, n: usize) -> Hold {
        let mut l = self.ledger();
        let load = l.groups.entry(group).or_default();
        load.bytes += n;
        load.objects += 1;
        self.totals.bytes.fetch_add(n, Ordering::Relaxed);
        loop {
            let live: usize = l.live().map(|(_, g)| g.bytes).sum();
            if live <= self.limits.max_queued_bytes {
                break;
            }
            let mut it = l.live();
            let Some((&oldest, load)) = it.next() else {
                break;
            };
            let (alone, objects) = (it.next().is_none(), load.objects);
            drop(it);
            if alone && objects < 2 {
                // One object of the newest group is always let through.
                break;
            }
            self.drop_up_to(&mut l, oldest);
        }
        Hold {
            backlog: self.clone(),
            group,
            n,
        }
    }

    fn release(&self, group: u64, n: usize, objects: usize, streams: usize) {
        let mut l = self.ledger();
        if let Some(load) = l.groups.get_mut(&group) {
            load.bytes = load.bytes.saturating_sub(n);
            load.objects = load.objects.saturating_sub(objects);
            load.streams = load.streams.saturating_sub(streams);
            if load.streams == 0 && load.bytes == 0 {
                l.groups.remove(&group);
            }
        }
        let sub = |a: &AtomicUsize, n: usize| {
            let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
        };
        sub(&self.totals.bytes, n);
        sub(&self.totals.streams, streams);
    }
}

/// One stream's place in its subscription's [`Backlog`]; dropping it frees the place.
#[derive(Debug)]
pub struct Ticket {
    backlog: Arc<Backlog>,
    group: u64,
    marks: watch::Receiver<Marks>,
}

impl Ticket {
    /// The group this stream carries.
    pub fn group(&self) -> u64 {
        self.group
    }

    /// Counts an object of `n` bytes taken from the track until the returned guard is dropped
    /// (once the transport took it). May drop groups, this one included, to stay in bounds.
    pub fn hold(&self, n: usize) -> Hold {
        self.backlog.hold(self.group, n)
    }

    fn cut_code(&self, m: &Marks) -> Option<u64> {
        if let Some(code) = m.stop {
            return Some(code);
        }
        m.floor
            .is_some_and(|f| self.group <= f)
            .then_some(self.backlog.drop_code)
    }

    /// The reset code if this stream must stop now.
    pub fn cut(&self) -> Option<u64> {
        self.cut_code(&self.marks.borrow())
    }

    /// Resolves with the reset code once this stream must stop (its group was dropped, or the
    /// subscription stopped). Cancel-safe.
    pub async fn cancelled(&self) -> u64 {
        let mut rx = self.marks.clone();
        loop {
            if let Some(code) = self.cut_code(&rx.borrow_and_update()) {
                return code;
            }
            if rx.changed().await.is_err() {
                // The backlog (and its sender) outlives its tickets; never reached.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.backlog.release(self.group, 0, 0, 1);
    }
}

/// Bytes of one object counted in a [`Backlog`] until dropped.
#[derive(Debug)]
pub struct Hold {
    backlog: Arc<Backlog>,
    group: u64,
    n: usize,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.backlog.release(self.group, self.n, 1, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog(bytes: usize, streams: usize) -> Arc<Backlog> {
        let limits = SendLimits {
            max_queued_bytes: bytes,
            max_streams: streams,
            ..SendLimits::default()
        };
        Backlog::new(limits, 2, Arc::new(SendTotals::default()))
    }

    #[test]
    fn streams_past_the_limit_drop_the_oldest_group() {
        let b = backlog(1 << 20, 2);
        let t0 = b.admit(0).unwrap();
        let t1 = b.admit(1).unwrap();
        assert_eq!(t0.cut(), None);
        let t2 = b.admit(2).unwrap();
        assert_eq!(t0.cut(), Some(2));
        assert_eq!(t1.cut(), None);
        // Group 0 is dropped: later subgroups of it, and older groups, are skipped.
        assert!(b.admit(0).is_none());
        // Group 1 is older than the live ones at the limit: it goes, and its newcomer with it.
        drop(t0);
        assert!(b.admit(1).is_none());
        assert_eq!(t1.cut(), Some(2));
        assert_eq!(t2.cut(), None);
    }

    #[test]
    fn the_newest_group_alone_over_the_stream_limit_is_dropped_too() {
        let b = backlog(1 << 20, 2);
        let a = b.admit(5).unwrap();
        let c = b.admit(5).unwrap();
        assert!(b.admit(5).is_none());
        assert_eq!((a.cut(), c.cut()), (Some(2), Some(2)));
        drop((a, c));
        assert_eq!(b.streams(), 0);
        assert!(b.admit(6).is_some());
    }

    #[test]
    fn bytes_past_the_limit_drop_old_groups_but_one_newest_object_passes() {
        let b = backlog(100, 64);
        let t0 = b.admit(0).unwrap();
        let t1 = b.admit(1).unwrap();
        let h0 = t0.hold(80);
        // A single object over the limit alone is let through.
        let big = t1.hold(500);
        assert_eq!(t0.cut(), Some(2));
        assert_eq!(t1.cut(), None);
        assert_eq!(b.queued_bytes(), 580);
        drop(h0);
        assert_eq!(b.queued_bytes(), 500);
        // A second object in the newest group over the limit drops it too.
        let _h = t1.hold(10);
        assert_eq!(t1.cut(), Some(2));
        drop(big);
        assert_eq!(b.queued_bytes(), 10);
    }

    #[test]
    fn stop_cuts_everything_and_admits_nothing() {
        let b = backlog(100, 64);
        let t = b.admit(3).unwrap();
        b.stop(1);
        assert_eq!(t.cut(), Some(1));
        assert!(b.admit(4).is_none());
        drop(t);
        assert_eq!((b.streams(), b.queued_bytes()), (0, 0));
    }
}
