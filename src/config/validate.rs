//! The one validation pass shared by `kt gateway run` and `kt policy lint`: it collects
//! every finding instead of stopping at the first, and places each one in its file.
//!
//! Steps, per file then per layer: parse the YAML twice (serde_yaml for the values, a
//! span parser for positions and duplicate keys), merge the layers, check the structure
//! against the serde types (`shape`), then the rules that need more than types (`rules`,
//! `policies`), then give each finding its line and column.

mod path;
mod policies;
mod rules;
mod shape;
mod suggest;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_yaml::{Mapping, Value};

use super::diagnostic::{code, Diagnostic};
use super::layer;
use super::lint::span::{self, Pos, Tree};
use super::schema::{ConfigSpec, TargetSpec};

/// One config file's text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

/// One step of layering (the first k files merged): its typed spec when it has one, and
/// every finding, errors and warnings, placed in the files.
#[derive(Debug)]
pub struct Layer {
    pub spec: Option<ConfigSpec>,
    /// The merged YAML, when every file so far parsed.
    pub value: Option<Value>,
    pub diagnostics: Vec<Diagnostic>,
}

/// What validation found so far, and which paths it is about (later checks skip paths
/// already reported, so one mistake is one finding).
#[derive(Debug, Default)]
pub struct Findings {
    pub diagnostics: Vec<Diagnostic>,
    touched: BTreeSet<String>,
}

impl Findings {
    pub fn push(&mut self, d: Diagnostic) {
        self.touched.insert(d.path.clone());
        self.diagnostics.push(d);
    }

    /// Pushes `d` unless its path (or a parent) already has a finding.
    pub fn push_unless_touched(&mut self, d: Diagnostic) {
        if !self.is_touched(&d.path) {
            self.push(d);
        }
    }

    /// Whether `p` or one of its parents already has a finding.
    pub fn is_touched(&self, p: &str) -> bool {
        if self.touched.contains(p) {
            return true;
        }
        p.char_indices()
            .filter(|(_, c)| *c == '.' || *c == '[')
            .any(|(i, _)| p.get(..i).is_some_and(|a| self.touched.contains(a)))
    }
}

/// Type-checks and validates a (possibly layered) config value. Returns the typed spec
/// when the structure could be repaired into one (check `diagnostics` for errors before
/// using it) and every finding, without positions.
pub fn validate(value: &Value) -> (Option<ConfigSpec>, Vec<Diagnostic>) {
    let mut out = Findings::default();
    let mut root = value.clone();
    match &root {
        Value::Mapping(_) => {}
        Value::Null => {
            out.push(
                Diagnostic::error(code::MISSING_FIELD, "", "the config is empty").with_suggestion(
                    "start with `pack`, `providers` and `policies`; `kt init` writes one",
                ),
            );
            return (None, out.diagnostics);
        }
        _ => {
            out.push(Diagnostic::error(
                code::WRONG_TYPE,
                "",
                "the config must be a mapping of `pack`, `providers`, `policies` and `policy`",
            ));
            return (None, out.diagnostics);
        }
    }
    // Targets one by one, so a broken target cannot hide the ones after it.
    let mut broken = BTreeSet::new();
    let targets = root.get_mut("providers").and_then(|p| p.get_mut("targets"));
    if let Some(Value::Sequence(targets)) = targets {
        for (i, t) in targets.iter_mut().enumerate() {
            let base = format!("providers.targets[{i}]");
            if shape::check::<TargetSpec>(t, &base, &mut out).is_none() {
                broken.insert(i);
                *t = placeholder_target();
            }
        }
    }
    let spec = shape::check::<ConfigSpec>(&mut root, "", &mut out);
    if let Some(spec) = &spec {
        rules::check(spec, &broken, &mut out);
        policies::check(spec, &mut out);
    }
    (spec, out.diagnostics)
}

/// Stands in for a target that is not even a mapping (already reported), so that the
/// rest of the config can still be checked.
fn placeholder_target() -> Value {
    let mut m = Mapping::new();
    for (k, v) in [("id", ""), ("provider", "mock"), ("model", "")] {
        m.insert(Value::String(k.to_string()), Value::String(v.to_string()));
    }
    Value::Mapping(m)
}

/// A file after parsing.
struct Parsed {
    tree: Option<Tree>,
    value: Option<Value>,
    diagnostics: Vec<Diagnostic>,
}

/// Validates `files` layered in order: one [`Layer`] per prefix (the gateway serves each
/// prefix as a configuration of its own). Diagnostics name their file when there are
/// several.
pub fn check_layers(files: &[SourceFile]) -> Vec<Layer> {
    let layered = files.len() > 1;
    let parsed: Vec<Parsed> = files.iter().map(|f| parse_file(f, layered)).collect();
    let mut layers = Vec::with_capacity(files.len());
    let mut parse_errors: Vec<Diagnostic> = Vec::new();
    let mut merged: Option<Value> = None;
    for (k, p) in parsed.iter().enumerate() {
        parse_errors.extend(p.diagnostics.iter().cloned());
        let value = match (&p.value, parse_errors.is_empty()) {
            (Some(v), true) => v.clone(),
            _ => {
                layers.push(Layer {
                    spec: None,
                    value: None,
                    diagnostics: parse_errors.clone(),
                });
                continue;
            }
        };
        let value = match merged.take() {
            None => value,
            Some(mut base) => {
                layer::merge(&mut base, value);
                base
            }
        };
        let (spec, mut diagnostics) = validate(&value);
        for d in &mut diagnostics {
            place(d, files, parsed.get(..=k).unwrap_or_default(), &value);
        }
        sort(&mut diagnostics, files);
        layers.push(Layer {
            spec,
            value: Some(value.clone()),
            diagnostics,
        });
        merged = Some(value);
    }
    layers
}

/// In file order, then by position (unplaced findings last).
pub fn sort(diagnostics: &mut [Diagnostic], files: &[SourceFile]) {
    let file_index = |d: &Diagnostic| {
        d.file
            .as_ref()
            .and_then(|f| files.iter().position(|s| &s.path == f))
            .unwrap_or(0)
    };
    diagnostics.sort_by_key(|d| {
        (
            file_index(d),
            d.line.unwrap_or(usize::MAX),
            d.column.unwrap_or(usize::MAX),
        )
    });
}

/// Gives `d` its line and column (and file, when layered): the last file that defines
/// the path wins, since later layers override earlier ones.
fn place(d: &mut Diagnostic, files: &[SourceFile], parsed: &[Parsed], merged: &Value) {
    let layered = files.len() > 1;
    let mut best: Option<(usize, span::Located)> = None;
    for (j, p) in parsed.iter().enumerate().rev() {
        let Some(tree) = &p.tree else { continue };
        let found = tree.locate(&d.path, d.anchor, layered.then_some(merged));
        let better = match &best {
            None => true,
            Some((_, b)) => !b.complete && (found.complete || found.depth > b.depth),
        };
        if better {
            best = Some((j, found));
        }
        if found.complete {
            break;
        }
    }
    if let Some((j, found)) = best {
        *d = d.clone().at(found.pos.line, found.pos.column);
        if layered {
            d.file = files.get(j).map(|f| f.path.clone());
        }
    }
}

fn parse_file(file: &SourceFile, layered: bool) -> Parsed {
    let tree = span::parse(&file.text);
    let value = serde_yaml::from_str::<Value>(&file.text);
    let name = layered.then(|| file.path.clone());
    match (tree, value) {
        (Ok(tree), Ok(value)) => Parsed {
            tree: Some(tree),
            value: Some(value),
            diagnostics: Vec::new(),
        },
        (Err(_), Ok(value)) => Parsed {
            // The two parsers disagree: trust serde_yaml (the one the gateway runs on),
            // and give up on positions for this file.
            tree: None,
            value: Some(value),
            diagnostics: Vec::new(),
        },
        (tree, Err(e)) => {
            let mut diagnostics: Vec<Diagnostic> = match &tree {
                Ok(t) if !t.duplicates.is_empty() => t
                    .duplicates
                    .iter()
                    .map(|dup| {
                        Diagnostic::error(
                            code::DUPLICATE_KEY,
                            &dup.path,
                            format!("duplicate key `{}`", dup.key),
                        )
                        .with_suggestion(format!(
                            "`{}` is already set at line {}; keep one of them",
                            dup.key, dup.first.line
                        ))
                        .at_key()
                        .at(dup.pos.line, dup.pos.column)
                    })
                    .collect(),
                _ => vec![syntax_error(&e, tree.as_ref())],
            };
            for d in &mut diagnostics {
                d.file.clone_from(&name);
            }
            Parsed {
                tree: tree.ok(),
                value: None,
                diagnostics,
            }
        }
    }
}

fn syntax_error(e: &serde_yaml::Error, tree: Result<&Tree, &span::SyntaxError>) -> Diagnostic {
    let extra = tree.ok().and_then(|t| t.extra_document);
    if let Some(pos) = extra.filter(|_| e.location().is_none()) {
        return Diagnostic::error(
            code::YAML_SYNTAX,
            "",
            "the file holds more than one YAML document",
        )
        .with_suggestion("keep one document per file; layer files with a repeated `--file`")
        .at(pos.line, pos.column);
    }
    let pos = match (e.location(), tree) {
        (Some(l), _) => Pos {
            line: l.line(),
            column: l.column(),
        },
        (None, Err(se)) => se.pos,
        (None, Ok(_)) => Pos::START,
    };
    Diagnostic::error(
        code::YAML_SYNTAX,
        "",
        format!("invalid YAML: {}", strip_locations(&e.to_string())),
    )
    .with_suggestion("fix the YAML syntax at the position shown (indentation, quotes, brackets)")
    .at(pos.line, pos.column)
}

/// serde_yaml's messages carry " at line L column C": the diagnostic has its own.
fn strip_locations(msg: &str) -> String {
    match regex::Regex::new(r" at line \d+ column \d+") {
        Ok(re) => re.replace_all(msg, "").into_owned(),
        Err(_) => msg.to_string(),
    }
}

#[cfg(test)]
mod tests;
