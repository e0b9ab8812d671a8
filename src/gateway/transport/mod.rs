//! The one upstream transport: a ureq agent with a keep-alive pool, shared by all workers.

mod tcp;

use std::io::Read;
use std::time::Duration;

use ureq::unversioned::transport::{ConnectProxyConnector, Connector, RustlsConnector};
use ureq::Agent;

use crate::openai::ApiError;
use crate::providers::UpstreamRequest;

/// Largest upstream (non-streaming) body kt reads.
pub const MAX_UPSTREAM_BODY: u64 = 64 * 1024 * 1024;

/// Largest buffer `read_all` sets aside from a `Content-Length` before reading.
const READ_ALL_PRESIZE_MAX: u64 = 1024 * 1024;

/// The agent for upstream calls. Fails when `SSL_CERT_FILE` is set but unusable.
pub fn agent() -> Result<Agent, String> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(roots) = root_certs()? {
        tls = tls.root_certs(roots);
    }
    let config = Agent::config_builder()
        .tls_config(tls.build())
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
        .max_response_header_size(32 * 1024)
        .build();
    // ureq's default chain (HTTP CONNECT proxy, TCP, rustls) with our TCP layer, which
    // spends fewer syscalls per request (tcp.rs).
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(tcp::TcpConnector)
            .chain(RustlsConnector::default());
    Ok(Agent::with_parts(
        config,
        connector,
        super::resolver::CachingResolver::default(),
    ))
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
    /// As ureq parsed them: copied out as strings only when asked (error answers).
    headers: http::HeaderMap,
    pub body: ureq::Body,
}

impl UpstreamResponse {
    /// The first value of header `name` (any case) that is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(name)
            .iter()
            .find_map(|v| v.to_str().ok())
    }

    /// Every header whose value is text, in order, as (name, value).
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_string(), v.to_string()))
            })
            .collect()
    }

    /// Reads the whole body (bounded).
    pub fn read_all(mut self) -> Result<Vec<u8>, ApiError> {
        // What `read_to_vec` does, into a buffer sized from `Content-Length` (capped, so a
        // header cannot make kt allocate much before the bytes come): fewer, larger reads.
        let capacity = self
            .body
            .content_length()
            .map_or(0, |n| n.min(READ_ALL_PRESIZE_MAX));
        let mut buf = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        self.body
            .with_config()
            .limit(MAX_UPSTREAM_BODY)
            .reader()
            .read_to_end(&mut buf)
            .map_err(|e| map_error(&ureq::Error::from(e)))?;
        Ok(buf)
    }

    pub fn into_reader(self) -> impl Read {
        self.body.into_reader()
    }
}

/// Sends a request. `timeout` bounds a non-streaming call end to end; for a stream it
/// bounds the wait for the response head and for each read (stall detection).
pub fn send(
    agent: &Agent,
    up: &UpstreamRequest,
    timeout: Duration,
    stream: bool,
) -> Result<UpstreamResponse, ApiError> {
    let mut builder = agent.post(&up.url);
    for (k, v) in &up.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let builder = if stream {
        builder
            .config()
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .build()
    } else {
        builder.config().timeout_global(Some(timeout)).build()
    };
    let resp = builder.send(&up.body[..]).map_err(|e| map_error(&e))?;
    let (head, body) = resp.into_parts();
    Ok(UpstreamResponse {
        status: head.status.as_u16(),
        headers: head.headers,
        body,
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
