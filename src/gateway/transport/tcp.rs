//! The TCP layer under ureq for upstream calls (TLS, when the URL asks for it, runs on top
//! of it through ureq's rustls connector, as before).
//!
//! ureq's own `TcpTransport` made a request to a pooled upstream cost eight syscalls
//! beyond its sends and reads (strace, one request): a liveness probe on taking the
//! connection from the pool and again on returning it, each `ioctl(FIONBIO)` twice around
//! a one-byte `recv`; `setsockopt` for the write timeout before the head and again before
//! the body, and for the read timeout, because an end-to-end deadline shrinks between
//! calls; and the head and body went out in two `send`s (two TCP segments, two wake-ups
//! of the upstream). Here:
//! - the probe is one `recv(MSG_PEEK | MSG_DONTWAIT)`, and only on taking a connection
//!   from the pool: on returning one, right after its response was read, ureq's probe
//!   would ask the same question a moment earlier (the checkout probe still drops a
//!   connection the upstream closed or sent stray bytes on);
//! - a socket timeout is changed only when it moves by more than 1/64 of itself (at least
//!   1 ms): a 60 s deadline then fires within ~1 s of where ureq would have fired it;
//! - output is held until ureq waits for input (or 64 KiB are waiting), so a request's
//!   head and body, or a TLS handshake flight, leave in one `send`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rustix::net::RecvFlags;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, ShutdownHandle,
    Transport,
};
use ureq::{Error, Timeout};

/// Output held back at most: beyond it, send without waiting for more.
const FLUSH_AT: usize = 64 * 1024;

/// A connect attempt to one of several addresses gets at least this much time.
const MIN_PER_ADDRESS: Duration = Duration::from_millis(10);

/// Opens plain TCP connections (the chain's proxy connector may have opened one already).
#[derive(Debug, Default)]
pub struct TcpConnector;

impl<In: Transport> Connector<In> for TcpConnector {
    type Out = Either<In, TcpTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        if let Some(proxied) = chained {
            return Ok(Some(Either::A(proxied)));
        }
        let stream = connect(&details.addrs, details.timeout)?;
        if details.config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        let transport = TcpTransport {
            stream: Arc::new(stream),
            buffers,
            unsent: Vec::new(),
            unsent_timeout: None,
            just_read: false,
            timeouts: SocketTimeouts::default(),
        };
        let handle: Weak<dyn ShutdownHandle> = Arc::downgrade(&transport.stream) as _;
        (details.register_shutdown)(handle)?;
        Ok(Some(Either::B(transport)))
    }
}

/// Tries the resolved addresses in order within the connect budget: each but the last
/// gets half of what is left, so one black-holed address cannot use all of it.
fn connect(addrs: &[SocketAddr], timeout: NextTimeout) -> Result<TcpStream, Error> {
    let budget = timeout.not_zero().map(|t| *t);
    match connect_until(addrs, budget.map(|b| Instant::now() + b)) {
        Ok(stream) => Ok(stream),
        Err(e) if is_timeout(&e) => Err(Error::Timeout(Timeout::Connect)),
        Err(e) => Err(Error::Io(e)),
    }
}

/// [`connect`] for kt's own client (`plain.rs`): within `budget`.
pub(super) fn connect_within(addrs: &[SocketAddr], budget: Duration) -> io::Result<TcpStream> {
    connect_until(addrs, Some(Instant::now() + budget))
}

fn connect_until(addrs: &[SocketAddr], deadline: Option<Instant>) -> io::Result<TcpStream> {
    let mut last = None;
    for (i, addr) in addrs.iter().enumerate() {
        let result = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                let share = if i + 1 == addrs.len() {
                    left
                } else {
                    (left / 2).max(MIN_PER_ADDRESS).min(left)
                };
                TcpStream::connect_timeout(addr, share)
            }
            None => TcpStream::connect(addr),
        };
        match result {
            Ok(stream) => return Ok(stream),
            Err(e) if is_timeout(&e) || is_address_specific(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::ErrorKind::ConnectionRefused.into()))
}

/// A socket operation that ran out of its timeout (SO_RCVTIMEO reports `WouldBlock`).
pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// Failures that concern only the address tried: the next one may work (an AAAA record
/// first on a host without an IPv6 route, say).
fn is_address_specific(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::NetworkDown
            | io::ErrorKind::AddrNotAvailable
    )
}

pub struct TcpTransport {
    /// Shared (weakly) with ureq's shutdown handle, which can shut the socket mid-call.
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
    /// Output ureq handed over that has not been sent yet, and the timeout to send it in.
    unsent: Vec<u8>,
    unsent_timeout: Option<NextTimeout>,
    /// The last thing done was reading input: an `is_open` now is ureq returning the
    /// connection to its pool.
    just_read: bool,
    timeouts: SocketTimeouts,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

/// A socket's current SO_RCVTIMEO / SO_SNDTIMEO, changed only when a wanted value is not
/// [`close_enough`] (an end-to-end deadline shrinks between calls: one `setsockopt` per
/// call otherwise).
#[derive(Debug, Default)]
pub(super) struct SocketTimeouts {
    read: Option<Duration>,
    write: Option<Duration>,
}

impl SocketTimeouts {
    pub(super) fn read(&mut self, s: &TcpStream, wanted: Option<Duration>) -> io::Result<()> {
        if !close_enough(self.read, wanted) {
            s.set_read_timeout(wanted)?;
            self.read = wanted;
        }
        Ok(())
    }

    pub(super) fn write(&mut self, s: &TcpStream, wanted: Option<Duration>) -> io::Result<()> {
        if !close_enough(self.write, wanted) {
            s.set_write_timeout(wanted)?;
            self.write = wanted;
        }
        Ok(())
    }

    /// The read timeout was set to `t` directly.
    fn read_set(&mut self, t: Option<Duration>) {
        self.read = t;
    }
}

/// Whether a kept-alive connection can carry another request: nothing waiting to be read
/// (bytes would be garbage after the last response; EOF means the upstream closed). One
/// `recv(MSG_PEEK | MSG_DONTWAIT)`.
pub(super) fn waits_for_request(s: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        rustix::net::recv(s, &mut byte[..], RecvFlags::PEEK | RecvFlags::DONTWAIT),
        Err(e) if e == rustix::io::Errno::AGAIN
    )
}

/// Whether a socket timeout set to `current` is close enough to `wanted` to leave alone.
fn close_enough(current: Option<Duration>, wanted: Option<Duration>) -> bool {
    match (current, wanted) {
        (None, None) => true,
        (Some(c), Some(w)) => c.abs_diff(w) <= (w / 64).max(Duration::from_millis(1)),
        _ => false,
    }
}

/// A ureq timeout as a socket timeout, or ureq's timeout error when it has run out.
fn socket_timeout(timeout: NextTimeout) -> Result<Option<Duration>, Error> {
    if timeout.after.is_zero() {
        return Err(Error::Timeout(timeout.reason));
    }
    Ok(timeout.not_zero().map(|t| *t))
}

fn io_error(e: io::Error, timeout: NextTimeout) -> Error {
    if is_timeout(&e) {
        Error::Timeout(timeout.reason)
    } else {
        Error::Io(e)
    }
}

impl TcpTransport {
    /// Sends what is held back.
    fn flush(&mut self) -> Result<(), Error> {
        let Some(timeout) = self.unsent_timeout.take() else {
            return Ok(());
        };
        let wanted = socket_timeout(timeout)?;
        self.timeouts.write(&self.stream, wanted)?;
        let sent = (&*self.stream).write_all(&self.unsent);
        self.unsent.clear();
        if self.unsent.capacity() > FLUSH_AT {
            // A large request body passed through: do not keep its buffer per connection.
            self.unsent = Vec::new();
        }
        sent.map_err(|e| io_error(e, timeout))
    }
}

impl Transport for TcpTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        let timeout = timeout.for_write();
        socket_timeout(timeout)?;
        self.just_read = false;
        self.unsent
            .extend_from_slice(&self.buffers.output()[..amount]);
        self.unsent_timeout = Some(timeout);
        if self.unsent.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.flush()?;
        let timeout = timeout.for_read();
        let wanted = socket_timeout(timeout)?;
        self.timeouts.read(&self.stream, wanted)?;
        let started = Instant::now();
        loop {
            let input = self.buffers.input_append_buf();
            match (&*self.stream).read(input) {
                Ok(n) => {
                    self.just_read = n > 0;
                    self.buffers.input_appended(n);
                    return Ok(n > 0);
                }
                // A signal interrupted the read: retry with what is left of the timeout
                // (Linux does not restart socket reads that have SO_RCVTIMEO).
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    let Some(wanted) = wanted else { continue };
                    let left = wanted.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        return Err(Error::Timeout(timeout.reason));
                    }
                    self.stream.set_read_timeout(Some(left))?;
                    self.timeouts.read_set(Some(left));
                }
                Err(e) => return Err(io_error(e, timeout)),
            }
        }
    }

    /// Whether a pooled connection can carry another request (`waits_for_request`).
    fn is_open(&mut self) -> bool {
        std::mem::take(&mut self.just_read) || waits_for_request(&self.stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_timeouts_move_only_beyond_the_slack() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert!(close_enough(None, None));
        assert!(!close_enough(None, Some(s(60))));
        assert!(!close_enough(Some(s(60)), None));
        // 60 s: within ~0.94 s is close enough, either way.
        assert!(close_enough(Some(s(60)), Some(s(60) - ms(900))));
        assert!(close_enough(Some(s(60) - ms(900)), Some(s(60))));
        assert!(!close_enough(Some(s(60)), Some(s(58))));
        // Short timeouts keep their precision (1 ms floor).
        assert!(!close_enough(Some(ms(50)), Some(ms(40))));
        assert!(close_enough(Some(ms(50)), Some(ms(50))));
    }
}
