//! Gemini embeddings for `POST /v1/embeddings`: `POST {base}/models/{model}:batchEmbedContents`
//! with one `EmbedContentRequest` per input text, answered by `{"embeddings": [{"values"}]}`
//! in input order. `dimensions` becomes `outputDimensionality`; a client's `task_type` (or
//! `taskType`) becomes `taskType`. Gemini reports no token counts.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::openai::embeddings::EmbeddingRequest;
use crate::openai::ApiError;
use crate::providers::{BuildContext, EmbeddingAnswer, UpstreamRequest};

pub fn build(ctx: BuildContext<'_>, req: &EmbeddingRequest) -> Result<UpstreamRequest, ApiError> {
    let target = ctx.target;
    let texts = req.texts_for("Gemini")?;
    // The target's model, as `GeminiAdapter::url` reads it (a `models/` prefix or not).
    let model = target.model.trim();
    let model = model.strip_prefix("models/").unwrap_or(model);
    // Gemini's enum values are upper case (`RETRIEVAL_QUERY`); accept the client's any case.
    let task_type = ["task_type", "taskType"]
        .iter()
        .find_map(|k| req.extra.get(*k).and_then(Value::as_str))
        .map(str::to_ascii_uppercase);
    let requests: Vec<Value> = texts
        .into_iter()
        .map(|text| {
            let mut r = Map::new();
            r.insert("model".into(), Value::String(format!("models/{model}")));
            r.insert("content".into(), json!({"parts": [{"text": text}]}));
            if let Some(t) = &task_type {
                r.insert("taskType".into(), Value::String(t.clone()));
            }
            if let Some(d) = req.dimensions {
                r.insert("outputDimensionality".into(), Value::from(d));
            }
            Value::Object(r)
        })
        .collect();
    let body = serde_json::to_vec(&json!({ "requests": requests }))
        .map_err(|e| ApiError::internal(format!("failed to serialize the request: {e}")))?;
    let headers = ctx.json_headers(None, &[]);
    Ok(UpstreamRequest {
        method: "POST",
        url: format!(
            "{}/models/{model}:batchEmbedContents",
            target.base_url.trim_end_matches('/')
        ),
        headers,
        body,
    })
}

#[derive(Debug, Deserialize)]
struct BatchAnswer {
    embeddings: Vec<ContentEmbedding>,
}

#[derive(Debug, Deserialize)]
struct ContentEmbedding {
    values: Vec<f32>,
}

/// # Errors
/// 502 when the body is not a `batchEmbedContents` answer, or holds a different number of
/// embeddings than `req` has inputs.
pub fn parse(req: &EmbeddingRequest, body: &[u8]) -> Result<EmbeddingAnswer, ApiError> {
    let answer: BatchAnswer = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_gateway(format!(
            "gemini returned an invalid batchEmbedContents answer (expected `embeddings[].values`): {e}"
        ))
    })?;
    let (got, inputs) = (answer.embeddings.len(), req.input.len());
    if got != inputs {
        return Err(ApiError::bad_gateway(format!(
            "gemini returned {got} embeddings for {inputs} inputs"
        )));
    }
    Ok(EmbeddingAnswer::Vectors {
        vectors: answer.embeddings.into_iter().map(|e| e.values).collect(),
        prompt_tokens: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::adapter_for;
    use crate::providers::gemini::tests::target;

    fn request(v: Value) -> EmbeddingRequest {
        EmbeddingRequest::parse(v.to_string().as_bytes()).unwrap()
    }

    fn ctx(t: &crate::config::Target) -> BuildContext<'_> {
        BuildContext {
            target: t,
            api_key: Some("AIza-test"),
            account: &[],
            now: std::time::SystemTime::now(),
            raw_body: None,
        }
    }

    #[test]
    fn the_request_is_one_embed_content_request_per_text() {
        let mut t = target(", headers: {X-Team: search}");
        t.model = "gemini-embedding-001".to_string();
        let req = request(json!({"model": "gemini-embedding-001", "input": ["a", "b"]}));
        let up = adapter_for(&t).build_embeddings(ctx(&t), &req).unwrap();
        assert_eq!(up.method, "POST");
        assert_eq!(
            up.url,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents"
        );
        for h in [
            ("x-goog-api-key", "AIza-test"),
            ("Content-Type", "application/json"),
            ("X-Team", "search"),
        ] {
            assert!(
                up.headers.contains(&(h.0.to_string(), h.1.to_string())),
                "{h:?} in {:?}",
                up.headers
            );
        }
        assert!(!up.headers.iter().any(|(k, _)| k == "Authorization"));
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(
            body,
            json!({"requests": [
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}},
                {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}}
            ]})
        );
    }

    #[test]
    fn dimensions_and_task_type_go_on_every_request() {
        let mut t = target(", base_url: 'http://127.0.0.1:9/v1beta/'");
        t.model = "models/text-embedding-004".to_string();
        let req = request(json!({
            "model": "models/text-embedding-004", "input": "q", "dimensions": 768,
            "task_type": "retrieval_query", "user": "u1"
        }));
        let up = adapter_for(&t).build_embeddings(ctx(&t), &req).unwrap();
        assert_eq!(
            up.url,
            "http://127.0.0.1:9/v1beta/models/text-embedding-004:batchEmbedContents"
        );
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(
            body,
            json!({"requests": [{
                "model": "models/text-embedding-004",
                "content": {"parts": [{"text": "q"}]},
                "taskType": "RETRIEVAL_QUERY",
                "outputDimensionality": 768
            }]})
        );
        let req = request(json!({"model": "m", "input": "q", "taskType": "CLUSTERING"}));
        let up = adapter_for(&t).build_embeddings(ctx(&t), &req).unwrap();
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body["requests"][0]["taskType"], "CLUSTERING");
    }

    #[test]
    fn token_ids_are_a_400() {
        let t = target("");
        let req = request(json!({"model": "m", "input": [1, 2, 3]}));
        let e = adapter_for(&t).build_embeddings(ctx(&t), &req).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.body.param.as_deref(), Some("input"));
        assert!(e
            .body
            .message
            .contains("Gemini takes text input, not token ids"));
    }

    #[test]
    fn answers_give_vectors_in_order_without_usage() {
        let t = target("");
        let req = request(json!({"model": "m", "input": ["a", "b"]}));
        let body = br#"{"embeddings":[{"values":[0.5,-1]},{"values":[0.25,2]}]}"#;
        assert_eq!(
            adapter_for(&t).parse_embeddings(&t, &req, body).unwrap(),
            EmbeddingAnswer::Vectors {
                vectors: vec![vec![0.5, -1.0], vec![0.25, 2.0]],
                prompt_tokens: None,
            }
        );
    }

    #[test]
    fn bad_answers_are_502s() {
        let t = target("");
        let req = request(json!({"model": "m", "input": ["a", "b"]}));
        for (body, says) in [
            (&b"<html>"[..], "invalid batchEmbedContents answer"),
            (
                br#"{"embedding":{"values":[1]}}"#,
                "invalid batchEmbedContents answer",
            ),
            (
                br#"{"embeddings":[{"values":"x"}]}"#,
                "invalid batchEmbedContents answer",
            ),
            (
                br#"{"embeddings":[{"values":[1]}]}"#,
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
