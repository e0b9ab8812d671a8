//! The client side of a realtime session: full-duplex access to the connection that
//! tiny_http upgraded.
//!
//! tiny_http hands an upgraded connection over as one `Box<dyn ReadWrite>`: reading and
//! writing need the same `&mut`, and a read blocks until the client sends something or
//! the listener's 3 s read timeout passes. A relay built on it could not forward the
//! provider's events while it waits for the client. So on Linux the relay takes its own
//! handle of the same socket: `pidfd_getfd(2)` on our own process duplicates the
//! descriptor whose peer is this request's remote address (a safe API: it returns a new,
//! owned descriptor). tiny_http's box is kept alive, untouched, until the session ends,
//! because dropping it shuts the socket down.
//!
//! Where that is not possible (another OS, or a seccomp profile that forbids
//! `pidfd_getfd`, as container runtimes do without `CAP_SYS_PTRACE`), the relay falls
//! back to the box itself, half-duplex: see `relay`.
//!
//! Also the small socket-level helpers the relay uses (poll flags, draining a closing
//! WebSocket, telling a timeout from an error).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use std::time::Duration;

use rustix::event::{PollFlags, Timespec};
use tiny_http::ReadWrite;
use tungstenite::WebSocket;

/// The upgraded client connection.
pub enum ClientStream {
    /// Our own non-blocking handle of the socket; `_hold` keeps tiny_http's handles (and
    /// so the socket) open.
    Duplex {
        stream: TcpStream,
        _hold: Box<dyn ReadWrite + Send>,
    },
    /// tiny_http's stream: blocking reads that time out after the listener's read timeout.
    Shared(Box<dyn ReadWrite + Send>),
}

impl ClientStream {
    /// Takes a full-duplex handle of the connection when the platform allows it.
    pub fn new(upgraded: Box<dyn ReadWrite + Send>, remote: Option<SocketAddr>) -> ClientStream {
        let duplex = remote
            .ok_or_else(|| std::io::Error::other("no remote address"))
            .and_then(duplicate);
        match duplex.and_then(|s| s.set_nonblocking(true).map(|()| s)) {
            Ok(stream) => ClientStream::Duplex {
                stream,
                _hold: upgraded,
            },
            Err(e) => {
                warn_half_duplex(&e);
                ClientStream::Shared(upgraded)
            }
        }
    }

    /// The socket to poll, when the relay has one.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            ClientStream::Duplex { stream, .. } => Some(stream),
            ClientStream::Shared(_) => None,
        }
    }

    /// Ends the connection for the client at once (after the close handshake).
    pub fn shutdown(&self) {
        if let ClientStream::Duplex { stream, .. } = self {
            // The peer may be gone already; nothing to do about an error.
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ClientStream::Duplex { stream, .. } => stream.read(buf),
            ClientStream::Shared(s) => s.read(buf),
        }
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            ClientStream::Duplex { stream, .. } => stream.write(buf),
            ClientStream::Shared(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            ClientStream::Duplex { stream, .. } => stream.flush(),
            ClientStream::Shared(s) => s.flush(),
        }
    }
}

fn warn_half_duplex(e: &std::io::Error) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        crate::logging::warn(&format!(
            "realtime: no full-duplex access to client connections ({e}); sessions relay \
             half-duplex, and provider events may wait up to 3 s while the client is silent"
        ));
    });
}

/// A new descriptor of our own socket whose peer is `remote`.
#[cfg(target_os = "linux")]
fn duplicate(remote: SocketAddr) -> std::io::Result<TcpStream> {
    use rustix::process::{getpid, pidfd_getfd, pidfd_open, PidfdFlags, PidfdGetfdFlags};

    if std::env::var_os(crate::env::REALTIME_HALF_DUPLEX).is_some_and(|v| v == "1") {
        return Err(std::io::Error::other(format!(
            "`{}=1`",
            crate::env::REALTIME_HALF_DUPLEX
        )));
    }
    let pidfd = pidfd_open(getpid(), PidfdFlags::empty())?;
    // tiny_http holds two descriptors of the connection (reading and writing); both are
    // the same socket. A second socket with the same peer would make the match ambiguous.
    let mut found: Option<(std::path::PathBuf, TcpStream)> = None;
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        let Ok(link) = std::fs::read_link(entry.path()) else {
            continue; // Closed since the listing.
        };
        if !link.to_string_lossy().starts_with("socket:[") {
            continue;
        }
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let owned = match pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty()) {
            Ok(owned) => owned,
            Err(rustix::io::Errno::BADF) => continue, // Closed since the listing.
            Err(e) => return Err(e.into()),
        };
        let stream = TcpStream::from(owned);
        if stream.peer_addr().ok() != Some(remote) {
            continue;
        }
        match &found {
            Some((inode, _)) if *inode != link => {
                return Err(std::io::Error::other(format!(
                    "two sockets have the peer `{remote}`"
                )))
            }
            Some(_) => {}
            None => found = Some((link, stream)),
        }
    }
    found.map(|(_, s)| s).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no socket with the peer `{remote}`"),
        )
    })
}

#[cfg(not(target_os = "linux"))]
fn duplicate(_remote: SocketAddr) -> std::io::Result<TcpStream> {
    Err(std::io::Error::other("pidfd_getfd is Linux only"))
}

/// Reads what a closing peer still sends (its close reply included), discarding it.
/// `false` once the connection is finished (closed, or failed).
pub fn drain<S: std::io::Read + std::io::Write>(ws: &mut WebSocket<S>) -> bool {
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if is_would_block(&e) => return ws.can_read(),
            Err(_) => return false,
        }
    }
}

/// Retries a blocked flush; `true` while it still blocks.
pub fn flush_blocked<S: std::io::Read + std::io::Write>(ws: &mut WebSocket<S>) -> bool {
    matches!(ws.flush(), Err(tungstenite::Error::Io(e)) if is_would_block(&e))
}

pub fn flags(read: bool, write: bool) -> PollFlags {
    let mut f = PollFlags::empty();
    if read {
        f |= PollFlags::IN;
    }
    if write {
        f |= PollFlags::OUT;
    }
    f
}

/// The peer hung up or the socket failed.
pub fn is_hup(revents: PollFlags) -> bool {
    revents.intersects(PollFlags::HUP | PollFlags::ERR)
}

/// Readable, or the peer hung up or errored: a read will tell which.
pub fn is_set(revents: PollFlags, want: PollFlags) -> bool {
    revents.intersects(want | PollFlags::HUP | PollFlags::ERR)
}

pub fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

pub fn is_would_block(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
