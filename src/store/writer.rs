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
    /// Opens the database and starts the writer thread.
    pub fn start(path: &Path) -> Result<EventWriter, StoreError> {
        let conn = super::open(path)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let handle = std::thread::Builder::new()
            .name("kt-events".into())
            .spawn(move || run(conn, rx))
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

fn run(mut conn: Connection, rx: Receiver<Msg>) {
    let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
    let mut waiters: Vec<SyncSender<()>> = Vec::new();
    let mut stop = false;
    while let Ok(first) = rx.recv() {
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
        write_batch(&mut conn, &mut batch);
        for w in waiters.drain(..) {
            let _ = w.send(()); // The flusher may have given up waiting; nothing to do.
        }
        if stop {
            return;
        }
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
    for e in batch {
        events::insert(&tx, e)?;
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
        let w = EventWriter::start(&path).unwrap();
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
}
