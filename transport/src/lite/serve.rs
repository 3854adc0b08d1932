//! The publisher side of a lite session: answering SUBSCRIBE from a track (one Group stream per
//! group, frames from subgroup objects) and ANNOUNCE_PLEASE with ANNOUNCE_INIT / ANNOUNCE.

use super::{encode, namespace_of, read_message, Inner};
use crate::connection::{Connection, RecvStream, SendStream};
use crate::data::{stream_priority, Backlog, SendTotals, Ticket};
use crate::session::SessionError;
use crate::track::{SubgroupConsumer, SubgroupEnd, TrackItem, TrackName, TrackProducer};
use bytes::{Bytes, BytesMut};
use moqlink_model::lite::{self, AnnounceStatus, ControlReader, LiteMessage, UniStreamType};
use moqlink_model::{Blob, GroupOrder, Location};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// A SUBSCRIBE the peer sent on its own Subscribe stream.
pub struct LiteSubscribeRequest<C: Connection> {
    inner: Arc<Inner<C>>,
    /// The SUBSCRIBE.
    pub subscribe: lite::Subscribe,
    send: C::Send,
    recv: C::Recv,
    reader: ControlReader,
}

impl<C: Connection> LiteSubscribeRequest<C> {
    pub(crate) fn new(
        inner: Arc<Inner<C>>,
        subscribe: lite::Subscribe,
        send: C::Send,
        recv: C::Recv,
        reader: ControlReader,
    ) -> Self {
        LiteSubscribeRequest {
            inner,
            subscribe,
            send,
            recv,
            reader,
        }
    }

    /// The requested track as a full track name.
    pub fn name(&self) -> TrackName {
        TrackName {
            namespace: namespace_of(&self.subscribe.broadcast),
            name: self.subscribe.track.clone(),
        }
    }

    /// Refuses the subscription: the Subscribe stream is reset.
    pub fn reject(mut self, reason: &str) {
        tracing::debug!(broadcast = %self.subscribe.broadcast, track = %self.subscribe.track, reason, "lite SUBSCRIBE refused");
        let code = lite::reset::to_code(lite::reset::moq_net_0_3::CANCEL);
        super::refuse_stream::<C>(&mut self.send, &mut self.recv, code);
    }

    /// Answers SUBSCRIBE_OK and sends `track` from its latest group on, one Group stream per
    /// group, until the track ends (FIN) or the subscriber cancels. Returns the sending task.
    pub async fn serve(
        mut self,
        track: &TrackProducer,
    ) -> Result<tokio::task::JoinHandle<()>, SessionError> {
        let enc = self.inner.encoding();
        let ok = lite::SubscribeOk::for_version(self.inner.version, self.subscribe.priority);
        self.send
            .write_chunk(encode(&ok, enc)?)
            .await
            .map_err(|e| SessionError::Unexpected(e.to_string()))?;
        let start = track.status().largest.map_or(0, |l| l.group);
        let consumer = track.consume(Location::new(start, 0), None);
        Ok(tokio::spawn(send_track(self, consumer)))
    }
}

impl<C: Connection> super::LiteSession<C> {
    /// What this session's served subscriptions hold now for their subscribers (frame bytes
    /// not yet handed to the transport, group streams open or opening), bounded per
    /// subscription by `SessionConfig::send_limits`.
    pub fn sending(&self) -> &SendTotals {
        &self.inner.sending
    }
}

/// Group IDs a lite subscription remembers having started (to send each group once).
const SEEN_GROUPS: usize = 1024;

/// Sends a lite subscription's groups until the track ends or the subscriber cancels, within
/// the session's [`SendLimits`](crate::data::SendLimits): a subscriber that stops reading loses
/// whole old groups (their streams reset with moq-net's OLD code), and cancelling never waits
/// for a stalled stream.
async fn send_track<C: Connection>(
    mut req: LiteSubscribeRequest<C>,
    mut consumer: crate::track::TrackConsumer,
) {
    let mut groups = JoinSet::new();
    let mut seen = BTreeSet::new();
    let mut forgotten: Option<u64> = None;
    let id = req.subscribe.subscribe_id;
    let priority = req.subscribe.priority;
    let max = req.inner.conn.limits().lite_max_message;
    let limits = req.inner.send_limits;
    let backlog = Backlog::new(
        limits,
        lite::reset::to_code(lite::reset::moq_net_0_3::OLD),
        req.inner.sending.clone(),
    );
    let mut open = true;
    let mut drain: Option<Instant> = None;
    let mut drained = false;
    loop {
        if !open && drain.is_none() {
            drain = Some(Instant::now() + limits.drain_timeout);
        }
        tokio::select! {
            item = consumer.next(), if open => match item {
                Some(TrackItem::Subgroup(sc)) => {
                    // lite carries one stream per group: the group's first subgroup.
                    let group = sc.info().group;
                    if forgotten.is_none_or(|f| group > f) && seen.insert(group) {
                        // Bounded memory of the groups already started: the oldest are
                        // forgotten, and a subgroup that old is not sent any more.
                        if seen.len() > SEEN_GROUPS {
                            forgotten = seen.pop_first().max(forgotten);
                        }
                        if let Some(ticket) = backlog.admit(group) {
                            groups.spawn(send_group(req.inner.clone(), id, priority, sc, ticket));
                        }
                    }
                }
                Some(TrackItem::Datagram { .. }) => {}
                None => open = false,
            },
            msg = read_message(&mut req.recv, &mut req.reader, max) => match msg {
                Ok(Some(LiteMessage::SubscribeUpdate(u))) => {
                    tracing::debug!(priority = u.priority, "lite SUBSCRIBE_UPDATE");
                }
                Ok(Some(_)) => {}
                _ => {
                    // The subscriber closed or reset its side: every group task resets its
                    // stream and ends at once; nothing waits for a stalled one.
                    backlog.stop(lite::reset::to_code(lite::reset::moq_net_0_3::CANCEL));
                    groups.detach_all();
                    let _ = req.send.finish();
                    return;
                }
            },
            Some(_) = groups.join_next(), if !groups.is_empty() => {}
            // The track ended but group streams are still stuck: reset them.
            _ = tokio::time::sleep_until(drain.unwrap_or_else(Instant::now)), if drain.is_some() && !drained => {
                backlog.stop(lite::reset::to_code(lite::reset::moq_net_0_3::DELIVERY_TIMEOUT));
                drained = true;
            }
        }
        if !open && groups.is_empty() {
            break;
        }
    }
    let _ = req.send.finish();
}

/// Writes `chunk`, unless the ticket is cut first: then resets the stream. Whether to go on.
async fn write_or_cut<S: SendStream>(stream: &mut S, chunk: Bytes, ticket: &Ticket) -> bool {
    let cut = tokio::select! {
        r = stream.write_chunk(chunk) => return r.is_ok(),
        code = ticket.cancelled() => code,
    };
    let _ = stream.reset(cut);
    false
}

async fn send_group<C: Connection>(
    inner: Arc<Inner<C>>,
    id: u64,
    priority: u8,
    mut sc: SubgroupConsumer,
    ticket: Ticket,
) {
    let group = sc.info().group;
    let enc = inner.encoding();
    let mut stream = tokio::select! {
        s = inner.conn.open_uni() => match s {
            Ok(s) => s,
            Err(_) => return,
        },
        _ = ticket.cancelled() => return,
    };
    // lite: higher subscriber priority first; newer groups first.
    stream.set_priority(stream_priority(
        255 - priority,
        0,
        GroupOrder::Descending,
        group,
    ));
    let mut head = BytesMut::new();
    let g = lite::Group {
        subscribe_id: id,
        sequence: group,
    };
    let encoded = UniStreamType::Group
        .encode(&mut head, enc)
        .ok()
        .and_then(|_| encode(&g, enc).ok());
    let Some(g) = encoded else {
        let _ = stream.reset(lite::reset::to_code(lite::reset::moq_net_0_3::INTERNAL));
        return;
    };
    head.extend_from_slice(&g);
    if !write_or_cut(&mut stream, head.freeze(), &ticket).await {
        return;
    }
    loop {
        let next = tokio::select! {
            r = sc.next_timed() => r,
            code = ticket.cancelled() => {
                let _ = stream.reset(code);
                return;
            }
        };
        match next {
            Ok(_) if sc.skipped() > 0 => {
                // Frames carry no object IDs: with objects dropped from the group's front
                // before this subscriber got them, the rest would be misnumbered. Reset, as for
                // a group evicted whole.
                let _ = stream.reset(lite::reset::to_code(lite::reset::moq_net_0_3::CANCEL));
                return;
            }
            Ok((o, arrived)) => {
                if o.status != moqlink_model::data::ObjectStatus::Normal {
                    continue;
                }
                let _hold = ticket.hold(o.payload.len());
                let mut size = BytesMut::new();
                if lite::Frame::encode_size(o.payload.len(), &mut size, enc).is_err() {
                    let _ = stream.reset(lite::reset::to_code(lite::reset::moq_net_0_3::INTERNAL));
                    return;
                }
                if !write_or_cut(&mut stream, size.freeze(), &ticket).await {
                    return;
                }
                let len = o.payload.len();
                if !o.payload.is_empty() && !write_or_cut(&mut stream, o.payload, &ticket).await {
                    return;
                }
                if let Some(s) = sc.stats() {
                    s.object_out(len, Some(arrived.elapsed()));
                }
            }
            Err(SubgroupEnd::Finished) => {
                let _ = stream.finish();
                return;
            }
            Err(_) => {
                let _ = stream.reset(lite::reset::to_code(lite::reset::moq_net_0_3::CANCEL));
                return;
            }
        }
    }
}

/// An ANNOUNCE_PLEASE the peer sent on its own Announce stream.
pub struct LiteAnnounceRequest<C: Connection> {
    inner: Arc<Inner<C>>,
    /// The requested path prefix.
    pub prefix: Blob,
    send: C::Send,
    recv: C::Recv,
}

impl<C: Connection> LiteAnnounceRequest<C> {
    pub(crate) fn new(inner: Arc<Inner<C>>, prefix: Blob, send: C::Send, recv: C::Recv) -> Self {
        LiteAnnounceRequest {
            inner,
            prefix,
            send,
            recv,
        }
    }

    /// Refuses the request: the Announce stream is reset (moq-lite has no error message).
    pub fn reject(mut self, reason: &str) {
        tracing::debug!(prefix = %self.prefix, reason, "lite ANNOUNCE_PLEASE refused");
        let code = lite::reset::to_code(lite::reset::moq_net_0_3::CANCEL);
        super::refuse_stream::<C>(&mut self.send, &mut self.recv, code);
    }

    /// Answers ANNOUNCE_INIT with the active broadcast `paths` under the prefix (others are
    /// left out); later changes go through the returned announcer.
    pub async fn respond(mut self, paths: &[Blob]) -> Result<LiteAnnouncer<C>, SessionError> {
        let mut active = HashSet::new();
        let mut suffixes = Vec::new();
        for p in paths {
            if let Some(s) = lite::strip_path_prefix(p, &self.prefix) {
                if active.insert(s.clone()) {
                    suffixes.push(s);
                }
            }
        }
        let init = encode(&lite::AnnounceInit { suffixes }, self.inner.encoding())?;
        self.send
            .write_chunk(init)
            .await
            .map_err(|e| SessionError::Unexpected(e.to_string()))?;
        Ok(LiteAnnouncer {
            inner: self.inner,
            prefix: self.prefix,
            send: self.send,
            recv: self.recv,
            active,
        })
    }
}

/// Sends ANNOUNCE updates on an Announce stream.
pub struct LiteAnnouncer<C: Connection> {
    inner: Arc<Inner<C>>,
    prefix: Blob,
    send: C::Send,
    recv: C::Recv,
    active: HashSet<Blob>,
}

impl<C: Connection> LiteAnnouncer<C> {
    /// Announces that `path` became active or ended (only changes are sent, and only for paths
    /// under the prefix).
    pub async fn announce(&mut self, path: &Blob, active: bool) -> Result<(), SessionError> {
        let Some(suffix) = lite::strip_path_prefix(path, &self.prefix) else {
            return Ok(());
        };
        let changed = if active {
            self.active.insert(suffix.clone())
        } else {
            self.active.remove(&suffix)
        };
        if !changed {
            return Ok(());
        }
        let status = if active {
            AnnounceStatus::Active
        } else {
            AnnounceStatus::Ended
        };
        let msg = encode(&lite::Announce { status, suffix }, self.inner.encoding())?;
        self.send
            .write_chunk(msg)
            .await
            .map_err(|e| SessionError::Unexpected(e.to_string()))
    }

    /// Resolves when the peer closes its side of the Announce stream.
    pub async fn closed(&mut self) {
        while let Ok(Some(_)) = self.recv.read_chunk(1024).await {}
    }
}

/// Answers a lite peer's requests from one track until the session ends: ANNOUNCE_PLEASE with
/// the track's broadcast, SUBSCRIBE to the track served from it, any other track refused.
/// `announced`, if given, fires once the first ANNOUNCE_PLEASE has been answered.
pub async fn serve_track<C: Connection>(
    mut events: tokio::sync::mpsc::Receiver<super::LiteEvent<C>>,
    track: TrackProducer,
    announced: Option<tokio::sync::oneshot::Sender<()>>,
) {
    let path = super::path_of(&track.name().namespace);
    let mut announced = announced;
    while let Some(ev) = events.recv().await {
        match ev {
            super::LiteEvent::AnnouncePlease(req) => {
                let path = path.clone();
                let first = announced.take();
                tokio::spawn(async move {
                    if let Ok(mut a) = req.respond(&[path]).await {
                        if let Some(tx) = first {
                            let _ = tx.send(());
                        }
                        a.closed().await;
                    }
                });
            }
            super::LiteEvent::Subscribe(req) if req.name() == *track.name() => {
                let track = track.clone();
                tokio::spawn(async move {
                    if let Ok(task) = req.serve(&track).await {
                        let _ = task.await;
                    }
                });
            }
            super::LiteEvent::Subscribe(req) => req.reject("no such track"),
        }
    }
}
