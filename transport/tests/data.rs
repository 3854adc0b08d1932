//! Data streams and datagrams over the in-memory connection: subgroup and fetch streams routed by
//! track alias and request ID, streams that arrive before the alias is known, resets, and
//! malformed data closing the session with the draft's code.

use bytes::Bytes;
use moqlink_model::data::*;
use moqlink_model::{Blob, SessionErrorCode};
use moqlink_transport::connection::memory::{pair, MemoryConnection};
use moqlink_transport::data::{FetchEvent, SubgroupEvent};
use moqlink_transport::session::*;
use moqlink_transport::{Connection, SendStream};
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

async fn sessions() -> (Session<MemoryConnection>, Session<MemoryConnection>) {
    let (c, s) = pair();
    let server = tokio::spawn(Session::accept(s, SessionConfig::default()));
    let (client, _ci) = Session::connect(c, SessionConfig::default(), ClientTarget::default())
        .await
        .unwrap();
    let (server, _si) = server.await.unwrap().unwrap();
    // The incoming-request receivers are dropped: requests would get NOT_SUPPORTED.
    (client, server)
}

fn header(alias: u64, group: u64) -> SubgroupHeader {
    SubgroupHeader {
        track_alias: alias,
        group_id: group,
        subgroup_id: SubgroupIdMode::Explicit(0),
        publisher_priority: 7,
        extensions_present: false,
        end_of_group: true,
    }
}

fn object(id: u64, payload: &str) -> SubgroupObject {
    SubgroupObject {
        object_id: id,
        extensions: Extensions::empty(),
        status: ObjectStatus::Normal,
        payload: Blob::from(payload),
    }
}

/// The next object or end, past any report of an object that has only begun to arrive.
async fn next(sub: &mut IncomingSubgroupHandle) -> SubgroupEvent {
    loop {
        match tokio::time::timeout(T, sub.next()).await.unwrap().unwrap() {
            SubgroupEvent::Begun(_) => continue,
            ev => return ev,
        }
    }
}

type IncomingSubgroupHandle = moqlink_transport::data::IncomingSubgroup;

#[tokio::test]
async fn subgroup_streams_reach_the_track_alias() {
    let (client, server) = sessions().await;
    let mut track = client.data().register_track(5).unwrap();
    let mut w = server.open_subgroup(header(5, 3), 0).await.unwrap();
    // Object IDs with a gap: 0, then 2 (delta 1 on the wire).
    w.write(&object(0, "a")).await.unwrap();
    w.write(&object(2, "bc")).await.unwrap();
    w.finish().unwrap();
    let mut sub = tokio::time::timeout(T, track.subgroups.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sub.header, header(5, 3));
    assert_eq!(next(&mut sub).await, SubgroupEvent::Object(object(0, "a")));
    assert_eq!(next(&mut sub).await, SubgroupEvent::Object(object(2, "bc")));
    assert_eq!(next(&mut sub).await, SubgroupEvent::Finished);
}

#[tokio::test]
async fn a_stream_that_arrives_before_the_alias_waits_for_it() {
    let (client, server) = sessions().await;
    let mut w = server.open_subgroup(header(9, 0), 0).await.unwrap();
    w.write(&object(0, "early")).await.unwrap();
    w.finish().unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // SUBSCRIBE_OK "arrives" now and names alias 9.
    let mut track = client.data().register_track(9).unwrap();
    let mut sub = tokio::time::timeout(T, track.subgroups.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        next(&mut sub).await,
        SubgroupEvent::Object(object(0, "early"))
    );
}

#[tokio::test]
async fn duplicate_aliases_are_refused() {
    let (client, _server) = sessions().await;
    let _t = client.data().register_track(1).unwrap();
    assert!(client.data().register_track(1).is_err());
}

#[tokio::test]
async fn resets_carry_their_code() {
    let (client, server) = sessions().await;
    let mut track = client.data().register_track(2).unwrap();
    let mut w = server.open_subgroup(header(2, 0), 0).await.unwrap();
    w.write(&object(0, "x")).await.unwrap();
    w.reset(reset_code::DELIVERY_TIMEOUT).unwrap();
    let mut sub = track.subgroups.recv().await.unwrap();
    assert_eq!(next(&mut sub).await, SubgroupEvent::Object(object(0, "x")));
    assert_eq!(
        next(&mut sub).await,
        SubgroupEvent::Reset(reset_code::DELIVERY_TIMEOUT)
    );
}

#[tokio::test]
async fn datagrams_and_fetch_streams_are_routed() {
    let (client, server) = sessions().await;
    let mut track = client.data().register_track(4).unwrap();
    let d = ObjectDatagram {
        track_alias: 4,
        group_id: 1,
        object_id: 0,
        object_id_present: false,
        publisher_priority: 1,
        end_of_group: true,
        extensions: None,
        body: DatagramBody::Payload(Blob::from("dg")),
    };
    server.send_datagram(&d).unwrap();
    let got = tokio::time::timeout(T, track.datagrams.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, d);

    let fetch = client.data().expect_fetch(0);
    let mut w = server.open_fetch(0, 0).await.unwrap();
    let fo = FetchObject {
        group_id: 1,
        subgroup_id: 0,
        object_id: 3,
        publisher_priority: 2,
        extensions: Extensions::empty(),
        status: ObjectStatus::Normal,
        payload: Blob::from("old"),
    };
    w.write(&fo).await.unwrap();
    w.finish().unwrap();
    let mut f = tokio::time::timeout(T, fetch).await.unwrap().unwrap();
    assert_eq!(f.request_id, 0);
    assert_eq!(f.next().await.unwrap(), FetchEvent::Object(fo));
    assert_eq!(f.next().await.unwrap(), FetchEvent::Finished);
}

#[tokio::test]
async fn an_undefined_object_status_closes_the_session() {
    let (client, server) = sessions().await;
    let _track = client.data().register_track(1).unwrap();
    let mut raw = server.connection().open_uni().await.unwrap();
    // 10 header: alias 1, group 0, priority 0; object delta 0, length 0, status 2 (§10.2.1.1).
    raw.write(&hex::decode("1001000000 0002".replace(' ', "")).unwrap())
        .await
        .unwrap();
    let close = tokio::time::timeout(T, client.closed()).await.unwrap();
    assert_eq!(close.code, SessionErrorCode::ProtocolViolation.code());
    assert!(
        close.reason.contains("invalid_object_status"),
        "{}",
        close.reason
    );
}

#[tokio::test]
async fn a_fin_inside_an_object_closes_the_session() {
    let (client, server) = sessions().await;
    let _track = client.data().register_track(1).unwrap();
    let mut raw = server.connection().open_uni().await.unwrap();
    // An object announcing 5 payload bytes, of which 2 arrive before FIN (§10.4).
    raw.write_chunk(Bytes::from(
        hex::decode("100100000005 6162".replace(' ', "")).unwrap(),
    ))
    .await
    .unwrap();
    raw.finish().unwrap();
    let close = tokio::time::timeout(T, client.closed()).await.unwrap();
    assert_eq!(close.code, SessionErrorCode::ProtocolViolation.code());
    assert!(close.reason.contains("truncated"), "{}", close.reason);
}

#[tokio::test]
async fn an_undefined_datagram_type_closes_the_session() {
    let (client, server) = sessions().await;
    server
        .connection()
        .send_datagram(Bytes::from_static(&[0x22, 0x01, 0x00]))
        .unwrap();
    let close = tokio::time::timeout(T, client.closed()).await.unwrap();
    assert_eq!(close.code, SessionErrorCode::ProtocolViolation.code());
}
