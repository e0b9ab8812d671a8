//! Errors a user can act on: printed like `kt`'s other errors (`error: …`, then one
//! `  caused by: …` per source) followed by a `hint: …` with the command or flag that fixes
//! it. Commands print these themselves and return a failure exit status.

use std::io::Write;

/// Prints `err` with its causes and an optional hint to standard error.
pub fn print(err: &anyhow::Error, hint: Option<&str>) {
    let mut stderr = std::io::stderr().lock();
    // Standard error is the last channel left; if it is gone there is no one to tell.
    let _ = writeln!(stderr, "error: {err}");
    for cause in err.chain().skip(1) {
        let _ = writeln!(stderr, "  caused by: {cause}");
    }
    if let Some(h) = hint {
        let _ = writeln!(stderr, "hint: {h}");
    }
}

/// Whether a URL points at this machine (no proxy should be used to reach it).
pub fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An HTTP agent for talking to a gateway: errors as values (their bodies matter), the
/// given per-read timeout, and no proxy for loopback addresses.
pub fn agent(url: &str, per_read: Option<std::time::Duration>) -> ureq::Agent {
    let mut cfg = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(std::time::Duration::from_secs(10)))
        .timeout_per_read(per_read)
        .user_agent(concat!("kt/", env!("CARGO_PKG_VERSION")));
    if is_loopback(url) {
        cfg = cfg.proxy(None);
    }
    cfg.build().into()
}

/// The hint for a failure to reach the gateway at `url`, if the error says what it was.
pub fn unreachable_hint(err: &ureq::Error) -> Option<&'static str> {
    match err {
        ureq::Error::Io(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::AddrNotAvailable
            ) =>
        {
            Some("is the gateway running? start it with `kt gateway run`")
        }
        ureq::Error::ConnectionFailed => {
            Some("is the gateway running? start it with `kt gateway run`")
        }
        ureq::Error::HostNotFound | ureq::Error::BadUri(_) => {
            Some("check the gateway URL (e.g. `--url http://127.0.0.1:41002/v1`)")
        }
        ureq::Error::Timeout(_) => Some("the gateway did not answer in time; is it overloaded?"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_urls() {
        for u in [
            "http://127.0.0.1:41002/v1",
            "http://localhost/v1",
            "http://[::1]:8080",
            "127.0.0.2:9",
        ] {
            assert!(super::is_loopback(u), "{u}");
        }
        for u in ["https://gw.example.com/v1", "http://10.0.0.1:41002"] {
            assert!(!super::is_loopback(u), "{u}");
        }
    }
}
