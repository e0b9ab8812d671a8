//! Context compression: a target's `max_messages` and `max_context_tokens` trim the
//! oldest non-system messages before the request is sent. System (and developer)
//! messages always stay, the newest message always stays, and an assistant message with
//! tool calls is dropped together with the tool results answering it, so a provider never
//! sees a result without its call.
//!
//! Tokens are estimated (about four characters per token plus a few per message): kt has
//! no tokenizer for every model, and a limit set below the real window absorbs the error.

use serde::Serialize;

use crate::openai::{ChatRequest, Message, Role};

/// Overhead per message (role, separators), in tokens.
const PER_MESSAGE: u64 = 4;

/// The limits of one target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_messages: Option<u64>,
    pub max_context_tokens: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.max_messages.is_none() && self.max_context_tokens.is_none()
    }
}

/// What compression did, recorded on the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Compression {
    pub messages_before: usize,
    pub messages_after: usize,
    pub tokens_before: u64,
    pub tokens_after: u64,
    /// Still over a limit after trimming everything that may go.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub still_over: bool,
}

/// Estimated tokens of a text.
pub fn text_tokens(text: &str) -> u64 {
    let chars = u64::try_from(text.chars().count()).unwrap_or(u64::MAX);
    chars.div_ceil(4)
}

/// Estimated tokens of one message.
pub fn message_tokens(m: &Message) -> u64 {
    let mut n = PER_MESSAGE + text_tokens(&m.text_content());
    for call in m.tool_calls.iter().flatten() {
        n += text_tokens(call.name()) + text_tokens(call.input()) + 3;
    }
    n
}

/// Estimated prompt tokens of a request: messages and tool definitions.
pub fn request_tokens(req: &ChatRequest) -> u64 {
    let tools: u64 = req
        .tools
        .iter()
        .flatten()
        .map(|t| {
            let def = if t.function.is_unset() {
                serde_json::to_string(&t.extra) // a custom tool: `custom`
            } else {
                serde_json::to_string(&t.function)
            };
            def.map_or(0, |s| text_tokens(&s))
        })
        .sum();
    req.messages.iter().map(message_tokens).sum::<u64>() + tools
}

/// Trims `req` to `limits`. `None` when nothing had to go.
pub fn compress(req: &mut ChatRequest, limits: Limits) -> Option<Compression> {
    if limits.is_empty() {
        return None;
    }
    let tokens_before = request_tokens(req);
    let messages_before = req.messages.len();
    let max_messages = limits.max_messages.unwrap_or(u64::MAX);
    let max_tokens = limits.max_context_tokens.unwrap_or(u64::MAX);
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    if count(messages_before) <= max_messages && tokens_before <= max_tokens {
        return None;
    }
    let units = units(&req.messages);
    let mut keep = vec![true; req.messages.len()];
    let mut messages = messages_before;
    let mut tokens = tokens_before;
    // Never the last unit: it holds the message being answered.
    for unit in units.iter().take(units.len().saturating_sub(1)) {
        if count(messages) <= max_messages && tokens <= max_tokens {
            break;
        }
        for &i in unit {
            if let (Some(k), Some(m)) = (keep.get_mut(i), req.messages.get(i)) {
                *k = false;
                messages -= 1;
                tokens = tokens.saturating_sub(message_tokens(m));
            }
        }
    }
    if messages == messages_before {
        return None;
    }
    let mut flags = keep.into_iter();
    req.messages.retain(|_| flags.next().unwrap_or(true));
    Some(Compression {
        messages_before,
        messages_after: messages,
        tokens_before,
        tokens_after: tokens,
        still_over: count(messages) > max_messages || tokens > max_tokens,
    })
}

/// The non-system messages, oldest first, grouped into units that go together: an
/// assistant message with tool calls and the tool results right after it that answer
/// those calls; every other message alone.
fn units(messages: &[Message]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut open_calls: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if m.role.is_system() {
            continue;
        }
        let answers_open_call = m.role == Role::Tool
            && m.tool_call_id
                .as_ref()
                .is_some_and(|id| open_calls.contains(id));
        match out.last_mut() {
            Some(unit) if answers_open_call => unit.push(i),
            _ => {
                open_calls = m
                    .tool_calls
                    .iter()
                    .flatten()
                    .map(|c| c.id.clone())
                    .collect();
                out.push(vec![i]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::{FunctionCall, ToolCall};

    fn msg(role: Role, text: &str) -> Message {
        Message::text(role, text)
    }

    fn call(ids: &[&str]) -> Message {
        Message {
            role: Role::Assistant,
            tool_calls: Some(
                ids.iter()
                    .map(|id| ToolCall {
                        custom: None,
                        id: (*id).to_string(),
                        kind: "function".to_string(),
                        function: FunctionCall {
                            name: "lookup".to_string(),
                            arguments: "{}".to_string(),
                        },
                    })
                    .collect(),
            ),
            ..Message::default()
        }
    }

    fn result(id: &str) -> Message {
        Message {
            role: Role::Tool,
            tool_call_id: Some(id.to_string()),
            ..msg(Role::Tool, "42")
        }
    }

    fn roles(req: &ChatRequest) -> Vec<String> {
        req.messages
            .iter()
            .map(|m| match &m.tool_call_id {
                Some(id) => format!("tool:{id}"),
                None => format!("{}:{}", m.role.as_str(), m.text_content()),
            })
            .collect()
    }

    fn req(messages: Vec<Message>) -> ChatRequest {
        ChatRequest {
            model: "m".to_string(),
            messages,
            ..ChatRequest::default()
        }
    }

    #[test]
    fn max_messages_drops_the_oldest_but_keeps_system_and_the_last_message() {
        let mut r = req(vec![
            msg(Role::System, "rules"),
            msg(Role::User, "one"),
            msg(Role::Assistant, "two"),
            msg(Role::User, "three"),
            msg(Role::Assistant, "four"),
            msg(Role::User, "five"),
        ]);
        let c = compress(
            &mut r,
            Limits {
                max_messages: Some(3),
                ..Limits::default()
            },
        )
        .unwrap();
        assert_eq!(roles(&r), ["system:rules", "assistant:four", "user:five"]);
        assert_eq!((c.messages_before, c.messages_after), (6, 3));
        assert!(!c.still_over);
    }

    #[test]
    fn tool_calls_and_their_results_go_together() {
        let mut r = req(vec![
            msg(Role::System, "rules"),
            msg(Role::User, "weather?"),
            call(&["a", "b"]),
            result("a"),
            result("b"),
            msg(Role::Assistant, "sunny"),
            msg(Role::User, "thanks"),
        ]);
        // Dropping the user message is not enough for 4; the call goes with both results.
        compress(
            &mut r,
            Limits {
                max_messages: Some(4),
                ..Limits::default()
            },
        )
        .unwrap();
        assert_eq!(
            roles(&r),
            ["system:rules", "assistant:sunny", "user:thanks"]
        );
        assert!(r.messages.iter().all(|m| m.role != Role::Tool));
    }

    #[test]
    fn token_budget_trims_until_it_fits_and_never_the_last_message() {
        let long = "x".repeat(400); // 100 tokens + 4
        let mut r = req(vec![
            msg(Role::System, "s"),
            msg(Role::User, &long),
            msg(Role::Assistant, &long),
            msg(Role::User, "short"),
        ]);
        let before = request_tokens(&r);
        let c = compress(
            &mut r,
            Limits {
                max_context_tokens: Some(150),
                ..Limits::default()
            },
        )
        .unwrap();
        assert_eq!(c.tokens_before, before);
        assert_eq!(roles(&r).len(), 3);
        assert!(c.tokens_after <= 150, "{c:?}");
        assert_eq!(c.tokens_after, request_tokens(&r));

        let mut r = req(vec![msg(Role::System, "s"), msg(Role::User, &long)]);
        let c = compress(
            &mut r,
            Limits {
                max_context_tokens: Some(10),
                ..Limits::default()
            },
        );
        assert_eq!(c, None, "nothing may go");
        assert_eq!(r.messages.len(), 2);
    }

    #[test]
    fn within_limits_is_untouched() {
        let mut r = req(vec![msg(Role::User, "hi")]);
        let limits = Limits {
            max_messages: Some(5),
            max_context_tokens: Some(1000),
        };
        assert_eq!(compress(&mut r, limits), None);
        assert_eq!(compress(&mut r, Limits::default()), None);
    }
}
