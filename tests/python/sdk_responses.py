"""The official openai SDK's Responses API through kt.

Run by tests/it/responses.rs with KT_BASE_URL (the gateway's /v1 URL) and KT_TEST_MODEL.
Whatever the upstream (an OpenAI chat mock, an Anthropic mock), it answers:
- "echo: <text>" to a plain prompt,
- a call of `get_weather` with {"city": "Paris"} (call id in KT_CALL_ID) when tools are given,
- "It is <output> in Paris." once the tool's output comes back,
- a payment card number when the prompt says "leak" (kt's pii-detector blocks it).
The gateway blocks prompts that carry a card number with a 409.
"""
import json
import os

import openai
from openai import OpenAI

client = OpenAI(base_url=os.environ["KT_BASE_URL"], api_key="sk-test", max_retries=0, timeout=20)
model = os.environ["KT_TEST_MODEL"]
call_id = os.environ["KT_CALL_ID"]

tools = [{
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]

# Plain text, with instructions and a string input.
r = client.responses.create(model=model, instructions="Be terse.", input="hello there")
assert r.object == "response", r
assert r.status == "completed", r
assert r.output_text == "echo: hello there", r.output_text
assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0, r.usage
assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens, r.usage

# Items as input.
r = client.responses.create(model=model, input=[{"role": "user", "content": [{"type": "input_text", "text": "from items"}]}])
assert r.output_text == "echo: from items", r.output_text

# Function calling: a function_call item, then its output sent back.
r = client.responses.create(model=model, input="weather in Paris?", tools=tools)
calls = [o for o in r.output if o.type == "function_call"]
assert len(calls) == 1, r.output
assert calls[0].name == "get_weather", calls[0]
assert calls[0].call_id == call_id, calls[0]
assert json.loads(calls[0].arguments) == {"city": "Paris"}, calls[0]
r2 = client.responses.create(
    model=model,
    tools=tools,
    input=[
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": calls[0].call_id, "name": calls[0].name, "arguments": calls[0].arguments},
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "21C"},
    ],
)
assert r2.output_text == "It is 21C in Paris.", r2.output_text

# Streaming with the SDK's typed stream helper.
deltas = []
with client.responses.stream(model=model, input="stream me please") as stream:
    for event in stream:
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
    final = stream.get_final_response()
assert "".join(deltas) == "echo: stream me please", deltas
assert final.output_text == "echo: stream me please", final.output_text
assert final.usage.output_tokens > 0, final.usage

# Streaming a function call.
arg_deltas = []
with client.responses.stream(model=model, input="weather in Paris?", tools=tools) as stream:
    for event in stream:
        if event.type == "response.function_call_arguments.delta":
            arg_deltas.append(event.delta)
    final = stream.get_final_response()
calls = [o for o in final.output if o.type == "function_call"]
assert len(calls) == 1 and calls[0].name == "get_weather", final.output
assert json.loads("".join(arg_deltas)) == {"city": "Paris"}, arg_deltas

# create(stream=True): raw events, typed, with increasing sequence numbers.
kinds = []
seqs = []
for event in client.responses.create(model=model, input="raw events", stream=True):
    kinds.append(event.type)
    seqs.append(event.sequence_number)
assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
assert "response.output_text.delta" in kinds, kinds
assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs

# Policy blocks, input and output, whole and streamed: APIStatusError 409.
for prompt, code in [("my card is 4111 1111 1111 1111", "input_blocked"), ("leak it", "output_blocked")]:
    for streamed in (False, True):
        try:
            if streamed:
                with client.responses.stream(model=model, input=prompt) as stream:
                    stream.get_final_response()
            else:
                client.responses.create(model=model, input=prompt)
            raise AssertionError("expected a 409")
        except openai.APIStatusError as e:
            assert e.status_code == 409, e.status_code
            assert e.body["type"] == "policy_violation", e.body
            assert e.body["policy"] == "pii-detector", e.body
            assert e.body["code"] == code, e.body

print("ALL OK")
