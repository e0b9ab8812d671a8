//! SQLite storage for gateway keys and events. All SQL lives in this module.
//! One writer thread owns the write connection for events (`writer`); readers open their
//! own connections (`events tail`, `/v1/events`).

pub mod events;
pub mod json_text;
pub mod keys;
pub mod migrations;
pub mod packed;
pub mod query;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

pub use events::{Event, EventKind};
pub use writer::{EventSink, EventWriter};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to open database `{}`", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("failed to prepare database directory `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database query failed")]
    Sql(#[from] rusqlite::Error),
    #[error("database `{}` was written by a newer kt (schema {found}, this kt knows {known})", path.display())]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
}

/// Opens (creating if needed) the database at `path`: file mode 0600, WAL, migrated.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            create_private_dir(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
    }
    create_private_file(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    configure(&conn).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    migrations::run(&conn, path)?;
    Ok(conn)
}

/// An in-memory database with the schema (tests).
pub fn open_in_memory() -> Result<Connection, StoreError> {
    let conn = Connection::open_in_memory()?;
    migrations::run(&conn, Path::new(":memory:"))?;
    Ok(conn)
}

/// The page size of a new database. An event is ~1.5 KB (the audited bodies are most of
/// it) and the writer appends hundreds per transaction, each page written twice (to the
/// WAL, then by the checkpoint) with one system call per page and one per WAL frame
/// header: 16 KiB pages cut the writer's `pwrite`/`pread` calls 4.5-fold and its CPU per
/// event by about a third against SQLite's 4 KiB (bench/RESULTS.md, eleventh session).
/// SQLite ignores it for a database that already has tables: those keep their size.
const PAGE_SIZE: i64 = 16 * 1024;

fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(Duration::from_secs(5))?;
    // Before the switch to WAL: a WAL database cannot change its page size.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(drop)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn database_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("kt.db");
        super::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    fn page_size(path: &std::path::Path) -> i64 {
        let conn = super::open(path).unwrap();
        conn.pragma_query_value(None, "page_size", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_new_database_has_large_pages_and_an_old_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.db");
        assert_eq!(page_size(&new), super::PAGE_SIZE);
        // A database an earlier kt created with SQLite's default pages.
        let old = dir.path().join("old.db");
        {
            let conn = rusqlite::Connection::open(&old).unwrap();
            conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x);")
                .unwrap();
        }
        assert_eq!(page_size(&old), 4096);
        let conn = super::open(&old).unwrap();
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        assert_eq!(page_size(&old), 4096);
    }
}
