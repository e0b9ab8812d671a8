//! Argument rules of `agent-firewall`: a JSON Schema subset (`type`, `enum`, `pattern`,
//! `minLength`, `maxLength`, `minimum`, `maximum`, `not`, plus `required`) or, written as
//! a bare string, a regex the value must match.

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// `type`: one JSON type or several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonType {
    String,
    Number,
    Integer,
    Boolean,
    Array,
    Object,
    Null,
}

impl JsonType {
    fn accepts(self, v: &Value) -> bool {
        match self {
            JsonType::String => v.is_string(),
            JsonType::Number => v.is_number(),
            JsonType::Integer => {
                v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            JsonType::Boolean => v.is_boolean(),
            JsonType::Array => v.is_array(),
            JsonType::Object => v.is_object(),
            JsonType::Null => v.is_null(),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Number => "number",
            JsonType::Integer => "integer",
            JsonType::Boolean => "boolean",
            JsonType::Array => "array",
            JsonType::Object => "object",
            JsonType::Null => "null",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Types {
    One(JsonType),
    Many(Vec<JsonType>),
}

/// The schema form of a rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaSpec {
    #[serde(default, rename = "type")]
    pub kind: Option<Types>,
    #[serde(default, rename = "enum")]
    pub one_of: Option<Vec<Value>>,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default, rename = "minLength")]
    pub min_length: Option<usize>,
    #[serde(default, rename = "maxLength")]
    pub max_length: Option<usize>,
    #[serde(default)]
    pub minimum: Option<f64>,
    #[serde(default)]
    pub maximum: Option<f64>,
    /// The argument must be present.
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub not: Option<Box<SchemaSpec>>,
}

/// A rule as written: a regex string or a schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ArgRuleSpec {
    Regex(String),
    Schema(SchemaSpec),
}

impl<'de> Deserialize<'de> for ArgRuleSpec {
    // By hand rather than `untagged`, so a mistyped schema key is reported by name.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml::Value::deserialize(d)?;
        match v {
            serde_yaml::Value::String(s) => Ok(ArgRuleSpec::Regex(s)),
            other => serde_yaml::from_value(other)
                .map(ArgRuleSpec::Schema)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// A compiled rule.
#[derive(Debug)]
pub struct ArgRule {
    types: Vec<JsonType>,
    one_of: Option<Vec<Value>>,
    pattern: Option<Regex>,
    /// A bare-regex rule: also applies to non-strings (their JSON text).
    any_value_pattern: bool,
    min_length: Option<usize>,
    max_length: Option<usize>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    pub required: bool,
    not: Option<Box<ArgRule>>,
}

impl ArgRule {
    pub fn compile(spec: &ArgRuleSpec) -> Result<ArgRule, String> {
        match spec {
            ArgRuleSpec::Regex(p) => Ok(ArgRule {
                pattern: Some(compile_regex(p)?),
                any_value_pattern: true,
                ..ArgRule::compile_schema(&SchemaSpec::default())?
            }),
            ArgRuleSpec::Schema(s) => ArgRule::compile_schema(s),
        }
    }

    fn compile_schema(s: &SchemaSpec) -> Result<ArgRule, String> {
        Ok(ArgRule {
            types: match &s.kind {
                None => Vec::new(),
                Some(Types::One(t)) => vec![*t],
                Some(Types::Many(ts)) => ts.clone(),
            },
            one_of: s.one_of.clone(),
            pattern: s.pattern.as_deref().map(compile_regex).transpose()?,
            any_value_pattern: false,
            min_length: s.min_length,
            max_length: s.max_length,
            minimum: s.minimum,
            maximum: s.maximum,
            required: s.required,
            not: s
                .not
                .as_deref()
                .map(|n| ArgRule::compile_schema(n).map(Box::new))
                .transpose()?,
        })
    }

    /// `Err` says, without the value, why the value is refused.
    pub fn check(&self, v: &Value) -> Result<(), String> {
        if !self.types.is_empty() && !self.types.iter().any(|t| t.accepts(v)) {
            let names: Vec<&str> = self.types.iter().map(|t| t.as_str()).collect();
            return Err(format!("it must be of type {}", names.join(" or ")));
        }
        if let Some(allowed) = &self.one_of {
            if !allowed.iter().any(|a| same_value(a, v)) {
                return Err("it must be one of the allowed values".to_string());
            }
        }
        if let Some(re) = &self.pattern {
            let text = match v {
                Value::String(s) => Some(s.clone()),
                other if self.any_value_pattern => Some(other.to_string()),
                _ => None,
            };
            if text.is_some_and(|t| !re.is_match(&t)) {
                return Err("it must match the configured pattern".to_string());
            }
        }
        if let Value::String(s) = v {
            let n = s.chars().count();
            if self.max_length.is_some_and(|m| n > m) {
                return Err("it is too long".to_string());
            }
            if self.min_length.is_some_and(|m| n < m) {
                return Err("it is too short".to_string());
            }
        }
        if let Some(x) = v.as_f64() {
            if self.maximum.is_some_and(|m| x > m) {
                return Err("it is above the allowed maximum".to_string());
            }
            if self.minimum.is_some_and(|m| x < m) {
                return Err("it is below the allowed minimum".to_string());
            }
        }
        if let Some(not) = &self.not {
            if not.check(v).is_ok() {
                return Err("it matches a forbidden rule".to_string());
            }
        }
        Ok(())
    }
}

fn compile_regex(p: &str) -> Result<Regex, String> {
    Regex::new(p).map_err(|e| format!("invalid regex `{p}`: {e}"))
}

/// JSON equality, with numbers compared by value (`1` equals `1.0`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(yaml: &str) -> ArgRule {
        ArgRule::compile(&serde_yaml::from_str(yaml).unwrap()).unwrap()
    }

    #[test]
    fn schema_subset() {
        let r = rule("{type: string, pattern: '@example\\.com$', maxLength: 30}");
        assert!(r.check(&json!("a@example.com")).is_ok());
        assert_eq!(
            r.check(&json!("a@evil.com")).unwrap_err(),
            "it must match the configured pattern"
        );
        assert_eq!(r.check(&json!(3)).unwrap_err(), "it must be of type string");
        assert!(r
            .check(&json!(format!("{}@example.com", "a".repeat(30))))
            .is_err());
        let r = rule("{type: [number, integer], minimum: 0, maximum: 1000}");
        assert!(r.check(&json!(999.5)).is_ok());
        assert!(r.check(&json!(1001)).is_err());
        assert!(r.check(&json!(-1)).is_err());
        let r = rule("{enum: [USD, EUR, 1]}");
        assert!(r.check(&json!("EUR")).is_ok());
        assert!(r.check(&json!(1.0)).is_ok());
        assert!(r.check(&json!("GBP")).is_err());
    }

    #[test]
    fn not_and_bare_regex() {
        let r = rule("{type: string, not: {pattern: '(?i)\\bdrop\\s+table\\b'}}");
        assert!(r.check(&json!("select 1")).is_ok());
        assert_eq!(
            r.check(&json!("DROP  TABLE users")).unwrap_err(),
            "it matches a forbidden rule"
        );
        let r = rule("'^/srv/data/'");
        assert!(r.check(&json!("/srv/data/a.csv")).is_ok());
        assert!(r.check(&json!("/etc/passwd")).is_err());
        assert!(
            r.check(&json!(42)).is_err(),
            "non-strings are checked as JSON"
        );
    }

    #[test]
    fn mistyped_keys_are_named() {
        let e = serde_yaml::from_str::<ArgRuleSpec>("{maxLenght: 3}").unwrap_err();
        assert!(e.to_string().contains("unknown field `maxLenght`"), "{e}");
        let e = ArgRule::compile(&ArgRuleSpec::Regex("(".into())).unwrap_err();
        assert!(e.starts_with("invalid regex `(`"), "{e}");
    }
}
