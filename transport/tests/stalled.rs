//! A subscriber that keeps its connection open but never reads its data streams (issue 10),
//! over real loopback QUIC with a small connection receive window, so that the publisher's
//! streams really block on flow control: the publisher holds bounded memory for it (whole old
//! groups are dropped), a second subscriber of the same track on another session is not slowed,
//! and cancelling the stalled subscription (UNSUBSCRIBE, moq-lite: closing the Subscribe stream)
//! returns at once.
//!
//! Memory is measured independently of the publisher's own accounting: every payload is a
//! `Bytes` whose owner counts itself, so `live` is what is still referenced anywhere (track
//! cache, stream tasks, QUIC send buffers).

use bytes::Bytes;
use moqlink_model::codes::*;
use moqlink_model::{Blob, Version};
use moqlink_transport::client::connect;
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::connection::memory::{pair, MemoryConnection};
use moqlink_transport::connection::stalling::Stalling;
use moqlink_transport::endpoint::{Client, ClientConfig, Server};
use moqlink_transport::lite::{LiteEvent, LiteSession};
use moqlink_transport::session::*;
use moqlink_transport::tls::{ClientTls, ServerIdentity};
use moqlink_transport::track::*;
use moqlink_transport::{Connection, ConnectionError, TransportKind};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const T: Duration = Duration::from_secs(10);
/// What a stalled subscription's cancel may take.
const PROMPT: Duration = Duration::from_secs(2);
/// Each group: one object this large.
const OBJECT: usize = 50 * 1024;
/// Groups published: 20 MB in all.
const GROUPS: u64 = 400;

/// A connection that accepts the peer's unidirectional streams only once its gate opens: a
/// subscriber that stalls for a while, then reads again.
#[derive(Clone)]
struct Gated<C>(C, tokio::sync::watch::Receiver<bool>);

impl<C: Connection> Connection for Gated<C> {
    type Send = C::Send;
    type Recv = C::Recv;

    fn open_bi(
        &self,
    ) -> impl Future<Output = Result<(Self::Send, Self::Recv), ConnectionError>> + Send {
        self.0.open_bi()
    }
    fn accept_bi(
        &self,
    ) -> impl Future<Output = Result<(Self::Send, Self::Recv), ConnectionError>> + Send {
        self.0.accept_bi()
    }
    fn open_uni(&self) -> impl Future<Output = Result<Self::Send, ConnectionError>> + Send {
        self.0.open_uni()
    }
    async fn accept_uni(&self) -> Result<Self::Recv, ConnectionError> {
        let mut gate = self.1.clone();
        let _ = gate.wait_for(|open| *open).await;
        self.0.accept_uni().await
    }
    fn send_datagram(&self, data: Bytes) -> Result<(), ConnectionError> {
        self.0.send_datagram(data)
    }
    fn recv_datagram(&self) -> impl Future<Output = Result<Bytes, ConnectionError>> + Send {
        self.0.recv_datagram()
    }
    fn max_datagram_size(&self) -> Option<usize> {
        self.0.max_datagram_size()
    }
    fn close(&self, code: u64, reason: &str) {
        self.0.close(code, reason)
    }
    fn closed(&self) -> impl Future<Output = ConnectionError> + Send {
        self.0.closed()
    }
    fn kind(&self) -> TransportKind {
        self.0.kind()
    }
    fn peer(&self) -> String {
        self.0.peer()
    }
}

/// A payload owner that counts the bytes alive.
struct Counted {
    live: Arc<AtomicUsize>,
    data: Vec<u8>,
}

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.live.fetch_sub(self.data.len(), Ordering::SeqCst);
    }
}

fn payload(live: &Arc<AtomicUsize>, group: u64) -> Bytes {
    live.fetch_add(OBJECT, Ordering::SeqCst);
    Bytes::from_owner(Counted {
        live: live.clone(),
        data: vec![group as u8; OBJECT],
    })
}

fn name() -> TrackName {
    TrackName::new("stall/test", "video")
}

/// A served session's totals and its subscriptions' sending tasks.
struct Served {
    totals: Box<dyn Fn() -> (usize, usize) + Send>,
    handle: Option<JoinHandle<()>>,
}

/// A server (draft-14 and lite-02) serving `track` to whoever subscribes; each subscription it
/// serves is reported with its session's totals.
async fn server(
    track: TrackProducer,
    cfg: SessionConfig,
) -> (u16, mpsc::UnboundedReceiver<Served>) {
    let identity = ServerIdentity::self_signed().unwrap();
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), &identity).unwrap();
    let port = server.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _keep = identity;
        while let Some(incoming) = server.accept().await {
            let (tx, track, cfg) = (tx.clone(), track.clone(), cfg.clone());
            tokio::spawn(async move {
                match Session::accept_any(incoming.conn, cfg).await.unwrap() {
                    Accepted::Ietf(s, mut events) => {
                        while let Some(ev) = events.recv().await {
                            let IncomingEvent::Request(req) = ev else {
                                continue;
                            };
                            let handle = s.serve_subscribe(*req, &track).await.unwrap().unwrap();
                            let m = s.clone();
                            let totals = Box::new(move || {
                                (m.sending().queued_bytes(), m.sending().streams())
                            });
                            let _ = tx.send(Served {
                                totals,
                                handle: Some(handle),
                            });
                        }
                    }
                    Accepted::Lite(s, mut events) => {
                        while let Some(ev) = events.recv().await {
                            let LiteEvent::Subscribe(req) = ev else {
                                continue;
                            };
                            let handle = req.serve(&track).await.unwrap();
                            let m: LiteSession<AnyConnection> = s.clone();
                            let totals = Box::new(move || {
                                (m.sending().queued_bytes(), m.sending().streams())
                            });
                            let _ = tx.send(Served {
                                totals,
                                handle: Some(handle),
                            });
                        }
                    }
                }
            });
        }
    });
    (port, rx)
}

/// A client whose connection-level receive window is small, so a stalled one blocks the
/// publisher's streams quickly.
fn client() -> Client {
    Client::new(ClientConfig {
        tls: ClientTls::DisableVerify,
        ..Default::default()
    })
    .unwrap()
    .with_receive_window(64 * 1024)
}

/// Publishes GROUPS groups of one OBJECT-sized object, pausing between them, and checks the
/// bounds after each; returns the most payload bytes seen alive.
async fn publish(
    track: &TrackProducer,
    live: &Arc<AtomicUsize>,
    stalled: &Served,
    limits: SendLimits,
) -> usize {
    let mut most = 0;
    let mut peak = (0, 0);
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let (before, mut tasks_most) = (tasks(), 0);
    for g in 0..GROUPS {
        let mut sg = track.create_subgroup(SubgroupInfo::new(g, 0, 1));
        sg.write(Object::new(0, payload(live, g))).unwrap();
        sg.finish();
        tokio::time::sleep(Duration::from_millis(3)).await;
        // Streams of a dropped group release what they hold once their task runs: give the
        // scheduler a moment on a busy machine.
        let within =
            |(q, s): (usize, usize)| q <= limits.max_queued_bytes && s <= limits.max_streams;
        for _ in 0..100 {
            if within((stalled.totals)()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let (queued, streams) = (stalled.totals)();
        assert!(
            queued <= limits.max_queued_bytes,
            "group {g}: {queued} bytes queued for the stalled subscriber"
        );
        assert!(
            streams <= limits.max_streams,
            "group {g}: {streams} streams for the stalled subscriber"
        );
        most = most.max(live.load(Ordering::SeqCst));
        peak = (peak.0.max(queued), peak.1.max(streams));
        tasks_most = tasks_most.max(tasks());
    }
    // Stream tasks for the stalled subscriber do not pile up (one per group, before).
    assert!(
        tasks_most <= before + limits.max_streams + 32,
        "{tasks_most} tasks alive (from {before}) while publishing to a stalled subscriber"
    );
    eprintln!(
        "alive at most {most} B, {tasks_most} tasks (from {before}); stalled subscription held \
         at most {peak:?} (bytes, streams)"
    );
    // The subscriber really stalled: the publisher had to hold objects for it.
    assert!(
        peak.0 > 0,
        "nothing was ever held: the subscriber did not stall"
    );
    most
}

/// What may stay alive: the track's cache (16 groups by default), the byte limit, and what
/// QUIC still buffers (the window) plus slack.
fn memory_bound(limits: &SendLimits) -> usize {
    16 * OBJECT + limits.max_queued_bytes + 2 * OBJECT + 256 * 1024
}

async fn next_served(rx: &mut mpsc::UnboundedReceiver<Served>) -> Served {
    tokio::time::timeout(T, rx.recv()).await.unwrap().unwrap()
}

/// Waits until the stalled session's publisher holds nothing any more.
async fn released(served: &Served) {
    tokio::time::timeout(PROMPT, async {
        while (served.totals)() != (0, 0) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("still held after cancel: {:?}", (served.totals)()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_draft14_subscriber_costs_bounded_memory_and_unsubscribes_at_once() {
    let live = Arc::new(AtomicUsize::new(0));
    let track = TrackProducer::new(name(), TrackConfig::default());
    let limits = SendLimits::default();
    let (port, mut served) = server(track.clone(), SessionConfig::default()).await;
    let url = format!("moqt://localhost:{port}/moq");
    let opts = SubscribeOptions {
        filter: moqlink_model::control::Filter::NextGroupStart,
        ..Default::default()
    };

    // The stalled subscriber: SUBSCRIBE answered, data streams never read.
    let connected = client().connect(&url).await.unwrap();
    let target = connected.setup.map(ClientTarget::from).unwrap_or_default();
    let (stalled_session, _events) =
        Session::connect(Stalling(connected.conn), SessionConfig::default(), target)
            .await
            .unwrap();
    let stalled_sub = stalled_session
        .subscribe(name(), opts.clone())
        .await
        .unwrap();
    let mut stalled = next_served(&mut served).await;

    // A healthy subscriber of the same track on another session.
    let full_window = Client::new(ClientConfig {
        tls: ClientTls::DisableVerify,
        ..Default::default()
    })
    .unwrap();
    let (healthy, _hev) = connect(&full_window, &url, SessionConfig::default())
        .await
        .unwrap();
    let healthy_sub = healthy.subscribe(name(), opts).await.unwrap();
    let _healthy_served = next_served(&mut served).await;
    let mut consumer = healthy_sub.consumer();
    let reader = tokio::spawn(async move {
        let mut groups = 0u64;
        loop {
            let mut s = match consumer.next().await {
                Some(TrackItem::Subgroup(s)) => s,
                Some(_) => continue,
                None => return groups,
            };
            if s.next().await.is_ok() {
                groups += 1;
            }
            if s.info().group == GROUPS - 1 {
                return groups;
            }
        }
    });

    let most = publish(&track, &live, &stalled, limits).await;
    assert!(
        most <= memory_bound(&limits),
        "{most} payload bytes alive while publishing 20 MB to a stalled subscriber"
    );
    // The healthy subscriber got (nearly) every group, the last one without waiting for the
    // stalled one.
    let got = tokio::time::timeout(PROMPT, reader)
        .await
        .expect("the healthy subscriber is held up")
        .unwrap();
    assert!(
        got >= GROUPS * 9 / 10,
        "the healthy subscriber got {got} groups"
    );

    // UNSUBSCRIBE: the stalled subscription's sending task ends at once, holding nothing.
    stalled_sub.unsubscribe().await;
    tokio::time::timeout(PROMPT, stalled.handle.take().unwrap())
        .await
        .expect("UNSUBSCRIBE waited on a stalled stream")
        .unwrap();
    released(&stalled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_lite_subscriber_costs_bounded_memory_and_cancels_at_once() {
    let live = Arc::new(AtomicUsize::new(0));
    let track = TrackProducer::new(name(), TrackConfig::default());
    let limits = SendLimits::default();
    let cfg = SessionConfig {
        versions: vec![Version::LITE_02, Version::DRAFT_14],
        ..Default::default()
    };
    let (port, mut served) = server(track.clone(), cfg.clone()).await;
    let url = format!("moqt://localhost:{port}/moq");
    let connected = client().connect(&url).await.unwrap();
    let target = connected.setup.map(ClientTarget::from).unwrap_or_default();
    let Accepted::Lite(lite, _events) = Session::connect_any(Stalling(connected.conn), cfg, target)
        .await
        .unwrap()
    else {
        panic!("not lite")
    };
    let sub = lite
        .subscribe(
            &Blob::from("stall/test"),
            &Blob::from("video"),
            1,
            TrackConfig::default(),
        )
        .await
        .unwrap();
    let mut stalled = next_served(&mut served).await;
    let most = publish(&track, &live, &stalled, limits).await;
    assert!(
        most <= memory_bound(&limits),
        "{most} payload bytes alive while publishing 20 MB to a stalled lite subscriber"
    );
    // Cancelling (the Subscribe stream closes) ends the sending task at once.
    drop(sub);
    tokio::time::timeout(PROMPT, stalled.handle.take().unwrap())
        .await
        .expect("cancel waited on a stalled stream")
        .unwrap();
    released(&stalled).await;
}

/// Over the in-memory connection (a stream takes 64 chunks before its writer waits): a
/// draft-14 server session serving `track`, a stalled client, and the subscription's sending
/// task.
async fn memory_stalled(
    track: &TrackProducer,
    cfg: SessionConfig,
) -> (
    Session<Stalling<MemoryConnection>>,
    Subscription<Stalling<MemoryConnection>>,
    JoinHandle<()>,
    Session<MemoryConnection>,
) {
    let (c, s) = pair();
    let server = tokio::spawn(Session::accept(s, cfg));
    let (client, _events) = Session::connect(
        Stalling(c),
        SessionConfig::default(),
        ClientTarget::default(),
    )
    .await
    .unwrap();
    let (server, mut events) = server.await.unwrap().unwrap();
    let serving = server.clone();
    let track2 = track.clone();
    // The served subscription's sending task, returned through a channel.
    let (handle_tx, handle_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let Some(IncomingEvent::Request(req)) = events.recv().await else {
            panic!("no SUBSCRIBE")
        };
        let h = serving
            .serve_subscribe(*req, &track2)
            .await
            .unwrap()
            .unwrap();
        let _ = handle_tx.send(h);
        // Keep the session's request stream alive.
        while events.recv().await.is_some() {}
    });
    let opts = SubscribeOptions {
        filter: moqlink_model::control::Filter::NextGroupStart,
        ..Default::default()
    };
    let sub = client.subscribe(name(), opts).await.unwrap();
    let handle = handle_rx.await.unwrap();
    (client, sub, handle, server)
}

/// A group larger than the in-memory stream window: its stream blocks on a stalled reader.
fn write_blocking_group(track: &TrackProducer, group: u64) {
    let mut sg = track.create_subgroup(SubgroupInfo::new(group, 0, 1));
    for i in 0..200 {
        sg.write(Object::new(i, Bytes::from(vec![1u8; 1024])))
            .unwrap();
    }
    sg.finish();
}

#[tokio::test(start_paused = true)]
async fn unsubscribe_returns_at_once_while_a_stream_is_blocked() {
    let track = TrackProducer::new(name(), TrackConfig::default());
    let (_client, sub, handle, server) = memory_stalled(&track, SessionConfig::default()).await;
    write_blocking_group(&track, 0);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(server.sending().streams(), 1);
    sub.unsubscribe().await;
    tokio::time::timeout(PROMPT, handle)
        .await
        .expect("UNSUBSCRIBE waited on a blocked stream")
        .unwrap();
    tokio::time::timeout(PROMPT, async {
        while server.sending().streams() > 0 || server.sending().queued_bytes() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the blocked stream's task did not end");
}

#[tokio::test(start_paused = true)]
async fn publish_done_goes_out_after_the_drain_even_if_a_stream_is_stalled() {
    let track = TrackProducer::new(name(), TrackConfig::default());
    let limits = SendLimits {
        drain_timeout: Duration::from_secs(3),
        ..SendLimits::default()
    };
    let cfg = SessionConfig {
        send_limits: limits,
        ..Default::default()
    };
    let (_client, sub, handle, _server) = memory_stalled(&track, cfg).await;
    write_blocking_group(&track, 0);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let ended = tokio::time::Instant::now();
    track.finish(TrackEnd {
        status: PublishDoneCode::TrackEnded,
        reason: "bye".into(),
    });
    // The stalled stream is given the drain, then reset, and PUBLISH_DONE counts it.
    let done = tokio::time::timeout(limits.drain_timeout + PROMPT, sub.done())
        .await
        .expect("no PUBLISH_DONE: the stalled stream was waited on")
        .expect("PUBLISH_DONE");
    assert!(ended.elapsed() >= limits.drain_timeout);
    assert_eq!(
        (done.status_code, done.stream_count),
        (PublishDoneCode::TrackEnded.code(), 1)
    );
    tokio::time::timeout(PROMPT, handle).await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_reading_again_resumes_at_a_newer_group_old_ones_reset() {
    let track = TrackProducer::new(name(), TrackConfig::default());
    let cfg = SessionConfig {
        send_limits: SendLimits {
            max_streams: 2,
            ..SendLimits::default()
        },
        ..Default::default()
    };
    let (c, s) = pair();
    let (gate_tx, gate) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(Session::accept(s, cfg));
    let (client, _events) = Session::connect(
        Gated(c, gate),
        SessionConfig::default(),
        ClientTarget::default(),
    )
    .await
    .unwrap();
    let (server, mut events) = server.await.unwrap().unwrap();
    let served = track.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let IncomingEvent::Request(req) = ev {
                let _ = server.serve_subscribe(*req, &served).await;
            }
        }
    });
    let opts = SubscribeOptions {
        filter: moqlink_model::control::Filter::NextGroupStart,
        ..Default::default()
    };
    let sub = client.subscribe(name(), opts).await.unwrap();
    let mut consumer = sub.consumer();
    for g in 0..5 {
        write_blocking_group(&track, g);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The subscriber reads again: old groups' streams end reset with DELIVERY_TIMEOUT
    // (§10.4.3), the two newest arrive whole.
    gate_tx.send(true).unwrap();
    let mut ends = std::collections::BTreeMap::new();
    while ends.len() < 5 {
        let Ok(Some(TrackItem::Subgroup(mut sg))) =
            tokio::time::timeout(PROMPT, consumer.next()).await
        else {
            break;
        };
        let mut n = 0;
        let end = loop {
            match sg.next().await {
                Ok(_) => n += 1,
                Err(e) => break e,
            }
        };
        ends.insert(sg.info().group, (end, n));
    }
    eprintln!("after the stall: {ends:?}");
    let reset = SubgroupEnd::Reset(moqlink_model::data::reset_code::DELIVERY_TIMEOUT);
    for g in 0..3 {
        assert_eq!(ends.get(&g).map(|e| e.0), Some(reset), "old group {g}");
    }
    assert_eq!(ends.get(&3), Some(&(SubgroupEnd::Finished, 200)));
    assert_eq!(ends.get(&4), Some(&(SubgroupEnd::Finished, 200)));
}
