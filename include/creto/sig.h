/*
 * creto/sig.h - signatures: algorithms, public keys, signers.
 *
 * One interface for every algorithm the enclave trusts: Ed25519, ECDSA
 * P-256/P-384 (OpenSSL), ML-DSA-44/65/87 (FIPS 204, src/sig/mldsa/) and the
 * hybrids (classical + ML-DSA, both must verify).  A signer hides where its
 * secret lives: a key file (src/sig/keyfile.c) or an HSM (src/hsm/, which
 * plugs in through creto_signer_new without sig/ knowing about PKCS#11).
 *
 * Wire encodings (docs/signatures.md is normative):
 *   public key raw bytes: Ed25519 32 B; ECDSA SEC1 uncompressed point
 *     (65 B P-256, 97 B P-384); ML-DSA pk (FIPS 204); hybrid: classical || ML-DSA.
 *   signature: Ed25519 64 B; ECDSA r||s fixed width (64 B / 96 B, never DER);
 *     ML-DSA FIPS 204 encoding; hybrid: classical || ML-DSA.
 *   context: with an empty context a classical signature is the plain
 *     standard one over msg (RFC 8032 Ed25519, ECDSA with SHA-256/SHA-384),
 *     so JWS, DSSE and Sigstore bundles interoperate.
 */
#ifndef CRETO_SIG_H
#define CRETO_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "creto/error.h"

typedef enum creto_alg {
	CRETO_ALG_NONE = 0,
	CRETO_ALG_ED25519 = 1,
	CRETO_ALG_ECDSA_P256 = 2,
	CRETO_ALG_ECDSA_P384 = 3,
	CRETO_ALG_MLDSA44 = 4,
	CRETO_ALG_MLDSA65 = 5,
	CRETO_ALG_MLDSA87 = 6,
	CRETO_ALG_HYBRID = 7,       /* Ed25519 + ML-DSA-65 (the default) */
	CRETO_ALG_HYBRID_CNSA2 = 8, /* ECDSA P-384 + ML-DSA-87 */
} creto_alg;

#define CRETO_SIG_CTX_MAX 255   /* bytes of context string */
#define CRETO_KEYID_BYTES 8     /* key id = first 8 bytes of SHA-256(alg name || 0 || raw pk) */
#define CRETO_KEYID_HEXLEN 16
#define CRETO_SIG_MAX 8192      /* no signature of any algorithm is longer */
#define CRETO_PUB_MAX 4096      /* no raw public key is longer */

/* "ed25519", "ecdsa-p256", "ecdsa-p384", "ml-dsa-44", "ml-dsa-65",
 * "ml-dsa-87", "hybrid", "hybrid-cnsa2"; NULL for an unknown value. */
const char *creto_alg_name(creto_alg alg);
/* Inverse of creto_alg_name; CRETO_ALG_NONE when unknown. */
creto_alg creto_alg_from_name(const char *name);
/* Raw public key and signature lengths; 0 for CRETO_ALG_NONE. */
size_t creto_alg_pub_len(creto_alg alg);
size_t creto_alg_sig_len(creto_alg alg);
int creto_alg_is_hybrid(creto_alg alg);
/* Halves of a hybrid (CRETO_ALG_NONE for a non-hybrid). */
creto_alg creto_alg_hybrid_classical(creto_alg alg);
creto_alg creto_alg_hybrid_pq(creto_alg alg);

/* ---- public keys ---- */
typedef struct creto_pubkey creto_pubkey;

/* Build a public key from its raw encoding (validated: on-curve point,
 * exact length).  *out is owned by the caller (creto_pubkey_free).
 * A malformed key is CRETO_EREJECT. */
int creto_pubkey_new(creto_alg alg, const uint8_t *raw, size_t len, creto_pubkey **out,
		     creto_err *e) CRETO_WUR;
creto_alg creto_pubkey_alg(const creto_pubkey *pk);
/* Raw encoding; valid while pk lives. */
const uint8_t *creto_pubkey_raw(const creto_pubkey *pk, size_t *len);
/* Key id as 16 lowercase hex chars; valid while pk lives. */
const char *creto_pubkey_id(const creto_pubkey *pk);
/* Deep copy. */
int creto_pubkey_dup(const creto_pubkey *pk, creto_pubkey **out, creto_err *e) CRETO_WUR;
/* 1 when both keys have the same algorithm and raw bytes. */
int creto_pubkey_equal(const creto_pubkey *a, const creto_pubkey *b);

/* Verify sig over (ctx, msg).  CRETO_OK when valid; CRETO_EREJECT with a
 * reason ("bad signature", "signature length 63, expected 64") otherwise.
 * For a hybrid both halves must verify. */
int creto_pubkey_verify(const creto_pubkey *pk, const uint8_t *ctx, size_t ctxlen,
			const uint8_t *msg, size_t msglen, const uint8_t *sig, size_t siglen,
			creto_err *e) CRETO_WUR;
void creto_pubkey_free(creto_pubkey *pk);

/* Public key file (docs/signatures.md): parse text / load from path / format.
 * creto_pubkey_format returns a malloc'ed NUL-terminated text. */
int creto_pubkey_parse(const char *text, size_t len, creto_pubkey **out, creto_err *e) CRETO_WUR;
int creto_pubkey_load(const char *path, creto_pubkey **out, creto_err *e) CRETO_WUR;
int creto_pubkey_format(const creto_pubkey *pk, const char *comment, char **out,
			creto_err *e) CRETO_WUR;

/* Interop with X.509-style tools (Sigstore, model_signing, openssl):
 * a classical public key from a SubjectPublicKeyInfo, PEM ("-----BEGIN
 * PUBLIC KEY-----") or DER, Ed25519 / P-256 / P-384 (a compressed EC point
 * inside is accepted and stored uncompressed).  Other key types are
 * CRETO_EREJECT. */
int creto_pubkey_from_spki(const uint8_t *data, size_t len, creto_pubkey **out, creto_err *e) CRETO_WUR;
/* PEM SubjectPublicKeyInfo of a classical key, as OpenSSL and Python's
 * cryptography write it (64-column base64, trailing newline), malloc'ed.
 * The Sigstore bundle key hint is hex SHA-256 of this text. */
int creto_pubkey_to_pem(const creto_pubkey *pk, char **out, creto_err *e) CRETO_WUR;

/* ---- signers ---- */
typedef struct creto_signer creto_signer;

/* What a key store implements to plug a secret key in.  sign() produces the
 * primitive signature of msg for the algorithm of the signer's public key
 * (Ed25519: RFC 8032 over msg; ECDSA: hash msg with SHA-256/384, r||s fixed
 * width; ML-DSA: ML-DSA.Sign_internal over msg, which the sig module has
 * already made M').  Context and hybrid domain separation are applied by the
 * sig module before sign() is called.  sig has room for sigcap bytes. */
typedef struct creto_signer_ops {
	const char *kind; /* "file", "pkcs11" */
	int (*sign)(void *impl, const uint8_t *msg, size_t msglen, uint8_t *sig, size_t sigcap,
		    size_t *siglen, creto_err *e);
	void (*free)(void *impl);
} creto_signer_ops;

/* Wrap impl (owned; ops->free releases it) with public key pub (owned).
 * On failure both are released. */
int creto_signer_new(const creto_signer_ops *ops, void *impl, creto_pubkey *pub,
		     creto_signer **out, creto_err *e) CRETO_WUR;
/* Join a classical and an ML-DSA signer into one hybrid signer (both owned,
 * released on failure).  The pair must form a known hybrid algorithm. */
int creto_signer_hybrid_new(creto_signer *classical, creto_signer *pq, creto_signer **out,
			    creto_err *e) CRETO_WUR;
/* Sign (ctx, msg); *sig is malloc'ed (caller frees), *siglen its length. */
int creto_signer_sign(creto_signer *s, const uint8_t *ctx, size_t ctxlen, const uint8_t *msg,
		      size_t msglen, uint8_t **sig, size_t *siglen, creto_err *e) CRETO_WUR;
/* The signer's public key; valid while s lives. */
const creto_pubkey *creto_signer_pubkey(const creto_signer *s);
/* "file", "pkcs11", or "hybrid(<classical kind>)". */
const char *creto_signer_kind(const creto_signer *s);
void creto_signer_free(creto_signer *s);

/* ---- secret key files (docs/signatures.md) ---- */
/* The public key in a key file of either kind: a public key file, or the
 * public half of a secret key file (told apart by the tag on line 2, so
 * errors speak of the right format).  Key-store code (src/keys) can use it. */
int creto_key_load_public(const char *path, creto_pubkey **out, creto_err *e) CRETO_WUR;
/* Generate a key pair of alg; write NAME.key (0600, O_EXCL) and NAME.pub.
 * Neither file is overwritten. */
int creto_key_generate(creto_alg alg, const char *name, creto_err *e) CRETO_WUR;
/* Open a secret key file as a signer. */
int creto_secretkey_load(const char *path, creto_signer **out, creto_err *e) CRETO_WUR;

/* Generate a fresh key pair of alg in memory (kind "file"; nothing is
 * written).  Seeds come from RAND_priv_bytes. */
int creto_signer_generate(creto_alg alg, creto_signer **out, creto_err *e) CRETO_WUR;
/* The "file" signer of a secret key encoding (docs/signatures.md, "Secret
 * keys": Ed25519 seed, ECDSA scalar, ML-DSA seed xi, hybrid classical ||
 * ML-DSA); deterministic, for known-answer tests and key import. */
int creto_signer_from_secret(creto_alg alg, const uint8_t *secret, size_t len, creto_signer **out,
			     creto_err *e) CRETO_WUR;
/* Secret key file text (docs/signatures.md) of a signer made by
 * creto_signer_generate or creto_secretkey_load/parse; CRETO_EUSAGE for any
 * other signer (an HSM key never leaves its HSM).  comment may be NULL (a
 * default naming the key id).  *out holds the secret: release it with
 * creto_secret_text_free. */
int creto_secretkey_format(const creto_signer *s, const char *comment, char **out,
			   creto_err *e) CRETO_WUR;
/* Parse secret key file text (strict; checksum and key id verified). */
int creto_secretkey_parse(const char *text, size_t len, creto_signer **out, creto_err *e) CRETO_WUR;
/* Wipe and free text returned by creto_secretkey_format. NULL is fine. */
void creto_secret_text_free(char *text);

/* ---- signature files (docs/signatures.md) ----
 * A small text file naming the algorithm and the key id of the signer, so
 * that a verifier knows which key to use before verifying. */
#define CRETO_KEYFILE_MAX 16384 /* no key or signature file is longer */
typedef struct creto_sigfile {
	creto_alg alg;
	char keyid[CRETO_KEYID_HEXLEN + 1];
	uint8_t *sig; /* malloc'ed; creto_sigfile_clear releases */
	size_t siglen;
} creto_sigfile;
/* Text of a signature file for sig made by pk (malloc'ed, NUL-terminated). */
int creto_sigfile_format(const creto_pubkey *pk, const uint8_t *sig, size_t siglen, char **out,
			 creto_err *e) CRETO_WUR;
/* Parse (strict: exact signature length for the algorithm, no trailing
 * bytes); a malformed file is CRETO_EREJECT. */
int creto_sigfile_parse(const char *text, size_t len, creto_sigfile *out, creto_err *e) CRETO_WUR;
int creto_sigfile_load(const char *path, creto_sigfile *out, creto_err *e) CRETO_WUR;
void creto_sigfile_clear(creto_sigfile *sf);

/* ---- ML-DSA keys kept as a seed by a key store outside src/sig ----
 * (the HSM's hybrid key, docs/keys.md §4).  The seed is FIPS 204's xi; the
 * key pair is derived with ML-DSA.KeyGen_internal whenever it is needed, so
 * the store keeps nothing but the seed, and the expanded secret key exists
 * only inside one call and is wiped before it returns. */
#define CRETO_MLDSA_SEED_LEN 32

/* The raw public key (creto_alg_pub_len(alg) bytes) of the ML-DSA key pair
 * derived from seed; alg ml-dsa-44/65/87, else CRETO_EUSAGE. */
int creto_mldsa_seed_pubkey(creto_alg alg, const uint8_t seed[CRETO_MLDSA_SEED_LEN], uint8_t *pk,
			    size_t cap, size_t *pklen, creto_err *e) CRETO_WUR;
/* The primitive signature a creto_signer_ops sign() returns for ML-DSA:
 * ML-DSA.Sign_internal over m (the message already encoded as M' by the
 * signer layer), hedged with fresh randomness, with the key pair derived
 * from seed.  When pk is not NULL the derived public key must equal
 * pk[0..pklen), else CRETO_EREJECT (the seed is not that key's) and nothing
 * is signed.  sig receives creto_alg_sig_len(alg) bytes. */
int creto_mldsa_seed_sign(creto_alg alg, const uint8_t seed[CRETO_MLDSA_SEED_LEN],
			  const uint8_t *pk, size_t pklen, const uint8_t *m, size_t mlen,
			  uint8_t *sig, size_t sigcap, size_t *siglen, creto_err *e) CRETO_WUR;

/* ECDSA signature conversions for formats that want DER (Sigstore bundles). */
int creto_ecdsa_raw_to_der(creto_alg alg, const uint8_t *raw, size_t rawlen, uint8_t **der,
			   size_t *derlen, creto_err *e) CRETO_WUR;
int creto_ecdsa_der_to_raw(creto_alg alg, const uint8_t *der, size_t derlen, uint8_t *raw,
			   size_t rawcap, size_t *rawlen, creto_err *e) CRETO_WUR;

#endif
