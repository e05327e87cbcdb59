/*
 * cmd_update.c - `creto update create|sign|assemble|inspect|verify|apply|status`
 * (docs/crupdate.md).  The first four run outside the enclave, on the
 * staging server and the officers' machines; verify and apply inside.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "creto/update.h"
#include "util/escape.h"
#include "util/timeutil.h"

/* Crash tests (build/creto-test only): die at the point CRETO_TEST_CRASH_AT
 * names.  build/creto never installs this: cli_crash_point() is NULL there. */
static void crash_cb(void *arg, const char *point)
{
	if (strcmp((const char *)arg, point) == 0)
		raise(SIGKILL);
}

static int up_create(int argc, char **argv);
static int up_sign(int argc, char **argv);
static int up_assemble(int argc, char **argv);
static int up_inspect(int argc, char **argv);
static int up_verify(int argc, char **argv);
static int up_apply(int argc, char **argv);
static int up_status(int argc, char **argv);

static const struct cli_cmd UPDATE_CMDS[] = {
	{"create", up_create,
	 "--type T --name N --version V [--expires DATE] [--created DATE] [--shard-size BYTES]"
	 " --payload PATH -o X.statement",
	 "hash a payload (file or directory) and write the statement officers sign"},
	{"sign", up_sign, "X.statement --key KEY [--sigs FILE] [--module SO] [--pin-file F]",
	 "append one signature (file key or pkcs11: URI) to X.statement.sigs"},
	{"assemble", up_assemble, "X.statement [--sigs FILE] --payload PATH -o X.crupdate",
	 "join statement, signatures and payload, checking the payload still matches"},
	{"inspect", up_inspect, "X.crupdate [--json]",
	 "show the statement, the key ids that signed and sizes, trusting nothing"},
	{"verify", up_verify, "X.crupdate --trust ROOT.json [--state DIR] [--json]",
	 "exit 0 only when every rule holds; exit 1 naming the first failed rule"},
	{"apply", up_apply, "X.crupdate --trust ROOT.json --state DIR [--json]",
	 "verify, then install atomically into DIR and record it"},
	{"status", up_status, "--state DIR [--audit N]",
	 "installed versions, time floor and the last audit rows (JSON)"},
	{NULL, NULL, NULL, NULL},
};

int cmd_update(int argc, char **argv)
{
	return cli_dispatch("update", UPDATE_CMDS, argc, argv);
}

static int up_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{"type", required_argument, NULL, 't'},     {"name", required_argument, NULL, 'n'},
		{"version", required_argument, NULL, 'v'},  {"expires", required_argument, NULL, 'x'},
		{"created", required_argument, NULL, 'c'},  {"payload", required_argument, NULL, 'p'},
		{"shard-size", required_argument, NULL, 's'}, {"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	creto_update_create_opts o;
	memset(&o, 0, sizeof o);
	o.clock = cli_clock();
	const char *out = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 't': o.type = optarg; break;
		case 'n': o.name = optarg; break;
		case 'v':
			o.version = strtoll(optarg, &end, 10);
			if (*end || end == optarg)
				return cli_usage_error("update create: --version %s is not an integer", optarg);
			break;
		case 'x':
			if (creto_time_parse(optarg, &o.expires) != 0)
				return cli_usage_error("update create: --expires %s is not a date", optarg);
			break;
		case 'c':
			if (creto_time_parse(optarg, &o.created) != 0)
				return cli_usage_error("update create: --created %s is not a date", optarg);
			break;
		case 'p': o.payload = optarg; break;
		case 's': o.shard_size = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'o': out = optarg; break;
		default: return cli_usage("update", &UPDATE_CMDS[0]);
		}
	}
	if (o.type == NULL || o.name == NULL || o.version == 0 || o.payload == NULL || out == NULL ||
	    optind != argc)
		return cli_usage("update", &UPDATE_CMDS[0]);
	creto_err e;
	creto_err_clear(&e);
	if (creto_update_create(&o, out, &e) != CRETO_OK)
		return cli_fail(&e, 0);
	printf("wrote %s\n", out);
	return 0;
}

static int up_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},    {"sigs", required_argument, NULL, 'S'},
		{"module", required_argument, NULL, 'm'}, {"pin-file", required_argument, NULL, 'P'},
		{NULL, 0, NULL, 0},
	};
	const char *key = NULL, *sigs = NULL;
	creto_keys_opts ko = {NULL, NULL};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key = optarg; break;
		case 'S': sigs = optarg; break;
		case 'm': ko.module_path = optarg; break;
		case 'P': ko.pin_file = optarg; break;
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
		return cli_fail(&e, 0);
	printf("signed %s with key %s -> %s\n", argv[optind], kid, sigs);
	return 0;
}

static int up_assemble(int argc, char **argv)
{
	static const struct option opts[] = {
		{"sigs", required_argument, NULL, 'S'},
		{"payload", required_argument, NULL, 'p'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	const char *sigs = NULL, *payload = NULL, *out = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'S': sigs = optarg; break;
		case 'p': payload = optarg; break;
		case 'o': out = optarg; break;
		default: return cli_usage("update", &UPDATE_CMDS[2]);
		}
	}
	if (payload == NULL || out == NULL || optind + 1 != argc)
		return cli_usage("update", &UPDATE_CMDS[2]);
	char defsigs[4096];
	if (sigs == NULL) {
		snprintf(defsigs, sizeof defsigs, "%s.sigs", argv[optind]);
		sigs = defsigs;
	}
	creto_err e;
	creto_err_clear(&e);
	if (creto_update_assemble(argv[optind], sigs, payload, out, &e) != CRETO_OK)
		return cli_fail(&e, 0);
	printf("wrote %s\n", out);
	return 0;
}

static int up_inspect(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'J'}, {NULL, 0, NULL, 0}};
	int json = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
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
	json_t *st = json_object_get(o, "statement");
	printf("package %s (UNVERIFIED: inspect trusts nothing)\n", argv[optind]);
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
	json_array_foreach(json_object_get(o, "members"), i, x)
		printf("    %12lld  %s\n", (long long)json_integer_value(json_object_get(x, "size")),
		       json_string_value(json_object_get(x, "name")));
	json_decref(o);
	return 0;
}

static json_t *result_json(const creto_update_result *r, int ok, const creto_err *e)
{
	json_t *o = json_object();
	json_object_set_new(o, "ok", json_boolean(ok));
	json_object_set_new(o, "type", json_string(r->type));
	json_object_set_new(o, "name", json_string(r->name));
	json_object_set_new(o, "version", json_integer(r->version));
	json_object_set_new(o, "installed_before", json_integer(r->installed));
	json_object_set_new(o, "statement_digest", json_string(r->statement_digest));
	json_object_set_new(o, "keyids", json_string(r->keyids));
	json_object_set_new(o, "payload_bytes", json_integer((json_int_t)r->payload_bytes));
	if (r->install_path[0])
		json_object_set_new(o, "installed_at", json_string(r->install_path));
	if (!ok) {
		json_object_set_new(o, "rule", json_string(r->rule));
		json_object_set_new(o, "code", json_integer(e->code));
		json_object_set_new(o, "error", json_string(e->msg));
	}
	return o;
}

static int verify_or_apply(int argc, char **argv, int apply)
{
	static const struct option opts[] = {
		{"trust", required_argument, NULL, 't'},
		{"state", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'J'},
		{NULL, 0, NULL, 0},
	};
	const struct cli_cmd *cmd = &UPDATE_CMDS[apply ? 5 : 4];
	const char *trust = NULL, *state = NULL;
	int json = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't': trust = optarg; break;
		case 's': state = optarg; break;
		case 'J': json = 1; break;
		default: return cli_usage("update", cmd);
		}
	}
	if (trust == NULL || optind + 1 != argc || (apply && state == NULL))
		return cli_usage("update", cmd);
	creto_err e;
	creto_err_clear(&e);
	creto_update_result r;
	creto_update_opts uo;
	memset(&uo, 0, sizeof uo);
	uo.trust_path = trust;
	uo.state_dir = state;
	uo.clock = cli_clock();
	if (cli_crash_point() != NULL) {
		uo.crash = crash_cb;
		uo.crash_arg = (void *)cli_crash_point();
	}
	int rc = apply ? creto_update_apply(argv[optind], &uo, &r, &e)
		       : creto_update_verify(argv[optind], &uo, &r, &e);
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

static int up_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{"state", required_argument, NULL, 's'},
		{"audit", required_argument, NULL, 'a'},
		{"json", no_argument, NULL, 'J'},
		{NULL, 0, NULL, 0},
	};
	const char *state = NULL;
	int rows = 10, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': state = optarg; break;
		case 'a': rows = atoi(optarg); break;
		case 'J': break;
		default: return cli_usage("update", &UPDATE_CMDS[6]);
		}
	}
	if (state == NULL || optind != argc)
		return cli_usage("update", &UPDATE_CMDS[6]);
	creto_err e;
	creto_err_clear(&e);
	char *text = NULL;
	if (creto_update_status(state, rows, &text, &e) != CRETO_OK)
		return cli_fail(&e, 0);
	printf("%s\n", text);
	free(text);
	return 0;
}
