/*
 * config.c - serve's sections of the creto config file (docs/config.md):
 * one schema for the whole file (the gateway's sections are kept opaque
 * here and checked by the gateway's own parser), typed into
 * creto_serve_config, and the gateway's config text derived from it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "creto/serve.h"
#include "serve/sandbox.h"
#include "util/conf.h"
#include "util/file.h"

#define SEC(x) ((int64_t)(x) * 1000)

static const creto_conf_key k_schema[] = {
	{"hsm", "module", CRETO_CONF_PATH, 0, 0, 0},
	{"hsm", "token", CRETO_CONF_STR, 0, 0, 0},
	{"hsm", "pin_file", CRETO_CONF_PATH, 0, 0, 0},
	{"hsm", "endpoint", CRETO_CONF_STR, CRETO_CONF_MULTI, 0, 0},
	{"hsm", "deadline", CRETO_CONF_MS, 0, 50, SEC(60)},
	{"trust", "root", CRETO_CONF_PATH, 0, 0, 0},
	{"state", "dir", CRETO_CONF_PATH, 0, 0, 0},
	{"diode", "drop", CRETO_CONF_PATH, 0, 0, 0},
	{"diode", "settle", CRETO_CONF_MS, 0, 10, SEC(3600)},
	{"nhi", "store", CRETO_CONF_PATH, 0, 0, 0},
	{"nhi", "backup", CRETO_CONF_PATH, 0, 0, 0},
	{"nhi", "wrap_key", CRETO_CONF_STR, 0, 0, 0},
	{"nhi", "jwks", CRETO_CONF_PATH, 0, 0, 0},
	{"nhi", "issuer", CRETO_CONF_STR, 0, 0, 0},
	{"nhi", "audience", CRETO_CONF_STR, 0, 0, 0},
	{"isolation", "allow", CRETO_CONF_STR, CRETO_CONF_MULTI, 0, 0},
	{"isolation", "canary", CRETO_CONF_STR, CRETO_CONF_MULTI, 0, 0},
	{"isolation", "resolver", CRETO_CONF_STR, CRETO_CONF_MULTI, 0, 0},
	{"isolation", "dns_name", CRETO_CONF_STR, CRETO_CONF_MULTI, 0, 0},
	{"isolation", "timeout", CRETO_CONF_STR, 0, 0, 0},
	{"isolation", "resolv_conf", CRETO_CONF_PATH, 0, 0, 0},
	{"isolation", "link_local", CRETO_CONF_STR, 0, 0, 0},
	{"audit", "dir", CRETO_CONF_PATH, 0, 0, 0},
	{"audit", "checkpoint_key", CRETO_CONF_STR, 0, 0, 0},
	{"audit", "checkpoint_interval", CRETO_CONF_MS, 0, SEC(1), SEC(86400)},
	{"audit", "checkpoint_entries", CRETO_CONF_INT, 0, 1, 100000000},
	{"audit", "budget", CRETO_CONF_BYTES, 0, 0, 1LL << 50},
	{"serve", "user", CRETO_CONF_STR, 0, 0, 0},
	{"serve", "on_violation", CRETO_CONF_STR, 0, 0, 0},
	{"serve", "isolation_interval", CRETO_CONF_MS, 0, 100, SEC(86400)},
	{"serve", "active_probes", CRETO_CONF_BOOL, 0, 0, 0},
	{"serve", "log_format", CRETO_CONF_STR, 0, 0, 0},
	{"serve", "runtime_dir", CRETO_CONF_PATH, 0, 0, 0},
	{"serve", "policy_update", CRETO_CONF_STR, 0, 0, 0},
	{"serve", "nhi_update", CRETO_CONF_STR, 0, 0, 0},
	{"serve", "jwks_update", CRETO_CONF_STR, 0, 0, 0},
	{"serve", "stop_timeout", CRETO_CONF_MS, 0, 100, SEC(3600)},
	{"serve", "seccomp", CRETO_CONF_STR, 0, 0, 0},
	{"serve", "landlock", CRETO_CONF_STR, 0, 0, 0},
	/* the gateway's sections: checked by creto_gateway_config_parse */
	CRETO_CONF_GATEWAY_SECTIONS(CRETO_CONF_OPAQUE)
};

#define SECTION_NAME(s) s,
static const char *const k_serve_sections[] = {CRETO_CONF_SERVE_SECTIONS(SECTION_NAME)};
static const char *const k_gateway_sections[] = {CRETO_CONF_GATEWAY_SECTIONS(SECTION_NAME)};
#define NSCHEMA (sizeof k_schema / sizeof k_schema[0])

static int in_list(const char *s, const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, v[i]) == 0)
			return 1;
	return 0;
}

/* The shared section lists (util/conf.h) must name exactly the sections of
 * this schema: serve's keyed ones and the gateway's opaque ones.  The
 * gateway accepts the file by that list, so a section added here and not
 * there is caught on the first parse instead of in the field. */
static int schema_matches_lists(creto_err *e)
{
	for (size_t i = 0; i < NSCHEMA; i++) {
		const creto_conf_key *k = &k_schema[i];
		int ok = k->key != NULL ? in_list(k->section, k_serve_sections, sizeof k_serve_sections /
										     sizeof k_serve_sections[0])
					: in_list(k->section, k_gateway_sections,
						 sizeof k_gateway_sections / sizeof k_gateway_sections[0]);
		if (!ok)
			return creto_err_set(e, CRETO_EOP,
					     "internal: section [%s] of the serve schema is not in util/conf.h's list",
					     k->section);
	}
	for (size_t j = 0; j < sizeof k_serve_sections / sizeof k_serve_sections[0]; j++) {
		size_t i = 0;
		while (i < NSCHEMA && (k_schema[i].key == NULL || strcmp(k_schema[i].section, k_serve_sections[j])))
			i++;
		if (i == NSCHEMA)
			return creto_err_set(e, CRETO_EOP,
					     "internal: section [%s] of util/conf.h's serve list has no serve key",
					     k_serve_sections[j]);
	}
	return CRETO_OK;
}

static void defaults(creto_serve_config *c)
{
	snprintf(c->hsm_module, sizeof c->hsm_module, "%s", "/usr/lib/softhsm/libsofthsm2.so");
	snprintf(c->trust_root, sizeof c->trust_root, "%s", "/etc/creto/trust-root.json");
	snprintf(c->state_dir, sizeof c->state_dir, "%s", "/var/lib/creto/state");
	snprintf(c->diode_drop, sizeof c->diode_drop, "%s", "/var/lib/creto/drop");
	c->diode_settle_ms = 500;
	snprintf(c->nhi_store, sizeof c->nhi_store, "%s", "/var/lib/creto/nhi.db");
	creto_iso_config_default(&c->iso);
	snprintf(c->audit_dir, sizeof c->audit_dir, "%s", "/var/lib/creto/audit");
	c->audit_checkpoint_ms = SEC(3600);
	c->audit_checkpoint_entries = 1000;
	c->on_violation = CRETO_SERVE_ALERT;
	c->isolation_interval_ms = SEC(60);
	snprintf(c->runtime_dir, sizeof c->runtime_dir, "%s", "/run/creto");
	snprintf(c->policy_update, sizeof c->policy_update, "%s", "gateway-policy");
	snprintf(c->nhi_update, sizeof c->nhi_update, "%s", "nhi-backup");
	snprintf(c->jwks_update, sizeof c->jwks_update, "%s", "nhi-jwks");
	c->stop_timeout_ms = SEC(30);
	c->seccomp = CRETO_SANDBOX_SECCOMP_KILL;
	c->landlock = CRETO_SANDBOX_LANDLOCK_AUTO;
}

static int put(char *dst, size_t cap, const creto_conf_entry *en, creto_err *e)
{
	if (strlen(en->str) >= cap)
		return creto_err_set(e, CRETO_EUSAGE, "line %zu: %s: value longer than %zu bytes", en->line,
				     en->name, cap - 1);
	memcpy(dst, en->str, strlen(en->str) + 1);
	return CRETO_OK;
}

static int pick(const char *s, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

/* An update name (docs/crupdate.md: a target name). */
static int name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '_' || ch == '.'))
			return 0;
	}
	return s[0] != '.';
}

static int one(creto_serve_config *c, const creto_conf_entry *en, creto_err *e)
{
	const char *s = en->section, *k = en->name;
	if (!strcmp(s, "hsm")) {
		if (!strcmp(k, "module"))
			return put(c->hsm_module, sizeof c->hsm_module, en, e);
		if (!strcmp(k, "token"))
			return put(c->hsm_token, sizeof c->hsm_token, en, e);
		if (!strcmp(k, "pin_file"))
			return put(c->hsm_pin_file, sizeof c->hsm_pin_file, en, e);
		if (!strcmp(k, "deadline")) {
			c->hsm_deadline_ms = en->num;
			return CRETO_OK;
		}
		if (c->n_hsm_endpoint == CRETO_SERVE_ENDPOINTS_MAX)
			return creto_err_set(e, CRETO_EUSAGE, "line %zu: more than %d endpoints", en->line,
					     CRETO_SERVE_ENDPOINTS_MAX);
		return put(c->hsm_endpoint[c->n_hsm_endpoint++], CRETO_SERVE_STR_MAX, en, e);
	}
	if (!strcmp(s, "trust"))
		return put(c->trust_root, sizeof c->trust_root, en, e);
	if (!strcmp(s, "state"))
		return put(c->state_dir, sizeof c->state_dir, en, e);
	if (!strcmp(s, "diode")) {
		if (!strcmp(k, "drop"))
			return put(c->diode_drop, sizeof c->diode_drop, en, e);
		c->diode_settle_ms = en->num;
		return CRETO_OK;
	}
	if (!strcmp(s, "nhi")) {
		if (!strcmp(k, "store"))
			return put(c->nhi_store, sizeof c->nhi_store, en, e);
		if (!strcmp(k, "backup"))
			return put(c->nhi_backup, sizeof c->nhi_backup, en, e);
		if (!strcmp(k, "wrap_key"))
			return put(c->nhi_wrap_key, sizeof c->nhi_wrap_key, en, e);
		if (!strcmp(k, "jwks"))
			return put(c->nhi_jwks, sizeof c->nhi_jwks, en, e);
		if (!strcmp(k, "issuer"))
			return put(c->nhi_issuer, sizeof c->nhi_issuer, en, e);
		return put(c->nhi_audience, sizeof c->nhi_audience, en, e);
	}
	if (!strcmp(s, "audit")) {
		if (!strcmp(k, "dir"))
			return put(c->audit_dir, sizeof c->audit_dir, en, e);
		if (!strcmp(k, "checkpoint_key"))
			return put(c->audit_checkpoint_key, sizeof c->audit_checkpoint_key, en, e);
		if (!strcmp(k, "checkpoint_interval"))
			c->audit_checkpoint_ms = en->num;
		else if (!strcmp(k, "checkpoint_entries"))
			c->audit_checkpoint_entries = en->num;
		else
			c->audit_budget = en->num;
		return CRETO_OK;
	}
	if (!strcmp(s, "serve")) {
		if (!strcmp(k, "user"))
			return put(c->user, sizeof c->user, en, e);
		if (!strcmp(k, "on_violation")) {
			static const char *const v[] = {"alert", "refuse"};
			int i = pick(en->str, v, 2);
			if (i < 0)
				return creto_err_set(e, CRETO_EUSAGE, "line %zu: on_violation: want alert or refuse",
						     en->line);
			c->on_violation = i;
			return CRETO_OK;
		}
		if (!strcmp(k, "isolation_interval")) {
			c->isolation_interval_ms = en->num;
			return CRETO_OK;
		}
		if (!strcmp(k, "active_probes")) {
			c->active_probes = (int)en->num;
			return CRETO_OK;
		}
		if (!strcmp(k, "log_format")) {
			static const char *const v[] = {"text", "json"};
			int i = pick(en->str, v, 2);
			if (i < 0)
				return creto_err_set(e, CRETO_EUSAGE, "line %zu: log_format: want text or json",
						     en->line);
			c->log_json = i;
			return CRETO_OK;
		}
		if (!strcmp(k, "runtime_dir"))
			return put(c->runtime_dir, sizeof c->runtime_dir, en, e);
		if (!strcmp(k, "policy_update") || !strcmp(k, "nhi_update") || !strcmp(k, "jwks_update")) {
			if (!name_ok(en->str))
				return creto_err_set(e, CRETO_EUSAGE, "line %zu: %s: not an update name", en->line,
						     k);
			return put(k[0] == 'p' ? c->policy_update : k[0] == 'n' ? c->nhi_update : c->jwks_update,
				   CRETO_SERVE_STR_MAX, en, e);
		}
		if (!strcmp(k, "stop_timeout")) {
			c->stop_timeout_ms = en->num;
			return CRETO_OK;
		}
		if (!strcmp(k, "seccomp")) {
			static const char *const v[] = {"off", "kill", "eperm", "log"};
			int i = pick(en->str, v, 4);
			if (i < 0)
				return creto_err_set(e, CRETO_EUSAGE, "line %zu: seccomp: want kill, eperm, log or off",
						     en->line);
			c->seccomp = i;
			return CRETO_OK;
		}
		static const char *const v[] = {"auto", "require", "off"};
		int i = pick(en->str, v, 3);
		if (i < 0)
			return creto_err_set(e, CRETO_EUSAGE, "line %zu: landlock: want auto, require or off",
					     en->line);
		c->landlock = i;
		return CRETO_OK;
	}
	if (!strcmp(s, "gateway"))
		c->has_gateway = 1;
	return CRETO_OK;
}

/* [isolation]: its lines handed to the standalone parser as text, so both
 * forms share one set of rules; its "line N" is mapped back to the file. */
static int isolation(creto_serve_config *c, creto_err *e)
{
	size_t n = creto_conf_count(c->conf);
	for (size_t i = 0; i < n; i++) {
		const creto_conf_entry *en = creto_conf_at(c->conf, i);
		if (strcmp(en->section, "isolation") != 0 || en->name[0] == '\0')
			continue; /* a section marker has no name */
		if (creto_iso_config_set(&c->iso, en->name, en->str, e) != CRETO_OK) {
			char why[CRETO_ERR_MSG_MAX];
			snprintf(why, sizeof(why), "%s", e != NULL ? e->msg : "");
			return creto_err_set(e, CRETO_EUSAGE, "line %zu: [isolation] %s", en->line, why);
		}
	}
	return CRETO_OK;
}

int creto_serve_config_parse(const char *text, size_t len, creto_serve_config **out, creto_err *e)
{
	*out = NULL;
	if (schema_matches_lists(e) != CRETO_OK)
		return CRETO_EOP;
	creto_serve_config *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	defaults(c);
	int rc = creto_conf_parse(text, len, k_schema, NSCHEMA, &c->conf, e);
	for (size_t i = 0; rc == CRETO_OK && i < creto_conf_count(c->conf); i++) {
		const creto_conf_entry *en = creto_conf_at(c->conf, i);
		if (en->key != NULL || !strcmp(en->section, "gateway"))
			rc = one(c, en, e);
	}
	if (rc == CRETO_OK)
		rc = isolation(c, e);
	if (rc != CRETO_OK) {
		creto_serve_config_free(c);
		return rc;
	}
	*out = c;
	return CRETO_OK;
}

int creto_serve_config_load(const char *path, creto_serve_config **out, creto_err *e)
{
	*out = NULL;
	if (strlen(path) >= CRETO_SERVE_PATH_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "config path too long");
	uint8_t *buf = NULL;
	size_t n = 0;
	int rc = creto_file_read_follow(path, CRETO_CONF_MAX, &buf, &n, e);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "config %s", path);
	rc = creto_serve_config_parse((const char *)buf, n, out, e);
	free(buf);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "config %s", path);
	/* absolute: the sandbox rule for its directory and SIGHUP need it */
	char *abs = realpath(path, NULL);
	snprintf((*out)->path, sizeof (*out)->path, "%s", abs ? abs : path);
	free(abs);
	return CRETO_OK;
}

void creto_serve_config_free(creto_serve_config *c)
{
	if (c == NULL)
		return;
	creto_conf_free(c->conf);
	free(c);
}

/* ---- the gateway's text ---- */
typedef struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) CRETO_PRINTF(2, 3);
static void sb_add(sbuf *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if (b->p != NULL && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t nc = (b->cap + (size_t)n + 1) * 2;
		char *t = realloc(b->p, nc);
		if (t == NULL) {
			b->oom = 1;
			return;
		}
		b->p = t;
		b->cap = nc;
	}
}

int creto_serve_gateway_text(const creto_serve_config *cfg, const char *policy_path,
			     const char *const *listen, size_t nlisten, const char *const *models,
			     size_t nmodels, char **out, size_t *nrouted, creto_err *e)
{
	*out = NULL;
	*nrouted = 0;
	static const char *const secs[] = {"gateway", "upstream", "limits"};
	sbuf b = {0};
	sb_add(&b, "# derived by creto serve from %s: do not edit\n", cfg->path[0] ? cfg->path : "(text)");
	for (size_t si = 0; si < 3; si++) {
		sb_add(&b, "[%s]\n", secs[si]);
		int seen_nhi = 0, seen_jwks = 0, seen_iss = 0, seen_aud = 0, seen_policy = 0;
		for (size_t i = 0; i < creto_conf_count(cfg->conf); i++) {
			const creto_conf_entry *en = creto_conf_at(cfg->conf, i);
			if (strcmp(en->section, secs[si]) != 0 || en->name[0] == '\0')
				continue;
			const char *k = en->name, *v = en->str;
			if (si == 0) {
				if (!strcmp(k, "listen") && nlisten > 0)
					continue;
				seen_nhi |= !strcmp(k, "nhi_db");
				seen_jwks |= !strcmp(k, "jwks");
				seen_iss |= !strcmp(k, "issuer");
				seen_aud |= !strcmp(k, "audience");
				if (!strcmp(k, "jwks") && cfg->jwks_override[0])
					v = cfg->jwks_override;
				if (!strcmp(k, "policy")) {
					seen_policy = 1;
					if (policy_path != NULL)
						v = policy_path;
				}
			}
			if (si == 1 && !strcmp(k, "model") && en->arg != NULL) {
				if (models != NULL && !in_list(en->arg, models, nmodels))
					continue;
				(*nrouted)++;
			}
			if (en->arg != NULL)
				sb_add(&b, "%s %s = %s\n", k, en->arg, v);
			else
				sb_add(&b, "%s = %s\n", k, v);
		}
		if (si == 0) {
			for (size_t i = 0; i < nlisten; i++)
				sb_add(&b, "listen = %s\n", listen[i]);
			if (!seen_nhi)
				sb_add(&b, "nhi_db = %s\n", cfg->nhi_store);
			if (!seen_jwks && (cfg->jwks_override[0] || cfg->nhi_jwks[0]))
				sb_add(&b, "jwks = %s\n", cfg->jwks_override[0] ? cfg->jwks_override : cfg->nhi_jwks);
			if (!seen_iss && cfg->nhi_issuer[0])
				sb_add(&b, "issuer = %s\n", cfg->nhi_issuer);
			if (!seen_aud && cfg->nhi_audience[0])
				sb_add(&b, "audience = %s\n", cfg->nhi_audience);
			if (!seen_policy && policy_path != NULL)
				sb_add(&b, "policy = %s\n", policy_path);
		}
	}
	if (b.oom) {
		free(b.p);
		return creto_err_set(e, CRETO_EOP, "out of memory");
	}
	*out = b.p;
	return CRETO_OK;
}
