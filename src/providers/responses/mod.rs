//! The Responses API (`POST /v1/responses`) and Chat Completions, PURE (no I/O):
//!
//! - `request`: a Responses request → the `ChatRequest` every provider serves (and the
//!   policies read), remembering where each text came from so the input phase's
//!   redactions can be written back into a body passed through natively.
//! - `response`: a chat answer → the `response` object.
//! - `stream`: chat chunks (after the output phase's stream filter) → the typed Responses
//!   SSE events, incrementally.
//! - `native`: the pass-through's request, and the chat view of a native `response`.
//! - `relay`: a native upstream's Responses events → the client's, with output text run
//!   through the stream filter and the sequence renumbered.

pub mod native;
pub mod relay;
pub mod request;
pub mod response;
pub mod stream;

use serde_json::{json, Value};

use crate::openai::{Content, Message, ToolCall};

pub use native::native_request;
pub use request::{to_chat, write_back_tools, Strictness, Translated};
pub use response::{from_chat, skeleton};

/// One typed SSE event of a Responses stream: `event: <kind>` and its JSON `data` (which
/// repeats `type` and carries the `sequence_number`).
#[derive(Debug, Clone, PartialEq)]
pub struct TypedEvent {
    pub kind: String,
    pub data: Value,
}

/// Numbers the events of one stream, from 0.
#[derive(Debug, Default)]
pub struct Sequence {
    next: u64,
}

impl Sequence {
    /// `body` (an object) as the next event of kind `kind`.
    pub fn event(&mut self, kind: &str, mut body: Value) -> TypedEvent {
        if let Some(o) = body.as_object_mut() {
            o.insert("type".to_string(), json!(kind));
            o.insert("sequence_number".to_string(), json!(self.next));
        }
        self.next += 1;
        TypedEvent {
            kind: kind.to_string(),
            data: body,
        }
    }
}

/// Where a text of the chat view came from in the Responses JSON, so a rewritten text
/// (redaction) can be put back.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// Index of the chat message holding the text.
    pub message: usize,
    pub place: Place,
    /// JSON pointer of the text in the Responses body.
    pub pointer: String,
    /// The text as translated: a write-back happens only when it changed.
    pub original: String,
}

/// Where in a chat message a text sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// The whole string content.
    Content,
    /// The `n`th content part's `text`.
    Part(usize),
    /// The `n`th tool call's `arguments` (a custom tool call's `input`).
    Arguments(usize),
}

impl Place {
    /// The text at this place of `m`, if there is one.
    fn text_in(self, m: &Message) -> Option<&str> {
        match (self, &m.content) {
            (Place::Content, Some(Content::Text(s))) => Some(s),
            (Place::Part(n), Some(Content::Parts(parts))) => {
                parts.get(n).and_then(|p| p.text.as_deref())
            }
            (Place::Arguments(n), _) => m
                .tool_calls
                .as_ref()
                .and_then(|c| c.get(n))
                .map(ToolCall::input),
            (Place::Content | Place::Part(_), _) => None,
        }
    }
}

/// Writes every text of `messages` that differs from what was translated back into
/// `body` at its origin (an `output_text` part's `logprobs` are emptied with it). Returns
/// how many texts were rewritten.
pub fn write_back(body: &mut Value, messages: &[Message], origins: &[Origin]) -> usize {
    let mut n = 0;
    for o in origins {
        let Some(text) = messages.get(o.message).and_then(|m| o.place.text_in(m)) else {
            continue;
        };
        if text == o.original {
            continue;
        }
        if let Some(slot) = body.pointer_mut(&o.pointer) {
            *slot = Value::String(text.to_string());
            n += 1;
        }
        // An answer's `output_text` part: its token logprobs spell the original text.
        if let Some(part) = o.pointer.strip_suffix("/text") {
            if let Some(lp) = body.pointer_mut(&format!("{part}/logprobs")) {
                *lp = Value::Array(Vec::new());
            }
        }
    }
    n
}

/// Merges `more`'s fields into a copy of the object `base`.
fn with(base: &Value, more: Value) -> Value {
    let mut out = base.clone();
    if let (Some(o), Value::Object(m)) = (out.as_object_mut(), more) {
        o.extend(m);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::Role;

    #[test]
    fn write_back_only_touches_changed_texts() {
        let mut body =
            json!({"input": [{"role": "user", "content": "a 4111"}], "instructions": "x"});
        let origins = vec![
            Origin {
                message: 0,
                place: Place::Content,
                pointer: "/instructions".into(),
                original: "x".into(),
            },
            Origin {
                message: 1,
                place: Place::Content,
                pointer: "/input/0/content".into(),
                original: "a 4111".into(),
            },
        ];
        let msgs = vec![
            Message::text(Role::System, "x"),
            Message::text(Role::User, "a [CARD]"),
        ];
        assert_eq!(write_back(&mut body, &msgs, &origins), 1);
        assert_eq!(body["input"][0]["content"], "a [CARD]");
        assert_eq!(body["instructions"], "x");
    }

    #[test]
    fn sequence_numbers_increase_and_type_is_repeated() {
        let mut seq = Sequence::default();
        let a = seq.event("response.created", json!({"response": {}}));
        let b = seq.event("response.in_progress", json!({}));
        assert_eq!(a.data["sequence_number"], 0);
        assert_eq!(b.data["sequence_number"], 1);
        assert_eq!(b.data["type"], "response.in_progress");
    }
}
