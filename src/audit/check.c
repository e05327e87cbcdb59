/*
 * check.c - reading a log beside its writer (show, tail, prove), the
 * verifier (a log directory or an export file, docs/audit.md "Verify"),
 * and the export / archive writer.
 *
 * The verifier is one streaming pass: entries in order, each checked
 * (canonical form, sequence number, monotone time, stored leaf hash when
 * the store has one) and folded into a frontier; each signed checkpoint is
 * checked when the pass reaches its size.  Memory is O(log n).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit_int.h"
#include "util/enc.h"
#include "util/file.h"

/* ---- the reader ---- */

struct creto_audit_reader {
	aud_db d;
};

int creto_audit_reader_open(const char *dir, creto_audit_reader **out, creto_err *e)
{
	*out = NULL;
	creto_audit_reader *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	int rc = aud_db_open(&r->d, dir, 1, e);
	if (rc) {
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void creto_audit_reader_close(creto_audit_reader *r)
{
	if (r == NULL)
		return;
	aud_db_close(&r->d);
	free(r);
}

const char *creto_audit_reader_origin(const creto_audit_reader *r)
{
	return r->d.origin;
}

int creto_audit_reader_size(creto_audit_reader *r, uint64_t *size, uint64_t *first, creto_err *e)
{
	if (first)
		*first = r->d.base;
	return aud_db_size(&r->d, size, e);
}

static int entry_time(aud_db *d, uint64_t seq, int64_t *t, creto_err *e)
{
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(d->db, "SELECT entry FROM entries WHERE seq=?", -1, &q, NULL) !=
	    SQLITE_OK)
		return aud_db_err(d, e, "entry");
	sqlite3_bind_int64(q, 1, (int64_t)seq);
	int rc = 0;
	if (sqlite3_step(q) != SQLITE_ROW) {
		rc = creto_err_set(e, CRETO_EREJECT, "audit log: entry %llu missing",
				   (unsigned long long)seq);
	} else {
		aud_entry pe;
		rc = aud_entry_parse(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0), &pe,
				     e);
		if (rc == 0)
			*t = pe.time_us;
		else
			creto_err_ctx(e, "entry %llu", (unsigned long long)seq);
	}
	sqlite3_finalize(q);
	return rc;
}

int creto_audit_reader_seek_time(creto_audit_reader *r, int64_t time_us, uint64_t *seq, creto_err *e)
{
	uint64_t lo = r->d.base, hi;
	int rc = aud_db_size(&r->d, &hi, e);
	while (rc == 0 && lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		int64_t t = 0;
		rc = entry_time(&r->d, mid, &t, e);
		if (rc)
			break;
		if (t < time_us)
			lo = mid + 1;
		else
			hi = mid;
	}
	*seq = lo;
	return rc;
}

int creto_audit_reader_scan(creto_audit_reader *r, uint64_t from, uint64_t to,
			    int (*fn)(void *ctx, uint64_t seq, const char *entry, size_t len),
			    void *ctx, creto_err *e)
{
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(r->d.db,
			       "SELECT seq, entry FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq",
			       -1, &q, NULL) != SQLITE_OK)
		return aud_db_err(&r->d, e, "scan");
	sqlite3_bind_int64(q, 1, (int64_t)(from > INT64_MAX ? INT64_MAX : from));
	sqlite3_bind_int64(q, 2, (int64_t)(to > INT64_MAX ? INT64_MAX : to));
	int rc = 0;
	for (;;) {
		int s = sqlite3_step(q);
		if (s == SQLITE_DONE)
			break;
		if (s != SQLITE_ROW) {
			rc = aud_db_err(&r->d, e, "scan");
			break;
		}
		rc = fn(ctx, (uint64_t)sqlite3_column_int64(q, 0), sqlite3_column_blob(q, 1),
			(size_t)sqlite3_column_bytes(q, 1));
		if (rc)
			break;
	}
	sqlite3_finalize(q);
	return rc;
}

int creto_audit_reader_checkpoint(creto_audit_reader *r, char **out, size_t *len, creto_err *e)
{
	return aud_db_last_checkpoint(&r->d, out, len, e);
}

int creto_audit_reader_prove(creto_audit_reader *r, uint64_t seq, uint64_t size,
			     creto_audit_proof *p, creto_err *e)
{
	memset(p, 0, sizeof(*p));
	uint64_t n = size;
	int rc = 0;
	/* a given size needs no max(seq) query: the leaf lookup below fails
	 * for an entry the log does not hold, and each node for a size beyond it */
	if (size == 0)
		rc = aud_db_size(&r->d, &n, e);
	if (rc)
		return rc;
	if (size == 0)
		size = n;
	if (size > n || seq >= size)
		return creto_err_set(e, CRETO_EUSAGE, "audit prove: entry %llu not in a tree of %llu",
				     (unsigned long long)seq, (unsigned long long)size);
	p->index = seq;
	p->size = size;
	/* one read transaction for the O(log n) lookups, not one per lookup */
	sqlite3_reset(r->d.q_begin);
	int txn = sqlite3_step(r->d.q_begin) == SQLITE_DONE;
	rc = aud_db_node(&r->d, 0, seq, p->leaf, e);
	if (rc == 0)
		rc = aud_inclusion_proof(aud_db_node, &r->d, seq, size, p->path, &p->len, e);
	/* the path leads to the root: no more reads */
	if (rc == 0 && aud_inclusion_root(seq, size, p->leaf, (const uint8_t(*)[32])p->path, p->len,
					  p->root) != 0)
		rc = creto_err_set(e, CRETO_EOP, "audit prove: inconsistent path");
	if (txn) {
		sqlite3_reset(r->d.q_commit);
		(void)sqlite3_step(r->d.q_commit);
		sqlite3_reset(r->d.q_commit);
	}
	return rc;
}

int creto_audit_reader_consistency(creto_audit_reader *r, uint64_t old_size, uint64_t new_size,
				   creto_audit_proof *p, creto_err *e)
{
	memset(p, 0, sizeof(*p));
	uint64_t n;
	int rc = aud_db_size(&r->d, &n, e);
	if (rc)
		return rc;
	if (new_size == 0)
		new_size = n;
	if (new_size > n || old_size > new_size)
		return creto_err_set(e, CRETO_EUSAGE, "audit prove: sizes %llu..%llu not in the log",
				     (unsigned long long)old_size, (unsigned long long)new_size);
	p->index = old_size;
	p->size = new_size;
	rc = aud_consistency_proof(aud_db_node, &r->d, old_size, new_size, p->path, &p->len, e);
	if (rc == 0)
		rc = aud_root_at(aud_db_node, &r->d, new_size, p->root, e);
	return rc;
}

int creto_audit_checkpoint_parse(const char *text, size_t len, char *origin, uint64_t *size,
				 uint8_t root[32], creto_err *e)
{
	aud_checkpoint cp;
	int rc = aud_note_parse(text, len, &cp, e);
	if (rc)
		return rc;
	if (origin)
		strcpy(origin, cp.origin);
	if (size)
		*size = cp.size;
	if (root)
		memcpy(root, cp.root, 32);
	return 0;
}

/* ---- the verifier ---- */

typedef struct checker {
	const creto_pubkey *pub;
	char origin[AUD_ORIGIN_MAX + 1];
	aud_frontier fr;
	uint64_t start;
	int64_t last_time;
	uint64_t ncp, signed_size;
	uint64_t good; /* size of the newest checkpoint whose root matched */
	int good_set;
	int have_kept;
	aud_checkpoint kept;
	creto_err *e;
} checker;

static void fmt_time(int64_t us, char *out, size_t n)
{
	time_t s = (time_t)(us / 1000000);
	struct tm tm;
	if (gmtime_r(&s, &tm) == NULL) {
		snprintf(out, n, "%lld us", (long long)us);
		return;
	}
	char b[32];
	strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%s.%06lldZ", b, (long long)(us % 1000000));
}

static int ck_root_matches(checker *c, const aud_checkpoint *cp, const char *what)
{
	uint8_t root[AUD_HASH];
	aud_frontier_root(&c->fr, root);
	if (memcmp(root, cp->root, AUD_HASH) != 0) {
		if (cp->size > c->good && c->good_set)
			return creto_err_set(c->e, CRETO_EREJECT,
					     "%s at size %llu: its root differs from the entries' root: an "
					     "entry in %llu..%llu was changed, reordered or rewritten (the "
					     "checkpoint at %llu matched)",
					     what, (unsigned long long)cp->size, (unsigned long long)c->good,
					     (unsigned long long)cp->size - 1, (unsigned long long)c->good);
		return creto_err_set(c->e, CRETO_EREJECT,
				     "%s at size %llu: its root differs from the entries' root: entries "
				     "before %llu were changed, reordered or rewritten",
				     what, (unsigned long long)cp->size, (unsigned long long)cp->size);
	}
	c->good = cp->size;
	c->good_set = 1;
	return 0;
}

static int ck_entry(checker *c, uint64_t key, const char *buf, size_t len, const uint8_t *stored)
{
	uint64_t want = c->fr.size;
	if (key > want)
		return creto_err_set(c->e, CRETO_EREJECT,
				     "entry %llu missing (deleted?): the next entry held is %llu",
				     (unsigned long long)want, (unsigned long long)key);
	if (key < want)
		return creto_err_set(c->e, CRETO_EREJECT, "entry %llu appears twice",
				     (unsigned long long)key);
	aud_entry pe;
	int rc = aud_entry_parse(buf, len, &pe, c->e);
	if (rc)
		return creto_err_ctx(c->e, "entry %llu", (unsigned long long)want);
	if (pe.seq != want)
		return creto_err_set(c->e, CRETO_EREJECT,
				     "entry %llu holds sequence number %llu: reordered, replaced or "
				     "deleted",
				     (unsigned long long)want, (unsigned long long)pe.seq);
	if (pe.time_us < c->last_time) {
		char t1[48], t2[48];
		fmt_time(pe.time_us, t1, sizeof(t1));
		fmt_time(c->last_time, t2, sizeof(t2));
		return creto_err_set(c->e, CRETO_EREJECT,
				     "entry %llu: time %s is earlier than the previous entry's %s",
				     (unsigned long long)want, t1, t2);
	}
	c->last_time = pe.time_us;
	uint8_t leaf[AUD_HASH];
	aud_leaf_hash(buf, len, leaf);
	if (stored != NULL && memcmp(stored, leaf, AUD_HASH) != 0)
		return creto_err_set(c->e, CRETO_EREJECT,
				     "entry %llu: differs from the leaf hash stored when it was "
				     "appended (edited)",
				     (unsigned long long)want);
	(void)aud_frontier_push(&c->fr, leaf, NULL, NULL);
	if (c->have_kept && c->fr.size == c->kept.size)
		return ck_root_matches(c, &c->kept, "kept checkpoint");
	return 0;
}

/* A signed checkpoint met when the pass holds cp.size entries (or one
 * before the first entry held: signature only). */
static int ck_checkpoint(checker *c, const char *text, size_t len, int archived)
{
	aud_checkpoint cp;
	int rc = aud_note_parse(text, len, &cp, c->e);
	if (rc)
		return rc;
	if (strcmp(cp.origin, c->origin) != 0)
		return creto_err_set(c->e, CRETO_EREJECT,
				     "checkpoint at size %llu: origin '%s', expected '%s' (a checkpoint "
				     "of another log)",
				     (unsigned long long)cp.size, cp.origin, c->origin);
	rc = aud_note_verify(text, len, c->pub, &cp, c->e);
	if (rc)
		return rc;
	c->ncp++;
	if (cp.size > c->signed_size)
		c->signed_size = cp.size;
	if (archived)
		return 0;
	if (cp.size != c->fr.size)
		return creto_err_set(c->e, CRETO_EREJECT, "checkpoint at size %llu out of place (at %llu)",
				     (unsigned long long)cp.size, (unsigned long long)c->fr.size);
	return ck_root_matches(c, &cp, "checkpoint");
}

static int ck_init(checker *c, const creto_pubkey *pub, const char *origin, const char *kept,
		   size_t kept_len, creto_err *e)
{
	memset(c, 0, sizeof(*c));
	c->pub = pub;
	c->e = e;
	snprintf(c->origin, sizeof(c->origin), "%s", origin);
	if (kept != NULL) {
		int rc = aud_note_verify(kept, kept_len, pub, &c->kept, e);
		if (rc)
			return creto_err_ctx(e, "kept checkpoint");
		if (strcmp(c->kept.origin, origin) != 0)
			return creto_err_set(e, CRETO_EREJECT,
					     "kept checkpoint: origin '%s', expected '%s' (a checkpoint "
					     "of another log)",
					     c->kept.origin, origin);
		c->have_kept = 1;
	}
	return 0;
}

static int ck_start(checker *c, const aud_frontier *f)
{
	c->fr = *f;
	c->start = f->size;
	if (c->have_kept && c->kept.size < c->start)
		return creto_err_set(c->e, CRETO_EUSAGE,
				     "kept checkpoint of size %llu is before the first entry held "
				     "(%llu): verify the archive with it",
				     (unsigned long long)c->kept.size, (unsigned long long)c->start);
	if (c->have_kept && c->kept.size == c->start)
		return ck_root_matches(c, &c->kept, "kept checkpoint");
	return 0;
}

static int ck_finish(checker *c, creto_audit_report *rep)
{
	if (c->have_kept && c->kept.size > c->fr.size)
		return creto_err_set(c->e, CRETO_EREJECT,
				     "the log holds %llu entries but the kept checkpoint has %llu: "
				     "truncated or rolled back",
				     (unsigned long long)c->fr.size, (unsigned long long)c->kept.size);
	if (rep != NULL) {
		memset(rep, 0, sizeof(*rep));
		snprintf(rep->origin, sizeof(rep->origin), "%s", c->origin);
		rep->first = c->start;
		rep->size = c->fr.size;
		rep->checkpoints = c->ncp;
		rep->signed_size = c->signed_size;
		aud_frontier_root(&c->fr, rep->root);
	}
	return 0;
}

typedef struct cpnote {
	uint64_t size;
	char *text;
	size_t len;
} cpnote;

static void cps_free(cpnote *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].text);
	free(v);
}

static int load_cps(aud_db *d, uint64_t upto, cpnote **out, size_t *n, creto_err *e)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(d->db, "SELECT size, note FROM checkpoints WHERE size <= ? ORDER BY size",
			       -1, &q, NULL) != SQLITE_OK)
		return aud_db_err(d, e, "checkpoints");
	sqlite3_bind_int64(q, 1, (int64_t)(upto > INT64_MAX ? INT64_MAX : upto));
	size_t cap = 0;
	int rc = 0;
	cpnote *v = NULL;
	for (;;) {
		int s = sqlite3_step(q);
		if (s == SQLITE_DONE)
			break;
		if (s != SQLITE_ROW) {
			rc = aud_db_err(d, e, "checkpoints");
			break;
		}
		size_t len = (size_t)sqlite3_column_bytes(q, 1);
		if (len > AUD_NOTE_MAX) {
			rc = creto_err_set(e, CRETO_EREJECT, "checkpoint at size %lld: over %d bytes",
					   (long long)sqlite3_column_int64(q, 0), AUD_NOTE_MAX);
			break;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			cpnote *nv = realloc(v, cap * sizeof(*nv));
			if (nv == NULL) {
				rc = creto_err_set(e, CRETO_EOP, "out of memory");
				break;
			}
			v = nv;
		}
		char *t = malloc(len + 1);
		if (t == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
			break;
		}
		if (len)
			memcpy(t, sqlite3_column_blob(q, 1), len);
		t[len] = '\0';
		v[*n].size = (uint64_t)sqlite3_column_int64(q, 0);
		v[*n].text = t;
		v[*n].len = len;
		(*n)++;
	}
	sqlite3_finalize(q);
	if (rc) {
		cps_free(v, *n);
		*n = 0;
		return rc;
	}
	*out = v;
	return 0;
}

static int verify_db(const char *dir, const creto_pubkey *pub, const char *kept, size_t kept_len,
		     creto_audit_report *rep, creto_err *e)
{
	aud_db d;
	int rc = aud_db_open(&d, dir, 1, e);
	if (rc)
		return rc;
	checker c;
	cpnote *cps = NULL;
	size_t ncps = 0, ci = 0;
	sqlite3_stmt *q = NULL;
	aud_frontier *f0 = malloc(sizeof(*f0));
	if (f0 == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto out;
	}
	/* one read transaction: a consistent snapshot beside a writer */
	rc = sqlite3_exec(d.db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : aud_db_err(&d, e, "begin");
	if (rc == 0)
		rc = ck_init(&c, pub, d.origin, kept, kept_len, e);
	if (rc == 0)
		rc = load_cps(&d, UINT64_MAX, &cps, &ncps, e);
	if (rc == 0)
		rc = aud_db_frontier(&d, d.base, f0, e);
	if (rc == 0)
		rc = ck_start(&c, f0);
	/* checkpoints of archived sizes: signatures only */
	while (rc == 0 && ci < ncps && cps[ci].size < d.base) {
		rc = ck_checkpoint(&c, cps[ci].text, cps[ci].len, 1);
		ci++;
	}
	if (rc == 0 && sqlite3_prepare_v2(d.db, "SELECT seq, leaf, entry FROM entries ORDER BY seq", -1,
					  &q, NULL) != SQLITE_OK)
		rc = aud_db_err(&d, e, "entries");
	while (rc == 0) {
		while (rc == 0 && ci < ncps && cps[ci].size == c.fr.size) {
			rc = ck_checkpoint(&c, cps[ci].text, cps[ci].len, 0);
			ci++;
		}
		if (rc)
			break;
		int s = sqlite3_step(q);
		if (s == SQLITE_DONE)
			break;
		if (s != SQLITE_ROW) {
			rc = aud_db_err(&d, e, "entries");
			break;
		}
		const uint8_t *leaf = sqlite3_column_bytes(q, 1) == AUD_HASH ? sqlite3_column_blob(q, 1)
									     : NULL;
		if (leaf == NULL) {
			rc = creto_err_set(e, CRETO_EREJECT, "entry %lld: stored leaf hash damaged",
					   (long long)sqlite3_column_int64(q, 0));
			break;
		}
		const char *buf = sqlite3_column_blob(q, 2);
		rc = ck_entry(&c, (uint64_t)sqlite3_column_int64(q, 0), buf ? buf : "",
			      (size_t)sqlite3_column_bytes(q, 2), leaf);
	}
	if (rc == 0 && ci < ncps)
		rc = creto_err_set(e, CRETO_EREJECT,
				   "the log holds %llu entries but has a checkpoint of size %llu: "
				   "entries %llu.. were removed (truncated)",
				   (unsigned long long)c.fr.size, (unsigned long long)cps[ci].size,
				   (unsigned long long)c.fr.size);
	if (rc == 0)
		rc = ck_finish(&c, rep);
out:
	sqlite3_finalize(q);
	(void)sqlite3_exec(d.db, "COMMIT", NULL, NULL, NULL);
	cps_free(cps, ncps);
	free(f0);
	aud_db_close(&d);
	return rc;
}

/* Lines of an untrusted file, each at most AUD_LINE_MAX bytes: memory
 * stays bounded whatever the file holds (getline would grow without end). */
typedef struct lines {
	FILE *f;
	char *buf;   /* AUD_LINE_MAX + 1 */
	char *chunk; /* read-ahead */
	size_t clen, cpos;
	int eof;
} lines;

/* 1: a line in l->buf (NUL-terminated, newline removed), 0: end of file,
 * -1: a line over the limit or a last line without newline, -2: read error. */
static int next_line(lines *l, size_t *len)
{
	size_t n = 0;
	for (;;) {
		if (l->cpos == l->clen) {
			if (l->eof)
				return n == 0 ? 0 : -1;
			l->clen = fread(l->chunk, 1, 1 << 16, l->f);
			l->cpos = 0;
			if (l->clen == 0) {
				if (ferror(l->f))
					return -2;
				l->eof = 1;
				continue;
			}
		}
		const char *p = l->chunk + l->cpos;
		size_t avail = l->clen - l->cpos;
		const char *nl = memchr(p, '\n', avail);
		size_t take = nl ? (size_t)(nl - p) : avail;
		if (n + take > AUD_LINE_MAX)
			return -1;
		memcpy(l->buf + n, p, take);
		n += take;
		l->cpos += take + (nl ? 1 : 0);
		if (nl) {
			l->buf[n] = '\0';
			*len = n;
			return 1;
		}
	}
}

/* An export line: one canonical entry, or {"checkpoint":"<note>"}. */
static int verify_export(const char *path, const creto_pubkey *pub, const char *kept,
			 size_t kept_len, creto_audit_report *rep, creto_err *e)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return creto_err_errno(e, errno, "audit export %s", path);
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return creto_err_set(e, CRETO_EUSAGE, "audit export %s: not a regular file", path);
	}
	FILE *f = fdopen(fd, "r");
	if (f == NULL) {
		close(fd);
		return creto_err_errno(e, errno, "audit export %s", path);
	}
	lines lr = {f, malloc(AUD_LINE_MAX + 1), malloc(1 << 16), 0, 0, 0};
	char *line = lr.buf;
	size_t n;
	int lrc = 0;
	uint64_t lineno = 0;
	int rc = 0, started = 0;
	checker c;
	aud_frontier *f0 = calloc(1, sizeof(*f0));
	if (f0 == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto out;
	}
	if (rc == 0 && (lr.buf == NULL || lr.chunk == NULL))
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
	while (rc == 0 && (lrc = next_line(&lr, &n)) == 1) {
		lineno++;
		if (!started) {
			json_error_t je;
			json_t *h = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &je);
			const char *tag = NULL, *origin = NULL;
			json_int_t start = -1;
			json_t *fro = NULL;
			if (h == NULL ||
			    json_unpack(h, "{s:s, s:s, s:I, s:o}", "export", &tag, "origin", &origin,
					"start", &start, "frontier", &fro) != 0 ||
			    strcmp(tag, AUD_EXPORT_TAG) != 0 || start < 0 || !json_is_array(fro) ||
			    aud_origin_check(origin, e) != 0) {
				json_decref(h);
				rc = creto_err_set(e, CRETO_EREJECT, "line 1: not a %s header",
						   AUD_EXPORT_TAG);
				break;
			}
			f0->size = (uint64_t)start;
			size_t k = 0, want = 0;
			for (unsigned l = 0; l < AUD_LEVELS; l++)
				want += (f0->size >> l) & 1;
			if (json_array_size(fro) != want)
				rc = creto_err_set(e, CRETO_EREJECT, "line 1: frontier of %zu hashes, "
								     "expected %zu",
						   json_array_size(fro), want);
			for (unsigned l = 0; rc == 0 && l < AUD_LEVELS; l++) {
				if (!((f0->size >> l) & 1))
					continue;
				const char *b = json_string_value(json_array_get(fro, k++));
				size_t hl;
				if (b == NULL ||
				    creto_b64_decode(f0->h[l], AUD_HASH, &hl, b, strlen(b), 0) != 0 ||
				    hl != AUD_HASH)
					rc = creto_err_set(e, CRETO_EREJECT, "line 1: bad frontier hash");
			}
			if (rc == 0)
				rc = ck_init(&c, pub, origin, kept, kept_len, e);
			json_decref(h);
			if (rc == 0)
				rc = ck_start(&c, f0);
			started = 1;
			continue;
		}
		static const char cpfx[] = "{\"checkpoint\":";
		if ((size_t)n >= sizeof(cpfx) - 1 && memcmp(line, cpfx, sizeof(cpfx) - 1) == 0) {
			json_error_t je;
			json_t *o = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &je);
			const char *note = NULL;
			size_t nl = 0;
			if (o == NULL || json_unpack(o, "{s:s%}", "checkpoint", &note, &nl) != 0) {
				json_decref(o);
				rc = creto_err_set(e, CRETO_EREJECT, "line %llu: bad checkpoint line",
						   (unsigned long long)lineno);
				break;
			}
			aud_checkpoint cp;
			rc = aud_note_parse(note, nl, &cp, e);
			if (rc == 0)
				rc = ck_checkpoint(&c, note, nl, cp.size < c.start);
			json_decref(o);
			if (rc)
				creto_err_ctx(e, "line %llu", (unsigned long long)lineno);
			continue;
		}
		/* entries are numbered by position: start + index */
		rc = ck_entry(&c, c.fr.size, line, (size_t)n, NULL);
	}
	if (rc == 0 && lrc == -1)
		rc = creto_err_set(e, CRETO_EREJECT,
				   "line %llu: over %d bytes or without a final newline",
				   (unsigned long long)lineno + 1, AUD_LINE_MAX);
	if (rc == 0 && lrc == -2)
		rc = creto_err_errno(e, errno ? errno : EIO, "read");
	if (rc == 0 && !started)
		rc = creto_err_set(e, CRETO_EREJECT, "empty export");
	if (rc == 0)
		rc = ck_finish(&c, rep);
	if (rc)
		creto_err_ctx(e, "audit export %s", path);
out:
	free(f0);
	free(lr.buf);
	free(lr.chunk);
	fclose(f);
	return rc;
}

int creto_audit_verify(const char *path, const creto_pubkey *pub, const char *kept, size_t kept_len,
		       creto_audit_report *rep, creto_err *e)
{
	if (rep)
		memset(rep, 0, sizeof(*rep));
	struct stat st;
	if (stat(path, &st) != 0)
		return creto_err_errno(e, errno, "audit verify: %s", path);
	if (S_ISREG(st.st_mode))
		return verify_export(path, pub, kept, kept_len, rep, e);
	int rc = verify_db(path, pub, kept, kept_len, rep, e);
	return rc ? creto_err_ctx(e, "audit log %s", path) : 0;
}

/* ---- export / archive ---- */

static int json_note(FILE *f, const char *note, size_t len)
{
	json_t *o = json_pack("{s:s%}", "checkpoint", note, len);
	if (o == NULL)
		return -1;
	int rc = json_dumpf(o, f, JSON_COMPACT) == 0 && fputc('\n', f) != EOF ? 0 : -1;
	json_decref(o);
	return rc;
}

/* Write the export of d's entries [base, before) to an open file. */
static int export_to(aud_db *d, uint64_t before, FILE *f, creto_err *e)
{
	aud_frontier *f0 = malloc(sizeof(*f0));
	if (f0 == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	int rc = aud_db_frontier(d, d->base, f0, e);
	cpnote *cps = NULL;
	size_t ncps = 0, ci = 0;
	if (rc == 0)
		rc = load_cps(d, before, &cps, &ncps, e);
	json_t *h = NULL, *fa = NULL;
	if (rc == 0) {
		fa = json_array();
		for (unsigned l = 0; fa != NULL && l < AUD_LEVELS; l++) {
			if (!((d->base >> l) & 1))
				continue;
			char b[64];
			creto_b64_encode(b, f0->h[l], AUD_HASH, 0);
			json_array_append_new(fa, json_string(b));
		}
		h = json_pack("{s:s, s:s, s:I, s:o}", "export", AUD_EXPORT_TAG, "origin", d->origin,
			      "start", (json_int_t)d->base, "frontier", fa);
		if (h == NULL || json_dumpf(h, f, JSON_COMPACT | JSON_SORT_KEYS) != 0 ||
		    fputc('\n', f) == EOF)
			rc = creto_err_errno(e, errno ? errno : EIO, "write");
		json_decref(h);
	}
	while (rc == 0 && ci < ncps && cps[ci].size <= d->base) {
		if (json_note(f, cps[ci].text, cps[ci].len) != 0)
			rc = creto_err_errno(e, errno ? errno : EIO, "write");
		ci++;
	}
	sqlite3_stmt *q = NULL;
	if (rc == 0 && sqlite3_prepare_v2(d->db,
					  "SELECT seq, entry FROM entries WHERE seq < ? ORDER BY seq",
					  -1, &q, NULL) != SQLITE_OK)
		rc = aud_db_err(d, e, "export");
	if (rc == 0)
		sqlite3_bind_int64(q, 1, (int64_t)(before > INT64_MAX ? INT64_MAX : before));
	while (rc == 0) {
		int s = sqlite3_step(q);
		if (s == SQLITE_DONE)
			break;
		if (s != SQLITE_ROW) {
			rc = aud_db_err(d, e, "export");
			break;
		}
		uint64_t seq = (uint64_t)sqlite3_column_int64(q, 0);
		size_t len = (size_t)sqlite3_column_bytes(q, 1);
		const void *buf = sqlite3_column_blob(q, 1);
		if ((len && fwrite(buf, 1, len, f) != len) || fputc('\n', f) == EOF) {
			rc = creto_err_errno(e, errno ? errno : EIO, "write");
			break;
		}
		while (rc == 0 && ci < ncps && cps[ci].size == seq + 1) {
			if (json_note(f, cps[ci].text, cps[ci].len) != 0)
				rc = creto_err_errno(e, errno ? errno : EIO, "write");
			ci++;
		}
	}
	sqlite3_finalize(q);
	cps_free(cps, ncps);
	free(f0);
	return rc;
}

static int export_file(aud_db *d, uint64_t before, const char *out_path, creto_err *e)
{
	char tmp[4096];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", out_path) >= sizeof(tmp))
		return creto_err_set(e, CRETO_EUSAGE, "%s: path too long", out_path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return creto_err_errno(e, errno, "%s", tmp);
	FILE *f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		unlink(tmp);
		return creto_err_errno(e, errno, "%s", tmp);
	}
	int rc = export_to(d, before, f, e);
	if (rc == 0 && (fflush(f) != 0 || fsync(fileno(f)) != 0))
		rc = creto_err_errno(e, errno, "%s", tmp);
	if (fclose(f) != 0 && rc == 0)
		rc = creto_err_errno(e, errno, "%s", tmp);
	if (rc == 0 && rename(tmp, out_path) != 0)
		rc = creto_err_errno(e, errno, "rename to %s", out_path);
	if (rc == 0)
		rc = creto_file_sync_dir(out_path, 0, e);
	if (rc)
		unlink(tmp);
	return rc;
}

int creto_audit_export(const char *dir, uint64_t before, const char *out_path, creto_err *e)
{
	aud_db d;
	int rc = aud_db_open(&d, dir, 1, e);
	if (rc)
		return rc;
	/* one read transaction: a consistent snapshot beside a writer */
	rc = sqlite3_exec(d.db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0
									 : aud_db_err(&d, e, "begin");
	if (rc == 0)
		rc = export_file(&d, before ? before : UINT64_MAX, out_path, e);
	(void)sqlite3_exec(d.db, "COMMIT", NULL, NULL, NULL);
	aud_db_close(&d);
	return rc ? creto_err_ctx(e, "audit export") : 0;
}

static int exec_sql(aud_db *d, const char *sql, creto_err *e)
{
	return sqlite3_exec(d->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : aud_db_err(d, e, sql);
}

int creto_audit_archive(creto_audit *a, const char *kept, size_t kept_len, const char *out_path,
			creto_err *e)
{
	aud_checkpoint cp;
	int rc = aud_note_parse(kept, kept_len, &cp, e);
	if (rc)
		return creto_err_ctx(e, "audit archive");
	uint64_t size;
	aud_db *d = aud_log_db_lock(a, &size);
	/* the checkpoint must be one this log stored, byte for byte */
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(d->db, "SELECT note FROM checkpoints WHERE size=?", -1, &q, NULL) !=
	    SQLITE_OK) {
		rc = aud_db_err(d, e, "checkpoint");
	} else {
		sqlite3_bind_int64(q, 1, (int64_t)cp.size);
		if (sqlite3_step(q) != SQLITE_ROW || (size_t)sqlite3_column_bytes(q, 0) != kept_len ||
		    memcmp(sqlite3_column_blob(q, 0), kept, kept_len) != 0)
			rc = creto_err_set(e, CRETO_EUSAGE,
					   "the checkpoint of size %llu is not one this log stored",
					   (unsigned long long)cp.size);
	}
	sqlite3_finalize(q);
	q = NULL;
	if (rc == 0 && (cp.size <= d->base || cp.size > size))
		rc = creto_err_set(e, CRETO_EUSAGE, "nothing to archive before %llu (entries %llu..%llu)",
				   (unsigned long long)cp.size, (unsigned long long)d->base,
				   (unsigned long long)size);
	if (rc == 0)
		rc = export_file(d, cp.size, out_path, e);
	if (rc == 0)
		aud_log_crash(a, "archive-written");
	/* the new base's frontier: the nodes proofs of later entries need
	 * and that can no longer be made from leaves (levels 0..AUD_LOW_LEVELS;
	 * higher levels are stored anyway) */
	aud_frontier *nf = malloc(sizeof(*nf));
	int64_t last_time = 0;
	if (rc == 0 && nf == NULL)
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
	if (rc == 0)
		rc = aud_db_frontier(d, cp.size, nf, e);
	if (rc == 0 &&
	    sqlite3_prepare_v2(d->db, "SELECT entry FROM entries WHERE seq=?", -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, (int64_t)cp.size - 1);
		aud_entry pe;
		if (sqlite3_step(q) == SQLITE_ROW &&
		    aud_entry_parse(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0), &pe,
				    e) == 0)
			last_time = pe.time_us;
		else
			rc = creto_err_set(e, CRETO_EREJECT, "entry %llu unreadable",
					   (unsigned long long)cp.size - 1);
	}
	sqlite3_finalize(q);
	q = NULL;
	if (rc == 0)
		rc = exec_sql(d, "BEGIN IMMEDIATE", e);
	if (rc == 0) {
		/* keep the leaf the frontier of the new base needs */
		char sql[256];
		sqlite3_stmt *ins;
		if (sqlite3_prepare_v2(d->db, "INSERT OR REPLACE INTO nodes(id, hash) VALUES(?, ?)", -1,
				       &ins, NULL) != SQLITE_OK) {
			rc = aud_db_err(d, e, "archive");
		} else {
			for (unsigned l = 0; rc == 0 && l <= AUD_LOW_LEVELS; l++) {
				if (!((cp.size >> l) & 1))
					continue;
				sqlite3_reset(ins);
				sqlite3_bind_int64(ins, 1, AUD_NODE_ID(l, (cp.size >> l) - 1));
				sqlite3_bind_blob(ins, 2, nf->h[l], AUD_HASH, SQLITE_STATIC);
				if (sqlite3_step(ins) != SQLITE_DONE)
					rc = aud_db_err(d, e, "archive");
			}
			sqlite3_finalize(ins);
		}
		snprintf(sql, sizeof(sql),
			 "DELETE FROM entries WHERE seq < %llu;"
			 "INSERT OR REPLACE INTO meta(k, v) VALUES('base', %llu);"
			 "INSERT OR REPLACE INTO meta(k, v) VALUES('base_time', %lld);",
			 (unsigned long long)cp.size, (unsigned long long)cp.size, (long long)last_time);
		if (rc == 0)
			rc = exec_sql(d, sql, e);
		if (rc == 0)
			rc = exec_sql(d, "COMMIT", e);
		else
			(void)sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL);
	}
	if (rc == 0) {
		d->base = cp.size;
		(void)sqlite3_exec(d->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
	}
	free(nf);
	aud_log_db_unlock(a);
	if (rc == 0) {
		creto_event_field f[1] = {{"before", NULL, (int64_t)cp.size}};
		creto_event ev = {"audit", "archive", "ok", out_path, NULL, NULL, f, 1};
		rc = creto_audit_append(a, &ev, NULL, e);
	}
	return rc ? creto_err_ctx(e, "audit archive") : 0;
}
