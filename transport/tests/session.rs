//! Session rules over the in-memory connection: SETUP and version negotiation, request IDs and
//! MAX_REQUEST_ID, GOAWAY, close codes, and answers to requests nobody handles. A "raw peer"
//! speaks bytes on the other end so that every violation can be produced on purpose.

use bytes::{Bytes, BytesMut};
use moqlink_model::control::*;
use moqlink_model::params::{SetupParameter, SetupParameters};
use moqlink_model::{Blob, Encoding, GroupOrder, SessionErrorCode, TrackNamespace, Version};
use moqlink_transport::connection::memory::{pair, MemoryConnection, MemoryRecv, MemorySend};
use moqlink_transport::session::*;
use moqlink_transport::{Connection, ConnectionError, RecvStream, SendStream};
use std::time::Duration;
use tokio::sync::mpsc::Receiver;

const T: Duration = Duration::from_secs(5);

type Started = (Session<MemoryConnection>, Receiver<IncomingEvent>);

struct RawPeer {
    conn: MemoryConnection,
    send: MemorySend,
    recv: MemoryRecv,
    reader: ControlReader,
}

impl RawPeer {
    async fn write(&mut self, msg: ControlMessage) {
        let mut b = BytesMut::new();
        msg.encode(&mut b, Encoding::default()).unwrap();
        self.send.write_chunk(b.freeze()).await.unwrap();
    }

    async fn write_raw(&mut self, hex: &str) {
        let bytes = hex::decode(hex.replace(' ', "")).unwrap();
        self.send.write_chunk(Bytes::from(bytes)).await.unwrap();
    }

    async fn read(&mut self) -> ControlMessage {
        tokio::time::timeout(T, async {
            loop {
                if let Some(m) = self.reader.next_message().unwrap() {
                    return m;
                }
                let chunk = self
                    .recv
                    .read_chunk(4096)
                    .await
                    .unwrap()
                    .expect("stream ended");
                self.reader.push(chunk);
            }
        })
        .await
        .expect("no message in time")
    }

    async fn closed(&self) -> (u64, String) {
        match tokio::time::timeout(T, self.conn.closed())
            .await
            .expect("not closed")
        {
            ConnectionError::ClosedByPeer { code, reason } => (code, reason),
            other => panic!("unexpected close {other:?}"),
        }
    }
}

fn setup_params(max_request_id: u64) -> SetupParameters {
    let mut p = SetupParameters::new();
    p.push(SetupParameter::MaxRequestId {
        value: max_request_id,
    });
    p
}

/// A raw client that has completed SETUP against a real server session.
async fn raw_client_and_server(cfg: SessionConfig, max_request_id: u64) -> (RawPeer, Started) {
    let (c, s) = pair();
    let server = tokio::spawn(Session::accept(s, cfg));
    let (send, recv) = c.open_bi().await.unwrap();
    let mut peer = RawPeer {
        conn: c,
        send,
        recv,
        reader: ControlReader::new(Version::DRAFT_14),
    };
    peer.write(ControlMessage::ClientSetup(ClientSetup {
        versions: vec![Version::DRAFT_14],
        parameters: setup_params(max_request_id),
    }))
    .await;
    let ControlMessage::ServerSetup(_) = peer.read().await else {
        panic!("no SERVER_SETUP")
    };
    (peer, server.await.unwrap().unwrap())
}

/// A raw server that answers a real client session's SETUP with `version` and `params`.
async fn raw_server_and_client(
    cfg: SessionConfig,
    version: Version,
    params: SetupParameters,
) -> (RawPeer, Result<Started, SessionError>) {
    let (c, s) = pair();
    let client = tokio::spawn(Session::connect(c, cfg, ClientTarget::default()));
    let (send, recv) = s.accept_bi().await.unwrap();
    let mut peer = RawPeer {
        conn: s,
        send,
        recv,
        reader: ControlReader::new(Version::DRAFT_14),
    };
    let ControlMessage::ClientSetup(_) = peer.read().await else {
        panic!("no CLIENT_SETUP")
    };
    peer.write(ControlMessage::ServerSetup(ServerSetup {
        version,
        parameters: params,
    }))
    .await;
    (peer, client.await.unwrap())
}

fn subscribe(request_id: u64) -> ControlMessage {
    ControlMessage::Subscribe(Subscribe {
        request_id,
        namespace: TrackNamespace::from_strs(&["moq-test", "interop"]),
        name: Blob::from("test-track"),
        subscriber_priority: 128,
        group_order: GroupOrder::Ascending,
        forward: true,
        filter: Filter::LargestObject,
        parameters: Default::default(),
    })
}

fn cfg(versions: &[Version]) -> SessionConfig {
    SessionConfig {
        versions: versions.to_vec(),
        ..Default::default()
    }
}

async fn connected() -> (Started, Started) {
    let (c, s) = pair();
    let server = tokio::spawn(Session::accept(s, SessionConfig::default()));
    let client = Session::connect(c, SessionConfig::default(), ClientTarget::default())
        .await
        .unwrap();
    (client, server.await.unwrap().unwrap())
}

#[tokio::test]
async fn negotiation_picks_the_clients_first_supported_version() {
    let (c, s) = pair();
    // The client prefers draft-16 (unsupported by the server), then draft-14.
    let server = tokio::spawn(Session::accept(s, cfg(&[Version::DRAFT_14])));
    let offered = cfg(&[Version::DRAFT_16, Version::DRAFT_14]);
    let (client, _) = Session::connect(c, offered, ClientTarget::default())
        .await
        .unwrap();
    let (server, _) = server.await.unwrap().unwrap();
    assert_eq!(client.version(), Version::DRAFT_14);
    assert_eq!(server.version(), Version::DRAFT_14);
    // Window 100: the server grants the client even IDs below 0 + 2 * 100, the client grants
    // the server odd IDs below 1 + 2 * 100.
    assert_eq!(client.peer_setup().max_request_id(), Some(200));
    assert_eq!(server.peer_setup().max_request_id(), Some(201));
    assert!(client.peer_setup().implementation().is_some());

    // Preference order: both supported, the client's order wins.
    let (c, s) = pair();
    let other = Version(0xff00_0099);
    let server = tokio::spawn(Session::accept(s, cfg(&[Version::DRAFT_14, other])));
    let (client, _) =
        Session::connect(c, cfg(&[other, Version::DRAFT_14]), ClientTarget::default())
            .await
            .unwrap();
    assert_eq!(client.version(), other);
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn no_common_version_closes_with_version_negotiation_failed() {
    let (c, s) = pair();
    let server = tokio::spawn(Session::accept(s, cfg(&[Version::DRAFT_14])));
    let client = Session::connect(c, cfg(&[Version::DRAFT_16]), ClientTarget::default()).await;
    let Err(SessionError::Closed(close)) = client else {
        panic!("client connected")
    };
    assert_eq!(
        close.code,
        SessionErrorCode::VersionNegotiationFailed.code()
    );
    assert!(close.by_peer);
    let Err(SessionError::Closed(close)) = server.await.unwrap() else {
        panic!("server accepted")
    };
    assert_eq!(close.code, 0x15);
}

#[tokio::test]
async fn client_rejects_a_version_it_did_not_offer() {
    let (peer, client) = raw_server_and_client(
        cfg(&[Version::DRAFT_14]),
        Version::DRAFT_16,
        setup_params(10),
    )
    .await;
    let Err(SessionError::Closed(close)) = client else {
        panic!("accepted an unoffered version")
    };
    assert_eq!(
        close.code,
        SessionErrorCode::VersionNegotiationFailed.code()
    );
    assert_eq!(peer.closed().await.0, 0x15);
}

#[tokio::test]
async fn client_rejects_path_from_a_server() {
    let mut p = setup_params(10);
    p.push(SetupParameter::Path {
        value: Blob::from("/x"),
    });
    let (peer, client) =
        raw_server_and_client(cfg(&[Version::DRAFT_14]), Version::DRAFT_14, p).await;
    assert!(client.is_err());
    assert_eq!(peer.closed().await.0, SessionErrorCode::InvalidPath.code());
}

#[tokio::test]
async fn peer_request_ids_are_checked() {
    // Parity: a client using an odd ID.
    let (mut peer, _s) = raw_client_and_server(SessionConfig::default(), 0).await;
    peer.write(subscribe(1)).await;
    assert_eq!(
        peer.closed().await.0,
        SessionErrorCode::InvalidRequestId.code()
    );
    // Skipping 0.
    let (mut peer, _s) = raw_client_and_server(SessionConfig::default(), 0).await;
    peer.write(subscribe(2)).await;
    assert_eq!(
        peer.closed().await.0,
        SessionErrorCode::InvalidRequestId.code()
    );
    // Beyond MAX_REQUEST_ID: a window of 1 allows only ID 0.
    let small = SessionConfig {
        request_window: 1,
        ..Default::default()
    };
    let (mut peer, (_s, mut incoming)) = raw_client_and_server(small, 0).await;
    peer.write(subscribe(0)).await;
    let Some(IncomingEvent::Request(_keep)) = incoming.recv().await else {
        panic!("request not delivered")
    };
    peer.write(subscribe(2)).await;
    assert_eq!(
        peer.closed().await.0,
        SessionErrorCode::TooManyRequests.code()
    );
}

#[tokio::test]
async fn max_request_id_is_granted_again_as_requests_finish() {
    let small = SessionConfig {
        request_window: 2,
        ..Default::default()
    };
    let (mut peer, (_s, mut incoming)) = raw_client_and_server(small, 0).await;
    peer.write(subscribe(0)).await;
    peer.write(subscribe(2)).await;
    for _ in 0..2 {
        let Some(IncomingEvent::Request(req)) = incoming.recv().await else {
            panic!("request not delivered")
        };
        req.responder
            .reject(
                moqlink_model::codes::SubscribeErrorCode::TrackDoesNotExist,
                "no such track",
            )
            .await
            .unwrap();
        drop(req.followups);
    }
    let mut grants = Vec::new();
    for _ in 0..4 {
        match peer.read().await {
            ControlMessage::MaxRequestId(m) => grants.push(m.max_request_id),
            ControlMessage::SubscribeError(e) => assert_eq!(e.error_code, 4),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(grants, vec![6, 8]);
    peer.write(subscribe(4)).await;
    assert!(matches!(
        incoming.recv().await,
        Some(IncomingEvent::Request(_))
    ));
}

#[tokio::test]
async fn a_blocked_client_sends_requests_blocked_and_waits_for_credit() {
    let (mut peer, client) = raw_server_and_client(
        cfg(&[Version::DRAFT_14]),
        Version::DRAFT_14,
        setup_params(0),
    )
    .await;
    let (client, _incoming) = client.unwrap();
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.request(subscribe).await.map(|r| r.id()) }
    });
    let ControlMessage::RequestsBlocked(b) = peer.read().await else {
        panic!("no REQUESTS_BLOCKED")
    };
    assert_eq!(b.max_request_id, 0);
    peer.write(ControlMessage::MaxRequestId(MaxRequestId {
        max_request_id: 2,
    }))
    .await;
    let ControlMessage::Subscribe(s) = peer.read().await else {
        panic!("no SUBSCRIBE")
    };
    assert_eq!(s.request_id, 0);
    assert_eq!(pending.await.unwrap().unwrap(), 0);
    // §9.5: a MAX_REQUEST_ID that does not increase closes the session.
    peer.write(ControlMessage::MaxRequestId(MaxRequestId {
        max_request_id: 2,
    }))
    .await;
    assert_eq!(
        peer.closed().await.0,
        SessionErrorCode::ProtocolViolation.code()
    );
}

#[tokio::test]
async fn unhandled_requests_get_not_supported_and_dropped_ones_internal_error() {
    let (mut peer, (_s, incoming)) = raw_client_and_server(SessionConfig::default(), 0).await;
    drop(incoming);
    peer.write(subscribe(0)).await;
    let ControlMessage::SubscribeError(e) = peer.read().await else {
        panic!("no SUBSCRIBE_ERROR")
    };
    assert_eq!((e.request_id, e.error_code), (0, 0x3));
    peer.write(ControlMessage::Fetch(Fetch {
        request_id: 2,
        subscriber_priority: 1,
        group_order: GroupOrder::Original,
        fetch: FetchKind::RelativeJoining {
            joining_request_id: 0,
            joining_start: 1,
        },
        parameters: Default::default(),
    }))
    .await;
    let ControlMessage::FetchError(e) = peer.read().await else {
        panic!("no FETCH_ERROR")
    };
    assert_eq!(e.error_code, 0x3);

    let (mut peer, (_s, mut incoming)) = raw_client_and_server(SessionConfig::default(), 0).await;
    peer.write(ControlMessage::PublishNamespace(PublishNamespace {
        request_id: 0,
        namespace: TrackNamespace::from_strs(&["a"]),
        parameters: Default::default(),
    }))
    .await;
    let Some(IncomingEvent::Request(req)) = incoming.recv().await else {
        panic!("request not delivered")
    };
    drop(req);
    let ControlMessage::PublishNamespaceError(e) = peer.read().await else {
        panic!("no PUBLISH_NAMESPACE_ERROR")
    };
    assert_eq!(e.error_code, 0x0);
}

#[tokio::test]
async fn replies_reach_the_request_and_strangers_close_the_session() {
    let (mut peer, client) = raw_server_and_client(
        cfg(&[Version::DRAFT_14]),
        Version::DRAFT_14,
        setup_params(10),
    )
    .await;
    let (client, _incoming) = client.unwrap();
    let mut req = client.request(subscribe).await.unwrap();
    let ControlMessage::Subscribe(s) = peer.read().await else {
        panic!("no SUBSCRIBE")
    };
    peer.write(ControlMessage::SubscribeError(RequestError {
        request_id: s.request_id,
        error_code: 4,
        reason: Blob::from("not here"),
    }))
    .await;
    let err = req.reply().await.unwrap_err();
    assert!(
        matches!(err, SessionError::Rejected { code: 4, .. }),
        "{err:?}"
    );
    // A reply to an ID the client never used.
    peer.write(ControlMessage::SubscribeOk(SubscribeOk {
        request_id: 8,
        track_alias: 1,
        expires: 0,
        group_order: GroupOrder::Ascending,
        largest_location: None,
        parameters: Default::default(),
    }))
    .await;
    assert_eq!(
        peer.closed().await.0,
        SessionErrorCode::InvalidRequestId.code()
    );
    let close = client.closed().await;
    assert_eq!(close.code, SessionErrorCode::InvalidRequestId.code());
    assert!(!close.by_peer);
}

/// A SUBSCRIBE_OK arriving after the subscriber gave up on the request (dropped it) is
/// answered with UNSUBSCRIBE, so the publisher does not serve a subscription nobody reads.
#[tokio::test]
async fn a_late_subscribe_ok_for_an_abandoned_request_is_unsubscribed() {
    let (mut peer, client) = raw_server_and_client(
        cfg(&[Version::DRAFT_14]),
        Version::DRAFT_14,
        setup_params(10),
    )
    .await;
    let (client, _incoming) = client.unwrap();
    let req = client.request(subscribe).await.unwrap();
    let ControlMessage::Subscribe(s) = peer.read().await else {
        panic!("no SUBSCRIBE")
    };
    drop(req);
    peer.write(ControlMessage::SubscribeOk(SubscribeOk {
        request_id: s.request_id,
        track_alias: 1,
        expires: 0,
        group_order: GroupOrder::Ascending,
        largest_location: None,
        parameters: Default::default(),
    }))
    .await;
    match peer.read().await {
        ControlMessage::Unsubscribe(u) => assert_eq!(u.request_id, s.request_id),
        other => panic!("expected UNSUBSCRIBE, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_message_types_close_with_protocol_violation() {
    let (mut peer, (session, _i)) = raw_client_and_server(SessionConfig::default(), 0).await;
    // Type 0x1B is not in Table 1 (§9); Length 0.
    peer.write_raw("1b 0000").await;
    let (code, reason) = peer.closed().await;
    assert_eq!(code, SessionErrorCode::ProtocolViolation.code());
    assert!(reason.contains("unknown_message_type"), "{reason}");
    assert_eq!(session.closed().await.code, 0x3);
}

#[tokio::test]
async fn malformed_parameters_close_with_their_code() {
    let (mut peer, _s) = raw_client_and_server(SessionConfig::default(), 0).await;
    // SUBSCRIBE whose AUTHORIZATION TOKEN has alias type 4 (§9.2.1.1): 03 000e; 00 request 0;
    // 01 01 61 namespace ("a"); 01 74 name "t"; 80 priority; 01 ascending; 01 forward; 02 filter;
    // 01 one parameter: 03 token, 01 length, 04 alias type 4 → KEY_VALUE_FORMATTING_ERROR.
    peer.write_raw("03 000e 00 010161 0174 80 01 01 02 01 03 01 04")
        .await;
    assert_eq!(
        peer.closed().await.0,
        SessionErrorCode::KeyValueFormattingError.code()
    );
}

#[tokio::test]
async fn closing_the_control_stream_is_a_protocol_violation() {
    let (mut peer, _s) = raw_client_and_server(SessionConfig::default(), 0).await;
    peer.send.finish().unwrap();
    assert_eq!(
        peer.closed().await.0,
        SessionErrorCode::ProtocolViolation.code()
    );
}

#[tokio::test]
async fn setup_after_setup_is_a_protocol_violation() {
    let (mut peer, _s) = raw_client_and_server(SessionConfig::default(), 0).await;
    peer.write(ControlMessage::ClientSetup(ClientSetup {
        versions: vec![Version::DRAFT_14],
        parameters: setup_params(1),
    }))
    .await;
    assert_eq!(
        peer.closed().await.0,
        SessionErrorCode::ProtocolViolation.code()
    );
}

#[tokio::test]
async fn goaway_stops_new_requests_and_surfaces_the_uri() {
    let ((client, _ci), (server, _si)) = connected().await;
    server
        .goaway("moqt://elsewhere:4443/", Duration::from_millis(300))
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    while client.goaway_received().is_none() {
        assert!(start.elapsed() < T);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        client.goaway_received().as_deref(),
        Some("moqt://elsewhere:4443/")
    );
    let err = client.request(subscribe).await.unwrap_err();
    assert!(matches!(err, SessionError::GoingAway(_)), "{err:?}");
    // The client never closes, so the server ends it with GOAWAY_TIMEOUT after the drain time.
    let close = client.closed().await;
    assert_eq!(close.code, SessionErrorCode::GoawayTimeout.code());
    assert!(close.by_peer);
}

#[tokio::test]
async fn a_second_goaway_or_a_uri_sent_to_a_server_is_a_violation() {
    let (mut peer, client) = raw_server_and_client(
        cfg(&[Version::DRAFT_14]),
        Version::DRAFT_14,
        setup_params(10),
    )
    .await;
    let _client = client.unwrap();
    let empty = || {
        ControlMessage::Goaway(Goaway {
            new_session_uri: Blob::from(""),
        })
    };
    peer.write(empty()).await;
    peer.write(empty()).await;
    assert_eq!(
        peer.closed().await.0,
        SessionErrorCode::ProtocolViolation.code()
    );

    let (mut peer, _s) = raw_client_and_server(SessionConfig::default(), 0).await;
    peer.write(ControlMessage::Goaway(Goaway {
        new_session_uri: Blob::from("https://x/"),
    }))
    .await;
    assert_eq!(
        peer.closed().await.0,
        SessionErrorCode::ProtocolViolation.code()
    );
}

#[tokio::test]
async fn a_peer_close_is_surfaced_with_code_and_reason() {
    let (peer, (session, _i)) = raw_client_and_server(SessionConfig::default(), 0).await;
    peer.conn.close(0x2, "go away");
    let close = session.closed().await;
    assert_eq!(
        (close.code, close.reason.as_str(), close.by_peer),
        (0x2, "go away", true)
    );
}

#[tokio::test]
async fn subscribe_update_for_a_request_that_never_existed_is_a_violation() {
    let (mut peer, _s) = raw_client_and_server(SessionConfig::default(), 0).await;
    peer.write(ControlMessage::SubscribeUpdate(SubscribeUpdate {
        request_id: 0,
        subscription_request_id: 6,
        start: moqlink_model::Location::new(1, 0),
        end_group: None,
        subscriber_priority: 1,
        forward: true,
        parameters: Default::default(),
    }))
    .await;
    assert_eq!(
        peer.closed().await.0,
        SessionErrorCode::ProtocolViolation.code()
    );
}

fn subscribe_with_token(request_id: u64, token: moqlink_model::params::Token) -> ControlMessage {
    let mut params = moqlink_model::params::VersionParameters::new();
    params.push(moqlink_model::params::Parameter::AuthorizationToken { value: token });
    let ControlMessage::Subscribe(mut s) = subscribe(request_id) else {
        unreachable!()
    };
    s.parameters = params;
    ControlMessage::Subscribe(s)
}

#[tokio::test]
async fn token_aliases_are_registered_used_and_bounded() {
    use moqlink_model::params::Token;
    // Cache of 40 bytes: one 4-byte token (16 + 4) fits, a second 5-byte one does not.
    let small = SessionConfig {
        max_auth_token_cache_size: 40,
        ..Default::default()
    };
    let (mut peer, (_s, mut incoming)) = raw_client_and_server(small, 0).await;
    let register = Token::Register {
        alias: 7,
        token_type: 0,
        token_value: Blob::from("abcd"),
    };
    peer.write(subscribe_with_token(0, register)).await;
    let Some(IncomingEvent::Request(req)) = incoming.recv().await else {
        panic!("request not delivered")
    };
    assert_eq!(req.tokens[0].value, Blob::from("abcd"));
    peer.write(subscribe_with_token(2, Token::UseAlias { alias: 7 }))
        .await;
    let Some(IncomingEvent::Request(req2)) = incoming.recv().await else {
        panic!("request not delivered")
    };
    assert_eq!(req2.tokens[0].value, Blob::from("abcd"));
    // An alias never registered: the message is rejected, the session stays.
    peer.write(subscribe_with_token(4, Token::UseAlias { alias: 8 }))
        .await;
    let ControlMessage::SubscribeError(e) = peer.read().await else {
        panic!("no SUBSCRIBE_ERROR")
    };
    assert_eq!((e.request_id, e.error_code), (4, 0x10));
    // Registering past the cache size closes with AUTH_TOKEN_CACHE_OVERFLOW.
    let big = Token::Register {
        alias: 9,
        token_type: 0,
        token_value: Blob::from("abcde"),
    };
    peer.write(subscribe_with_token(6, big)).await;
    assert_eq!(
        peer.closed().await.0,
        SessionErrorCode::AuthTokenCacheOverflow.code()
    );
    drop((req, req2));

    // Registering an alias twice closes with DUPLICATE_AUTH_TOKEN_ALIAS.
    let (mut peer, _s) = raw_client_and_server(SessionConfig::default(), 0).await;
    let reg = || Token::Register {
        alias: 1,
        token_type: 0,
        token_value: Blob::from("t"),
    };
    peer.write(subscribe_with_token(0, reg())).await;
    peer.write(subscribe_with_token(2, reg())).await;
    assert_eq!(
        peer.closed().await.0,
        SessionErrorCode::DuplicateAuthTokenAlias.code()
    );
}

#[tokio::test]
async fn an_unencodable_request_is_refused_to_its_caller_and_the_session_goes_on() {
    // §2.4.1: a namespace has 1 to 32 fields, so a zero-field one (say, built from a moq-lite
    // peer's empty broadcast path) cannot be sent. The caller gets the error; the session
    // stays open and the next request still carries the next Request ID (§9.1).
    let ((client, _ci), (server, mut incoming)) = connected().await;
    let Err(err) = client
        .publish_namespace(TrackNamespace::default(), Default::default())
        .await
    else {
        panic!("a zero-field namespace was sent")
    };
    assert!(
        matches!(
            err,
            SessionError::Unencodable {
                kind: "PUBLISH_NAMESPACE",
                ..
            }
        ),
        "{err:?}"
    );
    let ns = TrackNamespace::from_strs(&["ok"]);
    let accept = tokio::spawn(async move {
        let Some(IncomingEvent::Request(req)) = incoming.recv().await else {
            panic!("request not delivered")
        };
        let id = req.responder.id();
        req.responder
            .accept(ControlMessage::PublishNamespaceOk(RequestRef {
                request_id: id,
            }))
            .await
            .unwrap();
        id
    });
    let published = tokio::time::timeout(T, client.publish_namespace(ns, Default::default()))
        .await
        .unwrap();
    assert!(published.is_ok(), "{:?}", published.err());
    assert_eq!(
        accept.await.unwrap(),
        0,
        "the refused request's ID was spent"
    );
    assert!(client.close_reason().is_none());
    assert!(server.close_reason().is_none());
}

#[test]
fn fetch_ok_for_the_last_possible_object_is_encodable() {
    // §9.17: FETCH_OK's End Location object is sent as Object+1; for Object 2^62-1 that would
    // not fit a varint, and the answer would be lost. The whole group means the same there.
    let max = moqlink_model::limits::MAX_VARINT;
    let end = fetch_ok_end(
        FetchEnd {
            group: 9,
            object: None,
        },
        moqlink_model::Location::new(3, max),
    );
    assert_eq!((end.group, end.object), (3, None));
    let ok = ControlMessage::FetchOk(FetchOk {
        request_id: 0,
        group_order: GroupOrder::Ascending,
        end_of_track: false,
        end_location: end,
        parameters: Default::default(),
    });
    let mut b = BytesMut::new();
    ok.encode(&mut b, Encoding::default()).unwrap();
    // An ordinary largest keeps its object.
    let end = fetch_ok_end(
        FetchEnd {
            group: 9,
            object: None,
        },
        moqlink_model::Location::new(3, 7),
    );
    assert_eq!((end.group, end.object), (3, Some(7)));
}
