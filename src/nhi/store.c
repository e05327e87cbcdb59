/*
 * store.c - the agent store: SQLite, schema versioned by PRAGMA user_version
 * and marked by PRAGMA application_id (docs/nhi.md "Schema").
 *
 * One connection per store, guarded by one mutex, so a store may be shared
 * by the resolver's threads.  Every write through the handle, and every
 * change another connection made (creto_nhi_store_refresh), bumps a
 * generation counter that the caches compare against, so no cached answer
 * outlives a revocation or a key removal: the resolver's identity cache and
 * the store's own lookup cache (docs/nhi.md "Cache semantics").
 */
#include "creto/nhi.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

struct creto_nhi_store {
	sqlite3 *db;
	pthread_mutex_t mu;
	sqlite3_stmt *get;
	sqlite3_stmt *ins;
	sqlite3_stmt *kget;
	sqlite3_stmt *akget;
	_Atomic uint64_t generation;
	int64_t data_version;
	char issuer[CRETO_NHI_ISSUER_MAX + 1];
	/* An in-memory store (a backup opened with creto_nhi_store_open_image)
	 * lives in this buffer, which the store owns and wipes when it is
	 * freed; NULL for a file store. */
	uint8_t *img;
	size_t imgcap;
	/* The lookup cache: successful agent and agent-key lookups made under
	 * generation lc_gen, chained in NHI_LOOKUP_BUCKETS buckets, at most
	 * NHI_LOOKUP_MAX entries (under mu). */
	struct lookup_ent **lc;
	size_t lc_n;
	uint64_t lc_gen;
};

#define NHI_LOOKUP_BUCKETS 1024 /* a power of two */
#define NHI_LOOKUP_MAX 1024     /* entries; a full cache is emptied */

struct lookup_ent {
	struct lookup_ent *next;
	int has_key; /* an agent-key lookup (k valid), else an agent lookup */
	creto_nhi_agent a;
	creto_nhi_agent_key k;
};

/* Room an in-memory store has to grow into (docs/nhi.md "Backup format"):
 * the image is never reallocated, so no copy of the plaintext is left in
 * freed memory; a store that outgrows it gets SQLITE_FULL. */
#define NHI_IMAGE_SLACK_MIN ((size_t)1 << 20)

/* Migration i (0-based) brings user_version i to i + 1.  Append only: a
 * released migration is never edited. */
static const char *const migrations[CRETO_NHI_SCHEMA_VERSION] = {
	/* 1: agents and store metadata */
	"CREATE TABLE agents ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" name TEXT NOT NULL,"
	" scopes TEXT NOT NULL,"
	" status TEXT NOT NULL CHECK (status IN ('active','suspended','revoked')),"
	" not_before INTEGER NOT NULL DEFAULT 0,"
	" not_after INTEGER NOT NULL DEFAULT 0,"
	" created INTEGER NOT NULL,"
	" issuer_kid TEXT NOT NULL DEFAULT ''"
	") WITHOUT ROWID;"
	"CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;",
	/* 2: when the status last changed, and the persisted revocation generation */
	"ALTER TABLE agents ADD COLUMN status_changed INTEGER NOT NULL DEFAULT 0;"
	"INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0');",
	/* 3: agents' public keys for client assertions (docs/nhi.md "Agent keys") */
	"CREATE TABLE agent_keys ("
	" agent TEXT NOT NULL,"
	" kid TEXT NOT NULL,"
	" alg TEXT NOT NULL CHECK (alg IN ('EdDSA','ES256')),"
	" pub BLOB NOT NULL,"
	" not_before INTEGER NOT NULL DEFAULT 0,"
	" not_after INTEGER NOT NULL DEFAULT 0,"
	" added INTEGER NOT NULL,"
	" PRIMARY KEY (agent, kid)"
	") WITHOUT ROWID;",
};

const char *creto_nhi_status_name(creto_nhi_status s)
{
	switch (s) {
	case CRETO_NHI_ACTIVE: return "active";
	case CRETO_NHI_SUSPENDED: return "suspended";
	case CRETO_NHI_REVOKED: return "revoked";
	}
	return NULL;
}

int creto_nhi_status_from_name(const char *name)
{
	if (strcmp(name, "active") == 0)
		return CRETO_NHI_ACTIVE;
	if (strcmp(name, "suspended") == 0)
		return CRETO_NHI_SUSPENDED;
	if (strcmp(name, "revoked") == 0)
		return CRETO_NHI_REVOKED;
	return -1;
}

int creto_nhi_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > CRETO_NHI_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '@' || c == '-'))
			return 0;
	}
	return 1;
}

int creto_nhi_scope_valid(const char *scope, size_t len)
{
	if (len == 0 || len > CRETO_NHI_SCOPE_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)scope[i];
		if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
			return 0;
	}
	return 1;
}

int creto_nhi_scopes_has(const char *list, const char *scope, size_t len)
{
	const char *p = list;
	while (*p) {
		const char *q = strchr(p, ' ');
		size_t n = q ? (size_t)(q - p) : strlen(p);
		if (n == len && memcmp(p, scope, len) == 0)
			return 1;
		if (q == NULL)
			break;
		p = q + 1;
	}
	return 0;
}

static int scope_refused(const char *p, size_t n, creto_err *e)
{
	return creto_err_set(e, CRETO_EREJECT,
			     "scope '%.*s': want 1..%d printable characters, no space, "
			     "quote or backslash",
			     (int)(n > 64 ? 64 : n), p, CRETO_NHI_SCOPE_MAX);
}

int creto_nhi_scopes_join(const char *const *scopes, size_t n, char out[CRETO_NHI_SCOPES_LEN + 1], creto_err *e)
{
	size_t o = 0;
	out[0] = '\0';
	if (n > CRETO_NHI_SCOPES_MAX)
		return creto_err_set(e, CRETO_EREJECT, "scopes: more than %d", CRETO_NHI_SCOPES_MAX);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(scopes[i]);
		/* one scope each: "a b" is refused like "a\tb", never split */
		if (!creto_nhi_scope_valid(scopes[i], len))
			return scope_refused(scopes[i], len, e);
		if (o + (o ? 1 : 0) + len > CRETO_NHI_SCOPES_LEN)
			return creto_err_set(e, CRETO_EREJECT, "scopes: longer than %d bytes", CRETO_NHI_SCOPES_LEN);
		if (o)
			out[o++] = ' ';
		memcpy(out + o, scopes[i], len);
		o += len;
		out[o] = '\0';
	}
	return CRETO_OK;
}

/* A scope list: 1..CRETO_NHI_SCOPES_MAX valid scopes separated by single
 * spaces, no duplicates. */
static int scopes_check(const char *list, creto_err *e)
{
	size_t len = strlen(list), count = 0;
	if (len > CRETO_NHI_SCOPES_LEN)
		return creto_err_set(e, CRETO_EREJECT, "scopes: longer than %d bytes",
				     CRETO_NHI_SCOPES_LEN);
	const char *p = list;
	while (*p) {
		const char *q = strchr(p, ' ');
		size_t n = q ? (size_t)(q - p) : strlen(p);
		if (!creto_nhi_scope_valid(p, n))
			return scope_refused(p, n, e);
		if (++count > CRETO_NHI_SCOPES_MAX)
			return creto_err_set(e, CRETO_EREJECT, "scopes: more than %d",
					     CRETO_NHI_SCOPES_MAX);
		/* duplicate: the same scope earlier in the list */
		for (const char *r = list; r < p;) {
			const char *s = strchr(r, ' ');
			if ((size_t)(s - r) == n && memcmp(r, p, n) == 0)
				return creto_err_set(e, CRETO_EREJECT, "scope '%.*s' given twice",
						     (int)(n > 64 ? 64 : n), p);
			r = s + 1;
		}
		if (q == NULL)
			break;
		if (q[1] == '\0')
			return creto_err_set(e, CRETO_EREJECT, "scopes: trailing space");
		p = q + 1;
	}
	return CRETO_OK;
}

static int name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > CRETO_NHI_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return 0;
	return 1;
}

static int kid_valid(const char *kid)
{
	size_t n = strlen(kid);
	if (n == 0)
		return 1;
	if (n != CRETO_KEYID_HEXLEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((kid[i] >= '0' && kid[i] <= '9') || (kid[i] >= 'a' && kid[i] <= 'f')))
			return 0;
	return 1;
}

static int sql_err(creto_nhi_store *s, int rc, const char *what, creto_err *e)
{
	int code = CRETO_EOP;
	/* A file that is not a database, or a corrupt one, is rejected input. */
	if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT)
		code = CRETO_EREJECT;
	if (rc == SQLITE_FULL && s != NULL && s->img != NULL)
		return creto_err_set(e, CRETO_EOP,
				     "%s: in-memory store full (%zu bytes, never reallocated; restore the "
				     "backup to a file to grow it)",
				     what, s->imgcap);
	return creto_err_set(e, code, "%s: %s", what,
			     s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

static int exec(creto_nhi_store *s, const char *sql, const char *what, creto_err *e)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sql_err(s, rc, what, e);
	return CRETO_OK;
}

static int pragma_int(creto_nhi_store *s, const char *sql, int64_t *out, creto_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_err(s, rc, "store", e);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		int r = sql_err(s, rc, "store", e);
		sqlite3_finalize(st);
		return r;
	}
	*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return CRETO_OK;
}

static int meta_get(creto_nhi_store *s, const char *key, char *out, size_t cap, creto_err *e)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_err(s, rc, "store meta", e);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	int r = CRETO_OK;
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		if (v == NULL || strlen(v) >= cap)
			r = creto_err_set(e, CRETO_EREJECT, "store meta '%s': bad value", key);
		else
			memcpy(out, v, strlen(v) + 1);
	} else if (rc == SQLITE_DONE) {
		r = creto_err_set(e, CRETO_EREJECT, "store meta '%s' missing", key);
	} else {
		r = sql_err(s, rc, "store meta", e);
	}
	sqlite3_finalize(st);
	return r;
}

static int migrate(creto_nhi_store *s, int64_t from, creto_err *e)
{
	for (int64_t v = from; v < CRETO_NHI_SCHEMA_VERSION; v++) {
		char sql[96];
		int rc = exec(s, "BEGIN IMMEDIATE", "migrate", e);
		if (rc != CRETO_OK)
			return rc;
		rc = exec(s, migrations[v], "migrate", e);
		if (rc == CRETO_OK) {
			snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld; PRAGMA application_id = %d",
				 (long long)(v + 1), CRETO_NHI_APP_ID);
			rc = exec(s, sql, "migrate", e);
		}
		if (rc != CRETO_OK) {
			(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return creto_err_ctx(e, "schema version %lld -> %lld", (long long)v,
					     (long long)(v + 1));
		}
		rc = exec(s, "COMMIT", "migrate", e);
		if (rc != CRETO_OK)
			return rc;
	}
	return CRETO_OK;
}

/* ---- the known schema --------------------------------------------------
 * A store must hold exactly the objects the migrations create, with exactly
 * their SQL: a trigger (one that turns a revoked agent back to active), a
 * view, an index, a generated column or a changed CHECK would make the
 * store lie about what creto wrote.  The reference is built by running the
 * same migrations in memory, so it is the text this SQLite writes. */

#define SCHEMA_OBJECTS_MAX 8

typedef struct schema_obj {
	char type[16];
	char name[64];
	char *sql;
	int seen;
} schema_obj;

typedef struct schema_ref {
	schema_obj o[SCHEMA_OBJECTS_MAX];
	size_t n;
} schema_ref;

static void schema_ref_free(schema_ref *r)
{
	for (size_t i = 0; i < r->n; i++)
		sqlite3_free(r->o[i].sql);
	r->n = 0;
}

/* SQL text with insignificant whitespace removed, so a store whose tables
 * were created with other spacing or comments (docs/nhi.md lets a tool do
 * that) still compares equal: outside quotes, comments are whitespace, each
 * run of whitespace becomes one space, and none is kept next to '(', ')' or
 * ','.  Quoted text is copied as is.
 * NULL on allocation failure. */
static char *sql_norm(const char *sql)
{
	size_t n = strlen(sql);
	char *o = sqlite3_malloc64(n + 1);
	if (o == NULL)
		return NULL;
	size_t k = 0;
	char quote = 0;
	int pending_space = 0;
	for (size_t i = 0; i < n; i++) {
		char c = sql[i];
		if (quote) {
			o[k++] = c;
			if (c == quote)
				quote = 0;
			continue;
		}
		if (c == '-' && sql[i + 1] == '-') { /* a comment to the end of the line */
			while (i + 1 < n && sql[i + 1] != '\n')
				i++;
			pending_space = 1;
			continue;
		}
		if (c == '/' && sql[i + 1] == '*') { /* a comment to its end */
			const char *end = strstr(sql + i + 2, "*/");
			i = end != NULL ? (size_t)(end - sql) + 1 : n;
			pending_space = 1;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
			pending_space = 1;
			continue;
		}
		int punct = c == '(' || c == ')' || c == ',';
		if (pending_space && k > 0 && !punct && o[k - 1] != '(' && o[k - 1] != ')' && o[k - 1] != ',')
			o[k++] = ' ';
		pending_space = 0;
		if (c == '\'' || c == '"' || c == '`' || c == '[')
			quote = c == '[' ? ']' : c;
		o[k++] = c;
	}
	o[k] = '\0';
	return o;
}

static const char k_schema_sql[] = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name";

/* The objects of a store at schema version ver. */
static int schema_reference(int64_t ver, schema_ref *r, creto_err *e)
{
	memset(r, 0, sizeof(*r));
	sqlite3 *db = NULL;
	int src = sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	for (int64_t v = 0; src == SQLITE_OK && v < ver; v++)
		src = sqlite3_exec(db, migrations[v], NULL, NULL, NULL);
	sqlite3_stmt *st = NULL;
	if (src == SQLITE_OK)
		src = sqlite3_prepare_v2(db, k_schema_sql, -1, &st, NULL);
	while (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
		const char *type = (const char *)sqlite3_column_text(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const char *sql = (const char *)sqlite3_column_text(st, 3);
		if (r->n == SCHEMA_OBJECTS_MAX || type == NULL || name == NULL || sql == NULL ||
		    strlen(type) >= sizeof(r->o[0].type) || strlen(name) >= sizeof(r->o[0].name)) {
			src = SQLITE_INTERNAL;
			break;
		}
		schema_obj *o = &r->o[r->n];
		memcpy(o->type, type, strlen(type) + 1);
		memcpy(o->name, name, strlen(name) + 1);
		o->sql = sql_norm(sql);
		if (o->sql == NULL) {
			src = SQLITE_NOMEM;
			break;
		}
		r->n++;
		src = SQLITE_OK;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (src != SQLITE_DONE) {
		schema_ref_free(r);
		return creto_err_set(e, CRETO_EOP, "store schema: cannot build the reference (%s)", sqlite3_errstr(src));
	}
	return CRETO_OK;
}

/* CRETO_EREJECT naming the first object that is not exactly the known
 * schema of version ver: extra (trigger, view, index, table), missing, or
 * with other SQL. */
static int schema_check(creto_nhi_store *s, int64_t ver, creto_err *e)
{
	schema_ref ref;
	int rc = schema_reference(ver, &ref, e);
	if (rc != CRETO_OK)
		return rc;
	sqlite3_stmt *st = NULL;
	int src = sqlite3_prepare_v2(s->db, k_schema_sql, -1, &st, NULL);
	if (src != SQLITE_OK) {
		rc = sql_err(s, src, "store schema", e);
		goto out;
	}
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		const char *type = (const char *)sqlite3_column_text(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const char *sql = (const char *)sqlite3_column_text(st, 3);
		type = type ? type : "?";
		name = name ? name : "?";
		schema_obj *o = NULL;
		for (size_t i = 0; i < ref.n && o == NULL; i++)
			if (strcmp(ref.o[i].type, type) == 0 && strcmp(ref.o[i].name, name) == 0)
				o = &ref.o[i];
		if (o == NULL) {
			rc = creto_err_set(e, CRETO_EREJECT, "store schema: unexpected %.16s '%.64s' (not an object creto makes)",
					   type, name);
			goto out;
		}
		char *norm = sql != NULL ? sql_norm(sql) : NULL;
		int same = norm != NULL && strcmp(norm, o->sql) == 0;
		int oom = sql != NULL && norm == NULL;
		sqlite3_free(norm);
		if (oom) {
			rc = creto_err_set(e, CRETO_EOP, "store schema: out of memory");
			goto out;
		}
		if (!same) {
			rc = creto_err_set(e, CRETO_EREJECT, "store schema: %s '%s' differs from the known schema", type,
					   name);
			goto out;
		}
		o->seen = 1;
	}
	if (src != SQLITE_DONE) {
		rc = sql_err(s, src, "store schema", e);
		goto out;
	}
	for (size_t i = 0; i < ref.n; i++)
		if (!ref.o[i].seen) {
			rc = creto_err_set(e, CRETO_EREJECT, "store schema: %s '%s' missing", ref.o[i].type, ref.o[i].name);
			goto out;
		}
out:
	sqlite3_finalize(st);
	schema_ref_free(&ref);
	return rc;
}

/* Validate the schema marks, migrate, load metadata, prepare statements. */
static int store_setup(creto_nhi_store *s, int readonly, creto_err *e)
{
	int64_t app = 0, ver = 0;
	int rc = pragma_int(s, "PRAGMA application_id", &app, e);
	if (rc != CRETO_OK)
		return rc;
	rc = pragma_int(s, "PRAGMA user_version", &ver, e);
	if (rc != CRETO_OK)
		return rc;
	if (app != CRETO_NHI_APP_ID)
		return creto_err_set(e, CRETO_EREJECT, "not an NHI store (application_id %lld)",
				     (long long)app);
	if (ver < 1 || ver > CRETO_NHI_SCHEMA_VERSION)
		return creto_err_set(e, CRETO_EREJECT,
				     "schema version %lld not supported (this creto knows 1..%d)",
				     (long long)ver, CRETO_NHI_SCHEMA_VERSION);
	/* exactly the known objects before anything runs on the store (a
	 * trigger would fire inside a migration) */
	rc = schema_check(s, ver, e);
	if (rc != CRETO_OK)
		return rc;
	if (ver < CRETO_NHI_SCHEMA_VERSION) {
		if (readonly)
			return creto_err_set(e, CRETO_EREJECT,
					     "schema version %lld needs migration; open read-write",
					     (long long)ver);
		rc = migrate(s, ver, e);
		if (rc != CRETO_OK)
			return rc;
		rc = schema_check(s, CRETO_NHI_SCHEMA_VERSION, e);
		if (rc != CRETO_OK)
			return rc;
	}
	rc = meta_get(s, "issuer", s->issuer, sizeof(s->issuer), e);
	if (rc != CRETO_OK)
		return rc;
	char gen[32];
	rc = meta_get(s, "generation", gen, sizeof(gen), e);
	if (rc != CRETO_OK)
		return rc;
	atomic_store(&s->generation, strtoull(gen, NULL, 10));
	rc = pragma_int(s, "PRAGMA data_version", &s->data_version, e);
	if (rc != CRETO_OK)
		return rc;
	int src = sqlite3_prepare_v3(s->db,
				     "SELECT id, name, scopes, status, not_before, not_after, created,"
				     " issuer_kid FROM agents WHERE id = ?",
				     -1, SQLITE_PREPARE_PERSISTENT, &s->get, NULL);
	if (src == SQLITE_OK)
		src = sqlite3_prepare_v3(s->db,
					 "SELECT agent, kid, alg, pub, not_before, not_after, added"
					 " FROM agent_keys WHERE agent = ? AND kid = ?",
					 -1, SQLITE_PREPARE_PERSISTENT, &s->kget, NULL);
	/* the token endpoint's one lookup: agent and key in one statement (one
	 * read transaction, not two) */
	if (src == SQLITE_OK)
		src = sqlite3_prepare_v3(s->db,
					 "SELECT a.id, a.name, a.scopes, a.status, a.not_before, a.not_after, a.created,"
					 " a.issuer_kid, k.agent, k.kid, k.alg, k.pub, k.not_before, k.not_after, k.added"
					 " FROM agents a LEFT JOIN agent_keys k ON k.agent = a.id AND k.kid = ?2"
					 " WHERE a.id = ?1",
					 -1, SQLITE_PREPARE_PERSISTENT, &s->akget, NULL);
	if (src != SQLITE_OK)
		return sql_err(s, src, "store", e);
	return CRETO_OK;
}

/* No schema-borne code paths: defensive mode (no writable_schema, no
 * shadow-table writes) and untrusted schema (no functions with side
 * effects from views or triggers).  Belt to schema_check's braces. */
static void db_harden(sqlite3 *db)
{
	(void)sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
#ifdef SQLITE_DBCONFIG_TRUSTED_SCHEMA
	(void)sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);
#endif
}

static int store_alloc(creto_nhi_store **out, creto_err *e)
{
	creto_nhi_store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return creto_err_set(e, CRETO_EOP, "mutex init failed");
	}
	*out = s;
	return CRETO_OK;
}

/* Drop every entry of the lookup cache (under mu, or at free). */
static void lookup_flush(creto_nhi_store *s)
{
	if (s->lc == NULL)
		return;
	for (size_t i = 0; i < NHI_LOOKUP_BUCKETS; i++)
		while (s->lc[i] != NULL) {
			struct lookup_ent *c = s->lc[i];
			s->lc[i] = c->next;
			OPENSSL_cleanse(c, sizeof(*c));
			free(c);
		}
	s->lc_n = 0;
}

void creto_nhi_store_free(creto_nhi_store *s)
{
	if (s == NULL)
		return;
	sqlite3_finalize(s->get);
	sqlite3_finalize(s->ins);
	sqlite3_finalize(s->kget);
	sqlite3_finalize(s->akget);
	sqlite3_close(s->db);
	lookup_flush(s);
	free(s->lc);
	/* A store loaded from a backup lives in one buffer SQLite never owned
	 * (no FREEONCLOSE, no RESIZEABLE): wipe the plaintext, all of it. */
	if (s->img != NULL) {
		OPENSSL_cleanse(s->img, s->imgcap);
		sqlite3_free(s->img);
	}
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static int store_open_path(const char *path, int flags, creto_nhi_store **out, creto_err *e)
{
	creto_nhi_store *s = NULL;
	int rc = store_alloc(&s, e);
	if (rc != CRETO_OK)
		return rc;
	int src = sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
				  NULL);
	if (src != SQLITE_OK) {
		rc = creto_err_set(e, CRETO_EOP, "%s: %s", path,
				   s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(src));
		creto_nhi_store_free(s);
		return rc;
	}
	sqlite3_extended_result_codes(s->db, 0);
	sqlite3_busy_timeout(s->db, 5000);
	db_harden(s->db);
	*out = s;
	return CRETO_OK;
}

int creto_nhi_store_init(const char *path, const char *issuer, creto_err *e)
{
	if (issuer == NULL)
		issuer = CRETO_NHI_DEFAULT_ISSUER;
	if (!name_valid(issuer) || strlen(issuer) > CRETO_NHI_ISSUER_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "issuer: want 1..%d printable bytes",
				     CRETO_NHI_ISSUER_MAX);
	/* Claim the name exclusively: an existing file is never reinitialised. */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return creto_err_set(e, CRETO_EUSAGE, "%s: already exists", path);
		return creto_err_errno(e, errno, "%s", path);
	}
	close(fd);
	creto_nhi_store *s = NULL;
	int rc = store_open_path(path, SQLITE_OPEN_READWRITE, &s, e);
	if (rc != CRETO_OK)
		goto fail;
	rc = migrate(s, 0, e);
	if (rc != CRETO_OK)
		goto fail;
	sqlite3_stmt *st = NULL;
	int src = sqlite3_prepare_v2(s->db, "INSERT INTO meta (key, value) VALUES ('issuer', ?)", -1,
				     &st, NULL);
	if (src == SQLITE_OK) {
		sqlite3_bind_text(st, 1, issuer, -1, SQLITE_STATIC);
		src = sqlite3_step(st);
		if (src == SQLITE_DONE)
			src = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (src != SQLITE_OK) {
		rc = sql_err(s, src, path, e);
		goto fail;
	}
	creto_nhi_store_free(s);
	return CRETO_OK;
fail:
	creto_nhi_store_free(s);
	unlink(path);
	return rc;
}

int creto_nhi_store_open(const char *path, int readonly, creto_nhi_store **out, creto_err *e)
{
	*out = NULL;
	if (access(path, F_OK) != 0)
		return creto_err_errno(e, errno, "%s", path);
	creto_nhi_store *s = NULL;
	int rc = store_open_path(path, readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE, &s,
				 e);
	if (rc != CRETO_OK)
		return rc;
	rc = store_setup(s, readonly, e);
	if (rc != CRETO_OK) {
		creto_nhi_store_free(s);
		return creto_err_ctx(e, "%s", path);
	}
	*out = s;
	return CRETO_OK;
}

int creto_nhi_store_open_image(uint8_t *img, size_t len, creto_nhi_store **out, creto_err *e)
{
	*out = NULL;
	/* Copy the image into a buffer with fixed room to grow, wipe the one we
	 * were given.  SQLite is told neither FREEONCLOSE (it would free the
	 * buffer unwiped, on close and on a failed deserialize) nor RESIZEABLE
	 * (a growing store would realloc, leaving the old plaintext in freed
	 * memory): the store owns the buffer and wipes it in every case. */
	size_t slack = len / 4 > NHI_IMAGE_SLACK_MIN ? len / 4 : NHI_IMAGE_SLACK_MIN;
	uint8_t *buf = NULL;
	if (len <= CRETO_NHI_BACKUP_DATA_MAX)
		buf = sqlite3_malloc64((sqlite3_uint64)(len + slack));
	if (buf != NULL) {
		memcpy(buf, img, len);
		memset(buf + len, 0, slack);
	}
	OPENSSL_cleanse(img, len);
	sqlite3_free(img);
	if (buf == NULL)
		return creto_err_set(e, len > CRETO_NHI_BACKUP_DATA_MAX ? CRETO_EREJECT : CRETO_EOP,
				     "in-memory store: image of %zu bytes: %s", len,
				     len > CRETO_NHI_BACKUP_DATA_MAX ? "too large" : "out of memory");
	creto_nhi_store *s = NULL;
	int rc = store_alloc(&s, e);
	if (rc != CRETO_OK) {
		OPENSSL_cleanse(buf, len + slack);
		sqlite3_free(buf);
		return rc;
	}
	s->img = buf;
	s->imgcap = len + slack;
	int src = sqlite3_open_v2(":memory:", &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
				  NULL);
	if (src != SQLITE_OK) {
		rc = sql_err(s, src, "in-memory store", e);
		creto_nhi_store_free(s);
		return rc;
	}
	db_harden(s->db);
	/* A WAL-mode image (header bytes 18/19 = 2) cannot be read from memory:
	 * mark it rollback-journal, which is what the content is once serialized. */
	if (len >= 100 && buf[18] == 2 && buf[19] == 2)
		buf[18] = buf[19] = 1;
	src = sqlite3_deserialize(s->db, "main", buf, (sqlite3_int64)len, (sqlite3_int64)s->imgcap, 0);
	if (src != SQLITE_OK) {
		rc = sql_err(s, src, "in-memory store", e);
		creto_nhi_store_free(s);
		return rc;
	}
	/* Pages are read in place (xFetch) rather than copied into the page
	 * cache, which SQLite frees without wiping; writes still pass through it. */
	(void)sqlite3_exec(s->db, "PRAGMA mmap_size = 2147418112", NULL, NULL, NULL);
	rc = store_setup(s, 0, e);
	if (rc != CRETO_OK) {
		creto_nhi_store_free(s);
		return rc;
	}
	*out = s;
	return CRETO_OK;
}

const char *creto_nhi_store_issuer(const creto_nhi_store *s)
{
	return s->issuer;
}

uint64_t creto_nhi_store_generation(const creto_nhi_store *s)
{
	return atomic_load_explicit(&((creto_nhi_store *)s)->generation, memory_order_acquire);
}

int creto_nhi_store_refresh(creto_nhi_store *s, creto_err *e)
{
	pthread_mutex_lock(&s->mu);
	int64_t dv = 0;
	int rc = pragma_int(s, "PRAGMA data_version", &dv, e);
	if (rc == CRETO_OK && dv != s->data_version) {
		s->data_version = dv;
		atomic_fetch_add(&s->generation, 1);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Every write through this handle calls this after it (whatever its
 * outcome: a rolled-back write may have been read inside its transaction). */
static void gen_bump(creto_nhi_store *s)
{
	atomic_fetch_add_explicit(&s->generation, 1, memory_order_acq_rel);
}

static int agent_check(const creto_nhi_agent *a, creto_err *e)
{
	if (!creto_nhi_id_valid(a->id))
		return creto_err_set(e, CRETO_EREJECT,
				     "agent id '%.64s': want 1..%d of [A-Za-z0-9._:@-]", a->id,
				     CRETO_NHI_ID_MAX);
	if (!name_valid(a->name))
		return creto_err_set(e, CRETO_EREJECT,
				     "agent %s: name: want 1..%d bytes without control characters",
				     a->id, CRETO_NHI_NAME_MAX);
	int rc = scopes_check(a->scopes, e);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "agent %s", a->id);
	if (!kid_valid(a->issuer_kid))
		return creto_err_set(e, CRETO_EREJECT, "agent %s: issuer key id: want %d hex digits",
				     a->id, CRETO_KEYID_HEXLEN);
	if (creto_nhi_status_name(a->status) == NULL)
		return creto_err_set(e, CRETO_EREJECT, "agent %s: bad status", a->id);
	if (a->not_before < 0 || a->not_after < 0 ||
	    (a->not_after != 0 && a->not_after <= a->not_before))
		return creto_err_set(e, CRETO_EREJECT, "agent %s: not-after must follow not-before",
				     a->id);
	return CRETO_OK;
}

int creto_nhi_store_add(creto_nhi_store *s, const creto_nhi_agent *a, creto_err *e)
{
	int rc = agent_check(a, e);
	if (rc != CRETO_OK)
		return rc;
	pthread_mutex_lock(&s->mu);
	int src = SQLITE_OK;
	if (s->ins == NULL)
		src = sqlite3_prepare_v3(s->db,
					 "INSERT INTO agents (id, name, scopes, status, not_before,"
					 " not_after, created, issuer_kid, status_changed)"
					 " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
					 -1, SQLITE_PREPARE_PERSISTENT, &s->ins, NULL);
	sqlite3_stmt *st = s->ins;
	if (src == SQLITE_OK) {
		sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, a->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, a->scopes, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, creto_nhi_status_name(a->status), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, a->not_before);
		sqlite3_bind_int64(st, 6, a->not_after);
		sqlite3_bind_int64(st, 7, a->created);
		sqlite3_bind_text(st, 8, a->issuer_kid, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 9, a->created);
		src = sqlite3_step(st);
	}
	if (src == SQLITE_CONSTRAINT)
		rc = creto_err_set(e, CRETO_EREJECT, "agent %s already exists", a->id);
	else if (src != SQLITE_DONE)
		rc = sql_err(s, src, "add agent", e);
	if (st != NULL) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	gen_bump(s);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int creto_nhi_store_begin(creto_nhi_store *s, creto_err *e)
{
	pthread_mutex_lock(&s->mu);
	int rc = exec(s, "BEGIN IMMEDIATE", "store", e);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int creto_nhi_store_commit(creto_nhi_store *s, creto_err *e)
{
	pthread_mutex_lock(&s->mu);
	int rc = exec(s, "COMMIT", "store", e);
	gen_bump(s);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* 1 when the column did not fit (and was cut). */
static int copy_col(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
	const char *v = (const char *)sqlite3_column_text(st, col);
	size_t n = v ? strlen(v) : 0;
	int cut = n >= cap;
	if (cut)
		n = cap - 1;
	if (n)
		memcpy(dst, v, n);
	dst[n] = '\0';
	return cut;
}

/* Row -> agent; a row with a bad status or a column longer than add()
 * allows (edited behind our back) is rejected.  The full add-time checks
 * are not repeated on this hot path. */
static int row_agent(sqlite3_stmt *st, creto_nhi_agent *a, creto_err *e)
{
	memset(a, 0, sizeof(*a));
	int cut = copy_col(a->id, sizeof(a->id), st, 0);
	cut |= copy_col(a->name, sizeof(a->name), st, 1);
	cut |= copy_col(a->scopes, sizeof(a->scopes), st, 2);
	const char *status = (const char *)sqlite3_column_text(st, 3);
	int sv = status ? creto_nhi_status_from_name(status) : -1;
	a->not_before = sqlite3_column_int64(st, 4);
	a->not_after = sqlite3_column_int64(st, 5);
	a->created = sqlite3_column_int64(st, 6);
	cut |= copy_col(a->issuer_kid, sizeof(a->issuer_kid), st, 7);
	/* a row longer than add() allows was written behind our back: never
	 * act on a cut-down scope list or key id */
	if (cut)
		return creto_err_set(e, CRETO_EREJECT, "agent %s: a column is longer than allowed in store",
				     a->id);
	if (sv < 0)
		return creto_err_set(e, CRETO_EREJECT, "agent %s: bad status in store", a->id);
	a->status = (creto_nhi_status)sv;
	return CRETO_OK;
}

/* ---- the lookup cache (under s->mu) ---- */

static size_t lookup_bucket(const char *agent, const char *kid)
{
	uint64_t h = 1469598103934665603u; /* FNV-1a over agent, NUL, kid */
	for (const unsigned char *p = (const unsigned char *)agent; *p; p++)
		h = (h ^ *p) * 1099511628211u;
	h *= 1099511628211u;
	for (const unsigned char *p = (const unsigned char *)kid; *p; p++)
		h = (h ^ *p) * 1099511628211u;
	return (size_t)(h ^ (h >> 32)) & (NHI_LOOKUP_BUCKETS - 1);
}

/* The entry for (agent, kid) ("" kid: the agent lookup) made under the
 * current generation gen, or NULL. */
static const struct lookup_ent *lookup_get(creto_nhi_store *s, const char *agent, const char *kid, uint64_t gen)
{
	if (s->lc == NULL || s->lc_gen != gen)
		return NULL;
	for (const struct lookup_ent *c = s->lc[lookup_bucket(agent, kid)]; c != NULL; c = c->next)
		if (c->has_key == (kid[0] != '\0') && strcmp(c->a.id, agent) == 0 &&
		    (!c->has_key || strcmp(c->k.kid, kid) == 0))
			return c;
	return NULL;
}

/* Remember a successful lookup made under generation gen (the generation
 * only moves under mu, which the caller holds throughout).  Entries of an
 * older generation are dropped first.  Silently nothing when out of
 * memory: a cache may forget. */
static void lookup_put(creto_nhi_store *s, const creto_nhi_agent *a, const creto_nhi_agent_key *k, uint64_t gen)
{
	if (s->lc == NULL && (s->lc = calloc(NHI_LOOKUP_BUCKETS, sizeof(*s->lc))) == NULL)
		return;
	if (s->lc_gen != gen || s->lc_n >= NHI_LOOKUP_MAX)
		lookup_flush(s);
	s->lc_gen = gen;
	struct lookup_ent *c = malloc(sizeof(*c));
	if (c == NULL)
		return;
	c->has_key = k != NULL;
	c->a = *a;
	if (k != NULL)
		c->k = *k;
	size_t i = lookup_bucket(a->id, k ? k->kid : "");
	c->next = s->lc[i];
	s->lc[i] = c;
	s->lc_n++;
}

int creto_nhi_store_get(creto_nhi_store *s, const char *id, creto_nhi_agent *out, creto_err *e)
{
	if (!creto_nhi_id_valid(id))
		return creto_err_set(e, CRETO_EREJECT, "unknown agent '%.64s' (malformed id)", id);
	pthread_mutex_lock(&s->mu);
	uint64_t gen = creto_nhi_store_generation(s);
	const struct lookup_ent *c = lookup_get(s, id, "", gen);
	if (c != NULL) {
		*out = c->a;
		pthread_mutex_unlock(&s->mu);
		return CRETO_OK;
	}
	int rc;
	sqlite3_bind_text(s->get, 1, id, -1, SQLITE_STATIC);
	int src = sqlite3_step(s->get);
	if (src == SQLITE_ROW) {
		rc = row_agent(s->get, out, e);
		if (rc == CRETO_OK)
			lookup_put(s, out, NULL, gen);
	} else if (src == SQLITE_DONE)
		rc = creto_err_set(e, CRETO_EREJECT, "unknown agent '%s'", id);
	else
		rc = sql_err(s, src, "agent lookup", e);
	sqlite3_reset(s->get);
	sqlite3_clear_bindings(s->get);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* The status column of id inside the current transaction, or -1. */
static int status_now(creto_nhi_store *s, const char *id)
{
	int sv = -1;
	sqlite3_bind_text(s->get, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(s->get) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(s->get, 3);
		sv = v ? creto_nhi_status_from_name(v) : -1;
	}
	sqlite3_reset(s->get);
	sqlite3_clear_bindings(s->get);
	return sv;
}

int creto_nhi_store_set_status(creto_nhi_store *s, const char *id, creto_nhi_status stv, int64_t now,
			       creto_err *e)
{
	if (creto_nhi_status_name(stv) == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "set status: bad status %d", (int)stv);
	creto_nhi_agent a;
	int rc = creto_nhi_store_get(s, id, &a, e);
	if (rc != CRETO_OK)
		return rc;
	if (a.status == CRETO_NHI_REVOKED)
		return creto_err_set(e, CRETO_EREJECT, "agent %s is revoked (final)", id);
	if (a.status == stv)
		return CRETO_OK;
	pthread_mutex_lock(&s->mu);
	rc = exec(s, "BEGIN IMMEDIATE", "set status", e);
	if (rc != CRETO_OK)
		goto out;
	sqlite3_stmt *st = NULL;
	int src = sqlite3_prepare_v2(s->db,
				     "UPDATE agents SET status = ?, status_changed = ? WHERE id = ?"
				     " AND status != 'revoked'",
				     -1, &st, NULL);
	if (src == SQLITE_OK) {
		sqlite3_bind_text(st, 1, creto_nhi_status_name(stv), -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now);
		sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
		src = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (src == SQLITE_DONE && sqlite3_changes(s->db) != 1) {
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		rc = creto_err_set(e, CRETO_EREJECT, "agent %s is revoked (final)", id);
		goto out;
	}
	/* The change must have taken effect: read it back inside the same
	 * transaction (anything that undid it, whatever the schema check
	 * missed, makes this a refusal, never a false "revoked"). */
	if (src == SQLITE_DONE && status_now(s, id) != (int)stv) {
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		rc = creto_err_set(e, CRETO_EREJECT, "agent %s: status change to %s did not take effect in the store", id,
				   creto_nhi_status_name(stv));
		goto out;
	}
	if (src == SQLITE_DONE)
		src = sqlite3_exec(s->db,
				   "UPDATE meta SET value = CAST(value AS INTEGER) + 1"
				   " WHERE key = 'generation'",
				   NULL, NULL, NULL);
	if (src != SQLITE_OK && src != SQLITE_DONE) {
		rc = sql_err(s, src, "set status", e);
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	rc = exec(s, "COMMIT", "set status", e);
	if (rc != CRETO_OK) {
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	gen_bump(s);
	/* Our own commit also moves data_version for other connections only;
	 * nothing to record here. */
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int creto_nhi_store_list(creto_nhi_store *s, int (*fn)(const creto_nhi_agent *a, void *arg),
			 void *arg, creto_err *e)
{
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *st = NULL;
	int rc = CRETO_OK;
	int src = sqlite3_prepare_v2(s->db,
				     "SELECT id, name, scopes, status, not_before, not_after, created,"
				     " issuer_kid FROM agents ORDER BY id",
				     -1, &st, NULL);
	if (src != SQLITE_OK) {
		rc = sql_err(s, src, "list", e);
		goto out;
	}
	creto_nhi_agent a;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		rc = row_agent(st, &a, e);
		if (rc != CRETO_OK)
			goto out;
		rc = fn(&a, arg);
		if (rc != 0)
			goto out;
	}
	if (src != SQLITE_DONE)
		rc = sql_err(s, src, "list", e);
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int creto_nhi_store_count(creto_nhi_store *s, uint64_t *n, creto_err *e)
{
	pthread_mutex_lock(&s->mu);
	int64_t v = 0;
	int rc = pragma_int(s, "SELECT count(*) FROM agents", &v, e);
	pthread_mutex_unlock(&s->mu);
	*n = (uint64_t)v;
	return rc;
}

int creto_nhi_store_serialize(creto_nhi_store *s, uint8_t **img, size_t *len, creto_err *e)
{
	*img = NULL;
	*len = 0;
	pthread_mutex_lock(&s->mu);
	sqlite3_int64 n = 0;
	/* A read transaction keeps the copy consistent against other writers. */
	int rc = exec(s, "BEGIN", "serialize", e);
	if (rc == CRETO_OK) {
		unsigned char *p = sqlite3_serialize(s->db, "main", &n, 0);
		(void)sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
		if (p == NULL)
			rc = creto_err_set(e, CRETO_EOP, "serialize: out of memory");
		else if ((uint64_t)n > CRETO_NHI_BACKUP_DATA_MAX) {
			sqlite3_free(p);
			rc = creto_err_set(e, CRETO_EUSAGE, "store larger than %llu bytes",
					   (unsigned long long)CRETO_NHI_BACKUP_DATA_MAX);
		} else {
			*img = p;
			*len = (size_t)n;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

const uint8_t *nhi_store_image(creto_nhi_store *s, size_t *len)
{
	sqlite3_int64 n = 0;
	unsigned char *p = sqlite3_serialize(s->db, "main", &n, SQLITE_SERIALIZE_NOCOPY);
	*len = p ? (size_t)n : 0;
	return p;
}

int nhi_store_quick_check(creto_nhi_store *s, creto_err *e)
{
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *st = NULL;
	int rc = CRETO_OK;
	int src = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL);
	if (src == SQLITE_OK)
		src = sqlite3_step(st);
	if (src != SQLITE_ROW) {
		rc = sql_err(s, src, "quick_check", e);
	} else {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		if (v == NULL || strcmp(v, "ok") != 0)
			rc = creto_err_set(e, CRETO_EREJECT, "store integrity: %.200s", v ? v : "?");
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- agent keys ---- */

static creto_jws_alg key_jws_alg(creto_alg a)
{
	return a == CRETO_ALG_ED25519 ? CRETO_JWS_EDDSA : a == CRETO_ALG_ECDSA_P256 ? CRETO_JWS_ES256 : CRETO_JWS_NONE;
}

/* Row (from column c0 on) -> key; anything add() would not have written is refused. */
static int row_key_at(sqlite3_stmt *st, int c0, creto_nhi_agent_key *k, creto_err *e)
{
	memset(k, 0, sizeof(*k));
	int cut = copy_col(k->agent, sizeof(k->agent), st, c0);
	cut |= copy_col(k->kid, sizeof(k->kid), st, c0 + 1);
	const char *alg = (const char *)sqlite3_column_text(st, c0 + 2);
	k->alg = alg == NULL ? CRETO_JWS_NONE
		 : strcmp(alg, "EdDSA") == 0 ? CRETO_JWS_EDDSA
		 : strcmp(alg, "ES256") == 0 ? CRETO_JWS_ES256
					      : CRETO_JWS_NONE;
	const void *pub = sqlite3_column_blob(st, c0 + 3);
	int n = sqlite3_column_bytes(st, c0 + 3);
	size_t want = k->alg == CRETO_JWS_EDDSA ? 32 : 65;
	if (cut || k->alg == CRETO_JWS_NONE || pub == NULL || (size_t)n != want)
		return creto_err_set(e, CRETO_EREJECT, "agent %s key %s: malformed row in store", k->agent,
				     k->kid);
	memcpy(k->pub, pub, want);
	k->publen = want;
	k->not_before = sqlite3_column_int64(st, c0 + 4);
	k->not_after = sqlite3_column_int64(st, c0 + 5);
	k->added = sqlite3_column_int64(st, c0 + 6);
	return CRETO_OK;
}

static int row_key(sqlite3_stmt *st, creto_nhi_agent_key *k, creto_err *e)
{
	return row_key_at(st, 0, k, e);
}

int creto_nhi_store_agent_key(creto_nhi_store *s, const char *agent, const char *kid, creto_nhi_agent *a,
			      creto_nhi_agent_key *k, creto_err *e)
{
	if (!creto_nhi_id_valid(agent))
		return creto_err_set(e, CRETO_EREJECT, "unknown agent '%.64s' (malformed id)", agent);
	pthread_mutex_lock(&s->mu);
	uint64_t gen = creto_nhi_store_generation(s);
	const struct lookup_ent *c = kid[0] ? lookup_get(s, agent, kid, gen) : NULL;
	if (c != NULL) {
		*a = c->a;
		*k = c->k;
		pthread_mutex_unlock(&s->mu);
		return CRETO_OK;
	}
	int rc;
	sqlite3_bind_text(s->akget, 1, agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->akget, 2, kid, -1, SQLITE_STATIC);
	int src = sqlite3_step(s->akget);
	if (src == SQLITE_ROW) {
		rc = row_agent(s->akget, a, e);
		if (rc == CRETO_OK && sqlite3_column_type(s->akget, 8) == SQLITE_NULL)
			rc = creto_err_set(e, CRETO_EREJECT, "agent %.64s has no key %.64s", agent, kid);
		else if (rc == CRETO_OK)
			rc = row_key_at(s->akget, 8, k, e);
		if (rc == CRETO_OK && kid[0])
			lookup_put(s, a, k, gen);
	} else if (src == SQLITE_DONE) {
		rc = creto_err_set(e, CRETO_EREJECT, "unknown agent '%s'", agent);
	} else {
		rc = sql_err(s, src, "agent key lookup", e);
	}
	sqlite3_reset(s->akget);
	sqlite3_clear_bindings(s->akget);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int creto_nhi_agent_key_pubkey(const creto_nhi_agent_key *k, creto_pubkey **out, creto_err *e)
{
	creto_alg a = creto_jws_alg_key(k->alg);
	int rc = creto_pubkey_new(a, k->pub, k->publen, out, e);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "agent %s key %s", k->agent, k->kid);
	if (strcmp(creto_pubkey_id(*out), k->kid) != 0) {
		creto_pubkey_free(*out);
		*out = NULL;
		return creto_err_set(e, CRETO_EREJECT, "agent %s key %s: kid is not the key's id", k->agent, k->kid);
	}
	return CRETO_OK;
}

/* One integer from a query with up to two text parameters. */
static int count_q(creto_nhi_store *s, const char *sql, const char *p1, const char *p2, int64_t *out,
		   creto_err *e)
{
	sqlite3_stmt *st = NULL;
	int src = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (src == SQLITE_OK) {
		sqlite3_bind_text(st, 1, p1, -1, SQLITE_STATIC);
		if (p2 != NULL)
			sqlite3_bind_text(st, 2, p2, -1, SQLITE_STATIC);
		src = sqlite3_step(st);
	}
	int rc = CRETO_OK;
	if (src == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else
		rc = sql_err(s, src, "agent keys", e);
	sqlite3_finalize(st);
	return rc;
}

int creto_nhi_store_key_add(creto_nhi_store *s, const char *agent, const creto_pubkey *pk, int64_t not_before,
			    int64_t not_after, int64_t now, creto_nhi_agent_key *out, creto_err *e)
{
	creto_nhi_agent_key k;
	memset(&k, 0, sizeof(k));
	k.alg = key_jws_alg(creto_pubkey_alg(pk));
	if (k.alg == CRETO_JWS_NONE)
		return creto_err_set(e, CRETO_EREJECT,
				     "agent %.64s: key %s is %s; agent keys are ed25519 (EdDSA) or ecdsa-p256 (ES256)",
				     agent, creto_pubkey_id(pk), creto_alg_name(creto_pubkey_alg(pk)));
	if (not_before < 0 || not_after < 0 || (not_after != 0 && not_after <= not_before))
		return creto_err_set(e, CRETO_EREJECT, "agent %.64s key %s: not-after must follow not-before",
				     agent, creto_pubkey_id(pk));
	creto_nhi_agent a;
	int rc = creto_nhi_store_get(s, agent, &a, e);
	if (rc != CRETO_OK)
		return rc;
	if (a.status == CRETO_NHI_REVOKED)
		return creto_err_set(e, CRETO_EREJECT, "agent %s is revoked (final): no new keys", agent);
	memcpy(k.agent, agent, strlen(agent) + 1);
	memcpy(k.kid, creto_pubkey_id(pk), CRETO_KEYID_HEXLEN + 1);
	const uint8_t *raw = creto_pubkey_raw(pk, &k.publen);
	memcpy(k.pub, raw, k.publen);
	k.not_before = not_before;
	k.not_after = not_after;
	k.added = now;
	pthread_mutex_lock(&s->mu);
	rc = exec(s, "SAVEPOINT keyadd", "add key", e);
	if (rc != CRETO_OK)
		goto out;
	int64_t n = 0;
	rc = count_q(s, "SELECT count(*) FROM agent_keys WHERE kid = ?", k.kid, NULL, &n, e);
	if (rc == CRETO_OK && n > 0)
		rc = creto_err_set(e, CRETO_EREJECT, "key %s is already registered (one key names one agent)",
				   k.kid);
	if (rc == CRETO_OK)
		rc = count_q(s, "SELECT count(*) FROM agent_keys WHERE agent = ?", agent, NULL, &n, e);
	if (rc == CRETO_OK && n >= CRETO_NHI_AGENT_KEYS_MAX)
		rc = creto_err_set(e, CRETO_EREJECT, "agent %s already has %d keys (remove one first)", agent,
				   CRETO_NHI_AGENT_KEYS_MAX);
	if (rc == CRETO_OK) {
		sqlite3_stmt *st = NULL;
		int src = sqlite3_prepare_v2(s->db,
					     "INSERT INTO agent_keys (agent, kid, alg, pub, not_before, not_after, added)"
					     " VALUES (?, ?, ?, ?, ?, ?, ?)",
					     -1, &st, NULL);
		if (src == SQLITE_OK) {
			sqlite3_bind_text(st, 1, k.agent, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, k.kid, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, creto_jws_alg_name(k.alg), -1, SQLITE_STATIC);
			sqlite3_bind_blob(st, 4, k.pub, (int)k.publen, SQLITE_STATIC);
			sqlite3_bind_int64(st, 5, k.not_before);
			sqlite3_bind_int64(st, 6, k.not_after);
			sqlite3_bind_int64(st, 7, k.added);
			src = sqlite3_step(st);
		}
		sqlite3_finalize(st);
		if (src != SQLITE_DONE)
			rc = sql_err(s, src, "add key", e);
	}
	if (rc == CRETO_OK)
		rc = exec(s, "RELEASE keyadd", "add key", e);
	if (rc != CRETO_OK) {
		(void)sqlite3_exec(s->db, "ROLLBACK TO keyadd; RELEASE keyadd", NULL, NULL, NULL);
		goto out;
	}
	if (out != NULL)
		*out = k;
out:
	gen_bump(s);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int creto_nhi_store_key_remove(creto_nhi_store *s, const char *agent, const char *kid, creto_err *e)
{
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *st = NULL;
	int rc = CRETO_OK;
	int src = sqlite3_prepare_v2(s->db, "DELETE FROM agent_keys WHERE agent = ? AND kid = ?", -1, &st, NULL);
	if (src == SQLITE_OK) {
		sqlite3_bind_text(st, 1, agent, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, kid, -1, SQLITE_STATIC);
		src = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (src != SQLITE_DONE)
		rc = sql_err(s, src, "remove key", e);
	else if (sqlite3_changes(s->db) != 1)
		rc = creto_err_set(e, CRETO_EREJECT, "agent %.64s has no key %.64s", agent, kid);
	gen_bump(s);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int creto_nhi_store_key_get(creto_nhi_store *s, const char *agent, const char *kid, creto_nhi_agent_key *out,
			    creto_err *e)
{
	pthread_mutex_lock(&s->mu);
	int rc;
	sqlite3_bind_text(s->kget, 1, agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(s->kget, 2, kid, -1, SQLITE_STATIC);
	int src = sqlite3_step(s->kget);
	if (src == SQLITE_ROW)
		rc = row_key(s->kget, out, e);
	else if (src == SQLITE_DONE)
		rc = creto_err_set(e, CRETO_EREJECT, "agent %.64s has no key %.64s", agent, kid);
	else
		rc = sql_err(s, src, "key lookup", e);
	sqlite3_reset(s->kget);
	sqlite3_clear_bindings(s->kget);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int creto_nhi_store_key_list(creto_nhi_store *s, const char *agent,
			     int (*fn)(const creto_nhi_agent_key *k, void *arg), void *arg, creto_err *e)
{
	pthread_mutex_lock(&s->mu);
	sqlite3_stmt *st = NULL;
	int rc = CRETO_OK;
	int src = sqlite3_prepare_v2(s->db,
				     "SELECT agent, kid, alg, pub, not_before, not_after, added FROM agent_keys"
				     " WHERE ?1 IS NULL OR agent = ?1 ORDER BY agent, kid",
				     -1, &st, NULL);
	if (src != SQLITE_OK) {
		rc = sql_err(s, src, "list keys", e);
		goto out;
	}
	if (agent != NULL)
		sqlite3_bind_text(st, 1, agent, -1, SQLITE_STATIC);
	creto_nhi_agent_key k;
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		rc = row_key(st, &k, e);
		if (rc != CRETO_OK)
			goto out;
		rc = fn(&k, arg);
		if (rc != 0)
			goto out;
	}
	if (src != SQLITE_DONE)
		rc = sql_err(s, src, "list keys", e);
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->mu);
	return rc;
}
