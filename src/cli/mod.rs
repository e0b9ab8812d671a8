//! The command line: clap definitions and dispatch. Each subcommand resolves its
//! arguments here and calls into the domain modules; only `cli/` writes to the terminal.

pub mod chat;
pub mod events;
pub mod gateway;
pub mod gateway_key;
pub mod generate;
mod hint;
pub mod init;
pub mod policy;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit::ExitStatus;

/// `kt --version`: the version and the git commit it was built from (when built from a
/// git checkout; see build.rs).
pub const LONG_VERSION: &str = env!("KT_LONG_VERSION");

/// kt — the Keeptrusts AI governance gateway.
///
/// Point any OpenAI SDK at `http://localhost:41002/v1`; kt checks every request against a
/// policy chain, routes it to the configured provider and records the decision.
#[derive(Debug, Parser)]
#[command(
    name = "kt",
    version,
    long_version = LONG_VERSION,
    about,
    long_about,
    propagate_version = true
)]
#[command(
    after_help = "Examples:\n  kt init                                 write a starter policy-config.yaml\n  kt gateway run                          serve the built-in sandbox on 127.0.0.1:41002\n  kt chat \"Hello\"                         a governed prompt through the gateway\n  kt events tail --follow                 watch every decision as it happens\n  kt policy lint --file policy-config.yaml\n  kt events verify                        check the audit log's hash chain"
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
    Events(events::EventsArgs),
    /// Create, list and revoke gateway keys.
    GatewayKey(GatewayKeyArgs),
    /// Send a governed prompt through a running gateway.
    #[command(after_help = chat::EXAMPLES)]
    Chat(chat::ChatArgs),
    /// Write a starter policy-config.yaml.
    #[command(after_help = init::EXAMPLES)]
    Init(init::InitArgs),
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

/// Parses the arguments and runs the command.
pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Gateway(GatewayArgs {
            command: GatewayCommand::Run(args),
        }) => gateway::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Policy(args) => policy::run(args),
        Command::Events(args) => events::run(args),
        Command::GatewayKey(GatewayKeyArgs { command }) => gateway_key::run(command),
        Command::Chat(args) => chat::run(args),
        Command::Init(args) => init::run(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        super::Cli::command().debug_assert();
    }
}
