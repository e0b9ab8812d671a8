//! Regexes and regex sets built without literal prefilters, for the built-in catalogue.
//!
//! `regex` builds an Aho-Corasick or Teddy prefilter from the literals of every regex
//! and set. For the catalogue's few hundred patterns those prefilters were about half of
//! the detector's memory (8 MiB of the gateway's ~23 MiB at start), and they buy little
//! here: word patterns only run on the sentences their anchor words woke up, and the
//! sets scan texts the lazy DFA reads at full speed anyway (bench: the default chain's
//! cost did not change). `regex_automata::meta` — the engine behind `regex` — takes the
//! switch, and skips capture groups we never read.

use regex_automata::meta::{self, BuildError};
use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, PatternSet};

use crate::policy::scan::screen::{needed, Screen};

/// Largest compiled automaton a pattern may need.
const SIZE_LIMIT: usize = 64 << 20;

fn config(kind: MatchKind) -> meta::Config {
    meta::Config::new()
        .match_kind(kind)
        .auto_prefilter(false)
        .which_captures(WhichCaptures::None)
        .nfa_size_limit(Some(SIZE_LIMIT))
}

/// How [`LeanSet::bytes`] reads its patterns: ASCII, case-insensitive, over bytes.
fn bytes_syntax() -> syntax::Config {
    syntax::Config::new()
        .case_insensitive(true)
        .unicode(false)
        .utf8(false)
}

/// One pattern over text (Unicode, case as written).
#[derive(Debug)]
pub struct LeanRegex(meta::Regex);

impl LeanRegex {
    pub fn new(pattern: &str) -> Result<LeanRegex, BuildError> {
        meta::Builder::new()
            .configure(config(MatchKind::LeftmostFirst))
            .build(pattern)
            .map(LeanRegex)
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

/// Many patterns; `matches` says which of them match anywhere in a haystack.
#[derive(Debug)]
pub struct LeanSet(meta::Regex);

impl LeanSet {
    /// Unicode patterns over text, case as written.
    pub fn unicode<P: AsRef<str>>(patterns: &[P]) -> Result<LeanSet, BuildError> {
        meta::Builder::new()
            .configure(config(MatchKind::All))
            .build_many(patterns)
            .map(LeanSet)
    }

    /// ASCII, case-insensitive patterns over bytes (`regex::bytes` with `(?i-u)`).
    pub fn bytes<P: AsRef<str>>(patterns: &[P]) -> Result<LeanSet, BuildError> {
        meta::Builder::new()
            .configure(config(MatchKind::All))
            .syntax(bytes_syntax())
            .build_many(patterns)
            .map(LeanSet)
    }

    /// The indices of the patterns that match somewhere in `haystack`, in order.
    pub fn matches(&self, haystack: impl AsRef<[u8]>) -> Vec<usize> {
        let input = Input::new(haystack.as_ref());
        // A clean text, the usual case: the plain search, no pattern set (as `Scanner::find`).
        if !self.0.is_match(input.clone()) {
            return Vec::new();
        }
        let mut set = PatternSet::new(self.0.pattern_len());
        self.0.which_overlapping_matches(&input, &mut set);
        set.iter().map(|p| p.as_usize()).collect()
    }

    pub fn is_match(&self, haystack: impl AsRef<[u8]>) -> bool {
        self.0.is_match(Input::new(haystack.as_ref()))
    }
}

/// Case-insensitive byte patterns (as [`LeanSet::bytes`]) in two sets: those every match
/// of which holds a byte prose seldom has (no lowercase letter, no space: `<`, `[`, `:`,
/// digits, capitals…), run only on a text holding one of those bytes, and the others,
/// always run. In the gateway the set's tables are cold at every request, and its lazy
/// DFA read them at most bytes of a text; most texts skip the screened set, and the rest
/// is a smaller automaton (bench/RESULTS.md, twenty-third session).
#[derive(Debug)]
pub struct ScreenedSet {
    screen: Screen,
    screened: Part,
    rest: Part,
}

/// Some of a `ScreenedSet`'s patterns: their set and their indices in the whole list.
#[derive(Debug)]
struct Part {
    set: Option<LeanSet>,
    index: Vec<usize>,
}

impl Part {
    fn build<P: AsRef<str>>(patterns: &[P], index: Vec<usize>) -> Result<Part, BuildError> {
        let mine: Vec<&str> = index
            .iter()
            .filter_map(|&i| patterns.get(i).map(AsRef::as_ref))
            .collect();
        let set = if mine.is_empty() {
            None
        } else {
            Some(LeanSet::bytes(&mine)?)
        };
        Ok(Part { set, index })
    }

    fn matches(&self, haystack: &[u8], out: &mut Vec<usize>) {
        if let Some(set) = &self.set {
            out.extend(
                set.matches(haystack)
                    .into_iter()
                    .filter_map(|p| self.index.get(p)),
            );
        }
    }
}

impl ScreenedSet {
    pub fn bytes<P: AsRef<str>>(patterns: &[P]) -> Result<ScreenedSet, BuildError> {
        let mut needs = Vec::new();
        let (mut screened, mut rest) = (Vec::new(), Vec::new());
        for (i, p) in patterns.iter().enumerate() {
            let hir = syntax::parse_with(p.as_ref(), &bytes_syntax()).ok();
            match hir
                .and_then(|h| needed(&h))
                .filter(|n| !n.has_prose_bytes())
            {
                Some(n) => {
                    needs.push(n);
                    screened.push(i);
                }
                None => rest.push(i),
            }
        }
        Ok(ScreenedSet {
            screen: Screen::of(needs),
            screened: Part::build(patterns, screened)?,
            rest: Part::build(patterns, rest)?,
        })
    }

    /// The indices of the patterns that match somewhere in `haystack`, in order.
    pub fn matches(&self, haystack: impl AsRef<[u8]>) -> Vec<usize> {
        let haystack = haystack.as_ref();
        let mut out = Vec::new();
        self.rest.matches(haystack, &mut out);
        if self.screen.may_match(haystack) {
            self.screened.matches(haystack, &mut out);
        }
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Split by what the patterns need, the set finds what one set of them all finds.
    #[test]
    fn a_screened_set_agrees_with_the_whole_set() {
        let patterns = [
            r"<\|im_start\|>",
            r"\bbackwards?\b",
            r"\[/?INST\]",
            r"(?-i:DAN)",
        ];
        let split = ScreenedSet::bytes(&patterns).unwrap();
        assert_eq!(split.screened.index, [0, 2, 3]);
        assert_eq!(split.rest.index, [1]);
        let whole = LeanSet::bytes(&patterns).unwrap();
        for text in [
            &b"read it BACKWARDS <|im_start|> [INST]"[..],
            b"backwards",
            b"ask DAN",
            b"ask dan",
            b"plain prose, nothing else",
            b"",
        ] {
            assert_eq!(split.matches(text), whole.matches(text), "{text:?}");
        }
    }

    /// The lean builds match exactly what `regex` matches.
    #[test]
    fn lean_sets_agree_with_regex_sets() {
        let patterns = [
            r"ab+c",
            r"(?:foo|bar)\s+baz",
            r"b",
            r"[^.!?\n]{0,5}?zz",
            r"\bword\b",
        ];
        let set = regex::RegexSet::new(patterns).unwrap();
        let lean = LeanSet::unicode(&patterns).unwrap();
        for text in [
            "abbc foo  baz",
            "nothing",
            "x zz.",
            "a word here",
            "bar baz b",
            "",
        ] {
            let want: Vec<usize> = set.matches(text).iter().collect();
            let got = lean.matches(text);
            assert_eq!(got, want, "{text}");
            assert_eq!(lean.is_match(text), set.is_match(text), "{text}");
        }
        let bytes = [r"ignore\s+all", r"\x00\xff", r"sys(tem)?"];
        let set = regex::bytes::RegexSetBuilder::new(bytes)
            .case_insensitive(true)
            .unicode(false)
            .build()
            .unwrap();
        let lean = LeanSet::bytes(&bytes).unwrap();
        for text in [
            &b"IGNORE  all"[..],
            b"\x00\xff\xfe",
            b"SYSTEM",
            b"\xff\xfe ok",
        ] {
            let want: Vec<usize> = set.matches(text).iter().collect();
            assert_eq!(lean.matches(text), want);
        }
        let re = LeanRegex::new(r"(?:a|b)c+").unwrap();
        assert!(re.is_match("xxbccc") && !re.is_match("ab"));
    }
}
