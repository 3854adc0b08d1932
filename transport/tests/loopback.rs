//! Real sockets on 127.0.0.1: one server port serving WebTransport (`https://`) and raw QUIC
//! (`moqt://`, `moql://`), exercised through the `Connection` traits.

use bytes::Bytes;
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::endpoint::{Alpn, Client, ClientConfig, Incoming, Server, SetupTarget};
use moqlink_transport::tls::{ClientTls, Fingerprint, ServerIdentity};
use moqlink_transport::{Connection, ConnectionError, RecvStream, SendStream, StreamError};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

fn start_server() -> (Server, SocketAddr, ServerIdentity) {
    let identity = ServerIdentity::self_signed().expect("dev cert");
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), &identity).expect("bind");
    let addr = server.local_addr().unwrap();
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    (server, addr, identity)
}

fn pinned(fp: Fingerprint) -> Client {
    Client::new(ClientConfig {
        tls: ClientTls::Pinned(vec![fp]),
        ..Default::default()
    })
    .unwrap()
}

async fn connect(server: &Server, client: &Client, url: &str) -> (AnyConnection, Incoming) {
    let (c, s) = tokio::join!(client.connect(url), server.accept());
    let c = c.unwrap_or_else(|e| panic!("connect {url}: {e}"));
    (c.conn, s.expect("server accepted"))
}

async fn read_all<R: RecvStream>(r: &mut R) -> Result<Vec<u8>, StreamError> {
    let mut out = Vec::new();
    while let Some(chunk) = r.read_chunk(64 * 1024).await? {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

async fn datagram_round_trip(from: &AnyConnection, to: &AnyConnection, payload: &'static [u8]) {
    assert!(from.max_datagram_size().unwrap() > 1000);
    // Datagrams are unreliable even on loopback: resend until one arrives.
    let got = timeout(Duration::from_secs(3), async {
        loop {
            from.send_datagram(Bytes::from_static(payload)).unwrap();
            if let Ok(d) = timeout(Duration::from_millis(200), to.recv_datagram()).await {
                return d.unwrap();
            }
        }
    })
    .await
    .expect("datagram arrived");
    assert_eq!(&got[..], payload);
}

/// Streams, resets, STOP_SENDING and datagrams in both directions; then a close seen by both.
async fn exercise(client: AnyConnection, server: AnyConnection, client_closes: bool) {
    // Bidirectional echo: the server echoes what it reads and finishes.
    let (mut cs, mut cr) = client.open_bi().await.unwrap();
    cs.set_priority(5);
    cs.write(b"hello ").await.unwrap();
    cs.write_chunk(Bytes::from_static(b"world")).await.unwrap();
    cs.finish().unwrap();
    let (mut ss, mut sr) = server.accept_bi().await.unwrap();
    let echo = tokio::spawn(async move {
        while let Some(chunk) = sr.read_chunk(3).await.unwrap() {
            assert!(chunk.len() <= 3);
            ss.write_chunk(chunk).await.unwrap();
        }
        ss.finish().unwrap();
    });
    assert_eq!(read_all(&mut cr).await.unwrap(), b"hello world");
    echo.await.unwrap();

    // Unidirectional with FIN, server to client.
    let mut su = server.open_uni().await.unwrap();
    su.write(b"uni data").await.unwrap();
    su.finish().unwrap();
    let mut cu = client.accept_uni().await.unwrap();
    assert_eq!(read_all(&mut cu).await.unwrap(), b"uni data");

    // Reset with a code, client to server (after the stream is known to the server).
    let mut cu = client.open_uni().await.unwrap();
    cu.write(b"x").await.unwrap();
    let mut su = server.accept_uni().await.unwrap();
    assert_eq!(&su.read_chunk(10).await.unwrap().unwrap()[..], b"x");
    cu.reset(0x2a).unwrap();
    assert_eq!(su.read_chunk(10).await, Err(StreamError::Reset(0x2a)));

    // STOP_SENDING with a code, server to client.
    let mut cu = client.open_uni().await.unwrap();
    cu.write(b"y").await.unwrap();
    let mut su = server.accept_uni().await.unwrap();
    assert_eq!(&su.read_chunk(10).await.unwrap().unwrap()[..], b"y");
    su.stop(0x7);
    assert_eq!(cu.stopped().await, Some(0x7));

    datagram_round_trip(&client, &server, b"datagram c->s").await;
    datagram_round_trip(&server, &client, b"datagram s->c").await;

    let (closer, other) = if client_closes {
        (&client, &server)
    } else {
        (&server, &client)
    };
    closer.close(0x10, "going away now");
    assert_eq!(
        other.closed().await,
        ConnectionError::ClosedByPeer {
            code: 0x10,
            reason: "going away now".into()
        }
    );
    assert_eq!(
        closer.closed().await,
        ConnectionError::ClosedLocally {
            code: 0x10,
            reason: "going away now".into()
        }
    );
    // Work after close fails with the close reason instead of hanging.
    assert!(matches!(
        other.open_uni().await,
        Err(ConnectionError::ClosedByPeer { code: 0x10, .. })
    ));
}

#[tokio::test]
async fn webtransport_and_raw_quic_share_one_port() {
    timeout(LIMIT, async {
        let (server, addr, identity) = start_server();
        let client = pinned(identity.fingerprint());
        let port = addr.port();

        for client_closes in [true, false] {
            let url = format!("https://127.0.0.1:{port}/moq/room?x=1");
            let (c, inc) = connect(&server, &client, &url).await;
            assert_eq!(inc.alpn, Alpn::H3);
            assert_eq!(inc.path.as_deref(), Some("/moq/room?x=1"));
            assert_eq!(inc.authority, Some(format!("127.0.0.1:{port}")));
            assert!(inc.wt_protocols.is_empty() && inc.wt_protocol.is_none());
            assert_eq!(c.alpn(), "h3");
            assert_eq!(c.kind(), moqlink_transport::TransportKind::WebTransport);
            exercise(c, inc.conn, client_closes).await;

            let url = format!("moqt://127.0.0.1:{port}/p?x=1");
            let (c, inc) = connect(&server, &client, &url).await;
            assert_eq!(inc.alpn, Alpn::Moq);
            assert_eq!(inc.path, None);
            assert_eq!(c.alpn(), "moq-00");
            assert_eq!(c.kind(), moqlink_transport::TransportKind::RawQuic);
            exercise(c, inc.conn, client_closes).await;
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn urls_carry_setup_target_and_lite_alpn() {
    timeout(LIMIT, async {
        let (server, addr, identity) = start_server();
        let client = pinned(identity.fingerprint());
        let port = addr.port();

        let url = format!("moqt://localhost:{port}/a/b?token=1");
        let (c, s) = tokio::join!(client.connect(&url), server.accept());
        let c = c.unwrap();
        assert_eq!(
            c.setup,
            Some(SetupTarget {
                path: "/a/b?token=1".into(),
                authority: format!("localhost:{port}"),
            })
        );
        let s = s.unwrap();
        assert_eq!(s.server_name.as_deref(), Some("localhost"));
        c.conn.close(0, "");

        let url = format!("moql://127.0.0.1:{port}");
        let (c, s) = tokio::join!(client.connect(&url), server.accept());
        let c = c.unwrap();
        assert_eq!(c.conn.alpn(), "moql");
        assert_eq!(c.setup.unwrap().path, "");
        assert_eq!(s.unwrap().alpn, Alpn::MoqLite);

        let url = format!("https://localhost:{port}/");
        let (c, s) = tokio::join!(client.connect(&url), server.accept());
        assert_eq!(c.unwrap().setup, None);
        assert_eq!(s.unwrap().path.as_deref(), Some("/"));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn webtransport_subprotocol_is_answered_when_offered() {
    timeout(LIMIT, async {
        let (server, addr, identity) = start_server();
        let client = Client::new(ClientConfig {
            tls: ClientTls::Pinned(vec![identity.fingerprint()]),
            wt_protocols: vec!["moqt-16".into(), "moq-00".into()],
            ..Default::default()
        })
        .unwrap();
        let url = format!("https://127.0.0.1:{}/", addr.port());
        let (_c, inc) = connect(&server, &client, &url).await;
        assert_eq!(inc.wt_protocols, vec!["moqt-16", "moq-00"]);
        assert_eq!(inc.wt_protocol.as_deref(), Some("moq-00"));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn certificate_verification_policies() {
    timeout(LIMIT, async {
        let (server, addr, identity) = start_server();
        let port = addr.port();
        let urls = [
            format!("https://localhost:{port}/"),
            format!("moqt://localhost:{port}"),
        ];

        // A wrong pin fails on both transports.
        let wrong = pinned(Fingerprint([0xab; 32]));
        for url in &urls {
            assert!(
                wrong.connect(url).await.is_err(),
                "{url} accepted a wrong pin"
            );
        }

        // Verification disabled accepts the self-signed certificate.
        let insecure = Client::new(ClientConfig {
            tls: ClientTls::DisableVerify,
            ..Default::default()
        })
        .unwrap();
        for url in &urls {
            let (c, _s) = connect(&server, &insecure, url).await;
            c.close(0, "");
        }

        // The development certificate as an extra trusted CA, without system roots.
        let dir = std::env::temp_dir().join(format!("moqlink-loopback-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("dev-cert.pem");
        std::fs::write(&ca, identity.to_pem().0).unwrap();
        let with_ca = Client::new(ClientConfig {
            tls: ClientTls::Verify {
                system_roots: false,
                extra_ca: vec![ca],
            },
            ..Default::default()
        })
        .unwrap();
        for url in &urls {
            let (c, _s) = connect(&server, &with_ca, url).await;
            c.close(0, "");
        }
        let _ = std::fs::remove_dir_all(&dir);

        // Verification without any trusted root cannot even be configured.
        let nothing = Client::new(ClientConfig {
            tls: ClientTls::Verify {
                system_roots: false,
                extra_ca: vec![],
            },
            ..Default::default()
        });
        assert!(nothing.is_err());
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_stalled_handshake_does_not_block_others() {
    timeout(LIMIT, async {
        let (server, addr, identity) = start_server();
        // A client that completes QUIC with ALPN h3 but never sends the CONNECT request.
        use moqlink_transport::endpoint::transport_config;
        use std::sync::Arc;
        use wtransport::quinn;
        let verifier = ClientTls::DisableVerify.verifier().unwrap();
        let crypto = moqlink_transport::tls::client_config(verifier, b"h3").unwrap();
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(crypto).unwrap();
        let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
        cfg.transport_config(Arc::new(transport_config()));
        let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        let stalled = ep
            .connect_with(cfg, addr, "localhost")
            .unwrap()
            .await
            .unwrap();

        // Meanwhile a normal client gets through on both transports.
        let client = pinned(identity.fingerprint());
        for url in [
            format!("moqt://127.0.0.1:{}", addr.port()),
            format!("https://127.0.0.1:{}/", addr.port()),
        ] {
            let (c, inc) = connect(&server, &client, &url).await;
            c.close(0, "");
            drop(inc);
        }
        stalled.close(0u32.into(), b"");
    })
    .await
    .expect("test timed out");
}

/// Against web-transport-quinn (the WebTransport stack of the moq-dev and cloudflare relays):
/// stream error codes and session close codes must survive the HTTP/3 code mapping, a
/// CLOSE_WEBTRANSPORT_SESSION capsule must reach `closed()`, and `WT-Protocol` must parse.
#[tokio::test]
async fn webtransport_codes_match_web_transport_quinn() {
    // A workspace-wide build may enable both of rustls' providers (another crate's dev
    // dependencies pull aws-lc-rs); web-transport-quinn then needs a process default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    timeout(LIMIT, async {
        let (server, addr, identity) = start_server();
        let url: url::Url = format!("https://127.0.0.1:{}/wtq", addr.port())
            .parse()
            .unwrap();
        let peer = web_transport_quinn::ClientBuilder::new()
            .with_server_certificate_hashes(vec![identity.fingerprint().0.to_vec()])
            .unwrap();
        let request =
            web_transport_quinn::proto::ConnectRequest::new(url.clone()).with_protocol("moq-00");
        let (theirs, inc) = tokio::join!(peer.connect(request), server.accept());
        let theirs = theirs.expect("web-transport-quinn connects");
        let inc = inc.unwrap();
        assert_eq!(inc.path.as_deref(), Some("/wtq"));
        assert_eq!(inc.wt_protocols, vec!["moq-00"]);
        assert_eq!(theirs.response().protocol.as_deref(), Some("moq-00"));
        let ours = inc.conn;

        // Their reset code reaches us unmapped, and ours reaches them.
        let mut ts = theirs.open_uni().await.unwrap();
        ts.write_all(b"a").await.unwrap();
        let mut or = ours.accept_uni().await.unwrap();
        assert_eq!(&or.read_chunk(10).await.unwrap().unwrap()[..], b"a");
        ts.reset(0x2a).unwrap();
        assert_eq!(or.read_chunk(10).await, Err(StreamError::Reset(0x2a)));

        let mut os = ours.open_uni().await.unwrap();
        os.write(b"b").await.unwrap();
        let mut tr = theirs.accept_uni().await.unwrap();
        let mut buf = [0u8; 1];
        tr.read_exact(&mut buf).await.unwrap();
        os.reset(0x1234).unwrap();
        let err = tr.read(&mut buf).await.unwrap_err();
        assert!(
            matches!(err, web_transport_quinn::ReadError::Reset(0x1234)),
            "{err:?}"
        );

        // STOP_SENDING both ways.
        let mut ts = theirs.open_uni().await.unwrap();
        ts.write_all(b"c").await.unwrap();
        let mut or = ours.accept_uni().await.unwrap();
        assert_eq!(&or.read_chunk(10).await.unwrap().unwrap()[..], b"c");
        or.stop(0x5);
        assert_eq!(ts.stopped().await.unwrap(), Some(0x5));

        // Datagrams carry only the payload.
        let got = timeout(Duration::from_secs(3), async {
            loop {
                theirs.send_datagram(Bytes::from_static(b"dg")).unwrap();
                if let Ok(d) = timeout(Duration::from_millis(200), ours.recv_datagram()).await {
                    return d.unwrap();
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(&got[..], b"dg");

        // Their capsule close is seen by us with its code and reason.
        theirs.close(0x7, b"capsule bye");
        assert_eq!(
            ours.closed().await,
            ConnectionError::ClosedByPeer {
                code: 0x7,
                reason: "capsule bye".into()
            }
        );

        // Our close is a CONNECTION_CLOSE with the mapped code (wtransport cannot send the
        // CLOSE_WEBTRANSPORT_SESSION capsule). web-transport-quinn decodes the mapped code, but
        // its CONNECT-stream reader usually notices the lost connection first and reports
        // LocallyClosed instead; either way the session ends promptly.
        let (theirs, inc) = tokio::join!(peer.connect(url), server.accept());
        let theirs = theirs.unwrap();
        inc.unwrap().conn.close(0x9, "server bye");
        let err = theirs.closed().await;
        assert!(
            matches!(&err, web_transport_quinn::SessionError::WebTransportError(
                web_transport_quinn::WebTransportError::Closed(9, r)) if r == "server bye")
                || matches!(
                    &err,
                    web_transport_quinn::SessionError::ConnectionError(
                        web_transport_quinn::quinn::ConnectionError::LocallyClosed
                    )
                ),
            "{err:?}"
        );
    })
    .await
    .expect("test timed out");
}
