// oidc_client.mjs - an agent obtaining its token with the npm `openid-client`
// package: discovery of the RFC 8414 metadata, then client_credentials with
// private_key_jwt, using a key creto generated (PKCS#8, imported by jose).
//   node oidc_client.mjs ISSUER_URL CLIENT_ID PKCS8_PEM KID EdDSA|Ed25519|ES256 [SCOPE]
// EdDSA: the assertion's alg remapped from WebCrypto's "Ed25519" to "EdDSA";
// Ed25519: sent as openid-client makes it.  Prints the token response JSON;
// exit 1 with the OAuth error on a refusal.
import { readFileSync } from 'node:fs';
import * as client from 'openid-client';
import * as jose from 'jose';

const [issuer, clientId, pem, kid, alg, scope] = process.argv.slice(2);
try {
  const key = await jose.importPKCS8(readFileSync(pem, 'utf8'), alg === 'ES256' ? 'ES256' : 'EdDSA');
  const remap = alg === 'EdDSA'
    ? { [client.modifyAssertion]: (header) => { if (header.alg === 'Ed25519') header.alg = 'EdDSA'; } }
    : undefined;
  const config = await client.discovery(new URL(issuer), clientId, undefined,
    client.PrivateKeyJwt({ key, kid }, remap), { execute: [client.allowInsecureRequests], algorithm: 'oauth2' });
  const t = await client.clientCredentialsGrant(config, scope ? { scope } : {});
  console.log(JSON.stringify({
    access_token: t.access_token, token_type: t.token_type, expires_in: t.expires_in, scope: t.scope,
    token_endpoint: config.serverMetadata().token_endpoint,
  }));
} catch (err) {
  console.error(`openid-client: ${err.error || err.code || ''} ${err.error_description || err.message}`);
  process.exit(1);
}
