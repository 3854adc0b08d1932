//! What the relay puts in the messages it sends on a subscriber's behalf: its own default
//! Subscriber Priority upstream (§7.3), a subscriber's DELIVERY_TIMEOUT not forwarded upstream,
//! and the publisher's DELIVERY_TIMEOUT passed on in its SUBSCRIBE_OK downstream (§9.2.1.2).
//! All SHOULD-level.

use super::fields::{raw_publisher, subscribe_ok, upstream_request};
use super::harness::{subscribe, Endpoint, Publisher, SubOpts};
use super::raw::Raw;
use super::{CheckOutput, Env, Verdict};
use crate::cases::Failure;
use moqlink_model::control::*;
use moqlink_model::params::{Parameter, VersionParameters};
use moqlink_model::GroupOrder;

/// `upstream-subscribe-default-priority`: for a subscriber with Subscriber Priority 3 the
/// relay's upstream SUBSCRIBE carries its own default, which should be mid-range (127 or 128).
pub async fn default_priority(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let opts = SubOpts {
        priority: 3,
        ..Default::default()
    };
    let _sub = subscribe(&env, &s, &env.track("t"), opts).await?;
    p.upstream(&env, 1).await?;
    let prio = p.ep.served()[0].subscribe.subscriber_priority;
    if prio == 3 {
        return Err(Verdict::NotApplicable(
            "the relay's upstream SUBSCRIBE copies the subscriber's priority 3 (no default of its \
             own; upstream-subscribe-own-priority reports that)"
                .into(),
        ));
    }
    if !(127..=128).contains(&prio) {
        return Err(Failure::new(
            "an upstream SUBSCRIBE with a mid-range default Subscriber Priority (e.g. 128)",
            format!("upstream SUBSCRIBE with Subscriber Priority {prio}"),
            "the relay's own priority for its upstream SUBSCRIBE (the subscriber asked for 3) \
             is not in the middle of the range",
        )
        .into());
    }
    Ok(format!(
        "upstream SUBSCRIBE with Subscriber Priority {prio}, for a downstream SUBSCRIBE with 3"
    ))
}

fn delivery_timeout(ms: u64) -> VersionParameters {
    let mut p = VersionParameters::new();
    p.push(Parameter::DeliveryTimeout { value: ms });
    p
}

/// SUBSCRIBE 0 for the check's track `t` with `params`, on a raw subscriber connection.
async fn raw_subscribe(env: &Env, params: VersionParameters) -> Result<Raw, Verdict> {
    let mut s = Raw::setup(env, "subscriber_connection_id", None).await?;
    s.send(&super::raw::subscribe_t(env, 0, params)).await?;
    Ok(s)
}

/// Waits for the relay's SUBSCRIBE at `publisher`.
async fn relay_subscribe(env: &Env, publisher: &mut Raw) -> Result<Subscribe, Verdict> {
    let up = upstream_request(env, publisher, "SUBSCRIBE", |m| {
        matches!(m, ControlMessage::Subscribe(_))
    })
    .await?;
    let ControlMessage::Subscribe(up) = up else {
        unreachable!("picked a SUBSCRIBE")
    };
    Ok(up)
}

fn ok_for(up: &Subscribe, parameters: VersionParameters) -> ControlMessage {
    ControlMessage::SubscribeOk(SubscribeOk {
        request_id: up.request_id,
        track_alias: up.request_id,
        expires: 0,
        group_order: GroupOrder::Ascending,
        largest_location: None,
        parameters,
    })
}

/// `delivery-timeout-not-forwarded`: a subscriber's SUBSCRIBE with DELIVERY_TIMEOUT 4321; the
/// relay's upstream SUBSCRIBE should not carry that value.
pub async fn timeout_not_forwarded(env: Env) -> CheckOutput {
    let mut publisher = raw_publisher(&env).await?;
    let _s = raw_subscribe(&env, delivery_timeout(4321)).await?;
    let up = relay_subscribe(&env, &mut publisher).await?;
    let _ = publisher.send(&ok_for(&up, VersionParameters::new())).await;
    match up.parameters.delivery_timeout() {
        Some(4321) => Err(Failure::new(
            "an upstream SUBSCRIBE without the subscriber's DELIVERY_TIMEOUT",
            "upstream SUBSCRIBE with DELIVERY_TIMEOUT 4321",
            "the subscriber's DELIVERY_TIMEOUT 4321 was forwarded upstream by a relay that \
             serves many subscriptions of one track",
        )
        .into()),
        Some(other) => Ok(format!(
            "upstream SUBSCRIBE with the relay's own DELIVERY_TIMEOUT {other}, for a subscriber's \
             4321"
        )),
        None => Ok("upstream SUBSCRIBE without DELIVERY_TIMEOUT, for a subscriber's 4321".into()),
    }
}

/// `delivery-timeout-passed-downstream`: the publisher's SUBSCRIBE_OK carries DELIVERY_TIMEOUT
/// 7654; the relay's SUBSCRIBE_OK to a subscriber that sent none should carry 7654.
pub async fn timeout_passed_downstream(env: Env) -> CheckOutput {
    let mut publisher = raw_publisher(&env).await?;
    let mut s = raw_subscribe(&env, VersionParameters::new()).await?;
    let up = relay_subscribe(&env, &mut publisher).await?;
    publisher.send(&ok_for(&up, delivery_timeout(7654))).await?;
    env.step("SUBSCRIBE_OK at the subscriber");
    let ok = subscribe_ok(&mut s, 0, "this check reads").await?;
    match ok.parameters.delivery_timeout() {
        Some(7654) => {
            Ok("SUBSCRIBE_OK downstream with the publisher's DELIVERY_TIMEOUT 7654".into())
        }
        got => Err(Failure::new(
            "SUBSCRIBE_OK downstream with DELIVERY_TIMEOUT 7654 (the upstream value)",
            match got {
                Some(v) => format!("SUBSCRIBE_OK with DELIVERY_TIMEOUT {v}"),
                None => "SUBSCRIBE_OK without DELIVERY_TIMEOUT".into(),
            },
            "the publisher's SUBSCRIBE_OK carried DELIVERY_TIMEOUT 7654; the relay did not pass \
             the upstream value on",
        )
        .into()),
    }
}
