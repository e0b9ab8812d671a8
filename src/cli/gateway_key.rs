//! `kt gateway-key create | list | revoke`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;

use super::{DbArgs, GatewayKeyCommand};
use crate::config::ConfigSet;
use crate::exit::ExitStatus;
use crate::store::keys::{self, KeyRecord, NewKey};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  kt gateway-key create --name dev-team --configuration-id my-config --expires-in 90d\n  kt gateway-key create --name ci --configuration-id sandbox --expires-in 12h --rpm 60 --json"
)]
pub struct KeyCreateArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// A unique name for the key
    #[arg(long)]
    pub name: Option<String>,
    /// The configuration (pack.name) requests with this key run under
    #[arg(long, value_name = "PACK")]
    pub configuration_id: Option<String>,
    /// Lifetime: 90d, 12h, 30m or never
    #[arg(long, value_name = "DURATION")]
    pub expires_in: Option<String>,
    /// Team the key's requests are attributed to
    #[arg(long)]
    pub team: Option<String>,
    /// Requests per minute
    #[arg(long)]
    pub rpm: Option<u64>,
    /// Tokens per minute
    #[arg(long)]
    pub tpm: Option<u64>,
    /// Spending limit in USD (over the key's lifetime)
    #[arg(long, value_name = "USD")]
    pub budget_usd: Option<f64>,
    /// Policy config files the gateway loads, to check --configuration-id against
    #[arg(long, env = crate::env::KT_POLICY_CONFIG, value_name = "PATH", value_delimiter = ',')]
    pub policy_config: Vec<PathBuf>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct KeyListArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct KeyRevokeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The key's name or display prefix (kt_gk_…)
    pub key: String,
}

pub fn run(cmd: GatewayKeyCommand) -> anyhow::Result<ExitStatus> {
    match cmd {
        GatewayKeyCommand::Create(a) => create(a),
        GatewayKeyCommand::List(a) => list(a),
        GatewayKeyCommand::Revoke(a) => revoke(a),
    }
}

fn now_ms() -> i64 {
    crate::gateway::http::now_ms()
}

fn fmt_ms(ms: Option<i64>) -> String {
    match ms.and_then(|m| u64::try_from(m).ok()) {
        Some(m) => {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(m)).to_string()
        }
        None => "-".to_string(),
    }
}

/// `90d`, `12h`, `30m`, `2w` or `never`.
pub fn parse_expiry(s: &str) -> anyhow::Result<Option<Duration>> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let d = humantime::parse_duration(s).with_context(|| {
        format!("invalid --expires-in `{s}`: use a duration such as 90d, 12h, 30m, or `never`")
    })?;
    if d.is_zero() {
        bail!("invalid --expires-in `{s}`: the key would expire at once");
    }
    Ok(Some(d))
}

#[expect(clippy::print_stderr, reason = "cli/ owns the terminal")]
fn ask(field: &str, flag: &str, default: Option<&str>) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        eprintln!("error: missing {flag}");
        eprintln!("hint: pass {flag} (it is asked for interactively only on a terminal)");
        bail!(MissingFlag(flag.to_string()));
    }
    let mut input = dialoguer::Input::<String>::new().with_prompt(field);
    if let Some(d) = default {
        input = input.default(d.to_string());
    }
    input
        .interact_text()
        .with_context(|| format!("failed to read {field}"))
}

#[derive(Debug, thiserror::Error)]
#[error("missing {0}")]
struct MissingFlag(String);

#[expect(clippy::print_stderr, reason = "cli/ owns the terminal")]
fn create(args: KeyCreateArgs) -> anyhow::Result<ExitStatus> {
    let KeyCreateArgs {
        db,
        name,
        configuration_id,
        expires_in,
        team,
        rpm,
        tpm,
        budget_usd,
        policy_config,
        json,
    } = args;
    let prompt = |v: Option<String>, field: &str, flag: &str, default: Option<&str>| match v {
        Some(v) => Ok(v),
        None => ask(field, flag, default),
    };
    let resolved = (|| -> anyhow::Result<(String, String, String)> {
        Ok((
            prompt(name, "Key name", "--name", None)?,
            prompt(
                configuration_id,
                "Configuration id (pack.name)",
                "--configuration-id",
                Some("sandbox"),
            )?,
            prompt(
                expires_in,
                "Expires in (90d, 12h, never)",
                "--expires-in",
                Some("90d"),
            )?,
        ))
    })();
    let (name, configuration_id, expires_in) = match resolved {
        Ok(v) => v,
        Err(e) if e.downcast_ref::<MissingFlag>().is_some() => return Ok(ExitStatus::Failure),
        Err(e) => return Err(e),
    };
    if name.trim().is_empty() {
        eprintln!("error: --name must not be empty");
        return Ok(ExitStatus::Failure);
    }
    let expiry = match parse_expiry(&expires_in) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitStatus::Failure);
        }
    };
    if let Some(b) = budget_usd.filter(|b| !b.is_finite() || *b <= 0.0) {
        eprintln!("error: --budget-usd must be a positive amount, got {b}");
        return Ok(ExitStatus::Failure);
    }
    // Check the configuration against the configs the gateway loads, when we know them.
    if policy_config.is_empty() {
        if configuration_id != "sandbox" {
            eprintln!(
                "warning: cannot check configuration `{configuration_id}`: no --policy-config given; the gateway must load a config whose pack.name is `{configuration_id}`"
            );
        }
    } else {
        let (set, _) = ConfigSet::load(&policy_config).context("failed to load --policy-config")?;
        if !set.by_name.contains_key(&configuration_id) {
            let known: Vec<&str> = set.by_name.keys().map(String::as_str).collect();
            eprintln!("error: unknown configuration `{configuration_id}`");
            eprintln!("hint: the loaded configurations are: {}", known.join(", "));
            return Ok(ExitStatus::Failure);
        }
    }
    let path = db.path();
    let conn = crate::store::open(&path)
        .with_context(|| format!("failed to open `{}`", path.display()))?;
    let now = now_ms();
    let new = NewKey {
        name: name.trim().to_string(),
        configuration_id,
        team,
        expires_ms: expiry.map(|d| now + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)),
        rpm,
        tpm,
        budget_usd,
    };
    let (key, rec) = match keys::create(&conn, &new, now) {
        Ok(x) => x,
        Err(keys::CreateError::NameTaken(n)) => {
            eprintln!("error: a gateway key named `{n}` already exists");
            eprintln!(
                "hint: pick another --name, or revoke the old key with `kt gateway-key revoke {n}`"
            );
            return Ok(ExitStatus::Failure);
        }
        Err(e) => return Err(e).context("failed to create the key"),
    };
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "name": rec.name,
            "key": key,
            "prefix": rec.prefix,
            "configuration_id": rec.configuration_id,
            "team": rec.team,
            "created_at": fmt_ms(Some(rec.created_ms)),
            "expires_at": rec.expires_ms.map(|m| fmt_ms(Some(m))),
            "rpm": rec.rpm,
            "tpm": rec.tpm,
            "budget_usd": rec.budget_usd,
        });
        writeln!(out, "{v}")?;
    } else {
        eprintln!(
            "created gateway key `{}` for configuration `{}` (expires: {})",
            rec.name,
            rec.configuration_id,
            rec.expires_ms
                .map_or("never".to_string(), |m| fmt_ms(Some(m)))
        );
        writeln!(out, "{key}")?;
        eprintln!("store it now: it is shown only once (kt keeps only its hash)");
    }
    Ok(ExitStatus::Success)
}

#[expect(clippy::print_stdout, reason = "cli/ owns the terminal")]
fn list(args: KeyListArgs) -> anyhow::Result<ExitStatus> {
    let path = args.db.path();
    let conn = crate::store::open(&path)
        .with_context(|| format!("failed to open `{}`", path.display()))?;
    let records = keys::list(&conn).context("failed to list keys")?;
    let now = now_ms();
    if args.json {
        let rows: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                v["state"] = serde_json::Value::String(r.state(now).as_str().into());
                v
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(ExitStatus::Success);
    }
    let header = [
        "NAME",
        "PREFIX",
        "CONFIGURATION",
        "TEAM",
        "CREATED",
        "EXPIRES",
        "LAST USED",
        "STATE",
    ];
    let rows: Vec<[String; 8]> = records.iter().map(|r| row(r, now)).collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", line(&header.map(str::to_string)))?;
    for r in &rows {
        writeln!(out, "{}", line(r))?;
    }
    if rows.is_empty() {
        writeln!(out, "(no keys: create one with `kt gateway-key create`)")?;
    }
    Ok(ExitStatus::Success)
}

fn row(r: &KeyRecord, now: i64) -> [String; 8] {
    [
        r.name.clone(),
        format!("{}…", r.prefix),
        r.configuration_id.clone(),
        r.team.clone().unwrap_or_else(|| "-".into()),
        fmt_ms(Some(r.created_ms)),
        if r.expires_ms.is_some() {
            fmt_ms(r.expires_ms)
        } else {
            "never".into()
        },
        fmt_ms(r.last_used_ms),
        r.state(now).as_str().to_string(),
    ]
}

#[expect(clippy::print_stderr, reason = "cli/ owns the terminal")]
fn revoke(args: KeyRevokeArgs) -> anyhow::Result<ExitStatus> {
    let path = args.db.path();
    let conn = crate::store::open(&path)
        .with_context(|| format!("failed to open `{}`", path.display()))?;
    let who = args.key.trim().trim_end_matches('…');
    let matched = keys::revoke(&conn, who, now_ms()).context("failed to revoke")?;
    match matched.as_slice() {
        [] => {
            eprintln!("error: no gateway key named or prefixed `{who}`");
            eprintln!("hint: `kt gateway-key list` shows names and prefixes");
            Ok(ExitStatus::Failure)
        }
        [one] => {
            eprintln!(
                "revoked gateway key `{}` ({}…); gateways refuse it within a second",
                one.name, one.prefix
            );
            Ok(ExitStatus::Success)
        }
        many => {
            let names: Vec<&str> = many.iter().map(|r| r.name.as_str()).collect();
            eprintln!("error: `{who}` matches several keys: {}", names.join(", "));
            eprintln!("hint: revoke by name, or give a longer prefix");
            Ok(ExitStatus::Failure)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn expiry_parsing() {
        assert_eq!(super::parse_expiry("never").unwrap(), None);
        assert_eq!(
            super::parse_expiry("90d").unwrap().unwrap().as_secs(),
            90 * 86_400
        );
        assert_eq!(
            super::parse_expiry("12h").unwrap().unwrap().as_secs(),
            12 * 3600
        );
        assert!(super::parse_expiry("soon").is_err());
    }
}
