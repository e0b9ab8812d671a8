//! `pii-detector`: finds personal data and secrets in requests, responses and streams,
//! and redacts them (`action: redact`, the default) or blocks (`action: block`).
//!
//! Detection is validated, not bare regexes: Luhn and brand prefixes for cards, mod-97
//! for IBANs, area rules for SSNs, address ranges for IPs, decodable JWTs, the `80840`
//! Luhn for NPIs. `healthcare_mode` adds medical record numbers, NPIs and insurance IDs;
//! `pci_mode` takes any Luhn-valid card number, adds card security codes and expiry
//! dates, and never shows more than the last four digits of a card. `detect_patterns`
//! adds named regexes. `apply_to` limits it to requests or to responses and streams.
//! Findings are counted by kind; raw values are never kept.

pub(crate) mod builtin;
mod checks;
mod marker;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::lists::ApplyTo;
use super::scan::filter::ScanFilter;
use super::scan::{self, walk, DetectorSpec, Scanner};
use super::{Decision, Finding, Mode, Policy, PolicyError, RequestContext, TextFilter};
use crate::openai::{ChatRequest, ChatResponse};
use marker::{MarkerConfig, Markers, RedactionSpec};

pub const NAME: &str = "pii-detector";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    Redact,
    Block,
}

/// A named custom regex.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternSpec {
    pub name: String,
    pub pattern: String,
}

/// The `policy.pii-detector` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiSpec {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub action: Action,
    /// Which side it reads: `input` (what is sent upstream), `output` (answers and
    /// streams) or `both` (the default).
    #[serde(default)]
    pub apply_to: ApplyTo,
    #[serde(default)]
    pub healthcare_mode: bool,
    #[serde(default)]
    pub pci_mode: bool,
    #[serde(default)]
    pub detect_patterns: Vec<PatternSpec>,
    #[serde(default)]
    pub redaction: RedactionSpec,
}

pub struct PiiDetector {
    mode: Mode,
    action: Action,
    apply_to: ApplyTo,
    scanner: Arc<Scanner>,
    markers: Arc<MarkerConfig>,
}

impl PiiDetector {
    pub fn from_block(block: &serde_yaml::Value) -> Result<PiiDetector, String> {
        PiiDetector::new(super::parse_block(NAME, block)?)
    }

    pub fn new(spec: PiiSpec) -> Result<PiiDetector, String> {
        let mut detectors = builtin::detectors(spec.healthcare_mode, spec.pci_mode);
        for (i, p) in spec.detect_patterns.iter().enumerate() {
            let path = format!("`policy.{NAME}.detect_patterns[{i}]`");
            if p.name.trim().is_empty() {
                return Err(format!("{path}: `name` must not be empty"));
            }
            if builtin::kind(&p.name).is_some() {
                return Err(format!(
                    "{path}: `{}` is a built-in detector; give the pattern its own name",
                    p.name
                ));
            }
            if spec.detect_patterns[..i].iter().any(|q| q.name == p.name) {
                return Err(format!("{path}: duplicate name `{}`", p.name));
            }
            regex::Regex::new(&p.pattern)
                .map_err(|e| format!("{path}: invalid regex `{}`: {e}", p.pattern))?;
            detectors.push(DetectorSpec::new(&p.name, &p.pattern));
        }
        let known = |k: &str| detectors.iter().any(|d| d.kind == k);
        for k in spec.redaction.custom_markers.keys() {
            if !known(k) {
                let mut kinds: Vec<&str> = detectors.iter().map(|d| d.kind.as_str()).collect();
                kinds.dedup();
                return Err(format!(
                    "`policy.{NAME}.redaction.custom_markers`: unknown kind `{k}` (known: {})",
                    kinds.join(", ")
                ));
            }
        }
        if spec.redaction.include_metadata && spec.redaction.preserve_length {
            return Err(format!(
                "`policy.{NAME}.redaction`: `include_metadata` and `preserve_length` cannot both be true (a numbered marker cannot keep the value's length)"
            ));
        }
        let scanner = Scanner::new(detectors).map_err(|e| format!("`policy.{NAME}`: {e}"))?;
        Ok(PiiDetector {
            mode: spec.mode,
            action: spec.action,
            apply_to: spec.apply_to,
            scanner: Arc::new(scanner),
            markers: Arc::new(MarkerConfig {
                spec: spec.redaction,
                pci: spec.pci_mode,
            }),
        })
    }

    /// Scans (and for `redact`, rewrites) one text; counts what it found.
    fn scan_text(&self, text: &mut String, markers: &mut Markers, counts: &mut Counts) -> bool {
        let redact = self.action == Action::Redact;
        let hits = scan::rewrite(&self.scanner, text, |det, value| {
            redact.then(|| markers.marker(&det.kind, value))
        });
        for h in &hits {
            if let Some(d) = self.scanner.detector(h.det) {
                counts.add(&d.kind);
            }
        }
        redact && !hits.is_empty()
    }

    fn decide(&self, counts: Counts, output: bool) -> Decision {
        if counts.is_empty() {
            return Decision::Allow;
        }
        let findings = counts.findings();
        match self.action {
            Action::Redact => Decision::Redacted {
                reason: "pii_redacted".to_string(),
                findings,
            },
            Action::Block => Decision::Block {
                reason: "pii_detected".to_string(),
                message: block_message(&findings, output),
                score: None,
                findings,
            },
        }
    }
}

/// Findings by kind, in kind order.
#[derive(Default)]
struct Counts(BTreeMap<String, u32>);

impl Counts {
    fn add(&mut self, kind: &str) {
        *self.0.entry(kind.to_string()).or_default() += 1;
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn findings(&self) -> Vec<Finding> {
        self.0
            .iter()
            .map(|(k, n)| Finding::new(k.clone(), *n))
            .collect()
    }
}

/// "Your request was blocked because it contains sensitive data: an email address and a
/// payment card number. Remove it and try again."
fn block_message(findings: &[Finding], output: bool) -> String {
    let mut what: Vec<String> = Vec::new();
    for f in findings {
        let d = builtin::kind(&f.kind).map_or_else(
            || format!("data matching `{}`", f.kind),
            |k| k.description.to_string(),
        );
        if !what.contains(&d) {
            what.push(d);
        }
    }
    let list = match what.as_slice() {
        [] => "personal data".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    if output {
        format!("The response was blocked because it contained sensitive data: {list}.")
    } else {
        format!("Your request was blocked because it contains sensitive data: {list}. Remove it and try again.")
    }
}

impl Policy for PiiDetector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn mode(&self) -> Mode {
        self.mode
    }

    fn on_input(
        &self,
        _ctx: &RequestContext,
        req: &mut ChatRequest,
    ) -> Result<Decision, PolicyError> {
        if !self.apply_to.input() {
            return Ok(Decision::Allow);
        }
        let mut markers = Markers::new(self.markers.clone());
        let mut counts = Counts::default();
        walk::request_texts(req, &mut |t| self.scan_text(t, &mut markers, &mut counts));
        Ok(self.decide(counts, false))
    }

    fn on_output(
        &self,
        _ctx: &RequestContext,
        resp: &mut ChatResponse,
    ) -> Result<Decision, PolicyError> {
        if !self.apply_to.output() {
            return Ok(Decision::Allow);
        }
        let mut markers = Markers::new(self.markers.clone());
        let mut counts = Counts::default();
        walk::response_texts(resp, &mut |t| self.scan_text(t, &mut markers, &mut counts));
        Ok(self.decide(counts, true))
    }

    /// Streams are always redacted as they flow, also under `action: block`: the block
    /// comes at the end of the stream, and by then no raw value may have reached the
    /// client.
    fn stream_filter(&self) -> Option<Box<dyn TextFilter>> {
        if !self.apply_to.output() {
            return None;
        }
        let mut markers = Markers::new(self.markers.clone());
        Some(Box::new(ScanFilter::new(
            self.scanner.clone(),
            move |det: &scan::Detector, value: &str| Some(markers.marker(&det.kind, value)),
        )))
    }
}

#[cfg(test)]
mod tests;
