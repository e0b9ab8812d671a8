//! A small stderr logger: `info` lines unless `KT_LOG=error|warn|info|debug` says
//! otherwise, and `KT_LOG_FORMAT=json` for one JSON object per line.
//! Never pass secrets, keys or prompts to it.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// Process-wide: the highest level printed (documented global, set once at start).
static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static JSON: AtomicU8 = AtomicU8::new(0);

/// Reads `KT_LOG` and `KT_LOG_FORMAT`.
pub fn init_from_env() {
    let level = match std::env::var(crate::env::KT_LOG).ok().as_deref() {
        Some("error") => Level::Error,
        Some("warn") => Level::Warn,
        Some("debug") | Some("trace") => Level::Debug,
        _ => Level::Info,
    };
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
    let json = std::env::var(crate::env::KT_LOG_FORMAT).is_ok_and(|v| v == "json");
    JSON.store(u8::from(json), Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

pub fn log(level: Level, msg: &str) {
    if !enabled(level) {
        return;
    }
    let line = if JSON.load(Ordering::Relaxed) == 1 {
        serde_json::json!({
            "ts": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            "level": level.as_str(),
            "msg": msg,
        })
        .to_string()
    } else {
        format!("kt: {}: {msg}", level.as_str())
    };
    let mut err = std::io::stderr().lock();
    // Logging must never take the process down: a closed stderr is ignored.
    let _ = writeln!(err, "{line}");
}

pub fn error(msg: &str) {
    log(Level::Error, msg);
}

pub fn warn(msg: &str) {
    log(Level::Warn, msg);
}

pub fn info(msg: &str) {
    log(Level::Info, msg);
}

pub fn debug(msg: &str) {
    log(Level::Debug, msg);
}
