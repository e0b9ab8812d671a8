//! A chat answer → the finished `response` object (targets called in chat form), and the
//! pieces the stream translator shares: item ids, final status, usage.

use serde_json::json;

use crate::openai::responses::{
    OutputItem, OutputText, ResponseError, ResponseObject, ResponseUsage, ResponsesRequest,
    TokensDetails,
};
use crate::openai::{ChatResponse, Usage};

/// The `response` object's echo of the request, before any output.
pub fn skeleton(req: &ResponsesRequest, id: &str, created_at: u64) -> ResponseObject {
    ResponseObject {
        id: id.to_string(),
        object: "response".to_string(),
        created_at,
        model: req.model.clone(),
        status: "in_progress".to_string(),
        output: Vec::new(),
        usage: None,
        parallel_tool_calls: req.parallel_tool_calls.unwrap_or(true),
        tool_choice: req.tool_choice.clone().unwrap_or_else(|| json!("auto")),
        tools: req.tools.clone().unwrap_or_default(),
        error: None,
        incomplete_details: None,
        instructions: req.instructions.clone(),
        metadata: req.metadata.clone().unwrap_or_else(|| json!({})),
        temperature: req.temperature,
        top_p: req.top_p,
        x_keeptrusts: None,
    }
}

/// The id of the output item at `index` of response `response_id` (`resp_<x>`): `msg_<x>_<n>`
/// or `fc_<x>_<n>`, the same whether the answer streams or not.
pub fn item_id(kind: &str, response_id: &str, index: usize) -> String {
    format!("{kind}_{}_{index}", response_id.trim_start_matches("resp_"))
}

/// A chat answer → the finished `response` object.
pub fn from_chat(
    resp: &ChatResponse,
    req: &ResponsesRequest,
    id: &str,
    created_at: u64,
) -> ResponseObject {
    let mut out = skeleton(req, id, created_at);
    out.model.clone_from(&resp.model);
    let choice = resp.choices.first();
    if let Some(c) = choice {
        let text = c.message.text_content();
        if !text.is_empty() {
            out.output.push(OutputItem::Message {
                id: item_id("msg", id, out.output.len()),
                role: "assistant".to_string(),
                status: "completed".to_string(),
                content: vec![OutputText::new(text)],
            });
        }
        for call in c.message.tool_calls.iter().flatten() {
            out.output.push(OutputItem::FunctionCall {
                id: item_id("fc", id, out.output.len()),
                call_id: call.id.clone(),
                name: call.function.name.clone(),
                arguments: call.function.arguments.clone(),
                status: "completed".to_string(),
            });
        }
    }
    finish(
        &mut out,
        choice.and_then(|c| c.finish_reason.as_deref()),
        resp.usage.as_ref(),
    );
    out
}

/// Sets the final status from the chat finish reason (`length` and `content_filter` are
/// `incomplete`) and the usage.
pub fn finish(out: &mut ResponseObject, finish_reason: Option<&str>, usage: Option<&Usage>) {
    let reason = match finish_reason {
        Some("length") => Some("max_output_tokens"),
        Some("content_filter") => Some("content_filter"),
        _ => None,
    };
    match reason {
        Some(r) => {
            out.status = "incomplete".to_string();
            out.incomplete_details = Some(json!({"reason": r}));
        }
        None => out.status = "completed".to_string(),
    }
    out.usage = usage.map(to_response_usage);
}

pub fn to_response_usage(u: &Usage) -> ResponseUsage {
    ResponseUsage {
        input_tokens: u.prompt_tokens,
        input_tokens_details: TokensDetails {
            cached_tokens: Some(0),
            reasoning_tokens: None,
        },
        output_tokens: u.completion_tokens,
        output_tokens_details: TokensDetails {
            cached_tokens: None,
            reasoning_tokens: Some(0),
        },
        total_tokens: u.total_tokens,
    }
}

/// The text of every `output_text` part.
pub fn output_text(resp: &ResponseObject) -> String {
    let mut text = String::new();
    for item in &resp.output {
        if let OutputItem::Message { content, .. } = item {
            for part in content {
                text.push_str(&part.text);
            }
        }
    }
    text
}

/// `response` marked failed with `error`.
pub fn failed(mut resp: ResponseObject, code: &str, message: &str) -> ResponseObject {
    resp.status = "failed".to_string();
    resp.error = Some(ResponseError {
        code: code.to_string(),
        message: message.to_string(),
    });
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/testdata/responses/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn request() -> ResponsesRequest {
        serde_json::from_value(fixture("request_items.json")).unwrap()
    }

    #[test]
    fn fixture_chat_answer_translates_to_a_response() {
        let chat: ChatResponse = serde_json::from_value(fixture("chat_answer.json")).unwrap();
        let done = from_chat(&chat, &request(), "resp_1", 1_700_000_000);
        assert_eq!(
            serde_json::to_value(&done).unwrap(),
            fixture("chat_answer.response.json")
        );
        assert_eq!(output_text(&done), "Checking.");
    }

    #[test]
    fn length_and_content_filter_are_incomplete() {
        let mut chat: ChatResponse = serde_json::from_value(fixture("chat_answer.json")).unwrap();
        for (finish, reason) in [
            ("length", "max_output_tokens"),
            ("content_filter", "content_filter"),
        ] {
            if let Some(c) = chat.choices.first_mut() {
                c.finish_reason = Some(finish.to_string());
            }
            let done = from_chat(&chat, &request(), "resp_1", 1);
            assert_eq!(done.status, "incomplete");
            assert_eq!(done.incomplete_details, Some(json!({"reason": reason})));
        }
        let f = failed(skeleton(&request(), "resp_2", 1), "server_error", "boom");
        assert_eq!(f.status, "failed");
        assert_eq!(f.error.map(|e| e.code), Some("server_error".to_string()));
    }
}
