"""The official openai SDK against `kt gateway run` on the built-in sandbox (mock provider)."""
import json
import os

from openai import OpenAI

client = OpenAI(base_url=os.environ["KT_BASE_URL"], api_key="anything", max_retries=0, timeout=20)

import openai

models = [m.id for m in client.models.list()]
assert "gpt-4o" in models, models
m = client.models.retrieve("gpt-4o")
assert m.id == "gpt-4o" and m.object == "model", m
try:
    client.models.retrieve("no-such-model")
    raise AssertionError("an unknown model was found")
except openai.NotFoundError as e:
    assert e.body["code"] == "model_not_found", e.body

r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "echo: sandbox works"}])
assert r.choices[0].message.content == "sandbox works", r

text = ""
for chunk in client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hello"}], stream=True):
    if chunk.choices and chunk.choices[0].delta.content:
        text += chunk.choices[0].delta.content
assert text.startswith("Hello from the kt sandbox"), text

tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
messages = [{"role": "user", "content": "What's the weather in London?"}]
r = client.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
call = r.choices[0].message.tool_calls[0]
assert call.function.name == "get_weather"
assert json.loads(call.function.arguments) == {"city": "London"}
messages += [r.choices[0].message.model_dump(exclude_none=True),
             {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'}]
r = client.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
assert "21" in r.choices[0].message.content, r

with client.chat.completions.stream(model="gpt-4o", messages=[{"role": "user", "content": "weather in Paris"}], tools=tools) as s:
    final = s.get_final_completion()
assert json.loads(final.choices[0].message.tool_calls[0].function.arguments) == {"city": "Paris"}
print("ALL OK")
