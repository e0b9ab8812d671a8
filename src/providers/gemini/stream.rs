//! `streamGenerateContent?alt=sse` → OpenAI chunks.
//!
//! Each SSE event is a whole `GenerateContentResponse` (frames separated by CRLF blank
//! lines; no event names, no `[DONE]`). Text parts arrive as increments and become content
//! deltas; a `functionCall` part arrives whole and becomes one complete tool-call delta
//! (id, name and all its arguments) with the next OpenAI tool index of its candidate; a
//! `finishReason` closes its candidate. `usageMetadata` is a running total: the last one
//! becomes the usage-only chunk when the stream ends, then the end of the stream.
//! `{"error": …}` events and blocked prompts are in-band errors.

use serde_json::Value;

use super::error::parse_error_value;
use super::response::{
    blocked_prompt, candidate_index, finish_reason, function_call, part_text, tool_call_id,
    usage_from,
};
use crate::openai::ApiError;
use crate::providers::native::MultiChunkBuilder;
use crate::providers::sse::{SseEvent, SseParser};
use crate::providers::{StreamDecoder, StreamEvent};

/// What the stream has said about one candidate.
#[derive(Default)]
struct Candidate {
    index: u32,
    tool_calls: u32,
    finished: bool,
}

pub struct GeminiStreamDecoder {
    sse: SseParser,
    events: Vec<SseEvent>,
    /// Set from the first event (its `responseId` and `modelVersion`).
    chunks: Option<MultiChunkBuilder>,
    fallback: MultiChunkBuilder,
    /// Seeds the tool-call ids: the response id, else the fallback id.
    seed: String,
    candidates: Vec<Candidate>,
    usage: Option<Value>,
    ended: bool,
}

impl GeminiStreamDecoder {
    /// `id` and `model` are used when the upstream names neither.
    pub fn new(id: String, model: String, created: u64) -> GeminiStreamDecoder {
        GeminiStreamDecoder {
            sse: SseParser::new(),
            events: Vec::new(),
            chunks: None,
            seed: id.clone(),
            fallback: MultiChunkBuilder::new(id, model, created),
            candidates: Vec::new(),
            usage: None,
            ended: false,
        }
    }

    fn drain(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        let events = std::mem::take(&mut self.events);
        for ev in events {
            let data = ev.data.trim();
            if data.is_empty() || data == "[DONE]" {
                continue;
            }
            let v: Value = serde_json::from_str(data).map_err(|e| {
                ApiError::bad_gateway(format!("gemini sent a malformed stream event: {e}"))
            })?;
            self.event(&v, out);
        }
        Ok(())
    }

    fn builder(&mut self, v: &Value) -> &mut MultiChunkBuilder {
        let fallback = &self.fallback;
        let seed = &mut self.seed;
        self.chunks.get_or_insert_with(|| {
            let mut b = fallback.clone();
            if let Some(id) = v.get("responseId").and_then(Value::as_str) {
                *seed = id.to_string();
                b.id = format!("chatcmpl-{id}");
            }
            if let Some(model) = v.get("modelVersion").and_then(Value::as_str) {
                b.model = model.to_string();
            }
            b
        })
    }

    /// The state of candidate `index`, created on first sight.
    fn candidate(&mut self, index: u32) -> Option<&mut Candidate> {
        if !self.candidates.iter().any(|c| c.index == index) {
            self.candidates.push(Candidate {
                index,
                ..Candidate::default()
            });
        }
        self.candidates.iter_mut().find(|c| c.index == index)
    }

    fn event(&mut self, v: &Value, out: &mut Vec<StreamEvent>) {
        if let Some(err) = v.get("error") {
            out.push(StreamEvent::Error(parse_error_value(502, err)));
            return;
        }
        if let Some(e) = blocked_prompt(v) {
            out.push(StreamEvent::Error(e));
            return;
        }
        self.builder(v);
        if let Some(u) = v.get("usageMetadata") {
            self.usage = Some(u.clone());
        }
        let candidates = v.get("candidates").and_then(Value::as_array);
        for (pos, c) in candidates.into_iter().flatten().enumerate() {
            let index = candidate_index(c, pos);
            for part in c
                .pointer("/content/parts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some((name, arguments)) = function_call(part) {
                    let Some(cand) = self.candidate(index) else {
                        continue;
                    };
                    let ordinal = cand.tool_calls;
                    cand.tool_calls += 1;
                    let id = tool_call_id(&self.seed, index, ordinal, part);
                    let chunk = self
                        .builder(v)
                        .tool_start(index, ordinal, &id, &name, &arguments);
                    out.push(StreamEvent::Chunk(chunk));
                } else if let Some(text) = part_text(part).filter(|t| !t.is_empty()) {
                    self.candidate(index);
                    let chunk = self.builder(v).text(index, text);
                    out.push(StreamEvent::Chunk(chunk));
                }
            }
            if let Some(reason) = c.get("finishReason").and_then(Value::as_str) {
                let Some(cand) = self.candidate(index).filter(|c| !c.finished) else {
                    continue;
                };
                cand.finished = true;
                let reason = finish_reason(reason, cand.tool_calls > 0);
                let chunk = self.builder(v).finish(index, reason);
                out.push(StreamEvent::Chunk(chunk));
            }
        }
    }
}

impl StreamDecoder for GeminiStreamDecoder {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        self.sse.feed(bytes, &mut self.events);
        self.drain(out)
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        self.sse.finish(&mut self.events);
        self.drain(out)?;
        // Gemini has no terminal event: the stream is complete when it ends after every
        // candidate it started has finished.
        let complete = !self.candidates.is_empty() && self.candidates.iter().all(|c| c.finished);
        if complete && !self.ended {
            self.ended = true;
            if let (Some(u), Some(b)) = (&self.usage, &self.chunks) {
                out.push(StreamEvent::Chunk(b.usage(usage_from(u))));
            }
            out.push(StreamEvent::Done);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::common::testing::{assert_every_split, render};
    use serde_json::json;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/testdata/providers/gemini/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// Decodes whole, split at every byte and byte by byte (all must agree), rendered.
    fn decode(bytes: &[u8]) -> Vec<Value> {
        render(&assert_every_split(bytes, || {
            Box::new(GeminiStreamDecoder::new(
                "fallback".into(),
                "gemini-x".into(),
                7,
            ))
        }))
    }

    #[test]
    fn stream_translates_to_the_expected_chunks() {
        let got = decode(&fixture("stream_tool_call.sse"));
        let want: Value =
            serde_json::from_slice(&fixture("stream_tool_call.expected.json")).unwrap();
        assert_eq!(Value::Array(got), want);
    }

    #[test]
    fn candidates_interleave_and_finish_separately() {
        let out = decode(&fixture("stream_text.sse"));
        let pick = |i: usize| {
            let c = &out[i]["choices"][0];
            (
                c["index"].clone(),
                c["delta"].clone(),
                c["finish_reason"].clone(),
            )
        };
        assert_eq!(
            pick(0),
            (
                json!(0),
                json!({"role": "assistant", "content": "Bonjour"}),
                Value::Null
            )
        );
        assert_eq!(
            pick(1),
            (json!(0), json!({"content": " le monde"}), Value::Null)
        );
        assert_eq!(
            pick(2),
            (
                json!(1),
                json!({"role": "assistant", "content": "Salut"}),
                Value::Null
            )
        );
        assert_eq!(pick(3), (json!(0), json!({"content": "!"}), Value::Null));
        assert_eq!(pick(4), (json!(0), json!({}), json!("stop")));
        assert_eq!(
            pick(5),
            (json!(1), json!({"content": " tout"}), Value::Null)
        );
        assert_eq!(pick(6), (json!(1), json!({}), json!("length")));
        assert_eq!(out[7]["usage"]["total_tokens"], 10);
        assert_eq!(out[8], json!("[DONE]"));
        assert_eq!(out.len(), 9);
    }

    #[test]
    fn every_fixture_ends_the_stream() {
        for name in ["stream_tool_call.sse", "stream_text.sse"] {
            let out = decode(&fixture(name));
            assert_eq!(out.last(), Some(&json!("[DONE]")), "{name}: {out:?}");
        }
    }

    #[test]
    fn errors_blocks_and_incomplete_streams() {
        let out = decode(b"data: {\"error\":{\"code\":429,\"message\":\"Resource has been exhausted\",\"status\":\"RESOURCE_EXHAUSTED\"}}\r\n\r\n");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["status"], 429);
        assert_eq!(out[0]["error"]["message"], "Resource has been exhausted");
        assert_eq!(out[0]["error"]["code"], "rate_limit_exceeded");
        let out = decode(b"data: {\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},\"usageMetadata\":{\"promptTokenCount\":3}}\n\n");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["status"], 400);
        assert_eq!(out[0]["error"]["code"], "content_filter");
        // Text without any finishReason: no end of stream (the gateway reports the cut).
        let out =
            decode(b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}]}}]}\n\n");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["choices"][0]["delta"]["content"], "Hel");
        assert_eq!(out[0]["id"], "fallback");
        assert_eq!(out[0]["model"], "gemini-x");
    }
}
