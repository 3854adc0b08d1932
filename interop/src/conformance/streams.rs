//! Data-plane rules the relay must enforce or follow on what a publisher sends: unknown stream
//! and datagram types close the session (§10); an Object Does Not Exist with extension headers
//! (§10.2.1.2) and a datagram flagged with extensions of length 0 (§10.3.1) close the
//! publisher's session and are not propagated to the subscriber (§8.4); a relay forwards on a
//! subgroup stream only the next object of the subgroup (§10.4.3).
//!
//! The publisher here writes its data streams and datagrams byte by byte on an
//! [`super::harness::Endpoint`]'s connection, after answering the relay's SUBSCRIBE itself
//! ([`RawPublisher`]).

use super::harness::{expect_close_citing, listing, payload, DirectSub, RawPublisher};
use super::raw::{datagram_head, subgroup_header, subgroup_object, varint, Raw};
use super::{CheckOutput, Env, Verdict};
use crate::cases::Failure;
use bytes::{BufMut, BytesMut};
use moqlink_model::SessionErrorCode;
use moqlink_transport::{Connection, SendStream};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);

/// The Track Alias the raw publisher assigns in its SUBSCRIBE_OK.
const ALIAS: u64 = 5;

/// A raw publisher of track `t` (alias [`ALIAS`]) and its subscriber through the relay.
async fn start(env: &Env) -> Result<RawPublisher, Verdict> {
    RawPublisher::start(env, ALIAS, "subscriber_connection_id").await
}

/// Waits until the subscriber has object `g`.`o`.
async fn arrived(env: &Env, sub: &DirectSub, g: u64, o: u64) -> bool {
    env.step(format!("object {g}.{o} at the subscriber"));
    sub.wait(T, |got| got.iter().any(|x| (x.group, x.id) == (g, o)))
        .await
}

/// After the invalid object: nothing at `g`.`o` reached the subscriber, whose session is open.
async fn not_propagated(env: &Env, rp: &RawPublisher, g: u64, o: u64) -> Result<(), Failure> {
    env.step("the subscriber's streams to settle");
    rp.sub
        .settle(Duration::from_millis(300), Duration::from_secs(2))
        .await;
    let got = rp.sub.objects();
    if let Some(x) = got.iter().find(|x| (x.group, x.id) == (g, o)) {
        return Err(Failure::new(
            format!("no object {g}.{o} at the subscriber"),
            x.to_string(),
            "if a session is closed due to an invalid object, the relay MUST NOT propagate that \
             object to another session (§8.4)",
        ));
    }
    rp.s.still_open("subscriber")
}

/// Requires the relay to close the publisher's session with PROTOCOL_VIOLATION after `after`
/// (a failure cites `rule`, its received text ends with `flowing`), and object 0.1 not to
/// reach the subscriber.
async fn rejected(
    env: &Env,
    rp: &RawPublisher,
    after: &str,
    rule: &str,
    flowing: &str,
) -> Result<String, Failure> {
    let closed = expect_close_citing(
        env,
        &rp.p.session,
        SessionErrorCode::ProtocolViolation,
        after,
        rule,
    )
    .await
    .map_err(|f| Failure {
        received: format!("{}{flowing}", f.received),
        ..f
    })?;
    not_propagated(env, rp, 0, 1).await?;
    Ok(closed)
}

/// An undefined stream type (0x3b is neither FETCH_HEADER nor a SUBGROUP_HEADER).
const UNKNOWN_STREAM_TYPE: u64 = 0x3b;
/// An undefined datagram type (0x2a is outside 0x00-0x07 and 0x20-0x21).
const UNKNOWN_DATAGRAM_TYPE: u64 = 0x2a;

/// `unknown-stream-type`: a uni stream of type 0x3b followed by a few bytes.
pub async fn unknown_stream_type(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "connection_id", None).await?;
    let mut st = raw
        .conn
        .open_uni()
        .await
        .map_err(|e| Failure::new("a uni stream", e.to_string(), "could not open"))?;
    let mut b = BytesMut::new();
    varint(&mut b, UNKNOWN_STREAM_TYPE);
    b.put_slice(&[0x00, 0x00, 0x80, 0x00]);
    // A relay may stop the stream at once; the session's close is what is judged.
    let _ = st.write_chunk(b.freeze()).await;
    let what = format!("a uni stream of type 0x{UNKNOWN_STREAM_TYPE:x}");
    let rule = "an endpoint that receives an unknown stream type MUST close the session (§10)";
    let out = raw
        .expect_any_close(
            &env,
            &what,
            "the session closed",
            &format!("{what}: {rule}"),
        )
        .await;
    drop(st);
    Ok(out?)
}

/// `unknown-datagram-type`: a datagram of type 0x2a, once the relay carries a subscription
/// for the sender (so datagrams are not dropped for want of one).
pub async fn unknown_datagram_type(env: Env) -> CheckOutput {
    let rp = start(&env).await?;
    // A valid datagram first shows the relay reads this publisher's datagrams.
    let flowing = valid_datagram(&env, &rp).await?;
    let mut b = datagram_head(UNKNOWN_DATAGRAM_TYPE, ALIAS, 0, 1);
    b.put_slice(&payload(&env, 0, 1));
    rp.datagram(b.freeze())?;
    env.step("the relay closing the publisher's session");
    let what = format!("a datagram of type 0x{UNKNOWN_DATAGRAM_TYPE:x}");
    match tokio::time::timeout(T, rp.p.session.closed()).await {
        Ok(c) if c.by_peer => Ok(format!("{what}{flowing}: {c}")),
        Ok(c) => Err(Failure::new(
            "the session closed by the relay",
            super::harness::describe_close(&c),
            "an endpoint that receives an unknown datagram type MUST close the session (§10)",
        )
        .into()),
        Err(_) => Err(Failure::new(
            "the session closed by the relay",
            format!("session still open {} ms later{flowing}", T.as_millis()),
            "an endpoint that receives an unknown datagram type MUST close the session (§10)",
        )
        .into()),
    }
}

/// Sends datagram 0.0 (type 0x00) until the subscriber has it, at most [`T`]; says whether
/// it arrived (datagrams may be lost, and a relay need not forward them: the check goes on).
async fn valid_datagram(env: &Env, rp: &RawPublisher) -> Result<&'static str, Failure> {
    env.step("a valid datagram at the subscriber");
    let mut b = datagram_head(0x00, ALIAS, 0, 0);
    b.put_slice(&payload(env, 0, 0));
    let d = b.freeze();
    for _ in 0..10 {
        rp.datagram(d.clone())?;
        if rp
            .sub
            .wait(Duration::from_millis(300), |g| g.iter().any(|x| x.id == 0))
            .await
        {
            return Ok(" (after a valid datagram 0.0 was relayed)");
        }
    }
    Ok(" (a valid datagram 0.0 sent first was not relayed)")
}

/// The rule the Object Does Not Exist checks cite.
const NOT_EXIST_RULE: &str = "if an endpoint receives a non-existent Object containing extension \
                              headers it MUST close the session with a PROTOCOL_VIOLATION \
                              (§10.2.1.2)";

/// `object-does-not-exist-extensions`: on a 0x11 stream, object 0.0, then 0.1 with status
/// Object Does Not Exist and a 2-byte extension block.
pub async fn does_not_exist_extensions(env: Env) -> CheckOutput {
    let rp = start(&env).await?;
    let mut b = subgroup_header(0x11, ALIAS, 0);
    subgroup_object(&mut b, 0, Some(&[]), &payload(&env, 0, 0));
    let mut st = rp.stream(b.split().freeze()).await?;
    let first = arrived(&env, &rp.sub, 0, 0).await;
    // Object 0.1: delta 0, extensions [0x04 = 1], payload length 0, status 0x1.
    subgroup_object(&mut b, 0, Some(&[0x04, 0x01]), &[]);
    varint(&mut b, 0x1);
    // A relay may stop the stream at once; the session's close is what is judged.
    let _ = st.write_chunk(b.freeze()).await;
    let closed = rejected(
        &env,
        &rp,
        "an Object Does Not Exist with extension headers",
        NOT_EXIST_RULE,
        "",
    )
    .await?;
    Ok(format!(
        "{closed}; the subscriber got {} and not 0.1{}",
        listing(&rp.sub.objects()),
        if first {
            ""
        } else {
            " (0.0 not relayed first)"
        }
    ))
}

/// `object-does-not-exist-extensions-datagram`: after datagram 0.0, a 0x21 status datagram
/// 0.1 with status Object Does Not Exist and a 2-byte extension block.
pub async fn does_not_exist_extensions_datagram(env: Env) -> CheckOutput {
    let rp = start(&env).await?;
    let flowing = valid_datagram(&env, &rp).await?;
    let mut b = datagram_head(0x21, ALIAS, 0, 1);
    varint(&mut b, 2);
    b.put_slice(&[0x04, 0x01]);
    varint(&mut b, 0x1);
    rp.datagram(b.freeze())?;
    let closed = rejected(
        &env,
        &rp,
        "a 0x21 datagram: Object Does Not Exist with extension headers",
        NOT_EXIST_RULE,
        flowing,
    )
    .await?;
    Ok(format!("{closed}{flowing}; datagram 0.1 not relayed"))
}

/// `datagram-extensions-empty`: datagram 0.1 of type 0x01 with Extension Headers Length 0.
pub async fn datagram_extensions_empty(env: Env) -> CheckOutput {
    let rp = start(&env).await?;
    let flowing = valid_datagram(&env, &rp).await?;
    let mut b = datagram_head(0x01, ALIAS, 0, 1);
    varint(&mut b, 0);
    b.put_slice(&payload(&env, 0, 1));
    rp.datagram(b.freeze())?;
    let closed = rejected(
        &env,
        &rp,
        "a 0x01 datagram with Extension Headers Length 0",
        "if an endpoint receives a datagram with Extensions Present as \"Yes\" and a Extension \
         Headers Length of 0, it MUST close the session with PROTOCOL_VIOLATION (§10.3.1)",
        flowing,
    )
    .await?;
    Ok(format!("{closed}{flowing}; datagram 0.1 not relayed"))
}

/// `subgroup-stream-next-object`: subgroup 0 of group 0 arrives on two upstream streams:
/// objects 0 and 1 on the first (left open), then objects 3 and 4 on a second. The relay
/// cannot know that 3 is the next object after 1 (2 may exist), so 3 must not follow 1 on the
/// downstream stream; that stream must end with a reset, not a FIN, once it is closed.
pub async fn subgroup_next_object(env: Env) -> CheckOutput {
    let rp = start(&env).await?;
    let mut b = subgroup_header(0x10, ALIAS, 0);
    subgroup_object(&mut b, 0, None, &payload(&env, 0, 0));
    subgroup_object(&mut b, 0, None, &payload(&env, 0, 1));
    let mut a = rp.stream(b.split().freeze()).await?;
    if !arrived(&env, &rp.sub, 0, 1).await {
        return Err(Failure::new(
            "objects 0.0 and 0.1 relayed",
            listing(&rp.sub.objects()),
            "the relay did not forward the objects this check builds on",
        )
        .into());
    }
    // The second stream: its first object's ID is its delta.
    let mut b = subgroup_header(0x10, ALIAS, 0);
    subgroup_object(&mut b, 3, None, &payload(&env, 0, 3));
    subgroup_object(&mut b, 0, None, &payload(&env, 0, 4));
    let mut second = rp.stream(b.freeze()).await?;
    let forwarded = arrived(&env, &rp.sub, 0, 4).await;
    let got = rp.sub.objects();
    let stream_of = |o: u64| got.iter().find(|x| x.id == o).map(|x| x.stream);
    let old = stream_of(1);
    let rule_not = "a relay MUST NOT forward an Object on an existing Subgroup stream unless it \
                    is the next Object in that Subgroup; if it does not know, it MUST reset the \
                    Subgroup stream and open a new one (§10.4.3)";
    if !forwarded {
        // Dropping them breaks no rule this check tests (the publisher SHOULD NOT have opened
        // a second stream with the same header, §10.4): nothing to judge.
        return Err(Verdict::NotApplicable(format!(
            "the relay did not forward objects 0.3 and 0.4 of the subgroup's second upstream \
             stream (subscriber got {}): the next-object rule is not exercised",
            listing(&got)
        )));
    }
    if let Some(x) = got.iter().find(|x| x.id >= 3 && Some(x.stream) == old) {
        return Err(Failure::new(
            "object 0.3 on a new stream (0.2 may exist: 0.3 is not known to be next after 0.1)",
            format!(
                "object 0.{} followed 0.1 on downstream stream {}",
                x.id, x.stream
            ),
            rule_not,
        )
        .into());
    }
    // The first upstream stream is cut: whatever the relay kept open must now end.
    let _ = a.reset(0x1);
    let _ = second.finish();
    let old = old.unwrap_or_default();
    env.step("the end of the downstream stream that carried 0.0 and 0.1");
    rp.sub
        .wait(T, |_| rp.sub.ends().iter().any(|e| e.stream == old))
        .await;
    let end = rp.sub.ends().into_iter().find(|e| e.stream == old);
    match end {
        Some(e) if e.reset.is_some() => Ok(format!(
            "0.0, 0.1 on downstream stream {old} (reset 0x{:x}), 0.3 and 0.4 on stream {}",
            e.reset.unwrap_or_default(),
            stream_of(3).unwrap_or_default()
        )),
        other => Err(Failure::new(
            format!("downstream stream {old} (objects 0.0, 0.1) ended with a reset"),
            match other {
                Some(_) => "it ended with FIN, claiming the subgroup complete without 0.3".into(),
                None => format!("still open {} ms after the upstream reset", T.as_millis()),
            },
            "if a sender closes the stream before delivering all such objects, it MUST use a \
             RESET_STREAM; an object not known to be next needs a new stream (§10.4.3)",
        )
        .into()),
    }
}
