/*
 * creto/model.h - model integrity: a deterministic digest of a model
 * directory, its manifest in the OpenSSF model-signing format (an in-toto
 * Statement v1 with predicateType https://model_signing/signature/v1.0), the
 * comparison of a directory against a manifest, and signatures over the
 * manifest (DSSE envelope; Sigstore bundle v0.3 for ECDSA keys).
 * docs/model-manifest.md is normative.
 *
 * Flow: walker (openat under the root fd, regular files only) -> hash pool
 * (creto/hash.h) -> manifest -> (signature) -> compare.
 */
#ifndef CRETO_MODEL_H
#define CRETO_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "creto/error.h"
#include "creto/hash.h"
#include "creto/keys.h"
#include "creto/sig.h"

typedef enum creto_model_method {
	CRETO_MODEL_DEFAULT = 0, /* sha3-256: SHARDS of CRETO_MODEL_SHARD_SHA3; sha256: FILES */
	CRETO_MODEL_FILES = 1,   /* one resource per file */
	CRETO_MODEL_SHARDS = 2,  /* one resource per shard "path:start:end" */
} creto_model_method;

#define CRETO_MODEL_SHARD_DEFAULT 1000000000ULL   /* upstream default shard size (sha256) */
/* The sha3-256 default shard size: a constant, never derived from the
 * machine, so that a manifest is the same everywhere; small enough that a
 * single large file spreads over every core. */
#define CRETO_MODEL_SHARD_SHA3 (64ULL << 20)
#define CRETO_MODEL_MANIFEST_MAX (64u << 20)       /* largest manifest / bundle accepted */
#define CRETO_MODEL_RESOURCES_MAX 1000000u         /* most resources in one manifest */
#define CRETO_MODEL_PATH_MAX 4096                  /* longest resource path, bytes */
#define CRETO_MODEL_DEPTH_MAX 128                  /* deepest directory nesting walked */
#define CRETO_MODEL_PREDICATE_TYPE "https://model_signing/signature/v1.0"
#define CRETO_MODEL_PAYLOAD_TYPE "application/vnd.in-toto+json"
#define CRETO_MODEL_BUNDLE_MEDIA_TYPE "application/vnd.dev.sigstore.bundle.v0.3+json"

/* How a directory is turned into resources. Zeroed = defaults. */
typedef struct creto_model_opts {
	creto_hash_alg hash;          /* NONE = SHA3-256 */
	creto_model_method method;    /* DEFAULT: SHARDS for sha3-256, FILES for sha256 */
	uint64_t shard_size;          /* shards only; 0 = CRETO_MODEL_SHARD_SHA3 for sha3-256,
				       * CRETO_MODEL_SHARD_DEFAULT for sha256 */
	int allow_symlinks;           /* follow symlinks that stay inside the root */
	const char *const *ignore;    /* extra paths to skip, relative to the root */
	size_t nignore;
	unsigned threads;             /* 0 = one per CPU */
} creto_model_opts;

typedef struct creto_model_manifest creto_model_manifest;

/* Walk dir and hash it into a manifest (*out owned by the caller).  The
 * default ignores (.git, .gitattributes, .github, .gitignore) always apply.
 * CRETO_EREJECT for what the directory contains that is refused (a symlink
 * without allow_symlinks or leaving the root, a special file, a name that is
 * not UTF-8, too deep or too many resources, a file replaced by something
 * other than a regular file after the walk); CRETO_EOP for I/O errors and
 * for a file that changed while it was hashed ("PATH: changed while being
 * hashed"); CRETO_EUSAGE for bad options or a dir that is not a directory. */
int creto_model_build(const char *dir, const creto_model_opts *o, creto_model_manifest **out,
		      creto_err *e) CRETO_WUR;

/* The statement as JSON text (indented, trailing newline), malloc'ed and
 * NUL-terminated; caller frees.  These bytes are what gets signed. */
int creto_model_manifest_json(const creto_model_manifest *m, char **out, size_t *outlen,
			      creto_err *e) CRETO_WUR;

/* Parse an untrusted statement: at most CRETO_MODEL_MANIFEST_MAX bytes,
 * strict JSON (duplicate keys, trailing bytes, unknown fields refused except
 * inside "predicate"), sorted unique resource names, consistent shards, and a
 * subject digest equal to the recomputed root.  CRETO_EREJECT naming the
 * field on any defect. */
int creto_model_manifest_parse(const uint8_t *buf, size_t len, creto_model_manifest **out,
			       creto_err *e) CRETO_WUR;
/* creto_model_manifest_parse of a file (O_NOFOLLOW, bounded). */
int creto_model_manifest_load(const char *path, creto_model_manifest **out,
			      creto_err *e) CRETO_WUR;

void creto_model_manifest_free(creto_model_manifest *m);

/* Accessors; strings valid while m lives. */
const char *creto_model_manifest_name(const creto_model_manifest *m);
creto_hash_alg creto_model_manifest_hash(const creto_model_manifest *m);
creto_model_method creto_model_manifest_method(const creto_model_manifest *m);
uint64_t creto_model_manifest_shard_size(const creto_model_manifest *m);
int creto_model_manifest_allow_symlinks(const creto_model_manifest *m);
size_t creto_model_manifest_count(const creto_model_manifest *m);
/* Resource i (< count): its name and digest (creto_hash_len bytes). */
const char *creto_model_manifest_resource(const creto_model_manifest *m, size_t i,
					  const uint8_t **digest);
/* Number of ignore_paths and entry i. */
size_t creto_model_manifest_nignore(const creto_model_manifest *m);
const char *creto_model_manifest_ignore(const creto_model_manifest *m, size_t i);
/* Number of distinct files and their total size (build only; 0 when parsed). */
size_t creto_model_manifest_files(const creto_model_manifest *m);
uint64_t creto_model_manifest_bytes(const creto_model_manifest *m);
/* The root digest (docs/model-manifest.md §1).  sha256 manifests: SHA-256
 * over the concatenated raw resource digests (model-signing's).  sha3-256
 * manifests: SHA-256 over a header naming the method, shard size and
 * allow_symlinks, then each resource's name and digest; every file
 * contributes (an empty file as one empty shard). */
const uint8_t *creto_model_manifest_root(const creto_model_manifest *m);
/* 1 when the root digest binds how the directory is read (method, shard
 * size, allow_symlinks) and every file by name, as for sha3-256 manifests:
 * then a root pinned by --expect confirms all of the manifest except
 * ignore_paths and the informative model name.  0 for sha256 manifests. */
int creto_model_manifest_root_binds_layout(const creto_model_manifest *m);
/* "<hash_type>:<64 hex of the root>" into out. */
#define CRETO_MODEL_DIGEST_STR_MAX 80
void creto_model_manifest_digest_str(const creto_model_manifest *m,
				     char out[CRETO_MODEL_DIGEST_STR_MAX]);

/* Parse "<hash_type>:<hex>" (as printed by `creto model hash`).
 * CRETO_EUSAGE when malformed. */
int creto_model_parse_digest_str(const char *s, creto_hash_alg *alg, uint8_t root[32],
				 creto_err *e) CRETO_WUR;

/* What differs between a manifest and a directory. */
typedef enum creto_model_diff_kind {
	CRETO_MODEL_SAME = 0,
	CRETO_MODEL_MODIFIED = 1,
	CRETO_MODEL_MISSING = 2,
	CRETO_MODEL_EXTRA = 3,
	CRETO_MODEL_RENAMED = 4,
} creto_model_diff_kind;

typedef struct creto_model_diff {
	size_t modified, missing, extra, renamed;
	creto_model_diff_kind first_kind;         /* SAME when nothing differs */
	char first[CRETO_MODEL_PATH_MAX + 1];     /* path of the first difference (sort order) */
	char first_to[CRETO_MODEL_PATH_MAX + 1];  /* RENAMED: the new path */
} creto_model_diff;

/* "modified", "missing", "extra", "renamed", "same". */
const char *creto_model_diff_kind_name(creto_model_diff_kind k);

/* Compare expected (a trusted or checked manifest) with actual (built from
 * the directory with the same options).  Files are compared whole (all their
 * shards); a missing file whose content equals an extra file is a rename.
 * CRETO_OK when equal; CRETO_EREJECT with d filled and a message naming the
 * first difference and the counts.  Options that differ (hash, method, shard
 * size) are CRETO_EREJECT too. */
int creto_model_compare(const creto_model_manifest *expected, const creto_model_manifest *actual,
			creto_model_diff *d, creto_err *e) CRETO_WUR;

/* Verify dir against expected: build with expected's hash, method, shard
 * size, allow_symlinks and ignore_paths (plus o->ignore; o->threads; o may be
 * NULL), then compare.  d may be NULL.  A file that changes while it is
 * read is CRETO_EOP "PATH: changed while being verified", never a verdict. */
int creto_model_verify(const char *dir, const creto_model_manifest *expected,
		       const creto_model_opts *o, creto_model_diff *d, creto_err *e) CRETO_WUR;

/* 1 when p (relative to the model root) is one of the paths always
 * ignored: .git, .gitattributes, .github, .gitignore. */
int creto_model_is_default_ignore(const char *p);

/* ---- signatures over a manifest (src/model/bundle.c) ---- */

/* Sign statement (JSON bytes) with s: a DSSE envelope over the PAE of
 * (CRETO_MODEL_PAYLOAD_TYPE, statement).  ECDSA P-256/P-384: a Sigstore
 * bundle v0.3 (DER signature, keyid "", publicKey hint = hex SHA-256 of the
 * PEM SubjectPublicKeyInfo, tlogEntries []).  Other algorithms: the same
 * bundle layout, keyid = the creto key id, the algorithm's signature
 * encoding, and the hint = the creto key id.  *out is malloc'ed JSON text. */
int creto_model_sign_statement(const uint8_t *statement, size_t len, creto_signer *s,
			       char **out, size_t *outlen, creto_err *e) CRETO_WUR;

/* Verify a signature file (a Sigstore bundle v0.3 or a bare DSSE envelope,
 * at most CRETO_MODEL_MANIFEST_MAX bytes) with pk; on success *statement is
 * the signed statement (malloc'ed, caller frees), not yet parsed.
 * CRETO_EREJECT naming the field or "bad signature (key <id>)". */
int creto_model_verify_signature(const uint8_t *sig, size_t siglen, const creto_pubkey *pk,
				 uint8_t **statement, size_t *stlen, creto_err *e) CRETO_WUR;

/* Open the public key that checks a model signature: a creto public key
 * reference (file or pkcs11: URI, include/creto/keys.h), or a PEM
 * SubjectPublicKeyInfo file as model_signing uses (ECDSA P-256/P-384,
 * Ed25519).  opts may be NULL.  A PEM key of another type is CRETO_EREJECT. */
int creto_model_open_pubkey(const char *ref, const creto_keys_opts *opts, creto_pubkey **out,
			    creto_err *e) CRETO_WUR;

#endif
