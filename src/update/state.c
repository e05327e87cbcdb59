/*
 * state.c - the state database DIR/state.db (SQLite): installed versions,
 * the trusted time floor, the current trust root and every applied
 * statement.  The decisions go to the audit log SDIR/audit (auditlog.c);
 * the old audit table is kept, no longer written, for state of earlier
 * versions (carried into the log once).  An install is one transaction; the
 * commit is the moment an update takes effect (docs/crupdate.md).
 */
#include "update_int.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/escape.h"
#include "util/file.h"
#include "util/timeutil.h"

struct upd_state {
	sqlite3 *db;
};

static const char SCHEMA[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=FULL;"
	"CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS installed(type TEXT NOT NULL, name TEXT NOT NULL,"
	" version INTEGER NOT NULL, statement_digest TEXT NOT NULL, installed_at INTEGER NOT NULL,"
	" PRIMARY KEY(type, name));"
	"CREATE TABLE IF NOT EXISTS applied(statement_digest TEXT PRIMARY KEY, type TEXT NOT NULL,"
	" name TEXT NOT NULL, version INTEGER NOT NULL, created INTEGER NOT NULL,"
	" keyids TEXT NOT NULL, applied_at INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS audit(id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,"
	" source TEXT NOT NULL, statement_digest TEXT, type TEXT, name TEXT, version INTEGER,"
	" keyids TEXT, decision TEXT NOT NULL, reason TEXT);";

static int dberr(upd_state *s, creto_err *e, const char *what)
{
	return creto_err_set(e, CRETO_EOP, "state db: %s: %s", what, sqlite3_errmsg(s->db));
}

/* The schema generation this code writes (meta k='state_version').  State
 * made before `state init` existed has the same tables and no such row: it
 * is recognised as initialised and the row is added on its first write. */
#define STATE_VERSION "2"

int upd_state_initialised(const char *dir, creto_err *e)
{
	char path[4096];
	struct stat sb;
	snprintf(path, sizeof path, "%s/state.db", dir);
	if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode))
		return CRETO_OK;
	if (stat(dir, &sb) != 0)
		return creto_err_set(e, CRETO_EUSAGE,
				     "state directory %s does not exist; create it with `creto state init "
				     "--state %s --trust ROOT.json` (a mistyped or unmounted --state is "
				     "never a fresh start)", dir, dir);
	return creto_err_set(e, CRETO_EUSAGE,
			     "state directory %s holds no initialised state (no state.db); create it with "
			     "`creto state init --state %s --trust ROOT.json`", dir, dir);
}

static int open_db(const char *dir, int flags, int create, upd_state **out, creto_err *e)
{
	*out = NULL;
	char path[4096];
	snprintf(path, sizeof path, "%s/state.db", dir);
	upd_state *s = calloc(1, sizeof *s);
	if (s == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	if (sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		int rc = dberr(s, e, path);
		upd_state_close(s);
		return rc;
	}
	sqlite3_busy_timeout(s->db, 10000);
	if (!(flags & SQLITE_OPEN_READONLY)) {
		/* Creates the tables of a new state; upgrades an earlier one in
		 * place (CREATE ... IF NOT EXISTS, then the version row). */
		if (sqlite3_exec(s->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(s->db, create ? "INSERT OR REPLACE INTO meta(k, v) VALUES('state_version', '"
						 STATE_VERSION "')"
					       : "INSERT OR IGNORE INTO meta(k, v) VALUES('state_version', '"
						 STATE_VERSION "')", NULL, NULL, NULL) != SQLITE_OK) {
			int rc = dberr(s, e, "schema");
			upd_state_close(s);
			return rc;
		}
	}
	*out = s;
	return CRETO_OK;
}

int upd_state_open(const char *dir, int readonly, upd_state **out, creto_err *e)
{
	*out = NULL;
	int rc = upd_state_initialised(dir, e);
	if (rc != CRETO_OK)
		return rc;
	return open_db(dir, readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE, 0, out, e);
}

int upd_state_create(const char *dir, upd_state **out, creto_err *e)
{
	*out = NULL;
	char path[4096];
	struct stat sb;
	snprintf(path, sizeof path, "%s/state.db", dir);
	if (lstat(path, &sb) == 0)
		return creto_err_set(e, CRETO_EUSAGE, "state directory %s is already initialised", dir);
	int rc = creto_mkdir_p(dir, 0700, e);
	if (rc != CRETO_OK)
		return rc;
	/* O_EXCL on the database file: two inits never both succeed. */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return creto_err_set(e, CRETO_EUSAGE, "state directory %s is already initialised", dir);
		return creto_err_errno(e, errno, "create %s", path);
	}
	close(fd);
	if ((rc = open_db(dir, SQLITE_OPEN_READWRITE, 1, out, e)) != CRETO_OK) {
		(void)unlink(path);
		return rc;
	}
	return creto_file_sync_dir(dir, 1, e);
}

int upd_state_lock(const char *dir, int64_t wait_s, int (*cancelled)(void *), void *arg, int *fd,
		   creto_err *e)
{
	char lp[4096];
	*fd = -1;
	snprintf(lp, sizeof lp, "%s/lock", dir);
	int f = open(lp, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (f < 0)
		return creto_err_errno(e, errno, "lock %s", lp);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (flock(f, LOCK_EX | LOCK_NB) == 0)
			break;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			int rc = creto_err_errno(e, errno, "lock %s", lp);
			close(f);
			return rc;
		}
		struct timespec t1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec >= wait_s || (cancelled != NULL && cancelled(arg))) {
			char pid[32] = "";
			ssize_t n = pread(f, pid, sizeof pid - 1, 0);
			pid[n > 0 ? n : 0] = 0;
			pid[strcspn(pid, "\n")] = 0;
			close(f);
			return creto_err_set(e, CRETO_EUSAGE,
					     "state directory %s is in use by process %s (a watcher or apply "
					     "holds %s); one writer per state: stop it, or give --wait SECONDS",
					     dir, pid[0] ? pid : "(unknown)", lp);
		}
		struct timespec ts = {0, 100 * 1000000L};
		(void)nanosleep(&ts, NULL);
	}
	/* Name the holder for whoever is refused next. */
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)n, 0) != n) {
		/* only the message of a refused writer loses the PID */
	}
	*fd = f;
	return CRETO_OK;
}

void upd_state_close(upd_state *s)
{
	if (s == NULL)
		return;
	sqlite3_close(s->db);
	free(s);
}

static int exec(upd_state *s, const char *sql, creto_err *e)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return dberr(s, e, sql);
	return CRETO_OK;
}

int upd_state_begin(upd_state *s, creto_err *e) { return exec(s, "BEGIN IMMEDIATE", e); }
int upd_state_commit(upd_state *s, creto_err *e) { return exec(s, "COMMIT", e); }
void upd_state_rollback(upd_state *s)
{
	if (s != NULL && !sqlite3_get_autocommit(s->db))
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int upd_state_installed(upd_state *s, const char *type, const char *name, int64_t *version,
			creto_err *e)
{
	sqlite3_stmt *q;
	*version = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT version FROM installed WHERE type=? AND name=?", -1, &q,
			       NULL) != SQLITE_OK)
		return dberr(s, e, "installed");
	sqlite3_bind_text(q, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
	int r = sqlite3_step(q);
	if (r == SQLITE_ROW)
		*version = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return r == SQLITE_ROW || r == SQLITE_DONE ? CRETO_OK : dberr(s, e, "installed");
}

int upd_state_meta(upd_state *s, const char *k, char *out, size_t cap, creto_err *e)
{
	sqlite3_stmt *q;
	out[0] = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT v FROM meta WHERE k=?", -1, &q, NULL) != SQLITE_OK)
		return dberr(s, e, "meta");
	sqlite3_bind_text(q, 1, k, -1, SQLITE_STATIC);
	int r = sqlite3_step(q);
	if (r == SQLITE_ROW)
		snprintf(out, cap, "%s", (const char *)sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
	return r == SQLITE_ROW || r == SQLITE_DONE ? CRETO_OK : dberr(s, e, "meta");
}

int upd_state_meta_set(upd_state *s, const char *k, const char *v, creto_err *e)
{
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO meta(k, v) VALUES(?, ?)", -1, &q, NULL) !=
	    SQLITE_OK)
		return dberr(s, e, "meta");
	sqlite3_bind_text(q, 1, k, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, v, -1, SQLITE_STATIC);
	int r = sqlite3_step(q);
	sqlite3_finalize(q);
	return r == SQLITE_DONE ? CRETO_OK : dberr(s, e, "meta");
}

int upd_state_time_floor(upd_state *s, int64_t *floor, creto_err *e)
{
	char v[32];
	int rc = upd_state_meta(s, "time_floor", v, sizeof v, e);
	*floor = v[0] ? strtoll(v, NULL, 10) : 0;
	return rc;
}

int upd_state_root(upd_state *s, int64_t *version, char digest[65], creto_err *e)
{
	char v[32];
	int rc = upd_state_meta(s, "root_version", v, sizeof v, e);
	if (rc == CRETO_OK)
		rc = upd_state_meta(s, "root_digest", digest, 65, e);
	*version = v[0] ? strtoll(v, NULL, 10) : 0;
	return rc;
}

int upd_state_set_root(upd_state *s, int64_t version, const char *digest, creto_err *e)
{
	char v[32];
	snprintf(v, sizeof v, "%lld", (long long)version);
	int rc = upd_state_meta_set(s, "root_version", v, e);
	return rc == CRETO_OK ? upd_state_meta_set(s, "root_digest", digest, e) : rc;
}

int upd_state_applied(upd_state *s, const char *stmt_digest, int *applied, creto_err *e)
{
	sqlite3_stmt *q;
	*applied = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM applied WHERE statement_digest=?", -1, &q, NULL) !=
	    SQLITE_OK)
		return dberr(s, e, "applied");
	sqlite3_bind_text(q, 1, stmt_digest, -1, SQLITE_STATIC);
	int r = sqlite3_step(q);
	*applied = r == SQLITE_ROW;
	sqlite3_finalize(q);
	return r == SQLITE_ROW || r == SQLITE_DONE ? CRETO_OK : dberr(s, e, "applied");
}

int upd_state_record_install(upd_state *s, const creto_update_result *r, int64_t created,
			     int64_t now, creto_err *e)
{
	int64_t floor = 0;
	int rc = upd_state_time_floor(s, &floor, e);
	if (rc != CRETO_OK)
		return rc;
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(s->db,
			       "INSERT OR REPLACE INTO installed(type, name, version, statement_digest,"
			       " installed_at) VALUES(?, ?, ?, ?, ?)",
			       -1, &q, NULL) != SQLITE_OK)
		return dberr(s, e, "installed");
	sqlite3_bind_text(q, 1, r->type, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, r->version);
	sqlite3_bind_text(q, 4, r->statement_digest, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, now);
	int st = sqlite3_step(q);
	sqlite3_finalize(q);
	if (st != SQLITE_DONE)
		return dberr(s, e, "installed");
	if (sqlite3_prepare_v2(s->db,
			       "INSERT INTO applied(statement_digest, type, name, version, created, keyids,"
			       " applied_at) VALUES(?, ?, ?, ?, ?, ?, ?)",
			       -1, &q, NULL) != SQLITE_OK)
		return dberr(s, e, "applied");
	sqlite3_bind_text(q, 1, r->statement_digest, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, r->type, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, r->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, r->version);
	sqlite3_bind_int64(q, 5, created);
	sqlite3_bind_text(q, 6, r->keyids, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 7, now);
	st = sqlite3_step(q);
	sqlite3_finalize(q);
	if (st != SQLITE_DONE)
		return dberr(s, e, "applied");
	if (created > floor) {
		char v[32];
		snprintf(v, sizeof v, "%lld", (long long)created);
		return upd_state_meta_set(s, "time_floor", v, e);
	}
	return CRETO_OK;
}

int upd_state_each_audit_row(upd_state *s, int64_t after_id,
			     int (*fn)(void *arg, const upd_audit_row *r), void *arg, creto_err *e)
{
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT id, at, source, statement_digest, type, name, version, keyids, decision,"
			       " reason FROM audit WHERE id > ? ORDER BY id", -1, &q, NULL) != SQLITE_OK)
		return dberr(s, e, "audit");
	sqlite3_bind_int64(q, 1, after_id);
	int r, rc = CRETO_OK;
	while ((r = sqlite3_step(q)) == SQLITE_ROW) {
		upd_audit_row row;
		row.id = sqlite3_column_int64(q, 0);
		row.at = sqlite3_column_int64(q, 1);
		row.source = (const char *)sqlite3_column_text(q, 2);
		row.digest = (const char *)sqlite3_column_text(q, 3);
		row.type = (const char *)sqlite3_column_text(q, 4);
		row.name = (const char *)sqlite3_column_text(q, 5);
		row.version = sqlite3_column_int64(q, 6);
		row.keyids = (const char *)sqlite3_column_text(q, 7);
		row.decision = (const char *)sqlite3_column_text(q, 8);
		row.reason = (const char *)sqlite3_column_text(q, 9);
		if ((rc = fn(arg, &row)) != CRETO_OK)
			break;
	}
	sqlite3_finalize(q);
	if (rc == CRETO_OK && r != SQLITE_DONE)
		return dberr(s, e, "audit");
	return rc;
}

int upd_state_meta_del(upd_state *s, const char *k, creto_err *e)
{
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(s->db, "DELETE FROM meta WHERE k=?", -1, &q, NULL) != SQLITE_OK)
		return dberr(s, e, "meta");
	sqlite3_bind_text(q, 1, k, -1, SQLITE_STATIC);
	int r = sqlite3_step(q);
	sqlite3_finalize(q);
	return r == SQLITE_DONE ? CRETO_OK : dberr(s, e, "meta");
}

int upd_state_snapshot(upd_state *s, const char *type, const char *name, const char *digest,
		       upd_snapshot *snap, creto_err *e)
{
	memset(snap, 0, sizeof *snap);
	/* One read transaction: the four facts belong to one state.  Inside a
	 * write transaction of the caller's (commit re-checking), no BEGIN. */
	int own = sqlite3_get_autocommit(s->db);
	if (own && sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return dberr(s, e, "snapshot");
	char rd[65];
	int rc = upd_state_time_floor(s, &snap->floor, e);
	if (rc == CRETO_OK)
		rc = upd_state_root(s, &snap->root_version, rd, e);
	if (rc == CRETO_OK && digest != NULL)
		rc = upd_state_applied(s, digest, &snap->applied, e);
	if (rc == CRETO_OK && name != NULL && name[0])
		rc = upd_state_installed(s, type, name, &snap->installed, e);
	if (own)
		(void)sqlite3_exec(s->db, rc == CRETO_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int creto_update_models_list(const char *state_dir, creto_update_model **out, size_t *n,
			     creto_err *e)
{
	*out = NULL;
	*n = 0;
	upd_state *s = NULL;
	int rc = upd_state_open(state_dir, 1, &s, e);
	if (rc != CRETO_OK)
		return rc;
	sqlite3_stmt *q = NULL;
	creto_update_model *v = NULL;
	size_t cap = 0, k = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT name, version, statement_digest, installed_at FROM installed"
				      " WHERE type='model-weights' ORDER BY name", -1, &q, NULL) != SQLITE_OK) {
		rc = dberr(s, e, "installed");
		goto out;
	}
	int r;
	while ((r = sqlite3_step(q)) == SQLITE_ROW) {
		if (k == cap) {
			size_t nc = cap ? cap * 2 : 8;
			creto_update_model *nv = realloc(v, nc * sizeof *nv);
			if (nv == NULL) {
				rc = creto_err_set(e, CRETO_EOP, "out of memory");
				goto out;
			}
			v = nv;
			cap = nc;
		}
		creto_update_model *m = &v[k++];
		memset(m, 0, sizeof *m);
		snprintf(m->name, sizeof m->name, "%s", (const char *)sqlite3_column_text(q, 0));
		m->version = sqlite3_column_int64(q, 1);
		snprintf(m->statement_digest, sizeof m->statement_digest, "%s",
			 (const char *)sqlite3_column_text(q, 2));
		m->installed_at = sqlite3_column_int64(q, 3);
		snprintf(m->path, sizeof m->path, "%.3900s/models/%s/%lld", state_dir, m->name,
			 (long long)m->version);
	}
	if (r != SQLITE_DONE)
		rc = dberr(s, e, "installed");
out:
	sqlite3_finalize(q);
	upd_state_close(s);
	if (rc != CRETO_OK) {
		free(v);
		return rc;
	}
	*out = k ? v : NULL;
	if (k == 0)
		free(v);
	*n = k;
	return CRETO_OK;
}

int upd_state_each_installed(upd_state *s,
			     int (*fn)(void *arg, const char *type, const char *name, int64_t v),
			     void *arg, creto_err *e)
{
	sqlite3_stmt *q;
	if (sqlite3_prepare_v2(s->db, "SELECT type, name, version FROM installed ORDER BY type, name",
			       -1, &q, NULL) != SQLITE_OK)
		return dberr(s, e, "installed");
	int r, rc = CRETO_OK;
	while ((r = sqlite3_step(q)) == SQLITE_ROW) {
		rc = fn(arg, (const char *)sqlite3_column_text(q, 0), (const char *)sqlite3_column_text(q, 1),
			sqlite3_column_int64(q, 2));
		if (rc != CRETO_OK)
			break;
	}
	sqlite3_finalize(q);
	if (rc == CRETO_OK && r != SQLITE_DONE)
		return dberr(s, e, "installed");
	return rc;
}

int creto_update_status(const char *state_dir, int audit_rows, char **out, creto_err *e)
{
	*out = NULL;
	upd_state *s = NULL;
	int rc = upd_state_open(state_dir, 1, &s, e);
	if (rc != CRETO_OK)
		return rc;
	json_t *o = json_object(), *inst = json_array(), *aud = json_array();
	int64_t floor = 0, rv = 0;
	char rd[65] = "", tb[CRETO_TIME_STRLEN];
	sqlite3_stmt *q = NULL;
	if ((rc = upd_state_time_floor(s, &floor, e)) != CRETO_OK ||
	    (rc = upd_state_root(s, &rv, rd, e)) != CRETO_OK)
		goto out;
	creto_time_format(floor, tb);
	json_object_set_new(o, "time_floor", json_string(floor ? tb : ""));
	json_object_set_new(o, "trust_root_version", json_integer(rv));
	if (sqlite3_prepare_v2(s->db, "SELECT type, name, version, statement_digest, installed_at FROM installed"
				      " ORDER BY type, name", -1, &q, NULL) != SQLITE_OK) {
		rc = dberr(s, e, "installed");
		goto out;
	}
	while (sqlite3_step(q) == SQLITE_ROW) {
		json_t *r = json_object();
		json_object_set_new(r, "type", json_string((const char *)sqlite3_column_text(q, 0)));
		json_object_set_new(r, "name", json_string((const char *)sqlite3_column_text(q, 1)));
		json_object_set_new(r, "version", json_integer(sqlite3_column_int64(q, 2)));
		json_object_set_new(r, "statement_digest", json_string((const char *)sqlite3_column_text(q, 3)));
		creto_time_format(sqlite3_column_int64(q, 4), tb);
		json_object_set_new(r, "installed_at", json_string(tb));
		json_array_append_new(inst, r);
	}
	sqlite3_finalize(q);
	q = NULL;
	/* The decisions: from the audit log once it exists; before that (state
	 * of an earlier version not written since), its old audit table. */
	if (upd_log_exists(state_dir)) {
		rc = upd_status_log(state_dir, audit_rows, aud, e);
		if (rc != CRETO_OK)
			goto out;
		goto done;
	}
	if (sqlite3_prepare_v2(s->db, "SELECT at, source, decision, reason, statement_digest, keyids"
				      " FROM audit ORDER BY id DESC LIMIT ?", -1, &q, NULL) != SQLITE_OK) {
		q = NULL;
		rc = dberr(s, e, "audit");
		goto out;
	}
	sqlite3_bind_int(q, 1, audit_rows);
	while (sqlite3_step(q) == SQLITE_ROW) {
		json_t *r = json_object();
		creto_time_format(sqlite3_column_int64(q, 0), tb);
		json_object_set_new(r, "at", json_string(tb));
		const char *cols[] = {NULL, "source", "decision", "reason", "statement_digest", "keyids"};
		for (int i = 1; i < 6; i++)
			if (sqlite3_column_type(q, i) != SQLITE_NULL)
				json_object_set_new(r, cols[i], json_string((const char *)sqlite3_column_text(q, i)));
		json_object_set_new(r, "from", json_string("state.db"));
		json_array_insert_new(aud, 0, r);
	}
	sqlite3_finalize(q);
done:
	json_object_set(o, "installed", inst);
	json_object_set(o, "audit", aud);
	*out = json_dumps(o, JSON_INDENT(2));
	if (*out == NULL)
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
out:
	json_decref(inst);
	json_decref(aud);
	json_decref(o);
	upd_state_close(s);
	return rc;
}
