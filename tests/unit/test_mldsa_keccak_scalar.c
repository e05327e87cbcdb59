/*
 * test_mldsa_keccak_scalar.c - test_mldsa_keccak.c again against this
 * program's own copy of mldsa_keccak.c built without GCC/clang vector
 * extensions (four scalar permutations: what other compilers get).  The
 * linker then does not pull the library's member.
 */
#define MLDSA_NO_VECTOR_EXT 1
#include "../../src/sig/mldsa/mldsa_keccak.c"
#define KECCAK_EXPECT_X4 "scalar"
#include "test_mldsa_keccak.c"
