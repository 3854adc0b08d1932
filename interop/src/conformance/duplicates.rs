//! One active subscription per track and session (§9.7): the relay, subscribing upstream for
//! two subscribers of one track, holds one subscription at the publisher; and a client that
//! subscribes twice to one track is a protocol violation the relay should close on.

use super::fields::subscribe_ok;
use super::harness::{subscribe, Endpoint, Publisher, SubOpts};
use super::raw::Raw;
use super::{CheckOutput, Env};
use crate::cases::Failure;
use moqlink_model::control::*;
use moqlink_model::params::VersionParameters;
use moqlink_model::SessionErrorCode;
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

/// `upstream-one-subscription-per-track`: two subscribers of track `t` on two connections,
/// both answered SUBSCRIBE_OK: the publisher holds one active SUBSCRIBE for `t`.
pub async fn one_upstream_subscription(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    let a = Endpoint::connect(&env, "first_subscriber_connection_id").await?;
    let _sa = subscribe(&env, &a, &env.track("t"), SubOpts::default()).await?;
    p.upstream(&env, 1).await?;
    let b = Endpoint::connect(&env, "second_subscriber_connection_id").await?;
    let _sb = subscribe(&env, &b, &env.track("t"), SubOpts::default()).await?;
    let served = p.ep.served();
    let active = served.iter().filter(|s| s.ended.is_none()).count();
    if active > 1 {
        return Err(Failure::new(
            "one active upstream SUBSCRIBE for track t",
            format!(
                "{active} active SUBSCRIBEs for t at the publisher (of {} received)",
                served.len()
            ),
            "the relay made multiple active subscriptions for one track within its session \
             with the publisher",
        )
        .into());
    }
    Ok(format!(
        "two subscribers answered SUBSCRIBE_OK; {} SUBSCRIBE(s) for t at the publisher, {active} \
         active",
        served.len()
    ))
}

fn subscribe_msg(id: u64, env: &Env) -> ControlMessage {
    super::raw::subscribe_t(env, id, VersionParameters::new())
}

/// `duplicate-subscription-closed`: a client's SUBSCRIBE for track `t`, answered SUBSCRIBE_OK,
/// then a second SUBSCRIBE for `t` on the same session: closed with PROTOCOL_VIOLATION.
pub async fn duplicate_subscription_closed(env: Env) -> CheckOutput {
    let _p = Publisher::start(&env, &["t"]).await?;
    let mut raw = Raw::setup(&env, "subscriber_connection_id", None).await?;
    raw.send(&subscribe_msg(0, &env)).await?;
    env.step("SUBSCRIBE_OK for the first SUBSCRIBE");
    subscribe_ok(&mut raw, 0, "this check repeats").await?;
    raw.send(&subscribe_msg(2, &env)).await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "a second SUBSCRIBE (request 2) for track t while the first (request 0) is active",
        )
        .await?)
}
