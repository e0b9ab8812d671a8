//! Checks that need more than types: unique target ids, usable URLs, headers and numbers,
//! weights, strategies with enough targets, aliases that lead somewhere, secrets that
//! are set. They run on the typed spec and skip what the structural pass already
//! reported.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::path;
use super::suggest;
use super::Findings;
use crate::config::diagnostic::{code, Diagnostic};
use crate::config::schema::{ConfigSpec, Strategy, TargetSpec};

/// The router follows at most this many alias/deprecation steps (`router::resolve`).
const MAX_ALIAS_STEPS: usize = 8;

pub fn check(spec: &ConfigSpec, broken: &BTreeSet<usize>, out: &mut Findings) {
    if spec.pack.name.trim().is_empty() && !out.is_touched("pack.name") {
        out.push(
            Diagnostic::error(code::MISSING_FIELD, "pack.name", "`pack.name` is empty")
                .with_suggestion("name the pack: it is the configuration id gateway keys bind to"),
        );
    }
    let mut first_by_id: HashMap<&str, usize> = HashMap::new();
    for (i, t) in spec.providers.targets.iter().enumerate() {
        if broken.contains(&i) {
            continue;
        }
        let base = format!("providers.targets[{i}]");
        target_id(t, i, &base, &mut first_by_id, out);
        target(t, &base, out);
    }
    strategy(spec, out);
    models(spec, out);
    gateway(spec, out);
}

fn target_id<'a>(
    t: &'a TargetSpec,
    i: usize,
    base: &str,
    first_by_id: &mut HashMap<&'a str, usize>,
    out: &mut Findings,
) {
    let p = path::key(base, "id");
    if out.is_touched(&p) {
        return;
    }
    if t.id.trim().is_empty() {
        out.push(
            Diagnostic::error(code::MISSING_FIELD, p, "target `id` is empty")
                .with_suggestion("give the target a unique name, e.g. `id: openai-primary`"),
        );
    } else if let Some(first) = first_by_id.get(t.id.as_str()) {
        out.push(
            Diagnostic::error(
                code::DUPLICATE_TARGET_ID,
                p,
                format!("duplicate target id `{}`", t.id),
            )
            .with_suggestion(format!(
                "`providers.targets[{first}]` already uses it; give every target a unique `id`"
            )),
        );
    } else {
        first_by_id.insert(&t.id, i);
    }
}

fn target(t: &TargetSpec, base: &str, out: &mut Findings) {
    let field = |f: &str| path::key(base, f);
    if t.model.trim().is_empty() && t.provider.model.is_none() && !out.is_touched(&field("model")) {
        out.push(
            Diagnostic::error(code::MISSING_FIELD, field("model"), "`model` is empty")
                .with_suggestion("name the upstream model, e.g. `model: gpt-4o`"),
        );
    }
    match &t.base_url {
        Some(url) => {
            if let Err(why) = check_url(url) {
                out.push_unless_touched(
                    Diagnostic::error(
                        code::INVALID_URL,
                        field("base_url"),
                        format!("invalid URL `{url}`: {why}"),
                    )
                    .with_suggestion(
                        "use an absolute http(s) URL, e.g. `https://api.openai.com/v1`",
                    ),
                );
            }
        }
        None => {
            if let Err(msg) = crate::config::build_target(t) {
                out.push_unless_touched(
                    Diagnostic::error(code::MISSING_FIELD, field("base_url"), msg)
                        .with_suggestion("set `base_url` to your deployment's endpoint"),
                );
            }
        }
    }
    secrets(t, base, out);
    headers(t, base, out);
    for (name, value) in [
        ("timeout_seconds", t.timeout_seconds),
        ("stream_timeout_seconds", t.stream_timeout_seconds),
    ] {
        positive_seconds(value, &field(name), out);
    }
    for (name, value) in [
        ("max_context_tokens", t.max_context_tokens),
        ("max_messages", t.max_messages),
    ] {
        if value == Some(0) {
            out.push_unless_touched(
                Diagnostic::error(
                    code::INVALID_NUMBER,
                    field(name),
                    format!("`{name}` must be at least 1, found 0"),
                )
                .with_suggestion(format!("remove `{name}` for no limit")),
            );
        }
    }
    if let Some(w) = t.weight {
        if !w.is_finite() || w < 0.0 {
            out.push_unless_touched(
                Diagnostic::error(
                    code::INVALID_WEIGHT,
                    field("weight"),
                    format!("`weight` must be 0 or more, found {w}"),
                )
                .with_suggestion("weights are relative shares of traffic, e.g. `0.8` and `0.2`"),
            );
        }
    }
    if let Some(pricing) = &t.pricing {
        for (name, v) in [
            ("prompt", pricing.prompt),
            ("completion", pricing.completion),
        ] {
            if !v.is_finite() || v < 0.0 {
                out.push_unless_touched(
                    Diagnostic::error(
                        code::INVALID_NUMBER,
                        path::key(&field("pricing"), name),
                        format!("price `{name}` must be 0 or more, found {v}"),
                    )
                    .with_suggestion("prices are USD per 1M tokens, e.g. `prompt: 2.5`"),
                );
            }
        }
    }
    if let Some(probe) = &t.health_probe {
        let probe_path = field("health_probe");
        if let Some(p) = &probe.path {
            if !p.starts_with('/') {
                out.push_unless_touched(
                    Diagnostic::error(
                        code::INVALID_URL,
                        path::key(&probe_path, "path"),
                        format!("health probe path `{p}` must start with `/`"),
                    )
                    .with_suggestion("use a path on the target's host, e.g. `/v1/models`"),
                );
            }
        }
        positive_seconds(
            probe.interval_seconds,
            &path::key(&probe_path, "interval_seconds"),
            out,
        );
        positive_seconds(
            probe.timeout_seconds,
            &path::key(&probe_path, "timeout_seconds"),
            out,
        );
    }
}

/// Why `url` cannot be a target's base URL.
fn check_url(url: &str) -> Result<(), String> {
    let Some((scheme, _)) = url.split_once("://") else {
        return Err("it has no scheme: write `https://` or `http://` before the host".to_string());
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!("the scheme `{scheme}` is not `http` or `https`"));
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    if uri.host().is_none_or(str::is_empty) {
        return Err("it has no host".to_string());
    }
    Ok(())
}

/// The longest duration kt takes: a year. Longer is surely a mistake, and past about
/// 1.8e19 seconds a duration cannot even be represented (the gateway would crash).
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

fn positive_seconds(value: Option<f64>, p: &str, out: &mut Findings) {
    let Some(v) = value else { return };
    let name = path::last_key(p);
    let message = if !v.is_finite() || v <= 0.0 {
        format!("`{name}` must be more than 0 seconds, found {v}")
    } else if v > MAX_SECONDS {
        format!("`{name}` must be at most {MAX_SECONDS} seconds (a year), found {v}")
    } else {
        return;
    };
    out.push_unless_touched(
        Diagnostic::error(code::INVALID_NUMBER, p, message)
            .with_suggestion(format!("give a number of seconds, e.g. `{name}: 30`")),
    );
}

fn secrets(t: &TargetSpec, base: &str, out: &mut Findings) {
    let Some(r) = &t.secret_key_ref else { return };
    let refs = [
        ("env", &r.env),
        ("access_key_id_env", &r.access_key_id_env),
        ("secret_access_key_env", &r.secret_access_key_env),
        ("session_token_env", &r.session_token_env),
    ];
    for (name, var) in refs {
        let Some(var) = var else { continue };
        let p = path::key(&path::key(base, "secret_key_ref"), name);
        if var.trim().is_empty() {
            out.push_unless_touched(
                Diagnostic::error(code::MISSING_FIELD, p, format!("`{name}` is empty"))
                    .with_suggestion("name the environment variable that holds the key"),
            );
        } else if std::env::var_os(var).is_none_or(|v| v.is_empty()) {
            out.push_unless_touched(
                Diagnostic::warning(
                    code::UNSET_SECRET,
                    p,
                    format!("environment variable `{var}` is not set"),
                )
                .with_suggestion(format!(
                    "export `{var}` before `kt gateway run`: target `{}` cannot authenticate without it",
                    t.id
                )),
            );
        }
    }
}

fn headers(t: &TargetSpec, base: &str, out: &mut Findings) {
    if let Some(h) = &t.api_key_header {
        if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
            out.push_unless_touched(
                Diagnostic::error(
                    code::INVALID_HEADER,
                    path::key(base, "api_key_header"),
                    format!("`{h}` is not a valid HTTP header name"),
                )
                .with_suggestion("header names are letters, digits and `-`, e.g. `api-key`"),
            );
        }
    }
    if let Some(prefix) = &t.api_key_prefix {
        if http::HeaderValue::from_str(prefix).is_err() {
            out.push_unless_touched(
                Diagnostic::error(
                    code::INVALID_HEADER,
                    path::key(base, "api_key_prefix"),
                    "`api_key_prefix` holds characters an HTTP header cannot carry",
                )
                .with_suggestion("use visible ASCII, e.g. `Bearer `"),
            );
        }
    }
    let headers_path = path::key(base, "headers");
    for (name, value) in &t.headers {
        let p = path::key(&headers_path, name);
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            out.push_unless_touched(
                Diagnostic::error(
                    code::INVALID_HEADER,
                    p,
                    format!("`{name}` is not a valid HTTP header name"),
                )
                .with_suggestion("header names are letters, digits and `-`, e.g. `X-Team`")
                .at_key(),
            );
        } else if http::HeaderValue::from_str(value).is_err() {
            out.push_unless_touched(
                Diagnostic::error(
                    code::INVALID_HEADER,
                    p,
                    format!("the value of header `{name}` holds characters HTTP does not allow"),
                )
                .with_suggestion("use visible ASCII without line breaks"),
            );
        }
    }
}

fn strategy(spec: &ConfigSpec, out: &mut Findings) {
    let targets = &spec.providers.targets;
    if targets.is_empty() {
        out.push_unless_touched(
            Diagnostic::error(
                code::TOO_FEW_TARGETS,
                "providers.targets",
                "no provider targets: requests have nowhere to go",
            )
            .with_suggestion(
                "add a target under `providers.targets` (provider `mock` needs no key)",
            ),
        );
        return;
    }
    let strategy = spec.providers.strategy;
    if strategy != Strategy::Single && targets.len() < 2 {
        out.push_unless_touched(
            Diagnostic::error(
                code::TOO_FEW_TARGETS,
                "providers.strategy",
                format!(
                    "strategy `{}` needs at least 2 targets, found {}",
                    strategy.as_str(),
                    targets.len()
                ),
            )
            .with_suggestion("add another target, or use `strategy: single`"),
        );
    }
    if strategy == Strategy::WeightedRoundRobin && targets.iter().all(|t| t.weight == Some(0.0)) {
        out.push_unless_touched(
            Diagnostic::error(
                code::INVALID_WEIGHT,
                "providers.targets",
                "every target has `weight: 0`: weighted_round_robin has nothing to pick",
            )
            .with_suggestion("give at least one target a weight above 0"),
        );
    }
}

fn models(spec: &ConfigSpec, out: &mut Findings) {
    let served: BTreeSet<&str> = spec
        .providers
        .targets
        .iter()
        .flat_map(|t| {
            [
                Some(t.model.as_str()),
                t.provider.model.as_deref(),
                Some(t.id.as_str()),
            ]
        })
        .flatten()
        .filter(|m| !m.is_empty())
        .collect();
    let aliases = &spec.models.aliases;
    let deprecations = &spec.models.deprecations;
    for (section, map, what) in [
        ("models.aliases", aliases, "alias"),
        ("models.deprecations", deprecations, "deprecated model"),
    ] {
        for (name, target) in map {
            let p = path::key(section, name);
            if let Err(msg) = resolves(target, aliases, deprecations, &served) {
                let mut models: Vec<&str> = spec
                    .providers
                    .targets
                    .iter()
                    .map(|t| t.model.as_str())
                    .filter(|m| !m.is_empty())
                    .collect();
                models.dedup();
                let mut d = Diagnostic::error(
                    code::DANGLING_MODEL,
                    p,
                    format!("{what} `{name}` points to `{target}`, {msg}"),
                );
                d.suggestion = Some(suggest::with_choices(target, &models, "configured models"));
                out.push_unless_touched(d);
            }
        }
    }
}

/// Follows aliases and deprecations as the router does; `Err` says why `start` leads
/// nowhere.
fn resolves(
    start: &str,
    aliases: &BTreeMap<String, String>,
    deprecations: &BTreeMap<String, String>,
    served: &BTreeSet<&str>,
) -> Result<(), String> {
    let mut model = start;
    let mut seen = vec![start];
    for _ in 0..MAX_ALIAS_STEPS {
        match aliases.get(model).or_else(|| deprecations.get(model)) {
            Some(next) if seen.contains(&next.as_str()) => {
                seen.push(next);
                return Err(format!("which loops: {}", seen.join(" -> ")));
            }
            Some(next) => {
                model = next;
                seen.push(next);
            }
            None => break,
        }
    }
    if served.contains(model) {
        Ok(())
    } else if model == start {
        Err("which no target serves".to_string())
    } else {
        Err(format!("which leads to `{model}`, which no target serves"))
    }
}

fn gateway(spec: &ConfigSpec, out: &mut Findings) {
    if spec.gateway.max_body_bytes == Some(0) {
        out.push_unless_touched(
            Diagnostic::error(
                code::INVALID_NUMBER,
                "gateway.max_body_bytes",
                "`max_body_bytes` must be at least 1, found 0",
            )
            .with_suggestion("remove it for the default of 10 MiB (10485760)"),
        );
    }
    if let Some(ws) = &spec.gateway.websocket {
        if ws.max_message_size_bytes == Some(0) {
            out.push_unless_touched(
                Diagnostic::error(
                    code::INVALID_NUMBER,
                    "gateway.websocket.max_message_size_bytes",
                    "`max_message_size_bytes` must be at least 1, found 0",
                )
                .with_suggestion("give a size in bytes, e.g. `1048576`"),
            );
        }
        positive_seconds(
            ws.idle_timeout_seconds,
            "gateway.websocket.idle_timeout_seconds",
            out,
        );
    }
    if let Some(cors) = &spec.gateway.cors {
        for (i, origin) in cors.allowed_origins.iter().enumerate() {
            if let Some(why) = crate::config::origin::invalid_origin(origin) {
                out.push_unless_touched(
                    Diagnostic::error(
                        code::INVALID_URL,
                        format!("gateway.cors.allowed_origins[{i}]"),
                        format!("`{origin}` is not an origin: {why}"),
                    )
                    .with_suggestion(
                        "write scheme, host and port as the browser shows them, e.g. `https://app.example.com` or `http://localhost:5173`; `*` allows every page",
                    ),
                );
            }
        }
        if cors.max_age_seconds == Some(0) {
            out.push_unless_touched(
                Diagnostic::error(
                    code::INVALID_NUMBER,
                    "gateway.cors.max_age_seconds",
                    "`max_age_seconds` must be at least 1, found 0",
                )
                .with_suggestion("remove it for the default of 600 seconds"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_an_http_scheme_and_a_host() {
        assert!(check_url("https://api.openai.com/v1").is_ok());
        assert!(check_url("http://127.0.0.1:11434/v1").is_ok());
        assert!(check_url("api.openai.com/v1")
            .unwrap_err()
            .contains("scheme"));
        assert!(check_url("ftp://x/v1").unwrap_err().contains("`ftp`"));
        assert!(check_url("https://exa mple.com").is_err());
        assert!(check_url("https:///v1").is_err());
        assert!(check_url("htp:/api.openai.com")
            .unwrap_err()
            .contains("no scheme"));
    }

    #[test]
    fn aliases_resolve_like_the_router() {
        let served: BTreeSet<&str> = ["gpt-4o", "t1"].into_iter().collect();
        let mut aliases = BTreeMap::new();
        aliases.insert("a".to_string(), "b".to_string());
        aliases.insert("b".to_string(), "gpt-4o".to_string());
        aliases.insert("x".to_string(), "y".to_string());
        aliases.insert("y".to_string(), "x".to_string());
        let mut deps = BTreeMap::new();
        deps.insert("old".to_string(), "a".to_string());
        assert!(resolves("a", &aliases, &deps, &served).is_ok());
        assert!(resolves("old", &aliases, &deps, &served).is_ok());
        assert!(resolves("t1", &aliases, &deps, &served).is_ok());
        assert!(resolves("x", &aliases, &deps, &served)
            .unwrap_err()
            .contains("loops: x -> y -> x"));
        assert_eq!(
            resolves("nope", &aliases, &deps, &served).unwrap_err(),
            "which no target serves"
        );
    }
}
