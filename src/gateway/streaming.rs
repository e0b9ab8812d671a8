//! The SSE writer. A stream takes the raw connection (`Request::into_writer`), writes the status line and
//! headers itself and frames every event as its own HTTP chunk, flushed at once.

use std::io::{self, Write};

/// Writes one SSE stream to the client.
pub struct SseWriter {
    out: Box<dyn Write + Send>,
    /// HTTP/1.0 clients get a plain body ended by closing the connection.
    chunked: bool,
    finished: bool,
}

impl SseWriter {
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
        })
    }

    /// Writes one `data:` event and flushes it.
    pub fn data(&mut self, json: &[u8]) -> io::Result<()> {
        let mut event = Vec::with_capacity(json.len() + 8);
        event.extend_from_slice(b"data: ");
        event.extend_from_slice(json);
        event.extend_from_slice(b"\n\n");
        self.raw(&event)
    }

    /// Writes one typed event (`event: <name>` then its `data:`) and flushes it.
    pub fn event(&mut self, name: &str, json: &[u8]) -> io::Result<()> {
        let mut event = Vec::with_capacity(json.len() + name.len() + 16);
        event.extend_from_slice(b"event: ");
        event.extend_from_slice(name.as_bytes());
        event.extend_from_slice(b"\ndata: ");
        event.extend_from_slice(json);
        event.extend_from_slice(b"\n\n");
        self.raw(&event)
    }

    /// Writes an SSE comment (a heartbeat clients ignore).
    pub fn comment(&mut self, text: &str) -> io::Result<()> {
        self.raw(format!(": {text}\n\n").as_bytes())
    }

    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            // An empty chunk would end the body.
            return Ok(());
        }
        if self.chunked {
            let mut frame = Vec::with_capacity(bytes.len() + 12);
            frame.extend_from_slice(format!("{:x}\r\n", bytes.len()).as_bytes());
            frame.extend_from_slice(bytes);
            frame.extend_from_slice(b"\r\n");
            self.out.write_all(&frame)?;
        } else {
            self.out.write_all(bytes)?;
        }
        self.out.flush()
    }

    /// Writes `data: [DONE]` and ends the body.
    pub fn done(&mut self) -> io::Result<()> {
        self.raw(b"data: [DONE]\n\n")?;
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

impl Drop for SseWriter {
    fn drop(&mut self) {
        // Terminate the chunked body so the connection stays usable; a dead client
        // makes this fail, which is fine.
        let _ = self.end();
    }
}
