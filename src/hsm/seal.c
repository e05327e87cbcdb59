/*
 * seal.c - the envelope (include/creto/hsm.h): AES-256-GCM under a fresh
 * data key wrapped by a key wrapper, normally an HSM AES key.  The hybrid
 * key's ML-DSA seed (hybrid.c, docs/keys.md §4) and the NHI backup
 * (src/nhi/backup.c, docs/nhi.md) are both sealed here; each lays out its
 * own header around the wrapped key and nonce and authenticates it as the
 * associated data.
 */
#include "p11.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define SEAL_CHUNK (1u << 30) /* EVP lengths are int */

static int kw_wrap(void *ctx, const uint8_t *key, size_t len, uint8_t **wrapped, size_t *wlen,
		   creto_err *e)
{
	const creto_hsm_keywrap *kw = ctx;
	return creto_hsm_wrap_with(kw->h, kw->u, key, len, wrapped, wlen, e);
}

static int kw_unwrap(void *ctx, const uint8_t *wrapped, size_t wlen, uint8_t *key, size_t cap,
		     size_t *klen, creto_err *e)
{
	const creto_hsm_keywrap *kw = ctx;
	return creto_hsm_unwrap_with(kw->h, kw->u, wrapped, wlen, key, cap, klen, e);
}

void creto_hsm_keywrap_with(creto_hsm_keywrap *kw, creto_hsm *h, const creto_p11_uri *u)
{
	memset(kw, 0, sizeof(*kw));
	kw->wrap = kw_wrap;
	kw->unwrap = kw_unwrap;
	kw->ctx = kw;
	kw->h = h;
	kw->u = u;
}

void creto_hsm_envelope_clear(creto_hsm_envelope *env)
{
	if (env == NULL)
		return;
	OPENSSL_cleanse(env->key, sizeof(env->key));
	free(env->wrapped);
	memset(env, 0, sizeof(*env));
}

int creto_hsm_envelope_new(const creto_hsm_keywrap *kw, creto_hsm_envelope *env, creto_err *e)
{
	memset(env, 0, sizeof(*env));
	if (RAND_priv_bytes(env->key, sizeof(env->key)) != 1 ||
	    RAND_bytes(env->nonce, sizeof(env->nonce)) != 1) {
		creto_hsm_envelope_clear(env);
		return creto_err_openssl(e, "data key");
	}
	int rc = kw->wrap(kw->ctx, env->key, sizeof(env->key), &env->wrapped, &env->wrappedlen, e);
	if (rc != CRETO_OK)
		creto_hsm_envelope_clear(env);
	return rc;
}

int creto_hsm_envelope_open(const creto_hsm_keywrap *kw, const uint8_t *wrapped, size_t wlen,
			    const uint8_t nonce[CRETO_HSM_SEAL_NONCE], creto_hsm_envelope *env,
			    creto_err *e)
{
	memset(env, 0, sizeof(*env));
	/* Room for a longer key, so a wrong length is told, not truncated. */
	uint8_t key[CRETO_HSM_SEAL_KEY + 32];
	size_t klen = 0;
	int rc = kw->unwrap(kw->ctx, wrapped, wlen, key, sizeof(key), &klen, e);
	if (rc == CRETO_OK && klen != CRETO_HSM_SEAL_KEY)
		rc = creto_err_set(e, CRETO_EREJECT, "unwrapped data key is %zu bytes, want %d", klen,
				   CRETO_HSM_SEAL_KEY);
	if (rc == CRETO_OK) {
		memcpy(env->key, key, CRETO_HSM_SEAL_KEY);
		memcpy(env->nonce, nonce, CRETO_HSM_SEAL_NONCE);
	}
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

/* One AES-256-GCM pass; enc 1 seals (tag out), 0 unseals (tag in). */
static int gcm(const creto_hsm_envelope *env, int enc, const uint8_t *aad, size_t aadlen,
	       const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag, creto_err *e)
{
	if (aadlen > INT_MAX || len > ((uint64_t)1 << 36))
		return creto_err_set(e, CRETO_EUSAGE, "envelope: data too long");
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int rc = CRETO_OK, n = 0;
	if (c == NULL || EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, CRETO_HSM_SEAL_NONCE, NULL) != 1 ||
	    EVP_CipherInit_ex(c, NULL, NULL, env->key, env->nonce, enc) != 1 ||
	    (aadlen > 0 && EVP_CipherUpdate(c, NULL, &n, aad, (int)aadlen) != 1)) {
		rc = creto_err_openssl(e, enc ? "seal" : "unseal");
		goto out;
	}
	for (size_t off = 0; off < len;) {
		size_t chunk = len - off > SEAL_CHUNK ? SEAL_CHUNK : len - off;
		if (EVP_CipherUpdate(c, out + off, &n, in + off, (int)chunk) != 1) {
			rc = creto_err_openssl(e, enc ? "seal" : "unseal");
			goto out;
		}
		off += chunk;
	}
	if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, CRETO_HSM_SEAL_TAG, tag) != 1) {
		rc = creto_err_openssl(e, "unseal");
		goto out;
	}
	uint8_t fin[16];
	if (EVP_CipherFinal_ex(c, fin, &n) != 1) {
		if (enc)
			rc = creto_err_openssl(e, "seal");
		else
			rc = creto_err_set(e, CRETO_EREJECT,
					   "authentication failed (wrong key, tampered header or data)");
		goto out;
	}
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, CRETO_HSM_SEAL_TAG, tag) != 1)
		rc = creto_err_openssl(e, "seal");
out:
	EVP_CIPHER_CTX_free(c);
	if (rc != CRETO_OK)
		OPENSSL_cleanse(out, len);
	return rc;
}

int creto_hsm_seal(const creto_hsm_envelope *env, const uint8_t *aad, size_t aadlen,
		   const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[CRETO_HSM_SEAL_TAG],
		   creto_err *e)
{
	return gcm(env, 1, aad, aadlen, in, len, out, tag, e);
}

int creto_hsm_unseal(const creto_hsm_envelope *env, const uint8_t *aad, size_t aadlen,
		     const uint8_t *in, size_t len, const uint8_t tag[CRETO_HSM_SEAL_TAG],
		     uint8_t *out, creto_err *e)
{
	uint8_t t[CRETO_HSM_SEAL_TAG];
	memcpy(t, tag, sizeof(t));
	return gcm(env, 0, aad, aadlen, in, len, out, t, e);
}
