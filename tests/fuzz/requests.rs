//! Request translation, the one translator that sees client input: a mutated chat
//! request through every adapter's `build_request` (Bedrock signed with SigV4).
//!
//! Properties: nothing panics; a refused request is a 4xx; an accepted one has a JSON
//! body and only header names and values HTTP allows (no request can smuggle a line
//! break into an upstream header).

use std::time::{Duration, SystemTime};

use kt::config::schema::WireFormat;
use kt::config::{AwsCredentials, Secret, Target};
use kt::openai::ChatRequest;
use kt::providers::{adapter_for, BuildContext};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::providers::PROVIDERS;
use crate::{harness, mutate};

const TARGET: &str = "requests";

const DICT: &[&str] = &[
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,\"}}",
    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:\"}}",
    "{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"\",\"format\":\"wav\"}}",
    "{\"type\":\"file\",\"file\":{\"file_data\":\"data:application/pdf;base64,JVBER\"}}",
    "{\"role\":\"tool\",\"tool_call_id\":\"nope\",\"content\":\"x\"}",
    "{\"role\":\"function\",\"name\":\"f\",\"content\":\"x\"}",
    "\"tool_choice\":\"required\"",
    "\"tool_choice\":\"none\"",
    "\"response_format\":{\"type\":\"json_object\"}",
    "\"arguments\":\"{\\\"a\\\":\"",
    "\"arguments\":\"[1]\"",
    "\"max_tokens\":0",
    "\"n\":4294967295",
    "\"stop\":[]",
    "\"logit_bias\":{\"1\":100}",
    "\"model\":\"a\\r\\nX-Injected: 1\"",
];

fn targets() -> Vec<Target> {
    PROVIDERS
        .iter()
        .map(|p| {
            let mut t = p.target();
            t.credential = None;
            if t.format == WireFormat::Bedrock {
                t.aws = Some(AwsCredentials {
                    access_key_id: "AKIDEXAMPLE".into(),
                    secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                    session_token: Some(Secret::new("token")),
                });
            }
            t
        })
        .collect()
}

fn check(targets: &[Target], input: &[u8]) -> Result<(), TestCaseError> {
    let Ok(req) = serde_json::from_slice::<ChatRequest>(input) else {
        return Ok(());
    };
    for t in targets {
        let ctx = BuildContext {
            target: t,
            api_key: t.aws.is_none().then_some("sk-fuzz"),
            account: &[],
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_740_816_550),
            raw_body: None,
        };
        match adapter_for(t).build_request(ctx, &req) {
            Ok(up) => {
                let body = serde_json::from_slice::<serde_json::Value>(&up.body);
                prop_assert!(body.is_ok(), "{}: the body is not JSON", t.id);
                for (name, value) in &up.headers {
                    prop_assert!(
                        http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                            && http::HeaderValue::from_str(value).is_ok(),
                        "{}: invalid header {name:?}: {value:?}",
                        t.id
                    );
                }
                prop_assert!(
                    up.url.parse::<http::Uri>().is_ok(),
                    "{}: URL {}",
                    t.id,
                    up.url
                );
            }
            Err(e) => prop_assert!(
                (400..=499).contains(&e.status),
                "{}: a refused request is a {}: {e:?}",
                t.id,
                e.status
            ),
        }
    }
    Ok(())
}

#[test]
fn corpus() {
    let targets = targets();
    harness::replay(TARGET, |_, bytes| {
        prop_assert!(
            serde_json::from_slice::<ChatRequest>(bytes).is_ok(),
            "not a request"
        );
        check(&targets, bytes)
    });
}

#[test]
fn mutations() {
    let targets = targets();
    let seeds = harness::corpus(TARGET)
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    harness::fuzz(TARGET, 4000, mutate::mixed(seeds, DICT), |input| {
        check(&targets, &input.0)
    });
}
