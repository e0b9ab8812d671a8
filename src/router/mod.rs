//! Routing: which targets may serve a request and in which order they are tried.
//!
//! This file resolves the requested model: `provider/model` pins, `models.aliases` (and
//! the default family aliases below), `models.deprecations` (routed to the successor),
//! then the targets whose `model` (or `id`) matches. The rest of routing lives beside it:
//! `strategy` (the order), `breaker` and `health` (availability), `retry`, `compress`
//! (context trimming), `metrics`, and `state` (the live state and the plan per request).
//! Nothing here does I/O; `gateway::routing` and `gateway::probe` do.

pub mod breaker;
pub mod compress;
pub mod health;
pub mod metrics;
pub mod retry;
pub mod state;
pub mod strategy;

use crate::config::schema::{ProviderKind, Strategy};
use crate::config::Config;
use crate::openai::ApiError;

pub use state::{Plan, RouterState, TargetState};

/// Family aliases that resolve to the latest stable version (seed 000) unless the
/// configuration's `models.aliases` says otherwise.
pub const DEFAULT_ALIASES: [(&str, &str); 4] = [
    ("claude-sonnet", "claude-4-sonnet"),
    ("claude-opus", "claude-4-opus"),
    ("gemini-pro", "gemini-2.5-pro"),
    ("gemini-flash", "gemini-2.5-flash"),
];

fn alias(config: &Config, name: &str) -> Option<String> {
    config.aliases.get(name).cloned().or_else(|| {
        DEFAULT_ALIASES
            .iter()
            .find(|(a, _)| *a == name)
            .map(|(_, m)| (*m).to_string())
    })
}

/// The outcome of resolving a requested model.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The model as the client asked for it.
    pub requested: String,
    /// The model after pins, aliases and deprecations.
    pub model: String,
    /// Set when the requested model is deprecated: its successor.
    pub deprecated_successor: Option<String>,
    /// Indexes into `config.targets`: the pool the strategy orders. The targets serving
    /// `model` come first, in config order. Under `fallback` and `weighted_round_robin`
    /// the other targets follow (a fallback to another model, an A/B split across
    /// models), unless the request pinned a provider or named a target.
    pub candidates: Vec<usize>,
    /// How many of the leading `candidates` serve `model` itself.
    pub serving: usize,
}

/// Resolves `requested` against `config`. Unknown models are a 404 in OpenAI shape.
pub fn resolve(config: &Config, requested: &str) -> Result<Resolution, ApiError> {
    let pinned = requested
        .split_once('/')
        .and_then(|(p, m)| ProviderKind::parse(p).map(|k| (k, m)));
    let (mut res, pin) = match pinned.and_then(|(k, m)| lookup(config, requested, m, Some(k))) {
        Some(r) => (r, true),
        // `openai/gpt-oss-120b` on Groq is a model name, not a pin.
        None => match lookup(config, requested, requested, None) {
            Some(r) => (r, false),
            None => return Err(ApiError::model_not_found(requested)),
        },
    };
    let names_target = config.targets.iter().any(|t| t.id == res.model);
    match config.strategy {
        Strategy::Single => res.candidates.truncate(1),
        Strategy::Fallback | Strategy::WeightedRoundRobin if !pin && !names_target => {
            let others: Vec<usize> = (0..config.targets.len())
                .filter(|i| !res.candidates.contains(i))
                .collect();
            res.candidates.extend(others);
        }
        Strategy::Fallback | Strategy::WeightedRoundRobin | Strategy::Latency | Strategy::Cost => {}
    }
    Ok(res)
}

fn lookup(
    config: &Config,
    requested: &str,
    name: &str,
    pin: Option<ProviderKind>,
) -> Option<Resolution> {
    let mut model = name.to_string();
    let mut deprecated_successor = None;
    // Aliases may point at a deprecated model and deprecations at an alias: follow both,
    // a bounded number of steps so a cycle cannot loop.
    for _ in 0..8 {
        if let Some(next) = alias(config, &model) {
            model = next;
        } else if let Some(next) = config.deprecations.get(&model) {
            deprecated_successor.get_or_insert_with(|| next.clone());
            model.clone_from(next);
        } else {
            break;
        }
    }
    let matches = |want: &str| -> Vec<usize> {
        config
            .targets
            .iter()
            .enumerate()
            .filter(|(_, t)| pin.is_none_or(|p| t.kind == p || t.provider.kind == p))
            .filter(|(_, t)| t.model == want || t.id == want)
            .map(|(i, _)| i)
            .collect()
    };
    let mut candidates = matches(&model);
    if candidates.is_empty() && model != name {
        // A target may serve the name itself (an alias a target overrides).
        candidates = matches(name);
        if !candidates.is_empty() {
            model = name.to_string();
            deprecated_successor = None;
        }
    }
    if candidates.is_empty() {
        return None;
    }
    Some(Resolution {
        requested: requested.to_string(),
        model,
        deprecated_successor,
        serving: candidates.len(),
        candidates,
    })
}

/// The model catalog (`GET /v1/models`): targets' models and aliases, once each.
pub fn catalog(config: &Config) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |id: &str, owner: &str| {
        if !out.iter().any(|(i, _)| i == id) {
            out.push((id.to_string(), owner.to_string()));
        }
    };
    for t in &config.targets {
        push(&t.model, t.kind.as_str());
    }
    for (alias, target) in &config.aliases {
        let owner = config
            .targets
            .iter()
            .find(|t| &t.model == target)
            .map_or("keeptrusts", |t| t.kind.as_str());
        push(alias, owner);
    }
    // Default family aliases, where a target serves what they point at.
    for (alias, model) in DEFAULT_ALIASES {
        if config.aliases.contains_key(alias) {
            continue;
        }
        if let Some(t) = config.targets.iter().find(|t| t.model == model) {
            push(alias, t.kind.as_str());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn config(yaml: &str) -> Config {
        load_str(yaml, std::path::Path::new("t.yaml")).unwrap().0
    }

    const YAML: &str = "pack: {name: t}
providers:
  strategy: fallback
  targets:
    - {id: a, provider: openai, model: gpt-4o, base_url: 'http://a/v1'}
    - {id: b, provider: groq, model: gpt-4o}
    - {id: c, provider: openai, model: gpt-4o-mini, base_url: 'http://c/v1'}
models:
  aliases: {fast: gpt-4o-mini}
  deprecations: {gpt-4: gpt-4o}
";

    fn with_strategy(strategy: &str) -> Config {
        config(&YAML.replace("strategy: fallback", &format!("strategy: {strategy}")))
    }

    #[test]
    fn resolves_names_pins_aliases_and_deprecations() {
        let c = with_strategy("latency");
        let r = resolve(&c, "gpt-4o").unwrap();
        assert_eq!((r.candidates, r.serving), (vec![0, 1], 2));
        assert_eq!(resolve(&c, "groq/gpt-4o").unwrap().candidates, vec![1]);
        assert_eq!(resolve(&c, "openai/gpt-4o").unwrap().candidates, vec![0]);
        assert_eq!(resolve(&c, "fast").unwrap().candidates, vec![2]);
        let r = resolve(&c, "gpt-4").unwrap();
        assert_eq!(r.deprecated_successor.as_deref(), Some("gpt-4o"));
        assert_eq!(r.model, "gpt-4o");
        assert_eq!(r.candidates, vec![0, 1]);
        let e = resolve(&c, "nope").unwrap_err();
        assert_eq!(e.status, 404);
        assert_eq!(e.body.message, "Model 'nope' not found in catalog");
        let e = resolve(&c, "anthropic/gpt-4o").unwrap_err();
        assert_eq!(
            e.body.message,
            "Model 'anthropic/gpt-4o' not found in catalog"
        );
        assert_eq!(with_strategy("single").targets.len(), 3);
        assert_eq!(
            resolve(&with_strategy("single"), "gpt-4o")
                .unwrap()
                .candidates,
            vec![0]
        );
    }

    #[test]
    fn fallback_and_weighted_widen_to_other_models_unless_pinned() {
        for s in ["fallback", "weighted_round_robin"] {
            let c = with_strategy(s);
            let r = resolve(&c, "gpt-4o").unwrap();
            assert_eq!((r.candidates, r.serving), (vec![0, 1, 2], 2), "{s}");
            assert_eq!(resolve(&c, "fast").unwrap().candidates, vec![2, 0, 1]);
            assert_eq!(resolve(&c, "openai/gpt-4o").unwrap().candidates, vec![0]);
            // Naming a target asks for that target.
            assert_eq!(resolve(&c, "b").unwrap().candidates, vec![1]);
        }
        for s in ["latency", "cost"] {
            assert_eq!(
                resolve(&with_strategy(s), "gpt-4o").unwrap().candidates,
                vec![0, 1]
            );
        }
    }

    #[test]
    fn default_family_aliases_apply_unless_overridden() {
        let yaml = "pack: {name: t}
providers:
  strategy: latency
  targets:
    - {id: s, provider: anthropic, model: claude-4-sonnet}
    - {id: f, provider: gemini, model: gemini-2.5-flash}
    - {id: o, provider: openai-compatible, model: my-opus, base_url: 'http://o/v1'}
    - {id: x, provider: groq, model: openai/gpt-oss-120b}
models:
  aliases: {claude-opus: my-opus}
";
        let c = config(yaml);
        let r = resolve(&c, "claude-sonnet").unwrap();
        assert_eq!(
            (r.model.as_str(), r.candidates.as_slice()),
            ("claude-4-sonnet", &[0][..])
        );
        assert_eq!(
            resolve(&c, "anthropic/claude-sonnet").unwrap().candidates,
            vec![0]
        );
        assert_eq!(resolve(&c, "gemini-flash").unwrap().candidates, vec![1]);
        assert_eq!(resolve(&c, "claude-opus").unwrap().candidates, vec![2]);
        assert_eq!(resolve(&c, "gemini-pro").unwrap_err().status, 404);
        assert_eq!(
            resolve(&c, "openai/gpt-oss-120b").unwrap().candidates,
            vec![3]
        );
        let ids: Vec<String> = catalog(&c).into_iter().map(|(i, _)| i).collect();
        assert_eq!(
            ids,
            [
                "claude-4-sonnet",
                "gemini-2.5-flash",
                "my-opus",
                "openai/gpt-oss-120b",
                "claude-opus",
                "claude-sonnet",
                "gemini-flash"
            ]
        );
    }

    #[test]
    fn catalog_lists_models_and_aliases_once() {
        let c = config(YAML);
        let ids: Vec<String> = catalog(&c).into_iter().map(|(i, _)| i).collect();
        assert_eq!(ids, ["gpt-4o", "gpt-4o-mini", "fast"]);
    }
}
