/*
 * creto/dsse.h - DSSE envelopes (secure-systems-lab/dsse v1), the signed
 * wrapper of model manifests and update statements.
 *
 *   {"payload": B64(body), "payloadType": TYPE,
 *    "signatures": [{"keyid": KEYID, "sig": B64(SIG)}, ...]}
 *
 * Each signature is over PAE(TYPE, body) =
 *   "DSSEv1" SP LEN(TYPE) SP TYPE SP LEN(body) SP body   (LEN: ASCII decimal)
 * with an empty signature context (the PAE is the domain separation).
 * SIG is DER for ECDSA (what Sigstore expects), the raw creto encoding
 * (include/creto/sig.h) for every other algorithm, hybrids included.
 * KEYID is the creto key id, or "" in Sigstore bundles (CRETO_DSSE_KEYID_EMPTY).
 * Base64 is RFC 4648 standard with padding.  docs/signatures.md is normative.
 *
 * Typical use:
 *   sign:   creto_dsse_new(type, body) -> creto_dsse_sign(env, signer) ... ->
 *           creto_dsse_format(env) (or creto_dsse_to_json to embed in a bundle)
 *   verify: creto_dsse_parse(text) (or creto_dsse_from_json) ->
 *           creto_dsse_verify(env, pk, type, &payload)
 *           (M-of-N callers loop with creto_dsse_sig_count / creto_dsse_verify_sig)
 */
#ifndef CRETO_DSSE_H
#define CRETO_DSSE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "creto/error.h"
#include "creto/sig.h"

#define CRETO_DSSE_MAX_BYTES ((size_t)64 << 20) /* largest envelope text parsed */
#define CRETO_DSSE_MAX_SIGS 64                  /* signatures in one envelope */
#define CRETO_DSSE_TYPE_MAX 256                 /* bytes of payloadType */
#define CRETO_DSSE_KEYID_MAX 256                /* bytes of a keyid */

/* keyid written by creto_dsse_sign. */
#define CRETO_DSSE_KEYID_CRETO 0 /* the signer's creto key id */
#define CRETO_DSSE_KEYID_EMPTY 1 /* "" (Sigstore bundles) */

typedef struct creto_dsse creto_dsse;

/* A new unsigned envelope over a copy of payload.  type must be 1..256
 * printable ASCII bytes. */
int creto_dsse_new(const char *type, const uint8_t *payload, size_t len, creto_dsse **out,
		   creto_err *e) CRETO_WUR;

/* Append a signature by s over PAE(type, payload). keyid_mode: CRETO_DSSE_KEYID_*. */
int creto_dsse_sign(creto_dsse *env, creto_signer *s, int keyid_mode, creto_err *e) CRETO_WUR;

/* The envelope as a new JSON object (caller decrefs) / as compact JSON text
 * with a trailing newline (malloc'ed, NUL-terminated). */
int creto_dsse_to_json(const creto_dsse *env, json_t **out, creto_err *e) CRETO_WUR;
int creto_dsse_format(const creto_dsse *env, char **out, creto_err *e) CRETO_WUR;

/* Parse an envelope strictly: at most CRETO_DSSE_MAX_BYTES, duplicate or
 * unknown members refused, canonical base64, 1..CRETO_DSSE_MAX_SIGS
 * signatures.  Nothing is verified yet.  Malformed input is CRETO_EREJECT. */
int creto_dsse_parse(const char *text, size_t len, creto_dsse **out, creto_err *e) CRETO_WUR;
int creto_dsse_from_json(const json_t *obj, creto_dsse **out, creto_err *e) CRETO_WUR;

/* Accessors (valid while env lives).  The payload is UNVERIFIED until a
 * verify call succeeds. */
const char *creto_dsse_payload_type(const creto_dsse *env);
const uint8_t *creto_dsse_payload_unverified(const creto_dsse *env, size_t *len);
size_t creto_dsse_sig_count(const creto_dsse *env);
/* keyid of signature i ("" when absent); NULL when i is out of range. */
const char *creto_dsse_sig_keyid(const creto_dsse *env, size_t i);

/* Verify signature i with pk (its keyid must be pk's id or ""). */
int creto_dsse_verify_sig(const creto_dsse *env, size_t i, const creto_pubkey *pk,
			  creto_err *e) CRETO_WUR;

/* Verify that pk signed env and, when type is not NULL, that payloadType is
 * exactly type.  Signatures whose keyid names another key are skipped; one
 * valid signature by pk suffices.  On success *payload and *len (either may be NULL)
 * point at the verified payload, valid while env lives.  CRETO_EREJECT
 * naming the key id when no signature by pk verifies. */
int creto_dsse_verify(const creto_dsse *env, const creto_pubkey *pk, const char *type,
		      const uint8_t **payload, size_t *len, creto_err *e) CRETO_WUR;

/* PAE(type, payload), malloc'ed. */
int creto_dsse_pae(const char *type, const uint8_t *payload, size_t len, uint8_t **out,
		   size_t *outlen, creto_err *e) CRETO_WUR;

void creto_dsse_free(creto_dsse *env);

#endif
