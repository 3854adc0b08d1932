//! The conformance suite against moqlink's own relay, in process on loopback: every check runs
//! over raw QUIC, the session checks and a data-plane sample over WebTransport too. Checks where
//! moqlink's relay is known to deviate from draft-14 (see interop/README.md) may fail; every
//! other check must pass. Also the registry and the `--conformance` CLI, and the robustness
//! group's opt-in authorization check against a relay with rules.

use moqlink::relay::auth::{AuthRules, Policy};
use moqlink::relay::config::AuthRuleConfig;
use moqlink::relay::{Relay, RelayConfig};
use moqlink_interop::cases::Ctx;
use moqlink_interop::conformance::{self, CHECKS, GROUPS};
use moqlink_interop::tap::{self, CaseResult, Outcome};
use moqlink_transport::endpoint::{Client, ClientConfig};
use moqlink_transport::session::SessionConfig;
use moqlink_transport::tls::{ClientTls, ServerIdentity};
use std::collections::BTreeSet;
use std::io::Write;

/// Checks moqlink's relay may fail, with the reason (interop/README.md, "moqlink relay").
const KNOWN_RELAY_DEVIATIONS: &[(&str, &str)] = &[(
    "duplicate-subscription-closed",
    "§9.7 SHOULD: a second SUBSCRIBE for a track the session already serves is answered, not \
     closed on; detecting it needs active-subscription state kept in step with UNSUBSCRIBE and \
     PUBLISH_DONE in the control loop (the served map is updated by the sending tasks, so a \
     quick UNSUBSCRIBE + SUBSCRIBE would be closed on by mistake)",
)];

/// Checks that measure scheduling under contention (§7.2 is a SHOULD), which a machine starved
/// of CPU can defeat: a failure is re-run up to twice, and only a repeated failure counts. The
/// failed attempts are printed. With the send arbitration disabled these fail every time.
/// `stalled-subscriber` measures delivery lag (a missed SHOULD, not a failure): the
/// same re-runs apply to it.
const TIMING_SENSITIVE: &[&str] = &[
    "priority-subscriber",
    "priority-publisher",
    "stalled-subscriber",
];

/// Whether a result is a failure or a missed SHOULD (moqlink's relay follows the SHOULDs too).
fn missed(r: &CaseResult) -> bool {
    r.failed() || r.todo()
}

fn known(id: &str) -> bool {
    KNOWN_RELAY_DEVIATIONS.iter().any(|(k, _)| *k == id)
}

/// Whether a skip is allowed: the WebTransport-only check on raw QUIC and the opt-in leak check
/// without `--protected-prefix` .
fn skip_allowed(id: &str, why: &str) -> bool {
    ([
        "setup-path-over-webtransport",
        "setup-authority-over-webtransport",
    ]
    .contains(&id)
        && why == "applies to WebTransport (https://) URLs only")
        || (id == "namespace-subscription-leak" && why.starts_with("opt-in:"))
}

async fn relay() -> u16 {
    relay_with(AuthRules::default()).await
}

async fn relay_with(auth: AuthRules) -> u16 {
    relay_config(RelayConfig {
        auth,
        ..Default::default()
    })
    .await
}

async fn relay_config(config: RelayConfig) -> u16 {
    let identity = ServerIdentity::self_signed().expect("certificate");
    let config = RelayConfig {
        bind: "127.0.0.1:0".parse().expect("addr"),
        ..config
    };
    let relay = Relay::bind(config, &identity).expect("bind");
    let port = relay.local_addr().expect("addr").port();
    tokio::spawn(relay.run(std::future::pending()));
    port
}

fn ctx(url: String) -> Ctx {
    Ctx {
        relay: url,
        client: Client::new(ClientConfig {
            tls: ClientTls::DisableVerify,
            ..Default::default()
        })
        .expect("client"),
        session: SessionConfig::default(),
    }
}

/// Runs `ids` (all when empty) and returns the results with their TAP document.
async fn suite(url: String, ids: &[&str]) -> (Vec<CaseResult>, String) {
    let ctx = ctx(url.clone());
    let run = conformance::run_id();
    let mut out = Vec::new();
    for c in CHECKS
        .iter()
        .filter(|c| ids.is_empty() || ids.contains(&c.id))
    {
        let mut result = conformance::run(c, &ctx, &run).await;
        for _ in 0..2 {
            if !(missed(&result) && TIMING_SENSITIVE.contains(&c.id)) {
                break;
            }
            // Written to stderr directly, past the test harness's capture, so CI logs show it.
            let _ = writeln!(
                std::io::stderr(),
                "{} failed once, running it again:\n{}",
                c.id,
                tap::render(&[], std::slice::from_ref(&result))
            );
            // A fresh run ID: fresh namespaces, nothing left from the failed attempt.
            result = conformance::run(c, &ctx, &conformance::run_id()).await;
        }
        out.push(result);
    }
    let doc = tap::render(&[format!("Relay: {url}")], &out);
    (out, doc)
}

fn unexpected(results: &[CaseResult]) -> Vec<&'static str> {
    results
        .iter()
        .filter(|r| r.failed() && !known(r.id))
        .map(|r| r.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_passes_against_moqlinks_relay_but_for_known_deviations() {
    let port = relay().await;
    let (results, doc) = suite(format!("moqt://127.0.0.1:{port}"), &[]).await;
    assert_eq!(results.len(), CHECKS.len());
    assert!(unexpected(&results).is_empty(), "{doc}");
    for r in &results {
        match &r.outcome {
            Outcome::Skip(why) => assert!(skip_allowed(r.id, why), "{}: {why}\n{doc}", r.id),
            Outcome::Pass => assert!(r.message.is_some(), "{} passed silently", r.id),
            Outcome::Fail { .. } | Outcome::Todo { .. } => {}
        }
        assert!(r.section.as_deref().is_some_and(|s| s.starts_with('§')));
    }
    assert!(doc.contains("  section: \"§9.7\"\n"), "{doc}");
    // A sample over WebTransport: setup rules, raw control messages, data and FETCH.
    let sample = [
        "setup-path-over-webtransport",
        "setup-authority-over-webtransport",
        "goaway-twice",
        "request-id-parity",
        "max-request-id-honoured",
        "subscribe-namespace-later",
        "filter-next-group-start",
        "unsubscribe-stops-delivery",
        "fetch-ok-end-beyond-largest",
        "subgroup-header-0x1b",
        "datagram-relay",
    ];
    let (results, doc) = suite(format!("https://127.0.0.1:{port}/"), &sample).await;
    assert_eq!(results.len(), sample.len());
    assert!(results.iter().all(|r| r.outcome == Outcome::Pass), "{doc}");
}

/// `namespace-subscription-leak` against a relay whose rules protect `robust/private` (publish
/// with one token, subscribe with another): the check runs (no opt-in skip), and passes unless
/// listed as an expected failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leak_check_runs_against_a_relay_with_auth_rules() {
    // Only robust/private is protected; the bystanders' namespaces stay open.
    let port = relay_with(AuthRules::new(
        &[AuthRuleConfig {
            prefix: "robust/private".into(),
            publish: vec!["pub-secret".into()],
            subscribe: vec!["sub-secret".into()],
        }],
        Some(Policy::Allow),
    ))
    .await;
    let url = format!("moqt://127.0.0.1:{port}");
    conformance::robustness::set_protected(
        &url,
        conformance::robustness::Protected {
            prefix: moqlink_model::TrackNamespace::from_path("robust/private"),
            publish_token: Some("pub-secret".into()),
        },
    );
    let (results, doc) = suite(url, &["namespace-subscription-leak"]).await;
    let _ = writeln!(std::io::stderr(), "{doc}");
    assert_eq!(results.len(), 1);
    assert!(!matches!(results[0].outcome, Outcome::Skip(_)), "{doc}");
    assert!(unexpected(&results).is_empty(), "{doc}");
}

/// `max-request-id-exceeded` against a relay that advertises an odd MAX_REQUEST_ID (9: client
/// IDs 0..8 allowed, 10 the first refused). The check used to wait for an answer to ID 9, which
/// a client never sends, and failed a correct relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_request_id_exceeded_passes_with_an_odd_limit() {
    let port = relay_config(RelayConfig {
        session: SessionConfig {
            request_window: 5,
            max_request_id_one_lower: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let (results, doc) = suite(
        format!("moqt://127.0.0.1:{port}"),
        &["max-request-id-exceeded"],
    )
    .await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].outcome, Outcome::Pass, "{doc}");
    let msg = results[0].message.as_deref().unwrap_or_default();
    assert!(msg.contains("Request ID 10 at MAX_REQUEST_ID 9"), "{doc}");
}

#[test]
fn the_registry_has_unique_cited_checks_in_every_group() {
    assert!(CHECKS.len() >= 40, "{} checks", CHECKS.len());
    let ids: BTreeSet<&str> = CHECKS.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), CHECKS.len(), "duplicate check ids");
    for c in CHECKS {
        assert!(
            GROUPS.contains(&c.group),
            "{} in unknown group {}",
            c.id,
            c.group
        );
        assert!(c.section.starts_with('§'), "{} cites no section", c.id);
        assert!(!c.summary.is_empty());
        assert!(c.limit.as_secs() >= 1 && c.limit.as_secs() <= 30);
    }
    for g in GROUPS {
        assert!(CHECKS.iter().any(|c| c.group == *g), "group {g} is empty");
    }
    for (id, _) in KNOWN_RELAY_DEVIATIONS {
        assert!(ids.contains(id), "known deviation {id} is no check");
    }
    let robustness = CHECKS.iter().filter(|c| c.group == "robustness").count();
    assert!(robustness >= 8, "{robustness} robustness checks");
    // Every SUBGROUP_HEADER type has its check.
    for t in [
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
    ] {
        assert!(ids.contains(format!("subgroup-header-0x{t:x}").as_str()));
    }
    let fetch = conformance::select(None, Some("fetch")).expect("group");
    assert!(fetch.iter().all(|c| c.group == "fetch"));
    let two = conformance::select(Some("goaway-twice,fetch-cancel"), None).expect("ids");
    assert_eq!(two.len(), 2);
    assert!(conformance::select(Some("no-such-check"), None).is_err());
    assert!(conformance::select(None, Some("no-such-group")).is_err());
}

#[test]
fn cli_lists_checks_with_group_level_section_and_quote_and_refuses_unknown_ones() {
    let bin = env!("CARGO_BIN_EXE_moqlink-interop");
    let out = std::process::Command::new(bin)
        .args(["--conformance", "--list"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), CHECKS.len());
    for (line, c) in lines.iter().zip(CHECKS) {
        assert_eq!(
            *line,
            format!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                c.id, c.group, c.level, c.section, c.summary, c.quote
            )
        );
    }
    let out = std::process::Command::new(bin)
        .args(["-c", "--group", "session", "--list"])
        .output()
        .expect("run");
    let n = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(n, CHECKS.iter().filter(|c| c.group == "session").count());
    let out = std::process::Command::new(bin)
        .args(["-c", "-t", "no-such-check"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(127));
    assert!(out.stdout.is_empty(), "stdout must stay TAP-only");
    // The runner's list is unchanged by the suite.
    let out = std::process::Command::new(bin)
        .arg("--list")
        .output()
        .expect("run");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        moqlink_interop::cases::CASES.len()
    );
}
