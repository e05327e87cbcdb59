/*
 * cmd_nhi.c - `creto nhi ...`: the agent store, encrypted backups, tokens,
 * the issuer's JWK Set and offline resolution (docs/nhi.md).
 *
 * All subcommands share one option parser; each names the options it
 * accepts, so an option that does not apply is a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "creto/keys.h"
#include "creto/nhi.h"
#include "util/file.h"
#include "util/timeutil.h"

#define MAX_MULTI 64
#define TOKEN_FILE_MAX (CRETO_JWS_MAX + 2)

enum {
	O_DB = 1000, O_ISSUER, O_ID, O_NAME, O_SCOPE, O_NOT_BEFORE, O_NOT_AFTER, O_ISSUER_KID,
	O_ISSUER_KEY, O_JSON, O_WRAP_KEY, O_OUTPUT, O_MODULE, O_PIN_FILE, O_AGENT, O_TTL, O_KEY,
	O_AUD, O_TOKEN, O_TOKEN_FILE, O_JWKS, O_BACKUP, O_STATUS, O_JTI,
};

static const struct option all_opts[] = {
	{"db", required_argument, NULL, O_DB},
	{"issuer", required_argument, NULL, O_ISSUER},
	{"id", required_argument, NULL, O_ID},
	{"name", required_argument, NULL, O_NAME},
	{"scope", required_argument, NULL, O_SCOPE},
	{"not-before", required_argument, NULL, O_NOT_BEFORE},
	{"not-after", required_argument, NULL, O_NOT_AFTER},
	{"issuer-kid", required_argument, NULL, O_ISSUER_KID},
	{"issuer-key", required_argument, NULL, O_ISSUER_KEY},
	{"json", no_argument, NULL, O_JSON},
	{"wrap-key", required_argument, NULL, O_WRAP_KEY},
	{"output", required_argument, NULL, O_OUTPUT},
	{"module", required_argument, NULL, O_MODULE},
	{"pin-file", required_argument, NULL, O_PIN_FILE},
	{"agent", required_argument, NULL, O_AGENT},
	{"ttl", required_argument, NULL, O_TTL},
	{"key", required_argument, NULL, O_KEY},
	{"aud", required_argument, NULL, O_AUD},
	/* named so that getopt does not take "--token" as an abbreviation of
	 * --token-file: a token on the command line is refused below */
	{"token", required_argument, NULL, O_TOKEN},
	{"token-file", required_argument, NULL, O_TOKEN_FILE},
	{"jwks", required_argument, NULL, O_JWKS},
	{"backup", required_argument, NULL, O_BACKUP},
	{"status", required_argument, NULL, O_STATUS},
	{"jti", required_argument, NULL, O_JTI},
	{NULL, 0, NULL, 0},
};

struct args {
	const char *db, *issuer, *id, *name, *not_before, *not_after, *issuer_kid, *issuer_key;
	const char *wrap_key, *output, *agent, *ttl, *aud, *token_file, *jwks, *backup;
	const char *status, *jti;
	const char *scope[MAX_MULTI];
	size_t nscope;
	const char *key[MAX_MULTI];
	size_t nkey;
	int json;
	creto_keys_opts kopts;
	const char *pos[4]; /* positional arguments */
	int npos;
};

static const struct cli_cmd *cur_cmd;

static int usage(void)
{
	return cli_usage("nhi", cur_cmd);
}

/* allowed: the O_* values this subcommand takes, 0-terminated. */
static int parse(int argc, char **argv, const int *allowed, int maxpos, struct args *a)
{
	memset(a, 0, sizeof(*a));
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "o:", all_opts, NULL)) != -1) {
		if (c == 'o')
			c = O_OUTPUT;
		if (c == O_TOKEN)
			return cli_usage_error("--token: a token is a credential and is never taken from "
					       "the command line; use --token-file FILE or --token-file -");
		int ok = 0;
		for (const int *p = allowed; *p; p++)
			ok |= *p == c;
		if (!ok || c == '?' || c == ':') {
			/* name the option, never echo a value (it may be a secret) */
			const char *w = argv[optind - 1];
			if (w[0] != '-' && optind >= 2)
				w = argv[optind - 2];
			cli_usage_error("nhi %s: unknown or misplaced option '%.64s'", cur_cmd->name,
					w[0] == '-' ? w : "?");
			return usage();
		}
		switch (c) {
		case O_DB: a->db = optarg; break;
		case O_ISSUER: a->issuer = optarg; break;
		case O_ID: a->id = optarg; break;
		case O_NAME: a->name = optarg; break;
		case O_NOT_BEFORE: a->not_before = optarg; break;
		case O_NOT_AFTER: a->not_after = optarg; break;
		case O_ISSUER_KID: a->issuer_kid = optarg; break;
		case O_ISSUER_KEY: a->issuer_key = optarg; break;
		case O_JSON: a->json = 1; break;
		case O_WRAP_KEY: a->wrap_key = optarg; break;
		case O_OUTPUT: a->output = optarg; break;
		case O_MODULE: a->kopts.module_path = optarg; break;
		case O_PIN_FILE: a->kopts.pin_file = optarg; break;
		case O_AGENT: a->agent = optarg; break;
		case O_TTL: a->ttl = optarg; break;
		case O_AUD: a->aud = optarg; break;
		case O_TOKEN_FILE: a->token_file = optarg; break;
		case O_JWKS: a->jwks = optarg; break;
		case O_BACKUP: a->backup = optarg; break;
		case O_STATUS: a->status = optarg; break;
		case O_JTI: a->jti = optarg; break;
		case O_SCOPE:
			if (a->nscope == MAX_MULTI)
				return cli_usage_error("nhi: too many --scope (max %d)", MAX_MULTI);
			a->scope[a->nscope++] = optarg;
			break;
		case O_KEY:
			if (a->nkey == MAX_MULTI)
				return cli_usage_error("nhi: too many --key (max %d)", MAX_MULTI);
			a->key[a->nkey++] = optarg;
			break;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (a->npos == maxpos) {
			cli_usage_error("nhi %s: unexpected argument '%s'", cur_cmd->name, argv[i]);
			return usage();
		}
		a->pos[a->npos++] = argv[i];
	}
	return CRETO_OK;
}

static json_t *time_json(int64_t t)
{
	if (t == 0)
		return json_null();
	char s[CRETO_TIME_STRLEN];
	creto_time_format(t, s);
	return json_string(s);
}

static json_t *scopes_json(const char *list)
{
	json_t *arr = json_array();
	for (const char *p = list; arr && *p;) {
		const char *sp = strchr(p, ' ');
		size_t n = sp ? (size_t)(sp - p) : strlen(p);
		json_array_append_new(arr, json_stringn(p, n));
		p += n;
		if (*p == ' ')
			p++;
	}
	return arr;
}

static json_t *agent_json(const creto_nhi_agent *a)
{
	return json_pack("{s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:s?}", "id", a->id, "name", a->name,
			 "scopes", scopes_json(a->scopes), "status", creto_nhi_status_name(a->status),
			 "not_before", time_json(a->not_before), "not_after", time_json(a->not_after),
			 "created", time_json(a->created), "issuer_kid",
			 a->issuer_kid[0] ? a->issuer_kid : NULL);
}

static void agent_text(const creto_nhi_agent *a)
{
	char nb[CRETO_TIME_STRLEN] = "-", na[CRETO_TIME_STRLEN] = "-";
	if (a->not_before)
		creto_time_format(a->not_before, nb);
	if (a->not_after)
		creto_time_format(a->not_after, na);
	printf("%-24s %-9s %-20s %-20s %s (%s)\n", a->id, creto_nhi_status_name(a->status), nb, na,
	       a->scopes, a->name);
}

static int need(const char *v, const char *opt)
{
	if (v == NULL) {
		cli_usage_error("nhi %s: %s is required", cur_cmd->name, opt);
		return usage();
	}
	return CRETO_OK;
}

static int open_store(const char *db, int readonly, creto_nhi_store **s, int json)
{
	creto_err e;
	creto_err_clear(&e);
	if (creto_nhi_store_open(db, readonly, s, &e) != CRETO_OK)
		return cli_fail(&e, json);
	return CRETO_OK;
}

/* ---- init ---- */
static int nhi_init(int argc, char **argv)
{
	static const int allowed[] = {O_DB, O_ISSUER, O_JSON, 0};
	struct args a;
	int rc = parse(argc, argv, allowed, 0, &a);
	if (rc != CRETO_OK || (rc = need(a.db, "--db")) != CRETO_OK)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	if (creto_nhi_store_init(a.db, a.issuer, &e) != CRETO_OK)
		return cli_fail(&e, a.json);
	if (a.json)
		return cli_json_out(json_pack("{s:b, s:s, s:s, s:i}", "ok", 1, "db", a.db, "issuer",
					      a.issuer ? a.issuer : CRETO_NHI_DEFAULT_ISSUER,
					      "schema_version", CRETO_NHI_SCHEMA_VERSION));
	printf("initialised %s (schema %d, issuer %s)\n", a.db, CRETO_NHI_SCHEMA_VERSION,
	       a.issuer ? a.issuer : CRETO_NHI_DEFAULT_ISSUER);
	return CRETO_OK;
}

/* ---- add ---- */
static int nhi_add(int argc, char **argv)
{
	static const int allowed[] = {O_DB, O_ID, O_NAME, O_SCOPE, O_NOT_BEFORE, O_NOT_AFTER,
				      O_ISSUER_KID, O_ISSUER_KEY, O_MODULE, O_PIN_FILE, O_JSON, 0};
	struct args a;
	int rc = parse(argc, argv, allowed, 0, &a);
	if (rc != CRETO_OK || (rc = need(a.db, "--db")) != CRETO_OK ||
	    (rc = need(a.id, "--id")) != CRETO_OK || (rc = need(a.name, "--name")) != CRETO_OK)
		return rc;
	if (a.nscope == 0)
		return cli_usage_error("nhi add: at least one --scope is required");
	if (a.issuer_kid && a.issuer_key)
		return cli_usage_error("nhi add: give --issuer-kid or --issuer-key, not both");
	creto_nhi_agent ag;
	memset(&ag, 0, sizeof(ag));
	if (strlen(a.id) > CRETO_NHI_ID_MAX || strlen(a.name) > CRETO_NHI_NAME_MAX)
		return cli_usage_error("nhi add: --id or --name too long");
	memcpy(ag.id, a.id, strlen(a.id) + 1);
	memcpy(ag.name, a.name, strlen(a.name) + 1);
	size_t o = 0;
	for (size_t i = 0; i < a.nscope; i++) {
		size_t n = strlen(a.scope[i]);
		if (o + n + 1 > CRETO_NHI_SCOPES_LEN)
			return cli_usage_error("nhi add: scopes longer than %d bytes",
					       CRETO_NHI_SCOPES_LEN);
		if (o)
			ag.scopes[o++] = ' ';
		memcpy(ag.scopes + o, a.scope[i], n);
		o += n;
	}
	ag.scopes[o] = '\0';
	if (a.not_before && creto_time_parse(a.not_before, &ag.not_before) != 0)
		return cli_usage_error("nhi add: --not-before '%s': want YYYY-MM-DD[Thh:mm:ssZ]",
				       a.not_before);
	if (a.not_after && creto_time_parse(a.not_after, &ag.not_after) != 0)
		return cli_usage_error("nhi add: --not-after '%s': want YYYY-MM-DD[Thh:mm:ssZ]",
				       a.not_after);
	ag.created = creto_time_now();
	ag.status = CRETO_NHI_ACTIVE;
	creto_err e;
	creto_err_clear(&e);
	if (a.issuer_kid) {
		if (strlen(a.issuer_kid) != CRETO_KEYID_HEXLEN)
			return cli_usage_error("nhi add: --issuer-kid: want %d hex digits",
					       CRETO_KEYID_HEXLEN);
		memcpy(ag.issuer_kid, a.issuer_kid, CRETO_KEYID_HEXLEN + 1);
	} else if (a.issuer_key) {
		creto_pubkey *pk = NULL;
		if (creto_keys_open_pubkey(a.issuer_key, &a.kopts, &pk, &e) != CRETO_OK)
			return cli_fail(&e, a.json);
		memcpy(ag.issuer_kid, creto_pubkey_id(pk), CRETO_KEYID_HEXLEN + 1);
		creto_pubkey_free(pk);
	}
	creto_nhi_store *s = NULL;
	if ((rc = open_store(a.db, 0, &s, a.json)) != CRETO_OK)
		return rc;
	if (creto_nhi_store_add(s, &ag, &e) != CRETO_OK) {
		creto_nhi_store_free(s);
		return cli_fail(&e, a.json);
	}
	creto_nhi_store_free(s);
	if (a.json)
		return cli_json_out(json_pack("{s:b, s:o}", "ok", 1, "agent", agent_json(&ag)));
	printf("added agent %s\n", ag.id);
	return CRETO_OK;
}

/* ---- list / show ---- */
struct list_ctx {
	json_t *arr;
	const char *status;
};

static int list_one(const creto_nhi_agent *ag, void *arg)
{
	struct list_ctx *lc = arg;
	if (lc->status && strcmp(lc->status, creto_nhi_status_name(ag->status)) != 0)
		return 0;
	if (lc->arr)
		return json_array_append_new(lc->arr, agent_json(ag)) == 0 ? 0 : CRETO_EOP;
	agent_text(ag);
	return 0;
}

static int nhi_list(int argc, char **argv)
{
	static const int allowed[] = {O_DB, O_STATUS, O_JSON, 0};
	struct args a;
	int rc = parse(argc, argv, allowed, 0, &a);
	if (rc != CRETO_OK || (rc = need(a.db, "--db")) != CRETO_OK)
		return rc;
	if (a.status && creto_nhi_status_from_name(a.status) < 0)
		return cli_usage_error("nhi list: --status: active, suspended or revoked");
	creto_nhi_store *s = NULL;
	if ((rc = open_store(a.db, 1, &s, a.json)) != CRETO_OK)
		return rc;
	struct list_ctx lc = {a.json ? json_array() : NULL, a.status};
	creto_err e;
	creto_err_clear(&e);
	if (!a.json)
		printf("%-24s %-9s %-20s %-20s %s\n", "ID", "STATUS", "NOT-BEFORE", "NOT-AFTER",
		       "SCOPES (NAME)");
	rc = creto_nhi_store_list(s, list_one, &lc, &e);
	creto_nhi_store_free(s);
	if (rc != CRETO_OK) {
		json_decref(lc.arr);
		if (e.code == CRETO_OK)
			creto_err_set(&e, rc, "list: out of memory");
		return cli_fail(&e, a.json);
	}
	if (a.json)
		return cli_json_out(json_pack("{s:b, s:o}", "ok", 1, "agents", lc.arr));
	return CRETO_OK;
}

static int nhi_show(int argc, char **argv)
{
	static const int allowed[] = {O_DB, O_JSON, 0};
	struct args a;
	int rc = parse(argc, argv, allowed, 1, &a);
	if (rc != CRETO_OK || (rc = need(a.db, "--db")) != CRETO_OK)
		return rc;
	if (a.npos != 1)
		return usage();
	creto_nhi_store *s = NULL;
	if ((rc = open_store(a.db, 1, &s, a.json)) != CRETO_OK)
		return rc;
	creto_nhi_agent ag;
	creto_err e;
	creto_err_clear(&e);
	rc = creto_nhi_store_get(s, a.pos[0], &ag, &e);
	creto_nhi_store_free(s);
	if (rc != CRETO_OK)
		return cli_fail(&e, a.json);
	if (a.json)
		return cli_json_out(json_pack("{s:b, s:o}", "ok", 1, "agent", agent_json(&ag)));
	char t[CRETO_TIME_STRLEN];
	printf("id:         %s\nname:       %s\nstatus:     %s\nscopes:     %s\n", ag.id, ag.name,
	       creto_nhi_status_name(ag.status), ag.scopes);
	creto_time_format(ag.created, t);
	printf("created:    %s\n", t);
	if (ag.not_before) {
		creto_time_format(ag.not_before, t);
		printf("not-before: %s\n", t);
	}
	if (ag.not_after) {
		creto_time_format(ag.not_after, t);
		printf("not-after:  %s\n", t);
	}
	printf("issuer key: %s\n", ag.issuer_kid[0] ? ag.issuer_kid : "(any key of the JWK Set)");
	return CRETO_OK;
}

static int set_status(int argc, char **argv, creto_nhi_status st)
{
	static const int allowed[] = {O_DB, O_JSON, 0};
	struct args a;
	int rc = parse(argc, argv, allowed, 1, &a);
	if (rc != CRETO_OK || (rc = need(a.db, "--db")) != CRETO_OK)
		return rc;
	if (a.npos != 1)
		return usage();
	creto_nhi_store *s = NULL;
	if ((rc = open_store(a.db, 0, &s, a.json)) != CRETO_OK)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	rc = creto_nhi_store_set_status(s, a.pos[0], st, creto_clock_now(cli_clock()), &e);
	creto_nhi_store_free(s);
	if (rc != CRETO_OK)
		return cli_fail(&e, a.json);
	if (a.json)
		return cli_json_out(json_pack("{s:b, s:s, s:s}", "ok", 1, "id", a.pos[0], "status",
					      creto_nhi_status_name(st)));
	printf("agent %s %s\n", a.pos[0], creto_nhi_status_name(st));
	return CRETO_OK;
}

static int nhi_revoke(int argc, char **argv)
{
	return set_status(argc, argv, CRETO_NHI_REVOKED);
}

static int nhi_suspend(int argc, char **argv)
{
	return set_status(argc, argv, CRETO_NHI_SUSPENDED);
}

static int nhi_resume(int argc, char **argv)
{
	return set_status(argc, argv, CRETO_NHI_ACTIVE);
}

/* ---- backup / restore ---- */
static json_t *info_json(const creto_nhi_backup_info *bi)
{
	return json_pack("{s:i, s:o, s:s, s:I}", "format_version", bi->version, "created",
			 time_json(bi->created), "wrap_key", bi->key_id, "data_bytes",
			 (json_int_t)bi->data_len);
}

static int nhi_backup(int argc, char **argv)
{
	static const int allowed[] = {O_DB, O_WRAP_KEY, O_OUTPUT, O_MODULE, O_PIN_FILE, O_JSON, 0};
	struct args a;
	int rc = parse(argc, argv, allowed, 0, &a);
	if (rc != CRETO_OK || (rc = need(a.db, "--db")) != CRETO_OK ||
	    (rc = need(a.wrap_key, "--wrap-key")) != CRETO_OK ||
	    (rc = need(a.output, "-o")) != CRETO_OK)
		return rc;
	if (!creto_keys_is_pkcs11(a.wrap_key))
		return cli_usage_error("nhi backup: --wrap-key must be a pkcs11: URI");
	creto_nhi_store *s = NULL;
	if ((rc = open_store(a.db, 1, &s, a.json)) != CRETO_OK)
		return rc;
	creto_nhi_wrapper w;
	creto_nhi_wrapper_hsm(&w, a.wrap_key, &a.kopts);
	creto_err e;
	creto_err_clear(&e);
	uint64_t n = 0;
	rc = creto_nhi_store_count(s, &n, &e);
	if (rc == CRETO_OK)
		rc = creto_nhi_backup_write(s, &w, a.output, creto_time_now(), &e);
	creto_nhi_store_free(s);
	if (rc != CRETO_OK)
		return cli_fail(&e, a.json);
	if (a.json)
		return cli_json_out(json_pack("{s:b, s:s, s:I, s:s}", "ok", 1, "backup", a.output,
					      "agents", (json_int_t)n, "wrap_key", w.key_id));
	printf("wrote %s: %llu agents, data key wrapped by %s\n", a.output, (unsigned long long)n,
	       w.key_id);
	return CRETO_OK;
}

static int nhi_restore(int argc, char **argv)
{
	static const int allowed[] = {O_DB, O_WRAP_KEY, O_MODULE, O_PIN_FILE, O_JSON, 0};
	struct args a;
	int rc = parse(argc, argv, allowed, 1, &a);
	if (rc != CRETO_OK || (rc = need(a.db, "--db")) != CRETO_OK ||
	    (rc = need(a.wrap_key, "--wrap-key")) != CRETO_OK)
		return rc;
	if (a.npos != 1)
		return usage();
	creto_nhi_wrapper w;
	creto_nhi_wrapper_hsm(&w, a.wrap_key, &a.kopts);
	creto_nhi_backup_info bi;
	creto_err e;
	creto_err_clear(&e);
	if (creto_nhi_backup_restore(a.pos[0], &w, a.db, &bi, &e) != CRETO_OK)
		return cli_fail(&e, a.json);
	if (a.json)
		return cli_json_out(json_pack("{s:b, s:s, s:o}", "ok", 1, "db", a.db, "backup",
					      info_json(&bi)));
	char t[CRETO_TIME_STRLEN];
	creto_time_format(bi.created, t);
	printf("restored %s from %s (made %s, %llu bytes)\n", a.db, a.pos[0], t,
	       (unsigned long long)bi.data_len);
	return CRETO_OK;
}

/* ---- token issue ---- */
static int nhi_token(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "issue") != 0) {
		cli_usage_error("nhi token: the only subcommand is 'issue'");
		return usage();
	}
	static const int allowed[] = {O_AGENT, O_TTL, O_KEY, O_DB, O_AUD, O_ISSUER, O_SCOPE,
				      O_JTI, O_OUTPUT, O_MODULE, O_PIN_FILE, O_JSON, 0};
	struct args a;
	int rc = parse(argc - 1, argv + 1, allowed, 0, &a);
	if (rc != CRETO_OK || (rc = need(a.agent, "--agent")) != CRETO_OK ||
	    (rc = need(a.nkey ? a.key[0] : NULL, "--key")) != CRETO_OK)
		return rc;
	if (a.nkey != 1)
		return cli_usage_error("nhi token issue: give exactly one --key");
	int64_t ttl = 3600;
	if (a.ttl && (creto_duration_parse(a.ttl, &ttl) != 0 || ttl <= 0 || ttl > 30 * 86400))
		return cli_usage_error("nhi token issue: --ttl '%s': want 1s..30d", a.ttl);
	char scope[CRETO_NHI_SCOPES_LEN + 1] = "";
	size_t o = 0;
	for (size_t i = 0; i < a.nscope; i++) {
		size_t n = strlen(a.scope[i]);
		if (o + n + 1 > CRETO_NHI_SCOPES_LEN)
			return cli_usage_error("nhi token issue: scopes too long");
		if (o)
			scope[o++] = ' ';
		memcpy(scope + o, a.scope[i], n);
		o += n;
	}
	scope[o] = '\0';
	creto_err e;
	creto_err_clear(&e);
	const char *iss = a.issuer ? a.issuer : CRETO_NHI_DEFAULT_ISSUER;
	char store_iss[CRETO_NHI_ISSUER_MAX + 1];
	if (a.db) {
		/* Refuse to mint a token the resolver would refuse anyway. */
		creto_nhi_store *s = NULL;
		if ((rc = open_store(a.db, 1, &s, a.json)) != CRETO_OK)
			return rc;
		creto_nhi_agent ag;
		rc = creto_nhi_store_get(s, a.agent, &ag, &e);
		if (rc == CRETO_OK && ag.status != CRETO_NHI_ACTIVE)
			rc = creto_err_set(&e, CRETO_EREJECT, "agent %s is %s", ag.id,
					   creto_nhi_status_name(ag.status));
		for (size_t i = 0; rc == CRETO_OK && i < a.nscope; i++)
			if (!creto_nhi_scopes_has(ag.scopes, a.scope[i], strlen(a.scope[i])))
				rc = creto_err_set(&e, CRETO_EREJECT, "scope '%.64s' not granted to agent %s",
						   a.scope[i], ag.id);
		snprintf(store_iss, sizeof(store_iss), "%s", creto_nhi_store_issuer(s));
		creto_nhi_store_free(s);
		if (rc != CRETO_OK)
			return cli_fail(&e, a.json);
		if (!a.issuer)
			iss = store_iss;
	}
	creto_signer *sg = NULL;
	if (creto_keys_open_signer(a.key[0], &a.kopts, &sg, &e) != CRETO_OK)
		return cli_fail(&e, a.json);
	int64_t now = creto_time_now();
	creto_nhi_token_params p = {
		.iss = iss,
		.sub = a.agent,
		.aud = a.aud ? a.aud : CRETO_NHI_DEFAULT_AUDIENCE,
		.scope = a.nscope ? scope : NULL,
		.jti = a.jti,
		.iat = now,
		.nbf = now,
		.exp = now + ttl,
	};
	char *tok = NULL;
	rc = creto_nhi_token_issue(sg, &p, &tok, &e);
	creto_signer_free(sg);
	if (rc != CRETO_OK)
		return cli_fail(&e, a.json);
	if (a.output) {
		size_t n = strlen(tok);
		tok[n] = '\n';
		rc = creto_file_write_atomic(a.output, tok, n + 1, 0600, &e);
		tok[n] = '\0';
		if (rc != CRETO_OK) {
			free(tok);
			return cli_fail(&e, a.json);
		}
	}
	if (a.json) {
		char t[CRETO_TIME_STRLEN];
		creto_time_format(p.exp, t);
		rc = cli_json_out(json_pack("{s:b, s:s, s:s, s:s}", "ok", 1, "token", tok, "agent",
					    a.agent, "exp", t));
	} else if (!a.output) {
		printf("%s\n", tok);
	}
	free(tok);
	return rc;
}

/* ---- jwks ---- */
static int nhi_jwks(int argc, char **argv)
{
	static const int allowed[] = {O_KEY, O_OUTPUT, O_MODULE, O_PIN_FILE, 0};
	struct args a;
	int rc = parse(argc, argv, allowed, 0, &a);
	if (rc != CRETO_OK)
		return rc;
	if (a.nkey == 0)
		return need(NULL, "--key");
	creto_pubkey *keys[MAX_MULTI] = {0};
	creto_err e;
	creto_err_clear(&e);
	char *txt = NULL;
	for (size_t i = 0; i < a.nkey; i++) {
		rc = creto_keys_open_pubkey(a.key[i], &a.kopts, &keys[i], &e);
		if (rc != CRETO_OK)
			goto out;
	}
	rc = creto_jwks_format((const creto_pubkey *const *)keys, a.nkey, &txt, &e);
	if (rc != CRETO_OK)
		goto out;
	size_t n = strlen(txt);
	if (a.output) {
		char *buf = malloc(n + 2);
		if (buf == NULL) {
			rc = creto_err_set(&e, CRETO_EOP, "out of memory");
			goto out;
		}
		memcpy(buf, txt, n);
		buf[n] = '\n';
		rc = creto_file_write_atomic(a.output, buf, n + 1, 0644, &e);
		free(buf);
	} else {
		printf("%s\n", txt);
	}
out:
	for (size_t i = 0; i < a.nkey; i++)
		creto_pubkey_free(keys[i]);
	free(txt);
	if (rc != CRETO_OK)
		return cli_fail(&e, 0);
	return CRETO_OK;
}

/* ---- resolve ---- */
/* The token from FILE, or from standard input for "-": at most
 * TOKEN_FILE_MAX bytes, one trailing newline dropped, NUL-terminated. */
static int read_token(const char *path, uint8_t **out, size_t *len, creto_err *e)
{
	if (strcmp(path, "-") != 0) {
		int rc = creto_file_read(path, TOKEN_FILE_MAX, out, len, e);
		if (rc == CRETO_OK && *len && (*out)[*len - 1] == '\n')
			(*out)[--*len] = '\0';
		return rc;
	}
	uint8_t *b = malloc(TOKEN_FILE_MAX + 2);
	if (b == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	ssize_t n = creto_read_full(0, b, TOKEN_FILE_MAX + 1);
	if (n < 0) {
		free(b);
		return creto_err_errno(e, errno, "token: standard input");
	}
	if ((size_t)n > TOKEN_FILE_MAX) {
		free(b);
		return creto_err_set(e, CRETO_EREJECT,
				     "token: standard input holds more than %d bytes, over the %d-byte cap",
				     TOKEN_FILE_MAX, CRETO_JWS_MAX);
	}
	*len = (size_t)n;
	if (*len && b[*len - 1] == '\n')
		(*len)--;
	b[*len] = '\0';
	*out = b;
	return CRETO_OK;
}

static int nhi_resolve(int argc, char **argv)
{
	static const int allowed[] = {O_DB, O_BACKUP, O_WRAP_KEY, O_JWKS, O_TOKEN_FILE,
				      O_AUD, O_ISSUER, O_MODULE, O_PIN_FILE, O_JSON, 0};
	struct args a;
	int rc = parse(argc, argv, allowed, 0, &a);
	if (rc != CRETO_OK || (rc = need(a.jwks, "--jwks")) != CRETO_OK)
		return rc;
	if ((a.db == NULL) == (a.backup == NULL))
		return cli_usage_error("nhi resolve: give --db FILE or --backup FILE --wrap-key URI");
	if (a.backup && a.wrap_key == NULL)
		return cli_usage_error("nhi resolve: --backup needs --wrap-key");
	/* A token is a bearer credential: never taken from argv (ps, shell
	 * history), only from a file or standard input. */
	if (a.token_file == NULL)
		return cli_usage_error("nhi resolve: give --token-file FILE, or --token-file - to read "
				       "the token from standard input");
	creto_err e;
	creto_err_clear(&e);
	uint8_t *tbuf = NULL;
	size_t tlen = 0;
	creto_nhi_store *s = NULL;
	creto_jwks *jw = NULL;
	creto_nhi_resolver *r = NULL;
	rc = read_token(a.token_file, &tbuf, &tlen, &e);
	if (rc != CRETO_OK)
		goto out;
	const char *tok = (const char *)tbuf;
	if (memchr(tok, '\0', tlen) != NULL) {
		rc = creto_err_set(&e, CRETO_EREJECT, "token: holds a NUL byte");
		goto out;
	}
	if ((rc = creto_jwks_load(a.jwks, &jw, &e)) != CRETO_OK)
		goto out;
	if (a.db) {
		rc = creto_nhi_store_open(a.db, 1, &s, &e);
	} else {
		creto_nhi_wrapper w;
		creto_nhi_wrapper_hsm(&w, a.wrap_key, &a.kopts);
		rc = creto_nhi_backup_open(a.backup, &w, &s, NULL, &e);
	}
	if (rc != CRETO_OK)
		goto out;
	creto_nhi_resolver_opts ro = {.issuer = a.issuer, .audience = a.aud, .cache_entries = 0};
	if ((rc = creto_nhi_resolver_new(s, jw, &ro, &r, &e)) != CRETO_OK)
		goto out;
	creto_nhi_identity id;
	rc = creto_nhi_resolve(r, tok, tlen, creto_time_now(), &id, NULL, &e);
	if (rc != CRETO_OK) {
		creto_err_ctx(&e, "token rejected");
		goto out;
	}
	char iat[CRETO_TIME_STRLEN], exp[CRETO_TIME_STRLEN];
	creto_time_format(id.iat, iat);
	creto_time_format(id.exp, exp);
	rc = cli_json_out(json_pack("{s:b, s:s, s:o, s:o, s:s, s:s, s:s, s:s, s:s}", "ok", 1, "sub",
				    id.agent.id, "agent", agent_json(&id.agent), "scopes",
				    scopes_json(id.scopes), "kid", id.kid, "alg",
				    creto_jws_alg_name(id.alg), "jti", id.jti, "iat", iat, "exp", exp));
out:
	creto_nhi_resolver_free(r);
	creto_nhi_store_free(s);
	creto_jwks_free(jw);
	free(tbuf);
	if (rc != CRETO_OK && e.code != CRETO_OK)
		return cli_fail(&e, a.json);
	return rc;
}

static const struct cli_cmd nhi_cmds[] = {
	{"init", nhi_init, "--db FILE [--issuer NAME] [--json]", "create an empty agent store"},
	{"add", nhi_add,
	 "--db FILE --id ID --name NAME --scope S... [--not-before DATE] [--not-after DATE] "
	 "[--issuer-kid KID | --issuer-key KEY] [--json]",
	 "provision an agent"},
	{"list", nhi_list, "--db FILE [--status S] [--json]", "list agents"},
	{"show", nhi_show, "--db FILE ID [--json]", "show one agent"},
	{"revoke", nhi_revoke, "--db FILE ID [--json]", "revoke an agent (final)"},
	{"suspend", nhi_suspend, "--db FILE ID [--json]", "suspend an agent"},
	{"resume", nhi_resume, "--db FILE ID [--json]", "reactivate a suspended agent"},
	{"backup", nhi_backup,
	 "--db FILE --wrap-key 'pkcs11:...' -o FILE.bak [--module SO] [--pin-file F] [--json]",
	 "write the store encrypted, data key wrapped by an HSM key"},
	{"restore", nhi_restore,
	 "FILE.bak --wrap-key 'pkcs11:...' --db FILE [--module SO] [--pin-file F] [--json]",
	 "authenticate a backup and restore it atomically"},
	{"token", nhi_token,
	 "issue --agent ID --key KEY [--ttl 1h] [--db FILE] [--aud A] [--issuer I] [--scope S...] "
	 "[--jti J] [-o FILE] [--json]",
	 "issue a JWS (EdDSA/ES256) token for an agent"},
	{"jwks", nhi_jwks, "--key KEY... [-o FILE]", "export issuer public keys as a JWK Set"},
	{"resolve", nhi_resolve,
	 "(--db FILE | --backup FILE.bak --wrap-key URI) --jwks FILE --token-file F|- "
	 "[--aud A] [--issuer I] [--json]",
	 "verify a token offline and print the agent identity"},
	{NULL, NULL, NULL, NULL},
};

int cmd_nhi(int argc, char **argv)
{
	if (argc >= 2)
		for (const struct cli_cmd *c = nhi_cmds; c->name != NULL; c++)
			if (strcmp(c->name, argv[1]) == 0)
				cur_cmd = c;
	return cli_dispatch("nhi", nhi_cmds, argc, argv);
}
