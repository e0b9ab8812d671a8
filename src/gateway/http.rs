//! Small HTTP helpers: headers, bodies, JSON and error responses.

use std::io::Read;

use super::conn::Request;

use crate::openai::ApiError;

/// A header value by case-insensitive name.
pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// The event of a request to `endpoint`, opened as it arrives: allowed until a policy
/// says otherwise, with the caller's `x-request-source` and `x-correlation-id`.
pub fn event_for(
    req: &Request,
    request_id: &str,
    kind: crate::store::EventKind,
    endpoint: &str,
) -> crate::store::Event {
    crate::store::Event {
        request_id: request_id.to_string(),
        ts_ms: now_ms(),
        kind,
        endpoint: endpoint.to_string(),
        verdict: crate::policy::Verdict::Allow.as_str().to_string(),
        request_source: header(req, "x-request-source").map(str::to_string),
        correlation_id: header(req, "x-correlation-id").map(str::to_string),
        ..crate::store::Event::default()
    }
}

/// Reads the body up to `limit` bytes; a larger body is a 413.
/// The most header bytes (names and values) a request may carry.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The most header fields a request may carry.
pub const MAX_HEADERS: usize = 100;

/// Refuses header floods (431) and a `Content-Length` that cannot be a chat request (413)
/// before any handler looks at the request.
pub fn check_head(req: &Request) -> Result<(), ApiError> {
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|h| h.name.len() + h.value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Err(ApiError::new(
            431,
            "invalid_request_error",
            Some("request_header_fields_too_large"),
            format!(
                "Request headers exceed the gateway limit of {MAX_HEADERS} fields or {MAX_HEADER_BYTES} bytes."
            ),
        )
        .not_retryable());
    }
    Ok(())
}

pub fn read_body(req: &mut Request, limit: u64) -> Result<Vec<u8>, ApiError> {
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    if let Some(len) = req.body_length() {
        if len as u64 > limit {
            return Err(ApiError::payload_too_large(limit_usize));
        }
    }
    let mut body = Vec::with_capacity(req.body_length().unwrap_or(0).min(limit_usize));
    req.as_reader()
        .take(limit.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| ApiError::bad_request(format!("failed to read the request body: {e}")))?;
    if body.len() as u64 > limit {
        return Err(ApiError::payload_too_large(limit_usize));
    }
    Ok(body)
}

/// A reply: status, headers and a body, sent with one `respond`.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body,
        }
    }

    pub fn error(err: &ApiError) -> Reply {
        let mut r = Reply::json(err.status, err.to_json());
        if let Some(secs) = err.retry_after {
            r.headers
                .push(("Retry-After".into(), format!("{}", secs.ceil().max(0.0))));
            r.headers.push((
                "retry-after-ms".into(),
                format!("{}", (secs * 1000.0).round()),
            ));
        }
        if let Some(retry) = err.retryable {
            r.headers.push(("x-should-retry".into(), retry.to_string()));
        }
        r
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Sends the reply. A client that went away is not an error worth more than a log line.
    pub fn send(mut self, req: Request, request_id: &str) {
        self.headers
            .push(("x-request-id".to_string(), request_id.to_string()));
        if let Err(e) = req.respond(self.status, &self.headers, &self.body) {
            crate::logging::debug(&format!("{request_id}: failed to send the response: {e}"));
        }
    }
}

/// A request id: `req_` + 12 hex digits of the time in milliseconds + 12 random hex
/// digits. Ids sort by time, so the events index on `request_id` grows at its end
/// instead of touching a random page per row (which multiplied the event writer's
/// writes); 48 random bits keep ids of the same millisecond apart.
pub fn request_id() -> String {
    let ms = u64::try_from(now_ms()).unwrap_or(0) & 0xffff_ffff_ffff;
    let random = id_bits() & 0xffff_ffff_ffff;
    // As `format!("req_{ms:012x}{random:012x}")`, without the formatting machinery.
    let mut id = String::with_capacity(28);
    id.push_str("req_");
    push_hex48(&mut id, ms);
    push_hex48(&mut id, random);
    id
}

/// The low 48 bits of `v` as 12 lower-case hex digits.
fn push_hex48(out: &mut String, v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..12).rev() {
        out.push(char::from(
            DIGITS[usize::try_from((v >> (shift * 4)) & 0xf).unwrap_or(0)],
        ));
    }
}

/// 64 random bits for ids (not secrets): splitmix64 over a per-thread state seeded once
/// from the OS generator, so a request costs no `getrandom` syscall.
fn id_bits() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(getrandom::u64().unwrap_or_else(|_| {
            // No OS randomness: the time and a process-wide counter keep threads apart.
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            (u64::try_from(now_ms()).unwrap_or(0) << 16) ^ n.rotate_right(16)
        }));
    }
    STATE.with(|state| {
        let x = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(x);
        let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    })
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex48_is_zero_padded_lower_hex_of_the_low_48_bits() {
        for v in [
            0,
            1,
            0xabc,
            0xffff_ffff_ffff,
            0x0123_4567_89ab,
            0x8000_0000_0001,
        ] {
            let mut s = String::new();
            push_hex48(&mut s, v);
            assert_eq!(s, format!("{v:012x}"));
        }
    }

    #[test]
    fn request_ids_are_unique_time_ordered_hex() {
        let ids: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..5000).map(|_| request_id()).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        for id in &ids {
            assert_eq!(id.len(), 28, "{id}");
            assert!(id.starts_with("req_"));
            assert!(id[4..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
        // The time prefix orders ids across milliseconds.
        let first = request_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(request_id()[..16] > first[..16]);
    }
}
