//! Data integrity at the edges, over the in-memory connection (issue 10, medium findings):
//! refused FETCHes leave no route behind, a subgroup cut by a reset or a lost connection ends
//! reset (also downstream of a relay-style forward), small payloads do not pin their receive
//! chunk, and a reader behind a trimmed group front gets its stream reset, not a FIN.

use bytes::Bytes;
use moqlink_model::codes::*;
use moqlink_model::control::*;
use moqlink_model::data::*;
use moqlink_model::params::VersionParameters;
use moqlink_model::{Blob, Encoding, GroupOrder, Location};
use moqlink_transport::connection::memory::{pair, MemoryConnection};
use moqlink_transport::data::SubgroupEvent;
use moqlink_transport::session::*;
use moqlink_transport::track::*;
use moqlink_transport::{Connection, SendStream};
use std::time::Duration;
use tokio::sync::mpsc::Receiver;

const T: Duration = Duration::from_secs(5);
type S = Session<MemoryConnection>;

async fn sessions() -> ((S, Receiver<IncomingEvent>), (S, Receiver<IncomingEvent>)) {
    let (c, s) = pair();
    let server = tokio::spawn(Session::accept(s, SessionConfig::default()));
    let client = Session::connect(c, SessionConfig::default(), ClientTarget::default())
        .await
        .unwrap();
    (client, server.await.unwrap().unwrap())
}

fn name() -> TrackName {
    TrackName::new("moq-test/integrity", "t")
}

/// Answers SUBSCRIBE and FETCH on `session` from `track`; everything else NOT_SUPPORTED.
fn serve(session: S, mut events: Receiver<IncomingEvent>, track: TrackProducer) {
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            let IncomingEvent::Request(req) = ev else {
                continue;
            };
            let (s, t) = (session.clone(), track.clone());
            tokio::spawn(async move {
                match &req.message {
                    ControlMessage::Subscribe(_) => {
                        let _ = s.serve_subscribe(*req, &t).await;
                    }
                    ControlMessage::Fetch(f) => {
                        let t = matches!(f.fetch, FetchKind::Standalone { .. }).then_some(&t);
                        let _ = s.serve_fetch(*req, t).await;
                    }
                    _ => {
                        let _ = req.responder.not_supported("this request").await;
                    }
                }
            });
        }
    });
}

fn standalone(start: Location, end_group: u64) -> FetchKind {
    FetchKind::Standalone {
        namespace: name().namespace,
        name: name().name,
        start,
        end: FetchEnd {
            group: end_group,
            object: None,
        },
    }
}

#[tokio::test]
async fn refused_fetches_leave_no_pending_route() {
    // The server's requests go unanswered by a handler: every FETCH gets NOT_SUPPORTED.
    let ((client, _ce), (_server, se)) = sessions().await;
    drop(se);
    for _ in 0..50 {
        let r = client
            .fetch(
                standalone(Location::new(0, 0), 1),
                1,
                GroupOrder::Ascending,
                VersionParameters::new(),
            )
            .await;
        assert!(r.is_err(), "FETCH must be refused");
    }
    assert_eq!(client.data().pending_fetches(), 0);
}

#[tokio::test]
async fn an_abandoned_fetch_leaves_no_pending_route() {
    let ((client, _ce), (server, se)) = sessions().await;
    let track = TrackProducer::new(name(), TrackConfig::default());
    let mut sg = track.create_subgroup(SubgroupInfo::new(0, 0, 1));
    sg.write_next(Bytes::from_static(b"x")).unwrap();
    sg.finish();
    serve(server, se, track);
    let r = client
        .fetch(
            standalone(Location::new(0, 0), 1),
            1,
            GroupOrder::Ascending,
            VersionParameters::new(),
        )
        .await
        .unwrap();
    // Dropped before its stream was read: the route goes with it.
    drop(r);
    assert_eq!(client.data().pending_fetches(), 0);
}

fn header(alias: u64) -> SubgroupHeader {
    SubgroupHeader {
        track_alias: alias,
        group_id: 0,
        subgroup_id: SubgroupIdMode::Explicit(0),
        publisher_priority: 1,
        extensions_present: false,
        end_of_group: false,
    }
}

fn encoded_object(id: u64, payload: &[u8]) -> Vec<u8> {
    let h = header(1);
    let o = SubgroupObject {
        object_id: id,
        extensions: Extensions::empty(),
        status: ObjectStatus::Normal,
        payload: Blob(Bytes::copy_from_slice(payload)),
    };
    let mut buf = Vec::new();
    o.encode(&mut buf, &h, id.checked_sub(1), Encoding::default())
        .unwrap();
    buf
}

/// The next event on an incoming subgroup, past reports of objects that only began.
async fn next_event(sub: &mut moqlink_transport::data::IncomingSubgroup) -> SubgroupEvent {
    loop {
        match tokio::time::timeout(T, sub.next()).await.unwrap().unwrap() {
            SubgroupEvent::Begun(_) => continue,
            ev => return ev,
        }
    }
}

#[tokio::test]
async fn a_subgroup_cut_by_connection_loss_ends_reset_not_finished() {
    let ((client, _ce), (server, _se)) = sessions().await;
    let mut track = client.data().register_track(1).unwrap();
    let mut raw = server.connection().open_uni().await.unwrap();
    let mut head = Vec::new();
    header(1).encode(&mut head, Encoding::default()).unwrap();
    raw.write(&head).await.unwrap();
    raw.write(&encoded_object(0, b"a")).await.unwrap();
    let mut sub = tokio::time::timeout(T, track.subgroups.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        next_event(&mut sub).await,
        SubgroupEvent::Object(_)
    ));
    server.connection().close(0, "gone");
    assert_eq!(
        next_event(&mut sub).await,
        SubgroupEvent::Reset(reset_code::SESSION_CLOSED),
        "a subgroup whose connection died may be incomplete (§10.4.2)"
    );
}

/// Publisher P → relay-style R (subscribes P into its own track, serves it) → subscriber C.
#[tokio::test]
async fn a_relay_forwards_a_cut_subgroup_as_reset() {
    let ((r_up, _re), (p, pe)) = sessions().await;
    let source = TrackProducer::new(name(), TrackConfig::default());
    serve(p.clone(), pe, source.clone());
    let relayed = TrackProducer::new(name(), TrackConfig::default());
    let opts = SubscribeOptions {
        into: Some(relayed.clone()),
        ..Default::default()
    };
    let _up = r_up.subscribe(name(), opts).await.unwrap();
    let ((c, _cev), (r_down, rde)) = sessions().await;
    serve(r_down, rde, relayed.clone());
    let sub = c
        .subscribe(name(), SubscribeOptions::default())
        .await
        .unwrap();
    let mut consumer = sub.consumer();

    let mut sg = source.create_subgroup(SubgroupInfo::new(0, 0, 1));
    sg.write_next(Bytes::from_static(b"first")).unwrap();
    let TrackItem::Subgroup(mut got) = tokio::time::timeout(T, consumer.next())
        .await
        .unwrap()
        .unwrap()
    else {
        panic!("a subgroup")
    };
    let first = tokio::time::timeout(T, got.next()).await.unwrap().unwrap();
    assert_eq!(&first.payload[..], b"first");
    // P's connection dies with the subgroup still open.
    p.connection().close(0, "gone");
    let end = tokio::time::timeout(T, got.next()).await.unwrap();
    assert!(
        matches!(end, Err(SubgroupEnd::Reset(_))),
        "C must see the relayed stream reset, not a FIN: {end:?}"
    );
    drop(sg);
}

#[tokio::test]
async fn small_payloads_do_not_pin_their_receive_chunk() {
    let ((client, _ce), (server, _se)) = sessions().await;
    let mut track = client.data().register_track(1).unwrap();
    let mut raw = server.connection().open_uni().await.unwrap();
    let mut head = Vec::new();
    header(1).encode(&mut head, Encoding::default()).unwrap();
    raw.write(&head).await.unwrap();
    const CHUNK: usize = 64 * 1024;
    let mut chunks = Vec::new();
    for id in 0..16u64 {
        // Each 1-byte object arrives alone in a slice of its own 64 KiB buffer, as a QUIC
        // stack hands out slices of its receive buffers.
        let obj = encoded_object(id, &[id as u8]);
        let mut big = vec![0u8; CHUNK];
        big[..obj.len()].copy_from_slice(&obj);
        let big = Bytes::from(big);
        raw.write_chunk(big.slice(..obj.len())).await.unwrap();
        chunks.push(big);
    }
    let mut sub = tokio::time::timeout(T, track.subgroups.recv())
        .await
        .unwrap()
        .unwrap();
    for id in 0..16u64 {
        let SubgroupEvent::Object(o) = next_event(&mut sub).await else {
            panic!("object {id}");
        };
        assert_eq!(&o.payload.0[..], &[id as u8]);
        let p = o.payload.0.as_ptr() as usize;
        for c in &chunks {
            let start = c.as_ptr() as usize;
            assert!(
                !(start..start + CHUNK).contains(&p),
                "object {id}'s 1-byte payload is a slice of a 64 KiB receive chunk"
            );
        }
    }
}

#[tokio::test]
async fn a_subscriber_behind_a_trimmed_group_front_gets_a_reset_not_a_gap() {
    let ((c, _ce), (p, pe)) = sessions().await;
    // Room for about ten 1-byte objects of one group: more trims the group's front.
    let cfg = TrackConfig {
        max_bytes: 4096,
        ..Default::default()
    };
    let source = TrackProducer::new(name(), cfg);
    serve(p, pe, source.clone());
    let sub = c
        .subscribe(name(), SubscribeOptions::default())
        .await
        .unwrap();
    let mut consumer = sub.consumer();
    let mut sg = source.create_subgroup(SubgroupInfo::new(0, 0, 1));
    sg.write_next(Bytes::from_static(b"0")).unwrap();
    let TrackItem::Subgroup(mut got) = tokio::time::timeout(T, consumer.next())
        .await
        .unwrap()
        .unwrap()
    else {
        panic!("a subgroup")
    };
    assert_eq!(got.next().await.unwrap().id, 0);
    // A burst the sender cannot keep up with (it runs only when this test yields): the
    // objects right after 0 are trimmed before it reads them.
    for _ in 1..50 {
        sg.write_next(Bytes::from_static(b"x")).unwrap();
    }
    assert!(source.trimmed_objects() > 0);
    sg.finish();
    let mut ids = Vec::new();
    let end = loop {
        match tokio::time::timeout(T, got.next()).await.unwrap() {
            Ok(o) => ids.push(o.id),
            Err(e) => break e,
        }
    };
    assert_eq!(
        end,
        SubgroupEnd::Reset(reset_code::DELIVERY_TIMEOUT),
        "a subgroup with missing objects must not end with FIN (got objects {ids:?})"
    );
}

/// A track of two groups with room for about ten 1-byte objects: group 0 (5 objects), then a
/// long group 1 whose writes evict group 0 and trim group 1's front.
fn trimmed_track() -> TrackProducer {
    let cfg = TrackConfig {
        max_bytes: 4096,
        ..Default::default()
    };
    let t = TrackProducer::new(name(), cfg);
    for g in 0..2 {
        let mut sg = t.create_subgroup(SubgroupInfo::new(g, 0, 1));
        for _ in 0..(if g == 0 { 5 } else { 30 }) {
            sg.write_next(Bytes::from_static(b"x")).unwrap();
        }
        sg.finish();
    }
    assert!(t.evicted_groups() > 0 && t.trimmed_objects() > 0);
    t
}

fn rejected_code(r: Result<FetchResponse<MemoryConnection>, SessionError>) -> u64 {
    match r {
        Err(SessionError::Rejected { code, .. }) => code,
        other => panic!("expected FETCH_ERROR, got {other:?}"),
    }
}

#[tokio::test]
async fn a_joining_fetch_over_dropped_objects_is_refused() {
    let ((c, _ce), (p, pe)) = sessions().await;
    serve(p, pe, trimmed_track());
    let sub = c
        .subscribe(name(), SubscribeOptions::default())
        .await
        .unwrap();
    assert_eq!(sub.largest(), Some(Location::new(1, 29)));
    // Joining Start 1: groups 0 and 1 up to 1.29; group 0 and the front of 1 are gone.
    let kind = FetchKind::RelativeJoining {
        joining_request_id: sub.request_id(),
        joining_start: 1,
    };
    let r = c
        .fetch(kind, 1, GroupOrder::Ascending, VersionParameters::new())
        .await;
    assert_eq!(
        rejected_code(r),
        FetchErrorCode::UnknownStatusInRange.code()
    );
    // Joining Start 0 from the same subscription: group 1's front is gone too.
    let kind = FetchKind::RelativeJoining {
        joining_request_id: sub.request_id(),
        joining_start: 0,
    };
    let r = c
        .fetch(kind, 1, GroupOrder::Ascending, VersionParameters::new())
        .await;
    assert_eq!(
        rejected_code(r),
        FetchErrorCode::UnknownStatusInRange.code()
    );
}

#[tokio::test]
async fn a_standalone_fetch_over_dropped_objects_is_refused() {
    let ((c, _ce), (p, pe)) = sessions().await;
    let t = trimmed_track();
    serve(p, pe, t.clone());
    let r = c
        .fetch(
            standalone(Location::new(0, 0), 1),
            1,
            GroupOrder::Ascending,
            VersionParameters::new(),
        )
        .await;
    assert_eq!(
        rejected_code(r),
        FetchErrorCode::UnknownStatusInRange.code()
    );
    // From the oldest retained object on, the range is whole and served.
    let first = 30 - t.retained_objects() as u64;
    let mut r = c
        .fetch(
            standalone(Location::new(1, first), 1),
            1,
            GroupOrder::Ascending,
            VersionParameters::new(),
        )
        .await
        .unwrap();
    let mut n = 0;
    while let Some(o) = tokio::time::timeout(T, r.next()).await.unwrap().unwrap() {
        assert_eq!(o.object_id, first + n);
        n += 1;
    }
    assert_eq!(n, 30 - first);
}
