/*
 * test_hash_sha3x.c - the hashing pool (creto_hash_ranges,
 * creto_hash_file_shards) on the multi-buffer SHA3-256 engine: a model-like
 * directory (files of every size class around the block, the piece and the
 * shard boundaries, empty files) hashed whole and as shards with 1..3
 * threads, every digest compared with OpenSSL's SHA3-256 of the same bytes;
 * fewer ranges than lanes; a file shorter than its range and a missing file
 * among many.  Runs on the back end this CPU chooses (printed);
 * test_hash_sha3x_noavx2.c and test_hash_sha3x_noavx512.c run it again with
 * the switches set, so the pool's digests are checked on every back end the
 * CPU has (each against OpenSSL, hence the same for all).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "creto/hash.h"
#include "hash/sha3x.h"

#define HASH_TESTFILES_NAME "test_hash_sha3x"
#include "hash_testfiles.h"

#define B CRETO_HASH_BUFSIZE
#define R SHA3X_RATE

static void test_pool_directory(void **state)
{
	(void)state;
	sha3x_impl im = sha3x_choose(0);
	print_message("[   NOTE   ] pool back end: %s (%u lanes)\n", sha3x_impl_name(im),
		      sha3x_impl_lanes(im));
	/* piece sizes are B / lanes rounded down to the block: sizes around those too */
	size_t sizes[] = {0, 1, R - 1, R, R + 1, 4096, 30000, B / 8 / R * R, B / 8 / R * R + 1,
			  B / 4 / R * R - 1, B - 1, B, B + 1, 3 * B + 17, 5 * B + 3 * R, 0, 77};
	enum { NF = sizeof(sizes) / sizeof(sizes[0]) };
	int fds[NF];
	char names[NF][32];
	int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	for (unsigned i = 0; i < NF; i++) {
		snprintf(names[i], sizeof(names[i]), "m%u.bin", i);
		fds[i] = make_file(names[i], sizes[i], i);
	}
	for (unsigned th = 1; th <= 3; th++) {
		/* whole files by path, plus inner ranges by fd */
		creto_hash_range r[2 * NF];
		size_t n = 0;
		for (unsigned i = 0; i < NF; i++) {
			r[n++] = (creto_hash_range){.fd = -1, .dirfd = dfd, .path = names[i],
						    .length = sizes[i]};
			r[n++] = (creto_hash_range){.fd = fds[i], .dirfd = AT_FDCWD, .path = names[i],
						    .offset = sizes[i] / 7,
						    .length = sizes[i] - sizes[i] / 7 - sizes[i] / 5};
		}
		creto_err e;
		if (creto_hash_ranges(CRETO_HASH_SHA3_256, r, n, th, &e) != CRETO_OK)
			fail_msg("pool: %s", e.msg);
		for (size_t k = 0; k < n; k++) {
			uint8_t want[32];
			ref_range(fds[k / 2], r[k].offset, r[k].length, want);
			if (memcmp(want, r[k].digest, 32) != 0)
				fail_msg("range %zu (%s +%llu, %llu bytes, %u threads): wrong digest", k,
					 r[k].path, (unsigned long long)r[k].offset,
					 (unsigned long long)r[k].length, th);
		}
		/* shards of the largest file, shard sizes on and off the block */
		uint64_t shard[] = {R, 64 * R + 1, B / 3, B, 2 * B + 5};
		for (unsigned s = 0; s < sizeof(shard) / sizeof(shard[0]); s++) {
			uint8_t *d = NULL;
			size_t ns = 0;
			assert_int_equal(creto_hash_file_shards(CRETO_HASH_SHA3_256, fds[14], sizes[14],
								shard[s], th, names[14], &d, &ns, &e),
					 CRETO_OK);
			assert_int_equal(ns, (sizes[14] + shard[s] - 1) / shard[s]);
			for (size_t i = 0; i < ns; i++) {
				uint64_t off = i * shard[s];
				uint64_t len = sizes[14] - off < shard[s] ? sizes[14] - off : shard[s];
				uint8_t want[32];
				ref_range(fds[14], off, len, want);
				if (memcmp(want, d + 32 * i, 32) != 0)
					fail_msg("shard %zu of %zu (size %llu, %u threads): wrong digest", i,
						 ns, (unsigned long long)shard[s], th);
			}
			free(d);
		}
	}
	/* fewer ranges than lanes, more threads than ranges */
	creto_hash_range two[2] = {
		{.fd = fds[13], .dirfd = AT_FDCWD, .length = sizes[13]},
		{.fd = fds[12], .dirfd = AT_FDCWD, .offset = 1, .length = sizes[12] - 1},
	};
	creto_err e;
	assert_int_equal(creto_hash_ranges(CRETO_HASH_SHA3_256, two, 2, 4, &e), CRETO_OK);
	uint8_t want[32];
	ref_range(fds[13], 0, sizes[13], want);
	assert_memory_equal(want, two[0].digest, 32);
	ref_range(fds[12], 1, sizes[12] - 1, want);
	assert_memory_equal(want, two[1].digest, 32);
	for (unsigned i = 0; i < NF; i++)
		close(fds[i]);
	close(dfd);
}

static void test_pool_errors(void **state)
{
	(void)state;
	int fd = make_file("short", 3 * R + 5, 99);
	int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	creto_err e;
	/* a range past the end, among ranges that are fine, in every lane position */
	for (unsigned bad = 0; bad < 9; bad++) {
		creto_hash_range r[9];
		for (unsigned i = 0; i < 9; i++)
			r[i] = (creto_hash_range){.fd = fd, .dirfd = AT_FDCWD, .path = "short",
						  .length = 3 * R + 5};
		r[bad].length = 3 * R + 6;
		assert_int_equal(creto_hash_ranges(CRETO_HASH_SHA3_256, r, 9, 1, &e), CRETO_EOP);
		assert_non_null(strstr(e.msg, "short: file changed while being hashed"));
	}
	/* a missing file among many, by path */
	creto_hash_range m[20];
	for (unsigned i = 0; i < 20; i++)
		m[i] = (creto_hash_range){.fd = -1, .dirfd = dfd, .path = i == 11 ? "gone" : "short",
					  .length = 3 * R + 5};
	assert_int_equal(creto_hash_ranges(CRETO_HASH_SHA3_256, m, 20, 2, &e), CRETO_EOP);
	assert_non_null(strstr(e.msg, "gone: open"));
	/* a range whose end overflows */
	creto_hash_range o = {.fd = fd, .dirfd = AT_FDCWD, .path = "short", .offset = UINT64_MAX - 1,
			      .length = 5};
	assert_int_equal(creto_hash_ranges(CRETO_HASH_SHA3_256, &o, 1, 1, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "out of bounds"));
	close(fd);
	close(dfd);
}


/* Stream one file through creto_hash_stream as parts of the given lengths
 * (consecutive), shards of sh bytes, th workers, copying to a second file;
 * every shard digest and the copy are compared with OpenSSL. */
static void stream_check(int fd, const uint64_t *parts, size_t np, size_t sh, unsigned th)
{
	creto_err e;
	creto_hash_stream *s = NULL;
	if (creto_hash_stream_new(CRETO_HASH_SHA3_256, sh, th, &s, &e) != CRETO_OK)
		fail_msg("stream_new: %s", e.msg);
	int out = make_file("stream.copy", 0, 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	uint8_t *want[16], *got[16];
	size_t ns[16];
	assert_true(np <= 16);
	uint64_t off = 0;
	for (size_t i = 0; i < np; i++) {
		ns[i] = parts[i] == 0 ? 1 : (size_t)((parts[i] + sh - 1) / sh);
		want[i] = malloc(32 * ns[i]);
		got[i] = calloc(ns[i], 32);
		assert_non_null(want[i]);
		assert_non_null(got[i]);
		for (size_t k = 0; k < ns[i]; k++) {
			uint64_t o = (uint64_t)k * sh;
			ref_range(fd, off + o, parts[i] - o < sh ? parts[i] - o : sh, want[i] + 32 * k);
		}
		if (creto_hash_stream_fd(s, fd, parts[i], out, "part", want[i], got[i], &e) != CRETO_OK)
			fail_msg("stream part %zu (%llu bytes, shards of %zu, %u threads): %s", i,
				 (unsigned long long)parts[i], sh, th, e.msg);
		off += parts[i];
	}
	assert_int_equal(creto_hash_stream_flush(s, &e), CRETO_OK);
	assert_int_equal(creto_hash_stream_finish(s, &e), CRETO_OK);
	for (size_t i = 0; i < np; i++) {
		if (memcmp(want[i], got[i], 32 * ns[i]) != 0)
			fail_msg("part %zu (shards of %zu, %u threads): digests differ", i, sh, th);
		free(want[i]);
		free(got[i]);
	}
	uint8_t a[32], b[32];
	assert_int_equal(lseek(out, 0, SEEK_END), (off_t)off);
	ref_range(fd, 0, off, a);
	ref_range(out, 0, off, b);
	assert_memory_equal(a, b, 32);
	close(out);
	creto_hash_stream_free(s);
}

/* The stream (update payloads) on the back end in use: shards hashed
 * several at a time, parts of every length class, shard sizes on and off
 * the block and the piece, 1..3 workers; a corrupted digest at any shard
 * position is found and the first one in stream order is named. */
static void test_stream_lanes(void **state)
{
	(void)state;
	print_message("[   NOTE   ] stream back end: %s\n", creto_hash_engine(CRETO_HASH_SHA3_256));
	const uint64_t total = 24 * (uint64_t)B + 3 * R + 11;
	int fd = make_file("stream.src", (size_t)total, 7);
	/* 3 MiB + 1: the buffer budget binds, fewer workers than threads */
	size_t shards[] = {R, 64 * R + 1, B / 8 / R * R, B / 3, B + 5, 3 * B + 1};
	for (unsigned si = 0; si < sizeof(shards) / sizeof(shards[0]); si++) {
		size_t sh = shards[si];
		uint64_t parts[] = {0, 1, sh - 1, sh, sh + 1, 2 * (uint64_t)B + 17, 0, 3 * (uint64_t)sh + R};
		size_t np = sizeof(parts) / sizeof(parts[0]);
		uint64_t sum = 0;
		for (size_t i = 0; i < np; i++)
			sum += parts[i];
		assert_true(sum <= total);
		for (unsigned th = 1; th <= 3; th++)
			stream_check(fd, parts, np, sh, th);
	}
	/* shard sizes that are multiples of 4 KiB (the update default): the
	 * writer copies aligned shards with O_DIRECT and the rest (a shorter
	 * last shard, everything after an unaligned part) with write(2); the
	 * copy must be the same bytes either way */
	size_t aligned[] = {64u << 10, B, 2 * (size_t)B};
	for (unsigned si = 0; si < sizeof(aligned) / sizeof(aligned[0]); si++) {
		size_t sh = aligned[si];
		uint64_t parts[] = {2 * (uint64_t)sh, 3 * (uint64_t)sh + 5, 2 * (uint64_t)sh, sh / 2};
		assert_true(7 * (uint64_t)sh + 5 + sh / 2 <= total);
		for (unsigned th = 1; th <= 2; th++)
			stream_check(fd, parts, sizeof(parts) / sizeof(parts[0]), sh, th);
	}
	/* mismatches: 40 shards of 64 KiB + 1, two wrong digests; the first is named */
	const size_t sh = 65537;
	const uint64_t len = 40 * (uint64_t)sh - 100;
	uint8_t *want = malloc(40 * 32);
	assert_non_null(want);
	for (size_t k = 0; k < 40; k++)
		ref_range(fd, k * sh, k == 39 ? len - 39 * sh : sh, want + 32 * k);
	for (unsigned bad = 0; bad < 40; bad += 7) {
		for (unsigned th = 1; th <= 2; th++) {
			creto_err e;
			creto_hash_stream *s = NULL;
			assert_int_equal(creto_hash_stream_new(CRETO_HASH_SHA3_256, sh, th, &s, &e), CRETO_OK);
			want[32 * bad] ^= 1;
			if (bad + 3 < 40)
				want[32 * (bad + 3) + 31] ^= 0x80;
			assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
			int rc = creto_hash_stream_fd(s, fd, len, -1, "w.bin", want, NULL, &e);
			if (rc == CRETO_OK)
				rc = creto_hash_stream_finish(s, &e);
			assert_int_equal(rc, CRETO_EREJECT);
			creto_hash_stream_fail f = creto_hash_stream_failure(s);
			assert_int_equal(f.kind, CRETO_HASH_FAIL_MISMATCH);
			assert_int_equal(f.shard, bad);
			assert_int_equal(f.nshards, 40);
			want[32 * bad] ^= 1;
			if (bad + 3 < 40)
				want[32 * (bad + 3) + 31] ^= 0x80;
			creto_hash_stream_free(s);
		}
	}
	free(want);
	close(fd);
}

/* Every back end this CPU has, forced in turn in this process (and FIPS):
 * the same directory hashed by the pool (whole files and shards) and the
 * same data streamed give the same digests on all of them. */
static void test_every_backend(void **state)
{
	(void)state;
	static const sha3x_impl impls[] = {SHA3X_IMPL_OPENSSL, SHA3X_IMPL_AVX2, SHA3X_IMPL_AVX512};
	size_t sizes[] = {0, 1, R, 5 * R + 3, B - 1, 2 * B + 9, 3 * B / 2};
	enum { NF = sizeof(sizes) / sizeof(sizes[0]) };
	int fds[NF];
	char names[NF][32];
	for (unsigned i = 0; i < NF; i++) {
		snprintf(names[i], sizeof(names[i]), "e%u.bin", i);
		fds[i] = make_file(names[i], sizes[i], 100 + i);
	}
	int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	uint8_t first_files[NF][32], *first_shards = NULL, first_stream[12][32];
	size_t first_ns = 0;
	int have = 0;
	char ran[128] = "";
	for (unsigned pass = 0; pass < 4; pass++) {
		creto_err e;
		if (pass < 3) {
			if (!sha3x_impl_available(impls[pass])) {
				print_message("[   NOTE   ] back end %s: not on this CPU (or switched off), not run\n",
					      sha3x_impl_name(impls[pass]));
				continue;
			}
			sha3x_force(impls[pass]);
			assert_string_equal(creto_hash_engine(CRETO_HASH_SHA3_256), sha3x_impl_name(impls[pass]));
		} else {
			sha3x_force(SHA3X_IMPL_AVX512); /* FIPS wins over a forced back end */
			creto_hash_set_fips(1);
			assert_int_equal(creto_hash_fips(), 1);
			assert_string_equal(creto_hash_engine(CRETO_HASH_SHA3_256), "openssl");
		}
		strncat(ran, pass < 3 ? sha3x_impl_name(impls[pass]) : "fips", sizeof(ran) - strlen(ran) - 2);
		strcat(ran, " ");
		creto_hash_range r[NF];
		for (unsigned i = 0; i < NF; i++)
			r[i] = (creto_hash_range){.fd = -1, .dirfd = dfd, .path = names[i], .length = sizes[i]};
		if (creto_hash_ranges(CRETO_HASH_SHA3_256, r, NF, 2, &e) != CRETO_OK)
			fail_msg("pool: %s", e.msg);
		uint8_t *d = NULL;
		size_t ns = 0;
		assert_int_equal(creto_hash_file_shards(CRETO_HASH_SHA3_256, fds[5], sizes[5], 64 * R + 1, 2,
							names[5], &d, &ns, &e),
				 CRETO_OK);
		creto_hash_stream *s = NULL;
		uint8_t st[12][32] = {{0}}; /* 2B + 9 bytes in shards of B / 4 + 1: 9 */
		assert_int_equal(creto_hash_stream_new(CRETO_HASH_SHA3_256, B / 4 + 1, 2, &s, &e), CRETO_OK);
		assert_int_equal(lseek(fds[5], 0, SEEK_SET), 0);
		assert_int_equal(creto_hash_stream_fd(s, fds[5], sizes[5], -1, "e5", NULL, &st[0][0], &e),
				 CRETO_OK);
		assert_int_equal(creto_hash_stream_finish(s, &e), CRETO_OK);
		creto_hash_stream_free(s);
		assert_int_equal((sizes[5] + B / 4) / (B / 4 + 1), 9);
		if (!have) {
			for (unsigned i = 0; i < NF; i++) {
				ref_range(fds[i], 0, sizes[i], first_files[i]);
				assert_memory_equal(first_files[i], r[i].digest, 32);
			}
			first_shards = d;
			first_ns = ns;
			memcpy(first_stream, st, sizeof(st));
			have = 1;
		} else {
			for (unsigned i = 0; i < NF; i++)
				assert_memory_equal(first_files[i], r[i].digest, 32);
			assert_int_equal(ns, first_ns);
			assert_memory_equal(first_shards, d, 32 * ns);
			assert_memory_equal(first_stream, st, sizeof(st));
			free(d);
		}
	}
	creto_hash_set_fips(0);
	sha3x_force(SHA3X_IMPL_AUTO);
	print_message("[   NOTE   ] same digests on: %s\n", ran);
	free(first_shards);
	for (unsigned i = 0; i < NF; i++)
		close(fds[i]);
	close(dfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_directory),
		cmocka_unit_test(test_pool_errors),
		cmocka_unit_test(test_stream_lanes),
		cmocka_unit_test(test_every_backend),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
