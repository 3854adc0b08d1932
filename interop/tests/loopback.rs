//! Every case against a small in-process relay on loopback (one UDP port, WebTransport and raw
//! QUIC), the failure diagnostics against a relay that refuses, the case registry and the CLI
//! contract. The peer relays themselves are run by hand (see the interop report).

use moqlink_interop::cases::{self, Ctx, CASES};
use moqlink_interop::tap::{self, Outcome};
use moqlink_model::codes::SubscribeErrorCode;
use moqlink_model::control::{ControlMessage, FetchKind, RequestRef};
use moqlink_model::params::VersionParameters;
use moqlink_model::TrackNamespace;
use moqlink_transport::client::AnySession;
use moqlink_transport::endpoint::{Client, ClientConfig, Server};
use moqlink_transport::session::{
    IncomingEvent, IncomingRequest, PublishAccept, Session, SessionConfig, SubscribeOptions,
};
use moqlink_transport::tls::{ClientTls, ServerIdentity};
use moqlink_transport::track::{TrackName, TrackProducer};
use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How long a SUBSCRIBE for an unannounced namespace is held: long enough for
/// `subscribe-before-announce`'s publisher to connect and announce after its 500 ms (so the case
/// takes its SUBSCRIBE_OK path here), short enough for `subscribe-error`'s 1500 ms limit.
const NAMESPACE_WAIT: Duration = Duration::from_millis(1150);

/// How the test relay behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Routes like a complete relay.
    Complete,
    /// Refuses PUBLISH_NAMESPACE with UNAUTHORIZED.
    RefuseAnnounce,
}

#[derive(Default)]
struct State {
    /// (session, namespace, publisher) for every PUBLISH_NAMESPACE accepted.
    announced: Vec<(u64, TrackNamespace, AnySession)>,
    /// Relayed tracks: upstream subscriptions and accepted PUBLISHes.
    tracks: HashMap<TrackName, TrackProducer>,
    /// (session, prefix, subscriber) for every SUBSCRIBE_NAMESPACE.
    ns_subs: Vec<(u64, TrackNamespace, AnySession)>,
    /// Upstream subscriptions and forwarded namespaces, kept alive.
    keep: Vec<Box<dyn Any + Send>>,
}

/// A minimal relay: PUBLISH_NAMESPACE routing, one upstream subscription per track, PUBLISH,
/// SUBSCRIBE_NAMESPACE, FETCH and joining FETCH from the relayed track's history.
struct Relay {
    mode: Mode,
    state: Mutex<State>,
    next_id: AtomicU64,
}

fn covers(prefix: &TrackNamespace, ns: &TrackNamespace) -> bool {
    ns.fields().starts_with(prefix.fields())
}

impl Relay {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Binds on an ephemeral loopback port and serves every session.
    async fn start(mode: Mode) -> u16 {
        let identity = ServerIdentity::self_signed().expect("certificate");
        let server = Server::bind("127.0.0.1:0".parse().expect("addr"), &identity).expect("bind");
        let port = server.local_addr().expect("port").port();
        let relay = Arc::new(Relay {
            mode,
            state: Mutex::default(),
            next_id: AtomicU64::new(0),
        });
        tokio::spawn(async move {
            while let Some(incoming) = server.accept().await {
                let relay = relay.clone();
                tokio::spawn(async move {
                    if let Ok((s, events)) =
                        Session::accept(incoming.conn, SessionConfig::default()).await
                    {
                        relay.serve(s, events).await;
                    }
                });
            }
        });
        port
    }

    async fn serve(
        self: Arc<Self>,
        s: AnySession,
        mut events: tokio::sync::mpsc::Receiver<IncomingEvent>,
    ) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let me = self.clone();
        let closing = s.clone();
        tokio::spawn(async move {
            closing.closed().await;
            let mut st = me.state();
            st.announced.retain(|(sid, _, _)| *sid != id);
            st.ns_subs.retain(|(sid, _, _)| *sid != id);
        });
        while let Some(ev) = events.recv().await {
            match ev {
                IncomingEvent::Request(req) => {
                    tokio::spawn(self.clone().handle(id, s.clone(), *req));
                }
                IncomingEvent::Notice(n) => {
                    if let ControlMessage::PublishNamespaceDone(d) = *n {
                        self.state()
                            .announced
                            .retain(|(sid, ns, _)| !(*sid == id && *ns == d.namespace));
                    }
                }
            }
        }
    }

    /// The relayed track for `name`, subscribing upstream to its announcer if needed; a
    /// SUBSCRIBE waits up to [`NAMESPACE_WAIT`] for the namespace to be announced.
    async fn track_for(&self, name: &TrackName) -> Option<TrackProducer> {
        let deadline = tokio::time::Instant::now() + NAMESPACE_WAIT;
        let publisher = loop {
            {
                let st = self.state();
                if let Some(t) = st.tracks.get(name) {
                    if t.status().end.is_none() {
                        return Some(t.clone());
                    }
                }
                let found = st
                    .announced
                    .iter()
                    .rev()
                    .find(|(_, ns, _)| covers(ns, &name.namespace))
                    .map(|(_, _, s)| s.clone());
                if let Some(s) = found {
                    break s;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let sub = publisher
            .subscribe(name.clone(), SubscribeOptions::default())
            .await
            .ok()?;
        let track = sub.track().clone();
        let mut st = self.state();
        st.tracks.insert(name.clone(), track.clone());
        st.keep.push(Box::new(sub));
        Some(track)
    }

    /// Offers `track` to namespace subscriber `s` with PUBLISH.
    fn offer(&self, s: &AnySession, track: &TrackProducer) {
        let (s, track) = (s.clone(), track.clone());
        tokio::spawn(async move {
            let _ = s.publish(&track, true, VersionParameters::new()).await;
        });
    }

    async fn handle(self: Arc<Self>, id: u64, s: AnySession, req: IncomingRequest) {
        use ControlMessage as M;
        let _ = match &req.message {
            M::PublishNamespace(m) if self.mode == Mode::RefuseAnnounce => {
                let _ = m;
                req.responder
                    .reject(
                        moqlink_model::codes::PublishNamespaceErrorCode::Unauthorized,
                        "not allowed here",
                    )
                    .await
            }
            M::PublishNamespace(m) => {
                let ns = m.namespace.clone();
                let subs: Vec<AnySession> = {
                    let mut st = self.state();
                    st.announced.push((id, ns.clone(), s.clone()));
                    st.ns_subs
                        .iter()
                        .filter(|(sid, p, _)| *sid != id && covers(p, &ns))
                        .map(|(_, _, sub)| sub.clone())
                        .collect()
                };
                for sub in subs {
                    if let Ok(p) = sub
                        .publish_namespace(ns.clone(), VersionParameters::new())
                        .await
                    {
                        self.state().keep.push(Box::new(p));
                    }
                }
                let ok = M::PublishNamespaceOk(RequestRef {
                    request_id: m.request_id,
                });
                req.responder.accept(ok).await
            }
            M::Subscribe(m) => {
                let name = TrackName {
                    namespace: m.namespace.clone(),
                    name: m.name.clone(),
                };
                match self.track_for(&name).await {
                    Some(t) => s.serve_subscribe(req, &t).await.map(|_| ()),
                    None => {
                        req.responder
                            .reject(SubscribeErrorCode::TrackDoesNotExist, "no such track")
                            .await
                    }
                }
            }
            M::Publish(p) => {
                let name = TrackName {
                    namespace: p.namespace.clone(),
                    name: p.name.clone(),
                };
                match s.accept_publish(req, PublishAccept::default()).await {
                    Ok(sub) => {
                        let track = sub.track().clone();
                        let subs: Vec<AnySession> = {
                            let mut st = self.state();
                            st.tracks.insert(name.clone(), track.clone());
                            st.keep.push(Box::new(sub));
                            st.ns_subs
                                .iter()
                                .filter(|(sid, p, _)| *sid != id && covers(p, &name.namespace))
                                .map(|(_, _, sub)| sub.clone())
                                .collect()
                        };
                        for sub in subs {
                            self.offer(&sub, &track);
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            M::SubscribeNamespace(m) => {
                let prefix = m.namespace_prefix.clone();
                let ok = M::SubscribeNamespaceOk(RequestRef {
                    request_id: m.request_id,
                });
                let r = req.responder.accept(ok).await;
                let (namespaces, tracks) = {
                    let mut st = self.state();
                    st.ns_subs.push((id, prefix.clone(), s.clone()));
                    let namespaces: Vec<TrackNamespace> = st
                        .announced
                        .iter()
                        .filter(|(sid, ns, _)| *sid != id && covers(&prefix, ns))
                        .map(|(_, ns, _)| ns.clone())
                        .collect();
                    let tracks: Vec<TrackProducer> = st
                        .tracks
                        .iter()
                        .filter(|(n, t)| covers(&prefix, &n.namespace) && t.status().end.is_none())
                        .map(|(_, t)| t.clone())
                        .collect();
                    (namespaces, tracks)
                };
                for ns in namespaces {
                    if let Ok(p) = s.publish_namespace(ns, VersionParameters::new()).await {
                        self.state().keep.push(Box::new(p));
                    }
                }
                for t in tracks {
                    self.offer(&s, &t);
                }
                r
            }
            M::Fetch(f) => {
                let track = match &f.fetch {
                    FetchKind::Standalone {
                        namespace, name, ..
                    } => self
                        .state()
                        .tracks
                        .get(&TrackName {
                            namespace: namespace.clone(),
                            name: name.clone(),
                        })
                        .cloned(),
                    _ => None,
                };
                s.serve_fetch(req, track.as_ref()).await
            }
            M::TrackStatus(m) => {
                let track = self
                    .state()
                    .tracks
                    .get(&TrackName {
                        namespace: m.namespace.clone(),
                        name: m.name.clone(),
                    })
                    .cloned();
                s.serve_track_status(req, track.as_ref()).await
            }
            _ => req.responder.not_supported("this request").await,
        };
    }
}

fn ctx(url: String) -> Ctx {
    Ctx {
        relay: url,
        client: Client::new(ClientConfig {
            tls: ClientTls::DisableVerify,
            ..Default::default()
        })
        .expect("client"),
        session: SessionConfig::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_passes_against_a_complete_relay_over_both_transports() {
    let port = Relay::start(Mode::Complete).await;
    for url in [
        format!("moqt://127.0.0.1:{port}"),
        format!("https://127.0.0.1:{port}/"),
    ] {
        let ctx = ctx(url.clone());
        let mut results = Vec::new();
        for case in CASES {
            results.push(cases::run(case, &ctx).await);
        }
        let doc = tap::render(&[format!("Relay: {url}")], &results);
        assert!(results.iter().all(|r| r.outcome == Outcome::Pass), "{doc}");
        // Two-connection cases name both connections; one-connection cases one.
        for r in &results {
            let keys: Vec<&str> = r.connections.iter().map(|(k, _)| *k).collect();
            match r.id {
                "setup-only"
                | "announce-only"
                | "publish-namespace-done"
                | "subscribe-error"
                | "publish-track-only" => assert_eq!(keys, ["connection_id"], "{}", r.id),
                _ => {
                    assert!(keys.contains(&"publisher_connection_id"), "{}", r.id);
                    assert!(keys.contains(&"subscriber_connection_id"), "{}", r.id);
                }
            }
            assert!(r.message.is_some(), "{} passed without a message", r.id);
        }
        let held = &results[5];
        assert!(
            held.message
                .as_deref()
                .is_some_and(|m| m.starts_with("SUBSCRIBE_OK after the delayed")),
            "{doc}"
        );
        let subscribe_error = &results[3];
        assert!(
            subscribe_error
                .message
                .as_deref()
                .is_some_and(|m| m.contains("0x4 (TRACK_DOES_NOT_EXIST)")),
            "{doc}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_relay_fails_with_what_it_sent() {
    let port = Relay::start(Mode::RefuseAnnounce).await;
    let ctx = ctx(format!("moqt://127.0.0.1:{port}"));
    let case = cases::find("announce-only").expect("case");
    let r = cases::run(case, &ctx).await;
    let Outcome::Fail {
        expected, received, ..
    } = &r.outcome
    else {
        panic!("announce-only passed against a relay refusing PUBLISH_NAMESPACE")
    };
    assert_eq!(expected, "PUBLISH_NAMESPACE_OK");
    assert_eq!(
        received,
        "PUBLISH_NAMESPACE_ERROR code 0x1 (UNAUTHORIZED) \"not allowed here\""
    );
    let doc = tap::render(&[], std::slice::from_ref(&r));
    assert!(doc.contains("not ok 1 - announce-only\n  ---\n"), "{doc}");
    assert!(doc.contains("  connection_id: "), "{doc}");
    // subscribe-error still passes: the refusal is what it checks.
    let r = cases::run(cases::find("subscribe-error").expect("case"), &ctx).await;
    assert_eq!(r.outcome, Outcome::Pass);
}

#[tokio::test]
async fn nobody_listening_fails_setup_within_the_limit() {
    // A port nothing listens on: setup-only must fail (not hang) within its 2 s limit.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = socket.local_addr().expect("addr").port();
    drop(socket);
    let ctx = ctx(format!("moqt://127.0.0.1:{port}"));
    let r = cases::run(cases::find("setup-only").expect("case"), &ctx).await;
    assert!(r.failed());
    assert!(r.duration < Duration::from_millis(2500));
}

#[test]
fn registry_lists_the_runner_cases_then_the_data_plane_cases() {
    let ids: Vec<&str> = CASES.iter().map(|c| c.id).collect();
    assert_eq!(
        ids,
        [
            "setup-only",
            "announce-only",
            "publish-namespace-done",
            "subscribe-error",
            "announce-subscribe",
            "subscribe-before-announce",
            "publish-track-only",
            "publish-track-subscribe",
            "data-subgroup-basic",
            "namespace-discovery",
            "fetch",
            "join",
        ]
    );
    assert!(CASES.iter().all(|c| c.implemented));
    assert!(cases::find("rendezvous-timeout").is_none());
    let limit = |id| cases::find(id).map(|c| c.limit.as_millis());
    assert_eq!(limit("setup-only"), Some(2000));
    assert_eq!(limit("announce-subscribe"), Some(3000));
    assert_eq!(limit("subscribe-before-announce"), Some(3500));
    assert_eq!(limit("publish-track-subscribe"), Some(10_000));
}

#[test]
fn cli_lists_cases_and_refuses_unknown_ones_with_127() {
    let bin = env!("CARGO_BIN_EXE_moqlink-interop");
    let out = std::process::Command::new(bin)
        .arg("--list")
        .output()
        .expect("run");
    assert!(out.status.success());
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let ids: Vec<String> = CASES.iter().map(|c| c.id.to_string()).collect();
    assert_eq!(listed, ids);
    let out = std::process::Command::new(bin)
        .args(["-t", "no-such-case"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(127));
    assert!(out.stdout.is_empty(), "stdout must stay TAP-only");
}
