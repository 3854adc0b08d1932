//! Token alias lifetimes (§9.2.1.1, §9.3.2.5): an alias lives from its REGISTER until its
//! DELETE, across requests, and is registered even by a request that fails; a REGISTER_TOKEN in
//! CLIENT_SETUP larger than the server's cache is used by value and does not end the session.
//! Each check first sees the relay accept a PUBLISH_NAMESPACE carrying a token, so that an
//! answer to a later request tells about the alias, not about the relay's view of tokens.

use super::params::unknown_alias_answer;
use super::raw::{describe as describe_event, fields, frame, tuple, varint, Event, Raw};
use super::{CheckOutput, Env, Verdict};
use crate::cases::Failure;
use bytes::{BufMut, BytesMut};
use moqlink_model::control::*;
use moqlink_model::params::{Parameter, SetupParameter, Token, VersionParameters};
use moqlink_model::{Blob, GroupOrder, SessionErrorCode, TrackNamespace, Version};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

/// The token value these checks register.
const VALUE: &[u8] = b"moqlink-conformance-alias";

/// The cache size of one REGISTER of [`VALUE`] (§9.3.2.4: 16 bytes plus the value).
const SIZE: u64 = 16 + VALUE.len() as u64;

fn register(alias: u64) -> Token {
    Token::Register {
        alias,
        token_type: 0,
        token_value: Blob::from(VALUE.to_vec()),
    }
}

fn params(token: Token) -> VersionParameters {
    let mut p = VersionParameters::new();
    p.push(Parameter::AuthorizationToken { value: token });
    p
}

/// PUBLISH_NAMESPACE `id` for `ns` carrying `token`.
fn announce(id: u64, ns: TrackNamespace, token: Token) -> ControlMessage {
    ControlMessage::PublishNamespace(PublishNamespace {
        request_id: id,
        namespace: ns,
        parameters: params(token),
    })
}

/// Skips unless the relay's MAX_AUTH_TOKEN_CACHE_SIZE holds one registration.
fn need_cache(raw: &Raw) -> Result<u64, Verdict> {
    let cache = raw
        .server
        .as_ref()
        .and_then(|s| s.parameters.max_auth_token_cache_size())
        .unwrap_or(0);
    if cache < SIZE {
        return Err(Verdict::NotApplicable(format!(
            "the relay's MAX_AUTH_TOKEN_CACHE_SIZE {cache} does not hold a {SIZE}-byte token"
        )));
    }
    Ok(cache)
}

/// Sends PUBLISH_NAMESPACE `id` with `token` and requires PUBLISH_NAMESPACE_OK: a
/// PUBLISH_NAMESPACE_ERROR skips the check (the relay does not accept this token, so its later
/// answers tell nothing about aliases), anything else fails it.
async fn accepted_baseline(
    env: &Env,
    raw: &mut Raw,
    id: u64,
    ns: TrackNamespace,
    token: Token,
    what: &str,
) -> Result<(), Verdict> {
    raw.send(&announce(id, ns, token)).await?;
    env.step(format!("the answer to {what}"));
    match raw.announce_reply(id).await {
        Event::Message(ControlMessage::PublishNamespaceOk(_)) => Ok(()),
        Event::Message(ControlMessage::PublishNamespaceError(e)) => {
            Err(Verdict::NotApplicable(format!(
                "the relay refused {what} (PUBLISH_NAMESPACE_ERROR 0x{:x} {:?}): it does not \
                 accept this token, so its answers cannot show what an alias names",
                e.error_code,
                e.reason.to_string()
            )))
        }
        other => Err(Failure::new(
            "PUBLISH_NAMESPACE_OK",
            describe_event(&other),
            format!("{what} (within MAX_AUTH_TOKEN_CACHE_SIZE) was not answered"),
        )
        .into()),
    }
}

/// Sends PUBLISH_NAMESPACE `id` with USE_ALIAS `alias` and requires PUBLISH_NAMESPACE_OK.
async fn alias_accepted(
    env: &Env,
    raw: &mut Raw,
    id: u64,
    ns: TrackNamespace,
    alias: u64,
    before: &str,
) -> CheckOutput {
    raw.send(&announce(id, ns, Token::UseAlias { alias }))
        .await?;
    env.step(format!("the answer to USE_ALIAS {alias}"));
    match raw.announce_reply(id).await {
        Event::Message(ControlMessage::PublishNamespaceOk(_)) => Ok(format!(
            "{before}; PUBLISH_NAMESPACE with USE_ALIAS {alias} answered PUBLISH_NAMESPACE_OK"
        )),
        other => Err(Failure::new(
            "PUBLISH_NAMESPACE_OK (the alias names the registered token)",
            describe_event(&other),
            format!(
                "{before}; then PUBLISH_NAMESPACE with USE_ALIAS {alias} was not accepted, \
                 though the same token was"
            ),
        )
        .into()),
    }
}

/// `auth-token-alias-retired`: REGISTER alias 3, DELETE it, then USE_ALIAS 3: rejected as
/// unknown.
pub async fn alias_retired(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    need_cache(&raw)?;
    let what = "PUBLISH_NAMESPACE with REGISTER of alias 3";
    accepted_baseline(
        &env,
        &mut raw,
        0,
        env.namespace_with(&["a"]),
        register(3),
        what,
    )
    .await?;
    raw.send(&announce(
        2,
        env.namespace_with(&["b"]),
        Token::Delete { alias: 3 },
    ))
    .await?;
    env.step("the answer to DELETE of alias 3");
    let deleted = match raw.announce_reply(2).await {
        ev @ Event::Message(_) => describe_event(&ev),
        other => {
            return Err(Failure::new(
                "PUBLISH_NAMESPACE_OK or _ERROR",
                describe_event(&other),
                "PUBLISH_NAMESPACE with DELETE of the registered alias 3 was not answered",
            )
            .into())
        }
    };
    let ns = env.namespace_with(&["c"]);
    raw.send(&announce(4, ns, Token::UseAlias { alias: 3 }))
        .await?;
    env.step("the answer to USE_ALIAS 3 after its DELETE");
    let (after, _) = unknown_alias_answer(&mut raw, 4, "USE_ALIAS of alias 3").await?;
    Ok(format!(
        "REGISTER of alias 3 accepted; DELETE answered {deleted}; {after}"
    ))
}

/// `auth-token-alias-persists`: REGISTER alias 4 in one PUBLISH_NAMESPACE, USE_ALIAS 4 in a
/// later one: accepted as the token.
pub async fn alias_persists(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    need_cache(&raw)?;
    let what = "PUBLISH_NAMESPACE with REGISTER of alias 4";
    accepted_baseline(
        &env,
        &mut raw,
        0,
        env.namespace_with(&["a"]),
        register(4),
        what,
    )
    .await?;
    let before = format!("{what} answered PUBLISH_NAMESPACE_OK");
    alias_accepted(&env, &mut raw, 2, env.namespace_with(&["b"]), 4, &before).await
}

/// `auth-token-alias-registered-on-failure`: a SUBSCRIBE nobody can serve carries REGISTER of
/// alias 5 and fails; USE_ALIAS 5 in a later PUBLISH_NAMESPACE is accepted.
pub async fn alias_registered_on_failure(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    need_cache(&raw)?;
    let value = Token::UseValue {
        token_type: 0,
        token_value: Blob::from(VALUE.to_vec()),
    };
    let what = "PUBLISH_NAMESPACE with the token by value (USE_VALUE)";
    accepted_baseline(&env, &mut raw, 0, env.namespace_with(&["a"]), value, what).await?;
    raw.send(&ControlMessage::Subscribe(Subscribe {
        request_id: 2,
        namespace: env.namespace_with(&["nobody-publishes"]),
        name: Blob::from("t"),
        subscriber_priority: 128,
        group_order: GroupOrder::Original,
        forward: true,
        filter: Filter::LargestObject,
        parameters: params(register(5)),
    }))
    .await?;
    env.step("the answer to SUBSCRIBE with REGISTER of alias 5");
    let failed = loop {
        match raw.next(T).await {
            Event::Message(ControlMessage::SubscribeError(e)) if e.request_id == 2 => {
                break format!(
                    "SUBSCRIBE to a track nobody publishes, with REGISTER of alias 5, answered \
                     SUBSCRIBE_ERROR 0x{:x}",
                    e.error_code
                )
            }
            Event::Message(ControlMessage::SubscribeOk(m)) if m.request_id == 2 => {
                return Err(Verdict::NotApplicable(
                    "the relay accepted a SUBSCRIBE to a track nobody publishes: the check needs \
                     a request that fails"
                        .into(),
                ))
            }
            Event::Message(_) => {}
            other => {
                return Err(Failure::new(
                    "SUBSCRIBE_ERROR",
                    describe_event(&other),
                    "SUBSCRIBE to a track nobody publishes, with REGISTER of alias 5 (within \
                     MAX_AUTH_TOKEN_CACHE_SIZE), was not answered",
                )
                .into())
            }
        }
    };
    alias_accepted(&env, &mut raw, 4, env.namespace_with(&["b"]), 5, &failed).await
}

/// Opens a session whose CLIENT_SETUP carries REGISTER_TOKEN of alias 9 one byte larger than
/// the relay's MAX_AUTH_TOKEN_CACHE_SIZE (learnt from a first session), then sends a
/// PUBLISH_NAMESPACE without token, which must be answered: the session stayed open.
async fn oversized_setup(env: &Env) -> Result<(Raw, String), Verdict> {
    let cache = {
        let probe = Raw::setup(env, "probe_connection_id", None).await?;
        let c = probe
            .server
            .as_ref()
            .and_then(|s| s.parameters.max_auth_token_cache_size())
            .unwrap_or(0);
        probe.close();
        c
    };
    let len = (cache + 1).saturating_sub(16).max(1) as usize;
    if len > 30_000 {
        return Err(Verdict::NotApplicable(format!(
            "the relay's MAX_AUTH_TOKEN_CACHE_SIZE {cache} needs a token larger than this check \
             sends in CLIENT_SETUP"
        )));
    }
    let mut raw = Raw::open(env, "connection_id").await?;
    let mut p = raw.setup_parameters(None);
    p.push(SetupParameter::AuthorizationToken {
        value: Token::Register {
            alias: 9,
            token_type: 0,
            token_value: Blob::from(vec![b'x'; len]),
        },
    });
    raw.send(&ControlMessage::ClientSetup(ClientSetup {
        versions: vec![Version::DRAFT_14],
        parameters: p,
    }))
    .await?;
    let what = format!(
        "CLIENT_SETUP with REGISTER_TOKEN of alias 9, {} bytes (16 + {len}), past \
         MAX_AUTH_TOKEN_CACHE_SIZE {cache}",
        16 + len
    );
    env.step("SERVER_SETUP");
    match raw.next(T).await {
        Event::Message(ControlMessage::ServerSetup(s)) => raw.server = Some(s),
        other => {
            return Err(Failure::new(
                "SERVER_SETUP, the session open",
                describe_event(&other),
                format!("{what}: the setup did not complete"),
            )
            .into())
        }
    }
    raw.send(&ControlMessage::PublishNamespace(PublishNamespace {
        request_id: 0,
        namespace: env.namespace_with(&["open"]),
        parameters: VersionParameters::new(),
    }))
    .await?;
    env.step("the answer to a PUBLISH_NAMESPACE after that setup");
    match raw.announce_reply(0).await {
        ev @ Event::Message(_) => {
            let answer = describe_event(&ev);
            Ok((
                raw,
                format!("{what}: SERVER_SETUP, and PUBLISH_NAMESPACE answered {answer}"),
            ))
        }
        other => Err(Failure::new(
            "the session open (PUBLISH_NAMESPACE answered)",
            describe_event(&other),
            format!("{what}; then a PUBLISH_NAMESPACE without token"),
        )
        .into()),
    }
}

/// `setup-token-overflow-kept-open`: an oversized REGISTER_TOKEN in CLIENT_SETUP does not end
/// the session.
pub async fn setup_token_overflow_kept_open(env: Env) -> CheckOutput {
    Ok(oversized_setup(&env).await?.1)
}

/// `setup-token-overflow-use-value`: after an oversized REGISTER_TOKEN in CLIENT_SETUP (used by
/// value), USE_ALIAS of its alias is rejected as unknown. When it is accepted, USE_ALIAS of an
/// alias nobody registered tells whether the relay rejects unknown aliases at all (if not,
/// `auth-token-alias-unknown` reports that, and this check is skipped).
pub async fn setup_token_overflow_use_value(env: Env) -> CheckOutput {
    let (mut raw, before) = oversized_setup(&env).await?;
    raw.send(&announce(
        2,
        env.namespace_with(&["alias"]),
        Token::UseAlias { alias: 9 },
    ))
    .await?;
    env.step("the answer to USE_ALIAS 9");
    match raw.announce_reply(2).await {
        Event::Message(ControlMessage::PublishNamespaceOk(_)) => {}
        ev @ (Event::Message(_) | Event::Closed { by_peer: true, .. }) => {
            return Ok(format!(
                "{before}; USE_ALIAS of alias 9 rejected: {}",
                describe_event(&ev)
            ))
        }
        other => {
            return Err(Failure::new(
                "USE_ALIAS 9 rejected as unknown",
                describe_event(&other),
                format!("{before}; then PUBLISH_NAMESPACE with USE_ALIAS 9 was not answered"),
            )
            .into())
        }
    }
    raw.send(&announce(
        4,
        env.namespace_with(&["never"]),
        Token::UseAlias { alias: 11 },
    ))
    .await?;
    env.step("the answer to USE_ALIAS 11 (never registered)");
    match raw.announce_reply(4).await {
        Event::Message(ControlMessage::PublishNamespaceOk(_)) => Err(Verdict::NotApplicable(
            "the relay accepts USE_ALIAS of an alias nobody registered (auth-token-alias-unknown \
             reports that), so USE_ALIAS 9 cannot show whether the setup token was registered"
                .into(),
        )),
        other => Err(Failure::new(
            "USE_ALIAS 9 rejected as unknown (the setup token used by value, not registered)",
            "PUBLISH_NAMESPACE_OK (request 2)",
            format!(
                "{before}; USE_ALIAS 9 was accepted, while USE_ALIAS 11 (never registered) was \
                 answered {}: the oversized setup token was registered",
                describe_event(&other)
            ),
        )
        .into()),
    }
}

/// `key-value-value-mismatch`: an AUTHORIZATION TOKEN (a type the relay understands) whose
/// Value is USE_ALIAS of alias 5 followed by one byte that serialization has no field for.
pub async fn value_mismatch(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    // USE_ALIAS (0x2), alias 5, then 0x00: the Token is whole after two bytes.
    let value = [0x02, 0x05, 0x00];
    let mut b = BytesMut::new();
    varint(&mut b, 0);
    tuple(&mut b, &fields(&env.namespace()));
    varint(&mut b, 1);
    varint(&mut b, 0x03);
    varint(&mut b, value.len() as u64);
    b.put_slice(&value);
    raw.send_bytes(frame(0x6, &b)).await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::KeyValueFormattingError,
            T,
            "PUBLISH_NAMESPACE with an AUTHORIZATION TOKEN of Length 3, bytes 02 05 00 \
             (USE_ALIAS of alias 5, then a byte the USE_ALIAS serialization has no field for)",
        )
        .await?)
}
