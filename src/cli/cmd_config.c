/*
 * cmd_config.c - `creto config check [--config F] [--json]`: validate the
 * creto config file and everything it names (docs/config.md), naming each
 * problem; the same check `creto serve` runs before it starts.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "creto/serve.h"

#define DEFAULT_CONFIG "/etc/creto/creto.conf"

static int c_check(int argc, char **argv);

static const struct cli_cmd CONFIG_CMDS[] = {
	{"check", c_check, "[--config FILE] [--no-keys] [--json]",
	 "validate the config file and what it names (files, modes, keys, trust root, state, audit log, models)"},
	{NULL, NULL, NULL, NULL},
};

const struct cli_cmd *cmd_config_table(void) { return CONFIG_CMDS; } /* docs: cli_doc.c */

int cmd_config(int argc, char **argv)
{
	return cli_dispatch("config", CONFIG_CMDS, argc, argv);
}

static int c_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"no-keys", no_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	const char *path = DEFAULT_CONFIG;
	int no_keys = 0, ch;
	optind = 1;
	while ((ch = cli_getopt(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'n': no_keys = 1; break;
		default: return cli_usage("config", &CONFIG_CMDS[0]);
		}
	}
	if (optind != argc)
		return cli_usage("config", &CONFIG_CMDS[0]);
	creto_err e;
	creto_err_clear(&e);
	creto_serve_config *cfg = NULL;
	if (creto_serve_config_load(path, &cfg, &e) != CRETO_OK)
		return cli_fail(&e, 0);
	creto_serve_report rep;
	creto_serve_check_opts co = {.clock = cli_clock(), .no_keys = no_keys};
	int rc = creto_serve_check(cfg, &co, &rep, &e);
	creto_serve_config_free(cfg);
	if (cli_json()) {
		json_t *arr = json_array();
		for (size_t i = 0; i < rep.n; i++)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "severity",
							     rep.v[i].severity == CRETO_SERVE_ERROR ? "error" : "warning",
							     "where", rep.v[i].where, "message", rep.v[i].msg));
		json_t *o = json_pack("{s:b, s:s, s:i, s:i, s:i, s:o}", "ok", rc == CRETO_OK, "config", path,
				      "checked", (json_int_t)rep.checked, "errors", (json_int_t)rep.errors,
				      "warnings", (json_int_t)rep.warnings, "problems", arr);
		if (rc != CRETO_OK)
			json_object_set_new(o, "code", json_integer(rc));
		creto_serve_report_clear(&rep);
		int wr = cli_json_out(o);
		return rc != CRETO_OK ? rc : wr;
	}
	for (size_t i = 0; i < rep.n; i++)
		fprintf(stderr, "creto: config %s: %s: %s: %s\n", path,
			rep.v[i].severity == CRETO_SERVE_ERROR ? "error" : "warning", rep.v[i].where, rep.v[i].msg);
	size_t checked = rep.checked, errors = rep.errors, warnings = rep.warnings;
	creto_serve_report_clear(&rep);
	if (rc != CRETO_OK) {
		fprintf(stderr, "creto: config %s: %zu error%s, %zu warning%s\n", path, errors, errors == 1 ? "" : "s",
			warnings, warnings == 1 ? "" : "s");
		return rc;
	}
	printf("config %s: ok (%zu checks, %zu warning%s)\n", path, checked, warnings, warnings == 1 ? "" : "s");
	return CRETO_OK;
}
