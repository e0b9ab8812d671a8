//! The Bedrock event-stream decoder (`kt::providers::bedrock::eventstream::Decoder`).
//!
//! Three kinds of input: mutated captures (mostly stopped by the checksums), messages
//! whose header block was mutated and then framed again with correct lengths and CRCs (so
//! the header parser sees the garbage), and random messages built from typed headers.
//!
//! Properties: nothing panics; the messages and the first error do not depend on how the
//! bytes are cut; every accepted message re-encodes to exactly the bytes it came from
//! (the framing is canonical, so nothing was misread); random messages round-trip.

use kt::providers::bedrock::eventstream::{
    encode, Decoder, EventStreamError, HeaderValue, Message,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use crate::harness::{self, Bytes};
use crate::mutate;

const TARGET: &str = "eventstream";

const DICT: &[&str] = &[
    "\x0b:event-type\x07\x00\x0cmessageStart",
    "\x0d:message-type\x07\x00\x09exception",
    "\x00\x00\x00\x10\x00\x00\x00\x00",
    "\x7f\x7f\x7f\x7f",
];

/// What a decoder made of a byte stream: the messages, then the first error (of `feed`,
/// or else of `finish`).
#[derive(Debug, PartialEq)]
struct Decoded {
    messages: Vec<Message>,
    error: Option<EventStreamError>,
}

fn decode(pieces: &[&[u8]]) -> Decoded {
    let mut d = Decoder::new();
    let mut messages = Vec::new();
    for p in pieces {
        if let Err(e) = d.feed(p, &mut messages) {
            return Decoded {
                messages,
                error: Some(e),
            };
        }
    }
    Decoded {
        messages,
        error: d.finish().err(),
    }
}

fn reencode(m: &Message) -> Vec<u8> {
    let headers: Vec<(&str, HeaderValue)> = m
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    encode(&headers, &m.payload)
}

fn check(input: &[u8], splits: &[Index]) -> Result<(), TestCaseError> {
    let whole = decode(&[input]);
    let cut = decode(&mutate::pieces(input, splits));
    prop_assert_eq!(&cut, &whole, "cut at {:?}", splits);
    let consumed: Vec<u8> = whole.messages.iter().flat_map(reencode).collect();
    prop_assert!(
        input.starts_with(&consumed),
        "the accepted messages do not re-encode to the input's first {} bytes",
        consumed.len()
    );
    match &whole.error {
        None => prop_assert_eq!(consumed.len(), input.len()),
        Some(EventStreamError::Truncated(n)) => prop_assert_eq!(consumed.len() + n, input.len()),
        Some(_) => {}
    }
    Ok(())
}

/// One message: prelude with both lengths and its CRC, headers, payload, message CRC.
fn frame(headers: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = (12 + headers.len() + payload.len() + 4) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(headers);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// The header blocks and payloads of every message of the corpus.
fn corpus_parts() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut headers = Vec::new();
    let mut payloads = Vec::new();
    for (_, bytes) in harness::corpus(TARGET) {
        let mut rest = bytes.as_slice();
        for m in decode(&[&bytes]).messages {
            let len = reencode(&m).len();
            let headers_len = u32::from_be_bytes(rest[4..8].try_into().unwrap()) as usize;
            headers.push(rest[12..12 + headers_len].to_vec());
            payloads.push(m.payload);
            rest = &rest[len..];
        }
    }
    (headers, payloads)
}

fn header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        any::<bool>().prop_map(HeaderValue::Bool),
        any::<i8>().prop_map(HeaderValue::Byte),
        any::<i16>().prop_map(HeaderValue::Short),
        any::<i32>().prop_map(HeaderValue::Int),
        any::<i64>().prop_map(HeaderValue::Long),
        vec(any::<u8>(), 0..300).prop_map(HeaderValue::Bytes),
        ".{0,80}".prop_map(HeaderValue::String),
        any::<i64>().prop_map(HeaderValue::Timestamp),
        any::<[u8; 16]>().prop_map(HeaderValue::Uuid),
    ]
}

#[test]
fn corpus() {
    harness::replay(TARGET, |_, bytes| {
        let decoded = decode(&[bytes]);
        prop_assert!(decoded.error.is_none(), "a seed fails: {:?}", decoded.error);
        check(bytes, &[])
    });
}

#[test]
fn mutations() {
    let seeds = harness::corpus(TARGET)
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let strategy = (mutate::mutated(seeds, DICT), mutate::splits());
    harness::fuzz(TARGET, 4000, strategy, |(input, splits)| {
        check(&input.0, splits)
    });
}

/// Mutated header blocks behind valid framing: the header parser gets the garbage.
#[test]
fn mutated_headers_reframed() {
    let (headers, payloads) = corpus_parts();
    let strategy = (
        mutate::mutated(headers, DICT),
        any::<Index>(),
        mutate::splits(),
    )
        .prop_map(move |(h, p, splits)| {
            let mut bytes = frame(&h.0, p.get(&payloads).as_slice());
            bytes.extend(frame(&h.0, b"{}"));
            (Bytes(bytes), splits)
        });
    harness::fuzz("eventstream-headers", 4000, strategy, |(input, splits)| {
        check(&input.0, splits)
    });
}

/// Messages built from typed headers decode to themselves, however the stream is cut.
#[test]
fn typed_messages_round_trip() {
    let message = (
        vec(("[:a-z-]{0,24}", header_value()), 0..8),
        vec(any::<u8>(), 0..512),
    );
    let strategy = (vec(message, 1..5), mutate::splits()).prop_map(|(messages, splits)| {
        let bytes: Vec<u8> = messages
            .iter()
            .flat_map(|(headers, payload)| {
                let headers: Vec<(&str, HeaderValue)> = headers
                    .iter()
                    .map(|(k, v): &(String, HeaderValue)| (k.as_str(), v.clone()))
                    .collect();
                encode(&headers, payload)
            })
            .collect();
        (Bytes(bytes), (messages, splits))
    });
    harness::fuzz(
        "eventstream-typed",
        2000,
        strategy,
        |(input, (messages, splits))| {
            let decoded = decode(&mutate::pieces(&input.0, splits));
            prop_assert_eq!(decoded.error, None);
            let want: Vec<Message> = messages
                .iter()
                .map(|(headers, payload)| Message {
                    headers: headers.clone(),
                    payload: payload.clone(),
                })
                .collect();
            prop_assert_eq!(decoded.messages, want);
            check(&input.0, splits)
        },
    );
}
