//! moq-lite sessions (lite-02 / lite-01), chosen by the same CLIENT_SETUP / SERVER_SETUP exchange
//! as draft-14: a Subscribe stream per subscription, an Announce stream per prefix, a Group stream
//! per group. Objects go through the same [`TrackProducer`] handles as draft-14 sessions, so a
//! relay joins both worlds: broadcast path = namespace fields joined by `/`, group sequence =
//! group ID, frames = objects 0, 1, 2... of subgroup 0.

mod serve;

pub use serve::{serve_track, LiteAnnounceRequest, LiteAnnouncer, LiteSubscribeRequest};

use crate::connection::{Connection, RecvStream, SendStream, StreamError};
use crate::limits::{
    BudgetShare, ConnectionLimits, ReceiveBudget, LITE_STOP_OVER_LIMIT, LITE_STOP_TIMEOUT,
};
use crate::session::{Role, SessionClose, SessionError};
use crate::track::{
    SubgroupInfo, SubgroupProducer, TrackConfig, TrackEnd, TrackName, TrackProducer,
};
use bytes::{Bytes, BytesMut};
use moqlink_model::codes::{PublishDoneCode, SubscribeErrorCode};
use moqlink_model::control::MessageType;
use moqlink_model::data::SubgroupIdMode;
use moqlink_model::lite::{
    self, AnnounceStatus, BiStreamType, ControlReader, GroupEvent, GroupReader, LiteMessage,
};
use moqlink_model::{Blob, Encode, Encoding, SessionErrorCode, TrackNamespace, Version};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

/// The broadcast path for a namespace: its fields joined by `/`.
pub fn path_of(ns: &TrackNamespace) -> Blob {
    let mut out = Vec::new();
    for (i, f) in ns.fields().iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(f);
    }
    lite::normalize_path(&out)
}

/// The namespace for a broadcast path: its `/`-separated segments.
pub fn namespace_of(path: &[u8]) -> TrackNamespace {
    let norm = lite::normalize_path(path);
    if norm.is_empty() {
        return TrackNamespace::default();
    }
    TrackNamespace(
        norm.split(|b| *b == b'/')
            .map(|s| Blob::from(s.to_vec()))
            .collect(),
    )
}

/// What the peer asks of a lite session.
pub enum LiteEvent<C: Connection> {
    /// A SUBSCRIBE on a new Subscribe stream.
    Subscribe(LiteSubscribeRequest<C>),
    /// An ANNOUNCE_PLEASE on a new Announce stream.
    AnnouncePlease(LiteAnnounceRequest<C>),
}

pub(crate) struct Inner<C: Connection> {
    pub(crate) conn: C,
    pub(crate) version: Version,
    role: Role,
    close: watch::Sender<Option<SessionClose>>,
    next_id: AtomicU64,
    subs: Mutex<HashMap<u64, TrackProducer>>,
    /// The parameters of the peer's CLIENT_SETUP (servers; empty on clients).
    peer_setup: moqlink_model::params::SetupParameters,
    /// Bounds on what each served subscription holds for its subscriber.
    pub(crate) send_limits: crate::data::SendLimits,
    /// What the served subscriptions hold together.
    pub(crate) sending: Arc<crate::data::SendTotals>,
}

impl<C: Connection> Inner<C> {
    pub(crate) fn close(&self, code: u64, reason: &str, by_peer: bool) {
        self.close.send_if_modified(|c| {
            if c.is_some() {
                return false;
            }
            // The connection closes before anyone watching wakes, so no task reacting to the
            // close can still send on it (a dropped stream would otherwise be finished).
            if !by_peer {
                self.conn.close(code, reason);
            }
            *c = Some(SessionClose {
                code,
                reason: reason.to_string(),
                by_peer,
            });
            true
        });
    }

    pub(crate) fn encoding(&self) -> Encoding {
        Encoding::new(self.version)
    }
}

/// A running moq-lite session. Cheap to clone.
pub struct LiteSession<C: Connection> {
    inner: Arc<Inner<C>>,
}

impl<C: Connection> Clone for LiteSession<C> {
    fn clone(&self) -> Self {
        LiteSession {
            inner: self.inner.clone(),
        }
    }
}

/// Encodes one lite message.
pub(crate) fn encode(msg: &impl Encode, enc: Encoding) -> Result<Bytes, SessionError> {
    let mut b = BytesMut::new();
    msg.encode(&mut b, enc)
        .map_err(|e| SessionError::Unexpected(e.to_string()))?;
    Ok(b.freeze())
}

/// Reads the next message of a lite bidirectional stream; `Ok(None)` at FIN. Messages over
/// `max` bytes (the connection's [`ConnectionLimits::lite_max_message`]) fail.
pub(crate) async fn read_message<R: RecvStream>(
    recv: &mut R,
    reader: &mut ControlReader,
    max: usize,
) -> Result<Option<LiteMessage>, String> {
    read_message_max(recv, reader, max)
        .await
        .map_err(|e| e.to_string())
}

/// Why reading a lite bidirectional stream failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The bytes break the lite encoding: a protocol violation.
    #[error("{0}")]
    Decode(moqlink_model::DecodeError),
    /// The next message is larger than this side accepts (a local limit).
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    /// The stream or connection failed.
    #[error("{0}")]
    Stream(StreamError),
}

/// Reads the next message, refusing one longer than `max` bytes before buffering more than
/// `max + 1` bytes of it; `Ok(None)` at FIN.
pub(crate) async fn read_message_max<R: RecvStream>(
    recv: &mut R,
    reader: &mut ControlReader,
    max: usize,
) -> Result<Option<LiteMessage>, ReadError> {
    loop {
        match reader.next_message() {
            Ok(Some(m)) => return Ok(Some(m)),
            Ok(None) => {}
            // The codec's per-message limit is a local one, like `max`: the stream is refused.
            Err(e) if e.rule() == moqlink_model::Rule::LiteMessageTooLarge => {
                return Err(ReadError::TooLarge(max))
            }
            Err(e) => return Err(ReadError::Decode(e)),
        }
        // Nothing decodes yet, so everything buffered belongs to the next message.
        let buffered = reader.buffered();
        if buffered > max {
            return Err(ReadError::TooLarge(max));
        }
        let room = (max + 1 - buffered).min(64 * 1024);
        match recv.read_chunk(room).await {
            Ok(Some(c)) => reader.push(c),
            Ok(None) => return Ok(None),
            Err(e) => return Err(ReadError::Stream(e)),
        }
    }
}

/// Ends a lite stream this side will not serve: reset, and STOP_SENDING for the rest.
pub(crate) fn refuse_stream<C: Connection>(send: &mut C::Send, recv: &mut C::Recv, code: u64) {
    let _ = send.reset(code);
    recv.stop(code);
}

impl<C: Connection> LiteSession<C> {
    /// Starts a lite session after SETUP chose `version`; `control` is the SETUP stream, which
    /// stays open as the session stream (SESSION_UPDATE) and whose end ends the session.
    pub(crate) fn start(
        conn: C,
        version: Version,
        role: Role,
        control: (C::Send, C::Recv, Bytes),
        peer_setup: moqlink_model::params::SetupParameters,
        send_limits: crate::data::SendLimits,
    ) -> (Self, mpsc::Receiver<LiteEvent<C>>) {
        let inner = Arc::new(Inner {
            conn,
            version,
            role,
            close: watch::channel(None).0,
            next_id: AtomicU64::new(0),
            subs: Mutex::new(HashMap::new()),
            peer_setup,
            send_limits,
            sending: Arc::default(),
        });
        let (tx, rx) = mpsc::channel(256);
        let (send, recv, leftover) = control;
        tokio::spawn(session_stream(inner.clone(), send, recv, leftover));
        tokio::spawn(accept_bi(inner.clone(), tx));
        tokio::spawn(accept_uni(inner.clone()));
        let watcher = inner.clone();
        tokio::spawn(async move {
            let e = watcher.conn.closed().await;
            let c: SessionClose = (&e).into();
            watcher.close(c.code, &c.reason, c.by_peer);
        });
        (LiteSession { inner }, rx)
    }

    /// The negotiated lite version.
    pub fn version(&self) -> Version {
        self.inner.version
    }

    /// This endpoint's role.
    pub fn role(&self) -> Role {
        self.inner.role
    }

    /// The connection.
    pub fn connection(&self) -> &C {
        &self.inner.conn
    }

    /// The parameters of the client's CLIENT_SETUP, on a server (PATH, AUTHORIZATION_TOKEN...).
    pub fn peer_setup(&self) -> &moqlink_model::params::SetupParameters {
        &self.inner.peer_setup
    }

    /// How the session ended, if it has.
    pub fn close_reason(&self) -> Option<SessionClose> {
        self.inner.close.borrow().clone()
    }

    /// Waits until the session ends.
    pub async fn closed(&self) -> SessionClose {
        let mut rx = self.inner.close.subscribe();
        loop {
            if let Some(c) = rx.borrow_and_update().clone() {
                return c;
            }
            if rx.changed().await.is_err() {
                return SessionClose {
                    code: 0,
                    reason: "dropped".into(),
                    by_peer: false,
                };
            }
        }
    }

    /// Closes the session.
    pub fn close(&self, code: SessionErrorCode, reason: &str) {
        self.inner.close(code.code(), reason, false);
    }

    /// Subscribes to `track` of broadcast `path`; objects arrive in the returned track.
    pub async fn subscribe(
        &self,
        path: &Blob,
        track: &Blob,
        priority: u8,
        config: TrackConfig,
    ) -> Result<LiteSubscription, SessionError> {
        self.subscribe_to(path, track, priority, Err(config)).await
    }

    /// Subscribes to `track` of broadcast `path`, writing its groups into `into` together with
    /// other writers (groups already there are merged, not repeated); the subscription does not
    /// end `into` (see [`LiteSubscription::ended`]).
    pub async fn subscribe_into(
        &self,
        path: &Blob,
        track: &Blob,
        priority: u8,
        into: TrackProducer,
    ) -> Result<LiteSubscription, SessionError> {
        self.subscribe_to(path, track, priority, Ok(into)).await
    }

    async fn subscribe_to(
        &self,
        path: &Blob,
        track: &Blob,
        priority: u8,
        target: Result<TrackProducer, TrackConfig>,
    ) -> Result<LiteSubscription, SessionError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let name = TrackName {
            namespace: namespace_of(path),
            name: track.clone(),
        };
        let owned = target.is_err();
        let producer = target.unwrap_or_else(|config| TrackProducer::new(name, config));
        // Registered before SUBSCRIBE goes out: a group stream may overtake SUBSCRIBE_OK (it
        // travels on its own stream), and one for an unknown ID is refused. Removed again
        // below on every path that does not end in a live subscription.
        let registered = SubRegistration::new(&self.inner, id, producer.clone());
        let (mut send, mut recv) = self.inner.conn.open_bi().await?;
        let enc = self.inner.encoding();
        let mut head = BytesMut::new();
        BiStreamType::Subscribe
            .encode(&mut head, enc)
            .map_err(|e| SessionError::Unexpected(e.to_string()))?;
        head.extend_from_slice(&encode(
            &lite::Subscribe {
                subscribe_id: id,
                broadcast: path.clone(),
                track: track.clone(),
                priority,
            },
            enc,
        )?);
        send.write_chunk(head.freeze())
            .await
            .map_err(|e| SessionError::Unexpected(e.to_string()))?;
        let mut reader = ControlReader::response(self.inner.version, BiStreamType::Subscribe);
        tracing::debug!(id, broadcast = %path, track = %track, "lite SUBSCRIBE sent");
        let max = self.inner.conn.limits().lite_max_message;
        let reply = read_message(&mut recv, &mut reader, max).await;
        tracing::debug!(id, ?reply, "lite SUBSCRIBE answered");
        match reply {
            Ok(Some(LiteMessage::SubscribeOk(_))) => {}
            Ok(other) => {
                return Err(SessionError::Rejected {
                    kind: MessageType::SubscribeError,
                    code: SubscribeErrorCode::TrackDoesNotExist.code(),
                    reason: format!("subscribe stream ended instead of SUBSCRIBE_OK ({other:?})"),
                })
            }
            Err(e) => {
                return Err(SessionError::Rejected {
                    kind: MessageType::SubscribeError,
                    code: SubscribeErrorCode::TrackDoesNotExist.code(),
                    reason: format!("subscription refused: {e}"),
                })
            }
        }
        registered.keep();
        // The subscription lives as long as its stream; its end ends the track.
        let inner = self.inner.clone();
        let track = producer.clone();
        let (cancel_tx, mut cancel_rx) = watch::channel(false);
        let (over_tx, over_rx) = watch::channel(());
        tokio::spawn(async move {
            let _over = over_tx;
            tokio::select! {
                _ = async {
                    let max = inner.conn.limits().lite_max_message;
                    while let Ok(Some(_)) = read_message(&mut recv, &mut reader, max).await {}
                } => {}
                _ = cancel_rx.wait_for(|c| *c) => {
                    let _ = send.reset(lite::reset::to_code(lite::reset::moq_net_0_3::CANCEL));
                    recv.stop(lite::reset::to_code(lite::reset::moq_net_0_3::CANCEL));
                }
            }
            inner
                .subs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            if owned {
                track.finish(TrackEnd {
                    status: PublishDoneCode::TrackEnded,
                    reason: "subscribe stream closed".into(),
                });
            }
        });
        Ok(LiteSubscription {
            track: producer,
            cancel: cancel_tx,
            over: over_rx,
        })
    }

    /// Asks the peer for broadcasts under `prefix`: ANNOUNCE_INIT then ANNOUNCE updates arrive
    /// as `(path, active)` on the returned channel until the stream ends.
    pub async fn announce_please(
        &self,
        prefix: &Blob,
    ) -> Result<mpsc::Receiver<(Blob, bool)>, SessionError> {
        let (mut send, mut recv) = self.inner.conn.open_bi().await?;
        let enc = self.inner.encoding();
        let mut head = BytesMut::new();
        BiStreamType::Announce
            .encode(&mut head, enc)
            .map_err(|e| SessionError::Unexpected(e.to_string()))?;
        head.extend_from_slice(&encode(
            &lite::AnnouncePlease {
                prefix: prefix.clone(),
            },
            enc,
        )?);
        send.write_chunk(head.freeze())
            .await
            .map_err(|e| SessionError::Unexpected(e.to_string()))?;
        let (tx, rx) = mpsc::channel(64);
        let prefix = prefix.clone();
        let version = self.inner.version;
        let limits = self.inner.conn.limits();
        tokio::spawn(async move {
            let mut reader = ControlReader::response(version, BiStreamType::Announce);
            loop {
                // ANNOUNCE_INIT lists every matching broadcast: it may be larger than the rest.
                let max = match reader.messages_read() {
                    0 => limits.lite_max_announce_init,
                    _ => limits.lite_max_message,
                };
                let msg = match read_message_max(&mut recv, &mut reader, max).await {
                    Ok(Some(msg)) => msg,
                    Err(ReadError::TooLarge(max)) => {
                        tracing::info!(max, "lite announce message too large: stream refused");
                        return refuse_stream::<C>(&mut send, &mut recv, LITE_STOP_OVER_LIMIT);
                    }
                    _ => return,
                };
                if let LiteMessage::AnnounceInit(init) = &msg {
                    // lite-02 ANNOUNCE_PLEASE: "reasonable limits on the number of matching
                    // broadcasts"; over ours the transaction ends, the session lives.
                    if init.suffixes.len() > limits.lite_max_announce_paths {
                        tracing::info!(
                            paths = init.suffixes.len(),
                            max = limits.lite_max_announce_paths,
                            "lite ANNOUNCE_INIT carries too many paths: stream refused"
                        );
                        return refuse_stream::<C>(&mut send, &mut recv, LITE_STOP_OVER_LIMIT);
                    }
                }
                let updates: Vec<(Blob, bool)> = match msg {
                    LiteMessage::AnnounceInit(init) => init
                        .suffixes
                        .iter()
                        .map(|s| (lite::join_path(&prefix, s), true))
                        .collect(),
                    LiteMessage::Announce(a) => vec![(
                        lite::join_path(&prefix, &a.suffix),
                        a.status == AnnounceStatus::Active,
                    )],
                    _ => Vec::new(),
                };
                for u in updates {
                    if tx.send(u).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }
}

/// A lite subscription; dropping it cancels the Subscribe stream.
pub struct LiteSubscription {
    track: TrackProducer,
    cancel: watch::Sender<bool>,
    over: watch::Receiver<()>,
}

impl LiteSubscription {
    /// The track the groups are written into.
    pub fn track(&self) -> &TrackProducer {
        &self.track
    }

    /// Resolves when the subscribe stream has closed; independent of `self`.
    pub fn ended(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.over.clone();
        async move { while rx.changed().await.is_ok() {} }
    }
}

impl Drop for LiteSubscription {
    fn drop(&mut self) {
        let _ = self.cancel.send(true);
    }
}

/// Keeps the session stream open and ends the session when it closes.
async fn session_stream<C: Connection>(
    inner: Arc<Inner<C>>,
    _send: C::Send,
    mut recv: C::Recv,
    leftover: Bytes,
) {
    let mut reader = ControlReader::request_after_type(inner.version, BiStreamType::Session);
    if inner.role == Role::Client {
        reader = ControlReader::response(inner.version, BiStreamType::Session);
    }
    reader.push(leftover);
    let max = inner.conn.limits().lite_max_message;
    loop {
        match read_message(&mut recv, &mut reader, max).await {
            Ok(Some(LiteMessage::SessionUpdate(u))) => {
                tracing::debug!(bitrate = u.bitrate, "SESSION_UPDATE");
            }
            Ok(Some(other)) => tracing::debug!(?other, "session stream message ignored"),
            Ok(None) => {
                // The session is over (moq-lite-02 "Handshake": "active until either endpoint closes or
                // resets the Session Stream"), so is the connection: left open, it and every
                // task waiting on it stay until the peer closes it, which it may never do.
                inner.conn.close(0, "session stream finished");
                inner.close(0, "session stream finished", true);
                return;
            }
            Err(e) => {
                inner.close(SessionErrorCode::ProtocolViolation.code(), &e, false);
                return;
            }
        }
    }
}

/// Accepts the peer's Announce and Subscribe streams. Each must send its first message within
/// the header deadline and at most `lite_max_message` bytes long, or it is refused (reset and
/// STOP_SENDING) while the session goes on; a malformed one closes the session.
async fn accept_bi<C: Connection>(inner: Arc<Inner<C>>, events: mpsc::Sender<LiteEvent<C>>) {
    let limits = inner.conn.limits();
    while let Ok((mut send, mut recv)) = inner.conn.accept_bi().await {
        let inner = inner.clone();
        let events = events.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            let mut reader = ControlReader::accept(inner.version);
            let first = tokio::time::timeout(
                limits.header_deadline,
                read_message_max(&mut recv, &mut reader, limits.lite_max_message),
            )
            .await;
            let first = match first {
                Ok(Ok(Some(m))) => m,
                Ok(Ok(None)) | Ok(Err(ReadError::Stream(_))) => return,
                Err(_) => {
                    tracing::debug!("lite stream sent no request in time: refused");
                    return refuse_stream::<C>(&mut send, &mut recv, LITE_STOP_TIMEOUT);
                }
                Ok(Err(ReadError::TooLarge(max))) => {
                    tracing::info!(max, "lite request larger than the limit: stream refused");
                    return refuse_stream::<C>(&mut send, &mut recv, LITE_STOP_OVER_LIMIT);
                }
                Ok(Err(e)) => {
                    inner.close(
                        SessionErrorCode::ProtocolViolation.code(),
                        &e.to_string(),
                        false,
                    );
                    return;
                }
            };
            let ev = match first {
                LiteMessage::Subscribe(s) => LiteEvent::Subscribe(LiteSubscribeRequest::new(
                    inner.clone(),
                    s,
                    send,
                    recv,
                    reader,
                )),
                LiteMessage::AnnouncePlease(a) => LiteEvent::AnnouncePlease(
                    LiteAnnounceRequest::new(inner.clone(), a.prefix, send, recv),
                ),
                other => {
                    tracing::debug!(?other, "unexpected first message on a lite stream");
                    return;
                }
            };
            let _ = events.send(ev).await;
        });
    }
}

/// Accepts Group streams and writes their frames into the subscription's track; the session's
/// streams share one partial-frame budget.
async fn accept_uni<C: Connection>(inner: Arc<Inner<C>>) {
    let limits = inner.conn.limits();
    let budget = ReceiveBudget::new(limits.partial_object_bytes);
    while let Ok(recv) = inner.conn.accept_uni().await {
        let share = BudgetShare::new(budget.clone());
        tokio::spawn(read_group(inner.clone(), recv, limits.clone(), share));
    }
}

/// What happened to a Group stream's next bytes.
enum GroupRead {
    /// More bytes were buffered.
    More,
    /// The stream ended (FIN, reset, or refused here); the producer is done.
    Over,
}

/// Reads the next chunk of a Group stream within the budget, ending the subgroup when the stream
/// ends.
async fn next_group_chunk<R: RecvStream>(
    recv: &mut R,
    reader: &mut GroupReader,
    share: &mut BudgetShare,
    producer: &mut Option<SubgroupProducer>,
) -> GroupRead {
    match recv.read_chunk(64 * 1024).await {
        Ok(Some(c)) => {
            if !share.hold(reader.buffered() + c.len()) {
                tracing::info!(
                    buffered = reader.buffered(),
                    "session partial-frame budget exceeded: group stream stopped"
                );
                recv.stop(LITE_STOP_OVER_LIMIT);
                share.hold(0);
                if let Some(p) = producer.take() {
                    p.reset(LITE_STOP_OVER_LIMIT);
                }
                return GroupRead::Over;
            }
            reader.push(c);
            GroupRead::More
        }
        Ok(None) => {
            if let Some(p) = producer.take() {
                p.finish();
            }
            GroupRead::Over
        }
        Err(StreamError::Reset(code)) => {
            if let Some(p) = producer.take() {
                p.reset(code);
            }
            GroupRead::Over
        }
        Err(_) => GroupRead::Over,
    }
}

async fn read_group<C: Connection>(
    inner: Arc<Inner<C>>,
    mut recv: C::Recv,
    limits: Arc<ConnectionLimits>,
    mut share: BudgetShare,
) {
    let mut reader = GroupReader::with_max_frame(inner.version, limits.max_object_size);
    let mut producer: Option<SubgroupProducer> = None;
    let mut next_id = 0u64;
    // The stream type and GROUP header must arrive within the deadline.
    let header_by = tokio::time::Instant::now() + limits.header_deadline;
    loop {
        let awaiting_header = reader.group().is_none();
        let read = next_group_chunk(&mut recv, &mut reader, &mut share, &mut producer);
        let read = if awaiting_header {
            match tokio::time::timeout_at(header_by, read).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::debug!("lite group stream sent no GROUP in time: stopped");
                    return recv.stop(LITE_STOP_TIMEOUT);
                }
            }
        } else {
            read.await
        };
        if let GroupRead::Over = read {
            return;
        }
        // The reader takes the stream type (0x00, Group) first.
        loop {
            let event = reader.next_event();
            share.hold(reader.buffered());
            match event {
                Ok(Some(GroupEvent::Group(g))) => {
                    tracing::debug!(id = g.subscribe_id, sequence = g.sequence, "lite GROUP");
                    let track = inner
                        .subs
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&g.subscribe_id)
                        .cloned();
                    let Some(track) = track else {
                        recv.stop(lite::reset::to_code(lite::reset::moq_net_0_3::CANCEL));
                        return;
                    };
                    // A group stream that ends without FIN (a decode error, a lost
                    // connection) may have carried part of the group: it ends reset, never
                    // finished (§10.4.2).
                    let info = SubgroupInfo {
                        group: g.sequence,
                        subgroup: 0,
                        priority: 0,
                        mode: SubgroupIdMode::Zero,
                        extensions: false,
                        end_of_group: true,
                    };
                    producer = Some(
                        track
                            .join_subgroup(info)
                            .reset_on_drop(moqlink_model::data::reset_code::CANCELLED),
                    );
                }
                Ok(Some(GroupEvent::Frame(f))) => {
                    if let Some(p) = producer.as_mut() {
                        // Small payloads leave the receive chunk they came in (as draft-14's).
                        let payload = crate::data::compact(f.payload.0);
                        let _ = p.write(crate::track::Object::new(next_id, payload));
                        next_id += 1;
                    }
                }
                Ok(None) => break,
                Err(e) if e.rule() == moqlink_model::Rule::ObjectTooLarge => {
                    // A local limit: cancel this stream, the session lives.
                    tracing::info!(error = %e, "lite frame over the size limit: stream stopped");
                    recv.stop(LITE_STOP_OVER_LIMIT);
                    if let Some(p) = producer.take() {
                        p.reset(LITE_STOP_OVER_LIMIT);
                    }
                    return;
                }
                Err(e) => {
                    inner.close(e.code().code(), &e.to_string(), false);
                    return;
                }
            }
        }
    }
}

/// A subscription's entry in the session's routing table, removed when dropped unless kept.
struct SubRegistration<'a, C: Connection> {
    inner: &'a Arc<Inner<C>>,
    id: u64,
    kept: bool,
}

impl<'a, C: Connection> SubRegistration<'a, C> {
    fn new(inner: &'a Arc<Inner<C>>, id: u64, producer: TrackProducer) -> Self {
        inner
            .subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, producer);
        SubRegistration {
            inner,
            id,
            kept: false,
        }
    }

    /// The subscription was accepted: its task removes the entry when it ends.
    fn keep(mut self) {
        self.kept = true;
    }
}

impl<C: Connection> Drop for SubRegistration<'_, C> {
    fn drop(&mut self) {
        if !self.kept {
            self.inner
                .subs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_namespaces_map_both_ways() {
        let ns = TrackNamespace::from_strs(&["demo", "clock"]);
        assert_eq!(path_of(&ns), Blob::from("demo/clock"));
        assert_eq!(namespace_of(b"/demo//clock/"), ns);
        assert_eq!(namespace_of(b""), TrackNamespace::default());
    }
}
