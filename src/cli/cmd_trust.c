/*
 * cmd_trust.c - `creto trust init|sign|show`: build the enclave trust root
 * (docs/trust-root.md), let each root officer add a signature, show it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "creto/keys.h"
#include "creto/update.h"
#include "util/file.h"
#include "util/timeutil.h"

#define TRUST_INIT_KEYS 64
#define TRUST_INIT_ROLES 8

static int trust_init(int argc, char **argv);
static int trust_sign(int argc, char **argv);
static int trust_show(int argc, char **argv);

static const struct cli_cmd TRUST_CMDS[] = {
	{"init", trust_init,
	 "--key PUB [--key PUB ...] --threshold M [--role TYPE=ID,ID:M[:JUMP] ...] [--max-jump J]"
	 " [--version N] [--expires DATE] -o ROOT.json [--force] [--quiet] [--json]",
	 "create an unsigned trust root (every role gets all keys and M unless --role says otherwise)"},
	{"sign", trust_sign,
	 "ROOT.json --key KEY [--previous] [--module SO] [--pin-file F] [-o OUT [--force]] [--quiet] [--json]",
	 "add one signature (a root-role key; --previous: a key of the root being rotated from)"},
	{"show", trust_show, "ROOT.json [--json]",
	 "show version, expiry, roles, thresholds, keys and who signed (text; --json for JSON)"},
	{NULL, NULL, NULL, NULL},
};
const struct cli_cmd *cmd_trust_table(void) { return TRUST_CMDS; } /* docs: cli_doc.c */

int cmd_trust(int argc, char **argv)
{
	return cli_dispatch("trust", TRUST_CMDS, argc, argv);
}

/* The expiry warning of a trust root (expired, or within 30 days). */
static void warn_expiry(int64_t version, int64_t expires)
{
	char note[300];
	if (creto_trust_root_expiry_note(version, expires, creto_clock_now(cli_clock()), note, sizeof note))
		fprintf(stderr, "creto: %s\n", note);
}

static int parse_role(char *arg, creto_trust_role_spec *r, const char **idbuf, size_t *nid,
		      creto_pubkey **keys, size_t nkeys)
{
	char *eq = strchr(arg, '=');
	char *colon = eq ? strchr(eq, ':') : NULL;
	if (eq == NULL || colon == NULL)
		return -1;
	*eq = 0;
	*colon = 0;
	r->name = arg;
	char *jump = strchr(colon + 1, ':');
	if (jump != NULL) {
		*jump = 0;
		char *je;
		errno = 0;
		long j = strtol(jump + 1, &je, 10);
		if (jump[1] < '0' || jump[1] > '9' || *je || errno != 0 || j < 1 || j > 1000000)
			return -1;
		r->max_jump = (int)j;
	}
	char *end;
	long m = strtol(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end || m < 1 || m > 64)
		return -1;
	r->threshold = (int)m;
	r->keyids = idbuf + *nid;
	for (char *t = strtok(eq + 1, ","); t != NULL; t = strtok(NULL, ",")) {
		const char *id = t;
		/* A key may be named by id or by its index (1-based) among --key. */
		char *ie;
		long k = strtol(t, &ie, 10);
		if (*ie == 0 && strlen(t) < 4 && k >= 1 && (size_t)k <= nkeys)
			id = creto_pubkey_id(keys[k - 1]);
		if (*nid >= TRUST_INIT_KEYS * TRUST_INIT_ROLES)
			return -1;
		idbuf[(*nid)++] = id;
		r->nkeyids++;
	}
	return 0;
}

static int trust_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},     {"threshold", required_argument, NULL, 't'},
		{"role", required_argument, NULL, 'r'},    {"max-jump", required_argument, NULL, 'j'},
		{"version", required_argument, NULL, 'v'}, {"expires", required_argument, NULL, 'x'},
		{"output", required_argument, NULL, 'o'},  {"force", no_argument, NULL, 'f'},
		{"quiet", no_argument, NULL, 'q'},         {"json", no_argument, NULL, 'J'},
		{NULL, 0, NULL, 0},
	};
	const char *keyrefs[TRUST_INIT_KEYS];
	char *roles[TRUST_INIT_ROLES];
	size_t nk = 0, nr = 0;
	int threshold = 0, jump = 10, force = 0, quiet = 0, json = 0;
	int64_t version = 1, expires = 0;
	uint64_t n;
	const char *out = NULL;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (nk >= TRUST_INIT_KEYS)
				return cli_usage_error("trust init: at most %d keys", TRUST_INIT_KEYS);
			keyrefs[nk++] = optarg;
			break;
		case 't':
			if (cli_parse_u64("trust", "init", "--threshold", optarg, 1, 64, &n) != 0)
				return CRETO_EUSAGE;
			threshold = (int)n;
			break;
		case 'j':
			if (cli_parse_u64("trust", "init", "--max-jump", optarg, 1, 1000000, &n) != 0)
				return CRETO_EUSAGE;
			jump = (int)n;
			break;
		case 'v':
			if (cli_parse_u64("trust", "init", "--version", optarg, 1, 1LL << 53, &n) != 0)
				return CRETO_EUSAGE;
			version = n;
			break;
		case 'f': force = 1; break;
		case 'q': quiet = 1; break;
		case 'J': json = 1; break;
		case 'r':
			if (nr >= TRUST_INIT_ROLES)
				return cli_usage_error("trust init: too many --role");
			roles[nr++] = optarg;
			break;
		case 'x':
			if (creto_time_parse(optarg, &expires) != 0)
				return cli_usage_error("trust init: --expires %s is not a date (YYYY-MM-DD or "
						       "YYYY-MM-DDThh:mm:ssZ)", optarg);
			break;
		case 'o': out = optarg; break;
		default: return cli_usage("trust", &TRUST_CMDS[0]);
		}
	}
	if (nk == 0 || out == NULL || threshold < 1 || optind != argc || jump < 1 || version < 1)
		return cli_usage("trust", &TRUST_CMDS[0]);
	if (expires == 0)
		expires = creto_clock_now(cli_clock()) + 365 * 86400;
	creto_err e;
	creto_err_clear(&e);
	creto_pubkey *keys[TRUST_INIT_KEYS] = {0};
	creto_trust_role_spec specs[TRUST_INIT_ROLES];
	const char *idbuf[TRUST_INIT_KEYS * TRUST_INIT_ROLES];
	size_t nid = 0;
	char *text = NULL;
	int rc = CRETO_OK;
	memset(specs, 0, sizeof specs);
	for (size_t i = 0; i < nk && rc == CRETO_OK; i++)
		rc = creto_keys_open_pubkey(keyrefs[i], NULL, &keys[i], &e);
	for (size_t i = 0; i < nr && rc == CRETO_OK; i++)
		if (parse_role(roles[i], &specs[i], idbuf, &nid, keys, nk) != 0)
			rc = creto_err_set(&e, CRETO_EUSAGE,
					   "trust init: --role wants TYPE=KEYID,KEYID:M[:JUMP] (keys by id or 1-based index)");
	if (rc == CRETO_OK)
		rc = creto_trust_root_create(keys, nk, specs, nr, threshold, jump, version, expires, &text, &e);
	/* A trust root is never silently replaced (officers may have signed
	 * it): created exclusively unless --force. */
	if (rc == CRETO_OK && force)
		rc = creto_file_write_atomic(out, text, strlen(text), 0644, &e);
	else if (rc == CRETO_OK && (rc = creto_file_write_excl(out, text, strlen(text), 0644, &e)) == CRETO_EUSAGE)
		creto_err_set(&e, CRETO_EUSAGE, "trust init: %s already exists (--force replaces it)", out);
	for (size_t i = 0; i < nk; i++)
		creto_pubkey_free(keys[i]);
	free(text);
	if (rc != CRETO_OK)
		return cli_fail(&e, json);
	warn_expiry(version, expires);
	if (json)
		return cli_json_out(json_pack("{s:b, s:s, s:b}", "ok", 1, "trust_root", out, "signed", 0));
	if (!quiet)
		fprintf(stderr, "wrote %s (unsigned: each root officer runs `creto trust sign %s --key KEY`)\n",
			out, out);
	return 0;
}

static int trust_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},      {"previous", no_argument, NULL, 'p'},
		{"module", required_argument, NULL, 'm'},   {"pin-file", required_argument, NULL, 'P'},
		{"output", required_argument, NULL, 'o'},   {"force", no_argument, NULL, 'f'},
		{"quiet", no_argument, NULL, 'q'},          {"json", no_argument, NULL, 'J'},
		{NULL, 0, NULL, 0},
	};
	const char *key = NULL, *out = NULL;
	int prev = 0, force = 0, quiet = 0, json = 0;
	creto_keys_opts ko = {0};
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key = optarg; break;
		case 'p': prev = 1; break;
		case 'm': ko.module_path = optarg; break;
		case 'P': ko.pin_file = optarg; break;
		case 'o': out = optarg; break;
		case 'f': force = 1; break;
		case 'q': quiet = 1; break;
		case 'J': json = 1; break;
		default: return cli_usage("trust", &TRUST_CMDS[1]);
		}
	}
	if (key == NULL || optind + 1 != argc)
		return cli_usage("trust", &TRUST_CMDS[1]);
	const char *path = argv[optind];
	if (out == NULL)
		out = path;
	creto_err e;
	creto_err_clear(&e);
	/* Signing in place is the point; a separate -o OUT is a new document
	 * carrying signatures: never silently replaced. */
	if (out != path && strcmp(out, path) != 0 && !force && access(out, F_OK) == 0)
		return cli_usage_error("trust sign: %s already exists (--force replaces it)", out);
	creto_signer *s = NULL;
	char kid[17] = "";
	int rc = creto_keys_open_signer(key, &ko, &s, &e);
	if (rc == CRETO_OK) {
		snprintf(kid, sizeof kid, "%s", creto_pubkey_id(creto_signer_pubkey(s)));
		rc = creto_trust_root_sign_file(path, out, s, prev, &e);
	}
	creto_signer_free(s);
	if (rc != CRETO_OK)
		return cli_fail(&e, json);
	if (json)
		return cli_json_out(json_pack("{s:b, s:s, s:s}", "ok", 1, "trust_root", out, "keyid", kid));
	if (!quiet)
		fprintf(stderr, "signed %s with key %s\n", out, kid);
	return 0;
}

/* `trust show` for people: what a root officer checks before signing. */
static void show_text(json_t *o)
{
	printf("trust root version %lld, expires %s\n", (long long)json_integer_value(json_object_get(o, "version")),
	       json_string_value(json_object_get(o, "expires")) ? json_string_value(json_object_get(o, "expires")) : "?");
	printf("signed by %lld valid root-role key(s): %s\n",
	       (long long)json_integer_value(json_object_get(o, "valid_root_signatures")),
	       json_is_true(json_object_get(o, "self_signed")) ? "threshold reached" : "threshold NOT reached");
	json_t *keys = json_object_get(o, "keys"), *roles = json_object_get(o, "roles");
	const char *k;
	json_t *v;
	printf("keys (%zu):\n", json_object_size(keys));
	json_object_foreach(keys, k, v) {
		const char *alg = json_string_value(json_object_get(v, "alg"));
		if (alg == NULL)
			alg = json_string_value(json_object_get(v, "algorithm"));
		printf("  %s  %s\n", k, alg ? alg : "");
	}
	printf("roles:\n");
	json_object_foreach(roles, k, v) {
		printf("  %-16s threshold %lld of", k, (long long)json_integer_value(json_object_get(v, "threshold")));
		size_t i;
		json_t *x;
		json_array_foreach(json_object_get(v, "keyids"), i, x) printf(" %s", json_string_value(x));
		json_t *mj = json_object_get(v, "max_jump");
		if (mj != NULL)
			printf("  (max jump %lld)", (long long)json_integer_value(mj));
		printf("\n");
	}
	printf("signatures from:");
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(o, "signed_by"), i, x) printf(" %s", json_string_value(x));
	printf("\n");
}

static int trust_show(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'J'}, {NULL, 0, NULL, 0}};
	int json = 0, c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'J')
			return cli_usage("trust", &TRUST_CMDS[2]);
		json = 1;
	}
	if (optind + 1 != argc)
		return cli_usage("trust", &TRUST_CMDS[2]);
	creto_err e;
	creto_err_clear(&e);
	uint8_t *doc = NULL;
	size_t len = 0;
	creto_trust_root *r = NULL;
	char *text = NULL;
	int nvalid = 0;
	int rc = creto_file_read(argv[optind], CRETO_TRUST_ROOT_MAX, &doc, &len, &e);
	if (rc == CRETO_OK)
		rc = creto_trust_root_parse_unsigned(doc, len, &r, &nvalid, &e);
	if (rc == CRETO_OK)
		rc = creto_trust_root_describe(r, &text, &e);
	free(doc);
	creto_trust_root_free(r);
	if (rc != CRETO_OK) {
		creto_err_ctx(&e, "%s", argv[optind]);
		return cli_fail(&e, json);
	}
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);
	free(text);
	if (o == NULL)
		return CRETO_EOP;
	int64_t ver = json_integer_value(json_object_get(o, "version")), exp = 0;
	const char *xs = json_string_value(json_object_get(o, "expires"));
	if (xs != NULL && creto_time_parse(xs, &exp) == 0)
		warn_expiry(ver, exp);
	if (json)
		return cli_json_out(o);
	show_text(o);
	json_decref(o);
	return 0;
}
