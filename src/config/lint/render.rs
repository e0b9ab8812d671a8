//! Renders lint reports: text for people (styled with ANSI codes, which the CLI's
//! `anstream` writer strips when the output is not a terminal or `NO_COLOR` is set),
//! JSON for scripts, and GitHub Actions workflow commands for CI annotations.

use anstyle::{AnsiColor, Style};
use serde_json::{json, Value};

use super::LintReport;
use crate::config::diagnostic::{Diagnostic, Severity};

const OK: Style = AnsiColor::Green.on_default().bold();
const BAD: Style = AnsiColor::Red.on_default().bold();
const WARN: Style = AnsiColor::Yellow.on_default().bold();
const ARROW: Style = AnsiColor::Blue.on_default().bold();
const HELP: Style = AnsiColor::Cyan.on_default().bold();
const BOLD: Style = Style::new().bold();

fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The text report: a summary line, then every finding.
pub fn text(report: &LintReport) -> String {
    let errors = report.errors().count();
    let warnings = report.warnings().count();
    let mut out = String::new();
    if errors == 0 {
        let note = if warnings > 0 {
            format!(" ({})", plural(warnings, "warning"))
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{} {} is valid{note}\n",
            paint(OK, "OK"),
            report.name()
        ));
        match &report.pack {
            Some(p) => match &p.version {
                Some(v) => out.push_str(&format!("Pack: {} (v{v})\n", p.name)),
                None => out.push_str(&format!("Pack: {}\n", p.name)),
            },
            None => out.push_str("Pack: (unnamed)\n"),
        }
        if report.chain.is_empty() {
            out.push_str("Chain: (empty)\n");
        } else {
            out.push_str(&format!("Chain: {}\n", report.chain.join(" -> ")));
        }
        out.push_str(&format!("Policies validated: {}\n", report.policy_count()));
    } else {
        let also = if warnings > 0 {
            format!(" and {}", plural(warnings, "warning"))
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{} {} has {}{also}\n",
            paint(BAD, "X"),
            report.name(),
            plural(errors, "error")
        ));
    }
    for d in &report.diagnostics {
        out.push('\n');
        out.push_str(&diagnostic(d));
        out.push('\n');
    }
    out
}

/// One finding, laid out as `Diagnostic`'s `Display` (what `kt gateway run` prints), with
/// style.
pub fn diagnostic(d: &Diagnostic) -> String {
    let (style, label) = match d.severity {
        Severity::Error => (BAD, "error"),
        Severity::Warning => (WARN, "warning"),
    };
    let mut out = format!(
        "{}{}\n  {} {}",
        paint(style, &format!("{label}[{}]", d.code)),
        paint(BOLD, &format!(": {}", d.message)),
        paint(ARROW, "-->"),
        d.location()
    );
    if let Some(s) = &d.suggestion {
        out.push_str(&format!("\n  {} {s}", paint(HELP, "help:")));
    }
    out
}

fn diagnostic_json(report: &LintReport, d: &Diagnostic) -> Value {
    json!({
        "code": d.code,
        "severity": d.severity,
        "path": d.path,
        "file": report.file_of(d).map(|f| f.display().to_string()),
        "line": d.line,
        "column": d.column,
        "message": d.message,
        "suggestion": d.suggestion,
    })
}

/// `{valid, file, files, pack, chain, policy_count, errors, warnings}`.
pub fn json(report: &LintReport) -> Value {
    json!({
        "valid": report.is_valid(),
        "file": report.files.last().map(|f| f.display().to_string()),
        "files": report.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "pack": report.pack.as_ref().map(|p| json!({"name": p.name, "version": p.version})),
        "chain": report.chain,
        "policy_count": report.policy_count(),
        "errors": report.errors().map(|d| diagnostic_json(report, d)).collect::<Vec<_>>(),
        "warnings": report.warnings().map(|d| diagnostic_json(report, d)).collect::<Vec<_>>(),
    })
}

/// GitHub Actions workflow commands (`::error file=…,line=…,col=…,title=…::…`), one per
/// finding, then a plain summary line for the log.
pub fn github(report: &LintReport) -> String {
    let mut out = String::new();
    for d in &report.diagnostics {
        let command = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut props = Vec::new();
        if let Some(f) = report.file_of(d) {
            props.push(format!(
                "file={}",
                escape_property(&f.display().to_string())
            ));
        }
        if let (Some(l), Some(c)) = (d.line, d.column) {
            props.push(format!("line={l},col={c}"));
        }
        props.push(format!(
            "title={}",
            escape_property(&format!("kt policy lint {}", d.code))
        ));
        let mut message = format!("{} (at `{}`)", d.message, display_path(d));
        if let Some(s) = &d.suggestion {
            message.push_str(&format!("\nhelp: {s}"));
        }
        out.push_str(&format!(
            "::{command} {}::{}\n",
            props.join(","),
            escape_data(&message)
        ));
    }
    let errors = report.errors().count();
    let warnings = report.warnings().count();
    out.push_str(&format!(
        "kt policy lint: {}: {}, {}\n",
        report.name(),
        plural(errors, "error"),
        plural(warnings, "warning")
    ));
    out
}

fn display_path(d: &Diagnostic) -> &str {
    if d.path.is_empty() {
        "<document>"
    } else {
        &d.path
    }
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::diagnostic::code;
    use crate::config::lint::PackInfo;

    fn report(diagnostics: Vec<Diagnostic>) -> LintReport {
        LintReport {
            files: vec![PathBuf::from("cfg.yaml")],
            pack: Some(PackInfo {
                name: "p".into(),
                version: Some("1.0.0".into()),
            }),
            chain: vec!["audit-logger".into()],
            diagnostics,
        }
    }

    fn plain(s: &str) -> String {
        let mut out = Vec::new();
        let mut w = anstream::StripStream::new(&mut out);
        std::io::Write::write_all(&mut w, s.as_bytes()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_summarises_valid_and_invalid_reports() {
        assert_eq!(
            plain(&text(&report(vec![]))),
            "OK cfg.yaml is valid\nPack: p (v1.0.0)\nChain: audit-logger\nPolicies validated: 1\n"
        );
        let d = Diagnostic::error(
            code::UNKNOWN_KEY,
            "pack.nmae",
            "unknown key `nmae` in `pack`",
        )
        .with_suggestion("did you mean `name`?")
        .at(2, 3);
        let w = Diagnostic::warning(code::EMPTY_CHAIN, "policies.chain", "empty");
        let out = plain(&text(&report(vec![d.clone(), w])));
        assert_eq!(
            out,
            "X cfg.yaml has 1 error and 1 warning\n\n\
             error[E002]: unknown key `nmae` in `pack`\n  --> pack.nmae (2:3)\n  help: did you mean `name`?\n\n\
             warning[W003]: empty\n  --> policies.chain\n"
        );
        // Plain text is exactly what the gateway prints.
        assert_eq!(plain(&diagnostic(&d)), d.to_string());
        assert!(text(&report(vec![])).contains("\u{1b}["));
    }

    #[test]
    fn json_has_the_documented_shape() {
        let d = Diagnostic::error(code::UNKNOWN_POLICY, "policies.chain[0]", "unknown").at(5, 7);
        let v = json(&report(vec![d]));
        assert_eq!(v["valid"], false);
        assert_eq!(v["file"], "cfg.yaml");
        assert_eq!(v["pack"]["name"], "p");
        assert_eq!(v["chain"][0], "audit-logger");
        assert_eq!(v["policy_count"], 1);
        assert_eq!(v["errors"][0]["code"], "E001");
        assert_eq!(v["errors"][0]["line"], 5);
        assert_eq!(v["errors"][0]["column"], 7);
        assert_eq!(v["errors"][0]["file"], "cfg.yaml");
        assert_eq!(v["warnings"], json!([]));
    }

    #[test]
    fn github_annotations_escape_their_fields() {
        let d = Diagnostic::error(code::INVALID_URL, "a.b", "bad: 100%\nreally")
            .with_suggestion("fix, it")
            .at(3, 4);
        let out = github(&report(vec![d]));
        assert_eq!(
            out,
            "::error file=cfg.yaml,line=3,col=4,title=kt policy lint E010::bad: 100%25%0Areally (at `a.b`)%0Ahelp: fix, it\n\
             kt policy lint: cfg.yaml: 1 error, 0 warnings\n"
        );
    }
}
