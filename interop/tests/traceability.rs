//! The traceability table (`interop/TRACEABILITY.md`) against the draft's text and the suite:
//! every normative sentence of draft-14 is mapped to the checks that test it or says why it
//! cannot be tested from outside; every mapped check exists and quotes that sentence; every
//! check's quote is in the draft with its level's keyword.
//!
//! `TRACE_TEMPLATE=<file> cargo test -p moqlink-interop --test traceability` writes the table
//! with every row it has kept and a `TODO` row for each sentence not yet mapped;
//! `TRACE_SENTENCES=<file>` writes every sentence of the draft (normative or not), one a line
//! after its section, to pick a check's quote from.

use moqlink_interop::conformance::trace::{normalize, normative, sentences, Sentence, SPEC};
use moqlink_interop::conformance::{Level, CHECKS};
use std::collections::{BTreeMap, BTreeSet};

const TABLE: &str = include_str!("../TRACEABILITY.md");

/// One row of the table.
#[derive(Debug, Clone)]
struct Row {
    section: String,
    level: String,
    text: String,
    verified: String,
}

fn split_row(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut chars = line.trim().trim_start_matches('|').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cur.push('|');
                chars.next();
            }
            '|' => cells.push(std::mem::take(&mut cur).trim().to_string()),
            c => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        cells.push(cur.trim().to_string());
    }
    cells
}

fn rows() -> Vec<Row> {
    TABLE
        .lines()
        .filter(|l| l.starts_with("| §"))
        .map(|l| {
            let c = split_row(l);
            assert_eq!(c.len(), 4, "a row needs 4 cells: {l}");
            Row {
                section: c[0].clone(),
                level: c[1].clone(),
                text: normalize(&c[2]),
                verified: c[3].clone(),
            }
        })
        .collect()
}

/// The check ids a "verified by" cell names (backticked), or none for an explanation.
fn ids(verified: &str) -> Vec<&str> {
    verified
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| !s.is_empty())
        .collect()
}

fn escape(s: &str) -> String {
    s.replace('|', "\\|")
}

#[test]
fn every_normative_sentence_is_traced() {
    let table = rows();
    let spec = normative(SPEC);
    let by_key: BTreeMap<(String, String), &Row> = table
        .iter()
        .map(|r| ((r.section.clone(), r.text.clone()), r))
        .collect();
    let mut problems = Vec::new();
    let mut template = String::new();
    let mut gaps = 0;
    let mut outside = 0;
    let mut checked = 0;
    for s in &spec {
        let level = s.level.expect("normative").keyword();
        match by_key.get(&(s.section.clone(), s.text.clone())) {
            None => {
                problems.push(format!("not traced: {} {}", s.section, s.text));
                template.push_str(&format!(
                    "| {} | {level} | {} | TODO |\n",
                    s.section,
                    escape(&s.text)
                ));
            }
            Some(r) => {
                template.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    r.section,
                    r.level,
                    escape(&r.text),
                    r.verified
                ));
                if r.level != level {
                    problems.push(format!(
                        "{} {}: level {} in the table, {level} in the draft",
                        s.section, s.text, r.level
                    ));
                }
                let named = ids(&r.verified);
                if !named.is_empty() {
                    checked += 1;
                    for id in named {
                        if !CHECKS.iter().any(|c| c.id == id) {
                            problems.push(format!("{} {}: no check `{id}`", s.section, s.text));
                        }
                    }
                } else if let Some(why) = r.verified.strip_prefix("outside:") {
                    outside += 1;
                    if why.trim().len() < 10 {
                        problems.push(format!(
                            "{} {}: say why it cannot be tested from outside",
                            s.section, s.text
                        ));
                    }
                } else if let Some(why) = r.verified.strip_prefix("gap:") {
                    gaps += 1;
                    if why.trim().len() < 10 {
                        problems.push(format!(
                            "{} {}: say what a check would need",
                            s.section, s.text
                        ));
                    }
                } else {
                    problems.push(format!(
                        "{} {}: \"verified by\" must name checks (`id`) or start with `outside:` or `gap:`",
                        s.section, s.text
                    ));
                }
            }
        }
    }
    let spec_keys: BTreeSet<(String, String)> = spec
        .iter()
        .map(|s| (s.section.clone(), s.text.clone()))
        .collect();
    for r in &table {
        if !spec_keys.contains(&(r.section.clone(), r.text.clone())) {
            problems.push(format!(
                "stale row (no such normative sentence): {} {}",
                r.section, r.text
            ));
        }
    }
    let counts = format!(
        "{} normative sentences: {checked} verified by checks, {outside} not testable from outside, \
         {gaps} gaps",
        spec.len()
    );
    if !normalize(TABLE).contains(&counts) {
        problems.push(format!("the introduction must say \"{counts}\""));
    }
    if let Ok(path) = std::env::var("TRACE_TEMPLATE") {
        std::fs::write(&path, &template).expect("write template");
    }
    eprintln!(
        "{} normative sentences: {checked} checked, {outside} not testable from outside, {gaps} gaps",
        spec.len()
    );
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn sentences_dump() {
    if let Ok(path) = std::env::var("TRACE_SENTENCES") {
        let all: String = sentences(SPEC)
            .iter()
            .map(|s| format!("{} {}\n", s.section, s.text))
            .collect();
        std::fs::write(&path, all).expect("write sentences");
    }
}

/// Whether `quote` (fragments separated by `…`) is in `sentence`, in order.
fn quoted_in(quote: &str, sentence: &str) -> bool {
    let mut rest = sentence;
    for frag in quote.split('…').map(normalize).filter(|f| !f.is_empty()) {
        match rest.find(frag.as_str()) {
            Some(i) => rest = &rest[i + frag.len()..],
            None => return false,
        }
    }
    true
}

#[test]
fn every_check_quotes_the_draft_and_is_traced() {
    let all = sentences(SPEC);
    let table = rows();
    let mut problems = Vec::new();
    for c in CHECKS {
        if c.quote.trim().is_empty() {
            problems.push(format!("{}: no quote", c.id));
            continue;
        }
        // The same sentence can appear in two sections (§2.1 and §8.5 both forbid modifying
        // payloads): prefer the one in a section the check cites.
        let cited = |s: &&Sentence| c.section.split(',').any(|x| x.trim() == s.section);
        let quoting = || all.iter().filter(|s| quoted_in(c.quote, &s.text));
        let Some(s) = quoting().find(cited).or_else(|| quoting().next()) else {
            problems.push(format!("{}: quote not in the draft: {}", c.id, c.quote));
            continue;
        };
        if !c.section.split(',').any(|x| x.trim() == s.section) {
            problems.push(format!(
                "{}: quotes {} but cites {}",
                c.id, s.section, c.section
            ));
        }
        let keyword = c.level.keyword();
        let has = match c.level {
            Level::Must | Level::Should => {
                c.quote.contains(keyword)
                    || (c.level == Level::Must
                        && (c.quote.contains("REQUIRED") || c.quote.contains("SHALL")))
                    || (c.level == Level::Should && c.quote.contains("RECOMMENDED"))
            }
            _ => c.quote.contains(keyword),
        };
        if !has {
            problems.push(format!(
                "{}: level {keyword} but the quote does not say {keyword}",
                c.id
            ));
        }
        if c.level != Level::May {
            // A sentence can recur in one section (§10.2.1.1's "This SHOULD be cached." for
            // three statuses): any of its rows may name the check.
            let named = table
                .iter()
                .filter(|r| r.section == s.section && r.text == s.text)
                .any(|r| ids(&r.verified).contains(&c.id));
            match named {
                true => {}
                false => problems.push(format!(
                    "{}: the table's row for its sentence ({} \"{}\") does not name it",
                    c.id, s.section, s.text
                )),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
