/*
 * test_hsm_seal.c - the one envelope (creto_hsm_envelope_*, creto_hsm_seal,
 * creto_hsm_unseal; issue 11 §9) that the hybrid key file and the NHI
 * backup share: round trips in place and not, every tampered input refused
 * with the plaintext wiped, a wrong wrapping key, a data key of the wrong
 * length, and the HSM wrapper (creto_hsm_keywrap_with) against SoftHSM2.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "creto/hsm.h"

#include "softhsm_token.h"

/* A software RFC 5649 wrapper (OpenSSL AES-256 key wrap with padding). */
struct soft {
	uint8_t kek[32];
	int unwrap_len_bump; /* unwrap returns this many extra bytes */
};

static int aeskw(const uint8_t kek[32], int enc, const uint8_t *in, size_t inlen, uint8_t *out,
		 size_t *outlen)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, f = 0, ok = 0;
	EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	if (EVP_CipherInit_ex(c, EVP_aes_256_wrap_pad(), NULL, kek, NULL, enc) == 1 &&
	    EVP_CipherUpdate(c, out, &n, in, (int)inlen) == 1 && EVP_CipherFinal_ex(c, out + n, &f) == 1)
		ok = 1;
	EVP_CIPHER_CTX_free(c);
	*outlen = (size_t)(n + f);
	return ok;
}

static int s_wrap(void *ctx, const uint8_t *key, size_t len, uint8_t **w, size_t *wl, creto_err *e)
{
	struct soft *s = ctx;
	*w = malloc(len + 16);
	if (*w == NULL || !aeskw(s->kek, 1, key, len, *w, wl))
		return creto_err_set(e, CRETO_EOP, "soft wrap failed");
	return CRETO_OK;
}

static int s_unwrap(void *ctx, const uint8_t *w, size_t wl, uint8_t *key, size_t cap, size_t *kl,
		    creto_err *e)
{
	struct soft *s = ctx;
	uint8_t buf[512];
	if (wl > sizeof(buf) || !aeskw(s->kek, 0, w, wl, buf, kl))
		return creto_err_set(e, CRETO_EREJECT, "soft unwrap: wrong key or tampered");
	*kl += (size_t)s->unwrap_len_bump;
	if (*kl > cap)
		return creto_err_set(e, CRETO_EREJECT, "soft unwrap: too long");
	memcpy(key, buf, *kl);
	return CRETO_OK;
}

static void soft_kw(creto_hsm_keywrap *kw, struct soft *s)
{
	memset(kw, 0, sizeof(*kw));
	kw->wrap = s_wrap;
	kw->unwrap = s_unwrap;
	kw->ctx = s;
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

static void test_round_trip_and_tamper(void **state)
{
	(void)state;
	struct soft s1 = {{0}, 0}, s2 = {{0}, 0};
	RAND_bytes(s1.kek, 32);
	RAND_bytes(s2.kek, 32);
	creto_hsm_keywrap kw1, kw2;
	soft_kw(&kw1, &s1);
	soft_kw(&kw2, &s2);
	creto_err e;
	creto_err_clear(&e);
	const uint8_t aad[] = "header: version 1, key id k";
	uint8_t pt[1000], ct[1000], back[1000], tag[CRETO_HSM_SEAL_TAG];
	for (size_t i = 0; i < sizeof(pt); i++)
		pt[i] = (uint8_t)(i * 31 + 7);
	creto_hsm_envelope env;
	assert_int_equal(creto_hsm_envelope_new(&kw1, &env, &e), CRETO_OK);
	assert_int_equal(env.wrappedlen, 40);
	assert_int_equal(creto_hsm_seal(&env, aad, sizeof(aad), pt, sizeof(pt), ct, tag, &e), CRETO_OK);
	assert_memory_not_equal(ct, pt, sizeof(pt));
	uint8_t wrapped[40], nonce[CRETO_HSM_SEAL_NONCE];
	memcpy(wrapped, env.wrapped, 40);
	memcpy(nonce, env.nonce, sizeof(nonce));
	creto_hsm_envelope_clear(&env);
	assert_true(all_zero(env.key, sizeof(env.key)));
	assert_null(env.wrapped);

	/* open and unseal */
	assert_int_equal(creto_hsm_envelope_open(&kw1, wrapped, 40, nonce, &env, &e), CRETO_OK);
	assert_int_equal(creto_hsm_unseal(&env, aad, sizeof(aad), ct, sizeof(ct), tag, back, &e), CRETO_OK);
	assert_memory_equal(back, pt, sizeof(pt));
	/* in place */
	uint8_t inpl[1000];
	memcpy(inpl, ct, sizeof(ct));
	assert_int_equal(creto_hsm_unseal(&env, aad, sizeof(aad), inpl, sizeof(inpl), tag, inpl, &e),
			 CRETO_OK);
	assert_memory_equal(inpl, pt, sizeof(pt));
	/* every tampered input: refused, and no plaintext left behind */
	uint8_t bad[sizeof(aad)];
	memcpy(bad, aad, sizeof(aad));
	bad[3] ^= 1;
	memset(back, 0xaa, sizeof(back));
	assert_int_equal(creto_hsm_unseal(&env, bad, sizeof(bad), ct, sizeof(ct), tag, back, &e),
			 CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "authentication failed"));
	assert_true(all_zero(back, sizeof(back)));
	memcpy(inpl, ct, sizeof(ct));
	inpl[500] ^= 0x80;
	assert_int_equal(creto_hsm_unseal(&env, aad, sizeof(aad), inpl, sizeof(inpl), tag, inpl, &e),
			 CRETO_EREJECT);
	assert_true(all_zero(inpl, sizeof(inpl)));
	uint8_t badtag[CRETO_HSM_SEAL_TAG];
	memcpy(badtag, tag, sizeof(tag));
	badtag[0] ^= 1;
	assert_int_equal(creto_hsm_unseal(&env, aad, sizeof(aad), ct, sizeof(ct), badtag, back, &e),
			 CRETO_EREJECT);
	creto_hsm_envelope_clear(&env);
	/* a changed nonce */
	nonce[0] ^= 1;
	assert_int_equal(creto_hsm_envelope_open(&kw1, wrapped, 40, nonce, &env, &e), CRETO_OK);
	assert_int_equal(creto_hsm_unseal(&env, aad, sizeof(aad), ct, sizeof(ct), tag, back, &e),
			 CRETO_EREJECT);
	creto_hsm_envelope_clear(&env);
	nonce[0] ^= 1;
	/* the wrong wrapping key: the wrapper's own error, for the caller to
	 * name, and a cleared envelope */
	assert_int_equal(creto_hsm_envelope_open(&kw2, wrapped, 40, nonce, &env, &e), CRETO_EREJECT);
	assert_string_equal(e.msg, "soft unwrap: wrong key or tampered");
	assert_true(all_zero(env.key, sizeof(env.key)));
	/* a data key of the wrong length */
	s1.unwrap_len_bump = 8;
	assert_int_equal(creto_hsm_envelope_open(&kw1, wrapped, 40, nonce, &env, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "unwrapped data key is 40 bytes, want 32"));
	s1.unwrap_len_bump = 0;
	/* an empty message still has a tag that binds the header */
	assert_int_equal(creto_hsm_envelope_new(&kw1, &env, &e), CRETO_OK);
	assert_int_equal(creto_hsm_seal(&env, aad, sizeof(aad), NULL, 0, NULL, tag, &e), CRETO_OK);
	assert_int_equal(creto_hsm_unseal(&env, aad, sizeof(aad), NULL, 0, tag, NULL, &e), CRETO_OK);
	assert_int_equal(creto_hsm_unseal(&env, bad, sizeof(bad), NULL, 0, tag, NULL, &e), CRETO_EREJECT);
	creto_hsm_envelope_clear(&env);
	creto_hsm_envelope_clear(NULL);
}

/* The envelope through a SoftHSM2 AES key (what hybrid.c does). */
static void test_hsm_keywrap(void **state)
{
	(void)state;
	if (access(SOFTHSM, R_OK) != 0)
		skip();
	struct softhsm_token t = {0};
	assert_int_equal(softhsm_token_make(&t, "test_hsm_seal", "seal", "1111", "2222"), 0);
	creto_err e;
	creto_err_clear(&e);
	creto_hsm_opts o = {.module_path = SOFTHSM, .pin_file = t.pin};
	creto_hsm *h = NULL;
	assert_int_equal(creto_hsm_open_uri("pkcs11:token=seal", &o, CRETO_HSM_LOGIN | CRETO_HSM_RW, &h,
					    NULL, &e),
			 CRETO_OK);
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_AES256, "kek", 0, NULL, &e), CRETO_OK);
	assert_int_equal(creto_hsm_keygen(h, CRETO_HSM_KT_AES256, "kek2", 0, NULL, &e), CRETO_OK);
	creto_p11_uri *u = NULL, *u2 = NULL;
	assert_int_equal(creto_p11_uri_parse("pkcs11:object=kek", &u, &e), CRETO_OK);
	assert_int_equal(creto_p11_uri_parse("pkcs11:object=kek2", &u2, &e), CRETO_OK);
	creto_hsm_keywrap kw, kw2;
	creto_hsm_keywrap_with(&kw, h, u);
	creto_hsm_keywrap_with(&kw2, h, u2);
	creto_hsm_envelope env;
	const uint8_t seed[32] = {1, 2, 3, 4};
	uint8_t ct[32], back[32], tag[CRETO_HSM_SEAL_TAG];
	assert_int_equal(creto_hsm_envelope_new(&kw, &env, &e), CRETO_OK);
	assert_int_equal(env.wrappedlen, 40);
	assert_int_equal(creto_hsm_seal(&env, (const uint8_t *)"h", 1, seed, 32, ct, tag, &e), CRETO_OK);
	uint8_t wrapped[40], nonce[CRETO_HSM_SEAL_NONCE];
	memcpy(wrapped, env.wrapped, 40);
	memcpy(nonce, env.nonce, sizeof(nonce));
	creto_hsm_envelope_clear(&env);
	assert_int_equal(creto_hsm_envelope_open(&kw, wrapped, 40, nonce, &env, &e), CRETO_OK);
	assert_int_equal(creto_hsm_unseal(&env, (const uint8_t *)"h", 1, ct, 32, tag, back, &e), CRETO_OK);
	assert_memory_equal(back, seed, 32);
	creto_hsm_envelope_clear(&env);
	assert_int_equal(creto_hsm_envelope_open(&kw2, wrapped, 40, nonce, &env, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "does not unwrap"));
	creto_p11_uri_free(u);
	creto_p11_uri_free(u2);
	creto_hsm_close(h);
	assert_int_equal(softhsm_token_remove(&t), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_and_tamper),
		cmocka_unit_test(test_hsm_keywrap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
