//! Where the text of a realtime message lives, for the policy chain to read and rewrite.
//! Pure: no I/O.
//!
//! A realtime message is a JSON event (`{"type": "conversation.item.create", …}`). Its
//! text is every string under one of these keys, wherever it sits in the event:
//! `text` (content parts `input_text`, `text`, `output_text`; `*.text.done`), `transcript`
//! (audio parts, transcription and transcript events), `instructions` (`session.update`,
//! `response.create`), `delta` in the events whose type ends in `text.delta` or
//! `transcript.delta`, and `output` of a `function_call_output` item. Audio (`audio`,
//! `delta` of audio events), ids and settings are not text. A message that is not a JSON
//! object is text as a whole.

use serde_json::Value;

use crate::openai::Role;
use crate::providers::responses::request::retain_tools;

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the provider: the input phase of the chain.
    Client,
    /// From the provider to the client: the output phase.
    Upstream,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Client => "client",
            Direction::Upstream => "upstream",
        }
    }
}

/// One step of a path into a JSON document.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// One piece of text and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    path: Vec<Step>,
    /// Who speaks: the item's `role`, `system` for instructions, `tool` for function
    /// output; `user` by default for client messages, `assistant` for upstream ones.
    pub role: Role,
    pub text: String,
}

/// A message taken apart: its JSON (when it is a JSON object) and its text slots.
#[derive(Debug, Clone)]
pub struct Parsed {
    json: Option<Value>,
    pub slots: Vec<Slot>,
}

impl Parsed {
    pub fn new(direction: Direction, message: &str) -> Parsed {
        let default_role = match direction {
            Direction::Client => Role::User,
            Direction::Upstream => Role::Assistant,
        };
        match serde_json::from_str::<Value>(message) {
            Ok(json @ Value::Object(_)) => {
                let delta_is_text = json
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.ends_with("text.delta") || t.ends_with("transcript.delta"));
                let mut slots = Vec::new();
                walk(
                    &json,
                    &mut Vec::new(),
                    default_role,
                    delta_is_text,
                    &mut slots,
                );
                Parsed {
                    json: Some(json),
                    slots,
                }
            }
            _ => Parsed {
                json: None,
                slots: if message.is_empty() {
                    Vec::new()
                } else {
                    vec![Slot {
                        path: Vec::new(),
                        role: default_role,
                        text: message.to_string(),
                    }]
                },
            },
        }
    }

    /// The event's `type`, when the message is a JSON event.
    pub fn event_type(&self) -> Option<&str> {
        self.json.as_ref()?.get("type")?.as_str()
    }

    /// The client's `event_id`, when it gave one.
    pub fn event_id(&self) -> Option<&str> {
        self.json.as_ref()?.get("event_id")?.as_str()
    }

    pub fn json(&self) -> Option<&Value> {
        self.json.as_ref()
    }

    /// The message with each slot's text replaced by `texts` (in slot order), and, with
    /// `kept_tools`, only the tools of those names left in its tool arrays (the policies
    /// removed the others), and each `(JSON pointer, string)` of `more` put in place (a
    /// call's redacted arguments). `None` when nothing changed: the original message is
    /// forwarded byte for byte.
    pub fn rewrite(
        mut self,
        texts: &[String],
        kept_tools: Option<&[String]>,
        more: &[(String, String)],
    ) -> Option<String> {
        let changed: Vec<(Vec<Step>, &String)> = self
            .slots
            .iter_mut()
            .zip(texts)
            .filter(|(slot, new)| slot.text != **new)
            .map(|(slot, new)| (std::mem::take(&mut slot.path), new))
            .collect();
        let mut tools_changed = false;
        if let (Some(kept), Some(json)) = (kept_tools, self.json.as_mut()) {
            let kept: Vec<&str> = kept.iter().map(String::as_str).collect();
            for at in ["session", "response"] {
                if let Some(Value::Object(o)) = json.get_mut(at) {
                    tools_changed |= retain_tools(o, &kept) > 0;
                }
            }
        }
        if let Some(json) = self.json.as_mut() {
            for (at, text) in more {
                if let Some(v) = json.pointer_mut(at) {
                    *v = Value::String(text.clone());
                    tools_changed = true;
                }
            }
        }
        if changed.is_empty() && !tools_changed {
            return None;
        }
        let Some(mut json) = self.json else {
            // Not JSON: the message is its one slot.
            return changed.into_iter().next().map(|(_, t)| t.clone());
        };
        for (path, text) in changed {
            if let Some(v) = at_mut(&mut json, &path) {
                *v = Value::String(text.clone());
            }
        }
        serde_json::to_string(&json).ok()
    }
}

fn at_mut<'a>(mut v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    for step in path {
        v = match step {
            Step::Key(k) => v.get_mut(k.as_str())?,
            Step::Index(i) => v.get_mut(*i)?,
        };
    }
    Some(v)
}

fn role_of(s: &str) -> Option<Role> {
    match s {
        "system" => Some(Role::System),
        "developer" => Some(Role::Developer),
        "user" => Some(Role::User),
        "assistant" => Some(Role::Assistant),
        "tool" => Some(Role::Tool),
        _ => None,
    }
}

fn walk(v: &Value, path: &mut Vec<Step>, role: Role, delta_is_text: bool, out: &mut Vec<Slot>) {
    match v {
        Value::Object(map) => {
            let role = map
                .get("role")
                .and_then(Value::as_str)
                .and_then(role_of)
                .unwrap_or(role);
            let is_tool_output =
                map.get("type").and_then(Value::as_str) == Some("function_call_output");
            for (key, child) in map {
                path.push(Step::Key(key.clone()));
                match child {
                    Value::String(s) => {
                        let slot_role = match key.as_str() {
                            "text" | "transcript" => Some(role),
                            "delta" if delta_is_text => Some(role),
                            "instructions" => Some(Role::System),
                            "output" if is_tool_output => Some(Role::Tool),
                            _ => None,
                        };
                        if let Some(role) = slot_role.filter(|_| !s.is_empty()) {
                            out.push(Slot {
                                path: path.clone(),
                                role,
                                text: s.clone(),
                            });
                        }
                    }
                    Value::Object(_) | Value::Array(_) => {
                        walk(child, path, role, delta_is_text, out);
                    }
                    Value::Null | Value::Bool(_) | Value::Number(_) => {}
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(Step::Index(i));
                walk(child, path, role, delta_is_text, out);
                path.pop();
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slots(direction: Direction, v: &Value) -> Vec<(Role, String)> {
        Parsed::new(direction, &v.to_string())
            .slots
            .into_iter()
            .map(|s| (s.role, s.text))
            .collect()
    }

    #[test]
    fn client_items_give_their_text_with_the_item_role() {
        let ev = json!({"type": "conversation.item.create", "event_id": "e1", "item": {
            "type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "hello"},
                {"type": "input_audio", "audio": "AAAA", "transcript": "spoken"}]}});
        assert_eq!(
            slots(Direction::Client, &ev),
            vec![(Role::User, "hello".into()), (Role::User, "spoken".into())]
        );
        let ev = json!({"type": "conversation.item.create", "item": {
            "type": "message", "role": "system", "content": [{"type": "input_text", "text": "be brief"}]}});
        assert_eq!(
            slots(Direction::Client, &ev),
            vec![(Role::System, "be brief".into())]
        );
        let ev = json!({"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": "c1", "output": "{\"temp\": 21}"}});
        assert_eq!(
            slots(Direction::Client, &ev),
            vec![(Role::Tool, "{\"temp\": 21}".into())]
        );
    }

    #[test]
    fn instructions_are_system_text() {
        let ev = json!({"type": "session.update", "session": {"instructions": "You are kind.", "voice": "alloy",
            "turn_detection": {"type": "server_vad"}}});
        assert_eq!(
            slots(Direction::Client, &ev),
            vec![(Role::System, "You are kind.".into())]
        );
        let ev = json!({"type": "response.create", "response": {"instructions": "Answer in French.", "modalities": ["text"]}});
        assert_eq!(
            slots(Direction::Client, &ev),
            vec![(Role::System, "Answer in French.".into())]
        );
    }

    #[test]
    fn audio_is_not_text() {
        let ev = json!({"type": "input_audio_buffer.append", "audio": "UklGRg=="});
        assert!(slots(Direction::Client, &ev).is_empty());
        let ev = json!({"type": "response.audio.delta", "delta": "UklGRg==", "item_id": "i"});
        assert!(slots(Direction::Upstream, &ev).is_empty());
        let ev = json!({"type": "response.function_call_arguments.delta", "delta": "{\"a\""});
        assert!(slots(Direction::Upstream, &ev).is_empty());
    }

    #[test]
    fn text_and_transcript_deltas_and_done_events_are_text() {
        for (ty, key) in [
            ("response.text.delta", "delta"),
            ("response.output_text.delta", "delta"),
            ("response.audio_transcript.delta", "delta"),
            ("response.output_audio_transcript.delta", "delta"),
            ("response.text.done", "text"),
            ("response.audio_transcript.done", "transcript"),
            (
                "conversation.item.input_audio_transcription.completed",
                "transcript",
            ),
        ] {
            let ev = json!({"type": ty, "item_id": "i", key: "words"});
            assert_eq!(
                slots(Direction::Upstream, &ev),
                vec![(Role::Assistant, "words".into())],
                "{ty}"
            );
        }
        let ev = json!({"type": "response.done", "response": {"output": [
            {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "audio", "transcript": "b"}]}]}});
        assert_eq!(
            slots(Direction::Upstream, &ev),
            vec![(Role::Assistant, "a".into()), (Role::Assistant, "b".into())]
        );
    }

    #[test]
    fn rewrite_replaces_only_the_changed_slots() {
        let raw = r#"{"type":"conversation.item.create","event_id":"e1","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"mail a@b.co"},{"type":"input_text","text":"keep"}]}}"#;
        let parsed = Parsed::new(Direction::Client, raw);
        assert_eq!(parsed.event_type(), Some("conversation.item.create"));
        assert_eq!(parsed.event_id(), Some("e1"));
        assert!(parsed
            .clone()
            .rewrite(&["mail a@b.co".into(), "keep".into()], None, &[])
            .is_none());
        let out = parsed
            .rewrite(&["mail [EMAIL]".into(), "keep".into()], None, &[])
            .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["item"]["content"][0]["text"], "mail [EMAIL]");
        assert_eq!(v["item"]["content"][1]["text"], "keep");
        // Key order is kept: the event still starts with its type.
        assert!(
            out.starts_with(r#"{"type":"conversation.item.create""#),
            "{out}"
        );
    }

    #[test]
    fn a_message_that_is_not_a_json_object_is_one_text() {
        let parsed = Parsed::new(Direction::Client, "just words");
        assert_eq!(parsed.slots.len(), 1);
        assert_eq!(parsed.slots[0].role, Role::User);
        assert_eq!(parsed.event_type(), None);
        assert_eq!(
            parsed
                .rewrite(&["other words".into()], None, &[])
                .as_deref(),
            Some("other words")
        );
        let parsed = Parsed::new(Direction::Upstream, "[1, 2]");
        assert_eq!(parsed.slots[0].text, "[1, 2]");
        assert!(Parsed::new(Direction::Client, "").slots.is_empty());
    }
}
