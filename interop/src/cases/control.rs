//! The control-plane cases: `announce-only`, `publish-namespace-done`, `subscribe-error`,
//! `announce-subscribe` and `subscribe-before-announce`.

use super::{
    describe_error, request_error_name, stale_state_hint, test_namespace, test_track, within,
    CaseOutput, Ctx, Failure, Peer, Record,
};
use moqlink_model::params::VersionParameters;
use moqlink_model::TrackNamespace;
use moqlink_transport::client::AnySession;
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::session::{
    NamespacePublication, SessionError, SubscribeOptions, Subscription,
};
use moqlink_transport::track::{TrackConfig, TrackName, TrackProducer};
use std::time::{Duration, Instant};

/// How long a PUBLISH_NAMESPACE may wait for its answer.
const ANSWER: Duration = Duration::from_millis(1500);

/// Sends PUBLISH_NAMESPACE for `moq-test/interop` and requires PUBLISH_NAMESPACE_OK.
pub(super) async fn announce(
    peer: &Peer,
    record: &Record,
) -> Result<NamespacePublication<AnyConnection>, Failure> {
    announce_ns(peer, record, test_namespace()).await
}

/// Sends PUBLISH_NAMESPACE for `namespace` and requires PUBLISH_NAMESPACE_OK.
pub(super) async fn announce_ns(
    peer: &Peer,
    record: &Record,
    namespace: TrackNamespace,
) -> Result<NamespacePublication<AnyConnection>, Failure> {
    record.step("PUBLISH_NAMESPACE_OK");
    let answer = within(
        ANSWER,
        "PUBLISH_NAMESPACE_OK",
        peer.session
            .publish_namespace(namespace.clone(), VersionParameters::new()),
    )
    .await?;
    answer.map_err(|e| {
        Failure::new(
            "PUBLISH_NAMESPACE_OK",
            describe_error(&e),
            format!("the relay did not accept PUBLISH_NAMESPACE {namespace}"),
        )
    })
}

/// `announce-only`: PUBLISH_NAMESPACE, PUBLISH_NAMESPACE_OK, close.
pub async fn announce_only(ctx: &Ctx, record: &Record) -> CaseOutput {
    let peer = Peer::connect(ctx, record, "connection_id").await?;
    let ns = announce(&peer, record).await?;
    record.step("a clean close");
    peer.close().await?;
    // Dropped after the close, so no PUBLISH_NAMESPACE_DONE goes out.
    drop(ns);
    Ok(format!(
        "PUBLISH_NAMESPACE_OK received for {}",
        test_namespace()
    ))
}

/// `publish-namespace-done`: as `announce-only`, then PUBLISH_NAMESPACE_DONE before the close.
pub async fn publish_namespace_done(ctx: &Ctx, record: &Record) -> CaseOutput {
    let peer = Peer::connect(ctx, record, "connection_id").await?;
    let ns = announce(&peer, record).await?;
    record.step("sending PUBLISH_NAMESPACE_DONE");
    ns.done().await.map_err(|e| {
        Failure::new(
            "PUBLISH_NAMESPACE_DONE sent",
            e.to_string(),
            "could not send PUBLISH_NAMESPACE_DONE",
        )
    })?;
    record.step("a clean close");
    peer.close().await?;
    Ok("PUBLISH_NAMESPACE_OK received, PUBLISH_NAMESPACE_DONE sent".into())
}

/// How a SUBSCRIBE_ERROR reads, with a note when the code is not TRACK_DOES_NOT_EXIST.
fn subscribe_error_note(code: u64, reason: &str) -> String {
    let mut s = format!(
        "SUBSCRIBE_ERROR code 0x{code:x} ({}) reason {reason:?}",
        request_error_name(moqlink_model::control::MessageType::SubscribeError, code)
    );
    if code != 0x4 {
        s.push_str("; strict clients expect TRACK_DOES_NOT_EXIST (0x4) for an unknown track");
    }
    s
}

/// `subscribe-error`: SUBSCRIBE to `nonexistent/namespace` / `test-track` must be refused.
pub async fn subscribe_error(ctx: &Ctx, record: &Record) -> CaseOutput {
    let peer = Peer::connect(ctx, record, "connection_id").await?;
    record.step("SUBSCRIBE_ERROR");
    let name = TrackName::new("nonexistent/namespace", "test-track");
    let answer = within(
        Duration::from_millis(1500),
        "SUBSCRIBE_ERROR",
        peer.session
            .subscribe(name.clone(), SubscribeOptions::default()),
    )
    .await?;
    let note = match answer {
        Err(SessionError::Rejected {
            kind: moqlink_model::control::MessageType::SubscribeError,
            code,
            reason,
        }) => subscribe_error_note(code, &reason),
        Ok(sub) => {
            return Err(Failure::new(
                "SUBSCRIBE_ERROR",
                format!("SUBSCRIBE_OK (track alias {})", sub.track_alias()),
                format!("the relay accepted a SUBSCRIBE for {name}, which nobody publishes"),
            ))
        }
        Err(e) => {
            return Err(Failure::new(
                "SUBSCRIBE_ERROR",
                describe_error(&e),
                "no SUBSCRIBE_ERROR for an unknown track",
            ))
        }
    };
    record.step("a clean close");
    peer.close().await?;
    Ok(note)
}

/// The publisher's side of the namespace cases: connect, serve `test-track`, announce.
async fn publisher(
    ctx: &Ctx,
    record: &Record,
) -> Result<(Peer, TrackProducer, NamespacePublication<AnyConnection>), Failure> {
    let peer = Peer::connect(ctx, record, "publisher_connection_id").await?;
    let track = TrackProducer::new(test_track(), TrackConfig::default());
    peer.serve(&track);
    let ns = announce(&peer, record).await?;
    Ok((peer, track, ns))
}

/// Why a SUBSCRIBE to a published track failed: not routed, or (an answer other than an error
/// while the publisher heard nothing) answered from an ended session's state.
pub(super) fn unrouted(e: &SessionError, publisher_seen: &str, track: &TrackName) -> String {
    let rejected = matches!(e, SessionError::Rejected { .. });
    match stale_state_hint(publisher_seen) {
        Some(hint) if !rejected => hint,
        _ => format!("the relay did not route the SUBSCRIBE for {track}"),
    }
}

/// Closes the connections of a two-connection case together.
pub(super) async fn close_both(a: Peer, b: Peer) -> Result<(), Failure> {
    let (ra, rb) = tokio::join!(a.close(), b.close());
    ra.and(rb)
}

/// `announce-subscribe`: A announces and serves `test-track`; B's SUBSCRIBE must be routed to A
/// and answered with SUBSCRIBE_OK on both hops.
pub async fn announce_subscribe(ctx: &Ctx, record: &Record) -> CaseOutput {
    let (a, _track, ns) = publisher(ctx, record).await?;
    let b = Peer::connect(ctx, record, "subscriber_connection_id").await?;
    record.step("SUBSCRIBE_OK for the subscriber");
    let answer = within(
        Duration::from_millis(1500),
        "SUBSCRIBE_OK",
        b.session
            .subscribe(test_track(), SubscribeOptions::default()),
    )
    .await
    .map_err(|f| Failure {
        received: format!("{}; publisher received: {}", f.received, a.seen()),
        ..f
    })?;
    let sub = answer.map_err(|e| {
        Failure::new(
            "SUBSCRIBE_OK",
            format!("{}; publisher received: {}", describe_error(&e), a.seen()),
            unrouted(&e, &a.seen(), &test_track()),
        )
    })?;
    record.step("the forwarded SUBSCRIBE at the publisher");
    if within(Duration::from_millis(500), "", a.wait_served(1))
        .await
        .is_err()
    {
        return Err(Failure::new(
            "the relay forwards the SUBSCRIBE to the publisher, which answers SUBSCRIBE_OK",
            format!(
                "subscriber got SUBSCRIBE_OK; publisher received: {}",
                a.seen()
            ),
            stale_state_hint(&a.seen()).unwrap_or_else(|| {
                "the relay answered SUBSCRIBE_OK without subscribing upstream".into()
            }),
        ));
    }
    let note = format!(
        "publisher got PUBLISH_NAMESPACE_OK and answered {} forwarded SUBSCRIBE(s); subscriber got \
         SUBSCRIBE_OK (track alias {})",
        a.subscribes_served(),
        sub.track_alias()
    );
    record.step("a clean close");
    drop(sub);
    close_both(b, a).await?;
    drop(ns);
    Ok(note)
}

/// `subscribe-before-announce`: B subscribes first, A announces 500 ms later; SUBSCRIBE_OK and
/// SUBSCRIBE_ERROR both pass.
pub async fn subscribe_before_announce(ctx: &Ctx, record: &Record) -> CaseOutput {
    let start = Instant::now();
    let b = Peer::connect(ctx, record, "subscriber_connection_id").await?;
    let session: AnySession = b.session.clone();
    let pending = tokio::spawn(async move {
        session
            .subscribe(test_track(), SubscribeOptions::default())
            .await
    });
    // Aborts the SUBSCRIBE task however the case ends.
    let mut pending = AbortOnDrop(pending);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (a, _track, ns) = publisher(ctx, record).await?;
    record.step("SUBSCRIBE_OK or SUBSCRIBE_ERROR for the early SUBSCRIBE");
    // Leave time for both closes within the 3.5 s limit.
    let left = Duration::from_millis(3000).saturating_sub(start.elapsed());
    let answer: Result<Subscription<AnyConnection>, SessionError> =
        match tokio::time::timeout(left, &mut pending.0).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(SessionError::Unexpected(format!("subscribe task: {e}"))),
            Err(_) => {
                return Err(Failure::new(
                    "SUBSCRIBE_OK or SUBSCRIBE_ERROR",
                    format!(
                        "no answer {} ms after the SUBSCRIBE; publisher received: {}",
                        start.elapsed().as_millis(),
                        a.seen()
                    ),
                    "the relay left the early SUBSCRIBE unanswered",
                ))
            }
        };
    let note = match answer {
        Ok(sub) => format!(
            "SUBSCRIBE_OK after the delayed PUBLISH_NAMESPACE (track alias {}); publisher \
             answered {} forwarded SUBSCRIBE(s)",
            sub.track_alias(),
            a.subscribes_served()
        ),
        Err(SessionError::Rejected {
            kind: moqlink_model::control::MessageType::SubscribeError,
            code,
            reason,
        }) => format!(
            "{} (the relay did not hold the early SUBSCRIBE)",
            subscribe_error_note(code, &reason)
        ),
        Err(e) => {
            return Err(Failure::new(
                "SUBSCRIBE_OK or SUBSCRIBE_ERROR",
                describe_error(&e),
                "the early SUBSCRIBE failed without an answer",
            ))
        }
    };
    record.step("a clean close");
    close_both(b, a).await?;
    drop(ns);
    Ok(note)
}

/// Aborts a task when dropped.
pub(super) struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::super::run_track;
    use super::*;

    #[test]
    fn cases_with_free_names_use_a_fresh_namespace_each_run() {
        let (a, b) = (run_track("fetch"), run_track("fetch"));
        assert_ne!(a.namespace, b.namespace);
        assert_ne!(a.namespace, test_namespace());
        assert_eq!(a.namespace.to_string().split('/').next(), Some("moq-test"));
    }

    #[test]
    fn an_answer_the_publisher_never_heard_of_is_called_stale_state() {
        let t = test_track();
        // What a relay that kept an ended publisher's track answers: PUBLISH_DONE at once.
        let done = SessionError::Unexpected("PUBLISH_DONE in reply to SUBSCRIBE".into());
        assert!(unrouted(&done, "nothing", &t).contains("ended session"));
        // The publisher was asked: whatever went wrong, it is not the relay's memory.
        assert!(unrouted(&done, "SUBSCRIBE moq-test/interop/test-track", &t).contains("route"));
        // A refusal is a routing failure, not stale state.
        let refused = SessionError::Rejected {
            kind: moqlink_model::control::MessageType::SubscribeError,
            code: 0x4,
            reason: "no such track".into(),
        };
        assert!(unrouted(&refused, "nothing", &t).contains("did not route"));
    }
}
