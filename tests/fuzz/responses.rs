//! The Responses API translation (`kt::providers::responses`, public entry points only):
//! a mutated `POST /v1/responses` body through `to_chat` and `skeleton`, and a mutated
//! chat answer through `from_chat` and `events`.
//!
//! Properties: nothing panics; a rejected request is a 4xx; everything produced
//! serialises; the streamed events are numbered 0, 1, 2…, open with `response.created`,
//! close with the event of the final status, send deltas of at most `chunk` characters,
//! and the deltas of each text part and each function call add up to the finished
//! text and arguments.

use kt::openai::responses::{OutputItem, ResponseObject, ResponsesRequest};
use kt::openai::ChatResponse;
use kt::providers::responses::{events, from_chat, output_text, skeleton, to_chat};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::Value;

use crate::{harness, mutate};

const TARGET: &str = "responses";

const DICT: &[&str] = &[
    "\"input\":[]",
    "\"input\":\"\"",
    "{\"type\":\"function_call_output\",\"call_id\":\"x\",\"output\":[]}",
    "{\"type\":\"function_call\",\"call_id\":\"x\",\"name\":\"\",\"arguments\":\"{\"}",
    "{\"type\":\"input_image\",\"image_url\":\"data:;base64,\"}",
    "{\"type\":\"input_file\"}",
    "{\"role\":\"developer\",\"content\":[]}",
    "\"text\":{\"format\":{\"type\":\"json_schema\"}}",
    "\"tool_choice\":\"required\"",
    "\"tools\":[{\"type\":\"web_search\"}]",
    "\"finish_reason\":\"length\"",
    "\"finish_reason\":\"content_filter\"",
    "\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]",
    "\"usage\":{\"prompt_tokens\":18446744073709551615,\"completion_tokens\":1,\"total_tokens\":0}",
];

fn fail(what: &str, e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(format!("{what}: {e}"))
}

fn check_events(done: &ResponseObject, chunk: usize) -> Result<(), TestCaseError> {
    let evs = events(done, chunk);
    let types: Vec<&str> = evs.iter().map(|(t, _)| t.as_str()).collect();
    prop_assert_eq!(types.first().copied(), Some("response.created"));
    let last = match done.status.as_str() {
        "incomplete" => "response.incomplete",
        "failed" => "response.failed",
        _ => "response.completed",
    };
    prop_assert_eq!(types.last().copied(), Some(last));
    for (i, (t, body)) in evs.iter().enumerate() {
        prop_assert_eq!(body["sequence_number"].as_u64(), Some(i as u64), "{}", t);
        prop_assert_eq!(body["type"].as_str(), Some(t.as_str()));
        serde_json::to_string(body).map_err(|e| fail("event does not serialise", e))?;
    }
    let deltas = |kind: &str, n: usize, c: Option<usize>| -> Result<String, TestCaseError> {
        let mut text = String::new();
        for (_, body) in evs.iter().filter(|(t, b)| {
            t == kind
                && b["output_index"].as_u64() == Some(n as u64)
                && c.is_none_or(|c| b["content_index"].as_u64() == Some(c as u64))
        }) {
            let piece = body["delta"].as_str().unwrap_or_default();
            prop_assert!(piece.chars().count() <= chunk.max(1), "delta of {piece:?}");
            text.push_str(piece);
        }
        Ok(text)
    };
    for (n, item) in done.output.iter().enumerate() {
        match item {
            OutputItem::Message { content, .. } => {
                for (c, part) in content.iter().enumerate() {
                    let streamed = deltas("response.output_text.delta", n, Some(c))?;
                    prop_assert_eq!(&streamed, &part.text);
                }
            }
            OutputItem::FunctionCall { arguments, .. } => {
                let streamed = deltas("response.function_call_arguments.delta", n, None)?;
                prop_assert_eq!(&streamed, arguments);
            }
        }
    }
    Ok(())
}

fn check(input: &[u8], chunk: usize) -> Result<(), TestCaseError> {
    let req: Option<ResponsesRequest> = serde_json::from_slice(input).ok();
    if let Some(req) = &req {
        match to_chat(req) {
            Ok(chat) => {
                serde_json::to_string(&chat).map_err(|e| fail("chat request", e))?;
            }
            Err(e) => prop_assert!(
                (400..=499).contains(&e.status),
                "a rejected request is a {}: {e:?}",
                e.status
            ),
        }
        let skel = skeleton(req, "resp_fuzz", 1);
        serde_json::to_string(&skel).map_err(|e| fail("skeleton", e))?;
    }
    if let Ok(resp) = serde_json::from_slice::<ChatResponse>(input) {
        let req = req.unwrap_or_default();
        let done = from_chat(&resp, &req, "resp_fuzz", 1);
        serde_json::to_string(&done).map_err(|e| fail("response object", e))?;
        let text = output_text(&done);
        let first = resp
            .choices
            .first()
            .map(|c| c.message.text_content())
            .unwrap_or_default();
        prop_assert_eq!(text, first);
        check_events(&done, chunk)?;
    }
    Ok(())
}

#[test]
fn corpus() {
    harness::replay(TARGET, |_, bytes| {
        let parsed = serde_json::from_slice::<Value>(bytes);
        prop_assert!(parsed.is_ok(), "a seed is not JSON");
        check(bytes, 3)
    });
}

#[test]
fn mutations() {
    let seeds = harness::corpus(TARGET)
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let strategy = (mutate::mixed(seeds, DICT), 0usize..64);
    harness::fuzz(TARGET, 5000, strategy, |(input, chunk)| {
        check(&input.0, *chunk)
    });
}
