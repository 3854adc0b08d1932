//! How the relay lays a subgroup on streams: one subgroup, one stream (§2.2, §10.4), however
//! slowly its objects arrive.

use super::harness::{payload, subscribe, Endpoint, Publisher, SubOpts};
use super::{CheckOutput, Env, Verdict};
use crate::cases::Failure;
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
