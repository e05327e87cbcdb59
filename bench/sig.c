/*
 * bench/sig.c - ops/s of keygen, sign and verify for every creto algorithm
 * through the public API (what `creto` does, minus process start), and
 * hybrid verify beside its classical half verified alone.
 * Usage: bench_sig [CPU_SECONDS_PER_FIGURE]   (default 0.5)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "creto/sig.h"

/* CPU time of this process, as `openssl speed` measures by default (its
 * figures are per CPU second unless -elapsed), so that the two columns
 * compare even on a loaded machine. */
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum op { KEYGEN, SIGN, VERIFY };

static const uint8_t msg[64] = "creto-airgap benchmark message, 64 bytes long..................";

/* Run op repeatedly for secs; returns ops/s, or -1 on failure. */
static double run(enum op op, creto_alg alg, creto_signer *s, const creto_pubkey *pk, const uint8_t *sig,
		  size_t sl, double secs)
{
	creto_err e;
	long n = 0;
	double t0 = now(), t;
	do {
		for (int i = 0; i < 8; i++, n++) {
			if (op == KEYGEN) {
				creto_signer *g = NULL;
				if (creto_signer_generate(alg, &g, &e) != CRETO_OK)
					return -1;
				creto_signer_free(g);
			} else if (op == SIGN) {
				uint8_t *out = NULL;
				size_t ol = 0;
				if (creto_signer_sign(s, NULL, 0, msg, sizeof(msg), &out, &ol, &e) != CRETO_OK)
					return -1;
				free(out);
			} else if (creto_pubkey_verify(pk, NULL, 0, msg, sizeof(msg), sig, sl, &e) != CRETO_OK) {
				return -1;
			}
		}
		t = now() - t0;
	} while (t < secs);
	return (double)n / t;
}

int main(int argc, char **argv)
{
	static const creto_alg algs[] = {CRETO_ALG_ED25519, CRETO_ALG_ECDSA_P256, CRETO_ALG_ECDSA_P384,
					 CRETO_ALG_MLDSA44, CRETO_ALG_MLDSA65, CRETO_ALG_MLDSA87,
					 CRETO_ALG_HYBRID, CRETO_ALG_HYBRID_CNSA2};
	double secs = argc > 1 ? atof(argv[1]) : 0.5;
	double verify_rate[9] = {0};
	creto_err e;
	printf("%-14s %12s %12s %12s\n", "algorithm", "keygen/s", "sign/s", "verify/s");
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		creto_signer *s = NULL;
		uint8_t *sig = NULL;
		size_t sl = 0;
		if (creto_signer_generate(algs[i], &s, &e) != CRETO_OK ||
		    creto_signer_sign(s, NULL, 0, msg, sizeof(msg), &sig, &sl, &e) != CRETO_OK) {
			fprintf(stderr, "bench_sig: %s: %s\n", creto_alg_name(algs[i]), e.msg);
			return 3;
		}
		double kg = run(KEYGEN, algs[i], NULL, NULL, NULL, 0, secs);
		double sg = run(SIGN, algs[i], s, NULL, NULL, 0, secs);
		double vf = run(VERIFY, algs[i], NULL, creto_signer_pubkey(s), sig, sl, secs);
		verify_rate[algs[i]] = vf;
		printf("%-14s %12.0f %12.0f %12.0f\n", creto_alg_name(algs[i]), kg, sg, vf);
		free(sig);
		creto_signer_free(s);
	}
	printf("\nhybrid verify vs its classical half alone (goal: hybrid within 2x):\n");
	printf("  hybrid       %8.0f/s vs ed25519    %8.0f/s: %.2fx slower\n", verify_rate[CRETO_ALG_HYBRID],
	       verify_rate[CRETO_ALG_ED25519], verify_rate[CRETO_ALG_ED25519] / verify_rate[CRETO_ALG_HYBRID]);
	printf("  hybrid-cnsa2 %8.0f/s vs ecdsa-p384 %8.0f/s: %.2fx slower\n", verify_rate[CRETO_ALG_HYBRID_CNSA2],
	       verify_rate[CRETO_ALG_ECDSA_P384],
	       verify_rate[CRETO_ALG_ECDSA_P384] / verify_rate[CRETO_ALG_HYBRID_CNSA2]);
	return 0;
}
