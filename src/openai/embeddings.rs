//! `POST /v1/embeddings`: the request, the answer, and the chat view the input policies
//! read (each text input is one user message).

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ApiError, ChatRequest, Content, KeeptrustsMeta, Message, Role};

/// A `POST /v1/embeddings` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: EmbeddingInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<EncodingFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Everything else the client sent (`input_type` for Cohere, …), passed on.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// Token-id inputs as text (`decode_tokens`): what the policies read and the
    /// providers that take only text get.
    #[serde(skip)]
    pub decoded: Option<Vec<String>>,
}

/// `input`: a text, texts, or the same as token ids.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum EmbeddingInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

/// `encoding_format`: floats, or each vector's little-endian `f32`s in base64 (the
/// official Python SDK asks for base64 unless told otherwise).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    #[default]
    Float,
    Base64,
}

impl EmbeddingInput {
    /// The texts, in order; `None` for token ids (no policy can read them).
    pub fn texts(&self) -> Option<Vec<&str>> {
        match self {
            EmbeddingInput::Text(t) => Some(vec![t.as_str()]),
            EmbeddingInput::Texts(ts) => Some(ts.iter().map(String::as_str).collect()),
            EmbeddingInput::Tokens(_) | EmbeddingInput::TokenLists(_) => None,
        }
    }

    /// How many vectors the answer holds.
    pub fn len(&self) -> usize {
        match self {
            EmbeddingInput::Text(_) | EmbeddingInput::Tokens(_) => 1,
            EmbeddingInput::Texts(ts) => ts.len(),
            EmbeddingInput::TokenLists(ls) => ls.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Prompt tokens: the token ids counted, texts estimated (about four characters a
    /// token), for providers that do not count them.
    pub fn estimated_tokens(&self) -> u64 {
        let text = |t: &String| (t.chars().count() as u64).div_ceil(4).max(1);
        match self {
            EmbeddingInput::Text(t) => text(t),
            EmbeddingInput::Texts(ts) => ts.iter().map(text).sum(),
            EmbeddingInput::Tokens(ids) => ids.len() as u64,
            EmbeddingInput::TokenLists(ls) => ls.iter().map(|ids| ids.len() as u64).sum(),
        }
    }

    pub fn is_tokens(&self) -> bool {
        matches!(
            self,
            EmbeddingInput::Tokens(_) | EmbeddingInput::TokenLists(_)
        )
    }
}

impl EmbeddingRequest {
    pub fn encoding(&self) -> EncodingFormat {
        self.encoding_format.unwrap_or_default()
    }

    /// The input as texts: the texts sent, or token ids decoded (`decode_tokens`).
    pub fn texts(&self) -> Option<Vec<&str>> {
        self.input.texts().or_else(|| {
            self.decoded
                .as_ref()
                .map(|d| d.iter().map(String::as_str).collect())
        })
    }

    /// Reads token-id inputs as text with `cl100k_base`, the encoding of OpenAI's
    /// embedding models (`text-embedding-3-*`, `ada-002`; what LangChain's
    /// `OpenAIEmbeddings` sends). A cut through a character (a long text sent in
    /// chunks) reads as U+FFFD. An id outside the encoding is a 400.
    pub fn decode_tokens(&mut self) -> Result<(), ApiError> {
        let lists: Vec<&[u32]> = match &self.input {
            EmbeddingInput::Tokens(ids) => vec![ids.as_slice()],
            EmbeddingInput::TokenLists(ls) => ls.iter().map(Vec::as_slice).collect(),
            EmbeddingInput::Text(_) | EmbeddingInput::Texts(_) => return Ok(()),
        };
        let bpe = tiktoken_rs::cl100k_base_singleton();
        let decoded = lists
            .into_iter()
            .map(|ids| {
                bpe.decode_bytes(ids)
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .map_err(|e| {
                        ApiError::bad_request(format!(
                            "'input' holds token id {}, which is not in cl100k_base (the encoding of OpenAI's embedding models).",
                            e.token
                        ))
                        .with_param("input")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.decoded = Some(decoded);
        Ok(())
    }

    /// The texts as user messages, for the input policies.
    pub fn chat_view(&self) -> ChatRequest {
        let messages = self
            .texts()
            .unwrap_or_default()
            .into_iter()
            .map(|t| Message {
                role: Role::User,
                content: Some(Content::Text(t.to_string())),
                ..Message::default()
            })
            .collect();
        ChatRequest {
            model: self.model.clone(),
            messages,
            ..ChatRequest::default()
        }
    }

    /// Takes the policies' rewrites of the chat view back into `input` (same order).
    /// Token ids become the rewritten texts: ids cannot say what a redaction wrote.
    pub fn write_back(&mut self, view: &ChatRequest) {
        let mut texts = view.messages.iter().map(Message::text_content);
        match &mut self.input {
            EmbeddingInput::Text(t) => {
                if let Some(new) = texts.next() {
                    *t = new;
                }
            }
            EmbeddingInput::Texts(ts) => {
                for (t, new) in ts.iter_mut().zip(texts) {
                    *t = new;
                }
            }
            EmbeddingInput::Tokens(_) => {
                self.input = EmbeddingInput::Text(texts.next().unwrap_or_default());
                self.decoded = None;
            }
            EmbeddingInput::TokenLists(_) => {
                self.input = EmbeddingInput::Texts(texts.collect());
                self.decoded = None;
            }
        }
    }

    /// The input texts (token ids decoded), or the 400 for token ids not decoded,
    /// which `provider` cannot embed.
    pub fn texts_for(&self, provider: &str) -> Result<Vec<&str>, ApiError> {
        self.texts().ok_or_else(|| {
            ApiError::bad_request(format!(
                "{provider} takes text input, not token ids: send `input` as a string or an array of strings."
            ))
            .with_param("input")
        })
    }

    /// Parses and checks a body: malformed JSON and a missing or empty `model` or
    /// `input` are 400s naming the parameter. The flag: the body says exactly what the
    /// request says (no duplicate key another parser could read differently), so its
    /// bytes may go upstream.
    pub fn parse_exact(body: &[u8]) -> Result<(EmbeddingRequest, bool), ApiError> {
        // The usual body straight into its type (which refuses a duplicate key); anything
        // else the checking way, for the same request or the precise error.
        if let Ok(req) = serde_json::from_slice::<EmbeddingRequest>(body) {
            if req.check().is_ok() {
                return Ok((req, true));
            }
        }
        EmbeddingRequest::parse(body).map(|req| (req, false))
    }

    /// `parse_exact` without the flag.
    pub fn parse(body: &[u8]) -> Result<EmbeddingRequest, ApiError> {
        let value = super::request_object(body)?;
        if matches!(value.get("input"), None | Some(Value::Null)) {
            return Err(ApiError::missing_param("input"));
        }
        let req: EmbeddingRequest = serde_path_to_error::deserialize(value).map_err(|e| {
            let param = e.path().iter().next().map(|seg| seg.to_string());
            let param = param.as_deref().unwrap_or("input");
            let inner = e.into_inner().to_string();
            ApiError::bad_request(format!("Invalid request: {}", explain(param, &inner)))
                .with_param(param)
        })?;
        req.check()?;
        Ok(req)
    }

    fn check(&self) -> Result<(), ApiError> {
        let bad = |msg: &str| Err(ApiError::bad_request(msg).with_param("input"));
        match &self.input {
            EmbeddingInput::Text(t) if t.is_empty() => bad("'input' must not be an empty string."),
            EmbeddingInput::Texts(ts) if ts.is_empty() => {
                bad("'input' must hold at least one text.")
            }
            EmbeddingInput::Texts(ts) if ts.iter().any(String::is_empty) => {
                bad("'input' must not contain an empty string.")
            }
            EmbeddingInput::Tokens(t) if t.is_empty() => {
                bad("'input' must hold at least one token.")
            }
            EmbeddingInput::TokenLists(ls) if ls.iter().any(Vec::is_empty) => {
                bad("'input' must not contain an empty token list.")
            }
            _ => match self.dimensions {
                Some(0) => Err(ApiError::bad_request("'dimensions' must be at least 1.")
                    .with_param("dimensions")),
                _ => Ok(()),
            },
        }
    }
}

/// serde's message for an untagged enum names the Rust type: say what `input` takes.
fn explain(param: &str, msg: &str) -> String {
    match param {
        "input" => "'input' must be a string, an array of strings, an array of token ids, or an array of arrays of token ids.".to_string(),
        "encoding_format" => "'encoding_format' must be \"float\" or \"base64\".".to_string(),
        _ => format!("'{param}': {msg}"),
    }
}

/// The answer: `{"object": "list", "data": [{"object": "embedding", …}], …}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddingResponse {
    pub object: String,
    pub data: Vec<Embedding>,
    pub model: String,
    pub usage: EmbeddingUsage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_keeptrusts: Option<KeeptrustsMeta>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Embedding {
    pub object: String,
    pub index: usize,
    pub embedding: Vector,
}

/// One vector as the client asked for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Vector {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EmbeddingUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
}

impl EmbeddingResponse {
    /// The answer for vectors in input order.
    pub fn new(
        model: &str,
        vectors: Vec<Vec<f32>>,
        format: EncodingFormat,
        prompt_tokens: u64,
    ) -> EmbeddingResponse {
        let data = vectors
            .into_iter()
            .enumerate()
            .map(|(index, v)| Embedding {
                object: "embedding".to_string(),
                index,
                embedding: match format {
                    EncodingFormat::Float => Vector::Float(v),
                    EncodingFormat::Base64 => Vector::Base64(to_base64(&v)),
                },
            })
            .collect();
        EmbeddingResponse {
            object: "list".to_string(),
            data,
            model: model.to_string(),
            usage: EmbeddingUsage {
                prompt_tokens,
                total_tokens: prompt_tokens,
            },
            x_keeptrusts: None,
        }
    }
}

/// A vector as OpenAI's base64 encoding: its `f32`s little-endian, one after another.
pub fn to_base64(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `usage` (and `model`) of an OpenAI embeddings answer, read without building its
/// vectors.
#[derive(Debug, Default, Deserialize)]
pub struct EmbeddingSummary {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub usage: Option<EmbeddingUsage>,
    #[serde(default)]
    pub data: Option<serde::de::IgnoredAny>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_form_parses_and_bad_ones_name_the_parameter() {
        let r = EmbeddingRequest::parse(br#"{"model":"m","input":"hi"}"#).unwrap();
        assert_eq!(r.input, EmbeddingInput::Text("hi".into()));
        let r = EmbeddingRequest::parse(br#"{"model":"m","input":["a","b"],"x":1}"#).unwrap();
        assert_eq!(r.input.len(), 2);
        assert_eq!(r.extra["x"], 1);
        let r = EmbeddingRequest::parse(br#"{"model":"m","input":[1,2,3]}"#).unwrap();
        assert!(r.input.is_tokens() && r.input.texts().is_none());
        let r = EmbeddingRequest::parse(br#"{"model":"m","input":[[1],[2,3]]}"#).unwrap();
        assert_eq!(r.input.len(), 2);
        for (body, param) in [
            (&br#"{"input":"x"}"#[..], "model"),
            (br#"{"model":"m"}"#, "input"),
            (br#"{"model":"m","input":""}"#, "input"),
            (br#"{"model":"m","input":[]}"#, "input"),
            (br#"{"model":"m","input":["a",""]}"#, "input"),
            (br#"{"model":"m","input":[{"a":1}]}"#, "input"),
            (br#"{"model":"m","input":"x","dimensions":0}"#, "dimensions"),
        ] {
            let e = EmbeddingRequest::parse(body).unwrap_err();
            assert_eq!(e.status, 400);
            assert_eq!(
                e.body.param.as_deref(),
                Some(param),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let e = EmbeddingRequest::parse(br#"{"model":"m","input":"x","encoding_format":"hex"}"#)
            .unwrap_err();
        assert!(
            e.body.message.contains("encoding_format"),
            "{}",
            e.body.message
        );
        assert_eq!(EmbeddingRequest::parse(b"{").unwrap_err().status, 400);
    }

    #[test]
    fn only_a_body_without_duplicate_keys_may_go_upstream_as_sent() {
        let (r, exact) =
            EmbeddingRequest::parse_exact(br#"{"model":"m","input":["a"],"x":{"y":1}}"#).unwrap();
        assert!(exact);
        assert_eq!(r.extra["x"]["y"], 1);
        // A provider may read the first `input`: the policies saw the last.
        for body in [
            &br#"{"model":"m","input":"a@b.io","input":"safe"}"#[..],
            br#"{"model":"m","model":"n","input":"x"}"#,
        ] {
            let (r, exact) = EmbeddingRequest::parse_exact(body).unwrap();
            assert!(!exact, "{}", String::from_utf8_lossy(body));
            assert_ne!(r.input, EmbeddingInput::Text("a@b.io".into()));
        }
        assert!(EmbeddingRequest::parse_exact(br#"{"model":"m","input":""}"#).is_err());
    }

    #[test]
    fn the_chat_view_holds_each_text_and_rewrites_come_back_in_order() {
        let mut r = EmbeddingRequest::parse(br#"{"model":"m","input":["a","b"]}"#).unwrap();
        let mut view = r.chat_view();
        assert_eq!(view.messages.len(), 2);
        view.messages[1].content = Some(Content::Text("B".into()));
        r.write_back(&view);
        assert_eq!(r.input, EmbeddingInput::Texts(vec!["a".into(), "B".into()]));
        let r = EmbeddingRequest::parse(br#"{"model":"m","input":[5,6]}"#).unwrap();
        assert!(r.chat_view().messages.is_empty(), "not decoded yet");
    }

    #[test]
    fn token_ids_read_as_their_text_and_a_rewrite_sends_the_text() {
        let bpe = tiktoken_rs::cl100k_base_singleton();
        let ids = bpe.encode_ordinary("mail bob@example.com");
        let body = serde_json::json!({"model": "m", "input": [ids, bpe.encode_ordinary("hi")]});
        let mut r = EmbeddingRequest::parse(body.to_string().as_bytes()).unwrap();
        assert!(r.texts().is_none());
        r.decode_tokens().unwrap();
        assert_eq!(r.texts().unwrap(), ["mail bob@example.com", "hi"]);
        assert_eq!(r.texts_for("Gemini").unwrap().len(), 2);
        let mut view = r.chat_view();
        assert_eq!(view.messages.len(), 2);
        view.messages[0].content = Some(Content::Text("mail [EMAIL]".into()));
        r.write_back(&view);
        assert_eq!(
            r.input,
            EmbeddingInput::Texts(vec!["mail [EMAIL]".into(), "hi".into()])
        );
        let mut r = EmbeddingRequest::parse(br#"{"model":"m","input":[4000000000]}"#).unwrap();
        let e = r.decode_tokens().unwrap_err();
        assert_eq!(e.body.param.as_deref(), Some("input"));
        assert!(e.body.message.contains("4000000000"), "{}", e.body.message);
    }

    #[test]
    fn base64_vectors_are_little_endian_f32s() {
        let b = to_base64(&[1.0, -0.5]);
        let bytes = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
        assert_eq!(
            bytes,
            [1.0f32.to_le_bytes(), (-0.5f32).to_le_bytes()].concat()
        );
        let resp = EmbeddingResponse::new("m", vec![vec![0.25]], EncodingFormat::Base64, 3);
        let json = serde_json::to_value(&resp).unwrap();
        assert_eq!(json["data"][0]["embedding"], to_base64(&[0.25]));
        assert_eq!(json["usage"]["total_tokens"], 3);
        assert!(json.get("x_keeptrusts").is_none());
    }
}
