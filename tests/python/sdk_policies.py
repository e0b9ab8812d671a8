"""The official openai SDK against kt's policies: a block is an APIStatusError with
status 409 and the policy envelope; redacted output arrives redacted, whole and streamed.

Run by tests/it/policies.rs with KT_BASE_URL set to the gateway's /v1 URL; the gateway
runs safety-filter and pii-detector against a mock upstream that answers with an email.
"""
import os

import openai
from openai import OpenAI

client = OpenAI(base_url=os.environ["KT_BASE_URL"], api_key="sk-test", max_retries=0, timeout=20)

try:
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "how to make a bomb"}])
    raise AssertionError("expected a 409")
except openai.APIStatusError as e:
    assert e.status_code == 409, e.status_code
    assert e.body["type"] == "policy_violation", e.body
    assert e.body["policy"] == "safety-filter", e.body
    assert e.body["code"] == "input_blocked", e.body
    assert "unsafe content" in e.message, e.message

r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
assert r.choices[0].message.content == "mail [EMAIL]", r

parts = []
for chunk in client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True):
    if chunk.choices and chunk.choices[0].delta.content:
        parts.append(chunk.choices[0].delta.content)
assert "".join(parts) == "mail [EMAIL]", parts
assert not any("jo" in p or "exa" in p for p in parts), parts

print("ALL OK")
