/*
 * test_mldsa_scalar.c - the ACVP suite again (every third case of each group), against the double
 * precision NTT without GCC/clang vector extensions (the plain C loops
 * other compilers get), with this program's own Keccak built the same way
 * (four scalar permutations for the four-way one).  Same linking trick as
 * test_mldsa_int.c.
 */
#define MLDSA_NO_VECTOR_EXT 1
#include "../../src/sig/mldsa/mldsa_poly.c"
#include "../../src/sig/mldsa/mldsa_keccak.c"
#define ACVP_EXPECT_BACKEND "portable"
#define ACVP_STRIDE 3 /* a third of the cases; test_mldsa_acvp runs all */
#include "test_mldsa_acvp.c"
