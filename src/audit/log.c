/*
 * log.c - the audit log writer (include/creto/audit.h, docs/audit.md):
 * init, open (lock, tail check and repair), durable appends, group commit
 * through a background flusher, checkpoints, the size budget, close.
 *
 * Ordering: entries get their sequence number and time under `mu` when
 * they are queued, so the queue is always in sequence order; one writer at
 * a time (`wmu`) drains the queue into one SQLite transaction (entries,
 * new tree nodes) and commits it with synchronous=FULL.  An entry is
 * durable once `durable` has passed its sequence number.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit_int.h"
#include "util/file.h"

#define QUEUE_MAX 65536 /* queued entries before submit() waits */
#define GATHER_MS 10     /* a woken flusher waits this long for more entries */
#define GATHER_MAX 1024  /* ... or until this many are queued */
#define YIELD_NS 10000   /* a commit's inserts yield the CPU this often */

typedef struct pending {
	uint64_t seq;
	size_t off, len; /* the entry's bytes: qb[off..off+len) */
} pending;

struct creto_audit {
	aud_db d;
	char *dir;
	int lockfd;
	const creto_clock *clock;
	creto_signer *signer;
	unsigned flush_ms;
	uint64_t budget;
	const char *crash;

	pthread_mutex_t mu; /* queue, next_seq, last_time, healthy, durable */
	pthread_cond_t cv_work, cv_done;
	struct timespec first; /* CLOCK_REALTIME when the queue last became non-empty */
	pending *q;
	size_t qn, qcap;
	char *qb; /* the queued entries' bytes, back to back */
	size_t qb_len, qb_cap;
	/* The buffers of the last commit, kept for the next queue: the flusher
	 * never frees memory the request threads allocated (a free into
	 * another thread's malloc arena takes that arena's lock, and a
	 * low-weight flusher preempted holding it stalls the request thread) */
	pending *spare_q;
	size_t spare_qcap;
	char *spare_b;
	size_t spare_bcap;
	uint64_t next_seq, durable;
	int64_t last_time;
	int clamped, warned, healthy, stop, have_thread;
	uint64_t db_bytes;
	char fail[CRETO_ERR_MSG_MAX];
	pthread_t thread;

	pthread_mutex_t wmu; /* the database and the frontier */
	aud_frontier fr;
	int64_t last_cp; /* size of the newest checkpoint, -1: none */
	sqlite3_stmt *ins_entry, *ins_node;
};

static void crash_at(creto_audit *a, const char *point)
{
	if (a->crash != NULL && strcmp(a->crash, point) == 0)
		raise(SIGKILL);
}

void creto_audit_set_crash_point(creto_audit *a, const char *point)
{
	if (a != NULL)
		a->crash = point;
}

static int exec(aud_db *d, const char *sql, creto_err *e)
{
	if (sqlite3_exec(d->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return aud_db_err(d, e, sql);
	return 0;
}

static const char SCHEMA[] =
	"PRAGMA auto_vacuum=INCREMENTAL;"
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=FULL;"
	"BEGIN;"
	"CREATE TABLE meta(k TEXT PRIMARY KEY, v NOT NULL);"
	"CREATE TABLE entries(seq INTEGER PRIMARY KEY, leaf BLOB NOT NULL, entry BLOB NOT NULL);"
	"CREATE TABLE nodes(id INTEGER PRIMARY KEY, hash BLOB NOT NULL);"
	"CREATE TABLE checkpoints(size INTEGER PRIMARY KEY, note BLOB NOT NULL);";

int creto_audit_init(const char *dir, const char *origin, creto_err *e)
{
	int rc = aud_origin_check(origin, e);
	if (rc)
		return rc;
	rc = creto_mkdir_p(dir, 0700, e);
	if (rc)
		return creto_err_ctx(e, "audit init");
	DIR *dh = opendir(dir);
	if (dh == NULL)
		return creto_err_errno(e, errno, "audit init: %s", dir);
	struct dirent *de;
	int empty = 1;
	while ((de = readdir(dh)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			empty = 0;
	closedir(dh);
	if (!empty)
		return creto_err_set(e, CRETO_EUSAGE, "audit init: %s is not empty", dir);
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/" AUD_DB_NAME, dir) >= sizeof(path))
		return creto_err_set(e, CRETO_EUSAGE, "audit init: path too long");
	aud_db d;
	memset(&d, 0, sizeof(d));
	if (sqlite3_open_v2(path, &d.db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW |
				    SQLITE_OPEN_EXCLUSIVE,
			    NULL) != SQLITE_OK) {
		rc = aud_db_err(&d, e, path);
		sqlite3_close(d.db);
		return rc;
	}
	(void)chmod(path, 0600);
	char sql[256];
	snprintf(sql, sizeof(sql), "PRAGMA application_id=%d; PRAGMA user_version=%d;", AUD_APP_ID,
		 AUD_SCHEMA_VERSION);
	rc = exec(&d, SCHEMA, e);
	if (rc == 0)
		rc = exec(&d, sql, e);
	sqlite3_stmt *q = NULL;
	if (rc == 0 && sqlite3_prepare_v2(d.db, "INSERT INTO meta(k, v) VALUES('origin', ?)", -1, &q,
					  NULL) != SQLITE_OK)
		rc = aud_db_err(&d, e, "meta");
	if (rc == 0) {
		sqlite3_bind_text(q, 1, origin, -1, SQLITE_STATIC);
		if (sqlite3_step(q) != SQLITE_DONE)
			rc = aud_db_err(&d, e, "meta");
	}
	sqlite3_finalize(q);
	if (rc == 0)
		rc = exec(&d, "COMMIT", e);
	sqlite3_close(d.db);
	if (rc == 0) {
		snprintf(path, sizeof(path), "%s/" AUD_LOCK_NAME, dir);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return creto_err_errno(e, errno, "audit init: %s", path);
		close(fd);
		rc = creto_file_sync_dir(dir, 1, e);
	}
	return rc ? creto_err_ctx(e, "audit init %s", dir) : 0;
}

/* ---- queueing ---- */

static int fail_fast(creto_audit *a, creto_err *e)
{
	return creto_err_set(e, CRETO_EOP, "audit log %s: not writable: %s", a->dir, a->fail);
}

static void set_unhealthy(creto_audit *a, const char *msg)
{
	if (a->healthy) {
		a->healthy = 0;
		snprintf(a->fail, sizeof(a->fail), "%s", msg);
	}
	pthread_cond_broadcast(&a->cv_done);
}

/* Encode and queue under mu.  *seq gets the entry's number. */
static int enqueue_locked(creto_audit *a, const creto_event *ev, int64_t t, uint64_t *seq,
			  creto_err *e)
{
	static __thread char buf[CRETO_AUDIT_ENTRY_MAX];
	size_t len;
	int rc = aud_entry_encode(ev, a->next_seq, t, buf, &len, e);
	if (rc)
		return rc;
	if (a->q == NULL && a->spare_q != NULL) {
		a->q = a->spare_q;
		a->qcap = a->spare_qcap;
		a->spare_q = NULL;
	}
	if (a->qb == NULL && a->spare_b != NULL) {
		a->qb = a->spare_b;
		a->qb_cap = a->spare_bcap;
		a->spare_b = NULL;
	}
	if (a->qn == a->qcap) {
		size_t nc = a->qcap ? a->qcap * 2 : 1024;
		pending *nq = realloc(a->q, nc * sizeof(*nq));
		if (nq == NULL)
			return creto_err_set(e, CRETO_EOP, "out of memory");
		a->q = nq;
		a->qcap = nc;
	}
	if (a->qb_cap - a->qb_len < len) {
		size_t nc = a->qb_cap ? a->qb_cap : 256 * 1024;
		while (nc - a->qb_len < len)
			nc *= 2;
		char *nb = realloc(a->qb, nc);
		if (nb == NULL)
			return creto_err_set(e, CRETO_EOP, "out of memory");
		a->qb = nb;
		a->qb_cap = nc;
	}
	memcpy(a->qb + a->qb_len, buf, len);
	a->q[a->qn].seq = a->next_seq;
	a->q[a->qn].off = a->qb_len;
	a->q[a->qn].len = len;
	a->qb_len += len;
	a->qn++;
	if (seq)
		*seq = a->next_seq;
	a->next_seq++;
	a->last_time = t;
	return 0;
}

/* Time for the next entry: the clock's (or given) time, clamped to be no
 * earlier than the previous entry's.  A clock that went back is recorded
 * once, as its own entry, when the clamping starts. */
static int take_time(creto_audit *a, int64_t want, int64_t *t, int *clamped, creto_err *e)
{
	*clamped = 0;
	if (want >= a->last_time) {
		a->clamped = 0;
		*t = want;
		return 0;
	}
	*clamped = 1;
	*t = a->last_time;
	if (a->clamped)
		return 0;
	a->clamped = 1;
	creto_event_field f[2] = {{"behind_us", NULL, a->last_time - want},
				  {"clock_us", NULL, want}};
	creto_event ce = {"audit", "clock", "clamped", NULL, "clock-went-back", NULL, f, 2};
	return enqueue_locked(a, &ce, a->last_time, NULL, e);
}

static int budget_check_locked(creto_audit *a, creto_err *e)
{
	if (a->budget == 0)
		return 0;
	if (a->db_bytes >= a->budget) {
		char m[200];
		snprintf(m, sizeof(m), "size budget exhausted (%llu of %llu bytes)",
			 (unsigned long long)a->db_bytes, (unsigned long long)a->budget);
		set_unhealthy(a, m);
		return fail_fast(a, e);
	}
	if (!a->warned && a->db_bytes >= a->budget / 5 * 4) {
		a->warned = 1;
		creto_event_field f[2] = {{"budget", NULL, (int64_t)a->budget},
					  {"used", NULL, (int64_t)a->db_bytes}};
		creto_event ce = {"audit", "budget", "warning", NULL, "over-80-percent", NULL, f, 2};
		return enqueue_locked(a, &ce, a->last_time, NULL, e);
	}
	return 0;
}

static int enqueue(creto_audit *a, const creto_event *ev, int64_t want, int given, uint64_t *seq,
		   creto_err *e)
{
	int rc;
	pthread_mutex_lock(&a->mu);
	while (a->healthy && a->qn >= QUEUE_MAX)
		pthread_cond_wait(&a->cv_done, &a->mu);
	if (!a->healthy) {
		rc = fail_fast(a, e);
		goto out;
	}
	rc = budget_check_locked(a, e);
	if (rc)
		goto out;
	/* read the clock under mu: a time read before the lock could be older
	 * than one another thread queued meanwhile (a false "clock went back") */
	if (!given)
		want = creto_clock_now_us(a->clock);
	int64_t t;
	int clamped;
	rc = take_time(a, want, &t, &clamped, e);
	if (rc)
		goto out;
	if (clamped && given) {
		/* keep the historical time the caller gave */
		creto_event_field f[33];
		size_t n = ev->nfields < 32 ? ev->nfields : 32;
		if (n)
			memcpy(f, ev->fields, n * sizeof(f[0]));
		f[n].key = "given_time_us";
		f[n].str = NULL;
		f[n].num = want;
		creto_event c = *ev;
		c.fields = f;
		c.nfields = n + 1;
		rc = enqueue_locked(a, &c, t, seq, e);
	} else {
		rc = enqueue_locked(a, ev, t, seq, e);
	}
	if (rc == 0 && a->qn == 1) {
		clock_gettime(CLOCK_REALTIME, &a->first);
		pthread_cond_signal(&a->cv_work);
	} else if (rc == 0 && a->qn == GATHER_MAX) {
		pthread_cond_signal(&a->cv_work);
	}
out:
	pthread_mutex_unlock(&a->mu);
	return rc;
}

/* ---- committing ---- */

static int node_done(void *ctx, unsigned level, uint64_t index, const uint8_t h[AUD_HASH])
{
	creto_audit *a = ctx;
	if (level <= AUD_LOW_LEVELS)
		return 0; /* recomputed from leaves when needed */
	sqlite3_stmt *q = a->ins_node;
	sqlite3_reset(q);
	sqlite3_bind_int64(q, 1, AUD_NODE_ID(level, index));
	sqlite3_bind_blob(q, 2, h, AUD_HASH, SQLITE_STATIC);
	return sqlite3_step(q) == SQLITE_DONE ? 0 : -1;
}

static void db_bytes_update(creto_audit *a)
{
	sqlite3_stmt *q;
	int64_t pages = 0, psize = 0;
	if (sqlite3_prepare_v2(a->d.db, "PRAGMA page_count", -1, &q, NULL) == SQLITE_OK) {
		if (sqlite3_step(q) == SQLITE_ROW)
			pages = sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
	}
	if (sqlite3_prepare_v2(a->d.db, "PRAGMA page_size", -1, &q, NULL) == SQLITE_OK) {
		if (sqlite3_step(q) == SQLITE_ROW)
			psize = sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
	}
	pthread_mutex_lock(&a->mu);
	a->db_bytes = (uint64_t)(pages * psize);
	pthread_mutex_unlock(&a->mu);
}

/* Under mu: keep a drained queue's buffers for the next queue (emptied),
 * or free them when the spare slots are taken. */
static void recycle_locked(creto_audit *a, pending *q, size_t qcap, char *qb, size_t bcap)
{
	if (a->spare_q == NULL && q != NULL) {
		a->spare_q = q;
		a->spare_qcap = qcap;
	} else {
		free(q);
	}
	if (a->spare_b == NULL && qb != NULL) {
		a->spare_b = qb;
		a->spare_bcap = bcap;
	} else {
		free(qb);
	}
}

/* Drain the queue into one transaction.  Caller holds wmu. */
static int flush_locked(creto_audit *a, creto_err *e)
{
	pthread_mutex_lock(&a->mu);
	pending *q = a->q;
	size_t n = a->qn, qcap = a->qcap, bcap = a->qb_cap;
	char *qb = a->qb;
	int healthy = a->healthy;
	a->q = NULL;
	a->qn = a->qcap = 0;
	a->qb = NULL;
	a->qb_len = a->qb_cap = 0;
	pthread_mutex_unlock(&a->mu);
	if (n == 0) {
		pthread_mutex_lock(&a->mu);
		recycle_locked(a, q, qcap, qb, bcap);
		pthread_mutex_unlock(&a->mu);
		return healthy ? 0 : fail_fast(a, e);
	}
	int rc = 0;
	aud_frontier saved = a->fr;
	if (!healthy) {
		rc = fail_fast(a, e);
		goto out;
	}
	rc = exec(&a->d, "BEGIN IMMEDIATE", e);
	/* A commit of a few hundred entries is a millisecond of CPU.  The
	 * flusher's low weight does not make the scheduler (EEVDF) cut its
	 * slice short for a woken request thread, so at concurrency 1 the
	 * request that lands on its CPU waited out the slice (the gateway's
	 * p99 doubled).  Yielding every 10 us of inserts hands the CPU to
	 * whatever is waiting; with nothing waiting sched_yield returns at
	 * once. */
	struct timespec ys;
	clock_gettime(CLOCK_MONOTONIC, &ys);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint8_t leaf[AUD_HASH];
		struct timespec yn;
		clock_gettime(CLOCK_MONOTONIC, &yn);
		if ((yn.tv_sec - ys.tv_sec) * 1000000000L + (yn.tv_nsec - ys.tv_nsec) >= YIELD_NS) {
			sched_yield();
			clock_gettime(CLOCK_MONOTONIC, &ys);
		}
		if (q[i].seq != a->fr.size) {
			rc = creto_err_set(e, CRETO_EOP, "audit: entry %llu queued out of order",
					   (unsigned long long)q[i].seq);
			break;
		}
		aud_leaf_hash(qb + q[i].off, q[i].len, leaf);
		sqlite3_stmt *s = a->ins_entry;
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, (int64_t)q[i].seq);
		sqlite3_bind_blob(s, 2, leaf, AUD_HASH, SQLITE_STATIC);
		sqlite3_bind_blob(s, 3, qb + q[i].off, (int)q[i].len, SQLITE_STATIC);
		if (sqlite3_step(s) != SQLITE_DONE || aud_frontier_push(&a->fr, leaf, node_done, a) != 0)
			rc = aud_db_err(&a->d, e, "append");
	}
	if (rc == 0) {
		crash_at(a, "append-before-commit");
		rc = exec(&a->d, "COMMIT", e);
	}
	if (rc == 0)
		crash_at(a, "append-after-commit");
out:
	if (rc) {
		if (!sqlite3_get_autocommit(a->d.db))
			(void)sqlite3_exec(a->d.db, "ROLLBACK", NULL, NULL, NULL);
		a->fr = saved;
	}
	pthread_mutex_lock(&a->mu);
	if (rc == 0)
		a->durable = q[n - 1].seq + 1;
	else
		set_unhealthy(a, e->msg);
	pthread_cond_broadcast(&a->cv_done);
	recycle_locked(a, q, qcap, qb, bcap);
	pthread_mutex_unlock(&a->mu);
	if (rc == 0 && a->budget)
		db_bytes_update(a);
	return rc;
}

static void *flusher(void *arg)
{
	creto_audit *a = arg;
	/* Background work: a lower weight, so a commit (and its fsync) yields
	 * the CPU to the threads answering requests (Linux: per thread). */
	(void)setpriority(PRIO_PROCESS, 0, 10);
	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (a->qn == 0 && !a->stop) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += (long)(a->flush_ms % 1000) * 1000000L;
			ts.tv_sec += a->flush_ms / 1000 + ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&a->cv_work, &a->mu, &ts);
		}
		if (a->qn == 0 && a->stop)
			break;
		/* Gather: one commit (and fsync) for what arrives within
		 * GATHER_MS of the first entry, not one per entry of a slow
		 * trickle; a full batch or a stop commits at once. */
		struct timespec until = a->first;
		long gms = a->flush_ms < GATHER_MS ? (long)a->flush_ms : GATHER_MS;
		until.tv_nsec += gms * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (a->qn > 0 && a->qn < GATHER_MAX && !a->stop &&
		       pthread_cond_timedwait(&a->cv_work, &a->mu, &until) == 0)
			;
		pthread_mutex_unlock(&a->mu);
		pthread_mutex_lock(&a->wmu);
		creto_err e;
		creto_err_clear(&e);
		(void)flush_locked(a, &e);
		pthread_mutex_unlock(&a->wmu);
		pthread_mutex_lock(&a->mu);
	}
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

/* Make every entry up to and including seq durable. */
static int make_durable(creto_audit *a, uint64_t seq, creto_err *e)
{
	pthread_mutex_lock(&a->wmu);
	pthread_mutex_lock(&a->mu);
	int done = a->durable > seq;
	pthread_mutex_unlock(&a->mu);
	int rc = 0;
	if (!done)
		rc = flush_locked(a, e);
	pthread_mutex_unlock(&a->wmu);
	if (rc)
		return rc;
	pthread_mutex_lock(&a->mu);
	done = a->durable > seq;
	if (!done)
		rc = fail_fast(a, e);
	pthread_mutex_unlock(&a->mu);
	return rc;
}

int creto_audit_append(creto_audit *a, const creto_event *ev, uint64_t *seq, creto_err *e)
{
	uint64_t s;
	int rc = enqueue(a, ev, 0, 0, &s, e);
	if (rc == 0)
		rc = make_durable(a, s, e);
	if (rc == 0 && seq)
		*seq = s;
	return rc;
}

int creto_audit_append_at(creto_audit *a, const creto_event *ev, int64_t time_us, uint64_t *seq,
			  creto_err *e)
{
	uint64_t s;
	int rc = enqueue(a, ev, time_us, 1, &s, e);
	if (rc == 0)
		rc = make_durable(a, s, e);
	if (rc == 0 && seq)
		*seq = s;
	return rc;
}

int creto_audit_submit(creto_audit *a, const creto_event *ev, creto_err *e)
{
	pthread_mutex_lock(&a->mu);
	int rc = 0;
	if (!a->have_thread) {
		if (pthread_create(&a->thread, NULL, flusher, a) != 0)
			rc = creto_err_set(e, CRETO_EOP, "audit: cannot start the flusher thread");
		else
			a->have_thread = 1;
	}
	pthread_mutex_unlock(&a->mu);
	if (rc)
		return rc;
	return enqueue(a, ev, 0, 0, NULL, e);
}

int creto_audit_sync(creto_audit *a, creto_err *e)
{
	pthread_mutex_lock(&a->mu);
	uint64_t last = a->next_seq;
	pthread_mutex_unlock(&a->mu);
	return last == 0 ? 0 : make_durable(a, last - 1, e);
}

int creto_audit_healthy(creto_audit *a)
{
	pthread_mutex_lock(&a->mu);
	int h = a->healthy;
	pthread_mutex_unlock(&a->mu);
	return h;
}

uint64_t creto_audit_size(creto_audit *a)
{
	pthread_mutex_lock(&a->mu);
	uint64_t n = a->durable;
	pthread_mutex_unlock(&a->mu);
	return n;
}

static int sink_fn(void *ctx, const creto_event *ev)
{
	creto_err e;
	creto_err_clear(&e);
	return creto_audit_append(ctx, ev, NULL, &e);
}

creto_event_sink creto_audit_sink(creto_audit *a)
{
	creto_event_sink s = {sink_fn, a};
	return s;
}

/* ---- checkpoints ---- */

int creto_audit_checkpoint(creto_audit *a, creto_err *e)
{
	if (a->signer == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "audit checkpoint: no signing key");
	int rc = creto_audit_sync(a, e);
	if (rc)
		return rc;
	pthread_mutex_lock(&a->wmu);
	int idle = a->last_cp >= 0 && (uint64_t)a->last_cp == a->fr.size;
	pthread_mutex_unlock(&a->wmu);
	if (idle) {
		/* Same size as the last checkpoint: record that the log is alive, so
		 * the new checkpoint proves nothing was cut since. */
		creto_event hb = {"audit", "heartbeat", "ok", NULL, NULL, NULL, NULL, 0};
		rc = creto_audit_append(a, &hb, NULL, e);
		if (rc)
			return rc;
	}
	pthread_mutex_lock(&a->wmu);
	uint8_t root[AUD_HASH];
	aud_frontier_root(&a->fr, root);
	uint64_t size = a->fr.size;
	char *note = NULL;
	size_t nl = 0;
	rc = aud_note_sign(a->signer, a->d.origin, size, root, &note, &nl, e);
	if (rc == 0) {
		crash_at(a, "checkpoint-signed");
		sqlite3_stmt *q;
		if (sqlite3_prepare_v2(a->d.db,
				       "INSERT OR REPLACE INTO checkpoints(size, note) VALUES(?, ?)", -1,
				       &q, NULL) != SQLITE_OK) {
			rc = aud_db_err(&a->d, e, "checkpoint");
		} else {
			sqlite3_bind_int64(q, 1, (int64_t)size);
			sqlite3_bind_blob(q, 2, note, (int)nl, SQLITE_STATIC);
			if (sqlite3_step(q) != SQLITE_DONE)
				rc = aud_db_err(&a->d, e, "checkpoint");
			sqlite3_finalize(q);
		}
		if (rc == 0) {
			crash_at(a, "checkpoint-stored");
			a->last_cp = (int64_t)size;
		}
	}
	free(note);
	pthread_mutex_unlock(&a->wmu);
	return rc;
}

int creto_audit_last_checkpoint(creto_audit *a, char **out, size_t *len, creto_err *e)
{
	pthread_mutex_lock(&a->wmu);
	int rc = aud_db_last_checkpoint(&a->d, out, len, e);
	pthread_mutex_unlock(&a->wmu);
	return rc;
}

/* ---- open / close ---- */

/* Drop entries >= k and the tree nodes that cover them. */
static int truncate_to(creto_audit *a, uint64_t k, creto_err *e)
{
	int rc = exec(&a->d, "BEGIN IMMEDIATE", e);
	sqlite3_stmt *q = NULL;
	if (rc == 0 &&
	    sqlite3_prepare_v2(a->d.db, "DELETE FROM entries WHERE seq >= ?", -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, (int64_t)k);
		if (sqlite3_step(q) != SQLITE_DONE)
			rc = aud_db_err(&a->d, e, "repair");
	} else if (rc == 0) {
		rc = aud_db_err(&a->d, e, "repair");
	}
	sqlite3_finalize(q);
	q = NULL;
	for (unsigned l = 1; rc == 0 && l < AUD_LEVELS; l++) {
		if (sqlite3_prepare_v2(a->d.db, "DELETE FROM nodes WHERE id >= ? AND id < ?", -1, &q,
				       NULL) != SQLITE_OK) {
			rc = aud_db_err(&a->d, e, "repair");
			break;
		}
		sqlite3_bind_int64(q, 1, AUD_NODE_ID(l, k >> l));
		sqlite3_bind_int64(q, 2, AUD_NODE_ID(l + 1, 0));
		if (sqlite3_step(q) != SQLITE_DONE)
			rc = aud_db_err(&a->d, e, "repair");
		sqlite3_finalize(q);
		q = NULL;
	}
	if (rc == 0)
		rc = exec(&a->d, "COMMIT", e);
	else
		(void)sqlite3_exec(a->d.db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* Check the newest entry: it must parse and match its stored leaf hash.
 * A bad tail beyond the last checkpoint is cut (and the cut recorded); one
 * at or before it is tampering, which open refuses. */
static int tail_check(creto_audit *a, uint64_t *size, uint8_t dropped[AUD_HASH], int *cut,
		      uint64_t *cut_seq, creto_err *e)
{
	*cut = 0;
	while (*size > a->d.base) {
		uint64_t s = *size - 1;
		sqlite3_stmt *q;
		if (sqlite3_prepare_v2(a->d.db, "SELECT leaf, entry FROM entries WHERE seq=?", -1, &q,
				       NULL) != SQLITE_OK)
			return aud_db_err(&a->d, e, "tail");
		sqlite3_bind_int64(q, 1, (int64_t)s);
		int ok = 0;
		int64_t t = 0;
		uint8_t h[AUD_HASH];
		if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_bytes(q, 0) == AUD_HASH) {
			const char *en = sqlite3_column_blob(q, 1);
			size_t el = (size_t)sqlite3_column_bytes(q, 1);
			aud_entry pe;
			creto_err pe_err;
			aud_leaf_hash(en ? en : "", el, h);
			if (en != NULL && aud_entry_parse(en, el, &pe, &pe_err) == 0 && pe.seq == s &&
			    memcmp(h, sqlite3_column_blob(q, 0), AUD_HASH) == 0) {
				ok = 1;
				t = pe.time_us;
			}
		}
		sqlite3_finalize(q);
		if (ok) {
			a->last_time = t;
			return 0;
		}
		if (a->last_cp >= 0 && s < (uint64_t)a->last_cp)
			return creto_err_set(e, CRETO_EREJECT,
					     "audit log %s: entry %llu is damaged and covered by a signed "
					     "checkpoint (run creto audit verify)",
					     a->dir, (unsigned long long)s);
		if (*cut) /* one torn entry at most: more is not a torn write */
			return creto_err_set(e, CRETO_EREJECT,
					     "audit log %s: entries %llu and %llu damaged (run creto "
					     "audit verify)",
					     a->dir, (unsigned long long)s, (unsigned long long)s + 1);
		int rc = truncate_to(a, s, e);
		if (rc)
			return rc;
		memcpy(dropped, h, AUD_HASH);
		*cut = 1;
		*cut_seq = s;
		*size = s;
	}
	a->last_time = a->d.base_time;
	return 0;
}

int creto_audit_open(const char *dir, const creto_audit_opts *o, creto_audit **out, creto_err *e)
{
	*out = NULL;
	creto_audit *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	a->lockfd = -1;
	a->healthy = 1;
	a->last_cp = -1;
	pthread_mutex_init(&a->mu, NULL);
	pthread_mutex_init(&a->wmu, NULL);
	pthread_cond_init(&a->cv_work, NULL);
	pthread_cond_init(&a->cv_done, NULL);
	a->dir = strdup(dir);
	if (o != NULL) {
		a->clock = o->clock;
		a->signer = o->signer;
		a->flush_ms = o->flush_ms;
		a->budget = o->size_budget;
	}
	if (a->flush_ms == 0)
		a->flush_ms = 100;
	int rc = 0;
	char path[4096];
	if (a->dir == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/" AUD_LOCK_NAME, dir);
	a->lockfd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (a->lockfd < 0) {
		rc = errno == ENOENT ? creto_err_set(e, CRETO_EUSAGE,
						     "audit log %s: no lock file (not an audit log?)", dir)
				     : creto_err_errno(e, errno, "audit log %s", path);
		goto fail;
	}
	struct stat lst;
	if (fstat(a->lockfd, &lst) != 0 || !S_ISREG(lst.st_mode)) {
		rc = creto_err_set(e, CRETO_EUSAGE, "audit log %s: %s is not a regular file", dir, path);
		goto fail;
	}
	if (flock(a->lockfd, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK
			     ? creto_err_set(e, CRETO_EOP, "audit log %s: in use by another writer", dir)
			     : creto_err_errno(e, errno, "audit log %s: lock", dir);
		goto fail;
	}
	rc = aud_db_open(&a->d, dir, 0, e);
	if (rc)
		goto fail;
	rc = exec(&a->d, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", e);
	if (rc)
		goto fail;
	if (sqlite3_prepare_v2(a->d.db, "INSERT INTO entries(seq, leaf, entry) VALUES(?, ?, ?)", -1,
			       &a->ins_entry, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(a->d.db, "INSERT INTO nodes(id, hash) VALUES(?, ?)", -1, &a->ins_node,
			       NULL) != SQLITE_OK) {
		rc = aud_db_err(&a->d, e, "prepare");
		goto fail;
	}
	uint64_t size;
	rc = aud_db_size(&a->d, &size, e);
	if (rc)
		goto fail;
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(a->d.db, "SELECT max(size) FROM checkpoints", -1, &q, NULL) !=
	    SQLITE_OK) {
		rc = aud_db_err(&a->d, e, "checkpoints");
		goto fail;
	}
	if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL)
		a->last_cp = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	if (a->last_cp >= 0 && (uint64_t)a->last_cp > size) {
		rc = creto_err_set(e, CRETO_EREJECT,
				   "audit log %s: holds %llu entries but a checkpoint of size %lld: "
				   "entries were removed (run creto audit verify)",
				   dir, (unsigned long long)size, (long long)a->last_cp);
		goto fail;
	}
	uint8_t dropped[AUD_HASH];
	int cut = 0;
	uint64_t cut_seq = 0;
	rc = tail_check(a, &size, dropped, &cut, &cut_seq, e);
	if (rc)
		goto fail;
	rc = aud_db_frontier(&a->d, size, &a->fr, e);
	if (rc)
		goto fail;
	a->next_seq = a->durable = size;
	if (a->budget)
		db_bytes_update(a);
	if (cut) {
		char hex[AUD_HASH * 2 + 1];
		for (int i = 0; i < AUD_HASH; i++)
			snprintf(hex + 2 * i, 3, "%02x", dropped[i]);
		creto_event_field f[2] = {{"dropped_leaf", hex, 0}, {"dropped_seq", NULL, (int64_t)cut_seq}};
		creto_event ev = {"audit", "repair", "torn-tail", NULL, "torn-write", NULL, f, 2};
		rc = creto_audit_append(a, &ev, NULL, e);
		if (rc)
			goto fail;
	}
	*out = a;
	return 0;
fail:
	creto_err_ctx(e, "audit open");
	creto_audit_close(a);
	return rc ? rc : CRETO_EOP;
}

void creto_audit_close(creto_audit *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	a->stop = 1;
	pthread_cond_broadcast(&a->cv_work);
	int joined = a->have_thread;
	pthread_mutex_unlock(&a->mu);
	if (joined)
		pthread_join(a->thread, NULL);
	if (a->d.db != NULL) {
		creto_err e;
		creto_err_clear(&e);
		pthread_mutex_lock(&a->wmu);
		(void)flush_locked(a, &e);
		int need_cp = a->signer != NULL && a->healthy &&
			      (a->last_cp < 0 || (uint64_t)a->last_cp != a->fr.size);
		pthread_mutex_unlock(&a->wmu);
		if (need_cp && creto_audit_checkpoint(a, &e) != 0)
			a->healthy = 0; /* nothing left to report it to */
	}
	free(a->q);
	free(a->qb);
	free(a->spare_q);
	free(a->spare_b);
	sqlite3_finalize(a->ins_entry);
	sqlite3_finalize(a->ins_node);
	aud_db_close(&a->d);
	if (a->lockfd >= 0)
		close(a->lockfd);
	pthread_mutex_destroy(&a->mu);
	pthread_mutex_destroy(&a->wmu);
	pthread_cond_destroy(&a->cv_work);
	pthread_cond_destroy(&a->cv_done);
	free(a->dir);
	free(a);
}


aud_db *aud_log_db_lock(creto_audit *a, uint64_t *size)
{
	creto_err e;
	creto_err_clear(&e);
	if (creto_audit_sync(a, &e) != 0) {
		/* archive then fails on the same condition with its own message */
	}
	pthread_mutex_lock(&a->wmu);
	*size = a->fr.size;
	return &a->d;
}

void aud_log_db_unlock(creto_audit *a)
{
	pthread_mutex_unlock(&a->wmu);
}

void aud_log_crash(creto_audit *a, const char *point)
{
	crash_at(a, point);
}
