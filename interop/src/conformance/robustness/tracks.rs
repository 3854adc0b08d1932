//! Hostile publishers and subscribers of a track: a subscriber that never reads (§12.1), a
//! publisher that jumps to the largest Group ID (§2.3.1), a second session publishing a track
//! another already publishes (§8.2).

use super::{Bystander, Findings, T};
use crate::cases::Failure;
use crate::conformance::harness::{
    describe, describe_close, listing, subscribe, within, write_group, DirectSub, Endpoint,
    Publisher, SubOpts,
};
use crate::conformance::{refused, CheckOutput, Env, Verdict};
use bytes::Bytes;
use moqlink_model::control::{FetchEnd, FetchKind, Filter};
use moqlink_model::params::VersionParameters;
use moqlink_model::{GroupOrder, Location, SessionErrorCode};
use moqlink_transport::session::SessionError;
use moqlink_transport::track::{Object, SubgroupInfo, TrackConfig, TrackName, TrackProducer};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Groups the `stalled-subscriber` publisher writes, 25 ms apart.
const GROUPS: u64 = 80;
/// Objects per group and their size: 640 KB in all, 40 times the stalled window.
const OBJECTS: u64 = 4;
const SIZE: usize = 2048;
/// The stalled subscriber's connection-level receive window.
const STALL_WINDOW: u32 = 16 * 1024;
/// How late a group may reach the reading subscriber, and the share that must be on time.
const LAG: Duration = Duration::from_millis(1000);
const ON_TIME: f64 = 0.9;

/// `stalled-subscriber`: one subscriber with a 16 KiB connection window that never reads its
/// data streams, a second that reads; the publisher writes 80 groups of 8 KiB, 25 ms apart.
pub async fn stalled_subscriber(env: Env) -> CheckOutput {
    let mut f = Findings::default();
    let p = Publisher::start(&env, &["t", "control"]).await?;
    let client = env.ctx.client.with_receive_window(STALL_WINDOW);
    let stalled_ep = Endpoint::connect_via(
        &env,
        "stalled_subscriber_connection_id",
        &client,
        env.ctx.session.clone(),
    )
    .await?;
    let paused = SubOpts {
        paused: true,
        ..Default::default()
    };
    let stalled = subscribe(&env, &stalled_ep, &env.track("t"), paused).await?;
    let reader_ep = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let reader = Arc::new(subscribe(&env, &reader_ep, &env.track("t"), SubOpts::default()).await?);
    // A control track only the reading subscriber takes: how this relay ends an upstream
    // subscription when nobody stalls.
    let control = subscribe(&env, &reader_ep, &env.track("control"), SubOpts::default()).await?;
    p.upstream(&env, 2).await?;
    let watch = {
        let reader = reader.clone();
        tokio::spawn(async move {
            // The writing time, then 3 s more.
            let deadline = tokio::time::Instant::now()
                + Duration::from_millis(25 * GROUPS)
                + Duration::from_secs(3);
            let mut done = Vec::new();
            for g in 0..GROUPS {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let whole = |got: &[crate::conformance::harness::Got]| {
                    got.iter().filter(|o| o.group == g).count() as u64 >= OBJECTS
                };
                done.push(reader.wait(left, whole).await.then(Instant::now));
            }
            done
        })
    };
    env.step("80 groups written, 25 ms apart");
    let mut written = Vec::new();
    for g in 0..GROUPS {
        written.push(Instant::now());
        let mut sg = p.track().create_subgroup(SubgroupInfo::new(g, 0, 128));
        for o in 0..OBJECTS {
            let mut v = crate::conformance::harness::payload(&env, g, o).to_vec();
            v.resize(SIZE, b'.');
            let _ = sg.write(Object::new(o, Bytes::from(v)));
        }
        sg.finish();
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    env.step("every group at the reading subscriber");
    let done = watch
        .await
        .map_err(|e| Failure::new("the watcher", e.to_string(), "local task"))?;
    let lags: Vec<Option<Duration>> = done
        .iter()
        .zip(&written)
        .map(|(d, w)| d.map(|d| d.saturating_duration_since(*w)))
        .collect();
    let on_time = lags.iter().filter(|l| l.is_some_and(|l| l <= LAG)).count();
    let max_lag = lags.iter().flatten().max().copied().unwrap_or_default();
    let missing = lags.iter().filter(|l| l.is_none()).count();
    let got = format!(
        "{on_time} of {GROUPS} groups within {} ms of being written, {missing} never complete, \
         max lag {} ms; the stalled subscriber's connection took {} stream(s){}",
        LAG.as_millis(),
        max_lag.as_millis(),
        stalled.streams(),
        match stalled_ep.session.close_reason() {
            Some(c) => format!(", then it ended: {}", describe_close(&c)),
            None => String::new(),
        }
    );
    if (on_time as f64) < ON_TIME * GROUPS as f64 {
        f.warn(Failure::new(
            format!(
                "at least {:.0}% of the groups at the reading subscriber within {} ms",
                ON_TIME * 100.0,
                LAG.as_millis()
            ),
            got,
            "a subscriber that never reads slowed another subscriber of the same track",
        ));
    } else {
        f.note(got);
    }
    if let Some(c) = reader_ep.session.close_reason() {
        f.warn(Failure::new(
            "the reading subscriber's session open",
            describe_close(&c),
            "the relay closed the subscriber that kept up",
        ));
    }
    // The stalled subscriber's connection window is full of data it never reads; a request it
    // sends now is answered only if the relay keeps connection credit for the control stream
    // (§10.4.2). A relay that closed the stalled session instead is not judged here.
    if stalled_ep.session.close_reason().is_none() {
        env.step("the answer to the stalled subscriber's SUBSCRIBE");
        let track = env.track("control");
        let ask = DirectSub::subscribe(&stalled_ep.session, &track, SubOpts::default());
        match within(
            Duration::from_secs(5),
            "SUBSCRIBE_OK or SUBSCRIBE_ERROR",
            ask,
        )
        .await
        {
            Ok(_) => f.note("the stalled subscriber's next SUBSCRIBE was answered"),
            Err(e) => f.must(Failure::new(
                "an answer to the stalled subscriber's SUBSCRIBE",
                e.received,
                "with the subscriber's connection window full of unread data, the control \
                 stream still needs credit: the publisher MUST allocate connection flow control \
                 to the control stream first (§10.4.2)",
            )),
        }
    }
    // Everyone leaves, the stalled subscriber while its streams are still blocked: a relay
    // whose UNSUBSCRIBE waits for blocked streams keeps the track's upstream subscription.
    env.step("UNSUBSCRIBE from every subscriber, then the relay's UNSUBSCRIBE upstream");
    let _ = stalled.unsubscribe().await;
    let _ = reader.unsubscribe().await;
    let _ = control.unsubscribe().await;
    let ended = |track: &str| {
        let name = env.track(track);
        move |served: &[crate::conformance::harness::Served]| {
            served
                .iter()
                .filter(|x| x.subscribe.name == name.name)
                .all(|x| x.ended.is_some())
        }
    };
    let t_ended = p.ep.wait_served(T, ended("t")).await;
    let control_ended = p.ep.wait_served(Duration::ZERO, ended("control")).await;
    match (t_ended, control_ended) {
        (true, _) => f.note("both upstream subscriptions ended after the UNSUBSCRIBEs"),
        (false, true) => f.warn(Failure::new(
            "the upstream subscription of the stalled track ended, as the control track's did",
            format!(
                "still active {} ms after the last UNSUBSCRIBE",
                T.as_millis()
            ),
            "the stalled subscriber's UNSUBSCRIBE (sent while its streams were blocked) did \
             not release the track",
        )),
        (false, false) => f.note(
            "the relay kept both upstream subscriptions after the last UNSUBSCRIBE (not judged)",
        ),
    }
    f.verdict()
}

/// The largest Group ID a varint carries.
const MAX_GROUP: u64 = (1 << 62) - 1;

/// `max-group-id`: a publisher writes group 0, then objects 0, 1 and 2^62-1 of group 2^62-1;
/// later subscribers (Largest Object and Next Group Start) and a FETCH of that whole group,
/// from fresh sessions.
pub async fn max_group_id(env: Env) -> CheckOutput {
    let mut by = Bystander::start(&env).await?;
    let mut f = Findings::default();
    let ns = env.namespace_with(&["huge"]);
    let hp = Endpoint::connect(&env, "publisher_connection_id").await?;
    let name = TrackName {
        namespace: ns.clone(),
        name: moqlink_model::Blob::from("t"),
    };
    let track = TrackProducer::new(name.clone(), TrackConfig::default());
    hp.serve(&track);
    let _ns = hp.announce(&env, ns).await?;
    let s1 = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let sub1 = subscribe(&env, &s1, &name, SubOpts::default()).await?;
    if !hp.wait_served(T, |s| !s.is_empty()).await {
        return Err(Verdict::NotApplicable(
            "the relay did not subscribe upstream (baseline)".into(),
        ));
    }
    write_group(&env, &track, 0, 0..2).await;
    if !sub1.wait_count(2, T).await {
        return Err(Verdict::NotApplicable(format!(
            "the relay did not forward group 0 (baseline): {}",
            listing(&sub1.objects())
        )));
    }
    // A FETCH of group 0 first: whether this relay answers FETCH at all.
    let fe = Endpoint::connect(&env, "fetcher_connection_id").await?;
    let fetch_answered = fetch_group(&env, &fe, &name, 0).await;
    env.step("objects in group 2^62-1 at the first subscriber");
    // Objects 0, 1 and 2^62-1: the Largest Location's object ID is the largest a varint
    // carries, so "Largest plus one" (a Largest Object start, a FETCH_OK End Location) is not.
    let mut sg = track.create_subgroup(SubgroupInfo::new(MAX_GROUP, 0, 128));
    for o in [0, 1, MAX_GROUP] {
        let _ = sg.write(Object::new(o, body(&env, "P", MAX_GROUP, o)));
    }
    sg.finish();
    if sub1
        .wait(T, |g| g.iter().any(|o| o.group == MAX_GROUP))
        .await
    {
        f.note("group 2^62-1 forwarded to the first subscriber");
    } else {
        f.warn(Failure::new(
            "objects of group 4611686018427387903 at the first subscriber",
            listing(&sub1.objects()),
            "the relay did not forward an object with the largest Group ID",
        ));
    }
    let mut late = Vec::new();
    for (key, filter, label) in [
        (
            "late_subscriber_connection_id",
            Filter::LargestObject,
            "Largest Object",
        ),
        (
            "next_group_subscriber_connection_id",
            Filter::NextGroupStart,
            "Next Group Start",
        ),
    ] {
        let ep = Endpoint::connect(&env, key).await?;
        env.step(format!("SUBSCRIBE_OK for a {label} subscriber"));
        let r = within(
            T,
            "SUBSCRIBE_OK",
            DirectSub::subscribe(&ep.session, &name, SubOpts::filter(filter)),
        )
        .await;
        match r {
            Ok(Ok(sub)) => f.note(format!(
                "{label} SUBSCRIBE_OK with Largest {}",
                sub.largest().map_or("none".to_string(), |l| format!(
                    "{{{}, {}}}",
                    l.group, l.object
                ))
            )),
            Ok(Err(e)) => f.must(Failure::new(
                format!("SUBSCRIBE_OK for a {label} subscriber"),
                describe(&e),
                "after an object in group 2^62-1: a SUBSCRIBE for a track with an active \
                 upstream subscription MUST get SUBSCRIBE_OK (§8.4)",
            )),
            Err(fail) => f.warn(Failure {
                message: format!("the relay did not answer a {label} SUBSCRIBE"),
                ..fail
            }),
        }
        late.push((label, ep));
    }
    let r = fetch_group(&env, &fe, &name, MAX_GROUP).await;
    match (r, &fetch_answered) {
        (Ok(what), _) => f.note(format!("FETCH of group 2^62-1: {what}")),
        (Err(fail), Err(before)) => f.note(format!(
            "FETCH of group 2^62-1: {}, as for group 0 before it ({})",
            fail.received, before.received
        )),
        (Err(fail), Ok(_)) => f.warn(Failure {
            message: "the relay answered a FETCH of group 0 but not one of group 2^62-1".into(),
            ..fail
        }),
    }
    let mut sessions = vec![
        ("publisher", &hp),
        ("first subscriber", &s1),
        ("fetcher", &fe),
    ];
    sessions.extend(late.iter().map(|(l, ep)| (*l, ep)));
    for (role, ep) in sessions {
        match ep.session.close_reason() {
            None => {}
            // This side's own INTERNAL_ERROR: the suite's session failed (e.g. the publisher
            // could not encode a FETCH_OK the relay's upstream FETCH asked for), not the
            // relay's doing.
            Some(c) if !c.by_peer && c.code == SessionErrorCode::InternalError.code() => {
                f.note(format!(
                    "the suite's own {role} session failed locally, not the relay's doing: {}",
                    describe_close(&c)
                ))
            }
            Some(c) => f.warn(Failure::new(
                format!("the {role} session open"),
                describe_close(&c),
                format!("the {role} session of the track with group 2^62-1 ended"),
            )),
        }
    }
    by.after(&env, "an object in group 2^62-1", false, &mut f)
        .await;
    f.verdict()
}

/// FETCH of objects 0 and 1 of group `g` of `name` from `ep` (the whole group for group
/// 2^62-1): how it was answered (FETCH_OK or FETCH_ERROR), or the failure to answer.
async fn fetch_group(
    env: &Env,
    ep: &Endpoint,
    name: &TrackName,
    g: u64,
) -> Result<String, Failure> {
    env.step(format!("the answer to FETCH of group {g}"));
    let kind = FetchKind::Standalone {
        namespace: name.namespace.clone(),
        name: name.name.clone(),
        start: Location::new(g, 0),
        end: FetchEnd {
            group: g,
            object: if g == MAX_GROUP { None } else { Some(1) },
        },
    };
    let r = within(
        T,
        "FETCH_OK or FETCH_ERROR",
        ep.session
            .fetch(kind, 128, GroupOrder::Ascending, VersionParameters::new()),
    )
    .await?;
    match r {
        Ok(resp) => Ok(format!(
            "FETCH_OK (end group {})",
            resp.ok.end_location.group
        )),
        Err(e @ SessionError::Rejected { .. }) => Ok(describe(&e)),
        Err(e) => Err(Failure::new(
            "FETCH_OK or FETCH_ERROR",
            describe(&e),
            format!("the relay did not answer a FETCH of group {g}"),
        )),
    }
}

fn body(env: &Env, who: &str, g: u64, o: u64) -> Bytes {
    Bytes::from(format!("{} {} {who} g{g} o{o}", env.run, env.check))
}

fn write(env: &Env, track: &TrackProducer, who: &str, g: u64) {
    let mut sg = track.create_subgroup(SubgroupInfo::new(g, 0, 128));
    for o in 0..3 {
        let _ = sg.write(Object::new(o, body(env, who, g, o)));
    }
    sg.finish();
}

/// `duplicate-publish`: publisher A PUBLISHes track t and a subscriber gets group 0; publisher
/// B PUBLISHes t too and, if accepted, writes group 0 again with other payloads and group 1;
/// then A writes group 2.
pub async fn duplicate_publish(env: Env) -> CheckOutput {
    let mut f = Findings::default();
    let name = env.track("t");
    let a = Endpoint::connect(&env, "publisher_connection_id").await?;
    let ta = TrackProducer::new(name.clone(), TrackConfig::default());
    env.step("PUBLISH_OK for the first publisher");
    let pa = within(
        T,
        "PUBLISH_OK",
        a.session.publish(&ta, true, VersionParameters::new()),
    )
    .await
    .map_err(|x| {
        Verdict::NotApplicable(format!("the relay did not answer PUBLISH: {}", x.received))
    })?
    .map_err(|e| match refused(e, "PUBLISH_OK", "") {
        Verdict::Fail(x) => {
            Verdict::NotApplicable(format!("the relay refused PUBLISH: {}", x.received))
        }
        v => v,
    })?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let sub = subscribe(&env, &s, &name, SubOpts::default())
        .await
        .map_err(|v| match v {
            Verdict::Fail(x) => Verdict::NotApplicable(format!(
                "a SUBSCRIBE to the PUBLISHed track was refused: {}",
                x.received
            )),
            v => v,
        })?;
    write(&env, &ta, "A", 0);
    if !sub.wait_count(3, T).await {
        return Err(Verdict::NotApplicable(format!(
            "the relay did not forward the PUBLISHed track's group 0 (baseline): {}",
            listing(&sub.objects())
        )));
    }
    let b = Endpoint::connect(&env, "second_publisher_connection_id").await?;
    let tb = TrackProducer::new(name.clone(), TrackConfig::default());
    env.step("the answer to the second PUBLISH of the track");
    let second = within(
        T,
        "PUBLISH_OK or PUBLISH_ERROR",
        b.session.publish(&tb, true, VersionParameters::new()),
    )
    .await;
    let accepted = match second {
        Ok(Ok(p)) => {
            f.note("the second PUBLISH was accepted");
            Some(p)
        }
        Ok(Err(e)) => {
            f.note(format!("the second PUBLISH was refused: {}", describe(&e)));
            None
        }
        Err(fail) => {
            f.warn(Failure {
                message: "the relay did not answer the second PUBLISH".into(),
                ..fail
            });
            None
        }
    };
    if accepted.is_some() {
        write(&env, &tb, "B", 0);
        write(&env, &tb, "B", 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    write(&env, &ta, "A", 2);
    env.step("group 2 from the first publisher");
    let a_later = |got: &[crate::conformance::harness::Got]| {
        (0..3).all(|o| {
            got.iter()
                .any(|x| x.group == 2 && x.id == o && x.payload == body(&env, "A", 2, o))
        })
    };
    let arrived = sub.wait(T, a_later).await;
    sub.settle(Duration::from_millis(300), T).await;
    let got = sub.objects();
    let a_told = match tokio::time::timeout(Duration::from_millis(50), pa.done()).await {
        Ok(d) => Some(format!("PUBLISH_DONE {d:?}")),
        Err(_) => a.session.close_reason().map(|c| describe_close(&c)),
    };
    if !arrived {
        let fail = Failure::new(
            "objects 2.0-2.2 from the first publisher at the subscriber",
            listing(&got),
            "",
        );
        match a_told {
            Some(how) => f.warn(Failure {
                message: format!(
                    "the relay dropped the first publisher for the second and told it ({how}); \
                     §8.2 allows choosing which publisher to disconnect, but any session can \
                     take a published track over"
                ),
                ..fail
            }),
            None => f.must(Failure {
                message: "the second PUBLISH silently cut the first publisher off: Relays MUST \
                          handle Objects for the same Track from multiple publishers and \
                          forward them (§8.2)"
                    .into(),
                ..fail
            }),
        }
    }
    let overwritten: Vec<String> = got
        .iter()
        .filter(|x| x.group == 0 && x.payload.windows(3).any(|w| w == b" B "))
        .map(|x| format!("{}.{}", x.group, x.id))
        .collect();
    if !overwritten.is_empty() {
        f.warn(Failure::new(
            "group 0 once, from the first publisher",
            format!(
                "the second publisher's objects {} were forwarded again",
                overwritten.join(" ")
            ),
            "the relay SHOULD deduplicate objects of one track from several publishers (§8.2)",
        ));
    }
    if accepted.is_some() && !got.iter().any(|x| x.group == 1) {
        f.must(Failure::new(
            "group 1 from the accepted second publisher",
            listing(&got),
            "Relays MUST handle Objects for the same Track from multiple publishers and forward \
             them (§8.2)",
        ));
    }
    f.verdict()
}
