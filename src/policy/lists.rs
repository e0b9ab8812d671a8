//! Keyword, phrase and regex lists with actions, shared by `dlp-filter` and
//! `safety-filter`. Each named rule (a DLP rule, a safety category) has an action:
//! `block`, `redact` or `flag`.
//!
//! Matching is case-insensitive. Keywords and phrases match whole words: a match may not
//! be glued to a letter or digit on a side where the term itself starts or ends with one
//! (`bomb` does not match `bombastic`). Phrase words are separated by any whitespace.
//! Regexes are used as written (case-insensitive unless they say `(?-i)`).
//!
//! All terms of one rule are compiled into one regex, and all rules into one scanner.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::scan::filter::ScanFilter;
use super::scan::{self, char_at, char_before, walk, DetectorSpec, Scanner};
use super::{Decision, Finding, Mode, Policy, PolicyError, RequestContext, TextFilter};
use crate::openai::{ChatRequest, ChatResponse};

/// What a rule does when it matches. Ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListAction {
    Flag,
    Redact,
    Block,
}

/// Which side of the exchange a list policy reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyTo {
    Input,
    Output,
    #[default]
    Both,
}

impl ApplyTo {
    pub fn input(self) -> bool {
        matches!(self, ApplyTo::Input | ApplyTo::Both)
    }

    pub fn output(self) -> bool {
        matches!(self, ApplyTo::Output | ApplyTo::Both)
    }
}

/// The terms of one rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub phrases: Vec<String>,
    #[serde(default)]
    pub patterns: Vec<String>,
}

impl Terms {
    pub fn is_empty(&self) -> bool {
        self.keywords.is_empty() && self.phrases.is_empty() && self.patterns.is_empty()
    }

    pub fn extend(&mut self, other: &Terms) {
        self.keywords.extend(other.keywords.iter().cloned());
        self.phrases.extend(other.phrases.iter().cloned());
        self.patterns.extend(other.patterns.iter().cloned());
    }
}

/// A rule ready to compile: its name (the finding kind), action, terms, and the message
/// shown when it blocks (a default is used when absent).
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub action: ListAction,
    pub terms: Terms,
    pub message: Option<String>,
}

/// Compiled rules.
pub struct Lists {
    rules: Vec<Rule>,
    scanner: Arc<Scanner>,
    /// `{name}` in it is replaced by the rule's name.
    marker: String,
}

/// What scanning found: counts by rule, and the most severe rule that matched.
#[derive(Debug, Default)]
pub struct Outcome {
    counts: BTreeMap<String, u32>,
    /// (action, rule index) of the most severe match; the first rule on ties.
    worst: Option<(ListAction, usize)>,
}

impl Outcome {
    fn add(&mut self, rule: usize, r: &Rule) {
        *self.counts.entry(r.name.clone()).or_default() += 1;
        let worse = match self.worst {
            None => true,
            Some((a, i)) => r.action > a || (r.action == a && rule < i),
        };
        if worse {
            self.worst = Some((r.action, rule));
        }
    }

    pub fn findings(&self) -> Vec<Finding> {
        self.counts
            .iter()
            .map(|(k, n)| Finding::new(k.clone(), *n))
            .collect()
    }
}

/// A keyword or phrase may not continue a word: on each side where the match itself
/// starts or ends with a letter or digit, the neighbouring character may not be one.
fn whole_words(hay: &str, span: Range<usize>) -> Option<Range<usize>> {
    let text = hay.get(span.clone())?;
    let starts_word = text.chars().next().is_some_and(char::is_alphanumeric);
    let ends_word = text.chars().next_back().is_some_and(char::is_alphanumeric);
    let glued_before =
        starts_word && char_before(hay, span.start).is_some_and(char::is_alphanumeric);
    let glued_after = ends_word && char_at(hay, span.end).is_some_and(char::is_alphanumeric);
    (!glued_before && !glued_after).then_some(span)
}

/// One alternation of literal terms, longest first (so `bombing` is preferred over
/// `bomb` where both start).
fn alternation(terms: &[String], phrase: bool) -> Option<String> {
    let mut parts: Vec<String> = terms
        .iter()
        .map(|t| {
            if phrase {
                t.split_whitespace()
                    .map(regex::escape)
                    .collect::<Vec<_>>()
                    .join(r"\s+")
            } else {
                regex::escape(t.trim())
            }
        })
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return None;
    }
    parts.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    parts.dedup();
    Some(format!("(?i:{})", parts.join("|")))
}

impl Lists {
    /// Compiles the rules. `path` names the config block in errors
    /// (`policy.dlp-filter.rules`).
    pub fn build(path: &str, rules: Vec<Rule>, marker: String) -> Result<Lists, String> {
        let mut specs = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            if r.name.trim().is_empty() {
                return Err(format!("`{path}[{i}]`: `name` must not be empty"));
            }
            if let Some(t) = r
                .terms
                .keywords
                .iter()
                .chain(&r.terms.phrases)
                .find(|t| t.trim().is_empty())
            {
                return Err(format!("`{path}.{}`: empty term `{t}`", r.name));
            }
            if let Some(p) = alternation(&r.terms.keywords, false) {
                specs.push(DetectorSpec::new(&r.name, p).check(whole_words).tag(i));
            }
            if let Some(p) = alternation(&r.terms.phrases, true) {
                specs.push(DetectorSpec::new(&r.name, p).check(whole_words).tag(i));
            }
            for p in &r.terms.patterns {
                regex::Regex::new(p)
                    .map_err(|e| format!("`{path}.{}`: invalid regex `{p}`: {e}", r.name))?;
                specs.push(DetectorSpec::new(&r.name, format!("(?i){p}")).tag(i));
            }
        }
        let scanner = Scanner::new(specs).map_err(|e| format!("`{path}`: {e}"))?;
        Ok(Lists {
            rules,
            scanner: Arc::new(scanner),
            marker,
        })
    }

    pub fn rule(&self, i: usize) -> Option<&Rule> {
        self.rules.get(i)
    }

    fn marker_for(&self, rule: &Rule) -> String {
        self.marker.replace("{name}", &rule.name)
    }

    /// Scans one text: records every match, and rewrites those of `redact` rules (and
    /// of `block` rules, so a blocked text never carries them on). Returns whether the
    /// text changed.
    pub fn scan(&self, text: &mut String, out: &mut Outcome) -> bool {
        let mut changed = false;
        let hits = scan::rewrite(&self.scanner, text, |det, _| {
            let rule = self.rules.get(det.tag)?;
            (rule.action != ListAction::Flag).then(|| {
                changed = true;
                self.marker_for(rule)
            })
        });
        for h in hits {
            if let Some(det) = self.scanner.detector(h.det) {
                if let Some(r) = self.rules.get(det.tag) {
                    out.add(det.tag, r);
                }
            }
        }
        changed
    }

    /// The decision for what a phase found. `reason` prefixes the reason code
    /// (`dlp` → `dlp_block`); `message` makes the block sentence from the rule.
    pub fn decide(
        &self,
        out: &Outcome,
        reason: &str,
        message: impl Fn(&Rule) -> String,
    ) -> Decision {
        let Some((action, i)) = out.worst else {
            return Decision::Allow;
        };
        let findings = out.findings();
        match action {
            ListAction::Flag => Decision::Flag {
                reason: format!("{reason}_flag"),
                score: None,
                findings,
            },
            ListAction::Redact => Decision::Redacted {
                reason: format!("{reason}_redact"),
                findings,
            },
            ListAction::Block => {
                let rule = self.rules.get(i);
                Decision::Block {
                    reason: format!("{reason}_block"),
                    message: rule
                        .and_then(|r| r.message.clone())
                        .or_else(|| rule.map(&message))
                        .unwrap_or_default(),
                    score: None,
                    findings,
                }
            }
        }
    }

    /// A stream filter that rewrites matches of `redact` and `block` rules as they flow.
    /// `None` when no rule rewrites.
    pub fn stream_filter(self: &Arc<Self>) -> Option<Box<dyn TextFilter>> {
        if self.rules.iter().all(|r| r.action == ListAction::Flag) {
            return None;
        }
        let lists = self.clone();
        Some(Box::new(ScanFilter::new(
            self.scanner.clone(),
            move |det: &scan::Detector, _: &str| {
                let rule = lists.rules.get(det.tag)?;
                (rule.action != ListAction::Flag).then(|| lists.marker_for(rule))
            },
        )))
    }
}

/// What dlp-filter and safety-filter share: their lists scan the texts of the phases
/// they apply to, and each turns what was found into its decision.
pub trait ListPolicy: Send + Sync {
    /// The policy's name in the chain.
    const NAME: &'static str;

    /// Mode, phases, lists.
    fn parts(&self) -> (Mode, ApplyTo, &Arc<Lists>);

    /// The decision on what the lists found; `output`: in the answer.
    fn decide(&self, out: &Outcome, output: bool) -> Decision;
}

impl<T: ListPolicy> Policy for T {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn mode(&self) -> Mode {
        self.parts().0
    }

    fn on_input(
        &self,
        _ctx: &RequestContext,
        req: &mut ChatRequest,
    ) -> Result<Decision, PolicyError> {
        let (_, apply_to, lists) = self.parts();
        if !apply_to.input() {
            return Ok(Decision::Allow);
        }
        let mut out = Outcome::default();
        walk::request_texts(req, &mut |t| lists.scan(t, &mut out));
        Ok(self.decide(&out, false))
    }

    fn on_output(
        &self,
        _ctx: &RequestContext,
        resp: &mut ChatResponse,
    ) -> Result<Decision, PolicyError> {
        let (_, apply_to, lists) = self.parts();
        if !apply_to.output() {
            return Ok(Decision::Allow);
        }
        let mut out = Outcome::default();
        walk::response_texts(resp, &mut |t| lists.scan(t, &mut out));
        Ok(self.decide(&out, true))
    }

    fn stream_filter(&self) -> Option<Box<dyn TextFilter>> {
        let (_, apply_to, lists) = self.parts();
        if !apply_to.output() {
            return None;
        }
        lists.stream_filter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str, action: ListAction, terms: Terms) -> Rule {
        Rule {
            name: name.into(),
            action,
            terms,
            message: None,
        }
    }

    fn kw(words: &[&str]) -> Terms {
        Terms {
            keywords: words.iter().map(|s| s.to_string()).collect(),
            ..Terms::default()
        }
    }

    fn lists() -> Lists {
        Lists::build(
            "policy.x.rules",
            vec![
                rule(
                    "codenames",
                    ListAction::Redact,
                    kw(&["Bluebird", "blue bird", "C++"]),
                ),
                rule(
                    "merger",
                    ListAction::Block,
                    Terms {
                        phrases: vec!["merger with  acme".into()],
                        patterns: vec![r"\bDEAL-\d{4}\b".into()],
                        ..Terms::default()
                    },
                ),
                rule(
                    "watch",
                    ListAction::Flag,
                    kw(&["competitor", "bomb", "bombing"]),
                ),
            ],
            "[REDACTED:{name}]".into(),
        )
        .unwrap()
    }

    fn scan(text: &str) -> (String, Outcome) {
        let mut t = text.to_string();
        let mut out = Outcome::default();
        lists().scan(&mut t, &mut out);
        (t, out)
    }

    #[test]
    fn keywords_match_whole_words_case_insensitively() {
        let (t, out) =
            scan("BLUEBIRD and bluebirds and Blue Bird, C++ and C++x, bombing, bombastic");
        assert_eq!(
            t,
            "[REDACTED:codenames] and bluebirds and [REDACTED:codenames], [REDACTED:codenames] and [REDACTED:codenames]x, bombing, bombastic"
        );
        assert_eq!(
            out.findings(),
            vec![Finding::new("codenames", 4), Finding::new("watch", 1)]
        );
    }

    #[test]
    fn phrases_allow_any_whitespace_and_regexes_ignore_case() {
        let (t, out) = scan("the Merger\nwith   ACME and deal-1234");
        assert!(t.contains("[REDACTED:merger]"), "{t}");
        assert_eq!(out.findings(), vec![Finding::new("merger", 2)]);
        let d = lists().decide(&out, "dlp", |r| format!("blocked by {}", r.name));
        let Decision::Block {
            reason, message, ..
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(reason, "dlp_block");
        assert_eq!(message, "blocked by merger");
    }

    #[test]
    fn the_most_severe_rule_decides() {
        let (_, out) = scan("our competitor uses bluebird");
        assert!(matches!(
            lists().decide(&out, "dlp", |_| String::new()),
            Decision::Redacted { .. }
        ));
        let (_, out) = scan("our competitor");
        assert!(matches!(
            lists().decide(&out, "dlp", |_| String::new()),
            Decision::Flag { .. }
        ));
        let (_, out) = scan("nothing here");
        assert_eq!(
            lists().decide(&out, "dlp", |_| String::new()),
            Decision::Allow
        );
    }

    #[test]
    fn streams_rewrite_like_whole_texts() {
        let l = Arc::new(lists());
        let text = "Bluebird: the merger with acme, deal-4321; competitor blue bird.";
        let (whole, _) = scan(text);
        let mut f = l.stream_filter().unwrap();
        let mut out = String::new();
        for c in text.chars() {
            out.push_str(&f.push(&c.to_string()));
        }
        out.push_str(&f.finish());
        assert_eq!(out, whole);
    }

    #[test]
    fn errors_name_the_rule() {
        let bad = Lists::build(
            "policy.dlp-filter.rules",
            vec![rule(
                "r",
                ListAction::Block,
                Terms {
                    patterns: vec!["(".into()],
                    ..Terms::default()
                },
            )],
            String::new(),
        );
        let e = bad.err().unwrap();
        assert!(
            e.starts_with("`policy.dlp-filter.rules.r`: invalid regex `(`"),
            "{e}"
        );
    }
}
