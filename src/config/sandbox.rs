//! The built-in sandbox config: what `kt gateway run` serves when no `--policy-config` is
//! given. A local `mock` provider that needs no key or network, and the default chain.

pub const SANDBOX_YAML: &str = r#"# kt built-in sandbox: an offline mock provider and the default policy chain.
pack:
  name: sandbox
  version: 1.0.0
  enabled: true
providers:
  strategy: single
  targets:
    - id: sandbox-mock
      provider: mock
      model: kt-sandbox
      description: built-in offline mock (no key, no network)
    - id: sandbox-embedding
      provider: mock
      model: kt-sandbox-embedding
      description: built-in offline embeddings (hashed words, 1536 dimensions)
models:
  aliases:
    gpt-4o: kt-sandbox
    gpt-4o-mini: kt-sandbox
    gpt-4.1: kt-sandbox
    gpt-4.1-mini: kt-sandbox
    gpt-3.5-turbo: kt-sandbox
    text-embedding-3-small: kt-sandbox-embedding
    text-embedding-3-large: kt-sandbox-embedding
    text-embedding-ada-002: kt-sandbox-embedding
policies:
  chain:
    - prompt-injection
    - pii-detector
    - audit-logger
policy:
  pii-detector:
    action: redact
  audit-logger:
    retention_days: 30
"#;
