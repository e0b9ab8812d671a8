//! The symbol string: the normalised text as one symbol per word, which the catalogue's
//! word patterns (compiled in `compile.rs`) are matched against.
//!
//! Why: a pattern such as "ignore, then up to four words, then previous, then up to two
//! words, then instructions" over bytes makes a DFA track every partial keyword inside
//! every gap word at once; on varied text its states explode and matching crawls. Over
//! symbols, a word is one step and a vocabulary is a character class, so the automaton stays
//! small and a 4 KB prompt is matched in microseconds.
//!
//! Symbol string: every word the catalogue names gets its own private-use character; any
//! other word is `w`; `|` ends a sentence (`.`, `!`, `?`, `;` before a space, or a line
//! break); `,` `:` `"` `@` are kept; a URL or e-mail address is `~`. Everything else is
//! dropped.
//!
//! Leetspeak is read here too: a word such as `1gn0r3` whose digits read as letters give a
//! catalogue word yields a second symbol string with that word's symbol.

use super::table::{PrefixList, WordTable};

/// First private-use character given to a catalogue word.
pub const FIRST_SYMBOL: u32 = 0xE000;
/// Any word the catalogue does not name.
pub const OTHER_WORD: char = 'w';
pub const SENTENCE_END: char = '|';
pub const LINK: char = '~';
/// Punctuation symbols a pattern can be anchored on.
pub const ANCHOR_PUNCTUATION: &str = ",:\"@~";

/// The words the catalogue names, each with its symbol.
#[derive(Debug, Default)]
pub struct Lexicon {
    exact: WordTable,
    prefixes: PrefixList,
    next: u32,
}

impl Lexicon {
    pub(super) fn symbol_for(&mut self, word: &str) -> Result<char, String> {
        let (map_key, is_prefix) = match word.strip_suffix('*') {
            Some(p) => (p.to_string(), true),
            None => (word.to_string(), false),
        };
        if is_prefix {
            if let Some(c) = self.prefixes.get(&map_key) {
                return Ok(c);
            }
        } else if let Some(c) = self.exact.get(&map_key) {
            return Ok(c);
        }
        let c = char::from_u32(FIRST_SYMBOL + self.next)
            .filter(|c| u32::from(*c) < 0xF900)
            .ok_or_else(|| "too many distinct words in the catalogue".to_string())?;
        self.next += 1;
        if is_prefix {
            self.prefixes.insert(&map_key, c)?;
        } else {
            self.exact.insert(&map_key, c);
        }
        Ok(c)
    }

    /// How many symbols were given out.
    pub fn len(&self) -> usize {
        usize::try_from(self.next).unwrap_or(usize::MAX)
    }

    /// Index of a word symbol, counted from the first one.
    pub fn offset(&self, c: char) -> Option<usize> {
        u32::from(c)
            .checked_sub(FIRST_SYMBOL)
            .filter(|o| *o < self.next)
            .and_then(|o| usize::try_from(o).ok())
    }

    pub(super) fn lookup(&self, word: &str) -> char {
        if let Some(c) = self.exact.get(word) {
            return c;
        }
        if let Some(stem) = word.strip_suffix("'s") {
            if let Some(c) = self.exact.get(stem) {
                return c;
            }
        }
        if let Some(c) = self.prefixes.longest_match(word) {
            return c;
        }
        // Persona names: `BetterGPT`, `FreedomGPT`, `BasedGPT` read as `gpt`.
        if word.len() > 3 && word.ends_with("gpt") {
            if let Some(c) = self.exact.get("gpt") {
                return c;
            }
        }
        OTHER_WORD
    }

    /// Every symbol a word pattern matches: for `prefix*`, the prefix's own symbol and those
    /// of the known words and longer prefixes starting with it.
    pub(super) fn class_of(&self, word: &str) -> Vec<char> {
        match word.strip_suffix('*') {
            Some(p) => self
                .exact
                .iter()
                .filter(|(w, _)| w.starts_with(p))
                .map(|(_, c)| c)
                .chain(
                    self.prefixes
                        .iter()
                        .filter(|(q, _)| q.starts_with(p))
                        .map(|(_, c)| c),
                )
                .collect(),
            None => self.exact.get(word).into_iter().collect(),
        }
    }

    /// The symbol string of `text` (the folded view).
    #[cfg(test)]
    pub fn symbolize(&self, text: &str) -> String {
        self.symbolize_with_leet(text).0
    }

    /// The symbol string of `text`, and, when some word is a catalogue word written in
    /// leetspeak (`1gn0r3`), the symbol string with those words read as letters.
    pub fn symbolize_with_leet(&self, text: &str) -> (String, Option<String>) {
        let mut out = Out {
            main: String::with_capacity(text.len() / 4 + 8),
            leet: None,
        };
        let mut word = String::new();
        // Whether `word` has a digit or `@`/`$`: only then can it be leetspeak.
        let mut leetish = false;
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c.is_ascii_alphanumeric() {
                leetish |= !c.is_ascii_alphabetic();
                word.push(c.to_ascii_lowercase());
                continue;
            }
            let next_alnum = chars.peek().is_some_and(|(_, n)| n.is_alphanumeric());
            // A URL (`scheme://…`, `host.com/…`) or an e-mail address is one link symbol.
            let email = c == '@'
                && !word.is_empty()
                && next_alnum
                && text
                    .get(i..)
                    .and_then(|r| r.split(char::is_whitespace).next())
                    .is_some_and(|t| t.contains('.'));
            let link = email
                || (c == ':' && text.get(i..).is_some_and(|r| r.starts_with("://")))
                || (c == '.' && !word.is_empty() && text.get(i + 1..).is_some_and(is_tld));
            if link {
                word.clear();
                leetish = false;
                out.push(LINK);
                while chars.peek().is_some_and(|(_, n)| !n.is_whitespace()) {
                    chars.next();
                }
                continue;
            }
            let in_word = c.is_alphanumeric()
                || (matches!(c, '\'' | '@' | '$') && !word.is_empty() && next_alnum);
            if in_word {
                leetish |= matches!(c, '@' | '$');
                word.push(c.to_ascii_lowercase());
                continue;
            }
            self.flush(&mut word, leetish, &mut out);
            leetish = false;
            let next_is_space = chars.peek().is_none_or(|(_, n)| n.is_whitespace());
            match c {
                '\n' => out.end(),
                '.' | '!' | '?' | ';' if next_is_space => out.end(),
                ',' | ':' | '@' => out.push(c),
                // " - " separates like a colon ("Bot instructions - cancel …").
                '-' if next_is_space && text.get(..i).is_some_and(|b| b.ends_with(' ')) => {
                    out.push(':');
                }
                '"' | '\'' | '`' => out.push('"'),
                _ => {}
            }
        }
        self.flush(&mut word, leetish, &mut out);
        (out.main, out.leet)
    }

    fn flush(&self, word: &mut String, leetish: bool, out: &mut Out) {
        if word.is_empty() {
            return;
        }
        let sym = self.lookup(word);
        let leet = if leetish {
            self.leet_symbol(word).filter(|l| *l != sym)
        } else {
            None
        };
        match (leet, out.leet.as_mut()) {
            (Some(l), Some(ls)) => ls.push(l),
            (Some(l), None) => {
                let mut ls = out.main.clone();
                ls.push(l);
                out.leet = Some(ls);
            }
            (None, Some(ls)) => ls.push(sym),
            (None, None) => {}
        }
        out.main.push(sym);
        word.clear();
    }

    /// The symbol of a word with letters and leetspeak digits read as letters, if that is
    /// a catalogue word (`1gn0r3` → `ignore`; `gpt4` → nothing).
    fn leet_symbol(&self, word: &str) -> Option<char> {
        let has_letter = word.bytes().any(|b| b.is_ascii_alphabetic());
        let has_leet = word.chars().any(|c| super::normalize::leet(c).is_some());
        if !has_letter || !has_leet || word.len() < 2 {
            return None;
        }
        let decoded: String = word
            .chars()
            .map(|c| super::normalize::leet(c).unwrap_or(c))
            .collect();
        Some(self.lookup(&decoded)).filter(|c| *c != OTHER_WORD)
    }
}

/// The symbol strings being built: the plain one, and the leetspeak reading once it
/// differs.
struct Out {
    main: String,
    leet: Option<String>,
}

impl Out {
    fn push(&mut self, c: char) {
        self.main.push(c);
        if let Some(l) = self.leet.as_mut() {
            l.push(c);
        }
    }

    fn end(&mut self) {
        if !self.main.ends_with(SENTENCE_END) {
            self.push(SENTENCE_END);
        }
    }
}

/// `rest` starts with a common top-level domain followed by the end of the host.
fn is_tld(rest: &str) -> bool {
    [
        "com", "net", "org", "io", "example", "xyz", "ru", "cn", "co", "info", "biz", "dev", "app",
    ]
    .iter()
    .any(|t| {
        rest.strip_prefix(t).is_some_and(|after| {
            after
                .chars()
                .next()
                .is_none_or(|c| c == '/' || !(c.is_alphanumeric() || c == '.'))
        })
    })
}

#[cfg(test)]
mod tests {
    use crate::policy::prompt_injection::compile::Compiler;

    fn compiled(patterns: &[&str]) -> Compiler {
        let mut c = Compiler::new(&[]);
        for p in patterns {
            c.register(p).unwrap();
        }
        c
    }

    #[test]
    fn sentences_words_and_links_become_symbols() {
        let c = compiled(&["ignore previous gpt"]);
        let s = c
            .lexicon
            .symbolize("Ignore, previous stuff. Next line\nsee https://x.example/a?b=1 or a@b.io");
        // Leetspeak reads as the catalogue word; persona names ending in GPT read as GPT.
        let (plain, leet) = c.lexicon.symbolize_with_leet("1gn0r3 gpt4 BetterGPT");
        let gpt = c.lexicon.lookup("gpt");
        assert_eq!(plain, format!("ww{gpt}"));
        assert_eq!(leet, Some(format!("{}w{gpt}", c.lexicon.lookup("ignore"))));
        let ign = c.lexicon.lookup("ignore");
        let prev = c.lexicon.lookup("previous");
        // `https` is part of the link, not a word.
        assert_eq!(s, format!("{ign},{prev}w|ww|w~w~"));
    }
}
