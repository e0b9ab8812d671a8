//! `kt chat`: a governed prompt through a running gateway. One-off (argument or piped
//! standard input) or, on a terminal with no prompt, an interactive conversation. Tokens
//! stream to standard output as they arrive; a spinner on standard error (terminals only)
//! until the first one. A policy block prints `blocked by <policy>: <reason>` and exits 3.

mod turn;

use std::io::{IsTerminal, Read, Write};

use clap::Args;
use serde_json::{json, Value};

use self::turn::{Client, Failure, Turn};
use super::hint;
use crate::exit::ExitStatus;

pub const EXAMPLES: &str = "Examples:
  kt chat \"What does a policy chain do?\"
  kt chat -m gpt-4o-mini --system \"Answer in one line\" \"Why is the sky blue?\"
  git diff | kt chat --system \"Review this change\"
  kt chat --json \"Hello\" | jq .usage
  kt chat                                 an interactive conversation (/exit to leave)
  KT_GATEWAY_URL=https://gw.example.com/v1 kt chat --api-key \"$KT_GATEWAY_KEY\" \"Hello\"

Exit status: 0 answered, 1 failed (gateway unreachable, HTTP error), 3 blocked by a policy.";

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
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Wait for the whole answer instead of streaming it
    #[arg(long)]
    pub no_stream: bool,
    /// Print the gateway's raw JSON response (implies --no-stream)
    #[arg(long)]
    pub json: bool,
    /// API key to send (a gateway key or a provider key)
    #[arg(long, env = crate::env::KT_API_KEY, hide_env_values = true, value_name = "KEY")]
    pub api_key: Option<String>,
}

pub fn run(args: ChatArgs) -> anyhow::Result<ExitStatus> {
    let ChatArgs {
        prompt,
        url,
        model,
        system,
        no_stream,
        json,
        api_key,
    } = args;
    let client = Client::new(&url, model, api_key, !no_stream && !json, json);
    let mut messages = Vec::new();
    if let Some(s) = system {
        messages.push(json!({"role": "system", "content": s}));
    }
    let stdin = std::io::stdin();
    let prompt = match prompt {
        Some(p) if p != "-" => p,
        Some(_) => read_stdin(&mut stdin.lock())?,
        None if !stdin.is_terminal() => read_stdin(&mut stdin.lock())?,
        None => return interactive(&client, messages),
    };
    if prompt.trim().is_empty() {
        hint::print(
            &anyhow::anyhow!("no prompt given"),
            Some("pass it as an argument (`kt chat \"Hello\"`) or on standard input"),
        );
        return Ok(ExitStatus::Failure);
    }
    // A piped prompt ends with the newline of its last line; that is not part of it.
    messages.push(json!({"role": "user", "content": prompt.trim_end()}));
    let mut out = std::io::stdout().lock();
    Ok(match client.send(&messages, &mut out) {
        Ok(Turn::Answer(_)) => ExitStatus::Success,
        Ok(Turn::Blocked { policy, message }) => {
            blocked(&policy, &message);
            ExitStatus::Blocked
        }
        Err(f) => failed(f)?,
    })
}

fn read_stdin(r: &mut impl Read) -> anyhow::Result<String> {
    let mut s = String::new();
    r.read_to_string(&mut s).map_err(|e| {
        anyhow::Error::new(e).context("failed to read the prompt from standard input")
    })?;
    Ok(s)
}

#[expect(clippy::print_stderr, reason = "cli/ owns the terminal")]
fn blocked(policy: &str, message: &str) {
    eprintln!("blocked by {policy}: {message}");
}

/// Prints a failure; a broken standard output is passed up (it exits 0 in `main`).
fn failed(f: Failure) -> anyhow::Result<ExitStatus> {
    if f.is_broken_pipe() {
        return Err(f.err);
    }
    hint::print(&f.err, f.hint.as_deref());
    Ok(ExitStatus::Failure)
}

/// The conversation: each turn sends the whole history so far.
#[expect(clippy::print_stderr, reason = "cli/ owns the terminal")]
fn interactive(client: &Client, system: Vec<Value>) -> anyhow::Result<ExitStatus> {
    if !std::io::stderr().is_terminal() {
        hint::print(
            &anyhow::anyhow!("no prompt given"),
            Some("pass it as an argument (`kt chat \"Hello\"`) or on standard input"),
        );
        return Ok(ExitStatus::Failure);
    }
    eprintln!(
        "kt chat with {} via {} — /exit to leave, /clear to start over",
        client.model(),
        client.url()
    );
    let mut messages = system.clone();
    let mut history = dialoguer::BasicHistory::new()
        .max_entries(200)
        .no_duplicates(true);
    let theme = dialoguer::theme::ColorfulTheme::default();
    loop {
        let line = dialoguer::Input::<String>::with_theme(&theme)
            .with_prompt("you")
            .allow_empty(true)
            .history_with(&mut history)
            .interact_text();
        let line = match line {
            Ok(l) => l,
            Err(dialoguer::Error::IO(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(anyhow::Error::new(e).context("failed to read from the terminal")),
        };
        let text = line.trim();
        match text {
            "" => continue,
            "/exit" | "/quit" => break,
            "/clear" => {
                messages = system.clone();
                eprintln!("(conversation cleared)");
                continue;
            }
            _ => {}
        }
        messages.push(json!({"role": "user", "content": text}));
        let mut out = std::io::stdout().lock();
        match client.send(&messages, &mut out) {
            Ok(Turn::Answer(answer)) => {
                messages.push(json!({"role": "assistant", "content": answer}));
            }
            Ok(Turn::Blocked { policy, message }) => {
                // The blocked prompt is not part of the conversation.
                messages.pop();
                blocked(&policy, &message);
            }
            Err(f) => {
                messages.pop();
                failed(f)?;
            }
        }
        writeln!(out)?;
    }
    Ok(ExitStatus::Success)
}
