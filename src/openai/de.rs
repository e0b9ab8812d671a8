//! One-pass `Deserialize` for the answer types (`ChatResponse`, `Choice`, `Usage`).
//!
//! With `#[serde(flatten)]`, serde's derive buffers every member of the object into its
//! private `Content` tree and then deserialises the known fields from that buffer, and
//! the rest into `extra` (callgrind: over half of parsing OpenAI's answer). Here each
//! member is read once, straight from the JSON: a known name into its field, any other
//! into `extra`. Behaviour is the derive's: a duplicate known member is an error, a
//! missing one gets its default — noted through `types::filled`, as the derive's
//! `default = "filled"` did, for `ChatResponse::parse`.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::types::{completion_object, filled, note_filled, ChatResponse, Choice, Usage};

/// A member's name: the index of a known one, or the name itself (for `extra`).
enum Key {
    Known(usize),
    Other(String),
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
            None => Key::Other(v.to_owned()),
        })
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Key, E> {
        Ok(match self.0.iter().position(|n| *n == v) {
            Some(i) => Key::Known(i),
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
            object: object.unwrap_or_else(completion_object),
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
        logprobs: Option<Value> = "logprobs"
    ],
    |extra| Choice {
        index: index.unwrap_or_else(filled),
        message: message.ok_or_else(|| <A::Error as de::Error>::missing_field("message"))?,
        finish_reason: finish_reason.unwrap_or_else(filled),
        logprobs: logprobs.unwrap_or_else(filled),
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

#[cfg(test)]
mod tests {
    use super::*;

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
