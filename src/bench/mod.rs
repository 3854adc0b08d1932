//! The load tool behind `moqlink bench`: one publisher and N subscriber sessions (one connection
//! each) on the same track of any draft-14 relay, measuring delivery, publish-to-deliver latency
//! (the send time travels in each payload's first 8 bytes) and, given the relay's PID, its CPU
//! time per delivered object and its resident memory. Two modes for soak testing: churn
//! (sessions that connect, subscribe, receive and leave, some vanishing without a close) and
//! stall (subscribers that keep their connection but never read).

pub mod churn;
pub mod conn;
pub mod load;
pub mod stats;

use bytes::Bytes;
use conn::Dialer;
use moqlink_model::codes::SubscribeErrorCode;
use moqlink_model::control::{ControlMessage, RequestRef};
use moqlink_model::data::{ObjectStatus, SubgroupIdMode};
use moqlink_model::params::VersionParameters;
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::lite::{serve_track, LiteSession};
use moqlink_transport::session::{IncomingEvent, IncomingRequest, Session};
use moqlink_transport::track::{
    Object, SubgroupEnd, SubgroupInfo, TrackConfig, TrackConsumer, TrackItem, TrackName,
    TrackProducer,
};
use stats::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// What every bench run publishes and where.
#[derive(Debug, Clone)]
pub struct Traffic {
    /// The track published and subscribed.
    pub track: TrackName,
    /// Objects per second.
    pub rate: f64,
    /// Bytes per object (at least 8: the send time).
    pub size: usize,
    /// Objects per group (each group is one subgroup stream).
    pub group_len: u64,
}

/// Counters shared by the publisher and every reader.
#[derive(Default)]
pub struct Meter {
    /// Objects published.
    pub sent: AtomicU64,
    /// Objects received by every reader together.
    pub received: AtomicU64,
    /// Measuring window start (µs on [`stats::now_us`]'s clock); objects stamped before it are
    /// not counted.
    window_start: AtomicU64,
    /// Measuring window end (exclusive).
    window_end: AtomicU64,
    /// Objects published inside the window.
    pub sent_in_window: AtomicU64,
    /// Objects received, stamped inside the window.
    pub received_in_window: AtomicU64,
    /// Latency of objects stamped inside the window.
    pub latency: Histogram,
}

impl Meter {
    /// A meter whose window has not opened.
    pub fn new() -> Arc<Self> {
        let m = Meter::default();
        m.window_start.store(u64::MAX, Ordering::Relaxed);
        m.window_end.store(u64::MAX, Ordering::Relaxed);
        Arc::new(m)
    }

    /// Opens the measuring window now.
    pub fn open_window(&self) {
        self.window_start.store(stats::now_us(), Ordering::Relaxed);
    }

    /// Closes the measuring window now (objects stamped before still count when they arrive).
    pub fn close_window(&self) {
        self.window_end.store(stats::now_us(), Ordering::Relaxed);
    }

    fn in_window(&self, stamp: u64) -> bool {
        stamp >= self.window_start.load(Ordering::Relaxed)
            && stamp < self.window_end.load(Ordering::Relaxed)
    }

    /// Notes one published object stamped `stamp`.
    fn on_sent(&self, stamp: u64) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        if self.in_window(stamp) {
            self.sent_in_window.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Notes one received payload.
    fn on_received(&self, payload: &[u8]) {
        self.received.fetch_add(1, Ordering::Relaxed);
        if let Some(stamp) = stats::stamp_of(payload) {
            if self.in_window(stamp) {
                self.received_in_window.fetch_add(1, Ordering::Relaxed);
                self.latency.record(stats::now_us().saturating_sub(stamp));
            }
        }
    }
}

/// The publisher: its session (answering SUBSCRIBEs from the track) and the task writing
/// objects at the configured rate.
pub struct Publisher {
    session: PublisherSession,
    track: TrackProducer,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The publisher's session, of the profile the bench speaks.
enum PublisherSession {
    Ietf(Session<AnyConnection>),
    Lite(LiteSession<AnyConnection>),
}

impl Publisher {
    /// Connects, publishes the namespace (draft-14; moq-lite announces the broadcast when the
    /// relay asks), and starts writing objects.
    pub async fn start(
        dialer: &Dialer,
        traffic: &Traffic,
        meter: Arc<Meter>,
    ) -> anyhow::Result<Self> {
        let track = TrackProducer::new(
            traffic.track.clone(),
            TrackConfig {
                max_groups: 4,
                ..Default::default()
            },
        );
        if dialer.is_lite() {
            let (session, events) = dialer.lite_session().await?;
            let (announced_tx, announced) = tokio::sync::oneshot::channel();
            let answering = tokio::spawn(serve_track(events, track.clone(), Some(announced_tx)));
            // Subscribers come next: a relay that has not heard the broadcast yet may answer
            // them with nothing (moq-dev's relay does), so wait for its ANNOUNCE_PLEASE to be
            // answered, and a moment for the relay to take the announcement in.
            if tokio::time::timeout(Duration::from_secs(5), announced)
                .await
                .is_err()
            {
                tracing::warn!("the relay did not ask for the broadcast within 5 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let writing = tokio::spawn(write_objects(track.clone(), traffic.clone(), meter));
            return Ok(Publisher {
                session: PublisherSession::Lite(session),
                track,
                tasks: vec![answering, writing],
            });
        }
        let (session, events, _) = dialer.session().await?;
        let answering = tokio::spawn(answer(session.clone(), events, track.clone()));
        let ns = session
            .publish_namespace(traffic.track.namespace.clone(), VersionParameters::new())
            .await
            .map_err(|e| anyhow::anyhow!("PUBLISH_NAMESPACE: {e}"))?;
        // The namespace stays published as long as the publisher lives.
        let hold = tokio::spawn(async move {
            let _ns = ns;
            std::future::pending::<()>().await
        });
        let writing = tokio::spawn(write_objects(track.clone(), traffic.clone(), meter));
        Ok(Publisher {
            session: PublisherSession::Ietf(session),
            track,
            tasks: vec![answering, hold, writing],
        })
    }

    /// Stops writing and closes the session.
    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        drop(self.track);
        match self.session {
            PublisherSession::Ietf(s) => {
                s.close_gracefully(
                    moqlink_model::SessionErrorCode::NoError,
                    "",
                    Duration::from_millis(500),
                )
                .await
            }
            PublisherSession::Lite(s) => s.close(moqlink_model::SessionErrorCode::NoError, ""),
        }
    }
}

/// Writes stamped objects at `traffic.rate`, a new group every `group_len` objects.
async fn write_objects(track: TrackProducer, traffic: Traffic, meter: Arc<Meter>) {
    let period = Duration::from_secs_f64(1.0 / traffic.rate.max(0.001));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut subgroup = None;
    let (mut group, mut object) = (0u64, 0u64);
    loop {
        tick.tick().await;
        let sg = subgroup.get_or_insert_with(|| {
            track.create_subgroup(SubgroupInfo {
                group,
                subgroup: 0,
                priority: 128,
                mode: SubgroupIdMode::Zero,
                extensions: false,
                end_of_group: false,
            })
        });
        let payload: Bytes = stats::stamped(traffic.size);
        let stamp = stats::stamp_of(&payload).unwrap_or(0);
        if sg.write(Object::new(object, payload)).is_err() {
            return;
        }
        meter.on_sent(stamp);
        object += 1;
        if object == traffic.group_len {
            if let Some(sg) = subgroup.take() {
                sg.finish();
            }
            (group, object) = (group + 1, 0);
        }
    }
}

/// Answers the relay's requests: SUBSCRIBE for the track from it, SUBSCRIBE_NAMESPACE and
/// PUBLISH_NAMESPACE acknowledged, anything else refused.
async fn answer(
    session: Session<AnyConnection>,
    mut events: mpsc::Receiver<IncomingEvent>,
    track: TrackProducer,
) {
    while let Some(ev) = events.recv().await {
        let IncomingEvent::Request(req) = ev else {
            continue;
        };
        let session = session.clone();
        let track = track.clone();
        tokio::spawn(async move {
            let named = TrackName::requested_by(&req.message);
            let ours = named.as_ref() == Some(track.name());
            let _ = match &req.message {
                ControlMessage::Subscribe(_) if ours => {
                    session.serve_subscribe(*req, &track).await.map(|_| ())
                }
                ControlMessage::Subscribe(_) => {
                    req.responder
                        .reject(SubscribeErrorCode::TrackDoesNotExist, "no such track here")
                        .await
                }
                ControlMessage::SubscribeNamespace(s) => {
                    let id = s.request_id;
                    keep_open(
                        *req,
                        ControlMessage::SubscribeNamespaceOk(RequestRef { request_id: id }),
                    )
                    .await
                }
                ControlMessage::PublishNamespace(p) => {
                    let id = p.request_id;
                    keep_open(
                        *req,
                        ControlMessage::PublishNamespaceOk(RequestRef { request_id: id }),
                    )
                    .await
                }
                other => {
                    let what = other.message_type().name();
                    req.responder.not_supported(what).await
                }
            };
        });
    }
}

/// Accepts a request and holds it open until the session ends.
async fn keep_open(
    req: IncomingRequest,
    reply: ControlMessage,
) -> Result<(), moqlink_transport::session::SessionError> {
    let IncomingRequest {
        responder,
        mut followups,
        ..
    } = req;
    responder.accept(reply).await?;
    while followups.next().await.is_some() {}
    Ok(())
}

/// The track settings of a bench subscription: little history, the bench only reads live.
pub fn subscriber_track() -> TrackConfig {
    TrackConfig {
        max_groups: 2,
        ..Default::default()
    }
}

/// Reads every object of `consumer` (subgroups concurrently) into `meter`; returns when the
/// track ends, or after `limit` objects.
pub async fn read(mut consumer: TrackConsumer, meter: Arc<Meter>, limit: Option<u64>) -> u64 {
    let got = Arc::new(AtomicU64::new(0));
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let reached = |got: &AtomicU64| limit.is_some_and(|l| got.load(Ordering::Relaxed) >= l);
    let mut subgroups = JoinSet::new();
    loop {
        let item = tokio::select! {
            item = consumer.next() => item,
            _ = done_rx.recv() => break,
        };
        let Some(item) = item else { break };
        match item {
            TrackItem::Subgroup(mut sc) => {
                let (meter, got, done) = (meter.clone(), got.clone(), done_tx.clone());
                subgroups.spawn(async move {
                    loop {
                        match sc.next().await {
                            Ok(o) if o.status == ObjectStatus::Normal => {
                                meter.on_received(&o.payload);
                                let n = got.fetch_add(1, Ordering::Relaxed) + 1;
                                if limit.is_some_and(|l| n >= l) {
                                    let _ = done.try_send(());
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(SubgroupEnd::Finished) | Err(_) => return,
                        }
                    }
                });
            }
            TrackItem::Datagram { object, .. } => {
                if object.status == ObjectStatus::Normal {
                    meter.on_received(&object.payload);
                    got.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        while subgroups.try_join_next().is_some() {}
        if reached(&got) {
            break;
        }
    }
    subgroups.abort_all();
    got.load(Ordering::Relaxed)
}
