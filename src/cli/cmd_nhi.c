/*
 * cmd_nhi.c - `creto nhi ...`: the agent store, encrypted backups, tokens,
 * the issuer's JWK Set and offline resolution (docs/nhi.md).
 *
 * All subcommands share one option parser; each names the options it
 * accepts, so an option that does not apply is a usage error.  Every
 * subcommand takes --json (errors too, usage errors included, in the shape
 * of docs/errors.md) and --quiet (no status lines).  Requested output goes
 * to stdout; status lines ("added agent X") to stderr.  Every decision
 * (add, key add/remove, revoke, suspend, resume, restore, token issue,
 * token exchange, resolve) ends in
 * decided(), the one place the audit log will record it.  The time of
 * every decision is cli_clock()'s.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <getopt.h>
#include <sys/file.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "creto/audit.h"
#include "creto/keys.h"
#include "creto/nhi.h"
#include "creto/nhi_oauth.h"
#include "util/enc.h"
#include "util/file.h"
#include "util/timeutil.h"

#define MAX_MULTI 64

enum {
	O_DB = 1000, O_ISSUER, O_ID, O_NAME, O_SCOPE, O_NOT_BEFORE, O_NOT_AFTER, O_ISSUER_KID,
	O_ISSUER_KEY, O_JSON, O_WRAP_KEY, O_OUTPUT, O_MODULE, O_PIN_FILE, O_AGENT, O_TTL, O_KEY,
	O_AUD, O_TOKEN, O_TOKEN_FILE, O_JWKS, O_BACKUP, O_STATUS, O_JTI, O_QUIET, O_PUB, O_FORM_FILE,
	O_ISSUER_URL, O_REPLAY_STATE, O_SOURCE, O_CONTENT_TYPE, O_JWKS_FLAG, O_AUDIT, O_AUDIT_KEY,
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
	{"quiet", no_argument, NULL, O_QUIET},
	{"pub", required_argument, NULL, O_PUB},
	{"form-file", required_argument, NULL, O_FORM_FILE},
	{"issuer-url", required_argument, NULL, O_ISSUER_URL},
	{"replay-state", required_argument, NULL, O_REPLAY_STATE},
	{"source", required_argument, NULL, O_SOURCE},
	{"content-type", required_argument, NULL, O_CONTENT_TYPE},
	{"jwks-set", no_argument, NULL, O_JWKS_FLAG},
	{"audit", required_argument, NULL, O_AUDIT},
	{"audit-key", required_argument, NULL, O_AUDIT_KEY},
	{NULL, 0, NULL, 0},
};

struct args {
	const char *db, *issuer, *id, *name, *not_before, *not_after, *issuer_kid, *issuer_key;
	const char *wrap_key, *output, *agent, *ttl, *aud, *token_file, *jwks, *backup;
	const char *status, *jti, *form_file, *issuer_url, *replay_state, *source, *content_type;
	const char *audit_dir, *audit_key;
	const char *pub[CRETO_NHI_AGENT_KEYS_MAX];
	size_t npub;
	const char *scope[MAX_MULTI];
	size_t nscope;
	const char *key[MAX_MULTI];
	size_t nkey;
	int json, quiet, jwks_flag;
	creto_keys_opts kopts;
	const char *pos[4]; /* positional arguments */
	int npos;
};

static const struct cli_cmd *cur_cmd;
static const char *cur_label = "";   /* "add", "token issue": names the command in messages */
static int cur_json;                  /* --json anywhere before "--": usage errors in JSON too */

static int64_t clock_now(void)
{
	return creto_clock_now(cli_clock());
}

/* A usage error, in the one form "creto: nhi CMD: why" on stderr, and with
 * --json the docs/errors.md object on stdout.  Returns 2. */
static int usage_error(const char *fmt, ...) CRETO_PRINTF(1, 2);

static int usage_error(const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	creto_err e;
	creto_err_set(&e, CRETO_EUSAGE, "nhi %s: %s", cur_label, why);
	return cli_fail(&e, cur_json);
}

/* A usage error followed by the subcommand's synopsis (stderr). */
static int usage_error_synopsis(const char *fmt, ...) CRETO_PRINTF(1, 2);

static int usage_error_synopsis(const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	(void)usage_error("%s", why);
	return cli_usage("nhi", cur_cmd);
}

/* A status line: what was done, on stderr, silenced by --quiet. */
static void status_line(const struct args *a, const char *fmt, ...) CRETO_PRINTF(2, 3);

static void status_line(const struct args *a, const char *fmt, ...)
{
	if (a->quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- decisions and the audit log (--audit DIR, docs/nhi.md "Audit") ----
 * Every decision an nhi command takes ends in decided(), granted or
 * refused, with what it was about.  With --audit DIR it is appended to that
 * audit log (component "nhi") and made durable before anything is printed;
 * a decision that changes something (add, key add/remove, revoke, suspend,
 * resume, restore, backup, token issue) is first recorded by intend() --
 * durable -- and only then committed; a commit that then fails appends an
 * "aborted" entry.  A log that cannot be written stops the command before
 * the change (exit 3).  Without --audit a warning says nothing was recorded.
 * Never a token, an assertion or a PIN in an entry. */
enum nhi_decision {
	D_ADD,
	D_REVOKE,
	D_SUSPEND,
	D_RESUME,
	D_RESTORE,
	D_TOKEN_ISSUE,
	D_TOKEN_EXCHANGE,
	D_KEY_ADD,
	D_KEY_REMOVE,
	D_RESOLVE,
	D_BACKUP,
};

static const char *const d_event[] = {
	[D_ADD] = "add", [D_REVOKE] = "revoke", [D_SUSPEND] = "suspend", [D_RESUME] = "resume",
	[D_RESTORE] = "restore", [D_TOKEN_ISSUE] = "token", [D_TOKEN_EXCHANGE] = "token",
	[D_KEY_ADD] = "key_add", [D_KEY_REMOVE] = "key_remove", [D_RESOLVE] = "resolve",
	[D_BACKUP] = "backup",
};

#define AUD_FIELDS_MAX 8
static struct {
	creto_audit *log;     /* open for this command, or NULL */
	creto_signer *signer; /* --audit-key: a checkpoint is signed before exit */
	const char *dir;
	int intended;         /* this decision's "ok" entry is durable already */
	int failed;           /* intend() could not write it: nothing was done */
	int by_library;       /* the library records this decision itself (token exchange) */
	creto_event_field f[AUD_FIELDS_MAX];
	size_t nf;
	char actor[32];
} aud;

/* A detail of the decision being taken (values borrowed until decided()). */
static void aud_str(const char *key, const char *v)
{
	if (v != NULL && aud.nf < AUD_FIELDS_MAX)
		aud.f[aud.nf++] = (creto_event_field){.key = key, .str = v};
}

static void aud_num(const char *key, int64_t v)
{
	if (aud.nf < AUD_FIELDS_MAX)
		aud.f[aud.nf++] = (creto_event_field){.key = key, .num = v};
}

/* Whether someone else holds the log's writer lock right now (another
 * creto command appending): probed by taking it. */
static int aud_lock_busy(const char *dir)
{
	char p[4200];
	snprintf(p, sizeof(p), "%s/lock", dir);
	int fd = open(p, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int busy = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
	close(fd);
	return busy;
}

/* Open the log named by --audit before anything is decided (a log that
 * cannot be opened: exit 3, nothing done).  Returns the exit status. */
static int audit_open(const struct args *a)
{
	if (a->audit_key != NULL && a->audit_dir == NULL)
		return usage_error("--audit-key needs --audit DIR");
	if (a->audit_dir == NULL)
		return CRETO_OK;
	creto_err e;
	creto_err_clear(&e);
	snprintf(aud.actor, sizeof(aud.actor), "uid:%u", (unsigned)getuid());
	aud.dir = a->audit_dir;
	if (a->audit_key != NULL && creto_keys_open_signer(a->audit_key, &a->kopts, &aud.signer, &e) != CRETO_OK) {
		char m[CRETO_ERR_MSG_MAX];
		snprintf(m, sizeof(m), "%s", e.msg);
		creto_err_set(&e, CRETO_EOP, "nhi %s: --audit-key: %.900s (nothing done)", cur_label, m);
		return cli_fail(&e, a->json);
	}
	creto_audit_opts ao = {.clock = cli_clock(), .signer = aud.signer};
	/* another command appending holds the log for a moment: wait (bounded) */
	int rc;
	for (int tries = 0; (rc = creto_audit_open(a->audit_dir, &ao, &aud.log, &e)) == CRETO_EOP &&
			    tries < 500 && aud_lock_busy(a->audit_dir); tries++) {
		struct timespec ts = {0, 10 * 1000000L};
		(void)nanosleep(&ts, NULL);
		creto_err_clear(&e);
	}
	if (rc != CRETO_OK) {
		aud.log = NULL;
		creto_err ce;
		creto_err_set(&ce, CRETO_EOP, "nhi %s: --audit %s: %s (nothing done)", cur_label, a->audit_dir, e.msg);
		return cli_fail(&ce, a->json);
	}
	return CRETO_OK;
}

/* Checkpoint (with --audit-key) and close; called once the command is done. */
static void audit_close(void)
{
	if (aud.log != NULL && aud.signer != NULL && creto_audit_size(aud.log) > 0) {
		creto_err e;
		creto_err_clear(&e);
		if (creto_audit_checkpoint(aud.log, &e) != CRETO_OK)
			fprintf(stderr, "creto: warning: nhi %s: %s (the entries are durable; `creto audit "
				"checkpoint --dir %s --key K` signs one later)\n", cur_label, e.msg, aud.dir);
	}
	creto_audit_close(aud.log);
	creto_signer_free(aud.signer);
	memset(&aud, 0, sizeof(aud));
}

static int audit_append(enum nhi_decision d, const char *subject, const char *outcome, const char *reason,
			creto_err *e)
{
	creto_event ev = {.component = "nhi", .event = d_event[d], .outcome = outcome, .subject = subject,
			  .reason = reason, .actor = aud.actor, .fields = aud.f, .nfields = aud.nf};
	creto_err le;
	creto_err_clear(&le);
	if (creto_audit_append(aud.log, &ev, NULL, &le) != CRETO_OK)
		return creto_err_set(e, CRETO_EOP, "nhi %s: audit log %.512s: %.512s", cur_label, aud.dir, le.msg);
	return CRETO_OK;
}

/* Record that the decision is taken, durably, before it is committed.
 * CRETO_EOP (e filled) when the log cannot be written: do not commit. */
static int intend(enum nhi_decision d, const char *subject, creto_err *e)
{
	if (aud.log == NULL)
		return CRETO_OK;
	int rc = audit_append(d, subject, "ok", NULL, e);
	if (rc == CRETO_OK) {
		aud.intended = 1;
	} else {
		aud.failed = 1;
		char m[CRETO_ERR_MSG_MAX];
		snprintf(m, sizeof(m), "%s", e->msg);
		creto_err_set(e, CRETO_EOP, "%.900s (not recorded, so not done)", m);
	}
	return rc;
}

/* The refusal's rule as recorded: the message without its "nhi CMD:" frame. */
static const char *reason_of(const creto_err *e)
{
	return e->msg[0] ? e->msg : "unknown";
}

static int decided(const struct args *a, enum nhi_decision d, const char *subject, int rc, const creto_err *e,
		   const char *done)
{
	if (aud.failed) /* e: the log's error; the change was not made */
		return cli_fail(e, a->json);
	if (aud.log != NULL && !aud.by_library && !(rc == CRETO_OK && aud.intended)) {
		/* granted: the entry now (token issue records by intend() first);
		 * refused before the commit: why; failed after intend(): aborted */
		const char *outcome = rc == CRETO_OK ? "ok"
				      : aud.intended ? "aborted"
				      : rc == CRETO_EREJECT ? "refused" : "failed";
		creto_err ae;
		creto_err_clear(&ae);
		if (audit_append(d, subject, outcome, rc == CRETO_OK ? NULL : reason_of(e), &ae) != CRETO_OK) {
			/* one error line: the log's (exit 3), with what it was to record */
			char m[CRETO_ERR_MSG_MAX];
			snprintf(m, sizeof(m), "%s", ae.msg);
			if (rc != CRETO_OK)
				creto_err_set(&ae, CRETO_EOP, "%.600s (the %s it was to record: %.300s)", m, outcome, e->msg);
			else
				creto_err_set(&ae, CRETO_EOP, "%.900s (not recorded, so not done)", m);
			return cli_fail(&ae, a->json);
		}
	} else if (aud.log == NULL && rc == CRETO_OK) {
		/* what was done is not in any log; a refusal prints its one error
		 * line only (docs/errors.md), and nothing was done */
		fprintf(stderr, "creto: warning: nhi %s: no --audit DIR: nothing was recorded\n", cur_label);
	}
	if (rc != CRETO_OK)
		return cli_fail(e, a->json);
	if (done != NULL)
		status_line(a, "%s", done);
	return CRETO_OK;
}

/* 1 when argv holds --json before any "--". */
static int argv_json(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--json") == 0)
			return 1;
	}
	return 0;
}

/* allowed: the O_* values this subcommand takes, 0-terminated; --json and
 * --quiet are always allowed. */
static int parse(int argc, char **argv, const int *allowed, int maxpos, struct args *a)
{
	memset(a, 0, sizeof(*a));
	cur_json = argv_json(argc, argv);
	a->json = cur_json;
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "o:", all_opts, NULL)) != -1) {
		if (c == 'o')
			c = O_OUTPUT;
		if (c == O_TOKEN)
			return usage_error("--token: a token is a credential and is never taken from "
					   "the command line; use --token-file FILE or --token-file -");
		int ok = c == O_JSON || c == O_QUIET;
		for (const int *p = allowed; *p; p++)
			ok |= *p == c;
		if (!ok || c == '?' || c == ':') {
			/* name the option, never echo a value (it may be a secret) */
			const char *w = argv[optind - 1];
			if (w[0] != '-' && optind >= 2)
				w = argv[optind - 2];
			if (c == ':')
				return usage_error_synopsis("option '%.64s' needs a value", w[0] == '-' ? w : "?");
			return usage_error_synopsis("unknown or misplaced option '%.64s'", w[0] == '-' ? w : "?");
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
		case O_QUIET: a->quiet = 1; break;
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
		case O_FORM_FILE: a->form_file = optarg; break;
		case O_ISSUER_URL: a->issuer_url = optarg; break;
		case O_REPLAY_STATE: a->replay_state = optarg; break;
		case O_SOURCE: a->source = optarg; break;
		case O_CONTENT_TYPE: a->content_type = optarg; break;
		case O_JWKS_FLAG: a->jwks_flag = 1; break;
		case O_AUDIT: a->audit_dir = optarg; break;
		case O_AUDIT_KEY: a->audit_key = optarg; break;
		case O_PUB:
			if (a->npub == CRETO_NHI_AGENT_KEYS_MAX)
				return usage_error("too many --pub (max %d)", CRETO_NHI_AGENT_KEYS_MAX);
			a->pub[a->npub++] = optarg;
			break;
		case O_SCOPE:
			if (a->nscope == MAX_MULTI)
				return usage_error("too many --scope (max %d)", MAX_MULTI);
			a->scope[a->nscope++] = optarg;
			break;
		case O_KEY:
			if (a->nkey == MAX_MULTI)
				return usage_error("too many --key (max %d)", MAX_MULTI);
			a->key[a->nkey++] = optarg;
			break;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (a->npos == maxpos)
			return usage_error_synopsis("unexpected argument '%.64s'", argv[i]);
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
	if (v == NULL)
		return usage_error_synopsis("%s is required", opt);
	return CRETO_OK;
}

/* Exactly one agent ID operand. */
static int need_id(const struct args *a)
{
	if (a->npos != 1)
		return usage_error_synopsis("one agent ID expected");
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
	static const int allowed[] = {O_DB, O_ISSUER, 0};
	struct args a;
	int rc = parse(argc, argv, allowed, 0, &a);
	if (rc != CRETO_OK || (rc = need(a.db, "--db")) != CRETO_OK)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	if (creto_nhi_store_init(a.db, a.issuer, &e) != CRETO_OK)
		return cli_fail(&e, a.json);
	const char *iss = a.issuer ? a.issuer : CRETO_NHI_DEFAULT_ISSUER;
	status_line(&a, "initialised %s (schema %d, issuer %s)", a.db, CRETO_NHI_SCHEMA_VERSION, iss);
	if (a.json)
		return cli_json_out(json_pack("{s:b, s:s, s:s, s:i}", "ok", 1, "db", a.db, "issuer", iss,
					      "schema_version", CRETO_NHI_SCHEMA_VERSION));
	return CRETO_OK;
}

/* ---- add ---- */

/* An agent's public key: a creto public key file, a secret key file's
 * public half, a pkcs11: URI, or a PEM SubjectPublicKeyInfo (openssl,
 * other tools). */
static int open_agent_pub(const char *ref, const creto_keys_opts *ko, creto_pubkey **out, creto_err *e)
{
	*out = NULL;
	if (!creto_keys_is_pkcs11(ref)) {
		uint8_t *buf = NULL;
		size_t n = 0;
		int rc = creto_file_read(ref, CRETO_KEYFILE_MAX, &buf, &n, e);
		if (rc != CRETO_OK)
			return rc;
		int pem = n > 26 && memcmp(buf, "-----BEGIN PUBLIC KEY-----", 26) == 0;
		if (pem) {
			rc = creto_pubkey_from_spki(buf, n, out, e);
			free(buf);
			return rc != CRETO_OK ? creto_err_ctx(e, "%s", ref) : CRETO_OK;
		}
		free(buf);
	}
	return creto_keys_open_pubkey(ref, ko, out, e);
}

/* The add decision: the agent built from the options (ag holds the dates
 * already), checked and stored. */
static int add_agent(const struct args *a, creto_nhi_agent *ag, creto_err *e)
{
	if (strlen(a->id) > CRETO_NHI_ID_MAX || strlen(a->name) > CRETO_NHI_NAME_MAX)
		return creto_err_set(e, CRETO_EREJECT, "agent id or name too long (max %d / %d bytes)",
				     CRETO_NHI_ID_MAX, CRETO_NHI_NAME_MAX);
	memcpy(ag->id, a->id, strlen(a->id) + 1);
	memcpy(ag->name, a->name, strlen(a->name) + 1);
	int rc = creto_nhi_scopes_join(a->scope, a->nscope, ag->scopes, e);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "agent %.64s", a->id);
	ag->created = clock_now();
	ag->status = CRETO_NHI_ACTIVE;
	if (a->issuer_kid) {
		if (strlen(a->issuer_kid) != CRETO_KEYID_HEXLEN)
			return creto_err_set(e, CRETO_EUSAGE, "nhi add: --issuer-kid: want %d hex digits",
					     CRETO_KEYID_HEXLEN);
		memcpy(ag->issuer_kid, a->issuer_kid, CRETO_KEYID_HEXLEN + 1);
	} else if (a->issuer_key) {
		creto_pubkey *pk = NULL;
		if ((rc = creto_keys_open_pubkey(a->issuer_key, &a->kopts, &pk, e)) != CRETO_OK)
			return rc;
		memcpy(ag->issuer_kid, creto_pubkey_id(pk), CRETO_KEYID_HEXLEN + 1);
		creto_pubkey_free(pk);
	}
	creto_pubkey *pks[CRETO_NHI_AGENT_KEYS_MAX] = {0};
	for (size_t i = 0; rc == CRETO_OK && i < a->npub; i++)
		rc = open_agent_pub(a->pub[i], &a->kopts, &pks[i], e);
	creto_nhi_store *s = NULL;
	if (rc == CRETO_OK)
		rc = creto_nhi_store_open(a->db, 0, &s, e);
	/* the agent and its keys in one transaction: nothing half-provisioned;
	 * recorded (durable) before it commits */
	if (rc == CRETO_OK)
		rc = creto_nhi_store_begin(s, e);
	if (rc == CRETO_OK)
		rc = creto_nhi_store_add(s, ag, e);
	for (size_t i = 0; rc == CRETO_OK && i < a->npub; i++)
		rc = creto_nhi_store_key_add(s, ag->id, pks[i], 0, 0, ag->created, NULL, e);
	if (rc == CRETO_OK)
		rc = intend(D_ADD, ag->id, e);
	if (rc == CRETO_OK)
		rc = creto_nhi_store_commit(s, e);
	creto_nhi_store_free(s); /* an open transaction rolls back */
	for (size_t i = 0; i < a->npub; i++)
		creto_pubkey_free(pks[i]);
	return rc;
}

static int nhi_add(int argc, char **argv)
{
	static const int allowed[] = {O_DB, O_ID, O_NAME, O_SCOPE, O_NOT_BEFORE, O_NOT_AFTER,
				      O_ISSUER_KID, O_ISSUER_KEY, O_PUB, O_MODULE, O_PIN_FILE, O_AUDIT, O_AUDIT_KEY, 0};
	struct args a;
	int rc = parse(argc, argv, allowed, 0, &a);
	if (rc != CRETO_OK || (rc = need(a.db, "--db")) != CRETO_OK ||
	    (rc = need(a.id, "--id")) != CRETO_OK || (rc = need(a.name, "--name")) != CRETO_OK)
		return rc;
	if (a.nscope == 0)
		return usage_error("at least one --scope is required");
	if (a.issuer_kid && a.issuer_key)
		return usage_error("give --issuer-kid or --issuer-key, not both");
	creto_nhi_agent ag;
	memset(&ag, 0, sizeof(ag));
	if (a.not_before && creto_time_parse(a.not_before, &ag.not_before) != 0)
		return usage_error("--not-before '%.64s': want YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ", a.not_before);
	if (a.not_after && creto_time_parse(a.not_after, &ag.not_after) != 0)
		return usage_error("--not-after '%.64s': want YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ", a.not_after);
	if ((rc = audit_open(&a)) != CRETO_OK)
		return rc;
	aud_str("name", a.name);
	aud_num("keys", (int64_t)a.npub);
	char scopes[CRETO_NHI_SCOPES_LEN + 1] = "";
	creto_err e;
	creto_err_clear(&e);
	if (creto_nhi_scopes_join(a.scope, a.nscope, scopes, &e) == CRETO_OK)
		aud_str("scopes", scopes);
	creto_err_clear(&e);
	rc = add_agent(&a, &ag, &e);
	char done[CRETO_NHI_ID_MAX + 32];
	snprintf(done, sizeof(done), "added agent %s%s", a.id, a.npub ? " with its keys" : "");
	if ((rc = decided(&a, D_ADD, a.id, rc, &e, done)) != CRETO_OK)
		return rc;
	if (a.json)
		return cli_json_out(json_pack("{s:b, s:o}", "ok", 1, "agent", agent_json(&ag)));
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
	static const int allowed[] = {O_DB, O_STATUS, 0};
	struct args a;
	int rc = parse(argc, argv, allowed, 0, &a);
	if (rc != CRETO_OK || (rc = need(a.db, "--db")) != CRETO_OK)
		return rc;
	if (a.status && creto_nhi_status_from_name(a.status) < 0)
		return usage_error("--status '%.32s': want active, suspended or revoked", a.status);
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
	static const int allowed[] = {O_DB, 0};
	struct args a;
	int rc = parse(argc, argv, allowed, 1, &a);
	if (rc != CRETO_OK || (rc = need(a.db, "--db")) != CRETO_OK || (rc = need_id(&a)) != CRETO_OK)
		return rc;
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

/* ---- revoke / suspend / resume: one decision each ---- */
static int set_status(int argc, char **argv, creto_nhi_status st, enum nhi_decision d)
{
	static const int allowed[] = {O_DB, O_AUDIT, O_AUDIT_KEY, O_MODULE, O_PIN_FILE, 0};
	struct args a;
	int rc = parse(argc, argv, allowed, 1, &a);
	if (rc != CRETO_OK || (rc = need(a.db, "--db")) != CRETO_OK || (rc = need_id(&a)) != CRETO_OK)
		return rc;
	if ((rc = audit_open(&a)) != CRETO_OK)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	creto_nhi_store *s = NULL;
	creto_nhi_agent ag;
	rc = creto_nhi_store_open(a.db, 0, &s, &e);
	/* decided on what the store holds now, recorded, then committed (the
	 * store re-checks inside its transaction: a change in between makes
	 * the commit fail, and the entry is followed by an "aborted" one) */
	if (rc == CRETO_OK)
		rc = creto_nhi_store_get(s, a.pos[0], &ag, &e);
	if (rc == CRETO_OK) {
		aud_str("from", creto_nhi_status_name(ag.status));
		aud_str("to", creto_nhi_status_name(st));
		if (ag.status == CRETO_NHI_REVOKED)
			rc = creto_err_set(&e, CRETO_EREJECT, "agent %s is revoked (final)", ag.id);
	}
	if (rc == CRETO_OK)
		rc = intend(d, a.pos[0], &e);
	if (rc == CRETO_OK)
		rc = creto_nhi_store_set_status(s, a.pos[0], st, clock_now(), &e);
	creto_nhi_store_free(s);
	char done[CRETO_NHI_ID_MAX + 32];
	snprintf(done, sizeof(done), "agent %s %s", a.pos[0], creto_nhi_status_name(st));
	if ((rc = decided(&a, d, a.pos[0], rc, &e, done)) != CRETO_OK)
		return rc;
	if (a.json)
		return cli_json_out(json_pack("{s:b, s:s, s:s}", "ok", 1, "id", a.pos[0], "status",
					      creto_nhi_status_name(st)));
	return CRETO_OK;
}

static int nhi_revoke(int argc, char **argv)
{
	return set_status(argc, argv, CRETO_NHI_REVOKED, D_REVOKE);
}

static int nhi_suspend(int argc, char **argv)
{
	return set_status(argc, argv, CRETO_NHI_SUSPENDED, D_SUSPEND);
}

static int nhi_resume(int argc, char **argv)
{
	return set_status(argc, argv, CRETO_NHI_ACTIVE, D_RESUME);
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
	static const int allowed[] = {O_DB, O_WRAP_KEY, O_OUTPUT, O_MODULE, O_PIN_FILE, O_AUDIT, O_AUDIT_KEY, 0};
	struct args a;
	int rc = parse(argc, argv, allowed, 0, &a);
	if (rc != CRETO_OK || (rc = need(a.db, "--db")) != CRETO_OK ||
	    (rc = need(a.wrap_key, "--wrap-key")) != CRETO_OK ||
	    (rc = need(a.output, "-o")) != CRETO_OK)
		return rc;
	if (!creto_keys_is_pkcs11(a.wrap_key))
		return usage_error("--wrap-key must be a pkcs11: URI");
	if ((rc = audit_open(&a)) != CRETO_OK)
		return rc;
	creto_nhi_store *s = NULL;
	creto_nhi_wrapper w;
	creto_nhi_wrapper_hsm(&w, a.wrap_key, &a.kopts);
	creto_err e;
	creto_err_clear(&e);
	uint64_t n = 0;
	rc = creto_nhi_store_open(a.db, 1, &s, &e);
	if (rc == CRETO_OK)
		rc = creto_nhi_store_count(s, &n, &e);
	aud_str("wrap_key", a.wrap_key);
	aud_num("agents", (int64_t)n);
	/* the export of every agent is recorded before the file is written */
	if (rc == CRETO_OK)
		rc = intend(D_BACKUP, a.output, &e);
	if (rc == CRETO_OK)
		rc = creto_nhi_backup_write(s, &w, a.output, clock_now(), &e);
	creto_nhi_store_free(s);
	char done[4400];
	snprintf(done, sizeof(done), "wrote %.4096s: %llu agents, data key wrapped by %s", a.output,
		 (unsigned long long)n, w.key_id);
	if ((rc = decided(&a, D_BACKUP, a.output, rc, &e, done)) != CRETO_OK)
		return rc;
	if (a.json)
		return cli_json_out(json_pack("{s:b, s:s, s:I, s:s}", "ok", 1, "backup", a.output,
					      "agents", (json_int_t)n, "wrap_key", w.key_id));
	return CRETO_OK;
}

static int nhi_restore(int argc, char **argv)
{
	static const int allowed[] = {O_DB, O_WRAP_KEY, O_MODULE, O_PIN_FILE, O_AUDIT, O_AUDIT_KEY, 0};
	struct args a;
	int rc = parse(argc, argv, allowed, 1, &a);
	if (rc != CRETO_OK || (rc = need(a.db, "--db")) != CRETO_OK ||
	    (rc = need(a.wrap_key, "--wrap-key")) != CRETO_OK)
		return rc;
	if (a.npos != 1)
		return usage_error_synopsis("one backup FILE expected");
	if ((rc = audit_open(&a)) != CRETO_OK)
		return rc;
	creto_nhi_wrapper w;
	creto_nhi_wrapper_hsm(&w, a.wrap_key, &a.kopts);
	creto_nhi_backup_info bi;
	memset(&bi, 0, sizeof(bi));
	creto_err e;
	creto_err_clear(&e);
	/* authenticated first (a refusal is recorded as such), recorded
	 * durably, then written over the store */
	creto_nhi_store *chk = NULL;
	uint64_t n = 0;
	rc = creto_nhi_backup_open(a.pos[0], &w, &chk, &bi, &e);
	if (rc == CRETO_OK)
		rc = creto_nhi_store_count(chk, &n, &e);
	creto_nhi_store_free(chk);
	aud_str("db", a.db);
	aud_str("wrap_key", a.wrap_key);
	aud_num("agents", (int64_t)n);
	aud_num("backup_created", bi.created);
	if (rc == CRETO_OK)
		rc = intend(D_RESTORE, a.pos[0], &e);
	if (rc == CRETO_OK)
		rc = creto_nhi_backup_restore(a.pos[0], &w, a.db, &bi, &e);
	char t[CRETO_TIME_STRLEN] = "";
	if (rc == CRETO_OK)
		creto_time_format(bi.created, t);
	char done[512];
	snprintf(done, sizeof(done), "restored %.200s from %.200s (made %s, %llu bytes)", a.db, a.pos[0], t,
		 (unsigned long long)bi.data_len);
	if ((rc = decided(&a, D_RESTORE, a.pos[0], rc, &e, done)) != CRETO_OK)
		return rc;
	if (a.json)
		return cli_json_out(json_pack("{s:b, s:s, s:o}", "ok", 1, "db", a.db, "backup",
					      info_json(&bi)));
	return CRETO_OK;
}

static int token_exchange(int argc, char **argv);
static int token_replay_init(int argc, char **argv);
static int token_metadata(int argc, char **argv);

/* ---- token issue ---- */

/* The token decision: refused unless the agent (when the store is given)
 * is active and holds every scope asked for.  *tok is the issued token
 * (malloc'ed; the caller wipes and frees it). */
static int issue_token(const struct args *a, const char *scope, int64_t ttl, int64_t now, char **tok,
		       creto_nhi_token_params *p, char *store_iss, const char *jti, char *kid, creto_err *e)
{
	int rc;
	const char *iss = a->issuer ? a->issuer : CRETO_NHI_DEFAULT_ISSUER;
	if (a->db) {
		/* Refuse to mint a token the resolver would refuse anyway. */
		creto_nhi_store *s = NULL;
		if ((rc = creto_nhi_store_open(a->db, 1, &s, e)) != CRETO_OK)
			return rc;
		creto_nhi_agent ag;
		rc = creto_nhi_store_get(s, a->agent, &ag, e);
		if (rc == CRETO_OK && ag.status != CRETO_NHI_ACTIVE)
			rc = creto_err_set(e, CRETO_EREJECT, "agent %s is %s", ag.id, creto_nhi_status_name(ag.status));
		for (size_t i = 0; rc == CRETO_OK && i < a->nscope; i++)
			if (!creto_nhi_scopes_has(ag.scopes, a->scope[i], strlen(a->scope[i])))
				rc = creto_err_set(e, CRETO_EREJECT, "scope '%.64s' not granted to agent %s",
						   a->scope[i], ag.id);
		snprintf(store_iss, CRETO_NHI_ISSUER_MAX + 1, "%s", creto_nhi_store_issuer(s));
		creto_nhi_store_free(s);
		if (rc != CRETO_OK)
			return rc;
		if (!a->issuer)
			iss = store_iss;
	}
	creto_signer *sg = NULL;
	if ((rc = creto_keys_open_signer(a->key[0], &a->kopts, &sg, e)) != CRETO_OK)
		return rc;
	snprintf(kid, CRETO_KEYID_HEXLEN + 1, "%s", creto_pubkey_id(creto_signer_pubkey(sg)));
	*p = (creto_nhi_token_params){
		.iss = iss,
		.sub = a->agent,
		.aud = a->aud ? a->aud : CRETO_NHI_DEFAULT_AUDIENCE,
		.scope = a->nscope ? scope : NULL,
		.jti = jti,
		.iat = now,
		.nbf = now,
		.exp = now + ttl,
	};
	rc = creto_nhi_token_issue(sg, p, tok, e);
	creto_signer_free(sg);
	return rc;
}

static void token_free(char *tok)
{
	if (tok != NULL)
		OPENSSL_cleanse(tok, strlen(tok));
	free(tok);
}

static int nhi_token(int argc, char **argv)
{
	cur_label = "token";
	if (argc >= 2 && strcmp(argv[1], "exchange") == 0)
		return token_exchange(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "replay-init") == 0)
		return token_replay_init(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "metadata") == 0)
		return token_metadata(argc, argv);
	if (argc < 2 || strcmp(argv[1], "issue") != 0) {
		cur_json = argv_json(argc, argv);
		return usage_error_synopsis("want 'token issue' or 'token exchange'");
	}
	cur_label = "token issue";
	static const int allowed[] = {O_AGENT, O_TTL, O_KEY, O_DB, O_AUD, O_ISSUER, O_SCOPE,
				      O_JTI, O_OUTPUT, O_MODULE, O_PIN_FILE, O_AUDIT, O_AUDIT_KEY, 0};
	cur_label = "token issue";
	struct args a;
	int rc = parse(argc - 1, argv + 1, allowed, 0, &a);
	if (rc != CRETO_OK || (rc = need(a.agent, "--agent")) != CRETO_OK ||
	    (rc = need(a.nkey ? a.key[0] : NULL, "--key")) != CRETO_OK)
		return rc;
	if (a.nkey != 1)
		return usage_error("give exactly one --key");
	int64_t ttl = 3600;
	if (a.ttl && (creto_duration_parse(a.ttl, &ttl) != 0 || ttl <= 0 || ttl > 30 * 86400))
		return usage_error("--ttl '%.32s': want 1s..30d (e.g. 90s, 15m, 1h, 7d)", a.ttl);
	if ((rc = audit_open(&a)) != CRETO_OK)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	/* the jti is chosen here (128 random bits, base64url, as the library
	 * would) so that the record names the token it is about */
	char jti[CRETO_JWS_JTI_MAX + 1];
	uint8_t rnd[16];
	if (a.jti == NULL && RAND_bytes(rnd, sizeof(rnd)) != 1) {
		creto_err_set(&e, CRETO_EOP, "nhi token issue: no random bytes for the jti");
		return cli_fail(&e, a.json);
	}
	if (a.jti == NULL)
		creto_b64_encode(jti, rnd, sizeof(rnd), 1);
	else
		snprintf(jti, sizeof(jti), "%s", a.jti);
	char kid[CRETO_KEYID_HEXLEN + 1] = "";
	char scope[CRETO_NHI_SCOPES_LEN + 1] = "";
	char store_iss[CRETO_NHI_ISSUER_MAX + 1] = "";
	char *tok = NULL;
	creto_nhi_token_params p;
	memset(&p, 0, sizeof(p));
	int64_t now = clock_now();
	rc = creto_nhi_scopes_join(a.scope, a.nscope, scope, &e);
	if (rc == CRETO_OK)
		rc = issue_token(&a, scope, ttl, now, &tok, &p, store_iss, a.jti ? a.jti : jti, kid, &e);
	aud_str("jti", rc == CRETO_OK ? p.jti : NULL); /* a refused token was never made */
	aud_str("kid", kid[0] ? kid : NULL);
	aud_str("scopes", scope[0] ? scope : NULL);
	aud_str("aud", rc == CRETO_OK ? p.aud : NULL);
	if (rc == CRETO_OK)
		aud_num("exp", p.exp);
	/* recorded before the token leaves this process */
	if (rc == CRETO_OK)
		rc = intend(D_TOKEN_ISSUE, a.agent, &e);
	if (rc == CRETO_OK && a.output) {
		size_t n = strlen(tok);
		tok[n] = '\n';
		rc = creto_file_write_atomic(a.output, tok, n + 1, 0600, &e);
		tok[n] = '\0';
	}
	char exp[CRETO_TIME_STRLEN] = "";
	if (rc == CRETO_OK)
		creto_time_format(p.exp, exp);
	char done[CRETO_NHI_ID_MAX + 4200];
	snprintf(done, sizeof(done), "token for agent %s (expires %s)%s%.4096s", a.agent, exp,
		 a.output ? " written to " : "", a.output ? a.output : "");
	if ((rc = decided(&a, D_TOKEN_ISSUE, a.agent, rc, &e, a.output || a.json ? done : NULL)) != CRETO_OK) {
		token_free(tok);
		return rc;
	}
	if (a.json) {
		json_t *t = json_string(tok);
		json_t *o = json_pack("{s:b, s:O, s:s, s:s}", "ok", 1, "token", t, "agent", a.agent, "exp", exp);
		rc = CRETO_EOP;
		if (o != NULL && json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 &&
		    fputc('\n', stdout) != EOF && fflush(stdout) == 0)
			rc = CRETO_OK;
		if (t != NULL) /* the JSON's copy of the credential */
			OPENSSL_cleanse((char *)json_string_value(t), json_string_length(t));
		json_decref(o);
		json_decref(t);
	} else if (!a.output) {
		printf("%s\n", tok);
		if (fflush(stdout) != 0)
			rc = CRETO_EOP;
	}
	token_free(tok);
	return rc;
}

/* ---- key add / remove / list: an agent's public keys ---- */
static json_t *key_json(const creto_nhi_agent_key *k)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "agent", k->agent, "kid", k->kid, "alg",
			 creto_jws_alg_name(k->alg), "not_before", time_json(k->not_before), "not_after",
			 time_json(k->not_after), "added", time_json(k->added));
}

static int key_list_one(const creto_nhi_agent_key *k, void *arg)
{
	json_t *arr = arg;
	if (arr)
		return json_array_append_new(arr, key_json(k)) == 0 ? 0 : CRETO_EOP;
	char nb[CRETO_TIME_STRLEN] = "-", na[CRETO_TIME_STRLEN] = "-";
	if (k->not_before)
		creto_time_format(k->not_before, nb);
	if (k->not_after)
		creto_time_format(k->not_after, na);
	printf("%-24s %-16s %-6s %-20s %s\n", k->agent, k->kid, creto_jws_alg_name(k->alg), nb, na);
	return 0;
}

static int nhi_key(int argc, char **argv)
{
	cur_label = "key";
	const char *sub = argc >= 2 ? argv[1] : "";
	if (strcmp(sub, "add") != 0 && strcmp(sub, "remove") != 0 && strcmp(sub, "list") != 0) {
		cur_json = argv_json(argc, argv);
		return usage_error_synopsis("want 'key add', 'key remove' or 'key list'");
	}
	static const int add_allowed[] = {O_DB, O_PUB, O_NOT_BEFORE, O_NOT_AFTER, O_MODULE, O_PIN_FILE,
					  O_AUDIT, O_AUDIT_KEY, 0};
	static const int rm_allowed[] = {O_DB, O_AUDIT, O_AUDIT_KEY, O_MODULE, O_PIN_FILE, 0};
	static const int list_allowed[] = {O_DB, 0};
	int is_add = strcmp(sub, "add") == 0, is_rm = strcmp(sub, "remove") == 0;
	cur_label = is_add ? "key add" : is_rm ? "key remove" : "key list";
	struct args a;
	int rc = parse(argc - 1, argv + 1, is_add ? add_allowed : is_rm ? rm_allowed : list_allowed, is_rm ? 2 : 1, &a);
	if (rc != CRETO_OK || (rc = need(a.db, "--db")) != CRETO_OK)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	creto_nhi_store *s = NULL;
	if (!is_add && !is_rm) {
		if ((rc = open_store(a.db, 1, &s, a.json)) != CRETO_OK)
			return rc;
		json_t *arr = a.json ? json_array() : NULL;
		if (!a.json)
			printf("%-24s %-16s %-6s %-20s %s\n", "AGENT", "KID", "ALG", "NOT-BEFORE", "NOT-AFTER");
		rc = creto_nhi_store_key_list(s, a.npos ? a.pos[0] : NULL, key_list_one, arr, &e);
		creto_nhi_store_free(s);
		if (rc != CRETO_OK) {
			json_decref(arr);
			if (e.code == CRETO_OK)
				creto_err_set(&e, rc, "key list: out of memory");
			return cli_fail(&e, a.json);
		}
		return a.json ? cli_json_out(json_pack("{s:b, s:o}", "ok", 1, "keys", arr)) : CRETO_OK;
	}
	if (is_rm) {
		if (a.npos != 2)
			return usage_error_synopsis("want the agent ID and the KID");
		if ((rc = audit_open(&a)) != CRETO_OK)
			return rc;
		aud_str("kid", a.pos[1]);
		rc = creto_nhi_store_open(a.db, 0, &s, &e);
		if (rc == CRETO_OK)
			rc = creto_nhi_store_begin(s, &e);
		if (rc == CRETO_OK)
			rc = creto_nhi_store_key_remove(s, a.pos[0], a.pos[1], &e);
		if (rc == CRETO_OK)
			rc = intend(D_KEY_REMOVE, a.pos[0], &e);
		if (rc == CRETO_OK)
			rc = creto_nhi_store_commit(s, &e);
		creto_nhi_store_free(s);
		char done[256];
		snprintf(done, sizeof(done), "removed key %.64s of agent %.128s", a.pos[1], a.pos[0]);
		if ((rc = decided(&a, D_KEY_REMOVE, a.pos[0], rc, &e, done)) != CRETO_OK)
			return rc;
		return a.json ? cli_json_out(json_pack("{s:b, s:s, s:s}", "ok", 1, "agent", a.pos[0], "kid", a.pos[1]))
			      : CRETO_OK;
	}
	if ((rc = need_id(&a)) != CRETO_OK)
		return rc;
	if (a.npub != 1)
		return usage_error_synopsis("give exactly one --pub FILE|URI (the private key stays with the agent)");
	int64_t nb = 0, na = 0;
	if (a.not_before && creto_time_parse(a.not_before, &nb) != 0)
		return usage_error("--not-before '%.64s': want YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ", a.not_before);
	if (a.not_after && creto_time_parse(a.not_after, &na) != 0)
		return usage_error("--not-after '%.64s': want YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ", a.not_after);
	if ((rc = audit_open(&a)) != CRETO_OK)
		return rc;
	creto_pubkey *pk = NULL;
	creto_nhi_agent_key k;
	memset(&k, 0, sizeof(k));
	rc = open_agent_pub(a.pub[0], &a.kopts, &pk, &e);
	if (rc == CRETO_OK)
		rc = creto_nhi_store_open(a.db, 0, &s, &e);
	if (rc == CRETO_OK)
		rc = creto_nhi_store_begin(s, &e);
	if (rc == CRETO_OK)
		rc = creto_nhi_store_key_add(s, a.pos[0], pk, nb, na, clock_now(), &k, &e);
	aud_str("kid", k.kid[0] ? k.kid : NULL);
	aud_str("alg", k.kid[0] ? creto_jws_alg_name(k.alg) : NULL);
	if (rc == CRETO_OK)
		rc = intend(D_KEY_ADD, a.pos[0], &e);
	if (rc == CRETO_OK)
		rc = creto_nhi_store_commit(s, &e);
	creto_nhi_store_free(s);
	creto_pubkey_free(pk);
	char done[256];
	snprintf(done, sizeof(done), "added key %s (%s) to agent %.128s", k.kid, creto_jws_alg_name(k.alg) ? creto_jws_alg_name(k.alg) : "-",
		 a.pos[0]);
	if ((rc = decided(&a, D_KEY_ADD, a.pos[0], rc, &e, done)) != CRETO_OK)
		return rc;
	if (a.json)
		return cli_json_out(json_pack("{s:b, s:o}", "ok", 1, "key", key_json(&k)));
	printf("%s\n", k.kid);
	return CRETO_OK;
}

/* ---- token exchange: the token endpoint on one form body ----
 * What the gateway's POST /oauth/token does, run once: the body from a file
 * (or standard input), the RFC 6749 answer on stdout.  The body holds a
 * client assertion (a single-use credential): read into one buffer, wiped. */
static int read_form(const char *path, char *buf, size_t cap, size_t *len, creto_err *e)
{
	*len = 0;
	int is_stdin = strcmp(path, "-") == 0;
	int fd = 0, rc = CRETO_OK;
	if (!is_stdin) {
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return errno == ELOOP ? creto_err_set(e, CRETO_EREJECT, "form: %s: is a symbolic link", path)
					      : creto_err_errno(e, errno, "form: %s", path);
		struct stat st;
		if (fstat(fd, &st) != 0)
			rc = creto_err_errno(e, errno, "form: %s", path);
		else if (!S_ISREG(st.st_mode))
			rc = creto_err_set(e, CRETO_EREJECT, "form: %s: not a regular file", path);
	}
	if (rc == CRETO_OK) {
		/* up to cap bytes: a longer body reaches the endpoint as longer
		 * than CRETO_OAUTH_FORM_MAX (cap > that) and is refused there */
		ssize_t n = creto_read_full(fd, buf, cap);
		if (n < 0)
			rc = creto_err_errno(e, errno, "form: %s", is_stdin ? "standard input" : path);
		else
			*len = (size_t)n;
	}
	if (!is_stdin)
		close(fd);
	/* one trailing newline (a file written by a shell) is not part of the form */
	if (rc == CRETO_OK && *len > 0 && *len <= CRETO_OAUTH_FORM_MAX + 1 && buf[*len - 1] == '\n')
		(*len)--;
	return rc;
}

static int token_exchange(int argc, char **argv)
{
	cur_label = "token exchange";
	static const int allowed[] = {O_DB, O_KEY, O_ISSUER_URL, O_FORM_FILE, O_REPLAY_STATE, O_TTL, O_AUD,
				      O_SOURCE, O_CONTENT_TYPE, O_MODULE, O_PIN_FILE, O_AUDIT, O_AUDIT_KEY, 0};
	struct args a;
	int rc = parse(argc - 1, argv + 1, allowed, 0, &a);
	if (rc != CRETO_OK || (rc = need(a.db, "--db")) != CRETO_OK ||
	    (rc = need(a.nkey ? a.key[0] : NULL, "--key")) != CRETO_OK ||
	    (rc = need(a.issuer_url, "--issuer-url")) != CRETO_OK || (rc = need(a.form_file, "--form-file")) != CRETO_OK ||
	    (rc = need(a.replay_state, "--replay-state")) != CRETO_OK)
		return rc;
	if (a.nkey != 1)
		return usage_error("give exactly one --key (the issuer key)");
	int64_t ttl = 0;
	if (a.ttl && (creto_duration_parse(a.ttl, &ttl) != 0 || ttl <= 0 || ttl > CRETO_OAUTH_TTL_MAX))
		return usage_error("--ttl '%.32s': want 1s..1d (default 15m)", a.ttl);
	if ((rc = audit_open(&a)) != CRETO_OK)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	static char form[CRETO_OAUTH_FORM_MAX + 64];
	size_t flen = 0;
	creto_nhi_store *s = NULL;
	creto_signer *sg = NULL;
	creto_nhi_replay *rp = NULL;
	creto_nhi_oauth *o = NULL;
	creto_nhi_token_response resp;
	memset(&resp, 0, sizeof(resp));
	int64_t now = clock_now();
	rc = read_form(a.form_file, form, sizeof(form), &flen, &e);
	if (rc == CRETO_OK)
		rc = creto_nhi_store_open(a.db, 0, &s, &e);
	if (rc == CRETO_OK)
		rc = creto_keys_open_signer(a.key[0], &a.kopts, &sg, &e);
	if (rc == CRETO_OK)
		rc = creto_nhi_replay_open(a.replay_state, 0, now, &rp, &e);
	creto_nhi_oauth_opts oo = {.issuer_url = a.issuer_url, .audience = a.aud, .token_ttl = ttl};
	/* the endpoint records its own decisions (issuance before the token is
	 * made, refusals aggregated per agent and rule); an issuance it cannot
	 * record is not made */
	if (aud.log != NULL)
		oo.sink = creto_audit_sink(aud.log);
	if (rc == CRETO_OK)
		rc = creto_nhi_oauth_new(s, sg, rp, &oo, &o, &e);
	int endpoint_ran = 0;
	if (rc == CRETO_OK) {
		creto_nhi_token_request rq = {
			.body = form,
			.len = flen,
			.content_type = a.content_type ? a.content_type : "application/x-www-form-urlencoded",
			.source = a.source ? a.source : "local",
		};
		rc = creto_nhi_token_endpoint(o, &rq, now, &resp, &e);
		endpoint_ran = 1;
	}
	OPENSSL_cleanse(form, sizeof(form));
	creto_nhi_oauth_free(o, now);
	/* the jti just consumed must be on disk before the token is shown */
	creto_err ce;
	creto_err_clear(&ce);
	if (creto_nhi_replay_close(rp, now, &ce) != CRETO_OK && rc == CRETO_OK) {
		rc = ce.code;
		e = ce;
		creto_nhi_token_response_clear(&resp);
	}
	creto_signer_free(sg);
	creto_nhi_store_free(s);
	if (rc == CRETO_EREJECT && endpoint_ran)
		creto_err_ctx(&e, "HTTP %d %s (rule %s)", resp.status, resp.error ? resp.error : "-",
			      resp.reason ? resp.reason : "-");
	if (rc != CRETO_OK && endpoint_ran && resp.body != NULL && !a.json) {
		/* the endpoint's answer is the requested output, refusals included */
		printf("%s\n", resp.body);
		fflush(stdout);
	}
	aud.by_library = endpoint_ran;
	aud_str("source", a.source ? a.source : "local");
	rc = decided(&a, D_TOKEN_EXCHANGE, a.form_file, rc, &e, NULL);
	if (rc != CRETO_OK) {
		creto_nhi_token_response_clear(&resp);
		return rc;
	}
	if (a.json) {
		json_t *b = json_loadb(resp.body, resp.body_len, 0, NULL);
		rc = cli_json_out(json_pack("{s:b, s:i, s:o}", "ok", 1, "status", resp.status, "response", b));
		/* jansson's copy of the access token was freed by cli_json_out; it
		 * went to stdout, which is what was asked for */
	} else {
		printf("%s\n", resp.body);
		if (fflush(stdout) != 0)
			rc = CRETO_EOP;
	}
	creto_nhi_token_response_clear(&resp);
	return rc;
}

/* First start of a token endpoint: an empty replay state, so that no
 * warm-up applies (nothing was ever accepted to be replayed). */
static int token_replay_init(int argc, char **argv)
{
	cur_label = "token replay-init";
	static const int allowed[] = {O_REPLAY_STATE, 0};
	struct args a;
	int rc = parse(argc - 1, argv + 1, allowed, 0, &a);
	if (rc != CRETO_OK || (rc = need(a.replay_state, "--replay-state")) != CRETO_OK)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	if (creto_nhi_replay_init(a.replay_state, clock_now(), &e) != CRETO_OK)
		return cli_fail(&e, a.json);
	status_line(&a, "wrote an empty replay state %s (first start only)", a.replay_state);
	return a.json ? cli_json_out(json_pack("{s:b, s:s}", "ok", 1, "replay_state", a.replay_state)) : CRETO_OK;
}

/* What the endpoint serves at /.well-known/oauth-authorization-server, or
 * with --jwks at its jwks_uri. */
static int token_metadata(int argc, char **argv)
{
	cur_label = "token metadata";
	static const int allowed[] = {O_DB, O_KEY, O_ISSUER_URL, O_JWKS_FLAG, O_MODULE, O_PIN_FILE, 0};
	struct args a;
	int rc = parse(argc - 1, argv + 1, allowed, 0, &a);
	if (rc != CRETO_OK || (rc = need(a.db, "--db")) != CRETO_OK ||
	    (rc = need(a.nkey ? a.key[0] : NULL, "--key")) != CRETO_OK ||
	    (rc = need(a.issuer_url, "--issuer-url")) != CRETO_OK)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	creto_nhi_store *s = NULL;
	creto_signer *sg = NULL;
	creto_nhi_replay *rp = NULL;
	creto_nhi_oauth *o = NULL;
	char *txt = NULL;
	int64_t now = clock_now();
	rc = creto_nhi_store_open(a.db, 1, &s, &e);
	if (rc == CRETO_OK)
		rc = creto_keys_open_signer(a.key[0], &a.kopts, &sg, &e);
	if (rc == CRETO_OK)
		rc = creto_nhi_replay_open(NULL, 16, now, &rp, &e);
	creto_nhi_oauth_opts oo = {.issuer_url = a.issuer_url};
	if (rc == CRETO_OK)
		rc = creto_nhi_oauth_new(s, sg, rp, &oo, &o, &e);
	if (rc == CRETO_OK)
		rc = a.jwks_flag ? creto_nhi_oauth_jwks(o, &txt, &e) : creto_nhi_oauth_metadata(o, &txt, &e);
	creto_nhi_oauth_free(o, now);
	creto_err ig;
	if (creto_nhi_replay_close(rp, now, &ig) != CRETO_OK && rc == CRETO_OK) {
		rc = ig.code; /* in memory only: nothing to save, so not expected */
		e = ig;
	}
	if (rc != CRETO_OK)
		free(txt);
	creto_signer_free(sg);
	creto_nhi_store_free(s);
	if (rc != CRETO_OK)
		return cli_fail(&e, a.json);
	printf("%s\n", txt);
	free(txt);
	return fflush(stdout) == 0 ? CRETO_OK : CRETO_EOP;
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
		if (rc == CRETO_OK)
			status_line(&a, "wrote %s: %zu keys", a.output, a.nkey);
	}
	if (rc == CRETO_OK && a.json) {
		json_t *set = json_loads(txt, 0, NULL);
		if (set == NULL) {
			rc = creto_err_set(&e, CRETO_EOP, "jwks: cannot re-read the JSON just made");
			goto out;
		}
		rc = a.output ? cli_json_out(json_pack("{s:b, s:s, s:I, s:o}", "ok", 1, "output", a.output, "keys",
						       (json_int_t)a.nkey, "jwks", set))
			      : cli_json_out(json_pack("{s:b, s:o}", "ok", 1, "jwks", set));
	} else if (rc == CRETO_OK && !a.output) {
		printf("%s\n", txt);
	}
out:
	for (size_t i = 0; i < a.nkey; i++)
		creto_pubkey_free(keys[i]);
	free(txt);
	if (rc != CRETO_OK && e.code != CRETO_OK)
		return cli_fail(&e, a.json);
	return rc;
}

/* ---- resolve ---- */
static int nhi_resolve(int argc, char **argv)
{
	static const int allowed[] = {O_DB, O_BACKUP, O_WRAP_KEY, O_JWKS, O_TOKEN_FILE,
				      O_AUD, O_ISSUER, O_MODULE, O_PIN_FILE, O_AUDIT, O_AUDIT_KEY, 0};
	struct args a;
	int rc = parse(argc, argv, allowed, 0, &a);
	if (rc != CRETO_OK || (rc = need(a.jwks, "--jwks")) != CRETO_OK)
		return rc;
	if ((a.db == NULL) == (a.backup == NULL))
		return usage_error("give --db FILE or --backup FILE --wrap-key URI");
	if (a.backup && a.wrap_key == NULL)
		return usage_error("--backup needs --wrap-key");
	/* A token is a bearer credential: never taken from argv (ps, shell
	 * history), only from a file or standard input, read into this one
	 * buffer and wiped on every path. */
	if (a.token_file == NULL)
		return usage_error("give --token-file FILE, or --token-file - to read the token from standard input");
	if ((rc = audit_open(&a)) != CRETO_OK)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	char tok[CRETO_NHI_TOKEN_BUF];
	size_t tlen = 0;
	creto_nhi_store *s = NULL;
	creto_jwks *jw = NULL;
	creto_nhi_resolver *r = NULL;
	creto_nhi_identity id;
	memset(&id, 0, sizeof(id));
	rc = creto_nhi_token_read(a.token_file, tok, sizeof(tok), &tlen, &e);
	if (rc == CRETO_OK)
		rc = creto_jwks_load(a.jwks, &jw, &e);
	if (rc == CRETO_OK) {
		if (a.db) {
			rc = creto_nhi_store_open(a.db, 1, &s, &e);
		} else {
			creto_nhi_wrapper w;
			creto_nhi_wrapper_hsm(&w, a.wrap_key, &a.kopts);
			rc = creto_nhi_backup_open(a.backup, &w, &s, NULL, &e);
		}
	}
	creto_nhi_resolver_opts ro = {.issuer = a.issuer, .audience = a.aud, .cache_entries = 0};
	if (rc == CRETO_OK)
		rc = creto_nhi_resolver_new(s, jw, &ro, &r, &e);
	if (rc == CRETO_OK) {
		rc = creto_nhi_resolve(r, tok, tlen, clock_now(), &id, NULL, &e);
		if (rc != CRETO_OK)
			creto_err_ctx(&e, "token rejected");
	}
	OPENSSL_cleanse(tok, sizeof(tok));
	creto_nhi_resolver_free(r);
	creto_nhi_store_free(s);
	creto_jwks_free(jw);
	/* one record per resolve (a one-shot command: no aggregation); the
	 * subject is the agent once the token verified, else the token file */
	char scopes_s[CRETO_NHI_SCOPES_LEN + 1] = "";
	if (rc == CRETO_OK) {
		snprintf(scopes_s, sizeof(scopes_s), "%s", id.scopes);
		aud_str("jti", id.jti);
		aud_str("kid", id.kid);
		aud_str("scopes", scopes_s);
	}
	aud_str("token_file", a.token_file);
	if ((rc = decided(&a, D_RESOLVE, rc == CRETO_OK ? id.agent.id : a.token_file, rc, &e, NULL)) != CRETO_OK)
		return rc;
	char iat[CRETO_TIME_STRLEN], exp[CRETO_TIME_STRLEN];
	creto_time_format(id.iat, iat);
	creto_time_format(id.exp, exp);
	return cli_json_out(json_pack("{s:b, s:s, s:o, s:o, s:s, s:s, s:s, s:s, s:s}", "ok", 1, "sub",
				      id.agent.id, "agent", agent_json(&id.agent), "scopes",
				      scopes_json(id.scopes), "kid", id.kid, "alg",
				      creto_jws_alg_name(id.alg), "jti", id.jti, "iat", iat, "exp", exp));
}

static const struct cli_cmd nhi_cmds[] = {
	{"init", nhi_init, "--db FILE [--issuer NAME] [--json] [--quiet]", "create an empty agent store"},
	{"add", nhi_add,
	 "--db FILE --id ID --name NAME --scope S... [--not-before DATE] [--not-after DATE] "
	 "[--issuer-kid KID | --issuer-key KEY] [--pub FILE|URI...] [--audit DIR [--audit-key K]] [--json] [--quiet]",
	 "provision an agent (one scope per --scope; --pub: its public key for the token endpoint)"},
	{"list", nhi_list, "--db FILE [--status active|suspended|revoked] [--json]", "list agents"},
	{"show", nhi_show, "--db FILE ID [--json]", "show one agent"},
	{"revoke", nhi_revoke, "--db FILE ID [--audit DIR [--audit-key K]] [--json] [--quiet]", "revoke an agent (final)"},
	{"suspend", nhi_suspend, "--db FILE ID [--audit DIR [--audit-key K]] [--json] [--quiet]", "suspend an agent"},
	{"resume", nhi_resume, "--db FILE ID [--audit DIR [--audit-key K]] [--json] [--quiet]", "reactivate a suspended agent"},
	{"backup", nhi_backup,
	 "--db FILE --wrap-key 'pkcs11:...' -o FILE.bak [--module SO] [--pin-file F] [--audit DIR [--audit-key K]] [--json] [--quiet]",
	 "write the store encrypted, data key wrapped by an HSM key"},
	{"restore", nhi_restore,
	 "FILE.bak --wrap-key 'pkcs11:...' --db FILE [--module SO] [--pin-file F] [--audit DIR [--audit-key K]] [--json] [--quiet]",
	 "authenticate a backup and restore it atomically"},
	{"token", nhi_token,
	 "issue --agent ID --key KEY [--ttl 1h] [--db FILE] [--aud A] [--issuer I] [--scope S...] "
	 "[--jti J] [-o FILE] [--audit DIR [--audit-key K]] [--json] [--quiet]",
	 "issue a JWS (EdDSA/ES256) token for an agent; or: exchange --db FILE --key ISSUER_KEY "
	 "--issuer-url URL --replay-state FILE --form-file F|- [--ttl 15m] [--aud A] [--source ADDR] "
	 "[--content-type CT]: run the token endpoint (POST /oauth/token) on one form body; or: "
	 "replay-init --replay-state FILE: an empty replay state for a first start; or: metadata --db FILE "
	 "--key ISSUER_KEY --issuer-url URL [--jwks-set]: the RFC 8414 metadata (or the JWK Set) it serves"},
	{"key", nhi_key,
	 "add --db FILE ID --pub FILE|URI [--not-before DATE] [--not-after DATE] | remove --db FILE ID KID | "
	 "list --db FILE [ID] [--json] [--quiet]",
	 "an agent's public keys for client assertions (EdDSA/ES256)"},
	{"jwks", nhi_jwks, "--key KEY... [-o FILE] [--json] [--quiet]", "export issuer public keys as a JWK Set"},
	{"resolve", nhi_resolve,
	 "(--db FILE | --backup FILE.bak --wrap-key URI) --jwks FILE --token-file F|- "
	 "[--aud A] [--issuer I] [--audit DIR [--audit-key K]] [--json]",
	 "verify a token offline and print the agent identity (JSON)"},
	{NULL, NULL, NULL, NULL},
};
const struct cli_cmd *cmd_nhi_table(void) { return nhi_cmds; } /* docs: cli_doc.c */

int cmd_nhi(int argc, char **argv)
{
	if (argc >= 2)
		for (const struct cli_cmd *c = nhi_cmds; c->name != NULL; c++)
			if (strcmp(c->name, argv[1]) == 0) {
				cur_cmd = c;
				cur_label = c->name;
			}
	int rc = cli_dispatch("nhi", nhi_cmds, argc, argv);
	audit_close(); /* a checkpoint signed with --audit-key */
	return rc;
}
