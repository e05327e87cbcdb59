// peer.mjs - the independent JOSE side of tests/integration/test_nhi_jose.sh.
//   node peer.mjs verify JWKS_FILE TOKEN ISS AUD [NOW] -> payload JSON, exit 0; exit 1 on rejection
//        (NOW: epoch seconds to judge exp/nbf by, for a test's pinned clock)
//   node peer.mjs sign PKCS8_PEM ALG KID CLAIMS_JSON -> a compact JWS made by jose
//   node peer.mjs craft PKCS8_PEM|- HEADER_JSON PAYLOAD_JSON [hs-secret-file]
//        -> header and payload taken verbatim (to test duplicate keys, alg none,
//           alg confusion), signed with node:crypto (Ed25519 / ES256 r||s / HS256)
import { readFileSync } from 'node:fs';
import { createPrivateKey, createHmac, sign as nodeSign } from 'node:crypto';
import * as jose from 'jose';

const [cmd, ...a] = process.argv.slice(2);
const b64u = (b) => Buffer.from(b).toString('base64url');

try {
  if (cmd === 'verify') {
    const jwks = jose.createLocalJWKSet(JSON.parse(readFileSync(a[0], 'utf8')));
    const { payload, protectedHeader } = await jose.jwtVerify(a[1], jwks, {
      issuer: a[2], audience: a[3], algorithms: ['EdDSA', 'ES256'],
      ...(a[4] ? { currentDate: new Date(Number(a[4]) * 1000) } : {}),
    });
    console.log(JSON.stringify({ header: protectedHeader, payload }));
  } else if (cmd === 'sign') {
    const key = await jose.importPKCS8(readFileSync(a[0], 'utf8'), a[1]);
    const claims = JSON.parse(a[3]);
    const tok = await new jose.SignJWT(claims)
      .setProtectedHeader({ alg: a[1], kid: a[2], typ: 'JWT' })
      .sign(key);
    console.log(tok);
  } else if (cmd === 'craft') {
    const input = `${b64u(a[1])}.${b64u(a[2])}`;
    let sig = '';
    const alg = JSON.parse(a[1]).alg;
    if (a[3]) {
      sig = b64u(createHmac('sha256', readFileSync(a[3])).update(input).digest());
    } else if (a[0] !== '-') {
      const key = createPrivateKey(readFileSync(a[0], 'utf8'));
      sig = key.asymmetricKeyType === 'ed25519'
        ? b64u(nodeSign(null, Buffer.from(input), key))
        : b64u(nodeSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }));
    }
    void alg;
    console.log(`${input}.${sig}`);
  } else {
    console.error('usage: peer.mjs verify|sign|craft ...');
    process.exit(2);
  }
} catch (err) {
  console.error(`jose: ${err.code || ''} ${err.message}`);
  process.exit(1);
}
