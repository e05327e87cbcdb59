/*
 * hash_testfiles.h - helpers shared by the SHA3 pool and mapped-window
 * tests (test_hash_sha3x.c, test_hash_mapwin.c): a private temp directory,
 * files of reproducible pseudo-random bytes, and the reference SHA3-256 of
 * a byte range (OpenSSL over a pread copy).  Include after cmocka.h; the
 * includer defines HASH_TESTFILES_NAME (the temp directory's prefix).
 */
#ifndef CRETO_TESTS_HASH_TESTFILES_H
#define CRETO_TESTS_HASH_TESTFILES_H

#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tmpdir.h"

static char tmpdir[512];

static int setup(void **state)
{
	(void)state;
	return tmpdir_make(tmpdir, sizeof(tmpdir), HASH_TESTFILES_NAME);
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove(tmpdir);
}

static void path_of(const char *name, char *p, size_t n)
{
	snprintf(p, n, "%s/%s", tmpdir, name);
}

/* (Re)writes name with size pseudo-random bytes; returns an O_RDWR fd. */
static int make_file(const char *name, size_t size, unsigned seed)
{
	char p[600];
	path_of(name, p, sizeof(p));
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	static uint8_t buf[1 << 16];
	uint32_t v = 0x9e3779b9u * (seed + 1);
	for (size_t done = 0; done < size;) {
		size_t n = size - done < sizeof(buf) ? size - done : sizeof(buf);
		for (size_t i = 0; i < n; i++) {
			v = v * 1664525u + 1013904223u;
			buf[i] = (uint8_t)(v >> 24);
		}
		assert_int_equal(write(fd, buf, n), (ssize_t)n);
		done += n;
	}
	return fd;
}

/* SHA3-256 of [off, off + len) of fd, by OpenSSL over a pread copy. */
static void ref_range(int fd, uint64_t off, uint64_t len, uint8_t out[32])
{
	uint8_t *m = malloc(len ? len : 1);
	assert_non_null(m);
	assert_int_equal(pread(fd, m, len, (off_t)off), (ssize_t)len);
	unsigned n = 0;
	assert_int_equal(EVP_Digest(m, len, out, &n, EVP_sha3_256(), NULL), 1);
	free(m);
}

#endif
