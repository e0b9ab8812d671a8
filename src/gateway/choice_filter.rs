//! The output phase's redaction of one streamed choice: everything in its deltas that the
//! non-streamed path redacts, redacted before the client sees it.
//!
//! - `content` flows through the chain's stream filter, which holds back only what a
//!   match could still span; the token `logprobs` that spell it wait with it
//!   ([`TokenHold`]) and are dropped once the filter rewrites.
//! - `refusal` flows through a filter of its own, the same way, with its logprobs.
//! - Tool calls are held whole until the choice finishes: their arguments are a JSON
//!   document whose values are redacted one by one, as in a whole answer (a value cut
//!   across fragments, or a number, cannot be rewritten in flight without breaking the
//!   document). The client gets each call as one delta on the finishing chunk. A custom
//!   tool's call (free-text `input`) and a deprecated `function_call` are held and
//!   released the same way.
//! - Audio output (`delta.audio`) is held until the choice finishes too: its speech says
//!   what its transcript says, and only the output phase, on the whole transcript, can
//!   tell whether it may go (a redaction there blocks the answer:
//!   `PolicyChain::run_output`). It goes as one `audio` on the finishing chunk.
//!
//! With no redaction in the chain (`StreamFilter::is_empty`) nothing is touched.

use serde_json::{json, Map, Value};

use crate::openai::audio::AudioParts;
use crate::openai::{
    join_function_call, ChunkChoice, CustomCallDelta, FunctionCallDelta, ToolCallDelta,
};
use crate::policy::chain::PolicyTrace;
use crate::policy::scan::walk;
use crate::policy::{StreamFilter, TokenHold};

pub struct ChoiceFilter {
    /// The chain redacts output: without that, nothing is touched.
    active: bool,
    content: Flow,
    refusal: Flow,
    /// Redacts tool-call argument values, one whole value at a time.
    arguments: Option<StreamFilter>,
    /// Tool calls held until the choice finishes, by their `index`.
    calls: Vec<ToolCallDelta>,
    /// A deprecated `function_call` held until the choice finishes.
    function_call: Option<Map<String, Value>>,
    /// Audio output held until the choice finishes.
    audio: Option<AudioParts>,
}

/// One text of a choice (its content or its refusal) through a filter (made on first
/// use), with the logprobs entries that spell it held in step ([`TokenHold`]).
#[derive(Default)]
struct Flow {
    filter: Option<StreamFilter>,
    tokens: TokenHold,
}

impl Flow {
    /// A delta's text, if it has one, and the entries that came with it: the text shown
    /// now and the entries released with it.
    fn push(
        &mut self,
        text: Option<&str>,
        entries: Vec<Value>,
        make: &dyn Fn() -> StreamFilter,
    ) -> (Option<String>, Vec<Value>) {
        self.tokens.pushed(text.unwrap_or_default(), entries);
        let Some(text) = text else {
            return (None, Vec::new());
        };
        let shown = self.filter.get_or_insert_with(make).push(text);
        let released = self.tokens.shown(&shown);
        (Some(shown), released)
    }

    /// Everything still held: the text and its entries.
    fn finish(&mut self) -> (String, Vec<Value>) {
        let rest = self
            .filter
            .as_mut()
            .map(StreamFilter::finish)
            .unwrap_or_default();
        let released = self.tokens.shown(&rest);
        (rest, released)
    }
}

impl ChoiceFilter {
    pub fn new(text: StreamFilter) -> ChoiceFilter {
        ChoiceFilter {
            active: !text.is_empty(),
            content: Flow {
                filter: Some(text),
                tokens: TokenHold::default(),
            },
            refusal: Flow::default(),
            arguments: None,
            calls: Vec::new(),
            function_call: None,
            audio: None,
        }
    }

    /// Filters a chunk's choice in place; `make` gives the chain's filter for a second
    /// text. Returns whether the choice had something to show that is now held back.
    /// A choice that finishes here releases what is still held in this very chunk: sent
    /// later, it would land after this chunk's own text.
    pub fn filter(&mut self, choice: &mut ChunkChoice, make: &dyn Fn() -> StreamFilter) -> bool {
        if !self.active {
            return false;
        }
        let (had, entries) = take_entries(&mut choice.logprobs, "content");
        let (had_refusal, refusal_entries) = take_entries(&mut choice.logprobs, "refusal");
        let delta = &mut choice.delta;
        let (content, mut released) = self.content.push(delta.content.as_deref(), entries, make);
        let (refusal, mut released_refusal) =
            self.refusal
                .push(delta.refusal.as_deref(), refusal_entries, make);
        let hides = |before: &Option<String>, after: &Option<String>| {
            before.as_deref().is_some_and(|b| !b.is_empty())
                && after.as_deref().is_some_and(str::is_empty)
        };
        let mut held = hides(&delta.content, &content) || hides(&delta.refusal, &refusal);
        delta.content = content;
        delta.refusal = refusal;
        if let Some(calls) = delta.tool_calls.take() {
            held |= !calls.is_empty();
            for c in calls {
                self.hold_call(c);
            }
        }
        if let Some(Value::Object(part)) = delta.extra.get("function_call") {
            join_function_call(self.function_call.get_or_insert_with(Map::new), part);
            delta.extra.remove("function_call");
            held = true;
        }
        if let Some(Value::Object(part)) = delta.extra.get("audio") {
            self.audio
                .get_or_insert_with(AudioParts::default)
                .push(part, true);
            delta.extra.remove("audio");
            held = true;
        }
        if choice.finish_reason.is_some() {
            let rest = self.rest(make);
            let delta = &mut choice.delta;
            for (field, (text, entries), out) in [
                (&mut delta.content, rest.content, &mut released),
                (&mut delta.refusal, rest.refusal, &mut released_refusal),
            ] {
                if !text.is_empty() {
                    field.get_or_insert_with(String::new).push_str(&text);
                }
                out.extend(entries);
            }
            if !rest.calls.is_empty() {
                delta.tool_calls = Some(rest.calls);
            }
            put_held(&mut delta.extra, rest.function_call, rest.audio);
        }
        put_entries(&mut choice.logprobs, "content", had, released);
        put_entries(
            &mut choice.logprobs,
            "refusal",
            had_refusal,
            released_refusal,
        );
        held
    }

    /// What is still held at the end of the stream, as one more choice delta (`None` when
    /// nothing is).
    pub fn finish(&mut self, index: u32, make: &dyn Fn() -> StreamFilter) -> Option<ChunkChoice> {
        if !self.active {
            return None;
        }
        let Rest {
            content: (content, released),
            refusal: (refusal, released_refusal),
            calls,
            function_call,
            audio,
        } = self.rest(make);
        if content.is_empty()
            && refusal.is_empty()
            && calls.is_empty()
            && function_call.is_none()
            && audio.is_none()
            && released.is_empty()
            && released_refusal.is_empty()
        {
            return None;
        }
        let mut choice = ChunkChoice {
            index,
            ..ChunkChoice::default()
        };
        let delta = &mut choice.delta;
        delta.content = (!content.is_empty()).then_some(content);
        delta.refusal = (!refusal.is_empty()).then_some(refusal);
        delta.tool_calls = (!calls.is_empty()).then_some(calls);
        put_held(&mut delta.extra, function_call, audio);
        put_entries(&mut choice.logprobs, "content", false, released);
        put_entries(&mut choice.logprobs, "refusal", false, released_refusal);
        Some(choice)
    }

    /// The redactions made, for the event.
    pub fn trace(&self) -> Vec<PolicyTrace> {
        [
            self.content.filter.as_ref(),
            self.refusal.filter.as_ref(),
            self.arguments.as_ref(),
        ]
        .into_iter()
        .flatten()
        .flat_map(StreamFilter::trace)
        .collect()
    }

    /// Adds a fragment to the held call with its index (the first fragment names it).
    fn hold_call(&mut self, part: ToolCallDelta) {
        let Some(call) = self.calls.iter_mut().find(|c| c.index == part.index) else {
            self.calls.push(part);
            return;
        };
        if call.id.is_none() {
            call.id = part.id;
        }
        if call.kind.is_none() {
            call.kind = part.kind;
        }
        if let Some(c) = part.custom {
            let into = call.custom.get_or_insert_with(CustomCallDelta::default);
            if into.name.is_none() {
                into.name = c.name;
            }
            if let Some(input) = c.input {
                into.input.get_or_insert_with(String::new).push_str(&input);
            }
        }
        let Some(f) = part.function else {
            return;
        };
        let into = call.function.get_or_insert_with(FunctionCallDelta::default);
        if into.name.is_none() {
            into.name = f.name;
        }
        if let Some(a) = f.arguments {
            into.arguments.get_or_insert_with(String::new).push_str(&a);
        }
    }

    /// Releases everything held: the texts, the logprobs that go with them, the tool
    /// calls with their arguments redacted, and the audio.
    fn rest(&mut self, make: &dyn Fn() -> StreamFilter) -> Rest {
        let mut calls = std::mem::take(&mut self.calls);
        let mut function_call = self.function_call.take();
        let legacy_args = function_call
            .as_mut()
            .and_then(|c| match c.get_mut("arguments") {
                Some(Value::String(args)) => Some(args),
                _ => None,
            });
        let mut inputs = Vec::new();
        let mut args = Vec::new();
        for c in &mut calls {
            if let Some(input) = c.custom.as_mut().and_then(|c| c.input.as_mut()) {
                inputs.push(input);
            }
            if let Some(a) = c.function.as_mut().and_then(|f| f.arguments.as_mut()) {
                args.push(a);
            }
        }
        args.extend(legacy_args);
        if !args.is_empty() || !inputs.is_empty() {
            let f = self.arguments.get_or_insert_with(make);
            let mut redact = |value: &mut String| {
                let mut shown = f.push(value);
                shown.push_str(&f.finish());
                let changed = shown != *value;
                *value = shown;
                changed
            };
            for a in args {
                walk::arguments(a, &mut redact);
            }
            // A custom tool's input is free text.
            for input in inputs {
                redact(input);
            }
        }
        Rest {
            content: self.content.finish(),
            refusal: self.refusal.finish(),
            calls,
            function_call: function_call.map(Value::Object),
            audio: self.audio.take().map(AudioParts::into_value),
        }
    }
}

/// What was held: each text with its logprobs entries, the tool calls, a deprecated
/// `function_call`, the audio.
struct Rest {
    content: (String, Vec<Value>),
    refusal: (String, Vec<Value>),
    calls: Vec<ToolCallDelta>,
    function_call: Option<Value>,
    audio: Option<Value>,
}

/// Puts the held members kt does not model into a delta's `extra`.
fn put_held(extra: &mut Map<String, Value>, function_call: Option<Value>, audio: Option<Value>) {
    for (key, held) in [("function_call", function_call), ("audio", audio)] {
        if let Some(v) = held {
            extra.insert(key.to_string(), v);
        }
    }
}

/// Takes the token entries of `key` (`content` or `refusal`) out of a choice's
/// `logprobs`; whether it had that list.
fn take_entries(logprobs: &mut Option<Value>, key: &str) -> (bool, Vec<Value>) {
    match logprobs.as_mut().and_then(|v| v.get_mut(key)) {
        Some(Value::Array(a)) => (true, std::mem::take(a)),
        _ => (false, Vec::new()),
    }
}

/// Puts the entries of `key` released for this chunk back into its `logprobs` (a list
/// that came empty stays there, empty).
fn put_entries(logprobs: &mut Option<Value>, key: &str, had: bool, released: Vec<Value>) {
    if !had && released.is_empty() {
        return;
    }
    match logprobs {
        Some(Value::Object(o)) => {
            o.insert(key.to_string(), Value::Array(released));
        }
        _ => {
            let mut o = json!({"content": null, "refusal": null});
            o[key] = Value::Array(released);
            *logprobs = Some(o);
        }
    }
}

/// Whether a filtered choice shows nothing: no text, no call, no finish, no logprobs
/// entry, nothing kt does not model.
pub fn shows_nothing(choice: &ChunkChoice) -> bool {
    let d = &choice.delta;
    d.role.is_none()
        && d.content.as_deref().unwrap_or_default().is_empty()
        && d.refusal.as_deref().unwrap_or_default().is_empty()
        && d.tool_calls.is_none()
        && d.extra.is_empty()
        && choice.finish_reason.is_none()
        && choice.extra.is_empty()
        && choice.logprobs.as_ref().is_none_or(|l| {
            ["content", "refusal"]
                .iter()
                .all(|k| l.get(k).and_then(Value::as_array).is_none_or(Vec::is_empty))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::Delta;
    use crate::policy::chain::{FailMode, PolicyChain};

    fn chain() -> PolicyChain {
        let pii = crate::policy::build("pii-detector", None).unwrap();
        PolicyChain::from_policies(vec![pii], FailMode::Block)
    }

    fn choice(delta: Value, finish: Option<&str>) -> ChunkChoice {
        ChunkChoice {
            delta: serde_json::from_value::<Delta>(delta).unwrap(),
            finish_reason: finish.map(str::to_string),
            ..ChunkChoice::default()
        }
    }

    fn call(i: u32, first: Option<(&str, &str)>, args: &str) -> Value {
        let mut c = json!({"index": i, "function": {"arguments": args}});
        if let Some((id, name)) = first {
            c["id"] = json!(id);
            c["type"] = json!("function");
            c["function"]["name"] = json!(name);
        }
        json!({"tool_calls": [c]})
    }

    #[test]
    fn calls_are_held_and_released_whole_at_the_end_of_a_cut_stream() {
        let chain = chain();
        let make = || chain.stream_filter();
        let mut f = ChoiceFilter::new(make());
        let mut parts = vec![
            choice(call(0, Some(("c1", "mail")), "{\"to\":\"jane@exa"), None),
            choice(call(0, None, "mple.org\"}"), None),
        ];
        for c in &mut parts {
            assert!(f.filter(c, &make), "the fragment is held");
            assert!(shows_nothing(c));
        }
        // No finish reason came: the end of the stream releases the call.
        let last = f.finish(0, &make).unwrap();
        let calls = last.delta.tool_calls.unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].id.as_deref(), Some("c1"));
        let function = calls[0].function.as_ref().unwrap();
        assert_eq!(function.name.as_deref(), Some("mail"));
        assert_eq!(function.arguments.as_deref(), Some(r#"{"to":"[EMAIL]"}"#));
        assert!(f.finish(0, &make).is_none(), "released once");
        let trace = f.trace();
        assert_eq!(trace.len(), 1);
        assert_eq!(trace[0].findings[0].kind, "email");
    }

    #[test]
    fn a_custom_tool_call_is_held_and_its_input_redacted_as_text() {
        let chain = chain();
        let make = || chain.stream_filter();
        let mut f = ChoiceFilter::new(make());
        let custom = |first: bool, input: &str| {
            let mut c = json!({"index": 0, "custom": {"input": input}});
            if first {
                c["id"] = json!("call_c");
                c["type"] = json!("custom");
                c["custom"]["name"] = json!("shell");
            }
            json!({"tool_calls": [c]})
        };
        for (first, input) in [(true, "mail jane@exa"), (false, "mple.org now")] {
            let mut c = choice(custom(first, input), None);
            assert!(f.filter(&mut c, &make));
            assert!(shows_nothing(&c));
        }
        let mut last = choice(json!({}), Some("tool_calls"));
        f.filter(&mut last, &make);
        let calls = last.delta.tool_calls.unwrap();
        assert_eq!(
            serde_json::to_value(&calls[0]).unwrap(),
            json!({"index": 0, "id": "call_c", "type": "custom",
                "custom": {"name": "shell", "input": "mail [EMAIL] now"}})
        );
    }

    #[test]
    fn a_deprecated_function_call_is_held_and_released_redacted() {
        let chain = chain();
        let make = || chain.stream_filter();
        let mut f = ChoiceFilter::new(make());
        let mut parts = vec![
            choice(
                json!({"role": "assistant", "content": null,
                "function_call": {"name": "mail", "arguments": ""}}),
                None,
            ),
            choice(
                json!({"function_call": {"arguments": "{\"to\":\"jane@exa"}}),
                None,
            ),
            choice(json!({"function_call": {"arguments": "mple.org\"}"}}), None),
        ];
        for c in &mut parts {
            assert!(f.filter(c, &make), "the fragment is held");
            assert!(!c.delta.extra.contains_key("function_call"));
        }
        let mut last = choice(json!({}), Some("function_call"));
        f.filter(&mut last, &make);
        assert_eq!(
            last.delta.extra["function_call"],
            json!({"name": "mail", "arguments": "{\"to\":\"[EMAIL]\"}"})
        );
        assert!(f.finish(0, &make).is_none(), "released once");
        assert_eq!(f.trace()[0].findings[0].kind, "email");
    }

    #[test]
    fn audio_is_held_until_the_choice_finishes_and_goes_as_one() {
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine;
        let chain = chain();
        let make = || chain.stream_filter();
        let mut f = ChoiceFilter::new(make());
        let mut first = choice(
            json!({"role": "assistant", "audio": {"id": "audio_1", "transcript": "Hi "}}),
            None,
        );
        assert!(f.filter(&mut first, &make));
        assert!(!first.delta.extra.contains_key("audio"));
        assert!(!shows_nothing(&first), "the role still goes");
        let mut second = choice(
            json!({"audio": {"transcript": "there", "data": STANDARD.encode(b"one")}}),
            None,
        );
        assert!(f.filter(&mut second, &make));
        assert!(shows_nothing(&second));
        let mut third = choice(json!({"audio": {"data": STANDARD.encode(b"two")}}), None);
        assert!(f.filter(&mut third, &make));
        let mut last = choice(json!({"audio": {"expires_at": 5}}), Some("stop"));
        f.filter(&mut last, &make);
        let audio = &last.delta.extra["audio"];
        assert_eq!(audio["id"], "audio_1");
        assert_eq!(audio["transcript"], "Hi there");
        assert_eq!(audio["expires_at"], 5);
        let speech = STANDARD.decode(audio["data"].as_str().unwrap()).unwrap();
        assert_eq!(speech, b"onetwo");
        assert!(f.finish(0, &make).is_none(), "released once");

        // No finish reason: the end of the stream releases it.
        let mut f = ChoiceFilter::new(make());
        let mut only = choice(json!({"audio": {"id": "a", "transcript": "x"}}), None);
        assert!(f.filter(&mut only, &make));
        let rest = f.finish(2, &make).unwrap();
        assert_eq!(rest.index, 2);
        assert_eq!(
            rest.delta.extra["audio"],
            json!({"id": "a", "transcript": "x"})
        );
    }

    #[test]
    fn nothing_is_touched_without_a_redaction_in_the_chain() {
        let empty = PolicyChain::from_policies(Vec::new(), FailMode::Block);
        let make = || empty.stream_filter();
        let mut f = ChoiceFilter::new(make());
        for delta in [
            call(0, Some(("c1", "mail")), "{\"to\":\"jane@exa"),
            json!({"audio": {"id": "a", "transcript": "jane@example.org", "data": "AAAA"}}),
        ] {
            let mut c = choice(delta, None);
            let before = c.delta.clone();
            assert!(!f.filter(&mut c, &make));
            assert_eq!(c.delta, before);
        }
        assert!(f.finish(0, &make).is_none());
    }

    #[test]
    fn what_a_chunk_shows() {
        assert!(shows_nothing(&choice(json!({"content": ""}), None)));
        assert!(!shows_nothing(&choice(json!({"role": "assistant"}), None)));
        assert!(!shows_nothing(&choice(json!({}), Some("stop"))));
        let mut c = choice(json!({}), None);
        c.logprobs = Some(json!({"content": [], "refusal": null}));
        assert!(shows_nothing(&c));
        c.logprobs = Some(json!({"content": [{"token": "a"}], "refusal": null}));
        assert!(!shows_nothing(&c));
    }
}
