/*
 * ctx.c - the update context (creto/update.h): the writer lock, the state
 * database and the effective trust root held for a process's lifetime;
 * the records of decisions through the caller's event sink, with the
 * intent that lets recovery say `aborted`; and the one-call entry points
 * (creto_update_verify/apply, creto_state_init) built on it.
 */
#include "update_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/escape.h"
#include "util/file.h"

/* ---- the effective trust root ---- */

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

int upd_load_effective_root(const char *trust_path, const char *sdir, upd_state *st,
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

/* What identifies the content of the --trust file without reading it. */
static void trust_id_of(const char *path, creto_update_ctx *c)
{
	struct stat sb;
	memset(&c->trust_id, 0, sizeof c->trust_id);
	if (stat(path, &sb) != 0)
		return;
	c->trust_id.dev = (long long)sb.st_dev;
	c->trust_id.ino = (long long)sb.st_ino;
	c->trust_id.size = (long long)sb.st_size;
	c->trust_id.mtime_ns = (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
	c->trust_id.ctime_ns = (long long)sb.st_ctim.tv_sec * 1000000000LL + sb.st_ctim.tv_nsec;
	c->trust_id.ok = 1;
}

int upd_ctx_reload_root(creto_update_ctx *c, creto_err *e)
{
	creto_trust_root *r = NULL;
	char dg[65] = "";
	trust_id_of(c->trust_path, c);
	int rc = upd_load_effective_root(c->trust_path, c->sdir, c->st, &r, dg, e);
	creto_trust_root_free(c->root);
	c->root = r;
	c->generation++;
	if (rc != CRETO_OK) {
		c->root_err = *e;
		c->root_digest[0] = 0;
		return rc;
	}
	creto_err_clear(&c->root_err);
	memcpy(c->root_digest, dg, sizeof dg);
	return CRETO_OK;
}

void upd_ctx_refresh_root(creto_update_ctx *c)
{
	__typeof__(c->trust_id) was = c->trust_id;
	trust_id_of(c->trust_path, c);
	if (c->root != NULL && was.ok && c->trust_id.ok && memcmp(&was, &c->trust_id, sizeof was) == 0)
		return;
	creto_err ig;
	creto_err_clear(&ig);
	if (upd_ctx_reload_root(c, &ig) != CRETO_OK) {
		/* root NULL, root_err set: later decisions are `retry` */
	}
}

void upd_crash_at(const creto_update_ctx *c, const char *point)
{
	if (c->o.crash != NULL)
		c->o.crash(c->o.crash_arg, point);
}

int upd_ctx_cancelled(const creto_update_ctx *c)
{
	return c->o.cancelled != NULL && c->o.cancelled(c->o.cancel_arg);
}

/* ---- records ---- */

static int has_sink(const creto_update_ctx *c)
{
	return c->o.sink.fn != NULL;
}

/* The event of a decision (strings borrowed from d and the buffers). */
typedef struct upd_ev {
	creto_event ev;
	creto_event_field f[7];
	char subject[CRETO_UPDATE_NAME_MAX + 128];
} upd_ev;

static void build_event(const creto_update_decision *d, const char *outcome, const char *reason,
			upd_ev *u)
{
	const creto_update_result *r = &d->res;
	const upd_facts *f = d->facts;
	memset(u, 0, sizeof *u);
	int rot = strcmp(r->type, "cert-rotation") == 0;
	u->ev.component = rot ? "trust" : f->component != NULL ? f->component : "update";
	u->ev.event = rot ? "rotation" : "apply";
	u->ev.outcome = outcome;
	if (r->name[0])
		snprintf(u->subject, sizeof u->subject, "%s@%lld sha3-256:%s", r->name, (long long)r->version,
			 r->statement_digest);
	else if (r->statement_digest[0])
		snprintf(u->subject, sizeof u->subject, "sha3-256:%s", r->statement_digest);
	u->ev.subject = u->subject[0] ? u->subject : f->source;
	u->ev.reason = reason;
	size_t n = 0;
	u->f[n++] = (creto_event_field){"file", f->source, 0};
	if (r->type[0])
		u->f[n++] = (creto_event_field){"type", r->type, 0};
	if (r->name[0])
		u->f[n++] = (creto_event_field){"name", r->name, 0};
	if (r->version)
		u->f[n++] = (creto_event_field){"version", NULL, r->version};
	if (r->statement_digest[0])
		u->f[n++] = (creto_event_field){"statement_digest", r->statement_digest, 0};
	if (r->keyids[0])
		u->f[n++] = (creto_event_field){"keyids", r->keyids, 0};
	if (d->verdict != CRETO_VERDICT_ACCEPT && d->why.msg[0])
		u->f[n++] = (creto_event_field){"message", d->why.msg, 0};
	u->ev.fields = u->f;
	u->ev.nfields = n;
}

static int sink_refused(creto_update_ctx *c, const creto_event *ev, int rc, creto_err *e)
{
	c->sink_failed = 1;
	creto_err_set(&c->sink_err, CRETO_EOP,
		      "audit: the record of %s %s (%s) could not be written (sink status %d); nothing done",
		      ev->component, ev->event, ev->outcome, rc);
	*e = c->sink_err;
	return CRETO_EOP;
}

/* The intent: enough of the event to record its `aborted` later. */
static int intent_set(creto_update_ctx *c, const creto_event *ev, creto_err *e)
{
	/* The subject may hold untrusted bytes (a file name that is not
	 * UTF-8): stored as its escape text, decoded on recovery. */
	const char *sj = ev->subject ? ev->subject : "";
	char *esc = creto_escape_dup(sj, strlen(sj));
	json_t *o = esc == NULL ? NULL
				: json_pack("{s:s, s:s, s:s, s:s}", "component", ev->component, "event",
					    ev->event, "outcome", ev->outcome, "subject", esc);
	free(esc);
	char *txt = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	if (txt == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	int rc = upd_state_meta_set(c->st, UPD_INTENT_KEY, txt, e);
	free(txt);
	return rc;
}

int upd_record(creto_update_ctx *c, const creto_update_decision *d, const char *outcome, int flags,
	       creto_err *e)
{
	if (!has_sink(c))
		return CRETO_OK;
	upd_ev u;
	build_event(d, outcome, d->rule != CRETO_RULE_NONE ? creto_update_rule_name(d->rule) : NULL, &u);
	int intent = (flags & UPD_INTENT) && c->st != NULL && !c->o.readonly;
	int rc;
	if (intent && (rc = intent_set(c, &u.ev, e)) != CRETO_OK)
		return rc;
	if ((rc = creto_event_emit(&c->o.sink, &u.ev)) != 0) {
		if (intent) {
			creto_err ig;
			if (upd_state_meta_del(c->st, UPD_INTENT_KEY, &ig) != CRETO_OK) {
				/* left for recovery: it then records `aborted` */
			}
		}
		return sink_refused(c, &u.ev, rc, e);
	}
	upd_crash_at(c, "recorded");
	return CRETO_OK;
}

void upd_record_aborted(creto_update_ctx *c, const creto_update_decision *d, const char *why)
{
	if (!has_sink(c))
		return;
	upd_ev u;
	build_event(d, "aborted", why, &u);
	int rc = creto_event_emit(&c->o.sink, &u.ev);
	creto_err ig;
	if (rc != 0) {
		(void)sink_refused(c, &u.ev, rc, &ig); /* the intent stays for recovery */
	} else if (c->st != NULL && upd_state_meta_del(c->st, UPD_INTENT_KEY, &ig) != CRETO_OK) {
		/* left for recovery: it then records `aborted` again */
	}
}

int upd_intent_done(creto_update_ctx *c, creto_err *e)
{
	if (!has_sink(c))
		return CRETO_OK;
	return upd_state_meta_del(c->st, UPD_INTENT_KEY, e);
}

int upd_intent_recover(creto_update_ctx *c, creto_err *e)
{
	if (!has_sink(c))
		return CRETO_OK; /* kept for a context that can record it */
	char v[2048];
	int rc = upd_state_meta(c->st, UPD_INTENT_KEY, v, sizeof v, e);
	if (rc != CRETO_OK || v[0] == 0)
		return rc;
	json_error_t je;
	json_t *o = json_loads(v, 0, &je);
	const char *comp = json_string_value(json_object_get(o, "component"));
	const char *evn = json_string_value(json_object_get(o, "event"));
	const char *was = json_string_value(json_object_get(o, "outcome"));
	const char *subj = json_string_value(json_object_get(o, "subject"));
	char raw[2048];
	size_t rn = 0;
	if (subj != NULL && creto_unescape(raw, sizeof raw - 1, subj, &rn) == 0) {
		raw[rn] = 0;
		subj = raw;
	}
	creto_event_field fl[1] = {{"intended", was ? was : "?", 0}};
	creto_event ev = {comp ? comp : "update", evn ? evn : "apply", "aborted", subj,
			  "interrupted before the state commit", NULL, fl, 1};
	rc = creto_event_emit(&c->o.sink, &ev);
	if (rc != 0)
		rc = sink_refused(c, &ev, rc, e);
	json_decref(o);
	if (rc != CRETO_OK)
		return rc;
	return upd_state_meta_del(c->st, UPD_INTENT_KEY, e);
}

/* ---- the context ---- */

int creto_update_ctx_open(const char *state_dir, const char *trust_path,
			  const creto_update_ctx_opts *o, creto_update_ctx **out, creto_err *e)
{
	*out = NULL;
	creto_update_ctx_opts dflt;
	memset(&dflt, 0, sizeof dflt);
	if (o == NULL)
		o = &dflt;
	if (trust_path == NULL || (!o->readonly && state_dir == NULL))
		return creto_err_set(e, CRETO_EUSAGE, "update: no trust root%s given",
				     o->readonly ? "" : " or state directory");
	creto_update_ctx *c = calloc(1, sizeof *c);
	if (c == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	c->o = *o;
	c->lockfd = -1;
	c->trust_path = strdup(trust_path);
	c->sdir = state_dir != NULL ? strdup(state_dir) : NULL;
	int rc = CRETO_OK;
	if (c->trust_path == NULL || (state_dir != NULL && c->sdir == NULL)) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto fail;
	}
	if (c->sdir != NULL) {
		/* Never a fresh start: the state must have been initialised. */
		if ((rc = upd_state_initialised(c->sdir, e)) != CRETO_OK)
			goto fail;
		if (!o->readonly &&
		    (rc = upd_state_lock(c->sdir, o->lock_wait_s, o->cancelled, o->cancel_arg, &c->lockfd, e)) != CRETO_OK)
			goto fail;
		if ((rc = upd_state_open(c->sdir, o->readonly, &c->st, e)) != CRETO_OK)
			goto fail;
		if (!o->readonly) {
			if ((rc = upd_recover(c, e)) != CRETO_OK) {
				creto_err_ctx(e, "recovery");
				goto fail;
			}
			if ((rc = upd_intent_recover(c, e)) != CRETO_OK)
				goto fail;
		}
	}
	if ((rc = upd_ctx_reload_root(c, e)) != CRETO_OK)
		goto fail;
	*out = c;
	return CRETO_OK;
fail:
	creto_update_ctx_close(c);
	return rc;
}

void creto_update_ctx_close(creto_update_ctx *c)
{
	if (c == NULL)
		return;
	creto_trust_root_free(c->root);
	upd_state_close(c->st);
	if (c->lockfd >= 0)
		close(c->lockfd);
	free(c->sdir);
	free(c->trust_path);
	free(c);
}

void creto_update_ctx_root(const creto_update_ctx *c, int64_t *version, int64_t *expires)
{
	*version = c->root != NULL ? creto_trust_root_version(c->root) : 0;
	*expires = c->root != NULL ? creto_trust_root_expires(c->root) : 0;
}

int creto_update_ctx_event(creto_update_ctx *c, const creto_event *ev, creto_err *e)
{
	int rc = creto_event_emit(&c->o.sink, ev);
	return rc == 0 ? CRETO_OK : sink_refused(c, ev, rc, e);
}

/* ---- one call per package ---- */

static int run_fd(int fd, const char *name, const creto_update_opts *o, int apply,
		  creto_update_result *res, creto_err *e)
{
	creto_update_result local;
	if (res == NULL)
		res = &local;
	memset(res, 0, sizeof *res);
	creto_update_ctx_opts co;
	memset(&co, 0, sizeof co);
	co.clock = o->clock;
	co.crash = o->crash;
	co.crash_arg = o->crash_arg;
	co.cancelled = o->cancelled;
	co.cancel_arg = o->cancel_arg;
	co.lock_wait_s = o->lock_wait_s;
	co.sink = o->sink;
	co.readonly = !apply;
	creto_update_ctx *c = NULL;
	int rc = creto_update_ctx_open(o->state_dir, o->trust_path, &co, &c, e);
	if (rc != CRETO_OK) {
		if (o->trust_path != NULL && strstr(e->msg, "trust root") != NULL)
			res->root_unusable = 1;
		return creto_err_ctx(e, "%s", name);
	}
	creto_update_decision d;
	if ((rc = creto_update_decide(c, fd, name, &d, e)) == CRETO_OK) {
		if (apply)
			rc = creto_update_commit(c, &d, e);
		else if (d.verdict != CRETO_VERDICT_ACCEPT)
			rc = (*e = d.why, d.why.code);
		*res = d.res;
	}
	creto_update_decision_clear(&d);
	creto_update_ctx_close(c);
	return rc;
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
	if (rc != CRETO_OK) {
		if (rc == CRETO_EREJECT) {
			res->rule_id = CRETO_RULE_CONTAINER; /* a non-regular file or a link */
			snprintf(res->rule, sizeof res->rule, "%s", creto_update_rule_name(res->rule_id));
		}
		return rc;
	}
	rc = run_fd(fd, pkg, o, apply, res, e);
	close(fd);
	return rc;
}

int creto_update_verify_fd(int fd, const char *name, const creto_update_opts *o,
			   creto_update_result *res, creto_err *e)
{
	return run_fd(fd, name, o, 0, res, e);
}

int creto_update_apply_fd(int fd, const char *name, const creto_update_opts *o,
			  creto_update_result *res, creto_err *e)
{
	return run_fd(fd, name, o, 1, res, e);
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

int creto_state_init(const char *state_dir, const char *trust_path, const creto_clock *clock,
		     creto_err *e)
{
	creto_state_init_opts o;
	memset(&o, 0, sizeof o);
	o.clock = clock;
	return creto_state_init_ex(state_dir, trust_path, &o, e); /* auditlog.c */
}
