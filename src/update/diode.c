/*
 * diode.c - the diode watcher: every complete *.crupdate that appears in the
 * drop directory is applied or quarantined, then moved out of the drop
 * directory (SDIR/processed/ or SDIR/quarantine/ with NAME.reason); nothing
 * is deleted.  inotify (IN_CLOSE_WRITE, IN_MOVED_TO) wakes it; a full scan
 * at start and after every wake-up means nothing is missed across restarts.
 * A file is taken only when its name does not end in .part, its size and
 * mtime are unchanged across the settle interval, and no process holds it
 * open for writing (a writer that pauses longer than the interval is waited
 * for: see open_for_write).
 * At start it checks what would otherwise fail on every package: the trust
 * root must load (exit 1 when refused, 3 when unreadable) and the drop
 * directory must share a file system with SDIR (exit 2).  Later failures
 * that are not a decision about a package (trust root, state directory, a
 * move) leave that package in place as `retry`; the watcher goes on.
 */
#include "update_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/escape.h"
#include "util/file.h"
#include <limits.h>

#include "util/timeutil.h"

/* Most candidates held open at once in one pass; more wait for the next. */
#define SCAN_MAX 256

/* When to stop: the caller's handle, or the --timeout deadline. */
typedef struct wstop {
	creto_stop_handle *h;
	int64_t deadline_ms;     /* CLOCK_MONOTONIC; 0: no timeout */
} wstop;

typedef struct watch {
	const creto_diode_opts *o;
	creto_update_ctx *ctx;
	const char *sdir;
	int dfd;                 /* the drop directory */
	wstop *ws;
} watch;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ws_stopping(const wstop *ws)
{
	return creto_stop_handle_stopped(ws->h) || (ws->deadline_ms > 0 && mono_ms() >= ws->deadline_ms);
}

static int stopping(const watch *w)
{
	return ws_stopping(w->ws);
}

static int cancelled_cb(void *arg)
{
	return ws_stopping(arg);
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Sleep up to ms, returning early when the watcher must stop (the stop
 * handle's descriptor wakes the poll). */
static void sleep_ms(const watch *w, int ms)
{
	int64_t until = mono_ms() + ms;
	while (!stopping(w)) {
		int64_t left = until - mono_ms();
		if (left <= 0)
			return;
		if (w->ws->deadline_ms > 0 && w->ws->deadline_ms - mono_ms() < left)
			left = w->ws->deadline_ms - mono_ms() + 1;
		struct pollfd pf = {creto_stop_handle_fd(w->ws->h), POLLIN, 0};
		(void)poll(&pf, pf.fd >= 0 ? 1 : 0, (int)left);
	}
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* The name a package gets in dir: NAME, then NAME.1, NAME.2, ... on
 * collision.  Every derived name, and NAME.reason beside it (room given by
 * reserve), fits NAME_MAX: the base is cut to make room, and uniqueness
 * comes from the counter and RENAME_NOREPLACE, not from the length. */
static void derived_name(char *out, size_t cap, const char *name, int i, size_t reserve)
{
	char suf[16] = "";
	if (i > 0)
		snprintf(suf, sizeof suf, ".%d", i);
	size_t room = NAME_MAX - reserve - strlen(suf);
	size_t n = strlen(name);
	if (n > room)
		n = room;
	snprintf(out, cap, "%.*s%s", (int)n, name, suf);
}

#define REASON_SUFFIX ".reason"

/* Move the candidate `name` of the drop directory into dir, never replacing
 * anything, and only if the name still refers to the file that was decided
 * about (id): whoever writes the drop directory can swap another file onto
 * the name at any moment.  Should a swap slip in between the check and the
 * rename, the file that was moved is put back under its name (it was never
 * decided about) and the move fails.  quarantine: keep room for, and never
 * take a name whose, NAME.reason exists. */
static int move_into(const watch *w, const char *name, const struct stat *id, const char *dir,
		     int quarantine, char *dst, size_t cap, creto_err *e)
{
	struct stat now;
	if (fstatat(w->dfd, name, &now, AT_SYMLINK_NOFOLLOW) != 0)
		return creto_err_errno(e, errno, "%s/%s", w->o->dir, name);
	if (!same_file(&now, id))
		return creto_err_set(e, CRETO_EOP, "%s/%s was replaced while being processed", w->o->dir, name);
	/* NAME.reason is written atomically through NAME.reason.tmp.XXXXXX. */
	size_t reserve = quarantine ? strlen(REASON_SUFFIX ".tmp.XXXXXX") : 0;
	for (int i = 0; i < 1000; i++) {
		char base[NAME_MAX + 1];
		derived_name(base, sizeof base, name, i, reserve);
		snprintf(dst, cap, "%s/%s", dir, base);
		if (quarantine) {
			char rp[4600];
			snprintf(rp, sizeof rp, "%s" REASON_SUFFIX, dst);
			if (lstat(rp, &now) == 0 && S_ISREG(now.st_mode))
				continue; /* the note of another package: never replaced */
		}
		if (renameat2(w->dfd, name, AT_FDCWD, dst, RENAME_NOREPLACE) != 0) {
			if (errno == EEXIST)
				continue;
			return creto_err_errno(e, errno, "move %s/%s to %s", w->o->dir, name, dir);
		}
		if (lstat(dst, &now) == 0 && !same_file(&now, id)) {
			(void)renameat2(AT_FDCWD, dst, w->dfd, name, RENAME_NOREPLACE);
			return creto_err_set(e, CRETO_EOP, "%s/%s was replaced while being processed",
					     w->o->dir, name);
		}
		return creto_file_sync_dir(dir, 1, e);
	}
	return creto_err_set(e, CRETO_EOP, "move %s/%s: too many files named %s in %s", w->o->dir, name,
			     name, dir);
}

static void say(const watch *w, const char *file, const char *decision, const char *rule,
		const char *msg, const creto_update_result *r)
{
	if (w->o->report == NULL)
		return;
	creto_diode_event ev = {file, decision, rule ? rule : "", msg, r};
	w->o->report(w->o->report_arg, &ev);
}

static const char *kind_of(mode_t m)
{
	return S_ISFIFO(m) ? "a FIFO" : S_ISDIR(m) ? "a directory" : S_ISLNK(m) ? "a symbolic link"
	       : S_ISCHR(m) || S_ISBLK(m) ? "a device" : S_ISSOCK(m) ? "a socket" : "a special file";
}

typedef struct cand {
	char name[NAME_MAX + 1];
	int fd;              /* -1: not opened (not a regular file) */
	struct stat st;      /* fstat of fd (or lstat when fd is -1) */
} cand;

/* The reason file beside a quarantined package: "rule: NAME\nMESSAGE\n". */
static int write_reason(const char *dst, const creto_update_decision *d, creto_err *e)
{
	char rp[4500], text[4 * CRETO_ERR_MSG_MAX + 64], why[4 * CRETO_ERR_MSG_MAX];
	snprintf(rp, sizeof rp, "%s" REASON_SUFFIX, dst);
	/* The message quotes the untrusted name: escaped, so the note stays
	 * two lines whatever the name holds. */
	(void)creto_escape(why, sizeof why, d->why.msg, strlen(d->why.msg));
	int n = snprintf(text, sizeof text, "rule: %s\n%s\n", d->res.rule[0] ? d->res.rule : "rejected", why);
	if (n < 0 || (size_t)n >= sizeof text)
		n = (int)strlen(text);
	return creto_file_write_atomic(rp, text, (size_t)n, 0644, e);
}

/* A decision made without reading a package: the entry is not a regular
 * file (quarantine, rule container), or it could not be rewound (retry). */
static int decide_entry(const watch *w, const cand *c, const char *src, creto_update_decision *d,
			creto_err *e)
{
	if (c->fd >= 0 && S_ISREG(c->st.st_mode)) {
		if (lseek(c->fd, 0, SEEK_SET) == 0)
			return creto_update_decide(w->ctx, c->fd, src, d, e);
		creto_err why;
		int rc = creto_err_errno(&why, errno, "%s", src);
		if (upd_decision_init(d, src, e) != CRETO_OK)
			return CRETO_EOP;
		d->facts->now = creto_clock_now(w->ctx->o.clock);
		d->facts->component = "diode";
		d->facts->generation = w->ctx->generation;
		d->verdict = CRETO_VERDICT_RETRY;
		d->why = why;
		d->why.code = rc;
		return CRETO_OK;
	}
	if (upd_decision_init(d, src, e) != CRETO_OK)
		return CRETO_EOP;
	d->facts->now = creto_clock_now(w->ctx->o.clock);
	d->facts->component = "diode";
	d->facts->generation = w->ctx->generation;
	creto_err_set(&d->why, CRETO_EREJECT, "%s: container: %s, not a regular file", src,
		      kind_of(c->st.st_mode));
	d->verdict = CRETO_VERDICT_QUARANTINE;
	d->rule = d->res.rule_id = CRETO_RULE_CONTAINER;
	snprintf(d->res.rule, sizeof d->res.rule, "%s", creto_update_rule_name(d->rule));
	return CRETO_OK;
}

/* Quarantine: the event (with an intent), the move into SDIR/quarantine/
 * (its state commit: the intent done), then the note beside it. */
static void quarantine(const watch *w, const cand *c, creto_update_decision *d, const char *qdir)
{
	char dst[4400];
	creto_err me, ig;
	creto_err_clear(&me);
	creto_err_clear(&ig);
	if (upd_record(w->ctx, d, "quarantined", UPD_INTENT, &me) != CRETO_OK) {
		if (!w->ctx->sink_failed) /* the intent could not be stored: decide again later */
			say(w, c->name, "retry", NULL, me.msg, &d->res);
		return; /* the sink refused: the watcher stops */
	}
	if (move_into(w, c->name, &c->st, qdir, 1, dst, sizeof dst, &me) != CRETO_OK) {
		upd_record_aborted(w->ctx, d, me.msg);
		char msg[2 * CRETO_ERR_MSG_MAX + 64];
		snprintf(msg, sizeof msg, "rejected (%s), but %s; left in the diode directory", d->why.msg, me.msg);
		say(w, c->name, "retry", NULL, msg, &d->res);
		return;
	}
	if (upd_commit_intent(w->ctx, &ig) != CRETO_OK) {
		/* the package is in quarantine/ and the log holds the decision;
		 * the next context records `aborted` for the intent left behind */
	}
	if (write_reason(dst, d, &me) != CRETO_OK) {
		/* The package is safely in quarantine/; only its note is missing. */
		char msg[2 * CRETO_ERR_MSG_MAX + 64];
		snprintf(msg, sizeof msg, "%s (reason file not written: %s)", d->why.msg, me.msg);
		say(w, c->name, "quarantined", d->res.rule, msg, &d->res);
		return;
	}
	say(w, c->name, "quarantined", d->res.rule, d->why.msg, &d->res);
}

/* Process one complete package, read only through the descriptor c->fd.
 * A failure that is not a decision about the package (the trust root is
 * unusable, the state directory fails, a move fails) is reported as
 * `retry` and the package stays in the drop directory for a later pass.
 * Only a refusing event sink stops the watcher (w->ctx->sink_failed). */
static void handle(const watch *w, const cand *c)
{
	const char *name = c->name;
	char src[4400], dst[4400], qdir[4096], pdir[4096];
	snprintf(src, sizeof src, "%s/%s", w->o->dir, name);
	snprintf(qdir, sizeof qdir, "%s/quarantine", w->sdir);
	snprintf(pdir, sizeof pdir, "%s/processed", w->sdir);
	creto_update_decision d;
	creto_err ae, me;
	creto_err_clear(&ae);
	creto_err_clear(&me);
	if (decide_entry(w, c, src, &d, &ae) != CRETO_OK) {
		say(w, name, "retry", NULL, ae.msg, NULL);
		return;
	}
	int rc;
	switch (d.verdict) {
	case CRETO_VERDICT_QUARANTINE:
		quarantine(w, c, &d, qdir);
		break;
	case CRETO_VERDICT_RETRY:
		/* Nothing was decided about the package: keep it for the next
		 * pass (after the operator fixes the trust root, say). */
		if (creto_update_commit(w->ctx, &d, &ae) != CRETO_OK && !w->ctx->sink_failed)
			say(w, name, "retry", NULL, d.why.msg, &d.res);
		break;
	case CRETO_VERDICT_ACCEPT:
	case CRETO_VERDICT_DUPLICATE:
		rc = creto_update_commit(w->ctx, &d, &ae);
		if (w->ctx->sink_failed)
			break;
		if (rc != CRETO_OK && d.verdict == CRETO_VERDICT_ACCEPT) {
			/* Operational failure: leave the package where it is. */
			say(w, name, "retry", NULL, ae.msg, &d.res);
			break;
		}
		if (move_into(w, name, &c->st, pdir, 0, dst, sizeof dst, &me) != CRETO_OK) {
			/* Applied (or a duplicate): the next pass finds it applied
			 * and moves it then. */
			char msg[CRETO_ERR_MSG_MAX + 64];
			snprintf(msg, sizeof msg, "%s; left in the diode directory", me.msg);
			say(w, name, "retry", NULL, msg, &d.res);
			break;
		}
		char msg[600];
		const creto_update_result *r = &d.res;
		if (d.verdict == CRETO_VERDICT_DUPLICATE)
			snprintf(msg, sizeof msg, "already applied (statement %.16s), moved to %.300s",
				 r->statement_digest, dst);
		else
			snprintf(msg, sizeof msg, "%s %s version %lld installed at %.300s", r->type, r->name,
				 (long long)r->version, r->install_path);
		say(w, name, d.verdict == CRETO_VERDICT_DUPLICATE ? "duplicate" : "applied", NULL, msg, r);
		break;
	}
	creto_update_decision_clear(&d);
}

/* Whether some process holds the file open for writing.  Linux grants a
 * read lease (fcntl F_SETLEASE, F_RDLCK) on our read-only descriptor
 * exactly when no one does, and refuses it with EAGAIN otherwise; the lease
 * is dropped at once.  1: a writer has it open; 0: none; -1: leases are not
 * available here (the watcher neither owns the file nor has CAP_LEASE, or
 * the file system has no leases), and the settle interval alone decides. */
static int open_for_write(int fd)
{
	if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
		(void)fcntl(fd, F_SETLEASE, F_UNLCK);
		return 0;
	}
	return errno == EAGAIN ? 1 : -1;
}

/* Open a candidate once, without blocking and without following a link:
 * everything later (settle checks, verify, apply) uses this descriptor, so
 * swapping another file onto the name cannot change what is decided about.
 * 0: c is filled (c->fd may be -1 for a non-regular entry); -1: gone. */
static int open_cand(const watch *w, const char *name, cand *c)
{
	snprintf(c->name, sizeof c->name, "%s", name);
	c->fd = openat(w->dfd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (c->fd >= 0) {
		if (fstat(c->fd, &c->st) != 0) {
			close(c->fd);
			return -1;
		}
		if (!S_ISREG(c->st.st_mode)) {
			close(c->fd);
			c->fd = -1;
		}
		return 0;
	}
	/* A symbolic link (ELOOP), a socket (ENXIO), or unreadable: judged by
	 * what the entry is, never opened. */
	if (fstatat(w->dfd, name, &c->st, AT_SYMLINK_NOFOLLOW) != 0)
		return -1;
	return 0;
}

/* One pass over the directory.  *pending = 1 when a file is still being
 * written or more candidates wait than one pass takes. */
static int scan(const watch *w, int *pending, creto_err *e)
{
	*pending = 0;
	int d2 = openat(w->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = d2 >= 0 ? fdopendir(d2) : NULL;
	if (d == NULL) {
		int rc = creto_err_errno(e, errno, "diode directory %s", w->o->dir);
		if (d2 >= 0)
			close(d2);
		return rc;
	}
	cand *c = calloc(SCAN_MAX, sizeof *c);
	if (c == NULL) {
		closedir(d);
		return creto_err_set(e, CRETO_EOP, "out of memory");
	}
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL && !stopping(w)) {
		if (de->d_name[0] == '.' || !ends_with(de->d_name, ".crupdate"))
			continue;
		if (n == SCAN_MAX) {
			*pending = 1;
			break;
		}
		if (open_cand(w, de->d_name, &c[n]) == 0)
			n++;
	}
	closedir(d);
	if (n > 0) {
		sleep_ms(w, w->o->settle_ms > 0 ? w->o->settle_ms : 500);
		for (size_t i = 0; i < n && !stopping(w) && !w->ctx->sink_failed; i++) {
			if (c[i].fd >= 0) {
				struct stat sb;
				if (fstat(c[i].fd, &sb) != 0)
					continue;
				if (sb.st_size != c[i].st.st_size || sb.st_mtim.tv_sec != c[i].st.st_mtim.tv_sec ||
				    sb.st_mtim.tv_nsec != c[i].st.st_mtim.tv_nsec) {
					*pending = 1; /* still being written */
					continue;
				}
				if (open_for_write(c[i].fd) == 1) {
					*pending = 1; /* its writer paused, and still has it open */
					continue;
				}
			}
			handle(w, &c[i]);
		}
	}
	for (size_t i = 0; i < n; i++)
		if (c[i].fd >= 0)
			close(c[i].fd);
	free(c);
	if (w->ctx->sink_failed) {
		*e = w->ctx->sink_err;
		return creto_err_ctx(e, "diode watch");
	}
	return CRETO_OK;
}

/* Packages leave the drop directory by rename(2) into SDIR/processed/ and
 * SDIR/quarantine/, which only works within one file system: refuse to
 * start otherwise, instead of failing on every package. */
static int check_same_fs(const creto_diode_opts *o, const char *sdir, creto_err *e)
{
	struct stat d, t;
	if (stat(o->dir, &d) != 0)
		return creto_err_errno(e, errno, "diode directory %s", o->dir);
	if (!S_ISDIR(d.st_mode))
		return creto_err_set(e, CRETO_EUSAGE, "diode directory %s is not a directory", o->dir);
	static const char *const sub[] = {"processed", "quarantine"};
	for (size_t i = 0; i < 2; i++) {
		char p[4200];
		snprintf(p, sizeof p, "%s/%s", sdir, sub[i]);
		if (stat(p, &t) != 0)
			return creto_err_errno(e, errno, "%s", p);
		if (t.st_dev != d.st_dev)
			return creto_err_set(e, CRETO_EUSAGE,
					     "diode watch: %s and the diode directory %s are on different file "
					     "systems; packages are moved by rename, so put the drop directory "
					     "and --state on one file system", p, o->dir);
	}
	return CRETO_OK;
}

/* The watcher's own events: start and stop (component diode). */
static int watch_event(const watch *w, const char *event, const char *reason, creto_err *e)
{
	int64_t rv, rx;
	creto_update_ctx_root(w->ctx, &rv, &rx);
	creto_event_field f[2] = {{"state", w->sdir, 0}, {"trust_root_version", NULL, rv}};
	creto_event ev = {"diode", event, "ok", w->o->dir, reason, NULL, f, 2};
	int rc = creto_update_ctx_event(w->ctx, &ev, e);
	return rc == CRETO_OK ? rc : creto_err_ctx(e, "diode watch");
}

static int watch_run(creto_update_ctx *ctx, const creto_diode_opts *o, wstop *ws, creto_err *e)
{
	char q[4096];
	int rc;
	watch w;
	memset(&w, 0, sizeof w);
	w.o = o;
	w.ctx = ctx;
	w.sdir = ctx->sdir;
	w.dfd = -1;
	w.ws = ws;
	if (ctx->o.readonly || ctx->sdir == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "diode watch: the update context is read-only");
	/* The context's decisions are the watcher's for the watch: its stop
	 * interrupts a payload, and its events say diode. */
	creto_update_ctx_opts saved = ctx->o;
	ctx->o.cancelled = cancelled_cb;
	ctx->o.cancel_arg = ws;
	ctx->o.component = "diode";
	int in = -1, started = 0;
	snprintf(q, sizeof q, "%s/quarantine", w.sdir);
	if ((rc = creto_mkdir_p(q, 0700, e)) != CRETO_OK)
		goto out;
	snprintf(q, sizeof q, "%s/processed", w.sdir);
	if ((rc = creto_mkdir_p(q, 0700, e)) != CRETO_OK)
		goto out;
	if ((rc = check_same_fs(o, w.sdir, e)) != CRETO_OK)
		goto out;
	/* The trust root is the operator's: if it cannot be used, say so once
	 * and stop, rather than judge (or set aside) every package with it. */
	upd_ctx_refresh_root(ctx);
	if (ctx->root == NULL) {
		*e = ctx->root_err;
		rc = creto_err_ctx(e, "diode watch");
		goto out;
	}
	w.dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w.dfd < 0) {
		rc = creto_err_errno(e, errno, "diode directory %s", o->dir);
		goto out;
	}
	if ((rc = watch_event(&w, "start", o->once ? "one pass" : NULL, e)) != CRETO_OK)
		goto out;
	started = 1;
	if (o->started != NULL) {
		int64_t rv, rx;
		creto_update_ctx_root(ctx, &rv, &rx);
		o->started(o->report_arg, rv, rx);
	}
	if (!o->once) {
		in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		if (in < 0) {
			rc = creto_err_errno(e, errno, "inotify");
			goto out;
		}
		if (inotify_add_watch(in, o->dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
			rc = creto_err_errno(e, errno, "watch %s", o->dir);
			goto out;
		}
	}
	int pending = 0;
	rc = scan(&w, &pending, e);
	while (rc == CRETO_OK && !o->once && !stopping(&w)) {
		int wait = pending ? 200 : 1000;
		if (ws->deadline_ms > 0) {
			int64_t left = ws->deadline_ms - mono_ms();
			if (left < wait)
				wait = left > 0 ? (int)left : 0;
		}
		struct pollfd pf[2] = {{in, POLLIN, 0}, {creto_stop_handle_fd(ws->h), POLLIN, 0}};
		int pr = poll(pf, pf[1].fd >= 0 ? 2 : 1, wait);
		if (pr < 0 && errno != EINTR) {
			rc = creto_err_errno(e, errno, "poll");
			break;
		}
		int woke = pending;
		if (pr > 0 && (pf[0].revents & POLLIN)) {
			char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
			while (read(in, buf, sizeof buf) > 0)
				woke = 1;
		}
		if (woke && !stopping(&w))
			rc = scan(&w, &pending, e);
	}
out:
	if (started && !ctx->sink_failed) {
		creto_err se;
		creto_err_clear(&se);
		const char *why = rc != CRETO_OK ? "failed" : o->once ? "one pass done"
				  : creto_stop_handle_stopped(ws->h) ? "stop requested" : "timeout";
		if (watch_event(&w, "stop", why, &se) != CRETO_OK && rc == CRETO_OK) {
			*e = se;
			rc = se.code;
		}
	}
	if (in >= 0)
		close(in);
	if (w.dfd >= 0)
		close(w.dfd);
	ctx->o = saved;
	return rc;
}

int creto_diode_watch_ctx(creto_update_ctx *ctx, const creto_diode_opts *o, creto_err *e)
{
	wstop ws = {o->stop, 0};
	if (o->timeout_s > 0)
		ws.deadline_ms = mono_ms() + o->timeout_s * 1000;
	return watch_run(ctx, o, &ws, e);
}

int creto_diode_watch(const creto_diode_opts *o, creto_err *e)
{
	wstop ws = {o->stop, 0};
	if (o->timeout_s > 0)
		ws.deadline_ms = mono_ms() + o->timeout_s * 1000;
	creto_update_ctx_opts co;
	memset(&co, 0, sizeof co);
	co.clock = o->clock;
	co.crash = o->crash;
	co.crash_arg = o->crash_arg;
	co.cancelled = cancelled_cb;
	co.cancel_arg = &ws;
	co.lock_wait_s = o->lock_wait_s; /* one writer per state, for the whole watch */
	co.sink = o->sink;
	co.component = "diode";
	if (o->state_dir == NULL || o->trust_path == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "diode watch: no trust root or state directory given");
	creto_update_ctx *ctx = NULL;
	int rc = creto_update_ctx_open(o->state_dir, o->trust_path, &co, &ctx, e);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "diode watch");
	rc = watch_run(ctx, o, &ws, e);
	creto_update_ctx_close(ctx);
	return rc;
}

/* ---- the quarantine, handled ---- */

static int q_name_ok(const char *name)
{
	return name[0] != 0 && name[0] != '.' && strchr(name, '/') == NULL &&
	       strlen(name) <= NAME_MAX && !ends_with(name, REASON_SUFFIX) &&
	       !ends_with(name, REASON_SUFFIX ".requeued") && strstr(name, REASON_SUFFIX ".tmp.") == NULL;
}

/* One quarantine entry as a JSON object, from the package and its note. */
static json_t *q_entry(int qfd, const char *name)
{
	struct stat sb, rb;
	if (fstatat(qfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
		return NULL;
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(name));
	json_object_set_new(o, "bytes", json_integer((json_int_t)sb.st_size));
	char rp[NAME_MAX + 32], buf[4096], when[CRETO_TIME_STRLEN];
	snprintf(rp, sizeof rp, "%s" REASON_SUFFIX, name);
	const char *rule = "", *why = "";
	int fd = openat(qfd, rp, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n = -1;
	if (fd >= 0 && fstat(fd, &rb) == 0 && S_ISREG(rb.st_mode))
		n = read(fd, buf, sizeof buf - 1);
	if (fd >= 0)
		close(fd);
	if (n > 0) {
		buf[n] = 0;
		char *nl = strchr(buf, '\n');
		if (nl != NULL) {
			*nl = 0;
			why = nl + 1;
			char *nl2 = strchr(nl + 1, '\n');
			if (nl2 != NULL)
				*nl2 = 0;
		}
		rule = strncmp(buf, "rule: ", 6) == 0 ? buf + 6 : "";
		creto_time_format((int64_t)rb.st_mtim.tv_sec, when);
	} else {
		creto_time_format((int64_t)sb.st_ctim.tv_sec, when);
	}
	json_object_set_new(o, "rule", json_string(rule));
	json_object_set_new(o, "reason", json_string(why));
	json_object_set_new(o, "quarantined_at", json_string(when));
	return o;
}

static int q_open(const char *state_dir, int *qfd, creto_err *e)
{
	int rc = upd_state_initialised(state_dir, e);
	if (rc != CRETO_OK)
		return rc;
	char q[4096];
	snprintf(q, sizeof q, "%s/quarantine", state_dir);
	*qfd = open(q, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*qfd < 0 && errno != ENOENT)
		return creto_err_errno(e, errno, "%s", q);
	return CRETO_OK;
}

static int dump_json(json_t *o, char **out, creto_err *e)
{
	*out = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return *out ? CRETO_OK : creto_err_set(e, CRETO_EOP, "out of memory");
}

int creto_diode_quarantine_list(const char *state_dir, char **out, creto_err *e)
{
	*out = NULL;
	int qfd = -1;
	int rc = q_open(state_dir, &qfd, e);
	if (rc != CRETO_OK)
		return rc;
	json_t *arr = json_array();
	if (qfd >= 0) {
		DIR *d = fdopendir(qfd);
		if (d == NULL) {
			close(qfd);
			json_decref(arr);
			return creto_err_errno(e, errno, "%s/quarantine", state_dir);
		}
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (!q_name_ok(de->d_name))
				continue;
			json_t *x = q_entry(dirfd(d), de->d_name);
			if (x != NULL)
				json_array_append_new(arr, x);
		}
		closedir(d);
	}
	return dump_json(arr, out, e);
}

int creto_diode_quarantine_show(const char *state_dir, const char *name, char **out, creto_err *e)
{
	*out = NULL;
	if (!q_name_ok(name))
		return creto_err_set(e, CRETO_EUSAGE, "quarantine: %s is not a quarantined package name", name);
	int qfd = -1;
	int rc = q_open(state_dir, &qfd, e);
	if (rc != CRETO_OK)
		return rc;
	json_t *x = qfd >= 0 ? q_entry(qfd, name) : NULL;
	if (qfd >= 0)
		close(qfd);
	if (x == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "quarantine: no package %s in %s/quarantine", name,
				     state_dir);
	return dump_json(x, out, e);
}

int creto_diode_quarantine_requeue(const char *state_dir, const char *name, const char *drop_dir,
				   const creto_clock *clock, const creto_event_sink *sink, creto_err *e)
{
	if (!q_name_ok(name))
		return creto_err_set(e, CRETO_EUSAGE, "quarantine: %s is not a quarantined package name", name);
	int qfd = -1;
	int rc = q_open(state_dir, &qfd, e);
	if (rc != CRETO_OK)
		return rc;
	struct stat sb;
	if (qfd < 0 || fstatat(qfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode)) {
		if (qfd >= 0)
			close(qfd);
		return creto_err_set(e, CRETO_EUSAGE, "quarantine: no package %s in %s/quarantine", name,
				     state_dir);
	}
	/* The watcher takes only *.crupdate: a derived name (NAME.1, a cut
	 * name) gets the suffix back, within NAME_MAX. */
	char back[NAME_MAX + 1];
	if (ends_with(name, ".crupdate"))
		snprintf(back, sizeof back, "%s", name);
	else
		snprintf(back, sizeof back, "%.*s.crupdate", (int)(NAME_MAX - strlen(".crupdate")), name);
	int dfd = open(drop_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = creto_err_errno(e, errno, "drop directory %s", drop_dir);
		close(qfd);
		return rc;
	}
	/* The record first: refused, nothing moves. */
	(void)clock; /* the log stamps the entry */
	char qsrc[4400], to[4400];
	snprintf(qsrc, sizeof qsrc, "%s/quarantine/%s", state_dir, name);
	snprintf(to, sizeof to, "%s/%s", drop_dir, back);
	creto_event_field ef[3] = {{"drop", drop_dir, 0}, {"file", to, 0}, {"quarantined", qsrc, 0}};
	creto_event ev = {"diode", "requeue", "ok", qsrc, NULL, NULL, ef, 3};
	int src_rc = creto_event_emit(sink, &ev);
	if (src_rc != 0) {
		close(dfd);
		close(qfd);
		return creto_err_set(e, CRETO_EOP, "audit: the record of diode requeue could not be written "
				     "(sink status %d); nothing moved", src_rc);
	}
	if (renameat2(qfd, name, dfd, back, RENAME_NOREPLACE) != 0) {
		rc = errno == EEXIST ? creto_err_set(e, CRETO_EUSAGE, "requeue: %s/%s already exists", drop_dir, back)
				     : creto_err_errno(e, errno, "requeue %s into %s", name, drop_dir);
		ev.outcome = "aborted";
		ev.reason = e->msg;
		(void)creto_event_emit(sink, &ev);
		close(dfd);
		close(qfd);
		return rc;
	}
	char rp[NAME_MAX + 32], rq[NAME_MAX + 48];
	snprintf(rp, sizeof rp, "%s" REASON_SUFFIX, name);
	snprintf(rq, sizeof rq, "%s" REASON_SUFFIX ".requeued", name);
	if (strlen(rq) <= NAME_MAX)
		(void)renameat(qfd, rp, qfd, rq); /* the old note stays, out of the way */
	else
		(void)unlinkat(qfd, rp, 0);
	(void)fsync(qfd);
	(void)fsync(dfd);
	close(dfd);
	close(qfd);
	return CRETO_OK;
}
