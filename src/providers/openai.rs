//! OpenAI Chat Completions and the vendors that speak it natively (Azure OpenAI, Groq,
//! Mistral, Together, Fireworks, any OpenAI-compatible server): no body translation, only
//! the URL, the auth header and the model name.

use serde_json::Value;

use super::sse::{SseEvent, SseParser};
use super::{Adapter, BuildContext, EmbeddingAnswer, StreamDecoder, StreamEvent, UpstreamRequest};
use crate::config::Target;
use crate::openai::embeddings::{EmbeddingRequest, EmbeddingSummary};
use crate::openai::{ApiError, AsSent, ChatChunk, ChatRequest, ChatResponse};

pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";

pub struct OpenAiAdapter {
    azure: bool,
}

pub static OPENAI: OpenAiAdapter = OpenAiAdapter { azure: false };
pub static AZURE: OpenAiAdapter = OpenAiAdapter { azure: true };

impl OpenAiAdapter {
    /// The URL of an endpoint (`/chat/completions`, `/embeddings`) on the target.
    fn url(&self, target: &Target, endpoint: &str) -> String {
        let base = target.base_url.trim_end_matches('/');
        if !self.azure {
            return [base, endpoint].concat();
        }
        let version = target
            .api_version
            .as_deref()
            .unwrap_or(DEFAULT_AZURE_API_VERSION);
        if base.ends_with("/openai/v1") {
            // The v1 form: model (the deployment name) in the body, no dated api-version;
            // one is sent only when configured (the v1 preview wanted `preview`).
            match target.api_version.as_deref() {
                Some(v) => format!("{base}{endpoint}?api-version={v}"),
                None => format!("{base}{endpoint}"),
            }
        } else if base.contains("/openai/deployments/") {
            format!("{base}{endpoint}?api-version={version}")
        } else if base.ends_with("/openai") {
            format!(
                "{base}/deployments/{}{endpoint}?api-version={version}",
                target.model
            )
        } else {
            format!(
                "{base}/openai/deployments/{}{endpoint}?api-version={version}",
                target.model
            )
        }
    }

    /// The client's bytes when they may go as sent, else `value` serialised.
    fn body<T: serde::Serialize>(ctx: &BuildContext<'_>, value: &T) -> Result<Vec<u8>, ApiError> {
        match ctx.raw_body {
            Some(raw) => Ok(raw.to_vec()),
            None => serde_json::to_vec(value)
                .map_err(|e| ApiError::internal(format!("failed to serialize the request: {e}"))),
        }
    }
}

impl Adapter for OpenAiAdapter {
    fn build_request(
        &self,
        ctx: BuildContext<'_>,
        req: &ChatRequest,
    ) -> Result<UpstreamRequest, ApiError> {
        // The gateway has already set `req.model` to the target's model.
        Ok(UpstreamRequest {
            method: "POST",
            url: self.url(ctx.target, "/chat/completions"),
            headers: ctx.json_headers(super::sse_if(req.is_stream()), &[]),
            body: Self::body(&ctx, req)?,
        })
    }

    fn parse_response(&self, _target: &Target, body: &[u8]) -> Result<ChatResponse, ApiError> {
        serde_json::from_slice(body).map_err(invalid_completion)
    }

    fn parse_response_as_sent(
        &self,
        _target: &Target,
        body: &[u8],
    ) -> Result<(ChatResponse, AsSent), ApiError> {
        ChatResponse::parse(body).map_err(invalid_completion)
    }

    fn stream_decoder(&self, _target: &Target, _req: &ChatRequest) -> Box<dyn StreamDecoder> {
        Box::new(OpenAiStreamDecoder::default())
    }

    fn build_embeddings(
        &self,
        ctx: BuildContext<'_>,
        req: &EmbeddingRequest,
    ) -> Result<UpstreamRequest, ApiError> {
        Ok(UpstreamRequest {
            method: "POST",
            url: self.url(ctx.target, "/embeddings"),
            headers: ctx.json_headers(None, &[]),
            body: Self::body(&ctx, req)?,
        })
    }

    /// OpenAI's list goes to the client as sent: only its `usage` is read (the vectors
    /// are skipped, not built).
    fn parse_embeddings(
        &self,
        _target: &Target,
        _req: &EmbeddingRequest,
        body: &[u8],
    ) -> Result<EmbeddingAnswer, ApiError> {
        let summary: EmbeddingSummary = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_gateway(format!("upstream returned an invalid embeddings list: {e}"))
        })?;
        if summary.data.is_none() {
            return Err(ApiError::bad_gateway(
                "upstream returned an embeddings answer without `data`",
            ));
        }
        Ok(EmbeddingAnswer::AsSent {
            usage: summary.usage,
        })
    }
}

/// The error for an answer that is no chat completion.
pub fn invalid_completion(e: serde_json::Error) -> ApiError {
    ApiError::bad_gateway(format!("upstream returned an invalid chat completion: {e}"))
}

/// OpenAI SSE: `data: <chunk>` events ending with `data: [DONE]`; an in-band
/// `{"error": …}` becomes an error event.
#[derive(Default)]
pub struct OpenAiStreamDecoder {
    sse: SseParser,
    events: Vec<SseEvent>,
}

impl OpenAiStreamDecoder {
    fn drain(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        for ev in self.events.drain(..) {
            match decode_openai_event(&ev.data)? {
                // Azure opens with a chunk carrying only `prompt_filter_results`: nothing
                // for the client, and its empty `object` would make the SDK's stream
                // helper drop it anyway.
                StreamEvent::Chunk(c) if c.choices.is_empty() && c.usage.is_none() => {}
                StreamEvent::Chunk(mut c) => {
                    c.object = crate::openai::chunk_object();
                    out.push(StreamEvent::Chunk(c));
                }
                other => out.push(other),
            }
        }
        Ok(())
    }
}

/// Decodes one OpenAI SSE `data` payload.
pub fn decode_openai_event(data: &str) -> Result<StreamEvent, ApiError> {
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(StreamEvent::Done);
    }
    // Read straight into a chunk, as nearly every event is one: an error event (or a
    // body that is no chunk) is read again as JSON to tell which it is.
    if let Ok(chunk) = serde_json::from_str::<ChatChunk>(data) {
        if chunk.extra.get("error").is_none_or(Value::is_null) {
            return Ok(StreamEvent::Chunk(chunk));
        }
    }
    let value: Value = serde_json::from_str(data).map_err(|e| {
        ApiError::bad_gateway(format!("upstream sent a malformed stream event: {e}"))
    })?;
    if value.get("error").is_some_and(|e| !e.is_null()) && value.get("choices").is_none() {
        let status = value
            .pointer("/error/status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            // An error event that claims success (or any non-error status) is still an
            // upstream failure.
            .filter(|s| (400..600).contains(s))
            .unwrap_or(502);
        return Ok(StreamEvent::Error(ApiError::from_upstream(
            status,
            data.as_bytes(),
        )));
    }
    let chunk: ChatChunk = serde_json::from_value(value)
        .map_err(|e| ApiError::bad_gateway(format!("upstream sent an invalid chunk: {e}")))?;
    Ok(StreamEvent::Chunk(chunk))
}

impl StreamDecoder for OpenAiStreamDecoder {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        self.sse.feed(bytes, &mut self.events);
        self.drain(out)
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ApiError> {
        self.sse.finish(&mut self.events);
        self.drain(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn target(yaml_target: &str) -> Target {
        let yaml = format!("pack: {{name: t}}\nproviders:\n  targets:\n    - {yaml_target}\n");
        load_str(&yaml, std::path::Path::new("t.yaml"))
            .unwrap()
            .0
            .targets
            .remove(0)
    }

    #[test]
    fn openai_request_uses_target_model_and_key() {
        let t = target("{id: a, provider: openai, model: gpt-4o-2024, base_url: 'http://h/v1'}");
        let req: ChatRequest =
            serde_json::from_str(r#"{"model":"gpt-4o-2024","messages":[],"seed":1}"#).unwrap();
        let up = OPENAI
            .build_request(
                BuildContext {
                    target: &t,
                    api_key: Some("sk-x"),
                    account: &[],
                    now: std::time::SystemTime::now(),
                    raw_body: None,
                },
                &req,
            )
            .unwrap();
        assert_eq!(up.url, "http://h/v1/chat/completions");
        assert!(up
            .headers
            .contains(&("Authorization".into(), "Bearer sk-x".into())));
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body["model"], "gpt-4o-2024");
        assert_eq!(body["seed"], 1);
    }

    #[test]
    fn azure_urls() {
        let t = target(
            "{id: a, provider: azure-openai, model: gpt4o, base_url: 'https://r.openai.azure.com'}",
        );
        assert_eq!(
            AZURE.url(&t, "/chat/completions"),
            "https://r.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(t.api_key_header, "api-key");
        let t = target("{id: a, provider: azure-openai, model: m, base_url: 'https://r.openai.azure.com/openai/deployments/gpt-4o'}");
        assert!(AZURE.url(&t, "/chat/completions").starts_with(
            "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version="
        ));
        let t = target("{id: a, provider: azure-openai, model: m, base_url: 'https://r.openai.azure.com/openai/v1'}");
        assert_eq!(
            AZURE.url(&t, "/chat/completions"),
            "https://r.openai.azure.com/openai/v1/chat/completions"
        );
        // A trailing slash (as Microsoft's examples write it) changes nothing.
        let t = target("{id: a, provider: azure-openai, model: m, base_url: 'https://r.services.ai.azure.com/openai/v1/'}");
        assert_eq!(
            AZURE.url(&t, "/chat/completions"),
            "https://r.services.ai.azure.com/openai/v1/chat/completions"
        );
        let t = target("{id: a, provider: azure-openai, model: m, api_version: preview, base_url: 'https://r.openai.azure.com/openai/v1'}");
        assert_eq!(
            AZURE.url(&t, "/chat/completions"),
            "https://r.openai.azure.com/openai/v1/chat/completions?api-version=preview"
        );
        let t = target("{id: a, provider: azure-openai, model: gpt4o, api_version: '2025-04-01-preview', base_url: 'https://r.openai.azure.com/openai'}");
        assert_eq!(
            AZURE.url(&t, "/chat/completions"),
            "https://r.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2025-04-01-preview"
        );
    }

    #[test]
    fn azure_request_sends_api_key_and_keeps_the_body() {
        let t = target(
            "{id: a, provider: azure-openai, model: gpt4o, base_url: 'https://r.openai.azure.com'}",
        );
        let req: ChatRequest = serde_json::from_str(
            r#"{"model":"gpt4o","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#,
        )
        .unwrap();
        let up = AZURE
            .build_request(
                BuildContext {
                    target: &t,
                    api_key: Some("az-key"),
                    account: &[],
                    now: std::time::SystemTime::now(),
                    raw_body: None,
                },
                &req,
            )
            .unwrap();
        assert!(up.headers.contains(&("api-key".into(), "az-key".into())));
        assert!(!up
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization")));
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["messages"][0]["content"], "hi");
    }

    #[test]
    fn azure_filter_only_chunks_are_skipped_and_object_is_set() {
        let mut d = OpenAiStreamDecoder::default();
        let mut out = Vec::new();
        d.feed(
            b"data: {\"id\":\"\",\"object\":\"\",\"created\":0,\"model\":\"\",\"choices\":[],\"prompt_filter_results\":[]}\n\ndata: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n",
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 2, "{out:?}");
        let StreamEvent::Chunk(c) = &out[0] else {
            panic!("{out:?}");
        };
        assert_eq!(c.object, "chat.completion.chunk");
        assert!(matches!(out[1], StreamEvent::Done));
    }

    #[test]
    fn stream_error_event_is_an_error() {
        match decode_openai_event(r#"{"error":{"message":"overloaded","type":"server_error"}}"#)
            .unwrap()
        {
            StreamEvent::Error(e) => assert_eq!(e.body.message, "overloaded"),
            other => panic!("{other:?}"),
        }
    }

    /// Found by the fuzz target `provider-openai`
    /// (testdata/fuzz/provider-openai/crash-inband-error-status-200.sse): an in-band error
    /// whose `status` was 200 (or 0, or 99999) became an error event with that status, and
    /// the request's event recorded a failed stream as status 200.
    #[test]
    fn stream_error_event_status_is_an_error_status() {
        for (status, want) in [("200", 502), ("0", 502), ("99999", 502), ("429", 429)] {
            let data = format!(r#"{{"error":{{"message":"m","status":{status}}}}}"#);
            match decode_openai_event(&data).unwrap() {
                StreamEvent::Error(e) => assert_eq!(e.status, want, "{data}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
