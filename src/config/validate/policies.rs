//! The policy chain and the `policy.<name>` blocks. Every policy parses its own block
//! (`crate::policy::check_block`), so this module knows no policy's fields: it asks the
//! policy, and repairs and asks again so that every mistake in a block is reported.

use std::collections::HashMap;

use serde_yaml::{Mapping, Value};

use super::path::{self, Seg};
use super::{shape, suggest, Findings};
use crate::config::diagnostic::{code, Diagnostic};
use crate::config::schema::ConfigSpec;
use crate::policy;

/// What an invalid pattern is replaced with once reported, so the policy's own parse of
/// the block does not report it a second time.
const PATTERN_PLACEHOLDER: &str = "kt-lint-placeholder";

/// The policies kt knows and how each checks its block: `crate::policy` in the binary;
/// tests use policies of their own to reach cases no built-in policy has yet.
pub trait Registry {
    fn known(&self) -> &[&'static str];
    fn check_block(&self, name: &str, block: &Value) -> Result<(), String>;

    fn is_known(&self, name: &str) -> bool {
        self.known().contains(&name)
    }
}

/// The built-in policies.
pub struct Builtin;

impl Registry for Builtin {
    fn known(&self) -> &[&'static str] {
        policy::KNOWN
    }

    fn check_block(&self, name: &str, block: &Value) -> Result<(), String> {
        policy::check_block(name, block)
    }
}

pub fn check(spec: &ConfigSpec, out: &mut Findings) {
    check_with(&Builtin, spec, out);
}

pub fn check_with(reg: &dyn Registry, spec: &ConfigSpec, out: &mut Findings) {
    let chain = &spec.policies.chain;
    if chain.is_empty() && !out.is_touched("policies.chain") {
        out.push(
            Diagnostic::warning(
                code::EMPTY_CHAIN,
                "policies.chain",
                "`policies.chain` is empty: requests pass without any policy",
            )
            .with_suggestion(format!(
                "list the policies to run, in order; known policies: {}",
                reg.known().join(", ")
            )),
        );
    }
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, name) in chain.iter().enumerate() {
        let p = format!("policies.chain[{i}]");
        if out.is_touched(&p) {
            continue;
        }
        if !reg.is_known(name) {
            out.push(unknown_policy(reg, name, p));
        } else if let Some(j) = first.get(name.as_str()) {
            out.push(
                Diagnostic::warning(
                    code::DUPLICATE_CHAIN_ENTRY,
                    p,
                    format!("`{name}` is already in the chain at `policies.chain[{j}]`"),
                )
                .with_suggestion("remove the repeat: a policy runs once per request"),
            );
        } else {
            first.insert(name, i);
            if !spec.policy.contains_key(name) {
                if let Err(why) = reg.check_block(name, &Value::Mapping(Mapping::new())) {
                    out.push(
                        Diagnostic::error(
                            code::MISSING_POLICY_BLOCK,
                            p,
                            format!("policy `{name}` is in the chain but has no config block"),
                        )
                        .with_suggestion(format!(
                            "add a `policy.{name}` block ({}) or remove `{name}` from the chain",
                            strip_policy_path(&why)
                        )),
                    );
                }
            }
        }
    }
    for (name, block) in &spec.policy {
        let base = path::key("policy", name);
        if !reg.is_known(name) {
            out.push(unknown_policy(reg, name, base).at_key());
            continue;
        }
        check_block(reg, name, block, &base, out);
        if !chain.contains(name) {
            out.push_unless_touched(
                Diagnostic::warning(
                    code::UNUSED_POLICY_BLOCK,
                    &base,
                    format!(
                        "`policy.{name}` is configured but `{name}` is not in `policies.chain`"
                    ),
                )
                .with_suggestion(format!(
                    "add `{name}` to `policies.chain`, or delete the block: it has no effect"
                ))
                .at_key(),
            );
        }
    }
}

fn unknown_policy(reg: &dyn Registry, name: &str, p: String) -> Diagnostic {
    let mut d = Diagnostic::error(
        code::UNKNOWN_POLICY,
        p,
        format!("unknown policy kind `{name}`"),
    );
    d.suggestion = Some(suggest::with_choices(name, reg.known(), "known policies"));
    d
}

/// Reports every problem in one policy block.
fn check_block(reg: &dyn Registry, name: &str, block: &Value, base: &str, out: &mut Findings) {
    let mut block = block.clone();
    regexes(&mut block, base, out);
    let prefix = format!("policy.{name}");
    shape::repair_loop(&mut block, base, out, |b| {
        reg.check_block(name, b)
            .map_err(|msg| split_error(&prefix, &msg))
    });
}

/// Policies report errors as "`policy.<name>.<path>`: <message>": the path relative to
/// the block, and the message.
fn split_error(prefix: &str, msg: &str) -> (Vec<Seg>, String) {
    let parsed = msg
        .strip_prefix('`')
        .and_then(|m| m.split_once("`: "))
        .and_then(|(p, inner)| Some((p.strip_prefix(prefix)?, inner)));
    match parsed {
        Some((rel, inner)) => (path::parse(rel), inner.to_string()),
        None => (Vec::new(), msg.to_string()),
    }
}

fn strip_policy_path(msg: &str) -> &str {
    msg.strip_prefix('`')
        .and_then(|m| m.split_once("`: "))
        .map_or(msg, |(_, inner)| inner)
}

/// Compiles every pattern under `detect_patterns` (a list of regexes, of mappings with a
/// `pattern`/`regex`, or a mapping of name to regex).
fn regexes(block: &mut Value, base: &str, out: &mut Findings) {
    let list_path = path::key(base, "detect_patterns");
    let Some(patterns) = block.get_mut("detect_patterns") else {
        return;
    };
    let mut check = |s: &mut String, p: String| {
        if let Err(e) = regex::Regex::new(s) {
            out.push(
                Diagnostic::error(
                    code::INVALID_REGEX,
                    p,
                    format!("pattern `{s}` does not compile: {}", regex_reason(&e)),
                )
                .with_suggestion(
                    "patterns use Rust regex syntax: escape special characters with `\\`; \
                     look-around and backreferences are not supported",
                ),
            );
            *s = PATTERN_PLACEHOLDER.to_string();
        }
    };
    match patterns {
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let p = format!("{list_path}[{i}]");
                match item {
                    Value::String(s) => check(s, p),
                    Value::Mapping(m) => {
                        for key in ["pattern", "regex"] {
                            if let Some(Value::String(s)) = m.get_mut(key) {
                                check(s, path::key(&p, key));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Value::Mapping(m) => {
            for (k, v) in m.iter_mut() {
                if let (Some(k), Value::String(s)) = (k.as_str(), v) {
                    check(s, path::key(&list_path, k));
                }
            }
        }
        _ => {}
    }
}

/// The one-line reason of a regex error (its display spans several lines).
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().next().unwrap_or_default())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A policy with a required field and a nested block (no built-in policy needs a
    /// block yet).
    struct Scorer;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct ScorerSpec {
        threshold: f64,
        #[serde(default)]
        action: Option<crate::policy::Mode>,
        #[serde(default)]
        limits: Option<Limits>,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limits {
        max: u32,
    }

    impl Registry for Scorer {
        fn known(&self) -> &[&'static str] {
            &["quality-scorer", "audit-logger"]
        }

        fn check_block(&self, name: &str, block: &Value) -> Result<(), String> {
            match name {
                "quality-scorer" => policy::parse_block::<ScorerSpec>(name, block).map(|_| ()),
                _ => Ok(()),
            }
        }
    }

    fn run(yaml: &str) -> Vec<(String, String)> {
        let spec: ConfigSpec = serde_yaml::from_str(yaml).unwrap();
        let mut out = Findings::default();
        check_with(&Scorer, &spec, &mut out);
        out.diagnostics
            .into_iter()
            .map(|d| (d.code.to_string(), d.path))
            .collect()
    }

    #[test]
    fn a_policy_that_needs_a_block_and_has_none_is_e003() {
        assert_eq!(
            run("pack: {name: p}\npolicies:\n  chain: [audit-logger, quality-scorer, quality-scorr]\n"),
            [
                ("E003".to_string(), "policies.chain[1]".to_string()),
                ("E001".to_string(), "policies.chain[2]".to_string()),
            ]
        );
    }

    #[test]
    fn every_mistake_in_a_block_is_reported_at_its_path() {
        let found = run(
            "pack: {name: p}\npolicies:\n  chain: [quality-scorer]\npolicy:\n  quality-scorer:\n    action: enforced\n    limits: {max: -1, min: 2}\n    treshold: 0.5\n  audit-loger: {}\n  audit-logger: {}\n",
        );
        assert_eq!(
            found,
            [
                ("E001", "policy.audit-loger"),
                ("W002", "policy.audit-logger"),
                ("E008", "policy.quality-scorer.action"),
                ("E006", "policy.quality-scorer.limits.max"),
                ("E002", "policy.quality-scorer.limits.min"),
                ("E002", "policy.quality-scorer.treshold"),
                ("E007", "policy.quality-scorer.threshold"),
            ]
            .map(|(c, p)| (c.to_string(), p.to_string())),
        );
    }

    #[test]
    fn policy_errors_split_into_path_and_message() {
        let (segs, msg) = split_error(
            "policy.pii-detector",
            "`policy.pii-detector.redaction.marker_format`: unknown variant `x`",
        );
        assert_eq!(
            segs,
            vec![
                Seg::Key("redaction".into()),
                Seg::Key("marker_format".into())
            ]
        );
        assert_eq!(msg, "unknown variant `x`");
        let (segs, msg) = split_error("policy.a", "`policy.a`: missing field `b`");
        assert!(segs.is_empty());
        assert_eq!(msg, "missing field `b`");
        let (segs, msg) = split_error("policy.a", "something else");
        assert!(segs.is_empty());
        assert_eq!(msg, "something else");
    }

    #[test]
    fn bad_patterns_are_reported_and_replaced() {
        let mut block: Value = serde_yaml::from_str(
            "detect_patterns: ['\\d+', '(unclosed', {name: x, pattern: '[z-a]'}]",
        )
        .unwrap();
        let mut out = Findings::default();
        regexes(&mut block, "policy.pii-detector", &mut out);
        let paths: Vec<&str> = out.diagnostics.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "policy.pii-detector.detect_patterns[1]",
                "policy.pii-detector.detect_patterns[2].pattern"
            ]
        );
        assert!(
            out.diagnostics[0].message.contains("unclosed group"),
            "{:?}",
            out.diagnostics[0]
        );
        assert_eq!(block["detect_patterns"][1], PATTERN_PLACEHOLDER);
        assert_eq!(block["detect_patterns"][0], "\\d+");
    }
}
