//! The relay of one realtime session, on a thread of its own: every message is forwarded
//! as soon as it is read, text messages after the policy chain.
//!
//! One thread serves both directions. With a full-duplex client socket (see `socket`)
//! it waits in `poll(2)` on both sockets, so a message from either side is handled the
//! moment it arrives: no polling interval, no added latency. Sockets are non-blocking; a
//! side whose peer reads slower than the other side writes is flushed when it becomes
//! writable, and the other side is not read meanwhile (backpressure instead of an
//! unbounded buffer). Without a duplex socket, the client is read with blocking reads
//! (the listener's 3 s timeout is the tick) and the provider between them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

use super::check::{check, error_event};
use super::inspect::{Direction, Parsed};
use super::record::{End, SessionLog};
use super::socket::{
    drain, flags, flush_blocked, is_hup, is_set, is_would_block, timespec, ClientStream,
};
use super::upstream::{self, UpstreamSocket};
use super::Slot;
use crate::gateway::admission::Grant;
use crate::gateway::{Runtime, State};
use crate::openai::ApiError;
use crate::policy::RequestContext;

/// The longest wait in `poll`: how soon shutdown and the idle limit are noticed.
const TICK: Duration = Duration::from_millis(250);
/// How long a closing session waits for the peers to answer the close handshake.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// `gateway.websocket` limits of a session.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_message: usize,
    pub idle: Duration,
}

/// Everything a session needs once both connections are open.
pub struct Session {
    pub state: Arc<State>,
    pub runtime: Arc<Runtime>,
    pub ctx: RequestContext,
    pub limits: Limits,
    pub client: WebSocket<ClientStream>,
    pub upstream: UpstreamSocket,
    pub log: SessionLog,
    pub grant: Option<Grant>,
    pub target: usize,
    /// Held for the session's life: it counts against the session limit.
    pub slot: Slot,
}

/// Per-side relay state.
#[derive(Debug, Default, Clone, Copy)]
struct Sides {
    /// A flush returned `WouldBlock`: wait for the socket to be writable.
    client_blocked: bool,
    upstream_blocked: bool,
    /// A read loop stopped before `WouldBlock`: messages may wait in the reader's buffer,
    /// where `poll` cannot see them.
    client_buffered: bool,
    upstream_buffered: bool,
    /// The peer hung up while its side was paused by backpressure: read it anyway (into
    /// the bounded write buffer of the other side), or `poll` would report it forever.
    client_hup: bool,
    upstream_hup: bool,
}

impl Session {
    /// Relays until either side closes, a limit is hit or the gateway shuts down; then
    /// closes both sides and records the session.
    pub fn run(mut self) {
        let end = self.relay();
        self.close(&end);
        let pricing = self
            .runtime
            .config
            .targets
            .get(self.target)
            .and_then(|t| t.pricing);
        self.log
            .finish(&self.state, &end, self.grant.take(), pricing.as_ref());
        drop(self.slot);
    }

    fn relay(&mut self) -> End {
        // The handshakes may have read the first messages already (a provider greets at
        // once with `session.created`): look into the readers before waiting on sockets.
        let mut sides = Sides {
            client_buffered: true,
            upstream_buffered: true,
            ..Sides::default()
        };
        let mut last = Instant::now();
        loop {
            if self.state.shutting_down.load(Ordering::Relaxed) {
                return self.gateway_close(CloseCode::Away, "the gateway is shutting down");
            }
            let idle_left = self.limits.idle.saturating_sub(last.elapsed());
            if idle_left.is_zero() {
                let reason = format!(
                    "idle timeout: no message for {} s",
                    self.limits.idle.as_secs_f64()
                );
                return self.gateway_close(CloseCode::Normal, &reason);
            }
            let duplex = self.client.get_ref().tcp().is_some();
            let (client_ready, upstream_ready) = match self.wait(&mut sides, idle_left.min(TICK)) {
                Ok(r) => r,
                // A signal (SIGTERM) landed on this thread: look at the flags again.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return End::failed("gateway", format!("poll failed: {e}")),
            };
            if upstream_ready {
                if let Err(end) = self.pump(Direction::Upstream, &mut sides, &mut last, usize::MAX)
                {
                    return end;
                }
            }
            if client_ready {
                // Half-duplex: one blocking read at a time, so the provider is read between.
                let max = if duplex { usize::MAX } else { 1 };
                if let Err(end) = self.pump(Direction::Client, &mut sides, &mut last, max) {
                    return end;
                }
            }
        }
    }

    /// Waits until a side has something to read (or to flush). Returns which sides to
    /// read.
    fn wait(&mut self, sides: &mut Sides, timeout: Duration) -> std::io::Result<(bool, bool)> {
        let Some(up_tcp) = upstream::tcp(&self.upstream) else {
            return Err(std::io::Error::other(
                "the provider connection has no socket",
            ));
        };
        let Some(client_tcp) = self.client.get_ref().tcp() else {
            // Half-duplex: look at the provider without waiting, then read the client
            // (unless the provider cannot take more: then wait for it to drain).
            let wait = if sides.upstream_blocked {
                timeout
            } else {
                Duration::ZERO
            };
            let mut fds = [PollFd::new(
                up_tcp,
                flags(!sides.client_blocked, sides.upstream_blocked),
            )];
            poll(&mut fds, Some(&timespec(wait)))?;
            let u = fds[0].revents();
            if is_set(u, PollFlags::OUT) && sides.upstream_blocked {
                sides.upstream_blocked = flush_blocked(&mut self.upstream);
            }
            sides.upstream_hup = sides.client_blocked && is_hup(u);
            let up = is_set(u, PollFlags::IN) || sides.upstream_buffered;
            return Ok((!sides.upstream_blocked, up));
        };
        let buffered = (sides.client_buffered && !sides.upstream_blocked)
            || (sides.upstream_buffered && !sides.client_blocked);
        let timeout = if buffered { Duration::ZERO } else { timeout };
        let mut fds = [
            PollFd::new(
                client_tcp,
                flags(!sides.upstream_blocked, sides.client_blocked),
            ),
            PollFd::new(up_tcp, flags(!sides.client_blocked, sides.upstream_blocked)),
        ];
        poll(&mut fds, Some(&timespec(timeout)))?;
        let (c, u) = (fds[0].revents(), fds[1].revents());
        sides.client_hup = sides.upstream_blocked && is_hup(c);
        sides.upstream_hup = sides.client_blocked && is_hup(u);
        if is_set(c, PollFlags::OUT) && sides.client_blocked {
            sides.client_blocked = flush_blocked(&mut self.client);
        }
        if is_set(u, PollFlags::OUT) && sides.upstream_blocked {
            sides.upstream_blocked = flush_blocked(&mut self.upstream);
        }
        let client = is_set(c, PollFlags::IN) || (sides.client_buffered && !sides.upstream_blocked);
        let up = is_set(u, PollFlags::IN) || (sides.upstream_buffered && !sides.client_blocked);
        Ok((client, up))
    }

    /// Reads `from` until it would block (at most `max` messages) and forwards what it
    /// reads.
    fn pump(
        &mut self,
        from: Direction,
        sides: &mut Sides,
        last: &mut Instant,
        max: usize,
    ) -> Result<(), End> {
        let mut n = 0;
        loop {
            let blocked = match from {
                Direction::Client => sides.upstream_blocked && !sides.client_hup,
                Direction::Upstream => sides.client_blocked && !sides.upstream_hup,
            };
            if blocked || n >= max {
                set_buffered(sides, from, true);
                return Ok(());
            }
            let read = match from {
                Direction::Client => self.client.read(),
                Direction::Upstream => self.upstream.read(),
            };
            let msg = match read {
                Ok(msg) => msg,
                Err(tungstenite::Error::Io(e)) if is_would_block(&e) => {
                    set_buffered(sides, from, false);
                    return Ok(());
                }
                Err(e) => return Err(self.read_failed(from, e)),
            };
            n += 1;
            match msg {
                Message::Text(text) => {
                    *last = Instant::now();
                    self.log.count(from, text.len());
                    self.on_text(from, text.as_str(), sides)?;
                }
                Message::Binary(data) => {
                    *last = Instant::now();
                    self.log.count(from, data.len());
                    self.send(other(from), Message::Binary(data), sides)?;
                }
                Message::Ping(p) => self.send(other(from), Message::Ping(p), sides)?,
                Message::Pong(p) => self.send(other(from), Message::Pong(p), sides)?,
                Message::Close(frame) => {
                    let end = End::closed(
                        from.as_str(),
                        frame.as_ref().map(|f| u16::from(f.code)),
                        frame
                            .as_ref()
                            .map(|f| f.reason.to_string())
                            .unwrap_or_default(),
                    );
                    let forward = frame.filter(|f| f.code.is_allowed());
                    let _ = self.close_side(other(from), forward); // The session ends either way.
                    return Err(end);
                }
                Message::Frame(_) => {}
            }
        }
    }

    fn on_text(&mut self, from: Direction, text: &str, sides: &mut Sides) -> Result<(), End> {
        let parsed = Parsed::new(from, text);
        if from == Direction::Upstream {
            self.log.add_usage(&parsed);
        }
        let event_type = parsed.event_type().map(str::to_string);
        let event_id = parsed.event_id().map(str::to_string);
        let Some(checked) = check(&self.runtime.chain, &self.ctx, from, parsed) else {
            return self.send(other(from), Message::text(text), sides);
        };
        let forwarded = if checked.outcome.block.is_some() {
            None
        } else {
            Some(checked.rewritten.as_deref().unwrap_or(text))
        };
        self.log.message(
            &self.state,
            from,
            event_type.as_deref(),
            &checked.outcome,
            text,
            forwarded,
        );
        match (&checked.outcome.block, forwarded) {
            (Some(block), _) => {
                let err = ApiError::policy_violation(
                    &block.policy,
                    from == Direction::Upstream,
                    block.message.clone(),
                );
                let event = error_event(&err, event_id.as_deref());
                self.send(Direction::Client, Message::text(event), sides)
            }
            (None, Some(out)) => self.send(other(from), Message::text(out), sides),
            (None, None) => Ok(()),
        }
    }

    /// Writes `msg` to `to`. A full socket is not an error: the message waits in the
    /// writer and `to` is flushed when writable.
    fn send(&mut self, to: Direction, msg: Message, sides: &mut Sides) -> Result<(), End> {
        let result = match to {
            Direction::Client => self.client.send(msg),
            Direction::Upstream => self.upstream.send(msg),
        };
        match result {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if is_would_block(&e) => {
                match to {
                    Direction::Client => sides.client_blocked = true,
                    Direction::Upstream => sides.upstream_blocked = true,
                }
                Ok(())
            }
            Err(e) => Err(End::failed(
                to.as_str(),
                format!("writing to the {} failed: {e}", to.peer()),
            )),
        }
    }

    fn read_failed(&mut self, from: Direction, e: tungstenite::Error) -> End {
        match e {
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
                End::closed(from.as_str(), None, "")
            }
            tungstenite::Error::Capacity(e) => {
                let reason = format!(
                    "message too big: the gateway's limit is {} bytes",
                    self.limits.max_message
                );
                let frame = |reason: &str| {
                    Some(CloseFrame {
                        code: CloseCode::Size,
                        reason: reason.to_string().into(),
                    })
                };
                let _ = self.close_side(from, frame(&reason)); // Ending anyway.
                let _ = self.close_side(other(from), frame(&reason));
                let mut end = End::closed("gateway", Some(1009), reason);
                end.error = Some(format!("the {} sent {e}", from.peer()));
                end
            }
            other_error => {
                let frame = Some(CloseFrame {
                    code: match from {
                        Direction::Client => CloseCode::Away,
                        Direction::Upstream => CloseCode::Error,
                    },
                    reason: format!("the {} connection failed", from.peer()).into(),
                });
                let _ = self.close_side(other(from), frame); // Ending anyway.
                End::failed(
                    from.as_str(),
                    format!("the {} connection failed: {other_error}", from.peer()),
                )
            }
        }
    }

    /// Closes both sides with `code` and `reason`: the gateway ends the session.
    fn gateway_close(&mut self, code: CloseCode, reason: &str) -> End {
        for side in [Direction::Client, Direction::Upstream] {
            let frame = CloseFrame {
                code,
                reason: reason.to_string().into(),
            };
            let _ = self.close_side(side, Some(frame)); // Best effort: the session ends.
        }
        End::closed("gateway", Some(u16::from(code)), reason)
    }

    fn close_side(
        &mut self,
        side: Direction,
        frame: Option<CloseFrame>,
    ) -> tungstenite::Result<()> {
        match side {
            Direction::Client => self.client.close(frame),
            Direction::Upstream => self.upstream.close(frame),
        }
    }

    /// Finishes the close handshake on both sides (bounded by `CLOSE_GRACE`), then
    /// drops the connections.
    fn close(&mut self, end: &End) {
        if end.error.is_none() || end.code == Some(1009) {
            let deadline = Instant::now() + CLOSE_GRACE;
            let mut client_open = self.client.can_read();
            let mut upstream_open = self.upstream.can_read();
            while (client_open || upstream_open) && Instant::now() < deadline {
                if client_open {
                    client_open = drain(&mut self.client);
                }
                if upstream_open {
                    upstream_open = drain(&mut self.upstream);
                }
                if client_open || upstream_open {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        let _ = self.client.flush(); // Sends our close frame if it is still queued.
        let _ = self.upstream.flush();
        self.client.get_ref().shutdown();
        if let Some(tcp) = upstream::tcp(&self.upstream) {
            let _ = tcp.shutdown(std::net::Shutdown::Both); // It may be closed already.
        }
    }
}

fn other(d: Direction) -> Direction {
    match d {
        Direction::Client => Direction::Upstream,
        Direction::Upstream => Direction::Client,
    }
}

impl Direction {
    fn peer(self) -> &'static str {
        match self {
            Direction::Client => "client",
            Direction::Upstream => "provider",
        }
    }
}

fn set_buffered(sides: &mut Sides, from: Direction, v: bool) {
    match from {
        Direction::Client => sides.client_buffered = v,
        Direction::Upstream => sides.upstream_buffered = v,
    }
}
