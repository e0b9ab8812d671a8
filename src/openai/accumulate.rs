//! A streamed answer put back together: each chunk's deltas joined into the whole
//! response, for the output phase of the policy chain and for the event.

use serde_json::{Map, Value};

use super::audio::AudioParts;
use super::types::{
    completion_object, function_type, ChatChunk, ChatResponse, Choice, Content, CustomCall,
    Message, Role, ToolCall, Usage,
};

/// Adds a streamed piece of a deprecated `function_call` (`delta.function_call`: the
/// `name` once, then `arguments` in fragments) to the call held so far.
pub fn join_function_call(into: &mut Map<String, Value>, part: &Map<String, Value>) {
    for (k, v) in part {
        match (into.get_mut(k), v) {
            (Some(Value::String(held)), Value::String(more)) => held.push_str(more),
            _ => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Assembles a streamed response back into a complete one (for the output phase of the
/// policy chain and for the event).
#[derive(Debug, Default)]
pub struct StreamAccumulator {
    pub id: String,
    pub model: String,
    pub created: u64,
    choices: Vec<Choice>,
    /// Each choice's audio output, without its speech (`data`): the transcript is what
    /// the output phase reads.
    audio: Vec<Option<AudioParts>>,
    pub usage: Option<Usage>,
    pub chunks: u64,
}

impl StreamAccumulator {
    pub fn push(&mut self, chunk: &ChatChunk) {
        self.chunks += 1;
        if self.id.is_empty() {
            self.id.clone_from(&chunk.id);
            self.model.clone_from(&chunk.model);
            self.created = chunk.created;
        }
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        for c in &chunk.choices {
            let idx = c.index as usize;
            while self.choices.len() <= idx {
                let index = u32::try_from(self.choices.len()).unwrap_or(u32::MAX);
                self.choices.push(Choice {
                    index,
                    message: Message {
                        role: Role::Assistant,
                        ..Message::default()
                    },
                    ..Choice::default()
                });
            }
            let Some(choice) = self.choices.get_mut(idx) else {
                continue;
            };
            if let Some(text) = &c.delta.content {
                match &mut choice.message.content {
                    Some(Content::Text(s)) => s.push_str(text),
                    _ => choice.message.content = Some(Content::Text(text.clone())),
                }
            }
            if let Some(text) = &c.delta.refusal {
                choice
                    .message
                    .refusal
                    .get_or_insert_with(String::new)
                    .push_str(text);
            }
            if let Some(Value::Object(part)) = c.delta.extra.get("function_call") {
                let into = choice
                    .message
                    .extra
                    .entry("function_call")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(into) = into {
                    join_function_call(into, part);
                }
            }
            if let Some(Value::Object(part)) = c.delta.extra.get("audio") {
                if self.audio.len() <= idx {
                    self.audio.resize_with(idx + 1, || None);
                }
                if let Some(slot) = self.audio.get_mut(idx) {
                    slot.get_or_insert_with(AudioParts::default)
                        .push(part, false);
                }
            }
            if let Some(calls) = &c.delta.tool_calls {
                let list = choice.message.tool_calls.get_or_insert_with(Vec::new);
                for d in calls {
                    let i = d.index as usize;
                    while list.len() <= i {
                        list.push(ToolCall {
                            kind: function_type(),
                            ..ToolCall::default()
                        });
                    }
                    if let Some(call) = list.get_mut(i) {
                        if let Some(id) = &d.id {
                            call.id.push_str(id);
                        }
                        if let Some(kind) = &d.kind {
                            call.kind.clone_from(kind);
                        }
                        if let Some(c) = &d.custom {
                            let into = call.custom.get_or_insert_with(CustomCall::default);
                            into.name.push_str(c.name.as_deref().unwrap_or_default());
                            into.input.push_str(c.input.as_deref().unwrap_or_default());
                        }
                        if let Some(f) = &d.function {
                            if let Some(n) = &f.name {
                                call.function.name.push_str(n);
                            }
                            if let Some(a) = &f.arguments {
                                call.function.arguments.push_str(a);
                            }
                        }
                    }
                }
            }
            if c.finish_reason.is_some() {
                choice.finish_reason.clone_from(&c.finish_reason);
            }
        }
    }

    /// The assembled text of all choices so far.
    pub fn text(&self) -> String {
        self.choices
            .iter()
            .map(|c| c.message.text_content())
            .collect()
    }

    pub fn into_response(self) -> ChatResponse {
        let mut choices = self.choices;
        for (choice, audio) in choices.iter_mut().zip(self.audio) {
            if let Some(audio) = audio {
                choice
                    .message
                    .extra
                    .insert("audio".to_string(), audio.into_value());
            }
        }
        ChatResponse {
            id: self.id,
            object: completion_object(),
            created: self.created,
            model: self.model,
            choices,
            usage: self.usage,
            x_keeptrusts: None,
            extra: Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulator_joins_tool_call_fragments() {
        let chunks = [
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get","arguments":""}}]}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"custom","custom":{"name":"sh","input":"echo "}}]}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"custom":{"input":"hi"}}]}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        ];
        let mut acc = StreamAccumulator::default();
        for c in chunks {
            acc.push(&serde_json::from_str(c).unwrap());
        }
        let resp = acc.into_response();
        let call = &resp.choices[0].message.tool_calls.as_ref().unwrap()[0];
        assert_eq!(call.id, "call_a");
        assert_eq!(call.function.arguments, "{\"a\":1}");
        assert_eq!(resp.choices[0].finish_reason.as_deref(), Some("tool_calls"));
        // A custom tool's call: its type and free-text input, no `function`.
        let custom = &resp.choices[0].message.tool_calls.as_ref().unwrap()[1];
        assert_eq!((custom.name(), custom.input()), ("sh", "echo hi"));
        assert_eq!(
            serde_json::to_value(custom).unwrap(),
            serde_json::json!({"id": "call_b", "type": "custom", "custom": {"name": "sh", "input": "echo hi"}})
        );
    }

    #[test]
    fn accumulator_joins_refusals_audio_transcripts_and_function_calls() {
        let chunks = [
            r#"{"id":"c","model":"m","choices":[{"index":1,"delta":{"role":"assistant","refusal":"I can"}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":1,"delta":{"refusal":"not."}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"audio":{"id":"audio_1","transcript":"Hel"}}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"audio":{"data":"AAAA","transcript":"lo"}}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"audio":{"expires_at":9}},"finish_reason":"stop"}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":2,"delta":{"role":"assistant","function_call":{"name":"get","arguments":""}}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":2,"delta":{"function_call":{"arguments":"{\"a\":"}}}]}"#,
            r#"{"id":"c","model":"m","choices":[{"index":2,"delta":{"function_call":{"arguments":"1}"}},"finish_reason":"function_call"}]}"#,
        ];
        let mut acc = StreamAccumulator::default();
        for c in chunks {
            acc.push(&serde_json::from_str(c).unwrap());
        }
        let resp = acc.into_response();
        assert_eq!(
            resp.choices[1].message.refusal.as_deref(),
            Some("I cannot.")
        );
        // The transcript, for the output phase; the speech is not kept.
        assert_eq!(
            resp.choices[0].message.extra["audio"],
            serde_json::json!({"id": "audio_1", "transcript": "Hello", "expires_at": 9})
        );
        assert!(!resp.choices[1].message.extra.contains_key("audio"));
        let call = resp.choices[2].message.function_call().unwrap();
        assert_eq!(
            (call.name.as_str(), call.arguments.as_str()),
            ("get", "{\"a\":1}")
        );
    }
}
