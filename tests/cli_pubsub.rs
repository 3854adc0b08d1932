//! `moqlink pub`, `sub` and `fetch` end to end: the binary runs as a child process against an
//! in-test server on 127.0.0.1:0 that plays the other role itself (the relay does not route
//! yet): it subscribes to what `pub` announces, and serves a track to `sub` and `fetch`.

use bytes::Bytes;
use moqlink::model::codes::{PublishDoneCode, RequestErrorCode, SubscribeErrorCode};
use moqlink::model::control::{ControlMessage, FetchEnd, FetchKind, Filter, RequestRef};
use moqlink::model::params::VersionParameters;
use moqlink::model::{GroupOrder, Location, SessionErrorCode, TrackNamespace};
use moqlink::transport::endpoint::Server;
use moqlink::transport::session::*;
use moqlink::transport::tls::ServerIdentity;
use moqlink::transport::track::*;
use moqlink::AnySession;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Longest any single step may take.
const T: Duration = Duration::from_secs(8);

type Accepted = (AnySession, mpsc::Receiver<IncomingEvent>);

struct TestServer {
    port: u16,
    fingerprint: String,
    sessions: mpsc::Receiver<Accepted>,
    _server: Arc<Server>,
}

impl TestServer {
    async fn start() -> Self {
        let identity = ServerIdentity::self_signed().unwrap();
        let server = Arc::new(Server::bind("127.0.0.1:0".parse().unwrap(), &identity).unwrap());
        let port = server.local_addr().unwrap().port();
        let (tx, sessions) = mpsc::channel(8);
        let accepting = server.clone();
        tokio::spawn(async move {
            while let Some(incoming) = accepting.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Ok(s) = Session::accept(incoming.conn, SessionConfig::default()).await {
                        let _ = tx.send(s).await;
                    }
                });
            }
        });
        TestServer {
            port,
            fingerprint: identity.fingerprint().to_string(),
            sessions,
            _server: server,
        }
    }

    async fn next_session(&mut self) -> Accepted {
        tokio::time::timeout(T, self.sessions.recv())
            .await
            .expect("no session")
            .expect("server stopped")
    }

    /// Serves `track` to every session that connects.
    fn serve_all(mut self, track: TrackProducer) -> u16 {
        let port = self.port;
        tokio::spawn(async move {
            while let Some((session, events)) = self.sessions.recv().await {
                serve(session, events, track.clone());
            }
        });
        port
    }
}

/// Answers SUBSCRIBE and FETCH for `track`; other tracks do not exist.
fn serve(session: AnySession, mut events: mpsc::Receiver<IncomingEvent>, track: TrackProducer) {
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            let IncomingEvent::Request(req) = ev else {
                continue;
            };
            let ours = |ns: &TrackNamespace, n: &moqlink::model::Blob| {
                (*ns == track.name().namespace && *n == track.name().name).then_some(&track)
            };
            let _ = match &req.message {
                ControlMessage::Subscribe(s) => match ours(&s.namespace, &s.name) {
                    Some(t) => session.serve_subscribe(*req, t).await.map(drop),
                    None => {
                        req.responder
                            .reject(SubscribeErrorCode::TrackDoesNotExist, "nope")
                            .await
                    }
                },
                ControlMessage::Fetch(f) => {
                    let t = match &f.fetch {
                        FetchKind::Standalone {
                            namespace, name, ..
                        } => ours(namespace, name),
                        _ => None,
                    };
                    session.serve_fetch(*req, t).await
                }
                _ => req.responder.not_supported("this request").await,
            };
        }
    });
}

/// A running `moqlink` child process.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

impl Proc {
    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_moqlink"))
            .args(args)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning moqlink");
        let stdout = drain(child.stdout.take().unwrap());
        let stderr = drain(child.stderr.take().unwrap());
        Proc {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
        }
    }

    fn write(&mut self, data: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin closed");
        stdin.write_all(data).unwrap();
        stdin.flush().unwrap();
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the exit (killing the process after `T`), with everything it printed.
    async fn finish(mut self) -> Output {
        self.stdin = None;
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + T;
            let status = loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    break status;
                }
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    break self.child.wait().unwrap();
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            Output {
                status,
                stdout: self.stdout.join().unwrap(),
                stderr: self.stderr.join().unwrap(),
            }
        })
        .await
        .unwrap()
    }
}

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The next request, skipping notices.
async fn next_request(events: &mut mpsc::Receiver<IncomingEvent>) -> IncomingRequest {
    loop {
        match tokio::time::timeout(T, events.recv())
            .await
            .expect("no request")
        {
            Some(IncomingEvent::Request(r)) => return *r,
            Some(IncomingEvent::Notice(_)) => continue,
            None => panic!("session ended"),
        }
    }
}

/// Reads `n` objects (or all of them when `n` is None) as (group, object, payload).
async fn read(c: &mut TrackConsumer, n: Option<usize>) -> Vec<(u64, u64, String)> {
    let mut out = Vec::new();
    while n.is_none_or(|n| out.len() < n) {
        let Some(item) = tokio::time::timeout(T, c.next()).await.expect("no object") else {
            break;
        };
        match item {
            TrackItem::Subgroup(mut s) => {
                let g = s.info().group;
                while let Ok(o) = tokio::time::timeout(T, s.next()).await.expect("stalled") {
                    out.push((g, o.id, String::from_utf8_lossy(&o.payload).into_owned()));
                }
            }
            TrackItem::Datagram { group, object, .. } => out.push((
                group,
                object.id,
                String::from_utf8_lossy(&object.payload).into_owned(),
            )),
        }
    }
    out
}

fn obj(g: u64, o: u64, p: &str) -> (u64, u64, String) {
    (g, o, p.to_string())
}

/// A finished track with groups 0..4 of two objects each, payloads `g{G}o{O}`.
fn finished_track(ns: &str) -> TrackProducer {
    let track = TrackProducer::new(TrackName::new(ns, "t"), TrackConfig::default());
    for g in 0..4 {
        let mut sg = track.create_subgroup(SubgroupInfo::new(g, 0, 1));
        for o in 0..2 {
            sg.write(Object::new(o, Bytes::from(format!("g{g}o{o}"))))
                .unwrap();
        }
        sg.finish();
    }
    track.finish(TrackEnd {
        status: PublishDoneCode::TrackEnded,
        reason: "done".into(),
    });
    track
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_announces_and_serves_stdin_lines_as_objects() {
    let mut srv = TestServer::start().await;
    let url = format!("moqt://localhost:{}/moq", srv.port);
    let mut p = Proc::spawn(&[
        "pub",
        &url,
        "--namespace",
        "cli-test/pub",
        "--track",
        "lines",
        "--objects-per-group",
        "2",
        "--tls-fingerprint",
        &srv.fingerprint,
    ]);
    // An empty line is an empty object.
    p.write(b"alpha\nbeta\n\ndelta\n");
    let (session, mut events) = srv.next_session().await;
    let req = next_request(&mut events).await;
    let ControlMessage::PublishNamespace(ns) = &req.message else {
        panic!("expected PUBLISH_NAMESPACE, got {:?}", req.message)
    };
    assert_eq!(ns.namespace.to_string(), "cli-test/pub");
    let ok = ControlMessage::PublishNamespaceOk(RequestRef {
        request_id: ns.request_id,
    });
    req.responder.accept(ok).await.unwrap();
    let _keep = req.followups;

    // Other tracks do not exist; SUBSCRIBE_NAMESPACE is acknowledged.
    let err = session
        .subscribe(
            TrackName::new("cli-test/pub", "other"),
            SubscribeOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SessionError::Rejected {
                kind: moqlink::model::control::MessageType::SubscribeError,
                code: 0x4,
                ..
            }
        ),
        "{err:?}"
    );
    let nsub = session
        .subscribe_namespace(
            TrackNamespace::from_path("cli-test"),
            VersionParameters::new(),
        )
        .await
        .unwrap();

    let name = TrackName::new("cli-test/pub", "lines");
    let sub = session
        .subscribe(
            name.clone(),
            SubscribeOptions {
                filter: Filter::AbsoluteStart {
                    start: Location::new(0, 0),
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut c = sub.consumer();
    // Each group is its own stream: groups may arrive in any order.
    let mut got = read(&mut c, Some(4)).await;
    got.sort();
    assert_eq!(
        got,
        vec![
            obj(0, 0, "alpha"),
            obj(0, 1, "beta"),
            obj(1, 0, ""),
            obj(1, 1, "delta")
        ]
    );
    let status = session.track_status(&name).await.unwrap();
    assert_eq!(status.largest_location, Some(Location::new(1, 1)));
    let fetch = FetchKind::Standalone {
        namespace: name.namespace.clone(),
        name: name.name.clone(),
        start: Location::new(0, 1),
        end: FetchEnd {
            group: 1,
            object: None,
        },
    };
    let mut f = session
        .fetch(fetch, 1, GroupOrder::Original, VersionParameters::new())
        .await
        .unwrap();
    let mut fetched = Vec::new();
    while let Some(o) = tokio::time::timeout(T, f.next()).await.unwrap().unwrap() {
        fetched.push((o.group_id, o.object_id, o.payload.to_string()));
    }
    assert_eq!(
        fetched,
        vec![obj(0, 1, "beta"), obj(1, 0, ""), obj(1, 1, "delta")]
    );

    // The last line needs no newline; end of input ends the track.
    p.write(b"epsilon");
    p.close_stdin();
    assert_eq!(read(&mut c, None).await, vec![obj(2, 0, "epsilon")]);
    let done = tokio::time::timeout(T, sub.done()).await.unwrap().unwrap();
    assert_eq!(
        (done.status_code, done.stream_count),
        (PublishDoneCode::TrackEnded.code(), 3)
    );
    // Then PUBLISH_NAMESPACE_DONE and a clean close.
    let notice = tokio::time::timeout(T, events.recv()).await.unwrap();
    assert!(
        matches!(&notice, Some(IncomingEvent::Notice(n))
            if matches!(**n, ControlMessage::PublishNamespaceDone(_))),
        "{notice:?}"
    );
    let close = tokio::time::timeout(T, session.closed()).await.unwrap();
    assert_eq!((close.code, close.by_peer), (0, true), "{close}");
    drop(nsub);
    let out = p.finish().await;
    assert!(out.status.success(), "pub failed: {}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pub_sends_datagrams_with_publish() {
    let mut srv = TestServer::start().await;
    let url = format!("https://localhost:{}/moq", srv.port);
    let mut p = Proc::spawn(&[
        "pub",
        &url,
        "--namespace",
        "cli-test/dgram",
        "--track",
        "d",
        "--datagrams",
        "--priority",
        "7",
        "--announce",
        "false",
        "--publish",
        "--tls-disable-verify",
    ]);
    let (session, mut events) = srv.next_session().await;
    let req = next_request(&mut events).await;
    assert_eq!(req.message.message_type().name(), "PUBLISH");
    let sub = session
        .accept_publish(
            req,
            PublishAccept {
                filter: Filter::AbsoluteStart {
                    start: Location::new(0, 0),
                },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut c = sub.consumer();
    p.write(b"one\ntwo\n");
    p.close_stdin();
    let got = read(&mut c, None).await;
    assert_eq!(got, vec![obj(0, 0, "one"), obj(1, 0, "two")]);
    let done = tokio::time::timeout(T, sub.done()).await.unwrap().unwrap();
    assert_eq!(
        (done.status_code, done.stream_count),
        (PublishDoneCode::TrackEnded.code(), 0)
    );
    let out = p.finish().await;
    assert!(out.status.success(), "pub failed: {}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_prints_payloads_until_publish_done() {
    let port = TestServer::start()
        .await
        .serve_all(finished_track("cli-test/sub"));
    let url = format!("https://localhost:{port}/moq");
    let common = ["--namespace", "cli-test/sub", "--tls-disable-verify"];
    let ok = Proc::spawn(
        &[
            &["sub", &url, "--track", "t", "--filter", "absolute:1/1"],
            &common[..],
        ]
        .concat(),
    );
    let count = Proc::spawn(
        &[
            &[
                "sub",
                &url,
                "--track",
                "t",
                "--filter",
                "range:0-3",
                "--count",
                "3",
            ],
            &common[..],
        ]
        .concat(),
    );
    let missing = Proc::spawn(&[&["sub", &url, "--track", "nope"], &common[..]].concat());

    let out = ok.finish().await;
    assert!(out.status.success(), "sub failed: {}", stderr(&out));
    // Logs go to a pipe here, not a terminal: plain text, no ANSI escape sequences.
    assert!(!out.stderr.is_empty(), "sub logged nothing");
    assert!(
        !out.stderr.contains(&0x1b),
        "ANSI escapes in piped logs: {}",
        stderr(&out)
    );
    let got = lines(&out);
    // Subgroups are read concurrently: every object once, each group's objects in order.
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, ["g1o1", "g2o0", "g2o1", "g3o0", "g3o1"], "{got:?}");
    for g in 2..4 {
        let group: Vec<_> = got
            .iter()
            .filter(|l| l.starts_with(&format!("g{g}")))
            .collect();
        assert_eq!(group, [&format!("g{g}o0"), &format!("g{g}o1")]);
    }

    let out = count.finish().await;
    assert!(out.status.success(), "sub --count failed: {}", stderr(&out));
    assert_eq!(lines(&out).len(), 3, "{:?}", lines(&out));

    let out = missing.finish().await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("SUBSCRIBE_ERROR code 0x4 TRACK_DOES_NOT_EXIST"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_count_closes_a_live_subscription_cleanly() {
    let mut srv = TestServer::start().await;
    let url = format!("moqt://localhost:{}/moq", srv.port);
    let track = TrackProducer::new(TrackName::new("cli-test/live", "t"), TrackConfig::default());
    let p = Proc::spawn(&[
        "sub",
        &url,
        "--namespace",
        "cli-test/live",
        "--track",
        "t",
        "--filter",
        "next-group",
        "--count",
        "2",
        "--tls-fingerprint",
        &srv.fingerprint,
    ]);
    let (session, events) = srv.next_session().await;
    serve(session.clone(), events, track.clone());
    // Objects keep coming until the subscriber has had enough; the track never ends.
    let writer = tokio::spawn(async move {
        for g in 0.. {
            let mut sg = track.create_subgroup(SubgroupInfo::new(g, 0, 1));
            sg.write(Object::new(0, Bytes::from(format!("live{g}"))))
                .unwrap();
            sg.finish();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let out = p.finish().await;
    writer.abort();
    assert!(out.status.success(), "sub failed: {}", stderr(&out));
    let got = lines(&out);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|l| l.starts_with("live")), "{got:?}");
    let close = tokio::time::timeout(T, session.closed()).await.unwrap();
    assert_eq!(close.code, SessionErrorCode::NoError.code(), "{close}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_prints_a_range_and_reports_errors() {
    let port = TestServer::start()
        .await
        .serve_all(finished_track("cli-test/fetch"));
    let url = format!("moqt://localhost:{port}/moq");
    let common = [
        "--namespace",
        "cli-test/fetch",
        "--track",
        "t",
        "--tls-disable-verify",
    ];
    let whole = Proc::spawn(
        &[
            &["fetch", &url, "--start", "1/1", "--end", "2"],
            &common[..],
        ]
        .concat(),
    );
    let part = Proc::spawn(
        &[
            &["fetch", &url, "--start", "0", "--end", "1/0"],
            &common[..],
        ]
        .concat(),
    );
    let bad = Proc::spawn(&[&["fetch", &url, "--start", "9", "--end", "10"], &common[..]].concat());

    let out = whole.finish().await;
    assert!(out.status.success(), "fetch failed: {}", stderr(&out));
    assert_eq!(lines(&out), ["g1o1", "g2o0", "g2o1"]);
    let out = part.finish().await;
    assert!(out.status.success(), "fetch failed: {}", stderr(&out));
    assert_eq!(lines(&out), ["g0o0", "g0o1", "g1o0"]);
    let out = bad.finish().await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("FETCH_ERROR code 0x5 INVALID_RANGE"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_goes_in_client_setup_and_never_into_the_log() {
    let mut server = TestServer::start().await;
    let url = format!("moqt://127.0.0.1:{}/moq", server.port);
    let p = Proc::spawn(&[
        "sub",
        &url,
        "--namespace",
        "cli-test/tok",
        "--track",
        "t",
        "--tls-disable-verify",
        "--token",
        "s3cret-token",
    ]);
    let (session, mut events) = server.next_session().await;
    let tokens: Vec<String> = session
        .setup_tokens()
        .iter()
        .map(|t| String::from_utf8_lossy(&t.value).into_owned())
        .collect();
    assert_eq!(tokens, ["s3cret-token"]);
    let req = next_request(&mut events).await;
    req.responder
        .reject(RequestErrorCode::UNAUTHORIZED, "unauthorized")
        .await
        .unwrap();
    let out = p.finish().await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("CLIENT_SETUP"),
        "nothing logged at debug: {err}"
    );
    assert!(!err.contains("s3cret-token"), "the token was logged: {err}");
}
