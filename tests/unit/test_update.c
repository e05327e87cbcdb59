/*
 * test_update.c - unit tests of src/update: canonical JSON, trust root
 * parsing (every malformed case), thresholds 1-3 signed by 1, 2 and 3 of 3
 * keys, one key twice, context separation, statements an officer should
 * never have signed (traversal, absolute, duplicate, conflicting paths,
 * non-canonical bytes, a threshold field), and the ustar reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "creto/update.h"
#include "update/update_int.h"
#include "util/enc.h"
#include "util/file.h"

static char g_dir[256];
static creto_signer *g_sig[3];
static char g_root[300];

static void path_in(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", g_dir, name);
}

static int setup(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof g_dir, "/tmp/creto-test-update.XXXXXX");
	if (mkdtemp(g_dir) == NULL)
		return -1;
	for (int i = 0; i < 3; i++) {
		char p[300], k[310];
		creto_err e;
		snprintf(p, sizeof p, "%s/k%d", g_dir, i);
		if (creto_key_generate(i == 2 ? CRETO_ALG_ED25519 : CRETO_ALG_HYBRID, p, &e) != CRETO_OK)
			return -1;
		snprintf(k, sizeof k, "%s.key", p);
		if (creto_secretkey_load(k, &g_sig[i], &e) != CRETO_OK)
			return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		creto_signer_free(g_sig[i]);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A trust root over the three keys, every role threshold th, root-signed
 * by the first nsign keys. */
static char *make_root(int th, int nsign)
{
	creto_pubkey *keys[3];
	for (int i = 0; i < 3; i++)
		keys[i] = (creto_pubkey *)creto_signer_pubkey(g_sig[i]);
	char *text = NULL;
	creto_err e;
	assert_int_equal(creto_trust_root_create(keys, 3, NULL, 0, th, 10, 1, 4102444800, &text, &e), CRETO_OK);
	for (int i = 0; i < nsign; i++) {
		char *n = NULL;
		assert_int_equal(creto_trust_root_sign((const uint8_t *)text, strlen(text), g_sig[i], 0, &n, &e),
				 CRETO_OK);
		free(text);
		text = n;
	}
	return text;
}

static void write_root(int th)
{
	char *r = make_root(th, th);
	creto_err e;
	path_in(g_root, sizeof g_root, "root.json");
	assert_int_equal(creto_file_write_atomic(g_root, r, strlen(r), 0644, &e), CRETO_OK);
	free(r);
}

static char DATA[] = "hello";
#define DATA_DIGEST "a2ba82d6b9e4b3e4fc4d0d7d38e5b4de1dab7ba3cd4b7fd1a18e7bb1d3b6d4d8"

/* Canonical statement with payload entries given as raw JSON. */
static char *stmt(const char *extra, const char *payload)
{
	char *s = malloc(4096);
	snprintf(s, 4096,
		 "{\"created\":\"2026-01-01T00:00:00Z\",\"digest_alg\":\"sha3-256\",\"expires\":\"2099-01-01T00:00:00Z\","
		 "\"format\":1,\"name\":\"m\",\"payload\":[%s],\"shard_size\":65536%s,\"type\":\"model-weights\","
		 "\"version\":1}",
		 payload, extra);
	return s;
}

static char *file_entry(const char *path)
{
	char hex[65], *s = malloc(512);
	upd_sha3_hex(DATA, 5, hex);
	snprintf(s, 512, "{\"digest\":\"%s\",\"path\":\"%s\",\"size\":5}", hex, path);
	return s;
}

/* Build a package: statement, signatures by signers idx[0..n) (ctx), and
 * each payload path with DATA. */
static void build(const char *pkg, const char *st, const int *idx, int n, const char *ctx,
		  const char *const *paths, int npaths)
{
	creto_err e;
	json_t *arr = json_array();
	for (int i = 0; i < n; i++) {
		uint8_t *sig;
		size_t sl;
		assert_int_equal(creto_signer_sign(g_sig[idx[i]], (const uint8_t *)ctx, strlen(ctx),
						   (const uint8_t *)st, strlen(st), &sig, &sl, &e), CRETO_OK);
		char *b = malloc(creto_b64_enclen(sl, 0) + 1);
		creto_b64_encode(b, sig, sl, 0);
		json_t *o = json_object();
		json_object_set_new(o, "keyid", json_string(creto_pubkey_id(creto_signer_pubkey(g_sig[idx[i]]))));
		json_object_set_new(o, "sig", json_string(b));
		json_array_append_new(arr, o);
		free(b);
		free(sig);
	}
	json_t *doc = json_object();
	json_object_set_new(doc, "signatures", arr);
	char *sigs = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	int fd = open(pkg, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(upd_tar_write_hdr(fd, "statement.json", strlen(st), 0, &e), CRETO_OK);
	assert_int_equal(creto_write_all(fd, st, strlen(st)), 0);
	assert_int_equal(upd_tar_write_pad(fd, strlen(st), &e), CRETO_OK);
	assert_int_equal(upd_tar_write_hdr(fd, "signatures.json", strlen(sigs), 0, &e), CRETO_OK);
	assert_int_equal(creto_write_all(fd, sigs, strlen(sigs)), 0);
	assert_int_equal(upd_tar_write_pad(fd, strlen(sigs), &e), CRETO_OK);
	for (int i = 0; i < npaths; i++) {
		char name[300];
		snprintf(name, sizeof name, "payload/%s", paths[i]);
		assert_int_equal(upd_tar_write_hdr(fd, name, 5, 0, &e), CRETO_OK);
		assert_int_equal(creto_write_all(fd, DATA, 5), 0);
		assert_int_equal(upd_tar_write_pad(fd, 5, &e), CRETO_OK);
	}
	assert_int_equal(upd_tar_write_end(fd, &e), CRETO_OK);
	close(fd);
	free(sigs);
}

static int verify_pkg(const char *pkg, creto_err *e)
{
	creto_update_result r;
	creto_err_clear(e);
	return creto_update_verify(pkg, g_root, NULL, &r, e);
}

static void test_canonical(void **state)
{
	(void)state;
	json_t *v = json_loads("{\"b\":[1,-2,{\"z\":\"x\",\"a\":\"y\"}],\"a\":\"s p\"}", 0, NULL);
	char *out;
	creto_err e;
	assert_int_equal(upd_canon_dump(v, &out, NULL, &e), CRETO_OK);
	assert_string_equal(out, "{\"a\":\"s p\",\"b\":[1,-2,{\"a\":\"y\",\"z\":\"x\"}]}");
	free(out);
	json_decref(v);
	const char *bad[] = {"{\"a\":1.5}", "{\"a\":null}", "{\"a\":true}", "{\"a\":\"q\\\"\"}", "{\"a\":\"\\u00e9\"}",
			     "{\"a\":\"tab\\t\"}"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		v = json_loads(bad[i], 0, NULL);
		assert_non_null(v);
		assert_int_equal(upd_canon_check(v, "t", &e), CRETO_EREJECT);
		json_decref(v);
	}
	json_t *d;
	assert_int_equal(upd_json_parse((const uint8_t *)"{\"a\":1,\"a\":2}", 13, "t", &d, &e), CRETO_EREJECT);
}

static void test_thresholds(void **state)
{
	(void)state;
	char pkg[300];
	path_in(pkg, sizeof pkg, "t.crupdate");
	char *fe = file_entry("w.bin");
	char *st = stmt("", fe);
	const char *paths[] = {"w.bin"};
	const int idx[] = {0, 1, 2};
	for (int th = 1; th <= 3; th++) {
		write_root(th);
		for (int n = 1; n <= 3; n++) {
			build(pkg, st, idx, n, CRETO_STATEMENT_CTX, paths, 1);
			creto_err e;
			int rc = verify_pkg(pkg, &e);
			if (n >= th) {
				assert_int_equal(rc, CRETO_OK);
			} else {
				assert_int_equal(rc, CRETO_EREJECT);
				assert_non_null(strstr(e.msg, "signature threshold"));
			}
		}
	}
	/* One key twice does not make two. */
	write_root(2);
	const int twice[] = {0, 0};
	build(pkg, st, twice, 2, CRETO_STATEMENT_CTX, paths, 1);
	creto_err e;
	assert_int_equal(verify_pkg(pkg, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "signed twice, counted once"));
	/* A trust-root signature cannot stand in for a statement signature. */
	build(pkg, st, idx, 2, CRETO_TRUST_ROOT_CTX, paths, 1);
	assert_int_equal(verify_pkg(pkg, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "signature threshold: 0 valid"));
	free(st);
	free(fe);
}

static void expect_stmt_reject(const char *st, const char *const *paths, int npaths, const char *want)
{
	char pkg[300];
	path_in(pkg, sizeof pkg, "s.crupdate");
	const int idx[] = {0, 1};
	build(pkg, st, idx, 2, CRETO_STATEMENT_CTX, paths, npaths);
	creto_err e;
	assert_int_equal(verify_pkg(pkg, &e), CRETO_EREJECT);
	if (strstr(e.msg, want) == NULL)
		fail_msg("'%s' lacks '%s'", e.msg, want);
}

static void test_bad_statements(void **state)
{
	(void)state;
	write_root(2);
	struct {
		const char *p1, *p2, *want;
	} cases[] = {
		{"../evil", NULL, "path:"},
		{"/etc/evil", NULL, "path:"},
		{"a//b", NULL, "path:"},
		{"a/./b", NULL, "path:"},
		{"a/", NULL, "path:"},
		{"a\\\\b", NULL, "canonical"},
		{"x", "x", "duplicate name: statement: payload file 2: path x listed twice"},
		{"a", "a/b", "duplicate name"},
		{"b", "a", "not in byte order"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char *f1 = file_entry(cases[i].p1), *f2 = cases[i].p2 ? file_entry(cases[i].p2) : NULL;
		char pl[1200];
		snprintf(pl, sizeof pl, "%s%s%s", f1, f2 ? "," : "", f2 ? f2 : "");
		char *st = stmt("", pl);
		const char *paths[] = {"x", "y"};
		expect_stmt_reject(st, paths, f2 ? 2 : 1, cases[i].want);
		free(st);
		free(f1);
		free(f2);
	}
	char *fe = file_entry("w.bin");
	const char *paths[] = {"w.bin"};
	/* A threshold in the statement is never read: with too few signers it
	 * fails the root's threshold, with enough it is an unknown field. */
	char *st = stmt(",\"threshold\":1", fe);
	char pkg[300];
	path_in(pkg, sizeof pkg, "thr.crupdate");
	const int one[] = {0};
	build(pkg, st, one, 1, CRETO_STATEMENT_CTX, paths, 1);
	creto_err e;
	assert_int_equal(verify_pkg(pkg, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "signature threshold"));
	expect_stmt_reject(st, paths, 1, "unknown field threshold");
	free(st);
	/* Non-canonical bytes (a space) are refused even when signed. */
	st = stmt("", fe);
	char *sp = malloc(strlen(st) + 2);
	snprintf(sp, strlen(st) + 2, " %s", st);
	expect_stmt_reject(sp, paths, 1, "not in canonical form");
	free(sp);
	free(st);
	free(fe);
}

static void test_trust_root_parse(void **state)
{
	(void)state;
	creto_err e;
	creto_trust_root *r = NULL;
	char *ok = make_root(2, 2);
	assert_int_equal(creto_trust_root_parse((const uint8_t *)ok, strlen(ok), &r, &e), CRETO_OK);
	assert_int_equal(creto_trust_root_version(r), 1);
	creto_trust_root_free(r);
	char *one = make_root(2, 1);
	assert_int_equal(creto_trust_root_parse((const uint8_t *)one, strlen(one), &r, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "signature threshold: 1 valid"));
	free(one);
	/* Tamper with fields of a fully signed root. */
	struct {
		const char *from, *to, *want;
	} cases[] = {
		{"\"threshold\":2", "\"threshold\":1", "signature threshold"},
		{"\"threshold\":2", "\"threshold\":4", "exceeds"},
		{"\"version\":1", "\"version\":1.0", "only objects, arrays, integers and strings"},
		{"\"version\":1", "\"version\":\"1\"", "not an integer"},
		{"\"format\":1", "\"format\":2", "out of range"},
		{"\"cert-rotation\"", "\"firmware\"", "unknown role"},
		{"\"type\":\"creto-trust-root\"", "\"type\":\"x\"", "not creto-trust-root"},
		{"\"signatures\":[", "\"extra\":1,\"signatures\":[", "unknown field extra"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const char *at = strstr(ok, cases[i].from);
		assert_non_null(at);
		size_t pre = (size_t)(at - ok);
		char *t = malloc(strlen(ok) + 64);
		snprintf(t, strlen(ok) + 64, "%.*s%s%s", (int)pre, ok, cases[i].to, at + strlen(cases[i].from));
		creto_err_clear(&e);
		assert_int_equal(creto_trust_root_parse((const uint8_t *)t, strlen(t), &r, &e), CRETO_EREJECT);
		if (strstr(e.msg, cases[i].want) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, e.msg, cases[i].want);
		free(t);
	}
	/* A key id that does not match its key. */
	const char *kid = creto_pubkey_id(creto_signer_pubkey(g_sig[2]));
	char *t = strdup(ok);
	char *at = strstr(t, kid);
	assert_non_null(at);
	at[0] = at[0] == '0' ? '1' : '0';
	assert_int_equal(creto_trust_root_parse((const uint8_t *)t, strlen(t), &r, &e), CRETO_EREJECT);
	free(t);
	/* Not JSON at all, and too large. */
	assert_int_equal(creto_trust_root_parse((const uint8_t *)"[1]", 3, &r, &e), CRETO_EREJECT);
	assert_int_equal(creto_trust_root_parse((const uint8_t *)ok, CRETO_TRUST_ROOT_MAX + 1, &r, &e),
			 CRETO_EREJECT);
	free(ok);
}

static void test_tar_reader(void **state)
{
	(void)state;
	char p[300];
	path_in(p, sizeof p, "h.tar");
	creto_err e;
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_int_equal(upd_tar_write_hdr(fd, "a", 3, 0, &e), CRETO_OK);
	uint8_t b[512];
	upd_tar_hdr h;
	int end;
	/* Good header reads back. */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(upd_tar_next(fd, &h, &end, &e), CRETO_OK);
	assert_string_equal(h.name, "a");
	assert_int_equal(h.size, 3);
	/* Flip one byte of the name: checksum mismatch. */
	assert_int_equal(pread(fd, b, 512, 0), 512);
	b[0] ^= 1;
	assert_int_equal(pwrite(fd, b, 512, 0), 512);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(upd_tar_next(fd, &h, &end, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "checksum"));
	/* Long names split into prefix + name and read back whole. */
	char longname[260];
	memset(longname, 'x', sizeof longname);
	memcpy(longname, "payload/", 8);
	longname[150] = '/';
	longname[240] = 0;
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(upd_tar_write_hdr(fd, longname, 0, 0, &e), CRETO_OK);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(upd_tar_next(fd, &h, &end, &e), CRETO_OK);
	assert_string_equal(h.name, longname);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_thresholds),
		cmocka_unit_test(test_bad_statements),
		cmocka_unit_test(test_trust_root_parse),
		cmocka_unit_test(test_tar_reader),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
