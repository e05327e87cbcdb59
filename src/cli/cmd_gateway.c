/*
 * cmd_gateway.c - `creto gateway --config FILE [--check]`: run the inference
 * gateway in the foreground until SIGTERM/SIGINT; SIGHUP re-reads the
 * config's limits and the policy file (docs/gateway.md).
 *
 * Log lines and, until the audit log is wired in (creto_audit_submit with
 * component "gateway"), the audit records go to stderr, one line each:
 * "<RFC 3339 time> <fields>" and "<time> audit <canonical-ish JSON>".
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "creto/gateway.h"
#include "util/file.h"
#include "util/timeutil.h"

static creto_gateway *g_gw;

static void on_signal(int sig)
{
	if (g_gw == NULL)
		return;
	if (sig == SIGHUP)
		creto_gateway_reload(g_gw);
	else
		creto_gateway_stop(g_gw);
}

static void stamp(char out[CRETO_TIME_STRLEN])
{
	creto_time_format((int64_t)time(NULL), out);
}

/* One line = one write(2) of a whole buffer: lines from the worker threads
 * never interleave and no lock is held across the system call. */
static int put_line(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char stackbuf[2048];
	char *buf = la + lb + lc + 1 <= sizeof(stackbuf) ? stackbuf : malloc(la + lb + lc + 1);
	if (buf == NULL)
		return CRETO_EOP;
	memcpy(buf, a, la);
	memcpy(buf + la, b, lb);
	memcpy(buf + la + lb, c, lc);
	buf[la + lb + lc] = '\n';
	int rc = creto_write_all(2, buf, la + lb + lc + 1) == 0 ? 0 : CRETO_EOP;
	if (buf != stackbuf)
		free(buf);
	return rc;
}

static void log_line(void *ctx, const char *line)
{
	(void)ctx;
	char t[CRETO_TIME_STRLEN + 1];
	stamp(t);
	strcat(t, " ");
	(void)put_line(t, line, "");
}

/* Append s as a JSON string: quotes, backslashes and control bytes
 * escaped; valid UTF-8 passes, any byte of an invalid sequence becomes
 * \u00XX (so the line is always valid JSON). */
static void json_str(char **o, char *end, const char *s)
{
	char *p = *o;
	if (p < end)
		*p++ = '"';
	const unsigned char *u = (const unsigned char *)s;
	while (*u && p + 12 < end) {
		unsigned char ch = *u;
		size_t n = ch < 0x80 ? 1 : (ch & 0xe0) == 0xc0 ? 2 : (ch & 0xf0) == 0xe0 ? 3 : (ch & 0xf8) == 0xf0 ? 4 : 0;
		int ok = n == 1 || (n > 1 && (ch != 0xc0 && ch != 0xc1 && ch < 0xf5));
		for (size_t i = 1; ok && i < n; i++)
			ok = (u[i] & 0xc0) == 0x80;
		if (ok && n == 1) {
			if (ch == '"' || ch == '\\') {
				*p++ = '\\';
				*p++ = (char)ch;
			} else if (ch < 0x20 || ch == 0x7f) {
				p += snprintf(p, (size_t)(end - p), "\\u%04x", ch);
			} else {
				*p++ = (char)ch;
			}
			u++;
		} else if (ok) {
			memcpy(p, u, n);
			p += n;
			u += n;
		} else {
			p += snprintf(p, (size_t)(end - p), "\\u%04x", ch);
			u++;
		}
	}
	if (p < end)
		*p++ = '"';
	*o = p;
}

/* The stand-in audit sink: the event as one JSON line on stderr, written
 * without allocation (until the audit log is wired in). */
static int audit_line(void *ctx, const creto_event *ev)
{
	(void)ctx;
	char buf[8192];
	char *p = buf, *end = buf + sizeof(buf) - 2;
	const char *keys[] = {"component", "event", "outcome", "subject", "reason", "actor"};
	const char *vals[] = {ev->component, ev->event, ev->outcome, ev->subject, ev->reason, ev->actor};
	*p++ = '{';
	int first = 1;
	for (size_t i = 0; i < 6; i++) {
		if (vals[i] == NULL)
			continue;
		p += snprintf(p, (size_t)(end - p), "%s\"%s\":", first ? "" : ",", keys[i]);
		json_str(&p, end, vals[i]);
		first = 0;
	}
	for (size_t i = 0; i < ev->nfields && p + 64 < end; i++) {
		p += snprintf(p, (size_t)(end - p), ",\"%s\":", ev->fields[i].key);
		if (ev->fields[i].str)
			json_str(&p, end, ev->fields[i].str);
		else
			p += snprintf(p, (size_t)(end - p), "%lld", (long long)ev->fields[i].num);
	}
	if (p >= end)
		return CRETO_EOP;
	*p++ = '}';
	*p = '\0';
	char t[CRETO_TIME_STRLEN];
	stamp(t);
	return put_line(t, " audit ", buf);
}

static int usage_gw(void)
{
	fprintf(stderr, "usage: creto gateway --config FILE [--check]\n"
			"  run the inference gateway in the foreground until SIGTERM\n"
			"  --check: load and validate the config (and open what it names), then exit\n");
	return CRETO_EUSAGE;
}

int cmd_gateway(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check", no_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *config = NULL;
	int check = 0;
	optind = 1;
	int ch;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 'k': check = 1; break;
		case 'h':
			usage_gw();
			return CRETO_OK;
		default: return usage_gw();
		}
	}
	if (optind != argc || config == NULL) {
		cli_usage_error("gateway: give --config FILE");
		return usage_gw();
	}
	creto_err e;
	creto_err_clear(&e);
	creto_gateway_config *cfg = NULL;
	if (creto_gateway_config_load(config, &cfg, &e) != CRETO_OK)
		return cli_fail(&e, 0);
	creto_gateway_opts o = {
		.clock = cli_clock(),
		.audit = {audit_line, NULL},
		.log = log_line,
		.check_only = check,
		.config_path = config,
	};
	int rc = creto_gateway_new(cfg, &o, &g_gw, &e);
	creto_gateway_config_free(cfg);
	if (rc != CRETO_OK)
		return cli_fail(&e, 0);
	if (check) {
		printf("config %s: ok\n", config);
		creto_gateway_free(g_gw);
		return CRETO_OK;
	}
	/* one descriptor per client and per upstream connection: raise the
	 * soft limit to the hard one (10,000 idle clients need it) */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = creto_gateway_run(g_gw, &e);
	creto_gateway *gw = g_gw;
	g_gw = NULL;
	creto_gateway_free(gw);
	if (rc != CRETO_OK)
		return cli_fail(&e, 0);
	return CRETO_OK;
}
