//! The built-in `mock` provider: offline, no key. It answers in OpenAI format, streams
//! word by word, and honours `tools` by returning a tool call when asked, so the sandbox
//! exercises every client path.
//!
//! Deterministic on purpose: a user message starting with `echo:` is answered with exactly
//! the text after it (handy for trying output policies).

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::openai::embeddings::{EmbeddingInput, EmbeddingRequest};
use crate::openai::{
    chunk_object, function_type, ApiError, ChatChunk, ChatRequest, ChatResponse, Choice,
    ChunkChoice, Content, Delta, FunctionCall, FunctionCallDelta, Message, Role, Tool, ToolCall,
    ToolCallDelta, Usage,
};

/// Pause between streamed words: slow enough to see tokens arrive, fast enough for tests.
pub const WORD_DELAY: Duration = Duration::from_millis(15);

/// What the mock decided to answer.
enum Answer {
    Text(String),
    Call { name: String, arguments: String },
}

/// A rough token count: about four characters a token.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

fn prompt_tokens(req: &ChatRequest) -> u64 {
    req.messages
        .iter()
        .map(|m| estimate_tokens(&m.text_content()) + 3)
        .sum()
}

fn decide(req: &ChatRequest) -> Answer {
    let last = req.messages.last();
    if let Some(m) = last.filter(|m| m.role == Role::Tool) {
        let name =
            find_call_name(req, m.tool_call_id.as_deref()).unwrap_or_else(|| "the tool".into());
        return Answer::Text(format!("The tool {name} returned: {}", m.text_content()));
    }
    let user_text = req
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(Message::text_content)
        .unwrap_or_default();
    if let Some(rest) = user_text.trim_start().strip_prefix("echo:") {
        return Answer::Text(rest.trim_start().to_string());
    }
    if let Some(tool) = chosen_tool(req, &user_text) {
        let arguments = arguments_for(tool, &user_text);
        return Answer::Call {
            name: tool.function.name.clone(),
            arguments,
        };
    }
    let shown: String = user_text.chars().take(200).collect();
    Answer::Text(format!(
        "Hello from the kt sandbox! You said: \"{shown}\". This answer comes from the built-in mock provider; point a target at a real provider for real answers."
    ))
}

fn find_call_name(req: &ChatRequest, id: Option<&str>) -> Option<String> {
    let id = id?;
    req.messages
        .iter()
        .filter_map(|m| m.tool_calls.as_ref())
        .flatten()
        .find(|c| c.id == id)
        .map(|c| c.function.name.clone())
}

/// The tool to call: the one `tool_choice` names, any when it is `required`, else one whose
/// name (or name words) the user mentioned.
fn chosen_tool<'a>(req: &'a ChatRequest, user_text: &str) -> Option<&'a Tool> {
    // Function tools: a custom tool (free-text input) gets a text answer.
    let tools: Vec<&Tool> = req
        .tools
        .iter()
        .flatten()
        .filter(|t| t.is_function())
        .collect();
    if tools.is_empty() {
        return None;
    }
    match &req.tool_choice {
        Some(Value::String(s)) if s == "none" => return None,
        Some(Value::String(s)) if s == "required" => return tools.first().copied(),
        Some(Value::Object(o)) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str);
            if let Some(t) = tools
                .iter()
                .find(|t| Some(t.function.name.as_str()) == name)
            {
                return Some(*t);
            }
        }
        _ => {}
    }
    let text = user_text.to_lowercase();
    tools.into_iter().find(|t| {
        let name = t.function.name.to_lowercase();
        text.contains(&name)
            || name
                .split('_')
                .filter(|w| w.len() > 3 && !matches!(*w, "get" | "list" | "find" | "fetch"))
                .any(|w| text.contains(w))
    })
}

/// Arguments that satisfy the tool's schema: required strings are filled from the prompt.
fn arguments_for(tool: &Tool, user_text: &str) -> String {
    let mut args = Map::new();
    let params = tool.function.parameters.as_ref();
    let props = params
        .and_then(|p| p.get("properties"))
        .and_then(Value::as_object);
    let required: Vec<&str> = params
        .and_then(|p| p.get("required"))
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(props) = props {
        for (name, schema) in props {
            if !required.is_empty() && !required.contains(&name.as_str()) {
                continue;
            }
            let value = match schema.get("type").and_then(Value::as_str) {
                Some("integer") | Some("number") => json!(1),
                Some("boolean") => json!(true),
                Some("array") => json!([]),
                Some("object") => json!({}),
                _ => match schema
                    .get("enum")
                    .and_then(Value::as_array)
                    .and_then(|e| e.first())
                {
                    Some(first) => first.clone(),
                    None => Value::String(guess_value(user_text)),
                },
            };
            args.insert(name.clone(), value);
        }
    }
    Value::Object(args).to_string()
}

/// The last capitalized word or identifier-like token of the prompt (`London`, `AC-1234`).
fn guess_value(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || matches!(c, '?' | '!' | ',' | '.' | '"' | '\''))
        .filter(|w| !w.is_empty())
        .skip(1)
        .filter(|w| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit())
        })
        .last()
        .unwrap_or("example")
        .to_string()
}

/// A complete (non-streaming) answer.
pub fn respond(req: &ChatRequest, id: &str, created: u64) -> ChatResponse {
    let prompt = prompt_tokens(req);
    let (message, finish, completion) = match decide(req) {
        Answer::Text(text) => {
            let tokens = estimate_tokens(&text);
            (Message::text(Role::Assistant, text), "stop", tokens)
        }
        Answer::Call { name, arguments } => {
            let tokens = estimate_tokens(&arguments) + 5;
            let message = Message {
                role: Role::Assistant,
                content: None,
                tool_calls: Some(vec![ToolCall {
                    custom: None,
                    id: format!("call_{}", &id.chars().rev().take(12).collect::<String>()),
                    kind: function_type(),
                    function: FunctionCall { name, arguments },
                }]),
                ..Message::default()
            };
            (message, "tool_calls", tokens)
        }
    };
    ChatResponse {
        id: id.to_string(),
        object: "chat.completion".to_string(),
        created,
        model: req.model.clone(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(finish.to_string()),
            logprobs: None,
            extra: Map::new(),
        }],
        usage: Some(Usage::new(prompt, completion)),
        x_keeptrusts: None,
        extra: Map::new(),
    }
}

/// The same answer as a stream of chunks (word by word), ending with the finish chunk and,
/// when asked, the usage chunk.
pub fn stream(req: &ChatRequest, id: &str, created: u64) -> Vec<ChatChunk> {
    let full = respond(req, id, created);
    let chunk = |delta: Delta, finish: Option<&str>| ChatChunk {
        id: id.to_string(),
        object: chunk_object(),
        created,
        model: req.model.clone(),
        choices: vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason: finish.map(str::to_string),
            logprobs: None,
            extra: Map::new(),
        }],
        usage: None,
        x_keeptrusts: None,
        extra: Map::new(),
    };
    let Some(choice) = full.choices.into_iter().next() else {
        return Vec::new();
    };
    let is_text = choice.message.tool_calls.is_none();
    let mut out = vec![chunk(
        Delta {
            role: Some(Role::Assistant),
            content: is_text.then(String::new),
            ..Delta::default()
        },
        None,
    )];
    if let Some(Content::Text(text)) = &choice.message.content {
        for word in text.split_inclusive(' ') {
            out.push(chunk(
                Delta {
                    content: Some(word.to_string()),
                    ..Delta::default()
                },
                None,
            ));
        }
    }
    for (i, call) in choice.message.tool_calls.iter().flatten().enumerate() {
        let index = u32::try_from(i).unwrap_or(0);
        out.push(chunk(
            Delta {
                tool_calls: Some(vec![ToolCallDelta {
                    custom: None,
                    index,
                    id: Some(call.id.clone()),
                    kind: Some(function_type()),
                    function: Some(FunctionCallDelta {
                        name: Some(call.function.name.clone()),
                        arguments: Some(String::new()),
                    }),
                }]),
                ..Delta::default()
            },
            None,
        ));
        let args = &call.function.arguments;
        let mid = args
            .char_indices()
            .nth(args.chars().count() / 2)
            .map_or(0, |(i, _)| i);
        for piece in [&args[..mid], &args[mid..]] {
            out.push(chunk(
                Delta {
                    tool_calls: Some(vec![ToolCallDelta {
                        custom: None,
                        index,
                        id: None,
                        kind: None,
                        function: Some(FunctionCallDelta {
                            name: None,
                            arguments: Some(piece.to_string()),
                        }),
                    }]),
                    ..Delta::default()
                },
                None,
            ));
        }
    }
    out.push(chunk(Delta::default(), choice.finish_reason.as_deref()));
    if req.include_usage() {
        let mut last = chunk(Delta::default(), None);
        last.choices.clear();
        last.usage = full.usage;
        out.push(last);
    }
    out
}

/// The mock's vectors when no `dimensions` is asked for (OpenAI's `text-embedding-3-small`).
pub const EMBEDDING_DIMENSIONS: u32 = 1536;
/// The most `dimensions` the mock gives (OpenAI's `text-embedding-3-large`).
pub const MAX_EMBEDDING_DIMENSIONS: u32 = 3072;

/// Embeds each input offline: its words (or token ids) hashed into a unit vector, so
/// texts that share words point the same way (a sandbox can try retrieval) and the same
/// text always gets the same vector. Returns the vectors and the prompt token count.
pub fn embed(req: &EmbeddingRequest) -> Result<(Vec<Vec<f32>>, u64), ApiError> {
    let dims = req.dimensions.unwrap_or(EMBEDDING_DIMENSIONS);
    if dims > MAX_EMBEDDING_DIMENSIONS {
        return Err(ApiError::bad_request(format!(
            "The mock provider embeds in at most {MAX_EMBEDDING_DIMENSIONS} dimensions; {dims} were asked for."
        ))
        .with_param("dimensions"));
    }
    let dims = dims as usize;
    // Token ids the gateway decoded embed as their text.
    let vectors = match (req.texts(), &req.input) {
        (Some(texts), _) => texts.into_iter().map(|t| hashed(words(t), dims)).collect(),
        (None, EmbeddingInput::Tokens(ids)) => vec![hashed(token_words(ids), dims)],
        (None, EmbeddingInput::TokenLists(ls)) => ls
            .iter()
            .map(|ids| hashed(token_words(ids), dims))
            .collect(),
        (None, _) => Vec::new(),
    };
    let tokens = req.input.estimated_tokens();
    Ok((vectors, tokens))
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

fn token_words(ids: &[u32]) -> impl Iterator<Item = String> + '_ {
    ids.iter().map(u32::to_string)
}

/// Feature hashing: each word adds ±1 at the place its FNV-1a hash picks; the sum is
/// scaled to length 1.
fn hashed(words: impl Iterator<Item = String>, dims: usize) -> Vec<f32> {
    let mut v = vec![0f32; dims];
    for w in words {
        let h = w.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let i = usize::try_from(h % dims as u64).unwrap_or(0);
        v[i] += if h >> 63 == 0 { 1.0 } else { -1.0 };
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else if let Some(first) = v.first_mut() {
        // No word at all (only punctuation): still a unit vector.
        *first = 1.0;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::StreamAccumulator;

    fn req(json: &str) -> ChatRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn echo_answers_exactly() {
        let r = respond(
            &req(r#"{"model":"m","messages":[{"role":"user","content":"echo: hi there"}]}"#),
            "id",
            1,
        );
        assert_eq!(r.choices[0].message.text_content(), "hi there");
    }

    #[test]
    fn tools_are_called_when_mentioned() {
        let r = req(
            r#"{"model":"m","messages":[{"role":"user","content":"What's the weather in London?"}],
               "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]}"#,
        );
        let resp = respond(&r, "chatcmpl-1", 1);
        let call = &resp.choices[0].message.tool_calls.as_ref().unwrap()[0];
        assert_eq!(call.function.name, "get_weather");
        assert_eq!(call.function.arguments, r#"{"city":"London"}"#);
        assert_eq!(resp.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    }

    #[test]
    fn stream_assembles_to_the_same_answer() {
        for body in [
            r#"{"model":"m","messages":[{"role":"user","content":"hello world"}],"stream_options":{"include_usage":true}}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tool_choice":"required","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string"}}}}}]}"#,
        ] {
            let r = req(body);
            let whole = respond(&r, "id", 1);
            let mut acc = StreamAccumulator::default();
            for c in stream(&r, "id", 1) {
                acc.push(&c);
            }
            let streamed = acc.into_response();
            assert_eq!(
                streamed.choices[0]
                    .message
                    .content
                    .as_ref()
                    .map(Content::text),
                whole.choices[0].message.content.as_ref().map(Content::text)
            );
            assert_eq!(
                streamed.choices[0].message.tool_calls,
                whole.choices[0].message.tool_calls
            );
            assert_eq!(
                streamed.choices[0].finish_reason,
                whole.choices[0].finish_reason
            );
        }
    }

    #[test]
    fn mock_embeddings_are_unit_vectors_that_follow_the_words() {
        let req = |body: &str| EmbeddingRequest::parse(body.as_bytes()).unwrap();
        let (v, tokens) = embed(&req(
            r#"{"model":"m","input":["The cat sat","the CAT sat!","stock prices fell"]}"#,
        ))
        .unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].len(), EMBEDDING_DIMENSIONS as usize);
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        assert!((dot(&v[0], &v[0]) - 1.0).abs() < 1e-5);
        assert!(
            (dot(&v[0], &v[1]) - 1.0).abs() < 1e-5,
            "same words, same vector"
        );
        assert!(dot(&v[0], &v[2]).abs() < 0.5);
        assert_eq!(tokens, 3 + 3 + 5);
        let (v, tokens) =
            embed(&req(r#"{"model":"m","input":[[1,2],[3]],"dimensions":8}"#)).unwrap();
        assert_eq!((v.len(), v[0].len(), tokens), (2, 8, 3));
        let (v, _) = embed(&req(r#"{"model":"m","input":"?!"}"#)).unwrap();
        assert_eq!(v[0][0], 1.0);
        let e = embed(&req(r#"{"model":"m","input":"x","dimensions":5000}"#)).unwrap_err();
        assert_eq!(e.body.param.as_deref(), Some("dimensions"));
    }
}
