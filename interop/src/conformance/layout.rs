//! How the relay lays a subgroup on streams: one subgroup, one stream (§2.2, §10.4), however
//! slowly its objects arrive; and how it ends subscriptions: a relevant PUBLISH_DONE code
//! (§9.12).

use super::harness::{payload, subscribe, Endpoint, Publisher, SubOpts};
use super::{CheckOutput, Env, Verdict};
use crate::cases::Failure;
use moqlink_model::codes::PublishDoneCode;
use moqlink_transport::track::{Object, SubgroupInfo};
use std::collections::BTreeSet;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);
/// Objects the check writes into its one subgroup.
const OBJECTS: u64 = 5;

/// `subgroup-one-stream`: the publisher writes five objects of subgroup 0.0 one at a time,
/// each after the previous one arrived; all five arrive on one stream.
pub async fn one_stream(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let sub = subscribe(&env, &s, &env.track("t"), SubOpts::default()).await?;
    p.upstream(&env, 1).await?;
    let mut sg = p.track().create_subgroup(SubgroupInfo::new(0, 0, 128));
    for o in 0..OBJECTS {
        let _ = sg.write(Object::new(o, payload(&env, 0, o)));
        env.step(format!("object 0.{o} at the subscriber"));
        if !sub.wait_count(o as usize + 1, T).await {
            return Err(Failure::new(
                format!("objects 0.0-0.{o} relayed"),
                super::harness::listing(&sub.objects()),
                "the relay did not forward the objects this check watches",
            )
            .into());
        }
    }
    sg.finish();
    let got = sub.objects();
    let streams: BTreeSet<u64> = got.iter().map(|o| o.stream).collect();
    let placed: Vec<String> = got
        .iter()
        .map(|o| format!("0.{} on stream {}", o.id, o.stream))
        .collect();
    if streams.len() == 1 {
        return Ok(format!(
            "objects 0.0-0.{} of subgroup 0 all arrived on one stream",
            OBJECTS - 1
        ));
    }
    // A reset stream, or upstream disorder, allows a new stream (§2.2).
    let resets: Vec<String> = sub
        .ends()
        .iter()
        .filter(|e| e.reset.is_some())
        .map(|e| format!("stream {} reset", e.stream))
        .collect();
    if !resets.is_empty() {
        return Err(Verdict::NotApplicable(format!(
            "the relay reset a stream ({}), which allows another for the same subgroup: {}",
            resets.join(", "),
            placed.join(", ")
        )));
    }
    Err(Failure::new(
        "every object of subgroup 0.0 on one stream",
        placed.join(", "),
        "objects of one subgroup MUST NOT be sent on different streams unless one was reset \
         (§2.2); the publisher wrote them in order on one stream",
    )
    .into())
}

fn done_text(d: &Option<moqlink_model::control::PublishDone>) -> String {
    match d {
        Some(d) => format!(
            "PUBLISH_DONE 0x{:x} {:?}",
            d.status_code,
            d.reason.to_string()
        ),
        None => format!("no PUBLISH_DONE within {} ms", T.as_millis()),
    }
}

/// `publish-done-status-code`: a subscription whose AbsoluteRange filter ends at group 0 ends
/// with SUBSCRIPTION_ENDED; an open one, when the publisher ends the track with TRACK_ENDED,
/// ends with TRACK_ENDED.
pub async fn publish_done_status(env: Env) -> CheckOutput {
    use moqlink_model::control::Filter;
    use moqlink_model::Location;
    let p = Publisher::start(&env, &["t"]).await?;
    let ranged = Endpoint::connect(&env, "ranged_subscriber_connection_id").await?;
    let open = Endpoint::connect(&env, "open_subscriber_connection_id").await?;
    let a = subscribe(
        &env,
        &ranged,
        &env.track("t"),
        SubOpts::filter(Filter::AbsoluteRange {
            start: Location::new(0, 0),
            end_group: 0,
        }),
    )
    .await?;
    let b = subscribe(&env, &open, &env.track("t"), SubOpts::default()).await?;
    p.upstream(&env, 1).await?;
    super::harness::write_group(&env, p.track(), 0, 0..2).await;
    super::harness::write_group(&env, p.track(), 1, 0..2).await;
    env.step("PUBLISH_DONE for the subscription ending at group 0");
    let done_a = a.wait_done(T).await;
    env.step("groups 0 and 1 at the open subscriber");
    if !b.wait_count(4, T).await {
        return Err(Failure::new(
            "objects 0.0-1.1 at the open subscriber",
            super::harness::listing(&b.objects()),
            "the relay did not forward the objects this check builds on",
        )
        .into());
    }
    p.track().finish(moqlink_transport::track::TrackEnd {
        status: PublishDoneCode::TrackEnded,
        reason: "conformance: track ended".into(),
    });
    env.step("PUBLISH_DONE for the open subscription after the track ended");
    let done_b = b.wait_done(T).await;
    let text = format!(
        "filter end: {}; track end: {}",
        done_text(&done_a),
        done_text(&done_b)
    );
    // Graded where a PUBLISH_DONE came: whether one must come is other checks' business.
    if done_a.is_none() && done_b.is_none() {
        return Err(Verdict::NotApplicable(format!(
            "this check grades PUBLISH_DONE codes: none arrived ({text})"
        )));
    }
    let ok_a = done_a
        .as_ref()
        .is_none_or(|d| d.status_code == PublishDoneCode::SubscriptionEnded.code());
    let ok_b = done_b
        .as_ref()
        .is_none_or(|d| d.status_code == PublishDoneCode::TrackEnded.code());
    if !(ok_a && ok_b) {
        return Err(Failure::new(
            "SUBSCRIPTION_ENDED (0x3) at the filter's end, TRACK_ENDED (0x2) when the publisher \
             ended the track",
            text,
            "the application SHOULD use a relevant status code in PUBLISH_DONE (§9.12)",
        )
        .into());
    }
    Ok(text)
}
