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

static volatile sig_atomic_t g_stop;

void creto_diode_stop(void)
{
	g_stop = 1;
}

/* Most candidates held open at once in one pass; more wait for the next. */
#define SCAN_MAX 256

typedef struct watch {
	const creto_diode_opts *o;
	int dfd;                 /* the drop directory */
	int64_t deadline_ms;     /* CLOCK_MONOTONIC; 0: no timeout */
	creto_update_opts uo;    /* for apply */
} watch;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int stopping(const watch *w)
{
	return g_stop || (w->deadline_ms > 0 && mono_ms() >= w->deadline_ms);
}

static int cancelled_cb(void *arg)
{
	return stopping(arg);
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Sleep up to ms, in slices, returning early when the watcher must stop. */
static void sleep_ms(const watch *w, int ms)
{
	int64_t until = mono_ms() + ms;
	while (!stopping(w)) {
		int64_t left = until - mono_ms();
		if (left <= 0)
			return;
		if (left > 50)
			left = 50;
		struct timespec ts = {0, (long)left * 1000000L};
		(void)nanosleep(&ts, NULL);
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

/* Process one complete package, read only through the descriptor c->fd.
 * Never stops the watcher: a failure that is not a decision about the
 * package (the trust root is unusable, the state directory fails, a move
 * fails) is reported as `retry` and the package stays in the drop directory
 * for a later pass. */
static void handle(const watch *w, const cand *c)
{
	const creto_diode_opts *o = w->o;
	const char *name = c->name;
	char src[4400], dst[4400], qdir[4096], pdir[4096];
	snprintf(src, sizeof src, "%s/%s", o->dir, name);
	snprintf(qdir, sizeof qdir, "%s/quarantine", o->state_dir);
	snprintf(pdir, sizeof pdir, "%s/processed", o->state_dir);
	creto_update_result r;
	creto_err ae, me;
	creto_err_clear(&ae);
	creto_err_clear(&me);
	int rc;
	memset(&r, 0, sizeof r);
	if (c->fd < 0 || !S_ISREG(c->st.st_mode)) {
		rc = creto_err_set(&ae, CRETO_EREJECT, "%s: container: %s, not a regular file", src,
				   kind_of(c->st.st_mode));
		r.rule_id = CRETO_RULE_CONTAINER;
		snprintf(r.rule, sizeof r.rule, "%s", creto_update_rule_name(r.rule_id));
	} else if (lseek(c->fd, 0, SEEK_SET) != 0) {
		rc = creto_err_errno(&ae, errno, "%s", src);
	} else {
		rc = upd_apply_watched(c->fd, src, &w->uo, &r, &ae);
	}
	if (rc != CRETO_OK && r.root_unusable) {
		/* Nothing was decided about the package: keep it for the next
		 * pass (after the operator fixes the trust root). */
		say(w, name, "retry", NULL, ae.msg, &r);
		return;
	}
	if (rc == CRETO_OK || (rc == CRETO_EREJECT && r.already_applied)) {
		if (move_into(w, name, &c->st, pdir, 0, dst, sizeof dst, &me) != CRETO_OK) {
			/* Applied (or a duplicate): the next pass finds it applied
			 * and moves it then. */
			char msg[CRETO_ERR_MSG_MAX + 64];
			snprintf(msg, sizeof msg, "%s; left in the diode directory", me.msg);
			say(w, name, "retry", NULL, msg, &r);
			return;
		}
		char msg[600];
		if (r.already_applied)
			snprintf(msg, sizeof msg, "already applied (statement %.16s), moved to %.300s",
				 r.statement_digest, dst);
		else
			snprintf(msg, sizeof msg, "%s %s version %lld installed at %.300s", r.type, r.name,
				 (long long)r.version, r.install_path);
		say(w, name, r.already_applied ? "duplicate" : "applied", NULL, msg, &r);
		return;
	}
	if (rc != CRETO_EREJECT) {
		/* Operational failure: leave the package where it is. */
		say(w, name, "retry", NULL, ae.msg, &r);
		return;
	}
	if (move_into(w, name, &c->st, qdir, 1, dst, sizeof dst, &me) != CRETO_OK) {
		char msg[2 * CRETO_ERR_MSG_MAX + 64];
		snprintf(msg, sizeof msg, "rejected (%s), but %s; left in the diode directory", ae.msg, me.msg);
		say(w, name, "retry", NULL, msg, &r);
		return;
	}
	/* One audit row per rejection, written once the package is in
	 * quarantine/ (apply itself writes none for the watcher). */
	upd_state *st = NULL;
	creto_err ig;
	if (upd_state_open(o->state_dir, 0, &st, &ig) == CRETO_OK) {
		if (upd_state_audit(st, creto_clock_now(o->clock), src, &r, "quarantined", ae.msg, &ig) != CRETO_OK) {
			/* best effort: the .reason file and the report hold it */
		}
		upd_state_close(st);
	}
	char rp[4500], text[4 * CRETO_ERR_MSG_MAX + 64], why[4 * CRETO_ERR_MSG_MAX];
	snprintf(rp, sizeof rp, "%s" REASON_SUFFIX, dst);
	/* The message quotes the untrusted name: escaped, so the note stays
	 * two lines whatever the name holds. */
	(void)creto_escape(why, sizeof why, ae.msg, strlen(ae.msg));
	int n = snprintf(text, sizeof text, "rule: %s\n%s\n", r.rule[0] ? r.rule : "rejected", why);
	if (n < 0 || (size_t)n >= sizeof text)
		n = (int)strlen(text);
	if (creto_file_write_atomic(rp, text, (size_t)n, 0644, &me) != CRETO_OK) {
		/* The package is safely in quarantine/; only its note is missing. */
		char msg[2 * CRETO_ERR_MSG_MAX + 64];
		snprintf(msg, sizeof msg, "%s (reason file not written: %s)", ae.msg, me.msg);
		say(w, name, "quarantined", r.rule, msg, &r);
		return;
	}
	say(w, name, "quarantined", r.rule, ae.msg, &r);
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
		for (size_t i = 0; i < n && !stopping(w); i++) {
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
	return CRETO_OK;
}

/* Packages leave the drop directory by rename(2) into SDIR/processed/ and
 * SDIR/quarantine/, which only works within one file system: refuse to
 * start otherwise, instead of failing on every package. */
static int check_same_fs(const creto_diode_opts *o, creto_err *e)
{
	struct stat d, t;
	if (stat(o->dir, &d) != 0)
		return creto_err_errno(e, errno, "diode directory %s", o->dir);
	if (!S_ISDIR(d.st_mode))
		return creto_err_set(e, CRETO_EUSAGE, "diode directory %s is not a directory", o->dir);
	static const char *const sub[] = {"processed", "quarantine"};
	for (size_t i = 0; i < 2; i++) {
		char p[4200];
		snprintf(p, sizeof p, "%s/%s", o->state_dir, sub[i]);
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

int creto_diode_watch(const creto_diode_opts *o, creto_err *e)
{
	char q[4096];
	int rc;
	g_stop = 0;
	watch w;
	memset(&w, 0, sizeof w);
	w.o = o;
	w.dfd = -1;
	w.uo.trust_path = o->trust_path;
	w.uo.state_dir = o->state_dir;
	w.uo.clock = o->clock;
	w.uo.crash = o->crash;
	w.uo.crash_arg = o->crash_arg;
	w.uo.cancelled = cancelled_cb;
	w.uo.cancel_arg = &w;
	if (o->timeout_s > 0)
		w.deadline_ms = mono_ms() + o->timeout_s * 1000;
	/* A mistyped or unmounted --state is never a fresh start. */
	if ((rc = upd_state_initialised(o->state_dir, e)) != CRETO_OK)
		return creto_err_ctx(e, "diode watch");
	/* One writer per state, for the whole watch. */
	int lockfd = -1, in = -1;
	if ((rc = upd_state_lock(o->state_dir, o->lock_wait_s, cancelled_cb, &w, &lockfd, e)) != CRETO_OK)
		return creto_err_ctx(e, "diode watch");
	snprintf(q, sizeof q, "%s/quarantine", o->state_dir);
	if ((rc = creto_mkdir_p(q, 0700, e)) != CRETO_OK)
		goto out;
	snprintf(q, sizeof q, "%s/processed", o->state_dir);
	if ((rc = creto_mkdir_p(q, 0700, e)) != CRETO_OK)
		goto out;
	if ((rc = check_same_fs(o, e)) != CRETO_OK)
		goto out;
	/* The trust root is the operator's: if it cannot be used, say so once
	 * and stop, rather than judge (or set aside) every package with it. */
	int64_t rv = 0, rx = 0;
	if ((rc = upd_root_info(o->trust_path, o->state_dir, &rv, &rx, e)) != CRETO_OK) {
		creto_err_ctx(e, "diode watch");
		goto out;
	}
	w.dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w.dfd < 0) {
		rc = creto_err_errno(e, errno, "diode directory %s", o->dir);
		goto out;
	}
	if (o->started != NULL)
		o->started(o->report_arg, rv, rx);
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
		if (w.deadline_ms > 0) {
			int64_t left = w.deadline_ms - mono_ms();
			if (left < wait)
				wait = left > 0 ? (int)left : 0;
		}
		struct pollfd pf = {in, POLLIN, 0};
		int pr = poll(&pf, 1, wait);
		if (pr < 0 && errno != EINTR) {
			rc = creto_err_errno(e, errno, "poll");
			break;
		}
		int woke = pending;
		if (pr > 0) {
			char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
			while (read(in, buf, sizeof buf) > 0)
				woke = 1;
		}
		if (woke && !stopping(&w))
			rc = scan(&w, &pending, e);
	}
out:
	if (in >= 0)
		close(in);
	if (w.dfd >= 0)
		close(w.dfd);
	if (lockfd >= 0)
		close(lockfd);
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
				   const creto_clock *clock, creto_err *e)
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
	if (renameat2(qfd, name, dfd, back, RENAME_NOREPLACE) != 0) {
		rc = errno == EEXIST ? creto_err_set(e, CRETO_EUSAGE, "requeue: %s/%s already exists", drop_dir, back)
				     : creto_err_errno(e, errno, "requeue %s into %s", name, drop_dir);
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
	upd_state *st = NULL;
	char src[4400], why[NAME_MAX + 64];
	snprintf(src, sizeof src, "%s/%s", drop_dir, back);
	snprintf(why, sizeof why, "requeued from quarantine/%s", name);
	if ((rc = upd_state_open(state_dir, 0, &st, e)) == CRETO_OK)
		rc = upd_state_audit(st, creto_clock_now(clock), src, NULL, "requeued", why, e);
	upd_state_close(st);
	return rc;
}
