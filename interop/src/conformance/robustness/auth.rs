//! Authorization by concrete namespace (§8.3, §9.28): a namespace subscription to a parent of a
//! protected prefix must not see what is under it. Opt-in: only the user knows which prefix a
//! relay protects ([`set_protected`], `--protected-prefix`).

use super::{announce_with, Findings, T};
use crate::cases::Failure;
use crate::conformance::harness::{
    describe, describe_message, within, write_group, DirectSub, Endpoint, SubOpts,
};
use crate::conformance::{CheckOutput, Env, Verdict};
use moqlink_model::control::ControlMessage;
use moqlink_model::params::{Parameter, Token, VersionParameters};
use moqlink_model::{Blob, TrackNamespace};
use moqlink_transport::track::{TrackConfig, TrackName, TrackProducer};
use std::sync::Mutex;
use std::time::Duration;

/// A relay's protected namespace prefix, for `namespace-subscription-leak`.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    /// A prefix (2 fields or more) the relay protects; this client holds no credentials to
    /// subscribe under it.
    pub prefix: TrackNamespace,
    /// A token (AUTHORIZATION TOKEN, type 0, sent by value) allowed to publish under the
    /// prefix, so the relay carries something there; without one, only what the check may
    /// publish without credentials, or what the relay already carries, can leak.
    pub publish_token: Option<String>,
}

/// The protected prefixes given per relay URL.
static PROTECTED: Mutex<Vec<(String, Protected)>> = Mutex::new(Vec::new());

/// Enables `namespace-subscription-leak` against `relay` (the URL the checks connect to).
pub fn set_protected(relay: &str, protected: Protected) {
    let mut list = PROTECTED.lock().unwrap_or_else(|p| p.into_inner());
    list.retain(|(r, _)| r != relay);
    list.push((relay.to_string(), protected));
}

fn protected(relay: &str) -> Option<Protected> {
    let list = PROTECTED.lock().unwrap_or_else(|p| p.into_inner());
    list.iter()
        .find(|(r, _)| r == relay)
        .map(|(_, p)| p.clone())
}

/// SUBSCRIBE_NAMESPACE `prefix` from `ep`; notes the answer.
async fn watch(
    ep: &Endpoint,
    who: &str,
    prefix: &TrackNamespace,
    f: &mut Findings,
) -> Option<
    moqlink_transport::session::NamespaceSubscription<
        moqlink_transport::connection::any::AnyConnection,
    >,
> {
    let r = within(
        T,
        "SUBSCRIBE_NAMESPACE_OK or SUBSCRIBE_NAMESPACE_ERROR",
        ep.session
            .subscribe_namespace(prefix.clone(), VersionParameters::new()),
    )
    .await;
    match r {
        Ok(Ok(s)) => {
            f.note(format!("{who} SUBSCRIBE_NAMESPACE {prefix}: OK"));
            Some(s)
        }
        Ok(Err(e)) => {
            f.note(format!(
                "{who} SUBSCRIBE_NAMESPACE {prefix}: {}",
                describe(&e)
            ));
            None
        }
        Err(fail) => {
            f.note(format!(
                "{who} SUBSCRIBE_NAMESPACE {prefix}: {}",
                fail.received
            ));
            None
        }
    }
}

/// `namespace-subscription-leak`: without credentials, SUBSCRIBE_NAMESPACE to the protected
/// prefix's parent, before and after something is published under the prefix; then
/// SUBSCRIBE_NAMESPACE to the prefix and SUBSCRIBE to a track under it.
pub async fn namespace_subscription_leak(env: Env) -> CheckOutput {
    let Some(pr) = protected(&env.ctx.relay) else {
        return Err(Verdict::NotApplicable(
            "opt-in: pass --protected-prefix PREFIX, a namespace prefix of 2 or more fields the \
             relay protects and this client holds no credentials for (and --publish-token \
             TOKEN to publish under it)"
                .into(),
        ));
    };
    let n = pr.prefix.fields().len();
    if n < 2 {
        return Err(Verdict::NotApplicable(format!(
            "the protected prefix {} has {n} field(s): a shorter namespace subscription needs 1 \
             field at least (§9.28)",
            pr.prefix
        )));
    }
    let parent = TrackNamespace(pr.prefix.fields()[..n - 1].to_vec());
    let mut inner = pr.prefix.clone();
    inner
        .0
        .push(Blob::from(format!("moq-conformance-{}", env.run).as_str()));
    let mut f = Findings::default();
    let early = Endpoint::connect(&env, "early_watcher_connection_id").await?;
    let _early_ns = watch(&early, "before publishing:", &parent, &mut f).await;
    let publisher = Endpoint::connect(&env, "publisher_connection_id").await?;
    let named = |n: &str| TrackName {
        namespace: inner.clone(),
        name: Blob::from(n),
    };
    let track = TrackProducer::new(named("t"), TrackConfig::default());
    publisher.serve(&track);
    let mut params = VersionParameters::new();
    if let Some(tok) = &pr.publish_token {
        params.push(Parameter::AuthorizationToken {
            value: Token::UseValue {
                token_type: 0,
                token_value: Blob::from(tok.as_str()),
            },
        });
    }
    let credentials = if pr.publish_token.is_some() {
        "with the publish token"
    } else {
        "without credentials"
    };
    env.step(format!("the answer to PUBLISH_NAMESPACE {inner}"));
    let held = match announce_with(&publisher, inner.clone(), params.clone()).await? {
        Ok(p) => {
            f.note(format!("PUBLISH_NAMESPACE {inner} {credentials}: OK"));
            Some(p)
        }
        Err(e) if pr.publish_token.is_some() => {
            return Err(Verdict::NotApplicable(format!(
                "the relay refused PUBLISH_NAMESPACE {inner} with the publish token: {}",
                describe(&e)
            )))
        }
        Err(e) => {
            f.note(format!(
                "PUBLISH_NAMESPACE {inner} {credentials}: {}",
                describe(&e)
            ));
            None
        }
    };
    let pushed = TrackProducer::new(named("pushed"), TrackConfig::default());
    let publication = within(
        T,
        "PUBLISH_OK or PUBLISH_ERROR",
        publisher.session.publish(&pushed, true, params),
    )
    .await;
    let published = match &publication {
        Ok(Ok(_)) => "OK".to_string(),
        Ok(Err(e)) => describe(e),
        Err(fail) => fail.received.clone(),
    };
    f.note(format!("PUBLISH {inner}/pushed {credentials}: {published}"));
    let late = Endpoint::connect(&env, "late_watcher_connection_id").await?;
    let _late_ns = watch(&late, "after publishing:", &parent, &mut f).await;
    write_group(&env, &pushed, 0, 0..2).await;
    env.step("namespace events at the watchers");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (who, ep) in [("early", &early), ("late", &late)] {
        let under = |ns: &moqlink_model::TrackNamespace| pr.prefix.is_prefix_of(ns);
        let seen = ep.seen();
        let leaked = |publish: bool| -> Vec<String> {
            seen.iter()
                .filter(|s| match &s.msg {
                    ControlMessage::PublishNamespace(m) => !publish && under(&m.namespace),
                    ControlMessage::Publish(m) => publish && under(&m.namespace),
                    _ => false,
                })
                .map(|s| describe_message(&s.msg))
                .collect()
        };
        let (content, names) = (leaked(true), leaked(false));
        let expected = format!(
            "nothing under {} at a subscriber of {parent} without credentials",
            pr.prefix
        );
        if content.is_empty() && names.is_empty() {
            f.note(format!("{who} watcher: nothing under {}", pr.prefix));
        }
        // PUBLISH pushes the track's objects: content the subscriber is not authorized for.
        if !content.is_empty() {
            f.must(Failure::new(
                expected.clone(),
                format!("the {who} watcher received {}", content.join(", ")),
                "Relays MUST ensure subscribers are authorized to access the content (§8.3)",
            ));
        }
        // A namespace's name alone is no content; no MUST says which names a namespace
        // subscription may see (§9.28 requires the subscription itself to be authorized).
        if !names.is_empty() {
            f.warn(Failure::new(
                expected,
                format!("the {who} watcher was told of {}", names.join(", ")),
                "a relay should not reveal namespaces a longer rule protects to subscribers \
                 without credentials for them (§8.3, §12.3.2)",
            ));
        }
    }
    let direct = Endpoint::connect(&env, "direct_connection_id").await?;
    env.step(format!("the answer to SUBSCRIBE_NAMESPACE {}", pr.prefix));
    let r = within(
        T,
        "SUBSCRIBE_NAMESPACE_ERROR",
        direct
            .session
            .subscribe_namespace(pr.prefix.clone(), VersionParameters::new()),
    )
    .await;
    match r {
        Ok(Ok(_)) => f.must(Failure::new(
            format!("SUBSCRIBE_NAMESPACE_ERROR for {}", pr.prefix),
            "SUBSCRIBE_NAMESPACE_OK",
            "the publisher MUST ensure the subscriber is authorized to perform this namespace \
             subscription (§9.28)",
        )),
        Ok(Err(e)) => f.note(format!(
            "SUBSCRIBE_NAMESPACE {} without credentials: {}",
            pr.prefix,
            describe(&e)
        )),
        Err(fail) => f.warn(fail),
    }
    if held.is_some() {
        env.step(format!("the answer to SUBSCRIBE {inner}/t"));
        let r = within(
            T,
            "SUBSCRIBE_ERROR",
            DirectSub::subscribe(&direct.session, &named("t"), SubOpts::default()),
        )
        .await;
        match r {
            Ok(Ok(_)) => f.must(Failure::new(
                "SUBSCRIBE_ERROR (UNAUTHORIZED, 0x1)",
                "SUBSCRIBE_OK",
                "Relays MUST ensure subscribers are authorized to access the content (§8.3)",
            )),
            Ok(Err(e)) => f.note(format!(
                "SUBSCRIBE {inner}/t without credentials: {}",
                describe(&e)
            )),
            Err(fail) => f.warn(fail),
        }
    }
    f.verdict()
}
