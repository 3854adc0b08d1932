//! What the relay itself sends: no parameter type repeated in one message unless its definition
//! allows it (§9.2), across SERVER_SETUP, an upstream SUBSCRIBE and a downstream SUBSCRIBE_OK.

use super::fields::{raw_publisher, subscribe_ok, upstream_request};
use super::raw::Raw;
use super::{CheckOutput, Env, Verdict};
use crate::cases::Failure;
use moqlink_model::control::*;
use moqlink_model::params::{Parameter, SetupParameter, VersionParameters};
use moqlink_model::GroupOrder;
use std::collections::BTreeMap;

/// The repeated parameter types among `keys` (those whose definition allows one instance).
fn repeated(keys: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut n: BTreeMap<u64, usize> = BTreeMap::new();
    for k in keys {
        *n.entry(k).or_default() += 1;
    }
    n.into_iter()
        .filter(|(_, c)| *c > 1)
        .map(|(k, _)| k)
        .collect()
}

/// Keys of the version parameters that may appear once (not AUTHORIZATION TOKEN, not unknown).
fn version_keys(p: &VersionParameters) -> Vec<u64> {
    p.0.iter()
        .filter_map(|x| match x {
            Parameter::DeliveryTimeout { .. } => Some(0x02),
            Parameter::MaxCacheDuration { .. } => Some(0x04),
            _ => None,
        })
        .collect()
}

/// `relay-parameters-not-repeated`: the relay's SERVER_SETUPs, its upstream SUBSCRIBE (for a
/// subscriber that sent DELIVERY_TIMEOUT) and its SUBSCRIBE_OK downstream (for a publisher
/// that sent DELIVERY_TIMEOUT and MAX_CACHE_DURATION) repeat no parameter type.
pub async fn parameters_not_repeated(env: Env) -> CheckOutput {
    let mut seen: Vec<(String, Vec<u64>)> = Vec::new();
    let mut publisher = raw_publisher(&env).await?;
    let mut subscriber = Raw::setup(&env, "subscriber_connection_id", None).await?;
    for (who, raw) in [("publisher", &publisher), ("subscriber", &subscriber)] {
        let s = raw.server.as_ref().expect("Raw::setup read SERVER_SETUP");
        let keys = s.parameters.0.iter().filter_map(|p| match p {
            SetupParameter::AuthorizationToken { .. } | SetupParameter::Unknown { .. } => None,
            SetupParameter::Path { .. } => Some(0x01),
            SetupParameter::MaxRequestId { .. } => Some(0x02),
            SetupParameter::MaxAuthTokenCacheSize { .. } => Some(0x04),
            SetupParameter::Authority { .. } => Some(0x05),
            SetupParameter::Implementation { .. } => Some(0x07),
        });
        seen.push((format!("SERVER_SETUP to the {who}"), repeated(keys)));
    }
    let mut params = VersionParameters::new();
    params.push(Parameter::DeliveryTimeout { value: 10_000 });
    subscriber
        .send(&super::raw::subscribe_t(&env, 0, params))
        .await?;
    let up = upstream_request(&env, &mut publisher, "SUBSCRIBE", |m| {
        matches!(m, ControlMessage::Subscribe(_))
    })
    .await?;
    let ControlMessage::Subscribe(up) = up else {
        unreachable!("picked a SUBSCRIBE")
    };
    seen.push((
        "the relay's upstream SUBSCRIBE".into(),
        repeated(version_keys(&up.parameters).into_iter()),
    ));
    let mut ok_params = VersionParameters::new();
    ok_params.push(Parameter::DeliveryTimeout { value: 10_000 });
    ok_params.push(Parameter::MaxCacheDuration { value: 60_000 });
    publisher
        .send(&ControlMessage::SubscribeOk(SubscribeOk {
            request_id: up.request_id,
            track_alias: up.request_id,
            expires: 0,
            group_order: GroupOrder::Ascending,
            largest_location: None,
            parameters: ok_params,
        }))
        .await?;
    env.step("SUBSCRIBE_OK at the subscriber");
    let ok = subscribe_ok(&mut subscriber, 0, "this check needs").await;
    let ok = match ok {
        Ok(ok) => ok,
        Err(Verdict::Fail(f)) if f.received.contains("duplicate_parameter") => {
            return Err(Failure::new(
                "a SUBSCRIBE_OK without a repeated parameter type",
                f.received,
                "senders MUST NOT repeat the same parameter type in a message (§9.2)",
            )
            .into())
        }
        Err(v) => return Err(v),
    };
    seen.push((
        "the relay's SUBSCRIBE_OK".into(),
        repeated(version_keys(&ok.parameters).into_iter()),
    ));
    let bad: Vec<String> = seen
        .iter()
        .filter(|(_, r)| !r.is_empty())
        .map(|(what, r)| format!("{what} repeats parameter type(s) {r:x?}"))
        .collect();
    let names: Vec<&str> = seen.iter().map(|(w, _)| w.as_str()).collect();
    if let Some(first) = bad.first() {
        return Err(Failure::new(
            "no parameter type repeated in one message",
            first.clone(),
            "senders MUST NOT repeat the same parameter type in a message unless its definition \
             allows it (§9.2)",
        )
        .into());
    }
    Ok(format!(
        "no repeated parameter type in {}",
        names.join(", ")
    ))
}
