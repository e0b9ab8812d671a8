//! `kt events tail | export | verify`: reading what the gateway recorded, from the SQLite
//! file directly (a second process beside the gateway) or from a remote gateway's
//! `/v1/events`. Queries live in `store::query`; this module resolves flags and prints.

mod export;
mod remote;
mod render;
mod tail;
mod verify;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::DbArgs;
use crate::exit::ExitStatus;
use crate::store::query::Filter;

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    pub command: EventsCommand,
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Show recent events, and new ones as they arrive with --follow.
    #[command(after_help = "Examples:
  kt events tail                          the last 50 events
  kt events tail --follow                 and every new one as the gateway records it
  kt events tail -f --verdict block       only blocked requests
  kt events tail --since 1h --policy pii-detector --format detailed
  kt events tail --json | jq .latency_ms  one JSON object per line
  kt events tail -f --url https://gw.example.com --admin-token \"$KT_ADMIN_TOKEN\"")]
    Tail(TailArgs),
    /// Export events to JSON or CSV.
    #[command(after_help = "Examples:
  kt events export --since 7d --output last-week.json
  kt events export --since 2026-11-01T00:00:00Z --until 2026-12-01T00:00:00Z --format csv -o november.csv
  kt events export --verdict block --format csv | column -s, -t")]
    Export(ExportArgs),
    /// Verify the hash chain of an immutable audit log.
    ///
    /// Rows written while audit-logger has `immutable: true` are chained with SHA-256: each
    /// row's hash covers its content and the previous row's hash. Verification recomputes
    /// every link and reports the first one that breaks: an edited row, deleted rows inside
    /// the chain, or deleted newest rows. Exit status 1 when the chain is broken.
    #[command(after_help = "Examples:
  kt events verify
  kt events verify --db /var/lib/kt/kt.db --json")]
    Verify(VerifyArgs),
}

/// Filters shared by `tail` and `export`.
#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    /// Only events newer than this (5m, 1h, 7d or an RFC 3339 time)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only events with this verdict
    #[arg(long, value_parser = ["allow", "block", "redact", "flag"])]
    pub verdict: Option<String>,
    /// Only events this policy blocked, redacted or flagged
    #[arg(long, value_name = "NAME")]
    pub policy: Option<String>,
    /// Only events for this model (requested or served)
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Only events made with this gateway key (its name)
    #[arg(long, value_name = "NAME")]
    pub key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TailFormat {
    /// One aligned line per event
    Line,
    /// Every field, the policy chain trace and the routing decision
    Detailed,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Keep running and print new events as they are recorded (Ctrl-C to stop)
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// How many recent events to show first
    #[arg(long, short = 'n', default_value_t = 50)]
    pub limit: u32,
    /// One JSON object per line (the event's stored fields)
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "line")]
    pub format: TailFormat,
    /// Read a remote gateway's /v1/events instead of the local database
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Admin token for --url
    #[arg(long, env = crate::env::KT_ADMIN_TOKEN, hide_env_values = true, value_name = "TOKEN")]
    pub admin_token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A JSON array of events
    Json,
    /// A header row and one row per event (nested fields as JSON text)
    Csv,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only events before this (5m, 1h, 7d ago or an RFC 3339 time)
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value = "json")]
    pub format: ExportFormat,
    /// Output file (default: standard output)
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: EventsArgs) -> anyhow::Result<ExitStatus> {
    match args.command {
        EventsCommand::Tail(a) => tail::run(a),
        EventsCommand::Export(a) => export::run(a),
        EventsCommand::Verify(a) => verify::run(a),
    }
}

impl FilterArgs {
    /// The store filter, with relative times resolved against `now_ms`.
    fn resolve(&self, until: Option<&str>, now_ms: i64) -> anyhow::Result<Filter> {
        let FilterArgs {
            since,
            verdict,
            policy,
            model,
            key,
        } = self;
        let when = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<i64>> {
            v.as_deref()
                .map(|s| parse_when(s, now_ms).with_context(|| format!("invalid `{flag}`")))
                .transpose()
        };
        Ok(Filter {
            since_ms: when("--since", since)?,
            until_ms: when("--until", &until.map(str::to_string))?,
            verdict: verdict.clone(),
            policy: policy.clone(),
            model: model.clone(),
            key: key.clone(),
        })
    }
}

/// `5m`, `1h`, `7d` (that long before `now_ms`), an RFC 3339 time, or a date (midnight
/// UTC), as Unix milliseconds.
pub fn parse_when(s: &str, now_ms: i64) -> anyhow::Result<i64> {
    let s = s.trim();
    if let Ok(d) = humantime::parse_duration(s) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        return Ok(now_ms.saturating_sub(ms));
    }
    let text = if s.len() == 10 && s.as_bytes().get(4) == Some(&b'-') {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    let t = humantime::parse_rfc3339_weak(&text).map_err(|_| {
        anyhow::anyhow!(
            "`{s}` is neither a duration (5m, 1h, 7d) nor an RFC 3339 time (2026-11-30T12:00:00Z)"
        )
    })?;
    let ms = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    };
    Ok(ms)
}

/// Opens an existing event database for reading; a missing file is an error with a hint
/// (reading must not create an empty database somewhere unexpected).
fn open_existing(db: &DbArgs) -> Result<rusqlite::Connection, ExitStatus> {
    let path = db.path();
    if !path.exists() {
        super::hint::print(
            &anyhow::anyhow!("no event database at `{}`", path.display()),
            Some(
                "start the gateway with `kt gateway run`, or point --db / KT_DB / KT_HOME at its database",
            ),
        );
        return Err(ExitStatus::Failure);
    }
    open(&path).map_err(|e| {
        super::hint::print(&e, None);
        ExitStatus::Error
    })
}

fn open(path: &std::path::Path) -> anyhow::Result<rusqlite::Connection> {
    crate::store::open(path)
        .with_context(|| format!("failed to read events from `{}`", path.display()))
}

/// Whether `NO_COLOR` asks for plain output (set and not empty, per no-color.org).
fn no_color() -> bool {
    std::env::var_os(crate::env::NO_COLOR).is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::parse_when;

    #[test]
    fn relative_and_absolute_times() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_when("5m", now).unwrap(), now - 300_000);
        assert_eq!(parse_when("1h", now).unwrap(), now - 3_600_000);
        assert_eq!(parse_when("7d", now).unwrap(), now - 7 * 86_400_000);
        assert_eq!(
            parse_when("2026-11-30T12:00:00Z", now).unwrap(),
            1_796_040_000_000
        );
        assert_eq!(parse_when("2026-11-30", now).unwrap(), 1_795_996_800_000);
        let err = parse_when("yesterday", now).unwrap_err().to_string();
        assert!(err.contains("`yesterday`"), "{err}");
    }
}
