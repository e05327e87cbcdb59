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

#include "util/file.h"
#include "util/timeutil.h"

static volatile sig_atomic_t g_stop;

void creto_diode_stop(void)
{
	g_stop = 1;
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !g_stop)
		;
}

/* Move src into dir under its base name, never replacing anything. */
static int move_into(const char *src, const char *dir, const char *base, char *dst, size_t cap,
		     creto_err *e)
{
	for (int i = 0; i < 1000; i++) {
		if (i == 0)
			snprintf(dst, cap, "%s/%s", dir, base);
		else
			snprintf(dst, cap, "%s/%s.%d", dir, base, i);
		if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
			return creto_file_sync_dir(dir, 1, e);
		if (errno != EEXIST)
			return creto_err_errno(e, errno, "move %s to %s", src, dir);
	}
	return creto_err_set(e, CRETO_EOP, "move %s: too many files named %s", src, base);
}

static void say(const creto_diode_opts *o, const char *file, const char *decision, const char *msg)
{
	if (o->report != NULL)
		o->report(o->report_arg, file, decision, msg);
}

/* Process one complete package.  Never stops the watcher: a failure that
 * is not a decision about the package (the trust root is unusable, the
 * state directory fails, a move fails) is reported as `retry` and the
 * package stays in the drop directory for a later pass. */
static void handle(const creto_diode_opts *o, const char *name)
{
	char src[4096], dst[4200], qdir[4096], pdir[4096];
	snprintf(src, sizeof src, "%s/%s", o->dir, name);
	snprintf(qdir, sizeof qdir, "%s/quarantine", o->state_dir);
	snprintf(pdir, sizeof pdir, "%s/processed", o->state_dir);
	creto_update_result r;
	creto_err ae, me;
	creto_err_clear(&ae);
	creto_err_clear(&me);
	struct stat sb;
	int rc;
	memset(&r, 0, sizeof r);
	if (lstat(src, &sb) == 0 && !S_ISREG(sb.st_mode)) {
		rc = creto_err_set(&ae, CRETO_EREJECT, "%s: container: not a regular file", src);
		snprintf(r.rule, sizeof r.rule, "container");
	} else {
		rc = upd_apply_watched(src, o->trust_path, o->state_dir, &r, &ae);
	}
	if (rc != CRETO_OK && r.root_unusable) {
		/* Nothing was decided about the package: keep it for the next
		 * pass (after the operator fixes the trust root). */
		say(o, name, "retry", ae.msg);
		return;
	}
	if (rc == CRETO_OK || (rc == CRETO_EREJECT && r.already_applied)) {
		if (move_into(src, pdir, name, dst, sizeof dst, &me) != CRETO_OK) {
			/* Applied (or a duplicate): the next pass finds it applied
			 * and moves it then. */
			char msg[CRETO_ERR_MSG_MAX + 64];
			snprintf(msg, sizeof msg, "%s; left in the diode directory",
				 me.msg);
			say(o, name, "retry", msg);
			return;
		}
		char msg[600];
		if (r.already_applied)
			snprintf(msg, sizeof msg, "already applied (statement %.16s), moved to %.300s",
				 r.statement_digest, dst);
		else
			snprintf(msg, sizeof msg, "%s %s version %lld installed at %.300s", r.type, r.name,
				 (long long)r.version, r.install_path);
		say(o, name, r.already_applied ? "duplicate" : "applied", msg);
		return;
	}
	if (rc != CRETO_EREJECT) {
		/* Operational failure: leave the package where it is. */
		say(o, name, "retry", ae.msg);
		return;
	}
	if (move_into(src, qdir, name, dst, sizeof dst, &me) != CRETO_OK) {
		char msg[2 * CRETO_ERR_MSG_MAX + 64];
		snprintf(msg, sizeof msg, "rejected (%s), but %s; left in the diode directory", ae.msg, me.msg);
		say(o, name, "retry", msg);
		return;
	}
	/* One audit row per rejection, written once the package is in
	 * quarantine/ (apply itself writes none for the watcher). */
	upd_state *st = NULL;
	creto_err ig;
	if (upd_state_open(o->state_dir, 0, &st, &ig) == CRETO_OK) {
		if (upd_state_audit(st, name, &r, "quarantined", ae.msg, &ig) != CRETO_OK) {
			/* best effort: the .reason file and the report hold it */
		}
		upd_state_close(st);
	}
	char rp[4300], text[CRETO_ERR_MSG_MAX + 64];
	snprintf(rp, sizeof rp, "%s.reason", dst);
	int n = snprintf(text, sizeof text, "rule: %s\n%s\n", r.rule[0] ? r.rule : "rejected", ae.msg);
	if (n < 0 || (size_t)n >= sizeof text)
		n = (int)strlen(text);
	if (creto_file_write_atomic(rp, text, (size_t)n, 0644, &me) != CRETO_OK) {
		/* The package is safely in quarantine/; only its note is missing. */
		char msg[2 * CRETO_ERR_MSG_MAX + 64];
		snprintf(msg, sizeof msg, "%s (reason file not written: %s)", ae.msg, me.msg);
		say(o, name, "quarantined", msg);
		return;
	}
	say(o, name, "quarantined", ae.msg);
}

/* Whether some process holds p open for writing.  Linux grants a read
 * lease (fcntl F_SETLEASE, F_RDLCK) exactly when no one does, and refuses
 * it with EAGAIN otherwise; the lease is dropped at once.  1: a writer has
 * it open; 0: none; -1: leases are not available here (the watcher neither
 * owns the file nor has CAP_LEASE, or the file system has no leases), and
 * the settle interval alone decides. */
static int open_for_write(const char *p)
{
	int fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -1;
	int r = -1;
	if (fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
		(void)fcntl(fd, F_SETLEASE, F_UNLCK);
		r = 0;
	} else if (errno == EAGAIN) {
		r = 1;
	}
	close(fd);
	return r;
}

typedef struct cand {
	char name[256];
	off_t size;
	struct timespec mtime;
} cand;

/* One pass over the directory.  *pending = 1 when a file is still being
 * written. */
static int scan(const creto_diode_opts *o, int *pending, creto_err *e)
{
	*pending = 0;
	DIR *d = opendir(o->dir);
	if (d == NULL)
		return creto_err_errno(e, errno, "diode directory %s", o->dir);
	cand *c = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int rc = CRETO_OK;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !ends_with(de->d_name, ".crupdate") || strlen(de->d_name) >= 256)
			continue;
		char p[4400];
		snprintf(p, sizeof p, "%s/%s", o->dir, de->d_name);
		struct stat sb;
		if (lstat(p, &sb) != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			cand *nc = realloc(c, cap * sizeof *c);
			if (nc == NULL) {
				rc = creto_err_set(e, CRETO_EOP, "out of memory");
				break;
			}
			c = nc;
		}
		snprintf(c[n].name, sizeof c[n].name, "%s", de->d_name);
		c[n].size = sb.st_size;
		c[n].mtime = sb.st_mtim;
		n++;
	}
	closedir(d);
	if (rc == CRETO_OK && n > 0) {
		sleep_ms(o->settle_ms > 0 ? o->settle_ms : 500);
		for (size_t i = 0; i < n && !g_stop; i++) {
			char p[4400];
			snprintf(p, sizeof p, "%s/%s", o->dir, c[i].name);
			struct stat sb;
			if (lstat(p, &sb) != 0)
				continue;
			if (sb.st_size != c[i].size || sb.st_mtim.tv_sec != c[i].mtime.tv_sec ||
			    sb.st_mtim.tv_nsec != c[i].mtime.tv_nsec) {
				*pending = 1; /* still being written */
				continue;
			}
			if (S_ISREG(sb.st_mode) && open_for_write(p) == 1) {
				*pending = 1; /* its writer paused, and still has it open */
				continue;
			}
			handle(o, c[i].name);
		}
	}
	free(c);
	return rc;
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
	snprintf(q, sizeof q, "%s/quarantine", o->state_dir);
	if ((rc = creto_mkdir_p(q, 0700, e)) != CRETO_OK)
		return rc;
	snprintf(q, sizeof q, "%s/processed", o->state_dir);
	if ((rc = creto_mkdir_p(q, 0700, e)) != CRETO_OK)
		return rc;
	if ((rc = check_same_fs(o, e)) != CRETO_OK)
		return rc;
	/* The trust root is the operator's: if it cannot be used, say so once
	 * and stop, rather than judge (or set aside) every package with it. */
	if ((rc = upd_root_check(o->trust_path, o->state_dir, e)) != CRETO_OK)
		return creto_err_ctx(e, "diode watch");
	int in = -1;
	if (!o->once) {
		in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		if (in < 0)
			return creto_err_errno(e, errno, "inotify");
		if (inotify_add_watch(in, o->dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
			rc = creto_err_errno(e, errno, "watch %s", o->dir);
			close(in);
			return rc;
		}
	}
	int64_t start = creto_time_now();
	int pending = 0;
	rc = scan(o, &pending, e);
	while (rc == CRETO_OK && !o->once && !g_stop) {
		if (o->timeout_s > 0 && creto_time_now() - start >= o->timeout_s)
			break;
		struct pollfd pf = {in, POLLIN, 0};
		int pr = poll(&pf, 1, pending ? 200 : 1000);
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
		if (woke)
			rc = scan(o, &pending, e);
	}
	if (in >= 0)
		close(in);
	return rc;
}
