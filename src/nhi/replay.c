/*
 * replay.c - the client-assertion replay cache of the token endpoint
 * (docs/nhi.md "Token endpoint", rule "replay").
 *
 * Open addressing over 2 x capacity slots, keyed by the first 16 bytes of
 * SHA-256(sub || 0 || jti).  A slot holds its entry until the entry's
 * `until` (exp + skew) has passed; an expired slot is a tombstone that
 * lookups walk past and inserts reuse, and the table is rebuilt (expired
 * entries dropped) when tombstones pile up.  Nothing is ever evicted early:
 * with `capacity` live entries, insertion fails and the endpoint refuses.
 *
 * State file (all integers big-endian): "CRJTI01\n", saved_at (8), count
 * (8), then count x (16-byte key, 8-byte until).  Read once at open and
 * removed at once, written again at close.
 */
#include "creto/nhi_oauth.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "replay.h"
#include "util/file.h"

#define RP_MAGIC "CRJTI01\n"
#define RP_ENTRY 24
#define RP_CAP_MAX ((size_t)1 << 22)

typedef struct rp_slot {
	uint8_t key[NHI_REPLAY_KEY];
	int64_t until; /* 0: never used */
} rp_slot;

struct creto_nhi_replay {
	pthread_mutex_t mu;
	rp_slot *slot;
	size_t nslots;   /* power of two */
	size_t capacity;
	size_t used;     /* slots with until != 0 (live or tombstone) */
	size_t live;     /* entries inserted since the last rebuild (an upper bound of live ones) */
	int64_t full_until; /* after a rebuild that found the cache full: no rebuild before this */
	int64_t not_before;
	char *path;
	int lockfd;
	EVP_MD *sha256; /* fetched once: an implicit fetch per digest costs more than the digest */
};

static size_t rp_hash(const uint8_t k[NHI_REPLAY_KEY])
{
	uint64_t h;
	memcpy(&h, k, sizeof(h)); /* already uniformly distributed */
	return (size_t)h;
}

int nhi_replay_key(creto_nhi_replay *r, const char *sub, const char *jti, uint8_t out[NHI_REPLAY_KEY])
{
	uint8_t in[CRETO_NHI_ID_MAX + 1 + CRETO_JWS_JTI_MAX], d[32];
	size_t sl = strlen(sub), jl = strlen(jti);
	unsigned int dl = 0;
	if (sl > CRETO_NHI_ID_MAX || jl > CRETO_JWS_JTI_MAX)
		return -1;
	memcpy(in, sub, sl + 1);
	memcpy(in + sl + 1, jti, jl);
	if (EVP_Digest(in, sl + 1 + jl, d, &dl, r->sha256, NULL) != 1)
		return -1;
	memcpy(out, d, NHI_REPLAY_KEY);
	return 0;
}

/* Put an entry known to be absent; the caller checked there is room. */
static void rp_place(creto_nhi_replay *r, const uint8_t key[NHI_REPLAY_KEY], int64_t until, int64_t now)
{
	size_t mask = r->nslots - 1;
	for (size_t i = rp_hash(key) & mask;; i = (i + 1) & mask) {
		rp_slot *s = &r->slot[i];
		if (s->until == 0 || s->until < now) {
			if (s->until == 0)
				r->used++;
			memcpy(s->key, key, NHI_REPLAY_KEY);
			s->until = until;
			r->live++;
			return;
		}
	}
}

/* Drop expired entries: rehash the live ones into a cleared table. */
static int rp_rebuild(creto_nhi_replay *r, int64_t now)
{
	rp_slot *old = r->slot;
	size_t n = r->nslots;
	rp_slot *fresh = calloc(n, sizeof(*fresh));
	if (fresh == NULL)
		return -1;
	r->slot = fresh;
	r->used = 0;
	r->live = 0;
	for (size_t i = 0; i < n; i++)
		if (old[i].until != 0 && old[i].until >= now)
			rp_place(r, old[i].key, old[i].until, now);
	free(old);
	return 0;
}

int nhi_replay_check_insert(creto_nhi_replay *r, const uint8_t key[NHI_REPLAY_KEY], int64_t until, int64_t now)
{
	int rc = NHI_REPLAY_OK;
	pthread_mutex_lock(&r->mu);
	size_t mask = r->nslots - 1;
	for (size_t i = rp_hash(key) & mask; r->slot[i].until != 0; i = (i + 1) & mask)
		if (r->slot[i].until >= now && memcmp(r->slot[i].key, key, NHI_REPLAY_KEY) == 0) {
			rc = NHI_REPLAY_SEEN;
			goto out;
		}
	if (r->live >= r->capacity || r->used >= r->nslots - r->nslots / 8) {
		if (now < r->full_until && r->live >= r->capacity) {
			rc = NHI_REPLAY_FULL;
			goto out;
		}
		if (rp_rebuild(r, now) != 0) {
			rc = NHI_REPLAY_NOMEM;
			goto out;
		}
		if (r->live >= r->capacity) {
			/* full of live entries: the earliest can only expire later */
			int64_t min = INT64_MAX;
			for (size_t i = 0; i < r->nslots; i++)
				if (r->slot[i].until != 0 && r->slot[i].until < min)
					min = r->slot[i].until;
			r->full_until = min + 1;
			rc = NHI_REPLAY_FULL;
			goto out;
		}
	}
	rp_place(r, key, until, now);
out:
	pthread_mutex_unlock(&r->mu);
	return rc;
}

size_t creto_nhi_replay_count(creto_nhi_replay *r, int64_t now)
{
	size_t n = 0;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->nslots; i++)
		n += r->slot[i].until != 0 && r->slot[i].until >= now;
	pthread_mutex_unlock(&r->mu);
	return n;
}

int64_t creto_nhi_replay_not_before(const creto_nhi_replay *r)
{
	return r->not_before;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* Load and remove the state file; *loaded = 1 when there was one. */
static int rp_load(creto_nhi_replay *r, int64_t now, int *loaded, creto_err *e)
{
	*loaded = 0;
	uint8_t *buf = NULL;
	size_t len = 0;
	struct stat st;
	if (lstat(r->path, &st) != 0) {
		if (errno == ENOENT)
			return CRETO_OK;
		return creto_err_errno(e, errno, "replay state %s", r->path);
	}
	int rc = creto_file_read(r->path, 24 + r->capacity * RP_ENTRY, &buf, &len, e);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "replay state");
	if (len < 24 || memcmp(buf, RP_MAGIC, 8) != 0 || (len - 24) % RP_ENTRY != 0 ||
	    get64(buf + 16) != (len - 24) / RP_ENTRY) {
		free(buf);
		return creto_err_set(e, CRETO_EREJECT,
				     "replay state %s: not a replay cache file (remove it; assertions are then "
				     "refused for %d s)",
				     r->path, CRETO_NHI_SKEW);
	}
	size_t n = (len - 24) / RP_ENTRY;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = buf + 24 + i * RP_ENTRY;
		int64_t until = (int64_t)get64(p + 16);
		if (until >= now && r->live < r->capacity)
			rp_place(r, p, until, now);
	}
	free(buf);
	/* consumed: after a crash from here on, no stale copy is trusted */
	if (unlink(r->path) != 0)
		return creto_err_errno(e, errno, "replay state %s: remove", r->path);
	*loaded = 1;
	return CRETO_OK;
}

int creto_nhi_replay_open(const char *path, size_t capacity, int64_t now, creto_nhi_replay **out, creto_err *e)
{
	*out = NULL;
	if (capacity == 0)
		capacity = CRETO_OAUTH_REPLAY_DEFAULT;
	if (capacity > RP_CAP_MAX)
		return creto_err_set(e, CRETO_EUSAGE, "replay cache: capacity %zu over %zu", capacity, RP_CAP_MAX);
	creto_nhi_replay *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	r->lockfd = -1;
	pthread_mutex_init(&r->mu, NULL);
	r->capacity = capacity;
	r->nslots = 16;
	while (r->nslots < 2 * capacity)
		r->nslots <<= 1;
	r->slot = calloc(r->nslots, sizeof(*r->slot));
	r->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	int rc = CRETO_OK;
	if (r->slot == NULL || r->sha256 == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "replay cache: out of memory");
		goto fail;
	}
	/* without a handed-over state: nothing accepted before now + skew */
	r->not_before = now + CRETO_NHI_SKEW;
	if (path != NULL) {
		r->path = strdup(path);
		char lp[4200];
		if (r->path == NULL || (size_t)snprintf(lp, sizeof(lp), "%s.lock", path) >= sizeof(lp)) {
			rc = creto_err_set(e, CRETO_EUSAGE, "replay state: path too long");
			goto fail;
		}
		r->lockfd = open(lp, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (r->lockfd < 0) {
			rc = creto_err_errno(e, errno, "replay state lock %s", lp);
			goto fail;
		}
		/* bounded wait: another `token exchange` finishes in milliseconds,
		 * a running endpoint holds the lock for its lifetime */
		int locked = 0;
		for (int i = 0; i < 500 && !locked; i++) {
			if (flock(r->lockfd, LOCK_EX | LOCK_NB) == 0)
				locked = 1;
			else if (errno != EWOULDBLOCK && errno != EINTR)
				break;
			else
				(void)nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
		}
		if (!locked) {
			rc = errno == EWOULDBLOCK ? creto_err_set(e, CRETO_EOP, "replay state %s is in use by another process", path)
						  : creto_err_errno(e, errno, "replay state lock %s", lp);
			goto fail;
		}
		int got = 0;
		rc = rp_load(r, now, &got, e);
		if (rc != CRETO_OK)
			goto fail;
		if (got)
			r->not_before = 0;
	}
	*out = r;
	return CRETO_OK;
fail:
	if (r->lockfd >= 0)
		close(r->lockfd);
	free(r->path);
	free(r->slot);
	EVP_MD_free(r->sha256);
	pthread_mutex_destroy(&r->mu);
	free(r);
	return rc;
}

int creto_nhi_replay_close(creto_nhi_replay *r, int64_t now, creto_err *e)
{
	if (r == NULL)
		return CRETO_OK;
	int rc = CRETO_OK;
	if (r->path != NULL) {
		size_t n = 0;
		for (size_t i = 0; i < r->nslots; i++)
			n += r->slot[i].until != 0 && r->slot[i].until >= now;
		uint8_t *buf = malloc(24 + n * RP_ENTRY);
		if (buf == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "replay state: out of memory");
		} else {
			memcpy(buf, RP_MAGIC, 8);
			put64(buf + 8, (uint64_t)now);
			put64(buf + 16, n);
			uint8_t *p = buf + 24;
			for (size_t i = 0; i < r->nslots; i++)
				if (r->slot[i].until != 0 && r->slot[i].until >= now) {
					memcpy(p, r->slot[i].key, NHI_REPLAY_KEY);
					put64(p + 16, (uint64_t)r->slot[i].until);
					p += RP_ENTRY;
				}
			rc = creto_file_write_atomic(r->path, buf, 24 + n * RP_ENTRY, 0600, e);
			free(buf);
		}
		if (rc != CRETO_OK)
			creto_err_ctx(e, "replay state %s", r->path);
	}
	if (r->lockfd >= 0)
		close(r->lockfd); /* releases the lock */
	free(r->path);
	free(r->slot);
	EVP_MD_free(r->sha256);
	pthread_mutex_destroy(&r->mu);
	free(r);
	return rc;
}

int creto_nhi_replay_init(const char *path, int64_t now, creto_err *e)
{
	struct stat st;
	if (lstat(path, &st) == 0)
		return creto_err_set(e, CRETO_EUSAGE, "replay state %s already exists", path);
	creto_nhi_replay *r = NULL;
	/* open takes the lock (so no running endpoint is holding the state) */
	int rc = creto_nhi_replay_open(path, 1, now, &r, e);
	if (rc != CRETO_OK)
		return rc;
	return creto_nhi_replay_close(r, now, e); /* writes the (empty) state */
}
