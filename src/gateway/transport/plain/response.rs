//! The response side of kt's own client: the head (its framing facts, its headers kept
//! as bytes) and the body reader, which hands its connection back to the pool when the
//! body was read to its end.

use std::io::{self, Read};
use std::sync::Arc;

use super::{invalid, Conn, Pool, Timing, BUF_START};

/// Largest response head.
const MAX_HEAD: usize = 32 * 1024;
/// Most response headers parsed.
const MAX_HEADERS: usize = 128;
/// Longest chunk-size or trailer line.
const MAX_LINE: usize = 4 * 1024;

/// A parsed response head: what framing the body needs; its length is where the body
/// starts in the buffer. The headers stay bytes ([`RawHeaders`]), read only when asked
/// (error answers): an upstream like OpenAI sends ~20 of them, an allocation or two each
/// as an `http::HeaderMap`.
pub(super) struct Head {
    pub(super) status: u16,
    /// HTTP/1.1 without `Connection: close`.
    keep_alive: bool,
    /// The last `Transfer-Encoding` value ends in `chunked` (`None`: no such header).
    chunked: Option<bool>,
    /// `Content-Length` (`Err`: invalid or conflicting).
    length: Result<Option<u64>, &'static str>,
    pub(super) gzip: bool,
    len: usize,
}

/// A response head's bytes; header lookups parse them again.
pub struct RawHeaders {
    head: Vec<u8>,
    /// Headers that no longer describe the (decoded) body: left out of lookups.
    hide_length_and_encoding: bool,
}

impl RawHeaders {
    /// The headers of `head`, the start of `buf`. A gzip body is decoded as it is read,
    /// so its length and encoding headers no longer describe it: they are left out, as
    /// ureq drops them.
    pub(super) fn of(head: &Head, buf: &[u8]) -> RawHeaders {
        RawHeaders {
            head: buf.get(..head.len).map(<[u8]>::to_vec).unwrap_or_default(),
            hide_length_and_encoding: head.gzip,
        }
    }

    /// Every header as (name, value), in order, but those hidden.
    fn each<'a>(&'a self, mut f: impl FnMut(&'a str, &'a [u8]) -> Option<()>) {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        if resp.parse(&self.head).is_err() {
            return;
        }
        for h in resp.headers.iter() {
            let hidden = self.hide_length_and_encoding
                && (h.name.eq_ignore_ascii_case("content-length")
                    || h.name.eq_ignore_ascii_case("content-encoding"));
            if !hidden && f(h.name, h.value).is_none() {
                return;
            }
        }
    }

    /// The first value of header `name` (any case) that is text.
    pub fn get(&self, name: &str) -> Option<&str> {
        let mut found = None;
        self.each(|n, value| {
            found = n
                .eq_ignore_ascii_case(name)
                .then(|| std::str::from_utf8(value).ok())
                .flatten();
            // Stop at the first text value.
            found.is_none().then_some(())
        });
        found
    }

    /// Every header whose value is text, names in lower case (as `http::HeaderMap`
    /// gives them), in order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.each(|name, value| {
            if let Ok(v) = std::str::from_utf8(value) {
                out.push((name.to_ascii_lowercase(), v.to_string()));
            }
            Some(())
        });
        out
    }
}

/// Reads into `conn.buf` until a final (non-1xx) response head is complete.
pub(super) fn read_head(conn: &mut Conn, timing: Timing) -> io::Result<Head> {
    conn.buf.clear();
    loop {
        if let Some(head) = parse_head(&conn.buf)? {
            if (100..200).contains(&head.status) && head.status != 101 {
                // An interim response (100 Continue, 103 Early Hints): the real one follows.
                conn.buf.drain(..head.len);
                continue;
            }
            return Ok(head);
        }
        if conn.buf.len() >= MAX_HEAD {
            return Err(invalid("the response head is over 32 KiB"));
        }
        if fill(conn, timing)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the upstream closed the connection before the response head",
            ));
        }
    }
}

/// Reads more bytes onto the end of `conn.buf`, into its spare capacity: a `resize` to
/// give `read` an initialised slice zeroed 8 KiB per read (~8k instructions per call).
fn fill(conn: &mut Conn, timing: Timing) -> io::Result<usize> {
    if conn.buf.capacity() - conn.buf.len() < 1024 {
        conn.buf.reserve(conn.buf.capacity().max(BUF_START));
    }
    let Conn {
        stream,
        buf,
        timeouts,
    } = conn;
    Conn::recv(stream, timeouts, timing, |s| {
        let spare = rustix::buffer::spare_capacity(buf);
        let (n, _) = rustix::net::recv(s, spare, rustix::net::RecvFlags::empty())?;
        Ok(n)
    })
}

fn parse_head(buf: &[u8]) -> io::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(&format!("invalid response head ({e})"))),
    };
    let mut head = Head {
        status: resp.code.unwrap_or(0),
        keep_alive: resp.version == Some(1),
        chunked: None,
        length: Ok(None),
        gzip: false,
        len,
    };
    let is = |t: &[u8], word: &[u8]| t.trim_ascii().eq_ignore_ascii_case(word);
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("connection") {
            if h.value.split(|&b| b == b',').any(|t| is(t, b"close")) {
                head.keep_alive = false;
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // The last coding of the last such header decides.
            let last = h.value.rsplit(|&b| b == b',').next();
            head.chunked = Some(last.is_some_and(|t| is(t, b"chunked")));
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
            head.length = match (head.length, n) {
                (Err(e), _) => Err(e),
                (_, None) => Err("invalid Content-Length"),
                (Ok(None), Some(n)) => Ok(Some(n)),
                (Ok(Some(m)), Some(n)) if m == n => Ok(Some(n)),
                (Ok(Some(_)), Some(_)) => Err("conflicting Content-Length headers"),
            };
        } else if name.eq_ignore_ascii_case("content-encoding") {
            head.gzip = h.value.trim_ascii().eq_ignore_ascii_case(b"gzip");
        }
    }
    Ok(Some(head))
}

/// How the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes are left.
    Length(u64),
    Chunked(Chunk),
    /// At the connection's end.
    Close,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
}

/// The body of a response from [`send`](super::send): a reader that returns its connection to the
/// pool when it has read the body to the end.
pub struct PlainBody {
    conn: Option<Conn>,
    /// Unread body bytes are `conn.buf[pos..]`.
    pos: usize,
    framing: Framing,
    timing: Timing,
    reusable: bool,
    pool: Arc<Pool>,
    host: String,
    content_length: Option<u64>,
}

impl PlainBody {
    /// The body after `head` (already in `conn.buf`). `Err` for contradictory framing.
    pub(super) fn new(
        head: &Head,
        conn: Conn,
        timing: Timing,
        pool: &Arc<Pool>,
        host: &str,
    ) -> io::Result<PlainBody> {
        let chunked = head.chunked;
        let length = head.length.map_err(invalid)?;
        let (framing, reusable) = if head.status == 204 || head.status == 304 {
            (Framing::Done, head.keep_alive)
        } else {
            match (chunked, length) {
                (Some(true), _) => (Framing::Chunked(Chunk::Size), head.keep_alive),
                // A transfer coding that does not end in chunked: the body runs to the end.
                (Some(false), _) => (Framing::Close, false),
                (None, Some(n)) => (Framing::Length(n), head.keep_alive),
                (None, None) => (Framing::Close, false),
            }
        };
        let mut body = PlainBody {
            conn: Some(conn),
            pos: head.len,
            framing,
            timing,
            reusable,
            pool: Arc::clone(pool),
            host: host.to_string(),
            content_length: length.filter(|_| chunked.is_none()),
        };
        if body.framing == Framing::Done || body.framing == Framing::Length(0) {
            body.finish();
        }
        Ok(body)
    }

    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// The body ended: the connection goes back to the pool if it can carry another
    /// request (nothing unread after the body).
    fn finish(&mut self) {
        self.framing = Framing::Done;
        if let Some(mut conn) = self.conn.take() {
            if self.reusable && self.pos >= conn.buf.len() {
                conn.buf.clear();
                if conn.buf.capacity() > 4 * BUF_START {
                    conn.buf = Vec::with_capacity(BUF_START);
                }
                self.pool.put(&self.host, conn);
            }
        }
    }

    /// Up to `limit` body bytes into `out`: buffered ones first, else one `recv`.
    fn read_some(&mut self, out: &mut [u8], limit: u64) -> io::Result<usize> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(0);
        };
        let want = out.len().min(usize::try_from(limit).unwrap_or(usize::MAX));
        let buffered = conn.buf.len().saturating_sub(self.pos);
        if buffered > 0 {
            let n = want.min(buffered);
            out[..n].copy_from_slice(&conn.buf[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        Conn::recv(&conn.stream, &mut conn.timeouts, self.timing, |mut s| {
            s.read(&mut out[..want])
        })
    }

    /// [`read_some`](Self::read_some) of bytes the framing says are coming (`left` > 0):
    /// the connection's end first is an error, and the connection is not reused.
    fn read_owed(&mut self, out: &mut [u8], left: u64) -> io::Result<usize> {
        let n = self.read_some(out, left)?;
        if n == 0 {
            self.conn = None;
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the upstream closed the connection before the end of the body",
            ));
        }
        Ok(n)
    }

    /// The next line (without its CRLF) of a chunked body, as a range of `conn.buf`.
    fn line(&mut self) -> io::Result<std::ops::Range<usize>> {
        let timing = self.timing;
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| invalid("body already ended"))?;
        loop {
            if let Some(i) = conn.buf[self.pos..].iter().position(|&b| b == b'\n') {
                let start = self.pos;
                let mut end = start + i;
                self.pos = end + 1;
                if end > start && conn.buf[end - 1] == b'\r' {
                    end -= 1;
                }
                return Ok(start..end);
            }
            if conn.buf.len() - self.pos > MAX_LINE {
                return Err(invalid("chunk line too long"));
            }
            // Keep only the unread bytes before reading more.
            conn.buf.drain(..self.pos);
            self.pos = 0;
            if fill(conn, timing)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the upstream closed the connection inside a chunked body",
                ));
            }
        }
    }

    fn line_text(&self, range: std::ops::Range<usize>) -> &[u8] {
        self.conn
            .as_ref()
            .and_then(|c| c.buf.get(range))
            .unwrap_or_default()
    }
}

impl Read for PlainBody {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match self.framing {
                Framing::Done => return Ok(0),
                Framing::Length(left) => {
                    let n = self.read_owed(out, left)?;
                    let left = left - n as u64;
                    self.framing = Framing::Length(left);
                    if left == 0 {
                        self.finish();
                    }
                    return Ok(n);
                }
                Framing::Close => {
                    let n = self.read_some(out, u64::MAX)?;
                    if n == 0 {
                        self.framing = Framing::Done;
                        self.conn = None;
                    }
                    return Ok(n);
                }
                Framing::Chunked(Chunk::Data(left)) => {
                    let n = self.read_owed(out, left)?;
                    let left = left - n as u64;
                    self.framing = Framing::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    return Ok(n);
                }
                Framing::Chunked(Chunk::Size) => {
                    let range = self.line()?;
                    let size = parse_chunk_size(self.line_text(range))?;
                    self.framing = Framing::Chunked(if size == 0 {
                        Chunk::Trailer
                    } else {
                        Chunk::Data(size)
                    });
                }
                Framing::Chunked(Chunk::DataEnd) => {
                    let range = self.line()?;
                    if !range.is_empty() {
                        return Err(invalid("chunk data not followed by CRLF"));
                    }
                    self.framing = Framing::Chunked(Chunk::Size);
                }
                Framing::Chunked(Chunk::Trailer) => {
                    if self.line()?.is_empty() {
                        self.finish();
                        return Ok(0);
                    }
                }
            }
        }
    }
}

/// A chunk-size line: hex digits, then optional `;extensions`.
fn parse_chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    std::str::from_utf8(digits)
        .ok()
        .filter(|d| !d.is_empty() && d.len() <= 15)
        .and_then(|d| u64::from_str_radix(d, 16).ok())
        .ok_or_else(|| invalid("invalid chunk size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes() {
        assert_eq!(parse_chunk_size(b"1a").unwrap(), 26);
        assert_eq!(parse_chunk_size(b" A ;ext=1").unwrap(), 10);
        assert!(parse_chunk_size(b"").is_err());
        assert!(parse_chunk_size(b"zz").is_err());
        assert!(parse_chunk_size(b"ffffffffffffffffff").is_err());
    }
}
