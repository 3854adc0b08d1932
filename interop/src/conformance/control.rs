//! Control-stream checks: Request ID rules (§9.1, §9.5, §9.6), malformed messages (§9, §9.2),
//! duplicate Track Aliases (§9.8, §9.13) and TRACK_STATUS (§9.20-§9.22).

use super::harness::{
    describe, expect_close, objects_relayed, relayed, subscribe_ok, within, write_group, DirectSub,
    Endpoint, Publisher, SubOpts,
};
use super::raw::{describe as describe_event, frame, Event, Raw};
use super::{refused, CheckOutput, Env, Verdict};
use crate::cases::{request_error_name, Failure};
use bytes::BytesMut;
use moqlink_model::control::*;
use moqlink_model::params::{KvValue, Parameter, VersionParameters};
use moqlink_model::{
    Blob, Encoding, GroupOrder, Location, SessionErrorCode, TrackNamespace, Version,
};
use moqlink_transport::session::{IncomingRequest, SessionError};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn announce_msg(id: u64, ns: TrackNamespace) -> ControlMessage {
    ControlMessage::PublishNamespace(PublishNamespace {
        request_id: id,
        namespace: ns,
        parameters: VersionParameters::new(),
    })
}

/// `request-id-parity`: a client request with an odd ID.
pub async fn request_id_parity(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    raw.send(&announce_msg(1, env.namespace())).await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::InvalidRequestId,
            T,
            "PUBLISH_NAMESPACE with Request ID 1 from a client",
        )
        .await?)
}

/// `request-id-reused`: Request ID 0 twice.
pub async fn request_id_reused(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    raw.announce(&env, 0, env.namespace_with(&["a"])).await?;
    raw.send(&announce_msg(0, env.namespace_with(&["b"])))
        .await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::InvalidRequestId,
            T,
            "a second request with Request ID 0",
        )
        .await?)
}

/// `request-id-skipped`: Request ID 0, then 4.
pub async fn request_id_skipped(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    if raw.max_request_id <= 4 {
        return Err(Verdict::NotApplicable(format!(
            "the relay's MAX_REQUEST_ID {} does not allow Request ID 4",
            raw.max_request_id
        )));
    }
    raw.announce(&env, 0, env.namespace_with(&["a"])).await?;
    raw.send(&announce_msg(4, env.namespace_with(&["b"])))
        .await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::InvalidRequestId,
            T,
            "Request ID 4 where 2 was expected",
        )
        .await?)
}

/// Requests this check is willing to send to reach the relay's limit.
const MAX_REQUESTS: u64 = 3000;

/// The first Request ID a client may not use under MAX_REQUEST_ID `max`: client Request IDs are
/// even (§9.1), so for an odd `max` it is `max + 1` (`max - 1` is still allowed).
pub fn first_refused_client_id(max: u64) -> u64 {
    max + (max & 1)
}

/// `max-request-id-exceeded`: every Request ID the relay grants, then the first one not below its
/// limit, in one write. A relay that re-grants as requests complete may have raised the limit
/// before it reads the last request; then the check goes on from the new limit.
pub async fn max_request_id_exceeded(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    let mut next = 0u64;
    let mut answered = 0u64;
    loop {
        let max = raw.max_request_id;
        let over = first_refused_client_id(max);
        if max / 2 > MAX_REQUESTS {
            return Err(Verdict::NotApplicable(format!(
                "the relay grants Request IDs up to {max} (after {} requests); this check sends \
                 at most {MAX_REQUESTS} requests to reach the limit",
                next / 2
            )));
        }
        env.step(format!(
            "the relay's answer to Request ID {over} (its MAX_REQUEST_ID is {max})"
        ));
        let mut batch = BytesMut::new();
        while next <= over {
            announce_msg(next, env.namespace_with(&[&format!("n{next}")]))
                .encode(&mut batch, Encoding::new(Version::DRAFT_14))
                .map_err(|e| Failure::new("encodable", e.to_string(), "local encoder"))?;
            next += 2;
        }
        raw.send_bytes(batch.freeze()).await?;
        // Read until the request past the old limit is answered or the session closes.
        loop {
            match raw.next(T).await {
                Event::Message(
                    ControlMessage::PublishNamespaceOk(RequestRef { request_id })
                    | ControlMessage::PublishNamespaceError(RequestError { request_id, .. }),
                ) => {
                    answered += 1;
                    if request_id == over {
                        break;
                    }
                }
                Event::Message(_) => {}
                Event::Closed {
                    code,
                    reason,
                    by_peer: true,
                } if code == SessionErrorCode::TooManyRequests.code() => {
                    return Ok(format!(
                        "{answered} requests answered, then Request ID {over} at MAX_REQUEST_ID \
                         {max}: relay closed with TOO_MANY_REQUESTS ({reason:?})"
                    ))
                }
                other => {
                    return Err(Failure::new(
                        "session closed with TOO_MANY_REQUESTS (0x7)",
                        format!(
                            "{} after {answered} answers; the last request had ID {over}, \
                             MAX_REQUEST_ID {max}",
                            describe_event(&other)
                        ),
                        "a request at or above MAX_REQUEST_ID MUST close the session with \
                         TOO_MANY_REQUESTS (§9.5)",
                    )
                    .into())
                }
            }
        }
        if raw.max_request_id <= over {
            return Err(Failure::new(
                "session closed with TOO_MANY_REQUESTS (0x7)",
                format!(
                    "PUBLISH_NAMESPACE answer for Request ID {over} at MAX_REQUEST_ID {}",
                    raw.max_request_id
                ),
                "the relay accepted a request at or above its own MAX_REQUEST_ID (§9.5)",
            )
            .into());
        }
    }
}

/// `max-request-id-decreased`: MAX_REQUEST_ID lower than the one in CLIENT_SETUP.
pub async fn max_request_id_decreased(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", Some(21)).await?;
    raw.send(&ControlMessage::MaxRequestId(MaxRequestId {
        max_request_id: 5,
    }))
    .await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "MAX_REQUEST_ID 5 after CLIENT_SETUP granted 21",
        )
        .await?)
}

/// Answers one request on a raw connection the way a publisher with no tracks would, except
/// SUBSCRIBE, which gets SUBSCRIBE_OK (alias = request ID, no content).
fn answer_for(m: &ControlMessage) -> Option<ControlMessage> {
    use ControlMessage as M;
    let id = m.request_id()?;
    let error = |code| RequestError {
        request_id: id,
        error_code: code,
        reason: Blob::from("conformance check"),
    };
    Some(match m {
        M::Subscribe(_) => subscribe_ok(id, id),
        M::SubscribeNamespace(_) => M::SubscribeNamespaceOk(RequestRef { request_id: id }),
        M::PublishNamespace(_) => M::PublishNamespaceOk(RequestRef { request_id: id }),
        M::TrackStatus(_) => M::TrackStatusError(error(0x4)),
        M::Fetch(_) => M::FetchError(error(0x4)),
        M::Publish(_) => M::PublishError(error(0x4)),
        _ => return None,
    })
}

/// `max-request-id-honoured`: a publisher granting one Request ID at a time.
pub async fn max_request_id_honoured(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "publisher_connection_id", Some(3)).await?;
    let mut granted = 3u64;
    raw.send(&announce_msg(0, env.namespace())).await?;
    env.step("PUBLISH_NAMESPACE_OK");
    let mut early = Vec::new();
    loop {
        match raw.next(T).await {
            Event::Message(ControlMessage::PublishNamespaceOk(_)) => break,
            Event::Message(m) if m.message_type().is_request() => early.push(m),
            Event::Message(_) => {}
            other => {
                return Err(Failure::new(
                    "PUBLISH_NAMESPACE_OK",
                    describe_event(&other),
                    "the relay did not accept the namespace",
                )
                .into())
            }
        }
    }
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let mut pending = Vec::new();
    for name in ["a", "b"] {
        let session = s.session.clone();
        let track = env.track(name);
        pending.push(tokio::spawn(async move {
            DirectSub::subscribe(&session, &track, SubOpts::default()).await
        }));
    }
    let mut requests: Vec<ControlMessage> = Vec::new();
    let mut blocked = Vec::new();
    let mut grants = 0;
    let mut queue: std::collections::VecDeque<ControlMessage> = early.into();
    env.step("the relay's SUBSCRIBEs within MAX_REQUEST_ID");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while tokio::time::Instant::now() < deadline {
        let ev = match queue.pop_front() {
            Some(m) => Event::Message(m),
            None => raw.next(Duration::from_millis(400)).await,
        };
        match ev {
            Event::Message(ControlMessage::RequestsBlocked(b)) => blocked.push(b.max_request_id),
            Event::Message(m) if m.message_type().is_request() => {
                let id = m.request_id().unwrap_or_default();
                if id >= granted {
                    return Err(Failure::new(
                        format!("requests with IDs below the granted MAX_REQUEST_ID {granted}"),
                        format!("{} with Request ID {id}", m.message_type().name()),
                        "the relay exceeded the publisher's MAX_REQUEST_ID (§9.5)",
                    )
                    .into());
                }
                if let Some(a) = answer_for(&m) {
                    raw.send(&a).await?;
                }
                requests.push(m);
            }
            Event::Message(_) => {}
            Event::Quiet => {
                if pending.iter().all(|p| p.is_finished()) {
                    break;
                }
                if grants >= 6 {
                    break;
                }
                granted += 2;
                grants += 1;
                raw.send(&ControlMessage::MaxRequestId(MaxRequestId {
                    max_request_id: granted,
                }))
                .await?;
            }
            other => {
                return Err(Failure::new(
                    "the publisher session open",
                    describe_event(&other),
                    "the relay closed the publisher session",
                )
                .into())
            }
        }
    }
    let mut outcomes = Vec::new();
    for p in pending {
        let r = if p.is_finished() {
            match p.await {
                Ok(Ok(_)) => "SUBSCRIBE_OK".to_string(),
                Ok(Err(e)) => describe(&e),
                Err(e) => e.to_string(),
            }
        } else {
            p.abort();
            "no answer".to_string()
        };
        outcomes.push(r);
    }
    let subscribes = requests
        .iter()
        .filter(|m| matches!(m, ControlMessage::Subscribe(_)))
        .count();
    let ids: Vec<String> = requests
        .iter()
        .map(|m| {
            format!(
                "{} {}",
                m.message_type().name(),
                m.request_id().unwrap_or_default()
            )
        })
        .collect();
    let blocked = if blocked.is_empty() {
        "no REQUESTS_BLOCKED (optional, §9.6)".to_string()
    } else {
        format!("REQUESTS_BLOCKED for {blocked:?}")
    };
    let summary = format!(
        "relay requests [{}] within MAX_REQUEST_ID raised {grants} time(s) to {granted}; {blocked}; \
         subscribers got {}",
        ids.join(", "),
        outcomes.join(" and ")
    );
    if subscribes == 0 || outcomes.iter().any(|o| o == "no answer") {
        return Err(Failure::new(
            "each SUBSCRIBE forwarded once MAX_REQUEST_ID allowed it, or refused",
            summary,
            "the relay left a subscriber unanswered while the publisher raised MAX_REQUEST_ID",
        )
        .into());
    }
    if outcomes.iter().any(|o| o != "SUBSCRIBE_OK") {
        return Ok(format!(
            "{summary} (refusing a SUBSCRIBE while blocked upstream is allowed)"
        ));
    }
    Ok(summary)
}

/// `requests-blocked-accepted`: REQUESTS_BLOCKED, then a request.
pub async fn requests_blocked_accepted(env: Env) -> CheckOutput {
    let ep = Endpoint::connect(&env, "connection_id").await?;
    ep.session
        .send(ControlMessage::RequestsBlocked(RequestsBlocked {
            max_request_id: 0,
        }))
        .await
        .map_err(|e| Failure::new("REQUESTS_BLOCKED sent", e.to_string(), "local session"))?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    ep.still_open("client")?;
    let _ns = ep.announce(&env, env.namespace()).await?;
    ep.still_open("client")?;
    Ok("session open and PUBLISH_NAMESPACE_OK after REQUESTS_BLOCKED".into())
}

/// `unknown-message-type`: control message type 0x37.
pub async fn unknown_message_type(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    raw.send_bytes(frame(0x37, &[0x01, 0x02])).await?;
    Ok(raw
        .expect_any_close(
            &env,
            "control message type 0x37",
            "the session closed (PROTOCOL_VIOLATION)",
            "an endpoint that receives an unknown message type MUST close the session (§9)",
        )
        .await?)
}

/// `message-length-mismatch`: PUBLISH_NAMESPACE whose Length covers two extra bytes.
pub async fn length_mismatch(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    let mut b = BytesMut::new();
    announce_msg(0, env.namespace())
        .encode(&mut b, Encoding::new(Version::DRAFT_14))
        .map_err(|e| Failure::new("encodable", e.to_string(), "local encoder"))?;
    // Type 0x06 is one byte; the payload follows the 16-bit length.
    let mut payload = b.split_off(3).to_vec();
    payload.extend_from_slice(&[0, 0]);
    raw.send_bytes(frame(0x06, &payload)).await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "PUBLISH_NAMESPACE with a Length two bytes past its payload",
        )
        .await?)
}

fn unknown_params() -> VersionParameters {
    let mut p = VersionParameters::new();
    p.push(Parameter::Unknown {
        key: 0x3a,
        value: KvValue::Varint(7),
    });
    p.push(Parameter::Unknown {
        key: 0x3b,
        value: KvValue::Bytes(Blob::from("conformance")),
    });
    p.push(Parameter::Unknown {
        key: 0x3b,
        value: KvValue::Bytes(Blob::from("repeated unknown parameters are allowed")),
    });
    p
}

/// `unknown-parameter-ignored`: unknown parameters in PUBLISH_NAMESPACE and SUBSCRIBE.
pub async fn unknown_parameter(env: Env) -> CheckOutput {
    let p = Endpoint::connect(&env, "publisher_connection_id").await?;
    let track = moqlink_transport::track::TrackProducer::new(
        env.track("t"),
        moqlink_transport::track::TrackConfig::default(),
    );
    p.serve(&track);
    env.step("PUBLISH_NAMESPACE_OK");
    let answer = within(
        T,
        "PUBLISH_NAMESPACE_OK",
        p.session
            .publish_namespace(env.namespace(), unknown_params()),
    )
    .await?;
    let _ns = answer.map_err(|e| {
        refused(
            e,
            "PUBLISH_NAMESPACE_OK",
            "unknown parameters must be ignored (§9.2)",
        )
    })?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    s.subscribe_with(
        &env,
        &env.track("t"),
        unknown_params(),
        "unknown parameters in SUBSCRIBE must be ignored (§9.2)",
    )
    .await?;
    p.still_open("publisher")?;
    s.still_open("subscriber")?;
    Ok("PUBLISH_NAMESPACE_OK and SUBSCRIBE_OK with unknown parameters 0x3a, 0x3b, 0x3b".into())
}

fn publish_msg(id: u64, ns: TrackNamespace, name: &str, alias: u64) -> ControlMessage {
    ControlMessage::Publish(Publish {
        request_id: id,
        namespace: ns,
        name: Blob::from(name),
        track_alias: alias,
        group_order: GroupOrder::Ascending,
        largest_location: None,
        forward: true,
        parameters: VersionParameters::new(),
    })
}

/// `duplicate-track-alias-publish`: PUBLISH a, PUBLISH b, both alias 7.
pub async fn duplicate_alias_publish(env: Env) -> CheckOutput {
    let p = Endpoint::connect(&env, "publisher_connection_id").await?;
    let ns = env.namespace();
    env.step("PUBLISH_OK for track a");
    let mut first = p
        .session
        .request(|id| publish_msg(id, ns.clone(), "a", 7))
        .await
        .map_err(|e| Failure::new("PUBLISH sent", describe(&e), "local session"))?;
    match within(T, "PUBLISH_OK", first.reply()).await? {
        Ok(ControlMessage::PublishOk(_)) => {}
        Ok(other) => {
            return Err(Failure::new(
                "PUBLISH_OK",
                other.message_type().name(),
                "unexpected reply",
            )
            .into())
        }
        Err(e) => {
            return Err(refused(
                e,
                "PUBLISH_OK",
                "the relay refused the PUBLISH this check needs",
            ))
        }
    }
    let _second = p
        .session
        .request(|id| publish_msg(id, ns.clone(), "b", 7))
        .await
        .map_err(|e| Failure::new("PUBLISH sent", describe(&e), "local session"))?;
    Ok(expect_close(
        &env,
        &p.session,
        SessionErrorCode::DuplicateTrackAlias,
        T,
        "PUBLISH of track b with track a's alias 7",
    )
    .await?)
}

/// `duplicate-track-alias-subscribe-ok`: the publisher answers two upstream SUBSCRIBEs with
/// alias 9.
pub async fn duplicate_alias_subscribe_ok(env: Env) -> CheckOutput {
    let p = Endpoint::connect(&env, "publisher_connection_id").await?;
    let mut subs = p.intercept(MessageType::Subscribe);
    let _ns = p.announce(&env, env.namespace()).await?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let mut pending = Vec::new();
    for name in ["a", "b"] {
        let session = s.session.clone();
        let track = env.track(name);
        pending.push(tokio::spawn(async move {
            DirectSub::subscribe(&session, &track, SubOpts::default()).await
        }));
    }
    let mut kept = Vec::new();
    for n in 0..2 {
        env.step(format!("upstream SUBSCRIBE {}", n + 1));
        let Some(req) = within(T, "the relay's SUBSCRIBE at the publisher", subs.recv()).await?
        else {
            break;
        };
        let id = req.responder.id();
        let IncomingRequest {
            responder,
            followups,
            ..
        } = req;
        let _ = responder.accept(subscribe_ok(id, 9)).await;
        kept.push(followups);
    }
    let r = expect_close(
        &env,
        &p.session,
        SessionErrorCode::DuplicateTrackAlias,
        T,
        "SUBSCRIBE_OK for tracks a and b, both with Track Alias 9",
    )
    .await;
    for t in pending {
        t.abort();
    }
    drop(kept);
    Ok(r?)
}

/// A relayed track with group 0 objects 0-3 forwarded to a subscriber.
async fn relayed_track(env: &Env) -> Result<(Publisher, Endpoint, DirectSub), Verdict> {
    let (p, s, sub) = relayed(env).await?;
    write_group(env, p.track(), 0, 0..4).await;
    objects_relayed(
        env,
        &sub,
        4,
        "objects 0.0-0.3",
        "the relay did not forward the objects this check builds on",
    )
    .await?;
    Ok((p, s, sub))
}

/// Sends TRACK_STATUS for `name` from `ep`.
async fn track_status(
    env: &Env,
    ep: &Endpoint,
    name: &moqlink_transport::track::TrackName,
    expected: &str,
) -> Result<Result<SubscribeOk, SessionError>, Failure> {
    env.step(expected);
    within(T, expected, ep.session.track_status(name)).await
}

fn check_status_ok(ok: &SubscribeOk, largest: Location) -> Result<String, Failure> {
    let got = format!(
        "TRACK_STATUS_OK alias {}, group order {:?}, largest {}",
        ok.track_alias,
        ok.group_order,
        ok.largest_location
            .map_or("none (Content Exists 0)".to_string(), |l| l.to_string())
    );
    if ok.track_alias != 0 {
        return Err(Failure::new(
            "TRACK_STATUS_OK with Track Alias 0",
            got,
            "the publisher sets Track Alias to 0 in TRACK_STATUS_OK (§9.21)",
        ));
    }
    if ok.largest_location != Some(largest) {
        return Err(Failure::new(
            format!("TRACK_STATUS_OK with Largest Location {largest}"),
            got,
            "TRACK_STATUS_OK is populated exactly as SUBSCRIBE_OK would be (§9.21)",
        ));
    }
    Ok(got)
}

/// `track-status-ok`: TRACK_STATUS for a track the relay carries.
pub async fn track_status_ok(env: Env) -> CheckOutput {
    let (_p, s, _sub) = relayed_track(&env).await?;
    let q = Endpoint::connect(&env, "status_connection_id").await?;
    let answer = track_status(&env, &q, &env.track("t"), "TRACK_STATUS_OK").await?;
    let ok = answer.map_err(|e| {
        refused(
            e,
            "TRACK_STATUS_OK",
            "TRACK_STATUS for a relayed track was refused",
        )
    })?;
    let got = check_status_ok(&ok, Location::new(0, 3))?;
    s.still_open("subscriber")?;
    Ok(got)
}

/// `track-status-not-subscribed`: TRACK_STATUS for an announced track nobody subscribed to.
/// §9.20 lets the relay forward TRACK_STATUS, or subscribe, to learn the answer (MAY); the check
/// names which it did and reports (not counted) an answer other than the publisher's status: a
/// TRACK_STATUS_OK is populated as a SUBSCRIBE_OK would be (§9.21), Largest Location 0.2.
pub async fn track_status_not_subscribed(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    write_group(&env, p.track(), 0, 0..3).await;
    let q = Endpoint::connect(&env, "status_connection_id").await?;
    let answer = track_status(&env, &q, &env.track("t"), "TRACK_STATUS_OK").await?;
    let asked: Vec<String> =
        p.ep.seen()
            .iter()
            .map(|s| s.msg.message_type().name().to_string())
            .collect();
    let chose = if asked.iter().any(|m| m == "TRACK_STATUS") {
        "forwarded TRACK_STATUS to the publisher"
    } else if asked.iter().any(|m| m == "SUBSCRIBE") {
        "subscribed to the publisher"
    } else {
        "asked the publisher nothing"
    };
    let ok = answer.map_err(|e| match refused(e, "TRACK_STATUS_OK", "") {
        Verdict::Fail(f) => Verdict::Fail(Failure::new(
            f.expected,
            format!("{}; the relay {chose}", f.received),
            "a relay without a subscription MAY forward TRACK_STATUS or subscribe to determine \
             the response (§9.20); this one gave no TRACK_STATUS_OK for a published track",
        )),
        v => v,
    })?;
    let got = check_status_ok(&ok, Location::new(0, 2)).map_err(|f| {
        Failure::new(
            f.expected,
            format!("{}; the relay {chose}", f.received),
            f.message,
        )
    })?;
    Ok(format!(
        "{got}; the relay {chose} (publisher received [{}])",
        asked.join(", ")
    ))
}

/// `track-status-unknown`: TRACK_STATUS for a track nobody publishes.
pub async fn track_status_unknown(env: Env) -> CheckOutput {
    let q = Endpoint::connect(&env, "connection_id").await?;
    let answer = track_status(
        &env,
        &q,
        &env.track("nobody-publishes-this"),
        "TRACK_STATUS_ERROR",
    )
    .await?;
    match answer {
        Ok(ok) => Err(Failure::new(
            "TRACK_STATUS_ERROR",
            format!("TRACK_STATUS_OK (largest {:?})", ok.largest_location),
            "the relay reported a status for a track nobody publishes",
        )
        .into()),
        Err(SessionError::Rejected {
            code: super::NOT_SUPPORTED,
            reason,
            ..
        }) => Err(Verdict::Unsupported {
            what: "TRACK_STATUS".into(),
            reason,
        }),
        Err(SessionError::Rejected { code, reason, .. }) => {
            let mut note = format!(
                "TRACK_STATUS_ERROR code 0x{code:x} ({}) {reason:?}",
                request_error_name(moqlink_model::control::MessageType::TrackStatusError, code)
            );
            if code != 0x4 {
                note.push_str("; TRACK_DOES_NOT_EXIST (0x4) is the relevant code");
            }
            Ok(note)
        }
        Err(e) => Err(Failure::new(
            "TRACK_STATUS_ERROR",
            describe(&e),
            "no TRACK_STATUS_ERROR for an unknown track",
        )
        .into()),
    }
}
