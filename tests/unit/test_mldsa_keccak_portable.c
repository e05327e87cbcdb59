/*
 * test_mldsa_keccak_portable.c - test_mldsa_keccak.c again with the AVX2
 * four-way permutation switched off (CRETO_MLDSA_NO_AVX2=1, set before the
 * first call), so the baseline generic-vector version is tested on
 * machines with AVX2 too.
 */
#include <stdlib.h>

__attribute__((constructor)) static void no_avx2(void)
{
	setenv("CRETO_MLDSA_NO_AVX2", "1", 1);
}

#define KECCAK_EXPECT_X4 "vector"
#include "test_mldsa_keccak.c"
