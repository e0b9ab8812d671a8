//! Structure-aware mutation: the JSON (or YAML) inside a seed is parsed, its tree changed
//! (a node replaced by an edge value, deleted, duplicated, grafted elsewhere, nested deep,
//! a key renamed) and written back. Byte mutations mostly break the syntax; these reach
//! the translators and validators behind the parser.
//!
//! A seed's documents: the whole text when it is JSON or YAML, else each SSE `data:` line
//! and each line that is JSON on its own (JSONL).

use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Map, Value};

use crate::harness::Bytes;
use crate::mutate::MAX_INPUT;

/// Numbers JSON values cannot hold, spliced in as raw text after serialisation.
const RAW_NUMBERS: &[&str] = &[
    "1e309",
    "-1e309",
    "18446744073709551616",
    "-9223372036854775809",
    "1e-400",
    "123456789012345678901234567890",
    "-0",
];

/// A value that replaces a node.
#[derive(Debug, Clone)]
enum Leaf {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
    Raw(Index),
    EmptyArray,
    EmptyObject,
}

#[derive(Debug, Clone)]
enum TreeOp {
    Replace(Index, Leaf),
    Delete(Index),
    Duplicate(Index),
    /// Replaces the second node by a copy of the first.
    Graft(Index, Index),
    /// Gives an object member the key of another member (unknown or duplicate keys).
    RenameKey(Index, Index),
    Nest(Index, usize),
}

fn leaf() -> impl Strategy<Value = Leaf> {
    prop_oneof![
        Just(Leaf::Null),
        any::<bool>().prop_map(Leaf::Bool),
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(-1i64),
            Just(0i64),
            any::<i64>()
        ]
        .prop_map(Leaf::Int),
        prop_oneof![Just(u64::MAX), Just(u64::from(u32::MAX) + 1), any::<u64>()]
            .prop_map(Leaf::UInt),
        prop_oneof![
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
            Just(-0.5),
            Just(1e-300),
            any::<f64>()
        ]
        .prop_map(Leaf::Float),
        prop_oneof![Just(String::new()), Just("x".repeat(5000)), ".{0,24}"].prop_map(Leaf::Text),
        any::<Index>().prop_map(Leaf::Raw),
        Just(Leaf::EmptyArray),
        Just(Leaf::EmptyObject),
    ]
}

fn op() -> impl Strategy<Value = TreeOp> {
    prop_oneof![
        4 => (any::<Index>(), leaf()).prop_map(|(i, l)| TreeOp::Replace(i, l)),
        2 => any::<Index>().prop_map(TreeOp::Delete),
        1 => any::<Index>().prop_map(TreeOp::Duplicate),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| TreeOp::Graft(a, b)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| TreeOp::RenameKey(a, b)),
        1 => (any::<Index>(), 1usize..400).prop_map(|(i, n)| TreeOp::Nest(i, n)),
    ]
}

/// Mutations of the documents inside `seeds`.
pub fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Bytes> {
    let seeds = Arc::new(seeds);
    (any::<Index>(), any::<Index>(), vec(op(), 1..5)).prop_map(move |(s, d, ops)| {
        let seed: &Vec<u8> = s.get(&seeds);
        Bytes(mutate_seed(seed, &d, &ops))
    })
}

/// Where a document sits in a seed.
enum Doc {
    Json,
    Yaml,
    /// A line (byte range) holding JSON.
    Line(usize, usize),
}

fn documents(seed: &[u8]) -> Vec<Doc> {
    if serde_json::from_slice::<Value>(seed).is_ok() {
        return vec![Doc::Json];
    }
    let mut docs = Vec::new();
    let mut start = 0;
    for line in seed.split(|&b| b == b'\n') {
        let end = start + line.len();
        let body = line.strip_suffix(b"\r").unwrap_or(line);
        let (skip, json) = match body.strip_prefix(b"data: ") {
            Some(rest) => (6, rest),
            None => (0, body),
        };
        if json.first() == Some(&b'{') && serde_json::from_slice::<Value>(json).is_ok() {
            docs.push(Doc::Line(start + skip, start + skip + json.len()));
        }
        start = end + 1;
    }
    if docs.is_empty()
        && serde_yaml::from_slice::<serde_yaml::Value>(seed)
            .is_ok_and(|v| v.is_mapping() || v.is_sequence())
    {
        docs.push(Doc::Yaml);
    }
    docs
}

fn mutate_seed(seed: &[u8], pick: &Index, ops: &[TreeOp]) -> Vec<u8> {
    let docs = documents(seed);
    if docs.is_empty() {
        return seed.to_vec();
    }
    let (range, yaml) = match pick.get(&docs) {
        Doc::Json => ((0, seed.len()), false),
        Doc::Yaml => ((0, seed.len()), true),
        Doc::Line(a, b) => ((*a, *b), false),
    };
    let text = &seed[range.0..range.1];
    let parsed: Option<Value> = if yaml {
        serde_yaml::from_slice::<serde_yaml::Value>(text)
            .ok()
            .and_then(|v| serde_json::to_value(v).ok())
    } else {
        serde_json::from_slice(text).ok()
    };
    let Some(mut value) = parsed else {
        return seed.to_vec();
    };
    for op in ops {
        apply(&mut value, op);
    }
    let mut out = if yaml {
        serde_yaml::to_string(&value).unwrap_or_default()
    } else {
        serde_json::to_string(&value).unwrap_or_default()
    };
    for (i, raw) in RAW_NUMBERS.iter().enumerate() {
        // The marker string as JSON and as YAML escape it.
        for marker in [format!("\"\\u0001N{i}\""), format!("\"\\x01N{i}\"")] {
            out = out.replace(&marker, raw);
        }
    }
    let mut bytes = seed[..range.0].to_vec();
    bytes.extend_from_slice(out.as_bytes());
    bytes.extend_from_slice(&seed[range.1..]);
    bytes.truncate(MAX_INPUT);
    bytes
}

/// A node's place: object keys and array positions from the root.
#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    At(usize),
}

fn paths(v: &Value, here: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    out.push(here.clone());
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                here.push(Seg::Key(k.clone()));
                paths(x, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                here.push(Seg::At(i));
                paths(x, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn node_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k.as_str()),
        Seg::At(i) => v.get_mut(*i),
    })
}

fn leaf_value(l: &Leaf) -> Value {
    match l {
        Leaf::Null => Value::Null,
        Leaf::Bool(b) => json!(b),
        Leaf::Int(n) => json!(n),
        Leaf::UInt(n) => json!(n),
        Leaf::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Leaf::Text(s) => json!(s),
        Leaf::Raw(i) => json!(format!("\u{1}N{}", i.index(RAW_NUMBERS.len()))),
        Leaf::EmptyArray => json!([]),
        Leaf::EmptyObject => Value::Object(Map::new()),
    }
}

fn apply(root: &mut Value, op: &TreeOp) {
    let mut all = Vec::new();
    paths(root, &mut Vec::new(), &mut all);
    let pick = |i: &Index| i.get(&all).clone();
    match op {
        TreeOp::Replace(i, l) => {
            if let Some(n) = node_mut(root, &pick(i)) {
                *n = leaf_value(l);
            }
        }
        TreeOp::Delete(i) => {
            let mut path = pick(i);
            let Some(last) = path.pop() else { return };
            match (node_mut(root, &path), last) {
                (Some(Value::Object(o)), Seg::Key(k)) => {
                    o.remove(&k);
                }
                (Some(Value::Array(a)), Seg::At(n)) if n < a.len() => {
                    a.remove(n);
                }
                _ => {}
            }
        }
        TreeOp::Duplicate(i) => {
            let mut path = pick(i);
            let Some(Seg::At(n)) = path.pop() else { return };
            if let Some(Value::Array(a)) = node_mut(root, &path) {
                if let Some(x) = a.get(n).cloned() {
                    a.insert(n, x);
                }
            }
        }
        TreeOp::Graft(from, to) => {
            let copy = node_mut(root, &pick(from)).map(|v| v.clone());
            if let (Some(copy), Some(n)) = (copy, node_mut(root, &pick(to))) {
                *n = copy;
            }
        }
        TreeOp::RenameKey(i, j) => {
            let (mut a, b) = (pick(i), pick(j));
            let (Some(Seg::Key(old)), Some(Seg::Key(new))) = (a.pop(), b.last().cloned()) else {
                return;
            };
            if let Some(Value::Object(o)) = node_mut(root, &a) {
                if let Some(x) = o.remove(&old) {
                    o.insert(new, x);
                }
            }
        }
        TreeOp::Nest(i, depth) => {
            if let Some(n) = node_mut(root, &pick(i)) {
                let mut v = n.take();
                for _ in 0..*depth {
                    v = json!([v]);
                }
                *n = v;
            }
        }
    }
}
