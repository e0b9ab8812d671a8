//! `POST /keeptrusts/config/reload` and SIGHUP: new policies and targets without a
//! restart; an invalid file or a change only a restart can make leaves the running
//! configuration as it was.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

const ADMIN: &str = "reload-admin-token";

fn yaml(chain: &str, extra: &str) -> String {
    format!(
        "pack: {{name: live}}
providers:
  targets:
    - {{id: m1, provider: mock, model: model-one}}
{extra}policies:
  chain: [{chain}]
policy:
  pii-detector: {{action: redact}}
"
    )
}

fn echo(gw: &Gateway, model: &str, text: &str) -> (u16, Value) {
    let (status, _, body) = post_json(
        &format!("{}/chat/completions", gw.base_url()),
        &json!({"model": model, "messages": [{"role": "user", "content": format!("echo: {text}")}]}),
        &[],
    );
    (status, body)
}

fn answer(body: &Value) -> &str {
    body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or("")
}

/// The target ids `/keeptrusts/providers/metrics` lists.
fn metric_ids(gw: &Gateway) -> Vec<String> {
    let mut resp = http()
        .get(&format!("{}/keeptrusts/providers/metrics", gw.url()))
        .header("Authorization", &format!("Bearer {ADMIN}"))
        .call()
        .unwrap();
    let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    let mut ids: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn reload(gw: &Gateway, token: Option<&str>) -> (u16, Value) {
    let mut req = http().post(&format!("{}/keeptrusts/config/reload", gw.url()));
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.send_empty().unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn a_reload_puts_new_policies_and_targets_in_place_or_changes_nothing() {
    let gw = Gateway::start_with(
        Some(&yaml("audit-logger", "")),
        &[],
        &[("KT_ADMIN_TOKEN", ADMIN)],
    );
    let file = gw.dir.path().join("policy-config.yaml");
    let (status, body) = echo(&gw, "model-one", "mail bob@example.com");
    assert_eq!(status, 200);
    assert_eq!(answer(&body), "mail bob@example.com");

    std::fs::write(
        &file,
        yaml(
            "pii-detector, audit-logger",
            "    - {id: m2, provider: mock, model: model-two}\n",
        ),
    )
    .unwrap();
    let (status, body) = reload(&gw, None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(echo(&gw, "model-two", "x").0, 404, "nothing changed yet");
    let (status, body) = reload(&gw, Some(ADMIN));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "config.reload");
    assert_eq!(body["default"], "live");
    assert_eq!(body["targets"], 2, "{body}");
    assert_eq!(body["configurations"], json!(["live"]));
    let (status, body) = echo(&gw, "model-one", "mail bob@example.com");
    assert_eq!(status, 200);
    assert_eq!(answer(&body), "mail [EMAIL]", "the new chain runs");
    assert_eq!(echo(&gw, "model-two", "hi").0, 200, "the new target serves");
    assert_eq!(metric_ids(&gw), ["m1", "m2"]);
    let (_, models) = get_json(&format!("{}/models", gw.base_url()));
    assert!(models.to_string().contains("model-two"), "{models}");

    // An invalid file: 400 naming it, the running configuration unchanged.
    std::fs::write(&file, yaml("pii-detector, no-such-policy", "")).unwrap();
    let (status, body) = reload(&gw, Some(ADMIN));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_config");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("no-such-policy") && msg.contains("unchanged"),
        "{msg}"
    );
    assert_eq!(answer(&echo(&gw, "model-one", "a@b.io").1), "[EMAIL]");
    assert_eq!(echo(&gw, "model-two", "hi").0, 200);

    // Durability is fixed by the event writer at start: a restart, not a reload.
    let strict = yaml("audit-logger", "").replace(
        "policy:\n",
        "policy:\n  audit-logger: {durability: strict}\n",
    );
    std::fs::write(&file, strict).unwrap();
    let (status, body) = reload(&gw, Some(ADMIN));
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "restart_required");
    assert_eq!(answer(&echo(&gw, "model-one", "a@b.io").1), "[EMAIL]");

    // SIGHUP, to the process users see (the supervisor), reloads too.
    std::fs::write(&file, yaml("audit-logger", "")).unwrap();
    let pid = gw.child.as_ref().unwrap().id();
    let ok = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = echo(&gw, "model-one", "a@b.io");
        assert_eq!(status, 200, "the gateway survives SIGHUP: {body}");
        if answer(&body) == "a@b.io" {
            break;
        }
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        echo(&gw, "model-two", "hi").0,
        404,
        "the removed target is gone"
    );
    assert_eq!(metric_ids(&gw), ["m1"], "and so is its routing state");

    let evs = gw.events(14);
    let reloads: Vec<(u64, &str)> = evs
        .iter()
        .filter(|e| e["kind"] == "config_reload")
        .map(|e| {
            (
                e["status"].as_u64().unwrap(),
                e["endpoint"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reloads,
        [
            (200, "/keeptrusts/config/reload"),
            (400, "/keeptrusts/config/reload"),
            (409, "/keeptrusts/config/reload"),
            (200, "SIGHUP"),
        ],
        "every reload is recorded (the unauthorised one is not a reload)"
    );
}

/// A stream in flight when the configuration is replaced finishes under the one it
/// started with; the next request gets the new.
#[test]
fn a_stream_in_flight_finishes_under_its_configuration() {
    let gw = Gateway::start_with(
        Some(&yaml("audit-logger", "")),
        &[],
        &[("KT_ADMIN_TOKEN", ADMIN)],
    );
    let words: Vec<String> = (0..30).map(|i| format!("w{i}")).collect();
    let text = format!("{} mail bob@example.com", words.join(" "));
    let url = format!("{}/chat/completions", gw.base_url());
    let body = json!({"model": "model-one", "stream": true,
                      "messages": [{"role": "user", "content": format!("echo: {text}")}]});
    let streaming = std::thread::spawn(move || post_stream(&url, &body));
    std::thread::sleep(Duration::from_millis(150));
    let file = gw.dir.path().join("policy-config.yaml");
    std::fs::write(&file, yaml("pii-detector, audit-logger", "")).unwrap();
    let (status, body) = reload(&gw, Some(ADMIN));
    assert_eq!(status, 200, "{body}");
    assert!(
        !streaming.is_finished(),
        "the reload came while the stream was going"
    );
    let (status, arrivals) = streaming.join().unwrap();
    assert_eq!(status, 200);
    assert_eq!(arrivals.last().unwrap().data, "[DONE]");
    assert_eq!(streamed_text(&arrivals), text, "the old chain, to the end");
    assert_eq!(
        answer(&echo(&gw, "model-one", "mail bob@example.com").1),
        "mail [EMAIL]"
    );
}
