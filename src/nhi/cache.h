/*
 * cache.h - internal: the resolver's bounded LRU cache of identities keyed
 * by token digest (SHA-256), sharded, each shard under its own mutex.
 * An entry is answered only while from <= now <= until and while the store
 * generation it was made under is still current (docs/nhi.md "Cache").
 */
#ifndef CRETO_NHI_CACHE_H
#define CRETO_NHI_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "creto/nhi.h"

#define NHI_CACHE_DIGEST 32

typedef struct nhi_cache nhi_cache;

/* A cache of at most cap entries (cap >= 1); NULL when out of memory. */
nhi_cache *nhi_cache_new(size_t cap);
void nhi_cache_free(nhi_cache *c);
/* 1 and *out filled on a live hit; 0 otherwise (a dead entry is dropped). */
int nhi_cache_get(nhi_cache *c, const uint8_t d[NHI_CACHE_DIGEST], int64_t now, uint64_t gen,
		  creto_nhi_identity *out);
/* Insert or replace; evicts the least recently used entry of the shard.
 * Silently does nothing when out of memory (a cache may forget). */
void nhi_cache_put(nhi_cache *c, const uint8_t d[NHI_CACHE_DIGEST], int64_t from, int64_t until,
		   uint64_t gen, const creto_nhi_identity *id);
void nhi_cache_flush(nhi_cache *c);
/* Entries currently held (for tests). */
size_t nhi_cache_size(nhi_cache *c);

#endif
