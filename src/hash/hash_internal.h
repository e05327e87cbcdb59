/* hash_internal.h - shared between hash.c and pool.c; not a public contract. */
#ifndef CRETO_HASH_INTERNAL_H
#define CRETO_HASH_INTERNAL_H

#include <stdatomic.h>

#include <openssl/evp.h>

#include "creto/hash.h"

/* The fetched EVP_MD of alg (process lifetime), NULL when unknown. */
const EVP_MD *creto_hash__md(creto_hash_alg alg);

/* Hash [offset, offset+length) of fd with c into out, reading through buf
 * (bufsize bytes); stops early with CRETO_EOP when *stop becomes non-zero
 * (stop may be NULL).  c is reset afterwards on success. */
int creto_hash__read_range(creto_hash_ctx *c, int fd, uint64_t offset, uint64_t length,
			   const char *name, uint8_t *buf, size_t bufsize,
			   atomic_int *stop, uint8_t out[CRETO_HASH_MAX], creto_err *e) CRETO_WUR;

#endif
