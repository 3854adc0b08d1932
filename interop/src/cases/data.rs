//! The data-plane cases: `data-subgroup-basic`, `fetch` and `join`, each comparing what the
//! relay delivered object by object.

use super::control::{announce_ns, close_both, unrouted};
use super::{
    connection_id, describe_error, publish_done_name, run_track, within, CaseOutput, Ctx, Failure,
    Peer, Record,
};
use bytes::Bytes;
use moqlink_model::codes::PublishDoneCode;
use moqlink_model::control::{FetchEnd, FetchKind, PublishDone};
use moqlink_model::data::ObjectStatus;
use moqlink_model::params::VersionParameters;
use moqlink_model::{GroupOrder, Location};
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::session::{FetchResponse, SubscribeOptions, Subscription};
use moqlink_transport::track::{
    Object, SubgroupInfo, TrackConfig, TrackConsumer, TrackEnd, TrackItem, TrackName, TrackProducer,
};
use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;
use tokio::sync::mpsc;

/// Groups and objects per group every data-plane case writes.
const GROUPS: u64 = 3;
const OBJECTS: u64 = 5;
/// Publisher priority of every subgroup.
const PRIORITY: u8 = 128;
/// The pause between objects (the data-plane cases' default pacing).
const PACING: Duration = Duration::from_millis(2);
/// PUBLISH_DONE Stream Count meaning "unknown".
const UNKNOWN_STREAM_COUNT: u64 = (1 << 62) - 1;

/// One object as a subscriber or fetcher received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    /// Group ID.
    pub group: u64,
    /// Subgroup ID (None for datagrams).
    pub subgroup: Option<u64>,
    /// Publisher priority.
    pub priority: u8,
    /// Object ID.
    pub id: u64,
    /// Object status.
    pub status: ObjectStatus,
    /// Payload.
    pub payload: Bytes,
}

impl fmt::Display for Got {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = String::from_utf8_lossy(&self.payload[..self.payload.len().min(40)]);
        write!(
            f,
            "object {}.{} (subgroup {}, priority {}, {:?}, {} bytes {:?})",
            self.group,
            self.id,
            self.subgroup
                .map_or("datagram".to_string(), |s| s.to_string()),
            self.priority,
            self.status,
            self.payload.len(),
            text
        )
    }
}

/// Reads every object of `consumer` into a channel, subgroups concurrently; the channel closes
/// once the track has ended and every subgroup was read.
pub fn collect(mut consumer: TrackConsumer) -> mpsc::UnboundedReceiver<Got> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(item) = consumer.next().await {
            match item {
                TrackItem::Subgroup(mut sc) => {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let info = sc.info();
                        while let Ok(o) = sc.next().await {
                            let got = Got {
                                group: info.group,
                                subgroup: Some(info.subgroup),
                                priority: info.priority,
                                id: o.id,
                                status: o.status,
                                payload: o.payload,
                            };
                            if tx.send(got).is_err() {
                                return;
                            }
                        }
                    });
                }
                TrackItem::Datagram {
                    group,
                    priority,
                    object,
                } => {
                    let got = Got {
                        group,
                        subgroup: None,
                        priority,
                        id: object.id,
                        status: object.status,
                        payload: object.payload,
                    };
                    if tx.send(got).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// The payload of object `id` in `data-subgroup-basic`: `t` repeated, 64 bytes for object 0 and
/// 32 for the others.
fn basic_payload(_group: u64, id: u64) -> Bytes {
    Bytes::from(vec![b't'; if id == 0 { 64 } else { 32 }])
}

/// A run-unique payload for `fetch` and `join`, so a relay's stale cache cannot satisfy them.
fn unique_payload(run: &str, group: u64, id: u64) -> Bytes {
    Bytes::from(format!("{run} g{group} o{id}"))
}

/// Writes groups `groups`, `OBJECTS` objects each, one subgroup (ID 0) per group, with
/// `pause` between objects.
async fn write_groups(
    track: &TrackProducer,
    groups: std::ops::Range<u64>,
    payload: &(dyn Fn(u64, u64) -> Bytes + Sync),
    pause: Duration,
) -> Result<(), Failure> {
    for g in groups {
        let mut sg = track.create_subgroup(SubgroupInfo::new(g, 0, PRIORITY));
        for o in 0..OBJECTS {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            sg.write(Object::new(o, payload(g, o))).map_err(|e| {
                Failure::new("objects written", e.to_string(), "local track refused")
            })?;
        }
        sg.finish();
    }
    Ok(())
}

/// Compares received objects with the expected set `want` ((group, object) → payload):
/// duplicates, unexpected, wrong subgroup / priority / payload, then missing ones.
fn problems(
    got: &[Got],
    want: &[(u64, u64)],
    payload: &dyn Fn(u64, u64) -> Bytes,
    check_priority: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for o in got.iter().filter(|o| o.status == ObjectStatus::Normal) {
        let loc = (o.group, o.id);
        if !seen.insert(loc) {
            out.push(format!("duplicate object {}.{}", o.group, o.id));
            continue;
        }
        if !want.contains(&loc) {
            out.push(format!("unexpected {o}"));
            continue;
        }
        if o.subgroup != Some(0) {
            out.push(format!("{o}: expected subgroup 0"));
        }
        if check_priority && o.priority != PRIORITY {
            out.push(format!("{o}: expected priority {PRIORITY}"));
        }
        let expected = payload(o.group, o.id);
        if o.payload != expected {
            out.push(format!(
                "{o}: expected {} bytes {:?}",
                expected.len(),
                String::from_utf8_lossy(&expected[..expected.len().min(40)])
            ));
        }
    }
    for (g, o) in want {
        if !seen.contains(&(*g, *o)) {
            out.push(format!("missing object {g}.{o}"));
        }
    }
    out
}

/// Fails with the first problem, counting the rest.
fn verdict(problems: &[String], expected: &str, summary: &str) -> Result<(), Failure> {
    match problems.first() {
        None => Ok(()),
        Some(first) => Err(Failure::new(
            expected,
            format!("{first} ({} problem(s)); {summary}", problems.len()),
            "the relay did not deliver the expected objects",
        )),
    }
}

fn all_objects(groups: std::ops::Range<u64>) -> Vec<(u64, u64)> {
    groups
        .flat_map(|g| (0..OBJECTS).map(move |o| (g, o)))
        .collect()
}

/// A publisher (announced, serving `test-track`) and a subscriber subscribed to it, with the
/// relay's upstream SUBSCRIBE answered.
struct Pair {
    publisher: Peer,
    track: TrackProducer,
    subscriber: Peer,
    sub: Subscription<AnyConnection>,
    _ns: moqlink_transport::session::NamespacePublication<AnyConnection>,
}

async fn pair(ctx: &Ctx, record: &Record, name: &TrackName) -> Result<Pair, Failure> {
    let publisher = Peer::connect(ctx, record, "publisher_connection_id").await?;
    let track = TrackProducer::new(name.clone(), TrackConfig::default());
    publisher.serve(&track);
    let ns = announce_ns(&publisher, record, name.namespace.clone()).await?;
    let subscriber = Peer::connect(ctx, record, "subscriber_connection_id").await?;
    record.step("SUBSCRIBE_OK for the subscriber");
    let opts = SubscribeOptions {
        group_order: GroupOrder::Ascending,
        ..Default::default()
    };
    let answer = within(
        Duration::from_secs(5),
        "SUBSCRIBE_OK",
        subscriber.session.subscribe(name.clone(), opts),
    )
    .await?;
    let sub = answer.map_err(|e| {
        Failure::new(
            "SUBSCRIBE_OK",
            format!(
                "{}; publisher received: {}",
                describe_error(&e),
                publisher.seen()
            ),
            unrouted(&e, &publisher.seen(), name),
        )
    })?;
    record.step("the relay's upstream SUBSCRIBE at the publisher");
    within(
        Duration::from_secs(2),
        "the relay's SUBSCRIBE at the publisher",
        publisher.wait_served(1),
    )
    .await
    .map_err(|f| Failure {
        received: format!("publisher received: {}", publisher.seen()),
        ..f
    })?;
    Ok(Pair {
        publisher,
        track,
        subscriber,
        sub,
        _ns: ns,
    })
}

impl Pair {
    async fn close(self) -> Result<(), Failure> {
        let Pair {
            publisher,
            subscriber,
            sub,
            _ns,
            ..
        } = self;
        drop(sub);
        close_both(subscriber, publisher).await
    }
}

fn describe_done(d: &PublishDone) -> String {
    let count = if d.stream_count == UNKNOWN_STREAM_COUNT {
        "unknown".to_string()
    } else {
        d.stream_count.to_string()
    };
    format!(
        "PUBLISH_DONE status 0x{:x} ({}), stream count {count}",
        d.status_code,
        publish_done_name(d.status_code)
    )
}

/// `data-subgroup-basic`: 3 groups × 5 objects, one subgroup stream per group, PUBLISH_DONE
/// TRACK_ENDED; the subscriber must get exactly those objects and the PUBLISH_DONE.
pub async fn subgroup_basic(ctx: &Ctx, record: &Record) -> CaseOutput {
    let p = pair(ctx, record, &run_track("data-subgroup-basic")).await?;
    let mut objects = collect(p.sub.consumer());
    record.step("writing the objects");
    write_groups(&p.track, 0..GROUPS, &basic_payload, PACING).await?;
    p.track.finish(TrackEnd {
        status: PublishDoneCode::TrackEnded,
        reason: "track ended".into(),
    });
    // PUBLISH_DONE arrives; the subscription then drains the streams it counts.
    record.step("PUBLISH_DONE at the subscriber");
    let done = within(Duration::from_secs(8), "PUBLISH_DONE", p.sub.done()).await;
    record.step("the subscription to drain");
    let mut got = Vec::new();
    let drained = within(Duration::from_secs(4), "", async {
        while let Some(o) = objects.recv().await {
            got.push(o);
        }
    })
    .await
    .is_ok();
    for o in &got {
        tracing::debug!(%o, "received");
    }
    let streams: BTreeSet<(u64, Option<u64>)> = got.iter().map(|o| (o.group, o.subgroup)).collect();
    let mut problems = Vec::new();
    let done_text = match (&done, p.subscriber.session.close_reason()) {
        (_, Some(c)) => {
            problems.push(format!("subscriber session ended: {c}"));
            "none".to_string()
        }
        // With the session open, done() only resolves early on a real PUBLISH_DONE.
        (Ok(Some(d)), None) => {
            if d.status_code != PublishDoneCode::TrackEnded.code() {
                problems.push(format!(
                    "downstream PUBLISH_DONE status 0x{:x} ({}), expected TRACK_ENDED (0x2)",
                    d.status_code,
                    publish_done_name(d.status_code)
                ));
            }
            let arrived = streams.len() as u64;
            if d.stream_count != UNKNOWN_STREAM_COUNT && arrived > d.stream_count {
                // §9.12: a subscriber may drop the subscription once Stream Count streams
                // arrived, so an undercount loses data.
                problems.push(format!(
                    "downstream PUBLISH_DONE Stream Count {} but {arrived} streams carried \
                     objects",
                    d.stream_count
                ));
            }
            describe_done(d)
        }
        _ => {
            problems.push("no downstream PUBLISH_DONE".into());
            "none".to_string()
        }
    };
    if !drained {
        problems.push("the subscription did not drain within 4 s after PUBLISH_DONE".into());
    }
    let payload = |g, o| basic_payload(g, o);
    problems.extend(self::problems(
        &got,
        &all_objects(0..GROUPS),
        &payload,
        true,
    ));
    let normal = got
        .iter()
        .filter(|o| o.status == ObjectStatus::Normal)
        .count();
    let status: Vec<String> = got
        .iter()
        .filter(|o| o.status != ObjectStatus::Normal)
        .map(|o| format!("{:?} {}.{}", o.status, o.group, o.id))
        .collect();
    let status = if status.is_empty() {
        String::new()
    } else {
        format!(" and status objects {}", status.join(", "))
    };
    let summary = format!(
        "{normal} objects{status} on {} streams; upstream PUBLISH_DONE TRACK_ENDED with stream \
         count {GROUPS}; downstream {done_text}",
        streams.len()
    );
    verdict(
        &problems,
        "15 objects (groups 0-2, objects 0-4, subgroup 0, priority 128) and PUBLISH_DONE TRACK_ENDED",
        &summary,
    )?;
    record.step("a clean close");
    p.close().await?;
    Ok(summary)
}

/// Writes groups 0-2 at the publisher and waits until the subscriber got all 15 objects, so the
/// relay has forwarded them.
async fn forward_history(p: &Pair, record: &Record, run: &str) -> Result<(), Failure> {
    let mut objects = collect(p.sub.consumer());
    record.step("writing groups 0-2");
    let payload = |g, o| unique_payload(run, g, o);
    write_groups(&p.track, 0..GROUPS, &payload, PACING).await?;
    record.step("groups 0-2 at the live subscriber");
    let mut got = Vec::new();
    let want = all_objects(0..GROUPS);
    let complete = within(Duration::from_secs(5), "", async {
        while let Some(o) = objects.recv().await {
            got.push(o);
            if got.len() >= want.len() {
                break;
            }
        }
    })
    .await
    .is_ok();
    let problems = problems(&got, &want, &payload, false);
    if !complete || !problems.is_empty() {
        let first = problems.first().cloned().unwrap_or_default();
        return Err(Failure::new(
            "groups 0-2 forwarded to the live subscriber before the FETCH",
            format!("{} objects; {first}", got.len()),
            "the relay did not forward the live groups",
        ));
    }
    Ok(())
}

/// Reads a fetch response to its end (at most 5 s).
async fn read_fetch(f: &mut FetchResponse<AnyConnection>) -> Result<Vec<Got>, Failure> {
    let mut got = Vec::new();
    let read = within(
        Duration::from_secs(5),
        "the end of the fetch stream",
        async {
            loop {
                match f.next().await {
                    Ok(Some(o)) => got.push(Got {
                        group: o.group_id,
                        subgroup: Some(o.subgroup_id),
                        priority: o.publisher_priority,
                        id: o.object_id,
                        status: o.status,
                        payload: o.payload.0,
                    }),
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        },
    )
    .await;
    match read {
        Ok(Ok(())) => Ok(got),
        Ok(Err(e)) => Err(Failure::new(
            "the fetch stream's objects and FIN",
            format!("{e} after {} objects", got.len()),
            "the fetch stream did not complete",
        )),
        Err(f) => Err(Failure {
            received: format!("{} after {} objects", f.received, got.len()),
            ..f
        }),
    }
}

/// FETCH_OK's End Location as it was on the wire (object plus 1, 0 = the whole group).
fn end_text(e: &FetchEnd) -> String {
    format!("{{{}, {}}}", e.group, e.object.map_or(0, |o| o + 1))
}

/// `fetch`: after the relay forwarded groups 0-2 live, a standalone FETCH of group 1 must return
/// exactly its five objects.
pub async fn fetch(ctx: &Ctx, record: &Record) -> CaseOutput {
    let run = connection_id()[..8].to_string();
    let name = run_track("fetch");
    let p = pair(ctx, record, &name).await?;
    forward_history(&p, record, &run).await?;
    record.step("FETCH_OK");
    let kind = FetchKind::Standalone {
        namespace: name.namespace.clone(),
        name: name.name.clone(),
        start: Location::new(1, 0),
        end: FetchEnd {
            group: 1,
            object: None,
        },
    };
    let answer = within(
        Duration::from_secs(3),
        "FETCH_OK",
        p.subscriber
            .session
            .fetch(kind, 128, GroupOrder::Ascending, VersionParameters::new()),
    )
    .await?;
    let mut f = answer.map_err(|e| {
        Failure::new(
            "FETCH_OK for group 1",
            describe_error(&e),
            "the relay refused a FETCH of a group it already forwarded",
        )
    })?;
    record.step("the fetched objects");
    let got = read_fetch(&mut f).await?;
    let payload = |g, o| unique_payload(&run, g, o);
    let problems = problems(&got, &all_objects(1..2), &payload, true);
    let summary = format!(
        "FETCH_OK End Location {} (draft-14 §9.17 gives {{1, 0}} for all of group 1); {} objects \
         fetched",
        end_text(&f.ok.end_location),
        got.len()
    );
    verdict(
        &problems,
        "group 1, objects 0-4, with their payloads",
        &summary,
    )?;
    record.step("a clean close");
    p.close().await?;
    Ok(summary)
}

/// `join`: after the relay forwarded groups 0-2, a new subscriber's SUBSCRIBE (Largest Object)
/// plus relative joining FETCH one group back returns groups 1-2, and later objects arrive live.
pub async fn join(ctx: &Ctx, record: &Record) -> CaseOutput {
    let run = connection_id()[..8].to_string();
    let name = run_track("join");
    let p = pair(ctx, record, &name).await?;
    forward_history(&p, record, &run).await?;
    let c = Peer::connect(ctx, record, "joiner_connection_id").await?;
    record.step("SUBSCRIBE_OK for the joiner");
    let answer = within(
        Duration::from_secs(3),
        "SUBSCRIBE_OK",
        c.session
            .subscribe(name.clone(), SubscribeOptions::default()),
    )
    .await?;
    let sub = answer.map_err(|e| {
        Failure::new(
            "SUBSCRIBE_OK for the joiner",
            describe_error(&e),
            "the relay refused a second subscriber",
        )
    })?;
    let want_largest = Location::new(GROUPS - 1, OBJECTS - 1);
    if sub.largest() != Some(want_largest) {
        return Err(Failure::new(
            format!("SUBSCRIBE_OK with Largest Location {want_largest}"),
            match sub.largest() {
                Some(l) => format!("SUBSCRIBE_OK with Largest Location {l}"),
                None => "SUBSCRIBE_OK without a Largest Location (Content Exists 0)".into(),
            },
            "the relay did not report the largest object it had forwarded, so a joining FETCH \
             has nothing to join",
        ));
    }
    let mut live = collect(sub.consumer());
    record.step("FETCH_OK for the joining FETCH");
    let kind = FetchKind::RelativeJoining {
        joining_request_id: sub.request_id(),
        joining_start: 1,
    };
    let answer = within(
        Duration::from_secs(3),
        "FETCH_OK",
        c.session
            .fetch(kind, 128, GroupOrder::Ascending, VersionParameters::new()),
    )
    .await?;
    let mut f = answer.map_err(|e| {
        Failure::new(
            "FETCH_OK for a relative joining FETCH (1 group back)",
            describe_error(&e),
            "the relay refused the joining FETCH",
        )
    })?;
    record.step("the joining FETCH's objects");
    let got = read_fetch(&mut f).await?;
    let payload = |g, o| unique_payload(&run, g, o);
    let mut problems = problems(&got, &all_objects(1..GROUPS), &payload, true);
    // Objects written after the join must reach the joiner live.
    record.step("group 3 at the joiner");
    write_groups(&p.track, GROUPS..GROUPS + 1, &payload, PACING).await?;
    let first_live = within(Duration::from_secs(3), "", live.recv()).await;
    match first_live {
        Ok(Some(o)) if o.group == GROUPS && o.id == 0 && o.payload == payload(GROUPS, 0) => {}
        Ok(Some(o)) => problems.push(format!("live {o}, expected object {GROUPS}.0")),
        _ => problems.push(format!(
            "object {GROUPS}.0, written after the join, did not reach the joiner"
        )),
    }
    let summary = format!(
        "SUBSCRIBE_OK Largest Location {want_largest}; FETCH_OK End Location {}; {} objects \
         fetched; object {GROUPS}.0 written after the join",
        end_text(&f.ok.end_location),
        got.len()
    );
    verdict(
        &problems,
        "groups 1-2 (objects 0-4) from the joining FETCH, then group 3 live",
        &summary,
    )?;
    record.step("a clean close");
    drop(sub);
    let (rc, rp) = tokio::join!(c.close(), p.close());
    rc.and(rp)?;
    Ok(summary)
}
