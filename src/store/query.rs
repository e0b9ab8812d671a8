//! Read-side event queries for `kt events` (tail, follow, export, verify) and the events
//! API: filters, id-ranged pages and the hash-chain check. Readers open their own
//! connection; nothing here writes, and no statement stays open between calls (an open
//! statement would hold a read snapshot and stall the writer's checkpoints).

use rusqlite::{params, Connection, OptionalExtension};

use super::events::{self, Event, JsonText, COLUMNS};

/// Which events to show. Every field narrows; `Filter::default()` matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Only events at or after this time (Unix ms).
    pub since_ms: Option<i64>,
    /// Only events before this time (Unix ms).
    pub until_ms: Option<i64>,
    /// `allow`, `redact`, `flag` or `block`.
    pub verdict: Option<String>,
    /// Events this policy blocked, redacted, flagged (observe mode included) or failed on.
    pub policy: Option<String>,
    /// Requested or served model.
    pub model: Option<String>,
    /// Gateway key name.
    pub key: Option<String>,
}

impl Filter {
    /// The same test as the SQL, for events that did not come from SQLite (remote tail).
    pub fn matches(&self, e: &Event) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        self.since_ms.is_none_or(|t| e.ts_ms >= t)
            && self.until_ms.is_none_or(|t| e.ts_ms < t)
            && eq(&self.verdict, Some(e.verdict.as_str()))
            && self.model.as_deref().is_none_or(|m| {
                e.model_requested.as_deref() == Some(m) || e.model_used.as_deref() == Some(m)
            })
            && eq(&self.key, e.key_name.as_deref())
            && self
                .policy
                .as_deref()
                .is_none_or(|p| e.blocked_by.as_deref() == Some(p) || policy_acted(e, p))
    }
}

/// Whether the event's policy trace has `policy` doing something other than allowing.
fn policy_acted(e: &Event, policy: &str) -> bool {
    let Some(serde_json::Value::Array(list)) = e.policies.as_ref().map(JsonText::value) else {
        return false;
    };
    list.iter().any(|t| {
        t.get("policy").and_then(serde_json::Value::as_str) == Some(policy)
            && (t.get("verdict").and_then(serde_json::Value::as_str) != Some("allow")
                || t.get("error").is_some_and(|v| !v.is_null()))
    })
}

/// The filter as SQL over `events` with parameters ?1..?6: since, until, verdict, model,
/// key, policy.
/// `json_each` is fed `[]` for a malformed trace, so one bad row cannot fail the query.
const WHERE: &str = "(?1 IS NULL OR ts_ms >= ?1) \
    AND (?2 IS NULL OR ts_ms < ?2) \
    AND (?3 IS NULL OR verdict = ?3) \
    AND (?4 IS NULL OR model_requested = ?4 OR model_used = ?4) \
    AND (?5 IS NULL OR key_name = ?5) \
    AND (?6 IS NULL OR blocked_by = ?6 OR EXISTS (\
        SELECT 1 FROM json_each(CASE WHEN json_valid(events.policies) \
            THEN events.policies ELSE '[]' END) AS p \
        WHERE json_extract(p.value, '$.policy') = ?6 \
        AND (json_extract(p.value, '$.verdict') IS NOT 'allow' \
            OR json_extract(p.value, '$.error') IS NOT NULL)))";

/// The newest `limit` matching events, oldest first.
pub fn recent(conn: &Connection, f: &Filter, limit: u32) -> rusqlite::Result<Vec<Event>> {
    let (lo, hi) = id_bounds(conn, f)?;
    let sql = format!(
        "SELECT {COLUMNS} FROM (SELECT * FROM events WHERE id > ?7 AND id <= ?8 AND {WHERE} \
         ORDER BY id DESC LIMIT ?9) ORDER BY id ASC"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![f.since_ms, f.until_ms, f.verdict, f.model, f.key, f.policy, lo, hi, limit],
        events::from_row,
    )?;
    rows.collect()
}

/// Matching events with `after_id < id <= upto_id` (no upper bound when `None`), oldest
/// first, at most `limit`: one page of follow mode or of an export.
pub fn after(
    conn: &Connection,
    f: &Filter,
    after_id: i64,
    upto_id: Option<i64>,
    limit: u32,
) -> rusqlite::Result<Vec<Event>> {
    let (lo, hi) = id_bounds(conn, f)?;
    let lo = lo.max(after_id);
    let hi = upto_id.map_or(hi, |u| hi.min(u));
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE id > ?7 AND id <= ?8 AND {WHERE} \
         ORDER BY id ASC LIMIT ?9"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![f.since_ms, f.until_ms, f.verdict, f.model, f.key, f.policy, lo, hi, limit],
        events::from_row,
    )?;
    rows.collect()
}

/// How many events match (for an export's progress bar).
pub fn count(conn: &Connection, f: &Filter) -> rusqlite::Result<u64> {
    let (lo, hi) = id_bounds(conn, f)?;
    let sql = format!("SELECT COUNT(*) FROM events WHERE id > ?7 AND id <= ?8 AND {WHERE}");
    conn.query_row(
        &sql,
        params![f.since_ms, f.until_ms, f.verdict, f.model, f.key, f.policy, lo, hi],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| u64::try_from(n).unwrap_or(0))
}

/// The id range `(lo, hi]` that can hold events of the filter's time range, found through
/// the `ts_ms` index so a `--since` query does not scan the whole table. Timestamps are not
/// strictly ordered by id, so the bounds come from MIN/MAX rather than a single lookup.
fn id_bounds(conn: &Connection, f: &Filter) -> rusqlite::Result<(i64, i64)> {
    let lo = match f.since_ms {
        Some(t) => conn
            .query_row(
                "SELECT MIN(id) FROM events WHERE ts_ms >= ?1",
                params![t],
                |r| r.get::<_, Option<i64>>(0),
            )?
            .map_or(i64::MAX, |id| id - 1),
        None => 0,
    };
    let hi = match f.until_ms {
        Some(t) => conn
            .query_row(
                "SELECT MAX(id) FROM events WHERE ts_ms < ?1",
                params![t],
                |r| r.get::<_, Option<i64>>(0),
            )?
            .unwrap_or(0),
        None => i64::MAX,
    };
    Ok((lo, hi))
}

/// The newest row id (0 for an empty table).
pub fn max_id(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))
}

/// `PRAGMA data_version`: changes whenever another connection commits. Polling it is how a
/// second process notices the gateway's writes without re-running the event query.
pub fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "data_version", |r| r.get(0))
}

/// The highest id SQLite ever handed out for `events` (AUTOINCREMENT never reuses ids).
fn id_sequence(conn: &Connection) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Where the hash chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The row's content no longer hashes to its `hash`: it was edited.
    Modified { id: i64 },
    /// The row's `prev_hash` is not the hash of the chained row before it: rows between
    /// were deleted (or the link itself was edited).
    Missing { id: i64, prev_id: i64 },
    /// A chained row lost its `hash` or `prev_hash`.
    Unlinked { id: i64 },
    /// The newest rows are gone: ids up to `sequence` were handed out, the table ends at
    /// `last_id`.
    TailDeleted { last_id: i64, sequence: i64 },
}

impl Break {
    /// The row id where the break shows.
    pub fn id(&self) -> i64 {
        match self {
            Break::Modified { id } | Break::Missing { id, .. } | Break::Unlinked { id } => *id,
            Break::TailDeleted { last_id, .. } => *last_id + 1,
        }
    }
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Break::Modified { id } => write!(
                f,
                "event #{id} was modified after it was recorded (its content no longer matches its hash)"
            ),
            Break::Missing { id, prev_id } if id - prev_id > 1 => write!(
                f,
                "event #{id} does not link to event #{prev_id}: the chained event(s) between them (#{}..#{}) were deleted",
                prev_id + 1,
                id - 1
            ),
            Break::Missing { id, prev_id } => write!(
                f,
                "event #{id} does not link to event #{prev_id}: a chained event was deleted or a link was edited"
            ),
            Break::Unlinked { id } => {
                write!(f, "event #{id} lost its hash-chain link (`hash` or `prev_hash` is empty)")
            }
            Break::TailDeleted { last_id, sequence } if sequence - last_id > 1 => write!(
                f,
                "the newest events #{}..#{sequence} were deleted",
                last_id + 1
            ),
            Break::TailDeleted { sequence, .. } => {
                write!(f, "the newest event #{sequence} was deleted")
            }
        }
    }
}

/// The outcome of [`verify_chain`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainReport {
    /// Chained rows checked.
    pub checked: u64,
    pub first_id: Option<i64>,
    pub last_id: Option<i64>,
    /// The first chained row links to a predecessor that is gone: older events were
    /// pruned by `retention_days` (or deleted; the chain cannot tell which).
    pub starts_mid_chain: bool,
    /// The first break, if any.
    pub broken: Option<Break>,
}

/// Rows read per page while verifying.
const VERIFY_PAGE: u32 = 1000;

/// Checks the hash chain of the rows written under audit-logger `immutable: true`, in one
/// read snapshot (a gateway may keep writing meanwhile). Stops at the first break.
/// `progress` is called with the number of rows checked so far after every page.
pub fn verify_chain(
    conn: &Connection,
    progress: &mut dyn FnMut(u64),
) -> rusqlite::Result<ChainReport> {
    let tx = conn.unchecked_transaction()?;
    let mut report = ChainReport::default();
    // (id, hash) of the previous chained row.
    let mut prev: Option<(i64, String)> = None;
    let mut after_id = 0;
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE id > ?1 \
         AND (hash IS NOT NULL OR prev_hash IS NOT NULL) ORDER BY id ASC LIMIT ?2"
    );
    'pages: loop {
        let page: Vec<Event> = {
            let mut stmt = tx.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![after_id, VERIFY_PAGE], events::from_row)?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let Some(last) = page.last() else { break };
        after_id = last.id;
        let full = page.len() == VERIFY_PAGE as usize;
        for row in page {
            let (Some(prev_hash), Some(hash)) = (row.prev_hash.clone(), row.hash.clone()) else {
                report.broken = Some(Break::Unlinked { id: row.id });
                break 'pages;
            };
            match &prev {
                None => {
                    report.first_id = Some(row.id);
                    report.starts_mid_chain = !prev_hash.is_empty();
                }
                Some((prev_id, expected)) if *expected != prev_hash => {
                    report.broken = Some(Break::Missing {
                        id: row.id,
                        prev_id: *prev_id,
                    });
                    break 'pages;
                }
                Some(_) => {}
            }
            if events::chain_hash(&prev_hash, &row) != hash {
                report.broken = Some(Break::Modified { id: row.id });
                break 'pages;
            }
            report.checked += 1;
            report.last_id = Some(row.id);
            prev = Some((row.id, hash));
        }
        progress(report.checked);
        if !full {
            break;
        }
    }
    if report.broken.is_none() {
        let last_id = max_id(&tx)?;
        let sequence = id_sequence(&tx)?;
        // An empty table after pruning says nothing; rows gone from the end of a non-empty
        // one were deleted, since retention only removes the oldest.
        if last_id > 0 && sequence > last_id {
            report.broken = Some(Break::TailDeleted { last_id, sequence });
        }
    }
    tx.finish()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::events::insert;

    fn event(i: i64, verdict: &str, model: &str, key: Option<&str>) -> Event {
        Event {
            request_id: format!("r{i}"),
            ts_ms: 1_000 * i,
            endpoint: "/v1/chat/completions".into(),
            status: 200,
            verdict: verdict.into(),
            model_requested: Some(model.into()),
            model_used: Some(format!("{model}-served")),
            key_name: key.map(str::to_string),
            ..Event::default()
        }
    }

    fn db() -> Connection {
        let conn = crate::store::open_in_memory().unwrap();
        for i in 1..=10 {
            let mut e = event(
                i,
                if i % 3 == 0 { "block" } else { "allow" },
                if i % 2 == 0 { "gpt-4o" } else { "claude" },
                (i > 5).then_some("team-a"),
            );
            if i == 9 {
                e.blocked_by = Some("prompt-injection".into());
            }
            if i == 4 {
                e.verdict = "redact".into();
                e.policies = Some(
                    serde_json::json!([
                        {"policy": "audit-logger", "phase": "input", "verdict": "allow"},
                        {"policy": "pii-detector", "phase": "input", "verdict": "redact"}
                    ])
                    .into(),
                );
            }
            if i == 5 {
                e.policies = Some(
                    serde_json::json!([
                        {"policy": "pii-detector", "phase": "input", "verdict": "allow"}
                    ])
                    .into(),
                );
            }
            insert(&conn, &e).unwrap();
        }
        conn
    }

    fn ids(evs: &[Event]) -> Vec<i64> {
        evs.iter().map(|e| e.id).collect()
    }

    /// The SQL and `Filter::matches` must agree on every filter.
    fn check(conn: &Connection, f: &Filter, want: &[i64]) {
        assert_eq!(ids(&recent(conn, f, 100).unwrap()), want, "{f:?}");
        assert_eq!(ids(&after(conn, f, 0, None, 100).unwrap()), want, "{f:?}");
        assert_eq!(count(conn, f).unwrap(), want.len() as u64, "{f:?}");
        let all = recent(conn, &Filter::default(), 100).unwrap();
        let local: Vec<i64> = all.iter().filter(|e| f.matches(e)).map(|e| e.id).collect();
        assert_eq!(local, want, "matches() for {f:?}");
    }

    #[test]
    fn filters() {
        let conn = db();
        check(&conn, &Filter::default(), &(1..=10).collect::<Vec<_>>());
        let by = |f: fn(&mut Filter)| {
            let mut x = Filter::default();
            f(&mut x);
            x
        };
        check(&conn, &by(|f| f.verdict = Some("block".into())), &[3, 6, 9]);
        check(
            &conn,
            &by(|f| f.model = Some("gpt-4o".into())),
            &[2, 4, 6, 8, 10],
        );
        check(
            &conn,
            &by(|f| f.model = Some("claude-served".into())),
            &[1, 3, 5, 7, 9],
        );
        check(
            &conn,
            &by(|f| f.key = Some("team-a".into())),
            &[6, 7, 8, 9, 10],
        );
        check(&conn, &by(|f| f.since_ms = Some(8_000)), &[8, 9, 10]);
        check(&conn, &by(|f| f.until_ms = Some(3_000)), &[1, 2]);
        check(&conn, &by(|f| f.since_ms = Some(99_000)), &[]);
        check(&conn, &by(|f| f.until_ms = Some(0)), &[]);
        check(
            &conn,
            &by(|f| f.policy = Some("prompt-injection".into())),
            &[9],
        );
        // Allowing is not acting: event 5's pii-detector entry allowed.
        check(&conn, &by(|f| f.policy = Some("pii-detector".into())), &[4]);
        check(&conn, &by(|f| f.policy = Some("audit-logger".into())), &[]);
        let mut f = by(|f| f.verdict = Some("allow".into()));
        f.key = Some("team-a".into());
        f.since_ms = Some(7_000);
        check(&conn, &f, &[7, 8, 10]);
    }

    #[test]
    fn recent_limits_to_the_newest_and_pages_follow_ids() {
        let conn = db();
        assert_eq!(
            ids(&recent(&conn, &Filter::default(), 3).unwrap()),
            [8, 9, 10]
        );
        let f = Filter::default();
        assert_eq!(ids(&after(&conn, &f, 4, Some(7), 100).unwrap()), [5, 6, 7]);
        assert_eq!(ids(&after(&conn, &f, 4, None, 2).unwrap()), [5, 6]);
        assert_eq!(max_id(&conn).unwrap(), 10);
    }

    #[test]
    fn a_malformed_trace_does_not_fail_a_policy_query() {
        let conn = db();
        conn.execute("UPDATE events SET policies = 'not json' WHERE id = 2", [])
            .unwrap();
        let f = Filter {
            policy: Some("pii-detector".into()),
            ..Filter::default()
        };
        assert_eq!(ids(&recent(&conn, &f, 100).unwrap()), [4]);
    }

    fn chained_db(n: i64) -> Connection {
        let conn = crate::store::open_in_memory().unwrap();
        let mut prev = String::new();
        for i in 1..=n {
            let mut e = event(i, "allow", "gpt-4o", None);
            let h = events::chain_hash(&prev, &e);
            e.prev_hash = Some(std::mem::replace(&mut prev, h.clone()));
            e.hash = Some(h);
            insert(&conn, &e).unwrap();
        }
        conn
    }

    fn verify(conn: &Connection) -> ChainReport {
        verify_chain(conn, &mut |_| {}).unwrap()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let conn = chained_db(2500);
        // Unchained rows (other configurations) may sit between chained ones.
        insert(&conn, &event(99, "allow", "x", None)).unwrap();
        let mut pages = Vec::new();
        let r = verify_chain(&conn, &mut |n| pages.push(n)).unwrap();
        assert_eq!(r.broken, None);
        assert_eq!(r.checked, 2500);
        assert_eq!((r.first_id, r.last_id), (Some(1), Some(2500)));
        assert!(!r.starts_mid_chain);
        assert_eq!(pages, [1000, 2000, 2500]);
        assert_eq!(
            verify(&crate::store::open_in_memory().unwrap()),
            ChainReport::default()
        );
    }

    #[test]
    fn tampering_is_found_at_the_first_broken_link() {
        let conn = chained_db(5);
        conn.execute("UPDATE events SET verdict = 'block' WHERE id = 3", [])
            .unwrap();
        let r = verify(&conn);
        assert_eq!(r.broken, Some(Break::Modified { id: 3 }));
        assert_eq!(r.checked, 2);

        let conn = chained_db(5);
        conn.execute("DELETE FROM events WHERE id = 3", []).unwrap();
        let r = verify(&conn);
        assert_eq!(r.broken, Some(Break::Missing { id: 4, prev_id: 2 }));
        assert!(r.broken.unwrap().to_string().contains("#3..#3"));

        let conn = chained_db(5);
        conn.execute("DELETE FROM events WHERE id >= 4", [])
            .unwrap();
        let r = verify(&conn);
        assert_eq!(
            r.broken,
            Some(Break::TailDeleted {
                last_id: 3,
                sequence: 5
            })
        );

        let conn = chained_db(5);
        conn.execute("UPDATE events SET hash = NULL WHERE id = 2", [])
            .unwrap();
        assert_eq!(verify(&conn).broken, Some(Break::Unlinked { id: 2 }));
    }

    #[test]
    fn a_pruned_start_is_reported_but_not_a_break() {
        let conn = chained_db(5);
        conn.execute("DELETE FROM events WHERE id <= 2", [])
            .unwrap();
        let r = verify(&conn);
        assert_eq!(r.broken, None);
        assert!(r.starts_mid_chain);
        assert_eq!((r.first_id, r.checked), (Some(3), 3));
    }
}
