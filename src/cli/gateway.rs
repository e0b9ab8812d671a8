//! `kt gateway run`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::DbArgs;
use crate::config::{ConfigError, ConfigSet, Secret};
use crate::exit::ExitStatus;
use crate::gateway::{GatewayOptions, UpstreamOverride};
use crate::policy::chain::FailMode;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Address to serve on (port 0 picks a free port)
    #[arg(long, env = crate::env::KT_LISTEN, value_name = "HOST:PORT", default_value = "127.0.0.1:41002", conflicts_with = "port")]
    pub listen: SocketAddr,
    /// Shorthand for --listen 127.0.0.1:<PORT>
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Policy config file; repeat to layer files (later over earlier)
    #[arg(long, env = crate::env::KT_POLICY_CONFIG, value_name = "PATH", value_delimiter = ',')]
    pub policy_config: Vec<PathBuf>,
    /// What happens when a policy itself errors
    #[arg(long, value_enum, default_value = "block")]
    pub fail_mode: FailMode,
    /// Model requests (and open streams) in flight at once; more wait up to 5 s in a
    /// bounded queue, then get 503 [default: sized to the machine]
    #[arg(long, value_name = "N")]
    pub max_concurrency: Option<usize>,
    /// Debug only: send every target to this OpenAI-format base URL
    #[arg(long, env = crate::env::KT_UPSTREAM, value_name = "URL")]
    pub upstream: Option<String>,
    /// Debug only: API key for --upstream
    #[arg(long, env = crate::env::KT_UPSTREAM_API_KEY, hide_env_values = true, value_name = "KEY")]
    pub upstream_api_key: Option<String>,
    /// Debug only: header carrying the --upstream key
    #[arg(long, env = crate::env::KT_UPSTREAM_API_KEY_HEADER, value_name = "HEADER")]
    pub upstream_api_key_header: Option<String>,
    /// Debug only: prefix before the --upstream key
    #[arg(long, env = crate::env::KT_UPSTREAM_API_KEY_PREFIX, value_name = "PREFIX")]
    pub upstream_api_key_prefix: Option<String>,
    /// Token for the admin endpoints (GET /v1/events, /keeptrusts/*); without one, a token
    /// is created on first run, printed once and stored hashed
    #[arg(long, env = crate::env::KT_ADMIN_TOKEN, hide_env_values = true, value_name = "TOKEN")]
    pub admin_token: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
}

#[expect(clippy::print_stderr, reason = "cli/ owns the terminal")]
pub fn run(args: RunArgs) -> anyhow::Result<ExitStatus> {
    let RunArgs {
        listen,
        port,
        policy_config,
        fail_mode,
        max_concurrency,
        upstream,
        upstream_api_key,
        upstream_api_key_header,
        upstream_api_key_prefix,
        admin_token,
        db,
    } = args;
    crate::logging::init_from_env();
    if !crate::gateway::supervisor::is_worker() {
        // The supervisor only runs and restarts the server process (this command again,
        // as its child), which loads the configuration and reports its errors.
        return crate::gateway::supervisor::supervise(announce)
            .context("the gateway stopped with an error");
    }
    let listen = match port {
        Some(p) => SocketAddr::from(([127, 0, 0, 1], p)),
        None => listen,
    };
    let (configs, warnings) = match ConfigSet::load(&policy_config) {
        Ok(x) => x,
        Err(ConfigError::Invalid { path, diagnostics }) => {
            eprintln!("error: `{}` is not a valid policy config", path.display());
            for d in &diagnostics {
                eprintln!("{d}");
            }
            eprintln!(
                "hint: run `kt policy lint --file {}` for every finding",
                path.display()
            );
            return Ok(ExitStatus::Failure);
        }
        Err(e) => return Err(e).context("failed to load the policy config"),
    };
    for w in &warnings {
        eprintln!("{w}");
    }
    let db = db.path();
    let max_concurrency = max_concurrency.unwrap_or_else(default_concurrency);
    let upstream = upstream.map(|url| UpstreamOverride {
        url,
        api_key: upstream_api_key.map(Secret::new),
        api_key_header: upstream_api_key_header,
        api_key_prefix: upstream_api_key_prefix,
    });
    let cfg = &configs.default;
    if configs.is_sandbox {
        eprintln!("kt: no --policy-config given: running the built-in sandbox config");
        eprintln!(
            "kt:   provider: built-in mock (offline, no API key); models: {}",
            crate::router::catalog(cfg)
                .into_iter()
                .map(|(m, _)| m)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    eprintln!(
        "kt: configuration `{}` ({}), chain: {}",
        cfg.name,
        cfg.source,
        if cfg.chain.is_empty() {
            "(empty)".to_string()
        } else {
            cfg.chain.join(" -> ")
        }
    );
    eprintln!("kt: events: {}", db.display());
    let (admin, created) = crate::gateway::auth::admin_token(&db, admin_token.as_deref())
        .context("failed to set up the admin token")?;
    if let Some(token) = created {
        eprintln!("kt: admin token for GET /v1/events and /keeptrusts/* (shown once, stored hashed): {token}");
    }
    let opts = GatewayOptions {
        listen,
        configs,
        db,
        max_concurrency,
        fail_mode,
        upstream,
        shutdown_grace: Duration::from_secs(30),
        admin,
        policy_config: policy_config.clone(),
    };

    crate::gateway::run(opts, announce).context("the gateway stopped with an error")?;
    Ok(ExitStatus::Success)
}

/// Prints the address once the server accepts connections.
fn announce(addr: SocketAddr) {
    let mut out = std::io::stdout().lock();
    // Tests and scripts read this line to learn the port (the supervisor reads the
    // child's and prints it once).
    let _ = writeln!(out, "listening on http://{addr}");
    let _ = out.flush();
}

/// A stream holds its request slot (and worker thread) for its whole life, so size for
/// concurrent streams, not for cores. Worker threads are started on demand, so a large
/// limit costs nothing while idle.
fn default_concurrency() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    (cores * 1024).clamp(2048, 16384)
}
