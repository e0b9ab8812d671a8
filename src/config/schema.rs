//! The raw `policy-config.yaml` types (`XxxSpec`), exactly as users write them.
//! `deny_unknown_fields` everywhere so a typo is an error, not a silently ignored key.
//! Validation that needs more than types lives in `config::validate`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSpec {
    pub pack: PackSpec,
    #[serde(default)]
    pub providers: ProvidersSpec,
    #[serde(default)]
    pub policies: PoliciesSpec,
    /// One block per policy, keyed by policy name. Each policy parses its own block
    /// (`policy::build`), so the typed spec lives next to the policy that reads it.
    #[serde(default)]
    pub policy: BTreeMap<String, serde_yaml::Value>,
    #[serde(default)]
    pub gateway: GatewaySpec,
    #[serde(default)]
    pub models: ModelsSpec,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackSpec {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersSpec {
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default)]
    pub targets: Vec<TargetSpec>,
    /// Retries of one target before falling back to the next (`providers.retry`).
    #[serde(default)]
    pub retry: Option<RetrySpec>,
    /// Per-target circuit breaker (`providers.circuit_breaker`).
    #[serde(default)]
    pub circuit_breaker: Option<CircuitBreakerSpec>,
}

/// `providers.retry`: how often one target is tried on a transient failure (connect
/// error, timeout, or a status in `on_status`) before the next target is tried. A retry
/// never happens once the first byte of an answer reached the client.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Tries per target, the first included (default 2; 1 disables retries).
    #[serde(default)]
    pub attempts: Option<u32>,
    /// First backoff in milliseconds, doubled per retry, with jitter (default 100).
    #[serde(default)]
    pub backoff_ms: Option<u64>,
    /// Longest wait before a retry (default 2000). An upstream `retry-after` longer than
    /// this moves on to the next target instead of waiting.
    #[serde(default)]
    pub max_backoff_ms: Option<u64>,
    /// Upstream statuses that are retried (default 429, 500, 502, 503, 504, 529).
    #[serde(default)]
    pub on_status: Option<Vec<u16>>,
}

/// `providers.circuit_breaker`: a target that keeps failing is skipped for a while, then
/// tried again with a single probe request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerSpec {
    /// `false` turns the breaker off (default `true`).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Consecutive failures that open the circuit (default 5).
    #[serde(default)]
    pub failure_threshold: Option<u32>,
    /// Also open when this share of the last `window` requests failed (0 < rate <= 1;
    /// default off).
    #[serde(default)]
    pub failure_rate: Option<f64>,
    /// Requests the failure rate is computed over (default 20, at most 64).
    #[serde(default)]
    pub window: Option<u32>,
    /// Seconds an open circuit waits before one probe request is let through (default 30).
    #[serde(default)]
    pub cooldown_seconds: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    #[default]
    Single,
    Fallback,
    WeightedRoundRobin,
    Latency,
    Cost,
}

impl Strategy {
    pub const ALL: [&'static str; 5] = [
        "single",
        "fallback",
        "weighted_round_robin",
        "latency",
        "cost",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Single => "single",
            Strategy::Fallback => "fallback",
            Strategy::WeightedRoundRobin => "weighted_round_robin",
            Strategy::Latency => "latency",
            Strategy::Cost => "cost",
        }
    }
}

/// One `providers.targets[]` entry: every field of seed 002's table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub id: String,
    pub provider: ProviderId,
    pub model: String,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub secret_key_ref: Option<SecretKeyRef>,
    #[serde(default)]
    pub api_key_header: Option<String>,
    #[serde(default)]
    pub api_key_prefix: Option<String>,
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    #[serde(default)]
    pub stream_timeout_seconds: Option<f64>,
    #[serde(default)]
    pub max_context_tokens: Option<u64>,
    #[serde(default)]
    pub max_messages: Option<u64>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub format: Option<WireFormat>,
    #[serde(default)]
    pub provider_type: Option<ProviderKind>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub weight: Option<f64>,
    #[serde(default)]
    pub data_policy: Option<DataPolicySpec>,
    #[serde(default)]
    pub pricing: Option<PricingSpec>,
    #[serde(default)]
    pub data_collection: Option<DataCollection>,
    #[serde(default)]
    pub zdr: Option<bool>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub health_probe: Option<HealthProbeSpec>,
    /// Azure OpenAI `api-version` query parameter (deployment URLs).
    #[serde(default)]
    pub api_version: Option<String>,
}

/// Where a credential comes from. `env` names the variable holding the key; the AWS
/// fields name the variables of a Bedrock target's SigV4 credentials.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyRef {
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub access_key_id_env: Option<String>,
    #[serde(default)]
    pub secret_access_key_env: Option<String>,
    #[serde(default)]
    pub session_token_env: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WireFormat {
    Openai,
    Anthropic,
    Gemini,
    Bedrock,
    Cohere,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DataCollection {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataPolicySpec {
    #[serde(default)]
    pub retention_days: Option<u32>,
    #[serde(default)]
    pub allow_training: Option<bool>,
    #[serde(default)]
    pub zdr: Option<bool>,
    #[serde(default)]
    pub data_collection: Option<DataCollection>,
    #[serde(default)]
    pub regions: Option<Vec<String>>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// USD per 1M tokens.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PricingSpec {
    pub prompt: f64,
    pub completion: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthProbeSpec {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub interval_seconds: Option<f64>,
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesSpec {
    #[serde(default)]
    pub chain: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    #[serde(default)]
    pub websocket: Option<WebsocketSpec>,
    /// Largest accepted request body in bytes (default 10 MiB).
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    #[serde(default)]
    pub auth: Option<AuthSpec>,
    /// Limits for the whole gateway (scope `org`).
    #[serde(default)]
    pub rate_limits: Option<RateLimitSpec>,
    /// A spending limit for the whole gateway.
    #[serde(default)]
    pub budget: Option<BudgetSpec>,
    /// Which web pages may call the gateway from a browser.
    #[serde(default)]
    pub cors: Option<CorsSpec>,
}

/// Browser access (`gateway.cors`). A request that carries an `Origin` header comes from a
/// web page; it is served only when that origin is allowed here.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSpec {
    /// Origins (`https://app.example.com`, `http://localhost:5173`), `null`, or `*` for any.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Allow pages served from this machine (`localhost`, `127.0.0.1`, `[::1]`, any port;
    /// default true).
    #[serde(default)]
    pub allow_localhost: Option<bool>,
    /// How long a browser may cache a preflight answer (default 600).
    #[serde(default)]
    pub max_age_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    /// Refuse requests that carry no gateway key (`kt_gk_…`).
    #[serde(default)]
    pub require_key: bool,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Requests per minute.
    #[serde(default)]
    pub rpm: Option<u64>,
    /// Tokens (prompt + completion) per minute.
    #[serde(default)]
    pub tpm: Option<u64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    pub limit_usd: f64,
    #[serde(default)]
    pub period: BudgetPeriod,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    Daily,
    Weekly,
    #[default]
    Monthly,
    Total,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebsocketSpec {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub max_message_size_bytes: Option<u64>,
    #[serde(default)]
    pub idle_timeout_seconds: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsSpec {
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    #[serde(default)]
    pub deprecations: BTreeMap<String, String>,
}

/// The provider kinds kt speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    #[default]
    Openai,
    AzureOpenai,
    Anthropic,
    Gemini,
    Bedrock,
    Cohere,
    Groq,
    Mistral,
    Together,
    Fireworks,
    OpenaiCompatible,
    Mock,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 12] = [
        ProviderKind::Openai,
        ProviderKind::AzureOpenai,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
        ProviderKind::Bedrock,
        ProviderKind::Cohere,
        ProviderKind::Groq,
        ProviderKind::Mistral,
        ProviderKind::Together,
        ProviderKind::Fireworks,
        ProviderKind::OpenaiCompatible,
        ProviderKind::Mock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::AzureOpenai => "azure-openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Bedrock => "bedrock",
            ProviderKind::Cohere => "cohere",
            ProviderKind::Groq => "groq",
            ProviderKind::Mistral => "mistral",
            ProviderKind::Together => "together",
            ProviderKind::Fireworks => "fireworks",
            ProviderKind::OpenaiCompatible => "openai-compatible",
            ProviderKind::Mock => "mock",
        }
    }

    pub fn parse(s: &str) -> Option<ProviderKind> {
        ProviderKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The base URL used when a target sets none.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::Openai => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com/v1"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com/v1beta"),
            ProviderKind::Cohere => Some("https://api.cohere.com/v2"),
            ProviderKind::Groq => Some("https://api.groq.com/openai/v1"),
            ProviderKind::Mistral => Some("https://api.mistral.ai/v1"),
            ProviderKind::Together => Some("https://api.together.xyz/v1"),
            ProviderKind::Fireworks => Some("https://api.fireworks.ai/inference/v1"),
            ProviderKind::OpenaiCompatible => Some("http://127.0.0.1:11434/v1"),
            ProviderKind::AzureOpenai | ProviderKind::Bedrock | ProviderKind::Mock => None,
        }
    }

    /// The environment variable read for the key when `secret_key_ref` is absent.
    pub fn default_key_env(self) -> Option<&'static str> {
        match self {
            ProviderKind::Openai => Some("OPENAI_API_KEY"),
            ProviderKind::AzureOpenai => Some("AZURE_OPENAI_API_KEY"),
            ProviderKind::Anthropic => Some("ANTHROPIC_API_KEY"),
            ProviderKind::Gemini => Some("GEMINI_API_KEY"),
            ProviderKind::Cohere => Some("COHERE_API_KEY"),
            ProviderKind::Groq => Some("GROQ_API_KEY"),
            ProviderKind::Mistral => Some("MISTRAL_API_KEY"),
            ProviderKind::Together => Some("TOGETHER_API_KEY"),
            ProviderKind::Fireworks => Some("FIREWORKS_API_KEY"),
            ProviderKind::Bedrock | ProviderKind::OpenaiCompatible | ProviderKind::Mock => None,
        }
    }

    /// Vendors that speak the OpenAI Chat Completions wire format natively.
    pub fn is_openai_format(self) -> bool {
        matches!(
            self,
            ProviderKind::Openai
                | ProviderKind::AzureOpenai
                | ProviderKind::Groq
                | ProviderKind::Mistral
                | ProviderKind::Together
                | ProviderKind::Fireworks
                | ProviderKind::OpenaiCompatible
        )
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which OpenAI API a target is called through (`openai:chat:<m>` / `openai:responses:<m>`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum ApiFlavor {
    #[default]
    Chat,
    Responses,
}

/// The `provider` field: `openai`, `openai:chat:gpt-4o`, `openai:responses:gpt-4o`,
/// `anthropic`, … .
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderId {
    pub kind: ProviderKind,
    pub api: ApiFlavor,
    /// The model named inside the id (`openai:chat:gpt-4o`), if any.
    pub model: Option<String>,
}

impl ProviderId {
    pub fn parse(s: &str) -> Result<ProviderId, String> {
        let mut parts = s.splitn(3, ':');
        let head = parts.next().unwrap_or_default();
        let kind = ProviderKind::parse(head).ok_or_else(|| {
            let valid: Vec<&str> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
            format!(
                "unknown provider `{s}`, expected one of: {}, openai:chat:<model>, openai:responses:<model>",
                valid.join(", ")
            )
        })?;
        match (parts.next(), parts.next()) {
            (None, _) => Ok(ProviderId {
                kind,
                api: ApiFlavor::Chat,
                model: None,
            }),
            (Some(api), model) if kind == ProviderKind::Openai => {
                let api = match api {
                    "chat" => ApiFlavor::Chat,
                    "responses" => ApiFlavor::Responses,
                    other => {
                        return Err(format!(
                            "unknown OpenAI API `{other}` in provider `{s}`, expected `chat` or `responses`"
                        ))
                    }
                };
                let model = model.filter(|m| !m.is_empty()).map(str::to_string);
                Ok(ProviderId { kind, api, model })
            }
            (Some(_), _) => Err(format!(
                "provider `{s}`: only `openai` takes an API and model suffix (`openai:chat:<model>`)"
            )),
        }
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())?;
        if self.api != ApiFlavor::Chat || self.model.is_some() {
            let api = match self.api {
                ApiFlavor::Chat => "chat",
                ApiFlavor::Responses => "responses",
            };
            write!(f, ":{api}")?;
            if let Some(m) = &self.model {
                write!(f, ":{m}")?;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for ProviderId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ProviderId::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for ProviderId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_parse() {
        let p = ProviderId::parse("openai:chat:gpt-4o").unwrap();
        assert_eq!(p.kind, ProviderKind::Openai);
        assert_eq!(p.model.as_deref(), Some("gpt-4o"));
        assert_eq!(p.to_string(), "openai:chat:gpt-4o");
        let p = ProviderId::parse("openai:responses:gpt-4o").unwrap();
        assert_eq!(p.api, ApiFlavor::Responses);
        assert_eq!(
            ProviderId::parse("azure-openai").unwrap().kind,
            ProviderKind::AzureOpenai
        );
        assert!(ProviderId::parse("openia")
            .unwrap_err()
            .contains("unknown provider"));
        assert!(ProviderId::parse("anthropic:chat:x").is_err());
    }

    #[test]
    fn unknown_target_field_is_rejected() {
        let err =
            serde_yaml::from_str::<TargetSpec>("id: a\nprovider: openai\nmodel: m\nbase_ur: x\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("unknown field `base_ur`"), "{err}");
    }
}
