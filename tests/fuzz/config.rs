//! `kt::config::load_str` (what `kt gateway run` loads) and the lint pass
//! (`config::lint::lint_sources`, what `kt policy lint` runs, and its three renderers) on
//! mutated policy-config YAML, alone and layered over a valid base file.
//!
//! Properties: nothing panics; load and lint agree (a text loads exactly when lint finds
//! no error, and every error of the load is one lint reports); every finding's line lies
//! in the file; every rendering works and the JSON one serialises.

use std::path::{Path, PathBuf};

use kt::config::lint::{lint_sources, render};
use kt::config::validate::SourceFile;
use kt::config::{load_str, Config, ConfigError};
use kt::policy::chain::FailMode;
use kt::policy::PolicyChain;
use kt::router::breaker::BreakerConfig;
use kt::router::health::ProbeSettings;
use kt::router::state::RouterState;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::{harness, mutate};

const TARGET: &str = "config";

/// Keys, values and YAML syntax that the mutations insert.
const DICT: &[&str] = &[
    "pack:\n  name: x\n",
    "providers:\n",
    "  targets:\n",
    "    - id: t\n      provider: openai\n      model: m\n",
    "provider: bedrock",
    "provider: gemini",
    "provider: anthropic",
    "provider: openai:responses:gpt-4.1",
    "base_url: http://[::1]:99999/v1",
    "base_url: ''",
    "timeout_seconds: ",
    "weight: ",
    "strategy: weighted_round_robin",
    "strategy: fallback",
    "policies:\n  chain: [pii-detector, dlp-filter, prompt-injection]\n",
    "chain:",
    "policy:\n",
    "  pii-detector:\n    detect_patterns:\n      - {name: a, pattern: '(a+)+$'}\n",
    "  dlp-filter:\n    rules: [{name: r, patterns: ['[']}]\n",
    "  agent-firewall:\n    arguments: {f: {x: {type: string, pattern: '('}}}\n",
    "models:\n  aliases: {a: b, b: a}\n",
    "headers: {\"bad header\": \"v\\n\"}",
    "&a ",
    "*a",
    "<<: *a",
    "!!binary ",
    "!!str ",
    "!custom ",
    "? ",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "|\n",
    ">-\n",
    "\t",
    "'",
    "~",
];

/// A valid file the mutated text is layered over.
const BASE: &str = "pack: {name: base}\nproviders:\n  targets:\n    - {id: a, provider: mock, model: m}\npolicies:\n  chain: [audit-logger]\n";

fn check(input: &[u8]) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(input).into_owned();
    let path = Path::new("fuzz.yaml");
    let loaded = load_str(&text, path);
    let file = SourceFile {
        path: PathBuf::from("fuzz.yaml"),
        text: text.clone(),
    };
    let report = lint_sources(std::slice::from_ref(&file), false);
    match &loaded {
        Ok((config, _)) => {
            build_runtime(config)?;
            prop_assert!(
                report.is_valid(),
                "the config loads but lint reports errors: {:?}",
                report.errors().collect::<Vec<_>>()
            );
        }
        Err(ConfigError::Invalid { diagnostics, .. }) => {
            prop_assert!(
                !report.is_valid(),
                "lint passes a config that does not load: {diagnostics:?}"
            );
            for d in diagnostics {
                prop_assert!(
                    report.diagnostics.contains(d),
                    "load reports {d:?}, lint does not: {:?}",
                    report.diagnostics
                );
            }
        }
        Err(e @ ConfigError::Read { .. }) => prop_assert!(false, "load_str cannot read: {e}"),
    }
    // Every line break YAML knows (`\r\n`, `\r`, `\n`) ends at most one line.
    let lines = text.bytes().filter(|&b| b == b'\n' || b == b'\r').count() + 1;
    for d in &report.diagnostics {
        if let Some(line) = d.line {
            prop_assert!(
                (1..=lines).contains(&line),
                "finding at line {line} of a {lines}-line file: {d:?}"
            );
        }
    }
    render::text(&report);
    render::github(&report);
    serde_json::to_string(&render::json(&report))
        .map_err(|e| TestCaseError::fail(format!("lint JSON does not serialise: {e}")))?;
    let base = SourceFile {
        path: PathBuf::from("base.yaml"),
        text: BASE.to_string(),
    };
    let layered = lint_sources(&[base, file], true);
    render::text(&layered);
    Ok(())
}

/// What `kt gateway run` builds from a loaded config, at start and per request: the
/// policy chain, the router's targets with their breakers and health probes, and the
/// resolution of every alias and model.
fn build_runtime(config: &Config) -> Result<(), TestCaseError> {
    if let Err(e) = PolicyChain::build(config, FailMode::Block) {
        prop_assert!(false, "a config that loads cannot build its chain: {e}");
    }
    let router = RouterState::new();
    router.register(config);
    BreakerConfig::from_spec(config.spec.providers.circuit_breaker.as_ref());
    for t in &config.targets {
        router.target(t);
        ProbeSettings::of(t);
    }
    let models = config
        .aliases
        .keys()
        .chain(config.targets.iter().map(|t| &t.model));
    for model in models {
        // Unknown or dangling models are errors as values; only a panic matters here.
        let _ = kt::router::resolve(config, model);
    }
    kt::router::catalog(config);
    Ok(())
}

#[test]
fn corpus() {
    harness::replay(TARGET, |_, bytes| check(bytes));
}

#[test]
fn mutations() {
    let seeds = harness::corpus(TARGET)
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    harness::fuzz(TARGET, 1000, mutate::mixed(seeds, DICT), |input| {
        check(&input.0)
    });
}
