/*
 * recover.c - what a context does on open, under the writer lock, before
 * it decides anything: derived state is made to match the state database
 * (docs/crupdate.md "Crash safety").  The database is the truth; the
 * `current` links, SDIR/trust-root.json, the staging area and temporary
 * files of an atomic write are derived from it, and an install killed at
 * any point leaves them repairable from it.
 */
#include "update_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/file.h"

const char *upd_kind_dir(const char *type)
{
	if (strcmp(type, "model-weights") == 0)
		return "models";
	if (strcmp(type, "software-package") == 0)
		return "software";
	if (strcmp(type, "policy") == 0)
		return "policy";
	return NULL;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)f;
	if (flag == FTW_DP)
		return rmdir(p) == 0 ? 0 : -1;
	return unlink(p) == 0 ? 0 : -1;
}

void upd_rm_tree(const char *p)
{
	(void)nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int upd_switch_current(creto_update_ctx *c, const char *base, int64_t version, creto_err *e)
{
	char target[32], tmp[4200], cur[4200], have[64];
	snprintf(target, sizeof target, "%lld", (long long)version);
	snprintf(cur, sizeof cur, "%s/current", base);
	ssize_t n = readlink(cur, have, sizeof have - 1);
	if (n >= 0) {
		have[n] = 0;
		if (strcmp(have, target) == 0)
			return CRETO_OK;
	}
	snprintf(tmp, sizeof tmp, "%s/.current.tmp", base);
	(void)unlink(tmp);
	if (symlink(target, tmp) != 0)
		return creto_err_errno(e, errno, "symlink %s", tmp);
	upd_crash_at(c, "link-tmp");
	if (rename(tmp, cur) != 0)
		return creto_err_errno(e, errno, "rename %s", cur);
	return creto_file_sync_dir(base, 1, e);
}

/* Remove what a killed creto_file_write_atomic left in dir: NAME.tmp.XXXXXX
 * (trust-root.json and trust/root-N.json are written that way).  Runs under
 * the state lock, so no writer of ours is live. */
static void rm_temp_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		struct stat sb;
		if (n > 11 && memcmp(de->d_name + n - 11, ".tmp.", 5) == 0 &&
		    fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode))
			(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

typedef struct rec_ctx {
	creto_update_ctx *c;
	creto_err *e;
} rec_ctx;

static int rec_one(void *arg, const char *type, const char *name, int64_t v)
{
	rec_ctx *r = arg;
	const char *k = upd_kind_dir(type);
	if (k == NULL)
		return CRETO_OK;
	char base[4096];
	snprintf(base, sizeof base, "%s/%s/%s", r->c->sdir, k, name);
	return upd_switch_current(r->c, base, v, r->e);
}

int upd_recover(creto_update_ctx *c, creto_err *e)
{
	rec_ctx r = {c, e};
	int rc = upd_state_each_installed(c->st, rec_one, &r, e);
	if (rc != CRETO_OK)
		return rc;
	int64_t rv;
	char rd[65];
	if ((rc = upd_state_root(c->st, &rv, rd, e)) != CRETO_OK)
		return rc;
	if (rv > 0) {
		char p[4096], q[4096];
		snprintf(p, sizeof p, "%s/trust/root-%lld.json", c->sdir, (long long)rv);
		snprintf(q, sizeof q, "%s/trust-root.json", c->sdir);
		uint8_t *a = NULL, *b = NULL;
		size_t al = 0, bl = 0;
		creto_err ig;
		if ((rc = creto_file_read(p, CRETO_TRUST_ROOT_MAX, &a, &al, e)) != CRETO_OK)
			return rc;
		if (creto_file_read(q, CRETO_TRUST_ROOT_MAX, &b, &bl, &ig) != CRETO_OK || bl != al ||
		    memcmp(a, b, al) != 0)
			rc = creto_file_write_atomic(q, a, al, 0644, e);
		free(a);
		free(b);
		if (rc != CRETO_OK)
			return rc;
	}
	char sp[4096];
	snprintf(sp, sizeof sp, "%s/staging", c->sdir);
	upd_rm_tree(sp);
	snprintf(sp, sizeof sp, "%s/trust", c->sdir);
	rm_temp_files(c->sdir);
	rm_temp_files(sp);
	return CRETO_OK;
}

/* Create TOP/SUB (TOP exists; SUB relative, from our own names) and fsync
 * the parent of every directory on the way, created now or by an earlier
 * run that was killed: the database is about to refer to what lies below,
 * and a power loss after the commit must not lose an entry on the path to
 * it (recovery could not find the root or the version it records). */
int upd_mkdir_durable(const char *top, const char *sub, creto_err *e)
{
	char path[4200];
	size_t start = strlen(top) + 1;
	if ((size_t)snprintf(path, sizeof path, "%s/%s", top, sub) >= sizeof path)
		return creto_err_set(e, CRETO_EOP, "path too long: %s/%s", top, sub);
	for (char *c = path + start;; c++) {
		if (*c != '/' && *c != 0)
			continue;
		char was = *c;
		*c = 0;
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return creto_err_errno(e, errno, "mkdir %s", path);
		char *sl = strrchr(path, '/');
		*sl = 0;
		int rc = creto_file_sync_dir(path, 1, e);
		*sl = '/';
		if (rc != CRETO_OK)
			return rc;
		*c = was;
		if (was == 0)
			return CRETO_OK;
	}
}
