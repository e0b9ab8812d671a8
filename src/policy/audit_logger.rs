//! `audit-logger`: decides what the event store keeps for requests under this
//! configuration (retention, payloads, hash chaining) and how durably (`durability`).
//! The policy itself never blocks; `strict` durability makes the event writer hold the
//! answer until the event is committed (`store::writer`).

use serde::{Deserialize, Serialize};

use super::{Mode, Policy};

pub const NAME: &str = "audit-logger";

/// What is stored of request and response bodies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    None,
    #[default]
    Redacted,
    Full,
}

/// When a request's answer may leave the gateway relative to its event's commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// The answer never waits on the disk; events are committed in batches (a 100 ms
    /// window), so a SIGKILL (or power loss) can lose the last batch window.
    #[default]
    Batched,
    /// The answer is sent only once its event is committed (and synced to disk); if it
    /// cannot be committed in time the client gets `503 audit_unavailable` instead.
    Strict,
}

impl Durability {
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Batched => "batched",
            Durability::Strict => "strict",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    #[serde(default)]
    pub mode: Mode,
    /// Hash-chain every event row so edits and deletions are detectable.
    #[serde(default)]
    pub immutable: bool,
    /// Events older than this are pruned in the background.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Also record reads (`/v1/models`, `/v1/events`).
    #[serde(default)]
    pub log_all_access: bool,
    #[serde(default)]
    pub payload: Payload,
    #[serde(default)]
    pub durability: Durability,
}

/// The audit-logger settings of a configuration whose chain includes it.
pub fn settings_of(config: &crate::config::Config) -> Option<AuditSettings> {
    if !config.chain.iter().any(|n| n == NAME) {
        return None;
    }
    let empty = serde_yaml::Value::Mapping(serde_yaml::Mapping::new());
    super::parse_block(NAME, config.policy_blocks.get(NAME).unwrap_or(&empty)).ok()
}

pub struct AuditLogger {
    settings: AuditSettings,
}

impl AuditLogger {
    pub fn from_block(block: &serde_yaml::Value) -> Result<AuditLogger, String> {
        Ok(AuditLogger {
            settings: super::parse_block(NAME, block)?,
        })
    }
}

impl Policy for AuditLogger {
    fn name(&self) -> &'static str {
        NAME
    }

    fn mode(&self) -> Mode {
        self.settings.mode
    }

    fn audit(&self) -> Option<&AuditSettings> {
        Some(&self.settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<AuditSettings, String> {
        super::super::parse_block(NAME, &serde_yaml::from_str(yaml).unwrap())
    }

    #[test]
    fn durability_defaults_to_batched_and_accepts_strict() {
        assert_eq!(parse("{}").unwrap().durability, Durability::Batched);
        assert_eq!(
            parse("durability: strict").unwrap().durability,
            Durability::Strict
        );
        assert_eq!(
            parse("durability: batched").unwrap().durability,
            Durability::Batched
        );
    }

    #[test]
    fn an_unknown_durability_names_its_path() {
        let e = parse("durability: fsync").unwrap_err();
        assert!(e.starts_with("`policy.audit-logger.durability`:"), "{e}");
        assert!(e.contains("batched") && e.contains("strict"), "{e}");
    }
}
