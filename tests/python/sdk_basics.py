"""The official openai SDK through kt against an OpenAI-format mock upstream.

Run by tests/it/sdk.rs with KT_BASE_URL set to the gateway's /v1 URL.
"""
import asyncio
import os

import openai
from openai import AsyncOpenAI, OpenAI

BASE = os.environ["KT_BASE_URL"]
client = OpenAI(base_url=BASE, api_key="sk-test-passthrough", max_retries=0, timeout=20,
                default_headers={"X-Request-Source": "sdk-test", "X-Correlation-Id": "corr-sdk"})

# Plain chat.
r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
assert r.choices[0].message.content == "echo hello", r
assert r.usage.total_tokens == 5, r.usage
assert r.model_extra["x_keeptrusts"]["provider_used"] == "openai", r.model_extra
assert r._request_id and r._request_id.startswith("req_"), r._request_id

# Streaming, with usage.
parts, finish, usage = [], None, None
stream = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "one two three"}],
                                        stream=True, stream_options={"include_usage": True})
for chunk in stream:
    if chunk.usage:
        usage = chunk.usage
    if chunk.choices:
        if chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        finish = chunk.choices[0].finish_reason or finish
assert "".join(parts) == "one two three", parts
assert finish == "stop", finish
assert usage is not None and usage.total_tokens == 5, usage

# The stream helper accumulates the same thing.
with client.chat.completions.stream(model="gpt-4o", messages=[{"role": "user", "content": "a b"}]) as s:
    final = s.get_final_completion()
assert final.choices[0].message.content == "a b", final

# Function calling.
tools = [{"type": "function", "function": {"name": "get_account_balance", "description": "balance",
          "parameters": {"type": "object", "properties": {"account_id": {"type": "string"}}, "required": ["account_id"]}}}]
r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "balance of AC-1234?"}],
                                   tools=tools, tool_choice="auto")
call = r.choices[0].message.tool_calls[0]
assert call.function.name == "get_account_balance", call
assert call.function.arguments == '{"account_id":"AC-1234"}', call

# Errors: unknown model is a NotFoundError with the catalog message.
try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("expected NotFoundError")
except openai.NotFoundError as e:
    assert e.status_code == 404
    assert "not found in catalog" in e.message, e.message
    assert e.body["param"] == "model", e.body
except openai.APIStatusError as e:
    raise AssertionError(f"wrong exception class {type(e)}")

# Missing messages: BadRequestError (an APIStatusError).
try:
    client.chat.completions.create(model="gpt-4o", messages=[])
    raise AssertionError("expected BadRequestError")
except openai.APIStatusError as e:
    assert isinstance(e, openai.BadRequestError), type(e)
    assert e.status_code == 400


# Async, concurrently.
async def main():
    ac = AsyncOpenAI(base_url=BASE, api_key="sk-test-passthrough", max_retries=0, timeout=20)
    results = await asyncio.gather(*[
        ac.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": f"q{i}"}]) for i in range(5)
    ])
    assert [x.choices[0].message.content for x in results] == [f"echo q{i}" for i in range(5)]
    s = await ac.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x y"}], stream=True)
    text = ""
    async for chunk in s:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    assert text == "x y", text
    await ac.close()


asyncio.run(main())
print("ALL OK")
