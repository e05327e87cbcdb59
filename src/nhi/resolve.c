/*
 * resolve.c - token -> identity, entirely local (docs/nhi.md "Resolve").
 *
 * Order matters: bound the length, parse the header, pick the key by kid,
 * check alg against the key, verify the signature, and only then parse the
 * claims and consult the store.  The cache is consulted first and holds
 * only answers that a cold resolve at the same instant would give.
 */
#include "creto/nhi.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "util/timeutil.h"

struct creto_nhi_resolver {
	creto_nhi_store *store;
	const creto_jwks *jwks;
	nhi_cache *cache;
	EVP_MD *sha256;
	char issuer[CRETO_NHI_ISSUER_MAX + 1];
	char audience[CRETO_NHI_ISSUER_MAX + 1];
};

int creto_nhi_resolver_new(creto_nhi_store *store, const creto_jwks *jwks,
			   const creto_nhi_resolver_opts *opts, creto_nhi_resolver **out,
			   creto_err *e)
{
	*out = NULL;
	const char *iss = opts && opts->issuer ? opts->issuer : creto_nhi_store_issuer(store);
	const char *aud = opts && opts->audience ? opts->audience : CRETO_NHI_DEFAULT_AUDIENCE;
	if (strlen(iss) > CRETO_NHI_ISSUER_MAX || strlen(aud) > CRETO_NHI_ISSUER_MAX || !*aud)
		return creto_err_set(e, CRETO_EUSAGE, "resolver: issuer/audience too long or empty");
	creto_nhi_resolver *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	r->store = store;
	r->jwks = jwks;
	memcpy(r->issuer, iss, strlen(iss) + 1);
	memcpy(r->audience, aud, strlen(aud) + 1);
	r->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (r->sha256 == NULL) {
		free(r);
		return creto_err_openssl(e, "resolver: SHA-256");
	}
	if (opts && opts->cache_entries > 0) {
		r->cache = nhi_cache_new(opts->cache_entries);
		if (r->cache == NULL) {
			creto_nhi_resolver_free(r);
			return creto_err_set(e, CRETO_EOP, "resolver: cache of %zu entries: out of memory",
					     opts->cache_entries);
		}
	}
	*out = r;
	return CRETO_OK;
}

void creto_nhi_resolver_free(creto_nhi_resolver *r)
{
	if (r == NULL)
		return;
	nhi_cache_free(r->cache);
	EVP_MD_free(r->sha256);
	free(r);
}

void creto_nhi_resolver_flush(creto_nhi_resolver *r)
{
	if (r->cache)
		nhi_cache_flush(r->cache);
}

/* Every scope of the token's list must be granted to the agent. */
static int scopes_granted(const char *tok, const creto_nhi_agent *a, creto_err *e)
{
	for (const char *q = tok; *q;) {
		const char *sp = strchr(q, ' ');
		size_t n = sp ? (size_t)(sp - q) : strlen(q);
		if (!creto_nhi_scopes_has(a->scopes, q, n))
			return creto_err_set(e, CRETO_EREJECT, "scope '%.*s' not granted to agent %s",
					     (int)(n > 64 ? 64 : n), q, a->id);
		q += n;
		if (*q == ' ')
			q++;
	}
	return CRETO_OK;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

static int resolve_cold(creto_nhi_resolver *r, const char *tok, size_t len, int64_t now,
			creto_nhi_identity *id, int64_t *from, int64_t *until, creto_err *e)
{
	creto_jws j;
	id->refused = CRETO_NHI_RULE_MALFORMED;
	int rc = creto_jws_parse(tok, len, &j, e);
	if (rc != CRETO_OK)
		return rc;
	creto_nhi_rule rule = CRETO_NHI_RULE_NONE;
	const creto_pubkey *pk = creto_jwks_find(r->jwks, j.kid);
	if (pk == NULL) {
		rule = CRETO_NHI_RULE_UNKNOWN_KEY;
		rc = creto_err_set(e, CRETO_EREJECT, "unknown key id '%s' (not in the JWK Set)", j.kid);
		goto out;
	}
	if (creto_pubkey_alg(pk) != creto_jws_alg_key(j.alg)) {
		rule = CRETO_NHI_RULE_ALG;
		rc = creto_err_set(e, CRETO_EREJECT, "alg %s does not match key %s (%s)",
				   creto_jws_alg_name(j.alg), j.kid,
				   creto_alg_name(creto_pubkey_alg(pk)));
		goto out;
	}
	rc = creto_pubkey_verify(pk, NULL, 0, (const uint8_t *)tok, j.signing_input_len, j.sig,
				 j.siglen, e);
	if (rc != CRETO_OK) {
		rule = rc == CRETO_EREJECT ? CRETO_NHI_RULE_SIGNATURE : CRETO_NHI_RULE_INTERNAL;
		creto_err_ctx(e, "token signature (key %s)", j.kid);
		goto out;
	}
	creto_jwt_claims c;
	rule = CRETO_NHI_RULE_CLAIMS;
	rc = creto_jwt_claims_parse(j.payload, j.payload_len, &c, e);
	if (rc != CRETO_OK)
		goto out;
	rc = creto_jwt_claims_check(&c, r->issuer, r->audience, now, &rule, e);
	if (rc != CRETO_OK)
		goto out;
	memset(id, 0, sizeof(*id));
	rc = creto_nhi_store_get(r->store, c.sub, &id->agent, e);
	if (rc != CRETO_OK) {
		rule = rc == CRETO_EREJECT ? CRETO_NHI_RULE_UNKNOWN_AGENT : CRETO_NHI_RULE_INTERNAL;
		goto out;
	}
	const creto_nhi_agent *a = &id->agent;
	char t[CRETO_TIME_STRLEN];
	if (a->status != CRETO_NHI_ACTIVE) {
		rule = CRETO_NHI_RULE_AGENT_STATUS;
		rc = creto_err_set(e, CRETO_EREJECT, "agent %s is %s", a->id,
				   creto_nhi_status_name(a->status));
		goto out;
	}
	if (a->not_before != 0 && now < a->not_before) {
		creto_time_format(a->not_before, t);
		rule = CRETO_NHI_RULE_AGENT_VALIDITY;
		rc = creto_err_set(e, CRETO_EREJECT, "agent %s not valid before %s", a->id, t);
		goto out;
	}
	if (a->not_after != 0 && now > a->not_after) {
		creto_time_format(a->not_after, t);
		rule = CRETO_NHI_RULE_AGENT_VALIDITY;
		rc = creto_err_set(e, CRETO_EREJECT, "agent %s expired at %s", a->id, t);
		goto out;
	}
	if (a->issuer_kid[0] && strcmp(a->issuer_kid, j.kid) != 0) {
		rule = CRETO_NHI_RULE_ISSUER_KEY;
		rc = creto_err_set(e, CRETO_EREJECT, "agent %s: key %s is not its issuer key %s",
				   a->id, j.kid, a->issuer_kid);
		goto out;
	}
	if (c.has_scope) {
		rule = CRETO_NHI_RULE_SCOPE;
		rc = scopes_granted(c.scope, a, e);
		if (rc != CRETO_OK)
			goto out;
	}
	memcpy(id->scopes, c.has_scope ? c.scope : a->scopes,
	       strlen(c.has_scope ? c.scope : a->scopes) + 1);
	memcpy(id->kid, j.kid, strlen(j.kid) + 1);
	memcpy(id->jti, c.jti, strlen(c.jti) + 1);
	id->alg = j.alg;
	id->iat = c.iat;
	id->exp = c.exp;
	/* The window in which a cold resolve gives this same answer. */
	*from = max64(c.iat - CRETO_NHI_SKEW, a->not_before);
	if (c.has_nbf)
		*from = max64(*from, c.nbf - CRETO_NHI_SKEW);
	*until = c.exp + CRETO_NHI_SKEW;
	if (a->not_after != 0 && a->not_after < *until)
		*until = a->not_after;
out:
	id->refused = rc == CRETO_OK ? CRETO_NHI_RULE_NONE : rc == CRETO_EREJECT ? rule : CRETO_NHI_RULE_INTERNAL;
	creto_jws_clear(&j);
	return rc;
}

/* SHA-256 of a token for the cache key, through a digest context kept per
 * thread: EVP_Digest() would take and drop a reference on the shared
 * EVP_MD per call, and those atomic counts make threads contend. */
static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;
static int tl_ok;

static void tl_free(void *p)
{
	EVP_MD_CTX_free(p);
}

static void tl_init(void)
{
	tl_ok = pthread_key_create(&tl_key, tl_free) == 0;
}

static int token_digest(const creto_nhi_resolver *r, const char *tok, size_t len,
			uint8_t d[NHI_CACHE_DIGEST])
{
	EVP_MD_CTX *c = NULL;
	if (pthread_once(&tl_once, tl_init) == 0 && tl_ok) {
		c = pthread_getspecific(tl_key);
		if (c == NULL && (c = EVP_MD_CTX_new()) != NULL &&
		    (EVP_DigestInit_ex2(c, r->sha256, NULL) != 1 || pthread_setspecific(tl_key, c) != 0)) {
			EVP_MD_CTX_free(c);
			c = NULL;
		}
	}
	unsigned int dl = 0;
	if (c == NULL) /* no thread-local context: the plain way */
		return EVP_Digest(tok, len, d, &dl, r->sha256, NULL) == 1 ? 0 : -1;
	/* a NULL type re-initialises the context's own SHA-256 */
	return EVP_DigestInit_ex2(c, NULL, NULL) == 1 && EVP_DigestUpdate(c, tok, len) == 1 &&
			       EVP_DigestFinal_ex(c, d, &dl) == 1
		       ? 0
		       : -1;
}

int creto_nhi_resolve(creto_nhi_resolver *r, const char *tok, size_t len, int64_t now,
		      creto_nhi_identity *id, int *cached, creto_err *e)
{
	if (cached)
		*cached = 0;
	id->refused = CRETO_NHI_RULE_MALFORMED;
	if (len > CRETO_JWS_MAX)
		return creto_err_set(e, CRETO_EREJECT, "token: %zu bytes, over the %d-byte cap", len,
				     CRETO_JWS_MAX);
	uint8_t d[NHI_CACHE_DIGEST];
	/* Read the generation before the store: a status change racing with
	 * this resolve then makes the entry we insert stale, never live. */
	uint64_t gen = creto_nhi_store_generation(r->store);
	if (r->cache) {
		if (token_digest(r, tok, len, d) != 0) {
			id->refused = CRETO_NHI_RULE_INTERNAL;
			return creto_err_openssl(e, "token digest");
		}
		if (nhi_cache_get(r->cache, d, now, gen, id)) {
			if (cached)
				*cached = 1;
			return CRETO_OK;
		}
	}
	int64_t from = 0, until = 0;
	int rc = resolve_cold(r, tok, len, now, id, &from, &until, e);
	if (rc != CRETO_OK)
		return rc;
	if (r->cache)
		nhi_cache_put(r->cache, d, from, until, gen, id);
	return CRETO_OK;
}
