//! Malformed and half-sent input: names the draft forbids (§2.4.1), messages and objects that
//! declare more bytes than ever follow (§9, §10.4.2), and data streams that never complete
//! their header (§10.4, §12.2).

use super::{attack_ns, expect_closed, raw_state, Bystander, Findings, T};
use crate::cases::Failure;
use crate::conformance::harness::{DirectSub, Endpoint, SubOpts};
use crate::conformance::raw::{describe as describe_event, frame, tuple, varint, Event, Raw};
use crate::conformance::{CheckOutput, Env};
use bytes::{BufMut, Bytes, BytesMut};
use moqlink_model::control::*;
use moqlink_model::params::VersionParameters;
use moqlink_model::{Encoding, GroupOrder, SessionErrorCode, Version};
use moqlink_transport::{Connection, SendStream};
use std::time::Duration;

/// Wire SUBSCRIBE (type 0x3) payload for `fields` / `name`, Largest Object, no parameters.
fn subscribe_payload(request_id: u64, fields: &[&[u8]], name: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    varint(&mut b, request_id);
    tuple(&mut b, fields);
    varint(&mut b, name.len() as u64);
    b.put_slice(name);
    // Subscriber Priority, Group Order (original), Forward.
    b.put_slice(&[128, 0, 1]);
    varint(&mut b, 0x2);
    varint(&mut b, 0);
    b
}

/// `zero-field-namespace`: PUBLISH_NAMESPACE, SUBSCRIBE and SUBSCRIBE_NAMESPACE with a
/// namespace of 0 fields, each from its own session, while a bystander uses the relay. The
/// first two must close their session with PROTOCOL_VIOLATION; the third is reported only.
pub async fn zero_field_namespace(env: Env) -> CheckOutput {
    let mut by = Bystander::start(&env).await?;
    let mut f = Findings::default();
    let rule = "an endpoint receiving a namespace tuple with N of 0 MUST close the session with \
                PROTOCOL_VIOLATION (§2.4.1)";
    // PUBLISH_NAMESPACE (0x6): Request ID, Track Namespace, Number of Parameters.
    let mut b = BytesMut::new();
    varint(&mut b, 0);
    tuple(&mut b, &[]);
    varint(&mut b, 0);
    let mut a = Raw::setup(&env, "attacker_connection_id", None).await?;
    a.send_bytes(frame(0x06, &b)).await?;
    let what = "PUBLISH_NAMESPACE with a 0-field namespace";
    expect_closed(
        &env,
        &mut a,
        SessionErrorCode::ProtocolViolation,
        what,
        rule,
        &mut f,
    )
    .await;
    // SUBSCRIBE (0x3) for track "t" in a 0-field namespace.
    let mut s = Raw::setup(&env, "subscribe_attacker_connection_id", None).await?;
    s.send_bytes(frame(0x03, &subscribe_payload(0, &[], b"t")))
        .await?;
    let what = "SUBSCRIBE with a 0-field namespace";
    expect_closed(
        &env,
        &mut s,
        SessionErrorCode::ProtocolViolation,
        what,
        rule,
        &mut f,
    )
    .await;
    // SUBSCRIBE_NAMESPACE (0x11) with a 0-field prefix: what the relay does is reported, not
    // judged (moq-dev's relay sends one to every client, so relays accept it; the suite's
    // reading D3 in ../testvectors/DISAGREEMENTS.md); the bystander probe still applies.
    let mut n = Raw::setup(&env, "namespace_attacker_connection_id", None).await?;
    n.send_bytes(frame(0x11, &b)).await?;
    let what = "SUBSCRIBE_NAMESPACE with a 0-field prefix";
    match n
        .expect_close(&env, SessionErrorCode::ProtocolViolation, T, what)
        .await
    {
        Ok(msg) => f.note(msg),
        Err(x) => f.note(format!("{what}: {} (not judged, D3)", x.received)),
    }
    by.after(&env, "three 0-field namespaces", true, &mut f)
        .await;
    f.verdict()
}

/// `full-track-name-too-long`: SUBSCRIBE for a 4097-byte Full Track Name in the namespace the
/// bystander publishes, so a relay that does not check it would forward it there.
pub async fn full_track_name_too_long(env: Env) -> CheckOutput {
    let mut by = Bystander::start(&env).await?;
    let mut f = Findings::default();
    let ns = env.namespace_with(&["bystander"]);
    let fields: Vec<&[u8]> = ns.fields().iter().map(|x| x.bytes().as_ref()).collect();
    let ns_len: usize = fields.iter().map(|x| x.len()).sum();
    let name = vec![b'x'; 4097 - ns_len];
    let mut a = Raw::setup(&env, "attacker_connection_id", None).await?;
    a.send_bytes(frame(0x03, &subscribe_payload(0, &fields, &name)))
        .await?;
    expect_closed(
        &env,
        &mut a,
        SessionErrorCode::ProtocolViolation,
        "SUBSCRIBE whose Full Track Name is 4097 bytes",
        "an endpoint receiving a Full Track Name over 4,096 bytes MUST close the session with \
         PROTOCOL_VIOLATION (§2.4.1)",
        &mut f,
    )
    .await;
    // The name must not have reached the bystander publisher (§8.4: not propagated).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let leaked = by.publisher_saw(
        |m| matches!(m, ControlMessage::Subscribe(s) if s.name.bytes().len() > 1000),
    );
    if leaked > 0 {
        f.must(Failure::new(
            "no SUBSCRIBE with the over-long name at the namespace's publisher",
            format!("{leaked} such SUBSCRIBE(s) forwarded to the bystander publisher"),
            "a relay MUST NOT propagate a message that closed a session to another session \
             (§8.4)",
        ));
    }
    by.after(&env, "a 4097-byte Full Track Name", true, &mut f)
        .await;
    f.verdict()
}

/// The attacker's subgroup stream: SUBGROUP_HEADER 0x10 for `alias`, group `group`, then one
/// object that declares `length` payload bytes and sends 64.
fn truncated_object(alias: u64, group: u64, length: u64) -> Bytes {
    let mut b = BytesMut::new();
    varint(&mut b, 0x10);
    varint(&mut b, alias);
    varint(&mut b, group);
    b.put_u8(128);
    varint(&mut b, 0);
    varint(&mut b, length);
    b.put_slice(&[0x5a; 64]);
    b.freeze()
}

/// `oversize-declared-length`: a control message whose 16-bit Length says 65535 bytes with 10
/// following, and subgroup objects whose Object Payload Length says 2^62-1 and 2^32 bytes with
/// 64 following; then the attackers stay silent with their streams open.
pub async fn oversize_declared_length(env: Env) -> CheckOutput {
    let mut by = Bystander::start(&env).await?;
    let mut f = Findings::default();
    // A SUBSCRIBE header that promises 65535 bytes.
    let mut c = Raw::setup(&env, "control_attacker_connection_id", None).await?;
    let mut b = BytesMut::new();
    varint(&mut b, 0x03);
    b.put_u16(0xffff);
    b.put_slice(&[0, 1, 4, b'a', b't', b't', b'k', 1, b't', 128]);
    c.send_bytes(b.freeze()).await?;
    // A publisher whose objects promise more than they send.
    let mut p = Raw::setup(&env, "publisher_attacker_connection_id", Some(16)).await?;
    let ns = attack_ns(&env, "oversize");
    p.send(&ControlMessage::PublishNamespace(PublishNamespace {
        request_id: 0,
        namespace: ns.clone(),
        parameters: VersionParameters::new(),
    }))
    .await?;
    let name = moqlink_transport::track::TrackName {
        namespace: ns,
        name: moqlink_model::Blob::from("t"),
    };
    // A subscriber of the attacker's track makes the relay subscribe upstream.
    let victim = Endpoint::connect(&env, "attacked_subscriber_connection_id").await?;
    let session = victim.session.clone();
    let pending =
        tokio::spawn(
            async move { DirectSub::subscribe(&session, &name, SubOpts::default()).await },
        );
    env.step("the relay's SUBSCRIBE at the attacking publisher");
    let mut streams = Vec::new();
    let deadline = tokio::time::Instant::now() + T;
    let mut subscribed = None;
    while subscribed.is_none() && tokio::time::Instant::now() < deadline {
        match p.next(Duration::from_millis(500)).await {
            Event::Message(ControlMessage::Subscribe(s)) => subscribed = Some(s),
            Event::Message(_) | Event::Quiet => {}
            other => {
                f.note(format!("attacking publisher: {}", describe_event(&other)));
                break;
            }
        }
    }
    match subscribed {
        None => f.note("the relay sent no SUBSCRIBE to the attacking publisher: objects not sent"),
        Some(s) => {
            const ALIAS: u64 = 7;
            p.send(&ControlMessage::SubscribeOk(SubscribeOk {
                request_id: s.request_id,
                track_alias: ALIAS,
                expires: 0,
                group_order: GroupOrder::Ascending,
                largest_location: None,
                parameters: VersionParameters::new(),
            }))
            .await?;
            for (group, length) in [(0, (1u64 << 62) - 1), (1, 1u64 << 32)] {
                match p.conn.open_uni().await {
                    Ok(mut st) => {
                        let _ = st.write_chunk(truncated_object(ALIAS, group, length)).await;
                        streams.push(st);
                    }
                    Err(e) => f.note(format!("attacking publisher: no data stream ({e})")),
                }
            }
            f.note(format!(
                "{} subgroup stream(s) with objects declaring 2^62-1 and 2^32 payload bytes sent",
                streams.len()
            ));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    by.after(&env, "oversize declared lengths", false, &mut f)
        .await;
    f.note(format!(
        "control attacker: {}",
        raw_state(&mut c, Duration::from_millis(100)).await
    ));
    f.note(format!(
        "publisher attacker: {}",
        raw_state(&mut p, Duration::from_millis(100)).await
    ));
    if pending.is_finished() {
        if let Ok(Ok(sub)) = pending.await {
            f.note(format!(
                "the attacked track's subscriber got {} object(s)",
                sub.objects().len()
            ));
        }
    } else {
        pending.abort();
    }
    drop(streams);
    f.verdict()
}

/// Uni streams the `headerless-streams` attacker tries to open.
const HEADERLESS: usize = 1000;

/// `headerless-streams`: as many uni streams as the relay lets the attacker open (up to
/// 1000), each carrying only the first byte of a two-byte stream type, left open.
pub async fn headerless_streams(env: Env) -> CheckOutput {
    let mut by = Bystander::start(&env).await?;
    let mut f = Findings::default();
    let mut a = Raw::setup(&env, "attacker_connection_id", None).await?;
    env.step("the attacker's uni streams");
    let mut streams = Vec::new();
    let mut stopped = 0usize;
    let mut why = format!("{HEADERLESS} opened");
    while streams.len() < HEADERLESS {
        match tokio::time::timeout(Duration::from_millis(300), a.conn.open_uni()).await {
            Err(_) => {
                why = format!(
                    "the relay's stream limit held the attacker at {} open streams",
                    streams.len()
                );
                break;
            }
            Ok(Err(e)) => {
                why = format!("opening stream {} failed: {e}", streams.len() + 1);
                break;
            }
            Ok(Ok(mut s)) => {
                // 0x40 begins a two-byte varint: the stream type never completes.
                if s.write_chunk(Bytes::from_static(&[0x40])).await.is_err() {
                    stopped += 1;
                }
                streams.push(s);
            }
        }
    }
    f.note(why);
    if stopped > 0 {
        f.note(format!("{stopped} stream(s) stopped by the relay at once"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    by.after(
        &env,
        &format!("{} headerless uni streams", streams.len()),
        false,
        &mut f,
    )
    .await;
    f.note(format!(
        "attacker: {}",
        raw_state(&mut a, Duration::from_millis(100)).await
    ));
    drop(streams);
    f.verdict()
}

/// SUBSCRIBE for `name` encoded as the model encodes it (for floods).
pub(super) fn encode_subscribe(
    b: &mut BytesMut,
    request_id: u64,
    name: &moqlink_transport::track::TrackName,
) -> Result<(), Failure> {
    crate::conformance::raw::subscribe_for(request_id, name, VersionParameters::new())
        .encode(b, Encoding::new(Version::DRAFT_14))
        .map_err(|e| Failure::new("an encodable SUBSCRIBE", e.to_string(), "local encoder"))
}
