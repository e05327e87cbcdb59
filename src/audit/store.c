/*
 * store.c - the audit log's SQLite file DIR/audit.db (docs/audit.md
 * "Storage"): opening it, its identity, and the stored tree nodes that
 * proofs and the appender's frontier read.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit_int.h"

/* Readers keep the tree nodes they read (level >= 1) in a direct-mapped
 * cache: a complete node never changes, and every proof passes through the
 * same upper levels, so a warm proof reads only its lowest nodes. */
#define NCACHE 65536
struct aud_ncache {
	int64_t id[NCACHE]; /* 0: empty (level-0 ids are never cached) */
	uint8_t h[NCACHE][AUD_HASH];
};

static size_t nc_slot(int64_t id)
{
	uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15ull;
	return (size_t)(x >> 48) & (NCACHE - 1);
}

int aud_db_err(aud_db *d, creto_err *e, const char *what)
{
	return creto_err_set(e, CRETO_EOP, "audit db: %s: %s", what,
			     d->db ? sqlite3_errmsg(d->db) : "not open");
}

static int pragma_int(aud_db *d, const char *sql, int64_t *v, creto_err *e)
{
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(d->db, sql, -1, &q, NULL) != SQLITE_OK)
		return aud_db_err(d, e, sql);
	int rc = sqlite3_step(q);
	*v = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
	sqlite3_finalize(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : aud_db_err(d, e, sql);
}

int aud_db_open(aud_db *d, const char *dir, int readonly, creto_err *e)
{
	memset(d, 0, sizeof(*d));
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/" AUD_DB_NAME, dir) >= sizeof(path))
		return creto_err_set(e, CRETO_EUSAGE, "audit log %s: path too long", dir);
	if (access(path, F_OK) != 0)
		return creto_err_set(e, CRETO_EUSAGE, "audit log %s: no %s (not an audit log?)", dir,
				     AUD_DB_NAME);
	int flags = SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX |
		    (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE);
	if (sqlite3_open_v2(path, &d->db, flags, NULL) != SQLITE_OK) {
		int rc = aud_db_err(d, e, path);
		aud_db_close(d);
		return rc;
	}
	sqlite3_busy_timeout(d->db, 10000);
	/* proofs read O(log n) scattered pages: map the file instead of a
	 * pread per page, and keep more of it cached */
	(void)sqlite3_exec(d->db, "PRAGMA mmap_size=4294967296; PRAGMA cache_size=-65536", NULL,
			   NULL, NULL);
	int64_t app, ver;
	int rc = pragma_int(d, "PRAGMA application_id", &app, e);
	if (rc == 0)
		rc = pragma_int(d, "PRAGMA user_version", &ver, e);
	if (rc == 0 && (app != AUD_APP_ID || ver != AUD_SCHEMA_VERSION))
		rc = creto_err_set(e, CRETO_EUSAGE,
				   "audit log %s: not an audit log of schema %d (application_id %lld, "
				   "version %lld)",
				   dir, AUD_SCHEMA_VERSION, (long long)app, (long long)ver);
	sqlite3_stmt *q = NULL;
	if (rc == 0 && sqlite3_prepare_v2(d->db, "SELECT k, v FROM meta", -1, &q, NULL) != SQLITE_OK)
		rc = aud_db_err(d, e, "meta");
	int have_origin = 0;
	while (rc == 0) {
		int s = sqlite3_step(q);
		if (s == SQLITE_DONE)
			break;
		if (s != SQLITE_ROW) {
			rc = aud_db_err(d, e, "meta");
			break;
		}
		const char *k = (const char *)sqlite3_column_text(q, 0);
		if (k == NULL)
			continue;
		if (strcmp(k, "origin") == 0) {
			const char *v = (const char *)sqlite3_column_text(q, 1);
			if (v == NULL || strlen(v) > AUD_ORIGIN_MAX) {
				rc = creto_err_set(e, CRETO_EREJECT, "audit log %s: bad origin", dir);
				break;
			}
			strcpy(d->origin, v);
			have_origin = 1;
		} else if (strcmp(k, "base") == 0) {
			d->base = (uint64_t)sqlite3_column_int64(q, 1);
		} else if (strcmp(k, "base_time") == 0) {
			d->base_time = sqlite3_column_int64(q, 1);
		}
	}
	sqlite3_finalize(q);
	if (rc == 0 && !have_origin)
		rc = creto_err_set(e, CRETO_EREJECT, "audit log %s: no origin in meta", dir);
	if (rc == 0 &&
	    (sqlite3_prepare_v2(d->db, "SELECT leaf FROM entries WHERE seq=?", -1, &d->q_leaf, NULL) !=
		     SQLITE_OK ||
	     sqlite3_prepare_v2(d->db, "SELECT hash FROM nodes WHERE id=?", -1, &d->q_node, NULL) !=
		     SQLITE_OK ||
	     sqlite3_prepare_v2(d->db, "SELECT leaf FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq",
				-1, &d->q_leaves, NULL) != SQLITE_OK ||
	     sqlite3_prepare_v2(d->db, "BEGIN", -1, &d->q_begin, NULL) != SQLITE_OK ||
	     sqlite3_prepare_v2(d->db, "COMMIT", -1, &d->q_commit, NULL) != SQLITE_OK))
		rc = aud_db_err(d, e, "prepare");
	if (rc == 0 && readonly)
		d->cache = calloc(1, sizeof(*d->cache)); /* NULL: no cache, still correct */
	if (rc)
		aud_db_close(d);
	return rc;
}

void aud_db_close(aud_db *d)
{
	if (d == NULL)
		return;
	sqlite3_finalize(d->q_leaf);
	sqlite3_finalize(d->q_node);
	sqlite3_finalize(d->q_begin);
	sqlite3_finalize(d->q_leaves);
	free(d->cache);
	sqlite3_finalize(d->q_commit);
	if (d->db)
		sqlite3_close(d->db);
	memset(d, 0, sizeof(*d));
}

int aud_db_size(aud_db *d, uint64_t *size, creto_err *e)
{
	sqlite3_stmt *q;
	*size = d->base;
	if (sqlite3_prepare_v2(d->db, "SELECT max(seq) FROM entries", -1, &q, NULL) != SQLITE_OK)
		return aud_db_err(d, e, "size");
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL)
		*size = (uint64_t)sqlite3_column_int64(q, 0) + 1;
	sqlite3_finalize(q);
	return rc == SQLITE_ROW ? 0 : aud_db_err(d, e, "size");
}

static int one_hash(aud_db *d, sqlite3_stmt *q, int64_t key, uint8_t out[AUD_HASH])
{
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, key);
	int rc = sqlite3_step(q);
	int ok = rc == SQLITE_ROW && sqlite3_column_bytes(q, 0) == AUD_HASH;
	if (ok)
		memcpy(out, sqlite3_column_blob(q, 0), AUD_HASH);
	sqlite3_reset(q);
	(void)d;
	return ok ? 0 : (rc == SQLITE_ROW || rc == SQLITE_DONE ? 1 : -1);
}

/* A low-level node (1..AUD_LOW_LEVELS) from its 2^level leaf hashes read
 * in one range query.  1 when the leaves are not all held. */
static int low_node(aud_db *d, unsigned level, uint64_t index, uint8_t out[AUD_HASH])
{
	uint8_t h[1u << AUD_LOW_LEVELS][AUD_HASH];
	uint64_t lo = index << level, n = UINT64_C(1) << level;
	sqlite3_stmt *q = d->q_leaves;
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, (int64_t)lo);
	sqlite3_bind_int64(q, 2, (int64_t)(lo + n));
	uint64_t got = 0;
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (got >= n || sqlite3_column_bytes(q, 0) != AUD_HASH)
			break;
		memcpy(h[got++], sqlite3_column_blob(q, 0), AUD_HASH);
	}
	sqlite3_reset(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	if (got != n)
		return 1;
	for (; n > 1; n >>= 1)
		for (uint64_t i = 0; i < n / 2; i++)
			aud_node_hash(h[2 * i], h[2 * i + 1], h[i]);
	memcpy(out, h[0], AUD_HASH);
	return 0;
}

int aud_db_node(void *ctx, unsigned level, uint64_t index, uint8_t out[AUD_HASH], creto_err *e)
{
	aud_db *d = ctx;
	int rc = 1;
	int64_t id = AUD_NODE_ID(level, index);
	size_t slot = nc_slot(id);
	if (level > 0 && d->cache != NULL && d->cache->id[slot] == id) {
		memcpy(out, d->cache->h[slot], AUD_HASH);
		return 0;
	}
	if (level == 0) {
		rc = one_hash(d, d->q_leaf, (int64_t)index, out);
	} else if (level <= AUD_LOW_LEVELS && (index << level) >= d->base) {
		rc = low_node(d, level, index, out);
	} else if (level <= AUD_LOW_LEVELS) {
		/* across the archived base: stored as part of its frontier, or
		 * made of stored children */
		rc = one_hash(d, d->q_node, id, out);
		if (rc == 1) {
			uint8_t l[AUD_HASH], r[AUD_HASH];
			rc = aud_db_node(d, level - 1, 2 * index, l, e);
			if (rc == 0)
				rc = aud_db_node(d, level - 1, 2 * index + 1, r, e);
			if (rc != 0)
				return rc;
			aud_node_hash(l, r, out);
		}
	}
	if (rc == 1 && (level == 0 || level > AUD_LOW_LEVELS))
		rc = one_hash(d, d->q_node, id, out);
	if (rc == 0 && level > 0 && d->cache != NULL) {
		d->cache->id[slot] = id;
		memcpy(d->cache->h[slot], out, AUD_HASH);
	}
	if (rc == 0)
		return 0;
	if (rc < 0)
		return aud_db_err(d, e, "node");
	return creto_err_set(e, CRETO_EREJECT,
			     "audit tree: node level %u index %llu missing (run creto audit verify)",
			     level, (unsigned long long)index);
}

int aud_db_frontier(aud_db *d, uint64_t size, aud_frontier *f, creto_err *e)
{
	memset(f, 0, sizeof(*f));
	f->size = size;
	for (unsigned l = 0; l < AUD_LEVELS; l++) {
		if (!((size >> l) & 1))
			continue;
		int rc = aud_db_node(d, l, (size >> l) - 1, f->h[l], e);
		if (rc)
			return rc;
	}
	return 0;
}

int aud_db_last_checkpoint(aud_db *d, char **out, size_t *len, creto_err *e)
{
	*out = NULL;
	*len = 0;
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(d->db, "SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1", -1,
			       &q, NULL) != SQLITE_OK)
		return aud_db_err(d, e, "checkpoint");
	int rc = 0, s = sqlite3_step(q);
	if (s == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(q, 0);
		char *t = malloc(n + 1);
		if (t == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
		} else {
			memcpy(t, sqlite3_column_blob(q, 0), n);
			t[n] = '\0';
			*out = t;
			*len = n;
		}
	} else if (s != SQLITE_DONE) {
		rc = aud_db_err(d, e, "checkpoint");
	}
	sqlite3_finalize(q);
	return rc;
}
