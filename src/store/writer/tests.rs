//! The writer against real SQLite files: batching, chaining, group commit, and commits
//! that fail for real (a lock held by another connection, a full database, a refused
//! row) and must be retried or isolated without losing anything else.

use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::*;
use crate::store::query;

fn event(id: &str) -> Event {
    Event {
        request_id: id.to_string(),
        verdict: "allow".into(),
        ts_ms: crate::gateway::http::now_ms(),
        ..Event::default()
    }
}

fn strict() -> WriterOptions {
    WriterOptions {
        durability: Durability::Strict,
        ..WriterOptions::default()
    }
}

fn count(path: &Path) -> i64 {
    events::count(&crate::store::open(path).unwrap()).unwrap()
}

/// Polls `check` until it holds or `within` passes.
fn wait_for(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Another connection holding the write lock, as a second process would.
fn lock(path: &Path) -> Connection {
    let conn = crate::store::open(path).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn
}

#[test]
fn events_are_committed_on_flush() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kt.db");
    let w = EventWriter::start(&path, WriterOptions::default()).unwrap();
    let sink = w.sink();
    for i in 0..1000 {
        assert_eq!(sink.record(event(&format!("r{i}"))), Recorded::Queued);
    }
    assert!(sink.flush(Duration::from_secs(10)));
    assert_eq!(count(&path), 1000);
    let stats = sink.stats();
    assert_eq!(
        (stats.pending, stats.committed, stats.dropped),
        (0, 1000, 0)
    );
    drop(sink);
    assert!(w.shutdown(Duration::from_secs(5)));
}

#[test]
fn chained_events_link_to_each_other_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kt.db");
    for round in 0..2 {
        let options = WriterOptions {
            retention_days: Some(30),
            ..WriterOptions::default()
        };
        let w = EventWriter::start(&path, options).unwrap();
        for i in 0..3 {
            w.sink().record(Event {
                chain: true,
                ..event(&format!("r{round}-{i}"))
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

#[test]
fn durability_follows_the_configuration_of_the_event() {
    let options = WriterOptions {
        by_configuration: [("audited".to_string(), Durability::Strict)].into(),
        ..WriterOptions::default()
    };
    let mut e = event("r");
    assert_eq!(options.durability_of(&e), Durability::Batched);
    e.configuration = Some("audited".into());
    assert_eq!(options.durability_of(&e), Durability::Strict);
    e.configuration = Some("other".into());
    assert_eq!(options.durability_of(&e), Durability::Batched);
    assert!(options.is_any_strict());
    assert!(!WriterOptions::default().is_any_strict());
}

#[test]
fn a_strict_record_returns_once_its_event_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kt.db");
    let w = EventWriter::start(&path, strict()).unwrap();
    let sink = w.sink();
    for i in 0..5 {
        assert_eq!(sink.record(event(&format!("r{i}"))), Recorded::Committed);
        // Committed means readable by another connection right away.
        assert_eq!(count(&path), i + 1);
    }
    // Strict commits are synced (`synchronous = FULL` on the writer's connection).
    assert!(w.shutdown(Duration::from_secs(5)));
}

#[test]
fn strict_waiters_share_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kt.db");
    let w = EventWriter::start(&path, strict()).unwrap();
    let sink = w.sink();
    // While another connection holds the lock, every waiter's event queues up.
    let holder = lock(&path);
    let waiters: Vec<_> = (0..64)
        .map(|i| {
            let sink = sink.clone();
            std::thread::spawn(move || sink.record(event(&format!("r{i}"))))
        })
        .collect();
    wait_for(Duration::from_secs(3), "64 queued events", || {
        sink.stats().pending == 64
    });
    holder.execute_batch("COMMIT").unwrap();
    for t in waiters {
        assert_eq!(t.join().unwrap(), Recorded::Committed);
    }
    let stats = sink.stats();
    assert_eq!(stats.committed, 64);
    // The writer had taken the first event(s) before it met the lock; everything queued
    // behind them went into the next transaction.
    assert!(stats.transactions <= 2, "{stats:?}");
    assert_eq!(count(&path), 64);
    assert!(w.shutdown(Duration::from_secs(5)));
}

#[test]
fn a_locked_database_delays_events_but_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kt.db");
    let w = EventWriter::start(&path, WriterOptions::default()).unwrap();
    let sink = w.sink();
    let holder = lock(&path);
    let started = Instant::now();
    for i in 0..100 {
        assert_eq!(sink.record(event(&format!("r{i}"))), Recorded::Queued);
    }
    // Recording never waited on the lock.
    assert!(started.elapsed() < Duration::from_millis(500));
    wait_for(
        Duration::from_secs(5),
        "the writer to report the lock",
        || sink.stats().error.is_some_and(|e| e.contains("locked")),
    );
    assert_eq!(sink.stats().pending, 100);
    holder.execute_batch("COMMIT").unwrap();
    assert!(sink.flush(Duration::from_secs(10)));
    let stats = sink.stats();
    assert_eq!((stats.pending, stats.dropped, stats.error), (0, 0, None));
    assert_eq!(count(&path), 100);
    drop(sink);
    assert!(w.shutdown(Duration::from_secs(5)));
}

#[test]
fn a_full_database_is_retried_until_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kt.db");
    // Room the writer may reuse once freed: a filler table of ~400 KB.
    let other = crate::store::open(&path).unwrap();
    other
        .execute_batch("CREATE TABLE filler(b BLOB); INSERT INTO filler VALUES (zeroblob(400000));")
        .unwrap();
    // The writer's connection may not grow the file: SQLite answers SQLITE_FULL, as on a
    // full disk.
    let conn = crate::store::open(&path).unwrap();
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    let max: i64 = conn
        .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(max, pages);
    let w = EventWriter::with_connection(conn, &path, WriterOptions::default()).unwrap();
    let sink = w.sink();
    for i in 0..16 {
        sink.record(Event {
            request_body: Some("x".repeat(8000)),
            chain: true,
            ..event(&format!("r{i}"))
        });
    }
    wait_for(
        Duration::from_secs(5),
        "the writer to report a full disk",
        || sink.stats().error.is_some_and(|e| e.contains("full")),
    );
    assert_eq!(count(&path), 0);
    assert_eq!(sink.stats().pending, 16);
    other.execute_batch("DROP TABLE filler").unwrap();
    assert!(sink.flush(Duration::from_secs(10)));
    assert_eq!(sink.stats().error, None);
    assert_eq!(count(&path), 16);
    // The retried batch chains as if it had never failed.
    let report = query::verify_chain(&other, &mut |_| {}).unwrap();
    assert_eq!((report.checked, report.broken), (16, None));
    drop(sink);
    assert!(w.shutdown(Duration::from_secs(5)));
}

#[test]
fn a_row_the_database_refuses_is_dropped_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kt.db");
    let w = EventWriter::start(&path, WriterOptions::default()).unwrap();
    let sink = w.sink();
    crate::store::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.request_id = 'bad' \
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
    for id in ["a", "bad", "c"] {
        sink.record(Event {
            chain: true,
            ..event(id)
        });
    }
    assert!(sink.flush(Duration::from_secs(10)));
    let conn = crate::store::open(&path).unwrap();
    let ids: Vec<String> = events::recent(&conn, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.request_id)
        .collect();
    assert_eq!(ids, ["a", "c"]);
    let report = query::verify_chain(&conn, &mut |_| {}).unwrap();
    assert_eq!((report.checked, report.broken), (2, None));
    let stats = sink.stats();
    assert_eq!((stats.dropped, stats.pending), (1, 0));
    // A strict request whose row is refused is told so at once.
    let strict = EventWriter::start(&path, strict()).unwrap();
    assert_eq!(strict.sink().record(event("bad")), Recorded::Unavailable);
    assert_eq!(strict.sink().stats().unavailable, 1);
    drop(sink);
    assert!(w.shutdown(Duration::from_secs(5)));
    assert!(strict.shutdown(Duration::from_secs(5)));
}

#[test]
fn a_strict_wait_is_bounded_and_the_event_is_written_later() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kt.db");
    let options = WriterOptions {
        strict_wait: Duration::from_millis(300),
        ..strict()
    };
    let w = EventWriter::start(&path, options).unwrap();
    let sink = w.sink();
    let holder = lock(&path);
    let started = Instant::now();
    assert_eq!(sink.record(event("r")), Recorded::Unavailable);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert_eq!(sink.stats().unavailable, 1);
    holder.execute_batch("COMMIT").unwrap();
    assert!(sink.flush(Duration::from_secs(10)));
    assert_eq!(count(&path), 1);
    drop(sink);
    assert!(w.shutdown(Duration::from_secs(5)));
}

#[test]
fn after_shutdown_events_are_counted_not_lost_silently() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kt.db");
    let w = EventWriter::start(&path, WriterOptions::default()).unwrap();
    let sink = w.sink();
    assert!(w.shutdown(Duration::from_secs(5)));
    assert_eq!(sink.record(event("late")), Recorded::Dropped);
    assert_eq!(sink.stats().dropped, 1);
    assert_eq!(sink.stats().pending, 0);
}

/// An event carrying `kib` KiB of audited request body.
fn large_event(id: &str, kib: usize) -> Event {
    Event {
        request_body: Some("x".repeat(kib << 10)),
        ..event(id)
    }
}

#[test]
fn a_backlog_of_large_events_holds_requests_back_then_drops_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kt.db");
    let options = WriterOptions {
        queue: QueueLimits {
            high_water_bytes: 200 << 10,
            backpressure_wait: Duration::from_millis(300),
            max_bytes: 560 << 10,
            ..QueueLimits::default()
        },
        ..WriterOptions::default()
    };
    let w = EventWriter::start(&path, options).unwrap();
    let sink = w.sink();
    let holder = lock(&path);
    // Below the byte mark (few events, by count), recording does not wait.
    let started = Instant::now();
    for i in 0..4 {
        assert_eq!(
            sink.record(large_event(&format!("r{i}"), 64)),
            Recorded::Queued
        );
    }
    assert!(started.elapsed() < Duration::from_millis(250));
    assert!(sink.stats().pending_bytes >= 200 << 10);
    // Above it, each record waits out the backpressure, then queues anyway.
    let started = Instant::now();
    for i in 4..8 {
        assert_eq!(
            sink.record(large_event(&format!("r{i}"), 64)),
            Recorded::Queued
        );
    }
    assert!(started.elapsed() >= Duration::from_millis(4 * 290));
    // The queue's byte bound: dropped and counted, nothing already queued is lost.
    assert_eq!(sink.record(large_event("r8", 64)), Recorded::Dropped);
    let stats = sink.stats();
    assert_eq!((stats.pending, stats.dropped), (8, 1));
    holder.execute_batch("COMMIT").unwrap();
    assert!(sink.flush(Duration::from_secs(10)));
    let stats = sink.stats();
    assert_eq!(
        (stats.pending, stats.pending_bytes, stats.dropped),
        (0, 0, 1)
    );
    assert_eq!(count(&path), 8);
    drop(sink);
    assert!(w.shutdown(Duration::from_secs(5)));
}
