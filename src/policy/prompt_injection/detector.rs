//! The compiled detector, built once per policy: the word patterns (signals, discussion
//! markers and concept atoms in one [`WordMatcher`], one pass per text), the character
//! patterns, the concept rules, the non-Latin patterns, the administrator's patterns, and
//! the decoder. [`Detector::analyze`] runs them over the
//! views of a text (and over whatever the decoder recovers from it) and scores the result.

use std::sync::{Arc, Mutex};

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::compile::Compiler;
use super::concepts::{self, Concepts};
use super::decode::{self, Decoder, Hints};
use super::lean::{LeanSet, ScreenedSet};
use super::matcher::{AnchoredRegex, Scratch, WordMatcher};
use super::normalize::normalize;
use super::score::{score, Analysis, Evidence};
use super::signals::{self, Kind, Signal};
use super::symbols::{Lexicon, OTHER_WORD, SENTENCE_END};
use super::ScanRole;

/// Weight of an administrator's extra pattern.
pub const CUSTOM_WEIGHT: f64 = 1.0;
/// How deep payloads inside payloads are followed.
const MAX_DEPTH: u8 = 2;
const REGEX_SIZE_LIMIT: usize = 64 << 20;

/// Which catalogue a match came from (the first half of an evidence key).
const WORDS: u8 = 0;
const CHARS: u8 = 1;
const CONCEPTS: u8 = 2;
const SCRIPTS: u8 = 3;
const SQUASHED: u8 = 4;
const CUSTOM: u8 = 5;

#[derive(Debug)]
pub struct Detector {
    lexicon: Lexicon,
    /// Word signals, then discussion markers, then concept atoms.
    matcher: WordMatcher,
    word_signals: Vec<Signal>,
    discussion_start: usize,
    atoms_start: usize,
    chars: ScreenedSet,
    char_signals: Vec<Signal>,
    concepts: Concepts,
    scripts: LeanSet,
    squashed: LeanSet,
    discussion_scripts: LeanSet,
    negated: AnchoredRegex,
    custom: Option<RegexSet>,
    allow: Vec<Regex>,
    decoder: Decoder,
}

/// Detectors already compiled, by their (patterns, allow_patterns). Validating a config
/// and building its chain both need the detector; compiling the catalogue takes ~100 ms
/// and several MiB, so the second build reuses the first. Configs are few; the list is
/// bounded anyway.
type Compiled = ((Vec<String>, Vec<String>), Arc<Detector>);
static COMPILED: Mutex<Vec<Compiled>> = Mutex::new(Vec::new());
const MAX_COMPILED: usize = 16;

impl Detector {
    /// The detector for these patterns, compiled once per process.
    pub fn shared(patterns: &[String], allow_patterns: &[String]) -> Result<Arc<Detector>, String> {
        let mut compiled = COMPILED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, d)) = compiled
            .iter()
            .find(|((p, a), _)| p.as_slice() == patterns && a.as_slice() == allow_patterns)
        {
            return Ok(d.clone());
        }
        let d = Arc::new(Detector::new(patterns, allow_patterns)?);
        if compiled.len() >= MAX_COMPILED {
            compiled.remove(0);
        }
        compiled.push(((patterns.to_vec(), allow_patterns.to_vec()), d.clone()));
        Ok(d)
    }

    /// Compiles the catalogue and the administrator's patterns. Errors name the config
    /// field and the offending pattern.
    pub fn new(patterns: &[String], allow_patterns: &[String]) -> Result<Detector, String> {
        let internal =
            |what: &str, e: &dyn std::fmt::Display| format!("built-in {what} patterns: {e}");
        let custom = if patterns.is_empty() {
            None
        } else {
            for (i, p) in patterns.iter().enumerate() {
                check_user_regex("patterns", i, p)?;
            }
            Some(
                RegexSetBuilder::new(patterns)
                    .case_insensitive(true)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| format!("`policy.prompt-injection.patterns`: {e}"))?,
            )
        };
        let allow = allow_patterns
            .iter()
            .enumerate()
            .map(|(i, p)| check_user_regex("allow_patterns", i, p))
            .collect::<Result<Vec<_>, _>>()?;

        // Every word pattern registers its words before any is compiled.
        let word_signals = signals::words();
        let mut compiler = Compiler::new(signals::VOCAB);
        let all_words = || {
            word_signals
                .iter()
                .map(|s| s.pattern)
                .chain(signals::DISCUSSION.iter().copied())
                .chain(concepts::atom_patterns())
        };
        for p in all_words().chain([signals::NEGATED]) {
            compiler.register(p)?;
        }
        let matcher = WordMatcher::new(&compiler, all_words())?;
        let discussion_start = word_signals.len();
        let atoms_start = discussion_start + signals::DISCUSSION.len();
        let negated = AnchoredRegex::new(&compiler, signals::NEGATED)
            .map_err(|e| internal("negation", &e))?;
        let concepts = Concepts::new()?;
        let char_signals = signals::chars();
        Ok(Detector {
            matcher,
            word_signals,
            discussion_start,
            atoms_start,
            // The decoder's hints ride along at the end (`Detector::scan`).
            chars: ScreenedSet::bytes(
                &char_signals
                    .iter()
                    .map(|s| s.pattern)
                    .chain([decode::ROT13_HINT, decode::REVERSE_HINT])
                    .collect::<Vec<_>>(),
            )
            .map_err(|e| internal("character", &e))?,
            char_signals,
            concepts,
            scripts: LeanSet::unicode(
                &signals::SCRIPTS
                    .iter()
                    .map(|s| s.pattern)
                    .collect::<Vec<_>>(),
            )
            .map_err(|e| internal("script", &e))?,
            squashed: LeanSet::bytes(
                &signals::SQUASHED
                    .iter()
                    .map(|s| s.pattern)
                    .collect::<Vec<_>>(),
            )
            .map_err(|e| internal("squashed", &e))?,
            discussion_scripts: LeanSet::unicode(signals::DISCUSSION_SCRIPTS)
                .map_err(|e| internal("discussion", &e))?,
            negated,
            custom,
            allow,
            decoder: Decoder::new().map_err(|e| internal("decoder", &e))?,
            lexicon: compiler.lexicon,
        })
    }

    /// Scores one text as content of `role`.
    pub fn analyze(&self, text: &str, role: ScanRole) -> Analysis {
        let mut ev = Evidence::default();
        self.scan(text, 0, &mut ev);
        score(&ev, role)
    }

    fn scan(&self, text: &str, depth: u8, ev: &mut Evidence) {
        let mut norm = normalize(text);
        let folded = self.allowed(std::mem::take(&mut norm.folded));
        let (symbols, leet) = self.symbols(&folded);
        let words = self.match_words(&symbols, depth == 0, ev);
        let mut hints = Hints::default();
        for i in self.chars.matches(folded.as_bytes()) {
            match self.char_signals.get(i) {
                Some(s) => {
                    ev.matched.insert((CHARS, i), (s.kind, s.weight));
                }
                // The decoder's hints, after the signals.
                None if i == self.char_signals.len() => hints.rot13 = true,
                None => hints.reverse = true,
            }
        }
        if let Some(custom) = &self.custom {
            for i in custom.matches(&folded).iter() {
                ev.matched
                    .insert((CUSTOM, i), (Kind::CustomPattern, CUSTOM_WEIGHT));
            }
        }
        // Leetspeak counts as a disguise only when reading it as letters reveals a signal;
        // only the sentences it changes are matched again.
        if let Some(leet) = leet {
            let mut scratch = Scratch::default();
            let mut hits = Vec::new();
            let plain = symbols.split(SENTENCE_END);
            for (a, b) in plain.zip(leet.split(SENTENCE_END)) {
                if a == b {
                    continue;
                }
                hits.clear();
                self.matcher.sentence(b, &mut scratch, &mut hits);
                for &i in hits.iter().filter(|i| **i < self.discussion_start) {
                    if !words.contains(&i) {
                        if let Some(s) = self.word_signals.get(i) {
                            ev.matched.insert((WORDS, i), (s.kind, s.weight));
                            norm.obfuscation.leetspeak = true;
                        }
                    }
                }
            }
        }
        if let Some(plain) = norm.plain.take() {
            let plain = self.allowed(plain);
            for i in self.scripts.matches(&plain) {
                if let Some(s) = signals::SCRIPTS.get(i) {
                    ev.matched.insert((SCRIPTS, i), (s.kind, s.weight));
                }
            }
            if depth == 0 && self.discussion_scripts.is_match(&plain) {
                ev.discussion = true;
            }
        }
        if let Some(squashed) = &norm.squashed {
            for i in self.squashed.matches(squashed.as_bytes()) {
                if let Some(s) = signals::SQUASHED.get(i) {
                    ev.matched.insert((SQUASHED, i), (s.kind, s.weight));
                }
            }
        }
        ev.obfuscation.merge(norm.obfuscation);
        if depth >= MAX_DEPTH {
            return;
        }
        if !norm.hidden.is_empty() {
            ev.hidden_text = true;
            let mut sub = Evidence::default();
            self.scan(&norm.hidden, depth + 1, &mut sub);
            ev.absorb(sub, None);
        }
        for payload in self.decoder.payloads_hinted(text, &folded, hints) {
            let mut sub = Evidence::default();
            self.scan(&payload.text, depth + 1, &mut sub);
            if !sub.matched.is_empty() {
                ev.absorb(sub, Some(payload.encoding));
            }
        }
    }

    /// The symbol string of a folded text and its leetspeak reading (when it differs),
    /// negated requests neutralised.
    fn symbols(&self, folded: &str) -> (String, Option<String>) {
        let (main, leet) = self.lexicon.symbolize_with_leet(folded);
        (self.neutralize(main), leet.map(|l| self.neutralize(l)))
    }

    fn neutralize(&self, symbols: String) -> String {
        let Some(negated) = self.negated.regex_for(&symbols) else {
            return symbols;
        };
        if !negated.is_match(&symbols) {
            return symbols;
        }
        let mut out = String::with_capacity(symbols.len());
        let mut last = 0;
        for m in negated.find_iter(&symbols) {
            out.push_str(symbols.get(last..m.start()).unwrap_or_default());
            out.extend(m.as_str().chars().map(|c| {
                if c.is_alphabetic() || u32::from(c) >= 0xE000 {
                    OTHER_WORD
                } else {
                    c
                }
            }));
            last = m.end();
        }
        out.push_str(symbols.get(last..).unwrap_or_default());
        out
    }

    /// Runs the word matcher over a symbol string: records word signals and concept rules
    /// in `ev`, sets `ev.discussion` when asked to look for it, returns the word signals.
    fn match_words(&self, symbols: &str, discussion: bool, ev: &mut Evidence) -> Vec<usize> {
        let mut words = Vec::new();
        let mut masks = Vec::new();
        self.matcher.scan(symbols, |_, hits| {
            let mut mask = 0u64;
            for &i in hits {
                if i < self.discussion_start {
                    words.push(i);
                } else if i < self.atoms_start {
                    ev.discussion |= discussion;
                } else {
                    mask |= self.concepts.bit(i - self.atoms_start);
                }
            }
            masks.push(mask);
        });
        for &i in &words {
            if let Some(s) = self.word_signals.get(i) {
                ev.matched.insert((WORDS, i), (s.kind, s.weight));
            }
        }
        for r in self.concepts.rules(&masks) {
            if let Some(s) = Concepts::rule(r) {
                ev.matched.insert((CONCEPTS, r), (s.kind, s.weight));
            }
        }
        words
    }

    /// Blanks out what the administrator's `allow_patterns` match.
    fn allowed(&self, text: String) -> String {
        self.allow
            .iter()
            .fold(text, |t, re| match re.replace_all(&t, " ") {
                std::borrow::Cow::Borrowed(_) => t,
                std::borrow::Cow::Owned(o) => o,
            })
    }
}

#[cfg(test)]
impl Detector {
    /// Panics unless the scan's shortcuts agree with the full searches on `text`: the
    /// negation's anchor lets through every symbol string its regex matches, the
    /// character set (screened in two) finds what one set of all its patterns finds, and
    /// it reports the decoder's hints exactly where their regexes match.
    pub fn check_shortcuts(&self, text: &str) {
        let folded = normalize(text).folded;
        let (main, leet) = self.lexicon.symbolize_with_leet(&folded);
        for symbols in std::iter::once(main).chain(leet) {
            if self.negated.full().is_match(&symbols) {
                assert!(
                    self.negated.regex_for(&symbols).is_some(),
                    "negation in {text:?}"
                );
            }
        }
        let found = self.chars.matches(folded.as_bytes());
        static WHOLE: std::sync::OnceLock<LeanSet> = std::sync::OnceLock::new();
        let whole = WHOLE.get_or_init(|| {
            let patterns: Vec<&str> = self
                .char_signals
                .iter()
                .map(|s| s.pattern)
                .chain([decode::ROT13_HINT, decode::REVERSE_HINT])
                .collect();
            LeanSet::bytes(&patterns).unwrap()
        });
        assert_eq!(
            found,
            whole.matches(folded.as_bytes()),
            "character set in {text:?}"
        );
        let n = self.char_signals.len();
        let hints = [decode::ROT13_HINT, decode::REVERSE_HINT];
        for (k, hint) in hints.iter().enumerate() {
            let expected = regex::bytes::Regex::new(hint)
                .unwrap()
                .is_match(folded.as_bytes());
            assert_eq!(found.contains(&(n + k)), expected, "{hint} in {text:?}");
        }
    }

    /// Which patterns match `text` (top level only): for debugging the catalogue.
    pub fn explain(&self, text: &str) -> Vec<(Kind, f64, &'static str)> {
        let mut ev = Evidence::default();
        self.scan(text, 0, &mut ev);
        ev.matched
            .iter()
            .map(|(&(src, i), &(kind, w))| {
                let pattern = match src {
                    WORDS => self.word_signals.get(i).map_or("", |s| s.pattern),
                    CHARS => self.char_signals.get(i).map_or("", |s| s.pattern),
                    CONCEPTS => "concept rule",
                    _ => "other view",
                };
                (kind, w, pattern)
            })
            .collect()
    }
}

fn check_user_regex(field: &str, i: usize, pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let full = e.to_string();
            let reason = full
                .lines()
                .last()
                .unwrap_or("invalid regex")
                .trim()
                .to_string();
            format!("`policy.prompt-injection.{field}[{i}]`: invalid regex `{pattern}`: {reason}")
        })
}
