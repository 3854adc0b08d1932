//! The relay's HTTP side door: `/metrics` counters move by what a pub/sub run through the relay
//! did (scraped before and after, parsed, never compared as whole strings), `/state` lists the
//! sessions and the track, `/certificate.sha256` is the fingerprint the relay logs, `/healthz`
//! answers 200 and anything else 404.

use bytes::Bytes;
use moqlink::relay::auth::{AuthRules, Policy};
use moqlink::relay::{Relay, RelayConfig, SessionLimits, Upstream};
use moqlink_model::control::Filter;
use moqlink_model::params::VersionParameters;
use moqlink_model::{Blob, Location, TrackNamespace, Version};
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::lite::path_of;
use moqlink_transport::session::{Accepted, ClientTarget, Session};
use moqlink_transport::session::{SessionConfig, SubscribeOptions};
use moqlink_transport::tls::ServerIdentity;
use moqlink_transport::track::TrackProducer;
use moqlink_transport::track::{Object, SubgroupInfo, TrackConfig, TrackItem, TrackName};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

mod common;
use common::{client, rejected, rule, T};

/// How long a counter may take to reach the value a finished exchange implies.
const SETTLE: Duration = Duration::from_secs(10);

/// `GET path` over a fresh connection: (status, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    (status, body.to_string())
}

/// Sends `request` as is over a fresh connection; the status of the answer, if one came
/// before the connection closed.
fn raw(addr: SocketAddr, request: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    // The server may close while we still write (it read enough to refuse).
    let _ = s.write_all(request);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok())
}

/// One scrape, parsed: every sample as (metric name, labels) → value.
#[derive(Debug, Default)]
struct Scrape(BTreeMap<(String, BTreeMap<String, String>), f64>);

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut out = Scrape::default();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value: f64 = value.parse().expect("a number");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}').expect("closing brace")),
                None => (series, ""),
            };
            let mut map = BTreeMap::new();
            // Label values here never hold `,` or `"` (checked by the names the test uses).
            for pair in labels.split(',').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').expect("k=v");
                map.insert(k.to_string(), v.trim_matches('"').to_string());
            }
            out.0.insert((name.to_string(), map), value);
        }
        out
    }

    /// The sum of `name`'s samples whose labels include all of `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|((n, l), _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, v)| v)
            .sum()
    }

    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.0.keys().any(|(n, l)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
    }
}

/// [`get`] off the runtime's workers (the relay serves on them).
async fn aget(addr: SocketAddr, path: &'static str) -> (u16, String) {
    tokio::task::spawn_blocking(move || get(addr, path))
        .await
        .unwrap()
}

async fn scrape(addr: SocketAddr) -> Scrape {
    let (status, body) = aget(addr, "/metrics").await;
    assert_eq!(status, 200);
    Scrape::parse(&body)
}

/// Scrapes until `done` holds for the scrape (a counter the relay bumps right after the event
/// the test saw), for at most [`SETTLE`]; returns that scrape.
async fn scrape_until(addr: SocketAddr, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + SETTLE;
    loop {
        let s = scrape(addr).await;
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not reached; last scrape {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A relay with the HTTP side door on an ephemeral port: (UDP addr, HTTP addr, fingerprint).
fn start(mut config: RelayConfig) -> (SocketAddr, SocketAddr, String) {
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.http = Some("127.0.0.1:0".parse().unwrap());
    let identity = ServerIdentity::self_signed().unwrap();
    let relay = Relay::bind(config, &identity).unwrap();
    let addrs = (relay.local_addr().unwrap(), relay.http_addr().unwrap());
    tokio::spawn(relay.run(std::future::pending()));
    (addrs.0, addrs.1, identity.fingerprint().to_string())
}

const OBJECTS: u64 = 5;
const PAYLOAD: &[u8] = b"twelve bytes";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pub_sub_run_moves_the_counters_by_what_it_did() {
    // Anyone may publish and subscribe under moq-test; nothing else is allowed.
    let config = RelayConfig {
        auth: AuthRules::new(&[rule("moq-test", &["*"], &["*"])], Some(Policy::Deny)),
        ..Default::default()
    };
    let (udp, http, _) = start(config);
    let before = scrape(http).await;
    let name = TrackName::new("moq-test/metrics", "t");
    let track_label = [("track", "moq-test/metrics/t")];

    // A publisher over raw QUIC PUBLISHes the track; a subscriber over WebTransport subscribes.
    let (publisher, _pe) = moqlink_transport::client::connect(
        &client(),
        &format!("moqt://127.0.0.1:{}", udp.port()),
        SessionConfig::default(),
    )
    .await
    .unwrap();
    let track = TrackProducer::new(name.clone(), TrackConfig::default());
    let publication = publisher
        .publish(&track, true, VersionParameters::new())
        .await
        .unwrap();
    let (sub, _se) = moqlink_transport::client::connect(
        &client(),
        &format!("https://127.0.0.1:{}", udp.port()),
        SessionConfig::default(),
    )
    .await
    .unwrap();
    let opts = SubscribeOptions {
        filter: Filter::NextGroupStart,
        ..Default::default()
    };
    let subscription = sub.subscribe(name.clone(), opts).await.unwrap();

    // While subscribed: two sessions open, the track has one subscriber, /state shows both.
    let during = scrape(http).await;
    let open = |s: &Scrape, t| {
        s.get(
            "moqlink_sessions_open",
            &[("version", "draft-14"), ("transport", t)],
        )
    };
    assert_eq!(
        (open(&during, "quic"), open(&during, "webtransport")),
        (1.0, 1.0)
    );
    assert_eq!(during.get("moqlink_track_subscribers", &track_label), 1.0);
    let (status, state) = aget(http, "/state").await;
    assert_eq!(status, 200);
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let sessions = state["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{state}");
    let transports: Vec<&str> = sessions
        .iter()
        .map(|s| s["transport"].as_str().unwrap())
        .collect();
    assert!(
        transports.contains(&"quic") && transports.contains(&"webtransport"),
        "{state}"
    );
    assert!(
        sessions.iter().all(|s| s["version"] == "draft-14"),
        "{state}"
    );
    let tracks = state["tracks"].as_array().unwrap();
    assert!(
        tracks
            .iter()
            .any(|t| t["name"] == "moq-test/metrics/t" && t["subscribers"] == 1),
        "{state}"
    );

    // OBJECTS objects of one group go through.
    let mut sg = track.create_subgroup(SubgroupInfo::new(0, 0, 1));
    for id in 0..OBJECTS {
        sg.write(Object::new(id, Bytes::from_static(PAYLOAD)))
            .unwrap();
    }
    sg.finish();
    let mut consumer = subscription.consumer();
    let mut got = 0;
    while got < OBJECTS {
        match tokio::time::timeout(T, consumer.next())
            .await
            .unwrap()
            .unwrap()
        {
            TrackItem::Subgroup(mut s) => {
                while let Ok(o) = tokio::time::timeout(T, s.next()).await.unwrap() {
                    assert_eq!(o.payload, PAYLOAD);
                    got += 1;
                }
            }
            TrackItem::Datagram { .. } => panic!("no datagrams were sent"),
        }
    }

    // A SUBSCRIBE outside moq-test is refused UNAUTHORIZED (§13.1.2).
    let denied = match sub
        .subscribe(TrackName::new("secret", "t"), SubscribeOptions::default())
        .await
    {
        Ok(_) => panic!("a SUBSCRIBE outside moq-test was accepted"),
        Err(e) => e,
    };
    assert_eq!(rejected(&denied).map(|r| r.0), Some(0x1));

    let n = OBJECTS as f64;
    let delta = |a: &Scrape, name: &str, labels: &[(&str, &str)]| {
        a.get(name, labels) - before.get(name, labels)
    };
    let after = scrape_until(http, "objects out", |s| {
        s.get("moqlink_objects_out_total", &[]) - before.get("moqlink_objects_out_total", &[]) >= n
    })
    .await;
    assert_eq!(delta(&after, "moqlink_sessions_accepted_total", &[]), 2.0);
    assert_eq!(
        delta(
            &after,
            "moqlink_sessions_accepted_total",
            &[("version", "draft-14"), ("transport", "quic")]
        ),
        1.0
    );
    assert_eq!(delta(&after, "moqlink_objects_in_total", &[]), n);
    assert_eq!(
        delta(&after, "moqlink_objects_out_total", &[]),
        n,
        "objects out = objects delivered"
    );
    assert_eq!(
        delta(&after, "moqlink_bytes_in_total", &[]),
        n * PAYLOAD.len() as f64
    );
    assert_eq!(
        delta(&after, "moqlink_bytes_out_total", &[]),
        n * PAYLOAD.len() as f64
    );
    assert_eq!(delta(&after, "moqlink_forward_delay_seconds_count", &[]), n);
    assert_eq!(
        delta(
            &after,
            "moqlink_requests_total",
            &[("type", "SUBSCRIBE"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            &after,
            "moqlink_requests_total",
            &[("type", "PUBLISH"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            &after,
            "moqlink_requests_total",
            &[("type", "SUBSCRIBE"), ("outcome", "UNAUTHORIZED")]
        ),
        1.0
    );
    assert_eq!(delta(&after, "moqlink_auth_denials_total", &[]), 1.0);
    assert!(after.get("moqlink_cache_groups", &[]) >= 1.0);
    assert!(after.get("moqlink_cache_bytes", &[]) >= n * PAYLOAD.len() as f64);

    // The subscriber leaves: the track (still PUBLISHed) has no subscriber any more.
    subscription.unsubscribe().await;
    let gone = scrape_until(http, "subscriber gauge back to 0", |s| {
        s.get("moqlink_track_subscribers", &track_label) == 0.0
    })
    .await;
    assert!(
        gone.has("moqlink_track_subscribers", &track_label),
        "the track is still listed"
    );
    drop(publication);
}

/// A moq-lite (lite-02) session over raw QUIC (`moql://`).
async fn lite(udp: SocketAddr) -> moqlink_transport::lite::LiteSession<AnyConnection> {
    let url = format!("moql://127.0.0.1:{}", udp.port());
    let connected = client().connect(&url).await.unwrap();
    let target = connected.setup.map(ClientTarget::from).unwrap_or_default();
    let cfg = SessionConfig {
        versions: vec![Version::LITE_02],
        ..Default::default()
    };
    match Session::connect_any(connected.conn, cfg, target)
        .await
        .unwrap()
    {
        Accepted::Lite(s, mut events) => {
            // The relay's ANNOUNCE_PLEASE is left unanswered (this session publishes nothing).
            tokio::spawn(async move { while events.recv().await.is_some() {} });
            s
        }
        Accepted::Ietf(..) => panic!("draft-14 negotiated"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moq_lite_sessions_requests_and_objects_are_counted_too() {
    let config = RelayConfig {
        auth: AuthRules::new(&[rule("moq-test", &["*"], &["*"])], Some(Policy::Deny)),
        session: SessionConfig {
            versions: vec![Version::DRAFT_14, Version::LITE_02, Version::LITE_01],
            ..Default::default()
        },
        ..Default::default()
    };
    let (udp, http, _) = start(config);
    let before = scrape(http).await;
    let name = TrackName::new("moq-test/metrics", "lite");
    let (publisher, _pe) = moqlink_transport::client::connect(
        &client(),
        &format!("moqt://127.0.0.1:{}", udp.port()),
        SessionConfig::default(),
    )
    .await
    .unwrap();
    let track = TrackProducer::new(name.clone(), TrackConfig::default());
    let _publication = publisher
        .publish(&track, true, VersionParameters::new())
        .await
        .unwrap();
    let l = lite(udp).await;
    let path = path_of(&name.namespace);
    let refused = l
        .subscribe(
            &path_of(&TrackNamespace::from_path("secret")),
            &Blob::from("t"),
            0,
            TrackConfig::default(),
        )
        .await;
    assert!(
        refused.is_err(),
        "a lite SUBSCRIBE outside moq-test was served"
    );
    let sub = tokio::time::timeout(T, l.subscribe(&path, &name.name, 0, TrackConfig::default()))
        .await
        .unwrap()
        .unwrap();
    let mut sg = track.create_subgroup(SubgroupInfo::new(0, 0, 1));
    for id in 0..OBJECTS {
        sg.write(Object::new(id, Bytes::from_static(PAYLOAD)))
            .unwrap();
    }
    sg.finish();
    let mut consumer = sub.track().consume(Location::new(0, 0), None);
    let mut got = 0;
    while got < OBJECTS {
        let TrackItem::Subgroup(mut s) = tokio::time::timeout(T, consumer.next())
            .await
            .unwrap()
            .unwrap()
        else {
            panic!("moq-lite has no datagrams");
        };
        while let Ok(o) = tokio::time::timeout(T, s.next()).await.unwrap() {
            assert_eq!(o.payload, PAYLOAD);
            got += 1;
        }
    }
    let n = OBJECTS as f64;
    let after = scrape_until(http, "objects out", |s| {
        s.get("moqlink_objects_out_total", &[]) - before.get("moqlink_objects_out_total", &[]) >= n
    })
    .await;
    let delta =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    assert_eq!(
        delta(
            "moqlink_sessions_accepted_total",
            &[("version", "lite-02"), ("transport", "quic")]
        ),
        1.0
    );
    assert_eq!(
        delta("moqlink_sessions_open", &[("version", "lite-02")]),
        1.0
    );
    assert_eq!(
        delta("moqlink_objects_out_total", &[]),
        n,
        "objects out = objects delivered"
    );
    assert_eq!(
        delta("moqlink_bytes_out_total", &[]),
        n * PAYLOAD.len() as f64
    );
    assert_eq!(
        delta(
            "moqlink_requests_total",
            &[("type", "LITE_SUBSCRIBE"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "moqlink_requests_total",
            &[("type", "LITE_SUBSCRIBE"), ("outcome", "UNAUTHORIZED")]
        ),
        1.0
    );
    assert_eq!(delta("moqlink_auth_denials_total", &[]), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_reached_are_counted_by_limit() {
    let mut config = RelayConfig {
        limits: SessionLimits {
            subscriptions: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    config.server.max_sessions = 2;
    let (udp, http, _) = start(config);
    let before = scrape(http).await;
    let url = format!("moqt://127.0.0.1:{}", udp.port());
    let (publisher, _pe) =
        moqlink_transport::client::connect(&client(), &url, SessionConfig::default())
            .await
            .unwrap();
    let tracks = ["a", "b"]
        .map(|t| TrackProducer::new(TrackName::new("moq-test/limits", t), TrackConfig::default()));
    let mut publications = Vec::new();
    for t in &tracks {
        publications.push(
            publisher
                .publish(t, true, VersionParameters::new())
                .await
                .unwrap(),
        );
    }
    let (sub, _se) = moqlink_transport::client::connect(&client(), &url, SessionConfig::default())
        .await
        .unwrap();
    let _first = sub
        .subscribe(tracks[0].name().clone(), SubscribeOptions::default())
        .await
        .unwrap();
    // One subscription per session: the second is refused with INTERNAL_ERROR naming the limit.
    let second = sub
        .subscribe(tracks[1].name().clone(), SubscribeOptions::default())
        .await;
    let Err(e) = second else {
        panic!("a second subscription past the limit was accepted");
    };
    assert_eq!(rejected(&e).map(|r| r.0), Some(0x0));
    // Two sessions are established: a third connection is refused.
    let third = moqlink_transport::client::connect(&client(), &url, SessionConfig::default()).await;
    assert!(third.is_err(), "a session past max_sessions was accepted");
    let after = scrape_until(http, "max_sessions refusal", |s| {
        s.get("moqlink_limit_hits_total", &[("limit", "max_sessions")])
            > before.get("moqlink_limit_hits_total", &[("limit", "max_sessions")])
    })
    .await;
    let delta = |limit: &str| {
        let l = [("limit", limit)];
        after.get("moqlink_limit_hits_total", &l) - before.get("moqlink_limit_hits_total", &l)
    };
    assert_eq!(delta("subscriptions"), 1.0);
    assert_eq!(delta("max_sessions"), 1.0);
    assert_eq!(delta("fetches"), 0.0);
    assert_eq!(
        after.get(
            "moqlink_requests_total",
            &[("type", "SUBSCRIBE"), ("outcome", "INTERNAL_ERROR")]
        ),
        1.0
    );
    drop(publications);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_session_state_is_reported() {
    let (origin, origin_http, _) = start(RelayConfig::default());
    let edge_config = RelayConfig {
        upstream: Some(Upstream {
            url: format!("moqt://127.0.0.1:{}", origin.port()),
            client: client(),
            token: None,
        }),
        ..Default::default()
    };
    let (edge, edge_http, _) = start(edge_config);
    let state = |s: &Scrape, st: &str| s.get("moqlink_upstream_state", &[("state", st)]);
    let before = scrape(edge_http).await;
    assert_eq!(
        (state(&before, "idle"), state(&before, "connected")),
        (1.0, 0.0)
    );
    assert_eq!(state(&scrape(origin_http).await, "none"), 1.0);
    // A SUBSCRIBE no local publisher serves goes upstream (and is refused there).
    let (sub, _se) = moqlink_transport::client::connect(
        &client(),
        &format!("moqt://127.0.0.1:{}", edge.port()),
        SessionConfig::default(),
    )
    .await
    .unwrap();
    let refused = sub
        .subscribe(
            TrackName::new("moq-test/none", "t"),
            SubscribeOptions::default(),
        )
        .await;
    assert!(refused.is_err(), "a track nobody publishes was served");
    let after = scrape(edge_http).await;
    assert_eq!(
        (state(&after, "idle"), state(&after, "connected")),
        (0.0, 1.0)
    );
    let (_, body) = aget(edge_http, "/state").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["upstream"], "connected");
    // The origin counts the edge's connection as a draft-14 session over raw QUIC.
    let origin_after = scrape(origin_http).await;
    assert_eq!(
        origin_after.get(
            "moqlink_sessions_open",
            &[("version", "draft-14"), ("transport", "quic")]
        ),
        1.0
    );
}

#[tokio::test]
async fn health_certificate_and_unknown_paths() {
    let (_, http, fingerprint) = start(RelayConfig::default());
    let (status, body) = aget(http, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = aget(http, "/certificate.sha256").await;
    assert_eq!((status, body), (200, fingerprint));
    for path in ["/", "/metrics/", "/nope", "/state.json"] {
        let (status, _) = aget(http, path).await;
        assert_eq!(status, 404, "{path}");
    }
    // The listener's own limits: a request head over 8 KiB is refused, not buffered, and only
    // GET (and HEAD) are served.
    let status = tokio::task::spawn_blocking(move || {
        let big = format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(64 * 1024)
        );
        raw(http, big.as_bytes())
    })
    .await
    .unwrap();
    assert!(
        status.is_none_or(|s| s == 431),
        "an oversized head got {status:?}"
    );
    let status = tokio::task::spawn_blocking(move || {
        raw(
            http,
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
    })
    .await
    .unwrap();
    assert_eq!(status, Some(405));
}

/// Reads `moqlink relay`'s log until a line has `key=`; returns the value.
fn logged(lines: &mut impl Iterator<Item = String>, key: &str) -> String {
    let pat = format!("{key}=");
    for line in lines.by_ref() {
        if let Some(rest) = line.split(&pat).nth(1) {
            return rest.split_whitespace().next().unwrap_or("").to_string();
        }
    }
    panic!("the relay never logged {key}=");
}

#[test]
fn the_cli_serves_the_fingerprint_it_logs() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_moqlink"))
        .args([
            "relay",
            "--dev",
            "--bind",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
    let fingerprint = logged(&mut lines, "fingerprint");
    // The HTTP line comes after the relay's own listening line.
    let http = loop {
        let line = lines.next().expect("the relay's log ended");
        if line.contains("HTTP side door listening") {
            let addr = line.split("addr=").nth(1).unwrap().trim();
            break addr.parse::<SocketAddr>().unwrap();
        }
    };
    let (status, body) = get(http, "/certificate.sha256");
    let (health, _) = get(http, "/healthz");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    assert_eq!(body.len(), 64);
    assert_eq!(body, fingerprint);
    assert_eq!(health, 200);
}
