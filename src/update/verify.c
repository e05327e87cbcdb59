/*
 * verify.c - reading a .crupdate and deciding about it: the rules of the
 * threat model in one place (docs/crupdate.md "Verification"), in the order
 * they run; then the atomic install into the state directory; plus
 * `update assemble` and `update inspect`, which share the container code.
 */
#include "update_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/file.h"
#include "util/timeutil.h"

#define STMT_MEMBER "statement.json"
#define SIGS_MEMBER "signatures.json"
#define PAYLOAD_PREFIX "payload/"

/* Record the rule of a rejection (the first one decided) in res. */
static int set_rule(creto_update_result *res, creto_update_rule rule, int rc)
{
	if (res != NULL && rc == CRETO_EREJECT && res->rule_id == CRETO_RULE_NONE && rule != CRETO_RULE_NONE) {
		res->rule_id = rule;
		snprintf(res->rule, sizeof res->rule, "%s", creto_update_rule_name(rule));
	}
	return rc;
}

static int read_member(int fd, const char *want, size_t max, uint8_t **buf, size_t *len,
		       creto_update_rule *rule, creto_err *e)
{
	upd_tar_hdr h;
	int end, rc = upd_tar_next(fd, &h, &end, rule, e);
	*buf = NULL;
	if (rc != CRETO_OK)
		return rc;
	if (end)
		return upd_reject(e, rule, CRETO_RULE_CONTAINER, "container: archive ends before %s", want);
	if (strcmp(h.name, want) != 0)
		return upd_reject(e, rule, CRETO_RULE_CONTAINER, "container: member %.120s where %s was expected",
				  h.name, want);
	if (h.size > max)
		return upd_reject(e, rule, CRETO_RULE_SIZE, "size: %s is %llu bytes, at most %zu allowed", want,
				     (unsigned long long)h.size, max);
	*buf = malloc(h.size + 1);
	if (*buf == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	ssize_t got = creto_read_full(fd, *buf, (size_t)h.size);
	if (got < 0 || (size_t)got != h.size) {
		free(*buf);
		*buf = NULL;
		if (got < 0)
			return creto_err_errno(e, errno, "read");
		return upd_reject(e, rule, CRETO_RULE_TRUNCATED, "truncated: package ends inside %s", want);
	}
	(*buf)[h.size] = 0;
	*len = (size_t)h.size;
	return upd_tar_skip_pad(fd, h.size, rule, e);
}

static int parse_sigs_doc(const uint8_t *buf, size_t len, upd_sig **sigs, size_t *n, creto_err *e)
{
	json_t *j = NULL;
	int rc = upd_json_parse(buf, len, "signatures", &j, e);
	if (rc != CRETO_OK)
		return rc;
	static const char *const k[] = {"signatures", NULL};
	if ((rc = upd_json_keys(j, "signatures", k, e)) == CRETO_OK)
		rc = upd_sigs_parse(json_object_get(j, "signatures"), "signatures", sigs, n, e);
	json_decref(j);
	return rc;
}

static const char *kind_dir(const char *type)
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

/* Remove a tree of our own (staging leftovers): never follows symlinks. */
static void rm_tree(const char *p)
{
	(void)nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- loading the effective trust root ---- */

/* Read the operator's --trust file.  Unlike creto_file_read this follows a
 * symbolic link: the path is the operator's own configuration, and
 * Kubernetes ConfigMap and Secret mounts are symlinks (NAME -> ..data/NAME).
 * What it points at must still be a regular file of bounded size, and its
 * content is checked in full (signatures, state database).  Packages and
 * everything below the state directory are never opened this way. */
static int read_trust_file(const char *path, uint8_t **out, size_t *outlen, creto_err *e)
{
	return creto_file_read_follow(path, CRETO_TRUST_ROOT_MAX, out, outlen, e);
}

static int load_effective_root(const char *trust_path, const char *sdir, upd_state *st,
			       creto_trust_root **out, char *root_digest_out, creto_err *e)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	*out = NULL;
	int rc = read_trust_file(trust_path, &buf, &len, e);
	if (rc == CRETO_OK)
		rc = creto_trust_root_parse(buf, len, out, e);
	if (rc != CRETO_OK) {
		free(buf);
		if (rc == CRETO_EREJECT && strncmp(e->msg, trust_path, strlen(trust_path)) != 0)
			creto_err_ctx(e, "trust root %s", trust_path);
		else
			creto_err_ctx(e, "trust root");
		return rc;
	}
	char fd[65];
	upd_sha3_hex(buf, len, fd);
	if (root_digest_out != NULL)
		memcpy(root_digest_out, fd, sizeof(fd));
	free(buf);
	if (st == NULL)
		return CRETO_OK;
	int64_t sv = 0, fv = creto_trust_root_version(*out);
	char sd[65] = "";
	if ((rc = upd_state_root(st, &sv, sd, e)) != CRETO_OK)
		goto fail;
	if (sv == 0)
		return CRETO_OK; /* no rotation yet: the provisioned root */
	/* After a rotation the state database names the root in force: a
	 * --trust file of that version must be that root, and a newer one
	 * can only have come around the diode. */
	if (fv == sv && strcmp(fd, sd) != 0) {
		rc = creto_err_set(e, CRETO_EREJECT,
				   "trust root %s: version %lld is not the root that rotation installed "
				   "(digest %.16s, state database has %.16s)",
				   trust_path, (long long)fv, fd, sd);
		goto fail;
	}
	if (fv > sv) {
		rc = creto_err_set(e, CRETO_EREJECT,
				   "trust root %s: version %lld is newer than the last rotation applied "
				   "(%lld); a new root enters only as a cert-rotation package",
				   trust_path, (long long)fv, (long long)sv);
		goto fail;
	}
	if (fv == sv)
		return CRETO_OK;
	/* A rotation was applied: the root it installed is the current one. */
	char p[4096];
	snprintf(p, sizeof p, "%s/trust/root-%lld.json", sdir, (long long)sv);
	if ((rc = creto_file_read(p, CRETO_TRUST_ROOT_MAX, &buf, &len, e)) != CRETO_OK)
		goto fail;
	char dg[65];
	upd_sha3_hex(buf, len, dg);
	if (strcmp(dg, sd) != 0) {
		free(buf);
		rc = creto_err_set(e, CRETO_EOP, "%s: does not match the digest in the state database", p);
		goto fail;
	}
	creto_trust_root *nr = NULL;
	rc = creto_trust_root_parse(buf, len, &nr, e);
	free(buf);
	if (rc != CRETO_OK) {
		rc = creto_err_ctx(e, "%s", p);
		goto fail;
	}
	creto_trust_root_free(*out);
	*out = nr;
	if (root_digest_out != NULL)
		memcpy(root_digest_out, sd, 65);
	return CRETO_OK;
fail:
	creto_trust_root_free(*out);
	*out = NULL;
	return rc;
}

int upd_root_check(const char *trust_path, const char *sdir, creto_err *e)
{
	upd_state *st = NULL;
	creto_trust_root *r = NULL;
	int rc = upd_state_open(sdir, 1, &st, e);
	if (rc == CRETO_OK)
		rc = load_effective_root(trust_path, sdir, st, &r, NULL, e);
	creto_trust_root_free(r);
	upd_state_close(st);
	return rc;
}

/* ---- recovery: make derived state match the database ---- */

typedef struct rec_ctx {
	const creto_update_opts *o;
	const char *sdir;
	creto_err *e;
} rec_ctx;

/* The caller's fault injection point (crash tests only; NULL otherwise). */
static void crash_at(const creto_update_opts *o, const char *point)
{
	if (o != NULL && o->crash != NULL)
		o->crash(o->crash_arg, point);
}

static int switch_current(const creto_update_opts *o, const char *base, int64_t version, creto_err *e)
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
	crash_at(o, "link-tmp");
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

static int rec_one(void *arg, const char *type, const char *name, int64_t v)
{
	rec_ctx *c = arg;
	const char *k = kind_dir(type);
	if (k == NULL)
		return CRETO_OK;
	char base[4096];
	snprintf(base, sizeof base, "%s/%s/%s", c->sdir, k, name);
	return switch_current(c->o, base, v, c->e);
}

static int recover(const creto_update_opts *o, const char *sdir, upd_state *st, creto_err *e)
{
	rec_ctx c = {o, sdir, e};
	int rc = upd_state_each_installed(st, rec_one, &c, e);
	if (rc != CRETO_OK)
		return rc;
	int64_t rv;
	char rd[65];
	if ((rc = upd_state_root(st, &rv, rd, e)) != CRETO_OK)
		return rc;
	if (rv > 0) {
		char p[4096], q[4096];
		snprintf(p, sizeof p, "%s/trust/root-%lld.json", sdir, (long long)rv);
		snprintf(q, sizeof q, "%s/trust-root.json", sdir);
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
	snprintf(sp, sizeof sp, "%s/staging", sdir);
	rm_tree(sp);
	snprintf(sp, sizeof sp, "%s/trust", sdir);
	rm_temp_files(sdir);
	rm_temp_files(sp);
	return CRETO_OK;
}

/* ---- staging ---- */

static int stage_open(const char *stage, const char *path, int *fd, creto_err *e)
{
	char full[4600];
	snprintf(full, sizeof full, "%s/%s", stage, path);
	/* Parent directories (path was validated: no "..", no empty parts). */
	for (char *c = full + strlen(stage) + 1; (c = strchr(c, '/')) != NULL; c++) {
		*c = 0;
		if (mkdir(full, 0755) != 0 && errno != EEXIST) {
			int er = errno;
			*c = '/';
			return creto_err_errno(e, er, "mkdir %s", full);
		}
		*c = '/';
	}
	*fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (*fd < 0)
		return creto_err_errno(e, errno, "create %s", full);
	return CRETO_OK;
}

/* fsync every directory of the staged tree once: each holds entries (files
 * or subdirectories) that the commit will make live.  Paths are in byte
 * order, so the files below one directory are adjacent: a directory that
 * prefixes the previous path was synced with it. */
static int sync_tree_dirs(const char *stage, const upd_statement *s, creto_err *e)
{
	char d[4600];
	const char *prev = "";
	for (size_t i = 0; i < s->nfiles; i++) {
		const char *path = s->files[i].path;
		for (const char *sl = strchr(path, '/'); sl != NULL; sl = strchr(sl + 1, '/')) {
			size_t n = (size_t)(sl - path) + 1;
			if (strncmp(prev, path, n) == 0)
				continue;
			snprintf(d, sizeof d, "%s/%.*s", stage, (int)n - 1, path);
			int rc = creto_file_sync_dir(d, 1, e);
			if (rc != CRETO_OK)
				return rc;
		}
		prev = path;
	}
	return creto_file_sync_dir(stage, 1, e);
}

/* Create TOP/SUB (TOP exists; SUB relative, from our own names) and fsync
 * the parent of every directory on the way, created now or by an earlier
 * run that was killed: the database is about to refer to what lies below,
 * and a power loss after the commit must not lose an entry on the path to
 * it (recovery could not find the root or the version it records). */
static int mkdir_durable(const char *top, const char *sub, creto_err *e)
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

/* ---- the pipeline ---- */

typedef struct proc {
	const char *pkg, *trust_path, *sdir;
	const creto_update_opts *o;
	int64_t now;          /* the caller's clock, read once per decision */
	int apply;
	int locked;           /* the caller (the watcher) holds the state lock */
	creto_update_result *res;
	upd_state *st;
	creto_trust_root *root;
	char root_digest[65];
	upd_statement stm;
	int have_stm;
	uint8_t *stm_bytes, *sig_bytes, *newroot;
	size_t stm_len, sig_len, newroot_len;
	upd_sig *sigs;
	size_t nsigs;
	char stage[4096];
	int lockfd;
} proc;

static int check_cancel(proc *p, creto_err *e)
{
	if (p->o->cancelled != NULL && p->o->cancelled(p->o->cancel_arg))
		return creto_err_set(e, CRETO_EOP, "interrupted (stop requested or time out); nothing installed");
	return CRETO_OK;
}

static int check_rules(proc *p, creto_err *e)
{
	creto_update_result *res = p->res;
	int rc;
	char type[32];
	/* Role selection from the untrusted type; the role's keys and
	 * threshold come from the trust root only. */
	if ((rc = upd_statement_peek_type(p->stm_bytes, p->stm_len, type, e)) != CRETO_OK)
		return set_rule(res, CRETO_RULE_STATEMENT, rc);
	snprintf(res->type, sizeof res->type, "%s", type);
	/* The very statement bytes were applied before.  Only a package whose
	 * container and payload still match that statement is that package
	 * again, a `replay` (the watcher's `duplicate`); a copy with the same
	 * statement but another payload is refused by the rule it breaks.
	 * Signature, time and version rules are not asked again: they held
	 * when it was applied. */
	if (p->st != NULL) {
		int applied = 0;
		if ((rc = upd_state_applied(p->st, res->statement_digest, &applied, e)) != CRETO_OK)
			return rc;
		res->already_applied = applied;
	}
	/* An applied statement was authenticated when it was applied; since
	 * then a rotation may have dropped its signers, so the threshold is
	 * not asked again (the payload still is, against this statement). */
	rc = res->already_applied ? CRETO_OK
		: upd_check_threshold(p->root, type, CRETO_STATEMENT_CTX, p->stm_bytes, p->stm_len, p->sigs,
				      p->nsigs, res->keyids, sizeof res->keyids, NULL, e);
	if (rc != CRETO_OK)
		return set_rule(res, CRETO_RULE_THRESHOLD, rc);
	creto_update_rule rr = CRETO_RULE_NONE;
	if ((rc = upd_statement_parse(p->stm_bytes, p->stm_len, &p->stm, &rr, e)) != CRETO_OK)
		return set_rule(res, rr, rc);
	p->have_stm = 1;
	upd_statement *s = &p->stm;
	snprintf(res->name, sizeof res->name, "%s", s->name);
	res->version = s->version;
	res->payload_bytes = s->total;
	int is_rot = strcmp(s->type, "cert-rotation") == 0;
	if (res->already_applied)
		return CRETO_OK;

	int64_t now = p->now, floor = 0;
	if (p->st != NULL && (rc = upd_state_time_floor(p->st, &floor, e)) != CRETO_OK)
		return rc;
	int64_t tnow = now > floor ? now : floor;
	char a[CRETO_TIME_STRLEN], b[CRETO_TIME_STRLEN];
	creto_time_format(tnow, b);
	/* A statement from the future would raise the shared time floor to its
	 * `created` when applied, and every later expiry (of any type, and of
	 * the trust root) would be judged against that future time. */
	if (s->created > tnow + CRETO_CREATED_SKEW_MAX) {
		creto_time_format(s->created, a);
		return set_rule(res, CRETO_RULE_CREATED, creto_err_set(e, CRETO_EREJECT,
			"created: statement created at %s, more than %lld h after trusted time %s "
			"(max of clock and time floor); check the clock",
			a, (long long)(CRETO_CREATED_SKEW_MAX / 3600), b));
	}
	if (s->expires <= tnow) {
		creto_time_format(s->expires, a);
		return set_rule(res, CRETO_RULE_EXPIRED, creto_err_set(e, CRETO_EREJECT,
			"expired: statement expired at %s (trusted time %s: max of clock and time floor)", a, b));
	}
	if (!is_rot && creto_trust_root_expires(p->root) <= tnow) {
		creto_time_format(creto_trust_root_expires(p->root), a);
		return set_rule(res, CRETO_RULE_EXPIRED, creto_err_set(e, CRETO_EREJECT,
			"expired: trust root version %lld expired at %s (trusted time %s); rotate it",
			(long long)creto_trust_root_version(p->root), a, b));
	}
	int64_t inst = 0;
	if (is_rot) {
		inst = creto_trust_root_version(p->root);
		if (strcmp(s->name, "trust-root") != 0)
			return set_rule(res, CRETO_RULE_STATEMENT, creto_err_set(e, CRETO_EREJECT,
				"statement: a cert-rotation must be named trust-root"));
		if (s->nfiles != 1 || strcmp(s->files[0].path, "root.json") != 0 ||
		    s->files[0].size > CRETO_TRUST_ROOT_MAX)
			return set_rule(res, CRETO_RULE_STATEMENT, creto_err_set(e, CRETO_EREJECT,
				"statement: a cert-rotation carries exactly one payload file root.json of at most %u bytes",
				CRETO_TRUST_ROOT_MAX));
	} else if (p->st != NULL && (rc = upd_state_installed(p->st, s->type, s->name, &inst, e)) != CRETO_OK) {
		return rc;
	}
	res->installed = inst;
	if (s->version <= inst)
		return set_rule(res, CRETO_RULE_ROLLBACK, creto_err_set(e, CRETO_EREJECT,
			"rollback: %s %s version %lld is not newer than installed version %lld", s->type,
			s->name, (long long)s->version, (long long)inst));
	int jump = upd_root_role_jump(p->root, s->type);
	if (inst > 0 && s->version - inst > jump)
		return set_rule(res, CRETO_RULE_FAST_FORWARD, creto_err_set(e, CRETO_EREJECT,
			"fast-forward: %s %s version %lld jumps more than %d past installed version %lld",
			s->type, s->name, (long long)s->version, jump, (long long)inst));
	return CRETO_OK;
}

static int check_rotation(proc *p, creto_err *e)
{
	creto_trust_root *nr = NULL;
	int rc = creto_trust_root_parse(p->newroot, p->newroot_len, &nr, e);
	if (rc != CRETO_OK) {
		creto_err_ctx(e, "rotation: new trust root");
		return set_rule(p->res, CRETO_RULE_ROTATION, rc);
	}
	creto_update_rule rr = CRETO_RULE_ROTATION;
	int64_t cur = creto_trust_root_version(p->root);
	if (creto_trust_root_version(nr) != cur + 1 || creto_trust_root_version(nr) != p->stm.version) {
		rc = creto_err_set(e, CRETO_EREJECT,
				   "rotation: new trust root version %lld, statement version %lld; only %lld -> %lld is allowed",
				   (long long)creto_trust_root_version(nr), (long long)p->stm.version,
				   (long long)cur, (long long)cur + 1);
	} else if ((rc = creto_trust_root_signed_by(p->root, nr, e)) != CRETO_OK) {
		creto_err_ctx(e, "rotation: new trust root not signed by the current root's keys");
	} else {
		/* Judged against the trusted time this very commit sets: the
		 * floor becomes max(floor, created), and a root that expires
		 * before it would refuse every later package. */
		int64_t now = p->now, floor = 0;
		if (p->st != NULL && upd_state_time_floor(p->st, &floor, e) != CRETO_OK)
			floor = 0;
		int64_t t = now > floor ? now : floor;
		if (p->stm.created > t)
			t = p->stm.created;
		if (creto_trust_root_expires(nr) <= t) {
			rr = CRETO_RULE_EXPIRED;
			char a[CRETO_TIME_STRLEN], b[CRETO_TIME_STRLEN];
			creto_time_format(creto_trust_root_expires(nr), a);
			creto_time_format(t, b);
			rc = creto_err_set(e, CRETO_EREJECT,
					   "expired: the new trust root expires at %s, not after the trusted time "
					   "%s this rotation sets (max of clock, time floor and its created)", a, b);
		}
	}
	creto_trust_root_free(nr);
	return set_rule(p->res, rr, rc);
}

static int read_payload(proc *p, int fd, creto_err *e)
{
	upd_statement *s = &p->stm;
	upd_stream *strm = NULL;
	int rc = CRETO_OK;
	creto_update_rule rr = CRETO_RULE_NONE;
	int is_rot = strcmp(s->type, "cert-rotation") == 0;
	if (!is_rot && (rc = upd_stream_new(s->shard_size, &strm, e)) != CRETO_OK)
		return rc;
	for (size_t i = 0; i < s->nfiles; i++) {
		const upd_file *f = &s->files[i];
		upd_tar_hdr h;
		int end;
		if ((rc = check_cancel(p, e)) != CRETO_OK)
			goto out;
		if ((rc = upd_tar_next(fd, &h, &end, &rr, e)) != CRETO_OK)
			goto out;
		char want[CRETO_UPDATE_PATH_MAX + 16];
		snprintf(want, sizeof want, PAYLOAD_PREFIX "%s", f->path);
		if (end) {
			rc = upd_reject(e, &rr, CRETO_RULE_TRUNCATED, "truncated: archive ends before member %s", want);
			goto out;
		}
		if (strcmp(h.name, want) != 0) {
			for (size_t k = 0; k < i; k++)
				if (strncmp(h.name, PAYLOAD_PREFIX, 8) == 0 && strcmp(h.name + 8, s->files[k].path) == 0) {
					rc = upd_reject(e, &rr, CRETO_RULE_DUPLICATE_NAME, "duplicate name: member %.120s appears twice", h.name);
					goto out;
				}
			rc = upd_reject(e, &rr, CRETO_RULE_ORDER,
					   "order: member %.120s where %s was expected (payload members must follow the statement)",
					   h.name, want);
			goto out;
		}
		if (h.size != f->size) {
			rc = upd_reject(e, &rr, CRETO_RULE_SIZE, "size: member %s is %llu bytes, the statement says %llu",
					   want, (unsigned long long)h.size, (unsigned long long)f->size);
			goto out;
		}
		if (is_rot) {
			p->newroot = malloc(f->size + 1);
			if (p->newroot == NULL) {
				rc = creto_err_set(e, CRETO_EOP, "out of memory");
				goto out;
			}
			ssize_t got = creto_read_full(fd, p->newroot, (size_t)f->size);
			if (got < 0 || (size_t)got != f->size) {
				rc = got < 0 ? creto_err_errno(e, errno, "read")
					     : upd_reject(e, &rr, CRETO_RULE_TRUNCATED, "truncated: package ends inside %s", want);
				goto out;
			}
			p->newroot_len = (size_t)f->size;
			uint8_t d[UPD_DIGEST_LEN];
			if (upd_sha3(p->newroot, p->newroot_len, d) != 0 || memcmp(d, f->digest, UPD_DIGEST_LEN) != 0) {
				rc = upd_reject(e, &rr, CRETO_RULE_DIGEST, "digest: payload file %s does not match the statement", f->path);
				goto out;
			}
		} else {
			int ofd = -1;
			if (p->stage[0] && (rc = stage_open(p->stage, f->path, &ofd, e)) != CRETO_OK)
				goto out;
			rc = upd_stream_file(strm, f, fd, ofd, &rr, e);
			if (ofd >= 0) {
				creto_err fe;
				creto_err_clear(&fe);
				int frc = upd_stream_flush(strm, &fe);
				if (rc == CRETO_OK && frc != CRETO_OK) {
					*e = fe;
					rc = frc;
				}
			}
			if (rc == CRETO_OK && ofd >= 0 && fsync(ofd) != 0)
				rc = creto_err_errno(e, errno, "fsync staging %s", f->path);
			if (ofd >= 0)
				close(ofd);
			if (rc != CRETO_OK)
				goto out;
		}
		if ((rc = upd_tar_skip_pad(fd, h.size, &rr, e)) != CRETO_OK)
			goto out;
	}
	if (strm != NULL && (rc = upd_stream_finish(strm, &rr, e)) != CRETO_OK)
		goto out;
	upd_tar_hdr h;
	int end;
	if ((rc = upd_tar_next(fd, &h, &end, &rr, e)) != CRETO_OK)
		goto out;
	if (!end) {
		rc = upd_reject(e, &rr, CRETO_RULE_TRAILING_DATA, "trailing data: member %.120s after the last payload file", h.name);
		goto out;
	}
	rc = upd_tar_expect_eof(fd, &rr, e);
out:
	if (strm != NULL) {
		/* Report a digest mismatch that raced a later read error first. */
		creto_err fe;
		creto_update_rule fr = CRETO_RULE_NONE;
		creto_err_clear(&fe);
		if (upd_stream_finish(strm, &fr, &fe) != CRETO_OK &&
		    (rc == CRETO_OK || e->code != CRETO_EREJECT || rr != CRETO_RULE_DIGEST)) {
			if (rc == CRETO_OK || (e->code == CRETO_EREJECT && rr == CRETO_RULE_TRUNCATED)) {
				*e = fe;
				rc = fe.code;
				rr = fr;
			}
		}
		upd_stream_free(strm);
	}
	return set_rule(p->res, rr, rc);
}

static int install(proc *p, creto_err *e)
{
	upd_statement *s = &p->stm;
	creto_update_result *res = p->res;
	int rc;
	crash_at(p->o, "staged");
	if (strcmp(s->type, "cert-rotation") == 0) {
		char rp[4200], dg[65];
		snprintf(rp, sizeof rp, "%s/trust/root-%lld.json", p->sdir, (long long)s->version);
		if ((rc = mkdir_durable(p->sdir, "trust", e)) != CRETO_OK ||
		    (rc = creto_file_write_atomic(rp, p->newroot, p->newroot_len, 0644, e)) != CRETO_OK)
			return rc;
		crash_at(p->o, "renamed");
		upd_sha3_hex(p->newroot, p->newroot_len, dg);
		snprintf(res->install_path, sizeof res->install_path, "%s/trust-root.json", p->sdir);
		if ((rc = upd_state_begin(p->st, e)) != CRETO_OK)
			return rc;
		if ((rc = upd_state_set_root(p->st, s->version, dg, e)) != CRETO_OK ||
		    (rc = upd_state_record_install(p->st, res, s->created, p->now, e)) != CRETO_OK ||
		    (rc = upd_state_audit(p->st, p->now, p->pkg, res, "applied", NULL, e)) != CRETO_OK) {
			upd_state_rollback(p->st);
			return rc;
		}
		crash_at(p->o, "before-commit");
		if ((rc = upd_state_commit(p->st, e)) != CRETO_OK) {
			upd_state_rollback(p->st);
			return rc;
		}
		crash_at(p->o, "committed");
		return creto_file_write_atomic(res->install_path, p->newroot, p->newroot_len, 0644, e);
	}
	if (chmod(p->stage, 0755) != 0)
		return creto_err_errno(e, errno, "chmod %s", p->stage);
	if ((rc = sync_tree_dirs(p->stage, s, e)) != CRETO_OK)
		return rc;
	char base[4096], target[4200], sub[200];
	snprintf(base, sizeof base, "%s/%s/%s", p->sdir, kind_dir(s->type), s->name);
	snprintf(target, sizeof target, "%s/%lld", base, (long long)s->version);
	snprintf(sub, sizeof sub, "%s/%s", kind_dir(s->type), s->name);
	if ((rc = mkdir_durable(p->sdir, sub, e)) != CRETO_OK)
		return rc;
	struct stat sb;
	if (lstat(target, &sb) == 0) {
		/* Left by an install that crashed before its commit: not in use. */
		char stale[4300];
		snprintf(stale, sizeof stale, "%s.stale", p->stage);
		if (rename(target, stale) != 0)
			return creto_err_errno(e, errno, "move aside %s", target);
		rm_tree(stale);
	}
	if (rename(p->stage, target) != 0)
		return creto_err_errno(e, errno, "rename into %s", target);
	p->stage[0] = 0;
	if ((rc = creto_file_sync_dir(base, 1, e)) != CRETO_OK)
		return rc;
	crash_at(p->o, "renamed");
	snprintf(res->install_path, sizeof res->install_path, "%.4000s", target);
	if ((rc = upd_state_begin(p->st, e)) != CRETO_OK)
		return rc;
	if ((rc = upd_state_record_install(p->st, res, s->created, p->now, e)) != CRETO_OK ||
	    (rc = upd_state_audit(p->st, p->now, p->pkg, res, "applied", NULL, e)) != CRETO_OK) {
		upd_state_rollback(p->st);
		return rc;
	}
	crash_at(p->o, "before-commit");
	if ((rc = upd_state_commit(p->st, e)) != CRETO_OK) {
		upd_state_rollback(p->st);
		return rc;
	}
	crash_at(p->o, "committed");
	return switch_current(p->o, base, s->version, e);
}

static int process(proc *p, int fd, creto_err *e)
{
	creto_update_result *res = p->res;
	int rc;
	if (p->sdir != NULL) {
		/* Never a fresh start: the state must have been initialised. */
		if ((rc = upd_state_initialised(p->sdir, e)) != CRETO_OK)
			return rc;
		if (p->apply && !p->locked &&
		    (rc = upd_state_lock(p->sdir, p->o->lock_wait_s, p->o->cancelled, p->o->cancel_arg,
					 &p->lockfd, e)) != CRETO_OK)
			return rc;
		if ((rc = upd_state_open(p->sdir, !p->apply, &p->st, e)) != CRETO_OK)
			return rc;
		if (p->apply && (rc = recover(p->o, p->sdir, p->st, e)) != CRETO_OK)
			return creto_err_ctx(e, "recovery");
	}
	if ((rc = load_effective_root(p->trust_path, p->sdir, p->st, &p->root, p->root_digest, e)) != CRETO_OK) {
		p->res->root_unusable = 1;
		return rc;
	}
	creto_update_rule rr = CRETO_RULE_NONE;
	if ((rc = read_member(fd, STMT_MEMBER, CRETO_STATEMENT_MAX, &p->stm_bytes, &p->stm_len, &rr, e)) != CRETO_OK ||
	    (rc = read_member(fd, SIGS_MEMBER, CRETO_SIGS_MAX, &p->sig_bytes, &p->sig_len, &rr, e)) != CRETO_OK) {
		set_rule(res, rr, rc);
		goto out;
	}
	upd_sha3_hex(p->stm_bytes, p->stm_len, res->statement_digest);
	if ((rc = parse_sigs_doc(p->sig_bytes, p->sig_len, &p->sigs, &p->nsigs, e)) != CRETO_OK) {
		set_rule(res, CRETO_RULE_SIGNATURES, rc);
		goto out;
	}
	if ((rc = check_rules(p, e)) != CRETO_OK)
		goto out;
	if (p->apply && !res->already_applied && strcmp(p->stm.type, "cert-rotation") != 0) {
		char sp[4096];
		snprintf(sp, sizeof sp, "%s/staging", p->sdir);
		if ((rc = creto_mkdir_p(sp, 0700, e)) != CRETO_OK)
			goto out;
		snprintf(p->stage, sizeof p->stage, "%s/staging/%.16s.XXXXXX", p->sdir, res->statement_digest);
		if (mkdtemp(p->stage) == NULL) {
			rc = creto_err_errno(e, errno, "mkdtemp %s", p->stage);
			p->stage[0] = 0;
			goto out;
		}
	}
	if ((rc = read_payload(p, fd, e)) != CRETO_OK)
		goto out;
	if (res->already_applied) {
		rc = set_rule(res, CRETO_RULE_REPLAY, creto_err_set(e, CRETO_EREJECT,
			"replay: statement %.16s (%s %s version %lld) was already applied",
			res->statement_digest, res->type, res->name, (long long)res->version));
		goto out;
	}
	if (p->newroot != NULL && (rc = check_rotation(p, e)) != CRETO_OK)
		goto out;
	if (p->apply && (rc = check_cancel(p, e)) == CRETO_OK)
		rc = install(p, e);
out:
	return rc;
}

/* audit_reject: write the `rejected` audit row here (the CLI); the diode
 * watcher writes its own single `quarantined` row instead. */
static int run(int fd, const char *pkg, const creto_update_opts *o, int apply,
	       int audit_reject, int locked, creto_update_result *res, creto_err *e)
{
	creto_update_result local;
	if (res == NULL)
		res = &local;
	memset(res, 0, sizeof *res);
	proc p;
	memset(&p, 0, sizeof p);
	p.pkg = pkg;
	p.o = o;
	p.now = creto_clock_now(o->clock);
	p.trust_path = o->trust_path;
	p.sdir = o->state_dir;
	p.apply = apply;
	p.locked = locked;
	p.res = res;
	p.lockfd = -1;
	int rc;
	if (o->trust_path == NULL || (apply && o->state_dir == NULL))
		rc = creto_err_set(e, CRETO_EUSAGE, "update: no trust root%s given",
				   apply ? " or state directory" : "");
	else
		rc = process(&p, fd, e);
	if (rc != CRETO_OK) {
		/* A duplicate is the applied package again, verified in full:
		 * refused by any other rule, it is not. */
		if (res->rule_id != CRETO_RULE_REPLAY)
			res->already_applied = 0;
		creto_err_ctx(e, "%s", pkg);
		if (p.stage[0])
			rm_tree(p.stage);
		/* A trust root that cannot be used says nothing about the package:
		 * no audit row (the watcher retries it later). */
		if (apply && p.st != NULL && rc == CRETO_EREJECT && !res->root_unusable &&
		    (audit_reject || res->already_applied)) {
			creto_err ae;
			creto_err_clear(&ae);
			upd_state_rollback(p.st);
			if (upd_state_audit(p.st, p.now, pkg, res, res->already_applied ? "duplicate" : "rejected",
					    e->msg, &ae) != CRETO_OK) {
				/* the rejection itself is what the caller reports */
			}
		}
	}
	if (p.have_stm)
		upd_statement_free(&p.stm);
	upd_sigs_free(p.sigs, p.nsigs);
	free(p.stm_bytes);
	free(p.sig_bytes);
	free(p.newroot);
	creto_trust_root_free(p.root);
	upd_state_close(p.st);
	if (p.lockfd >= 0)
		close(p.lockfd);
	return rc;
}

int creto_update_open(const char *pkg, int *fd, creto_err *e)
{
	*fd = open(pkg, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (*fd < 0) {
		if (errno == ELOOP)
			return creto_err_set(e, CRETO_EREJECT, "container: %s is a symbolic link", pkg);
		return creto_err_errno(e, errno, "%s", pkg);
	}
	struct stat sb;
	if (fstat(*fd, &sb) != 0) {
		int rc = creto_err_errno(e, errno, "%s", pkg);
		close(*fd);
		*fd = -1;
		return rc;
	}
	if (!S_ISREG(sb.st_mode)) {
		close(*fd);
		*fd = -1;
		return creto_err_set(e, CRETO_EREJECT, "container: %s is %s, not a regular file", pkg,
				     S_ISFIFO(sb.st_mode) ? "a FIFO" : S_ISDIR(sb.st_mode) ? "a directory"
				     : S_ISCHR(sb.st_mode) || S_ISBLK(sb.st_mode) ? "a device"
				     : S_ISSOCK(sb.st_mode) ? "a socket" : "a special file");
	}
	/* A regular file: reads never block anyway; clear the flag so that
	 * nothing downstream sees EAGAIN semantics. */
	int fl = fcntl(*fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(*fd, F_SETFL, fl & ~O_NONBLOCK);
	return CRETO_OK;
}

static int run_path(const char *pkg, const creto_update_opts *o, int apply,
		    creto_update_result *res, creto_err *e)
{
	creto_update_result local;
	if (res == NULL)
		res = &local;
	memset(res, 0, sizeof *res);
	int fd;
	int rc = creto_update_open(pkg, &fd, e);
	if (rc != CRETO_OK)
		return set_rule(res, CRETO_RULE_CONTAINER, rc); /* a non-regular file or a link */
	rc = run(fd, pkg, o, apply, 1, 0, res, e);
	close(fd);
	return rc;
}

int creto_update_verify_fd(int fd, const char *name, const creto_update_opts *o,
			   creto_update_result *res, creto_err *e)
{
	return run(fd, name, o, 0, 1, 0, res, e);
}

int creto_update_apply_fd(int fd, const char *name, const creto_update_opts *o,
			  creto_update_result *res, creto_err *e)
{
	return run(fd, name, o, 1, 1, 0, res, e);
}

int creto_update_verify(const char *pkg, const creto_update_opts *o, creto_update_result *res,
			creto_err *e)
{
	return run_path(pkg, o, 0, res, e);
}

int creto_update_apply(const char *pkg, const creto_update_opts *o, creto_update_result *res,
		       creto_err *e)
{
	return run_path(pkg, o, 1, res, e);
}

int upd_apply_watched(int fd, const char *name, const creto_update_opts *o,
		      creto_update_result *res, creto_err *e)
{
	return run(fd, name, o, 1, 0, 1, res, e);
}

int creto_state_init(const char *state_dir, const char *trust_path, const creto_clock *clock,
		     creto_err *e)
{
	creto_trust_root *r = NULL;
	char dg[65];
	int rc = load_effective_root(trust_path, NULL, NULL, &r, dg, e);
	if (rc != CRETO_OK)
		return rc;
	upd_state *st = NULL;
	if ((rc = upd_state_create(state_dir, &st, e)) == CRETO_OK) {
		char v[32];
		snprintf(v, sizeof v, "%lld", (long long)creto_clock_now(clock));
		if ((rc = upd_state_meta_set(st, "initialised_at", v, e)) == CRETO_OK) {
			snprintf(v, sizeof v, "%lld", (long long)creto_trust_root_version(r));
			rc = upd_state_meta_set(st, "init_root_version", v, e);
		}
		if (rc == CRETO_OK)
			rc = upd_state_meta_set(st, "init_root_digest", dg, e);
	}
	upd_state_close(st);
	creto_trust_root_free(r);
	return rc;
}

int upd_root_info(const char *trust_path, const char *sdir, int64_t *version, int64_t *expires,
		  creto_err *e)
{
	upd_state *st = NULL;
	creto_trust_root *r = NULL;
	int rc = upd_state_open(sdir, 1, &st, e);
	if (rc == CRETO_OK)
		rc = load_effective_root(trust_path, sdir, st, &r, NULL, e);
	if (rc == CRETO_OK) {
		*version = creto_trust_root_version(r);
		*expires = creto_trust_root_expires(r);
	}
	creto_trust_root_free(r);
	upd_state_close(st);
	return rc;
}

/* ---- assemble ---- */

/* assemble --trust: the signatures reach the threshold of the statement's
 * role in the root the enclave will use. */
static int assemble_check(const char *trust_path, const upd_statement *s, const uint8_t *stm,
			  size_t stl, const upd_sig *sigs, size_t nsigs, creto_err *e)
{
	creto_trust_root *r = NULL;
	int rc = load_effective_root(trust_path, NULL, NULL, &r, NULL, e);
	if (rc != CRETO_OK)
		return rc;
	char kids[CRETO_UPDATE_SIGS_MAX * 17 + 1];
	rc = upd_check_threshold(r, s->type, CRETO_STATEMENT_CTX, stm, stl, sigs, nsigs, kids, sizeof kids,
				 NULL, e);
	if (rc == CRETO_OK && creto_trust_root_expires(r) <= s->created) {
		char t[CRETO_TIME_STRLEN];
		creto_time_format(creto_trust_root_expires(r), t);
		rc = creto_err_set(e, CRETO_EREJECT, "expired: trust root version %lld expires at %s, "
				   "before this statement was created", (long long)creto_trust_root_version(r), t);
	}
	creto_trust_root_free(r);
	if (rc != CRETO_OK)
		creto_err_ctx(e, "update assemble: checked against %s", trust_path);
	return rc;
}

int creto_update_assemble(const char *statement_path, const char *sigs_path, const char *payload,
			  const char *out_path, const creto_update_assemble_opts *ao, creto_err *e)
{
	creto_update_assemble_opts dflt = {NULL, 0};
	if (ao == NULL)
		ao = &dflt;
	uint8_t *stm = NULL, *sig = NULL;
	size_t stl = 0, sgl = 0;
	upd_statement s;
	int have = 0, fd = -1, in = -1;
	upd_stream *strm = NULL;
	upd_sig *sigs = NULL;
	size_t nsigs = 0;
	char tmp[4200] = "";
	int rc = creto_file_read(statement_path, CRETO_STATEMENT_MAX, &stm, &stl, e);
	if (rc != CRETO_OK)
		goto out;
	if ((rc = upd_statement_parse(stm, stl, &s, NULL, e)) != CRETO_OK) {
		creto_err_ctx(e, "%s", statement_path);
		goto out;
	}
	have = 1;
	if ((rc = creto_file_read(sigs_path, CRETO_SIGS_MAX, &sig, &sgl, e)) != CRETO_OK)
		goto out;
	if ((rc = parse_sigs_doc(sig, sgl, &sigs, &nsigs, e)) != CRETO_OK) {
		creto_err_ctx(e, "%s", sigs_path);
		goto out;
	}
	if (ao->trust_path != NULL &&
	    (rc = assemble_check(ao->trust_path, &s, stm, stl, sigs, nsigs, e)) != CRETO_OK)
		goto out;
	struct stat pb;
	if (!ao->force && lstat(out_path, &pb) == 0) {
		rc = creto_err_set(e, CRETO_EUSAGE, "%s: already exists (--force replaces it)", out_path);
		goto out;
	}
	if (stat(payload, &pb) != 0) {
		rc = creto_err_errno(e, errno, "payload %s", payload);
		goto out;
	}
	int single = S_ISREG(pb.st_mode);
	if (single) {
		const char *base = strrchr(payload, '/');
		base = base ? base + 1 : payload;
		if (s.nfiles != 1 || strcmp(s.files[0].path, base) != 0) {
			rc = creto_err_set(e, CRETO_EUSAGE, "assemble: payload file %s is not the statement's payload", payload);
			goto out;
		}
	}
	snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", out_path);
	fd = mkstemp(tmp);
	if (fd >= 0 && fchmod(fd, 0644) != 0) {
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		rc = creto_err_errno(e, errno, "create %s", tmp);
		tmp[0] = 0;
		goto out;
	}
	if ((rc = upd_tar_write_hdr(fd, STMT_MEMBER, stl, s.created, e)) != CRETO_OK)
		goto out;
	if (creto_write_all(fd, stm, stl) != 0) {
		rc = creto_err_errno(e, errno, "write %s", tmp);
		goto out;
	}
	if ((rc = upd_tar_write_pad(fd, stl, e)) != CRETO_OK ||
	    (rc = upd_tar_write_hdr(fd, SIGS_MEMBER, sgl, s.created, e)) != CRETO_OK)
		goto out;
	if (creto_write_all(fd, sig, sgl) != 0) {
		rc = creto_err_errno(e, errno, "write %s", tmp);
		goto out;
	}
	if ((rc = upd_tar_write_pad(fd, sgl, e)) != CRETO_OK ||
	    (rc = upd_stream_new(s.shard_size, &strm, e)) != CRETO_OK)
		goto out;
	for (size_t i = 0; i < s.nfiles; i++) {
		char src[4600], name[CRETO_UPDATE_PATH_MAX + 16];
		if (single)
			snprintf(src, sizeof src, "%s", payload);
		else
			snprintf(src, sizeof src, "%s/%s", payload, s.files[i].path);
		in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		struct stat sb;
		if (in < 0 || fstat(in, &sb) != 0) {
			rc = creto_err_errno(e, errno, "payload %s", src);
			goto out;
		}
		if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != s.files[i].size) {
			rc = creto_err_set(e, CRETO_EREJECT, "digest: payload file %s differs from the statement (size)", src);
			goto out;
		}
		snprintf(name, sizeof name, PAYLOAD_PREFIX "%s", s.files[i].path);
		if ((rc = upd_tar_write_hdr(fd, name, s.files[i].size, s.created, e)) != CRETO_OK ||
		    (rc = upd_stream_file(strm, &s.files[i], in, fd, NULL, e)) != CRETO_OK ||
		    (rc = upd_stream_flush(strm, e)) != CRETO_OK ||
		    (rc = upd_tar_write_pad(fd, s.files[i].size, e)) != CRETO_OK)
			goto out;
		close(in);
		in = -1;
	}
	if ((rc = upd_stream_finish(strm, NULL, e)) != CRETO_OK) {
		creto_err_ctx(e, "assemble");
		goto out;
	}
	if ((rc = upd_tar_write_end(fd, e)) != CRETO_OK)
		goto out;
	if (fsync(fd) != 0 || close(fd) != 0) {
		fd = -1;
		rc = creto_err_errno(e, errno, "write %s", tmp);
		goto out;
	}
	fd = -1;
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, out_path, ao->force ? 0 : RENAME_NOREPLACE) != 0) {
		rc = errno == EEXIST ? creto_err_set(e, CRETO_EUSAGE, "%s: already exists (--force replaces it)", out_path)
				     : creto_err_errno(e, errno, "rename %s", out_path);
		goto out;
	}
	tmp[0] = 0;
	rc = creto_file_sync_dir(out_path, 0, e);
out:
	if (in >= 0)
		close(in);
	if (fd >= 0)
		close(fd);
	if (tmp[0])
		unlink(tmp);
	upd_stream_free(strm);
	upd_sigs_free(sigs, nsigs);
	if (have)
		upd_statement_free(&s);
	free(stm);
	free(sig);
	return rc;
}

/* ---- inspect ---- */

int creto_update_inspect(const char *pkg, char **out, creto_err *e)
{
	*out = NULL;
	uint8_t *stm = NULL, *sig = NULL;
	size_t stl = 0, sgl = 0;
	upd_sig *sigs = NULL;
	size_t nsigs = 0;
	json_t *o = json_object(), *js = NULL, *members = json_array();
	int fd = -1;
	int rc = creto_update_open(pkg, &fd, e);
	if (rc != CRETO_OK)
		goto out;
	if ((rc = read_member(fd, STMT_MEMBER, CRETO_STATEMENT_MAX, &stm, &stl, NULL, e)) != CRETO_OK ||
	    (rc = read_member(fd, SIGS_MEMBER, CRETO_SIGS_MAX, &sig, &sgl, NULL, e)) != CRETO_OK ||
	    (rc = upd_json_parse(stm, stl, "statement", &js, e)) != CRETO_OK ||
	    (rc = parse_sigs_doc(sig, sgl, &sigs, &nsigs, e)) != CRETO_OK)
		goto out;
	char dg[65];
	upd_sha3_hex(stm, stl, dg);
	json_object_set_new(o, "trusted", json_false());
	json_object_set_new(o, "statement_digest", json_string(dg));
	json_object_set_new(o, "statement_bytes", json_integer((json_int_t)stl));
	json_t *pl = json_object_get(js, "payload");
	size_t i;
	json_t *x;
	if (json_is_array(pl))
		json_array_foreach(pl, i, x) json_object_del(x, "shards");
	json_object_set(o, "statement", js);
	json_t *ks = json_array();
	for (i = 0; i < nsigs; i++)
		json_array_append_new(ks, json_string(sigs[i].keyid));
	json_object_set_new(o, "signed_by", ks);
	uint64_t total = 0;
	for (size_t n = 0; n <= CRETO_UPDATE_FILES_MAX; n++) {
		upd_tar_hdr h;
		int end;
		if ((rc = upd_tar_next(fd, &h, &end, NULL, e)) != CRETO_OK)
			goto out;
		if (end)
			break;
		json_t *m = json_object();
		json_object_set_new(m, "name", json_string(h.name));
		json_object_set_new(m, "size", json_integer((json_int_t)h.size));
		json_array_append_new(members, m);
		total += h.size;
		off_t skip = (off_t)((h.size + UPD_TAR_BLOCK - 1) / UPD_TAR_BLOCK * UPD_TAR_BLOCK);
		if (lseek(fd, skip, SEEK_CUR) < 0) {
			rc = creto_err_errno(e, errno, "seek");
			goto out;
		}
	}
	json_object_set(o, "members", members);
	json_object_set_new(o, "payload_bytes", json_integer((json_int_t)total));
	*out = json_dumps(o, JSON_INDENT(2));
	rc = *out ? CRETO_OK : creto_err_set(e, CRETO_EOP, "out of memory");
out:
	if (rc != CRETO_OK)
		creto_err_ctx(e, "%s", pkg);
	if (fd >= 0)
		close(fd);
	json_decref(js);
	json_decref(members);
	json_decref(o);
	upd_sigs_free(sigs, nsigs);
	free(stm);
	free(sig);
	return rc;
}
