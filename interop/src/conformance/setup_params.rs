//! The PATH and AUTHORITY setup parameters (§9.3.2.1, §9.3.2.2): never in SERVER_SETUP, and
//! a client's value that is not RFC 3986 syntax closes the session with MALFORMED_PATH or
//! MALFORMED_AUTHORITY (raw QUIC only: over WebTransport neither may be sent at all).

use super::raw::Raw;
use super::{CheckOutput, Env, Verdict};
use crate::cases::Failure;
use moqlink_model::control::*;
use moqlink_model::params::{SetupParameter, SetupParameters};
use moqlink_model::{Blob, SessionErrorCode, Version};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

/// Lists SERVER_SETUP's parameter types, e.g. `0x2, 0x7`.
fn keys(p: &SetupParameters) -> String {
    let names: Vec<String> =
        p.0.iter()
            .map(|x| match x {
                SetupParameter::Path { .. } => "PATH (0x1)".to_string(),
                SetupParameter::Authority { .. } => "AUTHORITY (0x5)".to_string(),
                SetupParameter::MaxRequestId { value } => format!("MAX_REQUEST_ID {value}"),
                SetupParameter::MaxAuthTokenCacheSize { value } => {
                    format!("MAX_AUTH_TOKEN_CACHE_SIZE {value}")
                }
                SetupParameter::AuthorizationToken { .. } => "AUTHORIZATION TOKEN".to_string(),
                SetupParameter::Implementation { value } => {
                    format!("MOQT_IMPLEMENTATION {:?}", String::from_utf8_lossy(value))
                }
                SetupParameter::Unknown { key, .. } => format!("0x{key:x}"),
            })
            .collect();
    if names.is_empty() {
        "no parameters".into()
    } else {
        names.join(", ")
    }
}

/// The relay's SERVER_SETUP to a well-formed CLIENT_SETUP.
async fn server_setup(env: &Env) -> Result<ServerSetup, Verdict> {
    let raw = Raw::setup(env, "connection_id", None).await?;
    Ok(raw.server.clone().expect("Raw::setup read SERVER_SETUP"))
}

/// `server-setup-no-authority`: SERVER_SETUP carries no AUTHORITY.
pub async fn no_authority(env: Env) -> CheckOutput {
    let s = server_setup(&env).await?;
    if s.parameters.authority().is_some() {
        return Err(Failure::new(
            "SERVER_SETUP without AUTHORITY",
            format!("SERVER_SETUP with {}", keys(&s.parameters)),
            "AUTHORITY MUST NOT be used by the server (§9.3.2.1)",
        )
        .into());
    }
    Ok(format!(
        "SERVER_SETUP without AUTHORITY ({})",
        keys(&s.parameters)
    ))
}

/// `server-setup-no-path`: SERVER_SETUP carries no PATH.
pub async fn no_path(env: Env) -> CheckOutput {
    let s = server_setup(&env).await?;
    if s.parameters.path().is_some() {
        return Err(Failure::new(
            "SERVER_SETUP without PATH",
            format!("SERVER_SETUP with {}", keys(&s.parameters)),
            "PATH MUST NOT be used by the server (§9.3.2.2)",
        )
        .into());
    }
    Ok(format!(
        "SERVER_SETUP without PATH ({})",
        keys(&s.parameters)
    ))
}

/// CLIENT_SETUP for draft-14 with PATH `path` and AUTHORITY `authority` (the URL's where not
/// given), over raw QUIC only.
async fn setup_with(
    env: &Env,
    path: Option<&str>,
    authority: Option<&str>,
) -> Result<Raw, Verdict> {
    if !env.ctx.relay.starts_with("moqt://") {
        return Err(Verdict::NotApplicable(
            "applies to raw QUIC (moqt://) URLs only: over WebTransport PATH and AUTHORITY are \
             not sent"
                .into(),
        ));
    }
    let mut raw = Raw::open(env, "connection_id").await?;
    let target = raw.target.clone();
    let mut parameters = SetupParameters::new();
    let url_path = target.as_ref().map(|t| t.path.clone()).unwrap_or_default();
    let url_authority = target.map(|t| t.authority).unwrap_or_default();
    parameters.push(SetupParameter::Path {
        value: Blob::from(path.unwrap_or(&url_path)),
    });
    parameters.push(SetupParameter::Authority {
        value: Blob::from(authority.unwrap_or(&url_authority)),
    });
    raw.send(&ControlMessage::ClientSetup(ClientSetup {
        versions: vec![Version::DRAFT_14],
        parameters,
    }))
    .await?;
    Ok(raw)
}

/// `setup-path-malformed`: PATH `moq-conformance` (no leading `/`).
pub async fn path_malformed(env: Env) -> CheckOutput {
    let mut raw = setup_with(&env, Some("moq-conformance"), None).await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::MalformedPath,
            T,
            "CLIENT_SETUP with PATH \"moq-conformance\" (not path-abempty)",
        )
        .await?)
}

/// `setup-authority-malformed`: AUTHORITY `bad^authority` (`^` is not allowed in a host).
pub async fn authority_malformed(env: Env) -> CheckOutput {
    let mut raw = setup_with(&env, None, Some("bad^authority")).await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::MalformedAuthority,
            T,
            "CLIENT_SETUP with AUTHORITY \"bad^authority\"",
        )
        .await?)
}

/// `server-setup-implementation-utf8`: MOQT_IMPLEMENTATION in SERVER_SETUP, if any, is UTF-8.
pub async fn implementation_utf8(env: Env) -> CheckOutput {
    let s = server_setup(&env).await?;
    match s.parameters.implementation() {
        None => Ok("SERVER_SETUP carries no MOQT_IMPLEMENTATION".into()),
        Some(v) => match std::str::from_utf8(v) {
            Ok(text) => Ok(format!("MOQT_IMPLEMENTATION {text:?} is UTF-8")),
            Err(e) => Err(Failure::new(
                "MOQT_IMPLEMENTATION as UTF-8",
                format!("bytes {} ({e})", super::harness::hex(v)),
                "the value SHOULD be a UTF-8 encoded string (§9.3.2.6)",
            )
            .into()),
        },
    }
}

/// `setup-authority-over-webtransport`: AUTHORITY in CLIENT_SETUP on WebTransport.
pub async fn authority_over_webtransport(env: Env) -> CheckOutput {
    if !env.ctx.relay.starts_with("https://") {
        return Err(Verdict::NotApplicable(
            "applies to WebTransport (https://) URLs only".into(),
        ));
    }
    let mut raw = Raw::open(&env, "connection_id").await?;
    let mut parameters = raw.setup_parameters(Some(0));
    parameters.push(SetupParameter::Authority {
        value: Blob::from("relay.example"),
    });
    raw.send(&ControlMessage::ClientSetup(ClientSetup {
        versions: vec![Version::DRAFT_14],
        parameters,
    }))
    .await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::InvalidAuthority,
            T,
            "AUTHORITY on a WebTransport session",
        )
        .await?)
}
