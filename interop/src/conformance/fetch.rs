//! FETCH checks: standalone ranges and order (§9.16.1, §9.16.3), FETCH_OK's End Location
//! (§9.17), FETCH_ERROR codes (§9.18), both joining kinds (§9.16.2) and FETCH_CANCEL (§9.19).

use super::harness::{
    describe, listing, payload, subscribe, within, write_group, DirectSub, Endpoint, Publisher,
    SubOpts,
};
use super::{refused, CheckOutput, Env, Verdict};
use crate::cases::{request_error_name, Failure};
use bytes::Bytes;
use moqlink_model::codes::FetchErrorCode;
use moqlink_model::control::*;
use moqlink_model::data::{Extensions, FetchObject, ObjectStatus};
use moqlink_model::params::{KeyValuePair, VersionParameters};
use moqlink_model::{GroupOrder, Location, SessionErrorCode};
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::session::{FetchResponse, FetchStreamError, SessionError};
use moqlink_transport::track::{Object, SubgroupInfo};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

/// A publisher whose groups `groups` (objects 0-4 each) a watcher received through the relay,
/// and a fetcher connection.
async fn history(
    env: &Env,
    groups: std::ops::Range<u64>,
) -> Result<(Publisher, Endpoint, DirectSub, Endpoint), Verdict> {
    let p = Publisher::start(env, &["t"]).await?;
    let w = Endpoint::connect(env, "watcher_connection_id").await?;
    let wsub = subscribe(env, &w, &env.track("t"), SubOpts::default()).await?;
    p.upstream(env, 1).await?;
    let n = groups.clone().count() * 5;
    for g in groups {
        write_group(env, p.track(), g, 0..5).await;
    }
    env.step("the history at the watcher");
    if !wsub.wait_count(n, T).await {
        return Err(Failure::new(
            format!("{n} objects relayed before the FETCH"),
            listing(&wsub.objects()),
            "the relay did not forward the objects this check fetches",
        )
        .into());
    }
    let f = Endpoint::connect(env, "fetcher_connection_id").await?;
    Ok((p, w, wsub, f))
}

pub(super) fn standalone(env: &Env, start: Location, end: FetchEnd) -> FetchKind {
    let t = env.track("t");
    FetchKind::Standalone {
        namespace: t.namespace,
        name: t.name,
        start,
        end,
    }
}

/// Sends FETCH and waits for the answer.
async fn fetch(
    env: &Env,
    ep: &Endpoint,
    kind: FetchKind,
    order: GroupOrder,
) -> Result<Result<FetchResponse<AnyConnection>, SessionError>, Failure> {
    env.step("FETCH_OK");
    within(
        T,
        "FETCH_OK or FETCH_ERROR",
        ep.session.fetch(kind, 128, order, VersionParameters::new()),
    )
    .await
}

/// Sends FETCH and requires FETCH_OK.
pub(super) async fn fetch_ok(
    env: &Env,
    ep: &Endpoint,
    kind: FetchKind,
    order: GroupOrder,
    what: &str,
) -> Result<FetchResponse<AnyConnection>, Verdict> {
    fetch(env, ep, kind, order).await?.map_err(|e| {
        refused(
            e,
            &format!("FETCH_OK for {what}"),
            "the relay refused the FETCH",
        )
    })
}

/// A new fetcher connection's standalone FETCH of all of group 0 (ascending), read to its end.
pub(super) async fn fetch_group_0(env: &Env) -> Result<Vec<FetchObject>, Verdict> {
    let f = Endpoint::connect(env, "fetcher_connection_id").await?;
    let end = FetchEnd {
        group: 0,
        object: None,
    };
    let mut r = fetch_ok(
        env,
        &f,
        standalone(env, Location::new(0, 0), end),
        GroupOrder::Ascending,
        "group 0",
    )
    .await?;
    Ok(read_all(env, &mut r).await?)
}

/// Reads a fetch stream to its end.
pub(super) async fn read_all(
    env: &Env,
    f: &mut FetchResponse<AnyConnection>,
) -> Result<Vec<FetchObject>, Failure> {
    env.step("the fetched objects");
    let mut got = Vec::new();
    let end = within(
        Duration::from_secs(4),
        "the end of the fetch stream",
        async {
            loop {
                match f.next().await {
                    Ok(Some(o)) => got.push(o),
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        },
    )
    .await;
    match end {
        Ok(Ok(())) => Ok(got),
        Ok(Err(e)) => Err(Failure::new(
            "the fetch stream ending with FIN",
            format!("{e} after {} objects", got.len()),
            "the fetch did not complete",
        )),
        Err(f) => Err(Failure {
            received: format!("{} after {} objects", f.received, got.len()),
            ..f
        }),
    }
}

pub(super) fn fetched(objs: &[FetchObject]) -> String {
    if objs.is_empty() {
        return "no objects".into();
    }
    let v: Vec<String> = objs
        .iter()
        .map(|o| format!("{}.{}", o.group_id, o.object_id))
        .collect();
    format!("objects {}", v.join(" "))
}

/// Requires exactly `want`, in that order, with the published payloads.
fn in_order(
    env: &Env,
    objs: &[FetchObject],
    want: &[(u64, u64)],
    what: &str,
) -> Result<(), Failure> {
    let got: Vec<(u64, u64)> = objs.iter().map(|o| (o.group_id, o.object_id)).collect();
    if got != want {
        let w: Vec<String> = want.iter().map(|(g, o)| format!("{g}.{o}")).collect();
        return Err(Failure::new(
            format!("objects {} in this order", w.join(" ")),
            fetched(objs),
            format!("the FETCH did not return {what}"),
        ));
    }
    if let Some(o) = objs
        .iter()
        .find(|o| o.payload.bytes() != &payload(env, o.group_id, o.object_id))
    {
        return Err(Failure::new(
            "the published payloads",
            format!(
                "object {}.{} with a different payload",
                o.group_id, o.object_id
            ),
            "a relay treats payloads as opaque (§8.5)",
        ));
    }
    Ok(())
}

/// The wire form of an End Location: `{g, o+1}`, `{g, 0}` for a whole group.
fn wire(e: &FetchEnd) -> String {
    format!("{{{}, {}}}", e.group, e.object.map_or(0, |o| o + 1))
}

/// `fetch-standalone-range`: {1, 2} to {2, 2} inclusive.
pub async fn standalone_range(env: Env) -> CheckOutput {
    let (_p, _w, _ws, f) = history(&env, 0..4).await?;
    let end = FetchEnd {
        group: 2,
        object: Some(2),
    };
    let mut r = fetch_ok(
        &env,
        &f,
        standalone(&env, Location::new(1, 2), end),
        GroupOrder::Ascending,
        "{1,2}..{2,3}",
    )
    .await?;
    let objs = read_all(&env, &mut r).await?;
    let want = [(1, 2), (1, 3), (1, 4), (2, 0), (2, 1), (2, 2)];
    in_order(
        &env,
        &objs,
        &want,
        "the requested range in ascending order (§9.16.3)",
    )?;
    Ok(format!(
        "{}; FETCH_OK End Location {}",
        fetched(&objs),
        wire(&r.ok.end_location)
    ))
}

/// `fetch-descending`: groups 1-3, descending.
pub async fn descending(env: Env) -> CheckOutput {
    let (_p, _w, _ws, f) = history(&env, 0..4).await?;
    let end = FetchEnd {
        group: 3,
        object: None,
    };
    let mut r = fetch_ok(
        &env,
        &f,
        standalone(&env, Location::new(1, 0), end),
        GroupOrder::Descending,
        "groups 1-3",
    )
    .await?;
    let objs = read_all(&env, &mut r).await?;
    if r.ok.group_order != GroupOrder::Descending {
        return Err(Failure::new(
            "FETCH_OK Group Order Descending (0x2)",
            format!("FETCH_OK Group Order {:?}", r.ok.group_order),
            "the publisher delivers in the requested group order (§9.16.3)",
        )
        .into());
    }
    let want: Vec<(u64, u64)> = [3, 2, 1]
        .iter()
        .flat_map(|g| (0..5).map(move |o| (*g, o)))
        .collect();
    in_order(
        &env,
        &objs,
        &want,
        "groups newest first, objects within a group in ID order (§9.16.3)",
    )?;
    Ok(fetched(&objs))
}

fn ext(pairs: &[KeyValuePair]) -> Extensions {
    Extensions::from_pairs(pairs).unwrap_or_default()
}

/// `fetch-object-properties`: subgroups, priorities, extensions and an END_OF_GROUP status.
pub async fn object_properties(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    let w = Endpoint::connect(&env, "watcher_connection_id").await?;
    let wsub = subscribe(&env, &w, &env.track("t"), SubOpts::default()).await?;
    p.upstream(&env, 1).await?;
    let e1 = ext(&[
        KeyValuePair::varint(0x40, 7),
        KeyValuePair::bytes(0x41, "first"),
    ]);
    let e2 = ext(&[KeyValuePair::bytes(0x43, "second")]);
    let obj = |id: u64, e: &Extensions| Object {
        extensions: e.clone(),
        ..Object::new(id, payload(&env, 0, id))
    };
    let mut a = p.track().create_subgroup(SubgroupInfo::new(0, 2, 7));
    let mut b = p.track().create_subgroup(SubgroupInfo::new(0, 5, 200));
    let _ = a.write(obj(0, &e1));
    let _ = b.write(obj(1, &Extensions::empty()));
    let _ = a.write(obj(2, &e2));
    let _ = b.write(obj(3, &Extensions::empty()));
    let _ = b.write(Object::status(4, ObjectStatus::EndOfGroup));
    a.finish();
    b.finish();
    write_group(&env, p.track(), 1, 0..1).await;
    env.step("the objects at the watcher");
    wsub.wait_count(6, T).await;
    let objs = fetch_group_0(&env).await?;
    // (id, subgroup, priority, extensions)
    let want: [(u64, u64, u8, &Extensions); 4] = [
        (0, 2, 7, &e1),
        (1, 5, 200, &Extensions::empty()),
        (2, 2, 7, &e2),
        (3, 5, 200, &Extensions::empty()),
    ];
    let empty = Extensions::empty();
    let _ = &empty;
    let mut issues = Vec::new();
    for (id, sg, prio, e) in want {
        match objs.iter().find(|o| o.group_id == 0 && o.object_id == id) {
            None => issues.push(format!("object 0.{id} missing")),
            Some(o) => {
                if o.subgroup_id != sg {
                    issues.push(format!(
                        "object 0.{id} Subgroup ID {} (published {sg})",
                        o.subgroup_id
                    ));
                }
                if o.publisher_priority != prio {
                    issues.push(format!(
                        "object 0.{id} Publisher Priority {} (published {prio})",
                        o.publisher_priority
                    ));
                }
                if o.extensions.raw() != e.raw() {
                    issues.push(format!(
                        "object 0.{id} extensions {} (published {})",
                        super::harness::hex(o.extensions.raw()),
                        super::harness::hex(e.raw())
                    ));
                }
                if o.payload.bytes() != &payload(&env, 0, id) {
                    issues.push(format!("object 0.{id} payload differs"));
                }
            }
        }
    }
    if let Some(first) = issues.first() {
        return Err(Failure::new(
            "objects 0.0-0.3 with their Subgroup IDs (2, 5), priorities (7, 200) and extensions",
            format!(
                "{first} ({} problem(s)); fetched {}",
                issues.len(),
                fetched(&objs)
            ),
            "a cache MUST store all properties of an object (§8.1)",
        )
        .into());
    }
    let status = match objs.iter().find(|o| o.object_id == 4) {
        Some(o) if o.status == ObjectStatus::EndOfGroup => "END_OF_GROUP 0.4 fetched too",
        Some(_) => {
            return Err(Failure::new(
                "object 0.4 with status END_OF_GROUP",
                "object 0.4 with another status",
                "object status is an object property a cache keeps (§8.1, §10.2.1.1)",
            )
            .into())
        }
        None => "END_OF_GROUP 0.4 not returned (SHOULD be cached, §10.2.1.1)",
    };
    Ok(format!("{}; {status}", fetched(&objs)))
}

/// Checks FETCH_OK's End Location against `want`.
async fn end_location(
    env: Env,
    start: Location,
    end: FetchEnd,
    want: FetchEnd,
    rule: &str,
) -> CheckOutput {
    let (_p, _w, _ws, f) = history(&env, 0..4).await?;
    let mut r = fetch_ok(
        &env,
        &f,
        standalone(&env, start, end),
        GroupOrder::Ascending,
        &format!("{start}..{}", wire(&end)),
    )
    .await?;
    let objs = read_all(&env, &mut r).await?;
    let got = r.ok.end_location;
    if got != want {
        return Err(Failure::new(
            format!("FETCH_OK End Location {} (wire form)", wire(&want)),
            format!("FETCH_OK End Location {}", wire(&got)),
            rule,
        )
        .into());
    }
    Ok(format!(
        "FETCH {start}..{} gave FETCH_OK End Location {}; {}",
        wire(&end),
        wire(&got),
        fetched(&objs)
    ))
}

/// `fetch-ok-end-beyond-largest`.
pub async fn end_beyond_largest(env: Env) -> CheckOutput {
    end_location(
        env,
        Location::new(2, 0),
        FetchEnd { group: 9, object: None },
        FetchEnd { group: 3, object: Some(4) },
        "an End Location beyond the Largest Object gives {Largest.Group, Largest.Object + 1} (§9.17)",
    )
    .await
}

/// `fetch-ok-end-whole-group`.
pub async fn end_whole_group(env: Env) -> CheckOutput {
    end_location(
        env,
        Location::new(1, 0),
        FetchEnd {
            group: 1,
            object: None,
        },
        FetchEnd {
            group: 1,
            object: None,
        },
        "End Location.Object 0 covering the group's last object gives {group, 0} (§9.17)",
    )
    .await
}

/// `fetch-ok-end-exact`.
pub async fn end_exact(env: Env) -> CheckOutput {
    end_location(
        env,
        Location::new(1, 1),
        FetchEnd {
            group: 2,
            object: Some(2),
        },
        FetchEnd {
            group: 2,
            object: Some(2),
        },
        "otherwise End Location is the FETCH's End Location (§9.17)",
    )
    .await
}

/// Sends `kind` and requires FETCH_ERROR. `exact`: the draft requires `code` itself (a MUST);
/// otherwise another code is a missed SHOULD (§9.18: "SHOULD use a relevant error code"),
/// reported as [`Verdict::Should`].
async fn fetch_error(
    env: &Env,
    f: &Endpoint,
    kind: FetchKind,
    code: FetchErrorCode,
    exact: bool,
    rule: &str,
) -> CheckOutput {
    let name = request_error_name(MessageType::FetchError, code.code());
    let code = code.code();
    match fetch(env, f, kind, GroupOrder::Ascending).await? {
        Ok(r) => Err(Failure::new(
            format!("FETCH_ERROR {name} (0x{code:x})"),
            format!("FETCH_OK End Location {}", wire(&r.ok.end_location)),
            rule,
        )
        .into()),
        Err(SessionError::Rejected {
            code: c, reason, ..
        }) if c == code => Ok(format!("FETCH_ERROR {name} {reason:?}")),
        Err(SessionError::Rejected {
            code: super::NOT_SUPPORTED,
            reason,
            ..
        }) => Err(Verdict::Unsupported {
            what: "FETCH".into(),
            reason,
        }),
        Err(SessionError::Rejected {
            code: c, reason, ..
        }) if !exact => Err(Verdict::Should(Failure::new(
            format!("FETCH_ERROR {name} (0x{code:x})"),
            format!(
                "FETCH_ERROR 0x{c:x} ({}) {reason:?}",
                request_error_name(MessageType::FetchError, c)
            ),
            format!(
                "an error is what the draft requires; the application SHOULD use a relevant \
                 error code in FETCH_ERROR, here {name} (§9.18)"
            ),
        ))),
        Err(e) => Err(Failure::new(
            format!("FETCH_ERROR {name} (0x{code:x})"),
            describe(&e),
            rule,
        )
        .into()),
    }
}

/// `fetch-start-beyond-largest`.
pub async fn start_beyond_largest(env: Env) -> CheckOutput {
    let (_p, _w, _ws, f) = history(&env, 0..2).await?;
    let kind = standalone(
        &env,
        Location::new(7, 0),
        FetchEnd {
            group: 8,
            object: None,
        },
    );
    fetch_error(
        &env,
        &f,
        kind,
        FetchErrorCode::InvalidRange,
        true,
        "a Start Location beyond the Largest Object MUST get INVALID_RANGE (§9.16.3)",
    )
    .await
}

/// `fetch-end-before-start`.
pub async fn end_before_start(env: Env) -> CheckOutput {
    let (_p, _w, _ws, f) = history(&env, 0..3).await?;
    let kind = standalone(
        &env,
        Location::new(2, 3),
        FetchEnd {
            group: 1,
            object: None,
        },
    );
    fetch_error(
        &env,
        &f,
        kind,
        FetchErrorCode::InvalidRange,
        false,
        "a publisher MUST send exactly one FETCH_OK or FETCH_ERROR (§5.1); a FETCH_OK here \
         carries an End Location smaller than the Start Location (§9.17's rules give the \
         requested End), which §9.17 makes a PROTOCOL_VIOLATION",
    )
    .await
}

/// `fetch-unknown-track`.
pub async fn unknown_track(env: Env) -> CheckOutput {
    let f = Endpoint::connect(&env, "fetcher_connection_id").await?;
    let t = env.track("nobody-publishes-this");
    let kind = FetchKind::Standalone {
        namespace: t.namespace,
        name: t.name,
        start: Location::new(0, 0),
        end: FetchEnd {
            group: 1,
            object: None,
        },
    };
    fetch_error(
        &env,
        &f,
        kind,
        FetchErrorCode::TrackDoesNotExist,
        false,
        "a relay without the information for a FETCH_OK MUST withhold it (§8.3), and MUST send \
         exactly one FETCH_OK or FETCH_ERROR (§5.1): for a track nobody publishes, FETCH_ERROR",
    )
    .await
}

/// A relayed track with groups 0-1 complete and group 2 at objects 0-2 (still open), and a
/// joiner subscribed with Largest Object.
async fn joined(
    env: &Env,
) -> Result<
    (
        Publisher,
        DirectSub,
        Endpoint,
        DirectSub,
        moqlink_transport::track::SubgroupProducer,
        Endpoint,
    ),
    Verdict,
> {
    let p = Publisher::start(env, &["t"]).await?;
    let w = Endpoint::connect(env, "watcher_connection_id").await?;
    let wsub = subscribe(env, &w, &env.track("t"), SubOpts::default()).await?;
    p.upstream(env, 1).await?;
    write_group(env, p.track(), 0, 0..5).await;
    write_group(env, p.track(), 1, 0..5).await;
    let mut sg = p.track().create_subgroup(SubgroupInfo::new(2, 0, 128));
    for o in 0..3 {
        let _ = sg.write(Object::new(o, payload(env, 2, o)));
    }
    env.step("13 objects at the watcher");
    wsub.wait_count(13, T).await;
    let j = Endpoint::connect(env, "joiner_connection_id").await?;
    let sub = subscribe(env, &j, &env.track("t"), SubOpts::default()).await?;
    if sub.largest() != Some(Location::new(2, 2)) {
        return Err(Failure::new(
            "SUBSCRIBE_OK Largest {2, 2}",
            format!("SUBSCRIBE_OK Largest {:?}", sub.largest()),
            "the joining FETCH needs the subscription's Largest Location",
        )
        .into());
    }
    Ok((p, wsub, w, sub, sg, j))
}

async fn joining(
    env: Env,
    kind: impl Fn(u64) -> FetchKind,
    want: &[(u64, u64)],
    what: &str,
) -> CheckOutput {
    let (_p, _wsub, _w, sub, mut sg, j) = joined(&env).await?;
    let mut r = fetch_ok(
        &env,
        &j,
        kind(sub.request_id()),
        GroupOrder::Ascending,
        what,
    )
    .await?;
    let objs = read_all(&env, &mut r).await?;
    in_order(&env, &objs, want, &format!("{what} (§9.16.2.1)"))?;
    let _ = sg.write(Object::new(3, payload(&env, 2, 3)));
    sg.finish();
    env.step("object 2.3 live at the joiner");
    let live = sub
        .wait(T, |g| g.iter().any(|o| (o.group, o.id) == (2, 3)))
        .await;
    let dup = sub
        .objects()
        .iter()
        .any(|o| o.location() <= Location::new(2, 2));
    if !live || dup {
        return Err(Failure::new(
            "object 2.3 (and nothing up to 2.2) on the subscription",
            listing(&sub.objects()),
            "a joining FETCH and its subscription are contiguous and do not overlap (§9.16.2.1)",
        )
        .into());
    }
    Ok(format!(
        "{}; FETCH_OK End Location {}; 2.3 arrived live",
        fetched(&objs),
        wire(&r.ok.end_location)
    ))
}

/// `fetch-relative-joining`: Joining Start 0.
pub async fn relative_joining(env: Env) -> CheckOutput {
    joining(
        env,
        |id| FetchKind::RelativeJoining {
            joining_request_id: id,
            joining_start: 0,
        },
        &[(2, 0), (2, 1), (2, 2)],
        "the current group up to Largest 2.2",
    )
    .await
}

/// `fetch-absolute-joining`: Joining Start 1.
pub async fn absolute_joining(env: Env) -> CheckOutput {
    let mut want: Vec<(u64, u64)> = (0..5).map(|o| (1, o)).collect();
    want.extend([(2, 0), (2, 1), (2, 2)]);
    joining(
        env,
        |id| FetchKind::AbsoluteJoining {
            joining_request_id: id,
            joining_start: 1,
        },
        &want,
        "groups 1 to Largest 2.2",
    )
    .await
}

/// `fetch-joining-unknown-subscription`.
pub async fn joining_unknown(env: Env) -> CheckOutput {
    let f = Endpoint::connect(&env, "fetcher_connection_id").await?;
    let kind = FetchKind::RelativeJoining {
        joining_request_id: 98,
        joining_start: 0,
    };
    fetch_error(&env, &f, kind, FetchErrorCode::InvalidJoiningRequestId, true, "a Joining Request ID that is no subscription MUST get INVALID_JOINING_REQUEST_ID (§9.16.2)").await
}

/// `fetch-joining-not-largest-object`.
pub async fn joining_not_largest(env: Env) -> CheckOutput {
    let (p, _w, _ws, f) = history(&env, 0..2).await?;
    let _ = &p;
    let sub = subscribe(
        &env,
        &f,
        &env.track("t"),
        SubOpts::filter(Filter::NextGroupStart),
    )
    .await?;
    let kind = FetchKind::RelativeJoining {
        joining_request_id: sub.request_id(),
        joining_start: 0,
    };
    let session = f.session.clone();
    let _pending = tokio::spawn(async move {
        session
            .fetch(kind, 128, GroupOrder::Ascending, VersionParameters::new())
            .await
    });
    Ok(super::harness::expect_close(
        &env,
        &f.session,
        SessionErrorCode::ProtocolViolation,
        T,
        "a Joining FETCH for a Next Group Start subscription",
    )
    .await?)
}

/// Objects and payload size of the large fetch.
const CANCEL_OBJECTS: u64 = 80;
const CANCEL_SIZE: usize = 100_000;

/// `fetch-cancel`: 8 MB fetched, FETCH_CANCEL after the first object.
pub async fn cancel(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    // A watcher first, so a relay serving FETCH from its cache has the objects.
    let w = Endpoint::connect(&env, "watcher_connection_id").await?;
    let wsub = subscribe(&env, &w, &env.track("t"), SubOpts::default()).await?;
    p.upstream(&env, 1).await?;
    let mut sg = p.track().create_subgroup(SubgroupInfo::new(0, 0, 128));
    for o in 0..CANCEL_OBJECTS {
        let mut v = payload(&env, 0, o).to_vec();
        v.resize(CANCEL_SIZE, b'.');
        let _ = sg.write(Object::new(o, Bytes::from(v)));
    }
    sg.finish();
    write_group(&env, p.track(), 1, 0..1).await;
    env.step("the 8 MB group at the watcher");
    wsub.wait_count(CANCEL_OBJECTS as usize + 1, Duration::from_secs(6))
        .await;
    let f = Endpoint::connect(&env, "fetcher_connection_id").await?;
    let end = FetchEnd {
        group: 0,
        object: None,
    };
    let mut r = fetch_ok(
        &env,
        &f,
        standalone(&env, Location::new(0, 0), end),
        GroupOrder::Ascending,
        "group 0 (8 MB)",
    )
    .await?;
    env.step("the first fetched object");
    let first = within(T, "the first fetched object", r.next()).await?;
    if !matches!(first, Ok(Some(_))) {
        return Err(Failure::new(
            "the first fetched object",
            format!("{first:?}"),
            "the fetch stream did not start",
        )
        .into());
    }
    f.session
        .send(ControlMessage::FetchCancel(RequestRef {
            request_id: r.ok.request_id,
        }))
        .await
        .map_err(|e| Failure::new("FETCH_CANCEL sent", describe(&e), "local session"))?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.step("the end of the cancelled fetch stream");
    let mut count = 1u64;
    let end = within(
        Duration::from_secs(5),
        "the end of the fetch stream",
        async {
            loop {
                match r.next().await {
                    Ok(Some(_)) => count += 1,
                    Ok(None) => return None,
                    Err(e) => return Some(e),
                }
            }
        },
    )
    .await?;
    f.still_open("fetcher")?;
    let _ = &p;
    match end {
        Some(FetchStreamError::Reset(code)) => Ok(format!(
            "fetch stream reset with 0x{code:x} after {count} of {CANCEL_OBJECTS} objects"
        )),
        Some(FetchStreamError::Lost) => Ok(format!(
            "fetch stream abandoned after {count} of {CANCEL_OBJECTS} objects"
        )),
        None if count < CANCEL_OBJECTS => Err(Failure::new(
            "the fetch stream reset after FETCH_CANCEL",
            format!("FIN after {count} of {CANCEL_OBJECTS} objects"),
            "a stream closed before all its objects were delivered MUST be reset (§5.1)",
        )
        .into()),
        // Every object and a FIN: the relay may have finished writing the stream before it read
        // FETCH_CANCEL, so no stream was open to reset (§5.1); it missed §9.19's SHOULD only.
        None => Err(Verdict::Should(Failure::new(
            "the fetch stream closed promptly after FETCH_CANCEL",
            format!("all {CANCEL_OBJECTS} objects (8 MB) delivered with FIN"),
            "the publisher SHOULD promptly close the unidirectional stream on FETCH_CANCEL (§9.19)",
        ))),
    }
}
