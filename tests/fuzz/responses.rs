//! The Responses API translation (`kt::providers::responses`, public entry points only):
//! a mutated `POST /v1/responses` body through `to_chat` and `skeleton`, and a mutated
//! chat answer through `from_chat` and, streamed, through the `Translator`.
//!
//! Properties: nothing panics; a rejected request is a 4xx; everything produced
//! serialises; the streamed events are numbered 0, 1, 2…, open with `response.created`,
//! close with the event of the final status, send deltas of at most `chunk` characters,
//! and the deltas of each text part and each function call add up to the finished
//! text and arguments.

use kt::openai::responses::ResponsesRequest;
use kt::openai::{ChatChunk, ChatResponse, ChunkChoice, Delta};
use kt::providers::responses::response::output_text;
use kt::providers::responses::stream::Translator;
use kt::providers::responses::{from_chat, skeleton, to_chat, Strictness};
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

/// Streams the first choice's text in pieces of `chunk` characters through the
/// translator and checks the typed events it makes.
fn check_events(
    resp: &ChatResponse,
    req: &ResponsesRequest,
    chunk: usize,
) -> Result<(), TestCaseError> {
    let text = resp
        .choices
        .first()
        .map(|c| c.message.text_content())
        .unwrap_or_default();
    let finish = resp.choices.first().and_then(|c| c.finish_reason.clone());
    let mut tr = Translator::new(skeleton(req, "resp_fuzz", 1));
    let mut evs = tr.start();
    let chars: Vec<char> = text.chars().collect();
    for piece in chars.chunks(chunk.max(1)) {
        let c = ChatChunk {
            choices: vec![ChunkChoice {
                delta: Delta {
                    content: Some(piece.iter().collect()),
                    ..Delta::default()
                },
                ..ChunkChoice::default()
            }],
            ..ChatChunk::default()
        };
        evs.extend(tr.push(&c));
    }
    let last = ChatChunk {
        choices: vec![ChunkChoice {
            finish_reason: finish,
            ..ChunkChoice::default()
        }],
        usage: resp.usage.clone(),
        ..ChatChunk::default()
    };
    evs.extend(tr.push(&last));
    evs.extend(tr.finish(None));
    let kinds: Vec<&str> = evs.iter().map(|e| e.kind.as_str()).collect();
    prop_assert_eq!(kinds.first().copied(), Some("response.created"));
    prop_assert!(
        matches!(
            kinds.last().copied(),
            Some("response.completed" | "response.incomplete" | "response.failed")
        ),
        "ends with {:?}",
        kinds.last()
    );
    let mut streamed = String::new();
    for (i, e) in evs.iter().enumerate() {
        prop_assert_eq!(
            e.data["sequence_number"].as_u64(),
            Some(i as u64),
            "{}",
            e.kind
        );
        prop_assert_eq!(e.data["type"].as_str(), Some(e.kind.as_str()));
        serde_json::to_string(&e.data).map_err(|err| fail("event does not serialise", err))?;
        if e.kind == "response.output_text.delta" {
            streamed.push_str(e.data["delta"].as_str().unwrap_or_default());
        }
    }
    prop_assert_eq!(streamed, text);
    Ok(())
}

fn check(input: &[u8], chunk: usize) -> Result<(), TestCaseError> {
    let req: Option<ResponsesRequest> = serde_json::from_slice(input).ok();
    if let Some(req) = &req {
        match to_chat(req, Strictness::Strict) {
            Ok(chat) => {
                serde_json::to_string(&chat.chat).map_err(|e| fail("chat request", e))?;
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
        let _ = to_chat(&req, Strictness::Lenient);
        serde_json::to_string(&done).map_err(|e| fail("response object", e))?;
        let text = output_text(&done);
        let first = resp
            .choices
            .first()
            .map(|c| c.message.text_content())
            .unwrap_or_default();
        prop_assert_eq!(text, first);
        check_events(&resp, &req, chunk)?;
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
