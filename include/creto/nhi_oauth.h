/*
 * creto/nhi_oauth.h - the token endpoint: agents obtain their own
 * short-lived access tokens (OAuth 2.0 client credentials, RFC 6749 §4.4,
 * authenticated with private_key_jwt, RFC 7523 §2.2/§3), plus the
 * authorization server metadata (RFC 8414) and the issuer's JWK Set.
 *
 * No HTTP here: the gateway's HTTP server (or `creto nhi token exchange`)
 * hands over the request body and a few header facts, and sends back the
 * status and JSON body this module fills.  docs/nhi.md "Token endpoint" is
 * normative: every rule, its error code and its audit reason.
 *
 * Thread-safe: one creto_nhi_oauth may serve any number of threads.  The
 * replay cache is a separate object so that it outlives a configuration
 * reload (SIGHUP): build a new creto_nhi_oauth around the same replay cache.
 */
#ifndef CRETO_NHI_OAUTH_H
#define CRETO_NHI_OAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "creto/error.h"
#include "creto/event.h"
#include "creto/nhi.h"
#include "creto/sig.h"

#define CRETO_OAUTH_FORM_MAX 12288          /* bytes of a request body; more is refused unread */
#define CRETO_OAUTH_PARAMS_MAX 16           /* name=value pairs in a body */
#define CRETO_OAUTH_ASSERTION_MAX_LIFE 300  /* an assertion's exp at most this far after now (+ skew) */
#define CRETO_OAUTH_TTL_DEFAULT 900         /* access token lifetime, seconds */
#define CRETO_OAUTH_TTL_MAX 86400
#define CRETO_OAUTH_URL_MAX 512
#define CRETO_OAUTH_REPLAY_DEFAULT 65536    /* jti entries remembered */
#define CRETO_OAUTH_GRANT "client_credentials"
#define CRETO_OAUTH_ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/* ---- the replay cache ----
 * Every accepted assertion's (sub, jti) until its exp + skew.  Bounded:
 * when `capacity` live entries are held, new assertions are refused
 * (temporarily_unavailable) rather than any entry dropped early.
 * With a state file: open takes an exclusive lock on FILE.lock (one process
 * at a time; waits at most 5 s for it, then CRETO_EOP "in use by another
 * process"), loads FILE and removes it; close writes FILE again (atomic,
 * 0600) and unlocks.  A clean close therefore hands every live entry to the
 * next process; after a crash there is no FILE, and the cache refuses every
 * assertion whose iat is before open time + CRETO_NHI_SKEW, so an assertion
 * accepted before the crash can never be replayed (docs/nhi.md). */
typedef struct creto_nhi_replay creto_nhi_replay;

/* path NULL: in memory only (the warm-up rule above applies from now). */
int creto_nhi_replay_open(const char *path, size_t capacity, int64_t now, creto_nhi_replay **out,
			  creto_err *e) CRETO_WUR;
/* Save (when opened with a path) and release.  NULL is fine.  A failed save
 * is reported; the cache is freed either way. */
int creto_nhi_replay_close(creto_nhi_replay *r, int64_t now, creto_err *e) CRETO_WUR;
/* Write an empty state file at path for a first start (nothing was ever
 * accepted, so no warm-up is needed): under the lock, refused when path
 * exists.  Never after a crash: a missing state file then is what makes the
 * next start refuse old assertions. */
int creto_nhi_replay_init(const char *path, int64_t now, creto_err *e) CRETO_WUR;
/* Live entries at now. */
size_t creto_nhi_replay_count(creto_nhi_replay *r, int64_t now);
/* Assertions with iat before this are refused (0 when the state was loaded). */
int64_t creto_nhi_replay_not_before(const creto_nhi_replay *r);

/* ---- the endpoint ---- */
typedef struct creto_nhi_oauth_opts {
	const char *issuer_url;     /* RFC 8414 issuer identifier, https URL without query/fragment (required) */
	const char *token_endpoint; /* NULL: issuer_url + "/oauth/token"; an assertion's aud must hold it or issuer_url */
	const char *jwks_uri;       /* NULL: issuer_url + "/.well-known/jwks.json" */
	const char *audience;       /* aud of access tokens; NULL: CRETO_NHI_DEFAULT_AUDIENCE */
	int64_t token_ttl;          /* seconds; 0: CRETO_OAUTH_TTL_DEFAULT */
	/* Rate limits, token buckets refilled per minute with a burst of one
	 * minute's worth; 0: the default, -1: off.  A request costs 1, a refused
	 * one 1 + failure_weight. */
	int rate_agent;             /* per agent (charged once its assertion's signature verified); default 30 */
	int rate_source;            /* per source address; default 120 */
	int failure_weight;         /* default 4 */
	int refusal_interval;       /* seconds over which refusals are aggregated; 0: 60 */
	const creto_pubkey *const *extra_keys; /* more issuer keys for the JWK Set (rotation); may be NULL */
	size_t nextra;
	creto_event_sink sink;      /* audit; an issuance whose event the sink refuses is not made */
} creto_nhi_oauth_opts;

typedef struct creto_nhi_oauth creto_nhi_oauth;

/* store, issuer, replay and everything in opts are borrowed and must outlive
 * the endpoint.  issuer signs access tokens (Ed25519 or P-256: a key file
 * or an HSM key).  CRETO_EUSAGE for a bad option. */
int creto_nhi_oauth_new(creto_nhi_store *store, creto_signer *issuer, creto_nhi_replay *replay,
			const creto_nhi_oauth_opts *opts, creto_nhi_oauth **out, creto_err *e) CRETO_WUR;
/* Emits pending aggregated refusals (at now) and frees.  NULL is fine. */
void creto_nhi_oauth_free(creto_nhi_oauth *o, int64_t now);
/* Emit the aggregated refusal counts of every interval that has ended by
 * now (the endpoint also does this on every request); call it from a timer
 * so a quiet endpoint still reports. */
void creto_nhi_oauth_flush(creto_nhi_oauth *o, int64_t now);

/* What the HTTP layer knows about one POST to the token endpoint. */
typedef struct creto_nhi_token_request {
	const char *body;          /* the request body (not NUL-terminated) */
	size_t len;                /* its length: over CRETO_OAUTH_FORM_MAX is refused */
	const char *content_type;  /* the Content-Type header, NULL when absent */
	const char *source;        /* the client's address ("127.0.0.1", "::1"), for rate limits and audit */
	int has_authorization;     /* 1 when an Authorization header came too (a second auth method) */
} creto_nhi_token_request;

typedef struct creto_nhi_token_response {
	int status;             /* HTTP status: 200, 400, 401, 429, 500, 503 */
	char *body;             /* JSON, malloc'ed; holds the access token on 200: creto_nhi_token_response_clear */
	size_t body_len;
	int retry_after;        /* seconds, for 429/503 (send Retry-After); else 0 */
	const char *error;      /* the RFC 6749 §5.2 code, NULL on 200 */
	const char *reason;     /* the rule (docs/nhi.md), NULL on 200 */
} creto_nhi_token_response;

/* Run the endpoint on one request at time now.  Always fills *resp (a 500
 * server_error body when nothing else could be built) and returns
 * CRETO_OK (a token was issued), CRETO_EREJECT (refused: e names the rule
 * and the detail, never the assertion) or CRETO_EOP (internal failure).
 * The HTTP layer sends resp->status, resp->body with Content-Type
 * application/json, Cache-Control: no-store, Pragma: no-cache, and
 * Retry-After when resp->retry_after > 0. */
int creto_nhi_token_endpoint(creto_nhi_oauth *o, const creto_nhi_token_request *rq, int64_t now,
			     creto_nhi_token_response *resp, creto_err *e) CRETO_WUR;
/* Wipe and free the body.  NULL is fine. */
void creto_nhi_token_response_clear(creto_nhi_token_response *resp);

/* RFC 8414 metadata (GET /.well-known/oauth-authorization-server) and the
 * issuer JWK Set (GET jwks_uri), as malloc'ed JSON texts. */
int creto_nhi_oauth_metadata(const creto_nhi_oauth *o, char **out, creto_err *e) CRETO_WUR;
int creto_nhi_oauth_jwks(const creto_nhi_oauth *o, char **out, creto_err *e) CRETO_WUR;

/* Strict application/x-www-form-urlencoded parsing, exposed for the fuzz
 * target: at most CRETO_OAUTH_PARAMS_MAX pairs, each "name=value" with a
 * non-empty name, percent-escapes %XX only, '+' as space, no duplicate
 * name, decoded bytes printable ASCII.  Fills names/values (pointers into
 * buf, which must hold len + 1 bytes).  CRETO_EREJECT naming the problem. */
typedef struct creto_oauth_form {
	const char *name[CRETO_OAUTH_PARAMS_MAX];
	const char *value[CRETO_OAUTH_PARAMS_MAX];
	size_t n;
} creto_oauth_form;
int creto_oauth_form_parse(const char *body, size_t len, char *buf, creto_oauth_form *out,
			   creto_err *e) CRETO_WUR;
/* The value of name, or NULL; an empty value counts as absent (RFC 6749 §3.2). */
const char *creto_oauth_form_get(const creto_oauth_form *f, const char *name);

#endif
