//! Name resolution for upstream calls, cached.
//!
//! ureq resolves the host of every request before it looks in its connection pool, and
//! with a timeout configured its default resolver runs each lookup on a freshly spawned
//! thread — a thread per upstream call, even for `127.0.0.1` and even when a pooled
//! connection is then reused. This resolver answers IP literals at once and keeps names
//! for `TTL`, so the hot path never spawns a thread; a miss goes to ureq's own resolver
//! (with its timeout). The `Resolver` trait is in ureq's `unversioned` API: see
//! docs/ARCHITECTURE.md.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a resolved name is reused.
const TTL: Duration = Duration::from_secs(30);
/// Names kept at most (targets are few; this only bounds a pathological config).
const MAX_NAMES: usize = 1024;

/// Clones share the name cache (the upstream agents, one per timeout setting, all use
/// one; `transport::Agents`).
#[derive(Debug, Default)]
pub struct CachingResolver {
    inner: DefaultResolver,
    names: Arc<RwLock<HashMap<String, (Instant, ResolvedSocketAddrs)>>>,
}

impl Clone for CachingResolver {
    fn clone(&self) -> CachingResolver {
        CachingResolver {
            // Stateless: nothing to share.
            inner: DefaultResolver::default(),
            names: Arc::clone(&self.names),
        }
    }
}

fn default_port(uri: &Uri) -> u16 {
    if uri.scheme_str() == Some("https") {
        443
    } else {
        80
    }
}

impl CachingResolver {
    /// The addresses of `host` (an IP literal or a name) for kt's own client
    /// (`transport/plain.rs`), through the same cache; a miss waits at most 10 s.
    pub fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let uri: Uri = format!("http://{host}:{port}/")
            .parse()
            .map_err(|e| format!("invalid host `{host}`: {e}"))?;
        let timeout = NextTimeout {
            after: Duration::from_secs(10).into(),
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        };
        self.resolve(&uri, &Config::default(), timeout)
            .map(|addrs| addrs.iter().copied().collect())
            .map_err(|e| format!("cannot resolve `{host}`: {e}"))
    }
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let Some(authority) = uri.authority() else {
            return self.inner.resolve(uri, config, timeout);
        };
        let port = authority.port_u16().unwrap_or_else(|| default_port(uri));
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            let mut out = self.empty();
            out.push(SocketAddr::new(ip, port));
            return Ok(out);
        }
        let key = format!("{host}:{port}");
        if let Ok(names) = self.names.read() {
            if let Some((at, addrs)) = names.get(&key) {
                if at.elapsed() < TTL {
                    return Ok(addrs.clone());
                }
            }
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        if let Ok(mut names) = self.names.write() {
            if names.len() >= MAX_NAMES {
                names.retain(|_, (at, _)| at.elapsed() < TTL);
            }
            if names.len() < MAX_NAMES {
                names.insert(key, (Instant::now(), addrs.clone()));
            }
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(r: &CachingResolver, url: &str) -> Vec<SocketAddr> {
        let uri: Uri = url.parse().unwrap();
        let config = Config::default();
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::NotHappening,
            reason: ureq::Timeout::Global,
            per_read: None,
            per_write: None,
        };
        r.resolve(&uri, &config, timeout)
            .unwrap()
            .iter()
            .copied()
            .collect()
    }

    #[test]
    fn ip_literals_resolve_without_a_lookup() {
        let r = CachingResolver::default();
        assert_eq!(
            resolve(&r, "http://127.0.0.1:8080/v1"),
            vec!["127.0.0.1:8080".parse().unwrap()]
        );
        assert_eq!(
            resolve(&r, "https://[::1]/v1"),
            vec!["[::1]:443".parse().unwrap()]
        );
        assert_eq!(
            resolve(&r, "http://10.0.0.1/x"),
            vec!["10.0.0.1:80".parse().unwrap()]
        );
        assert!(
            r.names.read().unwrap().is_empty(),
            "literals are not cached"
        );
    }

    #[test]
    fn names_are_cached() {
        let r = CachingResolver::default();
        let first = resolve(&r, "http://localhost:9/v1");
        assert!(!first.is_empty());
        assert!(first.iter().all(|a| a.port() == 9 && a.ip().is_loopback()));
        assert!(r.names.read().unwrap().contains_key("localhost:9"));
        assert_eq!(resolve(&r, "http://localhost:9/other"), first);
    }

    /// kt's own client's lookups: literals at once, names through the same cache.
    #[test]
    fn lookups_share_the_cache() {
        let r = CachingResolver::default();
        assert_eq!(
            r.lookup("::1", 8080).unwrap(),
            vec!["[::1]:8080".parse().unwrap()]
        );
        let names = r.lookup("localhost", 9).unwrap();
        assert!(!names.is_empty());
        assert!(names.iter().all(|a| a.port() == 9 && a.ip().is_loopback()));
        assert!(r.names.read().unwrap().contains_key("localhost:9"));
        assert_eq!(resolve(&r, "http://localhost:9/"), names);
        let e = r.lookup("no such host.invalid", 80).unwrap_err();
        assert!(e.contains("no such host.invalid"), "{e}");
    }
}
