/* test_oauth.c - the token endpoint (creto/nhi_oauth.h): issuance with
 * Ed25519 and P-256 agent keys, the access token resolving with the
 * resolver, and every refusal with its HTTP status, RFC 6749 error code and
 * audit reason; the form parser; the replay cache (bounded, handed over
 * through its state file, the warm-up rule); rate limits; aggregated
 * refusal events; metadata and JWKS.  Real store (SQLite in a temp dir),
 * real keys (OpenSSL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creto/nhi.h"
#include "creto/nhi_oauth.h"
#include "util/enc.h"

#define T0 1900000000LL
#define ISS_URL "https://creto.enclave.test"
#define TOKEN_URL ISS_URL "/oauth/token"

static char dir[256];

static const char *path(const char *name)
{
	static char p[4][512];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
	return p[k];
}

/* ---- fixture ---- */
typedef struct events {
	int n, ok, refused;
	int64_t last_count;
	char last_reason[64];
	int fail_ok; /* refuse "ok" events (a failing audit log) */
	int leaked;  /* an event field held the assertion */
	const char *assertion;
} events;

static int sink_fn(void *ctx, const creto_event *ev)
{
	events *v = ctx;
	v->n++;
	assert_string_equal(ev->component, "nhi");
	assert_string_equal(ev->event, "token");
	if (strcmp(ev->outcome, "ok") == 0)
		v->ok++;
	else
		v->refused++;
	snprintf(v->last_reason, sizeof(v->last_reason), "%s", ev->reason ? ev->reason : "");
	v->last_count = 0;
	for (size_t i = 0; i < ev->nfields; i++) {
		if (strcmp(ev->fields[i].key, "count") == 0)
			v->last_count = ev->fields[i].num;
		if (v->assertion && ev->fields[i].str && strstr(ev->fields[i].str, v->assertion))
			v->leaked = 1;
	}
	return v->fail_ok && strcmp(ev->outcome, "ok") == 0 ? 3 : 0;
}

typedef struct fx {
	creto_nhi_store *store;
	creto_signer *issuer, *ed, *ec, *ed2;
	creto_nhi_replay *replay;
	creto_nhi_oauth *o;
	events ev;
	creto_nhi_oauth_opts opts;
} fx;

static void fx_endpoint(fx *f)
{
	creto_err e;
	creto_nhi_oauth_free(f->o, T0);
	f->o = NULL;
	f->opts.sink = (creto_event_sink){sink_fn, &f->ev};
	assert_int_equal(creto_nhi_oauth_new(f->store, f->issuer, f->replay, &f->opts, &f->o, &e), CRETO_OK);
}

static void fx_new(fx *f, const char *db)
{
	memset(f, 0, sizeof(*f));
	creto_err e;
	unlink(path(db));
	assert_int_equal(creto_nhi_store_init(path(db), "creto-test", &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_open(path(db), 0, &f->store, &e), CRETO_OK);
	creto_nhi_agent a;
	memset(&a, 0, sizeof(a));
	strcpy(a.id, "agent-a");
	strcpy(a.name, "Agent A");
	strcpy(a.scopes, "model:m tool:search");
	a.created = T0 - 5000;
	assert_int_equal(creto_nhi_store_add(f->store, &a, &e), CRETO_OK);
	strcpy(a.id, "agent-b");
	assert_int_equal(creto_nhi_store_add(f->store, &a, &e), CRETO_OK);
	strcpy(a.id, "agent-short");
	a.not_after = T0 + 100; /* ends before a 15-minute token would */
	assert_int_equal(creto_nhi_store_add(f->store, &a, &e), CRETO_OK);
	assert_int_equal(creto_signer_generate(CRETO_ALG_ED25519, &f->issuer, &e), CRETO_OK);
	assert_int_equal(creto_signer_generate(CRETO_ALG_ED25519, &f->ed, &e), CRETO_OK);
	assert_int_equal(creto_signer_generate(CRETO_ALG_ECDSA_P256, &f->ec, &e), CRETO_OK);
	assert_int_equal(creto_signer_generate(CRETO_ALG_ED25519, &f->ed2, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_key_add(f->store, "agent-a", creto_signer_pubkey(f->ed), 0, 0, T0, NULL, &e),
			 CRETO_OK);
	assert_int_equal(creto_nhi_store_key_add(f->store, "agent-a", creto_signer_pubkey(f->ec), 0, 0, T0, NULL, &e),
			 CRETO_OK);
	assert_int_equal(
		creto_nhi_store_key_add(f->store, "agent-short", creto_signer_pubkey(f->ed2), 0, 0, T0, NULL, &e),
		CRETO_OK);
	/* opened well before T0: no warm-up in the way */
	assert_int_equal(creto_nhi_replay_open(NULL, 64, T0 - 1000, &f->replay, &e), CRETO_OK);
	f->opts.issuer_url = ISS_URL;
	f->opts.rate_agent = -1;
	f->opts.rate_source = -1;
	fx_endpoint(f);
}

static void fx_free(fx *f)
{
	creto_err e;
	creto_nhi_oauth_free(f->o, T0);
	assert_int_equal(creto_nhi_replay_close(f->replay, T0, &e), CRETO_OK);
	creto_nhi_store_free(f->store);
	creto_signer_free(f->issuer);
	creto_signer_free(f->ed);
	creto_signer_free(f->ec);
	creto_signer_free(f->ed2);
}

/* ---- assertions ---- */
static char *b64u(const char *s, size_t n)
{
	char *o = malloc(creto_b64_enclen(n, 1) + 1);
	creto_b64_encode(o, (const uint8_t *)s, n, 1);
	return o;
}

/* header and payload verbatim, signed by sg (alg as the signer's key). */
static char *craft(creto_signer *sg, const char *header, const char *payload)
{
	creto_err e;
	char *h = b64u(header, strlen(header)), *p = b64u(payload, strlen(payload));
	size_t n = strlen(h) + 1 + strlen(p);
	char *in = malloc(n + 200);
	snprintf(in, n + 1, "%s.%s", h, p);
	uint8_t *sig = NULL;
	size_t sl = 0;
	assert_int_equal(creto_signer_sign(sg, NULL, 0, (const uint8_t *)in, n, &sig, &sl, &e), CRETO_OK);
	in[n] = '.';
	creto_b64_encode(in + n + 1, sig, sl, 1);
	free(sig);
	free(h);
	free(p);
	return in;
}

static char *assertion_ex(creto_signer *sg, const char *alg, const char *kid, const char *sub, const char *aud,
			  int64_t iat, int64_t exp, const char *jti)
{
	char h[256], p[1024];
	snprintf(h, sizeof(h), "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg,
		 kid ? kid : creto_pubkey_id(creto_signer_pubkey(sg)));
	snprintf(p, sizeof(p),
		 "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"%s\"}", sub, sub,
		 aud, (long long)iat, (long long)exp, jti);
	return craft(sg, h, p);
}

static char *assertion(creto_signer *sg, const char *sub, const char *jti)
{
	int ed = creto_pubkey_alg(creto_signer_pubkey(sg)) == CRETO_ALG_ED25519;
	return assertion_ex(sg, ed ? "EdDSA" : "ES256", NULL, sub, TOKEN_URL, T0, T0 + 60, jti);
}

static char *form_of(const char *assertion, const char *extra)
{
	char *f = malloc(strlen(assertion) + 512);
	sprintf(f,
		"grant_type=client_credentials&client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-"
		"assertion-type%%3Ajwt-bearer&client_assertion=%s%s",
		assertion, extra ? extra : "");
	return f;
}

static const char *CT = "application/x-www-form-urlencoded";

/* Run one request; returns the status; resp filled (caller clears). */
static int run(fx *f, const char *body, const char *ct, int64_t now, creto_nhi_token_response *r)
{
	creto_err e;
	creto_nhi_token_request rq = {.body = body, .len = strlen(body), .content_type = ct, .source = "127.0.0.1"};
	int rc = creto_nhi_token_endpoint(f->o, &rq, now, r, &e);
	assert_non_null(r->body);
	if (r->status == 200)
		assert_int_equal(rc, CRETO_OK);
	else
		assert_int_not_equal(rc, CRETO_OK);
	return r->status;
}

/* Expect a refusal with status, error code and reason. */
static void refused(fx *f, const char *body, const char *ct, int64_t now, int status, const char *error,
		    const char *reason)
{
	creto_nhi_token_response r;
	int st = run(f, body, ct, now, &r);
	if (st != status || strcmp(r.error, error) != 0 || strcmp(r.reason, reason) != 0)
		fail_msg("want %d %s %s, got %d %s %s: %s", status, error, reason, st, r.error ? r.error : "-",
			 r.reason ? r.reason : "-", r.body);
	json_t *j = json_loads(r.body, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "error")), error);
	assert_non_null(json_string_value(json_object_get(j, "error_description")));
	json_decref(j);
	creto_nhi_token_response_clear(&r);
}

static void refused_assertion(fx *f, char *a, int64_t now, int status, const char *error, const char *reason)
{
	char *body = form_of(a, NULL);
	f->ev.assertion = a;
	refused(f, body, CT, now, status, error, reason);
	assert_false(f->ev.leaked);
	f->ev.assertion = NULL;
	free(body);
	free(a);
}

/* The access token of a 200 answer, checked by the resolver. */
static void issued(fx *f, const char *body, int64_t now, const char *want_scope, int64_t want_ttl)
{
	creto_nhi_token_response r;
	int st = run(f, body, CT, now, &r);
	if (st != 200)
		fail_msg("want 200, got %d: %s", st, r.body);
	json_error_t je;
	json_t *j = json_loads(r.body, JSON_REJECT_DUPLICATES, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "token_type")), "Bearer");
	assert_int_equal(json_integer_value(json_object_get(j, "expires_in")), want_ttl);
	assert_string_equal(json_string_value(json_object_get(j, "scope")), want_scope);
	const char *tok = json_string_value(json_object_get(j, "access_token"));
	assert_non_null(tok);
	/* the same JWS the gateway's resolver accepts */
	creto_err e;
	char *jw = NULL;
	assert_int_equal(creto_nhi_oauth_jwks(f->o, &jw, &e), CRETO_OK);
	creto_jwks *set = NULL;
	assert_int_equal(creto_jwks_parse(jw, strlen(jw), &set, &e), CRETO_OK);
	creto_nhi_resolver *res = NULL;
	assert_int_equal(creto_nhi_resolver_new(f->store, set, NULL, &res, &e), CRETO_OK);
	creto_nhi_identity id;
	if (creto_nhi_resolve(res, tok, strlen(tok), now + 1, &id, NULL, &e) != CRETO_OK)
		fail_msg("access token does not resolve: %s", e.msg);
	assert_string_equal(id.scopes, want_scope);
	assert_int_equal(id.exp - id.iat, want_ttl);
	creto_nhi_resolver_free(res);
	creto_jwks_free(set);
	free(jw);
	json_decref(j);
	creto_nhi_token_response_clear(&r);
}

static int setup(void **state)
{
	(void)state;
	return tmpdir_make(dir, sizeof(dir), "unit_oauth");
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove(dir);
}

/* ---- tests ---- */
static void test_issue(void **state)
{
	(void)state;
	fx f;
	fx_new(&f, "issue.db");
	char *a = assertion(f.ed, "agent-a", "j-ed");
	char *body = form_of(a, NULL);
	issued(&f, body, T0, "model:m tool:search", CRETO_OAUTH_TTL_DEFAULT); /* no scope: all the agent's */
	free(body);
	free(a);
	a = assertion(f.ec, "agent-a", "j-ec");
	body = form_of(a, "&scope=tool%3Asearch&client_id=agent-a");
	issued(&f, body, T0, "tool:search", CRETO_OAUTH_TTL_DEFAULT);
	free(body);
	free(a);
	/* aud = the issuer identifier is accepted too, typ of RFC 7523bis, aud array */
	a = craft(f.ed, "{\"alg\":\"EdDSA\",\"typ\":\"client-authentication+jwt\",\"kid\":\"KID\"}", "{}");
	free(a);
	char h[200], p[400];
	snprintf(h, sizeof(h), "{\"alg\":\"EdDSA\",\"typ\":\"client-authentication+jwt\",\"kid\":\"%s\"}",
		 creto_pubkey_id(creto_signer_pubkey(f.ed)));
	snprintf(p, sizeof(p),
		 "{\"iss\":\"agent-a\",\"sub\":\"agent-a\",\"aud\":[\"x\",\"%s\"],\"iat\":%lld,\"exp\":%lld,"
		 "\"jti\":\"j-iss\"}",
		 ISS_URL, (long long)T0, (long long)T0 + 300);
	a = craft(f.ed, h, p);
	body = form_of(a, "&scope=model%3Am+tool%3Asearch");
	issued(&f, body, T0, "model:m tool:search", CRETO_OAUTH_TTL_DEFAULT);
	free(body);
	free(a);
	/* alg "Ed25519" (RFC 9864, what WebCrypto clients send) for an Ed25519 key */
	a = assertion_ex(f.ed, "Ed25519", NULL, "agent-a", TOKEN_URL, T0, T0 + 60, "j-fs");
	body = form_of(a, NULL);
	issued(&f, body, T0, "model:m tool:search", CRETO_OAUTH_TTL_DEFAULT);
	free(body);
	free(a);
	/* never outliving the agent: agent-short ends at T0 + 100 */
	a = assertion(f.ed2, "agent-short", "j-short");
	body = form_of(a, NULL);
	issued(&f, body, T0, "model:m tool:search", 100);
	free(body);
	free(a);
	assert_int_equal(f.ev.ok, 5);
	/* a configured TTL */
	f.opts.token_ttl = 120;
	fx_endpoint(&f);
	a = assertion(f.ed, "agent-a", "j-ttl");
	body = form_of(a, NULL);
	issued(&f, body, T0, "model:m tool:search", 120);
	free(body);
	free(a);
	fx_free(&f);
}

static void test_refusals(void **state)
{
	(void)state;
	fx f;
	fx_new(&f, "refuse.db");
	const char *edkid = creto_pubkey_id(creto_signer_pubkey(f.ed));
	/* replayed jti */
	char *a = assertion(f.ed, "agent-a", "once");
	char *body = form_of(a, NULL);
	issued(&f, body, T0, "model:m tool:search", CRETO_OAUTH_TTL_DEFAULT);
	refused(&f, body, CT, T0 + 5, 401, "invalid_client", "replay");
	free(body);
	free(a);
	/* the same jti from another agent is another assertion: not a replay */
	/* wrong aud */
	refused_assertion(&f, assertion_ex(f.ed, "EdDSA", NULL, "agent-a", "https://elsewhere/oauth/token", T0, T0 + 60, "aud"),
			  T0, 401, "invalid_client", "audience");
	/* expired (beyond the skew), and too long-lived */
	refused_assertion(&f, assertion_ex(f.ed, "EdDSA", NULL, "agent-a", TOKEN_URL, T0 - 400, T0 - 100, "old"), T0, 401,
			  "invalid_client", "expired");
	refused_assertion(&f, assertion_ex(f.ed, "EdDSA", NULL, "agent-a", TOKEN_URL, T0, T0 + 3600, "long"), T0, 401,
			  "invalid_client", "lifetime");
	refused_assertion(&f, assertion_ex(f.ed, "EdDSA", NULL, "agent-a", TOKEN_URL, T0 + 200, T0 + 260, "future"), T0,
			  401, "invalid_client", "not_yet_valid");
	/* signed by a key the agent does not have / another agent's key */
	refused_assertion(&f, assertion(f.ed2, "agent-a", "k2"), T0, 401, "invalid_client", "unknown_key");
	/* alg confusion: ES256 claimed for the Ed25519 key (signed by the P-256 key) */
	refused_assertion(&f, assertion_ex(f.ec, "ES256", edkid, "agent-a", TOKEN_URL, T0, T0 + 60, "conf"), T0, 401,
			  "invalid_client", "alg_mismatch");
	refused_assertion(&f, assertion_ex(f.ed, "Ed25519", creto_pubkey_id(creto_signer_pubkey(f.ec)), "agent-a", TOKEN_URL, T0,
					   T0 + 60, "conf2"),
			  T0, 401, "invalid_client", "alg_mismatch");
	/* HS256 and none never get that far */
	refused_assertion(&f, assertion_ex(f.ed, "HS256", NULL, "agent-a", TOKEN_URL, T0, T0 + 60, "hs"), T0, 401,
			  "invalid_client", "assertion_malformed");
	refused_assertion(&f, assertion_ex(f.ed, "none", NULL, "agent-a", TOKEN_URL, T0, T0 + 60, "none"), T0, 401,
			  "invalid_client", "assertion_malformed");
	/* a signature that does not verify */
	a = assertion(f.ed, "agent-a", "badsig");
	size_t n = strlen(a);
	a[n - 5] = a[n - 5] == 'A' ? 'B' : 'A';
	refused_assertion(&f, a, T0, 401, "invalid_client", "signature");
	/* iss != sub, unknown agent, client_id mismatch */
	refused_assertion(&f, craft(f.ed, "{\"alg\":\"EdDSA\",\"kid\":\"x\"}",
				    "{\"iss\":\"agent-b\",\"sub\":\"agent-a\",\"aud\":\"" TOKEN_URL
				    "\",\"iat\":1900000000,\"exp\":1900000060,\"jti\":\"is\"}"),
			  T0, 401, "invalid_client", "iss_sub");
	refused_assertion(&f, assertion(f.ed, "agent-zzz", "unk"), T0, 401, "invalid_client", "unknown_agent");
	a = assertion(f.ed, "agent-a", "cid");
	body = form_of(a, "&client_id=agent-b");
	refused(&f, body, CT, T0, 401, "invalid_client", "client_id");
	free(body);
	free(a);
	/* scope not granted, malformed scope */
	a = assertion(f.ed, "agent-a", "sc");
	body = form_of(a, "&scope=model%3Aother");
	refused(&f, body, CT, T0, 400, "invalid_scope", "scope");
	free(body);
	free(a);
	a = assertion(f.ed, "agent-a", "sc2");
	body = form_of(a, "&scope=model%3Am++tool%3Asearch");
	refused(&f, body, CT, T0, 400, "invalid_scope", "scope");
	free(body);
	free(a);
	/* removed key: accepted, then refused once the key is gone */
	creto_err e;
	a = assertion(f.ec, "agent-a", "rm1");
	body = form_of(a, NULL);
	issued(&f, body, T0, "model:m tool:search", CRETO_OAUTH_TTL_DEFAULT);
	free(body);
	free(a);
	assert_int_equal(creto_nhi_store_key_remove(f.store, "agent-a", creto_pubkey_id(creto_signer_pubkey(f.ec)), &e),
			 CRETO_OK);
	refused_assertion(&f, assertion(f.ec, "agent-a", "rm2"), T0, 401, "invalid_client", "unknown_key");
	/* a key outside its window */
	creto_signer *late = NULL;
	assert_int_equal(creto_signer_generate(CRETO_ALG_ECDSA_P256, &late, &e), CRETO_OK);
	assert_int_equal(creto_nhi_store_key_add(f.store, "agent-a", creto_signer_pubkey(late), T0 + 1000, 0, T0, NULL, &e),
			 CRETO_OK);
	refused_assertion(&f, assertion(late, "agent-a", "late"), T0, 401, "invalid_client", "key_not_current");
	creto_signer_free(late);
	/* suspended, then revoked agent */
	assert_int_equal(creto_nhi_store_set_status(f.store, "agent-a", CRETO_NHI_SUSPENDED, T0, &e), CRETO_OK);
	refused_assertion(&f, assertion(f.ed, "agent-a", "susp"), T0, 400, "unauthorized_client", "agent_status");
	assert_int_equal(creto_nhi_store_set_status(f.store, "agent-a", CRETO_NHI_REVOKED, T0, &e), CRETO_OK);
	refused_assertion(&f, assertion(f.ed, "agent-a", "rev"), T0, 400, "unauthorized_client", "agent_status");
	/* an agent past its validity */
	refused_assertion(&f, assertion_ex(f.ed2, "EdDSA", NULL, "agent-short", TOKEN_URL, T0 + 200, T0 + 260, "exp-agent"),
			  T0 + 200, 400, "unauthorized_client", "agent_validity");
	fx_free(&f);
}

static void test_form_refusals(void **state)
{
	(void)state;
	fx f;
	fx_new(&f, "form.db");
	char *a = assertion(f.ed, "agent-a", "f1");
	char *body = form_of(a, NULL);
	/* oversized body: refused before parsing */
	char *big = malloc(CRETO_OAUTH_FORM_MAX + 100);
	memset(big, 'a', CRETO_OAUTH_FORM_MAX + 99);
	memcpy(big, "grant_type=", 11);
	big[CRETO_OAUTH_FORM_MAX + 99] = '\0';
	refused(&f, big, CT, T0, 400, "invalid_request", "body_size");
	free(big);
	/* content type */
	refused(&f, body, "application/json", T0, 400, "invalid_request", "content_type");
	refused(&f, body, NULL, T0, 400, "invalid_request", "content_type");
	/* missing fields */
	char buf[10000];
	snprintf(buf, sizeof(buf), "client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-assertion-type%%3Ajwt-bearer&client_assertion=%s", a);
	refused(&f, buf, CT, T0, 400, "invalid_request", "grant_type_missing");
	snprintf(buf, sizeof(buf), "grant_type=&client_assertion=%s", a); /* empty value = omitted */
	refused(&f, buf, CT, T0, 400, "invalid_request", "grant_type_missing");
	refused(&f, "grant_type=client_credentials", CT, T0, 401, "invalid_client", "assertion_missing");
	snprintf(buf, sizeof(buf), "grant_type=client_credentials&client_assertion=%s", a);
	refused(&f, buf, CT, T0, 401, "invalid_client", "assertion_missing");
	snprintf(buf, sizeof(buf), "grant_type=client_credentials&client_assertion_type=x&client_assertion=%s", a);
	refused(&f, buf, CT, T0, 401, "invalid_client", "assertion_type");
	refused(&f, "grant_type=password&username=u&password=p", CT, T0, 400, "unsupported_grant_type", "grant_type");
	/* duplicated fields */
	snprintf(buf, sizeof(buf), "%s&grant_type=client_credentials", body);
	refused(&f, buf, CT, T0, 400, "invalid_request", "form");
	snprintf(buf, sizeof(buf), "%s&client_assertion=%s", body, a);
	refused(&f, buf, CT, T0, 400, "invalid_request", "form");
	/* malformed encodings */
	refused(&f, "grant_type=client%2xredentials", CT, T0, 400, "invalid_request", "form");
	refused(&f, "grant_type=client_credentials&&x=1", CT, T0, 400, "invalid_request", "form");
	refused(&f, "grant_type=client_credentials&", CT, T0, 400, "invalid_request", "form");
	refused(&f, "grant_type", CT, T0, 400, "invalid_request", "form");
	refused(&f, "=x", CT, T0, 400, "invalid_request", "form");
	refused(&f, "grant_type=a%0Ab", CT, T0, 400, "invalid_request", "form");
	refused(&f, "", CT, T0, 400, "invalid_request", "form");
	/* an Authorization header as well */
	creto_nhi_token_response r;
	creto_err e;
	creto_nhi_token_request rq = {.body = body, .len = strlen(body), .content_type = CT, .source = "::1",
				      .has_authorization = 1};
	assert_int_equal(creto_nhi_token_endpoint(f.o, &rq, T0, &r, &e), CRETO_EREJECT);
	assert_string_equal(r.reason, "two_auth_methods");
	creto_nhi_token_response_clear(&r);
	/* charset parameter allowed; after all that, the body itself is fine */
	issued(&f, body, T0, "model:m tool:search", CRETO_OAUTH_TTL_DEFAULT);
	free(body);
	free(a);
	fx_free(&f);
}

static void test_form_parse(void **state)
{
	(void)state;
	creto_err e;
	creto_oauth_form fm;
	char buf[256];
	const char *in = "a=1+2%2B3&b=&c=%7e";
	assert_int_equal(creto_oauth_form_parse(in, strlen(in), buf, &fm, &e), CRETO_OK);
	assert_int_equal(fm.n, 3);
	assert_string_equal(creto_oauth_form_get(&fm, "a"), "1 2+3");
	assert_null(creto_oauth_form_get(&fm, "b"));
	assert_string_equal(creto_oauth_form_get(&fm, "c"), "~");
	assert_null(creto_oauth_form_get(&fm, "d"));
	const char *bad[] = {"a=%", "a=%4", "a=%zz", "a=1&a=2", "a=%00", "a=%C3%A9", "&a=1", "a=1&&b=2"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(creto_oauth_form_parse(bad[i], strlen(bad[i]), buf, &fm, &e), CRETO_EREJECT);
	/* at most CRETO_OAUTH_PARAMS_MAX fields */
	char many[512] = "";
	for (int i = 0; i <= CRETO_OAUTH_PARAMS_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%sf%d=1", i ? "&" : "", i);
	char big[600];
	assert_int_equal(creto_oauth_form_parse(many, strlen(many), big, &fm, &e), CRETO_EREJECT);
	assert_non_null(strstr(e.msg, "more than"));
}

static void test_replay_cache(void **state)
{
	(void)state;
	fx f;
	fx_new(&f, "replay.db");
	creto_err e;
	/* bounded: with 2 live entries a third assertion is refused (503), never
	 * an entry evicted early; once they expire there is room again */
	assert_int_equal(creto_nhi_replay_close(f.replay, T0, &e), CRETO_OK);
	assert_int_equal(creto_nhi_replay_open(NULL, 2, T0 - 1000, &f.replay, &e), CRETO_OK);
	fx_endpoint(&f);
	for (int i = 0; i < 2; i++) {
		char jti[8];
		snprintf(jti, sizeof(jti), "c%d", i);
		char *a = assertion(f.ed, "agent-a", jti);
		char *body = form_of(a, NULL);
		issued(&f, body, T0, "model:m tool:search", CRETO_OAUTH_TTL_DEFAULT);
		free(body);
		free(a);
	}
	refused_assertion(&f, assertion(f.ed, "agent-a", "c2"), T0, 503, "temporarily_unavailable", "replay_cache_full");
	assert_int_equal(creto_nhi_replay_count(f.replay, T0), 2);
	/* the first two expire at T0 + 60 + skew */
	char *a = assertion_ex(f.ed, "EdDSA", NULL, "agent-a", TOKEN_URL, T0 + 200, T0 + 260, "c3");
	char *body = form_of(a, NULL);
	issued(&f, body, T0 + 200, "model:m tool:search", CRETO_OAUTH_TTL_DEFAULT);
	free(body);
	free(a);

	/* warm-up: a cache opened now without state refuses assertions issued
	 * before now + skew */
	assert_int_equal(creto_nhi_replay_close(f.replay, T0, &e), CRETO_OK);
	assert_int_equal(creto_nhi_replay_open(NULL, 16, T0, &f.replay, &e), CRETO_OK);
	assert_int_equal(creto_nhi_replay_not_before(f.replay), T0 + CRETO_NHI_SKEW);
	fx_endpoint(&f);
	refused_assertion(&f, assertion(f.ed, "agent-a", "w1"), T0 + 10, 401, "invalid_client", "issued_before_start");

	/* hand-over through the state file: a clean close keeps every live
	 * entry, the next open takes them (and removes the file) */
	assert_int_equal(creto_nhi_replay_close(f.replay, T0, &e), CRETO_OK);
	unlink(path("jti.state"));
	assert_int_equal(creto_nhi_replay_open(path("jti.state"), 16, T0 - 1000, &f.replay, &e), CRETO_OK);
	assert_int_equal(creto_nhi_replay_not_before(f.replay), T0 - 1000 + CRETO_NHI_SKEW); /* nothing handed over */
	fx_endpoint(&f);
	a = assertion(f.ed, "agent-a", "h1");
	body = form_of(a, NULL);
	issued(&f, body, T0, "model:m tool:search", CRETO_OAUTH_TTL_DEFAULT);
	assert_int_equal(creto_nhi_replay_close(f.replay, T0 + 1, &e), CRETO_OK);
	struct stat st;
	assert_int_equal(stat(path("jti.state"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(creto_nhi_replay_open(path("jti.state"), 16, T0 + 2, &f.replay, &e), CRETO_OK);
	assert_int_equal(creto_nhi_replay_not_before(f.replay), 0);
	assert_int_equal(creto_nhi_replay_count(f.replay, T0 + 2), 1);
	assert_int_not_equal(stat(path("jti.state"), &st), 0); /* consumed: a crash from here means warm-up */
	fx_endpoint(&f);
	refused(&f, body, CT, T0 + 3, 401, "invalid_client", "replay");
	free(body);
	free(a);
	/* a state file that is not one is refused */
	assert_int_equal(creto_nhi_replay_close(f.replay, T0 + 3, &e), CRETO_OK);
	FILE *fp = fopen(path("jti.state"), "w");
	fputs("garbage", fp);
	fclose(fp);
	creto_nhi_replay *r2 = NULL;
	assert_int_equal(creto_nhi_replay_open(path("jti.state"), 16, T0, &r2, &e), CRETO_EREJECT);
	unlink(path("jti.state"));
	/* one process at a time: a second opener gives up after its bounded wait */
	creto_nhi_replay *r3 = NULL;
	assert_int_equal(creto_nhi_replay_open(path("jti.state"), 16, T0, &r2, &e), CRETO_OK);
	assert_int_equal(creto_nhi_replay_open(path("jti.state"), 16, T0, &r3, &e), CRETO_EOP);
	assert_non_null(strstr(e.msg, "in use by another process"));
	assert_int_equal(creto_nhi_replay_close(r2, T0, &e), CRETO_OK);
	assert_int_equal(creto_nhi_replay_open(NULL, 16, T0 - 1000, &f.replay, &e), CRETO_OK);
	fx_free(&f);
}

static void test_rate_limits(void **state)
{
	(void)state;
	fx f;
	fx_new(&f, "rate.db");
	/* per source: 3 a minute; a failure costs 1 + 4, so one bad request
	 * exhausts it */
	f.opts.rate_source = 3;
	fx_endpoint(&f);
	refused(&f, "grant_type=x", CT, T0, 400, "unsupported_grant_type", "grant_type");
	refused(&f, "grant_type=x", CT, T0, 429, "temporarily_unavailable", "rate_source");
	creto_nhi_token_response r;
	assert_int_equal(run(&f, "grant_type=x", CT, T0, &r), 429);
	assert_true(r.retry_after > 0);
	creto_nhi_token_response_clear(&r);
	/* a minute later it has refilled */
	char *a = assertion_ex(f.ed, "EdDSA", NULL, "agent-a", TOKEN_URL, T0 + 180, T0 + 240, "r1");
	char *body = form_of(a, NULL);
	issued(&f, body, T0 + 180, "model:m tool:search", CRETO_OAUTH_TTL_DEFAULT);
	free(body);
	free(a);
	/* per agent: 2 a minute */
	f.opts.rate_source = -1;
	f.opts.rate_agent = 2;
	fx_endpoint(&f);
	for (int i = 0; i < 3; i++) {
		char jti[8];
		snprintf(jti, sizeof(jti), "ra%d", i);
		a = assertion(f.ed, "agent-a", jti);
		body = form_of(a, NULL);
		if (i < 2)
			issued(&f, body, T0, "model:m tool:search", CRETO_OAUTH_TTL_DEFAULT);
		else
			refused(&f, body, CT, T0, 429, "temporarily_unavailable", "rate_agent");
		free(body);
		free(a);
	}
	/* bad signatures claiming agent-b do not drain agent-b's bucket */
	for (int i = 0; i < 5; i++) {
		char jti[8];
		snprintf(jti, sizeof(jti), "fb%d", i);
		refused_assertion(&f, assertion(f.ed, "agent-b", jti), T0, 401, "invalid_client", "unknown_key");
	}
	fx_free(&f);
}

static void test_events(void **state)
{
	(void)state;
	fx f;
	fx_new(&f, "events.db");
	f.opts.refusal_interval = 60;
	fx_endpoint(&f);
	/* 50 refusals of one (agent, reason): one event now, one count later */
	for (int i = 0; i < 50; i++) {
		char jti[8];
		snprintf(jti, sizeof(jti), "e%d", i);
		refused_assertion(&f, assertion(f.ed, "agent-a", jti), T0 + 200, 401, "invalid_client", "expired");
	}
	assert_int_equal(f.ev.refused, 1);
	creto_nhi_oauth_flush(f.o, T0 + 230); /* interval not over */
	assert_int_equal(f.ev.refused, 1);
	creto_nhi_oauth_flush(f.o, T0 + 300);
	assert_int_equal(f.ev.refused, 2);
	assert_int_equal(f.ev.last_count, 49);
	assert_string_equal(f.ev.last_reason, "expired");
	/* an issuance the audit log refuses is not made */
	f.ev.fail_ok = 1;
	char *a = assertion(f.ed, "agent-a", "nolog");
	char *body = form_of(a, NULL);
	refused(&f, body, CT, T0, 500, "server_error", "internal");
	free(body);
	free(a);
	f.ev.fail_ok = 0;
	fx_free(&f);
}

static void test_metadata(void **state)
{
	(void)state;
	fx f;
	fx_new(&f, "meta.db");
	creto_err e;
	char *m = NULL;
	assert_int_equal(creto_nhi_oauth_metadata(f.o, &m, &e), CRETO_OK);
	json_t *j = json_loads(m, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "issuer")), ISS_URL);
	assert_string_equal(json_string_value(json_object_get(j, "token_endpoint")), TOKEN_URL);
	assert_string_equal(json_string_value(json_object_get(j, "jwks_uri")), ISS_URL "/.well-known/jwks.json");
	json_t *am = json_object_get(j, "token_endpoint_auth_methods_supported");
	assert_int_equal(json_array_size(am), 1);
	assert_string_equal(json_string_value(json_array_get(am, 0)), "private_key_jwt");
	assert_int_equal(json_array_size(json_object_get(j, "token_endpoint_auth_signing_alg_values_supported")), 3);
	json_decref(j);
	free(m);
	char *jw = NULL;
	assert_int_equal(creto_nhi_oauth_jwks(f.o, &jw, &e), CRETO_OK);
	assert_non_null(strstr(jw, creto_pubkey_id(creto_signer_pubkey(f.issuer))));
	free(jw);
	/* bad options */
	creto_nhi_oauth *o2 = NULL;
	creto_nhi_oauth_opts bad = {.issuer_url = "ftp://x"};
	assert_int_equal(creto_nhi_oauth_new(f.store, f.issuer, f.replay, &bad, &o2, &e), CRETO_EUSAGE);
	bad.issuer_url = ISS_URL "/";
	assert_int_equal(creto_nhi_oauth_new(f.store, f.issuer, f.replay, &bad, &o2, &e), CRETO_EUSAGE);
	bad.issuer_url = ISS_URL;
	bad.token_ttl = -5;
	assert_int_equal(creto_nhi_oauth_new(f.store, f.issuer, f.replay, &bad, &o2, &e), CRETO_EUSAGE);
	fx_free(&f);
}

/* Concurrent calls: 4 threads submit the same 64 assertions; each is
 * accepted exactly once (the replay check and insert are one step). */
#define CONC_N 64
struct conc {
	fx *f;
	char **bodies;
	atomic_int ok, replay;
};

static void *conc_run(void *arg)
{
	struct conc *c = arg;
	for (int i = 0; i < CONC_N; i++) {
		creto_err e;
		creto_nhi_token_request rq = {.body = c->bodies[i], .len = strlen(c->bodies[i]), .content_type = CT,
					      .source = "127.0.0.1"};
		creto_nhi_token_response r;
		int rc = creto_nhi_token_endpoint(c->f->o, &rq, T0, &r, &e);
		if (rc == CRETO_OK)
			atomic_fetch_add(&c->ok, 1);
		else if (r.reason && strcmp(r.reason, "replay") == 0)
			atomic_fetch_add(&c->replay, 1);
		creto_nhi_token_response_clear(&r);
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	(void)state;
	fx f;
	fx_new(&f, "conc.db");
	creto_err e;
	assert_int_equal(creto_nhi_replay_close(f.replay, T0, &e), CRETO_OK);
	assert_int_equal(creto_nhi_replay_open(NULL, 1024, T0 - 1000, &f.replay, &e), CRETO_OK);
	fx_endpoint(&f);
	struct conc c = {.f = &f};
	c.bodies = calloc(CONC_N, sizeof(char *));
	for (int i = 0; i < CONC_N; i++) {
		char jti[16];
		snprintf(jti, sizeof(jti), "t%d", i);
		char *a = assertion(i % 2 ? f.ed : f.ec, "agent-a", jti);
		c.bodies[i] = form_of(a, NULL);
		free(a);
	}
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, conc_run, &c), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&c.ok), CONC_N);
	assert_int_equal(atomic_load(&c.replay), 3 * CONC_N);
	for (int i = 0; i < CONC_N; i++)
		free(c.bodies[i]);
	free(c.bodies);
	fx_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_issue),	      cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_form_refusals), cmocka_unit_test(test_form_parse),
		cmocka_unit_test(test_replay_cache),  cmocka_unit_test(test_rate_limits),
		cmocka_unit_test(test_events),	      cmocka_unit_test(test_metadata),
		cmocka_unit_test(test_concurrent),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
