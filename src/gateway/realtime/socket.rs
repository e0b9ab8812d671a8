//! The client side of a realtime session: the connection the server upgraded, and the
//! small socket-level helpers the relay uses (poll flags, draining a closing WebSocket,
//! telling a timeout from an error).
//!
//! The relay reads the client and the provider on one thread with a non-blocking socket
//! (full duplex). `KT_REALTIME_HALF_DUPLEX=1` keeps the socket blocking instead, and the
//! relay then alternates between the two sides (see `relay`): for troubleshooting.

use std::io::{Read, Write};
use std::net::TcpStream;

use std::time::Duration;

use rustix::event::{PollFlags, Timespec};
use tungstenite::WebSocket;

use crate::gateway::conn::Upgraded;

/// The upgraded client connection.
pub enum ClientStream {
    /// Non-blocking: the relay polls it.
    Duplex { stream: TcpStream },
    /// Blocking reads that time out after the listener's read timeout.
    Shared(TcpStream),
}

impl ClientStream {
    /// The session's client socket and the bytes the client already sent after its
    /// handshake.
    pub fn new(upgraded: Upgraded) -> std::io::Result<(ClientStream, Vec<u8>)> {
        let Upgraded { stream, buffered } = upgraded;
        let half = std::env::var_os(crate::env::REALTIME_HALF_DUPLEX).is_some_and(|v| v == "1");
        if half {
            warn_half_duplex();
            return Ok((ClientStream::Shared(stream), buffered));
        }
        stream.set_nonblocking(true)?;
        Ok((ClientStream::Duplex { stream }, buffered))
    }

    /// The socket to poll, when the relay has one.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            ClientStream::Duplex { stream } => Some(stream),
            ClientStream::Shared(_) => None,
        }
    }

    /// Ends the connection for the client at once (after the close handshake).
    pub fn shutdown(&self) {
        let stream = match self {
            ClientStream::Duplex { stream } | ClientStream::Shared(stream) => stream,
        };
        // The peer may be gone already; nothing to do about an error.
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ClientStream::Duplex { stream } | ClientStream::Shared(stream) => stream.read(buf),
        }
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            ClientStream::Duplex { stream } | ClientStream::Shared(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            ClientStream::Duplex { stream } | ClientStream::Shared(stream) => stream.flush(),
        }
    }
}

fn warn_half_duplex() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        crate::logging::warn(&format!(
            "realtime: `{}=1`: sessions relay half-duplex, and provider events may wait up \
             to 3 s while the client is silent",
            crate::env::REALTIME_HALF_DUPLEX
        ));
    });
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
