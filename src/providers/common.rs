//! Pieces every native-format adapter needs: building OpenAI stream chunks with a stable
//! identity, reading `data:` URLs, and parsing tool-call arguments.
//!
//! Pure helpers only: no I/O, no provider-specific knowledge.

use serde_json::{Map, Value};

use crate::openai::{
    chunk_object, ApiError, ChatChunk, ChunkChoice, Delta, FunctionCallDelta, Role, ToolCallDelta,
    Usage,
};

/// Builds the chunks of one streamed completion: every chunk carries the same `id`,
/// `created` and `model`, and `role: assistant` goes out exactly once.
#[derive(Debug, Clone, Default)]
pub struct ChunkBuilder {
    pub id: String,
    pub model: String,
    pub created: u64,
    role_sent: bool,
}

impl ChunkBuilder {
    pub fn new(id: String, model: String, created: u64) -> ChunkBuilder {
        ChunkBuilder {
            id,
            model,
            created,
            role_sent: false,
        }
    }

    /// Whether the opening chunk (the one with the role) has gone out.
    pub fn is_started(&self) -> bool {
        self.role_sent
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<String>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: chunk_object(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason,
                ..ChunkChoice::default()
            }],
            ..ChatChunk::default()
        }
    }

    /// The opening chunk `{role: assistant, content: ""}`, once; `None` afterwards.
    pub fn start(&mut self) -> Option<ChatChunk> {
        if self.role_sent {
            return None;
        }
        self.role_sent = true;
        Some(self.chunk(
            Delta {
                role: Some(Role::Assistant),
                content: Some(String::new()),
                ..Delta::default()
            },
            None,
        ))
    }

    pub fn content(&self, text: &str) -> ChatChunk {
        self.chunk(
            Delta {
                content: Some(text.to_string()),
                ..Delta::default()
            },
            None,
        )
    }

    /// The first fragment of a tool call: index, id, type and name, empty arguments.
    pub fn tool_start(&self, index: u32, id: &str, name: &str) -> ChatChunk {
        self.chunk(
            Delta {
                tool_calls: Some(vec![ToolCallDelta {
                    custom: None,
                    index,
                    id: Some(id.to_string()),
                    kind: Some("function".to_string()),
                    function: Some(FunctionCallDelta {
                        name: Some(name.to_string()),
                        arguments: Some(String::new()),
                    }),
                }]),
                ..Delta::default()
            },
            None,
        )
    }

    /// A later fragment of a tool call: only the index and a piece of the arguments.
    pub fn tool_args(&self, index: u32, fragment: &str) -> ChatChunk {
        self.chunk(
            Delta {
                tool_calls: Some(vec![ToolCallDelta {
                    custom: None,
                    index,
                    id: None,
                    kind: None,
                    function: Some(FunctionCallDelta {
                        name: None,
                        arguments: Some(fragment.to_string()),
                    }),
                }]),
                ..Delta::default()
            },
            None,
        )
    }

    /// The closing chunk: an empty delta and the finish reason.
    pub fn finish(&self, reason: &str) -> ChatChunk {
        self.chunk(Delta::default(), Some(reason.to_string()))
    }

    /// The usage-only chunk (`choices: []`) that ends a stream before `[DONE]`.
    pub fn usage(&self, usage: Usage) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: chunk_object(),
            created: self.created,
            model: self.model.clone(),
            choices: Vec::new(),
            usage: Some(usage),
            ..ChatChunk::default()
        }
    }
}

/// Usage with `prompt_tokens_details`: `cached_tokens` (read from the prompt cache) and
/// `cache_write_tokens` (written to it), each when the provider reports it.
pub fn usage_with_cache(
    prompt: u64,
    completion: u64,
    cached: Option<u64>,
    cache_write: Option<u64>,
) -> Usage {
    let mut u = Usage::new(prompt, completion);
    let mut details = Map::new();
    if let Some(c) = cached {
        details.insert("cached_tokens".to_string(), Value::from(c));
    }
    if let Some(w) = cache_write {
        details.insert("cache_write_tokens".to_string(), Value::from(w));
    }
    if !details.is_empty() {
        u.extra
            .insert("prompt_tokens_details".to_string(), Value::Object(details));
    }
    u
}

/// A parsed `data:<media type>;base64,<data>` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataUrl<'a> {
    pub media_type: &'a str,
    pub data: &'a str,
}

/// Splits a base64 `data:` URL; `None` when `url` is not a `data:` URL at all.
///
/// # Errors
/// A `data:` URL that is not base64-encoded is a 400: providers take only base64.
pub fn parse_data_url(url: &str) -> Option<Result<DataUrl<'_>, ApiError>> {
    let rest = url.strip_prefix("data:")?;
    let Some((meta, data)) = rest.split_once(',') else {
        return Some(Err(ApiError::bad_request(
            "invalid `data:` URL in an image part: no `,` before the data",
        )));
    };
    let Some(media_type) = meta.strip_suffix(";base64") else {
        return Some(Err(ApiError::bad_request(
            "`data:` URLs in image parts must be base64-encoded (`data:<type>;base64,<data>`)",
        )));
    };
    Some(Ok(DataUrl {
        media_type: media_type.trim(),
        data,
    }))
}

/// Parses OpenAI tool-call `arguments` (a JSON string) into the JSON object a provider
/// wants. An empty string is `{}`.
///
/// # Errors
/// 400 when the arguments are not a JSON object.
pub fn parse_arguments(name: &str, arguments: &str) -> Result<Value, ApiError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::bad_request(format!(
            "the arguments of tool call `{name}` must be a JSON object"
        ))
        .with_param("messages")),
        Err(e) => Err(ApiError::bad_request(format!(
            "the arguments of tool call `{name}` are not valid JSON: {e}"
        ))
        .with_param("messages")),
    }
}

/// Test helpers for stream decoders.
#[cfg(test)]
pub mod testing {
    use serde_json::{json, Value};

    use crate::providers::{StreamDecoder, StreamEvent};

    /// Events as JSON, for comparisons: chunks as sent, `"[DONE]"`, errors with status.
    pub fn render(events: &[StreamEvent]) -> Vec<Value> {
        events
            .iter()
            .map(|e| match e {
                StreamEvent::Chunk(c) => serde_json::to_value(c).unwrap_or(Value::Null),
                StreamEvent::Done => json!("[DONE]"),
                StreamEvent::Error(e) => json!({"status": e.status, "error": e.body}),
            })
            .collect()
    }

    fn decode(make: &dyn Fn() -> Box<dyn StreamDecoder>, pieces: &[&[u8]]) -> Vec<StreamEvent> {
        let mut d = make();
        let mut out = Vec::new();
        for p in pieces {
            d.feed(p, &mut out).unwrap();
        }
        d.finish(&mut out).unwrap();
        out
    }

    /// Decodes `input` whole, split in two at every byte boundary, and one byte at a time;
    /// asserts every way yields the same events (nothing lost, merged or reordered) and
    /// returns them.
    pub fn assert_every_split(
        input: &[u8],
        make: impl Fn() -> Box<dyn StreamDecoder>,
    ) -> Vec<StreamEvent> {
        let whole = decode(&make, &[input]);
        let want = render(&whole);
        for i in 0..=input.len() {
            let (a, b) = input.split_at(i);
            assert_eq!(render(&decode(&make, &[a, b])), want, "split at byte {i}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(render(&decode(&make, &bytes)), want, "one byte at a time");
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_goes_out_once() {
        let mut b = ChunkBuilder::new("id".into(), "m".into(), 1);
        assert!(b.start().is_some());
        assert!(b.start().is_none());
        assert!(b.is_started());
    }

    #[test]
    fn data_urls() {
        let d = parse_data_url("data:image/png;base64,AAAA")
            .unwrap()
            .unwrap();
        assert_eq!(d.media_type, "image/png");
        assert_eq!(d.data, "AAAA");
        assert!(parse_data_url("https://x/y.png").is_none());
        assert_eq!(
            parse_data_url("data:image/png,raw")
                .unwrap()
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_arguments("f", "").unwrap(), serde_json::json!({}));
        assert_eq!(
            parse_arguments("f", r#"{"a":1}"#).unwrap(),
            serde_json::json!({"a":1})
        );
        assert_eq!(parse_arguments("f", "[1]").unwrap_err().status, 400);
        assert_eq!(parse_arguments("f", "{oops").unwrap_err().status, 400);
    }

    #[test]
    fn cached_tokens_detail() {
        let u = usage_with_cache(10, 2, Some(4), Some(3));
        let v = serde_json::to_value(&u).unwrap();
        assert_eq!(v["prompt_tokens_details"]["cached_tokens"], 4);
        assert_eq!(v["prompt_tokens_details"]["cache_write_tokens"], 3);
        assert_eq!(v["total_tokens"], 12);
        let v = serde_json::to_value(usage_with_cache(1, 1, None, None)).unwrap();
        assert!(v.get("prompt_tokens_details").is_none());
    }
}
