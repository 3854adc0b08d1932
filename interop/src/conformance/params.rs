//! Parameter rules (§1.4.2, §9.2.1.1): a key-value Length over its maximum (in a control
//! message and in an object's extension headers), a Token that does not decode, and token
//! aliases (unknown, registered twice, past MAX_AUTH_TOKEN_CACHE_SIZE).
//! The parameters are written byte by byte in PUBLISH_NAMESPACE on a [`Raw`] connection.

use super::harness::{objects_relayed, subscribe_ok, within, Endpoint};
use super::raw::{
    describe as describe_event, fields, frame, subgroup_header, subgroup_object, tuple, varint,
    Event, Raw,
};
use super::{refused, CheckOutput, Env, Verdict};
use crate::cases::{request_error_name, Failure};
use bytes::{BufMut, Bytes, BytesMut};
use moqlink_model::control::*;
use moqlink_model::{SessionErrorCode, TrackNamespace};
use moqlink_transport::{Connection, SendStream};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

/// One version-specific parameter, as written: `ty`, then (odd types) a Length and the bytes.
struct RawParam {
    ty: u64,
    /// The Length written for odd types (may differ from `value.len()`).
    len: u64,
    value: Vec<u8>,
}

impl RawParam {
    fn bytes(ty: u64, value: Vec<u8>) -> Self {
        RawParam {
            ty,
            len: value.len() as u64,
            value,
        }
    }
}

/// An AUTHORIZATION TOKEN parameter (0x03) carrying `token` as its value.
fn token_param(token: Vec<u8>) -> RawParam {
    RawParam::bytes(0x03, token)
}

/// A Token structure with an alias: Alias Type, Token Alias, and for REGISTER a type and value.
fn token(alias_type: u64, alias: u64, register: Option<&[u8]>) -> Vec<u8> {
    let mut b = BytesMut::new();
    varint(&mut b, alias_type);
    varint(&mut b, alias);
    if let Some(value) = register {
        varint(&mut b, 0);
        b.put_slice(value);
    }
    b.to_vec()
}

fn put_params(b: &mut BytesMut, params: &[RawParam]) {
    varint(b, params.len() as u64);
    for p in params {
        varint(b, p.ty);
        if p.ty % 2 == 1 {
            varint(b, p.len);
        }
        b.put_slice(&p.value);
    }
}

/// PUBLISH_NAMESPACE (0x6) with `params` written as given.
fn announce_raw(id: u64, ns: &TrackNamespace, params: &[RawParam]) -> Bytes {
    let mut b = BytesMut::new();
    varint(&mut b, id);
    tuple(&mut b, &fields(ns));
    put_params(&mut b, params);
    frame(0x6, &b)
}

/// `key-value-length-exceeded`: a PUBLISH_NAMESPACE parameter whose Length is 2^16 (which a
/// control message cannot hold either), then an object extension header of Length 2^16 with
/// all its bytes on a publisher's subgroup stream (where nothing else is wrong).
pub async fn key_value_length_exceeded(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    let param = RawParam {
        ty: 0x3b,
        len: 1 << 16,
        value: vec![0x61; 64],
    };
    raw.send_bytes(announce_raw(0, &env.namespace_with(&["control"]), &[param]))
        .await?;
    let control = raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "PUBLISH_NAMESPACE with a parameter (type 0x3b) of Length 65,536",
        )
        .await?;
    let data = extension_too_long(&env).await?;
    Ok(format!("{control}; {data}"))
}

/// One subgroup stream: SUBGROUP_HEADER 0x11 (Subgroup ID 0, extensions) for `group`, object
/// 0 with the extension block `ext` and payload `body`, then FIN.
fn subgroup_stream(alias: u64, group: u64, ext: &[u8], body: &[u8]) -> Bytes {
    let mut b = subgroup_header(0x11, alias, group);
    subgroup_object(&mut b, 0, Some(ext), body);
    b.freeze()
}

/// Writes `bytes` on a new uni stream and finishes it.
async fn send_stream(p: &Raw, bytes: Bytes) -> Result<(), Failure> {
    let mut stream = p.conn.open_uni().await.map_err(|e| {
        Failure::new(
            "a data stream to the relay",
            e.to_string(),
            "could not open a subgroup stream",
        )
    })?;
    let _ = stream.write_chunk(bytes).await;
    let _ = stream.finish();
    Ok(())
}

/// A publisher answers the relay's SUBSCRIBE, sends object 0.0 (to see the relay forwards its
/// objects), then object 1.0 with an extension header (type 0x3b) of Length 65,536 and as many
/// bytes; the relay must close the publisher's session.
async fn extension_too_long(env: &Env) -> Result<String, Verdict> {
    let mut p = Raw::setup(env, "publisher_connection_id", Some(10)).await?;
    p.announce(env, 0, env.namespace()).await?;
    let s = Endpoint::connect(env, "subscriber_connection_id").await?;
    let pending = s.subscribe_later(env.track("t"));
    let id = p
        .relay_subscribe(env)
        .await
        .inspect_err(|_| pending.abort())?;
    const ALIAS: u64 = 3;
    p.send(&subscribe_ok(id, ALIAS)).await?;
    env.step("SUBSCRIBE_OK at the subscriber");
    let sub = within(T, "SUBSCRIBE_OK", pending)
        .await?
        .map_err(|e| Failure::new("the subscribe task", e.to_string(), "local"))?
        .map_err(|e| refused(e, "SUBSCRIBE_OK", "the relay refused the SUBSCRIBE"))?;
    send_stream(&p, subgroup_stream(ALIAS, 0, &[], b"valid")).await?;
    objects_relayed(
        env,
        &sub,
        1,
        "object 0.0",
        "the relay did not forward the valid object this check sends first",
    )
    .await?;
    let value_len = 1u64 << 16;
    let mut ext = BytesMut::new();
    varint(&mut ext, 0x3b);
    varint(&mut ext, value_len);
    ext.put_bytes(b'e', value_len as usize);
    send_stream(&p, subgroup_stream(ALIAS, 1, &ext, b"x")).await?;
    let r = p
        .expect_close(
            env,
            SessionErrorCode::ProtocolViolation,
            T,
            "object 0.0 relayed, then object 1.0 with an extension header (type 0x3b) of \
             Length 65,536 on a subgroup stream",
        )
        .await;
    r.map_err(|mut f| {
        let late = sub.objects().iter().filter(|o| o.group == 1).count();
        f.received.push_str(&format!(
            "; the subscriber received {late} object(s) of group 1"
        ));
        f.into()
    })
}

/// `key-value-formatting`: an AUTHORIZATION TOKEN whose Token ends inside its fields.
pub async fn key_value_formatting(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    // REGISTER (0x1), alias 7, and then no Token Type.
    let param = token_param(vec![0x01, 0x07]);
    raw.send_bytes(announce_raw(0, &env.namespace(), &[param]))
        .await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::KeyValueFormattingError,
            T,
            "PUBLISH_NAMESPACE with an AUTHORIZATION TOKEN of bytes 01 07 (REGISTER, alias 7, \
             no Token Type)",
        )
        .await?)
}

/// How the relay treated a message that references an unregistered token alias, and whether
/// it closed the session doing so.
pub(super) async fn unknown_alias_answer(
    raw: &mut Raw,
    id: u64,
    what: &str,
) -> Result<(String, bool), Verdict> {
    match raw.announce_reply(id).await {
        Event::Message(ControlMessage::PublishNamespaceError(e)) => Ok((
            format!(
                "{what}: PUBLISH_NAMESPACE_ERROR 0x{:x} ({}) {:?}",
                e.error_code,
                request_error_name(
                    moqlink_model::control::MessageType::PublishNamespaceError,
                    e.error_code
                ),
                e.reason.to_string()
            ),
            false,
        )),
        Event::Closed {
            code,
            reason,
            by_peer: true,
        } if code == SessionErrorCode::UnknownAuthTokenAlias.code() => Ok((
            format!("{what}: session closed with UNKNOWN_AUTH_TOKEN_ALIAS {reason:?}"),
            true,
        )),
        ev @ Event::Closed { by_peer: true, .. } => Err(Verdict::Should(Failure::new(
            "the message rejected with UNKNOWN_AUTH_TOKEN_ALIAS",
            describe_event(&ev),
            format!(
                "{what}: the relay rejected the message by closing the session, but not with \
                 the code §9.2.1.1 names"
            ),
        ))),
        other => Err(Failure::new(
            "the message rejected (UNKNOWN_AUTH_TOKEN_ALIAS)",
            describe_event(&other),
            format!("{what}: a message referencing an unregistered alias MUST be rejected"),
        )
        .into()),
    }
}

/// `auth-token-alias-unknown`: PUBLISH_NAMESPACE with USE_ALIAS, then with DELETE, of aliases
/// never registered (on a second connection if the first was closed).
pub async fn auth_token_alias_unknown(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    let use_alias = token_param(token(0x2, 5, None));
    raw.send_bytes(announce_raw(0, &env.namespace_with(&["a"]), &[use_alias]))
        .await?;
    env.step("the answer to USE_ALIAS 5");
    let (first, closed) = unknown_alias_answer(&mut raw, 0, "USE_ALIAS of alias 5").await?;
    let (mut raw, id) = if closed {
        (Raw::setup(&env, "second_connection_id", None).await?, 0)
    } else {
        (raw, 2)
    };
    let delete = token_param(token(0x0, 6, None));
    raw.send_bytes(announce_raw(id, &env.namespace_with(&["b"]), &[delete]))
        .await?;
    env.step("the answer to DELETE 6");
    let (second, _) = unknown_alias_answer(&mut raw, id, "DELETE of alias 6").await?;
    Ok(format!("{first}; {second}"))
}

/// The token value the alias checks register.
const TOKEN_VALUE: &[u8] = b"moqlink-conformance";

/// The relay's MAX_AUTH_TOKEN_CACHE_SIZE (0 when absent, §9.3.2.4).
fn cache_size(raw: &Raw) -> u64 {
    raw.server
        .as_ref()
        .and_then(|s| s.parameters.max_auth_token_cache_size())
        .unwrap_or(0)
}

/// `auth-token-alias-duplicate`: REGISTER of alias 1 twice.
pub async fn auth_token_alias_duplicate(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    let size = 16 + TOKEN_VALUE.len() as u64;
    let cache = cache_size(&raw);
    if cache < 2 * size {
        return Err(Verdict::NotApplicable(format!(
            "the relay's MAX_AUTH_TOKEN_CACHE_SIZE {cache} does not hold two {size}-byte tokens"
        )));
    }
    let register = || token_param(token(0x1, 1, Some(TOKEN_VALUE)));
    raw.send_bytes(announce_raw(0, &env.namespace_with(&["a"]), &[register()]))
        .await?;
    env.step("the answer to REGISTER alias 1");
    let first = match raw.announce_reply(0).await {
        Event::Message(m) => describe_event(&Event::Message(m)),
        other => {
            return Err(Failure::new(
                "PUBLISH_NAMESPACE_OK or _ERROR (alias 1 registered)",
                describe_event(&other),
                format!(
                    "the first REGISTER of alias 1 ({size} bytes, within MAX_AUTH_TOKEN_CACHE_SIZE \
                     {cache}) ended the session"
                ),
            )
            .into())
        }
    };
    raw.send_bytes(announce_raw(2, &env.namespace_with(&["b"]), &[register()]))
        .await?;
    let r = raw
        .expect_close(
            &env,
            SessionErrorCode::DuplicateAuthTokenAlias,
            T,
            &format!("REGISTER of alias 1 again (the first was answered {first})"),
        )
        .await?;
    Ok(r)
}

/// `auth-token-cache-overflow`: a REGISTER larger than the relay's MAX_AUTH_TOKEN_CACHE_SIZE.
pub async fn auth_token_cache_overflow(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    let cache = cache_size(&raw);
    // The value is 16 bytes short of the cache: 16 + value = cache + 1.
    let len = (cache + 1).saturating_sub(16).max(1) as usize;
    if len > 60_000 {
        return Err(Verdict::NotApplicable(format!(
            "the relay's MAX_AUTH_TOKEN_CACHE_SIZE {cache} needs a token larger than a control \
             message"
        )));
    }
    let value = vec![b'x'; len];
    let register = token_param(token(0x1, 1, Some(&value)));
    raw.send_bytes(announce_raw(0, &env.namespace(), &[register]))
        .await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::AuthTokenCacheOverflow,
            T,
            &format!(
                "REGISTER of a {}-byte token (16 + {len}) with MAX_AUTH_TOKEN_CACHE_SIZE {cache}",
                16 + len
            ),
        )
        .await?)
}
