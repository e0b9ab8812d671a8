//! The provider side of a realtime session: which targets can serve one, their WebSocket
//! URL, and the connection (TCP with a deadline, TLS for `wss://`, the WebSocket
//! handshake) carrying the target's credential.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Response;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{HandshakeError, WebSocket};

use crate::config::schema::{ProviderKind, WireFormat};
use crate::config::Target;
use crate::gateway::auth::ClientKey;
use crate::openai::ApiError;
use crate::providers;

/// The provider connection of a session.
pub type UpstreamSocket = WebSocket<MaybeTlsStream<TcpStream>>;

/// Query values keep `-`, `.`, `_`, `~` (RFC 3986 unreserved) and encode the rest.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Whether `target` speaks OpenAI's realtime WebSocket protocol at
/// `<base_url>/realtime`: OpenAI and the OpenAI-format vendors. Azure OpenAI's realtime
/// URL has another shape (deployments, `api-version`) and is not supported yet.
pub fn is_realtime_capable(target: &Target) -> bool {
    target.format == WireFormat::Openai
        && match target.kind {
            ProviderKind::Openai
            | ProviderKind::OpenaiCompatible
            | ProviderKind::Groq
            | ProviderKind::Mistral
            | ProviderKind::Together
            | ProviderKind::Fireworks => true,
            ProviderKind::AzureOpenai
            | ProviderKind::Anthropic
            | ProviderKind::Gemini
            | ProviderKind::Bedrock
            | ProviderKind::Cohere
            | ProviderKind::Mock => false,
        }
}

/// `<base_url>/realtime?model=<target model>` with `http` → `ws`, `https` → `wss`.
pub fn url(target: &Target) -> Result<String, ApiError> {
    let base = target.base_url.trim_end_matches('/');
    let rest = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if base.starts_with("wss://") || base.starts_with("ws://") {
        base.to_string()
    } else {
        return Err(ApiError::internal(format!(
            "target `{}` has a `base_url` that is not http(s): `{base}`",
            target.id
        )));
    };
    Ok(format!(
        "{rest}/realtime?model={}",
        utf8_percent_encode(&target.model, QUERY)
    ))
}

/// What the client asked for that the provider must see too.
#[derive(Debug, Clone, Default)]
pub struct Forward {
    /// `OpenAI-Beta` as the client sent it.
    pub openai_beta: Option<String>,
    /// `Sec-WebSocket-Protocol` as the client offered it (gateway keys removed).
    pub protocols: Option<String>,
    /// The client's own provider key (with its account headers), used when the target
    /// has no credential.
    pub client_key: Option<ClientKey>,
}

/// Why a connection attempt failed.
#[derive(Debug)]
pub enum ConnectError {
    /// No connection (DNS, TCP, TLS, timeout, a broken handshake): another target may work.
    Transport(ApiError),
    /// The provider answered the upgrade with an HTTP status. `retryable`: 429 or 5xx.
    Refused { error: ApiError, retryable: bool },
}

/// Opens the WebSocket to `target`. Every step is bounded by the target's `timeout`.
pub fn connect(
    target: &Target,
    forward: &Forward,
    config: WebSocketConfig,
) -> Result<(UpstreamSocket, Response), ConnectError> {
    let url = url(target).map_err(ConnectError::Transport)?;
    let mut request = url.as_str().into_client_request().map_err(|e| {
        ConnectError::Transport(ApiError::internal(format!(
            "invalid realtime URL for target `{}`: {e}",
            target.id
        )))
    })?;
    let headers = request.headers_mut();
    let mut put = |name: &str, value: &str| {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(n, v);
        }
    };
    // Realtime targets all speak OpenAI's format (`is_realtime_capable`): the client's
    // account headers go with its key.
    let (key, account) = crate::gateway::auth::upstream_key(target, forward.client_key.as_ref());
    if let Some(key) = key {
        put(
            &target.api_key_header,
            &format!("{}{key}", target.api_key_prefix),
        );
    }
    for (k, v) in account {
        put(k, v);
    }
    if let Some(beta) = &forward.openai_beta {
        put("OpenAI-Beta", beta);
    }
    if let Some(p) = &forward.protocols {
        put("Sec-WebSocket-Protocol", p);
    }
    for (k, v) in &target.headers {
        put(k, v);
    }

    let host = request.uri().host().unwrap_or_default().to_string();
    let port = request
        .uri()
        .port_u16()
        .unwrap_or(if url.starts_with("wss://") { 443 } else { 80 });
    let tcp = tcp_connect(&host, port, target.timeout).map_err(|e| {
        ConnectError::Transport(ApiError::upstream_unreachable(format!(
            "could not connect to `{host}:{port}` (target `{}`): {e}",
            target.id
        )))
    })?;
    let tls = tls().map_err(|e| ConnectError::Transport(ApiError::internal(e)))?;
    match tungstenite::client_tls_with_config(request, tcp, Some(config), tls) {
        Ok((ws, resp)) => Ok((ws, resp)),
        Err(HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            let status = resp.status().as_u16();
            let headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        v.to_str().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            let body = resp.body().clone().unwrap_or_default();
            let mut error =
                providers::adapter_for(target).parse_error_with_headers(status, &headers, &body);
            if status == 101 || (200..300).contains(&status) {
                // Not an upgrade: the target does not serve realtime at this URL.
                error = ApiError::bad_gateway(format!(
                    "target `{}` answered the realtime upgrade with HTTP {status} instead of switching protocols",
                    target.id
                ));
            }
            Err(ConnectError::Refused {
                error,
                retryable: status == 429 || status >= 500,
            })
        }
        Err(HandshakeError::Failure(e)) => {
            Err(ConnectError::Transport(ApiError::upstream_unreachable(
                format!("realtime handshake with target `{}` failed: {e}", target.id),
            )))
        }
        Err(HandshakeError::Interrupted(_)) => Err(ConnectError::Transport(
            ApiError::upstream_timeout(format!(
                "target `{}` did not complete the realtime handshake within {:?}",
                target.id, target.timeout
            )),
        )),
    }
}

fn tcp_connect(host: &str, port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("`{host}` resolved to no address"),
    );
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                s.set_nodelay(true)?;
                // The handshake's reads and writes; the relay switches to non-blocking.
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// TLS for `wss://` upstreams: tungstenite's own (the bundled Mozilla roots), or with
/// `SSL_CERT_FILE` set the roots the HTTP agent uses. Built once.
fn tls() -> Result<Option<tungstenite::Connector>, String> {
    static TLS: std::sync::LazyLock<Result<Option<Arc<rustls::ClientConfig>>, String>> =
        std::sync::LazyLock::new(|| {
            let Some(certs) = crate::gateway::transport::ssl_cert_file()? else {
                return Ok(None);
            };
            let mut roots = rustls::RootCertStore::empty();
            for c in &certs {
                roots
                    .add(rustls::pki_types::CertificateDer::from(c.der().to_vec()))
                    .map_err(|e| format!("SSL_CERT_FILE: a certificate is not usable: {e}"))?;
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS set-up: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Some(Arc::new(config)))
        });
    TLS.clone()
        .map(|config| config.map(tungstenite::Connector::Rustls))
}

/// The TCP socket under the (possibly TLS) stream: what the relay polls.
pub fn tcp(ws: &UpstreamSocket) -> Option<&TcpStream> {
    match ws.get_ref() {
        MaybeTlsStream::Plain(s) => Some(s),
        MaybeTlsStream::Rustls(s) => Some(&s.sock),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: &str, base_url: &str, model: &str) -> Target {
        let yaml = format!(
            "pack: {{name: t}}\nproviders:\n  targets:\n    - id: t1\n      provider: {kind}\n      model: {model}\n      base_url: {base_url}\n"
        );
        let (cfg, _) = crate::config::load_str(&yaml, std::path::Path::new("t.yaml")).unwrap();
        cfg.targets[0].clone()
    }

    #[test]
    fn the_url_is_the_base_url_with_a_websocket_scheme() {
        let t = target(
            "openai",
            "https://api.openai.com/v1",
            "gpt-4o-realtime-preview",
        );
        assert_eq!(
            url(&t).unwrap(),
            "wss://api.openai.com/v1/realtime?model=gpt-4o-realtime-preview"
        );
        let t = target(
            "openai-compatible",
            "http://127.0.0.1:8080/v1/",
            "org/model v2",
        );
        assert_eq!(
            url(&t).unwrap(),
            "ws://127.0.0.1:8080/v1/realtime?model=org%2Fmodel%20v2"
        );
    }

    #[test]
    fn only_openai_format_targets_speak_realtime() {
        assert!(is_realtime_capable(&target(
            "openai",
            "https://api.openai.com/v1",
            "m"
        )));
        assert!(is_realtime_capable(&target(
            "openai-compatible",
            "http://localhost:1/v1",
            "m"
        )));
        assert!(!is_realtime_capable(&target(
            "anthropic",
            "https://api.anthropic.com/v1",
            "m"
        )));
    }
}
