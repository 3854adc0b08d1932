//! A publisher that answers the relay's SUBSCRIBE itself and writes its data streams and
//! datagrams by hand ([`RawPublisher`]), and the pieces it is made of, for checks that need to
//! choose the Track Alias or send what the session layer would not.

use super::{describe, within, DirectSub, Endpoint, ANSWER};
use crate::cases::Failure;
use crate::conformance::{refused, Env, Verdict};
use bytes::Bytes;
use moqlink_model::control::*;
use moqlink_model::params::VersionParameters;
use moqlink_model::GroupOrder;
use moqlink_transport::connection::any::{AnyConnection, AnySend};
use moqlink_transport::session::{IncomingRequest, NamespacePublication};
use moqlink_transport::{Connection, SendStream};
use std::sync::Mutex;
use tokio::sync::mpsc;

/// SUBSCRIBE_OK for `request_id` with Track Alias `alias`: no expiry, ascending, no content.
pub fn subscribe_ok(request_id: u64, alias: u64) -> ControlMessage {
    ControlMessage::SubscribeOk(SubscribeOk {
        request_id,
        track_alias: alias,
        expires: 0,
        group_order: GroupOrder::Ascending,
        largest_location: None,
        parameters: VersionParameters::new(),
    })
}

/// Waits for the relay's SUBSCRIBE at a publisher that intercepts them.
pub async fn upstream_subscribe(
    env: &Env,
    upstream: &mut mpsc::UnboundedReceiver<IncomingRequest>,
) -> Result<IncomingRequest, Failure> {
    env.step("the relay's SUBSCRIBE at the publisher");
    within(ANSWER, "the relay's SUBSCRIBE", upstream.recv())
        .await?
        .ok_or_else(|| {
            Failure::new(
                "the relay's SUBSCRIBE",
                "nothing",
                "publisher session ended",
            )
        })
}

/// A publisher that answered the relay's SUBSCRIBE itself (with the Track Alias it was given)
/// and writes its data by hand, and a subscriber of its track `t` through the relay.
pub struct RawPublisher {
    /// The publisher's connection.
    pub p: Endpoint,
    /// The subscriber's connection.
    pub s: Endpoint,
    /// The subscription, read straight off its streams and datagrams.
    pub sub: DirectSub,
    _ns: NamespacePublication<AnyConnection>,
    _followups: Mutex<Box<dyn std::any::Any + Send>>,
}

impl RawPublisher {
    /// Announces the check's namespace, subscribes to track `t` through the relay (connection
    /// ID under `key`) and answers the relay's SUBSCRIBE with SUBSCRIBE_OK, Track Alias `alias`;
    /// further upstream SUBSCRIBEs (a relay that does not aggregate) are refused.
    pub async fn start(env: &Env, alias: u64, key: &'static str) -> Result<RawPublisher, Verdict> {
        let p = Endpoint::connect(env, "publisher_connection_id").await?;
        let mut upstream = p.intercept(MessageType::Subscribe);
        let ns = p.announce(env, env.namespace()).await?;
        let s = Endpoint::connect(env, key).await?;
        let name = env.track("t");
        let pending = s.subscribe_later(name.clone());
        let req = upstream_subscribe(env, &mut upstream).await?;
        let ControlMessage::Subscribe(up) = req.message else {
            return Err(Failure::new(
                "SUBSCRIBE",
                req.message.message_type().name(),
                "unexpected request at the publisher",
            )
            .into());
        };
        req.responder
            .accept(subscribe_ok(up.request_id, alias))
            .await
            .map_err(|e| Failure::new("SUBSCRIBE_OK sent", describe(&e), "local session"))?;
        tokio::spawn(async move {
            while let Some(r) = upstream.recv().await {
                let _ = r
                    .responder
                    .reject(
                        moqlink_model::codes::RequestErrorCode::INTERNAL_ERROR,
                        "one upstream subscription",
                    )
                    .await;
            }
        });
        env.step(format!("SUBSCRIBE_OK for {name}"));
        let role = key.trim_end_matches("_connection_id");
        let sub = within(ANSWER, &format!("SUBSCRIBE_OK at the {role}"), pending)
            .await?
            .map_err(|e| Failure::new("subscribe task", e.to_string(), "local"))?
            .map_err(|e| refused(e, "SUBSCRIBE_OK", &format!("the {role} was refused")))?;
        Ok(RawPublisher {
            p,
            s,
            sub,
            _ns: ns,
            _followups: Mutex::new(Box::new(req.followups)),
        })
    }

    /// Opens a data stream on the publisher's connection and writes `bytes`.
    pub async fn stream(&self, bytes: Bytes) -> Result<AnySend, Failure> {
        let mut st = self
            .p
            .session
            .connection()
            .open_uni()
            .await
            .map_err(|e| Failure::new("a data stream", e.to_string(), "could not open"))?;
        write_data(&mut st, bytes).await?;
        Ok(st)
    }

    /// Sends one datagram on the publisher's connection.
    pub fn datagram(&self, bytes: Bytes) -> Result<(), Failure> {
        self.p
            .session
            .connection()
            .send_datagram(bytes)
            .map_err(|e| Failure::new("a datagram sent", e.to_string(), "local connection"))
    }
}

/// Writes `bytes` on a data stream the check opened.
pub async fn write_data(st: &mut AnySend, bytes: Bytes) -> Result<(), Failure> {
    st.write_chunk(bytes).await.map_err(|e| {
        Failure::new(
            "data written",
            e.to_string(),
            "the relay stopped the stream",
        )
    })
}
