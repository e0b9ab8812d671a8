//! The AWS binary event-stream framing (`application/vnd.amazon.eventstream`) that
//! ConverseStream answers with, decoded incrementally: bytes may arrive split anywhere.
//!
//! A message is a 12-byte prelude (total length, headers length, CRC32 of those 8 bytes,
//! all big-endian u32), the headers, the payload, and a CRC32 of everything before it.
//! A header is `name_len u8 | name | type u8 | value`. Both CRCs are checked.
//!
//! `encode` writes the same framing; kt itself only decodes (the encoder serves tests and
//! the mock upstream).

/// Largest message kt accepts (botocore's limits: 128 KiB of headers, 24 MiB of payload).
const MAX_MESSAGE: usize = 16 + 128 * 1024 + 24 * 1024 * 1024;
const PRELUDE: usize = 12;
const MIN_MESSAGE: usize = PRELUDE + 4;

/// A typed header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    /// Milliseconds since the epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// A string header (`:message-type`, `:event-type`, …).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(k, v)| match v {
            HeaderValue::String(s) if k == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Why a byte stream is not a valid event stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventStreamError {
    #[error(
        "event-stream prelude checksum mismatch (expected `{expected:08x}`, got `{actual:08x}`)"
    )]
    PreludeCrc { expected: u32, actual: u32 },
    #[error(
        "event-stream message checksum mismatch (expected `{expected:08x}`, got `{actual:08x}`)"
    )]
    MessageCrc { expected: u32, actual: u32 },
    #[error("event-stream message length `{total}` with headers length `{headers}` is invalid")]
    Length { total: usize, headers: usize },
    #[error("event-stream header is malformed: {0}")]
    Header(&'static str),
    #[error("event-stream ended inside a message ({0} bytes left over)")]
    Truncated(usize),
}

/// Incremental decoder.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Feeds bytes; every complete message is appended to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Message>) -> Result<(), EventStreamError> {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        let result = loop {
            match next_message(self.buf.get(start..).unwrap_or_default()) {
                Ok(Some((message, used))) => {
                    out.push(message);
                    start += used;
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.buf.drain(..start.min(self.buf.len()));
        result
    }

    /// The stream ended: leftover bytes mean it was cut inside a message.
    pub fn finish(&mut self) -> Result<(), EventStreamError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(EventStreamError::Truncated(self.buf.len()))
        }
    }
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Decodes the first message of `buf`, if it is complete: (message, bytes used).
fn next_message(buf: &[u8]) -> Result<Option<(Message, usize)>, EventStreamError> {
    let (Some(total), Some(headers_len), Some(prelude_crc)) =
        (be_u32(buf, 0), be_u32(buf, 4), be_u32(buf, 8))
    else {
        return Ok(None);
    };
    let actual = crc32fast::hash(buf.get(..8).unwrap_or_default());
    if actual != prelude_crc {
        return Err(EventStreamError::PreludeCrc {
            expected: prelude_crc,
            actual,
        });
    }
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let headers_len = usize::try_from(headers_len).unwrap_or(usize::MAX);
    if !(MIN_MESSAGE..=MAX_MESSAGE).contains(&total) || headers_len > total - MIN_MESSAGE {
        return Err(EventStreamError::Length {
            total,
            headers: headers_len,
        });
    }
    let Some(message) = buf.get(..total) else {
        return Ok(None);
    };
    let expected = be_u32(message, total - 4).unwrap_or_default();
    let actual = crc32fast::hash(message.get(..total - 4).unwrap_or_default());
    if actual != expected {
        return Err(EventStreamError::MessageCrc { expected, actual });
    }
    let header_bytes = message
        .get(PRELUDE..PRELUDE + headers_len)
        .unwrap_or_default();
    let headers = parse_headers(header_bytes)?;
    let payload = message
        .get(PRELUDE + headers_len..total - 4)
        .unwrap_or_default()
        .to_vec();
    Ok(Some((Message { headers, payload }, total)))
}

/// Reads headers with a cursor; every read is bounds-checked.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EventStreamError> {
        let s = self
            .b
            .get(self.at..self.at + n)
            .ok_or(EventStreamError::Header("a value runs past the headers"))?;
        self.at += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EventStreamError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u16_len(&mut self) -> Result<usize, EventStreamError> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }
}

fn parse_headers(b: &[u8]) -> Result<Vec<(String, HeaderValue)>, EventStreamError> {
    let mut c = Cursor { b, at: 0 };
    let mut out = Vec::new();
    while c.at < b.len() {
        let name_len = usize::from(c.take(1)?[0]);
        let name = std::str::from_utf8(c.take(name_len)?)
            .map_err(|_| EventStreamError::Header("a header name is not UTF-8"))?
            .to_string();
        let kind = c.take(1)?[0];
        let value = match kind {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(c.array()?)),
            3 => HeaderValue::Short(i16::from_be_bytes(c.array()?)),
            4 => HeaderValue::Int(i32::from_be_bytes(c.array()?)),
            5 => HeaderValue::Long(i64::from_be_bytes(c.array()?)),
            6 => {
                let n = c.u16_len()?;
                HeaderValue::Bytes(c.take(n)?.to_vec())
            }
            7 => {
                let n = c.u16_len()?;
                HeaderValue::String(
                    std::str::from_utf8(c.take(n)?)
                        .map_err(|_| EventStreamError::Header("a string value is not UTF-8"))?
                        .to_string(),
                )
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(c.array()?)),
            9 => HeaderValue::Uuid(c.array()?),
            _ => return Err(EventStreamError::Header("unknown header value type")),
        };
        out.push((name, value));
    }
    Ok(out)
}

/// Encodes one message. Names longer than 255 bytes and string/bytes values longer than
/// 65535 bytes are cut (callers pass short protocol headers).
pub fn encode(headers: &[(&str, HeaderValue)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        let name = name
            .as_bytes()
            .get(..name.len().min(255))
            .unwrap_or_default();
        h.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        h.extend_from_slice(name);
        let short = |h: &mut Vec<u8>, kind: u8, bytes: &[u8]| {
            let bytes = bytes.get(..bytes.len().min(65535)).unwrap_or_default();
            h.push(kind);
            h.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes());
            h.extend_from_slice(bytes);
        };
        match value {
            HeaderValue::Bool(true) => h.push(0),
            HeaderValue::Bool(false) => h.push(1),
            HeaderValue::Byte(v) => {
                h.push(2);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Short(v) => {
                h.push(3);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Int(v) => {
                h.push(4);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Long(v) => {
                h.push(5);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Bytes(v) => short(&mut h, 6, v),
            HeaderValue::String(v) => short(&mut h, 7, v.as_bytes()),
            HeaderValue::Timestamp(v) => {
                h.push(8);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Uuid(v) => {
                h.push(9);
                h.extend_from_slice(v);
            }
        }
    }
    let total = u32::try_from(MIN_MESSAGE + h.len() + payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(MIN_MESSAGE + h.len() + payload.len());
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&u32::try_from(h.len()).unwrap_or(u32::MAX).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// An `event` message as ConverseStream sends it (`:event-type`, JSON payload).
pub fn encode_event(event_type: &str, payload: &[u8]) -> Vec<u8> {
    encode(
        &[
            (":event-type", HeaderValue::String(event_type.to_string())),
            (
                ":content-type",
                HeaderValue::String("application/json".to_string()),
            ),
            (":message-type", HeaderValue::String("event".to_string())),
        ],
        payload,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message assembled by hand from the documented layout, not by `encode`:
    /// one string header `:event-type: messageStart`, payload `{"role":"assistant"}`.
    fn hand_made() -> Vec<u8> {
        let payload = br#"{"role":"assistant"}"#;
        let mut headers = vec![11u8];
        headers.extend_from_slice(b":event-type");
        headers.push(7);
        headers.extend_from_slice(&12u16.to_be_bytes());
        headers.extend_from_slice(b"messageStart");
        let total = 12 + headers.len() + payload.len() + 4;
        let mut m = Vec::new();
        m.extend_from_slice(&(total as u32).to_be_bytes());
        m.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let crc = crc32fast::hash(&m);
        m.extend_from_slice(&crc.to_be_bytes());
        m.extend_from_slice(&headers);
        m.extend_from_slice(payload);
        let crc = crc32fast::hash(&m);
        m.extend_from_slice(&crc.to_be_bytes());
        m
    }

    #[test]
    fn decodes_a_hand_made_message_and_encode_matches_it() {
        let bytes = hand_made();
        let mut d = Decoder::new();
        let mut out = Vec::new();
        d.feed(&bytes, &mut out).unwrap();
        d.finish().unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].header_str(":event-type"), Some("messageStart"));
        assert_eq!(out[0].payload, br#"{"role":"assistant"}"#);
        let encoded = encode(
            &[(":event-type", HeaderValue::String("messageStart".into()))],
            br#"{"role":"assistant"}"#,
        );
        assert_eq!(encoded, bytes);
    }

    #[test]
    fn crc32_is_the_ieee_polynomial() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn every_header_type_round_trips_at_every_split() {
        let headers = vec![
            (":t", HeaderValue::Bool(true)),
            ("f", HeaderValue::Bool(false)),
            ("b", HeaderValue::Byte(-3)),
            ("s", HeaderValue::Short(-300)),
            ("i", HeaderValue::Int(70_000)),
            ("l", HeaderValue::Long(-5_000_000_000)),
            ("y", HeaderValue::Bytes(vec![0, 1, 2])),
            ("str", HeaderValue::String("héllo".into())),
            ("ts", HeaderValue::Timestamp(1_700_000_000_000)),
            ("u", HeaderValue::Uuid([7; 16])),
        ];
        let mut bytes = encode(&headers, b"payload one");
        bytes.extend(encode_event("metadata", b"{}"));
        bytes.extend(encode(&[], b""));
        for split in 0..=bytes.len() {
            let mut d = Decoder::new();
            let mut out = Vec::new();
            d.feed(&bytes[..split], &mut out).unwrap();
            d.feed(&bytes[split..], &mut out).unwrap();
            d.finish().unwrap();
            assert_eq!(out.len(), 3, "split {split}");
            let want: Vec<(String, HeaderValue)> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            assert_eq!(out[0].headers, want);
            assert_eq!(out[0].payload, b"payload one");
            assert_eq!(out[1].header_str(":event-type"), Some("metadata"));
            assert!(out[2].headers.is_empty() && out[2].payload.is_empty());
        }
    }

    #[test]
    fn byte_by_byte_feeding() {
        let bytes = [hand_made(), hand_made()].concat();
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for b in &bytes {
            d.feed(std::slice::from_ref(b), &mut out).unwrap();
        }
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn corrupt_or_truncated_input_is_an_error() {
        let mut bytes = hand_made();
        let last = bytes.len() - 6;
        bytes[last] ^= 1;
        let mut out = Vec::new();
        assert!(matches!(
            Decoder::new().feed(&bytes, &mut out),
            Err(EventStreamError::MessageCrc { .. })
        ));
        let mut bytes = hand_made();
        bytes[1] ^= 1;
        assert!(matches!(
            Decoder::new().feed(&bytes, &mut out),
            Err(EventStreamError::PreludeCrc { .. })
        ));
        let bytes = hand_made();
        let mut d = Decoder::new();
        d.feed(&bytes[..bytes.len() - 1], &mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!(
            d.finish(),
            Err(EventStreamError::Truncated(bytes.len() - 1))
        );
        // A prelude claiming a length shorter than the minimum.
        let mut bad = vec![0, 0, 0, 4, 0, 0, 0, 0];
        let crc = crc32fast::hash(&bad);
        bad.extend_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            Decoder::new().feed(&bad, &mut out),
            Err(EventStreamError::Length { .. })
        ));
    }
}
