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
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "creto/update.h"
#include "update/update_int.h"
#include "util/enc.h"
#include "util/file.h"

static char g_dir[256];
static creto_signer *g_sig[3];
static char g_root[300];

/* The clock handed to the library: pinned to g_now when set (the library
 * never reads the time, or a test hook, from anywhere else). */
static int64_t g_now;
static int64_t pinned_now(void *ctx)
{
	(void)ctx;
	return g_now ? g_now : creto_clock_now(creto_clock_system());
}
static const creto_clock g_clock = {pinned_now, NULL};

/* Crash tests in a child: leave at the named point without any cleanup. */
static void kill_at(void *arg, const char *point)
{
	if (strcmp((const char *)arg, point) == 0)
		_exit(9);
}

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
	return creto_update_verify(pkg, &(creto_update_opts){.clock = &g_clock, .trust_path = g_root}, &r, e);
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

/* The rule is decided where the check fails and carried as an enum beside
 * the error (issue 11 §9): it does not depend on the message text, and its
 * name is the one .reason files and JSON use. */
static void test_rule_enum(void **state)
{
	(void)state;
	write_root(2);
	char pkg[300];
	path_in(pkg, sizeof pkg, "rule.crupdate");
	char *fe = file_entry("w.bin");
	char *st = stmt("", fe);
	const char *paths[] = {"w.bin"};
	const int idx[] = {0, 1};
	creto_update_opts o = {.clock = &g_clock, .trust_path = g_root};
	creto_update_result r;
	creto_err e;
	/* Under threshold. */
	build(pkg, st, idx, 1, CRETO_STATEMENT_CTX, paths, 1);
	assert_int_equal(creto_update_verify(pkg, &o, &r, &e), CRETO_EREJECT);
	assert_int_equal(r.rule_id, CRETO_RULE_THRESHOLD);
	assert_string_equal(r.rule, "signature threshold");
	/* Payload changed after signing: digest. */
	build(pkg, st, idx, 2, CRETO_STATEMENT_CTX, paths, 1);
	int fd = open(pkg, O_RDWR);
	assert_true(fd >= 0);
	struct stat sb;
	assert_int_equal(fstat(fd, &sb), 0);
	/* The payload is the third member: flip its first byte. */
	off_t off = 0;
	upd_tar_hdr h;
	int end;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(lseek(fd, off, SEEK_SET), off);
		assert_int_equal(upd_tar_next(fd, &h, &end, NULL, &e), CRETO_OK);
		off += UPD_TAR_BLOCK;
		if (i < 2)
			off += (off_t)((h.size + UPD_TAR_BLOCK - 1) / UPD_TAR_BLOCK * UPD_TAR_BLOCK);
	}
	unsigned char b;
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0xff;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	creto_err_clear(&e);
	assert_int_equal(creto_update_verify(pkg, &o, &r, &e), CRETO_EREJECT);
	assert_int_equal(r.rule_id, CRETO_RULE_DIGEST);
	/* Truncated inside the payload. */
	assert_int_equal(ftruncate(fd, off + 1), 0);
	close(fd);
	creto_err_clear(&e);
	assert_int_equal(creto_update_verify(pkg, &o, &r, &e), CRETO_EREJECT);
	assert_int_equal(r.rule_id, CRETO_RULE_TRUNCATED);
	assert_string_equal(r.rule, "truncated");
	/* A FIFO: container, at once. */
	char fifo[300];
	path_in(fifo, sizeof fifo, "rule-fifo.crupdate");
	(void)unlink(fifo);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	creto_err_clear(&e);
	assert_int_equal(creto_update_verify(fifo, &o, &r, &e), CRETO_EREJECT);
	assert_int_equal(r.rule_id, CRETO_RULE_CONTAINER);
	/* Every rule has a distinct, non-empty name. */
	for (int i = CRETO_RULE_CONTAINER; i <= CRETO_RULE_DIGEST; i++) {
		assert_true(creto_update_rule_name((creto_update_rule)i)[0] != 0);
		for (int j = CRETO_RULE_CONTAINER; j < i; j++)
			assert_string_not_equal(creto_update_rule_name((creto_update_rule)i),
						creto_update_rule_name((creto_update_rule)j));
	}
	assert_string_equal(creto_update_rule_name(CRETO_RULE_NONE), "");
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
	assert_int_equal(upd_tar_next(fd, &h, &end, NULL, &e), CRETO_OK);
	assert_string_equal(h.name, "a");
	assert_int_equal(h.size, 3);
	/* Flip one byte of the name: checksum mismatch. */
	assert_int_equal(pread(fd, b, 512, 0), 512);
	b[0] ^= 1;
	assert_int_equal(pwrite(fd, b, 512, 0), 512);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(upd_tar_next(fd, &h, &end, NULL, &e), CRETO_EREJECT);
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
	assert_int_equal(upd_tar_next(fd, &h, &end, NULL, &e), CRETO_OK);
	assert_string_equal(h.name, longname);
	close(fd);
}


/* A statement dated in the future is refused (it would raise the shared
 * time floor and freeze every update type); 24 h of clock skew is allowed.
 * The clock passed in (g_clock) is pinned; stmt() is created 2026-01-01T00:00:00Z. */
static void test_future_created(void **state)
{
	(void)state;
	write_root(2);
	char pkg[300];
	path_in(pkg, sizeof pkg, "fut.crupdate");
	char *fe = file_entry("w.bin");
	char *st = stmt("", fe);
	const char *paths[] = {"w.bin"};
	const int idx[] = {0, 1};
	build(pkg, st, idx, 2, CRETO_STATEMENT_CTX, paths, 1);
	const int64_t created = 1767225600; /* 2026-01-01T00:00:00Z */
	creto_err e;
	g_now = created - 86400 - 1;
	assert_int_equal(verify_pkg(pkg, &e), CRETO_EREJECT);
	if (strstr(e.msg, "created: statement created at 2026-01-01T00:00:00Z") == NULL)
		fail_msg("'%s'", e.msg);
	creto_update_result r;
	creto_err_clear(&e);
	assert_int_equal(creto_update_verify(pkg, &(creto_update_opts){.clock = &g_clock, .trust_path = g_root}, &r, &e), CRETO_EREJECT);
	assert_string_equal(r.rule, "created");
	g_now = created - 86400;
	assert_int_equal(verify_pkg(pkg, &e), CRETO_OK);
	/* With a state directory the time floor counts as "now" too: a
	 * statement applied at the edge lets the next one be 24 h later. */
	char sdir[300];
	path_in(sdir, sizeof sdir, "fut-state");
	creto_err_clear(&e);
	/* Never a fresh start: apply refuses a directory without state. */
	assert_int_equal(creto_update_apply(pkg, &(creto_update_opts){.clock = &g_clock, .trust_path = g_root, .state_dir = sdir}, &r, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "state init"));
	assert_int_equal(creto_state_init(sdir, g_root, &g_clock, &e), CRETO_OK);
	assert_int_equal(creto_state_init(sdir, g_root, &g_clock, &e), CRETO_EUSAGE);
	creto_err_clear(&e);
	assert_int_equal(creto_update_apply(pkg, &(creto_update_opts){.clock = &g_clock, .trust_path = g_root, .state_dir = sdir}, &r, &e), CRETO_OK);
	char *st2 = stmt("", fe);
	char *v = strstr(st2, "\"version\":1");
	v[10] = '2';
	char *c = strstr(st2, "2026-01-01T00:00:00Z");
	memcpy(c, "2026-01-02T00:00:00Z", 20);
	build(pkg, st2, idx, 2, CRETO_STATEMENT_CTX, paths, 1);
	creto_err_clear(&e);
	assert_int_equal(creto_update_verify(pkg, &(creto_update_opts){.clock = &g_clock, .trust_path = g_root, .state_dir = sdir}, &r, &e), CRETO_OK);
	memcpy(c, "2026-01-02T00:00:01Z", 20);
	build(pkg, st2, idx, 2, CRETO_STATEMENT_CTX, paths, 1);
	creto_err_clear(&e);
	assert_int_equal(creto_update_verify(pkg, &(creto_update_opts){.clock = &g_clock, .trust_path = g_root, .state_dir = sdir}, &r, &e), CRETO_EREJECT);
	assert_string_equal(r.rule, "created");
	g_now = 0;
	free(st2);
	free(st);
	free(fe);
}

/* Payload paths must fit a ustar header as payload/PATH: name <= 100
 * bytes, or a prefix <= 155 bytes and a name <= 100 split at a '/'. */
static void test_path_ustar(void **state)
{
	(void)state;
	char p[300];
	memset(p, 'x', sizeof p);
	p[150] = 0; /* payload/ + 150: no '/' to split at but the first */
	assert_int_equal(upd_path_valid(p), 0);
	p[92] = 0; /* payload/ + 92 = 100 bytes: fits the name field */
	assert_int_equal(upd_path_valid(p), 1);
	memset(p, 'd', 147);
	p[147] = '/';
	memset(p + 148, 'f', 100);
	p[248] = 0; /* prefix payload/ddd... = 155, name 100 */
	assert_int_equal(upd_path_valid(p), 1);
	p[248] = 'f';
	p[249] = 0; /* name 101 */
	assert_int_equal(upd_path_valid(p), 0);
	/* A verifier refuses such a statement, naming the rule. */
	write_root(2);
	memset(p, 'x', 150);
	p[150] = 0;
	char *fe = file_entry(p);
	char *st = stmt("", fe);
	const char *paths[] = {"x"};
	expect_stmt_reject(st, paths, 1, "path:");
	free(st);
	free(fe);
	/* update create refuses it up front. */
	char dir[300], f[600], out[300];
	path_in(dir, sizeof dir, "longpl");
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(f, sizeof f, "%s/%s", dir, p);
	creto_err e;
	assert_int_equal(creto_file_write_atomic(f, "x", 1, 0644, &e), CRETO_OK);
	path_in(out, sizeof out, "longpl.statement");
	creto_update_create_opts o = {.type = "policy", .name = "p", .version = 1, .payload = dir};
	creto_err_clear(&e);
	assert_int_equal(creto_update_create(&o, out, &e), CRETO_EUSAGE);
	if (strstr(e.msg, "ustar") == NULL)
		fail_msg("'%s'", e.msg);
	assert_int_equal(access(out, F_OK), -1);
}

/* Shard digests are lowercase hex like every digest (canonical form). */
static void test_shard_hex_case(void **state)
{
	(void)state;
	uint8_t sh[2][UPD_DIGEST_LEN], top[UPD_DIGEST_LEN];
	memset(sh[0], 0xab, UPD_DIGEST_LEN);
	memset(sh[1], 0xcd, UPD_DIGEST_LEN);
	assert_int_equal(upd_sha3(sh, sizeof sh, top), 0);
	char h0[65], h1[65], ht[65];
	creto_hex_encode(h0, sh[0], UPD_DIGEST_LEN);
	creto_hex_encode(h1, sh[1], UPD_DIGEST_LEN);
	creto_hex_encode(ht, top, UPD_DIGEST_LEN);
	for (int upper = 0; upper < 2; upper++) {
		char s[1024];
		snprintf(s, sizeof s,
			 "{\"created\":\"2026-01-01T00:00:00Z\",\"digest_alg\":\"sha3-256\",\"expires\":\"2099-01-01T00:00:00Z\","
			 "\"format\":1,\"name\":\"m\",\"payload\":[{\"digest\":\"%s\",\"path\":\"w\",\"shards\":[\"%s\",\"%s\"],"
			 "\"size\":65537}],\"shard_size\":65536,\"type\":\"model-weights\",\"version\":1}",
			 ht, h0, h1);
		if (upper) {
			char *x = strstr(s, h1);
			for (int i = 0; i < 64; i++)
				if (x[i] >= 'a' && x[i] <= 'f')
					x[i] = (char)(x[i] - 'a' + 'A');
		}
		upd_statement st;
		creto_err e;
		creto_err_clear(&e);
		int rc = upd_statement_parse((const uint8_t *)s, strlen(s), &st, NULL, &e);
		if (!upper) {
			assert_int_equal(rc, CRETO_OK);
			upd_statement_free(&st);
		} else {
			assert_int_equal(rc, CRETO_EREJECT);
			if (strstr(e.msg, "shard 2 is not 64 lowercase hex digits") == NULL)
				fail_msg("'%s'", e.msg);
		}
	}
}

/* Key material counts once: a hybrid's halves may not appear as another
 * key, nor as a half of another hybrid (docs/trust-root.md "Keys"). */
static void root_with(creto_pubkey *const *keys, size_t n, creto_err *e, int *rc)
{
	json_t *ks = json_object(), *ids = json_array();
	for (size_t i = 0; i < n; i++) {
		size_t rl;
		const uint8_t *raw = creto_pubkey_raw(keys[i], &rl);
		char *b = malloc(creto_b64_enclen(rl, 0) + 1);
		creto_b64_encode(b, raw, rl, 0);
		json_t *k = json_object();
		json_object_set_new(k, "alg", json_string(creto_alg_name(creto_pubkey_alg(keys[i]))));
		json_object_set_new(k, "public", json_string(b));
		json_object_set_new(ks, creto_pubkey_id(keys[i]), k);
		json_array_append_new(ids, json_string(creto_pubkey_id(keys[i])));
		free(b);
	}
	json_t *role = json_object();
	json_object_set_new(role, "keyids", ids);
	json_object_set_new(role, "threshold", json_integer(2));
	json_t *roles = json_object();
	json_object_set_new(roles, "root", role);
	json_t *sg = json_object();
	json_object_set_new(sg, "type", json_string("creto-trust-root"));
	json_object_set_new(sg, "format", json_integer(1));
	json_object_set_new(sg, "version", json_integer(1));
	json_object_set_new(sg, "expires", json_string("2099-01-01T00:00:00Z"));
	json_object_set_new(sg, "keys", ks);
	json_object_set_new(sg, "roles", roles);
	json_t *doc = json_object();
	json_object_set_new(doc, "signed", sg);
	json_object_set_new(doc, "signatures", json_array());
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	creto_trust_root *r = NULL;
	int nv;
	creto_err_clear(e);
	*rc = creto_trust_root_parse_unsigned((const uint8_t *)text, strlen(text), &r, &nv, e);
	creto_trust_root_free(r);
	free(text);
}

static void test_key_material_once(void **state)
{
	(void)state;
	const creto_pubkey *h0 = creto_signer_pubkey(g_sig[0]), *h1 = creto_signer_pubkey(g_sig[1]);
	size_t l0, l1;
	const uint8_t *r0 = creto_pubkey_raw(h0, &l0), *r1 = creto_pubkey_raw(h1, &l1);
	creto_alg ha = creto_pubkey_alg(h0);
	creto_alg ca = creto_alg_hybrid_classical(ha), qa = creto_alg_hybrid_pq(ha);
	size_t cl = creto_alg_pub_len(ca);
	creto_err e;
	int rc;
	creto_pubkey *cls = NULL, *pq = NULL, *mix_c = NULL, *mix_q = NULL;
	/* The hybrid's classical half alone, its ML-DSA half alone. */
	assert_int_equal(creto_pubkey_new(ca, r0, cl, &cls, &e), CRETO_OK);
	assert_int_equal(creto_pubkey_new(qa, r0 + cl, l0 - cl, &pq, &e), CRETO_OK);
	/* Hybrids sharing one half with h0: classical of h0 with ML-DSA of
	 * h1, and classical of h1 with ML-DSA of h0. */
	uint8_t *m = malloc(l0);
	memcpy(m, r0, cl);
	memcpy(m + cl, r1 + cl, l1 - cl);
	assert_int_equal(creto_pubkey_new(ha, m, l0, &mix_c, &e), CRETO_OK);
	memcpy(m, r1, cl);
	memcpy(m + cl, r0 + cl, l0 - cl);
	assert_int_equal(creto_pubkey_new(ha, m, l0, &mix_q, &e), CRETO_OK);
	free(m);
	/* Control: two independent keys pass this check. */
	creto_pubkey *good[2] = {(creto_pubkey *)h0, (creto_pubkey *)h1};
	root_with(good, 2, &e, &rc);
	assert_int_equal(rc, CRETO_OK);
	creto_pubkey *bad[][2] = {
		{(creto_pubkey *)h0, cls}, {cls, (creto_pubkey *)h0}, {(creto_pubkey *)h0, pq},
		{(creto_pubkey *)h0, mix_c}, {mix_q, (creto_pubkey *)h0},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		root_with(bad[i], 2, &e, &rc);
		assert_int_equal(rc, CRETO_EREJECT);
		if (strstr(e.msg, "same key material") == NULL)
			fail_msg("case %zu: '%s'", i, e.msg);
	}
	/* trust init refuses such a key set too. */
	char *text = NULL;
	creto_pubkey *two[2] = {(creto_pubkey *)h0, cls};
	creto_err_clear(&e);
	assert_int_not_equal(creto_trust_root_create(two, 2, NULL, 0, 2, 10, 1, 4102444800, &text, &e), CRETO_OK);
	assert_non_null(strstr(e.msg, "same key material"));
	assert_null(text);
	creto_pubkey_free(cls);
	creto_pubkey_free(pq);
	creto_pubkey_free(mix_c);
	creto_pubkey_free(mix_q);
}

/* ---- the update context, decisions and their records ---- */

/* A recording event sink: every event as one line, failing on demand. */
#define REC_MAX 64
static struct {
	char line[REC_MAX][600];
	int n;
	int fail_from;   /* 0: never; k: the k-th event and later return 3 */
} g_rec;

static int rec_sink(void *ctx, const creto_event *ev)
{
	(void)ctx;
	if (g_rec.fail_from > 0 && g_rec.n + 1 >= g_rec.fail_from)
		return CRETO_EOP;
	if (g_rec.n < REC_MAX)
		snprintf(g_rec.line[g_rec.n++], sizeof g_rec.line[0], "%s %s %s reason=%s subject=%s",
			 ev->component, ev->event, ev->outcome, ev->reason ? ev->reason : "-",
			 ev->subject ? ev->subject : "-");
	return 0;
}

static void rec_reset(void)
{
	memset(&g_rec, 0, sizeof g_rec);
}

/* The recorded line i starts with want. */
static void rec_expect(int i, const char *want)
{
	if (i >= g_rec.n || strncmp(g_rec.line[i], want, strlen(want)) != 0)
		fail_msg("event %d: '%s', wanted '%s...' (%d events)", i, i < g_rec.n ? g_rec.line[i] : "(none)",
			 want, g_rec.n);
}

/* A model package NAME version V signed by keys 0 and 1, at DIR/OUT. */
static void mkpkg(const char *name, int64_t v, const char *out)
{
	char pd[300], f[320], st[300], sg[310], key[310];
	snprintf(pd, sizeof pd, "%s/pl-%s-%lld", g_dir, name, (long long)v);
	(void)mkdir(pd, 0755);
	snprintf(f, sizeof f, "%s/w.bin", pd);
	char data[100];
	int n = snprintf(data, sizeof data, "weights of %s version %lld", name, (long long)v);
	creto_err e;
	assert_int_equal(creto_file_write_atomic(f, data, (size_t)n, 0644, &e), CRETO_OK);
	snprintf(st, sizeof st, "%s/%s-%lld.st", g_dir, name, (long long)v);
	creto_update_create_opts o = {.type = "model-weights", .name = name, .version = v, .payload = pd,
				      .clock = &g_clock, .force = 1};
	assert_int_equal(creto_update_create(&o, st, &e), CRETO_OK);
	snprintf(sg, sizeof sg, "%s.sigs", st);
	(void)unlink(sg);
	for (int k = 0; k < 2; k++) {
		char kid[17];
		snprintf(key, sizeof key, "%s/k%d.key", g_dir, k);
		assert_int_equal(creto_update_sign(st, sg, key, NULL, kid, &e), CRETO_OK);
	}
	creto_update_assemble_opts ao = {NULL, 1};
	assert_int_equal(creto_update_assemble(st, sg, pd, out, &ao, &e), CRETO_OK);
}

static void fresh_state(char *sdir, size_t cap, const char *tag)
{
	snprintf(sdir, cap, "%s/state-%s", g_dir, tag);
	creto_err e;
	assert_int_equal(creto_state_init(sdir, g_root, &g_clock, &e), CRETO_OK);
}

static creto_update_ctx *open_ctx(const char *sdir, int readonly)
{
	creto_update_ctx_opts co = {.clock = &g_clock, .sink = {rec_sink, NULL}, .readonly = readonly};
	creto_update_ctx *c = NULL;
	creto_err e;
	if (creto_update_ctx_open(sdir, g_root, &co, &c, &e) != CRETO_OK)
		fail_msg("ctx open: %s", e.msg);
	return c;
}

static void test_ctx_decide_commit(void **state)
{
	(void)state;
	g_now = 0;
	write_root(2);
	char sdir[300], p1[300], p2[300], bad[300];
	fresh_state(sdir, sizeof sdir, "dc");
	path_in(p1, sizeof p1, "m1.crupdate");
	path_in(p2, sizeof p2, "m2.crupdate");
	path_in(bad, sizeof bad, "bad.crupdate");
	mkpkg("m", 1, p1);
	mkpkg("m", 2, p2);
	/* bad: v2 with one payload byte flipped (the last bytes of the payload). */
	uint8_t *b = NULL;
	size_t bl = 0;
	creto_err e;
	assert_int_equal(creto_file_read(p2, 1 << 20, &b, &bl, &e), CRETO_OK);
	size_t off = bl - 10240 + 1; /* inside the last member, before the end records */
	for (size_t i = bl; i-- > 0;)
		if (b[i] != 0 && i < bl - 1024) {
			off = i;
			break;
		}
	b[off] ^= 1;
	assert_int_equal(creto_file_write_atomic(bad, b, bl, 0644, &e), CRETO_OK);
	free(b);

	rec_reset();
	creto_update_ctx *c = open_ctx(sdir, 0);
	/* Two decisions over the same snapshot: both accept ... */
	creto_update_decision d1, d2;
	assert_int_equal(creto_update_decide_path(c, p1, &d1, &e), CRETO_OK);
	assert_int_equal(d1.verdict, CRETO_VERDICT_ACCEPT);
	assert_int_equal(creto_update_decide_path(c, p2, &d2, &e), CRETO_OK);
	assert_int_equal(d2.verdict, CRETO_VERDICT_ACCEPT);
	assert_int_equal(g_rec.n, 0); /* deciding records nothing, changes nothing */
	int64_t ver = -1;
	size_t nm = 9;
	creto_update_model *mods = NULL;
	assert_int_equal(creto_update_models_list(sdir, &mods, &nm, &e), CRETO_OK);
	assert_int_equal(nm, 0);
	/* ... the first commits; the second no longer matches the state. */
	assert_int_equal(creto_update_commit(c, &d1, &e), CRETO_OK);
	rec_expect(0, "update apply applied reason=- subject=m@1 sha3-256:");
	assert_int_equal(creto_update_commit(c, &d2, &e), CRETO_EOP);
	assert_non_null(strstr(e.msg, "state changed since the decision"));
	rec_expect(1, "update apply applied reason=- subject=m@2");
	rec_expect(2, "update apply aborted");
	creto_update_decision_clear(&d1);
	creto_update_decision_clear(&d2);
	/* Decided again: now over the new state. */
	assert_int_equal(creto_update_decide_path(c, p2, &d2, &e), CRETO_OK);
	assert_int_equal(d2.verdict, CRETO_VERDICT_ACCEPT);
	assert_int_equal(d2.res.installed, 1);
	assert_int_equal(creto_update_commit(c, &d2, &e), CRETO_OK);
	rec_expect(3, "update apply applied reason=- subject=m@2");
	creto_update_decision_clear(&d2);
	/* The same package again: duplicate; a tampered one: quarantine(digest). */
	assert_int_equal(creto_update_decide_path(c, p2, &d2, &e), CRETO_OK);
	assert_int_equal(d2.verdict, CRETO_VERDICT_DUPLICATE);
	assert_int_equal(d2.rule, CRETO_RULE_REPLAY);
	assert_int_equal(creto_update_commit(c, &d2, &e), CRETO_EREJECT);
	rec_expect(4, "update apply duplicate reason=replay subject=m@2");
	creto_update_decision_clear(&d2);
	assert_int_equal(creto_update_decide_path(c, bad, &d2, &e), CRETO_OK);
	assert_int_equal(d2.verdict, CRETO_VERDICT_QUARANTINE);
	assert_int_equal(d2.rule, CRETO_RULE_DIGEST);
	assert_int_equal(creto_update_commit(c, &d2, &e), CRETO_EREJECT);
	rec_expect(5, "update apply refused reason=digest subject=m@2");
	creto_update_decision_clear(&d2);
	/* A missing file: retry, recorded as such. */
	char gone[300];
	path_in(gone, sizeof gone, "gone.crupdate");
	assert_int_equal(creto_update_decide_path(c, gone, &d2, &e), CRETO_OK);
	assert_int_equal(d2.verdict, CRETO_VERDICT_RETRY);
	assert_int_equal(creto_update_commit(c, &d2, &e), CRETO_EOP);
	rec_expect(6, "update apply retry");
	creto_update_decision_clear(&d2);
	assert_int_equal(g_rec.n, 7);
	/* Read-only beside the writer: a verify context and the models list. */
	creto_update_ctx *ro = open_ctx(sdir, 1);
	assert_int_equal(creto_update_decide_path(ro, p1, &d1, &e), CRETO_OK);
	assert_int_equal(d1.verdict, CRETO_VERDICT_DUPLICATE);
	assert_int_equal(creto_update_commit(ro, &d1, &e), CRETO_EUSAGE);
	creto_update_decision_clear(&d1);
	creto_update_ctx_close(ro);
	assert_int_equal(creto_update_models_list(sdir, &mods, &nm, &e), CRETO_OK);
	assert_int_equal(nm, 1);
	assert_string_equal(mods[0].name, "m");
	assert_int_equal(mods[0].version, 2);
	assert_int_equal(strlen(mods[0].statement_digest), 64);
	assert_true(mods[0].installed_at > 0);
	char want[400];
	snprintf(want, sizeof want, "%s/models/m/2", sdir);
	assert_string_equal(mods[0].path, want);
	struct stat sb;
	assert_int_equal(stat(mods[0].path, &sb), 0);
	free(mods);
	creto_update_ctx_root(c, &ver, &(int64_t){0});
	assert_int_equal(ver, 1);
	creto_update_ctx_close(c);
	/* No intent is left behind by decisions that committed. */
	rec_reset();
	c = open_ctx(sdir, 0);
	assert_int_equal(g_rec.n, 0);
	creto_update_ctx_close(c);
}

/* The sink fails: the action does not happen (exit 3), nothing changes. */
static void test_ctx_fail_closed(void **state)
{
	(void)state;
	g_now = 0;
	write_root(2);
	char sdir[300], p1[300];
	fresh_state(sdir, sizeof sdir, "fc");
	path_in(p1, sizeof p1, "f1.crupdate");
	mkpkg("f", 1, p1);
	rec_reset();
	g_rec.fail_from = 1;
	creto_update_ctx *c = open_ctx(sdir, 0);
	creto_update_decision d;
	creto_err e;
	assert_int_equal(creto_update_decide_path(c, p1, &d, &e), CRETO_OK);
	assert_int_equal(d.verdict, CRETO_VERDICT_ACCEPT);
	assert_int_equal(creto_update_commit(c, &d, &e), CRETO_EOP);
	assert_non_null(strstr(e.msg, "could not be written"));
	creto_update_decision_clear(&d);
	char p[400];
	snprintf(p, sizeof p, "%s/models/f/1", sdir);
	struct stat sb;
	assert_int_not_equal(lstat(p, &sb), 0);
	size_t nm = 9;
	creto_update_model *mods = NULL;
	assert_int_equal(creto_update_models_list(sdir, &mods, &nm, &e), CRETO_OK);
	assert_int_equal(nm, 0);
	/* A refusal is not recorded either: its audit row is not written. */
	char *js = NULL;
	assert_int_equal(creto_update_status(sdir, 10, &js, &e), CRETO_OK);
	assert_null(strstr(js, "\"decision\""));
	free(js);
	/* Through the one-call API too, and the watcher refuses to start. */
	creto_update_opts uo = {.trust_path = g_root, .state_dir = sdir, .clock = &g_clock,
				.sink = {rec_sink, NULL}};
	creto_update_ctx_close(c);
	assert_int_equal(creto_update_apply(p1, &uo, NULL, &e), CRETO_EOP);
	char drop[300];
	path_in(drop, sizeof drop, "drop-fc");
	(void)mkdir(drop, 0755);
	creto_diode_opts dop = {.dir = drop, .trust_path = g_root, .state_dir = sdir, .once = 1,
				.settle_ms = 1, .clock = &g_clock, .sink = {rec_sink, NULL}};
	assert_int_equal(creto_diode_watch(&dop, &e), CRETO_EOP);
	/* Working again: applied. */
	g_rec.fail_from = 0;
	assert_int_equal(creto_update_apply(p1, &uo, NULL, &e), CRETO_OK);
	rec_expect(0, "update apply applied reason=- subject=f@1");
}

/* Killed between the record and the state commit: the next context
 * records `aborted` for it, and nothing was installed. */
static void test_ctx_aborted_on_recovery(void **state)
{
	(void)state;
	g_now = 0;
	write_root(2);
	char sdir[300], p1[300];
	fresh_state(sdir, sizeof sdir, "ab");
	path_in(p1, sizeof p1, "a1.crupdate");
	mkpkg("a", 1, p1);
	const char *points[] = {"recorded", "staged", "renamed", "before-commit"};
	for (size_t i = 0; i < sizeof points / sizeof *points; i++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			creto_update_ctx_opts co = {.clock = &g_clock, .sink = {rec_sink, NULL},
						    .crash = kill_at, .crash_arg = (void *)points[i]};
			creto_update_ctx *c = NULL;
			creto_update_decision d;
			creto_err e;
			if (creto_update_ctx_open(sdir, g_root, &co, &c, &e) != CRETO_OK ||
			    creto_update_decide_path(c, p1, &d, &e) != CRETO_OK)
				_exit(2);
			(void)!creto_update_commit(c, &d, &e);
			_exit(3);
		}
		int st = 0;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 9);
		rec_reset();
		creto_update_ctx *c = open_ctx(sdir, 0);
		rec_expect(0, "update apply aborted reason=interrupted before the state commit subject=a@1");
		assert_int_equal(g_rec.n, 1);
		creto_update_ctx_close(c);
		rec_reset();
		c = open_ctx(sdir, 0);
		assert_int_equal(g_rec.n, 0); /* recorded once */
		creto_update_ctx_close(c);
		size_t nm = 9;
		creto_update_model *mods = NULL;
		creto_err e;
		assert_int_equal(creto_update_models_list(sdir, &mods, &nm, &e), CRETO_OK);
		assert_int_equal(nm, 0);
	}
}

static void test_stop_handle(void **state)
{
	(void)state;
	creto_stop_handle *h = NULL;
	creto_err e;
	assert_int_equal(creto_stop_handle_new(&h, &e), CRETO_OK);
	assert_false(creto_stop_handle_stopped(h));
	struct pollfd pf = {creto_stop_handle_fd(h), POLLIN, 0};
	assert_int_equal(poll(&pf, 1, 0), 0);
	creto_stop_handle_stop(h);
	creto_stop_handle_stop(h);
	assert_true(creto_stop_handle_stopped(h));
	assert_int_equal(poll(&pf, 1, 0), 1);
	creto_stop_handle_reset(h);
	assert_false(creto_stop_handle_stopped(h));
	assert_int_equal(poll(&pf, 1, 0), 0);
	creto_stop_handle_free(h);
}

/* The watcher on a caller's context, stopped from another thread. */
typedef struct wt_arg {
	creto_update_ctx *c;
	creto_diode_opts *o;
	creto_stop_handle *h;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
} wt_arg;

static void wt_started(void *arg, int64_t v, int64_t x)
{
	(void)v;
	(void)x;
	wt_arg *a = arg;
	pthread_mutex_lock(&a->mu);
	a->started = 1;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

static void wt_report(void *arg, const creto_diode_event *ev)
{
	(void)arg;
	(void)ev;
}

static void *wt_stopper(void *arg)
{
	wt_arg *a = arg;
	pthread_mutex_lock(&a->mu);
	while (!a->started)
		pthread_cond_wait(&a->cv, &a->mu);
	pthread_mutex_unlock(&a->mu);
	creto_stop_handle_stop(a->h);
	return NULL;
}

static void test_watch_ctx_stop(void **state)
{
	(void)state;
	g_now = 0;
	write_root(2);
	char sdir[300], drop[300], p1[340];
	fresh_state(sdir, sizeof sdir, "wt");
	path_in(drop, sizeof drop, "drop-wt");
	(void)mkdir(drop, 0755);
	snprintf(p1, sizeof p1, "%s/w1.crupdate", drop);
	mkpkg("w", 1, p1);
	rec_reset();
	creto_update_ctx_opts co = {.clock = &g_clock, .sink = {rec_sink, NULL}, .component = "diode"};
	creto_update_ctx *c = NULL;
	creto_err e;
	assert_int_equal(creto_update_ctx_open(sdir, g_root, &co, &c, &e), CRETO_OK);
	wt_arg a = {.c = c};
	pthread_mutex_init(&a.mu, NULL);
	pthread_cond_init(&a.cv, NULL);
	assert_int_equal(creto_stop_handle_new(&a.h, &e), CRETO_OK);
	creto_diode_opts o = {.dir = drop, .settle_ms = 1, .timeout_s = 600, .started = wt_started,
			      .report = wt_report, .report_arg = &a, .stop = a.h};
	a.o = &o;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, wt_stopper, &a), 0);
	assert_int_equal(creto_diode_watch_ctx(c, &o, &e), CRETO_OK);
	pthread_join(t, NULL);
	rec_expect(0, "diode start ok");
	/* The package was applied, or - when the stop arrived during its
	 * apply - left for the next pass as a retry, unless the stop came
	 * first; the last event is the stop, by request. */
	rec_expect(g_rec.n - 1, "diode stop ok reason=stop requested");
	for (int i = 1; i < g_rec.n - 1; i++) {
		if (strncmp(g_rec.line[i], "diode apply retry", 17) != 0)
			rec_expect(i, "diode apply applied reason=- subject=w@1");
	}
	creto_stop_handle_free(a.h);
	pthread_mutex_destroy(&a.mu);
	pthread_cond_destroy(&a.cv);
	creto_update_ctx_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_thresholds),
		cmocka_unit_test(test_bad_statements),
		cmocka_unit_test(test_trust_root_parse),
		cmocka_unit_test(test_tar_reader),
		cmocka_unit_test(test_future_created),
		cmocka_unit_test(test_path_ustar),
		cmocka_unit_test(test_shard_hex_case),
		cmocka_unit_test(test_key_material_once),
		cmocka_unit_test(test_rule_enum),
		cmocka_unit_test(test_ctx_decide_commit),
		cmocka_unit_test(test_ctx_fail_closed),
		cmocka_unit_test(test_ctx_aborted_on_recovery),
		cmocka_unit_test(test_stop_handle),
		cmocka_unit_test(test_watch_ctx_stop),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
