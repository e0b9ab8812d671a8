//! The one validation pass shared by `kt gateway run` and `kt policy lint`: it collects
//! every finding instead of stopping at the first.

use serde_yaml::Value;

use super::diagnostic::Diagnostic;
use super::schema::ConfigSpec;

/// Parses YAML text; a syntax error becomes a diagnostic with its position.
pub fn parse_yaml(text: &str) -> Result<Value, Diagnostic> {
    serde_yaml::from_str::<Value>(text).map_err(|e| {
        let d = Diagnostic::error("E100", "<document>", format!("invalid YAML: {e}"))
            .with_suggestion("fix the YAML syntax at the position shown");
        match e.location() {
            Some(loc) => d.at(loc.line(), loc.column()),
            None => d,
        }
    })
}

/// Type-checks and validates a (possibly layered) config value.
/// Returns the typed spec when it type-checks, and every finding.
pub fn validate(value: &Value, _text: &str) -> (Option<ConfigSpec>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let spec = match serde_yaml::from_value::<ConfigSpec>(value.clone()) {
        Ok(spec) => spec,
        Err(e) => {
            diags.push(Diagnostic::error("E010", "<document>", e.to_string()));
            return (None, diags);
        }
    };
    let mut seen = std::collections::BTreeSet::new();
    for (i, t) in spec.providers.targets.iter().enumerate() {
        if !seen.insert(t.id.as_str()) {
            diags.push(
                Diagnostic::error(
                    "E011",
                    format!("providers.targets[{i}].id"),
                    format!("duplicate target id `{}`", t.id),
                )
                .with_suggestion("give every target a unique `id`"),
            );
        }
    }
    for (i, name) in spec.policies.chain.iter().enumerate() {
        if !crate::policy::is_known(name) {
            diags.push(
                Diagnostic::error(
                    "E001",
                    format!("policies.chain[{i}]"),
                    format!("unknown policy kind `{name}`"),
                )
                .with_suggestion(format!(
                    "known policies: {}",
                    crate::policy::KNOWN.join(", ")
                )),
            );
        }
    }
    for (name, block) in &spec.policy {
        if let Err(msg) = crate::policy::check_block(name, block) {
            diags.push(Diagnostic::error("E010", format!("policy.{name}"), msg));
        }
    }
    (Some(spec), diags)
}
