//! The relay's trust boundaries end to end on loopback, with hostile or unentitled peers over
//! draft-14 and moq-lite: both protocols go through one request path (authorization, names
//! draft-14 can carry, per-session limits), publishers are asked only for what their credentials
//! cover, one publisher per PUBLISHed track, clients' tokens never forwarded upstream, and an
//! unreachable upstream relay not redialled per request. Namespaces: `relay_namespaces.rs`.

mod common;

use common::{both, client, limited, rejected, rule, session, start, subscriber, with_rules, T};
use moqlink::relay::{RelayConfig, SessionLimits};
use moqlink_model::control::{ControlMessage, FetchEnd, FetchKind};
use moqlink_model::params::{Parameter, Token, VersionParameters};
use moqlink_model::{Blob, GroupOrder, Location, TrackNamespace, Version};
use moqlink_transport::client::AnySession;
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::lite::{path_of, LiteEvent, LiteSession};
use moqlink_transport::session::*;
use moqlink_transport::track::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

type Lite = LiteSession<AnyConnection>;

/// A draft-14 publisher of `track` that announces its namespace, serves SUBSCRIBE and FETCH,
/// and counts the requests it gets (and the tokens they carried).
async fn publisher(url: &str, token: &str, track: TrackProducer) -> (AnySession, Arc<Seen>) {
    let (session, mut events) = session(url, token).await;
    let seen = Arc::new(Seen::default());
    let (s, sn, t) = (session.clone(), seen.clone(), track.clone());
    tokio::spawn(async move {
        while let Some(IncomingEvent::Request(req)) = events.recv().await {
            sn.requests.fetch_add(1, Ordering::SeqCst);
            sn.tokens.fetch_add(req.tokens.len(), Ordering::SeqCst);
            match &req.message {
                ControlMessage::Subscribe(_) => {
                    let _ = s.serve_subscribe(*req, &t).await;
                }
                ControlMessage::Fetch(_) => {
                    let _ = s.serve_fetch(*req, Some(&t)).await;
                }
                _ => {
                    let _ = req.responder.not_supported("test publisher").await;
                }
            }
        }
    });
    let ns = session
        .publish_namespace(track.name().namespace.clone(), VersionParameters::new())
        .await
        .unwrap();
    std::mem::forget(ns);
    (session, seen)
}

#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    tokens: AtomicUsize,
}

/// A moq-lite (lite-02) session to `url` (`moql://`, a token may ride in its query).
async fn lite(url: &str) -> (Lite, mpsc::Receiver<LiteEvent<AnyConnection>>) {
    let connected = client().connect(url).await.unwrap();
    let target = connected.setup.map(ClientTarget::from).unwrap_or_default();
    let cfg = SessionConfig {
        versions: vec![Version::LITE_02],
        ..Default::default()
    };
    match Session::connect_any(connected.conn, cfg, target)
        .await
        .unwrap()
    {
        Accepted::Lite(s, rx) => (s, rx),
        Accepted::Ietf(..) => panic!("draft-14 negotiated"),
    }
}

/// Answers the relay's ANNOUNCE_PLEASE with `paths` and records the SUBSCRIBEs it gets as
/// "broadcast track" (refusing them).
fn lite_announce(
    mut events: mpsc::Receiver<LiteEvent<AnyConnection>>,
    paths: Vec<Blob>,
) -> Arc<std::sync::Mutex<Vec<String>>> {
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = asked.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                LiteEvent::AnnouncePlease(req) => {
                    let paths = paths.clone();
                    tokio::spawn(async move {
                        if let Ok(mut a) = req.respond(&paths).await {
                            a.closed().await;
                        }
                    });
                }
                LiteEvent::Subscribe(req) => {
                    let what = format!("{} {}", req.subscribe.broadcast, req.subscribe.track);
                    seen.lock().unwrap().push(what);
                    req.reject("test");
                }
            }
        }
    });
    asked
}

fn write_group(track: &TrackProducer, group: u64) {
    let mut sg = track.create_subgroup(SubgroupInfo::new(group, 0, 1));
    sg.write(Object::new(0, bytes::Bytes::from(format!("g{group}"))))
        .unwrap();
    sg.finish();
}

#[tokio::test]
async fn moq_lite_subscribes_pass_the_same_authorization_as_draft_14() {
    let relay = start(with_rules(&[rule("secure", &["pub"], &["sub"])]));
    let track = TrackProducer::new(TrackName::new("secure/feed", "t"), TrackConfig::default());
    let (_p, seen) = publisher(&relay.url("moqt"), "pub", track.clone()).await;
    write_group(&track, 0);
    // No token: the lite SUBSCRIBE is refused and never reaches the publisher.
    let (l, _rx) = lite(&relay.url("moql")).await;
    let path = path_of(&TrackNamespace::from_path("secure/feed"));
    let refused = l
        .subscribe(&path, &Blob::from("t"), 0, TrackConfig::default())
        .await;
    assert!(
        refused.is_err(),
        "a lite SUBSCRIBE without credentials was served"
    );
    assert_eq!(seen.requests.load(Ordering::SeqCst), 0);
    // The token in the URL (as moq-dev's clients send it) is accepted.
    let (l, _rx) = lite(&format!("{}/?jwt=sub", relay.url("moql"))).await;
    let sub = tokio::time::timeout(
        T,
        l.subscribe(&path, &Blob::from("t"), 0, TrackConfig::default()),
    )
    .await
    .unwrap();
    assert!(sub.is_ok(), "{:?}", sub.err());
}

#[tokio::test]
async fn a_moq_lite_announce_without_credentials_is_not_routed() {
    let relay = start(with_rules(&[
        rule("secure", &["pub"], &["*"]),
        rule("open", &["*"], &["*"]),
    ]));
    let (_l, events) = lite(&relay.url("moql")).await;
    let evil = path_of(&TrackNamespace::from_path("secure/evil"));
    let ok = path_of(&TrackNamespace::from_path("open/ok"));
    let asked = lite_announce(events, vec![evil, ok]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = subscriber(&relay.url("moqt")).await;
    let Err(err) = s
        .subscribe(
            TrackName::new("secure/evil", "t"),
            SubscribeOptions::default(),
        )
        .await
    else {
        panic!("the unauthorized lite broadcast was served")
    };
    assert_eq!(rejected(&err).map(|r| r.0), Some(0x4), "{err:?}");
    // The same session's allowed broadcast is routed to it.
    let _ = s
        .subscribe(TrackName::new("open/ok", "t"), SubscribeOptions::default())
        .await;
    assert_eq!(*asked.lock().unwrap(), ["open/ok t"]);
}

#[tokio::test]
async fn an_empty_lite_announce_never_joins_other_publishers_tracks() {
    // The empty path would be the zero-field namespace, a prefix of every namespace: the relay
    // would subscribe the lite client to every active track and merge its objects in.
    let relay = start(both());
    let track = TrackProducer::new(TrackName::new("honest", "t"), TrackConfig::default());
    let (_p, _seen) = publisher(&relay.url("moqt"), "", track.clone()).await;
    let s = subscriber(&relay.url("moqt")).await;
    let _sub = s
        .subscribe(track.name().clone(), SubscribeOptions::default())
        .await
        .unwrap();
    let (_l, events) = lite(&relay.url("moql")).await;
    let ok = path_of(&TrackNamespace::from_path("lite/ok"));
    let asked = lite_announce(events, vec![Blob::EMPTY, ok]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Its valid broadcast is routed; the empty one joined nothing.
    let _ = s
        .subscribe(TrackName::new("lite/ok", "t"), SubscribeOptions::default())
        .await;
    assert_eq!(
        *asked.lock().unwrap(),
        ["lite/ok t"],
        "the empty announce joined a track"
    );
}

#[tokio::test]
async fn lite_names_draft_14_cannot_carry_never_reach_a_draft_14_publisher() {
    let relay = start(both());
    let track = TrackProducer::new(TrackName::new("a", "t"), TrackConfig::default());
    let (p, seen) = publisher(&relay.url("moqt"), "", track).await;
    let (l, _rx) = lite(&relay.url("moql")).await;
    // 33 namespace fields under the publisher's "a" (§2.4.1 allows 32).
    let deep: Vec<String> = (0..32).map(|i| i.to_string()).collect();
    let path = Blob::from(format!("a/{}", deep.join("/")));
    let refused = l
        .subscribe(&path, &Blob::from("t"), 0, TrackConfig::default())
        .await;
    assert!(refused.is_err());
    // A full track name over 4096 bytes.
    let long = Blob::from(vec![b'x'; 4096]);
    let refused = l
        .subscribe(&Blob::from("a"), &long, 0, TrackConfig::default())
        .await;
    assert!(refused.is_err());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(seen.requests.load(Ordering::SeqCst), 0);
    assert!(p.close_reason().is_none(), "{:?}", p.close_reason());
}
#[tokio::test]
async fn a_second_publish_of_a_published_track_is_refused() {
    let relay = start(RelayConfig::default());
    let name = TrackName::new("pub", "t");
    let first = TrackProducer::new(name.clone(), TrackConfig::default());
    let (a, _ea) = session(&relay.url("moqt"), "").await;
    let _pa = a
        .publish(&first, true, VersionParameters::new())
        .await
        .unwrap();
    let (b, _eb) = session(&relay.url("moqt"), "").await;
    let second = TrackProducer::new(name, TrackConfig::default());
    let Err(err) = b.publish(&second, true, VersionParameters::new()).await else {
        panic!("the second PUBLISH was accepted")
    };
    let (_, reason) = rejected(&err).expect("not a PUBLISH_ERROR");
    assert!(reason.contains("already published"), "{reason}");
}

#[tokio::test]
async fn each_session_is_held_to_its_limits() {
    let relay = start(limited(SessionLimits {
        subscriptions: 2,
        namespaces: 1,
        ..Default::default()
    }));
    let track = TrackProducer::new(TrackName::new("lim", "t"), TrackConfig::default());
    let (_p, _seen) = publisher(&relay.url("moqt"), "", track.clone()).await;
    let (s, _e) = session(&relay.url("moqt"), "").await;
    let name = track.name().clone();
    let _a = s
        .subscribe(name.clone(), SubscribeOptions::default())
        .await
        .unwrap();
    let _b = s
        .subscribe(name.clone(), SubscribeOptions::default())
        .await
        .unwrap();
    let err = s
        .subscribe(name.clone(), SubscribeOptions::default())
        .await
        .unwrap_err();
    let (code, reason) = rejected(&err).unwrap();
    assert_eq!(code, 0x0);
    assert!(reason.contains("at most 2 subscriptions"), "{reason}");
    // Another session has its own allowance; an ended subscription frees a slot.
    let (other, _eo) = session(&relay.url("moqt"), "").await;
    assert!(other
        .subscribe(name.clone(), SubscribeOptions::default())
        .await
        .is_ok());
    drop(_a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(s.subscribe(name, SubscribeOptions::default()).await.is_ok());
    // One published namespace per session.
    let _n = s
        .publish_namespace(TrackNamespace::from_path("n1"), VersionParameters::new())
        .await
        .unwrap();
    let err = s
        .publish_namespace(TrackNamespace::from_path("n2"), VersionParameters::new())
        .await
        .unwrap_err();
    assert!(rejected(&err)
        .unwrap()
        .1
        .contains("at most 1 published namespaces"));
}
#[tokio::test]
async fn a_clients_token_is_never_forwarded_upstream() {
    let relay = start(RelayConfig::default());
    let track = TrackProducer::new(TrackName::new("tok", "t"), TrackConfig::default());
    write_group(&track, 0);
    let (_p, seen) = publisher(&relay.url("moqt"), "", track.clone()).await;
    let s = subscriber(&relay.url("moqt")).await;
    let mut params = VersionParameters::new();
    params.push(Parameter::AuthorizationToken {
        value: Token::UseValue {
            token_type: 0,
            token_value: Blob::from("client-secret"),
        },
    });
    let kind = FetchKind::Standalone {
        namespace: track.name().namespace.clone(),
        name: track.name().name.clone(),
        start: Location::new(0, 0),
        end: FetchEnd {
            group: 0,
            object: None,
        },
    };
    // Not in the relay's cache: the FETCH goes to the publisher.
    let _f = tokio::time::timeout(T, s.fetch(kind, 1, GroupOrder::Ascending, params))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.requests.load(Ordering::SeqCst), 1);
    assert_eq!(
        seen.tokens.load(Ordering::SeqCst),
        0,
        "the client's token reached the publisher"
    );
}

#[tokio::test]
async fn a_fetch_counts_against_the_limit_until_its_stream_is_sent() {
    let relay = start(limited(SessionLimits {
        fetches: 1,
        ..Default::default()
    }));
    let track = TrackProducer::new(TrackName::new("fl", "t"), TrackConfig::default());
    let (_p, _seen) = publisher(&relay.url("moqt"), "", track.clone()).await;
    // A subscriber makes the relay cache the track from group 0 on.
    let s = subscriber(&relay.url("moqt")).await;
    let _sub = s
        .subscribe(track.name().clone(), SubscribeOptions::default())
        .await
        .unwrap();
    let payload = bytes::Bytes::from(vec![7u8; 16 * 1024]);
    for g in 0..4u64 {
        let mut sg = track.create_subgroup(SubgroupInfo::new(g, 0, 1));
        for o in 0..64 {
            sg.write(Object::new(o, payload.clone())).unwrap();
        }
        sg.finish();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kind = || FetchKind::Standalone {
        namespace: track.name().namespace.clone(),
        name: track.name().name.clone(),
        start: Location::new(0, 0),
        end: FetchEnd {
            group: 3,
            object: None,
        },
    };
    let (f, _e) = session(&relay.url("moqt"), "").await;
    // 4 MiB from the cache, never read: the relay's fetch stream stays unsent.
    let _unread = f
        .fetch(kind(), 1, GroupOrder::Ascending, VersionParameters::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let Err(err) = f
        .fetch(kind(), 1, GroupOrder::Ascending, VersionParameters::new())
        .await
    else {
        panic!("a second FETCH was served while the first was still being sent")
    };
    let (_, reason) = rejected(&err).expect("not a FETCH_ERROR");
    assert!(reason.contains("at most 1 fetches"), "{reason}");
}
#[tokio::test]
async fn an_unreachable_upstream_is_not_redialled_for_every_request() {
    // The "upstream relay" is a UDP socket that never answers: each connection attempt shows
    // as Initial packets with a new Destination Connection ID.
    let dead = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = dead.local_addr().unwrap().port();
    let upstream_client =
        moqlink_transport::endpoint::Client::new(moqlink_transport::endpoint::ClientConfig {
            tls: moqlink_transport::tls::ClientTls::DisableVerify,
            limits: moqlink_transport::ConnectionLimits {
                idle_timeout: Duration::from_millis(150),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
    let relay = start(RelayConfig {
        upstream: Some(moqlink::relay::Upstream {
            url: format!("moqt://127.0.0.1:{port}"),
            client: upstream_client,
            token: None,
        }),
        ..Default::default()
    });
    let attempts = tokio::spawn(async move {
        let mut ids = std::collections::HashSet::new();
        let mut buf = vec![0u8; 2048];
        while let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_secs(3), dead.recv_from(&mut buf)).await
        {
            // Long header: flags, version (4), DCID length, DCID.
            if n > 6 && buf[0] & 0x80 != 0 {
                let len = buf[5] as usize;
                if n >= 6 + len {
                    ids.insert(buf[6..6 + len].to_vec());
                }
            }
        }
        ids.len()
    });
    let s = subscriber(&relay.url("moqt")).await;
    for i in 0..3 {
        let name = TrackName::new("far", &format!("t{i}"));
        let refused = tokio::time::timeout(T, s.subscribe(name, SubscribeOptions::default()))
            .await
            .unwrap();
        assert!(refused.is_err());
    }
    let dialled = attempts.await.unwrap();
    assert!(dialled >= 1, "the upstream was never dialled");
    assert!(
        dialled <= 2,
        "{dialled} connection attempts for 3 requests in a second"
    );
}

#[tokio::test]
async fn a_publisher_of_a_prefix_is_not_asked_for_tracks_a_longer_rule_protects() {
    // §8.4: a publisher is a publisher of the tracks its credentials cover, not of everything
    // under the namespace it announced.
    let relay = start(with_rules(&[
        rule("live", &["*"], &["*"]),
        rule("live/vip", &["vip"], &["*"]),
    ]));
    let vip = TrackProducer::new(TrackName::new("live/vip", "t"), TrackConfig::default());
    let (_honest, honest_seen) = publisher(&relay.url("moqt"), "vip", vip.clone()).await;
    let decoy = TrackProducer::new(TrackName::new("live", "decoy"), TrackConfig::default());
    let (_attacker, attacker_seen) = publisher(&relay.url("moqt"), "", decoy).await;
    let s = subscriber(&relay.url("moqt")).await;
    let _sub = s
        .subscribe(vip.name().clone(), SubscribeOptions::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(honest_seen.requests.load(Ordering::SeqCst), 1);
    assert_eq!(
        attacker_seen.requests.load(Ordering::SeqCst),
        0,
        "the protected track's SUBSCRIBE reached a publisher of `live` without the vip token"
    );
}
