//! Cohere v2 Embed (`POST {base}/embed`) for `POST /v1/embeddings`.
//!
//! The body asks for float vectors only (`embedding_types: ["float"]`); `input_type`, which
//! Cohere's v3+ models require, is the client's own `input_type` or `search_document`.
//! `dimensions` becomes `output_dimension`. Bedrock's Cohere Embed models take the same
//! fields (without `model`) and answer in the same shapes, so [`embed_fields`] and
//! [`read_vectors`] serve both.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::openai::embeddings::EmbeddingRequest;
use crate::openai::ApiError;
use crate::providers::{BuildContext, EmbeddingAnswer, UpstreamRequest};

/// The `input_type` sent when the client names none: what stored documents are embedded
/// as, and what an OpenAI-style client most often means.
pub const DEFAULT_INPUT_TYPE: &str = "search_document";

pub fn build(ctx: BuildContext<'_>, req: &EmbeddingRequest) -> Result<UpstreamRequest, ApiError> {
    let target = ctx.target;
    let texts = req.texts_for("Cohere")?;
    let mut body = Map::new();
    body.insert("model".into(), Value::String(req.model.clone()));
    body.extend(embed_fields(req, texts));
    let body = serde_json::to_vec(&body)
        .map_err(|e| ApiError::internal(format!("failed to serialize the request: {e}")))?;
    let headers = ctx.json_headers(Some("application/json"), &[super::CLIENT_NAME]);
    Ok(UpstreamRequest {
        method: "POST",
        url: format!("{}/embed", target.base_url.trim_end_matches('/')),
        headers,
        body,
    })
}

pub fn parse(req: &EmbeddingRequest, body: &[u8]) -> Result<EmbeddingAnswer, ApiError> {
    let (vectors, prompt_tokens) = read_vectors("cohere", req, body)?;
    Ok(EmbeddingAnswer::Vectors {
        vectors,
        prompt_tokens,
    })
}

/// `texts`, `input_type`, `embedding_types`, and `output_dimension` / `truncate` when the
/// client gave them.
pub fn embed_fields(req: &EmbeddingRequest, texts: Vec<&str>) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert(
        "texts".into(),
        Value::Array(texts.into_iter().map(Value::from).collect()),
    );
    let input_type = req
        .extra
        .get("input_type")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_INPUT_TYPE);
    fields.insert("input_type".into(), Value::from(input_type));
    fields.insert("embedding_types".into(), Value::from(vec!["float"]));
    if let Some(d) = req.dimensions {
        fields.insert("output_dimension".into(), Value::from(d));
    }
    if let Some(truncate) = req.extra.get("truncate").filter(|v| !v.is_null()) {
        fields.insert("truncate".into(), truncate.clone());
    }
    fields
}

/// An Embed answer: `embeddings` by type (`{"float": [[…]]}`, what `embedding_types`
/// asks for) or, from older models asked without it, the float vectors themselves.
#[derive(Debug, Deserialize)]
struct EmbedAnswer {
    embeddings: Vectors,
    #[serde(default)]
    meta: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Vectors {
    ByType { float: Vec<Vec<f32>> },
    Floats(Vec<Vec<f32>>),
}

/// The float vectors of an Embed answer, one per input, and the billed input tokens when
/// the answer says (`meta.billed_units.input_tokens`; Bedrock does not).
///
/// # Errors
/// 502 when the body is not an Embed answer with float vectors, or holds a different
/// number of vectors than `req` has inputs.
pub fn read_vectors(
    provider: &str,
    req: &EmbeddingRequest,
    body: &[u8],
) -> Result<(Vec<Vec<f32>>, Option<u64>), ApiError> {
    let answer: EmbedAnswer = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_gateway(format!(
            "{provider} returned an invalid embeddings answer (expected `embeddings.float`): {e}"
        ))
    })?;
    let vectors = match answer.embeddings {
        Vectors::ByType { float } | Vectors::Floats(float) => float,
    };
    check_count(provider, vectors.len(), req.input.len())?;
    let tokens = answer
        .meta
        .as_ref()
        .and_then(|m| m.pointer("/billed_units/input_tokens"))
        .and_then(|n| {
            n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f.round() as u64)
            })
        });
    Ok((vectors, tokens))
}

/// The 502 for an answer whose vectors do not match the inputs one for one.
pub fn check_count(provider: &str, got: usize, inputs: usize) -> Result<(), ApiError> {
    if got == inputs {
        Ok(())
    } else {
        Err(ApiError::bad_gateway(format!(
            "{provider} returned {got} embeddings for {inputs} inputs"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_str, Target};
    use crate::providers::adapter_for;
    use serde_json::json;

    fn target() -> Target {
        let yaml = "pack: {name: t}\nproviders:\n  targets:\n    - {id: c, provider: cohere, model: embed-v4.0, headers: {X-Team: search}}\n";
        load_str(yaml, std::path::Path::new("t.yaml"))
            .unwrap()
            .0
            .targets
            .remove(0)
    }

    fn request(v: Value) -> EmbeddingRequest {
        EmbeddingRequest::parse(v.to_string().as_bytes()).unwrap()
    }

    fn ctx(t: &Target) -> BuildContext<'_> {
        BuildContext {
            target: t,
            api_key: Some("co-key"),
            account: &[],
            now: std::time::SystemTime::now(),
            raw_body: None,
        }
    }

    #[test]
    fn the_request_is_a_v2_embed_for_floats() {
        let t = target();
        let req = request(json!({"model": "embed-v4.0", "input": ["a", "b"]}));
        let up = adapter_for(&t).build_embeddings(ctx(&t), &req).unwrap();
        assert_eq!(up.method, "POST");
        assert_eq!(up.url, "https://api.cohere.com/v2/embed");
        for h in [
            ("Authorization", "Bearer co-key"),
            ("Content-Type", "application/json"),
            ("X-Team", "search"),
        ] {
            assert!(
                up.headers.contains(&(h.0.to_string(), h.1.to_string())),
                "{h:?} in {:?}",
                up.headers
            );
        }
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "embed-v4.0",
                "texts": ["a", "b"],
                "input_type": "search_document",
                "embedding_types": ["float"]
            })
        );
    }

    #[test]
    fn the_clients_input_type_dimensions_and_truncate_pass_on() {
        let t = target();
        let req = request(json!({
            "model": "embed-v4.0", "input": "q", "dimensions": 256,
            "input_type": "search_query", "truncate": "END", "user": "u1"
        }));
        let up = adapter_for(&t).build_embeddings(ctx(&t), &req).unwrap();
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body["texts"], json!(["q"]));
        assert_eq!(body["input_type"], "search_query");
        assert_eq!(body["output_dimension"], 256);
        assert_eq!(body["truncate"], "END");
        assert!(body.get("user").is_none() && body.get("dimensions").is_none());
        // A non-string `input_type` is not Cohere's: the default goes instead.
        let req = request(json!({"model": "m", "input": "q", "input_type": 3}));
        let up = adapter_for(&t).build_embeddings(ctx(&t), &req).unwrap();
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body["input_type"], "search_document");
    }

    #[test]
    fn token_ids_are_a_400() {
        let t = target();
        let req = request(json!({"model": "m", "input": [[1, 2], [3]]}));
        let e = adapter_for(&t).build_embeddings(ctx(&t), &req).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.body.param.as_deref(), Some("input"));
        assert!(e
            .body
            .message
            .contains("Cohere takes text input, not token ids"));
        assert!(!e.body.message.contains("co-key"));
    }

    #[test]
    fn answers_give_vectors_in_order_and_billed_tokens() {
        let t = target();
        let req = request(json!({"model": "m", "input": ["a", "b"]}));
        let body = br#"{"id":"e1","embeddings":{"float":[[0.5,-1],[0.25,2]]},"texts":["a","b"],
            "meta":{"api_version":{"version":"2"},"billed_units":{"input_tokens":7}}}"#;
        assert_eq!(
            adapter_for(&t).parse_embeddings(&t, &req, body).unwrap(),
            EmbeddingAnswer::Vectors {
                vectors: vec![vec![0.5, -1.0], vec![0.25, 2.0]],
                prompt_tokens: Some(7),
            }
        );
        // Counts may come as floats; no meta, no count.
        let (_, tokens) = read_vectors(
            "cohere",
            &req,
            br#"{"embeddings":{"float":[[1],[2]]},"meta":{"billed_units":{"input_tokens":3.0}}}"#,
        )
        .unwrap();
        assert_eq!(tokens, Some(3));
        let (vectors, tokens) =
            read_vectors("cohere", &req, br#"{"embeddings":[[1],[2]]}"#).unwrap();
        assert_eq!((vectors, tokens), (vec![vec![1.0], vec![2.0]], None));
    }

    #[test]
    fn bad_answers_are_502s() {
        let t = target();
        let req = request(json!({"model": "m", "input": ["a", "b"]}));
        for (body, says) in [
            (&b"not json"[..], "invalid embeddings answer"),
            (
                br#"{"embeddings":{"int8":[[1],[2]]}}"#,
                "invalid embeddings answer",
            ),
            (br#"{"id":"x"}"#, "invalid embeddings answer"),
            (
                br#"{"embeddings":{"float":[[1]]}}"#,
                "1 embeddings for 2 inputs",
            ),
        ] {
            let e = adapter_for(&t)
                .parse_embeddings(&t, &req, body)
                .unwrap_err();
            assert_eq!(e.status, 502, "{}", String::from_utf8_lossy(body));
            assert!(e.body.message.contains(says), "{}", e.body.message);
        }
    }
}
