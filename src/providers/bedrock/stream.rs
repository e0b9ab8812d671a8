//! ConverseStream events → OpenAI chunks.
//!
//! | event | emitted |
//! |---|---|
//! | `messageStart` | `{role: assistant, content: ""}` |
//! | `contentBlockStart` (toolUse) | first tool-call fragment: next OpenAI tool index, id, name |
//! | `contentBlockDelta` text | `{content}` |
//! | `contentBlockDelta` toolUse | `{tool_calls: [{index, function.arguments}]}` |
//! | `contentBlockStop` | `arguments: "{}"` for a tool call that streamed none |
//! | `messageStop` | the finish chunk |
//! | `metadata` (after messageStop) | the usage-only chunk, then the end of the stream |
//! | exceptions (`:message-type: exception` / `error`) | an in-band error |

use serde_json::Value;

use super::eventstream::{Decoder, Message};
use super::response::{error_for, finish_reason, usage_from};
use crate::openai::ApiError;
use crate::providers::native::MultiChunkBuilder;
use crate::providers::{StreamDecoder, StreamEvent};

/// One tool call of the stream.
struct ToolBlock {
    /// Converse `contentBlockIndex`.
    block: u64,
    /// OpenAI `tool_calls[].index`.
    index: u32,
    has_arguments: bool,
}

pub struct BedrockStreamDecoder {
    frames: Decoder,
    messages: Vec<Message>,
    chunks: MultiChunkBuilder,
    tools: Vec<ToolBlock>,
    stopped: bool,
    done: bool,
}

impl BedrockStreamDecoder {
    pub fn new(id: String, model: String, created: u64) -> BedrockStreamDecoder {
        BedrockStreamDecoder {
            frames: Decoder::new(),
            messages: Vec::new(),
            chunks: MultiChunkBuilder::new(id, model, created),
            tools: Vec::new(),
            stopped: false,
            done: false,
        }
    }

    fn handle(&mut self, m: &Message, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        match m.header_str(":message-type") {
            Some("exception") => {
                let message = serde_json::from_slice::<Value>(&m.payload)
                    .ok()
                    .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_else(|| String::from_utf8_lossy(&m.payload).into_owned());
                out.push(StreamEvent::Error(error_for(
                    m.header_str(":exception-type"),
                    502,
                    message,
                )));
                return Ok(());
            }
            Some("error") => {
                let message = m
                    .header_str(":error-message")
                    .unwrap_or("bedrock reported a stream error")
                    .to_string();
                out.push(StreamEvent::Error(error_for(
                    m.header_str(":error-code"),
                    502,
                    message,
                )));
                return Ok(());
            }
            _ => {}
        }
        let event: Value = serde_json::from_slice(&m.payload).map_err(|e| {
            ApiError::bad_gateway(format!("bedrock sent a malformed stream event: {e}"))
        })?;
        match m.header_str(":event-type").unwrap_or_default() {
            "messageStart" => out.push(StreamEvent::Chunk(self.chunks.start(0))),
            "contentBlockStart" => {
                if let Some(tu) = event.pointer("/start/toolUse") {
                    let index = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
                    self.tools.push(ToolBlock {
                        block: block_index(&event),
                        index,
                        has_arguments: false,
                    });
                    let id = tu
                        .get("toolUseId")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let name = tu.get("name").and_then(Value::as_str).unwrap_or_default();
                    out.push(StreamEvent::Chunk(
                        self.chunks.tool_start(0, index, id, name, ""),
                    ));
                }
            }
            "contentBlockDelta" => {
                let block = block_index(&event);
                if let Some(text) = event.pointer("/delta/text").and_then(Value::as_str) {
                    if !text.is_empty() {
                        out.push(StreamEvent::Chunk(self.chunks.text(0, text)));
                    }
                } else if let Some(input) = event
                    .pointer("/delta/toolUse/input")
                    .and_then(Value::as_str)
                {
                    let tool = self.tools.iter_mut().find(|t| t.block == block);
                    if let (Some(tool), false) = (tool, input.is_empty()) {
                        tool.has_arguments = true;
                        let index = tool.index;
                        out.push(StreamEvent::Chunk(
                            self.chunks.tool_arguments(0, index, input),
                        ));
                    }
                }
                // reasoningContent and citations have no OpenAI chunk field.
            }
            "contentBlockStop" => {
                let block = block_index(&event);
                if let Some(tool) = self
                    .tools
                    .iter_mut()
                    .find(|t| t.block == block && !t.has_arguments)
                {
                    tool.has_arguments = true;
                    let index = tool.index;
                    out.push(StreamEvent::Chunk(
                        self.chunks.tool_arguments(0, index, "{}"),
                    ));
                }
            }
            "messageStop" => {
                let reason = finish_reason(
                    event.get("stopReason").and_then(Value::as_str),
                    !self.tools.is_empty(),
                );
                self.stopped = true;
                out.push(StreamEvent::Chunk(self.chunks.finish(0, reason)));
            }
            "metadata" => {
                if let Some(u) = event.get("usage") {
                    out.push(StreamEvent::Chunk(self.chunks.usage(usage_from(u))));
                }
                if self.stopped {
                    self.done = true;
                    out.push(StreamEvent::Done);
                }
            }
            // New event types appear over time; they carry nothing OpenAI has a field for.
            _ => {}
        }
        Ok(())
    }
}

fn block_index(event: &Value) -> u64 {
    event
        .get("contentBlockIndex")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

impl StreamDecoder for BedrockStreamDecoder {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        let framed = self.frames.feed(bytes, &mut self.messages);
        let messages = std::mem::take(&mut self.messages);
        for m in &messages {
            self.handle(m, out)?;
        }
        framed.map_err(|e| ApiError::bad_gateway(format!("bedrock stream: {e}")))
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        self.frames
            .finish()
            .map_err(|e| ApiError::bad_gateway(format!("bedrock stream: {e}")))?;
        // A stream that stopped but sent no metadata is still complete.
        if self.stopped && !self.done {
            self.done = true;
            out.push(StreamEvent::Done);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::bedrock::eventstream::{encode, encode_event, HeaderValue};
    use crate::providers::common::testing::{assert_every_split, render};
    use serde_json::json;

    fn fixture_bytes() -> Vec<u8> {
        let path = format!(
            "{}/testdata/providers/bedrock/stream_tool_use.jsonl",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut bytes = Vec::new();
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let (name, payload) = v.as_object().unwrap().iter().next().unwrap();
            bytes.extend(encode_event(name, payload.to_string().as_bytes()));
        }
        bytes
    }

    /// Decodes whole, split at every byte and byte by byte (all must agree), rendered.
    fn decode(bytes: &[u8]) -> Vec<Value> {
        render(&assert_every_split(bytes, || {
            Box::new(BedrockStreamDecoder::new(
                "chatcmpl-x".into(),
                "m".into(),
                7,
            ))
        }))
    }

    #[test]
    fn stream_translates_to_the_expected_chunks_at_every_split() {
        let got = decode(&fixture_bytes());
        let path = format!(
            "{}/testdata/providers/bedrock/stream_tool_use.expected.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let want: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(Value::Array(got), want);
    }

    /// `stream_text.bin` is a recorded-shape ConverseStream body that botocore 1.43's
    /// `EventStreamBuffer` decodes to six events (checked when it was made).
    #[test]
    fn a_botocore_checked_binary_stream() {
        let path = format!(
            "{}/testdata/providers/bedrock/stream_text.bin",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(path).unwrap();
        let out = decode(&bytes);
        let text: String = out
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Bonjour à vous");
        assert_eq!(out[out.len() - 3]["choices"][0]["finish_reason"], "stop");
        assert_eq!(out[out.len() - 2]["usage"]["total_tokens"], 13);
        assert_eq!(out[out.len() - 1], json!("[DONE]"));
    }

    #[test]
    fn exceptions_are_in_band_errors() {
        let mut bytes = encode_event("messageStart", br#"{"role":"assistant"}"#);
        bytes.extend(encode(
            &[
                (
                    ":exception-type",
                    HeaderValue::String("throttlingException".into()),
                ),
                (
                    ":content-type",
                    HeaderValue::String("application/json".into()),
                ),
                (":message-type", HeaderValue::String("exception".into())),
            ],
            br#"{"message":"Too many tokens, please wait before trying again."}"#,
        ));
        let mut d = BedrockStreamDecoder::new("c".into(), "m".into(), 1);
        let mut out = Vec::new();
        d.feed(&bytes, &mut out).unwrap();
        match &out[1] {
            StreamEvent::Error(e) => {
                assert_eq!(e.status, 429);
                assert!(e.body.message.starts_with("Too many tokens"));
            }
            other => panic!("{other:?}"),
        }
        let err = encode(
            &[
                (":message-type", HeaderValue::String("error".into())),
                (":error-code", HeaderValue::String("InternalFailure".into())),
                (":error-message", HeaderValue::String("boom".into())),
            ],
            b"",
        );
        let mut out = Vec::new();
        d.feed(&err, &mut out).unwrap();
        assert!(
            matches!(&out[0], StreamEvent::Error(e) if e.body.message == "boom" && e.status == 502)
        );
    }

    #[test]
    fn a_cut_or_corrupt_stream_is_an_error() {
        let bytes = fixture_bytes();
        let mut d = BedrockStreamDecoder::new("c".into(), "m".into(), 1);
        let mut out = Vec::new();
        d.feed(&bytes[..bytes.len() - 3], &mut out).unwrap();
        assert!(!out.iter().any(|e| matches!(e, StreamEvent::Done)));
        assert_eq!(d.finish(&mut out).unwrap_err().status, 502);
        let mut bad = bytes.clone();
        bad[20] ^= 0xff;
        let mut d = BedrockStreamDecoder::new("c".into(), "m".into(), 1);
        assert_eq!(d.feed(&bad, &mut Vec::new()).unwrap_err().status, 502);
    }
}
