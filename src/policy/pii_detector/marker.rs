//! What replaces a detected value: `redaction {marker_format, include_metadata,
//! preserve_length, custom_markers}`.
//!
//! - `label` (default): `[EMAIL]`; `asterisk`: `*****`; `partial`: a masked value that
//!   keeps a hint (`j*******@example.com`, `**** **** **** 1111`, `sk-proj-****`).
//! - `include_metadata`: the marker carries the kind and a number that is the same for
//!   the same value within one request, response or stream (`[EMAIL_1]`,
//!   `[EMAIL_1:*****]`), so the model can still tell values apart.
//! - `preserve_length`: the marker has as many characters as the value.
//! - `custom_markers`: per kind, a marker used verbatim.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::builtin;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarkerFormat {
    #[default]
    Label,
    Asterisk,
    Partial,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedactionSpec {
    #[serde(default)]
    pub marker_format: MarkerFormat,
    #[serde(default)]
    pub include_metadata: bool,
    #[serde(default)]
    pub preserve_length: bool,
    /// Kind → marker text, used as is.
    #[serde(default)]
    pub custom_markers: BTreeMap<String, String>,
}

/// Everything a marker depends on, shared by the policy and its stream filters.
#[derive(Debug)]
pub struct MarkerConfig {
    pub spec: RedactionSpec,
    /// `pci_mode`: a partial card shows only its last four digits.
    pub pci: bool,
}

/// Makes markers for one request, response or stream (numbers values by first sight).
pub struct Markers {
    config: Arc<MarkerConfig>,
    seen: HashMap<(String, u64), usize>,
    per_kind: HashMap<String, usize>,
}

/// The marker label of a kind: the built-in label, else the custom pattern's name in
/// upper case.
pub fn label(kind: &str) -> String {
    builtin::kind(kind).map_or_else(
        || kind.to_uppercase().replace(['-', ' '], "_"),
        |k| k.label.to_string(),
    )
}

impl Markers {
    pub fn new(config: Arc<MarkerConfig>) -> Markers {
        Markers {
            config,
            seen: HashMap::new(),
            per_kind: HashMap::new(),
        }
    }

    pub fn marker(&mut self, kind: &str, value: &str) -> String {
        let spec = &self.config.spec;
        if let Some(custom) = spec.custom_markers.get(kind) {
            return custom.clone();
        }
        let n = value.chars().count();
        let label = label(kind);
        let body = match spec.marker_format {
            MarkerFormat::Label if spec.preserve_length => fit(&format!("[{label}]"), n),
            MarkerFormat::Label => String::new(),
            MarkerFormat::Asterisk if spec.preserve_length => "*".repeat(n),
            MarkerFormat::Asterisk => "*****".to_string(),
            MarkerFormat::Partial => partial(kind, value, self.config.pci, spec.preserve_length),
        };
        if spec.include_metadata && !spec.preserve_length {
            let id = self.number(kind, value);
            return if body.is_empty() {
                format!("[{label}_{id}]")
            } else {
                format!("[{label}_{id}:{body}]")
            };
        }
        if body.is_empty() {
            format!("[{label}]")
        } else {
            body
        }
    }

    fn number(&mut self, kind: &str, value: &str) -> usize {
        let mut h = DefaultHasher::new();
        value.hash(&mut h);
        let key = (kind.to_string(), h.finish());
        if let Some(n) = self.seen.get(&key) {
            return *n;
        }
        let next = self.per_kind.entry(kind.to_string()).or_insert(0);
        *next += 1;
        self.seen.insert(key, *next);
        *next
    }
}

/// `[EMAIL]` stretched with `*` (or cut to `*`s) to exactly `n` characters.
fn fit(label: &str, n: usize) -> String {
    let len = label.chars().count();
    if n < len {
        return "*".repeat(n);
    }
    let inner = label.trim_end_matches(']');
    format!("{inner}{}]", "*".repeat(n - len))
}

/// Known secret prefixes, longest first: a partial secret shows only which kind it is.
const SECRET_PREFIXES: &[&str] = &[
    "https://hooks.slack.com/services/",
    "github_pat_",
    "sk-svcacct-",
    "sk-admin-",
    "sk-proj-",
    "sk-ant-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "rk_test_",
    "pk_live_",
    "pk_test_",
    "xoxb-",
    "xoxa-",
    "xoxp-",
    "xoxo-",
    "xoxs-",
    "xoxr-",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "AKIA",
    "ASIA",
    "ABIA",
    "ACCA",
    "AIza",
    "eyJ",
    "sk-",
];

/// Masks every alphanumeric character except those `keep` says to keep; separators stay.
fn mask(value: &str, keep: impl Fn(usize, usize) -> bool) -> String {
    let total = value.chars().filter(char::is_ascii_alphanumeric).count();
    let mut i = 0;
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                let k = keep(i, total);
                i += 1;
                if k {
                    c
                } else {
                    '*'
                }
            } else {
                c
            }
        })
        .collect()
}

fn partial(kind: &str, value: &str, pci: bool, preserve_length: bool) -> String {
    if kind == "private_key" {
        let n = value.chars().count();
        return if preserve_length {
            fit("[PRIVATE_KEY]", n)
        } else {
            "[PRIVATE_KEY]".to_string()
        };
    }
    if builtin::is_secret(kind) {
        let prefix = SECRET_PREFIXES
            .iter()
            .find(|p| value.starts_with(**p))
            .copied()
            .unwrap_or_default();
        let rest = value.chars().count() - prefix.chars().count();
        return format!(
            "{prefix}{}",
            "*".repeat(if preserve_length { rest } else { 4 })
        );
    }
    match kind {
        "credit_card" if pci => mask(value, |i, n| i + 4 >= n),
        "credit_card" => mask(value, |i, n| i < 6 || i + 4 >= n),
        "us_ssn" => mask(value, |i, n| i + 4 >= n),
        "phone" => mask(value, |i, n| i + 2 >= n),
        "iban" => mask(value, |i, n| i < 2 || i + 4 >= n),
        "ipv4" | "ipv6" => {
            let first = value.find(['.', ':']).unwrap_or(value.len());
            let (head, tail) = value.split_at(first);
            format!("{head}{}", mask(tail, |_, _| false))
        }
        "email" => match value.split_once('@') {
            Some((local, domain)) => format!("{}@{domain}", mask(local, |i, _| i == 0)),
            None => mask(value, |_, _| false),
        },
        _ => mask(value, |i, n| n >= 8 && i + 2 >= n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn markers(spec: RedactionSpec, pci: bool) -> Markers {
        Markers::new(Arc::new(MarkerConfig { spec, pci }))
    }

    fn fmt(format: MarkerFormat) -> RedactionSpec {
        RedactionSpec {
            marker_format: format,
            ..RedactionSpec::default()
        }
    }

    #[test]
    fn label_and_asterisk() {
        let mut m = markers(RedactionSpec::default(), false);
        assert_eq!(m.marker("email", "a@b.co"), "[EMAIL]");
        assert_eq!(m.marker("employee_id", "E-1"), "[EMPLOYEE_ID]");
        let mut m = markers(fmt(MarkerFormat::Asterisk), false);
        assert_eq!(m.marker("email", "a@b.co"), "*****");
    }

    #[test]
    fn partial_keeps_a_hint() {
        let mut m = markers(fmt(MarkerFormat::Partial), false);
        assert_eq!(m.marker("email", "john@example.com"), "j***@example.com");
        assert_eq!(
            m.marker("credit_card", "4111 1111 1111 1234"),
            "4111 11** **** 1234"
        );
        assert_eq!(m.marker("us_ssn", "123-45-6789"), "***-**-6789");
        assert_eq!(m.marker("phone", "+44 20 7946 0958"), "+** ** **** **58");
        assert_eq!(
            m.marker("openai_api_key", "sk-proj-abcdef123456"),
            "sk-proj-****"
        );
        assert_eq!(m.marker("ipv4", "10.1.2.3"), "10.*.*.*");
        let mut pci = markers(fmt(MarkerFormat::Partial), true);
        assert_eq!(
            pci.marker("credit_card", "4111 1111 1111 1234"),
            "**** **** **** 1234"
        );
    }

    #[test]
    fn preserve_length() {
        let spec = RedactionSpec {
            preserve_length: true,
            ..RedactionSpec::default()
        };
        let mut m = markers(spec.clone(), false);
        assert_eq!(m.marker("email", "john@example.com"), "[EMAIL*********]");
        assert_eq!(m.marker("email", "a@b.co"), "******");
        let mut m = markers(
            RedactionSpec {
                marker_format: MarkerFormat::Asterisk,
                ..spec
            },
            false,
        );
        assert_eq!(m.marker("email", "a@b.co"), "******");
    }

    #[test]
    fn metadata_numbers_distinct_values() {
        let mut m = markers(
            RedactionSpec {
                include_metadata: true,
                ..RedactionSpec::default()
            },
            false,
        );
        assert_eq!(m.marker("email", "a@b.co"), "[EMAIL_1]");
        assert_eq!(m.marker("email", "c@d.co"), "[EMAIL_2]");
        assert_eq!(m.marker("email", "a@b.co"), "[EMAIL_1]");
        assert_eq!(m.marker("phone", "+1 555 123 4567"), "[PHONE_1]");
    }

    #[test]
    fn custom_markers_win() {
        let mut spec = RedactionSpec::default();
        spec.custom_markers
            .insert("email".to_string(), "<email removed>".to_string());
        let mut m = markers(spec, false);
        assert_eq!(m.marker("email", "a@b.co"), "<email removed>");
        assert_eq!(m.marker("phone", "+1 555 123 4567"), "[PHONE]");
    }
}
