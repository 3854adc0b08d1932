//! A subscription read straight off its data streams and datagrams ([`DirectSub`]), so header
//! types, extension bytes, statuses and arrival order are seen exactly as the relay sent them.

use super::harness::{wait_state, within, Endpoint};
use super::{refused, Env, Verdict};
use bytes::Bytes;
use moqlink_model::control::*;
use moqlink_model::data::{DatagramBody, ObjectStatus};
use moqlink_model::params::VersionParameters;
use moqlink_model::{GroupOrder, Location};
use moqlink_transport::client::AnySession;
use moqlink_transport::data::{IncomingSubgroup, SubgroupEvent};
use moqlink_transport::session::SessionError;
use moqlink_transport::track::TrackName;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One object as a [`DirectSub`] received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    /// Group ID.
    pub group: u64,
    /// Subgroup ID (`None` for a datagram).
    pub subgroup: Option<u64>,
    /// Object ID.
    pub id: u64,
    /// Publisher priority.
    pub priority: u8,
    /// Object status.
    pub status: ObjectStatus,
    /// Extension header bytes as received.
    pub extensions: Bytes,
    /// Payload.
    pub payload: Bytes,
    /// The SUBGROUP_HEADER type of its stream, or the datagram type.
    pub wire_type: u64,
    /// Which stream it came on (0 for datagrams, streams count from 1).
    pub stream: u64,
    /// Arrival order across the subscription.
    pub seq: u64,
}

impl Got {
    /// Its location.
    pub fn location(&self) -> Location {
        Location::new(self.group, self.id)
    }
}

impl std::fmt::Display for Got {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(&self.payload[..self.payload.len().min(24)]);
        let carrier = match self.subgroup {
            Some(s) => format!("subgroup {s} on a 0x{:x} stream", self.wire_type),
            None => format!("datagram 0x{:x}", self.wire_type),
        };
        write!(
            f,
            "object {}.{} ({carrier}, priority {}, {:?}, {} bytes {text:?})",
            self.group,
            self.id,
            self.priority,
            self.status,
            self.payload.len()
        )
    }
}

/// How a subgroup stream of a [`DirectSub`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEnd {
    /// Which stream (counting from 1).
    pub stream: u64,
    /// Its header's group.
    pub group: u64,
    /// Its SUBGROUP_HEADER type.
    pub header_type: u64,
    /// `None` for FIN, else the reset code.
    pub reset: Option<u64>,
}

#[derive(Default)]
struct SubShared {
    got: Mutex<Vec<Got>>,
    ends: Mutex<Vec<StreamEnd>>,
    done: Mutex<Option<PublishDone>>,
    changed: watch::Sender<u64>,
    streams: AtomicU64,
}

/// Arrival order across every [`DirectSub`] of the process, so objects of different
/// subscriptions compare.
static SEQ: AtomicU64 = AtomicU64::new(0);

impl SubShared {
    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// What a [`DirectSub`] asks for.
#[derive(Debug, Clone)]
pub struct SubOpts {
    /// Subscriber priority.
    pub priority: u8,
    /// Group order.
    pub order: GroupOrder,
    /// Forward state.
    pub forward: bool,
    /// Filter.
    pub filter: Filter,
    /// Streams are not read until [`DirectSub::open_gate`] (flow control holds the relay).
    pub paused: bool,
}

impl Default for SubOpts {
    fn default() -> Self {
        SubOpts {
            priority: 128,
            order: GroupOrder::Original,
            forward: true,
            filter: Filter::LargestObject,
            paused: false,
        }
    }
}

impl SubOpts {
    /// Default options with `filter`.
    pub fn filter(filter: Filter) -> Self {
        SubOpts {
            filter,
            ..Default::default()
        }
    }
}

/// A subscription read straight off its data streams and datagrams.
pub struct DirectSub {
    /// The SUBSCRIBE_OK.
    pub ok: SubscribeOk,
    session: AnySession,
    shared: Arc<SubShared>,
    gate: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl DirectSub {
    /// Sends SUBSCRIBE for `name` and waits for SUBSCRIBE_OK.
    pub async fn subscribe(
        session: &AnySession,
        name: &TrackName,
        opts: SubOpts,
    ) -> Result<DirectSub, SessionError> {
        let mut req = session
            .request(|request_id| {
                ControlMessage::Subscribe(Subscribe {
                    request_id,
                    namespace: name.namespace.clone(),
                    name: name.name.clone(),
                    subscriber_priority: opts.priority,
                    group_order: opts.order,
                    forward: opts.forward,
                    filter: opts.filter,
                    parameters: VersionParameters::new(),
                })
            })
            .await?;
        let ok = match req.reply().await? {
            ControlMessage::SubscribeOk(ok) => ok,
            other => {
                return Err(SessionError::Unexpected(format!(
                    "{} in reply to SUBSCRIBE",
                    other.message_type().name()
                )))
            }
        };
        let mut data = session
            .data()
            .register_track(ok.track_alias)
            .map_err(|e| SessionError::Unexpected(e.to_string()))?;
        let shared = Arc::new(SubShared::default());
        let (gate, gate_rx) = watch::channel(!opts.paused);
        let sh = shared.clone();
        let mut followups = req.followups;
        let task = tokio::spawn(async move {
            let mut control_open = true;
            loop {
                tokio::select! {
                    s = data.subgroups.recv() => match s {
                        Some(s) => {
                            let n = sh.streams.fetch_add(1, Ordering::Relaxed) + 1;
                            tokio::spawn(read_stream(s, n, sh.clone(), gate_rx.clone()));
                        }
                        None => break,
                    },
                    Some(d) = data.datagrams.recv() => {
                        let got = Got {
                            group: d.group_id,
                            subgroup: None,
                            id: d.object_id,
                            priority: d.publisher_priority,
                            status: d.status(),
                            extensions: d.extensions.as_ref().map(|e| e.raw().clone()).unwrap_or_default(),
                            payload: match &d.body {
                                DatagramBody::Payload(p) => p.bytes().clone(),
                                DatagramBody::Status(_) => Bytes::new(),
                            },
                            wire_type: d.type_code().unwrap_or_default(),
                            stream: 0,
                            seq: SEQ.fetch_add(1, Ordering::Relaxed),
                        };
                        lock(&sh.got).push(got);
                        sh.bump();
                    }
                    m = followups.next(), if control_open => match m {
                        Some(ControlMessage::PublishDone(d)) => {
                            *lock(&sh.done) = Some(d);
                            sh.bump();
                        }
                        Some(_) => {}
                        None => control_open = false,
                    },
                }
            }
        });
        Ok(DirectSub {
            ok,
            session: session.clone(),
            shared,
            gate,
            task,
        })
    }

    /// The SUBSCRIBE's request ID.
    pub fn request_id(&self) -> u64 {
        self.ok.request_id
    }

    /// The Largest Location in SUBSCRIBE_OK.
    pub fn largest(&self) -> Option<Location> {
        self.ok.largest_location
    }

    /// Starts reading the streams of a paused subscription.
    pub fn open_gate(&self) {
        let _ = self.gate.send(true);
    }

    /// The objects received so far, in arrival order.
    pub fn objects(&self) -> Vec<Got> {
        let mut v = lock(&self.shared.got).clone();
        v.sort_by_key(|g| g.seq);
        v
    }

    /// How the subgroup streams that ended so far ended.
    pub fn ends(&self) -> Vec<StreamEnd> {
        lock(&self.shared.ends).clone()
    }

    /// Subgroup streams opened so far.
    pub fn streams(&self) -> u64 {
        self.shared.streams.load(Ordering::Relaxed)
    }

    /// The PUBLISH_DONE, once it arrived.
    pub fn done(&self) -> Option<PublishDone> {
        lock(&self.shared.done).clone()
    }

    /// Waits until `pred` holds on the objects received, at most `limit`.
    pub async fn wait(&self, limit: Duration, pred: impl Fn(&[Got]) -> bool) -> bool {
        let shared = self.shared.clone();
        wait_state(&self.shared.changed, limit, || pred(&lock(&shared.got))).await
    }

    /// Waits until at least `n` objects arrived, at most `limit`.
    pub async fn wait_count(&self, n: usize, limit: Duration) -> bool {
        self.wait(limit, |g| g.len() >= n).await
    }

    /// Waits for PUBLISH_DONE, at most `limit`.
    pub async fn wait_done(&self, limit: Duration) -> Option<PublishDone> {
        let shared = self.shared.clone();
        wait_state(&self.shared.changed, limit, || lock(&shared.done).is_some()).await;
        self.done()
    }

    /// Waits until nothing new arrived for `quiet` (at most `limit` in all).
    pub async fn settle(&self, quiet: Duration, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut rx = self.shared.changed.subscribe();
        loop {
            rx.borrow_and_update();
            let until = (tokio::time::Instant::now() + quiet).min(deadline);
            match tokio::time::timeout_at(until, rx.changed()).await {
                Ok(Ok(())) if tokio::time::Instant::now() < deadline => continue,
                _ => return,
            }
        }
    }

    /// Sends UNSUBSCRIBE.
    pub async fn unsubscribe(&self) -> Result<(), SessionError> {
        self.session
            .send(ControlMessage::Unsubscribe(RequestRef {
                request_id: self.request_id(),
            }))
            .await
    }

    /// Sends SUBSCRIBE_UPDATE.
    pub async fn update(
        &self,
        start: Location,
        end_group: Option<u64>,
        priority: u8,
        forward: bool,
    ) -> Result<(), SessionError> {
        let sub = self.request_id();
        let _req = self
            .session
            .request(|request_id| {
                ControlMessage::SubscribeUpdate(SubscribeUpdate {
                    request_id,
                    subscription_request_id: sub,
                    start,
                    end_group,
                    subscriber_priority: priority,
                    forward,
                    parameters: VersionParameters::new(),
                })
            })
            .await?;
        Ok(())
    }
}

impl Drop for DirectSub {
    fn drop(&mut self) {
        self.task.abort();
        self.session.data().unregister_track(self.ok.track_alias);
    }
}

async fn read_stream(
    mut s: IncomingSubgroup,
    stream: u64,
    sh: Arc<SubShared>,
    mut gate: watch::Receiver<bool>,
) {
    let _ = gate.wait_for(|open| *open).await;
    let h = s.header;
    let mut first = None;
    loop {
        match s.next().await {
            Some(SubgroupEvent::Begun(_)) => {}
            Some(SubgroupEvent::Object(o)) => {
                let first_id = *first.get_or_insert(o.object_id);
                let got = Got {
                    group: h.group_id,
                    subgroup: h.subgroup_id(Some(first_id)),
                    id: o.object_id,
                    priority: h.publisher_priority,
                    status: o.status,
                    extensions: o.extensions.raw().clone(),
                    payload: o.payload.0,
                    wire_type: h.type_code(),
                    stream,
                    seq: SEQ.fetch_add(1, Ordering::Relaxed),
                };
                lock(&sh.got).push(got);
                sh.bump();
            }
            end => {
                let reset = match end {
                    Some(SubgroupEvent::Reset(code)) => Some(code),
                    Some(SubgroupEvent::Finished) => None,
                    _ => Some(u64::MAX),
                };
                lock(&sh.ends).push(StreamEnd {
                    stream,
                    group: h.group_id,
                    header_type: h.type_code(),
                    reset,
                });
                sh.bump();
                return;
            }
        }
    }
}

/// Subscribes `ep` to `name` through the relay, mapping a refusal to a verdict.
pub async fn subscribe(
    env: &Env,
    ep: &Endpoint,
    name: &TrackName,
    opts: SubOpts,
) -> Result<DirectSub, Verdict> {
    env.step(format!("SUBSCRIBE_OK for {name}"));
    let answer = within(
        Duration::from_secs(4),
        "SUBSCRIBE_OK",
        DirectSub::subscribe(&ep.session, name, opts),
    )
    .await?;
    answer.map_err(|e| {
        refused(
            e,
            "SUBSCRIBE_OK",
            &format!("the relay did not accept the SUBSCRIBE for {name}"),
        )
    })
}
