//! The `pii-detector` policy (every detector, under each redaction setting) and the
//! chain's stream filter (`kt::policy::StreamFilter`) on mutated and random text.
//!
//! Properties: nothing panics; a stream redacted as it flows, cut anywhere, equals the
//! redaction of the whole text, with the same findings (also through a chain of
//! `pii-detector` and `dlp-filter`); requests and answers are redacted alike;
//! `preserve_length` keeps the length; known values set in random text never survive.

use kt::openai::{ChatRequest, ChatResponse, Message, Role};
use kt::policy::chain::FailMode;
use kt::policy::dlp_filter::DlpFilter;
use kt::policy::pii_detector::PiiDetector;
use kt::policy::scan::live::MAX_HOLD;
use kt::policy::{Decision, Finding, Policy, PolicyChain, RequestContext};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::json;

use crate::harness::{self, Bytes};
use crate::mutate;

const TARGET: &str = "pii";

/// `policy.pii-detector` blocks: every marker format and mode.
const CONFIGS: &[&str] = &[
    "{}",
    "pci_mode: true",
    "healthcare_mode: true",
    "redaction: {marker_format: partial}",
    "{pci_mode: true, redaction: {marker_format: partial, preserve_length: true}}",
    "redaction: {marker_format: asterisk, preserve_length: true}",
    "redaction: {preserve_length: true}",
    "redaction: {include_metadata: true, marker_format: partial}",
    "action: block",
    "detect_patterns: [{name: employee_id, pattern: '\\bEMP-\\d{6}\\b'}, {name: greedy, pattern: 'a+b?c*'}]",
    "redaction: {custom_markers: {email: '', phone: 'call a@b.io'}}",
];

const DLP: &str = r#"
redaction_marker: "[REDACTED:{name}]"
rules:
  - {name: codenames, action: redact, keywords: [nightjar, bluebird], phrases: ["blue bird"]}
  - {name: hosts, action: redact, patterns: ['\b[a-z0-9-]+\.corp\.internal\b']}
"#;

/// Values of every default detector, each redacted when it stands alone.
const VALUES: &[&str] = &[
    "john.doe+news@mail.example.co.uk",
    "a@b.io",
    "+44 20 7946 0958",
    "(415) 555-2671",
    "415.555.2672",
    "123-45-6789",
    "4111 1111 1111 1111",
    "5500-0000-0000-0004",
    "378282246310005",
    "DE89 3704 0044 0532 0130 00",
    "GB82WEST12345698765432",
    "192.168.1.20",
    "2001:db8::8a2e:370:7334",
    "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
    "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe-AbCd",
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij",
    "xoxb-1234567890-abcdefghijkl",
    "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn\n-----END RSA PRIVATE KEY-----",
];

const DICT: &[&str] = &[
    "4111 1111 1111 1111",
    "a@b.io",
    "123-45-6789",
    "MRN: ",
    "NPI ",
    "CVV: ",
    "exp 12/27",
    "sk-",
    "eyJ",
    "-----BEGIN PRIVATE KEY-----\n",
    "-----END PRIVATE KEY-----",
    "EMP-004211",
    "nightjar",
    "x.corp.internal",
    "+1 ",
    "::",
];

fn block(yaml: &str) -> serde_yaml::Value {
    serde_yaml::from_str(yaml).unwrap()
}

fn detectors() -> Vec<PiiDetector> {
    CONFIGS
        .iter()
        .map(|c| PiiDetector::from_block(&block(c)).unwrap())
        .collect()
}

fn request(text: &str) -> ChatRequest {
    ChatRequest {
        model: "m".into(),
        messages: vec![Message::text(Role::User, text)],
        ..ChatRequest::default()
    }
}

fn answer(text: &str) -> ChatResponse {
    serde_json::from_value(json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]
    }))
    .unwrap()
}

fn findings(d: &Decision) -> Vec<Finding> {
    match d {
        Decision::Allow => Vec::new(),
        Decision::Redacted { findings, .. }
        | Decision::Flag { findings, .. }
        | Decision::Block { findings, .. } => findings.clone(),
    }
}

fn stream(p: &dyn Policy, pieces: &[&str]) -> (String, Vec<Finding>) {
    let mut f = p.stream_filter().unwrap();
    let mut out: String = pieces.iter().map(|piece| f.push(piece)).collect();
    out.push_str(&f.finish());
    (out, f.findings())
}

/// `text` in pieces of `size` characters, as a model streams tokens.
fn tokens(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn check(
    policies: &[PiiDetector],
    config: usize,
    text: &str,
    pieces: &[&str],
) -> Result<(), TestCaseError> {
    let p = &policies[config];
    let ctx = RequestContext::default();
    let mut req = request(text);
    let decision = p.on_input(&ctx, &mut req).unwrap();
    let redacted = req.messages[0].text_content();
    if CONFIGS[config].contains("preserve_length: true") {
        prop_assert_eq!(redacted.chars().count(), text.chars().count());
    }
    let blocks = matches!(decision, Decision::Block { .. });
    if blocks {
        prop_assert_eq!(&redacted, text, "a block rewrote the request");
    }
    let mut resp = answer(text);
    let out_decision = p.on_output(&ctx, &mut resp).unwrap();
    prop_assert_eq!(findings(&out_decision), findings(&decision));
    prop_assert_eq!(&resp.choices[0].message.text_content(), &redacted);
    let (streamed, stream_findings) = stream(p, pieces);
    if text.len() > MAX_HOLD {
        // A stream gives up holding back a match that could span more than this (see
        // `scan::live`): only shorter texts are certain to stream as they redact whole.
        return Ok(());
    }
    prop_assert_eq!(&stream_findings, &findings(&decision), "stream findings");
    if !blocks {
        prop_assert_eq!(&streamed, &redacted, "stream in {} pieces", pieces.len());
    }
    Ok(())
}

#[test]
fn corpus() {
    let policies = detectors();
    harness::replay(TARGET, |_, bytes| {
        let text = std::str::from_utf8(bytes).unwrap();
        let chars = tokens(text, 1);
        let chars: Vec<&str> = chars.iter().map(String::as_str).collect();
        for config in 0..CONFIGS.len() {
            check(&policies, config, text, &[text])?;
            check(&policies, config, text, &chars)?;
        }
        Ok(())
    });
}

#[test]
fn mutations() {
    let policies = detectors();
    let seeds = harness::corpus(TARGET)
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let strategy = (
        mutate::mutated(seeds, DICT),
        (0..CONFIGS.len(), mutate::splits()),
    );
    harness::fuzz(TARGET, 1500, strategy, |(input, (config, splits))| {
        let text = String::from_utf8_lossy(&input.0);
        check(
            &policies,
            *config,
            &text,
            &mutate::str_pieces(&text, splits),
        )
    });
}

/// Long runs (up to three times what a stream holds back) streamed a few characters at
/// a time, as a model emits tokens: each case stays within the time bound, and equals
/// the whole-text redaction where the stream can hold a whole match back.
#[test]
fn long_runs_streamed_token_by_token() {
    let policies = detectors();
    let strategy = (
        mutate::runs(DICT, 3 * MAX_HOLD),
        (0..CONFIGS.len(), 1usize..8),
    );
    harness::fuzz("pii-long-runs", 100, strategy, |(input, (config, size))| {
        let text = String::from_utf8_lossy(&input.0);
        let pieces = tokens(&text, *size);
        let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
        check(&policies, *config, &text, &pieces)
    });
}

/// Known values between random text: none survives, whole or streamed.
#[test]
fn known_values_never_survive() {
    let p = PiiDetector::from_block(&block("{}")).unwrap();
    let strategy = (
        vec(("(?s).{0,40}", prop::sample::select(VALUES)), 1..6),
        mutate::splits(),
    )
        .prop_map(|(parts, splits)| {
            let text: String = parts
                .iter()
                .map(|(filler, value)| format!("{filler}\n|\n{value}\n|\n"))
                .collect();
            (Bytes(text.into_bytes()), (parts, splits))
        });
    harness::fuzz(
        "pii-known-values",
        2000,
        strategy,
        |(input, (parts, splits))| {
            let text = std::str::from_utf8(&input.0).unwrap();
            let mut req = request(text);
            p.on_input(&RequestContext::default(), &mut req).unwrap();
            let whole = req.messages[0].text_content();
            let (streamed, _) = stream(&p, &mutate::str_pieces(text, splits));
            for (_, value) in parts {
                prop_assert!(!whole.contains(value), "{value:?} survives in {whole:?}");
                prop_assert!(!streamed.contains(value), "{value:?} survives the stream");
            }
            Ok(())
        },
    );
}

/// The chain's stream filter (`pii-detector` then `dlp-filter`) equals the chain's
/// rewrite of the whole answer.
#[test]
fn chain_stream_filter_equals_whole_text() {
    let chains: Vec<PolicyChain> = CONFIGS
        .iter()
        .filter(|c| !c.contains("block"))
        .map(|c| {
            let policies: Vec<Box<dyn Policy>> = vec![
                Box::new(PiiDetector::from_block(&block(c)).unwrap()),
                Box::new(DlpFilter::from_block(&block(DLP)).unwrap()),
            ];
            PolicyChain::from_policies(policies, FailMode::Block)
        })
        .collect();
    let seeds = harness::corpus(TARGET)
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let strategy = (
        mutate::mutated(seeds, DICT),
        (0..chains.len(), mutate::splits()),
    );
    harness::fuzz("pii-chain", 800, strategy, |(input, (chain, splits))| {
        let chain = &chains[*chain];
        let text = String::from_utf8_lossy(&input.0);
        let mut resp = answer(&text);
        chain.run_output(&RequestContext::default(), &mut resp);
        let whole = resp.choices[0].message.text_content();
        let mut f = chain.stream_filter();
        let mut streamed: String = mutate::str_pieces(&text, splits)
            .iter()
            .map(|piece| f.push(piece))
            .collect();
        streamed.push_str(&f.finish());
        // As in `check`: only texts a stream can hold back whole.
        if text.len() <= MAX_HOLD {
            prop_assert_eq!(&streamed, &whole, "cut at {:?}", splits);
        }
        Ok(())
    });
}
