//! `kt::providers::sse::SseParser`, the parser under every SSE provider stream.
//!
//! Properties: the events do not depend on how the bytes are cut (whole, at random
//! points, one byte at a time); they equal those of a line-by-line reference model written
//! here from the format's rules; data never holds a `\r` and event names no line break.

use kt::providers::sse::{SseEvent, SseParser};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::{harness, mutate};

const TARGET: &str = "sse";

const DICT: &[&str] = &[
    "data: ",
    "data:",
    "data",
    "event: ",
    "event:",
    ": comment\n",
    "id: 1\n",
    "retry: 1000\n",
    "data: [DONE]\n\n",
    "\r\n\r\n",
    "\r\r",
    "\n\r",
    "data: {\"choices\":[]}\n\n",
];

fn parse(pieces: &[&[u8]]) -> Vec<SseEvent> {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    for p in pieces {
        parser.feed(p, &mut out);
    }
    parser.finish(&mut out);
    out
}

/// The reference: split into lines at `\r\n`, `\r` or `\n`; a blank line dispatches the
/// event (when it has data); `:` starts a comment; `field: value` loses one leading
/// space; `data` lines join with `\n`. At the end, a pending event is still delivered.
fn model(input: &[u8]) -> Vec<SseEvent> {
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\n' => {
                lines.push(&input[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&input[start..i]);
                if input.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let rest = &input[start..];
    if !rest.is_empty() {
        lines.push(rest);
    }
    lines.push(b"");
    let mut out = Vec::new();
    let mut event: Option<String> = None;
    let mut data: Option<String> = None;
    for line in lines {
        if line.is_empty() {
            match data.take() {
                Some(data) => out.push(SseEvent {
                    event: event.take(),
                    data,
                }),
                None => event = None,
            }
            continue;
        }
        let line = String::from_utf8_lossy(line);
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.find(':') {
            Some(at) => {
                let value = &line[at + 1..];
                (&line[..at], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (&line[..], ""),
        };
        match field {
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            },
            "event" => event = Some(value.to_string()),
            _ => {}
        }
    }
    out
}

fn check(input: &[u8], splits: &[proptest::sample::Index]) -> Result<(), TestCaseError> {
    let whole = parse(&[input]);
    prop_assert_eq!(&whole, &model(input), "parser and reference model differ");
    let cut = parse(&mutate::pieces(input, splits));
    prop_assert_eq!(&cut, &whole, "cut at {:?}", splits);
    let bytewise: Vec<&[u8]> = input.chunks(1).collect();
    prop_assert_eq!(&parse(&bytewise), &whole, "one byte at a time");
    for e in &whole {
        prop_assert!(!e.data.contains('\r'), "data holds a CR: {e:?}");
        let name = e.event.as_deref().unwrap_or_default();
        prop_assert!(!name.contains(['\r', '\n']), "event name: {e:?}");
    }
    Ok(())
}

#[test]
fn corpus() {
    harness::replay(TARGET, |_, bytes| {
        let events = parse(&[bytes]);
        prop_assert!(!events.is_empty(), "a seed without events");
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
    harness::fuzz(TARGET, 8000, strategy, |(input, splits)| {
        check(&input.0, splits)
    });
}
