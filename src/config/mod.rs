//! `policy-config.yaml`: loading, layering, secret references and validation.
//!
//! Raw serde types live in `schema`; this module turns them into the validated
//! [`Config`] the gateway runs. Several `--policy-config` files layer: each later file is
//! merged over the earlier ones, and every file's `pack.name` names a configuration that
//! gateway keys can bind to (the merge of that file and all before it).

pub mod diagnostic;
pub mod layer;
pub mod lint;
pub mod origin;
pub mod sandbox;
pub mod schema;
pub mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use diagnostic::{Diagnostic, Severity};
use schema::{
    ApiFlavor, ConfigSpec, DataCollection, PricingSpec, ProviderId, ProviderKind, Strategy,
    TargetSpec, WireFormat,
};

/// Default request body limit: 10 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;

/// A secret value: never printed, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A config file that could not be loaded: every finding, not just the first.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} in `{}`", summary(diagnostics), path.display())]
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

fn summary(diags: &[Diagnostic]) -> String {
    let n = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let first = diags
        .iter()
        .find(|d| d.severity == Severity::Error)
        .map(|d| format!(": {}: {}", d.path, d.message))
        .unwrap_or_default();
    format!(
        "{n} configuration error{}{first}",
        if n == 1 { "" } else { "s" }
    )
}

/// One provider target, validated and with its secret resolved.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: String,
    pub provider: ProviderId,
    /// The effective kind (`provider_type` overrides the kind of `provider`).
    pub kind: ProviderKind,
    pub format: WireFormat,
    pub model: String,
    pub base_url: String,
    pub credential: Option<Secret>,
    pub api_key_header: String,
    pub api_key_prefix: String,
    pub timeout: Duration,
    pub stream_timeout: Duration,
    pub headers: Vec<(String, String)>,
    pub weight: f64,
    pub pricing: Option<PricingSpec>,
    pub region: Option<String>,
    pub zdr: bool,
    pub data_collection: Option<DataCollection>,
    pub max_context_tokens: Option<u64>,
    pub max_messages: Option<u64>,
    pub api_version: Option<String>,
    /// SigV4 credentials (Bedrock targets only; `None` when none were found).
    pub aws: Option<AwsCredentials>,
    pub spec: TargetSpec,
}

/// AWS credentials of a Bedrock target, read from the environment at load time:
/// `secret_key_ref.{access_key_id_env, secret_access_key_env, session_token_env}`, else
/// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`.
#[derive(Debug, Clone)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

impl AwsCredentials {
    fn from_env(r: Option<&schema::SecretKeyRef>) -> Option<AwsCredentials> {
        let var = |name: Option<&String>, default: &str| {
            std::env::var(name.map_or(default, String::as_str))
                .ok()
                .filter(|v| !v.is_empty())
        };
        let access_key_id = var(
            r.and_then(|r| r.access_key_id_env.as_ref()),
            "AWS_ACCESS_KEY_ID",
        )?;
        let secret = var(
            r.and_then(|r| r.secret_access_key_env.as_ref()),
            "AWS_SECRET_ACCESS_KEY",
        )?;
        Some(AwsCredentials {
            access_key_id,
            secret_access_key: Secret::new(secret),
            session_token: var(
                r.and_then(|r| r.session_token_env.as_ref()),
                "AWS_SESSION_TOKEN",
            )
            .map(Secret::new),
        })
    }
}

impl Target {
    pub fn is_responses_api(&self) -> bool {
        self.provider.api == ApiFlavor::Responses
    }
}

/// A validated configuration: what one gateway (or one gateway key) runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub version: Option<String>,
    pub strategy: Strategy,
    pub targets: Vec<Target>,
    pub chain: Vec<String>,
    pub policy_blocks: BTreeMap<String, serde_yaml::Value>,
    pub aliases: BTreeMap<String, String>,
    pub deprecations: BTreeMap<String, String>,
    pub max_body_bytes: u64,
    /// Where it came from (`built-in sandbox` or file paths).
    pub source: String,
    pub spec: ConfigSpec,
}

/// Every configuration loaded from `--policy-config` files.
#[derive(Debug, Clone)]
pub struct ConfigSet {
    /// The merge of all files: what requests without a scoped key get.
    pub default: Arc<Config>,
    /// Configurations by `pack.name`.
    pub by_name: BTreeMap<String, Arc<Config>>,
    pub is_sandbox: bool,
}

impl ConfigSet {
    /// Loads and layers `paths`; with none, the built-in sandbox config.
    /// Warnings are returned beside the set so the caller can print them.
    pub fn load(paths: &[PathBuf]) -> Result<(ConfigSet, Vec<Diagnostic>), ConfigError> {
        if paths.is_empty() {
            let cfg = load_str(sandbox::SANDBOX_YAML, Path::new("<built-in sandbox>"))?;
            let cfg = Arc::new(cfg.0);
            let mut by_name = BTreeMap::new();
            by_name.insert(cfg.name.clone(), cfg.clone());
            return Ok((
                ConfigSet {
                    default: cfg,
                    by_name,
                    is_sandbox: true,
                },
                Vec::new(),
            ));
        }
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            files.push(validate::SourceFile {
                path: path.clone(),
                text,
            });
        }
        let mut by_name = BTreeMap::new();
        let mut warnings: Vec<Diagnostic> = Vec::new();
        let mut last = None;
        for (k, layer) in validate::check_layers(&files).into_iter().enumerate() {
            let path = files.get(k).map(|f| f.path.clone()).unwrap_or_default();
            let (mut cfg, warns) = from_layer(layer, &path)?;
            cfg.source = files
                .iter()
                .take(k + 1)
                .map(|f| f.path.display().to_string())
                .collect::<Vec<_>>()
                .join(" + ");
            for w in warns {
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
            let cfg = Arc::new(cfg);
            by_name.insert(cfg.name.clone(), cfg.clone());
            last = Some(cfg);
        }
        let default = last.ok_or_else(|| ConfigError::Invalid {
            path: PathBuf::new(),
            diagnostics: vec![],
        })?;
        Ok((
            ConfigSet {
                default,
                by_name,
                is_sandbox: false,
            },
            warnings,
        ))
    }
}

/// Loads one YAML text (used for the sandbox and by tests).
pub fn load_str(text: &str, path: &Path) -> Result<(Config, Vec<Diagnostic>), ConfigError> {
    let file = validate::SourceFile {
        path: path.to_path_buf(),
        text: text.to_string(),
    };
    let layer = validate::check_layers(&[file])
        .pop()
        .ok_or_else(|| ConfigError::Invalid {
            path: path.to_path_buf(),
            diagnostics: vec![],
        })?;
    let (mut cfg, warns) = from_layer(layer, path)?;
    cfg.source = path.display().to_string();
    Ok((cfg, warns))
}

/// A validated layer becomes a config when it has no errors; its warnings come along.
fn from_layer(
    layer: validate::Layer,
    path: &Path,
) -> Result<(Config, Vec<Diagnostic>), ConfigError> {
    let (errors, warnings): (Vec<_>, Vec<_>) = layer
        .diagnostics
        .into_iter()
        .partition(Diagnostic::is_error);
    let spec = match layer.spec {
        Some(spec) if errors.is_empty() => spec,
        _ => {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                diagnostics: errors,
            })
        }
    };
    let cfg = build(spec).map_err(|d| ConfigError::Invalid {
        path: path.to_path_buf(),
        diagnostics: d,
    })?;
    Ok((cfg, warnings))
}

/// Turns a type-checked spec into the runtime config (resolving secrets from the
/// environment).
fn build(spec: ConfigSpec) -> Result<Config, Vec<Diagnostic>> {
    let mut targets = Vec::with_capacity(spec.providers.targets.len());
    let mut errors = Vec::new();
    for (i, t) in spec.providers.targets.iter().enumerate() {
        match build_target(t) {
            Ok(target) => targets.push(target),
            Err(msg) => errors.push(Diagnostic::error(
                diagnostic::code::MISSING_FIELD,
                format!("providers.targets[{i}]"),
                msg,
            )),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Config {
        name: spec.pack.name.clone(),
        version: spec.pack.version.clone(),
        strategy: spec.providers.strategy,
        targets,
        chain: spec.policies.chain.clone(),
        policy_blocks: spec.policy.clone(),
        aliases: spec.models.aliases.clone(),
        deprecations: spec.models.deprecations.clone(),
        max_body_bytes: spec
            .gateway
            .max_body_bytes
            .unwrap_or(DEFAULT_MAX_BODY_BYTES),
        source: String::new(),
        spec,
    })
}

/// Also used by validation, so a target the gateway cannot build is a finding.
fn build_target(t: &TargetSpec) -> Result<Target, String> {
    let kind = t.provider_type.unwrap_or(t.provider.kind);
    let format = t.format.unwrap_or(match kind {
        ProviderKind::Anthropic => WireFormat::Anthropic,
        ProviderKind::Gemini => WireFormat::Gemini,
        ProviderKind::Bedrock => WireFormat::Bedrock,
        ProviderKind::Cohere => WireFormat::Cohere,
        _ => WireFormat::Openai,
    });
    let base_url = match (&t.base_url, kind) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, ProviderKind::Mock) => "mock://".to_string(),
        (None, ProviderKind::Bedrock) => String::new(),
        (None, k) => k
            .default_base_url()
            .map(str::to_string)
            .ok_or_else(|| format!("`base_url` is required for provider `{k}`"))?,
    };
    let key_env = t
        .secret_key_ref
        .as_ref()
        .and_then(|r| r.env.clone())
        .or_else(|| kind.default_key_env().map(str::to_string));
    let credential = key_env
        .and_then(|name| std::env::var(name).ok())
        .filter(|v| !v.is_empty())
        .map(Secret::new);
    let (default_header, default_prefix) = match kind {
        ProviderKind::AzureOpenai => ("api-key", ""),
        ProviderKind::Anthropic => ("x-api-key", ""),
        ProviderKind::Gemini => ("x-goog-api-key", ""),
        _ => ("Authorization", "Bearer "),
    };
    let api_key_prefix = match &t.api_key_prefix {
        // "Bearer" and "Bearer " both mean a space-separated prefix.
        Some(p) if !p.is_empty() && !p.ends_with(' ') => format!("{p} "),
        Some(p) => p.clone(),
        None => default_prefix.to_string(),
    };
    let (aws, region) = if kind == ProviderKind::Bedrock {
        let region = t.region.clone().or_else(|| {
            ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|r| !r.is_empty()))
        });
        (AwsCredentials::from_env(t.secret_key_ref.as_ref()), region)
    } else {
        (None, t.region.clone())
    };
    // Validation runs this too, before it rejects durations too long for a `Duration`.
    let seconds = |s: f64| Duration::try_from_secs_f64(s.max(0.001)).unwrap_or(Duration::MAX);
    let timeout = seconds(t.timeout_seconds.unwrap_or(60.0));
    let stream_timeout = t.stream_timeout_seconds.map(seconds).unwrap_or(timeout);
    Ok(Target {
        id: t.id.clone(),
        provider: t.provider.clone(),
        kind,
        format,
        model: t
            .provider
            .model
            .clone()
            .filter(|_| t.model.is_empty())
            .unwrap_or_else(|| t.model.clone()),
        base_url,
        credential,
        api_key_header: t
            .api_key_header
            .clone()
            .unwrap_or_else(|| default_header.to_string()),
        api_key_prefix,
        timeout,
        stream_timeout,
        headers: t
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        weight: t.weight.unwrap_or(1.0),
        pricing: t.pricing,
        region,
        zdr: t.zdr.unwrap_or(false) || t.data_policy.as_ref().and_then(|d| d.zdr).unwrap_or(false),
        data_collection: t.data_collection,
        max_context_tokens: t.max_context_tokens,
        max_messages: t.max_messages,
        api_version: t.api_version.clone(),
        aws,
        spec: t.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_loads() {
        let (set, warnings) = ConfigSet::load(&[]).unwrap();
        assert!(set.is_sandbox);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(set.default.targets[0].kind, ProviderKind::Mock);
        assert!(!set.default.chain.is_empty());
    }

    #[test]
    fn layering_merges_later_files_over_earlier() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        let b = dir.path().join("b.yaml");
        std::fs::write(
            &a,
            "pack: {name: base}\nproviders:\n  targets:\n    - {id: t1, provider: openai, model: gpt-4o, base_url: 'http://127.0.0.1:1/v1'}\n",
        )
        .unwrap();
        std::fs::write(
            &b,
            "pack: {name: team}\nproviders:\n  targets:\n    - {id: t1, provider: openai, model: gpt-4o, base_url: 'http://127.0.0.1:2/v1'}\n    - {id: t2, provider: groq, model: llama}\n",
        )
        .unwrap();
        let (set, _) = ConfigSet::load(&[a, b]).unwrap();
        assert_eq!(set.default.name, "team");
        assert_eq!(set.default.targets.len(), 2);
        assert_eq!(set.default.targets[0].base_url, "http://127.0.0.1:2/v1");
        assert_eq!(set.by_name["base"].targets.len(), 1);
        assert_eq!(
            set.by_name["base"].targets[0].base_url,
            "http://127.0.0.1:1/v1"
        );
    }

    #[test]
    fn secrets_are_masked_in_debug() {
        assert_eq!(format!("{:?}", Secret::new("sk-123")), "Secret(***)");
    }
}
