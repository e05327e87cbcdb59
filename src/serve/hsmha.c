/*
 * hsmha.c - serve's signing keys through the [hsm] endpoint failover
 * (serve/hsmha.h).
 */
#include "serve/hsmha.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "creto/keys.h"
#include "util/conf.h"

const char *serve_issuer_key(const creto_serve_config *cfg)
{
	const char *v = "";
	for (size_t i = 0; i < creto_conf_count(cfg->conf); i++) {
		const creto_conf_entry *en = creto_conf_at(cfg->conf, i);
		if (!strcmp(en->section, "gateway") && !strcmp(en->name, "issuer_key") && en->str != NULL)
			v = en->str;
	}
	return v;
}

size_t serve_hsm_keys(const creto_serve_config *cfg, const char *uris[2], int *ckpt, int *issuer)
{
	size_t n = 0;
	*ckpt = *issuer = -1;
	if (cfg->n_hsm_endpoint == 0)
		return 0;
	if (creto_keys_is_pkcs11(cfg->audit_checkpoint_key)) {
		*ckpt = (int)n;
		uris[n++] = cfg->audit_checkpoint_key;
	}
	const char *iss = cfg->has_gateway ? serve_issuer_key(cfg) : "";
	if (creto_keys_is_pkcs11(iss)) {
		*issuer = (int)n;
		uris[n++] = iss;
	}
	return n;
}

int serve_hsm_open(const creto_serve_config *cfg, const char *const *uris, size_t n,
		   const creto_event_sink *sink, creto_hsm_ha **out, creto_err *e)
{
	*out = NULL;
	creto_hsm_endpoint ep[CRETO_HSM_ENDPOINTS_MAX];
	if (cfg->n_hsm_endpoint > CRETO_HSM_ENDPOINTS_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "hsm.endpoint: at most %d endpoints",
				     CRETO_HSM_ENDPOINTS_MAX);
	for (size_t i = 0; i < cfg->n_hsm_endpoint; i++) {
		int rc = creto_hsm_endpoint_parse(cfg->hsm_endpoint[i], &ep[i], e);
		if (rc != CRETO_OK)
			return creto_err_ctx(e, "hsm.endpoint");
	}
	creto_hsm_opts o = {
		.pin_file = cfg->hsm_pin_file[0] ? cfg->hsm_pin_file : NULL,
		.events = sink,
		.endpoints = ep,
		.nendpoints = cfg->n_hsm_endpoint,
		.deadline_ms = (unsigned)cfg->hsm_deadline_ms,
	};
	return creto_hsm_ha_open_keys(uris, n, &o, out, e);
}

char *serve_hsm_status_json(creto_hsm_ha *g)
{
	creto_hsm_ha_stats st;
	creto_hsm_ha_stats_get(g, &st);
	json_t *eps = json_array();
	const char *active = "";
	creto_hsm_ha_endpoint_status es[CRETO_HSM_ENDPOINTS_MAX];
	size_t n = creto_hsm_ha_endpoints(g);
	for (size_t i = 0; i < n && i < CRETO_HSM_ENDPOINTS_MAX; i++) {
		creto_hsm_ha_endpoint_get(g, i, &es[i]);
		if (es[i].active)
			active = es[i].name;
		json_array_append_new(eps, json_pack("{s:s, s:b, s:b, s:I, s:s}", "name", es[i].name, "up",
						     es[i].up, "active", es[i].active, "downs",
						     (json_int_t)es[i].downs, "reason", es[i].reason));
	}
	json_t *o = json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:I}", "token", creto_hsm_ha_token_label(g),
			      "active", active, "endpoints", eps, "signs", (json_int_t)st.ops, "sign_failures",
			      (json_int_t)st.failed, "sign_retries", (json_int_t)st.retries, "failovers",
			      (json_int_t)st.failovers);
	char *s = o != NULL ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	return s;
}

struct mb {
	char *p;
	size_t n, cap;
	int oom;
};

static void mput(struct mb *b, const char *fmt, ...) CRETO_PRINTF(2, 3);

static void mput(struct mb *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int k = b->oom ? 0 : vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		if (b->oom || k < 0)
			return;
		if ((size_t)k < b->cap - b->n) {
			b->n += (size_t)k;
			return;
		}
		char *np = realloc(b->p, b->cap * 2 + (size_t)k);
		if (np == NULL) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = b->cap * 2 + (size_t)k;
	}
}

/* A label value with \, " and newlines escaped (exposition format 0.0.4). */
static void label_value(const char *in, char *out, size_t cap)
{
	size_t o = 0;
	for (; *in && o + 3 < cap; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}

int serve_hsm_metrics(creto_hsm_ha *g, char **out, size_t *len)
{
	struct mb b = {malloc(2048), 0, 2048, 0};
	if (b.p == NULL)
		return -1;
	creto_hsm_ha_stats st;
	creto_hsm_ha_stats_get(g, &st);
	size_t n = creto_hsm_ha_endpoints(g);
	creto_hsm_ha_endpoint_status es[CRETO_HSM_ENDPOINTS_MAX];
	char lv[CRETO_HSM_ENDPOINTS_MAX][1300];
	for (size_t i = 0; i < n && i < CRETO_HSM_ENDPOINTS_MAX; i++) {
		creto_hsm_ha_endpoint_get(g, i, &es[i]);
		label_value(es[i].name, lv[i], sizeof lv[i]);
	}
	mput(&b, "# HELP creto_hsm_endpoint_up 1 when the HSM endpoint answers (serve's signing keys).\n"
		 "# TYPE creto_hsm_endpoint_up gauge\n");
	for (size_t i = 0; i < n && i < CRETO_HSM_ENDPOINTS_MAX; i++)
		mput(&b, "creto_hsm_endpoint_up{endpoint=\"%s\"} %d\n", lv[i], es[i].up);
	mput(&b, "# HELP creto_hsm_endpoint_active 1 for the endpoint signatures go to.\n"
		 "# TYPE creto_hsm_endpoint_active gauge\n");
	for (size_t i = 0; i < n && i < CRETO_HSM_ENDPOINTS_MAX; i++)
		mput(&b, "creto_hsm_endpoint_active{endpoint=\"%s\"} %d\n", lv[i], es[i].active);
	mput(&b, "# HELP creto_hsm_endpoint_downs_total Times the endpoint was marked down.\n"
		 "# TYPE creto_hsm_endpoint_downs_total counter\n");
	for (size_t i = 0; i < n && i < CRETO_HSM_ENDPOINTS_MAX; i++)
		mput(&b, "creto_hsm_endpoint_downs_total{endpoint=\"%s\"} %llu\n", lv[i],
		     (unsigned long long)es[i].downs);
	mput(&b,
	     "# HELP creto_hsm_failovers_total Changes of the active HSM endpoint.\n"
	     "# TYPE creto_hsm_failovers_total counter\ncreto_hsm_failovers_total %llu\n"
	     "# HELP creto_hsm_signs_total Signatures asked of the HSM endpoints.\n"
	     "# TYPE creto_hsm_signs_total counter\ncreto_hsm_signs_total %llu\n"
	     "# HELP creto_hsm_sign_retries_total Signatures retried on a second endpoint.\n"
	     "# TYPE creto_hsm_sign_retries_total counter\ncreto_hsm_sign_retries_total %llu\n"
	     "# HELP creto_hsm_sign_failures_total Signatures that failed on every endpoint tried.\n"
	     "# TYPE creto_hsm_sign_failures_total counter\ncreto_hsm_sign_failures_total %llu\n",
	     (unsigned long long)st.failovers, (unsigned long long)st.ops,
	     (unsigned long long)st.retries, (unsigned long long)st.failed);
	if (b.oom) {
		free(b.p);
		return -1;
	}
	*out = b.p;
	*len = b.n;
	return 0;
}
