//! DELIVERY_TIMEOUT and MAX_CACHE_DURATION (§9.2.1.2, §9.2.1.3).
//!
//! DELIVERY_TIMEOUT (§10.4.3): a subscriber that asks for a short delivery timeout
//! and holds the relay back with flow control must see the subgroup stream reset, not the late
//! objects delivered with a FIN. The subgroup (640 KB) is small enough for the relay to take
//! whole from the publisher (QUIC stacks grant a stream 1 MB or more), so every object's
//! timeout runs from its prompt arrival at the relay.
//!
//! MAX_CACHE_DURATION: objects a relay received longer ago than the publisher's duration are
//! not served from its cache; the publisher refuses upstream FETCHes, so any of them a FETCH
//! returns came from the cache.

use super::harness::{
    describe, objects_relayed, payload, subscribe, within, write_group, Endpoint, Publisher,
    SubOpts,
};
use super::{refused, CheckOutput, Env};
use crate::cases::Failure;
use bytes::Bytes;
use moqlink_model::codes::RequestErrorCode;
use moqlink_model::control::*;
use moqlink_model::params::{Parameter, VersionParameters};
use moqlink_model::GroupOrder;
use moqlink_model::Location;
use moqlink_transport::data::SubgroupEvent;
use moqlink_transport::session::SessionError;
use moqlink_transport::track::{Object, SubgroupInfo, TrackConfig, TrackProducer};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

/// The DELIVERY TIMEOUT the subscriber asks for, in milliseconds.
const TIMEOUT_MS: u64 = 300;

/// How long the subscriber reads nothing: many times the timeout.
const HOLD: Duration = Duration::from_millis(2000);

/// The subscriber's connection-level receive window: far below the first object.
const WINDOW: u32 = 16 * 1024;

/// Objects in the subgroup and their size: far more than the subscriber's window and the
/// events its session buffers per stream (32: about 16 objects).
const OBJECTS: u64 = 40;
const SIZE: usize = 16 * 1024;

/// Data stream reset code DELIVERY_TIMEOUT (§13.1.8).
const DELIVERY_TIMEOUT: u64 = moqlink_model::codes::ResetCode::DeliveryTimeout.code();

/// `delivery-timeout-reset`: SUBSCRIBE with DELIVERY TIMEOUT 300 ms; the publisher writes 40
/// objects of 16 KB on one subgroup while the subscriber's window is 16 KB and it reads nothing
/// for 2 s.
pub async fn delivery_timeout_reset(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    let s = Endpoint::connect_windowed(&env, "subscriber_connection_id", WINDOW).await?;
    let mut params = VersionParameters::new();
    params.push(Parameter::DeliveryTimeout { value: TIMEOUT_MS });
    let ok = s
        .subscribe_with(
            &env,
            &env.track("t"),
            params,
            "the relay refused a SUBSCRIBE with DELIVERY TIMEOUT",
        )
        .await?;
    let mut data = s
        .session
        .data()
        .register_track(ok.track_alias)
        .map_err(|e| Failure::new("the track alias registered", e.to_string(), "local"))?;
    p.upstream(&env, 1).await?;
    let mut sg = p.track().create_subgroup(SubgroupInfo::new(0, 0, 128));
    for o in 0..OBJECTS {
        let mut body = payload(&env, 0, o).to_vec();
        body.resize(SIZE, b'.');
        let _ = sg.write(Object::new(o, Bytes::from(body)));
    }
    sg.finish();
    env.step("the subgroup stream (read after the hold)");
    let Ok(Some(mut stream)) = tokio::time::timeout(T, data.subgroups.recv()).await else {
        return Ok(format!(
            "no subgroup stream opened (objects past their {TIMEOUT_MS} ms DELIVERY TIMEOUT \
             need not be sent)"
        ));
    };
    tokio::time::sleep(HOLD).await;
    env.step("the end of the subgroup stream");
    let mut got = Vec::new();
    let end = within(
        Duration::from_secs(5),
        "the end of the subgroup stream",
        async {
            loop {
                match stream.next().await {
                    Some(SubgroupEvent::Object(o)) => got.push(o.object_id),
                    Some(SubgroupEvent::Begun(_)) => {}
                    Some(SubgroupEvent::Reset(code)) => return Some(code),
                    Some(SubgroupEvent::Finished) | None => return None,
                }
            }
        },
    )
    .await?;
    let held = format!(
        "DELIVERY TIMEOUT {TIMEOUT_MS} ms, subscriber window {} KB, nothing read for {} ms; \
         {} of {OBJECTS} objects arrived",
        WINDOW / 1024,
        HOLD.as_millis(),
        got.len()
    );
    match end {
        Some(DELIVERY_TIMEOUT) => Ok(format!("{held}, then RESET_STREAM DELIVERY_TIMEOUT")),
        Some(code) => Ok(format!(
            "{held}, then RESET_STREAM 0x{code:x} (DELIVERY_TIMEOUT 0x2 is the relevant code)"
        )),
        None => Err(Failure::new(
            "the subgroup stream reset",
            format!("{held}, then FIN"),
            "the objects exceeded the subscriber's delivery timeout: the publisher MUST reset \
             the stream (§9.2.1.2)",
        )
        .into()),
    }
}

/// The MAX_CACHE_DURATION the publisher sets, in milliseconds.
const CACHE_MS: u64 = 200;

/// How long after the objects arrived the FETCH asks for them: many times the duration.
const AGED: Duration = Duration::from_millis(1500);

/// `max-cache-duration`: a publisher PUBLISHes with MAX_CACHE_DURATION 200 ms and refuses
/// every upstream FETCH; 1.5 s after a subscriber received group 0, a FETCH of group 0 must
/// not be served those objects from the relay's cache.
pub async fn max_cache_duration(env: Env) -> CheckOutput {
    let p = Endpoint::connect(&env, "publisher_connection_id").await?;
    let track = TrackProducer::new(env.track("t"), TrackConfig::default());
    p.serve(&track);
    let mut upstream = p.intercept(MessageType::Fetch);
    let refused_upstream = Arc::new(AtomicUsize::new(0));
    let counter = refused_upstream.clone();
    tokio::spawn(async move {
        while let Some(r) = upstream.recv().await {
            counter.fetch_add(1, Ordering::Relaxed);
            let _ = r
                .responder
                .reject(
                    RequestErrorCode::INTERNAL_ERROR,
                    "conformance: this publisher serves no FETCH",
                )
                .await;
        }
    });
    let mut params = VersionParameters::new();
    params.push(Parameter::MaxCacheDuration { value: CACHE_MS });
    env.step("PUBLISH_OK");
    let Ok(answer) = tokio::time::timeout(T, p.session.publish(&track, true, params)).await else {
        return Err(super::Verdict::NotApplicable(format!(
            "the relay did not answer PUBLISH within {} ms (see \
             publish-forward-with-subscribers); this check needs a PUBLISHed track",
            T.as_millis()
        )));
    };
    let publication = answer.map_err(|e| {
        refused(
            e,
            "PUBLISH_OK",
            "the relay refused the PUBLISH with MAX_CACHE_DURATION",
        )
    })?;
    let w = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let sub = subscribe(&env, &w, &env.track("t"), SubOpts::default()).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    write_group(&env, &track, 0, 0..3).await;
    objects_relayed(
        &env,
        &sub,
        3,
        "objects 0.0-0.2",
        "the relay did not forward the objects this check fetches",
    )
    .await?;
    tokio::time::sleep(AGED).await;
    let f = Endpoint::connect(&env, "fetcher_connection_id").await?;
    let t = env.track("t");
    let kind = FetchKind::Standalone {
        namespace: t.namespace,
        name: t.name,
        start: Location::new(0, 0),
        end: FetchEnd {
            group: 0,
            object: None,
        },
    };
    env.step("FETCH_OK or FETCH_ERROR for group 0");
    let answer = within(
        T,
        "FETCH_OK or FETCH_ERROR",
        f.session
            .fetch(kind, 128, GroupOrder::Ascending, VersionParameters::new()),
    )
    .await?;
    let aged = format!(
        "MAX_CACHE_DURATION {CACHE_MS} ms; FETCH of group 0 {} ms after it was relayed",
        AGED.as_millis()
    );
    let upstream_note = |n: usize| format!("{n} upstream FETCH(es) refused by the publisher");
    let mut r = match answer {
        Err(SessionError::Rejected {
            code: super::NOT_SUPPORTED,
            reason,
            ..
        }) => {
            return Err(super::Verdict::Unsupported {
                what: "FETCH".into(),
                reason,
            })
        }
        Err(e) => {
            return Ok(format!(
                "{aged}: {}; {}",
                describe(&e),
                upstream_note(refused_upstream.load(Ordering::Relaxed))
            ))
        }
        Ok(r) => r,
    };
    env.step("the fetched objects");
    let mut got = Vec::new();
    let _ = within(
        Duration::from_secs(4),
        "the end of the fetch stream",
        async {
            while let Ok(Some(o)) = r.next().await {
                got.push(o);
            }
        },
    )
    .await;
    drop(publication);
    let text = format!(
        "{aged}: FETCH_OK and {} object(s) {:?}; {}",
        got.len(),
        got.iter()
            .map(|o| format!("{}.{}", o.group_id, o.object_id))
            .collect::<Vec<_>>(),
        upstream_note(refused_upstream.load(Ordering::Relaxed))
    );
    let stale = got
        .iter()
        .any(|o| o.group_id == 0 && o.payload.0 == payload(&env, 0, o.object_id));
    if stale {
        return Err(Failure::new(
            "no object of group 0 served from the cache",
            text,
            "objects older than MAX_CACHE_DURATION MUST NOT start to be forwarded (§9.2.1.3); \
             the publisher refused every upstream FETCH, so they came from the cache",
        )
        .into());
    }
    Ok(text)
}
