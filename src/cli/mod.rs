//! The command line: clap definitions and dispatch. Each subcommand resolves its
//! arguments here and calls into the domain modules; only `cli/` writes to the terminal.

pub mod gateway;
pub mod gateway_key;
pub mod generate;
pub mod policy;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit::ExitStatus;

/// kt — the Keeptrusts AI governance gateway.
///
/// Point any OpenAI SDK at `http://localhost:41002/v1`; kt checks every request against a
/// policy chain, routes it to the configured provider and records the decision.
#[derive(Debug, Parser)]
#[command(name = "kt", version, about, long_about, propagate_version = true)]
#[command(
    after_help = "Examples:\n  kt gateway run\n  kt chat \"Hello\"\n  kt policy lint --file policy-config.yaml\n  kt events tail --follow"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the governance gateway.
    Gateway(GatewayArgs),
    /// Validate policy configuration files.
    Policy(policy::PolicyArgs),
    /// Read the events the gateway recorded.
    Events(EventsArgs),
    /// Create, list and revoke gateway keys.
    GatewayKey(GatewayKeyArgs),
    /// Send a governed prompt through a running gateway.
    Chat(ChatArgs),
    /// Write a starter policy-config.yaml.
    Init(InitArgs),
    /// Generate shell completions and man pages (for packagers).
    #[command(hide = true)]
    Generate(generate::GenerateArgs),
}

/// Options shared by every command that touches the store.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// SQLite file for keys and events [default: $KT_HOME/kt.db, KT_HOME defaulting to ~/.keeptrusts]
    #[arg(long, env = crate::env::KT_DB, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

impl DbArgs {
    /// `--db`, else `$KT_HOME/kt.db`, else `~/.keeptrusts/kt.db`.
    pub fn path(&self) -> PathBuf {
        if let Some(p) = &self.db {
            return p.clone();
        }
        let home = std::env::var_os(crate::env::KT_HOME)
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os(crate::env::HOME).map(|h| PathBuf::from(h).join(".keeptrusts"))
            })
            .unwrap_or_else(|| PathBuf::from(".keeptrusts"));
        home.join("kt.db")
    }
}

#[derive(Debug, Args)]
pub struct GatewayArgs {
    #[command(subcommand)]
    pub command: GatewayCommand,
}

#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Serve the OpenAI-compatible API with the policy chain in front of every call.
    #[command(
        after_help = "Examples:\n  kt gateway run\n  kt gateway run --policy-config policy-config.yaml --port 41002\n  kt gateway run --listen 0.0.0.0:8080 --policy-config base.yaml --policy-config team.yaml"
    )]
    Run(gateway::RunArgs),
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub command: EventsCommand,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Show recent events, and new ones as they arrive with --follow.
    Tail(TailArgs),
    /// Export events to JSON or CSV.
    Export(ExportArgs),
    /// Verify the hash chain of an immutable audit log.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Keep running and print new events as they are recorded
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only events newer than this (5m, 1h, 7d or an RFC 3339 time)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// How many recent events to show
    #[arg(long, short = 'n', default_value_t = 50)]
    pub limit: u32,
    /// Only events with this verdict
    #[arg(long, value_parser = ["allow", "block", "redact", "flag"])]
    pub verdict: Option<String>,
    /// Only events where this policy decided something
    #[arg(long, value_name = "NAME")]
    pub policy: Option<String>,
    /// Only events for this model
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Only events made with this gateway key (name)
    #[arg(long, value_name = "NAME")]
    pub key: Option<String>,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
    /// Output format
    #[arg(long, value_parser = ["line", "detailed"], default_value = "line")]
    pub format: String,
    /// Read from a remote gateway's /v1/events instead of the local database
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Start of the range (5m, 1h, 7d or an RFC 3339 time)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// End of the range (RFC 3339 time)
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Output format
    #[arg(long, value_parser = ["json", "csv"], default_value = "json")]
    pub format: String,
    /// Output file (default: standard output)
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub db: DbArgs,
}

#[derive(Debug, Args)]
pub struct GatewayKeyArgs {
    #[command(subcommand)]
    pub command: GatewayKeyCommand,
}

#[derive(Debug, Subcommand)]
pub enum GatewayKeyCommand {
    /// Create a key (shown once; only its hash is stored).
    Create(gateway_key::KeyCreateArgs),
    /// List keys.
    List(gateway_key::KeyListArgs),
    /// Revoke a key by name or prefix.
    Revoke(gateway_key::KeyRevokeArgs),
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The prompt (read from standard input when piped; interactive when omitted on a terminal)
    pub prompt: Option<String>,
    /// Gateway base URL
    #[arg(long, env = crate::env::KT_GATEWAY_URL, default_value = "http://127.0.0.1:41002/v1")]
    pub url: String,
    /// Model to ask for
    #[arg(long, short = 'm', default_value = "gpt-4o")]
    pub model: String,
    /// A system message
    #[arg(long)]
    pub system: Option<String>,
    /// Wait for the whole answer instead of streaming it
    #[arg(long)]
    pub no_stream: bool,
    /// Print the raw JSON response
    #[arg(long)]
    pub json: bool,
    /// API key to send (a gateway key or a provider key)
    #[arg(long, env = "KT_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the config
    #[arg(long, short = 'o', default_value = "policy-config.yaml")]
    pub output: PathBuf,
    /// Accept the defaults without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Overwrite an existing file
    #[arg(long)]
    pub force: bool,
}

/// Parses the arguments and runs the command.
pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Gateway(GatewayArgs {
            command: GatewayCommand::Run(args),
        }) => gateway::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Policy(args) => policy::run(args),
        Command::Events(_) => not_implemented("kt events", 8),
        Command::GatewayKey(GatewayKeyArgs { command }) => gateway_key::run(command),
        Command::Chat(_) => not_implemented("kt chat", 8),
        Command::Init(_) => not_implemented("kt init", 8),
    }
}

#[expect(clippy::print_stderr, reason = "cli/ owns the terminal")]
fn not_implemented(what: &str, issue: u32) -> anyhow::Result<ExitStatus> {
    eprintln!("error: `{what}` is not implemented yet (tracked in issue #{issue})");
    Ok(ExitStatus::Error)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        super::Cli::command().debug_assert();
    }
}
