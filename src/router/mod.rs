//! Model resolution: which targets of a configuration can serve a requested model.
//! `provider/model` pins, `models.aliases`, `models.deprecations` (routed to the
//! successor), then the targets whose `model` (or `id`) matches, in config order.

use crate::config::schema::{ProviderKind, Strategy};
use crate::config::Config;
use crate::openai::ApiError;

/// The outcome of resolving a requested model.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The model as the client asked for it.
    pub requested: String,
    /// The model after pins, aliases and deprecations.
    pub model: String,
    /// Set when the requested model is deprecated: its successor.
    pub deprecated_successor: Option<String>,
    /// Indexes into `config.targets`, in the order they should be tried.
    pub candidates: Vec<usize>,
}

/// Resolves `requested` against `config`. Unknown models are a 404 in OpenAI shape.
pub fn resolve(config: &Config, requested: &str) -> Result<Resolution, ApiError> {
    let (pin, name) = match requested.split_once('/') {
        Some((p, m)) if ProviderKind::parse(p).is_some() => (ProviderKind::parse(p), m),
        _ => (None, requested),
    };
    let mut model = name.to_string();
    let mut deprecated_successor = None;
    // Aliases may point at a deprecated model and deprecations at an alias: follow both,
    // a bounded number of steps so a cycle cannot loop.
    for _ in 0..8 {
        if let Some(next) = config.aliases.get(&model) {
            model.clone_from(next);
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
    if candidates.is_empty() && model != requested {
        candidates = matches(requested);
    }
    if candidates.is_empty() {
        return Err(ApiError::model_not_found(requested));
    }
    if config.strategy == Strategy::Single {
        candidates.truncate(1);
    }
    Ok(Resolution {
        requested: requested.to_string(),
        model,
        deprecated_successor,
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

    #[test]
    fn resolves_names_pins_aliases_and_deprecations() {
        let c = config(YAML);
        assert_eq!(resolve(&c, "gpt-4o").unwrap().candidates, vec![0, 1]);
        assert_eq!(resolve(&c, "groq/gpt-4o").unwrap().candidates, vec![1]);
        assert_eq!(resolve(&c, "fast").unwrap().candidates, vec![2]);
        let r = resolve(&c, "gpt-4").unwrap();
        assert_eq!(r.deprecated_successor.as_deref(), Some("gpt-4o"));
        assert_eq!(r.candidates, vec![0, 1]);
        let e = resolve(&c, "nope").unwrap_err();
        assert_eq!(e.status, 404);
        assert_eq!(e.body.message, "Model 'nope' not found in catalog");
    }

    #[test]
    fn catalog_lists_models_and_aliases_once() {
        let c = config(YAML);
        let ids: Vec<String> = catalog(&c).into_iter().map(|(i, _)| i).collect();
        assert_eq!(ids, ["gpt-4o", "gpt-4o-mini", "fast"]);
    }
}
