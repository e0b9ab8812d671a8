//! Audio output streamed in pieces: each chunk's `delta.audio` carries some of `id`,
//! `transcript` (text, in order), `data` (base64 of the next stretch of speech) and
//! `expires_at`. [`AudioParts`] puts them back together as one `message.audio`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{Map, Value};

/// The pieces of one choice's audio so far.
#[derive(Debug, Default)]
pub struct AudioParts {
    /// `id`, `expires_at` and any other member: the last value sent wins.
    fields: Map<String, Value>,
    transcript: Option<String>,
    /// Each piece's `data` as sent (base64, each padded on its own).
    data: Vec<String>,
}

impl AudioParts {
    /// Adds one `delta.audio`; its `data` only with `keep_data`.
    pub fn push(&mut self, part: &Map<String, Value>, keep_data: bool) {
        for (k, v) in part {
            match (k.as_str(), v) {
                ("transcript", Value::String(t)) => {
                    self.transcript.get_or_insert_with(String::new).push_str(t);
                }
                ("data", Value::String(d)) => {
                    if keep_data {
                        self.data.push(d.clone());
                    }
                }
                _ => {
                    self.fields.insert(k.clone(), v.clone());
                }
            }
        }
    }

    pub fn transcript(&self) -> Option<&str> {
        self.transcript.as_deref()
    }

    /// The whole audio as one object. Its `data` is the pieces' speech in order, encoded
    /// again as one base64 string (each piece is padded on its own: their strings cannot
    /// simply be joined); pieces that are not base64 are joined as sent.
    pub fn into_value(self) -> Value {
        let AudioParts {
            mut fields,
            transcript,
            data,
        } = self;
        if let Some(t) = transcript {
            fields.insert("transcript".to_string(), Value::String(t));
        }
        if !data.is_empty() {
            let decoded: Result<Vec<Vec<u8>>, _> =
                data.iter().map(|d| STANDARD.decode(d)).collect();
            let joined = match decoded {
                Ok(pieces) => STANDARD.encode(pieces.concat()),
                Err(_) => data.concat(),
            };
            fields.insert("data".to_string(), Value::String(joined));
        }
        Value::Object(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn part(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn pieces_make_one_audio_with_its_speech_in_order() {
        let mut a = AudioParts::default();
        a.push(&part(json!({"id": "audio_1", "transcript": "Hel"})), true);
        a.push(&part(json!({"data": STANDARD.encode(b"ab")})), true);
        a.push(
            &part(json!({"transcript": "lo", "data": STANDARD.encode(b"cde")})),
            true,
        );
        a.push(&part(json!({"expires_at": 17})), true);
        assert_eq!(a.transcript(), Some("Hello"));
        let v = a.into_value();
        assert_eq!(v["id"], "audio_1");
        assert_eq!(v["expires_at"], 17);
        assert_eq!(v["transcript"], "Hello");
        // "YWI=" + "Y2Rl" joined as strings would not decode; re-encoded, it does.
        assert_eq!(
            STANDARD.decode(v["data"].as_str().unwrap()).unwrap(),
            b"abcde"
        );
    }

    #[test]
    fn data_is_left_out_unless_kept_and_joined_as_sent_when_not_base64() {
        let mut a = AudioParts::default();
        a.push(&part(json!({"transcript": "Hi", "data": "AAAA"})), false);
        assert_eq!(a.into_value(), json!({"transcript": "Hi"}));
        let mut a = AudioParts::default();
        a.push(&part(json!({"data": "not base64!"})), true);
        a.push(&part(json!({"data": "?"})), true);
        assert_eq!(a.into_value(), json!({"data": "not base64!?"}));
    }
}
