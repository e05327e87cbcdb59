/*
 * mldsa.h - ML-DSA (FIPS 204) in portable C11: ML-DSA-44, -65 and -87.
 *
 * Byte encodings are exactly FIPS 204's.  Functions return 0 on success and
 * -1 on failure (bad parameter set or lengths; for verify: invalid).
 * Secrets (sk, seed, rnd, intermediate values) are wiped before return.
 * Signing is hedged by default: pass 32 fresh random bytes as rnd; pass 32
 * zero bytes for the deterministic variant (FIPS 204 §3.4).
 */
#ifndef CRETO_MLDSA_H
#define CRETO_MLDSA_H

#include <stddef.h>
#include <stdint.h>

typedef enum creto_mldsa_ps {
	CRETO_MLDSA_44 = 44,
	CRETO_MLDSA_65 = 65,
	CRETO_MLDSA_87 = 87,
} creto_mldsa_ps;

#define CRETO_MLDSA_SEEDBYTES 32
#define CRETO_MLDSA_RNDBYTES 32
#define CRETO_MLDSA_MUBYTES 64
#define CRETO_MLDSA_CTX_MAX 255
#define CRETO_MLDSA_PK_MAX 2592
#define CRETO_MLDSA_SK_MAX 4896
#define CRETO_MLDSA_SIG_MAX 4627

/* pk, sk and signature sizes of ps; 0 for an unknown ps. */
size_t creto_mldsa_pk_bytes(creto_mldsa_ps ps);
size_t creto_mldsa_sk_bytes(creto_mldsa_ps ps);
size_t creto_mldsa_sig_bytes(creto_mldsa_ps ps);

/* ML-DSA.KeyGen_internal (Algorithm 6) from a 32-byte seed xi. */
int creto_mldsa_keygen(creto_mldsa_ps ps, const uint8_t seed[CRETO_MLDSA_SEEDBYTES], uint8_t *pk,
		       uint8_t *sk);

/* ML-DSA.Sign_internal (Algorithm 7) over the formatted message M'. */
int creto_mldsa_sign_internal(creto_mldsa_ps ps, const uint8_t *sk, const uint8_t *mprime,
			      size_t mlen, const uint8_t rnd[CRETO_MLDSA_RNDBYTES], uint8_t *sig);
/* The same with mu given directly (ACVP "externalMu"). */
int creto_mldsa_sign_mu(creto_mldsa_ps ps, const uint8_t *sk, const uint8_t mu[CRETO_MLDSA_MUBYTES],
			const uint8_t rnd[CRETO_MLDSA_RNDBYTES], uint8_t *sig);
/* ML-DSA.Verify_internal (Algorithm 8) over M'; 0 valid, -1 invalid. */
int creto_mldsa_verify_internal(creto_mldsa_ps ps, const uint8_t *pk, const uint8_t *mprime,
				size_t mlen, const uint8_t *sig, size_t siglen);
int creto_mldsa_verify_mu(creto_mldsa_ps ps, const uint8_t *pk, const uint8_t mu[CRETO_MLDSA_MUBYTES],
			  const uint8_t *sig, size_t siglen);

/* External "pure" ML-DSA.Sign / ML-DSA.Verify (Algorithms 2 and 3) with a
 * context string of at most 255 bytes: M' = 0 || |ctx| || ctx || M. */
int creto_mldsa_sign(creto_mldsa_ps ps, const uint8_t *sk, const uint8_t *ctx, size_t ctxlen,
		     const uint8_t *msg, size_t msglen, const uint8_t rnd[CRETO_MLDSA_RNDBYTES],
		     uint8_t *sig);
int creto_mldsa_verify(creto_mldsa_ps ps, const uint8_t *pk, const uint8_t *ctx, size_t ctxlen,
		       const uint8_t *msg, size_t msglen, const uint8_t *sig, size_t siglen);

/* HashML-DSA (Algorithms 4 and 5) for ACVP preHash groups: ph names the
 * hash as ACVP does ("SHA2-256", "SHA3-512", "SHAKE-128", ...); the
 * message is hashed here. -1 for an unknown ph. */
int creto_mldsa_sign_prehash(creto_mldsa_ps ps, const uint8_t *sk, const uint8_t *ctx, size_t ctxlen,
			     const char *ph, const uint8_t *msg, size_t msglen,
			     const uint8_t rnd[CRETO_MLDSA_RNDBYTES], uint8_t *sig);
int creto_mldsa_verify_prehash(creto_mldsa_ps ps, const uint8_t *pk, const uint8_t *ctx,
			       size_t ctxlen, const char *ph, const uint8_t *msg, size_t msglen,
			       const uint8_t *sig, size_t siglen);

/* The arithmetic back end in use: "avx2" (x86-64 with AVX2 and FMA, chosen
 * at run time unless the environment sets CRETO_MLDSA_NO_AVX2=1),
 * "portable" (C11 double-precision NTT) or "integer" (32-bit Montgomery
 * NTT, where doubles are not IEEE binary64).  All give identical results. */
const char *creto_mldsa_backend(void);

/* Each thread keeps its last expanded matrix A and its last public key's
 * derived values (public data only, about 70 KB), so that repeated
 * operations with one key skip the expansion.  This frees the calling
 * thread's cache (it is also freed when the thread exits). */
void creto_mldsa_cache_clear(void);

/* Public key from secret key (for key files that store only sk). 0 / -1. */
int creto_mldsa_pk_from_sk(creto_mldsa_ps ps, const uint8_t *sk, uint8_t *pk);

#endif
