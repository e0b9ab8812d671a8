//! The streaming side of the scanner: a [`TextFilter`] that rewrites text as it flows.
//! It commits to a hit only when no later text can change it, and holds back only from
//! the first position where a match could still be in progress ([`super::live`]), so
//! tokens keep flowing and no part of a value that will be rewritten is ever emitted.
//! The concatenated output equals [`super::rewrite`] of the whole text.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::live::LiveCache;
use super::{prev_boundary, Detector, Scanner};
use crate::policy::{Finding, TextFilter};

/// What replaces a hit: a marker, or `None` to leave the text as it is.
pub trait Marker: Send {
    fn marker(&mut self, det: &Detector, value: &str) -> Option<String>;
}

impl<F: FnMut(&Detector, &str) -> Option<String> + Send> Marker for F {
    fn marker(&mut self, det: &Detector, value: &str) -> Option<String> {
        self(det, value)
    }
}

/// Already-emitted text kept before the pending text, so that word boundaries and the
/// one-character look-behind of a check see the same context as in the whole text.
const CONTEXT: usize = 8;

/// Up to this many held-back bytes, every push is scanned at once.
const SMALL_HOLD: usize = 32;

/// Past [`SMALL_HOLD`], a push is scanned once the text pushed since the last scan is at
/// least this fraction (1/n) of what is held back.
const RESCAN_SHARE: usize = 8;

pub struct ScanFilter<M: Marker> {
    scanner: Arc<Scanner>,
    cache: LiveCache,
    marker: M,
    /// Original text: `buf[..ctx]` was emitted already, the rest is pending.
    buf: String,
    ctx: usize,
    /// Rewritten values by kind.
    counts: BTreeMap<String, u32>,
    /// Bytes pushed since the last scan.
    unscanned: usize,
    #[cfg(test)]
    steps: usize,
}

impl<M: Marker> Drop for ScanFilter<M> {
    fn drop(&mut self) {
        self.scanner.liveness().give_back(&mut self.cache);
    }
}

impl<M: Marker> ScanFilter<M> {
    pub fn new(scanner: Arc<Scanner>, marker: M) -> ScanFilter<M> {
        let cache = scanner.liveness().cache();
        ScanFilter {
            scanner,
            cache,
            marker,
            buf: String::new(),
            ctx: 0,
            counts: BTreeMap::new(),
            unscanned: 0,
            #[cfg(test)]
            steps: 0,
        }
    }

    /// Emits everything that can no longer change (all of it at the end of the text).
    fn step(&mut self, at_end: bool) -> String {
        self.unscanned = 0;
        #[cfg(test)]
        {
            self.steps += 1;
        }
        let hold = if at_end {
            self.buf.len()
        } else {
            self.scanner
                .liveness()
                .hold_from(&mut self.cache, &self.buf, self.ctx)
        };
        let hits = self.scanner.find(&self.buf, self.ctx, hold);
        let mut out = String::new();
        let mut pos = self.ctx;
        let mut emit_to = hold;
        for h in hits {
            emit_to = emit_to.max(h.span.end);
            let (Some(det), Some(value)) =
                (self.scanner.detector(h.det), self.buf.get(h.span.clone()))
            else {
                continue;
            };
            if h.span.start < pos {
                continue;
            }
            if let Some(m) = self.marker.marker(det, value) {
                out.push_str(self.buf.get(pos..h.span.start).unwrap_or_default());
                out.push_str(&m);
                pos = h.span.end;
                *self.counts.entry(det.kind.clone()).or_default() += 1;
            }
        }
        out.push_str(self.buf.get(pos..emit_to).unwrap_or_default());
        let keep = prev_boundary(&self.buf, emit_to.saturating_sub(CONTEXT));
        self.buf.drain(..keep);
        self.ctx = emit_to - keep;
        out
    }
}

impl<M: Marker> TextFilter for ScanFilter<M> {
    fn push(&mut self, text: &str) -> String {
        self.buf.push_str(text);
        self.unscanned += text.len();
        // A scan re-reads everything held back, so scanning every token while a long match
        // is in progress (a PEM block, a greedy custom pattern) costs the square of its
        // length: seconds of CPU per 16 KiB. Past a small hold, scan again only once the
        // new text is a fair share of what is held: linear overall, and text waits at most
        // that share longer. Scanning less often cannot change the output (see above).
        let held = self.buf.len() - self.ctx;
        if held > SMALL_HOLD && self.unscanned * RESCAN_SHARE < held {
            return String::new();
        }
        self.step(false)
    }

    fn finish(&mut self) -> String {
        let out = self.step(true);
        self.buf.clear();
        self.ctx = 0;
        out
    }

    fn findings(&self) -> Vec<Finding> {
        self.counts
            .iter()
            .map(|(k, n)| Finding::new(k.clone(), *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{rewrite, DetectorSpec};
    use super::*;

    fn scanner() -> Arc<Scanner> {
        Arc::new(
            Scanner::new(vec![
                DetectorSpec::new("email", r"(?-u:\b)[a-z0-9.]+@[a-z0-9]+\.[a-z]{2,6}(?-u:\b)"),
                DetectorSpec::new("key", r"(?-u:\b)sk-[A-Za-z0-9]{8,40}(?-u:\b)"),
                DetectorSpec::new("flagged", r"(?-u:\b)note(?-u:\b)").tag(1),
            ])
            .unwrap(),
        )
    }

    fn marker(d: &Detector, _: &str) -> Option<String> {
        (d.tag == 0).then(|| format!("[{}]", d.kind.to_uppercase()))
    }

    fn stream(pieces: &[&str]) -> (Vec<String>, Vec<Finding>) {
        let mut f = ScanFilter::new(scanner(), marker);
        let mut out: Vec<String> = pieces.iter().map(|p| f.push(p)).collect();
        out.push(f.finish());
        (out, f.findings())
    }

    #[test]
    fn tokens_flow_and_values_are_held_until_decided() {
        let (out, findings) = stream(&[
            "Write to jo",
            "hn.doe@exa",
            "mple.com or",
            " use sk-",
            "abcdef1234 now.",
        ]);
        assert_eq!(
            out[0], "Write to ",
            "text before a possible match flows at once"
        );
        assert_eq!(out[1], "");
        assert_eq!(out[2], "[EMAIL] ");
        assert_eq!(out.concat(), "Write to [EMAIL] or use [KEY] now.");
        assert_eq!(
            findings,
            vec![Finding::new("email", 1), Finding::new("key", 1)]
        );
    }

    #[test]
    fn every_split_gives_the_whole_text_rewrite() {
        let text =
            "note: mail a.b@ex.org, key sk-ABCdef12345 and sk-short; x@y.io\nnote sk-ZZZZZZZZZZ";
        let mut whole = text.to_string();
        rewrite(&scanner(), &mut whole, marker);
        assert!(!whole.contains("a.b@ex.org") && whole.contains("sk-short"));
        for step in 1..8 {
            let pieces: Vec<String> = text
                .chars()
                .collect::<Vec<_>>()
                .chunks(step)
                .map(|c| c.iter().collect())
                .collect();
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            let (out, _) = stream(&refs);
            assert_eq!(out.concat(), whole, "split every {step} chars");
        }
    }

    /// Found by the fuzz target `pii-long-runs`: a private key header followed by a long
    /// body, streamed a token at a time, re-scanned the whole held-back body on every
    /// token (0.4 s of CPU per 16 KiB; a custom greedy pattern, 3 s).
    #[test]
    fn a_long_match_in_progress_is_not_rescanned_on_every_token() {
        let s = Arc::new(
            Scanner::new(vec![DetectorSpec::new(
                "key",
                r"-----BEGIN KEY-----[\s\S]*?-----END KEY-----",
            )])
            .unwrap(),
        );
        let text = format!(
            "before -----BEGIN KEY-----\n{}-----END KEY----- after",
            "abcd efgh\n".repeat(1200)
        );
        let mut whole = text.clone();
        rewrite(&s, &mut whole, marker);
        assert_eq!(whole, "before [KEY] after");
        let mut f = ScanFilter::new(s, marker);
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::new();
        let mut pushes = 0;
        for piece in chars.chunks(4) {
            out.push_str(&f.push(&piece.iter().collect::<String>()));
            pushes += 1;
        }
        out.push_str(&f.finish());
        assert_eq!(out, whole);
        assert!(
            pushes > 3000 && f.steps < 150,
            "{} scans for {pushes} pushes",
            f.steps
        );
    }

    #[test]
    fn multibyte_text_is_split_on_char_boundaries() {
        let (out, _) = stream(&["héllo wörld ", "ü@ex.com é x@ex.co", "m ñ"]);
        assert_eq!(out.concat(), "héllo wörld ü@ex.com é [EMAIL] ñ");
    }
}
