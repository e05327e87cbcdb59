/*
 * test_sha3x_noavx512.c - test_sha3x.c again with CRETO_SHA3_NO_AVX512=1
 * set before the first call: AVX-512 is off, AVX2 stays if the CPU has it
 * (the choice then is AVX2 or OpenSSL, by calibration).
 */
#include <stdlib.h>

__attribute__((constructor)) static void no_avx512(void)
{
	setenv("CRETO_SHA3_NO_AVX512", "1", 1);
}

#define SHA3X_EXPECT_NO "avx512"
#include "test_sha3x.c"
