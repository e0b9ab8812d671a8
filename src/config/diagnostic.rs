//! A finding about a config file: what `kt policy lint` prints and what makes
//! `kt gateway run` refuse to start. Every finding has a stable code (listed in [`CODES`]),
//! a severity, the YAML path it is about, its place in the file once located, a message
//! and, where we know one, the fix.

use std::path::PathBuf;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// Which part of a `key: value` pair a finding points at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Anchor {
    /// The value (for a mapping or sequence reached through a key: that key).
    #[default]
    Value,
    /// The key itself (unknown and duplicate keys).
    Key,
}

/// The codes kt emits. E001–E003 are fixed by the product; the rest are ours.
pub mod code {
    /// A policy name that kt does not know (in `policies.chain` or `policy`).
    pub const UNKNOWN_POLICY: &str = "E001";
    /// A key that is not part of the schema at that place.
    pub const UNKNOWN_KEY: &str = "E002";
    /// A policy in the chain that needs a `policy.<name>` block and has none.
    pub const MISSING_POLICY_BLOCK: &str = "E003";
    /// The file is not valid YAML.
    pub const YAML_SYNTAX: &str = "E004";
    /// The same key twice in one mapping.
    pub const DUPLICATE_KEY: &str = "E005";
    /// A value of the wrong type.
    pub const WRONG_TYPE: &str = "E006";
    /// A required field is missing or empty.
    pub const MISSING_FIELD: &str = "E007";
    /// A value outside its set of choices (strategy, provider, action, format…).
    pub const BAD_ENUM: &str = "E008";
    /// Two targets with the same `id`.
    pub const DUPLICATE_TARGET_ID: &str = "E009";
    /// A URL (or URL path) that cannot be used.
    pub const INVALID_URL: &str = "E010";
    /// A duration, size, count or price that is not a usable number.
    pub const INVALID_NUMBER: &str = "E011";
    /// Negative weights, or weights that are all zero.
    pub const INVALID_WEIGHT: &str = "E012";
    /// A regex in `detect_patterns` that does not compile.
    pub const INVALID_REGEX: &str = "E013";
    /// An alias or deprecation that leads to no configured model.
    pub const DANGLING_MODEL: &str = "E014";
    /// A routing strategy with fewer targets than it needs.
    pub const TOO_FEW_TARGETS: &str = "E015";
    /// A header name or value that HTTP does not allow.
    pub const INVALID_HEADER: &str = "E016";
    /// `secret_key_ref` names an environment variable that is not set.
    pub const UNSET_SECRET: &str = "W001";
    /// A `policy.<name>` block for a policy that is not in the chain.
    pub const UNUSED_POLICY_BLOCK: &str = "W002";
    /// `policies.chain` is empty (or absent).
    pub const EMPTY_CHAIN: &str = "W003";
    /// The same policy twice in the chain.
    pub const DUPLICATE_CHAIN_ENTRY: &str = "W004";
}

/// Every code with a one-line description (for documentation and tests).
pub const CODES: &[(&str, &str)] = &[
    (code::UNKNOWN_POLICY, "unknown policy kind"),
    (code::UNKNOWN_KEY, "unknown key"),
    (
        code::MISSING_POLICY_BLOCK,
        "policy in the chain without the config block it needs",
    ),
    (code::YAML_SYNTAX, "YAML syntax error"),
    (code::DUPLICATE_KEY, "duplicate key"),
    (code::WRONG_TYPE, "wrong type"),
    (code::MISSING_FIELD, "missing required field"),
    (code::BAD_ENUM, "value not among the allowed choices"),
    (code::DUPLICATE_TARGET_ID, "duplicate target id"),
    (code::INVALID_URL, "invalid URL"),
    (
        code::INVALID_NUMBER,
        "invalid duration, size, count or price",
    ),
    (code::INVALID_WEIGHT, "negative or all-zero weights"),
    (code::INVALID_REGEX, "regex that does not compile"),
    (
        code::DANGLING_MODEL,
        "alias or deprecation pointing to no model",
    ),
    (code::TOO_FEW_TARGETS, "strategy needs more targets"),
    (code::INVALID_HEADER, "invalid HTTP header"),
    (code::UNSET_SECRET, "secret environment variable not set"),
    (
        code::UNUSED_POLICY_BLOCK,
        "policy configured but not in the chain",
    ),
    (code::EMPTY_CHAIN, "empty policy chain"),
    (
        code::DUPLICATE_CHAIN_ENTRY,
        "policy listed twice in the chain",
    ),
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Diagnostic {
    pub code: &'static str,
    pub severity: Severity,
    /// The YAML path, e.g. `policy.pii-detector.action` or `providers.targets[2].base_url`.
    pub path: String,
    /// The file the finding is in, when the config is layered from several files
    /// (a single file is named by the caller).
    pub file: Option<PathBuf>,
    /// 1-based line and column.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    /// How to fix it.
    pub suggestion: Option<String>,
    #[serde(skip)]
    pub anchor: Anchor,
}

impl Diagnostic {
    pub fn error(code: &'static str, path: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            path: path.into(),
            file: None,
            line: None,
            column: None,
            message: message.into(),
            suggestion: None,
            anchor: Anchor::Value,
        }
    }

    pub fn warning(
        code: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, path, message)
        }
    }

    pub fn with_suggestion(mut self, s: impl Into<String>) -> Self {
        self.suggestion = Some(s.into());
        self
    }

    /// Points at the key of the path rather than its value.
    pub fn at_key(mut self) -> Self {
        self.anchor = Anchor::Key;
        self
    }

    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `path (file:line:col)`, `path (line:col)` or just `path`: the `-->` line.
    pub fn location(&self) -> String {
        let path = if self.path.is_empty() {
            "<document>"
        } else {
            &self.path
        };
        match (&self.file, self.line, self.column) {
            (Some(f), Some(l), Some(c)) => format!("{path} ({}:{l}:{c})", f.display()),
            (None, Some(l), Some(c)) => format!("{path} ({l}:{c})"),
            (Some(f), _, _) => format!("{path} ({})", f.display()),
            (None, _, _) => path.to_string(),
        }
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}[{}]: {}",
            self.severity.as_str(),
            self.code,
            self.message
        )?;
        write!(f, "  --> {}", self.location())?;
        if let Some(s) = &self.suggestion {
            write!(f, "\n  help: {s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_code_location_and_help() {
        let d = Diagnostic::error(code::UNKNOWN_POLICY, "policies.chain[0]", "unknown policy")
            .with_suggestion("did you mean `audit-logger`?")
            .at(5, 7);
        assert_eq!(
            d.to_string(),
            "error[E001]: unknown policy\n  --> policies.chain[0] (5:7)\n  help: did you mean `audit-logger`?"
        );
        let mut d = Diagnostic::warning(code::EMPTY_CHAIN, "", "empty");
        assert_eq!(d.to_string(), "warning[W003]: empty\n  --> <document>");
        d.file = Some(PathBuf::from("base.yaml"));
        d = d.at(1, 1);
        assert_eq!(d.location(), "<document> (base.yaml:1:1)");
    }

    #[test]
    fn codes_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for (c, _) in CODES {
            assert!(seen.insert(*c), "duplicate code {c}");
        }
    }
}
