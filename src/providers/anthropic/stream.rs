//! Anthropic's SSE stream → OpenAI chunks, incrementally (bytes may be split anywhere).
//!
//! Events are read by their `data.type` (the `event:` line is redundant) and unknown ones
//! are ignored, since Anthropic adds block and delta types over time. Tool calls get their
//! own OpenAI `index` (0, 1, …), independent of Anthropic's content-block index; a call's
//! `id` and name go out only in its first delta.

use std::collections::HashMap;

use serde_json::Value;

use super::{finish_reason, status_for_error_type, AnthropicUsage, JSON_TOOL};
use crate::openai::ApiError;
use crate::providers::common::ChunkBuilder;
use crate::providers::errors;
use crate::providers::sse::{SseEvent, SseParser};
use crate::providers::{StreamDecoder, StreamEvent};

/// What a content block turned out to be.
#[derive(Debug, Clone, Copy)]
enum Block {
    Text,
    /// A client tool call with its OpenAI index; `has_args` once an argument byte went out.
    Tool {
        index: u32,
        has_args: bool,
    },
    /// The synthetic JSON-mode tool: its input is streamed as content.
    Json,
    /// Thinking, server tools and anything newer: not forwarded.
    Other,
}

pub struct AnthropicStreamDecoder {
    sse: SseParser,
    pending: Vec<SseEvent>,
    chunks: ChunkBuilder,
    blocks: HashMap<u64, Block>,
    next_tool: u32,
    usage: AnthropicUsage,
    stop_reason: Option<String>,
    finished: bool,
    /// JSON mode forced the synthetic tool: its input is the answer, and any text the
    /// model writes around it would make the content invalid JSON, so text is dropped.
    pub json_only: bool,
}

impl AnthropicStreamDecoder {
    /// `model` is used until `message_start` names the model that answers.
    pub fn new(model: String, created: u64) -> AnthropicStreamDecoder {
        AnthropicStreamDecoder {
            sse: SseParser::new(),
            pending: Vec::new(),
            chunks: ChunkBuilder::new(String::new(), model, created),
            blocks: HashMap::new(),
            next_tool: 0,
            usage: AnthropicUsage::default(),
            stop_reason: None,
            finished: false,
            json_only: false,
        }
    }

    fn drain(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        let events = std::mem::take(&mut self.pending);
        for ev in events {
            if self.finished {
                break;
            }
            self.event(&ev.data, out)?;
        }
        Ok(())
    }

    fn start(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(c) = self.chunks.start() {
            out.push(StreamEvent::Chunk(c));
        }
    }

    fn event(&mut self, data: &str, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        let v: Value = serde_json::from_str(data).map_err(|e| {
            ApiError::bad_gateway(format!("anthropic sent a malformed stream event: {e}"))
        })?;
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "message_start" => {
                let msg = v.get("message").cloned().unwrap_or(Value::Null);
                if let Some(id) = msg.get("id").and_then(Value::as_str) {
                    self.chunks.id = id.to_string();
                }
                if let Some(m) = msg
                    .get("model")
                    .and_then(Value::as_str)
                    .filter(|m| !m.is_empty())
                {
                    self.chunks.model = m.to_string();
                }
                self.merge_usage(msg.get("usage"));
                self.start(out);
            }
            "content_block_start" => {
                self.start(out);
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                let block = v.get("content_block").cloned().unwrap_or(Value::Null);
                let kind = self.block_start(&block, out);
                self.blocks.insert(index, kind);
            }
            "content_block_delta" => {
                self.start(out);
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                let delta = v.get("delta").cloned().unwrap_or(Value::Null);
                self.block_delta(index, &delta, out);
            }
            "content_block_stop" => {
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                if let Some(Block::Tool {
                    index: i,
                    has_args: false,
                }) = self.blocks.get(&index).copied()
                {
                    // A call without arguments still needs valid JSON arguments.
                    out.push(StreamEvent::Chunk(self.chunks.tool_args(i, "{}")));
                    self.blocks.insert(
                        index,
                        Block::Tool {
                            index: i,
                            has_args: true,
                        },
                    );
                }
            }
            "message_delta" => {
                if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(r.to_string());
                }
                self.merge_usage(v.get("usage"));
            }
            "message_stop" => {
                self.start(out);
                let mut reason = finish_reason(self.stop_reason.as_deref());
                let real_tools = self
                    .blocks
                    .values()
                    .any(|b| matches!(b, Block::Tool { .. }));
                if reason == "tool_calls" && !real_tools {
                    // Only the JSON-mode tool was called: that is the answer.
                    reason = "stop";
                }
                out.push(StreamEvent::Chunk(self.chunks.finish(reason)));
                out.push(StreamEvent::Chunk(
                    self.chunks.usage(self.usage.to_openai()),
                ));
                out.push(StreamEvent::Done);
                self.finished = true;
            }
            "error" => {
                let kind = v
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .unwrap_or("api_error");
                let status = status_for_error_type(kind);
                out.push(StreamEvent::Error(errors::normalize(
                    status,
                    data.as_bytes(),
                )));
                self.finished = true;
            }
            // ping and event types added later.
            _ => {}
        }
        Ok(())
    }

    fn merge_usage(&mut self, usage: Option<&Value>) {
        if let Some(u) = usage.and_then(|u| serde_json::from_value(u.clone()).ok()) {
            self.usage.merge(u);
        }
    }

    fn block_start(&mut self, block: &Value, out: &mut Vec<StreamEvent>) -> Block {
        match block.get("type").and_then(Value::as_str) {
            Some("text") if self.json_only => Block::Other,
            Some("text") => {
                let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                if !text.is_empty() {
                    out.push(StreamEvent::Chunk(self.chunks.content(text)));
                }
                Block::Text
            }
            Some("tool_use") => {
                let name = block.get("name").and_then(Value::as_str).unwrap_or("");
                // Input is normally `{}` here and streamed as `input_json_delta`; a
                // non-empty one is sent whole.
                let input = block
                    .get("input")
                    .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                    .map(Value::to_string);
                if name == JSON_TOOL {
                    if let Some(i) = input {
                        out.push(StreamEvent::Chunk(self.chunks.content(&i)));
                    }
                    return Block::Json;
                }
                let index = self.next_tool;
                self.next_tool += 1;
                let id = block.get("id").and_then(Value::as_str).unwrap_or("");
                out.push(StreamEvent::Chunk(self.chunks.tool_start(index, id, name)));
                let has_args = input.is_some();
                if let Some(i) = input {
                    out.push(StreamEvent::Chunk(self.chunks.tool_args(index, &i)));
                }
                Block::Tool { index, has_args }
            }
            _ => Block::Other,
        }
    }

    fn block_delta(&mut self, index: u64, delta: &Value, out: &mut Vec<StreamEvent>) {
        let unknown = if self.json_only {
            Block::Other
        } else {
            Block::Text
        };
        let block = self.blocks.get(&index).copied().unwrap_or(unknown);
        match (delta.get("type").and_then(Value::as_str), block) {
            (Some("text_delta"), Block::Text) => {
                let text = delta.get("text").and_then(Value::as_str).unwrap_or("");
                if !text.is_empty() {
                    out.push(StreamEvent::Chunk(self.chunks.content(text)));
                }
            }
            (Some("input_json_delta"), Block::Tool { index: i, .. }) => {
                let part = delta
                    .get("partial_json")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !part.is_empty() {
                    out.push(StreamEvent::Chunk(self.chunks.tool_args(i, part)));
                    self.blocks.insert(
                        index,
                        Block::Tool {
                            index: i,
                            has_args: true,
                        },
                    );
                }
            }
            (Some("input_json_delta"), Block::Json) => {
                let part = delta
                    .get("partial_json")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !part.is_empty() {
                    out.push(StreamEvent::Chunk(self.chunks.content(part)));
                }
            }
            // thinking_delta, signature_delta, citations_delta, …
            _ => {}
        }
    }
}

impl StreamDecoder for AnthropicStreamDecoder {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        self.sse.feed(bytes, &mut self.pending);
        self.drain(out)
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        self.sse.finish(&mut self.pending);
        self.drain(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::common::testing::{assert_every_split, render};

    const CREATED: u64 = 1_700_000_000;

    fn decoder() -> AnthropicStreamDecoder {
        AnthropicStreamDecoder::new("claude-sonnet-4-5".into(), CREATED)
    }

    fn check(sse: &str, expected: &str) {
        let events = assert_every_split(sse.as_bytes(), || Box::new(decoder()));
        let want: Value = serde_json::from_str(expected).unwrap();
        assert_eq!(Value::Array(render(&events)), want);
    }

    #[test]
    fn text_stream() {
        check(
            include_str!("../../../testdata/providers/anthropic/stream.text.sse"),
            include_str!("../../../testdata/providers/anthropic/stream.text.chunks.json"),
        );
    }

    #[test]
    fn tool_use_stream() {
        check(
            include_str!("../../../testdata/providers/anthropic/stream.tool_use.sse"),
            include_str!("../../../testdata/providers/anthropic/stream.tool_use.chunks.json"),
        );
    }

    #[test]
    fn json_mode_stream() {
        check(
            include_str!("../../../testdata/providers/anthropic/stream.json_mode.sse"),
            include_str!("../../../testdata/providers/anthropic/stream.json_mode.chunks.json"),
        );
    }

    #[test]
    fn forced_json_mode_drops_text_around_the_answer() {
        let sse = include_str!("../../../testdata/providers/anthropic/stream.json_mode.sse").replacen(
            "event: content_block_start",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":9,\"content_block\":{\"type\":\"text\",\"text\":\"Sure: \"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":9,\"delta\":{\"type\":\"text_delta\",\"text\":\"here\"}}\n\nevent: content_block_start",
            1,
        );
        let json_only = || {
            let mut d = decoder();
            d.json_only = true;
            Box::new(d) as Box<dyn StreamDecoder>
        };
        let events = assert_every_split(sse.as_bytes(), json_only);
        let want: Value = serde_json::from_str(include_str!(
            "../../../testdata/providers/anthropic/stream.json_mode.chunks.json"
        ))
        .unwrap();
        assert_eq!(Value::Array(render(&events)), want);
        // Without JSON mode the same text would be content.
        let events = assert_every_split(sse.as_bytes(), || Box::new(decoder()));
        assert_ne!(Value::Array(render(&events)), want);
    }

    #[test]
    fn error_event_is_an_in_band_error() {
        let sse = include_str!("../../../testdata/providers/anthropic/stream.error.sse");
        let events = assert_every_split(sse.as_bytes(), || Box::new(decoder()));
        let Some(StreamEvent::Error(e)) = events.last() else {
            panic!("{events:?}");
        };
        assert_eq!(e.status, 503);
        assert_eq!(e.body.message, "Overloaded");
        assert!(!events.iter().any(|e| matches!(e, StreamEvent::Done)));
    }

    #[test]
    fn truncated_stream_has_no_done() {
        let sse = include_str!("../../../testdata/providers/anthropic/stream.text.sse");
        let cut = sse.find("event: message_stop").unwrap();
        let events = assert_every_split(&sse.as_bytes()[..cut], || Box::new(decoder()));
        assert!(!events.iter().any(|e| matches!(e, StreamEvent::Done)));
    }
}
