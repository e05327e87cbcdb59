/*
 * test_mldsa_portable.c - the ACVP suite again (every third case of each group) with the AVX2 back end
 * switched off (CRETO_MLDSA_NO_AVX2=1, set before the first ML-DSA call),
 * so the portable double-precision NTT is tested on machines with AVX2 too.
 */
#include <stdlib.h>

__attribute__((constructor)) static void no_avx2(void)
{
	setenv("CRETO_MLDSA_NO_AVX2", "1", 1);
}

#define ACVP_EXPECT_BACKEND "portable"
#define ACVP_STRIDE 3 /* a third of the cases; test_mldsa_acvp runs all */
#include "test_mldsa_acvp.c"
