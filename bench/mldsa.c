/*
 * bench/mldsa.c - single-threaded ML-DSA keygen / sign / verify throughput.
 * Usage: bench_mldsa [SECONDS_PER_OP] [44|65|87]...   (default 1 s, all sets)
 * Prints one line per parameter set: keygen/s, sign/s and verify/s with one
 * key (the per-thread cache of the expanded matrix A hits), then sign/s and
 * verify/s alternating between two keys (every call expands A: the cost of
 * a one-off signature or verification).
 * Signing is hedged (fresh rnd per call) over a 64-byte message, empty context.
 * Time is the thread's CPU time (as `openssl speed` counts by default), and
 * each figure is the best of 10 rounds, so other load on a shared machine
 * lowers the figures less.
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sig/mldsa/mldsa.h"
#include "sig/mldsa/mldsa_keccak.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

enum { OP_KEYGEN, OP_SIGN, OP_VERIFY, OP_SIGN_COLD, OP_VERIFY_COLD };

/* A second key pair and signature: the cold rows alternate between the two
 * keys so that every call misses the per-thread cache of the expanded A. */
static uint8_t pk2[CRETO_MLDSA_PK_MAX], sk2[CRETO_MLDSA_SK_MAX], sig2[CRETO_MLDSA_SIG_MAX];

/* Operations per CPU-second over one round of about secs seconds. */
static double round_rate(int op, creto_mldsa_ps ps, double secs, uint8_t *pk, uint8_t *sk,
			 uint8_t *sig, const uint8_t *msg)
{
	uint8_t seed[32], rnd[32];
	static long n = 0; /* keeps seeds and rnd distinct across rounds */
	long n0 = n;
	double t0 = now(), t;
	do {
		for (int i = 0; i < 8; i++, n++) {
			int rc = 0;
			switch (op) {
			case OP_KEYGEN:
				memset(seed, 0, sizeof(seed));
				memcpy(seed, &n, sizeof(n));
				rc = creto_mldsa_keygen(ps, seed, pk, sk);
				break;
			case OP_SIGN:
				memcpy(rnd, &n, sizeof(n));
				rc = creto_mldsa_sign(ps, sk, NULL, 0, msg, 64, rnd, sig);
				break;
			case OP_VERIFY:
				rc = creto_mldsa_verify(ps, pk, NULL, 0, msg, 64, sig,
							creto_mldsa_sig_bytes(ps));
				break;
			case OP_SIGN_COLD:
				memcpy(rnd, &n, sizeof(n));
				rc = creto_mldsa_sign(ps, (n & 1) ? sk2 : sk, NULL, 0, msg, 64, rnd,
						      sig2);
				break;
			case OP_VERIFY_COLD:
				rc = creto_mldsa_verify(ps, (n & 1) ? pk2 : pk, NULL, 0, msg, 64,
							(n & 1) ? sig2 : sig, creto_mldsa_sig_bytes(ps));
				break;
			}
			if (rc != 0) {
				fprintf(stderr, "bench_mldsa: operation failed\n");
				exit(3);
			}
		}
		t = now() - t0;
	} while (t < secs);
	return (double)(n - n0) / t;
}

/* Best of ROUNDS rounds: the machine may be shared, and interference only
 * ever lowers a round's figure. */
#define ROUNDS 10
static double rate(int op, creto_mldsa_ps ps, double secs, uint8_t *pk, uint8_t *sk, uint8_t *sig,
		   const uint8_t *msg)
{
	double best = 0;
	for (int r = 0; r < ROUNDS; r++) {
		double v = round_rate(op, ps, secs / ROUNDS, pk, sk, sig, msg);
		if (v > best)
			best = v;
	}
	return best;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	if (secs <= 0)
		secs = 1.0;
	creto_mldsa_ps all[3] = {CRETO_MLDSA_44, CRETO_MLDSA_65, CRETO_MLDSA_87};
	creto_mldsa_ps sets[3];
	int nsets = 0;
	for (int i = 2; i < argc && nsets < 3; i++)
		sets[nsets++] = (creto_mldsa_ps)atoi(argv[i]);
	if (nsets == 0) {
		memcpy(sets, all, sizeof(all));
		nsets = 3;
	}
	static uint8_t pk[CRETO_MLDSA_PK_MAX], sk[CRETO_MLDSA_SK_MAX], sig[CRETO_MLDSA_SIG_MAX];
	uint8_t msg[64], seed[32], rnd[32];
	if (RAND_bytes(msg, sizeof(msg)) != 1 || RAND_bytes(seed, sizeof(seed)) != 1 ||
	    RAND_bytes(rnd, sizeof(rnd)) != 1)
		return 3;
	printf("back end: %s (NTT), %s (multi-way Keccak, %u states per call)\n",
	       creto_mldsa_backend(), mldsa_keccak_x4_impl(), mldsa_keccak_xn_width());
	printf("%-10s %10s %10s %10s %12s %12s\n", "algorithm", "keygen/s", "sign/s", "verify/s",
	       "sign-cold/s", "verify-cold/s");
	for (int i = 0; i < nsets; i++) {
		creto_mldsa_ps ps = sets[i];
		if (creto_mldsa_pk_bytes(ps) == 0) {
			fprintf(stderr, "bench_mldsa: unknown parameter set %d\n", (int)ps);
			return 2;
		}
		if (creto_mldsa_keygen(ps, seed, pk, sk) != 0 ||
		    creto_mldsa_sign(ps, sk, NULL, 0, msg, 64, rnd, sig) != 0)
			return 3;
		double kg = rate(OP_KEYGEN, ps, secs, pk, sk, sig, msg);
		/* keygen overwrote the key pair: sign and verify with a fresh one */
		if (creto_mldsa_keygen(ps, seed, pk, sk) != 0 ||
		    creto_mldsa_sign(ps, sk, NULL, 0, msg, 64, rnd, sig) != 0)
			return 3;
		double sg = rate(OP_SIGN, ps, secs, pk, sk, sig, msg);
		if (creto_mldsa_sign(ps, sk, NULL, 0, msg, 64, rnd, sig) != 0)
			return 3;
		double vf = rate(OP_VERIFY, ps, secs, pk, sk, sig, msg);
		seed[0] ^= 1;
		if (creto_mldsa_keygen(ps, seed, pk2, sk2) != 0 ||
		    creto_mldsa_sign(ps, sk2, NULL, 0, msg, 64, rnd, sig2) != 0)
			return 3;
		seed[0] ^= 1;
		double sgc = rate(OP_SIGN_COLD, ps, secs, pk, sk, sig, msg);
		if (creto_mldsa_sign(ps, sk2, NULL, 0, msg, 64, rnd, sig2) != 0)
			return 3;
		double vfc = rate(OP_VERIFY_COLD, ps, secs, pk, sk, sig, msg);
		printf("ML-DSA-%-3d %10.0f %10.0f %10.0f %12.0f %12.0f\n", (int)ps, kg, sg, vf, sgc,
		       vfc);
	}
	return 0;
}
