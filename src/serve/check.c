/*
 * check.c - `creto config check` and serve's start-up check: everything the
 * config file names is there, safe and usable, each problem named
 * ("section.key: what") so an operator fixes them all in one pass.
 *
 * The check opens things read-only and holds nothing afterwards; the rules
 * it applies belong to the components it asks (trust root, state, audit
 * reader, gateway --check); the file-mode rules are the project's secrets
 * rule (docs/serve.md "Config check").
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creto/audit.h"
#include "creto/gateway.h"
#include "creto/hsm.h"
#include "creto/keys.h"
#include "creto/nhi.h"
#include "creto/serve.h"
#include "creto/update.h"
#include "serve/hsmha.h"
#include "util/conf.h"

static void add(creto_serve_report *r, int sev, int code, const char *where, const char *fmt, ...)
	CRETO_PRINTF(5, 6);

static void add(creto_serve_report *r, int sev, int code, const char *where, const char *fmt, ...)
{
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 16;
		creto_serve_problem *v = realloc(r->v, nc * sizeof(*v));
		if (v == NULL)
			return; /* counted below, message lost */
		r->v = v;
		r->cap = nc;
	}
	creto_serve_problem *p = &r->v[r->n++];
	p->severity = sev;
	p->code = sev == CRETO_SERVE_ERROR ? code : 0;
	snprintf(p->where, sizeof p->where, "%s", where);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof p->msg, fmt, ap);
	va_end(ap);
	if (sev == CRETO_SERVE_ERROR)
		r->errors++;
	else
		r->warnings++;
}

static void add_err(creto_serve_report *r, const char *where, const creto_err *e)
{
	add(r, CRETO_SERVE_ERROR, e->code == CRETO_EOP ? CRETO_EOP : CRETO_EUSAGE, where, "%s", e->msg);
}

enum { F_FILE = 1, F_DIR = 2, F_SECRET = 4 };

/* path exists as the kind wanted; owned by root or the running user; not
 * writable by group or others (a file) / by others (a directory: the drop
 * directory may be group-writable for the diode's receiver); a secret
 * readable by nobody else. */
static int safe_path(creto_serve_report *r, const char *where, const char *path, unsigned kind)
{
	r->checked++;
	struct stat st;
	if (stat(path, &st) != 0) {
		add(r, CRETO_SERVE_ERROR, CRETO_EUSAGE, where, "%s: %s", path, strerror(errno));
		return -1;
	}
	if ((kind & F_DIR) && !S_ISDIR(st.st_mode)) {
		add(r, CRETO_SERVE_ERROR, CRETO_EUSAGE, where, "%s: not a directory", path);
		return -1;
	}
	if ((kind & F_FILE) && !S_ISREG(st.st_mode)) {
		add(r, CRETO_SERVE_ERROR, CRETO_EUSAGE, where, "%s: not a regular file", path);
		return -1;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		add(r, CRETO_SERVE_ERROR, CRETO_EUSAGE, where,
		    "%s: owned by uid %u, not by root or the running user (uid %u)", path,
		    (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	mode_t bad = (kind & F_SECRET) ? 077 : (kind & F_DIR) ? 002 : 022;
	if (st.st_mode & bad) {
		add(r, CRETO_SERVE_ERROR, CRETO_EUSAGE, where, "%s: mode %04o, want no %s bits (%s)", path,
		    (unsigned)(st.st_mode & 07777), (kind & F_SECRET) ? "group or other" : "group/other write",
		    (kind & F_SECRET) ? "chmod 600" : "chmod go-w");
		return -1;
	}
	return 0;
}

static int need(creto_serve_report *r, const char *where, const char *v)
{
	if (v[0] != '\0')
		return 1;
	add(r, CRETO_SERVE_ERROR, CRETO_EUSAGE, where, "required, not set");
	return 0;
}

static void check_models(const creto_serve_config *cfg, creto_serve_report *r)
{
	creto_update_model *m = NULL;
	size_t n = 0;
	creto_err e;
	creto_err_clear(&e);
	r->checked++;
	if (creto_update_models_list(cfg->state_dir, &m, &n, &e) != CRETO_OK) {
		add_err(r, "upstream.model", &e);
		return;
	}
	for (size_t i = 0; i < creto_conf_count(cfg->conf); i++) {
		const creto_conf_entry *en = creto_conf_at(cfg->conf, i);
		if (strcmp(en->section, "upstream") || strcmp(en->name, "model") || en->arg == NULL)
			continue;
		int found = 0;
		for (size_t j = 0; j < n && !found; j++)
			found = strcmp(m[j].name, en->arg) == 0;
		if (!found)
			add(r, CRETO_SERVE_WARN, 0, "upstream.model",
			    "line %zu: model '%s' has no installed, verified version in %s: not routed until a "
			    "model-weights update installs one",
			    en->line, en->arg, cfg->state_dir);
	}
	free(m);
}

static void check_gateway(const creto_serve_config *cfg, const creto_serve_check_opts *o,
			  creto_serve_report *r)
{
	if (!cfg->has_gateway) {
		add(r, CRETO_SERVE_WARN, 0, "gateway", "no [gateway] section: the gateway does not run");
		return;
	}
	for (size_t i = 0; i < creto_conf_count(cfg->conf); i++) {
		const creto_conf_entry *en = creto_conf_at(cfg->conf, i);
		if (!strcmp(en->section, "upstream") && !strcmp(en->name, "key_file"))
			(void)safe_path(r, "upstream.key_file", en->str, F_FILE | F_SECRET);
		if (!strcmp(en->section, "gateway") && !strcmp(en->name, "policy"))
			(void)safe_path(r, "gateway.policy", en->str, F_FILE);
	}
	char *text = NULL;
	size_t nr = 0;
	creto_err e;
	creto_err_clear(&e);
	r->checked++;
	if (creto_serve_gateway_text(cfg, NULL, NULL, 0, NULL, 0, &text, &nr, &e) != CRETO_OK) {
		add_err(r, "gateway", &e);
		return;
	}
	creto_gateway_config *gc = NULL;
	if (creto_gateway_config_parse(text, strlen(text), &gc, &e) != CRETO_OK) {
		free(text);
		add_err(r, "gateway", &e);
		return;
	}
	free(text);
	creto_gateway_opts go = {.clock = o ? o->clock : NULL, .check_only = 1, .issuer = o ? o->issuer : NULL};
	/* a pkcs11: issuer key on the [hsm] endpoints is opened through them,
	 * as serve does (no thread is left: creto_hsm_ha_open_keys) */
	const char *iss = serve_issuer_key(cfg);
	creto_hsm_ha *ha = NULL;
	creto_signer *is = NULL;
	if (go.issuer == NULL && cfg->n_hsm_endpoint > 0 && creto_keys_is_pkcs11(iss) &&
	    !(o != NULL && o->no_keys)) {
		if (serve_hsm_open(cfg, &iss, 1, NULL, &ha, &e) != CRETO_OK ||
		    creto_hsm_ha_signer(ha, 0, &is, &e) != CRETO_OK) {
			creto_err_ctx(&e, "issuer_key through [hsm] endpoint");
			add_err(r, "gateway", &e);
			creto_hsm_ha_close(ha);
			creto_gateway_config_free(gc);
			return;
		}
		go.issuer = is;
	}
	creto_gateway *g = NULL;
	if (creto_gateway_new(gc, &go, &g, &e) != CRETO_OK)
		add_err(r, "gateway", &e);
	creto_gateway_free(g);
	creto_gateway_config_free(gc);
	creto_signer_free(is);
	creto_hsm_ha_close(ha);
}

/* Open the key uri (a pkcs11: signing key) through endpoint ep alone, as
 * the failover does (its module instead of the URI's or [hsm] module, the
 * HSM's mechanism check, each call under the deadline: a hung endpoint
 * cannot hang the check): an Ed25519 key behind a module that lacks
 * CKM_EDDSA is an error naming the mechanism.  An endpoint that does not
 * answer is a warning (serve starts on the others and probes it). */
static void endpoint_key(creto_serve_report *r, const creto_serve_config *cfg,
			 const creto_hsm_endpoint *ep, const char *where, const char *uri)
{
	if (uri[0] == '\0' || !creto_keys_is_pkcs11(uri))
		return;
	creto_err ce;
	creto_err_clear(&ce);
	r->checked++;
	creto_hsm_opts o = {.pin_file = cfg->hsm_pin_file[0] ? cfg->hsm_pin_file : NULL,
			    .endpoints = ep,
			    .nendpoints = 1,
			    .deadline_ms = (unsigned)cfg->hsm_deadline_ms};
	creto_hsm_ha *g = NULL;
	int rc = creto_hsm_ha_open_keys(&uri, 1, &o, &g, &ce);
	creto_hsm_ha_close(g);
	if (rc == CRETO_OK)
		return;
	char en[600];
	creto_hsm_endpoint_format(ep, en, sizeof en);
	creto_err_ctx(&ce, "%s through endpoint %s", where, en);
	if (rc == CRETO_EOP)
		add(r, CRETO_SERVE_WARN, 0, "hsm.endpoint", "not checked: %s", ce.msg);
	else
		add_err(r, "hsm.endpoint", &ce);
}

int creto_serve_check(const creto_serve_config *cfg, const creto_serve_check_opts *o,
		      creto_serve_report *r, creto_err *e)
{
	memset(r, 0, sizeof(*r));
	creto_err ce;
	int no_keys = o != NULL && o->no_keys;
	/* with [hsm] endpoint lines serve signs through them (serve/hsmha.h):
	 * [hsm] module is then used only by the NHI wrap key */
	int via_ep = cfg->n_hsm_endpoint > 0;
	int ck_p11 = creto_keys_is_pkcs11(cfg->audit_checkpoint_key);
	int uses_p11 = (ck_p11 && !via_ep) || creto_keys_is_pkcs11(cfg->nhi_wrap_key);
	creto_keys_opts ko = {.module_path = cfg->hsm_module[0] ? cfg->hsm_module : NULL,
			      .pin_file = cfg->hsm_pin_file[0] ? cfg->hsm_pin_file : NULL};

	if (cfg->path[0])
		(void)safe_path(r, "config", cfg->path, F_FILE);

	/* [hsm] */
	if (uses_p11) {
		(void)safe_path(r, "hsm.module", cfg->hsm_module, F_FILE);
		if (need(r, "hsm.pin_file", cfg->hsm_pin_file))
			(void)safe_path(r, "hsm.pin_file", cfg->hsm_pin_file, F_FILE | F_SECRET);
	} else if (via_ep && ck_p11) {
		if (need(r, "hsm.pin_file", cfg->hsm_pin_file))
			(void)safe_path(r, "hsm.pin_file", cfg->hsm_pin_file, F_FILE | F_SECRET);
	} else if (cfg->hsm_pin_file[0]) {
		(void)safe_path(r, "hsm.pin_file", cfg->hsm_pin_file, F_FILE | F_SECRET);
	}
	for (size_t i = 0; i < cfg->n_hsm_endpoint; i++) {
		creto_hsm_endpoint ep;
		creto_err_clear(&ce);
		r->checked++;
		if (creto_hsm_endpoint_parse(cfg->hsm_endpoint[i], &ep, &ce) != CRETO_OK) {
			add_err(r, "hsm.endpoint", &ce);
			continue;
		}
		/* every pkcs11: signing key serve opens through the endpoints
		 * must be usable through each: a remote module lacking its
		 * mechanism is named now, not at failover time.  The NHI wrap
		 * key (AES key wrap, which p11-kit's remoting lacks) stays on
		 * [hsm] module, a local token (docs/hsm-remote.md) */
		if (!no_keys) {
			endpoint_key(r, cfg, &ep, "audit.checkpoint_key", cfg->audit_checkpoint_key);
			if (cfg->has_gateway)
				endpoint_key(r, cfg, &ep, "gateway.issuer_key", serve_issuer_key(cfg));
		}
	}

	/* [trust] */
	if (safe_path(r, "trust.root", cfg->trust_root, F_FILE) == 0) {
		creto_trust_root *root = NULL;
		creto_err_clear(&ce);
		r->checked++;
		if (creto_trust_root_load(cfg->trust_root, &root, &ce) != CRETO_OK)
			add_err(r, "trust.root", &ce);
		creto_trust_root_free(root);
	}

	/* [state] */
	int state_ok = 0;
	if (safe_path(r, "state.dir", cfg->state_dir, F_DIR) == 0) {
		char *js = NULL;
		creto_err_clear(&ce);
		r->checked++;
		if (creto_update_status(cfg->state_dir, 0, &js, &ce) != CRETO_OK)
			add_err(r, "state.dir", &ce);
		else
			state_ok = 1;
		free(js);
	}

	/* [diode] */
	(void)safe_path(r, "diode.drop", cfg->diode_drop, F_DIR);

	/* [nhi] */
	if (safe_path(r, "nhi.store", cfg->nhi_store, F_FILE) == 0) {
		creto_nhi_store *st = NULL;
		creto_err_clear(&ce);
		r->checked++;
		if (creto_nhi_store_open(cfg->nhi_store, 1, &st, &ce) != CRETO_OK)
			add_err(r, "nhi.store", &ce);
		creto_nhi_store_free(st);
	}
	if (cfg->nhi_jwks[0] && safe_path(r, "nhi.jwks", cfg->nhi_jwks, F_FILE) == 0) {
		creto_jwks *j = NULL;
		creto_err_clear(&ce);
		r->checked++;
		if (creto_jwks_load(cfg->nhi_jwks, &j, &ce) != CRETO_OK)
			add_err(r, "nhi.jwks", &ce);
		creto_jwks_free(j);
	}
	if (cfg->nhi_backup[0] && safe_path(r, "nhi.backup", cfg->nhi_backup, F_FILE | F_SECRET) == 0 &&
	    need(r, "nhi.wrap_key", cfg->nhi_wrap_key) && !no_keys) {
		creto_nhi_wrapper w;
		creto_nhi_wrapper_hsm(&w, cfg->nhi_wrap_key, &ko);
		creto_nhi_store *st = NULL;
		creto_err_clear(&ce);
		r->checked++;
		if (creto_nhi_backup_open(cfg->nhi_backup, &w, &st, NULL, &ce) != CRETO_OK)
			add_err(r, "nhi.backup", &ce);
		creto_nhi_store_free(st);
	}

	/* [isolation] (parsed with the file) */
	if (cfg->iso.resolv_conf_set)
		(void)safe_path(r, "isolation.resolv_conf", cfg->iso.resolv_conf, F_FILE);

	/* [audit] */
	if (safe_path(r, "audit.dir", cfg->audit_dir, F_DIR) == 0) {
		creto_audit_reader *ar = NULL;
		creto_err_clear(&ce);
		r->checked++;
		if (creto_audit_reader_open(cfg->audit_dir, &ar, &ce) != CRETO_OK)
			add_err(r, "audit.dir", &ce);
		creto_audit_reader_close(ar);
	}
	if (cfg->audit_checkpoint_key[0]) {
		int p11 = creto_keys_is_pkcs11(cfg->audit_checkpoint_key);
		if (!p11 && cfg->audit_checkpoint_key[0] != '/')
			add(r, CRETO_SERVE_ERROR, CRETO_EUSAGE, "audit.checkpoint_key",
			    "want a pkcs11: URI or an absolute key file path");
		else if (!p11 && safe_path(r, "audit.checkpoint_key", cfg->audit_checkpoint_key,
					   F_FILE | F_SECRET) != 0)
			;
		else if (!no_keys && !(p11 && via_ep)) { /* through the endpoints: checked above */
			creto_signer *s = NULL;
			creto_err_clear(&ce);
			r->checked++;
			if (creto_keys_open_signer(cfg->audit_checkpoint_key, &ko, &s, &ce) != CRETO_OK)
				add_err(r, "audit.checkpoint_key", &ce);
			creto_signer_free(s);
		}
	} else {
		add(r, CRETO_SERVE_WARN, 0, "audit.checkpoint_key",
		    "not set: no signed checkpoints (the log is still hash-chained)");
	}

	/* [serve] */
	if (cfg->user[0]) {
		r->checked++;
		struct passwd *pw = getpwnam(cfg->user);
		if (pw == NULL)
			add(r, CRETO_SERVE_ERROR, CRETO_EUSAGE, "serve.user", "no such user '%s'", cfg->user);
		else if (pw->pw_uid == 0)
			add(r, CRETO_SERVE_ERROR, CRETO_EUSAGE, "serve.user", "'%s' is root", cfg->user);
	}

	/* the gateway, then the models it routes to */
	check_gateway(cfg, o, r);
	if (cfg->has_gateway && state_ok)
		check_models(cfg, r);

	if (r->errors == 0)
		return CRETO_OK;
	int worst = CRETO_EOP;
	const creto_serve_problem *first = NULL;
	for (size_t i = 0; i < r->n; i++) {
		if (r->v[i].severity != CRETO_SERVE_ERROR)
			continue;
		if (first == NULL)
			first = &r->v[i];
		if (r->v[i].code == CRETO_EUSAGE)
			worst = CRETO_EUSAGE;
	}
	if (first == NULL)
		return creto_err_set(e, CRETO_EOP, "config check: %zu problems (out of memory listing them)",
				     r->errors);
	return creto_err_set(e, worst, "config check: %zu problem%s, first: %s: %s", r->errors,
			     r->errors == 1 ? "" : "s", first->where, first->msg);
}

void creto_serve_report_clear(creto_serve_report *r)
{
	if (r == NULL)
		return;
	free(r->v);
	memset(r, 0, sizeof(*r));
}
