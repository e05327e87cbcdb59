/* test_model.c - model module: resource order, UTF-8 and path checks, the
 * manifest round trip, strict parsing (a negative test per rejection), and
 * the comparison that names what differs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creto/model.h"
#include "model/model_internal.h"
#include "util/enc.h"

static char tmp[256];

static void put(const char *rel, const char *data)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", tmp, rel);
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	fputs(data, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	const char *b = getenv("CRETO_BUILD_DIR");
	snprintf(tmp, sizeof(tmp), "%s/test_model.XXXXXX", b ? b : "/tmp");
	if (mkdtemp(tmp) == NULL)
		return -1;
	char p[512];
	snprintf(p, sizeof(p), "%s/d", tmp);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/.git", tmp);
	mkdir(p, 0700);
	put("a.txt", "alpha\n");
	put("d/b.bin", "0123456789abcdef0123");
	put("empty", "");
	put(".git/config", "x");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_order(void **state)
{
	(void)state;
	assert_true(model_path_cmp("a/b", "a.txt") < 0);  /* component-wise */
	assert_true(model_path_cmp("a/b", "a-b") < 0);
	assert_true(model_path_cmp("a", "a/b") < 0);
	assert_true(model_path_cmp("ab", "a/b") > 0);
	assert_true(model_path_cmp("B", "a") < 0);        /* code point order */
	assert_true(model_path_cmp("z", "\xc3\xa9") < 0);  /* U+00E9 after ASCII */
	assert_int_equal(model_path_cmp("x/y", "x/y"), 0);
	struct model_res r1 = {.path = "f", .start = 0}, r2 = {.path = "f", .start = 10};
	assert_true(model_res_cmp(&r1, &r2) < 0);
}

static void test_utf8_paths(void **state)
{
	(void)state;
	assert_true(model_utf8_valid("donn\xc3\xa9" "es", 7));
	assert_true(model_utf8_valid("\xe6\xa8\xa1", 3));
	assert_true(model_utf8_valid("\xf0\x9f\x98\x80", 4));
	assert_false(model_utf8_valid("\xff", 1));
	assert_false(model_utf8_valid("\xc0\xaf", 2));          /* overlong '/' */
	assert_false(model_utf8_valid("\xed\xa0\x80", 3));      /* surrogate */
	assert_false(model_utf8_valid("\xf4\x90\x80\x80", 4));  /* > U+10FFFF */
	assert_false(model_utf8_valid("\xe6\xa8", 2));          /* truncated */
	assert_true(model_path_valid("a/b.c"));
	assert_false(model_path_valid(""));
	assert_false(model_path_valid("/a"));
	assert_false(model_path_valid("a//b"));
	assert_false(model_path_valid("a/"));
	assert_false(model_path_valid("./a"));
	assert_false(model_path_valid("a/../b"));
	assert_false(model_path_valid(".."));
	assert_true(model_path_valid("..a/.b"));
	assert_true(creto_model_is_default_ignore(".git"));
	assert_false(creto_model_is_default_ignore("x/.git"));
}

static void test_build_roundtrip(void **state)
{
	(void)state;
	creto_err e;
	creto_model_manifest *m = NULL, *p = NULL;
	creto_model_opts o = {0};
	assert_int_equal(creto_model_build(tmp, &o, &m, &e), CRETO_OK);
	assert_int_equal(creto_model_manifest_count(m), 3);
	assert_int_equal(creto_model_manifest_files(m), 3);
	assert_int_equal(creto_model_manifest_bytes(m), 26);
	assert_string_equal(creto_model_manifest_resource(m, 0, NULL), "a.txt");
	assert_string_equal(creto_model_manifest_resource(m, 1, NULL), "d/b.bin");
	assert_null(creto_model_manifest_resource(m, 3, NULL));
	assert_int_equal(creto_model_manifest_hash(m), CRETO_HASH_SHA3_256);
	char *js = NULL;
	size_t jl = 0;
	assert_int_equal(creto_model_manifest_json(m, &js, &jl, &e), CRETO_OK);
	assert_int_equal(creto_model_manifest_parse((const uint8_t *)js, jl, &p, &e), CRETO_OK);
	assert_memory_equal(creto_model_manifest_root(m), creto_model_manifest_root(p), 32);
	creto_model_diff d;
	assert_int_equal(creto_model_compare(p, m, &d, &e), CRETO_OK);
	assert_int_equal(d.first_kind, CRETO_MODEL_SAME);
	assert_int_equal(creto_model_verify(tmp, p, NULL, &d, &e), CRETO_OK);
	char ds[CRETO_MODEL_DIGEST_STR_MAX];
	creto_model_manifest_digest_str(m, ds);
	creto_hash_alg alg;
	uint8_t root[32];
	assert_int_equal(creto_model_parse_digest_str(ds, &alg, root, &e), CRETO_OK);
	assert_int_equal(alg, CRETO_HASH_SHA3_256);
	assert_memory_equal(root, creto_model_manifest_root(m), 32);
	assert_int_equal(creto_model_parse_digest_str("sha3-256:00", &alg, root, &e), CRETO_EUSAGE);
	assert_int_equal(creto_model_parse_digest_str("md5:00", &alg, root, &e), CRETO_EUSAGE);
	assert_int_equal(creto_model_parse_digest_str("nocolon", &alg, root, &e), CRETO_EUSAGE);

	/* shards: 20-byte file with shard 8 -> 0:8, 8:16, 16:20; empty file none */
	creto_model_manifest *s = NULL, *sp = NULL;
	o.method = CRETO_MODEL_SHARDS;
	o.shard_size = 8;
	o.hash = CRETO_HASH_SHA256;
	o.threads = 3;
	assert_int_equal(creto_model_build(tmp, &o, &s, &e), CRETO_OK);
	assert_int_equal(creto_model_manifest_count(s), 4);
	assert_string_equal(creto_model_manifest_resource(s, 3, NULL), "d/b.bin:16:20");
	free(js);
	assert_int_equal(creto_model_manifest_json(s, &js, &jl, &e), CRETO_OK);
	assert_int_equal(creto_model_manifest_parse((const uint8_t *)js, jl, &sp, &e), CRETO_OK);
	assert_int_equal(creto_model_manifest_shard_size(sp), 8);
	assert_int_equal(creto_model_compare(m, s, &d, &e), CRETO_EREJECT); /* other serialization */

	/* modified / missing / extra / renamed */
	put("d/b.bin", "0123456789abcdef0124");
	assert_int_equal(creto_model_verify(tmp, sp, NULL, &d, &e), CRETO_EREJECT);
	assert_int_equal(d.first_kind, CRETO_MODEL_MODIFIED);
	assert_string_equal(d.first, "d/b.bin");
	put("d/b.bin", "0123456789abcdef0123");
	char a[512], b[512];
	snprintf(a, sizeof(a), "%s/a.txt", tmp);
	snprintf(b, sizeof(b), "%s/d/a2.txt", tmp);
	assert_int_equal(rename(a, b), 0);
	put("zz", "new");
	assert_int_equal(creto_model_verify(tmp, p, NULL, &d, &e), CRETO_EREJECT);
	assert_int_equal(d.renamed, 1);
	assert_int_equal(d.extra, 1);
	assert_int_equal(d.first_kind, CRETO_MODEL_RENAMED);
	assert_string_equal(d.first, "a.txt");
	assert_string_equal(d.first_to, "d/a2.txt");
	assert_non_null(strstr(e.msg, "renamed file: a.txt -> d/a2.txt (modified 0, missing 0, extra 1, renamed 1)"));
	assert_int_equal(rename(b, a), 0);
	unlink(b);
	snprintf(b, sizeof(b), "%s/zz", tmp);
	unlink(b);
	snprintf(b, sizeof(b), "%s/empty", tmp);
	unlink(b);
	assert_int_equal(creto_model_verify(tmp, p, NULL, &d, &e), CRETO_EREJECT);
	assert_int_equal(d.first_kind, CRETO_MODEL_MISSING);
	assert_string_equal(d.first, "empty");
	put("empty", "");

	creto_model_manifest_free(m);
	creto_model_manifest_free(p);
	creto_model_manifest_free(s);
	creto_model_manifest_free(sp);
	creto_model_manifest_free(NULL);
	free(js);
}

static void test_build_errors(void **state)
{
	(void)state;
	creto_err e;
	creto_model_manifest *m = NULL;
	creto_model_opts o = {0};
	char p[512];
	snprintf(p, sizeof(p), "%s/a.txt", tmp);
	assert_int_equal(creto_model_build(p, &o, &m, &e), CRETO_EUSAGE);
	snprintf(p, sizeof(p), "%s/nope", tmp);
	assert_int_equal(creto_model_build(p, &o, &m, &e), CRETO_EOP);
	o.hash = (creto_hash_alg)9;
	assert_int_equal(creto_model_build(tmp, &o, &m, &e), CRETO_EUSAGE);
	o.hash = CRETO_HASH_NONE;
	const char *bad_ign[] = {"../x"};
	o.ignore = bad_ign;
	o.nignore = 1;
	assert_int_equal(creto_model_build(tmp, &o, &m, &e), CRETO_EUSAGE);
	o.nignore = 0;
	snprintf(p, sizeof(p), "%s/ln", tmp);
	assert_int_equal(symlink("a.txt", p), 0);
	assert_int_equal(creto_model_build(tmp, &o, &m, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "ln: symlink refused"));
	o.allow_symlinks = 1;
	assert_int_equal(creto_model_build(tmp, &o, &m, &e), CRETO_OK);
	creto_model_manifest_free(m);
	unlink(p);
	assert_null(NULL);
}

/* A valid statement to mutate. */
static const char *GOOD_HEAD =
	"{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"name\":\"m\",\"digest\":{\"sha256\":\"";

static int parse_str(const char *s, creto_err *e)
{
	creto_model_manifest *m = NULL;
	int rc = creto_model_manifest_parse((const uint8_t *)s, strlen(s), &m, e);
	creto_model_manifest_free(m);
	return rc;
}

/* Build the statement text with a valid root for the given resources JSON. */
static char *stmt(const char *ser, const char *res, const char *root_override)
{
	static char bufs[64][8192];
	static size_t next;
	char *buf = bufs[next++ % 64];
	char root[65] = "";
	if (root_override) {
		snprintf(root, sizeof(root), "%s", root_override);
	} else {
		/* root = SHA-256 over the digests found in res, in order */
		creto_err e;
		const char *d = strstr(res, "\"digest\":\"");
		uint8_t cat[32 * 8];
		size_t n = 0;
		while (d && n < 8) {
			size_t got;
			const char *q = strchr(d + 10, '"');
			if (q != NULL && q - (d + 10) == 64 &&
			    creto_hex_decode(cat + 32 * n, 32, &got, d + 10, 64) == 0)
				n++;
			d = strstr(d + 10, "\"digest\":\"");
		}
		uint8_t r[32];
		assert_int_equal(creto_hash_buf(CRETO_HASH_SHA256, cat, 32 * n, r, &e), 0);
		creto_hex_encode(root, r, 32);
	}
	snprintf(buf, sizeof(bufs[0]),
		 "%s%s\"}}],\"predicateType\":\"https://model_signing/signature/v1.0\","
		 "\"predicate\":{\"serialization\":%s,\"resources\":%s}}",
		 GOOD_HEAD, root, ser, res);
	return buf;
}

#define D1 "1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "2222222222222222222222222222222222222222222222222222222222222222"
#define SER_F "{\"method\":\"files\",\"hash_type\":\"sha256\",\"allow_symlinks\":false}"
#define SER_S(n) "{\"method\":\"shards\",\"hash_type\":\"sha256\",\"shard_size\":" n ",\"allow_symlinks\":false}"
#define RES(name, dg) "{\"name\":\"" name "\",\"algorithm\":\"sha256\",\"digest\":\"" dg "\"}"

static void test_parse(void **state)
{
	(void)state;
	creto_err e;
	assert_int_equal(parse_str(stmt(SER_F, "[" RES("a", D1) "," RES("b", D2) "]", NULL), &e), 0);
	/* upstream protobuf JSON: shard_size as a float; ignore_paths */
	assert_int_equal(parse_str(stmt(SER_S("10.0"), "[" RES("a:0:10", D1) "," RES("a:10:15", D2) "]", NULL), &e), 0);
	assert_int_equal(parse_str(stmt("{\"method\":\"files\",\"hash_type\":\"sha256\",\"allow_symlinks\":true,"
					 "\"ignore_paths\":[\"x\",\".git\"]}", "[" RES("a", D1) "]", NULL), &e), 0);
	/* a path containing ':' in shards mode */
	assert_int_equal(parse_str(stmt(SER_S("10"), "[" RES("a:b:0:3", D1) "]", NULL), &e), 0);
	/* unknown predicate fields are ignored (v1.0 predicate) */
	const char *s = stmt(SER_F, "[" RES("a", D1) "]", NULL);
	char more[8192];
	snprintf(more, sizeof(more), "%.*s,\"future\":1}}", (int)(strlen(s) - 2), s);
	assert_int_equal(parse_str(more, &e), 0);

	struct { const char *text; const char *msg; } bad[] = {
		{stmt(SER_F, "[" RES("a", D1) "]", D2), "does not match the root digest"},
		{stmt(SER_F, "[" RES("b", D1) "," RES("a", D2) "]", NULL), "not in canonical order"},
		{stmt(SER_F, "[" RES("a", D1) "," RES("a", D2) "]", NULL), "not in canonical order"},
		{stmt(SER_F, "[" RES("../a", D1) "]", NULL), "not a clean relative path"},
		{stmt(SER_F, "[" RES("/a", D1) "]", NULL), "not a clean relative path"},
		{stmt(SER_F, "[" RES("a", "11") "]", NULL), "expected 64 hex digits"},
		{stmt(SER_F, "[" RES("a", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") "]", NULL), "not lowercase"},
		{stmt(SER_F, "[{\"name\":\"a\",\"algorithm\":\"sha3-256\",\"digest\":\"" D1 "\"}]", NULL), "expected hash_type"},
		{stmt(SER_F, "[{\"name\":\"a\",\"algorithm\":\"sha256\",\"digest\":\"" D1 "\",\"x\":1}]", NULL), "unexpected field 'x'"},
		{stmt(SER_F, "[{\"name\":\"a\",\"name\":\"b\",\"algorithm\":\"sha256\",\"digest\":\"" D1 "\"}]", NULL), "duplicate"},
		{stmt(SER_F, "[" RES("a", D1) "," RES("a/b", D2) "]", NULL), "under a file"},
		{stmt(SER_F, "{}", NULL), "predicate.resources"},
		{stmt("{\"method\":\"bits\",\"hash_type\":\"sha256\"}", "[]", NULL), "unknown 'bits'"},
		{stmt("{\"method\":\"files\",\"hash_type\":\"blake2\"}", "[]", NULL), "unsupported 'blake2'"},
		{stmt("{\"method\":\"files\",\"hash_type\":\"sha256\",\"allow_symlinks\":\"false\"}", "[]", NULL), "not a boolean"},
		{stmt("{\"method\":\"files\",\"hash_type\":\"sha256\",\"shard_size\":5}", "[]", NULL), "only for shards"},
		{stmt("{\"method\":\"shards\",\"hash_type\":\"sha256\"}", "[]", NULL), "missing shard_size"},
		{stmt(SER_S("0"), "[]", NULL), "shard_size: 0"},
		{stmt(SER_S("-1"), "[]", NULL), "negative"},
		{stmt(SER_S("1.5"), "[]", NULL), "not a non-negative integer"},
		{stmt(SER_S("10"), "[" RES("a", D1) "]", NULL), "expected path:start:end"},
		{stmt(SER_S("10"), "[" RES("a:0:010", D1) "]", NULL), "expected path:start:end"},
		{stmt(SER_S("10"), "[" RES("a:5:5", D1) "]", NULL), "expected path:start:end"},
		{stmt(SER_S("10"), "[" RES("a:1:5", D1) "]", NULL), "does not start at 0"},
		{stmt(SER_S("10"), "[" RES("a:0:10", D1) "," RES("a:11:15", D2) "]", NULL), "not contiguous"},
		{stmt(SER_S("10"), "[" RES("a:0:9", D1) "," RES("a:9:15", D2) "]", NULL), "differs from shard_size"},
		{stmt(SER_S("10"), "[" RES("a:0:11", D1) "]", NULL), "differs from shard_size"},
		{stmt("{\"method\":\"files\",\"hash_type\":\"sha256\",\"ignore_paths\":[\"../x\"]}", "[]", NULL), "ignore_paths[0]"},
		{"[]", "not a JSON object"},
		{"{\"_type\":\"x\"}", "statement._type"},
		{"{", "invalid JSON"},
		{"\xff", "not UTF-8"},
		{"{\"_type\":\"https://in-toto.io/Statement/v1\",\"more\":1}", "unexpected field 'more'"},
		{"{\"_type\":\"https://in-toto.io/Statement/v1\",\"predicateType\":\"https://x\"}", "predicateType"},
		{"{\"_type\":\"https://in-toto.io/Statement/v1\",\"predicateType\":\"https://model_signing/signature/v1.0\",\"subject\":[]}", "exactly one subject"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse_str(bad[i].text, &e);
		if (rc != CRETO_EREJECT || strstr(e.msg, bad[i].msg) == NULL)
			fail_msg("case %zu: rc %d msg '%s', wanted '%s'", i, rc, e.msg, bad[i].msg);
	}
	creto_model_manifest *m = NULL;
	assert_int_equal(creto_model_manifest_parse((const uint8_t *)"{}", CRETO_MODEL_MANIFEST_MAX + 1, &m, &e),
			 CRETO_EREJECT);
	assert_int_equal(creto_model_manifest_load("/nonexistent/x.json", &m, &e), CRETO_EOP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_utf8_paths),
		cmocka_unit_test(test_build_roundtrip),
		cmocka_unit_test(test_build_errors),
		cmocka_unit_test(test_parse),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
