//! Token log probabilities through a redacting stream filter.
//!
//! A streamed chunk's `logprobs` entries spell the tokens of the text it carries
//! (` john`, `.doe`, `@`, `example`…). Once a filter may hold that text back or rewrite
//! it, passing the entries on as they arrive would show the client what the redaction
//! removes. A [`TokenHold`] keeps each chunk's entries until the filter has shown that
//! chunk's text as it was written, and drops them for good once the filter has shown
//! anything else: after a rewrite, the shown text no longer lines up with the tokens.

use std::collections::VecDeque;

use serde_json::Value;

#[derive(Debug, Default)]
pub struct TokenHold {
    /// Text pushed into the filter that it has not shown yet.
    pending: String,
    /// Entries, each with the length `pending` had once its chunk's text was pushed.
    held: VecDeque<(usize, Value)>,
    /// The filter showed text other than what was pushed: nothing is released any more.
    rewritten: bool,
}

impl TokenHold {
    /// Records `text` pushed into the filter, with the entries that came with it.
    pub fn pushed(&mut self, text: &str, entries: Vec<Value>) {
        if self.rewritten {
            return;
        }
        self.pending.push_str(text);
        let end = self.pending.len();
        self.held.extend(entries.into_iter().map(|e| (end, e)));
    }

    /// The filter showed `shown`: gives the entries whose text is now shown, unchanged.
    pub fn shown(&mut self, shown: &str) -> Vec<Value> {
        if self.rewritten {
            return Vec::new();
        }
        if !self.pending.starts_with(shown) {
            self.rewritten = true;
            self.pending = String::new();
            self.held = VecDeque::new();
            return Vec::new();
        }
        let n = shown.len();
        self.pending.drain(..n);
        let ready = self.held.iter().take_while(|(end, _)| *end <= n).count();
        let out = self.held.drain(..ready).map(|(_, e)| e).collect();
        for (end, _) in &mut self.held {
            *end -= n;
        }
        out
    }

    /// Whether the filter has rewritten text (and the entries since were dropped).
    pub fn rewritten(&self) -> bool {
        self.rewritten
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tokens(v: &[Value]) -> Vec<&str> {
        v.iter().filter_map(Value::as_str).collect()
    }

    #[test]
    fn entries_follow_their_text_out_of_the_hold() {
        let mut h = TokenHold::default();
        h.pushed("Hello", vec![json!("Hello")]);
        assert!(h.shown("").is_empty(), "the filter held the word back");
        h.pushed(" world", vec![json!(" world")]);
        // `Hello ` shown: the first chunk's text is out, the second's only partly.
        assert_eq!(tokens(&h.shown("Hello ")), ["Hello"]);
        assert_eq!(tokens(&h.shown("world")), [" world"]);
        assert!(!h.rewritten());
    }

    #[test]
    fn several_chunks_released_by_one_show() {
        let mut h = TokenHold::default();
        for t in ["a", "b", "c"] {
            h.pushed(t, vec![json!(t)]);
        }
        h.pushed("", vec![json!("empty")]);
        assert_eq!(tokens(&h.shown("abc")), ["a", "b", "c", "empty"]);
    }

    #[test]
    fn a_rewrite_drops_every_entry_from_then_on() {
        let mut h = TokenHold::default();
        h.pushed("Write to", vec![json!("Write"), json!(" to")]);
        assert_eq!(tokens(&h.shown("Write to")), ["Write", " to"]);
        for t in [" john", ".doe", "@", "example", ".com"] {
            h.pushed(t, vec![json!(t)]);
            assert!(h.shown("").is_empty());
        }
        h.pushed(" today", vec![json!(" today")]);
        assert!(h.shown(" [EMAIL] ").is_empty());
        assert!(h.rewritten());
        h.pushed(".", vec![json!(".")]);
        assert!(
            h.shown("today.").is_empty(),
            "nothing lines up after a rewrite"
        );
    }
}
