//! Namespaces through the relay among strangers: namespace subscriptions see only what their
//! credentials allow, a namespace is told once and withdrawn with its last publisher, request
//! credit is held while a namespace is published, a slow subscriber is resynchronised past its
//! queue, DONE right behind its request and overlapping subscriptions are decided in order, and
//! an ended PUBLISH is offered again when republished.

mod common;

use common::{limited, rejected, rule, session, start, watch, with_rules, T};
use moqlink::relay::{RelayConfig, SessionLimits};
use moqlink_model::control::ControlMessage;
use moqlink_model::params::VersionParameters;
use moqlink_model::TrackNamespace;
use moqlink_transport::session::*;
use moqlink_transport::track::*;
use std::time::Duration;
use tokio::sync::mpsc;

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
            IncomingEvent::Notice(n) => {
                if let ControlMessage::PublishNamespaceDone(d) = *n {
                    got.push(("done", d.namespace.to_string()))
                }
            }
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
            status: moqlink_model::codes::PublishDoneCode::TrackEnded,
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
    // The watcher does hear what stays published.
    let _y = p
        .publish_namespace(
            TrackNamespace::from_path("pipe/y"),
            VersionParameters::new(),
        )
        .await
        .unwrap();
    let told = namespace_events(&mut events, Duration::from_millis(500), Duration::ZERO).await;
    assert_eq!(told, [("ns", "pipe/y".to_string())]);
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
