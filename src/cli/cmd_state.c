/*
 * cmd_state.c - `creto state init --state DIR --trust ROOT.json`: the one
 * way a state directory comes into being.  Every other command refuses a
 * directory without initialised state, so a mistyped or unmounted --state
 * is an error, never an empty state that forgets installed versions, the
 * time floor and rotations (docs/crupdate.md "State directory").  It also
 * creates the state's audit log DIR/audit, whose first entry records the
 * init (docs/audit.md "Who writes").
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "creto/update.h"
#include "util/timeutil.h"

static int state_init(int argc, char **argv);

static const struct cli_cmd STATE_CMDS[] = {
	{"init", state_init,
	 "--state DIR --trust ROOT.json [--audit-origin NAME] [--audit-key K [--module SO]"
	 " [--pin-file F]] [--audit-budget BYTES] [--json] [--quiet]",
	 "create the state directory that update apply, verify --state and diode watch use,"
	 " with its audit log DIR/audit"},
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
		{"audit-origin", required_argument, NULL, 'O'},
		{"audit-key", required_argument, NULL, 'K'},
		{"audit-budget", required_argument, NULL, 'B'},
		{"module", required_argument, NULL, 'm'},
		{"pin-file", required_argument, NULL, 'P'},
		{"json", no_argument, NULL, 'J'},
		{"quiet", no_argument, NULL, 'q'},
		{NULL, 0, NULL, 0},
	};
	const char *state = NULL, *trust = NULL;
	int json = 0, quiet = 0, c;
	creto_state_init_opts io;
	memset(&io, 0, sizeof io);
	creto_keys_opts ko = {0};
	optind = 1;
	while ((c = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': state = optarg; break;
		case 't': trust = optarg; break;
		case 'O': io.audit_origin = optarg; break;
		case 'K': io.audit_key = optarg; break;
		case 'B':
			if (cli_parse_u64("state", "init", "--audit-budget", optarg, 65536, UINT64_MAX / 2,
					  &io.audit_budget) != 0)
				return CRETO_EUSAGE;
			break;
		case 'm': ko.module_path = optarg; break;
		case 'P': ko.pin_file = optarg; break;
		case 'J': json = 1; break;
		case 'q': quiet = 1; break;
		default: return cli_usage("state", &STATE_CMDS[0]);
		}
	}
	if (state == NULL || trust == NULL || optind != argc)
		return cli_usage("state", &STATE_CMDS[0]);
	creto_err e;
	creto_err_clear(&e);
	if (io.audit_key == NULL && (ko.module_path != NULL || ko.pin_file != NULL))
		return cli_usage_error("state init: --module and --pin-file go with --audit-key");
	/* A key file is recorded by its absolute path: later commands run
	 * from anywhere.  (A pkcs11: URI is recorded as given.) */
	char keyabs[PATH_MAX];
	if (io.audit_key != NULL && !creto_keys_is_pkcs11(io.audit_key)) {
		if (realpath(io.audit_key, keyabs) == NULL)
			return cli_usage_error("state init: --audit-key %s: %s", io.audit_key, strerror(errno));
		io.audit_key = keyabs;
	}
	io.clock = cli_clock();
	io.keys = &ko;
	if (creto_state_init_ex(state, trust, &io, &e) != CRETO_OK)
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
	char ldir[4200];
	creto_state_log_dir(state, ldir, sizeof ldir);
	if (json)
		return cli_json_out(json_pack("{s:b, s:s, s:s, s:I, s:s, s:s}", "ok", 1, "state", state, "trust",
					      trust, "trust_root_version", (json_int_t)ver, "trust_root_expires", t,
					      "audit_log", ldir));
	if (!quiet) {
		fprintf(stderr, "initialised state %s for trust root version %lld (expires %s)\n", state,
			(long long)ver, t);
		fprintf(stderr, "audit log %s: %s\n", ldir,
			io.audit_key != NULL ? "first checkpoint signed; every command that writes it signs one"
					     : "no checkpoint key recorded: sign checkpoints with `creto audit "
					       "checkpoint --dir DIR/audit --key K`");
	}
	return 0;
}
