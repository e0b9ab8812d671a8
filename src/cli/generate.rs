//! `kt generate`: shell completions and man pages from the clap definition (hidden; the
//! committed files in `completions/` and `man/` come from it and a test keeps them fresh).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, CommandFactory, Subcommand};
use clap_complete::Shell;

use crate::exit::ExitStatus;

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub command: GenerateCommand,
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Write completions for a shell to standard output.
    Completions { shell: Shell },
    /// Write kt.1 and one page per subcommand into a directory.
    Man {
        #[arg(long, default_value = "man")]
        dir: PathBuf,
    },
}

pub fn run(args: GenerateArgs) -> anyhow::Result<ExitStatus> {
    match args.command {
        GenerateCommand::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut command(), "kt", &mut out);
        }
        GenerateCommand::Man { dir } => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("failed to create `{}`", dir.display()))?;
            clap_mangen::generate_to(command(), &dir)
                .with_context(|| format!("failed to write man pages to `{}`", dir.display()))?;
        }
    }
    Ok(ExitStatus::Success)
}

/// The CLI definition without the git commit in its version: the generated files are
/// committed, and must not change with every commit.
fn command() -> clap::Command {
    super::Cli::command().long_version(None::<&str>)
}

/// Completions for `shell` as a string (tests compare it with the committed files).
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command(), "kt", &mut out);
    out
}
