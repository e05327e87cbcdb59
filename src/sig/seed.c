/*
 * seed.c - ML-DSA for key stores that keep only the 32-byte seed (the HSM's
 * hybrid key): the public key of a seed, and a primitive signature with the
 * key pair derived from it (include/creto/sig.h).  The only door from
 * outside src/sig to the FIPS 204 code in src/sig/mldsa/.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "sig/sig_internal.h"

_Static_assert(CRETO_MLDSA_SEED_LEN == CRETO_MLDSA_SEEDBYTES, "seed length");

static int seed_alg(creto_alg alg, creto_err *e)
{
	if (!creto_alg_is_mldsa(alg))
		return creto_err_set(e, CRETO_EUSAGE, "ML-DSA seed: %s is not an ML-DSA algorithm",
				     creto_alg_name(alg) ? creto_alg_name(alg) : "(none)");
	return CRETO_OK;
}

/* Derive (pk, sk) from seed; sk is malloc'ed (CRETO_MLDSA_SK_MAX), the
 * caller wipes and frees it. */
static int derive(creto_alg alg, const uint8_t *seed, uint8_t pk[CRETO_MLDSA_PK_MAX], uint8_t **sk,
		  creto_err *e)
{
	*sk = malloc(CRETO_MLDSA_SK_MAX);
	if (*sk == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	if (creto_mldsa_keygen(creto_alg_mldsa_ps(alg), seed, pk, *sk) != 0)
		return creto_err_set(e, CRETO_EOP, "ML-DSA key derivation failed");
	return CRETO_OK;
}

static void seed_sk_free(uint8_t *sk)
{
	if (sk == NULL)
		return;
	OPENSSL_cleanse(sk, CRETO_MLDSA_SK_MAX);
	free(sk);
}

int creto_mldsa_seed_pubkey(creto_alg alg, const uint8_t seed[CRETO_MLDSA_SEED_LEN], uint8_t *pk,
			    size_t cap, size_t *pklen, creto_err *e)
{
	*pklen = 0;
	int rc = seed_alg(alg, e);
	if (rc != CRETO_OK)
		return rc;
	size_t want = creto_alg_pub_len(alg);
	if (cap < want)
		return creto_err_set(e, CRETO_EOP, "ML-DSA public key buffer too small");
	uint8_t full[CRETO_MLDSA_PK_MAX], *sk = NULL;
	rc = derive(alg, seed, full, &sk, e);
	seed_sk_free(sk);
	if (rc != CRETO_OK)
		return rc;
	memcpy(pk, full, want);
	*pklen = want;
	return CRETO_OK;
}

int creto_mldsa_seed_sign(creto_alg alg, const uint8_t seed[CRETO_MLDSA_SEED_LEN],
			  const uint8_t *pk, size_t pklen, const uint8_t *m, size_t mlen,
			  uint8_t *sig, size_t sigcap, size_t *siglen, creto_err *e)
{
	*siglen = 0;
	int rc = seed_alg(alg, e);
	if (rc != CRETO_OK)
		return rc;
	size_t want = creto_alg_sig_len(alg);
	if (sigcap < want)
		return creto_err_set(e, CRETO_EOP, "signature buffer too small");
	uint8_t full[CRETO_MLDSA_PK_MAX], rnd[CRETO_MLDSA_RNDBYTES], *sk = NULL;
	rc = derive(alg, seed, full, &sk, e);
	if (rc != CRETO_OK)
		goto out;
	if (pk != NULL && (pklen != creto_alg_pub_len(alg) || CRYPTO_memcmp(full, pk, pklen) != 0)) {
		rc = creto_err_set(e, CRETO_EREJECT, "ML-DSA seed does not give the expected public key");
		goto out;
	}
	if (RAND_priv_bytes(rnd, sizeof(rnd)) != 1) {
		rc = creto_err_openssl(e, "ML-DSA signing randomness");
		goto out;
	}
	if (creto_mldsa_sign_internal(creto_alg_mldsa_ps(alg), sk, m, mlen, rnd, sig) != 0) {
		OPENSSL_cleanse(sig, want);
		rc = creto_err_set(e, CRETO_EOP, "ML-DSA signing failed");
		goto out;
	}
	*siglen = want;
out:
	OPENSSL_cleanse(rnd, sizeof(rnd));
	seed_sk_free(sk);
	return rc;
}
