/*
 * test_mldsa_int.c - the ACVP suite again (every third case of each group), against the 32-bit
 * Montgomery integer NTT back end (the one used where doubles are not IEEE
 * binary64 without excess precision).  This program's own copy of
 * mldsa_poly.c, built with MLDSA_NO_FP_NTT, takes the place of the
 * library's (the linker then does not pull the library's member).
 */
#define MLDSA_NO_FP_NTT 1
#include "../../src/sig/mldsa/mldsa_poly.c"
#define ACVP_EXPECT_BACKEND "integer"
#define ACVP_STRIDE 3 /* a third of the cases; test_mldsa_acvp runs all */
#include "test_mldsa_acvp.c"
