//! The relay's trust boundaries end to end on loopback, with hostile or unentitled peers over
//! draft-14 and moq-lite: both protocols go through one request path (authorization, names
//! draft-14 can carry, per-session limits), namespace subscriptions see only what their
//! credentials allow, one publisher per PUBLISHed track, request credit held while a namespace
//! is published, and clients' tokens never forwarded upstream.

mod common;

use common::{client, start, subscriber, T};
use moqlink::relay::auth::AuthRules;
use moqlink::relay::config::AuthRuleConfig;
use moqlink::relay::{RelayConfig, SessionLimits};
use moqlink_model::control::{ControlMessage, FetchEnd, FetchKind};
use moqlink_model::params::{Parameter, Token, VersionParameters};
use moqlink_model::{Blob, GroupOrder, Location, TrackNamespace, Version};
use moqlink_transport::client::{connect, AnySession};
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::lite::{path_of, LiteEvent, LiteSession};
use moqlink_transport::session::*;
use moqlink_transport::track::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

type Lite = LiteSession<AnyConnection>;

fn rule(prefix: &str, publish: &[&str], subscribe: &[&str]) -> AuthRuleConfig {
    AuthRuleConfig {
        prefix: prefix.into(),
        publish: publish.iter().map(|s| s.to_string()).collect(),
        subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
    }
}

/// A relay accepting draft-14 and moq-lite, as `moqlink relay` does by default.
fn both() -> RelayConfig {
    let mut config = RelayConfig::default();
    config.session.versions = vec![Version::DRAFT_14, Version::LITE_02, Version::LITE_01];
    config
}

fn with_rules(rules: &[AuthRuleConfig]) -> RelayConfig {
    RelayConfig {
        auth: AuthRules::new(rules, None),
        ..both()
    }
}

/// A relay holding each session to `limits`.
fn limited(limits: SessionLimits) -> RelayConfig {
    RelayConfig {
        limits,
        ..Default::default()
    }
}

/// A session subscribed to the namespaces under `prefix`: the session, its events, and the
/// subscription (dropping it unsubscribes).
async fn watch(
    url: &str,
    prefix: &str,
) -> (
    AnySession,
    mpsc::Receiver<IncomingEvent>,
    NamespaceSubscription<AnyConnection>,
) {
    let (watcher, events) = session(url, "").await;
    let sub = watcher
        .subscribe_namespace(TrackNamespace::from_path(prefix), VersionParameters::new())
        .await
        .unwrap();
    (watcher, events, sub)
}

/// A draft-14 session presenting `token` in CLIENT_SETUP (none when empty).
async fn session(url: &str, token: &str) -> (AnySession, mpsc::Receiver<IncomingEvent>) {
    let cfg = SessionConfig {
        auth_tokens: (!token.is_empty())
            .then(|| Blob::from(token))
            .into_iter()
            .collect(),
        ..Default::default()
    };
    connect(&client(), url, cfg).await.unwrap()
}

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
                    let _ = s.serve_subscribe(req, &t).await;
                }
                ControlMessage::Fetch(_) => {
                    let _ = s.serve_fetch(req, Some(&t)).await;
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
    let target = connected
        .setup
        .map(|s| ClientTarget {
            path: Some(s.path),
            authority: Some(s.authority),
        })
        .unwrap_or_default();
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

/// Answers the relay's ANNOUNCE_PLEASE with `paths` and counts SUBSCRIBEs (refusing them).
fn lite_announce(
    mut events: mpsc::Receiver<LiteEvent<AnyConnection>>,
    paths: Vec<Blob>,
) -> Arc<AtomicUsize> {
    let subscribes = Arc::new(AtomicUsize::new(0));
    let n = subscribes.clone();
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
                    n.fetch_add(1, Ordering::SeqCst);
                    req.reject("test");
                }
            }
        }
    });
    subscribes
}

fn write_group(track: &TrackProducer, group: u64) {
    let mut sg = track.create_subgroup(SubgroupInfo::new(group, 0, 1));
    sg.write(Object::new(0, bytes::Bytes::from(format!("g{group}"))))
        .unwrap();
    sg.finish();
}

fn rejected(err: &SessionError) -> Option<(u64, String)> {
    match err {
        SessionError::Rejected { code, reason, .. } => Some((*code, reason.clone())),
        _ => None,
    }
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
    let relay = start(with_rules(&[rule("secure", &["pub"], &["*"])]));
    let (_l, events) = lite(&relay.url("moql")).await;
    let path = path_of(&TrackNamespace::from_path("secure/evil"));
    let subscribes = lite_announce(events, vec![path]);
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
    assert_eq!(subscribes.load(Ordering::SeqCst), 0);
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
    let subscribes = lite_announce(events, vec![Blob::EMPTY]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        subscribes.load(Ordering::SeqCst),
        0,
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
async fn a_namespace_subscription_sees_only_namespaces_its_credentials_allow() {
    let relay = start(with_rules(&[
        rule("live", &["*"], &["*"]),
        rule("live/private", &["*"], &["secret"]),
    ]));
    let url = relay.url("moqt");
    let (p, _e) = session(&url, "").await;
    for ns in ["live/public", "live/private/x"] {
        let n = p
            .publish_namespace(TrackNamespace::from_path(ns), VersionParameters::new())
            .await
            .unwrap();
        std::mem::forget(n);
    }
    // PUBLISHed tracks (offered with PUBLISH, data flowing) are filtered the same way.
    let mut published = Vec::new();
    for ns in ["live/public", "live/private/x"] {
        let t = TrackProducer::new(TrackName::new(ns, "pushed"), TrackConfig::default());
        published.push(p.publish(&t, true, VersionParameters::new()).await.unwrap());
        std::mem::forget(t);
    }
    let told = |token: &'static str| {
        let url = url.clone();
        async move {
            let (s, mut events) = session(&url, token).await;
            let _ns = s
                .subscribe_namespace(TrackNamespace::from_path("live"), VersionParameters::new())
                .await
                .unwrap();
            let mut got = Vec::new();
            let until = tokio::time::Instant::now() + Duration::from_millis(500);
            while let Ok(Some(IncomingEvent::Request(req))) =
                tokio::time::timeout_at(until, events.recv()).await
            {
                match &req.message {
                    ControlMessage::PublishNamespace(m) => got.push(m.namespace.to_string()),
                    ControlMessage::Publish(m) => got.push(format!("{}/{}", m.namespace, m.name)),
                    _ => {}
                }
                let _ = req.responder.not_supported("test").await;
            }
            got.sort();
            got
        }
    };
    assert_eq!(told("").await, ["live/public", "live/public/pushed"]);
    assert_eq!(
        told("secret").await,
        [
            "live/private/x",
            "live/private/x/pushed",
            "live/public",
            "live/public/pushed"
        ]
    );
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
async fn a_published_namespace_holds_its_request_credit_until_done() {
    // §9.1: MAX_REQUEST_ID grants new IDs as requests finish; a PUBLISH_NAMESPACE lives until
    // PUBLISH_NAMESPACE_DONE, so a session cannot publish namespaces without bound.
    let mut config = RelayConfig::default();
    config.session.request_window = 2;
    let relay = start(config);
    let (s, _e) = session(&relay.url("moqt"), "").await;
    let a = s
        .publish_namespace(TrackNamespace::from_path("c1"), VersionParameters::new())
        .await
        .unwrap();
    let _b = s
        .publish_namespace(TrackNamespace::from_path("c2"), VersionParameters::new())
        .await
        .unwrap();
    let third = s.publish_namespace(TrackNamespace::from_path("c3"), VersionParameters::new());
    tokio::pin!(third);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut third)
            .await
            .is_err(),
        "a third namespace was published within a request window of 2"
    );
    a.done().await.unwrap();
    assert!(tokio::time::timeout(T, third).await.unwrap().is_ok());
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

/// What a namespace subscriber hears within `wait`: ("ns" | "done", namespace) in order;
/// PUBLISH_NAMESPACE is answered after `answer_after`.
async fn namespace_events(
    events: &mut mpsc::Receiver<IncomingEvent>,
    wait: Duration,
    answer_after: Duration,
) -> Vec<(&'static str, String)> {
    let mut got = Vec::new();
    let until = tokio::time::Instant::now() + wait;
    while let Ok(Some(ev)) = tokio::time::timeout_at(until, events.recv()).await {
        match ev {
            IncomingEvent::Request(req) => {
                if let ControlMessage::PublishNamespace(m) = &req.message {
                    got.push(("ns", m.namespace.to_string()));
                    tokio::time::sleep(answer_after).await;
                    let id = req.responder.id();
                    let ok =
                        ControlMessage::PublishNamespaceOk(moqlink_model::control::RequestRef {
                            request_id: id,
                        });
                    let _ = req.responder.accept(ok).await;
                    std::mem::forget(req.followups);
                } else {
                    let _ = req.responder.not_supported("test").await;
                }
            }
            IncomingEvent::Notice(ControlMessage::PublishNamespaceDone(d)) => {
                got.push(("done", d.namespace.to_string()))
            }
            IncomingEvent::Notice(_) => {}
        }
    }
    got
}

#[tokio::test]
async fn a_namespace_two_sessions_publish_is_told_once_and_withdrawn_with_the_last() {
    let relay = start(RelayConfig::default());
    let url = relay.url("moqt");
    let (_watcher, mut events, _w) = watch(&url, "dup").await;
    let ns = TrackNamespace::from_path("dup/ns");
    let (a, _ea) = session(&url, "").await;
    let (b, _eb) = session(&url, "").await;
    let pa = a
        .publish_namespace(ns.clone(), VersionParameters::new())
        .await
        .unwrap();
    let pb = b
        .publish_namespace(ns.clone(), VersionParameters::new())
        .await
        .unwrap();
    // The same session announcing it again is refused; the first announcement stands.
    assert!(a
        .publish_namespace(ns.clone(), VersionParameters::new())
        .await
        .is_err());
    let wait = Duration::from_millis(300);
    let told = namespace_events(&mut events, wait, Duration::ZERO).await;
    assert_eq!(told, [("ns", "dup/ns".to_string())]);
    pa.done().await.unwrap();
    let told = namespace_events(&mut events, wait, Duration::ZERO).await;
    assert!(
        told.is_empty(),
        "withdrawn while b still publishes it: {told:?}"
    );
    pb.done().await.unwrap();
    let told = namespace_events(&mut events, wait, Duration::ZERO).await;
    assert_eq!(told, [("done", "dup/ns".to_string())]);
}

#[tokio::test]
async fn a_slow_namespace_subscriber_past_its_queue_still_learns_every_namespace() {
    // The relay queues at most 2 namespace events for this subscriber, which answers each
    // PUBLISH_NAMESPACE slowly: past the queue it is resynchronised from the registry, so it
    // learns every namespace once, and not those withdrawn meanwhile.
    let relay = start(limited(SessionLimits {
        namespace_events: 2,
        ..Default::default()
    }));
    let url = relay.url("moqt");
    let (_watcher, mut events, _w) = watch(&url, "slow").await;
    let (p, _e) = session(&url, "").await;
    let mut held = Vec::new();
    for i in 0..12 {
        let ns = TrackNamespace::from_path(&format!("slow/n{i}"));
        held.push(
            p.publish_namespace(ns, VersionParameters::new())
                .await
                .unwrap(),
        );
    }
    // Two withdrawn while the subscriber is still busy with the first ones.
    for gone in held.drain(10..) {
        gone.done().await.unwrap();
    }
    let told = namespace_events(
        &mut events,
        Duration::from_millis(2500),
        Duration::from_millis(40),
    )
    .await;
    let mut live: Vec<String> = Vec::new();
    for (kind, ns) in &told {
        match *kind {
            "ns" => {
                assert!(!live.contains(ns), "{ns} told twice: {told:?}");
                live.push(ns.clone());
            }
            _ => live.retain(|l| l != ns),
        }
    }
    live.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("slow/n{i}")).collect();
    want.sort();
    assert_eq!(live, want, "{told:?}");
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

#[tokio::test]
async fn an_ended_publish_frees_its_slot_and_is_offered_again_when_republished() {
    let relay = start(limited(SessionLimits {
        published_tracks: 1,
        ..Default::default()
    }));
    let url = relay.url("moqt");
    let (_watcher, mut events, _w) = watch(&url, "rep").await;
    let (p, _e) = session(&url, "").await;
    let mut offered = 0;
    for round in 0..3 {
        let track = TrackProducer::new(TrackName::new("rep", "t"), TrackConfig::default());
        let publication = p.publish(&track, true, VersionParameters::new()).await;
        assert!(
            publication.is_ok(),
            "round {round}: {:?}",
            publication.err()
        );
        let until = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(Some(IncomingEvent::Request(req))) =
            tokio::time::timeout_at(until, events.recv()).await
        {
            if matches!(req.message, ControlMessage::Publish(_)) {
                offered += 1;
                break;
            }
        }
        track.finish(TrackEnd {
            status: 0x2,
            reason: "done".into(),
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        offered, 3,
        "the namespace subscriber was offered the track {offered} times"
    );
}

#[tokio::test]
async fn a_publish_namespace_done_right_behind_its_request_withdraws_it() {
    let relay = start(RelayConfig::default());
    let url = relay.url("moqt");
    let (_watcher, mut events, _w) = watch(&url, "pipe").await;
    let (p, _e) = session(&url, "").await;
    let ns = TrackNamespace::from_path("pipe/x");
    let n = ns.clone();
    let _req = p
        .request(move |request_id| {
            ControlMessage::PublishNamespace(moqlink_model::control::PublishNamespace {
                request_id,
                namespace: n,
                parameters: VersionParameters::new(),
            })
        })
        .await
        .unwrap();
    p.send(ControlMessage::PublishNamespaceDone(
        moqlink_model::control::PublishNamespaceDone { namespace: ns },
    ))
    .await
    .unwrap();
    let told = namespace_events(&mut events, Duration::from_millis(500), Duration::ZERO).await;
    let announced = told.iter().filter(|(k, _)| *k == "ns").count();
    let withdrawn = told.iter().filter(|(k, _)| *k == "done").count();
    assert_eq!(announced, withdrawn, "left announced: {told:?}");
}

#[tokio::test]
async fn overlapping_namespace_subscriptions_sent_together_are_refused() {
    // §9.28: a prefix overlapping an active SUBSCRIBE_NAMESPACE gets NAMESPACE_PREFIX_OVERLAP,
    // even when both requests are in flight at once.
    let relay = start(RelayConfig::default());
    let (s, _e) = session(&relay.url("moqt"), "").await;
    let a = s.subscribe_namespace(TrackNamespace::from_path("ov"), VersionParameters::new());
    let b = s.subscribe_namespace(TrackNamespace::from_path("ov/x"), VersionParameters::new());
    let (a, b) = tokio::join!(a, b);
    let refused: Vec<u64> = [a.err(), b.err()]
        .iter()
        .flatten()
        .filter_map(|e| rejected(e).map(|r| r.0))
        .collect();
    assert_eq!(
        refused,
        [0x5],
        "exactly one refused with NAMESPACE_PREFIX_OVERLAP"
    );
}
