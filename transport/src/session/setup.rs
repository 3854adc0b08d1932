//! The SETUP exchange (§9.3): CLIENT_SETUP / SERVER_SETUP on the first bidirectional stream,
//! version negotiation and the setup parameters each side sends and checks.

use super::{SessionClose, SessionConfig, SessionError};
use crate::connection::{Connection, RecvStream, SendStream, StreamError, TransportKind};
use crate::lite::LiteSession;
use crate::qlog::{Dir, Qlog, Vantage};
use bytes::BytesMut;
use moqlink_model::control::*;
use moqlink_model::params::{SetupParameter, SetupParameters};
use moqlink_model::{Blob, DecodeError, Encoding, SessionErrorCode, Version};

/// What a client puts in PATH and AUTHORITY (raw QUIC only, §9.3.2.1-2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTarget {
    /// `path-abempty` plus `?query` of a `moqt://` URI.
    pub path: Option<String>,
    /// The authority of a `moqt://` URI.
    pub authority: Option<String>,
}

impl From<crate::endpoint::SetupTarget> for ClientTarget {
    /// The PATH and AUTHORITY a raw QUIC client's URL gives.
    fn from(t: crate::endpoint::SetupTarget) -> Self {
        ClientTarget {
            path: Some(t.path),
            authority: Some(t.authority),
        }
    }
}

/// A control stream read failure.
pub(crate) enum ReadFailure {
    /// The bytes broke a rule: close with its code.
    Violation(DecodeError),
    /// The stream ended (FIN) or was reset while the session is active.
    Ended(String),
    /// The connection is gone.
    Connection(SessionClose),
}

/// Reads the next whole message from the control stream.
pub(crate) async fn read_message<R: RecvStream>(
    recv: &mut R,
    reader: &mut ControlReader,
) -> Result<ControlMessage, ReadFailure> {
    loop {
        match reader.next_message() {
            Ok(Some(m)) => return Ok(m),
            Ok(None) => {}
            Err(e) => return Err(ReadFailure::Violation(e)),
        }
        match recv.read_chunk(64 * 1024).await {
            Ok(Some(chunk)) => reader.push(chunk),
            Ok(None) => return Err(ReadFailure::Ended("control stream finished".into())),
            Err(StreamError::Connection(c)) => return Err(ReadFailure::Connection((&c).into())),
            Err(e) => return Err(ReadFailure::Ended(format!("control stream: {e}"))),
        }
    }
}

/// Writes one message to the control stream.
pub(crate) async fn write_message<S: SendStream>(
    send: &mut S,
    msg: &ControlMessage,
) -> Result<(), String> {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf, Encoding::new(Version::DRAFT_14))
        .map_err(|e| format!("encoding {}: {e}", msg.message_type().name()))?;
    send.write_chunk(buf.freeze())
        .await
        .map_err(|e| format!("writing {}: {e}", msg.message_type().name()))
}

/// Closes `conn` with `code`/`reason` and returns the matching error.
pub(crate) fn fail<C: Connection>(conn: &C, code: SessionErrorCode, reason: &str) -> SessionError {
    tracing::warn!(code = code.name(), reason, "closing session during setup");
    conn.close(code.code(), reason);
    SessionError::Closed(SessionClose {
        code: code.code(),
        reason: reason.to_string(),
        by_peer: false,
    })
}

pub(crate) fn read_failure<C: Connection>(
    conn: &C,
    f: ReadFailure,
    expecting: &str,
) -> SessionError {
    match f {
        ReadFailure::Violation(e) => fail(conn, e.code(), &e.to_string()),
        ReadFailure::Ended(why) => fail(
            conn,
            SessionErrorCode::ProtocolViolation,
            &format!("{why} before {expecting}"),
        ),
        ReadFailure::Connection(c) => SessionError::Closed(c),
    }
}

fn common_params(cfg: &SessionConfig, granted: u64) -> SetupParameters {
    let mut p = SetupParameters::new();
    p.push(SetupParameter::MaxRequestId { value: granted });
    p.push(SetupParameter::MaxAuthTokenCacheSize {
        value: cfg.max_auth_token_cache_size,
    });
    p.push(SetupParameter::Implementation {
        value: Blob::from(cfg.implementation.as_str()),
    });
    p
}

/// Starts the session's qlog trace when `cfg` asks for one. It is finished when the session
/// closes, or when SETUP fails and its last handle is dropped.
pub(crate) fn start_trace<C: Connection>(
    conn: &C,
    cfg: &SessionConfig,
    vantage: Vantage,
) -> Option<Qlog> {
    let qcfg = cfg.qlog.as_ref()?;
    let title = format!("MoQT session with {} over {:?}", conn.peer(), conn.kind());
    match Qlog::start(qcfg, vantage, &title) {
        Ok(q) => Some(q),
        Err(e) => {
            tracing::warn!(error = %e, "no qlog trace for this session");
            None
        }
    }
}

/// Notes in the trace that the session went on as moq-lite, whose messages events-04 does not
/// define: only the setup exchange is in the trace, which ends with the session.
pub(crate) fn lite_trace<C: Connection>(qlog: Option<Qlog>, session: &LiteSession<C>) {
    let Some(q) = qlog else { return };
    q.info(format!(
        "moq-lite session ({}): its messages have no moqt qlog events; only the setup \
         exchange is logged",
        session.version().label()
    ));
    let s = session.clone();
    tokio::spawn(async move {
        let c = s.closed().await;
        q.info(format!("session closed: {c}"));
        q.finish();
    });
}

fn log_control(qlog: Option<&Qlog>, dir: Dir, stream_id: Option<u64>, msg: &ControlMessage) {
    if let Some(q) = qlog {
        q.control_msg(dir, stream_id.unwrap_or(0), msg);
    }
}

/// Client side: open the control stream, send CLIENT_SETUP, read and check SERVER_SETUP.
pub(crate) async fn client<C: Connection>(
    conn: &C,
    cfg: &SessionConfig,
    target: &ClientTarget,
    granted: u64,
    qlog: Option<&Qlog>,
) -> Result<(C::Send, C::Recv, ControlReader, ServerSetup), SessionError> {
    let (mut send, mut recv) = conn.open_bi().await?;
    let sid = send.stream_id();
    if let Some(q) = qlog {
        q.stream_type(true, sid.unwrap_or(0), "control");
    }
    let mut parameters = common_params(cfg, granted);
    for token in &cfg.auth_tokens {
        parameters.push(SetupParameter::AuthorizationToken {
            value: moqlink_model::params::Token::UseValue {
                token_type: 0,
                token_value: token.clone(),
            },
        });
    }
    if conn.kind() == TransportKind::RawQuic {
        // §9.3.2.1-2: PATH and AUTHORITY only over raw QUIC.
        if let Some(path) = &target.path {
            parameters.push(SetupParameter::Path {
                value: Blob::from(path.as_str()),
            });
        }
        if let Some(authority) = &target.authority {
            parameters.push(SetupParameter::Authority {
                value: Blob::from(authority.as_str()),
            });
        }
    }
    let setup = ControlMessage::ClientSetup(ClientSetup {
        versions: cfg.versions.clone(),
        parameters,
    });
    tracing::debug!(?setup, "sending CLIENT_SETUP");
    log_control(qlog, Dir::Created, sid, &setup);
    write_message(&mut send, &setup)
        .await
        .map_err(|e| fail(conn, SessionErrorCode::InternalError, &e))?;
    let mut reader = ControlReader::new(Version::DRAFT_14);
    let reply = tokio::time::timeout(cfg.setup_timeout, read_message(&mut recv, &mut reader))
        .await
        .map_err(|_| {
            fail(
                conn,
                SessionErrorCode::ControlMessageTimeout,
                "no SERVER_SETUP in time",
            )
        })?
        .map_err(|f| read_failure(conn, f, "SERVER_SETUP"))?;
    log_control(qlog, Dir::Parsed, sid, &reply);
    let ControlMessage::ServerSetup(server) = reply else {
        return Err(fail(
            conn,
            SessionErrorCode::ProtocolViolation,
            &format!("expected SERVER_SETUP, got {}", reply.message_type().name()),
        ));
    };
    tracing::debug!(?server, "received SERVER_SETUP");
    if !cfg.versions.contains(&server.version) {
        return Err(fail(
            conn,
            SessionErrorCode::VersionNegotiationFailed,
            &format!("server selected {} which was not offered", server.version),
        ));
    }
    // §9.3.2.1-2: a server must not send PATH or AUTHORITY.
    if server.parameters.path().is_some() {
        return Err(fail(
            conn,
            SessionErrorCode::InvalidPath,
            "PATH sent by the server",
        ));
    }
    if server.parameters.authority().is_some() {
        return Err(fail(
            conn,
            SessionErrorCode::InvalidAuthority,
            "AUTHORITY sent by the server",
        ));
    }
    reader.set_version(server.version);
    Ok((send, recv, reader, server))
}

/// Picks the first version in the client's list that the server supports (§9.3.1).
pub fn select_version(offered: &[Version], supported: &[Version]) -> Option<Version> {
    offered.iter().copied().find(|v| supported.contains(v))
}

/// Server side: accept the control stream, read CLIENT_SETUP, choose a version, answer
/// SERVER_SETUP.
pub(crate) async fn server<C: Connection>(
    conn: &C,
    cfg: &SessionConfig,
    granted: u64,
    qlog: Option<&Qlog>,
) -> Result<(C::Send, C::Recv, ControlReader, ClientSetup, Version), SessionError> {
    let (mut send, mut recv) = tokio::time::timeout(cfg.setup_timeout, conn.accept_bi())
        .await
        .map_err(|_| {
            fail(
                conn,
                SessionErrorCode::ControlMessageTimeout,
                "no control stream in time",
            )
        })??;
    let sid = send.stream_id();
    if let Some(q) = qlog {
        q.stream_type(false, sid.unwrap_or(0), "control");
    }
    let mut reader = ControlReader::new(Version::DRAFT_14);
    let first = tokio::time::timeout(cfg.setup_timeout, read_message(&mut recv, &mut reader))
        .await
        .map_err(|_| {
            fail(
                conn,
                SessionErrorCode::ControlMessageTimeout,
                "no CLIENT_SETUP in time",
            )
        })?
        .map_err(|f| read_failure(conn, f, "CLIENT_SETUP"))?;
    log_control(qlog, Dir::Parsed, sid, &first);
    let ControlMessage::ClientSetup(client) = first else {
        return Err(fail(
            conn,
            SessionErrorCode::ProtocolViolation,
            &format!("expected CLIENT_SETUP, got {}", first.message_type().name()),
        ));
    };
    tracing::debug!(?client, "received CLIENT_SETUP");
    let Some(version) = select_version(&client.versions, &cfg.versions) else {
        let offered: Vec<String> = client.versions.iter().map(|v| v.to_string()).collect();
        return Err(fail(
            conn,
            SessionErrorCode::VersionNegotiationFailed,
            &format!("no supported version among [{}]", offered.join(", ")),
        ));
    };
    if version.is_lite() {
        // moq-lite (§SessionCompat): SERVER_SETUP with lite-encoded extensions (none), after
        // which this stream is the lite session stream.
        let reply = moqlink_model::lite::SetupReply::Lite(moqlink_model::lite::CompatServerSetup {
            version,
            extensions: moqlink_model::lite::Extensions::new(),
        });
        let mut buf = BytesMut::new();
        moqlink_model::lite::encode_setup_reply(&reply, &mut buf, Encoding::new(Version::DRAFT_14))
            .map_err(|e| fail(conn, SessionErrorCode::InternalError, &e.to_string()))?;
        send.write_chunk(buf.freeze())
            .await
            .map_err(|e| fail(conn, SessionErrorCode::InternalError, &e.to_string()))?;
        return Ok((send, recv, reader, client, version));
    }
    if conn.kind() == TransportKind::WebTransport {
        if client.parameters.path().is_some() {
            return Err(fail(
                conn,
                SessionErrorCode::InvalidPath,
                "PATH over WebTransport",
            ));
        }
        if client.parameters.authority().is_some() {
            return Err(fail(
                conn,
                SessionErrorCode::InvalidAuthority,
                "AUTHORITY over WebTransport",
            ));
        }
    }
    if conn.kind() != TransportKind::WebTransport {
        // §9.3.2.1-2: PATH and AUTHORITY follow RFC 3986's syntax.
        if let Some(path) = client.parameters.path() {
            if !uri::is_path_and_query(path) {
                return Err(fail(
                    conn,
                    SessionErrorCode::MalformedPath,
                    "PATH is not a path-abempty with an optional query",
                ));
            }
        }
        if let Some(authority) = client.parameters.authority() {
            if !uri::is_authority(authority) {
                return Err(fail(
                    conn,
                    SessionErrorCode::MalformedAuthority,
                    "AUTHORITY is not an RFC 3986 authority",
                ));
            }
        }
    }
    let reply = ControlMessage::ServerSetup(ServerSetup {
        version,
        parameters: common_params(cfg, granted),
    });
    tracing::debug!(?reply, "sending SERVER_SETUP");
    log_control(qlog, Dir::Created, sid, &reply);
    write_message(&mut send, &reply)
        .await
        .map_err(|e| fail(conn, SessionErrorCode::InternalError, &e))?;
    reader.set_version(version);
    Ok((send, recv, reader, client, version))
}

/// RFC 3986 syntax for the PATH and AUTHORITY setup parameters (§9.3.2.1, §9.3.2.2).
mod uri {
    fn unreserved_or_sub_delim(c: u8) -> bool {
        c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&c)
    }

    /// Whether every byte is allowed by `ok` or starts a `%XX` escape.
    fn chars(s: &[u8], ok: impl Fn(u8) -> bool) -> bool {
        let mut i = 0;
        while i < s.len() {
            if s[i] == b'%' {
                if i + 2 >= s.len()
                    || !(s[i + 1].is_ascii_hexdigit() && s[i + 2].is_ascii_hexdigit())
                {
                    return false;
                }
                i += 3;
            } else if ok(s[i]) {
                i += 1;
            } else {
                return false;
            }
        }
        true
    }

    fn pchar(c: u8) -> bool {
        unreserved_or_sub_delim(c) || c == b':' || c == b'@'
    }

    /// path-abempty, then optionally `?` and a query.
    pub(super) fn is_path_and_query(v: &[u8]) -> bool {
        let (path, query) = match v.iter().position(|&c| c == b'?') {
            Some(i) => (&v[..i], Some(&v[i + 1..])),
            None => (v, None),
        };
        (path.is_empty() || path[0] == b'/')
            && chars(path, |c| pchar(c) || c == b'/')
            && query.is_none_or(|q| chars(q, |c| pchar(c) || c == b'/' || c == b'?'))
    }

    /// `[ userinfo "@" ] host [ ":" port ]`.
    pub(super) fn is_authority(v: &[u8]) -> bool {
        let (userinfo, rest) = match v.iter().rposition(|&c| c == b'@') {
            Some(i) => (Some(&v[..i]), &v[i + 1..]),
            None => (None, v),
        };
        if userinfo.is_some_and(|u| !chars(u, |c| unreserved_or_sub_delim(c) || c == b':')) {
            return false;
        }
        let (host_ok, after) = if rest.first() == Some(&b'[') {
            match rest.iter().position(|&c| c == b']') {
                Some(end) => (
                    end > 1
                        && rest[1..end]
                            .iter()
                            .all(|&c| unreserved_or_sub_delim(c) || c == b':'),
                    &rest[end + 1..],
                ),
                None => return false,
            }
        } else {
            let end = rest.iter().position(|&c| c == b':').unwrap_or(rest.len());
            (chars(&rest[..end], unreserved_or_sub_delim), &rest[end..])
        };
        host_ok
            && (after.is_empty() || (after[0] == b':' && after[1..].iter().all(u8::is_ascii_digit)))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn paths() {
            for ok in ["", "/", "/moq", "/a/b%20c", "/x?y=1&z", "?q"] {
                assert!(is_path_and_query(ok.as_bytes()), "{ok}");
            }
            for bad in ["moq", "/a b", "/%2", "/%zz", "/a#f"] {
                assert!(!is_path_and_query(bad.as_bytes()), "{bad}");
            }
        }

        #[test]
        fn authorities() {
            for ok in [
                "",
                "relay.example",
                "127.0.0.1:4443",
                "u:p@h:1",
                "[::1]:443",
                "h:",
            ] {
                assert!(is_authority(ok.as_bytes()), "{ok}");
            }
            for bad in ["bad^authority", "a b", "h:44x", "[::1", "[]", "h:1:2"] {
                assert!(!is_authority(bad.as_bytes()), "{bad}");
            }
        }
    }
}
