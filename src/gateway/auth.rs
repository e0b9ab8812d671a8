//! Who is calling: gateway keys (`kt_gk_…`, validated against the store through a cache
//! that re-reads a key at most once a second, so a revocation by another process takes
//! effect within a second), pass-through provider keys, and the admin token.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::schema::WireFormat;
use crate::config::Target;
use crate::gateway::conn::Request;
use rusqlite::Connection;

use super::http::{header, now_ms};
use crate::openai::ApiError;
use crate::store::keys::{self, KeyRecord, KeyState};
use crate::store::StoreError;

/// How long a key lookup is trusted before the store is asked again.
const KEY_TTL: Duration = Duration::from_secs(1);

/// The credential a request presented.
#[derive(Debug, Clone, PartialEq)]
pub enum Presented {
    None,
    GatewayKey(String),
    /// Anything else: a provider key to forward when the target has none.
    Other(String),
}

/// The key a client sent: `Authorization: Bearer`, `api-key` or `x-api-key`.
pub fn presented(req: &Request) -> Presented {
    let raw = header(req, "authorization")
        .map(|v| {
            let v = v.trim();
            match v.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
                _ => v,
            }
        })
        .or_else(|| header(req, "api-key"))
        .or_else(|| header(req, "x-api-key"))
        .map(str::trim)
        .unwrap_or("");
    if raw.is_empty() {
        Presented::None
    } else if raw.starts_with(keys::KEY_PREFIX) {
        Presented::GatewayKey(raw.to_string())
    } else {
        Presented::Other(raw.to_string())
    }
}

/// A provider key the client sent (not a gateway key), forwarded when the target has
/// none, with the account headers that came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKey {
    pub key: String,
    /// `OpenAI-Organization` and `OpenAI-Project` as the client sent them: which of the
    /// key's organizations and projects the call is billed to. They go upstream with the
    /// client's key only, never with a target's own.
    pub account: Vec<(String, String)>,
}

/// The account headers a client sends with its OpenAI key.
pub const ACCOUNT_HEADERS: [&str; 2] = ["OpenAI-Organization", "OpenAI-Project"];

impl ClientKey {
    /// The key with the account headers of `req`.
    pub fn with_account(key: String, req: &Request) -> ClientKey {
        let account = ACCOUNT_HEADERS
            .iter()
            .filter_map(|name| {
                header(req, name)
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| ((*name).to_string(), v.to_string()))
            })
            .collect();
        ClientKey { key, account }
    }
}

/// The key an upstream call to `target` sends — the target's own, else the client's —
/// and the headers that go with it: the client's account headers, only with the client's
/// key and only to a target speaking OpenAI's format.
pub fn upstream_key<'a>(
    target: &'a Target,
    client: Option<&'a ClientKey>,
) -> (Option<&'a str>, &'a [(String, String)]) {
    match (&target.credential, client) {
        (Some(secret), _) => (Some(secret.expose()), &[]),
        (None, Some(c)) if target.format == WireFormat::Openai => (Some(&c.key), &c.account),
        (None, Some(c)) => (Some(&c.key), &[]),
        (None, None) => (None, &[]),
    }
}

/// Gateway-key lookups with a short-lived cache in front of SQLite.
pub struct KeyCache {
    conn: Mutex<Connection>,
    entries: Mutex<HashMap<String, (Instant, Option<KeyRecord>)>>,
}

impl KeyCache {
    pub fn open(db: &Path) -> Result<KeyCache, StoreError> {
        Ok(KeyCache {
            conn: Mutex::new(crate::store::open(db)?),
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// Validates a gateway key: the record of an active key, or a 401 that says whether
    /// the key is unknown, expired or revoked (naming only its display prefix).
    pub fn validate(&self, key: &str) -> Result<KeyRecord, ApiError> {
        let hash = keys::hash_key(key);
        let cached = {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            entries
                .get(&hash)
                .filter(|(at, _)| at.elapsed() < KEY_TTL)
                .map(|(_, r)| r.clone())
        };
        let record = match cached {
            Some(r) => r,
            None => {
                let found = {
                    let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
                    keys::find_by_key(&conn, key)
                };
                let found = found.map_err(|e| {
                    crate::logging::error(&format!("gateway key lookup failed: {e}"));
                    ApiError::internal("gateway key lookup failed")
                })?;
                let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
                if entries.len() > 100_000 {
                    entries.clear();
                }
                entries.insert(hash, (Instant::now(), found.clone()));
                found
            }
        };
        let prefix = keys::display_prefix(key);
        let Some(record) = record else {
            return Err(ApiError::unauthorized(format!(
                "Unknown gateway key `{prefix}…`. Create one with `kt gateway-key create`."
            )));
        };
        match record.state(now_ms()) {
            KeyState::Active => Ok(record),
            KeyState::Expired => Err(ApiError::unauthorized(format!(
                "Gateway key `{}…` (`{}`) has expired. Create a new one with `kt gateway-key create`.",
                record.prefix, record.name
            ))),
            KeyState::Revoked => Err(ApiError::unauthorized(format!(
                "Gateway key `{}…` (`{}`) was revoked.",
                record.prefix, record.name
            ))),
        }
    }

    /// USD spent by a key so far (from the events).
    pub fn spent_by_key(&self, name: &str) -> f64 {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        keys::spent_by_key(&conn, name).unwrap_or(0.0)
    }

    pub fn spent_since(&self, since_ms: i64) -> f64 {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        keys::spent_since(&conn, since_ms).unwrap_or(0.0)
    }
}

/// The admin token: checked by hash in constant time.
#[derive(Debug, Clone)]
pub struct AdminToken {
    hash: String,
}

impl AdminToken {
    pub fn from_hash(hash: String) -> AdminToken {
        AdminToken { hash }
    }

    /// Accepts `Authorization: Bearer <token>` or `x-admin-token`.
    pub fn check(&self, req: &Request) -> Result<(), ApiError> {
        let token = match presented(req) {
            Presented::GatewayKey(t) | Presented::Other(t) => Some(t),
            Presented::None => header(req, "x-admin-token").map(str::to_string),
        };
        match token {
            Some(t) if keys::hashes_equal(&keys::hash_key(&t), &self.hash) => Ok(()),
            Some(_) => Err(ApiError::unauthorized("Invalid admin token.")),
            None => Err(ApiError::unauthorized(
                "This endpoint needs the admin token: `Authorization: Bearer <admin token>`.",
            )),
        }
    }
}

/// Resolves the admin token's hash: the given token, else the one stored at first run,
/// else a new one (returned so the caller can show it once).
pub fn admin_token(
    db: &Path,
    given: Option<&str>,
) -> Result<(AdminToken, Option<String>), StoreError> {
    if let Some(t) = given.filter(|t| !t.is_empty()) {
        return Ok((AdminToken::from_hash(keys::hash_key(t)), None));
    }
    let conn = crate::store::open(db)?;
    if let Some(h) = keys::get_setting(&conn, "admin_token_hash")? {
        return Ok((AdminToken::from_hash(h), None));
    }
    let token = keys::generate_secret(keys::ADMIN_PREFIX).map_err(|e| StoreError::Io {
        path: db.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    let hash = keys::hash_key(&token);
    keys::set_setting(&conn, "admin_token_hash", &hash)?;
    Ok((AdminToken::from_hash(hash), Some(token)))
}
