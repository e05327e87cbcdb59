/*
 * test_hash_sha3x_noavx512.c - test_hash_sha3x.c again with CRETO_SHA3_NO_AVX512=1 set
 * before the first hash: the pool runs on no AVX-512 (AVX2 lanes if the CPU has AVX2 and it beats OpenSSL).
 */
#include <stdlib.h>

__attribute__((constructor)) static void switch_off(void)
{
	setenv("CRETO_SHA3_NO_AVX512", "1", 1);
}

#include "test_hash_sha3x.c"
