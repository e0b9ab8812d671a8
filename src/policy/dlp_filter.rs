//! `dlp-filter`: company-specific data loss prevention. Named rules of keywords, phrases
//! and regexes (project code names, customer lists, internal hostnames…), each with an
//! action: `block` the request or response, `redact` the match, or `flag` the event.
//! Matching rules: [`super::lists`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::lists::{ApplyTo, ListAction, ListPolicy, Lists, Outcome, Rule, Terms};
use super::{Decision, Mode};

pub const NAME: &str = "dlp-filter";

/// One rule of `policy.dlp-filter.rules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    /// Defaults to the policy's `action`.
    #[serde(default)]
    pub action: Option<ListAction>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub phrases: Vec<String>,
    #[serde(default)]
    pub patterns: Vec<String>,
    /// The sentence shown to the user when this rule blocks.
    #[serde(default)]
    pub message: Option<String>,
}

/// The `policy.dlp-filter` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlpSpec {
    #[serde(default)]
    pub mode: Mode,
    /// The action of rules that do not name one.
    #[serde(default = "default_action")]
    pub action: ListAction,
    #[serde(default)]
    pub apply_to: ApplyTo,
    /// What replaces a redacted match; `{name}` becomes the rule's name.
    #[serde(default = "default_marker")]
    pub redaction_marker: String,
    /// Required: a DLP filter is the company's own list of terms; without one it would
    /// silently do nothing (lint reports a chain entry without its block as E003).
    pub rules: Vec<RuleSpec>,
}

fn default_action() -> ListAction {
    ListAction::Block
}

fn default_marker() -> String {
    "[REDACTED]".to_string()
}

pub struct DlpFilter {
    mode: Mode,
    apply_to: ApplyTo,
    lists: Arc<Lists>,
}

impl DlpFilter {
    pub fn from_block(block: &serde_yaml::Value) -> Result<DlpFilter, String> {
        DlpFilter::new(super::parse_block(NAME, block)?)
    }

    pub fn new(spec: DlpSpec) -> Result<DlpFilter, String> {
        let path = format!("policy.{NAME}.rules");
        let mut rules = Vec::with_capacity(spec.rules.len());
        for (i, r) in spec.rules.into_iter().enumerate() {
            let terms = Terms {
                keywords: r.keywords,
                phrases: r.phrases,
                patterns: r.patterns,
            };
            if terms.is_empty() {
                return Err(format!(
                    "`{path}[{i}]` (`{}`): give it `keywords`, `phrases` or `patterns`",
                    r.name
                ));
            }
            if rules.iter().any(|x: &Rule| x.name == r.name) {
                return Err(format!("`{path}[{i}]`: duplicate rule name `{}`", r.name));
            }
            rules.push(Rule {
                name: r.name,
                action: r.action.unwrap_or(spec.action),
                terms,
                message: r.message,
            });
        }
        Ok(DlpFilter {
            mode: spec.mode,
            apply_to: spec.apply_to,
            lists: Arc::new(Lists::build(&path, rules, spec.redaction_marker)?),
        })
    }
}

impl ListPolicy for DlpFilter {
    const NAME: &'static str = NAME;

    fn parts(&self) -> (Mode, ApplyTo, &Arc<Lists>) {
        (self.mode, self.apply_to, &self.lists)
    }

    fn decide(&self, out: &Outcome, output: bool) -> Decision {
        self.lists.decide(out, "dlp", |rule| {
            if output {
                format!(
                    "The response was blocked because it contained information that may not be shared (rule `{}`).",
                    rule.name
                )
            } else {
                format!(
                    "Your request was blocked because it contains information that may not be shared (rule `{}`). Remove it and try again.",
                    rule.name
                )
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::{ChatRequest, Message, Role};
    use crate::policy::Finding;
    use crate::policy::{Policy, RequestContext};

    fn policy(yaml: &str) -> DlpFilter {
        DlpFilter::from_block(&serde_yaml::from_str(yaml).unwrap()).unwrap()
    }

    fn fixture() -> DlpFilter {
        policy(include_str!("../../testdata/policy/dlp-filter/policy.yaml"))
    }

    fn user(text: &str) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![Message::text(Role::User, text)],
            ..ChatRequest::default()
        }
    }

    fn run(p: &DlpFilter, text: &str) -> (Decision, String) {
        let mut req = user(text);
        let d = p.on_input(&RequestContext::default(), &mut req).unwrap();
        (d, req.messages[0].text_content())
    }

    #[test]
    fn fixture_rules_block_redact_and_flag() {
        let p = fixture();
        let (d, _) = run(&p, "Draft the press release for the Acme acquisition.");
        let Decision::Block {
            reason,
            message,
            findings,
            ..
        } = d
        else {
            panic!("{d:?}")
        };
        assert_eq!(reason, "dlp_block");
        assert_eq!(
            message,
            "Your request was blocked because it mentions an unannounced deal. Remove it and try again."
        );
        assert_eq!(findings, vec![Finding::new("deals", 1)]);

        let (d, text) = run(
            &p,
            "Status of Project Nightjar on build-db-07.corp.internal?",
        );
        assert!(matches!(d, Decision::Redacted { .. }), "{d:?}");
        assert_eq!(
            text,
            "Status of Project [REDACTED:codenames] on [REDACTED:hosts]?"
        );

        let (d, text) = run(&p, "Compare us with Initech.");
        assert!(matches!(d, Decision::Flag { .. }), "{d:?}");
        assert_eq!(text, "Compare us with Initech.");

        let (d, _) = run(&p, "Nightjars are birds; acquisitions happen.");
        assert_eq!(d, Decision::Allow);
    }

    #[test]
    fn default_block_message_names_the_rule() {
        let p = policy("rules: [{name: secrets, keywords: [hunter2]}]");
        let (d, _) = run(&p, "my password is hunter2");
        let Decision::Block { message, .. } = d else {
            panic!("{d:?}")
        };
        assert_eq!(
            message,
            "Your request was blocked because it contains information that may not be shared (rule `secrets`). Remove it and try again."
        );
    }

    #[test]
    fn apply_to_limits_the_phases() {
        let p = policy("apply_to: output\nrules: [{name: s, keywords: [hunter2]}]");
        assert_eq!(run(&p, "hunter2").0, Decision::Allow);
        assert!(p.stream_filter().is_some());
        let p = policy("apply_to: input\nrules: [{name: s, keywords: [hunter2]}]");
        assert!(p.stream_filter().is_none());
    }

    #[test]
    fn config_errors() {
        let err = |y: &str| {
            DlpFilter::from_block(&serde_yaml::from_str(y).unwrap())
                .err()
                .unwrap()
        };
        assert!(err("rules: [{name: a}]").contains("give it `keywords`"));
        assert!(
            err("rules: [{name: a, keywords: [x]}, {name: a, keywords: [y]}]")
                .contains("duplicate rule name `a`")
        );
        assert!(err("rules: [{name: a, keywrds: [x]}]").contains("unknown field `keywrds`"));
        assert!(err("action: deny").contains("unknown variant `deny`"));
    }
}
