//! Floods: more requests than the relay granted (§9.5), and as many namespaces as it lets one
//! session register (§12.3.1), while a bystander keeps using the relay.

use super::malformed::encode_subscribe;
use super::{announce_with, attack_ns, Bystander, Findings, PROMPT};
use crate::cases::Failure;
use crate::conformance::harness::Endpoint;
use crate::conformance::raw::{describe as describe_event, Event, Raw};
use crate::conformance::{CheckOutput, Env};
use bytes::BytesMut;
use moqlink_model::control::*;
use moqlink_model::params::VersionParameters;
use moqlink_model::{Blob, Encoding, SessionErrorCode, Version};
use moqlink_transport::track::TrackName;
use std::time::{Duration, Instant};

/// SUBSCRIBEs in the `request-flood` burst.
const FLOOD: u64 = 10_000;

/// How long the relay may go without sending anything before a flood's answers count as over.
const QUIET: Duration = Duration::from_secs(2);

/// `request-flood`: 10,000 SUBSCRIBEs (Request IDs 0 to 19998, tracks nobody publishes) in one
/// write, whatever MAX_REQUEST_ID the relay granted.
pub async fn request_flood(env: Env) -> CheckOutput {
    let mut by = Bystander::start(&env).await?;
    let mut f = Findings::default();
    let mut a = Raw::setup(&env, "attacker_connection_id", None).await?;
    let granted = a.max_request_id;
    let ns = attack_ns(&env, "flood");
    let mut b = BytesMut::new();
    for i in 0..FLOOD {
        let name = TrackName {
            namespace: ns.clone(),
            name: Blob::from(format!("t{i}").as_str()),
        };
        encode_subscribe(&mut b, 2 * i, &name)?;
    }
    let last = 2 * (FLOOD - 1);
    let bytes = b.len();
    env.step(format!("the relay reading {FLOOD} SUBSCRIBEs"));
    let start = Instant::now();
    match tokio::time::timeout(Duration::from_secs(10), a.send_bytes(b.freeze())).await {
        Err(_) => f.note("the relay stopped reading the control stream (the write blocked 10 s)"),
        Ok(Err(_)) => f.note("the relay ended the control stream during the write"),
        Ok(Ok(())) => {}
    }
    let (mut oks, mut errors) = (0u64, 0u64);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    let end = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match a.next(left.min(QUIET)).await {
            Event::Message(ControlMessage::SubscribeOk(_)) => oks += 1,
            Event::Message(ControlMessage::SubscribeError(_)) => errors += 1,
            Event::Message(_) => {}
            other => break other,
        }
    };
    let took = start.elapsed().as_millis();
    let state = match &end {
        Event::Quiet => "session still open".to_string(),
        other => describe_event(other),
    };
    let max = a.max_request_id;
    let answers = format!(
        "{bytes} bytes of SUBSCRIBEs with Request IDs 0-{last}; MAX_REQUEST_ID {granted} at setup, \
         {max} at most; {oks} SUBSCRIBE_OK and {errors} SUBSCRIBE_ERROR within {took} ms"
    );
    match &end {
        Event::Closed {
            code,
            reason,
            by_peer: true,
        } if *code == SessionErrorCode::TooManyRequests.code() => f.note(format!(
            "relay closed with TOO_MANY_REQUESTS ({reason:?}): {answers}"
        )),
        _ if max > last => f.note(format!(
            "the relay granted every Request ID sent, no limit exceeded ({state}): {answers}"
        )),
        _ => f.must(Failure::new(
            "session closed with TOO_MANY_REQUESTS (0x7)",
            format!("{state}; {answers}"),
            "a request with an ID at or above MAX_REQUEST_ID MUST close the session with \
             TOO_MANY_REQUESTS (§9.5)",
        )),
    }
    by.after(
        &env,
        &format!("a flood of {FLOOD} SUBSCRIBEs"),
        false,
        &mut f,
    )
    .await;
    f.verdict()
}

/// Namespaces the `publish-namespace-flood` attacker registers at most.
const NAMESPACES: u64 = 5000;

/// `publish-namespace-flood`: PUBLISH_NAMESPACE for up to 5,000 namespaces from one session,
/// each within the MAX_REQUEST_ID the relay granted (batches as it grants more), then requests
/// from other sessions while those namespaces are held.
pub async fn publish_namespace_flood(env: Env) -> CheckOutput {
    let mut by = Bystander::start(&env).await?;
    let mut f = Findings::default();
    let mut a = Raw::setup(&env, "attacker_connection_id", None).await?;
    let granted = a.max_request_id;
    let enc = Encoding::new(Version::DRAFT_14);
    let (mut sent, mut ok, mut refused) = (0u64, 0u64, 0u64);
    let mut first_refusal = None;
    let mut ended = None;
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    env.step("the relay's answers to the PUBLISH_NAMESPACE flood");
    'flood: while sent < NAMESPACES && tokio::time::Instant::now() < deadline {
        let mut batch = BytesMut::new();
        while sent < NAMESPACES && 2 * sent < a.max_request_id {
            ControlMessage::PublishNamespace(PublishNamespace {
                request_id: 2 * sent,
                namespace: env.namespace_with(&["attack", "ns", &format!("n{sent}")]),
                parameters: VersionParameters::new(),
            })
            .encode(&mut batch, enc)
            .map_err(|e| Failure::new("encodable", e.to_string(), "local encoder"))?;
            sent += 1;
        }
        if batch.is_empty() {
            break;
        }
        a.send_bytes(batch.freeze()).await?;
        // Answers to everything sent; then, if the grant is used up, a moment for a
        // MAX_REQUEST_ID that follows them.
        loop {
            let answered = ok + refused == sent;
            if answered && 2 * sent < a.max_request_id {
                break;
            }
            let wait = if answered {
                Duration::from_millis(200)
            } else {
                QUIET
            };
            match a.next(wait).await {
                Event::Message(ControlMessage::PublishNamespaceOk(_)) => ok += 1,
                Event::Message(ControlMessage::PublishNamespaceError(e)) => {
                    refused += 1;
                    first_refusal.get_or_insert((e.error_code, e.reason.to_string()));
                }
                Event::Message(_) => {}
                Event::Quiet => break,
                other => {
                    ended = Some(describe_event(&other));
                    break 'flood;
                }
            }
        }
    }
    let mut summary = format!(
        "{sent} PUBLISH_NAMESPACE sent (MAX_REQUEST_ID {granted} at setup, {} at the end): {ok} \
         accepted, {refused} refused in {} ms",
        a.max_request_id,
        start.elapsed().as_millis()
    );
    if let Some((code, reason)) = first_refusal {
        summary.push_str(&format!(" (first refusal: code 0x{code:x} {reason:?})"));
    }
    if let Some(e) = &ended {
        summary.push_str(&format!("; then the attacker's session ended: {e}"));
    }
    if ok == NAMESPACES {
        f.warn(Failure::new(
            format!("a limit on the namespaces one session registers, below {NAMESPACES}"),
            summary,
            "a relay SHOULD have mechanisms to prevent a malicious endpoint flooding it with \
             PUBLISH_NAMESPACE (§12.3.1); this one accepted every namespace the suite sent",
        ));
    } else {
        f.note(summary);
    }
    // Another session's PUBLISH_NAMESPACE while the flood's namespaces are held.
    let other = Endpoint::connect(&env, "other_publisher_connection_id").await?;
    let t0 = Instant::now();
    match announce_with(&other, attack_ns(&env, "other"), VersionParameters::new()).await {
        Ok(Ok(_)) if t0.elapsed() <= PROMPT => f.note(format!(
            "another session's PUBLISH_NAMESPACE accepted in {} ms",
            t0.elapsed().as_millis()
        )),
        Ok(Ok(_)) => f.warn(Failure::new(
            format!(
                "another session's PUBLISH_NAMESPACE answered within {} ms",
                PROMPT.as_millis()
            ),
            format!("PUBLISH_NAMESPACE_OK after {} ms", t0.elapsed().as_millis()),
            "after the flood the relay answered another session slowly",
        )),
        Ok(Err(e)) => f.note(format!(
            "another session's PUBLISH_NAMESPACE refused: {}",
            crate::conformance::harness::describe(&e)
        )),
        Err(fail) => f.warn(Failure {
            message: "after the flood the relay did not answer another session".into(),
            ..fail
        }),
    }
    by.after(
        &env,
        &format!("a flood of {sent} PUBLISH_NAMESPACEs"),
        false,
        &mut f,
    )
    .await;
    drop(a);
    f.verdict()
}
