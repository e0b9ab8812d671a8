//! `audit-logger`: decides what the event store keeps for requests under this
//! configuration (retention, payloads, hash chaining). It never blocks.

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
