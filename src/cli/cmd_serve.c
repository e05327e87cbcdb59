/*
 * cmd_serve.c - `creto serve [--config FILE] [--user U] [--log-format F]`:
 * the enclave's daemon in the foreground (docs/serve.md); `creto serve
 * status` prints what the running daemon last wrote about its HSM
 * endpoints (RUNTIME/hsm.json).  SIGHUP reloads
 * the config, SIGTERM/SIGINT stop it; systemd readiness through
 * $NOTIFY_SOCKET and $WATCHDOG_USEC.
 *
 * Log lines go to stderr, one write(2) each: "TIME component level fields"
 * or, with --log-format json, one JSON object per line.
 */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "creto/serve.h"
#include "serve/notify.h"
#include "util/file.h"

#define DEFAULT_CONFIG "/etc/creto/creto.conf"

static creto_serve *g_serve;
static int g_json;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		creto_serve_reload(g_serve);
	else
		creto_serve_stop(g_serve);
}

static const char *const LEVELS[] = {"info", "warn", "error"};

/* Append s as a JSON string (controls and quotes escaped; the library
 * already replaced control bytes by blanks). */
static size_t jstr(char *o, size_t cap, const char *s)
{
	size_t n = 0;
	if (n < cap)
		o[n++] = '"';
	for (; *s && n + 3 < cap; s++) {
		if (*s == '"' || *s == '\\')
			o[n++] = '\\';
		o[n++] = *s;
	}
	if (n < cap)
		o[n++] = '"';
	return n;
}

static void log_line(void *ctx, const char *comp, int level, const char *msg)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char t[80];
	if (snprintf(t, sizeof t, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000) < 0)
		t[0] = '\0';
	const char *lv = level >= 0 && level <= 2 ? LEVELS[level] : "info";
	char buf[4400];
	size_t n;
	if (g_json) {
		n = (size_t)snprintf(buf, sizeof buf, "{\"ts\":\"%s\",\"component\":\"%s\",\"level\":\"%s\",\"msg\":", t,
				     comp, lv);
		n += jstr(buf + n, sizeof buf - n - 2, msg);
		buf[n++] = '}';
	} else {
		int k = snprintf(buf, sizeof buf - 1, "%s %s %s %s", t, comp, lv, msg);
		n = k < 0 ? 0 : (size_t)k >= sizeof buf - 1 ? sizeof buf - 2 : (size_t)k;
	}
	buf[n++] = '\n';
	(void)!creto_write_all(2, buf, n);
}

/* The SoftHSM2 config file and its token directory, for the sandbox. */
static void softhsm_paths(char *conf, char *tokdir, size_t cap)
{
	conf[0] = tokdir[0] = '\0';
	const char *c = getenv("SOFTHSM2_CONF");
	if (c == NULL || c[0] != '/')
		c = "/etc/softhsm/softhsm2.conf";
	snprintf(conf, cap, "%s", c);
	FILE *f = fopen(c, "re");
	if (f == NULL)
		return;
	char line[4200];
	while (fgets(line, sizeof line, f)) {
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, "directories.tokendir", 20) != 0)
			continue;
		p = strchr(p, '=');
		if (p == NULL)
			continue;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		p[strcspn(p, " \t\r\n")] = '\0';
		if (p[0] == '/')
			snprintf(tokdir, cap, "%s", p);
	}
	fclose(f);
}

static void crash_cb(void *arg, const char *point)
{
	if (arg != NULL && strcmp((const char *)arg, point) == 0)
		_exit(99);
}

static const struct cli_cmd serve_cmd = {
	"", NULL, "[status] [--config FILE] [--user USER] [--log-format text|json]",
	"the enclave's daemon: diode watcher, gateway, isolation monitor, audit (SIGHUP reloads, SIGTERM stops)"};
const struct cli_cmd *cmd_serve_table(void) { return &serve_cmd; } /* docs: cli_doc.c */

static int usage_serve(void)
{
	fprintf(stderr,
		"usage: creto serve [status] [--config FILE] [--user USER] [--log-format text|json]\n"
		"  run the enclave's daemon (diode watcher, gateway, isolation monitor, audit) until SIGTERM;\n"
		"  SIGHUP reloads the config.  FILE defaults to " DEFAULT_CONFIG "\n"
		"  `creto serve status [--config FILE] [--json]`: the HSM endpoints as the running daemon\n"
		"  last wrote them (RUNTIME/hsm.json)\n");
	return CRETO_EUSAGE;
}

/* `creto serve status`: RUNTIME/hsm.json (docs/serve.md "HSM endpoints"). */
static int serve_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *config = DEFAULT_CONFIG;
	optind = 1;
	int ch;
	while ((ch = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 'h':
			usage_serve();
			return CRETO_OK;
		default: return usage_serve();
		}
	}
	if (optind != argc)
		return usage_serve();
	creto_err e;
	creto_err_clear(&e);
	creto_serve_config *cfg = NULL;
	if (creto_serve_config_load(config, &cfg, &e) != CRETO_OK)
		return cli_fail(&e, 0);
	if (cfg->n_hsm_endpoint == 0) {
		creto_serve_config_free(cfg);
		creto_err_set(&e, CRETO_EUSAGE, "%s: no [hsm] endpoint: serve signs through [hsm] module", config);
		return cli_fail(&e, 0);
	}
	char path[CRETO_SERVE_PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/hsm.json", cfg->runtime_dir);
	creto_serve_config_free(cfg);
	uint8_t *buf = NULL;
	size_t len = 0;
	struct stat st;
	if (creto_file_read(path, 1 << 20, &buf, &len, &e) != CRETO_OK || stat(path, &st) != 0) {
		free(buf);
		creto_err_ctx(&e, "serve status (is serve running?)");
		return cli_fail(&e, 0);
	}
	json_error_t je;
	json_t *o = json_loadb((const char *)buf, len, 0, &je);
	json_t *eps = json_object_get(o, "endpoints");
	if (!json_is_array(eps)) {
		json_decref(o);
		free(buf);
		creto_err_set(&e, CRETO_EOP, "%s: not a status file", path);
		return cli_fail(&e, 0);
	}
	if (cli_json()) {
		fwrite(buf, 1, len, stdout);
	} else {
		char when[32];
		struct tm tm;
		gmtime_r(&st.st_mtime, &tm);
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("token %s, active endpoint %s (as of %s)\n", json_string_value(json_object_get(o, "token")),
		       json_string_value(json_object_get(o, "active")), when);
		size_t i;
		json_t *ep;
		json_array_foreach(eps, i, ep) {
			const char *reason = json_string_value(json_object_get(ep, "reason"));
			printf("  %-40s %-4s %-6s downs %lld%s%s%s\n", json_string_value(json_object_get(ep, "name")),
			       json_is_true(json_object_get(ep, "up")) ? "up" : "down",
			       json_is_true(json_object_get(ep, "active")) ? "active" : "",
			       (long long)json_integer_value(json_object_get(ep, "downs")),
			       reason && reason[0] ? " (last: " : "", reason && reason[0] ? reason : "",
			       reason && reason[0] ? ")" : "");
		}
		printf("signs %lld, retries %lld, failovers %lld, failures %lld\n",
		       (long long)json_integer_value(json_object_get(o, "signs")),
		       (long long)json_integer_value(json_object_get(o, "sign_retries")),
		       (long long)json_integer_value(json_object_get(o, "failovers")),
		       (long long)json_integer_value(json_object_get(o, "sign_failures")));
	}
	json_decref(o);
	free(buf);
	return CRETO_OK;
}

int cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"user", required_argument, NULL, 'u'},
		{"log-format", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	if (argc > 1 && strcmp(argv[1], "status") == 0)
		return serve_status(argc - 1, argv + 1);
	const char *config = DEFAULT_CONFIG, *user = NULL, *fmt = NULL;
	optind = 1;
	int ch;
	while ((ch = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': config = optarg; break;
		case 'u': user = optarg; break;
		case 'l': fmt = optarg; break;
		case 'h':
			usage_serve();
			return CRETO_OK;
		default: return usage_serve();
		}
	}
	if (optind != argc)
		return usage_serve();
	if (fmt != NULL && strcmp(fmt, "text") && strcmp(fmt, "json"))
		return cli_usage_error("--log-format: want text or json, not '%.32s'", fmt);
	creto_err e;
	creto_err_clear(&e);
	creto_serve_config *cfg = NULL;
	if (creto_serve_config_load(config, &cfg, &e) != CRETO_OK)
		return cli_fail(&e, 0);
	g_json = fmt != NULL ? strcmp(fmt, "json") == 0 : cfg->log_json;

	uint64_t wd = 0;
	if (creto_notify_watchdog_usec(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"), getpid(), &wd, &e) !=
	    CRETO_OK) {
		creto_serve_config_free(cfg);
		return cli_fail(&e, 0);
	}
	char hconf[4096], htok[4096];
	softhsm_paths(hconf, htok, sizeof hconf);
	const char *ro[1] = {hconf};
	const char *rw[1] = {htok};
	creto_serve_opts so = {
		.clock = cli_clock(),
		.log = log_line,
		.user = user,
		.notify_socket = getenv("NOTIFY_SOCKET"),
		.watchdog_usec = wd,
		.sandbox_ro = ro,
		.n_sandbox_ro = 1,
		.sandbox_rw = rw,
		.n_sandbox_rw = htok[0] ? 1 : 0,
	};
	if (cli_crash_point() != NULL) {
		so.crash = crash_cb;
		so.crash_arg = (void *)cli_crash_point();
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	creto_serve *s = NULL;
	int rc = creto_serve_new(cfg, &so, &s, &e);
	if (rc == CRETO_OK) {
		g_serve = s;
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		rc = creto_serve_run(s, &e);
	}
	if (rc != CRETO_OK)
		log_line(NULL, "serve", 2, e.msg);
	creto_serve_free(s);
	g_serve = NULL;
	if (rc != CRETO_OK)
		return cli_fail(&e, 0);
	return CRETO_OK;
}
