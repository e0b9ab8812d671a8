//! Cohere v2 chat SSE stream → OpenAI chunks, incrementally (bytes may be split anywhere).
//!
//! Events are read by `data.type`; unknown ones (citations, debug, newer types) are
//! ignored, and a trailing `[DONE]` is tolerated. Tool calls get their own OpenAI index;
//! a call's `id` and name go out only in its first delta.

use std::collections::HashMap;

use serde_json::Value;

use super::{finish_reason, usage};
use crate::openai::ApiError;
use crate::providers::common::ChunkBuilder;
use crate::providers::sse::{SseEvent, SseParser};
use crate::providers::{StreamDecoder, StreamEvent};

/// An open tool call: its OpenAI index, and whether argument bytes went out.
#[derive(Debug, Clone, Copy)]
struct Call {
    index: u32,
    has_args: bool,
}

pub struct CohereStreamDecoder {
    sse: SseParser,
    pending: Vec<SseEvent>,
    chunks: ChunkBuilder,
    /// Cohere's tool-call index → the call.
    calls: HashMap<u64, Call>,
    next_tool: u32,
    finished: bool,
}

impl CohereStreamDecoder {
    pub fn new(model: String, created: u64) -> CohereStreamDecoder {
        CohereStreamDecoder {
            sse: SseParser::new(),
            pending: Vec::new(),
            chunks: ChunkBuilder::new(String::new(), model, created),
            calls: HashMap::new(),
            next_tool: 0,
            finished: false,
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

    fn text(&mut self, text: Option<&str>, out: &mut Vec<StreamEvent>) {
        if let Some(t) = text.filter(|t| !t.is_empty()) {
            out.push(StreamEvent::Chunk(self.chunks.content(t)));
        }
    }

    fn event(&mut self, data: &str, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        if data.trim() == "[DONE]" {
            return Ok(());
        }
        let v: Value = serde_json::from_str(data).map_err(|e| {
            ApiError::bad_gateway(format!("cohere sent a malformed stream event: {e}"))
        })?;
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "message-start" => {
                if let Some(id) = v.get("id").and_then(Value::as_str) {
                    self.chunks.id = id.to_string();
                }
                self.start(out);
            }
            "content-start" | "content-delta" => {
                self.start(out);
                // Thinking content carries `thinking` instead of `text`: not forwarded.
                let text = v
                    .pointer("/delta/message/content/text")
                    .and_then(Value::as_str);
                self.text(text, out);
            }
            "tool-call-start" => {
                self.start(out);
                let call = v
                    .pointer("/delta/message/tool_calls")
                    .cloned()
                    .unwrap_or(Value::Null);
                let i = self.next_tool;
                self.next_tool += 1;
                let id = call.get("id").and_then(Value::as_str).unwrap_or("");
                let name = call
                    .pointer("/function/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                out.push(StreamEvent::Chunk(self.chunks.tool_start(i, id, name)));
                let args = call
                    .pointer("/function/arguments")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !args.is_empty() {
                    out.push(StreamEvent::Chunk(self.chunks.tool_args(i, args)));
                }
                self.calls.insert(
                    index,
                    Call {
                        index: i,
                        has_args: !args.is_empty(),
                    },
                );
            }
            "tool-call-delta" => {
                let args = v
                    .pointer("/delta/message/tool_calls/function/arguments")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if let (Some(call), false) = (self.calls.get_mut(&index), args.is_empty()) {
                    call.has_args = true;
                    let i = call.index;
                    out.push(StreamEvent::Chunk(self.chunks.tool_args(i, args)));
                }
            }
            "tool-call-end" => {
                if let Some(call) = self.calls.get_mut(&index).filter(|c| !c.has_args) {
                    // A call without arguments still needs valid JSON arguments.
                    call.has_args = true;
                    let i = call.index;
                    out.push(StreamEvent::Chunk(self.chunks.tool_args(i, "{}")));
                }
            }
            "message-end" => {
                self.finished = true;
                let reason = v.pointer("/delta/finish_reason").and_then(Value::as_str);
                let error = v.pointer("/delta/error").and_then(Value::as_str);
                match finish_reason(reason, error) {
                    Ok(reason) => {
                        self.start(out);
                        out.push(StreamEvent::Chunk(self.chunks.finish(reason)));
                        let u = usage(v.pointer("/delta/usage"));
                        out.push(StreamEvent::Chunk(self.chunks.usage(u)));
                        out.push(StreamEvent::Done);
                    }
                    Err(e) => out.push(StreamEvent::Error(e)),
                }
            }
            // tool-plan-delta, citation-start/end, debug and event types added later.
            _ => {}
        }
        Ok(())
    }
}

impl StreamDecoder for CohereStreamDecoder {
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

    fn decoder() -> CohereStreamDecoder {
        CohereStreamDecoder::new("command-a-03-2025".into(), CREATED)
    }

    fn check(sse: &str, expected: &str) {
        let events = assert_every_split(sse.as_bytes(), || Box::new(decoder()));
        let want: Value = serde_json::from_str(expected).unwrap();
        assert_eq!(Value::Array(render(&events)), want);
    }

    #[test]
    fn text_stream() {
        check(
            include_str!("../../../testdata/providers/cohere/stream.text.sse"),
            include_str!("../../../testdata/providers/cohere/stream.text.chunks.json"),
        );
    }

    #[test]
    fn tool_call_stream() {
        check(
            include_str!("../../../testdata/providers/cohere/stream.tool_call.sse"),
            include_str!("../../../testdata/providers/cohere/stream.tool_call.chunks.json"),
        );
    }

    #[test]
    fn error_finish_is_an_in_band_error() {
        let sse = include_str!("../../../testdata/providers/cohere/stream.error.sse");
        let events = assert_every_split(sse.as_bytes(), || Box::new(decoder()));
        let Some(StreamEvent::Error(e)) = events.last() else {
            panic!("{events:?}");
        };
        assert_eq!(e.status, 502);
        assert_eq!(e.body.message, "internal model error");
        assert!(!events.iter().any(|e| matches!(e, StreamEvent::Done)));
    }
}
