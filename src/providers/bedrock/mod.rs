//! AWS Bedrock Runtime, Converse and ConverseStream: OpenAI chat requests become Converse
//! bodies signed with SigV4, Converse answers and event streams become OpenAI completions
//! and chunks. Pure translation; `gateway::transport` sends the bytes.
//!
//! Endpoint: `https://bedrock-runtime.{region}.amazonaws.com/model/{modelId}/converse`
//! (`/converse-stream`), or the target's `base_url` in its place. The model id is
//! URI-encoded (inference-profile ids and ARNs hold `:` and `/`).
//!
//! Auth, in order: a Bedrock API key configured on the target (`secret_key_ref.env`) sent as
//! `Authorization: Bearer`; else SigV4 with the target's AWS credentials; else a key the
//! client passed through, as a bearer.
//!
//! Embeddings go through InvokeModel (`/model/{modelId}/invoke`, `embeddings.rs`), with the
//! same auth.

mod embeddings;
pub mod eventstream;
mod request;
mod response;
pub mod sigv4;
mod stream;

use super::{Adapter, BuildContext, EmbeddingAnswer, StreamDecoder, UpstreamRequest};
use crate::config::Target;
use crate::openai::embeddings::EmbeddingRequest;
use crate::openai::{ApiError, ChatRequest, ChatResponse};

pub use response::error_for;
pub use stream::BedrockStreamDecoder;

/// The SigV4 signing name of Bedrock Runtime.
pub const SIGNING_NAME: &str = "bedrock";
/// The region signed for when neither the target nor the environment names one and the
/// target has its own `base_url`.
pub const FALLBACK_REGION: &str = "us-east-1";

pub struct BedrockAdapter;

pub static BEDROCK: BedrockAdapter = BedrockAdapter;

impl BedrockAdapter {
    /// The URL of `action` (`converse`, `converse-stream`, `invoke`) on the target's model,
    /// and the region to sign for.
    fn url(target: &Target, action: &str) -> Result<(String, String), ApiError> {
        let model = sigv4::uri_encode(target.model.trim(), false);
        let (base, region) = match (target.base_url.is_empty(), target.region.as_deref()) {
            (false, region) => (
                target.base_url.trim_end_matches('/').to_string(),
                region.unwrap_or(FALLBACK_REGION).to_string(),
            ),
            (true, Some(region)) => (
                format!("https://bedrock-runtime.{region}.amazonaws.com"),
                region.to_string(),
            ),
            (true, None) => {
                return Err(ApiError::internal(format!(
                "bedrock target `{}` has no region: set `region` on the target, or `AWS_REGION`",
                target.id
            )))
            }
        };
        Ok((format!("{base}/model/{model}/{action}"), region))
    }

    /// A JSON `POST` of `body` to `url` with the target's auth: a configured Bedrock API key
    /// as a bearer, else SigV4 for `region`, else the client's pass-through key as a bearer.
    ///
    /// # Errors
    /// 401 when there is no credential at all; 500 when the URL cannot be signed.
    fn post(
        ctx: BuildContext<'_>,
        url: String,
        region: &str,
        body: Vec<u8>,
    ) -> Result<UpstreamRequest, ApiError> {
        let target = ctx.target;
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        let configured_key = target.credential.as_ref().map(|s| s.expose());
        match (configured_key, &target.aws, ctx.api_key) {
            (Some(key), _, _) | (None, None, Some(key)) => {
                headers.push(("Authorization".to_string(), format!("Bearer {key}")));
            }
            (None, Some(aws), _) => {
                let added = sigv4::sign(
                    "POST",
                    &url,
                    &headers,
                    &body,
                    sigv4::Credentials {
                        access_key_id: &aws.access_key_id,
                        secret_access_key: aws.secret_access_key.expose(),
                        session_token: aws.session_token.as_ref().map(|t| t.expose()),
                    },
                    sigv4::Scope {
                        region,
                        service: SIGNING_NAME,
                    },
                    ctx.now,
                )
                .map_err(|e| ApiError::internal(e.to_string()))?;
                headers.extend(added);
            }
            (None, None, None) => {
                return Err(ApiError::new(
                    401,
                    "invalid_request_error",
                    Some("missing_credentials"),
                    format!(
                        "bedrock target `{}` has no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or `secret_key_ref.access_key_id_env` / `secret_access_key_env`)",
                        target.id
                    ),
                ));
            }
        }
        // Extra configured headers are sent unsigned.
        headers.extend(target.headers.iter().cloned());
        Ok(UpstreamRequest {
            method: "POST",
            url,
            headers,
            body,
        })
    }
}

impl Adapter for BedrockAdapter {
    fn build_request(
        &self,
        ctx: BuildContext<'_>,
        req: &ChatRequest,
    ) -> Result<UpstreamRequest, ApiError> {
        let target = ctx.target;
        super::native::openai_only(req, "Bedrock")?;
        let body = serde_json::to_vec(&request::to_converse(req)?)
            .map_err(|e| ApiError::internal(format!("failed to serialize the request: {e}")))?;
        let action = if req.is_stream() {
            "converse-stream"
        } else {
            "converse"
        };
        let (url, region) = BedrockAdapter::url(target, action)?;
        BedrockAdapter::post(ctx, url, &region, body)
    }

    fn parse_response(&self, target: &Target, body: &[u8]) -> Result<ChatResponse, ApiError> {
        response::from_converse(target, body)
    }

    fn parse_error(&self, status: u16, body: &[u8]) -> ApiError {
        response::parse_error(status, None, body)
    }

    fn parse_error_with_headers(
        &self,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> ApiError {
        let kind = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-amzn-errortype"))
            .map(|(_, v)| v.as_str());
        response::parse_error(status, kind, body)
    }

    fn stream_decoder(&self, target: &Target, _req: &ChatRequest) -> Box<dyn StreamDecoder> {
        Box::new(BedrockStreamDecoder::new(
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
        target: &Target,
        req: &EmbeddingRequest,
        body: &[u8],
    ) -> Result<EmbeddingAnswer, ApiError> {
        embeddings::parse(target, req, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_str, AwsCredentials, Secret};
    use std::time::{Duration, SystemTime};

    pub(crate) fn target(extra: &str) -> Target {
        let yaml = format!(
            "pack: {{name: t}}\nproviders:\n  targets:\n    - {{id: br, provider: bedrock, model: 'us.anthropic.claude-3-7-sonnet-20250219-v1:0'{extra}}}\n"
        );
        load_str(&yaml, std::path::Path::new("t.yaml"))
            .unwrap()
            .0
            .targets
            .remove(0)
    }

    fn header<'a>(up: &'a UpstreamRequest, name: &str) -> Option<&'a str> {
        up.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The same request botocore 1.43 signs (`SigV4Auth`, service `bedrock`) to
    /// `Signature=e6734692…`: this pins the URL, body bytes and signed headers together.
    #[test]
    fn signed_request_matches_botocore() {
        let mut t = target(", region: us-west-2");
        t.aws = Some(AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: Some(Secret::new("FQoGZXIvYXdzEXAMPLETOKEN")),
        });
        t.credential = None;
        let req: ChatRequest = serde_json::from_str(
            r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"Hello"}]}"#,
        )
        .unwrap();
        let up = BEDROCK
            .build_request(
                BuildContext {
                    target: &t,
                    api_key: None,
                    account: &[],
                    now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_740_816_550),
                    raw_body: None,
                },
                &req,
            )
            .unwrap();
        assert_eq!(
            up.url,
            "https://bedrock-runtime.us-west-2.amazonaws.com/model/us.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse-stream"
        );
        assert_eq!(
            std::str::from_utf8(&up.body).unwrap(),
            r#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}]}"#
        );
        assert_eq!(header(&up, "x-amz-date"), Some("20250301T080910Z"));
        assert_eq!(
            header(&up, "x-amz-security-token"),
            Some("FQoGZXIvYXdzEXAMPLETOKEN")
        );
        assert_eq!(
            header(&up, "authorization"),
            Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250301/us-west-2/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=e6734692c165a6de9c454969b5fa186dec5d357fc47821e310212bb82b79f8ff")
        );
    }

    #[test]
    fn base_url_overrides_the_endpoint_and_keys_choose_the_auth() {
        let mut t = target(", base_url: 'http://127.0.0.1:9'");
        t.aws = None;
        t.credential = None;
        let req: ChatRequest =
            serde_json::from_str(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)
                .unwrap();
        fn ctx<'a>(target: &'a Target, api_key: Option<&'a str>) -> BuildContext<'a> {
            BuildContext {
                target,
                api_key,
                account: &[],
                now: SystemTime::now(),
                raw_body: None,
            }
        }
        let e = BEDROCK.build_request(ctx(&t, None), &req).unwrap_err();
        assert_eq!(e.status, 401);
        assert!(
            e.body.message.contains("AWS_ACCESS_KEY_ID"),
            "{}",
            e.body.message
        );
        let up = BEDROCK
            .build_request(ctx(&t, Some("br-key")), &req)
            .unwrap();
        assert_eq!(
            up.url,
            "http://127.0.0.1:9/model/us.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse"
        );
        assert_eq!(header(&up, "authorization"), Some("Bearer br-key"));
        t.aws = Some(AwsCredentials {
            access_key_id: "AK".into(),
            secret_access_key: Secret::new("SK"),
            session_token: None,
        });
        let up = BEDROCK
            .build_request(ctx(&t, Some("client-key")), &req)
            .unwrap();
        let auth = header(&up, "authorization").unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AK/"),
            "{auth}"
        );
        assert!(auth.contains(
            "/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date,"
        ));
        assert_eq!(header(&up, "x-amz-security-token"), None);
        // A key configured on the target wins over SigV4.
        t.credential = Some(Secret::new("configured"));
        let up = BEDROCK
            .build_request(ctx(&t, Some("configured")), &req)
            .unwrap();
        assert_eq!(header(&up, "authorization"), Some("Bearer configured"));
        // No region and no base_url: a clear configuration error.
        let mut t = target("");
        t.region = None;
        let e = BEDROCK.build_request(ctx(&t, Some("k")), &req).unwrap_err();
        assert!(e.body.message.contains("no region"), "{}", e.body.message);
    }
}
