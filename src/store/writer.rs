//! The event writer, request side: requests hand events to one writer thread
//! (`writer/thread.rs`, which owns the write connection) over a bounded channel.
//!
//! Durability is chosen per configuration (audit-logger `durability`):
//! - `batched`: `EventSink::record` queues the event and returns at once; the writer
//!   commits a batch every few milliseconds. A full queue drops the event and counts it.
//! - `strict`: `record` returns only once the event is committed (and synced), or gives up
//!   after `STRICT_WAIT` and says so, so that the caller answers `503 audit_unavailable`
//!   instead of an unaudited answer. The writer commits everything queued as one
//!   transaction (group commit): concurrent waiters share one sync.
//!
//! Nothing here touches the database; the counters behind `GET /health` live here.

mod thread;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::events::{self, Event};
use super::packed::Packed;
use super::StoreError;
pub use crate::policy::audit_logger::Durability;

/// How long a strict `record` waits for its event's commit before the request is answered
/// with `503 audit_unavailable` (the default of `WriterOptions::strict_wait`). Longer than
/// the writer's busy timeout, so a lock held by another process for a moment does not fail
/// requests.
pub const STRICT_WAIT: Duration = Duration::from_secs(5);
/// Repeated warnings (drops, strict timeouts) are logged at most this often.
const WARN_EVERY_MS: i64 = 10_000;

enum Msg {
    /// An event, with the strict waiter to wake once it is committed.
    /// Packed on the request thread: see `store::packed`.
    Event(Packed, Option<SyncSender<()>>),
    /// Reply once everything sent before has been committed.
    Flush(SyncSender<()>),
    /// Commit everything sent before, then stop.
    Stop,
}

/// How the writer treats events.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Events older than this are pruned at start and then hourly.
    pub retention_days: Option<u32>,
    /// Durability of events whose configuration is not in `by_configuration`.
    pub durability: Durability,
    /// Durability by configuration name (`Event::configuration`).
    pub by_configuration: BTreeMap<String, Durability>,
    /// How long a strict `record` waits for the commit.
    pub strict_wait: Duration,
    /// The queue's bounds.
    pub queue: QueueLimits,
}

/// How much the writer's queue holds, counted in events and in bytes (packed events: a
/// request's audited bodies are most of an event, so a count alone bounds no memory).
///
/// Below the high-water marks `record` never waits. Above either, a batched `record`
/// waits (up to `backpressure_wait`) for the writer to catch up: requests arriving faster
/// than the disk takes their events (a stuck database, a large table) would otherwise grow
/// the queue until events were dropped. Past either queue bound, events are dropped and
/// counted.
///
/// The marks are far above what the writer keeps queued while it keeps up (a batch window
/// holds a few hundred events at thousands of requests/s), because at saturation on
/// shared cores the writer is starved of CPU in bursts: with the mark at 4 096 events,
/// kt's request threads at c=32 on two cores slept in the backpressure loop thousands of
/// times per run — the c=32 tail (bench/RESULTS.md, eleventh session) — while the backlog
/// always drained within a few batches.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub high_water_events: u64,
    pub high_water_bytes: u64,
    /// The longest one batched `record` waits for the backlog to shrink; after that it
    /// queues anyway (a stuck database must not hang requests: the bounds and the drop
    /// count take over).
    pub backpressure_wait: Duration,
    pub max_events: u64,
    pub max_bytes: u64,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            high_water_events: 16_384,
            high_water_bytes: 32 << 20,
            backpressure_wait: Duration::from_secs(1),
            max_events: 65_536,
            max_bytes: 256 << 20,
        }
    }
}

impl QueueLimits {
    fn above_high_water(&self, shared: &Shared) -> bool {
        shared.queued_at_least(self.high_water_events, self.high_water_bytes)
    }

    fn full(&self, shared: &Shared) -> bool {
        shared.queued_at_least(self.max_events, self.max_bytes)
    }
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            retention_days: None,
            durability: Durability::Batched,
            by_configuration: BTreeMap::new(),
            strict_wait: STRICT_WAIT,
            queue: QueueLimits::default(),
        }
    }
}

impl WriterOptions {
    fn durability_of(&self, e: &Event) -> Durability {
        e.configuration
            .as_deref()
            .and_then(|c| self.by_configuration.get(c))
            .copied()
            .unwrap_or(self.durability)
    }

    fn is_any_strict(&self) -> bool {
        std::iter::once(&self.durability)
            .chain(self.by_configuration.values())
            .any(|d| *d == Durability::Strict)
    }
}

/// What became of a recorded event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Batched: queued; committed within the batch window.
    Queued,
    /// Batched: the queue was full (or the writer stopped); dropped and counted.
    Dropped,
    /// Strict: committed.
    Committed,
    /// Strict: not committed within `STRICT_WAIT` (it stays queued and is written once the
    /// database recovers) or dropped. The request must not be answered as a success.
    Unavailable,
}

impl Recorded {
    /// True when the answer must be withheld (strict durability, event not committed).
    pub fn is_unavailable(self) -> bool {
        self == Recorded::Unavailable
    }
}

/// The writer's counters, as `GET /health` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriterStats {
    /// Queued and not committed yet.
    pub pending: u64,
    /// Their size, packed.
    pub pending_bytes: u64,
    /// Lost: the queue was full, the writer had stopped, or the database refused the row.
    pub dropped: u64,
    /// Strict requests answered `503 audit_unavailable`.
    pub unavailable: u64,
    /// Events committed since start.
    pub committed: u64,
    /// Transactions that committed them (group commit: many events per transaction).
    pub transactions: u64,
    /// The error the writer is retrying on (`None` while commits succeed).
    pub error: Option<String>,
}

/// State shared by the sinks and the writer thread.
struct Shared {
    options: WriterOptions,
    pending: AtomicU64,
    pending_bytes: AtomicU64,
    dropped: AtomicU64,
    unavailable: AtomicU64,
    committed: AtomicU64,
    transactions: AtomicU64,
    /// Set by the writer while a failure streak lasts.
    failing: Mutex<Option<String>>,
    drop_warned_ms: AtomicI64,
    unavailable_warned_ms: AtomicI64,
    /// The writer thread, to wake it before its batch window ends.
    writer: std::sync::OnceLock<std::thread::Thread>,
}

impl Shared {
    /// At least `events` or at least `bytes` are queued.
    fn queued_at_least(&self, events: u64, bytes: u64) -> bool {
        self.pending.load(Ordering::Relaxed) >= events
            || self.pending_bytes.load(Ordering::Relaxed) >= bytes
    }

    /// Takes `events` totalling `bytes` off the pending counts (committed or dropped).
    fn dequeued(&self, events: u64, bytes: u64) {
        self.pending.fetch_sub(events, Ordering::Relaxed);
        self.pending_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Wakes the writer: someone waits on a commit, or a batch is full.
    fn wake(&self) {
        if let Some(t) = self.writer.get() {
            t.unpark();
        }
    }

    fn set_failing(&self, error: Option<String>) {
        if let Ok(mut f) = self.failing.lock() {
            *f = error;
        }
    }

    /// Counts `n` lost events and logs it (throttled).
    fn count_dropped(&self, n: u64, why: &str) {
        let total = self.dropped.fetch_add(n, Ordering::Relaxed) + n;
        if should_warn(&self.drop_warned_ms) {
            crate::logging::error(&format!(
                "events: {why}, an event was dropped ({total} dropped so far; see `events.dropped` in GET /health)"
            ));
        }
    }
}

/// True at most once per `WARN_EVERY_MS` for each `last` stamp.
fn should_warn(last: &AtomicI64) -> bool {
    let now = crate::gateway::http::now_ms();
    let prev = last.load(Ordering::Relaxed);
    now - prev >= WARN_EVERY_MS
        && last
            .compare_exchange(prev, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// The request side: cheap to clone. Never blocks in batched durability.
#[derive(Clone)]
pub struct EventSink {
    tx: Sender<Msg>,
    shared: Arc<Shared>,
}

/// Why an event could not be queued.
#[derive(Debug, Clone, Copy)]
enum QueueError {
    Full,
    Stopped,
}

impl EventSink {
    /// Records an event with its configuration's durability (see the module doc).
    pub fn record(&self, event: Event) -> Recorded {
        match self.shared.options.durability_of(&event) {
            Durability::Batched => {
                self.backpressure();
                match self.enqueue(event, None) {
                    Ok(pending) => {
                        if pending % thread::BATCH as u64 == 0 {
                            self.shared.wake();
                        }
                        Recorded::Queued
                    }
                    Err(e) => {
                        self.shared.count_dropped(1, queue_error(e));
                        Recorded::Dropped
                    }
                }
            }
            Durability::Strict => self.record_strict(event),
        }
    }

    /// Waits while the backlog is above a high-water mark (bounded; see `QueueLimits`).
    fn backpressure(&self) {
        let limits = &self.shared.options.queue;
        if !limits.above_high_water(&self.shared) {
            return;
        }
        let deadline = Instant::now() + limits.backpressure_wait;
        while limits.above_high_water(&self.shared) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Packs, counts and sends one event; the count of pending events after it.
    fn enqueue(&self, event: Event, done: Option<SyncSender<()>>) -> Result<u64, QueueError> {
        let packed = Packed::new(&event);
        let bytes = packed.size() as u64;
        let limits = &self.shared.options.queue;
        // Counted before it is sent, so the writer never counts below zero.
        let pending = self.shared.pending.fetch_add(1, Ordering::Relaxed) + 1;
        let queued = self
            .shared
            .pending_bytes
            .fetch_add(bytes, Ordering::Relaxed)
            + bytes;
        if pending > limits.max_events || queued > limits.max_bytes {
            self.shared.dequeued(1, bytes);
            return Err(QueueError::Full);
        }
        match self.tx.send(Msg::Event(packed, done)) {
            Ok(()) => Ok(pending),
            Err(_) => {
                self.shared.dequeued(1, bytes);
                Err(QueueError::Stopped)
            }
        }
    }

    fn record_strict(&self, event: Event) -> Recorded {
        let deadline = Instant::now() + self.shared.options.strict_wait;
        let request_id = event.request_id.clone();
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        // A full queue (a stuck database) may drain before the deadline.
        while self.shared.options.queue.full(&self.shared) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if let Err(e) = self.enqueue(event, Some(done_tx)) {
            self.shared.count_dropped(1, queue_error(e));
            let why = format!("could not be queued ({})", queue_error(e));
            return self.unavailable(&request_id, &why);
        }
        self.shared.wake();
        match done_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(()) => Recorded::Committed,
            Err(mpsc::RecvTimeoutError::Timeout) => self.unavailable(
                &request_id,
                &format!(
                    "was not committed within {} ms (it stays queued and is written once the database recovers)",
                    self.shared.options.strict_wait.as_millis()
                ),
            ),
            // The writer let go of the waiter without committing: it refused the row
            // (counted as dropped) or stopped.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.unavailable(&request_id, "was not written (the database refused it, or the writer stopped)")
            }
        }
    }

    fn unavailable(&self, request_id: &str, why: &str) -> Recorded {
        let total = self.shared.unavailable.fetch_add(1, Ordering::Relaxed) + 1;
        if should_warn(&self.shared.unavailable_warned_ms) {
            crate::logging::error(&format!(
                "strict durability: the event of `{request_id}` {why}; answering 503 \
                 audit_unavailable ({total} so far; see `events.unavailable` in GET /health)"
            ));
        }
        Recorded::Unavailable
    }

    /// Blocks until every event queued before this call is committed (or `timeout`).
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let (tx, rx) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(tx)).is_err() {
            return false;
        }
        self.shared.wake();
        rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }

    pub fn stats(&self) -> WriterStats {
        WriterStats {
            pending: self.shared.pending.load(Ordering::Relaxed),
            pending_bytes: self.shared.pending_bytes.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            unavailable: self.shared.unavailable.load(Ordering::Relaxed),
            committed: self.shared.committed.load(Ordering::Relaxed),
            transactions: self.shared.transactions.load(Ordering::Relaxed),
            error: self.shared.failing.lock().ok().and_then(|f| f.clone()),
        }
    }
}

fn queue_error(e: QueueError) -> &'static str {
    match e {
        QueueError::Full => "the event queue is full",
        QueueError::Stopped => "the event writer has stopped",
    }
}

/// Owns the writer thread.
pub struct EventWriter {
    sink: EventSink,
    handle: Option<JoinHandle<()>>,
}

impl EventWriter {
    /// Opens the database and starts the writer thread.
    pub fn start(path: &Path, options: WriterOptions) -> Result<EventWriter, StoreError> {
        EventWriter::with_connection(super::open(path)?, path, options)
    }

    /// Starts the writer on an open, migrated connection to `path`.
    fn with_connection(
        conn: rusqlite::Connection,
        path: &Path,
        options: WriterOptions,
    ) -> Result<EventWriter, StoreError> {
        let io_error = |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        let strict = options.is_any_strict();
        thread::configure(&conn, strict).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let last_hash = events::last_hash(&conn)?;
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            options,
            pending: AtomicU64::new(0),
            pending_bytes: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            unavailable: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            failing: Mutex::new(None),
            drop_warned_ms: AtomicI64::new(0),
            unavailable_warned_ms: AtomicI64::new(0),
            writer: std::sync::OnceLock::new(),
        });
        let writer = thread::Writer::new(conn, rx, last_hash, shared.clone());
        let handle = std::thread::Builder::new()
            .name("kt-events".into())
            .spawn(move || writer.run())
            .map_err(io_error)?;
        let _ = shared.writer.set(handle.thread().clone()); // Set once, here.
        Ok(EventWriter {
            sink: EventSink { tx, shared },
            handle: Some(handle),
        })
    }

    pub fn sink(&self) -> EventSink {
        self.sink.clone()
    }

    /// Commits everything queued and stops the thread (within `timeout`). False when not
    /// everything could be committed in time (`sink().stats().pending` says how much).
    pub fn shutdown(mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let flushed = self.sink.flush(timeout);
        // Sinks cloned into request handlers may still exist: stop explicitly rather than
        // waiting for every sender to be dropped.
        let stopped = self.sink.tx.send(Msg::Stop).is_ok();
        self.sink.shared.wake();
        if let Some(h) = self.handle.take() {
            while stopped && !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if h.is_finished() {
                let _ = h.join(); // The thread's result is (); a panic was already printed.
            }
        }
        flushed
    }
}

#[cfg(test)]
mod tests;
