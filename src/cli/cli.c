/* cli.c - subcommand dispatch, usage, error and JSON output (see cli.h). */
#include "cli.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static void print_group_usage(FILE *f, const char *group, const struct cli_cmd *table)
{
	fprintf(f, "usage: creto %s <command> [options]\n\ncommands:\n", group);
	for (const struct cli_cmd *c = table; c->name != NULL; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->help);
	fprintf(f, "\n'creto %s <command> --help' shows a command's options.\n", group);
}

int cli_usage(const char *group, const struct cli_cmd *cmd)
{
	fprintf(stderr, "usage: creto %s %s %s\n  %s\n", group, cmd->name, cmd->usage, cmd->help);
	return CRETO_EUSAGE;
}

int cli_dispatch(const char *group, const struct cli_cmd *table, int argc, char **argv)
{
	if (argc < 2) {
		print_group_usage(stderr, group, table);
		return CRETO_EUSAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		print_group_usage(stdout, group, table);
		return CRETO_OK;
	}
	for (const struct cli_cmd *c = table; c->name != NULL; c++) {
		if (strcmp(c->name, argv[1]) != 0)
			continue;
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--") == 0)
				break;
			if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
				printf("usage: creto %s %s %s\n  %s\n", group, c->name, c->usage, c->help);
				return CRETO_OK;
			}
		}
		return c->fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "creto: %s: unknown command '%s'\n", group, argv[1]);
	print_group_usage(stderr, group, table);
	return CRETO_EUSAGE;
}

int cli_fail(const creto_err *e, int json)
{
	int code = e->code == CRETO_OK ? CRETO_EOP : e->code;
	const char *msg = e->msg[0] ? e->msg : "unknown error";
	fprintf(stderr, "creto: %s\n", msg);
	if (json) {
		json_t *o = json_pack("{s:b, s:s, s:i, s:s}", "ok", 0, "status", creto_status_name(code),
				      "code", code, "error", msg);
		if (o != NULL)
			(void)cli_json_out(o);
	}
	return code;
}

int cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("creto: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return CRETO_EUSAGE;
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
