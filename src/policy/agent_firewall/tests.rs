//! `agent-firewall` decisions, from the fixtures in `testdata/policy/agent-firewall/`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::openai::{Choice, FunctionCall, FunctionDef, Message, Tool, ToolCall};

#[derive(Deserialize)]
struct Case {
    name: String,
    phase: String,
    #[serde(default)]
    tools: Vec<String>,
    #[serde(default)]
    calls: Vec<(String, String)>,
    expect: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    findings: Option<BTreeMap<String, u32>>,
}

fn fixture() -> AgentFirewall {
    let block: serde_yaml::Value = serde_yaml::from_str(include_str!(
        "../../../testdata/policy/agent-firewall/policy.yaml"
    ))
    .unwrap();
    AgentFirewall::from_block(&block).unwrap()
}

fn calls(list: &[(String, String)]) -> Option<Vec<ToolCall>> {
    (!list.is_empty()).then(|| {
        list.iter()
            .enumerate()
            .map(|(i, (name, args))| ToolCall {
                custom: None,
                id: format!("call_{i}"),
                kind: "function".into(),
                function: FunctionCall {
                    name: name.clone(),
                    arguments: args.clone(),
                },
            })
            .collect()
    })
}

fn tools(names: &[&str]) -> Option<Vec<Tool>> {
    Some(
        names
            .iter()
            .map(|n| Tool {
                kind: "function".into(),
                function: FunctionDef {
                    name: (*n).to_string(),
                    ..FunctionDef::default()
                },
                ..Tool::default()
            })
            .collect(),
    )
}

fn assistant(calls: Option<Vec<ToolCall>>) -> Message {
    Message {
        role: Role::Assistant,
        tool_calls: calls,
        ..Message::default()
    }
}

#[test]
fn fixture_cases() {
    let fw = fixture();
    let ctx = RequestContext::default();
    let cases: Vec<Case> = serde_yaml::from_str(include_str!(
        "../../../testdata/policy/agent-firewall/cases.yaml"
    ))
    .unwrap();
    for c in cases {
        let decision = if c.phase == "input" {
            let mut req = ChatRequest {
                model: "m".into(),
                messages: vec![Message::text(Role::User, "hi"), assistant(calls(&c.calls))],
                tools: (!c.tools.is_empty())
                    .then(|| tools(&c.tools.iter().map(String::as_str).collect::<Vec<_>>()))
                    .flatten(),
                ..ChatRequest::default()
            };
            fw.on_input(&ctx, &mut req).unwrap()
        } else {
            let mut resp = ChatResponse {
                choices: vec![Choice {
                    message: assistant(calls(&c.calls)),
                    ..Choice::default()
                }],
                ..ChatResponse::default()
            };
            fw.on_output(&ctx, &mut resp).unwrap()
        };
        match (&decision, c.expect.as_str()) {
            (Decision::Allow, "allow") => {}
            (
                Decision::Block {
                    reason,
                    message,
                    findings,
                    ..
                },
                "block",
            ) => {
                assert_eq!(Some(reason), c.reason.as_ref(), "{}", c.name);
                if let Some(m) = &c.message {
                    assert_eq!(message, m, "{}", c.name);
                }
                if let Some(f) = &c.findings {
                    let got: BTreeMap<String, u32> =
                        findings.iter().map(|f| (f.kind.clone(), f.count)).collect();
                    assert_eq!(&got, f, "{}", c.name);
                }
            }
            _ => panic!("{}: got {decision:?}, want {}", c.name, c.expect),
        }
    }
}

#[test]
fn total_calls_across_the_history_are_limited() {
    let fw = fixture();
    let turn = || {
        assistant(calls(&vec![
            ("get_weather".to_string(), "{}".to_string());
            2
        ]))
    };
    let mut req = ChatRequest {
        model: "m".into(),
        messages: vec![turn(), turn(), turn(), turn()],
        ..ChatRequest::default()
    };
    let d = fw.on_input(&RequestContext::default(), &mut req).unwrap();
    let Decision::Block { message, .. } = d else {
        panic!("{d:?}")
    };
    assert_eq!(
        message,
        "Your request was blocked because the conversation has 8 tool calls, more than the 6 the agent firewall allows."
    );
}

#[test]
fn denied_tools_can_be_removed_instead() {
    let fw = AgentFirewall::from_block(
        &serde_yaml::from_str("deny_tools: [shell]\nremove_denied_tools: true").unwrap(),
    )
    .unwrap();
    let mut req = ChatRequest {
        model: "m".into(),
        messages: vec![Message::text(Role::User, "hi")],
        tools: tools(&["shell", "search"]),
        tool_choice: Some(json!({"type": "function", "function": {"name": "shell"}})),
        ..ChatRequest::default()
    };
    let d = fw.on_input(&RequestContext::default(), &mut req).unwrap();
    assert_eq!(
        d,
        Decision::Redacted {
            reason: "tools_removed".into(),
            findings: vec![Finding::new("tool_not_allowed", 1)]
        }
    );
    let names: Vec<&str> = req
        .tools
        .iter()
        .flatten()
        .map(|t| t.function.name.as_str())
        .collect();
    assert_eq!(names, ["search"]);
    assert_eq!(
        req.tool_choice, None,
        "a forced removed tool is no longer forced"
    );
}

/// Custom tools are offered tools too; under `remove_denied_tools` a removed tool also
/// leaves a `tool_choice` that names it (a custom one, or an `allowed_tools` subset).
#[test]
fn removed_tools_leave_the_tool_choice_that_names_them() {
    let fw = AgentFirewall::from_block(
        &serde_yaml::from_str("deny_tools: [shell]\nremove_denied_tools: true").unwrap(),
    )
    .unwrap();
    let ctx = RequestContext::default();
    let custom = |n: &str| json!({"type": "custom", "custom": {"name": n}});
    let function = |n: &str| json!({"type": "function", "function": {"name": n}});
    let request = |tool_choice: serde_json::Value| -> ChatRequest {
        serde_json::from_value(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [custom("shell"), function("search"), custom("notes")],
            "tool_choice": tool_choice}),
        )
        .unwrap()
    };
    let names = |req: &ChatRequest| -> Vec<String> {
        req.tools
            .iter()
            .flatten()
            .map(|t| t.name().to_string())
            .collect()
    };

    let mut req = request(custom("shell"));
    assert!(matches!(
        fw.on_input(&ctx, &mut req).unwrap(),
        Decision::Redacted { .. }
    ));
    assert_eq!(names(&req), ["search", "notes"]);
    assert_eq!(req.tool_choice, None);

    let mut req = request(custom("notes"));
    fw.on_input(&ctx, &mut req).unwrap();
    assert_eq!(req.tool_choice, Some(custom("notes")));

    let allowed = |tools: Vec<serde_json::Value>| json!({"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": tools}});
    let mut req = request(allowed(vec![custom("shell"), function("search")]));
    fw.on_input(&ctx, &mut req).unwrap();
    assert_eq!(req.tool_choice, Some(allowed(vec![function("search")])));
    let mut req = request(allowed(vec![custom("shell")]));
    fw.on_input(&ctx, &mut req).unwrap();
    assert_eq!(req.tool_choice, None, "nothing left to allow");
    let mut req = request(json!("required"));
    fw.on_input(&ctx, &mut req).unwrap();
    assert_eq!(req.tool_choice, Some(json!("required")));

    // Enforcing instead: a denied custom tool blocks the request by name.
    let fw =
        AgentFirewall::from_block(&serde_yaml::from_str("deny_tools: [shell]").unwrap()).unwrap();
    let d = fw.on_input(&ctx, &mut request(json!("auto"))).unwrap();
    assert!(
        matches!(&d, Decision::Block { message, .. } if message.contains("`shell`")),
        "{d:?}"
    );
}

/// The deprecated function calling (`functions`, `function_call`) is checked like tools:
/// OpenAI still serves it, so it must not be a way around the firewall.
#[test]
fn deprecated_functions_are_checked_like_tools() {
    let fw = fixture();
    let ctx = RequestContext::default();
    let request = |v: serde_json::Value| -> ChatRequest { serde_json::from_value(v).unwrap() };
    let user = json!([{"role": "user", "content": "hi"}]);

    let mut offered = request(json!({"model": "m", "messages": user,
        "functions": [{"name": "get_weather"}, {"name": "shell"}]}));
    let d = fw.on_input(&ctx, &mut offered).unwrap();
    let Decision::Block {
        reason, message, ..
    } = d
    else {
        panic!("{d:?}")
    };
    assert_eq!(reason, "tool_not_allowed");
    assert!(message.contains("`shell`"), "{message}");

    let fine = json!({"model": "m", "messages": user, "functions": [{"name": "get_weather"}]});
    assert_eq!(
        fw.on_input(&ctx, &mut request(fine)).unwrap(),
        Decision::Allow
    );

    // A call in the history, and one in the answer, with their argument rules.
    let mut history = request(json!({"model": "m", "messages": [
        {"role": "user", "content": "pay"},
        {"role": "assistant", "content": null, "function_call": {"name": "transfer_funds",
            "arguments": "{\"amount\": 5000, \"currency\": \"USD\"}"}},
        {"role": "function", "name": "transfer_funds", "content": "ok"}]}));
    let d = fw.on_input(&ctx, &mut history).unwrap();
    assert!(
        matches!(&d, Decision::Block { reason, .. } if reason == "argument_not_allowed"),
        "{d:?}"
    );
    let mut resp = ChatResponse {
        choices: vec![Choice {
            message: serde_json::from_value(json!({"role": "assistant", "content": null,
                "function_call": {"name": "reset_admin", "arguments": "{}"}}))
            .unwrap(),
            ..Choice::default()
        }],
        ..ChatResponse::default()
    };
    let d = fw.on_output(&ctx, &mut resp).unwrap();
    let Decision::Block { message, .. } = d else {
        panic!("{d:?}")
    };
    assert_eq!(
        message,
        "The response was blocked because the model tried to call the tool `reset_admin`, which the agent firewall does not allow."
    );

    // `remove_denied_tools`: denied functions go, and so does a `function_call` forcing one.
    let fw = AgentFirewall::from_block(
        &serde_yaml::from_str("deny_tools: [shell]\nremove_denied_tools: true").unwrap(),
    )
    .unwrap();
    let mut req = request(json!({"model": "m", "messages": user,
        "functions": [{"name": "shell"}, {"name": "search"}], "function_call": {"name": "shell"}}));
    let d = fw.on_input(&ctx, &mut req).unwrap();
    assert!(matches!(d, Decision::Redacted { .. }), "{d:?}");
    assert_eq!(req.extra["functions"], json!([{"name": "search"}]));
    assert!(!req.extra.contains_key("function_call"));
    let mut req = request(json!({"model": "m", "messages": user,
        "functions": [{"name": "shell"}], "function_call": "auto"}));
    fw.on_input(&ctx, &mut req).unwrap();
    assert!(!req.extra.contains_key("functions"));
    assert!(!req.extra.contains_key("function_call"));
    let mut req = request(json!({"model": "m", "messages": user,
        "functions": [{"name": "search"}], "function_call": {"name": "search"}}));
    assert_eq!(fw.on_input(&ctx, &mut req).unwrap(), Decision::Allow);
    assert_eq!(req.extra["function_call"], json!({"name": "search"}));
}

#[test]
fn globs() {
    assert!(glob("search_*", "search_docs"));
    assert!(glob("*_admin", "reset_admin"));
    assert!(glob("get_?eather", "get_weather"));
    assert!(glob("*", ""));
    assert!(glob("a*b*c", "aXXbYYc"));
    assert!(!glob("a*b*c", "aXXbYY"));
    assert!(!glob("search_*", "research_docs"));
}

#[test]
fn config_errors_name_the_path() {
    let err = |y: &str| {
        AgentFirewall::from_block(&serde_yaml::from_str(y).unwrap())
            .err()
            .unwrap()
    };
    assert!(err("arguments: {f: {x: '('}}")
        .starts_with("`policy.agent-firewall.arguments.f.x`: invalid regex `(`"));
    assert!(err("deny_tool: [x]").contains("unknown field `deny_tool`"));
    assert!(err("arguments: {f: {x: {maxLenght: 3}}}").contains("unknown field `maxLenght`"));
    assert!(err("deny_tools: ['']").contains("must not be empty"));
}
