/* test_lint.c - unit tests for src/lint: the bounded YAML loader (anchors,
 * aliases, merge keys, duplicate keys, every bound) and the rules through
 * the public API on in-memory manifests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creto/lint.h"
#include "lint/ydoc.h"

static yfile *load_ok(const char *text)
{
	yfile *f = NULL;
	creto_err e;
	creto_err_clear(&e);
	int rc = ydoc_load(text, strlen(text), &f, &e);
	if (rc != CRETO_OK)
		fprintf(stderr, "load: %s\n", e.msg);
	assert_int_equal(rc, CRETO_OK);
	assert_non_null(f);
	return f;
}

static void load_bad(const char *text, size_t len, const char *want)
{
	yfile *f = (yfile *)1;
	creto_err e;
	creto_err_clear(&e);
	assert_int_equal(ydoc_load(text, len, &f, &e), CRETO_EREJECT);
	assert_null(f);
	if (strstr(e.msg, want) == NULL)
		fail_msg("'%s' lacks '%s'", e.msg, want);
}

static void test_load_basic(void **state)
{
	(void)state;
	yfile *f = load_ok("a: 1\nb: [x, 'y', \"z\"]\nc: {d: true}\n---\n---\nlast: ~\n");
	assert_int_equal(ydoc_count(f), 3);
	const ynode *r = ydoc_get(f, 0)->root;
	assert_string_equal(ystr(yget(r, "a")), "1");
	assert_int_equal(yseq_len(yget(r, "b")), 3);
	assert_string_equal(ystr(yseq_at(yget(r, "b"), 2)), "z");
	assert_true(ytrue(ypath(r, "c", "d", NULL)));
	assert_null(yget(r, "nope"));
	assert_int_equal(yget(r, "b")->line, 2);
	assert_int_equal(yget(r, "b")->col, 4);
	assert_null(ystr(ydoc_get(f, 1)->root)); /* empty document: a null scalar */
	assert_null(ystr(yget(ydoc_get(f, 2)->root, "last")));
	ydoc_free(f);
	ydoc_free(NULL);
}

static void test_bools(void **state)
{
	(void)state;
	yfile *f = load_ok("[true, yes, On, Y, 'true', false, no, OFF, n, 1, maybe]");
	const ynode *s = ydoc_get(f, 0)->root;
	int t[] = {1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
	int fa[] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0};
	for (size_t i = 0; i < 11; i++) {
		assert_int_equal(ytrue(yseq_at(s, i)), t[i]);
		assert_int_equal(yfalse(yseq_at(s, i)), fa[i]);
	}
	ydoc_free(f);
}

static int count_pairs(const ynode *k, const ynode *v, void *ctx)
{
	(void)v;
	char *buf = ctx;
	strcat(buf, k->str);
	strcat(buf, ",");
	return 0;
}

static void test_anchors_merge(void **state)
{
	(void)state;
	yfile *f = load_ok("base: &b {x: 1, y: 2}\nother: &o {z: 3}\n"
			   "m:\n  <<: [*b, *o]\n  y: 9\nalias: *b\n");
	const ynode *r = ydoc_get(f, 0)->root;
	const ynode *m = yget(r, "m");
	assert_string_equal(ystr(yget(m, "x")), "1");
	assert_string_equal(ystr(yget(m, "y")), "9"); /* explicit beats merged */
	assert_string_equal(ystr(yget(m, "z")), "3");
	assert_ptr_equal(yget(r, "alias"), yget(r, "base")); /* shared, not copied */
	char keys[64] = "";
	ymap_each(m, count_pairs, keys);
	assert_string_equal(keys, "y,x,z,");
	ydoc_free(f);
	/* anchors are per document */
	load_bad("a: &x 1\n---\nb: *x\n", 17, "no earlier anchor");
	/* an anchor cannot contain its own alias */
	load_bad("a: &x [*x]\n", 11, "no earlier anchor");
	/* a redefined anchor wins from there on */
	f = load_ok("a: &x 1\nb: &x 2\nc: *x\n");
	assert_string_equal(ystr(yget(ydoc_get(f, 0)->root, "c")), "2");
	ydoc_free(f);
}

static void test_bounds(void **state)
{
	(void)state;
	load_bad("a: 1\na: 2\n", 10, "duplicate key 'a' (first at line 1)");
	load_bad("{a: 1, 'a': 2}", 14, "duplicate key");
	load_bad("? [a]\n: 1\n", 10, "not a scalar");
	load_bad("a: {<<: 1}\n", 11, "merge key");
	load_bad("a: [\n", 5, "2:1:");
	load_bad("a: b\x01", 5, "control characters");
	/* nesting */
	size_t n = 2 * (CRETO_LINT_DEPTH_MAX + 1);
	char *deep = malloc(n + 1);
	assert_non_null(deep);
	memset(deep, '[', n / 2);
	memset(deep + n / 2, ']', n / 2);
	deep[n] = '\0';
	load_bad(deep, n, "nested deeper than 64");
	deep[n / 2 - 1] = 'x'; /* one level less: fine */
	deep[n / 2] = ' ';
	memset(deep + n / 2, ']', n / 2 - 1);
	deep[n - 1] = '\0';
	yfile *f = load_ok(deep);
	ydoc_free(f);
	free(deep);
	/* scalar size */
	size_t big = CRETO_LINT_SCALAR_MAX + 1;
	char *s = malloc(big + 4);
	assert_non_null(s);
	memcpy(s, "a: ", 3);
	memset(s + 3, 'x', big);
	s[big + 3] = '\0';
	load_bad(s, big + 3, "scalar of");
	free(s);
	/* file size */
	load_bad("", (size_t)CRETO_LINT_FILE_MAX + 1, "larger than");
	/* alias expansion: 10^7 nodes from a few hundred bytes */
	char bomb[2048] = "a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n";
	for (int i = 1; i < 8; i++) {
		char line[128];
		snprintf(line, sizeof(line), "a%d: &a%d [*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d]\n", i, i,
			 i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
		strcat(bomb, line);
	}
	load_bad(bomb, strlen(bomb), "alias expansion exceeds");
	/* merge depth */
	char chain[8192] = "m0: &m0 {k: v}\n";
	for (int i = 1; i < 40; i++) {
		char line[64];
		snprintf(line, sizeof(line), "m%d: &m%d {<<: *m%d}\n", i, i, i - 1);
		strcat(chain, line);
	}
	load_bad(chain, strlen(chain), "merge keys nested deeper");
}

/* Lint one in-memory manifest; returns the linter (caller frees). */
static creto_lint *lint_text(const char *text, const char *reg)
{
	creto_err e;
	creto_err_clear(&e);
	const char *regs[1] = {reg};
	creto_lint *l = creto_lint_new(regs, reg ? 1 : 0, &e);
	assert_non_null(l);
	assert_int_equal(creto_lint_add_buffer(l, "mem.yaml", text, strlen(text), &e), CRETO_OK);
	assert_int_equal(creto_lint_run(l, &e), CRETO_OK);
	assert_int_equal(creto_lint_run(l, &e), CRETO_EUSAGE); /* once */
	return l;
}

static const creto_lint_finding *find(const creto_lint *l, const char *rule)
{
	for (size_t i = 0; i < creto_lint_count(l); i++)
		if (strcmp(creto_lint_get(l, i)->rule->id, rule) == 0)
			return creto_lint_get(l, i);
	return NULL;
}

static void test_rules_table(void **state)
{
	(void)state;
	size_t n;
	const creto_lint_rule *r = creto_lint_rules(&n);
	assert_true(n >= 20);
	for (size_t i = 0; i < n; i++) {
		assert_ptr_equal(creto_lint_rule_find(r[i].id), &r[i]);
		assert_true(strlen(r[i].summary) > 10 && strlen(r[i].fix) > 10);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(r[i].id, r[j].id);
	}
	assert_null(creto_lint_rule_find("nope"));
	assert_string_equal(creto_lint_severity_name(CRETO_LINT_ERROR), "error");
}

#define POD_HEAD "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns}\nspec:\n"

static void test_rules_vllm(void **state)
{
	(void)state;
	creto_lint *l = lint_text(POD_HEAD "  containers:\n"
					   "    - name: v\n"
					   "      image: vllm/vllm-openai:latest\n"
					   "      command: [sh, -c, 'vllm serve org/model --trust-remote-code --api-key k']\n"
					   "      env:\n"
					   "        - {name: VLLM_API_KEY, value: k}\n"
					   "        - {name: DO_NOT_TRACK, value: '1'}\n",
				  NULL);
	const char *want[] = {"image-registry", "image-digest",   "vllm-trust-remote-code", "api-key-literal",
			      "vllm-hub-model", "vllm-offline", "namespace-egress", "no-security-context"};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (find(l, want[i]) == NULL)
			fail_msg("no %s", want[i]);
	assert_null(find(l, "vllm-usage-stats")); /* DO_NOT_TRACK=1 is enough */
	const creto_lint_finding *f = find(l, "vllm-hub-model");
	assert_non_null(strstr(f->message, "'org/model' is a hub id"));
	assert_string_equal(f->object, "Pod/ns/p");
	assert_int_equal(f->line, 8);
	assert_true(creto_lint_count_severity(l, CRETO_LINT_ERROR) >= 7);
	/* findings are sorted by line */
	for (size_t i = 1; i < creto_lint_count(l); i++)
		assert_true(creto_lint_get(l, i - 1)->line <= creto_lint_get(l, i)->line);
	creto_lint_free(l);
}

static void test_rules_untrusted_text(void **state)
{
	(void)state;
	/* a container name with a newline and an escape comes out escaped */
	creto_lint *l = lint_text(POD_HEAD "  containers:\n    - name: \"a\\nb\\e[31m\"\n      image: x\n", NULL);
	const creto_lint_finding *f = find(l, "image-digest");
	assert_non_null(f);
	assert_non_null(strstr(f->message, "'a\\nb\\x1b[31m'"));
	assert_null(strchr(f->message, '\n'));
	creto_lint_free(l);
}

static void test_new_errors(void **state)
{
	(void)state;
	creto_err e;
	const char *bad[] = {"harbor.internal/"};
	assert_null(creto_lint_new(bad, 1, &e));
	assert_int_equal(e.code, CRETO_EUSAGE);
	const char *many[CRETO_LINT_REGISTRIES_MAX + 1];
	for (size_t i = 0; i <= CRETO_LINT_REGISTRIES_MAX; i++)
		many[i] = "r.internal";
	assert_null(creto_lint_new(many, CRETO_LINT_REGISTRIES_MAX + 1, &e));
	creto_lint *l = creto_lint_new(NULL, 0, &e);
	assert_non_null(l);
	assert_int_equal(creto_lint_add_path(l, "/nonexistent/x.yaml", &e), CRETO_EOP);
	creto_lint_free(l);
	creto_lint_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_basic),   cmocka_unit_test(test_bools),
		cmocka_unit_test(test_anchors_merge), cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_rules_table),  cmocka_unit_test(test_rules_vllm),
		cmocka_unit_test(test_rules_untrusted_text), cmocka_unit_test(test_new_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
