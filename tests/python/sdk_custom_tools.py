"""The official openai SDK with custom tools (`type: "custom"`) through kt, PII redaction on."""
import os

from openai import OpenAI

client = OpenAI(base_url=os.environ["KT_BASE_URL"], api_key="sk-test", max_retries=0, timeout=20)
tools = [{"type": "custom", "custom": {"name": "code_exec", "description": "runs it"}}]

r = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "run"}], tools=tools)
call = r.choices[0].message.tool_calls[0]
assert type(call).__name__ == "ChatCompletionMessageCustomToolCall", type(call)
assert call.type == "custom" and call.custom.name == "code_exec", call
assert call.custom.input == "send_report('[EMAIL]')", call.custom.input

pieces = []
stream = client.chat.completions.create(
    model="gpt-4o", messages=[{"role": "user", "content": "run"}], tools=tools, stream=True)
for chunk in stream:
    for d in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
        assert d.type in (None, "custom"), d
        # The SDK's delta type models function calls only: `custom` arrives as sent.
        custom = d.custom if isinstance(d.custom, dict) else d.custom.model_dump()
        pieces.append(custom.get("input") or "")
assert "".join(pieces) == "send_report('[EMAIL]')", pieces
print("ALL OK")
