//! The relay as a subscriber upstream: its SUBSCRIBE does not copy a downstream subscriber's
//! Subscriber Priority and Group Order (§7.3), and when it drops a subscription it stops the
//! publisher's streams (§9.12). Both SHOULD-level.

use super::fields::{raw_publisher, subscribe_via_raw, upstream_request};
use super::harness::{subscribe, Endpoint, Publisher, SubOpts};
use super::raw::{describe, varint, Event};
use super::{CheckOutput, Env};
use crate::cases::Failure;
use bytes::{BufMut, BytesMut};
use moqlink_model::control::*;
use moqlink_model::params::VersionParameters;
use moqlink_model::GroupOrder;
use moqlink_transport::{Connection, SendStream};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

/// `upstream-subscribe-own-priority`: a subscriber with Subscriber Priority 3 and Group Order
/// Descending; the relay's upstream SUBSCRIBE should carry neither.
pub async fn own_priority(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let opts = SubOpts {
        priority: 3,
        order: GroupOrder::Descending,
        ..Default::default()
    };
    let _sub = subscribe(&env, &s, &env.track("t"), opts).await?;
    p.upstream(&env, 1).await?;
    let up = p.ep.served()[0].subscribe.clone();
    let got = format!(
        "upstream SUBSCRIBE with Subscriber Priority {} and Group Order {:?}",
        up.subscriber_priority, up.group_order
    );
    if up.subscriber_priority == 3 || up.group_order == GroupOrder::Descending {
        return Err(Failure::new(
            "an upstream SUBSCRIBE with the relay's own Subscriber Priority and Group Order",
            got,
            "the downstream subscriber asked for Subscriber Priority 3 and Descending; relays \
             SHOULD NOT directly use them upstream (§7.3)",
        )
        .into());
    }
    Ok(format!(
        "{got}, for a downstream SUBSCRIBE with priority 3 and Descending"
    ))
}

/// `unsubscribe-stops-upstream-streams`: the publisher keeps a subgroup stream open; after the
/// only subscriber's UNSUBSCRIBE the relay's UNSUBSCRIBE reaches the publisher, and the stream
/// gets STOP_SENDING.
pub async fn stops_upstream_streams(env: Env) -> CheckOutput {
    let (mut raw, _s, sub, id) = raw_track(&env, GroupOrder::Ascending).await?;
    // Subgroup stream (type 0x10) for group 0 with object 0.0, left open.
    let mut b = BytesMut::new();
    varint(&mut b, 0x10);
    varint(&mut b, id);
    varint(&mut b, 0);
    b.put_u8(128);
    varint(&mut b, 0);
    varint(&mut b, 5);
    b.put_slice(b"first");
    let mut stream = raw.conn.open_uni().await.map_err(|e| {
        Failure::new(
            "a data stream",
            e.to_string(),
            "could not open a data stream",
        )
    })?;
    stream
        .write_chunk(b.freeze())
        .await
        .map_err(|e| Failure::new("the data stream written", e.to_string(), "local stream"))?;
    env.step("object 0.0 at the subscriber");
    if !sub.wait_count(1, T).await {
        return Err(Failure::new(
            "object 0.0 relayed",
            super::harness::listing(&sub.objects()),
            "the relay did not forward the object this check builds on",
        )
        .into());
    }
    sub.unsubscribe()
        .await
        .map_err(|e| Failure::new("UNSUBSCRIBE sent", e.to_string(), "local session"))?;
    env.step("the relay's UNSUBSCRIBE at the publisher");
    loop {
        match raw.next(T).await {
            Event::Message(ControlMessage::Unsubscribe(r)) if r.request_id == id => break,
            Event::Message(_) => {}
            Event::Quiet => {
                return Err(super::Verdict::NotApplicable(
                    "the relay kept its upstream subscription after its only subscriber left"
                        .into(),
                ))
            }
            other => {
                return Err(Failure::new(
                    "UNSUBSCRIBE at the publisher",
                    describe(&other),
                    "the relay ended the publisher's session",
                )
                .into())
            }
        }
    }
    env.step("STOP_SENDING on the publisher's open subgroup stream");
    match tokio::time::timeout(T, stream.stopped()).await {
        Ok(Some(code)) => Ok(format!(
            "UNSUBSCRIBE upstream, then STOP_SENDING (code 0x{code:x}) on the open subgroup stream"
        )),
        other => Err(Failure::new(
            "STOP_SENDING on the open subgroup stream after the relay's UNSUBSCRIBE",
            match other {
                Err(_) => format!("nothing within {} ms", T.as_millis()),
                Ok(_) => "the stream ended without STOP_SENDING".into(),
            },
            "the subscriber SHOULD send STOP_SENDING on all streams of a subscription it \
             deletes (§9.12)",
        )
        .into()),
    }
}

/// A raw publisher whose SUBSCRIBE_OK for track `t` says Group Order Descending, and a
/// subscriber that asked for Group Order 0 (the publisher's): the subscriber's SUBSCRIBE_OK.
async fn descending_track(
    env: &Env,
) -> Result<(super::raw::Raw, Endpoint, super::harness::DirectSub, u64), super::Verdict> {
    raw_track(env, GroupOrder::Descending).await
}

/// A raw publisher answering the relay's SUBSCRIBE for track `t` with SUBSCRIBE_OK (Track Alias
/// = Request ID, `order`), and a subscriber through the relay: the raw connection, the
/// subscriber, its subscription and the alias.
async fn raw_track(
    env: &Env,
    order: GroupOrder,
) -> Result<(super::raw::Raw, Endpoint, super::harness::DirectSub, u64), super::Verdict> {
    let (mut raw, s, pending, id) = subscribe_via_raw(env).await?;
    raw.send(&ControlMessage::SubscribeOk(SubscribeOk {
        request_id: id,
        track_alias: id,
        expires: 0,
        group_order: order,
        largest_location: None,
        parameters: VersionParameters::new(),
    }))
    .await?;
    env.step("SUBSCRIBE_OK at the subscriber");
    let sub = super::harness::within(T, "SUBSCRIBE_OK at the subscriber", pending)
        .await?
        .map_err(|e| Failure::new("SUBSCRIBE_OK", e.to_string(), "local task"))?
        .map_err(|e| {
            super::refused(
                e,
                "SUBSCRIBE_OK",
                "the relay did not relay the SUBSCRIBE_OK",
            )
        })?;
    Ok((raw, s, sub, id))
}

/// The verdict on the Group Order of the relay's answer to a `request` (SUBSCRIBE or FETCH)
/// with Group Order 0, for a track whose publisher answered Descending.
fn publishers_order(request: &str, got: GroupOrder, section: &str) -> CheckOutput {
    if got != GroupOrder::Descending {
        return Err(Failure::new(
            format!("{request}_OK with Group Order Descending (0x2), the original publisher's"),
            format!("{request}_OK with Group Order {got:?}"),
            format!(
                "Group Order 0 in {request} asks for the original publisher's order ({section})"
            ),
        )
        .into());
    }
    Ok(format!(
        "{request} with Group Order 0: {request}_OK says Descending, as the publisher did"
    ))
}

/// `subscribe-group-order-original`: SUBSCRIBE with Group Order 0 for a track whose publisher
/// answered Descending: the relay's SUBSCRIBE_OK should say Descending.
pub async fn group_order_original(env: Env) -> CheckOutput {
    let (_raw, _s, sub, _) = descending_track(&env).await?;
    publishers_order("SUBSCRIBE", sub.ok.group_order, "§9.7")
}

/// `fetch-group-order-original`: FETCH with Group Order 0 of groups 0-1 of a track whose
/// publisher answered Descending: FETCH_OK should say Descending.
pub async fn fetch_group_order_original(env: Env) -> CheckOutput {
    let (raw, _s, sub, alias) = descending_track(&env).await?;
    // Groups 0 and 1, two objects each, on finished subgroup streams (type 0x10).
    for g in 0..2u64 {
        let mut b = BytesMut::new();
        varint(&mut b, 0x10);
        varint(&mut b, alias);
        varint(&mut b, g);
        b.put_u8(128);
        for o in 0..2u64 {
            let payload = super::harness::payload(&env, g, o);
            varint(&mut b, 0); // Object ID delta: objects 0 and 1
            varint(&mut b, payload.len() as u64);
            b.put_slice(&payload);
        }
        let mut stream = raw.conn.open_uni().await.map_err(|e| {
            Failure::new(
                "a data stream",
                e.to_string(),
                "could not open a data stream",
            )
        })?;
        stream
            .write_chunk(b.freeze())
            .await
            .map_err(|e| Failure::new("the data stream written", e.to_string(), "local"))?;
        let _ = stream.finish();
        // One group at a time, like live media: a relay may skip to the newest group.
        env.step(format!("group {g} at the subscriber"));
        if !sub.wait_count(2 * (g as usize + 1), T).await {
            return Err(super::Verdict::NotApplicable(format!(
                "this check needs groups 0 and 1 relayed; the subscriber got {}",
                super::harness::listing(&sub.objects())
            )));
        }
    }
    let f = Endpoint::connect(&env, "fetcher_connection_id").await?;
    env.step("FETCH_OK");
    let answer = tokio::time::timeout(
        T,
        f.session.fetch(
            FetchKind::Standalone {
                namespace: env.namespace(),
                name: moqlink_model::Blob::from("t"),
                start: moqlink_model::Location::new(0, 0),
                end: FetchEnd {
                    group: 1,
                    object: None,
                },
            },
            128,
            GroupOrder::Original,
            VersionParameters::new(),
        ),
    )
    .await
    .map_err(|_| {
        super::Verdict::NotApplicable(format!(
            "this check needs the FETCH answered from the relay's cache: nothing within {} ms",
            T.as_millis()
        ))
    })?;
    let resp = answer.map_err(|e| {
        super::refused(
            e,
            "FETCH_OK",
            "the relay refused the FETCH this check needs",
        )
    })?;
    publishers_order("FETCH", resp.ok.group_order, "§9.16.3")
}

/// `upstream-subscribe-forward-1`: a subscriber with Forward 0; the relay's new upstream
/// SUBSCRIBE should carry Forward 1.
pub async fn forward_one_upstream(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let opts = SubOpts {
        forward: false,
        ..Default::default()
    };
    let _sub = subscribe(&env, &s, &env.track("t"), opts).await?;
    p.upstream(&env, 1).await?;
    let up = p.ep.served()[0].subscribe.clone();
    if !up.forward {
        return Err(Failure::new(
            "the relay's upstream SUBSCRIBE with Forward 1",
            "upstream SUBSCRIBE with Forward 0",
            "relays SHOULD set Forward 1 on a new upstream subscription whatever the downstream \
             Forward (§9.7)",
        )
        .into());
    }
    Ok(
        "a downstream SUBSCRIBE with Forward 0: the relay's upstream SUBSCRIBE has Forward 1"
            .into(),
    )
}

/// `goaway-no-new-requests`: the publisher sends GOAWAY (no URI), then a subscriber asks for
/// its track: the relay should not send the publisher a new SUBSCRIBE.
pub async fn goaway_no_new_requests(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    p.ep.session
        .send(ControlMessage::Goaway(Goaway {
            new_session_uri: moqlink_model::Blob::default(),
        }))
        .await
        .map_err(|e| Failure::new("GOAWAY sent", e.to_string(), "could not send GOAWAY"))?;
    // A round trip on the publisher's control stream: the relay has read the GOAWAY once it
    // answers the PUBLISH_NAMESPACE sent after it (whatever the answer).
    env.step("the relay's answer to a PUBLISH_NAMESPACE after the GOAWAY");
    let _barrier = tokio::time::timeout(
        T,
        p.ep.session
            .publish_namespace(env.namespace_with(&["barrier"]), VersionParameters::new()),
    )
    .await;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    env.step("the relay's answer to the subscriber");
    let answer = super::harness::within(
        Duration::from_secs(5),
        "SUBSCRIBE_OK or SUBSCRIBE_ERROR",
        super::harness::DirectSub::subscribe(&s.session, &env.track("t"), SubOpts::default()),
    )
    .await?;
    let answered = match &answer {
        Ok(_) => "SUBSCRIBE_OK".to_string(),
        Err(e) => super::harness::describe(e),
    };
    // Closing the session after a GOAWAY is allowed: then no request can follow.
    let closed = match p.ep.session.close_reason() {
        Some(c) => format!("; the relay closed the publisher's session ({c})"),
        None => String::new(),
    };
    let asked = p.ep.seen_of(MessageType::Subscribe);
    if !asked.is_empty() {
        return Err(Failure::new(
            "no SUBSCRIBE at the publisher after its GOAWAY",
            format!(
                "{} SUBSCRIBE(s) at the publisher; the subscriber got {answered}",
                asked.len()
            ),
            "upon receiving a GOAWAY an endpoint SHOULD NOT initiate new requests to the peer \
             (§9.4)",
        )
        .into());
    }
    Ok(format!(
        "no SUBSCRIBE reached the publisher after its GOAWAY; the subscriber got {answered}{closed}"
    ))
}

/// How long the publisher holds its answer to the relay's upstream FETCH.
const HOLD: Duration = Duration::from_millis(1000);

/// `fetch-ok-waits-for-upstream`: a FETCH of groups the relay has not seen goes upstream; the
/// publisher holds its answer for a second: no FETCH_OK reaches the fetcher meanwhile.
pub async fn fetch_ok_waits_for_upstream(env: Env) -> CheckOutput {
    let mut raw = raw_publisher(&env).await?;
    let f = Endpoint::connect(&env, "fetcher_connection_id").await?;
    let session = f.session.clone();
    let ns = env.namespace();
    let mut pending = tokio::spawn(async move {
        session
            .fetch(
                FetchKind::Standalone {
                    namespace: ns,
                    name: moqlink_model::Blob::from("t"),
                    start: moqlink_model::Location::new(5, 0),
                    end: FetchEnd {
                        group: 6,
                        object: None,
                    },
                },
                128,
                GroupOrder::Original,
                VersionParameters::new(),
            )
            .await
            .map(|r| r.ok)
    });
    let fetch = match upstream_request(&env, &mut raw, "FETCH", |m| {
        matches!(m, ControlMessage::Fetch(_))
    })
    .await
    {
        Ok(m) => m,
        Err(v) => {
            pending.abort();
            return Err(v);
        }
    };
    let id = fetch.request_id().unwrap_or_default();
    env.step(format!(
        "{} ms with the upstream FETCH unanswered",
        HOLD.as_millis()
    ));
    if let Ok(early) = tokio::time::timeout(HOLD, &mut pending).await {
        return match early {
            Ok(Ok(ok)) => Err(Failure::new(
                "no FETCH_OK while the publisher has not answered the relay's FETCH",
                format!(
                    "FETCH_OK (End Location {}) at the fetcher",
                    match ok.end_location.object {
                        Some(o) => format!("{}.{o}", ok.end_location.group),
                        None => format!("{}, whole group", ok.end_location.group),
                    }
                ),
                "a relay without the information for FETCH_OK MUST withhold it until it has it \
                 (§8.3)",
            )
            .into()),
            Ok(Err(e)) => Ok(format!(
                "no FETCH_OK before the publisher answered: the relay answered {} first",
                super::harness::describe(&e)
            )),
            Err(e) => Err(Failure::new("the FETCH task", e.to_string(), "local task").into()),
        };
    }
    raw.send(&ControlMessage::FetchOk(FetchOk {
        request_id: id,
        group_order: GroupOrder::Ascending,
        end_of_track: false,
        end_location: FetchEnd {
            group: 5,
            object: Some(0),
        },
        parameters: VersionParameters::new(),
    }))
    .await?;
    // The fetch stream: FETCH_HEADER (0x05) and no object, then FIN.
    let mut b = BytesMut::new();
    varint(&mut b, 0x05);
    varint(&mut b, id);
    if let Ok(mut stream) = raw.conn.open_uni().await {
        let _ = stream.write_chunk(b.freeze()).await;
        let _ = stream.finish();
    }
    env.step("the fetcher's answer after the publisher's FETCH_OK");
    let after = match tokio::time::timeout(T, pending).await {
        Ok(Ok(Ok(_))) => "FETCH_OK".to_string(),
        Ok(Ok(Err(e))) => super::harness::describe(&e),
        _ => "no answer yet".to_string(),
    };
    Ok(format!(
        "no FETCH_OK during the {} ms the publisher held its answer; after it: {after}",
        HOLD.as_millis()
    ))
}
