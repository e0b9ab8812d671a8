//! The client's WebSocket handshake: the headers RFC 6455 requires, the offered
//! subprotocols (and the key a browser puts in one), and the `model` query parameter.

use crate::gateway::conn::Request;

use crate::gateway::http::header;
use crate::openai::ApiError;

/// The subprotocol that carries a key in browsers, which cannot set headers.
const KEY_PROTOCOL: &str = "openai-insecure-api-key.";

/// The client's WebSocket handshake.
pub struct Handshake {
    pub key: String,
    /// Offered subprotocols, in order.
    protocols: Vec<String>,
}

impl Handshake {
    pub fn of(req: &Request) -> Result<Handshake, ApiError> {
        let has = |name: &str, token: &str| {
            req.headers()
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .flat_map(|h| h.value.split(','))
                .any(|v| v.trim().eq_ignore_ascii_case(token))
        };
        if !has("upgrade", "websocket") || !has("connection", "upgrade") {
            return Err(ApiError::new(
                426,
                "invalid_request_error",
                Some("upgrade_required"),
                "`/v1/realtime` is a WebSocket endpoint: connect with a WebSocket client \
                 (`Upgrade: websocket`), e.g. `wss://<gateway>/v1/realtime?model=<model>`.",
            ));
        }
        if header(req, "sec-websocket-version").map(str::trim) != Some("13") {
            return Err(ApiError::new(
                426,
                "invalid_request_error",
                Some("unsupported_websocket_version"),
                "The gateway speaks WebSocket version 13 (`Sec-WebSocket-Version: 13`).",
            ));
        }
        let key = header(req, "sec-websocket-key")
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request("The WebSocket handshake has no `Sec-WebSocket-Key`.")
            })?
            .to_string();
        let protocols = req
            .headers()
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-protocol"))
            .flat_map(|h| h.value.split(','))
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        Ok(Handshake { key, protocols })
    }

    /// The key a browser put in the `openai-insecure-api-key.<key>` subprotocol.
    pub fn protocol_key(&self) -> Option<&str> {
        self.protocols
            .iter()
            .find_map(|p| p.strip_prefix(KEY_PROTOCOL))
            .filter(|k| !k.is_empty())
    }

    /// The subprotocols the provider is offered: the client's, without a key (the
    /// provider gets its credential in a header; a gateway key never leaves kt).
    pub fn forwarded(&self) -> Option<String> {
        let kept: Vec<&str> = self
            .protocols
            .iter()
            .map(String::as_str)
            .filter(|p| !p.starts_with(KEY_PROTOCOL))
            .collect();
        (!kept.is_empty()).then(|| kept.join(", "))
    }
}

/// The value of `name` in the request's query string, percent-decoded.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_comes_from_the_query_string() {
        assert_eq!(
            query_param("/v1/realtime?model=gpt-4o-realtime-preview", "model").as_deref(),
            Some("gpt-4o-realtime-preview")
        );
        assert_eq!(
            query_param("/v1/realtime?x=1&model=org%2Fm+v2", "model").as_deref(),
            Some("org/m v2")
        );
        assert_eq!(query_param("/v1/realtime", "model"), None);
        assert_eq!(query_param("/v1/realtime?models=x", "model"), None);
    }
}
