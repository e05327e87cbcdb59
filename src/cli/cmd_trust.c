/*
 * cmd_trust.c - `creto trust init|sign|show`: build the enclave trust root
 * (docs/trust-root.md), let each root officer add a signature, show it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	 " [--version N] [--expires DATE] -o ROOT.json",
	 "create an unsigned trust root (every role gets all keys and M unless --role says otherwise)"},
	{"sign", trust_sign, "ROOT.json --key KEY [--previous] [--module SO] [--pin-file F] [-o OUT]",
	 "add one signature (a root-role key; --previous: a key of the root being rotated from)"},
	{"show", trust_show, "ROOT.json [--json]", "show keys, roles, thresholds and who signed"},
	{NULL, NULL, NULL, NULL},
};

int cmd_trust(int argc, char **argv)
{
	return cli_dispatch("trust", TRUST_CMDS, argc, argv);
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
		r->max_jump = atoi(jump + 1);
		if (r->max_jump < 1)
			return -1;
	}
	char *end;
	long m = strtol(colon + 1, &end, 10);
	if (*end || m < 1 || m > 64)
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
		{"output", required_argument, NULL, 'o'},  {NULL, 0, NULL, 0},
	};
	const char *keyrefs[TRUST_INIT_KEYS];
	char *roles[TRUST_INIT_ROLES];
	size_t nk = 0, nr = 0;
	int threshold = 0, jump = 10;
	int64_t version = 1, expires = 0;
	const char *out = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (nk >= TRUST_INIT_KEYS)
				return cli_usage_error("trust init: at most %d keys", TRUST_INIT_KEYS);
			keyrefs[nk++] = optarg;
			break;
		case 't': threshold = atoi(optarg); break;
		case 'j': jump = atoi(optarg); break;
		case 'v': version = atoll(optarg); break;
		case 'r':
			if (nr >= TRUST_INIT_ROLES)
				return cli_usage_error("trust init: too many --role");
			roles[nr++] = optarg;
			break;
		case 'x':
			if (creto_time_parse(optarg, &expires) != 0)
				return cli_usage_error("trust init: --expires %s is not a date", optarg);
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
	if (rc == CRETO_OK)
		rc = creto_file_write_atomic(out, text, strlen(text), 0644, &e);
	for (size_t i = 0; i < nk; i++)
		creto_pubkey_free(keys[i]);
	free(text);
	if (rc != CRETO_OK)
		return cli_fail(&e, 0);
	printf("wrote %s (unsigned: each root officer runs `creto trust sign %s --key KEY`)\n", out, out);
	return 0;
}

static int trust_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},      {"previous", no_argument, NULL, 'p'},
		{"module", required_argument, NULL, 'm'},   {"pin-file", required_argument, NULL, 'P'},
		{"output", required_argument, NULL, 'o'},   {NULL, 0, NULL, 0},
	};
	const char *key = NULL, *out = NULL;
	int prev = 0;
	creto_keys_opts ko = {NULL, NULL};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key = optarg; break;
		case 'p': prev = 1; break;
		case 'm': ko.module_path = optarg; break;
		case 'P': ko.pin_file = optarg; break;
		case 'o': out = optarg; break;
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
	creto_signer *s = NULL;
	int rc = creto_keys_open_signer(key, &ko, &s, &e);
	if (rc == CRETO_OK)
		rc = creto_trust_root_sign_file(path, out, s, prev, &e);
	if (rc == CRETO_OK)
		printf("signed %s with key %s\n", out, creto_pubkey_id(creto_signer_pubkey(s)));
	creto_signer_free(s);
	return rc == CRETO_OK ? 0 : cli_fail(&e, 0);
}

static int trust_show(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'J'}, {NULL, 0, NULL, 0}};
	int json = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
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
	if (json) {
		json_error_t je;
		json_t *o = json_loads(text, 0, &je);
		free(text);
		return o ? cli_json_out(o) : 3;
	}
	printf("%s\n", text);
	free(text);
	return 0;
}
