/*
 * auditlog.c - the audit log of a state directory, SDIR/audit/ (docs/audit.md
 * "Who writes"): created by `state init` with its first entry; for state
 * of an earlier version, created on the first write with the old audit
 * table carried over once; opened per record so that several commands can
 * write it; read back for `update status`.
 */
#include "update_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "creto/audit.h"
#include "util/escape.h"
#include "util/file.h"
#include "util/timeutil.h"

#define LOG_SUBDIR "audit"
#define LOG_LOCK "audit.lock" /* SDIR/audit.lock: serialises our writers */
#define META_ORIGIN "audit_origin"
#define META_KEY "audit_key"
#define META_BUDGET "audit_budget"
#define META_MIGRATED "audit_migrated"

struct creto_state_log {
	char sdir[4096];
	char dir[4200];
	const creto_clock *clock;
	creto_signer *signer;
	uint64_t budget;
	int64_t wait_ms;
	const char *crash_point;
	uint64_t appended;
	uint64_t unsigned_n;        /* appended since the last checkpoint we signed */
	int64_t last_cp_ms;         /* when we signed it (monotonic) */
	creto_err err;
};

/* A long-running writer (the watcher) signs a checkpoint with a record at
 * most this often; every writer signs one when it closes. */
#define CP_INTERVAL_MS 60000

void creto_state_log_dir(const char *state_dir, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/" LOG_SUBDIR, state_dir);
}

int upd_log_exists(const char *sdir)
{
	char p[4300];
	struct stat sb;
	snprintf(p, sizeof p, "%s/" LOG_SUBDIR "/audit.db", sdir);
	return lstat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* "creto/" + the state directory's own name, as an origin line allows. */
static void default_origin(const char *sdir, char *out, size_t cap)
{
	char rp[PATH_MAX];
	const char *base = realpath(sdir, rp) != NULL ? rp : sdir;
	const char *sl = strrchr(base, '/');
	if (sl != NULL && sl[1] != 0)
		base = sl + 1;
	char name[128];
	size_t n = 0;
	for (const char *p = base; *p && n < sizeof name - 1; p++) {
		char ch = *p;
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
			 ch == '.' || ch == '_' || ch == '-';
		name[n++] = ok ? ch : '_';
	}
	name[n] = 0;
	snprintf(out, cap, "creto/%s", n > 0 && strcmp(name, "/") != 0 ? name : "state");
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Our writers queue on SDIR/audit.lock (the log's own lock is never
 * waited for); *fd: close to release. */
static int writer_lock(const creto_state_log *l, int *fd, creto_err *e)
{
	char p[4300];
	snprintf(p, sizeof p, "%s/" LOG_LOCK, l->sdir);
	*fd = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (*fd < 0)
		return creto_err_errno(e, errno, "audit log lock %s", p);
	int64_t until = mono_ms() + l->wait_ms;
	while (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
		if ((errno != EWOULDBLOCK && errno != EINTR) || mono_ms() >= until) {
			int rc = errno == EWOULDBLOCK
					 ? creto_err_set(e, CRETO_EOP, "audit log %s: busy for %lld ms (another "
						     "writer holds %s)", l->dir, (long long)l->wait_ms, p)
					 : creto_err_errno(e, errno, "audit log lock %s", p);
			close(*fd);
			*fd = -1;
			return rc;
		}
		struct timespec ts = {0, 5 * 1000000L};
		(void)nanosleep(&ts, NULL);
	}
	return CRETO_OK;
}

/* Whether another process holds the log's own writer lock (`creto audit
 * append`, `audit checkpoint --key` run by hand): probed by taking it. */
static int log_lock_busy(const creto_state_log *l)
{
	char p[4300];
	snprintf(p, sizeof p, "%s/lock", l->dir);
	int fd = open(p, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int busy = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
	close(fd); /* releases it when taken */
	return busy;
}

/* Open the log for one record (or the migration, or the checkpoint). */
static int acquire(const creto_state_log *l, creto_signer *signer, int *lockfd, creto_audit **a,
		   creto_err *e)
{
	*a = NULL;
	int rc = writer_lock(l, lockfd, e);
	if (rc != CRETO_OK)
		return rc;
	creto_audit_opts ao;
	memset(&ao, 0, sizeof ao);
	ao.clock = l->clock;
	ao.signer = signer;
	ao.size_budget = l->budget;
	/* Beside our own writers (queued above), someone else may hold the
	 * log for a moment: wait for them as long as for ours. */
	int64_t until = mono_ms() + l->wait_ms;
	while ((rc = creto_audit_open(l->dir, &ao, a, e)) == CRETO_EOP && log_lock_busy(l) &&
	       mono_ms() < until) {
		struct timespec ts = {0, 10 * 1000000L};
		(void)nanosleep(&ts, NULL);
		creto_err_clear(e);
	}
	if (rc != CRETO_OK) {
		close(*lockfd);
		*lockfd = -1;
		return rc == CRETO_EREJECT ? CRETO_EOP : rc;
	}
	creto_audit_set_crash_point(*a, l->crash_point);
	return CRETO_OK;
}

static void release(creto_audit *a, int lockfd)
{
	creto_audit_close(a);
	if (lockfd >= 0)
		close(lockfd);
}

/* ---- migration of the old audit table ---- */

/* The escape text the old table stored, back to its bytes (the log
 * escapes them itself); as stored when it does not decode. */
static const char *unesc(const char *s, char *buf, size_t cap)
{
	size_t n = 0;
	if (s == NULL)
		return NULL;
	if (creto_unescape(buf, cap - 1, s, &n) != 0)
		return s;
	buf[n] = 0;
	return buf;
}

typedef struct mig {
	creto_audit *a;
	uint64_t carried;
	creto_err *e;
} mig;

/* One old row as an entry (docs/audit.md "Who writes": migrated rows). */
static int mig_row(void *arg, const upd_audit_row *r)
{
	mig *m = arg;
	const char *dec = r->decision != NULL ? r->decision : "?";
	int rot = r->type != NULL && strcmp(r->type, "cert-rotation") == 0;
	int req = strcmp(dec, "requeued") == 0;
	const char *comp = rot ? "trust" : (req || strcmp(dec, "quarantined") == 0) ? "diode" : "update";
	const char *event = req ? "requeue" : rot ? "rotation" : "apply";
	const char *outcome = strcmp(dec, "rejected") == 0 ? "refused" : req ? "ok" : dec;
	char src[4096], why[4096];
	const char *source = unesc(r->source, src, sizeof src);
	const char *reason = unesc(r->reason, why, sizeof why);
	char subject[CRETO_UPDATE_NAME_MAX + 256];
	if (r->name != NULL && r->digest != NULL)
		snprintf(subject, sizeof subject, "%.64s@%lld sha3-256:%.64s", r->name, (long long)r->version,
			 r->digest);
	else
		snprintf(subject, sizeof subject, "%s", r->digest != NULL ? r->digest : "");
	creto_event_field f[10];
	size_t n = 0;
	f[n++] = (creto_event_field){"decision", dec, 0};
	f[n++] = (creto_event_field){"file", source != NULL ? source : "", 0};
	if (r->keyids != NULL && r->keyids[0])
		f[n++] = (creto_event_field){"keyids", r->keyids, 0};
	if (reason != NULL && reason[0])
		f[n++] = (creto_event_field){"message", reason, 0};
	f[n++] = (creto_event_field){"migrated_row", NULL, r->id};
	if (r->name != NULL)
		f[n++] = (creto_event_field){"name", r->name, 0};
	if (r->digest != NULL)
		f[n++] = (creto_event_field){"statement_digest", r->digest, 0};
	if (r->type != NULL)
		f[n++] = (creto_event_field){"type", r->type, 0};
	if (r->version)
		f[n++] = (creto_event_field){"version", NULL, r->version};
	creto_event ev = {comp, event, outcome, subject[0] ? subject : (source ? source : NULL), NULL,
			  NULL, f, n};
	int rc = creto_audit_append_at(m->a, &ev, r->at * 1000000, NULL, m->e);
	if (rc == CRETO_OK)
		m->carried++;
	return rc;
}

typedef struct resume {
	int64_t last_row;   /* highest migrated_row in the log */
	int summary;        /* the `update migrate` entry is there */
} resume;

static int resume_scan(void *arg, uint64_t seq, const char *entry, size_t len)
{
	(void)seq;
	resume *r = arg;
	json_error_t je;
	json_t *o = json_loadb(entry, len, 0, &je);
	if (o == NULL)
		return 0;
	json_t *row = json_object_get(json_object_get(o, "fields"), "migrated_row");
	if (json_is_integer(row) && json_integer_value(row) > r->last_row)
		r->last_row = json_integer_value(row);
	const char *ev = json_string_value(json_object_get(o, "event"));
	const char *c = json_string_value(json_object_get(o, "component"));
	if (ev != NULL && c != NULL && strcmp(c, "update") == 0 && strcmp(ev, "migrate") == 0)
		r->summary = 1;
	json_decref(o);
	return 0;
}

/* Under the writer lock, with the log open: carry the rows not carried
 * yet (a migration killed half-way resumes after its last entry), then
 * the summary entry, then mark the state. */
static int migrate(creto_state_log *l, creto_audit *a, const char *origin, creto_err *e)
{
	resume rs = {0, 0};
	creto_audit_reader *rd = NULL;
	uint64_t size = 0, first = 0;
	int rc = creto_audit_reader_open(l->dir, &rd, e);
	if (rc == CRETO_OK)
		rc = creto_audit_reader_size(rd, &size, &first, e);
	if (rc == CRETO_OK && size > first)
		rc = creto_audit_reader_scan(rd, first, size, resume_scan, &rs, e);
	creto_audit_reader_close(rd);
	if (rc != CRETO_OK)
		return rc;
	upd_state *st = NULL;
	if ((rc = upd_state_open(l->sdir, 0, &st, e)) != CRETO_OK)
		return rc;
	mig m = {a, 0, e};
	rc = upd_state_each_audit_row(st, rs.last_row, mig_row, &m, e);
	if (rc == CRETO_OK && !rs.summary) {
		char from[64];
		snprintf(from, sizeof from, "state.db audit table");
		creto_event_field f[3] = {{"carried", NULL, (int64_t)m.carried},
					  {"from", from, 0},
					  {"origin", origin, 0}};
		creto_event ev = {"update", "migrate", "ok", l->sdir, NULL, NULL, f, 3};
		rc = creto_audit_append(a, &ev, NULL, e);
	}
	char v[32];
	snprintf(v, sizeof v, "%lld", (long long)rs.last_row + (long long)m.carried);
	if (rc == CRETO_OK && (rc = upd_state_meta_set(st, META_ORIGIN, origin, e)) == CRETO_OK)
		rc = upd_state_meta_set(st, META_MIGRATED, v, e);
	upd_state_close(st);
	return rc == CRETO_OK ? rc : creto_err_ctx(e, "audit log %s: carrying the old audit table over", l->dir);
}

/* ---- opening ---- */

typedef struct state_cfg {
	char origin[256];
	char key[4096];
	char migrated[32];
	uint64_t budget;
} state_cfg;

static int read_cfg(const char *sdir, state_cfg *c, creto_err *e)
{
	memset(c, 0, sizeof *c);
	upd_state *st = NULL;
	int rc = upd_state_open(sdir, 1, &st, e);
	char b[32] = "";
	if (rc == CRETO_OK && (rc = upd_state_meta(st, META_ORIGIN, c->origin, sizeof c->origin, e)) == CRETO_OK &&
	    (rc = upd_state_meta(st, META_KEY, c->key, sizeof c->key, e)) == CRETO_OK &&
	    (rc = upd_state_meta(st, META_MIGRATED, c->migrated, sizeof c->migrated, e)) == CRETO_OK)
		rc = upd_state_meta(st, META_BUDGET, b, sizeof b, e);
	upd_state_close(st);
	c->budget = b[0] ? strtoull(b, NULL, 10) : 0;
	return rc;
}

int creto_state_log_open(const char *state_dir, const creto_state_log_opts *o,
			 creto_state_log **out, creto_err *e)
{
	*out = NULL;
	creto_state_log_opts dflt;
	memset(&dflt, 0, sizeof dflt);
	if (o == NULL)
		o = &dflt;
	if (state_dir == NULL || strlen(state_dir) > 4000)
		return creto_err_set(e, CRETO_EUSAGE, "audit log: no state directory given");
	int rc = upd_state_initialised(state_dir, e);
	if (rc != CRETO_OK)
		return rc;
	state_cfg cfg;
	if ((rc = read_cfg(state_dir, &cfg, e)) != CRETO_OK)
		return rc;
	creto_state_log *l = calloc(1, sizeof *l);
	if (l == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	snprintf(l->sdir, sizeof l->sdir, "%s", state_dir);
	creto_state_log_dir(state_dir, l->dir, sizeof l->dir);
	l->clock = o->clock;
	l->budget = cfg.budget;
	l->wait_ms = o->lock_wait_ms > 0 ? o->lock_wait_ms : 10000;
	l->crash_point = o->crash_point;
	l->last_cp_ms = mono_ms();
	int exists = upd_log_exists(state_dir);
	if (!exists && cfg.origin[0]) {
		/* state init made it: gone means removed, never a fresh start */
		rc = creto_err_set(e, CRETO_EOP,
				   "audit log %s is missing, though the state says it was created (origin %s): "
				   "restore it; nothing is decided without it", l->dir, cfg.origin);
		goto fail;
	}
	if (!exists || (!cfg.origin[0] && !cfg.migrated[0])) {
		/* State of an earlier version: the log starts now, with the old
		 * audit table as its first entries. */
		char origin[256];
		default_origin(state_dir, origin, sizeof origin);
		int lockfd = -1;
		creto_audit *a = NULL;
		if ((rc = writer_lock(l, &lockfd, e)) != CRETO_OK)
			goto fail;
		if (!upd_log_exists(state_dir) && (rc = creto_audit_init(l->dir, origin, e)) != CRETO_OK) {
			close(lockfd);
			goto fail;
		}
		close(lockfd);
		if ((rc = acquire(l, NULL, &lockfd, &a, e)) == CRETO_OK) {
			/* Read the state again under the lock: another writer may
			 * have finished the migration meanwhile. */
			state_cfg now;
			rc = read_cfg(state_dir, &now, e);
			if (rc == CRETO_OK && !now.migrated[0])
				rc = migrate(l, a, origin, e);
			release(a, lockfd);
		}
		if (rc != CRETO_OK) {
			if (rc != CRETO_EUSAGE)
				rc = CRETO_EOP;
			goto fail;
		}
	}
	/* The checkpoint key last, once the log exists: a failed HSM login
	 * while opening it is itself recorded in the log. */
	const char *key = o->key != NULL ? o->key : cfg.key[0] ? cfg.key : NULL;
	if (key != NULL) {
		creto_keys_opts ko = {0};
		if (o->keys != NULL)
			ko = *o->keys;
		ko.events = creto_state_log_sink(l);
		if ((rc = creto_keys_open_signer(key, &ko, &l->signer, e)) != CRETO_OK) {
			creto_err_ctx(e, "audit checkpoint key%s", o->key != NULL ? "" : " (recorded at state init)");
			if (rc != CRETO_EUSAGE)
				rc = CRETO_EOP;
			goto fail;
		}
	}
	*out = l;
	return CRETO_OK;
fail:
	creto_signer_free(l->signer);
	free(l);
	return rc;
}

static int sink_fn(void *arg, const creto_event *ev)
{
	creto_state_log *l = arg;
	creto_audit *a = NULL;
	int lockfd = -1;
	creto_err e;
	creto_err_clear(&e);
	/* Due for a checkpoint: open with the key, and the close after the
	 * append signs one (best effort: creto_state_log_close checks its own). */
	int64_t now = mono_ms();
	creto_signer *s = l->signer != NULL && now - l->last_cp_ms >= CP_INTERVAL_MS ? l->signer : NULL;
	int rc = acquire(l, s, &lockfd, &a, &e);
	if (rc == CRETO_OK) {
		rc = creto_audit_append(a, ev, NULL, &e);
		release(a, lockfd);
	}
	if (rc != CRETO_OK) {
		l->err = e;
		return CRETO_EOP;
	}
	l->appended++;
	l->unsigned_n++;
	if (s != NULL) {
		l->last_cp_ms = now;
		l->unsigned_n = 0;
	}
	return 0;
}

creto_event_sink creto_state_log_sink(creto_state_log *l)
{
	creto_event_sink s = {sink_fn, l};
	return s;
}

uint64_t creto_state_log_appended(const creto_state_log *l)
{
	return l != NULL ? l->appended : 0;
}

const char *creto_state_log_error(const creto_state_log *l)
{
	return l != NULL ? l->err.msg : "";
}

int creto_state_log_has_key(const creto_state_log *l)
{
	return l != NULL && l->signer != NULL;
}

int creto_state_log_close(creto_state_log *l, creto_err *e)
{
	if (l == NULL)
		return CRETO_OK;
	int rc = CRETO_OK;
	if (l->signer != NULL && l->unsigned_n > 0) {
		creto_audit *a = NULL;
		int lockfd = -1;
		if ((rc = acquire(l, l->signer, &lockfd, &a, e)) == CRETO_OK) {
			rc = creto_audit_checkpoint(a, e);
			release(a, lockfd);
		}
		if (rc != CRETO_OK)
			rc = creto_err_ctx(e, "audit log %s: checkpoint not signed", l->dir);
	}
	creto_signer_free(l->signer);
	free(l);
	return rc;
}

/* ---- state init ---- */

static void rm_state_files(const char *sdir)
{
	static const char *const f[] = {"state.db", "state.db-wal", "state.db-shm", "state.db-journal"};
	char p[4300];
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", sdir, f[i]);
		(void)unlink(p);
	}
}

int creto_state_init_ex(const char *state_dir, const char *trust_path,
			const creto_state_init_opts *o, creto_err *e)
{
	creto_state_init_opts dflt;
	memset(&dflt, 0, sizeof dflt);
	if (o == NULL)
		o = &dflt;
	if (state_dir == NULL || strlen(state_dir) > 4000)
		return creto_err_set(e, CRETO_EUSAGE, "state init: no state directory given");
	creto_trust_root *r = NULL;
	char dg[65];
	int rc = upd_load_effective_root(trust_path, NULL, NULL, &r, dg, e);
	if (rc != CRETO_OK)
		return rc;
	char origin[256];
	if (o->audit_origin != NULL)
		snprintf(origin, sizeof origin, "%s", o->audit_origin);
	creto_signer *signer = NULL;
	if (o->audit_key != NULL && (rc = creto_keys_open_signer(o->audit_key, o->keys, &signer, e)) != CRETO_OK) {
		creto_trust_root_free(r);
		return creto_err_ctx(e, "state init: audit checkpoint key");
	}
	char ldir[4200];
	creto_state_log_dir(state_dir, ldir, sizeof ldir);
	struct stat sb;
	int had_log = lstat(ldir, &sb) == 0;
	upd_state *st = NULL;
	int created = 0;
	creto_audit *a = NULL;
	if ((rc = upd_state_create(state_dir, &st, e)) != CRETO_OK)
		goto out;
	created = 1;
	if (o->audit_origin == NULL)
		default_origin(state_dir, origin, sizeof origin);
	if (had_log) {
		rc = creto_err_set(e, CRETO_EUSAGE,
				   "state init: %s already exists (the audit log of an earlier state?): move it "
				   "away first", ldir);
		goto out;
	}
	if ((rc = creto_audit_init(ldir, origin, e)) != CRETO_OK)
		goto out;
	creto_audit_opts ao;
	memset(&ao, 0, sizeof ao);
	ao.clock = o->clock;
	ao.signer = signer;
	ao.size_budget = o->audit_budget;
	if ((rc = creto_audit_open(ldir, &ao, &a, e)) != CRETO_OK)
		goto out;
	/* The record first, then the state rows (then the first checkpoint). */
	char ver[32], budget[32];
	snprintf(ver, sizeof ver, "%lld", (long long)creto_trust_root_version(r));
	snprintf(budget, sizeof budget, "%llu", (unsigned long long)o->audit_budget);
	creto_event_field f[4];
	size_t n = 0;
	if (signer != NULL)
		f[n++] = (creto_event_field){"checkpoint_key", creto_pubkey_id(creto_signer_pubkey(signer)), 0};
	f[n++] = (creto_event_field){"origin", origin, 0};
	f[n++] = (creto_event_field){"trust_root_digest", dg, 0};
	f[n++] = (creto_event_field){"trust_root_version", NULL, creto_trust_root_version(r)};
	creto_event ev = {"update", "state-init", "ok", state_dir, NULL, NULL, f, n};
	if ((rc = creto_audit_append(a, &ev, NULL, e)) != CRETO_OK)
		goto out;
	char v[32];
	snprintf(v, sizeof v, "%lld", (long long)creto_clock_now(o->clock));
	if ((rc = upd_state_meta_set(st, "initialised_at", v, e)) != CRETO_OK ||
	    (rc = upd_state_meta_set(st, "init_root_version", ver, e)) != CRETO_OK ||
	    (rc = upd_state_meta_set(st, "init_root_digest", dg, e)) != CRETO_OK ||
	    (rc = upd_state_meta_set(st, META_ORIGIN, origin, e)) != CRETO_OK ||
	    (o->audit_key != NULL && (rc = upd_state_meta_set(st, META_KEY, o->audit_key, e)) != CRETO_OK) ||
	    (o->audit_budget && (rc = upd_state_meta_set(st, META_BUDGET, budget, e)) != CRETO_OK))
		goto out;
	if (signer != NULL && (rc = creto_audit_checkpoint(a, e)) != CRETO_OK)
		goto out;
out:
	creto_audit_close(a);
	upd_state_close(st);
	if (rc != CRETO_OK && created) {
		/* Nothing half-made stays: no state without its log. */
		rm_state_files(state_dir);
		if (!had_log)
			upd_rm_tree(ldir);
	}
	creto_signer_free(signer);
	creto_trust_root_free(r);
	return rc;
}

/* ---- update status ---- */

/* The decision word of an entry, as the old audit table said it. */
static const char *decision_of(const char *event, const char *outcome, json_t *fields)
{
	const char *d = json_string_value(json_object_get(fields, "decision"));
	if (d != NULL)
		return d;
	if (strcmp(event, "requeue") == 0 && strcmp(outcome, "ok") == 0)
		return "requeued";
	if (strcmp(outcome, "refused") == 0)
		return "rejected";
	return outcome;
}

typedef struct st_scan {
	json_t *rows;
} st_scan;

static int status_row(void *arg, uint64_t seq, const char *entry, size_t len)
{
	st_scan *s = arg;
	json_error_t je;
	json_t *o = json_loadb(entry, len, 0, &je);
	if (o == NULL)
		return 0;
	const char *c = json_string_value(json_object_get(o, "component"));
	const char *ev = json_string_value(json_object_get(o, "event"));
	const char *oc = json_string_value(json_object_get(o, "outcome"));
	if (c == NULL || ev == NULL || oc == NULL ||
	    (strcmp(c, "update") != 0 && strcmp(c, "diode") != 0 && strcmp(c, "trust") != 0) ||
	    (strcmp(ev, "apply") != 0 && strcmp(ev, "rotation") != 0 && strcmp(ev, "requeue") != 0)) {
		json_decref(o);
		return 0;
	}
	json_t *fl = json_object_get(o, "fields");
	json_t *r = json_object();
	char tb[CRETO_TIME_STRLEN];
	creto_time_format(json_integer_value(json_object_get(o, "time")) / 1000000, tb);
	json_object_set_new(r, "seq", json_integer((json_int_t)seq));
	json_object_set_new(r, "at", json_string(tb));
	json_object_set_new(r, "component", json_string(c));
	json_object_set_new(r, "event", json_string(ev));
	json_object_set_new(r, "outcome", json_string(oc));
	json_object_set_new(r, "decision", json_string(decision_of(ev, oc, fl)));
	static const char *const from_entry[] = {"subject", "reason"};
	for (size_t i = 0; i < 2; i++) {
		json_t *v = json_object_get(o, from_entry[i]);
		if (json_is_string(v))
			json_object_set(r, from_entry[i], v);
	}
	static const char *const from_fields[][2] = {
		{"file", "source"}, {"statement_digest", "statement_digest"}, {"keyids", "keyids"},
		{"message", "message"}, {"type", "type"}, {"name", "name"}, {"version", "version"}};
	for (size_t i = 0; i < sizeof from_fields / sizeof from_fields[0]; i++) {
		json_t *v = json_object_get(fl, from_fields[i][0]);
		if (v != NULL)
			json_object_set(r, from_fields[i][1], v);
	}
	json_object_set_new(r, "from", json_string(json_object_get(fl, "migrated_row") ? "migrated" : "log"));
	json_array_append_new(s->rows, r);
	json_decref(o);
	return 0;
}

int upd_status_log(const char *sdir, int rows, json_t *arr, creto_err *e)
{
	char dir[4200];
	creto_state_log_dir(sdir, dir, sizeof dir);
	creto_audit_reader *rd = NULL;
	uint64_t size = 0, first = 0;
	int rc = creto_audit_reader_open(dir, &rd, e);
	if (rc == CRETO_OK)
		rc = creto_audit_reader_size(rd, &size, &first, e);
	/* Backwards in chunks until enough rows are found. */
	uint64_t hi = size;
	size_t have = 0;
	while (rc == CRETO_OK && hi > first && have < (size_t)rows) {
		uint64_t lo = hi - first > 256 ? hi - 256 : first;
		st_scan s = {json_array()};
		rc = creto_audit_reader_scan(rd, lo, hi, status_row, &s, e);
		for (size_t i = json_array_size(s.rows); rc == CRETO_OK && i > 0 && have < (size_t)rows; i--, have++)
			json_array_insert(arr, 0, json_array_get(s.rows, i - 1));
		json_decref(s.rows);
		hi = lo;
	}
	creto_audit_reader_close(rd);
	return rc == CRETO_OK ? rc : creto_err_ctx(e, "update status");
}
