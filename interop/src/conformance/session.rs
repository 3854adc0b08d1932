//! Session checks: version negotiation and setup parameters (§9.3), GOAWAY (§9.4), and the
//! relay keeping to a client's MAX_REQUEST_ID of 0 (§9.3.2.3).

use super::harness::{expect_close, payload, subscribe, write_group, Endpoint, Publisher, SubOpts};
use super::raw::{describe, Event, Raw};
use super::{CheckOutput, Env, Verdict};
use crate::cases::Failure;
use moqlink_model::control::*;
use moqlink_model::params::{KvValue, SetupParameter};
use moqlink_model::{Blob, SessionErrorCode, Version};
use moqlink_transport::track::{Object, SubgroupInfo};
use std::time::Duration;

/// A version no MoQ implementation uses.
const UNKNOWN_VERSION: Version = Version(0x0a1a_2a3a);

/// `setup-version-negotiation-failed`: only an unknown version offered.
pub async fn version_negotiation_failed(env: Env) -> CheckOutput {
    let mut raw = Raw::open(&env, "connection_id").await?;
    let setup = ClientSetup {
        versions: vec![UNKNOWN_VERSION],
        parameters: raw.setup_parameters(Some(0)),
    };
    raw.send(&ControlMessage::ClientSetup(setup)).await?;
    let msg = raw
        .expect_close(
            &env,
            SessionErrorCode::VersionNegotiationFailed,
            Duration::from_secs(3),
            "CLIENT_SETUP offering only 0x0a1a2a3a",
        )
        .await?;
    Ok(msg)
}

/// `control-stream-finished`: the client ends its control stream after SETUP.
pub async fn control_stream_finished(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", Some(0)).await?;
    env.step("FIN on the control stream");
    raw.finish()?;
    let msg = raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            Duration::from_secs(3),
            "the control stream ended after SETUP",
        )
        .await?;
    Ok(msg)
}

/// `setup-selects-offered-version`: an unknown version first, draft-14 second.
pub async fn selects_offered_version(env: Env) -> CheckOutput {
    let mut raw = Raw::open(&env, "connection_id").await?;
    let setup = ClientSetup {
        versions: vec![UNKNOWN_VERSION, Version::DRAFT_14],
        parameters: raw.setup_parameters(Some(0)),
    };
    raw.send(&ControlMessage::ClientSetup(setup)).await?;
    env.step("SERVER_SETUP");
    match raw.next(Duration::from_secs(3)).await {
        Event::Message(ControlMessage::ServerSetup(s)) if s.version == Version::DRAFT_14 => {
            Ok("SERVER_SETUP selected 0xff00000e from [0x0a1a2a3a, 0xff00000e]".into())
        }
        other => Err(Failure::new(
            "SERVER_SETUP selecting 0xff00000e",
            describe(&other),
            "the relay must reply with one of the offered versions it supports",
        )
        .into()),
    }
}

/// `setup-unknown-parameter-ignored`: unknown even and odd setup parameters.
pub async fn unknown_setup_parameter(env: Env) -> CheckOutput {
    let mut raw = Raw::open(&env, "connection_id").await?;
    let mut parameters = raw.setup_parameters(Some(0));
    parameters.push(SetupParameter::Unknown {
        key: 0x3a,
        value: KvValue::Varint(12345),
    });
    parameters.push(SetupParameter::Unknown {
        key: 0x3b,
        value: KvValue::Bytes(Blob::from("conformance")),
    });
    parameters.push(SetupParameter::Unknown {
        key: 0x3b,
        value: KvValue::Bytes(Blob::from("repeated")),
    });
    let setup = ClientSetup {
        versions: vec![Version::DRAFT_14],
        parameters,
    };
    raw.send(&ControlMessage::ClientSetup(setup)).await?;
    env.step("SERVER_SETUP");
    match raw.next(Duration::from_secs(3)).await {
        Event::Message(ControlMessage::ServerSetup(_)) => {}
        other => {
            return Err(Failure::new(
                "SERVER_SETUP",
                describe(&other),
                "unknown setup parameters must be ignored",
            )
            .into())
        }
    }
    // The session must still be usable: announce something.
    let ns = env.namespace();
    raw.send(&ControlMessage::PublishNamespace(PublishNamespace {
        request_id: 0,
        namespace: ns,
        parameters: Default::default(),
    }))
    .await?;
    env.step("PUBLISH_NAMESPACE_OK after the setup");
    loop {
        match raw.next(Duration::from_secs(3)).await {
            Event::Message(ControlMessage::PublishNamespaceOk(_)) => {
                return Ok(
                    "SERVER_SETUP and PUBLISH_NAMESPACE_OK despite setup parameters \
                           0x3a, 0x3b, 0x3b"
                        .into(),
                )
            }
            Event::Message(ControlMessage::PublishNamespaceError(e)) if e.error_code == 0x3 => {
                return Ok("SERVER_SETUP despite setup parameters 0x3a, 0x3b, 0x3b \
                           (PUBLISH_NAMESPACE not supported)"
                    .into())
            }
            Event::Message(_) => continue,
            other => {
                return Err(Failure::new(
                    "the session usable after SERVER_SETUP",
                    describe(&other),
                    "unknown setup parameters must be ignored",
                )
                .into())
            }
        }
    }
}

/// `setup-path-over-webtransport`: PATH in CLIENT_SETUP on WebTransport.
pub async fn path_over_webtransport(env: Env) -> CheckOutput {
    if !env.ctx.relay.starts_with("https://") {
        return Err(Verdict::NotApplicable(
            "applies to WebTransport (https://) URLs only".into(),
        ));
    }
    let mut raw = Raw::open(&env, "connection_id").await?;
    let mut parameters = raw.setup_parameters(Some(0));
    parameters.push(SetupParameter::Path {
        value: Blob::from("/conformance"),
    });
    let setup = ClientSetup {
        versions: vec![Version::DRAFT_14],
        parameters,
    };
    raw.send(&ControlMessage::ClientSetup(setup)).await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::InvalidPath,
            Duration::from_secs(3),
            "PATH on a WebTransport session",
        )
        .await?)
}

/// `goaway-with-uri-from-client`: a client's GOAWAY carrying a URI.
pub async fn goaway_with_uri(env: Env) -> CheckOutput {
    let ep = Endpoint::connect(&env, "connection_id").await?;
    ep.session
        .send(ControlMessage::Goaway(Goaway {
            new_session_uri: Blob::from("moqt://elsewhere.invalid/"),
        }))
        .await
        .map_err(|e| Failure::new("GOAWAY sent", e.to_string(), "could not send GOAWAY"))?;
    Ok(expect_close(
        &env,
        &ep.session,
        SessionErrorCode::ProtocolViolation,
        Duration::from_secs(3),
        "GOAWAY with a New Session URI from a client",
    )
    .await?)
}

/// The relay stopped the control stream after one GOAWAY: the rule on a second is untestable.
fn stopped_after_first(f: &Failure) -> Verdict {
    Verdict::NotApplicable(format!(
        "the relay ended the control stream after the first GOAWAY ({}): the rule on multiple \
         GOAWAYs could not be tested",
        f.received
    ))
}

/// `goaway-twice`: a GOAWAY, a request the relay answers (so it has read the GOAWAY before it,
/// the control stream being ordered), then a second GOAWAY. A relay that closes the session after
/// the first GOAWAY leaves the rule untested: that is a skip saying so, not a pass or a failure.
pub async fn goaway_twice(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    if raw.max_request_id == 0 {
        return Err(Verdict::NotApplicable(
            "the relay granted no Request ID: no request can show it read the first GOAWAY".into(),
        ));
    }
    let goaway = ControlMessage::Goaway(Goaway {
        new_session_uri: Blob::default(),
    });
    raw.send(&goaway).await?;
    raw.send(&ControlMessage::PublishNamespace(PublishNamespace {
        request_id: 0,
        namespace: env.namespace(),
        parameters: Default::default(),
    }))
    .await
    .map_err(|f| stopped_after_first(&f))?;
    env.step("the answer to a PUBLISH_NAMESPACE sent after the first GOAWAY");
    let first = loop {
        match raw.next(Duration::from_secs(3)).await {
            Event::Message(
                ControlMessage::PublishNamespaceOk(RequestRef { request_id: 0 })
                | ControlMessage::PublishNamespaceError(RequestError { request_id: 0, .. }),
            ) => break "after the relay answered a request sent after the first",
            Event::Message(_) => {}
            Event::Quiet => break "3 s after the first (no answer to the request sent after it)",
            ev @ Event::Closed { .. } => {
                return Err(Verdict::NotApplicable(format!(
                    "the relay closed the session after the first GOAWAY, before a second was \
                     sent ({}): the rule on multiple GOAWAYs could not be tested",
                    describe(&ev)
                )))
            }
            other => {
                return Err(Failure::new(
                    "an answer to PUBLISH_NAMESPACE",
                    describe(&other),
                    "the relay's control stream broke after one GOAWAY",
                )
                .into())
            }
        }
    };
    raw.send(&goaway)
        .await
        .map_err(|f| stopped_after_first(&f))?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            Duration::from_secs(3),
            &format!("a second GOAWAY, sent {first}"),
        )
        .await?)
}

/// `goaway-keeps-subscriptions`: the subscriber sends GOAWAY, then objects still arrive. §9.4
/// says GOAWAY "does not impact subscription state", but no MUST stops a relay ending the
/// session of a client that said it will close soon: the check's level is the MAY of the same
/// paragraph (only new requests may be rejected), so a miss is reported, not counted.
pub async fn goaway_keeps_subscriptions(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let sub = subscribe(&env, &s, &env.track("t"), SubOpts::default()).await?;
    p.upstream(&env, 1).await?;
    write_group(&env, p.track(), 0, 0..2).await;
    env.step("group 0 before the GOAWAY");
    sub.wait_count(2, Duration::from_secs(3)).await;
    s.session
        .send(ControlMessage::Goaway(Goaway {
            new_session_uri: Blob::default(),
        }))
        .await
        .map_err(|e| Failure::new("GOAWAY sent", e.to_string(), "could not send GOAWAY"))?;
    // A round trip on the ordered control stream: once answered (or refused), the relay has
    // read the GOAWAY. No answer in 3 s: go on anyway.
    let _kept = s
        .announce(&env, env.namespace_with(&["after-goaway"]))
        .await;
    let mut sg = p.track().create_subgroup(SubgroupInfo::new(1, 0, 128));
    for o in 0..2 {
        let _ = sg.write(Object::new(o, payload(&env, 1, o)));
    }
    sg.finish();
    env.step("group 1 after the GOAWAY");
    let arrived = sub
        .wait(Duration::from_secs(3), |g| {
            g.iter().filter(|o| o.group == 1).count() >= 2
        })
        .await;
    s.still_open("subscriber").map_err(|f| {
        Failure::new(
            f.expected,
            f.received,
            "the relay ended the session after the client's GOAWAY; GOAWAY \"does not impact \
             subscription state\" (§9.4), though no MUST forbids the close",
        )
    })?;
    if !arrived {
        return Err(Failure::new(
            "objects 1.0 and 1.1 after the subscriber's GOAWAY",
            super::harness::listing(&sub.objects()),
            "GOAWAY \"does not impact subscription state\" (§9.4; no keyword): the relay \
             stopped delivering",
        )
        .into());
    }
    Ok("objects written after the client's GOAWAY still arrived; session left open".into())
}

/// `max-request-id-zero-honoured`: a publisher that granted no Request IDs gets no request.
pub async fn max_request_id_zero(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "publisher_connection_id", None).await?;
    raw.send(&ControlMessage::PublishNamespace(PublishNamespace {
        request_id: 0,
        namespace: env.namespace(),
        parameters: Default::default(),
    }))
    .await?;
    env.step("PUBLISH_NAMESPACE_OK");
    let mut requests = Vec::new();
    let mut announced = false;
    while !announced {
        match raw.next(Duration::from_secs(3)).await {
            Event::Message(ControlMessage::PublishNamespaceOk(_)) => announced = true,
            Event::Message(ControlMessage::PublishNamespaceError(e)) => {
                return Err(super::refused(
                    moqlink_transport::session::SessionError::Rejected {
                        kind: moqlink_model::control::MessageType::PublishNamespaceError,
                        code: e.error_code,
                        reason: e.reason.to_string(),
                    },
                    "PUBLISH_NAMESPACE_OK",
                    "the relay refused the namespace",
                ))
            }
            Event::Message(m) if m.message_type().is_request() => requests.push(m),
            Event::Message(_) => {}
            other => {
                return Err(Failure::new(
                    "PUBLISH_NAMESPACE_OK",
                    describe(&other),
                    "the relay did not answer PUBLISH_NAMESPACE",
                )
                .into())
            }
        }
    }
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let name = env.track("t");
    let session = s.session.clone();
    let pending = tokio::spawn(async move {
        super::harness::DirectSub::subscribe(&session, &name, SubOpts::default()).await
    });
    env.step("1.5 s without a request from the relay");
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match raw.next(left).await {
            Event::Quiet => break,
            Event::Message(m) if m.message_type().is_request() => requests.push(m),
            Event::Message(_) => {}
            other => {
                return Err(Failure::new(
                    "the publisher session open",
                    describe(&other),
                    "the relay ended a session that granted no Request IDs",
                )
                .into())
            }
        }
    }
    pending.abort();
    if let Some(first) = requests.first() {
        return Err(Failure::new(
            "no request to a client without MAX_REQUEST_ID (the default is 0)",
            format!(
                "{} request(s), first {} (request {})",
                requests.len(),
                first.message_type().name(),
                first.request_id().unwrap_or_default()
            ),
            "the relay sent a request the client never allowed (§9.3.2.3)",
        )
        .into());
    }
    Ok("no request reached the client that sent no MAX_REQUEST_ID".into())
}
