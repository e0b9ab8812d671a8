//! Web origins (`scheme://host[:port]`), as browsers send them in `Origin` and as
//! `gateway.cors.allowed_origins` lists them.

/// Splits `scheme://host[:port]` into the host and the port; `None` for anything else
/// (a path, a query, credentials, another scheme).
pub fn parse(origin: &str) -> Option<(&str, Option<u16>)> {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))?;
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let end = v6.find(']')?;
            let after = &v6[end + 1..];
            (&rest[..end + 2], after)
        }
        None => match rest.find(':') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        },
    };
    let port = match port.strip_prefix(':') {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None if port.is_empty() => None,
        None => return None,
    };
    let valid_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
    valid_host.then_some((host, port))
}

/// Why an `allowed_origins` entry is not an origin (for validation), or `None`.
pub fn invalid_origin(entry: &str) -> Option<String> {
    if entry == "*" || entry == "null" {
        return None;
    }
    if !(entry.starts_with("http://") || entry.starts_with("https://")) {
        return Some("an origin starts with `http://` or `https://`".to_string());
    }
    let entry = entry.strip_suffix('/').unwrap_or(entry);
    let rest = entry.split_once("://").map_or("", |(_, r)| r);
    if let Some(i) = rest.find(['/', '?', '#']) {
        let (_, path) = rest.split_at(i);
        return Some(format!(
            "an origin has no path: drop `{path}` (a browser sends only scheme, host and port)"
        ));
    }
    if parse(entry).is_none() {
        return Some("it is not `scheme://host[:port]`".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_entries_must_be_origins() {
        for ok in [
            "*",
            "null",
            "https://app.example.com",
            "http://localhost:5173",
            "http://[::1]:80",
            "http://intranet:8080/",
        ] {
            assert_eq!(invalid_origin(ok), None, "{ok}");
        }
        assert!(invalid_origin("app.example.com")
            .unwrap()
            .contains("http://"));
        assert!(invalid_origin("https://app.example.com/chat")
            .unwrap()
            .contains("drop `/chat`"));
        assert!(invalid_origin("https://app.example.com:port").is_some());
        assert!(invalid_origin("https://").is_some());
    }
}
