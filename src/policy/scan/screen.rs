//! A byte screen in front of a scanner's regex set: from each pattern's syntax, a set of
//! bytes one of which every match of it contains (an email needs `@`, a card number a
//! digit, `sk-…` a `-`). A text holding none of the bytes of any pattern has no match,
//! and says so without the set's automaton.
//!
//! Why: in the gateway a policy's tables are cold at every request (the clients', the
//! upstream's and other requests' work runs on the core in between), and the set's lazy
//! DFA read them from memory at about one miss per byte of text (the email pattern's
//! bounded local part is a DFA state per letter of every word). The screen reads the
//! text, which the request parser has just read, and 32 bytes of its own
//! (bench/RESULTS.md, twenty-third session).
//!
//! Exact by construction: the screen only ever says "no match" when no match can exist;
//! anything else goes to the set as before.

use regex_syntax::hir::{Class, Hir, HirKind};

/// 256 bits, one per byte value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ByteSet([u64; 4]);

impl ByteSet {
    fn full() -> ByteSet {
        ByteSet([u64::MAX; 4])
    }

    fn single(b: u8) -> ByteSet {
        let mut s = ByteSet::default();
        s.insert(b);
        s
    }

    fn insert(&mut self, b: u8) {
        if let Some(w) = self.0.get_mut(usize::from(b >> 6)) {
            *w |= 1 << (b & 63);
        }
    }

    fn insert_range(&mut self, lo: u8, hi: u8) {
        for b in lo..=hi {
            self.insert(b);
        }
    }

    pub fn contains(&self, b: u8) -> bool {
        self.0
            .get(usize::from(b >> 6))
            .is_some_and(|w| w & (1 << (b & 63)) != 0)
    }

    fn union(mut self, other: ByteSet) -> ByteSet {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
        self
    }

    fn intersection(mut self, other: ByteSet) -> ByteSet {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a &= b;
        }
        self
    }

    fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        (0..=255u8).filter(|&b| self.contains(b))
    }

    /// How often a text holds one of these bytes (the sum of [`frequency`]): the smaller,
    /// the more texts the screen turns away.
    fn cost(&self) -> u32 {
        self.bytes().map(frequency).sum()
    }

    /// Whether the set holds a lowercase ASCII letter or a space: bytes nearly every text
    /// holds, so a screen waiting for them lets nearly everything through.
    pub fn has_prose_bytes(&self) -> bool {
        self.contains(b' ') || (b'a'..=b'z').any(|b| self.contains(b))
    }

    /// The byte of the set a text is least likely to hold.
    fn rarest(&self) -> Option<ByteSet> {
        self.bytes()
            .min_by_key(|&b| frequency(b))
            .map(ByteSet::single)
    }
}

/// Roughly how many times a byte occurs per 10 000 bytes of English prose and chat
/// (letter counts from the usual English tables, the rest estimated). Only the choice of
/// which bytes a screen waits for depends on it, never its answer.
fn frequency(b: u8) -> u32 {
    match b {
        b' ' => 1700,
        b'e' => 1000,
        b't' => 730,
        b'a' => 650,
        b'o' => 620,
        b'i' | b'n' => 570,
        b's' => 520,
        b'h' | b'r' => 480,
        b'd' => 340,
        b'l' => 330,
        b'c' | b'u' => 230,
        b'm' => 200,
        b'w' | b'f' => 180,
        b'g' | b'y' | b'p' => 160,
        b'b' => 120,
        b'.' | b',' => 100,
        b'v' => 80,
        b'k' => 55,
        b'\n' => 50,
        b'T' | b'I' | b'A' | b'S' => 30,
        b'\'' | b'"' => 25,
        b'x' | b'j' | b'q' | b'z' => 12,
        b'A'..=b'Z' => 12,
        b'0'..=b'9' => 10,
        b'-' | b':' | b'?' | b'(' | b')' => 10,
        b'!' | b'/' | b';' | b'*' => 5,
        b'\t' | b'\r' => 5,
        0x80..=0xff => 5,
        _ => 2,
    }
}

/// What a piece of pattern needs of every text it matches.
#[derive(Clone, Copy, Debug)]
struct Need {
    /// Bytes every match contains, all of them.
    all: ByteSet,
    /// A set every match holds at least one byte of (`None`: none known).
    any: Option<ByteSet>,
}

impl Need {
    const NOTHING: Need = Need {
        all: ByteSet([0; 4]),
        any: None,
    };

    /// The cheapest of `any` and the rarest of `all`.
    fn best(self) -> Need {
        let any = [self.any, self.all.rarest()]
            .into_iter()
            .flatten()
            .min_by_key(ByteSet::cost);
        Need { all: self.all, any }
    }
}

fn need(hir: &Hir) -> Need {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Need::NOTHING,
        HirKind::Literal(lit) => {
            let mut all = ByteSet::default();
            for &b in lit.0.iter() {
                all.insert(b);
            }
            Need { all, any: None }.best()
        }
        HirKind::Class(class) => {
            let set = first_bytes(class);
            let single = set.bytes().count() == 1;
            Need {
                all: if single { set } else { ByteSet::default() },
                any: Some(set),
            }
        }
        HirKind::Repetition(rep) if rep.min == 0 => Need::NOTHING,
        HirKind::Repetition(rep) => need(&rep.sub),
        HirKind::Capture(cap) => need(&cap.sub),
        HirKind::Concat(parts) => {
            let needs: Vec<Need> = parts.iter().map(need).collect();
            let all = needs.iter().fold(ByteSet::default(), |a, n| a.union(n.all));
            let any = needs.iter().filter_map(|n| n.any).min_by_key(ByteSet::cost);
            Need { all, any }.best()
        }
        HirKind::Alternation(branches) => {
            let needs: Vec<Need> = branches.iter().map(need).collect();
            let all = needs
                .iter()
                .fold(ByteSet::full(), |a, n| a.intersection(n.all));
            let any = needs
                .iter()
                .try_fold(ByteSet::default(), |a, n| n.any.map(|s| a.union(s)));
            Need { all, any }.best()
        }
    }
}

/// The bytes a match of a class can start with: every byte of it for a byte class, the
/// leading UTF-8 byte for a Unicode one (it is monotonic in the code point, so a range of
/// code points gives the range between its ends' leading bytes).
fn first_bytes(class: &Class) -> ByteSet {
    let mut set = ByteSet::default();
    match class {
        Class::Bytes(c) => {
            for r in c.ranges() {
                set.insert_range(r.start(), r.end());
            }
        }
        Class::Unicode(c) => {
            for r in c.ranges() {
                set.insert_range(lead(r.start()), lead(r.end()));
            }
        }
    }
    set
}

fn lead(c: char) -> u8 {
    let mut buf = [0; 4];
    c.encode_utf8(&mut buf)
        .as_bytes()
        .first()
        .copied()
        .unwrap_or(0)
}

/// The bytes one of which every match of a pattern (its syntax) holds (`None`: none
/// known).
pub fn needed(hir: &Hir) -> Option<ByteSet> {
    need(hir).any
}

/// The union of every pattern's needed bytes, or `None` when some pattern needs none
/// known (it could match text of any bytes) or does not parse.
#[derive(Debug)]
pub struct Screen(ByteSet);

impl Screen {
    /// For patterns as `regex` reads them by default (Unicode, case as written).
    pub fn new(patterns: &[&str]) -> Option<Screen> {
        let mut parser = regex_syntax::Parser::new();
        let sets: Option<Vec<ByteSet>> = patterns
            .iter()
            .map(|p| needed(&parser.parse(p).ok()?))
            .collect();
        Some(Screen::of(sets?))
    }

    /// A screen letting through texts that hold a byte of any of `sets`.
    pub fn of(sets: impl IntoIterator<Item = ByteSet>) -> Screen {
        Screen(sets.into_iter().fold(ByteSet::default(), ByteSet::union))
    }

    /// Whether a match could lie in `text`: it holds a byte some pattern needs.
    pub fn may_match(&self, text: &[u8]) -> bool {
        text.iter().any(|&b| self.0.contains(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use regex::RegexSet;

    fn needed(pattern: &str) -> String {
        let s = Screen::new(&[pattern]).map(|s| s.0);
        s.map_or("-".into(), |s| s.bytes().map(char::from).collect())
    }

    #[test]
    fn picks_the_byte_every_match_holds_and_text_rarely_does() {
        assert_eq!(needed(r"\b[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@[a-z]+"), "@");
        assert_eq!(needed(r"\bsk-(?:proj-)?[A-Za-z0-9_\-]{20,200}"), "-");
        // Common to all four branches.
        assert_eq!(needed(r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"), "A");
        assert_eq!(needed(r"\b[0-9]{3}-[0-9]{2}"), "-");
        assert_eq!(needed(r"\b[12][0-9]{9}\b"), "12");
        // One branch per alternative when they share nothing.
        assert_eq!(needed(r"x@|y#"), "#@");
        assert_eq!(needed(r"(?i)k"), "Kk\u{e2}");
    }

    #[test]
    fn patterns_that_can_match_anything_give_no_screen() {
        assert_eq!(needed(r"a*"), "-");
        assert_eq!(needed(r"\b"), "-");
        assert_eq!(needed(r"x|y?"), "-");
        assert!(Screen::new(&["@", "z*"]).is_none());
        assert!(Screen::new(&["("]).is_none());
    }

    #[test]
    fn the_builtin_pii_patterns_have_a_screen_and_plain_prose_passes_it() {
        for (healthcare, pci) in [(false, false), (false, true), (true, true)] {
            let specs = crate::policy::pii_detector::builtin::detectors(healthcare, pci);
            let patterns: Vec<&str> = specs.iter().map(|s| s.pattern.as_str()).collect();
            let screen = Screen::new(&patterns).unwrap_or_else(|| unreachable!());
            for text in [
                "write to bob@example.com",
                "call 555 0100",
                "sk-proj-…",
                "::1",
            ] {
                assert!(screen.may_match(text.as_bytes()), "{text}");
            }
            // A labelled medical record number needs no digit: its label is what it needs.
            let prose = b"Say something about foxes and dogs, briefly please.";
            assert_eq!(screen.may_match(prose), healthcare);
        }
    }

    const PATTERNS: &[&str] = &[
        r"\b[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@(?:[A-Za-z0-9\-]{1,63}\.){1,8}[A-Za-z]{2,24}\b",
        r"\b(?:AKIA|ASIA)[A-Z0-9]{4}\b",
        r"(?i:ssn|social security)\s{0,3}[:#]?\s{0,3}(?P<v>[0-9]{3})",
        r"(?i)straße|k€",
        r"[0-9A-Fa-f]{0,4}::?[0-9A-Fa-f:.]{1,44}",
        r"ÿy",
    ];

    proptest! {
        /// Wherever the screen turns a text away, the set finds no match in it.
        #[test]
        fn a_screened_text_has_no_match(
            text in "[ a-zA-Z0-9@.:#\\-ſßKkÿ€\u{212a}]{0,40}",
        ) {
            let set = RegexSet::new(PATTERNS).unwrap_or_else(|_| unreachable!());
            let screen = Screen::new(PATTERNS).unwrap_or_else(|| unreachable!());
            if !screen.may_match(text.as_bytes()) {
                prop_assert!(!set.is_match(&text), "{text:?}");
            }
        }
    }
}
