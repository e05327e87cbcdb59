/*
 * test_hash_sha3x_noavx2.c - test_hash_sha3x.c again with CRETO_SHA3_NO_AVX2=1 set
 * before the first hash: the pool runs on neither AVX2 nor AVX-512 (the one-stream OpenSSL loop).
 */
#include <stdlib.h>

__attribute__((constructor)) static void switch_off(void)
{
	setenv("CRETO_SHA3_NO_AVX2", "1", 1);
}

#include "test_hash_sha3x.c"
