/*
 * test_hash_mapwin.c - the pool's mapped reading (src/hash/mapwin.c): files
 * hashed from mapped 4 MiB windows give OpenSSL's digests (ranges crossing
 * windows at odd offsets, ranges just above and below the mapping
 * threshold in one batch, shards of several sizes, 1 and 2 threads); a
 * range longer than its file is refused as with pread; the SIGBUS guard
 * (a window whose file was truncated: the fault comes back as an error,
 * twice in a row, so the signal is usable again afterwards; a SIGBUS
 * outside every window reaches the handler installed before ours); and a
 * file truncated while the pool hashes it: a clean "file changed while
 * being hashed", never the end of the process.  The mapped path is the
 * lanes' path: the tests force the widest back end the CPU has
 * (sha3x_force); on a CPU without one, the pool tests check pread's
 * digests only (said in a note).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "creto/hash.h"
#include "hash/mapwin.h"
#include "hash/sha3x.h"

#define HASH_TESTFILES_NAME "test_hash_mapwin"
#include "hash_testfiles.h"

#define MIB (1u << 20)
#define W MAPWIN_SIZE
#define R SHA3X_RATE

/* ---- the handler that was there before ours ---- */
static sigjmp_buf prev_jb;
static volatile sig_atomic_t prev_hits;

/* The engine's handler, as installed in main: cmocka puts its own SIGBUS
 * handler in place around every test (with signal(2), which also drops
 * SA_SIGINFO when it puts the old one back), and the engine then reads
 * with pread (mapwin_available() sees a handler that is not its own).
 * Each test puts the engine's handler back for its duration. */
static struct sigaction engine_sa;

struct sa_keep {
	struct sigaction was;
};

static void engine_handler_on(struct sa_keep *k)
{
	assert_int_equal(sigaction(SIGBUS, &engine_sa, &k->was), 0);
	assert_int_equal(mapwin_available(), 1);
}

static void engine_handler_off(struct sa_keep *k)
{
	assert_int_equal(sigaction(SIGBUS, &k->was, NULL), 0);
	assert_int_equal(mapwin_available(), 0);
}

static void prev_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	prev_hits++;
	siglongjmp(prev_jb, 1);
}

static void test_pool_mapped_digests(void **state)
{
	(void)state;
	sha3x_impl im = sha3x_choose(0);
	if (sha3x_impl_lanes(im) < 2)
		print_message("[   NOTE   ] back end %s: one lane, the pool reads with pread only\n",
			      sha3x_impl_name(im));
	struct sa_keep keep;
	engine_handler_on(&keep);
	size_t big = 3 * W + 5 * MIB + 777;
	int fd = make_file("big.bin", big, 1);
	int fd2 = make_file("small.bin", MAPWIN_MIN + 3 * R, 2);
	for (unsigned th = 1; th <= 2; th++) {
		creto_hash_range r[] = {
			{.fd = fd, .length = big},
			{.fd = fd, .offset = W - 1, .length = W + MIB + 3},       /* across windows */
			{.fd = fd, .offset = MIB + 137, .length = 2 * W},         /* odd start */
			{.fd = fd, .offset = 2 * W, .length = W},                 /* exactly a window */
			{.fd = fd, .offset = 5, .length = MAPWIN_MIN},            /* the threshold */
			{.fd = fd, .offset = 9, .length = MAPWIN_MIN - 1},        /* pread */
			{.fd = fd2, .length = MAPWIN_MIN + 3 * R},
			{.fd = fd2, .offset = 1, .length = 1000},
			{.fd = fd, .offset = big - W - 3, .length = W + 3},       /* to the end */
		};
		size_t n = sizeof(r) / sizeof(r[0]);
		for (size_t i = 0; i < n; i++)
			r[i].dirfd = AT_FDCWD;
		creto_err e;
		if (creto_hash_ranges(CRETO_HASH_SHA3_256, r, n, th, &e) != CRETO_OK)
			fail_msg("pool: %s", e.msg);
		for (size_t i = 0; i < n; i++) {
			uint8_t want[32];
			ref_range(r[i].fd, r[i].offset, r[i].length, want);
			if (memcmp(want, r[i].digest, 32) != 0)
				fail_msg("range %zu (+%llu, %llu bytes, %u threads): wrong digest", i,
					 (unsigned long long)r[i].offset, (unsigned long long)r[i].length,
					 th);
		}
		uint64_t shard[] = {MAPWIN_MIN - 1, MAPWIN_MIN, 3 * MIB + 5, W, W + R, 64 * MIB};
		for (unsigned s = 0; s < sizeof(shard) / sizeof(shard[0]); s++) {
			uint8_t *d = NULL;
			size_t ns = 0;
			assert_int_equal(creto_hash_file_shards(CRETO_HASH_SHA3_256, fd, big, shard[s], th,
								"big.bin", &d, &ns, &e),
					 CRETO_OK);
			for (size_t i = 0; i < ns; i++) {
				uint64_t off = i * shard[s];
				uint64_t len = big - off < shard[s] ? big - off : shard[s];
				uint8_t want[32];
				ref_range(fd, off, len, want);
				if (memcmp(want, d + 32 * i, 32) != 0)
					fail_msg("shard %zu of %zu (size %llu, %u threads): wrong digest", i,
						 ns, (unsigned long long)shard[s], th);
			}
			free(d);
		}
	}
	/* a range one byte longer than the file, among good ones: refused as
	 * with pread (the window is not mapped past the end) */
	for (unsigned bad = 0; bad < 3; bad++) {
		creto_hash_range r[3];
		for (unsigned i = 0; i < 3; i++)
			r[i] = (creto_hash_range){.fd = fd, .dirfd = AT_FDCWD, .path = "big.bin",
						  .length = 2 * W + 1};
		r[bad].offset = big - 2 * W;
		r[bad].length = 2 * W + 1;
		creto_err e;
		assert_int_equal(creto_hash_ranges(CRETO_HASH_SHA3_256, r, 3, 1, &e), CRETO_EOP);
		assert_non_null(strstr(e.msg, "big.bin: file changed while being hashed"));
	}
	close(fd);
	close(fd2);
	engine_handler_off(&keep);
}

/* ---- the guard itself ---- */
struct touch {
	const volatile uint8_t *p;
	size_t len;
	unsigned sum;
};

static int touch_fn(void *arg)
{
	struct touch *t = arg;
	for (size_t i = 0; i < t->len; i += 512)
		t->sum += t->p[i];
	return 7;
}

static void test_guard(void **state)
{
	(void)state;
	struct sa_keep keep;
	engine_handler_on(&keep);
	int fd = make_file("guard.bin", 2 * W + 100, 3);
	for (int round = 0; round < 2; round++) {
		mapwin a, b;
		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		assert_int_equal(mapwin_map(&a, fd, 0, 2 * W + 100), 0);
		assert_int_equal(mapwin_map(&b, fd, W + 5, 2 * W + 100), 0);
		assert_int_equal(a.off, 0);
		assert_int_equal(a.end, W);
		assert_int_equal(b.off, W);
		assert_int_equal(b.end, 2 * W);
		assert_true(mapwin_has(&b, W + 5) && !mapwin_has(&b, 2 * W) && !mapwin_has(&a, W));
		mapwin *ws[2] = {&a, &b};
		int fault = 0;
		/* intact: the function's result, no fault */
		struct touch t = {mapwin_ptr(&b, W), W, 0};
		assert_int_equal(mapwin_guarded(ws, 2, touch_fn, &t, &fault), 7);
		assert_int_equal(fault, -1);
		/* the file shrinks to one window: reading b faults, and the fault
		 * comes back as b's index */
		assert_int_equal(ftruncate(fd, W), 0);
		t = (struct touch){mapwin_ptr(&b, W), W, 0};
		assert_int_equal(mapwin_guarded(ws, 2, touch_fn, &t, &fault), -1);
		assert_int_equal(fault, 1);
		/* a still reads (its bytes are all inside the file) */
		t = (struct touch){mapwin_ptr(&a, 0), W, 0};
		assert_int_equal(mapwin_guarded(ws, 2, touch_fn, &t, &fault), 7);
		assert_int_equal(fault, -1);
		/* a window past the end is not mapped at all */
		mapwin c;
		memset(&c, 0, sizeof(c));
		assert_int_equal(mapwin_map(&c, fd, W + 1, 2 * W), EOVERFLOW);
		assert_null(c.map);
		mapwin_unmap(&a);
		mapwin_unmap(&b);
		close(fd);
		fd = make_file("guard.bin", 2 * W + 100, 3);
	}
	/* a SIGBUS outside every window is not ours: the handler installed
	 * before ours gets it */
	void *m = mmap(NULL, 2 * 4096, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	assert_int_equal(ftruncate(fd, 0), 0);
	prev_hits = 0;
	if (sigsetjmp(prev_jb, 1) == 0) {
		volatile const uint8_t *q = m;
		(void)q[4096];
		fail_msg("reading past the end of a truncated file did not raise SIGBUS");
	}
	assert_int_equal(prev_hits, 1);
	munmap(m, 2 * 4096);
	assert_int_equal(mapwin_available(), 1);
	close(fd);
	engine_handler_off(&keep);
}

/* ---- a file truncated while the pool hashes it ---- */
struct cutter {
	char path[600];
	int fd;
	int cut;
};

/* Waits until the pool has a window of the file mapped (/proc/self/maps),
 * then truncates it to nothing. */
static void *cut_when_mapped(void *arg)
{
	struct cutter *c = arg;
	for (int i = 0; i < 200000 && !c->cut; i++) {
		FILE *f = fopen("/proc/self/maps", "r");
		if (f == NULL)
			break;
		char line[1024];
		int seen = 0;
		while (!seen && fgets(line, sizeof(line), f) != NULL)
			seen = strstr(line, c->path) != NULL;
		fclose(f);
		if (seen) {
			if (ftruncate(c->fd, 0) == 0)
				c->cut = 1;
			break;
		}
	}
	return NULL;
}

static void test_truncated_while_hashing(void **state)
{
	(void)state;
	sha3x_impl im = sha3x_choose(0);
	if (sha3x_impl_lanes(im) < 2) {
		print_message("[   NOTE   ] back end %s: no mapped reading, test not run\n",
			      sha3x_impl_name(im));
		return;
	}
	struct sa_keep keep;
	engine_handler_on(&keep);
	int errors = 0;
	for (int attempt = 0; attempt < 10 && errors < 3; attempt++) {
		size_t size = 8 * 8 * MIB;
		int fd = make_file("cut.bin", size, 4);
		struct cutter c;
		memset(&c, 0, sizeof(c));
		path_of("cut.bin", c.path, sizeof(c.path));
		c.fd = fd;
		creto_hash_range r[8];
		for (unsigned i = 0; i < 8; i++)
			r[i] = (creto_hash_range){.fd = fd, .dirfd = AT_FDCWD, .path = "cut.bin",
						  .offset = (uint64_t)i * 8 * MIB, .length = 8 * MIB};
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, cut_when_mapped, &c), 0);
		creto_err e;
		int rc = creto_hash_ranges(CRETO_HASH_SHA3_256, r, 8, 1, &e);
		c.cut = 1; /* the pool is done: stop looking */
		pthread_join(t, NULL);
		if (rc != CRETO_OK) {
			/* the process is still here, and the error says what happened */
			assert_int_equal(rc, CRETO_EOP);
			if (strstr(e.msg, "cut.bin: file changed while being hashed") == NULL)
				fail_msg("unexpected error: %s", e.msg);
			if (errors++ == 0)
				print_message("[   NOTE   ] cut while hashing: %s\n", e.msg);
		}
		close(fd);
	}
	/* the cutter waits for a mapping, and hashing 64 MiB takes far longer
	 * than a look at /proc/self/maps: most attempts are cut mid-hash */
	assert_true(errors > 0);
	/* and hashing works afterwards (SIGBUS usable again in this thread) */
	int fd = make_file("after.bin", 2 * W, 5);
	creto_hash_range r[2] = {{.fd = fd, .dirfd = AT_FDCWD, .length = 2 * W},
				 {.fd = fd, .dirfd = AT_FDCWD, .offset = 1, .length = W}};
	creto_err e;
	assert_int_equal(creto_hash_ranges(CRETO_HASH_SHA3_256, r, 2, 1, &e), CRETO_OK);
	uint8_t want[32];
	ref_range(fd, 0, 2 * W, want);
	assert_memory_equal(want, r[0].digest, 32);
	close(fd);
	engine_handler_off(&keep);
}

int main(void)
{
	/* a SIGBUS handler before the engine's, as an application might have */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = prev_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) != 0)
		return 1;
	/* the mapped path is the lanes' path: run it on the widest back end
	 * this CPU has, even where the calibration would pick OpenSSL (a
	 * sanitizer build slows the kernels down) */
	if (sha3x_impl_available(SHA3X_IMPL_AVX512))
		sha3x_force(SHA3X_IMPL_AVX512);
	else if (sha3x_impl_available(SHA3X_IMPL_AVX2))
		sha3x_force(SHA3X_IMPL_AVX2);
	/* the engine's handler goes in over it (and remembers it) */
	if (mapwin_available() != 1 || sigaction(SIGBUS, NULL, &engine_sa) != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_mapped_digests),
		cmocka_unit_test(test_guard),
		cmocka_unit_test(test_truncated_while_hashing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
