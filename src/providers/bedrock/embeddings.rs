//! Bedrock embeddings for `POST /v1/embeddings`: InvokeModel
//! (`POST {base}/model/{modelId}/invoke`), authorised like Converse. The body is the model
//! family's own:
//!
//! - Amazon Titan text embeddings (ids holding `titan-embed`): `{"inputText"}`, plus
//!   `dimensions` when asked (v2 takes 256, 512 or 1024; Bedrock rejects the rest), answered
//!   by `{"embedding", "inputTextTokenCount"}`. One text per request.
//! - Cohere Embed (ids holding `cohere.embed`): Cohere's Embed fields without `model`
//!   (see `cohere::embeddings`), answered by the vectors, bare or by type. Bedrock's
//!   Cohere answer counts no tokens.
//!
//! Ids may carry a region prefix or be ARNs; other models are a 400.

use serde::Deserialize;
use serde_json::{json, Value};

use super::BedrockAdapter;
use crate::config::Target;
use crate::openai::embeddings::EmbeddingRequest;
use crate::openai::ApiError;
use crate::providers::cohere::embeddings::{check_count, embed_fields, read_vectors};
use crate::providers::{BuildContext, EmbeddingAnswer, UpstreamRequest};

/// The embedding model families kt translates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Titan,
    Cohere,
}

/// # Errors
/// 400 naming the model when it is of neither family.
fn family(model: &str) -> Result<Family, ApiError> {
    let id = model.to_ascii_lowercase();
    if id.contains("titan-embed") {
        Ok(Family::Titan)
    } else if id.contains("cohere.embed") {
        Ok(Family::Cohere)
    } else {
        Err(ApiError::bad_request(format!(
            "Bedrock model `{model}` is not an embedding model kt can call: kt embeds with Amazon Titan text embeddings (`amazon.titan-embed-text-v2:0`, `amazon.titan-embed-text-v1`) and Cohere Embed (`cohere.embed-english-v3`, `cohere.embed-multilingual-v3`, `cohere.embed-v4:0`), by model id, inference profile or ARN."
        ))
        .with_param("model"))
    }
}

/// The family is read from the target's model, the one the URL invokes.
pub fn build(ctx: BuildContext<'_>, req: &EmbeddingRequest) -> Result<UpstreamRequest, ApiError> {
    let family = family(&ctx.target.model)?;
    let texts = req.texts_for("Bedrock")?;
    let body = match family {
        Family::Titan => {
            let [text] = texts.as_slice() else {
                return Err(ApiError::bad_request(format!(
                    "Amazon Titan embeds one text per request and this request has {}: send one input per call.",
                    texts.len()
                ))
                .with_param("input"));
            };
            let mut body = json!({ "inputText": text });
            if let Some(d) = req.dimensions {
                body["dimensions"] = Value::from(d);
            }
            body
        }
        Family::Cohere => Value::Object(embed_fields(req, texts)),
    };
    let body = serde_json::to_vec(&body)
        .map_err(|e| ApiError::internal(format!("failed to serialize the request: {e}")))?;
    let (url, region) = BedrockAdapter::url(ctx.target, "invoke")?;
    BedrockAdapter::post(ctx, url, &region, body)
}

/// A Titan text embeddings answer (`embeddingsByType` is not read: kt asks for floats).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanAnswer {
    embedding: Vec<f32>,
    #[serde(default)]
    input_text_token_count: Option<u64>,
}

/// # Errors
/// 400 for a model of neither family; 502 when the body is not the family's answer, or
/// holds a different number of vectors than `req` has inputs.
pub fn parse(
    target: &Target,
    req: &EmbeddingRequest,
    body: &[u8],
) -> Result<EmbeddingAnswer, ApiError> {
    let (vectors, prompt_tokens) = match family(&target.model)? {
        Family::Titan => {
            let answer: TitanAnswer = serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_gateway(format!(
                    "bedrock returned an invalid Titan embeddings answer (expected `embedding`): {e}"
                ))
            })?;
            check_count("bedrock", 1, req.input.len())?;
            (vec![answer.embedding], answer.input_text_token_count)
        }
        Family::Cohere => read_vectors("bedrock", req, body)?,
    };
    Ok(EmbeddingAnswer::Vectors {
        vectors,
        prompt_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AwsCredentials, Secret};
    use crate::providers::adapter_for;
    use crate::providers::bedrock::tests::target;
    use std::time::{Duration, SystemTime};

    fn request(v: Value) -> EmbeddingRequest {
        EmbeddingRequest::parse(v.to_string().as_bytes()).unwrap()
    }

    /// A target on `model` with a Bedrock API key (bearer auth) and a local endpoint.
    fn keyed(model: &str) -> Target {
        let mut t = target(", base_url: 'http://127.0.0.1:9', headers: {X-Team: search}");
        t.model = model.to_string();
        t.aws = None;
        t.credential = Some(Secret::new("br-key"));
        t
    }

    fn ctx(t: &Target) -> BuildContext<'_> {
        BuildContext {
            target: t,
            api_key: None,
            account: &[],
            now: SystemTime::now(),
            raw_body: None,
        }
    }

    fn header<'a>(up: &'a UpstreamRequest, name: &str) -> Option<&'a str> {
        up.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The same request botocore 1.43 signs (`SigV4Auth`, service `bedrock`) to
    /// `Signature=f49b4307…`: the invoke URL, Titan body and signed headers together.
    #[test]
    fn titan_request_is_signed_like_converse() {
        let mut t = target(", region: us-west-2");
        t.model = "amazon.titan-embed-text-v2:0".to_string();
        t.credential = None;
        t.aws = Some(AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: Some(Secret::new("FQoGZXIvYXdzEXAMPLETOKEN")),
        });
        let req = request(json!({
            "model": "amazon.titan-embed-text-v2:0", "input": "Hello", "dimensions": 256
        }));
        let up = adapter_for(&t)
            .build_embeddings(
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
            "https://bedrock-runtime.us-west-2.amazonaws.com/model/amazon.titan-embed-text-v2%3A0/invoke"
        );
        assert_eq!(
            std::str::from_utf8(&up.body).unwrap(),
            r#"{"inputText":"Hello","dimensions":256}"#
        );
        assert_eq!(header(&up, "x-amz-date"), Some("20250301T080910Z"));
        assert_eq!(
            header(&up, "authorization"),
            Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250301/us-west-2/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=f49b43077b14a48e5c6e665259cb104616cd618f6ce5fb043838c669a0e1343b")
        );
    }

    #[test]
    fn titan_takes_one_text_and_reads_its_token_count() {
        let t = keyed("amazon.titan-embed-text-v1");
        let req = request(json!({"model": "amazon.titan-embed-text-v1", "input": ["only"]}));
        let up = adapter_for(&t).build_embeddings(ctx(&t), &req).unwrap();
        assert_eq!(
            up.url,
            "http://127.0.0.1:9/model/amazon.titan-embed-text-v1/invoke"
        );
        assert_eq!(header(&up, "authorization"), Some("Bearer br-key"));
        assert_eq!(header(&up, "x-team"), Some("search"));
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(body, json!({"inputText": "only"}));
        assert_eq!(
            adapter_for(&t)
                .parse_embeddings(
                    &t,
                    &req,
                    br#"{"embedding":[0.5,-1],"inputTextTokenCount":4,"embeddingsByType":{"float":[0.5,-1]}}"#
                )
                .unwrap(),
            EmbeddingAnswer::Vectors {
                vectors: vec![vec![0.5, -1.0]],
                prompt_tokens: Some(4),
            }
        );
        let req = request(json!({"model": "m", "input": ["a", "b"]}));
        let e = adapter_for(&t).build_embeddings(ctx(&t), &req).unwrap_err();
        assert_eq!((e.status, e.body.param.as_deref()), (400, Some("input")));
        assert!(
            e.body.message.contains("one text per request"),
            "{}",
            e.body.message
        );
    }

    #[test]
    fn model_ids_match_by_family_and_others_are_a_400() {
        let arn = "arn:aws:bedrock:eu-west-1::foundation-model/amazon.titan-embed-text-v2:0";
        assert_eq!(family(arn).unwrap(), Family::Titan);
        assert_eq!(family("us.cohere.embed-v4:0").unwrap(), Family::Cohere);
        let t = keyed(arn);
        let req = request(json!({"model": arn, "input": "x"}));
        let up = adapter_for(&t).build_embeddings(ctx(&t), &req).unwrap();
        assert_eq!(
            up.url,
            "http://127.0.0.1:9/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A%3Afoundation-model%2Famazon.titan-embed-text-v2%3A0/invoke"
        );
        let model = "us.anthropic.claude-3-7-sonnet-20250219-v1:0";
        let t = keyed(model);
        let req = request(json!({"model": model, "input": "x"}));
        let e = adapter_for(&t).build_embeddings(ctx(&t), &req).unwrap_err();
        assert_eq!((e.status, e.body.param.as_deref()), (400, Some("model")));
        assert!(e.body.message.contains(model), "{}", e.body.message);
        assert!(e.body.message.contains("Titan") && e.body.message.contains("Cohere Embed"));
    }

    #[test]
    fn token_ids_are_a_400() {
        let t = keyed("cohere.embed-english-v3");
        let req = request(json!({"model": "cohere.embed-english-v3", "input": [1, 2]}));
        let e = adapter_for(&t).build_embeddings(ctx(&t), &req).unwrap_err();
        assert_eq!((e.status, e.body.param.as_deref()), (400, Some("input")));
        assert!(e
            .body
            .message
            .contains("Bedrock takes text input, not token ids"));
        assert!(!e.body.message.contains("br-key"));
    }

    #[test]
    fn cohere_takes_its_embed_fields_and_answers_in_either_shape() {
        let t = keyed("cohere.embed-multilingual-v3");
        let req = request(json!({
            "model": "cohere.embed-multilingual-v3", "input": ["a", "b"],
            "input_type": "search_query"
        }));
        let up = adapter_for(&t).build_embeddings(ctx(&t), &req).unwrap();
        assert_eq!(
            up.url,
            "http://127.0.0.1:9/model/cohere.embed-multilingual-v3/invoke"
        );
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(
            body,
            json!({"texts": ["a", "b"], "input_type": "search_query", "embedding_types": ["float"]})
        );
        let want = EmbeddingAnswer::Vectors {
            vectors: vec![vec![1.0], vec![2.0]],
            prompt_tokens: None,
        };
        for answer in [
            &br#"{"id":"x","embeddings":[[1],[2]],"response_type":"embeddings_floats","texts":["a","b"]}"#[..],
            br#"{"id":"x","embeddings":{"float":[[1],[2]]},"response_type":"embeddings_by_type","texts":["a","b"]}"#,
        ] {
            assert_eq!(
                adapter_for(&t).parse_embeddings(&t, &req, answer).unwrap(),
                want
            );
        }
    }

    #[test]
    fn bad_answers_are_502s() {
        let t = keyed("amazon.titan-embed-text-v2:0");
        let req = request(json!({"model": "amazon.titan-embed-text-v2:0", "input": "a"}));
        for body in [&b"{}"[..], br#"{"embedding":"x"}"#, b"nope"] {
            let e = adapter_for(&t)
                .parse_embeddings(&t, &req, body)
                .unwrap_err();
            assert_eq!(e.status, 502);
            assert!(
                e.body.message.contains("invalid Titan embeddings answer"),
                "{}",
                e.body.message
            );
        }
        let t = keyed("cohere.embed-english-v3");
        let req = request(json!({"model": "cohere.embed-english-v3", "input": ["a", "b"]}));
        let e = adapter_for(&t)
            .parse_embeddings(&t, &req, br#"{"embeddings":[[1]]}"#)
            .unwrap_err();
        assert_eq!(e.status, 502);
        assert!(
            e.body
                .message
                .contains("bedrock returned 1 embeddings for 2 inputs"),
            "{}",
            e.body.message
        );
    }
}
