/*
 * test_mldsa_keccak.c - the ML-DSA module's own Keccak-f[1600] / SHAKE
 * (src/sig/mldsa/mldsa_keccak.c) against OpenSSL's SHAKE128 and SHAKE256:
 * every input length 0..600 with varied output lengths, one-shot,
 * incremental (absorb and squeeze split at many points) and one to four
 * instances at once (different inputs per call), on the multi-way
 * implementation the CPU selects (AVX2, or with
 * test_mldsa_keccak_portable.c the baseline vector pair + scalar state
 * and its lane-complemented scalar round) and, via
 * test_mldsa_keccak_scalar.c, without vector extensions.  Plus the FIPS
 * 202 known answers for the empty input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <string.h>

#include "sig/mldsa/mldsa_keccak.h"

#ifndef KECCAK_EXPECT_X4
#define KECCAK_EXPECT_X4 NULL
#endif

#define MAXIN 600
#define MAXOUT 1100

static void ossl_shake(unsigned rate, const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	assert_non_null(c);
	assert_int_equal(EVP_DigestInit_ex(c, rate == MLDSA_SHAKE128_RATE ? EVP_shake128() : EVP_shake256(),
					   NULL),
			 1);
	assert_int_equal(EVP_DigestUpdate(c, in, inlen), 1);
	assert_int_equal(EVP_DigestFinalXOF(c, out, outlen), 1);
	EVP_MD_CTX_free(c);
}

static uint8_t g_in[4][MAXIN];

static void fill_inputs(void)
{
	uint32_t x = 0x12345678;
	for (unsigned j = 0; j < 4; j++)
		for (unsigned i = 0; i < MAXIN; i++) {
			x = x * 1103515245u + 12345u;
			g_in[j][i] = (uint8_t)(x >> 16);
		}
}

static const unsigned rates[2] = {MLDSA_SHAKE128_RATE, MLDSA_SHAKE256_RATE};

static void test_known_answers(void **state)
{
	(void)state;
	/* FIPS 202 examples: SHAKE128("") and SHAKE256(""), first 16 bytes. */
	static const uint8_t k128[16] = {0x7f, 0x9c, 0x2b, 0xa4, 0xe8, 0x8f, 0x82, 0x7d,
					 0x61, 0x60, 0x45, 0x50, 0x76, 0x05, 0x85, 0x3e};
	static const uint8_t k256[16] = {0x46, 0xb9, 0xdd, 0x2b, 0x0b, 0xa8, 0x8d, 0x13,
					 0x23, 0x3b, 0x3f, 0xeb, 0x74, 0x3e, 0xeb, 0x24};
	uint8_t out[16];
	mldsa_shake_oneshot(out, 16, MLDSA_SHAKE128_RATE, NULL, 0);
	assert_memory_equal(out, k128, 16);
	mldsa_shake_oneshot(out, 16, MLDSA_SHAKE256_RATE, NULL, 0);
	assert_memory_equal(out, k256, 16);
	/* Keccak-f[1600] of the zero state: first lane (XKCP test vector). */
	uint64_t s[25] = {0};
	mldsa_keccakf1600(s);
	assert_true(s[0] == 0xf1258f7940e1dde7ULL);
}

static void test_oneshot_and_incremental(void **state)
{
	(void)state;
	fill_inputs();
	static uint8_t want[MAXOUT], got[MAXOUT];
	unsigned checked = 0;
	for (unsigned r = 0; r < 2; r++) {
		for (size_t inlen = 0; inlen <= MAXIN; inlen++) {
			size_t outlen = (inlen * 37 + 1) % MAXOUT + 1;
			ossl_shake(rates[r], g_in[0], inlen, want, outlen);
			mldsa_shake_oneshot(got, outlen, rates[r], g_in[0], inlen);
			assert_memory_equal(got, want, outlen);
			/* absorb in three pieces, squeeze in pieces of varying size */
			mldsa_shake x;
			mldsa_shake_init(&x, rates[r]);
			size_t a = inlen / 3, b = inlen / 2 + 1;
			if (b > inlen)
				b = inlen;
			mldsa_shake_absorb(&x, g_in[0], a);
			mldsa_shake_absorb(&x, g_in[0] + a, b - a);
			mldsa_shake_absorb(&x, g_in[0] + b, inlen - b);
			memset(got, 0, sizeof(got));
			for (size_t off = 0, step = 1 + inlen % 13; off < outlen; step = step * 3 % 211 + 1) {
				size_t n = outlen - off < step ? outlen - off : step;
				mldsa_shake_squeeze(&x, got + off, n);
				off += n;
			}
			mldsa_shake_wipe(&x);
			assert_memory_equal(got, want, outlen);
			checked += 2;
		}
	}
	assert_int_equal(checked, 2 * 2 * (MAXIN + 1));
}

static void test_x4(void **state)
{
	(void)state;
	fill_inputs();
	if (KECCAK_EXPECT_X4 != NULL)
		assert_string_equal(mldsa_keccak_x4_impl(), KECCAK_EXPECT_X4);
	static uint8_t want[4][6 * MLDSA_SHAKE128_RATE], got[4][6 * MLDSA_SHAKE128_RATE];
	for (unsigned r = 0; r < 2; r++) {
		for (size_t inlen = 0; inlen <= MAXIN; inlen++) {
			size_t nblocks = 1 + inlen % 5, outlen = nblocks * rates[r];
			const uint8_t *in[4];
			uint8_t *out[4];
			/* four different inputs of one length */
			for (unsigned j = 0; j < 4; j++) {
				in[j] = g_in[j];
				out[j] = got[j];
				ossl_shake(rates[r], g_in[j], inlen, want[j], outlen + rates[r]);
			}
			mldsa_shakex4 x;
			mldsa_shakex4_absorb(&x, rates[r], in, inlen);
			/* nblocks in one call, then one more block in a second call */
			mldsa_shakex4_squeezeblocks(&x, out, nblocks);
			for (unsigned j = 0; j < 4; j++)
				out[j] = got[j] + outlen;
			mldsa_shakex4_squeezeblocks(&x, out, 1);
			mldsa_shakex4_wipe(&x);
			for (unsigned j = 0; j < 4; j++)
				assert_memory_equal(got[j], want[j], outlen + rates[r]);
		}
	}
}

static void test_x4_matches_single(void **state)
{
	(void)state;
	/* The four-way permutation on four different states equals four
	 * single permutations, over many iterations. */
	_Alignas(32) uint64_t s4[25][4];
	uint64_t s1[4][25];
	for (unsigned i = 0; i < 25; i++)
		for (unsigned j = 0; j < 4; j++)
			s4[i][j] = s1[j][i] = (uint64_t)(i * 4 + j) * 0x9e3779b97f4a7c15ULL;
	for (unsigned it = 0; it < 100; it++) {
		mldsa_keccakf1600x4(s4);
		for (unsigned j = 0; j < 4; j++)
			mldsa_keccakf1600(s1[j]);
	}
	for (unsigned i = 0; i < 25; i++)
		for (unsigned j = 0; j < 4; j++)
			assert_true(s4[i][j] == s1[j][i]);
}

static void test_xn(void **state)
{
	(void)state;
	fill_inputs();
	unsigned w = mldsa_keccak_xn_width();
	assert_true(w == 1 || w == 3 || w == 4);
	/* n = 1..4 instances: each equals OpenSSL's stream of its input. */
	static uint8_t want[4][3 * MLDSA_SHAKE256_RATE], got[4][3 * MLDSA_SHAKE256_RATE];
	for (unsigned n = 1; n <= 4; n++) {
		for (unsigned r = 0; r < 2; r++) {
			for (size_t inlen = 0; inlen <= 2 * MLDSA_SHAKE128_RATE + 3; inlen += 7) {
				const uint8_t *in[4];
				uint8_t *out[4];
				size_t outlen = 2 * rates[r];
				for (unsigned j = 0; j < n; j++) {
					in[j] = g_in[j];
					out[j] = got[j];
					ossl_shake(rates[r], g_in[j], inlen, want[j], outlen);
				}
				mldsa_shakex4 x;
				mldsa_shakexn_absorb(&x, rates[r], n, in, inlen);
				mldsa_shakex4_squeezeblocks(&x, out, 2);
				mldsa_shakex4_wipe(&x);
				for (unsigned j = 0; j < n; j++)
					assert_memory_equal(got[j], want[j], outlen);
			}
		}
	}
	/* The permutation on states 0..n-1 equals single permutations. */
	for (unsigned n = 1; n <= 4; n++) {
		_Alignas(32) uint64_t s4[25][4];
		uint64_t s1[4][25];
		for (unsigned i = 0; i < 25; i++)
			for (unsigned j = 0; j < 4; j++)
				s4[i][j] = s1[j][i] = (uint64_t)(i * 4 + j + 100 * n) * 0x9e3779b97f4a7c15ULL;
		for (unsigned it = 0; it < 30; it++) {
			mldsa_keccakf1600xn(s4, n);
			for (unsigned j = 0; j < n; j++)
				mldsa_keccakf1600(s1[j]);
		}
		for (unsigned i = 0; i < 25; i++)
			for (unsigned j = 0; j < n; j++)
				assert_true(s4[i][j] == s1[j][i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_oneshot_and_incremental),
		cmocka_unit_test(test_x4),
		cmocka_unit_test(test_x4_matches_single),
		cmocka_unit_test(test_xn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
