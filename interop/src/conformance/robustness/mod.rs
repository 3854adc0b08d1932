//! Robustness checks: what a hostile peer does to a relay, and whether the relay keeps serving
//! everyone else. Each check attacks from its own connections; most also run a *bystander* (a
//! publisher and a subscriber of an unrelated track, set up first and probed before the attack)
//! that keeps using the relay, and probe it again after the attack: its subscription must still
//! deliver, a fresh session's SUBSCRIBE must still be answered promptly, and neither bystander
//! session may have been closed. (`stalled-subscriber`, `duplicate-publish` and
//! `namespace-subscription-leak` judge other sessions of their own instead.)
//!
//! Grading: a broken MUST of the draft fails the check. What only §12's advice backs (a relay
//! that keeps serving others while one peer floods or stalls it) is reported as a missed SHOULD
//! (TAP `# TODO SHOULD`), not counted as a failure.

mod auth;
mod flood;
mod malformed;
mod tracks;

pub use auth::{namespace_subscription_leak, set_protected, Protected};
pub use flood::{publish_namespace_flood, request_flood};
pub use malformed::{
    full_track_name_too_long, headerless_streams, oversize_declared_length, zero_field_namespace,
};
pub use tracks::{duplicate_publish, max_group_id, stalled_subscriber};

use super::harness::{describe, describe_close, within, write_group, DirectSub, Endpoint, SubOpts};
use super::raw::{describe as describe_event, Event, Raw};
use super::{CheckOutput, Env, Verdict};
use crate::cases::Failure;
use moqlink_model::control::ControlMessage;
use moqlink_model::params::VersionParameters;
use moqlink_model::{SessionErrorCode, TrackNamespace};
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::session::{NamespacePublication, SessionError};
use moqlink_transport::track::{TrackConfig, TrackName, TrackProducer};
use std::time::{Duration, Instant};

/// The default wait for one answer.
const T: Duration = Duration::from_secs(3);

/// How long a fresh session's SUBSCRIBE may take after an attack before it is reported as slow.
const PROMPT: Duration = Duration::from_millis(1000);

/// What a check found: broken MUSTs, missed expectations without a MUST, and notes on what the
/// relay did.
#[derive(Default)]
pub(super) struct Findings {
    must: Vec<Failure>,
    should: Vec<Failure>,
    notes: Vec<String>,
}

impl Findings {
    /// A broken MUST: the check fails.
    pub(super) fn must(&mut self, f: Failure) {
        self.must.push(f);
    }

    /// A missed expectation only a SHOULD (or §12's advice) backs: reported, not a failure.
    pub(super) fn warn(&mut self, f: Failure) {
        self.should.push(f);
    }

    /// What the relay did, for the pass message.
    pub(super) fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }

    /// Fails with the first broken MUST, else warns with the first missed expectation (each
    /// counting the rest and carrying the notes), else passes with the notes.
    pub(super) fn verdict(self) -> CheckOutput {
        let notes = self.notes.join("; ");
        let pick = |list: Vec<Failure>| {
            let mut list = list.into_iter();
            let mut first = list.next()?;
            let more: Vec<String> = list
                .map(|f| format!("{} -- {}", f.message, f.received))
                .collect();
            if !more.is_empty() {
                first.received = format!(
                    "{} (and {} more problem(s): {})",
                    first.received,
                    more.len(),
                    more.join(" | ")
                );
            }
            if !notes.is_empty() {
                first.received = format!("{}; [{notes}]", first.received);
            }
            Some(first)
        };
        let should = self.should;
        if let Some(f) = pick(self.must) {
            return Err(Verdict::Fail(f));
        }
        if let Some(f) = pick(should) {
            return Err(Verdict::Should(f));
        }
        Ok(notes)
    }
}

/// A raw attacker's close, as the relay chose it: `Ok` when the relay closed with `code`.
pub(super) async fn expect_closed(
    env: &Env,
    raw: &mut Raw,
    code: SessionErrorCode,
    what: &str,
    rule: &str,
    findings: &mut Findings,
) {
    match raw.expect_close(env, code, T, what).await {
        Ok(msg) => findings.note(msg),
        Err(mut f) => {
            f.message = format!("{}: {rule}", f.message);
            findings.must(f);
        }
    }
}

/// Whether the raw connection is still open (nothing but messages within `limit`), or how the
/// relay ended it.
pub(super) async fn raw_state(raw: &mut Raw, limit: Duration) -> String {
    match raw.wait_close(limit).await.0 {
        Event::Quiet => "still open".into(),
        other => describe_event(&other),
    }
}

/// A publisher and a subscriber of an unrelated track, used before and after an attack.
pub(super) struct Bystander {
    publisher: Endpoint,
    _ns: NamespacePublication<AnyConnection>,
    track: TrackProducer,
    name: TrackName,
    subscriber: Endpoint,
    sub: DirectSub,
    next_group: u64,
}

/// What a probe of the bystander saw.
pub(super) struct Health {
    /// How the bystander publisher's session ended, if it did.
    publisher_closed: Option<String>,
    /// How the bystander subscriber's session ended, if it did.
    subscriber_closed: Option<String>,
    /// The group written, and how long until all of it arrived (`None`: not within [`T`]).
    delivered: (u64, Option<Duration>),
    /// A fresh session's SUBSCRIBE to the bystander track: how long to SUBSCRIBE_OK, or what
    /// happened instead (and whether it was a refusal).
    fresh: Result<Duration, (String, bool)>,
}

impl Bystander {
    /// Announces `<check namespace>/bystander`, subscribes to its track `live` from a second
    /// session, and probes once: a relay that fails the probe before any attack gets
    /// [`Verdict::NotApplicable`] (its robustness cannot be told apart from its conformance).
    pub(super) async fn start(env: &Env) -> Result<Bystander, Verdict> {
        let ns = env.namespace_with(&["bystander"]);
        let publisher = Endpoint::connect(env, "bystander_publisher_connection_id").await?;
        let name = TrackName {
            namespace: ns.clone(),
            name: moqlink_model::Blob::from("live"),
        };
        let track = TrackProducer::new(name.clone(), TrackConfig::default());
        publisher.serve(&track);
        let ns = publisher.announce(env, ns).await?;
        let subscriber = Endpoint::connect(env, "bystander_subscriber_connection_id").await?;
        let sub = super::harness::subscribe(env, &subscriber, &name, SubOpts::default()).await?;
        let mut b = Bystander {
            publisher,
            _ns: ns,
            track,
            name,
            subscriber,
            sub,
            next_group: 0,
        };
        // A relay may answer SUBSCRIBE before its upstream subscription is up (and lose what
        // is written meanwhile): wait for the upstream SUBSCRIBE, then warm the path up with up
        // to three groups before the baseline probe.
        b.publisher.wait_served(T, |s| !s.is_empty()).await;
        for _ in 0..3 {
            let g = b.next_group;
            b.next_group += 1;
            write_group(env, &b.track, g, 0..3).await;
            let arrived = |got: &[super::harness::Got]| got.iter().any(|o| o.group == g);
            if b.sub.wait(Duration::from_millis(700), arrived).await {
                break;
            }
        }
        let h = b.probe(env, "baseline_probe_connection_id").await;
        let mut f = Findings::default();
        h.judge(&mut f, false, "nothing yet");
        if let Err(Verdict::Should(w) | Verdict::Fail(w)) = f.verdict() {
            return Err(Verdict::NotApplicable(format!(
                "the bystander baseline failed before any attack (expected {}; received {})",
                w.expected, w.received
            )));
        }
        Ok(b)
    }

    /// Writes the next group (3 objects) and waits for the bystander subscriber to get it;
    /// subscribes to the bystander track from a fresh session (its connection ID under `key`).
    pub(super) async fn probe(&mut self, env: &Env, key: &'static str) -> Health {
        let g = self.next_group;
        self.next_group += 1;
        env.step(format!("bystander group {g} at the bystander subscriber"));
        let start = Instant::now();
        write_group(env, &self.track, g, 0..3).await;
        let ok = self
            .sub
            .wait(T, |got| got.iter().filter(|o| o.group == g).count() >= 3)
            .await;
        let delivered = (g, ok.then(|| start.elapsed()));
        env.step("a fresh session's SUBSCRIBE to the bystander track");
        let start = Instant::now();
        let fresh = match tokio::time::timeout(T, Endpoint::connect(env, key)).await {
            Err(_) => Err((
                format!("no SERVER_SETUP within {} ms", T.as_millis()),
                false,
            )),
            Ok(Err(f)) => Err((format!("no session: {}", f.received), false)),
            Ok(Ok(ep)) => {
                let r = within(
                    T,
                    "SUBSCRIBE_OK",
                    DirectSub::subscribe(&ep.session, &self.name, SubOpts::default()),
                )
                .await;
                let out = match r {
                    Err(f) => Err((f.received, false)),
                    Ok(Ok(_)) => Ok(start.elapsed()),
                    Ok(Err(e @ SessionError::Rejected { .. })) => Err((describe(&e), true)),
                    Ok(Err(e)) => Err((describe(&e), false)),
                };
                ep.close().await;
                out
            }
        };
        Health {
            publisher_closed: self
                .publisher
                .session
                .close_reason()
                .map(|c| describe_close(&c)),
            subscriber_closed: self
                .subscriber
                .session
                .close_reason()
                .map(|c| describe_close(&c)),
            delivered,
            fresh,
        }
    }

    /// How many control messages matching `pred` the relay sent the bystander publisher.
    pub(super) fn publisher_saw(&self, pred: impl Fn(&ControlMessage) -> bool) -> usize {
        self.publisher
            .seen()
            .iter()
            .filter(|s| pred(&s.msg))
            .count()
    }

    /// Probes after `attack` and judges the result into `f` (see [`Health::judge`]).
    pub(super) async fn after(&mut self, env: &Env, attack: &str, invalid: bool, f: &mut Findings) {
        let h = self.probe(env, "probe_connection_id").await;
        h.judge(f, invalid, attack);
    }
}

impl Health {
    /// A bystander session closed is a broken MUST when the attack was an invalid message
    /// (`invalid`: §8.4 forbids letting one session's invalid message or object close
    /// another), a missed SHOULD otherwise; a refused SUBSCRIBE to a track with an active upstream
    /// subscription is a broken MUST (§8.4: the relay MUST reply SUBSCRIBE_OK); a late or
    /// missing delivery or answer is a missed SHOULD.
    pub(super) fn judge(&self, f: &mut Findings, invalid: bool, attack: &str) {
        for (role, closed) in [
            ("publisher", &self.publisher_closed),
            ("subscriber", &self.subscriber_closed),
        ] {
            if let Some(c) = closed {
                let fail = Failure::new(
                    format!("the bystander {role} session open"),
                    c.clone(),
                    format!("after {attack}, the bystander {role}'s session (which did nothing wrong) ended"),
                );
                if invalid {
                    f.must(Failure {
                        message: format!(
                            "{}: a relay MUST NOT let one session's invalid message close \
                             another (§8.4)",
                            fail.message
                        ),
                        ..fail
                    });
                } else {
                    f.warn(fail);
                }
            }
        }
        let (g, delivered) = self.delivered;
        match delivered {
            Some(d) => f.note(format!(
                "bystander group {g} delivered in {} ms",
                d.as_millis()
            )),
            None => f.warn(Failure::new(
                format!("bystander group {g} delivered within {} ms", T.as_millis()),
                "not all of it arrived",
                format!("after {attack}, the relay stopped forwarding an unrelated track"),
            )),
        }
        match &self.fresh {
            Ok(d) if *d <= PROMPT => f.note(format!(
                "a fresh session's SUBSCRIBE answered in {} ms",
                d.as_millis()
            )),
            Ok(d) => f.warn(Failure::new(
                format!(
                    "a fresh session's SUBSCRIBE answered within {} ms",
                    PROMPT.as_millis()
                ),
                format!("SUBSCRIBE_OK after {} ms", d.as_millis()),
                format!("after {attack}, the relay answered another session slowly"),
            )),
            Err((what, true)) => f.must(Failure::new(
                "SUBSCRIBE_OK for the bystander track",
                what.clone(),
                format!(
                    "after {attack}: a SUBSCRIBE for a track with an active upstream \
                     subscription MUST get SUBSCRIBE_OK (§8.4)"
                ),
            )),
            Err((what, false)) => f.warn(Failure::new(
                "SUBSCRIBE_OK for the bystander track from a fresh session",
                what.clone(),
                format!("after {attack}, the relay did not serve another session"),
            )),
        }
    }
}

/// The check's namespace with `extra` fields, for an attacker.
pub(super) fn attack_ns(env: &Env, extra: &str) -> TrackNamespace {
    env.namespace_with(&["attack", extra])
}

/// PUBLISH_NAMESPACE from `ep` with `params`, answered within [`T`].
pub(super) async fn announce_with(
    ep: &Endpoint,
    ns: TrackNamespace,
    params: VersionParameters,
) -> Result<Result<NamespacePublication<AnyConnection>, SessionError>, Failure> {
    within(
        T,
        "PUBLISH_NAMESPACE_OK or PUBLISH_NAMESPACE_ERROR",
        ep.session.publish_namespace(ns, params),
    )
    .await
}
