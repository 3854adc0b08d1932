//! A connection whose control stream the check drives byte by byte: for messages the session
//! layer would never send (wrong Request IDs, unknown types, bad lengths and filter types) and
//! for reading exactly what the relay answers.

use super::{refused, Env, Verdict};
use crate::cases::Failure;
use bytes::{BufMut, Bytes, BytesMut};
use moqlink_model::control::*;
use moqlink_model::params::{SetupParameter, SetupParameters, VersionParameters};
use moqlink_model::{Blob, Encoding, SessionErrorCode, TrackNamespace, Version};
use moqlink_transport::connection::any::{AnyConnection, AnyRecv, AnySend};
use moqlink_transport::endpoint::SetupTarget;
use moqlink_transport::session::SessionError;
use moqlink_transport::{Connection, ConnectionError, RecvStream, SendStream, StreamError};
use std::time::Duration;

/// How long a check waits for an answer.
const ANSWER: Duration = Duration::from_secs(3);

/// What the next read from the control stream produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole message.
    Message(ControlMessage),
    /// The relay closed the session: code and reason (`by_peer` false for local or transport
    /// ends).
    Closed {
        /// The close code.
        code: u64,
        /// The reason phrase.
        reason: String,
        /// Whether the relay closed it.
        by_peer: bool,
    },
    /// The bytes did not decode.
    Garbled(String),
    /// Nothing within the limit.
    Quiet,
}

/// A connection with a hand-driven control stream.
pub struct Raw {
    /// The connection.
    pub conn: AnyConnection,
    send: AnySend,
    recv: AnyRecv,
    buf: ControlReader,
    /// PATH and AUTHORITY for raw QUIC.
    pub target: Option<SetupTarget>,
    /// The SERVER_SETUP, once read.
    pub server: Option<ServerSetup>,
    /// The relay's current MAX_REQUEST_ID (from SERVER_SETUP and MAX_REQUEST_ID messages).
    pub max_request_id: u64,
    ended: bool,
}

impl Raw {
    /// Opens the connection and the control stream; nothing is sent yet.
    pub async fn open(env: &Env, key: &'static str) -> Result<Raw, Failure> {
        env.step("the connection");
        let connected = env.ctx.client.connect(&env.ctx.relay).await.map_err(|e| {
            Failure::new(
                "a connection",
                e.to_string(),
                "could not connect to the relay",
            )
        })?;
        let id = crate::cases::connection_id();
        env.record.connection(key, &id);
        let (send, recv) = connected.conn.open_bi().await.map_err(|e| {
            Failure::new(
                "a control stream",
                e.to_string(),
                "could not open the control stream",
            )
        })?;
        Ok(Raw {
            conn: connected.conn,
            send,
            recv,
            buf: ControlReader::new(Version::DRAFT_14),
            target: connected.setup,
            server: None,
            max_request_id: 0,
            ended: false,
        })
    }

    /// CLIENT_SETUP parameters: PATH and AUTHORITY on raw QUIC, and MAX_REQUEST_ID if given.
    pub fn setup_parameters(&self, max_request_id: Option<u64>) -> SetupParameters {
        let mut p = SetupParameters::new();
        if let Some(t) = &self.target {
            p.push(SetupParameter::Path {
                value: Blob::from(t.path.as_str()),
            });
            p.push(SetupParameter::Authority {
                value: Blob::from(t.authority.as_str()),
            });
        }
        if let Some(m) = max_request_id {
            p.push(SetupParameter::MaxRequestId { value: m });
        }
        p.push(SetupParameter::Implementation {
            value: Blob::from("moqlink-interop conformance"),
        });
        p
    }

    /// Opens, sends CLIENT_SETUP for draft-14 (granting `max_request_id`, none when `None`) and
    /// reads SERVER_SETUP.
    pub async fn setup(
        env: &Env,
        key: &'static str,
        max_request_id: Option<u64>,
    ) -> Result<Raw, Failure> {
        let mut raw = Raw::open(env, key).await?;
        let setup = ClientSetup {
            versions: vec![Version::DRAFT_14],
            parameters: raw.setup_parameters(max_request_id),
        };
        raw.send(&ControlMessage::ClientSetup(setup)).await?;
        env.step("SERVER_SETUP");
        match raw.next(Duration::from_secs(3)).await {
            Event::Message(ControlMessage::ServerSetup(s)) => {
                raw.max_request_id = s.parameters.max_request_id().unwrap_or(0);
                raw.server = Some(s);
                Ok(raw)
            }
            other => Err(Failure::new(
                "SERVER_SETUP",
                describe(&other),
                "setup did not complete",
            )),
        }
    }

    /// Sends one message.
    pub async fn send(&mut self, msg: &ControlMessage) -> Result<(), Failure> {
        let mut b = BytesMut::new();
        msg.encode(&mut b, Encoding::new(Version::DRAFT_14))
            .map_err(|e| Failure::new("an encodable message", e.to_string(), "local encoder"))?;
        self.send_bytes(b.freeze()).await
    }

    /// Sends bytes on the control stream as they are.
    pub async fn send_bytes(&mut self, b: Bytes) -> Result<(), Failure> {
        self.send.write_chunk(b).await.map_err(|e| {
            Failure::new(
                "the control stream writable",
                e.to_string(),
                "the relay ended the control stream early",
            )
        })
    }

    /// The next event within `limit`; MAX_REQUEST_ID messages also raise
    /// [`Raw::max_request_id`].
    pub async fn next(&mut self, limit: Duration) -> Event {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match self.buf.next_message() {
                Ok(Some(m)) => {
                    if let ControlMessage::MaxRequestId(x) = &m {
                        self.max_request_id = self.max_request_id.max(x.max_request_id);
                    }
                    return Event::Message(m);
                }
                Ok(None) => {}
                Err(e) => return Event::Garbled(e.to_string()),
            }
            if self.ended {
                return match tokio::time::timeout_at(deadline, self.conn.closed()).await {
                    Ok(e) => closed(e),
                    Err(_) => Event::Quiet,
                };
            }
            match tokio::time::timeout_at(deadline, self.recv.read_chunk(64 * 1024)).await {
                Err(_) => return Event::Quiet,
                Ok(Ok(Some(chunk))) => self.buf.push(chunk),
                Ok(Err(StreamError::Connection(e))) => return closed(e),
                // FIN or reset: the connection's close says why.
                Ok(_) => self.ended = true,
            }
        }
    }

    /// Reads until the relay closes the session (skipping messages), at most `limit`.
    pub async fn wait_close(&mut self, limit: Duration) -> (Event, Vec<ControlMessage>) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Event::Message(m) => seen.push(m),
                other => return (other, seen),
            }
        }
    }

    /// Requires the relay to close the session with `code` within `limit`.
    pub async fn expect_close(
        &mut self,
        env: &Env,
        code: SessionErrorCode,
        limit: Duration,
        after: &str,
    ) -> Result<String, Failure> {
        env.step(format!(
            "the relay closing the session with {}",
            code.name()
        ));
        let expected = format!("session closed with {} (0x{:x})", code.name(), code.code());
        let (ev, seen) = self.wait_close(limit).await;
        let before = if seen.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = seen.iter().map(|m| m.message_type().name()).collect();
            format!(" after {}", names.join(", "))
        };
        match ev {
            Event::Closed {
                code: c,
                reason,
                by_peer: true,
            } if c == code.code() => Ok(format!(
                "{after}: relay closed with {} ({reason:?})",
                code.name()
            )),
            Event::Quiet => Err(Failure::new(
                expected,
                format!("session still open {} ms later{before}", limit.as_millis()),
                format!("{after}: the relay did not close the session"),
            )),
            other => Err(Failure::new(
                expected,
                format!("{}{before}", describe(&other)),
                format!("{after}: the relay did not close with {}", code.name()),
            )),
        }
    }

    /// Requires the relay to close the session, with any code, within three seconds; passes
    /// with the code, fails with `expected` and `message`.
    pub async fn expect_any_close(
        &mut self,
        env: &Env,
        what: &str,
        expected: &str,
        message: &str,
    ) -> Result<String, Failure> {
        env.step("the relay closing the session");
        let (ev, _) = self.wait_close(ANSWER).await;
        match ev {
            Event::Closed {
                code,
                by_peer: true,
                reason,
            } => {
                let name = SessionErrorCode::from_code(code)
                    .map(SessionErrorCode::name)
                    .unwrap_or("UNKNOWN");
                Ok(format!(
                    "{what}: relay closed with {name} (0x{code:x}) {reason:?}"
                ))
            }
            other => Err(Failure::new(expected, describe(&other), message)),
        }
    }

    /// Sends PUBLISH_NAMESPACE `id` for `ns` (no parameters) and requires PUBLISH_NAMESPACE_OK.
    pub async fn announce(
        &mut self,
        env: &Env,
        id: u64,
        ns: TrackNamespace,
    ) -> Result<(), Verdict> {
        self.send(&ControlMessage::PublishNamespace(PublishNamespace {
            request_id: id,
            namespace: ns,
            parameters: VersionParameters::new(),
        }))
        .await?;
        env.step("PUBLISH_NAMESPACE_OK");
        self.announced(id).await
    }

    /// Reads until the relay answers PUBLISH_NAMESPACE `id`, or ends the session.
    pub async fn announce_reply(&mut self, id: u64) -> Event {
        loop {
            match self.next(ANSWER).await {
                Event::Message(
                    m @ (ControlMessage::PublishNamespaceOk(_)
                    | ControlMessage::PublishNamespaceError(_)),
                ) if m.request_id() == Some(id) => return Event::Message(m),
                Event::Message(_) => {}
                other => return other,
            }
        }
    }

    /// Requires PUBLISH_NAMESPACE_OK for `id`.
    pub async fn announced(&mut self, id: u64) -> Result<(), Verdict> {
        match self.announce_reply(id).await {
            Event::Message(ControlMessage::PublishNamespaceOk(_)) => Ok(()),
            Event::Message(ControlMessage::PublishNamespaceError(e)) => Err(refused(
                SessionError::Rejected {
                    kind: moqlink_model::control::MessageType::PublishNamespaceError,
                    code: e.error_code,
                    reason: e.reason.to_string(),
                },
                "PUBLISH_NAMESPACE_OK",
                "the relay refused the PUBLISH_NAMESPACE this check builds on",
            )),
            other => Err(Failure::new(
                "PUBLISH_NAMESPACE_OK",
                describe(&other),
                "the relay did not answer the PUBLISH_NAMESPACE this check builds on",
            )
            .into()),
        }
    }

    /// Reads until the relay's SUBSCRIBE arrives at this (publisher's) connection; its Request
    /// ID.
    pub async fn relay_subscribe(&mut self, env: &Env) -> Result<u64, Failure> {
        env.step("the relay's SUBSCRIBE at the publisher");
        loop {
            match self.next(ANSWER).await {
                Event::Message(ControlMessage::Subscribe(m)) => return Ok(m.request_id),
                Event::Message(_) => {}
                other => {
                    return Err(Failure::new(
                        "the relay's SUBSCRIBE at the publisher",
                        describe(&other),
                        "the relay did not forward the SUBSCRIBE this check answers",
                    ))
                }
            }
        }
    }

    /// Ends the control stream (FIN) while the session is active.
    pub fn finish(&mut self) -> Result<(), Failure> {
        self.send.finish().map_err(|e| {
            Failure::new(
                "the control stream open",
                e.to_string(),
                "the relay ended the control stream early",
            )
        })
    }

    /// Closes the connection with NO_ERROR.
    pub fn close(&self) {
        self.conn.close(SessionErrorCode::NoError.code(), "");
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.close();
    }
}

fn closed(e: ConnectionError) -> Event {
    match e {
        ConnectionError::ClosedByPeer { code, reason } => Event::Closed {
            code,
            reason,
            by_peer: true,
        },
        ConnectionError::ClosedLocally { code, reason } => Event::Closed {
            code,
            reason,
            by_peer: false,
        },
        ConnectionError::Transport(t) => Event::Closed {
            code: SessionErrorCode::InternalError.code(),
            reason: format!("transport error: {t}"),
            by_peer: false,
        },
    }
}

/// SUBSCRIBE `request_id` for `name` (Largest Object, Forward 1, priority 128, the publisher's
/// group order) with `parameters`.
pub fn subscribe_for(
    request_id: u64,
    name: &moqlink_transport::track::TrackName,
    parameters: VersionParameters,
) -> ControlMessage {
    ControlMessage::Subscribe(Subscribe {
        request_id,
        namespace: name.namespace.clone(),
        name: name.name.clone(),
        subscriber_priority: 128,
        group_order: moqlink_model::GroupOrder::Original,
        forward: true,
        filter: Filter::LargestObject,
        parameters,
    })
}

/// [`subscribe_for`] the check's track `t`.
pub fn subscribe_t(env: &Env, request_id: u64, parameters: VersionParameters) -> ControlMessage {
    subscribe_for(request_id, &env.track("t"), parameters)
}

/// How an event reads in the YAML block.
pub fn describe(ev: &Event) -> String {
    match ev {
        Event::Message(m) => format!("{} {}", m.message_type().name(), summary(m)),
        Event::Closed {
            code,
            reason,
            by_peer,
        } => {
            let name = SessionErrorCode::from_code(*code)
                .map(SessionErrorCode::name)
                .unwrap_or("UNKNOWN");
            if *by_peer {
                format!("session closed with {name} (0x{code:x}) {reason:?}")
            } else {
                format!(
                    "the connection ended without a session close code from the relay (seen \
                     here as 0x{code:x} {reason:?})"
                )
            }
        }
        Event::Garbled(e) => format!("undecodable bytes: {e}"),
        Event::Quiet => "nothing".into(),
    }
}

fn summary(m: &ControlMessage) -> String {
    use ControlMessage as M;
    match m {
        M::SubscribeError(e)
        | M::FetchError(e)
        | M::PublishError(e)
        | M::TrackStatusError(e)
        | M::PublishNamespaceError(e)
        | M::SubscribeNamespaceError(e) => {
            format!("code 0x{:x} {:?}", e.error_code, e.reason.to_string())
        }
        M::ServerSetup(s) => format!("version {}", s.version.label()),
        other => match other.request_id() {
            Some(id) => format!("(request {id})"),
            None => String::new(),
        },
    }
}

/// Appends a QUIC varint.
pub fn varint(b: &mut BytesMut, v: u64) {
    if v < 1 << 6 {
        b.put_u8(v as u8);
    } else if v < 1 << 14 {
        b.put_u16(0x4000 | v as u16);
    } else if v < 1 << 30 {
        b.put_u32(0x8000_0000 | v as u32);
    } else {
        b.put_u64(0xc000_0000_0000_0000 | v);
    }
}

/// A framed control message: type, 16-bit length, payload.
pub fn frame(ty: u64, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    varint(&mut b, ty);
    b.put_u16(payload.len() as u16);
    b.put_slice(payload);
    b.freeze()
}

/// SUBGROUP_HEADER of type `ty` (one without a Subgroup ID field) for Track Alias `alias`,
/// group `group`, Publisher Priority 128.
pub fn subgroup_header(ty: u64, alias: u64, group: u64) -> BytesMut {
    let mut b = BytesMut::new();
    varint(&mut b, ty);
    varint(&mut b, alias);
    varint(&mut b, group);
    b.put_u8(128);
    b
}

/// Appends subgroup object fields: Object ID Delta, extensions (when the header has them),
/// payload.
pub fn subgroup_object(b: &mut BytesMut, delta: u64, ext: Option<&[u8]>, body: &[u8]) {
    varint(b, delta);
    if let Some(e) = ext {
        varint(b, e.len() as u64);
        b.put_slice(e);
    }
    varint(b, body.len() as u64);
    b.put_slice(body);
}

/// The start of an OBJECT_DATAGRAM or OBJECT_DATAGRAM_STATUS of type `ty` (one with an Object
/// ID field): Track Alias `alias`, group `group`, object `object`, Publisher Priority 128.
pub fn datagram_head(ty: u64, alias: u64, group: u64, object: u64) -> BytesMut {
    let mut b = BytesMut::new();
    for v in [ty, alias, group, object] {
        varint(&mut b, v);
    }
    b.put_u8(128);
    b
}

/// The namespace's fields as byte slices, for [`tuple`].
pub fn fields(ns: &TrackNamespace) -> Vec<&[u8]> {
    ns.0.iter().map(|f| f.as_ref()).collect()
}

/// Appends a namespace tuple of `fields`.
pub fn tuple(b: &mut BytesMut, fields: &[&[u8]]) {
    varint(b, fields.len() as u64);
    for f in fields {
        varint(b, f.len() as u64);
        b.put_slice(f);
    }
}
