//! `kt policy lint` through the real binary: every code's fixture with its exact output
//! (`testdata/lint/invalid/`), the seed configs (`testdata/lint/valid/`), layering,
//! directories, JSON, GitHub annotations, colour and exit codes, and `kt gateway run`
//! refusing the same config with the same diagnostics.
//!
//! Expected outputs are `<fixture>.out` beside each fixture. After a deliberate change in
//! wording, regenerate them with `KT_BLESS=1 cargo test --release --test it lint::` and
//! review the diff. `{known_policies}` in them stands for the list of policies kt knows,
//! which grows as policies are added.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::*;

const TIMEOUT: Duration = Duration::from_secs(20);

/// The variable the fixtures name in `secret_key_ref` and expect to be unset.
const UNSET_KEY: &str = "KT_LINT_FIXTURE_UNSET_KEY";

/// Dummy values for the variables the seed configs reference.
const SEED_SECRETS: &[(&str, &str)] = &[
    ("OPENAI_API_KEY", "sk-test"),
    ("OPENAI_API_KEY_EU", "sk-test"),
    ("ANTHROPIC_API_KEY", "sk-test"),
    ("AZURE_OPENAI_KEY", "sk-test"),
    ("AZURE_OPENAI_API_KEY", "sk-test"),
];

/// The policy names of the public product (PRODUCT.md); seeds may name any of them.
const PRODUCT_POLICIES: &[&str] = &[
    "prompt-injection",
    "pii-detector",
    "audit-logger",
    "hipaa-phi-detector",
    "dlp-filter",
    "safety-filter",
    "agent-firewall",
    "rbac",
    "data-routing-policy",
    "quality-scorer",
];

fn lint_dir() -> PathBuf {
    repo().join("testdata").join("lint")
}

/// Runs `kt policy lint ARGS` in `cwd`, with the fixtures' secret unset.
fn lint(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = kt(home.path());
    cmd.current_dir(cwd).args(["policy", "lint"]).args(args);
    cmd.env_remove(UNSET_KEY);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    run(cmd, None, TIMEOUT)
}

fn known_policies() -> String {
    kt::policy::KNOWN.join(", ")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// `# requires-policy: NAME` on a fixture's first line: it can only show its code once
/// kt knows that policy.
fn required_policy(text: &str) -> Option<&str> {
    text.lines()
        .next()?
        .strip_prefix("# requires-policy:")
        .map(str::trim)
}

#[test]
fn every_code_has_a_fixture_with_its_exact_output() {
    let dir = lint_dir().join("invalid");
    let bless = std::env::var_os("KT_BLESS").is_some();
    let mut pending = Vec::new();
    let mut checked = Vec::new();
    for path in yaml_files(&dir) {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        if let Some(policy) = required_policy(&text) {
            if !kt::policy::is_known(policy) {
                pending.push(format!("{name} (needs policy `{policy}`)"));
                continue;
            }
        }
        let out = lint(&dir, &["--file", &name], &[]);
        let expected_path = path.with_extension("out");
        if bless {
            let templated = out.stdout.replace(
                &format!("known policies: {}", known_policies()),
                "known policies: {known_policies}",
            );
            std::fs::write(&expected_path, templated).unwrap();
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("missing {}: run with KT_BLESS=1", expected_path.display()))
            .replace("{known_policies}", &known_policies());
        assert_eq!(
            out.stdout, expected,
            "output of `kt policy lint --file {name}` changed (KT_BLESS=1 regenerates it)\n--- got ---\n{}",
            out.stdout
        );
        assert_eq!(out.stderr, "", "{name}");
        let want_exit = if expected.starts_with("X ") { 2 } else { 0 };
        assert_eq!(out.status.code(), Some(want_exit), "{name}");
        // A fixture named after a code shows that code.
        let code = name.split('-').next().unwrap().to_uppercase();
        if code.starts_with('E') || code.starts_with('W') {
            assert!(
                out.stdout.contains(&format!("[{code}]")),
                "{name}:\n{}",
                out.stdout
            );
        }
        checked.push(name);
    }
    for (code, what) in kt::config::diagnostic::CODES {
        let prefix = format!("{}-", code.to_lowercase());
        assert!(
            yaml_files(&dir).iter().any(|p| p
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&prefix)),
            "no fixture for {code} ({what}) in testdata/lint/invalid"
        );
    }
    assert!(checked.len() >= 18, "{checked:?}");
    if !pending.is_empty() {
        eprintln!(
            "lint fixtures waiting for their policy: {}",
            pending.join(", ")
        );
    }
}

#[test]
fn seed_configs_lint_clean() {
    let dir = lint_dir().join("valid");
    let mut runs: Vec<(String, Vec<&str>)> = yaml_files(&dir)
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            (name, Vec::new())
        })
        .collect();
    assert!(runs.len() >= 13, "{runs:?}");
    runs.push((
        "seed-001-developer-experience.yaml".to_string(),
        vec!["--file", "layers/seed-001-websocket.yaml"],
    ));
    for (file, extra) in &runs {
        let mut args = vec!["--file", file.as_str(), "--json"];
        args.extend(extra);
        let out = lint(&dir, &args, SEED_SECRETS);
        let report: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{file}: {e}\n{}\n{}", out.stdout, out.stderr));
        assert_eq!(report["warnings"], serde_json::json!([]), "{file}");
        // Until every policy of the product is in kt, a seed may name one that is not
        // yet: that and nothing else may be reported.
        let errors = report["errors"].as_array().unwrap();
        for e in errors {
            let message = e["message"].as_str().unwrap();
            let policy = message
                .strip_prefix("unknown policy kind `")
                .and_then(|m| m.strip_suffix('`'))
                .unwrap_or_else(|| panic!("{file}: unexpected finding {e}"));
            assert!(
                PRODUCT_POLICIES.contains(&policy) && !kt::policy::is_known(policy),
                "{file}: {e}"
            );
        }
        let clean = errors.is_empty();
        assert_eq!(report["valid"], clean, "{file}");
        assert_eq!(out.status.code(), Some(if clean { 0 } else { 2 }), "{file}");
    }
}

#[test]
fn the_json_report_has_the_documented_shape_and_every_line() {
    let dir = lint_dir().join("invalid");
    let out = lint(&dir, &["--file", "several-mistakes.yaml", "--json"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["file"], "several-mistakes.yaml");
    assert_eq!(
        v["pack"],
        serde_json::json!({"name": "several-mistakes", "version": "1.0.0"})
    );
    assert_eq!(v["chain"], serde_json::json!(["audit-loger"]));
    assert_eq!(v["policy_count"], 1);
    let rows = |key: &str| -> Vec<(String, String, u64, u64)> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
                assert!(e["suggestion"].as_str().is_some(), "{e}");
                assert_eq!(e["file"], "several-mistakes.yaml");
                (
                    e["code"].as_str().unwrap().to_string(),
                    e["path"].as_str().unwrap().to_string(),
                    e["line"].as_u64().unwrap(),
                    e["column"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let row = |c: &str, p: &str, l: u64, col: u64| (c.to_string(), p.to_string(), l, col);
    assert_eq!(
        rows("errors"),
        vec![
            row("E008", "providers.strategy", 6, 13),
            row("E010", "providers.targets[0].base_url", 11, 17),
            row("E011", "providers.targets[0].timeout_seconds", 12, 24),
            row("E009", "providers.targets[1].id", 13, 11),
            row("E012", "providers.targets[1].weight", 16, 15),
            row("E014", "models.aliases.fast", 21, 11),
            row("E001", "policies.chain[0]", 24, 7),
            row("E002", "policy.audit-logger.retension_days", 27, 5),
        ]
    );
    assert_eq!(
        rows("warnings"),
        vec![
            row("W001", "providers.targets[1].secret_key_ref.env", 18, 14),
            row("W002", "policy.audit-logger", 26, 3),
        ]
    );
}

#[test]
fn the_gateway_refuses_the_config_with_the_same_diagnostics() {
    let dir = lint_dir().join("invalid");
    let linted = lint(&dir, &["--file", "several-mistakes.yaml"], &[]);
    let home = tempfile::tempdir().unwrap();
    let mut cmd = kt(home.path());
    cmd.current_dir(&dir)
        .args([
            "gateway",
            "run",
            "--port",
            "0",
            "--policy-config",
            "several-mistakes.yaml",
        ])
        .arg("--db")
        .arg(home.path().join("kt.db"))
        .env_remove(UNSET_KEY);
    let gateway = run(cmd, None, TIMEOUT);
    assert_eq!(gateway.status.code(), Some(1), "{}", gateway.stderr);
    let blocks: Vec<&str> = linted
        .stdout
        .split("\n\n")
        .skip(1)
        .filter(|b| b.starts_with("error["))
        .collect();
    assert_eq!(blocks.len(), 8, "{}", linted.stdout);
    for block in blocks {
        assert!(
            gateway.stderr.contains(block.trim_end()),
            "gateway output lacks:\n{block}\n--- gateway stderr ---\n{}",
            gateway.stderr
        );
    }
}

#[test]
fn layered_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("base.yaml"),
        "pack: {name: base}\nproviders:\n  targets:\n    - {id: a, provider: mock, model: m}\npolicies: {chain: [audit-logger]}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("team.yaml"),
        "pack: {name: team}\nproviders:\n  targets:\n    - id: a\n      timeout_seconds: -1\n",
    )
    .unwrap();
    let out = lint(
        dir.path(),
        &["--file", "base.yaml", "--file", "team.yaml"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        out.stdout,
        "X base.yaml + team.yaml has 1 error\n\n\
         error[E011]: `timeout_seconds` must be more than 0 seconds, found -1\n  \
         --> providers.targets[0].timeout_seconds (team.yaml:5:24)\n  \
         help: give a number of seconds, e.g. `timeout_seconds: 30`\n"
    );
    // A directory: each file alone (team.yaml has no target with a provider by itself).
    let out = lint(dir.path(), &["--file", ".", "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let reports = v.as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["valid"], true);
    assert_eq!(reports[1]["valid"], false);
    assert!(reports[1]["file"].as_str().unwrap().ends_with("team.yaml"));
}

#[test]
fn exit_codes_strict_and_unreadable_files() {
    let dir = lint_dir().join("invalid");
    let out = lint(&dir, &["--file", "w001-unset-secret.yaml"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stdout);
    let out = lint(&dir, &["--file", "w001-unset-secret.yaml", "--strict"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stdout);
    assert!(out.stdout.contains("error[W001]"), "{}", out.stdout);
    let out = lint(
        &dir,
        &["--file", "w001-unset-secret.yaml"],
        &[(UNSET_KEY, "set")],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(!out.stdout.contains("W001"), "{}", out.stdout);

    let out = lint(&dir, &["--file", "no-such-file.yaml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .starts_with("error: failed to read `no-such-file.yaml`\n  caused by: "),
        "{}",
        out.stderr
    );
    let empty = tempfile::tempdir().unwrap();
    let out = lint(empty.path(), &["--file", "."], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("no `*.yaml` or `*.yml` files"),
        "{}",
        out.stderr
    );
}

#[test]
fn github_format_prints_annotations() {
    let dir = lint_dir().join("invalid");
    let out = lint(
        &dir,
        &[
            "--file",
            "e009-duplicate-target-id.yaml",
            "--format",
            "github",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        out.stdout,
        "::error file=e009-duplicate-target-id.yaml,line=9,col=11,title=kt policy lint E009::\
         duplicate target id `primary` (at `providers.targets[1].id`)%0A\
         help: `providers.targets[0]` already uses it; give every target a unique `id`\n\
         kt policy lint: e009-duplicate-target-id.yaml: 1 error, 0 warnings\n"
    );
}

#[test]
fn colour_only_when_asked_for_or_on_a_terminal() {
    let dir = lint_dir().join("invalid");
    let home = tempfile::tempdir().unwrap();
    let base = |envs: &[(&str, &str)]| {
        let mut cmd = kt(home.path());
        cmd.current_dir(&dir)
            .args(["policy", "lint", "--file", "e009-duplicate-target-id.yaml"])
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        run(cmd, None, TIMEOUT).stdout
    };
    // Piped: plain.
    assert!(!base(&[]).contains('\u{1b}'));
    assert!(base(&[("CLICOLOR_FORCE", "1")]).contains("\u{1b}["));
    assert!(!base(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]).contains('\u{1b}'));
}

#[test]
fn kt_init_output_lints_clean() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy-config.yaml");
    for provider in ["mock", "openai", "anthropic"] {
        let mut cmd = kt(dir.path());
        cmd.args(["init", "--yes", "--force", "--provider", provider, "-o"])
            .arg(&path);
        let out = run(cmd, None, std::time::Duration::from_secs(10));
        assert!(out.status.success(), "{}", out.stderr);
        let mut cmd = kt(dir.path());
        cmd.args(["policy", "lint", "--json", "--file"]).arg(&path);
        let out = run(cmd, None, std::time::Duration::from_secs(10));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{provider}: {}{}",
            out.stdout,
            out.stderr
        );
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["errors"], serde_json::json!([]), "{provider}: {v}");
    }
}
