//! The router's runtime state, shared by every worker: one [`TargetState`] per upstream
//! target (statistics, circuit breaker, health), the strategies' per-pool memory, and
//! [`RouterState::plan`], which turns a resolved request into the ordered list of targets
//! to try.
//!
//! A target is identified by its `id`, `base_url` and `model`, so layered configurations
//! that share a target share its breaker and health. Locks are short and never held
//! across I/O: a read lock to find a target, a mutex per pool for one decision.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use serde::Serialize;

use super::breaker::{Breaker, BreakerConfig, CircuitState};
use super::health::{HealthState, ProbeSettings};
use super::metrics::TargetStats;
use super::retry::RetryPolicy;
use super::{compress, strategy, Resolution};
use crate::config::schema::Strategy;
use crate::config::{Config, Target};
use crate::openai::{ApiError, ChatRequest};
use crate::policy::data_routing::{self, DataRoutingSettings};
use crate::policy::Mode;

/// One upstream target's live state.
#[derive(Debug)]
pub struct TargetState {
    pub id: String,
    pub provider: &'static str,
    pub model: String,
    pub base_url: String,
    /// Names of the configurations that route to it.
    configurations: Mutex<Vec<String>>,
    /// The breaker settings of the configuration that registered it last (for metrics).
    breaker_config: Mutex<BreakerConfig>,
    pub stats: TargetStats,
    pub breaker: Breaker,
    pub health: HealthState,
    pub probe: Option<ProbeSettings>,
    /// Set once a probe thread runs for it.
    pub probing: AtomicBool,
    /// No loaded configuration holds the target any more (a reload removed it): its
    /// health probe stops.
    pub retired: AtomicBool,
}

impl TargetState {
    fn new(t: &Target) -> TargetState {
        TargetState {
            id: t.id.clone(),
            provider: t.kind.as_str(),
            model: t.model.clone(),
            base_url: t.base_url.clone(),
            configurations: Mutex::new(Vec::new()),
            breaker_config: Mutex::new(BreakerConfig::default()),
            stats: TargetStats::default(),
            breaker: Breaker::default(),
            health: HealthState::default(),
            probe: ProbeSettings::of(t),
            probing: AtomicBool::new(false),
            retired: AtomicBool::new(false),
        }
    }

    pub fn configurations(&self) -> Vec<String> {
        self.configurations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn breaker_config(&self) -> BreakerConfig {
        *self
            .breaker_config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl TargetState {
    /// Whether this is the state of `t` (same `id`, `base_url` and `model`).
    fn is_for(&self, t: &Target) -> bool {
        self.base_url == t.base_url && self.model == t.model
    }
}

/// A strategy's memory for one pool of targets.
#[derive(Debug, Default)]
struct PoolState {
    wrr: strategy::SmoothWrr,
    decisions: u64,
}

/// Why a candidate was not tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub target: String,
    pub reason: String,
}

/// The targets to try for one request, in order, and how.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Indexes into `config.targets`.
    pub order: Vec<usize>,
    pub skipped: Vec<Skipped>,
    /// Every available candidate was down: these are tried anyway, once each.
    pub last_resort: bool,
    /// `latency` tried the stalest target first on this decision.
    pub explored: bool,
    pub retry: RetryPolicy,
    pub breaker: BreakerConfig,
}

/// Live routing state of the gateway.
#[derive(Debug, Default)]
pub struct RouterState {
    /// By `id`, then told apart by `base_url` and `model` (looked up per request without
    /// building a key).
    targets: RwLock<HashMap<String, Vec<Arc<TargetState>>>>,
    /// Registration order, for a stable metrics listing.
    listing: RwLock<Vec<Arc<TargetState>>>,
    pools: Mutex<HashMap<(String, Vec<usize>), PoolState>>,
}

impl RouterState {
    pub fn new() -> RouterState {
        RouterState::default()
    }

    /// Registers every target of `config` (idempotent).
    pub fn register(&self, config: &Config) {
        let breaker = BreakerConfig::from_spec(config.spec.providers.circuit_breaker.as_ref());
        for t in &config.targets {
            let ts = self.target(t);
            let mut names = ts
                .configurations
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !names.contains(&config.name) {
                names.push(config.name.clone());
            }
            *ts.breaker_config
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = breaker;
        }
    }

    /// The state of `t`, created on first use.
    pub fn target(&self, t: &Target) -> Arc<TargetState> {
        if let Some(ts) = self
            .targets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(t.id.as_str())
            .and_then(|same_id| same_id.iter().find(|ts| ts.is_for(t)))
        {
            return ts.clone();
        }
        let mut map = self.targets.write().unwrap_or_else(PoisonError::into_inner);
        let same_id = map.entry(t.id.clone()).or_default();
        if let Some(ts) = same_id.iter().find(|ts| ts.is_for(t)) {
            return ts.clone();
        }
        let ts = Arc::new(TargetState::new(t));
        same_id.push(ts.clone());
        self.listing
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(ts.clone());
        ts
    }

    /// After a reload: each target belongs to the configurations in `configs` that hold
    /// it; one that none holds is forgotten (retired: its probe stops). Coming back in a
    /// later reload, it starts afresh.
    pub fn retain<'a>(&self, configs: impl IntoIterator<Item = &'a Config>) {
        use std::sync::atomic::Ordering::SeqCst;
        let configs: Vec<&Config> = configs.into_iter().collect();
        let holders = |ts: &TargetState| {
            let mut names: Vec<String> = Vec::new();
            for c in &configs {
                let holds = c.targets.iter().any(|t| t.id == ts.id && ts.is_for(t));
                if holds && !names.contains(&c.name) {
                    names.push(c.name.clone());
                }
            }
            names
        };
        let mut map = self.targets.write().unwrap_or_else(PoisonError::into_inner);
        let mut listing = self.listing.write().unwrap_or_else(PoisonError::into_inner);
        for ts in listing.iter() {
            let names = holders(ts);
            if names.is_empty() {
                ts.retired.store(true, SeqCst);
            }
            *ts.configurations
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = names;
        }
        listing.retain(|ts| !ts.retired.load(SeqCst));
        map.retain(|_, same_id| {
            same_id.retain(|ts| !ts.retired.load(SeqCst));
            !same_id.is_empty()
        });
    }

    /// Every known target, in registration order.
    pub fn all(&self) -> Vec<Arc<TargetState>> {
        self.listing
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Orders the resolved candidates for `chat`: data-routing restrictions, then
    /// availability (circuit, health), then the strategy.
    ///
    /// Errors: 409 `policy_violation` when `data-routing-policy` leaves no target, 503
    /// `circuit_open` when every remaining target's circuit is open.
    pub fn plan(
        &self,
        config: &Config,
        res: &Resolution,
        chat: &ChatRequest,
        now: Instant,
    ) -> Result<Plan, ApiError> {
        let retry = RetryPolicy::from_spec(config.spec.providers.retry.as_ref());
        let breaker = BreakerConfig::from_spec(config.spec.providers.circuit_breaker.as_ref());
        let mut skipped = Vec::new();
        let target = |i: usize| config.targets.get(i);

        let mut pool: Vec<usize> = res
            .candidates
            .iter()
            .copied()
            .filter(|&i| target(i).is_some())
            .collect();
        let data_policy = DataRoutingSettings::of(config).map_err(ApiError::internal)?;
        if let Some(dp) = &data_policy {
            let enforce = dp.mode == Mode::Enforce;
            let mut reasons = Vec::new();
            pool.retain(|&i| {
                let Some(t) = target(i) else { return false };
                let v = dp.violations(t);
                if v.is_empty() {
                    return true;
                }
                let mode = if enforce { "" } else { " (observed)" };
                let reason = format!("data_policy{mode}: {}", v.join(", "));
                reasons.push(format!("`{}` {}", t.id, v.join(", ")));
                skipped.push(Skipped {
                    target: t.id.clone(),
                    reason,
                });
                !enforce
            });
            if pool.is_empty() {
                return Err(ApiError::policy_violation(
                    data_routing::NAME,
                    false,
                    format!(
                        "No provider target for model '{}' satisfies the data routing policy: {}",
                        res.requested,
                        reasons.join("; ")
                    ),
                ));
            }
        }

        let mut available = Vec::new();
        let mut down = Vec::new();
        let mut open_retry_in = None;
        for &i in &pool {
            let Some(t) = target(i) else { continue };
            let ts = self.target(t);
            if ts.breaker.state(&breaker, now) == CircuitState::Open {
                let snap = ts.breaker.snapshot(&breaker, now);
                open_retry_in = match (open_retry_in, snap.retry_in) {
                    (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
                    (a, b) => a.or(b),
                };
                skipped.push(Skipped {
                    target: t.id.clone(),
                    reason: "circuit_open".to_string(),
                });
            } else if ts.health.is_down() {
                down.push(i);
            } else {
                available.push(i);
            }
        }
        let last_resort = available.is_empty() && !down.is_empty();
        if last_resort {
            available = std::mem::take(&mut down);
        }
        for &i in &down {
            if let Some(t) = target(i) {
                skipped.push(Skipped {
                    target: t.id.clone(),
                    reason: "health_down".to_string(),
                });
            }
        }
        if available.is_empty() {
            let mut e = ApiError::new(
                503,
                "upstream_error",
                Some("circuit_open"),
                format!(
                    "Every provider target for model '{}' is failing; the gateway stopped \
                     sending it requests for a while (circuit open). Retry later.",
                    res.requested
                ),
            );
            e.retry_after = open_retry_in.map(|d| d.as_secs_f64().ceil().max(1.0));
            return Err(e);
        }

        let (order, explored) = self.order(config, &available, chat);
        Ok(Plan {
            order,
            skipped,
            last_resort,
            explored,
            retry,
            breaker,
        })
    }

    fn order(&self, config: &Config, pool: &[usize], chat: &ChatRequest) -> (Vec<usize>, bool) {
        let targets: Vec<&Target> = pool.iter().filter_map(|&i| config.targets.get(i)).collect();
        match config.strategy {
            Strategy::Single | Strategy::Fallback => (pool.to_vec(), false),
            Strategy::WeightedRoundRobin => {
                let weights: Vec<f64> = targets.iter().map(|t| t.weight).collect();
                let order = self.with_pool(config, pool, |p| {
                    strategy::weighted(pool, &weights, &mut p.wrr)
                });
                (order, false)
            }
            Strategy::Latency => {
                let views: Vec<_> = targets
                    .iter()
                    .map(|t| self.target(t).stats.latency_view())
                    .collect();
                let explore = self.with_pool(config, pool, |p| {
                    p.decisions += 1;
                    p.decisions % strategy::EXPLORE_EVERY == 0
                });
                (strategy::latency(pool, &views, explore), explore)
            }
            Strategy::Cost => {
                let prompt = compress::request_tokens(chat);
                let completion = chat
                    .max_output_tokens()
                    .unwrap_or(strategy::DEFAULT_EXPECTED_COMPLETION);
                let costs: Vec<Option<f64>> = targets
                    .iter()
                    .map(|t| {
                        t.pricing
                            .as_ref()
                            .map(|p| strategy::expected_cost(p, prompt, completion))
                    })
                    .collect();
                (strategy::cost(pool, &costs), false)
            }
        }
    }

    fn with_pool<R>(
        &self,
        config: &Config,
        pool: &[usize],
        f: impl FnOnce(&mut PoolState) -> R,
    ) -> R {
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        let state = pools
            .entry((config.name.clone(), pool.to_vec()))
            .or_default();
        f(state)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_reload_keeps_the_state_of_targets_still_held_and_retires_the_rest() {
        let load = |yaml: &str| {
            crate::config::load_str(yaml, std::path::Path::new("t.yaml"))
                .unwrap()
                .0
        };
        let before = load("pack: {name: a}\nproviders:\n  targets:\n    - {id: x, provider: openai, model: m, base_url: 'http://x/v1'}\n    - {id: y, provider: openai, model: m, base_url: 'http://y/v1'}\n");
        let after = load("pack: {name: b}\nproviders:\n  targets:\n    - {id: x, provider: openai, model: m, base_url: 'http://x/v1'}\n");
        let router = RouterState::new();
        router.register(&before);
        let x = router.target(&before.targets[0]);
        let y = router.target(&before.targets[1]);
        router.register(&after);
        router.retain([&after]);
        let ids: Vec<String> = router.all().iter().map(|t| t.id.clone()).collect();
        assert_eq!(ids, ["x"]);
        assert!(
            Arc::ptr_eq(&router.target(&after.targets[0]), &x),
            "x keeps its state"
        );
        assert_eq!(x.configurations(), ["b"]);
        assert!(y.retired.load(std::sync::atomic::Ordering::SeqCst));
        assert!(
            !Arc::ptr_eq(&router.target(&before.targets[1]), &y),
            "y comes back afresh"
        );
    }
    use crate::config::load_str;
    use crate::openai::{Message, Role};
    use crate::router::breaker::{Outcome, Permit};
    use crate::router::resolve;

    fn config(strategy: &str, extra: &str) -> Config {
        let yaml = format!(
            "pack: {{name: t}}
providers:
  strategy: {strategy}
  circuit_breaker: {{failure_threshold: 1, cooldown_seconds: 60}}
  targets:
    - {{id: a, provider: openai, model: m, base_url: 'http://a/v1', weight: 3, pricing: {{prompt: 5, completion: 15}}, region: us}}
    - {{id: b, provider: groq, model: m, weight: 1, pricing: {{prompt: 0.5, completion: 1}}, zdr: true, region: eu}}
    - {{id: c, provider: openai, model: m, base_url: 'http://c/v1'}}
{extra}"
        );
        load_str(&yaml, std::path::Path::new("t.yaml")).unwrap().0
    }

    fn chat() -> ChatRequest {
        ChatRequest {
            model: "m".to_string(),
            messages: vec![Message::text(Role::User, "hello")],
            ..ChatRequest::default()
        }
    }

    fn ids(c: &Config, order: &[usize]) -> Vec<String> {
        order.iter().map(|&i| c.targets[i].id.clone()).collect()
    }

    fn plan(r: &RouterState, c: &Config) -> Result<Plan, ApiError> {
        let res = resolve(c, "m").unwrap();
        r.plan(c, &res, &chat(), Instant::now())
    }

    #[test]
    fn strategies_order_the_pool() {
        let c = config("fallback", "");
        let r = RouterState::new();
        assert_eq!(ids(&c, &plan(&r, &c).unwrap().order), ["a", "b", "c"]);

        let c = config("cost", "");
        assert_eq!(ids(&c, &plan(&r, &c).unwrap().order), ["b", "a", "c"]);

        let c = config("weighted_round_robin", "");
        let firsts: Vec<String> = (0..10)
            .map(|_| ids(&c, &plan(&r, &c).unwrap().order)[0].clone())
            .collect();
        let count = |id: &str| firsts.iter().filter(|f| *f == id).count();
        // Weights 3 : 1 : 1 (`c` has the default weight 1).
        assert_eq!(
            (count("a"), count("b"), count("c")),
            (6, 2, 2),
            "{firsts:?}"
        );
    }

    #[test]
    fn latency_tries_unmeasured_targets_then_the_fastest() {
        let c = config("latency", "");
        let r = RouterState::new();
        let now = Instant::now();
        r.target(&c.targets[0])
            .stats
            .record_success(Duration::from_millis(300), now);
        r.target(&c.targets[1])
            .stats
            .record_success(Duration::from_millis(30), now + Duration::from_millis(1));
        assert_eq!(ids(&c, &plan(&r, &c).unwrap().order)[0], "c");
        r.target(&c.targets[2])
            .stats
            .record_success(Duration::from_millis(90), now + Duration::from_millis(2));
        let firsts: Vec<String> = (0..20)
            .map(|_| ids(&c, &plan(&r, &c).unwrap().order)[0].clone())
            .collect();
        // 18 of 20 to the fastest, 2 explorations of the target measured longest ago.
        assert_eq!(
            firsts.iter().filter(|f| *f == "b").count(),
            18,
            "{firsts:?}"
        );
        assert_eq!(firsts.iter().filter(|f| *f == "a").count(), 2, "{firsts:?}");
    }

    #[test]
    fn open_circuits_are_skipped_and_down_targets_are_a_last_resort() {
        let c = config("fallback", "");
        let r = RouterState::new();
        let now = Instant::now();
        let b = BreakerConfig::from_spec(c.spec.providers.circuit_breaker.as_ref());
        let a = r.target(&c.targets[0]);
        a.breaker.record(&b, Permit::Allowed, Outcome::Failure, now);
        r.target(&c.targets[1]).health.set(Some("down".into()), 1);
        let p = plan(&r, &c).unwrap();
        assert_eq!(ids(&c, &p.order), ["c"]);
        assert!(!p.last_resort);
        let reasons: Vec<&str> = p.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(reasons, ["circuit_open", "health_down"]);

        r.target(&c.targets[2]).health.set(Some("down".into()), 1);
        let p = plan(&r, &c).unwrap();
        assert_eq!(ids(&c, &p.order), ["b", "c"]);
        assert!(p.last_resort);

        for t in &c.targets {
            r.target(t)
                .breaker
                .record(&b, Permit::Allowed, Outcome::Failure, now);
        }
        let e = plan(&r, &c).unwrap_err();
        assert_eq!((e.status, e.code_str()), (503, Some("circuit_open")));
        assert!(e.retry_after.unwrap() >= 59.0);
    }

    #[test]
    fn data_routing_policy_restricts_targets_or_blocks() {
        let r = RouterState::new();
        let c = config(
            "fallback",
            "policies: {chain: [data-routing-policy]}\npolicy: {data-routing-policy: {require_zdr: true}}\n",
        );
        let p = plan(&r, &c).unwrap();
        assert_eq!(ids(&c, &p.order), ["b"]);
        assert_eq!(p.skipped.len(), 2);

        let c = config(
            "fallback",
            "policies: {chain: [data-routing-policy]}\npolicy: {data-routing-policy: {allowed_regions: [ap]}}\n",
        );
        let e = plan(&r, &c).unwrap_err();
        assert_eq!(e.status, 409);
        assert_eq!(e.body.policy.as_deref(), Some("data-routing-policy"));

        let c = config(
            "fallback",
            "policies: {chain: [data-routing-policy]}\npolicy: {data-routing-policy: {mode: observe, allowed_regions: [ap]}}\n",
        );
        let p = plan(&r, &c).unwrap();
        assert_eq!(p.order.len(), 3);
        assert!(p.skipped[0].reason.starts_with("data_policy (observed)"));
    }

    #[test]
    fn layered_configs_share_a_target_state() {
        let c1 = config("fallback", "");
        let mut c2 = config("fallback", "");
        c2.name = "other".to_string();
        let r = RouterState::new();
        r.register(&c1);
        r.register(&c2);
        assert_eq!(r.all().len(), 3);
        assert_eq!(r.all()[0].configurations(), ["t", "other"]);
    }
}
