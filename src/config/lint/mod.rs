//! `kt policy lint`: runs the shared validation pass (`config::validate`) over files and
//! directories and turns the findings into a report; `render` prints it as text, JSON or
//! GitHub annotations. Nothing here decides what is valid: that is `validate`'s job, so
//! lint and `kt gateway run` can never disagree.

pub mod render;
pub mod span;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::diagnostic::{Diagnostic, Severity};
use super::validate::{self, SourceFile};

/// A file or directory that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    #[error("failed to read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no `*.yaml` or `*.yml` files in `{}`", path.display())]
    EmptyDirectory { path: PathBuf },
}

/// `pack.name` and `pack.version`, as far as they could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackInfo {
    pub name: String,
    pub version: Option<String>,
}

/// The result of linting one configuration (one file, or several layered).
#[derive(Debug, Clone)]
pub struct LintReport {
    pub files: Vec<PathBuf>,
    pub pack: Option<PackInfo>,
    pub chain: Vec<String>,
    /// Errors and warnings, in file order then by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl LintReport {
    /// The files as the user named them: `a.yaml` or `base.yaml + team.yaml`.
    pub fn name(&self) -> String {
        self.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(" + ")
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }

    pub fn is_valid(&self) -> bool {
        self.errors().next().is_none()
    }

    /// Distinct policies in the chain.
    pub fn policy_count(&self) -> usize {
        let mut seen: Vec<&str> = Vec::new();
        for name in &self.chain {
            if !seen.contains(&name.as_str()) {
                seen.push(name);
            }
        }
        seen.len()
    }

    /// The file a finding is in: its own, or the only one.
    pub fn file_of<'a>(&'a self, d: &'a Diagnostic) -> Option<&'a Path> {
        d.file
            .as_deref()
            .or_else(|| self.files.last().map(PathBuf::as_path))
    }
}

/// Groups `--file` arguments into configurations: the files named directly are layered
/// into one, in order; every `*.yaml`/`*.yml` in a named directory is a configuration of
/// its own (sorted by name).
pub fn units(paths: &[PathBuf]) -> Result<Vec<Vec<PathBuf>>, LintError> {
    let mut units: Vec<Vec<PathBuf>> = Vec::new();
    let mut layered_at: Option<usize> = None;
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            let entries = std::fs::read_dir(path).map_err(|source| LintError::Read {
                path: path.clone(),
                source,
            })?;
            for entry in entries {
                let entry = entry.map_err(|source| LintError::Read {
                    path: path.clone(),
                    source,
                })?;
                let p = entry.path();
                let is_yaml = p.extension().is_some_and(|e| e == "yaml" || e == "yml");
                if is_yaml && p.is_file() {
                    found.push(p);
                }
            }
            if found.is_empty() {
                return Err(LintError::EmptyDirectory { path: path.clone() });
            }
            found.sort();
            units.extend(found.into_iter().map(|p| vec![p]));
        } else {
            match layered_at.and_then(|i| units.get_mut(i)) {
                Some(unit) => unit.push(path.clone()),
                None => {
                    layered_at = Some(units.len());
                    units.push(vec![path.clone()]);
                }
            }
        }
    }
    Ok(units)
}

/// Lints one configuration: `files` layered in order. With `strict`, warnings count as
/// errors.
pub fn lint(files: &[PathBuf], strict: bool) -> Result<LintReport, LintError> {
    let mut sources = Vec::with_capacity(files.len());
    for path in files {
        let text = std::fs::read_to_string(path).map_err(|source| LintError::Read {
            path: path.clone(),
            source,
        })?;
        sources.push(SourceFile {
            path: path.clone(),
            text,
        });
    }
    Ok(lint_sources(&sources, strict))
}

/// Lints texts already read (the same pass as [`lint`]).
pub fn lint_sources(sources: &[SourceFile], strict: bool) -> LintReport {
    let layers = validate::check_layers(sources);
    // Every layer is a configuration the gateway would serve, so findings of every layer
    // count; the same finding in several layers is shown once.
    let mut seen: HashSet<&Diagnostic> = HashSet::new();
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    for d in layers.iter().flat_map(|l| &l.diagnostics) {
        if seen.insert(d) {
            diagnostics.push(d.clone());
        }
    }
    if strict {
        for d in &mut diagnostics {
            d.severity = Severity::Error;
        }
    }
    validate::sort(&mut diagnostics, sources);
    let summary = layers
        .last()
        .and_then(|l| l.summary.clone())
        .unwrap_or_default();
    LintReport {
        files: sources.iter().map(|s| s.path.clone()).collect(),
        pack: summary.pack_name.map(|name| PackInfo {
            name,
            version: summary.pack_version,
        }),
        chain: summary.chain,
        diagnostics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, text: &str) -> SourceFile {
        SourceFile {
            path: PathBuf::from(name),
            text: text.to_string(),
        }
    }

    #[test]
    fn a_valid_config_reports_pack_and_chain() {
        let r = lint_sources(
            &[source(
                "a.yaml",
                "pack: {name: p, version: '2'}\nproviders:\n  targets: [{id: m, provider: mock, model: m}]\npolicies:\n  chain: [audit-logger, audit-logger]\n",
            )],
            false,
        );
        assert_eq!(
            r.pack,
            Some(PackInfo {
                name: "p".into(),
                version: Some("2".into())
            })
        );
        assert_eq!(r.policy_count(), 1);
        assert!(r.is_valid(), "{:?}", r.diagnostics);
        assert_eq!(r.warnings().count(), 1);
        let strict = lint_sources(
            &[source(
                "a.yaml",
                "pack: {name: p}\nproviders:\n  targets: [{id: m, provider: mock, model: m}]\n",
            )],
            true,
        );
        assert!(!strict.is_valid());
        assert_eq!(strict.diagnostics[0].code, "W003");
    }

    #[test]
    fn layered_findings_name_the_file_that_holds_them() {
        let base = source(
            "base.yaml",
            "pack: {name: base}\nproviders:\n  targets:\n    - {id: a, provider: mock, model: m}\npolicies:\n  chain: [audit-logger]\n",
        );
        let team = source(
            "team.yaml",
            "providers:\n  targets:\n    - id: b\n      provider: openai\n      model: m\n      base_url: 'not a url'\n",
        );
        let r = lint_sources(&[base, team], false);
        let found: Vec<(String, Option<PathBuf>, Option<usize>)> = r
            .diagnostics
            .iter()
            .map(|d| (d.path.clone(), d.file.clone(), d.line))
            .collect();
        assert_eq!(
            found,
            vec![(
                "providers.targets[1].base_url".to_string(),
                Some(PathBuf::from("team.yaml")),
                Some(6)
            )]
        );
        assert_eq!(r.name(), "base.yaml + team.yaml");
    }

    #[test]
    fn directories_are_linted_file_by_file_and_named_files_layer() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b.yaml", "a.yml", "notes.txt"] {
            std::fs::write(dir.path().join(f), "pack: {name: x}\n").unwrap();
        }
        let files = vec![
            PathBuf::from("base.yaml"),
            dir.path().to_path_buf(),
            PathBuf::from("team.yaml"),
        ];
        let u = units(&files).unwrap();
        assert_eq!(
            u,
            vec![
                vec![PathBuf::from("base.yaml"), PathBuf::from("team.yaml")],
                vec![dir.path().join("a.yml")],
                vec![dir.path().join("b.yaml")],
            ]
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            units(&[empty.path().to_path_buf()]),
            Err(LintError::EmptyDirectory { .. })
        ));
    }
}
