//! A byte budget shared by several tracks, enforced across them.

use super::evict::{evict_one, Keep};
use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Weak;

/// Accounted bytes (see [`TrackConfig`]) retained by several tracks together, against one
/// limit. Over it, the track holding the most bytes drops its oldest data (whole groups, then
/// the front of its last group), whichever track is being written; the total exceeds the limit
/// by at most the cost of the objects being written at that moment (one per concurrent writer).
pub struct ByteBudget {
    limit: usize,
    used: AtomicUsize,
    /// Every track charging this budget (ended ones pruned as it grows).
    tracks: Mutex<Vec<Weak<TrackShared>>>,
}

impl fmt::Debug for ByteBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteBudget")
            .field("limit", &self.limit)
            .field("used", &self.used())
            .finish()
    }
}

impl ByteBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(ByteBudget {
            limit,
            used: AtomicUsize::new(0),
            tracks: Mutex::new(Vec::new()),
        })
    }

    /// Bytes retained now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub(crate) fn add(&self, n: usize) {
        self.used.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            });
    }

    pub(crate) fn over(&self) -> bool {
        self.used() > self.limit
    }

    /// What an eviction brings the budget down to: 1/32 below the limit, so that a full
    /// budget is enforced once per that many bytes written, not on every write.
    fn low_water(&self) -> usize {
        self.limit - self.limit / 32
    }

    fn tracks(&self) -> MutexGuard<'_, Vec<Weak<TrackShared>>> {
        self.tracks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets the budget evict from `track`.
    pub(crate) fn register(&self, track: &Arc<TrackShared>) {
        let mut tracks = self.tracks();
        // Ended tracks are pruned when the list doubles: amortized O(1) per track.
        if tracks.len().is_power_of_two() {
            tracks.retain(|t| t.strong_count() > 0);
        }
        tracks.push(Arc::downgrade(track));
    }

    /// Evicts until the budget holds, from the track holding the most bytes first; `keep` (in
    /// `writer`) is never dropped. The caller holds no track lock.
    pub(crate) fn enforce(&self, writer: &Arc<TrackShared>, keep: Keep) {
        // Tracks that could not give anything up (only `keep` left).
        let mut exhausted: Vec<*const TrackShared> = Vec::new();
        while self.over() {
            let victim = {
                self.tracks()
                    .iter()
                    .filter_map(Weak::upgrade)
                    .filter(|t| !exhausted.contains(&Arc::as_ptr(t)))
                    .max_by_key(|t| t.accounted.load(Ordering::Relaxed))
            };
            let Some(victim) = victim else {
                return;
            };
            let keep = if Arc::ptr_eq(&victim, writer) {
                keep
            } else {
                Keep::Nothing
            };
            let progressed = {
                let mut st = victim.lock();
                let mut any = false;
                while self.used() > self.low_water() && evict_one(&mut st, &victim, keep) {
                    any = true;
                }
                any
            };
            if !progressed {
                exhausted.push(Arc::as_ptr(&victim));
            }
        }
    }
}
