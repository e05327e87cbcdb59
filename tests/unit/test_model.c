/* test_model.c - model module: resource order, UTF-8 and path checks, the
 * manifest round trip, strict parsing (a negative test per rejection), and
 * the comparison that names what differs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
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
	/* the default: sha3-256 shards of 64 MiB, an empty file as one empty shard */
	assert_string_equal(creto_model_manifest_resource(m, 0, NULL), "a.txt:0:6");
	assert_string_equal(creto_model_manifest_resource(m, 1, NULL), "d/b.bin:0:20");
	assert_string_equal(creto_model_manifest_resource(m, 2, NULL), "empty:0:0");
	assert_null(creto_model_manifest_resource(m, 3, NULL));
	assert_int_equal(creto_model_manifest_hash(m), CRETO_HASH_SHA3_256);
	assert_int_equal(creto_model_manifest_method(m), CRETO_MODEL_SHARDS);
	assert_int_equal(creto_model_manifest_shard_size(m), 64u << 20);
	assert_true(creto_model_manifest_root_binds_layout(m));
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
#define SER_S3(n) "{\"method\":\"shards\",\"hash_type\":\"sha3-256\",\"shard_size\":" n "}"
#define RES3(name, dg) "{\"name\":\"" name "\",\"algorithm\":\"sha3-256\",\"digest\":\"" dg "\"}"

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
		/* empty shards: sha256 has none; sha3-256 only as an empty file's one shard */
		{stmt(SER_S("10"), "[" RES("a:0:0", D1) "]", NULL), "expected path:start:end"},
		{stmt(SER_S3("10"), "[" RES3("a:0:10", D1) "," RES3("a:10:10", D2) "]", NULL), "must be its file's only shard"},
		{stmt(SER_S3("10"), "[" RES3("a:0:0", D1) "," RES3("a:0:10", D2) "]", NULL), "must be its file's only shard"},
		{stmt(SER_S3("10"), "[" RES3("a:3:3", D1) "]", NULL), "does not start at 0"},
		/* a sha3-256 root is not model-signing's digest of the digests */
		{stmt(SER_S3("10"), "[" RES3("a:0:0", D1) "]", NULL), "root of an earlier creto version"},
		{stmt(SER_S3("10"), "[" RES3("a:0:0", D1) "]", D2), "does not match the root digest"},
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

/* The sha3-256 root (docs/model-manifest.md §1), computed independently:
 * SHA-256 of the header lines, then u32be(name length) || name || digest. */
static void indep_root(const creto_model_manifest *m, uint8_t out[32])
{
	creto_err e;
	uint8_t *buf = malloc(1 << 16);
	assert_non_null(buf);
	size_t n = (size_t)snprintf((char *)buf, 256,
				    "creto-model-root-v1\nmethod=%s\nshard_size=%llu\nallow_symlinks=%d\nresources=%zu\n",
				    creto_model_manifest_method(m) == CRETO_MODEL_SHARDS ? "shards" : "files",
				    (unsigned long long)creto_model_manifest_shard_size(m),
				    creto_model_manifest_allow_symlinks(m), creto_model_manifest_count(m));
	for (size_t i = 0; i < creto_model_manifest_count(m); i++) {
		const uint8_t *d;
		const char *name = creto_model_manifest_resource(m, i, &d);
		size_t l = strlen(name);
		buf[n++] = 0, buf[n++] = 0, buf[n++] = (uint8_t)(l >> 8), buf[n++] = (uint8_t)l;
		memcpy(buf + n, name, l);
		n += l;
		memcpy(buf + n, d, 32);
		n += 32;
	}
	assert_int_equal(creto_hash_buf(CRETO_HASH_SHA256, buf, n, out, &e), CRETO_OK);
	free(buf);
}

/* §8: the sha3-256 root binds the method and shard size and every file
 * (an empty one too), so --expect alone is a complete pin; sha256 roots
 * stay model-signing's. */
static void test_root_binds_layout(void **state)
{
	(void)state;
	creto_err e;
	creto_model_opts o = {0};
	creto_model_manifest *def = NULL, *sh = NULL, *fi = NULL, *sy = NULL, *s256 = NULL;
	assert_int_equal(creto_model_build(tmp, &o, &def, &e), CRETO_OK);
	uint8_t r[32];
	indep_root(def, r);
	assert_memory_equal(r, creto_model_manifest_root(def), 32);
	/* same digests of the same single-shard files, other shard size or method */
	o.method = CRETO_MODEL_SHARDS;
	o.shard_size = 1u << 20;
	assert_int_equal(creto_model_build(tmp, &o, &sh, &e), CRETO_OK);
	assert_int_equal(creto_model_manifest_count(sh), 3);
	assert_memory_not_equal(creto_model_manifest_root(def), creto_model_manifest_root(sh), 32);
	o.method = CRETO_MODEL_FILES;
	o.shard_size = 0;
	assert_int_equal(creto_model_build(tmp, &o, &fi, &e), CRETO_OK);
	indep_root(fi, r);
	assert_memory_equal(r, creto_model_manifest_root(fi), 32);
	assert_memory_not_equal(creto_model_manifest_root(def), creto_model_manifest_root(fi), 32);
	o.method = CRETO_MODEL_DEFAULT;
	o.allow_symlinks = 1;
	assert_int_equal(creto_model_build(tmp, &o, &sy, &e), CRETO_OK);
	assert_memory_not_equal(creto_model_manifest_root(def), creto_model_manifest_root(sy), 32);
	/* sha256: files by default, the root over the digests only */
	o.allow_symlinks = 0;
	o.hash = CRETO_HASH_SHA256;
	assert_int_equal(creto_model_build(tmp, &o, &s256, &e), CRETO_OK);
	assert_int_equal(creto_model_manifest_method(s256), CRETO_MODEL_FILES);
	assert_false(creto_model_manifest_root_binds_layout(s256));
	uint8_t cat[3 * 32];
	for (size_t i = 0; i < 3; i++) {
		const uint8_t *d;
		assert_non_null(creto_model_manifest_resource(s256, i, &d));
		memcpy(cat + 32 * i, d, 32);
	}
	assert_int_equal(creto_hash_buf(CRETO_HASH_SHA256, cat, sizeof(cat), r, &e), CRETO_OK);
	assert_memory_equal(r, creto_model_manifest_root(s256), 32);
	/* an added empty file changes the default root */
	put("z-empty", "");
	creto_model_manifest *def2 = NULL;
	o.hash = CRETO_HASH_NONE;
	assert_int_equal(creto_model_build(tmp, &o, &def2, &e), CRETO_OK);
	assert_int_equal(creto_model_manifest_count(def2), 4);
	assert_memory_not_equal(creto_model_manifest_root(def), creto_model_manifest_root(def2), 32);
	creto_model_diff d;
	assert_int_equal(creto_model_verify(tmp, def, NULL, &d, &e), CRETO_EREJECT);
	assert_int_equal(d.first_kind, CRETO_MODEL_EXTRA);
	assert_string_equal(d.first, "z-empty");
	char p[512];
	snprintf(p, sizeof(p), "%s/z-empty", tmp);
	unlink(p);
	/* the manifest round trip keeps the empty shard */
	char *js = NULL;
	size_t jl = 0;
	creto_model_manifest *back = NULL;
	assert_int_equal(creto_model_manifest_json(def, &js, &jl, &e), CRETO_OK);
	assert_non_null(strstr(js, "\"empty:0:0\""));
	assert_int_equal(creto_model_manifest_parse((const uint8_t *)js, jl, &back, &e), CRETO_OK);
	assert_memory_equal(creto_model_manifest_root(back), creto_model_manifest_root(def), 32);
	free(js);
	creto_model_manifest_free(back);
	creto_model_manifest_free(def);
	creto_model_manifest_free(def2);
	creto_model_manifest_free(sh);
	creto_model_manifest_free(fi);
	creto_model_manifest_free(sy);
	creto_model_manifest_free(s256);
}

/* ---- rename detection at scale ---- */

/* A manifest (files, sha3-256) of n resources named DIR/%06zu with the digest
 * of content id cid(i), built directly; sorted by path. */
static struct creto_model_manifest *synth(size_t n, const char *dir, size_t (*cid)(size_t, size_t))
{
	struct creto_model_manifest *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	m->hash = CRETO_HASH_SHA3_256;
	m->method = CRETO_MODEL_FILES;
	m->res = calloc(n, sizeof(*m->res));
	assert_non_null(m->res);
	for (size_t i = 0; i < n; i++) {
		char name[64];
		snprintf(name, sizeof(name), "%s/%06zu", dir, i);
		m->res[i].name = strdup(name);
		m->res[i].path = strdup(name);
		assert_non_null(m->res[i].path);
		size_t c = cid(i, n);
		memset(m->res[i].digest, 0xa5, 32);
		for (int b = 0; b < 8; b++)
			m->res[i].digest[b] = (uint8_t)(c >> (8 * b));
		m->nres = i + 1;
	}
	m->nfiles = n;
	return m;
}

static size_t cid_same(size_t i, size_t n)
{
	(void)n;
	return i < 1000 ? 0 : i; /* the first 1000 files share one content */
}

static size_t cid_shuffled(size_t i, size_t n)
{
	if (i < 1000)
		return 0;
	if (i == n - 1)
		return 7; /* content of no expected file: extra */
	/* a permutation of 1000..n-2 */
	size_t span = n - 1 - 1000;
	return 1000 + (i - 1000) * 7919 % span;
}

/* 100,000 files renamed (each content moved to another name, 1000 of them
 * identical) plus one extra file: every rename found, in near-linear time
 * (the old pairwise search compared up to 10^10 pairs; no timing asserted). */
static void test_rename_100k(void **state)
{
	(void)state;
	const size_t n = 100000;
	struct creto_model_manifest *exp = synth(n - 1, "a", cid_same);
	struct creto_model_manifest *act = synth(n, "b", cid_shuffled);
	creto_model_diff d;
	creto_err e;
	assert_int_equal(creto_model_compare(exp, act, &d, &e), CRETO_EREJECT);
	assert_int_equal(d.renamed, n - 1);
	assert_int_equal(d.extra, 1);
	assert_int_equal(d.missing, 0);
	assert_int_equal(d.modified, 0);
	assert_int_equal(d.first_kind, CRETO_MODEL_RENAMED);
	assert_string_equal(d.first, "a/000000");
	assert_string_equal(d.first_to, "b/000000"); /* equal content: first in path order */
	assert_non_null(strstr(e.msg, "extra 1, renamed 99999"));
	/* a modified file stays modified; a content with no peer is missing */
	act->res[5].digest[20] ^= 1; /* one of the identical ones: 999 remain */
	memset(exp->res[n - 2].digest, 0x11, 32);
	assert_int_equal(creto_model_compare(exp, act, &d, &e), CRETO_EREJECT);
	assert_int_equal(d.missing, 2);
	assert_int_equal(d.extra, 3);
	assert_int_equal(d.renamed, n - 3);
	model_manifest_free(exp);
	model_manifest_free(act);
}

/* ---- files that change while they are read ---- */

struct writer {
	int fd;
	uint64_t size;
	atomic_int stop;
	atomic_long writes;
};

/* Rewrite single bytes of the file in place (same size) until told to stop. */
static void *writer_fn(void *arg)
{
	struct writer *w = arg;
	for (long k = 0; !atomic_load(&w->stop); k++) {
		uint8_t b = (uint8_t)(k & 0xff);
		off_t off = (off_t)(((uint64_t)k * 7919u * 4099u) % w->size);
		if (pwrite(w->fd, &b, 1, off) == 1)
			atomic_fetch_add(&w->writes, 1);
		usleep(200);
	}
	return NULL;
}

/* A file rewritten in place with the same size while it is hashed is an
 * operational error naming it ("changed while being verified", exit 3),
 * never "modified" and never "verified". */
static void test_changed_while_read(void **state)
{
	(void)state;
	char d[512], p[600];
	snprintf(d, sizeof(d), "%s/chg", tmp);
	assert_int_equal(mkdir(d, 0700), 0);
	snprintf(p, sizeof(p), "%s/big.bin", d);
	const uint64_t size = 24u << 20;
	int fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	uint8_t *buf = malloc(1 << 20);
	assert_non_null(buf);
	for (uint64_t off = 0; off < size; off += 1 << 20) {
		for (size_t i = 0; i < (1u << 20); i++)
			buf[i] = (uint8_t)((off + i) * 2654435761u >> 13);
		assert_int_equal(pwrite(fd, buf, 1 << 20, (off_t)off), 1 << 20);
	}
	free(buf);
	snprintf(p, sizeof(p), "%s/small.txt", d);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs("tokenizer\n", f);
	fclose(f);

	creto_err e;
	creto_model_manifest *m = NULL, *m2 = NULL;
	creto_model_opts o = {.threads = 2};
	assert_int_equal(creto_model_build(d, &o, &m, &e), CRETO_OK);
	assert_int_equal(creto_model_verify(d, m, &o, NULL, &e), CRETO_OK);

	struct writer w = {.fd = fd, .size = size};
	atomic_init(&w.stop, 0);
	atomic_init(&w.writes, 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, writer_fn, &w), 0);
	while (atomic_load(&w.writes) == 0)
		usleep(100);
	creto_model_diff diff;
	int rc1 = creto_model_verify(d, m, &o, &diff, &e);
	creto_err e1 = e;
	int rc2 = creto_model_build(d, &o, &m2, &e);
	atomic_store(&w.stop, 1);
	pthread_join(th, NULL);
	close(fd);
	assert_int_equal(rc1, CRETO_EOP);
	assert_non_null(strstr(e1.msg, "big.bin: changed while being verified"));
	assert_int_equal(rc2, CRETO_EOP);
	assert_non_null(strstr(e.msg, "big.bin: changed while being hashed"));
	assert_null(m2);
	creto_model_manifest_free(m);
	snprintf(p, sizeof(p), "rm -rf '%s'", d);
	assert_int_equal(system(p), 0);
}

/* A hang is a failure: SIGALRM ends the test program with a message. */
static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "test: blocked (a FIFO was waited on)\n";
	ssize_t w = write(2, msg, sizeof(msg) - 1);
	(void)w;
	_exit(99);
}

/* Run creto_model_build (or verify) in a thread. */
struct bg {
	const char *dir;
	const creto_model_manifest *expected; /* NULL: build */
	int rc;
	creto_err e;
};

static void *bg_fn(void *arg)
{
	struct bg *b = arg;
	/* SHA-256: one stream per thread, so the longest file is opened
	 * alone first (the multi-lane SHA3 engine opens several at once). */
	creto_model_opts o = {.threads = 1, .hash = CRETO_HASH_SHA256};
	creto_model_manifest *m = NULL;
	if (b->expected != NULL)
		b->rc = creto_model_verify(b->dir, b->expected, &o, NULL, &b->e);
	else
		b->rc = creto_model_build(b->dir, &o, &m, &b->e);
	creto_model_manifest_free(m);
	return NULL;
}

/* Wait (bounded) until inotify reports that name in the watched directory
 * was opened: with one thread the pool hashes the longest file first, so
 * once "big.bin" is open the walk is over and "small.bin" not yet opened
 * (with SHA-256: the multi-lane SHA3 engine opens several files at once). */
static void wait_open(int ifd, const char *name)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		struct pollfd pfd = {.fd = ifd, .events = POLLIN};
		assert_int_equal(poll(&pfd, 1, 60000), 1);
		ssize_t n = read(ifd, buf, sizeof(buf));
		assert_true(n > 0);
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			if ((ev->mask & IN_OPEN) && ev->len > 0 && strcmp(ev->name, name) == 0)
				return;
			p += sizeof(*ev) + ev->len;
		}
	}
}

static void make_big(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	uint8_t *buf = malloc(1 << 20);
	assert_non_null(buf);
	for (uint64_t off = 0; off < size; off += 1 << 20) {
		for (size_t i = 0; i < (1u << 20); i++)
			buf[i] = (uint8_t)((off + i) * 2654435761u >> 11);
		assert_int_equal(pwrite(fd, buf, 1 << 20, (off_t)off), 1 << 20);
	}
	free(buf);
	close(fd);
}

/* A file replaced by a FIFO after the walk, before the pool opens it: the
 * build is refused at once (old code: blocked in open(2) forever).  And a
 * file rewritten in place at that moment (same size): "changed while being
 * verified".  Deterministic: the swap happens when inotify shows the pool
 * reading big.bin. */
static void test_swapped_after_walk(void **state)
{
	(void)state;
	char d[512], p[600], q[600];
	snprintf(d, sizeof(d), "%s/swap", tmp);
	assert_int_equal(mkdir(d, 0700), 0);
	snprintf(p, sizeof(p), "%s/big.bin", d);
	make_big(p, 48u << 20);
	snprintf(p, sizeof(p), "%s/small.bin", d);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs("small weights\n", f);
	fclose(f);
	creto_err e;
	creto_model_manifest *m = NULL;
	creto_model_opts o256 = {.hash = CRETO_HASH_SHA256};
	assert_int_equal(creto_model_build(d, &o256, &m, &e), CRETO_OK);

	signal(SIGALRM, on_alarm);
	alarm(120);
	for (int round = 0; round < 2; round++) {
		int ifd = inotify_init1(IN_CLOEXEC);
		assert_true(ifd >= 0);
		assert_true(inotify_add_watch(ifd, d, IN_OPEN) >= 0);
		struct bg b = {.dir = d, .expected = round == 0 ? NULL : m};
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, bg_fn, &b), 0);
		wait_open(ifd, "big.bin");
		snprintf(p, sizeof(p), "%s/small.bin", d);
		if (round == 0) {
			/* a FIFO takes the place of small.bin */
			snprintf(q, sizeof(q), "%s/fifo", d);
			assert_int_equal(mkfifo(q, 0600), 0);
			assert_int_equal(rename(q, p), 0);
		} else {
			/* small.bin rewritten in place, same size */
			int fd = open(p, O_WRONLY | O_CLOEXEC);
			assert_true(fd >= 0);
			assert_int_equal(pwrite(fd, "S", 1, 0), 1);
			close(fd);
		}
		pthread_join(th, NULL);
		close(ifd);
		if (round == 0) {
			assert_int_equal(b.rc, CRETO_EREJECT);
			assert_non_null(strstr(b.e.msg, "small.bin: not a regular file"));
			assert_int_equal(unlink(p), 0);
			f = fopen(p, "w");
			assert_non_null(f);
			fputs("small weights\n", f);
			fclose(f);
		} else {
			assert_int_equal(b.rc, CRETO_EOP);
			assert_non_null(strstr(b.e.msg, "small.bin: changed while being verified"));
		}
	}
	alarm(0);
	creto_model_manifest_free(m);
	snprintf(p, sizeof(p), "rm -rf '%s'", d);
	assert_int_equal(system(p), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_utf8_paths),
		cmocka_unit_test(test_build_roundtrip),
		cmocka_unit_test(test_build_errors),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_root_binds_layout),
		cmocka_unit_test(test_rename_100k),
		cmocka_unit_test(test_changed_while_read),
		cmocka_unit_test(test_swapped_after_walk),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
