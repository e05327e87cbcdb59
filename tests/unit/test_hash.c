/* test_hash.c - streaming digests (known answers) and the parallel pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creto/hash.h"
#include "util/enc.h"

static void hexof(const uint8_t *d, char out[CRETO_HASH_HEX_MAX])
{
	creto_hex_encode(out, d, 32);
}

static void test_names(void **state)
{
	(void)state;
	assert_int_equal(creto_hash_from_name("sha3-256"), CRETO_HASH_SHA3_256);
	assert_int_equal(creto_hash_from_name("sha256"), CRETO_HASH_SHA256);
	assert_int_equal(creto_hash_from_name("SHA256"), CRETO_HASH_NONE);
	assert_int_equal(creto_hash_from_name("blake2"), CRETO_HASH_NONE);
	assert_int_equal(creto_hash_from_name(NULL), CRETO_HASH_NONE);
	assert_string_equal(creto_hash_name(CRETO_HASH_SHA3_256), "sha3-256");
	assert_null(creto_hash_name(CRETO_HASH_NONE));
	assert_int_equal(creto_hash_len(CRETO_HASH_SHA256), 32);
	assert_int_equal(creto_hash_len(CRETO_HASH_NONE), 0);
	assert_true(creto_hash_default_threads() >= 1);
}

/* FIPS 202 / FIPS 180-4 known answers. */
static void test_kat(void **state)
{
	(void)state;
	uint8_t d[CRETO_HASH_MAX];
	char h[CRETO_HASH_HEX_MAX];
	creto_err e;
	assert_int_equal(creto_hash_buf(CRETO_HASH_SHA3_256, "abc", 3, d, &e), 0);
	hexof(d, h);
	assert_string_equal(h, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532");
	assert_int_equal(creto_hash_buf(CRETO_HASH_SHA3_256, NULL, 0, d, &e), 0);
	hexof(d, h);
	assert_string_equal(h, "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a");
	assert_int_equal(creto_hash_buf(CRETO_HASH_SHA256, "abc", 3, d, &e), 0);
	hexof(d, h);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(creto_hash_buf(CRETO_HASH_NONE, "abc", 3, d, &e), CRETO_EUSAGE);
}

/* Streaming in odd pieces equals one shot; final resets the context. */
static void test_stream(void **state)
{
	(void)state;
	uint8_t msg[1000], a[32], b[32], c2[32];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7 + 3);
	creto_err e;
	creto_hash_ctx *c = NULL;
	assert_int_equal(creto_hash_init(CRETO_HASH_SHA3_256, &c, &e), 0);
	assert_int_equal(creto_hash_ctx_alg(c), CRETO_HASH_SHA3_256);
	size_t off = 0, step = 1;
	while (off < sizeof(msg)) {
		size_t n = step < sizeof(msg) - off ? step : sizeof(msg) - off;
		assert_int_equal(creto_hash_update(c, msg + off, n, &e), 0);
		off += n;
		step = step * 3 + 1;
	}
	assert_int_equal(creto_hash_update(c, NULL, 0, &e), 0);
	assert_int_equal(creto_hash_final(c, a, &e), 0);
	assert_int_equal(creto_hash_buf(CRETO_HASH_SHA3_256, msg, sizeof(msg), b, &e), 0);
	assert_memory_equal(a, b, 32);
	assert_int_equal(creto_hash_update(c, msg, sizeof(msg), &e), 0);
	assert_int_equal(creto_hash_final(c, c2, &e), 0);
	assert_memory_equal(a, c2, 32);
	creto_hash_free(c);
	creto_hash_free(NULL);
	assert_int_equal(creto_hash_init(CRETO_HASH_NONE, &c, &e), CRETO_EUSAGE);
	assert_null(c);
}

static char tmpdir[256];

static int make_file(const char *name, size_t size, uint8_t seed)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	uint8_t buf[4096];
	size_t done = 0;
	while (done < size) {
		size_t n = size - done < sizeof(buf) ? size - done : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)((done + i) * 131 + seed + ((done + i) >> 13));
		assert_int_equal(write(fd, buf, n), (ssize_t)n);
		done += n;
	}
	return fd;
}

static int setup(void **state)
{
	(void)state;
	return tmpdir_make(tmpdir, sizeof(tmpdir), "test_hash");
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove(tmpdir);
}

/* Reference: read the range whole into memory and hash it. */
static void ref_range(creto_hash_alg alg, int fd, uint64_t off, uint64_t len, uint8_t out[32])
{
	uint8_t *m = malloc(len ? len : 1);
	assert_non_null(m);
	assert_int_equal(pread(fd, m, len, (off_t)off), (ssize_t)len);
	creto_err e;
	assert_int_equal(creto_hash_buf(alg, m, len, out, &e), 0);
	free(m);
}

/* Pool results equal the reference for every thread count, for fds and
 * paths, with sizes around the buffer size. */
static void test_pool(void **state)
{
	(void)state;
	const size_t B = CRETO_HASH_BUFSIZE;
	size_t sizes[] = {0, 1, B - 1, B, B + 1, 3 * B + 17, 5000};
	enum { NF = sizeof(sizes) / sizeof(sizes[0]) };
	int fds[NF];
	char names[NF][32];
	for (int i = 0; i < NF; i++) {
		snprintf(names[i], sizeof(names[i]), "f%d", i);
		fds[i] = make_file(names[i], sizes[i], (uint8_t)i);
	}
	int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	creto_hash_alg algs[] = {CRETO_HASH_SHA3_256, CRETO_HASH_SHA256};
	for (int a = 0; a < 2; a++) {
		for (unsigned th = 0; th <= 5; th++) {
			creto_hash_range r[2 * NF + 2];
			memset(r, 0, sizeof(r));
			size_t n = 0;
			for (int i = 0; i < NF; i++) {
				r[n] = (creto_hash_range){.fd = fds[i], .dirfd = AT_FDCWD, .offset = 0,
							  .length = sizes[i]};
				n++;
				r[n] = (creto_hash_range){.fd = -1, .dirfd = dfd, .path = names[i],
							  .offset = sizes[i] / 3,
							  .length = sizes[i] - sizes[i] / 3};
				n++;
			}
			/* two ranges of one fd, overlapping */
			r[n++] = (creto_hash_range){.fd = fds[5], .dirfd = AT_FDCWD, .offset = 10, .length = B};
			r[n++] = (creto_hash_range){.fd = fds[5], .dirfd = AT_FDCWD, .offset = B, .length = 0};
			creto_err e;
			assert_int_equal(creto_hash_ranges(algs[a], r, n, th, &e), 0);
			for (size_t k = 0; k < n; k++) {
				uint8_t ref[32];
				int fd = r[k].fd >= 0 ? r[k].fd : fds[k / 2];
				ref_range(algs[a], fd, r[k].offset, r[k].length, ref);
				assert_memory_equal(ref, r[k].digest, 32);
			}
		}
	}
	/* shards helper, including a size that is an exact multiple */
	for (unsigned th = 1; th <= 3; th++) {
		uint8_t *d = NULL;
		size_t ns = 0;
		creto_err e;
		assert_int_equal(creto_hash_file_shards(CRETO_HASH_SHA3_256, fds[5], sizes[5], B, th,
							"f5", &d, &ns, &e), 0);
		assert_int_equal(ns, 4);
		for (size_t i = 0; i < ns; i++) {
			uint8_t ref[32];
			uint64_t len = i < 3 ? B : 17;
			ref_range(CRETO_HASH_SHA3_256, fds[5], i * B, len, ref);
			assert_memory_equal(ref, d + 32 * i, 32);
		}
		free(d);
		assert_int_equal(creto_hash_file_shards(CRETO_HASH_SHA256, fds[3], B, B / 4, th, "f3",
							&d, &ns, &e), 0);
		assert_int_equal(ns, 4);
		free(d);
		assert_int_equal(creto_hash_file_shards(CRETO_HASH_SHA256, fds[0], 0, B, th, "f0", &d,
							&ns, &e), 0);
		assert_int_equal(ns, 0);
		assert_null(d);
	}
	/* single range helper */
	uint8_t one[32], ref[32];
	creto_err e;
	assert_int_equal(creto_hash_fd_range(CRETO_HASH_SHA256, fds[5], 5, B, "f5", one, &e), 0);
	ref_range(CRETO_HASH_SHA256, fds[5], 5, B, ref);
	assert_memory_equal(one, ref, 32);
	for (int i = 0; i < NF; i++)
		close(fds[i]);
	close(dfd);
}

static void test_pool_errors(void **state)
{
	(void)state;
	int fd = make_file("small", 100, 1);
	int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY);
	char p[512], t[512];
	snprintf(p, sizeof(p), "%s/link", tmpdir);
	snprintf(t, sizeof(t), "%s/small", tmpdir);
	assert_int_equal(symlink(t, p), 0);
	snprintf(p, sizeof(p), "%s/sub", tmpdir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/sublink", tmpdir);
	assert_int_equal(symlink("sub", p), 0);
	close(make_file("sub/inner", 10, 2));
	creto_err e;
	uint8_t d[32];

	/* range past EOF: the file "changed" */
	creto_hash_range r = {.fd = fd, .dirfd = AT_FDCWD, .path = "small", .offset = 50, .length = 51};
	assert_int_equal(creto_hash_ranges(CRETO_HASH_SHA3_256, &r, 1, 2, &e), CRETO_EOP);
	assert_non_null(strstr(e.msg, "small: file changed while being hashed"));
	assert_int_equal(creto_hash_fd_range(CRETO_HASH_SHA256, fd, 0, 101, NULL, d, &e), CRETO_EOP);
	assert_int_equal(creto_hash_fd_range(CRETO_HASH_SHA256, fd, UINT64_MAX, 2, NULL, d, &e),
			 CRETO_EUSAGE);
	/* last component a symlink */
	creto_hash_range s = {.fd = -1, .dirfd = dfd, .path = "link", .length = 1};
	assert_int_equal(creto_hash_ranges(CRETO_HASH_SHA3_256, &s, 1, 1, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "link: "));
	/* a symlink in the middle of the path */
	s.path = "sublink/inner";
	assert_int_equal(creto_hash_ranges(CRETO_HASH_SHA3_256, &s, 1, 1, &e), CRETO_EREJECT);
	/* escaping the directory */
	s.path = "../x";
	assert_int_not_equal(creto_hash_ranges(CRETO_HASH_SHA3_256, &s, 1, 1, &e), CRETO_OK);
	/* not a regular file */
	s.path = "sub";
	assert_int_equal(creto_hash_ranges(CRETO_HASH_SHA3_256, &s, 1, 1, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "sub: not a regular file"));
	/* missing */
	s.path = "nope";
	assert_int_equal(creto_hash_ranges(CRETO_HASH_SHA3_256, &s, 1, 1, &e), CRETO_EOP);
	assert_non_null(strstr(e.msg, "nope: open"));
	/* neither fd nor path; bad alg; shard size 0 */
	creto_hash_range z = {.fd = -1, .dirfd = AT_FDCWD};
	assert_int_equal(creto_hash_ranges(CRETO_HASH_SHA3_256, &z, 1, 1, &e), CRETO_EUSAGE);
	assert_int_equal(creto_hash_ranges(CRETO_HASH_NONE, &r, 1, 1, &e), CRETO_EUSAGE);
	assert_int_equal(creto_hash_ranges(CRETO_HASH_SHA256, NULL, 0, 1, &e), CRETO_OK);
	uint8_t *dd = NULL;
	size_t ns = 0;
	assert_int_equal(creto_hash_file_shards(CRETO_HASH_SHA256, fd, 100, 0, 1, "x", &dd, &ns, &e),
			 CRETO_EUSAGE);
	assert_int_equal(creto_hash_file_shards(CRETO_HASH_NONE, fd, 100, 10, 1, "x", &dd, &ns, &e),
			 CRETO_EUSAGE);
	/* an error in one of many ranges stops the pool and is reported */
	creto_hash_range many[40];
	for (int i = 0; i < 40; i++)
		many[i] = (creto_hash_range){.fd = fd, .dirfd = AT_FDCWD, .path = "small", .length = 100};
	many[17].length = 200;
	assert_int_equal(creto_hash_ranges(CRETO_HASH_SHA3_256, many, 40, 3, &e), CRETO_EOP);
	close(fd);
	close(dfd);
}

/* ---- streams ---- */

struct feeder {
	int fd;
	const uint8_t *data;
	size_t len;
};

static void *feed_fn(void *arg)
{
	struct feeder *f = arg;
	size_t off = 0;
	while (off < f->len) {
		ssize_t w = write(f->fd, f->data + off, f->len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(f->fd);
	return NULL;
}

static uint8_t *pattern(size_t n, uint8_t seed)
{
	uint8_t *d = malloc(n ? n : 1);
	assert_non_null(d);
	for (size_t i = 0; i < n; i++)
		d[i] = (uint8_t)(i * 151 + seed + (i >> 11));
	return d;
}

/* Reference shard digests of data[0..len) with shard size sh (one empty
 * shard for len 0). */
static size_t ref_shards(const uint8_t *data, size_t len, size_t sh, uint8_t *out)
{
	creto_err e;
	size_t n = 0, off = 0;
	do {
		size_t l = len - off < sh ? len - off : sh;
		assert_int_equal(creto_hash_buf(CRETO_HASH_SHA3_256, data + off, l, out + 32 * n, &e), 0);
		n++;
		off += l;
	} while (off < len);
	return n;
}

/* The stream engine (update payloads): files and pipes, lengths around the
 * shard size, digests stored and checked, the copy written in order, the
 * input consumed exactly, the first failure in stream order reported. */
static void test_stream_engine(void **state)
{
	(void)state;
	const size_t SH = 64 * 1024;
	size_t lens[] = {0, 1, SH - 1, SH, SH + 1, 5 * SH + 17};
	enum { NL = sizeof(lens) / sizeof(lens[0]) };
	size_t total = 0;
	for (int i = 0; i < NL; i++)
		total += lens[i];
	uint8_t *data = pattern(total + 100, 3);
	int in = make_file("stream.in", 0, 0);
	assert_int_equal(write(in, data, total + 100), (ssize_t)(total + 100));
	creto_err e;
	for (unsigned th = 0; th <= 3; th++) {
		creto_hash_stream *s = NULL;
		assert_int_equal(creto_hash_stream_new(CRETO_HASH_SHA3_256, SH, th, &s, &e), 0);
		assert_int_equal(lseek(in, 0, SEEK_SET), 0);
		int out = make_file("stream.out", 0, 0);
		uint8_t *got[NL], *want[NL];
		size_t off = 0;
		for (int i = 0; i < NL; i++) {
			want[i] = malloc(32 * 8);
			got[i] = malloc(32 * 8);
			assert_non_null(want[i]);
			assert_non_null(got[i]);
			size_t n = ref_shards(data + off, lens[i], SH, want[i]);
			assert_int_equal(n, lens[i] == 0 ? 1 : (lens[i] + SH - 1) / SH);
			/* checked against want and stored into got */
			assert_int_equal(creto_hash_stream_fd(s, in, lens[i], out, "part", want[i], got[i], &e), 0);
			off += lens[i];
		}
		assert_int_equal(creto_hash_stream_flush(s, &e), 0);
		assert_int_equal(creto_hash_stream_finish(s, &e), 0);
		assert_int_equal(creto_hash_stream_failure(s).kind, CRETO_HASH_FAIL_NONE);
		for (int i = 0; i < NL; i++) {
			size_t n = lens[i] == 0 ? 1 : (lens[i] + SH - 1) / SH;
			assert_memory_equal(got[i], want[i], 32 * n);
			free(got[i]);
			free(want[i]);
		}
		/* exactly the lengths were consumed; the copy is the input, in order */
		assert_int_equal(lseek(in, 0, SEEK_CUR), (off_t)total);
		assert_int_equal(lseek(out, 0, SEEK_END), (off_t)total);
		uint8_t *copy = malloc(total);
		assert_non_null(copy);
		assert_int_equal(pread(out, copy, total, 0), (ssize_t)total);
		assert_memory_equal(copy, data, total);
		free(copy);
		close(out);
		creto_hash_stream_free(s);
	}

	/* a pipe, no expect, no copy */
	{
		int pf[2];
		assert_int_equal(pipe(pf), 0);
		size_t len = 7 * SH + 5;
		struct feeder f = {.fd = pf[1], .data = data, .len = len};
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, feed_fn, &f), 0);
		creto_hash_stream *s = NULL;
		assert_int_equal(creto_hash_stream_new(CRETO_HASH_SHA3_256, SH, 2, &s, &e), 0);
		uint8_t got[32 * 8], want[32 * 8];
		assert_int_equal(ref_shards(data, len, SH, want), 8);
		assert_int_equal(creto_hash_stream_fd(s, pf[0], len, -1, "pipe", NULL, got, &e), 0);
		assert_int_equal(creto_hash_stream_finish(s, &e), 0);
		assert_memory_equal(got, want, sizeof(got));
		pthread_join(t, NULL);
		close(pf[0]);
		creto_hash_stream_free(s);
	}

	/* a shard that differs: the first in stream order is named; sticky */
	{
		size_t len = 6 * SH;
		uint8_t want[32 * 6];
		ref_shards(data, len, SH, want);
		want[32 * 3 + 7] ^= 1;
		want[32 * 5] ^= 1;
		creto_hash_stream *s = NULL;
		assert_int_equal(creto_hash_stream_new(CRETO_HASH_SHA3_256, SH, 3, &s, &e), 0);
		assert_int_equal(lseek(in, 0, SEEK_SET), 0);
		int rc = creto_hash_stream_fd(s, in, len, -1, "weights.bin", want, NULL, &e);
		if (rc == CRETO_OK)
			rc = creto_hash_stream_finish(s, &e);
		assert_int_equal(rc, CRETO_EREJECT);
		assert_non_null(strstr(e.msg, "weights.bin: shard 4 of 6: digest differs"));
		creto_hash_stream_fail f = creto_hash_stream_failure(s);
		assert_int_equal(f.kind, CRETO_HASH_FAIL_MISMATCH);
		assert_int_equal(f.shard, 3);
		assert_int_equal(f.nshards, 6);
		assert_string_equal(f.name, "weights.bin");
		assert_int_equal(creto_hash_stream_fd(s, in, 10, -1, "later", NULL, NULL, &e), CRETO_EREJECT);
		assert_int_equal(creto_hash_stream_finish(s, &e), CRETO_EREJECT);
		creto_hash_stream_free(s);
	}

	/* the input ends early: SHORT, unless an earlier shard differed */
	for (int early = 0; early < 2; early++) {
		creto_hash_stream *s = NULL;
		assert_int_equal(creto_hash_stream_new(CRETO_HASH_SHA256, SH, 2, &s, &e), 0);
		assert_int_equal(lseek(in, (off_t)(total + 100 - (3 * SH + 9)), SEEK_SET), (off_t)(total + 100 - (3 * SH + 9)));
		uint8_t want[32 * 4];
		memset(want, 0, sizeof(want));
		uint8_t *exp = early ? want : NULL;
		int rc = creto_hash_stream_fd(s, in, 4 * SH, -1, "short.bin", exp, NULL, &e);
		assert_int_equal(rc, CRETO_EREJECT);
		creto_hash_stream_fail f = creto_hash_stream_failure(s);
		if (early) {
			assert_int_equal(f.kind, CRETO_HASH_FAIL_MISMATCH);
			assert_int_equal(f.shard, 0);
		} else {
			assert_int_equal(f.kind, CRETO_HASH_FAIL_SHORT);
			assert_int_equal(f.got, 3 * SH + 9);
			assert_int_equal(f.want, 4 * SH);
			assert_non_null(strstr(e.msg, "short.bin: ends after"));
		}
		creto_hash_stream_free(s);
	}

	/* a write error is operational (EOP), not a verdict */
	{
		creto_hash_stream *s = NULL;
		assert_int_equal(creto_hash_stream_new(CRETO_HASH_SHA3_256, SH, 1, &s, &e), 0);
		assert_int_equal(lseek(in, 0, SEEK_SET), 0);
		char p[512];
		snprintf(p, sizeof(p), "%s/stream.in", tmpdir);
		int ro = open(p, O_RDONLY);
		assert_true(ro >= 0);
		/* the writer may fail the first shard before the second is queued */
		int rc = creto_hash_stream_fd(s, in, 2 * SH, ro, "copy", NULL, NULL, &e);
		assert_true(rc == CRETO_OK || rc == CRETO_EOP);
		assert_int_equal(creto_hash_stream_flush(s, &e), CRETO_EOP);
		assert_non_null(strstr(e.msg, "copy: write copy"));
		assert_int_equal(creto_hash_stream_finish(s, &e), CRETO_EOP);
		close(ro);
		creto_hash_stream_free(s);
	}
	/* bad arguments */
	creto_hash_stream *s = NULL;
	assert_int_equal(creto_hash_stream_new(CRETO_HASH_SHA3_256, 0, 1, &s, &e), CRETO_EUSAGE);
	assert_int_equal(creto_hash_stream_new(CRETO_HASH_NONE, SH, 1, &s, &e), CRETO_EUSAGE);
	assert_int_equal(creto_hash_stream_new(CRETO_HASH_SHA3_256, (size_t)CRETO_HASH_STREAM_SHARD_MAX + 1, 1, &s, &e),
			 CRETO_EUSAGE);
	assert_null(s);
	creto_hash_stream_free(NULL);
	close(in);
	free(data);
}

/* A hang is a failure: SIGALRM ends the test program with a message. */
static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "test: blocked (a FIFO was waited on)\n";
	ssize_t w = write(2, msg, sizeof(msg) - 1);
	(void)w;
	_exit(99);
}

/* A FIFO where a file is expected (swapped in after a walk) is refused at
 * once: the pool never blocks in open(2) waiting for a writer.  SIGALRM
 * (default action: terminate) bounds the test if it would hang. */
static void test_pool_fifo(void **state)
{
	(void)state;
	char p[512];
	snprintf(p, sizeof(p), "%s/fifo", tmpdir);
	assert_int_equal(mkfifo(p, 0600), 0);
	int dfd = open(tmpdir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	creto_err e;
	signal(SIGALRM, on_alarm);
	alarm(20);
	creto_hash_range r = {.fd = -1, .dirfd = dfd, .path = "fifo", .length = 10};
	assert_int_equal(creto_hash_ranges(CRETO_HASH_SHA3_256, &r, 1, 1, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "fifo: not a regular file"));
	/* relative to the working directory (the O_NOFOLLOW fallback path) */
	r.dirfd = AT_FDCWD;
	r.path = p;
	assert_int_equal(creto_hash_ranges(CRETO_HASH_SHA256, &r, 1, 2, &e), CRETO_EREJECT);
	alarm(0);
	unlink(p);
	close(dfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_kat),
		cmocka_unit_test(test_stream),
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_pool_errors),
		cmocka_unit_test(test_pool_fifo),
		cmocka_unit_test(test_stream_engine),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
