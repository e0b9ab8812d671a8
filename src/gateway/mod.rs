//! The gateway: the HTTP server (`conn`) and admission, routes, the chat completion path, the
//! SSE writer and the upstream transport. Only this module and `store` touch the network
//! and the disk.

pub mod admin;
pub mod admission;
pub mod auth;
pub mod chat;
pub mod choice_filter;
pub mod conn;
pub mod cors;
pub mod embeddings;
pub mod handlers;
pub mod http;
pub mod limits;
pub mod pool;
pub mod probe;
pub mod realtime;
pub mod reload;
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
use std::sync::{Arc, RwLock};

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
    /// The `--policy-config` files, read again on a reload (none: the sandbox).
    pub policy_config: Vec<PathBuf>,
}

/// One configuration with its built policy chain.
pub struct Runtime {
    pub config: Arc<Config>,
    pub chain: PolicyChain,
}

/// The longest a model request waits in the admission queue before a 503.
const ADMISSION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The loaded configurations: replaced whole by a reload, while requests in flight finish
/// under the ones they started with.
pub struct Loaded {
    /// What requests without a gateway key run under.
    pub default: Arc<Runtime>,
    pub by_name: BTreeMap<String, Arc<Runtime>>,
}

impl Loaded {
    /// Builds every configuration's policy chain (`--upstream*` applied).
    pub fn build(
        configs: &ConfigSet,
        fail_mode: FailMode,
        upstream: Option<&UpstreamOverride>,
    ) -> Result<Loaded, String> {
        let mut by_name = BTreeMap::new();
        let mut default = None;
        for (name, cfg) in &configs.by_name {
            let cfg = apply_override(cfg, upstream);
            let chain = PolicyChain::build(&cfg, fail_mode)
                .map_err(|e| format!("configuration `{name}`: {e}"))?;
            let rt = Arc::new(Runtime { config: cfg, chain });
            if *name == configs.default.name {
                default = Some(rt.clone());
            }
            by_name.insert(name.clone(), rt);
        }
        let default = match default {
            Some(d) => d,
            None => {
                let cfg = apply_override(&configs.default, upstream);
                let chain = PolicyChain::build(&cfg, fail_mode)?;
                Arc::new(Runtime { config: cfg, chain })
            }
        };
        Ok(Loaded { default, by_name })
    }

    /// Every configuration, the default first.
    pub fn configs(&self) -> impl Iterator<Item = &Config> {
        std::iter::once(&self.default)
            .chain(self.by_name.values())
            .map(|rt| &*rt.config)
    }
}

/// Shared by every worker.
pub struct State {
    loaded: RwLock<Arc<Loaded>>,
    /// What a reload needs to build the configurations again.
    pub fail_mode: FailMode,
    pub upstream: Option<UpstreamOverride>,
    pub policy_config: Vec<PathBuf>,
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
        let loaded = Loaded::build(&opts.configs, opts.fail_mode, opts.upstream.as_ref())?;
        let agent = transport::Agents::new()?;
        let routing = routing::Routing::start(loaded.configs(), &agent);
        Ok(State {
            loaded: RwLock::new(Arc::new(loaded)),
            fail_mode: opts.fail_mode,
            upstream: opts.upstream.clone(),
            policy_config: opts.policy_config.clone(),
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

    /// The configurations as they are now.
    pub fn loaded(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The default configuration as it is now.
    pub fn default_runtime(&self) -> Arc<Runtime> {
        self.loaded().default.clone()
    }

    /// Puts `loaded` in place: its targets join the routing state (and get health
    /// probes) first, so the first request under it finds them; targets it no longer
    /// holds leave it afterwards.
    pub fn replace(&self, loaded: Loaded) {
        for config in loaded.configs() {
            self.routing.add(config, &self.agent);
        }
        let loaded = Arc::new(loaded);
        *self
            .loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = loaded.clone();
        self.routing.retain(loaded.configs());
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
