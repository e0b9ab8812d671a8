//! Tests of the whole pass: structure, rules, policies and positions together.

use super::*;

fn check(text: &str) -> Vec<(String, String, usize, usize)> {
    let layers = check_layers(&[SourceFile {
        path: PathBuf::from("t.yaml"),
        text: text.to_string(),
    }]);
    layers
        .into_iter()
        .flat_map(|l| l.diagnostics)
        .map(|d| {
            (
                d.code.to_string(),
                d.path,
                d.line.unwrap_or(0),
                d.column.unwrap_or(0),
            )
        })
        .collect()
}

fn row(code: &str, path: &str, line: usize, column: usize) -> (String, String, usize, usize) {
    (code.to_string(), path.to_string(), line, column)
}

#[test]
fn the_sandbox_is_clean() {
    assert_eq!(check(crate::config::sandbox::SANDBOX_YAML), vec![]);
}

#[test]
fn several_mistakes_are_all_reported_each_at_its_line() {
    let yaml = "\
pack:
  name: multi
providers:
  strategy: fallbak
  targets:
    - id: primary
      provider: openia
      model: gpt-4o
      base_url: htp:/api.openai.com
      timeout_seconds: 30s
    - id: primary
      provider: openai
      model: gpt-4o-mini
      weight: -1
      secret_key_ref:
        env: KT_TEST_SURELY_UNSET_SECRET
models:
  aliases:
    fast: gpt-4o-mni
policies:
  chain:
    - audit-loger
policy:
  audit-logger:
    retension_days: 30
";
    let mut found = check(yaml);
    found.sort_by_key(|r| (r.2, r.3));
    assert_eq!(
        found,
        vec![
            row("E008", "providers.strategy", 4, 13),
            row("E008", "providers.targets[0].provider", 7, 17),
            row("E010", "providers.targets[0].base_url", 9, 17),
            row("E011", "providers.targets[0].timeout_seconds", 10, 24),
            row("E009", "providers.targets[1].id", 11, 11),
            row("E012", "providers.targets[1].weight", 14, 15),
            row("W001", "providers.targets[1].secret_key_ref.env", 16, 14),
            row("E014", "models.aliases.fast", 19, 11),
            row("E001", "policies.chain[0]", 22, 7),
            row("W002", "policy.audit-logger", 24, 3),
            row("E002", "policy.audit-logger.retension_days", 25, 5),
        ]
    );
}

#[test]
fn suggestions_name_the_likely_fix() {
    let layers = check_layers(&[SourceFile {
        path: PathBuf::from("t.yaml"),
        text: "pack: {nmae: x, name: y}\nproviders:\n  strategy: fallbak\n  targets: [{id: a, provider: openia, model: m}]\npolicies: {chain: [audit-loger]}\n".to_string(),
    }]);
    let help: Vec<String> = layers
        .into_iter()
        .flat_map(|l| l.diagnostics)
        .filter_map(|d| d.suggestion)
        .collect();
    assert!(help[2].starts_with("did you mean `openai`?"), "{help:?}");
    assert!(
        help[0].starts_with("did you mean `name`? valid keys: name, version"),
        "{help:?}"
    );
    assert!(help[1].starts_with("did you mean `fallback`?"), "{help:?}");
    assert!(
        help[3].starts_with("did you mean `audit-logger`?"),
        "{help:?}"
    );
}

#[test]
fn missing_and_mistyped_fields() {
    let mut found = check("pack:\n  version: 1\nproviders:\n  targets:\n    - id: a\n      provider: mock\n    - just-a-string\n    - {id: c, provider: azure-openai, model: m, max_messages: 0}\npolicies: {chain: []}\n");
    found.sort_by_key(|r| (r.2, r.3));
    assert_eq!(
        found,
        vec![
            row("E007", "pack.name", 1, 1),
            row("E006", "pack.version", 2, 12),
            row("E007", "providers.targets[0].model", 5, 7),
            row("E006", "providers.targets[1]", 7, 7),
            row("E007", "providers.targets[2].base_url", 8, 7),
            row("E011", "providers.targets[2].max_messages", 8, 63),
            row("W003", "policies.chain", 9, 12),
        ]
    );
}

#[test]
fn strategies_weights_and_counts() {
    let found = check("pack: {name: p}\nproviders:\n  strategy: weighted_round_robin\n  targets:\n    - {id: a, provider: mock, model: m, weight: 0}\npolicies: {chain: [audit-logger]}\n");
    assert_eq!(
        found,
        vec![
            row("E015", "providers.strategy", 3, 13),
            row("E012", "providers.targets", 4, 3),
        ]
    );
    let found = check("pack: {name: p}\nproviders: {}\npolicies: {chain: [audit-logger]}\n");
    assert_eq!(found, vec![row("E015", "providers.targets", 2, 1)]);
}

#[test]
fn urls_headers_and_numbers() {
    let found = check(
        "pack: {name: p}
providers:
  targets:
    - id: a
      provider: openai
      model: m
      base_url: ftp://x
      api_key_header: 'bad header'
      headers: {'X Team': a, X-Ok: \"line\\nbreak\"}
      stream_timeout_seconds: 0
      pricing: {prompt: -1, completion: 1}
      health_probe: {path: health, interval_seconds: -5}
policies: {chain: [audit-logger]}
gateway: {max_body_bytes: 0, websocket: {idle_timeout_seconds: 0}}
",
    );
    let codes: Vec<(&str, &str)> = found.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(
        codes,
        vec![
            ("E010", "providers.targets[0].base_url"),
            ("E016", "providers.targets[0].api_key_header"),
            ("E016", "providers.targets[0].headers.X Team"),
            ("E016", "providers.targets[0].headers.X-Ok"),
            ("E011", "providers.targets[0].stream_timeout_seconds"),
            ("E011", "providers.targets[0].pricing.prompt"),
            ("E010", "providers.targets[0].health_probe.path"),
            ("E011", "providers.targets[0].health_probe.interval_seconds"),
            ("E011", "gateway.max_body_bytes"),
            ("E011", "gateway.websocket.idle_timeout_seconds"),
        ]
    );
}

/// Found by the fuzz target `config` (testdata/fuzz/config/crash-huge-timeout.yaml):
/// `timeout_seconds: 18446744073709551615` passed validation and then panicked turning
/// into a `Duration` when the gateway loaded the config.
#[test]
fn durations_past_a_year_are_errors() {
    let found = check(
        "pack: {name: p}
providers:
  targets:
    - {id: a, provider: mock, model: m, timeout_seconds: 18446744073709551615,
       stream_timeout_seconds: 31536000, health_probe: {interval_seconds: 1e300}}
policies: {chain: [audit-logger]}
",
    );
    let codes: Vec<(&str, &str)> = found.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(
        codes,
        vec![
            ("E011", "providers.targets[0].timeout_seconds"),
            ("E011", "providers.targets[0].health_probe.interval_seconds"),
        ]
    );
}

#[test]
fn aliases_and_deprecations_must_lead_to_a_model() {
    let found = check("pack: {name: p}\nproviders:\n  targets: [{id: a, provider: mock, model: m}]\nmodels:\n  aliases: {fast: m, loop1: loop2, loop2: loop1, gpt-4.1: nope}\n  deprecations: {old: fast, older: gone}\npolicies: {chain: [audit-logger]}\n");
    let codes: Vec<&str> = found.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(
        codes,
        vec![
            "models.aliases.loop1",
            "models.aliases.loop2",
            "models.aliases.gpt-4.1",
            "models.deprecations.older",
        ]
    );
    assert!(found.iter().all(|r| r.0 == "E014" && r.2 > 0));
}

#[test]
fn syntax_errors_and_duplicate_keys_have_positions() {
    assert_eq!(
        check("pack:\n  name: x\n   bad: 1\n"),
        vec![row("E004", "", 3, 7)]
    );
    assert_eq!(
        check("pack:\n  name: x\n  name: y\npack: {}\n"),
        vec![row("E005", "pack.name", 3, 3), row("E005", "pack", 4, 1)]
    );
    assert_eq!(
        check("pack: {name: x}\n---\npack: {name: y}\n"),
        vec![row("E004", "", 2, 1)]
    );
    assert_eq!(check(""), vec![row("E007", "", 1, 1)]);
    assert_eq!(check("- a\n- b\n"), vec![row("E006", "", 1, 1)]);
}

/// Found by the fuzz target `config` (testdata/fuzz/config/crash-eof-past-last-line.yaml):
/// libyaml reports an error at the end of the stream one line past a file's last line
/// when the file does not end in a line break.
#[test]
fn a_syntax_error_at_the_end_stays_inside_the_file() {
    assert_eq!(check("pack: {name: x"), vec![row("E004", "", 1, 15)]);
    assert_eq!(check("a: 1\r\npack: [x"), vec![row("E004", "", 2, 9)]);
    assert_eq!(check("pack: {name: x\n"), vec![row("E004", "", 2, 1)]);
}

#[test]
fn every_layer_is_checked_and_findings_name_their_file() {
    let base = SourceFile {
        path: PathBuf::from("base.yaml"),
        text: "pack: {name: base}\nproviders:\n  targets:\n    - {id: a, provider: mock, model: m}\npolicies: {chain: [audit-logger]}\n".to_string(),
    };
    let team = SourceFile {
        path: PathBuf::from("team.yaml"),
        text:
            "pack: {name: team}\nproviders:\n  targets:\n    - id: a\n      timeout_seconds: -1\n"
                .to_string(),
    };
    let layers = check_layers(&[base, team]);
    assert_eq!(layers.len(), 2);
    assert!(layers[0].diagnostics.is_empty());
    assert!(layers[0].spec.is_some());
    let d = &layers[1].diagnostics;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].path, "providers.targets[0].timeout_seconds");
    assert_eq!(
        d[0].file.as_deref(),
        Some(std::path::Path::new("team.yaml"))
    );
    assert_eq!((d[0].line, d[0].column), (Some(5), Some(24)));
    // A file that does not parse stops its layer and every later one.
    let bad = SourceFile {
        path: PathBuf::from("bad.yaml"),
        text: "pack: [\n".to_string(),
    };
    let layers = check_layers(&[bad.clone(), bad]);
    assert!(layers.iter().all(|l| l.spec.is_none()));
    assert_eq!(layers[1].diagnostics.len(), 2);
}
