/*
 * cmd_hsm.c - `creto hsm`: initialise a token, generate, list, export and
 * destroy keys in a PKCS#11 HSM (SoftHSM2 by default).
 *
 * Tokens and keys are named by RFC 7512 URIs; --module and --pin-file
 * supply what the URI leaves out.  PINs come only from files (--pin-file
 * or the URI's pin-source); a pin-value attribute is refused, since a URI
 * is argv.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "creto/hsm.h"
#include "creto/sig.h"
#include "util/enc.h"
#include "util/file.h"

static int hsm_init(int argc, char **argv);
static int hsm_keygen(int argc, char **argv);
static int hsm_list(int argc, char **argv);
static int hsm_pub(int argc, char **argv);
static int hsm_destroy(int argc, char **argv);

static const struct cli_cmd hsm_cmds[] = {
	{"init", hsm_init,
	 "--label L --so-pin-file F --pin-file F [--module PATH] [--json] [--quiet]",
	 "initialise a fresh token (SoftHSM2; real HSMs: see docs/keys.md); prints its URI"},
	{"keygen", hsm_keygen,
	 "--type ec-p256|ec-p384|ed25519|aes-256|hybrid|hybrid-cnsa2 --label NAME [--extractable] "
	 "[--pq-file PATH] [--module PATH] [--pin-file F] [--json] [--quiet] TOKEN-URI",
	 "generate a key (pair) on the token and print its URI; sensitive and non-extractable by "
	 "default; hybrid: ML-DSA half in --pq-file (default NAME.pqkey), wrapped by the HSM"},
	{"list", hsm_list, "[--module PATH] [--pin-file F] [--json] [--quiet] [TOKEN-URI]",
	 "list the objects on a token, keys named by their creto key id"},
	{"pub", hsm_pub, "[--module PATH] [--pin-file F] [--json] [--quiet] URI -o NAME.pub",
	 "export the public key of an HSM key pair as a public key file (a hybrid key's ML-DSA "
	 "half is authenticated only when a PIN is given)"},
	{"destroy", hsm_destroy, "[--module PATH] [--pin-file F] [--json] [--quiet] URI",
	 "destroy the objects of the one key a URI names (object= and/or id=)"},
	{NULL, NULL, NULL, NULL},
};
const struct cli_cmd *cmd_hsm_table(void) { return hsm_cmds; } /* docs: cli_doc.c */

int cmd_hsm(int argc, char **argv)
{
	return cli_dispatch("hsm", hsm_cmds, argc, argv);
}

static const struct cli_cmd *find_cmd(const char *name)
{
	for (const struct cli_cmd *c = hsm_cmds; c->name != NULL; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static void hexid(char *out, const uint8_t *id, size_t n)
{
	creto_hex_encode(out, id, n);
}

/* ---- one convention for every hsm command (issue 11 §7) ----
 * Options: every command takes --json (the result, or the error, as one
 * JSON object on stdout) and --quiet (no status lines).  Status lines
 * ("generated ...", "destroyed ...") go to stderr; stdout carries only what
 * was asked for (a URI, a listing, JSON).  A usage error is one line
 * "creto: hsm CMD: why" on stderr, then the synopsis, and with --json the
 * error object of docs/errors.md on stdout; exit 2. */

enum {
	O_MODULE = 1000, O_PIN_FILE, O_SO_PIN_FILE, O_LABEL, O_TYPE, O_JSON, O_EXTRACTABLE,
	O_PQ_FILE, O_QUIET, O_HELP
};

/* Which options a command takes (bits of 1 << (O_x - O_MODULE), and F_OUT). */
#define F(o) (1u << ((o) - O_MODULE))
#define F_OUT (1u << 20)
#define F_ALWAYS (F(O_JSON) | F(O_QUIET) | F(O_HELP))

struct common {
	const char *cmd;
	creto_hsm_opts ko;
	const char *label, *type, *out, *pq_file, *so_pin;
	int json, quiet, extractable, help;
	const char *uri;
};

/* "--json" before "--": known before parsing, so that an error in the
 * options themselves is reported in JSON too. */
static int wants_json(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--json") == 0)
			return 1;
	return 0;
}

static int usage_fail(const char *cmd, int json, const char *fmt, ...) CRETO_PRINTF(3, 4);
static int usage_fail(const char *cmd, int json, const char *fmt, ...)
{
	char why[600], msg[700];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "hsm %s: %s", cmd, why);
	fprintf(stderr, "creto: %s\n", msg);
	const struct cli_cmd *c = find_cmd(cmd);
	if (c != NULL)
		fprintf(stderr, "usage: creto hsm %s %s\n", c->name, c->usage);
	if (json)
		(void)cli_json_out(json_pack("{s:b, s:s, s:i, s:s}", "ok", 0, "status",
					     creto_status_name(CRETO_EUSAGE), "code", CRETO_EUSAGE,
					     "error", msg));
	return CRETO_EUSAGE;
}

/* A status line on stderr, unless --quiet or --json. */
static void status(const struct common *o, const char *fmt, ...) CRETO_PRINTF(2, 3);
static void status(const struct common *o, const char *fmt, ...)
{
	if (o->quiet || o->json)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Parse argv for command o->cmd, which takes the options in allowed and
 * min_pos..max_pos positional operands (the URI).  Returns CRETO_OK, or
 * the exit code (0 after --help, 2 after a usage error) with *done set. */
static int parse_common(int argc, char **argv, const char *name, unsigned allowed, int min_pos,
			int max_pos, struct common *o, int *done)
{
	static const struct option opts[] = {
		{"module", required_argument, NULL, O_MODULE},
		{"pin-file", required_argument, NULL, O_PIN_FILE},
		{"so-pin-file", required_argument, NULL, O_SO_PIN_FILE},
		{"label", required_argument, NULL, O_LABEL},
		{"type", required_argument, NULL, O_TYPE},
		{"json", no_argument, NULL, O_JSON},
		{"extractable", no_argument, NULL, O_EXTRACTABLE},
		{"output", required_argument, NULL, 'o'},
		{"pq-file", required_argument, NULL, O_PQ_FILE},
		{"quiet", no_argument, NULL, O_QUIET},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof(*o));
	o->cmd = name;
	*done = 1;
	int json = wants_json(argc, argv);
	int c;
	optind = 1;
	opterr = 0;
	allowed |= F_ALWAYS;
	int li = -1;
	while ((c = getopt_long(argc, argv, ":o:h", opts, &li)) != -1) {
		/* The option as written: its long name, or -X. */
		char optname[64];
		int v = c == ':' || c == '?' ? optopt : c;
		if (li < 0 && v >= O_MODULE)
			for (int i = 0; opts[i].name != NULL; i++)
				if (opts[i].val == v)
					li = i;
		if (li >= 0)
			snprintf(optname, sizeof(optname), "--%s", opts[li].name);
		else if (v > 0 && v < 128)
			snprintf(optname, sizeof(optname), "-%c", v);
		else
			snprintf(optname, sizeof(optname), "%.60s", argv[optind - 1]);
		li = -1;
		if (c == ':')
			return usage_fail(name, json, "option '%s' needs a value", optname);
		if (c == '?' && v >= O_MODULE)
			return usage_fail(name, json, "option '%s' takes no value", optname);
		if (c == '?')
			return usage_fail(name, json, "unknown option '%s'", optname);
		if (c == 'h')
			c = O_HELP;
		unsigned bit = c == 'o' ? F_OUT : F(c);
		if (!(allowed & bit))
			return usage_fail(name, json, "option '%s' does not apply to hsm %s", optname,
					  name);
		switch (c) {
		case O_MODULE: o->ko.module_path = optarg; break;
		case O_PIN_FILE: o->ko.pin_file = optarg; break;
		case O_SO_PIN_FILE: o->so_pin = optarg; break;
		case O_LABEL: o->label = optarg; break;
		case O_TYPE: o->type = optarg; break;
		case O_JSON: o->json = 1; break;
		case O_EXTRACTABLE: o->extractable = 1; break;
		case 'o': o->out = optarg; break;
		case O_PQ_FILE: o->pq_file = optarg; break;
		case O_QUIET: o->quiet = 1; break;
		case O_HELP: o->help = 1; break;
		default: return usage_fail(name, json, "unknown option '%s'", optname);
		}
	}
	if (o->help) {
		const struct cli_cmd *cc = find_cmd(name);
		printf("usage: creto hsm %s %s\n  %s\n", cc->name, cc->usage, cc->help);
		return CRETO_OK;
	}
	int left = argc - optind;
	if (left > max_pos)
		return usage_fail(name, json, "unexpected operand '%s'", argv[optind + max_pos]);
	if (left < min_pos)
		return usage_fail(name, json, "a pkcs11: URI is required");
	o->uri = left == 1 ? argv[optind] : "pkcs11:";
	if (strncmp(o->uri, "pkcs11:", 7) != 0)
		return usage_fail(name, json, "'%s' is not a pkcs11: URI", o->uri);
	*done = 0;
	return CRETO_OK;
}

/* ---- init ---- */

static int hsm_init(int argc, char **argv)
{
	struct common o;
	int done;
	int rc = parse_common(argc, argv, "init", F(O_MODULE) | F(O_LABEL) | F(O_SO_PIN_FILE) | F(O_PIN_FILE),
			      0, 0, &o, &done);
	if (done)
		return rc;
	if (o.label == NULL)
		return usage_fail("init", o.json, "--label is required");
	if (o.so_pin == NULL || o.ko.pin_file == NULL)
		return usage_fail("init", o.json, "--so-pin-file and --pin-file are required");
	creto_err e;
	creto_err_clear(&e);
	if (creto_hsm_init_token(o.ko.module_path, o.label, o.so_pin, o.ko.pin_file, &e) != CRETO_OK)
		return cli_fail(&e, o.json);
	const char *mp = o.ko.module_path ? o.ko.module_path : CRETO_HSM_DEFAULT_MODULE;
	char *uri = creto_p11_uri_format(o.label, NULL, NULL, 0, CRETO_P11_TYPE_ANY);
	if (uri == NULL) {
		creto_err_set(&e, CRETO_EOP, "out of memory");
		return cli_fail(&e, o.json);
	}
	rc = CRETO_OK;
	if (o.json) {
		rc = cli_json_out(json_pack("{s:b, s:s, s:s, s:s}", "ok", 1, "token", o.label, "module",
					    mp, "uri", uri));
	} else {
		status(&o, "initialised token '%s' in %s", o.label, mp);
		printf("%s\n", uri);
	}
	free(uri);
	return rc;
}

/* ---- keygen ---- */

/* Append "?x-creto-pq=<abs path, percent-encoded>" to uri (malloc'ed). */
static char *with_pq(char *uri, const char *abs)
{
	size_t n = strlen(uri), cap = n + 16 + 3 * strlen(abs) + 1;
	char *out = malloc(cap);
	if (out == NULL) {
		free(uri);
		return NULL;
	}
	memcpy(out, uri, n);
	free(uri);
	memcpy(out + n, "?x-creto-pq=", 12);
	n += 12;
	static const char hx[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)abs; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~/:@", *p) != NULL) {
			out[n++] = (char)*p;
		} else {
			out[n++] = '%';
			out[n++] = hx[*p >> 4];
			out[n++] = hx[*p & 15];
		}
	}
	out[n] = '\0';
	return out;
}

static int hsm_keygen_hybrid(struct common *o, creto_alg alg)
{
	creto_err e;
	creto_err_clear(&e);
	creto_hsm *h = NULL;
	creto_p11_uri *u = NULL;
	char *keyuri = NULL, *path = NULL, *abs = NULL;
	char kid[CRETO_KEYID_HEXLEN + 1] = "";
	int rc;
	if (o->pq_file != NULL)
		path = strdup(o->pq_file);
	else if (asprintf(&path, "%s.pqkey", o->label) < 0)
		path = NULL;
	if (path == NULL) {
		rc = creto_err_set(&e, CRETO_EOP, "out of memory");
		goto out;
	}
	rc = creto_hsm_open_uri(o->uri, &o->ko, CRETO_HSM_LOGIN | CRETO_HSM_RW, &h, &u, &e);
	if (rc == CRETO_OK && (u->object != NULL || u->has_id))
		rc = creto_err_set(&e, CRETO_EUSAGE,
				   "hsm keygen: name the key with --label, not object=/id= in the URI");
	if (rc == CRETO_OK)
		rc = creto_hsm_hybrid_keygen(h, alg, o->label, path, kid, &e);
	if (rc != CRETO_OK)
		goto out;
	abs = realpath(path, NULL);
	keyuri = creto_p11_uri_format(creto_hsm_token_label(h), o->label, NULL, 0, CRETO_P11_TYPE_ANY);
	if (abs == NULL || keyuri == NULL || (keyuri = with_pq(keyuri, abs)) == NULL) {
		rc = creto_err_set(&e, CRETO_EOP, "out of memory");
		goto out;
	}
	if (o->json)
		rc = cli_json_out(json_pack("{s:b, s:s, s:s, s:s, s:s, s:s, s:s}", "ok", 1, "token",
					    creto_hsm_token_label(h), "label", o->label, "type",
					    creto_alg_name(alg), "key_id", kid, "pq_file", abs, "uri",
					    keyuri));
	else {
		status(o, "generated %s key '%s' on token '%s', key id %s (wrapping key '%s.pq-wrap'), "
		       "ML-DSA half in %s",
		       creto_alg_name(alg), o->label, creto_hsm_token_label(h), kid, o->label, abs);
		printf("%s\n", keyuri);
	}
out:
	free(keyuri);
	free(abs);
	free(path);
	creto_p11_uri_free(u);
	creto_hsm_close(h);
	if (rc != CRETO_OK)
		return cli_fail(&e, o->json);
	return rc;
}

static int hsm_keygen(int argc, char **argv)
{
	struct common o;
	int done;
	int rc = parse_common(argc, argv, "keygen",
			      F(O_MODULE) | F(O_PIN_FILE) | F(O_LABEL) | F(O_TYPE) | F(O_EXTRACTABLE) |
				      F(O_PQ_FILE),
			      1, 1, &o, &done);
	if (done)
		return rc;
	if (o.type == NULL)
		return usage_fail("keygen", o.json,
				  "--type is required (ec-p256, ec-p384, ed25519, aes-256, hybrid, "
				  "hybrid-cnsa2)");
	if (o.label == NULL)
		return usage_fail("keygen", o.json, "--label is required");
	if (strcmp(o.type, "hybrid") == 0)
		return hsm_keygen_hybrid(&o, CRETO_ALG_HYBRID);
	if (strcmp(o.type, "hybrid-cnsa2") == 0)
		return hsm_keygen_hybrid(&o, CRETO_ALG_HYBRID_CNSA2);
	if (o.pq_file != NULL)
		return usage_fail("keygen", o.json, "--pq-file is for --type hybrid and hybrid-cnsa2 only");
	creto_hsm_keytype kt = creto_hsm_keytype_from_name(o.type);
	if (kt == CRETO_HSM_KT_NONE)
		return usage_fail("keygen", o.json,
				  "unknown --type '%s' (ec-p256, ec-p384, ed25519, aes-256, hybrid, "
				  "hybrid-cnsa2)",
				  o.type);
	creto_err e;
	creto_err_clear(&e);
	creto_hsm *h = NULL;
	creto_p11_uri *u = NULL;
	uint8_t id[CRETO_HSM_KEYID_BYTES];
	char *keyuri = NULL;
	rc = creto_hsm_open_uri(o.uri, &o.ko, CRETO_HSM_LOGIN | CRETO_HSM_RW, &h, &u, &e);
	if (rc == CRETO_OK && (u->object != NULL || u->has_id))
		rc = creto_err_set(&e, CRETO_EUSAGE,
				   "hsm keygen: name the key with --label, not object=/id= in the URI");
	if (rc == CRETO_OK)
		rc = creto_hsm_keygen(h, kt, o.label, o.extractable ? CRETO_HSM_EXTRACTABLE : 0, id, &e);
	if (rc != CRETO_OK)
		goto out;
	keyuri = creto_p11_uri_format(creto_hsm_token_label(h), o.label, NULL, 0, CRETO_P11_TYPE_ANY);
	if (keyuri == NULL) {
		rc = creto_err_set(&e, CRETO_EOP, "out of memory");
		goto out;
	}
	char idhex[2 * CRETO_HSM_KEYID_BYTES + 1];
	hexid(idhex, id, sizeof(id));
	/* A signing key is named by its creto key id, as `key id`, `hsm pub`
	 * and trust roots name it; an AES key has none (only its CKA_ID). */
	char kid[CRETO_KEYID_HEXLEN + 1] = "";
	if (kt != CRETO_HSM_KT_AES256) {
		creto_p11_uri ku;
		memset(&ku, 0, sizeof(ku));
		ku.object = (char *)o.label;
		ku.id = id;
		ku.idlen = sizeof(id);
		ku.has_id = 1;
		rc = creto_hsm_pub_id(h, &ku, kid, &e);
		if (rc != CRETO_OK)
			goto out;
	}
	if (o.json) {
		json_t *j = json_pack("{s:b, s:s, s:s, s:s}", "ok", 1, "token", creto_hsm_token_label(h),
				      "label", o.label, "type", creto_hsm_keytype_name(kt));
		if (j != NULL && kid[0] != '\0')
			json_object_set_new(j, "key_id", json_string(kid));
		if (j != NULL) {
			json_object_set_new(j, "cka_id", json_string(idhex));
			json_object_set_new(j, "uri", json_string(keyuri));
		}
		rc = cli_json_out(j);
	} else {
		if (kid[0] != '\0')
			status(&o, "generated %s key '%s' on token '%s', key id %s (CKA_ID %s)",
			       creto_hsm_keytype_name(kt), o.label, creto_hsm_token_label(h), kid,
			       idhex);
		else
			status(&o, "generated %s key '%s' on token '%s' (CKA_ID %s)",
			       creto_hsm_keytype_name(kt), o.label, creto_hsm_token_label(h), idhex);
		printf("%s\n", keyuri);
	}
out:
	free(keyuri);
	creto_p11_uri_free(u);
	creto_hsm_close(h);
	if (rc != CRETO_OK)
		return cli_fail(&e, o.json);
	return rc;
}

/* ---- list ---- */

static int hsm_list(int argc, char **argv)
{
	struct common o;
	int done;
	int rc = parse_common(argc, argv, "list", F(O_MODULE) | F(O_PIN_FILE), 0, 1, &o, &done);
	if (done)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	creto_hsm *h = NULL;
	creto_p11_uri *u = NULL;
	creto_hsm_obj *objs = NULL;
	size_t n = 0;
	json_t *arr = NULL;
	/* Log in when a PIN is at hand, to show private objects too. */
	rc = creto_p11_uri_parse(o.uri, &u, &e);
	if (rc != CRETO_OK)
		goto out;
	/* (pin-value asks for a login, which creto_hsm_open refuses.) */
	unsigned fl = (u->pin_source || u->pin_value || o.ko.pin_file) ? CRETO_HSM_LOGIN : 0;
	rc = creto_hsm_open(u, &o.ko, fl, &h, &e);
	if (rc == CRETO_OK)
		rc = creto_hsm_list(h, &objs, &n, &e);
	if (rc != CRETO_OK)
		goto out;
	const char *tok = creto_hsm_token_label(h);
	if (o.json) {
		arr = json_array();
		for (size_t i = 0; i < n && arr != NULL; i++) {
			char idhex[2 * CRETO_HSM_ID_MAX + 1];
			hexid(idhex, objs[i].id, objs[i].idlen);
			char *ou = creto_p11_uri_format(tok, objs[i].label, NULL, 0, objs[i].type);
			const char *tn = creto_p11_type_name(objs[i].type);
			const char *kn = creto_hsm_keytype_name(objs[i].keytype);
			json_t *row = json_pack("{s:s, s:s?, s:s?, s:s?, s:s, s:s?}", "label",
						objs[i].label, "class", tn, "key_type", kn, "key_id",
						objs[i].key_id[0] ? objs[i].key_id : NULL, "cka_id",
						idhex, "uri", ou);
			if (row != NULL && (objs[i].type == CRETO_P11_TYPE_PRIVATE ||
					    objs[i].type == CRETO_P11_TYPE_SECRET_KEY)) {
				json_object_set_new(row, "sensitive", json_boolean(objs[i].sensitive));
				json_object_set_new(row, "extractable", json_boolean(objs[i].extractable));
			}
			free(ou);
			json_array_append_new(arr, row);
		}
		rc = cli_json_out(json_pack("{s:b, s:s, s:s, s:o}", "ok", 1, "token", tok, "module",
					    creto_hsm_module_path(h), "objects", arr));
		arr = NULL;
	} else {
		printf("token '%s' (%s): %zu object%s%s\n", tok, creto_hsm_module_path(h), n,
		       n == 1 ? "" : "s", fl ? "" : " (not logged in: public objects only)");
		for (size_t i = 0; i < n; i++) {
			char idhex[2 * CRETO_HSM_ID_MAX + 1];
			hexid(idhex, objs[i].id, objs[i].idlen);
			const char *tn = creto_p11_type_name(objs[i].type);
			const char *kn = creto_hsm_keytype_name(objs[i].keytype);
			const char *flags = "";
			if (objs[i].type == CRETO_P11_TYPE_PRIVATE ||
			    objs[i].type == CRETO_P11_TYPE_SECRET_KEY)
				flags = objs[i].extractable ? " extractable" : " non-extractable";
			printf("  %-10s %-8s %-24s key id %-16s  CKA_ID %s%s\n", tn ? tn : "other",
			       kn ? kn : "-", objs[i].label, objs[i].key_id[0] ? objs[i].key_id : "-",
			       idhex[0] ? idhex : "-", flags);
		}
	}
out:
	json_decref(arr);
	free(objs);
	creto_p11_uri_free(u);
	creto_hsm_close(h);
	if (rc != CRETO_OK)
		return cli_fail(&e, o.json);
	return rc;
}

/* ---- pub ---- */

static int hsm_pub(int argc, char **argv)
{
	struct common o;
	int done;
	int rc = parse_common(argc, argv, "pub", F(O_MODULE) | F(O_PIN_FILE) | F_OUT, 1, 1, &o, &done);
	if (done)
		return rc;
	if (o.out == NULL)
		return usage_fail("pub", o.json, "-o NAME.pub is required");
	creto_err e;
	creto_err_clear(&e);
	creto_pubkey *pk = NULL;
	char *text = NULL;
	creto_p11_uri *u = NULL;
	rc = creto_p11_uri_parse(o.uri, &u, &e);
	if (rc == CRETO_OK)
		rc = creto_hsm_open_pubkey(o.uri, &o.ko, &pk, &e);
	if (rc == CRETO_OK)
		rc = creto_pubkey_format(pk, u->object, &text, &e);
	if (rc == CRETO_OK) {
		rc = creto_file_write_excl(o.out, text, strlen(text), 0644, &e);
		if (rc != CRETO_OK)
			creto_err_ctx(&e, "hsm pub");
	}
	if (rc == CRETO_OK) {
		/* A hybrid key's ML-DSA half comes from its .pqkey file: with a
		 * PIN the file was unsealed and its public key authenticated;
		 * without, only its binding to the HSM key was checked
		 * (docs/keys.md §4). */
		int hybrid = u->pq_file != NULL;
		int pinned = u->pin_source != NULL || o.ko.pin_file != NULL;
		const char *note = "";
		if (hybrid && !pinned)
			note = " (ML-DSA half not authenticated: no PIN given; add --pin-file to verify "
			       "it)";
		else if (hybrid)
			note = " (ML-DSA half authenticated through the HSM)";
		if (o.json) {
			json_t *j = json_pack("{s:b, s:s, s:s, s:s}", "ok", 1, "file", o.out, "alg",
					      creto_alg_name(creto_pubkey_alg(pk)), "key_id",
					      creto_pubkey_id(pk));
			if (j != NULL && hybrid)
				json_object_set_new(j, "pq_authenticated", json_boolean(pinned));
			rc = cli_json_out(j);
		} else {
			status(&o, "%s: %s public key, key id %s%s", o.out,
			       creto_alg_name(creto_pubkey_alg(pk)), creto_pubkey_id(pk), note);
		}
	}
	free(text);
	creto_pubkey_free(pk);
	creto_p11_uri_free(u);
	if (rc != CRETO_OK)
		return cli_fail(&e, o.json);
	return rc;
}

/* ---- destroy ---- */

static int hsm_destroy(int argc, char **argv)
{
	struct common o;
	int done;
	int rc = parse_common(argc, argv, "destroy", F(O_MODULE) | F(O_PIN_FILE), 1, 1, &o, &done);
	if (done)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	creto_hsm *h = NULL;
	creto_p11_uri *u = NULL;
	size_t n = 0;
	rc = creto_hsm_open_uri(o.uri, &o.ko, CRETO_HSM_LOGIN | CRETO_HSM_RW, &h, &u, &e);
	if (rc == CRETO_OK)
		rc = creto_hsm_destroy(h, u, &n, &e);
	if (rc == CRETO_OK) {
		if (o.json)
			rc = cli_json_out(json_pack("{s:b, s:s, s:i}", "ok", 1, "token",
						    creto_hsm_token_label(h), "destroyed", (json_int_t)n));
		else
			status(&o, "destroyed %zu object%s on token '%s'", n, n == 1 ? "" : "s",
			       creto_hsm_token_label(h));
	}
	creto_p11_uri_free(u);
	creto_hsm_close(h);
	if (rc != CRETO_OK)
		return cli_fail(&e, o.json);
	return rc;
}
