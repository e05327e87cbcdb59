/*
 * cmd_key.c - `creto key gen|pub|id`, `creto sign` and `creto verify`:
 * key files and detached signatures of files (docs/signatures.md).
 * Keys are opened through creto/keys.h, so a pkcs11: URI works wherever a
 * key file does.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "creto/keys.h"
#include "creto/sig.h"
#include "util/file.h"

/* Largest file `creto sign` / `creto verify` read into memory. */
#define SIGN_FILE_MAX ((size_t)1 << 30)

/* key pub / key id: a file is read once and its kind told from its tag,
 * so a damaged file gets the error of its own format. */
static int open_pub(const char *ref, const creto_keys_opts *ko, creto_pubkey **pk, creto_err *e)
{
	if (creto_keys_is_pkcs11(ref))
		return creto_keys_open_pubkey(ref, ko, pk, e);
	return creto_key_load_public(ref, pk, e);
}

/* The usage error of a command line whose options parsed but whose
 * required option (missing, when not NULL) or operand count (want) is
 * wrong: one line saying which, then the usage. */
static int operands(const char *group, const struct cli_cmd *cmd, const char *missing, int argc, char **argv,
		    int want)
{
	int got = argc - optind;
	if (missing != NULL)
		(void)cli_usage_error("%s", missing);
	else if (got > want)
		(void)cli_usage_error("unexpected argument '%.64s' (%d operand%s expected)", argv[optind + want],
				      want, want == 1 ? "" : "s");
	else
		(void)cli_usage_error("%d operand%s expected, %d given", want, want == 1 ? "" : "s", got);
	return cli_usage(group, cmd);
}

enum { OPT_JSON = 1000, OPT_MODULE, OPT_PIN_FILE, OPT_CONTEXT, OPT_RAW };

/* The context of `creto sign` / `creto verify` unless --context or --raw:
 * a signature made for a file can then never stand for a statement, a trust
 * root, a DSSE envelope or a JWS token made with the same key (docs/
 * signatures.md "Contexts"). */
#define FILE_CTX "creto-file-v1"

static int cmd_key_gen(int argc, char **argv);
static int cmd_key_pub(int argc, char **argv);
static int cmd_key_id(int argc, char **argv);

static const struct cli_cmd key_cmds[] = {
	{"gen", cmd_key_gen, "[--alg ALG] -o NAME [--json]",
	 "write NAME.key (0600) and NAME.pub; ALG: ed25519, ecdsa-p256, ecdsa-p384, ml-dsa-44, "
	 "ml-dsa-65, ml-dsa-87, hybrid (default), hybrid-cnsa2"},
	{"pub", cmd_key_pub, "KEY [--json] [--module SO] [--pin-file F]",
	 "print the public key file of a secret key file or pkcs11: URI"},
	{"id", cmd_key_id, "FILE [--json] [--module SO] [--pin-file F]",
	 "print the key id of a public/secret key file, a signature file or a pkcs11: URI"},
	{NULL, NULL, NULL, NULL},
};

static const struct cli_cmd sign_cmd = {"", NULL, "--key KEY [--context STR | --raw] FILE -o FILE.sig [--json] "
						  "[--module SO] [--pin-file F]",
					"sign FILE with a key file or pkcs11: URI; context " FILE_CTX
					" unless --context; --raw signs the bytes as they are (interop only: "
					"never with a key that signs tokens, models or updates)"};
static const struct cli_cmd verify_cmd = {"", NULL, "--pub KEY.pub [--context STR | --raw] FILE FILE.sig [--json] "
						      "[--module SO] [--pin-file F]",
					  "verify FILE.sig over FILE (exit 0 valid, 1 invalid); context "
					  FILE_CTX " unless --context or --raw"};
const struct cli_cmd *cmd_key_table(void) { return key_cmds; } /* docs: cli_doc.c */
const struct cli_cmd *cmd_sign_table(void) { return &sign_cmd; } /* docs: cli_doc.c */
const struct cli_cmd *cmd_verify_table(void) { return &verify_cmd; } /* docs: cli_doc.c */

int cmd_key(int argc, char **argv)
{
	return cli_dispatch("key", key_cmds, argc, argv);
}

static int cmd_key_gen(int argc, char **argv)
{
	static const struct option opts[] = {{"alg", required_argument, NULL, 'a'},
					     {"out", required_argument, NULL, 'o'},
					     {"json", no_argument, NULL, OPT_JSON},
					     {NULL, 0, NULL, 0}};
	const char *algname = "hybrid", *name = NULL;
	int json = 0, c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "a:o:", opts, NULL)) != -1) {
		switch (c) {
		case 'a': algname = optarg; break;
		case 'o': name = optarg; break;
		case OPT_JSON: json = 1; break;
		default: return cli_usage("key", &key_cmds[0]);
		}
	}
	if (name == NULL || optind != argc)
		return operands("key", &key_cmds[0], name == NULL ? "-o NAME is required" : NULL, argc, argv, 0);
	creto_alg alg = creto_alg_from_name(algname);
	if (alg == CRETO_ALG_NONE)
		return cli_usage_error("--alg: unknown algorithm '%.64s' (want ed25519, ecdsa-p256, ecdsa-p384, "
				       "ml-dsa-44, ml-dsa-65, ml-dsa-87, hybrid or hybrid-cnsa2)",
				       algname);
	creto_err e;
	creto_err_clear(&e);
	if (creto_key_generate(alg, name, &e) != CRETO_OK)
		return cli_fail(&e, json);
	/* Report the key id as written. */
	char *pp = NULL;
	creto_pubkey *pk = NULL;
	if (asprintf(&pp, "%s.pub", name) < 0)
		return creto_err_set(&e, CRETO_EOP, "out of memory"), cli_fail(&e, json);
	int rc = creto_pubkey_load(pp, &pk, &e);
	if (rc != CRETO_OK) {
		free(pp);
		return cli_fail(&e, json);
	}
	if (json)
		rc = cli_json_out(json_pack("{s:b, s:s, s:s, s:s+, s:s}", "ok", 1, "alg", algname, "keyid",
					    creto_pubkey_id(pk), "secret", name, ".key", "public", pp));
	else
		printf("%s.key %s key id %s (%s)\n", name, pp, creto_pubkey_id(pk), algname);
	creto_pubkey_free(pk);
	free(pp);
	return rc;
}

static int cmd_key_pub(int argc, char **argv)
{
	static const struct option opts[] = {{"module", required_argument, NULL, OPT_MODULE},
					     {"pin-file", required_argument, NULL, OPT_PIN_FILE},
					     {NULL, 0, NULL, 0}};
	creto_keys_opts ko = {0};
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_MODULE: ko.module_path = optarg; break;
		case OPT_PIN_FILE: ko.pin_file = optarg; break;
		default: return cli_usage("key", &key_cmds[1]);
		}
	}
	if (optind != argc - 1)
		return operands("key", &key_cmds[1], NULL, argc, argv, 1);
	creto_err e;
	creto_err_clear(&e);
	creto_pubkey *pk = NULL;
	char *text = NULL;
	if (open_pub(argv[optind], &ko, &pk, &e) != CRETO_OK ||
	    creto_pubkey_format(pk, NULL, &text, &e) != CRETO_OK) {
		creto_pubkey_free(pk);
		return cli_fail(&e, 0);
	}
	int rc;
	if (cli_json())
		rc = cli_json_out(json_pack("{s:b, s:s, s:s, s:s}", "ok", 1, "alg",
					    creto_alg_name(creto_pubkey_alg(pk)), "keyid", creto_pubkey_id(pk),
					    "public", text));
	else
		rc = fputs(text, stdout) == EOF || fflush(stdout) != 0 ? CRETO_EOP : CRETO_OK;
	free(text);
	creto_pubkey_free(pk);
	return rc;
}

static int cmd_key_id(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, OPT_JSON},
					     {"module", required_argument, NULL, OPT_MODULE},
					     {"pin-file", required_argument, NULL, OPT_PIN_FILE},
					     {NULL, 0, NULL, 0}};
	creto_keys_opts ko = {0};
	int json = 0, c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: json = 1; break;
		case OPT_MODULE: ko.module_path = optarg; break;
		case OPT_PIN_FILE: ko.pin_file = optarg; break;
		default: return cli_usage("key", &key_cmds[2]);
		}
	}
	if (optind != argc - 1)
		return operands("key", &key_cmds[2], NULL, argc, argv, 1);
	const char *ref = argv[optind];
	creto_err e;
	creto_err_clear(&e);
	creto_pubkey *pk = NULL;
	creto_sigfile sf;
	const char *kind = "key";
	char keyid[CRETO_KEYID_HEXLEN + 1];
	creto_alg alg;
	memset(&sf, 0, sizeof(sf));
	if (open_pub(ref, &ko, &pk, &e) == CRETO_OK) {
		alg = creto_pubkey_alg(pk);
		memcpy(keyid, creto_pubkey_id(pk), sizeof(keyid));
		creto_pubkey_free(pk);
	} else {
		/* Not a key: perhaps a signature file, which names its signer. */
		creto_err se;
		creto_err_clear(&se);
		if (creto_keys_is_pkcs11(ref) || strstr(e.msg, "found 'creto-sig-v1'") == NULL)
			return cli_fail(&e, json);
		if (creto_sigfile_load(ref, &sf, &se) != CRETO_OK)
			return cli_fail(&se, json);
		alg = sf.alg;
		memcpy(keyid, sf.keyid, sizeof(keyid));
		kind = "signature";
		creto_sigfile_clear(&sf);
	}
	if (json)
		return cli_json_out(json_pack("{s:b, s:s, s:s, s:s, s:s}", "ok", 1, "file", ref, "kind", kind,
					      "alg", creto_alg_name(alg), "keyid", keyid));
	printf("%s\n", keyid);
	return CRETO_OK;
}

/* The context of sign/verify from --context (*ctx, NULL when absent) and
 * --raw: FILE_CTX by default, empty only with --raw. */
static int pick_context(const char *cmd, int raw, const char **ctx)
{
	if (raw && *ctx != NULL)
		return cli_usage_error("%s: --raw and --context exclude each other", cmd);
	if (*ctx == NULL)
		*ctx = raw ? "" : FILE_CTX;
	if (!raw && (*ctx)[0] == '\0')
		return cli_usage_error("%s: empty --context; use --raw for the bytes as they are", cmd);
	if (strlen(*ctx) > CRETO_SIG_CTX_MAX)
		return cli_usage_error("%s: --context longer than %d bytes", cmd, CRETO_SIG_CTX_MAX);
	return CRETO_OK;
}

int cmd_sign(int argc, char **argv)
{
	/* help only as the one argument, never an option value or a file */
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: creto sign %s\n  %s\n", sign_cmd.usage, sign_cmd.help);
		return CRETO_OK;
	}
	static const struct option opts[] = {{"key", required_argument, NULL, 'k'},
					     {"context", required_argument, NULL, OPT_CONTEXT},
					     {"raw", no_argument, NULL, OPT_RAW},
					     {"out", required_argument, NULL, 'o'},
					     {"json", no_argument, NULL, OPT_JSON},
					     {"module", required_argument, NULL, OPT_MODULE},
					     {"pin-file", required_argument, NULL, OPT_PIN_FILE},
					     {NULL, 0, NULL, 0}};
	creto_keys_opts ko = {0};
	const char *key = NULL, *ctx = NULL, *outp = NULL;
	int json = 0, raw = 0, c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "k:o:", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key = optarg; break;
		case 'o': outp = optarg; break;
		case OPT_CONTEXT: ctx = optarg; break;
		case OPT_RAW: raw = 1; break;
		case OPT_JSON: json = 1; break;
		case OPT_MODULE: ko.module_path = optarg; break;
		case OPT_PIN_FILE: ko.pin_file = optarg; break;
		default: return cli_usage("sign", &sign_cmd);
		}
	}
	if (key == NULL || outp == NULL || optind != argc - 1)
		return operands("sign", &sign_cmd,
				key == NULL ? "--key KEY is required" : outp == NULL ? "-o FILE.sig is required" : NULL,
				argc, argv, 1);
	if (pick_context("sign", raw, &ctx) != CRETO_OK)
		return CRETO_EUSAGE;
	const char *file = argv[optind];
	creto_err e;
	creto_err_clear(&e);
	creto_signer *s = NULL;
	uint8_t *msg = NULL, *sig = NULL;
	size_t msglen = 0, siglen = 0;
	char *text = NULL;
	int rc = creto_keys_open_signer(key, &ko, &s, &e);
	if (rc == CRETO_OK)
		rc = creto_file_read(file, SIGN_FILE_MAX, &msg, &msglen, &e);
	if (rc == CRETO_OK)
		rc = creto_signer_sign(s, (const uint8_t *)ctx, strlen(ctx), msg, msglen, &sig, &siglen, &e);
	if (rc == CRETO_OK)
		rc = creto_sigfile_format(creto_signer_pubkey(s), sig, siglen, &text, &e);
	if (rc == CRETO_OK)
		rc = creto_file_write_atomic(outp, text, strlen(text), 0644, &e);
	if (rc != CRETO_OK) {
		rc = cli_fail(&e, json);
	} else {
		const creto_pubkey *pk = creto_signer_pubkey(s);
		if (json)
			rc = cli_json_out(json_pack("{s:b, s:s, s:s, s:s, s:s}", "ok", 1, "file", file, "signature",
						    outp, "alg", creto_alg_name(creto_pubkey_alg(pk)), "keyid",
						    creto_pubkey_id(pk)));
		else
			cli_status("signed %s with key %s (%s): %s", file, creto_pubkey_id(pk),
				   creto_alg_name(creto_pubkey_alg(pk)), outp);
	}
	free(text);
	free(sig);
	free(msg);
	creto_signer_free(s);
	return rc;
}

int cmd_verify(int argc, char **argv)
{
	/* help only as the one argument, never an option value or a file */
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: creto verify %s\n  %s\n", verify_cmd.usage, verify_cmd.help);
		return CRETO_OK;
	}
	static const struct option opts[] = {{"pub", required_argument, NULL, 'p'},
					     {"context", required_argument, NULL, OPT_CONTEXT},
					     {"raw", no_argument, NULL, OPT_RAW},
					     {"json", no_argument, NULL, OPT_JSON},
					     {"module", required_argument, NULL, OPT_MODULE},
					     {"pin-file", required_argument, NULL, OPT_PIN_FILE},
					     {NULL, 0, NULL, 0}};
	creto_keys_opts ko = {0};
	const char *pubref = NULL, *ctx = NULL;
	int json = 0, raw = 0, c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "p:", opts, NULL)) != -1) {
		switch (c) {
		case 'p': pubref = optarg; break;
		case OPT_CONTEXT: ctx = optarg; break;
		case OPT_RAW: raw = 1; break;
		case OPT_JSON: json = 1; break;
		case OPT_MODULE: ko.module_path = optarg; break;
		case OPT_PIN_FILE: ko.pin_file = optarg; break;
		default: return cli_usage("verify", &verify_cmd);
		}
	}
	if (pubref == NULL || optind != argc - 2)
		return operands("verify", &verify_cmd, pubref == NULL ? "--pub KEY.pub is required" : NULL, argc,
				argv, 2);
	if (pick_context("verify", raw, &ctx) != CRETO_OK)
		return CRETO_EUSAGE;
	const char *file = argv[optind], *sigp = argv[optind + 1];
	creto_err e;
	creto_err_clear(&e);
	creto_pubkey *pk = NULL;
	creto_sigfile sf;
	uint8_t *msg = NULL;
	size_t msglen = 0;
	memset(&sf, 0, sizeof(sf));
	int rc = creto_keys_open_pubkey(pubref, &ko, &pk, &e);
	if (rc == CRETO_OK)
		rc = creto_sigfile_load(sigp, &sf, &e);
	if (rc == CRETO_OK && strcmp(sf.keyid, creto_pubkey_id(pk)) != 0)
		rc = creto_err_set(&e, CRETO_EREJECT, "%s: signed by key %s (%s), not by key %s (%s)", sigp,
				   sf.keyid, creto_alg_name(sf.alg), creto_pubkey_id(pk),
				   creto_alg_name(creto_pubkey_alg(pk)));
	if (rc == CRETO_OK && sf.alg != creto_pubkey_alg(pk))
		rc = creto_err_set(&e, CRETO_EREJECT, "%s: %s signature, but key %s is %s", sigp,
				   creto_alg_name(sf.alg), creto_pubkey_id(pk),
				   creto_alg_name(creto_pubkey_alg(pk)));
	if (rc == CRETO_OK)
		rc = creto_file_read(file, SIGN_FILE_MAX, &msg, &msglen, &e);
	if (rc == CRETO_OK) {
		rc = creto_pubkey_verify(pk, (const uint8_t *)ctx, strlen(ctx), msg, msglen, sf.sig,
					 sf.siglen, &e);
		if (rc != CRETO_OK)
			creto_err_ctx(&e, "%s: key %s (%s)", sigp, creto_pubkey_id(pk),
				      creto_alg_name(creto_pubkey_alg(pk)));
	}
	if (rc != CRETO_OK) {
		rc = cli_fail(&e, json);
	} else if (json) {
		rc = cli_json_out(json_pack("{s:b, s:s, s:s, s:s, s:s, s:s}", "ok", 1, "status", "verified",
					    "file", file, "signature", sigp, "alg",
					    creto_alg_name(creto_pubkey_alg(pk)), "keyid", creto_pubkey_id(pk)));
	} else {
		printf("verified: %s signed by key %s (%s)\n", file, creto_pubkey_id(pk),
		       creto_alg_name(creto_pubkey_alg(pk)));
	}
	free(msg);
	creto_sigfile_clear(&sf);
	creto_pubkey_free(pk);
	return rc;
}
