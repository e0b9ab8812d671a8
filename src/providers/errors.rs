//! Upstream errors, from any provider, in OpenAI's error shape and with the status the
//! OpenAI SDK treats as it would a real OpenAI error: the right exception class, a retry
//! exactly when OpenAI's would be retried, and the codes clients test for
//! (`context_length_exceeded`, `invalid_api_key`, `rate_limit_exceeded`,
//! `insufficient_quota`, `model_not_found`).
//!
//! Shared by every adapter (it is the `Adapter::parse_error` default); adapters with their
//! own in-band error events (Anthropic, Cohere) call [`normalize`] with the status the event
//! stands for. Retry hints from headers (`retry-after`, `retry-after-ms`) are read by the
//! gateway, which sees the headers; nothing here drops them.

use serde_json::Value;

use crate::openai::ApiError;

/// Lowercase fragments of the messages providers send when the prompt does not fit.
const CONTEXT_MARKERS: &[&str] = &[
    // OpenAI, Azure, vLLM, Mistral and most OpenAI-compatible servers.
    "maximum context length",
    "context_length_exceeded",
    // Anthropic: "prompt is too long: 210000 tokens > 200000 maximum" and
    // "input length and `max_tokens` exceed context limit: …".
    "prompt is too long",
    "exceed context limit",
    // Gemini.
    "exceeds the maximum number of tokens",
    // Bedrock.
    "input is too long for requested model",
    // Cohere: "too many tokens: the total number of tokens in the prompt exceeds …".
    "too many tokens",
];

/// The error `type` values OpenAI (and kt) use; any other provider type is replaced by
/// the default for the status, so clients that branch on `type` see familiar values.
const OPENAI_KINDS: &[&str] = &[
    "invalid_request_error",
    "server_error",
    "rate_limit_error",
    "requests",
    "tokens",
    "insufficient_quota",
    "api_error",
];

/// Whether a (lowercased) message says the prompt exceeded the model's context window.
pub fn is_context_overflow(message_lower: &str) -> bool {
    CONTEXT_MARKERS.iter().any(|m| message_lower.contains(m))
}

/// Normalizes an upstream error answer (`status`, raw body) to an OpenAI error.
///
/// Status changes, all chosen so the OpenAI SDK behaves as against OpenAI:
/// - 529 (Anthropic "overloaded") → 503: retryable `InternalServerError`.
/// - 402 (payment required / out of credits) → 429 `insufficient_quota` with
///   `x-should-retry: false`: OpenAI's own answer for an exhausted quota.
/// - 498 (Cohere: invalid token) → 401.
/// - 400/413/422 saying the prompt is too long → 400 `context_length_exceeded`.
///
/// Everything else keeps its status; the message always survives.
pub fn normalize(status: u16, body: &[u8]) -> ApiError {
    let mut err = ApiError::from_upstream(status, body);
    let meaningful = err
        .body
        .code
        .as_ref()
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty() && !c.bytes().all(|b| b.is_ascii_digit()));
    if !meaningful {
        // Numeric codes (Gemini and Azure repeat the HTTP status there) mean nothing to
        // clients; the mapping below gives OpenAI's.
        err.body.code = None;
    }
    let raw = String::from_utf8_lossy(body).to_ascii_lowercase();
    let message = err.body.message.to_ascii_lowercase();
    let mapped = match status {
        529 => 503,
        402 => 429,
        498 => 401,
        s => s,
    };
    err.status = mapped;
    if !OPENAI_KINDS.contains(&err.body.kind.as_str()) {
        err.body.kind = default_kind(mapped).to_string();
    }
    let code = err.code_str().map(str::to_string);
    match mapped {
        400 | 413 | 422 if is_context_overflow(&message) => {
            err.status = 400;
            err.body.kind = "invalid_request_error".to_string();
            set_code(&mut err, "context_length_exceeded");
            if err.body.param.is_none() {
                err.body.param = Some("messages".to_string());
            }
        }
        401 if code.is_none() => set_code(&mut err, "invalid_api_key"),
        403 if code.is_none() => set_code(&mut err, "permission_denied"),
        404 if code.is_none() => {
            let c = if message.contains("model") {
                "model_not_found"
            } else {
                "not_found"
            };
            set_code(&mut err, c);
        }
        429 => {
            let quota = status == 402
                || code.as_deref() == Some("insufficient_quota")
                || raw.contains("enforced_spend_limit_reached");
            if quota {
                err.body.kind = "insufficient_quota".to_string();
                set_code(&mut err, "insufficient_quota");
                err.retryable = Some(false);
            } else if code.is_none() {
                set_code(&mut err, "rate_limit_exceeded");
            }
        }
        503 if status == 529 && code.is_none() => set_code(&mut err, "overloaded"),
        _ => {}
    }
    err
}

fn set_code(err: &mut ApiError, code: &str) {
    err.body.code = Some(Value::String(code.to_string()));
}

fn default_kind(status: u16) -> &'static str {
    match status {
        429 => "rate_limit_error",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_overloaded_is_a_retryable_503() {
        let e = normalize(
            529,
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#,
        );
        assert_eq!(e.status, 503);
        assert_eq!(e.body.kind, "server_error");
        assert_eq!(e.code_str(), Some("overloaded"));
        assert_eq!(e.body.message, "Overloaded");
        assert_eq!(e.retryable, None);
    }

    #[test]
    fn prompt_too_long_is_context_length_exceeded() {
        let e = normalize(
            400,
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#,
        );
        assert_eq!(
            (e.status, e.code_str()),
            (400, Some("context_length_exceeded"))
        );
        assert_eq!(e.body.param.as_deref(), Some("messages"));
        let e = normalize(
            400,
            br#"{"id":"x","message":"too many tokens: the total number of tokens in the prompt exceeds the limit of 4081"}"#,
        );
        assert_eq!(e.code_str(), Some("context_length_exceeded"));
        // Other 400s keep their message and get no invented code.
        let e = normalize(
            400,
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate"}}"#,
        );
        assert_eq!((e.status, e.code_str()), (400, None));
    }

    #[test]
    fn auth_and_not_found() {
        let e = normalize(
            401,
            br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        );
        assert_eq!(e.status, 401);
        assert_eq!(e.body.kind, "invalid_request_error");
        assert_eq!(e.code_str(), Some("invalid_api_key"));
        let e = normalize(498, br#"{"message":"invalid api token"}"#);
        assert_eq!((e.status, e.code_str()), (401, Some("invalid_api_key")));
        let e = normalize(
            404,
            br#"{"type":"error","error":{"type":"not_found_error","message":"model: claude-x"}}"#,
        );
        assert_eq!((e.status, e.code_str()), (404, Some("model_not_found")));
        let e = normalize(
            403,
            br#"{"type":"error","error":{"type":"permission_error","message":"no"}}"#,
        );
        assert_eq!((e.status, e.code_str()), (403, Some("permission_denied")));
    }

    #[test]
    fn rate_limits_and_quota() {
        let e = normalize(
            429,
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        );
        assert_eq!((e.status, e.code_str()), (429, Some("rate_limit_exceeded")));
        assert_eq!(e.retryable, None);
        let e = normalize(
            429,
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"spend limit","details":{"error_code":"enforced_spend_limit_reached"}}}"#,
        );
        assert_eq!(e.code_str(), Some("insufficient_quota"));
        assert_eq!(e.retryable, Some(false));
        let e = normalize(402, br#"{"message":"please add a payment method"}"#);
        assert_eq!((e.status, e.code_str()), (429, Some("insufficient_quota")));
        assert_eq!(e.retryable, Some(false));
    }

    #[test]
    fn openai_shaped_errors_pass_unchanged() {
        let body = br#"{"error":{"message":"bad","type":"invalid_request_error","param":"seed","code":"unsupported_parameter"}}"#;
        let e = normalize(400, body);
        assert_eq!(e, ApiError::from_upstream(400, body));
        let e = normalize(500, b"<html>oops</html>");
        assert_eq!((e.status, e.body.kind.as_str()), (500, "server_error"));
        // Gemini's numeric code is dropped; its message is kept.
        let e = normalize(
            400,
            br#"{"error":{"code":400,"message":"The input token count exceeds the maximum number of tokens allowed","status":"INVALID_ARGUMENT"}}"#,
        );
        assert_eq!(e.code_str(), Some("context_length_exceeded"));
        // Azure's throttling error repeats the status as its code.
        let e = normalize(
            429,
            br#"{"error":{"code":"429","message":"exceeded call rate limit"}}"#,
        );
        assert_eq!(e.code_str(), Some("rate_limit_exceeded"));
        let e = normalize(
            404,
            br#"{"error":{"code":"DeploymentNotFound","message":"no deployment"}}"#,
        );
        assert_eq!(e.code_str(), Some("DeploymentNotFound"));
    }
}
