//! The structural pass: is each part of the config the shape its serde type says?
//!
//! serde stops at the first error, so this pass deserializes a sub-tree, turns the error
//! into a diagnostic at its path (serde_path_to_error), repairs the copy it works on (drops
//! the bad key, or puts a placeholder where a required value is missing) and tries again,
//! until the sub-tree deserializes. That way one run reports every mistake, and the field
//! lists and types stay those of `schema.rs` (nothing here repeats them).

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use super::path::{self, Seg};
use super::{suggest, Findings};
use crate::config::diagnostic::{code, Diagnostic};

/// At most this many repairs per sub-tree: a bound, not a limit anyone should reach.
const MAX_ROUNDS: usize = 256;

/// Deserializes `value` (at YAML path `base`) as `T`, reporting every structural error
/// into `out`. `value` is left repaired. `None` when it cannot be repaired.
pub fn check<T: DeserializeOwned>(value: &mut Value, base: &str, out: &mut Findings) -> Option<T> {
    // The common case, a valid sub-tree, without the cost of tracking paths.
    if let Ok(t) = T::deserialize(&*value) {
        return Some(t);
    }
    let mut result = None;
    repair_loop(
        value,
        base,
        out,
        |v| match serde_path_to_error::deserialize::<_, T>(v) {
            Ok(t) => {
                result = Some(t);
                Ok(())
            }
            Err(e) => {
                let segs = e.path().iter().filter_map(path::from_serde).collect();
                Err((segs, e.into_inner().to_string()))
            }
        },
    );
    result
}

/// Runs `attempt` until it succeeds, repairing `value` after each error it reports as
/// (path relative to `base`, serde-style message). Returns whether it succeeded.
pub fn repair_loop<F>(value: &mut Value, base: &str, out: &mut Findings, mut attempt: F) -> bool
where
    F: FnMut(&Value) -> Result<(), (Vec<Seg>, String)>,
{
    // Paths where we put a placeholder, and which placeholder is there now.
    let mut placeholders: Vec<(Vec<Seg>, usize)> = Vec::new();
    let mut last: Option<(Vec<Seg>, String)> = None;
    for _ in 0..MAX_ROUNDS {
        let (segs, msg) = match attempt(value) {
            Ok(()) => return true,
            Err(e) => e,
        };
        if last.as_ref() == Some(&(segs.clone(), msg.clone()))
            && !is_placeholder(&placeholders, &segs)
        {
            // No progress: the error is not one a repair can reach.
            return false;
        }
        last = Some((segs.clone(), msg.clone()));
        let kind = classify(&msg);
        // A placeholder of the wrong type: try the next one. (A missing field names its
        // parent's path, which may be a placeholder of the right type.)
        if !matches!(kind, Kind::MissingField(_)) {
            if let Some(slot) = placeholders.iter_mut().find(|(p, _)| *p == segs) {
                slot.1 += 1;
                if !set_placeholder(value, &segs, slot.1) {
                    return false;
                }
                continue;
            }
        }
        let under_placeholder = placeholders
            .iter()
            .any(|(p, _)| segs.len() >= p.len() && segs.starts_with(p));
        let full = path::join(base, &segs);
        if let Kind::MissingField(field) = &kind {
            let mut child = segs.clone();
            child.push(Seg::Key(field.clone()));
            let child_path = path::join(base, &child);
            if !under_placeholder && !out.is_touched(&child_path) {
                out.push(
                    Diagnostic::error(
                        code::MISSING_FIELD,
                        &child_path,
                        format!("missing required field `{field}`"),
                    )
                    .with_suggestion(if segs.is_empty() && base.is_empty() {
                        format!("add `{field}:` at the top level")
                    } else {
                        format!("add `{field}:` to `{}`", path::join(base, &segs))
                    }),
                );
            }
            if !set_placeholder(value, &child, 0) {
                return false;
            }
            placeholders.push((child, 0));
            continue;
        }
        if !under_placeholder && !out.is_touched(&full) {
            out.push(describe(kind, &full, &msg));
        }
        match segs.last() {
            Some(Seg::Key(_)) => {
                if !remove(value, &segs) {
                    return false;
                }
            }
            Some(Seg::Index(_)) => {
                if !set_placeholder(value, &segs, 0) {
                    return false;
                }
                placeholders.push((segs, 0));
            }
            None => return false,
        }
    }
    false
}

fn is_placeholder(placeholders: &[(Vec<Seg>, usize)], segs: &[Seg]) -> bool {
    placeholders.iter().any(|(p, _)| p == segs)
}

/// What a serde error says.
#[derive(Debug, PartialEq)]
pub enum Kind {
    UnknownField {
        field: String,
        expected: Vec<String>,
    },
    MissingField(String),
    UnknownVariant {
        variant: String,
        expected: Vec<String>,
    },
    /// `invalid type` / `invalid value` / `invalid length`: found, expected.
    Invalid {
        found: String,
        expected: String,
    },
    /// Another "unknown …" message: a value outside its choices.
    OtherChoice,
    Other,
}

pub fn classify(msg: &str) -> Kind {
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        return Kind::UnknownField {
            field: first_ticked(rest).unwrap_or_default(),
            expected: expected_list(rest),
        };
    }
    if let Some(rest) = msg.strip_prefix("missing field ") {
        return Kind::MissingField(first_ticked(rest).unwrap_or_default());
    }
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        return Kind::UnknownVariant {
            variant: first_ticked(rest).unwrap_or_default(),
            expected: expected_list(rest),
        };
    }
    // Our own parsers' wording: "unknown provider `x`, expected one of: a, b".
    if msg.starts_with("unknown ") {
        if let Some((_, list)) = msg.split_once("expected one of: ") {
            return Kind::UnknownVariant {
                variant: first_ticked(msg).unwrap_or_default(),
                expected: list.split(", ").map(str::to_string).collect(),
            };
        }
        return Kind::OtherChoice;
    }
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            if let Some((found, expected)) = rest.rsplit_once(", expected ") {
                return Kind::Invalid {
                    found: found.to_string(),
                    expected: expected.to_string(),
                };
            }
        }
    }
    Kind::Other
}

/// The diagnostic for an error at `path` (not a missing field).
pub fn describe(kind: Kind, path: &str, msg: &str) -> Diagnostic {
    let field = path::last_key(path);
    match kind {
        Kind::UnknownField {
            field: key,
            expected,
        } => {
            let mut d = Diagnostic::error(
                code::UNKNOWN_KEY,
                path,
                format!("unknown key `{key}` in `{}`", path::parent_display(path)),
            )
            .at_key();
            d.suggestion = Some(suggest::with_choices(&key, &expected, "valid keys"));
            d
        }
        Kind::UnknownVariant { variant, expected } => {
            let mut d = Diagnostic::error(
                code::BAD_ENUM,
                path,
                format!("`{field}` cannot be `{variant}`"),
            );
            d.suggestion = Some(suggest::with_choices(
                &variant,
                &expected,
                "expected one of",
            ));
            d
        }
        Kind::Invalid { found, expected } => {
            let want = humanize(&expected);
            let numeric = is_quantity(field);
            let d = Diagnostic::error(
                if numeric {
                    code::INVALID_NUMBER
                } else {
                    code::WRONG_TYPE
                },
                path,
                format!("`{field}` must be {want}, found {found}"),
            );
            if field.ends_with("_seconds") {
                d.with_suggestion(format!("give a number of seconds, e.g. `{field}: 30`"))
            } else if numeric {
                d.with_suggestion(format!("give a whole number, e.g. `{field}: 100`"))
            } else if want == "a string"
                && !found.starts_with("map")
                && !found.starts_with("sequence")
            {
                d.with_suggestion("quote the value to make it a string, e.g. `\"1.0\"`")
            } else if want == "`true` or `false`" {
                d.with_suggestion(format!(
                    "write `{field}: true` or `{field}: false`, unquoted"
                ))
            } else if want == "a list" {
                d.with_suggestion("write a YAML list: one `- item` per line, or `[a, b]`")
            } else if want == "a mapping" {
                d.with_suggestion("write `key: value` pairs indented under the key")
            } else {
                d
            }
        }
        Kind::MissingField(f) => Diagnostic::error(
            code::MISSING_FIELD,
            path,
            format!("missing required field `{f}`"),
        ),
        Kind::OtherChoice => Diagnostic::error(code::BAD_ENUM, path, msg.to_string()),
        Kind::Other => Diagnostic::error(code::WRONG_TYPE, path, format!("`{field}`: {msg}")),
    }
}

/// Fields that hold a duration, size, count or amount.
fn is_quantity(field: &str) -> bool {
    ["_seconds", "_bytes", "_days", "_tokens", "_messages"]
        .iter()
        .any(|s| field.ends_with(s))
}

/// serde's `expected` phrase in words users know from YAML.
fn humanize(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".to_string(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "a boolean" => "`true` or `false`".to_string(),
        "a map" => "a mapping".to_string(),
        "a sequence" => "a list".to_string(),
        e if e.starts_with("struct ") => "a mapping".to_string(),
        e if e.starts_with("a sequence") => "a list".to_string(),
        e => e.to_string(),
    }
}

fn first_ticked(s: &str) -> Option<String> {
    let start = s.find('`')? + 1;
    let len = s.get(start..)?.find('`')?;
    s.get(start..start + len).map(str::to_string)
}

/// The backticked names after `expected` in serde's messages.
fn expected_list(s: &str) -> Vec<String> {
    let Some((_, tail)) = s.split_once("expected") else {
        return Vec::new();
    };
    tail.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, name)| name.to_string())
        .collect()
}

/// The placeholders tried, in order, where a required value is missing or a list item is
/// bad: the first that deserializes stays. `"mock"` first, because it is also a valid
/// `provider`.
fn placeholder(n: usize) -> Option<Value> {
    match n {
        0 => Some(Value::String("mock".to_string())),
        1 => Some(Value::Number(0.into())),
        2 => Some(Value::Bool(false)),
        3 => Some(Value::Mapping(Mapping::new())),
        4 => Some(Value::Sequence(Vec::new())),
        _ => None,
    }
}

fn set_placeholder(root: &mut Value, segs: &[Seg], n: usize) -> bool {
    let Some(ph) = placeholder(n) else {
        return false;
    };
    let Some((last, parent)) = segs.split_last() else {
        return false;
    };
    match (path::get_mut(root, parent), last) {
        (Some(Value::Mapping(m)), Seg::Key(k)) => {
            m.insert(Value::String(k.clone()), ph);
            true
        }
        (Some(Value::Sequence(items)), Seg::Index(i)) => match items.get_mut(*i) {
            Some(slot) => {
                *slot = ph;
                true
            }
            None => false,
        },
        _ => false,
    }
}

fn remove(root: &mut Value, segs: &[Seg]) -> bool {
    let Some((Seg::Key(k), parent)) = segs.split_last() else {
        return false;
    };
    match path::get_mut(root, parent) {
        Some(Value::Mapping(m)) => m.shift_remove(k.as_str()).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        a: u32,
        #[serde(default)]
        timeout_seconds: Option<f64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        inner: Inner,
        #[serde(default)]
        list: Vec<String>,
        #[serde(default)]
        color: Option<Color>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Color {
        Red,
        Blue,
    }

    fn run(yaml: &str) -> (bool, Vec<(String, String, String)>) {
        let mut v: Value = serde_yaml::from_str(yaml).unwrap();
        let mut out = Findings::default();
        let ok = check::<Outer>(&mut v, "root", &mut out).is_some();
        let diags = out
            .diagnostics
            .into_iter()
            .map(|d| (d.code.to_string(), d.path, d.message))
            .collect();
        (ok, diags)
    }

    #[test]
    fn every_structural_error_is_reported_once() {
        let (ok, diags) = run(
            "inner: {a: x, timeout_seconds: 30s, b: 1}\nlist: [a, {x: 1}, c]\ncolor: gren\nnmae: q\n",
        );
        assert!(ok);
        let codes: Vec<(&str, &str)> = diags
            .iter()
            .map(|(c, p, _)| (c.as_str(), p.as_str()))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("E006", "root.inner.a"),
                ("E011", "root.inner.timeout_seconds"),
                ("E002", "root.inner.b"),
                ("E006", "root.list[1]"),
                ("E008", "root.color"),
                ("E002", "root.nmae"),
                ("E007", "root.name"),
            ],
            "{diags:#?}"
        );
    }

    #[test]
    fn a_missing_struct_is_one_finding() {
        let (ok, diags) = run("name: x\n");
        assert!(ok);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].1, "root.inner");
    }

    #[test]
    fn an_unrepairable_root_gives_up() {
        let (ok, diags) = run("[1, 2]\n");
        assert!(!ok);
        assert_eq!(diags.len(), 1, "{diags:?}");
    }

    #[test]
    fn messages_are_classified() {
        assert_eq!(
            classify("unknown field `nmae`, expected `name` or `inner`"),
            Kind::UnknownField {
                field: "nmae".into(),
                expected: vec!["name".into(), "inner".into()]
            }
        );
        assert_eq!(
            classify("unknown variant `gren`, expected one of `red`, `blue`"),
            Kind::UnknownVariant {
                variant: "gren".into(),
                expected: vec!["red".into(), "blue".into()]
            }
        );
        assert_eq!(
            classify("missing field `a`"),
            Kind::MissingField("a".into())
        );
        assert_eq!(
            classify(
                "unknown provider `openia`, expected one of: openai, mock, openai:chat:<model>"
            ),
            Kind::UnknownVariant {
                variant: "openia".into(),
                expected: vec!["openai".into(), "mock".into(), "openai:chat:<model>".into()]
            }
        );
        assert_eq!(
            classify("invalid type: string \"x\", expected u32"),
            Kind::Invalid {
                found: "string \"x\"".into(),
                expected: "u32".into()
            }
        );
    }
}
