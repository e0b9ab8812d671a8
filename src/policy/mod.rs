//! The policy engine: every request passes `policies.chain` in order on the way in
//! (before anything reaches a provider) and again on the way out.
//!
//! Policies are pure: no I/O. Each one lives in its own file, parses its own config
//! block (`policy.<name>`) and implements [`Policy`]. `build` is the only `match` on
//! policy names.

pub mod agent_firewall;
pub mod audit_logger;
pub mod chain;
pub mod data_routing;
pub mod dlp_filter;
pub mod gate;
pub mod lists;
pub mod pii_detector;
pub mod prompt_injection;
pub mod safety_filter;
pub mod scan;
pub mod token_hold;

use serde::{Deserialize, Serialize};

use crate::openai::{ChatRequest, ChatResponse};

pub use chain::{ChainOutcome, PolicyChain, StreamFilter};
pub use token_hold::TokenHold;

/// Policy names kt knows (the public product's names).
pub const KNOWN: &[&str] = &[
    prompt_injection::NAME,
    audit_logger::NAME,
    pii_detector::NAME,
    dlp_filter::NAME,
    safety_filter::NAME,
    agent_firewall::NAME,
    data_routing::NAME,
];

pub fn is_known(name: &str) -> bool {
    KNOWN.contains(&name)
}

/// Checks a `policy.<name>` block: unknown policy or invalid fields.
pub fn check_block(name: &str, block: &serde_yaml::Value) -> Result<(), String> {
    build(name, Some(block)).map(|_| ())
}

/// Builds one policy from its config block (absent block: defaults).
pub fn build(name: &str, block: Option<&serde_yaml::Value>) -> Result<Box<dyn Policy>, String> {
    let empty = serde_yaml::Value::Mapping(serde_yaml::Mapping::new());
    let block = block.unwrap_or(&empty);
    match name {
        audit_logger::NAME => Ok(Box::new(audit_logger::AuditLogger::from_block(block)?)),
        pii_detector::NAME => Ok(Box::new(pii_detector::PiiDetector::from_block(block)?)),
        dlp_filter::NAME => Ok(Box::new(dlp_filter::DlpFilter::from_block(block)?)),
        safety_filter::NAME => Ok(Box::new(safety_filter::SafetyFilter::from_block(block)?)),
        agent_firewall::NAME => Ok(Box::new(agent_firewall::AgentFirewall::from_block(block)?)),
        data_routing::NAME => Ok(Box::new(data_routing::DataRoutingPolicy::from_block(
            block,
        )?)),
        prompt_injection::NAME => Ok(Box::new(prompt_injection::PromptInjection::from_block(
            block,
        )?)),
        other => Err(format!("unknown policy kind `{other}`")),
    }
}

/// Parses a policy's typed spec from its block. Errors read "`policy.<name>.<path>`:
/// <what>" with the path of the bad field, so `kt policy lint` can point at it.
pub fn parse_block<T: serde::de::DeserializeOwned>(
    name: &str,
    block: &serde_yaml::Value,
) -> Result<T, String> {
    serde_path_to_error::deserialize(block).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        if at == "." {
            format!("`policy.{name}`: {inner}")
        } else {
            format!("`policy.{name}.{at}`: {inner}")
        }
    })
}

/// `mode: enforce | observe`. Observe records what the policy would have done and lets
/// the request through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Observe,
}

/// What a policy says about a request or response.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Allow,
    /// Content was rewritten (redaction).
    Redacted {
        reason: String,
        findings: Vec<Finding>,
    },
    /// Allowed, but worth recording.
    Flag {
        reason: String,
        score: Option<f64>,
        findings: Vec<Finding>,
    },
    /// Stop here: nothing goes upstream (input) or back to the client (output).
    Block {
        reason: String,
        message: String,
        score: Option<f64>,
        findings: Vec<Finding>,
    },
}

/// One thing a policy found, counted by type. Never holds the raw value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: String,
    pub count: u32,
}

impl Finding {
    pub fn new(kind: impl Into<String>, count: u32) -> Finding {
        Finding {
            kind: kind.into(),
            count,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Redact,
    Flag,
    Block,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Redact => "redact",
            Verdict::Flag => "flag",
            Verdict::Block => "block",
        }
    }

    /// The most severe of two verdicts.
    pub fn max(self, other: Verdict) -> Verdict {
        fn rank(v: Verdict) -> u8 {
            match v {
                Verdict::Allow => 0,
                Verdict::Flag => 1,
                Verdict::Redact => 2,
                Verdict::Block => 3,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Input,
    Output,
}

impl Phase {
    /// As serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Input => "input",
            Phase::Output => "output",
        }
    }
}

/// Facts about the request that policies may read.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: String,
    pub model: String,
    pub key_name: Option<String>,
    pub team: Option<String>,
}

/// A policy that failed to evaluate (what `--fail-mode` decides about).
#[derive(Debug, thiserror::Error)]
#[error("policy `{policy}` failed: {message}")]
pub struct PolicyError {
    pub policy: String,
    pub message: String,
}

/// A policy of the chain. Both phases default to allowing.
pub trait Policy: Send + Sync {
    fn name(&self) -> &'static str;

    fn mode(&self) -> Mode {
        Mode::Enforce
    }

    /// Decides on the request. A policy that changes `req` must return
    /// `Decision::Redacted` (or block): the gateway forwards the client's own bytes
    /// when no policy rewrote the request (`ChainOutcome::rewrote`).
    fn on_input(
        &self,
        _ctx: &RequestContext,
        _req: &mut ChatRequest,
    ) -> Result<Decision, PolicyError> {
        Ok(Decision::Allow)
    }

    fn on_output(
        &self,
        _ctx: &RequestContext,
        _resp: &mut ChatResponse,
    ) -> Result<Decision, PolicyError> {
        Ok(Decision::Allow)
    }

    /// A filter over streamed text that rewrites it as it flows (redaction), if this
    /// policy rewrites output.
    fn stream_filter(&self) -> Option<Box<dyn TextFilter>> {
        None
    }

    /// For the audit logger: what the store must do with this configuration's events.
    fn audit(&self) -> Option<&audit_logger::AuditSettings> {
        None
    }
}

/// Rewrites streamed text incrementally. `push` returns what can be emitted now (holding
/// back only what a match could still span); `finish` returns the rest.
pub trait TextFilter: Send {
    fn push(&mut self, text: &str) -> String;
    fn finish(&mut self) -> String;
    /// Findings so far, for the event.
    fn findings(&self) -> Vec<Finding>;
}
