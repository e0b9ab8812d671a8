//! The event record: one row per request, written by the writer thread, read by
//! `kt events` and `GET /v1/events`.

use rusqlite::types::{FromSql, ToSqlOutput, ValueRef};
use rusqlite::{params, params_from_iter, CachedStatement, Connection, Row, Statement};
use serde::{Deserialize, Serialize};

pub use super::json_text::JsonText;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    #[default]
    ChatCompletion,
    Responses,
    Embeddings,
    Models,
    Realtime,
    /// `POST /keeptrusts/config/reload` or SIGHUP.
    ConfigReload,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ChatCompletion => "chat_completion",
            EventKind::Responses => "responses",
            EventKind::Embeddings => "embeddings",
            EventKind::Models => "models",
            EventKind::Realtime => "realtime",
            EventKind::ConfigReload => "config_reload",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        [
            EventKind::ChatCompletion,
            EventKind::Responses,
            EventKind::Embeddings,
            EventKind::Models,
            EventKind::Realtime,
            EventKind::ConfigReload,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One governed request. Never holds a secret; payloads only as the audit-logger allows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Row id (0 until stored).
    #[serde(default)]
    pub id: i64,
    pub request_id: String,
    pub ts_ms: i64,
    pub kind: EventKind,
    pub endpoint: String,
    pub configuration: Option<String>,
    pub model_requested: Option<String>,
    pub model_used: Option<String>,
    pub target_id: Option<String>,
    pub provider: Option<String>,
    pub status: u16,
    /// allow, redact, flag or block.
    pub verdict: String,
    pub blocked_by: Option<String>,
    /// The policy chain trace (JSON array).
    pub policies: Option<JsonText>,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub stream: bool,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    pub key_name: Option<String>,
    pub team: Option<String>,
    pub request_source: Option<String>,
    pub correlation_id: Option<String>,
    pub error: Option<String>,
    /// Routing decision and other details (JSON object).
    pub detail: Option<JsonText>,
    pub request_body: Option<String>,
    pub response_body: Option<String>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
    /// Not stored: ask the writer to hash-chain this row (audit-logger `immutable: true`).
    #[serde(skip)]
    pub chain: bool,
}

/// Every column, in `from_row` order (shared with `store::query`).
pub(crate) const COLUMNS: &str =
    "id, request_id, ts_ms, kind, endpoint, configuration, model_requested, model_used, \
    target_id, provider, status, verdict, blocked_by, policies, latency_ms, ttft_ms, stream, \
    prompt_tokens, completion_tokens, total_tokens, cost_usd, key_name, team, request_source, \
    correlation_id, error, detail, request_body, response_body, prev_hash, hash";

/// Inserts one event (inside the caller's transaction) and returns its row id.
pub fn insert(conn: &Connection, e: &Event) -> rusqlite::Result<i64> {
    let mut stmt = prepare_insert(conn)?;
    insert_with(&mut stmt, e)?;
    Ok(conn.last_insert_rowid())
}

/// The statement `insert_with` runs: prepared once for a batch of events, it saves a
/// statement-cache lookup and return per event.
pub fn prepare_insert(conn: &Connection) -> rusqlite::Result<CachedStatement<'_>> {
    conn.prepare_cached(
        "INSERT INTO events (request_id, ts_ms, kind, endpoint, configuration, model_requested, \
         model_used, target_id, provider, status, verdict, blocked_by, policies, latency_ms, ttft_ms, \
         stream, prompt_tokens, completion_tokens, total_tokens, cost_usd, key_name, team, \
         request_source, correlation_id, error, detail, request_body, response_body, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
         ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30)",
    )
}

/// Inserts one event with `prepare_insert`'s statement.
pub fn insert_with(stmt: &mut Statement<'_>, e: &Event) -> rusqlite::Result<()> {
    insert_values_with(stmt, insert_values(e))
}

/// Inserts one row of `insert_values` with `prepare_insert`'s statement.
pub fn insert_values_with(
    stmt: &mut Statement<'_>,
    values: [ValueRef<'_>; INSERT_VALUES],
) -> rusqlite::Result<()> {
    stmt.execute(params_from_iter(values.map(ToSqlOutput::Borrowed)))?;
    Ok(())
}

/// How many values `prepare_insert`'s statement takes.
pub const INSERT_VALUES: usize = 30;
/// Where `insert_values` puts the values the writer reads or sets.
pub const REQUEST_ID_AT: usize = 0;
pub const TS_MS_AT: usize = 1;
pub const KEY_NAME_AT: usize = 20;
pub const PREV_HASH_AT: usize = 28;
pub const HASH_AT: usize = 29;

/// The values `prepare_insert`'s statement takes, in its order (`COLUMNS` without `id`),
/// each as SQLite stores it.
pub fn insert_values(e: &Event) -> [ValueRef<'_>; INSERT_VALUES] {
    fn text(s: &Option<String>) -> ValueRef<'_> {
        s.as_deref().map_or(ValueRef::Null, ValueRef::from)
    }
    fn json(j: &Option<JsonText>) -> ValueRef<'_> {
        j.as_ref().map_or(ValueRef::Null, |j| j.as_str().into())
    }
    let int = |i: Option<i64>| i.map_or(ValueRef::Null, ValueRef::Integer);
    let real = |r: Option<f64>| r.map_or(ValueRef::Null, ValueRef::Real);
    [
        e.request_id.as_str().into(),
        ValueRef::Integer(e.ts_ms),
        e.kind.as_str().into(),
        e.endpoint.as_str().into(),
        text(&e.configuration),
        text(&e.model_requested),
        text(&e.model_used),
        text(&e.target_id),
        text(&e.provider),
        ValueRef::Integer(e.status.into()),
        e.verdict.as_str().into(),
        text(&e.blocked_by),
        json(&e.policies),
        ValueRef::Real(e.latency_ms),
        real(e.ttft_ms),
        ValueRef::Integer(e.stream.into()),
        int(e.prompt_tokens),
        int(e.completion_tokens),
        int(e.total_tokens),
        real(e.cost_usd),
        text(&e.key_name),
        text(&e.team),
        text(&e.request_source),
        text(&e.correlation_id),
        text(&e.error),
        json(&e.detail),
        text(&e.request_body),
        text(&e.response_body),
        text(&e.prev_hash),
        text(&e.hash),
    ]
}

/// Where `from_columns` reads a row: a query's row, or `insert_values` again.
trait Columns {
    /// Column `i` of `COLUMNS`.
    fn col<T: FromSql>(&self, i: usize) -> rusqlite::Result<T>;
}

impl Columns for Row<'_> {
    fn col<T: FromSql>(&self, i: usize) -> rusqlite::Result<T> {
        self.get(i)
    }
}

impl Columns for [ValueRef<'_>; INSERT_VALUES] {
    fn col<T: FromSql>(&self, i: usize) -> rusqlite::Result<T> {
        // `id` is 0 until stored; the rest follow `id` in `COLUMNS`.
        let v = match i.checked_sub(1) {
            None => ValueRef::Integer(0),
            Some(i) => self.get(i).copied().unwrap_or(ValueRef::Null),
        };
        T::column_result(v)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, v.data_type(), Box::new(e)))
    }
}

pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Event> {
    from_columns(r)
}

/// The event whose `insert_values` these are.
pub fn from_insert_values(values: &[ValueRef<'_>; INSERT_VALUES]) -> rusqlite::Result<Event> {
    from_columns(values)
}

fn from_columns(r: &impl Columns) -> rusqlite::Result<Event> {
    let json = |s: Option<String>| s.and_then(JsonText::parse);
    Ok(Event {
        id: r.col(0)?,
        request_id: r.col(1)?,
        ts_ms: r.col(2)?,
        kind: EventKind::parse(&r.col::<String>(3)?).unwrap_or_default(),
        endpoint: r.col(4)?,
        configuration: r.col(5)?,
        model_requested: r.col(6)?,
        model_used: r.col(7)?,
        target_id: r.col(8)?,
        provider: r.col(9)?,
        status: r.col(10)?,
        verdict: r.col(11)?,
        blocked_by: r.col(12)?,
        policies: json(r.col(13)?),
        latency_ms: r.col(14)?,
        ttft_ms: r.col(15)?,
        stream: r.col(16)?,
        prompt_tokens: r.col(17)?,
        completion_tokens: r.col(18)?,
        total_tokens: r.col(19)?,
        cost_usd: r.col(20)?,
        key_name: r.col(21)?,
        team: r.col(22)?,
        request_source: r.col(23)?,
        correlation_id: r.col(24)?,
        error: r.col(25)?,
        detail: json(r.col(26)?),
        request_body: r.col(27)?,
        response_body: r.col(28)?,
        prev_hash: r.col(29)?,
        hash: r.col(30)?,
        chain: false,
    })
}

/// The newest `limit` events, oldest first.
pub fn recent(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<Event>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM (SELECT * FROM events ORDER BY id DESC LIMIT ?1) ORDER BY id ASC"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![limit], from_row)?;
    rows.collect()
}

/// Events with a row id above `after_id`, oldest first (follow mode).
pub fn after(conn: &Connection, after_id: i64, limit: u32) -> rusqlite::Result<Vec<Event>> {
    let sql = format!("SELECT {COLUMNS} FROM events WHERE id > ?1 ORDER BY id ASC LIMIT ?2");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params![after_id, limit], from_row)?;
    rows.collect()
}

/// The hash-chain link of an immutable audit log: SHA-256 (hex) over the previous row's
/// hash and the event's content (every field but `id`, `prev_hash` and `hash`, as JSON in
/// field order). The first row chains from the empty string.
pub fn chain_hash(prev_hash: &str, e: &Event) -> String {
    use sha2::{Digest, Sha256};
    let mut content = e.clone();
    content.id = 0;
    content.prev_hash = None;
    content.hash = None;
    let json = serde_json::to_vec(&content).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(&json);
    let digest = h.finalize();
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The hash of the newest chained row ("" when there is none).
pub fn last_hash(conn: &Connection) -> rusqlite::Result<String> {
    let h: Option<String> = conn
        .query_row(
            "SELECT hash FROM events WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            other => Err(other),
        })?;
    Ok(h.unwrap_or_default())
}

/// Deletes events older than `cutoff_ms`; returns how many.
pub fn prune_before(conn: &Connection, cutoff_ms: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM events WHERE ts_ms < ?1", params![cutoff_ms])
}

pub fn count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_and_read_back() {
        let conn = crate::store::open_in_memory().unwrap();
        let e = Event {
            request_id: "req-1".into(),
            ts_ms: 1,
            endpoint: "/v1/chat/completions".into(),
            status: 200,
            verdict: "allow".into(),
            policies: Some(serde_json::json!([{"policy":"audit-logger"}]).into()),
            model_requested: Some("gpt-4o".into()),
            ..Event::default()
        };
        let id = insert(&conn, &e).unwrap();
        let back = recent(&conn, 10).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0], Event { id, ..e });
        assert!(after(&conn, id, 10).unwrap().is_empty());
    }
}
