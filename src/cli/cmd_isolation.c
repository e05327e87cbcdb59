/*
 * cmd_isolation.c - `creto isolation check|watch`: runs the isolation checks
 * (src/isolation) and reports them as text lines, JSON, or, for watch, a
 * log of changes of state.  Exit 0 isolated, 1 not isolated, 2 bad
 * configuration, 3 operational.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "creto/isolation.h"
#include "util/timeutil.h"

static int cmd_check(int argc, char **argv);
static int cmd_watch(int argc, char **argv);

static const struct cli_cmd k_cmds[] = {
	{"check", cmd_check,
	 "[--active] [--config F] [--json] [--resolv-conf F] [--timeout T] [--routes auto|netlink|proc]",
	 "check that this host has no way out; --active also probes (exit 0 isolated, 1 not)"},
	{"watch", cmd_watch,
	 "[--interval 30s] [--count N] [--active] [--config F] [--json] [--resolv-conf F] [--timeout T] "
	 "[--routes auto|netlink|proc]",
	 "re-check every interval and log only changes of state"},
	{NULL, NULL, NULL, NULL},
};
const struct cli_cmd *cmd_isolation_table(void) { return k_cmds; } /* docs: cli_doc.c */

int cmd_isolation(int argc, char **argv)
{
	return cli_dispatch("isolation", k_cmds, argc, argv);
}

struct iso_args {
	int json, active;
	const char *config, *resolv_conf, *timeout;
	int routes;
	int64_t interval_s;
	long count;
};

enum { OPT_CONFIG = 256, OPT_RESOLV, OPT_TIMEOUT, OPT_ROUTES, OPT_INTERVAL, OPT_COUNT, OPT_JSON, OPT_ACTIVE };

static int parse_args(int argc, char **argv, int watch, struct iso_args *a)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, OPT_JSON},
		{"active", no_argument, NULL, OPT_ACTIVE},
		{"config", required_argument, NULL, OPT_CONFIG},
		{"resolv-conf", required_argument, NULL, OPT_RESOLV},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"routes", required_argument, NULL, OPT_ROUTES},
		{"interval", required_argument, NULL, OPT_INTERVAL},
		{"count", required_argument, NULL, OPT_COUNT},
		{NULL, 0, NULL, 0},
	};
	memset(a, 0, sizeof(*a));
	a->interval_s = 30;
	const struct cli_cmd *cmd = &k_cmds[watch ? 1 : 0];
	optind = 1;
	int c;
	uint64_t v;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: a->json = 1; break;
		case OPT_ACTIVE: a->active = 1; break;
		case OPT_CONFIG: a->config = optarg; break;
		case OPT_RESOLV: a->resolv_conf = optarg; break;
		case OPT_TIMEOUT: a->timeout = optarg; break;
		case OPT_ROUTES:
			if (strcmp(optarg, "auto") == 0)
				a->routes = CRETO_ISO_ROUTES_AUTO;
			else if (strcmp(optarg, "netlink") == 0)
				a->routes = CRETO_ISO_ROUTES_NETLINK;
			else if (strcmp(optarg, "proc") == 0)
				a->routes = CRETO_ISO_ROUTES_PROC;
			else
				return cli_usage_error("--routes: want auto, netlink or proc, not '%.64s'", optarg);
			break;
		case OPT_INTERVAL:
			if (!watch)
				return cli_usage_error("--interval is for isolation watch only");
			if (creto_duration_parse(optarg, &a->interval_s) != 0 || a->interval_s < 1 ||
			    a->interval_s > 86400)
				return cli_usage_error("--interval: '%.64s' is not 1s..1d (e.g. 30s, 5m, 1h)", optarg);
			break;
		case OPT_COUNT:
			if (!watch)
				return cli_usage_error("--count is for isolation watch only");
			if (cli_parse_u64(NULL, NULL, "--count", optarg, 1, 1000000, &v) != CRETO_OK)
				return CRETO_EUSAGE;
			a->count = (long)v;
			break;
		default:
			return cli_usage("isolation", cmd);
		}
	}
	if (optind != argc) {
		(void)cli_usage_error("unexpected argument '%.64s' (isolation %s takes options only)",
				      argv[optind], cmd->name);
		return cli_usage("isolation", cmd);
	}
	return CRETO_OK;
}

static int load_config(const struct iso_args *a, creto_iso_config *cfg, creto_err *e)
{
	int rc = creto_iso_config_load(cfg, a->config, e);
	if (rc != CRETO_OK)
		return rc;
	if (a->resolv_conf != NULL) {
		if (strlen(a->resolv_conf) >= sizeof(cfg->resolv_conf))
			return creto_err_set(e, CRETO_EUSAGE, "--resolv-conf: path too long");
		snprintf(cfg->resolv_conf, sizeof(cfg->resolv_conf), "%s", a->resolv_conf);
		cfg->resolv_conf_set = 1;
	}
	if (a->timeout != NULL) {
		/* same syntax as the config file's timeout key */
		char line[96];
		snprintf(line, sizeof(line), "timeout = %.64s\n", a->timeout);
		creto_iso_config tmp = *cfg;
		if (creto_iso_config_parse(&tmp, line, strlen(line), e) != CRETO_OK)
			return creto_err_set(e, CRETO_EUSAGE, "--timeout: '%.32s' is not 100ms..60s (e.g. 2s, 500ms)",
					     a->timeout);
		cfg->timeout_ms = tmp.timeout_ms;
	}
	return CRETO_OK;
}

static json_t *report_json(const creto_iso_report *r)
{
	json_t *checks = json_array();
	for (size_t i = 0; i < r->n; i++) {
		const creto_iso_item *it = &r->items[i];
		json_array_append_new(checks, json_pack("{s:s, s:s, s:b, s:s, s:s}", "kind", it->kind, "result",
							it->result == CRETO_ISO_FAIL ? "fail" : "pass", "summary",
							it->summary, "key", it->key, "evidence", it->evidence));
	}
	return json_pack("{s:b, s:s, s:i, s:b, s:i, s:b, s:s, s:I, s:I, s:o}", "ok", r->violations == 0, "status",
			 r->violations == 0 ? "isolated" : "not isolated", "code", r->violations == 0 ? 0 : 1,
			 "isolated", r->violations == 0, "violations", (int)r->violations, "active", r->active,
			 "route_source", r->route_source ? r->route_source : "none", "elapsed_ms",
			 (json_int_t)r->elapsed_ms, "probes_ms", (json_int_t)r->probes_ms, "checks", checks);
}

/* The one line of a rejection: the count and the first findings. */
static void violations_line(const creto_iso_report *r, char line[900])
{
	int n = snprintf(line, 900, "not isolated: %zu violation%s", r->violations,
			 r->violations == 1 ? "" : "s");
	const char *sep = ": ";
	for (size_t i = 0; i < r->n && n > 0 && (size_t)n < 900; i++) {
		const creto_iso_item *it = &r->items[i];
		if (it->result != CRETO_ISO_FAIL || it->summary)
			continue;
		n += snprintf(line + n, 900 - (size_t)n, "%s%s", sep, it->evidence);
		sep = "; ";
	}
}

static int cmd_check(int argc, char **argv)
{
	struct iso_args a;
	int rc = parse_args(argc, argv, 0, &a);
	if (rc != CRETO_OK)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	creto_iso_config *cfg = malloc(sizeof(*cfg));
	if (cfg == NULL) {
		creto_err_set(&e, CRETO_EOP, "out of memory");
		return cli_fail(&e, a.json);
	}
	creto_iso_report *r = NULL;
	rc = load_config(&a, cfg, &e);
	if (rc == CRETO_OK) {
		creto_iso_opts o = {a.active, a.routes};
		rc = creto_iso_check(cfg, &o, &r, &e);
	}
	free(cfg);
	if (rc != CRETO_OK)
		return cli_fail(&e, a.json);
	char line[900] = "";
	if (r->violations)
		violations_line(r, line);
	if (a.json) {
		/* the verdict object has the error shape too (docs/errors.md) */
		json_t *o = report_json(r);
		if (o != NULL && r->violations)
			json_object_set_new(o, "error", json_string(line));
		rc = cli_json_out(o);
	} else {
		for (size_t i = 0; i < r->n; i++)
			printf("%s  %-9s %s\n", r->items[i].result == CRETO_ISO_FAIL ? "FAIL" : "PASS", r->items[i].kind,
			       r->items[i].evidence);
		printf("%s: %zu checks, %zu violations%s, %llu ms\n", r->violations ? "NOT ISOLATED" : "ISOLATED", r->n,
		       r->violations, r->active ? ", probes run" : ", passive only",
		       (unsigned long long)r->elapsed_ms);
		rc = fflush(stdout) == 0 ? CRETO_OK : CRETO_EOP;
	}
	if (rc == CRETO_OK && r->violations) {
		fprintf(stderr, "creto: %s\n", line);
		rc = CRETO_EREJECT;
	}
	creto_iso_report_free(r);
	return rc;
}

/* ---- watch ------------------------------------------------------------- */

/* The state is the set of failing keys (timings excluded), so only real
 * changes are logged. */
struct state {
	char **keys;
	size_t n;
	int have;      /* a check has completed */
	int op_error;  /* the last check failed operationally */
	char err[CRETO_ERR_MSG_MAX];
};

static void state_free(struct state *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->keys[i]);
	free(s->keys);
	s->keys = NULL;
	s->n = 0;
}

static int has_key(char *const *keys, size_t n, const char *k)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i], k) == 0)
			return 1;
	return 0;
}

static void log_line(int json, const char *event, int isolated, const char *key, const char *text)
{
	char ts[CRETO_TIME_STRLEN];
	creto_time_format(creto_time_now(), ts);
	if (json) {
		json_t *o = json_pack("{s:s, s:s, s:b, s:s, s:s}", "time", ts, "event", event, "isolated", isolated,
				      "key", key ? key : "", "text", text);
		if (o != NULL) {
			char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
			if (s != NULL)
				printf("%s\n", s);
			free(s);
			json_decref(o);
		}
	} else {
		printf("%s %s\n", ts, text);
	}
	fflush(stdout);
}

static void watch_report(int json, struct state *st, const creto_iso_report *r)
{
	int isolated = r->violations == 0;
	int first = !st->have;
	int was_isolated = st->have && !st->op_error && st->n == 0;
	char text[700];
	/* the verdict first, when it is new, then what changed */
	if (first || st->op_error || was_isolated != isolated) {
		snprintf(text, sizeof(text), "%s (%zu checks, %zu violations)", isolated ? "ISOLATED" : "NOT ISOLATED",
			 r->n, r->violations);
		log_line(json, "state", isolated, NULL, text);
	}
	/* new violations */
	for (size_t i = 0; i < r->n; i++) {
		const creto_iso_item *it = &r->items[i];
		if (it->result != CRETO_ISO_FAIL || it->summary || has_key(st->keys, st->n, it->key))
			continue;
		snprintf(text, sizeof(text), "violation: %s", it->evidence);
		log_line(json, "violation", isolated, it->key, text);
	}
	/* resolved ones */
	for (size_t i = 0; i < st->n; i++) {
		int still = 0;
		for (size_t j = 0; j < r->n && !still; j++)
			still = r->items[j].result == CRETO_ISO_FAIL && !r->items[j].summary &&
				strcmp(r->items[j].key, st->keys[i]) == 0;
		if (!still) {
			snprintf(text, sizeof(text), "resolved: %s", st->keys[i]);
			log_line(json, "resolved", isolated, st->keys[i], text);
		}
	}
	state_free(st);
	st->keys = calloc(r->violations ? r->violations : 1, sizeof(char *));
	for (size_t i = 0; i < r->n && st->keys != NULL; i++)
		if (r->items[i].result == CRETO_ISO_FAIL && !r->items[i].summary && st->n < r->violations)
			st->keys[st->n++] = strdup(r->items[i].key);
	/* a key that failed to copy is simply logged again next time */
	for (size_t i = 0; i < st->n; i++)
		if (st->keys[i] == NULL)
			st->keys[i] = strdup("");
	st->have = 1;
	st->op_error = 0;
	st->err[0] = '\0';
}

static int cmd_watch(int argc, char **argv)
{
	struct iso_args a;
	int rc = parse_args(argc, argv, 1, &a);
	if (rc != CRETO_OK)
		return rc;
	creto_err e;
	creto_err_clear(&e);
	creto_iso_config *cfg = malloc(sizeof(*cfg));
	if (cfg == NULL) {
		creto_err_set(&e, CRETO_EOP, "out of memory");
		return cli_fail(&e, a.json);
	}
	rc = load_config(&a, cfg, &e);
	if (rc != CRETO_OK) {
		free(cfg);
		return cli_fail(&e, a.json);
	}
	struct state st = {0};
	int last = CRETO_OK;
	size_t last_violations = 0;
	for (long i = 0; a.count == 0 || i < a.count; i++) {
		if (i > 0) {
			struct timespec ts = {.tv_sec = (time_t)a.interval_s, .tv_nsec = 0};
			while (nanosleep(&ts, &ts) != 0)
				;
		}
		creto_iso_report *r = NULL;
		creto_iso_opts o = {a.active, a.routes};
		creto_err_clear(&e);
		rc = creto_iso_check(cfg, &o, &r, &e);
		if (rc != CRETO_OK) {
			if (!st.op_error || strcmp(st.err, e.msg) != 0) {
				char text[CRETO_ERR_MSG_MAX + 32];
				snprintf(text, sizeof(text), "check failed: %s", e.msg);
				log_line(a.json, "error", 0, NULL, text);
			}
			st.op_error = 1;
			snprintf(st.err, sizeof(st.err), "%s", e.msg);
			last = rc;
			continue;
		}
		watch_report(a.json, &st, r);
		last = r->violations ? CRETO_EREJECT : CRETO_OK;
		last_violations = r->violations;
		creto_iso_report_free(r);
	}
	state_free(&st);
	free(cfg);
	if (last == CRETO_EREJECT)
		fprintf(stderr, "creto: not isolated: %zu violations at the last check\n", last_violations);
	else if (last != CRETO_OK)
		fprintf(stderr, "creto: %s\n", e.msg);
	return last;
}
