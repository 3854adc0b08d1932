//! Subscription lifecycle checks: Forward State and SUBSCRIBE_UPDATE (§5.1, §9.10), the relay's
//! upstream subscription (§8.3, §8.4), UNSUBSCRIBE (§9.11) and PUBLISH_DONE when the publisher
//! leaves (§9.12).

use super::harness::{
    describe, listing, relayed_with, subscribe, update_must_close, upstream_subscribe, within,
    DirectSub, Endpoint, Got, Publisher, SubOpts,
};
use super::subscribe::{arrived, exactly, more, open_group, two};
use super::{refused, CheckOutput, Env};
use crate::cases::{publish_done_name, request_error_name, Failure};
use moqlink_model::control::*;
use moqlink_model::params::VersionParameters;
use moqlink_model::{Location, SessionErrorCode};
use moqlink_transport::session::SessionError;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(3);

/// `subscribe-forward-0-then-update`.
pub async fn forward_then_update(env: Env) -> CheckOutput {
    let (p, s) = two(&env).await?;
    let opts = SubOpts {
        forward: false,
        ..Default::default()
    };
    let sub = subscribe(&env, &s, &env.track("t"), opts).await?;
    p.upstream(&env, 1).await?;
    let upstream_forward = p.ep.served().first().map(|x| x.subscribe.forward);
    super::harness::write_group(&env, p.track(), 0, 0..3).await;
    env.step("500 ms without objects under Forward=0");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let early = sub.objects();
    if !early.is_empty() {
        return Err(Failure::new(
            "no objects while Forward is 0",
            listing(&early),
            "with Forward State 0 the publisher does not send objects (§5.1)",
        )
        .into());
    }
    let start = sub.largest().map_or(Location::new(0, 0), |l| {
        Location::new(l.group, l.object + 1)
    });
    sub.update(start, None, 128, true)
        .await
        .map_err(|e| Failure::new("SUBSCRIBE_UPDATE sent", describe(&e), "local session"))?;
    processed(&env, &s).await;
    super::harness::write_group(&env, p.track(), 1, 0..3).await;
    env.step("group 1 after SUBSCRIBE_UPDATE Forward=1");
    let ok = sub
        .wait(T, |g| g.iter().filter(|o| o.group == 1).count() >= 3)
        .await;
    let got = sub.objects();
    if !ok {
        return Err(Failure::new(
            "objects 1.0-1.2 after SUBSCRIBE_UPDATE with Forward=1",
            listing(&got),
            "SUBSCRIBE_UPDATE sets the Forward State (§5.1, §9.10)",
        )
        .into());
    }
    let backlog = got.iter().filter(|o| o.group == 0).count();
    Ok(format!(
        "nothing under Forward=0 (upstream SUBSCRIBE Forward={}); after the update {} \
         ({backlog} object(s) published under Forward=0 were sent too)",
        upstream_forward.map_or("?".into(), |f| u8::from(f).to_string()),
        listing(&got)
    ))
}

/// Waits until the relay has read what `s` sent so far: a SUBSCRIBE sent after it on the same
/// control stream is answered (either way). A relay that answers nothing gets 300 ms instead.
async fn processed(env: &Env, s: &Endpoint) {
    env.step("the answer to a SUBSCRIBE sent after the SUBSCRIBE_UPDATE");
    let track = env.track("probe");
    let probe = DirectSub::subscribe(&s.session, &track, SubOpts::default());
    if within(Duration::from_secs(4), "an answer", probe)
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `subscribe-forward-1-after-forward-0`.
pub async fn forward_one_after_zero(env: Env) -> CheckOutput {
    let (p, s) = two(&env).await?;
    let idle = Endpoint::connect(&env, "idle_subscriber_connection_id").await?;
    let opts = SubOpts {
        forward: false,
        ..Default::default()
    };
    let zero = subscribe(&env, &idle, &env.track("t"), opts).await?;
    p.upstream(&env, 1).await?;
    let upstream_forward = p.ep.served().first().map(|x| x.subscribe.forward);
    let one = subscribe(&env, &s, &env.track("t"), SubOpts::default()).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    super::harness::write_group(&env, p.track(), 0, 0..3).await;
    let got = exactly(
        &env,
        &one,
        &[(0, 0), (0, 1), (0, 2)],
        "objects 0.0-0.2 at the Forward=1 subscriber",
        "a Forward=1 SUBSCRIBE makes the relay forward upstream (§8.4)",
    )
    .await?;
    if !zero.objects().is_empty() {
        return Err(Failure::new(
            "nothing at the Forward=0 subscriber",
            listing(&zero.objects()),
            "with Forward State 0 no objects are sent (§5.1)",
        )
        .into());
    }
    Ok(format!(
        "first upstream SUBSCRIBE Forward={} (§9.7: relays SHOULD use 1); Forward=1 subscriber \
         got {}; Forward=0 subscriber got nothing",
        upstream_forward.map_or("?".into(), |f| u8::from(f).to_string()),
        listing(&got)
    ))
}

/// `subscribe-update-end-group`: narrow an open subscription to end with group 1.
pub async fn update_end_group(env: Env) -> CheckOutput {
    let (p, s) = two(&env).await?;
    let sub = subscribe(&env, &s, &env.track("t"), SubOpts::default()).await?;
    p.upstream(&env, 1).await?;
    super::harness::write_group(&env, p.track(), 0, 0..2).await;
    arrived(&env, &sub, 2, "objects 0.0 and 0.1").await?;
    sub.update(Location::new(1, 0), Some(1), 128, true)
        .await
        .map_err(|e| Failure::new("SUBSCRIBE_UPDATE sent", describe(&e), "local session"))?;
    // §9.10 lets objects outside the new range arrive until the update is processed.
    processed(&env, &s).await;
    for g in 1..4 {
        super::harness::write_group(&env, p.track(), g, 0..2).await;
    }
    let got = exactly(
        &env,
        &sub,
        &[(0, 0), (0, 1), (1, 0), (1, 1)],
        "groups 0 and 1, nothing after End Group 1",
        "SUBSCRIBE_UPDATE narrows the End Group (§9.10)",
    )
    .await?;
    Ok(listing(&got))
}

/// `subscribe-update-unknown-subscription`.
pub async fn update_unknown(env: Env) -> CheckOutput {
    let s = Endpoint::connect(&env, "connection_id").await?;
    let _req = s
        .session
        .request(|request_id| {
            ControlMessage::SubscribeUpdate(SubscribeUpdate {
                request_id,
                subscription_request_id: 40,
                start: Location::new(0, 0),
                end_group: None,
                subscriber_priority: 128,
                forward: true,
                parameters: VersionParameters::new(),
            })
        })
        .await
        .map_err(|e| Failure::new("SUBSCRIBE_UPDATE sent", describe(&e), "local session"))?;
    Ok(super::harness::expect_close(
        &env,
        &s.session,
        SessionErrorCode::ProtocolViolation,
        T,
        "SUBSCRIBE_UPDATE for Request ID 40, which never existed",
    )
    .await?)
}

/// `subscribe-update-widens`: Start moves back from {2, 0} to {1, 0}.
pub async fn update_widens(env: Env) -> CheckOutput {
    let filter = Filter::AbsoluteStart {
        start: Location::new(2, 0),
    };
    let (_p, s, sub) = relayed_with(&env, SubOpts::filter(filter)).await?;
    Ok(update_must_close(
        &env,
        &s,
        &sub,
        Location::new(1, 0),
        None,
        "SUBSCRIBE_UPDATE moving Start from {2, 0} back to {1, 0}",
    )
    .await?)
}

/// `subscribe-waits-for-upstream`: the publisher holds its SUBSCRIBE_OK 700 ms.
pub async fn waits_for_upstream(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    let mut upstream = p.ep.intercept(MessageType::Subscribe);
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let session = s.session.clone();
    let name = env.track("t");
    let pending = tokio::spawn(async move {
        let r = DirectSub::subscribe(&session, &name, SubOpts::default()).await;
        (r, Instant::now())
    });
    let req = upstream_subscribe(&env, &mut upstream).await?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let early = pending.is_finished();
    let answered = Instant::now();
    let served = p.ep.session.serve_subscribe(req, p.track()).await;
    env.step("SUBSCRIBE_OK at the subscriber");
    let (result, at) = within(T, "SUBSCRIBE_OK", pending)
        .await?
        .map_err(|e| Failure::new("subscribe task", e.to_string(), "local"))?;
    let _keep = served;
    let sub = result.map_err(|e| refused(e, "SUBSCRIBE_OK", "the relay refused the SUBSCRIBE"))?;
    if early || at < answered {
        return Err(Failure::new(
            "SUBSCRIBE_OK after the publisher's SUBSCRIBE_OK",
            "SUBSCRIBE_OK while the upstream SUBSCRIBE was still unanswered",
            "the relay MUST have an established upstream subscription before sending \
             SUBSCRIBE_OK (§8.3)",
        )
        .into());
    }
    Ok(format!(
        "SUBSCRIBE_OK {} ms after the publisher answered (held 700 ms); alias {}",
        at.saturating_duration_since(answered).as_millis(),
        sub.ok.track_alias
    ))
}

/// `subscribe-upstream-error`: the publisher refuses with TRACK_DOES_NOT_EXIST.
pub async fn upstream_error(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    let mut upstream = p.ep.intercept(MessageType::Subscribe);
    tokio::spawn(async move {
        while let Some(r) = upstream.recv().await {
            let _ = r
                .responder
                .reject(
                    moqlink_model::codes::SubscribeErrorCode::TrackDoesNotExist,
                    "conformance: refused upstream",
                )
                .await;
        }
    });
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    env.step("SUBSCRIBE_ERROR at the subscriber");
    let answer = within(
        Duration::from_secs(5),
        "SUBSCRIBE_ERROR",
        DirectSub::subscribe(&s.session, &env.track("t"), SubOpts::default()),
    )
    .await?;
    match answer {
        Ok(_) => Err(Failure::new(
            "SUBSCRIBE_ERROR",
            format!("SUBSCRIBE_OK; publisher received: {}", p.ep.seen_text()),
            "the relay answered SUBSCRIBE_OK although its upstream SUBSCRIBE failed (§8.3)",
        )
        .into()),
        Err(SessionError::Rejected { code, reason, .. }) => Ok(format!(
            "SUBSCRIBE_ERROR code 0x{code:x} ({}) {reason:?} after the publisher's \
             TRACK_DOES_NOT_EXIST",
            request_error_name(moqlink_model::control::MessageType::SubscribeError, code)
        )),
        Err(e) => Err(Failure::new("SUBSCRIBE_ERROR", describe(&e), "no answer").into()),
    }
}

/// `unsubscribe-stops-delivery`.
pub async fn unsubscribe_stops(env: Env) -> CheckOutput {
    let (p, s) = two(&env).await?;
    let sub = subscribe(&env, &s, &env.track("t"), SubOpts::default()).await?;
    p.upstream(&env, 1).await?;
    let mut sg = open_group(&env, p.track(), 0, 0..2);
    arrived(&env, &sub, 2, "objects 0.0 and 0.1").await?;
    sub.unsubscribe()
        .await
        .map_err(|e| Failure::new("UNSUBSCRIBE sent", describe(&e), "local session"))?;
    env.step("the relay's UNSUBSCRIBE at the publisher (last subscriber left)");
    let upstream_ended =
        p.ep.wait_served(T, |s| s.first().is_some_and(|x| x.ended.is_some()))
            .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    more(&env, &mut sg, 2..4);
    sg.finish();
    super::harness::write_group(&env, p.track(), 1, 0..2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = sub.objects();
    let late: Vec<&Got> = got
        .iter()
        .filter(|o| o.location() >= Location::new(0, 2))
        .collect();
    if let Some(first) = late.first() {
        return Err(Failure::new(
            "nothing after UNSUBSCRIBE",
            format!("{first} ({} object(s) after UNSUBSCRIBE)", late.len()),
            "the publisher stops sending objects after UNSUBSCRIBE (§9.11)",
        )
        .into());
    }
    let ends = sub.ends();
    let stream =
        match ends.iter().find(|e| e.group == 0) {
            Some(e) => match e.reset {
                Some(code) => format!("the open stream was reset (0x{code:x})"),
                None => return Err(Failure::new(
                    "the open subgroup stream reset",
                    "FIN after objects 0.0 and 0.1 of 0.0-0.3",
                    "a sender closing a stream before delivering all its objects MUST reset it \
                     (§10.4.3)",
                )
                .into()),
            },
            None => return Err(Failure::new(
                "the open subgroup stream reset",
                "the stream is still open",
                "the publisher MUST reset any open streams of an UNSUBSCRIBEd subscription (§5.1)",
            )
            .into()),
        };
    // No MUST makes a relay drop its upstream subscription when the last subscriber leaves
    // (§8.3 describes aggregation, not teardown): reported, not judged.
    let upstream = if upstream_ended {
        "relay unsubscribed upstream"
    } else {
        "relay kept its upstream subscription (allowed)"
    };
    let done = sub.done().map_or("no PUBLISH_DONE".into(), |d| {
        format!(
            "PUBLISH_DONE 0x{:x} ({})",
            d.status_code,
            publish_done_name(d.status_code)
        )
    });
    Ok(format!(
        "nothing after UNSUBSCRIBE; {stream}; {upstream}; {done}"
    ))
}

/// `unsubscribe-keeps-other-subscribers`.
pub async fn unsubscribe_keeps_others(env: Env) -> CheckOutput {
    let (p, s) = two(&env).await?;
    let other = Endpoint::connect(&env, "other_subscriber_connection_id").await?;
    let stays = subscribe(&env, &other, &env.track("t"), SubOpts::default()).await?;
    p.upstream(&env, 1).await?;
    let leaves = subscribe(&env, &s, &env.track("t"), SubOpts::default()).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    super::harness::write_group(&env, p.track(), 0, 0..2).await;
    arrived(
        &env,
        &leaves,
        2,
        "objects 0.0 and 0.1 at the leaving subscriber",
    )
    .await?;
    leaves
        .unsubscribe()
        .await
        .map_err(|e| Failure::new("UNSUBSCRIBE sent", describe(&e), "local session"))?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    super::harness::write_group(&env, p.track(), 1, 0..2).await;
    let got = exactly(
        &env,
        &stays,
        &[(0, 0), (0, 1), (1, 0), (1, 1)],
        "groups 0 and 1 at the subscriber that stayed",
        "another subscriber's UNSUBSCRIBE must not end this subscription (§8.3)",
    )
    .await?;
    if leaves.objects().iter().any(|o| o.group == 1) {
        return Err(Failure::new(
            "nothing after UNSUBSCRIBE at the subscriber that left",
            listing(&leaves.objects()),
            "objects after UNSUBSCRIBE (§9.11)",
        )
        .into());
    }
    if p.ep.served().iter().all(|x| x.ended.is_some()) {
        return Err(Failure::new(
            "the upstream subscription kept",
            "the relay unsubscribed upstream while a subscriber remained",
            "the relay keeps its upstream subscription while it has subscribers (§8.3)",
        )
        .into());
    }
    Ok(format!("remaining subscriber got {}", listing(&got)))
}

/// `publisher-gone-publish-done`: the publisher's session ends. A subscriber remains subscribed
/// until the upstream publisher terminates the subscription (§8.3), and the relay MUST NOT drop
/// the subscription without PUBLISH_DONE (§9.12). PUBLISH_DONE passes; so does a subscription
/// the relay visibly keeps (a new publisher of the namespace serves it).
pub async fn publisher_gone(env: Env) -> CheckOutput {
    let (p, s) = two(&env).await?;
    let sub = subscribe(&env, &s, &env.track("t"), SubOpts::default()).await?;
    p.upstream(&env, 1).await?;
    super::harness::write_group(&env, p.track(), 0, 0..2).await;
    arrived(&env, &sub, 2, "objects 0.0 and 0.1").await?;
    let Publisher { ep, ns, .. } = p;
    drop(ns);
    ep.close().await;
    env.step("PUBLISH_DONE after the publisher's session ended");
    let done = |d: PublishDone, note: &str| {
        format!(
            "PUBLISH_DONE 0x{:x} ({}) {:?}, stream count {}{note}",
            d.status_code,
            publish_done_name(d.status_code),
            d.reason.to_string(),
            d.stream_count
        )
    };
    if let Some(d) = sub.wait_done(Duration::from_secs(5)).await {
        return Ok(done(d, ""));
    }
    // No PUBLISH_DONE: the other reading is that the relay kept the subscription for the next
    // publisher of the namespace (§8.4). Then a new publisher gets a SUBSCRIBE and its objects
    // reach the subscriber.
    env.step(
        "no PUBLISH_DONE in 5 s: a new publisher of the namespace, to see the subscription kept",
    );
    let p2 = Publisher::start(&env, &["t"]).await?;
    let resumed = p2.ep.wait_served(T, |v| !v.is_empty()).await;
    if resumed {
        super::harness::write_group(&env, p2.track(), 1, 0..2).await;
    }
    let kept = resumed && sub.wait(T, |g| g.iter().any(|o| o.group == 1)).await;
    if let Some(d) = sub.done() {
        return Ok(done(d, " (later than 5 s after the publisher left)"));
    }
    if kept {
        return Ok(
            "no PUBLISH_DONE; the relay kept the subscription: a new publisher of the namespace \
             got a SUBSCRIBE and its group 1 reached the subscriber"
                .into(),
        );
    }
    Err(Failure::new(
        "PUBLISH_DONE once the publisher's session ended, or the subscription kept for a new \
         publisher",
        format!(
            "no PUBLISH_DONE within 5 s; a new publisher of the namespace {}; subscriber session {}",
            if resumed {
                "got a SUBSCRIBE but its objects did not arrive"
            } else {
                "got no SUBSCRIBE"
            },
            match s.session.close_reason() {
                Some(c) => c.to_string(),
                None => "open".into(),
            }
        ),
        "a subscriber remains subscribed until the upstream publisher terminates the \
         subscription (§8.3); a sender MUST NOT destroy subscription state until it sends \
         PUBLISH_DONE (§9.12)",
    )
    .into())
}
