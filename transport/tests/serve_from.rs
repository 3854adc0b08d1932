//! A relay answering the SUBSCRIBE that opened its upstream subscription: Largest Object is
//! resolved against the Largest Location the upstream reported (`serve_subscribe_from`), so
//! objects the upstream sent for this request before the relay answered are delivered (§9.7:
//! the subscription starts after the largest object *published* when it was accepted — upstream,
//! that was nothing yet).

use bytes::Bytes;
use moqlink_model::control::*;
use moqlink_model::Location;
use moqlink_transport::connection::memory::pair;
use moqlink_transport::session::*;
use moqlink_transport::track::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

/// The client subscribes with Largest Object to a track that already holds group 0 (objects
/// 0-3, arrived for this request); the server answers from `largest`. Returns the SUBSCRIBE_OK's
/// Largest Location and the first object the subscriber gets.
async fn first_object(largest: Option<Location>) -> (Option<Location>, (u64, u64)) {
    let (c, s) = pair();
    let server = tokio::spawn(Session::accept(s, SessionConfig::default()));
    let (client, _events) = Session::connect(c, SessionConfig::default(), ClientTarget::default())
        .await
        .unwrap();
    let (server, mut server_events) = server.await.unwrap().unwrap();
    let name = TrackName::new("relay/test", "t");
    let track = TrackProducer::new(name.clone(), TrackConfig::default());
    let mut sg = track.create_subgroup(SubgroupInfo::new(0, 0, 1));
    for i in 0..4 {
        sg.write(Object::new(i, Bytes::from(format!("o{i}"))))
            .unwrap();
    }
    let served = track.clone();
    tokio::spawn(async move {
        let Some(IncomingEvent::Request(req)) = server_events.recv().await else {
            panic!("no SUBSCRIBE")
        };
        let _task = server.serve_subscribe_from(*req, &served, largest).await;
        std::future::pending::<()>().await;
    });
    let opts = SubscribeOptions {
        filter: Filter::LargestObject,
        ..Default::default()
    };
    let sub = client.subscribe(name, opts).await.unwrap();
    let reported = sub.largest();
    let mut c = sub.consumer();
    // Group 1 follows, so there is always something after the largest object.
    let mut g1 = track.create_subgroup(SubgroupInfo::new(1, 0, 1));
    g1.write(Object::new(0, Bytes::from_static(b"g1"))).unwrap();
    let Some(TrackItem::Subgroup(mut s)) = tokio::time::timeout(T, c.next()).await.unwrap() else {
        panic!("no subgroup")
    };
    let o = tokio::time::timeout(T, s.next()).await.unwrap().unwrap();
    (reported, (s.info().group, o.id))
}

#[tokio::test]
async fn the_opening_subscriber_gets_what_arrived_for_it() {
    // The upstream's SUBSCRIBE_OK said nothing was published: everything here came after.
    assert_eq!(first_object(None).await, (None, (0, 0)));
}

#[tokio::test]
async fn a_later_subscriber_starts_after_the_largest_object() {
    // serve_subscribe's reading: the track's own largest, (0, 3); group 1 comes next.
    let largest = Some(Location::new(0, 3));
    assert_eq!(first_object(largest).await, (largest, (1, 0)));
}
