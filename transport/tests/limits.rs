//! Receive limits over real loopback QUIC: stream counts and the header deadline, the
//! partial-object budget, the object size cap, handshakes in progress, sessions, and the idle
//! timeout. Each test shows what the peer sees at the limit and that the session (or server)
//! goes on.

use bytes::{Bytes, BytesMut};
use moqlink_model::data::*;
use moqlink_model::{Blob, Encoding, Version};
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::data::SubgroupEvent;
use moqlink_transport::endpoint::{Client, ClientConfig, Connected, Incoming, Server};
use moqlink_transport::limits::{
    ConnectionLimits, ServerLimits, SESSION_LIMIT_CODE, SESSION_LIMIT_REASON, STOP_HEADER_TIMEOUT,
    STOP_OVER_BUDGET,
};
use moqlink_transport::session::{ClientTarget, Session, SessionConfig};
use moqlink_transport::tls::{ClientTls, ServerIdentity};
use moqlink_transport::{Connection, ConnectionError, RecvStream, SendStream, StreamError};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{timeout, Instant};
use wtransport::quinn;

const T: Duration = Duration::from_secs(10);

fn enc() -> Encoding {
    Encoding::new(Version::DRAFT_14)
}

fn server(limits: ServerLimits) -> Server {
    let identity = ServerIdentity::self_signed().unwrap();
    Server::bind_with("127.0.0.1:0".parse().unwrap(), &identity, limits).unwrap()
}

fn client(limits: ConnectionLimits) -> Client {
    Client::new(ClientConfig {
        tls: ClientTls::DisableVerify,
        limits,
        ..Default::default()
    })
    .unwrap()
}

fn url(server: &Server) -> String {
    format!("moqt://127.0.0.1:{}", server.local_addr().unwrap().port())
}

/// The same server as a WebTransport URL.
fn wt_url(server: &Server) -> String {
    format!("https://127.0.0.1:{}/", server.local_addr().unwrap().port())
}

/// Connects `c` to `server` over raw QUIC and accepts it there.
async fn connect(c: &Client, server: &Server) -> (Connected, Incoming) {
    connect_to(c, server, &url(server)).await
}

/// Connects `c` to `url` and accepts the session on `server`.
async fn connect_to(c: &Client, server: &Server, url: &str) -> (Connected, Incoming) {
    let (connected, incoming) = tokio::join!(c.connect(url), server.accept());
    (connected.unwrap(), incoming.unwrap())
}

/// A draft-14 session over raw QUIC; returns the client's raw connection too, for hand-made
/// streams.
async fn sessions(
    server: &Server,
) -> (
    AnyConnection,
    Session<AnyConnection>,
    Session<AnyConnection>,
) {
    sessions_at(server, &url(server)).await
}

/// A draft-14 session over `url` (raw QUIC or WebTransport), with the client's raw connection.
async fn sessions_at(
    server: &Server,
    url: &str,
) -> (
    AnyConnection,
    Session<AnyConnection>,
    Session<AnyConnection>,
) {
    let c = client(ConnectionLimits::default());
    let (connected, incoming) = connect_to(&c, server, url).await;
    let raw = connected.conn.clone();
    let target = connected
        .setup
        .clone()
        .map(ClientTarget::from)
        .unwrap_or_default();
    let conn = incoming.conn;
    let (cs, ss) = tokio::join!(
        Session::connect(connected.conn, SessionConfig::default(), target),
        Session::accept(conn, SessionConfig::default()),
    );
    (raw, cs.unwrap().0, ss.unwrap().0)
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

fn object(id: u64, payload: Bytes) -> SubgroupObject {
    SubgroupObject {
        object_id: id,
        extensions: Extensions::empty(),
        status: ObjectStatus::Normal,
        payload: Blob::from(payload),
    }
}

/// SUBGROUP_HEADER then the head of `obj` (its payload not included).
fn stream_head(h: &SubgroupHeader, obj: &SubgroupObject) -> Bytes {
    let mut b = BytesMut::new();
    h.encode(&mut b, enc()).unwrap();
    obj.encode_head(&mut b, h, None, enc()).unwrap();
    b.freeze()
}

/// A well-behaved stream still gets through: one small object on `alias`.
async fn small_object_arrives(raw: &AnyConnection, server: &Session<AnyConnection>, alias: u64) {
    let mut track = server.data().register_track(alias).unwrap();
    let h = header(alias, 1);
    let obj = object(0, Bytes::from_static(b"hello"));
    let mut s = timeout(T, raw.open_uni()).await.unwrap().unwrap();
    s.write_chunk(stream_head(&h, &obj)).await.unwrap();
    s.write(b"hello").await.unwrap();
    s.finish().unwrap();
    let mut sub = timeout(T, track.subgroups.recv()).await.unwrap().unwrap();
    loop {
        match timeout(T, sub.next()).await.unwrap().unwrap() {
            SubgroupEvent::Begun(_) => continue,
            ev => return assert_eq!(ev, SubgroupEvent::Object(obj)),
        }
    }
}

/// Old code: 1024 streams and no deadline, so the ninth stream opened at once and nothing was
/// ever stopped.
#[tokio::test]
async fn streams_past_the_cap_wait_and_headerless_streams_are_stopped_at_the_deadline() {
    let deadline = Duration::from_millis(500);
    let mut limits = ServerLimits::default();
    limits.connection.max_uni_streams = 8;
    limits.connection.header_deadline = deadline;
    let server = server(limits);
    let (raw, _client, session) = sessions(&server).await;

    let start = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..8 {
        let mut s = raw.open_uni().await.unwrap();
        // A subgroup stream type and nothing else: the header never completes.
        s.write(&[0x10]).await.unwrap();
        idle.push(s);
    }
    // The ninth waits for flow control (MAX_STREAMS) until the relay frees a slot.
    let ninth = tokio::spawn({
        let raw = raw.clone();
        async move {
            let s = raw.open_uni().await.unwrap();
            (s, Instant::now())
        }
    });
    for mut s in idle {
        let code = timeout(T, s.stopped())
            .await
            .expect("stopped at the deadline");
        assert_eq!(code, Some(STOP_HEADER_TIMEOUT));
        // Answered with RESET_STREAM, as QUIC asks: the stream is over on both sides.
        s.reset(code.unwrap()).unwrap();
    }
    assert!(start.elapsed() >= deadline);
    let (_ninth, opened) = timeout(T, ninth).await.unwrap().unwrap();
    assert!(
        opened.duration_since(start) >= deadline,
        "the ninth stream opened before any slot was freed"
    );
    // The session lives and a stream that says what it is still works.
    small_object_arrives(&raw, &session, 3).await;
    assert!(session.close_reason().is_none());
}

/// Old code: quinn's connection window was unlimited, so four streams whose reader had stalled
/// took four stream windows (about 5.5 MiB).
#[tokio::test]
async fn the_connection_window_bounds_what_stalled_streams_hold() {
    let mut limits = ServerLimits::default();
    limits.connection.receive_window = 2 * 1024 * 1024;
    limits.connection.stream_receive_window = 1024 * 1024;
    let server = server(limits);
    let (raw, _client, session) = sessions(&server).await;
    // Routed, but nobody reads the streams' objects: each reader stalls on its queue.
    let _track = session.data().register_track(1).unwrap();
    let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for group in 0..4 {
        let raw = raw.clone();
        let written = written.clone();
        tokio::spawn(async move {
            let h = header(1, group);
            let mut s = raw.open_uni().await.unwrap();
            let mut b = BytesMut::new();
            h.encode(&mut b, enc()).unwrap();
            s.write_chunk(b.split().freeze()).await.unwrap();
            let mut prev = None;
            for id in 0..4096u64 {
                let obj = object(id, Bytes::from(vec![1u8; 1024]));
                obj.encode_head(&mut b, &h, prev, enc()).unwrap();
                b.extend_from_slice(obj.payload.bytes());
                prev = Some(id);
                let len = b.len();
                if s.write_chunk(b.split().freeze()).await.is_err() {
                    return;
                }
                written.fetch_add(len, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
    // Wait until writing stops making progress.
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = written.load(std::sync::atomic::Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    // The window (2 MiB) plus what the stalled readers took in (a 64 KiB chunk and 32 queued
    // objects each), well under four stream windows.
    assert!(
        last < 3 * 1024 * 1024,
        "{last} bytes accepted on four stalled streams"
    );
    assert!(last > 1024 * 1024, "only {last} bytes accepted");
}

/// Old code: 100 bidirectional streams per connection.
#[tokio::test]
async fn bidirectional_streams_past_the_cap_wait_for_one_to_end() {
    let mut limits = ServerLimits::default();
    limits.connection.max_bi_streams = 4;
    let server = server(limits);
    let c = client(ConnectionLimits::default());
    let (connected, incoming) = connect(&c, &server).await;
    let (raw, conn) = (connected.conn, incoming.conn);
    let mut open = Vec::new();
    for _ in 0..4 {
        let (mut s, r) = raw.open_bi().await.unwrap();
        s.write(b"x").await.unwrap();
        open.push((s, r));
    }
    let fifth = tokio::spawn({
        let raw = raw.clone();
        async move { raw.open_bi().await.unwrap() }
    });
    // No slot frees by itself: the fifth cannot open however long it waits.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!fifth.is_finished(), "a fifth bidirectional stream opened");
    // The server ends one stream (both directions): a slot frees and the fifth opens.
    let (mut ss, mut sr) = conn.accept_bi().await.unwrap();
    ss.finish().unwrap();
    sr.stop(0);
    let (mut s, _r) = open.remove(0);
    s.finish().unwrap();
    timeout(T, fifth).await.unwrap().unwrap();
}

/// Writes a `size`-byte object on `alias` until the stream is stopped; returns the stop code.
async fn send_big_object(raw: &AnyConnection, alias: u64, size: usize) -> u64 {
    let h = header(alias, 0);
    let obj = object(0, Bytes::from(vec![0u8; size]));
    let mut s = raw.open_uni().await.unwrap();
    s.write_chunk(stream_head(&h, &obj)).await.unwrap();
    let payload = obj.payload.bytes().clone();
    let mut at = 0;
    loop {
        let end = (at + 1024 * 1024).min(size);
        match s.write_chunk(payload.slice(at..end)).await {
            Ok(()) if end < size => at = end,
            Ok(()) => panic!("the whole {size}-byte object was accepted"),
            Err(StreamError::Stopped(code)) => return code,
            Err(e) => panic!("unexpected write error {e}"),
        }
    }
}

/// The subscriber's view of a stream cut at a limit: begun, then reset with `code`.
async fn expect_reset(track: &mut moqlink_transport::data::TrackData, code: u64) {
    let mut sub = timeout(T, track.subgroups.recv()).await.unwrap().unwrap();
    loop {
        match timeout(T, sub.next()).await.unwrap().unwrap() {
            SubgroupEvent::Begun(_) => continue,
            ev => return assert_eq!(ev, SubgroupEvent::Reset(code)),
        }
    }
}

/// Old code: no budget; the 40 MiB object (over the 16 MiB object cap) closed the session.
#[tokio::test]
async fn an_object_over_the_partial_object_budget_is_stopped_and_the_session_lives() {
    let mut limits = ServerLimits::default();
    limits.connection.partial_object_bytes = 8 * 1024 * 1024;
    limits.connection.max_object_size = 64 * 1024 * 1024;
    let server = server(limits);
    // WebTransport sessions get the same limits as raw QUIC ones.
    for url in [url(&server), wt_url(&server)] {
        let (raw, _client, session) = sessions_at(&server, &url).await;
        let mut track = session.data().register_track(1).unwrap();
        let code = timeout(T, send_big_object(&raw, 1, 40 * 1024 * 1024))
            .await
            .unwrap();
        assert_eq!(code, STOP_OVER_BUDGET, "{url}");
        expect_reset(&mut track, STOP_OVER_BUDGET).await;
        assert!(session.close_reason().is_none());
        // The budget came back: another stream works.
        small_object_arrives(&raw, &session, 2).await;
        assert!(session.close_reason().is_none());
    }
}

/// Old code: an object over the size cap closed the whole session with INTERNAL_ERROR.
#[tokio::test]
async fn an_object_over_the_size_cap_is_stopped_and_the_session_lives() {
    let mut limits = ServerLimits::default();
    limits.connection.max_object_size = 1024 * 1024;
    let server = server(limits);
    let (raw, _client, session) = sessions(&server).await;
    let mut track = session.data().register_track(1).unwrap();
    let code = timeout(T, send_big_object(&raw, 1, 4 * 1024 * 1024))
        .await
        .unwrap();
    assert_eq!(code, STOP_OVER_BUDGET);
    expect_reset(&mut track, STOP_OVER_BUDGET).await;
    small_object_arrives(&raw, &session, 2).await;
    assert!(session.close_reason().is_none());
}

/// Completes QUIC with ALPN h3 and never sends the CONNECT request: a handshake in progress.
async fn stalled_h3(addr: std::net::SocketAddr) -> quinn::Connection {
    let verifier = ClientTls::DisableVerify.verifier().unwrap();
    let crypto = moqlink_transport::tls::client_config(verifier, b"h3").unwrap();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(crypto).unwrap();
    let cfg = quinn::ClientConfig::new(Arc::new(crypto));
    let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.connect_with(cfg, addr, "localhost")
        .unwrap()
        .await
        .unwrap()
}

/// Old code: no cap, the second client got through while the first handshake was stalled.
#[tokio::test]
async fn handshakes_past_the_cap_are_refused() {
    let limits = ServerLimits {
        max_handshakes: 1,
        handshake_timeout: Duration::from_millis(800),
        ..Default::default()
    };
    let server = server(limits);
    let addr = server.local_addr().unwrap();
    let stalled = timeout(T, stalled_h3(addr)).await.unwrap();
    assert_eq!(server.handshakes(), 1);
    let c = client(ConnectionLimits::default());
    let refused = timeout(T, c.connect(&url(&server))).await.unwrap();
    let err = refused
        .expect_err("a second handshake was let in")
        .to_string();
    assert!(err.contains("refused"), "{err}");
    // Once the stalled handshake times out, the slot is free again.
    timeout(T, stalled.closed()).await.unwrap();
    connect(&c, &server).await;
}

/// Old code: no cap, the second session was handed to the application.
#[tokio::test]
async fn sessions_past_the_cap_are_refused_with_a_reason() {
    let server = server(ServerLimits {
        max_sessions: 1,
        ..Default::default()
    });
    let port = server.local_addr().unwrap().port();
    let c = client(ConnectionLimits::default());
    for url in [
        format!("moqt://127.0.0.1:{port}"),
        format!("https://127.0.0.1:{port}/"),
    ] {
        let (first, inc) = tokio::join!(c.connect(&url), server.accept());
        let (first, inc) = (first.unwrap(), inc.unwrap());
        assert_eq!(server.sessions(), 1);
        let why = match timeout(T, c.connect(&url)).await.unwrap() {
            // Raw QUIC: the handshake completes, then the connection is closed with a reason
            // (which may overtake the client's view of the handshake).
            Ok(second) => timeout(T, second.conn.closed()).await.unwrap().to_string(),
            Err(e) => e.to_string(),
        };
        if url.starts_with("moqt") {
            let code = format!("{SESSION_LIMIT_CODE}");
            assert!(why.contains(SESSION_LIMIT_REASON), "{url}: {why}");
            assert!(why.contains(&code), "{url}: {why}");
        } else {
            // WebTransport: the CONNECT request is answered 429 Too Many Requests.
            assert!(why.contains("rejected"), "{url}: {why}");
        }
        assert_eq!(server.sessions(), 1);
        // Closing the first frees its slot.
        inc.conn.close(0, "bye");
        assert_eq!(server.sessions(), 0);
        drop(first);
    }
    let _third = connect(&c, &server).await;
    assert_eq!(server.sessions(), 1);
}

/// Waits (bounded) until the server counts `n` sessions.
async fn sessions_become(server: &Server, n: usize) {
    timeout(T, async {
        while server.sessions() != n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} sessions, not {n}", server.sessions()));
}

/// A slot is not pinned by a handle the application still holds once the peer has gone, and a
/// session whose handles are all dropped is closed (as quinn does) and frees its slot.
#[tokio::test]
async fn a_session_slot_is_freed_when_the_peer_closes_or_the_handles_drop() {
    let server = server(ServerLimits {
        max_sessions: 1,
        ..Default::default()
    });
    let c = client(ConnectionLimits::default());
    for url in [url(&server), wt_url(&server)] {
        let (first, _kept) = connect_to(&c, &server, &url).await;
        first.conn.close(0, "client bye");
        sessions_become(&server, 0).await;
        let (second, inc) = connect_to(&c, &server, &url).await;
        assert_eq!(server.sessions(), 1);
        drop(inc);
        let why = timeout(T, second.conn.closed()).await.unwrap();
        assert!(
            matches!(why, ConnectionError::ClosedByPeer { code: 0, .. }),
            "{url}: {why:?}"
        );
        sessions_become(&server, 0).await;
    }
}

/// A client whose endpoint stops dead (its runtime is dropped: no packet, no CONNECTION_CLOSE)
/// is closed at the server's idle timeout; a quiet client that sends no keep-alive of its own
/// stays, because the server's PINGs are acknowledged (RFC 9000 §10.1: receiving any packet
/// restarts the idle timer). Old code: without server PINGs, the quiet one was closed too; with
/// a 30 s server timeout, a vanished one held its session three times longer than now.
#[tokio::test]
async fn a_vanished_client_times_out_and_a_quiet_live_one_stays() {
    let mut limits = ServerLimits::default();
    assert_eq!(limits.connection.idle_timeout, Duration::from_secs(10));
    assert_eq!(limits.connection.keep_alive, Some(Duration::from_secs(4)));
    limits.connection.idle_timeout = Duration::from_millis(600);
    limits.connection.keep_alive = Some(Duration::from_millis(150));
    let server = server(limits);
    let quiet_limits = ConnectionLimits {
        keep_alive: None,
        ..Default::default()
    };
    let (_q, quiet) = connect(&client(quiet_limits.clone()), &server).await;

    // The vanishing client lives on a runtime of its own, dropped once connected.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let target = url(&server);
    let (dead_tx, dead_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let c = client(quiet_limits);
            let connected = c.connect(&target).await.unwrap();
            let _ = tx.send(());
            // Hold the connection (and its endpoint) until told to vanish.
            let _ = tokio::task::spawn_blocking(move || dead_rx.recv()).await;
            std::mem::forget(connected);
            std::mem::forget(c);
        });
        drop(rt);
    });
    let vanished = timeout(T, server.accept()).await.unwrap().unwrap();
    rx.await.unwrap();
    dead_tx.send(()).unwrap();
    thread.join().unwrap();

    let why = timeout(T, vanished.conn.closed()).await.unwrap();
    assert_eq!(why, ConnectionError::Transport("idle timeout".into()));
    // Well past the idle timeout, the quiet live client is still there.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still = timeout(Duration::from_millis(10), quiet.conn.closed()).await;
    assert!(still.is_err(), "quiet live session ended: {still:?}");
}

/// A smoke test: shutdown never waits on the peers longer than its drain time.
#[tokio::test]
async fn shutdown_returns_within_its_drain_time() {
    let server = server(ServerLimits::default());
    let c = client(ConnectionLimits::default());
    let (_conn, _inc) = connect(&c, &server).await;
    let start = Instant::now();
    server.shutdown(0, "bye", Duration::from_millis(300)).await;
    assert!(start.elapsed() < Duration::from_secs(2));
}
