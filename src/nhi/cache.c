/*
 * cache.c - bounded, sharded LRU of resolved identities (see cache.h).
 *
 * Each shard: a fixed array of entries, a chained hash index over them and
 * a doubly linked recency list, all by int32 index; one mutex.  An entry's
 * identity is packed into one heap block holding only the bytes used, so a
 * large cache stays small.
 */
#include "cache.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NHI_SHARDS_MAX 16

struct ent {
	uint8_t d[NHI_CACHE_DIGEST];
	int64_t from, until;
	uint64_t gen;
	int32_t hnext, prev, next; /* hash chain; recency list (prev = more recent) */
	int32_t used;
	uint8_t *blob;
};

/* One cache line (or more) per shard: two threads working in different
 * shards must not bounce a line between their cores. */
struct shard {
	_Alignas(64) pthread_mutex_t mu;
	struct ent *ents;
	int32_t *bucket;
	uint32_t nbucket; /* power of two */
	int32_t cap, n, head, tail, freelist;
};

struct nhi_cache {
	size_t nshard;
	struct shard sh[NHI_SHARDS_MAX];
};

/* ---- identity packing ---- */
struct packed_hdr {
	int64_t not_before, not_after, created, iat, exp;
	int32_t status, alg;
};

static const size_t str_off[] = {
	offsetof(creto_nhi_identity, agent.id),     offsetof(creto_nhi_identity, agent.name),
	offsetof(creto_nhi_identity, agent.scopes), offsetof(creto_nhi_identity, agent.issuer_kid),
	offsetof(creto_nhi_identity, scopes),       offsetof(creto_nhi_identity, kid),
	offsetof(creto_nhi_identity, jti),
};
#define NSTR (sizeof(str_off) / sizeof(str_off[0]))

static uint8_t *pack(const creto_nhi_identity *id)
{
	size_t len[NSTR], total = sizeof(struct packed_hdr);
	for (size_t i = 0; i < NSTR; i++) {
		len[i] = strlen((const char *)id + str_off[i]) + 1;
		total += len[i];
	}
	uint8_t *b = malloc(total);
	if (b == NULL)
		return NULL;
	struct packed_hdr h = {id->agent.not_before, id->agent.not_after, id->agent.created,
			       id->iat, id->exp, (int32_t)id->agent.status, (int32_t)id->alg};
	memcpy(b, &h, sizeof(h));
	size_t o = sizeof(h);
	for (size_t i = 0; i < NSTR; i++) {
		memcpy(b + o, (const char *)id + str_off[i], len[i]);
		o += len[i];
	}
	return b;
}

static void unpack(const uint8_t *b, creto_nhi_identity *id)
{
	struct packed_hdr h;
	memcpy(&h, b, sizeof(h));
	id->agent.not_before = h.not_before;
	id->agent.not_after = h.not_after;
	id->agent.created = h.created;
	id->iat = h.iat;
	id->exp = h.exp;
	id->agent.status = (creto_nhi_status)h.status;
	id->alg = (creto_jws_alg)h.alg;
	const char *p = (const char *)b + sizeof(h);
	for (size_t i = 0; i < NSTR; i++) {
		size_t n = strlen(p) + 1;
		memcpy((char *)id + str_off[i], p, n);
		p += n;
	}
}

/* ---- shard internals (mutex held) ---- */
static uint32_t bucket_of(const struct shard *s, const uint8_t d[NHI_CACHE_DIGEST])
{
	uint32_t h;
	memcpy(&h, d + 4, sizeof(h));
	return h & (s->nbucket - 1);
}

static void lru_unlink(struct shard *s, int32_t i)
{
	struct ent *e = &s->ents[i];
	if (e->prev >= 0)
		s->ents[e->prev].next = e->next;
	else
		s->head = e->next;
	if (e->next >= 0)
		s->ents[e->next].prev = e->prev;
	else
		s->tail = e->prev;
	e->prev = e->next = -1;
}

static void lru_push_front(struct shard *s, int32_t i)
{
	struct ent *e = &s->ents[i];
	e->prev = -1;
	e->next = s->head;
	if (s->head >= 0)
		s->ents[s->head].prev = i;
	s->head = i;
	if (s->tail < 0)
		s->tail = i;
}

static void ent_remove(struct shard *s, int32_t i)
{
	struct ent *e = &s->ents[i];
	uint32_t b = bucket_of(s, e->d);
	int32_t *pp = &s->bucket[b];
	while (*pp != i)
		pp = &s->ents[*pp].hnext;
	*pp = e->hnext;
	lru_unlink(s, i);
	free(e->blob);
	e->blob = NULL;
	e->used = 0;
	e->hnext = s->freelist;
	s->freelist = i;
	s->n--;
}

static int32_t find(struct shard *s, const uint8_t d[NHI_CACHE_DIGEST])
{
	for (int32_t i = s->bucket[bucket_of(s, d)]; i >= 0; i = s->ents[i].hnext)
		/* token digests are public: no constant-time compare needed */
		if (memcmp(s->ents[i].d, d, NHI_CACHE_DIGEST) == 0)
			return i;
	return -1;
}

static void shard_reset(struct shard *s)
{
	for (int32_t i = 0; i < s->cap; i++) {
		free(s->ents[i].blob);
		s->ents[i].blob = NULL;
		s->ents[i].used = 0;
		s->ents[i].prev = s->ents[i].next = -1;
		s->ents[i].hnext = i + 1 < s->cap ? i + 1 : -1;
	}
	for (uint32_t b = 0; b < s->nbucket; b++)
		s->bucket[b] = -1;
	s->freelist = s->cap > 0 ? 0 : -1;
	s->head = s->tail = -1;
	s->n = 0;
}

nhi_cache *nhi_cache_new(size_t cap)
{
	if (cap == 0 || cap > (1u << 30))
		return NULL;
	nhi_cache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->nshard = cap >= 1024 ? NHI_SHARDS_MAX : 1;
	size_t per = (cap + c->nshard - 1) / c->nshard;
	for (size_t k = 0; k < c->nshard; k++) {
		struct shard *s = &c->sh[k];
		s->cap = (int32_t)per;
		s->nbucket = 1;
		while (s->nbucket < 2 * per)
			s->nbucket <<= 1;
		s->ents = calloc(per, sizeof(*s->ents));
		s->bucket = malloc(s->nbucket * sizeof(*s->bucket));
		if (s->ents == NULL || s->bucket == NULL || pthread_mutex_init(&s->mu, NULL) != 0) {
			free(s->ents);
			free(s->bucket);
			s->ents = NULL;
			s->bucket = NULL;
			c->nshard = k;
			nhi_cache_free(c);
			return NULL;
		}
		shard_reset(s);
	}
	return c;
}

void nhi_cache_free(nhi_cache *c)
{
	if (c == NULL)
		return;
	for (size_t k = 0; k < c->nshard; k++) {
		struct shard *s = &c->sh[k];
		for (int32_t i = 0; i < s->cap; i++)
			free(s->ents[i].blob);
		free(s->ents);
		free(s->bucket);
		pthread_mutex_destroy(&s->mu);
	}
	free(c);
}

static struct shard *shard_of(nhi_cache *c, const uint8_t d[NHI_CACHE_DIGEST])
{
	return &c->sh[d[0] % c->nshard];
}

int nhi_cache_get(nhi_cache *c, const uint8_t d[NHI_CACHE_DIGEST], int64_t now, uint64_t gen,
		  creto_nhi_identity *out)
{
	struct shard *s = shard_of(c, d);
	int hit = 0;
	pthread_mutex_lock(&s->mu);
	int32_t i = find(s, d);
	if (i >= 0) {
		struct ent *e = &s->ents[i];
		if (e->gen != gen || now > e->until || now < e->from) {
			ent_remove(s, i);
		} else {
			lru_unlink(s, i);
			lru_push_front(s, i);
			unpack(e->blob, out);
			hit = 1;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return hit;
}

void nhi_cache_put(nhi_cache *c, const uint8_t d[NHI_CACHE_DIGEST], int64_t from, int64_t until,
		   uint64_t gen, const creto_nhi_identity *id)
{
	uint8_t *blob = pack(id);
	if (blob == NULL)
		return;
	struct shard *s = shard_of(c, d);
	pthread_mutex_lock(&s->mu);
	int32_t i = find(s, d);
	if (i >= 0)
		ent_remove(s, i);
	if (s->freelist < 0)
		ent_remove(s, s->tail);
	i = s->freelist;
	struct ent *e = &s->ents[i];
	s->freelist = e->hnext;
	memcpy(e->d, d, NHI_CACHE_DIGEST);
	e->from = from;
	e->until = until;
	e->gen = gen;
	e->blob = blob;
	e->used = 1;
	uint32_t b = bucket_of(s, d);
	e->hnext = s->bucket[b];
	s->bucket[b] = i;
	lru_push_front(s, i);
	s->n++;
	pthread_mutex_unlock(&s->mu);
}

void nhi_cache_flush(nhi_cache *c)
{
	for (size_t k = 0; k < c->nshard; k++) {
		pthread_mutex_lock(&c->sh[k].mu);
		shard_reset(&c->sh[k]);
		pthread_mutex_unlock(&c->sh[k].mu);
	}
}

size_t nhi_cache_size(nhi_cache *c)
{
	size_t n = 0;
	for (size_t k = 0; k < c->nshard; k++) {
		pthread_mutex_lock(&c->sh[k].mu);
		n += (size_t)c->sh[k].n;
		pthread_mutex_unlock(&c->sh[k].mu);
	}
	return n;
}
