// The official OpenAI Node SDK against a running Tollgate:
//
//   node check.mjs BASE_URL KEY
//
// BASE_URL is the Envoy listener (http://127.0.0.1:PORT), KEY a Tollgate
// API key. Aliases "small" (cheap) and "large" (whose worst case exceeds the
// key's budget cap) must exist. Prints one JSON object with what the SDK
// returned for a chat completion, a stream and a budget rejection; exits 1
// only if the SDK itself could not run (the caller asserts the values).
import OpenAI from 'openai';

const [base, key] = process.argv.slice(2);
if (!base || !key) {
  console.error('usage: node check.mjs BASE_URL KEY');
  process.exit(2);
}

// The SDK's defaults (maxRetries 2, its own backoff): what users run.
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: key });
const messages = [{ role: 'user', content: 'Say hello.' }];
const out = { node: process.version };

{
  const { data, response } = await client.chat.completions
    .create({ model: 'small', messages, max_tokens: 64 })
    .withResponse();
  out.chat = {
    content: data.choices[0]?.message?.content ?? null,
    model: data.model,
    usage: data.usage ?? null,
    provider: response.headers.get('x-tollgate-provider'),
    target: response.headers.get('x-tollgate-model'),
    cost: response.headers.get('x-tollgate-cost-usd'),
  };
}

{
  const stream = await client.chat.completions.create({
    model: 'small', messages, max_tokens: 64, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let chunks = 0;
  let usage = null;
  for await (const c of stream) {
    chunks++;
    text += c.choices[0]?.delta?.content ?? '';
    if (c.usage) usage = c.usage;
  }
  out.stream = { text, chunks, usage };
}

{
  const start = performance.now();
  try {
    await client.chat.completions.create({ model: 'large', messages, max_tokens: 16000 });
    out.budget = { error: null };
  } catch (e) {
    out.budget = {
      error: e?.constructor?.name ?? String(e),
      rateLimit: e instanceof OpenAI.RateLimitError,
      status: e?.status ?? null,
      code: e?.code ?? null,
      type: e?.type ?? null,
      shouldRetry: e?.headers?.get?.('x-should-retry') ?? null,
      retryAfter: e?.headers?.get?.('retry-after') ?? null,
    };
  }
  out.budget.ms = Math.round(performance.now() - start);
}

console.log(JSON.stringify(out));
