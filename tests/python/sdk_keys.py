"""A gateway key created with `kt gateway-key create` used as the openai SDK's api_key."""
import os

import openai
from openai import OpenAI

client = OpenAI(base_url=os.environ["KT_BASE_URL"], api_key=os.environ["KT_TEST_KEY"], max_retries=0, timeout=20)
r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
assert r.choices[0].message.content == "ok", r

bad = OpenAI(base_url=os.environ["KT_BASE_URL"], api_key="kt_gk_not-a-real-key-not-a-real-key-000000", max_retries=0)
try:
    bad.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
    raise AssertionError("expected AuthenticationError")
except openai.AuthenticationError as e:
    assert e.status_code == 401
    assert "Unknown gateway key" in e.message, e.message
print("ALL OK")
