//! The tiny_http loop: the listener (TCP_NODELAY and socket timeouts set before tiny_http
//! takes it), the worker pool, signals and graceful shutdown.

use std::net::{SocketAddr, TcpListener};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::{handlers, supervisor, GatewayOptions, State};
use crate::store::EventWriter;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("failed to listen on `{addr}`")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start the HTTP server: {0}")]
    Server(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Config(String),
    #[error("failed to install signal handlers")]
    Signals(#[source] std::io::Error),
}

/// Client sockets: a write that stalls this long fails (a client that stopped reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(120);
/// Client sockets: reading a request (or waiting on an idle keep-alive connection) fails
/// after this long without a byte. Short on purpose: tiny_http runs each connection on a
/// thread of its own pool, and that pool can leave a connection that arrived in a burst
/// queued until another connection ends (see docs/ARCHITECTURE.md); closing idle
/// keep-alive connections promptly bounds that wait.
const READ_TIMEOUT: Duration = Duration::from_secs(3);

fn listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    // Inherited by accepted sockets on Linux: no Nagle stalls on streamed tokens, and no
    // connection can hang a worker forever.
    socket.set_nodelay(true)?;
    socket.set_read_timeout(Some(READ_TIMEOUT))?;
    socket.set_write_timeout(Some(WRITE_TIMEOUT))?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Runs the gateway until SIGINT/SIGTERM. `on_ready` gets the bound address (port 0
/// resolved) once the server accepts connections.
pub fn run(
    mut opts: GatewayOptions,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), GatewayError> {
    if !supervisor::is_worker() {
        return supervisor::supervise(on_ready);
    }
    supervisor::raise_fd_limit();
    opts.listen = supervisor::worker_setup(opts.listen);
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, shutdown.clone()).map_err(GatewayError::Signals)?;
    }
    let retention = crate::policy::audit_logger::settings_of(&opts.configs.default)
        .and_then(|a| a.retention_days);
    let writer = EventWriter::start(&opts.db, retention)?;
    let state = Arc::new(State::build(&opts, writer.sink()).map_err(GatewayError::Config)?);

    let tcp = listener(opts.listen).map_err(|source| GatewayError::Bind {
        addr: opts.listen,
        source,
    })?;
    let addr = tcp.local_addr().map_err(|source| GatewayError::Bind {
        addr: opts.listen,
        source,
    })?;
    let server = Arc::new(
        tiny_http::Server::from_listener(tcp, None)
            .map_err(|e| GatewayError::Server(e.to_string()))?,
    );

    let workers: Vec<_> = (0..opts.max_concurrency.max(1))
        .map(|i| {
            let server = server.clone();
            let state = state.clone();
            std::thread::Builder::new()
                .name(format!("kt-worker-{i}"))
                .stack_size(256 * 1024)
                .spawn(move || worker(&server, &state))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| GatewayError::Server(format!("failed to spawn workers: {e}")))?;

    spawn_heartbeat(addr, state.clone());
    on_ready(addr);

    let mut last_check = Instant::now();
    while !shutdown.load(Ordering::Relaxed) && !state.listener_dead.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if last_check.elapsed() >= WATCHDOG_PERIOD {
            last_check = Instant::now();
            listener_watchdog(addr);
        }
    }
    let listener_died = state.listener_dead.load(Ordering::Relaxed);
    if listener_died {
        crate::logging::error(
            "the listener stopped accepting connections; shutting down so a supervisor can restart kt",
        );
    }
    crate::logging::info("shutting down: finishing in-flight requests");
    state.shutting_down.store(true, Ordering::SeqCst);
    for _ in 0..workers.len() {
        server.unblock();
    }
    let deadline = Instant::now() + opts.shutdown_grace;
    for w in workers {
        while !w.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if w.is_finished() {
            let _ = w.join(); // Worker panics are caught and logged inside.
        }
    }
    // Realtime sessions run on their own threads; they close within a second of the
    // shutdown flag and record their events.
    state.realtime.wait_closed(deadline);
    let dropped = state.events.dropped();
    let flushed = writer.shutdown(Duration::from_secs(10));
    if !flushed {
        crate::logging::error("shutdown: not every event could be written to the database");
    }
    if dropped > 0 {
        crate::logging::error(&format!(
            "{dropped} event(s) were dropped because the event queue was full"
        ));
    }
    crate::logging::info("stopped");
    if listener_died {
        // Events are written; end like a crash so the supervisor starts a fresh server on
        // the same port (an error exit would make it stop instead).
        std::process::abort();
    }
    Ok(())
}

/// How often the heartbeat connects to the listener.
const HEARTBEAT: Duration = Duration::from_millis(250);

/// The read timeout set on the listening socket (so that accepted sockets inherit it) also
/// bounds `accept()`, and tiny_http stops accepting for good after one failed accept. A
/// connection every `HEARTBEAT` keeps `accept()` from ever waiting that long.
fn spawn_heartbeat(addr: SocketAddr, state: Arc<State>) {
    let target = match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        other => other,
    };
    let spawned = std::thread::Builder::new()
        .name("kt-heartbeat".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            while !state.shutting_down.load(Ordering::Relaxed) {
                // Connect and close at once; tiny_http sees an empty connection.
                drop(std::net::TcpStream::connect_timeout(
                    &target,
                    Duration::from_secs(1),
                ));
                std::thread::sleep(HEARTBEAT);
            }
        });
    if let Err(e) = spawned {
        crate::logging::error(&format!("failed to start the listener heartbeat: {e}"));
    }
}

/// How often the server checks that its listener still accepts connections.
const WATCHDOG_PERIOD: Duration = Duration::from_secs(1);

/// tiny_http's accept thread dies on some accept errors (EMFILE) and takes the listening
/// socket with it, while the process lives on refusing every client. A refused connection to
/// our own address means exactly that: abort, and the supervisor restarts a fresh server on
/// the same port.
fn listener_watchdog(addr: SocketAddr) {
    let probe = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    match std::net::TcpStream::connect_timeout(&probe, Duration::from_secs(1)) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            crate::logging::error(&format!(
                "the listener on `{addr}` stopped accepting connections; restarting the server"
            ));
            std::process::abort();
        }
        _ => {}
    }
}

fn worker(server: &tiny_http::Server, state: &Arc<State>) {
    loop {
        // Blocking: an idle worker costs nothing. Shutdown wakes each worker with
        // `Server::unblock`, queued behind the requests already accepted.
        let req = match server.recv() {
            Ok(req) => req,
            Err(e) => {
                if state.shutting_down.load(Ordering::Relaxed) {
                    return;
                }
                // tiny_http reports an accept failure once and then stops accepting for
                // good: never run on as a process that looks alive but serves nobody.
                crate::logging::error(&format!("accept failed: {e}"));
                state.listener_dead.store(true, Ordering::SeqCst);
                return;
            }
        };
        // The last line of defence: a bug in a handler must not take a worker down.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| handlers::handle(state, req)));
        if result.is_err() {
            crate::logging::error("a request handler panicked; the request was dropped");
        }
    }
}
