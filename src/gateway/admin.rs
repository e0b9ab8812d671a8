//! Admin endpoints, behind the admin token: `GET /v1/events` (recent events) and
//! `GET /keeptrusts/config` (the effective configurations, secrets masked).

use crate::gateway::conn::Request;
use serde_json::{json, Value};

use super::http::Reply;
use super::State;
use crate::openai::ApiError;

/// `GET /v1/events?limit=N&after=ID`: the newest `limit` events (default 50, at most
/// 1000), or with `after` the events that follow that row id, oldest first.
pub fn events(state: &State, req: &Request) -> Reply {
    if let Err(e) = state.admin.check(req) {
        return Reply::error(&e);
    }
    let query = req.url().split_once('?').map_or("", |(_, q)| q);
    let mut limit = 50u32;
    let mut after = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let parsed = v.parse::<i64>();
        match (k, parsed) {
            ("limit", Ok(n)) if n > 0 => limit = u32::try_from(n.min(1000)).unwrap_or(1000),
            ("after", Ok(n)) if n >= 0 => after = Some(n),
            ("limit" | "after", _) => {
                return Reply::error(
                    &ApiError::bad_request(format!(
                        "`{k}` must be a non-negative integer, got `{v}`"
                    ))
                    .with_param(k),
                )
            }
            _ => {}
        }
    }
    let rows = crate::store::open(&state.db)
        .map_err(|e| e.to_string())
        .and_then(|conn| {
            match after {
                Some(id) => crate::store::events::after(&conn, id, limit),
                None => crate::store::events::recent(&conn, limit),
            }
            .map_err(|e| e.to_string())
        });
    match rows {
        Ok(rows) => {
            let body = json!({"object": "list", "data": rows});
            Reply::json(200, body.to_string().into_bytes())
        }
        Err(e) => {
            crate::logging::error(&format!("GET /v1/events: {e}"));
            Reply::error(&ApiError::internal("failed to read events"))
        }
    }
}

/// `GET /keeptrusts/config`: every loaded configuration as the gateway runs it. Secrets
/// never appear: keys are only referenced by environment variable name, and extra header
/// values are masked.
pub fn config(state: &State, req: &Request) -> Reply {
    if let Err(e) = state.admin.check(req) {
        return Reply::error(&e);
    }
    let loaded = state.loaded();
    let mut configs = serde_json::Map::new();
    for (name, rt) in &loaded.by_name {
        let mut spec = serde_json::to_value(&rt.config.spec).unwrap_or(Value::Null);
        if let Some(targets) = spec
            .pointer_mut("/providers/targets")
            .and_then(Value::as_array_mut)
        {
            for t in targets {
                if let Some(h) = t.get_mut("headers").and_then(Value::as_object_mut) {
                    for v in h.values_mut() {
                        *v = Value::String("***".into());
                    }
                }
            }
        }
        configs.insert(name.clone(), spec);
    }
    let body = json!({
        "default": loaded.default.config.name,
        "source": loaded.default.config.source,
        "configurations": configs,
    });
    Reply::json(200, body.to_string().into_bytes())
}
