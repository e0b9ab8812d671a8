//! Gemini errors → OpenAI errors.
//!
//! Gemini answers `{"error": {"code", "message", "status", "details"}}` (sometimes inside a
//! one-element array). The canonical `status` picks the OpenAI status and code; an invalid
//! API key (reported as `INVALID_ARGUMENT` with reason `API_KEY_INVALID`) becomes 401, and a
//! `RetryInfo.retryDelay` becomes `retry-after`.

use serde_json::Value;

use crate::openai::ApiError;
use crate::providers::errors::{is_context_overflow, normalize};

/// A non-2xx Gemini answer.
pub fn parse_error(status: u16, body: &[u8]) -> ApiError {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let v = match v {
        Some(Value::Array(items)) => items.into_iter().next(),
        other => other,
    };
    match v.as_ref().and_then(|v| v.get("error")) {
        Some(err) => parse_error_value(status, err),
        None => normalize(status, body),
    }
}

/// The `error` object of a Gemini answer (also sent in-band in a stream).
pub fn parse_error_value(status: u16, err: &Value) -> ApiError {
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .map_or_else(|| err.to_string(), str::to_string);
    let code = err
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c))
        .unwrap_or(status);
    let details: &[Value] = err
        .get("details")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let reason = details
        .iter()
        .find_map(|d| d.get("reason").and_then(Value::as_str));
    let invalid = "invalid_request_error";
    let mut e = match err
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE"
            if reason == Some("API_KEY_INVALID") || message.contains("API key not valid") =>
        {
            ApiError::unauthorized(message)
        }
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => {
            let code = is_context_overflow(&message.to_ascii_lowercase())
                .then_some("context_length_exceeded");
            ApiError::new(400, invalid, code, message)
        }
        "UNAUTHENTICATED" => ApiError::unauthorized(message),
        "PERMISSION_DENIED" => ApiError::new(403, invalid, Some("permission_denied"), message),
        "NOT_FOUND" => ApiError::new(404, invalid, Some("model_not_found"), message),
        "RESOURCE_EXHAUSTED" => ApiError::new(
            429,
            "rate_limit_error",
            Some("rate_limit_exceeded"),
            message,
        ),
        "UNAVAILABLE" => ApiError::new(503, "server_error", Some("service_unavailable"), message),
        "DEADLINE_EXCEEDED" => ApiError::upstream_timeout(message),
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => ApiError::new(500, "server_error", None, message),
        // No or another canonical status: the shared mapping by HTTP status.
        _ => normalize(
            code,
            serde_json::json!({ "error": { "message": message } })
                .to_string()
                .as_bytes(),
        ),
    };
    e.retry_after = details
        .iter()
        .filter_map(|d| d.get("retryDelay").and_then(Value::as_str))
        .find_map(|d| d.trim().strip_suffix('s')?.parse::<f64>().ok());
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/testdata/providers/gemini/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn quota_errors_carry_the_retry_delay() {
        let e = parse_error(429, &fixture("error_resource_exhausted.json"));
        assert_eq!(e.status, 429);
        assert_eq!(e.code_str(), Some("rate_limit_exceeded"));
        assert_eq!(e.retry_after, Some(17.0));
        assert!(e
            .body
            .message
            .starts_with("You exceeded your current quota"));
    }

    #[test]
    fn statuses_map_like_openai() {
        let cases = [
            (
                400,
                r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#,
                401,
                Some("invalid_api_key"),
            ),
            (
                400,
                r#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#,
                400,
                Some("context_length_exceeded"),
            ),
            (
                400,
                r#"[{"error":{"code":400,"message":"Invalid JSON payload","status":"INVALID_ARGUMENT"}}]"#,
                400,
                None,
            ),
            (
                403,
                r#"{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}"#,
                403,
                Some("permission_denied"),
            ),
            (
                404,
                r#"{"error":{"code":404,"message":"models/x is not found","status":"NOT_FOUND"}}"#,
                404,
                Some("model_not_found"),
            ),
            (
                500,
                r#"{"error":{"code":500,"message":"internal","status":"INTERNAL"}}"#,
                500,
                None,
            ),
            (
                503,
                r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#,
                503,
                Some("service_unavailable"),
            ),
            (
                504,
                r#"{"error":{"code":504,"message":"deadline","status":"DEADLINE_EXCEEDED"}}"#,
                504,
                Some("upstream_timeout"),
            ),
            (502, "<html>bad gateway</html>", 502, None),
        ];
        for (status, body, want, code) in cases {
            let e = parse_error(status, body.as_bytes());
            assert_eq!(e.status, want, "{body}");
            assert_eq!(e.code_str(), code, "{body}");
            assert!(!e.body.message.is_empty());
        }
    }
}
