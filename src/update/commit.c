/*
 * commit.c - a decision takes effect in one step (docs/crupdate.md "The
 * package path"): its event goes to the sink first and is durable there;
 * then, for an accepted package, the staged payload is renamed into
 * SDIR/KIND/NAME/VERSION (or the new trust root written), the state rows
 * commit in one transaction (the moment the update takes effect), and the
 * `current` link switches.  A refusal is its event.  When the
 * state commit does not happen after the event was recorded, an `aborted`
 * event follows (or the next context's recovery writes it).
 */
#include "update_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/file.h"

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

/* Inside the commit's write transaction: the state is still the one the
 * decision was made over (a second decision about the same target, or a
 * rotation, may have committed in between). */
static int still_fresh(creto_update_ctx *c, const creto_update_decision *d, creto_err *e)
{
	const upd_facts *f = d->facts;
	upd_snapshot now;
	int rc = upd_state_snapshot(c->st, d->res.type, d->res.name, d->res.statement_digest, &now, e);
	if (rc != CRETO_OK)
		return rc;
	if (now.installed != f->snap.installed || now.applied != f->snap.applied ||
	    now.root_version != f->snap.root_version || now.floor < f->snap.floor ||
	    c->generation != f->generation)
		return creto_err_set(e, CRETO_EOP, "the state changed since the decision; decide again");
	return CRETO_OK;
}

/* The state rows of an install, one transaction; intent done with them. */
static int commit_rows(creto_update_ctx *c, creto_update_decision *d, const char *root_digest,
		       creto_err *e)
{
	upd_facts *f = d->facts;
	int rc = upd_state_begin(c->st, e);
	if (rc != CRETO_OK)
		return rc;
	if ((rc = still_fresh(c, d, e)) != CRETO_OK ||
	    (root_digest != NULL && (rc = upd_state_set_root(c->st, f->stm.version, root_digest, e)) != CRETO_OK) ||
	    (rc = upd_state_record_install(c->st, &d->res, f->stm.created, f->now, e)) != CRETO_OK ||
	    (rc = upd_intent_done(c, e)) != CRETO_OK) {
		upd_state_rollback(c->st);
		return rc;
	}
	upd_crash_at(c, "before-commit");
	if ((rc = upd_state_commit(c->st, e)) != CRETO_OK) {
		upd_state_rollback(c->st);
		return rc;
	}
	upd_crash_at(c, "committed");
	return CRETO_OK;
}

/* Before the state commit: *committed stays 0 on failure. */
static int install_rotation(creto_update_ctx *c, creto_update_decision *d, int *committed,
			    creto_err *e)
{
	upd_facts *f = d->facts;
	char rp[4200], dg[65];
	snprintf(rp, sizeof rp, "%s/trust/root-%lld.json", c->sdir, (long long)f->stm.version);
	int rc;
	if ((rc = upd_mkdir_durable(c->sdir, "trust", e)) != CRETO_OK ||
	    (rc = creto_file_write_atomic(rp, f->newroot, f->newroot_len, 0644, e)) != CRETO_OK)
		return rc;
	upd_crash_at(c, "renamed");
	upd_sha3_hex(f->newroot, f->newroot_len, dg);
	snprintf(d->res.install_path, sizeof d->res.install_path, "%.4000s/trust-root.json", c->sdir);
	if ((rc = commit_rows(c, d, dg, e)) != CRETO_OK)
		return rc;
	*committed = 1;
	rc = creto_file_write_atomic(d->res.install_path, f->newroot, f->newroot_len, 0644, e);
	/* The root in force changed: the context holds the new one from now. */
	creto_err re;
	creto_err_clear(&re);
	if (upd_ctx_reload_root(c, &re) != CRETO_OK && rc == CRETO_OK) {
		/* later decisions are `retry` until it loads; this one took effect */
	}
	return rc;
}

static int install_payload(creto_update_ctx *c, creto_update_decision *d, int *committed,
			   creto_err *e)
{
	upd_facts *f = d->facts;
	upd_statement *s = &f->stm;
	int rc;
	if (chmod(f->stage, 0755) != 0)
		return creto_err_errno(e, errno, "chmod %s", f->stage);
	if ((rc = sync_tree_dirs(f->stage, s, e)) != CRETO_OK)
		return rc;
	char base[4096], target[4200], sub[200];
	snprintf(base, sizeof base, "%s/%s/%s", c->sdir, upd_kind_dir(s->type), s->name);
	snprintf(target, sizeof target, "%s/%lld", base, (long long)s->version);
	snprintf(sub, sizeof sub, "%s/%s", upd_kind_dir(s->type), s->name);
	if ((rc = upd_mkdir_durable(c->sdir, sub, e)) != CRETO_OK)
		return rc;
	struct stat sb;
	if (lstat(target, &sb) == 0) {
		/* Left by an install that crashed before its commit: not in use. */
		char stale[4300];
		snprintf(stale, sizeof stale, "%s.stale", f->stage);
		if (rename(target, stale) != 0)
			return creto_err_errno(e, errno, "move aside %s", target);
		upd_rm_tree(stale);
	}
	if (rename(f->stage, target) != 0)
		return creto_err_errno(e, errno, "rename into %s", target);
	f->stage[0] = 0;
	if ((rc = creto_file_sync_dir(base, 1, e)) != CRETO_OK)
		return rc;
	upd_crash_at(c, "renamed");
	snprintf(d->res.install_path, sizeof d->res.install_path, "%.4000s", target);
	if ((rc = commit_rows(c, d, NULL, e)) != CRETO_OK)
		return rc;
	*committed = 1;
	return upd_switch_current(c, base, s->version, e);
}

static int commit_accept(creto_update_ctx *c, creto_update_decision *d, creto_err *e)
{
	upd_facts *f = d->facts;
	int rc = CRETO_OK;
	if (c->generation != f->generation)
		rc = creto_err_set(e, CRETO_EOP, "the trust root changed since the decision; decide again");
	else if (upd_ctx_cancelled(c))
		rc = creto_err_set(e, CRETO_EOP, "interrupted (stop requested or time out); nothing installed");
	if (rc != CRETO_OK) {
		/* Nothing was done: the decision becomes a retry, recorded as such. */
		creto_err ctx = *e;
		creto_err_ctx(&ctx, "%s", f->source);
		upd_decision_set(d, rc, e);
		d->why = ctx;
		int rrc = upd_record(c, d, "retry", 0, e);
		if (rrc != CRETO_OK)
			return rrc;
		*e = d->why;
		return d->why.code;
	}
	const char *outcome = "applied";
	if ((rc = upd_record(c, d, outcome, UPD_INTENT, e)) != CRETO_OK)
		return rc; /* fail closed: nothing installed */
	upd_crash_at(c, "staged");
	int committed = 0;
	if (strcmp(f->stm.type, "cert-rotation") == 0)
		rc = install_rotation(c, d, &committed, e);
	else
		rc = install_payload(c, d, &committed, e);
	if (rc != CRETO_OK && !committed) {
		creto_err_ctx(e, "%s", f->source);
		upd_record_aborted(c, d, e->msg);
	}
	return rc;
}

int upd_commit_intent(creto_update_ctx *c, creto_err *e)
{
	int rc = upd_state_begin(c->st, e);
	if (rc != CRETO_OK)
		return rc;
	if ((rc = upd_intent_done(c, e)) != CRETO_OK) {
		upd_state_rollback(c->st);
		return rc;
	}
	if ((rc = upd_state_commit(c->st, e)) != CRETO_OK)
		upd_state_rollback(c->st);
	return rc;
}

/* A refusal (or a duplicate) of `update apply`: its event is all there is
 * to it (no state changes, so no intent). */
static int commit_refusal(creto_update_ctx *c, creto_update_decision *d, const char *outcome,
			  creto_err *e)
{
	int rc = upd_record(c, d, outcome, 0, e);
	if (rc != CRETO_OK)
		return rc;
	*e = d->why;
	return d->why.code;
}

int creto_update_commit(creto_update_ctx *c, creto_update_decision *d, creto_err *e)
{
	if (c->o.readonly || c->st == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "update: a read-only update context cannot commit");
	if (d->facts == NULL || d->verdict == 0)
		return creto_err_set(e, CRETO_EUSAGE, "update: commit of a decision never made");
	switch (d->verdict) {
	case CRETO_VERDICT_ACCEPT:
		return commit_accept(c, d, e);
	case CRETO_VERDICT_DUPLICATE:
		return commit_refusal(c, d, "duplicate", e);
	case CRETO_VERDICT_QUARANTINE:
		return commit_refusal(c, d, "refused", e);
	case CRETO_VERDICT_RETRY: {
		int rc = upd_record(c, d, "retry", 0, e);
		if (rc != CRETO_OK)
			return rc;
		*e = d->why;
		return d->why.code;
	}
	}
	return creto_err_set(e, CRETO_EUSAGE, "update: unknown verdict");
}
