//! DELIVERY_TIMEOUT (§9.2.1.2, §10.4.3): a subscriber that asks for a short delivery timeout
//! and holds the relay back with flow control must see the subgroup stream reset, not the late
//! objects delivered with a FIN. The subgroup (640 KB) is small enough for the relay to take
//! whole from the publisher (QUIC stacks grant a stream 1 MB or more), so every object's
//! timeout runs from its prompt arrival at the relay.

use super::harness::{payload, within, Endpoint, Publisher};
use super::{refused, CheckOutput, Env};
use crate::cases::Failure;
use bytes::Bytes;
use moqlink_model::control::*;
use moqlink_model::params::{Parameter, VersionParameters};
use moqlink_model::GroupOrder;
use moqlink_transport::data::SubgroupEvent;
use moqlink_transport::track::{Object, SubgroupInfo};
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
const DELIVERY_TIMEOUT: u64 = 0x2;

/// `delivery-timeout-reset`: SUBSCRIBE with DELIVERY TIMEOUT 300 ms; the publisher writes 40
/// objects of 16 KB on one subgroup while the subscriber's window is 16 KB and it reads nothing
/// for 2 s.
pub async fn delivery_timeout_reset(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    let client = env.ctx.client.with_receive_window(WINDOW);
    let s = Endpoint::connect_via(
        &env,
        "subscriber_connection_id",
        &client,
        env.ctx.session.clone(),
    )
    .await?;
    let name = env.track("t");
    let mut params = VersionParameters::new();
    params.push(Parameter::DeliveryTimeout { value: TIMEOUT_MS });
    env.step("SUBSCRIBE_OK");
    let mut req = s
        .session
        .request(|request_id| {
            ControlMessage::Subscribe(Subscribe {
                request_id,
                namespace: name.namespace.clone(),
                name: name.name.clone(),
                subscriber_priority: 128,
                group_order: GroupOrder::Original,
                forward: true,
                filter: Filter::LargestObject,
                parameters: params,
            })
        })
        .await
        .map_err(|e| Failure::new("SUBSCRIBE sent", e.to_string(), "local session"))?;
    let ok = match within(T, "SUBSCRIBE_OK", req.reply()).await? {
        Ok(ControlMessage::SubscribeOk(ok)) => ok,
        Ok(other) => {
            return Err(Failure::new(
                "SUBSCRIBE_OK",
                other.message_type().name(),
                "unexpected reply",
            )
            .into())
        }
        Err(e) => {
            return Err(refused(
                e,
                "SUBSCRIBE_OK",
                "the relay refused a SUBSCRIBE with DELIVERY TIMEOUT",
            ))
        }
    };
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
