//! The upstream transport, shared by all workers: kt's own HTTP/1.1 client for plain
//! `http://` upstreams (`plain.rs`) and ureq agents for the rest (`https://`, proxies).

mod plain;
mod tcp;

use std::io::Read;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ureq::unversioned::transport::{ConnectProxyConnector, Connector, RustlsConnector};
use ureq::Agent;

use super::resolver::CachingResolver;

use crate::openai::ApiError;
use crate::providers::UpstreamRequest;

/// Largest upstream (non-streaming) body kt reads.
pub const MAX_UPSTREAM_BODY: u64 = 64 * 1024 * 1024;

/// Largest buffer `read_all` sets aside from a `Content-Length` before reading.
const READ_ALL_PRESIZE_MAX: u64 = 1024 * 1024;

/// The agents for upstream calls: one per timeout setting, sharing the name cache.
///
/// Why not one agent with each call's timeout set on the request (`RequestBuilder::config`),
/// as before: ureq then clones its whole `Config` into the request (and checks whether the
/// copy may share the pool) on every call — about 8 µs of CPU per call, a third of what
/// ureq costs over a bare socket (bench/RESULTS.md, seventh session). Timeouts come from
/// the configuration, so there are few distinct ones: an agent (and a connection pool)
/// for each costs nothing per call. Past [`MAX_AGENTS`] distinct timeouts, calls go back
/// to the per-request setting on the base agent.
#[derive(Clone)]
pub struct Agents(Arc<AgentsInner>);

struct AgentsInner {
    tls: ureq::tls::TlsConfig,
    /// One name cache for all the agents (clones share it).
    resolver: CachingResolver,
    /// No timeouts of its own but the connect one: probes, and calls past `MAX_AGENTS`.
    base: Agent,
    by_timeout: RwLock<Vec<(Timeouts, Agent)>>,
    /// kt's own client's connection pool; `None` when the environment configures a proxy
    /// (ureq applies it, with `NO_PROXY`), so that every call goes through ureq.
    plain: Option<Arc<plain::Pool>>,
}

/// How a call's time is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timeouts {
    /// End to end (a non-streaming call).
    Call(Duration),
    /// The wait for the response head and for each read (a stream: stall detection).
    Stream(Duration),
}

/// Distinct timeout settings with an agent of their own.
const MAX_AGENTS: usize = 32;

impl Agents {
    /// Fails when `SSL_CERT_FILE` is set but unusable.
    pub fn new() -> Result<Agents, String> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(roots) = root_certs()? {
            tls = tls.root_certs(roots);
        }
        let tls = tls.build();
        let resolver = CachingResolver::default();
        let base = agent(&tls, &resolver, None);
        let plain = ureq::Proxy::try_from_env()
            .is_none()
            .then(|| Arc::new(plain::Pool::default()));
        Ok(Agents(Arc::new(AgentsInner {
            tls,
            resolver,
            base,
            by_timeout: RwLock::new(Vec::new()),
            plain,
        })))
    }

    /// The agent without call timeouts (set them on the request).
    pub fn base(&self) -> &Agent {
        &self.0.base
    }

    /// The agent whose configuration holds `timeouts`, made on first use; `None` past
    /// `MAX_AGENTS`.
    fn with(&self, timeouts: Timeouts) -> Option<Agent> {
        let inner = &self.0;
        let find = |list: &[(Timeouts, Agent)]| {
            list.iter()
                .find(|(t, _)| *t == timeouts)
                .map(|(_, a)| a.clone())
        };
        if let Some(a) = inner.by_timeout.read().ok().and_then(|l| find(&l)) {
            return Some(a);
        }
        let mut list = inner.by_timeout.write().ok()?;
        if let Some(a) = find(&list) {
            return Some(a);
        }
        if list.len() >= MAX_AGENTS {
            return None;
        }
        let a = agent(&inner.tls, &inner.resolver, Some(timeouts));
        list.push((timeouts, a.clone()));
        Some(a)
    }

    #[cfg(test)]
    fn count(&self) -> usize {
        self.0.by_timeout.read().map_or(0, |l| l.len())
    }
}

/// `Timeouts` on a ureq `ConfigBuilder`, of an agent or of one request (a macro: the
/// builder's scope parameter is bounded by a trait ureq does not export).
macro_rules! with_timeouts {
    ($builder:expr, $timeouts:expr) => {
        match $timeouts {
            Timeouts::Call(t) => $builder.timeout_global(Some(t)),
            Timeouts::Stream(t) => $builder
                .timeout_recv_response(Some(t))
                .timeout_per_read(Some(t)),
        }
    };
}

/// An agent with kt's settings and, if given, call timeouts.
fn agent(
    tls: &ureq::tls::TlsConfig,
    resolver: &CachingResolver,
    timeouts: Option<Timeouts>,
) -> Agent {
    let config = Agent::config_builder()
        .tls_config(tls.clone())
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .max_idle_connections(512)
        .max_idle_connections_per_host(256)
        .max_idle_age(Duration::from_secs(60))
        // Never follow a redirect: an upstream must not send a request (and its key)
        // to another host.
        .max_redirects(0)
        .max_redirects_will_error(false)
        .user_agent("keeptrusts-kt")
        .accept_encoding("identity")
        // ureq's default buffers are 128 KiB each way per connection: with thousands of
        // open streams that alone is hundreds of MiB. Provider heads are a few KiB;
        // bodies stream through the buffers.
        .input_buffer_size(32 * 1024)
        .output_buffer_size(16 * 1024)
        .max_response_header_size(32 * 1024);
    let config = match timeouts {
        None => config,
        Some(t) => with_timeouts!(config, t),
    };
    // ureq's default chain (HTTP CONNECT proxy, TCP, rustls) with our TCP layer, which
    // spends fewer syscalls per request (tcp.rs).
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(tcp::TcpConnector)
            .chain(RustlsConnector::default());
    Agent::with_parts(config.build(), connector, resolver.clone())
}

/// The roots upstream certificates are checked against: the bundled Mozilla roots, or —
/// with `SSL_CERT_FILE` set, as curl and OpenSSL read it — the PEM certificates in that
/// file instead (a private CA, a TLS-inspecting corporate proxy).
fn root_certs() -> Result<Option<ureq::tls::RootCerts>, String> {
    Ok(ssl_cert_file()?.map(|certs| ureq::tls::RootCerts::new_with_certs(&certs)))
}

/// The certificates of `SSL_CERT_FILE` when it is set (also the realtime relay's roots).
pub fn ssl_cert_file() -> Result<Option<Vec<ureq::tls::Certificate<'static>>>, String> {
    let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let path = std::path::Path::new(&path);
    let unusable = |why: String| {
        format!(
            "SSL_CERT_FILE={}: {why}; point it at a PEM file of CA certificates, or unset it \
             to use the bundled roots",
            path.display()
        )
    };
    let pem = std::fs::read(path).map_err(|e| unusable(format!("cannot read it ({e})")))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(unusable(format!("not valid PEM ({e})"))),
        }
    }
    if certs.is_empty() {
        return Err(unusable("no certificate in it".to_string()));
    }
    Ok(Some(certs))
}

/// An upstream answer whose body has not been read yet.
pub struct UpstreamResponse {
    pub status: u16,
    /// Copied out as strings only when asked (error answers).
    headers: Headers,
    body: Body,
}

enum Headers {
    /// As ureq parsed them.
    Map(http::HeaderMap),
    /// The head's bytes, from kt's own client.
    Raw(plain::RawHeaders),
}

enum Body {
    Ureq(ureq::Body),
    /// From kt's own client; `gzip`: `Content-Encoding: gzip`, decoded as it is read.
    Plain {
        body: Box<plain::PlainBody>,
        gzip: bool,
    },
}

/// A response body as a reader (decoded).
pub enum BodyReader {
    Ureq(ureq::BodyReader<'static>),
    Plain(Box<plain::PlainBody>),
    Gzip(Box<flate2::read::MultiGzDecoder<Box<plain::PlainBody>>>),
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            BodyReader::Ureq(r) => r.read(buf),
            BodyReader::Plain(r) => r.read(buf),
            BodyReader::Gzip(r) => r.read(buf),
        }
    }
}

impl UpstreamResponse {
    /// An answer of kt's own client. A gzip body is decoded as it is read, so its length
    /// and encoding headers no longer describe it (left out, as ureq drops them).
    fn plain(
        status: u16,
        headers: plain::RawHeaders,
        body: Box<plain::PlainBody>,
        gzip: bool,
    ) -> Self {
        UpstreamResponse {
            status,
            headers: Headers::Raw(headers),
            body: Body::Plain { body, gzip },
        }
    }

    /// The first value of header `name` (any case) that is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        match &self.headers {
            Headers::Map(map) => map.get_all(name).iter().find_map(|v| v.to_str().ok()),
            Headers::Raw(raw) => raw.get(name),
        }
    }

    /// Every header whose value is text, in order, as (name, value).
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        match &self.headers {
            Headers::Map(map) => map
                .iter()
                .filter_map(|(k, v)| {
                    v.to_str()
                        .ok()
                        .map(|v| (k.as_str().to_string(), v.to_string()))
                })
                .collect(),
            Headers::Raw(raw) => raw.pairs(),
        }
    }

    /// Reads the whole body (bounded).
    pub fn read_all(self) -> Result<Vec<u8>, ApiError> {
        match self.body {
            Body::Ureq(mut body) => {
                // What `read_to_vec` does, into a buffer sized from `Content-Length`
                // (capped, so a header cannot make kt allocate much before the bytes
                // come): fewer, larger reads.
                let mut buf = presized(body.content_length());
                body.with_config()
                    .limit(MAX_UPSTREAM_BODY)
                    .reader()
                    .read_to_end(&mut buf)
                    .map_err(|e| map_error(&ureq::Error::from(e)))?;
                Ok(buf)
            }
            Body::Plain { body, gzip } => {
                let mut buf = presized(body.content_length().filter(|_| !gzip));
                let reader = if gzip {
                    BodyReader::Gzip(Box::new(flate2::read::MultiGzDecoder::new(body)))
                } else {
                    BodyReader::Plain(body)
                };
                reader
                    .take(MAX_UPSTREAM_BODY + 1)
                    .read_to_end(&mut buf)
                    .map_err(|e| plain::api_error(&e))?;
                if buf.len() as u64 > MAX_UPSTREAM_BODY {
                    return Err(ApiError::bad_gateway(format!(
                        "upstream request failed: the body is over the gateway's limit of \
                         {} MiB",
                        MAX_UPSTREAM_BODY >> 20
                    )));
                }
                Ok(buf)
            }
        }
    }

    pub fn into_reader(self) -> BodyReader {
        match self.body {
            Body::Ureq(body) => BodyReader::Ureq(body.into_reader()),
            Body::Plain { body, gzip: false } => BodyReader::Plain(body),
            Body::Plain { body, gzip: true } => {
                BodyReader::Gzip(Box::new(flate2::read::MultiGzDecoder::new(body)))
            }
        }
    }
}

/// A buffer for a body of `length` (capped at `READ_ALL_PRESIZE_MAX`).
fn presized(length: Option<u64>) -> Vec<u8> {
    let capacity = length.map_or(0, |n| n.min(READ_ALL_PRESIZE_MAX));
    Vec::with_capacity(usize::try_from(capacity).unwrap_or(0))
}

/// Sends a request. `timeout` bounds a non-streaming call end to end; for a stream it
/// bounds the wait for the response head and for each read (stall detection).
pub fn send(
    agents: &Agents,
    up: &UpstreamRequest,
    timeout: Duration,
    stream: bool,
) -> Result<UpstreamResponse, ApiError> {
    let timeouts = if stream {
        Timeouts::Stream(timeout)
    } else {
        Timeouts::Call(timeout)
    };
    if let (Some(pool), Some(url)) = (&agents.0.plain, plain::parse_url(&up.url)) {
        return plain::send(pool, &agents.0.resolver, up, &url, timeouts);
    }
    let post = |agent: &Agent| {
        let mut builder = agent.post(&up.url);
        for (k, v) in &up.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        builder
    };
    let resp = match agents.with(timeouts) {
        Some(agent) => post(&agent).send(&up.body[..]),
        None => with_timeouts!(post(agents.base()).config(), timeouts)
            .build()
            .send(&up.body[..]),
    }
    .map_err(|e| map_error(&e))?;
    let (head, body) = resp.into_parts();
    Ok(UpstreamResponse {
        status: head.status.as_u16(),
        headers: Headers::Map(head.headers),
        body: Body::Ureq(body),
    })
}

/// Maps a transport failure to the client's error: 504 for timeouts, 502 otherwise.
pub fn map_error(e: &ureq::Error) -> ApiError {
    match e {
        ureq::Error::Timeout(_) => ApiError::upstream_timeout(format!("upstream timed out ({e})")),
        ureq::Error::Io(io)
            if io.kind() == std::io::ErrorKind::TimedOut
                || io.kind() == std::io::ErrorKind::WouldBlock =>
        {
            ApiError::upstream_timeout(format!("upstream timed out ({io})"))
        }
        ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            ApiError::upstream_unreachable(format!("upstream unreachable: {e}"))
        }
        _ => ApiError::bad_gateway(format!("upstream request failed: {e}")),
    }
}

/// Whether an error happened before any upstream answer (a connection problem), so trying
/// another target is safe.
pub fn is_connect_error(e: &ApiError) -> bool {
    e.status == 502 && e.code_str() == Some("upstream_unreachable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_with_one_timeout_share_an_agent_and_its_pool() {
        let agents = Agents::new().unwrap();
        let a = agents
            .with(Timeouts::Call(Duration::from_secs(30)))
            .unwrap();
        let b = agents
            .with(Timeouts::Call(Duration::from_secs(30)))
            .unwrap();
        assert_eq!(agents.count(), 1);
        // The same agent: a clone of it, with the same configuration object.
        assert!(std::ptr::eq(a.config(), b.config()));
        let s = agents
            .with(Timeouts::Stream(Duration::from_secs(30)))
            .unwrap();
        assert_eq!(agents.count(), 2);
        assert!(!std::ptr::eq(a.config(), s.config()));
        assert_eq!(s.config().timeout_per_read(), Some(Duration::from_secs(30)));
        assert_eq!(a.config().timeouts().global, Some(Duration::from_secs(30)));
    }

    #[test]
    fn past_the_cap_calls_fall_back_to_the_base_agent() {
        let agents = Agents::new().unwrap();
        for i in 0..MAX_AGENTS {
            let secs = u64::try_from(i).unwrap() + 1;
            assert!(agents
                .with(Timeouts::Call(Duration::from_secs(secs)))
                .is_some());
        }
        assert!(agents
            .with(Timeouts::Call(Duration::from_secs(999)))
            .is_none());
        // Known ones are still served.
        assert!(agents
            .with(Timeouts::Call(Duration::from_secs(1)))
            .is_some());
        assert_eq!(agents.count(), MAX_AGENTS);
    }
}
