"""The checks every native-format provider must pass, through kt, with the official SDK.

Imported by sdk_<provider>.py, which passes what its mock upstream answers. Each request
names its scenario (`scenario:<name>`) so the mock knows what to send back and can check
what it received.
"""
import json

import openai
from pydantic import BaseModel

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_time", "description": "Current time"}},
]
JSON_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "temp_c": {"type": "integer"}},
               "required": ["city", "temp_c"], "additionalProperties": False}
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="


class Weather(BaseModel):
    city: str
    temp_c: int


def user(text):
    return [{"role": "system", "content": "You are terse."}, {"role": "user", "content": text}]


def collect(stream):
    """Text, finish reason, usage chunks, role count and assembled tool calls of a stream."""
    text, finish, usages, roles, calls = "", None, [], 0, {}
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk", chunk
        if chunk.usage is not None:
            assert chunk.choices == [], chunk
            usages.append(chunk.usage)
            continue
        for choice in chunk.choices:
            d = choice.delta
            if d.role:
                roles += 1
            if d.content:
                text += d.content
            for tc in d.tool_calls or []:
                call = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                if tc.id:
                    assert call["id"] == "", f"id repeated for tool call {tc.index}"
                    call["id"] = tc.id
                if tc.function and tc.function.name:
                    assert call["name"] == "", f"name repeated for tool call {tc.index}"
                    call["name"] = tc.function.name
                if tc.function and tc.function.arguments:
                    call["arguments"] += tc.function.arguments
            finish = choice.finish_reason or finish
    return text, finish, usages, roles, [calls[i] for i in sorted(calls)]


def expect_error(cls, fn, status, code=None):
    try:
        fn()
    except cls as e:
        assert e.status_code == status, (e.status_code, e)
        if code is not None:
            assert e.code == code, (e.code, e.body)
        return e
    except openai.APIStatusError as e:
        raise AssertionError(f"expected {cls.__name__}, got {type(e).__name__} {e.status_code}: {e.message}")
    raise AssertionError(f"expected {cls.__name__}")


def run(client, model, x):
    """`x` holds what the provider's mock answers (see sdk_<provider>.py)."""
    # Plain chat, with parameters the provider must translate or drop.
    r = client.chat.completions.create(model=model, messages=user("scenario:chat hi"), temperature=1.5,
                                       stop=["END", "\n"], seed=7, n=1, logit_bias={"50256": -100})
    m = r.choices[0].message
    assert m.content == x["chat_text"], r
    assert m.role == "assistant" and not m.tool_calls, r
    assert r.choices[0].finish_reason == "stop", r
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == x["chat_usage"], r.usage
    assert r.usage.total_tokens == sum(x["chat_usage"]), r.usage
    if x.get("chat_cache") is not None:
        d = r.usage.prompt_tokens_details
        assert (d.cached_tokens, d.cache_write_tokens) == x["chat_cache"], r.usage
    assert r.model_extra["x_keeptrusts"]["provider_used"] == x["provider"], r.model_extra

    # Streaming with usage: one role, one usage-only chunk at the end.
    s = client.chat.completions.create(model=model, messages=user("scenario:chat hi"), stream=True,
                                       stream_options={"include_usage": True})
    text, finish, usages, roles, _ = collect(s)
    assert text == x["stream_text"], text
    assert finish == "stop", finish
    assert roles == 1, roles
    assert len(usages) == 1, usages
    assert (usages[0].prompt_tokens, usages[0].completion_tokens) == x["stream_usage"], usages[0]

    # Streaming without include_usage: no usage chunk reaches the client.
    s = client.chat.completions.create(model=model, messages=user("scenario:chat hi"), stream=True)
    text, _, usages, _, _ = collect(s)
    assert text == x["stream_text"] and usages == [], (text, usages)

    # The SDK's stream helper assembles the same answer.
    with client.chat.completions.stream(model=model, messages=user("scenario:chat hi")) as st:
        final = st.get_final_completion()
    assert final.choices[0].message.content == x["stream_text"], final

    # Tool calls, not streamed.
    r = client.chat.completions.create(model=model, messages=user("scenario:tools Paris weather and time?"),
                                       tools=TOOLS, tool_choice="required", max_completion_tokens=300)
    got = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in r.choices[0].message.tool_calls]
    assert got == x["tool_calls"], got
    assert r.choices[0].finish_reason == "tool_calls", r
    assert r.choices[0].message.content == x["tools_content"], r.choices[0].message

    # Tool calls, streamed: ids and names once, argument fragments joined in order.
    s = client.chat.completions.create(model=model, messages=user("scenario:tools Paris weather and time?"),
                                       tools=TOOLS, tool_choice="required", max_completion_tokens=300,
                                       stream=True, stream_options={"include_usage": True})
    text, finish, usages, roles, calls = collect(s)
    got = [(c["id"], c["name"], json.loads(c["arguments"])) for c in calls]
    assert got == x["stream_tool_calls"], calls
    assert finish == "tool_calls" and roles == 1 and len(usages) == 1, (finish, roles, usages)
    with client.chat.completions.stream(model=model, messages=user("scenario:tools again"), tools=TOOLS,
                                        tool_choice="required", max_completion_tokens=300) as st:
        final = st.get_final_completion()
    got = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in final.choices[0].message.tool_calls]
    assert got == x["stream_tool_calls"], final

    # The conversation continues with the tool results.
    history = user("scenario:toolresult which is warmer?") + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": x["result_ids"][0], "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
            {"id": x["result_ids"][1], "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]},
        {"role": "tool", "tool_call_id": x["result_ids"][0], "content": "{\"temp_c\": 21}"},
        {"role": "tool", "tool_call_id": x["result_ids"][1], "content": "{\"temp_c\": 25}"},
    ]
    r = client.chat.completions.create(model=model, messages=history, tools=TOOLS)
    assert r.choices[0].message.content == "Rome is warmer.", r

    # Images: a base64 data URL and a plain URL.
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": [
        {"type": "text", "text": "scenario:image describe both"},
        {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}])
    assert r.choices[0].message.content == "Rome is warmer.", r

    # JSON mode: json_schema, the parse helper, and streamed.
    fmt = {"type": "json_schema", "json_schema": {"name": "weather", "schema": JSON_SCHEMA, "strict": True}}
    r = client.chat.completions.create(model=model, messages=user("scenario:json Paris?"), response_format=fmt)
    assert json.loads(r.choices[0].message.content) == {"city": "Paris", "temp_c": 21}, r
    assert r.choices[0].finish_reason == "stop" and not r.choices[0].message.tool_calls, r
    parsed = client.chat.completions.parse(model=model, messages=user("scenario:json Paris?"), response_format=Weather)
    assert parsed.choices[0].message.parsed == Weather(city="Paris", temp_c=21), parsed
    s = client.chat.completions.create(model=model, messages=user("scenario:json Paris?"), response_format=fmt,
                                       stream=True)
    text, finish, _, _, calls = collect(s)
    assert json.loads(text) == {"city": "Paris", "temp_c": 21} and finish == "stop" and calls == [], (text, finish, calls)

    # Errors: the exception class, status and code OpenAI would give.
    e = expect_error(openai.RateLimitError, lambda: client.chat.completions.create(
        model=model, messages=user("scenario:ratelimit")), 429, "rate_limit_exceeded")
    assert e.response.headers.get("retry-after") == "1", dict(e.response.headers)
    assert e.response.headers.get("x-request-id", "").startswith("req_"), dict(e.response.headers)
    retrying = client.with_options(max_retries=1)
    expect_error(openai.RateLimitError, lambda: retrying.chat.completions.create(
        model=model, messages=user("scenario:ratelimit")), 429)
    expect_error(openai.InternalServerError, lambda: client.chat.completions.create(
        model=model, messages=user("scenario:overloaded")), 503)
    expect_error(openai.BadRequestError, lambda: client.chat.completions.create(
        model=model, messages=user("scenario:toolong")), 400, "context_length_exceeded")
    expect_error(openai.AuthenticationError, lambda: client.chat.completions.create(
        model=model, messages=user("scenario:badkey")), 401, "invalid_api_key")

    # An error after the stream started is raised, not mistaken for a short answer.
    s = client.chat.completions.create(model=model, messages=user("scenario:midstream"), stream=True)
    try:
        collect(s)
        raise AssertionError("expected an APIError mid-stream")
    except openai.APIError as e:
        assert x["midstream_error"] in e.message, e.message
