//! Changing a JSON body kt passes on without rebuilding it.
//!
//! When the only thing kt changes in a client's request is the model (an alias, a target
//! whose model differs from the name the client used), the provider gets the client's
//! bytes with just that value replaced: numbers beyond 64 bits, key order, spacing and
//! fields kt does not know reach it as sent, and kt skips a serialisation. Anything the
//! scan below does not expect (an escaped key, a `model` that is not a string) gives
//! `None`, and the caller serialises the request as parsed instead. The same holds the
//! other way for an answer kt does not change (`ChatResponse::parse`): the client gets
//! the provider's bytes with kt's `x_keeptrusts` member added (`with_member`).

/// `body` (a JSON object that parsed without duplicate keys) with its top-level `model`
/// string replaced by `model`.
pub fn with_model(body: &[u8], model: &str) -> Option<Vec<u8>> {
    let mut i = skip_ws(body, 0);
    if body.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(body, i);
        if body.get(i) != Some(&b'"') {
            return None; // `}`: no `model` written plainly.
        }
        let key_end = string_end(body, i)?;
        let key = &body[i + 1..key_end - 1];
        i = skip_ws(body, key_end);
        if body.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(body, i + 1);
        let end = value_end(body, start)?;
        if key == b"model" {
            if body.get(start) != Some(&b'"') {
                return None;
            }
            let mut out = Vec::with_capacity(body.len() + model.len());
            out.extend_from_slice(&body[..start]);
            serde_json::to_writer(&mut out, model).ok()?;
            out.extend_from_slice(&body[end..]);
            return Some(out);
        }
        i = skip_ws(body, end);
        if body.get(i) != Some(&b',') {
            return None;
        }
        i += 1;
    }
}

/// `body` (a JSON object) with `"key":value` added as its last member (`value` is JSON),
/// right after the member that was last (the spacing before the `}` stays).
pub fn with_member(body: &[u8], key: &str, value: &[u8]) -> Option<Vec<u8>> {
    let close = last_non_ws(body, body.len())?;
    if body[close] != b'}' {
        return None;
    }
    let at = last_non_ws(body, close)? + 1;
    let mut out = Vec::with_capacity(body.len() + key.len() + value.len() + 4);
    out.extend_from_slice(&body[..at]);
    if body[at - 1] != b'{' {
        out.push(b',');
    }
    serde_json::to_writer(&mut out, key).ok()?;
    out.push(b':');
    out.extend_from_slice(value);
    out.extend_from_slice(&body[at..]);
    Some(out)
}

/// The index of the last byte before `end` that is not JSON whitespace.
fn last_non_ws(b: &[u8], end: usize) -> Option<usize> {
    b[..end]
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The index after the string that opens at `i` (its closing quote included).
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        match b.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

/// The index after the value that starts at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        // A number, `true`, `false` or `null`.
        _ => {
            let mut j = i;
            while !matches!(
                b.get(j),
                None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            ) {
                j += 1;
            }
            Some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{with_member, with_model};
    use proptest::prelude::*;
    use serde_json::Value;

    fn spliced(body: &str, model: &str) -> Option<String> {
        with_model(body.as_bytes(), model).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn only_the_model_value_changes() {
        let body = r#"{ "seed": 123456789012345678901234567890, "model" : "fast" ,"x":1.50}"#;
        assert_eq!(
            spliced(body, "gpt-4o").unwrap(),
            r#"{ "seed": 123456789012345678901234567890, "model" : "gpt-4o" ,"x":1.50}"#
        );
        assert_eq!(
            spliced(r#"{"model":"a"}"#, "we\"ird\\ \u{e7}").unwrap(),
            r#"{"model":"we\"ird\\ ç"}"#
        );
    }

    #[test]
    fn values_before_the_model_are_skipped_whole() {
        // Strings, nesting and literals that look like keys or ends of objects.
        let body = r#"{"messages":[{"role":"user","content":"say \"model\": } ] {"}],
            "metadata":{"model":"not this","n":[1,[2,{"a":null}]]},"stream":false,
            "t":-1.5e3,"s":"\\","model":"fast","z":true}"#;
        let out: Value = serde_json::from_str(&spliced(body, "gpt-4o").unwrap()).unwrap();
        let mut want: Value = serde_json::from_str(body).unwrap();
        want["model"] = "gpt-4o".into();
        assert_eq!(out, want);
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "(?s).{0,8}".prop_map(Value::from),
            Just(Value::from("\"model\": {[")),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("model|[a-z\"\\\\{}]{0,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_object_gets_exactly_the_new_model(
            fields in prop::collection::btree_map("[a-z\"\\\\]{0,6}", json(), 0..6),
            at in any::<prop::sample::Index>(),
            pretty in any::<bool>(),
            model in "(?s).{0,12}",
        ) {
            let mut fields: Vec<(String, Value)> =
                fields.into_iter().filter(|(k, _)| k != "model").collect();
            fields.insert(at.index(fields.len() + 1), ("model".into(), "fast".into()));
            let object = Value::Object(fields.into_iter().collect());
            let body = if pretty {
                serde_json::to_string_pretty(&object)
            } else {
                serde_json::to_string(&object)
            }
            .unwrap();
            let out = with_model(body.as_bytes(), &model).expect("a plain `model`");
            let mut want = object;
            want["model"] = model.into();
            prop_assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), want);
        }

        #[test]
        fn any_bytes_are_scanned_without_panicking(body in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = with_model(&body, "m");
        }
    }

    #[test]
    fn a_member_is_added_last() {
        let add = |b: &str| {
            String::from_utf8(with_member(b.as_bytes(), "x_k", b"{\"a\":1}").unwrap()).unwrap()
        };
        assert_eq!(add(r#"{"id":"1"}"#), r#"{"id":"1","x_k":{"a":1}}"#);
        assert_eq!(add("{ }\n"), "{\"x_k\":{\"a\":1} }\n");
        assert_eq!(
            add("{\n  \"id\": [1, {}]\n}\n"),
            "{\n  \"id\": [1, {}],\"x_k\":{\"a\":1}\n}\n"
        );
        for not_an_object in ["[1]", "", " ", "}", "1"] {
            assert!(with_member(not_an_object.as_bytes(), "x", b"1").is_none());
        }
    }

    #[test]
    fn anything_unexpected_is_left_to_serialisation() {
        for body in [
            r#"{"mod\u0065l":"fast"}"#, // an escaped key
            r#"{"model":null}"#,
            r#"{"messages":[]}"#,
            r#"["model"]"#,
            r#"{"model""#,
            r#"{"a":{"b":"#,
            "",
        ] {
            assert_eq!(spliced(body, "gpt-4o"), None, "{body}");
        }
    }
}
