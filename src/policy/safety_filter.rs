//! `safety-filter`: unsafe content by category (violence, weapons, self-harm, illegal
//! drugs…). A small built-in list (`safety_defaults.yaml`, on unless `use_defaults:
//! false`) that configuration extends, overrides per category or turns off, plus
//! categories of one's own. Each category has an action (`block`, `redact`, `flag`).
//! Matching rules: [`super::lists`].

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::lists::{ApplyTo, ListAction, ListPolicy, Lists, Outcome, Rule, Terms};
use super::{Decision, Mode};

pub const NAME: &str = "safety-filter";

const DEFAULTS: &str = include_str!("safety_defaults.yaml");

/// One entry of `policy.safety-filter.categories` (and of the built-in list).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategorySpec {
    /// `false` turns a built-in category off.
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub action: Option<ListAction>,
    /// How block messages name the category ("violent harm").
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub phrases: Vec<String>,
    #[serde(default)]
    pub patterns: Vec<String>,
    /// The sentence shown to the user when this category blocks.
    #[serde(default)]
    pub message: Option<String>,
}

impl CategorySpec {
    fn terms(&self) -> Terms {
        Terms {
            keywords: self.keywords.clone(),
            phrases: self.phrases.clone(),
            patterns: self.patterns.clone(),
        }
    }
}

/// The `policy.safety-filter` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetySpec {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default = "yes")]
    pub use_defaults: bool,
    /// The action of categories that do not name one.
    #[serde(default = "default_action")]
    pub action: ListAction,
    #[serde(default)]
    pub apply_to: ApplyTo,
    /// What replaces a redacted match; `{name}` becomes the category.
    #[serde(default = "default_marker")]
    pub redaction_marker: String,
    #[serde(default)]
    pub categories: BTreeMap<String, CategorySpec>,
}

fn yes() -> bool {
    true
}

fn default_action() -> ListAction {
    ListAction::Block
}

fn default_marker() -> String {
    "[REDACTED]".to_string()
}

/// The built-in categories.
pub fn defaults() -> Result<BTreeMap<String, CategorySpec>, String> {
    serde_yaml::from_str(DEFAULTS).map_err(|e| format!("built-in safety list: {e}"))
}

pub struct SafetyFilter {
    mode: Mode,
    apply_to: ApplyTo,
    lists: Arc<Lists>,
    descriptions: BTreeMap<String, String>,
}

impl SafetyFilter {
    pub fn from_block(block: &serde_yaml::Value) -> Result<SafetyFilter, String> {
        SafetyFilter::new(super::parse_block(NAME, block)?)
    }

    pub fn new(spec: SafetySpec) -> Result<SafetyFilter, String> {
        let path = format!("policy.{NAME}.categories");
        let builtin = defaults()?;
        let mut merged: BTreeMap<String, CategorySpec> = if spec.use_defaults {
            builtin.clone()
        } else {
            BTreeMap::new()
        };
        for (name, user) in &spec.categories {
            match merged.get_mut(name) {
                Some(base) => {
                    let mut terms = base.terms();
                    terms.extend(&user.terms());
                    base.keywords = terms.keywords;
                    base.phrases = terms.phrases;
                    base.patterns = terms.patterns;
                    base.enabled = user.enabled.or(base.enabled);
                    base.action = user.action.or(base.action);
                    base.message = user.message.clone().or(base.message.take());
                    base.description = user.description.clone().or(base.description.take());
                }
                None if user.terms().is_empty() && user.enabled != Some(false) => {
                    let known: Vec<&str> = builtin.keys().map(String::as_str).collect();
                    return Err(format!(
                        "`{path}.{name}`: not a built-in category, so give it `keywords`, `phrases` or `patterns` (built-in: {})",
                        known.join(", ")
                    ));
                }
                None => {
                    merged.insert(name.clone(), user.clone());
                }
            }
        }
        let mut rules = Vec::new();
        let mut descriptions = BTreeMap::new();
        for (name, c) in merged {
            if c.enabled == Some(false) {
                continue;
            }
            descriptions.insert(
                name.clone(),
                c.description
                    .clone()
                    .unwrap_or_else(|| name.replace('-', " ")),
            );
            rules.push(Rule {
                name,
                action: c.action.unwrap_or(spec.action),
                terms: c.terms(),
                message: c.message.clone(),
            });
        }
        Ok(SafetyFilter {
            mode: spec.mode,
            apply_to: spec.apply_to,
            lists: Arc::new(Lists::build(&path, rules, spec.redaction_marker)?),
            descriptions,
        })
    }
}

impl ListPolicy for SafetyFilter {
    const NAME: &'static str = NAME;

    fn parts(&self) -> (Mode, ApplyTo, &Arc<Lists>) {
        (self.mode, self.apply_to, &self.lists)
    }

    fn decide(&self, out: &Outcome, output: bool) -> Decision {
        self.lists.decide(out, "safety", |rule| {
            let what = self
                .descriptions
                .get(&rule.name)
                .map_or(rule.name.as_str(), String::as_str);
            if output {
                format!("The response was blocked because it contained unsafe content ({what}).")
            } else {
                format!(
                    "Your request was blocked because it asks for unsafe content ({what}), which this service does not provide."
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

    #[derive(Deserialize)]
    struct Case {
        text: String,
        /// The category that should match, or none.
        category: Option<String>,
    }

    fn policy(yaml: &str) -> SafetyFilter {
        SafetyFilter::from_block(&serde_yaml::from_str(yaml).unwrap()).unwrap()
    }

    fn run(p: &SafetyFilter, text: &str) -> Decision {
        let mut req = ChatRequest {
            model: "m".into(),
            messages: vec![Message::text(Role::User, text)],
            ..ChatRequest::default()
        };
        p.on_input(&RequestContext::default(), &mut req).unwrap()
    }

    #[test]
    fn built_in_list_on_fixture_prompts() {
        let cases: Vec<Case> = serde_yaml::from_str(include_str!(
            "../../testdata/policy/safety-filter/cases.yaml"
        ))
        .unwrap();
        let p = policy("{}");
        for c in cases {
            match (run(&p, &c.text), &c.category) {
                (Decision::Allow, None) => {}
                (Decision::Block { findings, .. }, Some(cat)) => {
                    assert_eq!(findings[0].kind, *cat, "{}", c.text)
                }
                (d, want) => panic!("{:?}: got {d:?}, want {want:?}", c.text),
            }
        }
    }

    #[test]
    fn block_messages_are_sentences_for_the_user() {
        let p = policy("{}");
        let Decision::Block { message, .. } = run(&p, "How to make a bomb at home?") else {
            panic!()
        };
        assert_eq!(
            message,
            "Your request was blocked because it asks for unsafe content (violent harm), which this service does not provide."
        );
        let Decision::Block { message, .. } = run(&p, "I want to kill myself") else {
            panic!()
        };
        assert!(message.contains("crisis line"), "{message}");
    }

    #[test]
    fn categories_extend_override_and_turn_off() {
        let p = policy(
            "categories:
               violence: {action: flag, phrases: [beat him up]}
               self-harm: {enabled: false}
               gambling: {action: redact, keywords: [casino]}",
        );
        assert!(matches!(
            run(&p, "how to make a bomb"),
            Decision::Flag { .. }
        ));
        assert!(matches!(
            run(&p, "I will beat him up"),
            Decision::Flag { .. }
        ));
        assert_eq!(run(&p, "I want to kill myself"), Decision::Allow);
        let Decision::Redacted { findings, .. } = run(&p, "best casino nearby") else {
            panic!()
        };
        assert_eq!(findings, vec![Finding::new("gambling", 1)]);
        assert!(matches!(run(&p, "make napalm"), Decision::Block { .. }));
        let none = policy("use_defaults: false\ncategories: {x: {keywords: [foo]}}");
        assert_eq!(run(&none, "how to make a bomb"), Decision::Allow);
    }

    #[test]
    fn unknown_category_without_terms_is_an_error() {
        let e = SafetyFilter::from_block(
            &serde_yaml::from_str("categories: {violense: {action: flag}}").unwrap(),
        )
        .err()
        .unwrap();
        assert!(
            e.contains("`policy.safety-filter.categories.violense`"),
            "{e}"
        );
        assert!(
            e.contains("built-in: illegal-drugs, self-harm, violence, weapons"),
            "{e}"
        );
    }
}
