//! Answers to requests: exactly one OK or ERROR per SUBSCRIBE, FETCH and PUBLISH (§5.1),
//! SUBSCRIBE_NAMESPACE (§6.1) and PUBLISH_NAMESPACE (§6.2), for accepted and refused requests
//! alike; and no objects for a request that ended with an error (§5.1).
//!
//! A raw client sends the requests one by one and waits for each one's first answer. Then it
//! sends a barrier (SUBSCRIBE for a track nobody publishes), waits for that answer and reads
//! on for a second more: a duplicate answer the relay queued before the barrier's arrives before
//! it, a later one within that second is seen too.

use super::harness::{subscribe, write_group, Endpoint, Publisher, SubOpts};
use super::raw::{describe, Event, Raw};
use super::{CheckOutput, Env, Verdict};
use crate::cases::Failure;
use bytes::Bytes;
use moqlink_model::control::*;
use moqlink_model::params::VersionParameters;
use moqlink_model::{Blob, GroupOrder, Location, TrackNamespace};
use moqlink_transport::{Connection, RecvStream};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const T: Duration = Duration::from_secs(3);
/// How long the check reads on after the barrier's answer.
const LINGER: Duration = Duration::from_millis(1000);

/// The request an answer message answers: its Request ID and the request type's name.
fn answer_to(m: &ControlMessage) -> Option<(u64, &'static str)> {
    use ControlMessage as M;
    Some(match m {
        M::SubscribeOk(o) => (o.request_id, "SUBSCRIBE"),
        M::SubscribeError(e) => (e.request_id, "SUBSCRIBE"),
        M::FetchOk(o) => (o.request_id, "FETCH"),
        M::FetchError(e) => (e.request_id, "FETCH"),
        M::PublishOk(o) => (o.request_id, "PUBLISH"),
        M::PublishError(e) => (e.request_id, "PUBLISH"),
        M::SubscribeNamespaceOk(r) => (r.request_id, "SUBSCRIBE_NAMESPACE"),
        M::SubscribeNamespaceError(e) => (e.request_id, "SUBSCRIBE_NAMESPACE"),
        M::PublishNamespaceOk(r) => (r.request_id, "PUBLISH_NAMESPACE"),
        M::PublishNamespaceError(e) => (e.request_id, "PUBLISH_NAMESPACE"),
        M::TrackStatusOk(o) => (o.request_id, "TRACK_STATUS"),
        M::TrackStatusError(e) => (e.request_id, "TRACK_STATUS"),
        _ => return None,
    })
}

/// One answer as it reads in a diagnostic, e.g. `SUBSCRIBE_ERROR code 0x4`.
fn answer_text(m: &ControlMessage) -> String {
    describe(&Event::Message(m.clone()))
}

/// Whether an answer is an error.
fn is_error(m: &ControlMessage) -> bool {
    m.message_type().name().ends_with("_ERROR")
}

/// One request the check sends: what it is and the message (with its Request ID).
pub struct Ask {
    /// What the request is, e.g. `SUBSCRIBE for a track nobody publishes`.
    pub label: String,
    /// The request.
    pub msg: ControlMessage,
}

/// The answers each request got, in the order sent.
pub struct Answers {
    /// Per request: its label, Request ID and the answers.
    pub per_request: Vec<(String, u64, Vec<ControlMessage>)>,
}

impl Answers {
    /// Fails when a request did not get exactly one answer; otherwise a summary.
    pub fn exactly_one(&self, kind: &str, why: &str) -> Result<String, Failure> {
        let mut summary = Vec::new();
        for (label, id, got) in &self.per_request {
            let texts: Vec<String> = got.iter().map(answer_text).collect();
            if got.len() != 1 {
                return Err(Failure::new(
                    format!("exactly one {kind}_OK or {kind}_ERROR for request {id} ({label})"),
                    format!("{} answers: [{}]", got.len(), texts.join(", ")),
                    why,
                ));
            }
            summary.push(format!("{label}: {}", texts.join("")));
        }
        Ok(format!(
            "one answer per request, none more within {} ms after a later request's answer: {}",
            LINGER.as_millis(),
            summary.join("; ")
        ))
    }
}

fn record(seen: &mut BTreeMap<u64, Vec<ControlMessage>>, m: ControlMessage) {
    if let Some((id, _)) = answer_to(&m) {
        seen.entry(id).or_default().push(m);
    }
}

/// Sends `msg` and reads until its first answer, recording every answer that arrives.
async fn ask_and_wait(
    env: &Env,
    raw: &mut Raw,
    seen: &mut BTreeMap<u64, Vec<ControlMessage>>,
    label: &str,
    msg: &ControlMessage,
) -> Result<(), Verdict> {
    let id = msg.request_id().unwrap_or_default();
    if id >= raw.max_request_id {
        return Err(Verdict::NotApplicable(format!(
            "the relay's MAX_REQUEST_ID {} does not allow Request ID {id}",
            raw.max_request_id
        )));
    }
    raw.send(msg).await?;
    env.step(format!("the answer to request {id} ({label})"));
    while !seen.contains_key(&id) {
        match raw.next(T).await {
            Event::Message(m) => record(seen, m),
            other => {
                return Err(Failure::new(
                    format!("an answer to request {id} ({label})"),
                    describe(&other),
                    "the relay did not answer the request",
                )
                .into())
            }
        }
    }
    Ok(())
}

/// Sends each request and waits for its first answer, then a barrier (SUBSCRIBE with
/// Request ID `barrier_id` for a track nobody publishes) and its answer, reads on for
/// [`LINGER`], and returns every answer each request got.
pub async fn count_answers(
    env: &Env,
    raw: &mut Raw,
    asks: Vec<Ask>,
    barrier_id: u64,
) -> Result<Answers, Verdict> {
    let mut seen: BTreeMap<u64, Vec<ControlMessage>> = BTreeMap::new();
    for a in &asks {
        ask_and_wait(env, raw, &mut seen, &a.label, &a.msg).await?;
    }
    let barrier = ControlMessage::Subscribe(Subscribe {
        request_id: barrier_id,
        namespace: env.namespace_with(&["barrier-nobody-publishes"]),
        name: Blob::from(format!("barrier-{barrier_id}")),
        subscriber_priority: 128,
        group_order: GroupOrder::Original,
        forward: true,
        filter: Filter::LargestObject,
        parameters: VersionParameters::new(),
    });
    ask_and_wait(env, raw, &mut seen, "SUBSCRIBE as a barrier", &barrier).await?;
    env.step("any further answer");
    let deadline = tokio::time::Instant::now() + LINGER;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match raw.next(left).await {
            Event::Message(m) => record(&mut seen, m),
            Event::Quiet => break,
            other => {
                return Err(Failure::new(
                    "the session open after the answers",
                    describe(&other),
                    "the relay closed the session after answering",
                )
                .into())
            }
        }
    }
    let per_request = asks
        .into_iter()
        .map(|a| {
            let id = a.msg.request_id().unwrap_or_default();
            (a.label, id, seen.remove(&id).unwrap_or_default())
        })
        .collect();
    Ok(Answers { per_request })
}

fn subscribe_msg(id: u64, ns: TrackNamespace, name: &str, filter: Filter) -> ControlMessage {
    ControlMessage::Subscribe(Subscribe {
        request_id: id,
        namespace: ns,
        name: Blob::from(name),
        subscriber_priority: 128,
        group_order: GroupOrder::Original,
        forward: true,
        filter,
        parameters: VersionParameters::new(),
    })
}

fn fetch_msg(
    id: u64,
    ns: TrackNamespace,
    name: &str,
    start: Location,
    end: FetchEnd,
) -> ControlMessage {
    ControlMessage::Fetch(Fetch {
        request_id: id,
        subscriber_priority: 128,
        group_order: GroupOrder::Original,
        fetch: FetchKind::Standalone {
            namespace: ns,
            name: Blob::from(name),
            start,
            end,
        },
        parameters: VersionParameters::new(),
    })
}

fn ask(label: &str, msg: ControlMessage) -> Ask {
    Ask {
        label: label.into(),
        msg,
    }
}

/// `subscribe-one-answer`: SUBSCRIBEs accepted, refused upstream and refused by the relay.
pub async fn subscribe_one_answer(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    write_group(&env, p.track(), 0, 0..2).await;
    let mut raw = Raw::setup(&env, "subscriber_connection_id", None).await?;
    let ns = env.namespace();
    let asks = vec![
        ask(
            "SUBSCRIBE for the published track",
            subscribe_msg(0, ns.clone(), "t", Filter::LargestObject),
        ),
        ask(
            "SUBSCRIBE the publisher refuses",
            subscribe_msg(2, ns, "absent", Filter::LargestObject),
        ),
        ask(
            "SUBSCRIBE in a namespace nobody publishes",
            subscribe_msg(
                4,
                env.namespace_with(&["nobody"]),
                "t",
                Filter::LargestObject,
            ),
        ),
    ];
    let answers = count_answers(&env, &mut raw, asks, 6).await?;
    p.ep.still_open("publisher")?;
    Ok(answers.exactly_one(
        "SUBSCRIBE",
        "a publisher MUST send exactly one SUBSCRIBE_OK or SUBSCRIBE_ERROR per SUBSCRIBE (§5.1)",
    )?)
}

/// `fetch-one-answer`: FETCHes of cached objects, of a track nobody publishes and of an
/// inverted range.
pub async fn fetch_one_answer(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let sub = subscribe(&env, &s, &env.track("t"), SubOpts::default()).await?;
    p.upstream(&env, 1).await?;
    write_group(&env, p.track(), 0, 0..3).await;
    env.step("objects 0.0-0.2 at the subscriber");
    if !sub.wait_count(3, T).await {
        return Err(Failure::new(
            "objects 0.0-0.2 relayed",
            super::harness::listing(&sub.objects()),
            "the relay did not forward the objects this check fetches",
        )
        .into());
    }
    let mut raw = Raw::setup(&env, "fetcher_connection_id", None).await?;
    let ns = env.namespace();
    let whole = FetchEnd {
        group: 0,
        object: None,
    };
    let asks = vec![
        ask(
            "FETCH of group 0, relayed before",
            fetch_msg(0, ns.clone(), "t", Location::new(0, 0), whole),
        ),
        ask(
            "FETCH of a track nobody publishes",
            fetch_msg(
                2,
                env.namespace_with(&["nobody"]),
                "t",
                Location::new(0, 0),
                whole,
            ),
        ),
        ask(
            "FETCH from 0.2 to 0.0 (End before Start)",
            fetch_msg(
                4,
                ns,
                "t",
                Location::new(0, 2),
                FetchEnd {
                    group: 0,
                    object: Some(0),
                },
            ),
        ),
    ];
    let answers = count_answers(&env, &mut raw, asks, 6).await?;
    Ok(answers.exactly_one(
        "FETCH",
        "a publisher MUST send exactly one FETCH_OK or FETCH_ERROR per FETCH (§5.1)",
    )?)
}

fn publish_msg(
    id: u64,
    ns: TrackNamespace,
    name: &str,
    alias: u64,
    forward: bool,
) -> ControlMessage {
    ControlMessage::Publish(Publish {
        request_id: id,
        namespace: ns,
        name: Blob::from(name),
        track_alias: alias,
        group_order: GroupOrder::Ascending,
        largest_location: None,
        forward,
        parameters: VersionParameters::new(),
    })
}

/// `publish-one-answer`: PUBLISHes with Forward 1 and 0; the relay is their subscriber.
pub async fn publish_one_answer(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "publisher_connection_id", None).await?;
    let ns = env.namespace();
    let asks = vec![
        ask(
            "PUBLISH with Forward 1",
            publish_msg(0, ns.clone(), "a", 1, true),
        ),
        ask("PUBLISH with Forward 0", publish_msg(2, ns, "b", 2, false)),
    ];
    let answers = count_answers(&env, &mut raw, asks, 4).await?;
    Ok(answers.exactly_one(
        "PUBLISH",
        "a subscriber MUST send exactly one PUBLISH_OK or PUBLISH_ERROR per PUBLISH (§5.1)",
    )?)
}

fn subscribe_namespace_msg(id: u64, prefix: TrackNamespace) -> ControlMessage {
    ControlMessage::SubscribeNamespace(SubscribeNamespace {
        request_id: id,
        namespace_prefix: prefix,
        parameters: VersionParameters::new(),
    })
}

/// `subscribe-namespace-one-answer`: a SUBSCRIBE_NAMESPACE, then two overlapping ones the
/// relay must refuse with NAMESPACE_PREFIX_OVERLAP (§9.28).
pub async fn subscribe_namespace_one_answer(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "subscriber_connection_id", None).await?;
    let asks = vec![
        ask(
            "SUBSCRIBE_NAMESPACE for the check's namespace + x",
            subscribe_namespace_msg(0, env.namespace_with(&["x"])),
        ),
        ask(
            "SUBSCRIBE_NAMESPACE for a longer, overlapping prefix",
            subscribe_namespace_msg(2, env.namespace_with(&["x", "y"])),
        ),
        ask(
            "SUBSCRIBE_NAMESPACE for the same prefix again",
            subscribe_namespace_msg(4, env.namespace_with(&["x"])),
        ),
    ];
    let answers = count_answers(&env, &mut raw, asks, 6).await?;
    Ok(answers.exactly_one(
        "SUBSCRIBE_NAMESPACE",
        "a publisher MUST send exactly one SUBSCRIBE_NAMESPACE_OK or SUBSCRIBE_NAMESPACE_ERROR \
         per SUBSCRIBE_NAMESPACE (§6.1)",
    )?)
}

fn publish_namespace_msg(id: u64, ns: TrackNamespace) -> ControlMessage {
    ControlMessage::PublishNamespace(PublishNamespace {
        request_id: id,
        namespace: ns,
        parameters: VersionParameters::new(),
    })
}

/// `publish-namespace-one-answer`: PUBLISH_NAMESPACE for two namespaces and one of them again.
pub async fn publish_namespace_one_answer(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "publisher_connection_id", None).await?;
    let asks = vec![
        ask(
            "PUBLISH_NAMESPACE a",
            publish_namespace_msg(0, env.namespace_with(&["a"])),
        ),
        ask(
            "PUBLISH_NAMESPACE b",
            publish_namespace_msg(2, env.namespace_with(&["b"])),
        ),
        ask(
            "PUBLISH_NAMESPACE a again",
            publish_namespace_msg(4, env.namespace_with(&["a"])),
        ),
    ];
    let answers = count_answers(&env, &mut raw, asks, 6).await?;
    Ok(answers.exactly_one(
        "PUBLISH_NAMESPACE",
        "a subscriber MUST send exactly one PUBLISH_NAMESPACE_OK or PUBLISH_NAMESPACE_ERROR per \
         PUBLISH_NAMESPACE (§6.2)",
    )?)
}

/// The data a connection received: per uni stream and datagram, its type and the Track Alias
/// or Request ID after it.
#[derive(Clone, Default)]
pub struct DataTap {
    seen: Arc<Mutex<Vec<Arrival>>>,
}

/// One data stream or datagram: `stream` or `datagram`, its type, and the Track Alias or
/// Request ID after the type.
pub type Arrival = (&'static str, u64, u64);

impl DataTap {
    /// Starts reading `conn`'s uni streams and datagrams.
    pub fn start<C: Connection + Clone + 'static>(
        conn: &C,
    ) -> (DataTap, tokio::task::JoinHandle<()>) {
        let tap = DataTap::default();
        let (c1, c2) = (conn.clone(), conn.clone());
        let (t1, t2) = (tap.clone(), tap.clone());
        let task = tokio::spawn(async move {
            let streams = async move {
                while let Ok(mut s) = c1.accept_uni().await {
                    let t = t1.clone();
                    tokio::spawn(async move {
                        let mut head = Vec::new();
                        while head.len() < 16 {
                            match s.read_chunk(16 - head.len()).await {
                                Ok(Some(b)) => head.extend_from_slice(&b),
                                _ => break,
                            }
                            if two_varints(&head).is_some() {
                                break;
                            }
                        }
                        let (ty, id) = two_varints(&head).unwrap_or((u64::MAX, u64::MAX));
                        t.push("stream", ty, id);
                        s.stop(0);
                    });
                }
            };
            let datagrams = async move {
                while let Ok(d) = c2.recv_datagram().await {
                    let (ty, alias) = two_varints(&d).unwrap_or((u64::MAX, u64::MAX));
                    t2.push("datagram", ty, alias);
                }
            };
            tokio::join!(streams, datagrams);
        });
        (tap, task)
    }

    fn push(&self, what: &'static str, ty: u64, id: u64) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((what, ty, id));
    }

    /// What arrived: (`stream` or `datagram`, type, Track Alias or Request ID).
    pub fn seen(&self) -> Vec<Arrival> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The first two QUIC varints of `b`, if both are complete.
fn two_varints(b: &[u8]) -> Option<(u64, u64)> {
    let mut buf = Bytes::copy_from_slice(b);
    let a = moqlink_model::varint::read(&mut buf).ok()?;
    let c = moqlink_model::varint::read(&mut buf).ok()?;
    Some((a, c))
}

/// `objects-not-sent-after-error`: while a track's objects flow to one subscriber, a second
/// session's refused SUBSCRIBEs and FETCHes for it get no data stream and no datagram.
pub async fn no_objects_after_error(env: Env) -> CheckOutput {
    let p = Publisher::start(&env, &["t"]).await?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let sub = subscribe(&env, &s, &env.track("t"), SubOpts::default()).await?;
    p.upstream(&env, 1).await?;
    write_group(&env, p.track(), 0, 0..2).await;
    let mut raw = Raw::setup(&env, "refused_connection_id", None).await?;
    let (tap, task) = DataTap::start(&raw.conn);
    let ns = env.namespace();
    let asks = vec![
        ask(
            "SUBSCRIBE the publisher refuses",
            subscribe_msg(0, ns.clone(), "absent", Filter::LargestObject),
        ),
        ask(
            "FETCH of a track nobody publishes",
            fetch_msg(
                2,
                ns.clone(),
                "absent",
                Location::new(0, 0),
                FetchEnd {
                    group: 0,
                    object: None,
                },
            ),
        ),
        ask(
            "FETCH of the live track from 0.1 to 0.0 (End before Start)",
            fetch_msg(
                4,
                ns.clone(),
                "t",
                Location::new(0, 1),
                FetchEnd {
                    group: 0,
                    object: Some(0),
                },
            ),
        ),
    ];
    // A relay that leaves a request unanswered gives this check nothing to watch.
    let answers = match count_answers(&env, &mut raw, asks, 6).await {
        Err(Verdict::Fail(f)) => {
            task.abort();
            return Err(Verdict::NotApplicable(format!(
                "this check needs its requests answered: {} ({})",
                f.expected, f.received
            )));
        }
        other => other?,
    };
    let refused: Vec<&(String, u64, Vec<ControlMessage>)> = answers
        .per_request
        .iter()
        .filter(|(_, _, got)| got.first().is_some_and(is_error))
        .collect();
    let accepted: Vec<u64> = answers
        .per_request
        .iter()
        .filter(|(_, _, got)| got.first().is_some_and(|m| !is_error(m)))
        .map(|(_, id, _)| *id)
        .collect();
    if refused.is_empty() {
        task.abort();
        return Err(Verdict::NotApplicable(
            "the relay accepted every request this check expected it to refuse".into(),
        ));
    }
    // Objects flow on: groups 1-3 reach the accepted subscriber.
    for g in 1..4 {
        write_group(&env, p.track(), g, 0..2).await;
    }
    env.step("groups 1-3 at the accepted subscriber");
    let arrived = sub
        .wait(T, |got| got.iter().filter(|o| o.group == 3).count() >= 2)
        .await;
    // A round trip on the refused session: data sent before its answer has had its chance.
    let barrier = count_answers(&env, &mut raw, Vec::new(), 8).await;
    task.abort();
    barrier?;
    if !arrived {
        return Err(Failure::new(
            "groups 1-3 at the accepted subscriber",
            super::harness::listing(&sub.objects()),
            "the relay did not forward the objects this check watches for",
        )
        .into());
    }
    // Data the relay may send for an accepted request: subgroup streams and datagrams carry a
    // Track Alias, fetch streams (type 0x05) the FETCH's Request ID.
    let aliases: Vec<u64> = answers
        .per_request
        .iter()
        .filter_map(|(_, _, got)| match got.first() {
            Some(ControlMessage::SubscribeOk(o)) => Some(o.track_alias),
            _ => None,
        })
        .collect();
    let stray: Vec<String> = tap
        .seen()
        .into_iter()
        .filter(|(what, ty, id)| {
            if *what == "stream" && *ty == 0x05 {
                !accepted.contains(id)
            } else {
                !aliases.contains(id)
            }
        })
        .map(|(what, ty, id)| format!("{what} type 0x{ty:x} for 0x{id:x}"))
        .collect();
    let labels: Vec<String> = refused
        .iter()
        .map(|(label, id, got)| format!("{label} (request {id}): {}", answer_text(&got[0])))
        .collect();
    if let Some(first) = stray.first() {
        return Err(Failure::new(
            "no data stream or datagram for the refused requests",
            format!("{} item(s), first a {first}", stray.len()),
            format!(
                "objects MUST NOT be sent for requests that end with an error (§5.1); refused: {}",
                labels.join("; ")
            ),
        )
        .into());
    }
    Ok(format!(
        "no data stream or datagram while groups 1-3 flowed to another subscriber; refused: {}",
        labels.join("; ")
    ))
}
