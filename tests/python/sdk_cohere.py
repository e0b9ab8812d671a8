"""The official openai SDK through kt against a mock Cohere v2 chat API.

Run by tests/it/providers_cohere.rs with KT_BASE_URL (the gateway's /v1 URL) and
KT_TEST_MODEL set; the expectations below are what that mock answers, from
testdata/providers/cohere/.
"""
import os

from openai import OpenAI

import provider_suite

client = OpenAI(base_url=os.environ["KT_BASE_URL"], api_key="sk-client-unused", max_retries=0, timeout=20)
calls = [("get_weather_1byjy32y4hvq", "get_weather", {"city": "Paris"}), ("get_time_9ab", "get_time", {})]
provider_suite.run(client, os.environ["KT_TEST_MODEL"], {
    "provider": "cohere",
    "chat_text": "Hello from Cohere",
    "chat_usage": (12, 4),
    "stream_text": "Bonjour, ça va? 🌍",
    "stream_usage": (71, 6),
    "tool_calls": calls,
    # Cohere's tool_plan is not message content.
    "tools_content": None,
    "stream_tool_calls": calls,
    "result_ids": ["get_weather_1byjy32y4hvq", "get_time_9ab"],
    "midstream_error": "internal model error",
})
print("ALL OK")
