/*
 * sig_internal.h - what the files of src/sig/ share and nobody else sees:
 * the layout of a public key and of a signer, the domain-separated message
 * encodings (docs/signatures.md, "Messages"), and the OpenSSL glue for the
 * classical algorithms.
 */
#ifndef CRETO_SIG_INTERNAL_H
#define CRETO_SIG_INTERNAL_H

#include <openssl/evp.h>

#include "creto/sig.h"
#include "sig/mldsa/mldsa.h"

/* Labels that begin every domain-separated message (docs/signatures.md). */
#define CRETO_SIG_CTX_LABEL "creto-ctx-v1"
#define CRETO_SIG_HYBRID_LABEL "creto-hybrid-v1"
#define CRETO_SIG_HYBRID_BIND_BYTES 64 /* SHA-512 of the hybrid raw public key */

/* Secret key encodings (key files): Ed25519 32-byte seed, ECDSA the private
 * scalar big-endian fixed width, ML-DSA the 32-byte KeyGen seed xi, hybrid
 * classical || ML-DSA. */
#define CRETO_SECRET_MAX 96

struct creto_pubkey {
	creto_alg alg;
	uint8_t *raw;
	size_t rawlen;
	char id[CRETO_KEYID_HEXLEN + 1];
	EVP_PKEY *pkey;           /* classical algorithms: cached for fast verify */
	EVP_PKEY_CTX *vctx;       /* ECDSA: verify-initialised template, duplicated per call */
	EVP_MD_CTX *vmd;          /* Ed25519: DigestVerify-initialised template, copied per call */
	creto_pubkey *cl, *pq;    /* hybrids: the two halves */
	uint8_t bind[CRETO_SIG_HYBRID_BIND_BYTES]; /* hybrids: SHA-512(raw) */
};

struct creto_signer {
	const creto_signer_ops *ops; /* NULL for a hybrid */
	void *impl;
	creto_pubkey *pub;
	creto_signer *cl, *pq; /* hybrid halves */
	char kind[64];
};

/* Per-algorithm facts. */
int creto_alg_is_classical(creto_alg alg);
int creto_alg_is_mldsa(creto_alg alg);
creto_mldsa_ps creto_alg_mldsa_ps(creto_alg alg);
/* OpenSSL curve name ("P-256", "P-384") and digest of an ECDSA algorithm. */
const char *creto_alg_curve(creto_alg alg);
const EVP_MD *creto_alg_md(creto_alg alg);
/* Fixed width of one ECDSA coordinate / scalar: 32 or 48. */
size_t creto_alg_ec_width(creto_alg alg);
/* Length of a secret key's encoding in a key file. */
size_t creto_alg_secret_len(creto_alg alg);

/* The message a classical key signs for (ctx, msg): msg itself when ctx is
 * empty (*out = msg, *owned = NULL), else the creto-ctx-v1 encoding in a
 * malloc'ed *owned. */
int creto_sig_classical_msg(creto_alg alg, const uint8_t *ctx, size_t ctxlen, const uint8_t *msg,
			    size_t msglen, const uint8_t **out, size_t *outlen, uint8_t **owned,
			    creto_err *e) CRETO_WUR;
/* ML-DSA pure M' = 0 || ctxlen || ctx || msg, malloc'ed. */
int creto_sig_mldsa_mprime(const uint8_t *ctx, size_t ctxlen, const uint8_t *msg, size_t msglen,
			   uint8_t **out, size_t *outlen, creto_err *e) CRETO_WUR;
/* The message both halves of hybrid pk sign, malloc'ed. */
int creto_sig_hybrid_msg(const creto_pubkey *pk, const uint8_t *ctx, size_t ctxlen,
			 const uint8_t *msg, size_t msglen, uint8_t **out, size_t *outlen,
			 creto_err *e) CRETO_WUR;

/* The primitive verify of a non-hybrid key over an already-encoded message
 * (no context processing): Ed25519 / ECDSA r||s over m, ML-DSA
 * Verify_internal over m = M'. */
int creto_sig_verify_primitive(const creto_pubkey *pk, const uint8_t *m, size_t mlen,
			       const uint8_t *sig, size_t siglen, creto_err *e) CRETO_WUR;

/* Fill the key id of (alg, raw) into id (17 bytes). */
int creto_sig_keyid(creto_alg alg, const uint8_t *raw, size_t rawlen,
		    char id[CRETO_KEYID_HEXLEN + 1], creto_err *e) CRETO_WUR;

#endif
