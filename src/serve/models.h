/*
 * serve/models.h - serve's gate between an installed model-weights version
 * and the gateway routing it (docs/serve.md "Model versions"): the version
 * is checked with `creto model verify --sig` semantics against the
 * signature it carries (PAYLOAD/model.sig), by any key of the trust root's
 * `model-weights` role, and only then recorded as verified in serve's own
 * record (RUNTIME/verified-models).  The record is not a trust store: it
 * names versions that passed, never keys.
 *
 * Internal to src/serve; library code (never prints).
 */
#ifndef CRETO_SERVE_MODELS_H
#define CRETO_SERVE_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "creto/error.h"
#include "creto/model.h"
#include "creto/sig.h"

/* The signature file inside a model-weights payload. */
#define SERVE_MODEL_SIG "model.sig"
/* serve's record and the per-model routable version files, in runtime_dir. */
#define SERVE_VERIFIED_FILE "verified-models"
#define SERVE_ROUTABLE_DIR "routable"

/* The keys of the `model-weights` role of the trust root in force: the
 * operator's root at trust_path or the rotated root state_dir/trust-root.json,
 * whichever has version want_version (the update context's root; 0: the
 * newer of the two).  Both are parsed and self-signature checked
 * (creto_trust_root_load).  *keys malloc'ed (serve_model_keys_free).
 * CRETO_EREJECT when the root has no model-weights role. */
int serve_model_keys_load(const char *trust_path, const char *state_dir, int64_t want_version,
			  creto_pubkey ***keys, size_t *nkeys, int64_t *root_version,
			  creto_err *e) CRETO_WUR;
void serve_model_keys_free(creto_pubkey **keys, size_t nkeys);

/* Verify the model directory dir: dir/model.sig (a Sigstore bundle v0.3 or
 * DSSE envelope, creto_model_verify_signature) must verify with one of
 * keys; its statement is parsed as a manifest and dir compared with it
 * (creto_model_verify, model.sig itself ignored).  keyid (17 bytes) and
 * digest receive the signing key and the manifest digest.  CRETO_EREJECT
 * with one line naming why ("no model.sig", "signature by no key of the
 * model-weights role", the first difference); CRETO_EOP for I/O. */
int serve_model_verify(const char *dir, creto_pubkey *const *keys, size_t nkeys, char keyid[17],
		       char digest[CRETO_MODEL_DIGEST_STR_MAX], creto_err *e) CRETO_WUR;

/* One line of the record: "NAME VERSION STATEMENT_DIGEST KEYID DIGEST". */
typedef struct serve_verified {
	char name[65];
	int64_t version;
	char statement_digest[65];
	char keyid[17];
	char digest[CRETO_MODEL_DIGEST_STR_MAX];
} serve_verified;

/* Read runtime_dir/verified-models (missing: empty).  A malformed line is
 * CRETO_EOP naming it (serve does not guess).  *out malloc'ed. */
int serve_verified_load(const char *runtime_dir, serve_verified **out, size_t *n,
			creto_err *e) CRETO_WUR;
/* Add v (replacing a line of the same NAME VERSION), atomically. */
int serve_verified_add(const char *runtime_dir, const serve_verified *v, creto_err *e) CRETO_WUR;
/* 1 when list holds name/version with that statement digest. */
int serve_verified_has(const serve_verified *list, size_t n, const char *name, int64_t version,
		       const char *statement_digest);
/* Write runtime_dir/routable/NAME = "VERSION\n" atomically (mode 0644),
 * creating the directory; a no-op when it already says so. */
int serve_routable_write(const char *runtime_dir, const char *name, int64_t version,
			 creto_err *e) CRETO_WUR;

#endif
