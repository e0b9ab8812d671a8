//! Errors as the client sees them: always OpenAI's shape
//! `{"error": {"message", "type", "param", "code"}}`, with the status an OpenAI SDK expects.
//! Policy blocks use the documented envelope (`type: policy_violation`, `policy`, `code`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub body: ErrorBody,
    /// Seconds for `retry-after` (429 and 503).
    pub retry_after: Option<f64>,
    /// `x-should-retry: false` for errors a retry cannot fix (policy blocks, quota).
    pub retryable: Option<bool>,
}

/// The `error` object.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub code: Option<Value>,
}

impl ApiError {
    pub fn new(status: u16, kind: &str, code: Option<&str>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                message: message.into(),
                kind: kind.to_string(),
                policy: None,
                param: None,
                code: code.map(|c| Value::String(c.to_string())),
            },
            retry_after: None,
            retryable: None,
        }
    }

    pub fn with_param(mut self, param: &str) -> Self {
        self.body.param = Some(param.to_string());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "invalid_request_error", None, message)
    }

    pub fn invalid_json(message: impl Into<String>) -> Self {
        ApiError::new(400, "invalid_request_error", Some("invalid_json"), message)
    }

    pub fn missing_param(param: &str) -> Self {
        ApiError::new(
            400,
            "invalid_request_error",
            Some("missing_required_parameter"),
            format!("Missing required parameter: '{param}'."),
        )
        .with_param(param)
    }

    pub fn model_not_found(model: &str) -> Self {
        ApiError::new(
            404,
            "invalid_request_error",
            Some("model_not_found"),
            format!("Model '{model}' not found in catalog"),
        )
        .with_param("model")
    }

    pub fn not_found(path: &str) -> Self {
        ApiError::new(
            404,
            "invalid_request_error",
            Some("unknown_url"),
            format!("Unknown request URL: {path}. Please check the URL for typos."),
        )
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        ApiError::new(
            405,
            "invalid_request_error",
            Some("method_not_allowed"),
            format!("Method {method} is not allowed for {path}."),
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        ApiError::new(
            413,
            "invalid_request_error",
            Some("request_too_large"),
            format!("Request body exceeds the gateway limit of {limit} bytes."),
        )
        .not_retryable()
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
            message,
        )
    }

    pub fn upstream_unreachable(detail: impl Into<String>) -> Self {
        ApiError::new(502, "upstream_error", Some("upstream_unreachable"), detail)
    }

    pub fn upstream_timeout(detail: impl Into<String>) -> Self {
        ApiError::new(504, "upstream_error", Some("upstream_timeout"), detail)
    }

    pub fn bad_gateway(detail: impl Into<String>) -> Self {
        ApiError::new(502, "upstream_error", Some("bad_upstream_response"), detail)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(500, "server_error", Some("internal_error"), message)
    }

    pub fn overloaded(message: impl Into<String>) -> Self {
        let mut e = ApiError::new(503, "server_error", Some("overloaded"), message);
        e.retry_after = Some(1.0);
        e
    }

    /// A policy block (HTTP 409, the documented envelope).
    pub fn policy_violation(policy: &str, output: bool, message: impl Into<String>) -> Self {
        ApiError {
            status: 409,
            body: ErrorBody {
                message: message.into(),
                kind: "policy_violation".to_string(),
                policy: Some(policy.to_string()),
                param: None,
                code: Some(Value::String(
                    if output {
                        "output_blocked"
                    } else {
                        "input_blocked"
                    }
                    .to_string(),
                )),
            },
            retry_after: None,
            retryable: Some(false),
        }
    }

    pub fn not_retryable(mut self) -> Self {
        self.retryable = Some(false);
        self
    }

    pub fn code_str(&self) -> Option<&str> {
        self.body.code.as_ref().and_then(Value::as_str)
    }

    /// The JSON body `{"error": {...}}`.
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: &'a ErrorBody,
        }
        serde_json::to_vec(&Envelope { error: &self.body }).unwrap_or_default()
    }

    /// Normalizes an upstream error body of any shape into OpenAI's, keeping the status.
    pub fn from_upstream(status: u16, body: &[u8]) -> Self {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let default_kind = default_kind(status);
        let mut err = ApiError::new(status, default_kind, None, "");
        match parsed {
            Some(v) => {
                // OpenAI / Azure / most vendors: {"error": {...}}; some: {"error": "text"};
                // others: {"message": "..."} or {"detail": "..."}.
                let obj = v.get("error").cloned().unwrap_or_else(|| v.clone());
                match obj {
                    Value::String(s) => err.body.message = s,
                    Value::Object(o) => {
                        err.body.message = o
                            .get("message")
                            .or_else(|| o.get("detail"))
                            .and_then(Value::as_str)
                            .map(str::to_string)
                            .unwrap_or_else(|| Value::Object(o.clone()).to_string());
                        if let Some(t) = o.get("type").and_then(Value::as_str) {
                            err.body.kind = t.to_string();
                        }
                        err.body.param = o.get("param").and_then(Value::as_str).map(str::to_string);
                        // A policy block from a gateway upstream keeps naming its policy.
                        err.body.policy =
                            o.get("policy").and_then(Value::as_str).map(str::to_string);
                        err.body.code = o.get("code").filter(|c| !c.is_null()).cloned();
                    }
                    other => err.body.message = other.to_string(),
                }
            }
            None => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                err.body.message = if text.is_empty() {
                    format!("upstream returned HTTP {status} with an empty body")
                } else {
                    truncate(text, 2000).to_string()
                };
            }
        }
        if err.body.message.is_empty() {
            err.body.message = format!("upstream returned HTTP {status}");
        }
        err
    }
}

fn default_kind(status: u16) -> &'static str {
    match status {
        401 | 403 | 404 | 400 | 409 | 413 | 422 => "invalid_request_error",
        429 => "rate_limit_error",
        _ if status >= 500 => "server_error",
        _ => "api_error",
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.body.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_block_envelope() {
        let e = ApiError::policy_violation("prompt-injection", false, "blocked");
        let v: Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(v["error"]["type"], "policy_violation");
        assert_eq!(v["error"]["policy"], "prompt-injection");
        assert_eq!(v["error"]["code"], "input_blocked");
        assert_eq!(e.status, 409);
    }

    #[test]
    fn upstream_shapes_are_normalized() {
        let e = ApiError::from_upstream(
            429,
            br#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(e.body.message, "slow down");
        assert_eq!(e.code_str(), Some("rate_limit_exceeded"));
        let e = ApiError::from_upstream(500, b"<html>oops</html>");
        assert_eq!(e.body.kind, "server_error");
        assert_eq!(e.body.message, "<html>oops</html>");
        let e = ApiError::from_upstream(404, br#"{"detail":"Not Found"}"#);
        assert_eq!(e.body.message, "Not Found");
        let e = ApiError::from_upstream(
            409,
            br#"{"error":{"message":"no","type":"policy_violation","policy":"pii-detector","code":"input_blocked"}}"#,
        );
        assert_eq!(e.body.policy.as_deref(), Some("pii-detector"));
        assert_eq!(e.body.kind, "policy_violation");
        let e = ApiError::from_upstream(503, b"");
        assert!(e.body.message.contains("503"));
    }
}
