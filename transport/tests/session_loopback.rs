//! Sessions over real loopback sockets, on one server port, for WebTransport (`https://`) and raw
//! QUIC (`moqt://`): version negotiation, request-ID rules, PATH rules, GOAWAY and close codes as
//! the other side sees them.

use bytes::BytesMut;
use moqlink_model::control::*;
use moqlink_model::params::{SetupParameter, SetupParameters};
use moqlink_model::{Blob, Encoding, GroupOrder, SessionErrorCode, TrackNamespace, Version};
use moqlink_transport::client::{connect, AnySession};
use moqlink_transport::endpoint::{Client, ClientConfig, Server};
use moqlink_transport::session::*;
use moqlink_transport::tls::{ClientTls, ServerIdentity};
use moqlink_transport::{Connection, ConnectionError, RecvStream, SendStream};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const T: Duration = Duration::from_secs(5);

/// A server accepting sessions with `versions`, handing each to the test.
async fn server(versions: &[Version]) -> (u16, mpsc::Receiver<Result<AnySession, SessionError>>) {
    let identity = ServerIdentity::self_signed().unwrap();
    let server = Arc::new(Server::bind("127.0.0.1:0".parse().unwrap(), &identity).unwrap());
    let port = server.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel(16);
    let cfg = SessionConfig {
        versions: versions.to_vec(),
        request_window: 2,
        ..Default::default()
    };
    tokio::spawn(async move {
        while let Some(incoming) = server.accept().await {
            let tx = tx.clone();
            let cfg = cfg.clone();
            tokio::spawn(async move {
                let r = Session::accept(incoming.conn, cfg)
                    .await
                    .map(|(s, events)| {
                        // Keep requests flowing to nobody: they get NOT_SUPPORTED.
                        drop(events);
                        s
                    });
                let _ = tx.send(r).await;
            });
        }
    });
    (port, rx)
}

fn client() -> Client {
    Client::new(ClientConfig {
        tls: ClientTls::DisableVerify,
        ..Default::default()
    })
    .unwrap()
}

fn urls(port: u16) -> [String; 2] {
    [
        format!("https://localhost:{port}/moq"),
        format!("moqt://localhost:{port}/moq?x=1"),
    ]
}

fn cfg(versions: &[Version]) -> SessionConfig {
    SessionConfig {
        versions: versions.to_vec(),
        ..Default::default()
    }
}

#[tokio::test]
async fn negotiation_over_both_transports() {
    let (port, mut accepted) = server(&[Version::DRAFT_14, Version::DRAFT_16]).await;
    for url in urls(port) {
        // Match, with the client's preference order winning.
        let (s, _) = connect(
            &client(),
            &url,
            cfg(&[Version::DRAFT_16, Version::DRAFT_14]),
        )
        .await
        .unwrap();
        assert_eq!(s.version(), Version::DRAFT_16, "{url}");
        let server_side = accepted.recv().await.unwrap().unwrap();
        assert_eq!(server_side.version(), Version::DRAFT_16);
        // No match: both sides see VERSION_NEGOTIATION_FAILED.
        let err = connect(&client(), &url, cfg(&[Version(0xff00_0001)]))
            .await
            .err()
            .expect("connected without a common version");
        assert!(
            err.to_string().contains("VERSION_NEGOTIATION_FAILED"),
            "{url}: {err}"
        );
        let Err(SessionError::Closed(c)) = accepted.recv().await.unwrap() else {
            panic!("{url}: server accepted")
        };
        assert_eq!(c.code, SessionErrorCode::VersionNegotiationFailed.code());
    }
}

#[tokio::test]
async fn raw_quic_sends_path_and_authority_webtransport_does_not() {
    let (port, mut accepted) = server(&[Version::DRAFT_14]).await;
    let [wt, quic] = urls(port);
    let (_c, _) = connect(&client(), &quic, cfg(&[Version::DRAFT_14]))
        .await
        .unwrap();
    let s = accepted.recv().await.unwrap().unwrap();
    assert_eq!(
        s.peer_setup().path().map(|p| p.to_string()),
        Some("/moq?x=1".into())
    );
    assert_eq!(
        s.peer_setup().authority().map(|p| p.to_string()),
        Some(format!("localhost:{port}"))
    );
    let (_c, _) = connect(&client(), &wt, cfg(&[Version::DRAFT_14]))
        .await
        .unwrap();
    let s = accepted.recv().await.unwrap().unwrap();
    assert_eq!(s.peer_setup().path(), None);
    assert_eq!(s.peer_setup().authority(), None);
}

/// Speaks raw control messages to the server over a real connection.
struct Raw<C: Connection> {
    conn: C,
    send: C::Send,
    recv: C::Recv,
    reader: ControlReader,
}

impl<C: Connection> Raw<C> {
    async fn open(conn: C, params: SetupParameters) -> Self {
        let (send, recv) = conn.open_bi().await.unwrap();
        let mut raw = Raw {
            conn,
            send,
            recv,
            reader: ControlReader::new(Version::DRAFT_14),
        };
        raw.write(ControlMessage::ClientSetup(ClientSetup {
            versions: vec![Version::DRAFT_14],
            parameters: params,
        }))
        .await;
        raw
    }

    async fn write(&mut self, msg: ControlMessage) {
        let mut b = BytesMut::new();
        msg.encode(&mut b, Encoding::default()).unwrap();
        self.send.write_chunk(b.freeze()).await.unwrap();
    }

    async fn read(&mut self) -> Option<ControlMessage> {
        loop {
            if let Some(m) = self.reader.next_message().unwrap() {
                return Some(m);
            }
            match tokio::time::timeout(T, self.recv.read_chunk(4096)).await {
                Ok(Ok(Some(c))) => self.reader.push(c),
                _ => return None,
            }
        }
    }

    async fn closed_code(&self) -> u64 {
        match tokio::time::timeout(T, self.conn.closed()).await.unwrap() {
            ConnectionError::ClosedByPeer { code, .. } => code,
            other => panic!("unexpected close {other:?}"),
        }
    }
}

fn subscribe(request_id: u64) -> ControlMessage {
    ControlMessage::Subscribe(Subscribe {
        request_id,
        namespace: TrackNamespace::from_strs(&["moq-test", "interop"]),
        name: Blob::from("test-track"),
        subscriber_priority: 1,
        group_order: GroupOrder::Original,
        forward: true,
        filter: Filter::NextGroupStart,
        parameters: Default::default(),
    })
}

#[tokio::test]
async fn request_id_rules_and_answers_over_both_transports() {
    let (port, _accepted) = server(&[Version::DRAFT_14]).await;
    for url in urls(port) {
        let conn = client().connect(&url).await.unwrap().conn;
        let mut raw = Raw::open(conn, SetupParameters::new()).await;
        let Some(ControlMessage::ServerSetup(s)) = raw.read().await else {
            panic!("{url}: no SERVER_SETUP")
        };
        // Window 2 for a client: IDs 0 and 2.
        assert_eq!(s.parameters.max_request_id(), Some(4));
        raw.write(subscribe(0)).await;
        let Some(ControlMessage::SubscribeError(e)) = raw.read().await else {
            panic!("{url}: no SUBSCRIBE_ERROR")
        };
        assert_eq!(e.error_code, 0x3, "NOT_SUPPORTED");
        // Wrong parity closes with INVALID_REQUEST_ID.
        raw.write(subscribe(3)).await;
        assert_eq!(
            raw.closed_code().await,
            SessionErrorCode::InvalidRequestId.code(),
            "{url}"
        );
    }
}

#[tokio::test]
async fn path_over_webtransport_is_invalid_path() {
    let (port, _accepted) = server(&[Version::DRAFT_14]).await;
    let conn = client().connect(&urls(port)[0]).await.unwrap().conn;
    let mut p = SetupParameters::new();
    p.push(SetupParameter::Path {
        value: Blob::from("/x"),
    });
    let raw = Raw::open(conn, p).await;
    assert_eq!(
        raw.closed_code().await,
        SessionErrorCode::InvalidPath.code()
    );
}

#[tokio::test]
async fn goaway_and_close_codes_reach_the_client() {
    let (port, mut accepted) = server(&[Version::DRAFT_14]).await;
    for url in urls(port) {
        let (c, _) = connect(&client(), &url, cfg(&[Version::DRAFT_14]))
            .await
            .unwrap();
        let s = accepted.recv().await.unwrap().unwrap();
        s.goaway("moqt://other:1/", Duration::from_millis(200))
            .await
            .unwrap();
        let close = tokio::time::timeout(T, c.closed()).await.unwrap();
        assert_eq!(
            c.goaway_received().as_deref(),
            Some("moqt://other:1/"),
            "{url}"
        );
        assert_eq!(close.code, SessionErrorCode::GoawayTimeout.code(), "{url}");
        assert!(close.by_peer);

        let (c, _) = connect(&client(), &url, cfg(&[Version::DRAFT_14]))
            .await
            .unwrap();
        let s = accepted.recv().await.unwrap().unwrap();
        c.close(SessionErrorCode::ProtocolViolation, "test close");
        let close = tokio::time::timeout(T, s.closed()).await.unwrap();
        assert_eq!(
            (close.code, close.reason.as_str(), close.by_peer),
            (0x3, "test close", true),
            "{url}"
        );
    }
}

/// §3.3: closing a session never ends the control stream first (a peer seeing it end must
/// close with PROTOCOL_VIOLATION). The old writer finished the stream while the close was under
/// way; the FIN won the race in some of these rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_session_does_not_finish_the_control_stream() {
    let (port, mut accepted) = server(&[Version::DRAFT_14]).await;
    for url in urls(port) {
        for round in 0..30 {
            let conn = client().connect(&url).await.unwrap().conn;
            let mut raw = Raw::open(conn, SetupParameters::new()).await;
            let Some(ControlMessage::ServerSetup(_)) = raw.read().await else {
                panic!("{url}: no SERVER_SETUP")
            };
            let s = accepted.recv().await.unwrap().unwrap();
            s.close(SessionErrorCode::NoError, "done");
            let end = loop {
                match tokio::time::timeout(T, raw.recv.read_chunk(4096)).await {
                    Ok(Ok(Some(_))) => continue,
                    Ok(Ok(None)) => break "FIN",
                    Ok(Err(_)) => break "connection closed",
                    Err(_) => break "nothing",
                }
            };
            assert_eq!(end, "connection closed", "{url} round {round}");
            assert_eq!(raw.closed_code().await, 0, "{url} round {round}");
        }
    }
}
