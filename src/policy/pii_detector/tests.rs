//! `pii-detector` decisions, from the fixtures in `testdata/policy/pii-detector/`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;
use crate::openai::{Content, Message, Role};

#[derive(Deserialize)]
struct Case {
    #[serde(default)]
    config: Option<String>,
    text: String,
    #[serde(default)]
    redacted: Option<String>,
    findings: BTreeMap<String, u32>,
}

fn cases() -> Vec<Case> {
    serde_yaml::from_str(include_str!(
        "../../../testdata/policy/pii-detector/cases.yaml"
    ))
    .unwrap()
}

fn policy(yaml: &str) -> PiiDetector {
    let block: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    PiiDetector::from_block(&block).unwrap()
}

fn user(text: &str) -> ChatRequest {
    ChatRequest {
        model: "m".into(),
        messages: vec![Message::text(Role::User, text)],
        ..ChatRequest::default()
    }
}

/// An assistant's answer of `text`.
fn answer(text: &str) -> ChatResponse {
    let mut resp = ChatResponse::default();
    resp.choices.push(crate::openai::Choice {
        message: Message {
            role: Role::Assistant,
            content: Some(Content::Text(text.into())),
            ..Message::default()
        },
        ..crate::openai::Choice::default()
    });
    resp
}

fn findings_map(f: &[Finding]) -> BTreeMap<String, u32> {
    f.iter().map(|f| (f.kind.clone(), f.count)).collect()
}

#[test]
fn fixture_cases_redact_whole_texts_and_streams_alike() {
    let ctx = RequestContext::default();
    for case in cases() {
        let p = policy(case.config.as_deref().unwrap_or("{}"));
        let expected = case.redacted.clone().unwrap_or_else(|| case.text.clone());
        let mut req = user(&case.text);
        let decision = p.on_input(&ctx, &mut req).unwrap();
        let got = req.messages[0].text_content();
        assert_eq!(got, expected, "input rewrite of {:?}", case.text);
        match decision {
            Decision::Allow => assert!(case.findings.is_empty(), "{:?}", case.text),
            Decision::Redacted { findings, .. } => {
                assert_eq!(findings_map(&findings), case.findings, "{:?}", case.text)
            }
            other => panic!("unexpected {other:?} for {:?}", case.text),
        }
        // The same text streamed in pieces of every size from 1 to 9 characters.
        let chars: Vec<char> = case.text.chars().collect();
        for size in 1..10 {
            let mut f = p.stream_filter().unwrap();
            let mut out = String::new();
            for piece in chars.chunks(size) {
                out.push_str(&f.push(&piece.iter().collect::<String>()));
            }
            out.push_str(&f.finish());
            assert_eq!(out, expected, "stream in pieces of {size}: {:?}", case.text);
            assert_eq!(findings_map(&f.findings()), case.findings);
        }
    }
}

#[test]
fn block_action_blocks_with_a_sentence_naming_what_was_found() {
    let p = policy("action: block");
    let mut req = user("mail a@b.io, card 4111 1111 1111 1111, and c@d.io");
    let d = p.on_input(&RequestContext::default(), &mut req).unwrap();
    let Decision::Block {
        reason,
        message,
        findings,
        ..
    } = d
    else {
        panic!("expected a block, got {d:?}");
    };
    assert_eq!(reason, "pii_detected");
    assert_eq!(
        message,
        "Your request was blocked because it contains sensitive data: a payment card number and an email address. Remove it and try again."
    );
    assert_eq!(
        findings,
        vec![Finding::new("credit_card", 1), Finding::new("email", 2)]
    );
    assert!(
        req.messages[0].text_content().contains("a@b.io"),
        "block does not rewrite"
    );
}

#[test]
fn every_role_and_tool_arguments_are_redacted() {
    let mut req: ChatRequest = serde_json::from_value(serde_json::json!({
        "model": "m",
        "messages": [
            {"role": "system", "content": "Support agent for ops@corp.example"},
            {"role": "user", "content": [{"type": "text", "text": "My SSN is 123-45-6789"}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "charge", "arguments": "{\"card\":4111111111111111,\"note\":\"for a@b.io\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "charged 4111 1111 1111 1111"}
        ]
    }))
    .unwrap();
    let d = p_default()
        .on_input(&RequestContext::default(), &mut req)
        .unwrap();
    let sent = serde_json::to_string(&req).unwrap();
    for raw in [
        "ops@corp.example",
        "123-45-6789",
        "4111111111111111",
        "a@b.io",
        "4111 1111",
    ] {
        assert!(!sent.contains(raw), "{raw} left in {sent}");
    }
    let args: serde_json::Value = serde_json::from_str(
        &req.messages[2].tool_calls.as_ref().unwrap()[0]
            .function
            .arguments,
    )
    .unwrap();
    assert_eq!(
        args,
        serde_json::json!({"card": "[CREDIT_CARD]", "note": "for [EMAIL]"})
    );
    let Decision::Redacted { findings, .. } = d else {
        panic!("{d:?}")
    };
    assert_eq!(
        findings_map(&findings),
        BTreeMap::from([
            ("credit_card".to_string(), 2),
            ("email".to_string(), 2),
            ("us_ssn".to_string(), 1)
        ])
    );
}

fn p_default() -> PiiDetector {
    policy("{}")
}

#[test]
fn output_is_redacted_or_blocked() {
    let resp = answer("Reach me at a@b.io");
    let ctx = RequestContext::default();
    let mut r = resp.clone();
    let d = p_default().on_output(&ctx, &mut r).unwrap();
    assert!(matches!(d, Decision::Redacted { .. }));
    assert_eq!(r.text(), "Reach me at [EMAIL]");
    let mut r = resp.clone();
    let d = policy("action: block").on_output(&ctx, &mut r).unwrap();
    let Decision::Block { message, .. } = d else {
        panic!("{d:?}")
    };
    assert_eq!(
        message,
        "The response was blocked because it contained sensitive data: an email address."
    );
}

#[test]
fn clean_text_is_allowed() {
    let mut req = user("What is the capital of France? Version 1.2.3, at 10:30, 42 items.");
    let d = p_default()
        .on_input(&RequestContext::default(), &mut req)
        .unwrap();
    assert_eq!(d, Decision::Allow);
}

#[test]
fn config_errors_name_the_field() {
    let err = |yaml: &str| {
        let block: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
        match PiiDetector::from_block(&block) {
            Ok(_) => panic!("{yaml} should fail"),
            Err(e) => e,
        }
    };
    assert!(err("actoin: block").contains("unknown field `actoin`"));
    assert!(err("action: warn").contains("unknown variant `warn`"));
    assert!(err("detect_patterns: [{name: x, pattern: '('}]")
        .contains("`policy.pii-detector.detect_patterns[0]`: invalid regex `(`"));
    assert!(err("detect_patterns: [{name: email, pattern: 'x'}]").contains("built-in"));
    assert!(err("redaction: {custom_markers: {emial: '<e>'}}").contains("unknown kind `emial`"));
    assert!(
        err("redaction: {include_metadata: true, preserve_length: true}")
            .contains("cannot both be true")
    );
    assert!(err("redaction: {marker_format: stars}").contains("unknown variant `stars`"));
}

#[test]
fn stream_holds_little_and_never_a_partial_value() {
    let p = p_default();
    let mut f = p.stream_filter().unwrap();
    let mut out = Vec::new();
    for piece in [
        "Sure! Write ",
        "to john.",
        "doe@exam",
        "ple.com and ",
        "pay with 4111 ",
        "1111 1111 ",
        "1111 today.",
    ] {
        out.push(f.push(piece));
    }
    out.push(f.finish());
    assert_eq!(out[0], "Sure! Write ");
    assert_eq!(out[1], "to ");
    assert_eq!(
        out.concat(),
        "Sure! Write to [EMAIL] and pay with [CREDIT_CARD] today."
    );
    for piece in &out {
        for raw in ["john", "doe", "exam", "4111", "1111"] {
            assert!(!piece.contains(raw), "{piece:?} leaks {raw}");
        }
    }
}

#[test]
fn apply_to_limits_the_sides_it_reads() {
    let ctx = RequestContext::default();
    let resp = answer("Reach me at a@b.io");

    // Input only: requests are redacted; answers and streams pass untouched, so a
    // stream's words are never held.
    let p = policy("apply_to: input");
    let mut req = user("mail a@b.io");
    assert!(matches!(
        p.on_input(&ctx, &mut req).unwrap(),
        Decision::Redacted { .. }
    ));
    assert_eq!(req.messages[0].text_content(), "mail [EMAIL]");
    let mut r = resp.clone();
    assert_eq!(p.on_output(&ctx, &mut r).unwrap(), Decision::Allow);
    assert_eq!(r.text(), "Reach me at a@b.io");
    assert!(p.stream_filter().is_none());

    // Output only: the reverse.
    let p = policy("apply_to: output");
    let mut req = user("mail a@b.io");
    assert_eq!(p.on_input(&ctx, &mut req).unwrap(), Decision::Allow);
    assert_eq!(req.messages[0].text_content(), "mail a@b.io");
    let mut r = resp.clone();
    assert!(matches!(
        p.on_output(&ctx, &mut r).unwrap(),
        Decision::Redacted { .. }
    ));
    assert_eq!(r.text(), "Reach me at [EMAIL]");
    assert!(p.stream_filter().is_some());

    // Both, the default, and a clear error for anything else.
    assert_eq!(p_default().apply_to, ApplyTo::Both);
    let block: serde_yaml::Value = serde_yaml::from_str("apply_to: outputs").unwrap();
    let Err(e) = PiiDetector::from_block(&block) else {
        panic!("`outputs` should fail")
    };
    assert!(e.contains("unknown variant `outputs`"), "{e}");
}
