/*
 * config.c - the gateway's sections of the creto config file
 * (docs/config.md) and its policy file (docs/gateway.md "Policy").
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "creto/nhi_oauth.h"
#include "gateway/internal.h"
#include "util/conf.h"
#include "util/file.h"

#define MS(x) ((int64_t)(x))
#define HOUR MS(3600000)

static const creto_conf_key k_schema[] = {
	{"gateway", "listen", CRETO_CONF_STR, CRETO_CONF_MULTI, 0, 0},
	{"gateway", "admin_listen", CRETO_CONF_STR, 0, 0, 0},
	{"gateway", "workers", CRETO_CONF_INT, 0, 1, 16},
	{"gateway", "nhi_db", CRETO_CONF_PATH, 0, 0, 0},
	{"gateway", "jwks", CRETO_CONF_PATH, 0, 0, 0},
	{"gateway", "issuer", CRETO_CONF_STR, 0, 0, 0},
	{"gateway", "audience", CRETO_CONF_STR, 0, 0, 0},
	{"gateway", "token_cache", CRETO_CONF_INT, 0, 0, 1000000},
	{"gateway", "policy", CRETO_CONF_PATH, 0, 0, 0},
	{"gateway", "max_body", CRETO_CONF_BYTES, 0, 1024, 1LL << 30},
	{"gateway", "max_head", CRETO_CONF_BYTES, 0, 1024, 1LL << 20},
	{"gateway", "max_headers", CRETO_CONF_INT, 0, 4, 1000},
	{"gateway", "header_timeout", CRETO_CONF_MS, 0, 100, HOUR},
	{"gateway", "body_timeout", CRETO_CONF_MS, 0, 100, HOUR},
	{"gateway", "idle_timeout", CRETO_CONF_MS, 0, 100, HOUR},
	{"gateway", "drain_timeout", CRETO_CONF_MS, 0, 0, HOUR},
	{"gateway", "max_connections", CRETO_CONF_INT, 0, 1, 1000000},
	{"gateway", "prompt_hash", CRETO_CONF_BOOL, 0, 0, 0},
	{"gateway", "access_log", CRETO_CONF_BOOL, 0, 0, 0},
	{"gateway", "refusal_interval", CRETO_CONF_MS, 0, 100, HOUR},
	{"gateway", "token_endpoint", CRETO_CONF_BOOL, 0, 0, 0},
	{"gateway", "issuer_key", CRETO_CONF_STR, 0, 0, 0},
	{"gateway", "issuer_module", CRETO_CONF_PATH, 0, 0, 0},
	{"gateway", "issuer_pin_file", CRETO_CONF_PATH, 0, 0, 0},
	{"gateway", "issuer_url", CRETO_CONF_STR, 0, 0, 0},
	{"gateway", "token_url", CRETO_CONF_STR, 0, 0, 0},
	{"gateway", "token_ttl", CRETO_CONF_MS, 0, 1000, MS(CRETO_OAUTH_TTL_MAX) * 1000},
	{"gateway", "replay_state", CRETO_CONF_PATH, 0, 0, 0},
	{"gateway", "replay_capacity", CRETO_CONF_INT, 0, 16, 10000000},
	{"gateway", "token_rate_agent", CRETO_CONF_INT, 0, -1, 1000000},
	{"gateway", "token_rate_source", CRETO_CONF_INT, 0, -1, 1000000},
	{"gateway", "token_failure_weight", CRETO_CONF_INT, 0, 0, 1000},
	{"gateway", "tls_cert", CRETO_CONF_PATH, 0, 0, 0},
	{"gateway", "tls_key", CRETO_CONF_PATH, 0, 0, 0},
	{"gateway", "tls_min_version", CRETO_CONF_STR, 0, 0, 0},
	{"gateway", "busy_poll_us", CRETO_CONF_INT, 0, 0, 10000},
	{"upstream", "model", CRETO_CONF_STR, CRETO_CONF_NAMED, 0, 0},
	{"upstream", "key_file", CRETO_CONF_PATH, 0, 0, 0},
	{"upstream", "connect_timeout", CRETO_CONF_MS, 0, 10, MS(60000)},
	{"upstream", "response_timeout", CRETO_CONF_MS, 0, 100, HOUR},
	{"upstream", "stream_idle_timeout", CRETO_CONF_MS, 0, 100, HOUR},
	{"upstream", "health_interval", CRETO_CONF_MS, 0, 100, HOUR},
	{"upstream", "eject_time", CRETO_CONF_MS, 0, 100, HOUR},
	{"upstream", "max_fails", CRETO_CONF_INT, 0, 1, 1000},
	{"upstream", "stream_window", CRETO_CONF_BYTES, 0, 4096, 1LL << 24},
	{"upstream", "pool_idle", CRETO_CONF_INT, 0, 0, 10000},
	{"upstream", "inject_usage", CRETO_CONF_BOOL, 0, 0, 0},
	{"upstream", "saturated_waiting", CRETO_CONF_INT, 0, 0, 1000000},
	{"upstream", "saturated_kv_percent", CRETO_CONF_INT, 0, 0, 100},
	{"upstream", "prefix_affinity", CRETO_CONF_BOOL, 0, 0, 0},
	{"upstream", "affinity_bytes", CRETO_CONF_BYTES, 0, 16, 1LL << 20},
	{"limits", "concurrency", CRETO_CONF_INT, 0, 0, 1000000},
	{"limits", "requests_per_minute", CRETO_CONF_INT, 0, 0, 100000000},
	{"limits", "tokens_per_minute", CRETO_CONF_INT, 0, 0, 1000000000000LL},
	{"limits", "max_tokens", CRETO_CONF_INT, 0, 0, 100000000},
	{"limits", "default_max_tokens", CRETO_CONF_INT, 0, 1, 100000000},
	/* the sections `creto serve` reads from the same file: syntax-checked only */
	CRETO_CONF_SERVE_SECTIONS(CRETO_CONF_OPAQUE)
};

static void defaults(creto_gateway_config *c)
{
	c->workers = 2;
	snprintf(c->audience, sizeof(c->audience), "%s", CRETO_NHI_DEFAULT_AUDIENCE);
	c->token_cache = 4096;
	c->body_max = 16LL << 20;
	c->head_max = 16384;
	c->headers_max = 64;
	c->line_max = 8192;
	c->header_timeout_ms = 10000;
	c->body_timeout_ms = 30000;
	c->idle_timeout_ms = 60000;
	c->drain_ms = 10000;
	c->max_connections = 20000;
	c->connect_timeout_ms = 2000;
	c->response_timeout_ms = 600000;
	c->stream_idle_ms = 300000;
	c->health_interval_ms = 5000;
	c->refusal_interval_ms = 10000;
	c->eject_ms = 10000;
	c->max_fails = 2;
	c->stream_window = 65536;
	c->pool_idle = 64;
	c->inject_usage = 1;
	c->affinity_bytes = 1024;
	c->default_max_tokens = 1024;
	c->deflt.endpoints = GW_EP_ALL;
	c->token_ttl = CRETO_OAUTH_TTL_DEFAULT;
	c->replay_capacity = CRETO_OAUTH_REPLAY_DEFAULT;
	c->tls_min = 12;
}

int gw_parse_listen(const char *s, gw_listen *out)
{
	memset(out, 0, sizeof(*out));
	if (strlen(s) >= sizeof(out->text))
		return -1;
	snprintf(out->text, sizeof(out->text), "%s", s);
	if (strncmp(s, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&out->addr;
		const char *p = s + 5;
		if (p[0] != '/' || strlen(p) >= sizeof(un->sun_path))
			return -1;
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, p, strlen(p) + 1);
		out->alen = (socklen_t)sizeof(*un);
		out->is_unix = 1;
		return 0;
	}
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	size_t hl;
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - s - 1);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hl);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		hl = (size_t)(colon - s);
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, s, hl);
	}
	host[hl] = '\0';
	const char *ps = colon + 1;
	size_t d = strspn(ps, "0123456789");
	if (d == 0 || d > 5 || ps[d] != '\0')
		return -1;
	long port = strtol(ps, NULL, 10);
	if (port > 65535)
		return -1;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&out->addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&out->addr;
	if (s[0] != '[' && inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		out->alen = sizeof(*a4);
	} else if (s[0] == '[' && inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		out->alen = sizeof(*a6);
	} else {
		return -1;
	}
	return 0;
}

int gw_parse_replica(const char *s, gw_replica_cfg *out)
{
	memset(out, 0, sizeof(*out));
	if (strncmp(s, "http://", 7) != 0 || strlen(s) >= sizeof(out->url))
		return -1;
	char hp[GW_URL_MAX];
	snprintf(hp, sizeof(hp), "%s", s + 7);
	size_t n = strlen(hp);
	if (n > 0 && hp[n - 1] == '/')
		hp[--n] = '\0';
	if (strchr(hp, '/') != NULL || strchr(hp, '@') != NULL)
		return -1; /* no path prefix, no userinfo */
	gw_listen l;
	if (gw_parse_listen(hp, &l) != 0 || l.is_unix)
		return -1;
	if (((struct sockaddr_in *)&l.addr)->sin_port == 0)
		return -1;
	snprintf(out->url, sizeof(out->url), "%s", s);
	snprintf(out->hostport, sizeof(out->hostport), "%s", hp);
	out->addr = l.addr;
	out->alen = l.alen;
	return 0;
}

static int model_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > GW_MODEL_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      strchr("._:/-", ch)))
			return 0;
	}
	return 1;
}

static int copy_str(char *dst, size_t cap, const creto_conf_entry *en, creto_err *e)
{
	if (strlen(en->str) >= cap)
		return creto_err_set(e, CRETO_EUSAGE, "line %zu: %s: too long", en->line, en->name);
	memcpy(dst, en->str, strlen(en->str) + 1);
	return CRETO_OK;
}

static int apply(creto_gateway_config *c, const creto_conf_entry *en, creto_err *e)
{
	const char *k = en->name;
	int64_t v = en->num;
	if (en->key == NULL) {
		/* a section of another component, or a section marker; serve's
		 * [nhi] store and jwks serve a standalone gateway too */
		if (en->section != NULL && en->name != NULL && en->str != NULL && strcmp(en->section, "nhi") == 0) {
			if (strcmp(en->name, "store") == 0)
				return copy_str(c->nhi_store_fb, sizeof(c->nhi_store_fb), en, e);
			if (strcmp(en->name, "jwks") == 0)
				return copy_str(c->nhi_jwks_fb, sizeof(c->nhi_jwks_fb), en, e);
		}
		return CRETO_OK;
	}
	if (strcmp(en->section, "gateway") == 0) {
		if (!strcmp(k, "listen")) {
			if (c->nlisten == GW_LISTEN_MAX)
				return creto_err_set(e, CRETO_EUSAGE, "line %zu: more than %d listen entries",
						     en->line, GW_LISTEN_MAX);
			if (gw_parse_listen(en->str, &c->listen[c->nlisten]) != 0)
				return creto_err_set(e, CRETO_EUSAGE,
						     "line %zu: listen: want IP:PORT, [IPv6]:PORT or unix:/path, not '%.64s'",
						     en->line, en->str);
			c->nlisten++;
		} else if (!strcmp(k, "admin_listen")) {
			if (gw_parse_listen(en->str, &c->admin) != 0)
				return creto_err_set(e, CRETO_EUSAGE,
						     "line %zu: admin_listen: want IP:PORT, [IPv6]:PORT or unix:/path, not '%.64s'",
						     en->line, en->str);
			c->has_admin = 1;
		} else if (!strcmp(k, "workers")) {
			c->workers = (int)v;
		} else if (!strcmp(k, "nhi_db")) {
			return copy_str(c->nhi_db, sizeof(c->nhi_db), en, e);
		} else if (!strcmp(k, "jwks")) {
			return copy_str(c->jwks, sizeof(c->jwks), en, e);
		} else if (!strcmp(k, "issuer")) {
			return copy_str(c->issuer, sizeof(c->issuer), en, e);
		} else if (!strcmp(k, "audience")) {
			return copy_str(c->audience, sizeof(c->audience), en, e);
		} else if (!strcmp(k, "token_cache")) {
			c->token_cache = v;
		} else if (!strcmp(k, "policy")) {
			return copy_str(c->policy_path, sizeof(c->policy_path), en, e);
		} else if (!strcmp(k, "max_body")) {
			c->body_max = v;
		} else if (!strcmp(k, "max_head")) {
			c->head_max = v;
			if (c->line_max > v)
				c->line_max = v;
		} else if (!strcmp(k, "max_headers")) {
			c->headers_max = v;
		} else if (!strcmp(k, "header_timeout")) {
			c->header_timeout_ms = v;
		} else if (!strcmp(k, "body_timeout")) {
			c->body_timeout_ms = v;
		} else if (!strcmp(k, "idle_timeout")) {
			c->idle_timeout_ms = v;
		} else if (!strcmp(k, "drain_timeout")) {
			c->drain_ms = v;
		} else if (!strcmp(k, "busy_poll_us")) {
			c->busy_poll_us = v;
		} else if (!strcmp(k, "max_connections")) {
			c->max_connections = v;
		} else if (!strcmp(k, "prompt_hash")) {
			c->prompt_hash = (int)v;
		} else if (!strcmp(k, "access_log")) {
			c->access_log = (int)v;
		} else if (!strcmp(k, "refusal_interval")) {
			c->refusal_interval_ms = v;
		} else if (!strcmp(k, "token_endpoint")) {
			c->token_endpoint = (int)v;
		} else if (!strcmp(k, "issuer_key")) {
			return copy_str(c->issuer_key, sizeof(c->issuer_key), en, e);
		} else if (!strcmp(k, "issuer_module")) {
			return copy_str(c->issuer_module, sizeof(c->issuer_module), en, e);
		} else if (!strcmp(k, "issuer_pin_file")) {
			return copy_str(c->issuer_pin_file, sizeof(c->issuer_pin_file), en, e);
		} else if (!strcmp(k, "issuer_url")) {
			return copy_str(c->issuer_url, sizeof(c->issuer_url), en, e);
		} else if (!strcmp(k, "token_url")) {
			return copy_str(c->token_url, sizeof(c->token_url), en, e);
		} else if (!strcmp(k, "token_ttl")) {
			c->token_ttl = v / 1000;
		} else if (!strcmp(k, "replay_state")) {
			return copy_str(c->replay_state, sizeof(c->replay_state), en, e);
		} else if (!strcmp(k, "replay_capacity")) {
			c->replay_capacity = v;
		} else if (!strcmp(k, "token_rate_agent")) {
			c->token_rate_agent = v;
		} else if (!strcmp(k, "token_rate_source")) {
			c->token_rate_source = v;
		} else if (!strcmp(k, "token_failure_weight")) {
			c->token_failure_weight = v;
		} else if (!strcmp(k, "tls_cert")) {
			return copy_str(c->tls_cert, sizeof(c->tls_cert), en, e);
		} else if (!strcmp(k, "tls_key")) {
			return copy_str(c->tls_key, sizeof(c->tls_key), en, e);
		} else if (!strcmp(k, "tls_min_version")) {
			if (strcmp(en->str, "1.2") != 0 && strcmp(en->str, "1.3") != 0)
				return creto_err_set(e, CRETO_EUSAGE, "line %zu: tls_min_version: want 1.2 or 1.3, not '%.16s'",
						     en->line, en->str);
			c->tls_min = en->str[2] == '3' ? 13 : 12;
			c->tls_min_set = 1;
		}
		return CRETO_OK;
	}
	if (strcmp(en->section, "upstream") == 0) {
		if (!strcmp(k, "model")) {
			if (!model_name_ok(en->arg))
				return creto_err_set(e, CRETO_EUSAGE, "line %zu: model: bad model name '%.64s'",
						     en->line, en->arg);
			if (c->nmodel == GW_MODELS_MAX)
				return creto_err_set(e, CRETO_EUSAGE, "line %zu: more than %d models", en->line,
						     GW_MODELS_MAX);
			gw_model_cfg *m = &c->model[c->nmodel];
			memset(m, 0, sizeof(*m));
			snprintf(m->name, sizeof(m->name), "%s", en->arg);
			const char *p = en->str;
			while (*p) {
				while (*p == ' ' || *p == '\t')
					p++;
				size_t n = strcspn(p, " \t");
				if (n == 0)
					break;
				char u[GW_URL_MAX];
				if (n >= sizeof(u) || m->nrep == GW_REPLICAS_MAX)
					return creto_err_set(e, CRETO_EUSAGE,
							     "line %zu: model %s: a URL too long or more than %d replicas",
							     en->line, m->name, GW_REPLICAS_MAX);
				memcpy(u, p, n);
				u[n] = '\0';
				if (gw_parse_replica(u, &m->rep[m->nrep]) != 0)
					return creto_err_set(e, CRETO_EUSAGE,
							     "line %zu: model %s: want http://IP:PORT, not '%.64s'",
							     en->line, m->name, u);
				m->nrep++;
				p += n;
			}
			c->nmodel++;
		} else if (!strcmp(k, "key_file")) {
			return copy_str(c->key_file, sizeof(c->key_file), en, e);
		} else if (!strcmp(k, "connect_timeout")) {
			c->connect_timeout_ms = v;
		} else if (!strcmp(k, "response_timeout")) {
			c->response_timeout_ms = v;
		} else if (!strcmp(k, "stream_idle_timeout")) {
			c->stream_idle_ms = v;
		} else if (!strcmp(k, "health_interval")) {
			c->health_interval_ms = v;
		} else if (!strcmp(k, "eject_time")) {
			c->eject_ms = v;
		} else if (!strcmp(k, "max_fails")) {
			c->max_fails = v;
		} else if (!strcmp(k, "stream_window")) {
			c->stream_window = v;
		} else if (!strcmp(k, "pool_idle")) {
			c->pool_idle = v;
		} else if (!strcmp(k, "inject_usage")) {
			c->inject_usage = (int)v;
		} else if (!strcmp(k, "saturated_waiting")) {
			c->saturated_waiting = v;
		} else if (!strcmp(k, "saturated_kv_percent")) {
			c->saturated_kv_pct = v;
		} else if (!strcmp(k, "prefix_affinity")) {
			c->affinity = (int)v;
		} else if (!strcmp(k, "affinity_bytes")) {
			c->affinity_bytes = v;
		}
		return CRETO_OK;
	}
	if (strcmp(en->section, "limits") == 0) {
		if (!strcmp(k, "concurrency"))
			c->deflt.concurrency = v;
		else if (!strcmp(k, "requests_per_minute"))
			c->deflt.requests_per_minute = v;
		else if (!strcmp(k, "tokens_per_minute"))
			c->deflt.tokens_per_minute = v;
		else if (!strcmp(k, "max_tokens"))
			c->deflt.max_tokens = v;
		else if (!strcmp(k, "default_max_tokens"))
			c->default_max_tokens = v;
	}
	return CRETO_OK;
}

/* ---- policy file ---- */

static int ep_bit(const char *s)
{
	if (!strcmp(s, "chat/completions"))
		return GW_EP_CHAT;
	if (!strcmp(s, "completions"))
		return GW_EP_COMPLETIONS;
	if (!strcmp(s, "embeddings"))
		return GW_EP_EMBEDDINGS;
	if (!strcmp(s, "models"))
		return GW_EP_MODELS;
	return 0;
}

static int policy_limits(json_t *o, const char *who, gw_limits *l, creto_err *e)
{
	l->concurrency = l->requests_per_minute = l->tokens_per_minute = -1;
	l->max_tokens = l->max_request_bytes = l->endpoints = -1;
	if (!json_is_object(o))
		return creto_err_set(e, CRETO_EUSAGE, "policy: %s: want an object", who);
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
	{
		int64_t *dst = NULL;
		if (!strcmp(key, "concurrency"))
			dst = &l->concurrency;
		else if (!strcmp(key, "requests_per_minute"))
			dst = &l->requests_per_minute;
		else if (!strcmp(key, "tokens_per_minute"))
			dst = &l->tokens_per_minute;
		else if (!strcmp(key, "max_tokens"))
			dst = &l->max_tokens;
		else if (!strcmp(key, "max_request_bytes"))
			dst = &l->max_request_bytes;
		if (dst != NULL) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 1000000000000LL)
				return creto_err_set(e, CRETO_EUSAGE,
						     "policy: %s: %s: want an integer 0..10^12", who, key);
			*dst = json_integer_value(v);
			continue;
		}
		if (!strcmp(key, "endpoints")) {
			size_t i;
			json_t *x;
			if (!json_is_array(v))
				return creto_err_set(e, CRETO_EUSAGE, "policy: %s: endpoints: want an array", who);
			l->endpoints = 0;
			json_array_foreach(v, i, x)
			{
				int b = json_is_string(x) ? ep_bit(json_string_value(x)) : 0;
				if (b == 0)
					return creto_err_set(e, CRETO_EUSAGE,
							     "policy: %s: endpoints: want chat/completions, "
							     "completions, embeddings or models",
							     who);
				l->endpoints |= b;
			}
			continue;
		}
		return creto_err_set(e, CRETO_EUSAGE, "policy: %s: unknown key '%.32s'", who, key);
	}
	return CRETO_OK;
}

static void merge(gw_limits *dst, const gw_limits *src)
{
	if (src->concurrency >= 0)
		dst->concurrency = src->concurrency;
	if (src->requests_per_minute >= 0)
		dst->requests_per_minute = src->requests_per_minute;
	if (src->tokens_per_minute >= 0)
		dst->tokens_per_minute = src->tokens_per_minute;
	if (src->max_tokens >= 0)
		dst->max_tokens = src->max_tokens;
	if (src->max_request_bytes >= 0)
		dst->max_request_bytes = src->max_request_bytes;
	if (src->endpoints >= 0)
		dst->endpoints = src->endpoints;
}

int creto_gateway_policy_parse(creto_gateway_config *c, const char *text, size_t len, creto_err *e)
{
	json_error_t je;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "policy: line %d: %.120s", je.line, je.text);
	int rc = CRETO_OK;
	gw_policy_agent *agents = NULL;
	size_t na = 0;
	gw_limits dl;
	int have_default = 0;
	if (!json_is_object(root)) {
		rc = creto_err_set(e, CRETO_EUSAGE, "policy: want a JSON object");
		goto out;
	}
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v)
	{
		if (!strcmp(key, "version")) {
			if (!json_is_integer(v) || json_integer_value(v) != 1) {
				rc = creto_err_set(e, CRETO_EUSAGE, "policy: version: want 1");
				goto out;
			}
		} else if (!strcmp(key, "default")) {
			if ((rc = policy_limits(v, "default", &dl, e)) != CRETO_OK)
				goto out;
			have_default = 1;
		} else if (!strcmp(key, "agents")) {
			if (!json_is_object(v) || json_object_size(v) > GW_AGENTS_MAX) {
				rc = creto_err_set(e, CRETO_EUSAGE, "policy: agents: want an object of at most %d agents",
						   GW_AGENTS_MAX);
				goto out;
			}
			agents = calloc(json_object_size(v) + 1, sizeof(*agents));
			if (agents == NULL) {
				rc = creto_err_set(e, CRETO_EOP, "out of memory");
				goto out;
			}
			const char *id;
			json_t *a;
			json_object_foreach(v, id, a)
			{
				if (!creto_nhi_id_valid(id)) {
					rc = creto_err_set(e, CRETO_EUSAGE, "policy: agents: bad agent id '%.64s'", id);
					goto out;
				}
				char who[CRETO_NHI_ID_MAX + 16];
				snprintf(who, sizeof(who), "agent %s", id);
				if ((rc = policy_limits(a, who, &agents[na].lim, e)) != CRETO_OK)
					goto out;
				snprintf(agents[na].id, sizeof(agents[na].id), "%s", id);
				na++;
			}
		} else {
			rc = creto_err_set(e, CRETO_EUSAGE, "policy: unknown key '%.32s'", key);
			goto out;
		}
	}
	if (have_default)
		merge(&c->deflt, &dl);
	free(c->agents);
	c->agents = agents;
	c->nagents = na;
	agents = NULL;
out:
	free(agents);
	json_decref(root);
	return rc;
}

void gw_config_limits(const creto_gateway_config *c, const char *id, gw_limits *out)
{
	*out = c->deflt;
	if (out->max_request_bytes <= 0 || out->max_request_bytes > c->body_max)
		out->max_request_bytes = c->body_max;
	for (size_t i = 0; i < c->nagents; i++)
		if (strcmp(c->agents[i].id, id) == 0) {
			merge(out, &c->agents[i].lim);
			break;
		}
	if (out->max_request_bytes == 0 || out->max_request_bytes > c->body_max)
		out->max_request_bytes = c->body_max;
}

static int finish(creto_gateway_config *c, creto_err *e)
{
	if (c->nlisten == 0)
		return creto_err_set(e, CRETO_EUSAGE, "[gateway] listen: at least one address needed");
	if (c->nhi_db[0] == '\0')
		memcpy(c->nhi_db, c->nhi_store_fb, sizeof(c->nhi_db));
	if (c->jwks[0] == '\0')
		memcpy(c->jwks, c->nhi_jwks_fb, sizeof(c->jwks));
	if (c->nhi_db[0] == '\0' || c->jwks[0] == '\0')
		return creto_err_set(e, CRETO_EUSAGE, "[gateway] nhi_db and jwks (or [nhi] store and jwks) are required");
	if (c->nmodel == 0)
		return creto_err_set(e, CRETO_EUSAGE, "[upstream] model: at least one model needed");
	if (c->token_endpoint && c->issuer_key[0] == '\0')
		return creto_err_set(e, CRETO_EUSAGE, "[gateway] token_endpoint = yes needs issuer_key");
	if (c->token_endpoint && c->issuer_url[0] == '\0') {
		size_t i = 0;
		while (i < c->nlisten && c->listen[i].is_unix)
			i++;
		if (i == c->nlisten)
			return creto_err_set(e, CRETO_EUSAGE,
					     "[gateway] token_endpoint with only Unix listeners: set issuer_url");
	}
	if ((c->tls_cert[0] != '\0') != (c->tls_key[0] != '\0'))
		return creto_err_set(e, CRETO_EUSAGE, "[gateway] tls_cert and tls_key go together");
	if (c->tls_min_set && c->tls_cert[0] == '\0')
		return creto_err_set(e, CRETO_EUSAGE, "[gateway] tls_min_version needs tls_cert and tls_key");
	if (c->tls_cert[0]) {
		size_t i = 0;
		while (i < c->nlisten && c->listen[i].is_unix)
			i++;
		if (i == c->nlisten)
			return creto_err_set(e, CRETO_EUSAGE,
					     "[gateway] tls_cert: TLS is for TCP listeners and there is none");
	}
	for (size_t i = 0; i < c->nmodel; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->model[i].name, c->model[j].name) == 0)
				return creto_err_set(e, CRETO_EUSAGE, "[upstream] model %s given twice",
						     c->model[i].name);
	return CRETO_OK;
}

int creto_gateway_config_parse(const char *text, size_t len, creto_gateway_config **out, creto_err *e)
{
	*out = NULL;
	creto_conf *cf = NULL;
	int rc = creto_conf_parse(text, len, k_schema, sizeof(k_schema) / sizeof(k_schema[0]), &cf, e);
	if (rc != CRETO_OK)
		return rc;
	creto_gateway_config *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		creto_conf_free(cf);
		return creto_err_set(e, CRETO_EOP, "out of memory");
	}
	defaults(c);
	for (size_t i = 0; i < creto_conf_count(cf) && rc == CRETO_OK; i++)
		rc = apply(c, creto_conf_at(cf, i), e);
	creto_conf_free(cf);
	if (rc == CRETO_OK)
		rc = finish(c, e);
	if (rc == CRETO_OK && c->policy_path[0]) {
		uint8_t *buf = NULL;
		size_t n = 0;
		rc = creto_file_read_follow(c->policy_path, GW_POLICY_MAX, &buf, &n, e);
		if (rc == CRETO_OK) {
			rc = creto_gateway_policy_parse(c, (const char *)buf, n, e);
			free(buf);
		} else {
			e->code = CRETO_EUSAGE;
			rc = creto_err_ctx(e, "policy %s", c->policy_path);
		}
	}
	if (rc != CRETO_OK) {
		creto_gateway_config_free(c);
		return rc;
	}
	*out = c;
	return CRETO_OK;
}

int creto_gateway_config_load(const char *path, creto_gateway_config **out, creto_err *e)
{
	*out = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = creto_file_read_follow(path, CRETO_CONF_MAX, &buf, &len, e);
	if (rc != CRETO_OK) {
		if (e != NULL)
			e->code = CRETO_EUSAGE;
		return e != NULL ? creto_err_ctx(e, "config %s", path) : CRETO_EUSAGE;
	}
	rc = creto_gateway_config_parse((const char *)buf, len, out, e);
	free(buf);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "config %s", path);
	return CRETO_OK;
}

void creto_gateway_config_free(creto_gateway_config *c)
{
	if (c == NULL)
		return;
	free(c->agents);
	free(c);
}
