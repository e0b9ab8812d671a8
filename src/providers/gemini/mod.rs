//! Google Gemini (Generative Language API): `models/{model}:generateContent` and
//! `models/{model}:streamGenerateContent?alt=sse`, key in `x-goog-api-key`; embeddings
//! through `models/{model}:batchEmbedContents` (`embeddings.rs`). Pure translation;
//! `gateway::transport` sends the bytes.

mod embeddings;
mod error;
mod request;
mod response;
mod stream;

use super::{Adapter, BuildContext, EmbeddingAnswer, StreamDecoder, UpstreamRequest};
use crate::config::Target;
use crate::openai::embeddings::EmbeddingRequest;
use crate::openai::{ApiError, ChatRequest, ChatResponse};

pub use error::parse_error;
pub use response::THOUGHT_SEPARATOR;
pub use stream::GeminiStreamDecoder;

pub struct GeminiAdapter;

pub static GEMINI: GeminiAdapter = GeminiAdapter;

impl GeminiAdapter {
    fn url(target: &Target, stream: bool) -> String {
        let base = target.base_url.trim_end_matches('/');
        let model = target.model.trim();
        let model = model.strip_prefix("models/").unwrap_or(model);
        if stream {
            format!("{base}/models/{model}:streamGenerateContent?alt=sse")
        } else {
            format!("{base}/models/{model}:generateContent")
        }
    }
}

impl Adapter for GeminiAdapter {
    fn build_request(
        &self,
        ctx: BuildContext<'_>,
        req: &ChatRequest,
    ) -> Result<UpstreamRequest, ApiError> {
        let target = ctx.target;
        super::native::openai_only(req, "Gemini")?;
        let body = serde_json::to_vec(&request::to_gemini(req)?)
            .map_err(|e| ApiError::internal(format!("failed to serialize the request: {e}")))?;
        Ok(UpstreamRequest {
            method: "POST",
            url: GeminiAdapter::url(target, req.is_stream()),
            headers: ctx.json_headers(super::sse_if(req.is_stream()), &[]),
            body,
        })
    }

    fn parse_response(&self, target: &Target, body: &[u8]) -> Result<ChatResponse, ApiError> {
        response::parse_response(target, body)
    }

    fn parse_error(&self, status: u16, body: &[u8]) -> ApiError {
        error::parse_error(status, body)
    }

    fn stream_decoder(&self, target: &Target, _req: &ChatRequest) -> Box<dyn StreamDecoder> {
        Box::new(GeminiStreamDecoder::new(
            super::native::random_id("chatcmpl-"),
            target.model.clone(),
            super::unix_now(),
        ))
    }

    fn build_embeddings(
        &self,
        ctx: BuildContext<'_>,
        req: &EmbeddingRequest,
    ) -> Result<UpstreamRequest, ApiError> {
        embeddings::build(ctx, req)
    }

    fn parse_embeddings(
        &self,
        _target: &Target,
        req: &EmbeddingRequest,
        body: &[u8],
    ) -> Result<EmbeddingAnswer, ApiError> {
        embeddings::parse(req, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    pub(crate) fn target(extra: &str) -> Target {
        let yaml = format!(
            "pack: {{name: t}}\nproviders:\n  targets:\n    - {{id: g, provider: gemini, model: gemini-2.5-flash-lite{extra}}}\n"
        );
        load_str(&yaml, std::path::Path::new("t.yaml"))
            .unwrap()
            .0
            .targets
            .remove(0)
    }

    #[test]
    fn urls_and_the_key_header() {
        let t = target("");
        assert_eq!(
            GeminiAdapter::url(&t, false),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash-lite:generateContent"
        );
        let mut t = target(", base_url: 'http://127.0.0.1:9/v1beta/'");
        t.model = "models/gemini-pro".to_string();
        assert_eq!(
            GeminiAdapter::url(&t, true),
            "http://127.0.0.1:9/v1beta/models/gemini-pro:streamGenerateContent?alt=sse"
        );
        let req: ChatRequest = serde_json::from_str(
            r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        )
        .unwrap();
        let up = GEMINI
            .build_request(
                BuildContext {
                    target: &t,
                    api_key: Some("AIza-test"),
                    account: &[],
                    now: std::time::SystemTime::now(),
                    raw_body: None,
                },
                &req,
            )
            .unwrap();
        assert!(up
            .headers
            .contains(&("x-goog-api-key".to_string(), "AIza-test".to_string())));
        assert!(!up.headers.iter().any(|(k, _)| k == "Authorization"));
        let body: serde_json::Value = serde_json::from_slice(&up.body).unwrap();
        assert!(body.get("stream").is_none() && body.get("model").is_none());
    }
}
