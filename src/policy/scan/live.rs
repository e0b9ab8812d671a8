//! Liveness: how much of the end of a text a stream filter must hold back. A position is
//! *live* when some detector's match starting there could still change (grow, appear or
//! be decided) once more text arrives. Measured with one lazy DFA per detector, anchored
//! at the position, with the same leftmost-first preference as the search: the position
//! is live unless every DFA dies before the end of the text (its preferred match, if
//! any, is then settled). This is exact, so a stream holds back only as many characters
//! as a match can still span.

use std::sync::{Mutex, PoisonError};

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::{Anchored, Input, MatchKind};

/// A live start further back than this is given up on: the text before it is emitted.
/// It bounds what an unbounded pattern (a JWT, a private key block) can hold back; 16 KiB
/// covers a 4096-bit RSA key in PEM.
pub const MAX_HOLD: usize = 16 * 1024;

const NFA_SIZE_LIMIT: usize = 32 * 1024 * 1024;

/// Caches of ended streams kept for the next ones, at most (and only small ones).
const SPARE_CACHES: usize = 16;
const SPARE_CACHE_BYTES: usize = 256 * 1024;

/// The compiled liveness automata of a scanner.
#[derive(Debug)]
pub struct Liveness {
    /// One DFA per pattern. A pattern with a Unicode word boundary gets a DFA that gives
    /// up on non-ASCII text (counted as live there).
    dfas: Vec<DFA>,
    /// A pattern no DFA could be built for: every position counts as live (within
    /// [`MAX_HOLD`]).
    conservative: bool,
    /// Caches of streams that ended. A lazy DFA builds its states as text meets them, in
    /// its cache: a fresh cache per stream made every stream's first chunk pay for
    /// building them again (~0.2 ms of its time to first token with the default chain).
    spare: Mutex<Vec<Vec<Cache>>>,
}

/// Per-stream scratch space of the lazy DFAs.
pub struct LiveCache {
    caches: Vec<Cache>,
}

fn build(pattern: &str, unicode_word_boundary: bool) -> Option<DFA> {
    DFA::builder()
        .configure(
            DFA::config()
                .match_kind(MatchKind::LeftmostFirst)
                .unicode_word_boundary(unicode_word_boundary)
                .skip_cache_capacity_check(true),
        )
        .thompson(thompson::Config::new().nfa_size_limit(Some(NFA_SIZE_LIMIT)))
        .build(pattern)
        .ok()
}

impl Liveness {
    pub fn new(patterns: &[&str]) -> Liveness {
        let mut dfas = Vec::with_capacity(patterns.len());
        let mut conservative = false;
        for p in patterns {
            match build(p, false).or_else(|| build(p, true)) {
                Some(dfa) => dfas.push(dfa),
                None => conservative = true,
            }
        }
        Liveness {
            dfas,
            conservative,
            spare: Mutex::new(Vec::new()),
        }
    }

    fn spare(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Cache>>> {
        // A cache is only scratch space: one left by a panic is as good as any.
        self.spare.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Scratch space for one stream: a warm one from an ended stream when there is one.
    pub fn cache(&self) -> LiveCache {
        let caches = self
            .spare()
            .pop()
            .unwrap_or_else(|| self.dfas.iter().map(DFA::create_cache).collect());
        LiveCache { caches }
    }

    /// Takes back a stream's scratch space for the next stream (a few, if small).
    pub fn give_back(&self, cache: &mut LiveCache) {
        let caches = std::mem::take(&mut cache.caches);
        let bytes: usize = caches.iter().map(Cache::memory_usage).sum();
        if caches.len() != self.dfas.len() || bytes > SPARE_CACHE_BYTES {
            return;
        }
        let mut spare = self.spare();
        if spare.len() < SPARE_CACHES {
            spare.push(caches);
        }
    }

    /// The first position in `hay[from..]` (a char boundary) that is live, or `hay.len()`
    /// when none is. Positions more than [`MAX_HOLD`] bytes before the end are not
    /// considered.
    pub fn hold_from(&self, cache: &mut LiveCache, hay: &str, from: usize) -> usize {
        let len = hay.len();
        let mut s = from.max(len.saturating_sub(MAX_HOLD));
        while s < len && !hay.is_char_boundary(s) {
            s += 1;
        }
        if self.conservative {
            return s;
        }
        while s < len {
            if self.is_live(cache, hay, s) {
                return s;
            }
            s = super::next_boundary(hay, s);
        }
        len
    }

    fn is_live(&self, cache: &mut LiveCache, hay: &str, s: usize) -> bool {
        self.dfas
            .iter()
            .zip(cache.caches.iter_mut())
            .any(|(dfa, c)| alive_to_end(dfa, c, hay, s))
    }
}

/// Whether the anchored DFA started at `s` is still alive after the last byte. Giving up
/// (a quit byte, a thrashing cache) counts as alive: holding back is the safe answer.
fn alive_to_end(dfa: &DFA, cache: &mut Cache, hay: &str, s: usize) -> bool {
    let input = Input::new(hay).range(s..).anchored(Anchored::Yes);
    let Ok(mut sid) = dfa.start_state_forward(cache, &input) else {
        return true;
    };
    for &b in hay.as_bytes().get(s..).unwrap_or_default() {
        sid = match dfa.next_state(cache, sid, b) {
            Ok(next) => next,
            Err(_) => return true,
        };
        if sid.is_dead() {
            return false;
        }
        if sid.is_quit() {
            return true;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(patterns: &[&str], text: &str) -> usize {
        let l = Liveness::new(patterns);
        let mut c = l.cache();
        l.hold_from(&mut c, text, 0)
    }

    #[test]
    fn a_new_stream_gets_an_ended_streams_warm_cache_and_answers_the_same() {
        let email = r"[a-z]+@[a-z]+\.[a-z]{2,3}\b";
        let l = Liveness::new(&[email]);
        let fresh = l.cache();
        let cold: usize = fresh.caches.iter().map(Cache::memory_usage).sum();
        let mut used = l.cache();
        assert_eq!(l.hold_from(&mut used, "mail me at jo@ex", 0), 11);
        l.give_back(&mut used);
        let mut warm = l.cache();
        let bytes: usize = warm.caches.iter().map(Cache::memory_usage).sum();
        assert!(
            bytes > cold,
            "the states built by the last stream come along"
        );
        assert_eq!(l.hold_from(&mut warm, "mail me at jo@ex", 0), 11);
        assert_eq!(l.hold_from(&mut warm, "no address here ", 0), 16);
        // Only a few are kept.
        let mut many: Vec<LiveCache> = (0..SPARE_CACHES + 4).map(|_| l.cache()).collect();
        for c in &mut many {
            l.give_back(c);
        }
        assert_eq!(l.spare().len(), SPARE_CACHES);
    }

    #[test]
    fn holds_only_a_possible_match_in_progress() {
        let email = r"[a-z]+@[a-z]+\.[a-z]{2,3}\b";
        assert_eq!(hold(&[email], "mail me at "), 11);
        assert_eq!(hold(&[email], "mail me at jo"), 11);
        assert_eq!(hold(&[email], "mail me at jo@ex"), 11);
        // Complete, but decided only by the bytes after it (`\b`, and a DFA reports a
        // match one byte late).
        assert_eq!(hold(&[email], "mail me at jo@ex.com"), 11);
        assert_eq!(hold(&[email], "mail me at jo@ex.com "), 11);
        assert_eq!(hold(&[email], "mail me at jo@ex.com x"), 21);
    }

    #[test]
    fn literal_prefixes_hold_only_their_partial_prefix() {
        let key = r"sk-[A-Za-z0-9]{20,}";
        assert_eq!(hold(&[key], "the key is s"), 11);
        assert_eq!(hold(&[key], "the key is sk-abc"), 11);
        assert_eq!(hold(&[key], "the key is skate"), 16);
    }

    #[test]
    fn unicode_word_boundaries_give_up_only_on_their_own() {
        // `\b` (Unicode) cannot run in a lazy DFA over non-ASCII text: such positions are
        // held, the others are not.
        let l = Liveness::new(&[r"\bfoo\b", r"bar"]);
        let mut c = l.cache();
        assert_eq!(l.hold_from(&mut c, "xyz ", 0), 4);
        assert_eq!(l.hold_from(&mut c, "xyz é", 0), 4);
        assert_eq!(
            hold(&[r"(?-u:\b)foo(?-u:\b)", r"bar"], "xyz é"),
            "xyz é".len()
        );
    }

    #[test]
    fn unbounded_holds_are_capped() {
        let text = format!("-----BEGIN {}", "A".repeat(MAX_HOLD + 10));
        // The live start (0) is too far back: everything may go.
        assert_eq!(hold(&[r"-----BEGIN [A-Z]+"], &text), text.len());
        let text = format!("-----BEGIN {}", "A".repeat(100));
        assert_eq!(hold(&[r"-----BEGIN [A-Z]+"], &text), 0);
    }
}
