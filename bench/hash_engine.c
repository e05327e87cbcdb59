/*
 * bench/hash_engine.c - which SHA3-256 back end the hashing pool and the
 * streams use in this process (creto_hash_engine: the calibrated choice,
 * after the CRETO_SHA3_NO_* switches and FIPS), and the calibration's
 * figures per back end.  For bench/model_hash.sh and bench/update.sh, which
 * print them beside their measurements.
 * Usage: bench_hash_engine        Output: "engine NAME" and
 *   "calibration openssl=MB/s scalar=MB/s avx2=MB/s avx512=MB/s" (one
 *   thread, MB = 10^6 bytes; 0 when the back end is not available).
 */
#include <stdio.h>

#include "creto/hash.h"
#include "hash/sha3x.h"

int main(void)
{
	printf("engine %s%s\n", creto_hash_engine(CRETO_HASH_SHA3_256),
	       creto_hash_fips() ? " (fips)" : "");
	printf("calibration");
	for (int i = 1; i < SHA3X_IMPL_COUNT; i++)
		printf(" %s=%.0f", sha3x_impl_name((sha3x_impl)i),
		       sha3x_calibrated_rate((sha3x_impl)i) / 1e6);
	printf("\n");
	return 0;
}
