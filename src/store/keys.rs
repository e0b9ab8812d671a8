//! Gateway keys: `kt_gk_…` keys are shown once at creation; only a SHA-256 hash and a short
//! display prefix are stored. Also the admin token's hash (`settings`).

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub const KEY_PREFIX: &str = "kt_gk_";
pub const ADMIN_PREFIX: &str = "kt_admin_";
/// Characters of the random part kept for display (`kt_gk_AbCdEfGh…`).
const DISPLAY_CHARS: usize = 8;

/// A stored key (never the key itself).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRecord {
    pub name: String,
    /// `kt_gk_` plus the first characters of the key: enough to recognise it.
    pub prefix: String,
    #[serde(skip)]
    pub hash: String,
    pub configuration_id: String,
    pub team: Option<String>,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub budget_usd: Option<f64>,
}

impl KeyRecord {
    pub fn state(&self, now_ms: i64) -> KeyState {
        if self.revoked_ms.is_some() {
            KeyState::Revoked
        } else if self.expires_ms.is_some_and(|e| e <= now_ms) {
            KeyState::Expired
        } else {
            KeyState::Active
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Active,
    Expired,
    Revoked,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Expired => "expired",
            KeyState::Revoked => "revoked",
        }
    }
}

/// What `create` needs besides the key.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub name: String,
    pub configuration_id: String,
    pub team: Option<String>,
    pub expires_ms: Option<i64>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub budget_usd: Option<f64>,
}

/// SHA-256 of a key, hex. Keys carry 256 random bits, so a fast hash is the right tool
/// (a password KDF protects low-entropy secrets; these are not).
pub fn hash_key(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Compares two hashes in constant time.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh secret: `prefix` + 32 random bytes, base64url without padding.
pub fn generate_secret(prefix: &str) -> Result<String, getrandom::Error> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The display prefix of a key.
pub fn display_prefix(key: &str) -> String {
    let rest = key.strip_prefix(KEY_PREFIX).unwrap_or(key);
    format!(
        "{KEY_PREFIX}{}",
        rest.chars().take(DISPLAY_CHARS).collect::<String>()
    )
}

const COLUMNS: &str = "name, prefix, hash, configuration_id, team, created_ms, expires_ms, \
    revoked_ms, last_used_ms, rpm, tpm, budget_usd";

fn from_row(r: &Row<'_>) -> rusqlite::Result<KeyRecord> {
    Ok(KeyRecord {
        name: r.get(0)?,
        prefix: r.get(1)?,
        hash: r.get(2)?,
        configuration_id: r.get(3)?,
        team: r.get(4)?,
        created_ms: r.get(5)?,
        expires_ms: r.get(6)?,
        revoked_ms: r.get(7)?,
        last_used_ms: r.get(8)?,
        rpm: r
            .get::<_, Option<i64>>(9)?
            .and_then(|v| u64::try_from(v).ok()),
        tpm: r
            .get::<_, Option<i64>>(10)?
            .and_then(|v| u64::try_from(v).ok()),
        budget_usd: r.get(11)?,
    })
}

/// Stores a new key; returns the secret (shown once) and the record.
pub fn create(
    conn: &Connection,
    new: &NewKey,
    now_ms: i64,
) -> Result<(String, KeyRecord), CreateError> {
    if find_by_name(conn, &new.name)?.is_some() {
        return Err(CreateError::NameTaken(new.name.clone()));
    }
    let key = generate_secret(KEY_PREFIX).map_err(CreateError::Random)?;
    let record = KeyRecord {
        name: new.name.clone(),
        prefix: display_prefix(&key),
        hash: hash_key(&key),
        configuration_id: new.configuration_id.clone(),
        team: new.team.clone(),
        created_ms: now_ms,
        expires_ms: new.expires_ms,
        revoked_ms: None,
        last_used_ms: None,
        rpm: new.rpm,
        tpm: new.tpm,
        budget_usd: new.budget_usd,
    };
    conn.execute(
        &format!("INSERT INTO gateway_keys ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
        params![
            record.name,
            record.prefix,
            record.hash,
            record.configuration_id,
            record.team,
            record.created_ms,
            record.expires_ms,
            record.revoked_ms,
            record.last_used_ms,
            record.rpm.and_then(|v| i64::try_from(v).ok()),
            record.tpm.and_then(|v| i64::try_from(v).ok()),
            record.budget_usd,
        ],
    )?;
    Ok((key, record))
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("a gateway key named `{0}` already exists")]
    NameTaken(String),
    #[error("the operating system gave no randomness")]
    Random(#[source] getrandom::Error),
    #[error("database query failed")]
    Sql(#[from] rusqlite::Error),
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<KeyRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM gateway_keys ORDER BY created_ms, name"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    rows.collect()
}

pub fn find_by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<KeyRecord>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM gateway_keys WHERE name = ?1"),
        params![name],
        from_row,
    )
    .optional()
}

/// Looks a presented key up: candidates by display prefix, then a constant-time compare of
/// the hashes.
pub fn find_by_key(conn: &Connection, key: &str) -> rusqlite::Result<Option<KeyRecord>> {
    let want = hash_key(key);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM gateway_keys WHERE prefix = ?1"
    ))?;
    let rows = stmt.query_map(params![display_prefix(key)], from_row)?;
    for r in rows {
        let r = r?;
        if hashes_equal(&r.hash, &want) {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

/// Revokes by name or display prefix; returns the revoked records (none: nothing matched;
/// several: the prefix was ambiguous and nothing was revoked).
pub fn revoke(
    conn: &Connection,
    name_or_prefix: &str,
    now_ms: i64,
) -> rusqlite::Result<Vec<KeyRecord>> {
    let mut matches = match find_by_name(conn, name_or_prefix)? {
        Some(r) => vec![r],
        None => {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM gateway_keys WHERE prefix = ?1 OR prefix LIKE ?2 ESCAPE '\\'"
            ))?;
            let like = format!(
                "{}%",
                name_or_prefix
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            let rows = stmt.query_map(params![name_or_prefix, like], from_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        }
    };
    if matches.len() == 1 {
        conn.execute(
            "UPDATE gateway_keys SET revoked_ms = COALESCE(revoked_ms, ?1) WHERE name = ?2",
            params![now_ms, matches[0].name],
        )?;
        matches[0].revoked_ms.get_or_insert(now_ms);
    }
    Ok(matches)
}

pub fn touch(conn: &Connection, name: &str, now_ms: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE gateway_keys SET last_used_ms = ?1 WHERE name = ?2",
        params![now_ms, name],
    )?;
    Ok(())
}

/// USD spent by a key (over all its events).
pub fn spent_by_key(conn: &Connection, name: &str) -> rusqlite::Result<f64> {
    conn.query_row(
        "SELECT COALESCE(SUM(cost_usd), 0) FROM events WHERE key_name = ?1",
        params![name],
        |r| r.get(0),
    )
}

/// USD spent by every request since `since_ms`.
pub fn spent_since(conn: &Connection, since_ms: i64) -> rusqlite::Result<f64> {
    conn.query_row(
        "SELECT COALESCE(SUM(cost_usd), 0) FROM events WHERE ts_ms >= ?1",
        params![since_ms],
        |r| r.get(0),
    )
}

pub fn get_setting(conn: &Connection, name: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT value FROM settings WHERE name = ?1",
        params![name],
        |r| r.get(0),
    )
    .optional()
}

pub fn set_setting(conn: &Connection, name: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        params![name, value],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &str) -> NewKey {
        NewKey {
            name: name.into(),
            configuration_id: "sandbox".into(),
            ..NewKey::default()
        }
    }

    #[test]
    fn keys_are_stored_hashed_and_found_by_value() {
        let conn = crate::store::open_in_memory().unwrap();
        let (key, rec) = create(&conn, &new("dev"), 1).unwrap();
        assert!(key.starts_with("kt_gk_") && key.len() > 40, "{key}");
        assert_ne!(rec.hash, key);
        assert!(key.starts_with(&rec.prefix));
        let found = find_by_key(&conn, &key).unwrap().unwrap();
        assert_eq!(found.name, "dev");
        assert!(find_by_key(&conn, &format!("{key}x")).unwrap().is_none());
        assert!(matches!(
            create(&conn, &new("dev"), 2),
            Err(CreateError::NameTaken(_))
        ));
        let dump: Vec<String> = conn
            .prepare("SELECT hash || prefix || name FROM gateway_keys")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            !dump.iter().any(|d| d.contains(&key)),
            "the key itself is never stored"
        );
    }

    #[test]
    fn revoke_by_name_or_prefix_and_states() {
        let conn = crate::store::open_in_memory().unwrap();
        let (_, a) = create(&conn, &new("a"), 1).unwrap();
        let (_, _) = create(
            &conn,
            &NewKey {
                expires_ms: Some(5),
                ..new("b")
            },
            1,
        )
        .unwrap();
        assert_eq!(revoke(&conn, &a.prefix, 10).unwrap().len(), 1);
        let keys = list(&conn).unwrap();
        assert_eq!(keys[0].state(10), KeyState::Revoked);
        assert_eq!(keys[1].state(10), KeyState::Expired);
        assert_eq!(keys[1].state(4), KeyState::Active);
        assert!(revoke(&conn, "nobody", 10).unwrap().is_empty());
        assert!(
            hashes_equal("abc", "abc") && !hashes_equal("abc", "abd") && !hashes_equal("a", "ab")
        );
    }
}
