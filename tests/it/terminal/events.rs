//! `kt events tail | export | verify` against seeded databases and a running gateway.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kt::store::Event;
use serde_json::{json, Value};

use super::{event, json_ids, seeded, tail, varied, Proc};
use crate::support::*;

#[test]
fn tail_filters_and_prints_one_json_object_per_line() {
    let (_dir, db) = seeded(&varied());
    let all = tail(&db, &["--json"]);
    assert_eq!(json_ids(&all), [1, 2, 3, 4]);
    // Field names are the stored event's, stable for scripts.
    let first: Value = serde_json::from_str(all.stdout.lines().next().unwrap()).unwrap();
    let want = serde_json::to_value(Event::default()).unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&first), keys(&want));
    assert_eq!(json_ids(&tail(&db, &["--json", "--verdict", "block"])), [2]);
    assert_eq!(json_ids(&tail(&db, &["--json", "--since", "15m"])), [3, 4]);
    assert_eq!(
        json_ids(&tail(&db, &["--json", "--policy", "pii-detector"])),
        [3]
    );
    assert_eq!(
        json_ids(&tail(
            &db,
            &["--json", "--model", "claude", "--key", "team-a"]
        )),
        [3]
    );
    assert_eq!(json_ids(&tail(&db, &["--json", "--limit", "2"])), [3, 4]);
    assert_eq!(
        json_ids(&tail(&db, &["--json", "--verdict", "flag"])),
        Vec::<i64>::new()
    );
    let bad = tail(&db, &["--since", "yesterday"]);
    assert!(!bad.status.success());
    assert!(bad.stderr.contains("`yesterday`"), "{}", bad.stderr);
}

#[test]
fn tail_lines_are_aligned_and_plain_when_piped() {
    let (_dir, db) = seeded(&varied());
    let out = tail(&db, &[]);
    assert!(out.status.success(), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    assert!(!out.stdout.contains('\x1b'), "{}", out.stdout);
    // time (19) then the verdict column, then model/provider at a fixed offset.
    for (l, verdict) in lines.iter().zip(["allow", "block", "redact", "allow"]) {
        assert_eq!(&l[20..20 + verdict.len()], verdict, "{l}");
        assert!(
            l[27..].starts_with("gpt-4o/openai") || l[27..].starts_with("claude/openai"),
            "{l}"
        );
    }
    assert!(lines[1].contains("gpt-4o/openai"), "{}", lines[1]);
    assert!(lines[1].contains("team-b"), "{}", lines[1]);
    assert!(
        lines[1].ends_with("12 ms  prompt-injection: instruction override"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].ends_with("pii-detector: pii (email ×2)"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].ends_with("HTTP 502: upstream unreachable"),
        "{}",
        lines[3]
    );
    let detailed = tail(&db, &["--format", "detailed", "--verdict", "block"]);
    assert!(detailed.status.success(), "{}", detailed.stderr);
    assert!(
        detailed.stdout.contains(
            "policies    input  prompt-injection     block  instruction override score 0.97"
        ),
        "{}",
        detailed.stdout
    );
    assert!(
        detailed.stdout.contains("blocked by  prompt-injection"),
        "{}",
        detailed.stdout
    );
}

#[test]
fn tail_without_a_database_says_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = tail(&dir.path().join("missing.db"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("no event database at"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("kt gateway run"), "{}", out.stderr);
    assert!(!dir.path().join("missing.db").exists());
}

#[test]
fn tail_exits_0_on_a_closed_pipe_and_on_ctrl_c() {
    let events: Vec<Event> = (0..3000)
        .map(|i| event(1_700_000_000_000 + i, "allow", "gpt-4o", Some("k")))
        .collect();
    let (dir, db) = seeded(&events);
    // `kt events tail -n 3000 | head -1`: far more than a pipe buffer, reader gone.
    let mut cmd = kt(dir.path());
    cmd.args(["events", "tail", "-n", "3000", "--db"])
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut p = Proc(cmd.spawn().unwrap());
    let mut first = String::new();
    BufReader::new(p.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("allow"), "{first}");
    let status = p.wait(Duration::from_secs(10));
    let mut err = String::new();
    p.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");

    // Ctrl-C while following.
    let mut cmd = kt(dir.path());
    cmd.args(["events", "tail", "-f", "-n", "1", "--db"])
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    let mut p = Proc(cmd.spawn().unwrap());
    let mut line = String::new();
    BufReader::new(p.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    Command::new("kill")
        .args(["-INT", &p.0.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(p.wait(Duration::from_secs(5)).code(), Some(0));
}

/// Lines of a running `kt events tail` with the moment each arrived.
fn tail_lines(cmd: &mut Command) -> (Proc, mpsc::Receiver<(Instant, String)>) {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    let mut p = Proc(cmd.spawn().unwrap());
    let stdout = p.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    (p, rx)
}

/// The first line mentioning `needle`.
fn line_with(rx: &mpsc::Receiver<(Instant, String)>, needle: &str) -> (Instant, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((t, l)) if l.contains(needle) => return (t, l),
            Ok(_) => {}
            Err(_) => panic!("no line with `{needle}` within 10 s"),
        }
    }
}

fn ask(gw: &Gateway, text: &str) -> Value {
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]});
    let (status, _, v) = post_json(&format!("{}/chat/completions", gw.base_url()), &body, &[]);
    assert_eq!(status, 200, "{v}");
    v
}

#[test]
fn tail_follow_shows_each_gateway_event_within_250ms() {
    let gw = Gateway::start(None);
    let mut cmd = kt(gw.dir.path());
    cmd.args(["events", "tail", "--follow", "--json", "--db"])
        .arg(&gw.db);
    let (_p, rx) = tail_lines(&mut cmd);
    // The first event proves the follower is reading (from its first page or by polling).
    ask(&gw, "echo: warm-up");
    line_with(&rx, "warm-up");
    for i in 0..5 {
        let marker = format!("marker-{i}");
        let answer = ask(&gw, &format!("echo: {marker}"));
        let answered = Instant::now();
        assert_eq!(answer["choices"][0]["message"]["content"], marker);
        let (seen, line) = line_with(&rx, &marker);
        let lag = seen.saturating_duration_since(answered);
        assert!(
            lag <= Duration::from_millis(250),
            "event {i} took {lag:?}: {line}"
        );
        let e: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(e["verdict"], "allow");
        assert_eq!(e["model_requested"], "gpt-4o");
    }
}

#[test]
fn tail_follow_applies_filters_to_new_events() {
    let gw = Gateway::start(None);
    let mut cmd = kt(gw.dir.path());
    cmd.args(["events", "tail", "-f", "--model", "gpt-4o-mini", "--db"])
        .arg(&gw.db);
    let (_p, rx) = tail_lines(&mut cmd);
    for model in ["gpt-4o", "gpt-4o-mini", "gpt-4o"] {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "echo: x"}]});
        post_json(&format!("{}/chat/completions", gw.base_url()), &body, &[]);
    }
    let (_, line) = line_with(&rx, "gpt-4o-mini/mock");
    assert!(line.contains("allow"), "{line}");
    assert_eq!(gw.events(3).len(), 3);
    // The other two do not match: nothing else arrives (the first line was the match).
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "an unfiltered event was shown"
    );
}

fn audited_config() -> &'static str {
    "pack: {name: audited}
providers:
  targets:
    - {id: m, provider: mock, model: kt-sandbox}
models:
  aliases: {gpt-4o: kt-sandbox}
policies:
  chain: [audit-logger]
policy:
  audit-logger:
    immutable: true
"
}

/// A copy of `db` with `sql` applied.
fn tampered(db: &Path, sql: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("kt.db");
    std::fs::copy(db, &copy).unwrap();
    let conn = rusqlite::Connection::open(&copy).unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    (dir, copy)
}

fn verify(db: &Path, json: bool) -> Output {
    let mut cmd = kt(db.parent().unwrap());
    cmd.args(["events", "verify", "--db"]).arg(db);
    if json {
        cmd.arg("--json");
    }
    run(cmd, None, Duration::from_secs(20))
}

#[test]
fn verify_passes_an_intact_log_and_names_the_first_broken_link() {
    let mut gw = Gateway::start(Some(audited_config()));
    for i in 0..5 {
        ask(&gw, &format!("echo: audited {i}"));
    }
    assert_eq!(gw.events(5).len(), 5);
    assert!(gw.terminate(Duration::from_secs(10)).success());

    let ok = verify(&gw.db, false);
    assert_eq!(ok.status.code(), Some(0), "{}", ok.stderr);
    assert!(
        ok.stdout.contains("ok: 5 chained events (#1..#5) verified"),
        "{}",
        ok.stdout
    );
    let v: Value = serde_json::from_str(&verify(&gw.db, true).stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["checked"], 5);

    let (_d, edited) = tampered(&gw.db, "UPDATE events SET verdict = 'block' WHERE id = 3");
    let out = verify(&edited, false);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("broken at event #3"), "{}", out.stderr);
    assert!(out.stderr.contains("was modified"), "{}", out.stderr);
    let v: Value = serde_json::from_str(&verify(&edited, true).stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["broken"]["id"], 3);
    assert_eq!(v["broken"]["kind"], "modified");

    let (_d, deleted) = tampered(&gw.db, "DELETE FROM events WHERE id = 3");
    let out = verify(&deleted, false);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("broken at event #4"), "{}", out.stderr);
    assert!(
        out.stderr.contains("(#3..#3) were deleted"),
        "{}",
        out.stderr
    );

    let (_d, cut) = tampered(&gw.db, "DELETE FROM events WHERE id = 5");
    let out = verify(&cut, false);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("the newest event #5 was deleted"),
        "{}",
        out.stderr
    );
}

#[test]
fn export_writes_a_time_range_as_json_or_csv() {
    let base = 1_793_491_200_000; // 2026-11-01T00:00:00Z
    let events: Vec<Event> = (0..10)
        .map(|i| event(base + i * 60_000, "allow", "gpt-4o", None))
        .collect();
    let (dir, db) = seeded(&events);
    let range = [
        "--since",
        "2026-11-01T00:03:00Z",
        "--until",
        "2026-11-01T00:07:00Z",
    ];
    let out_file = dir.path().join("range.json");
    let mut cmd = kt(dir.path());
    cmd.args(["events", "export", "--db"])
        .arg(&db)
        .args(range)
        .arg("--output")
        .arg(&out_file);
    let out = run(cmd, None, Duration::from_secs(20));
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("exported 4 events to"),
        "{}",
        out.stderr
    );
    let back: Vec<Event> = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(back.iter().map(|e| e.id).collect::<Vec<_>>(), [4, 5, 6, 7]);
    assert!(!dir.path().join("range.json.partial").exists());

    let mut cmd = kt(dir.path());
    cmd.args(["events", "export", "--format", "csv", "--db"])
        .arg(&db)
        .args(range);
    let out = run(cmd, None, Duration::from_secs(20));
    assert!(out.status.success(), "{}", out.stderr);
    let mut r = csv::Reader::from_reader(out.stdout.as_bytes());
    assert_eq!(r.headers().unwrap().get(0), Some("id"));
    let ids: Vec<String> = r.records().map(|rec| rec.unwrap()[0].to_string()).collect();
    assert_eq!(ids, ["4", "5", "6", "7"]);

    let mut cmd = kt(dir.path());
    cmd.args(["events", "export", "--db"]).arg(&db);
    let all: Vec<Value> =
        serde_json::from_str(&run(cmd, None, Duration::from_secs(20)).stdout).unwrap();
    assert_eq!(all.len(), 10);
}

/// The client side of `tail --url` against a stand-in for `GET /v1/events` with the
/// agreed shape (the gateway's own endpoint is built separately).
#[test]
fn tail_url_reads_a_remote_events_endpoint() {
    let up = MockUpstream::start(|req| {
        if req.header("authorization") != Some("Bearer admin-secret") {
            return MockReply::json(
                401,
                json!({"error": {"message": "admin token required", "type": "invalid_request_error"}}),
            );
        }
        let after: i64 = req
            .path
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("after="))
            .map_or(0, |v| v.parse().unwrap());
        let data: Vec<Value> = (1..=3)
            .filter(|id| *id > after)
            .map(|id| {
                let mut e = event(1_796_000_000_000 + id, "allow", "gpt-4o", Some("k"));
                e.id = id;
                if id == 2 {
                    e.verdict = "block".into();
                }
                serde_json::to_value(e).unwrap()
            })
            .collect();
        MockReply::json(200, json!({"object": "list", "data": data}))
    });
    let dir = tempfile::tempdir().unwrap();
    let tail_url = |args: &[&str]| {
        let mut cmd = kt(dir.path());
        cmd.args(["events", "tail", "--url", &up.url]).args(args);
        run(cmd, None, Duration::from_secs(20))
    };
    let out = tail_url(&["--json", "--admin-token", "admin-secret"]);
    assert_eq!(json_ids(&out), [1, 2, 3]);
    let out = tail_url(&["--json", "--verdict", "block"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("HTTP 401: admin token required"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("--admin-token or KT_ADMIN_TOKEN"),
        "{}",
        out.stderr
    );
    let mut cmd = kt(dir.path());
    cmd.args([
        "events",
        "tail",
        "--url",
        &format!("{}/v1", up.url),
        "--json",
        "--verdict",
        "block",
    ])
    .env("KT_ADMIN_TOKEN", "admin-secret");
    assert_eq!(json_ids(&run(cmd, None, Duration::from_secs(20))), [2]);
    let first = up.requests()[0].clone();
    assert!(
        first.path.starts_with("/v1/events?limit=50"),
        "{}",
        first.path
    );
}
