//! The writer thread: owns the write connection, gathers queued events into one
//! transaction at a time (group commit), hash-chains them, and retries a failed commit
//! with backoff (locked database, full disk, I/O errors) without losing the batch. It
//! logs one line when a failure streak starts and one when it ends, never one per retry.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use super::{Msg, Shared};
use crate::store::events;
use crate::store::packed::Packed;

/// Rows per transaction.
pub(super) const BATCH: usize = 1024;
/// After a batched event arrives in a quiet period, wait this long for more before
/// committing: one wake-up and one transaction per window instead of per request. The
/// writer sleeps through the window (batched events do not wake it: a wake-up per event
/// cost the request path a context switch each) and then takes what was queued. It is
/// also about what a SIGKILL can lose in `batched` durability. Strict events, flushes,
/// a stop and a full batch wake it at once (`Shared::wake`).
const BATCH_WINDOW: Duration = Duration::from_millis(100);
/// How often retention pruning runs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// The writer's wait on another connection's lock before its commit fails and the retry
/// loop (which logs and reports it) takes over.
const BUSY_TIMEOUT: Duration = Duration::from_secs(1);
/// Rows inserted between two yields of the CPU (~20 µs each).
const YIELD_EVERY: usize = 8;

/// The write connection's page cache, in KiB (SQLite's `cache_size` takes a negative
/// number for KiB). It must hold a batch's dirty pages (~1.5 KB of pages per event, a full
/// batch of 1 024 ~2 MiB with the indexes' pages): with 256 KiB SQLite spilled them into
/// the WAL mid-transaction and read them back, 45 % more WAL writes and twice the WAL
/// reads per event (bench/RESULTS.md, seventh session). The clean pages are let go after
/// each commit (`release_memory`), so the cache is only this large while a batch is
/// being written.
const WRITER_CACHE_KIB: i64 = -4096;
/// Backoff between retries of a failed commit.
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(2);

/// Settings of the write connection. `strict`: `synchronous = FULL`, so a commit is
/// synced to disk before it is acknowledged (WAL with `NORMAL`, the default for batched
/// durability, survives a killed process but not a power loss).
pub(super) fn configure(conn: &Connection, strict: bool) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // The writer appends (ids and request ids grow with time): between batches it needs
    // no more than the right edge of each b-tree, so the cache is emptied after each
    // commit; SQLite's default 2 MiB page cache, kept full, was most of the gateway's
    // memory growth after start.
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
    if strict {
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    Ok(())
}

/// One queued event and the strict request waiting for it.
struct Queued {
    event: Packed,
    done: Option<SyncSender<()>>,
}

/// A run of failed commits.
struct Streak {
    since: Instant,
    retries: u32,
}

pub(super) struct Writer {
    conn: Connection,
    rx: Receiver<Msg>,
    /// Hash of the last committed chained row.
    last_hash: String,
    shared: Arc<Shared>,
    streak: Option<Streak>,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        rx: Receiver<Msg>,
        last_hash: String,
        shared: Arc<Shared>,
    ) -> Writer {
        Writer {
            conn,
            rx,
            last_hash,
            shared,
            streak: None,
        }
    }

    pub(super) fn run(mut self) {
        let retention = self.shared.options.retention_days;
        let mut next_prune = Instant::now();
        let mut batch: Vec<Queued> = Vec::with_capacity(BATCH);
        let mut flushes: Vec<SyncSender<()>> = Vec::new();
        loop {
            if let Some(days) = retention {
                if Instant::now() >= next_prune {
                    prune(&self.conn, days);
                    next_prune = Instant::now() + PRUNE_EVERY;
                }
            }
            let first = match self.rx.recv_timeout(PRUNE_EVERY) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let stop = self.gather(first, &mut batch, &mut flushes);
            self.commit(&mut batch);
            for w in flushes.drain(..) {
                let _ = w.send(()); // The flusher may have given up waiting; nothing to do.
            }
            if stop {
                // Late events (a request that outlived the shutdown grace) are written too.
                let mut late = Vec::new();
                for msg in self.rx.try_iter() {
                    match msg {
                        Msg::Event(event, done) => late.push(Queued { event, done }),
                        Msg::Flush(w) => flushes.push(w),
                        Msg::Stop => {}
                    }
                }
                self.commit(&mut late);
                for w in flushes.drain(..) {
                    let _ = w.send(()); // As above.
                }
                return;
            }
        }
    }

    /// Collects what is queued into `batch` (up to `BATCH` rows), waiting out the batch
    /// window unless someone is waiting. True when the writer must stop afterwards.
    fn gather(
        &self,
        first: Msg,
        batch: &mut Vec<Queued>,
        flushes: &mut Vec<SyncSender<()>>,
    ) -> bool {
        let mut deadline = Instant::now() + BATCH_WINDOW;
        let mut next = Some(first);
        loop {
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Event(event, done) => {
                        if done.is_some() {
                            deadline = Instant::now();
                        }
                        batch.push(Queued { event, done });
                    }
                    Msg::Flush(w) => {
                        deadline = Instant::now();
                        flushes.push(w);
                    }
                    Msg::Stop => return true,
                }
                if batch.len() >= BATCH {
                    return false;
                }
                next = match self.rx.try_recv() {
                    Ok(m) => Some(m),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => return true,
                };
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                return false;
            }
            std::thread::park_timeout(wait);
            next = match self.rx.try_recv() {
                Ok(m) => Some(m),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => return true,
            };
        }
    }

    /// Commits `batch`, retrying until it succeeds. A row the database refuses for itself
    /// (a constraint, a value too big) is dropped and counted rather than retried forever:
    /// the batch is then committed row by row to find it.
    fn commit(&mut self, batch: &mut Vec<Queued>) {
        if batch.is_empty() {
            return;
        }
        let mut delay = FIRST_RETRY;
        loop {
            match self.try_commit(batch) {
                Ok(()) => {
                    self.recovered();
                    return;
                }
                Err(e) if is_row_error(&e) && batch.len() > 1 => {
                    for q in std::mem::take(batch) {
                        self.commit(&mut vec![q]);
                    }
                    return;
                }
                Err(e) if is_row_error(&e) => {
                    for q in batch.drain(..) {
                        crate::logging::error(&format!(
                            "event writer: the database refused the event of `{}`: {e}",
                            q.event.request_id()
                        ));
                        self.shared.dequeued(1, q.event.size() as u64);
                        self.shared.count_dropped(1, "the database refused a row");
                    }
                    return;
                }
                Err(e) => {
                    self.failed(&e, batch.len(), delay);
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(MAX_RETRY);
                }
            }
        }
    }

    /// One attempt: chain, insert, commit; on success wakes the strict waiters.
    fn try_commit(&mut self, batch: &mut Vec<Queued>) -> rusqlite::Result<()> {
        // Hashes follow the last *committed* row, so a retried batch chains the same way.
        let mut last = self.last_hash.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut used: Vec<(&str, i64)> = Vec::new();
        // One statement for the batch (not a cache lookup and return per row).
        let mut insert = events::prepare_insert(&tx)?;
        for (i, q) in batch.iter().enumerate() {
            if i % YIELD_EVERY == YIELD_EVERY - 1 {
                // A batch is milliseconds of CPU; a request thread woken meanwhile on this
                // core would wait for the writer's time slice to run out (~1.5 ms on two
                // cores) — that was the p99 of requests at a load the machine carries.
                // Letting it run every few rows bounds the wait to a few rows' work.
                std::thread::yield_now();
            }
            let values = q.event.values();
            let mut row = values;
            let link;
            if q.event.chain {
                let hash = events::chain_hash(&last, &q.event.unpack()?);
                link = (std::mem::replace(&mut last, hash.clone()), hash);
                row[events::PREV_HASH_AT] = link.0.as_str().into();
                row[events::HASH_AT] = link.1.as_str().into();
            }
            events::insert_values_with(&mut insert, row)?;
            if let Some((k, ts)) = Packed::key_use(&values) {
                match used.iter_mut().find(|(n, _)| *n == k) {
                    Some(slot) => slot.1 = slot.1.max(ts),
                    None => used.push((k, ts)),
                }
            }
        }
        drop(insert);
        // `last used` of gateway keys, written here so requests never wait on it.
        for (name, ts) in used {
            crate::store::keys::touch(&tx, name, ts)?;
        }
        tx.commit()?;
        // Clean pages only: what the next batch needs is read again (a few pages).
        let _ = self.conn.release_memory(); // Only fails on a closed connection.
        self.last_hash = last;
        let n = batch.len() as u64;
        let bytes = batch.iter().map(|q| q.event.size() as u64).sum();
        self.shared.dequeued(n, bytes);
        self.shared.committed.fetch_add(n, Ordering::Relaxed);
        self.shared.transactions.fetch_add(1, Ordering::Relaxed);
        for q in batch.drain(..) {
            if let Some(done) = q.done {
                let _ = done.try_send(()); // The request may have given up waiting.
            }
        }
        Ok(())
    }

    fn failed(&mut self, e: &rusqlite::Error, rows: usize, delay: Duration) {
        match &mut self.streak {
            Some(s) => s.retries += 1,
            None => {
                self.streak = Some(Streak {
                    since: Instant::now(),
                    retries: 0,
                });
                self.shared.set_failing(Some(e.to_string()));
                let strict = self.shared.options.is_any_strict();
                crate::logging::error(&format!(
                    "event writer: failed to commit {rows} event(s) ({}): {e}; retrying with \
                     backoff from {} ms until it succeeds. Requests are not held by it{}; \
                     events queue up to {} events or {} MiB, then are dropped and counted",
                    describe(e),
                    delay.as_millis(),
                    if strict {
                        " except strict ones, answered 503 audit_unavailable when it takes too long"
                    } else {
                        ""
                    },
                    self.shared.options.queue.max_events,
                    self.shared.options.queue.max_bytes >> 20,
                ));
            }
        }
    }

    fn recovered(&mut self) {
        if let Some(s) = self.streak.take() {
            self.shared.set_failing(None);
            crate::logging::info(&format!(
                "event writer: recovered after {:.1} s and {} failed attempt(s); {} event(s) still queued",
                s.since.elapsed().as_secs_f64(),
                s.retries + 1,
                self.shared.pending.load(Ordering::Relaxed),
            ));
        }
    }
}

/// Errors caused by one row's content: retrying the same row cannot succeed.
fn is_row_error(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => matches!(
            f.code,
            ErrorCode::ConstraintViolation | ErrorCode::TooBig | ErrorCode::TypeMismatch
        ),
        rusqlite::Error::ToSqlConversionFailure(_) => true,
        // A packed event that does not read back (to be hash-chained): that row's fault.
        rusqlite::Error::FromSqlConversionFailure(..) => true,
        _ => false,
    }
}

/// What an operator should look at for the common failures.
fn describe(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => "the disk or the database is full",
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            "another process holds a lock on the database"
        }
        Some(ErrorCode::SystemIoFailure) => "an I/O error",
        Some(ErrorCode::ReadOnly) | Some(ErrorCode::PermissionDenied) => {
            "the database is not writable"
        }
        Some(ErrorCode::CannotOpen) => "the database file cannot be opened",
        _ => "database error",
    }
}

fn prune(conn: &Connection, days: u32) {
    let cutoff = crate::gateway::http::now_ms() - i64::from(days) * 86_400_000;
    match events::prune_before(conn, cutoff) {
        Ok(0) => {}
        Ok(n) => crate::logging::info(&format!(
            "retention: pruned {n} event(s) older than {days} days"
        )),
        Err(e) => crate::logging::error(&format!("retention: failed to prune old events: {e}")),
    }
}
