/*
 * oauth.c - the token endpoint (docs/nhi.md "Token endpoint"): OAuth 2.0
 * client credentials with private_key_jwt client assertions (RFC 6749
 * §4.4, RFC 7523 §2.2 and §3), answered with the same JWS access token the
 * resolver accepts, signed by the issuer key (file or HSM).
 *
 * Order of the checks, cheapest and least trusting first: the HTTP facts
 * and the form (bounded, strict), the per-source rate limit, the JWS
 * structure, the claims read only to find the agent and its key, the
 * algorithm against the key's registered one, the signature, then every
 * claim, the agent, the replay cache, the scopes, the per-agent rate limit,
 * and only then the issuer signature.  Every outcome goes to the event sink;
 * refusals are aggregated per (agent, reason) per interval.
 */
#include "creto/nhi_oauth.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "replay.h"
#include "util/timeutil.h"

/* ---- form (application/x-www-form-urlencoded) ---- */

static int hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode in[0..n) into out (NUL-terminated); -1 on a bad escape or a byte
 * outside printable ASCII after decoding. */
static int form_decode(const char *in, size_t n, char *out, size_t *outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (i + 2 >= n)
				return -1;
			int a = hexv(in[i + 1]), b = hexv(in[i + 2]);
			if (a < 0 || b < 0)
				return -1;
			c = (unsigned char)(a << 4 | b);
			i += 2;
		}
		if (c < 0x20 || c > 0x7e)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	*outlen = o;
	return 0;
}

int creto_oauth_form_parse(const char *body, size_t len, char *buf, creto_oauth_form *f, creto_err *e)
{
	memset(f, 0, sizeof(*f));
	if (len > CRETO_OAUTH_FORM_MAX)
		return creto_err_set(e, CRETO_EREJECT, "form: %zu bytes, over the %d-byte cap", len,
				     CRETO_OAUTH_FORM_MAX);
	if (len == 0)
		return creto_err_set(e, CRETO_EREJECT, "form: empty body");
	size_t o = 0;
	for (size_t i = 0; i <= len;) {
		const char *amp = memchr(body + i, '&', len - i);
		size_t end = amp ? (size_t)(amp - body) : len;
		if (end == i)
			return creto_err_set(e, CRETO_EREJECT, "form: empty field at byte %zu", i);
		if (f->n == CRETO_OAUTH_PARAMS_MAX)
			return creto_err_set(e, CRETO_EREJECT, "form: more than %d fields", CRETO_OAUTH_PARAMS_MAX);
		const char *eq = memchr(body + i, '=', end - i);
		if (eq == NULL || eq == body + i)
			return creto_err_set(e, CRETO_EREJECT, "form: field at byte %zu is not name=value", i);
		size_t nl = 0, vl = 0;
		char *name = buf + o;
		if (form_decode(body + i, (size_t)(eq - body) - i, name, &nl) != 0 || nl == 0)
			return creto_err_set(e, CRETO_EREJECT, "form: bad encoding in the name at byte %zu", i);
		o += nl + 1;
		char *val = buf + o;
		size_t vs = (size_t)(eq - body) + 1;
		if (form_decode(body + vs, end - vs, val, &vl) != 0)
			return creto_err_set(e, CRETO_EREJECT, "form: field '%.40s': bad encoding in the value", name);
		o += vl + 1;
		for (size_t k = 0; k < f->n; k++)
			if (strcmp(f->name[k], name) == 0)
				return creto_err_set(e, CRETO_EREJECT, "form: field '%.40s' given twice", name);
		f->name[f->n] = name;
		f->value[f->n] = val;
		f->n++;
		i = end + 1;
		if (amp != NULL && end + 1 == len)
			return creto_err_set(e, CRETO_EREJECT, "form: trailing '&'");
		if (amp == NULL)
			break;
	}
	return CRETO_OK;
}

const char *creto_oauth_form_get(const creto_oauth_form *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->name[i], name) == 0)
			return f->value[i][0] ? f->value[i] : NULL;
	return NULL;
}

/* ---- token buckets ---- */
#define RL_SLOTS 4096 /* per table; a full table refuses newcomers (fail closed) */
#define RL_PROBE 16
#define RL_KEY 160

typedef struct rl_slot {
	char key[RL_KEY];
	int64_t level; /* units: 60 per request */
	int64_t at;    /* last refill */
	int used;
} rl_slot;

typedef struct rl_table {
	rl_slot *s;
	int64_t rate; /* requests per minute; <= 0 off */
} rl_table;

static size_t str_hash(const char *s)
{
	size_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void rl_refill(rl_slot *s, int64_t rate, int64_t now)
{
	int64_t cap = rate * 60;
	if (now > s->at) {
		int64_t add = (now - s->at) * rate;
		s->level = s->level + add > cap ? cap : s->level + add;
		s->at = now;
	}
}

/* Charge cost requests to key; 0 when allowed, else the seconds to wait. */
static int rl_charge(rl_table *t, const char *key, int64_t cost, int64_t now)
{
	if (t->rate <= 0)
		return 0;
	size_t h = str_hash(key);
	rl_slot *hit = NULL, *free_slot = NULL;
	for (size_t p = 0; p < RL_PROBE && hit == NULL; p++) {
		rl_slot *s = &t->s[(h + p) % RL_SLOTS];
		if (s->used && strcmp(s->key, key) == 0) {
			hit = s;
			break;
		}
		if (free_slot == NULL) {
			if (s->used)
				rl_refill(s, t->rate, now);
			if (!s->used || s->level >= t->rate * 60) /* a full bucket is as good as none */
				free_slot = s;
		}
	}
	if (hit == NULL) {
		if (free_slot == NULL)
			return 60;
		hit = free_slot;
		snprintf(hit->key, sizeof(hit->key), "%s", key);
		hit->used = 1;
		hit->level = t->rate * 60;
		hit->at = now;
	}
	rl_refill(hit, t->rate, now);
	int64_t units = cost * 60;
	if (hit->level < 60) {
		int64_t wait = (60 - hit->level + t->rate - 1) / t->rate;
		return wait < 1 ? 1 : (int)wait;
	}
	hit->level -= units; /* may go below zero: a failure's extra cost is debt */
	return 0;
}

/* ---- refusal aggregation ---- */
#define AG_SLOTS 256

typedef struct ag_slot {
	char agent[CRETO_NHI_ID_MAX + 1];
	const char *reason; /* static string */
	const char *error;
	int64_t count;      /* refusals not yet reported */
	int used;
} ag_slot;

/* ---- agent public keys, parsed once ----
 * Building a creto_pubkey from raw bytes (point decoding and checks) costs
 * as much as a third of a P-256 verification.  The store stays the only
 * source of truth: every request reads the key row, and a cached key is
 * used only when its raw bytes equal the row's. */
#define PK_SLOTS 4096 /* parsed agent keys kept; a key lands in one of PK_WAYS slots */
#define PK_WAYS 4

typedef struct pk_ref {
	creto_pubkey *pk;
	int refs;     /* holders, the cache slot included */
} pk_ref;

typedef struct pk_slot {
	char kid[CRETO_KEYID_HEXLEN + 1];
	pk_ref *ref;
} pk_slot;

struct creto_nhi_oauth {
	creto_nhi_store *store;
	pthread_mutex_t pkmu;
	pk_slot pk[PK_SLOTS];
	creto_signer *issuer;
	creto_nhi_replay *replay;
	creto_event_sink sink;
	char issuer_url[CRETO_OAUTH_URL_MAX + 1];
	char token_endpoint[CRETO_OAUTH_URL_MAX + 1];
	char jwks_uri[CRETO_OAUTH_URL_MAX + 1];
	char audience[CRETO_NHI_ISSUER_MAX + 1];
	char iss_name[CRETO_NHI_ISSUER_MAX + 1];
	int64_t ttl;
	int64_t failure_weight;
	int64_t interval;
	const creto_pubkey *const *extra;
	size_t nextra;
	creto_jws_alg issuer_alg;
	pthread_mutex_t mu; /* rate tables and aggregation */
	rl_table by_agent, by_source;
	ag_slot ag[AG_SLOTS + 1]; /* the last one collects overflow */
	int64_t ag_window;        /* start of the current interval */
};

static void pk_release(creto_nhi_oauth *o, pk_ref *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&o->pkmu);
	int last = --r->refs == 0;
	pthread_mutex_unlock(&o->pkmu);
	if (last) {
		creto_pubkey_free(r->pk);
		free(r);
	}
}

/* The parsed key of row k (a reference the caller releases). */
static int pk_acquire(creto_nhi_oauth *o, const creto_nhi_agent_key *k, pk_ref **out, creto_err *e)
{
	*out = NULL;
	size_t h = str_hash(k->kid);
	pk_slot *victim = &o->pk[h % PK_SLOTS];
	pthread_mutex_lock(&o->pkmu);
	for (size_t w = 0; w < PK_WAYS && *out == NULL; w++) {
		pk_slot *sl = &o->pk[(h + w) % PK_SLOTS];
		if (sl->ref == NULL) {
			victim = sl;
			continue;
		}
		if (strcmp(sl->kid, k->kid) != 0)
			continue;
		size_t n = 0;
		const uint8_t *raw = creto_pubkey_raw(sl->ref->pk, &n);
		if (n == k->publen && memcmp(raw, k->pub, n) == 0 &&
		    creto_pubkey_alg(sl->ref->pk) == creto_jws_alg_key(k->alg)) {
			sl->ref->refs++;
			*out = sl->ref;
		} else {
			victim = sl; /* same kid, other bytes: replace it */
		}
	}
	if (*out == NULL && victim->ref != NULL && victim == &o->pk[h % PK_SLOTS])
		victim = &o->pk[(h + (h >> 32) % PK_WAYS) % PK_SLOTS]; /* all ways taken: spread evictions */
	pthread_mutex_unlock(&o->pkmu);
	if (*out != NULL)
		return CRETO_OK;
	pk_ref *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	int rc = creto_nhi_agent_key_pubkey(k, &r->pk, e);
	if (rc != CRETO_OK) {
		free(r);
		return rc;
	}
	r->refs = 2; /* the caller and the slot */
	pthread_mutex_lock(&o->pkmu);
	pk_ref *old = victim->ref;
	victim->ref = r;
	memcpy(victim->kid, k->kid, sizeof(victim->kid));
	pthread_mutex_unlock(&o->pkmu);
	pk_release(o, old);
	*out = r;
	return CRETO_OK;
}

static void ag_emit(creto_nhi_oauth *o, ag_slot *a, int64_t window)
{
	creto_event_field f[3] = {
		{.key = "count", .num = a->count},
		{.key = "error", .str = a->error},
		{.key = "window_start", .num = window},
	};
	creto_event ev = {
		.component = "nhi",
		.event = "token",
		.outcome = "refused",
		.subject = a->agent[0] ? a->agent : NULL,
		.reason = a->reason,
		.fields = f,
		.nfields = 3,
	};
	(void)creto_event_emit(&o->sink, &ev);
}

/* Report every slot with pending refusals if the interval has ended. */
static void ag_flush_locked(creto_nhi_oauth *o, int64_t now, int force)
{
	if (!force && now < o->ag_window + o->interval)
		return;
	for (size_t i = 0; i <= AG_SLOTS; i++)
		if (o->ag[i].used && o->ag[i].count > 0)
			ag_emit(o, &o->ag[i], o->ag_window);
	memset(o->ag, 0, sizeof(o->ag));
	o->ag_window = now;
}

/* One refusal: the first of its (agent, reason) in an interval is reported
 * at once, the rest counted and reported when the interval ends. */
static void ag_refusal(creto_nhi_oauth *o, const char *agent, const char *reason, const char *error,
		       const char *source, int64_t now)
{
	pthread_mutex_lock(&o->mu);
	ag_flush_locked(o, now, 0);
	size_t h = (str_hash(agent) ^ str_hash(reason)) % AG_SLOTS;
	ag_slot *a = NULL;
	for (size_t p = 0; p < 8; p++) {
		ag_slot *s = &o->ag[(h + p) % AG_SLOTS];
		if (!s->used || (s->reason == reason && strcmp(s->agent, agent) == 0)) {
			a = s;
			break;
		}
	}
	int first = a != NULL && !a->used;
	if (a == NULL) { /* a flood of distinct agents: one overflow counter */
		a = &o->ag[AG_SLOTS];
		if (!a->used) {
			a->used = 1;
			a->reason = "aggregated";
			a->error = "various";
			a->agent[0] = '\0';
		}
		a->count++;
		pthread_mutex_unlock(&o->mu);
		return;
	}
	if (first) {
		a->used = 1;
		snprintf(a->agent, sizeof(a->agent), "%s", agent);
		a->reason = reason;
		a->error = error;
	} else {
		a->count++;
	}
	pthread_mutex_unlock(&o->mu);
	if (first) {
		creto_event_field f[2] = {{.key = "error", .str = error}, {.key = "source", .str = source}};
		creto_event ev = {
			.component = "nhi",
			.event = "token",
			.outcome = "refused",
			.subject = agent[0] ? agent : NULL,
			.reason = reason,
			.fields = f,
			.nfields = source ? 2 : 1,
		};
		(void)creto_event_emit(&o->sink, &ev);
	}
}

void creto_nhi_oauth_flush(creto_nhi_oauth *o, int64_t now)
{
	if (o == NULL)
		return;
	pthread_mutex_lock(&o->mu);
	ag_flush_locked(o, now, 0);
	pthread_mutex_unlock(&o->mu);
}

/* ---- setup ---- */
static int url_ok(const char *u)
{
	size_t n = strlen(u);
	if (n == 0 || n > CRETO_OAUTH_URL_MAX)
		return 0;
	if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (u[i] <= 0x20 || u[i] >= 0x7f || u[i] == '"' || u[i] == '\\' || u[i] == '#' || u[i] == '?')
			return 0;
	return 1;
}

static int set_url(char *dst, const char *given, const char *base, const char *suffix, const char *what,
		   creto_err *e)
{
	if (given != NULL)
		snprintf(dst, CRETO_OAUTH_URL_MAX + 1, "%s", given);
	else if (strlen(base) + strlen(suffix) <= CRETO_OAUTH_URL_MAX) {
		size_t bl = strlen(base);
		memcpy(dst, base, bl);
		memcpy(dst + bl, suffix, strlen(suffix) + 1);
	} else
		dst[0] = '\0';
	if (!url_ok(dst) || (given != NULL && strlen(given) > CRETO_OAUTH_URL_MAX))
		return creto_err_set(e, CRETO_EUSAGE,
				     "token endpoint: %s: want an http(s) URL of at most %d bytes without query, "
				     "fragment, space or quote",
				     what, CRETO_OAUTH_URL_MAX);
	return CRETO_OK;
}

int creto_nhi_oauth_new(creto_nhi_store *store, creto_signer *issuer, creto_nhi_replay *replay,
			const creto_nhi_oauth_opts *opts, creto_nhi_oauth **out, creto_err *e)
{
	*out = NULL;
	if (opts == NULL || opts->issuer_url == NULL)
		return creto_err_set(e, CRETO_EUSAGE, "token endpoint: the issuer URL is required");
	creto_alg ia = creto_pubkey_alg(creto_signer_pubkey(issuer));
	if (ia != CRETO_ALG_ED25519 && ia != CRETO_ALG_ECDSA_P256)
		return creto_err_set(e, CRETO_EUSAGE, "token endpoint: issuer key is %s; want ed25519 or ecdsa-p256",
				     creto_alg_name(ia));
	creto_nhi_oauth *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	pthread_mutex_init(&o->mu, NULL);
	pthread_mutex_init(&o->pkmu, NULL);
	o->store = store;
	o->issuer = issuer;
	o->replay = replay;
	o->sink = opts->sink;
	o->issuer_alg = ia == CRETO_ALG_ED25519 ? CRETO_JWS_EDDSA : CRETO_JWS_ES256;
	int rc = set_url(o->issuer_url, opts->issuer_url, "", "", "issuer URL", e);
	if (rc == CRETO_OK && o->issuer_url[strlen(o->issuer_url) - 1] == '/')
		rc = creto_err_set(e, CRETO_EUSAGE, "token endpoint: issuer URL must not end with '/'");
	if (rc == CRETO_OK)
		rc = set_url(o->token_endpoint, opts->token_endpoint, o->issuer_url, "/oauth/token", "token endpoint URL",
			     e);
	if (rc == CRETO_OK)
		rc = set_url(o->jwks_uri, opts->jwks_uri, o->issuer_url, "/.well-known/jwks.json", "JWKS URI", e);
	const char *aud = opts->audience ? opts->audience : CRETO_NHI_DEFAULT_AUDIENCE;
	if (rc == CRETO_OK && (strlen(aud) == 0 || strlen(aud) > CRETO_NHI_ISSUER_MAX))
		rc = creto_err_set(e, CRETO_EUSAGE, "token endpoint: audience: want 1..%d bytes", CRETO_NHI_ISSUER_MAX);
	o->ttl = opts->token_ttl ? opts->token_ttl : CRETO_OAUTH_TTL_DEFAULT;
	if (rc == CRETO_OK && (o->ttl < 1 || o->ttl > CRETO_OAUTH_TTL_MAX))
		rc = creto_err_set(e, CRETO_EUSAGE, "token endpoint: token TTL: want 1..%d s", CRETO_OAUTH_TTL_MAX);
	o->by_agent.rate = opts->rate_agent ? opts->rate_agent : 30;
	o->by_source.rate = opts->rate_source ? opts->rate_source : 120;
	o->failure_weight = opts->failure_weight ? opts->failure_weight : 4;
	o->interval = opts->refusal_interval ? opts->refusal_interval : 60;
	if (rc == CRETO_OK && (o->failure_weight < 0 || o->interval < 1))
		rc = creto_err_set(e, CRETO_EUSAGE, "token endpoint: failure weight / refusal interval out of range");
	o->extra = opts->extra_keys;
	o->nextra = opts->nextra;
	if (rc == CRETO_OK) {
		snprintf(o->audience, sizeof(o->audience), "%s", aud);
		snprintf(o->iss_name, sizeof(o->iss_name), "%s", creto_nhi_store_issuer(store));
		o->by_agent.s = calloc(RL_SLOTS, sizeof(rl_slot));
		o->by_source.s = calloc(RL_SLOTS, sizeof(rl_slot));
		if (o->by_agent.s == NULL || o->by_source.s == NULL)
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
	}
	if (rc != CRETO_OK) {
		creto_nhi_oauth_free(o, 0);
		return rc;
	}
	*out = o;
	return CRETO_OK;
}

void creto_nhi_oauth_free(creto_nhi_oauth *o, int64_t now)
{
	if (o == NULL)
		return;
	pthread_mutex_lock(&o->mu);
	ag_flush_locked(o, now, 1);
	pthread_mutex_unlock(&o->mu);
	free(o->by_agent.s);
	free(o->by_source.s);
	for (size_t i = 0; i < PK_SLOTS; i++)
		pk_release(o, o->pk[i].ref);
	pthread_mutex_destroy(&o->mu);
	pthread_mutex_destroy(&o->pkmu);
	free(o);
}

void creto_nhi_token_response_clear(creto_nhi_token_response *r)
{
	if (r == NULL)
		return;
	if (r->body != NULL) {
		OPENSSL_cleanse(r->body, r->body_len);
		free(r->body);
	}
	memset(r, 0, sizeof(*r));
}

/* ---- the endpoint ---- */

/* A refusal in the making: HTTP status, RFC 6749 §5.2 code, the rule. */
typedef struct refusal {
	int status;
	const char *error;
	const char *reason;
	int retry_after;
} refusal;

static const refusal R_BODY_SIZE = {400, "invalid_request", "body_size", 0};
static const refusal R_CONTENT_TYPE = {400, "invalid_request", "content_type", 0};
static const refusal R_FORM = {400, "invalid_request", "form", 0};
static const refusal R_TWO_AUTH = {400, "invalid_request", "two_auth_methods", 0};
static const refusal R_GRANT_MISSING = {400, "invalid_request", "grant_type_missing", 0};
static const refusal R_GRANT = {400, "unsupported_grant_type", "grant_type", 0};
static const refusal R_ASSERTION_MISSING = {401, "invalid_client", "assertion_missing", 0};
static const refusal R_ASSERTION_TYPE = {401, "invalid_client", "assertion_type", 0};
static const refusal R_ASSERTION = {401, "invalid_client", "assertion_malformed", 0};
static const refusal R_ISS_SUB = {401, "invalid_client", "iss_sub", 0};
static const refusal R_CLIENT_ID = {401, "invalid_client", "client_id", 0};
static const refusal R_UNKNOWN_AGENT = {401, "invalid_client", "unknown_agent", 0};
static const refusal R_UNKNOWN_KEY = {401, "invalid_client", "unknown_key", 0};
static const refusal R_ALG = {401, "invalid_client", "alg_mismatch", 0};
static const refusal R_SIGNATURE = {401, "invalid_client", "signature", 0};
static const refusal R_KEY_WINDOW = {401, "invalid_client", "key_not_current", 0};
static const refusal R_AUD = {401, "invalid_client", "audience", 0};
static const refusal R_EXPIRED = {401, "invalid_client", "expired", 0};
static const refusal R_LIFETIME = {401, "invalid_client", "lifetime", 0};
static const refusal R_NOT_YET = {401, "invalid_client", "not_yet_valid", 0};
static const refusal R_BEFORE_START = {401, "invalid_client", "issued_before_start", 0};
static const refusal R_REPLAY = {401, "invalid_client", "replay", 0};
static const refusal R_REPLAY_FULL = {503, "temporarily_unavailable", "replay_cache_full", 30};
static const refusal R_AGENT_STATUS = {400, "unauthorized_client", "agent_status", 0};
static const refusal R_AGENT_VALIDITY = {400, "unauthorized_client", "agent_validity", 0};
static const refusal R_ISSUER_KEY = {400, "unauthorized_client", "issuer_key", 0};
static const refusal R_SCOPE = {400, "invalid_scope", "scope", 0};
static const refusal R_RATE_SOURCE = {429, "temporarily_unavailable", "rate_source", 0};
static const refusal R_RATE_AGENT = {429, "temporarily_unavailable", "rate_agent", 0};
static const refusal R_SERVER = {500, "server_error", "internal", 0};

/* Fill resp with the §5.2 error body. */
static void error_body(creto_nhi_token_response *resp, const refusal *r, const char *desc)
{
	resp->status = r->status;
	resp->error = r->error;
	resp->reason = r->reason;
	resp->retry_after = r->retry_after;
	json_t *j = json_pack("{s:s, s:s}", "error", r->error, "error_description", desc);
	char *txt = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	if (txt == NULL) {
		/* a fixed body that needs no allocation of JSON */
		txt = strdup("{\"error\":\"server_error\"}");
		resp->status = 500;
		resp->error = "server_error";
	}
	resp->body = txt;
	resp->body_len = txt ? strlen(txt) : 0;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* The requested scope list: each valid, no duplicate, all granted. */
static int scope_check(const char *req, const creto_nhi_agent *a, char *out, creto_err *e)
{
	size_t o = 0, count = 0;
	out[0] = '\0';
	if (strlen(req) > CRETO_NHI_SCOPES_LEN)
		return creto_err_set(e, CRETO_EREJECT, "scope: longer than %d bytes", CRETO_NHI_SCOPES_LEN);
	for (const char *q = req; *q;) {
		const char *sp = strchr(q, ' ');
		size_t n = sp ? (size_t)(sp - q) : strlen(q);
		if (!creto_nhi_scope_valid(q, n))
			return creto_err_set(e, CRETO_EREJECT, "scope: malformed scope '%.*s'", (int)(n > 64 ? 64 : n), q);
		if (++count > CRETO_NHI_SCOPES_MAX)
			return creto_err_set(e, CRETO_EREJECT, "scope: more than %d", CRETO_NHI_SCOPES_MAX);
		if (!creto_nhi_scopes_has(a->scopes, q, n))
			return creto_err_set(e, CRETO_EREJECT, "scope '%.*s' not granted to agent %s",
					     (int)(n > 64 ? 64 : n), q, a->id);
		if (o && creto_nhi_scopes_has(out, q, n))
			return creto_err_set(e, CRETO_EREJECT, "scope '%.*s' asked for twice", (int)(n > 64 ? 64 : n), q);
		if (o)
			out[o++] = ' ';
		memcpy(out + o, q, n);
		o += n;
		out[o] = '\0';
		q += n;
		if (*q == ' ') {
			q++;
			if (*q == '\0' || *q == ' ')
				return creto_err_set(e, CRETO_EREJECT, "scope: empty scope (two spaces or a trailing space)");
		}
	}
	if (o == 0)
		return creto_err_set(e, CRETO_EREJECT, "scope: empty");
	return CRETO_OK;
}

/* Content-Type must be application/x-www-form-urlencoded, optionally with
 * a charset of UTF-8 (the only parameter allowed). */
static int content_type_ok(const char *ct)
{
	static const char want[] = "application/x-www-form-urlencoded";
	if (ct == NULL || strncasecmp(ct, want, sizeof(want) - 1) != 0)
		return 0;
	const char *p = ct + sizeof(want) - 1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return 1;
	if (*p++ != ';')
		return 0;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "charset=", 8) != 0)
		return 0;
	p += 8;
	if (strncasecmp(p, "utf-8", 5) == 0)
		p += 5;
	else if (strncasecmp(p, "\"utf-8\"", 7) == 0)
		p += 7;
	else
		return 0;
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == '\0';
}

typedef struct exchange {
	char buf[CRETO_OAUTH_FORM_MAX + 1]; /* first: the one member not zeroed up front */
	creto_oauth_form form;
	creto_jws j;
	creto_jwt_claims c;
	creto_nhi_agent agent;
	creto_nhi_agent_key key;
	char scope[CRETO_NHI_SCOPES_LEN + 1];
	char agent_id[CRETO_NHI_ID_MAX + 1]; /* claimed, then verified: the aggregation key */
	int authenticated;                   /* the assertion's signature verified */
} exchange;

static int refuse(creto_nhi_oauth *o, exchange *x, const creto_nhi_token_request *rq, int64_t now,
		  const refusal *r, creto_nhi_token_response *resp, creto_err *e)
{
	/* failures cost more: at the source always, at the agent only when the
	 * agent really signed (else anyone could drain an agent's bucket) */
	if (r != &R_RATE_SOURCE && r != &R_RATE_AGENT && o->failure_weight > 0) {
		pthread_mutex_lock(&o->mu);
		(void)rl_charge(&o->by_source, rq->source ? rq->source : "-", o->failure_weight, now);
		if (x->authenticated)
			(void)rl_charge(&o->by_agent, x->agent_id, o->failure_weight, now);
		pthread_mutex_unlock(&o->mu);
	}
	ag_refusal(o, x->agent_id, r->reason, r->error, rq->source, now);
	/* The description is the detail without the assertion: e->msg never
	 * holds token bytes (the parsers name fields and offsets only). */
	error_body(resp, r, e->msg[0] ? e->msg : r->reason);
	if (e->code == CRETO_OK)
		creto_err_set(e, CRETO_EREJECT, "%s", r->reason);
	return r == &R_SERVER ? CRETO_EOP : CRETO_EREJECT;
}

static int endpoint(creto_nhi_oauth *o, exchange *x, const creto_nhi_token_request *rq, int64_t now,
		    creto_nhi_token_response *resp, creto_err *e)
{
	const char *src = rq->source ? rq->source : "-";
	int wait;
	pthread_mutex_lock(&o->mu);
	wait = rl_charge(&o->by_source, src, 1, now);
	pthread_mutex_unlock(&o->mu);
	if (wait) {
		refusal r = R_RATE_SOURCE;
		r.retry_after = wait;
		creto_err_set(e, CRETO_EREJECT, "rate limit for source %.64s: retry in %d s", src, wait);
		ag_refusal(o, "", R_RATE_SOURCE.reason, r.error, rq->source, now);
		error_body(resp, &r, e->msg);
		return CRETO_EREJECT;
	}
	if (rq->len > CRETO_OAUTH_FORM_MAX) {
		creto_err_set(e, CRETO_EREJECT, "request body of %zu bytes, over the %d-byte cap", rq->len,
			      CRETO_OAUTH_FORM_MAX);
		return refuse(o, x, rq, now, &R_BODY_SIZE, resp, e);
	}
	if (!content_type_ok(rq->content_type)) {
		creto_err_set(e, CRETO_EREJECT, "Content-Type must be application/x-www-form-urlencoded");
		return refuse(o, x, rq, now, &R_CONTENT_TYPE, resp, e);
	}
	if (creto_oauth_form_parse(rq->body, rq->len, x->buf, &x->form, e) != CRETO_OK)
		return refuse(o, x, rq, now, &R_FORM, resp, e);
	if (rq->has_authorization) {
		creto_err_set(e, CRETO_EREJECT, "an Authorization header and a client assertion: use one client "
						"authentication method");
		return refuse(o, x, rq, now, &R_TWO_AUTH, resp, e);
	}
	const char *gt = creto_oauth_form_get(&x->form, "grant_type");
	if (gt == NULL) {
		creto_err_set(e, CRETO_EREJECT, "grant_type missing");
		return refuse(o, x, rq, now, &R_GRANT_MISSING, resp, e);
	}
	if (strcmp(gt, CRETO_OAUTH_GRANT) != 0) {
		creto_err_set(e, CRETO_EREJECT, "grant_type '%.64s' not supported (client_credentials)", gt);
		return refuse(o, x, rq, now, &R_GRANT, resp, e);
	}
	const char *cat = creto_oauth_form_get(&x->form, "client_assertion_type");
	const char *ca = creto_oauth_form_get(&x->form, "client_assertion");
	if (cat == NULL || ca == NULL) {
		creto_err_set(e, CRETO_EREJECT, "%s missing (private_key_jwt is the only client authentication)",
			      cat == NULL ? "client_assertion_type" : "client_assertion");
		return refuse(o, x, rq, now, &R_ASSERTION_MISSING, resp, e);
	}
	if (strcmp(cat, CRETO_OAUTH_ASSERTION_TYPE) != 0) {
		creto_err_set(e, CRETO_EREJECT, "client_assertion_type '%.80s' not supported (%s)", cat,
			      CRETO_OAUTH_ASSERTION_TYPE);
		return refuse(o, x, rq, now, &R_ASSERTION_TYPE, resp, e);
	}
	/* The assertion: structure, then the claims read (unauthenticated)
	 * only to find the agent's key. */
	if (nhi_jws_parse(ca, strlen(ca), 1, &x->j, e) != CRETO_OK) {
		creto_err_ctx(e, "client assertion");
		return refuse(o, x, rq, now, &R_ASSERTION, resp, e);
	}
	if (creto_jwt_claims_parse(x->j.payload, x->j.payload_len, &x->c, e) != CRETO_OK) {
		creto_err_ctx(e, "client assertion");
		return refuse(o, x, rq, now, &R_ASSERTION, resp, e);
	}
	snprintf(x->agent_id, sizeof(x->agent_id), "%s", x->c.sub);
	if (strcmp(x->c.iss, x->c.sub) != 0) {
		creto_err_set(e, CRETO_EREJECT, "client assertion: iss must equal sub (the agent id) (RFC 7523 3)");
		return refuse(o, x, rq, now, &R_ISS_SUB, resp, e);
	}
	const char *cid = creto_oauth_form_get(&x->form, "client_id");
	if (cid != NULL && strcmp(cid, x->c.sub) != 0) {
		creto_err_set(e, CRETO_EREJECT, "client_id is not the assertion's sub");
		return refuse(o, x, rq, now, &R_CLIENT_ID, resp, e);
	}
	x->agent.id[0] = '\0';
	int rc = creto_nhi_store_agent_key(o->store, x->c.sub, x->j.kid, &x->agent, &x->key, e);
	if (rc != CRETO_OK)
		return refuse(o, x, rq, now,
			      rc != CRETO_EREJECT ? &R_SERVER : x->agent.id[0] ? &R_UNKNOWN_KEY : &R_UNKNOWN_AGENT, resp, e);
	/* no algorithm confusion: the key's registered alg, nothing else */
	if (x->j.alg != x->key.alg) {
		creto_err_set(e, CRETO_EREJECT, "client assertion: alg %s, but key %s is registered for %s",
			      creto_jws_alg_name(x->j.alg), x->key.kid, creto_jws_alg_name(x->key.alg));
		return refuse(o, x, rq, now, &R_ALG, resp, e);
	}
	pk_ref *pr = NULL;
	rc = pk_acquire(o, &x->key, &pr, e);
	if (rc == CRETO_OK)
		rc = creto_pubkey_verify(pr->pk, NULL, 0, (const uint8_t *)ca, x->j.signing_input_len, x->j.sig,
					 x->j.siglen, e);
	pk_release(o, pr);
	if (rc != CRETO_OK) {
		creto_err_ctx(e, "client assertion signature (agent %s, key %s)", x->agent.id, x->key.kid);
		return refuse(o, x, rq, now, rc == CRETO_EREJECT ? &R_SIGNATURE : &R_SERVER, resp, e);
	}
	x->authenticated = 1;
	char t1[CRETO_TIME_STRLEN], t2[CRETO_TIME_STRLEN];
	if ((x->key.not_before && now < x->key.not_before) || (x->key.not_after && now > x->key.not_after)) {
		creto_time_format(now < x->key.not_before ? x->key.not_before : x->key.not_after, t1);
		creto_err_set(e, CRETO_EREJECT, "agent %s key %s is %s %s", x->agent.id, x->key.kid,
			      now < x->key.not_before ? "not valid before" : "expired at", t1);
		return refuse(o, x, rq, now, &R_KEY_WINDOW, resp, e);
	}
	/* the claims, now authenticated */
	int aud_ok = 0;
	for (size_t i = 0; i < x->c.naud; i++)
		aud_ok |= strcmp(x->c.aud[i], o->token_endpoint) == 0 || strcmp(x->c.aud[i], o->issuer_url) == 0;
	if (!aud_ok) {
		creto_err_set(e, CRETO_EREJECT, "client assertion: aud holds neither the token endpoint %s nor the issuer %s",
			      o->token_endpoint, o->issuer_url);
		return refuse(o, x, rq, now, &R_AUD, resp, e);
	}
	if (x->c.exp <= x->c.iat) {
		creto_err_set(e, CRETO_EREJECT, "client assertion: exp not after iat");
		return refuse(o, x, rq, now, &R_LIFETIME, resp, e);
	}
	if (now > x->c.exp + CRETO_NHI_SKEW) {
		creto_time_format(x->c.exp, t1);
		creto_time_format(now, t2);
		creto_err_set(e, CRETO_EREJECT, "client assertion expired at %s (now %s, skew %ds)", t1, t2, CRETO_NHI_SKEW);
		return refuse(o, x, rq, now, &R_EXPIRED, resp, e);
	}
	if (x->c.exp > now + CRETO_OAUTH_ASSERTION_MAX_LIFE + CRETO_NHI_SKEW) {
		creto_err_set(e, CRETO_EREJECT, "client assertion: exp more than %d s ahead (a short-lived assertion is required)",
			      CRETO_OAUTH_ASSERTION_MAX_LIFE);
		return refuse(o, x, rq, now, &R_LIFETIME, resp, e);
	}
	if ((x->c.has_nbf && now + CRETO_NHI_SKEW < x->c.nbf) || now + CRETO_NHI_SKEW < x->c.iat) {
		creto_err_set(e, CRETO_EREJECT, "client assertion: %s is in the future", now + CRETO_NHI_SKEW < x->c.iat ? "iat" : "nbf");
		return refuse(o, x, rq, now, &R_NOT_YET, resp, e);
	}
	int64_t nb = creto_nhi_replay_not_before(o->replay);
	if (x->c.iat < nb) {
		creto_time_format(nb, t1);
		creto_err_set(e, CRETO_EREJECT, "client assertion issued before %s (the endpoint started without its replay "
						"state): make a new one",
			      t1);
		return refuse(o, x, rq, now, &R_BEFORE_START, resp, e);
	}
	/* single use: the jti is consumed here, whatever follows */
	uint8_t key[NHI_REPLAY_KEY];
	if (nhi_replay_key(o->replay, x->c.sub, x->c.jti, key) != 0) {
		creto_err_set(e, CRETO_EOP, "replay key: hashing failed");
		return refuse(o, x, rq, now, &R_SERVER, resp, e);
	}
	switch (nhi_replay_check_insert(o->replay, key, x->c.exp + CRETO_NHI_SKEW, now)) {
	case NHI_REPLAY_OK: break;
	case NHI_REPLAY_SEEN:
		creto_err_set(e, CRETO_EREJECT, "client assertion jti '%.64s' already used (replay)", x->c.jti);
		return refuse(o, x, rq, now, &R_REPLAY, resp, e);
	case NHI_REPLAY_FULL:
		creto_err_set(e, CRETO_EREJECT, "replay cache full: new assertions refused until entries expire");
		return refuse(o, x, rq, now, &R_REPLAY_FULL, resp, e);
	default:
		creto_err_set(e, CRETO_EOP, "replay cache: out of memory");
		return refuse(o, x, rq, now, &R_SERVER, resp, e);
	}
	const creto_nhi_agent *a = &x->agent;
	if (a->status != CRETO_NHI_ACTIVE) {
		creto_err_set(e, CRETO_EREJECT, "agent %s is %s", a->id, creto_nhi_status_name(a->status));
		return refuse(o, x, rq, now, &R_AGENT_STATUS, resp, e);
	}
	if ((a->not_before && now < a->not_before) || (a->not_after && now >= a->not_after)) {
		creto_time_format(now < a->not_before ? a->not_before : a->not_after, t1);
		creto_err_set(e, CRETO_EREJECT, "agent %s %s %s", a->id,
			      now < a->not_before ? "not valid before" : "expired at", t1);
		return refuse(o, x, rq, now, &R_AGENT_VALIDITY, resp, e);
	}
	const char *issuer_kid = creto_pubkey_id(creto_signer_pubkey(o->issuer));
	if (a->issuer_kid[0] && strcmp(a->issuer_kid, issuer_kid) != 0) {
		creto_err_set(e, CRETO_EREJECT, "agent %s is bound to issuer key %s, this endpoint signs with %s", a->id,
			      a->issuer_kid, issuer_kid);
		return refuse(o, x, rq, now, &R_ISSUER_KEY, resp, e);
	}
	const char *req_scope = creto_oauth_form_get(&x->form, "scope");
	if (req_scope != NULL) {
		if (scope_check(req_scope, a, x->scope, e) != CRETO_OK)
			return refuse(o, x, rq, now, &R_SCOPE, resp, e);
	} else {
		snprintf(x->scope, sizeof(x->scope), "%s", a->scopes); /* RFC 6749 3.3: the default */
	}
	pthread_mutex_lock(&o->mu);
	wait = rl_charge(&o->by_agent, a->id, 1, now);
	pthread_mutex_unlock(&o->mu);
	if (wait) {
		refusal r = R_RATE_AGENT;
		r.retry_after = wait;
		creto_err_set(e, CRETO_EREJECT, "rate limit for agent %s: retry in %d s", a->id, wait);
		ag_refusal(o, a->id, R_RATE_AGENT.reason, r.error, rq->source, now);
		error_body(resp, &r, e->msg);
		return CRETO_EREJECT;
	}
	/* Issue: never outliving the agent's validity. */
	int64_t exp = now + o->ttl;
	if (a->not_after)
		exp = min64(exp, a->not_after);
	creto_nhi_token_params p = {
		.iss = o->iss_name,
		.sub = a->id,
		.aud = o->audience,
		.scope = x->scope,
		.iat = now,
		.nbf = now,
		.exp = exp,
	};
	char *tok = NULL;
	rc = creto_nhi_token_issue(o->issuer, &p, &tok, e);
	if (rc != CRETO_OK) {
		creto_err_ctx(e, "issue access token");
		return refuse(o, x, rq, now, &R_SERVER, resp, e);
	}
	creto_event_field f[5] = {
		{.key = "kid", .str = x->key.kid},
		{.key = "scope", .str = x->scope},
		{.key = "exp", .num = exp},
		{.key = "assertion_jti", .str = x->c.jti},
		{.key = "source", .str = src},
	};
	creto_event ev = {.component = "nhi", .event = "token", .outcome = "ok", .subject = a->id,
			  .actor = a->id, .fields = f, .nfields = 5};
	if (creto_event_emit(&o->sink, &ev) != 0) {
		OPENSSL_cleanse(tok, strlen(tok));
		free(tok);
		creto_err_set(e, CRETO_EOP, "audit log refused the issuance event: no token issued");
		return refuse(o, x, rq, now, &R_SERVER, resp, e);
	}
	/* The answer is written directly: the token is base64url and dots, the
	 * scope printable ASCII without quote or backslash (scope_check, the
	 * store's checks), so nothing needs escaping, and no JSON library keeps
	 * a copy of the token. */
	size_t tl = strlen(tok), cap = tl + strlen(x->scope) + 96;
	char *txt = malloc(cap);
	if (txt != NULL)
		snprintf(txt, cap, "{\"access_token\":\"%s\",\"token_type\":\"Bearer\",\"expires_in\":%lld,\"scope\":\"%s\"}",
			 tok, (long long)(exp - now), x->scope);
	OPENSSL_cleanse(tok, tl);
	free(tok);
	if (txt == NULL) {
		creto_err_set(e, CRETO_EOP, "token response: out of memory");
		return refuse(o, x, rq, now, &R_SERVER, resp, e);
	}
	resp->status = 200;
	resp->body = txt;
	resp->body_len = strlen(txt);
	return CRETO_OK;
}

int creto_nhi_token_endpoint(creto_nhi_oauth *o, const creto_nhi_token_request *rq, int64_t now,
			     creto_nhi_token_response *resp, creto_err *e)
{
	memset(resp, 0, sizeof(*resp));
	creto_err_clear(e);
	/* Everything but the form buffer starts zeroed; the buffer is written
	 * before it is read and wiped as far as it was written. */
	exchange *x = malloc(sizeof(*x));
	if (x != NULL)
		memset((char *)x + sizeof(x->buf), 0, sizeof(*x) - sizeof(x->buf));
	if (x == NULL) {
		resp->status = 500;
		resp->error = "server_error";
		resp->reason = "internal";
		resp->body = strdup("{\"error\":\"server_error\"}");
		resp->body_len = resp->body ? strlen(resp->body) : 0;
		return creto_err_set(e, CRETO_EOP, "token endpoint: out of memory");
	}
	int rc = endpoint(o, x, rq, now, resp, e);
	creto_jws_clear(&x->j);
	/* the decoded form held the assertion */
	OPENSSL_cleanse(x->buf, rq->len < sizeof(x->buf) ? rq->len + 1 : sizeof(x->buf));
	OPENSSL_cleanse((char *)x + sizeof(x->buf), sizeof(*x) - sizeof(x->buf));
	free(x);
	return rc;
}

/* ---- metadata and JWK Set ---- */
int creto_nhi_oauth_metadata(const creto_nhi_oauth *o, char **out, creto_err *e)
{
	*out = NULL;
	/* response_types_supported is required by RFC 8414 2; no response
	 * type of the authorization endpoint is offered (there is none). */
	json_t *j = json_pack("{s:s, s:s, s:s, s:[s], s:[s], s:[s,s,s], s:[]}", "issuer", o->issuer_url,
			      "token_endpoint", o->token_endpoint, "jwks_uri", o->jwks_uri,
			      "grant_types_supported", CRETO_OAUTH_GRANT, "token_endpoint_auth_methods_supported",
			      "private_key_jwt", "token_endpoint_auth_signing_alg_values_supported", "EdDSA", "Ed25519", "ES256",
			      "response_types_supported");
	*out = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	if (*out == NULL)
		return creto_err_set(e, CRETO_EOP, "metadata: out of memory");
	return CRETO_OK;
}

int creto_nhi_oauth_jwks(const creto_nhi_oauth *o, char **out, creto_err *e)
{
	const creto_pubkey *keys[1 + 63];
	size_t n = 0;
	keys[n++] = creto_signer_pubkey(o->issuer);
	for (size_t i = 0; i < o->nextra && n < sizeof(keys) / sizeof(keys[0]); i++)
		if (!creto_pubkey_equal(o->extra[i], keys[0]))
			keys[n++] = o->extra[i];
	return creto_jwks_format(keys, n, out, e);
}
