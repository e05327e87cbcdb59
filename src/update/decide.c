/*
 * decide.c - reading a .crupdate and deciding about it: the rules of the
 * threat model in one place (docs/crupdate.md "Verification"), in the order
 * they run, over one snapshot of the state taken once the statement's
 * digest, type and name are known.  Nothing here changes state; a writable
 * context stages the payload as it is hashed, for commit.c to install.
 */
#include "update_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/file.h"
#include "util/timeutil.h"

const char *creto_update_verdict_name(creto_update_verdict v)
{
	switch (v) {
	case CRETO_VERDICT_ACCEPT: return "accept";
	case CRETO_VERDICT_DUPLICATE: return "duplicate";
	case CRETO_VERDICT_QUARANTINE: return "quarantine";
	case CRETO_VERDICT_RETRY: return "retry";
	}
	return "?";
}

/* Record the rule of a rejection (the first one decided) in res. */
static int set_rule(creto_update_result *res, creto_update_rule rule, int rc)
{
	if (res != NULL && rc == CRETO_EREJECT && res->rule_id == CRETO_RULE_NONE && rule != CRETO_RULE_NONE) {
		res->rule_id = rule;
		snprintf(res->rule, sizeof res->rule, "%s", creto_update_rule_name(rule));
	}
	return rc;
}

int upd_read_member(int fd, const char *want, size_t max, uint8_t **buf, size_t *len,
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

int upd_parse_sigs_doc(const uint8_t *buf, size_t len, upd_sig **sigs, size_t *n, creto_err *e)
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

/* What one decision reads and holds only while it runs. */
typedef struct judge {
	creto_update_ctx *c;
	upd_facts *f;
	creto_update_result *res;
	uint8_t *stm_bytes, *sig_bytes;
	size_t stm_len, sig_len;
	upd_sig *sigs;
	size_t nsigs;
} judge;

static int check_cancel(const judge *j, creto_err *e)
{
	if (upd_ctx_cancelled(j->c))
		return creto_err_set(e, CRETO_EOP, "interrupted (stop requested or time out); nothing installed");
	return CRETO_OK;
}

/* The trusted time: max(clock, time floor). */
static int64_t trusted_now(const upd_facts *f)
{
	return f->now > f->snap.floor ? f->now : f->snap.floor;
}

/* Authentication, then the statement's own rules against the snapshot. */
static int check_rules(judge *j, creto_err *e)
{
	creto_update_result *res = j->res;
	upd_facts *f = j->f;
	const creto_trust_root *root = j->c->root;
	int rc;
	char type[32], pname[CRETO_UPDATE_NAME_MAX + 1];
	/* Role selection from the untrusted type; the role's keys and
	 * threshold come from the trust root only. */
	if ((rc = upd_statement_peek_type(j->stm_bytes, j->stm_len, type, e)) != CRETO_OK)
		return set_rule(res, CRETO_RULE_STATEMENT, rc);
	snprintf(res->type, sizeof res->type, "%s", type);
	(void)upd_statement_peek_name(j->stm_bytes, j->stm_len, pname);
	/* The one look at the state this decision takes. */
	if (j->c->st != NULL &&
	    (rc = upd_state_snapshot(j->c->st, type, pname, res->statement_digest, &f->snap, e)) != CRETO_OK)
		return rc;
	/* The very statement bytes were applied before.  Only a package whose
	 * container and payload still match that statement is that package
	 * again, a `replay` (the watcher's `duplicate`); a copy with the same
	 * statement but another payload is refused by the rule it breaks.
	 * Signature, time and version rules are not asked again: they held
	 * when it was applied (and a rotation since may have dropped its
	 * signers). */
	res->already_applied = f->snap.applied;
	rc = res->already_applied ? CRETO_OK
		: upd_check_threshold(root, type, CRETO_STATEMENT_CTX, j->stm_bytes, j->stm_len, j->sigs,
				      j->nsigs, res->keyids, sizeof res->keyids, NULL, e);
	if (rc != CRETO_OK)
		return set_rule(res, CRETO_RULE_THRESHOLD, rc);
	creto_update_rule rr = CRETO_RULE_NONE;
	if ((rc = upd_statement_parse(j->stm_bytes, j->stm_len, &f->stm, &rr, e)) != CRETO_OK)
		return set_rule(res, rr, rc);
	f->have_stm = 1;
	upd_statement *s = &f->stm;
	if (strcmp(s->name, pname) != 0) /* the snapshot was taken for another name */
		return set_rule(res, CRETO_RULE_STATEMENT, creto_err_set(e, CRETO_EREJECT,
			"statement: name does not parse the same way twice"));
	snprintf(res->name, sizeof res->name, "%s", s->name);
	res->version = s->version;
	res->payload_bytes = s->total;
	int is_rot = strcmp(s->type, "cert-rotation") == 0;
	if (res->already_applied)
		return CRETO_OK;

	int64_t tnow = trusted_now(f);
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
	if (!is_rot && creto_trust_root_expires(root) <= tnow) {
		creto_time_format(creto_trust_root_expires(root), a);
		return set_rule(res, CRETO_RULE_EXPIRED, creto_err_set(e, CRETO_EREJECT,
			"expired: trust root version %lld expired at %s (trusted time %s); rotate it",
			(long long)creto_trust_root_version(root), a, b));
	}
	int64_t inst = f->snap.installed;
	if (is_rot) {
		inst = creto_trust_root_version(root);
		if (strcmp(s->name, "trust-root") != 0)
			return set_rule(res, CRETO_RULE_STATEMENT, creto_err_set(e, CRETO_EREJECT,
				"statement: a cert-rotation must be named trust-root"));
		if (s->nfiles != 1 || strcmp(s->files[0].path, "root.json") != 0 ||
		    s->files[0].size > CRETO_TRUST_ROOT_MAX)
			return set_rule(res, CRETO_RULE_STATEMENT, creto_err_set(e, CRETO_EREJECT,
				"statement: a cert-rotation carries exactly one payload file root.json of at most %u bytes",
				CRETO_TRUST_ROOT_MAX));
	}
	res->installed = inst;
	if (s->version <= inst)
		return set_rule(res, CRETO_RULE_ROLLBACK, creto_err_set(e, CRETO_EREJECT,
			"rollback: %s %s version %lld is not newer than installed version %lld", s->type,
			s->name, (long long)s->version, (long long)inst));
	int jump = upd_root_role_jump(root, s->type);
	if (inst > 0 && s->version - inst > jump)
		return set_rule(res, CRETO_RULE_FAST_FORWARD, creto_err_set(e, CRETO_EREJECT,
			"fast-forward: %s %s version %lld jumps more than %d past installed version %lld",
			s->type, s->name, (long long)s->version, jump, (long long)inst));
	return CRETO_OK;
}

static int check_rotation(judge *j, creto_err *e)
{
	upd_facts *f = j->f;
	const creto_trust_root *root = j->c->root;
	creto_trust_root *nr = NULL;
	int rc = creto_trust_root_parse(f->newroot, f->newroot_len, &nr, e);
	if (rc != CRETO_OK) {
		creto_err_ctx(e, "rotation: new trust root");
		return set_rule(j->res, CRETO_RULE_ROTATION, rc);
	}
	creto_update_rule rr = CRETO_RULE_ROTATION;
	int64_t cur = creto_trust_root_version(root);
	if (creto_trust_root_version(nr) != cur + 1 || creto_trust_root_version(nr) != f->stm.version) {
		rc = creto_err_set(e, CRETO_EREJECT,
				   "rotation: new trust root version %lld, statement version %lld; only %lld -> %lld is allowed",
				   (long long)creto_trust_root_version(nr), (long long)f->stm.version,
				   (long long)cur, (long long)cur + 1);
	} else if ((rc = creto_trust_root_signed_by(root, nr, e)) != CRETO_OK) {
		creto_err_ctx(e, "rotation: new trust root not signed by the current root's keys");
	} else {
		/* Judged against the trusted time this very commit sets: the
		 * floor becomes max(floor, created), and a root that expires
		 * before it would refuse every later package. */
		int64_t t = trusted_now(f);
		if (f->stm.created > t)
			t = f->stm.created;
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
	return set_rule(j->res, rr, rc);
}

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

/* The payload members, in statement order, each streamed through the shard
 * hashes (and into the staging directory when there is one); then nothing
 * but the end of the archive. */
static int read_payload(judge *j, int fd, creto_err *e)
{
	upd_facts *f = j->f;
	upd_statement *s = &f->stm;
	upd_stream *strm = NULL;
	int rc = CRETO_OK;
	creto_update_rule rr = CRETO_RULE_NONE;
	int is_rot = strcmp(s->type, "cert-rotation") == 0;
	if (!is_rot && (rc = upd_stream_new(s->shard_size, &strm, e)) != CRETO_OK)
		return rc;
	for (size_t i = 0; i < s->nfiles; i++) {
		const upd_file *fl = &s->files[i];
		upd_tar_hdr h;
		int end;
		if ((rc = check_cancel(j, e)) != CRETO_OK)
			goto out;
		if ((rc = upd_tar_next(fd, &h, &end, &rr, e)) != CRETO_OK)
			goto out;
		char want[CRETO_UPDATE_PATH_MAX + 16];
		snprintf(want, sizeof want, UPD_PAYLOAD_PREFIX "%s", fl->path);
		if (end) {
			rc = upd_reject(e, &rr, CRETO_RULE_TRUNCATED, "truncated: archive ends before member %s", want);
			goto out;
		}
		if (strcmp(h.name, want) != 0) {
			for (size_t k = 0; k < i; k++)
				if (strncmp(h.name, UPD_PAYLOAD_PREFIX, 8) == 0 && strcmp(h.name + 8, s->files[k].path) == 0) {
					rc = upd_reject(e, &rr, CRETO_RULE_DUPLICATE_NAME, "duplicate name: member %.120s appears twice", h.name);
					goto out;
				}
			rc = upd_reject(e, &rr, CRETO_RULE_ORDER,
					"order: member %.120s where %s was expected (payload members must follow the statement)",
					h.name, want);
			goto out;
		}
		if (h.size != fl->size) {
			rc = upd_reject(e, &rr, CRETO_RULE_SIZE, "size: member %s is %llu bytes, the statement says %llu",
					want, (unsigned long long)h.size, (unsigned long long)fl->size);
			goto out;
		}
		if (is_rot) {
			f->newroot = malloc(fl->size + 1);
			if (f->newroot == NULL) {
				rc = creto_err_set(e, CRETO_EOP, "out of memory");
				goto out;
			}
			ssize_t got = creto_read_full(fd, f->newroot, (size_t)fl->size);
			if (got < 0 || (size_t)got != fl->size) {
				rc = got < 0 ? creto_err_errno(e, errno, "read")
					     : upd_reject(e, &rr, CRETO_RULE_TRUNCATED, "truncated: package ends inside %s", want);
				goto out;
			}
			f->newroot_len = (size_t)fl->size;
			uint8_t d[UPD_DIGEST_LEN];
			if (upd_sha3(f->newroot, f->newroot_len, d) != 0 || memcmp(d, fl->digest, UPD_DIGEST_LEN) != 0) {
				rc = upd_reject(e, &rr, CRETO_RULE_DIGEST, "digest: payload file %s does not match the statement", fl->path);
				goto out;
			}
		} else {
			int ofd = -1;
			if (f->stage[0] && (rc = stage_open(f->stage, fl->path, &ofd, e)) != CRETO_OK)
				goto out;
			rc = upd_stream_file(strm, fl, fd, ofd, &rr, e);
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
				rc = creto_err_errno(e, errno, "fsync staging %s", fl->path);
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
	return set_rule(j->res, rr, rc);
}

/* The one pass: container, authentication, the statement's rules against
 * the snapshot, the payload (staged when the context can commit), the
 * replay verdict, the rotation's own rules. */
static int run_rules(judge *j, int fd, creto_err *e)
{
	creto_update_result *res = j->res;
	upd_facts *f = j->f;
	creto_update_rule rr = CRETO_RULE_NONE;
	int rc;
	if ((rc = upd_read_member(fd, UPD_STMT_MEMBER, CRETO_STATEMENT_MAX, &j->stm_bytes, &j->stm_len, &rr, e)) != CRETO_OK ||
	    (rc = upd_read_member(fd, UPD_SIGS_MEMBER, CRETO_SIGS_MAX, &j->sig_bytes, &j->sig_len, &rr, e)) != CRETO_OK)
		return set_rule(res, rr, rc);
	upd_sha3_hex(j->stm_bytes, j->stm_len, res->statement_digest);
	if ((rc = upd_parse_sigs_doc(j->sig_bytes, j->sig_len, &j->sigs, &j->nsigs, e)) != CRETO_OK)
		return set_rule(res, CRETO_RULE_SIGNATURES, rc);
	if ((rc = check_rules(j, e)) != CRETO_OK)
		return rc;
	if (!j->c->o.readonly && !res->already_applied && strcmp(f->stm.type, "cert-rotation") != 0) {
		char sp[4096];
		snprintf(sp, sizeof sp, "%s/staging", j->c->sdir);
		if ((rc = creto_mkdir_p(sp, 0700, e)) != CRETO_OK)
			return rc;
		snprintf(f->stage, sizeof f->stage, "%s/staging/%.16s.XXXXXX", j->c->sdir, res->statement_digest);
		if (mkdtemp(f->stage) == NULL) {
			rc = creto_err_errno(e, errno, "mkdtemp %s", f->stage);
			f->stage[0] = 0;
			return rc;
		}
	}
	if ((rc = read_payload(j, fd, e)) != CRETO_OK)
		return rc;
	if (res->already_applied)
		return set_rule(res, CRETO_RULE_REPLAY, creto_err_set(e, CRETO_EREJECT,
			"replay: statement %.16s (%s %s version %lld) was already applied",
			res->statement_digest, res->type, res->name, (long long)res->version));
	if (f->newroot != NULL && (rc = check_rotation(j, e)) != CRETO_OK)
		return rc;
	return CRETO_OK;
}

int upd_decision_init(creto_update_decision *d, const char *name, creto_err *e)
{
	memset(d, 0, sizeof *d);
	d->facts = calloc(1, sizeof *d->facts);
	if (d->facts == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	snprintf(d->facts->source, sizeof d->facts->source, "%s", name);
	return CRETO_OK;
}

/* The verdict from how the rules ended: an accepted package, a rejection
 * (a duplicate when the rule is replay), or nothing decided. */
void upd_decision_set(creto_update_decision *d, int rc, const creto_err *why)
{
	creto_update_result *res = &d->res;
	if (rc == CRETO_OK) {
		d->verdict = CRETO_VERDICT_ACCEPT;
		creto_err_clear(&d->why);
		return;
	}
	d->why = *why;
	creto_err_ctx(&d->why, "%s", d->facts != NULL ? d->facts->source : "package");
	/* A duplicate is the applied package again, verified in full: refused
	 * by any other rule, it is not. */
	if (res->rule_id != CRETO_RULE_REPLAY)
		res->already_applied = 0;
	if (rc == CRETO_EREJECT && !res->root_unusable) {
		d->verdict = res->rule_id == CRETO_RULE_REPLAY ? CRETO_VERDICT_DUPLICATE : CRETO_VERDICT_QUARANTINE;
		d->rule = res->rule_id;
	} else {
		/* Keeps its status: a refused trust root CRETO_EREJECT, an
		 * unreadable one or an I/O failure CRETO_EOP. */
		d->verdict = CRETO_VERDICT_RETRY;
	}
	if (d->facts != NULL && d->facts->stage[0]) {
		upd_rm_tree(d->facts->stage);
		d->facts->stage[0] = 0;
	}
}

int creto_update_decide(creto_update_ctx *c, int fd, const char *name, creto_update_decision *d,
			creto_err *e)
{
	int rc = upd_decision_init(d, name, e);
	if (rc != CRETO_OK)
		return rc;
	upd_facts *f = d->facts;
	f->now = creto_clock_now(c->o.clock);
	f->component = c->o.component != NULL ? c->o.component : "update";
	creto_err why;
	creto_err_clear(&why);
	upd_ctx_refresh_root(c);
	f->generation = c->generation;
	if (c->root == NULL) {
		/* Nothing can be decided about the package with this root. */
		d->res.root_unusable = 1;
		upd_decision_set(d, c->root_err.code, &c->root_err);
		return CRETO_OK;
	}
	judge j;
	memset(&j, 0, sizeof j);
	j.c = c;
	j.f = f;
	j.res = &d->res;
	rc = run_rules(&j, fd, &why);
	upd_decision_set(d, rc, &why);
	upd_sigs_free(j.sigs, j.nsigs);
	free(j.stm_bytes);
	free(j.sig_bytes);
	return CRETO_OK;
}

int creto_update_decide_path(creto_update_ctx *c, const char *pkg, creto_update_decision *d,
			     creto_err *e)
{
	int fd;
	creto_err why;
	creto_err_clear(&why);
	int orc = creto_update_open(pkg, &fd, &why);
	if (orc == CRETO_OK) {
		int rc = creto_update_decide(c, fd, pkg, d, e);
		close(fd);
		return rc;
	}
	int rc = upd_decision_init(d, pkg, e);
	if (rc != CRETO_OK)
		return rc;
	d->facts->now = creto_clock_now(c->o.clock);
	d->facts->component = c->o.component != NULL ? c->o.component : "update";
	d->facts->generation = c->generation;
	set_rule(&d->res, CRETO_RULE_CONTAINER, orc); /* a non-regular file or a link */
	/* creto_update_open names pkg itself */
	d->why = why;
	d->verdict = orc == CRETO_EREJECT ? CRETO_VERDICT_QUARANTINE : CRETO_VERDICT_RETRY;
	d->rule = d->res.rule_id;
	return CRETO_OK;
}

void creto_update_decision_clear(creto_update_decision *d)
{
	if (d == NULL)
		return;
	upd_facts *f = d->facts;
	if (f != NULL) {
		if (f->stage[0])
			upd_rm_tree(f->stage);
		if (f->have_stm)
			upd_statement_free(&f->stm);
		free(f->newroot);
		free(f);
	}
	memset(d, 0, sizeof *d);
}
