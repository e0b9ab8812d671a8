//! How an event looks in the terminal: one aligned line (the default), a detailed block
//! with the policy chain trace and routing, or one JSON object per line. Colors only when
//! the caller says so (a terminal without `NO_COLOR`); widths adapt to the terminal.

use std::fmt::Write as _;

use console::Style;
use serde_json::Value;

use crate::store::events::JsonText;
use crate::store::Event;

/// Output settings decided once per command.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub color: bool,
    /// Terminal width in columns; `None` when piped (no truncation).
    pub width: Option<usize>,
}

impl Look {
    /// For standard output: colors and width only on a terminal, never with `NO_COLOR`.
    pub fn stdout() -> Look {
        use std::io::IsTerminal;
        let term = std::io::stdout().is_terminal();
        let width = term
            .then(|| console::Term::stdout().size_checked())
            .flatten()
            .map(|(_rows, cols)| usize::from(cols))
            .filter(|w| *w > 0);
        Look {
            color: term && !super::no_color(),
            width,
        }
    }

    fn paint(&self, style: &Style, text: &str) -> String {
        if self.color {
            style.apply_to(text).force_styling(true).to_string()
        } else {
            text.to_string()
        }
    }

    fn verdict(&self, verdict: &str, padded: &str) -> String {
        let style = match verdict {
            "block" => Style::new().red().bold(),
            "redact" => Style::new().yellow(),
            "flag" => Style::new().magenta(),
            "allow" => Style::new().green(),
            _ => Style::new(),
        };
        self.paint(&style, padded)
    }

    fn dim(&self, text: &str) -> String {
        self.paint(&Style::new().dim(), text)
    }
}

/// `2026-11-30 12:34:56` (UTC) from Unix milliseconds.
fn datetime(ts_ms: i64) -> String {
    let full = rfc3339_ms(ts_ms);
    // `2026-11-30T12:34:56.419Z`
    format!(
        "{} {}",
        full.get(..10).unwrap_or_default(),
        full.get(11..19).unwrap_or_default()
    )
}

/// `2026-11-30T12:34:56.419Z`.
pub fn rfc3339_ms(ts_ms: i64) -> String {
    let t = u64::try_from(ts_ms)
        .ok()
        .and_then(|ms| std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_millis(ms)))
        .unwrap_or(std::time::UNIX_EPOCH);
    humantime::format_rfc3339_millis(t).to_string()
}

fn latency(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.0} s", ms / 1000.0)
    } else if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// Cuts `s` to `max` characters, marking the cut with `…`.
fn fit(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    let mut out = s.to_string();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(n)));
    out
}

fn trace(e: &Event) -> Vec<Value> {
    match e.policies.as_ref().map(JsonText::value) {
        Some(Value::Array(list)) => list,
        _ => Vec::new(),
    }
}

fn field<'a>(t: &'a Value, name: &str) -> Option<&'a str> {
    t.get(name).and_then(Value::as_str)
}

/// `email ×2, phone` from a trace entry's findings.
fn findings(t: &Value) -> String {
    let Some(list) = t.get("findings").and_then(Value::as_array) else {
        return String::new();
    };
    let parts: Vec<String> = list
        .iter()
        .filter_map(|f| {
            let kind = field(f, "kind")?;
            Some(match f.get("count").and_then(Value::as_u64) {
                Some(n) if n > 1 => format!("{kind} ×{n}"),
                _ => kind.to_string(),
            })
        })
        .collect();
    parts.join(", ")
}

/// The policy that decided and why: the blocking policy, else the first one that acted,
/// else the error of a failed request. Empty for a plain allow.
pub fn decision(e: &Event) -> String {
    let acted = |t: &&Value| {
        field(t, "verdict").is_some_and(|v| v != "allow")
            || t.get("error").is_some_and(|v| !v.is_null())
    };
    let trace = trace(e);
    let chosen = match &e.blocked_by {
        Some(p) => trace
            .iter()
            .find(|t| field(t, "policy") == Some(p.as_str()) && acted(t)),
        None => trace.iter().find(acted),
    };
    if let Some(t) = chosen {
        let mut s = field(t, "policy").unwrap_or("policy").to_string();
        let reason = field(t, "error").or_else(|| field(t, "reason"));
        let found = findings(t);
        s.push(':');
        if let Some(r) = reason {
            let _ = write!(s, " {r}"); // Writing to a String cannot fail.
        }
        if !found.is_empty() {
            let _ = write!(s, " ({found})");
        }
        if t.get("observed").and_then(Value::as_bool) == Some(true) {
            s.push_str(" [observe]");
        }
        return s;
    }
    if let Some(p) = &e.blocked_by {
        return format!("{p}: {}", e.error.as_deref().unwrap_or("blocked"));
    }
    match &e.error {
        Some(err) => format!("HTTP {}: {err}", e.status),
        None if e.status >= 400 => format!("HTTP {}", e.status),
        None => String::new(),
    }
}

fn model_provider(e: &Event) -> String {
    if e.kind == crate::store::EventKind::ConfigReload {
        // No model: what the event is, and how it was asked for.
        return match e.endpoint.as_str() {
            "SIGHUP" => "config reload (SIGHUP)".to_string(),
            _ => "config reload".to_string(),
        };
    }
    let model = e
        .model_requested
        .as_deref()
        .or(e.model_used.as_deref())
        .unwrap_or("-");
    match &e.provider {
        Some(p) => format!("{model}/{p}"),
        None => model.to_string(),
    }
}

/// One aligned line: time, verdict, model/provider, key, latency, then the policy and its
/// reason (the one column of varying length, cut to the terminal width).
pub fn line(e: &Event, look: &Look) -> String {
    let wide = look.width.is_none_or(|w| w >= 120);
    let time = if wide {
        datetime(e.ts_ms)
    } else {
        datetime(e.ts_ms).get(11..).unwrap_or_default().to_string()
    };
    let (model_w, key_w) = if wide { (32, 16) } else { (22, 10) };
    let verdict = look.verdict(&e.verdict, &pad(&e.verdict, 6));
    let model = pad(&fit(&model_provider(e), model_w), model_w);
    let key = pad(&fit(e.key_name.as_deref().unwrap_or("-"), key_w), key_w);
    let lat = format!("{:>8}", latency(e.latency_ms));
    let fixed = time.chars().count() + 6 + model_w + key_w + 8 + 5;
    let reason = decision(e);
    let reason = match look.width {
        Some(w) => fit(&reason, w.saturating_sub(fixed + 1).max(10)),
        None => reason,
    };
    let line = format!(
        "{} {verdict} {model} {key} {lat}  {reason}",
        look.dim(&time)
    );
    line.trim_end().to_string()
}

/// A block per event: every field that says something, the policy chain trace, routing.
pub fn detailed(e: &Event, look: &Look) -> String {
    let mut s = String::new();
    let label = |s: &mut String, name: &str, value: &str| {
        let _ = writeln!(s, "  {}{value}", look.dim(&pad(name, 12)));
    };
    let _ = writeln!(
        s,
        "{} {} {} {}  {}",
        look.paint(&Style::new().bold(), &format!("#{}", e.id)),
        rfc3339_ms(e.ts_ms),
        look.verdict(&e.verdict, &e.verdict),
        e.status,
        e.request_id
    );
    label(
        &mut s,
        "endpoint",
        &format!(
            "{} ({}{})",
            e.endpoint,
            e.kind.as_str(),
            if e.stream { ", streamed" } else { "" }
        ),
    );
    let mut model = e.model_requested.clone().unwrap_or_else(|| "-".into());
    if let Some(used) = e
        .model_used
        .as_ref()
        .filter(|u| Some(*u) != e.model_requested.as_ref())
    {
        let _ = write!(model, " → {used}");
    }
    if let Some(p) = &e.provider {
        let _ = write!(model, "  provider {p}");
    }
    if let Some(t) = &e.target_id {
        let _ = write!(model, "  target {t}");
    }
    label(&mut s, "model", &model);
    let mut who = e.configuration.clone().unwrap_or_else(|| "-".into());
    if let Some(k) = &e.key_name {
        let _ = write!(who, "  key {k}");
    }
    if let Some(t) = &e.team {
        let _ = write!(who, "  team {t}");
    }
    label(&mut s, "config", &who);
    let mut timing = latency(e.latency_ms);
    if let Some(t) = e.ttft_ms {
        let _ = write!(timing, "  first token {}", latency(t));
    }
    label(&mut s, "latency", &timing);
    if e.total_tokens.is_some() || e.cost_usd.is_some() {
        let mut usage = format!(
            "{} prompt + {} completion = {} tokens",
            e.prompt_tokens.unwrap_or(0),
            e.completion_tokens.unwrap_or(0),
            e.total_tokens.unwrap_or(0)
        );
        if let Some(c) = e.cost_usd {
            let _ = write!(usage, "  ${c:.6}");
        }
        label(&mut s, "usage", &usage);
    }
    if let Some(r) = e
        .detail
        .as_ref()
        .and_then(|d| d.value().get("routing").cloned())
    {
        label(&mut s, "routing", &routing(&r));
    }
    for (i, t) in trace(e).iter().enumerate() {
        let name = if i == 0 { "policies" } else { "" };
        let verdict = field(t, "verdict").unwrap_or("?");
        let mut entry = format!(
            "{:<7}{} {}",
            field(t, "phase").unwrap_or("?"),
            pad(field(t, "policy").unwrap_or("?"), 20),
            look.verdict(verdict, &pad(verdict, 6))
        );
        if let Some(r) = field(t, "reason") {
            let _ = write!(entry, " {r}");
        }
        if let Some(score) = t.get("score").and_then(Value::as_f64) {
            let _ = write!(entry, " score {score:.2}");
        }
        let found = findings(t);
        if !found.is_empty() {
            let _ = write!(entry, " ({found})");
        }
        if t.get("observed").and_then(Value::as_bool) == Some(true) {
            entry.push_str(" [observe: not enforced]");
        }
        if let Some(err) = field(t, "error") {
            let _ = write!(entry, " error: {err}");
        }
        label(&mut s, name, entry.trim_end());
    }
    if let Some(b) = &e.blocked_by {
        label(&mut s, "blocked by", b);
    }
    if let Some(err) = &e.error {
        label(&mut s, "error", err);
    }
    if e.request_source.is_some() || e.correlation_id.is_some() {
        label(
            &mut s,
            "source",
            &format!(
                "{}  correlation {}",
                e.request_source.as_deref().unwrap_or("-"),
                e.correlation_id.as_deref().unwrap_or("-")
            ),
        );
    }
    if let Some(h) = &e.hash {
        label(&mut s, "hash", h);
    }
    s
}

/// `requested gpt-4o → kt-sandbox, 1 candidate; sandbox-mock ok`
fn routing(r: &Value) -> String {
    let mut s = String::new();
    if let Some(req) = field(r, "requested") {
        let _ = write!(s, "requested {req}");
    }
    if let Some(res) = field(r, "resolved") {
        let _ = write!(s, " → {res}");
    }
    if let Some(n) = r.get("candidates").and_then(Value::as_u64) {
        let _ = write!(s, ", {n} candidate{}", if n == 1 { "" } else { "s" });
    }
    let attempts: Vec<String> = r
        .get("attempts")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|a| {
                    format!(
                        "{} {}",
                        field(a, "target").unwrap_or("?"),
                        field(a, "outcome").unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if !attempts.is_empty() {
        let _ = write!(s, "; attempts: {}", attempts.join(", "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn blocked() -> Event {
        Event {
            id: 7,
            request_id: "req_1".into(),
            ts_ms: 1_796_040_000_419,
            endpoint: "/v1/chat/completions".into(),
            model_requested: Some("gpt-4o".into()),
            model_used: Some("kt-sandbox".into()),
            provider: Some("mock".into()),
            status: 409,
            verdict: "block".into(),
            blocked_by: Some("prompt-injection".into()),
            policies: Some(json!([
                {"policy": "pii-detector", "phase": "input", "verdict": "redact", "reason": "pii", "findings": [{"kind": "email", "count": 2}]},
                {"policy": "prompt-injection", "phase": "input", "verdict": "block", "reason": "instruction override", "score": 0.93}
            ]).into()),
            latency_ms: 1.25,
            key_name: Some("dev-team".into()),
            detail: Some(
                json!({"routing": {"requested": "gpt-4o", "resolved": "kt-sandbox", "candidates": 1, "attempts": [{"target": "m", "outcome": "ok"}]}}).into(),
            ),
            ..Event::default()
        }
    }

    #[test]
    fn a_line_names_the_deciding_policy_and_stays_plain_without_color() {
        let look = Look {
            color: false,
            width: None,
        };
        let l = line(&blocked(), &look);
        assert!(
            l.starts_with("2026-11-30 12:00:00 block  gpt-4o/mock"),
            "{l}"
        );
        assert!(l.contains(" dev-team "), "{l}");
        assert!(
            l.ends_with("1.2 ms  prompt-injection: instruction override"),
            "{l}"
        );
        assert!(!l.contains('\x1b'));
        let colored = line(
            &blocked(),
            &Look {
                color: true,
                width: Some(80),
            },
        );
        assert!(colored.contains("\x1b["), "{colored}");
        assert!(colored.starts_with("\x1b[2m12:00:00"), "{colored}");
    }

    #[test]
    fn a_narrow_terminal_cuts_the_reason() {
        let mut e = blocked();
        e.blocked_by = None;
        e.verdict = "redact".into();
        let look = Look {
            color: false,
            width: Some(80),
        };
        let l = line(&e, &look);
        assert!(l.chars().count() <= 80, "{l}");
        assert!(l.contains("pii-detector:"), "{l}");
        assert!(l.ends_with('…'), "{l}");
    }

    #[test]
    fn a_config_reload_says_so_where_a_model_would_be() {
        let e = Event {
            kind: crate::store::EventKind::ConfigReload,
            endpoint: "SIGHUP".into(),
            verdict: "allow".into(),
            status: 400,
            error: Some("`p.yaml` is not a valid policy config".into()),
            ..Event::default()
        };
        let l = line(
            &e,
            &Look {
                color: false,
                width: None,
            },
        );
        assert!(l.contains("config reload (SIGHUP)"), "{l}");
        assert!(
            l.contains("HTTP 400: `p.yaml` is not a valid policy config"),
            "{l}"
        );
    }

    #[test]
    fn decision_texts() {
        let mut e = blocked();
        e.blocked_by = None;
        assert_eq!(decision(&e), "pii-detector: pii (email ×2)");
        e.policies = None;
        e.status = 502;
        e.error = Some("upstream unreachable".into());
        assert_eq!(decision(&e), "HTTP 502: upstream unreachable");
        e.status = 200;
        e.error = None;
        assert_eq!(decision(&e), "");
    }

    #[test]
    fn detailed_shows_the_chain_and_routing() {
        let d = detailed(
            &blocked(),
            &Look {
                color: false,
                width: None,
            },
        );
        assert!(
            d.starts_with("#7 2026-11-30T12:00:00.419Z block 409  req_1\n"),
            "{d}"
        );
        assert!(
            d.contains("model       gpt-4o → kt-sandbox  provider mock"),
            "{d}"
        );
        assert!(
            d.contains("policies    input  pii-detector         redact pii (email ×2)"),
            "{d}"
        );
        assert!(
            d.contains(
                "            input  prompt-injection     block  instruction override score 0.93"
            ),
            "{d}"
        );
        assert!(
            d.contains("routing     requested gpt-4o → kt-sandbox, 1 candidate; attempts: m ok"),
            "{d}"
        );
    }
}
