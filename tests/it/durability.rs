//! audit-logger `durability` against the real `kt` under load: SIGTERM loses no event in
//! either mode, SIGKILL of the serving process loses no event of an answered request in
//! `strict` mode and at most about a batch in `batched` mode, and a locked database
//! delays events without losing them (batched) or withholds answers (strict).

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::{self, get_json, kt, read_events, run, Gateway};

/// Concurrent clients of the load tests.
const CLIENTS: usize = 32;

fn config(durability: &str) -> String {
    format!(
        "pack: {{name: durable}}\nproviders:\n  targets:\n    - {{id: local, provider: mock, model: kt-sandbox}}\npolicies:\n  chain: [audit-logger]\npolicy:\n  audit-logger:\n    immutable: true\n    durability: {durability}\n"
    )
}

/// Polls `check` until it holds; panics with `what` after `within`.
fn wait_for(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Clients sending chat completions (every fourth one streamed) in a loop until stopped.
/// A request counts as answered when its whole answer arrived: a complete JSON body, or a
/// stream through `data: [DONE]`. A failed request (the server is gone or restarting) is
/// not counted, and the client tries again a moment later.
struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<Mutex<Vec<(String, u16)>>>,
    clients: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(url: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(Mutex::new(Vec::new()));
        let clients = (0..CLIENTS)
            .map(|c| {
                let (stop, answered) = (stop.clone(), answered.clone());
                let url = format!("{url}/v1/chat/completions");
                std::thread::spawn(move || {
                    let agent = support::http();
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        match request(&agent, &url, c, n) {
                            Some(done) => answered.lock().unwrap().push(done),
                            None => std::thread::sleep(Duration::from_millis(10)),
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            answered,
            clients,
        }
    }

    fn count(&self) -> usize {
        self.answered.lock().unwrap().len()
    }

    fn wait_answered(&self, n: usize) {
        wait_for(Duration::from_secs(60), &format!("{n} answers"), || {
            self.count() >= n
        });
    }

    /// Stops the clients and returns every answered request: (request id, status).
    fn finish(self) -> Vec<(String, u16)> {
        self.stop.store(true, Ordering::Relaxed);
        for c in self.clients {
            c.join().unwrap();
        }
        Arc::try_unwrap(self.answered)
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

/// One request; `None` unless the whole answer arrived.
fn request(agent: &ureq::Agent, url: &str, client: usize, n: usize) -> Option<(String, u16)> {
    let stream = n % 4 == 0;
    let body = serde_json::json!({
        "model": "kt-sandbox",
        "messages": [{"role": "user", "content": format!("echo: client {client} request {n}")}],
        "stream": stream,
    });
    let resp = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.to_string().as_bytes())
        .ok()?;
    let status = resp.status().as_u16();
    let id = resp
        .headers()
        .get("x-request-id")?
        .to_str()
        .ok()?
        .to_string();
    let mut text = String::new();
    resp.into_body()
        .into_reader()
        .read_to_string(&mut text)
        .ok()?;
    let complete = if stream && status == 200 {
        text.contains("data: [DONE]")
    } else {
        serde_json::from_str::<serde_json::Value>(&text).is_ok()
    };
    complete.then_some((id, status))
}

/// Events per request id in the gateway's database.
fn events_by_request(gw: &Gateway) -> HashMap<String, usize> {
    let mut by_id = HashMap::new();
    for e in read_events(&gw.db) {
        *by_id
            .entry(e["request_id"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    by_id
}

/// Answered requests without exactly one event.
fn missing(answered: &[(String, u16)], by_id: &HashMap<String, usize>) -> Vec<String> {
    answered
        .iter()
        .filter(|(id, _)| by_id.get(id) != Some(&1))
        .map(|(id, _)| format!("{id}: {:?} event(s)", by_id.get(id)))
        .collect()
}

fn assert_chain_verifies(gw: &Gateway) {
    let mut cmd = kt(gw.dir.path());
    cmd.args(["events", "verify", "--db"]).arg(&gw.db);
    let out = run(cmd, None, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "kt events verify:\n{}\n{}",
        out.stdout,
        out.stderr
    );
}

/// The serving process: the supervisor's only child.
fn server_pid(gw: &Gateway) -> u32 {
    let pid = gw.child.as_ref().unwrap().id();
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    children.split_whitespace().next().unwrap().parse().unwrap()
}

fn kill(sig: &str, pid: u32) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn sigterm_under_load(durability: &str) {
    let mut gw = Gateway::start(Some(&config(durability)));
    let load = Load::start(&gw.url());
    load.wait_answered(300);
    // The clients keep sending while the gateway drains and stops.
    assert!(gw.terminate(Duration::from_secs(40)).success());
    let answered = load.finish();
    assert!(answered.len() >= 300);
    assert!(answered.iter().all(|(_, s)| *s == 200), "{answered:?}");
    let lost = missing(&answered, &events_by_request(&gw));
    assert!(
        lost.is_empty(),
        "{durability}: {} of {} answered requests lost their event: {:?}",
        lost.len(),
        answered.len(),
        &lost[..lost.len().min(10)]
    );
    assert_chain_verifies(&gw);
}

#[test]
fn sigterm_under_load_loses_no_event_batched() {
    sigterm_under_load("batched");
}

#[test]
fn sigterm_under_load_loses_no_event_strict() {
    sigterm_under_load("strict");
}

/// Kills the serving process with SIGKILL mid-load, three times (the supervisor starts a
/// new one each time), then stops the gateway. Returns the answered requests and the
/// events after it all.
/// After three SIGKILLs of the server under load.
struct Killed {
    gw: Gateway,
    /// Request ids and statuses of the answered requests.
    answered: Vec<(String, u16)>,
    /// Events per request id.
    by_id: HashMap<String, usize>,
    /// Answers per second over the run.
    rate: f64,
}

fn sigkill_under_load(durability: &str) -> Killed {
    let mut gw = Gateway::start(Some(&config(durability)));
    let started = Instant::now();
    let load = Load::start(&gw.url());
    // Rounds long enough that one batch window (100 ms) is a small part of each.
    for round in 1..=3 {
        load.wait_answered(1000 * round);
        let server = server_pid(&gw);
        kill("-KILL", server);
        wait_for(Duration::from_secs(10), "the restarted server", || {
            std::fs::read_to_string(format!(
                "/proc/{0}/task/{0}/children",
                gw.child.as_ref().unwrap().id()
            ))
            .is_ok_and(|c| c.split_whitespace().any(|p| p != server.to_string()))
        });
    }
    load.wait_answered(3300);
    let answered = load.finish();
    let rate = answered.len() as f64 / started.elapsed().as_secs_f64();
    assert!(gw.terminate(Duration::from_secs(40)).success());
    let by_id = events_by_request(&gw);
    Killed {
        gw,
        answered,
        by_id,
        rate,
    }
}

#[test]
fn sigkill_in_strict_mode_loses_no_event_of_an_answered_request() {
    let Killed {
        gw,
        answered,
        by_id,
        ..
    } = sigkill_under_load("strict");
    assert!(answered.len() >= 700);
    let lost = missing(&answered, &by_id);
    assert!(
        lost.is_empty(),
        "{} of {} answered requests lost their event: {:?}",
        lost.len(),
        answered.len(),
        &lost[..lost.len().min(10)]
    );
    assert_chain_verifies(&gw);
}

#[test]
fn sigkill_in_batched_mode_loses_at_most_about_a_batch() {
    let Killed {
        gw,
        answered,
        by_id,
        rate,
    } = sigkill_under_load("batched");
    let lost = missing(&answered, &by_id);
    eprintln!(
        "batched SIGKILL: {} of {} answered requests lost their event ({rate:.0} answers/s)",
        lost.len(),
        answered.len()
    );
    // What was queued at each of the 3 kills: at most the batch window's answers (100 ms;
    // twice that for slack on a loaded machine) and what the 32 clients had in flight.
    let bound = 3.0 * (rate * 0.3 + 32.0);
    assert!(
        (lost.len() as f64) <= bound,
        "{} lost, more than {bound:.0}: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(
        lost.len() < answered.len() / 3,
        "{} of {} events lost",
        lost.len(),
        answered.len()
    );
    // The database survived the kill and the chain has no hole: lost events were never
    // committed, and the restarted writer chained on from the last committed row.
    assert_chain_verifies(&gw);
}

/// Holds the database's write lock from another connection, as a second process would.
fn lock_db(gw: &Gateway) -> rusqlite::Connection {
    let conn = kt::store::open(&gw.db).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    conn
}

fn chat(gw: &Gateway, content: &str) -> (u16, Vec<(String, String)>, serde_json::Value) {
    support::post_json(
        &format!("{}/v1/chat/completions", gw.url()),
        &serde_json::json!({"model": "kt-sandbox", "messages": [{"role": "user", "content": content}]}),
        &[],
    )
}

#[test]
fn a_locked_database_delays_events_without_holding_requests() {
    let gw = Gateway::start(Some(&config("batched")));
    let health = || get_json(&format!("{}/health", gw.url())).1;
    assert_eq!(health()["events"]["pending"], 0);
    let holder = lock_db(&gw);
    let started = Instant::now();
    for i in 0..20 {
        assert_eq!(chat(&gw, &format!("echo: {i}")).0, 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "batched requests waited on the locked database: {:?}",
        started.elapsed()
    );
    wait_for(Duration::from_secs(10), "health to report the lock", || {
        health()["status"] == "degraded"
    });
    let h = health();
    assert_eq!(h["events"]["pending"], 20, "{h}");
    // Their size in the queue: at least the audited bodies of the 20 requests.
    assert!(
        h["events"]["pending_bytes"].as_u64().unwrap() > 20 * 60,
        "{h}"
    );
    assert!(
        h["events"]["error"].as_str().unwrap().contains("locked"),
        "{h}"
    );
    holder.execute_batch("COMMIT").unwrap();
    wait_for(Duration::from_secs(10), "the writer to recover", || {
        let h = health();
        h["status"] == "ok" && h["events"]["pending"] == 0
    });
    assert_eq!(health()["events"]["pending_bytes"], 0);
    assert_eq!(health()["events"]["dropped"], 0);
    assert_eq!(read_events(&gw.db).len(), 20);
    // One line when the failure streak starts and one when it ends, not one per retry.
    let stderr = gw.stderr();
    assert_eq!(stderr.matches("failed to commit").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("recovered after").count(), 1, "{stderr}");
}

#[test]
fn strict_mode_withholds_the_answer_when_its_event_cannot_be_committed() {
    let gw = Gateway::start(Some(&config("strict")));
    let (status, headers, _) = chat(&gw, "echo: committed");
    assert_eq!(status, 200);
    let committed = support::find_header(&headers, "x-request-id")
        .unwrap()
        .to_string();
    // A strict answer is sent only once its event is readable by anyone.
    assert!(read_events(&gw.db)
        .iter()
        .any(|e| e["request_id"] == committed.as_str()));
    let holder = lock_db(&gw);
    let started = Instant::now();
    let (status, headers, body) = chat(&gw, "echo: withheld");
    let waited = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "audit_unavailable", "{body}");
    assert_eq!(support::find_header(&headers, "retry-after"), Some("1"));
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    let h = get_json(&format!("{}/health", gw.url())).1;
    assert_eq!(h["events"]["unavailable"], 1, "{h}");
    holder.execute_batch("COMMIT").unwrap();
    // The withheld request is still on record: its prompt did reach the model.
    let withheld = support::find_header(&headers, "x-request-id")
        .unwrap()
        .to_string();
    wait_for(Duration::from_secs(10), "the withheld event", || {
        read_events(&gw.db)
            .iter()
            .any(|e| e["request_id"] == withheld.as_str())
    });
    assert!(gw.stderr().contains("answering 503 audit_unavailable"));
}
