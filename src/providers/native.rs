//! Helpers the Gemini and Bedrock translations share, beside `common`: OpenAI content parts
//! as native parts, `tool_choice`, ids, and a chunk builder for streams with several
//! choices (Gemini's `candidateCount`) that keeps the SDK's invariants (`role` once per
//! choice; a tool call's `id` and `name` only in its first fragment).
//!
//! Pure data in, data out: no I/O here (randomness for ids aside).

use serde_json::{Map, Value};

use super::common::parse_data_url;
use crate::openai::{
    chunk_object, function_type, ApiError, ChatChunk, ChatRequest, ChunkChoice, Content, Delta,
    FunctionCallDelta, Role, ToolCallDelta, Usage,
};

/// One piece of user content, in the form native APIs take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputPart {
    Text(String),
    /// Inline bytes (base64), from a `data:` URL or an `input_audio` / `file` part.
    Media {
        mime: String,
        data: String,
        /// The client's file name (`file` parts).
        name: Option<String>,
    },
    /// A remote URL (`http(s)://`, `gs://`, `s3://`) with the MIME type guessed from
    /// its extension.
    Url {
        url: String,
        mime: Option<String>,
    },
}

/// The MIME type a URL's file extension suggests, for the media types LLM APIs accept.
pub fn mime_from_url(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        _ => return None,
    })
}

/// A user message's content as native parts. Part types kt cannot express natively are a
/// 400 naming the type (they are content, so dropping them would change the question).
pub fn input_parts(content: Option<&Content>) -> Result<Vec<InputPart>, ApiError> {
    let parts = match content {
        None => return Ok(Vec::new()),
        Some(Content::Text(s)) => return Ok(vec![InputPart::Text(s.clone())]),
        Some(Content::Parts(parts)) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        match p.kind.as_str() {
            "text" | "input_text" => {
                out.push(InputPart::Text(p.text.clone().unwrap_or_default()));
            }
            "image_url" => {
                let url = p
                    .image_url
                    .as_ref()
                    .map(|u| u.url.as_str())
                    .ok_or_else(|| invalid_part("an `image_url` part needs `image_url.url`"))?;
                out.push(url_part(url, None)?);
            }
            "input_audio" => {
                let audio = p.extra.get("input_audio");
                let data = audio
                    .and_then(|a| a.get("data"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        invalid_part("an `input_audio` part needs `input_audio.data`")
                    })?;
                let format = audio
                    .and_then(|a| a.get("format"))
                    .and_then(Value::as_str)
                    .unwrap_or("wav");
                let mime = match format {
                    "mp3" => "audio/mpeg".to_string(),
                    other => format!("audio/{other}"),
                };
                out.push(InputPart::Media {
                    mime,
                    data: data.to_string(),
                    name: None,
                });
            }
            "file" => {
                let file = p.extra.get("file");
                let name = file
                    .and_then(|f| f.get("filename"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let data = file
                    .and_then(|f| f.get("file_data"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        invalid_part(
                            "a `file` part needs `file.file_data` (a base64 data URL); uploaded `file_id`s exist only at OpenAI",
                        )
                    })?;
                out.push(url_part(data, name)?);
            }
            other => {
                return Err(invalid_part(&format!(
                    "content part type `{other}` is not supported by this provider"
                )))
            }
        }
    }
    Ok(out)
}

fn url_part(url: &str, name: Option<String>) -> Result<InputPart, ApiError> {
    let Some(parsed) = parse_data_url(url) else {
        return Ok(InputPart::Url {
            url: url.to_string(),
            mime: mime_from_url(url).map(str::to_string),
        });
    };
    let parsed = parsed.map_err(|e| e.with_param("messages"))?;
    let mut mime = parsed.media_type.to_ascii_lowercase();
    if mime.is_empty() || mime == "application/octet-stream" {
        mime = name
            .as_deref()
            .and_then(mime_from_url)
            .unwrap_or("application/octet-stream")
            .to_string();
    }
    Ok(InputPart::Media {
        mime,
        data: parsed.data.trim().to_string(),
        name,
    })
}

fn invalid_part(message: &str) -> ApiError {
    ApiError::bad_request(message.to_string()).with_param("messages")
}

/// What only the OpenAI-format providers take: the deprecated function calling
/// (`functions`, `function_call`), custom tools (`type: "custom"`) and their calls, and a
/// `tool_choice` other than `auto`/`required`/`none` or a named function. Translated,
/// the model would never see those tools: a 400 naming the parameter instead.
pub fn openai_only(req: &ChatRequest, provider: &str) -> Result<(), ApiError> {
    if let Some(key) = ["functions", "function_call"]
        .into_iter()
        .find(|k| req.extra.contains_key(*k))
    {
        return Err(ApiError::bad_request(format!(
            "the deprecated `{key}` parameter cannot be sent to {provider}; use `tools` and `tool_choice`"
        ))
        .with_param(key));
    }
    if let Some((i, t)) = req
        .tools
        .iter()
        .flatten()
        .enumerate()
        .find(|(_, t)| !t.is_function())
    {
        return Err(ApiError::bad_request(format!(
            "tools[{i}]: tools of type `{}` cannot be sent to {provider}; only `function` tools can",
            t.kind
        ))
        .with_param("tools"));
    }
    if let Some(Value::Object(choice)) = &req.tool_choice {
        let kind = choice
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("function");
        if kind != "function" {
            return Err(ApiError::bad_request(format!(
                "a `tool_choice` of type `{kind}` cannot be sent to {provider}; use `auto`, `required`, `none` or a named function"
            ))
            .with_param("tool_choice"));
        }
    }
    let custom_call = req
        .messages
        .iter()
        .enumerate()
        .find(|(_, m)| m.tool_calls.iter().flatten().any(|c| c.function.is_unset()));
    if let Some((i, _)) = custom_call {
        return Err(ApiError::bad_request(format!(
            "messages[{i}]: calls of custom tools cannot be sent to {provider}; only function calls can"
        ))
        .with_param("messages"));
    }
    Ok(())
}

/// Every `system` / `developer` message's text, in order (empty ones skipped).
pub fn system_texts(req: &ChatRequest) -> Vec<String> {
    req.messages
        .iter()
        .filter(|m| m.role.is_system())
        .map(|m| m.text_content())
        .filter(|t| !t.trim().is_empty())
        .collect()
}

/// The name of the tool call a `tool` message answers, from the earlier assistant turns.
pub fn tool_call_name(req: &ChatRequest, tool_call_id: &str) -> Option<String> {
    req.messages
        .iter()
        .filter(|m| m.role == Role::Assistant)
        .filter_map(|m| m.tool_calls.as_ref())
        .flatten()
        .find(|c| c.id == tool_call_id)
        .map(|c| c.function.name.clone())
}

/// An OpenAI `tool_choice` value, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Named(String),
}

impl ToolChoice {
    /// `None` when absent or of a shape kt does not know (left to the provider's default).
    pub fn from_request(req: &ChatRequest) -> Option<ToolChoice> {
        match req.tool_choice.as_ref()? {
            Value::String(s) => match s.as_str() {
                "auto" => Some(ToolChoice::Auto),
                "none" => Some(ToolChoice::None),
                "required" | "any" => Some(ToolChoice::Required),
                _ => None,
            },
            Value::Object(o) => o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .map(|n| ToolChoice::Named(n.to_string())),
            _ => None,
        }
    }
}

/// A `u64` field of a JSON object, 0 when absent.
pub fn u64_at(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// `prefix` + 24 random hex digits.
pub fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: time is unique enough for an id (ids are not secrets).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (b, n) in bytes.iter_mut().zip(nanos.to_le_bytes()) {
            *b = n;
        }
    }
    let mut s = String::with_capacity(prefix.len() + 24);
    s.push_str(prefix);
    s.push_str(&hex(&bytes));
    s
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Builds the OpenAI chunks of one stream with any number of choices (`common::ChunkBuilder`
/// serves single-choice streams). Remembers which choices already sent `role`.
#[derive(Debug, Clone)]
pub struct MultiChunkBuilder {
    pub id: String,
    pub model: String,
    pub created: u64,
    role_sent: Vec<u32>,
}

impl MultiChunkBuilder {
    pub fn new(id: String, model: String, created: u64) -> MultiChunkBuilder {
        MultiChunkBuilder {
            id,
            model,
            created,
            role_sent: Vec::new(),
        }
    }

    fn chunk(&self, choices: Vec<ChunkChoice>, usage: Option<Usage>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: chunk_object(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
            x_keeptrusts: None,
            extra: Map::new(),
        }
    }

    /// One choice's delta; the first delta of a choice also carries `role: assistant`.
    pub fn delta(&mut self, index: u32, mut delta: Delta, finish: Option<String>) -> ChatChunk {
        if !self.role_sent.contains(&index) {
            self.role_sent.push(index);
            delta.role = Some(Role::Assistant);
        }
        self.chunk(
            vec![ChunkChoice {
                index,
                delta,
                finish_reason: finish,
                logprobs: None,
                extra: Map::new(),
            }],
            None,
        )
    }

    /// The opening `{role: assistant, content: ""}` chunk, as OpenAI sends it.
    pub fn start(&mut self, index: u32) -> ChatChunk {
        self.text(index, "")
    }

    pub fn text(&mut self, index: u32, text: &str) -> ChatChunk {
        self.delta(
            index,
            Delta {
                content: Some(text.to_string()),
                ..Delta::default()
            },
            None,
        )
    }

    /// The first fragment of a tool call: `id`, `type`, `name` and (maybe empty) arguments.
    pub fn tool_start(
        &mut self,
        index: u32,
        tool_index: u32,
        id: &str,
        name: &str,
        arguments: &str,
    ) -> ChatChunk {
        self.tool_delta(
            index,
            ToolCallDelta {
                custom: None,
                index: tool_index,
                id: Some(id.to_string()),
                kind: Some(function_type()),
                function: Some(FunctionCallDelta {
                    name: Some(name.to_string()),
                    arguments: Some(arguments.to_string()),
                }),
            },
        )
    }

    /// A later fragment: only the index and a piece of the arguments.
    pub fn tool_arguments(&mut self, index: u32, tool_index: u32, fragment: &str) -> ChatChunk {
        self.tool_delta(
            index,
            ToolCallDelta {
                custom: None,
                index: tool_index,
                id: None,
                kind: None,
                function: Some(FunctionCallDelta {
                    name: None,
                    arguments: Some(fragment.to_string()),
                }),
            },
        )
    }

    fn tool_delta(&mut self, index: u32, call: ToolCallDelta) -> ChatChunk {
        self.delta(
            index,
            Delta {
                tool_calls: Some(vec![call]),
                ..Delta::default()
            },
            None,
        )
    }

    /// The closing chunk of a choice: empty delta, a finish reason.
    pub fn finish(&mut self, index: u32, reason: &str) -> ChatChunk {
        self.delta(index, Delta::default(), Some(reason.to_string()))
    }

    /// The usage-only chunk (`choices: []`) that precedes the end of the stream.
    pub fn usage(&self, usage: Usage) -> ChatChunk {
        self.chunk(Vec::new(), Some(usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_only_openai_takes_is_refused_by_name() {
        let req = |extra: Value| -> ChatRequest {
            let mut v = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            serde_json::from_value(v).unwrap()
        };
        let function = json!({"type": "function", "function": {"name": "f"}});
        let ok = json!({"tools": [function], "tool_choice": {"type": "function", "function": {"name": "f"}}});
        assert!(openai_only(&req(ok), "Gemini").is_ok());
        assert!(openai_only(&req(json!({"tool_choice": "required"})), "Gemini").is_ok());
        let refused = |extra: Value, param: &str, says: &str| {
            let e = openai_only(&req(extra), "Gemini").unwrap_err();
            assert_eq!(e.status, 400);
            assert_eq!(e.body.param.as_deref(), Some(param));
            assert!(e.body.message.contains(says), "{}", e.body.message);
            assert!(e.body.message.contains("to Gemini"), "{}", e.body.message);
        };
        refused(
            json!({"function_call": "auto"}),
            "function_call",
            "deprecated",
        );
        refused(
            json!({"tools": [function, {"type": "custom", "custom": {"name": "sh"}}]}),
            "tools",
            "tools[1]: tools of type `custom`",
        );
        refused(
            json!({"tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}}),
            "tool_choice",
            "`allowed_tools`",
        );
        let mut history = req(json!({}));
        history.messages.push(
            serde_json::from_value(json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "c", "type": "custom", "custom": {"name": "sh", "input": "ls"}}]}))
            .unwrap(),
        );
        let e = openai_only(&history, "Gemini").unwrap_err();
        assert!(
            e.body
                .message
                .starts_with("messages[1]: calls of custom tools"),
            "{}",
            e.body.message
        );
    }

    #[test]
    fn urls_and_mime_types() {
        assert_eq!(mime_from_url("https://x/a.JPG?s=1"), Some("image/jpeg"));
        assert_eq!(mime_from_url("https://x/a"), None);
        let content: Content = serde_json::from_value(json!([
            {"type": "image_url", "image_url": {"url": "data:image/PNG;base64,iVBOR"}},
            {"type": "file", "file": {"file_data": "data:;base64,AAAA", "filename": "notes.md"}}
        ]))
        .unwrap();
        let parts = input_parts(Some(&content)).unwrap();
        assert!(
            matches!(&parts[0], InputPart::Media { mime, data, .. } if mime == "image/png" && data == "iVBOR")
        );
        assert!(matches!(&parts[1], InputPart::Media { mime, .. } if mime == "text/markdown"));
        let bad: Content = serde_json::from_value(
            json!([{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}]),
        )
        .unwrap();
        assert_eq!(input_parts(Some(&bad)).unwrap_err().status, 400);
    }

    #[test]
    fn parts_of_every_kind() {
        let content: Content = serde_json::from_value(json!([
            {"type": "text", "text": "hi"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
            {"type": "image_url", "image_url": {"url": "https://e.com/cat.webp"}},
            {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "r.pdf"}}
        ]))
        .unwrap();
        let parts = input_parts(Some(&content)).unwrap();
        assert_eq!(parts.len(), 5);
        assert_eq!(
            parts[1],
            InputPart::Media {
                mime: "image/jpeg".into(),
                data: "/9j/".into(),
                name: None
            }
        );
        assert_eq!(
            parts[2],
            InputPart::Url {
                url: "https://e.com/cat.webp".into(),
                mime: Some("image/webp".into())
            }
        );
        assert!(matches!(&parts[3], InputPart::Media { mime, .. } if mime == "audio/wav"));
        assert!(matches!(&parts[4], InputPart::Media { name: Some(n), .. } if n == "r.pdf"));
        let bad: Content = serde_json::from_value(json!([{"type": "video", "x": 1}])).unwrap();
        let e = input_parts(Some(&bad)).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.body.message.contains("`video`"), "{}", e.body.message);
    }

    #[test]
    fn role_is_sent_once_per_choice() {
        let mut b = MultiChunkBuilder::new("c".into(), "m".into(), 1);
        let first = b.text(0, "a");
        let second = b.text(0, "b");
        let other = b.text(1, "c");
        assert_eq!(first.choices[0].delta.role, Some(Role::Assistant));
        assert_eq!(second.choices[0].delta.role, None);
        assert_eq!(other.choices[0].delta.role, Some(Role::Assistant));
        let u = b.usage(Usage::new(1, 2));
        assert!(u.choices.is_empty());
        assert_eq!(u.usage.unwrap().total_tokens, 3);
    }

    #[test]
    fn hex_and_ids() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        let id = random_id("call_");
        assert_eq!(id.len(), 5 + 24);
        assert_ne!(id, random_id("call_"));
    }
}
