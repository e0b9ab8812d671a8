//! `kt events tail --url`: a remote gateway's `GET /v1/events?limit=N&after=ID`
//! (`{"object": "list", "data": [events]}`, admin token as a bearer). Filters apply on
//! this side, so they work with any gateway version.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::tail::{stop_flag, Printer};
use crate::cli::hint;
use crate::exit::ExitStatus;
use crate::store::query::Filter;
use crate::store::Event;

/// Follow mode's poll interval against a remote gateway.
const POLL: Duration = Duration::from_millis(250);
/// Events asked for per request while catching up.
const PAGE: u32 = 500;

/// `…/v1/events` from a gateway URL given with or without `/v1`.
pub fn events_url(url: &str) -> String {
    let base = url.trim_end_matches('/');
    if base.ends_with("/v1") {
        format!("{base}/events")
    } else {
        format!("{base}/v1/events")
    }
}

#[derive(serde::Deserialize)]
struct List {
    data: Vec<Event>,
}

/// Why a fetch failed, with the hint that fixes it.
struct Failure {
    err: anyhow::Error,
    hint: Option<&'static str>,
}

fn fetch(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&str>,
    query: &[(&str, String)],
) -> Result<Vec<Event>, Failure> {
    let mut req = agent.get(url);
    for (k, v) in query {
        req = req.query(*k, v);
    }
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.call().map_err(|e| Failure {
        hint: hint::unreachable_hint(&e),
        err: anyhow::Error::new(e).context(format!("failed to reach `{url}`")),
    })?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(256 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| Failure {
            err: anyhow::Error::new(e).context(format!("failed to read the answer of `{url}`")),
            hint: None,
        })?;
    if !(200..300).contains(&status) {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| body.chars().take(200).collect());
        let hint = match status {
            401 | 403 => Some("pass the gateway's admin token with --admin-token or KT_ADMIN_TOKEN"),
            404 => Some("this gateway has no /v1/events endpoint; check --url (the gateway's address, e.g. http://127.0.0.1:41002)"),
            _ => None,
        };
        return Err(Failure {
            err: anyhow::anyhow!("`{url}` answered HTTP {status}: {message}"),
            hint,
        });
    }
    serde_json::from_str::<List>(&body)
        .map(|l| l.data)
        .map_err(|e| Failure {
            err: anyhow::Error::new(e)
                .context(format!("`{url}` did not answer with a list of events")),
            hint: None,
        })
}

pub fn tail(
    url: &str,
    token: Option<&str>,
    filter: &Filter,
    limit: u32,
    follow: bool,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let endpoint = events_url(url);
    let agent = hint::agent(&endpoint, Some(Duration::from_secs(30)));
    let fail = |f: Failure| {
        hint::print(&f.err, f.hint);
        Ok(ExitStatus::Failure)
    };
    let stop = if follow { stop_flag()? } else { Arc::default() };
    let mut out = std::io::stdout().lock();
    let first = match fetch(&agent, &endpoint, token, &[("limit", limit.to_string())]) {
        Ok(evs) => evs,
        Err(f) => return fail(f),
    };
    let mut last_id = first.iter().map(|e| e.id).max().unwrap_or(0);
    show(printer, &mut out, filter, first)?;
    if !follow {
        return Ok(ExitStatus::Success);
    }
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(POLL);
        loop {
            let query = [("limit", PAGE.to_string()), ("after", last_id.to_string())];
            let page = match fetch(&agent, &endpoint, token, &query) {
                Ok(evs) => evs,
                Err(f) => return fail(f),
            };
            let full = page.len() >= PAGE as usize;
            last_id = page
                .iter()
                .map(|e| e.id)
                .max()
                .unwrap_or(last_id)
                .max(last_id);
            show(printer, &mut out, filter, page)?;
            if !full || stop.load(Ordering::Relaxed) {
                break;
            }
        }
    }
    Ok(ExitStatus::Success)
}

fn show(
    printer: &Printer,
    out: &mut impl Write,
    filter: &Filter,
    mut events: Vec<Event>,
) -> anyhow::Result<()> {
    events.sort_by_key(|e| e.id);
    events.retain(|e| filter.matches(e));
    printer
        .print(out, &events)
        .context("failed to write events")
}

#[cfg(test)]
mod tests {
    #[test]
    fn events_url_accepts_either_base() {
        for u in [
            "http://h:1",
            "http://h:1/",
            "http://h:1/v1",
            "http://h:1/v1/",
        ] {
            assert_eq!(super::events_url(u), "http://h:1/v1/events");
        }
    }
}
