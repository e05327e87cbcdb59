/*
 * test_sha3x.c - the multi-buffer SHA3-256 engine (src/hash/sha3x.c) against
 * OpenSSL's SHA3-256, on every back end this CPU can run (openssl, scalar,
 * avx2, avx512; the ones the CPU lacks are named as not run): FIPS 202
 * known answers, every length 0..4 blocks and 136n-1, 136n, 136n+1 up to 40
 * blocks, one lane and all lanes at once, inputs split at varied points,
 * lanes of different lengths in one batch, lanes finishing and restarting
 * while the others carry on, overlapping inputs, large chunks like the
 * pool's; the back-end choice (FIPS, calibration) and the usage errors.
 * test_sha3x_noavx2.c and test_sha3x_noavx512.c run this file again with
 * the environment switches set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "hash/sha3x.h"

/* What the switches of the including file leave: NULL = whatever the CPU has. */
#ifndef SHA3X_EXPECT_NO
#define SHA3X_EXPECT_NO NULL
#endif

#define R SHA3X_RATE
#define MAXLEN (40 * R + 2)

static uint8_t g_data[SHA3X_LANES_MAX][MAXLEN];

static uint64_t g_rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	g_rng ^= g_rng << 13;
	g_rng ^= g_rng >> 7;
	g_rng ^= g_rng << 17;
	return g_rng;
}

static void fill(void)
{
	for (unsigned j = 0; j < SHA3X_LANES_MAX; j++)
		for (size_t i = 0; i < MAXLEN; i++)
			g_data[j][i] = (uint8_t)rnd();
}

static void ref(const void *in, size_t len, uint8_t out[SHA3X_DIGEST])
{
	unsigned n = 0;
	assert_int_equal(EVP_Digest(in, len, out, &n, EVP_sha3_256(), NULL), 1);
	assert_int_equal(n, SHA3X_DIGEST);
}

static sha3x_ctx *new_ctx(sha3x_impl impl)
{
	sha3x_ctx *x = NULL;
	creto_err e;
	creto_err_clear(&e);
	int rc = sha3x_new(impl, 0, &x, &e);
	if (rc != CRETO_OK)
		fail_msg("sha3x_new(%s): %s", sha3x_impl_name(impl), e.msg);
	assert_int_equal(sha3x_ctx_impl(x), impl);
	assert_int_equal(sha3x_lanes(x), sha3x_impl_lanes(impl));
	return x;
}

static void check(sha3x_ctx *x, unsigned lane, const uint8_t *msg, size_t len)
{
	uint8_t got[SHA3X_DIGEST], want[SHA3X_DIGEST];
	assert_int_equal(sha3x_finish(x, lane, got, NULL), CRETO_OK);
	ref(msg, len, want);
	if (memcmp(got, want, SHA3X_DIGEST) != 0)
		fail_msg("%s lane %u: wrong digest for %zu bytes", sha3x_impl_name(sha3x_ctx_impl(x)),
			 lane, len);
}

/* Every back end this process may use; prints the ones it may not. */
static unsigned impls(sha3x_impl out[SHA3X_IMPL_COUNT])
{
	unsigned n = 0;
	for (int i = 1; i < SHA3X_IMPL_COUNT; i++) {
		if (sha3x_impl_available((sha3x_impl)i))
			out[n++] = (sha3x_impl)i;
		else
			print_message("[   NOTE   ] back end %s not run here (CPU lacks it or switched off)\n",
				      sha3x_impl_name((sha3x_impl)i));
	}
	assert_true(n >= 2); /* openssl and scalar everywhere */
	return n;
}

static void test_known_answers(void **state)
{
	(void)state;
	/* FIPS 202 examples (NIST CSRC): SHA3-256("") and SHA3-256("abc") */
	static const uint8_t empty[32] = {
		0xa7, 0xff, 0xc6, 0xf8, 0xbf, 0x1e, 0xd7, 0x66, 0x51, 0xc1, 0x47, 0x56, 0xa0, 0x61, 0xd6, 0x62,
		0xf5, 0x80, 0xff, 0x4d, 0xe4, 0x3b, 0x49, 0xfa, 0x82, 0xd8, 0x0a, 0x4b, 0x80, 0xf8, 0x43, 0x4a};
	static const uint8_t abc[32] = {
		0x3a, 0x98, 0x5d, 0xa7, 0x4f, 0xe2, 0x25, 0xb2, 0x04, 0x5c, 0x17, 0x2d, 0x6b, 0xd3, 0x90, 0xbd,
		0x85, 0x5f, 0x08, 0x6e, 0x3e, 0x9d, 0x52, 0x5b, 0x46, 0xbf, 0xe2, 0x45, 0x11, 0x43, 0x15, 0x32};
	sha3x_impl im[SHA3X_IMPL_COUNT];
	unsigned n = impls(im);
	for (unsigned k = 0; k < n; k++) {
		sha3x_ctx *x = new_ctx(im[k]);
		uint8_t out[32];
		for (unsigned j = 0; j < sha3x_lanes(x); j++) {
			assert_int_equal(sha3x_start(x, j, NULL), CRETO_OK);
			assert_int_equal(sha3x_finish(x, j, out, NULL), CRETO_OK);
			assert_memory_equal(out, empty, 32);
			assert_int_equal(sha3x_start(x, j, NULL), CRETO_OK);
			assert_int_equal(sha3x_update(x, j, "abc", 3, NULL), CRETO_OK);
			assert_int_equal(sha3x_finish(x, j, out, NULL), CRETO_OK);
			assert_memory_equal(out, abc, 32);
		}
		sha3x_free(x);
	}
}

/* The lengths the tests walk: 0..4 blocks one by one, then every rate
 * boundary +-1 up to 40 blocks. */
static size_t g_lens[4 * R + 1 + 3 * 37];
static size_t nlens(void)
{
	size_t n = 0;
	for (size_t l = 0; l <= 4 * R; l++)
		g_lens[n++] = l;
	for (size_t b = 5; b <= 40; b++) {
		g_lens[n++] = b * R - 1;
		g_lens[n++] = b * R;
		g_lens[n++] = b * R + 1;
	}
	assert_true(n <= sizeof(g_lens) / sizeof(g_lens[0]));
	return n;
}

/* Each lane on its own (the others idle), in one call and in three pieces. */
static void test_one_lane(void **state)
{
	(void)state;
	fill();
	size_t nl = nlens();
	sha3x_impl im[SHA3X_IMPL_COUNT];
	unsigned n = impls(im);
	for (unsigned k = 0; k < n; k++) {
		sha3x_ctx *x = new_ctx(im[k]);
		for (size_t li = 0; li < nl; li++) {
			size_t len = g_lens[li];
			unsigned j = (unsigned)(li % sha3x_lanes(x));
			assert_int_equal(sha3x_start(x, j, NULL), CRETO_OK);
			assert_int_equal(sha3x_update(x, j, g_data[j], len, NULL), CRETO_OK);
			check(x, j, g_data[j], len);
			size_t a = len / 3, b = len - len / 5;
			assert_int_equal(sha3x_start(x, j, NULL), CRETO_OK);
			assert_int_equal(sha3x_update(x, j, g_data[j], a, NULL), CRETO_OK);
			assert_int_equal(sha3x_update(x, j, g_data[j] + a, b - a, NULL), CRETO_OK);
			assert_int_equal(sha3x_update(x, j, g_data[j] + b, len - b, NULL), CRETO_OK);
			check(x, j, g_data[j], len);
		}
		sha3x_free(x);
	}
}

/* All lanes at once: the same length (the lock-step case), then lane j
 * one of the lengths around the same boundary, different per lane. */
static void test_all_lanes(void **state)
{
	(void)state;
	fill();
	size_t nl = nlens();
	sha3x_impl im[SHA3X_IMPL_COUNT];
	unsigned n = impls(im);
	for (unsigned k = 0; k < n; k++) {
		sha3x_ctx *x = new_ctx(im[k]);
		unsigned lanes = sha3x_lanes(x);
		for (size_t li = 0; li < nl; li++) {
			for (int mixed = 0; mixed < 2; mixed++) {
				const uint8_t *in[SHA3X_LANES_MAX];
				size_t len[SHA3X_LANES_MAX];
				for (unsigned j = 0; j < lanes; j++) {
					assert_int_equal(sha3x_start(x, j, NULL), CRETO_OK);
					in[j] = g_data[j];
					len[j] = mixed ? g_lens[(li + j * 7) % nl] : g_lens[li];
				}
				assert_int_equal(sha3x_absorb(x, in, len, NULL), CRETO_OK);
				for (unsigned j = 0; j < lanes; j++)
					check(x, j, g_data[j], len[j]);
			}
		}
		sha3x_free(x);
	}
}

/* Random batches: every lane gets a random piece (often 0, often a block
 * boundary +-1) per call; a lane whose message is done finishes and starts
 * a new one of another random length while the others carry on. */
static void test_random_batches(void **state)
{
	(void)state;
	fill();
	sha3x_impl im[SHA3X_IMPL_COUNT];
	unsigned n = impls(im);
	for (unsigned k = 0; k < n; k++) {
		sha3x_ctx *x = new_ctx(im[k]);
		unsigned lanes = sha3x_lanes(x);
		size_t target[SHA3X_LANES_MAX], done[SHA3X_LANES_MAX];
		unsigned finished = 0;
		for (unsigned j = 0; j < lanes; j++) {
			assert_int_equal(sha3x_start(x, j, NULL), CRETO_OK);
			target[j] = rnd() % MAXLEN;
			done[j] = 0;
		}
		for (unsigned iter = 0; iter < 3000; iter++) {
			const uint8_t *in[SHA3X_LANES_MAX];
			size_t len[SHA3X_LANES_MAX];
			for (unsigned j = 0; j < lanes; j++) {
				size_t left = target[j] - done[j], want;
				switch (rnd() % 5) {
				case 0: want = 0; break;
				case 1: want = (rnd() % 8) * R + (rnd() % 3) - 1; break;
				case 2: want = left; break;
				default: want = rnd() % (6 * R); break;
				}
				if (want > left)
					want = left;
				in[j] = want > 0 ? g_data[j] + done[j] : NULL;
				len[j] = want;
			}
			assert_int_equal(sha3x_absorb(x, in, len, NULL), CRETO_OK);
			for (unsigned j = 0; j < lanes; j++) {
				done[j] += len[j];
				if (done[j] == target[j] && rnd() % 2 == 0) {
					check(x, j, g_data[j], target[j]);
					finished++;
					assert_int_equal(sha3x_start(x, j, NULL), CRETO_OK);
					target[j] = (rnd() % 2) ? rnd() % MAXLEN : (rnd() % 41) * R + (rnd() % 3) - (target[j] > 0);
					if (target[j] > MAXLEN)
						target[j] = MAXLEN;
					done[j] = 0;
				}
			}
		}
		for (unsigned j = 0; j < lanes; j++) {
			size_t len[SHA3X_LANES_MAX] = {0};
			const uint8_t *in[SHA3X_LANES_MAX] = {NULL};
			in[j] = g_data[j] + done[j];
			len[j] = target[j] - done[j];
			assert_int_equal(sha3x_absorb(x, in, len, NULL), CRETO_OK);
			check(x, j, g_data[j], target[j]);
			finished++;
		}
		assert_true(finished > 100);
		sha3x_free(x);
	}
}

/* Every lane reads the same buffer (the engine never writes its input),
 * and big chunks like the pool's: 3 MiB per lane in 1 MiB calls, the lanes
 * one block apart in length. */
static void test_shared_and_large(void **state)
{
	(void)state;
	size_t big = (3u << 20) + 7 * SHA3X_LANES_MAX * R;
	uint8_t *buf = malloc(big);
	assert_non_null(buf);
	for (size_t i = 0; i < big; i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 24);
	sha3x_impl im[SHA3X_IMPL_COUNT];
	unsigned n = impls(im);
	for (unsigned k = 0; k < n; k++) {
		sha3x_ctx *x = new_ctx(im[k]);
		unsigned lanes = sha3x_lanes(x);
		size_t total[SHA3X_LANES_MAX], done = 0;
		for (unsigned j = 0; j < lanes; j++) {
			assert_int_equal(sha3x_start(x, j, NULL), CRETO_OK);
			total[j] = (3u << 20) + j * R + j;
		}
		while (done < total[lanes - 1]) {
			const uint8_t *in[SHA3X_LANES_MAX];
			size_t len[SHA3X_LANES_MAX];
			for (unsigned j = 0; j < lanes; j++) {
				size_t left = total[j] > done ? total[j] - done : 0;
				len[j] = left < (1u << 20) ? left : (1u << 20);
				in[j] = buf + done;
			}
			assert_int_equal(sha3x_absorb(x, in, len, NULL), CRETO_OK);
			done += 1u << 20;
		}
		for (unsigned j = 0; j < lanes; j++)
			check(x, j, buf, total[j]);
		sha3x_free(x);
	}
	free(buf);
}

static void test_choice_and_errors(void **state)
{
	(void)state;
	sha3x_impl best = sha3x_choose(0);
	assert_true(best != SHA3X_IMPL_AUTO && best != SHA3X_IMPL_SCALAR);
	assert_true(sha3x_impl_available(best));
	double ro = sha3x_calibrated_rate(SHA3X_IMPL_OPENSSL);
	print_message("[   NOTE   ] chosen: %s; calibration (MB/s per core):", sha3x_impl_name(best));
	for (int i = 1; i < SHA3X_IMPL_COUNT; i++)
		print_message(" %s %.0f", sha3x_impl_name((sha3x_impl)i),
			      sha3x_calibrated_rate((sha3x_impl)i) / 1e6);
	print_message("\n");
	/* never a multi-way back end that did not beat OpenSSL here */
	if (best != SHA3X_IMPL_OPENSSL)
		assert_true(sha3x_calibrated_rate(best) >= 1.05 * ro);
	for (int i = SHA3X_IMPL_AVX2; i < SHA3X_IMPL_COUNT; i++)
		if (!sha3x_impl_available((sha3x_impl)i))
			assert_true(sha3x_calibrated_rate((sha3x_impl)i) == 0);
	/* the switches of the including test file */
	const char *no = SHA3X_EXPECT_NO;
	if (no != NULL) {
		for (const char *p = no; *p != '\0';) {
			size_t l = strcspn(p, ",");
			char name[16];
			assert_true(l < sizeof(name));
			memcpy(name, p, l);
			name[l] = '\0';
			int im = sha3x_impl_from_name(name);
			assert_true(im > 0);
			assert_false(sha3x_impl_available((sha3x_impl)im));
			assert_int_not_equal(best, im);
			p += l + (p[l] == ',');
		}
	}

	/* FIPS: OpenSSL only, whatever is asked */
	assert_int_equal(sha3x_choose(SHA3X_FIPS), SHA3X_IMPL_OPENSSL);
	sha3x_ctx *x = NULL;
	creto_err e;
	assert_int_equal(sha3x_new(SHA3X_IMPL_AUTO, SHA3X_FIPS, &x, &e), CRETO_OK);
	assert_int_equal(sha3x_ctx_impl(x), SHA3X_IMPL_OPENSSL);
	sha3x_free(x);
	x = NULL;
	assert_int_equal(sha3x_new(SHA3X_IMPL_SCALAR, SHA3X_FIPS, &x, &e), CRETO_EUSAGE);
	assert_null(x);
	assert_non_null(strstr(e.msg, "FIPS"));

	/* unknown or unavailable back ends */
	assert_int_equal(sha3x_new((sha3x_impl)99, 0, &x, &e), CRETO_EUSAGE);
	for (int i = SHA3X_IMPL_AVX2; i < SHA3X_IMPL_COUNT; i++)
		if (!sha3x_impl_available((sha3x_impl)i)) {
			assert_int_equal(sha3x_new((sha3x_impl)i, 0, &x, &e), CRETO_EUSAGE);
			assert_non_null(strstr(e.msg, sha3x_impl_name((sha3x_impl)i)));
		}
	assert_int_equal(sha3x_impl_from_name("avx512"), SHA3X_IMPL_AVX512);
	assert_int_equal(sha3x_impl_from_name("sse"), -1);

	/* lanes not started, finished twice, out of range */
	sha3x_impl im[SHA3X_IMPL_COUNT];
	unsigned n = impls(im);
	for (unsigned k = 0; k < n; k++) {
		x = new_ctx(im[k]);
		uint8_t out[SHA3X_DIGEST];
		assert_int_equal(sha3x_update(x, 0, "a", 1, &e), CRETO_EUSAGE);
		assert_non_null(strstr(e.msg, "not started"));
		assert_int_equal(sha3x_update(x, 0, NULL, 0, &e), CRETO_OK); /* nothing to do */
		assert_int_equal(sha3x_finish(x, 0, out, &e), CRETO_EUSAGE);
		assert_int_equal(sha3x_update(x, sha3x_lanes(x), "a", 1, &e), CRETO_EUSAGE);
		assert_int_equal(sha3x_start(x, 0, &e), CRETO_OK);
		assert_int_equal(sha3x_finish(x, 0, out, &e), CRETO_OK);
		assert_int_equal(sha3x_finish(x, 0, out, &e), CRETO_EUSAGE);
		sha3x_free(x);
	}
	sha3x_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),    cmocka_unit_test(test_one_lane),
		cmocka_unit_test(test_all_lanes),        cmocka_unit_test(test_random_batches),
		cmocka_unit_test(test_shared_and_large), cmocka_unit_test(test_choice_and_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
