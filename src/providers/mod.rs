//! Provider adapters: each is a PURE translation (no I/O) between the OpenAI wire format
//! and a provider's native API. `gateway::transport` does the network part.
//!
//! `adapter_for` is the only `match` on provider kind.

pub mod anthropic;
pub mod bedrock;
pub mod cohere;
pub mod common;
pub mod errors;
pub mod gemini;
pub mod mock;
pub mod native;
pub mod openai;
pub mod responses;
pub mod sse;

use std::time::SystemTime;

use crate::config::schema::{ProviderKind, WireFormat};
use crate::config::Target;
use crate::openai::embeddings::{EmbeddingRequest, EmbeddingUsage};
use crate::openai::{ApiError, AsSent, ChatChunk, ChatRequest, ChatResponse};

/// An HTTP request to send upstream.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What an adapter needs to build a request.
#[derive(Debug, Clone, Copy)]
pub struct BuildContext<'a> {
    pub target: &'a Target,
    /// The key to send: the target's secret, or the client's pass-through bearer.
    pub api_key: Option<&'a str>,
    /// Headers sent with the key: the account headers (`OpenAI-Organization`,
    /// `OpenAI-Project`) a client sent with its own key, when that key is forwarded.
    pub account: &'a [(String, String)],
    pub now: SystemTime,
    /// The client's own body, when an OpenAI-format target may get it byte for byte:
    /// no policy rewrote the request, the model is the one it names, and nothing was
    /// trimmed or added for this target. Unknown fields, key order and number spelling
    /// then reach the provider as the client wrote them, and nothing is serialised again.
    pub raw_body: Option<&'a [u8]>,
}

impl BuildContext<'_> {
    /// A JSON request's headers: `Content-Type`, `Accept` when given, the credential in
    /// the target's header with its prefix, the adapter's `own`, then the target's
    /// configured `headers`.
    pub fn json_headers(
        &self,
        accept: Option<&str>,
        own: &[(&str, &str)],
    ) -> Vec<(String, String)> {
        let target = self.target;
        let mut headers = Vec::with_capacity(3 + own.len() + target.headers.len());
        headers.push(("Content-Type".to_string(), "application/json".to_string()));
        if let Some(accept) = accept {
            headers.push(("Accept".to_string(), accept.to_string()));
        }
        if let Some(key) = self.api_key {
            headers.push((
                target.api_key_header.clone(),
                format!("{}{key}", target.api_key_prefix),
            ));
        }
        headers.extend_from_slice(self.account);
        headers.extend(
            own.iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string())),
        );
        headers.extend(target.headers.iter().cloned());
        headers
    }
}

/// `Accept` for a request that may stream: SSE when it does.
pub fn sse_if(stream: bool) -> Option<&'static str> {
    stream.then_some("text/event-stream")
}

/// Something decoded from an upstream stream.
#[derive(Debug, Clone)]
pub enum StreamEvent {
    Chunk(ChatChunk),
    /// The upstream said the stream is complete.
    Done,
    /// The upstream reported an error in-band.
    Error(ApiError),
}

/// Decodes an upstream stream incrementally; bytes may be split anywhere.
pub trait StreamDecoder: Send {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ApiError>;
    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ApiError>;
}

/// A provider's translation.
pub trait Adapter: Send + Sync {
    fn build_request(
        &self,
        ctx: BuildContext<'_>,
        req: &ChatRequest,
    ) -> Result<UpstreamRequest, ApiError>;

    fn parse_response(&self, target: &Target, body: &[u8]) -> Result<ChatResponse, ApiError>;

    /// `parse_response`, and whether the body can go to the client as sent (plus kt's
    /// own member): only an OpenAI chat completion that holds all its parse would
    /// serialise to (`ChatResponse::parse`). With `AsSent::Lean` the parse lacks the
    /// members kt does not model: `ChatResponse::restore` before serialising it.
    fn parse_response_as_sent(
        &self,
        target: &Target,
        body: &[u8],
    ) -> Result<(ChatResponse, AsSent), ApiError> {
        self.parse_response(target, body).map(|r| (r, AsSent::No))
    }

    /// An upstream non-2xx answer in OpenAI's error shape, with the status the OpenAI SDK
    /// treats as it would OpenAI's (see `errors::normalize`).
    fn parse_error(&self, status: u16, body: &[u8]) -> ApiError {
        errors::normalize(status, body)
    }

    /// `parse_error` with the response headers, for providers that name the error in a
    /// header (Bedrock's `x-amzn-ErrorType`).
    fn parse_error_with_headers(
        &self,
        status: u16,
        _headers: &[(String, String)],
        body: &[u8],
    ) -> ApiError {
        self.parse_error(status, body)
    }

    fn stream_decoder(&self, target: &Target, req: &ChatRequest) -> Box<dyn StreamDecoder>;

    /// The upstream request for `POST /v1/embeddings` (`req.model` is the target's).
    /// Providers without an embeddings API keep the default: a 400 naming the target.
    fn build_embeddings(
        &self,
        ctx: BuildContext<'_>,
        _req: &EmbeddingRequest,
    ) -> Result<UpstreamRequest, ApiError> {
        Err(no_embeddings(ctx.target))
    }

    /// Reads a 2xx embeddings answer.
    fn parse_embeddings(
        &self,
        target: &Target,
        _req: &EmbeddingRequest,
        _body: &[u8],
    ) -> Result<EmbeddingAnswer, ApiError> {
        Err(no_embeddings(target))
    }
}

/// What an embeddings answer holds.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbeddingAnswer {
    /// OpenAI's own list: the client gets the provider's bytes (with `x_keeptrusts`).
    AsSent { usage: Option<EmbeddingUsage> },
    /// One vector per input, in input order, from another API; the gateway encodes
    /// them as the client asked (`encoding_format`). `prompt_tokens`: as the provider
    /// counted them, when it says.
    Vectors {
        vectors: Vec<Vec<f32>>,
        prompt_tokens: Option<u64>,
    },
}

/// The 400 for a target whose provider has no embeddings API.
pub fn no_embeddings(target: &Target) -> ApiError {
    ApiError::new(
        400,
        "invalid_request_error",
        Some("embeddings_not_supported"),
        format!(
            "Target `{}` (provider `{}`) has no embeddings API: route this model to a target of a provider that has one (OpenAI, Azure OpenAI, Gemini, Cohere, Bedrock, Mistral, Together, Fireworks, an OpenAI-compatible server, or mock).",
            target.id,
            target.kind.as_str()
        ),
    )
    .with_param("model")
}

/// The adapter for a target's wire format.
pub fn adapter_for(target: &Target) -> &'static dyn Adapter {
    match target.format {
        WireFormat::Openai => match target.kind {
            ProviderKind::AzureOpenai => &openai::AZURE,
            ProviderKind::Openai
            | ProviderKind::Groq
            | ProviderKind::Mistral
            | ProviderKind::Together
            | ProviderKind::Fireworks
            | ProviderKind::OpenaiCompatible
            | ProviderKind::Mock
            | ProviderKind::Anthropic
            | ProviderKind::Gemini
            | ProviderKind::Bedrock
            | ProviderKind::Cohere => &openai::OPENAI,
        },
        WireFormat::Anthropic => &anthropic::ANTHROPIC,
        WireFormat::Cohere => &cohere::COHERE,
        WireFormat::Gemini => &gemini::GEMINI,
        WireFormat::Bedrock => &bedrock::BEDROCK,
    }
}

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
