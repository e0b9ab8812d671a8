"""The official openai SDK through kt to a fake Bedrock Runtime (Converse / ConverseStream).

Run by tests/it/providers_bedrock.rs with KT_BASE_URL set to the gateway's /v1 URL. The
fake verifies every request's SigV4 signature; a bad signature would fail the calls here.
"""
import json
import os

import openai
from openai import OpenAI

BASE = os.environ["KT_BASE_URL"]
client = OpenAI(base_url=BASE, api_key="sk-unused", max_retries=0, timeout=20)
M = "claude"  # the target id
user = lambda text: [{"role": "user", "content": text}]

# Plain chat.
r = client.chat.completions.create(
    model=M, messages=[{"role": "system", "content": "You are terse."}] + user("hello bedrock"),
    max_completion_tokens=64, temperature=0.3, stop=["END"], seed=7, n=1, frequency_penalty=0.2)
assert r.choices[0].message.content == "echo hello bedrock", r
assert r.choices[0].finish_reason == "stop", r
# Cache reads and writes count as prompt tokens; cached_tokens reports the reads.
assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (18, 8, 26), r.usage
assert r.usage.prompt_tokens_details.cached_tokens == 4, r.usage
assert r.model_extra["x_keeptrusts"]["provider_used"] == "bedrock", r.model_extra
assert r.model_extra["x_keeptrusts"]["region"] == "eu-west-3", r.model_extra

# Streaming with usage: the binary event stream arrives cut into 13-byte pieces.
chunks = list(client.chat.completions.create(model=M, messages=user("stream me please"), stream=True,
                                             stream_options={"include_usage": True}))
roles = [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role]
assert roles == ["assistant"], roles
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert text == "echo stream me please", text
assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
usage_chunks = [c for c in chunks if c.usage]
assert len(usage_chunks) == 1 and usage_chunks[0].choices == [] and chunks[-1] is usage_chunks[0], chunks
assert usage_chunks[0].usage.total_tokens == 26, usage_chunks[0].usage
assert len({c.id for c in chunks}) == 1 and all(c.object == "chat.completion.chunk" for c in chunks)

# Without include_usage the usage chunk is not passed on.
chunks = list(client.chat.completions.create(model=M, messages=user("stream me again"), stream=True))
assert all(c.usage is None and c.choices for c in chunks), chunks

with client.chat.completions.stream(model=M, messages=user("stream helper")) as s:
    final = s.get_final_completion()
assert final.choices[0].message.content == "echo stream helper", final

# Tool calls, then the result goes back as a toolResult.
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                         "required": ["city"]}}}]
msgs = user("weather in Paris?")
r = client.chat.completions.create(model=M, messages=msgs, tools=tools, tool_choice="required")
choice = r.choices[0]
assert choice.finish_reason == "tool_calls", choice
call = choice.message.tool_calls[0]
assert (call.id, call.function.name) == ("tooluse_paris", "get_weather"), call
assert json.loads(call.function.arguments) == {"city": "Paris"}, call
msgs = msgs + [choice.message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temp_c": 21})}]
r = client.chat.completions.create(model=M, messages=msgs, tools=tools)
assert r.choices[0].message.content == 'tooluse_paris says [{"json":{"temp_c":21}}]', r.choices[0].message

# Streaming tool calls: argument fragments join per index; id and name once per call.
chunks = list(client.chat.completions.create(model=M, messages=user("weather in two cities"), tools=tools,
                                             stream=True, stream_options={"include_usage": True}))
deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
firsts = [d for d in deltas if d.id]
assert [(d.index, d.id, d.function.name) for d in firsts] == [(0, "tooluse_paris", "get_weather"),
                                                             (1, "tooluse_tokyo", "get_weather")], firsts
assert all(d.function.name is None for d in deltas if not d.id), deltas
args = {}
for d in deltas:
    args[d.index] = args.get(d.index, "") + (d.function.arguments or "")
assert {i: json.loads(a) for i, a in args.items()} == {0: {"city": "Paris"}, 1: {"city": "Tokyo", "unit": "c"}}, args
with client.chat.completions.stream(model=M, messages=user("weather in two cities"), tools=tools) as s:
    final = s.get_final_completion()
assert [json.loads(c.function.arguments) for c in final.choices[0].message.tool_calls] == [
    {"city": "Paris"}, {"city": "Tokyo", "unit": "c"}], final
assert final.choices[0].finish_reason == "tool_calls"

# Images: a base64 data URL is sent as bytes; an http URL is refused by kt (Bedrock cannot fetch).
r = client.chat.completions.create(model=M, messages=[{"role": "user", "content": [
    {"type": "text", "text": "describe this"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}])
assert r.choices[0].message.content == "saw png iVBORw0KGgo=", r.choices[0].message
try:
    client.chat.completions.create(model=M, messages=[{"role": "user", "content": [
        {"type": "text", "text": "describe the remote one"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    raise AssertionError("expected BadRequestError")
except openai.BadRequestError as e:
    assert "data URL" in e.message, e.message

# JSON mode and JSON schema.
r = client.chat.completions.create(model=M, messages=user("json please"), response_format={"type": "json_object"})
assert json.loads(r.choices[0].message.content) == {"answer": "Paris"}, r
r = client.chat.completions.create(model=M, messages=user("json schema please"), response_format={
    "type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object", "properties": {"answer": {"type": "string"}}}}})
assert json.loads(r.choices[0].message.content) == {"answer": "Paris"}, r

r = client.chat.completions.create(model=M, messages=user("max out"))
assert r.choices[0].finish_reason == "length", r.choices[0]

# Errors map to the classes the SDK raises against OpenAI.
cases = [
    ("trigger-throttle", openai.RateLimitError, 429, "rate_limit_exceeded"),
    ("trigger-too-long", openai.BadRequestError, 400, "context_length_exceeded"),
    ("trigger-denied", openai.PermissionDeniedError, 403, "access_denied"),
    ("trigger-not-ready", openai.InternalServerError, 503, "model_not_ready"),
]
for prompt, cls, status, code in cases:
    for stream in (False, True):
        try:
            out = client.chat.completions.create(model=M, messages=user(prompt), stream=stream)
            raise AssertionError(f"expected {cls.__name__} for {prompt}")
        except cls as e:
            assert e.status_code == status and e.code == code, (prompt, e.status_code, e.body)

# An exception inside the event stream (after HTTP 200) is raised by the SDK, not a silent end.
try:
    for _ in client.chat.completions.create(model=M, messages=user("trigger-stream-exception"), stream=True):
        pass
    raise AssertionError("expected an in-band error")
except openai.APIError as e:
    assert "The model stream failed." in e.message, e.message

print("ALL OK")
