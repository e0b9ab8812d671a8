"""The official openai SDK through kt to a fake native Gemini upstream.

Run by tests/it/providers_gemini.rs with KT_BASE_URL set to the gateway's /v1 URL.
"""
import json
import os

import openai
from openai import OpenAI

BASE = os.environ["KT_BASE_URL"]
client = OpenAI(base_url=BASE, api_key="sk-client-key-not-for-gemini", max_retries=0, timeout=20)
M = "gemini-2.5-flash"
user = lambda text: [{"role": "user", "content": text}]

# Plain chat.
r = client.chat.completions.create(
    model=M, messages=[{"role": "system", "content": "You are terse."}] + user("hello gemini"),
    max_tokens=64, temperature=0.3, stop="END")
assert r.choices[0].message.content == "echo hello gemini", r
assert r.choices[0].finish_reason == "stop", r
assert r.model == "gemini-2.5-flash-001", r.model
assert r.usage.prompt_tokens == 11 and r.usage.completion_tokens == 7 and r.usage.total_tokens == 18, r.usage
assert r.model_extra["x_keeptrusts"]["provider_used"] == "gemini", r.model_extra

# Streaming with usage: role once, text pieces, finish, then one usage-only chunk.
chunks = list(client.chat.completions.create(model=M, messages=user("stream me please"), stream=True,
                                             stream_options={"include_usage": True}))
roles = [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role]
assert roles == ["assistant"], roles
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert text == "echo stream me please", text
finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
assert finishes == ["stop"], finishes
usage_chunks = [c for c in chunks if c.usage]
assert len(usage_chunks) == 1 and usage_chunks[0].choices == [], usage_chunks
assert usage_chunks[0].usage.total_tokens == 18, usage_chunks[0].usage
assert chunks[-1].usage is not None, "the usage chunk comes last"
assert len({c.id for c in chunks}) == 1, "one id per stream"

# Streaming without include_usage: no usage chunk reaches the client.
chunks = list(client.chat.completions.create(model=M, messages=user("stream me again"), stream=True))
assert all(c.usage is None for c in chunks), chunks
assert all(c.choices for c in chunks), "no empty-choices chunk without include_usage"

# The SDK's stream helper assembles the same text.
with client.chat.completions.stream(model=M, messages=user("stream helper")) as s:
    final = s.get_final_completion()
assert final.choices[0].message.content == "echo stream helper", final

# Tool calls (non-streaming), then the result goes back as a functionResponse.
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                         "required": ["city"], "additionalProperties": False}}}]
msgs = user("weather in Paris?")
r = client.chat.completions.create(model=M, messages=msgs, tools=tools, tool_choice="required")
choice = r.choices[0]
assert choice.finish_reason == "tool_calls", choice
assert choice.message.content == "Checking.", choice.message
call = choice.message.tool_calls[0]
assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}, call
assert call.id.startswith("call_"), call.id
msgs = msgs + [choice.message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 21})}]
r = client.chat.completions.create(model=M, messages=msgs, tools=tools)
assert r.choices[0].message.content == 'get_weather says {"temp_c":21}', r.choices[0].message
assert r.choices[0].finish_reason == "stop", r.choices[0]

# Tool calls, streaming: two whole calls with distinct indexes; id and name only once each.
chunks = list(client.chat.completions.create(model=M, messages=user("weather in two cities"), tools=tools,
                                             stream=True, stream_options={"include_usage": True}))
deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
assert [d.index for d in deltas] == [0, 1], deltas
assert all(d.id and d.function.name == "get_weather" for d in deltas), deltas
assert len({d.id for d in deltas}) == 2, deltas
assert json.loads(deltas[1].function.arguments) == {"city": "Tokyo", "unit": "c"}, deltas
assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
with client.chat.completions.stream(model=M, messages=user("weather in two cities"), tools=tools) as s:
    final = s.get_final_completion()
calls = final.choices[0].message.tool_calls
assert [json.loads(c.function.arguments)["city"] for c in calls] == ["Paris", "Tokyo"], calls
assert final.choices[0].message.content == "Checking.", final.choices[0].message

# Images: a base64 data URL becomes inlineData, a URL becomes fileData.
r = client.chat.completions.create(model=M, messages=[{"role": "user", "content": [
    {"type": "text", "text": "describe these"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}])
assert r.choices[0].message.content == "saw inline image/png, file https://example.com/cat.jpg", r.choices[0].message

# JSON mode and JSON schema.
r = client.chat.completions.create(model=M, messages=user("json please"), response_format={"type": "json_object"})
assert json.loads(r.choices[0].message.content) == {"answer": "Paris"}, r
schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"], "additionalProperties": False}
r = client.chat.completions.create(model=M, messages=user("json schema please"), response_format={
    "type": "json_schema", "json_schema": {"name": "a", "schema": schema, "strict": True}})
assert json.loads(r.choices[0].message.content) == {"answer": "Paris"}, r

# n maps to candidateCount (the fake answers with one candidate).
r = client.chat.completions.create(model=M, messages=user("two candidates"), n=2)
assert len(r.choices) == 1

# Safety: a blocked prompt is a 400 with code content_filter, streaming or not.
for stream in (False, True):
    try:
        out = client.chat.completions.create(model=M, messages=user("trigger-blocked"), stream=stream)
        if stream:
            list(out)
        raise AssertionError("expected an error for a blocked prompt")
    except openai.BadRequestError as e:
        assert stream is False, "the non-streaming path answers 400"
        assert e.code == "content_filter", e.body
        assert "PROHIBITED_CONTENT" in e.message, e.message
    except openai.APIError as e:
        assert stream is True, f"unexpected {type(e)}"
        assert "PROHIBITED_CONTENT" in e.message, e.message
# An answer stopped by safety: finish_reason content_filter.
r = client.chat.completions.create(model=M, messages=user("trigger-unsafe-answer"))
assert r.choices[0].finish_reason == "content_filter", r.choices[0]

# Errors map to the classes the SDK raises against OpenAI.
try:
    client.chat.completions.create(model=M, messages=user("trigger-429"))
    raise AssertionError("expected RateLimitError")
except openai.RateLimitError as e:
    assert e.status_code == 429
    assert e.code == "rate_limit_exceeded", e.body
    assert e.response.headers.get("retry-after") == "17", dict(e.response.headers)
try:
    client.chat.completions.create(model=M, messages=user("trigger-bad-key"), stream=True)
    raise AssertionError("expected AuthenticationError")
except openai.AuthenticationError as e:
    assert e.status_code == 401 and "API key not valid" in e.message, e.message
try:
    client.chat.completions.create(model=M, messages=user("trigger-too-long"))
    raise AssertionError("expected BadRequestError")
except openai.BadRequestError as e:
    assert e.code == "context_length_exceeded", e.body

print("ALL OK")
