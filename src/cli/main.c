/*
 * main.c - the `creto` program: a table of command groups that also
 * generates `creto --help`.  Each group lives in src/cli/cmd_<group>.c.
 */
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "cli.h"
#include "util/escape.h"

static const struct cli_cmd groups[] = {
	{"model", cmd_model, "<command> ...", "hash, manifest, sign and verify model directories"},
	{"key", cmd_key, "<command> ...", "generate signing keys, print public keys and key ids"},
	{"sign", cmd_sign, "--key KEY [--context STR] FILE -o FILE.sig", "sign a file"},
	{"verify", cmd_verify, "--pub KEY.pub [--context STR] FILE FILE.sig", "verify a file's signature"},
	{"hsm", cmd_hsm, "<command> ...", "PKCS#11 tokens and keys (SoftHSM2 or a hardware HSM)"},
	{"trust", cmd_trust, "<command> ...", "create, sign and show the enclave trust root"},
	{"update", cmd_update, "<command> ...", "create, sign, assemble, verify and apply .crupdate packages"},
	{"state", cmd_state, "init --state DIR --trust ROOT.json", "create the state directory updates are applied to"},
	{"diode", cmd_diode, "watch DIR ...", "process packages arriving through the data diode"},
	{"nhi", cmd_nhi, "<command> ...", "agent identities: store, backups, tokens, resolve"},
	{"isolation", cmd_isolation, "<command> ...", "check that the enclave has no way out"},
	{"lint", cmd_lint, "[--json|--sarif] [--registry R]... FILE|DIR...", "check Kubernetes YAML for air-gap mistakes"},
	{"audit", cmd_audit, "<command> ...", "the tamper-evident audit log: append, show, prove, verify"},
	{"gateway", cmd_gateway, "--config FILE [--check]", "serve agents' inference requests to the local vLLM replicas"},
	{"serve", cmd_serve, "[--config FILE] [--user U] [--log-format text|json]", "the enclave's daemon: diode watcher, gateway, isolation monitor, audit"},
	{"config", cmd_config, "check [--config FILE] [--json]", "validate the creto config file and what it names"},
	{NULL, NULL, NULL, NULL},
};

/* Each group's subcommand table for the man pages and bash completion
 * (cli_doc.c): a new group adds its line here too, or its page is only its
 * line above.  doc: the file in docs/ with the details. */
static const struct cli_doc_group doc_groups[] = {
	{"model", cmd_model_table, "model-manifest.md"},
	{"key", cmd_key_table, "keys.md"},
	{"sign", cmd_sign_table, "signatures.md"},
	{"verify", cmd_verify_table, "signatures.md"},
	{"hsm", cmd_hsm_table, "keys.md"},
	{"trust", cmd_trust_table, "trust-root.md"},
	{"update", cmd_update_table, "crupdate.md"},
	{"state", cmd_state_table, "crupdate.md"},
	{"diode", cmd_diode_table, "crupdate.md"},
	{"diode quarantine", cmd_diode_quarantine_table, NULL},
	{"nhi", cmd_nhi_table, "nhi.md"},
	{"isolation", cmd_isolation_table, "isolation.md"},
	{"lint", cmd_lint_table, "lint.md"},
	{"audit", cmd_audit_table, "audit.md"},
	{"gateway", cmd_gateway_table, "gateway.md"},
	{"serve", cmd_serve_table, "serve.md"},
	{"config", cmd_config_table, "config.md"},
	{NULL, NULL, NULL},
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
	cli_scan_flags(argc, argv);
	cli_set_context(NULL, NULL);
	if (argc < 2) {
		usage(stderr);
		return CRETO_EUSAGE;
	}
	/* help and version only alone: never a verdict (cli.h, cli_dispatch) */
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		if (argc != 2)
			return cli_usage_error("%s takes no other arguments", argv[1][0] == '-' ? "-h/--help" : "help");
		usage(stdout);
		return CRETO_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		if (argc != 2 && !(argc == 3 && strcmp(argv[2], "--json") == 0))
			return cli_usage_error("--version takes no other arguments than --json");
		if (cli_json())
			return cli_json_out(json_pack("{s:b, s:s}", "ok", 1, "version", CRETO_VERSION));
		printf("creto %s\n", CRETO_VERSION);
		return CRETO_OK;
	}
	/* hidden: the man pages and completion, generated at build time */
	if (strcmp(argv[1], "__man") == 0 || strcmp(argv[1], "__completion") == 0)
		return cli_doc_main(groups, doc_groups, argc - 1, argv + 1);
	char names[256] = "";
	for (const struct cli_cmd *g = groups; g->name != NULL; g++) {
		if (strcmp(g->name, argv[1]) == 0) {
			cli_set_context(g->name, NULL);
			return g->fn(argc - 1, argv + 1);
		}
		size_t l = strlen(names);
		snprintf(names + l, sizeof(names) - l, "%s%s", l ? ", " : "", g->name);
	}
	char tok[80];
	size_t tl = strnlen(argv[1], 64);
	(void)creto_escape(tok, sizeof(tok), argv[1], tl);
	(void)cli_usage_error("unknown group '%s' (one of: %s)", tok, names);
	usage(stderr);
	return CRETO_EUSAGE;
}
