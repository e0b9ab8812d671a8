//! Browser access: which web pages may call the gateway (`gateway.cors`).
//!
//! A browser marks every cross-site request with an `Origin` header (and every WebSocket
//! handshake); SDKs, curl and servers send none. Without this check any page a user
//! visits could make their local kt call the configured providers with kt's own keys:
//! a form post or `fetch(…, {mode: "no-cors"})` needs no preflight, a WebSocket no CORS
//! at all (and its answers are readable), and a DNS-rebinding page is same-origin. So a
//! request with an `Origin` kt does not allow is refused (403 `origin_not_allowed`)
//! before anything else runs; an allowed one gets the CORS headers a browser needs to
//! read the answer, and its preflight (`OPTIONS`) is answered.

use crate::config::origin;
use crate::config::schema::CorsSpec;
use crate::openai::ApiError;

/// How long a browser may cache a preflight answer unless configured.
pub const DEFAULT_MAX_AGE: u64 = 600;

/// Response headers a browser app may read (the OpenAI SDKs read the request id and the
/// retry hints; the rest are kt's limits, budgets and deprecations).
const EXPOSED: &str = "x-request-id, retry-after, retry-after-ms, x-should-retry, \
    x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-limit-tokens, \
    x-ratelimit-remaining-tokens, x-ratelimit-reset, x-ratelimit-scope, \
    x-budget-remaining-usd, x-budget-limit-usd, deprecation, x-model-deprecated-successor";

/// Request headers allowed when a preflight does not list the ones it wants.
const ALLOWED_HEADERS: &str = "authorization, content-type, api-key, x-api-key, \
    x-request-source, x-correlation-id, openai-organization, openai-project, openai-beta";

/// What the `Origin` of a request means for it.
#[derive(Debug, PartialEq)]
pub enum Access {
    /// No `Origin`: not a browser.
    NotBrowser,
    /// A page kt allows (its origin).
    Allowed(String),
    /// A page kt does not allow.
    Refused(ApiError),
}

/// Decides on a request's `Origin` header under `spec` (the default configuration's
/// `gateway.cors`; `None`: the defaults, which allow only pages on this machine).
pub fn access(origin: Option<&str>, spec: Option<&CorsSpec>) -> Access {
    let Some(origin) = origin else {
        return Access::NotBrowser;
    };
    if allows(spec, origin) {
        Access::Allowed(origin.to_string())
    } else {
        Access::Refused(refused(origin))
    }
}

fn allows(spec: Option<&CorsSpec>, origin: &str) -> bool {
    let localhost = spec.and_then(|s| s.allow_localhost).unwrap_or(true);
    let listed = spec.map_or(&[][..], |s| &s.allowed_origins[..]);
    (localhost && is_local(origin))
        || listed
            .iter()
            .any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

fn refused(origin: &str) -> ApiError {
    let shown: String = origin.chars().take(200).collect();
    ApiError::new(
        403,
        "invalid_request_error",
        Some("origin_not_allowed"),
        format!(
            "Requests from web pages at `{shown}` are not allowed by this gateway. To let a \
             browser app call kt, add its origin to `gateway.cors.allowed_origins`."
        ),
    )
    .not_retryable()
}

/// The headers every answer to an allowed page carries.
pub fn answer_headers(origin: &str) -> Vec<(String, String)> {
    vec![
        ("Access-Control-Allow-Origin".into(), origin.to_string()),
        ("Access-Control-Expose-Headers".into(), EXPOSED.into()),
        ("Vary".into(), "Origin".into()),
    ]
}

/// Whether a request is a CORS preflight: `OPTIONS` asking for a method.
pub fn is_preflight(method: &str, request_method: Option<&str>) -> bool {
    method == "OPTIONS" && request_method.is_some()
}

/// The preflight answer's headers for an allowed page: the methods, the request headers
/// it asked for (when they are a list of header names), how long to cache it, and
/// private-network access when Chrome asks for it (a public page calling a local kt).
pub fn preflight_headers(
    origin: &str,
    requested_headers: Option<&str>,
    private_network: bool,
    spec: Option<&CorsSpec>,
) -> Vec<(String, String)> {
    let max_age = spec
        .and_then(|s| s.max_age_seconds)
        .unwrap_or(DEFAULT_MAX_AGE);
    let headers = requested_headers
        .filter(|h| is_name_list(h))
        .unwrap_or(ALLOWED_HEADERS);
    let mut out = vec![
        ("Access-Control-Allow-Origin".into(), origin.to_string()),
        (
            "Access-Control-Allow-Methods".into(),
            "GET, POST, OPTIONS".into(),
        ),
        ("Access-Control-Allow-Headers".into(), headers.to_string()),
        ("Access-Control-Max-Age".into(), max_age.to_string()),
        (
            "Vary".into(),
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers".into(),
        ),
    ];
    if private_network {
        out.push(("Access-Control-Allow-Private-Network".into(), "true".into()));
    }
    out
}

/// `a, b-c, X-D`: header names (HTTP tokens) separated by commas.
fn is_name_list(s: &str) -> bool {
    !s.trim().is_empty()
        && s.split(',').all(|name| {
            let name = name.trim();
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        })
}

/// A page served from this machine: `http(s)://` and `localhost` (or a name under it),
/// a `127.x.x.x` address or `[::1]`, with any port.
fn is_local(origin: &str) -> bool {
    let Some((host, _)) = origin::parse(origin) else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any `Origin` a client can send gets an answer: a local-looking one is allowed
        /// only when it parses as `scheme://host[:port]`, a refusal names at most 200
        /// characters of it.
        #[test]
        fn any_origin_is_decided(origin in "(?s)(https?://)?(\\[?[a-z0-9.:\\]]{0,12}|localhost|127\\.0\\.0\\.1)(:[0-9]{0,6})?.{0,4}") {
            match access(Some(&origin), None) {
                Access::Allowed(o) => prop_assert!(origin::parse(&o).is_some(), "{o}"),
                Access::Refused(e) => prop_assert!(e.body.message.chars().count() < 400),
                Access::NotBrowser => prop_assert!(false),
            }
        }
    }

    fn spec(origins: &[&str], localhost: Option<bool>) -> CorsSpec {
        CorsSpec {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allow_localhost: localhost,
            max_age_seconds: None,
        }
    }

    #[test]
    fn no_origin_is_not_a_browser() {
        assert_eq!(access(None, None), Access::NotBrowser);
    }

    #[test]
    fn by_default_only_pages_on_this_machine_are_allowed() {
        for o in [
            "http://localhost:5173",
            "http://localhost",
            "https://app.localhost:8443",
            "http://127.0.0.1:3000",
            "http://127.1.2.3",
            "http://[::1]:8080",
        ] {
            assert!(matches!(access(Some(o), None), Access::Allowed(_)), "{o}");
        }
        for o in [
            "https://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "null",
            "file://",
            "http://localhost:5173/path",
            "http://user@localhost",
            "",
        ] {
            let Access::Refused(e) = access(Some(o), None) else {
                panic!("{o} was allowed");
            };
            assert_eq!(e.status, 403);
            assert_eq!(e.body.code, Some(serde_json::json!("origin_not_allowed")));
            assert!(e.body.message.contains("gateway.cors.allowed_origins"));
        }
    }

    #[test]
    fn listed_origins_are_allowed_and_localhost_can_be_turned_off() {
        let s = spec(
            &["https://app.example.com", "http://intranet:8080/"],
            Some(false),
        );
        assert!(matches!(
            access(Some("https://app.example.com"), Some(&s)),
            Access::Allowed(_)
        ));
        assert!(matches!(
            access(Some("https://APP.example.com"), Some(&s)),
            Access::Allowed(_)
        ));
        assert!(matches!(
            access(Some("http://intranet:8080"), Some(&s)),
            Access::Allowed(_)
        ));
        for o in [
            "https://app.example.com:444",
            "http://app.example.com",
            "http://localhost:5173",
        ] {
            assert!(
                matches!(access(Some(o), Some(&s)), Access::Refused(_)),
                "{o}"
            );
        }
        let any = spec(&["*"], Some(false));
        assert!(matches!(
            access(Some("https://anything.example"), Some(&any)),
            Access::Allowed(_)
        ));
    }

    #[test]
    fn a_long_origin_is_shortened_in_the_message() {
        let long = format!("https://{}.example", "a".repeat(5000));
        let Access::Refused(e) = access(Some(&long), None) else {
            panic!()
        };
        assert!(e.body.message.len() < 500);
    }

    #[test]
    fn preflight_echoes_header_names_only() {
        let h = preflight_headers(
            "http://localhost:1",
            Some("authorization, x-stainless-os"),
            false,
            None,
        );
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(
            get("Access-Control-Allow-Headers"),
            Some("authorization, x-stainless-os")
        );
        assert_eq!(get("Access-Control-Max-Age"), Some("600"));
        assert_eq!(get("Access-Control-Allow-Private-Network"), None);
        let h = preflight_headers("http://localhost:1", Some("a b\r\nx: y"), true, None);
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("Access-Control-Allow-Headers"), Some(ALLOWED_HEADERS));
        assert_eq!(get("Access-Control-Allow-Private-Network"), Some("true"));
        assert!(is_preflight("OPTIONS", Some("POST")));
        assert!(!is_preflight("OPTIONS", None));
        assert!(!is_preflight("POST", Some("POST")));
    }
}
