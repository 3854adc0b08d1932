//! Incoming data: each unidirectional stream is read by its own task, which decodes the header,
//! finds who holds the track alias (or fetch request), and passes objects on through a bounded
//! channel, so a slow consumer slows only its stream (QUIC flow control does the rest).

use crate::connection::{Connection, RecvStream, StreamError};
use crate::limits::{BudgetShare, ReceiveBudget, STOP_HEADER_TIMEOUT, STOP_OVER_BUDGET};
use crate::qlog::{DataEvent, Dir, Qlog, StreamTrace};
use moqlink_model::data::{
    reset_code, FetchObject, ObjectDatagram, StreamEvent, StreamReader, SubgroupHeader,
    SubgroupObject,
};
use moqlink_model::{DecodeError, Rule, SessionErrorCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};

/// Objects buffered per stream before its reader waits for the consumer.
const STREAM_QUEUE: usize = 32;
/// Subgroup streams queued per track before the router waits for the consumer.
const TRACK_QUEUE: usize = 64;
/// Datagrams queued per track; more are dropped, as the network may drop them.
const DATAGRAM_QUEUE: usize = 256;

/// Payloads shorter than this are copied out of the received chunk into their own allocation
/// when they arrive (4 KiB). A payload decoded without copying is a slice of the transport's
/// receive buffer and keeps all of that buffer alive (QUIC's can be tens of KiB, shared by many
/// packets), so a 1-byte object held in a track cache could pin many times its accounted cost.
/// Larger payloads are kept as slices: they are either a large part of their chunk or were
/// already copied whole because they spanned chunks. The copy happens once, before any track
/// stores the object, so every consumer of a track still shares one copy.
pub(crate) const COPY_PAYLOAD_BELOW: usize = 4096;

/// `payload` in an allocation of its own when it is short (see [`COPY_PAYLOAD_BELOW`]).
pub(crate) fn compact(payload: bytes::Bytes) -> bytes::Bytes {
    if payload.is_empty() || payload.len() >= COPY_PAYLOAD_BELOW {
        payload
    } else {
        bytes::Bytes::copy_from_slice(&payload)
    }
}

/// What happens next on an incoming subgroup stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubgroupEvent {
    /// The head of the object with this ID arrived; its payload is still on the way (§9.7:
    /// the Largest Object moves when an object's first byte arrives).
    Begun(u64),
    /// The next object.
    Object(SubgroupObject),
    /// The stream ended with FIN: every object of the subgroup arrived.
    Finished,
    /// The stream ended without FIN: the publisher reset it with this code, this side stopped
    /// it at a limit (the STOP_SENDING code), the data broke a rule (INTERNAL_ERROR, the
    /// session closes), or the connection was lost (SESSION_CLOSED). The subgroup may be
    /// incomplete (§10.4.2).
    Reset(u64),
}

/// What happens next on an incoming fetch stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchEvent {
    /// The next object.
    Object(FetchObject),
    /// The stream ended with FIN.
    Finished,
    /// The publisher reset the stream with this code.
    Reset(u64),
}

/// An incoming subgroup stream of a track this session subscribed to.
#[derive(Debug)]
pub struct IncomingSubgroup {
    /// The stream's SUBGROUP_HEADER.
    pub header: SubgroupHeader,
    events: mpsc::Receiver<SubgroupEvent>,
    stop: Option<oneshot::Sender<u64>>,
}

impl IncomingSubgroup {
    /// The next event; `None` once the stream is gone.
    pub async fn next(&mut self) -> Option<SubgroupEvent> {
        self.events.recv().await
    }

    /// Asks the publisher to stop sending (STOP_SENDING with `code`).
    pub fn stop(mut self, code: u64) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(code);
        }
    }
}

/// An incoming fetch stream.
#[derive(Debug)]
pub struct IncomingFetch {
    /// The FETCH this stream answers.
    pub request_id: u64,
    events: mpsc::Receiver<FetchEvent>,
    stop: Option<oneshot::Sender<u64>>,
}

impl IncomingFetch {
    /// The next event; `None` once the stream is gone.
    pub async fn next(&mut self) -> Option<FetchEvent> {
        self.events.recv().await
    }

    /// Asks the publisher to stop sending.
    pub fn stop(mut self, code: u64) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(code);
        }
    }
}

/// Everything that arrives for one track alias.
#[derive(Debug)]
pub struct TrackData {
    /// Subgroup streams, one per stream opened by the publisher.
    pub subgroups: mpsc::Receiver<IncomingSubgroup>,
    /// Datagrams.
    pub datagrams: mpsc::Receiver<ObjectDatagram>,
}

struct TrackRoute {
    subgroups: mpsc::Sender<IncomingSubgroup>,
    datagrams: mpsc::Sender<ObjectDatagram>,
}

#[derive(Default)]
struct RouterState {
    tracks: HashMap<u64, TrackRoute>,
    fetches: HashMap<u64, oneshot::Sender<IncomingFetch>>,
    waiting: usize,
    dropped_datagrams: u64,
}

/// Closes the session when data breaks a rule.
pub(crate) type Closer = Arc<dyn Fn(SessionErrorCode, String) + Send + Sync>;

/// Routes incoming data streams and datagrams by track alias and fetch request ID.
pub struct DataRouter {
    /// Shared with [`ExpectedFetch`] guards, which unregister themselves when dropped.
    state: Arc<Mutex<RouterState>>,
    registered: Notify,
    /// How long a stream with an unknown alias waits for SUBSCRIBE_OK / PUBLISH to name it.
    alias_wait: Duration,
    /// How many such streams may wait at once; more are refused with STOP_SENDING.
    max_waiting: usize,
}

/// A track alias already routes to another subscription.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("track alias {0} is already in use")]
pub struct DuplicateAlias(pub u64);

impl Default for DataRouter {
    fn default() -> Self {
        DataRouter {
            state: Arc::default(),
            registered: Notify::new(),
            alias_wait: Duration::from_secs(2),
            max_waiting: 64,
        }
    }
}

impl DataRouter {
    fn state(&self) -> MutexGuard<'_, RouterState> {
        lock(&self.state)
    }

    /// Starts routing data for `alias`; fails if the alias is taken (the session then closes
    /// with DUPLICATE_TRACK_ALIAS, §9.8).
    pub fn register_track(&self, alias: u64) -> Result<TrackData, DuplicateAlias> {
        let (stx, srx) = mpsc::channel(TRACK_QUEUE);
        let (dtx, drx) = mpsc::channel(DATAGRAM_QUEUE);
        {
            let mut st = self.state();
            if st
                .tracks
                .get(&alias)
                .is_some_and(|r| !r.subgroups.is_closed())
            {
                return Err(DuplicateAlias(alias));
            }
            st.tracks.insert(
                alias,
                TrackRoute {
                    subgroups: stx,
                    datagrams: dtx,
                },
            );
        }
        self.registered.notify_waiters();
        Ok(TrackData {
            subgroups: srx,
            datagrams: drx,
        })
    }

    /// Stops routing data for `alias`; later streams for it are refused.
    pub fn unregister_track(&self, alias: u64) {
        self.state().tracks.remove(&alias);
    }

    /// Registers interest in the fetch stream answering `request_id` (call before sending FETCH).
    /// Await the returned guard for the stream; dropping it (FETCH_ERROR, a failed or abandoned
    /// request) removes the registration, so refused fetches leave nothing behind.
    pub fn expect_fetch(&self, request_id: u64) -> ExpectedFetch {
        let (tx, rx) = oneshot::channel();
        self.state().fetches.insert(request_id, tx);
        self.registered.notify_waiters();
        ExpectedFetch {
            request_id,
            rx: Some(rx),
            state: Arc::downgrade(&self.state),
        }
    }

    /// Fetch streams expected (registered by [`DataRouter::expect_fetch`], not yet arrived).
    pub fn pending_fetches(&self) -> usize {
        self.state().fetches.len()
    }

    /// Datagrams dropped because their alias was unknown or the consumer was behind.
    pub fn dropped_datagrams(&self) -> u64 {
        self.state().dropped_datagrams
    }

    /// Starts the tasks that accept streams and datagrams on `conn`, reading them within the
    /// connection's [`crate::limits::ConnectionLimits`].
    pub(crate) fn spawn<C: Connection>(
        self: &Arc<Self>,
        conn: C,
        closer: Closer,
        qlog: Option<Qlog>,
    ) {
        let me = self.clone();
        let c = conn.clone();
        let close = closer.clone();
        let l = conn.limits();
        let limits = Arc::new(StreamLimits {
            budget: ReceiveBudget::new(l.partial_object_bytes),
            max_object: l.max_object_size,
            header_deadline: l.header_deadline,
            qlog: qlog.clone(),
        });
        tokio::spawn(async move {
            while let Ok(recv) = c.accept_uni().await {
                tokio::spawn(me.clone().read_stream(recv, close.clone(), limits.clone()));
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            while let Ok(d) = conn.recv_datagram().await {
                me.on_datagram(d, &closer, qlog.as_ref());
            }
        });
    }

    fn on_datagram(&self, mut bytes: bytes::Bytes, closer: &Closer, qlog: Option<&Qlog>) {
        let mut d = match ObjectDatagram::decode(&mut bytes) {
            Ok(d) => d,
            Err(e) => {
                violation(closer, &e);
                return;
            }
        };
        if let Some(q) = qlog {
            q.data_event(
                DataEvent::ObjectDatagram,
                Dir::Parsed,
                crate::qlog::datagram(&d),
            );
        }
        if let moqlink_model::data::DatagramBody::Payload(p) = &mut d.body {
            p.0 = compact(std::mem::take(&mut p.0));
        }
        let mut st = self.state();
        let delivered = st
            .tracks
            .get(&d.track_alias)
            .is_some_and(|r| r.datagrams.try_send(d).is_ok());
        if !delivered {
            st.dropped_datagrams += 1;
        }
    }

    async fn route_wait<T>(
        &self,
        mut find: impl FnMut(&mut RouterState) -> Option<T>,
    ) -> Option<T> {
        {
            let mut st = self.state();
            if let Some(t) = find(&mut st) {
                return Some(t);
            }
            if st.waiting >= self.max_waiting {
                return None;
            }
            st.waiting += 1;
        }
        let deadline = tokio::time::Instant::now() + self.alias_wait;
        let found = loop {
            // Registered before checking, so a notify_waiters() in between is not missed.
            let notified = self.registered.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(t) = find(&mut self.state()) {
                break Some(t);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break find(&mut self.state());
            }
        };
        self.state().waiting -= 1;
        found
    }

    async fn read_stream<R: RecvStream>(
        self: Arc<Self>,
        mut recv: R,
        closer: Closer,
        limits: Arc<StreamLimits>,
    ) {
        let mut reader = StreamReader::new(limits.max_object);
        let mut input = Input {
            closer: &closer,
            share: BudgetShare::new(limits.budget.clone()),
            begun: None,
            trace: limits
                .qlog
                .as_ref()
                .map(|q| StreamTrace::new(q, Dir::Parsed, recv.stream_id())),
        };
        // The stream type and header must arrive within the deadline (§12.2), so streams that
        // never say what they are cannot pin stream slots and tasks.
        let first = tokio::time::timeout(
            limits.header_deadline,
            next_event(&mut recv, &mut reader, &mut input),
        )
        .await;
        let first = match first {
            Err(_) => {
                tracing::debug!(
                    deadline = ?limits.header_deadline,
                    "data stream sent no header in time: stopped"
                );
                return recv.stop(STOP_HEADER_TIMEOUT);
            }
            Ok(Some(Ok(Read::Event(ev)))) => ev,
            Ok(Some(Ok(Read::Begun(_)))) => return recv.stop(reset_code::INTERNAL_ERROR),
            Ok(Some(Err(code))) => {
                tracing::debug!(code, "data stream reset (or stopped) before its header");
                return;
            }
            Ok(None) => return,
        };
        match first {
            StreamEvent::SubgroupHeader(header) => {
                let alias = header.track_alias;
                let route = self
                    .route_wait(|st| st.tracks.get(&alias).map(|r| r.subgroups.clone()))
                    .await;
                let Some(route) = route else {
                    tracing::debug!(alias, "subgroup stream for an unknown track alias refused");
                    recv.stop(reset_code::CANCELLED);
                    return;
                };
                let (tx, rx) = mpsc::channel(STREAM_QUEUE);
                let (stop_tx, stop_rx) = oneshot::channel();
                let incoming = IncomingSubgroup {
                    header,
                    events: rx,
                    stop: Some(stop_tx),
                };
                if route.send(incoming).await.is_err() {
                    recv.stop(reset_code::CANCELLED);
                    return;
                }
                pump(recv, reader, tx, stop_rx, input, |ev| match ev {
                    Read::Event(StreamEvent::SubgroupObject(mut o)) => {
                        o.payload.0 = compact(o.payload.0);
                        Some(SubgroupEvent::Object(o))
                    }
                    Read::Begun(id) => Some(SubgroupEvent::Begun(id)),
                    _ => None,
                })
                .await;
            }
            StreamEvent::FetchHeader(h) => {
                let id = h.request_id;
                let route = self.route_wait(|st| st.fetches.remove(&id)).await;
                let Some(route) = route else {
                    tracing::debug!(id, "fetch stream for an unknown request refused");
                    recv.stop(reset_code::CANCELLED);
                    return;
                };
                let (tx, rx) = mpsc::channel(STREAM_QUEUE);
                let (stop_tx, stop_rx) = oneshot::channel();
                let incoming = IncomingFetch {
                    request_id: id,
                    events: rx,
                    stop: Some(stop_tx),
                };
                if route.send(incoming).is_err() {
                    recv.stop(reset_code::CANCELLED);
                    return;
                }
                pump(recv, reader, tx, stop_rx, input, |ev| match ev {
                    Read::Event(StreamEvent::FetchObject(mut o)) => {
                        o.payload.0 = compact(o.payload.0);
                        Some(FetchEvent::Object(o))
                    }
                    _ => None,
                })
                .await;
            }
            // The reader yields a header first; anything else cannot happen.
            _ => recv.stop(reset_code::INTERNAL_ERROR),
        }
    }
}

fn lock(state: &Mutex<RouterState>) -> MutexGuard<'_, RouterState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// The fetch stream expected for one FETCH: a future of its [`IncomingFetch`] (an error if the
/// router gave up on it). Dropped before the stream arrives, it unregisters the request.
#[derive(Debug)]
pub struct ExpectedFetch {
    request_id: u64,
    rx: Option<oneshot::Receiver<IncomingFetch>>,
    state: std::sync::Weak<Mutex<RouterState>>,
}

impl std::future::Future for ExpectedFetch {
    type Output = Result<IncomingFetch, oneshot::error::RecvError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.rx.as_mut() {
            Some(rx) => std::pin::Pin::new(rx).poll(cx),
            // Only after Drop took it; cannot be polled then.
            None => std::task::Poll::Pending,
        }
    }
}

impl Drop for ExpectedFetch {
    fn drop(&mut self) {
        // Closing the receiver first makes the registration recognisably ours (its sender is
        // closed), so a later registration of the same ID is never removed by mistake.
        drop(self.rx.take());
        if let Some(state) = self.state.upgrade() {
            let mut st = lock(&state);
            if st
                .fetches
                .get(&self.request_id)
                .is_some_and(|tx| tx.is_closed())
            {
                st.fetches.remove(&self.request_id);
            }
        }
    }
}

trait EndEvent {
    fn finished() -> Self;
    fn reset(code: u64) -> Self;
    fn is_end(&self) -> bool;
}

impl EndEvent for SubgroupEvent {
    fn finished() -> Self {
        SubgroupEvent::Finished
    }
    fn reset(code: u64) -> Self {
        SubgroupEvent::Reset(code)
    }
    fn is_end(&self) -> bool {
        matches!(self, SubgroupEvent::Finished | SubgroupEvent::Reset(_))
    }
}

impl EndEvent for FetchEvent {
    fn finished() -> Self {
        FetchEvent::Finished
    }
    fn reset(code: u64) -> Self {
        FetchEvent::Reset(code)
    }
    fn is_end(&self) -> bool {
        !matches!(self, FetchEvent::Object(_))
    }
}

/// The receive limits of one session's data streams.
struct StreamLimits {
    /// Bytes buffered for partial objects across the session's streams.
    budget: Arc<ReceiveBudget>,
    /// Largest object a stream may carry.
    max_object: usize,
    /// How long a new stream may take to deliver its header.
    header_deadline: Duration,
    /// The session's qlog trace, if tracing is on.
    qlog: Option<Qlog>,
}

/// What reading one stream carries along: where violations go, its share of the session's
/// receive budget, and the object last reported as begun.
struct Input<'a> {
    closer: &'a Closer,
    share: BudgetShare,
    begun: Option<u64>,
    /// Logs the stream's header and objects when tracing is on.
    trace: Option<StreamTrace>,
}

/// Reads objects and passes them on until FIN, reset, STOP from the consumer, or an error.
async fn pump<R: RecvStream, E: EndEvent>(
    mut recv: R,
    mut reader: StreamReader,
    tx: mpsc::Sender<E>,
    mut stop_rx: oneshot::Receiver<u64>,
    mut input: Input<'_>,
    map: impl Fn(Read) -> Option<E>,
) {
    loop {
        let ev = tokio::select! {
            ev = next_event(&mut recv, &mut reader, &mut input) => ev,
            code = &mut stop_rx => {
                recv.stop(code.unwrap_or(reset_code::CANCELLED));
                return;
            }
        };
        let out = match ev {
            Some(Ok(ev)) => match map(ev) {
                Some(e) => e,
                None => continue,
            },
            Some(Err(code)) => E::reset(code),
            None => E::finished(),
        };
        let end = out.is_end();
        if tx.send(out).await.is_err() {
            // The consumer went away: nobody wants the rest of this stream.
            recv.stop(reset_code::CANCELLED);
            return;
        }
        if end {
            return;
        }
    }
}

/// What reading a data stream produced.
enum Read {
    /// A header or a whole object.
    Event(StreamEvent),
    /// A subgroup object's head, before its payload is complete.
    Begun(u64),
}

/// The next header or object (or a newly begun object, reported once through `begun`):
/// `Some(Ok)`, `Some(Err(code))` when the stream did not end cleanly: the peer reset it, this
/// side stopped it at a limit (the code sent in STOP_SENDING), the data broke a rule
/// (INTERNAL_ERROR, after closing the session) or the connection was lost (SESSION_CLOSED);
/// `None` only at a clean FIN.
async fn next_event<R: RecvStream>(
    recv: &mut R,
    reader: &mut StreamReader,
    input: &mut Input<'_>,
) -> Option<Result<Read, u64>> {
    loop {
        let decoded = reader.next_event();
        // Decoding consumed bytes: hand them back (shrinking never fails).
        input.share.hold(reader.buffered());
        match decoded {
            Ok(Some(ev)) => {
                if let Some(t) = &mut input.trace {
                    t.on_event(&ev);
                }
                return Some(Ok(Read::Event(ev)));
            }
            Ok(None) => {
                if let Some(id) = reader.pending_object() {
                    if input.begun != Some(id) {
                        input.begun = Some(id);
                        return Some(Ok(Read::Begun(id)));
                    }
                }
            }
            Err(e) if e.rule() == Rule::ObjectTooLarge => {
                // A local limit, not a protocol violation: cancel the stream (§12.1).
                tracing::info!(error = %e, "data stream object over the size limit: stopped");
                recv.stop(STOP_OVER_BUDGET);
                input.share.hold(0);
                return Some(Err(STOP_OVER_BUDGET));
            }
            Err(e) => {
                violation(input.closer, &e);
                return Some(Err(reset_code::INTERNAL_ERROR));
            }
        }
        match recv.read_chunk(64 * 1024).await {
            Ok(Some(chunk)) => {
                if !input.share.hold(reader.buffered() + chunk.len()) {
                    // Over the session's partial-object budget: cancel this stream, the one
                    // that would exceed it (§12.1); the session and other streams go on.
                    tracing::info!(
                        buffered = reader.buffered(),
                        chunk = chunk.len(),
                        "session partial-object budget exceeded: data stream stopped"
                    );
                    recv.stop(STOP_OVER_BUDGET);
                    input.share.hold(0);
                    return Some(Err(STOP_OVER_BUDGET));
                }
                reader.push(chunk)
            }
            Ok(None) => {
                if let Err(e) = reader.finish() {
                    // §10.4: a FIN inside an object (or before the header).
                    violation(input.closer, &e);
                    return Some(Err(reset_code::INTERNAL_ERROR));
                }
                return None;
            }
            Err(StreamError::Reset(code)) => return Some(Err(code)),
            // The connection was lost (or the stream is unusable): whatever was still on its
            // way is missing, so this is not a clean end (§10.4.2).
            Err(_) => return Some(Err(reset_code::SESSION_CLOSED)),
        }
    }
}

fn violation(closer: &Closer, e: &DecodeError) {
    tracing::warn!(error = %e, "data stream violation");
    closer(e.code(), e.to_string());
}
