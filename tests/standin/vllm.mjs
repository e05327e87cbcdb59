// vllm.mjs - a stand-in for vLLM's OpenAI-compatible server, for the
// gateway's tests only (vLLM itself needs a GPU and Python packages).
//
// It follows vLLM's observable behaviour (vllm/entrypoints/openai/):
//  - the API key guards only /v1/* ("Authorization: Bearer KEY"); failure is
//    401 {"error":"Unauthorized"}; /health, /metrics, /tokenize,
//    /invocations, /version stay open;
//  - POST /v1/chat/completions, /v1/completions (stream or not; usage in a
//    last chunk with choices [] only when stream_options.include_usage),
//    /v1/embeddings (encoding_format float or base64), GET /v1/models;
//  - a missing model means the default (first) model; an unknown one is
//    404 {"error":{"message":"The model `x` does not exist.","type":
//    "NotFoundError","param":"model","code":404}};
//  - at most --max-seqs sequences run at once, the rest wait (and show in
//    vllm:num_requests_waiting);
//  - a client that disconnects aborts its request (generation stops).
// Test controls, never part of vLLM: the prompt text "__die__" makes the
// replica destroy the connection mid-stream, "__500__" answers 500; every
// stream chunk carries "standin_sent_ms" (wall-clock ms when written);
// GET /standin/stats returns counters and the last request's headers.
//
// Usage: node vllm.mjs [--port N] [--model NAME]... [--max-seqs N]
//                      [--interval-ms N] [--tokens N]
// Prints "listening PORT" on stdout once ready.  VLLM_API_KEY = the key.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

const args = process.argv.slice(2);
const opt = { port: 0, models: [], maxSeqs: 4, intervalMs: 20, tokens: 8 };
for (let i = 0; i < args.length; i++) {
  const a = args[i], v = args[i + 1];
  if (a === '--port') { opt.port = Number(v); i++; }
  else if (a === '--model') { opt.models.push(v); i++; }
  else if (a === '--max-seqs') { opt.maxSeqs = Number(v); i++; }
  else if (a === '--interval-ms') { opt.intervalMs = Number(v); i++; }
  else if (a === '--tokens') { opt.tokens = Number(v); i++; }
  else { console.error(`vllm.mjs: unknown option ${a}`); process.exit(2); }
}
if (opt.models.length === 0) opt.models.push('standin-model');
const apiKey = process.env.VLLM_API_KEY || '';
const started = Math.floor(Date.now() / 1000);

const stats = { requests: 0, aborted: 0, completed: 0, running: 0, waiting: 0, maxRunning: 0,
  promptTokens: 0, generationTokens: 0, success: {}, lastHeaders: null, lastBody: null };
const queue = [];
const nowMs = () => performance.timeOrigin + performance.now();

function acquire() {
  if (stats.running < opt.maxSeqs) { stats.running++; stats.maxRunning = Math.max(stats.maxRunning, stats.running); return Promise.resolve(); }
  stats.waiting++;
  return new Promise((res) => queue.push(res));
}
function release() {
  const next = queue.shift();
  if (next) { stats.waiting--; stats.maxRunning = Math.max(stats.maxRunning, stats.running); next(); }
  else stats.running--;
}

function json(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
function notFound(res, model) {
  json(res, 404, { error: { message: `The model \`${model}\` does not exist.`, type: 'NotFoundError', param: 'model', code: 404 } });
}
function badRequest(res, msg) {
  json(res, 400, { error: { message: msg, type: 'BadRequestError', param: null, code: 400 } });
}

function promptText(body, kind) {
  if (kind === 'chat') return (body.messages || []).map((m) => (typeof m.content === 'string' ? m.content : JSON.stringify(m.content))).join(' ');
  if (kind === 'embeddings') return Array.isArray(body.input) ? body.input.join(' ') : String(body.input ?? '');
  return Array.isArray(body.prompt) ? body.prompt.join(' ') : String(body.prompt ?? '');
}
const countTokens = (s) => Math.max(1, s.split(/\s+/).filter(Boolean).length);

async function generate(req, res, body, kind) {
  const model = body.model ?? opt.models[0];
  if (!opt.models.includes(model)) return notFound(res, model);
  const prompt = promptText(body, kind);
  if (prompt.includes('__500__')) return json(res, 500, { error: { message: 'internal error', type: 'InternalServerError', param: null, code: 500 } });
  const n = Math.min(body.max_tokens ?? body.max_completion_tokens ?? opt.tokens, 4096);
  const ptoks = countTokens(prompt);
  const id = (kind === 'chat' ? 'chatcmpl-' : 'cmpl-') + Math.random().toString(16).slice(2);
  let gone = false;
  res.on('close', () => { if (!res.writableFinished) { gone = true; } });
  await acquire();
  try {
    if (gone) { stats.aborted++; return; }
    const usage = { prompt_tokens: ptoks, total_tokens: ptoks + n, completion_tokens: n };
    if (!body.stream) {
      await new Promise((r) => setTimeout(r, Math.min(opt.intervalMs, 5)));
      if (gone) { stats.aborted++; return; }
      const text = Array.from({ length: n }, (_, i) => `tok${i}`).join(' ');
      const choice = kind === 'chat'
        ? { index: 0, message: { role: 'assistant', content: text, tool_calls: [] }, logprobs: null, finish_reason: 'length', stop_reason: null }
        : { index: 0, text, logprobs: null, finish_reason: 'length', stop_reason: null };
      stats.promptTokens += ptoks; stats.generationTokens += n; stats.completed++;
      stats.success.length = (stats.success.length || 0) + 1;
      return json(res, 200, { id, object: kind === 'chat' ? 'chat.completion' : 'text_completion', created: Math.floor(Date.now() / 1000), model, choices: [choice], usage });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    const includeUsage = !!(body.stream_options && body.stream_options.include_usage);
    const chunk = (delta, finish) => {
      const c = kind === 'chat'
        ? { id, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] }
        : { id, object: 'text_completion', created: Math.floor(Date.now() / 1000), model, choices: [{ index: 0, text: delta.content ?? '', logprobs: null, finish_reason: finish }] };
      c.standin_sent_ms = nowMs();
      res.write(`data: ${JSON.stringify(c)}\n\n`);
    };
    if (kind === 'chat') chunk({ role: 'assistant', content: '' }, null);
    for (let i = 0; i < n; i++) {
      await new Promise((r) => setTimeout(r, opt.intervalMs));
      if (gone) { stats.aborted++; return; }
      if (prompt.includes('__die__') && i === 2) { res.socket.destroy(); stats.aborted++; return; }
      chunk({ content: (i ? ' ' : '') + `tok${i}` }, i === n - 1 ? 'length' : null);
    }
    if (includeUsage) {
      res.write(`data: ${JSON.stringify({ id, object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created: Math.floor(Date.now() / 1000), model, choices: [], usage })}\n\n`);
    }
    res.write('data: [DONE]\n\n');
    res.end();
    stats.promptTokens += ptoks; stats.generationTokens += n; stats.completed++;
    stats.success.length = (stats.success.length || 0) + 1;
  } finally {
    release();
  }
}

function embeddings(res, body) {
  const model = body.model ?? opt.models[0];
  if (!opt.models.includes(model)) return notFound(res, model);
  const inputs = Array.isArray(body.input) ? body.input : [body.input];
  if (inputs.some((x) => x === undefined || x === null)) return badRequest(res, 'input is required');
  const fmt = body.encoding_format ?? 'float';
  if (fmt !== 'float' && fmt !== 'base64') return badRequest(res, `invalid encoding_format ${fmt}`);
  let ptoks = 0;
  const data = inputs.map((s, index) => {
    ptoks += countTokens(String(s));
    const v = Array.from({ length: 8 }, (_, k) => ((String(s).length + k) % 7) / 7);
    if (fmt === 'float') return { index, object: 'embedding', embedding: v };
    return { index, object: 'embedding', embedding: Buffer.from(new Float32Array(v).buffer).toString('base64') };
  });
  stats.promptTokens += ptoks; stats.completed++;
  json(res, 200, { id: 'embd-' + Math.random().toString(16).slice(2), object: 'list', created: Math.floor(Date.now() / 1000), model, data, usage: { prompt_tokens: ptoks, total_tokens: ptoks, completion_tokens: 0 } });
}

function metrics(res) {
  const lines = [];
  for (const m of opt.models) {
    const l = `{engine="0",model_name="${m}"}`;
    lines.push('# TYPE vllm:num_requests_running gauge', `vllm:num_requests_running${l} ${stats.running}`);
    lines.push('# TYPE vllm:num_requests_waiting gauge', `vllm:num_requests_waiting${l} ${stats.waiting}`);
    lines.push('# TYPE vllm:kv_cache_usage_perc gauge', `vllm:kv_cache_usage_perc${l} ${Math.min(1, stats.running / opt.maxSeqs)}`);
    lines.push('# TYPE vllm:prompt_tokens_total counter', `vllm:prompt_tokens_total${l} ${stats.promptTokens}`);
    lines.push('# TYPE vllm:generation_tokens_total counter', `vllm:generation_tokens_total${l} ${stats.generationTokens}`);
    lines.push('# TYPE vllm:request_success_total counter', `vllm:request_success_total{engine="0",finished_reason="length",model_name="${m}"} ${stats.success.length || 0}`);
  }
  const body = lines.join('\n') + '\n';
  res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const path = url.pathname;
  if (path === '/health') { res.writeHead(200, { 'content-length': 0 }); return res.end(); }
  if (path === '/metrics') return metrics(res);
  if (path === '/version') return json(res, 200, { version: '0.0.0-standin' });
  if (path === '/standin/stats') return json(res, 200, stats);
  if (path === '/invocations' || path === '/tokenize' || path === '/detokenize') {
    stats.requests++; stats.lastHeaders = req.headers; stats.openPathHits = (stats.openPathHits || 0) + 1;
    return json(res, 200, { standin: 'open path reached' });
  }
  if (path.startsWith('/v1/') || path.startsWith('/v2/') || path.startsWith('/inference/')) {
    if (apiKey && req.headers.authorization !== `Bearer ${apiKey}`) return json(res, 401, { error: 'Unauthorized' });
  }
  if (req.method === 'GET' && path === '/v1/models') {
    return json(res, 200, { object: 'list', data: opt.models.map((id) => ({ id, object: 'model', created: started, owned_by: 'vllm', root: id, parent: null, max_model_len: 4096, permission: [] })) });
  }
  const kinds = { '/v1/chat/completions': 'chat', '/v1/completions': 'completions', '/v1/embeddings': 'embeddings' };
  if (req.method !== 'POST' || !kinds[path]) return json(res, 404, { detail: 'Not Found' });
  const parts = [];
  req.on('data', (d) => parts.push(d));
  req.on('end', () => {
    stats.requests++;
    stats.lastHeaders = req.headers;
    let body;
    try { body = JSON.parse(Buffer.concat(parts).toString('utf8')); } catch (e) { return badRequest(res, 'invalid JSON'); }
    stats.lastBody = body;
    if (kinds[path] === 'embeddings') return embeddings(res, body);
    generate(req, res, body, kinds[path]).catch((e) => { console.error(e); res.destroy(); });
  });
});
server.keepAliveTimeout = 5000; // uvicorn's default
server.listen(opt.port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => { server.close(); process.exit(0); });
