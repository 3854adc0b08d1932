//! REQUESTS_BLOCKED (§9.6): a relay held back by a publisher's MAX_REQUEST_ID sends at most one
//! REQUESTS_BLOCKED per Maximum Request ID, however many requests wait.

use super::harness::{subscribe_ok, DirectSub, Endpoint, SubOpts};
use super::raw::{describe as describe_event, Event, Raw};
use super::{CheckOutput, Env, Verdict};
use crate::cases::Failure;
use moqlink_model::control::*;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long the publisher's control stream must stay silent before a round ends.
const QUIET: Duration = Duration::from_millis(1500);

/// Reads the relay's messages at the publisher until it is quiet: answers SUBSCRIBEs, counts
/// REQUESTS_BLOCKED by Maximum Request ID, and records the Request IDs in `ids`.
async fn round(
    raw: &mut Raw,
    blocked: &mut BTreeMap<u64, usize>,
    ids: &mut Vec<u64>,
    what: &str,
) -> Result<(), Failure> {
    loop {
        match raw.next(QUIET).await {
            Event::Message(ControlMessage::RequestsBlocked(b)) => {
                *blocked.entry(b.max_request_id).or_default() += 1
            }
            Event::Message(m @ ControlMessage::Subscribe(_)) => {
                let id = m.request_id().unwrap_or_default();
                ids.push(id);
                raw.send(&subscribe_ok(id, id)).await?;
            }
            Event::Message(_) => {}
            Event::Quiet => return Ok(()),
            other => {
                return Err(Failure::new(
                    "the publisher session open",
                    describe_event(&other),
                    format!("the relay ended the publisher session {what}"),
                ))
            }
        }
    }
}

/// `requests-blocked-once`: a publisher grants MAX_REQUEST_ID 3 (one relay request, ID 1) and
/// four subscribers' SUBSCRIBEs need four upstream requests; then it grants 5. The relay sends
/// no more than one REQUESTS_BLOCKED for each Maximum Request ID.
pub async fn requests_blocked_once(env: Env) -> CheckOutput {
    let mut raw = Raw::setup(&env, "publisher_connection_id", Some(3)).await?;
    raw.announce(&env, 0, env.namespace()).await?;
    let s = Endpoint::connect(&env, "subscriber_connection_id").await?;
    let mut pending = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let session = s.session.clone();
        let track = env.track(name);
        pending.push(tokio::spawn(async move {
            DirectSub::subscribe(&session, &track, SubOpts::default()).await
        }));
    }
    let mut blocked = BTreeMap::new();
    env.step("the relay's requests with MAX_REQUEST_ID 3");
    let (mut first, mut second) = (Vec::new(), Vec::new());
    let rounds = async {
        round(&mut raw, &mut blocked, &mut first, "with MAX_REQUEST_ID 3").await?;
        raw.send(&ControlMessage::MaxRequestId(MaxRequestId {
            max_request_id: 5,
        }))
        .await?;
        env.step("the relay's requests with MAX_REQUEST_ID 5");
        round(&mut raw, &mut blocked, &mut second, "with MAX_REQUEST_ID 5").await
    }
    .await;
    for p in pending {
        p.abort();
    }
    if let Some(id) = first
        .iter()
        .find(|id| **id >= 3)
        .or(second.iter().find(|id| **id >= 5))
    {
        return Err(Verdict::NotApplicable(format!(
            "the relay sent Request ID {id} past the publisher's MAX_REQUEST_ID, so it is never \
             blocked (max-request-id-honoured reports that)"
        )));
    }
    rounds?;
    let counts: Vec<String> = blocked
        .iter()
        .map(|(max, n)| format!("{n} for {max}"))
        .collect();
    let summary = format!(
        "relay SUBSCRIBEs {first:?} under MAX_REQUEST_ID 3, {second:?} under 5; REQUESTS_BLOCKED: {}",
        if counts.is_empty() {
            "none (it is optional)".to_string()
        } else {
            counts.join(", ")
        }
    );
    if let Some((max, n)) = blocked.iter().find(|(_, n)| **n > 1) {
        return Err(Failure::new(
            "at most one REQUESTS_BLOCKED per Maximum Request ID",
            format!("{n} REQUESTS_BLOCKED with Maximum Request ID {max}"),
            summary,
        )
        .into());
    }
    Ok(summary)
}
