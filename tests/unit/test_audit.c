/* test_audit.c - unit tests for src/audit: canonical entries (known bytes,
 * escaping, strict parsing), RFC 6962 proofs against a brute-force tree,
 * checkpoints for every key type, the writer (durable append, group commit
 * from threads, clock clamping, historical times, budget, lock, sink) and
 * the verifier. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "audit/audit_int.h"
#include "creto/audit.h"
#include "creto/sig.h"
#include "util/enc.h"

static char tmpdir[512];

static int setup(void **state)
{
	(void)state;
	return tmpdir_make(tmpdir, sizeof(tmpdir), "test_audit");
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove(tmpdir);
}

static void logdir(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", tmpdir, name);
}

/* ---- entries ---- */

static void test_entry_known_bytes(void **state)
{
	(void)state;
	creto_event_field f[3] = {{"zeta", NULL, -5}, {"alpha", "a\"b\\c", 0}, {"mid", "\xff\xfe", 0}};
	creto_event ev = {"update", "quarantine", "refused", "pkg\n1.0", "rule-expired", "officer:7", f, 3};
	char buf[CRETO_AUDIT_ENTRY_MAX];
	size_t len;
	creto_err e;
	assert_int_equal(aud_entry_encode(&ev, 42, 1700000000123456, buf, &len, &e), 0);
	const char *want = "{\"actor\":\"officer:7\",\"component\":\"update\",\"event\":\"quarantine\","
			   "\"fields\":{\"alpha\":\"a\\\"b\\\\\\\\c\",\"mid\":\"\\\\xff\\\\xfe\","
			   "\"zeta\":-5},\"outcome\":\"refused\",\"reason\":\"rule-expired\",\"seq\":42,"
			   "\"subject\":\"pkg\\\\n1.0\",\"time\":1700000000123456}";
	assert_int_equal(len, strlen(want));
	assert_memory_equal(buf, want, len);
	aud_entry pe;
	assert_int_equal(aud_entry_parse(buf, len, &pe, &e), 0);
	assert_int_equal(pe.seq, 42);
	assert_int_equal(pe.time_us, 1700000000123456);
	char t[64];
	aud_span_text(&pe.subject, t, sizeof(t));
	assert_string_equal(t, "pkg\\n1.0"); /* the escape.h text */
	aud_span_text(&pe.component, t, sizeof(t));
	assert_string_equal(t, "update");
	assert_non_null(pe.fields.p);
	/* minimal event: no optional members */
	creto_event m = {"cli", "x", "ok", NULL, NULL, NULL, NULL, 0};
	assert_int_equal(aud_entry_encode(&m, 0, 0, buf, &len, &e), 0);
	assert_int_equal(len, strlen("{\"component\":\"cli\",\"event\":\"x\",\"outcome\":\"ok\",\"seq\":0,\"time\":0}"));
	assert_int_equal(aud_entry_parse(buf, len, &pe, &e), 0);
	assert_null(pe.subject.p);
}

static void test_entry_encode_refuses(void **state)
{
	(void)state;
	char buf[CRETO_AUDIT_ENTRY_MAX];
	size_t len;
	creto_err e;
	creto_event ev = {"Bad", "x", "ok", NULL, NULL, NULL, NULL, 0};
	assert_int_equal(aud_entry_encode(&ev, 0, 0, buf, &len, &e), CRETO_EUSAGE);
	ev.component = "cli";
	ev.outcome = NULL;
	assert_int_equal(aud_entry_encode(&ev, 0, 0, buf, &len, &e), CRETO_EUSAGE);
	ev.outcome = "ok";
	creto_event_field dup[2] = {{"k", "a", 0}, {"k", NULL, 1}};
	ev.fields = dup;
	ev.nfields = 2;
	assert_int_equal(aud_entry_encode(&ev, 0, 0, buf, &len, &e), CRETO_EUSAGE);
	creto_event_field badkey[1] = {{"K-1", "a", 0}};
	ev.fields = badkey;
	ev.nfields = 1;
	assert_int_equal(aud_entry_encode(&ev, 0, 0, buf, &len, &e), CRETO_EUSAGE);
	/* over 16 KiB once escaped (each control byte becomes 4) */
	char *big = malloc(5000);
	memset(big, 0x01, 4999);
	big[4999] = 0;
	ev.fields = NULL;
	ev.nfields = 0;
	ev.subject = big;
	assert_int_equal(aud_entry_encode(&ev, 0, 0, buf, &len, &e), CRETO_EUSAGE);
	assert_non_null(strstr(e.msg, "16384"));
	free(big);
	ev.subject = NULL;
	assert_int_equal(aud_entry_encode(&ev, 0, -1, buf, &len, &e), CRETO_EUSAGE);
}

static void test_entry_parse_strict(void **state)
{
	(void)state;
	static const char *bad[] = {
		"",
		"{}",
		"{\"component\":\"cli\",\"event\":\"x\",\"outcome\":\"ok\",\"seq\":0}",
		"{\"component\":\"cli\",\"event\":\"x\",\"outcome\":\"ok\",\"seq\":0,\"time\":0} ",
		"{ \"component\":\"cli\",\"event\":\"x\",\"outcome\":\"ok\",\"seq\":0,\"time\":0}",
		"{\"event\":\"x\",\"component\":\"cli\",\"outcome\":\"ok\",\"seq\":0,\"time\":0}",
		"{\"component\":\"cli\",\"event\":\"x\",\"outcome\":\"ok\",\"seq\":00,\"time\":0}",
		"{\"component\":\"cli\",\"event\":\"x\",\"outcome\":\"ok\",\"seq\":0,\"time\":1.5}",
		"{\"component\":\"cli\",\"event\":\"x\",\"outcome\":\"ok\",\"seq\":-1,\"time\":0}",
		"{\"component\":\"cli\",\"event\":\"x\",\"outcome\":\"ok\",\"seq\":0,\"time\":99999999999999999999}",
		"{\"component\":\"c\\u006ci\",\"event\":\"x\",\"outcome\":\"ok\",\"seq\":0,\"time\":0}",
		"{\"component\":\"CLI\",\"event\":\"x\",\"outcome\":\"ok\",\"seq\":0,\"time\":0}",
		"{\"component\":\"cli\",\"event\":\"x\",\"outcome\":\"ok\",\"seq\":0,\"subject\":\"a\nb\",\"time\":0}",
		/* escape.h text must be canonical: a lone backslash, \x41 for 'A', raw C1 */
		"{\"component\":\"cli\",\"event\":\"x\",\"outcome\":\"ok\",\"seq\":0,\"subject\":\"a\\\\\",\"time\":0}",
		"{\"component\":\"cli\",\"event\":\"x\",\"outcome\":\"ok\",\"seq\":0,\"subject\":\"\\\\x41\",\"time\":0}",
		"{\"component\":\"cli\",\"event\":\"x\",\"outcome\":\"ok\",\"seq\":0,\"subject\":\"\xc2\x85\",\"time\":0}",
		"{\"component\":\"cli\",\"event\":\"x\",\"outcome\":\"ok\",\"seq\":0,\"subject\":\"\xff\",\"time\":0}",
		"{\"component\":\"cli\",\"event\":\"x\",\"fields\":{},\"outcome\":\"ok\",\"seq\":0,\"time\":0}",
		"{\"component\":\"cli\",\"event\":\"x\",\"fields\":{\"b\":1,\"a\":2},\"outcome\":\"ok\",\"seq\":0,\"time\":0}",
		"{\"component\":\"cli\",\"event\":\"x\",\"fields\":{\"a\":1,\"a\":2},\"outcome\":\"ok\",\"seq\":0,\"time\":0}",
		"{\"component\":\"cli\",\"event\":\"x\",\"fields\":{\"a\":true},\"outcome\":\"ok\",\"seq\":0,\"time\":0}",
		"{\"component\":\"cli\",\"event\":\"x\",\"outcome\":\"ok\",\"seq\":0,\"time\":0,\"zzz\":1}",
		"{\"component\":\"cli\",\"component\":\"cli\",\"event\":\"x\",\"outcome\":\"ok\",\"seq\":0,\"time\":0}",
	};
	aud_entry pe;
	creto_err e;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = aud_entry_parse(bad[i], strlen(bad[i]), &pe, &e);
		if (rc != CRETO_EREJECT)
			fail_msg("accepted bad entry %zu: %s", i, bad[i]);
	}
	const char *good = "{\"component\":\"cli\",\"event\":\"x\",\"fields\":{\"a\":-9223372036854775808},"
			   "\"outcome\":\"ok\",\"seq\":0,\"subject\":\"\\\\xff \\\\\\\\ \\\" \xc3\xa9\",\"time\":0}";
	assert_int_equal(aud_entry_parse(good, strlen(good), &pe, &e), 0);
}

/* ---- tree ---- */

#define NLEAF 70
static uint8_t leaves[NLEAF][32];

static void brute_mth(size_t lo, size_t n, uint8_t out[32])
{
	if (n == 1) {
		memcpy(out, leaves[lo], 32);
		return;
	}
	size_t k = 1;
	while (k * 2 < n)
		k *= 2;
	uint8_t l[32], r[32];
	brute_mth(lo, k, l);
	brute_mth(lo + k, n - k, r);
	aud_node_hash(l, r, out);
}

static int mem_node(void *ctx, unsigned level, uint64_t index, uint8_t out[32], creto_err *e)
{
	(void)ctx;
	(void)e;
	brute_mth((size_t)(index << level), (size_t)1 << level, out);
	return 0;
}

static void test_tree_proofs(void **state)
{
	(void)state;
	for (int i = 0; i < NLEAF; i++) {
		char s[16];
		snprintf(s, sizeof(s), "leaf %d", i);
		aud_leaf_hash(s, strlen(s), leaves[i]);
	}
	/* RFC 6962 empty tree */
	aud_frontier f;
	memset(&f, 0, sizeof(f));
	uint8_t r[32], r2[32];
	aud_frontier_root(&f, r);
	uint8_t empty[32];
	unsigned dl;
	EVP_Digest("", 0, empty, &dl, EVP_sha256(), NULL);
	assert_memory_equal(r, empty, 32);
	creto_err e;
	static uint8_t path[AUD_LEVELS][32];
	static uint8_t roots[NLEAF + 1][32];
	for (uint64_t n = 1; n <= NLEAF; n++) {
		assert_int_equal(aud_frontier_push(&f, leaves[n - 1], NULL, NULL), 0);
		aud_frontier_root(&f, r);
		brute_mth(0, n, r2);
		assert_memory_equal(r, r2, 32);
		assert_int_equal(aud_root_at(mem_node, NULL, n, r2, &e), 0);
		assert_memory_equal(r, r2, 32);
		memcpy(roots[n], r, 32);
		for (uint64_t i = 0; i < n; i++) {
			size_t plen;
			assert_int_equal(aud_inclusion_proof(mem_node, NULL, i, n, path, &plen, &e), 0);
			assert_true(creto_audit_verify_inclusion(i, n, leaves[i], (const uint8_t(*)[32])path,
								 plen, r));
			/* wrong index, wrong leaf, truncated path: refused */
			assert_false(creto_audit_verify_inclusion(i, n, leaves[(i + 1) % NLEAF],
								  (const uint8_t(*)[32])path, plen, r));
			if (plen > 0)
				assert_false(creto_audit_verify_inclusion(
					i, n, leaves[i], (const uint8_t(*)[32])path, plen - 1, r));
		}
	}
	for (uint64_t n = 1; n <= NLEAF; n++)
		for (uint64_t m = 1; m <= n; m++) {
			size_t plen;
			assert_int_equal(aud_consistency_proof(mem_node, NULL, m, n, path, &plen, &e), 0);
			assert_true(creto_audit_verify_consistency(m, n, roots[m], roots[n],
								   (const uint8_t(*)[32])path, plen));
			if (m < n && m > 1)
				assert_false(creto_audit_verify_consistency(
					m, n, roots[m - 1], roots[n], (const uint8_t(*)[32])path, plen));
		}
}

/* ---- checkpoints ---- */

static void test_checkpoint_key_types(void **state)
{
	(void)state;
	creto_alg algs[] = {CRETO_ALG_ED25519, CRETO_ALG_ECDSA_P256, CRETO_ALG_ECDSA_P384,
			    CRETO_ALG_MLDSA44, CRETO_ALG_HYBRID};
	uint8_t root[32];
	memset(root, 0xab, 32);
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		creto_signer *s = NULL, *other = NULL;
		creto_err e;
		assert_int_equal(creto_signer_generate(algs[i], &s, &e), 0);
		assert_int_equal(creto_signer_generate(algs[i], &other, &e), 0);
		char *note;
		size_t nl;
		assert_int_equal(aud_note_sign(s, "example.com/log", 12345, root, &note, &nl, &e), 0);
		aud_checkpoint cp;
		assert_int_equal(aud_note_verify(note, nl, creto_signer_pubkey(s), &cp, &e), 0);
		assert_int_equal(cp.size, 12345);
		assert_string_equal(cp.origin, "example.com/log");
		assert_memory_equal(cp.root, root, 32);
		assert_int_equal(aud_note_verify(note, nl, creto_signer_pubkey(other), &cp, &e),
				 CRETO_EREJECT);
		/* change the size line: the signature no longer verifies */
		char *forged = strdup(note);
		forged[strlen("example.com/log\n")] = '9';
		assert_int_equal(aud_note_verify(forged, nl, creto_signer_pubkey(s), &cp, &e), CRETO_EREJECT);
		free(forged);
		if (algs[i] == CRETO_ALG_ED25519) {
			/* key id = SHA-256(name || 0x0A || 0x01 || pk)[:4] (C2SP signed-note) */
			size_t pkl;
			const uint8_t *pk = creto_pubkey_raw(creto_signer_pubkey(s), &pkl);
			uint8_t buf[64], d[32];
			memcpy(buf, "example.com/log\n\x01", 17);
			memcpy(buf + 17, pk, 32);
			EVP_Digest(buf, 49, d, NULL, EVP_sha256(), NULL);
			const char *sl = strstr(note, "\xe2\x80\x94 example.com/log ");
			assert_non_null(sl);
			sl += strlen("\xe2\x80\x94 example.com/log ");
			uint8_t blob[80];
			size_t bl;
			assert_int_equal(creto_b64_decode(blob, sizeof(blob), &bl, sl, strlen(sl) - 1, 0), 0);
			assert_int_equal(bl, 68);
			assert_memory_equal(blob, d, 4);
			/* the whole note text for a known root */
			assert_memory_equal(note, "example.com/log\n12345\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n\n", 67);
		}
		free(note);
		creto_signer_free(s);
		creto_signer_free(other);
	}
	static const char *bad[] = {
		"o\n1\nAAAA\n\n\xe2\x80\x94 o AAAAAAAAAA==\n",                    /* short root */
		"o\n01\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n\n\xe2\x80\x94 o AAAAAAAAAA==\n",
		"o\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\next\n\n\xe2\x80\x94 o AAAAAAAAAA==\n",
		"o\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n\n",
		"o\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n\n- o AAAAAAAAAA==\n",
		"o\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n\n\xe2\x80\x94 o AAAAAAAAAA==",
		"o\n1\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n\n\xe2\x80\x94 o\tAAAAAAAAAA==\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aud_checkpoint cp;
		creto_err e;
		if (aud_note_parse(bad[i], strlen(bad[i]), &cp, &e) != CRETO_EREJECT)
			fail_msg("accepted bad checkpoint %zu", i);
	}
}

/* ---- the writer ---- */

typedef struct fake_clock {
	pthread_mutex_t mu;
	int64_t t;
} fake_clock;

static int64_t fake_now(void *ctx)
{
	fake_clock *c = ctx;
	pthread_mutex_lock(&c->mu);
	int64_t t = c->t;
	pthread_mutex_unlock(&c->mu);
	return t;
}

static void test_log_roundtrip(void **state)
{
	(void)state;
	char dir[600];
	logdir(dir, sizeof(dir), "rt");
	creto_err e;
	assert_int_equal(creto_audit_init(dir, "unit.example/rt", &e), 0);
	assert_int_equal(creto_audit_init(dir, "unit.example/rt", &e), CRETO_EUSAGE);
	creto_signer *s;
	assert_int_equal(creto_signer_generate(CRETO_ALG_ED25519, &s, &e), 0);
	fake_clock fc = {PTHREAD_MUTEX_INITIALIZER, 1800000000};
	creto_clock clk = {fake_now, &fc};
	creto_audit_opts o = {.clock = &clk, .signer = s};
	creto_audit *a;
	assert_int_equal(creto_audit_open(dir, &o, &a, &e), 0);
	creto_audit *a2;
	assert_int_equal(creto_audit_open(dir, &o, &a2, &e), CRETO_EOP);
	assert_non_null(strstr(e.msg, "in use"));
	for (int i = 0; i < 100; i++) {
		char subj[32];
		snprintf(subj, sizeof(subj), "agent-%d\xff", i);
		creto_event ev = {"gateway", "request", "ok", subj, NULL, NULL, NULL, 0};
		uint64_t seq;
		assert_int_equal(creto_audit_append(a, &ev, &seq, &e), 0);
		assert_int_equal(seq, (uint64_t)i);
		if (i == 49)
			assert_int_equal(creto_audit_checkpoint(a, &e), 0);
	}
	/* the clock goes back: clamped, recorded once */
	fc.t = 1700000000;
	creto_event ev = {"cli", "late", "ok", NULL, NULL, NULL, NULL, 0};
	assert_int_equal(creto_audit_append(a, &ev, NULL, &e), 0);
	assert_int_equal(creto_audit_append(a, &ev, NULL, &e), 0);
	assert_int_equal(creto_audit_size(a), 103);
	/* a historical time earlier than the last entry: clamped, kept as a field */
	uint64_t seq;
	assert_int_equal(creto_audit_append_at(a, &ev, 1600000000000000, &seq, &e), 0);
	assert_int_equal(seq, 103);
	creto_event_sink sink = creto_audit_sink(a);
	assert_int_equal(creto_event_emit(&sink, &ev), 0);
	assert_int_equal(creto_audit_checkpoint(a, &e), 0);
	/* idle: a second checkpoint adds a heartbeat first */
	assert_int_equal(creto_audit_checkpoint(a, &e), 0);
	assert_int_equal(creto_audit_size(a), 106);
	creto_audit_close(a);

	creto_audit_reader *r;
	assert_int_equal(creto_audit_reader_open(dir, &r, &e), 0);
	uint64_t size, first;
	assert_int_equal(creto_audit_reader_size(r, &size, &first, &e), 0);
	assert_int_equal(size, 106);
	assert_int_equal(first, 0);
	creto_audit_proof p;
	creto_audit_report rep;
	assert_int_equal(creto_audit_verify(dir, creto_signer_pubkey(s), NULL, 0, &rep, &e), 0);
	for (uint64_t i = 0; i < size; i++) {
		assert_int_equal(creto_audit_reader_prove(r, i, 0, &p, &e), 0);
		assert_true(creto_audit_verify_inclusion(i, size, p.leaf, (const uint8_t(*)[32])p.path,
							 p.len, p.root));
		assert_memory_equal(p.root, rep.root, 32); /* the root of the entries themselves */
	}
	creto_audit_proof c;
	assert_int_equal(creto_audit_reader_prove(r, 0, 50, &p, &e), 0);
	assert_int_equal(creto_audit_reader_consistency(r, 50, 0, &c, &e), 0);
	assert_true(creto_audit_verify_consistency(50, size, p.root, c.root,
						   (const uint8_t(*)[32])c.path, c.len));
	/* entries 100 (clock record), 101, 102 share the clamped time */
	uint64_t at;
	assert_int_equal(creto_audit_reader_seek_time(r, (int64_t)1800000000 * 1000000, &at, &e), 0);
	assert_int_equal(at, 0);
	assert_int_equal(creto_audit_reader_seek_time(r, (int64_t)1800000001 * 1000000, &at, &e), 0);
	assert_int_equal(at, size);
	creto_audit_reader_close(r);

	assert_int_equal(creto_audit_verify(dir, creto_signer_pubkey(s), NULL, 0, &rep, &e), 0);
	assert_int_equal(rep.size, 106);
	assert_int_equal(rep.signed_size, 106);
	assert_int_equal(rep.checkpoints, 3); /* 50, 105, 106 (close: already signed) */
	char exp[700];
	snprintf(exp, sizeof(exp), "%s/all.jsonl", tmpdir);
	assert_int_equal(creto_audit_export(dir, 0, exp, &e), 0);
	assert_int_equal(creto_audit_verify(exp, creto_signer_pubkey(s), NULL, 0, &rep, &e), 0);
	assert_int_equal(rep.size, 106);
	creto_signer_free(s);
}

typedef struct worker {
	creto_audit *a;
	int id, n, fails;
} worker;

static void *submit_many(void *arg)
{
	worker *w = arg;
	for (int i = 0; i < w->n; i++) {
		creto_event_field f[2] = {{"i", NULL, i}, {"w", NULL, w->id}};
		creto_event ev = {"gateway", "request", "ok", "model-x", NULL, "agent", f, 2};
		creto_err e;
		if (creto_audit_submit(w->a, &ev, &e) != 0)
			w->fails++;
	}
	return NULL;
}

static void test_group_commit_threads(void **state)
{
	(void)state;
	char dir[600];
	logdir(dir, sizeof(dir), "gc");
	creto_err e;
	assert_int_equal(creto_audit_init(dir, "unit.example/gc", &e), 0);
	creto_signer *s;
	assert_int_equal(creto_signer_generate(CRETO_ALG_ED25519, &s, &e), 0);
	creto_audit_opts o = {.signer = s, .flush_ms = 5};
	creto_audit *a;
	assert_int_equal(creto_audit_open(dir, &o, &a, &e), 0);
	pthread_t t[4];
	worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (worker){a, i, 3000, 0};
		assert_int_equal(pthread_create(&t[i], NULL, submit_many, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].fails, 0);
	}
	assert_int_equal(creto_audit_sync(a, &e), 0);
	assert_int_equal(creto_audit_size(a), 12000);
	assert_true(creto_audit_healthy(a));
	creto_audit_close(a); /* writes the final checkpoint */
	creto_audit_report rep;
	assert_int_equal(creto_audit_verify(dir, creto_signer_pubkey(s), NULL, 0, &rep, &e), 0);
	assert_int_equal(rep.size, 12000);
	assert_int_equal(rep.signed_size, 12000);
	creto_signer_free(s);
}

static void test_budget_fail_closed(void **state)
{
	(void)state;
	char dir[600];
	logdir(dir, sizeof(dir), "budget");
	creto_err e;
	assert_int_equal(creto_audit_init(dir, "unit.example/b", &e), 0);
	creto_audit_opts o = {.size_budget = 200 * 1024};
	creto_audit *a;
	assert_int_equal(creto_audit_open(dir, &o, &a, &e), 0);
	static char subj[2000];
	memset(subj, 'x', sizeof(subj) - 1);
	creto_event ev = {"cli", "fill", "ok", subj, NULL, NULL, NULL, 0};
	int rc = 0, n = 0;
	while ((rc = creto_audit_append(a, &ev, NULL, &e)) == 0 && n < 10000)
		n++;
	assert_int_equal(rc, CRETO_EOP);
	assert_non_null(strstr(e.msg, "size budget exhausted"));
	assert_false(creto_audit_healthy(a));
	assert_int_equal(creto_audit_submit(a, &ev, &e), CRETO_EOP);
	creto_audit_close(a);
	/* the 80% warning is in the log */
	creto_audit_reader *r;
	assert_int_equal(creto_audit_reader_open(dir, &r, &e), 0);
	uint64_t size;
	assert_int_equal(creto_audit_reader_size(r, &size, NULL, &e), 0);
	assert_true(size > 10 && size < 10000);
	creto_audit_reader_close(r);
}

/* Archive at an odd size whose frontier is all low (unstored) levels, then
 * prove every later entry and keep appending. */
static void test_archive_then_prove(void **state)
{
	(void)state;
	char dir[600], out[700];
	logdir(dir, sizeof(dir), "arch");
	snprintf(out, sizeof(out), "%s/arch-13.jsonl", tmpdir);
	creto_err e;
	assert_int_equal(creto_audit_init(dir, "unit.example/arch", &e), 0);
	creto_signer *s;
	assert_int_equal(creto_signer_generate(CRETO_ALG_ED25519, &s, &e), 0);
	creto_audit_opts o = {.signer = s};
	creto_audit *a;
	assert_int_equal(creto_audit_open(dir, &o, &a, &e), 0);
	creto_event ev = {"cli", "x", "ok", NULL, NULL, NULL, NULL, 0};
	char *cp13 = NULL;
	size_t cp13len = 0;
	for (int i = 0; i < 37; i++) {
		assert_int_equal(creto_audit_append(a, &ev, NULL, &e), 0);
		if (i == 12) {
			assert_int_equal(creto_audit_checkpoint(a, &e), 0);
			assert_int_equal(creto_audit_last_checkpoint(a, &cp13, &cp13len, &e), 0);
		}
	}
	assert_int_equal(creto_audit_archive(a, cp13, cp13len, out, &e), 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(creto_audit_append(a, &ev, NULL, &e), 0);
	creto_audit_close(a);
	creto_audit_report rep;
	assert_int_equal(creto_audit_verify(dir, creto_signer_pubkey(s), cp13, cp13len, &rep, &e), 0);
	assert_int_equal(rep.first, 13);
	assert_int_equal(rep.size, 58); /* 37 + the archive record + 20 */
	uint8_t root58[32];
	memcpy(root58, rep.root, 32); /* from the entries, independent of the stored nodes */
	assert_int_equal(creto_audit_verify(out, creto_signer_pubkey(s), cp13, cp13len, &rep, &e), 0);
	assert_int_equal(rep.size, 13);
	creto_audit_reader *r;
	assert_int_equal(creto_audit_reader_open(dir, &r, &e), 0);
	creto_audit_proof p;
	for (uint64_t n = 14; n <= 58; n += 11)
		for (uint64_t i = 13; i < n; i++) {
			assert_int_equal(creto_audit_reader_prove(r, i, n, &p, &e), 0);
			assert_true(creto_audit_verify_inclusion(i, n, p.leaf, (const uint8_t(*)[32])p.path,
								 p.len, p.root));
			if (n == 58)
				assert_memory_equal(p.root, root58, 32);
		}
	assert_int_equal(creto_audit_reader_prove(r, 3, 58, &p, &e), CRETO_EREJECT); /* archived */
	creto_audit_reader_close(r);
	free(cp13);
	creto_signer_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry_known_bytes),
		cmocka_unit_test(test_entry_encode_refuses),
		cmocka_unit_test(test_entry_parse_strict),
		cmocka_unit_test(test_tree_proofs),
		cmocka_unit_test(test_checkpoint_key_types),
		cmocka_unit_test(test_log_roundtrip),
		cmocka_unit_test(test_group_commit_threads),
		cmocka_unit_test(test_budget_fail_closed),
		cmocka_unit_test(test_archive_then_prove),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
