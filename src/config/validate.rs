//! The one validation pass shared by `kt gateway run` and `kt policy lint`: it collects
//! every finding instead of stopping at the first, and places each one in its file.
//!
//! Steps, per file then per layer: parse the YAML (serde_yaml), merge the layers, check
//! the structure against the serde types (`shape`), then the rules that need more than
//! types (`rules`, `policies`), then give each finding its line and column. Positions
//! come from a second, positioned parse (`lint::span`), made only for files that have
//! findings or do not parse (it also finds every duplicate key).

mod path;
mod policies;
mod rules;
mod shape;
mod suggest;

use std::cell::OnceCell;
use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_yaml::Value;

use super::diagnostic::{code, Diagnostic};
use super::layer;
use super::lint::span::{self, Pos, Tree};
use super::schema::{ConfigSpec, ProviderId, ProviderKind, TargetSpec};

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
    /// Pack and chain as written, when every file so far parsed (for reports: the spec
    /// may hold placeholders where values were missing).
    pub summary: Option<Summary>,
    pub diagnostics: Vec<Diagnostic>,
}

/// `pack.name`, `pack.version` and `policies.chain`, as far as they can be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub pack_name: Option<String>,
    pub pack_version: Option<String>,
    pub chain: Vec<String>,
}

impl Summary {
    fn of(config: &Value) -> Summary {
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Sequence(_) | Value::Mapping(_) | Value::Tagged(_) => None,
        };
        let pack = config.get("pack");
        Summary {
            pack_name: pack.and_then(|p| p.get("name")).and_then(text),
            pack_version: pack.and_then(|p| p.get("version")).and_then(text),
            chain: config
                .get("policies")
                .and_then(|p| p.get("chain"))
                .and_then(Value::as_sequence)
                .map(|items| items.iter().filter_map(text).collect())
                .unwrap_or_default(),
        }
    }
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
    validate_owned(value.clone())
}

/// [`validate`], repairing `root` in place.
fn validate_owned(mut root: Value) -> (Option<ConfigSpec>, Vec<Diagnostic>) {
    let mut out = Findings::default();
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
    // Targets one by one, so a broken target cannot hide the ones after it; they are
    // taken out of the tree so the whole-config pass does not parse them again.
    let mut broken = BTreeSet::new();
    let mut typed_targets = None;
    let targets = root.get_mut("providers").and_then(|p| p.get_mut("targets"));
    if let Some(Value::Sequence(targets)) = targets {
        let items = std::mem::take(targets);
        let mut typed = Vec::with_capacity(items.len());
        for (i, mut t) in items.into_iter().enumerate() {
            let base = format!("providers.targets[{i}]");
            match shape::check::<TargetSpec>(&mut t, &base, &mut out) {
                Some(spec) => typed.push(spec),
                None => {
                    broken.insert(i);
                    typed.push(placeholder_target());
                }
            }
        }
        typed_targets = Some(typed);
    }
    let mut spec = shape::check::<ConfigSpec>(&mut root, "", &mut out);
    drop(root);
    if let (Some(spec), Some(targets)) = (&mut spec, typed_targets) {
        spec.providers.targets = targets;
    }
    if let Some(spec) = &spec {
        rules::check(spec, &broken, &mut out);
        policies::check(spec, &mut out);
    }
    (spec, out.diagnostics)
}

/// Stands in for a target that is not even a mapping (already reported), so that the
/// rest of the config can still be checked.
fn placeholder_target() -> TargetSpec {
    TargetSpec {
        provider: ProviderId {
            kind: ProviderKind::Mock,
            ..ProviderId::default()
        },
        ..TargetSpec::default()
    }
}

/// A file after parsing. Its positioned tree is built on first use: a valid file never
/// needs one.
struct Parsed<'a> {
    text: &'a str,
    tree: OnceCell<Option<Tree>>,
    value: Option<Value>,
    diagnostics: Vec<Diagnostic>,
}

impl Parsed<'_> {
    fn tree(&self) -> Option<&Tree> {
        // A file serde_yaml parsed but the span parser does not: positions are lost for
        // it, the findings are not.
        self.tree
            .get_or_init(|| span::parse(self.text).ok())
            .as_ref()
    }
}

/// Validates `files` layered in order: one [`Layer`] per prefix (the gateway serves each
/// prefix as a configuration of its own). Diagnostics name their file when there are
/// several.
pub fn check_layers(files: &[SourceFile]) -> Vec<Layer> {
    let layered = files.len() > 1;
    let mut parsed: Vec<Parsed> = files.iter().map(|f| parse_file(f, layered)).collect();
    let mut values: Vec<Option<Value>> = parsed.iter_mut().map(|p| p.value.take()).collect();
    let mut layers = Vec::with_capacity(files.len());
    let mut parse_errors: Vec<Diagnostic> = Vec::new();
    let mut merged: Option<Value> = None;
    for (k, value) in values.iter_mut().enumerate() {
        if let Some(p) = parsed.get(k) {
            parse_errors.extend(p.diagnostics.iter().cloned());
        }
        let Some(value) = value.take().filter(|_| parse_errors.is_empty()) else {
            layers.push(Layer {
                spec: None,
                summary: None,
                diagnostics: parse_errors.clone(),
            });
            continue;
        };
        let value = match merged.take() {
            None => value,
            Some(mut base) => {
                layer::merge(&mut base, value);
                base
            }
        };
        let summary = Summary::of(&value);
        // The merged value is needed again as the base of the next layer, and to match
        // targets by id when placing findings in layered files.
        let keep = (layered || k + 1 < files.len()).then(|| value.clone());
        let (spec, mut diagnostics) = validate_owned(value);
        let so_far = parsed.get(..=k).unwrap_or_default();
        for d in &mut diagnostics {
            place(d, files, so_far, keep.as_ref().filter(|_| layered));
        }
        sort(&mut diagnostics, files);
        layers.push(Layer {
            spec,
            summary: Some(summary),
            diagnostics,
        });
        merged = keep;
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
fn place(d: &mut Diagnostic, files: &[SourceFile], parsed: &[Parsed], merged: Option<&Value>) {
    let layered = files.len() > 1;
    let mut best: Option<(usize, span::Located)> = None;
    for (j, p) in parsed.iter().enumerate().rev() {
        let Some(tree) = p.tree() else { continue };
        let found = tree.locate(&d.path, d.anchor, merged);
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
        d.line = Some(found.pos.line);
        d.column = Some(found.pos.column);
        if layered {
            d.file = files.get(j).map(|f| f.path.clone());
        }
    }
}

fn parse_file(file: &SourceFile, layered: bool) -> Parsed<'_> {
    let value = match serde_yaml::from_str::<Value>(&file.text) {
        Ok(value) => {
            return Parsed {
                text: &file.text,
                tree: OnceCell::new(),
                value: Some(value),
                diagnostics: Vec::new(),
            }
        }
        Err(e) => e,
    };
    let tree = span::parse(&file.text);
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
        _ => vec![syntax_error(&value, tree.as_ref(), &file.text)],
    };
    if layered {
        for d in &mut diagnostics {
            d.file = Some(file.path.clone());
        }
    }
    Parsed {
        text: &file.text,
        tree: OnceCell::from(tree.ok()),
        value: None,
        diagnostics,
    }
}

fn syntax_error(
    e: &serde_yaml::Error,
    tree: Result<&Tree, &span::SyntaxError>,
    text: &str,
) -> Diagnostic {
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
    // libyaml ends the stream on a line of its own: an error there, in a file without a
    // final line break, would point one line past the last.
    let pos = pos.min(end_of(text));
    Diagnostic::error(
        code::YAML_SYNTAX,
        "",
        format!("invalid YAML: {}", strip_locations(&e.to_string())),
    )
    .with_suggestion("fix the YAML syntax at the position shown (indentation, quotes, brackets)")
    .at(pos.line, pos.column)
}

/// The position just after the last character, counting line breaks as libyaml does.
fn end_of(text: &str) -> Pos {
    let mut end = Pos::START;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                end.line += 1;
                end.column = 1;
            }
            _ => end.column += 1,
        }
    }
    end
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
