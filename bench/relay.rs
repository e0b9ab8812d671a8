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

/// Starts the relay in front of `upstream` (`host:port`); returns its `host:port`.
pub fn start(upstream: &str) -> String {
    let listener = crate::mock::listen();
    let addr = listener.local_addr().unwrap().to_string();
    let upstream = upstream.to_string();
    std::thread::spawn(move || {
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
    loop {
        if read_message(&mut from_client, &mut message).is_none()
            || to_up.write_all(&message).is_err()
        {
            return;
        }
        if read_message(&mut from_up, &mut message).is_none()
            || to_client.write_all(&message).is_err()
        {
            return;
        }
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
