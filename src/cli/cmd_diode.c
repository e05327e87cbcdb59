/*
 * cmd_diode.c - the enclave side of the data diode (docs/crupdate.md
 * "Diode watcher"): `creto diode watch DIR --trust ROOT --state SDIR`, and
 * `creto diode quarantine list|show|requeue` to handle what it set aside.
 * The watcher prints one line per decision, "TIME DECISION NAME: MESSAGE"
 * (TIME in UTC; NAME and MESSAGE escaped, util/escape.h), or with --json
 * one JSON object per line.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "creto/update.h"
#include "util/escape.h"
#include "util/timeutil.h"

static int diode_watch(int argc, char **argv);
static int diode_quarantine(int argc, char **argv);

static const struct cli_cmd DIODE_CMDS[] = {
	{"watch", diode_watch,
	 "DIR --trust ROOT.json --state SDIR [--once] [--settle-ms MS] [--timeout SECONDS]"
	 " [--wait SECONDS] [--audit-key K] [--json]",
	 "apply every complete *.crupdate arriving in DIR; quarantine rejected ones with a reason"},
	{"quarantine", diode_quarantine,
	 "list|show NAME|requeue NAME --state SDIR [--drop DIR] [--audit-key K] [--json]",
	 "list, show or requeue (back into the drop directory) quarantined packages"},
	{NULL, NULL, NULL, NULL},
};
const struct cli_cmd *cmd_diode_table(void) { return DIODE_CMDS; } /* docs: cli_doc.c */

int cmd_diode(int argc, char **argv)
{
	return cli_dispatch("diode", DIODE_CMDS, argc, argv);
}

/* Crash tests (build/creto-test only; cli_crash_point() is NULL in creto). */
static void crash_cb(void *arg, const char *point)
{
	if (strcmp((const char *)arg, point) == 0)
		raise(SIGKILL);
}

/* SIGINT/SIGTERM stop the watcher through its handle (async-signal-safe). */
static creto_stop_handle *g_watch_stop;

static void on_signal(int sig)
{
	(void)sig;
	creto_stop_handle_stop(g_watch_stop);
}

typedef struct watch_out {
	int json;
	const creto_diode_opts *o;
	unsigned quarantined;
} watch_out;

static void now_str(char t[CRETO_TIME_STRLEN])
{
	creto_time_format(creto_clock_now(cli_clock()), t);
}

/* A JSON string of untrusted bytes: as is when valid UTF-8 (jansson
 * escapes controls), else their escaped form (util/escape.h). */
static json_t *jstr(const char *s)
{
	json_t *j = json_string(s);
	if (j == NULL) {
		char *esc = creto_escape_dup(s, strlen(s));
		j = json_string(esc ? esc : "");
		free(esc);
	}
	return j;
}

static void emit_json(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (s != NULL)
		printf("%s\n", s);
	free(s);
	fflush(stdout);
}

static void started(void *arg, int64_t version, int64_t expires)
{
	watch_out *w = arg;
	char t[CRETO_TIME_STRLEN], x[CRETO_TIME_STRLEN], note[300];
	now_str(t);
	creto_time_format(expires, x);
	if (creto_trust_root_expiry_note(version, expires, creto_clock_now(cli_clock()), note, sizeof note))
		fprintf(stderr, "creto: %s\n", note);
	if (w->json) {
		json_t *o = json_object();
		json_object_set_new(o, "at", json_string(t));
		json_object_set_new(o, "event", json_string("started"));
		json_object_set_new(o, "dir", jstr(w->o->dir));
		json_object_set_new(o, "state", jstr(w->o->state_dir));
		json_object_set_new(o, "trust_root_version", json_integer(version));
		json_object_set_new(o, "trust_root_expires", json_string(x));
		emit_json(o);
		return;
	}
	char *d = creto_escape_dup(w->o->dir, strlen(w->o->dir));
	char *s = creto_escape_dup(w->o->state_dir, strlen(w->o->state_dir));
	printf("%s started: watching %s, state %s, trust root version %lld (expires %s)%s\n", t,
	       d ? d : "?", s ? s : "?", (long long)version, x, w->o->once ? ", one pass" : "");
	free(d);
	free(s);
	fflush(stdout);
}

/* One line per decision.  The file name comes from the untrusted side of
 * the diode, and the message may quote it: both are escaped (util/escape.h)
 * so that no byte of a name can end the line, forge another decision line
 * or reach the terminal as a control sequence. */
static void report(void *arg, const creto_diode_event *ev)
{
	watch_out *w = arg;
	char t[CRETO_TIME_STRLEN];
	now_str(t);
	if (strcmp(ev->decision, "quarantined") == 0)
		w->quarantined++;
	if (w->json) {
		json_t *o = json_object();
		json_object_set_new(o, "at", json_string(t));
		json_object_set_new(o, "decision", json_string(ev->decision));
		json_object_set_new(o, "file", jstr(ev->file));
		if (ev->rule[0])
			json_object_set_new(o, "rule", json_string(ev->rule));
		json_object_set_new(o, "message", jstr(ev->msg));
		const creto_update_result *r = ev->res;
		if (r != NULL && r->type[0]) {
			json_object_set_new(o, "type", json_string(r->type));
			if (r->name[0])
				json_object_set_new(o, "name", json_string(r->name));
			if (r->version)
				json_object_set_new(o, "version", json_integer(r->version));
			if (r->statement_digest[0])
				json_object_set_new(o, "statement_digest", json_string(r->statement_digest));
		}
		emit_json(o);
		return;
	}
	char *file = creto_escape_dup(ev->file, strlen(ev->file));
	char *msg = creto_escape_dup(ev->msg, strlen(ev->msg));
	printf("%s %s %s: %s\n", t, ev->decision, file ? file : "(out of memory)", msg ? msg : "(out of memory)");
	free(file);
	free(msg);
	fflush(stdout);
}

static int diode_watch(int argc, char **argv)
{
	static const struct option opts[] = {
		{"trust", required_argument, NULL, 't'},  {"state", required_argument, NULL, 's'},
		{"once", no_argument, NULL, '1'},         {"settle-ms", required_argument, NULL, 'S'},
		{"timeout", required_argument, NULL, 'T'}, {"wait", required_argument, NULL, 'w'},
		{"audit-key", required_argument, NULL, 'K'}, {"json", no_argument, NULL, 'J'},
		{NULL, 0, NULL, 0},
	};
	const char *audit_key = NULL;
	creto_diode_opts o;
	memset(&o, 0, sizeof o);
	watch_out w = {0, &o, 0};
	uint64_t n;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't': o.trust_path = optarg; break;
		case 's': o.state_dir = optarg; break;
		case '1': o.once = 1; break;
		case 'S':
			if (cli_parse_u64("diode", "watch", "--settle-ms", optarg, 1, 3600 * 1000, &n) != 0)
				return CRETO_EUSAGE;
			o.settle_ms = (int)n;
			break;
		case 'T':
			if (cli_parse_u64("diode", "watch", "--timeout", optarg, 1, 86400ULL * 3650, &n) != 0)
				return CRETO_EUSAGE;
			o.timeout_s = (int64_t)n;
			break;
		case 'w':
			if (cli_parse_u64("diode", "watch", "--wait", optarg, 0, 86400ULL * 365, &n) != 0)
				return CRETO_EUSAGE;
			o.lock_wait_s = (int64_t)n;
			break;
		case 'K': audit_key = optarg; break;
		case 'J': w.json = 1; break;
		default: return cli_usage("diode", &DIODE_CMDS[0]);
		}
	}
	if (o.trust_path == NULL || o.state_dir == NULL || optind + 1 != argc)
		return cli_usage("diode", &DIODE_CMDS[0]);
	o.dir = argv[optind];
	o.clock = cli_clock();
	if (cli_crash_point() != NULL) {
		o.crash = crash_cb;
		o.crash_arg = (void *)cli_crash_point();
	}
	o.report = report;
	o.report_arg = &w;
	o.started = started;
	creto_err e;
	creto_err_clear(&e);
	creto_state_log *log = NULL;
	if (cli_state_log_open(o.state_dir, audit_key, o.lock_wait_s, &log, &e) != CRETO_OK)
		return cli_fail(&e, w.json);
	o.sink = creto_state_log_sink(log);
	if (creto_stop_handle_new(&g_watch_stop, &e) != CRETO_OK) {
		cli_state_log_close(log, NULL);
		return cli_fail(&e, w.json);
	}
	o.stop = g_watch_stop;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int rc = creto_diode_watch(&o, &e);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	creto_stop_handle_free(g_watch_stop);
	g_watch_stop = NULL;
	cli_state_log_close(log, rc != CRETO_OK ? &e : NULL);
	if (rc != CRETO_OK)
		return cli_fail(&e, w.json);
	/* --once: a pass that set anything aside is worth an alert. */
	if (o.once && w.quarantined > 0) {
		fprintf(stderr, "creto: diode watch: %u package%s quarantined in this pass\n", w.quarantined,
			w.quarantined == 1 ? "" : "s");
		return CRETO_EREJECT;
	}
	return 0;
}

/* ---- diode quarantine list|show|requeue ---- */

static int q_list(int argc, char **argv);
static int q_show(int argc, char **argv);
static int q_requeue(int argc, char **argv);

static const struct cli_cmd Q_CMDS[] = {
	{"list", q_list, "--state SDIR [--json]", "quarantined packages with rule, reason and time"},
	{"show", q_show, "NAME --state SDIR [--json]", "one quarantined package"},
	{"requeue", q_requeue, "NAME --state SDIR --drop DIR [--audit-key K] [--json] [--quiet]",
	 "move it back into the drop directory for a new decision (audited)"},
	{NULL, NULL, NULL, NULL},
};
const struct cli_cmd *cmd_diode_quarantine_table(void) { return Q_CMDS; } /* docs: cli_doc.c */

static int diode_quarantine(int argc, char **argv)
{
	return cli_dispatch("diode quarantine", Q_CMDS, argc, argv);
}

typedef struct q_args {
	const char *state, *drop, *name, *audit_key;
	int json, quiet;
} q_args;

static int q_parse(int argc, char **argv, const struct cli_cmd *cmd, int want_name, q_args *a)
{
	static const struct option opts[] = {
		{"state", required_argument, NULL, 's'}, {"drop", required_argument, NULL, 'd'},
		{"json", no_argument, NULL, 'J'},       {"quiet", no_argument, NULL, 'q'},
		{"audit-key", required_argument, NULL, 'K'}, {NULL, 0, NULL, 0},
	};
	memset(a, 0, sizeof *a);
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': a->state = optarg; break;
		case 'd': a->drop = optarg; break;
		case 'J': a->json = 1; break;
		case 'q': a->quiet = 1; break;
		case 'K': a->audit_key = optarg; break;
		default: return cli_usage("diode quarantine", cmd);
		}
	}
	if (a->state == NULL || optind + want_name != argc)
		return cli_usage("diode quarantine", cmd);
	if (a->audit_key != NULL && cmd->fn != q_requeue)
		return cli_usage_error("diode quarantine %s: --audit-key is for requeue (%s records nothing)",
				       cmd->name, cmd->name);
	a->name = want_name ? argv[optind] : NULL;
	return 0;
}

static void q_line(json_t *x)
{
	const char *nm = json_string_value(json_object_get(x, "name"));
	char *en = creto_escape_dup(nm ? nm : "", nm ? strlen(nm) : 0);
	printf("%s  %-14s %s  %lld bytes\n    %s\n", json_string_value(json_object_get(x, "quarantined_at")),
	       json_string_value(json_object_get(x, "rule")), en ? en : "?",
	       (long long)json_integer_value(json_object_get(x, "bytes")),
	       json_string_value(json_object_get(x, "reason")));
	free(en);
}

static int q_print(char *text, int json, int list)
{
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);
	free(text);
	if (o == NULL)
		return CRETO_EOP;
	if (json)
		return cli_json_out(o);
	if (list) {
		size_t i;
		json_t *x;
		if (json_array_size(o) == 0)
			printf("quarantine is empty\n");
		json_array_foreach(o, i, x) q_line(x);
	} else {
		q_line(o);
	}
	json_decref(o);
	return 0;
}

static int q_list(int argc, char **argv)
{
	q_args a;
	int rc = q_parse(argc, argv, &Q_CMDS[0], 0, &a);
	if (rc != 0)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	char *text = NULL;
	if (creto_diode_quarantine_list(a.state, &text, &e) != CRETO_OK)
		return cli_fail(&e, a.json);
	return q_print(text, a.json, 1);
}

static int q_show(int argc, char **argv)
{
	q_args a;
	int rc = q_parse(argc, argv, &Q_CMDS[1], 1, &a);
	if (rc != 0)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	char *text = NULL;
	if (creto_diode_quarantine_show(a.state, a.name, &text, &e) != CRETO_OK)
		return cli_fail(&e, a.json);
	return q_print(text, a.json, 0);
}

static int q_requeue(int argc, char **argv)
{
	q_args a;
	int rc = q_parse(argc, argv, &Q_CMDS[2], 1, &a);
	if (rc != 0)
		return rc;
	if (a.drop == NULL)
		return cli_usage_error("diode quarantine requeue: --drop DIR (the watcher's drop directory) is required");
	creto_err e;
	creto_err_clear(&e);
	creto_state_log *log = NULL;
	if (cli_state_log_open(a.state, a.audit_key, 0, &log, &e) != CRETO_OK)
		return cli_fail(&e, a.json);
	creto_event_sink sink = creto_state_log_sink(log);
	rc = creto_diode_quarantine_requeue(a.state, a.name, a.drop, cli_clock(), &sink, &e);
	cli_state_log_close(log, rc != CRETO_OK ? &e : NULL);
	if (rc != CRETO_OK)
		return cli_fail(&e, a.json);
	if (a.json)
		return cli_json_out(json_pack("{s:b, s:o, s:s}", "ok", 1, "requeued", jstr(a.name), "drop", a.drop));
	if (!a.quiet)
		fprintf(stderr, "requeued %s into %s\n", a.name, a.drop);
	return 0;
}
