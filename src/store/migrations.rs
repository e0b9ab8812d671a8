//! Schema migrations, tracked with `PRAGMA user_version`. Append new steps; never edit one
//! that has shipped.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

const STEPS: &[&str] = &[
    // 1: events and gateway keys.
    "CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id TEXT NOT NULL,
        ts_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        configuration TEXT,
        model_requested TEXT,
        model_used TEXT,
        target_id TEXT,
        provider TEXT,
        status INTEGER NOT NULL,
        verdict TEXT NOT NULL,
        blocked_by TEXT,
        policies TEXT,
        latency_ms REAL NOT NULL,
        ttft_ms REAL,
        stream INTEGER NOT NULL DEFAULT 0,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        total_tokens INTEGER,
        cost_usd REAL,
        key_name TEXT,
        team TEXT,
        request_source TEXT,
        correlation_id TEXT,
        error TEXT,
        detail TEXT,
        request_body TEXT,
        response_body TEXT,
        prev_hash TEXT,
        hash TEXT
    );
    CREATE INDEX events_ts ON events(ts_ms);
    CREATE INDEX events_request ON events(request_id);
    CREATE TABLE gateway_keys (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        configuration_id TEXT NOT NULL,
        team TEXT,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER,
        revoked_ms INTEGER,
        last_used_ms INTEGER,
        rpm INTEGER,
        tpm INTEGER,
        budget_usd REAL
    );",
    // 2: gateway settings (the admin token's hash) and spend lookups per key.
    "CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE INDEX events_key ON events(key_name, ts_ms);",
    // 3: the per-key index holds only events made with a gateway key: a request without
    // one (the sandbox, client keys passed through) no longer pays an index insert for a
    // NULL no lookup asks for. `key_name = ?` implies `IS NOT NULL`, so spend lookups use it.
    "DROP INDEX events_key;
    CREATE INDEX events_key ON events(key_name, ts_ms) WHERE key_name IS NOT NULL;",
];

pub fn run(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let known = i64::try_from(STEPS.len()).unwrap_or(i64::MAX);
    loop {
        // IMMEDIATE: two processes opening a new file at once must not both migrate.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let result = step(conn, path, known);
        match result {
            Ok(more) => {
                conn.execute_batch("COMMIT")?;
                if !more {
                    return Ok(());
                }
            }
            Err(e) => {
                // Rolling back can only fail if the transaction is already gone.
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
}

/// Applies the next missing step; `Ok(false)` when the schema is current.
fn step(conn: &Connection, path: &Path, known: i64) -> Result<bool, StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > known {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            known,
        });
    }
    let Some(sql) = usize::try_from(version).ok().and_then(|v| STEPS.get(v)) else {
        return Ok(false);
    };
    conn.execute_batch(sql)?;
    conn.pragma_update(None, "user_version", version + 1)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_idempotent() {
        let conn = super::super::open_in_memory().unwrap();
        super::run(&conn, std::path::Path::new(":memory:")).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, super::STEPS.len() as i64);
    }

    #[test]
    fn spend_lookups_use_the_per_key_index() {
        let conn = super::super::open_in_memory().unwrap();
        super::run(&conn, std::path::Path::new(":memory:")).unwrap();
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT COALESCE(SUM(cost_usd), 0) FROM events \
                 WHERE key_name = ?1",
            )
            .unwrap()
            .query_map(["k"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|p| p.contains("USING INDEX events_key")),
            "{plan:?}"
        );
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'events_key'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(sql.ends_with("WHERE key_name IS NOT NULL"), "{sql}");
    }
}
