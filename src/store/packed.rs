//! An event packed into one allocation for its trip to the writer thread.
//!
//! Why: an `Event` is some fifteen heap strings, allocated by a request thread. Dropped by
//! the writer thread, each string is a free of memory from another thread's malloc arena:
//! glibc takes that arena's lock for each, thousands per batch, while the request threads
//! allocate from the same arenas. Under load that contention was kt's tail (RESULTS.md,
//! tenth session). Packed on the request thread, the strings are freed where they were
//! allocated, the writer frees one buffer per event, and it binds the values straight from
//! that buffer.
//!
//! The buffer holds the values of `events::insert_values`, in order: a tag byte, then 8
//! bytes (an integer or a real, little-endian) or a length (8 bytes) and the bytes of a
//! text or blob.

use rusqlite::types::ValueRef;

use super::events::{self, Event, INSERT_VALUES, KEY_NAME_AT, REQUEST_ID_AT, TS_MS_AT};

const NULL: u8 = 0;
const INTEGER: u8 = 1;
const REAL: u8 = 2;
const TEXT: u8 = 3;
const BLOB: u8 = 4;

pub struct Packed {
    buf: Box<[u8]>,
    /// The event asks to be hash-chained (`Event::chain`, not a column).
    pub chain: bool,
}

impl Packed {
    pub fn new(e: &Event) -> Packed {
        let values = events::insert_values(e);
        let len = values
            .iter()
            .map(|v| match v {
                ValueRef::Null => 1,
                ValueRef::Integer(_) | ValueRef::Real(_) => 9,
                ValueRef::Text(b) | ValueRef::Blob(b) => 9 + b.len(),
            })
            .sum();
        let mut buf = Vec::with_capacity(len);
        for v in values {
            match v {
                ValueRef::Null => buf.push(NULL),
                ValueRef::Integer(i) => {
                    buf.push(INTEGER);
                    buf.extend_from_slice(&i.to_le_bytes());
                }
                ValueRef::Real(r) => {
                    buf.push(REAL);
                    buf.extend_from_slice(&r.to_le_bytes());
                }
                ValueRef::Text(b) => bytes(&mut buf, TEXT, b),
                ValueRef::Blob(b) => bytes(&mut buf, BLOB, b),
            }
        }
        Packed {
            buf: buf.into_boxed_slice(),
            chain: e.chain,
        }
    }

    /// The values, borrowed from the buffer.
    pub fn values(&self) -> [ValueRef<'_>; INSERT_VALUES] {
        let mut out = [ValueRef::Null; INSERT_VALUES];
        let mut rest: &[u8] = &self.buf;
        for slot in &mut out {
            let Some((&tag, tail)) = rest.split_first() else {
                break; // Not reached: `new` wrote every value.
            };
            rest = tail;
            *slot = match tag {
                INTEGER => ValueRef::Integer(i64::from_le_bytes(word(&mut rest))),
                REAL => ValueRef::Real(f64::from_le_bytes(word(&mut rest))),
                TEXT | BLOB => {
                    let len = usize::try_from(u64::from_le_bytes(word(&mut rest)))
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    let (bytes, tail) = rest.split_at(len);
                    rest = tail;
                    if tag == TEXT {
                        ValueRef::Text(bytes)
                    } else {
                        ValueRef::Blob(bytes)
                    }
                }
                _ => ValueRef::Null,
            };
        }
        out
    }

    /// The event again (for hashing a chained row).
    pub fn unpack(&self) -> rusqlite::Result<Event> {
        let mut e = events::from_insert_values(&self.values())?;
        e.chain = self.chain;
        Ok(e)
    }

    /// The size of the buffer: what the event holds in the writer's queue.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    pub fn request_id(&self) -> String {
        text(self.values()[REQUEST_ID_AT])
            .unwrap_or_default()
            .to_string()
    }

    /// `key_name` and `ts_ms`, for the key's "last used".
    pub fn key_use<'a>(values: &[ValueRef<'a>; INSERT_VALUES]) -> Option<(&'a str, i64)> {
        let key = text(values[KEY_NAME_AT])?;
        Some((key, values[TS_MS_AT].as_i64().unwrap_or_default()))
    }
}

/// A text or blob: its tag, its length, its bytes.
fn bytes(buf: &mut Vec<u8>, tag: u8, b: &[u8]) {
    buf.push(tag);
    buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
    buf.extend_from_slice(b);
}

fn text(v: ValueRef<'_>) -> Option<&str> {
    match v {
        ValueRef::Text(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

/// The next 8 bytes (zeros past the end, which `new` never leaves).
fn word(rest: &mut &[u8]) -> [u8; 8] {
    let mut w = [0; 8];
    let n = rest.len().min(8);
    w[..n].copy_from_slice(&rest[..n]);
    *rest = &rest[n..];
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::events::{EventKind, JsonText};

    fn full() -> Event {
        Event {
            id: 0,
            request_id: "req_1".into(),
            ts_ms: 1_700_000_000_123,
            kind: EventKind::Responses,
            endpoint: "/v1/responses".into(),
            configuration: Some("prod".into()),
            model_requested: Some("gpt-4o".into()),
            model_used: Some("gpt-4o-2024".into()),
            target_id: Some("openai-main".into()),
            provider: Some("openai".into()),
            status: 429,
            verdict: "block".into(),
            blocked_by: Some("pii".into()),
            policies: JsonText::parse(r#"[{"policy":"pii","verdict":"block"}]"#.into()),
            latency_ms: 12.5,
            ttft_ms: Some(-0.0),
            stream: true,
            prompt_tokens: Some(i64::MIN),
            completion_tokens: Some(i64::MAX),
            total_tokens: None,
            cost_usd: Some(f64::MIN_POSITIVE),
            key_name: Some("ci".into()),
            team: None,
            request_source: Some("".into()),
            correlation_id: Some("é ✓ \u{0} done".into()),
            error: None,
            detail: JsonText::parse(r#"{"a":1}"#.into()),
            request_body: Some("x".repeat(70_000)),
            response_body: None,
            prev_hash: Some("p".into()),
            hash: Some("h".into()),
            chain: true,
        }
    }

    #[test]
    fn an_event_comes_back_from_its_packing_unchanged() {
        for e in [full(), Event::default()] {
            let p = Packed::new(&e);
            assert_eq!(p.values(), events::insert_values(&e));
            assert_eq!(p.unpack().unwrap(), e);
            assert_eq!(p.request_id(), e.request_id);
        }
    }

    #[test]
    fn the_key_use_is_read_from_the_packed_values() {
        let p = Packed::new(&full());
        assert_eq!(
            Packed::key_use(&p.values()),
            Some(("ci", 1_700_000_000_123))
        );
        let p = Packed::new(&Event::default());
        assert_eq!(Packed::key_use(&p.values()), None);
    }
}
