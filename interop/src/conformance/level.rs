//! Requirement levels (RFC 2119 / RFC 8174 keywords) and how a missed requirement is graded.

use serde::Serialize;

/// The keyword of the draft sentence a check tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Level {
    /// MUST, REQUIRED or SHALL: a miss is a failure.
    Must,
    /// MUST NOT or SHALL NOT: a miss is a failure.
    MustNot,
    /// SHOULD or RECOMMENDED: a miss is reported (TAP `# TODO`), not counted unless `--strict`.
    Should,
    /// SHOULD NOT or NOT RECOMMENDED: reported like SHOULD.
    ShouldNot,
    /// MAY: a check only looks at what the draft then requires of whatever the peer chose.
    May,
}

impl Level {
    /// The keyword as the draft writes it, e.g. `MUST NOT`.
    pub fn keyword(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::MustNot => "MUST NOT",
            Level::Should => "SHOULD",
            Level::ShouldNot => "SHOULD NOT",
            Level::May => "MAY",
        }
    }

    /// Whether missing it is a failure (MUST, MUST NOT) rather than a reported shortfall.
    pub fn mandatory(self) -> bool {
        matches!(self, Level::Must | Level::MustNot)
    }

    /// The strongest keyword in a sentence of the draft, if it has one.
    pub fn of_sentence(sentence: &str) -> Option<Level> {
        let words: Vec<&str> = sentence
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| !w.is_empty())
            .collect();
        let mut best: Option<Level> = None;
        for (i, w) in words.iter().enumerate() {
            let not = words.get(i + 1) == Some(&"NOT");
            let level = match *w {
                "MUST" | "SHALL" if not => Level::MustNot,
                "MUST" | "SHALL" | "REQUIRED" => Level::Must,
                "SHOULD" if not => Level::ShouldNot,
                "SHOULD" | "RECOMMENDED" => Level::Should,
                "MAY" | "OPTIONAL" => Level::May,
                _ => continue,
            };
            if best.is_none_or(|b| level.rank() > b.rank()) {
                best = Some(level);
            }
        }
        best
    }

    fn rank(self) -> u8 {
        match self {
            Level::May => 0,
            Level::ShouldNot => 1,
            Level::Should => 2,
            Level::MustNot => 3,
            Level::Must => 4,
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.keyword())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strongest_keyword_wins() {
        assert_eq!(
            Level::of_sentence("It MAY do x and MUST NOT do y."),
            Some(Level::MustNot)
        );
        assert_eq!(
            Level::of_sentence("A relay SHOULD NOT cache."),
            Some(Level::ShouldNot)
        );
        assert_eq!(
            Level::of_sentence("It is RECOMMENDED."),
            Some(Level::Should)
        );
        assert_eq!(Level::of_sentence("The MUSTard is yellow."), None);
        assert_eq!(Level::of_sentence("Nothing must be lowercase."), None);
    }
}
