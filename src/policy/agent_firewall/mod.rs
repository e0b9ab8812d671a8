//! `agent-firewall`: what tools an agent may be offered and may call.
//!
//! - `allow_tools` / `deny_tools`: tool names or globs (`search_*`, `?`); deny wins, and
//!   with an allow list only listed tools pass.
//! - `arguments`: per tool (name or glob), per argument (a dotted path into the JSON
//!   arguments), a JSON Schema subset or a regex ([`schema`]).
//! - `max_tool_calls`: calls one assistant turn may make; `max_total_tool_calls`: calls a
//!   conversation may carry (bounds an agent loop, which resends its history).
//!
//! Input: the `tools` offered (blocked, or removed with `remove_denied_tools: true`) and
//! every assistant `tool_calls` in the history. Output: the `tool_calls` of the response.
//! The deprecated function calling is read alike: `functions` are offered tools, a
//! message's `function_call` is a call (OpenAI still serves both); and so are custom
//! tools (`type: "custom"`), whose calls' input is free text.

mod schema;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Decision, Finding, Mode, Policy, PolicyError, RequestContext};
use crate::openai::{ChatRequest, ChatResponse, Message, Role};
pub use schema::{ArgRule, ArgRuleSpec, SchemaSpec};

pub const NAME: &str = "agent-firewall";

/// The `policy.agent-firewall` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallSpec {
    #[serde(default)]
    pub mode: Mode,
    /// When set, only these tools (names or globs) pass.
    #[serde(default)]
    pub allow_tools: Option<Vec<String>>,
    #[serde(default)]
    pub deny_tools: Vec<String>,
    #[serde(default)]
    pub max_tool_calls: Option<usize>,
    #[serde(default)]
    pub max_total_tool_calls: Option<usize>,
    /// Remove denied tools from `tools` instead of blocking the request.
    #[serde(default)]
    pub remove_denied_tools: bool,
    /// Tool name or glob → argument path → rule.
    #[serde(default)]
    pub arguments: BTreeMap<String, BTreeMap<String, ArgRuleSpec>>,
}

pub struct AgentFirewall {
    spec: FirewallSpec,
    /// (tool glob, [(argument path, rule)])
    rules: Vec<(String, Vec<(String, ArgRule)>)>,
}

/// `*` matches any run of characters, `?` exactly one.
pub fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        match p.get(i) {
            Some('*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(c) if *c == '?' || Some(c) == n.get(j) => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p.get(i..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

/// Why a call is refused: the finding kind and, for arguments, which and why.
enum Refusal {
    NotAllowed,
    InvalidArguments,
    Argument { path: String, why: String },
}

impl Refusal {
    fn kind(&self) -> &'static str {
        match self {
            Refusal::NotAllowed => "tool_not_allowed",
            Refusal::InvalidArguments => "invalid_arguments",
            Refusal::Argument { .. } => "argument_not_allowed",
        }
    }

    /// The end of a sentence about a call to `name`.
    fn describe(&self, name: &str, output: bool) -> String {
        match (self, output) {
            (Refusal::NotAllowed, _) => {
                format!("the tool `{name}`, which the agent firewall does not allow")
            }
            (Refusal::InvalidArguments, false) => {
                format!("the tool `{name}` whose arguments are not a valid JSON object")
            }
            (Refusal::InvalidArguments, true) => {
                format!("the tool `{name}` with arguments that are not a valid JSON object")
            }
            (Refusal::Argument { path, why }, false) => {
                format!("the tool `{name}` whose argument `{path}` is not allowed: {why}")
            }
            (Refusal::Argument { path, why }, true) => {
                format!("the tool `{name}` with an argument `{path}` that is not allowed: {why}")
            }
        }
    }
}

/// Violations of one phase: counts by kind and the first one's sentence.
#[derive(Default)]
struct Violations {
    counts: BTreeMap<&'static str, u32>,
    first: Option<(&'static str, String)>,
}

impl Violations {
    fn add(&mut self, kind: &'static str, message: impl FnOnce() -> String) {
        *self.counts.entry(kind).or_default() += 1;
        if self.first.is_none() {
            self.first = Some((kind, message()));
        }
    }

    fn findings(&self) -> Vec<Finding> {
        self.counts
            .iter()
            .map(|(k, n)| Finding::new(*k, *n))
            .collect()
    }
}

fn lookup<'a>(args: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(args, |v, key| v.get(key))
}

impl AgentFirewall {
    pub fn from_block(block: &serde_yaml::Value) -> Result<AgentFirewall, String> {
        AgentFirewall::new(super::parse_block(NAME, block)?)
    }

    pub fn new(spec: FirewallSpec) -> Result<AgentFirewall, String> {
        let mut rules = Vec::new();
        for (tool, args) in &spec.arguments {
            let mut compiled = Vec::new();
            for (path, rule) in args {
                let r = ArgRule::compile(rule)
                    .map_err(|e| format!("`policy.{NAME}.arguments.{tool}.{path}`: {e}"))?;
                compiled.push((path.clone(), r));
            }
            rules.push((tool.clone(), compiled));
        }
        let globs = spec
            .deny_tools
            .iter()
            .chain(spec.allow_tools.iter().flatten());
        if globs.clone().any(|g| g.trim().is_empty()) {
            return Err(format!(
                "`policy.{NAME}`: tool names in `allow_tools` and `deny_tools` must not be empty"
            ));
        }
        Ok(AgentFirewall { spec, rules })
    }

    pub fn is_allowed(&self, tool: &str) -> bool {
        !self.spec.deny_tools.iter().any(|g| glob(g, tool))
            && self
                .spec
                .allow_tools
                .as_ref()
                .is_none_or(|allow| allow.iter().any(|g| glob(g, tool)))
    }

    /// One call: the tool's name and what it passes (JSON arguments; a custom tool's
    /// free-text input, which argument rules refuse as not a JSON object).
    fn check_call(&self, name: &str, arguments: &str) -> Option<Refusal> {
        if !self.is_allowed(name) {
            return Some(Refusal::NotAllowed);
        }
        let mut applicable = self
            .rules
            .iter()
            .filter(|(g, _)| glob(g, name))
            .flat_map(|(_, rules)| rules.iter())
            .peekable();
        applicable.peek()?;
        let args: Value = match serde_json::from_str(arguments) {
            Ok(v @ Value::Object(_)) => v,
            _ => return Some(Refusal::InvalidArguments),
        };
        for (path, rule) in applicable {
            let refused = match lookup(&args, path) {
                None if rule.required => Some("it is required".to_string()),
                None => None,
                Some(v) => rule.check(v).err(),
            };
            if let Some(why) = refused {
                return Some(Refusal::Argument {
                    path: path.clone(),
                    why,
                });
            }
        }
        None
    }

    fn decide(&self, v: &Violations, removed: u32) -> Decision {
        if let Some((kind, message)) = &v.first {
            return Decision::Block {
                reason: (*kind).to_string(),
                message: message.clone(),
                score: None,
                findings: v.findings(),
            };
        }
        if removed > 0 {
            return Decision::Redacted {
                reason: "tools_removed".to_string(),
                findings: vec![Finding::new("tool_not_allowed", removed)],
            };
        }
        Decision::Allow
    }

    /// Offered tools: denied ones are refused, or removed.
    fn check_definitions(&self, req: &mut ChatRequest, v: &mut Violations) -> u32 {
        if self.spec.remove_denied_tools {
            let removed = self.remove_tools(req) + self.remove_functions(req);
            return u32::try_from(removed).unwrap_or(u32::MAX);
        }
        let tools = req.tools.iter().flatten().map(|t| t.name());
        for name in tools.chain(function_names(req)) {
            if !self.is_allowed(name) {
                v.add("tool_not_allowed", || {
                    format!("Your request was blocked because it offers the tool `{name}`, which the agent firewall does not allow.")
                });
            }
        }
        0
    }

    /// `remove_denied_tools` on `tools` (and a `tool_choice` that forces a removed one).
    /// Nothing removed: the request stays exactly as sent (a policy that changes it says
    /// so with `Redacted`, see `Policy::on_input`).
    fn remove_tools(&self, req: &mut ChatRequest) -> usize {
        let Some(tools) = &mut req.tools else {
            return 0;
        };
        let before = tools.len();
        tools.retain(|t| self.is_allowed(t.name()));
        let removed = before - tools.len();
        if removed == 0 {
            return 0;
        }
        if tools.is_empty() {
            req.tools = None;
            req.tool_choice = None;
            return removed;
        }
        let offered =
            |name: Option<&str>| name.is_some_and(|n| tools.iter().any(|t| t.name() == n));
        let choice = req.tool_choice.as_mut();
        let drop_choice = match choice {
            // `allowed_tools`: the subset the model may use loses the removed ones too.
            Some(c) if c.get("type").and_then(Value::as_str) == Some("allowed_tools") => {
                match c.pointer_mut("/allowed_tools/tools") {
                    Some(Value::Array(list)) => {
                        list.retain(|t| offered(named(t)));
                        list.is_empty()
                    }
                    _ => false,
                }
            }
            Some(c) => named(c).is_some() && !offered(named(c)),
            None => false,
        };
        if drop_choice {
            req.tool_choice = None;
        }
        removed
    }

    /// The same on the deprecated `functions` (and a `function_call` that forces one).
    fn remove_functions(&self, req: &mut ChatRequest) -> usize {
        let Some(Value::Array(list)) = req.extra.get_mut("functions") else {
            return 0;
        };
        let before = list.len();
        list.retain(|f| function_name(f).is_some_and(|n| self.is_allowed(n)));
        let removed = before - list.len();
        if removed == 0 {
            return 0;
        }
        let forced = req
            .extra
            .get("function_call")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str);
        let offered = function_names(req);
        let keep_choice = match forced {
            Some(name) => offered.clone().any(|n| n == name),
            None => true,
        };
        let none_left = offered.count() == 0;
        if none_left {
            req.extra.remove("functions");
        }
        if none_left || !keep_choice {
            req.extra.remove("function_call");
        }
        removed
    }

    /// Checks one turn's calls (its tool calls and its deprecated `function_call`).
    fn check_turn(&self, m: &Message, v: &mut Violations, output: bool) -> usize {
        let legacy = m.function_call();
        let tools = m.tool_calls.iter().flatten().map(|c| (c.name(), c.input()));
        let legacy = legacy
            .as_ref()
            .map(|c| (c.name.as_str(), c.arguments.as_str()));
        let calls: Vec<(&str, &str)> = tools.chain(legacy).collect();
        if let Some(max) = self.spec.max_tool_calls.filter(|max| calls.len() > *max) {
            v.add("too_many_tool_calls", || {
                if output {
                    format!("The response was blocked because the model made {} tool calls at once, more than the {max} the agent firewall allows.", calls.len())
                } else {
                    format!("Your request was blocked because one assistant turn makes {} tool calls, more than the {max} the agent firewall allows.", calls.len())
                }
            });
        }
        for (name, arguments) in &calls {
            if let Some(r) = self.check_call(name, arguments) {
                v.add(r.kind(), || {
                    let what = r.describe(name, output);
                    if output {
                        format!("The response was blocked because the model tried to call {what}.")
                    } else {
                        format!("Your request was blocked because the conversation contains a call to {what}.")
                    }
                });
            }
        }
        calls.len()
    }
}

/// The tool a `tool_choice` (or an `allowed_tools` entry) names.
fn named(choice: &Value) -> Option<&str> {
    choice
        .pointer("/function/name")
        .or_else(|| choice.pointer("/custom/name"))
        .and_then(Value::as_str)
}

/// The names of the deprecated `functions` a request offers.
fn function_names(req: &ChatRequest) -> impl Iterator<Item = &str> + Clone {
    req.extra
        .get("functions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(function_name)
}

fn function_name(f: &Value) -> Option<&str> {
    f.get("name").and_then(Value::as_str)
}

impl Policy for AgentFirewall {
    fn name(&self) -> &'static str {
        NAME
    }

    fn mode(&self) -> Mode {
        self.spec.mode
    }

    fn on_input(
        &self,
        _ctx: &RequestContext,
        req: &mut ChatRequest,
    ) -> Result<Decision, PolicyError> {
        let mut v = Violations::default();
        let removed = self.check_definitions(req, &mut v);
        let mut total = 0;
        for m in req.messages.iter().filter(|m| m.role == Role::Assistant) {
            total += self.check_turn(m, &mut v, false);
        }
        if let Some(max) = self.spec.max_total_tool_calls.filter(|max| total > *max) {
            v.add("too_many_tool_calls", || {
                format!("Your request was blocked because the conversation has {total} tool calls, more than the {max} the agent firewall allows.")
            });
        }
        Ok(self.decide(&v, removed))
    }

    fn on_output(
        &self,
        _ctx: &RequestContext,
        resp: &mut ChatResponse,
    ) -> Result<Decision, PolicyError> {
        let mut v = Violations::default();
        for c in &resp.choices {
            self.check_turn(&c.message, &mut v, true);
        }
        Ok(self.decide(&v, 0))
    }
}

#[cfg(test)]
mod tests;
