//! The terminal experience through the real binary: `kt events tail | export | verify`,
//! `kt chat`, `kt init`, install.sh, and their interactive paths in a pseudo-terminal
//! (`script`). Shared helpers live here; the tests are split by command.

mod chat;
mod events;
mod install;
mod pty;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use kt::store::Event;
use serde_json::{json, Value};

use crate::support::*;

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

impl Proc {
    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "process did not exit in {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn event(ts_ms: i64, verdict: &str, model: &str, key: Option<&str>) -> Event {
    Event {
        request_id: format!("req_{ts_ms}"),
        ts_ms,
        endpoint: "/v1/chat/completions".into(),
        status: 200,
        verdict: verdict.into(),
        model_requested: Some(model.into()),
        model_used: Some(model.into()),
        provider: Some("openai".into()),
        key_name: key.map(str::to_string),
        latency_ms: 12.5,
        ..Event::default()
    }
}

/// A database holding `events` (ids 1..), in a fresh directory.
pub fn seeded(events: &[Event]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kt.db");
    let mut conn = kt::store::open(&db).unwrap();
    let tx = conn.transaction().unwrap();
    for e in events {
        kt::store::events::insert(&tx, e).unwrap();
    }
    tx.commit().unwrap();
    (dir, db)
}

/// Four events that differ in every filterable way.
pub fn varied() -> Vec<Event> {
    let now = now_ms();
    let mut block = event(now - 30 * 60_000, "block", "gpt-4o", Some("team-b"));
    block.status = 409;
    block.blocked_by = Some("prompt-injection".into());
    block.policies = Some(json!([
        {"policy": "prompt-injection", "phase": "input", "verdict": "block", "reason": "instruction override", "score": 0.97}
    ]).into());
    let mut redact = event(now - 10 * 60_000, "redact", "claude", Some("team-a"));
    redact.policies = Some(json!([
        {"policy": "pii-detector", "phase": "input", "verdict": "redact", "reason": "pii", "findings": [{"kind": "email", "count": 2}]}
    ]).into());
    let mut failed = event(now - 60_000, "allow", "claude", None);
    failed.status = 502;
    failed.error = Some("upstream unreachable".into());
    vec![
        event(now - 2 * 3_600_000, "allow", "gpt-4o", Some("team-a")),
        block,
        redact,
        failed,
    ]
}

pub fn tail(db: &Path, args: &[&str]) -> Output {
    let mut cmd = kt(db.parent().unwrap());
    cmd.args(["events", "tail", "--db"]).arg(db).args(args);
    run(cmd, None, Duration::from_secs(20))
}

pub fn json_ids(out: &Output) -> Vec<i64> {
    assert!(out.status.success(), "{}", out.stderr);
    out.stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

/// A gateway whose one target is `upstream` (an OpenAI-format mock).
pub fn gateway_to(upstream: &MockUpstream) -> Gateway {
    Gateway::start(Some(&format!(
        "pack: {{name: chat}}
providers:
  targets:
    - {{id: up, provider: openai, model: gpt-4o, base_url: '{}'}}
policies:
  chain: [audit-logger]
",
        upstream.v1()
    )))
}

pub fn chat(gw_url: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = kt(dir.path());
    cmd.args(["chat", "--url", gw_url]).args(args);
    run(cmd, stdin, Duration::from_secs(30))
}

pub fn chunk(text: &str) -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
           "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
}
