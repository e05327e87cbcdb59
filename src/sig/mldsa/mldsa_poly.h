/*
 * mldsa_poly.h - internal to src/sig/mldsa: arithmetic in R_q = Z_q[X]/(X^256+1)
 * for ML-DSA (FIPS 204): NTT, reductions, rounding, hints, bit packing and
 * the rejection samplers that turn XOF output into polynomials.
 *
 * Coefficients are int32_t.  "Montgomery" means multiplied by 2^32 mod q.
 * Nothing here allocates or fails except the samplers, which report how many
 * coefficients they could fill from the bytes given.
 */
#ifndef CRETO_MLDSA_POLY_H
#define CRETO_MLDSA_POLY_H

#include <stddef.h>
#include <stdint.h>

#define MLDSA_N 256
#define MLDSA_Q 8380417
#define MLDSA_D 13

typedef struct mldsa_poly {
	int32_t c[MLDSA_N];
} mldsa_poly;

/* NTT back end contract: for |a|, |b| <= q,
 *   invntt(pointwise(ntt(a), ntt(b))) = a * b in R_q,
 * and pointwise_acc sums such products.  ntt output is bounded by 9q,
 * pointwise and invntt outputs by q (invntt input must be <= q). */
void mldsa_ntt(mldsa_poly *a);
/* "avx2", "portable" (double precision) or "integer": the back end in use. */
const char *mldsa_backend(void);
void mldsa_invntt(mldsa_poly *a);
void mldsa_poly_pointwise(mldsa_poly *c, const mldsa_poly *a, const mldsa_poly *b);
/* c = sum_{i<n} a[i] * b[i] pointwise, n <= 7, a[i] < q, b[i] from ntt(). */
void mldsa_poly_pointwise_acc(mldsa_poly *c, const mldsa_poly *a, const mldsa_poly *b, unsigned n);
/* r = c * t in Z[X]/(X^256+1) without reduction, for c with coefficients
 * in {-1, 0, 1} and public (branches on its nonzero positions); needs
 * (number of nonzeros) * max|t| < 2^31. */
void mldsa_poly_mul_ternary(mldsa_poly *r, const mldsa_poly *c, const mldsa_poly *t);
/* A challenge c (coefficients in {-1, 0, 1}, at most 60 nonzero; public)
 * prepared for mldsa_poly_mul_ternary_t1: its nonzero positions and signs
 * and c * (1 + X + ... + X^255). */
typedef struct mldsa_ternary {
	uint8_t pos[MLDSA_N], neg[MLDSA_N];
	unsigned w;
	int32_t cj[MLDSA_N];
} mldsa_ternary;
void mldsa_ternary_prepare(mldsa_ternary *tc, const mldsa_poly *c);
/* r = c * t1 in Z[X]/(X^256+1), exact (|r| < 2^16), for t1 in [0, 1023]. */
void mldsa_poly_mul_ternary_t1(mldsa_poly *r, const mldsa_ternary *tc, const mldsa_poly *t1);
/* Coefficients to (-6283009, 6283009) / to [0, q) from a reduced value. */
void mldsa_poly_reduce(mldsa_poly *a);
void mldsa_poly_caddq(mldsa_poly *a);
void mldsa_poly_add(mldsa_poly *c, const mldsa_poly *a, const mldsa_poly *b);
void mldsa_poly_sub(mldsa_poly *c, const mldsa_poly *a, const mldsa_poly *b);
void mldsa_poly_shiftl(mldsa_poly *a);
/* 1 if some |coefficient| >= bound (a reduced); constant time in a. */
int mldsa_poly_chknorm(const mldsa_poly *a, int32_t bound);

/* Power2Round (FIPS 204 Alg. 35) on standard representatives. */
void mldsa_poly_power2round(mldsa_poly *restrict a1, mldsa_poly *restrict a0,
			    const mldsa_poly *restrict a);
/* Decompose (Alg. 36) with gamma2 = (q-1)/88 or (q-1)/32; a in [0, q). */
void mldsa_poly_decompose(mldsa_poly *restrict a1, mldsa_poly *restrict a0,
			  const mldsa_poly *restrict a, int32_t gamma2);
/* Hint h = MakeHint from the low part a0 (= w0 - cs2 + ct0) and high part a1;
 * returns the number of ones. */
unsigned mldsa_poly_make_hint(mldsa_poly *restrict h, const mldsa_poly *restrict a0,
			      const mldsa_poly *restrict a1, int32_t gamma2);
/* UseHint (Alg. 40): b = corrected HighBits(a) with hint h (b, a, h distinct). */
void mldsa_poly_use_hint(mldsa_poly *restrict b, const mldsa_poly *restrict a,
			 const mldsa_poly *restrict h, int32_t gamma2);

/* Rejection samplers.  Each fills a->c[done..] from buf and returns the new
 * count of filled coefficients (<= MLDSA_N). */
unsigned mldsa_rej_uniform(int32_t *a, unsigned done, const uint8_t *buf, size_t buflen);
unsigned mldsa_rej_eta(int32_t *a, unsigned done, const uint8_t *buf, size_t buflen, int eta);
/* SampleInBall (Alg. 29) from the SHAKE256 stream of c~ in buf; 0, or -1 if
 * buf ran out (the caller squeezes more and calls again).  With ct != 0 the
 * writes use masks instead of secret-dependent indices (for signing, where
 * rejected challenges must stay secret); verification passes 0. */
int mldsa_sample_in_ball(mldsa_poly *c, const uint8_t *buf, size_t buflen, unsigned tau, int ct);

/* Bit packing (FIPS 204 §7.1-7.2).  Sizes in bytes: t1 320, t0 416,
 * eta 96 (eta 2) or 128 (eta 4), z 576 (gamma1 2^17) or 640 (2^19),
 * w1 192 (gamma2 (q-1)/88) or 128 ((q-1)/32). */
void mldsa_pack_t1(uint8_t *r, const mldsa_poly *a);
void mldsa_unpack_t1(mldsa_poly *a, const uint8_t *r);
void mldsa_pack_t0(uint8_t *r, const mldsa_poly *a);
void mldsa_unpack_t0(mldsa_poly *a, const uint8_t *r);
void mldsa_pack_eta(uint8_t *r, const mldsa_poly *a, int eta);
void mldsa_unpack_eta(mldsa_poly *a, const uint8_t *r, int eta);
void mldsa_pack_z(uint8_t *r, const mldsa_poly *a, int32_t gamma1);
void mldsa_unpack_z(mldsa_poly *a, const uint8_t *r, int32_t gamma1);
void mldsa_pack_w1(uint8_t *r, const mldsa_poly *a, int32_t gamma2);

#endif
