/*
 * cli_statelog.c - the audit log of an update state (STATE/audit) as the
 * update and diode commands open and close it (docs/audit.md "Who writes").
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "creto/update.h"

int cli_state_log_open(const char *state, const char *key, int64_t wait_s, creto_state_log **log,
		       creto_err *e)
{
	creto_state_log_opts lo;
	memset(&lo, 0, sizeof lo);
	lo.clock = cli_clock();
	lo.key = key;
	lo.crash_point = cli_crash_point();
	lo.lock_wait_ms = wait_s > 10 ? wait_s * 1000 : 10000;
	return creto_state_log_open(state, &lo, log, e);
}

void cli_state_log_close(creto_state_log *log, creto_err *e)
{
	const char *why = creto_state_log_error(log);
	if (e != NULL && e->code == CRETO_EOP && why != NULL && why[0] &&
	    strstr(e->msg, "could not be written") != NULL) {
		char m[2 * CRETO_ERR_MSG_MAX];
		snprintf(m, sizeof m, "%s: %s", e->msg, why);
		creto_err_set(e, CRETO_EOP, "%s", m);
	}
	creto_err ce;
	creto_err_clear(&ce);
	if (creto_state_log_close(log, &ce) != CRETO_OK)
		fprintf(stderr, "creto: warning: %s (the entries are durable; `creto audit checkpoint --dir "
			"STATE/audit --key K` signs one later)\n", ce.msg);
}
