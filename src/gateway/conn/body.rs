//! Request bodies: `Content-Length` and `chunked` framing over the connection's reader.

use std::io::{self, BufRead, Read};

/// Longest chunk-size line (size, extensions) or trailer line we accept.
const MAX_LINE: usize = 4096;

/// What is left of the current request's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `Content-Length`: this many bytes still to read (0: none, or all read).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(Chunk),
}

/// Where the chunked decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk with this many bytes left, then its CRLF.
    Data(u64),
    /// The last chunk and its trailers were read.
    Done,
}

impl Body {
    /// Nothing more to read.
    pub fn is_done(self) -> bool {
        matches!(self, Body::Length(0) | Body::Chunked(Chunk::Done))
    }

    /// Reads body bytes into `buf`; 0 at the end of the body. A connection that ends
    /// before the body does is an `UnexpectedEof` error.
    pub fn read<R: BufRead>(&mut self, r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self {
            Body::Length(0) | Body::Chunked(Chunk::Done) => Ok(0),
            Body::Length(left) => {
                let want = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                let n = r.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(truncated());
                }
                *left -= n as u64;
                Ok(n)
            }
            Body::Chunked(state) => loop {
                match *state {
                    Chunk::Done => return Ok(0),
                    Chunk::Size => {
                        let line = read_line(r)?;
                        let size = chunk_size(&line)?;
                        if size == 0 {
                            // Trailers, up to the empty line.
                            while !read_line(r)?.is_empty() {}
                            *state = Chunk::Done;
                        } else {
                            *state = Chunk::Data(size);
                        }
                    }
                    Chunk::Data(left) => {
                        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                        let n = r.read(&mut buf[..want])?;
                        if n == 0 {
                            return Err(truncated());
                        }
                        let left = left - n as u64;
                        if left == 0 {
                            if !read_line(r)?.is_empty() {
                                return Err(bad("a chunk is longer than its size"));
                            }
                            *state = Chunk::Size;
                        } else {
                            *state = Chunk::Data(left);
                        }
                        return Ok(n);
                    }
                }
            },
        }
    }

    /// Reads and discards up to `limit` more body bytes; true when the body is then done
    /// (the connection can serve another request).
    pub fn drain<R: BufRead>(&mut self, r: &mut R, limit: u64) -> bool {
        let mut buf = [0u8; 8192];
        let mut total = 0u64;
        while !self.is_done() {
            if total > limit {
                return false;
            }
            match self.read(r, &mut buf) {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(_) => return false,
            }
        }
        self.is_done()
    }
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the connection closed before the request body ended",
    )
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bad chunked request body: {what}"),
    )
}

/// One CRLF- (or LF-) ended line, without its ending.
fn read_line<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = r.take(MAX_LINE as u64 + 2).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(truncated());
    }
    if line.last() != Some(&b'\n') {
        return Err(bad("a chunk line is too long"));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

/// The size of a chunk-size line (`1a;ext=1` → 26).
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let hex = line.split(|b| *b == b';').next().unwrap_or_default();
    let hex = std::str::from_utf8(hex)
        .map_err(|_| bad("the chunk size is not hexadecimal"))?
        .trim();
    if hex.is_empty() || hex.len() > 15 {
        return Err(bad("the chunk size is missing or too large"));
    }
    u64::from_str_radix(hex, 16).map_err(|_| bad("the chunk size is not hexadecimal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(mut body: Body, input: &[u8]) -> io::Result<(Vec<u8>, usize)> {
        let mut r = std::io::BufReader::with_capacity(3, input);
        let mut out = Vec::new();
        let mut buf = [0u8; 5];
        loop {
            let n = body.read(&mut r, &mut buf)?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        let rest = r.fill_buf()?.len();
        Ok((out, rest))
    }

    #[test]
    fn content_length_stops_at_its_length() {
        let (out, rest) = read_all(Body::Length(5), b"hello world").unwrap();
        assert_eq!(out, b"hello");
        assert!(rest > 0, "the next request's bytes stay unread");
        let e = read_all(Body::Length(50), b"short").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn chunked_bodies_decode_with_extensions_and_trailers() {
        let input = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nGET /next";
        let (out, rest) = read_all(Body::Chunked(Chunk::Size), input).unwrap();
        assert_eq!(out, b"hello world");
        assert!(rest > 0);
    }

    #[test]
    fn bad_chunked_bodies_are_errors() {
        for input in [
            &b"zz\r\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhelloXX\r\n0\r\n\r\n",
            b"5\r\nhel",
            b"ffffffffffffffffff\r\n",
        ] {
            assert!(
                read_all(Body::Chunked(Chunk::Size), input).is_err(),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        let long = format!("{}\r\n", "1".repeat(MAX_LINE + 10));
        assert!(read_all(Body::Chunked(Chunk::Size), long.as_bytes()).is_err());
    }

    #[test]
    fn drain_reads_what_is_left_up_to_a_limit() {
        let mut r = std::io::BufReader::new(&b"0123456789NEXT"[..]);
        let mut body = Body::Length(10);
        assert!(body.drain(&mut r, 100));
        assert_eq!(r.fill_buf().unwrap(), b"NEXT");
        let mut r = std::io::BufReader::new(&[b'x'; 100_000][..]);
        assert!(!Body::Length(100_000).drain(&mut r, 1000));
    }
}
