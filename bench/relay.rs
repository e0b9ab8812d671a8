//! The null proxy: the least any HTTP proxy does between a client and an upstream, and
//! nothing more. A thread per client connection with its own keep-alive upstream
//! connection; each request is framed (head up to the empty line, `Content-Length` body),
//! written upstream in one write, and the answer framed the same way and written back in
//! one write. No parsing beyond that, no policy, no JSON, no events, no logging.
//!
//! It measures what the two extra loopback hops of a proxy cost on this machine: at c=32
//! on shared cores, what it adds is a floor no gateway placed between client and upstream
//! goes below (bench/README.md).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};

/// CPU time (ns) of the relay's connection threads that have ended.
static CPU_NS: AtomicU64 = AtomicU64::new(0);

/// CPU time the relay's ended connection threads spent, in ms.
pub fn cpu_ms() -> f64 {
    CPU_NS.load(Ordering::Relaxed) as f64 / 1e6
}

/// Adds its thread's CPU time to `CPU_NS` when the connection thread ends.
struct CountCpu;

impl Drop for CountCpu {
    fn drop(&mut self) {
        let ns = crate::inproc::cpu_ns(rustix::time::ClockId::ThreadCPUTime);
        CPU_NS.fetch_add(u64::try_from(ns).unwrap_or(0), Ordering::Relaxed);
    }
}

/// Starts the relay in front of `upstream` (`host:port`); returns its `host:port`. With
/// `cpus`, its threads run only there (the connection threads inherit the listener's
/// affinity).
pub fn start_on(upstream: &str, cpus: Option<&[usize]>) -> String {
    let listener = crate::mock::listen();
    let addr = listener.local_addr().unwrap().to_string();
    let upstream = upstream.to_string();
    let cpus = cpus.map(<[usize]>::to_vec);
    std::thread::spawn(move || {
        if let Some(cpus) = cpus {
            let mut set = rustix::thread::CpuSet::new();
            for c in cpus {
                set.set(c);
            }
            rustix::thread::sched_setaffinity(None, &set).unwrap();
        }
        for s in listener.incoming().flatten() {
            let upstream = upstream.clone();
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || relay(s, &upstream))
                .ok();
        }
    });
    addr
}

fn relay(client: TcpStream, upstream: &str) {
    let _count = CountCpu;
    client.set_nodelay(true).ok();
    let Ok(up) = TcpStream::connect(upstream) else {
        return;
    };
    up.set_nodelay(true).ok();
    let (Ok(client_reader), Ok(up_reader)) = (client.try_clone(), up.try_clone()) else {
        return;
    };
    let (mut from_client, mut to_client) = (BufReader::new(client_reader), client);
    let (mut from_up, mut to_up) = (BufReader::new(up_reader), up);
    let mut message = Vec::with_capacity(4096);
    let burn = burn();
    loop {
        if read_message(&mut from_client, &mut message).is_none() {
            return;
        }
        if !burn.is_zero() {
            spin(burn);
        }
        if to_up.write_all(&message).is_err() {
            return;
        }
        if read_message(&mut from_up, &mut message).is_none()
            || to_client.write_all(&message).is_err()
        {
            return;
        }
    }
}

/// `KT_BENCH_RELAY_BURN_US`: CPU time the relay spends on each request before sending
/// it on (0 by default): the relay then stands in for a gateway that costs that much per
/// request, which maps CPU per request to added latency at c=32 on shared cores.
fn burn() -> std::time::Duration {
    std::env::var("KT_BENCH_RELAY_BURN_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(std::time::Duration::ZERO, std::time::Duration::from_micros)
}

/// Keeps the CPU busy for `d` of this thread's CPU time.
fn spin(d: std::time::Duration) {
    let cpu = || crate::inproc::cpu_ns(rustix::time::ClockId::ThreadCPUTime);
    let until = cpu().saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    while cpu() < until {
        std::hint::spin_loop();
    }
}

/// Reads one HTTP/1.1 message framed by `Content-Length` into `out` (head and body);
/// the length of its head, `None` when the connection ended first. The mock frames its
/// requests with it too.
pub fn read_message(r: &mut BufReader<TcpStream>, out: &mut Vec<u8>) -> Option<usize> {
    out.clear();
    let mut len = 0usize;
    loop {
        let start = out.len();
        match r.read_until(b'\n', out) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let line = &out[start..];
        if line == b"\r\n" {
            break;
        }
        if line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:") {
            len = std::str::from_utf8(&line[15..])
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
        }
    }
    let head = out.len();
    out.resize(head + len, 0);
    r.read_exact(&mut out[head..]).ok().map(|()| head)
}

/// The null proxy as an event loop: `threads` loops, each with an epoll set, relay bytes
/// between each client connection and its own upstream connection (level-triggered, one
/// `recv` and one `send` per readiness). Nothing is parsed. Where the thread-per-connection
/// relay sleeps twice per request (waiting for the client, then for the upstream), a loop
/// under load finds the next ready socket without sleeping: the difference between the two
/// is what the worker model costs at c=32 on shared cores.
pub fn start_event_loop(upstream: &str, threads: usize) -> String {
    use rustix::event::epoll;
    let listener = crate::mock::listen();
    let addr = listener.local_addr().unwrap().to_string();
    let upstream = upstream.to_string();
    let loops: Vec<(std::os::fd::OwnedFd, Slab)> = (0..threads)
        .map(|_| {
            (
                epoll::create(epoll::CreateFlags::CLOEXEC).unwrap(),
                Slab::default(),
            )
        })
        .collect();
    for (ep, slab) in &loops {
        let (ep, slab) = (ep.try_clone().unwrap(), slab.clone());
        std::thread::spawn(move || event_loop(&ep, &slab));
    }
    std::thread::spawn(move || {
        for (i, s) in listener.incoming().flatten().enumerate() {
            let Ok(up) = TcpStream::connect(&upstream) else {
                continue;
            };
            for t in [&s, &up] {
                t.set_nodelay(true).ok();
                t.set_nonblocking(true).ok();
            }
            let (ep, slab) = &loops[i % loops.len()];
            let mut pairs = slab.lock().unwrap();
            // Slots are never reused: an event still queued for a closed pair finds None.
            let slot = pairs.len() as u64;
            let data = |side: u64| epoll::EventData::new_u64(slot * 2 + side);
            epoll::add(ep, &s, data(0), epoll::EventFlags::IN).ok();
            epoll::add(ep, &up, data(1), epoll::EventFlags::IN).ok();
            pairs.push(Some([s, up]));
        }
    });
    addr
}

/// A loop's connection pairs (client, upstream), by slot.
type Slab = std::sync::Arc<std::sync::Mutex<Vec<Option<[TcpStream; 2]>>>>;

/// The event loops' thread ids.
static LOOPS: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// CPU time the event loops have spent so far, in ms (from the scheduler's count, ns).
pub fn loop_cpu_ms() -> f64 {
    let loops = LOOPS.lock().unwrap();
    let ns: u64 = loops
        .iter()
        .filter_map(|tid| std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e6
}

fn event_loop(ep: &std::os::fd::OwnedFd, slab: &Slab) {
    use rustix::event::epoll;
    use rustix::net::{recv, RecvFlags};
    let mut events: Vec<epoll::Event> = Vec::with_capacity(256);
    let mut buf = vec![0u8; 64 * 1024];
    LOOPS
        .lock()
        .unwrap()
        .push(rustix::thread::gettid().as_raw_nonzero().get());
    loop {
        events.clear();
        if epoll::wait(ep, rustix::buffer::spare_capacity(&mut events), None).is_err() {
            continue;
        }
        let mut pairs = slab.lock().unwrap();
        for ev in &events {
            let data = ev.data.u64();
            let (slot, side) = ((data / 2) as usize, (data % 2) as usize);
            let Some(Some(pair)) = pairs.get(slot) else {
                continue;
            };
            let ok = match recv(&pair[side], &mut buf, RecvFlags::empty()) {
                Ok((0, _)) => false,
                Ok((n, _)) => send_all(&pair[1 - side], &buf[..n]),
                Err(e) => e == rustix::io::Errno::AGAIN,
            };
            if !ok {
                // Closing both ends takes them out of the epoll set.
                pairs[slot] = None;
            }
        }
    }
}

/// Writes all of `bytes` to a non-blocking socket, waiting while its buffer is full.
fn send_all(mut to: &TcpStream, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        match to.write(bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut fds = [rustix::event::PollFd::new(
                    to,
                    rustix::event::PollFlags::OUT,
                )];
                if rustix::event::poll(&mut fds, None).is_err() {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}
