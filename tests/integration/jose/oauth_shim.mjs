// oauth_shim.mjs - a stand-in for the gateway's HTTP front of the token
// endpoint, for tests/integration/test_nhi_openid.sh until the gateway
// serves it: on 127.0.0.1, an ephemeral port, it answers
//   GET  /.well-known/oauth-authorization-server  <- `creto nhi token metadata`
//   GET  /.well-known/jwks.json                   <- `creto nhi token metadata --jwks-set`
//   POST /oauth/token                             <- `creto nhi token exchange --form-file -`
// so every decision is creto's; the shim only maps the answer's error code
// to its HTTP status (RFC 6749 5.2; 429/503 for temporarily_unavailable is
// not needed here).
//   node oauth_shim.mjs CRETO DB ISSUER_KEY REPLAY_STATE URL_FILE
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

const [creto, db, key, state, urlFile] = process.argv.slice(2);
let issuer = '';
const status = { invalid_client: 401, server_error: 500, temporarily_unavailable: 503 };

const server = http.createServer((req, res) => {
  const send = (code, body) => {
    res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' });
    res.end(body);
  };
  const run = (args, input) => spawnSync(creto, ['nhi', 'token', ...args], { input, maxBuffer: 1 << 20 });
  const meta = ['--db', db, '--key', key, '--issuer-url', issuer];
  if (req.method === 'GET' && req.url === '/.well-known/oauth-authorization-server') {
    const r = run(['metadata', ...meta]);
    return send(r.status === 0 ? 200 : 500, r.stdout);
  }
  if (req.method === 'GET' && req.url === '/.well-known/jwks.json') {
    const r = run(['metadata', ...meta, '--jwks-set']);
    return send(r.status === 0 ? 200 : 500, r.stdout);
  }
  if (req.method === 'POST' && req.url === '/oauth/token') {
    const chunks = [];
    let n = 0;
    req.on('data', (c) => { n += c.length; if (n <= 16384) chunks.push(c); });
    req.on('end', () => {
      const args = ['exchange', ...meta, '--replay-state', state, '--form-file', '-',
        '--source', req.socket.remoteAddress];
      if (req.headers['content-type']) args.push('--content-type', req.headers['content-type']);
      const r = run(args, Buffer.concat(chunks));
      const body = r.stdout.toString().split('\n')[0];
      if (r.status === 0) return send(200, body);
      let code = 500;
      try { code = status[JSON.parse(body).error] || 400; } catch { /* no JSON: 500 */ }
      process.stderr.write(r.stderr);
      return send(code, body || '{"error":"server_error"}');
    });
    return;
  }
  send(404, '{"error":"not_found"}');
});
server.listen(0, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  writeFileSync(urlFile, issuer);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
