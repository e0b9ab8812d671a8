//! Crash containment: `kt gateway run` is a small supervisor that runs the real server in a
//! child process (itself, with `KT_GATEWAY_WORKER=1`) and restarts it on the same address
//! when it dies abnormally — the nginx master/worker pattern. Whatever aborts the server (a
//! bug we have not found, an allocation failure in a dependency), the supervisor turns it
//! into a restart of a few milliseconds instead of an outage. SIGINT/SIGTERM (and SIGHUP, the
//! configuration reload) are forwarded, and the child gets
//! SIGTERM if the supervisor itself dies (PR_SET_PDEATHSIG).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use super::server::GatewayError;
use crate::exit::ExitStatus;

/// Set in the child: run the server itself instead of supervising.
pub const WORKER_ENV: &str = "KT_GATEWAY_WORKER";
/// Set in a restarted child: the address the first child resolved (port 0 → real port).
pub const LISTEN_ENV: &str = "KT_GATEWAY_LISTEN";

/// Restarts closer together than this are delayed, so a crash loop cannot spin a core.
const MIN_RESTART_GAP: Duration = Duration::from_millis(200);

/// True in the server child.
pub fn is_worker() -> bool {
    std::env::var_os(WORKER_ENV).is_some()
}

/// In the child: die with the supervisor, and take the address a restart must reuse.
pub fn worker_setup(listen: SocketAddr) -> SocketAddr {
    if let Err(e) = rustix::process::set_parent_process_death_signal(Some(Signal::TERM)) {
        crate::logging::warn(&format!("failed to set the parent-death signal: {e}"));
    }
    std::env::var(LISTEN_ENV)
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or(listen)
}

/// Sleeps until one of a set of signals arrives (the self-pipe pattern): an idle gateway
/// wakes for nothing, instead of polling a flag every few milliseconds. The signals'
/// `signal_hook::flag`s must be registered first, so a flag is set when its wake-up comes.
pub struct SignalWake {
    rx: UnixStream,
}

impl SignalWake {
    pub fn new(signals: &[std::os::raw::c_int]) -> std::io::Result<SignalWake> {
        let (rx, tx) = UnixStream::pair()?;
        for &sig in signals {
            signal_hook::low_level::pipe::register(sig, tx.try_clone()?)?;
        }
        Ok(SignalWake { rx })
    }

    /// Returns when a signal came (since the last call) or after `timeout` (`None`: no
    /// limit).
    pub fn wait(&mut self, timeout: Option<Duration>) {
        let timeout = timeout.map(|t| t.max(Duration::from_millis(1)));
        if self.rx.set_read_timeout(timeout).is_err() {
            std::thread::sleep(timeout.unwrap_or(Duration::from_millis(50)));
            return;
        }
        // One read takes every byte the signals wrote so far; a timeout is no error here.
        let _ = self.rx.read(&mut [0u8; 64]);
    }
}

/// Raises the soft open-file limit to the hard limit: every connection is a descriptor.
pub fn raise_fd_limit() {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if let Some(max) = limit.maximum {
        if limit.current != Some(max) {
            let raised = rustix::process::Rlimit {
                current: Some(max),
                maximum: Some(max),
            };
            if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Nofile, raised) {
                crate::logging::warn(&format!("failed to raise the open-file limit: {e}"));
            }
        }
    }
}

/// Runs and restarts the server child until SIGINT/SIGTERM or a clean exit; returns the
/// exit status the child ended with. The supervisor loads no configuration itself (the
/// child reports config errors and exits 1), so it stays a few MiB.
pub fn supervise(on_ready: impl FnOnce(SocketAddr)) -> Result<ExitStatus, GatewayError> {
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, shutdown.clone()).map_err(GatewayError::Signals)?;
    }
    // SIGHUP (reload the configuration) goes on to the server process.
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
        .map_err(GatewayError::Signals)?;
    // Woken by a signal to forward or by the child's exit (SIGCHLD), nothing else.
    let mut wake = SignalWake::new(&[
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGCHLD,
    ])
    .map_err(GatewayError::Signals)?;
    let exe = std::env::current_exe()
        .map_err(|e| GatewayError::Server(format!("failed to find the kt binary: {e}")))?;
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let mut on_ready = Some(on_ready);
    let mut bound: Option<SocketAddr> = None;
    let mut last_start: Option<Instant> = None;
    loop {
        if let Some(t) = last_start {
            let gap = t.elapsed();
            if gap < MIN_RESTART_GAP {
                std::thread::sleep(MIN_RESTART_GAP - gap);
            }
        }
        last_start = Some(Instant::now());
        let mut cmd = Command::new(&exe);
        cmd.args(&args)
            .env(WORKER_ENV, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        if let Some(addr) = bound {
            cmd.env(LISTEN_ENV, addr.to_string());
        }
        let mut child = cmd.spawn().map_err(|e| {
            GatewayError::Server(format!("failed to start the server process: {e}"))
        })?;
        let ready = forward_stdout(&mut child);
        let mut announced = false;
        let status = loop {
            if !announced {
                if let Ok(addr) = ready.try_recv() {
                    announced = true;
                    if bound.is_none() {
                        bound = Some(addr);
                        if let Some(f) = on_ready.take() {
                            f(addr);
                        }
                    }
                }
            }
            if shutdown.load(Ordering::Relaxed) {
                // Forward once; the child drains in-flight requests and exits on its own.
                shutdown.store(false, Ordering::Relaxed);
                signal(&child, Signal::TERM);
                let status = child
                    .wait()
                    .map_err(|e| GatewayError::Server(format!("failed to wait: {e}")))?;
                return exit_result(status);
            }
            if reload.swap(false, Ordering::Relaxed) {
                signal(&child, Signal::HUP);
            }
            match child.try_wait() {
                Ok(Some(status)) => break status,
                // Until the child says where it listens, look every 20 ms; then sleep
                // until a signal or its exit.
                Ok(None) => wake.wait((!announced).then_some(Duration::from_millis(20))),
                Err(e) => return Err(GatewayError::Server(format!("failed to wait: {e}"))),
            }
        };
        if status.code().is_some() || !announced && bound.is_none() {
            // A clean exit, a startup failure or a config error: nothing to restart.
            return exit_result(status);
        }
        crate::logging::error(&format!(
            "the server process died ({status}); restarting it on {}",
            bound.map(|a| a.to_string()).unwrap_or_default()
        ));
    }
}

fn signal(child: &Child, sig: Signal) {
    let _ = rustix::process::kill_process(Pid::from_child(child), sig);
}

fn exit_result(status: std::process::ExitStatus) -> Result<ExitStatus, GatewayError> {
    match status.code() {
        Some(0) => Ok(ExitStatus::Success),
        Some(1) => Ok(ExitStatus::Failure),
        Some(_) => Ok(ExitStatus::Error),
        None => Err(GatewayError::Server(format!(
            "the server process exited with {status}"
        ))),
    }
}

/// Copies the child's stdout to ours, except the `listening on` line, whose address it
/// sends instead (the supervisor announces it once, through `on_ready`).
fn forward_stdout(child: &mut Child) -> mpsc::Receiver<SocketAddr> {
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .strip_prefix("listening on http://")
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                {
                    let _ = tx.send(addr);
                    continue;
                }
                let mut o = std::io::stdout().lock();
                let _ = writeln!(o, "{line}");
                let _ = o.flush();
            }
        });
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_wake_returns_on_a_signal_and_else_at_its_timeout() {
        let sig = signal_hook::consts::SIGUSR2;
        let flag = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(sig, flag.clone()).unwrap();
        let mut wake = SignalWake::new(&[sig]).unwrap();

        let t = Instant::now();
        wake.wait(Some(Duration::from_millis(30)));
        assert!(t.elapsed() >= Duration::from_millis(30));
        assert!(!flag.load(Ordering::SeqCst));

        // A signal raised before the wait is not lost (the byte waits in the pipe).
        rustix::process::kill_process(rustix::process::getpid(), Signal::USR2).unwrap();
        let t = Instant::now();
        wake.wait(Some(Duration::from_secs(60)));
        assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
        assert!(flag.load(Ordering::SeqCst));
    }
}
