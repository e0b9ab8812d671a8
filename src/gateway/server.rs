//! The server loop: the listener (TCP_NODELAY and socket timeouts, inherited by accepted
//! sockets), the HTTP server (`conn`), signals and graceful shutdown.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::conn::{Handler, Server};
use super::{handlers, supervisor, GatewayOptions, State};
use crate::store::writer::WriterOptions;
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

/// Connection threads kept even when idle; the pool grows on demand (see `conn`).
const MIN_THREADS: usize = 8;
/// Client sockets: a write that stalls this long fails (a client that stopped reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(120);
/// Client sockets: reading a request (or waiting on an idle keep-alive connection) fails
/// after this long without a byte; an idle keep-alive connection is closed then.
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

/// Runs the gateway server (the supervisor's child, see `supervisor`) until SIGINT/SIGTERM.
/// `on_ready` gets the bound address (port 0 resolved) once the server accepts
/// connections.
pub fn run(
    mut opts: GatewayOptions,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), GatewayError> {
    supervisor::raise_fd_limit();
    opts.listen = supervisor::worker_setup(opts.listen);
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, shutdown.clone()).map_err(GatewayError::Signals)?;
    }
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
        .map_err(GatewayError::Signals)?;
    let mut wake = supervisor::SignalWake::new(&[
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(GatewayError::Signals)?;
    let writer = EventWriter::start(&opts.db, writer_options(&opts.configs))?;
    let state = Arc::new(State::build(&opts, writer.sink()).map_err(GatewayError::Config)?);

    let tcp = listener(opts.listen).map_err(|source| GatewayError::Bind {
        addr: opts.listen,
        source,
    })?;
    let addr = tcp.local_addr().map_err(|source| GatewayError::Bind {
        addr: opts.listen,
        source,
    })?;
    let handler: Box<Handler> = {
        let state = state.clone();
        Box::new(move |req| handlers::handle(&state, req))
    };
    let server = Server::new(MIN_THREADS, state.slots.connection_cap(), handler);
    server
        .start(tcp)
        .map_err(|e| GatewayError::Server(format!("failed to start the server threads: {e}")))?;
    on_ready(addr);

    // Idle, this thread wakes once per watchdog period (or for SIGINT/SIGTERM, and SIGHUP
    // to reload the configuration).
    let mut last_check = Instant::now();
    while !shutdown.load(Ordering::Relaxed) && !state.listener_dead.load(Ordering::Relaxed) {
        wake.wait(Some(WATCHDOG_PERIOD.saturating_sub(last_check.elapsed())));
        if reload.swap(false, Ordering::Relaxed) {
            super::reload::on_signal(&state);
        }
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
    // No new connections or requests; wait for the requests in flight.
    server.stop(addr);
    let deadline = Instant::now() + opts.shutdown_grace;
    while server.busy() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Realtime sessions run on their own threads; they close within a second of the
    // shutdown flag and record their events.
    state.realtime.wait_closed(deadline);
    let flushed = writer.shutdown(Duration::from_secs(10));
    let stats = state.events.stats();
    if !flushed {
        crate::logging::error(&format!(
            "shutdown: {} event(s) could not be written to the database",
            stats.pending
        ));
    }
    if stats.dropped > 0 {
        crate::logging::error(&format!(
            "{} event(s) were dropped (event queue full or rows refused by the database)",
            stats.dropped
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

/// Retention from the default configuration; durability per configuration.
fn writer_options(configs: &crate::config::ConfigSet) -> WriterOptions {
    let fixed = super::reload::AuditFixed::of(
        &configs.default,
        configs.by_name.iter().map(|(n, c)| (n, &**c)),
    );
    WriterOptions {
        retention_days: fixed.retention_days,
        durability: fixed.durability,
        by_configuration: fixed.by_configuration,
        ..WriterOptions::default()
    }
}

/// How often the server checks that its listener still accepts connections.
const WATCHDOG_PERIOD: Duration = Duration::from_secs(1);

/// A listener that refuses connections to our own address (its socket broken under us)
/// would leave a process that looks alive but serves nobody: abort, and the supervisor
/// restarts a fresh server on the same port.
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
