//! TAP version 14 output, as the interop runner reads it.

use crate::conformance::Level;
use std::fmt::Write as _;
use std::time::Duration;

/// The requirement a conformance check tests, for its diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// MUST, SHOULD, ...
    pub level: Level,
    /// The draft's sentence, quoted.
    pub quote: &'static str,
}

/// The outcome of one test case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It passed.
    Pass,
    /// It failed: what was expected, what arrived, and why.
    Fail {
        /// What the case expected.
        expected: String,
        /// What the peer actually did.
        received: String,
        /// A one-line explanation.
        message: String,
    },
    /// The case is not supported (by this client or the peer).
    Skip(String),
    /// A requirement below MUST was missed: reported as `not ok ... # TODO <level>: message`,
    /// which TAP does not count as a failure.
    Todo {
        /// The keyword of what was missed (SHOULD, SHOULD NOT, MAY).
        level: Level,
        /// What the check expected.
        expected: String,
        /// What the peer actually did.
        received: String,
        /// A one-line explanation.
        message: String,
    },
}

/// One case's result with its diagnostics.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case id.
    pub id: &'static str,
    /// Pass, fail or skip.
    pub outcome: Outcome,
    /// How long it ran.
    pub duration: Duration,
    /// Connection IDs for the YAML block: `connection_id`, or publisher / subscriber ones.
    pub connections: Vec<(&'static str, String)>,
    /// What a passing case observed (e.g. the error code a relay chose), for the YAML block.
    pub message: Option<String>,
    /// The draft sections a conformance check cites (`section:` in the YAML block, also on a
    /// skipped check); `None` for the runner's cases.
    pub section: Option<String>,
    /// The requirement a conformance check tests (`level:` and `quote:` in the YAML block);
    /// `None` for the runner's cases.
    pub requirement: Option<Requirement>,
}

impl CaseResult {
    /// Whether it counts as a failure: a missed MUST.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail { .. })
    }

    /// Whether a requirement below MUST was missed (TAP `# TODO`).
    pub fn todo(&self) -> bool {
        matches!(self.outcome, Outcome::Todo { .. })
    }
}

/// What a result says for a failure or a TODO: expected, received, message.
pub(crate) fn missed(o: &Outcome) -> Option<(&str, &str, &str)> {
    match o {
        Outcome::Fail {
            expected,
            received,
            message,
        }
        | Outcome::Todo {
            expected,
            received,
            message,
            ..
        } => Some((expected, received, message)),
        _ => None,
    }
}

fn yaml_str(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

/// Renders the TAP document: version, comments, plan, one line (and YAML block) per case.
pub fn render(comments: &[String], results: &[CaseResult]) -> String {
    let mut out = String::from("TAP version 14\n");
    for c in comments {
        let _ = writeln!(out, "# {c}");
    }
    let _ = writeln!(out, "1..{}", results.len());
    for (i, r) in results.iter().enumerate() {
        let n = i + 1;
        match &r.outcome {
            Outcome::Pass => {
                let _ = writeln!(out, "ok {n} - {}", r.id);
            }
            Outcome::Skip(why) => {
                let _ = writeln!(out, "ok {n} - {} # SKIP {why}", r.id);
                if let Some(section) = &r.section {
                    out.push_str("  ---\n");
                    let _ = writeln!(out, "  duration_ms: {}", r.duration.as_millis());
                    let _ = writeln!(out, "  section: {}", yaml_str(section));
                    requirement(&mut out, r);
                    out.push_str("  ...\n");
                }
                continue;
            }
            Outcome::Fail { .. } => {
                let _ = writeln!(out, "not ok {n} - {}", r.id);
            }
            Outcome::Todo { level, message, .. } => {
                let why = message.replace('#', "");
                let _ = writeln!(out, "not ok {n} - {} # TODO {level}: {why}", r.id);
            }
        }
        out.push_str("  ---\n");
        let _ = writeln!(out, "  duration_ms: {}", r.duration.as_millis());
        if let Some(section) = &r.section {
            let _ = writeln!(out, "  section: {}", yaml_str(section));
        }
        requirement(&mut out, r);
        for (k, v) in &r.connections {
            let _ = writeln!(out, "  {k}: {v}");
        }
        if let (Outcome::Pass, Some(m)) = (&r.outcome, &r.message) {
            let _ = writeln!(out, "  message: {}", yaml_str(m));
        }
        if let Some((expected, received, message)) = missed(&r.outcome) {
            let _ = writeln!(out, "  expected: {}", yaml_str(expected));
            let _ = writeln!(out, "  received: {}", yaml_str(received));
            let _ = writeln!(out, "  message: {}", yaml_str(message));
        }
        out.push_str("  ...\n");
    }
    out
}

fn requirement(out: &mut String, r: &CaseResult) {
    if let Some(req) = &r.requirement {
        let _ = writeln!(out, "  level: {}", req.level);
        let _ = writeln!(out, "  quote: {}", yaml_str(req.quote));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_tap14_with_yaml_blocks() {
        let results = vec![
            CaseResult {
                id: "setup-only",
                outcome: Outcome::Pass,
                duration: Duration::from_millis(12),
                connections: vec![("connection_id", "ab12".into())],
                message: Some("SERVER_SETUP selected 0xff00000e".into()),
                section: None,
                requirement: None,
            },
            CaseResult {
                id: "announce-only",
                outcome: Outcome::Fail {
                    expected: "PUBLISH_NAMESPACE_OK".into(),
                    received: "PUBLISH_NAMESPACE_ERROR code 0x3 \"no\"".into(),
                    message: "rejected".into(),
                },
                duration: Duration::from_millis(3),
                connections: vec![],
                message: None,
                section: None,
                requirement: None,
            },
            CaseResult {
                id: "fetch",
                outcome: Outcome::Skip("not implemented".into()),
                duration: Duration::ZERO,
                connections: vec![],
                message: None,
                section: None,
                requirement: None,
            },
        ];
        let tap = render(&["moqlink-interop 0.1.0".into()], &results);
        let expected = "TAP version 14\n# moqlink-interop 0.1.0\n1..3\nok 1 - setup-only\n  ---\n  duration_ms: 12\n  connection_id: ab12\n  message: \"SERVER_SETUP selected 0xff00000e\"\n  ...\nnot ok 2 - announce-only\n  ---\n  duration_ms: 3\n  expected: \"PUBLISH_NAMESPACE_OK\"\n  received: \"PUBLISH_NAMESPACE_ERROR code 0x3 \\\"no\\\"\"\n  message: \"rejected\"\n  ...\nok 3 - fetch # SKIP not implemented\n";
        assert_eq!(tap, expected);
    }

    #[test]
    fn a_missed_should_is_a_todo_with_its_requirement() {
        let r = CaseResult {
            id: "fetch-unknown-track",
            outcome: Outcome::Todo {
                level: Level::Should,
                expected: "FETCH_ERROR TRACK_DOES_NOT_EXIST (0x4)".into(),
                received: "FETCH_ERROR 0x0".into(),
                message: "the code is a SHOULD (#9.18)".into(),
            },
            duration: Duration::from_millis(5),
            connections: vec![],
            message: None,
            section: Some("§9.18".into()),
            requirement: Some(Requirement {
                level: Level::Should,
                quote: "a relay SHOULD answer",
            }),
        };
        assert!(!r.failed() && r.todo());
        let tap = render(&[], &[r]);
        let expected = "TAP version 14\n1..1\nnot ok 1 - fetch-unknown-track # TODO SHOULD: the code is a SHOULD (9.18)\n  ---\n  duration_ms: 5\n  section: \"§9.18\"\n  level: SHOULD\n  quote: \"a relay SHOULD answer\"\n  expected: \"FETCH_ERROR TRACK_DOES_NOT_EXIST (0x4)\"\n  received: \"FETCH_ERROR 0x0\"\n  message: \"the code is a SHOULD (#9.18)\"\n  ...\n";
        assert_eq!(tap, expected);
    }
}
