//! Input strategies. Seeds from a corpus are mutated the way coverage fuzzers mutate
//! them (bit flips, interesting bytes, inserted tokens and characters, deletions,
//! duplications, splices of two seeds, deep nesting, huge numbers, invalid UTF-8); purely
//! random bytes and text come beside them. Streams are cut at random points.

use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use crate::harness::Bytes;

/// Generated inputs stay below this (deep nesting can otherwise grow them a lot).
pub const MAX_INPUT: usize = 64 * 1024;

/// One mutation; positions are [`Index`]es so they scale to the input and shrink well.
#[derive(Debug, Clone)]
enum Op {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Insert(Index, Vec<u8>),
    InsertChar(Index, char),
    Token(Index, Index),
    Delete(Index, usize),
    Duplicate(Index, usize, Index),
    Truncate(Index),
    /// Inserts, at the third index, another seed (the first) from the second index on.
    Splice(Index, Index, Index),
    /// Inserts an opener (second index) repeated `usize` times, closed or not.
    Nest(Index, Index, usize, bool),
    Number(Index, Index),
}

/// Bytes that parsers treat specially: control characters, UTF-8 lead and continuation
/// bytes that make invalid sequences, and the punctuation of JSON, YAML and SSE.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xf8, 0xff, b'\n', b'\r',
    b'\t', b' ', b'"', b'\\', b'{', b'}', b'[', b']', b':', b',', b'-', b'#', b'&', b'*', b'!',
    b'|', b'>', b'\'', b'%', b'@', b'0', b'9', b'.', b'e',
];

/// Numbers at and past the limits of every integer and float type.
const NUMBERS: &[&str] = &[
    "1e309",
    "-1e309",
    "1e-400",
    "18446744073709551616",
    "18446744073709551615",
    "-9223372036854775809",
    "9223372036854775807",
    "4294967296",
    "4294967295",
    "65536",
    "-1",
    "-0",
    "0.000000000000000000000000000001",
    "NaN",
    ".nan",
    ".inf",
    "-.inf",
    "Infinity",
    "0x7fffffff",
    "0o777",
    "1_000",
    "99999999999999999999999999999999999999999999999999",
    "1.7976931348623157e308",
    "5e-324",
    "1e2147483648",
];

/// Openers (and their closers) that nest in JSON, YAML, or both.
const OPENERS: &[(&str, &str)] = &[
    ("[", "]"),
    ("{\"a\":", "}"),
    ("{a: ", "}"),
    ("- ", ""),
    ("[{\"type\":\"text\",\"text\":", "}]"),
    ("&a [", "]"),
    ("!!seq [", "]"),
];

/// Tokens worth inserting into any target's input.
const COMMON_TOKENS: &[&str] = &[
    "\n",
    "\r\n",
    "\r",
    "\n\n",
    "\"",
    "null",
    "true",
    "false",
    "{}",
    "[]",
    "\"\":",
    "\\u0000",
    "\\ud800",
    "\\uDFFF",
    "\u{feff}",
    "\u{200b}",
    "\u{202e}",
    "\u{e0041}",
    "é",
    "🌍",
    "\u{fffd}",
    "\x00",
];

/// Mutations of the seeds (most cases), random bytes and random text.
pub fn mutated(seeds: Vec<Vec<u8>>, dict: &[&str]) -> impl Strategy<Value = Bytes> {
    assert!(!seeds.is_empty(), "a target needs seeds");
    let seeds = Arc::new(seeds);
    let tokens: Vec<Vec<u8>> = dict
        .iter()
        .chain(COMMON_TOKENS)
        .map(|t| t.as_bytes().to_vec())
        .collect();
    let tokens = Arc::new(tokens);
    let pick = seeds.clone();
    let mutations = (any::<Index>(), vec(op(), 1..8)).prop_map(move |(i, ops)| {
        let mut bytes = i.get(&pick).clone();
        for op in &ops {
            apply(op, &mut bytes, &seeds, &tokens);
            bytes.truncate(MAX_INPUT);
        }
        Bytes(bytes)
    });
    prop_oneof![
        14 => mutations,
        1 => vec(any::<u8>(), 0..1024).prop_map(Bytes),
        1 => "(?s).{0,512}".prop_map(|s: String| Bytes(s.into_bytes())),
        1 => runs(dict, 12 * 1024),
    ]
}

/// Units whose long runs stress searches: digits and separators (cards, phones), address
/// and key alphabets, nesting punctuation, whitespace, non-ASCII.
const RUN_UNITS: &[&str] = &[
    "1", "1 ", "1-", "1.", "0", "a", "a@", "a.", "A", "-", ":", "::", "a:", "/", "+", " ", "\n",
    "\r", "é", "x-", "%", "\\", "{", "[", "[{", "\"a\":", "- ", "eyJ", "sk-", "AKIA", "\u{200b}",
    "ｉ",
];

/// Long runs of a short unit (a token, or a few random characters) between random text,
/// up to about `max` bytes: what makes a backtracking search or a stream that rescans
/// what it holds quadratic.
pub fn runs(dict: &[&str], max: usize) -> impl Strategy<Value = Bytes> {
    let units: Vec<String> = dict
        .iter()
        .chain(RUN_UNITS)
        .filter(|u| !u.is_empty())
        .map(|u| (*u).to_string())
        .collect();
    (
        prop_oneof![prop::sample::select(units), "(?s).{1,4}"],
        "(?s).{0,16}",
        1usize..=max,
        "(?s).{0,16}",
    )
        .prop_map(|(unit, prefix, len, suffix)| {
            let mut text = prefix;
            text.push_str(&unit.repeat((len / unit.len()).max(1)));
            text.push_str(&suffix);
            Bytes(text.into_bytes())
        })
}

/// Byte mutations and structure-aware ones (`tree`), half and half: for targets whose
/// seeds are JSON, SSE with JSON data, JSONL or YAML.
pub fn mixed(seeds: Vec<Vec<u8>>, dict: &[&str]) -> impl Strategy<Value = Bytes> {
    prop_oneof![mutated(seeds.clone(), dict), crate::tree::mutated(seeds),]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Op::FlipBit(i, b)),
        (any::<Index>(), prop::sample::select(INTERESTING)).prop_map(|(i, b)| Op::SetByte(i, b)),
        (any::<Index>(), vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Op::Insert(i, b)),
        (any::<Index>(), any::<char>()).prop_map(|(i, c)| Op::InsertChar(i, c)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, t)| Op::Token(i, t)),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| Op::Delete(i, n)),
        (any::<Index>(), 1usize..512, any::<Index>()).prop_map(|(i, n, a)| Op::Duplicate(i, n, a)),
        any::<Index>().prop_map(Op::Truncate),
        (any::<Index>(), any::<Index>(), any::<Index>()).prop_map(|(s, f, a)| Op::Splice(s, f, a)),
        (any::<Index>(), any::<Index>(), 1usize..5000, any::<bool>())
            .prop_map(|(i, o, n, c)| Op::Nest(i, o, n, c)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, n)| Op::Number(i, n)),
    ]
}

fn insert(bytes: &mut Vec<u8>, at: &Index, what: &[u8]) {
    let at = at.index(bytes.len() + 1);
    bytes.splice(at..at, what.iter().copied());
}

fn apply(op: &Op, bytes: &mut Vec<u8>, seeds: &[Vec<u8>], tokens: &[Vec<u8>]) {
    let len = bytes.len();
    match op {
        Op::FlipBit(i, bit) if len > 0 => bytes[i.index(len)] ^= 1 << bit,
        Op::SetByte(i, b) if len > 0 => bytes[i.index(len)] = *b,
        Op::Insert(i, b) => insert(bytes, i, b),
        Op::InsertChar(i, c) => insert(bytes, i, c.encode_utf8(&mut [0; 4]).as_bytes()),
        Op::Token(i, t) => insert(bytes, i, t.get(tokens).as_slice()),
        Op::Delete(i, n) if len > 0 => {
            let at = i.index(len);
            bytes.drain(at..(at + n).min(len));
        }
        Op::Duplicate(i, n, to) if len > 0 => {
            let at = i.index(len);
            let chunk = bytes[at..(at + n).min(len)].to_vec();
            insert(bytes, to, &chunk);
        }
        Op::Truncate(i) => bytes.truncate(i.index(len + 1)),
        Op::Splice(s, from, to) => {
            let other = s.get(seeds);
            let from = from.index(other.len() + 1);
            let tail = &other[from..other.len().min(from + 4096)];
            insert(bytes, to, tail);
        }
        Op::Nest(i, o, depth, close) => {
            let (open, shut) = o.get(OPENERS);
            let mut nest = open.repeat(*depth).into_bytes();
            if *close {
                nest.extend_from_slice(b"1");
                nest.extend_from_slice(shut.repeat(*depth).as_bytes());
            }
            insert(bytes, i, &nest);
        }
        Op::Number(i, n) => insert(bytes, i, n.get(NUMBERS).as_bytes()),
        Op::FlipBit(..) | Op::SetByte(..) | Op::Delete(..) | Op::Duplicate(..) => {}
    }
}

/// Up to eight cut points for a stream.
pub fn splits() -> impl Strategy<Value = Vec<Index>> {
    vec(any::<Index>(), 0..8)
}

/// `bytes` cut at `points`.
pub fn pieces<'a>(bytes: &'a [u8], points: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = points.iter().map(|i| i.index(bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut prev = 0;
    for a in at {
        out.push(&bytes[prev..a]);
        prev = a;
    }
    out.push(&bytes[prev..]);
    out
}

/// `text` cut at `points`, each moved back to a character boundary.
pub fn str_pieces<'a>(text: &'a str, points: &[Index]) -> Vec<&'a str> {
    let mut at: Vec<usize> = points
        .iter()
        .map(|i| {
            let mut a = i.index(text.len() + 1);
            while !text.is_char_boundary(a) {
                a -= 1;
            }
            a
        })
        .collect();
    at.sort_unstable();
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut prev = 0;
    for a in at {
        out.push(&text[prev..a]);
        prev = a;
    }
    out.push(&text[prev..]);
    out
}
