/*
 * cli.h - what every `creto` command shares: the subcommand tables that also
 * generate --help, error reporting (the only place that prints errors and
 * picks the exit code), and JSON output.
 */
#ifndef CRETO_CLI_H
#define CRETO_CLI_H

#include <jansson.h>

#include "creto/clock.h"
#include "creto/error.h"

/* One subcommand: `creto <group> <name> ...`, or a top-level group. */
struct cli_cmd {
	const char *name;
	int (*fn)(int argc, char **argv); /* argv[0] is the subcommand name */
	const char *usage;                /* argument synopsis, e.g. "DIR [--hash H]" */
	const char *help;                 /* one-line description */
};

/* Dispatch argv[1] of a group (argv[0] = group name) through table, which
 * ends with a {NULL} entry.  Prints the group's usage on --help/-h or no
 * subcommand (exit 0 / 2).  Returns the exit code. */
int cli_dispatch(const char *group, const struct cli_cmd *table, int argc, char **argv);

/* Print the usage of one subcommand to stderr ("usage: creto G S USAGE") and
 * return CRETO_EUSAGE.  Used on bad options. */
int cli_usage(const char *group, const struct cli_cmd *cmd);

/* Report a failed operation: one line "creto: <msg>" on stderr and, when
 * json, {"ok":false,"status":..,"code":..,"error":..} on stdout.
 * Returns e->code (the exit code). */
int cli_fail(const creto_err *e, int json);

/* printf-style shortcut for usage errors: prints "creto: <msg>", returns 2. */
int cli_usage_error(const char *fmt, ...) CRETO_PRINTF(1, 2);

/* Print obj to stdout as indented JSON with a trailing newline, then
 * decref it.  Returns 0, or 3 when writing fails. */
int cli_json_out(json_t *obj);

/* The clock every command passes to the library.  build/creto: the system
 * clock, always.  build/creto-test (compiled with CRETO_TEST_HOOKS, built
 * only by `make test`): CRETO_TEST_NOW=<epoch seconds> pins it. */
const creto_clock *cli_clock(void);

/* Fault injection for crash tests: the point named by CRETO_TEST_CRASH_AT in
 * build/creto-test; always NULL in build/creto. */
const char *cli_crash_point(void);

/* Group entry points (one file per group, src/cli/cmd_<group>.c). */
int cmd_model(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_hsm(int argc, char **argv);
int cmd_trust(int argc, char **argv);
int cmd_update(int argc, char **argv);
int cmd_diode(int argc, char **argv);
int cmd_nhi(int argc, char **argv);
int cmd_isolation(int argc, char **argv);
int cmd_gateway(int argc, char **argv);

#endif
