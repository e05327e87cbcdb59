/*
 * mldsa_devstub.c - TEMPORARY, NOT ML-DSA.  A stand-in with ML-DSA's sizes
 * so the sig glue can be built and tested before src/sig/mldsa/ lands.  It
 * is forgeable by anyone holding the public key.  Deleted when the real
 * implementation is merged from main.
 */
#include <openssl/evp.h>
#include <string.h>

#include "sig/mldsa/mldsa.h"

size_t creto_mldsa_pk_bytes(creto_mldsa_ps ps)
{
	return ps == CRETO_MLDSA_44 ? 1312 : ps == CRETO_MLDSA_65 ? 1952 : ps == CRETO_MLDSA_87 ? 2592 : 0;
}
size_t creto_mldsa_sk_bytes(creto_mldsa_ps ps)
{
	return ps == CRETO_MLDSA_44 ? 2560 : ps == CRETO_MLDSA_65 ? 4032 : ps == CRETO_MLDSA_87 ? 4896 : 0;
}
size_t creto_mldsa_sig_bytes(creto_mldsa_ps ps)
{
	return ps == CRETO_MLDSA_44 ? 2420 : ps == CRETO_MLDSA_65 ? 3309 : ps == CRETO_MLDSA_87 ? 4627 : 0;
}

static void xof(const uint8_t *a, size_t al, const uint8_t *b, size_t bl, uint8_t *out, size_t n)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_DigestInit_ex(c, EVP_shake256(), NULL);
	EVP_DigestUpdate(c, a, al);
	EVP_DigestUpdate(c, b, bl);
	EVP_DigestFinalXOF(c, out, n);
	EVP_MD_CTX_free(c);
}

int creto_mldsa_keygen(creto_mldsa_ps ps, const uint8_t seed[CRETO_MLDSA_SEEDBYTES], uint8_t *pk,
		       uint8_t *sk)
{
	size_t pl = creto_mldsa_pk_bytes(ps);
	if (pl == 0)
		return -1;
	xof((const uint8_t *)"pk", 2, seed, 32, pk, pl);
	memset(sk, 0, creto_mldsa_sk_bytes(ps));
	memcpy(sk, pk, pl);
	return 0;
}

int creto_mldsa_sign_internal(creto_mldsa_ps ps, const uint8_t *sk, const uint8_t *mprime,
			      size_t mlen, const uint8_t rnd[CRETO_MLDSA_RNDBYTES], uint8_t *sig)
{
	(void)rnd;
	xof(sk, creto_mldsa_pk_bytes(ps), mprime, mlen, sig, creto_mldsa_sig_bytes(ps));
	return 0;
}

int creto_mldsa_verify_internal(creto_mldsa_ps ps, const uint8_t *pk, const uint8_t *mprime,
				size_t mlen, const uint8_t *sig, size_t siglen)
{
	uint8_t want[CRETO_MLDSA_SIG_MAX];
	if (siglen != creto_mldsa_sig_bytes(ps))
		return -1;
	xof(pk, creto_mldsa_pk_bytes(ps), mprime, mlen, want, siglen);
	return memcmp(want, sig, siglen) == 0 ? 0 : -1;
}

int creto_mldsa_verify(creto_mldsa_ps ps, const uint8_t *pk, const uint8_t *ctx, size_t ctxlen,
		       const uint8_t *msg, size_t msglen, const uint8_t *sig, size_t siglen)
{
	(void)ps; (void)pk; (void)ctx; (void)ctxlen; (void)msg; (void)msglen; (void)sig; (void)siglen;
	return -1;
}
