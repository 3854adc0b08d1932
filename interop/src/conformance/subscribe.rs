//! Subscription filter checks (§9.7): Largest Object with an object in flight, Next Group Start,
//! AbsoluteStart and AbsoluteRange, and the filter errors. The helpers serve subscription.rs too.

use super::harness::{
    describe, listing, locations, payload, problems, subscribe, verdict, within, write_data,
    DirectSub, Endpoint, Got, Publisher, RawPublisher, SubOpts,
};
use super::raw::{frame, tuple, varint, Raw};
use super::{CheckOutput, Env, Verdict};
use crate::cases::{publish_done_name, request_error_name, Failure};
use bytes::{Bytes, BytesMut};
use moqlink_model::codes::SubscribeErrorCode;
use moqlink_model::control::*;
use moqlink_model::data::{
    Extensions, ObjectStatus, SubgroupHeader, SubgroupIdMode, SubgroupObject,
};
use moqlink_model::{Blob, Encoding, Location, SessionErrorCode, Version};
use moqlink_transport::session::SessionError;
use moqlink_transport::track::{Object, SubgroupInfo, SubgroupProducer, TrackProducer};
use moqlink_transport::SendStream;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

/// A publisher and a subscriber endpoint, the subscriber not yet subscribed.
pub(super) async fn two(env: &Env) -> Result<(Publisher, Endpoint), Verdict> {
    let p = Publisher::start(env, &["t"]).await?;
    let s = Endpoint::connect(env, "subscriber_connection_id").await?;
    Ok((p, s))
}

/// Opens subgroup 0 of group `g` and writes objects `ids`; the subgroup stays open.
pub(super) fn open_group(
    env: &Env,
    track: &TrackProducer,
    g: u64,
    ids: std::ops::Range<u64>,
) -> SubgroupProducer {
    let mut sg = track.create_subgroup(SubgroupInfo::new(g, 0, 128));
    for o in ids {
        let _ = sg.write(Object::new(o, payload(env, g, o)));
    }
    sg
}

/// Writes objects `ids` on an open subgroup.
pub(super) fn more(env: &Env, sg: &mut SubgroupProducer, ids: std::ops::Range<u64>) {
    let g = sg.info().group;
    for o in ids {
        let _ = sg.write(Object::new(o, payload(env, g, o)));
    }
}

/// A first subscriber ("watcher") so the relay holds an upstream subscription and sees every
/// object as it is published.
pub(super) async fn watcher(env: &Env, p: &Publisher) -> Result<(Endpoint, DirectSub), Verdict> {
    let w = Endpoint::connect(env, "watcher_connection_id").await?;
    let sub = subscribe(env, &w, &env.track("t"), SubOpts::default()).await?;
    p.upstream(env, 1).await?;
    Ok((w, sub))
}

/// Waits until `sub` has `n` objects, failing with what arrived.
pub(super) async fn arrived(
    env: &Env,
    sub: &DirectSub,
    n: usize,
    what: &str,
) -> Result<(), Failure> {
    env.step(what.to_string());
    if sub.wait_count(n, T).await {
        return Ok(());
    }
    Err(Failure::new(
        what,
        listing(&sub.objects()),
        "the relay did not forward the objects this check builds on",
    ))
}

/// Compares what `sub` got with exactly `want`, after the stream settles.
pub(super) async fn exactly(
    env: &Env,
    sub: &DirectSub,
    want: &[(u64, u64)],
    expected: &str,
    message: &str,
) -> Result<Vec<Got>, Failure> {
    env.step(format!("exactly {expected}"));
    sub.wait(T, |g| {
        want.iter().all(|w| g.iter().any(|o| (o.group, o.id) == *w))
    })
    .await;
    sub.settle(Duration::from_millis(300), T).await;
    let got = sub.objects();
    verdict(&problems(env, &got, want), expected, message).map_err(|f| {
        let done = sub.done().map_or(String::new(), |d| {
            format!(
                "; PUBLISH_DONE 0x{:x} ({}) arrived",
                d.status_code,
                publish_done_name(d.status_code)
            )
        });
        Failure {
            received: format!("{}{done}", f.received),
            ..f
        }
    })?;
    Ok(got)
}

pub(super) fn largest_text(l: Option<Location>) -> String {
    l.map_or("none (Content Exists 0)".into(), |l| l.to_string())
}

/// `filter-largest-object`: the in-flight object is the Largest Object and is skipped.
pub async fn largest_object(env: Env) -> CheckOutput {
    const ALIAS: u64 = 1;
    let rp = RawPublisher::start(&env, ALIAS, "watcher_connection_id").await?;
    let wsub = &rp.sub;
    let name = env.track("t");
    // Objects 0.0 and 0.1 whole, then the first half of 0.2: in flight.
    let header = SubgroupHeader {
        track_alias: ALIAS,
        group_id: 0,
        subgroup_id: SubgroupIdMode::Zero,
        publisher_priority: 128,
        extensions_present: false,
        end_of_group: false,
    };
    let enc = Encoding::new(Version::DRAFT_14);
    let big = |o: u64| {
        let mut v = payload(&env, 0, o).to_vec();
        v.resize(1200, b'.');
        Bytes::from(v)
    };
    let object = |id: u64, body: Bytes| SubgroupObject {
        object_id: id,
        extensions: Extensions::empty(),
        status: ObjectStatus::Normal,
        payload: Blob(body),
    };
    let mut b = BytesMut::new();
    let _ = header.encode(&mut b, enc);
    for id in 0..2 {
        let _ = object(id, big(id)).encode(&mut b, &header, id.checked_sub(1), enc);
    }
    let two = big(2);
    let _ = object(2, two.clone()).encode_head(&mut b, &header, Some(1), enc);
    b.extend_from_slice(&two[..600]);
    let mut stream = rp.stream(b.split().freeze()).await?;
    env.step("objects 0.0 and 0.1 at the first subscriber");
    if !wsub.wait_count(2, T).await {
        return Err(Failure::new(
            "objects 0.0 and 0.1 relayed",
            listing(&wsub.objects()),
            "the relay did not forward the complete objects",
        )
        .into());
    }
    // Synchronise on the relay's own word: TRACK_STATUS (on a connection of its own) until it
    // reports Largest {0, 2}, i.e. it has read 0.2's first bytes. A relay that does not answer
    // TRACK_STATUS gets a generous second instead.
    let q = Endpoint::connect(&env, "status_connection_id").await?;
    env.step("TRACK_STATUS reporting Largest {0, 2} (0.2's first bytes read by the relay)");
    let status = status_until(&q, &name, Location::new(0, 2)).await;
    if status.is_none() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let sub = subscribe(&env, &s, &name, SubOpts::default()).await?;
    // Finish 0.2, then 0.3, 0.4 and group 1.
    b.extend_from_slice(&two[600..]);
    for id in 3..5 {
        let _ = object(id, big(id)).encode(&mut b, &header, Some(id - 1), enc);
    }
    write_data(&mut stream, b.split().freeze()).await?;
    let _ = stream.finish();
    let h1 = SubgroupHeader {
        group_id: 1,
        ..header
    };
    let _ = h1.encode(&mut b, enc);
    for id in 0..2 {
        let mut v = payload(&env, 1, id).to_vec();
        v.resize(1200, b'.');
        let _ = object(id, Bytes::from(v)).encode(&mut b, &h1, id.checked_sub(1), enc);
    }
    let mut s1 = rp.stream(b.split().freeze()).await?;
    let _ = s1.finish();
    env.step("every object at the first subscriber");
    wsub.wait_count(7, T).await;
    sub.settle(Duration::from_millis(300), T).await;
    let largest = sub.largest();
    let got = sub.objects();
    let start = largest.map_or(Location::new(0, 0), |l| {
        Location::new(l.group, l.object + 1)
    });
    let all = [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0), (1, 1)];
    let mut issues = Vec::new();
    for o in &got {
        if o.location() < start {
            issues.push(format!(
                "object {}.{} is before the filter start {start}",
                o.group, o.id
            ));
        }
    }
    for (g, o) in all.iter().filter(|(g, o)| Location::new(*g, *o) >= start) {
        if !got.iter().any(|x| (x.group, x.id) == (*g, *o)) {
            issues.push(format!("missing object {g}.{o}"));
        }
    }
    let summary = format!(
        "SUBSCRIBE_OK Largest {} while 0.2 was in flight; received {}",
        largest_text(largest),
        listing(&got)
    );
    if let Some(first) = issues.first() {
        return Err(Failure::new(
            format!(
                "every object after Largest {} and none before",
                largest_text(largest)
            ),
            format!("{first}; {summary}"),
            "the relay did not deliver what its own SUBSCRIBE_OK promised (§9.7)",
        )
        .into());
    }
    let said = match status {
        Some(l) => format!(
            "TRACK_STATUS before the SUBSCRIBE said Largest {}",
            largest_text(l)
        ),
        None => "TRACK_STATUS not answered with TRACK_STATUS_OK".into(),
    };
    match largest {
        Some(l) if l == Location::new(0, 2) => Ok(format!("{summary}; {said}")),
        Some(l) if l == Location::new(0, 1) && status.is_none() => Ok(format!(
            "{summary}; {said}, so whether the relay had read 0.2's first bytes when it \
                 answered cannot be told: either reading is accepted (it delivered from its own \
                 Start 0.2)"
        )),
        _ => Err(Failure::new(
            "SUBSCRIBE_OK Largest {0, 2}: object 0.2's first byte had arrived, so 0.3 is the \
             first object after Start",
            format!("{summary}; {said}"),
            "Largest Object updates when the first byte of an object arrives (§9.7); the relay \
             sent objects from before the Largest Object filter's Start, which a publisher MUST \
             NOT (§9.7)",
        )
        .into()),
    }
}

/// Asks TRACK_STATUS for `name` until the Largest reported reaches `want` (at most 3 s). The last
/// Largest reported, or `None` when the relay never answered TRACK_STATUS_OK.
async fn status_until(
    q: &Endpoint,
    name: &moqlink_transport::track::TrackName,
    want: Location,
) -> Option<Option<Location>> {
    let deadline = tokio::time::Instant::now() + T;
    let mut last = None;
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), q.session.track_status(name)).await {
            Ok(Ok(ok)) => {
                last = Some(ok.largest_location);
                if ok.largest_location.is_some_and(|l| l >= want) {
                    break;
                }
            }
            _ => break,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// `filter-largest-object-first-subscriber`: no watcher; the publisher already has 0.0-0.2.
pub async fn largest_object_first(env: Env) -> CheckOutput {
    let (p, s) = two(&env).await?;
    let mut sg = open_group(&env, p.track(), 0, 0..3);
    let sub = subscribe(&env, &s, &env.track("t"), SubOpts::default()).await?;
    p.upstream(&env, 1).await?;
    more(&env, &mut sg, 3..5);
    sg.finish();
    super::harness::write_group(&env, p.track(), 1, 0..2).await;
    let want = [(0, 3), (0, 4), (1, 0), (1, 1)];
    let got = exactly(
        &env,
        &sub,
        &want,
        "objects 0.3, 0.4, 1.0, 1.1 (after the publisher's Largest 0.2)",
        "a Largest Object subscription starts after the largest object (§9.7)",
    )
    .await?;
    if sub.largest() != Some(Location::new(0, 2)) {
        return Err(Failure::new(
            "SUBSCRIBE_OK Largest {0, 2} (the upstream SUBSCRIBE_OK's)",
            format!("SUBSCRIBE_OK Largest {}", largest_text(sub.largest())),
            "the relay has its upstream subscription before SUBSCRIBE_OK (§8.3), so it knows \
             the Largest Object it must report (§9.8)",
        )
        .into());
    }
    Ok(format!("SUBSCRIBE_OK Largest {{0, 2}}; {}", listing(&got)))
}

/// `filter-next-group-start`.
pub async fn next_group_start(env: Env) -> CheckOutput {
    let (p, s) = two(&env).await?;
    let (_w, wsub) = watcher(&env, &p).await?;
    let mut sg = open_group(&env, p.track(), 0, 0..3);
    arrived(&env, &wsub, 3, "objects 0.0-0.2 at the watcher").await?;
    let sub = subscribe(
        &env,
        &s,
        &env.track("t"),
        SubOpts::filter(Filter::NextGroupStart),
    )
    .await?;
    more(&env, &mut sg, 3..5);
    sg.finish();
    super::harness::write_group(&env, p.track(), 1, 0..3).await;
    super::harness::write_group(&env, p.track(), 2, 0..2).await;
    let want = [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1)];
    let got = exactly(
        &env,
        &sub,
        &want,
        "groups 1 and 2 only",
        "Next Group Start begins at {Largest.Group + 1, 0} (§9.7)",
    )
    .await?;
    Ok(format!(
        "SUBSCRIBE_OK Largest {}; {}",
        largest_text(sub.largest()),
        listing(&got)
    ))
}

/// `filter-absolute-start`: start {1, 2} before anything is published.
pub async fn absolute_start(env: Env) -> CheckOutput {
    let (p, s) = two(&env).await?;
    let filter = Filter::AbsoluteStart {
        start: Location::new(1, 2),
    };
    let sub = subscribe(&env, &s, &env.track("t"), SubOpts::filter(filter)).await?;
    p.upstream(&env, 1).await?;
    super::harness::write_group(&env, p.track(), 0, 0..4).await;
    super::harness::write_group(&env, p.track(), 1, 0..5).await;
    super::harness::write_group(&env, p.track(), 2, 0..2).await;
    let want = [(1, 2), (1, 3), (1, 4), (2, 0), (2, 1)];
    let got = exactly(
        &env,
        &sub,
        &want,
        "objects 1.2-1.4, 2.0, 2.1",
        "only objects at or after the Start Location pass the filter (§9.7)",
    )
    .await?;
    Ok(listing(&got))
}

/// `filter-absolute-start-history`: start {0, 0} after groups 0-1 were relayed. Two readings
/// pass (testvectors/DISAGREEMENTS.md D15): the cache replayed as whole groups ending with group
/// 1, then group 2 (every relay measured), or group 2 only (§9.7's "published or received after
/// this subscription is processed").
pub async fn absolute_start_history(env: Env) -> CheckOutput {
    let (p, s) = two(&env).await?;
    let (_w, wsub) = watcher(&env, &p).await?;
    super::harness::write_group(&env, p.track(), 0, 0..3).await;
    super::harness::write_group(&env, p.track(), 1, 0..3).await;
    arrived(&env, &wsub, 6, "groups 0-1 at the watcher").await?;
    let filter = Filter::AbsoluteStart {
        start: Location::new(0, 0),
    };
    let sub = subscribe(&env, &s, &env.track("t"), SubOpts::filter(filter)).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    super::harness::write_group(&env, p.track(), 2, 0..3).await;
    env.step("group 2, and whatever of groups 0-1 the relay replays");
    sub.wait(T, |g| {
        (0..3).all(|o| g.iter().any(|x| (x.group, x.id) == (2, o)))
    })
    .await;
    sub.settle(Duration::from_millis(300), T).await;
    let got = sub.objects();
    let groups = |from: u64| locations(from..3, 0..3);
    let readings = [
        (
            groups(0),
            "replays the cached groups 0-1, then group 2 (D15)",
        ),
        (groups(1), "replays the cached group 1, then group 2 (D15)"),
        (groups(2), "new objects only: group 2 (§9.7's reading)"),
    ];
    for (want, reading) in &readings {
        if problems(&env, &got, want).is_empty() {
            return Ok(format!("{reading}; {}", listing(&got)));
        }
    }
    // No MUST says how much history a relay replays, or forbids replaying some of it twice: the
    // replay is reported. Group 2, written after SUBSCRIBE_OK, must arrive whole, and nothing
    // beyond what was published may (§8.3: no object dropped; §2.1: objects unchanged).
    let missing: Vec<String> = (0..3)
        .filter(|o| !got.iter().any(|x| (x.group, x.id) == (2, *o)))
        .map(|o| format!("2.{o}"))
        .collect();
    let invented: Vec<String> = got
        .iter()
        .filter(|x| x.group > 2 || x.id > 2)
        .map(|x| format!("{}.{}", x.group, x.id))
        .collect();
    if !missing.is_empty() || !invented.is_empty() {
        return Err(Failure::new(
            "objects 2.0-2.2 (published after SUBSCRIBE_OK), and no object never published",
            format!(
                "missing {}; unexpected {}; received {}",
                if missing.is_empty() {
                    "none".into()
                } else {
                    missing.join(" ")
                },
                if invented.is_empty() {
                    "none".into()
                } else {
                    invented.join(" ")
                },
                listing(&got)
            ),
            "a relay forwards what it receives without dropping objects (§8.3)",
        )
        .into());
    }
    Ok(format!(
        "a replay that is neither the retained groups in full nor nothing (no MUST governs it): {}",
        listing(&got)
    ))
}

/// `filter-absolute-range`: start {1, 1}, End Group 2.
pub async fn absolute_range(env: Env) -> CheckOutput {
    let (p, s) = two(&env).await?;
    let filter = Filter::AbsoluteRange {
        start: Location::new(1, 1),
        end_group: 2,
    };
    let sub = subscribe(&env, &s, &env.track("t"), SubOpts::filter(filter)).await?;
    p.upstream(&env, 1).await?;
    for g in 0..4 {
        super::harness::write_group(&env, p.track(), g, 0..4).await;
    }
    let want = [(1, 1), (1, 2), (1, 3), (2, 0), (2, 1), (2, 2), (2, 3)];
    let got = exactly(
        &env,
        &sub,
        &want,
        "objects 1.1-1.3 and 2.0-2.3, nothing of groups 0 and 3",
        "AbsoluteRange passes Start through End Group only (§9.7)",
    )
    .await?;
    let done = sub.wait_done(Duration::from_millis(500)).await;
    Ok(format!(
        "{}; {}",
        listing(&got),
        done.map_or(
            "no PUBLISH_DONE (relays need not track filter ends, §8.3)".into(),
            |d| {
                format!(
                    "PUBLISH_DONE 0x{:x} ({})",
                    d.status_code,
                    publish_done_name(d.status_code)
                )
            }
        )
    ))
}

/// `filter-absolute-range-burst`: start {1, 0}, End Group 3, groups 0-5 written back to back.
pub async fn absolute_range_burst(env: Env) -> CheckOutput {
    let (p, s) = two(&env).await?;
    let filter = Filter::AbsoluteRange {
        start: Location::new(1, 0),
        end_group: 3,
    };
    let sub = subscribe(&env, &s, &env.track("t"), SubOpts::filter(filter)).await?;
    p.upstream(&env, 1).await?;
    // No pacing: the streams of later groups may overtake earlier ones on the way.
    for g in 0..6 {
        let mut sg = p.track().create_subgroup(SubgroupInfo::new(g, 0, 128));
        for o in 0..3 {
            let _ = sg.write(Object::new(o, payload(&env, g, o)));
        }
        sg.finish();
    }
    let want: Vec<(u64, u64)> = (1..4).flat_map(|g| (0..3).map(move |o| (g, o))).collect();
    env.step("groups 1-3 (in any order) or PUBLISH_DONE");
    sub.wait(T, |g| {
        sub.done().is_some() || want.iter().all(|w| g.iter().any(|o| (o.group, o.id) == *w))
    })
    .await;
    sub.settle(Duration::from_millis(300), T).await;
    let got = sub.objects();
    let found = problems(&env, &got, &want);
    let (missing, wrong): (Vec<String>, Vec<String>) =
        found.into_iter().partition(|p| p.starts_with("missing"));
    verdict(
        &wrong,
        "groups 1-3 in any order, nothing of groups 0, 4 and 5",
        "a publisher MUST NOT send objects from outside the requested start and end (§9.7)",
    )?;
    let done = sub.done();
    match (missing.first(), done) {
        (None, _) => Ok(format!("{} (arrival order is free)", listing(&got))),
        (Some(_), Some(d)) => Ok(format!(
            "{}; then PUBLISH_DONE 0x{:x} ({}) before {} in-range object(s): a publisher may end \
             a subscription for any reason (§9.12), and groups written back to back can reach the \
             relay in any order",
            listing(&got),
            d.status_code,
            publish_done_name(d.status_code),
            missing.len()
        )),
        (Some(first), None) => Err(Failure::new(
            "groups 1-3 in any order, or PUBLISH_DONE ending the subscription early",
            format!(
                "{first} ({} missing), no PUBLISH_DONE; received {}",
                missing.len(),
                listing(&got)
            ),
            "each new object is forwarded to every active subscriber its filter allows (§8.3); a \
             relay MUST NOT drop objects received on a multi-object stream (§8.3)",
        )
        .into()),
    }
}

/// `filter-absolute-range-single-group`: start {1, 2}, End Group 1.
pub async fn absolute_range_single(env: Env) -> CheckOutput {
    let (p, s) = two(&env).await?;
    let filter = Filter::AbsoluteRange {
        start: Location::new(1, 2),
        end_group: 1,
    };
    let sub = subscribe(&env, &s, &env.track("t"), SubOpts::filter(filter)).await?;
    p.upstream(&env, 1).await?;
    for g in 0..3 {
        super::harness::write_group(&env, p.track(), g, 0..4).await;
    }
    let got = exactly(
        &env,
        &sub,
        &[(1, 2), (1, 3)],
        "objects 1.2 and 1.3 only",
        "with End Group equal to the Start group, the rest of that group passes (§9.7)",
    )
    .await?;
    Ok(listing(&got))
}

/// `filter-absolute-range-invalid`: End Group 1 below Start {2, 0}.
pub async fn absolute_range_invalid(env: Env) -> CheckOutput {
    let (_p, s) = two(&env).await?;
    let filter = Filter::AbsoluteRange {
        start: Location::new(2, 0),
        end_group: 1,
    };
    env.step("SUBSCRIBE_ERROR");
    let answer = within(
        Duration::from_secs(4),
        "SUBSCRIBE_ERROR",
        DirectSub::subscribe(&s.session, &env.track("t"), SubOpts::filter(filter)),
    )
    .await?;
    match answer {
        Ok(sub) => Err(Failure::new(
            "SUBSCRIBE_ERROR INVALID_RANGE (0x5)",
            format!("SUBSCRIBE_OK (alias {})", sub.ok.track_alias),
            "a publisher that cannot satisfy the requested start or end SHOULD answer \
             SUBSCRIBE_ERROR with code INVALID_RANGE (§9.7; End Group below Start is the \
             subscriber's MUST)",
        )
        .into()),
        Err(SessionError::Rejected { code, .. })
            if code == SubscribeErrorCode::InvalidRange.code() =>
        {
            Ok("SUBSCRIBE_ERROR INVALID_RANGE for End Group 1 < Start {2, 0}".into())
        }
        Err(SessionError::Rejected { code, reason, .. }) => Err(Failure::new(
            "SUBSCRIBE_ERROR INVALID_RANGE (0x5)",
            format!(
                "SUBSCRIBE_ERROR code 0x{code:x} ({}) {reason:?}",
                request_error_name(moqlink_model::control::MessageType::SubscribeError, code)
            ),
            "a publisher that cannot satisfy the requested start or end SHOULD answer \
             SUBSCRIBE_ERROR with code INVALID_RANGE (§9.7)",
        )
        .into()),
        Err(e) => Err(Failure::new(
            "SUBSCRIBE_ERROR INVALID_RANGE (0x5)",
            describe(&e),
            "no SUBSCRIBE_ERROR for an invalid range",
        )
        .into()),
    }
}

/// `filter-type-unknown`: Filter Type 0x5.
pub async fn unknown_filter(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    let mut b = BytesMut::new();
    varint(&mut b, 0);
    let ns = env.namespace();
    let fields: Vec<&[u8]> = ns.fields().iter().map(|f| f.bytes().as_ref()).collect();
    tuple(&mut b, &fields);
    varint(&mut b, 1);
    b.extend_from_slice(b"t");
    b.extend_from_slice(&[128, 0, 1]);
    varint(&mut b, 0x5);
    varint(&mut b, 0);
    raw.send_bytes(frame(0x03, &b)).await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "SUBSCRIBE with Filter Type 0x5",
        )
        .await?)
}
