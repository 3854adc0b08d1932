//! Rules a peer breaks on purpose where the draft says the relay SHOULD close the session with
//! PROTOCOL_VIOLATION: a second answer to one request (§5.1, §6.2), an undefined Object Status
//! (§10.2.1.1) and a subgroup stream ending inside an object (§10.4). All are graded SHOULD.

use super::fields::{raw_publisher, upstream_request};
use super::harness::{DirectSub, Endpoint, SubOpts};
use super::raw::{describe, varint, Event, Raw};
use super::{CheckOutput, Env, Verdict};
use crate::cases::Failure;
use bytes::{BufMut, BytesMut};
use moqlink_model::control::*;
use moqlink_model::params::VersionParameters;
use moqlink_model::{GroupOrder, SessionErrorCode};
use moqlink_transport::{Connection, SendStream};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

fn subscribe_ok_msg(id: u64) -> ControlMessage {
    ControlMessage::SubscribeOk(SubscribeOk {
        request_id: id,
        track_alias: id,
        expires: 0,
        group_order: GroupOrder::Ascending,
        largest_location: None,
        parameters: VersionParameters::new(),
    })
}

/// A raw publisher holding the relay's SUBSCRIBE for track `t` (answered SUBSCRIBE_OK with
/// alias = its Request ID), and the subscriber's pending subscription.
async fn upstream_subscribed(
    env: &Env,
) -> Result<(Raw, Endpoint, tokio::task::JoinHandle<()>, u64), Verdict> {
    let mut raw = raw_publisher(env).await?;
    let s = Endpoint::connect(env, "subscriber_connection_id").await?;
    let session = s.session.clone();
    let name = env.track("t");
    let pending = tokio::spawn(async move {
        if let Ok(sub) = DirectSub::subscribe(&session, &name, SubOpts::default()).await {
            // Keep the subscription until the check ends.
            std::future::pending::<()>().await;
            drop(sub);
        }
    });
    let sub = upstream_request(env, &mut raw, "SUBSCRIBE", |m| {
        matches!(m, ControlMessage::Subscribe(_))
    })
    .await?;
    let id = sub.request_id().unwrap_or_default();
    raw.send(&subscribe_ok_msg(id)).await?;
    Ok((raw, s, pending, id))
}

/// `subscribe-answered-twice`: the publisher answers the relay's SUBSCRIBE with SUBSCRIBE_OK
/// twice.
pub async fn subscribe_answered_twice(env: Env) -> CheckOutput {
    let (mut raw, _s, pending, id) = upstream_subscribed(&env).await?;
    raw.send(&subscribe_ok_msg(id)).await?;
    let r = raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "a second SUBSCRIBE_OK for the relay's SUBSCRIBE",
        )
        .await;
    pending.abort();
    Ok(r?)
}

/// `publish-namespace-answered-twice`: a namespace subscriber answers the relay's
/// PUBLISH_NAMESPACE with PUBLISH_NAMESPACE_OK twice.
pub async fn publish_namespace_answered_twice(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "subscriber_connection_id", Some(64)).await?;
    raw.send(&ControlMessage::SubscribeNamespace(SubscribeNamespace {
        request_id: 0,
        namespace_prefix: env.namespace(),
        parameters: VersionParameters::new(),
    }))
    .await?;
    env.step("SUBSCRIBE_NAMESPACE_OK");
    loop {
        match raw.next(T).await {
            Event::Message(ControlMessage::SubscribeNamespaceOk(r)) if r.request_id == 0 => break,
            Event::Message(ControlMessage::SubscribeNamespaceError(e)) if e.request_id == 0 => {
                return Err(super::refused(
                    moqlink_transport::session::SessionError::Rejected {
                        kind: moqlink_model::control::MessageType::SubscribeNamespaceError,
                        code: e.error_code,
                        reason: e.reason.to_string(),
                    },
                    "SUBSCRIBE_NAMESPACE_OK",
                    "the relay refused the SUBSCRIBE_NAMESPACE this check needs",
                ))
            }
            Event::Message(_) => {}
            other => {
                return Err(Verdict::NotApplicable(format!(
                    "this check needs SUBSCRIBE_NAMESPACE answered; the relay sent {}",
                    describe(&other)
                )))
            }
        }
    }
    let p = Endpoint::connect(&env, "publisher_connection_id").await?;
    let session = p.session.clone();
    let ns = env.namespace_with(&["x"]);
    let pending = tokio::spawn(async move {
        // Held until the check ends: dropping it would send PUBLISH_NAMESPACE_DONE.
        let _publication = session
            .publish_namespace(ns, VersionParameters::new())
            .await;
        std::future::pending::<()>().await;
    });
    let m = upstream_request(&env, &mut raw, "PUBLISH_NAMESPACE", |m| {
        matches!(m, ControlMessage::PublishNamespace(_))
    })
    .await;
    let m = match m {
        Ok(m) => m,
        Err(v) => {
            pending.abort();
            return Err(v);
        }
    };
    let id = m.request_id().unwrap_or_default();
    let ok = ControlMessage::PublishNamespaceOk(RequestRef { request_id: id });
    raw.send(&ok).await?;
    raw.send(&ok).await?;
    let r = raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "a second PUBLISH_NAMESPACE_OK for the relay's PUBLISH_NAMESPACE",
        )
        .await;
    pending.abort();
    Ok(r?)
}

/// Opens a subgroup stream for `alias` (type 0x10: Subgroup ID 0, no extensions), group 0,
/// priority 128, writes `objects` after the header and finishes it.
async fn write_stream(raw: &Raw, alias: u64, objects: &[u8]) -> Result<(), Failure> {
    let mut b = BytesMut::new();
    varint(&mut b, 0x10);
    varint(&mut b, alias);
    varint(&mut b, 0);
    b.put_u8(128);
    b.put_slice(objects);
    let mut s = raw.conn.open_uni().await.map_err(|e| {
        Failure::new(
            "a data stream",
            e.to_string(),
            "could not open a data stream",
        )
    })?;
    s.write_chunk(b.freeze())
        .await
        .map_err(|e| Failure::new("the data stream written", e.to_string(), "local stream"))?;
    s.finish()
        .map_err(|e| Failure::new("the data stream finished", e.to_string(), "local stream"))
}

/// `object-status-undefined`: the publisher sends object 0.0 with Object Status 0x2.
pub async fn status_undefined(env: Env) -> CheckOutput {
    let (mut raw, _s, pending, alias) = upstream_subscribed(&env).await?;
    let mut o = BytesMut::new();
    varint(&mut o, 0); // Object ID delta
    varint(&mut o, 0); // Payload Length
    varint(&mut o, 0x2); // Object Status: not defined
    write_stream(&raw, alias, &o).await?;
    let r = raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "object 0.0 with Object Status 0x2 from the publisher",
        )
        .await;
    pending.abort();
    Ok(r?)
}

/// `subgroup-fin-mid-object`: the publisher's subgroup stream ends (FIN) 3 bytes into an
/// object that declared 10.
pub async fn fin_mid_object(env: Env) -> CheckOutput {
    let (mut raw, _s, pending, alias) = upstream_subscribed(&env).await?;
    let mut o = BytesMut::new();
    varint(&mut o, 0); // Object ID delta
    varint(&mut o, 10); // Payload Length
    o.put_slice(b"abc");
    write_stream(&raw, alias, &o).await?;
    let r = raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "a subgroup stream ending with FIN 3 bytes into a 10-byte object",
        )
        .await;
    pending.abort();
    Ok(r?)
}
