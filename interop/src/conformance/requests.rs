//! Request rules no other check covers: invalid Forward and Fetch Type values (§9.7, §9.16),
//! the reason-phrase limit (§1.4.3), PUBLISH to a track with subscribers (§8.4), End Group in
//! SUBSCRIBE_UPDATE (§9.10), PUBLISH_DONE's Stream Count (§9.12) and a joining FETCH before any
//! content (§9.16.2). The malformed messages are written byte by byte on a [`Raw`] connection.

use super::harness::{
    listing, objects_relayed, relayed, relayed_with, subscribe, update_must_close, within,
    write_group, DirectSub, Endpoint, Publisher, SubOpts,
};
use super::raw::{describe as describe_event, fields, frame, tuple, varint, Event, Raw};
use super::{refused, CheckOutput, Env, Verdict};
use crate::cases::{publish_done_name, request_error_name, Failure};
use bytes::{BufMut, BytesMut};
use moqlink_model::control::*;
use moqlink_model::params::VersionParameters;
use moqlink_model::{Blob, GroupOrder, Location, SessionErrorCode};
use moqlink_transport::session::SessionError;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

/// Why a check fails when the objects it builds on do not arrive.
const BUILDS_ON: &str = "the relay did not forward the objects this check builds on";

/// Stream Count when the publisher cannot count its streams (§9.12).
const UNKNOWN_STREAM_COUNT: u64 = (1 << 62) - 1;

/// `subscribe-forward-invalid`: SUBSCRIBE with Forward 2.
pub async fn subscribe_forward_invalid(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    let t = env.track("t");
    let mut b = BytesMut::new();
    varint(&mut b, 0);
    tuple(&mut b, &fields(&t.namespace));
    varint(&mut b, t.name.len() as u64);
    b.put_slice(&t.name);
    b.put_u8(128); // Subscriber Priority
    b.put_u8(0); // Group Order: the publisher's
    b.put_u8(2); // Forward: neither 0 nor 1
    varint(&mut b, 0x2); // Largest Object
    varint(&mut b, 0); // no parameters
    raw.send_bytes(frame(0x3, &b)).await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "SUBSCRIBE with Forward 2",
        )
        .await?)
}

/// `fetch-type-invalid`: FETCH with Fetch Type 0x4, followed by a standalone range.
pub async fn fetch_type_invalid(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    let t = env.track("t");
    let mut b = BytesMut::new();
    varint(&mut b, 0);
    b.put_u8(128); // Subscriber Priority
    b.put_u8(1); // Ascending
    varint(&mut b, 0x4); // Fetch Type: not 0x1, 0x2 or 0x3
    tuple(&mut b, &fields(&t.namespace));
    varint(&mut b, t.name.len() as u64);
    b.put_slice(&t.name);
    for v in [0, 0, 1, 0] {
        varint(&mut b, v); // Start {0, 0}, End {1, 0}
    }
    varint(&mut b, 0);
    raw.send_bytes(frame(0x16, &b)).await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "FETCH with Fetch Type 0x4",
        )
        .await?)
}

/// The longest Reason Phrase allowed (§1.4.3).
const MAX_REASON: usize = 1024;

/// `reason-phrase-too-long`: a publisher refuses the relay's SUBSCRIBE with a 1,025-byte
/// reason.
pub async fn reason_phrase_too_long(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "publisher_connection_id", Some(10)).await?;
    raw.announce(&env, 0, env.namespace()).await?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let pending = s.subscribe_later(env.track("t"));
    let id = raw
        .relay_subscribe(&env)
        .await
        .inspect_err(|_| pending.abort())?;
    let mut b = BytesMut::new();
    varint(&mut b, id);
    varint(&mut b, 0x4); // TRACK_DOES_NOT_EXIST
    varint(&mut b, MAX_REASON as u64 + 1);
    b.put_slice(&[b'x'; MAX_REASON + 1]);
    raw.send_bytes(frame(0x5, &b)).await?;
    let r = raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "SUBSCRIBE_ERROR with a 1,025-byte Reason Phrase (the maximum is 1,024)",
        )
        .await;
    pending.abort();
    Ok(r?)
}

/// `publish-forward-with-subscribers`: a second publisher's PUBLISH of a track a Forward=1
/// subscriber already receives.
pub async fn publish_forward_with_subscribers(env: Env) -> CheckOutput {
    let (p, _s, sub) = relayed(&env).await?;
    write_group(&env, p.track(), 0, 0..2).await;
    objects_relayed(&env, &sub, 2, "objects 0.0 and 0.1", BUILDS_ON).await?;
    let mut raw = Raw::setup(&env, "second_publisher_connection_id", None).await?;
    raw.send(&ControlMessage::Publish(Publish {
        request_id: 0,
        namespace: env.namespace(),
        name: Blob::from("t"),
        track_alias: 1,
        group_order: GroupOrder::Ascending,
        largest_location: Some(Location::new(0, 1)),
        forward: false,
        parameters: VersionParameters::new(),
    }))
    .await?;
    env.step("PUBLISH_OK for the track with an active Forward=1 subscriber");
    let reply = loop {
        match raw.next(Duration::from_secs(5)).await {
            Event::Message(
                m @ (ControlMessage::PublishOk(_) | ControlMessage::PublishError(_)),
            ) => break m,
            Event::Message(_) => {}
            other => {
                return Err(Failure::new(
                    "PUBLISH_OK with Forward 1",
                    match other {
                        Event::Quiet => "no answer to PUBLISH within 5000 ms".to_string(),
                        other => describe_event(&other),
                    },
                    "a PUBLISH for a track with active subscribers MUST get PUBLISH_OK (§8.4)",
                )
                .into())
            }
        }
    };
    match reply {
        ControlMessage::PublishOk(ok) if ok.forward => Ok(format!(
            "PUBLISH (Forward 0) of a track with a Forward=1 subscriber: PUBLISH_OK Forward 1, \
             filter {:?}",
            ok.filter
        )),
        ControlMessage::PublishOk(ok) => Err(Failure::new(
            "PUBLISH_OK with Forward 1",
            format!("PUBLISH_OK with Forward 0 (filter {:?})", ok.filter),
            "a downstream subscriber of the track has Forward State 1 (§8.4)",
        )
        .into()),
        ControlMessage::PublishError(e) if e.error_code == super::NOT_SUPPORTED => {
            Err(Verdict::Unsupported {
                what: "PUBLISH".into(),
                reason: e.reason.to_string(),
            })
        }
        ControlMessage::PublishError(e) => Err(Verdict::NotApplicable(format!(
            "the relay refused a second publisher of the track with PUBLISH_ERROR 0x{:x} ({}) \
             {:?}, which §8.2 allows when it cannot accept another publisher",
            e.error_code,
            request_error_name(
                moqlink_model::control::MessageType::PublishError,
                e.error_code
            ),
            e.reason.to_string()
        ))),
        _ => unreachable!("only PUBLISH_OK and PUBLISH_ERROR leave the loop"),
    }
}

/// `subscribe-update-end-group-increased`: AbsoluteRange to group 2, updated to end at 5.
pub async fn update_end_group_increased(env: Env) -> CheckOutput {
    let filter = Filter::AbsoluteRange {
        start: Location::new(0, 0),
        end_group: 2,
    };
    let (_p, s, sub) = relayed_with(&env, SubOpts::filter(filter)).await?;
    Ok(update_must_close(
        &env,
        &s,
        &sub,
        Location::new(0, 0),
        Some(5),
        "SUBSCRIBE_UPDATE raising End Group from 2 to 5",
    )
    .await?)
}

/// `publish-done-stream-count`: three groups on three streams, then the publisher leaves.
pub async fn publish_done_stream_count(env: Env) -> CheckOutput {
    let (p, _s, sub) = relayed(&env).await?;
    for g in 0..3 {
        write_group(&env, p.track(), g, 0..2).await;
    }
    objects_relayed(&env, &sub, 6, "objects 0.0-2.1", BUILDS_ON).await?;
    let Publisher { ep, ns, .. } = p;
    drop(ns);
    ep.close().await;
    env.step("PUBLISH_DONE after the publisher's session ended");
    let Some(done) = sub.wait_done(Duration::from_secs(5)).await else {
        return Err(Failure::new(
            "PUBLISH_DONE once the publisher's session ended",
            "nothing within 5 s",
            "this check reads the Stream Count of the PUBLISH_DONE that ends the subscription",
        )
        .into());
    };
    // Late-opening streams may follow PUBLISH_DONE (§9.12): wait until every stream received
    // has ended and, for a count above what arrived, for the rest to come.
    let count = done.stream_count;
    env.step(format!("the streams PUBLISH_DONE counts ({count})"));
    let all_ended = |sub: &DirectSub| sub.ends().len() as u64 >= sub.streams();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < deadline
        && !(all_ended(&sub) && (count == UNKNOWN_STREAM_COUNT || sub.streams() >= count))
    {
        sub.settle(Duration::from_millis(200), Duration::from_millis(400))
            .await;
    }
    let streams = sub.streams();
    let text = format!(
        "PUBLISH_DONE 0x{:x} ({}) Stream Count {count}; {streams} subgroup stream(s) received \
         ({})",
        done.status_code,
        publish_done_name(done.status_code),
        listing(&sub.objects())
    );
    if count == UNKNOWN_STREAM_COUNT || count == streams {
        return Ok(text);
    }
    Err(Failure::new(
        format!("Stream Count {streams} (the streams opened) or 2^62-1"),
        text,
        "Stream Count is the number of data streams the relay opened for the subscription; a \
         publisher that cannot count them MUST say 2^62-1 (§9.12)",
    )
    .into())
}

/// `fetch-joining-no-content`: a joining FETCH for a subscription whose SUBSCRIBE_OK said
/// Content Exists 0.
pub async fn fetch_joining_no_content(env: Env) -> CheckOutput {
    let _p = Publisher::start(&env, &["t"]).await?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let sub = subscribe(&env, &s, &env.track("t"), SubOpts::default()).await?;
    if let Some(l) = sub.largest() {
        return Err(Verdict::NotApplicable(format!(
            "SUBSCRIBE_OK for a track with no objects reported Largest {l} (Content Exists 1)"
        )));
    }
    let kind = FetchKind::RelativeJoining {
        joining_request_id: sub.request_id(),
        joining_start: 0,
    };
    env.step("FETCH_ERROR INVALID_RANGE");
    let answer = within(
        T,
        "FETCH_ERROR INVALID_RANGE",
        s.session
            .fetch(kind, 128, GroupOrder::Ascending, VersionParameters::new()),
    )
    .await?;
    let rule = "no objects were published and SUBSCRIBE_OK had Content Exists 0: the publisher \
                MUST respond with FETCH_ERROR INVALID_RANGE (§9.16.2)";
    match answer {
        Ok(r) => Err(Failure::new(
            "FETCH_ERROR INVALID_RANGE (0x5)",
            format!("FETCH_OK (End Location {:?})", r.ok.end_location),
            rule,
        )
        .into()),
        Err(SessionError::Rejected {
            code: 0x5, reason, ..
        }) => Ok(format!(
            "Relative Joining FETCH after SUBSCRIBE_OK with Content Exists 0: FETCH_ERROR \
             INVALID_RANGE {reason:?}"
        )),
        Err(e) => Err(refused(e, "FETCH_ERROR INVALID_RANGE (0x5)", rule)),
    }
}
