//! Conformance results as JSON, JUnit XML and a Markdown report grouped by draft section
//! (TAP 14 is in [`crate::tap`]).

use crate::conformance::{self, Level};
use crate::tap::{missed, CaseResult, Outcome};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What a run counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Passed.
    pub pass: usize,
    /// Missed a MUST or MUST NOT.
    pub fail: usize,
    /// Missed a SHOULD, SHOULD NOT or MAY-level expectation.
    pub todo: usize,
    /// Skipped (not supported by the peer, or not applicable).
    pub skip: usize,
}

impl Tally {
    /// Counts the results.
    pub fn of(results: &[CaseResult]) -> Tally {
        let mut t = Tally::default();
        for r in results {
            match r.outcome {
                Outcome::Pass => t.pass += 1,
                Outcome::Fail { .. } => t.fail += 1,
                Outcome::Todo { .. } => t.todo += 1,
                Outcome::Skip(_) => t.skip += 1,
            }
        }
        t
    }

    /// Whether the run failed: a missed MUST, or with `strict` a missed SHOULD too.
    pub fn failed(&self, strict: bool) -> bool {
        self.fail > 0 || (strict && self.todo > 0)
    }
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail { .. } => "fail",
        Outcome::Todo { .. } => "todo",
        Outcome::Skip(_) => "skip",
    }
}

fn level_of(r: &CaseResult) -> Option<Level> {
    r.requirement.map(|q| q.level)
}

/// The results as one JSON document: `meta` (relay, draft, tool), `summary`, `results`.
pub fn json(meta: &[(&str, String)], results: &[CaseResult]) -> String {
    let t = Tally::of(results);
    let rows: Vec<Value> = results
        .iter()
        .map(|r| {
            let mut row = json!({
                "id": r.id,
                "outcome": outcome_name(&r.outcome),
                "duration_ms": r.duration.as_millis() as u64,
            });
            let obj = row.as_object_mut().expect("object");
            if let Some(c) = conformance::find(r.id) {
                obj.insert("group".into(), c.group.into());
            }
            if let Some(s) = &r.section {
                obj.insert("section".into(), s.clone().into());
            }
            if let Some(q) = &r.requirement {
                obj.insert("level".into(), q.level.keyword().into());
                obj.insert("quote".into(), q.quote.into());
            }
            if let Some((expected, received, message)) = missed(&r.outcome) {
                obj.insert("expected".into(), expected.into());
                obj.insert("received".into(), received.into());
                obj.insert("message".into(), message.into());
            }
            match &r.outcome {
                Outcome::Fail { .. } | Outcome::Todo { .. } => {}
                Outcome::Skip(why) => {
                    obj.insert("message".into(), why.clone().into());
                }
                Outcome::Pass => {
                    if let Some(m) = &r.message {
                        obj.insert("message".into(), m.clone().into());
                    }
                }
            }
            if let Outcome::Todo { level, .. } = &r.outcome {
                obj.insert("missed_level".into(), level.keyword().into());
            }
            let conns: serde_json::Map<String, Value> = r
                .connections
                .iter()
                .map(|(k, v)| ((*k).to_string(), Value::from(v.clone())))
                .collect();
            if !conns.is_empty() {
                obj.insert("connections".into(), Value::Object(conns));
            }
            row
        })
        .collect();
    let meta: serde_json::Map<String, Value> = meta
        .iter()
        .map(|(k, v)| ((*k).to_string(), Value::from(v.clone())))
        .collect();
    let doc = json!({
        "meta": meta,
        "summary": {"pass": t.pass, "fail": t.fail, "todo": t.todo, "skip": t.skip},
        "results": rows,
    });
    serde_json::to_string_pretty(&doc).expect("json") + "\n"
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no representation for most control characters.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The results as JUnit XML, one `<testsuite>` per group. A missed SHOULD is a `<failure>` with
/// `strict`, otherwise a passing test case whose `<system-out>` says what was missed.
pub fn junit(suite: &str, results: &[CaseResult], strict: bool) -> String {
    let mut groups: BTreeMap<(usize, &str), Vec<&CaseResult>> = BTreeMap::new();
    for r in results {
        let g = conformance::find(r.id).map_or("cases", |c| c.group);
        let order = conformance::GROUPS
            .iter()
            .position(|x| *x == g)
            .unwrap_or(usize::MAX);
        groups.entry((order, g)).or_default().push(r);
    }
    let t = Tally::of(results);
    let failures = t.fail + if strict { t.todo } else { 0 };
    let total: f64 = results.iter().map(|r| r.duration.as_secs_f64()).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{}\" time=\"{total:.3}\">",
        xml(suite),
        results.len(),
        t.skip
    );
    for ((_, g), rs) in &groups {
        let owned: Vec<CaseResult> = rs.iter().map(|r| (*r).clone()).collect();
        let gt = Tally::of(&owned);
        let gf = gt.fail + if strict { gt.todo } else { 0 };
        let time: f64 = rs.iter().map(|r| r.duration.as_secs_f64()).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{gf}\" errors=\"0\" skipped=\"{}\" time=\"{time:.3}\">",
            xml(g),
            rs.len(),
            gt.skip
        );
        for r in rs {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"conformance.{}\" time=\"{:.3}\"",
                xml(r.id),
                xml(g),
                r.duration.as_secs_f64()
            );
            let mut body = String::new();
            if let Some(q) = &r.requirement {
                let _ = writeln!(
                    body,
                    "      <properties><property name=\"level\" value=\"{}\"/><property name=\"section\" value=\"{}\"/><property name=\"quote\" value=\"{}\"/></properties>",
                    q.level,
                    xml(r.section.as_deref().unwrap_or("")),
                    xml(q.quote)
                );
            }
            if let Outcome::Skip(why) = &r.outcome {
                let _ = writeln!(body, "      <skipped message=\"{}\"/>", xml(why));
            }
            if let Some((expected, received, message)) = missed(&r.outcome) {
                let (level, failure) = match &r.outcome {
                    Outcome::Todo { level, .. } => (level.keyword(), strict),
                    _ => (level_of(r).map_or("MUST", Level::keyword), true),
                };
                let detail = format!("expected: {}\nreceived: {}", xml(expected), xml(received));
                let _ = if failure {
                    writeln!(
                        body,
                        "      <failure type=\"{level}\" message=\"{}\">{detail}</failure>",
                        xml(message)
                    )
                } else {
                    writeln!(
                        body,
                        "      <system-out>TODO {level}: {}\n{detail}</system-out>",
                        xml(message)
                    )
                };
            }
            if body.is_empty() {
                out.push_str("/>\n");
            } else {
                out.push_str(">\n");
                out.push_str(&body);
                out.push_str("    </testcase>\n");
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// The section a result is filed under: the first one its check cites (`§9.7` of `§9.7, §9.8`).
fn first_section(r: &CaseResult) -> String {
    r.section
        .as_deref()
        .and_then(|s| s.split(',').next())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "(no section)".into())
}

fn section_key(s: &str) -> Vec<u32> {
    s.trim_start_matches('§')
        .split('.')
        .map(|p| p.parse().unwrap_or(u32::MAX))
        .collect()
}

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A Markdown report: a summary, then one table per draft section (the first section each
/// check cites), in the draft's order.
pub fn markdown(title: &str, meta: &[(&str, String)], results: &[CaseResult]) -> String {
    let t = Tally::of(results);
    let mut out = format!("# {title}\n\n");
    for (k, v) in meta {
        let _ = writeln!(out, "- {k}: {v}");
    }
    let _ = writeln!(
        out,
        "\n| pass | MUST failed | SHOULD missed | skipped |\n|---|---|---|---|\n| {} | {} | {} | {} |\n",
        t.pass, t.fail, t.todo, t.skip
    );
    let mut by: BTreeMap<Vec<u32>, (String, Vec<&CaseResult>)> = BTreeMap::new();
    for r in results {
        let s = first_section(r);
        by.entry(section_key(&s))
            .or_insert_with(|| (s, Vec::new()))
            .1
            .push(r);
    }
    for (section, rs) in by.values() {
        let title = crate::conformance::trace::section_title(section)
            .map(|t| format!(" {t}"))
            .unwrap_or_default();
        let _ = writeln!(out, "## {section}{title}\n");
        out.push_str("| check | level | result | details |\n|---|---|---|---|\n");
        for r in rs {
            let level = level_of(r).map_or("", Level::keyword);
            let (result, details) = match &r.outcome {
                Outcome::Pass => ("ok".to_string(), r.message.clone().unwrap_or_default()),
                Outcome::Skip(why) => ("skip".to_string(), why.clone()),
                Outcome::Fail {
                    expected,
                    received,
                    message,
                } => (
                    "**FAIL**".to_string(),
                    format!("{message}: expected {expected}; received {received}"),
                ),
                Outcome::Todo {
                    level,
                    expected,
                    received,
                    message,
                } => (
                    format!("TODO {level}"),
                    format!("{message}: expected {expected}; received {received}"),
                ),
            };
            let _ = writeln!(
                out,
                "| `{}` | {level} | {result} | {} |",
                r.id,
                md(&details)
            );
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tap::Requirement;
    use std::time::Duration;

    fn result(id: &'static str, outcome: Outcome, level: Level) -> CaseResult {
        CaseResult {
            id,
            outcome,
            duration: Duration::from_millis(250),
            connections: vec![("connection_id", "ab<12>".into())],
            message: None,
            section: conformance::find(id).map(|c| c.section.to_string()),
            requirement: Some(Requirement {
                level,
                quote: "it MUST \"x\" & <y>",
            }),
        }
    }

    fn sample() -> Vec<CaseResult> {
        let miss = |message: &str| Outcome::Fail {
            expected: "a <close>".into(),
            received: "nothing & more".into(),
            message: message.into(),
        };
        vec![
            result("goaway-twice", Outcome::Pass, Level::Must),
            result("request-id-parity", miss("left open"), Level::Must),
            result(
                "fetch-unknown-track",
                Outcome::Todo {
                    level: Level::Should,
                    expected: "FETCH_ERROR 0x4".into(),
                    received: "FETCH_ERROR 0x0".into(),
                    message: "code".into(),
                },
                Level::Must,
            ),
            result(
                "fetch-cancel",
                Outcome::Skip("peer does not support: FETCH".into()),
                Level::Must,
            ),
        ]
    }

    #[test]
    fn only_a_missed_must_fails_unless_strict() {
        let t = Tally::of(&sample());
        assert_eq!(
            t,
            Tally {
                pass: 1,
                fail: 1,
                todo: 1,
                skip: 1
            }
        );
        assert!(t.failed(false));
        let todo_only = Tally {
            pass: 3,
            fail: 0,
            todo: 1,
            skip: 0,
        };
        assert!(!todo_only.failed(false));
        assert!(todo_only.failed(true));
    }

    #[test]
    fn json_has_summary_levels_and_misses() {
        let doc: Value = serde_json::from_str(&json(&[("relay", "moqt://x".into())], &sample()))
            .expect("valid json");
        assert_eq!(doc["meta"]["relay"], "moqt://x");
        assert_eq!(doc["summary"]["fail"], 1);
        assert_eq!(doc["summary"]["todo"], 1);
        let rows = doc["results"].as_array().expect("results");
        assert_eq!(rows[1]["outcome"], "fail");
        assert_eq!(rows[1]["level"], "MUST");
        assert_eq!(rows[1]["group"], "control");
        assert_eq!(rows[1]["expected"], "a <close>");
        assert_eq!(rows[2]["outcome"], "todo");
        assert_eq!(rows[2]["missed_level"], "SHOULD");
        assert_eq!(rows[3]["outcome"], "skip");
    }

    #[test]
    fn junit_counts_todo_as_failure_only_when_strict_and_escapes() {
        let lax = junit("suite", &sample(), false);
        assert!(
            lax.contains("tests=\"4\" failures=\"1\" errors=\"0\" skipped=\"1\""),
            "{lax}"
        );
        assert!(lax.contains("<failure type=\"MUST\" message=\"left open\">expected: a &lt;close&gt;\nreceived: nothing &amp; more</failure>"), "{lax}");
        assert!(lax.contains("<system-out>TODO SHOULD: code"), "{lax}");
        assert!(
            lax.contains("value=\"it MUST &quot;x&quot; &amp; &lt;y&gt;\""),
            "{lax}"
        );
        assert!(
            lax.contains("<testsuite name=\"session\"")
                && lax.contains("<testsuite name=\"fetch\"")
        );
        // Groups keep the suite's order: session before control before fetch.
        let (s, c, f) = (
            lax.find("name=\"session\"").unwrap(),
            lax.find("name=\"control\"").unwrap(),
            lax.find("name=\"fetch\"").unwrap(),
        );
        assert!(s < c && c < f);
        let strict = junit("suite", &sample(), true);
        assert!(strict.contains("tests=\"4\" failures=\"2\""), "{strict}");
        assert!(
            strict.contains("<failure type=\"SHOULD\" message=\"code\">"),
            "{strict}"
        );
        // Balanced: every opened test case and suite is closed.
        assert_eq!(
            strict.matches("<testsuite ").count(),
            strict.matches("</testsuite>").count()
        );
    }

    #[test]
    fn markdown_groups_by_first_section_in_draft_order() {
        let m = markdown("Report", &[], &sample());
        let s94 = m.find("## §9.4 GOAWAY").expect("§9.4 with its title");
        let s91 = m.find("## §9.1 ").expect("§9.1");
        let s918 = m.find("## §9.18").expect("§9.18");
        assert!(s91 < s94 && s94 < s918, "{m}");
        assert!(m.contains("| 1 | 1 | 1 | 1 |"), "{m}");
        assert!(m.contains("| `request-id-parity` | MUST | **FAIL** | left open: expected a <close>; received nothing & more |"), "{m}");
        assert!(m.contains("TODO SHOULD"), "{m}");
    }
}
