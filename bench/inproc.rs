//! In-process measurements: the default policy chain's cost per request, and the event
//! writer's throughput. No network: these isolate kt's own work.

use std::path::Path;
use std::time::{Duration, Instant};

use rustix::time::ClockId;

use kt::config::ConfigSet;
use kt::openai::{ChatRequest, ChatResponse};
use kt::policy::audit_logger::Durability;
use kt::policy::chain::FailMode;
use kt::policy::{PolicyChain, RequestContext};
use kt::store::writer::WriterOptions;
use kt::store::{Event, EventWriter};

/// Per-call times (µs, sorted) of the input and the output phase.
pub struct ChainCost {
    pub input: Vec<f64>,
    pub output: Vec<f64>,
}

/// The built-in sandbox chain (prompt-injection → pii-detector → audit-logger) over a user
/// prompt of `prompt` and an answer of the same text, `n` times each.
pub fn chain_cost(prompt: &str, n: usize) -> ChainCost {
    let (set, _) = ConfigSet::load(&[]).unwrap();
    let chain = PolicyChain::build(&set.default, FailMode::Block).unwrap();
    let req: ChatRequest = serde_json::from_value(serde_json::json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": prompt}
        ]
    }))
    .unwrap();
    let resp: ChatResponse = serde_json::from_value(serde_json::json!({
        "id": "chatcmpl-b", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": prompt}, "finish_reason": "stop"}]
    }))
    .unwrap();
    let ctx = RequestContext {
        request_id: "req_bench".into(),
        model: "gpt-4o".into(),
        ..RequestContext::default()
    };
    let mut cost = ChainCost {
        input: Vec::with_capacity(n),
        output: Vec::with_capacity(n),
    };
    for i in 0..n + n / 10 {
        let input = timed_input(&chain, &ctx, &req);
        let mut a = resp.clone();
        let t = Instant::now();
        let outcome = chain.run_output(&ctx, &mut a);
        let output = t.elapsed();
        std::hint::black_box(&outcome);
        if i >= n / 10 {
            // The first tenth warms caches and is not counted.
            cost.input.push(input.as_secs_f64() * 1e6);
            cost.output.push(output.as_secs_f64() * 1e6);
        }
    }
    cost.input.sort_by(f64::total_cmp);
    cost.output.sort_by(f64::total_cmp);
    cost
}

/// The input phase on the bench's own request (`BODY`: a short user prompt), `n` times,
/// warm (back to back) and cold (a 16 MiB sweep evicting the caches before each call):
/// per-call times in µs, sorted. In the gateway the chain's tables are cold at every
/// request — the clients', the upstream's and other requests' work runs on the core in
/// between — and the cold figure is what the chain costs there (bench/RESULTS.md,
/// twenty-second session). `KT_POLICY_CONFIG` (one file) replaces the sandbox config.
pub fn cold_input(n: usize) -> (Vec<f64>, Vec<f64>) {
    let paths: Vec<std::path::PathBuf> = std::env::var_os("KT_POLICY_CONFIG")
        .map(Into::into)
        .into_iter()
        .collect();
    let (set, _) = ConfigSet::load(&paths).unwrap();
    let chain = PolicyChain::build(&set.default, FailMode::Block).unwrap();
    let req: ChatRequest = serde_json::from_str(crate::BODY).unwrap();
    let ctx = RequestContext {
        request_id: "req_bench".into(),
        model: "gpt-4o".into(),
        ..RequestContext::default()
    };
    let mut sweep = vec![0u8; 16 << 20];
    let mut times = [Vec::with_capacity(n), Vec::with_capacity(n)];
    for (cold, out) in times.iter_mut().enumerate() {
        for i in 0..n + n / 10 {
            if cold == 1 {
                for b in sweep.iter_mut().step_by(64) {
                    *b = b.wrapping_add(1);
                }
            }
            let took = timed_input(&chain, &ctx, &req);
            if i >= n / 10 {
                out.push(took.as_secs_f64() * 1e6);
            }
        }
        out.sort_by(f64::total_cmp);
    }
    std::hint::black_box(&sweep);
    let [warm, cold] = times;
    (warm, cold)
}

/// One input phase over a copy of `req`, timed.
fn timed_input(chain: &PolicyChain, ctx: &RequestContext, req: &ChatRequest) -> Duration {
    let mut r = req.clone();
    let t = Instant::now();
    let outcome = chain.run_input(ctx, &mut r);
    let took = t.elapsed();
    std::hint::black_box(&outcome);
    took
}

/// An event like the gateway's for one chat completion through the default chain: the
/// policy trace, the routing detail and both bodies (~1.5 KB in all).
fn event(i: usize, chained: bool) -> Event {
    Event {
        request_id: format!("req_{:012x}{i:012x}", 1_700_000_000_000u64),
        policies: Some(serde_json::json!([
            {"policy": "prompt-injection", "phase": "input", "verdict": "allow", "score": 0.0},
            {"policy": "pii-detector", "phase": "input", "verdict": "allow"},
            {"policy": "audit-logger", "phase": "input", "verdict": "allow"},
            {"policy": "pii-detector", "phase": "output", "verdict": "allow"},
        ]).into()),
        detail: Some(serde_json::json!({"routing": {
            "requested": "gpt-4o", "resolved": "gpt-4o", "strategy": "single",
            "candidates": ["openai-main"], "order": ["openai-main"], "chosen": "openai-main",
            "attempts": [{"target": "openai-main", "status": 200, "latency_ms": 0.4}],
        }}).into()),
        request_body: Some(crate::BODY.to_string()),
        response_body: Some(format!(
            "{{\"id\":\"chatcmpl-{i:024x}\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":\"{}\"}},\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":12,\"completion_tokens\":10,\"total_tokens\":22}}}}",
            "The quick brown fox jumps over the lazy dog. ".repeat(8)
        )),
        ts_ms: 1_700_000_000_000,
        endpoint: "/v1/chat/completions".into(),
        configuration: Some("sandbox".into()),
        model_requested: Some("gpt-4o".into()),
        model_used: Some("gpt-4o".into()),
        status: 200,
        verdict: "allow".into(),
        latency_ms: 1.5,
        prompt_tokens: Some(12),
        completion_tokens: Some(10),
        total_tokens: Some(22),
        chain: chained,
        ..Event::default()
    }
}

/// Events per second the writer commits in `batched` durability: `n` events queued as
/// fast as possible, then flushed; `chained` hash-chains them (audit-logger
/// `immutable: true`).
pub fn writer_throughput(dir: &Path, n: usize, chained: bool) -> (f64, f64) {
    let db = dir.join(format!("writer-{chained}.db"));
    let writer = EventWriter::start(&db, WriterOptions::default()).unwrap();
    let sink = writer.sink();
    let cpu_start = (
        cpu_ns(ClockId::ProcessCPUTime),
        cpu_ns(ClockId::ThreadCPUTime),
    );
    let t = Instant::now();
    for i in 0..n {
        sink.record(event(i, chained));
    }
    assert!(sink.flush(Duration::from_secs(60)), "events not flushed");
    let rate = n as f64 / t.elapsed().as_secs_f64();
    // Everything but this (producing) thread is the writer's.
    let writer_ns = (cpu_ns(ClockId::ProcessCPUTime) - cpu_start.0)
        - (cpu_ns(ClockId::ThreadCPUTime) - cpu_start.1);
    assert_eq!(sink.stats().dropped, 0, "the writer dropped events");
    writer.shutdown(Duration::from_secs(10));
    (rate, writer_ns as f64 / 1e3 / n as f64)
}

/// CPU time of the process or of the calling thread, in ns.
pub fn cpu_ns(clock: ClockId) -> i64 {
    let t = rustix::time::clock_gettime(clock);
    t.tv_sec * 1_000_000_000 + t.tv_nsec
}

/// `strict` durability: `threads` request threads each record `per_thread` events, each
/// waiting for its commit (group commit shares one synced transaction among waiters).
/// Returns events/s and events per transaction.
pub fn strict_throughput(dir: &Path, threads: usize, per_thread: usize) -> (f64, f64) {
    let db = dir.join("writer-strict.db");
    let options = WriterOptions {
        durability: Durability::Strict,
        ..WriterOptions::default()
    };
    let writer = EventWriter::start(&db, options).unwrap();
    let t = Instant::now();
    std::thread::scope(|s| {
        for k in 0..threads {
            let sink = writer.sink();
            s.spawn(move || {
                for i in 0..per_thread {
                    assert!(
                        !sink
                            .record(event(k * per_thread + i, false))
                            .is_unavailable(),
                        "a strict event was not committed"
                    );
                }
            });
        }
    });
    let rate = (threads * per_thread) as f64 / t.elapsed().as_secs_f64();
    let stats = writer.sink().stats();
    writer.shutdown(Duration::from_secs(10));
    (
        rate,
        stats.committed as f64 / stats.transactions.max(1) as f64,
    )
}
