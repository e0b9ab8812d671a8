//! kt benchmark: direct-to-mock vs through kt, on loopback, in one run.
//!
//! `cargo run --release --example bench -- [--seconds N] [--streams N]` (bench/README.md).
//! Starts an in-process mock upstream, starts the release `kt gateway run` (the built-in
//! sandbox config and its default policy chain) pointed at it with `--upstream`, measures
//! both paths with the same client code, then kt's own work in process, and prints one
//! table with the ratio of each figure to the direct call.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::panic
)]

mod client;
mod inproc;
mod mock;
mod relay;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BODY: &str = r#"{"model":"gpt-4o","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say something about foxes and dogs, briefly please."}]}"#;

/// Streams measured each way for TTFT and gaps: enough that p99 is not a single sample.
const STREAMS: usize = 500;
/// Streams measured each way with OpenAI-shaped tokens (the PII filter's hold).
const SPLIT_STREAMS: usize = 100;
/// Long streams open while a short request's latency is measured (#11's figure).
const SHORT_STREAMS: usize = 1000;

struct Args {
    seconds: u64,
    streams: usize,
    /// `--quick`: only the non-streaming latency loads at c=1 and c=32 (for profiling).
    quick: bool,
    /// `--own-core`: only the c=1 and c=32 loads with kt on a core of its own (to compare
    /// builds: kt's CPU and context switches per request).
    own_core: bool,
    /// `--relay`: only the null proxy's c=32 load (`relay.rs`).
    relay: bool,
    /// `--load-only`: only kt's c=32 load on shared cores, no direct slices and no
    /// table: a steady load to attach `perf` or `strace` to (kt's pid is on stderr).
    load_only: bool,
    /// `--streams-only`: only the streaming rows (TTFT, gaps, short requests while
    /// streams are open), for comparing changes to the stream path.
    streams_only: bool,
    /// `--writer-only`: only the event writer's throughput, in process (no kt).
    writer_only: bool,
    /// `--chain-only`: only the in-process chain rows (no kt), for A/B of policy code.
    chain_only: bool,
    /// `--shared-only`: only the c=32 load on shared cores, direct and via kt taking
    /// turns (#11's row that moves most between runs: A/B of builds and configs).
    shared_only: bool,
    /// `--serve`: start the mock and kt, print their URLs and wait for SIGINT/SIGTERM.
    serve: bool,
}

fn args() -> Args {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|s| s.parse::<u64>().ok())
    };
    Args {
        // At 4-5 s per load the c=32 p99 of the same binary moved by +-3 ms between runs
        // (direct's own p99 by +-1 ms): from 8-15 s it settled (bench/RESULTS.md, sixth
        // session).
        seconds: value("--seconds").unwrap_or(15),
        streams: value("--streams").map_or(2000, |n| n as usize),
        quick: args.iter().any(|a| a == "--quick"),
        own_core: args.iter().any(|a| a == "--own-core"),
        relay: args.iter().any(|a| a == "--relay"),
        load_only: args.iter().any(|a| a == "--load-only"),
        streams_only: args.iter().any(|a| a == "--streams-only"),
        writer_only: args.iter().any(|a| a == "--writer-only"),
        shared_only: args.iter().any(|a| a == "--shared-only"),
        chain_only: args.iter().any(|a| a == "--chain-only"),
        serve: args.iter().any(|a| a == "--serve"),
    }
}

/// One line of the table: a figure direct and through kt (same unit).
fn row(name: &str, unit: &str, direct: f64, via: f64) {
    let ratio = if direct > 0.0 { via / direct } else { f64::NAN };
    println!(
        "{name:<38} {direct:>11.3}{unit:<3} {via:>11.3}{unit:<3} {:>+10.3}{unit:<3} {ratio:>7.2}x",
        via - direct
    );
}

/// A figure that only kt has.
fn only(name: &str, value: String) {
    println!("{name:<38} {:>14} {value:>14}", "");
}

fn main() {
    let a = args();
    if a.writer_only {
        // For profiling the event writer alone.
        let dir = tempfile::tempdir().unwrap();
        let (rate, cpu) = inproc::writer_throughput(dir.path(), 200_000, false);
        let (strict, per_tx) = inproc::strict_throughput(dir.path(), 32, 200);
        println!(
            "event writer {rate:.0}/s, {cpu:.1} µs of CPU per event; \
             strict (32 threads) {strict:.0}/s, {per_tx:.1}/tx"
        );
        return;
    }
    if a.chain_only {
        chain_rows();
        return;
    }
    let upstream = mock::start();
    let dir = tempfile::tempdir().unwrap();
    let (kt, kt_addr) = start_kt(&upstream, dir.path());
    let pid = server_pid(kt.0.id());
    let rss_start = rss_kib(pid);
    eprintln!("kt server pid {pid}");
    let direct = format!("http://{upstream}/v1/chat/completions");
    let via = format!("http://{kt_addr}/v1/chat/completions");
    if a.serve {
        // For an outside load generator (wrk, oha): the same mock and kt, until killed.
        // SIGINT/SIGTERM stop kt with the bench (`Kt`'s drop).
        println!("direct {direct}\nvia    {via}\nkt server pid {pid}");
        std::io::Write::flush(&mut std::io::stdout()).ok();
        let mut signals = signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
        ])
        .unwrap();
        signals.forever().next();
        return;
    }
    let dur = Duration::from_secs(a.seconds);
    if a.load_only {
        client::warm(&via, BODY);
        let (cpu, switches) = (cpu_ms(pid), context_switches(pid));
        let k = client::load(&via, BODY, 32, dur);
        let n = k.lat.len().max(1) as f64;
        println!(
            "kt alone @ c=32: {:.0} requests/s, p50 {:.3} ms, p99 {:.3} ms, {:.0} µs of kt CPU \
             and {:.2} context switches per request, {} errors",
            k.rps,
            pct(&k.lat, 0.5),
            pct(&k.lat, 0.99),
            (cpu_ms(pid) - cpu) * 1000.0 / n,
            context_switches(pid).saturating_sub(switches) as f64 / n,
            k.errors
        );
        return;
    }

    println!(
        "kt bench — {} cores, {}s per load, {} held streams; ratio = via kt / direct\n",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        a.seconds,
        a.streams
    );
    println!(
        "{:<38} {:>14} {:>14} {:>13} {:>8}",
        "measurement", "direct", "via kt", "added", "ratio"
    );
    client::warm(&direct, BODY);
    client::warm(&via, BODY);
    let rss_idle = rss_kib(pid);
    let idle = idle_wakeups(&[kt.0.id(), pid], Duration::from_secs(3));
    let prompt_4k = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/prompt_injection/prompt_4k.txt"),
    )
    .unwrap();
    // The VM's speed drifts by tens of percent over minutes: this in-process figure, which
    // no load disturbs, tells which phase a run met (printed at the end with a second one).
    let gauge_start = pct(&inproc::chain_cost(&prompt_4k, 2000).input, 0.5);

    if a.streams_only {
        stream_rows(&direct, &via, a.streams);
        finish(kt, gauge_start, &prompt_4k);
        return;
    }
    if a.shared_only {
        closed_rows(&direct, &via, pid, 32, dur, "");
        finish(kt, gauge_start, &prompt_4k);
        return;
    }
    let levels: &[usize] = match (a.own_core || a.relay, a.quick) {
        (true, _) => &[],
        (false, true) => &[1, 32],
        (false, false) => &[1, 32, 256],
    };
    for &conc in levels {
        closed_rows(&direct, &via, pid, conc, dur, "");
    }
    if a.relay || !(a.own_core || a.quick) {
        relay_rows(&upstream, &direct, dur);
    }
    if a.relay {
        finish(kt, gauge_start, &prompt_4k);
        return;
    }
    // The same loads with kt on a core of its own (the bench's clients and mock on the
    // others), as a gateway is deployed with CPU of its own: the rows above share every
    // core among kt, 32 client threads and the mock, so each µs of CPU kt spends is
    // time the clients and the mock wait for.
    if let Some((bench_cpus, kt_cpus)) = split_cpus() {
        pin(std::process::id(), &bench_cpus);
        pin(pid, &kt_cpus);
        for conc in [1, 32] {
            closed_rows(&direct, &via, pid, conc, dur, ", kt own core");
        }
        // The null relay on kt's core, the bench's clients and mock on the others: what
        // the two extra hops cost in this split with no work done on them (RESULTS.md,
        // twenty-first session: kt's own-core c=32 tail does not follow kt's CPU).
        let relay = relay::start_on(&upstream, Some(&kt_cpus));
        relay_load(&direct, &relay, "null relay, own core", relay_settled, dur);
        let all: Vec<usize> = bench_cpus.iter().chain(&kt_cpus).copied().collect();
        pin(std::process::id(), &all);
        pin(pid, &all);
    }
    if a.own_core {
        finish(kt, gauge_start, &prompt_4k);
        return;
    }
    // The same 32 clients, paced at a rate both paths carry: added latency when the CPU
    // is not saturated by the bench's own client and mock.
    for rate in [1000.0, 2000.0] {
        let (d, k, _) = alternate(&direct, &via, pid, dur, |url, dur| {
            client::paced(url, BODY, rate, 32, dur)
        });
        pct_rows(
            |name| format!("latency {name} @ {rate:.0}/s, c≤32"),
            P50_P99,
            &d.lat,
            &k.lat,
        );
        if k.errors + d.errors > 0 {
            row(
                &format!("errors @ {rate:.0}/s"),
                "",
                d.errors as f64,
                k.errors as f64,
            );
        }
    }
    if a.quick {
        only(
            "kt RSS idle (after warm-up)",
            format!("{:.1}MiB", rss_idle as f64 / 1024.0),
        );
        only("kt wake-ups per second, idle", format!("{idle:.1}"));
        finish(kt, gauge_start, &prompt_4k);
        return;
    }

    stream_rows(&direct, &via, a.streams);
    let hwm = hwm_kib(pid);

    chain_rows();
    for chained in [false, true] {
        let (rate, cpu) = inproc::writer_throughput(dir.path(), 50_000, chained);
        only(
            &format!(
                "event writer{}",
                if chained { " (hash-chained)" } else { "" }
            ),
            format!("{rate:.0}/s, {cpu:.1}µs CPU each"),
        );
    }
    let (rate, per_tx) = inproc::strict_throughput(dir.path(), 32, 200);
    only(
        "event writer, strict (32 threads)",
        format!("{rate:.0}/s, {per_tx:.1}/tx"),
    );
    only(
        "kt RSS at start",
        format!("{:.1}MiB", rss_start as f64 / 1024.0),
    );
    only(
        "kt RSS idle (after warm-up)",
        format!("{:.1}MiB", rss_idle as f64 / 1024.0),
    );
    only("kt wake-ups per second, idle", format!("{idle:.1}"));
    only(
        "kt peak RSS (VmHWM)",
        format!("{:.1}MiB", hwm as f64 / 1024.0),
    );
    finish(kt, gauge_start, &prompt_4k);
}

/// The default chain in process: the bench's request warm and with cold caches, then 4 KB
/// and 64 KB prompts and answers.
fn chain_rows() {
    let (warm, cold) = inproc::cold_input(3000);
    only(
        "chain input p50/p99, bench request",
        format!("{:.2}/{:.2}µs", pct(&warm, 0.5), pct(&warm, 0.99)),
    );
    only(
        "chain input p50/p99, same, caches cold",
        format!("{:.2}/{:.2}µs", pct(&cold, 0.5), pct(&cold, 0.99)),
    );
    let prompt_4k = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/prompt_injection/prompt_4k.txt"),
    )
    .unwrap();
    let prompt_64k = prompt_4k.repeat(16);
    for (name, prompt, n) in [("4 KB", &prompt_4k, 5000), ("64 KB", &prompt_64k, 500)] {
        let c = inproc::chain_cost(prompt, n);
        only(
            &format!("chain input p50/p99, {name} prompt"),
            format!("{:.1}/{:.1}µs", pct(&c.input, 0.5), pct(&c.input, 0.99)),
        );
        only(
            &format!("chain output p50/p99, {name} answer"),
            format!("{:.1}/{:.1}µs", pct(&c.output, 0.5), pct(&c.output, 0.99)),
        );
    }
}

/// The streaming rows: time to first token and gaps (one stream at a time), a short
/// request's latency while `SHORT_STREAMS` and then `streams` long streams are open.
fn stream_rows(direct: &str, via: &str, streams: usize) {
    let sbody = BODY.replacen("{\"model\"", "{\"stream\":true,\"model\"", 1);
    let (d, k) = client::streams(direct, via, &sbody, STREAMS);
    pct_rows(
        |name| format!("stream TTFT {name}"),
        P50_P99,
        &d.ttft,
        &k.ttft,
    );
    pct_rows(
        |name| format!("stream inter-token gap {name}"),
        P50_P99,
        &d.gaps,
        &k.gaps,
    );
    row(
        "stream total p50",
        "ms",
        pct(&d.total, 0.5),
        pct(&k.total, 0.5),
    );
    // The same streams with each event ending inside a word, as OpenAI's tokens do
    // (` w1`, ` w2`…): the default chain's PII filter holds the last word of what it has
    // until the next event shows it is no email address, so the first word reaches the
    // client one event gap (`STREAM_GAP`) later than it would direct.
    let split = sbody.replacen("briefly please", "split words", 1);
    let (d, k) = client::streams(direct, via, &split, SPLIT_STREAMS);
    pct_rows(
        |name| format!("stream TTFT {name}, words split (PII hold)"),
        P50_P99,
        &d.ttft,
        &k.ttft,
    );

    let hold = sbody.replacen("briefly please", "hold the line", 1);
    // A short request's latency while `SHORT_STREAMS` long streams are open, direct and
    // via kt (the direct figure is what the bench's own client and mock add).
    let d = client::hold_streams(direct, &hold, BODY, SHORT_STREAMS);
    let k = client::hold_streams(via, &hold, BODY, SHORT_STREAMS);
    pct_rows(
        |name| format!("short request {name}, {SHORT_STREAMS} streams open"),
        P50_P99,
        &d.short,
        &k.short,
    );
    if d.errors + k.errors + d.short_errors + k.short_errors > 0 {
        only(
            &format!("errors with {SHORT_STREAMS} streams open (streams/short)"),
            format!(
                "direct {}/{}, via kt {}/{}",
                d.errors, d.short_errors, k.errors, k.short_errors
            ),
        );
    }
    let held = client::hold_streams(via, &hold, BODY, streams);
    only(
        &format!("{} open streams: opened / ok / err", streams),
        format!("{}/{}/{}", held.opened, streams - held.errors, held.errors),
    );
    only(
        &format!("short request p50 / p99, {} streams open", streams),
        format!(
            "{:.3}/{:.3}ms",
            pct(&held.short, 0.5),
            pct(&held.short, 0.99)
        ),
    );
    if held.short_errors > 0 {
        only("short request errors", held.short_errors.to_string());
    }
}

/// The run's last row (the speed gauge again), then stops kt.
fn finish(kt: Kt, gauge_start: f64, prompt_4k: &str) {
    speed_gauge(gauge_start, prompt_4k);
    drop(kt);
}

/// The kt under test (its supervisor process), stopped when dropped: however the bench
/// ends, it leaves no gateway behind.
struct Kt(std::process::Child);

impl Drop for Kt {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// The machine's speed at the start and at the end of the run: the 4 KB chain input p50
/// (~65 µs on the development VM in its usual state, ~105 µs in its slow phases).
fn speed_gauge(start: f64, prompt_4k: &str) {
    let end = pct(&inproc::chain_cost(prompt_4k, 2000).input, 0.5);
    only(
        "speed gauge: 4 KB chain p50, start/end",
        format!("{start:.1}/{end:.1}µs"),
    );
}

/// One closed-loop load direct and via kt: latency rows, requests/s, kt's CPU per request.
/// Slices each load is cut into, direct and via kt taking turns.
const ROUNDS: u32 = 10;

/// Runs `load` direct and via kt in alternating slices (`ROUNDS` each, `dur` in all per
/// path), so both meet the machine in the same state: a VM's speed drifts by tens of
/// percent over minutes. Returns both loads and kt's CPU time (ms) and context switches
/// over its slices.
fn alternate(
    direct: &str,
    via: &str,
    pid: u32,
    dur: Duration,
    load: impl Fn(&str, Duration) -> client::Load,
) -> (client::Load, client::Load, KtCost) {
    let (mut d, mut k, mut cost) = (Vec::new(), Vec::new(), KtCost::default());
    for _ in 0..ROUNDS {
        d.push(load(direct, dur / ROUNDS));
        let (cpu, switches) = (cpu_ms(pid), context_switches(pid));
        k.push(load(via, dur / ROUNDS));
        cost.cpu_ms += cpu_ms(pid) - cpu;
        cost.switches += context_switches(pid).saturating_sub(switches);
    }
    (client::Load::merge(d), client::Load::merge(k), cost)
}

/// The percentiles most rows show.
const P50_P99: &[(&str, f64)] = &[("p50", 0.5), ("p99", 0.99)];

/// One row per percentile `ps` of two sorted latency samples (ms); `label` names the row
/// from the percentile's name.
fn pct_rows(label: impl Fn(&str) -> String, ps: &[(&str, f64)], direct: &[f64], via: &[f64]) {
    for &(name, p) in ps {
        row(&label(name), "ms", pct(direct, p), pct(via, p));
    }
}

/// The c=32 closed loop on shared cores through the null proxy (`relay.rs`) instead of
/// kt: what two extra loopback hops cost at that load with no work done on them.
fn relay_rows(upstream: &str, direct: &str, dur: Duration) {
    let threads = relay::start_on(upstream, None);
    relay_load(direct, &threads, "null relay", relay_settled, dur);
    // The same null proxy as an event loop per core (relay.rs): the worker model's cost.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    // `KT_BENCH_LOOPS=N`: N loops instead of one per core (how the loops' share of
    // saturated cores moves the figures, RESULTS.md twelfth session).
    let loops = std::env::var("KT_BENCH_LOOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cores);
    let event_loop = relay::start_event_loop(upstream, loops);
    relay_load(
        direct,
        &event_loop,
        "null relay, event loop",
        relay::loop_cpu_ms,
        dur,
    );
}

/// The thread relay's CPU so far, ms. Its connection threads count their CPU when they
/// end, with their slice's connections: a moment for the last to end.
fn relay_settled() -> f64 {
    std::thread::sleep(Duration::from_millis(200));
    relay::cpu_ms()
}

/// The c=32 rows of one relay at `addr` (`host:port`), named `name`; `cpu_ms` reads its
/// CPU time so far.
fn relay_load(direct: &str, addr: &str, name: &str, cpu_ms: impl Fn() -> f64, dur: Duration) {
    let relay = format!("http://{addr}/v1/chat/completions");
    client::warm(&relay, BODY);
    let cpu = cpu_ms();
    let (d, r, _) = alternate(direct, &relay, std::process::id(), dur, |url, dur| {
        client::load(url, BODY, 32, dur)
    });
    let spent = cpu_ms() - cpu;
    pct_rows(
        |p| format!("latency {p} @ c=32, {name}"),
        P50_P99,
        &d.lat,
        &r.lat,
    );
    row(&format!("requests/s @ c=32, {name}"), "", d.rps, r.rps);
    only(
        &format!("{name} CPU per request @ c=32"),
        format!("{:.0}µs", spent * 1000.0 / r.lat.len().max(1) as f64),
    );
}

/// What kt spent over a load.
#[derive(Default)]
struct KtCost {
    /// CPU time (user + system), ms.
    cpu_ms: f64,
    /// Context switches of all its threads (voluntary: a thread blocked; involuntary: it
    /// was preempted).
    switches: u64,
}

fn closed_rows(direct: &str, via: &str, pid: u32, conc: usize, dur: Duration, label: &str) {
    let (d, k, cost) = alternate(direct, via, pid, dur, |url, dur| {
        client::load(url, BODY, conc, dur)
    });
    pct_rows(
        |name| format!("latency {name} @ c={conc}{label}"),
        &[("p50", 0.5), ("p90", 0.90), ("p99", 0.99)],
        &d.lat,
        &k.lat,
    );
    row(&format!("requests/s @ c={conc}{label}"), "", d.rps, k.rps);
    only(
        &format!("kt CPU per request @ c={conc}{label}"),
        format!("{:.0}µs", cost.cpu_ms * 1000.0 / k.lat.len().max(1) as f64),
    );
    only(
        &format!("kt context switches per request @ c={conc}{label}"),
        format!("{:.2}", cost.switches as f64 / k.lat.len().max(1) as f64),
    );
    if k.errors + d.errors > 0 {
        row(
            &format!("errors @ c={conc}{label}"),
            "",
            d.errors as f64,
            k.errors as f64,
        );
    }
}

/// The CPUs this process may use, split into (the bench's, kt's): kt gets the last one
/// (of two; a quarter of more). None on one CPU.
fn split_cpus() -> Option<(Vec<usize>, Vec<usize>)> {
    let mine = rustix::thread::sched_getaffinity(None).ok()?;
    let cpus: Vec<usize> = (0..rustix::thread::CpuSet::MAX_CPU)
        .filter(|&c| mine.is_set(c))
        .collect();
    if cpus.len() < 2 {
        return None;
    }
    let kt = (cpus.len() / 4).max(1);
    let (bench, kt) = cpus.split_at(cpus.len() - kt);
    Some((bench.to_vec(), kt.to_vec()))
}

/// Pins every thread of process `pid` to `cpus` (threads it starts later inherit it).
fn pin(pid: u32, cpus: &[usize]) {
    let mut set = rustix::thread::CpuSet::new();
    for &c in cpus {
        set.set(c);
    }
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    for task in tasks.flatten() {
        let tid = task.file_name().to_string_lossy().parse::<i32>().ok();
        if let Some(tid) = tid.and_then(rustix::process::Pid::from_raw) {
            // A thread that exited meanwhile is no error.
            let _ = rustix::thread::sched_setaffinity(Some(tid), &set);
        }
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `kt gateway run` is a supervisor whose child serves: measure the child.
fn server_pid(supervisor: u32) -> u32 {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        let children =
            std::fs::read_to_string(format!("/proc/{supervisor}/task/{supervisor}/children"))
                .unwrap_or_default();
        if let Some(pid) = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
        {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    supervisor
}

/// CPU time (user + system) the process has used, in ms: /proc/PID/stat's utime and
/// stime, in USER_HZ ticks (100 per second on Linux).
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<f64>() * 10.0
}

/// Context switches of every thread of `pid` alive now (threads that ended are not
/// counted: the gateway's pool keeps its threads through a load).
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    let mut n = 0;
    for task in tasks.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if let Some(v) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                n += v.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    n
}

/// Context switches per second of the supervisor and the server together while no
/// request comes: what an idle gateway costs a laptop's battery.
fn idle_wakeups(pids: &[u32], over: Duration) -> f64 {
    let count = || pids.iter().map(|&p| context_switches(p)).sum::<u64>();
    let before = count();
    std::thread::sleep(over);
    count().saturating_sub(before) as f64 / over.as_secs_f64()
}

fn rss_kib(pid: u32) -> u64 {
    proc_status(pid, "VmRSS:")
}

fn hwm_kib(pid: u32) -> u64 {
    proc_status(pid, "VmHWM:")
}

fn proc_status(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Starts the kt of this example's profile (`target/<profile>/kt`); returns it and its
/// address.
fn start_kt(upstream: &str, dir: &std::path::Path) -> (Kt, String) {
    // `KT_BENCH_BIN`: another build to measure (comparing two builds on one machine).
    let kt = std::env::var_os("KT_BENCH_BIN").map_or_else(
        || {
            let exe = std::env::current_exe().unwrap();
            // target/dist/examples/bench -> target/dist/kt (or release/)
            exe.parent().and_then(|p| p.parent()).unwrap().join("kt")
        },
        std::path::PathBuf::from,
    );
    assert!(
        kt.exists(),
        "build kt first with this profile: cargo build --profile dist (or --release) ({} missing)",
        kt.display()
    );
    let mut child = Command::new(kt)
        .args(["gateway", "run", "--listen", "127.0.0.1:0", "--upstream"])
        .arg(format!("http://{upstream}/v1"))
        .arg("--db")
        .arg(dir.join("bench.db"))
        .env("KT_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .expect("kt did not start")
        .to_string();
    (Kt(child), addr)
}
