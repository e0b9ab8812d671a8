//! The lexicon's words with their keys inline. Exact words: an open-addressing table, so a
//! lookup reads one 32-byte slot (one cache line) where a `HashMap<String, char>` read its
//! control bytes, its bucket and the key's heap string — three lines, each a miss from
//! memory in the gateway, where other work runs on the core between two scans (bench/
//! RESULTS.md, twenty-third session). `prefix*` words: one array by first byte.

use std::collections::HashMap;

/// Longest key kept inline; longer words (rare) go to a map.
const INLINE: usize = 27;

#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(32))]
struct Slot {
    key: [u8; INLINE],
    /// 0: empty (the empty word is never stored).
    len: u8,
    sym: char,
}

impl Slot {
    /// A slot for a key of 1 to [`INLINE`] bytes.
    fn new(key: &[u8], sym: char) -> Option<Slot> {
        let len = u8::try_from(key.len()).ok().filter(|l| *l > 0)?;
        let mut slot = Slot {
            len,
            sym,
            ..Slot::default()
        };
        slot.key.get_mut(..key.len())?.copy_from_slice(key);
        Some(slot)
    }

    fn holds(&self, word: &[u8]) -> bool {
        usize::from(self.len) == word.len() && self.key.get(..word.len()) == Some(word)
    }

    fn word(&self) -> &str {
        self.key
            .get(..usize::from(self.len))
            .and_then(|k| std::str::from_utf8(k).ok())
            .unwrap_or_default()
    }
}

#[derive(Debug, Default)]
pub struct WordTable {
    /// A power of two long, at most half full.
    slots: Vec<Slot>,
    stored: usize,
    long: HashMap<String, char>,
}

impl WordTable {
    pub fn get(&self, word: &str) -> Option<char> {
        let w = word.as_bytes();
        if w.len() > INLINE {
            return self.long.get(word).copied();
        }
        if w.is_empty() || self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = hash(w) & mask;
        loop {
            let slot = self.slots.get(i)?;
            if slot.len == 0 {
                return None;
            }
            if slot.holds(w) {
                return Some(slot.sym);
            }
            i = (i + 1) & mask;
        }
    }

    /// Stores `word` (not empty) with its symbol, replacing an earlier one.
    pub fn insert(&mut self, word: &str, sym: char) {
        let w = word.as_bytes();
        if w.len() > INLINE {
            self.long.insert(word.to_string(), sym);
            return;
        }
        let Some(slot) = Slot::new(w, sym) else {
            return;
        };
        if (self.stored + 1) * 2 > self.slots.len() {
            self.grow();
        }
        self.place(slot);
    }

    fn place(&mut self, new: Slot) {
        let mask = self.slots.len() - 1;
        let mut i = hash(new.key.get(..usize::from(new.len)).unwrap_or_default()) & mask;
        while let Some(slot) = self.slots.get_mut(i) {
            if slot.len == 0 {
                *slot = new;
                self.stored += 1;
                return;
            }
            if slot.len == new.len && slot.key == new.key {
                slot.sym = new.sym;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(64);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); size]);
        self.stored = 0;
        for s in old.into_iter().filter(|s| s.len != 0) {
            self.place(s);
        }
    }

    /// Every word with its symbol, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, char)> {
        let inline = self.slots.iter().filter(|s| s.len != 0);
        inline
            .map(|s| (s.word(), s.sym))
            .chain(self.long.iter().map(|(w, c)| (w.as_str(), *c)))
    }
}

/// `prefix*` words, keys inline: grouped by first byte, longest first within a group.
#[derive(Debug, Default)]
pub struct PrefixList {
    /// Sorted by first byte, then longest first (ties in the order stored).
    slots: Vec<Slot>,
    /// Where each first byte's group starts in `slots` (257 entries once one is stored).
    start: Vec<u16>,
    /// A bit per first byte with a group: most words have no candidate, and this says so
    /// in one line.
    first: [u64; 4],
    /// Prefixes longer than [`INLINE`], longest first.
    long: Vec<(String, char)>,
}

impl PrefixList {
    /// The symbol of the longest stored prefix of `word`.
    pub fn longest_match(&self, word: &str) -> Option<char> {
        if let Some((_, c)) = self.long.iter().find(|(p, _)| word.starts_with(p.as_str())) {
            return Some(*c);
        }
        let first = usize::from(*word.as_bytes().first()?);
        let grouped = self
            .first
            .get(first / 64)
            .is_some_and(|w| w & (1 << (first % 64)) != 0);
        if !grouped {
            return None;
        }
        let (a, b) = (self.start.get(first)?, self.start.get(first + 1)?);
        let group = self.slots.get(usize::from(*a)..usize::from(*b))?;
        let w = word.as_bytes();
        group
            .iter()
            .find(|s| w.get(..usize::from(s.len)) == s.key.get(..usize::from(s.len)))
            .map(|s| s.sym)
    }

    /// The symbol of exactly this prefix.
    pub fn get(&self, prefix: &str) -> Option<char> {
        self.iter().find(|(p, _)| *p == prefix).map(|(_, c)| c)
    }

    /// Stores a prefix (not empty, not stored yet).
    pub fn insert(&mut self, prefix: &str, sym: char) -> Result<(), String> {
        let p = prefix.as_bytes();
        if p.len() > INLINE {
            self.long.push((prefix.to_string(), sym));
            self.long.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
            return Ok(());
        }
        let (Some(slot), Some(&first)) = (Slot::new(p, sym), p.first()) else {
            return Ok(());
        };
        if self.slots.len() >= usize::from(u16::MAX) {
            return Err("too many `prefix*` words in the catalogue".to_string());
        }
        self.slots.push(slot);
        self.slots
            .sort_by_key(|s| (s.key[0], std::cmp::Reverse(s.len)));
        if let Some(w) = self.first.get_mut(usize::from(first) / 64) {
            *w |= 1 << (first % 64);
        }
        self.start = (0..=256usize)
            .map(|b| {
                let n = self
                    .slots
                    .iter()
                    .filter(|s| usize::from(s.key[0]) < b)
                    .count();
                u16::try_from(n).unwrap_or(u16::MAX)
            })
            .collect();
        Ok(())
    }

    /// Every prefix with its symbol.
    pub fn iter(&self) -> impl Iterator<Item = (&str, char)> {
        self.slots
            .iter()
            .map(|s| (s.word(), s.sym))
            .chain(self.long.iter().map(|(p, c)| (p.as_str(), *c)))
    }
}

/// FNV-1a, folded: the keys are short, fixed and not adversarial.
fn hash(bytes: &[u8]) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // The slot index keeps the low bits of the folded hash.
    (h ^ (h >> 32)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_was_stored_and_nothing_else() {
        let mut t = WordTable::default();
        let words: Vec<String> = (0..3000).map(|i| format!("w{i}")).collect();
        for (i, w) in words.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(0);
            t.insert(w, char::from_u32(0xE000 + i).unwrap_or('?'));
        }
        let long = "x".repeat(INLINE + 1);
        t.insert(&long, 'L');
        t.insert(&"y".repeat(INLINE), 'I');
        t.insert("w7", 'R');
        assert_eq!(t.get("w7"), Some('R'));
        assert_eq!(t.get("w2999"), char::from_u32(0xE000 + 2999));
        assert_eq!(t.get(&long), Some('L'));
        assert_eq!(t.get(&"y".repeat(INLINE)), Some('I'));
        for missing in ["", "w", "w3000", "w7 ", "x", "W7"] {
            assert_eq!(t.get(missing), None, "{missing:?}");
        }
        assert_eq!(t.iter().count(), 3002);
        assert!(t.iter().any(|(w, c)| w == long && c == 'L'));
        assert_eq!(WordTable::default().get("a"), None);
    }

    #[test]
    fn the_longest_stored_prefix_wins() {
        let mut p = PrefixList::default();
        let long = "i".repeat(INLINE + 2);
        for (w, c) in [
            ("ign", 'a'),
            ("ignor", 'b'),
            ("in", 'c'),
            ("x", 'd'),
            (&*long, 'e'),
        ] {
            p.insert(w, c).unwrap_or_else(|e| unreachable!("{e}"));
        }
        assert_eq!(p.longest_match("ignored"), Some('b'));
        assert_eq!(p.longest_match("ignite"), Some('a'));
        assert_eq!(p.longest_match("inside"), Some('c'));
        assert_eq!(p.longest_match(&format!("{long}x")), Some('e'));
        assert_eq!(p.longest_match("xylophone"), Some('d'));
        for none in ["", "i", "yes", "Ignore"] {
            assert_eq!(p.longest_match(none), None, "{none:?}");
        }
        assert_eq!(p.get("ign"), Some('a'));
        assert_eq!(p.get("ig"), None);
        assert_eq!(p.iter().count(), 5);
    }
}
