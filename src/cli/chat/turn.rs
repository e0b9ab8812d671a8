//! One request/answer turn of `kt chat` against the gateway's `/chat/completions`:
//! streamed (SSE, each token written and flushed as it arrives) or whole, and every way it
//! can fail turned into a message with a hint.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::hint;

/// How the turn ended, when the gateway answered.
#[derive(Debug, PartialEq)]
pub enum Turn {
    /// The assistant's text (already written out).
    Answer(String),
    /// A policy stopped the request or the answer.
    Blocked { policy: String, message: String },
}

/// A turn that failed, and what the user can do about it.
#[derive(Debug)]
pub struct Failure {
    pub err: anyhow::Error,
    pub hint: Option<String>,
}

impl Failure {
    fn new(err: anyhow::Error, hint: Option<String>) -> Failure {
        Failure { err, hint }
    }

    /// Standard output went away (`kt chat … | head -1`).
    pub fn is_broken_pipe(&self) -> bool {
        self.err.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        })
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::new(
            anyhow::Error::new(e).context("failed to write the answer"),
            None,
        )
    }
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    endpoint: String,
    model: String,
    api_key: Option<String>,
    stream: bool,
    raw_json: bool,
}

impl Client {
    pub fn new(
        url: &str,
        model: String,
        api_key: Option<String>,
        stream: bool,
        raw_json: bool,
    ) -> Client {
        let base = url.trim_end_matches('/').to_string();
        // A model can think for minutes between tokens; a dead connection still ends.
        let agent = hint::agent(&base, Some(Duration::from_secs(600)));
        Client {
            agent,
            endpoint: format!("{base}/chat/completions"),
            base,
            model,
            api_key,
            stream,
            raw_json,
        }
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// Sends the conversation and writes the answer to `out` as it arrives.
    pub fn send(&self, messages: &[Value], out: &mut impl Write) -> Result<Turn, Failure> {
        let mut body = json!({"model": self.model, "messages": messages});
        if self.stream {
            body["stream"] = json!(true);
        }
        let spinner = Spinner::start();
        let mut req = self
            .agent
            .post(&self.endpoint)
            .header("Content-Type", "application/json");
        if let Some(k) = &self.api_key {
            req = req.header("Authorization", &format!("Bearer {k}"));
        }
        let resp = req.send(body.to_string().as_bytes()).map_err(|e| {
            let h = hint::unreachable_hint(&e).map(str::to_string);
            Failure::new(
                anyhow::Error::new(e)
                    .context(format!("failed to reach the gateway at `{}`", self.base)),
                h,
            )
        })?;
        let status = resp.status().as_u16();
        let is_sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if (200..300).contains(&status) && is_sse {
            let reader = BufReader::new(resp.into_body().into_reader());
            return self.stream_answer(reader, out, spinner);
        }
        let mut resp = resp;
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| {
                Failure::new(
                    anyhow::Error::new(e).context("failed to read the gateway's answer"),
                    None,
                )
            })?;
        drop(spinner);
        if self.raw_json {
            out.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        if !(200..300).contains(&status) {
            return self.error_answer(status, parsed.as_ref(), &text);
        }
        let Some(v) = parsed else {
            return Err(Failure::new(
                anyhow::anyhow!("the gateway answered HTTP {status} with a body that is not JSON"),
                None,
            ));
        };
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            return self.error_envelope(status, err);
        }
        let message = v.pointer("/choices/0/message");
        let mut answer = message
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(calls) = message
            .and_then(|m| m.get("tool_calls"))
            .and_then(Value::as_array)
        {
            for c in calls {
                answer.push_str(&tool_call_text(
                    c.pointer("/function/name")
                        .and_then(Value::as_str)
                        .unwrap_or("?"),
                    c.pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                ));
            }
        }
        if !self.raw_json {
            out.write_all(answer.as_bytes())?;
            if !answer.ends_with('\n') {
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        Ok(Turn::Answer(answer))
    }

    fn stream_answer(
        &self,
        mut reader: impl BufRead,
        out: &mut impl Write,
        spinner: Spinner,
    ) -> Result<Turn, Failure> {
        let mut spinner = Some(spinner);
        let mut answer = String::new();
        // Tool calls arrive in pieces: (name, arguments) by index.
        let mut calls: Vec<(String, String)> = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line).map_err(|e| {
                Failure::new(
                    anyhow::Error::new(e).context("the gateway's stream broke off"),
                    Some("`kt events tail` shows what the gateway recorded".to_string()),
                )
            })?;
            if n == 0 {
                break;
            }
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            let data = data.trim_start();
            if data == "[DONE]" {
                break;
            }
            let v: Value = serde_json::from_str(data).map_err(|e| {
                Failure::new(
                    anyhow::Error::new(e).context("the gateway sent a malformed stream event"),
                    None,
                )
            })?;
            if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
                spinner.take();
                finish_line(&answer, out)?;
                return self.error_envelope(200, err);
            }
            let delta = v.pointer("/choices/0/delta");
            if let Some(text) = delta
                .and_then(|d| d.get("content"))
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                spinner.take();
                out.write_all(text.as_bytes())?;
                out.flush()?;
                answer.push_str(text);
            }
            for c in delta
                .and_then(|d| d.get("tool_calls"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let i = c.get("index").and_then(Value::as_u64).unwrap_or(0);
                let i = usize::try_from(i).unwrap_or(0).min(64);
                if calls.len() <= i {
                    calls.resize(i + 1, (String::new(), String::new()));
                }
                if let Some(slot) = calls.get_mut(i) {
                    if let Some(name) = c.pointer("/function/name").and_then(Value::as_str) {
                        slot.0.push_str(name);
                    }
                    if let Some(args) = c.pointer("/function/arguments").and_then(Value::as_str) {
                        slot.1.push_str(args);
                    }
                }
            }
        }
        spinner.take();
        for (name, args) in calls.iter().filter(|(n, _)| !n.is_empty()) {
            let text = tool_call_text(name, args);
            out.write_all(text.as_bytes())?;
            answer.push_str(&text);
        }
        finish_line(&answer, out)?;
        Ok(Turn::Answer(answer))
    }

    /// A non-2xx answer: a policy block, or an error with the hint that fits it.
    fn error_answer(
        &self,
        status: u16,
        parsed: Option<&Value>,
        text: &str,
    ) -> Result<Turn, Failure> {
        if let Some(err) = parsed.and_then(|v| v.get("error")).filter(|e| !e.is_null()) {
            return self.error_envelope(status, err);
        }
        let shown: String = text.trim().chars().take(300).collect();
        Err(Failure::new(
            anyhow::anyhow!("the gateway answered HTTP {status}: {shown}"),
            self.status_hint(status, None),
        ))
    }

    /// `{"error": {...}}`, as a body or an in-band stream event (`status` 200 then).
    fn error_envelope(&self, status: u16, err: &Value) -> Result<Turn, Failure> {
        let kind = err.get("type").and_then(Value::as_str).unwrap_or_default();
        let message = match err {
            Value::String(s) => s.clone(),
            _ => err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .to_string(),
        };
        if kind == "policy_violation" || status == 409 && err.get("policy").is_some() {
            let policy = err
                .get("policy")
                .and_then(Value::as_str)
                .unwrap_or("a policy")
                .to_string();
            return Ok(Turn::Blocked { policy, message });
        }
        let code = err.get("code").and_then(Value::as_str);
        let what = if status == 200 {
            format!("the stream ended with an error: {message}")
        } else {
            format!("the gateway answered HTTP {status}: {message}")
        };
        Err(Failure::new(
            anyhow::anyhow!("{what}"),
            self.status_hint(status, code.or(err.get("param").and_then(Value::as_str))),
        ))
    }

    fn status_hint(&self, status: u16, code: Option<&str>) -> Option<String> {
        match status {
            401 | 403 => Some("pass a gateway key with --api-key or KT_API_KEY".to_string()),
            404 if matches!(code, Some("model_not_found" | "model")) => Some(format!(
                "pick a model the gateway serves with --model (see {}/models)",
                self.base
            )),
            404 => Some(
                "check --url: it is the gateway's OpenAI base URL, e.g. http://127.0.0.1:41002/v1"
                    .to_string(),
            ),
            429 => Some("a rate limit or budget was reached; try again later".to_string()),
            500..=599 | 200 => Some(
                "`kt events tail --format detailed` shows what the gateway recorded".to_string(),
            ),
            _ => None,
        }
    }
}

fn tool_call_text(name: &str, args: &str) -> String {
    format!("[tool call] {name}({args})\n")
}

/// Ends the answer with a newline so the shell prompt starts on its own line.
fn finish_line(answer: &str, out: &mut impl Write) -> std::io::Result<()> {
    if !answer.is_empty() && !answer.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// A spinner on standard error until the first token (terminals only); cleared on drop.
struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    fn start() -> Spinner {
        if !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg}") {
            bar.set_style(style);
        }
        bar.set_message("waiting for the gateway…");
        bar.enable_steady_tick(Duration::from_millis(80));
        Spinner(Some(bar))
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client::new("http://127.0.0.1:9/v1/", "m".into(), None, true, false)
    }

    fn sse(events: &[&str]) -> Vec<u8> {
        events
            .iter()
            .map(|e| format!("data: {e}\n\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn a_stream_is_written_token_by_token() {
        let body = sse(&[
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Hello"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":" world"}}]}"#,
            "[DONE]",
        ]);
        let mut out = Vec::new();
        let turn = client()
            .stream_answer(&body[..], &mut out, Spinner(None))
            .unwrap();
        assert_eq!(turn, Turn::Answer("Hello world".into()));
        assert_eq!(out, b"Hello world\n");
    }

    #[test]
    fn an_in_band_policy_error_is_a_block() {
        let body = sse(&[
            r#"{"choices":[{"index":0,"delta":{"content":"Sure, "}}]}"#,
            r#"{"error":{"type":"policy_violation","policy":"pii-detector","message":"output contains an SSN","code":"output_blocked"}}"#,
            "[DONE]",
        ]);
        let mut out = Vec::new();
        let turn = client()
            .stream_answer(&body[..], &mut out, Spinner(None))
            .unwrap();
        assert_eq!(
            turn,
            Turn::Blocked {
                policy: "pii-detector".into(),
                message: "output contains an SSN".into()
            }
        );
        assert_eq!(out, b"Sure, \n");
    }

    #[test]
    fn errors_carry_hints() {
        let c = client();
        let f = c
            .error_envelope(
                404,
                &json!({"message": "Model 'x' not found in catalog", "type": "invalid_request_error", "param": "model", "code": "model_not_found"}),
            )
            .unwrap_err();
        assert_eq!(
            f.err.to_string(),
            "the gateway answered HTTP 404: Model 'x' not found in catalog"
        );
        assert!(f.hint.unwrap().contains("http://127.0.0.1:9/v1/models"));
        let f = c
            .error_answer(502, None, "<html>bad gateway</html>")
            .unwrap_err();
        assert!(f
            .err
            .to_string()
            .contains("HTTP 502: <html>bad gateway</html>"));
        let f = c
            .error_envelope(
                401,
                &json!({"message": "bad key", "type": "invalid_request_error"}),
            )
            .unwrap_err();
        assert!(f.hint.unwrap().contains("--api-key"));
    }

    #[test]
    fn tool_calls_are_shown() {
        let body = sse(&[
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"get_weather","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":\"Paris\"}"}}]}}]}"#,
            "[DONE]",
        ]);
        let mut out = Vec::new();
        client()
            .stream_answer(&body[..], &mut out, Spinner(None))
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[tool call] get_weather({\"city\":\"Paris\"})\n"
        );
    }
}
