/*
 * test_mldsa.c - ML-DSA behaviour beyond the ACVP vectors: round trips,
 * deterministic vs hedged signing, the interfaces agreeing with each other
 * (pure = internal over M', externalMu = internal), and rejection of every
 * sampled single-bit flip of signature, message and public key, of
 * truncated / over-long signatures, wrong contexts, contexts over 255
 * bytes, malformed hints, corrupted secret keys and bad arguments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "sig/mldsa/mldsa.h"
#include "sig/mldsa/mldsa_poly.h"

#define N_COEF MLDSA_N

static const creto_mldsa_ps all_ps[3] = {CRETO_MLDSA_44, CRETO_MLDSA_65, CRETO_MLDSA_87};

typedef struct keypair {
	creto_mldsa_ps ps;
	size_t pklen, sklen, siglen;
	uint8_t pk[CRETO_MLDSA_PK_MAX], sk[CRETO_MLDSA_SK_MAX];
} keypair;

static void make_key(keypair *kp, creto_mldsa_ps ps, uint8_t seedbyte)
{
	uint8_t seed[32];
	memset(seed, seedbyte, sizeof(seed));
	kp->ps = ps;
	kp->pklen = creto_mldsa_pk_bytes(ps);
	kp->sklen = creto_mldsa_sk_bytes(ps);
	kp->siglen = creto_mldsa_sig_bytes(ps);
	assert_int_equal(creto_mldsa_keygen(ps, seed, kp->pk, kp->sk), 0);
}

static const uint8_t msg[32] = "creto-airgap ML-DSA test message";
static const uint8_t ctx[] = "ctx";
static const uint8_t rnd0[32] = {0};
static const uint8_t rnd1[32] = {1, 2, 3};

static void test_sizes(void **state)
{
	(void)state;
	assert_int_equal(creto_mldsa_pk_bytes(CRETO_MLDSA_44), 1312);
	assert_int_equal(creto_mldsa_sk_bytes(CRETO_MLDSA_44), 2560);
	assert_int_equal(creto_mldsa_sig_bytes(CRETO_MLDSA_44), 2420);
	assert_int_equal(creto_mldsa_pk_bytes(CRETO_MLDSA_65), 1952);
	assert_int_equal(creto_mldsa_sk_bytes(CRETO_MLDSA_65), 4032);
	assert_int_equal(creto_mldsa_sig_bytes(CRETO_MLDSA_65), 3309);
	assert_int_equal(creto_mldsa_pk_bytes(CRETO_MLDSA_87), CRETO_MLDSA_PK_MAX);
	assert_int_equal(creto_mldsa_sk_bytes(CRETO_MLDSA_87), CRETO_MLDSA_SK_MAX);
	assert_int_equal(creto_mldsa_sig_bytes(CRETO_MLDSA_87), CRETO_MLDSA_SIG_MAX);
	assert_int_equal(creto_mldsa_pk_bytes((creto_mldsa_ps)42), 0);
	assert_int_equal(creto_mldsa_sk_bytes((creto_mldsa_ps)42), 0);
	assert_int_equal(creto_mldsa_sig_bytes((creto_mldsa_ps)42), 0);
}

static void test_roundtrip(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		keypair kp;
		make_key(&kp, all_ps[i], 7);
		uint8_t pk2[CRETO_MLDSA_PK_MAX];
		assert_int_equal(creto_mldsa_pk_from_sk(kp.ps, kp.sk, pk2), 0);
		assert_memory_equal(pk2, kp.pk, kp.pklen);
		uint8_t s1[CRETO_MLDSA_SIG_MAX], s2[CRETO_MLDSA_SIG_MAX], s3[CRETO_MLDSA_SIG_MAX];
		/* deterministic: the same signature twice; hedged: another one */
		assert_int_equal(creto_mldsa_sign(kp.ps, kp.sk, ctx, 3, msg, 32, rnd0, s1), 0);
		assert_int_equal(creto_mldsa_sign(kp.ps, kp.sk, ctx, 3, msg, 32, rnd0, s2), 0);
		assert_memory_equal(s1, s2, kp.siglen);
		assert_int_equal(creto_mldsa_sign(kp.ps, kp.sk, ctx, 3, msg, 32, rnd1, s3), 0);
		assert_memory_not_equal(s1, s3, kp.siglen);
		assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, msg, 32, s1, kp.siglen), 0);
		assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, msg, 32, s3, kp.siglen), 0);
		/* empty message, NULL context of length 0, maximal context */
		uint8_t big[255];
		memset(big, 0xa5, sizeof(big));
		assert_int_equal(creto_mldsa_sign(kp.ps, kp.sk, NULL, 0, NULL, 0, rnd1, s1), 0);
		assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, NULL, 0, NULL, 0, s1, kp.siglen), 0);
		assert_int_equal(creto_mldsa_sign(kp.ps, kp.sk, big, 255, msg, 32, rnd1, s1), 0);
		assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, big, 255, msg, 32, s1, kp.siglen), 0);
		/* keygen is deterministic in the seed */
		keypair kq;
		make_key(&kq, all_ps[i], 7);
		assert_memory_equal(kq.pk, kp.pk, kp.pklen);
		assert_memory_equal(kq.sk, kp.sk, kp.sklen);
	}
}

/* Pure ML-DSA is Sign_internal over M' = 0 || |ctx| || ctx || M, and
 * externalMu is Sign_internal given mu = SHAKE256(tr || M', 64). */
static void test_interfaces_agree(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		keypair kp;
		make_key(&kp, all_ps[i], 9);
		uint8_t mp[2 + 3 + 32] = {0, 3, 'c', 't', 'x'};
		memcpy(mp + 5, msg, 32);
		uint8_t a[CRETO_MLDSA_SIG_MAX], b[CRETO_MLDSA_SIG_MAX], c[CRETO_MLDSA_SIG_MAX];
		assert_int_equal(creto_mldsa_sign(kp.ps, kp.sk, ctx, 3, msg, 32, rnd1, a), 0);
		assert_int_equal(creto_mldsa_sign_internal(kp.ps, kp.sk, mp, sizeof(mp), rnd1, b), 0);
		assert_memory_equal(a, b, kp.siglen);
		uint8_t mu[64];
		EVP_MD_CTX *h = EVP_MD_CTX_new();
		assert_non_null(h);
		assert_int_equal(EVP_DigestInit_ex(h, EVP_shake256(), NULL), 1);
		assert_int_equal(EVP_DigestUpdate(h, kp.sk + 64, 64), 1); /* tr */
		assert_int_equal(EVP_DigestUpdate(h, mp, sizeof(mp)), 1);
		assert_int_equal(EVP_DigestFinalXOF(h, mu, 64), 1);
		EVP_MD_CTX_free(h);
		assert_int_equal(creto_mldsa_sign_mu(kp.ps, kp.sk, mu, rnd1, c), 0);
		assert_memory_equal(a, c, kp.siglen);
		assert_int_equal(creto_mldsa_verify_mu(kp.ps, kp.pk, mu, a, kp.siglen), 0);
		assert_int_equal(creto_mldsa_verify_internal(kp.ps, kp.pk, mp, sizeof(mp), a, kp.siglen), 0);
		/* the interfaces are domain-separated from each other */
		assert_int_equal(creto_mldsa_verify_internal(kp.ps, kp.pk, msg, 32, a, kp.siglen), -1);
		assert_int_equal(creto_mldsa_verify_prehash(kp.ps, kp.pk, ctx, 3, "SHA2-256", msg, 32, a,
							    kp.siglen),
				 -1);
		assert_int_equal(creto_mldsa_sign_prehash(kp.ps, kp.sk, ctx, 3, "SHA2-512", msg, 32, rnd1, b),
				 0);
		assert_int_equal(creto_mldsa_verify_prehash(kp.ps, kp.pk, ctx, 3, "SHA2-512", msg, 32, b,
							    kp.siglen),
				 0);
		assert_int_equal(creto_mldsa_verify_prehash(kp.ps, kp.pk, ctx, 3, "SHA3-512", msg, 32, b,
							    kp.siglen),
				 -1);
		assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, msg, 32, b, kp.siglen), -1);
	}
}

/* Flip bit `bit` of buf. */
static void flip(uint8_t *buf, size_t bit)
{
	buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
}

/* The sampled bits: every bit of the first and last 64 bytes, and every
 * 97th bit in between. */
static int sampled(size_t bit, size_t len)
{
	return bit < 512 || bit >= 8 * len - 512 || bit % 97 == 0;
}

static void test_sig_bitflips(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		keypair kp;
		make_key(&kp, all_ps[i], 11);
		uint8_t sig[CRETO_MLDSA_SIG_MAX];
		assert_int_equal(creto_mldsa_sign(kp.ps, kp.sk, ctx, 3, msg, 32, rnd1, sig), 0);
		size_t tried = 0;
		for (size_t bit = 0; bit < 8 * kp.siglen; bit++) {
			if (!sampled(bit, kp.siglen))
				continue;
			flip(sig, bit);
			if (creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, msg, 32, sig, kp.siglen) != -1)
				fail_msg("ML-DSA-%d: signature with bit %zu flipped verified", (int)kp.ps, bit);
			flip(sig, bit);
			tried++;
		}
		assert_true(tried > 1024 + 8 * kp.siglen / 97 - 20);
		assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, msg, 32, sig, kp.siglen), 0);
		printf("ML-DSA-%d: %zu signature bit flips rejected\n", (int)kp.ps, tried);
	}
}

static void test_msg_pk_bitflips(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		keypair kp;
		make_key(&kp, all_ps[i], 13);
		uint8_t sig[CRETO_MLDSA_SIG_MAX], m[32];
		memcpy(m, msg, 32);
		assert_int_equal(creto_mldsa_sign(kp.ps, kp.sk, ctx, 3, m, 32, rnd1, sig), 0);
		for (size_t bit = 0; bit < 8 * 32; bit++) {
			flip(m, bit);
			assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, m, 32, sig, kp.siglen), -1);
			flip(m, bit);
		}
		/* pk: bits of rho (A re-expanded: the first byte, every 7th bit)
		 * and of t1 (A from the cache, tr and t1 recomputed: every 97th
		 * bit and the last 8 bytes) */
		size_t tried = 0;
		for (size_t bit = 0; bit < 8 * kp.pklen; bit++) {
			if (!(bit < 8 || (bit < 256 && bit % 7 == 0) || bit % 97 == 0 ||
			      bit >= 8 * kp.pklen - 64))
				continue;
			flip(kp.pk, bit);
			if (creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, m, 32, sig, kp.siglen) != -1)
				fail_msg("ML-DSA-%d: public key with bit %zu flipped verified", (int)kp.ps, bit);
			flip(kp.pk, bit);
			tried++;
		}
		assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, m, 32, sig, kp.siglen), 0);
		printf("ML-DSA-%d: 256 message and %zu public-key bit flips rejected\n", (int)kp.ps, tried);
	}
}

static void test_lengths_and_context(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		keypair kp;
		make_key(&kp, all_ps[i], 15);
		uint8_t sig[CRETO_MLDSA_SIG_MAX + 1] = {0};
		assert_int_equal(creto_mldsa_sign(kp.ps, kp.sk, ctx, 3, msg, 32, rnd1, sig), 0);
		/* truncated, over-long (a trailing byte), empty */
		assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, msg, 32, sig, kp.siglen - 1), -1);
		assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, msg, 32, sig, kp.siglen + 1), -1);
		assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, msg, 32, sig, 0), -1);
		/* wrong context: other bytes, prefix, none */
		assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, (const uint8_t *)"cty", 3, msg, 32, sig,
						    kp.siglen),
				 -1);
		assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, ctx, 2, msg, 32, sig, kp.siglen), -1);
		assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, NULL, 0, msg, 32, sig, kp.siglen), -1);
		/* message length: a prefix of the message, one byte more */
		assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, msg, 31, sig, kp.siglen), -1);
		/* contexts over 255 bytes are refused, and sign leaves no signature */
		uint8_t big[256];
		memset(big, 1, sizeof(big));
		uint8_t s2[CRETO_MLDSA_SIG_MAX];
		memset(s2, 0xee, sizeof(s2));
		assert_int_equal(creto_mldsa_sign(kp.ps, kp.sk, big, 256, msg, 32, rnd1, s2), -1);
		for (size_t j = 0; j < kp.siglen; j++)
			assert_int_equal(s2[j], 0);
		assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, big, 256, msg, 32, sig, kp.siglen), -1);
		assert_int_equal(creto_mldsa_sign_prehash(kp.ps, kp.sk, big, 256, "SHA2-256", msg, 32, rnd1, s2),
				 -1);
		assert_int_equal(creto_mldsa_verify_prehash(kp.ps, kp.pk, big, 256, "SHA2-256", msg, 32, sig,
							    kp.siglen),
				 -1);
		/* a signature of one parameter set offered to another's key */
		keypair other;
		make_key(&other, all_ps[(i + 1) % 3], 15);
		assert_int_equal(creto_mldsa_verify(other.ps, other.pk, ctx, 3, msg, 32, sig, kp.siglen), -1);
	}
}

static void test_malformed_hints(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		keypair kp;
		make_key(&kp, all_ps[i], 17);
		uint8_t sig[CRETO_MLDSA_SIG_MAX], bad[CRETO_MLDSA_SIG_MAX];
		assert_int_equal(creto_mldsa_sign(kp.ps, kp.sk, ctx, 3, msg, 32, rnd1, sig), 0);
		size_t k = kp.ps == CRETO_MLDSA_44 ? 4 : kp.ps == CRETO_MLDSA_65 ? 6 : 8;
		size_t omega = kp.ps == CRETO_MLDSA_44 ? 80 : kp.ps == CRETO_MLDSA_65 ? 55 : 75;
		uint8_t *hint = sig + kp.siglen - omega - k;
		size_t total = hint[omega + k - 1];
		/* a count above omega */
		memcpy(bad, sig, kp.siglen);
		bad[kp.siglen - 1] = (uint8_t)(omega + 1);
		assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, msg, 32, bad, kp.siglen), -1);
		/* decreasing counts */
		memcpy(bad, sig, kp.siglen);
		bad[kp.siglen - k] = (uint8_t)(total + 1);
		if (hint[omega + 1] <= total)
			assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, msg, 32, bad, kp.siglen), -1);
		/* non-zero padding after the last index */
		if (total < omega) {
			memcpy(bad, sig, kp.siglen);
			bad[kp.siglen - k - 1] = 1;
			assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, msg, 32, bad, kp.siglen), -1);
		}
		/* indices not strictly increasing within a polynomial */
		size_t first = 0;
		for (size_t j = 0; j < k; j++) {
			size_t end = hint[omega + j];
			if (end - first >= 2) {
				memcpy(bad, sig, kp.siglen);
				bad[kp.siglen - omega - k + first + 1] = hint[first];
				assert_int_equal(
					creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, msg, 32, bad, kp.siglen), -1);
				break;
			}
			first = end;
		}
	}
}

static void test_bad_args(void **state)
{
	(void)state;
	keypair kp;
	make_key(&kp, CRETO_MLDSA_44, 19);
	uint8_t sig[CRETO_MLDSA_SIG_MAX], pk[CRETO_MLDSA_PK_MAX], sk[CRETO_MLDSA_SK_MAX];
	uint8_t seed[32] = {0}, mu[64] = {0};
	creto_mldsa_ps bad = (creto_mldsa_ps)42;
	assert_int_equal(creto_mldsa_keygen(bad, seed, pk, sk), -1);
	assert_int_equal(creto_mldsa_keygen(CRETO_MLDSA_44, NULL, pk, sk), -1);
	assert_int_equal(creto_mldsa_sign(bad, kp.sk, NULL, 0, msg, 32, rnd1, sig), -1);
	assert_int_equal(creto_mldsa_sign(CRETO_MLDSA_44, NULL, NULL, 0, msg, 32, rnd1, sig), -1);
	assert_int_equal(creto_mldsa_sign(CRETO_MLDSA_44, kp.sk, NULL, 0, NULL, 5, rnd1, sig), -1);
	assert_int_equal(creto_mldsa_sign(CRETO_MLDSA_44, kp.sk, NULL, 0, msg, 32, NULL, sig), -1);
	assert_int_equal(creto_mldsa_sign(CRETO_MLDSA_44, kp.sk, NULL, 3, msg, 32, rnd1, sig), -1);
	assert_int_equal(creto_mldsa_sign_mu(CRETO_MLDSA_44, kp.sk, NULL, rnd1, sig), -1);
	assert_int_equal(creto_mldsa_verify_mu(CRETO_MLDSA_44, kp.pk, NULL, sig, kp.siglen), -1);
	assert_int_equal(creto_mldsa_verify_mu(bad, kp.pk, mu, sig, kp.siglen), -1);
	assert_int_equal(creto_mldsa_sign(CRETO_MLDSA_44, kp.sk, NULL, 0, msg, 32, rnd1, sig), 0);
	assert_int_equal(creto_mldsa_verify(bad, kp.pk, NULL, 0, msg, 32, sig, kp.siglen), -1);
	assert_int_equal(creto_mldsa_verify(CRETO_MLDSA_44, NULL, NULL, 0, msg, 32, sig, kp.siglen), -1);
	assert_int_equal(creto_mldsa_verify(CRETO_MLDSA_44, kp.pk, NULL, 0, msg, 32, NULL, kp.siglen), -1);
	assert_int_equal(creto_mldsa_sign_prehash(CRETO_MLDSA_44, kp.sk, NULL, 0, "MD5", msg, 32, rnd1, sig),
			 -1);
	assert_int_equal(creto_mldsa_sign_prehash(CRETO_MLDSA_44, kp.sk, NULL, 0, NULL, msg, 32, rnd1, sig),
			 -1);
	assert_int_equal(creto_mldsa_verify_prehash(CRETO_MLDSA_44, kp.pk, NULL, 0, "sha256", msg, 32, sig,
						    kp.siglen),
			 -1);
	assert_int_equal(creto_mldsa_pk_from_sk(bad, kp.sk, pk), -1);
}

/* pk_from_sk checks that t0 and tr are the ones s1, s2 and rho give. */
static void test_corrupt_sk(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		keypair kp;
		make_key(&kp, all_ps[i], 21);
		uint8_t pk[CRETO_MLDSA_PK_MAX];
		size_t offs[] = {0, 64, 127, 128, 200, kp.sklen - 1}; /* rho, tr, s1, t0 */
		for (size_t j = 0; j < sizeof(offs) / sizeof(offs[0]); j++) {
			kp.sk[offs[j]] ^= 0x01;
			assert_int_equal(creto_mldsa_pk_from_sk(kp.ps, kp.sk, pk), -1);
			kp.sk[offs[j]] ^= 0x01;
		}
		/* first s1 coefficient out of [-eta, eta]: encoding 7 (eta 2) or 15 (eta 4) */
		kp.sk[128] |= 0x0f;
		assert_int_equal(creto_mldsa_pk_from_sk(kp.ps, kp.sk, pk), -1);
	}
}

/* The direct product c t1 (16-bit sums) equals the NTT product modulo q,
 * also at the extremes of its bound: t1 all 0 or all 1023 with 60 equal
 * signs (|c (t1 - 512)| = 30720 near 2^15), and random cases. */
static void test_ternary_product(void **state)
{
	(void)state;
	static mldsa_poly c, t1, r, ch, th, want;
	mldsa_ternary tc;
	uint32_t x = 99;
	for (int trial = 0; trial < 64; trial++) {
		unsigned tau = trial < 8 ? 60 : (unsigned[]){39, 49, 60}[trial % 3];
		memset(&c, 0, sizeof(c));
		for (unsigned k = 0; k < N_COEF; k++) {
			x = x * 1103515245u + 12345u;
			t1.c[k] = trial < 8 ? ((trial & 1) ? 1023 : 0) : (int32_t)((x >> 8) & 1023);
		}
		for (unsigned n = 0; n < tau;) {
			x = x * 1103515245u + 12345u;
			unsigned p = (x >> 16) & 255;
			if (c.c[p] != 0)
				continue;
			c.c[p] = trial < 8 ? ((trial & 2) ? 1 : -1) : ((x >> 27) & 1) ? 1 : -1;
			n++;
		}
		mldsa_ternary_prepare(&tc, &c);
		mldsa_poly_mul_ternary_t1(&r, &tc, &t1);
		ch = c;
		th = t1;
		mldsa_ntt(&ch);
		mldsa_ntt(&th);
		mldsa_poly_pointwise(&want, &ch, &th);
		mldsa_invntt(&want);
		for (unsigned k = 0; k < N_COEF; k++) {
			assert_true(r.c[k] > -65536 && r.c[k] < 65536);
			if (((int64_t)r.c[k] - want.c[k]) % MLDSA_Q != 0)
				fail_msg("trial %d coefficient %u: %d, NTT gives %d", trial, k, r.c[k],
					 want.c[k]);
		}
	}
}

/* Verification computes c t1 two ways: directly for a key not seen
 * before, through the cached NTT(t1 2^d) for the key of the last call.
 * Both accept the valid signature and reject each sampled bit flip. */
static void test_new_and_cached_key(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		keypair kp;
		make_key(&kp, all_ps[i], 29);
		uint8_t sig[CRETO_MLDSA_SIG_MAX];
		assert_int_equal(creto_mldsa_sign(kp.ps, kp.sk, ctx, 3, msg, 32, rnd1, sig), 0);
		size_t tried = 0;
		for (size_t bit = 0; bit < 8 * kp.siglen; bit += 37) {
			flip(sig, bit);
			creto_mldsa_cache_clear();
			if (creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, msg, 32, sig, kp.siglen) != -1 ||
			    creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, msg, 32, sig, kp.siglen) != -1)
				fail_msg("ML-DSA-%d: bit %zu flipped verified", (int)kp.ps, bit);
			flip(sig, bit);
			tried++;
		}
		for (int r = 0; r < 3; r++) { /* new, cached (transformed then), cached */
			if (r == 0)
				creto_mldsa_cache_clear();
			assert_int_equal(creto_mldsa_verify(kp.ps, kp.pk, ctx, 3, msg, 32, sig, kp.siglen), 0);
		}
		printf("ML-DSA-%d: %zu signature bit flips rejected with a new and a cached key\n",
		       (int)kp.ps, tried);
	}
}

/* Every signature verifies whatever the per-thread cache holds, and
 * threads do not share it. */
static void *verify_thread(void *arg)
{
	keypair *kp = arg;
	uint8_t sig[CRETO_MLDSA_SIG_MAX];
	uintptr_t bad = 0;
	for (int r = 0; r < 4; r++) {
		if (creto_mldsa_sign(kp->ps, kp->sk, NULL, 0, msg, 32, rnd1, sig) != 0 ||
		    creto_mldsa_verify(kp->ps, kp->pk, NULL, 0, msg, 32, sig, kp->siglen) != 0)
			bad++;
	}
	return (void *)bad;
}

static void test_cache(void **state)
{
	(void)state;
	static keypair a, b;
	make_key(&a, CRETO_MLDSA_65, 23);
	make_key(&b, CRETO_MLDSA_87, 24);
	uint8_t sa[CRETO_MLDSA_SIG_MAX], sb[CRETO_MLDSA_SIG_MAX];
	assert_int_equal(creto_mldsa_sign(a.ps, a.sk, NULL, 0, msg, 32, rnd1, sa), 0);
	assert_int_equal(creto_mldsa_sign(b.ps, b.sk, NULL, 0, msg, 32, rnd1, sb), 0);
	for (int r = 0; r < 3; r++) {
		assert_int_equal(creto_mldsa_verify(a.ps, a.pk, NULL, 0, msg, 32, sa, a.siglen), 0);
		assert_int_equal(creto_mldsa_verify(a.ps, a.pk, NULL, 0, msg, 32, sa, a.siglen), 0);
		assert_int_equal(creto_mldsa_verify(b.ps, b.pk, NULL, 0, msg, 32, sb, b.siglen), 0);
		assert_int_equal(creto_mldsa_verify(a.ps, b.pk, NULL, 0, msg, 32, sa, a.siglen), -1);
		creto_mldsa_cache_clear();
	}
	creto_mldsa_cache_clear();
	pthread_t t1, t2;
	void *r1, *r2;
	assert_int_equal(pthread_create(&t1, NULL, verify_thread, &a), 0);
	assert_int_equal(pthread_create(&t2, NULL, verify_thread, &b), 0);
	assert_int_equal(pthread_join(t1, &r1), 0);
	assert_int_equal(pthread_join(t2, &r2), 0);
	assert_null(r1);
	assert_null(r2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_interfaces_agree),
		cmocka_unit_test(test_sig_bitflips),
		cmocka_unit_test(test_msg_pk_bitflips),
		cmocka_unit_test(test_lengths_and_context),
		cmocka_unit_test(test_malformed_hints),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_corrupt_sk),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_ternary_product),
		cmocka_unit_test(test_new_and_cached_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
