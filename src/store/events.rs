//! The event record: one row per request, written by the writer thread, read by
//! `kt events` and `GET /v1/events`.

use rusqlite::{params, CachedStatement, Connection, Row, Statement};
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
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ChatCompletion => "chat_completion",
            EventKind::Responses => "responses",
            EventKind::Embeddings => "embeddings",
            EventKind::Models => "models",
            EventKind::Realtime => "realtime",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        [
            EventKind::ChatCompletion,
            EventKind::Responses,
            EventKind::Embeddings,
            EventKind::Models,
            EventKind::Realtime,
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
    stmt.execute(params![
        e.request_id,
        e.ts_ms,
        e.kind.as_str(),
        e.endpoint,
        e.configuration,
        e.model_requested,
        e.model_used,
        e.target_id,
        e.provider,
        e.status,
        e.verdict,
        e.blocked_by,
        e.policies.as_ref().map(JsonText::as_str),
        e.latency_ms,
        e.ttft_ms,
        e.stream,
        e.prompt_tokens,
        e.completion_tokens,
        e.total_tokens,
        e.cost_usd,
        e.key_name,
        e.team,
        e.request_source,
        e.correlation_id,
        e.error,
        e.detail.as_ref().map(JsonText::as_str),
        e.request_body,
        e.response_body,
        e.prev_hash,
        e.hash,
    ])?;
    Ok(())
}

pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Event> {
    let json = |s: Option<String>| s.and_then(JsonText::parse);
    Ok(Event {
        id: r.get(0)?,
        request_id: r.get(1)?,
        ts_ms: r.get(2)?,
        kind: EventKind::parse(&r.get::<_, String>(3)?).unwrap_or_default(),
        endpoint: r.get(4)?,
        configuration: r.get(5)?,
        model_requested: r.get(6)?,
        model_used: r.get(7)?,
        target_id: r.get(8)?,
        provider: r.get(9)?,
        status: r.get(10)?,
        verdict: r.get(11)?,
        blocked_by: r.get(12)?,
        policies: json(r.get(13)?),
        latency_ms: r.get(14)?,
        ttft_ms: r.get(15)?,
        stream: r.get(16)?,
        prompt_tokens: r.get(17)?,
        completion_tokens: r.get(18)?,
        total_tokens: r.get(19)?,
        cost_usd: r.get(20)?,
        key_name: r.get(21)?,
        team: r.get(22)?,
        request_source: r.get(23)?,
        correlation_id: r.get(24)?,
        error: r.get(25)?,
        detail: json(r.get(26)?),
        request_body: r.get(27)?,
        response_body: r.get(28)?,
        prev_hash: r.get(29)?,
        hash: r.get(30)?,
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
