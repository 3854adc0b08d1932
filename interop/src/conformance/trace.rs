//! The draft's text as the suite reads it: sections and their titles, and the normative
//! sentences the traceability table (`interop/TRACEABILITY.md`) maps to checks.

use super::Level;
use std::sync::OnceLock;

/// The IETF-rendered text of draft-14, unchanged (`interop/spec/`).
pub const SPEC: &str = include_str!("../../spec/draft-ietf-moq-transport-14.txt");

/// One sentence of the draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    /// Its section, e.g. `§9.7` (`§A` for an appendix).
    pub section: String,
    /// The sentence, whitespace collapsed to single spaces.
    pub text: String,
    /// The strongest RFC 2119 keyword in it.
    pub level: Option<Level>,
}

/// A numbered heading at column 0: `9.7.  SUBSCRIBE` → (`§9.7`, `SUBSCRIBE`).
fn heading(line: &str) -> Option<(String, String)> {
    if line.starts_with(' ') {
        return None;
    }
    let (num, title) = line.split_once(".  ")?;
    let num = num.strip_prefix("Appendix ").unwrap_or(num);
    let numbered = !num.is_empty()
        && num
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()))
        && num
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        && !title.trim().is_empty();
    numbered.then(|| (format!("§{num}"), title.trim().to_string()))
}

fn is_page_footer(line: &str) -> bool {
    line.trim_end().ends_with(']') && line.contains("[Page ")
}

fn is_page_header(line: &str) -> bool {
    line.starts_with("Internet-Draft ") || line.starts_with('\u{c}')
}

/// The body's lines (from `1.  Introduction` to the change log) with the page breaks cut out,
/// so a paragraph split across two pages reads as one.
fn body_lines(spec: &str) -> Vec<&str> {
    let all: Vec<&str> = spec.lines().collect();
    let start = all
        .iter()
        .position(|l| heading(l).is_some_and(|(n, _)| n == "§1"))
        .unwrap_or(0);
    let end = all
        .iter()
        .position(|l| l.starts_with("Appendix A.  "))
        .unwrap_or(all.len());
    let mut out: Vec<&str> = Vec::new();
    let mut i = start;
    while i < end {
        let line = all[i];
        if is_page_footer(line) {
            // Drop the blank lines before the footer, the footer, the form feed and header, and
            // the blank lines after them.
            while out.last().is_some_and(|l| l.trim().is_empty()) {
                out.pop();
            }
            i += 1;
            while i < end && (all[i].trim().is_empty() || is_page_header(all[i])) {
                i += 1;
            }
            // The blank lines around a page break hide whether a paragraph ended there: it did
            // when the next page starts a list item, a heading, or text indented otherwise.
            if let (Some(prev), Some(next)) = (out.last(), all.get(i)) {
                if !continues(prev, next) {
                    out.push("");
                }
            }
            continue;
        }
        out.push(line);
        i += 1;
    }
    out
}

/// The length of a list item's marker (`*  `, `-  `, `1.  `) at the start of `t`, if any.
fn marker_len(t: &str) -> Option<usize> {
    if t.starts_with("*  ") || t.starts_with("-  ") {
        return Some(3);
    }
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    (digits > 0 && t[digits..].starts_with(".  ")).then_some(digits + 3)
}

/// Where a line's text starts: after its indentation and list marker.
fn text_column(line: &str) -> usize {
    let t = line.trim_start();
    line.len() - t.len() + marker_len(t).unwrap_or(0)
}

/// Whether `next`, the first line of a page, continues the paragraph `prev` ends the page with:
/// no list item or heading, and the same text column (or 3 deeper: the hanging indent of a
/// definition like `TOO_MANY_REQUESTS (0x7):  The session ...`).
fn continues(prev: &str, next: &str) -> bool {
    let indent = |l: &str| l.len() - l.trim_start().len();
    heading(next).is_none()
        && marker_len(next.trim_start()).is_none()
        && (text_column(prev) == text_column(next) || indent(next) == indent(prev) + 3)
}

/// Joins a paragraph's lines: one space between them, none after a word broken at a hyphen or
/// a slash (`Length/` `Value` is the source's `Length/Value`).
fn join(lines: &[&str]) -> String {
    let mut s = String::new();
    for l in lines {
        let t = l.trim();
        if !s.is_empty() {
            let word_break = (s.ends_with('-') || s.ends_with('/'))
                && s[..s.len() - 1]
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_ascii_alphanumeric());
            if !word_break {
                s.push(' ');
            }
        }
        s.push_str(t);
    }
    normalize(&s)
}

/// Collapses runs of whitespace to one space and trims.
pub fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

const ABBREVIATIONS: &[&str] = &["e.g", "i.e", "etc", "vs", "al", "cf", "Sec", "Fig"];

/// Splits a paragraph into sentences at `.`, `?` or `!` followed by a space and a capital
/// letter, quote or parenthesis (not after `e.g.`, `i.e.` and the like).
fn split_sentences(p: &str) -> Vec<String> {
    let bytes = p.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if matches!(c, b'.' | b'?' | b'!') && bytes.get(i + 1) == Some(&b' ') {
            let next = bytes.get(i + 2).copied().unwrap_or(b' ');
            let word_start = p[..i]
                .rfind(|ch: char| ch.is_whitespace() || ch == '(')
                .map_or(0, |w| w + 1);
            let word = &p[word_start..i];
            let abbreviation = ABBREVIATIONS.iter().any(|a| word.eq_ignore_ascii_case(a));
            if (next.is_ascii_uppercase() || matches!(next, b'"' | b'(' | b'*')) && !abbreviation {
                out.push(p[start..=i].trim().to_string());
                start = i + 2;
            }
        }
        i += 1;
    }
    let rest = p[start..].trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// Removes a list item's marker (`*  `, `1.  `, `-  `).
fn strip_marker(p: &str) -> &str {
    if let Some(rest) = p.strip_prefix("* ").or_else(|| p.strip_prefix("- ")) {
        return rest.trim_start();
    }
    let digits = p.chars().take_while(char::is_ascii_digit).count();
    match p[digits..].strip_prefix(". ") {
        Some(rest) if digits > 0 => rest.trim_start(),
        _ => p,
    }
}

/// A table line's cells (`| 0x0 | DELETE | There is ... |`), trimmed; `None` for other lines.
fn table_cells(trimmed: &str) -> Option<Vec<&str>> {
    let inner = trimmed.strip_prefix('|')?.strip_suffix('|')?;
    Some(inner.split('|').map(str::trim).collect())
}

/// Every sentence of the draft's body (sections 1 to 13), in order.
pub fn sentences(spec: &str) -> Vec<Sentence> {
    let mut out = Vec::new();
    let mut section = String::from("§1");
    let mut para: Vec<&str> = Vec::new();
    let flush = |para: &mut Vec<&str>, section: &str, out: &mut Vec<Sentence>| {
        if para.is_empty() {
            return;
        }
        let joined = join(para);
        para.clear();
        for text in split_sentences(strip_marker(&joined)) {
            out.push(Sentence {
                section: section.to_string(),
                level: Level::of_sentence(&text),
                text,
            });
        }
    };
    // A table's logical row: each column's lines, until a line whose first cell is not empty.
    let mut row: Vec<Vec<&str>> = Vec::new();
    let flush_row = |row: &mut Vec<Vec<&str>>, section: &str, out: &mut Vec<Sentence>| {
        for mut column in row.drain(..) {
            flush(&mut column, section, out);
        }
    };
    for line in body_lines(spec) {
        let t = line.trim();
        if t.starts_with("+-") || t.starts_with("+=") {
            // A table's border: ends the paragraph before it, not the logical row (the draft
            // draws a border between the lines of one cell when a row crosses its width).
            flush(&mut para, &section, &mut out);
            continue;
        }
        if let Some(cells) = table_cells(t) {
            flush(&mut para, &section, &mut out);
            if cells.first().is_some_and(|c| !c.is_empty()) {
                flush_row(&mut row, &section, &mut out);
            }
            row.resize(row.len().max(cells.len()), Vec::new());
            for (column, cell) in row.iter_mut().zip(cells) {
                if !cell.is_empty() {
                    column.push(cell);
                }
            }
            continue;
        }
        flush_row(&mut row, &section, &mut out);
        if let Some((num, _)) = heading(line) {
            flush(&mut para, &section, &mut out);
            section = num;
        } else if line.trim().is_empty() {
            flush(&mut para, &section, &mut out);
        } else {
            para.push(line);
        }
    }
    flush_row(&mut row, &section, &mut out);
    flush(&mut para, &section, &mut out);
    out
}

/// The sentences with MUST, MUST NOT, SHOULD or SHOULD NOT (or REQUIRED, SHALL, RECOMMENDED):
/// what the traceability table must map.
pub fn normative(spec: &str) -> Vec<Sentence> {
    sentences(spec)
        .into_iter()
        .filter(|s| s.level.is_some_and(|l| l != Level::May))
        .collect()
}

/// The title of a section of draft-14, e.g. `SUBSCRIBE` for `§9.7`.
pub fn section_title(section: &str) -> Option<&'static str> {
    static TITLES: OnceLock<Vec<(String, String)>> = OnceLock::new();
    let titles = TITLES.get_or_init(|| body_lines(SPEC).into_iter().filter_map(heading).collect());
    titles
        .iter()
        .find(|(n, _)| n == section.trim())
        .map(|(_, t)| t.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_and_titles() {
        assert_eq!(
            heading("9.7.  SUBSCRIBE"),
            Some(("§9.7".into(), "SUBSCRIBE".into()))
        );
        assert_eq!(heading("   9.7.  SUBSCRIBE . . . 5"), None);
        assert_eq!(section_title("§9.7"), Some("SUBSCRIBE"));
        assert_eq!(section_title("§2.4.1"), Some("Track Naming"));
        assert_eq!(section_title("§13.1"), Some("Error Codes"));
    }

    #[test]
    fn splits_sentences_not_abbreviations() {
        let s =
            split_sentences("A relay MUST do x, e.g. y. It SHOULD do z (see Section 9.7). Done");
        assert_eq!(
            s,
            vec![
                "A relay MUST do x, e.g. y.",
                "It SHOULD do z (see Section 9.7).",
                "Done"
            ]
        );
    }

    #[test]
    fn a_page_break_before_a_list_item_ends_the_paragraph() {
        // §8.4's "There are two ways to publish through a relay:" ends page 30; the list starts
        // page 31. §9.7's "See Section 7." ends a page before the "Group Order" item.
        let all = sentences(SPEC);
        let has =
            |section: &str, text: &str| all.iter().any(|s| s.section == section && s.text == text);
        assert!(has(
            "§8.4",
            "There are two ways to publish through a relay:"
        ));
        assert!(has(
            "§8.4",
            "Send a PUBLISH message for a specific Track to the relay."
        ));
        let bare_number = |t: &str| {
            t.strip_suffix('.')
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        };
        assert!(all
            .iter()
            .all(|s| !bare_number(&s.text) && !s.text.contains(". * ")));
    }

    #[test]
    fn a_word_broken_after_a_slash_is_one_word() {
        let n = normative(SPEC);
        assert!(n.iter().any(|s| s.section == "§1.4.2"
            && s.text
                .contains("the following Value or Length/Value does not match")));
        assert!(n
            .iter()
            .any(|s| s.section == "§9.7" && s.text.contains("the start group/object when")));
    }

    #[test]
    fn a_table_cell_reads_as_its_own_text() {
        // §9.2.1.1's Table 2 draws a border between the lines of one cell: the extractor must
        // join a column's lines within a row, and keep the borders and other columns out.
        let n = normative(SPEC);
        let in_table: Vec<&str> = n
            .iter()
            .filter(|s| s.section == "§9.2.1.1" && s.text.starts_with("This Alias"))
            .map(|s| s.text.as_str())
            .collect();
        assert_eq!(
            in_table,
            vec![
                "This Alias and the Token Value it was previously associated with MUST be retired.",
                "This Alias MUST be associated with the Token Value for the duration of the Session or it is deleted."
            ]
        );
        assert!(n
            .iter()
            .all(|s| !s.text.contains("+---") && !s.text.contains('|')));
    }

    #[test]
    fn a_sentence_across_a_page_break_is_one_sentence() {
        // §2.2's sentence about a subgroup's objects straddles pages 11 and 12 of the .txt; the
        // extractor must see the whole sentence, and no page furniture.
        let all = sentences(SPEC);
        assert!(all.iter().all(
            |s| !s.text.contains("[Page ") && !s.text.contains("Internet-Draft moq-transport")
        ));
        let n = normative(SPEC);
        assert!(n.len() > 150, "{} normative sentences", n.len());
        assert!(n.iter().any(|s| s.section == "§9.7"));
    }
}
