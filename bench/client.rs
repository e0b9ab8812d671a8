//! The bench's clients: ureq, one keep-alive connection per client thread, the same code
//! for the direct and the through-kt path.

use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn post(
    agent: &ureq::Agent,
    url: &str,
    body: &str,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body)
}

pub fn warm(url: &str, body: &str) {
    let agent = agent();
    for _ in 0..200 {
        let mut r = post(&agent, url, body).expect("warm-up request");
        assert_eq!(
            r.status().as_u16(),
            200,
            "warm-up against {url}: {}",
            r.body_mut().read_to_string().unwrap_or_default()
        );
        r.body_mut().read_to_vec().ok();
    }
}

/// One request: its latency in ms since `from` when answered 200, else an error.
fn timed(
    agent: &ureq::Agent,
    url: &str,
    body: &str,
    from: Instant,
    lat: &mut Vec<f64>,
    errors: &mut u64,
) {
    match post(agent, url, body) {
        Ok(mut r) if r.status().as_u16() == 200 => {
            r.body_mut().read_to_vec().ok();
            lat.push(from.elapsed().as_secs_f64() * 1000.0);
        }
        _ => *errors += 1,
    }
}

/// Latencies (ms, sorted) of a closed-loop load.
pub struct Load {
    pub lat: Vec<f64>,
    pub rps: f64,
    pub errors: u64,
}

impl Load {
    /// One load from slices of it run at different times.
    pub fn merge(parts: Vec<Load>) -> Load {
        let secs: f64 = parts
            .iter()
            .filter(|p| p.rps > 0.0)
            .map(|p| p.lat.len() as f64 / p.rps)
            .sum();
        let mut lat: Vec<f64> = Vec::new();
        let mut errors = 0;
        for p in parts {
            lat.extend(p.lat);
            errors += p.errors;
        }
        lat.sort_by(f64::total_cmp);
        Load {
            rps: if secs > 0.0 {
                lat.len() as f64 / secs
            } else {
                0.0
            },
            lat,
            errors,
        }
    }

    /// Joins the clients' threads (each returns its latencies and errors).
    fn join(handles: Vec<std::thread::JoinHandle<(Vec<f64>, u64)>>, start: Instant) -> Load {
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
}

/// Starts `conc` client threads, each with its own agent (one keep-alive connection),
/// running `run(agent, latencies, errors)`; joins them into a load timed from `start`.
fn clients(
    conc: usize,
    start: Instant,
    run: impl Fn(&ureq::Agent, &mut Vec<f64>, &mut u64) + Send + Sync + 'static,
) -> Load {
    let run = Arc::new(run);
    let handles: Vec<_> = (0..conc)
        .map(|_| {
            let run = run.clone();
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let agent = agent();
                    let mut lat = Vec::new();
                    let mut errors = 0u64;
                    run(&agent, &mut lat, &mut errors);
                    (lat, errors)
                })
                .unwrap()
        })
        .collect();
    Load::join(handles, start)
}

/// `conc` clients, each sending requests back to back for `dur`.
pub fn load(url: &str, body: &str, conc: usize, dur: Duration) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let (url, body, flag) = (url.to_string(), body.to_string(), stop.clone());
    let start = Instant::now();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(dur);
        flag.store(true, Ordering::Relaxed);
    });
    let load = clients(conc, start, move |agent, lat, errors| {
        while !stop.load(Ordering::Relaxed) {
            timed(agent, &url, &body, Instant::now(), lat, errors);
        }
    });
    stopper.join().unwrap();
    load
}

/// Open loop: requests scheduled at a fixed `rate` (per second) for `dur`, sent by up to
/// `conc` clients. Each latency counts from the request's scheduled time, so a request
/// that had to wait for a free client counts its wait (no coordinated omission). This
/// is latency at a load the machine carries, where the closed loop above measures how
/// the CPU is shared at saturation.
pub fn paced(url: &str, body: &str, rate: f64, conc: usize, dur: Duration) -> Load {
    let next = AtomicUsize::new(0);
    let total = (rate * dur.as_secs_f64()) as usize;
    let start = Instant::now() + Duration::from_millis(20);
    let (url, body) = (url.to_string(), body.to_string());
    clients(conc, start, move |agent, lat, errors| loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            break;
        }
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        timed(agent, &url, &body, due, lat, errors);
    })
}

/// Per stream: time to the first content event, the gaps between content events, the
/// total time (all ms, sorted).
pub struct Streams {
    pub ttft: Vec<f64>,
    pub gaps: Vec<f64>,
    pub total: Vec<f64>,
}

impl Streams {
    fn new() -> Streams {
        Streams {
            ttft: Vec::new(),
            gaps: Vec::new(),
            total: Vec::new(),
        }
    }

    /// Reads one stream from `url` to its end, recording its times.
    fn one(&mut self, agent: &ureq::Agent, url: &str, body: &str) {
        let t = Instant::now();
        let r = post(agent, url, body).unwrap();
        let mut reader = BufReader::new(r.into_body().into_reader());
        let mut line = String::new();
        let mut last: Option<f64> = None;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            // An event with text (kt's PII filter may send one whose text it holds back
            // as `"content":""`).
            if line.contains("\"content\":\"") && !line.contains("\"content\":\"\"") {
                let now = t.elapsed().as_secs_f64() * 1000.0;
                match last {
                    None => self.ttft.push(now),
                    Some(prev) => self.gaps.push(now - prev),
                }
                last = Some(now);
            }
        }
        self.total.push(t.elapsed().as_secs_f64() * 1000.0);
    }

    fn sorted(mut self) -> Streams {
        for v in [&mut self.ttft, &mut self.gaps, &mut self.total] {
            v.sort_by(f64::total_cmp);
        }
        self
    }
}

/// `n` streams each way, one at a time, direct and via kt taking turns stream by stream:
/// a p99 of a few hundred samples is a handful of streams, and a VM's slow minute must
/// fall on both paths alike rather than on whichever ran then.
pub fn streams(direct: &str, via: &str, body: &str, n: usize) -> (Streams, Streams) {
    let (da, ka) = (agent(), agent());
    let (mut d, mut k) = (Streams::new(), Streams::new());
    for _ in 0..n {
        d.one(&da, direct, body);
        k.one(&ka, via, body);
    }
    (d.sorted(), k.sorted())
}

/// What holding many streams open did.
pub struct Held {
    pub opened: usize,
    pub errors: usize,
    /// Short requests' latencies (ms, sorted) measured while every stream was open.
    pub short: Vec<f64>,
    pub short_errors: usize,
}

/// Opens `n` long streams at once; once all are open, sends short requests back to back
/// (one client) until the first stream ends; then waits for every stream.
pub fn hold_streams(url: &str, stream_body: &str, short_body: &str, n: usize) -> Held {
    let opened = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (url, body) = (url.to_string(), stream_body.to_string());
            let (opened, ended) = (opened.clone(), ended.clone());
            std::thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || {
                    let ok = match post(&agent(), &url, &body) {
                        Ok(r) if r.status().as_u16() == 200 => {
                            opened.fetch_add(1, Ordering::SeqCst);
                            let text = r.into_body().read_to_string().unwrap_or_default();
                            text.contains("[DONE]") && !text.contains("\"error\"")
                        }
                        _ => false,
                    };
                    ended.fetch_add(1, Ordering::SeqCst);
                    ok
                })
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while opened.load(Ordering::SeqCst) + ended.load(Ordering::SeqCst) < n
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let agent = agent();
    let mut short = Vec::new();
    let mut short_errors = 0;
    while ended.load(Ordering::SeqCst) == 0 && short.len() < 2000 {
        let t = Instant::now();
        match post(&agent, url, short_body) {
            Ok(mut r) if r.status().as_u16() == 200 => {
                r.body_mut().read_to_vec().ok();
                short.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            _ => short_errors += 1,
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    short.sort_by(f64::total_cmp);
    let opened_n = opened.load(Ordering::SeqCst);
    let completed = handles
        .into_iter()
        .map(|h| h.join().unwrap_or(false))
        .filter(|ok| *ok)
        .count();
    Held {
        opened: opened_n,
        errors: n - completed,
        short,
        short_errors,
    }
}
