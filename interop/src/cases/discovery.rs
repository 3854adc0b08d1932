//! `namespace-discovery`: a subscriber that knows only the namespace learns the track name via
//! SUBSCRIBE_NAMESPACE; the relay answers with PUBLISH_NAMESPACE and/or PUBLISH.

use super::control::{announce_ns, close_both, AbortOnDrop};
use super::{describe_error, run_track, within, CaseOutput, Ctx, Failure, Peer, Record};
use moqlink_model::codes::PublishErrorCode;
use moqlink_model::control::{ControlMessage, RequestRef};
use moqlink_model::params::VersionParameters;
use moqlink_transport::session::{PublishAccept, SessionError};
use moqlink_transport::track::{TrackConfig, TrackName, TrackProducer};
use std::time::{Duration, Instant};

/// How long the subscriber waits for the PUBLISH naming the track.
const DISCOVERY: Duration = Duration::from_secs(4);

/// A publishes the namespace and PUBLISHes `test-track`; B subscribes to the namespace and must
/// receive a PUBLISH naming `test-track`, which it accepts with PUBLISH_OK.
pub async fn namespace_discovery(ctx: &Ctx, record: &Record) -> CaseOutput {
    let name = run_track("namespace-discovery");
    let a = Peer::connect(ctx, record, "publisher_connection_id").await?;
    let track = TrackProducer::new(name.clone(), TrackConfig::default());
    a.serve(&track);
    let _ns = announce_ns(&a, record, name.namespace.clone()).await?;
    // A relay may hold PUBLISH_OK until a subscriber shows up, so PUBLISH runs on its own.
    let session = a.session.clone();
    let t = track.clone();
    let mut publishing = AbortOnDrop(tokio::spawn(async move {
        session.publish(&t, true, VersionParameters::new()).await
    }));
    record.step("PUBLISH_OK for the publisher");
    let publish_ok =
        match tokio::time::timeout(Duration::from_millis(1500), &mut publishing.0).await {
            Ok(Ok(Ok(p))) => format!("PUBLISH_OK (forward={})", u8::from(p.ok.forward)),
            // Carry on: what the relay tells namespace subscribers is still worth reporting.
            Ok(Ok(Err(e))) => format!("PUBLISH refused with {}", describe_error(&e)),
            Ok(Err(e)) => format!("PUBLISH task failed: {e}"),
            Err(_) => "no PUBLISH_OK yet".to_string(),
        };

    let b = Peer::connect(ctx, record, "subscriber_connection_id").await?;
    let mut requests = b.take_requests();
    record.step("SUBSCRIBE_NAMESPACE_OK");
    let answer = within(
        Duration::from_secs(2),
        "SUBSCRIBE_NAMESPACE_OK",
        b.session
            .subscribe_namespace(name.namespace.clone(), VersionParameters::new()),
    )
    .await?;
    let _nsub = answer.map_err(|e| {
        Failure::new(
            "SUBSCRIBE_NAMESPACE_OK",
            describe_error(&e),
            format!("the relay refused SUBSCRIBE_NAMESPACE {}", name.namespace),
        )
    })?;

    record.step("a PUBLISH naming test-track at the subscriber");
    let deadline = Instant::now() + DISCOVERY;
    let mut heard = Vec::new();
    let mut found = None;
    while found.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(req)) = tokio::time::timeout(left, requests.recv()).await else {
            break;
        };
        match &req.message {
            ControlMessage::PublishNamespace(m) => {
                heard.push(format!("PUBLISH_NAMESPACE {} (answered OK)", m.namespace));
                let ok = ControlMessage::PublishNamespaceOk(RequestRef {
                    request_id: m.request_id,
                });
                if let Err(e) = req.responder.accept(ok).await {
                    tracing::debug!(error = %e, "PUBLISH_NAMESPACE_OK not sent");
                }
            }
            ControlMessage::Publish(m) => {
                let named = TrackName {
                    namespace: m.namespace.clone(),
                    name: m.name.clone(),
                };
                if named == name {
                    heard.push(format!("PUBLISH {named} (track alias {})", m.track_alias));
                    found = Some(
                        b.session
                            .accept_publish(req, PublishAccept::default())
                            .await,
                    );
                } else {
                    heard.push(format!("PUBLISH {named} (refused UNINTERESTED)"));
                    let _ = req
                        .responder
                        .reject(PublishErrorCode::Uninterested, "not the track looked for")
                        .await;
                }
            }
            other => {
                // Only PUBLISH and PUBLISH_NAMESPACE are routed here.
                heard.push(other.message_type().name().to_string());
            }
        }
    }
    let heard_text = if heard.is_empty() {
        "nothing".to_string()
    } else {
        heard.join(", ")
    };
    let sub = match found {
        Some(Ok(sub)) => sub,
        Some(Err(e)) => {
            return Err(Failure::new(
                "PUBLISH_OK sent for the discovered track",
                match e {
                    SessionError::Closed(c) => c.to_string(),
                    e => e.to_string(),
                },
                "accepting the relay's PUBLISH failed",
            ))
        }
        None => {
            return Err(Failure::new(
                format!("PUBLISH for {} after SUBSCRIBE_NAMESPACE", name),
                format!(
                    "subscriber got {heard_text} within {} ms; publisher's PUBLISH: {publish_ok}",
                    DISCOVERY.as_millis()
                ),
                "the subscriber did not learn the track name from the relay",
            ))
        }
    };
    let note = format!(
        "discovered {} via SUBSCRIBE_NAMESPACE {}: {heard_text}; answered PUBLISH_OK; publisher \
         got {publish_ok}",
        name.name, name.namespace
    );
    record.step("a clean close");
    drop(sub);
    close_both(b, a).await?;
    Ok(note)
}
