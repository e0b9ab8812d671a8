//! The OpenAI wire format: the lingua franca of kt. Every provider translates to and from
//! these types; the gateway, policies and `kt chat` speak only these.
//!
//! Unknown fields are kept (`extra`) so a request is passed through without losing what a
//! newer SDK sent.

mod accumulate;
pub mod audio;
mod de;
pub mod embeddings;
pub mod error;
pub mod responses;
pub mod splice;
pub mod types;

pub use accumulate::{join_function_call, StreamAccumulator};
pub use de::AsSent;
pub use error::{ApiError, ErrorBody};
pub use types::*;

/// `serde_json::from_slice`, for the hot path's bodies: the bytes are checked as UTF-8
/// once, then read as `&str`. `from_slice` checks each string of the document on its own
/// (~100 instructions per string before its first byte is read: 3.7 k per request on
/// OpenAI's usual request and answer, callgrind); one pass over the whole body is a few
/// hundred. Bytes that are no UTF-8 go to `from_slice`, for its error.
pub fn from_json<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn from_json_reads_what_from_slice_reads_and_fails_as_it_does() {
        let body =
            br#"{"model":"m","messages":[{"role":"user","content":"caf\u00e9 \"x\" \u00fc"}]}"#;
        let ours: Value = from_json(body).unwrap();
        let theirs: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(ours, theirs);
        // Borrowed strings still borrow from the body.
        let s: &str = from_json(br#""plain""#).unwrap();
        assert_eq!(s, "plain");
        for bad in [&b"{\"a\":\"\xff\"}"[..], b"{\"a\":", b"[1,]", b"\"\xc3\""] {
            let ours = from_json::<Value>(bad).unwrap_err().to_string();
            let theirs = serde_json::from_slice::<Value>(bad)
                .unwrap_err()
                .to_string();
            assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(bad));
        }
    }
}
