//! The gateway: the HTTP server (`conn`) and admission, routes, the chat completion path, the
//! SSE writer and the upstream transport. Only this module and `store` touch the network
//! and the disk.

pub mod admin;
pub mod admission;
pub mod auth;
pub mod chat;
pub mod choice_filter;
pub mod conn;
pub mod embeddings;
pub mod handlers;
pub mod http;
pub mod limits;
pub mod pool;
pub mod probe;
pub mod realtime;
pub mod resolver;
pub mod responses;
pub mod routing;
pub mod server;
pub mod stream;
pub mod streaming;
pub mod supervisor;
pub mod transport;
pub mod unary;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::config::{Config, ConfigSet, Secret};
use crate::policy::chain::FailMode;
use crate::policy::PolicyChain;
use crate::store::EventSink;

pub use server::run;

/// `--upstream*`: a debug override that sends every target to one OpenAI-format URL.
#[derive(Debug, Clone, Default)]
pub struct UpstreamOverride {
    pub url: String,
    pub api_key: Option<Secret>,
    pub api_key_header: Option<String>,
    pub api_key_prefix: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub listen: SocketAddr,
    pub configs: ConfigSet,
    pub db: PathBuf,
    /// Model requests (and open streams) served at once; more wait in a bounded queue
    /// or are shed with 503.
    pub max_concurrency: usize,
    pub fail_mode: FailMode,
    pub upstream: Option<UpstreamOverride>,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    pub shutdown_grace: std::time::Duration,
    /// Guards `GET /v1/events` and `/keeptrusts/*`.
    pub admin: auth::AdminToken,
}

/// One configuration with its built policy chain.
pub struct Runtime {
    pub config: Arc<Config>,
    pub chain: PolicyChain,
}

/// The longest a model request waits in the admission queue before a 503.
const ADMISSION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Shared by every worker.
pub struct State {
    pub default: Arc<Runtime>,
    pub by_name: BTreeMap<String, Arc<Runtime>>,
    pub agent: transport::Agents,
    pub events: EventSink,
    pub shutting_down: AtomicBool,
    /// The listener refuses connections (see `server::listener_watchdog`): the gateway
    /// must stop.
    pub listener_dead: AtomicBool,
    pub keys: auth::KeyCache,
    pub limits: Arc<limits::Limits>,
    pub admin: auth::AdminToken,
    pub db: PathBuf,
    /// Routing state (breakers, health, statistics) and the health probes.
    pub routing: routing::Routing,
    /// Model requests in flight (`--max-concurrency`) and the admission queue.
    pub slots: pool::Slots,
    /// Open realtime (WebSocket) sessions.
    pub realtime: realtime::Sessions,
}

impl State {
    pub fn build(opts: &GatewayOptions, events: EventSink) -> Result<State, String> {
        let mut by_name = BTreeMap::new();
        let mut default = None;
        for (name, cfg) in &opts.configs.by_name {
            let cfg = apply_override(cfg, opts.upstream.as_ref());
            let chain = PolicyChain::build(&cfg, opts.fail_mode)
                .map_err(|e| format!("configuration `{name}`: {e}"))?;
            let rt = Arc::new(Runtime { config: cfg, chain });
            if *name == opts.configs.default.name {
                default = Some(rt.clone());
            }
            by_name.insert(name.clone(), rt);
        }
        let default = match default {
            Some(d) => d,
            None => {
                let cfg = apply_override(&opts.configs.default, opts.upstream.as_ref());
                let chain = PolicyChain::build(&cfg, opts.fail_mode)?;
                Arc::new(Runtime { config: cfg, chain })
            }
        };
        let agent = transport::Agents::new()?;
        let configs = std::iter::once(&default)
            .chain(by_name.values())
            .map(|rt| &*rt.config);
        let routing = routing::Routing::start(configs, &agent);
        Ok(State {
            default,
            by_name,
            agent,
            events,
            shutting_down: AtomicBool::new(false),
            listener_dead: AtomicBool::new(false),

            keys: auth::KeyCache::open(&opts.db).map_err(|e| format!("{e}"))?,
            limits: Arc::new(limits::Limits::default()),
            admin: opts.admin.clone(),
            db: opts.db.clone(),
            routing,
            slots: pool::Slots::new(
                opts.max_concurrency,
                pool::Slots::default_queue(opts.max_concurrency),
                ADMISSION_WAIT,
            ),
            realtime: realtime::Sessions::default(),
        })
    }
}

fn apply_override(cfg: &Arc<Config>, o: Option<&UpstreamOverride>) -> Arc<Config> {
    let Some(o) = o else {
        return cfg.clone();
    };
    let mut c = (**cfg).clone();
    for t in &mut c.targets {
        t.base_url = o.url.trim_end_matches('/').to_string();
        if t.kind == crate::config::schema::ProviderKind::Mock {
            t.kind = crate::config::schema::ProviderKind::OpenaiCompatible;
            t.format = crate::config::schema::WireFormat::Openai;
        }
        if let Some(k) = &o.api_key {
            t.credential = Some(k.clone());
        }
        if let Some(h) = &o.api_key_header {
            t.api_key_header.clone_from(h);
        }
        if let Some(p) = &o.api_key_prefix {
            t.api_key_prefix = if p.is_empty() || p.ends_with(' ') {
                p.clone()
            } else {
                format!("{p} ")
            };
        }
    }
    Arc::new(c)
}
