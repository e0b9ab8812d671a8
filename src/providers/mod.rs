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
    pub now: SystemTime,
    /// The client's own body, when an OpenAI-format target may get it byte for byte:
    /// no policy rewrote the request, the model is the one it names, and nothing was
    /// trimmed or added for this target. Unknown fields, key order and number spelling
    /// then reach the provider as the client wrote them, and nothing is serialised again.
    pub raw_body: Option<&'a [u8]>,
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
