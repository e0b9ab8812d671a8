//! The compiled detector: every catalogue is one `RegexSet`, built once per policy, run over
//! the normalised views of a text (and over whatever the decoder recovers from it). A text's
//! signals combine into a score in [0, 1].
//!
//! Score: each pattern has a weight `w` in (0, 1]. Within a kind, the strongest pattern
//! counts fully and the others at half weight (they overlap); the kinds then combine as
//! independent evidence: `score = 1 - Π(1 - p_kind)`. Disguises (homoglyphs, zero-width
//! characters, encodings…) add [`OBFUSCATION_WEIGHT`] when they hid a signal. Text that
//! talks *about* attacks (a security question, a paper) has its signals damped by
//! [`DISCUSSION_DAMPING`], unless the signals came out of a hidden payload. Instructions
//! addressed to the AI count half outside tool results, where they are the hallmark of
//! indirect injection.

use std::collections::{BTreeMap, BTreeSet};

use regex::bytes::{
    Regex as BytesRegex, RegexBuilder as BytesRegexBuilder, RegexSet as BytesSet,
    RegexSetBuilder as BytesSetBuilder,
};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::decode::{Decoder, Encoding};
use super::normalize::{normalize, Obfuscation};
use super::signals::{self, Kind, Signal};
use super::ScanRole;
use crate::policy::Finding;

/// Added once when a disguise hid at least one signal.
pub const OBFUSCATION_WEIGHT: f64 = 0.3;
/// Invisible tag characters smuggling text, even with no other signal.
pub const HIDDEN_TEXT_WEIGHT: f64 = 0.5;
/// Multiplier for signals in text that discusses attacks.
pub const DISCUSSION_DAMPING: f64 = 0.35;
/// Multiplier for AI-addressed instructions outside tool results.
pub const OUTSIDE_TOOL_FACTOR: f64 = 0.5;
/// Weight of an administrator's extra pattern.
pub const CUSTOM_WEIGHT: f64 = 1.0;
/// How deep payloads inside payloads are followed.
const MAX_DEPTH: u8 = 2;
const REGEX_SIZE_LIMIT: usize = 64 << 20;

/// Which catalogue a match came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Folded,
    Scripts,
    Squashed,
    Custom,
}

/// What was found in one text.
#[derive(Debug, Clone, Default)]
struct Evidence {
    matched: BTreeSet<(Source, usize)>,
    obfuscation: Obfuscation,
    encodings: BTreeSet<Encoding>,
    discussion: bool,
    hidden_text: bool,
}

/// The verdict on a text or a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub score: f64,
    /// The kind that weighed most (the reason code), if anything was found.
    pub top: Option<Kind>,
    pub findings: Vec<Finding>,
}

impl Analysis {
    fn none() -> Analysis {
        Analysis {
            score: 0.0,
            top: None,
            findings: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub struct Detector {
    folded: BytesSet,
    scripts: RegexSet,
    squashed: BytesSet,
    discussion: BytesSet,
    discussion_scripts: RegexSet,
    negated: BytesRegex,
    custom: Option<RegexSet>,
    allow: Vec<Regex>,
    decoder: Decoder,
}

fn bytes_set<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<BytesSet, regex::Error> {
    BytesSetBuilder::new(patterns.into_iter().map(signals::expand))
        .case_insensitive(true)
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

fn unicode_set<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<RegexSet, regex::Error> {
    RegexSetBuilder::new(patterns.into_iter().map(signals::expand))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

impl Detector {
    /// Compiles the catalogue and the administrator's patterns. Errors name the config
    /// field and the offending pattern.
    pub fn new(patterns: &[String], allow_patterns: &[String]) -> Result<Detector, String> {
        let internal = |what: &str, e: regex::Error| format!("built-in {what} patterns: {e}");
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
        Ok(Detector {
            folded: bytes_set(signals::FOLDED.iter().map(|s| s.pattern))
                .map_err(|e| internal("folded", e))?,
            scripts: unicode_set(signals::SCRIPTS.iter().map(|s| s.pattern))
                .map_err(|e| internal("script", e))?,
            squashed: bytes_set(signals::SQUASHED.iter().map(|s| s.pattern))
                .map_err(|e| internal("squashed", e))?,
            discussion: bytes_set(signals::DISCUSSION.iter().copied())
                .map_err(|e| internal("discussion", e))?,
            discussion_scripts: unicode_set(signals::DISCUSSION_SCRIPTS.iter().copied())
                .map_err(|e| internal("discussion", e))?,
            negated: BytesRegexBuilder::new(signals::NEGATED)
                .case_insensitive(true)
                .unicode(false)
                .build()
                .map_err(|e| internal("negation", e))?,
            custom,
            allow,
            decoder: Decoder::new().map_err(|e| internal("decoder", e))?,
        })
    }

    /// Scores one text as content of `role`.
    pub fn analyze(&self, text: &str, role: ScanRole) -> Analysis {
        let mut ev = Evidence::default();
        self.scan(text, 0, &mut ev);
        self.score(&ev, role)
    }

    fn scan(&self, text: &str, depth: u8, ev: &mut Evidence) {
        let mut norm = normalize(text);
        let folded = self.allowed(std::mem::take(&mut norm.folded));
        let found = self.folded.matches(folded.as_bytes());
        for i in found.iter() {
            ev.matched.insert((Source::Folded, i));
        }
        // Leetspeak counts as a disguise only when reading it as letters reveals a signal.
        if let Some(leet) = norm.leet.take() {
            let leet = self.allowed(leet);
            for i in self.folded.matches(leet.as_bytes()).iter() {
                if !found.matched(i) {
                    ev.matched.insert((Source::Folded, i));
                    norm.obfuscation.leetspeak = true;
                }
            }
        }
        if depth == 0 && self.discussion.is_match(folded.as_bytes()) {
            ev.discussion = true;
        }
        if let Some(custom) = &self.custom {
            for i in custom.matches(&folded).iter() {
                ev.matched.insert((Source::Custom, i));
            }
        }
        if let Some(plain) = norm.plain {
            let plain = self.allowed(plain);
            for i in self.scripts.matches(&plain).iter() {
                ev.matched.insert((Source::Scripts, i));
            }
            if depth == 0 && self.discussion_scripts.is_match(&plain) {
                ev.discussion = true;
            }
        }
        if let Some(squashed) = &norm.squashed {
            for i in self.squashed.matches(squashed.as_bytes()).iter() {
                ev.matched.insert((Source::Squashed, i));
            }
        }
        ev.obfuscation.merge(norm.obfuscation);
        if !norm.hidden.is_empty() {
            ev.hidden_text = true;
            if depth < MAX_DEPTH {
                let mut sub = Evidence::default();
                self.scan(&norm.hidden, depth + 1, &mut sub);
                ev.absorb(sub, None);
            }
        }
        if depth < MAX_DEPTH {
            for payload in self.decoder.payloads(text, &folded) {
                let mut sub = Evidence::default();
                self.scan(&payload.text, depth + 1, &mut sub);
                if !sub.matched.is_empty() {
                    ev.absorb(sub, Some(payload.encoding));
                }
            }
        }
    }

    /// Blanks out negated requests and what the administrator's `allow_patterns` match.
    fn allowed(&self, text: String) -> String {
        let text = if self.negated.is_match(text.as_bytes()) {
            let ranges: Vec<_> = self
                .negated
                .find_iter(text.as_bytes())
                .map(|m| m.range())
                .collect();
            blank(&text, ranges)
        } else {
            text
        };
        self.allow
            .iter()
            .fold(text, |t, re| match re.replace_all(&t, " ") {
                std::borrow::Cow::Borrowed(_) => t,
                std::borrow::Cow::Owned(o) => o,
            })
    }

    fn signal(&self, source: Source, i: usize) -> Option<(Kind, f64)> {
        let table: &[Signal] = match source {
            Source::Folded => signals::FOLDED,
            Source::Scripts => signals::SCRIPTS,
            Source::Squashed => signals::SQUASHED,
            Source::Custom => return Some((Kind::CustomPattern, CUSTOM_WEIGHT)),
        };
        table.get(i).map(|s| (s.kind, s.weight))
    }

    fn score(&self, ev: &Evidence, role: ScanRole) -> Analysis {
        // Per kind: the weights of its patterns that matched.
        let mut weights: BTreeMap<Kind, Vec<f64>> = BTreeMap::new();
        for &(source, i) in &ev.matched {
            let Some((kind, weight)) = self.signal(source, i) else {
                continue;
            };
            let w = if kind == Kind::ToolInjection && role != ScanRole::Tool {
                weight * OUTSIDE_TOOL_FACTOR
            } else {
                weight
            };
            weights.entry(kind).or_default().push(w);
        }
        if weights.is_empty() && !ev.hidden_text {
            return Analysis::none();
        }
        // Hidden payloads are never just discussion.
        let damp = ev.discussion && ev.encodings.is_empty();
        let kinds: BTreeMap<Kind, (f64, u32)> = weights
            .into_iter()
            .map(|(kind, ws)| {
                let mut p = kind_evidence(&ws);
                if damp && kind != Kind::CustomPattern {
                    p *= DISCUSSION_DAMPING;
                }
                (kind, (p, u32::try_from(ws.len()).unwrap_or(u32::MAX)))
            })
            .collect();
        let mut keep: f64 = kinds.values().map(|(p, _)| 1.0 - p).product();
        let disguises = ev.obfuscation.kinds();
        let disguised = !kinds.is_empty() && (!disguises.is_empty() || !ev.encodings.is_empty());
        if disguised {
            keep *= 1.0 - OBFUSCATION_WEIGHT;
        }
        if ev.hidden_text {
            keep *= 1.0 - HIDDEN_TEXT_WEIGHT;
        }
        let top = kinds
            .iter()
            .max_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
            .map(|(k, _)| *k)
            .or(Some(Kind::EncodedInstruction));
        let mut findings: Vec<Finding> = kinds
            .iter()
            .map(|(k, (_, n))| Finding::new(k.as_str(), *n))
            .collect();
        if disguised || ev.hidden_text {
            findings.extend(disguises.iter().map(|k| Finding::new(*k, 1)));
            findings.extend(ev.encodings.iter().map(|e| Finding::new(e.as_str(), 1)));
        }
        Analysis {
            score: 1.0 - keep,
            top,
            findings,
        }
    }
}

/// The evidence of one kind. Patterns of a kind overlap (several can match one phrase), so
/// they are not independent: the strongest counts fully, the others at half weight.
fn kind_evidence(weights: &[f64]) -> f64 {
    let max = weights.iter().copied().fold(0.0, f64::max);
    let mut keep = 1.0 - max;
    let mut skipped = false;
    for &w in weights {
        if !skipped && w == max {
            skipped = true;
            continue;
        }
        keep *= 1.0 - w / 2.0;
    }
    1.0 - keep
}

impl Evidence {
    /// Takes in what a payload revealed; signals inside it are as good as signals here.
    fn absorb(&mut self, sub: Evidence, encoding: Option<Encoding>) {
        let had = !sub.matched.is_empty();
        self.matched.extend(sub.matched);
        self.obfuscation.merge(sub.obfuscation);
        self.encodings.extend(sub.encodings);
        self.hidden_text |= sub.hidden_text;
        if let (true, Some(e)) = (had, encoding) {
            self.encodings.insert(e);
        }
    }
}

/// `text` with the byte `ranges` (sorted, disjoint) replaced by spaces; a range that does
/// not fall on character boundaries is kept as is.
fn blank(text: &str, ranges: Vec<std::ops::Range<usize>>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for r in ranges {
        let (Some(before), Some(_)) = (text.get(last..r.start), text.get(r.clone())) else {
            continue;
        };
        out.push_str(before);
        out.extend(std::iter::repeat_n(' ', r.len()));
        last = r.end;
    }
    out.push_str(text.get(last..).unwrap_or_default());
    out
}

fn check_user_regex(field: &str, i: usize, pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let first = e.to_string();
            let first = first
                .lines()
                .last()
                .unwrap_or("invalid regex")
                .trim()
                .to_string();
            format!("`policy.prompt-injection.{field}[{i}]`: invalid regex `{pattern}`: {first}")
        })
}

/// Combines the analyses of several texts of one request: the highest score decides,
/// findings add up.
pub fn combine(parts: impl IntoIterator<Item = Analysis>) -> Analysis {
    let mut out = Analysis::none();
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for a in parts {
        for f in &a.findings {
            *counts.entry(f.kind.clone()).or_insert(0) += f.count;
        }
        if a.score > out.score {
            out.score = a.score;
            out.top = a.top;
        }
    }
    out.findings = counts
        .into_iter()
        .map(|(k, n)| Finding::new(k, n))
        .collect();
    out
}
