//! moq-lite receive limits over the in-memory connection (paused clock for deadlines): request
//! size, the deadline for a stream's first bytes, ANNOUNCE_INIT path count, and the partial-frame
//! budget. At each limit one stream ends and the session goes on.

use bytes::{BufMut, Bytes, BytesMut};
use moqlink_model::lite::BiStreamType;
use moqlink_model::{Blob, Encoding, Version};
use moqlink_transport::connection::memory::{pair, MemoryConnection};
use moqlink_transport::limits::{ConnectionLimits, LITE_STOP_OVER_LIMIT, LITE_STOP_TIMEOUT};
use moqlink_transport::lite::{LiteEvent, LiteSession};
use moqlink_transport::session::*;
use moqlink_transport::track::*;
use moqlink_transport::{Connection, RecvStream, SendStream, StreamError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(5);
const V: Version = Version::LITE_02;

type Lite = (
    LiteSession<MemoryConnection>,
    Receiver<LiteEvent<MemoryConnection>>,
);

/// A lite session pair; the client's raw connection comes back for hand-made streams.
async fn lite_pair(
    client: ConnectionLimits,
    server: ConnectionLimits,
) -> (MemoryConnection, Lite, Lite) {
    let (c, s) = pair();
    let (c, s) = (
        c.with_limits(Arc::new(client)),
        s.with_limits(Arc::new(server)),
    );
    let cfg = SessionConfig {
        versions: vec![V],
        ..Default::default()
    };
    let server = tokio::spawn(Session::accept_any(s, cfg.clone()));
    let client = Session::connect_any(c.clone(), cfg, ClientTarget::default())
        .await
        .unwrap();
    let Accepted::Lite(cs, crx) = client else {
        panic!("client did not negotiate lite")
    };
    let Accepted::Lite(ss, srx) = server.await.unwrap().unwrap() else {
        panic!("server did not negotiate lite")
    };
    (c, (cs, crx), (ss, srx))
}

fn stream_type(ty: BiStreamType) -> BytesMut {
    let mut b = BytesMut::new();
    ty.encode(&mut b, Encoding::new(V)).unwrap();
    b
}

/// The session still serves a normal request: ANNOUNCE_PLEASE reaches the server.
async fn session_still_serves(
    client: &LiteSession<MemoryConnection>,
    srx: &mut Receiver<LiteEvent<MemoryConnection>>,
) {
    let _announced = client.announce_please(&Blob::from("demo")).await.unwrap();
    let ev = timeout(T, srx.recv()).await.unwrap().unwrap();
    assert!(matches!(ev, LiteEvent::AnnouncePlease(_)));
}

/// Old code: the limit was 64 MiB, so the server waited for the whole 100 kB message.
#[tokio::test]
async fn an_oversized_request_ends_its_stream_and_the_session_lives() {
    let server = ConnectionLimits {
        lite_max_message: 1024,
        ..Default::default()
    };
    let (raw, (client, _), (session, mut srx)) =
        lite_pair(ConnectionLimits::default(), server).await;
    let (mut send, mut recv) = raw.open_bi().await.unwrap();
    let mut head = stream_type(BiStreamType::Announce);
    // Message Length 100,000 (a 4-byte varint), then the first 2,000 bytes of it.
    head.put_u32(0x8000_0000 | 100_000);
    head.put_bytes(b'a', 2000);
    send.write_chunk(head.freeze()).await.unwrap();
    let got = timeout(T, recv.read_chunk(1024)).await.expect("refused");
    assert_eq!(got, Err(StreamError::Reset(LITE_STOP_OVER_LIMIT)));
    assert_eq!(
        timeout(T, send.stopped()).await.unwrap(),
        Some(LITE_STOP_OVER_LIMIT)
    );
    assert!(session.close_reason().is_none());
    session_still_serves(&client, &mut srx).await;
}

/// Old code: no deadline, the empty stream was held forever.
#[tokio::test(start_paused = true)]
async fn a_stream_that_sends_no_request_is_refused_at_the_deadline() {
    let server = ConnectionLimits {
        header_deadline: Duration::from_secs(10),
        ..Default::default()
    };
    let (raw, (client, _), (session, mut srx)) =
        lite_pair(ConnectionLimits::default(), server).await;
    let (mut send, mut recv) = raw.open_bi().await.unwrap();
    // Only the stream type: the request never comes.
    send.write_chunk(stream_type(BiStreamType::Subscribe).freeze())
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    let got = timeout(Duration::from_secs(60), recv.read_chunk(1024))
        .await
        .expect("refused at the deadline");
    assert_eq!(got, Err(StreamError::Reset(LITE_STOP_TIMEOUT)));
    assert!(start.elapsed() >= Duration::from_secs(10));
    assert!(session.close_reason().is_none());
    session_still_serves(&client, &mut srx).await;
}

/// Old code: no deadline, the group stream was held forever.
#[tokio::test(start_paused = true)]
async fn a_group_stream_without_its_header_is_stopped_at_the_deadline() {
    let client = ConnectionLimits {
        header_deadline: Duration::from_secs(3),
        ..Default::default()
    };
    // The server opens a Group stream to the client and sends nothing.
    let (_raw, (client, _), (server, _)) = lite_pair(client, ConnectionLimits::default()).await;
    let mut s = server.connection().open_uni().await.unwrap();
    let start = tokio::time::Instant::now();
    let stopped = timeout(Duration::from_secs(60), s.stopped())
        .await
        .expect("stopped at the deadline");
    assert_eq!(stopped, Some(LITE_STOP_TIMEOUT));
    assert!(start.elapsed() >= Duration::from_secs(3));
    assert!(client.close_reason().is_none());
}

/// Old code: every path was passed on, however many.
#[tokio::test]
async fn an_announce_init_with_too_many_paths_ends_the_announce_stream() {
    let client = ConnectionLimits {
        lite_max_announce_paths: 2,
        ..Default::default()
    };
    let (_raw, (client, _), (server, mut srx)) =
        lite_pair(client, ConnectionLimits::default()).await;
    let mut announced = client.announce_please(&Blob::from("demo")).await.unwrap();
    let Some(LiteEvent::AnnouncePlease(req)) = timeout(T, srx.recv()).await.unwrap() else {
        panic!("no ANNOUNCE_PLEASE")
    };
    let paths = ["demo/a", "demo/b", "demo/c"].map(Blob::from);
    let mut announcer = req.respond(&paths).await.unwrap();
    // Nothing is passed on and the stream ends; the publisher sees it end too.
    assert_eq!(timeout(T, announced.recv()).await.unwrap(), None);
    timeout(T, announcer.closed()).await.unwrap();
    assert!(client.close_reason().is_none() && server.close_reason().is_none());
    // Within the limit, announcements flow.
    let mut announced = client.announce_please(&Blob::from("demo")).await.unwrap();
    let Some(LiteEvent::AnnouncePlease(req)) = timeout(T, srx.recv()).await.unwrap() else {
        panic!("no ANNOUNCE_PLEASE")
    };
    let _announcer = req.respond(&paths[..2]).await.unwrap();
    let (path, _) = timeout(T, announced.recv()).await.unwrap().unwrap();
    assert_eq!(path, Blob::from("demo/a"));
}

/// Old code: an ANNOUNCE_INIT up to 64 MiB was buffered and passed on.
#[tokio::test]
async fn an_announce_init_over_its_byte_limit_ends_the_announce_stream() {
    let client = ConnectionLimits {
        lite_max_announce_init: 64,
        ..Default::default()
    };
    let (_raw, (client, _), (server, mut srx)) =
        lite_pair(client, ConnectionLimits::default()).await;
    let mut announced = client.announce_please(&Blob::from("demo")).await.unwrap();
    let Some(LiteEvent::AnnouncePlease(req)) = timeout(T, srx.recv()).await.unwrap() else {
        panic!("no ANNOUNCE_PLEASE")
    };
    let long = Blob::from(format!("demo/{}", "x".repeat(100)));
    let mut announcer = req.respond(&[long]).await.unwrap();
    assert_eq!(timeout(T, announced.recv()).await.unwrap(), None);
    timeout(T, announcer.closed()).await.unwrap();
    assert!(client.close_reason().is_none() && server.close_reason().is_none());
}

/// Serves `track` to every SUBSCRIBE the server gets.
fn serve(mut srx: Receiver<LiteEvent<MemoryConnection>>, track: TrackProducer) {
    tokio::spawn(async move {
        while let Some(ev) = srx.recv().await {
            if let LiteEvent::Subscribe(req) = ev {
                req.serve(&track).await.unwrap();
            }
        }
    });
}

/// The end of the next group's first frame, as the subscriber sees it.
async fn next_group(c: &mut TrackConsumer) -> Result<Object, SubgroupEnd> {
    let Some(TrackItem::Subgroup(mut s)) = timeout(T, c.next()).await.unwrap() else {
        panic!("no group")
    };
    timeout(T, s.next()).await.unwrap()
}

/// Old code: no budget (and a frame over the size cap closed the session).
#[tokio::test]
async fn a_frame_over_the_partial_frame_budget_resets_its_group_and_the_session_lives() {
    let client = ConnectionLimits {
        partial_object_bytes: 1024 * 1024,
        max_object_size: 64 * 1024 * 1024,
        ..Default::default()
    };
    let (_raw, (client, _), (server, srx)) = lite_pair(client, ConnectionLimits::default()).await;
    let track = TrackProducer::new(TrackName::new("demo", "big"), TrackConfig::default());
    serve(srx, track.clone());
    let sub = client
        .subscribe(
            &Blob::from("demo"),
            &Blob::from("big"),
            0,
            TrackConfig::default(),
        )
        .await
        .unwrap();
    let mut c = sub.track().consume(Default::default(), None);
    let mut sg = track.create_subgroup(SubgroupInfo::new(1, 0, 1));
    sg.write(Object::new(0, Bytes::from(vec![7u8; 4 * 1024 * 1024])))
        .unwrap();
    sg.finish();
    assert_eq!(
        next_group(&mut c).await,
        Err(SubgroupEnd::Reset(LITE_STOP_OVER_LIMIT))
    );
    // The budget came back: the next group gets through.
    let mut sg = track.create_subgroup(SubgroupInfo::new(2, 0, 1));
    sg.write(Object::new(0, Bytes::from_static(b"small")))
        .unwrap();
    sg.finish();
    let o = next_group(&mut c).await.unwrap();
    assert_eq!(&o.payload[..], b"small");
    assert!(client.close_reason().is_none() && server.close_reason().is_none());
}

/// Old code: a frame over the size cap closed the whole session.
#[tokio::test]
async fn a_frame_over_the_size_cap_resets_its_group_and_the_session_lives() {
    let client = ConnectionLimits {
        max_object_size: 1024 * 1024,
        ..Default::default()
    };
    let (_raw, (client, _), (server, srx)) = lite_pair(client, ConnectionLimits::default()).await;
    let track = TrackProducer::new(TrackName::new("demo", "big"), TrackConfig::default());
    serve(srx, track.clone());
    let sub = client
        .subscribe(
            &Blob::from("demo"),
            &Blob::from("big"),
            0,
            TrackConfig::default(),
        )
        .await
        .unwrap();
    let mut c = sub.track().consume(Default::default(), None);
    let mut sg = track.create_subgroup(SubgroupInfo::new(1, 0, 1));
    sg.write(Object::new(0, Bytes::from(vec![7u8; 2 * 1024 * 1024])))
        .unwrap();
    sg.finish();
    assert_eq!(
        next_group(&mut c).await,
        Err(SubgroupEnd::Reset(LITE_STOP_OVER_LIMIT))
    );
    assert!(client.close_reason().is_none() && server.close_reason().is_none());
}
