//! The event writer: one thread owns the write connection and inserts events in batched
//! transactions. Requests hand events over a bounded channel and never wait on the disk.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::events::{self, Event};
use super::StoreError;

/// Events queued before new ones are dropped (and counted).
const QUEUE: usize = 65_536;
/// Rows per transaction.
const BATCH: usize = 256;
/// After the first event of a quiet period, wait this long for more before committing:
/// one wake-up and one transaction per window instead of per request. It is also the most
/// a SIGKILL can lose in `batched` durability.
const BATCH_WINDOW: Duration = Duration::from_millis(5);

enum Msg {
    Event(Box<Event>),
    /// Reply once everything sent before has been committed.
    Flush(SyncSender<()>),
    /// Commit everything sent before, then stop.
    Stop,
}

/// The request side: cheap to clone, never blocks.
#[derive(Clone)]
pub struct EventSink {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
}

impl EventSink {
    /// Queues an event. If the queue is full the event is dropped and counted.
    pub fn record(&self, event: Event) {
        match self.tx.try_send(Msg::Event(Box::new(event))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Blocks until every event queued before this call is committed (or `timeout`).
    pub fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(tx)).is_err() {
            return false;
        }
        rx.recv_timeout(timeout).is_ok()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Owns the writer thread.
pub struct EventWriter {
    sink: EventSink,
    handle: Option<JoinHandle<()>>,
}

impl EventWriter {
    /// Opens the database and starts the writer thread. With `retention_days`, events
    /// older than that are pruned at start and then hourly.
    pub fn start(path: &Path, retention_days: Option<u32>) -> Result<EventWriter, StoreError> {
        let conn = super::open(path)?;
        let last_hash = events::last_hash(&conn)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let handle = std::thread::Builder::new()
            .name("kt-events".into())
            .spawn(move || run(conn, rx, last_hash, retention_days))
            .map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(EventWriter {
            sink: EventSink {
                tx,
                dropped: Arc::new(AtomicU64::new(0)),
            },
            handle: Some(handle),
        })
    }

    pub fn sink(&self) -> EventSink {
        self.sink.clone()
    }

    /// Commits everything queued and stops the thread (within `timeout`).
    pub fn shutdown(mut self, timeout: Duration) -> bool {
        let flushed = self.sink.flush(timeout);
        // Sinks cloned into request handlers may still exist: stop explicitly rather than
        // waiting for every sender to be dropped.
        let stopped = self.sink.tx.send(Msg::Stop).is_ok();
        if let Some(h) = self.handle.take() {
            let deadline = std::time::Instant::now() + timeout;
            while stopped && !h.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if h.is_finished() {
                let _ = h.join(); // The thread's result is (); a panic was already printed.
            }
        }
        flushed
    }
}

/// How often retention pruning runs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

fn run(
    mut conn: Connection,
    rx: Receiver<Msg>,
    mut last_hash: String,
    retention_days: Option<u32>,
) {
    let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
    let mut waiters: Vec<SyncSender<()>> = Vec::new();
    let mut stop = false;
    let mut next_prune = std::time::Instant::now();
    loop {
        if let Some(days) = retention_days {
            if std::time::Instant::now() >= next_prune {
                prune(&conn, days);
                next_prune = std::time::Instant::now() + PRUNE_EVERY;
            }
        }
        let first = match rx.recv_timeout(PRUNE_EVERY) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        if matches!(first, Msg::Event(_)) && batch.is_empty() {
            std::thread::sleep(BATCH_WINDOW);
        }
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Event(e) => batch.push(*e),
                Msg::Flush(w) => waiters.push(w),
                Msg::Stop => stop = true,
            }
            if batch.len() >= BATCH || stop {
                break;
            }
            next = rx.try_recv().ok();
        }
        for e in batch.iter_mut().filter(|e| e.chain) {
            let hash = events::chain_hash(&last_hash, e);
            e.prev_hash = Some(std::mem::replace(&mut last_hash, hash.clone()));
            e.hash = Some(hash);
        }
        write_batch(&mut conn, &mut batch);
        for w in waiters.drain(..) {
            let _ = w.send(()); // The flusher may have given up waiting; nothing to do.
        }
        if stop {
            return;
        }
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

fn write_batch(conn: &mut Connection, batch: &mut Vec<Event>) {
    if batch.is_empty() {
        return;
    }
    let mut delay = Duration::from_millis(50);
    loop {
        match try_write(conn, batch) {
            Ok(()) => {
                batch.clear();
                return;
            }
            Err(e) => {
                crate::logging::error(&format!(
                    "failed to write {} event(s), retrying in {} ms: {e}",
                    batch.len(),
                    delay.as_millis()
                ));
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

fn try_write(conn: &mut Connection, batch: &[Event]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let mut used: Vec<(&str, i64)> = Vec::new();
    for e in batch {
        events::insert(&tx, e)?;
        if let Some(k) = &e.key_name {
            match used.iter_mut().find(|(n, _)| *n == k.as_str()) {
                Some(slot) => slot.1 = slot.1.max(e.ts_ms),
                None => used.push((k.as_str(), e.ts_ms)),
            }
        }
    }
    // `last used` of gateway keys, written here so requests never wait on it.
    for (name, ts) in used {
        super::keys::touch(&tx, name, ts)?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_committed_on_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kt.db");
        let w = EventWriter::start(&path, None).unwrap();
        let sink = w.sink();
        for i in 0..1000 {
            sink.record(Event {
                request_id: format!("r{i}"),
                verdict: "allow".into(),
                ..Event::default()
            });
        }
        assert!(sink.flush(Duration::from_secs(10)));
        let conn = crate::store::open(&path).unwrap();
        assert_eq!(events::count(&conn).unwrap(), 1000);
        drop(sink);
        assert!(w.shutdown(Duration::from_secs(5)));
    }

    #[test]
    fn chained_events_link_to_each_other_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kt.db");
        for round in 0..2 {
            let w = EventWriter::start(&path, Some(30)).unwrap();
            for i in 0..3 {
                w.sink().record(Event {
                    request_id: format!("r{round}-{i}"),
                    verdict: "allow".into(),
                    ts_ms: crate::gateway::http::now_ms(),
                    chain: true,
                    ..Event::default()
                });
            }
            assert!(w.shutdown(Duration::from_secs(5)));
        }
        let conn = crate::store::open(&path).unwrap();
        let rows = events::recent(&conn, 100).unwrap();
        assert_eq!(rows.len(), 6);
        let mut prev = String::new();
        for r in &rows {
            assert_eq!(r.prev_hash.as_deref(), Some(prev.as_str()));
            let h = events::chain_hash(&prev, r);
            assert_eq!(r.hash.as_deref(), Some(h.as_str()));
            prev = h;
        }
    }
}
