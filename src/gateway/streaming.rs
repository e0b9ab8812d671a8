//! The SSE writer. A stream takes the raw connection (`Request::into_writer`), writes the status line and
//! headers itself and frames every event as its own HTTP chunk, flushed at once.

use std::io::{self, Write};

/// Writes one SSE stream to the client.
pub struct SseWriter {
    out: Box<dyn Write + Send>,
    /// HTTP/1.0 clients get a plain body ended by closing the connection.
    chunked: bool,
    finished: bool,
    /// The frame being written, reused for every event: `HEAD` bytes kept free for the
    /// chunk-size line, then the event. One buffer and one write per event, whatever its
    /// size.
    frame: Vec<u8>,
}

/// The largest frame buffer kept between events.
const KEEP: usize = 64 * 1024;

/// Room for a chunk-size line (`{len:x}\r\n`): 16 hex digits and CRLF.
const HEAD: usize = 18;

impl SseWriter {
    /// Answers `req` with a stream: its connection, the head with `extra` headers and
    /// the ones every answer to the request carries (`Request::answer_headers`).
    pub fn answer(
        req: super::conn::Request,
        request_id: &str,
        extra: &[(String, String)],
    ) -> io::Result<SseWriter> {
        let http10 = req.is_http10();
        if req.answer_headers().is_empty() {
            return SseWriter::start(req.into_writer(), http10, request_id, extra);
        }
        let mut headers = extra.to_vec();
        headers.extend_from_slice(req.answer_headers());
        SseWriter::start(req.into_writer(), http10, request_id, &headers)
    }

    /// Writes the response head. `extra` headers are added as given.
    pub fn start(
        mut out: Box<dyn Write + Send>,
        http10: bool,
        request_id: &str,
        extra: &[(String, String)],
    ) -> io::Result<SseWriter> {
        let mut head = String::with_capacity(256);
        head.push_str(if http10 {
            "HTTP/1.0 200 OK\r\n"
        } else {
            "HTTP/1.1 200 OK\r\n"
        });
        head.push_str("Content-Type: text/event-stream; charset=utf-8\r\n");
        head.push_str("Cache-Control: no-cache\r\n");
        head.push_str("X-Accel-Buffering: no\r\n");
        head.push_str("x-request-id: ");
        head.push_str(request_id);
        head.push_str("\r\n");
        for (k, v) in extra {
            if !k.contains(['\r', '\n']) && !v.contains(['\r', '\n']) {
                head.push_str(k);
                head.push_str(": ");
                head.push_str(v);
                head.push_str("\r\n");
            }
        }
        if http10 {
            head.push_str("Connection: close\r\n");
        } else {
            head.push_str("Transfer-Encoding: chunked\r\n");
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        out.flush()?;
        Ok(SseWriter {
            out,
            chunked: !http10,
            finished: false,
            frame: Vec::with_capacity(512),
        })
    }

    /// Writes one `data:` event and flushes it.
    pub fn data(&mut self, json: &[u8]) -> io::Result<()> {
        self.data_with(|buf| {
            buf.extend_from_slice(json);
            Ok(())
        })
    }

    /// Writes one `data:` event whose payload `fill` appends to the buffer it is given
    /// (a serialiser writes straight into the frame), and flushes it.
    pub fn data_with(
        &mut self,
        fill: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        self.frame_with(b"data: ", fill)
    }

    /// Writes one typed event (`event: <name>` then its `data:`) and flushes it.
    pub fn event(&mut self, name: &str, json: &[u8]) -> io::Result<()> {
        self.event_with(name, |buf| {
            buf.extend_from_slice(json);
            Ok(())
        })
    }

    /// Writes one typed event whose `data:` payload `fill` appends, and flushes it.
    pub fn event_with(
        &mut self,
        name: &str,
        fill: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        self.frame_with(b"event: ", |buf| {
            buf.extend_from_slice(name.as_bytes());
            buf.extend_from_slice(b"\ndata: ");
            fill(buf)
        })
    }

    /// Writes an SSE comment (a heartbeat clients ignore).
    pub fn comment(&mut self, text: &str) -> io::Result<()> {
        self.frame_with(b": ", |buf| {
            buf.extend_from_slice(text.as_bytes());
            Ok(())
        })
    }

    /// Frames `prefix`, what `fill` appends and the blank line that ends an SSE event as
    /// one HTTP chunk, and writes it at once.
    fn frame_with(
        &mut self,
        prefix: &[u8],
        fill: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut frame = std::mem::take(&mut self.frame);
        frame.clear();
        frame.resize(HEAD, 0);
        frame.extend_from_slice(prefix);
        let written = fill(&mut frame).and_then(|()| {
            frame.extend_from_slice(b"\n\n");
            self.send_frame(&mut frame)
        });
        // A stream may stay open for minutes: one large event (a long tool call's
        // arguments) must not keep its buffer for the rest of it.
        if frame.capacity() > KEEP {
            frame = Vec::with_capacity(512);
        }
        self.frame = frame;
        written
    }

    /// Writes a frame whose first `HEAD` bytes are free, as one HTTP chunk when chunked.
    fn send_frame(&mut self, frame: &mut Vec<u8>) -> io::Result<()> {
        let start = if self.chunked {
            let mut line = [0u8; HEAD];
            let n = size_line(frame.len() - HEAD, &mut line);
            let start = HEAD - n;
            frame[start..HEAD].copy_from_slice(&line[..n]);
            frame.extend_from_slice(b"\r\n");
            start
        } else {
            HEAD
        };
        self.out.write_all(&frame[start..])?;
        self.out.flush()
    }

    /// Writes `data: [DONE]` and ends the body.
    pub fn done(&mut self) -> io::Result<()> {
        self.frame_with(b"data: [DONE]", |_| Ok(()))?;
        self.end()
    }

    /// Ends the body (streams without `[DONE]`, such as the Responses API's).
    pub fn end(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        if self.chunked {
            self.out.write_all(b"0\r\n\r\n")?;
        }
        self.out.flush()
    }
}

/// Writes `{size:x}\r\n` into `out`; the number of bytes written.
fn size_line(size: usize, out: &mut [u8; HEAD]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut n = 0;
    let mut rest = size;
    loop {
        digits[n] = HEX[rest & 0xf];
        n += 1;
        rest >>= 4;
        if rest == 0 {
            break;
        }
    }
    for (i, d) in digits[..n].iter().rev().enumerate() {
        out[i] = *d;
    }
    out[n] = b'\r';
    out[n + 1] = b'\n';
    n + 2
}

impl Drop for SseWriter {
    fn drop(&mut self) {
        // Terminate the chunked body so the connection stays usable; a dead client
        // makes this fail, which is fine.
        let _ = self.end();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A connection that keeps what was written, write by write.
    #[derive(Clone, Default)]
    struct Wire(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Wire {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn writes(w: &Wire) -> Vec<String> {
        let all = w.0.lock().unwrap();
        all.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn every_event_is_one_chunk_in_one_write() {
        let wire = Wire::default();
        let mut w = SseWriter::start(Box::new(wire.clone()), false, "req-1", &[]).unwrap();
        w.data(b"{\"a\":1}").unwrap();
        w.data_with(|buf| {
            buf.extend_from_slice(&[b'x'; 300]);
            Ok(())
        })
        .unwrap();
        w.event("response.created", b"{}").unwrap();
        w.comment("ping").unwrap();
        w.done().unwrap();
        let got = writes(&wire);
        assert!(got[0].starts_with("HTTP/1.1 200 OK\r\n"), "{}", got[0]);
        assert!(got[0].contains("Transfer-Encoding: chunked\r\n"));
        assert_eq!(got[1], "f\r\ndata: {\"a\":1}\n\n\r\n");
        assert_eq!(got[2], format!("134\r\ndata: {}\n\n\r\n", "x".repeat(300)));
        assert_eq!(got[3], "22\r\nevent: response.created\ndata: {}\n\n\r\n");
        assert_eq!(got[4], "8\r\n: ping\n\n\r\n");
        assert_eq!(got[5], "e\r\ndata: [DONE]\n\n\r\n");
        assert_eq!(got[6], "0\r\n\r\n");
        assert_eq!(got.len(), 7);
    }

    #[test]
    fn http10_streams_are_plain_and_a_failed_fill_writes_nothing() {
        let wire = Wire::default();
        let mut w = SseWriter::start(Box::new(wire.clone()), true, "req-1", &[]).unwrap();
        assert!(w
            .data_with(|buf| {
                buf.extend_from_slice(b"half");
                Err(io::Error::other("no"))
            })
            .is_err());
        w.data(b"{}").unwrap();
        w.done().unwrap();
        let got = writes(&wire);
        assert!(got[0].contains("Connection: close\r\n"));
        assert_eq!(&got[1..], ["data: {}\n\n", "data: [DONE]\n\n"]);
    }

    #[test]
    fn a_large_event_goes_whole_and_its_buffer_is_not_kept() {
        let wire = Wire::default();
        let mut w = SseWriter::start(Box::new(wire.clone()), false, "req-1", &[]).unwrap();
        let big = vec![b'y'; 3 * KEEP];
        w.data(&big).unwrap();
        assert!(w.frame.capacity() <= KEEP, "{}", w.frame.capacity());
        w.data(b"{}").unwrap();
        let got = writes(&wire);
        let len = big.len() + 8;
        assert_eq!(got[1].len(), format!("{len:x}\r\n").len() + len + 2);
        assert!(got[1].starts_with(&format!("{len:x}\r\ndata: yyy")));
        assert_eq!(got[2], "a\r\ndata: {}\n\n\r\n");
    }

    #[test]
    fn size_lines_are_lowercase_hex_without_leading_zeros() {
        for (size, want) in [
            (0, "0"),
            (9, "9"),
            (15, "f"),
            (16, "10"),
            (4096, "1000"),
            (0xabc_def, "abcdef"),
            (usize::MAX, "ffffffffffffffff"),
        ] {
            let mut line = [0u8; HEAD];
            let n = size_line(size, &mut line);
            assert_eq!(
                std::str::from_utf8(&line[..n]).unwrap(),
                format!("{want}\r\n")
            );
        }
    }
}
