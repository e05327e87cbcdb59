/*
 * test_mldsa_scalar.c - the whole ACVP suite again, against the double
 * precision NTT without GCC/clang vector extensions (the plain C loops
 * other compilers get).  Same linking trick as test_mldsa_int.c.
 */
#define MLDSA_NO_VECTOR_EXT 1
#include "../../src/sig/mldsa/mldsa_poly.c"
#include "test_mldsa_acvp.c"
