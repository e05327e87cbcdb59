/* test_serve.c - unit tests for src/serve/config.c and check.c: the config
 * sections serve reads, their defaults, errors that name the line, the
 * [isolation] section applied key by key with the isolation parser's rules, the gateway's
 * derived config text, and the check naming each problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creto/serve.h"
#include "serve/sandbox.h"

static creto_serve_config *parse_ok(const char *text)
{
	creto_serve_config *c = NULL;
	creto_err e;
	creto_err_clear(&e);
	int rc = creto_serve_config_parse(text, strlen(text), &c, &e);
	if (rc != CRETO_OK)
		fail_msg("parse: %s", e.msg);
	return c;
}

static void parse_err(const char *text, const char *want)
{
	creto_serve_config *c = NULL;
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(creto_serve_config_parse(text, strlen(text), &c, &e), CRETO_EUSAGE);
	assert_null(c);
	if (strstr(e.msg, want) == NULL)
		fail_msg("error '%s' lacks '%s'", e.msg, want);
}

static void test_defaults(void **state)
{
	(void)state;
	creto_serve_config *c = parse_ok("# nothing\n");
	assert_string_equal(c->state_dir, "/var/lib/creto/state");
	assert_string_equal(c->trust_root, "/etc/creto/trust-root.json");
	assert_string_equal(c->diode_drop, "/var/lib/creto/drop");
	assert_string_equal(c->audit_dir, "/var/lib/creto/audit");
	assert_string_equal(c->runtime_dir, "/run/creto");
	assert_string_equal(c->policy_update, "gateway-policy");
	assert_string_equal(c->nhi_update, "nhi-backup");
	assert_int_equal(c->diode_settle_ms, 500);
	assert_int_equal(c->audit_checkpoint_ms, 3600000);
	assert_int_equal(c->audit_checkpoint_entries, 1000);
	assert_int_equal(c->isolation_interval_ms, 60000);
	assert_int_equal(c->stop_timeout_ms, 30000);
	assert_int_equal(c->on_violation, CRETO_SERVE_ALERT);
	assert_int_equal(c->seccomp, CRETO_SANDBOX_SECCOMP_KILL);
	assert_int_equal(c->landlock, CRETO_SANDBOX_LANDLOCK_AUTO);
	assert_int_equal(c->log_json, 0);
	assert_int_equal(c->has_gateway, 0);
	creto_serve_config_free(c);
}

static void test_sections(void **state)
{
	(void)state;
	creto_serve_config *c = parse_ok("[hsm]\nmodule = /m.so\ntoken = t1\npin_file = /p\n"
					 "endpoint = /a.so\nendpoint = /b.so,slot-id=2\n"
					 "[trust]\nroot = /r.json\n[state]\ndir = /s\n"
					 "[diode]\ndrop = /d\nsettle = 2s\n"
					 "[nhi]\nstore = /n.db\nbackup = /b\nwrap_key = pkcs11:token=t1;object=w\n"
					 "jwks = /j\nissuer = iss\naudience = aud\n"
					 "[isolation]\nallow = 10.0.0.0/8\nallow = 192.168.0.0/16\ntimeout = 3s\n"
					 "[audit]\ndir = /a\ncheckpoint_key = /k\ncheckpoint_interval = 5m\n"
					 "checkpoint_entries = 7\nbudget = 1G\n"
					 "[serve]\nuser = creto\non_violation = refuse\nisolation_interval = 250ms\n"
					 "active_probes = yes\nlog_format = json\nruntime_dir = /rt\n"
					 "policy_update = pol\nnhi_update = ids\nstop_timeout = 9s\n"
					 "seccomp = eperm\nlandlock = require\n");
	assert_string_equal(c->hsm_module, "/m.so");
	assert_string_equal(c->hsm_token, "t1");
	assert_int_equal(c->n_hsm_endpoint, 2);
	assert_string_equal(c->hsm_endpoint[1], "/b.so,slot-id=2");
	assert_string_equal(c->trust_root, "/r.json");
	assert_int_equal(c->diode_settle_ms, 2000);
	assert_string_equal(c->nhi_wrap_key, "pkcs11:token=t1;object=w");
	assert_string_equal(c->nhi_audience, "aud");
	assert_int_equal(c->iso.n_allow, 2);
	assert_int_equal(c->iso.timeout_ms, 3000);
	assert_int_equal(c->audit_checkpoint_ms, 300000);
	assert_int_equal(c->audit_checkpoint_entries, 7);
	assert_int_equal(c->audit_budget, 1LL << 30);
	assert_string_equal(c->user, "creto");
	assert_int_equal(c->on_violation, CRETO_SERVE_REFUSE);
	assert_int_equal(c->isolation_interval_ms, 250);
	assert_int_equal(c->active_probes, 1);
	assert_int_equal(c->log_json, 1);
	assert_string_equal(c->policy_update, "pol");
	assert_string_equal(c->nhi_update, "ids");
	assert_int_equal(c->stop_timeout_ms, 9000);
	assert_int_equal(c->seccomp, CRETO_SANDBOX_SECCOMP_EPERM);
	assert_int_equal(c->landlock, CRETO_SANDBOX_LANDLOCK_REQUIRE);
	creto_serve_config_free(c);
}

static void test_errors(void **state)
{
	(void)state;
	parse_err("[serve]\nbogus = 1\n", "line 2: unknown key 'bogus' in [serve]");
	parse_err("[nowhere]\n", "unknown section");
	parse_err("[serve]\non_violation = maybe\n", "line 2: on_violation: want alert or refuse");
	parse_err("[serve]\nlog_format = xml\n", "log_format");
	parse_err("[serve]\nseccomp = sometimes\n", "seccomp");
	parse_err("[serve]\npolicy_update = ../x\n", "not an update name");
	parse_err("[state]\ndir = relative\n", "line 2");
	parse_err("[trust]\nroot = /a\nroot = /b\n", "line 3");
	parse_err("[diode]\nsettle = 1ms\n", "line 2");
	/* [isolation] errors come from the isolation parser, on this file's line */
	parse_err("[serve]\nuser = x\n[isolation]\nallow = 10.0.0.0/8\nallow = nonsense\n",
		  "line 5: [isolation] allow: bad prefix");
	parse_err("[isolation]\nlink_local = maybe\n", "line 2: [isolation] link_local");
}

static void test_gateway_text(void **state)
{
	(void)state;
	creto_serve_config *c = parse_ok("[nhi]\nstore = /n.db\njwks = /j.json\n"
					 "[gateway]\nlisten = 127.0.0.1:0\nworkers = 1\n"
					 "[upstream]\nmodel m1 = http://127.0.0.1:1\nmodel m2 = http://127.0.0.1:2\n"
					 "[limits]\nconcurrency = 3\n");
	assert_int_equal(c->has_gateway, 1);
	char *t = NULL;
	size_t nr = 0;
	creto_err e;
	creto_err_clear(&e);
	const char *models[] = {"m2"};
	const char *listen[] = {"127.0.0.1:8443"};
	assert_int_equal(creto_serve_gateway_text(c, "/s/policy/gp/3/policy", listen, 1, models, 1, &t, &nr, &e),
			 CRETO_OK);
	assert_int_equal(nr, 1);
	assert_non_null(strstr(t, "[gateway]\n"));
	assert_non_null(strstr(t, "listen = 127.0.0.1:8443\n"));
	assert_null(strstr(t, "127.0.0.1:0"));
	assert_non_null(strstr(t, "nhi_db = /n.db\n"));
	assert_non_null(strstr(t, "jwks = /j.json\n"));
	assert_non_null(strstr(t, "policy = /s/policy/gp/3/policy\n"));
	assert_non_null(strstr(t, "model m2 = http://127.0.0.1:2\n"));
	assert_null(strstr(t, "model m1"));
	assert_non_null(strstr(t, "[limits]\nconcurrency = 3\n"));
	assert_null(strstr(t, " = \n"));
	free(t);
	/* all models, no override */
	assert_int_equal(creto_serve_gateway_text(c, NULL, NULL, 0, NULL, 0, &t, &nr, &e), CRETO_OK);
	assert_int_equal(nr, 2);
	assert_non_null(strstr(t, "listen = 127.0.0.1:0\n"));
	assert_null(strstr(t, "policy ="));
	free(t);
	creto_serve_config_free(c);
}

static int has_problem(const creto_serve_report *r, const char *where, int sev, const char *text)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->v[i].where, where) && r->v[i].severity == sev &&
		    (text == NULL || strstr(r->v[i].msg, text)))
			return 1;
	return 0;
}

static void test_check_names_problems(void **state)
{
	(void)state;
	char dir[] = "/tmp/creto-test-serve.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char pin[256], cfgtext[2048];
	snprintf(pin, sizeof pin, "%s/pin", dir);
	FILE *f = fopen(pin, "w");
	assert_non_null(f);
	fputs("1234\n", f);
	fclose(f);
	assert_int_equal(chmod(pin, 0644), 0);
	snprintf(cfgtext, sizeof cfgtext,
		 "[hsm]\npin_file = %s\n[trust]\nroot = %s/missing.json\n[state]\ndir = %s/nostate\n"
		 "[diode]\ndrop = %s\n[nhi]\nstore = %s/no.db\n[audit]\ndir = %s/noaudit\n"
		 "[serve]\nuser = no-such-user-creto\n",
		 pin, dir, dir, dir, dir, dir);
	creto_serve_config *c = parse_ok(cfgtext);
	creto_serve_report r;
	creto_err e;
	creto_err_clear(&e);
	creto_serve_check_opts o = {.no_keys = 1};
	assert_int_equal(creto_serve_check(c, &o, &r, &e), CRETO_EUSAGE);
	assert_true(has_problem(&r, "hsm.pin_file", CRETO_SERVE_ERROR, "chmod 600"));
	assert_true(has_problem(&r, "trust.root", CRETO_SERVE_ERROR, "missing.json"));
	assert_true(has_problem(&r, "state.dir", CRETO_SERVE_ERROR, NULL));
	assert_true(has_problem(&r, "nhi.store", CRETO_SERVE_ERROR, NULL));
	assert_true(has_problem(&r, "audit.dir", CRETO_SERVE_ERROR, NULL));
	assert_true(has_problem(&r, "serve.user", CRETO_SERVE_ERROR, "no such user"));
	assert_true(has_problem(&r, "audit.checkpoint_key", CRETO_SERVE_WARN, NULL));
	assert_false(has_problem(&r, "diode.drop", CRETO_SERVE_ERROR, NULL));
	assert_true(r.errors >= 6);
	assert_non_null(strstr(e.msg, "problems, first: hsm.pin_file"));
	creto_serve_report_clear(&r);
	creto_serve_config_free(c);
	unlink(pin);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_gateway_text),
		cmocka_unit_test(test_check_names_problems),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
