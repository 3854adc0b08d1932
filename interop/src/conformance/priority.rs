//! Priorities under contention (§7.2, §7.3): the subscriber's connection grants a small
//! connection-level flow-control window (MAX_DATA) and stops reading, so the relay's data for two
//! competing streams queues up; then it reads both streams at once. Every window update lets the
//! relay send a little more, and it must choose which stream gets it: a relay that schedules by
//! priority finishes the more important stream while the other is still mostly queued. The
//! draft's scheduling is a SHOULD (§7.2, §7.3, §8.5), so a miss is reported, not counted.

use super::harness::{payload, subscribe, DirectSub, Endpoint, Got, Publisher, SubOpts};
use super::{CheckOutput, Env};
use crate::cases::Failure;
use bytes::Bytes;
use moqlink_transport::track::{Object, SubgroupInfo, TrackProducer};
use std::time::Duration;

/// Objects per competing stream and their size: 4 MB each, far more than the window.
const OBJECTS: u64 = 256;
const SIZE: usize = 16 * 1024;

/// The subscriber's connection-level receive window.
const WINDOW: u32 = 256 * 1024;

/// The share of the less important stream that may have arrived when the more important one
/// completes: this suite's bar, not the draft's (§7.2 leaves "scheduled to be sent first" to the
/// implementation).
const MAX_SHARE: f64 = 0.5;

fn body(env: &Env, g: u64, o: u64) -> Bytes {
    let mut v = payload(env, g, o).to_vec();
    v.resize(SIZE, b'.');
    Bytes::from(v)
}

/// Writes both subgroups, interleaving their objects; `ids` maps the n-th object of each to
/// its Object IDs (distinct when both subgroups share a group).
fn write_interleaved(
    env: &Env,
    a: (&TrackProducer, SubgroupInfo),
    b: (&TrackProducer, SubgroupInfo),
    ids: fn(u64) -> (u64, u64),
) {
    let mut sa = a.0.create_subgroup(a.1);
    let mut sb = b.0.create_subgroup(b.1);
    for n in 0..OBJECTS {
        let (x, y) = ids(n);
        let _ = sa.write(Object::new(x, body(env, a.1.group, x)));
        let _ = sb.write(Object::new(y, body(env, b.1.group, y)));
    }
    sa.finish();
    sb.finish();
}

/// How far the `low` stream got when `high` completed, as a share of its objects.
fn share_at_completion(high: &[Got], low: &[Got]) -> Option<(f64, u64)> {
    let done = high.iter().map(|g| g.seq).max()?;
    let before = low.iter().filter(|g| g.seq < done).count();
    Some((before as f64 / OBJECTS as f64, done))
}

/// Opens the gates, waits for both streams, and judges the order.
async fn judge(
    env: &Env,
    subs: &[&DirectSub],
    split: impl Fn(&[Got]) -> (Vec<Got>, Vec<Got>),
    high: &str,
    low: &str,
) -> CheckOutput {
    env.step("the relay's queues to fill while the subscriber does not read");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for s in subs {
        s.open_gate();
    }
    env.step("both streams after the subscriber resumed reading");
    let total = 2 * OBJECTS as usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    loop {
        let n: usize = subs.iter().map(|s| s.objects().len()).sum();
        if n >= total || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all: Vec<Got> = subs.iter().flat_map(|s| s.objects()).collect();
    let (hi, lo) = split(&all);
    if hi.len() < OBJECTS as usize || lo.len() < OBJECTS as usize {
        return Err(Failure::new(
            format!("{OBJECTS} objects on each stream"),
            format!(
                "{} on the {high} stream, {} on the {low} stream",
                hi.len(),
                lo.len()
            ),
            "the relay did not deliver both streams",
        )
        .into());
    }
    let (share_lo, _) = share_at_completion(&hi, &lo).unwrap_or((1.0, 0));
    let (share_hi, _) = share_at_completion(&lo, &hi).unwrap_or((1.0, 0));
    let summary = format!(
        "when the {high} stream completed, the {low} stream had {:.0}% of its objects (when \
         the {low} stream completed, the {high} had {:.0}%)",
        share_lo * 100.0,
        share_hi * 100.0
    );
    if share_lo > MAX_SHARE {
        return Err(Failure::new(
            format!(
                "the {high} stream completing while at most {:.0}% of the {low} stream arrived",
                MAX_SHARE * 100.0
            ),
            summary,
            "relays SHOULD respect subscriber and publisher priorities (§7.3), selecting the \
             more important object first (§7.2, a SHOULD); the 50% bar is this suite's reading \
             of \"first\", the draft leaves \"scheduled to be sent first\" to the implementation",
        )
        .into());
    }
    Ok(summary)
}

/// `priority-subscriber`: two tracks, Subscriber Priority 10 and 200, one session.
pub async fn subscriber_priority(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["high", "low"]).await?;
    let s = Endpoint::connect_windowed(&env, "subscriber_connection_id", WINDOW).await?;
    let low = subscribe(
        &env,
        &s,
        &env.track("low"),
        SubOpts {
            priority: 200,
            paused: true,
            ..Default::default()
        },
    )
    .await?;
    let high = subscribe(
        &env,
        &s,
        &env.track("high"),
        SubOpts {
            priority: 10,
            paused: true,
            ..Default::default()
        },
    )
    .await?;
    p.upstream(&env, 2).await?;
    write_interleaved(
        &env,
        (&p.tracks[1], SubgroupInfo::new(0, 0, 128)),
        (&p.tracks[0], SubgroupInfo::new(1, 0, 128)),
        |n| (n, n),
    );
    // The two subscriptions are told apart by group: "low" writes group 0, "high" group 1.
    judge(
        &env,
        &[&low, &high],
        |all| {
            (
                all.iter().filter(|g| g.group == 1).cloned().collect(),
                all.iter().filter(|g| g.group == 0).cloned().collect(),
            )
        },
        "Subscriber Priority 10",
        "Subscriber Priority 200",
    )
    .await
}

/// `priority-publisher`: one track, two subgroups with Publisher Priority 10 and 200.
pub async fn publisher_priority(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    let s = Endpoint::connect_windowed(&env, "subscriber_connection_id", WINDOW).await?;
    let sub = subscribe(
        &env,
        &s,
        &env.track("t"),
        SubOpts {
            paused: true,
            ..Default::default()
        },
    )
    .await?;
    p.upstream(&env, 1).await?;
    let track = p.track();
    write_interleaved(
        &env,
        (track, SubgroupInfo::new(0, 0, 200)),
        (track, SubgroupInfo::new(0, 1, 10)),
        |n| (2 * n, 2 * n + 1),
    );
    judge(
        &env,
        &[&sub],
        |all| {
            (
                all.iter()
                    .filter(|g| g.subgroup == Some(1))
                    .cloned()
                    .collect(),
                all.iter()
                    .filter(|g| g.subgroup == Some(0))
                    .cloned()
                    .collect(),
            )
        },
        "Publisher Priority 10",
        "Publisher Priority 200",
    )
    .await
}
