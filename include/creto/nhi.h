/*
 * creto/nhi.h - pre-provisioned non-human identities (agents).
 *
 * Four parts, one contract (docs/nhi.md is normative for every format):
 *   store     agents in SQLite (schema versioned by PRAGMA user_version);
 *   backup    the store encrypted with AES-256-GCM under a fresh data key
 *             wrapped by an HSM key (CKM_AES_KEY_WRAP_PAD);
 *   tokens    JWS compact (RFC 7515/7519), alg EdDSA or ES256, and the
 *             issuer's JWK Set (RFC 7517);
 *   resolver  token -> identity, verified locally, with a bounded LRU cache
 *             safe for concurrent use.
 * Library code never prints; every rejection is CRETO_EREJECT with a reason.
 */
#ifndef CRETO_NHI_H
#define CRETO_NHI_H

#include <stddef.h>
#include <stdint.h>

#include "creto/error.h"
#include "creto/keys.h"
#include "creto/sig.h"

/* ---- limits (docs/nhi.md) ---- */
#define CRETO_NHI_ID_MAX 128         /* agent id bytes: [A-Za-z0-9._:@-] */
#define CRETO_NHI_NAME_MAX 256       /* display name bytes (UTF-8, no controls) */
#define CRETO_NHI_SCOPE_MAX 256      /* bytes of one scope (printable ASCII, no space) */
#define CRETO_NHI_SCOPES_MAX 64      /* scopes per agent */
#define CRETO_NHI_SCOPES_LEN 2048    /* bytes of the space-separated scope list */
#define CRETO_NHI_ISSUER_MAX 256     /* issuer name bytes */
#define CRETO_NHI_SCHEMA_VERSION 3   /* PRAGMA user_version of a current store */
#define CRETO_NHI_AGENT_KEYS_MAX 8   /* public keys per agent (rotation overlap) */
#define CRETO_NHI_APP_ID 0x4e484931  /* PRAGMA application_id: "NHI1" */
#define CRETO_NHI_DEFAULT_ISSUER "creto-airgap"
#define CRETO_NHI_DEFAULT_AUDIENCE "creto-gateway"

/* JWS algorithms (docs/nhi.md "Token profile"): the issuer's and the agents'. */
typedef enum creto_jws_alg {
	CRETO_JWS_NONE = 0,
	CRETO_JWS_EDDSA = 1, /* Ed25519, RFC 8037 */
	CRETO_JWS_ES256 = 2, /* ECDSA P-256 SHA-256, r||s, RFC 7518 3.4 */
} creto_jws_alg;

typedef enum creto_nhi_status {
	CRETO_NHI_ACTIVE = 0,
	CRETO_NHI_SUSPENDED = 1,
	CRETO_NHI_REVOKED = 2,
} creto_nhi_status;

/* "active", "suspended", "revoked" (NULL for other values) and back (-1). */
const char *creto_nhi_status_name(creto_nhi_status s);
int creto_nhi_status_from_name(const char *name);

typedef struct creto_nhi_agent {
	char id[CRETO_NHI_ID_MAX + 1];
	char name[CRETO_NHI_NAME_MAX + 1];
	char scopes[CRETO_NHI_SCOPES_LEN + 1];       /* space-separated, in the order given */
	char issuer_kid[CRETO_KEYID_HEXLEN + 1];     /* "" = any key of the JWK Set */
	creto_nhi_status status;
	int64_t not_before; /* 0 = no lower bound */
	int64_t not_after;  /* 0 = no upper bound */
	int64_t created;
} creto_nhi_agent;

/* Syntax checks used by the store and the token profile; 1 when valid. */
int creto_nhi_id_valid(const char *id);
int creto_nhi_scope_valid(const char *scope, size_t len);
/* Join n scopes, each given separately (one --scope each), into the
 * space-separated list form.  Every scope must be valid on its own, so a
 * value holding a space ("a b") is refused like one holding a tab, never
 * taken as two scopes.  CRETO_EREJECT naming the scope, or the list over
 * CRETO_NHI_SCOPES_MAX / CRETO_NHI_SCOPES_LEN.  Duplicates are left to the
 * store's check. */
int creto_nhi_scopes_join(const char *const *scopes, size_t n, char out[CRETO_NHI_SCOPES_LEN + 1],
			  creto_err *e) CRETO_WUR;
/* 1 when the space-separated list has scope (exact match). */
int creto_nhi_scopes_has(const char *list, const char *scope, size_t len);

/* ---- store ---- */
typedef struct creto_nhi_store creto_nhi_store;

/* Create a new store at path (refused if the file exists) with the current
 * schema and the issuer name (NULL = CRETO_NHI_DEFAULT_ISSUER). */
int creto_nhi_store_init(const char *path, const char *issuer, creto_err *e) CRETO_WUR;
/* Open an existing store, applying pending migrations unless readonly.  A
 * file that is not an NHI store, has a newer schema, or holds anything but
 * exactly the known schema objects (docs/nhi.md "Schema": no trigger, view,
 * index or extra table, the tables' SQL as creto writes it) is
 * CRETO_EREJECT.  The same holds for creto_nhi_store_open_image, so a
 * restored backup is checked too. */
int creto_nhi_store_open(const char *path, int readonly, creto_nhi_store **out,
			 creto_err *e) CRETO_WUR;
/* Open a serialized SQLite image as an in-memory store.  img must come from
 * sqlite3_malloc64; ownership passes to the function, which copies it into
 * a buffer with fixed room to grow (a quarter of len, at least 1 MiB) and
 * wipes and frees img at once, on failure too.  The store never reallocates
 * that buffer (no plaintext left in freed memory) and wipes it when freed;
 * a write that would outgrow it fails (CRETO_EOP, "in-memory store full"). */
int creto_nhi_store_open_image(uint8_t *img, size_t len, creto_nhi_store **out,
			       creto_err *e) CRETO_WUR;
void creto_nhi_store_free(creto_nhi_store *s);

/* Issuer name of the store; valid while s lives. */
const char *creto_nhi_store_issuer(const creto_nhi_store *s);
/* Revocation generation: changes whenever an agent's status changes through
 * this handle or creto_nhi_store_refresh sees another writer's change. */
uint64_t creto_nhi_store_generation(const creto_nhi_store *s);
/* Check for changes by other connections (PRAGMA data_version) and bump the
 * generation if there were any. */
int creto_nhi_store_refresh(creto_nhi_store *s, creto_err *e) CRETO_WUR;

/* Add an agent (validated; a duplicate id is CRETO_EREJECT). */
int creto_nhi_store_add(creto_nhi_store *s, const creto_nhi_agent *a, creto_err *e) CRETO_WUR;
/* Group many adds in one transaction (bulk provisioning). */
int creto_nhi_store_begin(creto_nhi_store *s, creto_err *e) CRETO_WUR;
int creto_nhi_store_commit(creto_nhi_store *s, creto_err *e) CRETO_WUR;
/* Look an agent up; an unknown id is CRETO_EREJECT ("unknown agent 'x'"). */
int creto_nhi_store_get(creto_nhi_store *s, const char *id, creto_nhi_agent *out,
			creto_err *e) CRETO_WUR;
/* Change status, recording now (the caller's clock, creto/clock.h) as the
 * time of the change.  Revoked is final: any change of a revoked agent is
 * CRETO_EREJECT.  The change is read back before it commits: a store in
 * which it did not take effect is CRETO_EREJECT, never a false success. */
int creto_nhi_store_set_status(creto_nhi_store *s, const char *id, creto_nhi_status st, int64_t now,
			       creto_err *e) CRETO_WUR;
/* Call fn for every agent in id order; a non-zero return from fn stops the
 * walk and is returned. */
int creto_nhi_store_list(creto_nhi_store *s, int (*fn)(const creto_nhi_agent *a, void *arg),
			 void *arg, creto_err *e) CRETO_WUR;
/* Number of agents. */
int creto_nhi_store_count(creto_nhi_store *s, uint64_t *n, creto_err *e) CRETO_WUR;
/* A consistent serialized image of the store (sqlite3_serialize);
 * *img is sqlite3_malloc'ed, release with sqlite3_free. */
int creto_nhi_store_serialize(creto_nhi_store *s, uint8_t **img, size_t *len,
			      creto_err *e) CRETO_WUR;

/* ---- agent keys (schema 3; docs/nhi.md "Agent keys") ----
 * The public keys an agent signs its client assertions with (the token
 * endpoint, creto/nhi_oauth.h).  Private keys never enter the store.  kid is
 * the creto key id of the public key (16 hex digits); alg follows the key:
 * Ed25519 -> EdDSA, ECDSA P-256 -> ES256, nothing else.  A key is current
 * while not_before <= now <= not_after (0 = unbounded). */
typedef struct creto_nhi_agent_key {
	char agent[CRETO_NHI_ID_MAX + 1];
	char kid[CRETO_KEYID_HEXLEN + 1];
	creto_jws_alg alg;
	uint8_t pub[65]; /* raw public key: Ed25519 32 B, P-256 SEC1 uncompressed 65 B */
	size_t publen;
	int64_t not_before, not_after, added;
} creto_nhi_agent_key;

/* Register pk for the existing agent (at most CRETO_NHI_AGENT_KEYS_MAX).
 * A key of another algorithm, an unknown agent, a key already registered
 * (for this or any other agent: one key names one agent) or a bad window is
 * CRETO_EREJECT.  out (may be NULL) receives the stored record. */
int creto_nhi_store_key_add(creto_nhi_store *s, const char *agent, const creto_pubkey *pk,
			    int64_t not_before, int64_t not_after, int64_t now,
			    creto_nhi_agent_key *out, creto_err *e) CRETO_WUR;
/* Remove one key; an unknown (agent, kid) is CRETO_EREJECT. */
int creto_nhi_store_key_remove(creto_nhi_store *s, const char *agent, const char *kid,
			       creto_err *e) CRETO_WUR;
/* The key kid of agent; CRETO_EREJECT "agent X has no key K" when absent. */
int creto_nhi_store_key_get(creto_nhi_store *s, const char *agent, const char *kid,
			    creto_nhi_agent_key *out, creto_err *e) CRETO_WUR;
/* The agent and its key kid in one lookup (the token endpoint's).  Unknown
 * agent: CRETO_EREJECT "unknown agent 'X'" (a untouched); no such key:
 * CRETO_EREJECT "agent X has no key K" (a filled). */
int creto_nhi_store_agent_key(creto_nhi_store *s, const char *agent, const char *kid, creto_nhi_agent *a,
			      creto_nhi_agent_key *k, creto_err *e) CRETO_WUR;
/* Call fn for every key of agent (NULL: of every agent) in (agent, kid)
 * order; a non-zero return from fn stops the walk and is returned. */
int creto_nhi_store_key_list(creto_nhi_store *s, const char *agent,
			     int (*fn)(const creto_nhi_agent_key *k, void *arg), void *arg,
			     creto_err *e) CRETO_WUR;
/* The key as a creto public key (validated again). */
int creto_nhi_agent_key_pubkey(const creto_nhi_agent_key *k, creto_pubkey **out,
			       creto_err *e) CRETO_WUR;

/* ---- encrypted backup (docs/nhi.md "Backup format") ---- */
#define CRETO_NHI_BACKUP_MAGIC "CRNHIBK\n"
#define CRETO_NHI_BACKUP_VERSION 2          /* written; 1 (schema <= 2) still read */
#define CRETO_NHI_BACKUP_KEYID_MAX 1024        /* bytes of the wrap key id */
#define CRETO_NHI_BACKUP_WRAPPED_MAX 512       /* bytes of the wrapped data key */
#define CRETO_NHI_BACKUP_DATA_MAX (1ULL << 31) /* bytes of the plaintext image (2 GiB) */

/* How the data key is wrapped: an HSM key (creto_nhi_wrapper_hsm) or, in
 * tests, anything implementing RFC 5649 semantics. */
typedef struct creto_nhi_wrapper {
	const char *key_id; /* recorded in the header (no secrets) */
	int (*wrap)(void *ctx, const uint8_t *key, size_t len, uint8_t **wrapped, size_t *wlen,
		    creto_err *e);
	int (*unwrap)(void *ctx, const uint8_t *wrapped, size_t wlen, uint8_t *key, size_t cap,
		      size_t *klen, creto_err *e);
	void *ctx;
	char key_id_buf[CRETO_NHI_BACKUP_KEYID_MAX + 1];
	const char *uri;
	const creto_keys_opts *opts;
} creto_nhi_wrapper;

/* Fill w to wrap through creto_hsm_wrap/unwrap with the AES key named by
 * uri (kept by pointer: uri and opts must outlive w).  The key id recorded
 * is the URI without its query (no pin, no module path). */
void creto_nhi_wrapper_hsm(creto_nhi_wrapper *w, const char *uri, const creto_keys_opts *opts);

typedef struct creto_nhi_backup_info {
	uint16_t version;
	int64_t created;
	char key_id[CRETO_NHI_BACKUP_KEYID_MAX + 1];
	uint64_t data_len;
} creto_nhi_backup_info;

/* Encrypt a serialized image of s to path (atomically, mode 0600). */
int creto_nhi_backup_write(creto_nhi_store *s, const creto_nhi_wrapper *w, const char *path,
			   int64_t now, creto_err *e) CRETO_WUR;
/* Read and authenticate a backup; *img (sqlite3_malloc'ed) holds the
 * plaintext image only when the whole file authenticated.  info may be NULL. */
int creto_nhi_backup_decrypt(const char *path, const creto_nhi_wrapper *w, uint8_t **img,
			     size_t *len, creto_nhi_backup_info *info, creto_err *e) CRETO_WUR;
/* Decrypt, check it is a valid store, and open it in memory. */
int creto_nhi_backup_open(const char *path, const creto_nhi_wrapper *w, creto_nhi_store **out,
			  creto_nhi_backup_info *info, creto_err *e) CRETO_WUR;
/* Decrypt, check, and write the store to dbpath atomically (replacing it). */
int creto_nhi_backup_restore(const char *path, const creto_nhi_wrapper *w, const char *dbpath,
			     creto_nhi_backup_info *info, creto_err *e) CRETO_WUR;

/* ---- JWS compact / JWT (docs/nhi.md "Token profile") ---- */
#define CRETO_JWS_MAX 8192     /* bytes of a compact token; longer is rejected */
#define CRETO_JWS_KID_MAX 64   /* bytes of a kid */
#define CRETO_JWS_JTI_MAX 128  /* bytes of a jti */
#define CRETO_JWS_AUD_MAX 8    /* entries of an aud array */
#define CRETO_NHI_SKEW 60      /* seconds of clock skew allowed for exp/nbf/iat */

const char *creto_jws_alg_name(creto_jws_alg a); /* "EdDSA", "ES256" */
/* The signature algorithm a JWS alg needs. */
creto_alg creto_jws_alg_key(creto_jws_alg a);

/* A parsed compact JWS; fields point into the token or into owned buffers. */
typedef struct creto_jws {
	creto_jws_alg alg;
	char kid[CRETO_JWS_KID_MAX + 1];
	size_t signing_input_len; /* the first two segments: token[0..len) */
	uint8_t sig[64];
	size_t siglen;
	uint8_t *payload; /* decoded payload bytes (owned; creto_jws_clear) */
	size_t payload_len;
} creto_jws;

/* Parse a compact JWS strictly: length cap, three base64url segments,
 * header a JSON object without duplicate keys, alg EdDSA or ES256 (none and
 * HS* refused by name), kid required, typ JWT if present, no crit/jku/jwk/
 * x5u/x5c/b64, signature of the exact length.  The payload is decoded but
 * not parsed (authenticate first).  CRETO_EREJECT with the reason. */
int creto_jws_parse(const char *tok, size_t len, creto_jws *out, creto_err *e) CRETO_WUR;
void creto_jws_clear(creto_jws *j);

typedef struct creto_jwt_claims {
	char iss[CRETO_NHI_ISSUER_MAX + 1];
	char sub[CRETO_NHI_ID_MAX + 1];
	char aud[CRETO_JWS_AUD_MAX][CRETO_NHI_ISSUER_MAX + 1];
	size_t naud;
	char jti[CRETO_JWS_JTI_MAX + 1];
	int64_t iat, nbf, exp;
	int has_nbf;
	int has_scope;
	char scope[CRETO_NHI_SCOPES_LEN + 1];
} creto_jwt_claims;

/* Parse the claims of a JWT payload: JSON object, no duplicate keys; iss,
 * sub, aud (string or array), iat, exp, jti required; nbf and scope
 * optional; times integers. */
int creto_jwt_claims_parse(const uint8_t *payload, size_t len, creto_jwt_claims *out,
			   creto_err *e) CRETO_WUR;
/* Why a token was refused: the rule an audit record names (docs/nhi.md
 * "Refusal rules"), so no caller reads it out of the message text. */
typedef enum creto_nhi_rule {
	CRETO_NHI_RULE_NONE = 0,       /* not refused */
	CRETO_NHI_RULE_MALFORMED,      /* token_malformed: JWS structure, size, header */
	CRETO_NHI_RULE_UNKNOWN_KEY,    /* unknown_key: kid not in the JWK Set */
	CRETO_NHI_RULE_ALG,            /* alg_mismatch: alg is not the key's */
	CRETO_NHI_RULE_SIGNATURE,      /* token_signature */
	CRETO_NHI_RULE_CLAIMS,         /* token_claims: claims unparsable or exp <= iat */
	CRETO_NHI_RULE_ISSUER,         /* token_issuer */
	CRETO_NHI_RULE_AUDIENCE,       /* token_audience */
	CRETO_NHI_RULE_EXPIRED,        /* token_expired */
	CRETO_NHI_RULE_NOT_YET_VALID,  /* token_not_yet_valid: nbf ahead */
	CRETO_NHI_RULE_IAT,            /* token_iat: iat ahead */
	CRETO_NHI_RULE_UNKNOWN_AGENT,  /* unknown_agent */
	CRETO_NHI_RULE_AGENT_STATUS,   /* agent_status: suspended or revoked */
	CRETO_NHI_RULE_AGENT_VALIDITY, /* agent_validity: outside the agent's window */
	CRETO_NHI_RULE_ISSUER_KEY,     /* issuer_key: not the agent's bound issuer key */
	CRETO_NHI_RULE_SCOPE,          /* scope_not_granted */
	CRETO_NHI_RULE_INTERNAL,       /* internal: the store or a library failed */
} creto_nhi_rule;

/* The rule's name as above ("token_expired", ...); never NULL. */
const char *creto_nhi_rule_name(creto_nhi_rule r);

/* Check iss, aud, exp, nbf and iat against now with CRETO_NHI_SKEW.  On
 * CRETO_EREJECT, *rule (may be NULL) says which. */
int creto_jwt_claims_check(const creto_jwt_claims *c, const char *iss, const char *aud,
			   int64_t now, creto_nhi_rule *rule, creto_err *e) CRETO_WUR;

typedef struct creto_nhi_token_params {
	const char *iss;
	const char *sub;
	const char *aud;
	const char *scope; /* space-separated, NULL = no scope claim */
	const char *jti;   /* NULL = 128 random bits, base64url */
	int64_t iat, nbf, exp;
} creto_nhi_token_params;

/* Issue a compact JWS signed by s (Ed25519 -> EdDSA, ECDSA P-256 -> ES256;
 * other keys CRETO_EUSAGE).  kid = creto key id.  *out is malloc'ed. */
int creto_nhi_token_issue(creto_signer *s, const creto_nhi_token_params *p, char **out,
			  creto_err *e) CRETO_WUR;

/* Read a bearer token from the file at path ("-": standard input) into the
 * caller's buffer, with no other copy anywhere: at most cap - 2 bytes
 * (CRETO_NHI_TOKEN_BUF fits a CRETO_JWS_MAX token and its newline), one
 * trailing newline dropped, NUL-terminated, *len bytes.  A symbolic link,
 * a non-regular file (a FIFO never blocks), a larger input or a NUL byte
 * is CRETO_EREJECT.  On failure buf is wiped; on success the caller wipes
 * it (OPENSSL_cleanse) after use. */
#define CRETO_NHI_TOKEN_BUF (CRETO_JWS_MAX + 3)
int creto_nhi_token_read(const char *path, char *buf, size_t cap, size_t *len, creto_err *e) CRETO_WUR;

/* ---- JWK Set ---- */
typedef struct creto_jwks creto_jwks;

/* Format public keys as a JWK Set (RFC 7517; OKP Ed25519 / EC P-256, kid =
 * creto key id, alg, use "sig").  *out is a malloc'ed JSON text. */
int creto_jwks_format(const creto_pubkey *const *keys, size_t n, char **out,
		      creto_err *e) CRETO_WUR;
/* Parse a JWK Set strictly: no duplicate JSON keys or kids, only public OKP
 * Ed25519 / EC P-256 keys, kid required and equal to the creto key id. */
int creto_jwks_parse(const char *text, size_t len, creto_jwks **out, creto_err *e) CRETO_WUR;
int creto_jwks_load(const char *path, creto_jwks **out, creto_err *e) CRETO_WUR;
/* The key with kid, or NULL; valid while j lives. */
const creto_pubkey *creto_jwks_find(const creto_jwks *j, const char *kid);
size_t creto_jwks_count(const creto_jwks *j);
void creto_jwks_free(creto_jwks *j);

/* ---- resolver ---- */
typedef struct creto_nhi_identity {
	creto_nhi_agent agent;                  /* the store record */
	char scopes[CRETO_NHI_SCOPES_LEN + 1];  /* effective: the token's scope, or the agent's */
	char kid[CRETO_JWS_KID_MAX + 1];
	creto_jws_alg alg;
	char jti[CRETO_JWS_JTI_MAX + 1];
	int64_t iat, exp;
	creto_nhi_rule refused; /* set by a refusing creto_nhi_resolve; else NONE */
} creto_nhi_identity;

typedef struct creto_nhi_resolver_opts {
	const char *issuer;   /* NULL = the store's issuer */
	const char *audience; /* NULL = CRETO_NHI_DEFAULT_AUDIENCE */
	size_t cache_entries; /* 0 = no cache */
} creto_nhi_resolver_opts;

typedef struct creto_nhi_resolver creto_nhi_resolver;

/* store and jwks are borrowed and must outlive the resolver.  Safe for
 * concurrent creto_nhi_resolve calls from any number of threads. */
int creto_nhi_resolver_new(creto_nhi_store *store, const creto_jwks *jwks,
			   const creto_nhi_resolver_opts *opts, creto_nhi_resolver **out,
			   creto_err *e) CRETO_WUR;
/* Resolve a token at time now.  CRETO_OK fills *id (and *cached, may be
 * NULL: 1 when answered from the cache); CRETO_EREJECT says why not, in
 * e and as id->refused (CRETO_EOP: id->refused = INTERNAL).  A
 * cached answer is never returned after the token's exp (+ skew), the
 * agent's not-after, or a status change (store generation). */
int creto_nhi_resolve(creto_nhi_resolver *r, const char *tok, size_t len, int64_t now,
		      creto_nhi_identity *id, int *cached, creto_err *e) CRETO_WUR;
/* Drop every cached entry. */
void creto_nhi_resolver_flush(creto_nhi_resolver *r);
void creto_nhi_resolver_free(creto_nhi_resolver *r);

#endif
