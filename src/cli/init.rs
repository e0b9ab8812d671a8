//! `kt init`: writes a commented starter `policy-config.yaml`. On a terminal it asks for
//! the configuration name, provider, model and policies (dialoguer); `--yes`, flags or a
//! non-terminal take the defaults. The text is checked with the real config loader before
//! it is written, and an existing file is never replaced without `--force`.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::hint;
use crate::config::schema::ProviderKind;
use crate::exit::ExitStatus;

pub const EXAMPLES: &str = "Examples:
  kt init                                 answer a few questions
  kt init --yes                           the defaults: offline mock provider, default chain
  kt init --provider openai --model gpt-4o-mini --yes
  kt init --policy audit-logger -o team.yaml --force
  kt init --yes -o - | less               print instead of writing a file";

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the config (`-` for standard output)
    #[arg(long, short = 'o', default_value = "policy-config.yaml")]
    pub output: PathBuf,
    /// Accept the defaults without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Overwrite an existing file
    #[arg(long)]
    pub force: bool,
    /// Configuration name (`pack.name`; gateway keys bind to it)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Provider of the first target
    #[arg(long, value_parser = PROVIDERS.iter().map(|p| p.kind).collect::<Vec<_>>())]
    pub provider: Option<String>,
    /// Model of the first target [default: depends on the provider]
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// A policy for the chain (repeat; in chain order) [default: every built-in one]
    #[arg(long = "policy", value_name = "NAME")]
    pub policies: Vec<String>,
}

/// A provider offered by `kt init`, with the model it suggests.
struct ProviderChoice {
    kind: &'static str,
    label: &'static str,
    model: &'static str,
}

const PROVIDERS: &[ProviderChoice] = &[
    ProviderChoice {
        kind: "mock",
        label: "built-in mock (offline, no API key; try kt first)",
        model: "kt-sandbox",
    },
    ProviderChoice {
        kind: "openai",
        label: "OpenAI",
        model: "gpt-4o-mini",
    },
    ProviderChoice {
        kind: "anthropic",
        label: "Anthropic",
        model: "claude-3-5-haiku-latest",
    },
    ProviderChoice {
        kind: "gemini",
        label: "Google Gemini",
        model: "gemini-2.0-flash",
    },
    ProviderChoice {
        kind: "openai-compatible",
        label: "an OpenAI-compatible server (Ollama, vLLM, llama.cpp)",
        model: "llama3.1",
    },
    ProviderChoice {
        kind: "groq",
        label: "Groq",
        model: "llama-3.1-8b-instant",
    },
    ProviderChoice {
        kind: "mistral",
        label: "Mistral",
        model: "mistral-small-latest",
    },
];

/// Chain order for the policies kt knows (earlier ones see the request first).
const CHAIN_ORDER: &[&str] = &[
    "rbac",
    "prompt-injection",
    "agent-firewall",
    "dlp-filter",
    "pii-detector",
    "hipaa-phi-detector",
    "safety-filter",
    "data-routing-policy",
    "quality-scorer",
    "audit-logger",
];

/// The chain `kt init --yes` writes (the sandbox's chain).
const DEFAULT_CHAIN: &[&str] = &["prompt-injection", "pii-detector", "audit-logger"];

/// What the starter config is made of.

#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    pub name: String,
    pub provider: String,
    pub model: String,
    pub chain: Vec<String>,
}

/// The policies kt knows, in chain order.
fn known_policies() -> Vec<&'static str> {
    let mut known: Vec<&'static str> = crate::policy::KNOWN.to_vec();
    known.sort_by_key(|n| {
        CHAIN_ORDER
            .iter()
            .position(|o| o == n)
            .unwrap_or(usize::MAX / 2)
    });
    known
}

fn default_model(provider: &str) -> &'static str {
    PROVIDERS
        .iter()
        .find(|p| p.kind == provider)
        .map_or("gpt-4o-mini", |p| p.model)
}

pub fn run(args: InitArgs) -> anyhow::Result<ExitStatus> {
    let InitArgs {
        output,
        yes,
        force,
        name,
        provider,
        model,
        policies,
    } = args;
    let to_stdout = output.as_os_str() == "-";
    if !to_stdout && output.exists() && !force {
        hint::print(
            &anyhow::anyhow!("`{}` already exists", output.display()),
            Some("pass --force to overwrite it, or --output another path"),
        );
        return Ok(ExitStatus::Failure);
    }
    let known = known_policies();
    if let Some(bad) = policies.iter().find(|p| !known.contains(&p.as_str())) {
        hint::print(
            &anyhow::anyhow!("unknown policy `{bad}`"),
            Some(&format!("kt knows: {}", known.join(", "))),
        );
        return Ok(ExitStatus::Failure);
    }
    let mut answers = Answers {
        name: name.unwrap_or_else(|| "my-config".to_string()),
        provider: provider.unwrap_or_else(|| "mock".to_string()),
        model: String::new(),
        // The product's default chain; the others are offered interactively and with
        // --policy.
        chain: if policies.is_empty() {
            DEFAULT_CHAIN
                .iter()
                .filter(|p| known.contains(p))
                .map(|s| s.to_string())
                .collect()
        } else {
            policies.clone()
        },
    };
    answers.model = model
        .clone()
        .unwrap_or_else(|| default_model(&answers.provider).to_string());
    let interactive = !yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if interactive {
        answers = ask(answers, model.is_some(), !policies.is_empty(), &known)?;
    }
    let text = render(&answers);
    // The starter must load; a failure here is a bug in this template, not user error.
    crate::config::load_str(&text, &output)
        .map_err(|e| anyhow::Error::new(e).context("kt init produced an invalid config"))?;
    if to_stdout {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        return Ok(ExitStatus::Success);
    }
    write_new(&output, &text, force)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "wrote {} (configuration `{}`, {} {}, chain: {})",
        output.display(),
        answers.name,
        answers.provider,
        answers.model,
        if answers.chain.is_empty() {
            "none".to_string()
        } else {
            answers.chain.join(" -> ")
        }
    )?;
    writeln!(out, "next:")?;
    writeln!(out, "  kt policy lint --file {}", output.display())?;
    writeln!(out, "  kt gateway run --policy-config {}", output.display())?;
    writeln!(out, "  kt chat -m {} \"Hello\"", answers.model)?;
    Ok(ExitStatus::Success)
}

/// Writes `text` to `path`; without `force` the file must not exist (checked again at
/// creation, so a file that appeared meanwhile is not replaced).
fn write_new(path: &Path, text: &str, force: bool) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("failed to create `{}`", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("failed to write `{}`", path.display()))
}

fn ask(
    mut a: Answers,
    model_given: bool,
    policies_given: bool,
    known: &[&str],
) -> anyhow::Result<Answers> {
    let theme = dialoguer::theme::ColorfulTheme::default();
    let io = |e: dialoguer::Error| anyhow::Error::new(e).context("failed to read the answer");
    a.name = dialoguer::Input::<String>::with_theme(&theme)
        .with_prompt("Configuration name (pack.name)")
        .default(a.name)
        .interact_text()
        .map_err(io)?;
    let labels: Vec<String> = PROVIDERS
        .iter()
        .map(|p| format!("{:<18} {}", p.kind, p.label))
        .collect();
    let current = PROVIDERS
        .iter()
        .position(|p| p.kind == a.provider)
        .unwrap_or(0);
    let chosen = dialoguer::Select::with_theme(&theme)
        .with_prompt("Provider")
        .items(&labels)
        .default(current)
        .interact()
        .map_err(io)?;
    if let Some(p) = PROVIDERS.get(chosen) {
        if p.kind != a.provider && !model_given {
            a.model = p.model.to_string();
        }
        a.provider = p.kind.to_string();
    }
    a.model = dialoguer::Input::<String>::with_theme(&theme)
        .with_prompt("Model")
        .default(a.model)
        .interact_text()
        .map_err(io)?;
    if !policies_given && !known.is_empty() {
        let checked: Vec<bool> = known
            .iter()
            .map(|k| a.chain.iter().any(|c| c == k))
            .collect();
        let picked = dialoguer::MultiSelect::with_theme(&theme)
            .with_prompt("Policies (space to toggle, enter to accept)")
            .items(known)
            .defaults(&checked)
            .interact()
            .map_err(io)?;
        a.chain = picked
            .into_iter()
            .filter_map(|i| known.get(i).map(|s| s.to_string()))
            .collect();
    }
    Ok(a)
}

/// The YAML text: every choice explained in a comment beside it.
pub fn render(a: &Answers) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# kt policy configuration, written by `kt init`.
# Check it with `kt policy lint --file <this file>`; serve it with
# `kt gateway run --policy-config <this file>`.

pack:
  # The configuration id: gateway keys bind to it (`kt gateway-key create --configuration-id {name}`).
  name: {name}
  version: 1.0.0
  enabled: true
",
        name = yaml_str(&a.name)
    );
    let kind = ProviderKind::parse(&a.provider).unwrap_or_default();
    let _ = writeln!(
        s,
        "providers:
  # single | fallback | weighted_round_robin | latency | cost
  strategy: single
  targets:
    - id: {id}
      provider: {provider}
      model: {model}",
        id = yaml_str(&format!("{}-1", a.provider)),
        provider = a.provider,
        model = yaml_str(&a.model)
    );
    match kind {
        ProviderKind::Mock => {
            let _ = writeln!(
                s,
                "      description: built-in offline mock; replace it with a real provider, e.g.
      #   provider: openai
      #   model: gpt-4o-mini
      #   secret_key_ref: {{env: OPENAI_API_KEY}}"
            );
        }
        ProviderKind::OpenaiCompatible => {
            let _ = writeln!(
                s,
                "      # Where the server listens (Ollama's default shown).
      base_url: {}",
                kind.default_base_url()
                    .unwrap_or("http://127.0.0.1:11434/v1")
            );
        }
        _ => {}
    }
    if let Some(env) = kind.default_key_env() {
        let _ = writeln!(
            s,
            "      # The API key is read from this environment variable when the gateway starts.
      secret_key_ref: {{env: {env}}}"
        );
    }
    let _ = writeln!(
        s,
        "      timeout_seconds: 60
    # More targets make fallback and load balancing possible:
    # - id: backup
    #   provider: anthropic
    #   model: claude-3-5-haiku-latest
"
    );
    if kind == ProviderKind::Mock {
        let _ = writeln!(
            s,
            "models:
  # Names clients may ask for, mapped to a target's model (`kt chat` asks for gpt-4o).
  aliases:
    gpt-4o: {model}
    gpt-4o-mini: {model}
",
            model = yaml_str(&a.model)
        );
    }
    let _ = writeln!(
        s,
        "policies:
  # Every request passes these in order on the way in, and again on the way out."
    );
    if a.chain.is_empty() {
        let _ = writeln!(s, "  chain: []");
    } else {
        let _ = writeln!(s, "  chain:");
        for p in &a.chain {
            let _ = writeln!(s, "    - {p}");
        }
    }
    if !a.chain.is_empty() {
        let _ = writeln!(
            s,
            "
# Settings per policy. Any policy can set `mode: observe` to record what it would do
# without acting."
        );
        let _ = writeln!(s, "policy:");
        for p in &a.chain {
            let _ = writeln!(s, "  {p}:");
            s.push_str(policy_block(p));
        }
    }
    s
}

/// A policy's starter settings (indented for `policy.<name>`).
fn policy_block(name: &str) -> &'static str {
    match name {
        "audit-logger" => {
            "    # Hash-chain every event so edits and deletions show (`kt events verify`).
    immutable: true
    # Delete events older than this many days.
    retention_days: 90
    # What is kept of request and response bodies: none, redacted or full.
    payload: redacted
    # Also record reads (/v1/models, /v1/events).
    log_all_access: false
"
        }
        "pii-detector" => {
            "    # redact: replace what was found and let the request through; block: refuse it.
    action: redact
    # apply_to: input         # requests only: streamed answers then pass word for word
    # healthcare_mode: true   # also medical record numbers and other PHI
    # pci_mode: true          # also card numbers (Luhn-checked)
"
        }
        "dlp-filter" => {
            "    # Your company's own terms: what must not leave (or enter) through the gateway.
    action: block
    rules:
      - name: project-codenames
        keywords: [project-falcon, project-osprey]
        message: Internal project names may not be shared with an AI provider.
"
        }
        _ => {
            "    # enforce: act on findings; observe: only record them.
    mode: enforce
"
        }
    }
}

/// A YAML scalar: plain when safe, otherwise double-quoted (JSON escaping is valid YAML).
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::Value::String(s.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(a: &Answers) -> crate::config::Config {
        let text = render(a);
        match crate::config::load_str(&text, Path::new("init.yaml")) {
            Ok((cfg, _warnings)) => cfg,
            Err(e) => panic!("{e:?}\n{text}"),
        }
    }

    #[test]
    fn every_provider_and_the_full_chain_load() {
        let chain: Vec<String> = known_policies().iter().map(|s| s.to_string()).collect();
        for p in PROVIDERS {
            let a = Answers {
                name: "team a".into(),
                provider: p.kind.into(),
                model: p.model.into(),
                chain: chain.clone(),
            };
            let cfg = load(&a);
            assert_eq!(cfg.name, "team a");
            assert_eq!(cfg.chain, chain);
            assert_eq!(cfg.targets.len(), 1);
            assert_eq!(cfg.targets[0].model, p.model);
        }
    }

    #[test]
    fn an_empty_chain_loads() {
        let cfg = load(&Answers {
            name: "x".into(),
            provider: "openai".into(),
            model: "gpt-4o".into(),
            chain: Vec::new(),
        });
        assert!(cfg.chain.is_empty());
    }

    #[test]
    fn odd_names_are_quoted() {
        assert_eq!(yaml_str("gpt-4o"), "gpt-4o");
        assert_eq!(yaml_str("yes"), "\"yes\"");
        assert_eq!(yaml_str("True"), "\"True\"");
        assert_eq!(yaml_str("a: b"), "\"a: b\"");
        assert_eq!(yaml_str("1.0"), "\"1.0\"");
    }
}
