/* cli.c - subcommand dispatch, the flags every command accepts, usage
 * errors, status lines, progress, error and JSON output (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/escape.h"

/* ---- global flags and context ------------------------------------------ */

static struct {
	int json, quiet, progress;
	const char *group, *cmd;
	int reason_printed; /* a "creto: ..." usage line went to stderr */
	int json_error_done; /* the one JSON error object went to stdout */
} g_cli;

static int is_help(const char *a)
{
	return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

void cli_scan_flags(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--json") == 0)
			g_cli.json = 1;
		else if (strcmp(argv[i], "--quiet") == 0)
			g_cli.quiet = 1;
		else if (strcmp(argv[i], "--progress") == 0)
			g_cli.progress = 1;
	}
}

int cli_json(void)
{
	return g_cli.json;
}

int cli_quiet(void)
{
	return g_cli.quiet;
}

int cli_progress_forced(void)
{
	return g_cli.progress;
}

void cli_set_context(const char *group, const char *cmd)
{
	g_cli.group = group;
	g_cli.cmd = cmd;
}

/* "GROUP CMD" (or "GROUP", or "creto") into buf. */
static void context_name(char *buf, size_t n, const char *group, const char *cmd)
{
	if (group == NULL)
		snprintf(buf, n, "creto");
	else if (cmd == NULL || *cmd == '\0')
		snprintf(buf, n, "%s", group);
	else
		snprintf(buf, n, "%s %s", group, cmd);
}

/* The one JSON error object of a run (docs/errors.md). */
static void json_error(int code, const char *msg)
{
	if (g_cli.json_error_done)
		return;
	g_cli.json_error_done = 1;
	json_t *o = json_pack("{s:b, s:s, s:i, s:s}", "ok", 0, "status", creto_status_name(code), "code",
			      code, "error", msg);
	if (o != NULL)
		(void)cli_json_out(o);
}

/* Print "creto: <line>" as the run's usage error (and its JSON).  The line
 * is made one safe line first (argv holds what the caller typed, or what a
 * script passed on from outside). */
static int usage_line(const char *raw)
{
	char line[CRETO_ERR_MSG_MAX + 160];
	(void)creto_escape_line(line, sizeof(line), raw);
	fprintf(stderr, "creto: %s\n", line);
	g_cli.reason_printed = 1;
	if (g_cli.json)
		json_error(CRETO_EUSAGE, line);
	return CRETO_EUSAGE;
}

/* msg with the "GROUP CMD: " prefix of the context, unless it has it. */
static void prefixed(char *out, size_t n, const char *group, const char *cmd, const char *msg)
{
	char ctx[128];
	context_name(ctx, sizeof(ctx), group, cmd);
	size_t cl = strlen(ctx);
	if (group == NULL || (strncmp(msg, ctx, cl) == 0 && msg[cl] == ':')) {
		snprintf(out, n, "%s", msg);
		return;
	}
	size_t gl = strlen(group);
	if (strncmp(msg, group, gl) == 0 && msg[gl] == ':' && msg[gl + 1] == ' ') {
		/* "GROUP: x" -> "GROUP CMD: x" */
		snprintf(out, n, "%s: %s", ctx, msg + gl + 2);
		return;
	}
	snprintf(out, n, "%s: %s", ctx, msg);
}

int cli_usage_error(const char *fmt, ...)
{
	char msg[CRETO_ERR_MSG_MAX], line[CRETO_ERR_MSG_MAX + 160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	prefixed(line, sizeof(line), g_cli.group, g_cli.cmd, msg);
	return usage_line(line);
}

/* An argv token shown in a message: escaped (docs/errors.md), and cut. */
static void shown(char *out, size_t n, const char *tok)
{
	char tmp[96];
	size_t len = strnlen(tok, 64);
	(void)creto_escape(tmp, sizeof(tmp), tok, len);
	snprintf(out, n, "%s%s", tmp, tok[len] != '\0' ? "..." : "");
}

/* ---- dispatch and help -------------------------------------------------- */

static void print_group_usage(FILE *f, const char *group, const struct cli_cmd *table)
{
	fprintf(f, "usage: creto %s <command> [options]\n\ncommands:\n", group);
	for (const struct cli_cmd *c = table; c->name != NULL; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->help);
	fprintf(f, "\n'creto %s <command> --help' shows a command's options.\n"
		   "every command also takes --json, --quiet and --progress.\n",
		group);
}

int cli_usage(const char *group, const struct cli_cmd *cmd)
{
	const char *name = cmd->name != NULL && cmd->name[0] != '\0' ? cmd->name : NULL;
	if (!g_cli.reason_printed) {
		char ctx[128], line[256];
		context_name(ctx, sizeof(ctx), group, name);
		snprintf(line, sizeof(line), "%s: missing or extra arguments", ctx);
		(void)usage_line(line);
	}
	if (name != NULL)
		fprintf(stderr, "usage: creto %s %s %s\n  %s\n", group, name, cmd->usage, cmd->help);
	else
		fprintf(stderr, "usage: creto %s %s\n  %s\n", group, cmd->usage, cmd->help);
	return CRETO_EUSAGE;
}

int cli_dispatch(const char *group, const struct cli_cmd *table, int argc, char **argv)
{
	cli_set_context(group, NULL);
	char names[256] = "";
	for (const struct cli_cmd *c = table; c->name != NULL; c++) {
		size_t l = strlen(names);
		snprintf(names + l, sizeof(names) - l, "%s%s", l ? ", " : "", c->name);
	}
	if (argc < 2) {
		(void)cli_usage_error("%s: a command is required (one of: %s)", group, names);
		print_group_usage(stderr, group, table);
		return CRETO_EUSAGE;
	}
	if (argc == 2 && (is_help(argv[1]) || strcmp(argv[1], "help") == 0)) {
		print_group_usage(stdout, group, table);
		return CRETO_OK;
	}
	for (const struct cli_cmd *c = table; c->name != NULL; c++) {
		if (strcmp(c->name, argv[1]) != 0)
			continue;
		cli_set_context(group, c->name);
		/* Help only as the command's one and only argument: never an
		 * option's value or an operand (a file named -h is a file). */
		if (argc == 3 && is_help(argv[2])) {
			printf("usage: creto %s %s %s\n  %s\n", group, c->name, c->usage, c->help);
			return fflush(stdout) == 0 ? CRETO_OK : CRETO_EOP;
		}
		return c->fn(argc - 1, argv + 1);
	}
	char tok[128];
	shown(tok, sizeof(tok), argv[1]);
	if (is_help(argv[1]))
		(void)cli_usage_error("%s: %s takes no other arguments ('creto %s %s')", group, tok, group,
				      tok);
	else if (argv[1][0] == '-')
		(void)cli_usage_error("%s: a command comes before option '%s' (one of: %s)", group, tok, names);
	else
		(void)cli_usage_error("%s: unknown command '%s' (one of: %s)", group, tok, names);
	print_group_usage(stderr, group, table);
	return CRETO_EUSAGE;
}

/* ---- cli_getopt ----------------------------------------------------------- */

enum { CLI_OPT_JSON = 0x7f000001, CLI_OPT_QUIET, CLI_OPT_PROGRESS, CLI_OPT_HELP };
#define CLI_MAX_OPTS 96

static int has_long(const struct option *lo, const char *name, int *val, int *is_flag)
{
	for (; lo != NULL && lo->name != NULL; lo++) {
		if (strcmp(lo->name, name) == 0) {
			*val = lo->val;
			*is_flag = lo->flag != NULL;
			return 1;
		}
	}
	return 0;
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
	       int *longindex)
{
	static const struct option common[] = {
		{"json", no_argument, NULL, CLI_OPT_JSON},
		{"quiet", no_argument, NULL, CLI_OPT_QUIET},
		{"progress", no_argument, NULL, CLI_OPT_PROGRESS},
		{"help", no_argument, NULL, CLI_OPT_HELP},
	};
	struct option merged[CLI_MAX_OPTS + 5];
	size_t n = 0;
	for (const struct option *lo = longopts; lo != NULL && lo->name != NULL && n < CLI_MAX_OPTS; lo++)
		merged[n++] = *lo;
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++) {
		int v, f;
		if (!has_long(longopts, common[i].name, &v, &f))
			merged[n++] = common[i];
	}
	memset(&merged[n], 0, sizeof(merged[n]));

	/* ':' first so a missing value is told from an unknown option. */
	char sopts[128];
	const char *so = shortopts != NULL ? shortopts : "";
	while (*so == ':' || *so == '+' || *so == '-')
		so++;
	snprintf(sopts, sizeof(sopts), ":%s", so);

	opterr = 0;
	for (;;) {
		int li = -1;
		int c = getopt_long(argc, argv, sopts, merged, &li);
		if (longindex != NULL)
			*longindex = li;
		const char *name = li >= 0 ? merged[li].name : NULL;
		if (c == -1)
			return c;
		if (name != NULL) {
			if (strcmp(name, "json") == 0)
				g_cli.json = 1;
			else if (strcmp(name, "quiet") == 0)
				g_cli.quiet = 1;
			else if (strcmp(name, "progress") == 0)
				g_cli.progress = 1;
		}
		if (c == CLI_OPT_JSON || c == CLI_OPT_QUIET || c == CLI_OPT_PROGRESS)
			continue; /* the caller does not list it: the global flag only */
		if (c == CLI_OPT_HELP || (c == '?' && optopt == 'h') ||
		    (name != NULL && strcmp(name, "help") == 0)) {
			/* -h/--help in an option position, with other arguments */
			(void)cli_usage_error("-h/--help takes no other arguments (ask 'creto %s%s%s --help'; "
					      "a file named -h goes after --)",
					      g_cli.group ? g_cli.group : "", g_cli.cmd ? " " : "",
					      g_cli.cmd ? g_cli.cmd : "");
			return '?';
		}
		if (c == '?' || c == ':') {
			char tok[128];
			const char *arg = optind >= 1 && optind - 1 < argc ? argv[optind - 1] : "";
			if (c == '?' && optopt != 0 && optopt < 0x7f && strncmp(arg, "--", 2) != 0) {
				char o[3] = {'-', (char)optopt, '\0'};
				shown(tok, sizeof(tok), o);
			} else {
				shown(tok, sizeof(tok), arg);
			}
			if (c == ':') {
				/* for a long option, the element is "--name" (or
				 * "--name=" cannot be: that gives an empty value) */
				char *eq = strchr(tok, '=');
				if (eq != NULL)
					*eq = '\0';
				if (tok[0] != '-' && optopt > 0 && optopt < 0x7f) {
					char o[3] = {'-', (char)optopt, '\0'};
					shown(tok, sizeof(tok), o);
				}
				(void)cli_usage_error("option '%s' needs a value", tok);
			} else {
				(void)cli_usage_error("unknown or ambiguous option '%s'", tok);
			}
			return '?';
		}
		return c;
	}
}

/* ---- numbers, status --------------------------------------------------- */

int cli_parse_u64(const char *group, const char *cmd, const char *opt, const char *s, uint64_t min,
		  uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	int okv = s != NULL && *s != '\0' && strlen(s) <= 20;
	for (const char *p = s; okv && *p; p++) {
		if (*p < '0' || *p > '9') {
			okv = 0;
			break;
		}
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10) {
			okv = 0;
			break;
		}
		v = v * 10 + d;
	}
	if (okv && v >= min && v <= max) {
		*out = v;
		return CRETO_OK;
	}
	char tok[128], msg[CRETO_ERR_MSG_MAX], line[CRETO_ERR_MSG_MAX + 160];
	shown(tok, sizeof(tok), s != NULL ? s : "");
	snprintf(msg, sizeof(msg), "%s: '%s' is not a whole number in %llu..%llu", opt, tok,
		 (unsigned long long)min, (unsigned long long)max);
	prefixed(line, sizeof(line), group != NULL ? group : g_cli.group, group != NULL ? cmd : g_cli.cmd,
		 msg);
	return usage_line(line);
}

void cli_status(const char *fmt, ...)
{
	if (g_cli.quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- progress ----------------------------------------------------------- */

struct cli_progress {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	int tty;
	char label[64];
	uint64_t total, base;
	struct timespec t0;
	size_t last_len;
};

/* Bytes this process has read so far (rchar of /proc/self/io). */
static uint64_t read_bytes(void)
{
	int fd = open("/proc/self/io", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[512];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	const char *p = strstr(buf, "rchar:");
	return p != NULL ? strtoull(p + 6, NULL, 10) : 0;
}

static void human(char *out, size_t n, double b)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	size_t u = 0;
	while (b >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0]))
		b /= 1024.0, u++;
	if (u == 0)
		snprintf(out, n, "%.0f %s", b, units[u]);
	else
		snprintf(out, n, "%.1f %s", b, units[u]);
}

static void duration(char *out, size_t n, double s)
{
	unsigned long long t = s < 0 ? 0 : (unsigned long long)(s + 0.5);
	if (t >= 3600)
		snprintf(out, n, "%lluh%02llum", t / 3600, (t / 60) % 60);
	else if (t >= 60)
		snprintf(out, n, "%llum%02llus", t / 60, t % 60);
	else
		snprintf(out, n, "%llus", t);
}

void cli_progress_format(char *buf, size_t n, const char *label, uint64_t done, uint64_t total,
			 double seconds)
{
	char d[32], t[32], r[32], left[32];
	if (total != 0 && done > total)
		done = total;
	human(d, sizeof(d), (double)done);
	double rate = seconds > 0 ? (double)done / seconds : 0;
	human(r, sizeof(r), rate);
	if (total == 0) {
		snprintf(buf, n, "%s: %s, %s/s", label, d, r);
		return;
	}
	human(t, sizeof(t), (double)total);
	unsigned pct = (unsigned)((double)done * 100.0 / (double)total);
	if (rate > 0)
		duration(left, sizeof(left), (double)(total - done) / rate);
	else
		snprintf(left, sizeof(left), "?");
	snprintf(buf, n, "%s: %s of %s (%u%%), %s/s, %s left", label, d, t, pct, r, left);
}

static double elapsed(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void progress_print(cli_progress *p, int last)
{
	char line[200];
	uint64_t now = read_bytes();
	uint64_t done = now > p->base ? now - p->base : 0;
	if (last && p->total != 0)
		done = done < p->total ? done : p->total;
	cli_progress_format(line, sizeof(line), p->label, done, p->total, elapsed(&p->t0));
	if (p->tty) {
		size_t len = strlen(line);
		/* pad over a longer previous line; no escape sequences */
		fprintf(stderr, "\r%s%*s", line, p->last_len > len ? (int)(p->last_len - len) : 0, "");
		if (last)
			fputc('\n', stderr);
		p->last_len = len;
	} else {
		fprintf(stderr, "%s\n", line);
	}
	fflush(stderr);
}

static void *progress_thread(void *arg)
{
	cli_progress *p = arg;
	/* a terminal line four times a second; a log line every 5 s */
	long step_ms = p->tty ? 250 : 5000;
	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += (step_ms % 1000) * 1000000L;
		dl.tv_sec += step_ms / 1000 + dl.tv_nsec / 1000000000L;
		dl.tv_nsec %= 1000000000L;
		int rc = 0;
		while (!p->stop && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&p->cv, &p->mu, &dl);
		if (!p->stop)
			progress_print(p, 0);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int cli_progress_wanted(void)
{
	return !g_cli.quiet && (g_cli.progress || (isatty(STDERR_FILENO) && !g_cli.json));
}

cli_progress *cli_progress_start(const char *label, uint64_t total)
{
	if (!cli_progress_wanted())
		return NULL;
	int tty = isatty(STDERR_FILENO);
	cli_progress *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	snprintf(p->label, sizeof(p->label), "%s", label);
	p->total = total;
	p->tty = tty;
	p->base = read_bytes();
	clock_gettime(CLOCK_MONOTONIC, &p->t0);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (pthread_create(&p->thread, NULL, progress_thread, p) != 0) {
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
		free(p);
		return NULL;
	}
	return p;
}

void cli_progress_stop(cli_progress *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	progress_print(p, 1);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static uint64_t g_dir_bytes; /* nftw has no context argument */

static int add_size(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (type == FTW_F && S_ISREG(st->st_mode))
		g_dir_bytes += (uint64_t)st->st_size;
	return 0;
}

uint64_t cli_dir_bytes(const char *dir)
{
	g_dir_bytes = 0;
	if (nftw(dir, add_size, 32, FTW_PHYS) != 0)
		return 0;
	return g_dir_bytes;
}

/* ---- errors and JSON ------------------------------------------------------ */

int cli_fail(const creto_err *e, int json)
{
	int code = e->code == CRETO_OK ? CRETO_EOP : e->code;
	const char *msg = e->msg[0] ? e->msg : "unknown error";
	fprintf(stderr, "creto: %s\n", msg);
	if (json || g_cli.json)
		json_error(code, msg);
	return code;
}

int cli_json_out(json_t *obj)
{
	int rc = json_dumpf(obj, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0 ? 0 : CRETO_EOP;
	json_decref(obj);
	if (rc == 0 && (fputc('\n', stdout) == EOF || fflush(stdout) != 0))
		rc = CRETO_EOP;
	return rc;
}

#ifdef CRETO_TEST_HOOKS
/* Test program only: a clock pinned by CRETO_TEST_NOW. */
static int64_t pinned_now(void *ctx)
{
	(void)ctx;
	const char *pin = getenv("CRETO_TEST_NOW");
	if (pin != NULL && *pin != '\0') {
		char *end;
		long long v = strtoll(pin, &end, 10);
		if (*end == '\0')
			return (int64_t)v;
	}
	return creto_clock_now(creto_clock_system());
}

static const creto_clock test_clock = {pinned_now, NULL};

const creto_clock *cli_clock(void)
{
	return &test_clock;
}

const char *cli_crash_point(void)
{
	return getenv("CRETO_TEST_CRASH_AT");
}
#else
const creto_clock *cli_clock(void)
{
	return creto_clock_system();
}

const char *cli_crash_point(void)
{
	return NULL;
}
#endif
