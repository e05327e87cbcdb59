/*
 * cmd_update.c - `creto update create|sign|assemble|inspect|verify|apply|status`
 * (docs/crupdate.md).  The first four run outside the enclave, on the
 * staging server and the officers' machines; verify and apply inside.
 * stdout carries only what was asked for (a verdict line, or JSON with
 * --json); status lines ("wrote X", "signed X with key K") go to stderr and
 * --quiet silences them.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "creto/update.h"
#include "util/escape.h"
#include "util/timeutil.h"

static int up_create(int argc, char **argv);
static int up_sign(int argc, char **argv);
static int up_assemble(int argc, char **argv);
static int up_inspect(int argc, char **argv);
static int up_verify(int argc, char **argv);
static int up_apply(int argc, char **argv);
static int up_status(int argc, char **argv);
static int up_models(int argc, char **argv);

static const struct cli_cmd UPDATE_CMDS[] = {
	{"create", up_create,
	 "--type T --name N --version V [--expires DATE] [--created DATE] [--shard-size BYTES]"
	 " --payload PATH -o X.statement [--force] [--quiet] [--json]",
	 "hash a payload (file or directory) and write the statement officers sign"},
	{"sign", up_sign, "X.statement --key KEY [--sigs FILE] [--module SO] [--pin-file F] [--quiet] [--json]",
	 "append one signature (file key or pkcs11: URI) to X.statement.sigs"},
	{"assemble", up_assemble,
	 "X.statement [--sigs FILE] --payload PATH (--trust ROOT.json | --no-verify) -o X.crupdate"
	 " [--force] [--quiet] [--json]",
	 "join statement, signatures and payload, checking the payload and (--trust) the signatures"},
	{"inspect", up_inspect, "X.crupdate [--json]",
	 "show the statement, the key ids that signed and sizes, trusting nothing"},
	{"verify", up_verify, "X.crupdate --trust ROOT.json [--state DIR] [--json]",
	 "exit 0 only when every rule holds; exit 1 naming the first failed rule"},
	{"apply", up_apply,
	 "X.crupdate --trust ROOT.json --state DIR [--wait SECONDS] [--audit-key K] [--json]",
	 "verify, then install atomically into DIR (made by `creto state init`); recorded in DIR/audit"},
	{"status", up_status, "--state DIR [--audit N] [--json]",
	 "installed versions, time floor, trust root and the last N decisions of DIR/audit"},
	{"models", up_models, "--state DIR [--json]",
	 "the installed, verified models: name, version, path, statement digest (read-only)"},
	{NULL, NULL, NULL, NULL},
};
const struct cli_cmd *cmd_update_table(void) { return UPDATE_CMDS; } /* docs: cli_doc.c */

int cmd_update(int argc, char **argv)
{
	return cli_dispatch("update", UPDATE_CMDS, argc, argv);
}

/* Crash tests (build/creto-test only): die at the point CRETO_TEST_CRASH_AT
 * names.  build/creto never installs this: cli_crash_point() is NULL there. */
static void crash_cb(void *arg, const char *point)
{
	if (strcmp((const char *)arg, point) == 0)
		raise(SIGKILL);
}

/* A status line on stderr (never stdout), unless --quiet. */
static void CRETO_PRINTF(2, 3) note(int quiet, const char *fmt, ...)
{
	if (quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int ok_json(const char *k1, const char *v1, const char *k2, const char *v2)
{
	json_t *o = json_pack("{s:b}", "ok", 1);
	if (k1 != NULL)
		json_object_set_new(o, k1, json_string(v1));
	if (k2 != NULL)
		json_object_set_new(o, k2, json_string(v2));
	return cli_json_out(o);
}

static int up_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{"type", required_argument, NULL, 't'},     {"name", required_argument, NULL, 'n'},
		{"version", required_argument, NULL, 'v'},  {"expires", required_argument, NULL, 'x'},
		{"created", required_argument, NULL, 'c'},  {"payload", required_argument, NULL, 'p'},
		{"shard-size", required_argument, NULL, 's'}, {"output", required_argument, NULL, 'o'},
		{"force", no_argument, NULL, 'f'},          {"quiet", no_argument, NULL, 'q'},
		{"json", no_argument, NULL, 'J'},           {NULL, 0, NULL, 0},
	};
	creto_update_create_opts o;
	memset(&o, 0, sizeof o);
	o.clock = cli_clock();
	const char *out = NULL;
	int c, quiet = 0, json = 0;
	uint64_t n;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 't': o.type = optarg; break;
		case 'n': o.name = optarg; break;
		case 'v':
			if (cli_parse_u64("update", "create", "--version", optarg, 1, 1ULL << 53, &n) != 0)
				return CRETO_EUSAGE;
			o.version = (int64_t)n;
			break;
		case 'x':
			if (creto_time_parse(optarg, &o.expires) != 0)
				return cli_usage_error("update create: --expires %s is not a date (YYYY-MM-DD or "
						       "YYYY-MM-DDThh:mm:ssZ)", optarg);
			break;
		case 'c':
			if (creto_time_parse(optarg, &o.created) != 0)
				return cli_usage_error("update create: --created %s is not a date (YYYY-MM-DD or "
						       "YYYY-MM-DDThh:mm:ssZ)", optarg);
			break;
		case 'p': o.payload = optarg; break;
		case 's':
			if (cli_parse_u64("update", "create", "--shard-size", optarg, CRETO_SHARD_MIN, CRETO_SHARD_MAX, &n) != 0)
				return CRETO_EUSAGE;
			o.shard_size = (uint32_t)n;
			break;
		case 'o': out = optarg; break;
		case 'f': o.force = 1; break;
		case 'q': quiet = 1; break;
		case 'J': json = 1; break;
		default: return cli_usage("update", &UPDATE_CMDS[0]);
		}
	}
	if (o.type == NULL || o.name == NULL || o.version == 0 || o.payload == NULL || out == NULL ||
	    optind != argc)
		return cli_usage("update", &UPDATE_CMDS[0]);
	creto_err e;
	creto_err_clear(&e);
	/* progress on stderr from the bytes read (cli.c); stdout keeps the JSON */
	cli_progress *prog = cli_progress_start("update create", cli_dir_bytes(o.payload));
	int crc = creto_update_create(&o, out, &e);
	cli_progress_stop(prog);
	if (crc != CRETO_OK)
		return cli_fail(&e, json);
	note(quiet || json, "wrote %s", out);
	return json ? ok_json("statement", out, NULL, NULL) : 0;
}

static int up_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},    {"sigs", required_argument, NULL, 'S'},
		{"module", required_argument, NULL, 'm'}, {"pin-file", required_argument, NULL, 'P'},
		{"quiet", no_argument, NULL, 'q'},        {"json", no_argument, NULL, 'J'},
		{NULL, 0, NULL, 0},
	};
	const char *key = NULL, *sigs = NULL;
	creto_keys_opts ko = {0};
	int c, quiet = 0, json = 0;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key = optarg; break;
		case 'S': sigs = optarg; break;
		case 'm': ko.module_path = optarg; break;
		case 'P': ko.pin_file = optarg; break;
		case 'q': quiet = 1; break;
		case 'J': json = 1; break;
		default: return cli_usage("update", &UPDATE_CMDS[1]);
		}
	}
	if (key == NULL || optind + 1 != argc)
		return cli_usage("update", &UPDATE_CMDS[1]);
	char defsigs[4096];
	if (sigs == NULL) {
		snprintf(defsigs, sizeof defsigs, "%s.sigs", argv[optind]);
		sigs = defsigs;
	}
	creto_err e;
	creto_err_clear(&e);
	char kid[17];
	if (creto_update_sign(argv[optind], sigs, key, &ko, kid, &e) != CRETO_OK)
		return cli_fail(&e, json);
	note(quiet || json, "signed %s with key %s -> %s", argv[optind], kid, sigs);
	return json ? ok_json("keyid", kid, "sigs", sigs) : 0;
}

static int up_assemble(int argc, char **argv)
{
	static const struct option opts[] = {
		{"sigs", required_argument, NULL, 'S'},   {"payload", required_argument, NULL, 'p'},
		{"output", required_argument, NULL, 'o'}, {"trust", required_argument, NULL, 't'},
		{"no-verify", no_argument, NULL, 'N'},    {"force", no_argument, NULL, 'f'},
		{"quiet", no_argument, NULL, 'q'},        {"json", no_argument, NULL, 'J'},
		{NULL, 0, NULL, 0},
	};
	const char *sigs = NULL, *payload = NULL, *out = NULL;
	creto_update_assemble_opts ao = {NULL, 0};
	int c, quiet = 0, json = 0, nover = 0;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'S': sigs = optarg; break;
		case 'p': payload = optarg; break;
		case 'o': out = optarg; break;
		case 't': ao.trust_path = optarg; break;
		case 'N': nover = 1; break;
		case 'f': ao.force = 1; break;
		case 'q': quiet = 1; break;
		case 'J': json = 1; break;
		default: return cli_usage("update", &UPDATE_CMDS[2]);
		}
	}
	if (payload == NULL || out == NULL || optind + 1 != argc)
		return cli_usage("update", &UPDATE_CMDS[2]);
	if (nover && ao.trust_path != NULL)
		return cli_usage_error("update assemble: --trust and --no-verify exclude each other");
	char defsigs[4096];
	if (sigs == NULL) {
		snprintf(defsigs, sizeof defsigs, "%s.sigs", argv[optind]);
		sigs = defsigs;
	}
	/* Said even under --quiet: a package leaves unchecked. */
	if (ao.trust_path == NULL)
		fprintf(stderr, "creto: update assemble: signatures NOT checked against a trust root (%s)\n",
			nover ? "--no-verify" : "no --trust given");
	creto_err e;
	creto_err_clear(&e);
	if (creto_update_assemble(argv[optind], sigs, payload, out, &ao, &e) != CRETO_OK)
		return cli_fail(&e, json);
	note(quiet || json, "wrote %s%s%s", out, ao.trust_path ? " (signatures reach the threshold of " : "",
	     ao.trust_path ? "the trust root)" : "");
	return json ? ok_json("package", out, NULL, NULL) : 0;
}

static int up_inspect(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'J'}, {NULL, 0, NULL, 0}};
	int json = 0, c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'J')
			return cli_usage("update", &UPDATE_CMDS[3]);
		json = 1;
	}
	if (optind + 1 != argc)
		return cli_usage("update", &UPDATE_CMDS[3]);
	creto_err e;
	creto_err_clear(&e);
	char *text = NULL;
	if (creto_update_inspect(argv[optind], &text, &e) != CRETO_OK)
		return cli_fail(&e, json);
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);
	free(text);
	if (o == NULL)
		return 3;
	if (json)
		return cli_json_out(o);
	/* Everything below comes from the untrusted package: escaped. */
	json_t *st = json_object_get(o, "statement");
	char *pk = creto_escape_dup(argv[optind], strlen(argv[optind]));
	printf("package %s (UNVERIFIED: inspect trusts nothing)\n", pk ? pk : "?");
	free(pk);
	printf("  type %s  name %s  version %lld\n", json_string_value(json_object_get(st, "type")),
	       json_string_value(json_object_get(st, "name")),
	       (long long)json_integer_value(json_object_get(st, "version")));
	printf("  created %s  expires %s\n", json_string_value(json_object_get(st, "created")),
	       json_string_value(json_object_get(st, "expires")));
	printf("  statement sha3-256 %s\n", json_string_value(json_object_get(o, "statement_digest")));
	printf("  signed by:");
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(o, "signed_by"), i, x) printf(" %s", json_string_value(x));
	printf("\n  members:\n");
	json_array_foreach(json_object_get(o, "members"), i, x) {
		const char *nm = json_string_value(json_object_get(x, "name"));
		char *en = creto_escape_dup(nm ? nm : "", nm ? strlen(nm) : 0);
		printf("    %12lld  %s\n", (long long)json_integer_value(json_object_get(x, "size")),
		       en ? en : "?");
		free(en);
	}
	json_decref(o);
	return 0;
}

static json_t *result_json(const creto_update_result *r, int ok, const creto_err *e)
{
	json_t *o = json_object();
	json_object_set_new(o, "ok", json_boolean(ok));
	if (!ok) {
		json_object_set_new(o, "status", json_string(creto_status_name(e->code)));
		json_object_set_new(o, "code", json_integer(e->code));
		json_object_set_new(o, "error", json_string(e->msg));
		json_object_set_new(o, "rule", json_string(r->rule));
	}
	json_object_set_new(o, "type", json_string(r->type));
	json_object_set_new(o, "name", json_string(r->name));
	json_object_set_new(o, "version", json_integer(r->version));
	json_object_set_new(o, "installed_before", json_integer(r->installed));
	json_object_set_new(o, "statement_digest", json_string(r->statement_digest));
	json_object_set_new(o, "keyids", json_string(r->keyids));
	json_object_set_new(o, "payload_bytes", json_integer((json_int_t)r->payload_bytes));
	if (r->install_path[0])
		json_object_set_new(o, "installed_at", json_string(r->install_path));
	return o;
}

static int verify_or_apply(int argc, char **argv, int apply)
{
	static const struct option opts[] = {
		{"trust", required_argument, NULL, 't'},
		{"state", required_argument, NULL, 's'},
		{"wait", required_argument, NULL, 'w'},
		{"audit-key", required_argument, NULL, 'K'},
		{"json", no_argument, NULL, 'J'},
		{NULL, 0, NULL, 0},
	};
	const struct cli_cmd *cmd = &UPDATE_CMDS[apply ? 5 : 4];
	const char *trust = NULL, *state = NULL, *audit_key = NULL;
	int json = 0, c;
	uint64_t wait = 0;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't': trust = optarg; break;
		case 's': state = optarg; break;
		case 'w':
			if (cli_parse_u64("update", cmd->name, "--wait", optarg, 0, 86400 * 365, &wait) != 0)
				return CRETO_EUSAGE;
			break;
		case 'K':
			if (!apply)
				return cli_usage_error("update verify: --audit-key is for apply (verify records nothing)");
			audit_key = optarg;
			break;
		case 'J': json = 1; break;
		default: return cli_usage("update", cmd);
		}
	}
	if (trust == NULL || optind + 1 != argc || (apply && state == NULL))
		return cli_usage("update", cmd);
	creto_err e;
	creto_err_clear(&e);
	creto_update_result r;
	memset(&r, 0, sizeof r);
	const char *pkg = argv[optind];
	/* One update context for this one package: the lock (apply), the
	 * state and the trust root; one decision; for apply, its commit. */
	creto_update_ctx_opts co;
	memset(&co, 0, sizeof co);
	co.clock = cli_clock();
	co.lock_wait_s = (int64_t)wait;
	co.readonly = !apply;
	/* apply: every decision goes to the log first; a log that cannot be
	 * written means nothing is decided (exit 3). */
	creto_state_log *log = NULL;
	if (apply) {
		int lrc = cli_state_log_open(state, audit_key, (int64_t)wait, &log, &e);
		if (lrc != CRETO_OK) {
			fprintf(stderr, "creto: %s\n", e.msg);
			if (json)
				(void)cli_json_out(result_json(&r, 0, &e));
			return lrc;
		}
		co.sink = creto_state_log_sink(log);
	}
	if (cli_crash_point() != NULL) {
		co.crash = crash_cb;
		co.crash_arg = (void *)cli_crash_point();
	}
	int rc;
	int fd = -1;
	/* The package first: a link or FIFO is refused before anything else. */
	creto_err oe;
	creto_err_clear(&oe);
	int orc = creto_update_open(pkg, &fd, &oe);
	if (orc != CRETO_OK && !apply) {
		e = oe;
		if (orc == CRETO_EREJECT)
			snprintf(r.rule, sizeof r.rule, "%s", creto_update_rule_name(CRETO_RULE_CONTAINER));
		rc = orc;
	} else {
		creto_update_ctx *ctx = NULL;
		rc = creto_update_ctx_open(state, trust, &co, &ctx, &e);
		if (rc != CRETO_OK) {
			if (orc != CRETO_OK)
				e = oe, rc = orc;
			else
				creto_err_ctx(&e, "%s", pkg);
		} else {
			creto_update_decision d;
			struct stat pst;
			cli_progress *prog = NULL;
			if (fd >= 0 && fstat(fd, &pst) == 0)
				prog = cli_progress_start(apply ? "update apply" : "update verify",
							  (uint64_t)pst.st_size);
			rc = orc == CRETO_OK ? creto_update_decide(ctx, fd, pkg, &d, &e)
					     : creto_update_decide_path(ctx, pkg, &d, &e);
			cli_progress_stop(prog);
			if (rc == CRETO_OK) {
				if (apply)
					rc = creto_update_commit(ctx, &d, &e);
				else if (d.verdict != CRETO_VERDICT_ACCEPT)
					rc = (e = d.why, d.why.code);
				r = d.res;
			}
			creto_update_decision_clear(&d);
			creto_update_ctx_close(ctx);
		}
	}
	if (fd >= 0)
		close(fd);
	if (apply)
		cli_state_log_close(log, rc != CRETO_OK ? &e : NULL);
	if (rc != CRETO_OK) {
		char *m = creto_escape_dup(e.msg, strlen(e.msg)); /* quotes the package path */
		fprintf(stderr, "creto: %s\n", m ? m : e.msg);
		free(m);
		if (json)
			(void)cli_json_out(result_json(&r, 0, &e));
		return rc;
	}
	if (json)
		return cli_json_out(result_json(&r, 1, &e));
	if (apply)
		printf("applied %s %s version %lld (was %lld) -> %s; signed by %s\n", r.type, r.name,
		       (long long)r.version, (long long)r.installed, r.install_path, r.keyids);
	else
		printf("verified %s %s version %lld (%llu payload bytes); signed by %s\n", r.type, r.name,
		       (long long)r.version, (unsigned long long)r.payload_bytes, r.keyids);
	return 0;
}

static int up_verify(int argc, char **argv) { return verify_or_apply(argc, argv, 0); }
static int up_apply(int argc, char **argv) { return verify_or_apply(argc, argv, 1); }

/* `update status` for people: installed targets, the time floor, the trust
 * root in force and the last decisions. */
static void status_text(json_t *o)
{
	const char *tf = json_string_value(json_object_get(o, "time_floor"));
	printf("trust root: version %lld%s\n", (long long)json_integer_value(json_object_get(o, "trust_root_version")),
	       json_integer_value(json_object_get(o, "trust_root_version")) ? " (installed by rotation)"
									   : " (as provisioned; no rotation yet)");
	printf("time floor: %s\n", tf && tf[0] ? tf : "(none yet)");
	json_t *inst = json_object_get(o, "installed");
	printf("installed (%zu):\n", json_array_size(inst));
	size_t i;
	json_t *x;
	json_array_foreach(inst, i, x)
		printf("  %-16s %-24s version %-6lld installed %s  statement %.16s\n",
		       json_string_value(json_object_get(x, "type")), json_string_value(json_object_get(x, "name")),
		       (long long)json_integer_value(json_object_get(x, "version")),
		       json_string_value(json_object_get(x, "installed_at")) ? json_string_value(json_object_get(x, "installed_at")) : "?",
		       json_string_value(json_object_get(x, "statement_digest")));
	json_t *aud = json_object_get(o, "audit");
	printf("last decisions (%zu):\n", json_array_size(aud));
	json_array_foreach(aud, i, x) {
		/* From the log: its entry number, and the rule on a refusal. */
		json_t *seq = json_object_get(x, "seq");
		const char *why = json_string_value(json_object_get(x, "reason"));
		const char *what = json_string_value(json_object_get(x, "subject"));
		if (what == NULL || what[0] == 0)
			what = json_string_value(json_object_get(x, "source"));
		if (seq != NULL)
			printf("  #%-5lld ", (long long)json_integer_value(seq));
		else
			printf("  ");
		printf("%s  %-12s %s%s%s\n", json_string_value(json_object_get(x, "at")),
		       json_string_value(json_object_get(x, "decision")), what ? what : "",
		       why ? ": " : "", why ? why : "");
	}
}

static int up_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{"state", required_argument, NULL, 's'},
		{"audit", required_argument, NULL, 'a'},
		{"json", no_argument, NULL, 'J'},
		{NULL, 0, NULL, 0},
	};
	const char *state = NULL;
	int json = 0, c;
	uint64_t rows = 10;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': state = optarg; break;
		case 'a':
			if (cli_parse_u64("update", "status", "--audit", optarg, 0, 100000, &rows) != 0)
				return CRETO_EUSAGE;
			break;
		case 'J': json = 1; break;
		default: return cli_usage("update", &UPDATE_CMDS[6]);
		}
	}
	if (state == NULL || optind != argc)
		return cli_usage("update", &UPDATE_CMDS[6]);
	creto_err e;
	creto_err_clear(&e);
	char *text = NULL;
	if (creto_update_status(state, (int)rows, &text, &e) != CRETO_OK)
		return cli_fail(&e, json);
	if (json) {
		printf("%s\n", text);
		free(text);
		return 0;
	}
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);
	free(text);
	if (o == NULL)
		return CRETO_EOP;
	status_text(o);
	json_decref(o);
	return 0;
}

static int up_models(int argc, char **argv)
{
	static const struct option opts[] = {
		{"state", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'J'},
		{NULL, 0, NULL, 0},
	};
	const char *state = NULL;
	int json = 0, c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': state = optarg; break;
		case 'J': json = 1; break;
		default: return cli_usage("update", &UPDATE_CMDS[7]);
		}
	}
	if (state == NULL || optind != argc)
		return cli_usage("update", &UPDATE_CMDS[7]);
	creto_err e;
	creto_err_clear(&e);
	creto_update_model *m = NULL;
	size_t n = 0;
	if (creto_update_models_list(state, &m, &n, &e) != CRETO_OK)
		return cli_fail(&e, json);
	json_t *arr = json ? json_array() : NULL;
	for (size_t i = 0; i < n; i++) {
		char t[CRETO_TIME_STRLEN];
		creto_time_format(m[i].installed_at, t);
		if (json) {
			json_t *o = json_object();
			json_object_set_new(o, "name", json_string(m[i].name));
			json_object_set_new(o, "version", json_integer(m[i].version));
			json_object_set_new(o, "path", json_string(m[i].path));
			json_object_set_new(o, "statement_digest", json_string(m[i].statement_digest));
			json_object_set_new(o, "installed_at", json_string(t));
			json_array_append_new(arr, o);
		} else {
			char *p = creto_escape_dup(m[i].path, strlen(m[i].path)); /* the --state path as given */
			printf("%-24s version %-6lld %s  statement %.16s  installed %s\n", m[i].name,
			       (long long)m[i].version, p ? p : "?", m[i].statement_digest, t);
			free(p);
		}
	}
	free(m);
	if (json)
		return cli_json_out(arr);
	if (n == 0)
		printf("no models installed\n");
	return 0;
}
