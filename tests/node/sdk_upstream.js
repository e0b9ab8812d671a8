// The official `openai` Node SDK through kt to an OpenAI-format mock upstream.
//
// Run by tests/it/sdk.rs (`openai_node_sdk_against_an_openai_upstream`), which starts the
// upstream: it echoes the last user message, streams words `STREAM_GAP_MS` apart, answers
// tool calls when tools are sent, and fails on purpose for the models `rate-limited`
// (429, Retry-After) and `broken` (500).
'use strict';
const assert = require('node:assert/strict');
const OpenAI = require('openai');

const BASE = process.env.KT_BASE_URL;
const GAP = Number(process.env.STREAM_GAP_MS);
const client = new OpenAI({
  baseURL: BASE,
  apiKey: 'sk-node-passthrough',
  organization: 'org-node',
  project: 'proj_node',
  maxRetries: 0,
  timeout: 20_000,
  defaultHeaders: { 'X-Request-Source': 'node-sdk-test', 'X-Correlation-Id': 'corr-node' },
});
const user = (content) => [{ role: 'user', content }];

async function main() {
  // The provider's answer as it sent it (its own members too), x_keeptrusts added.
  const r = await client.chat.completions.create({ model: 'gpt-4o', messages: user('hello') });
  assert.equal(r.choices[0].message.content, 'echo hello');
  assert.equal(r.system_fingerprint, 'fp_mock');
  assert.equal(r.usage.total_tokens, 5);
  assert.equal(r.x_keeptrusts.provider_used, 'openai');

  // A stream reaches the SDK as the upstream sends it: chunks spread over the upstream's
  // gaps, not delivered together at the end.
  const started = Date.now();
  const stream = await client.chat.completions.create({
    model: 'gpt-4o',
    messages: user('one two three four five'),
    stream: true,
    stream_options: { include_usage: true },
  });
  const arrivals = [];
  let text = '';
  let usage = null;
  for await (const chunk of stream) {
    const piece = chunk.choices[0]?.delta?.content;
    if (piece) {
      text += piece;
      arrivals.push(Date.now() - started);
    }
    usage = chunk.usage ?? usage;
  }
  assert.equal(text, 'one two three four five');
  assert.equal(usage.total_tokens, 5);
  assert.equal(arrivals.length, 5);
  const spread = arrivals[4] - arrivals[0];
  assert.ok(spread >= 3 * GAP, `5 words ${GAP} ms apart upstream arrived within ${spread} ms: ${arrivals}`);

  // Tool calls, both ways: the model's call, then the tool's result sent back.
  const tools = [
    {
      type: 'function',
      function: {
        name: 'get_account_balance',
        parameters: { type: 'object', properties: { account_id: { type: 'string' } }, required: ['account_id'] },
      },
    },
  ];
  const messages = user('balance of AC-1234?');
  const first = await client.chat.completions.create({ model: 'gpt-4o', messages, tools });
  const call = first.choices[0].message.tool_calls[0];
  assert.equal(first.choices[0].finish_reason, 'tool_calls');
  assert.equal(call.function.name, 'get_account_balance');
  assert.deepEqual(JSON.parse(call.function.arguments), { account_id: 'AC-1234' });
  messages.push(first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '{"balance": 12}' });
  const second = await client.chat.completions.create({ model: 'gpt-4o', messages, tools });
  assert.equal(second.choices[0].message.content, 'echo {"balance": 12}');

  // Upstream failures keep their status, in the error shape the SDK reads.
  let e = await client.chat.completions.create({ model: 'rate-limited', messages: user('x') }).catch((x) => x);
  assert.ok(e instanceof OpenAI.RateLimitError, `${e}`);
  assert.equal(e.status, 429);
  assert.match(e.message, /slow down/);
  assert.equal(e.headers.get('retry-after'), '7');
  e = await client.chat.completions.create({ model: 'broken', messages: user('x') }).catch((x) => x);
  assert.ok(e instanceof OpenAI.InternalServerError, `${e}`);
  assert.equal(e.status, 500);
  assert.match(e.message, /upstream fell over/);

  console.log('ALL OK');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
