"""The official openai SDK through kt against a mock Anthropic Messages API.

Run by tests/it/providers_anthropic.rs with KT_BASE_URL (the gateway's /v1 URL) and
KT_TEST_MODEL set; the expectations below are what that mock answers, from
testdata/providers/anthropic/.
"""
import os

from openai import OpenAI

import provider_suite

client = OpenAI(base_url=os.environ["KT_BASE_URL"], api_key="sk-client-unused", max_retries=0, timeout=20)
provider_suite.run(client, os.environ["KT_TEST_MODEL"], {
    "provider": "anthropic",
    "chat_text": "Hello from Claude",
    # input 10 + cache creation 2 + cache read 5; output 4.
    "chat_usage": (17, 4),
    # (cache read, cache write) as prompt_tokens_details.
    "chat_cache": (5, 2),
    "stream_text": "Bonjour, ça va? 🌍",
    "stream_usage": (35, 9),
    "tool_calls": [("toolu_01A", "get_weather", {"city": "Paris"}), ("toolu_01B", "get_time", {})],
    "tools_content": "Checking both.",
    "stream_tool_calls": [("toolu_01", "get_weather", {"city": "Paris"}), ("toolu_02", "get_time", {})],
    "result_ids": ["toolu_01A", "toolu_01B"],
    "midstream_error": "Overloaded",
})
print("ALL OK")
