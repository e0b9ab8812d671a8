//! Every provider adapter (`kt::providers::adapter_for`): OpenAI, Azure OpenAI,
//! Anthropic, Cohere, Gemini and Bedrock, on mutated upstream answers, error bodies and
//! stream captures. Each input goes through `parse_response`, `parse_error`,
//! `parse_error_with_headers` and the adapter's stream decoder (`feed`/`finish`).
//!
//! Properties: nothing panics; every error (returned or in-band) has a 4xx/5xx status, a
//! usable `retry-after` and a serialisable body; a 4xx/5xx upstream status stays 4xx/5xx;
//! a parsed answer serialises; the stream's events (ids aside, which are random per
//! decoder) and its first error do not depend on how the bytes are cut.

use kt::config::{load_str, Target};
use kt::openai::{ApiError, ChatRequest};
use kt::providers::bedrock::eventstream::{encode, encode_event, HeaderValue};
use kt::providers::{adapter_for, StreamEvent};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};

use crate::harness::{self, Bytes};
use crate::mutate;

/// One adapter under test: its corpus and the target that selects it.
pub struct Provider {
    /// The fuzz target's name (and its seed).
    name: &'static str,
    corpus: &'static str,
    target: &'static str,
    dict: &'static [&'static str],
}

const JSON_DICT: &[&str] = &[
    "\"choices\":[]",
    "\"usage\":{}",
    "\"content\":null",
    "\"index\":4294967296",
    "\"index\":-1",
    "\"tool_calls\":[{}]",
    "\"finish_reason\":\"length\"",
    "\"error\":{\"status\":200}",
    "\"error\":\"\"",
    "\"message\":null",
    "\"retry_after\":1e309",
    "\"type\":\"error\"",
    "data: ",
    "event: error\n",
    "data: [DONE]\n\n",
];

pub const PROVIDERS: &[Provider] = &[
    Provider {
        name: "provider-openai",
        corpus: "provider-openai",
        target: "{id: o, provider: openai, model: gpt-4o}",
        dict: &["\"prompt_filter_results\":[]", "\"refusal\":\"no\""],
    },
    Provider {
        name: "provider-azure",
        corpus: "provider-openai",
        target: "{id: z, provider: azure-openai, model: gpt-4o, base_url: 'https://r.openai.azure.com/openai/deployments/gpt-4o'}",
        dict: &["\"content_filter_results\":{\"hate\":{\"filtered\":true}}"],
    },
    Provider {
        name: "provider-anthropic",
        corpus: "provider-anthropic",
        target: "{id: a, provider: anthropic, model: claude-sonnet-4-5}",
        dict: &[
            "\"type\":\"content_block_start\"",
            "\"type\":\"content_block_delta\"",
            "\"type\":\"input_json_delta\",\"partial_json\":\"{\"",
            "\"type\":\"tool_use\"",
            "\"type\":\"thinking\"",
            "\"stop_reason\":\"max_tokens\"",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        ],
    },
    Provider {
        name: "provider-cohere",
        corpus: "provider-cohere",
        target: "{id: c, provider: cohere, model: command-a-03-2025}",
        dict: &[
            "\"type\":\"tool-call-start\"",
            "\"type\":\"tool-call-delta\"",
            "\"type\":\"content-delta\"",
            "\"type\":\"message-end\"",
            "\"finish_reason\":\"ERROR\"",
        ],
    },
    Provider {
        name: "provider-gemini",
        corpus: "provider-gemini",
        target: "{id: g, provider: gemini, model: gemini-2.5-flash}",
        dict: &[
            "\"functionCall\":{\"name\":\"f\",\"args\":{}}",
            "\"finishReason\":\"SAFETY\"",
            "\"promptFeedback\":{\"blockReason\":\"OTHER\"}",
            "\"candidates\":[{}]",
            "\"index\":99999",
            "\"thought\":true",
        ],
    },
    Provider {
        name: "provider-bedrock",
        corpus: "provider-bedrock",
        target: "{id: b, provider: bedrock, model: 'us.anthropic.claude-3-7-sonnet-20250219-v1:0', region: us-east-1}",
        dict: &[
            "{\"contentBlockStart\": {\"contentBlockIndex\": 9, \"start\": {\"toolUse\": {\"toolUseId\": \"t\", \"name\": \"n\"}}}}\n",
            "{\"contentBlockDelta\": {\"contentBlockIndex\": 9, \"delta\": {\"toolUse\": {\"input\": \"{\"}}}}\n",
            "{\"!validationException\": {\"message\": \"bad\"}}\n",
            "{\"messageStop\": {\"stopReason\": \"guardrail_intervened\"}}\n",
            "\"contentBlockIndex\": 18446744073709551615",
        ],
    },
];

impl Provider {
    pub fn target(&self) -> Target {
        let yaml = format!(
            "pack: {{name: fuzz}}\nproviders:\n  targets:\n    - {}\n",
            self.target
        );
        load_str(&yaml, std::path::Path::new("fuzz.yaml"))
            .unwrap()
            .0
            .targets
            .remove(0)
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        harness::corpus(self.corpus)
            .into_iter()
            .map(|(_, b)| b)
            .collect()
    }

    /// The byte streams an input stands for: itself, and for Bedrock also its lines
    /// framed as event-stream messages (the mutations then reach the JSON payloads,
    /// which raw mutations of the binary framing almost never do).
    fn streams(&self, input: &[u8]) -> Vec<Vec<u8>> {
        let mut out = vec![input.to_vec()];
        if self.name == "provider-bedrock" {
            out.push(frame_lines(input));
        }
        out
    }
}

/// `{"<eventType>": <payload>}` per line → one event message each, the payload bytes as
/// written (unparsed, so mutated JSON stays mutated). `!<type>` makes an exception.
fn frame_lines(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in input.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let parts = line.strip_prefix(b"{\"").and_then(|rest| {
            let end = rest.iter().position(|&b| b == b'"')?;
            let payload = rest[end + 1..].strip_prefix(b":")?;
            Some((&rest[..end], payload.strip_suffix(b"}").unwrap_or(payload)))
        });
        let (kind, payload) = parts.unwrap_or((b"contentBlockDelta", line));
        let kind = String::from_utf8_lossy(kind);
        match kind.strip_prefix('!') {
            Some(exception) => out.extend(encode(
                &[
                    (
                        ":exception-type",
                        HeaderValue::String(exception.to_string()),
                    ),
                    (":message-type", HeaderValue::String("exception".into())),
                ],
                payload,
            )),
            None => out.extend(encode_event(&kind, payload)),
        }
    }
    out
}

fn check_error(e: &ApiError, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        (400..=599).contains(&e.status),
        "{what}: status {} is not an error status: {e:?}",
        e.status
    );
    if let Some(r) = e.retry_after {
        prop_assert!(r.is_finite() && r >= 0.0, "{what}: retry-after {r}");
    }
    serde_json::to_string(&e.body)
        .map_err(|x| TestCaseError::fail(format!("{what}: body does not serialise: {x}")))?;
    Ok(())
}

/// Events as JSON, random ids replaced by their order of appearance and `created` by 0.
fn render(events: &[StreamEvent]) -> Result<Vec<Value>, TestCaseError> {
    let mut ids = Vec::new();
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        out.push(match e {
            StreamEvent::Chunk(c) => {
                let mut v = serde_json::to_value(c)
                    .map_err(|x| TestCaseError::fail(format!("chunk does not serialise: {x}")))?;
                normalize(&mut v, &mut ids);
                v
            }
            StreamEvent::Done => json!("[DONE]"),
            StreamEvent::Error(e) => {
                check_error(e, "in-band stream error")?;
                json!({"status": e.status, "error": e.body})
            }
        });
    }
    Ok(out)
}

fn normalize(v: &mut Value, ids: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                match (k.as_str(), &*x) {
                    ("id", Value::String(s)) => {
                        let n = ids.iter().position(|i| i == s).unwrap_or_else(|| {
                            ids.push(s.clone());
                            ids.len() - 1
                        });
                        *x = json!(format!("id{n}"));
                    }
                    ("created", _) => *x = json!(0),
                    _ => normalize(x, ids),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| normalize(x, ids)),
        _ => {}
    }
}

/// Decodes a stream fed in `pieces`: the events, and the first error of `feed`/`finish`.
fn decode(
    target: &Target,
    req: &ChatRequest,
    pieces: &[&[u8]],
) -> Result<(Vec<Value>, Option<Value>), TestCaseError> {
    let mut d = adapter_for(target).stream_decoder(target, req);
    let mut events = Vec::new();
    let mut error = None;
    for p in pieces {
        if let Err(e) = d.feed(p, &mut events) {
            error = Some(e);
            break;
        }
    }
    if error.is_none() {
        error = d.finish(&mut events).err();
    }
    let error = match error {
        Some(e) => {
            check_error(&e, "stream error")?;
            Some(json!({"status": e.status, "error": e.body}))
        }
        None => None,
    };
    Ok((render(&events)?, error))
}

fn check(
    provider: &Provider,
    target: &Target,
    req: &ChatRequest,
    input: &[u8],
    status: u16,
    splits: &[Index],
) -> Result<(), TestCaseError> {
    let adapter = adapter_for(target);
    match adapter.parse_response(target, input) {
        Ok(resp) => {
            serde_json::to_string(&resp)
                .map_err(|x| TestCaseError::fail(format!("answer does not serialise: {x}")))?;
        }
        Err(e) => check_error(&e, "parse_response")?,
    }
    check_error(&adapter.parse_error(status, input), "parse_error")?;
    let kind = String::from_utf8_lossy(input.get(..24).unwrap_or(input)).into_owned();
    let headers = [("X-Amzn-ErrorType".to_string(), kind)];
    check_error(
        &adapter.parse_error_with_headers(status, &headers, input),
        "parse_error_with_headers",
    )?;
    for stream in provider.streams(input) {
        let whole = decode(target, req, &[&stream])?;
        let cut = decode(target, req, &mutate::pieces(&stream, splits))?;
        prop_assert_eq!(&cut, &whole, "{} stream cut at {:?}", provider.name, splits);
    }
    Ok(())
}

fn requests() -> Vec<ChatRequest> {
    [
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
               "response_format": {"type": "json_object"}}),
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).unwrap())
    .collect()
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        prop::sample::select(
            &[400u16, 401, 402, 403, 404, 408, 409, 413, 422, 429, 498, 500, 502, 503, 504, 529][..]
        ),
        400u16..600,
    ]
}

fn run(name: &str) {
    let provider = PROVIDERS.iter().find(|p| p.name == name).unwrap();
    let target = provider.target();
    let requests = requests();
    harness::replay(provider.corpus, |_, bytes| {
        for req in &requests {
            check(provider, &target, req, bytes, 500, &[])?;
        }
        Ok(())
    });
    let mut dict: Vec<&str> = JSON_DICT.to_vec();
    dict.extend(provider.dict);
    let strategy = (
        mutate::mixed(provider.seeds(), &dict),
        (status(), mutate::splits(), any::<Index>()),
    );
    harness::fuzz(
        provider.name,
        4000,
        strategy,
        |(input, (status, splits, request)): &(Bytes, (u16, Vec<Index>, Index))| {
            check(
                provider,
                &target,
                request.get(&requests),
                &input.0,
                *status,
                splits,
            )
        },
    );
}

#[test]
fn openai() {
    run("provider-openai");
}

#[test]
fn azure() {
    run("provider-azure");
}

#[test]
fn anthropic() {
    run("provider-anthropic");
}

#[test]
fn cohere() {
    run("provider-cohere");
}

#[test]
fn gemini() {
    run("provider-gemini");
}

#[test]
fn bedrock() {
    run("provider-bedrock");
}
