// client.mjs - the npm `openai` package (v6) as an agent would use it,
// against `creto gateway`.  Each check prints "ok NAME" or "FAIL NAME: why";
// the shell test counts them.  Usage: node client.mjs BASE_URL TOKEN_DIR
import OpenAI from 'openai';
import fs from 'node:fs';

const [base, dir] = process.argv.slice(2);
const tok = (a) => fs.readFileSync(`${dir}/tok.${a}`, 'utf8').trim();
const client = (a, o = {}) => new OpenAI({ baseURL: `${base}/v1`, apiKey: tok(a), maxRetries: 0, timeout: 10000, ...o });
let failed = 0;
const check = async (name, fn) => {
  try { await fn(); console.log(`ok ${name}`); }
  catch (e) { failed++; console.log(`FAIL ${name}: ${e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e}`); }
};
const assert = (c, m) => { if (!c) throw new Error(m); };
const expectErr = async (cls, status, fn) => {
  try { await fn(); } catch (e) {
    assert(e instanceof cls, `want ${cls.name}, got ${e.constructor.name}: ${e.message}`);
    assert(e.status === status, `status ${e.status}`);
    return e;
  }
  throw new Error(`no ${cls.name}`);
};

const a = client('agent-a');
await check('chat', async () => {
  const r = await a.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'hello' }] });
  assert(r.choices[0].message.content.startsWith('tok0'), JSON.stringify(r));
  assert(r.usage.completion_tokens === 8, 'usage');
});
await check('chat stream token by token', async () => {
  const s = await a.chat.completions.create({ model: 'm1', stream: true, messages: [{ role: 'user', content: 'hello' }] });
  let text = '', n = 0;
  for await (const ch of s) {
    assert(ch.choices.length === 1, 'a usage-only chunk reached the client');
    const d = ch.choices[0].delta.content || '';
    if (d) { process.stderr.write(`[${d}]`); n++; }
    text += d;
  }
  process.stderr.write('\n');
  assert(n === 8 && text === 'tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7', text);
});
await check('chat stream with include_usage', async () => {
  const s = await a.chat.completions.create({ model: 'm1', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hello' }] });
  let usage = null;
  for await (const ch of s) if (ch.usage) usage = ch.usage;
  assert(usage && usage.completion_tokens === 8, 'usage chunk missing');
});
await check('completions', async () => {
  const r = await a.completions.create({ model: 'm1', prompt: 'once upon a time', max_tokens: 3 });
  assert(r.choices[0].text === 'tok0 tok1 tok2', r.choices[0].text);
});
await check('embeddings (base64 by default)', async () => {
  const r = await a.embeddings.create({ model: 'm1', input: ['alpha', 'beta'] });
  assert(r.data.length === 2 && r.data[0].embedding.length === 8, JSON.stringify(r.data[0]));
  assert(typeof r.data[0].embedding[0] === 'number', 'decoded floats');
});
await check('models list is filtered', async () => {
  const ids = [];
  for await (const m of a.models.list()) ids.push(m.id);
  assert(ids.sort().join(',') === 'm1,m2', ids.join(','));
  const idsB = [];
  for await (const m of client('agent-b').models.list()) idsB.push(m.id);
  assert(idsB.join(',') === 'm2', idsB.join(','));
});
await check('401 AuthenticationError', async () => {
  const bad = new OpenAI({ baseURL: `${base}/v1`, apiKey: tok('foreign'), maxRetries: 0 });
  await expectErr(OpenAI.AuthenticationError, 401, () => bad.chat.completions.create({ model: 'm1', messages: [] }));
});
await check('403 PermissionDeniedError', async () => {
  const e = await expectErr(OpenAI.PermissionDeniedError, 403, () => client('agent-b').chat.completions.create({ model: 'm1', messages: [] }));
  assert(e.code === 'model_not_permitted', e.code);
});
await check('404 NotFoundError', async () => {
  const e = await expectErr(OpenAI.NotFoundError, 404, () => a.chat.completions.create({ model: 'ghost', messages: [] }));
  assert(e.code === 'model_not_found' && e.param === 'model', `${e.code} ${e.param}`);
});
await check('400 BadRequestError', async () => {
  await expectErr(OpenAI.BadRequestError, 400, () => a.chat.completions.create({ messages: [] }));
});
await check('429 RateLimitError without retries', async () => {
  const l = client('agent-l');
  const s = await l.chat.completions.create({ model: 'm1', stream: true, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] });
  const e = await expectErr(OpenAI.RateLimitError, 429, () => l.chat.completions.create({ model: 'm1', messages: [] }));
  assert(e.headers.get('retry-after-ms'), 'retry-after-ms');
  for await (const _ of s) { /* drain */ }
});
await check('429 retried after retry-after', async () => {
  const l = client('agent-l', { maxRetries: 2 });
  const s = await l.chat.completions.create({ model: 'm1', stream: true, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] });
  const drained = (async () => { for await (const _ of s) { /* drain */ } })();
  const t0 = Date.now();
  const r = await l.chat.completions.create({ model: 'm1', messages: [{ role: 'user', content: 'y' }] }).withResponse();
  assert(r.data.choices.length === 1, 'answer');
  assert(Date.now() - t0 >= 900, 'the client did not wait for retry-after');
  assert(r.response.headers.get('x-request-id'), 'x-request-id');
  await drained;
});
await check('quota 429 is not retried', async () => {
  let calls = 0;
  const l = client('agent-l', { maxRetries: 2, fetch: (u, i) => { calls++; return fetch(u, i); } });
  await expectErr(OpenAI.RateLimitError, 429, () => l.chat.completions.create({ model: 'm1', max_tokens: 9000, messages: [] }));
  assert(calls === 1, `${calls} calls`);
});
await check('error inside a stream', async () => {
  const s = await a.chat.completions.create({ model: 'm1', stream: true, messages: [{ role: 'user', content: '__die__' }] });
  let err = null;
  try { for await (const _ of s) { /* read */ } } catch (e) { err = e; }
  assert(err instanceof OpenAI.APIError, `got ${err}`);
});
process.exit(failed ? 1 : 0);
