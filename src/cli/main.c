/*
 * main.c - the `creto` program: a table of command groups that also
 * generates `creto --help`.  Each group lives in src/cli/cmd_<group>.c.
 */
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "cli.h"

static const struct cli_cmd groups[] = {
	{"model", cmd_model, "<command> ...", "hash, manifest, sign and verify model directories"},
	{"key", cmd_key, "<command> ...", "generate signing keys, print public keys and key ids"},
	{"sign", cmd_sign, "--key KEY [--context STR] FILE -o FILE.sig", "sign a file"},
	{"verify", cmd_verify, "--pub KEY.pub [--context STR] FILE FILE.sig", "verify a file's signature"},
	{"hsm", cmd_hsm, "<command> ...", "PKCS#11 tokens and keys (SoftHSM2 or a hardware HSM)"},
	{"trust", cmd_trust, "<command> ...", "create, sign and show the enclave trust root"},
	{"update", cmd_update, "<command> ...", "create, sign, assemble, verify and apply .crupdate packages"},
	{"diode", cmd_diode, "watch DIR ...", "process packages arriving through the data diode"},
	{"nhi", cmd_nhi, "<command> ...", "agent identities: store, backups, tokens, resolve"},
	{"isolation", cmd_isolation, "<command> ...", "check that the enclave has no way out"},
	{"gateway", cmd_gateway, "--config FILE [--check]", "serve agents' inference requests to the local vLLM replicas"},
	{NULL, NULL, NULL, NULL},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: creto <group> <command> [options]\n\n"
		   "creto-airgap: verified updates, models and agent identities for air-gapped enclaves.\n\n"
		   "groups:\n");
	for (const struct cli_cmd *g = groups; g->name != NULL; g++)
		fprintf(f, "  %-10s %s\n", g->name, g->help);
	fprintf(f, "\n'creto <group> --help' lists a group's commands.\n"
		   "exit codes: 0 ok/verified, 1 rejected, 2 usage, 3 operational error\n");
}

/* creto holds PINs, private keys, data keys and tokens in memory: no core
 * file may carry them off, and no other process of the same user may read
 * this one's memory (ptrace, /proc/PID/mem).  Sanitizer builds keep the
 * process dumpable: LeakSanitizer attaches to its own threads. */
static void no_core(void)
{
	struct rlimit rl = {0, 0};
	(void)setrlimit(RLIMIT_CORE, &rl);
#ifndef CRETO_SANITIZE
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
}

int main(int argc, char **argv)
{
	no_core();
	if (argc < 2) {
		usage(stderr);
		return CRETO_EUSAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CRETO_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("creto %s\n", CRETO_VERSION);
		return CRETO_OK;
	}
	for (const struct cli_cmd *g = groups; g->name != NULL; g++)
		if (strcmp(g->name, argv[1]) == 0)
			return g->fn(argc - 1, argv + 1);
	fprintf(stderr, "creto: unknown group '%s'\n", argv[1]);
	usage(stderr);
	return CRETO_EUSAGE;
}
