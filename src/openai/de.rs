//! Reading a provider's answer: one-pass `Deserialize` for the answer types
//! (`ChatResponse`, `Choice`, `Usage`) and the stream's (`ChatChunk`, `ChunkChoice`,
//! `Delta`: one per token), and whether the answer's bytes can stand for
//! its parse (`ChatResponse::parse`).
//!
//! With `#[serde(flatten)]`, serde's derive buffers every member of the object into its
//! private `Content` tree and then deserialises the known fields from that buffer, and
//! the rest into `extra` (callgrind: over half of parsing OpenAI's answer). Here each
//! member is read once, straight from the JSON: a known name into its field, any other
//! into `extra`. Behaviour is the derive's: a duplicate known member is an error, a
//! missing one gets its default — noted through `filled`, as the derived `Message`,
//! `ToolCall` and `FunctionCall` note theirs (`default = "…::de::filled"`), for
//! `ChatResponse::parse`.
//!
//! `ChatResponse::parse` reads *lean*: the members of these three types that kt does not
//! model (`extra`) and `logprobs` are skipped, not built into `serde_json::Value`s, when
//! the bytes can go to the client as sent — they hold those members. Building them was
//! a tenth of kt's instructions per request on OpenAI's usual answer (usage details,
//! `service_tier`, `system_fingerprint`). `ChatResponse::restore` reads them back from the
//! bytes when the parse is serialised after all (an output policy rewrote the answer).

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::types::{
    chunk_object, completion_object, function_type, ChatChunk, ChatResponse, Choice, ChunkChoice,
    Content, Delta, Usage,
};

std::thread_local! {
    /// Set when deserialising met a member serialising would not write back as it came:
    /// one the JSON left out that gets a default, or kt's own (`ChatResponse::parse`).
    static FILLED: Cell<bool> = const { Cell::new(false) };
    /// Set while `ChatResponse::parse` reads lean: unmodelled members are skipped.
    static LEAN: Cell<bool> = const { Cell::new(false) };
    /// Set when a lean read skipped a member that was not `null`.
    static SKIPPED: Cell<bool> = const { Cell::new(false) };
}

fn note_filled() {
    FILLED.with(|f| f.set(true));
}

fn lean() -> bool {
    LEAN.with(Cell::get)
}

fn note_skipped() {
    SKIPPED.with(|s| s.set(true));
}

/// The default of a member that serialising writes even when the JSON left it out: noted,
/// so `ChatResponse::parse` can tell whether the parse stands for the bytes.
pub(super) fn filled<T: Default>() -> T {
    note_filled();
    T::default()
}

pub(super) fn filled_function_type() -> String {
    note_filled();
    function_type()
}

/// Whether an answer's bytes can go to the client for its parse (`ChatResponse::parse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsSent {
    /// No: kt serialises the parse, which holds every member.
    No,
    /// Yes, and the parse holds every member.
    Whole,
    /// Yes, and the parse skipped members kt does not model, which the bytes hold:
    /// `ChatResponse::restore` reads them before the parse is serialised on its own.
    Lean,
}

impl AsSent {
    pub fn yes(self) -> bool {
        self != AsSent::No
    }
}

impl ChatResponse {
    /// Parses an OpenAI chat completion, and tells whether its bytes can stand for the
    /// parse: they hold every member serialising it would write (nothing kt fills in
    /// with a default, such as a missing `object` or `finish_reason`), its messages'
    /// content is text or null, and it carries no `x_keeptrusts` of its own. Then the
    /// client can get the provider's bytes (`splice::with_member`) instead of a
    /// re-serialisation: the same members, plus what kt does not model, as sent — and
    /// the parse skips those (`AsSent::Lean`). Otherwise the parse is whole.
    pub fn parse(body: &[u8]) -> serde_json::Result<(ChatResponse, AsSent)> {
        LEAN.with(|l| l.set(true));
        let (resp, as_sent) = Self::read(body);
        LEAN.with(|l| l.set(false));
        let skipped = SKIPPED.with(|s| s.replace(false));
        let resp = resp?;
        match (as_sent, skipped) {
            (true, true) => Ok((resp, AsSent::Lean)),
            (true, false) => Ok((resp, AsSent::Whole)),
            (false, false) => Ok((resp, AsSent::No)),
            (false, true) => Ok((Self::read(body).0?, AsSent::No)),
        }
    }

    /// Reads back what a lean `parse` of `body` skipped: each level's `extra` and the
    /// choices' `logprobs`. The rest of the parse (which an output policy may have
    /// rewritten) stays as it is.
    pub fn restore(&mut self, body: &[u8]) -> serde_json::Result<()> {
        let whole = Self::read(body).0?;
        self.extra = whole.extra;
        for (c, w) in self.choices.iter_mut().zip(whole.choices) {
            c.extra = w.extra;
            c.logprobs = w.logprobs;
        }
        if let (Some(u), Some(w)) = (&mut self.usage, whole.usage) {
            u.extra = w.extra;
        }
        Ok(())
    }

    /// Deserialises `body` and whether its bytes stand for the result (see `parse`).
    fn read(body: &[u8]) -> (serde_json::Result<ChatResponse>, bool) {
        FILLED.with(|f| f.set(false));
        let parsed = super::from_json::<ChatResponse>(body);
        let filled = FILLED.with(|f| f.replace(false));
        let as_sent = parsed.as_ref().is_ok_and(|resp| {
            !filled
                && resp
                    .choices
                    .iter()
                    .all(|c| !matches!(c.message.content, Some(Content::Parts(_))))
        });
        (parsed, as_sent)
    }
}

/// `Choice::logprobs` as read: when reading lean, skipped (and noted unless `null`).
struct Logprobs(Option<Value>);

impl<'de> Deserialize<'de> for Logprobs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Logprobs, D::Error> {
        if lean() {
            if Option::<IgnoredAny>::deserialize(d)?.is_some() {
                note_skipped();
            }
            return Ok(Logprobs(None));
        }
        Option::<Value>::deserialize(d).map(Logprobs)
    }
}

/// A member's name: the index of a known one, or the name itself (for `extra`), or
/// neither when reading lean.
enum Key {
    Known(usize),
    Other(String),
    Skip,
}

/// Reads a member's name against the known `names`, allocating only for the others.
struct Names(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Names {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for Names {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(match self.0.iter().position(|n| *n == v) {
            Some(i) => Key::Known(i),
            None if lean() => Key::Skip,
            None => Key::Other(v.to_owned()),
        })
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Key, E> {
        Ok(match self.0.iter().position(|n| *n == v) {
            Some(i) => Key::Known(i),
            None if lean() => Key::Skip,
            None => Key::Other(v),
        })
    }
}

/// Reads the current member's value into `slot`; a second one is the derive's error.
fn once<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    map: &mut A,
    slot: &mut Option<T>,
    name: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// Deserialises a JSON object as `$ty` in one pass: `$field: $t` are the known members
/// (in `$name` order), `$build` makes the value from them (each an `Option`) and `extra`.
macro_rules! one_pass {
    ($ty:ident, $what:literal, [$($field:ident: $t:ty = $name:literal),+], |$extra:ident| $build:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;

                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($what)
                    }

                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<$ty, A::Error> {
                        const NAMES: &[&str] = &[$($name),+];
                        $(let mut $field: Option<$t> = None;)+
                        let mut $extra = Map::new();
                        while let Some(key) = map.next_key_seed(Names(NAMES))? {
                            match key {
                                Key::Other(k) => {
                                    $extra.insert(k, map.next_value::<Value>()?);
                                }
                                Key::Skip => {
                                    map.next_value::<IgnoredAny>()?;
                                    note_skipped();
                                }
                                Key::Known(i) => {
                                    let mut at = 0;
                                    $(
                                        if i == at {
                                            once(&mut map, &mut $field, $name)?;
                                            continue;
                                        }
                                        at += 1;
                                    )+
                                    let _ = at;
                                }
                            }
                        }
                        Ok($build)
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

one_pass!(
    ChatResponse,
    "a chat completion object",
    [
        id: String = "id",
        object: String = "object",
        created: u64 = "created",
        model: String = "model",
        choices: Vec<Choice> = "choices",
        usage: Option<Usage> = "usage",
        x_keeptrusts: Option<super::types::KeeptrustsMeta> = "x_keeptrusts"
    ],
    |extra| {
        if x_keeptrusts.is_some() {
            // The provider's own (even `null`): kt writes its own.
            note_filled();
        }
        ChatResponse {
            id: id.unwrap_or_else(filled),
            object: object.unwrap_or_else(|| {
                note_filled();
                completion_object()
            }),
            created: created.unwrap_or_else(filled),
            model: model.unwrap_or_else(filled),
            choices: choices.unwrap_or_else(filled),
            usage: usage.flatten(),
            x_keeptrusts: x_keeptrusts.flatten(),
            extra,
        }
    }
);

one_pass!(
    Choice,
    "a choice object",
    [
        index: u32 = "index",
        message: super::types::Message = "message",
        finish_reason: Option<String> = "finish_reason",
        logprobs: Logprobs = "logprobs"
    ],
    |extra| Choice {
        index: index.unwrap_or_else(filled),
        message: message.ok_or_else(|| <A::Error as de::Error>::missing_field("message"))?,
        finish_reason: finish_reason.unwrap_or_else(filled),
        logprobs: logprobs.map_or_else(filled, |l| l.0),
        extra,
    }
);

one_pass!(
    Usage,
    "a usage object",
    [
        prompt_tokens: u64 = "prompt_tokens",
        completion_tokens: u64 = "completion_tokens",
        total_tokens: u64 = "total_tokens"
    ],
    |extra| Usage {
        prompt_tokens: prompt_tokens.unwrap_or_else(filled),
        completion_tokens: completion_tokens.unwrap_or_else(filled),
        total_tokens: total_tokens.unwrap_or_else(filled),
        extra,
    }
);

one_pass!(
    ChatChunk,
    "a chat completion chunk object",
    [
        id: String = "id",
        object: String = "object",
        created: u64 = "created",
        model: String = "model",
        choices: Vec<ChunkChoice> = "choices",
        usage: Option<Usage> = "usage",
        x_keeptrusts: Option<super::types::KeeptrustsMeta> = "x_keeptrusts"
    ],
    |extra| ChatChunk {
        id: id.unwrap_or_default(),
        object: object.unwrap_or_else(chunk_object),
        created: created.unwrap_or_default(),
        model: model.unwrap_or_default(),
        choices: choices.unwrap_or_default(),
        usage: usage.flatten(),
        x_keeptrusts: x_keeptrusts.flatten(),
        extra,
    }
);

one_pass!(
    ChunkChoice,
    "a chunk choice object",
    [
        index: u32 = "index",
        delta: Delta = "delta",
        finish_reason: Option<String> = "finish_reason",
        logprobs: Option<Value> = "logprobs"
    ],
    |extra| ChunkChoice {
        index: index.unwrap_or_default(),
        delta: delta.unwrap_or_default(),
        finish_reason: finish_reason.flatten(),
        logprobs: logprobs.flatten(),
        extra,
    }
);

one_pass!(
    Delta,
    "a delta object",
    [
        role: Option<super::types::Role> = "role",
        content: Option<String> = "content",
        tool_calls: Option<Vec<super::types::ToolCallDelta>> = "tool_calls",
        refusal: Option<String> = "refusal"
    ],
    |extra| Delta {
        role: role.flatten(),
        content: content.flatten(),
        tool_calls: tool_calls.flatten(),
        refusal: refusal.flatten(),
        extra,
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Serialize;

    /// An answer as OpenAI writes it, with members kt does not model.
    const ANSWER: &str = r#"{
  "id": "chatcmpl-1", "object": "chat.completion", "created": 1733000000, "model": "gpt-4o-2024-08-06",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi", "refusal": null,
      "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
    "logprobs": {"content": [{"token": "Hi", "logprob": -1.2345678901234567e-7}]}, "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6,
    "prompt_tokens_details": {"cached_tokens": 0}},
  "system_fingerprint": "fp_1", "x_big": 123456789012345678901234567890
}
"#;

    /// Every member `reserialised` has is in `raw` with the same value.
    fn covers(raw: &Value, reserialised: &Value) -> bool {
        match (raw, reserialised) {
            (Value::Object(a), Value::Object(b)) => b
                .iter()
                .all(|(k, v)| a.get(k).is_some_and(|r| covers(r, v))),
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(r, v)| covers(r, v))
            }
            (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (a, b) => a == b,
        }
    }

    /// The whole parse, as `serde_json` reads it outside `ChatResponse::parse`.
    fn whole(body: &str) -> Value {
        serde_json::to_value(serde_json::from_str::<ChatResponse>(body).unwrap()).unwrap()
    }

    #[test]
    fn an_answer_with_all_its_members_stands_for_its_parse() {
        let (mut parsed, as_sent) = ChatResponse::parse(ANSWER.as_bytes()).unwrap();
        assert_eq!(as_sent, AsSent::Lean);
        // Read lean: what kt does not model was skipped, not built.
        assert!(parsed.extra.is_empty() && parsed.usage.as_ref().unwrap().extra.is_empty());
        assert!(parsed.choices[0].logprobs.is_none());
        let raw: Value = serde_json::from_str(ANSWER).unwrap();
        assert!(covers(&raw, &whole(ANSWER)));
        parsed.restore(ANSWER.as_bytes()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), whole(ANSWER));
        for (from, to) in [
            ("\"content\": \"Hi\"", "\"content\": [{\"type\": \"text\", \"text\": \"Hi\"}]"),
            ("\"system_fingerprint\"", "\"x_keeptrusts\": null, \"s\""),
            ("\"system_fingerprint\"", "\"x_keeptrusts\": {\"routing_decision_id\": \"d\", \"provider_used\": \"p\", \"cache_status\": null, \"region\": null}, \"s\""),
        ] {
            let body = ANSWER.replacen(from, to, 1);
            let (parsed, as_sent) = ChatResponse::parse(body.as_bytes()).unwrap();
            assert_eq!(as_sent, AsSent::No, "{to}");
            // Not as sent: the parse is whole, for kt to serialise.
            let mut want = whole(&body);
            want.as_object_mut().unwrap().remove("x_keeptrusts");
            let mut got = serde_json::to_value(&parsed).unwrap();
            got.as_object_mut().unwrap().remove("x_keeptrusts");
            assert_eq!(got, want, "{to}");
        }
        // Nothing to skip: the lean read is whole.
        let plain = r#"{"id":"c","object":"chat.completion","created":1,"model":"m",
            "choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},
            "finish_reason":"stop","logprobs":null}]}"#;
        assert_eq!(
            ChatResponse::parse(plain.as_bytes()).unwrap().1,
            AsSent::Whole
        );
        // A failed parse leaves nothing behind for the next one, lean or not.
        assert!(ChatResponse::parse(br#"{"choices": 1, "x": 2}"#).is_err());
        assert!(!serde_json::from_str::<ChatResponse>(ANSWER)
            .unwrap()
            .extra
            .is_empty());
        assert_eq!(
            ChatResponse::parse(ANSWER.as_bytes()).unwrap().1,
            AsSent::Lean
        );
    }

    proptest! {
        /// Whatever subset of an answer's members a provider writes, its bytes stand for
        /// the parse exactly when they hold all the parse serialises to; and the parse,
        /// restored when read lean, is the whole parse.
        #[test]
        fn bytes_stand_for_the_parse_exactly_when_they_cover_it(mask in any::<u16>()) {
            let mut v: Value = serde_json::from_str(ANSWER).unwrap();
            let members = [
                "/id", "/object", "/created", "/model", "/usage", "/choices/0/index",
                "/choices/0/finish_reason", "/choices/0/logprobs", "/choices/0/message/content",
                "/choices/0/message/tool_calls", "/choices/0/message/refusal",
                "/choices/0/message/tool_calls/0/type", "/usage/total_tokens",
                "/choices/0/message/tool_calls/0/function/arguments", "/system_fingerprint",
                "/x_big",
            ];
            for (bit, member) in members.iter().enumerate() {
                if mask & (1 << bit) == 0 {
                    continue;
                }
                let (parent, key) = member.rsplit_once('/').unwrap();
                if let Some(Value::Object(o)) = v.pointer_mut(parent) {
                    o.remove(key);
                }
            }
            let body = serde_json::to_string(&v).unwrap();
            let whole = whole(&body);
            let (mut parsed, as_sent) = ChatResponse::parse(body.as_bytes()).unwrap();
            prop_assert_eq!(as_sent.yes(), covers(&v, &whole), "{}", body);
            if as_sent == AsSent::Lean {
                parsed.restore(body.as_bytes()).unwrap();
            }
            prop_assert_eq!(serde_json::to_value(&parsed).unwrap(), whole, "{}", body);
        }
    }

    /// What serde's derive (with `flatten`) did, for comparison.
    #[derive(Deserialize, Debug)]
    struct Derived {
        #[serde(default)]
        id: String,
        #[serde(default)]
        created: u64,
        #[serde(default)]
        choices: Vec<DerivedChoice>,
        #[serde(default)]
        usage: Option<Usage>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    }

    #[derive(Deserialize, Debug)]
    struct DerivedChoice {
        #[serde(default)]
        index: u32,
        message: super::super::types::Message,
        #[serde(default)]
        finish_reason: Option<String>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    }

    #[test]
    fn reads_as_the_derive_did() {
        let body = r#"{"z":1,"id":"c","choices":[{"message":{"role":"assistant","content":"hi","x":[1]},
            "finish_reason":"stop","index":1,"content_filter_results":{"hate":{"filtered":false}}}],
            "created":7,"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,
            "prompt_tokens_details":{"cached_tokens":0}},"a":{"b":null},"object":"chat.completion","model":"m"}"#;
        let ours: ChatResponse = serde_json::from_str(body).unwrap();
        let theirs: Derived = serde_json::from_str(body).unwrap();
        assert_eq!(ours.id, theirs.id);
        assert_eq!(ours.created, theirs.created);
        assert_eq!(ours.usage, theirs.usage);
        assert_eq!(
            ours.usage.as_ref().unwrap().extra["prompt_tokens_details"]["cached_tokens"],
            0
        );
        let mut extra = theirs.extra.clone();
        extra.remove("object");
        extra.remove("model");
        assert_eq!(ours.extra, extra);
        assert_eq!(
            ours.extra.keys().collect::<Vec<_>>(),
            ["z", "a"],
            "unknown members keep their order"
        );
        let (c, d) = (&ours.choices[0], &theirs.choices[0]);
        assert_eq!(
            (c.index, &c.finish_reason, &c.message),
            (d.index, &d.finish_reason, &d.message)
        );
        assert_eq!(c.extra, d.extra);
    }

    /// The chunk types as serde's derive (with `flatten`) read them, for comparison.
    #[derive(Deserialize, Serialize)]
    struct DerivedChunk {
        #[serde(default)]
        id: String,
        #[serde(default = "chunk_object")]
        object: String,
        #[serde(default)]
        created: u64,
        #[serde(default)]
        model: String,
        #[serde(default)]
        choices: Vec<DerivedChunkChoice>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    }

    #[derive(Deserialize, Serialize)]
    struct DerivedChunkChoice {
        #[serde(default)]
        index: u32,
        #[serde(default)]
        delta: DerivedDelta,
        #[serde(default)]
        finish_reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        logprobs: Option<Value>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    }

    #[derive(Deserialize, Serialize, Default)]
    struct DerivedDelta {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<super::super::types::Role>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tool_calls: Option<Vec<super::super::types::ToolCallDelta>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refusal: Option<String>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    }

    #[test]
    fn chunks_read_as_the_derive_did() {
        for body in [
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":null}],"system_fingerprint":"fp"}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"x":[1,{"y":null}]}],"z":true}"#,
            r#"{"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"completion_tokens_details":{"reasoning_tokens":0}}}"#,
            r#"{"choices":[{"index":1,"delta":{"content":null,"refusal":"no","annotations":[]},"finish_reason":"stop","logprobs":{"content":[]}}],"usage":null}"#,
            r#"{"object":"","prompt_filter_results":[{"prompt_index":0}],"choices":[{"delta":{}}]}"#,
            r#"{}"#,
        ] {
            let ours: ChatChunk = serde_json::from_str(body).unwrap();
            let theirs: DerivedChunk = serde_json::from_str(body).unwrap();
            assert_eq!(
                serde_json::to_value(&ours).unwrap(),
                serde_json::to_value(&theirs).unwrap(),
                "{body}"
            );
        }
        for (body, want) in [
            (r#"{"id":"a","id":"b"}"#, "duplicate field `id`"),
            (
                r#"{"choices":[{"delta":null}]}"#,
                "invalid type: null, expected a delta object",
            ),
            (
                r#"{"choices":[{"delta":{"role":"robot"}}]}"#,
                "unknown variant `robot`",
            ),
            (
                r#"[1]"#,
                "invalid type: sequence, expected a chat completion chunk object",
            ),
        ] {
            let e = serde_json::from_str::<ChatChunk>(body)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want), "{body}: {e}");
        }
    }

    #[test]
    fn errors_are_the_derives() {
        for (body, want) in [
            (r#"{"id":"a","id":"b"}"#, "duplicate field `id`"),
            (r#"{"choices":[{"index":0}]}"#, "missing field `message`"),
            (
                r#"{"created":"soon"}"#,
                "invalid type: string \"soon\", expected u64",
            ),
            (
                r#"{"usage":{"total_tokens":-1}}"#,
                "invalid value: integer `-1`, expected u64",
            ),
            (
                r#"[1]"#,
                "invalid type: sequence, expected a chat completion object",
            ),
        ] {
            let e = serde_json::from_str::<ChatResponse>(body)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want), "{body}: {e}");
        }
        // `null` for an optional member is as absent.
        let r: ChatResponse =
            serde_json::from_str(r#"{"usage":null,"x_keeptrusts":null}"#).unwrap();
        assert!(r.usage.is_none() && r.x_keeptrusts.is_none());
    }
}
