/* model_internal.h - the manifest representation shared by the src/model files;
 * not a public contract (include/creto/model.h is). */
#ifndef CRETO_MODEL_INTERNAL_H
#define CRETO_MODEL_INTERNAL_H

#include "creto/model.h"

struct model_res {
	char *name;       /* resource name as written ("path" or "path:start:end") */
	char *path;       /* the file path part */
	uint64_t start;   /* shards: byte range [start, end); files: 0, size (0 when parsed) */
	uint64_t end;
	uint8_t digest[CRETO_HASH_MAX];
};

struct creto_model_manifest {
	char *model_name;
	creto_hash_alg hash;
	creto_model_method method;
	uint64_t shard_size;      /* shards only */
	int allow_symlinks;
	char **ignore;            /* sorted, unique, relative */
	size_t nignore;
	struct model_res *res;    /* sorted by model_path_cmp, then start */
	size_t nres;
	size_t nfiles;
	uint64_t bytes;
	uint8_t root[32];
};

/* Path-component-wise order (Python PurePosixPath): '/' sorts before every
 * other byte, otherwise unsigned byte order (= code point order for UTF-8). */
int model_path_cmp(const char *a, const char *b);
/* Order of two resources: path, then start offset. */
int model_res_cmp(const struct model_res *a, const struct model_res *b);
/* 1 when s[0..n) is well-formed UTF-8 (no overlongs, surrogates, > U+10FFFF). */
int model_utf8_valid(const char *s, size_t n);
/* 1 when p is a clean relative POSIX path: non-empty components, no "." or
 * "..", no leading or doubled '/', valid UTF-8, at most CRETO_MODEL_PATH_MAX. */
int model_path_valid(const char *p);
/* The root digest of m's resources into root (creto_model_manifest_root). */
int model_compute_root(const struct creto_model_manifest *m, uint8_t root[32], creto_err *e) CRETO_WUR;
/* creto_model_build; verb ("hashed", "verified") names the operation in
 * the "PATH: changed while being VERB" error. */
int model_build(const char *dir, const creto_model_opts *o, const char *verb,
		creto_model_manifest **out, creto_err *e) CRETO_WUR;
/* Free everything m owns and m. */
void model_manifest_free(struct creto_model_manifest *m);
/* Add a copy of p to the sorted unique ignore list of m. */
int model_add_ignore(struct creto_model_manifest *m, const char *p, creto_err *e) CRETO_WUR;
/* Copy of s with a short, printable rendering for error messages. */
const char *model_quote(const char *s, char *buf, size_t cap);

#endif
