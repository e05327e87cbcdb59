/* test_nhi.c - unit tests for the NHI store (migrations, status, generation),
 * the encrypted backup (tamper, truncation, wrong wrap key, never
 * half-loaded), the LRU cache and the resolver (signatures, expiry,
 * revocation, concurrency).  The data key is wrapped here by an OpenSSL
 * RFC 5649 wrapper; the HSM path is covered by test_nhi_hsm.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creto/hsm.h"
#include "creto/nhi.h"
#include "nhi/cache.h"
#include "nhi/internal.h"
#include "util/file.h"

static char dir[256];

static const char *path(const char *name)
{
	static char p[4][512];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
	return p[k];
}

static int setup(void **state)
{
	(void)state;
	return tmpdir_make(dir, sizeof(dir), "unit_nhi");
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove(dir);
}

static void agent(creto_nhi_agent *a, const char *id, const char *scopes)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->id, sizeof(a->id), "%s", id);
	snprintf(a->name, sizeof(a->name), "Agent %s", id);
	snprintf(a->scopes, sizeof(a->scopes), "%s", scopes);
	a->created = 1000;
}

static creto_nhi_store *new_store(const char *name)
{
	creto_err e;
	unlink(path(name));
	assert_int_equal(creto_nhi_store_init(path(name), "iss-test", &e), CRETO_OK);
	creto_nhi_store *s = NULL;
	assert_int_equal(creto_nhi_store_open(path(name), 0, &s, &e), CRETO_OK);
	return s;
}

/* ---- store ---- */
static void test_store_basic(void **state)
{
	(void)state;
	creto_err e;
	creto_nhi_store *s = new_store("basic.db");
	assert_string_equal(creto_nhi_store_issuer(s), "iss-test");
	creto_nhi_agent a, b;
	agent(&a, "agent-1", "model:m tool:search");
	a.not_before = 100;
	a.not_after = 5000;
	assert_int_equal(creto_nhi_store_add(s, &a, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_add(s, &a, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "already exists"));
	assert_int_equal(creto_nhi_store_get(s, "agent-1", &b, &e), CRETO_OK);
	assert_string_equal(b.scopes, "model:m tool:search");
	assert_int_equal(b.not_after, 5000);
	assert_int_equal(b.status, CRETO_NHI_ACTIVE);
	assert_int_equal(creto_nhi_store_get(s, "nope", &b, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "unknown agent 'nope'"));
	/* validation */
	agent(&b, "bad/id", "x");
	assert_int_equal(creto_nhi_store_add(s, &b, &e), CRETO_EREJECT);
	agent(&b, "ok", "x  y");
	assert_int_equal(creto_nhi_store_add(s, &b, &e), CRETO_EREJECT);
	agent(&b, "ok", "x ");
	assert_int_equal(creto_nhi_store_add(s, &b, &e), CRETO_EREJECT);
	agent(&b, "ok", "x x");
	assert_int_equal(creto_nhi_store_add(s, &b, &e), CRETO_EREJECT);
	agent(&b, "ok", "x");
	b.not_before = 10;
	b.not_after = 5;
	assert_int_equal(creto_nhi_store_add(s, &b, &e), CRETO_EREJECT);
	agent(&b, "ok", "x");
	snprintf(b.issuer_kid, sizeof(b.issuer_kid), "XYZ");
	assert_int_equal(creto_nhi_store_add(s, &b, &e), CRETO_EREJECT);
	/* status and generation */
	uint64_t g0 = creto_nhi_store_generation(s);
	assert_int_equal(creto_nhi_store_set_status(s, "agent-1", CRETO_NHI_SUSPENDED, 1000, &e), CRETO_OK);
	assert_true(creto_nhi_store_generation(s) > g0);
	assert_int_equal(creto_nhi_store_set_status(s, "agent-1", CRETO_NHI_ACTIVE, 1000, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_set_status(s, "agent-1", CRETO_NHI_REVOKED, 1000, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_set_status(s, "agent-1", CRETO_NHI_ACTIVE, 1000, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "final"));
	uint64_t n = 0;
	assert_int_equal(creto_nhi_store_count(s, &n, &e), CRETO_OK);
	assert_int_equal(n, 1);
	creto_nhi_store_free(s);
	/* persisted generation survives reopening */
	assert_int_equal(creto_nhi_store_open(path("basic.db"), 1, &s, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_generation(s), 3);
	creto_nhi_store_free(s);
	creto_nhi_store_free(NULL);
	assert_int_equal(creto_nhi_store_init(path("basic.db"), NULL, &e), CRETO_EUSAGE);
}

static void test_store_migration(void **state)
{
	(void)state;
	/* a version-1 store, as the first release wrote it */
	sqlite3 *db = NULL;
	unlink(path("v1.db"));
	assert_int_equal(sqlite3_open(path("v1.db"), &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "CREATE TABLE agents (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,"
				      " scopes TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN"
				      " ('active','suspended','revoked')), not_before INTEGER NOT NULL DEFAULT 0,"
				      " not_after INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL,"
				      " issuer_kid TEXT NOT NULL DEFAULT '') WITHOUT ROWID;"
				      "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;"
				      "INSERT INTO meta VALUES ('issuer','old');"
				      "INSERT INTO agents (id,name,scopes,status,created) VALUES ('a1','A','s','active',1);"
				      "PRAGMA user_version = 1; PRAGMA application_id = 1313360177;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	creto_err e;
	creto_nhi_store *s = NULL;
	assert_int_equal(creto_nhi_store_open(path("v1.db"), 1, &s, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "needs migration"));
	assert_int_equal(creto_nhi_store_open(path("v1.db"), 0, &s, &e), CRETO_OK);
	creto_nhi_agent a;
	assert_int_equal(creto_nhi_store_get(s, "a1", &a, &e), CRETO_OK);
	assert_string_equal(creto_nhi_store_issuer(s), "old");
	assert_int_equal(creto_nhi_store_generation(s), 0);
	creto_nhi_store_free(s);
	/* a newer schema and a foreign database are refused */
	assert_int_equal(sqlite3_open(path("v1.db"), &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(creto_nhi_store_open(path("v1.db"), 0, &s, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "schema version 99"));
	unlink(path("other.db"));
	assert_int_equal(sqlite3_open(path("other.db"), &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(creto_nhi_store_open(path("other.db"), 0, &s, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "not an NHI store"));
	assert_int_equal(creto_nhi_store_open(path("missing.db"), 0, &s, &e), CRETO_EOP);
}

/* An in-memory store (a backup opened in memory) lives in one buffer that
 * is never reallocated: it grows into fixed slack, the image pointer stays
 * the same, and outgrowing it is a clean error, not a realloc that would
 * leave plaintext in freed memory.  A bad image is refused (the copy is
 * wiped and freed by the store: ASan/LSan check the frees). */
static void test_image_fixed(void **state)
{
	(void)state;
	creto_err e;
	creto_nhi_store *f = new_store("img.db");
	creto_nhi_agent a;
	agent(&a, "seed", "s");
	assert_int_equal(creto_nhi_store_add(f, &a, &e), CRETO_OK);
	uint8_t *img = NULL;
	size_t len = 0;
	assert_int_equal(creto_nhi_store_serialize(f, &img, &len, &e), CRETO_OK);
	creto_nhi_store_free(f);
	creto_nhi_store *s = NULL;
	assert_int_equal(creto_nhi_store_open_image(img, len, &s, &e), CRETO_OK);
	size_t n0 = 0;
	const uint8_t *p0 = nhi_store_image(s, &n0);
	assert_non_null(p0);
	int rc = CRETO_OK, added = 0;
	for (int i = 0; i < 5000 && rc == CRETO_OK; i++) {
		char id[32];
		snprintf(id, sizeof(id), "grow-%04d", i);
		agent(&a, id, "s");
		memset(a.name, 'n', CRETO_NHI_NAME_MAX);
		a.name[CRETO_NHI_NAME_MAX] = '\0';
		size_t o = 0; /* ~1.8 KiB of distinct scopes */
		for (int k = 0; k < 60; k++)
			o += (size_t)snprintf(a.scopes + o, sizeof(a.scopes) - o, "%sscope-padding-padding-%02d",
					      k ? " " : "", k);
		rc = creto_nhi_store_add(s, &a, &e);
		if (rc == CRETO_OK)
			added++;
	}
	assert_int_equal(rc, CRETO_EOP);
	assert_non_null(strstr(e.msg, "in-memory store full"));
	assert_true(added > 100);
	size_t n1 = 0;
	assert_ptr_equal(nhi_store_image(s, &n1), p0); /* never moved */
	assert_true(n1 > n0);
	/* still readable after the refused write */
	assert_int_equal(creto_nhi_store_get(s, "seed", &a, &e), CRETO_OK);
	creto_nhi_store_free(s);
	/* not an SQLite image: refused, the buffers freed (LSan) */
	uint8_t *junk = sqlite3_malloc64(4096);
	assert_non_null(junk);
	memset(junk, 0x5a, 4096);
	assert_int_equal(creto_nhi_store_open_image(junk, 4096, &s, &e), CRETO_EREJECT);
	assert_null(s);
}

/* ---- backup with an OpenSSL RFC 5649 wrapper ---- */
struct kw {
	uint8_t kek[32];
};

static int kw_run(const uint8_t kek[32], int enc, const uint8_t *in, size_t len, uint8_t *out,
		  size_t *outlen)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, m = 0, ok;
	EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	ok = EVP_CipherInit_ex(c, EVP_aes_256_wrap_pad(), NULL, kek, NULL, enc) == 1 &&
	     EVP_CipherUpdate(c, out, &n, in, (int)len) == 1 && EVP_CipherFinal_ex(c, out + n, &m) == 1;
	EVP_CIPHER_CTX_free(c);
	*outlen = (size_t)(n + m);
	return ok;
}

static int t_wrap(void *ctx, const uint8_t *key, size_t len, uint8_t **w, size_t *wlen, creto_err *e)
{
	struct kw *k = ctx;
	*w = malloc(len + 16);
	if (!kw_run(k->kek, 1, key, len, *w, wlen))
		return creto_err_set(e, CRETO_EOP, "wrap failed");
	return CRETO_OK;
}

static int t_unwrap(void *ctx, const uint8_t *w, size_t wlen, uint8_t *key, size_t cap, size_t *klen,
		    creto_err *e)
{
	struct kw *k = ctx;
	uint8_t buf[600];
	if (wlen > sizeof(buf) || !kw_run(k->kek, 0, w, wlen, buf, klen) || *klen > cap)
		return creto_err_set(e, CRETO_EREJECT, "unwrap failed (wrong key or tampered)");
	memcpy(key, buf, *klen);
	return CRETO_OK;
}

static void wrapper(creto_nhi_wrapper *w, struct kw *k, const char *id)
{
	memset(w, 0, sizeof(*w));
	w->key_id = id;
	w->wrap = t_wrap;
	w->unwrap = t_unwrap;
	w->ctx = k;
}

static uint8_t *slurp(const char *p, size_t *n)
{
	uint8_t *b = NULL;
	creto_err e;
	assert_int_equal(creto_file_read(p, 1 << 26, &b, n, &e), CRETO_OK);
	return b;
}

static void spit(const char *p, const uint8_t *b, size_t n)
{
	creto_err e;
	assert_int_equal(creto_file_write_atomic(p, b, n, 0600, &e), CRETO_OK);
}

/* ---- agent keys (schema 3) ---- */
static int count_keys(const creto_nhi_agent_key *k, void *arg)
{
	(void)k;
	(*(int *)arg)++;
	return 0;
}

static void test_agent_keys(void **state)
{
	(void)state;
	creto_err e;
	creto_nhi_store *s = new_store("keys.db");
	creto_nhi_agent a;
	agent(&a, "agent-a", "model:m");
	assert_int_equal(creto_nhi_store_add(s, &a, &e), CRETO_OK);
	agent(&a, "agent-b", "model:m");
	assert_int_equal(creto_nhi_store_add(s, &a, &e), CRETO_OK);
	creto_signer *ed = NULL, *ec = NULL, *ml = NULL;
	assert_int_equal(creto_signer_generate(CRETO_ALG_ED25519, &ed, &e), CRETO_OK);
	assert_int_equal(creto_signer_generate(CRETO_ALG_ECDSA_P256, &ec, &e), CRETO_OK);
	assert_int_equal(creto_signer_generate(CRETO_ALG_MLDSA44, &ml, &e), CRETO_OK);
	creto_nhi_agent_key k;
	assert_int_equal(creto_nhi_store_key_add(s, "agent-a", creto_signer_pubkey(ed), 0, 0, 5, &k, &e), CRETO_OK);
	assert_int_equal(k.alg, CRETO_JWS_EDDSA);
	assert_string_equal(k.kid, creto_pubkey_id(creto_signer_pubkey(ed)));
	assert_int_equal(creto_nhi_store_key_add(s, "agent-a", creto_signer_pubkey(ec), 100, 200, 5, &k, &e),
			 CRETO_OK);
	assert_int_equal(k.alg, CRETO_JWS_ES256);
	assert_int_equal(k.publen, 65);
	/* the same key twice, or for another agent: refused */
	assert_int_equal(creto_nhi_store_key_add(s, "agent-a", creto_signer_pubkey(ed), 0, 0, 5, NULL, &e),
			 CRETO_EREJECT);
	assert_int_equal(creto_nhi_store_key_add(s, "agent-b", creto_signer_pubkey(ed), 0, 0, 5, NULL, &e),
			 CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "already registered"));
	/* other algorithms, unknown agents, a bad window */
	assert_int_equal(creto_nhi_store_key_add(s, "agent-b", creto_signer_pubkey(ml), 0, 0, 5, NULL, &e),
			 CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "agent keys are ed25519"));
	assert_int_equal(creto_nhi_store_key_add(s, "nobody", creto_signer_pubkey(ec), 0, 0, 5, NULL, &e),
			 CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "unknown agent"));
	creto_signer *ec2 = NULL;
	assert_int_equal(creto_signer_generate(CRETO_ALG_ECDSA_P256, &ec2, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_key_add(s, "agent-b", creto_signer_pubkey(ec2), 300, 200, 5, NULL, &e),
			 CRETO_EREJECT);
	/* get round-trips to the same public key */
	creto_nhi_agent_key g;
	assert_int_equal(creto_nhi_store_key_get(s, "agent-a", k.kid, &g, &e), CRETO_OK);
	assert_int_equal(g.not_before, 100);
	assert_int_equal(g.not_after, 200);
	creto_pubkey *pk = NULL;
	assert_int_equal(creto_nhi_agent_key_pubkey(&g, &pk, &e), CRETO_OK);
	assert_true(creto_pubkey_equal(pk, creto_signer_pubkey(ec)));
	creto_pubkey_free(pk);
	assert_int_equal(creto_nhi_store_key_get(s, "agent-b", k.kid, &g, &e), CRETO_EREJECT);
	int n = 0;
	assert_int_equal(creto_nhi_store_key_list(s, NULL, count_keys, &n, &e), CRETO_OK);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(creto_nhi_store_key_list(s, "agent-b", count_keys, &n, &e), CRETO_OK);
	assert_int_equal(n, 0);
	/* remove: gone, and removing again is refused */
	assert_int_equal(creto_nhi_store_key_remove(s, "agent-a", k.kid, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_key_get(s, "agent-a", k.kid, &g, &e), CRETO_EREJECT);
	assert_int_equal(creto_nhi_store_key_remove(s, "agent-a", k.kid, &e), CRETO_EREJECT);
	/* at most CRETO_NHI_AGENT_KEYS_MAX per agent */
	creto_signer *many[CRETO_NHI_AGENT_KEYS_MAX + 1];
	for (int i = 0; i <= CRETO_NHI_AGENT_KEYS_MAX; i++) {
		assert_int_equal(creto_signer_generate(CRETO_ALG_ED25519, &many[i], &e), CRETO_OK);
		int rc = creto_nhi_store_key_add(s, "agent-b", creto_signer_pubkey(many[i]), 0, 0, 5, NULL, &e);
		assert_int_equal(rc, i < CRETO_NHI_AGENT_KEYS_MAX ? CRETO_OK : CRETO_EREJECT);
		creto_signer_free(many[i]);
	}
	/* a revoked agent gets no new key */
	assert_int_equal(creto_nhi_store_set_status(s, "agent-a", CRETO_NHI_REVOKED, 7, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_key_add(s, "agent-a", creto_signer_pubkey(ec2), 0, 0, 5, NULL, &e),
			 CRETO_EREJECT);
	creto_nhi_store_free(s);
	creto_signer_free(ed);
	creto_signer_free(ec);
	creto_signer_free(ec2);
	creto_signer_free(ml);
}

/* The store's lookup cache never answers past a change: a status change
 * or key removal through the handle is seen at once, a change by another
 * connection after creto_nhi_store_refresh (and not before: the cached
 * answer is the one the gateway keeps until its next refresh). */
static void test_lookup_cache(void **state)
{
	(void)state;
	creto_err e;
	creto_nhi_store *s = new_store("lookup.db");
	creto_nhi_agent a;
	agent(&a, "agent-c", "model:m");
	assert_int_equal(creto_nhi_store_add(s, &a, &e), CRETO_OK);
	creto_signer *ed = NULL;
	assert_int_equal(creto_signer_generate(CRETO_ALG_ED25519, &ed, &e), CRETO_OK);
	creto_nhi_agent_key k;
	assert_int_equal(creto_nhi_store_key_add(s, "agent-c", creto_signer_pubkey(ed), 0, 0, 5, &k, &e), CRETO_OK);
	char kid[CRETO_KEYID_HEXLEN + 1];
	memcpy(kid, k.kid, sizeof(kid));
	creto_nhi_agent got;
	/* twice each: the second answer comes from the cache */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(creto_nhi_store_get(s, "agent-c", &got, &e), CRETO_OK);
		assert_int_equal(got.status, CRETO_NHI_ACTIVE);
		assert_int_equal(creto_nhi_store_agent_key(s, "agent-c", kid, &got, &k, &e), CRETO_OK);
		assert_string_equal(k.kid, kid);
	}
	/* through the handle: seen at once */
	assert_int_equal(creto_nhi_store_set_status(s, "agent-c", CRETO_NHI_SUSPENDED, 10, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_get(s, "agent-c", &got, &e), CRETO_OK);
	assert_int_equal(got.status, CRETO_NHI_SUSPENDED);
	assert_int_equal(creto_nhi_store_agent_key(s, "agent-c", kid, &got, &k, &e), CRETO_OK);
	assert_int_equal(got.status, CRETO_NHI_SUSPENDED);
	assert_int_equal(creto_nhi_store_set_status(s, "agent-c", CRETO_NHI_ACTIVE, 11, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_agent_key(s, "agent-c", kid, &got, &k, &e), CRETO_OK);
	assert_int_equal(got.status, CRETO_NHI_ACTIVE);
	/* by another connection: after the refresh */
	creto_nhi_store *o = NULL;
	assert_int_equal(creto_nhi_store_open(path("lookup.db"), 0, &o, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_set_status(o, "agent-c", CRETO_NHI_REVOKED, 12, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_refresh(s, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_get(s, "agent-c", &got, &e), CRETO_OK);
	assert_int_equal(got.status, CRETO_NHI_REVOKED);
	assert_int_equal(creto_nhi_store_agent_key(s, "agent-c", kid, &got, &k, &e), CRETO_OK);
	assert_int_equal(got.status, CRETO_NHI_REVOKED);
	/* a key removed, through the handle and by the other connection */
	agent(&a, "agent-d", "model:m");
	assert_int_equal(creto_nhi_store_add(s, &a, &e), CRETO_OK);
	creto_signer *ed2 = NULL;
	assert_int_equal(creto_signer_generate(CRETO_ALG_ED25519, &ed2, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_key_add(s, "agent-d", creto_signer_pubkey(ed2), 0, 0, 5, &k, &e), CRETO_OK);
	memcpy(kid, k.kid, sizeof(kid));
	assert_int_equal(creto_nhi_store_agent_key(s, "agent-d", kid, &got, &k, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_key_remove(s, "agent-d", kid, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_agent_key(s, "agent-d", kid, &got, &k, &e), CRETO_EREJECT);
	assert_int_equal(creto_nhi_store_key_add(s, "agent-d", creto_signer_pubkey(ed2), 0, 0, 6, &k, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_agent_key(s, "agent-d", kid, &got, &k, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_refresh(o, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_key_remove(o, "agent-d", kid, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_refresh(s, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_agent_key(s, "agent-d", kid, &got, &k, &e), CRETO_EREJECT);
	/* many agents: the cache stays bounded and keeps answering right */
	for (int i = 0; i < 1500; i++) {
		char id[32];
		snprintf(id, sizeof(id), "bulk-%04d", i);
		agent(&a, id, "model:m");
		assert_int_equal(creto_nhi_store_add(s, &a, &e), CRETO_OK);
	}
	for (int r = 0; r < 2; r++)
		for (int i = 0; i < 1500; i++) {
			char id[32];
			snprintf(id, sizeof(id), "bulk-%04d", i);
			assert_int_equal(creto_nhi_store_get(s, id, &got, &e), CRETO_OK);
			assert_string_equal(got.id, id);
		}
	creto_nhi_store_free(o);
	creto_nhi_store_free(s);
	creto_signer_free(ed);
	creto_signer_free(ed2);
}

/* A format-1 backup, written here independently from docs/nhi.md "Backup
 * format" (as the code before agent keys wrote it) around a schema-2 image,
 * still restores: the store is migrated to schema 3 on the way in.  A
 * format-1 header around a schema-3 image is refused. */
static void write_v1_backup(const char *p, struct kw *k, const uint8_t *img, size_t imglen)
{
	creto_err e;
	creto_hsm_keywrap kw;
	memset(&kw, 0, sizeof(kw));
	kw.wrap = t_wrap;
	kw.unwrap = t_unwrap;
	kw.ctx = k;
	creto_hsm_envelope env;
	assert_int_equal(creto_hsm_envelope_new(&kw, &env, &e), CRETO_OK);
	const char *kid = "pkcs11:token=t;object=nhi-backup-key";
	size_t kl = strlen(kid), wl = env.wrappedlen;
	size_t hl = 22 + kl + 2 + wl + 12 + 8, n = hl + imglen + 16;
	uint8_t *b = calloc(1, n);
	memcpy(b, "CRNHIBK\n", 8);
	b[9] = 1; /* format version 1, flags 0 */
	b[19] = 42; /* created = 42 */
	b[21] = (uint8_t)kl;
	memcpy(b + 22, kid, kl);
	b[22 + kl + 1] = (uint8_t)wl;
	memcpy(b + 24 + kl, env.wrapped, wl);
	memcpy(b + 24 + kl + wl, env.nonce, 12);
	for (int i = 0; i < 8; i++)
		b[36 + kl + wl + i] = (uint8_t)((uint64_t)imglen >> (56 - 8 * i));
	assert_int_equal(creto_hsm_seal(&env, b, hl, img, imglen, b + hl, b + hl + imglen, &e), CRETO_OK);
	creto_hsm_envelope_clear(&env);
	spit(p, b, n);
	free(b);
}

static void test_backup_v1(void **state)
{
	(void)state;
	creto_err e;
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "CREATE TABLE agents (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,"
				      " scopes TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN"
				      " ('active','suspended','revoked')), not_before INTEGER NOT NULL DEFAULT 0,"
				      " not_after INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL,"
				      " issuer_kid TEXT NOT NULL DEFAULT '') WITHOUT ROWID;"
				      "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;"
				      "ALTER TABLE agents ADD COLUMN status_changed INTEGER NOT NULL DEFAULT 0;"
				      "INSERT INTO meta VALUES ('issuer','old'), ('generation', '3');"
				      "INSERT INTO agents (id,name,scopes,status,created) VALUES ('a1','A','s','active',1);"
				      "PRAGMA user_version = 2; PRAGMA application_id = 1313360177;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_int64 il = 0;
	uint8_t *img = sqlite3_serialize(db, "main", &il, 0);
	sqlite3_close(db);
	assert_non_null(img);
	struct kw k;
	RAND_bytes(k.kek, 32);
	creto_nhi_wrapper w;
	wrapper(&w, &k, "pkcs11:token=t;object=nhi-backup-key");
	write_v1_backup(path("v1.bak"), &k, img, (size_t)il);
	/* restoring over a store file still at schema 2 (an upgrade): it is read
	 * (and migrated), so the revocation-is-final check still applies */
	spit(path("old2.db"), img, (size_t)il);
	assert_int_equal(sqlite3_open(path("old2.db"), &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE agents SET status = 'revoked' WHERE id = 'a1'", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(creto_nhi_backup_restore(path("v1.bak"), &w, path("old2.db"), NULL, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "revoked in"));
	unlink(path("from-v1.db"));
	creto_nhi_backup_info bi;
	assert_int_equal(creto_nhi_backup_restore(path("v1.bak"), &w, path("from-v1.db"), &bi, &e), CRETO_OK);
	assert_int_equal(bi.version, 1);
	assert_int_equal(bi.created, 42);
	creto_nhi_store *s = NULL;
	assert_int_equal(creto_nhi_store_open(path("from-v1.db"), 1, &s, &e), CRETO_OK); /* already schema 3 */
	creto_nhi_agent a;
	assert_int_equal(creto_nhi_store_get(s, "a1", &a, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_generation(s), 3);
	creto_signer *ed = NULL;
	assert_int_equal(creto_signer_generate(CRETO_ALG_ED25519, &ed, &e), CRETO_OK);
	creto_nhi_store_free(s);
	assert_int_equal(creto_nhi_store_open(path("from-v1.db"), 0, &s, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_key_add(s, "a1", creto_signer_pubkey(ed), 0, 0, 5, NULL, &e), CRETO_OK);
	/* a format-2 backup of it carries the key */
	assert_int_equal(creto_nhi_backup_write(s, &w, path("v2.bak"), 43, &e), CRETO_OK);
	creto_nhi_store_free(s);
	assert_int_equal(creto_nhi_backup_open(path("v2.bak"), &w, &s, &bi, &e), CRETO_OK);
	assert_int_equal(bi.version, 2);
	creto_nhi_agent_key key;
	assert_int_equal(creto_nhi_store_key_get(s, "a1", creto_pubkey_id(creto_signer_pubkey(ed)), &key, &e),
			 CRETO_OK);
	/* format 1 around a schema-3 image: not something creto wrote */
	uint8_t *img3 = NULL;
	size_t l3 = 0;
	assert_int_equal(creto_nhi_store_serialize(s, &img3, &l3, &e), CRETO_OK);
	creto_nhi_store_free(s);
	write_v1_backup(path("bad-v1.bak"), &k, img3, l3);
	sqlite3_free(img3);
	assert_int_equal(creto_nhi_backup_open(path("bad-v1.bak"), &w, &s, &bi, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "format version 1 holds schema version 3"));
	creto_signer_free(ed);
	sqlite3_free(img);
}

static void test_backup(void **state)
{
	(void)state;
	creto_err e;
	creto_nhi_store *s = new_store("bk.db");
	creto_nhi_agent a;
	assert_int_equal(creto_nhi_store_begin(s, &e), CRETO_OK);
	for (int i = 0; i < 200; i++) {
		char id[32];
		snprintf(id, sizeof(id), "agent-%03d", i);
		agent(&a, id, "model:m tool:t");
		assert_int_equal(creto_nhi_store_add(s, &a, &e), CRETO_OK);
	}
	assert_int_equal(creto_nhi_store_commit(s, &e), CRETO_OK);
	struct kw k1, k2;
	RAND_bytes(k1.kek, 32);
	RAND_bytes(k2.kek, 32);
	creto_nhi_wrapper w1, w2;
	wrapper(&w1, &k1, "pkcs11:token=t;object=nhi-backup-key");
	wrapper(&w2, &k2, "pkcs11:token=t;object=other");
	assert_int_equal(creto_nhi_backup_write(s, &w1, path("nhi.bak"), 1234567890, &e), CRETO_OK);
	creto_nhi_store_free(s);
	struct stat st;
	assert_int_equal(stat(path("nhi.bak"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* in-memory load */
	creto_nhi_backup_info bi;
	assert_int_equal(creto_nhi_backup_open(path("nhi.bak"), &w1, &s, &bi, &e), CRETO_OK);
	assert_int_equal(bi.version, CRETO_NHI_BACKUP_VERSION);
	assert_int_equal(bi.created, 1234567890);
	assert_string_equal(bi.key_id, "pkcs11:token=t;object=nhi-backup-key");
	assert_int_equal(creto_nhi_store_get(s, "agent-199", &a, &e), CRETO_OK);
	assert_string_equal(creto_nhi_store_issuer(s), "iss-test");
	/* the in-memory store is writable (revocations inside the enclave) */
	assert_int_equal(creto_nhi_store_set_status(s, "agent-199", CRETO_NHI_REVOKED, 1000, &e), CRETO_OK);
	creto_nhi_store_free(s);

	/* restore to a file */
	unlink(path("restored.db"));
	assert_int_equal(creto_nhi_backup_restore(path("nhi.bak"), &w1, path("restored.db"), NULL, &e),
			 CRETO_OK);
	assert_int_equal(creto_nhi_store_open(path("restored.db"), 1, &s, &e), CRETO_OK);
	uint64_t n = 0;
	assert_int_equal(creto_nhi_store_count(s, &n, &e), CRETO_OK);
	assert_int_equal(n, 200);
	creto_nhi_store_free(s);

	/* wrong wrap key */
	assert_int_equal(creto_nhi_backup_open(path("nhi.bak"), &w2, &s, NULL, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "does not unwrap with pkcs11:token=t;object=other"));
	assert_non_null(strstr(e.msg, "backup names pkcs11:token=t;object=nhi-backup-key"));
	assert_null(s);

	size_t len = 0;
	uint8_t *orig = slurp(path("nhi.bak"), &len);
	size_t before_len = 0;
	uint8_t *before = slurp(path("restored.db"), &before_len);
	/* flip one bit anywhere: header (AAD), wrapped key, nonce, ciphertext, tag */
	size_t hlen = 22 + strlen("pkcs11:token=t;object=nhi-backup-key") + 2 + 40 + 12 + 8;
	size_t offs[] = {0, 9, 11, 13, 23, hlen - 60, hlen - 20, hlen - 9, hlen - 1, hlen, hlen + 1000,
			 len - 17, len - 1};
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		uint8_t *t = malloc(len);
		memcpy(t, orig, len);
		t[offs[i]] ^= 0x01;
		spit(path("bad.bak"), t, len);
		free(t);
		creto_err_clear(&e);
		int rc = creto_nhi_backup_restore(path("bad.bak"), &w1, path("restored.db"), NULL, &e);
		if (rc != CRETO_EREJECT)
			fail_msg("bit flip at %zu: rc %d (%s)", offs[i], rc, e.msg);
	}
	/* truncated at every region and with trailing bytes */
	size_t cuts[] = {0, 5, 21, 30, hlen - 1, hlen, hlen + 10, len - 16, len - 1};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		spit(path("bad.bak"), orig, cuts[i]);
		creto_err_clear(&e);
		if (creto_nhi_backup_restore(path("bad.bak"), &w1, path("restored.db"), NULL, &e) !=
		    CRETO_EREJECT)
			fail_msg("truncation at %zu accepted (%s)", cuts[i], e.msg);
	}
	uint8_t *t = malloc(len + 1);
	memcpy(t, orig, len);
	t[len] = 0;
	spit(path("bad.bak"), t, len + 1);
	free(t);
	assert_int_equal(creto_nhi_backup_restore(path("bad.bak"), &w1, path("restored.db"), NULL, &e),
			 CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "trailing bytes"));
	/* never half-loaded: the restored database is byte-for-byte unchanged */
	size_t after_len = 0;
	uint8_t *after = slurp(path("restored.db"), &after_len);
	assert_int_equal(after_len, before_len);
	assert_memory_equal(after, before, before_len);
	free(after);
	free(before);
	free(orig);
	assert_int_equal(creto_nhi_backup_restore(path("missing.bak"), &w1, path("restored.db"), NULL, &e),
			 CRETO_EOP);
}

/* ---- a signer made here (OpenSSL), to issue tokens in-process ---- */
static int t_sign(void *impl, const uint8_t *msg, size_t msglen, uint8_t *sig, size_t cap,
		  size_t *siglen, creto_err *e)
{
	EVP_PKEY *k = impl;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok;
	if (EVP_PKEY_get_id(k) == EVP_PKEY_ED25519) {
		*siglen = cap;
		ok = EVP_DigestSignInit(m, NULL, NULL, NULL, k) == 1 &&
		     EVP_DigestSign(m, sig, siglen, msg, msglen) == 1;
	} else {
		uint8_t der[80];
		size_t dl = sizeof(der);
		ok = EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, k) == 1 &&
		     EVP_DigestSign(m, der, &dl, msg, msglen) == 1;
		const unsigned char *p = der;
		ECDSA_SIG *s = ok ? d2i_ECDSA_SIG(NULL, &p, (long)dl) : NULL;
		ok = s != NULL && BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, 32) == 32 &&
		     BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + 32, 32) == 32;
		ECDSA_SIG_free(s);
		*siglen = 64;
	}
	EVP_MD_CTX_free(m);
	return ok ? CRETO_OK : creto_err_set(e, CRETO_EOP, "sign failed");
}

static void t_free(void *impl)
{
	EVP_PKEY_free(impl);
}

static const creto_signer_ops t_ops = {"test", t_sign, t_free};

static creto_signer *test_signer(int ec)
{
	EVP_PKEY *k = ec ? EVP_EC_gen("P-256") : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(k);
	uint8_t raw[65];
	size_t rl = sizeof(raw);
	if (ec)
		assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, raw, sizeof(raw), &rl), 1);
	else
		assert_int_equal(EVP_PKEY_get_raw_public_key(k, raw, &rl), 1);
	creto_pubkey *pk = NULL;
	creto_err e;
	assert_int_equal(creto_pubkey_new(ec ? CRETO_ALG_ECDSA_P256 : CRETO_ALG_ED25519, raw, rl, &pk, &e),
			 CRETO_OK);
	creto_signer *s = NULL;
	assert_int_equal(creto_signer_new(&t_ops, k, pk, &s, &e), CRETO_OK);
	return s;
}

static char *issue(creto_signer *s, const char *sub, int64_t iat, int64_t exp, const char *scope)
{
	creto_nhi_token_params p = {.iss = "iss-test", .sub = sub, .aud = CRETO_NHI_DEFAULT_AUDIENCE,
				    .scope = scope, .iat = iat, .nbf = iat, .exp = exp};
	char *t = NULL;
	creto_err e;
	assert_int_equal(creto_nhi_token_issue(s, &p, &t, &e), CRETO_OK);
	return t;
}

static creto_jwks *jwks_of(creto_signer *a, creto_signer *b)
{
	const creto_pubkey *keys[2] = {creto_signer_pubkey(a), creto_signer_pubkey(b)};
	char *txt = NULL;
	creto_err e;
	assert_int_equal(creto_jwks_format(keys, 2, &txt, &e), CRETO_OK);
	creto_jwks *j = NULL;
	assert_int_equal(creto_jwks_parse(txt, strlen(txt), &j, &e), CRETO_OK);
	assert_int_equal(creto_jwks_count(j), 2);
	free(txt);
	return j;
}

/* The token's JSON is written by hand: strings with quotes, backslashes,
 * controls and UTF-8 come back exactly through a JSON parser; a claim that
 * is not UTF-8 is refused. */
static void test_token_json(void **state)
{
	(void)state;
	creto_signer *s = test_signer(1);
	const char *iss = "iss \"q\" back\\slash \x01\x1f\t\n\r\b\f del\x7f \xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91 /";
	creto_nhi_token_params p = {.iss = iss, .sub = "agent-1", .aud = "aud", .scope = "model:m",
				    .iat = 1000, .nbf = 999, .exp = 2000, .jti = NULL};
	char *t = NULL;
	creto_err e;
	assert_int_equal(creto_nhi_token_issue(s, &p, &t, &e), CRETO_OK);
	creto_jws j;
	assert_int_equal(creto_jws_parse(t, strlen(t), &j, &e), CRETO_OK);
	assert_int_equal(j.alg, CRETO_JWS_ES256);
	assert_string_equal(j.kid, creto_pubkey_id(creto_signer_pubkey(s)));
	json_error_t je;
	json_t *c = json_loadb((const char *)j.payload, j.payload_len, JSON_REJECT_DUPLICATES, &je);
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "iss")), iss);
	assert_string_equal(json_string_value(json_object_get(c, "sub")), "agent-1");
	assert_string_equal(json_string_value(json_object_get(c, "scope")), "model:m");
	assert_int_equal(json_integer_value(json_object_get(c, "nbf")), 999);
	assert_int_equal(strlen(json_string_value(json_object_get(c, "jti"))), 22);
	assert_int_equal(json_object_size(c), 8);
	json_decref(c);
	creto_jws_clear(&j);
	free(t);
	/* two tokens never share a jti */
	creto_jwt_claims a, b;
	p.iss = "plain";
	char *t2 = NULL;
	assert_int_equal(creto_nhi_token_issue(s, &p, &t, &e), CRETO_OK);
	assert_int_equal(creto_nhi_token_issue(s, &p, &t2, &e), CRETO_OK);
	creto_jws j2;
	assert_int_equal(creto_jws_parse(t, strlen(t), &j, &e), CRETO_OK);
	assert_int_equal(creto_jws_parse(t2, strlen(t2), &j2, &e), CRETO_OK);
	assert_int_equal(creto_jwt_claims_parse(j.payload, j.payload_len, &a, &e), CRETO_OK);
	assert_int_equal(creto_jwt_claims_parse(j2.payload, j2.payload_len, &b, &e), CRETO_OK);
	assert_string_equal(a.iss, "plain");
	assert_string_equal(a.scope, "model:m");
	assert_string_not_equal(a.jti, b.jti);
	creto_jws_clear(&j);
	creto_jws_clear(&j2);
	free(t);
	free(t2);
	/* not UTF-8: a lone continuation byte, an overlong form, a surrogate */
	const char *bad[] = {"x\x80", "\xc0\xaf", "\xed\xa0\x80"};
	for (size_t i = 0; i < 3; i++) {
		p.iss = bad[i];
		t = NULL;
		assert_int_equal(creto_nhi_token_issue(s, &p, &t, &e), CRETO_EUSAGE);
		assert_null(t);
	}
	creto_signer_free(s);
}

static void test_resolver(void **state)
{
	(void)state;
	creto_err e;
	creto_nhi_store *s = new_store("res.db");
	creto_nhi_agent a;
	agent(&a, "agent-1", "model:m tool:t");
	assert_int_equal(creto_nhi_store_add(s, &a, &e), CRETO_OK);
	agent(&a, "agent-2", "tool:t");
	a.not_after = 2000;
	assert_int_equal(creto_nhi_store_add(s, &a, &e), CRETO_OK);
	creto_signer *ed = test_signer(0), *ec = test_signer(1);
	creto_jwks *j = jwks_of(ed, ec);
	creto_nhi_resolver_opts o = {.cache_entries = 64};
	creto_nhi_resolver *r = NULL;
	assert_int_equal(creto_nhi_resolver_new(s, j, &o, &r, &e), CRETO_OK);
	creto_nhi_identity id;
	int cached = -1;

	char *t1 = issue(ed, "agent-1", 1000, 1600, "tool:t");
	assert_int_equal(creto_nhi_resolve(r, t1, strlen(t1), 1000, &id, &cached, &e), CRETO_OK);
	assert_int_equal(cached, 0);
	assert_string_equal(id.agent.id, "agent-1");
	assert_string_equal(id.scopes, "tool:t");
	assert_int_equal(id.alg, CRETO_JWS_EDDSA);
	assert_int_equal(creto_nhi_resolve(r, t1, strlen(t1), 1001, &id, &cached, &e), CRETO_OK);
	assert_int_equal(cached, 1);
	assert_string_equal(id.agent.name, "Agent agent-1");
	assert_string_equal(id.scopes, "tool:t");
	assert_string_equal(id.kid, creto_pubkey_id(creto_signer_pubkey(ed)));
	/* the cached answer ends exactly when the cold one would */
	assert_int_equal(creto_nhi_resolve(r, t1, strlen(t1), 1600 + CRETO_NHI_SKEW, &id, &cached, &e),
			 CRETO_OK);
	assert_int_equal(cached, 1);
	assert_int_equal(creto_nhi_resolve(r, t1, strlen(t1), 1601 + CRETO_NHI_SKEW, &id, &cached, &e),
			 CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "expired"));
	assert_int_equal(id.refused, CRETO_NHI_RULE_EXPIRED);
	/* nor before the token was valid */
	assert_int_equal(creto_nhi_resolve(r, t1, strlen(t1), 1000, &id, &cached, &e), CRETO_OK);
	assert_int_equal(creto_nhi_resolve(r, t1, strlen(t1), 900, &id, &cached, &e), CRETO_EREJECT);
	assert_int_equal(id.refused, CRETO_NHI_RULE_NOT_YET_VALID);
	assert_string_equal(creto_nhi_rule_name(id.refused), "token_not_yet_valid");
	assert_int_equal(cached, 0);

	/* ES256, and the agent's not-after caps the cache entry */
	char *t2 = issue(ec, "agent-2", 1000, 5000, NULL);
	assert_int_equal(creto_nhi_resolve(r, t2, strlen(t2), 1500, &id, &cached, &e), CRETO_OK);
	assert_int_equal(id.alg, CRETO_JWS_ES256);
	assert_string_equal(id.scopes, "tool:t");
	assert_int_equal(creto_nhi_resolve(r, t2, strlen(t2), 2000, &id, &cached, &e), CRETO_OK);
	assert_int_equal(cached, 1);
	assert_int_equal(creto_nhi_resolve(r, t2, strlen(t2), 2001, &id, &cached, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "agent agent-2 expired"));
	assert_int_equal(id.refused, CRETO_NHI_RULE_AGENT_VALIDITY);

	/* revocation beats the cache */
	assert_int_equal(creto_nhi_resolve(r, t1, strlen(t1), 1000, &id, &cached, &e), CRETO_OK);
	assert_int_equal(creto_nhi_resolve(r, t1, strlen(t1), 1000, &id, &cached, &e), CRETO_OK);
	assert_int_equal(cached, 1);
	assert_int_equal(creto_nhi_store_set_status(s, "agent-1", CRETO_NHI_SUSPENDED, 1000, &e), CRETO_OK);
	assert_int_equal(creto_nhi_resolve(r, t1, strlen(t1), 1000, &id, &cached, &e), CRETO_EREJECT);
	assert_int_equal(cached, 0);
	assert_non_null(strstr(e.msg, "agent agent-1 is suspended"));
	assert_int_equal(id.refused, CRETO_NHI_RULE_AGENT_STATUS);
	assert_int_equal(creto_nhi_store_set_status(s, "agent-1", CRETO_NHI_ACTIVE, 1000, &e), CRETO_OK);
	assert_int_equal(creto_nhi_resolve(r, t1, strlen(t1), 1000, &id, &cached, &e), CRETO_OK);

	/* a changed signature, a scope not granted, a token too long */
	char *bad = strdup(t1);
	size_t L = strlen(bad);
	bad[L - 10] = bad[L - 10] == 'A' ? 'B' : 'A';
	assert_int_equal(creto_nhi_resolve(r, bad, L, 1000, &id, &cached, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "token signature"));
	assert_int_equal(id.refused, CRETO_NHI_RULE_SIGNATURE);
	char *t3 = issue(ed, "agent-2", 1000, 1600, "model:m");
	assert_int_equal(creto_nhi_resolve(r, t3, strlen(t3), 1000, &id, &cached, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "scope 'model:m' not granted to agent agent-2"));
	assert_int_equal(id.refused, CRETO_NHI_RULE_SCOPE);
	assert_int_equal(creto_nhi_resolve(r, t1, CRETO_JWS_MAX + 1, 1000, &id, &cached, &e), CRETO_EREJECT);
	assert_int_equal(id.refused, CRETO_NHI_RULE_MALFORMED);
	assert_string_equal(creto_nhi_rule_name(id.refused), "token_malformed");
	/* a token whose agent is unknown; and a JWK Set without the signing key */
	char *t4 = issue(ed, "ghost", 1000, 1600, NULL);
	assert_int_equal(creto_nhi_resolve(r, t4, strlen(t4), 1000, &id, &cached, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "unknown agent 'ghost'"));
	assert_int_equal(id.refused, CRETO_NHI_RULE_UNKNOWN_AGENT);
	creto_signer *other = test_signer(0);
	char *t5 = issue(other, "agent-1", 1000, 1600, NULL);
	assert_int_equal(creto_nhi_resolve(r, t5, strlen(t5), 1000, &id, &cached, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "unknown key id"));
	assert_int_equal(id.refused, CRETO_NHI_RULE_UNKNOWN_KEY);
	creto_nhi_resolver_flush(r);
	assert_int_equal(creto_nhi_resolve(r, t1, strlen(t1), 1000, &id, &cached, &e), CRETO_OK);
	assert_int_equal(cached, 0);

	free(bad);
	free(t1);
	free(t2);
	free(t3);
	free(t4);
	free(t5);
	creto_nhi_resolver_free(r);
	creto_jwks_free(j);
	creto_signer_free(ed);
	creto_signer_free(ec);
	creto_signer_free(other);
	creto_nhi_store_free(s);
}

/* ---- cache: LRU order and bound ---- */
static void test_cache_lru(void **state)
{
	(void)state;
	nhi_cache *c = nhi_cache_new(4);
	assert_non_null(c);
	creto_nhi_identity id, out;
	memset(&id, 0, sizeof(id));
	uint8_t d[5][32];
	for (int i = 0; i < 5; i++) {
		memset(d[i], i + 1, 32);
		snprintf(id.agent.id, sizeof(id.agent.id), "a%d", i);
		if (i < 4)
			nhi_cache_put(c, d[i], 0, 100, 7, &id);
	}
	assert_int_equal(nhi_cache_size(c), 4);
	/* touch 0, then insert 4: 1 (least recent) goes */
	assert_int_equal(nhi_cache_get(c, d[0], 50, 7, &out), 1);
	assert_string_equal(out.agent.id, "a0");
	snprintf(id.agent.id, sizeof(id.agent.id), "a4");
	nhi_cache_put(c, d[4], 0, 100, 7, &id);
	assert_int_equal(nhi_cache_size(c), 4);
	assert_int_equal(nhi_cache_get(c, d[1], 50, 7, &out), 0);
	assert_int_equal(nhi_cache_get(c, d[0], 50, 7, &out), 1);
	assert_int_equal(nhi_cache_get(c, d[4], 50, 7, &out), 1);
	assert_string_equal(out.agent.id, "a4");
	/* generation and time bounds drop entries */
	assert_int_equal(nhi_cache_get(c, d[2], 50, 8, &out), 0);
	assert_int_equal(nhi_cache_get(c, d[3], 101, 7, &out), 0);
	assert_int_equal(nhi_cache_size(c), 2);
	nhi_cache_flush(c);
	assert_int_equal(nhi_cache_size(c), 0);
	nhi_cache_free(c);
	assert_null(nhi_cache_new(0));
	nhi_cache_free(NULL);
	/* a large, sharded cache keeps its bound */
	c = nhi_cache_new(2048);
	for (int i = 0; i < 10000; i++) {
		uint8_t k[32];
		RAND_bytes(k, 32);
		nhi_cache_put(c, k, 0, 100, 1, &id);
	}
	assert_true(nhi_cache_size(c) <= 2048);
	assert_true(nhi_cache_size(c) > 1500);
	nhi_cache_free(c);
}

/* ---- concurrency: resolves from threads while statuses change ---- */
struct thr {
	creto_nhi_resolver *r;
	char **toks;
	int ntok;
	int errors;
};

static void *worker(void *arg)
{
	struct thr *t = arg;
	creto_nhi_identity id;
	creto_err e;
	for (int i = 0; i < 2000; i++) {
		const char *tok = t->toks[i % t->ntok];
		int rc = creto_nhi_resolve(t->r, tok, strlen(tok), 1000, &id, NULL, &e);
		/* agent-0 flips between active and suspended; the others must always resolve */
		if (rc != CRETO_OK && strstr(e.msg, "suspended") == NULL)
			t->errors++;
		if (rc == CRETO_OK && strcmp(id.agent.id, "agent-0") != 0 && strncmp(id.agent.id, "agent-", 6) != 0)
			t->errors++;
	}
	return NULL;
}

static void test_resolver_threads(void **state)
{
	(void)state;
	creto_err e;
	creto_nhi_store *s = new_store("thr.db");
	creto_nhi_agent a;
	for (int i = 0; i < 8; i++) {
		char id[16];
		snprintf(id, sizeof(id), "agent-%d", i);
		agent(&a, id, "tool:t");
		assert_int_equal(creto_nhi_store_add(s, &a, &e), CRETO_OK);
	}
	creto_signer *ed = test_signer(0), *ec = test_signer(1);
	creto_jwks *j = jwks_of(ed, ec);
	creto_nhi_resolver_opts o = {.cache_entries = 4};
	creto_nhi_resolver *r = NULL;
	assert_int_equal(creto_nhi_resolver_new(s, j, &o, &r, &e), CRETO_OK);
	char *toks[8];
	for (int i = 0; i < 8; i++) {
		char id[16];
		snprintf(id, sizeof(id), "agent-%d", i);
		toks[i] = issue(i % 2 ? ec : ed, id, 1000, 2000, NULL);
	}
	struct thr t[3];
	pthread_t th[3];
	for (int i = 0; i < 3; i++) {
		t[i] = (struct thr){r, toks, 8, 0};
		assert_int_equal(pthread_create(&th[i], NULL, worker, &t[i]), 0);
	}
	for (int i = 0; i < 50; i++) {
		assert_int_equal(creto_nhi_store_set_status(s, "agent-0", i % 2 ? CRETO_NHI_ACTIVE : CRETO_NHI_SUSPENDED, 1000, &e),
				 CRETO_OK);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].errors, 0);
	}
	/* after the last change (active) agent-0 resolves; then suspended it never does */
	creto_nhi_identity id;
	assert_int_equal(creto_nhi_resolve(r, toks[0], strlen(toks[0]), 1000, &id, NULL, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_set_status(s, "agent-0", CRETO_NHI_REVOKED, 1000, &e), CRETO_OK);
	assert_int_equal(creto_nhi_resolve(r, toks[0], strlen(toks[0]), 1000, &id, NULL, &e), CRETO_EREJECT);
	for (int i = 0; i < 8; i++)
		free(toks[i]);
	creto_nhi_resolver_free(r);
	creto_jwks_free(j);
	creto_signer_free(ed);
	creto_signer_free(ec);
	creto_nhi_store_free(s);
}

/* ---- exactly the known schema (issue 11 §4b) ---- */

/* Run sql on the store file at name through a second connection. */
static void edit_store(const char *name, const char *sql)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path(name), &db), SQLITE_OK);
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : "?");
	sqlite3_close(db);
}

static void schema_refused(const char *name, const char *sql, const char *want)
{
	creto_err e;
	creto_nhi_store *s = new_store(name);
	creto_nhi_agent a;
	agent(&a, "agent-1", "model:m");
	assert_int_equal(creto_nhi_store_add(s, &a, &e), CRETO_OK);
	creto_nhi_store_free(s);
	edit_store(name, sql);
	s = NULL;
	creto_err_clear(&e);
	if (creto_nhi_store_open(path(name), 0, &s, &e) != CRETO_EREJECT)
		fail_msg("%s: store opened (%s)", sql, e.msg);
	assert_null(s);
	if (strstr(e.msg, want) == NULL)
		fail_msg("%s: '%s' lacks '%s'", sql, e.msg, want);
	creto_err_clear(&e);
	assert_int_equal(creto_nhi_store_open(path(name), 1, &s, &e), CRETO_EREJECT);
}

#define UNREVOKE_TRIGGER                                                                                \
	"CREATE TRIGGER unrevoke AFTER UPDATE OF status ON agents WHEN NEW.status = 'revoked'"        \
	" BEGIN UPDATE agents SET status = 'active' WHERE id = NEW.id; END"

static void test_store_schema_exact(void **state)
{
	(void)state;
	/* the attack: a trigger that turns a revoked agent back to active */
	schema_refused("trig.db", UNREVOKE_TRIGGER, "unexpected trigger 'unrevoke'");
	schema_refused("view.db", "CREATE VIEW v AS SELECT * FROM agents", "unexpected view 'v'");
	schema_refused("index.db", "CREATE INDEX i ON agents(status)", "unexpected index 'i'");
	schema_refused("table.db", "CREATE TABLE extra (x)", "unexpected table 'extra'");
	/* a table rebuilt with a generated status that always reads 'active' */
	schema_refused("gen.db",
		       "ALTER TABLE agents RENAME TO old; CREATE TABLE agents (id TEXT PRIMARY KEY NOT NULL,"
		       " name TEXT NOT NULL, scopes TEXT NOT NULL, st TEXT, status TEXT GENERATED ALWAYS AS"
		       " ('active'), not_before INTEGER NOT NULL DEFAULT 0, not_after INTEGER NOT NULL DEFAULT 0,"
		       " created INTEGER NOT NULL, issuer_kid TEXT NOT NULL DEFAULT '', status_changed INTEGER"
		       " NOT NULL DEFAULT 0) WITHOUT ROWID; DROP TABLE old",
		       "table 'agents' differs from the known schema");
	schema_refused("nocheck.db", "DROP TABLE meta; CREATE TABLE meta (key TEXT, value TEXT)",
		       "table 'meta' differs");

	/* other spacing of the same schema is the same schema */
	creto_err e;
	creto_nhi_store *s = new_store("spaced.db");
	creto_nhi_store_free(s);
	edit_store("spaced.db", "PRAGMA writable_schema = ON;"
				"UPDATE sqlite_master SET sql = replace(replace(sql, '(', ' (  '), ',', ' -- why, x\n,\n ')"
				" WHERE name = 'meta';"
				"UPDATE sqlite_master SET sql = replace(sql, 'NOT NULL', '/* a, b */ NOT\tNULL')"
				" WHERE name = 'agents';");
	assert_int_equal(creto_nhi_store_open(path("spaced.db"), 1, &s, &e), CRETO_OK);
	creto_nhi_store_free(s);

	/* a backup made of a store that carries the trigger does not restore,
	 * and is not even opened in memory */
	s = new_store("bktrig.db");
	creto_nhi_agent a;
	agent(&a, "agent-1", "model:m");
	assert_int_equal(creto_nhi_store_add(s, &a, &e), CRETO_OK);
	edit_store("bktrig.db", UNREVOKE_TRIGGER); /* behind the open handle's back */
	struct kw k;
	RAND_bytes(k.kek, 32);
	creto_nhi_wrapper w;
	wrapper(&w, &k, "pkcs11:token=t;object=k");
	assert_int_equal(creto_nhi_backup_write(s, &w, path("trig.bak"), 1000, &e), CRETO_OK);
	creto_nhi_store_free(s);
	creto_nhi_store *b = NULL;
	assert_int_equal(creto_nhi_backup_open(path("trig.bak"), &w, &b, NULL, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "unexpected trigger 'unrevoke'"));
	unlink(path("from-trig.db"));
	assert_int_equal(creto_nhi_backup_restore(path("trig.bak"), &w, path("from-trig.db"), NULL, &e),
			 CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "unexpected trigger"));
	struct stat st;
	assert_int_equal(stat(path("from-trig.db"), &st), -1);
}

/* ---- scopes one by one; bearer tokens read into one wiped buffer ---- */
static void test_scopes_join(void **state)
{
	(void)state;
	creto_err e;
	char out[CRETO_NHI_SCOPES_LEN + 1];
	const char *two[] = {"model:m", "tool:search"};
	assert_int_equal(creto_nhi_scopes_join(two, 2, out, &e), CRETO_OK);
	assert_string_equal(out, "model:m tool:search");
	/* a space inside one --scope is refused like a tab, never split */
	const char *sp[] = {"a b"};
	assert_int_equal(creto_nhi_scopes_join(sp, 1, out, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "scope 'a b': want"));
	const char *tab[] = {"a\tb"};
	assert_int_equal(creto_nhi_scopes_join(tab, 1, out, &e), CRETO_EREJECT);
	const char *empty[] = {"x", ""};
	assert_int_equal(creto_nhi_scopes_join(empty, 2, out, &e), CRETO_EREJECT);
	static char big[200];
	memset(big, 'x', sizeof(big) - 1);
	const char *many[11];
	for (int i = 0; i < 11; i++)
		many[i] = big;
	assert_int_equal(creto_nhi_scopes_join(many, 11, out, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "longer than 2048"));
	assert_int_equal(creto_nhi_scopes_join(NULL, 0, out, &e), CRETO_OK);
	assert_string_equal(out, "");
}

static int all_zero(const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

static void test_token_read(void **state)
{
	(void)state;
	creto_err e;
	char buf[CRETO_NHI_TOKEN_BUF];
	size_t len = 0;
	spit(path("tok.ok"), (const uint8_t *)"aaa.bbb.ccc\n", 12);
	assert_int_equal(creto_nhi_token_read(path("tok.ok"), buf, sizeof(buf), &len, &e), CRETO_OK);
	assert_int_equal(len, 11);
	assert_string_equal(buf, "aaa.bbb.ccc");
	/* refused, and the buffer wiped: a NUL byte, too large, a FIFO (at
	 * once, never waited on), a symbolic link */
	spit(path("tok.nul"), (const uint8_t *)"aaa.b\0b.ccc", 11);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(creto_nhi_token_read(path("tok.nul"), buf, sizeof(buf), &len, &e), CRETO_EREJECT);
	assert_true(all_zero(buf, sizeof(buf)));
	uint8_t *bigt = malloc(CRETO_JWS_MAX + 2);
	assert_non_null(bigt);
	memset(bigt, 'a', CRETO_JWS_MAX + 2);
	spit(path("tok.big"), bigt, CRETO_JWS_MAX + 2);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(creto_nhi_token_read(path("tok.big"), buf, sizeof(buf), &len, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "over the 8192-byte cap"));
	assert_true(all_zero(buf, sizeof(buf)));
	bigt[CRETO_JWS_MAX] = '\n'; /* a full-size token and its newline */
	spit(path("tok.max"), bigt, CRETO_JWS_MAX + 1);
	assert_int_equal(creto_nhi_token_read(path("tok.max"), buf, sizeof(buf), &len, &e), CRETO_OK);
	assert_int_equal(len, CRETO_JWS_MAX);
	free(bigt);
	unlink(path("tok.fifo"));
	assert_int_equal(mkfifo(path("tok.fifo"), 0600), 0);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(creto_nhi_token_read(path("tok.fifo"), buf, sizeof(buf), &len, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "not a regular file"));
	assert_true(all_zero(buf, sizeof(buf)));
	unlink(path("tok.link"));
	assert_int_equal(symlink(path("tok.ok"), path("tok.link")), 0);
	assert_int_equal(creto_nhi_token_read(path("tok.link"), buf, sizeof(buf), &len, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "symbolic link"));
	OPENSSL_cleanse(buf, sizeof(buf));
}

/* creto_jws_clear leaves nothing of the signature behind */
static void test_jws_clear_wipes(void **state)
{
	(void)state;
	creto_jws j;
	memset(&j, 0x77, sizeof(j));
	j.payload = malloc(4);
	assert_non_null(j.payload);
	creto_jws_clear(&j);
	assert_true(all_zero((const char *)&j, sizeof(j)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_basic),	 cmocka_unit_test(test_store_migration),
		cmocka_unit_test(test_backup),
		cmocka_unit_test(test_image_fixed),
		cmocka_unit_test(test_agent_keys),
		cmocka_unit_test(test_lookup_cache),
		cmocka_unit_test(test_backup_v1),
		cmocka_unit_test(test_store_schema_exact),
		cmocka_unit_test(test_scopes_join),
		cmocka_unit_test(test_token_read),
		cmocka_unit_test(test_jws_clear_wipes),
		cmocka_unit_test(test_token_json),
		cmocka_unit_test(test_resolver),
		cmocka_unit_test(test_cache_lru),	 cmocka_unit_test(test_resolver_threads),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
