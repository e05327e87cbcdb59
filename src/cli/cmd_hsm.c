/*
 * cmd_hsm.c - `creto hsm`: initialise a token, generate, list, export and
 * destroy keys in a PKCS#11 HSM (SoftHSM2 by default).
 *
 * Tokens and keys are named by RFC 7512 URIs; --module and --pin-file
 * supply what the URI leaves out.  PINs come only from files (--pin-file
 * or the URI's pin-source); a pin-value attribute is refused, since a URI
 * is argv.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
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
static int hsm_mechanisms(int argc, char **argv);
static int hsm_check(int argc, char **argv);
static int hsm_compare(int argc, char **argv);
static int hsm_sign(int argc, char **argv);

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
	{"mechanisms", hsm_mechanisms,
	 "[--module PATH | --endpoint E] [--json] [--quiet] [TOKEN-URI]",
	 "list the mechanisms the token's module offers (C_GetMechanismList/Info)"},
	{"check", hsm_check,
	 "[--module PATH | --endpoint E ...] [--pin-file F] [--json] [--quiet] KEY-URI",
	 "check on every endpoint that the key is there and its mechanism is offered (an Ed25519 "
	 "or AES key through p11-kit remoting is refused, naming the mechanism)"},
	{"compare", hsm_compare,
	 "(--endpoint E --endpoint E ... [TOKEN-URI] | TOKEN-URI TOKEN-URI) [--pin-file F] [--json] "
	 "[--quiet]",
	 "compare the keys (label, CKA_ID, type, creto key id) of one token's replicas; exit 1 if "
	 "they differ"},
	{"sign", hsm_sign,
	 "(--module PATH | --endpoint E ...) [--pin-file F] [--deadline-ms N] [--repeat N "
	 "[--interval-ms N]] [--events FILE] [--json] [--quiet] -i FILE [-o SIG] KEY-URI",
	 "sign FILE with the key, failing over between endpoints; --repeat signs N times and "
	 "reports the failovers (an availability drill)"},
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
	O_PQ_FILE, O_QUIET, O_HELP, O_ENDPOINT, O_DEADLINE, O_REPEAT, O_INTERVAL, O_EVENTS
};

/* Which options a command takes (bits of 1 << (O_x - O_MODULE), and F_OUT). */
#define F(o) (1u << ((o) - O_MODULE))
#define F_OUT (1u << 20)
#define F_IN (1u << 21)
#define F_ALWAYS (F(O_JSON) | F(O_QUIET) | F(O_HELP))

struct common {
	const char *cmd;
	creto_hsm_opts ko;
	const char *label, *type, *out, *pq_file, *so_pin;
	int json, quiet, extractable, help;
	const char *uri, *uri2;
	creto_hsm_endpoint ep[CRETO_HSM_ENDPOINTS_MAX];
	size_t nep;
	unsigned deadline_ms, interval_ms;
	unsigned long repeat;
	const char *events, *in;
};

/* A decimal number in [lo, hi] from an option value; 0 when bad. */
static int parse_num(const char *v, unsigned long lo, unsigned long hi, unsigned long *out)
{
	char *end = NULL;
	if (v[0] < '0' || v[0] > '9')
		return 0;
	errno = 0;
	unsigned long x = strtoul(v, &end, 10);
	if (*end != '\0' || errno != 0 || x < lo || x > hi)
		return 0;
	*out = x;
	return 1;
}

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
		{"endpoint", required_argument, NULL, O_ENDPOINT},
		{"deadline-ms", required_argument, NULL, O_DEADLINE},
		{"repeat", required_argument, NULL, O_REPEAT},
		{"interval-ms", required_argument, NULL, O_INTERVAL},
		{"events", required_argument, NULL, O_EVENTS},
		{"in", required_argument, NULL, 'i'},
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
	while ((c = getopt_long(argc, argv, ":o:i:h", opts, &li)) != -1) {
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
		unsigned bit = c == 'o' ? F_OUT : c == 'i' ? F_IN : F(c);
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
		case 'i': o->in = optarg; break;
		case O_EVENTS: o->events = optarg; break;
		case O_ENDPOINT: {
			if (o->nep == CRETO_HSM_ENDPOINTS_MAX)
				return usage_fail(name, json, "at most %d --endpoint options",
						  CRETO_HSM_ENDPOINTS_MAX);
			creto_err pe;
			creto_err_clear(&pe);
			if (creto_hsm_endpoint_parse(optarg, &o->ep[o->nep], &pe) != CRETO_OK)
				return usage_fail(name, json, "%s", pe.msg);
			o->nep++;
			break;
		}
		case O_DEADLINE:
		case O_REPEAT:
		case O_INTERVAL: {
			unsigned long num = 0;
			unsigned long hi = c == O_REPEAT ? 100000000UL : 600000UL;
			if (!parse_num(optarg, c == O_INTERVAL ? 0 : 1, hi, &num))
				return usage_fail(name, json, "%s must be a number from %d to %lu", optname,
						  c == O_INTERVAL ? 0 : 1, hi);
			if (c == O_DEADLINE)
				o->deadline_ms = (unsigned)num;
			else if (c == O_REPEAT)
				o->repeat = num;
			else
				o->interval_ms = (unsigned)num;
			break;
		}
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
	o->uri = left >= 1 ? argv[optind] : "pkcs11:";
	o->uri2 = left >= 2 ? argv[optind + 1] : NULL;
	if (strncmp(o->uri, "pkcs11:", 7) != 0)
		return usage_fail(name, json, "'%s' is not a pkcs11: URI", o->uri);
	if (o->uri2 != NULL && strncmp(o->uri2, "pkcs11:", 7) != 0)
		return usage_fail(name, json, "'%s' is not a pkcs11: URI", o->uri2);
	if (o->nep > 0 && o->ko.module_path != NULL)
		return usage_fail(name, json, "--module and --endpoint exclude each other");
	o->ko.endpoints = o->nep ? o->ep : NULL;
	o->ko.nendpoints = o->nep;
	o->ko.deadline_ms = o->deadline_ms;
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

/* ---- remote HSMs: mechanisms, check, compare, sign (docs/hsm-remote.md) ---- */

/* Open the token of o->uri (or uri) at endpoint i, or through --module when
 * no endpoint was named.  *u receives the parsed URI (caller frees). */
static int open_at(const struct common *o, const char *uri, size_t i, unsigned flags,
		   creto_hsm **h, creto_p11_uri **u, creto_err *e)
{
	*h = NULL;
	int rc = creto_p11_uri_parse(uri, u, e);
	if (rc != CRETO_OK)
		return rc;
	creto_hsm_opts ko = o->ko;
	ko.endpoints = NULL;
	ko.nendpoints = 0;
	creto_p11_uri cu = **u;
	if (o->nep > 0) {
		const creto_hsm_endpoint *ep = &o->ep[i];
		ko.module_path = ep->module;
		cu.module_path = NULL;
		cu.module_name = NULL;
		if (ep->serial[0] != '\0')
			cu.serial = (char *)ep->serial;
		if (ep->has_slot_id) {
			cu.has_slot_id = 1;
			cu.slot_id = ep->slot_id;
		}
	}
	if ((*u)->pin_source || (*u)->pin_value || ko.pin_file)
		flags |= CRETO_HSM_LOGIN;
	rc = creto_hsm_open(&cu, &ko, flags, h, e);
	if (rc != CRETO_OK && o->nep > 0) {
		char n[600];
		creto_hsm_endpoint_format(&o->ep[i], n, sizeof(n));
		creto_err_ctx(e, "HSM endpoint %s", n);
	}
	return rc;
}

static void ep_name(const struct common *o, size_t i, char *out, size_t cap)
{
	if (o->nep > 0)
		creto_hsm_endpoint_format(&o->ep[i], out, cap);
	else
		snprintf(out, cap, "%s", o->ko.module_path ? o->ko.module_path : CRETO_HSM_DEFAULT_MODULE);
}

static void mech_flags_str(unsigned f, char *out, size_t cap)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {
		{CRETO_HSM_MF_SIGN, "sign"},	 {CRETO_HSM_MF_VERIFY, "verify"},
		{CRETO_HSM_MF_ENCRYPT, "encrypt"}, {CRETO_HSM_MF_DECRYPT, "decrypt"},
		{CRETO_HSM_MF_DIGEST, "digest"}, {CRETO_HSM_MF_WRAP, "wrap"},
		{CRETO_HSM_MF_UNWRAP, "unwrap"}, {CRETO_HSM_MF_GENERATE, "generate"},
		{CRETO_HSM_MF_GENERATE_KEY_PAIR, "generate-key-pair"}, {CRETO_HSM_MF_DERIVE, "derive"},
	};
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && n < cap; i++)
		if (f & names[i].bit)
			n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "", names[i].name);
}

static int hsm_mechanisms(int argc, char **argv)
{
	struct common o;
	int done;
	int rc = parse_common(argc, argv, "mechanisms", F(O_MODULE) | F(O_ENDPOINT), 0, 1, &o, &done);
	if (done)
		return rc;
	if (o.nep > 1)
		return usage_fail("mechanisms", o.json, "name one --endpoint");
	creto_err e;
	creto_err_clear(&e);
	creto_hsm *h = NULL;
	creto_p11_uri *u = NULL;
	creto_hsm_mech *m = NULL;
	size_t n = 0;
	rc = open_at(&o, o.uri, 0, 0, &h, &u, &e);
	if (rc == CRETO_OK)
		rc = creto_hsm_mechanisms(h, &m, &n, &e);
	if (rc != CRETO_OK)
		goto out;
	json_t *arr = o.json ? json_array() : NULL;
	for (size_t i = 0; i < n; i++) {
		char b[32], fl[160];
		const char *name = creto_hsm_mech_name(m[i].type, b);
		mech_flags_str(m[i].flags, fl, sizeof(fl));
		if (arr != NULL)
			json_array_append_new(arr, json_pack("{s:s, s:I, s:s, s:I, s:I}", "name", name,
							     "type", (json_int_t)m[i].type, "flags", fl,
							     "min_key", (json_int_t)m[i].min_key,
							     "max_key", (json_int_t)m[i].max_key));
		else
			printf("%-28s %-40s %lu-%lu\n", name, fl, m[i].min_key, m[i].max_key);
	}
	char en[600];
	ep_name(&o, 0, en, sizeof(en));
	if (arr != NULL)
		rc = cli_json_out(json_pack("{s:b, s:s, s:s, s:o}", "ok", 1, "token",
					    creto_hsm_token_label(h), "module", en, "mechanisms", arr));
	else
		status(&o, "%zu mechanisms on token '%s' (%s)", n, creto_hsm_token_label(h), en);
out:
	free(m);
	creto_p11_uri_free(u);
	creto_hsm_close(h);
	return rc != CRETO_OK ? cli_fail(&e, o.json) : rc;
}

/* Find the key u names for a check: the private key of a key pair, else a
 * secret key. */
static int find_for_check(creto_hsm *h, const creto_p11_uri *u, creto_hsm_key **k, creto_err *e)
{
	if (u->type != CRETO_P11_TYPE_ANY)
		return creto_hsm_key_find(h, u, u->type, k, e);
	int rc = creto_hsm_key_find(h, u, CRETO_P11_TYPE_PRIVATE, k, e);
	if (rc == CRETO_EUSAGE && strstr(e->msg, "not found") != NULL) {
		creto_err_clear(e);
		rc = creto_hsm_key_find(h, u, CRETO_P11_TYPE_SECRET_KEY, k, e);
	}
	return rc;
}

static int hsm_check(int argc, char **argv)
{
	struct common o;
	int done;
	int rc = parse_common(argc, argv, "check", F(O_MODULE) | F(O_ENDPOINT) | F(O_PIN_FILE), 1, 1,
			      &o, &done);
	if (done)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	size_t nep = o.nep ? o.nep : 1;
	json_t *arr = o.json ? json_array() : NULL;
	for (size_t i = 0; i < nep && rc == CRETO_OK; i++) {
		creto_hsm *h = NULL;
		creto_p11_uri *u = NULL;
		creto_hsm_key *k = NULL;
		char en[600], kid[CRETO_KEYID_HEXLEN + 1] = "";
		ep_name(&o, i, en, sizeof(en));
		rc = open_at(&o, o.uri, i, 0, &h, &u, &e);
		if (rc == CRETO_OK)
			rc = find_for_check(h, u, &k, &e);
		if (rc == CRETO_OK)
			rc = creto_hsm_key_check(h, k, &e);
		if (rc == CRETO_OK && creto_hsm_key_type(k) != CRETO_HSM_KT_AES256)
			rc = creto_hsm_pub_id(h, u, kid, &e);
		if (rc == CRETO_OK) {
			unsigned long mt = 0;
			unsigned mf = 0;
			char b[32];
			(void)creto_hsm_keytype_mech(creto_hsm_key_type(k), &mt, &mf);
			const char *mn = creto_hsm_mech_name(mt, b);
			const char *kt = creto_hsm_keytype_name(creto_hsm_key_type(k));
			if (arr != NULL)
				json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s?}", "endpoint",
								     en, "label", creto_hsm_key_label(k),
								     "key_type", kt, "mechanism", mn,
								     "key_id", kid[0] ? kid : NULL));
			else
				status(&o, "ok: key '%s' (%s%s%s) on token '%s' at %s: %s offered",
				       creto_hsm_key_label(k), kt, kid[0] ? ", key id " : "", kid,
				       creto_hsm_token_label(h), en, mn);
		}
		creto_hsm_key_free(k);
		creto_p11_uri_free(u);
		creto_hsm_close(h);
	}
	if (rc != CRETO_OK) {
		json_decref(arr);
		return cli_fail(&e, o.json);
	}
	if (arr != NULL)
		return cli_json_out(json_pack("{s:b, s:o}", "ok", 1, "endpoints", arr));
	return CRETO_OK;
}

/* One object as compare sees it: "type label id=HEX keytype keyid". */
static char *obj_line(const creto_hsm_obj *ob)
{
	char idhex[2 * CRETO_HSM_ID_MAX + 1];
	hexid(idhex, ob->id, ob->idlen);
	const char *tn = creto_p11_type_name(ob->type);
	const char *kn = creto_hsm_keytype_name(ob->keytype);
	char *s = NULL;
	if (asprintf(&s, "%s '%s' id=%s %s%s%s", tn ? tn : "object", ob->label, idhex, kn ? kn : "-",
		     ob->key_id[0] ? " key id " : "", ob->key_id) < 0)
		return NULL;
	return s;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int hsm_compare(int argc, char **argv)
{
	struct common o;
	int done;
	int rc = parse_common(argc, argv, "compare", F(O_ENDPOINT) | F(O_PIN_FILE) | F(O_MODULE), 0, 2,
			      &o, &done);
	if (done)
		return rc;
	size_t nsides = o.nep ? o.nep : (o.uri2 ? 2 : 0);
	if (nsides < 2 || (o.nep > 0 && o.uri2 != NULL))
		return usage_fail("compare", o.json,
				  "name two or more --endpoint options (and one TOKEN-URI), or two TOKEN-URIs");
	creto_err e;
	creto_err_clear(&e);
	char **lines[CRETO_HSM_ENDPOINTS_MAX] = {0};
	size_t nl[CRETO_HSM_ENDPOINTS_MAX] = {0};
	char names[CRETO_HSM_ENDPOINTS_MAX][600];
	for (size_t i = 0; i < nsides && rc == CRETO_OK; i++) {
		creto_hsm *h = NULL;
		creto_p11_uri *u = NULL;
		creto_hsm_obj *objs = NULL;
		size_t n = 0;
		const char *uri = o.nep ? o.uri : (i == 0 ? o.uri : o.uri2);
		if (o.nep)
			ep_name(&o, i, names[i], sizeof(names[i]));
		else
			snprintf(names[i], sizeof(names[i]), "%s", uri);
		rc = open_at(&o, uri, o.nep ? i : 0, 0, &h, &u, &e);
		if (rc == CRETO_OK)
			rc = creto_hsm_list(h, &objs, &n, &e);
		if (rc == CRETO_OK && (lines[i] = calloc(n ? n : 1, sizeof(char *))) == NULL)
			rc = creto_err_set(&e, CRETO_EOP, "out of memory");
		for (size_t j = 0; rc == CRETO_OK && j < n; j++) {
			if ((lines[i][j] = obj_line(&objs[j])) == NULL)
				rc = creto_err_set(&e, CRETO_EOP, "out of memory");
			else
				nl[i]++;
		}
		if (rc == CRETO_OK)
			qsort(lines[i], nl[i], sizeof(char *), str_cmp);
		free(objs);
		creto_p11_uri_free(u);
		creto_hsm_close(h);
	}
	size_t diffs = 0;
	char firstdiff[1400] = "";
	json_t *arr = o.json ? json_array() : NULL;
	/* Every side against the first: what one has and the other lacks. */
	for (size_t i = 1; i < nsides && rc == CRETO_OK; i++) {
		for (int dir = 0; dir < 2; dir++) {
			size_t a = dir ? i : 0, b = dir ? 0 : i;
			for (size_t x = 0; x < nl[a]; x++) {
				if (bsearch(&lines[a][x], lines[b], nl[b], sizeof(char *), str_cmp) != NULL)
					continue;
				diffs++;
				if (arr != NULL)
					json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "object",
									     lines[a][x], "on", names[a],
									     "missing_on", names[b]));
				if (firstdiff[0] == '\0')
					snprintf(firstdiff, sizeof(firstdiff), "%s is on %s but not on %s",
						 lines[a][x], names[a], names[b]);
			}
		}
	}
	for (size_t i = 0; i < nsides; i++) {
		for (size_t j = 0; j < nl[i]; j++)
			free(lines[i][j]);
		free(lines[i]);
	}
	if (rc != CRETO_OK) {
		json_decref(arr);
		return cli_fail(&e, o.json);
	}
	if (diffs > 0)
		fprintf(stderr, "creto: hsm compare: %zu difference(s) between the replicas, first: %s\n",
			diffs, firstdiff);
	if (arr != NULL)
		return cli_json_out(json_pack("{s:b, s:b, s:I, s:I, s:o}", "ok", diffs == 0, "same",
					      diffs == 0, "objects", (json_int_t)nl[0], "differences",
					      (json_int_t)diffs, "details", arr)) != CRETO_OK
			       ? CRETO_EOP
		       : diffs ? CRETO_EREJECT : CRETO_OK;
	if (diffs == 0)
		status(&o, "same keys on %zu endpoints: %zu objects", nsides, nl[0]);
	return diffs ? CRETO_EREJECT : CRETO_OK;
}

/* --events FILE: one JSON object per line per event, appended (a stand-in
 * for the audit log until the command runs inside `creto serve`). */
struct event_file {
	pthread_mutex_t mu;
	FILE *f;
};

static int event_to_file(void *ctx, const creto_event *ev)
{
	struct event_file *ef = ctx;
	json_t *j = json_pack("{s:s, s:s, s:s?, s:s?, s:s?}", "component", ev->component, "event",
			      ev->event, "outcome", ev->outcome, "subject", ev->subject, "reason",
			      ev->reason);
	if (j == NULL)
		return CRETO_EOP;
	for (size_t i = 0; i < ev->nfields; i++)
		json_object_set_new(j, ev->fields[i].key,
				    ev->fields[i].str ? json_string(ev->fields[i].str)
						      : json_integer(ev->fields[i].num));
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	if (s == NULL)
		return CRETO_EOP;
	pthread_mutex_lock(&ef->mu);
	int ok = fprintf(ef->f, "%s\n", s) > 0 && fflush(ef->f) == 0;
	pthread_mutex_unlock(&ef->mu);
	free(s);
	return ok ? CRETO_OK : CRETO_EOP;
}

static int hsm_sign(int argc, char **argv)
{
	struct common o;
	int done;
	int rc = parse_common(argc, argv, "sign",
			      F(O_MODULE) | F(O_ENDPOINT) | F(O_PIN_FILE) | F(O_DEADLINE) | F(O_REPEAT) |
				      F(O_INTERVAL) | F(O_EVENTS) | F_IN | F_OUT,
			      1, 1, &o, &done);
	if (done)
		return rc;
	if (o.in == NULL)
		return usage_fail("sign", o.json, "-i FILE is required");
	if (o.nep == 0) {
		/* One endpoint: --module (or the default), still under the
		 * deadline. */
		creto_err pe;
		creto_err_clear(&pe);
		if (creto_hsm_endpoint_parse(o.ko.module_path ? o.ko.module_path : CRETO_HSM_DEFAULT_MODULE,
					     &o.ep[0], &pe) != CRETO_OK)
			return usage_fail("sign", o.json, "%s", pe.msg);
		o.nep = 1;
		o.ko.module_path = NULL;
		o.ko.endpoints = o.ep;
		o.ko.nendpoints = 1;
	}
	creto_err e;
	creto_err_clear(&e);
	struct event_file ef = {PTHREAD_MUTEX_INITIALIZER, NULL};
	creto_event_sink sink = {event_to_file, &ef};
	creto_hsm_ha *g = NULL;
	creto_pubkey *pk = NULL;
	uint8_t *msg = NULL, sig[128];
	size_t msglen = 0, siglen = 0;
	unsigned long n = o.repeat ? o.repeat : 1, okn = 0, bad = 0;
	if (o.events != NULL) {
		ef.f = fopen(o.events, "ae");
		if (ef.f == NULL) {
			rc = creto_err_set(&e, CRETO_EOP, "events file %s: %s", o.events, strerror(errno));
			goto out;
		}
		o.ko.events = &sink;
	}
	rc = creto_file_read(o.in, 64u << 20, &msg, &msglen, &e);
	if (rc == CRETO_OK)
		rc = creto_hsm_ha_open(o.uri, &o.ko, &g, &e);
	if (rc == CRETO_OK) {
		creto_alg alg;
		size_t pl;
		const uint8_t *raw = creto_hsm_ha_pub(g, &alg, &pl);
		rc = creto_pubkey_new(alg, raw, pl, &pk, &e);
	}
	if (rc != CRETO_OK)
		goto out;
	creto_err first;
	creto_err_clear(&first);
	for (unsigned long i = 0; i < n; i++) {
		creto_err se;
		creto_err_clear(&se);
		int src = creto_hsm_ha_sign(g, msg, msglen, sig, sizeof(sig), &siglen, &se);
		if (src == CRETO_OK)
			src = creto_pubkey_verify(pk, NULL, 0, msg, msglen, sig, siglen, &se);
		if (src == CRETO_OK) {
			okn++;
		} else {
			if (bad++ == 0)
				first = se;
			if (n == 1 || se.code == CRETO_EUSAGE)
				break; /* a refusal (wrong PIN, ...) ends the drill */
		}
		if (o.interval_ms > 0 && i + 1 < n) {
			struct timespec ts = {o.interval_ms / 1000, (long)(o.interval_ms % 1000) * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	creto_hsm_ha_stats st;
	creto_hsm_ha_stats_get(g, &st);
	if (bad > 0 && okn == 0) {
		e = first;
		rc = e.code;
		goto out;
	}
	if (o.out != NULL) {
		char hex[2 * sizeof(sig) + 2];
		creto_hex_encode(hex, sig, siglen);
		size_t hl = strlen(hex);
		hex[hl] = '\n';
		rc = creto_file_write_atomic(o.out, (const uint8_t *)hex, hl + 1, 0644, &e);
		if (rc != CRETO_OK)
			goto out;
	}
	if (o.json) {
		json_t *eps = json_array();
		for (size_t i = 0; i < creto_hsm_ha_endpoints(g); i++) {
			creto_hsm_ha_endpoint_status es;
			creto_hsm_ha_endpoint_get(g, i, &es);
			json_array_append_new(eps, json_pack("{s:s, s:b, s:b, s:I, s:s}", "endpoint", es.name,
							     "up", es.up, "active", es.active, "downs",
							     (json_int_t)es.downs, "reason", es.reason));
		}
		rc = cli_json_out(json_pack("{s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:i, s:o}", "ok",
					    bad == 0, "token", creto_hsm_ha_token_label(g), "key_id",
					    creto_hsm_ha_key_id(g), "ops", (json_int_t)st.ops, "succeeded",
					    (json_int_t)okn, "failed", (json_int_t)bad, "retries",
					    (json_int_t)st.retries, "failovers", (json_int_t)st.failovers,
					    "max_attempts", (int)st.max_attempts, "endpoints", eps));
	} else {
		status(&o, "signed %lu/%lu with key id %s on token '%s': %llu retries, %llu failovers",
		       okn, n, creto_hsm_ha_key_id(g), creto_hsm_ha_token_label(g),
		       (unsigned long long)st.retries, (unsigned long long)st.failovers);
	}
	if (rc == CRETO_OK && bad > 0) {
		fprintf(stderr, "creto: hsm sign: %lu of %lu signatures failed, first: %s\n", bad, n,
			first.msg);
		rc = first.code ? first.code : CRETO_EOP;
	}
out:
	creto_pubkey_free(pk);
	creto_hsm_ha_close(g);
	free(msg);
	if (ef.f != NULL)
		fclose(ef.f);
	if (rc != CRETO_OK && e.code != CRETO_OK)
		return cli_fail(&e, o.json);
	return rc;
}
