/* test_serve_models.c - serve's record of verified model versions
 * (src/serve/models.c): add, replace, look up, refuse malformed lines; the
 * routable version file; a model directory without model.sig refused. */
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

#include "serve/models.h"

static char dir[] = "/tmp/creto-serve-models-XXXXXX";

static serve_verified rec(const char *name, int64_t v, char d)
{
	serve_verified r;
	memset(&r, 0, sizeof r);
	snprintf(r.name, sizeof r.name, "%s", name);
	r.version = v;
	memset(r.statement_digest, d, 64);
	snprintf(r.keyid, sizeof r.keyid, "0123456789abcdef");
	snprintf(r.digest, sizeof r.digest, "sha3-256:%064d", 0);
	return r;
}

static void test_record(void **state)
{
	(void)state;
	creto_err e;
	creto_err_clear(&e);
	serve_verified *v = NULL;
	size_t n = 9;
	assert_int_equal(serve_verified_load(dir, &v, &n, &e), CRETO_OK);
	assert_int_equal(n, 0);
	serve_verified a = rec("m1", 3, 'a'), b = rec("m2", 1, 'b'), a2 = rec("m1", 3, 'c');
	assert_int_equal(serve_verified_add(dir, &a, &e), CRETO_OK);
	assert_int_equal(serve_verified_add(dir, &b, &e), CRETO_OK);
	assert_int_equal(serve_verified_add(dir, &a2, &e), CRETO_OK); /* replaces m1 3 */
	assert_int_equal(serve_verified_load(dir, &v, &n, &e), CRETO_OK);
	assert_int_equal(n, 2);
	assert_true(serve_verified_has(v, n, "m1", 3, a2.statement_digest));
	assert_false(serve_verified_has(v, n, "m1", 3, a.statement_digest));
	assert_true(serve_verified_has(v, n, "m2", 1, NULL));
	assert_false(serve_verified_has(v, n, "m2", 2, NULL));
	free(v);
	/* a field with a space or a slash is never written */
	serve_verified bad = rec("m 1", 1, 'd');
	assert_int_equal(serve_verified_add(dir, &bad, &e), CRETO_EUSAGE);
	bad = rec("../x", 1, 'd');
	assert_int_equal(serve_verified_add(dir, &bad, &e), CRETO_EUSAGE);
	/* a malformed record is an error, never guessed at */
	char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, SERVE_VERIFIED_FILE);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("m1 x abc\n", f);
	fclose(f);
	assert_int_equal(serve_verified_load(dir, &v, &n, &e), CRETO_EOP);
	assert_non_null(strstr(e.msg, "line 1"));
	f = fopen(path, "w");
	fputs("m1 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa k d", f); /* no newline */
	fclose(f);
	assert_int_equal(serve_verified_load(dir, &v, &n, &e), CRETO_EOP);
	unlink(path);
}

static void test_routable(void **state)
{
	(void)state;
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(serve_routable_write(dir, "m1", 4, &e), CRETO_OK);
	assert_int_equal(serve_routable_write(dir, "m1", 4, &e), CRETO_OK);
	char path[256], buf[16] = "";
	snprintf(path, sizeof path, "%s/%s/m1", dir, SERVE_ROUTABLE_DIR);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof buf, f));
	fclose(f);
	assert_string_equal(buf, "4\n");
	assert_int_equal(serve_routable_write(dir, "a/b", 1, &e), CRETO_EUSAGE);
	unlink(path);
	snprintf(path, sizeof path, "%s/%s", dir, SERVE_ROUTABLE_DIR);
	rmdir(path);
}

static void test_unsigned_model(void **state)
{
	(void)state;
	creto_err e;
	creto_err_clear(&e);
	char m[256], keyid[17], dg[CRETO_MODEL_DIGEST_STR_MAX];
	snprintf(m, sizeof m, "%s/model", dir);
	assert_int_equal(mkdir(m, 0700), 0);
	assert_int_equal(serve_model_verify(m, NULL, 0, keyid, dg, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "no model.sig"));
	rmdir(m);
}

int main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record),
		cmocka_unit_test(test_routable),
		cmocka_unit_test(test_unsigned_model),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(dir);
	return rc;
}
