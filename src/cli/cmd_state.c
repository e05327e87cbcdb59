/*
 * cmd_state.c - `creto state init --state DIR --trust ROOT.json`: the one
 * way a state directory comes into being.  Every other command refuses a
 * directory without initialised state, so a mistyped or unmounted --state
 * is an error, never an empty state that forgets installed versions, the
 * time floor and rotations (docs/crupdate.md "State directory").
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "creto/update.h"
#include "util/timeutil.h"

static int state_init(int argc, char **argv);

static const struct cli_cmd STATE_CMDS[] = {
	{"init", state_init, "--state DIR --trust ROOT.json [--json] [--quiet]",
	 "create the state directory that update apply, verify --state and diode watch use"},
	{NULL, NULL, NULL, NULL},
};
const struct cli_cmd *cmd_state_table(void) { return STATE_CMDS; } /* docs: cli_doc.c */

int cmd_state(int argc, char **argv)
{
	return cli_dispatch("state", STATE_CMDS, argc, argv);
}

static int state_init(int argc, char **argv)
{
	static const struct option opts[] = {
		{"state", required_argument, NULL, 's'},
		{"trust", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'J'},
		{"quiet", no_argument, NULL, 'q'},
		{NULL, 0, NULL, 0},
	};
	const char *state = NULL, *trust = NULL;
	int json = 0, quiet = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': state = optarg; break;
		case 't': trust = optarg; break;
		case 'J': json = 1; break;
		case 'q': quiet = 1; break;
		default: return cli_usage("state", &STATE_CMDS[0]);
		}
	}
	if (state == NULL || trust == NULL || optind != argc)
		return cli_usage("state", &STATE_CMDS[0]);
	creto_err e;
	creto_err_clear(&e);
	if (creto_state_init(state, trust, cli_clock(), &e) != CRETO_OK)
		return cli_fail(&e, json);
	creto_trust_root *r = NULL;
	int64_t ver = 0, exp = 0;
	if (creto_trust_root_load(trust, &r, &e) == CRETO_OK) {
		ver = creto_trust_root_version(r);
		exp = creto_trust_root_expires(r);
	}
	creto_trust_root_free(r);
	char note[300], t[CRETO_TIME_STRLEN];
	creto_time_format(exp, t);
	int warn = exp != 0 && creto_trust_root_expiry_note(ver, exp, creto_clock_now(cli_clock()), note,
							    sizeof note);
	if (warn)
		fprintf(stderr, "creto: %s\n", note);
	if (json)
		return cli_json_out(json_pack("{s:b, s:s, s:s, s:I, s:s}", "ok", 1, "state", state, "trust",
					      trust, "trust_root_version", (json_int_t)ver, "trust_root_expires", t));
	if (!quiet)
		fprintf(stderr, "initialised state %s for trust root version %lld (expires %s)\n", state,
			(long long)ver, t);
	return 0;
}
