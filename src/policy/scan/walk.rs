//! Where the free text of a request or a response lives, for the content policies to
//! read and rewrite: message contents of every role (text parts), refusals, the string
//! and number values inside tool-call arguments and a deprecated `function_call`'s
//! (parsed as JSON, so a rewrite keeps the arguments valid JSON), a custom tool call's
//! input (free text), and the transcript of an answer's audio (`message.audio`:
//! what the speech says; a rewrite of it cannot reach the speech, see
//! `chain::PolicyChain::run_output`).

use serde_json::Value;

use crate::openai::{ChatRequest, ChatResponse, Message};

/// Calls `f` on every text of the request. `f` returns whether it changed the text.
pub fn request_texts(req: &mut ChatRequest, f: &mut dyn FnMut(&mut String) -> bool) {
    for m in &mut req.messages {
        message_texts(m, f);
    }
}

/// Calls `f` on every text of every choice of the response.
pub fn response_texts(resp: &mut ChatResponse, f: &mut dyn FnMut(&mut String) -> bool) {
    for c in &mut resp.choices {
        message_texts(&mut c.message, f);
    }
}

pub fn message_texts(m: &mut Message, f: &mut dyn FnMut(&mut String) -> bool) {
    if let Some(content) = &mut m.content {
        for t in content.texts_mut() {
            f(t);
        }
    }
    if let Some(r) = &mut m.refusal {
        f(r);
    }
    for call in m.tool_calls.iter_mut().flatten() {
        match &mut call.custom {
            // A custom tool's input is free text.
            Some(c) if call.function.is_unset() => {
                f(&mut c.input);
            }
            _ => arguments(&mut call.function.arguments, f),
        }
    }
    // The deprecated `function_call` (legacy function calling).
    if let Some(Value::String(args)) = m
        .extra
        .get_mut("function_call")
        .and_then(|c| c.get_mut("arguments"))
    {
        arguments(args, f);
    }
    if let Some(t) = transcript_mut(m) {
        f(t);
    }
}

/// The transcript of a message's audio output (`audio.transcript`), if it has one.
pub fn transcript_mut(m: &mut Message) -> Option<&mut String> {
    match m.extra.get_mut("audio")?.get_mut("transcript")? {
        Value::String(t) => Some(t),
        _ => None,
    }
}

/// Tool-call arguments: a JSON document in a string. Its string values (and numbers, which
/// may be card or phone numbers) are visited one by one; a document that does not parse is
/// visited as plain text.
pub fn arguments(args: &mut String, f: &mut dyn FnMut(&mut String) -> bool) {
    match serde_json::from_str::<Value>(args) {
        Ok(mut v) => {
            if json_values(&mut v, f) {
                if let Ok(s) = serde_json::to_string(&v) {
                    *args = s;
                }
            }
        }
        Err(_) => {
            f(args);
        }
    }
}

fn json_values(v: &mut Value, f: &mut dyn FnMut(&mut String) -> bool) -> bool {
    match v {
        Value::String(s) => f(s),
        Value::Number(n) => {
            let mut s = n.to_string();
            if f(&mut s) {
                *v = Value::String(s);
                true
            } else {
                false
            }
        }
        // Every value is visited: no short circuit on the first change.
        Value::Array(items) => {
            let mut changed = false;
            for i in items {
                changed |= json_values(i, f);
            }
            changed
        }
        Value::Object(map) => {
            let mut changed = false;
            for i in map.values_mut() {
                changed |= json_values(i, f);
            }
            changed
        }
        Value::Null | Value::Bool(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visits_every_role_parts_and_tool_arguments() {
        let mut req: ChatRequest = serde_json::from_str(
            r#"{"model":"m","messages":[
                {"role":"system","content":"s secret"},
                {"role":"user","content":[{"type":"text","text":"u secret"},{"type":"image_url","image_url":{"url":"http://x/secret.png"}}]},
                {"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"q\":\"a secret\",\"n\":[42,{\"deep\":\"secret\"}]}"}}]},
                {"role":"tool","tool_call_id":"c","content":"t secret"},
                {"role":"assistant","content":null,"audio":{"id":"audio_1","transcript":"a secret"}},
                {"role":"assistant","content":null,"function_call":{"name":"f","arguments":"{\"q\":\"secret\"}"}},
                {"role":"function","name":"f","content":"f secret"},
                {"role":"assistant","content":null,"tool_calls":[{"id":"k","type":"custom","custom":{"name":"sh","input":"echo secret"}}]}
            ]}"#,
        )
        .unwrap();
        let mut seen = 0;
        request_texts(&mut req, &mut |t| {
            seen += 1;
            if t.contains("secret") {
                *t = t.replace("secret", "[X]");
                true
            } else {
                t == "42"
            }
        });
        assert_eq!(seen, 10);
        let back = serde_json::to_value(&req).unwrap();
        assert_eq!(back["messages"][0]["content"], "s [X]");
        assert_eq!(back["messages"][1]["content"][0]["text"], "u [X]");
        assert_eq!(
            back["messages"][1]["content"][1]["image_url"]["url"],
            "http://x/secret.png"
        );
        let args: Value = serde_json::from_str(
            back["messages"][2]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            args,
            serde_json::json!({"q": "a [X]", "n": ["42", {"deep": "[X]"}]})
        );
        assert_eq!(back["messages"][3]["content"], "t [X]");
        assert_eq!(back["messages"][4]["audio"]["transcript"], "a [X]");
        assert_eq!(back["messages"][4]["audio"]["id"], "audio_1");
        assert_eq!(
            back["messages"][5]["function_call"],
            serde_json::json!({"name": "f", "arguments": "{\"q\":\"[X]\"}"})
        );
        assert_eq!(back["messages"][6]["content"], "f [X]");
        assert_eq!(
            back["messages"][7]["tool_calls"][0],
            serde_json::json!({"id": "k", "type": "custom", "custom": {"name": "sh", "input": "echo [X]"}})
        );
    }

    #[test]
    fn unparsable_arguments_are_plain_text() {
        let mut a = "not json secret".to_string();
        arguments(&mut a, &mut |t| {
            *t = t.replace("secret", "[X]");
            true
        });
        assert_eq!(a, "not json [X]");
    }
}
