/*
 * cmd_diode.c - `creto diode watch DIR --trust ROOT --state SDIR [--once]`:
 * the enclave side of the data diode (docs/crupdate.md "Diode watcher").
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "creto/update.h"
#include "util/escape.h"

static int diode_watch(int argc, char **argv);

static const struct cli_cmd DIODE_CMDS[] = {
	{"watch", diode_watch,
	 "DIR --trust ROOT.json --state SDIR [--once] [--settle-ms MS] [--timeout SECONDS]",
	 "apply every complete *.crupdate arriving in DIR; quarantine rejected ones with a reason"},
	{NULL, NULL, NULL, NULL},
};

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

static void on_signal(int sig)
{
	(void)sig;
	creto_diode_stop();
}

/* One line per decision.  The file name comes from the untrusted side of
 * the diode, and the message may quote it: both are escaped (util/escape.h)
 * so that no byte of a name can end the line, forge another decision line
 * or reach the terminal as a control sequence. */
static void report(void *arg, const creto_diode_event *ev)
{
	(void)arg;
	char *file = creto_escape_dup(ev->file, strlen(ev->file));
	char *msg = creto_escape_dup(ev->msg, strlen(ev->msg));
	printf("%s %s: %s\n", ev->decision, file ? file : "(out of memory)", msg ? msg : "(out of memory)");
	free(file);
	free(msg);
	fflush(stdout);
}

static int diode_watch(int argc, char **argv)
{
	static const struct option opts[] = {
		{"trust", required_argument, NULL, 't'},  {"state", required_argument, NULL, 's'},
		{"once", no_argument, NULL, '1'},         {"settle-ms", required_argument, NULL, 'S'},
		{"timeout", required_argument, NULL, 'T'}, {NULL, 0, NULL, 0},
	};
	creto_diode_opts o;
	memset(&o, 0, sizeof o);
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't': o.trust_path = optarg; break;
		case 's': o.state_dir = optarg; break;
		case '1': o.once = 1; break;
		case 'S': o.settle_ms = atoi(optarg); break;
		case 'T': o.timeout_s = atoll(optarg); break;
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
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	creto_err e;
	creto_err_clear(&e);
	if (creto_diode_watch(&o, &e) != CRETO_OK)
		return cli_fail(&e, 0);
	return 0;
}
