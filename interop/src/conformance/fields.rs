//! Field values the draft rules out, sent on purpose: SUBSCRIBE_UPDATE with End Group below
//! Start or Forward 2 (§9.10), SUBSCRIBE_OK and PUBLISH with Content Exists 2 (§9.8, §9.13), an
//! upstream FETCH_OK ending before the FETCH's Start (§9.17); and what the relay must keep
//! apart or ignore: one Track Alias per track (§9.8), a parameter in a message it is not
//! defined for (§9.2.1), a repeated parameter (§9.2, SHOULD).

use super::harness::{describe, DirectSub, Publisher, SubOpts};
use super::raw::{describe as describe_event, frame, tuple, varint, Event, Raw};
use super::{refused, CheckOutput, Env, Verdict};
use crate::cases::Failure;
use bytes::{BufMut, BytesMut};
use moqlink_model::control::*;
use moqlink_model::params::{KvValue, Parameter, VersionParameters};
use moqlink_model::{Blob, GroupOrder, Location, SessionErrorCode, TrackNamespace};
use moqlink_transport::session::SessionError;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

pub(super) fn subscribe_msg(
    id: u64,
    ns: TrackNamespace,
    name: &str,
    params: VersionParameters,
) -> ControlMessage {
    ControlMessage::Subscribe(Subscribe {
        request_id: id,
        namespace: ns,
        name: Blob::from(name),
        subscriber_priority: 128,
        group_order: GroupOrder::Original,
        forward: true,
        filter: Filter::LargestObject,
        parameters: params,
    })
}

/// Reads until the answer to request `id`: SUBSCRIBE_OK, or a verdict.
pub(super) async fn subscribe_ok(
    raw: &mut Raw,
    id: u64,
    what: &str,
) -> Result<SubscribeOk, Verdict> {
    loop {
        match raw.next(T).await {
            Event::Message(ControlMessage::SubscribeOk(ok)) if ok.request_id == id => {
                return Ok(ok)
            }
            Event::Message(ControlMessage::SubscribeError(e)) if e.request_id == id => {
                return Err(refused(
                    SessionError::Rejected {
                        kind: moqlink_model::control::MessageType::SubscribeError,
                        code: e.error_code,
                        reason: e.reason.to_string(),
                    },
                    "SUBSCRIBE_OK",
                    &format!("the relay refused the SUBSCRIBE {what}"),
                ))
            }
            Event::Message(_) => {}
            other => {
                return Err(Failure::new(
                    "SUBSCRIBE_OK",
                    describe_event(&other),
                    format!("the relay did not answer the SUBSCRIBE {what}"),
                )
                .into())
            }
        }
    }
}

/// A relayed track and a raw subscriber holding SUBSCRIBE_OK for it (request 0).
async fn subscribed(env: &Env) -> Result<(Publisher, Raw, SubscribeOk), Verdict> {
    let p = Publisher::start(env, &["t"]).await?;
    let mut raw = Raw::setup(env, "subscriber_connection_id", None).await?;
    raw.send(&subscribe_msg(
        0,
        env.namespace(),
        "t",
        VersionParameters::new(),
    ))
    .await?;
    env.step("SUBSCRIBE_OK");
    let ok = subscribe_ok(&mut raw, 0, "this check updates").await?;
    Ok((p, raw, ok))
}

/// SUBSCRIBE_UPDATE (type 0x2) with every field as given; `end_wire` is End Group + 1.
fn subscribe_update_bytes(
    id: u64,
    sub: u64,
    start: Location,
    end_wire: u64,
    forward: u8,
) -> bytes::Bytes {
    let mut p = BytesMut::new();
    varint(&mut p, id);
    varint(&mut p, sub);
    varint(&mut p, start.group);
    varint(&mut p, start.object);
    varint(&mut p, end_wire);
    p.put_u8(128);
    p.put_u8(forward);
    varint(&mut p, 0);
    frame(0x02, &p)
}

/// `subscribe-update-end-before-start`: SUBSCRIBE_UPDATE with Start group 5, End Group 1.
pub async fn update_end_before_start(env: Env) -> CheckOutput {
    let (_p, mut raw, _ok) = subscribed(&env).await?;
    raw.send_bytes(subscribe_update_bytes(2, 0, Location::new(5, 0), 2, 1))
        .await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "SUBSCRIBE_UPDATE with Start 5.0 and End Group 1",
        )
        .await?)
}

/// `subscribe-update-forward-invalid`: SUBSCRIBE_UPDATE with Forward 2.
pub async fn update_forward_invalid(env: Env) -> CheckOutput {
    let (_p, mut raw, _ok) = subscribed(&env).await?;
    raw.send_bytes(subscribe_update_bytes(2, 0, Location::new(100, 0), 0, 2))
        .await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "SUBSCRIBE_UPDATE with Forward 2",
        )
        .await?)
}

/// A raw publisher (granting Request IDs) whose namespace the relay accepted.
pub(super) async fn raw_publisher(env: &Env) -> Result<Raw, Verdict> {
    let mut raw = Raw::setup(env, "publisher_connection_id", Some(64)).await?;
    raw.send(&ControlMessage::PublishNamespace(PublishNamespace {
        request_id: 0,
        namespace: env.namespace(),
        parameters: VersionParameters::new(),
    }))
    .await?;
    env.step("PUBLISH_NAMESPACE_OK");
    loop {
        match raw.next(T).await {
            Event::Message(ControlMessage::PublishNamespaceOk(r)) if r.request_id == 0 => {
                return Ok(raw)
            }
            Event::Message(ControlMessage::PublishNamespaceError(e)) if e.request_id == 0 => {
                return Err(refused(
                    SessionError::Rejected {
                        kind: moqlink_model::control::MessageType::PublishNamespaceError,
                        code: e.error_code,
                        reason: e.reason.to_string(),
                    },
                    "PUBLISH_NAMESPACE_OK",
                    "the relay refused the namespace",
                ))
            }
            Event::Message(_) => {}
            other => {
                return Err(Failure::new(
                    "PUBLISH_NAMESPACE_OK",
                    describe_event(&other),
                    "the relay did not answer PUBLISH_NAMESPACE",
                )
                .into())
            }
        }
    }
}

/// A subscriber's SUBSCRIBE for track `t` through the relay, still waiting for its answer.
pub(super) type PendingSubscribe = tokio::task::JoinHandle<Result<DirectSub, SessionError>>;

/// A raw publisher of the check's namespace, a subscriber whose SUBSCRIBE for `t` is pending, and
/// the Request ID of the relay's SUBSCRIBE upstream (not yet answered).
pub(super) async fn subscribe_via_raw(
    env: &Env,
) -> Result<(Raw, super::harness::Endpoint, PendingSubscribe, u64), Verdict> {
    let mut raw = raw_publisher(env).await?;
    let s = super::harness::Endpoint::connect(env, "subscriber_connection_id").await?;
    let session = s.session.clone();
    let name = env.track("t");
    let pending =
        tokio::spawn(
            async move { DirectSub::subscribe(&session, &name, SubOpts::default()).await },
        );
    let req = upstream_request(env, &mut raw, "SUBSCRIBE", |m| {
        matches!(m, ControlMessage::Subscribe(_))
    })
    .await?;
    Ok((raw, s, pending, req.request_id().unwrap_or_default()))
}

/// Reads the relay's requests until one matches `pick`; SUBSCRIBEs it does not pick get
/// SUBSCRIBE_OK (alias = request ID, no content), anything else is left unanswered.
pub(super) async fn upstream_request(
    env: &Env,
    raw: &mut Raw,
    what: &str,
    pick: impl Fn(&ControlMessage) -> bool,
) -> Result<ControlMessage, Verdict> {
    env.step(format!("the relay's {what} at the publisher"));
    loop {
        match raw.next(T).await {
            Event::Message(m) if pick(&m) => return Ok(m),
            Event::Message(ControlMessage::Subscribe(s)) => {
                raw.send(&ControlMessage::SubscribeOk(SubscribeOk {
                    request_id: s.request_id,
                    track_alias: s.request_id,
                    expires: 0,
                    group_order: GroupOrder::Ascending,
                    largest_location: None,
                    parameters: VersionParameters::new(),
                }))
                .await?;
            }
            Event::Message(_) => {}
            Event::Quiet => {
                return Err(Verdict::NotApplicable(format!(
                    "the relay sent no {what} to the publisher within {} ms",
                    T.as_millis()
                )))
            }
            other => {
                return Err(Failure::new(
                    format!("{what} from the relay"),
                    describe_event(&other),
                    "the relay ended the publisher's session first",
                )
                .into())
            }
        }
    }
}

/// `subscribe-ok-content-exists-invalid`: the publisher answers the relay's SUBSCRIBE with
/// Content Exists 2.
pub async fn subscribe_ok_content_exists(env: Env) -> CheckOutput {
    let (mut raw, _s, pending, id) = subscribe_via_raw(&env).await?;
    let mut p = BytesMut::new();
    varint(&mut p, id);
    varint(&mut p, id); // Track Alias
    varint(&mut p, 0); // Expires
    p.put_u8(0x1); // Group Order
    p.put_u8(0x2); // Content Exists
    varint(&mut p, 0); // Number of Parameters
    raw.send_bytes(frame(0x04, &p)).await?;
    let r = raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "SUBSCRIBE_OK with Content Exists 2 from the publisher",
        )
        .await;
    pending.abort();
    Ok(r?)
}

/// `publish-content-exists-invalid`: PUBLISH with Content Exists 2.
pub async fn publish_content_exists(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "publisher_connection_id", None).await?;
    let mut p = BytesMut::new();
    varint(&mut p, 0); // Request ID
    let ns = env.namespace();
    let fields: Vec<&[u8]> = ns.0.iter().map(|f| f.0.as_ref()).collect();
    tuple(&mut p, &fields);
    varint(&mut p, 1);
    p.put_slice(b"t");
    varint(&mut p, 1); // Track Alias
    p.put_u8(0x1); // Group Order
    p.put_u8(0x2); // Content Exists
    p.put_u8(0x1); // Forward
    varint(&mut p, 0); // Number of Parameters
    raw.send_bytes(frame(0x1d, &p)).await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "PUBLISH with Content Exists 2",
        )
        .await?)
}

/// `fetch-ok-end-before-start`: the publisher answers the relay's upstream FETCH with an End
/// Location below the FETCH's Start.
pub async fn fetch_ok_end_before_start(env: Env) -> CheckOutput {
    let mut raw = raw_publisher(&env).await?;
    let s = super::harness::Endpoint::connect(&env, "fetcher_connection_id").await?;
    let session = s.session.clone();
    let ns = env.namespace();
    let pending = tokio::spawn(async move {
        session
            .fetch(
                FetchKind::Standalone {
                    namespace: ns,
                    name: Blob::from("t"),
                    start: Location::new(5, 0),
                    end: FetchEnd {
                        group: 6,
                        object: None,
                    },
                },
                128,
                GroupOrder::Original,
                VersionParameters::new(),
            )
            .await
            .map(|_| ())
    });
    let fetch = upstream_request(&env, &mut raw, "FETCH", |m| {
        matches!(m, ControlMessage::Fetch(_))
    })
    .await;
    let fetch = match fetch {
        Ok(f) => f,
        Err(v) => {
            let answer = if pending.is_finished() {
                match pending.await {
                    Ok(Err(e)) => format!("; the fetcher got {}", describe(&e)),
                    _ => "; the fetcher got FETCH_OK".into(),
                }
            } else {
                pending.abort();
                String::new()
            };
            return Err(match v {
                Verdict::NotApplicable(why) => Verdict::NotApplicable(format!("{why}{answer}")),
                v => v,
            });
        }
    };
    let ControlMessage::Fetch(Fetch {
        request_id,
        fetch: FetchKind::Standalone { start, .. },
        ..
    }) = fetch
    else {
        pending.abort();
        return Err(Verdict::NotApplicable(
            "the relay's upstream FETCH is not a standalone FETCH".into(),
        ));
    };
    let end = if start.group > 0 {
        FetchEnd {
            group: start.group - 1,
            object: Some(0),
        }
    } else if start.object > 0 {
        FetchEnd {
            group: 0,
            object: Some(start.object - 1),
        }
    } else {
        pending.abort();
        return Err(Verdict::NotApplicable(
            "the relay's upstream FETCH starts at 0.0: no End Location lies below it".into(),
        ));
    };
    raw.send(&ControlMessage::FetchOk(FetchOk {
        request_id,
        group_order: GroupOrder::Ascending,
        end_of_track: false,
        end_location: end,
        parameters: VersionParameters::new(),
    }))
    .await?;
    let end_text = match end.object {
        Some(o) => format!("{}.{o}", end.group),
        None => format!("{}", end.group),
    };
    let r = raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            &format!("FETCH_OK with End Location {end_text} for a FETCH starting at {start}"),
        )
        .await;
    pending.abort();
    Ok(r?)
}

/// `track-alias-distinct`: one session subscribes to three tracks through the relay.
pub async fn track_alias_distinct(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["a", "b", "c"]).await?;
    let s = super::harness::Endpoint::connect(&env, "subscriber_connection_id").await?;
    let mut subs = Vec::new();
    for name in ["a", "b", "c"] {
        subs.push(super::harness::subscribe(&env, &s, &env.track(name), SubOpts::default()).await?);
    }
    p.upstream(&env, 3).await?;
    let aliases: Vec<u64> = subs.iter().map(|d| d.ok.track_alias).collect();
    let text = format!(
        "Track Aliases a={}, b={}, c={}",
        aliases[0], aliases[1], aliases[2]
    );
    let mut sorted = aliases.clone();
    sorted.sort_unstable();
    sorted.dedup();
    s.still_open("subscriber")?;
    if sorted.len() != aliases.len() {
        return Err(Failure::new(
            "a distinct Track Alias for each of tracks a, b and c",
            text,
            "the same Track Alias MUST NOT refer to two different tracks (§9.8)",
        )
        .into());
    }
    Ok(format!(
        "{text} in the relay's SUBSCRIBE_OKs on one session"
    ))
}

/// `parameter-wrong-message-ignored`: the publisher's SUBSCRIBE_OK carries an AUTHORIZATION
/// TOKEN (defined for requests, not SUBSCRIBE_OK) whose Token does not decode.
pub async fn parameter_wrong_message(env: Env) -> CheckOutput {
    let (mut raw, _s, pending, id) = subscribe_via_raw(&env).await?;
    let mut params = VersionParameters::new();
    // Alias Type REGISTER (0x1) and nothing after it: not a Token, were it parsed.
    params.push(Parameter::Unknown {
        key: 0x03,
        value: KvValue::Bytes(Blob::from(bytes::Bytes::from_static(&[0x01]))),
    });
    raw.send(&ControlMessage::SubscribeOk(SubscribeOk {
        request_id: id,
        track_alias: id,
        expires: 0,
        group_order: GroupOrder::Ascending,
        largest_location: None,
        parameters: params,
    }))
    .await?;
    env.step("SUBSCRIBE_OK at the subscriber");
    let answer = super::harness::within(T, "SUBSCRIBE_OK at the subscriber", pending).await?;
    let answer = answer.map_err(|e| Failure::new("SUBSCRIBE_OK", e.to_string(), "local task"))?;
    // A round trip on the publisher's session: it must still be open.
    let expected =
        "the publisher's session open, its SUBSCRIBE_OK processed as without the parameter";
    let why =
        "an AUTHORIZATION TOKEN in SUBSCRIBE_OK, where it is not defined, MUST be ignored (§9.2.1)";
    let sent = raw
        .send(&ControlMessage::PublishNamespace(PublishNamespace {
            request_id: 2,
            namespace: env.namespace_with(&["second"]),
            parameters: VersionParameters::new(),
        }))
        .await;
    if sent.is_err() {
        let (ev, _) = raw.wait_close(T).await;
        return Err(Failure::new(expected, describe_event(&ev), why).into());
    }
    env.step("the answer to a second PUBLISH_NAMESPACE");
    loop {
        match raw.next(T).await {
            Event::Message(ControlMessage::PublishNamespaceOk(r)) if r.request_id == 2 => break,
            Event::Message(ControlMessage::PublishNamespaceError(e)) if e.request_id == 2 => break,
            Event::Message(_) => {}
            other => return Err(Failure::new(expected, describe_event(&other), why).into()),
        }
    }
    match answer {
        Ok(_) => Ok(
            "SUBSCRIBE_OK with an undecodable AUTHORIZATION TOKEN (not defined for SUBSCRIBE_OK) \
             was relayed to the subscriber; the publisher's session stayed open"
                .into(),
        ),
        Err(e) => Err(Failure::new(
            "SUBSCRIBE_OK at the subscriber",
            describe(&e),
            "the relay did not process the publisher's SUBSCRIBE_OK as without the parameter \
             (§9.2.1)",
        )
        .into()),
    }
}

/// `duplicate-parameter`: SUBSCRIBE with DELIVERY_TIMEOUT twice.
pub async fn duplicate_parameter(env: Env) -> CheckOutput {
    let _p = Publisher::start(&env, &["t"]).await?;
    let mut raw = Raw::setup(&env, "subscriber_connection_id", None).await?;
    let mut params = VersionParameters::new();
    params.push(Parameter::DeliveryTimeout { value: 5000 });
    params.push(Parameter::DeliveryTimeout { value: 6000 });
    raw.send(&subscribe_msg(0, env.namespace(), "t", params))
        .await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "SUBSCRIBE with two DELIVERY_TIMEOUT parameters",
        )
        .await?)
}

/// `publish-track-alias-distinct`: a namespace subscriber accepts the relay's PUBLISHes for
/// tracks a and b and subscribes to track c: three tracks, three Track Aliases.
pub async fn publish_track_alias_distinct(env: Env) -> CheckOutput {
    use moqlink_transport::session::PublishAccept;
    use moqlink_transport::track::{TrackConfig, TrackProducer};
    let s = super::harness::Endpoint::connect(&env, "subscriber_connection_id").await?;
    let mut publishes = s.intercept(MessageType::Publish);
    env.step("SUBSCRIBE_NAMESPACE_OK");
    let answer = tokio::time::timeout(
        T,
        s.session
            .subscribe_namespace(env.namespace(), VersionParameters::new()),
    )
    .await
    .map_err(|_| {
        Verdict::NotApplicable("this check needs SUBSCRIBE_NAMESPACE answered: no answer".into())
    })?;
    let _ns_sub = answer.map_err(|e| {
        refused(
            e,
            "SUBSCRIBE_NAMESPACE_OK",
            "the relay refused the SUBSCRIBE_NAMESPACE this check needs",
        )
    })?;
    let p = Publisher::start(&env, &["c"]).await?;
    // The relay may hold its PUBLISH_OK until the namespace subscriber answered: publish while
    // the subscriber accepts.
    let (session, tracks) = (
        p.ep.session.clone(),
        ["a", "b"].map(|n| TrackProducer::new(env.track(n), TrackConfig::default())),
    );
    let publishing = tokio::spawn(async move {
        let mut held = Vec::new();
        for t in &tracks {
            held.push(session.publish(t, true, VersionParameters::new()).await?);
        }
        Ok::<_, SessionError>(held)
    });
    let mut aliases = Vec::new();
    let mut accepted = Vec::new();
    for _ in 0..2 {
        env.step("the relay's PUBLISH at the namespace subscriber");
        let Ok(Some(req)) = tokio::time::timeout(T, publishes.recv()).await else {
            break;
        };
        let ControlMessage::Publish(m) = &req.message else {
            continue;
        };
        aliases.push((m.name.to_string(), m.track_alias));
        let sub = s
            .session
            .accept_publish(req, PublishAccept::default())
            .await
            .map_err(|e| Failure::new("PUBLISH_OK sent", describe(&e), "local session"))?;
        accepted.push(sub);
    }
    env.step("the relay's PUBLISH_OKs at the publisher");
    let _publications = match tokio::time::timeout(T, publishing).await {
        Ok(Ok(Ok(held))) => held,
        Ok(Ok(Err(e))) => {
            return Err(refused(
                e,
                "PUBLISH_OK",
                "the relay refused the PUBLISH this check needs",
            ))
        }
        _ => {
            return Err(Verdict::NotApplicable(
                "this check needs the publisher's PUBLISHes answered: no PUBLISH_OK".into(),
            ))
        }
    };
    if aliases.len() < 2 {
        return Err(Verdict::NotApplicable(format!(
            "this check needs the relay's PUBLISHes at the namespace subscriber: {} arrived",
            aliases.len()
        )));
    }
    let c = super::harness::subscribe(&env, &s, &env.track("c"), SubOpts::default()).await?;
    aliases.push(("c (SUBSCRIBE_OK)".into(), c.ok.track_alias));
    let text: Vec<String> = aliases.iter().map(|(n, a)| format!("{n}={a}")).collect();
    let text = format!("Track Aliases {}", text.join(", "));
    s.still_open("subscriber")?;
    let mut ids: Vec<u64> = aliases.iter().map(|(_, a)| *a).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != aliases.len() {
        return Err(Failure::new(
            "a distinct Track Alias for each track",
            text,
            "the same Track Alias MUST NOT refer to two different tracks (§9.13)",
        )
        .into());
    }
    Ok(format!(
        "{text} on one session (two PUBLISHes accepted, one SUBSCRIBE)"
    ))
}
