//! Publisher and subscriber flows end to end over the in-memory connection: SUBSCRIBE with each
//! filter, forward and SUBSCRIBE_UPDATE, UNSUBSCRIBE, PUBLISH_DONE with its stream count, FETCH
//! (standalone, relative and absolute joining, errors, cancel), TRACK_STATUS, PUBLISH, namespaces
//! and datagrams.

use bytes::Bytes;
use moqlink_model::codes::*;
use moqlink_model::control::*;
use moqlink_model::params::VersionParameters;
use moqlink_model::{GroupOrder, Location, TrackNamespace};
use moqlink_transport::connection::memory::{pair, MemoryConnection};
use moqlink_transport::session::*;
use moqlink_transport::track::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::Receiver;

const T: Duration = Duration::from_secs(5);
type S = Session<MemoryConnection>;

fn name() -> TrackName {
    TrackName::new("moq-test/interop", "test-track")
}

/// Serves the tracks in `tracks` for every request on `events`.
fn serve(
    session: S,
    mut events: Receiver<IncomingEvent>,
    tracks: Arc<HashMap<TrackName, TrackProducer>>,
) {
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            let IncomingEvent::Request(req) = ev else {
                continue;
            };
            let s = session.clone();
            let tracks = tracks.clone();
            tokio::spawn(async move {
                let lookup = |ns: &TrackNamespace, n: &moqlink_model::Blob| {
                    tracks
                        .get(&TrackName {
                            namespace: ns.clone(),
                            name: n.clone(),
                        })
                        .cloned()
                };
                match &req.message {
                    ControlMessage::Subscribe(m) => match lookup(&m.namespace, &m.name) {
                        Some(t) => {
                            // Like a relay subscribing upstream first: the answer takes a moment.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            s.serve_subscribe(*req, &t).await.unwrap();
                        }
                        None => req
                            .responder
                            .reject(SubscribeErrorCode::TrackDoesNotExist, "no such track")
                            .await
                            .unwrap(),
                    },
                    ControlMessage::TrackStatus(m) => {
                        let t = lookup(&m.namespace, &m.name);
                        s.serve_track_status(*req, t.as_ref()).await.unwrap()
                    }
                    ControlMessage::Fetch(f) => {
                        let t = match &f.fetch {
                            FetchKind::Standalone {
                                namespace, name, ..
                            } => lookup(namespace, name),
                            _ => None,
                        };
                        s.serve_fetch(*req, t.as_ref()).await.unwrap()
                    }
                    ControlMessage::PublishNamespace(_) | ControlMessage::SubscribeNamespace(_) => {
                        let id = req.message.request_id().unwrap();
                        let ok = match req.message.message_type() {
                            MessageType::PublishNamespace => {
                                ControlMessage::PublishNamespaceOk(RequestRef { request_id: id })
                            }
                            _ => {
                                ControlMessage::SubscribeNamespaceOk(RequestRef { request_id: id })
                            }
                        };
                        req.responder.accept(ok).await.unwrap();
                        // Keep the request alive like a real handler would.
                        let _keep = req.followups;
                        tokio::time::sleep(T).await;
                    }
                    _ => req.responder.not_supported("this request").await.unwrap(),
                }
            });
        }
    });
}

struct Pair {
    client: S,
    client_events: Receiver<IncomingEvent>,
    track: TrackProducer,
}

async fn setup() -> Pair {
    let (c, s) = pair();
    let server = tokio::spawn(Session::accept(s, SessionConfig::default()));
    let (client, client_events) =
        Session::connect(c, SessionConfig::default(), ClientTarget::default())
            .await
            .unwrap();
    let (server, server_events) = server.await.unwrap().unwrap();
    let track = TrackProducer::new(name(), TrackConfig::default());
    let mut tracks = HashMap::new();
    tracks.insert(name(), track.clone());
    serve(server, server_events, Arc::new(tracks));
    Pair {
        client,
        client_events,
        track,
    }
}

fn write_group(track: &TrackProducer, group: u64, objects: u64) {
    let mut sg = track.create_subgroup(SubgroupInfo::new(group, 0, 1));
    for i in 0..objects {
        sg.write(Object::new(i, Bytes::from(format!("g{group}o{i}"))))
            .unwrap();
    }
    sg.finish();
}

async fn collect(c: &mut TrackConsumer, n: usize) -> Vec<(u64, u64, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let item = tokio::time::timeout(T, c.next())
            .await
            .expect("timed out")
            .expect("track ended");
        if let TrackItem::Subgroup(mut s) = item {
            let g = s.info().group;
            while let Ok(o) = tokio::time::timeout(T, s.next()).await.unwrap() {
                out.push((g, o.id, String::from_utf8_lossy(&o.payload).into_owned()));
            }
        }
    }
    out
}

fn opts(filter: Filter) -> SubscribeOptions {
    SubscribeOptions {
        filter,
        ..Default::default()
    }
}

#[tokio::test]
async fn subscribe_receives_new_objects_and_publish_done_counts_streams() {
    let p = setup().await;
    write_group(&p.track, 0, 2);
    let sub = p
        .client
        .subscribe(name(), opts(Filter::LargestObject))
        .await
        .unwrap();
    assert_eq!(sub.largest(), Some(Location::new(0, 1)));
    let mut c = sub.consumer();
    write_group(&p.track, 1, 3);
    write_group(&p.track, 2, 1);
    let got = collect(&mut c, 4).await;
    assert_eq!(got[0], (1, 0, "g1o0".into()));
    assert_eq!(got[3], (2, 0, "g2o0".into()));
    p.track.finish(TrackEnd {
        status: PublishDoneCode::TrackEnded,
        reason: "bye".into(),
    });
    let done = tokio::time::timeout(T, sub.done()).await.unwrap().unwrap();
    assert_eq!(
        (done.status_code, done.stream_count),
        (PublishDoneCode::TrackEnded.code(), 2)
    );
}

#[tokio::test]
async fn unknown_tracks_get_track_does_not_exist() {
    let p = setup().await;
    let err = p
        .client
        .subscribe(
            TrackName::new("nonexistent/namespace", "test-track"),
            opts(Filter::LargestObject),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::Rejected {
                code: 0x4,
                kind: MessageType::SubscribeError,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn absolute_range_ends_with_subscription_ended() {
    let p = setup().await;
    let sub = p
        .client
        .subscribe(
            name(),
            opts(Filter::AbsoluteRange {
                start: Location::new(1, 1),
                end_group: 2,
            }),
        )
        .await
        .unwrap();
    let mut c = sub.consumer();
    for g in 0..4 {
        write_group(&p.track, g, 2);
    }
    let got = collect(&mut c, 3).await;
    // Group 0 and object {1, 0} are before the start; group 3 is after the end.
    assert_eq!(
        got.iter().map(|(g, o, _)| (*g, *o)).collect::<Vec<_>>(),
        vec![(1, 1), (2, 0), (2, 1)]
    );
    let done = tokio::time::timeout(T, sub.done()).await.unwrap().unwrap();
    assert_eq!(
        (done.status_code, done.stream_count),
        (PublishDoneCode::SubscriptionEnded.code(), 2)
    );
}

#[tokio::test]
async fn forward_zero_then_update_to_one() {
    let p = setup().await;
    let sub = p
        .client
        .subscribe(
            name(),
            SubscribeOptions {
                forward: false,
                ..opts(Filter::NextGroupStart)
            },
        )
        .await
        .unwrap();
    let mut c = sub.consumer();
    write_group(&p.track, 0, 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(50), c.next())
            .await
            .is_err(),
        "forward=0 delivered"
    );
    sub.update(Location::new(1, 0), None, 10, true)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    write_group(&p.track, 1, 1);
    let got = collect(&mut c, 1).await;
    assert_eq!(got[0].0, 1);
}

#[tokio::test]
async fn unsubscribe_stops_delivery_without_publish_done() {
    let p = setup().await;
    let sub = p
        .client
        .subscribe(name(), opts(Filter::NextGroupStart))
        .await
        .unwrap();
    let track = sub.track().clone();
    let id = sub.request_id();
    sub.unsubscribe().await;
    write_group(&p.track, 0, 1);
    let mut c = track.consume(Location::new(0, 0), None);
    assert!(
        tokio::time::timeout(T, c.next()).await.unwrap().is_none(),
        "objects after UNSUBSCRIBE"
    );
    assert_eq!(
        track.status().end.map(|e| e.status),
        Some(PublishDoneCode::InternalError)
    );
    let _ = id;
}

#[tokio::test]
async fn fetch_standalone_joining_and_errors() {
    let p = setup().await;
    for g in 0..3 {
        write_group(&p.track, g, 3);
    }
    let standalone = FetchKind::Standalone {
        namespace: name().namespace,
        name: name().name,
        start: Location::new(1, 1),
        end: FetchEnd {
            group: 2,
            object: Some(0),
        },
    };
    let mut f = p
        .client
        .fetch(
            standalone,
            1,
            GroupOrder::Original,
            VersionParameters::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        f.ok.end_location,
        FetchEnd {
            group: 2,
            object: Some(0)
        }
    );
    assert!(!f.ok.end_of_track);
    let mut got = Vec::new();
    while let Some(o) = tokio::time::timeout(T, f.next()).await.unwrap().unwrap() {
        got.push((o.group_id, o.object_id));
    }
    assert_eq!(got, vec![(1, 1), (1, 2), (2, 0)]);

    // Beyond the largest: FETCH_OK names the largest object (+1 on the wire).
    let beyond = FetchKind::Standalone {
        namespace: name().namespace,
        name: name().name,
        start: Location::new(2, 0),
        end: FetchEnd {
            group: 9,
            object: None,
        },
    };
    let f = p
        .client
        .fetch(beyond, 1, GroupOrder::Original, VersionParameters::new())
        .await
        .unwrap();
    assert_eq!(
        f.ok.end_location,
        FetchEnd {
            group: 2,
            object: Some(2)
        }
    );

    // Start beyond the largest object: INVALID_RANGE.
    let late = FetchKind::Standalone {
        namespace: name().namespace,
        name: name().name,
        start: Location::new(5, 0),
        end: FetchEnd {
            group: 6,
            object: None,
        },
    };
    let err = p
        .client
        .fetch(late, 1, GroupOrder::Original, VersionParameters::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, SessionError::Rejected { code: 0x5, .. }),
        "{err:?}"
    );

    // Joining an unknown subscription.
    let join = FetchKind::RelativeJoining {
        joining_request_id: 98,
        joining_start: 1,
    };
    let err = p
        .client
        .fetch(join, 1, GroupOrder::Original, VersionParameters::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, SessionError::Rejected { code: 0x7, .. }),
        "{err:?}"
    );

    // Relative joining one group back from a Largest Object subscription.
    let sub = p
        .client
        .subscribe(name(), opts(Filter::LargestObject))
        .await
        .unwrap();
    let join = FetchKind::RelativeJoining {
        joining_request_id: sub.request_id(),
        joining_start: 1,
    };
    let mut f = p
        .client
        .fetch(join, 1, GroupOrder::Ascending, VersionParameters::new())
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(o) = tokio::time::timeout(T, f.next()).await.unwrap().unwrap() {
        got.push((o.group_id, o.object_id));
    }
    assert_eq!(got, vec![(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]);

    // Absolute joining from group 2, descending is irrelevant for one group.
    let join = FetchKind::AbsoluteJoining {
        joining_request_id: sub.request_id(),
        joining_start: 2,
    };
    let mut f = p
        .client
        .fetch(join, 1, GroupOrder::Descending, VersionParameters::new())
        .await
        .unwrap();
    let first = tokio::time::timeout(T, f.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((first.group_id, first.object_id), (2, 0));
    f.cancel().await.unwrap();
}

#[tokio::test]
async fn track_status_reports_the_largest_location() {
    let p = setup().await;
    write_group(&p.track, 4, 2);
    let ok = p.client.track_status(&name()).await.unwrap();
    assert_eq!(
        (ok.track_alias, ok.largest_location),
        (0, Some(Location::new(4, 1)))
    );
    let err = p
        .client
        .track_status(&TrackName::new("x", "y"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::Rejected {
                code: 0x4,
                kind: MessageType::TrackStatusError,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn namespaces_are_acknowledged() {
    let p = setup().await;
    let ns = p
        .client
        .publish_namespace(
            TrackNamespace::from_strs(&["moq-test", "interop"]),
            VersionParameters::new(),
        )
        .await
        .unwrap();
    ns.done().await.unwrap();
    let nsub = p
        .client
        .subscribe_namespace(
            TrackNamespace::from_strs(&["moq-test"]),
            VersionParameters::new(),
        )
        .await
        .unwrap();
    nsub.unsubscribe().await.unwrap();
}

#[tokio::test]
async fn publish_reaches_a_subscriber_that_accepts_it() {
    let (c, s) = pair();
    let server = tokio::spawn(Session::accept(s, SessionConfig::default()));
    let (client, _ce) = Session::connect(c, SessionConfig::default(), ClientTarget::default())
        .await
        .unwrap();
    let (_server, mut server_events) = server.await.unwrap().unwrap();
    let track = TrackProducer::new(
        TrackName::new("moq-test/publish", "published-track"),
        TrackConfig::default(),
    );
    let publisher = tokio::spawn({
        let client = client.clone();
        let track = track.clone();
        async move { client.publish(&track, true, VersionParameters::new()).await }
    });
    let Some(IncomingEvent::Request(req)) = server_events.recv().await else {
        panic!("no PUBLISH")
    };
    assert_eq!(req.message.message_type(), MessageType::Publish);
    let sub = _server
        .accept_publish(
            *req,
            PublishAccept {
                filter: Filter::AbsoluteStart {
                    start: Location::new(0, 0),
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let publication = publisher.await.unwrap().unwrap();
    assert!(publication.ok.forward);
    let mut c = sub.consumer();
    write_group(&track, 0, 1);
    let got = collect(&mut c, 1).await;
    assert_eq!(got[0].2, "g0o0");
    track.finish(TrackEnd {
        status: PublishDoneCode::TrackEnded,
        reason: String::new(),
    });
    let done = tokio::time::timeout(T, publication.done())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.stream_count, 1);
}

#[tokio::test]
async fn datagrams_end_to_end() {
    let p = setup().await;
    let sub = p
        .client
        .subscribe(name(), opts(Filter::NextGroupStart))
        .await
        .unwrap();
    let mut c = sub.consumer();
    p.track
        .write_datagram(0, 3, Object::new(0, Bytes::from_static(b"dgram")));
    let item = tokio::time::timeout(T, c.next()).await.unwrap().unwrap();
    let TrackItem::Datagram {
        group,
        priority,
        object,
    } = item
    else {
        panic!("not a datagram")
    };
    assert_eq!(
        (group, priority, &object.payload[..]),
        (0, 3, &b"dgram"[..])
    );
    drop(p.client_events);
}

#[tokio::test]
async fn publish_done_goes_out_with_forward_zero() {
    let (c, s) = pair();
    let server = tokio::spawn(Session::accept(s, SessionConfig::default()));
    let (client, _ce) = Session::connect(c, SessionConfig::default(), ClientTarget::default())
        .await
        .unwrap();
    let (server, mut server_events) = server.await.unwrap().unwrap();
    let track = TrackProducer::new(
        TrackName::new("moq-test/publish", "published-track"),
        TrackConfig::default(),
    );
    let publisher = tokio::spawn({
        let client = client.clone();
        let track = track.clone();
        async move { client.publish(&track, true, VersionParameters::new()).await }
    });
    let Some(IncomingEvent::Request(req)) = server_events.recv().await else {
        panic!("no PUBLISH")
    };
    // A relay with no subscriber answers Forward State 0.
    let sub = server
        .accept_publish(
            *req,
            PublishAccept {
                forward: false,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let publication = publisher.await.unwrap().unwrap();
    assert!(!publication.ok.forward);
    write_group(&track, 0, 1);
    track.finish(TrackEnd {
        status: PublishDoneCode::TrackEnded,
        reason: String::new(),
    });
    let done = tokio::time::timeout(T, publication.done())
        .await
        .expect("no PUBLISH_DONE with Forward State 0")
        .unwrap();
    assert_eq!(
        (done.status_code, done.stream_count),
        (PublishDoneCode::TrackEnded.code(), 0)
    );
    let got = tokio::time::timeout(T, sub.done()).await.unwrap().unwrap();
    assert_eq!(
        (got.status_code, got.stream_count),
        (PublishDoneCode::TrackEnded.code(), 0)
    );
}

#[tokio::test]
async fn a_subscription_ends_when_its_session_closes() {
    let p = setup().await;
    let sub = p
        .client
        .subscribe(name(), opts(Filter::LargestObject))
        .await
        .unwrap();
    let track = sub.track().clone();
    p.client.close(moqlink_model::SessionErrorCode::NoError, "");
    let done = tokio::time::timeout(T, sub.done())
        .await
        .expect("the subscription outlived its session")
        .unwrap();
    assert_eq!(done.status_code, PublishDoneCode::InternalError.code());
    assert!(track.status().end.is_some(), "the track did not end");
}

#[tokio::test]
async fn a_joining_fetch_pipelined_behind_its_subscribe_waits_for_it() {
    let p = setup().await;
    for g in 0..3 {
        write_group(&p.track, g, 2);
    }
    // SUBSCRIBE and the joining FETCH leave back to back, before SUBSCRIBE_OK (peers do this);
    // the publisher handles requests concurrently.
    let mut sub = p
        .client
        .request(|request_id| {
            ControlMessage::Subscribe(Subscribe {
                request_id,
                namespace: name().namespace,
                name: name().name,
                subscriber_priority: 1,
                group_order: GroupOrder::Original,
                forward: true,
                filter: Filter::LargestObject,
                parameters: VersionParameters::new(),
            })
        })
        .await
        .unwrap();
    let sub_id = sub.id();
    let mut fetch = p
        .client
        .request(|request_id| {
            ControlMessage::Fetch(Fetch {
                request_id,
                subscriber_priority: 1,
                group_order: GroupOrder::Original,
                fetch: FetchKind::RelativeJoining {
                    joining_request_id: sub_id,
                    joining_start: 1,
                },
                parameters: VersionParameters::new(),
            })
        })
        .await
        .unwrap();
    assert!(matches!(
        sub.reply().await.unwrap(),
        ControlMessage::SubscribeOk(_)
    ));
    let reply = tokio::time::timeout(T, fetch.reply()).await.unwrap();
    assert!(matches!(reply, Ok(ControlMessage::FetchOk(_))), "{reply:?}");
}

#[test]
fn subscribe_update_may_only_narrow() {
    let update = |start: Location, end_group: Option<u64>| SubscribeUpdate {
        request_id: 2,
        subscription_request_id: 0,
        start,
        end_group,
        subscriber_priority: 1,
        forward: true,
        parameters: VersionParameters::new(),
    };
    let (start, open) = (Location::new(2, 3), None);
    // §9.10: Start may stay or move forward; an open end may become any end at or past Start.
    assert_eq!(
        widens(start, open, &update(Location::new(2, 3), None)),
        None
    );
    assert_eq!(
        widens(start, open, &update(Location::new(5, 0), Some(5))),
        None
    );
    assert_eq!(
        widens(start, Some(9), &update(Location::new(2, 3), Some(9))),
        None
    );
    assert_eq!(
        widens(start, Some(9), &update(Location::new(2, 4), Some(4))),
        None
    );
    // Start moving back, End Group moving up or opening, End Group below Start.
    assert!(widens(start, open, &update(Location::new(2, 2), None)).is_some());
    assert!(widens(start, Some(9), &update(Location::new(2, 3), Some(10))).is_some());
    assert!(widens(start, Some(9), &update(Location::new(2, 3), None)).is_some());
    assert!(widens(start, open, &update(Location::new(4, 0), Some(3))).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_reach_the_peer_in_request_id_order() {
    // §9.1: a Request ID other than the next expected one closes the session, so requests made
    // at the same time from many tasks must still go out as 0, 2, 4...
    for _round in 0..5 {
        let p = setup().await;
        let mut tasks = Vec::new();
        for i in 0..40 {
            let client = p.client.clone();
            tasks.push(tokio::spawn(async move {
                let ns = TrackNamespace::from_path(&format!("moq-test/ns{i}"));
                client
                    .publish_namespace(ns, VersionParameters::new())
                    .await
                    .map(|_| ())
            }));
        }
        for t in tasks {
            tokio::time::timeout(T, t).await.unwrap().unwrap().unwrap();
        }
        assert!(p.client.close_reason().is_none());
    }
}

#[tokio::test]
async fn a_later_publishers_claimed_largest_never_moves_a_shared_tracks_largest() {
    // A relay writes every publisher of a track into one shared track (§8.4). A joining
    // publisher's SUBSCRIBE_OK claiming Largest (2^62-1, 2^62-1) would start every later
    // Largest Object subscriber after anything anyone can send: once the track has a Largest,
    // it moves only with what arrives. The subscription still reports the claim.
    let p = setup().await;
    let max = moqlink_model::limits::MAX_VARINT;
    p.track.note_largest(Location::new(max, max));
    let shared = TrackProducer::new(name(), TrackConfig::default());
    // Another publisher's object is already in the shared track.
    write_group(&shared, 0, 1);
    let sub = p
        .client
        .subscribe(
            name(),
            SubscribeOptions {
                into: Some(shared.clone()),
                ..opts(Filter::LargestObject)
            },
        )
        .await
        .unwrap();
    assert_eq!(sub.largest(), Some(Location::new(max, max)));
    assert_eq!(shared.status().largest, Some(Location::new(0, 0)));
    // A fresh shared track, and a subscriber's own track, take the claim (the first word).
    let own = p
        .client
        .subscribe(name(), opts(Filter::LargestObject))
        .await
        .unwrap();
    assert_eq!(own.track().status().largest, Some(Location::new(max, max)));
}
