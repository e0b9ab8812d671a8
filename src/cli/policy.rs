//! `kt policy lint`: validate policy-config.yaml files with the same pass `kt gateway run`
//! uses, and report every finding. Exit 0 when valid (warnings allowed), 2 when invalid,
//! 1 when a file cannot be read.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::config::lint::{self, render, LintReport};
use crate::exit::ExitStatus;

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check policy-config.yaml files and report every problem with its location.
    #[command(
        after_help = "Exit status: 0 valid (warnings allowed), 2 invalid, 1 a file could not be read.\n\nExamples:\n  kt policy lint --file policy-config.yaml\n  kt policy lint --file base.yaml --file team.yaml\n  kt policy lint --file configs/ --format github\n  kt policy lint --file policy-config.yaml --json --strict"
    )]
    Lint(LintArgs),
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// A config file or a directory of *.yaml/*.yml files (repeat to layer files)
    #[arg(long, short = 'f', value_name = "PATH", required = true)]
    pub file: Vec<PathBuf>,
    /// Print the result as JSON (same as --format json)
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: LintFormat,
    /// Treat warnings as errors
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LintFormat {
    /// Summary and findings for people (colored on a terminal)
    Text,
    /// One JSON object (an array of them for several configs)
    Json,
    /// GitHub Actions annotations
    Github,
}

pub fn run(args: PolicyArgs) -> anyhow::Result<ExitStatus> {
    match args.command {
        PolicyCommand::Lint(args) => lint(args),
    }
}

#[expect(clippy::print_stderr, reason = "cli/ owns the terminal")]
fn lint(args: LintArgs) -> anyhow::Result<ExitStatus> {
    let LintArgs {
        file,
        json,
        format,
        strict,
    } = args;
    let format = if json { LintFormat::Json } else { format };
    let reports: Result<Vec<LintReport>, lint::LintError> = lint::units(&file)
        .and_then(|units| units.iter().map(|unit| lint::lint(unit, strict)).collect());
    let reports = match reports {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                eprintln!("  caused by: {c}");
                cause = c.source();
            }
            return Ok(ExitStatus::Failure);
        }
    };
    let output = match format {
        LintFormat::Text => reports
            .iter()
            .map(render::text)
            .collect::<Vec<_>>()
            .join("\n"),
        LintFormat::Github => reports.iter().map(render::github).collect(),
        LintFormat::Json => {
            let value = match reports.as_slice() {
                [one] => render::json(one),
                many => serde_json::Value::Array(many.iter().map(render::json).collect()),
            };
            let mut s = serde_json::to_string_pretty(&value).context("failed to encode JSON")?;
            s.push('\n');
            s
        }
    };
    let mut out = anstream::stdout().lock();
    out.write_all(output.as_bytes())
        .and_then(|()| out.flush())
        .context("failed to write the report")?;
    Ok(if reports.iter().all(LintReport::is_valid) {
        ExitStatus::Success
    } else {
        ExitStatus::Error
    })
}
