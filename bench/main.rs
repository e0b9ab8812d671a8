//! kt benchmark: direct-to-mock vs through kt, on loopback, in one run.
//!
//! `cargo run --release --example bench -- [--seconds N]` (see bench/README.md).
//! Starts an in-process mock upstream (keep-alive HTTP/1.1, fixed answers), starts the
//! release `kt gateway run` pointed at it with `--upstream`, then measures both paths with
//! the same client code.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::panic
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const COMPLETION: &str = r#"{"id":"chatcmpl-b","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox jumps over the lazy dog."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":10,"total_tokens":22}}"#;
const STREAM_EVENTS: usize = 20;
const STREAM_GAP: Duration = Duration::from_millis(5);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let upstream = start_mock();
    let (mut kt, kt_addr, dir) = start_kt(&upstream);
    let pid = kt.id();
    let body = r#"{"model":"gpt-4o","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say something about foxes and dogs, briefly please."}]}"#;
    let direct = format!("http://{upstream}/v1/chat/completions");
    let via = format!("http://{kt_addr}/v1/chat/completions");
    let dur = Duration::from_secs(seconds);

    println!(
        "kt bench — {} cores, {}s per measurement\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        seconds
    );
    warm(&direct, body);
    warm(&via, body);
    let rss_idle = rss_kib(pid);
    println!(
        "{:<34} {:>12} {:>12} {:>12}",
        "measurement", "direct", "via kt", "added"
    );
    for conc in [1usize, 32] {
        let d = load(&direct, body, conc, dur);
        let k = load(&via, body, conc, dur);
        for (name, p) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99)] {
            let (a, b) = (pct(&d.lat, p), pct(&k.lat, p));
            println!(
                "{:<34} {:>10.3}ms {:>10.3}ms {:>10.3}ms",
                format!("latency {name} @ c={conc}"),
                a,
                b,
                b - a
            );
        }
        println!(
            "{:<34} {:>12.0} {:>12.0} {:>11.1}%",
            format!("requests/s @ c={conc}"),
            d.rps,
            k.rps,
            (k.rps / d.rps) * 100.0
        );
        if k.errors + d.errors > 0 {
            println!("{:<34} {:>12} {:>12}", "errors", d.errors, k.errors);
        }
    }
    let sbody = body.replacen("{\"model\"", "{\"stream\":true,\"model\"", 1);
    let (d_ttft, d_total) = stream_times(&direct, &sbody, 50);
    let (k_ttft, k_total) = stream_times(&via, &sbody, 50);
    println!(
        "{:<34} {:>10.3}ms {:>10.3}ms {:>10.3}ms",
        "stream TTFT p50",
        pct(&d_ttft, 0.5),
        pct(&k_ttft, 0.5),
        pct(&k_ttft, 0.5) - pct(&d_ttft, 0.5)
    );
    println!(
        "{:<34} {:>10.3}ms {:>10.3}ms {:>10.3}ms",
        "stream TTFT p99",
        pct(&d_ttft, 0.99),
        pct(&k_ttft, 0.99),
        pct(&k_ttft, 0.99) - pct(&d_ttft, 0.99)
    );
    println!(
        "{:<34} {:>10.3}ms {:>10.3}ms {:>10.3}ms",
        "stream total p50",
        pct(&d_total, 0.5),
        pct(&k_total, 0.5),
        pct(&k_total, 0.5) - pct(&d_total, 0.5)
    );
    println!(
        "{:<34} {:>12} {:>10}KiB",
        "kt RSS idle (after warm-up)", "", rss_idle
    );
    println!(
        "{:<34} {:>12} {:>10}KiB",
        "kt peak RSS (VmHWM)",
        "",
        hwm_kib(pid)
    );
    kt.kill().ok();
    kt.wait().ok();
    drop(dir);
}

struct Load {
    lat: Vec<f64>,
    rps: f64,
    errors: u64,
}

fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn warm(url: &str, body: &str) {
    let agent = client();
    for _ in 0..200 {
        let mut r = agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body)
            .expect("warm-up request");
        assert_eq!(
            r.status().as_u16(),
            200,
            "warm-up against {url}: {}",
            r.body_mut().read_to_string().unwrap_or_default()
        );
        r.body_mut().read_to_vec().ok();
    }
}

fn load(url: &str, body: &str, conc: usize, dur: Duration) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..conc)
        .map(|_| {
            let (url, body, stop) = (url.to_string(), body.to_string(), stop.clone());
            std::thread::spawn(move || {
                let agent = client();
                let mut lat = Vec::new();
                let mut errors = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match agent
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .send(body.as_str())
                    {
                        Ok(mut r) if r.status().as_u16() == 200 => {
                            r.body_mut().read_to_vec().ok();
                            lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    std::thread::sleep(dur);
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.join().unwrap();
        lat.extend(l);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    Load {
        rps: lat.len() as f64 / secs,
        lat,
        errors,
    }
}

/// Time to the first content byte and to the end of the stream, `n` times.
fn stream_times(url: &str, body: &str, n: usize) -> (Vec<f64>, Vec<f64>) {
    let agent = client();
    let (mut ttft, mut total) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        let r = agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap();
        let mut reader = BufReader::new(r.into_body().into_reader());
        let mut line = String::new();
        let mut first = None;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if first.is_none() && line.contains("\"content\":\"w") {
                first = Some(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        ttft.push(first.unwrap_or(f64::NAN));
        total.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ttft.sort_by(f64::total_cmp);
    total.sort_by(f64::total_cmp);
    (ttft, total)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
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

fn start_kt(upstream: &str) -> (std::process::Child, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // target/release/examples/bench -> target/release/kt
    let kt = exe.parent().and_then(|p| p.parent()).unwrap().join("kt");
    assert!(
        kt.exists(),
        "build kt first: cargo build --release ({} missing)",
        kt.display()
    );
    let mut child = Command::new(kt)
        .args(["gateway", "run", "--listen", "127.0.0.1:0", "--upstream"])
        .arg(format!("http://{upstream}/v1"))
        .arg("--db")
        .arg(dir.path().join("bench.db"))
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
    (child, addr, dir)
}

/// A minimal keep-alive HTTP/1.1 upstream: JSON completions, or an SSE stream of
/// `STREAM_EVENTS` words `STREAM_GAP` apart when the body asks for `"stream":true`.
fn start_mock() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || serve(s));
        }
    });
    addr
}

fn serve(stream: TcpStream) {
    stream.set_nodelay(true).ok();
    let mut r = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        if body.windows(13).any(|x| x == b"\"stream\":true") {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
            if w.write_all(head.as_bytes()).is_err() {
                return;
            }
            for i in 0..=STREAM_EVENTS {
                let ev = if i == STREAM_EVENTS {
                    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n".to_string()
                } else {
                    format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i} \"}},\"finish_reason\":null}}]}}\n\n")
                };
                if w.write_all(format!("{:x}\r\n{ev}\r\n", ev.len()).as_bytes())
                    .is_err()
                {
                    return;
                }
                if i + 1 < STREAM_EVENTS {
                    std::thread::sleep(STREAM_GAP);
                }
            }
            if w.write_all(b"0\r\n\r\n").is_err() {
                return;
            }
        } else {
            let resp = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{COMPLETION}", COMPLETION.len());
            if w.write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    }
}
