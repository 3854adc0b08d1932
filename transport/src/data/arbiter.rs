//! Send arbitration between the data streams of one connection (§7.2).
//!
//! QUIC stream priorities order only data already handed to the QUIC stack, and QUIC charges
//! connection-level flow control (MAX_DATA) when data is handed over, not when it is sent. When
//! the peer's window is the bottleneck, whichever writer runs first after a MAX_DATA takes the
//! credit, whatever its priority. So a writer hands data over only when no more important
//! writer of the same connection has data to send: it waits while one is writing or is between
//! two chunks (until it reports [`WriterSlot::idle`]), and when that writer has been stuck for
//! [`STALL`] — blocked by the peer, by connection or by stream flow control, which cannot be
//! told apart from here — it sends small probes. A probe that goes through at once doubles; one
//! that blocks shrinks back. A stream the peer stopped reading therefore costs the others one
//! [`STALL`], while under connection-level contention a less important stream wins at most a
//! probe's worth of each window update. Idle writers never hold anyone back.

use crate::connection::{SendStream, StreamError};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long a more important writer may be stuck in one write (or between two chunks) before
/// others go ahead.
pub const STALL: Duration = Duration::from_millis(60);
/// The first probe's size: about one packet.
const PROBE_MIN: usize = 1200;
/// The largest probe.
const PROBE_MAX: usize = 64 * 1024;
/// A probe that completes within this went through without waiting for credit.
const QUICK: Duration = Duration::from_millis(1);
/// While less important writers wait, a writer hands data over in pieces this large, so they
/// see it progress under each window update rather than once per object.
const SHARED_PIECE: usize = 4 * 1024;

/// Arbitrates the data stream writers of one connection by priority.
#[derive(Debug, Default)]
pub struct SendArbiter {
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    writers: HashMap<u64, Writer>,
}

#[derive(Debug, Clone, Copy)]
struct Writer {
    priority: i32,
    /// When the current write began (`busy`) or the last one ended.
    at: Instant,
    busy: bool,
    /// Has more to write (false once it reported idle).
    wanting: bool,
}

/// The part of a stream priority writers are arbitrated by: subscriber then publisher priority
/// (§7.2 rules 1 and 2). Group order ranks groups within one subscription only, and §7.2 leaves
/// subscriptions of equal priorities unordered ("all subscriptions will be able to send some
/// data"), so it is left to QUIC's ordering of data already handed over.
fn rank(stream_priority: i32) -> i32 {
    stream_priority >> 15
}

/// What a writer may do now.
enum Turn {
    /// Hand the chunk over, in pieces of at most this size.
    Go(usize),
    /// A more important writer is sending: wait until this instant (or a change).
    Wait(Instant),
    /// More important writers are stuck: hand over a probe.
    Probe,
}

impl SendArbiter {
    /// A new arbiter for one connection.
    pub fn new() -> Arc<Self> {
        Arc::new(SendArbiter::default())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a writer at `priority` (a [`super::stream_priority`]; higher is more
    /// important).
    pub fn register(self: &Arc<Self>, priority: i32) -> WriterSlot {
        let priority = rank(priority);
        let mut st = self.state();
        let id = st.next_id;
        st.next_id += 1;
        st.writers.insert(
            id,
            Writer {
                priority,
                at: Instant::now(),
                busy: false,
                wanting: true,
            },
        );
        WriterSlot {
            arbiter: self.clone(),
            id,
        }
    }

    fn turn(&self, id: u64) -> Turn {
        let st = self.state();
        let Some(me) = st.writers.get(&id).copied() else {
            return Turn::Go(usize::MAX);
        };
        let now = Instant::now();
        let mut wait: Option<Instant> = None;
        let mut probe = false;
        let mut piece = usize::MAX;
        for (other, w) in &st.writers {
            if *other == id || w.priority == me.priority {
                continue;
            }
            if w.priority < me.priority {
                if w.busy || w.wanting {
                    piece = SHARED_PIECE;
                }
                continue;
            }
            if !w.busy && !w.wanting {
                continue;
            }
            let until = w.at + STALL;
            if until > now {
                wait = Some(wait.map_or(until, |t: Instant| t.min(until)));
            } else if w.busy {
                probe = true;
            }
        }
        match (wait, probe) {
            (Some(t), _) => Turn::Wait(t),
            (None, true) => Turn::Probe,
            (None, false) => Turn::Go(piece),
        }
    }

    /// Records that a writer started (`busy`) or ended a write. Waiters are not woken: a
    /// writer between two chunks still holds less important ones back for another [`STALL`]
    /// (they wake by their own deadline); only `idle`, a priority change and leaving free them.
    fn mark(&self, id: u64, busy: bool) {
        if let Some(w) = self.state().writers.get_mut(&id) {
            w.busy = busy;
            w.wanting = true;
            w.at = Instant::now();
        }
    }
}

/// One writer's place in its connection's arbitration; leaving drops it.
#[derive(Debug)]
pub struct WriterSlot {
    arbiter: Arc<SendArbiter>,
    id: u64,
}

impl WriterSlot {
    /// Changes this writer's priority.
    pub fn set_priority(&self, priority: i32) {
        if let Some(w) = self.arbiter.state().writers.get_mut(&self.id) {
            w.priority = rank(priority);
        }
        self.arbiter.changed.notify_waiters();
    }

    /// Reports that this writer has nothing more to write for now (it waits for new data), so
    /// less important writers need not wait for it.
    pub fn idle(&self) {
        if let Some(w) = self.arbiter.state().writers.get_mut(&self.id) {
            w.wanting = false;
        }
        self.arbiter.changed.notify_waiters();
    }

    /// Writes all of `buf` on `stream` when this writer's turn comes.
    pub async fn send<S: SendStream>(
        &self,
        stream: &mut S,
        mut buf: Bytes,
    ) -> Result<(), StreamError> {
        let mut probe = PROBE_MIN;
        while !buf.is_empty() {
            let changed = self.arbiter.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let part = match self.arbiter.turn(self.id) {
                Turn::Wait(until) => {
                    let _ = tokio::time::timeout_at(until, changed).await;
                    continue;
                }
                Turn::Go(piece) => buf.split_to(piece.min(buf.len())),
                Turn::Probe => buf.split_to(probe.min(buf.len())),
            };
            let started = Instant::now();
            self.arbiter.mark(self.id, true);
            let r = stream.write_chunk(part).await;
            self.arbiter.mark(self.id, false);
            r?;
            probe = if started.elapsed() <= QUICK {
                (probe * 2).min(PROBE_MAX)
            } else {
                PROBE_MIN
            };
        }
        Ok(())
    }
}

impl Drop for WriterSlot {
    fn drop(&mut self) {
        self.arbiter.state().writers.remove(&self.id);
        self.arbiter.changed.notify_waiters();
    }
}
