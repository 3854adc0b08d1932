//! Namespace checks: PUBLISH_NAMESPACE / PUBLISH_NAMESPACE_DONE routing (§8.4, §9.23-§9.26) and
//! SUBSCRIBE_NAMESPACE / UNSUBSCRIBE_NAMESPACE (§6, §9.28-§9.31).

use super::harness::{
    describe, listing, locations, payload, problems, verdict, within, write_group, DirectSub,
    Endpoint, SubOpts,
};
use super::raw::{frame, tuple, varint, Raw};
use super::{refused, CheckOutput, Env, Verdict};
use crate::cases::{request_error_name, Failure};
use bytes::BytesMut;
use moqlink_model::codes::SubscribeNamespaceErrorCode;
use moqlink_model::control::*;
use moqlink_model::params::VersionParameters;
use moqlink_model::{SessionErrorCode, TrackNamespace};
use moqlink_transport::connection::any::AnyConnection;
use moqlink_transport::session::{NamespaceSubscription, SessionError};
use moqlink_transport::track::{Object, SubgroupInfo, TrackConfig, TrackName, TrackProducer};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

/// Whether `m` is PUBLISH_NAMESPACE for `ns`.
fn announces(m: &ControlMessage, ns: &TrackNamespace) -> bool {
    matches!(m, ControlMessage::PublishNamespace(p) if &p.namespace == ns)
}

/// Whether `m` is PUBLISH_NAMESPACE_DONE for `ns`.
fn withdraws(m: &ControlMessage, ns: &TrackNamespace) -> bool {
    matches!(m, ControlMessage::PublishNamespaceDone(p) if &p.namespace == ns)
}

/// Whether `m` is a SUBSCRIBE for `name`.
fn subscribes(m: &ControlMessage, name: &TrackName) -> bool {
    matches!(m, ControlMessage::Subscribe(s) if s.namespace == name.namespace && s.name == name.name)
}

/// SUBSCRIBE_NAMESPACE for `prefix` from `ep`.
async fn subscribe_namespace(
    env: &Env,
    ep: &Endpoint,
    prefix: TrackNamespace,
) -> Result<NamespaceSubscription<AnyConnection>, Verdict> {
    env.step(format!("SUBSCRIBE_NAMESPACE_OK for {prefix}"));
    let answer = within(
        T,
        "SUBSCRIBE_NAMESPACE_OK",
        ep.session
            .subscribe_namespace(prefix.clone(), VersionParameters::new()),
    )
    .await?;
    answer.map_err(|e| {
        refused(
            e,
            "SUBSCRIBE_NAMESPACE_OK",
            &format!("the relay refused SUBSCRIBE_NAMESPACE {prefix}"),
        )
    })
}

/// An endpoint serving track `name` of `ns`, announced.
async fn publisher_of(
    env: &Env,
    key: &'static str,
    ns: TrackNamespace,
    names: &[&str],
) -> Result<
    (
        Endpoint,
        moqlink_transport::session::NamespacePublication<AnyConnection>,
    ),
    Verdict,
> {
    let ep = Endpoint::connect(env, key).await?;
    for n in names {
        let name = TrackName {
            namespace: ns.clone(),
            name: moqlink_model::Blob::from(*n),
        };
        ep.serve(&TrackProducer::new(name, TrackConfig::default()));
    }
    let publication = ep.announce(env, ns).await?;
    Ok((ep, publication))
}

/// `subscribe-after-publish-namespace-done`: a SUBSCRIBE for a track of a withdrawn namespace.
pub async fn subscribe_after_done(env: Env) -> CheckOutput {
    let (p, publication) =
        publisher_of(&env, "publisher_connection_id", env.namespace(), &["t"]).await?;
    env.step("sending PUBLISH_NAMESPACE_DONE");
    publication
        .done()
        .await
        .map_err(|e| Failure::new("PUBLISH_NAMESPACE_DONE sent", describe(&e), "local session"))?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    env.step("the answer to a SUBSCRIBE after PUBLISH_NAMESPACE_DONE");
    let answer = within(
        Duration::from_secs(5),
        "SUBSCRIBE_OK or SUBSCRIBE_ERROR",
        DirectSub::subscribe(&s.session, &env.track("t"), SubOpts::default()),
    )
    .await?;
    // PUBLISH_NAMESPACE_DONE takes the publisher out of the namespace's matching publishers
    // (§8.4), but it is "not a protocol error" to SUBSCRIBE to it afterwards (§6.2), and a relay
    // is a subscriber that "MAY send a SUBSCRIBE ... to any publisher": what is required is one
    // answer (§5.1), which `within` has already insisted on.
    let routed = p.seen().iter().any(|x| subscribes(&x.msg, &env.track("t")));
    Ok(format!(
        "after PUBLISH_NAMESPACE_DONE the SUBSCRIBE got {}; {}",
        match &answer {
            Ok(_) => "SUBSCRIBE_OK".to_string(),
            Err(e) => describe(e),
        },
        if routed {
            "it was routed to the withdrawn publisher (§6.2 allows it)"
        } else {
            "the withdrawn publisher received nothing"
        }
    ))
}

/// `subscribe-namespace-existing`: announce first, then SUBSCRIBE_NAMESPACE for a prefix.
pub async fn existing(env: Env) -> CheckOutput {
    let ns = env.namespace_with(&["a"]);
    let (_p, _publication) = publisher_of(&env, "publisher_connection_id", ns.clone(), &[]).await?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let _sub = subscribe_namespace(&env, &s, env.namespace()).await?;
    env.step(format!(
        "PUBLISH_NAMESPACE {ns} at the namespace subscriber"
    ));
    if !s.wait_seen(T, |m| announces(m, &ns)).await {
        return Err(Failure::new(
            format!("PUBLISH_NAMESPACE {ns}"),
            format!("subscriber received: {}", s.seen_text()),
            "SUBSCRIBE_NAMESPACE must bring the matching namespaces already published (§9.28)",
        )
        .into());
    }
    Ok(format!(
        "PUBLISH_NAMESPACE {ns} forwarded for prefix {}",
        env.namespace()
    ))
}

/// `subscribe-namespace-later`: SUBSCRIBE_NAMESPACE first, then matching and other namespaces.
pub async fn later(env: Env) -> CheckOutput {
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let prefix = env.namespace_with(&["in"]);
    let _sub = subscribe_namespace(&env, &s, prefix.clone()).await?;
    let inside = env.namespace_with(&["in", "x"]);
    let outside = env.namespace_with(&["out"]);
    let (_p1, _a) = publisher_of(&env, "publisher_connection_id", inside.clone(), &[]).await?;
    let (_p2, _b) =
        publisher_of(&env, "other_publisher_connection_id", outside.clone(), &[]).await?;
    env.step(format!(
        "PUBLISH_NAMESPACE {inside} at the namespace subscriber"
    ));
    if !s.wait_seen(T, |m| announces(m, &inside)).await {
        return Err(Failure::new(
            format!("PUBLISH_NAMESPACE {inside}"),
            format!("subscriber received: {}", s.seen_text()),
            "a namespace published under a subscribed prefix must be forwarded (§6.2)",
        )
        .into());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other = if s.seen().iter().any(|x| announces(&x.msg, &outside)) {
        "forwarded too (a publisher MAY send PUBLISH_NAMESPACE to any subscriber, §6.2)"
    } else {
        "not forwarded"
    };
    Ok(format!(
        "{inside} forwarded; {outside}, outside the prefix, {other}"
    ))
}

/// `subscribe-namespace-done-forwarded`.
pub async fn done_forwarded(env: Env) -> CheckOutput {
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let _sub = subscribe_namespace(&env, &s, env.namespace()).await?;
    let ns = env.namespace_with(&["a"]);
    let (_p, publication) = publisher_of(&env, "publisher_connection_id", ns.clone(), &[]).await?;
    env.step(format!(
        "PUBLISH_NAMESPACE {ns} at the namespace subscriber"
    ));
    if !s.wait_seen(T, |m| announces(m, &ns)).await {
        return Err(Failure::new(
            format!("PUBLISH_NAMESPACE {ns}"),
            format!("subscriber received: {}", s.seen_text()),
            "the namespace was not forwarded to its namespace subscriber",
        )
        .into());
    }
    publication
        .done()
        .await
        .map_err(|e| Failure::new("PUBLISH_NAMESPACE_DONE sent", describe(&e), "local session"))?;
    env.step(format!(
        "PUBLISH_NAMESPACE_DONE {ns} at the namespace subscriber"
    ));
    if !s.wait_seen(T, |m| withdraws(m, &ns)).await {
        return Err(Failure::new(
            format!("PUBLISH_NAMESPACE_DONE {ns}"),
            format!("subscriber received: {}", s.seen_text()),
            "the withdrawal was not forwarded to the namespace subscriber (§9.28)",
        )
        .into());
    }
    Ok(format!(
        "PUBLISH_NAMESPACE and PUBLISH_NAMESPACE_DONE {ns} forwarded"
    ))
}

/// `subscribe-namespace-overlap`: a prefix extending one already subscribed.
pub async fn overlap(env: Env) -> CheckOutput {
    let s = Endpoint::connect(&env, "connection_id").await?;
    let _first = subscribe_namespace(&env, &s, env.namespace()).await?;
    env.step("SUBSCRIBE_NAMESPACE_ERROR for an overlapping prefix");
    let inner = env.namespace_with(&["x"]);
    let answer = within(
        T,
        "SUBSCRIBE_NAMESPACE_ERROR",
        s.session
            .subscribe_namespace(inner.clone(), VersionParameters::new()),
    )
    .await?;
    match answer {
        Err(SessionError::Rejected { code, .. })
            if code == SubscribeNamespaceErrorCode::NamespacePrefixOverlap.code() =>
        {
            Ok(format!(
                "SUBSCRIBE_NAMESPACE {inner} after {}: NAMESPACE_PREFIX_OVERLAP",
                env.namespace()
            ))
        }
        Err(SessionError::Rejected { code, reason, .. }) => Err(Failure::new(
            "SUBSCRIBE_NAMESPACE_ERROR code 0x5 (NAMESPACE_PREFIX_OVERLAP)",
            format!(
                "SUBSCRIBE_NAMESPACE_ERROR code 0x{code:x} ({}) {reason:?}",
                request_error_name(
                    moqlink_model::control::MessageType::SubscribeNamespaceError,
                    code
                )
            ),
            "an overlapping prefix MUST get NAMESPACE_PREFIX_OVERLAP (§9.28)",
        )
        .into()),
        Ok(_) => Err(Failure::new(
            "SUBSCRIBE_NAMESPACE_ERROR code 0x5 (NAMESPACE_PREFIX_OVERLAP)",
            "SUBSCRIBE_NAMESPACE_OK",
            "the relay accepted a prefix overlapping an active SUBSCRIBE_NAMESPACE (§9.28)",
        )
        .into()),
        Err(e) => Err(Failure::new(
            "SUBSCRIBE_NAMESPACE_ERROR code 0x5",
            describe(&e),
            "no answer to the overlapping SUBSCRIBE_NAMESPACE",
        )
        .into()),
    }
}

/// `subscribe-namespace-too-many-fields`: a 33-field prefix.
pub async fn too_many_fields(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    let mut payload = BytesMut::new();
    varint(&mut payload, 0);
    let fields: Vec<&[u8]> = (0..33).map(|_| b"f".as_slice()).collect();
    tuple(&mut payload, &fields);
    varint(&mut payload, 0);
    raw.send_bytes(frame(0x11, &payload)).await?;
    Ok(raw
        .expect_close(
            &env,
            SessionErrorCode::ProtocolViolation,
            T,
            "SUBSCRIBE_NAMESPACE with a 33-field prefix",
        )
        .await?)
}

/// Whether `m` is a PUBLISH for `name`.
fn publishes(m: &ControlMessage, name: &TrackName) -> bool {
    matches!(m, ControlMessage::Publish(p) if p.namespace == name.namespace && p.name == name.name)
}

/// PUBLISH of `name` from `ep`, waiting for the relay's answer (PUBLISH_OK, or PUBLISH_ERROR
/// other than NOT_SUPPORTED) so the relay has processed it.
async fn publish(
    env: &Env,
    ep: &Endpoint,
    name: TrackName,
) -> Result<Option<moqlink_transport::session::Publication>, Verdict> {
    let track = TrackProducer::new(name.clone(), TrackConfig::default());
    env.step(format!("the relay's answer to PUBLISH {name}"));
    match within(
        T,
        "PUBLISH_OK",
        ep.session.publish(&track, true, VersionParameters::new()),
    )
    .await?
    {
        Ok(p) => Ok(Some(p)),
        Err(SessionError::Rejected {
            code: super::NOT_SUPPORTED,
            reason,
            ..
        }) => Err(Verdict::Unsupported {
            what: "PUBLISH".into(),
            reason,
        }),
        Err(SessionError::Rejected { .. }) => Ok(None),
        Err(e) => Err(Failure::new("PUBLISH_OK", describe(&e), "no answer to PUBLISH").into()),
    }
}

/// `unsubscribe-namespace`: PUBLISH reaches a namespace subscriber until it sends
/// UNSUBSCRIBE_NAMESPACE, and no longer after.
pub async fn unsubscribe(env: Env) -> CheckOutput {
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let sub = subscribe_namespace(&env, &s, env.namespace()).await?;
    let p = Endpoint::connect(&env, "publisher_connection_id").await?;
    let first = env.track("first");
    let _a = publish(&env, &p, first.clone()).await?;
    env.step(format!("PUBLISH {first} at the namespace subscriber"));
    if !s.wait_seen(T, |m| publishes(m, &first)).await {
        return Err(Failure::new(
            format!("PUBLISH {first} at the namespace subscriber"),
            format!("subscriber received: {}", s.seen_text()),
            "a relay MUST send PUBLISH to each subscriber of the track's namespace (§8.4)",
        )
        .into());
    }
    sub.unsubscribe()
        .await
        .map_err(|e| Failure::new("UNSUBSCRIBE_NAMESPACE sent", describe(&e), "local session"))?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = env.track("second");
    let _b = publish(&env, &p, second.clone()).await?;
    env.step("700 ms without PUBLISH of the second track");
    if s.wait_seen(Duration::from_millis(700), |m| publishes(m, &second))
        .await
    {
        return Err(Failure::new(
            format!("no PUBLISH {second} after UNSUBSCRIBE_NAMESPACE"),
            format!("subscriber received: {}", s.seen_text()),
            "relays MUST NOT send further PUBLISH messages without knowing the client is \
             interested (§6.1)",
        )
        .into());
    }
    Ok(format!(
        "PUBLISH {first} forwarded; after UNSUBSCRIBE_NAMESPACE, {second} was not"
    ))
}

/// `publish-only-to-interested`: a client that never sent SUBSCRIBE_NAMESPACE gets no PUBLISH.
pub async fn publish_only_to_interested(env: Env) -> CheckOutput {
    let bystander = Endpoint::connect(&env, "bystander_connection_id").await?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let _sub = subscribe_namespace(&env, &s, env.namespace()).await?;
    let p = Endpoint::connect(&env, "publisher_connection_id").await?;
    let name = env.track("t");
    let _a = publish(&env, &p, name.clone()).await?;
    env.step(format!("PUBLISH {name} at the namespace subscriber"));
    let interested = s.wait_seen(T, |m| publishes(m, &name)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    if bystander.seen().iter().any(|x| publishes(&x.msg, &name)) {
        return Err(Failure::new(
            "no PUBLISH at a client that never subscribed to the namespace",
            format!("bystander received: {}", bystander.seen_text()),
            "relays MUST NOT send PUBLISH without knowing the client is interested (§5.1)",
        )
        .into());
    }
    if !interested {
        return Err(Failure::new(
            format!("PUBLISH {name} at the namespace subscriber"),
            format!("subscriber received: {}", s.seen_text()),
            "a relay MUST send PUBLISH to each subscriber of the track's namespace (§8.4)",
        )
        .into());
    }
    Ok("PUBLISH forwarded to the namespace subscriber only".into())
}

/// `namespace-prefix-matching`: (ns, foo) serves (ns, foo, bar) but not (ns, foobar).
pub async fn prefix_matching(env: Env) -> CheckOutput {
    let parent = env.namespace_with(&["foo"]);
    let deep = env.namespace_with(&["foo", "bar"]);
    let foobar = env.namespace_with(&["foobar"]);
    let p = Endpoint::connect(&env, "publisher_connection_id").await?;
    for ns in [&deep, &foobar] {
        p.serve(&TrackProducer::new(
            TrackName {
                namespace: ns.clone(),
                name: moqlink_model::Blob::from("t"),
            },
            TrackConfig::default(),
        ));
    }
    let _publication = p.announce(&env, parent.clone()).await?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let deep_track = TrackName {
        namespace: deep.clone(),
        name: moqlink_model::Blob::from("t"),
    };
    env.step(format!("SUBSCRIBE_OK for {deep_track}"));
    let answer = within(
        Duration::from_secs(5),
        "SUBSCRIBE_OK",
        DirectSub::subscribe(&s.session, &deep_track, SubOpts::default()),
    )
    .await?;
    if let Err(e) = answer {
        return Err(refused(
            e,
            &format!("SUBSCRIBE_OK for {deep_track} (publisher of {parent})"),
            "a namespace with the same first fields must match (§8.4)",
        ));
    }
    let wrong = TrackName {
        namespace: foobar.clone(),
        name: moqlink_model::Blob::from("t"),
    };
    env.step(format!("the answer to SUBSCRIBE {wrong}"));
    let answer = within(
        Duration::from_secs(5),
        "SUBSCRIBE_OK or SUBSCRIBE_ERROR",
        DirectSub::subscribe(&s.session, &wrong, SubOpts::default()),
    )
    .await?;
    let routed = p.seen().iter().any(|x| subscribes(&x.msg, &wrong));
    // (foo) does not match (foobar) (§8.4), so the relay need not route it there; but §6.2 lets
    // a subscriber (the relay, upstream) send a SUBSCRIBE to any publisher, so routing it is no
    // violation either: what the relay did is reported, the answer is what is required.
    let outcome = match (&answer, routed) {
        (Ok(_), true) => "routed to the publisher of (foo) as well and accepted there (§6.2 MAY)",
        (Err(_), true) => "routed to the publisher of (foo) as well (§6.2 MAY), refused",
        (Ok(_), false) => "accepted without reaching the publisher of (foo)",
        (Err(_), false) => "not routed to the publisher of (foo), refused",
    };
    Ok(format!(
        "{deep_track} routed to the publisher of {parent}; {wrong}: {outcome}"
    ))
}

/// A second publisher of the check's namespace serving track "t"; a relay may refuse it (§8.2).
async fn second_publisher(
    env: &Env,
) -> Result<
    (
        Endpoint,
        moqlink_transport::session::NamespacePublication<AnyConnection>,
    ),
    Verdict,
> {
    second_publisher_of(env, &["t"]).await
}

/// A second publisher of the check's namespace serving `names`; a relay may refuse it (§8.2).
async fn second_publisher_of(
    env: &Env,
    names: &[&str],
) -> Result<
    (
        Endpoint,
        moqlink_transport::session::NamespacePublication<AnyConnection>,
    ),
    Verdict,
> {
    match publisher_of(
        env,
        "second_publisher_connection_id",
        env.namespace(),
        names,
    )
    .await
    {
        Err(Verdict::Fail(f)) if f.expected == "PUBLISH_NAMESPACE_OK" => {
            Err(Verdict::NotApplicable(format!(
                "the relay refused a second publisher of the namespace ({}), which §8.2 allows",
                f.received
            )))
        }
        other => other,
    }
}

/// `subscribe-forwarded-to-all-publishers`: two publishers of one namespace.
pub async fn all_publishers(env: Env) -> CheckOutput {
    let (p1, _a) = publisher_of(&env, "publisher_connection_id", env.namespace(), &["t"]).await?;
    let (p2, _b) = second_publisher(&env).await?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let _sub = super::harness::subscribe(&env, &s, &env.track("t"), SubOpts::default()).await?;
    env.step("the SUBSCRIBE at both publishers");
    let name = env.track("t");
    let one = p1.wait_seen(T, |m| subscribes(m, &name)).await;
    let two = p2
        .wait_seen(Duration::from_millis(500), |m| subscribes(m, &name))
        .await;
    if !(one && two) {
        return Err(Failure::new(
            "SUBSCRIBE at both publishers of the namespace",
            format!(
                "first publisher received: {}; second publisher received: {}",
                p1.seen_text(),
                p2.seen_text()
            ),
            "relays MUST forward SUBSCRIBE messages to all matching publishers (§8.4)",
        )
        .into());
    }
    Ok("the SUBSCRIBE reached both publishers of the namespace".into())
}

/// `publish-namespace-joins-subscription`: a second publisher announces while a subscription
/// is active.
pub async fn joins_subscription(env: Env) -> CheckOutput {
    let (p1, _a) = publisher_of(&env, "publisher_connection_id", env.namespace(), &["t"]).await?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let _sub = super::harness::subscribe(&env, &s, &env.track("t"), SubOpts::default()).await?;
    let name = env.track("t");
    if !p1.wait_seen(T, |m| subscribes(m, &name)).await {
        return Err(Failure::new(
            "SUBSCRIBE at the first publisher",
            format!("publisher received: {}", p1.seen_text()),
            "the relay did not subscribe upstream",
        )
        .into());
    }
    let (p2, _b) = second_publisher(&env).await?;
    env.step("a SUBSCRIBE at the second publisher");
    if !p2.wait_seen(T, |m| subscribes(m, &name)).await {
        return Err(Failure::new(
            format!("SUBSCRIBE {name} at the publisher that announced later"),
            format!("second publisher received: {}", p2.seen_text()),
            "a relay receiving PUBLISH_NAMESPACE matching active subscriptions MUST subscribe \
             to the new publisher (§8.4)",
        )
        .into());
    }
    Ok("the later publisher got a SUBSCRIBE for the active subscription".into())
}

/// `publishers-merged-once`: two publishers of one namespace publish overlapping groups.
pub async fn merged_once(env: Env) -> CheckOutput {
    let (p1, _a) = publisher_of(&env, "publisher_connection_id", env.namespace(), &[]).await?;
    let (p2, _b) = second_publisher_of(&env, &[]).await?;
    let name = env.track("t");
    let (t1, t2) = (
        TrackProducer::new(name.clone(), TrackConfig::default()),
        TrackProducer::new(name.clone(), TrackConfig::default()),
    );
    p1.serve(&t1);
    p2.serve(&t2);
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let sub = super::harness::subscribe(&env, &s, &name, SubOpts::default()).await?;
    env.step("the SUBSCRIBE served by both publishers");
    let one = p1.wait_served(T, |v| !v.is_empty()).await;
    let two = p2.wait_served(T, |v| !v.is_empty()).await;
    if !(one && two) {
        return Err(Verdict::NotApplicable(format!(
            "the relay subscribed at {} of the two publishers; this check needs both \
             (subscribe-forwarded-to-all-publishers)",
            usize::from(one) + usize::from(two)
        )));
    }
    // Group 0 from both, group 1 from the second only, group 2 from the first only.
    for t in [&t1, &t2] {
        let mut sg = t.create_subgroup(SubgroupInfo::new(0, 0, 128));
        for o in 0..3 {
            let _ = sg.write(Object::new(o, payload(&env, 0, o)));
        }
        sg.finish();
    }
    write_group(&env, &t2, 1, 0..3).await;
    write_group(&env, &t1, 2, 0..3).await;
    let want = locations(0..3, 0..3);
    env.step("groups 0-2, each object once");
    sub.wait(T, |g| {
        want.iter().all(|w| g.iter().any(|o| (o.group, o.id) == *w))
    })
    .await;
    sub.settle(Duration::from_millis(300), T).await;
    let got = sub.objects();
    let (dups, others): (Vec<String>, Vec<String>) = problems(&env, &got, &want)
        .into_iter()
        .partition(|p| p.starts_with("duplicate"));
    verdict(
        &others,
        "objects 0.0-2.2",
        "Relays MUST handle Objects for the same Track from multiple publishers and forward \
         them to active matching subscriptions (§8.2)",
    )?;
    verdict(
        &dups,
        "objects 0.0-2.2, each once",
        "the Relay SHOULD attempt to deduplicate Objects before forwarding (§8.2)",
    )
    .map_err(Verdict::Should)?;
    Ok(format!(
        "both publishers' objects merged, each once: {}",
        listing(&got)
    ))
}
