"""The official openai SDK's Responses API through kt.

Run by tests/it/responses.rs with KT_BASE_URL (the gateway's /v1 URL), KT_TEST_MODEL,
KT_CALL_ID and KT_PII_ACTION (`block` or `redact`, the gateway's pii-detector action).
Whatever the upstream (a native Responses mock, an OpenAI chat mock, an Anthropic mock),
streamed or not, it answers:
- "echo: <text>" to a plain prompt,
- a call of `get_weather` with {"city": "Paris"} (call id in KT_CALL_ID) when tools are given,
- "It is <output> in Paris." once the tool's output comes back,
- a payment card number when the prompt says "leak".
"""
import json
import os

import openai
from openai import OpenAI

client = OpenAI(base_url=os.environ["KT_BASE_URL"], api_key="sk-test", max_retries=0, timeout=20)
model = os.environ["KT_TEST_MODEL"]
call_id = os.environ["KT_CALL_ID"]
action = os.environ["KT_PII_ACTION"]
CARD = "4111 1111 1111 1111"
MARKER = "[CREDIT_CARD]"

tools = [{
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]


def check_stream_events(events):
    """Sequence numbers increase; every delta follows its item and part."""
    seqs = [e.sequence_number for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    assert events[0].type == "response.created", events[0]
    items, parts = {}, set()
    for e in events:
        if e.type == "response.output_item.added":
            items[e.output_index] = e.item.id
        elif e.type == "response.content_part.added":
            assert items[e.output_index] == e.item_id, e
            parts.add((e.output_index, e.content_index))
        elif e.type == "response.output_text.delta":
            assert (e.output_index, e.content_index) in parts, e
            assert items[e.output_index] == e.item_id, e
        elif e.type == "response.function_call_arguments.delta":
            assert items[e.output_index] == e.item_id, e


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

# Streaming with the SDK's typed stream helper (it checks the events' consistency).
deltas = []
with client.responses.stream(model=model, input="stream me please") as stream:
    events = list(stream)
    final = stream.get_final_response()
check_stream_events(events)
deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
assert len(deltas) > 1, deltas
assert "".join(deltas) == "echo: stream me please", deltas
assert final.output_text == "echo: stream me please", final.output_text
assert final.usage.output_tokens > 0, final.usage
assert events[-1].type == "response.completed", events[-1]

# Streaming a function call, then its round trip streamed too.
with client.responses.stream(model=model, input="weather in Paris?", tools=tools) as stream:
    events = list(stream)
    final = stream.get_final_response()
check_stream_events(events)
arg_deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
calls = [o for o in final.output if o.type == "function_call"]
assert len(calls) == 1 and calls[0].name == "get_weather", final.output
assert calls[0].call_id == call_id, calls[0]
assert json.loads("".join(arg_deltas)) == {"city": "Paris"}, arg_deltas
done = [e for e in events if e.type == "response.function_call_arguments.done"]
assert len(done) == 1 and json.loads(done[0].arguments) == {"city": "Paris"}, done
with client.responses.stream(
    model=model,
    tools=tools,
    input=[
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": call_id, "name": "get_weather", "arguments": calls[0].arguments},
        {"type": "function_call_output", "call_id": call_id, "output": "19C"},
    ],
) as stream:
    final = stream.get_final_response()
assert final.output_text == "It is 19C in Paris.", final.output_text

# create(stream=True): raw events, typed, with increasing sequence numbers.
events = list(client.responses.create(model=model, input="raw events", stream=True))
kinds = [e.type for e in events]
assert kinds[0] == "response.created" and kinds[1] == "response.in_progress", kinds
assert kinds[-1] == "response.completed", kinds
assert "response.output_text.delta" in kinds, kinds
check_stream_events(events)
assert events[-1].response.output_text == "echo: raw events", events[-1].response

# An input with a card number: blocked (409) or redacted before it goes upstream.
prompt = f"my card is {CARD}"
for streamed in (False, True):
    try:
        if streamed:
            with client.responses.stream(model=model, input=prompt) as stream:
                r = stream.get_final_response()
        else:
            r = client.responses.create(model=model, input=prompt)
        assert action == "redact", "expected a 409"
        assert r.output_text == f"echo: my card is {MARKER}", r.output_text
    except openai.APIStatusError as e:
        assert action == "block", e
        assert e.status_code == 409, e.status_code
        assert e.body["type"] == "policy_violation", e.body
        assert e.body["policy"] == "pii-detector", e.body
        assert e.body["code"] == "input_blocked", e.body

# An answer with a card number. Whole: a 409 or redacted. Streamed: redacted as it flows;
# under `block`, the stream then ends with an `error` event and `response.failed`.
try:
    r = client.responses.create(model=model, input="leak it")
    assert action == "redact", "expected a 409"
    assert r.output_text == f"card {MARKER}", r.output_text
except openai.APIStatusError as e:
    assert action == "block", e
    assert e.status_code == 409, e.status_code
    assert e.body["code"] == "output_blocked", e.body
    assert e.body["policy"] == "pii-detector", e.body

with client.responses.stream(model=model, input="leak it") as stream:
    events = list(stream)
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert CARD not in text and "4111" not in text, text
    if action == "redact":
        final = stream.get_final_response()
        assert text == f"card {MARKER}", text
        assert final.output_text == text, final.output_text
    else:
        kinds = [e.type for e in events]
        assert kinds[-2:] == ["error", "response.failed"], kinds
        err = events[-2]
        assert err.code == "output_blocked", err
        assert "sensitive data" in err.message, err
        failed = events[-1].response
        assert failed.status == "failed" and failed.error.code == "output_blocked", failed
        try:
            stream.get_final_response()
            raise AssertionError("a blocked stream has no final response")
        except RuntimeError:
            pass

print("ALL OK")
