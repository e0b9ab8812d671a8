//! From evidence to a score.
//!
//! Each matched pattern has a weight `w` in (0, 1]. Within a kind, the strongest pattern
//! counts fully and the others at half weight (patterns of one kind overlap); the kinds
//! then combine as independent evidence: `score = 1 - Π(1 - p_kind)`. Disguises
//! (homoglyphs, zero-width characters, encodings…) add [`OBFUSCATION_WEIGHT`] when they
//! hid a signal. Text that talks *about* attacks (a security question, a paper) has each
//! kind damped by [`DISCUSSION_DAMPING`], unless the signals came out of a hidden payload.
//! Instructions addressed to the AI count half outside tool results, where they are the
//! hallmark of indirect injection.

use std::collections::{BTreeMap, BTreeSet};

use super::decode::Encoding;
use super::normalize::Obfuscation;
use super::signals::Kind;
use super::ScanRole;
use crate::policy::Finding;

/// Added once when a disguise hid at least one signal.
pub const OBFUSCATION_WEIGHT: f64 = 0.3;
/// Invisible tag characters smuggling text, even with no other signal.
pub const HIDDEN_TEXT_WEIGHT: f64 = 0.5;
/// Multiplier for the signals of text that discusses attacks.
pub const DISCUSSION_DAMPING: f64 = 0.35;
/// Multiplier for AI-addressed instructions outside tool results.
pub const OUTSIDE_TOOL_FACTOR: f64 = 0.5;

/// What was found in one text: the (kind, weight) of every distinct pattern matched, keyed
/// by catalogue and index so a pattern found in two views counts once.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub matched: BTreeMap<(u8, usize), (Kind, f64)>,
    pub obfuscation: Obfuscation,
    pub encodings: BTreeSet<Encoding>,
    pub discussion: bool,
    pub hidden_text: bool,
}

impl Evidence {
    /// Takes in what a payload revealed; signals inside it are as good as signals here.
    pub fn absorb(&mut self, sub: Evidence, encoding: Option<Encoding>) {
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

/// The verdict on a text or a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub score: f64,
    /// The kind that weighed most (the reason code), if anything was found.
    pub top: Option<Kind>,
    pub findings: Vec<Finding>,
}

impl Analysis {
    pub fn none() -> Analysis {
        Analysis {
            score: 0.0,
            top: None,
            findings: Vec::new(),
        }
    }
}

/// Scores the evidence of one text of `role`.
pub fn score(ev: &Evidence, role: ScanRole) -> Analysis {
    let mut weights: BTreeMap<Kind, Vec<f64>> = BTreeMap::new();
    for &(kind, weight) in ev.matched.values() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(signals: &[(Kind, f64)]) -> Evidence {
        Evidence {
            matched: signals
                .iter()
                .enumerate()
                .map(|(i, s)| ((0, i), *s))
                .collect(),
            ..Evidence::default()
        }
    }

    #[test]
    fn kinds_combine_as_independent_evidence_patterns_of_a_kind_do_not() {
        let a = score(&ev(&[(Kind::InstructionOverride, 0.5)]), ScanRole::User);
        assert!((a.score - 0.5).abs() < 1e-9);
        let two_kinds = score(
            &ev(&[
                (Kind::InstructionOverride, 0.5),
                (Kind::PromptExtraction, 0.5),
            ]),
            ScanRole::User,
        );
        assert!((two_kinds.score - 0.75).abs() < 1e-9);
        let one_kind = score(
            &ev(&[
                (Kind::InstructionOverride, 0.5),
                (Kind::InstructionOverride, 0.5),
            ]),
            ScanRole::User,
        );
        assert!((one_kind.score - 0.625).abs() < 1e-9);
        assert_eq!(
            one_kind.findings,
            vec![Finding::new("instruction_override", 2)]
        );
    }

    #[test]
    fn discussion_damps_and_tool_signals_weigh_more_in_tool_results() {
        let mut e = ev(&[(Kind::InstructionOverride, 0.8)]);
        e.discussion = true;
        assert!((score(&e, ScanRole::User).score - 0.8 * DISCUSSION_DAMPING).abs() < 1e-9);
        e.encodings.insert(Encoding::Base64);
        assert!(score(&e, ScanRole::User).score > 0.8);
        let t = ev(&[(Kind::ToolInjection, 0.6)]);
        assert!((score(&t, ScanRole::Tool).score - 0.6).abs() < 1e-9);
        assert!((score(&t, ScanRole::User).score - 0.3).abs() < 1e-9);
    }

    #[test]
    fn hidden_text_alone_scores_and_combine_takes_the_highest() {
        let e = Evidence {
            hidden_text: true,
            ..Evidence::default()
        };
        let a = score(&e, ScanRole::User);
        assert!((a.score - HIDDEN_TEXT_WEIGHT).abs() < 1e-9);
        let low = score(&ev(&[(Kind::PromptExtraction, 0.2)]), ScanRole::User);
        let c = combine([a.clone(), low]);
        assert_eq!(c.score, a.score);
        assert_eq!(c.findings, vec![Finding::new("prompt_extraction", 1)]);
    }
}
