/*
 * test_sha3x_noavx2.c - test_sha3x.c again with CRETO_SHA3_NO_AVX2=1 set
 * before the first call: neither AVX2 nor AVX-512 (a superset) may be
 * used, and every test runs on OpenSSL and the scalar kernel only.
 */
#include <stdlib.h>

__attribute__((constructor)) static void no_avx2(void)
{
	setenv("CRETO_SHA3_NO_AVX2", "1", 1);
}

#define SHA3X_EXPECT_NO "avx2,avx512"
#include "test_sha3x.c"
