//! Liveness: how much of the end of a text a stream filter must hold back. A position is
//! *live* when some detector's match starting there could still change (grow, appear or
//! be decided) once more text arrives. Measured with one lazy DFA per detector, anchored
//! at the position, with the same leftmost-first preference as the search: the position
//! is live unless every DFA dies before the end of the text (its preferred match, if
//! any, is then settled). This is exact, so a stream holds back only as many characters
//! as a match can still span.
//!
//! Most positions are dead for every detector after a byte or two, and starting one DFA
//! per detector there was most of the cost (a stream event's tail is a few positions
//! times a dozen detectors). So one more DFA over all the patterns, with `MatchKind::All`
//! (every thread kept, none pruned by a preferred match), is asked first: its threads are
//! a superset of each detector's, so where it dies every detector's DFA dies too, and
//! only a position it keeps alive is checked detector by detector.

use std::sync::{Mutex, OnceLock, PoisonError};

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
    /// All the patterns in one DFA that keeps every thread (`MatchKind::All`): dead only
    /// where every detector's DFA is. `None` when it could not be built. Built for the
    /// first stream (`cache`), ~2.5 ms once: its NFA is ~0.5 MiB that a gateway which
    /// streams nothing through this scanner need not hold.
    any: OnceLock<Option<DFA>>,
    /// The patterns, for `any`.
    patterns: Vec<String>,
    /// A pattern no DFA could be built for: every position counts as live (within
    /// [`MAX_HOLD`]).
    conservative: bool,
    /// Caches of streams that ended. A lazy DFA builds its states as text meets them, in
    /// its cache: a fresh cache per stream made every stream's first chunk pay for
    /// building them again (~0.2 ms of its time to first token with the default chain).
    spare: Mutex<Vec<LiveCache>>,
}

/// Per-stream scratch space of the lazy DFAs.
#[derive(Debug)]
pub struct LiveCache {
    caches: Vec<Cache>,
    any: Option<Cache>,
}

impl LiveCache {
    fn memory_usage(&self) -> usize {
        let any = self.any.as_ref().map_or(0, Cache::memory_usage);
        self.caches.iter().map(Cache::memory_usage).sum::<usize>() + any
    }
}

fn build(patterns: &[&str], kind: MatchKind, unicode_word_boundary: bool) -> Option<DFA> {
    DFA::builder()
        .configure(
            DFA::config()
                .match_kind(kind)
                .unicode_word_boundary(unicode_word_boundary)
                .skip_cache_capacity_check(true),
        )
        .thompson(nfa_config())
        .build_many(patterns)
        .ok()
}

/// The NFA every liveness DFA is built from: bounded, and without capture groups (a DFA
/// reads none; the NFAs are smaller without them).
fn nfa_config() -> thompson::Config {
    thompson::Config::new()
        .nfa_size_limit(Some(NFA_SIZE_LIMIT))
        .which_captures(thompson::WhichCaptures::None)
}

/// The DFA over all patterns, read as ASCII patterns (a smaller NFA: 0.47 MiB for the
/// built-in PII patterns, 0.57 read as Unicode) and giving up on any non-ASCII byte,
/// where each detector is then asked. On ASCII text a Unicode class or case folding
/// matches exactly what its ASCII reading does, so until it gives up its threads are
/// still a superset of each detector's. `None` when there are no patterns or one is no
/// ASCII pattern (a non-ASCII literal).
fn any_ascii(patterns: &[&str]) -> Option<DFA> {
    if patterns.is_empty() {
        return None;
    }
    let mut config = DFA::config()
        .match_kind(MatchKind::All)
        .skip_cache_capacity_check(true);
    for b in 0x80..=0xFF {
        config = config.quit(b, true);
    }
    DFA::builder()
        .configure(config)
        .syntax(
            regex_automata::util::syntax::Config::new()
                .unicode(false)
                .utf8(false),
        )
        .thompson(nfa_config())
        .build_many(patterns)
        .ok()
}

impl Liveness {
    pub fn new(patterns: &[&str]) -> Liveness {
        let mut live = Liveness::exact(patterns);
        live.patterns = patterns.iter().map(|p| (*p).to_string()).collect();
        live
    }

    /// Without the DFA over all patterns: each position asks every detector.
    fn exact(patterns: &[&str]) -> Liveness {
        let mut dfas = Vec::with_capacity(patterns.len());
        let mut conservative = false;
        for &p in patterns {
            let one = build(&[p], MatchKind::LeftmostFirst, false)
                .or_else(|| build(&[p], MatchKind::LeftmostFirst, true));
            match one {
                Some(dfa) => dfas.push(dfa),
                None => conservative = true,
            }
        }
        Liveness {
            dfas,
            any: OnceLock::new(),
            patterns: Vec::new(),
            conservative,
            spare: Mutex::new(Vec::new()),
        }
    }

    /// The DFA over all patterns, built the first time it is asked for.
    fn any(&self) -> Option<&DFA> {
        self.any
            .get_or_init(|| {
                let patterns: Vec<&str> = self.patterns.iter().map(String::as_str).collect();
                any_ascii(&patterns)
            })
            .as_ref()
    }

    fn spare(&self) -> std::sync::MutexGuard<'_, Vec<LiveCache>> {
        // A cache is only scratch space: one left by a panic is as good as any.
        self.spare.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Scratch space for one stream: a warm one from an ended stream when there is one.
    pub fn cache(&self) -> LiveCache {
        self.spare().pop().unwrap_or_else(|| LiveCache {
            caches: self.dfas.iter().map(DFA::create_cache).collect(),
            any: self.any().map(DFA::create_cache),
        })
    }

    /// Takes back a stream's scratch space for the next stream (a few, if small).
    pub fn give_back(&self, cache: &mut LiveCache) {
        let cache = std::mem::replace(
            cache,
            LiveCache {
                caches: Vec::new(),
                any: None,
            },
        );
        if cache.caches.len() != self.dfas.len()
            || cache.any.is_some() != self.any().is_some()
            || cache.memory_usage() > SPARE_CACHE_BYTES
        {
            return;
        }
        let mut spare = self.spare();
        if spare.len() < SPARE_CACHES {
            spare.push(cache);
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
        if let (Some(any), Some(c)) = (self.any(), &mut cache.any) {
            if !alive_to_end(any, c, hay, s) {
                return false;
            }
        }
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
        assert!(
            l.any.get().is_none(),
            "built for the first stream, not before"
        );
        let fresh = l.cache();
        assert!(fresh.any.is_some());
        let cold = fresh.memory_usage();
        let mut used = l.cache();
        assert_eq!(l.hold_from(&mut used, "mail me at jo@ex", 0), 11);
        l.give_back(&mut used);
        let mut warm = l.cache();
        let bytes = warm.memory_usage();
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

    /// Liveness of the built-in PII detectors (healthcare and PCI included), with and
    /// without the DFA over all patterns, built once.
    fn builtin() -> &'static (Liveness, Liveness) {
        static BOTH: std::sync::OnceLock<(Liveness, Liveness)> = std::sync::OnceLock::new();
        BOTH.get_or_init(|| {
            let specs = crate::policy::pii_detector::builtin::detectors(true, true);
            let patterns: Vec<&str> = specs.iter().map(|d| d.pattern.as_str()).collect();
            (Liveness::new(&patterns), Liveness::exact(&patterns))
        })
    }

    proptest::proptest! {
        /// Asking the DFA over all patterns first changes no answer: on texts made of
        /// the pieces PII is made of, every position holds as the detectors alone say.
        #[test]
        fn the_all_patterns_dfa_only_skips_dead_positions(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "a", "jo", "@", ".", "com", " ", "-", "4111", "1", "+44 ", "(555) ", "sk-",
                "AKIA", "é", "\n", "MRN: ", "123-45-", "6789", "192.168.", "x", "Z9", "_",
                "eyJ", "/", ":", "IBAN ", "GB82",
            ]), 0..24),
        ) {
            let (fast, exact) = builtin();
            let text: String = pieces.concat();
            let (mut fc, mut ec) = (fast.cache(), exact.cache());
            proptest::prop_assert!(fc.any.is_some() && ec.any.is_none());
            for from in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
                proptest::prop_assert_eq!(
                    fast.hold_from(&mut fc, &text, from),
                    exact.hold_from(&mut ec, &text, from),
                    "{:?} from {}", text, from
                );
            }
        }
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
