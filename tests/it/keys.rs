//! Gateway keys, per-key configurations, rate limits, budgets, costs and the admin token.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

fn upstream() -> MockUpstream {
    MockUpstream::start(|r| {
        let n = r.json()["max_tokens"].as_u64().unwrap_or(3);
        MockReply::json(
            200,
            json!({"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 10, "completion_tokens": n, "total_tokens": 10 + n}}),
        )
    })
}

fn key_cmd(home: &Path, db: &Path, args: &[&str]) -> Output {
    let mut cmd = kt(home);
    cmd.arg("gateway-key").args(args).arg("--db").arg(db);
    run(cmd, None, Duration::from_secs(20))
}

fn create_key(gw: &Gateway, name: &str, config: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "create",
        "--name",
        name,
        "--configuration-id",
        config,
        "--json",
    ];
    args.extend_from_slice(extra);
    if !extra.contains(&"--expires-in") {
        args.extend_from_slice(&["--expires-in", "90d"]);
    }
    let out = key_cmd(gw.dir.path(), &gw.db, &args);
    assert!(out.status.success(), "{}", out.stderr);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    v["key"].as_str().unwrap().to_string()
}

fn chat(gw: &Gateway, key: Option<&str>, body: &Value) -> (u16, Vec<(String, String)>, Value) {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    post_json(
        &format!("{}/chat/completions", gw.base_url()),
        body,
        &headers,
    )
}

fn hello() -> Value {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]})
}

fn cfg(name: &str, upstream: &str, chain: &str, extra: &str) -> String {
    format!(
        "pack: {{name: {name}}}\nproviders:\n  targets:\n    - {{id: t-{name}, provider: openai, model: gpt-4o, base_url: '{upstream}', pricing: {{prompt: 0, completion: 100000}}}}\npolicies:\n  chain: [{chain}]\n{extra}"
    )
}

#[test]
fn cli_key_works_with_the_sdk_and_bad_keys_get_401() {
    let up = upstream();
    let gw = Gateway::start(Some(&cfg(
        "team-a",
        &up.v1(),
        "audit-logger",
        "gateway:\n  auth: {require_key: true}\n",
    )));
    let key = create_key(&gw, "dev", "team-a", &["--team", "payments"]);
    assert!(key.starts_with("kt_gk_"));
    let out = run_python("sdk_keys.py", &gw.base_url(), &[("KT_TEST_KEY", &key)]);
    assert!(out.contains("ALL OK"), "{out}");
    let evs = gw.events(1);
    assert_eq!(evs[0]["key_name"], "dev");
    assert_eq!(evs[0]["team"], "payments");
    // The key is never forwarded upstream.
    assert!(up
        .requests()
        .iter()
        .all(|r| r.header("authorization").is_none()));

    // No key at all, with require_key.
    let (s, _, b) = chat(&gw, None, &hello());
    assert_eq!(s, 401, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("requires a gateway key"));
    // Unknown.
    let (s, _, b) = chat(
        &gw,
        Some("kt_gk_unknownunknownunknownunknownunknown12345"),
        &hello(),
    );
    assert_eq!(s, 401);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown gateway key"),
        "{b}"
    );
    assert!(
        !b.to_string().contains("unknownunknownunknownunknown12345"),
        "the key is not echoed"
    );
    // Revoked: refused within about a second, even though another process revoked it.
    let out = key_cmd(gw.dir.path(), &gw.db, &["revoke", "dev"]);
    assert!(out.status.success(), "{}", out.stderr);
    let deadline = Instant::now() + Duration::from_millis(1500);
    let b = loop {
        let (s, _, b) = chat(&gw, Some(&key), &hello());
        if s == 401 {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "revocation not seen within 1.5 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("was revoked"),
        "{b}"
    );
    // Expired.
    let short = create_key(&gw, "short", "team-a", &["--expires-in", "1s"]);
    std::thread::sleep(Duration::from_millis(1100));
    let (s, _, b) = chat(&gw, Some(&short), &hello());
    assert_eq!(s, 401);
    assert!(
        b["error"]["message"].as_str().unwrap().contains("expired"),
        "{b}"
    );

    // Nothing secret in the logs or the database.
    let logs = gw.stderr();
    let hash = kt::store::keys::hash_key(&key);
    assert!(!logs.contains(&key) && !logs.contains(&hash), "{logs}");
    let raw = String::from_utf8_lossy(&std::fs::read(&gw.db).unwrap()).to_string();
    assert!(!raw.contains(&key));
}

#[test]
fn keys_select_their_configuration() {
    let up_a = upstream();
    let up_b = upstream();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(&a, cfg("alpha", &up_a.v1(), "audit-logger", "")).unwrap();
    // b layers over a: its own pack name, its own target, and an empty chain.
    std::fs::write(
        &b,
        format!("pack: {{name: beta}}\nproviders:\n  targets:\n    - {{id: t-alpha, provider: openai, model: gpt-4o, base_url: '{}'}}\npolicies:\n  chain: []\n", up_b.v1()),
    )
    .unwrap();
    let gw = Gateway::start_with(
        None,
        &[
            "--policy-config",
            a.to_str().unwrap(),
            "--policy-config",
            b.to_str().unwrap(),
        ],
        &[],
    );
    let ka = create_key(&gw, "ka", "alpha", &[]);
    let kb = create_key(&gw, "kb", "beta", &[]);
    assert_eq!(chat(&gw, Some(&ka), &hello()).0, 200);
    assert_eq!(chat(&gw, Some(&kb), &hello()).0, 200);
    assert_eq!((up_a.count(), up_b.count()), (1, 1));
    let evs = gw.events(2);
    assert_eq!(evs[0]["configuration"], "alpha");
    assert_eq!(evs[0]["policies"][0]["policy"], "audit-logger");
    assert_eq!(evs[1]["configuration"], "beta");
    assert!(evs[1]["policies"].is_null());
    // Creating a key for a configuration the files do not define is refused.
    let mut cmd = kt(gw.dir.path());
    cmd.args([
        "gateway-key",
        "create",
        "--name",
        "x",
        "--configuration-id",
        "gamma",
        "--expires-in",
        "1d",
        "--db",
    ])
    .arg(&gw.db)
    .args([
        "--policy-config",
        a.to_str().unwrap(),
        "--policy-config",
        b.to_str().unwrap(),
    ]);
    let out = run(cmd, None, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("alpha, beta"), "{}", out.stderr);
}

#[test]
fn rate_limits_answer_429_with_headers() {
    let up = upstream();
    let gw = Gateway::start(Some(&cfg(
        "rl",
        &up.v1(),
        "audit-logger",
        "gateway:\n  rate_limits: {rpm: 100, tpm: 100000}\n",
    )));
    let key = create_key(&gw, "limited", "rl", &["--rpm", "2", "--tpm", "1000"]);
    let (s, h, _) = chat(&gw, Some(&key), &hello());
    assert_eq!(s, 200);
    assert_eq!(find_header(&h, "x-ratelimit-limit-requests"), Some("2"));
    assert_eq!(find_header(&h, "x-ratelimit-remaining-requests"), Some("1"));
    assert_eq!(find_header(&h, "x-ratelimit-limit-tokens"), Some("1000"));
    assert_eq!(find_header(&h, "x-ratelimit-scope"), Some("key"));
    assert!(find_header(&h, "x-ratelimit-reset").is_some());
    assert_eq!(chat(&gw, Some(&key), &hello()).0, 200);
    let (s, h, b) = chat(&gw, Some(&key), &hello());
    assert_eq!(s, 429, "{b}");
    assert_eq!(b["error"]["code"], "rate_limit_exceeded");
    let retry: u64 = find_header(&h, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(up.count(), 2, "the limited request never went upstream");
    // Without a key the gateway-wide (org) limits apply and are reported.
    let (s, h, _) = chat(&gw, None, &hello());
    assert_eq!(s, 200);
    assert_eq!(find_header(&h, "x-ratelimit-scope"), Some("org"));
    assert_eq!(find_header(&h, "x-ratelimit-limit-requests"), Some("100"));
    // Tokens per minute: a long prompt is over a small tpm.
    let tkey = create_key(&gw, "tokens", "rl", &["--tpm", "50"]);
    let long =
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "word ".repeat(100)}]});
    let (s, _, b) = chat(&gw, Some(&tkey), &long);
    assert_eq!(s, 429, "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("tokens"));
}

#[test]
fn budgets_are_never_overspent_and_costs_match_pricing() {
    let up = upstream();
    let gw = Gateway::start(Some(&cfg("bud", &up.v1(), "audit-logger", "")));
    // $0.1 per completion token, 10 tokens per request: $1 a request, budget for 10.
    let key = create_key(&gw, "budgeted", "bud", &["--budget-usd", "10"]);
    let url = format!("{}/chat/completions", gw.base_url());
    let handles: Vec<_> = (0..50)
        .map(|_| {
            let (url, key) = (url.clone(), key.clone());
            std::thread::spawn(move || {
                let body = json!({"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
                let (s, h, b) = post_json(&url, &body, &[("Authorization", &format!("Bearer {key}"))]);
                (s, h, b)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let over: Vec<_> = results.iter().filter(|r| r.0 == 429).collect();
    assert_eq!(ok + over.len(), 50);
    assert!(ok <= 10, "{ok} requests admitted for a budget of 10");
    assert!(ok >= 1);
    assert!(over
        .iter()
        .all(|r| r.2["error"]["code"] == "budget_exceeded"));
    let evs = gw.events(50);
    let spent: f64 = evs.iter().filter_map(|e| e["cost_usd"].as_f64()).sum();
    assert!(spent <= 10.0 + 1e-9, "spent {spent}");
    for e in evs.iter().filter(|e| e["status"] == 200) {
        assert!((e["cost_usd"].as_f64().unwrap() - 1.0).abs() < 1e-9, "{e}");
    }
    // Past 80 % the budget headers are present.
    assert!(results.iter().filter(|r| r.0 == 200).any(|r| find_header(
        &r.1,
        "x-budget-remaining-usd"
    )
    .is_some()));
}

#[test]
fn admin_endpoints_need_the_admin_token_and_list_keys() {
    let up = upstream();
    let gw = Gateway::start_with(
        Some(&cfg("adm", &up.v1(), "audit-logger", "")),
        &[],
        &[("KT_ADMIN_TOKEN", "admin-secret-1")],
    );
    chat(&gw, None, &hello());
    gw.events(1);
    let url = format!("{}/events?limit=5", gw.base_url());
    let (s, b) = get_json(&url);
    assert_eq!(s, 401, "{b}");
    let mut r = http()
        .get(&url)
        .header("Authorization", "Bearer admin-secret-1")
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    let mut r = http()
        .get(&format!("{}/keeptrusts/config", gw.url()))
        .header("Authorization", "Bearer admin-secret-1")
        .call()
        .unwrap();
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(v["default"], "adm");

    create_key(&gw, "one", "adm", &[]);
    let out = key_cmd(gw.dir.path(), &gw.db, &["list"]);
    assert!(out.stdout.starts_with("NAME"), "{}", out.stdout);
    assert!(out.stdout.contains("one") && out.stdout.contains("active"));
    let out = key_cmd(gw.dir.path(), &gw.db, &["list", "--json"]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[0]["state"], "active");
    assert!(v[0].get("hash").is_none());
    let out = key_cmd(gw.dir.path(), &gw.db, &["revoke", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
    // Missing flags without a terminal: a clear error, not a prompt.
    let out = key_cmd(
        gw.dir.path(),
        &gw.db,
        &["create", "--configuration-id", "adm"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("missing --name"), "{}", out.stderr);
}

#[test]
fn admin_token_is_created_once_when_none_is_given() {
    let gw = Gateway::start(None);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut logs = String::new();
    while !logs.contains("kt_admin_") && Instant::now() < deadline {
        logs.push_str(&gw.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    let token = logs
        .split_whitespace()
        .find(|w| w.starts_with("kt_admin_"))
        .expect("admin token printed")
        .to_string();
    let mut r = http()
        .get(&format!("{}/events", gw.base_url()))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "{}",
        r.body_mut().read_to_string().unwrap()
    );
}
