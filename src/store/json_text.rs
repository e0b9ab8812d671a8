//! A JSON value held as its compact text: an event's policy trace and detail.
//!
//! They are made once where the event is built (serialised straight from the typed
//! trace and routing structs), bound as text by the writer and hashed as is. As
//! `serde_json::Value` trees they cost an allocation per node on the request thread,
//! a walk to print them in the writer, and a walk to free them there (in another
//! thread's malloc arena) — about a tenth of the gateway's CPU per request.
//!
//! The text is always what `serde_json` prints for the value (compact, keys in insertion
//! order), so serialising an event with it gives the same bytes as the `Value` it
//! replaced: hash chains written before and after this type agree.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonText(String);

impl JsonText {
    /// `value` serialised (`null` if it cannot be, which our types never do).
    pub fn of<T: Serialize + ?Sized>(value: &T) -> JsonText {
        JsonText(serde_json::to_string(value).unwrap_or_else(|_| "null".to_string()))
    }

    pub fn empty_array() -> JsonText {
        JsonText("[]".to_string())
    }

    pub fn empty_object() -> JsonText {
        JsonText("{}".to_string())
    }

    /// Text read back from the store: kept when it is valid JSON.
    pub fn parse(text: String) -> Option<JsonText> {
        serde_json::from_str::<&RawValue>(&text).ok()?;
        Some(JsonText(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value as a tree, for readers (the CLI, queries).
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// Appends `items` to this array (a value that is not an array becomes one).
    pub fn extend_array<T: Serialize>(&mut self, items: impl IntoIterator<Item = T>) {
        self.extend_array_with(items, |item, buf| serde_json::to_writer(buf, item));
    }

    /// [`extend_array`](Self::extend_array) with each item written by `write`, which must
    /// append exactly what `serde_json` prints for it (a faster writer for a hot type).
    pub fn extend_array_with<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        write: impl Fn(&T, &mut Vec<u8>) -> serde_json::Result<()>,
    ) {
        let is_array = self.0.starts_with('[') && self.0.ends_with(']');
        if !is_array {
            self.0 = "[]".to_string();
        }
        // The new items' text in one buffer (an item that cannot be serialised is left
        // out), then added at once: no string per item.
        let mut buf = Vec::with_capacity(256);
        let mut first = self.0.len() == 2;
        for item in items {
            let mark = buf.len();
            if !first {
                buf.push(b',');
            }
            if write(&item, &mut buf).is_err() {
                buf.truncate(mark);
                continue;
            }
            first = false;
        }
        // serde_json writes UTF-8.
        if let Ok(text) = std::str::from_utf8(&buf) {
            self.0.pop();
            self.0.push_str(text);
            self.0.push(']');
        }
    }

    /// Sets `key` of this object to `value` (a value that is not an object becomes one).
    pub fn insert<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) {
        // `"key":value` in one buffer: the quoted key with its colon is what a key
        // already present looks like.
        let mut buf = Vec::with_capacity(512);
        if serde_json::to_writer(&mut buf, key).is_err() {
            return;
        }
        buf.push(b':');
        let key_len = buf.len();
        if serde_json::to_writer(&mut buf, value).is_err() {
            return;
        }
        // serde_json writes UTF-8.
        let Ok(entry) = std::str::from_utf8(&buf) else {
            return;
        };
        let is_object = self.0.starts_with('{') && self.0.ends_with('}');
        if !is_object {
            self.0 = "{}".to_string();
        }
        if self.0.contains(&entry[..key_len]) {
            // The key may be there already (or the text occurs deeper down): replace it
            // in place through a tree, which keeps its position like `Map::insert`.
            let mut tree = self.value();
            if let (Some(obj), Ok(v)) = (
                tree.as_object_mut(),
                serde_json::from_str(&entry[key_len..]),
            ) {
                obj.insert(key.to_string(), v);
                *self = JsonText::of(&tree);
            }
            return;
        }
        self.0.pop();
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push_str(entry);
        self.0.push('}');
    }
}

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Verbatim: no tree built, the same bytes as the value's own serialisation.
        match serde_json::from_str::<&RawValue>(&self.0) {
            Ok(raw) => raw.serialize(s),
            Err(_) => s.serialize_unit(),
        }
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Through a tree so that any deserializer works (read paths only).
        Ok(JsonText::of(&Value::deserialize(d)?))
    }
}

impl From<Value> for JsonText {
    fn from(value: Value) -> JsonText {
        JsonText::of(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn building_by_text_gives_the_same_bytes_as_building_a_tree() {
        let mut text = JsonText::empty_array();
        let mut tree = json!([]);
        for batch in [
            vec![json!({"policy": "a", "score": 0.5})],
            vec![],
            vec![json!({"b": [1, "é\n\"q\""]}), json!(null)],
        ] {
            text.extend_array(&batch);
            tree.as_array_mut().unwrap().extend(batch);
            assert_eq!(text.as_str(), tree.to_string());
        }

        let mut text = JsonText::empty_object();
        let mut tree = json!({});
        for (k, v) in [
            ("routing", json!({"order": ["a"]})),
            ("realtime", json!(1)),
            ("routing", json!(2)),
            ("x\"y", json!("routing")),
        ] {
            text.insert(k, &v);
            tree.as_object_mut().unwrap().insert(k.to_string(), v);
            assert_eq!(text.as_str(), tree.to_string());
        }
    }

    #[test]
    fn a_value_of_the_wrong_shape_is_replaced() {
        let mut t = JsonText::of(&json!(null));
        t.extend_array([1, 2]);
        assert_eq!(t.as_str(), "[1,2]");
        let mut t = JsonText::of(&json!([1]));
        t.insert("k", "v");
        assert_eq!(t.as_str(), r#"{"k":"v"}"#);
    }

    #[test]
    fn serialises_verbatim_inside_a_struct_and_reads_back() {
        #[derive(Serialize, Deserialize)]
        struct Row {
            a: Option<JsonText>,
            b: Option<Value>,
        }
        let v = json!({"z": 1, "a": [0.1, true, "x"]});
        let row = Row {
            a: Some(JsonText::of(&v)),
            b: Some(v.clone()),
        };
        let out = serde_json::to_string(&row).unwrap();
        assert_eq!(out, format!(r#"{{"a":{v},"b":{v}}}"#));
        let back: Row = serde_json::from_str(&out).unwrap();
        assert_eq!(back.a.unwrap().value(), v);
        let back: Row = serde_json::from_value(json!({"a": null, "b": null})).unwrap();
        assert!(back.a.is_none());
        assert!(JsonText::parse("{oops".to_string()).is_none());
        assert_eq!(JsonText::parse("[1]".to_string()).unwrap().as_str(), "[1]");
    }
}
