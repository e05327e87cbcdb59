/*
 * cli.h - what every `creto` command shares: the subcommand tables that also
 * generate --help, error reporting (the only place that prints errors and
 * picks the exit code), and JSON output.
 */
#ifndef CRETO_CLI_H
#define CRETO_CLI_H

#include <getopt.h>
#include <stdint.h>

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
 * ends with a {NULL} entry.  `creto G --help|-h|help` prints the group's
 * commands (exit 0); no subcommand is exit 2.  `creto G CMD --help` (or -h)
 * prints CMD's usage and exits 0 only when it is CMD's one and only
 * argument: anywhere else -h/--help is left to CMD's parser, so it is never
 * taken from an option's value or a file operand, and a help request mixed
 * with other arguments is a usage error (exit 2; cli_getopt says so).  An
 * operand from a script can thus never turn a check into exit 0.
 * Returns the exit code. */
int cli_dispatch(const char *group, const struct cli_cmd *table, int argc, char **argv);

/* ---- the flags every command accepts ----------------------------------
 * --json      machine output on stdout; errors (usage errors included) as
 *             one JSON object on stdout, shape in docs/errors.md
 * --quiet     no status lines and no progress on stderr (errors still show)
 * --progress  progress on stderr even when it is not a terminal
 * main() scans argv for them (up to a "--") before any command runs, so a
 * usage error found before the parser reached --json is still JSON. */
void cli_scan_flags(int argc, char **argv);
int cli_json(void);
int cli_quiet(void);
int cli_progress_forced(void);

/* The command being run, for the "creto: GROUP CMD: ..." prefix of usage
 * errors.  cli_dispatch sets it; main() sets it for top-level commands
 * (sign, verify) with cmd NULL. */
void cli_set_context(const char *group, const char *cmd);

/* getopt_long for creto commands; a drop-in replacement (same arguments,
 * same return values, opterr forced off):
 *  - --json, --quiet and --progress are accepted even when longopts lacks
 *    them (then they only set the global flags and are not returned; when
 *    longopts has them they are returned as well, so local flags keep
 *    working);
 *  - -h/--help reached in an option position is not alone (cli_dispatch
 *    handles the alone case): reported as a usage error, returns '?';
 *  - an unknown option or a missing option value prints the one usage line
 *    "creto: GROUP CMD: ..." and returns '?' (also for a missing value, even
 *    without a leading ':' in shortopts).
 * The caller's `default:` branch then returns cli_usage(group, cmd). */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
	       int *longindex);

/* Print the usage of one subcommand to stderr ("usage: creto G S USAGE") and
 * return CRETO_EUSAGE.  Used on bad options.  When no usage error line was
 * printed yet it prints one first ("creto: G S: missing or extra
 * arguments"); with --json it also prints the JSON error. */
int cli_usage(const char *group, const struct cli_cmd *cmd);

/* Report a failed operation: one line "creto: <msg>" on stderr and, when
 * json (or --json was given), {"ok":false,"status":..,"code":..,"error":..}
 * on stdout (at most one JSON error per run).  Returns e->code (the exit
 * code). */
int cli_fail(const creto_err *e, int json);

/* A usage error: prints "creto: GROUP CMD: <msg>" on stderr (and the JSON
 * error with --json), returns 2.  The "GROUP CMD: " prefix is added from the
 * context unless msg already starts with it; a message starting with just
 * "GROUP: " gets the command inserted.  Name the valid values when there are
 * few ("--routes: want auto, netlink or proc, not 'x'"). */
int cli_usage_error(const char *fmt, ...) CRETO_PRINTF(1, 2);

/* The one checked parser for numbers from argv: decimal digits only (no
 * sign, spaces, hex or suffix), no overflow, min <= value <= max.  On success
 * *out = value and returns 0; otherwise prints the usage error
 * "creto: GROUP CMD: OPT: 'S' is not a whole number in MIN..MAX" and
 * returns 2.  group/cmd may be NULL: then the context is used. */
int cli_parse_u64(const char *group, const char *cmd, const char *opt, const char *s, uint64_t min,
		  uint64_t max, uint64_t *out);

/* A status line ("signed X with key K"): to stderr, one line, unless
 * --quiet.  stdout carries only the output that was asked for. */
void cli_status(const char *fmt, ...) CRETO_PRINTF(1, 2);

/* Progress of long work (model hash|manifest|verify, update
 * create|verify|apply): bytes done, rate and time left on stderr.  Shown
 * when stderr is a terminal, or with --progress; never with --quiet, and
 * with --json only when --progress forces it (it goes to stderr, never into
 * the JSON on stdout).  The bytes done are what this process has read
 * (/proc/self/io rchar, sampled by a thread four times a second), so no
 * library needs a callback; total is the expected byte count (0 =
 * unknown).  start returns NULL when progress is not wanted; stop(NULL)
 * does nothing.  stop prints the last line (on a terminal, over the
 * running one). */
typedef struct cli_progress cli_progress;
/* Whether progress would be shown (to skip computing a total when not). */
int cli_progress_wanted(void);
cli_progress *cli_progress_start(const char *label, uint64_t total);
void cli_progress_stop(cli_progress *p);
/* The sum of the sizes of the regular files under dir (not following
 * symlinks), for a progress total; 0 when it cannot be read. */
uint64_t cli_dir_bytes(const char *dir);
/* One progress line into buf (exposed for tests): "LABEL: 1.5 GiB of
 * 3.0 GiB (50%), 200 MiB/s, 8s left". */
void cli_progress_format(char *buf, size_t n, const char *label, uint64_t done, uint64_t total,
			 double seconds);

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

/* The audit log of an update state, STATE/audit, as the update and diode
 * commands use it (cli_statelog.c): opened before anything is decided
 * (key: the given one, else the one recorded at `state init`); closed after
 * the command, adding the log's reason to a refused record's error and
 * signing a checkpoint (a failure there is only a warning: the entries are
 * durable). */
struct creto_state_log;
int cli_state_log_open(const char *state, const char *key, int64_t wait_s,
		       struct creto_state_log **log, creto_err *e);
void cli_state_log_close(struct creto_state_log *log, creto_err *e);

/* Group entry points (one file per group, src/cli/cmd_<group>.c). */
int cmd_model(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_sign(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_hsm(int argc, char **argv);
int cmd_trust(int argc, char **argv);
int cmd_update(int argc, char **argv);
int cmd_diode(int argc, char **argv);
int cmd_state(int argc, char **argv);
int cmd_nhi(int argc, char **argv);
int cmd_isolation(int argc, char **argv);
int cmd_lint(int argc, char **argv);
int cmd_audit(int argc, char **argv);

/* ---- man pages and completion (cli_doc.c) ------------------------------
 * The subcommand table of each group, for `creto __man` and
 * `creto __completion bash`: one accessor in each cmd_<group>.c.  A group
 * that is one command (sign, verify, lint) returns a pointer to its one
 * entry, whose name is "" (no {NULL} terminator follows it). */
const struct cli_cmd *cmd_model_table(void);
const struct cli_cmd *cmd_key_table(void);
const struct cli_cmd *cmd_sign_table(void);
const struct cli_cmd *cmd_verify_table(void);
const struct cli_cmd *cmd_hsm_table(void);
const struct cli_cmd *cmd_trust_table(void);
const struct cli_cmd *cmd_update_table(void);
const struct cli_cmd *cmd_state_table(void);
const struct cli_cmd *cmd_diode_table(void);
const struct cli_cmd *cmd_diode_quarantine_table(void);
const struct cli_cmd *cmd_nhi_table(void);
const struct cli_cmd *cmd_isolation_table(void);
const struct cli_cmd *cmd_lint_table(void);
const struct cli_cmd *cmd_audit_table(void);
const struct cli_cmd *cmd_gateway_table(void);
const struct cli_cmd *cmd_serve_table(void);
const struct cli_cmd *cmd_config_table(void);

/* A group's table for the docs: name is a group of main.c's table, or
 * "GROUP CMD" for a command with its own subcommands (diode quarantine);
 * doc is the file under docs/ (installed in /usr/share/doc/creto/) that
 * has the details, or NULL.  Lists end with {NULL}. */
struct cli_doc_group {
	const char *name;
	const struct cli_cmd *(*table)(void);
	const char *doc;
};

/* `creto __man` (creto(1)), `creto __man GROUP` (creto-GROUP(1)),
 * `creto __man --list` (the page names) and `creto __completion bash`, all
 * on stdout; argv[0] is "__man" or "__completion".  A group of groups
 * without an entry in docs is documented from its line in groups.
 * Returns the exit code. */
int cli_doc_main(const struct cli_cmd *groups, const struct cli_doc_group *docs, int argc, char **argv);
int cmd_gateway(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_config(int argc, char **argv);

#endif
