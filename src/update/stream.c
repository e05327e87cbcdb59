/*
 * stream.c - payload streaming for update: an adapter over the hashing
 * engine's stream (creto_hash_stream, include/creto/hash.h), which reads the
 * package once, hashes its shards in parallel (several shards at a time
 * through the multi-lane SHA3-256 engine where the CPU has one) and copies
 * them, in order, to the staging file with bounded memory.  This file maps a
 * statement's file to one creto_hash_stream_fd call and the engine's
 * failure kinds to the update rules (digest, truncated); the engine changes
 * the speed, never a digest or a verdict.
 */
#include "update_int.h"

#include <stdlib.h>

#include "creto/hash.h"

struct upd_stream {
	creto_hash_stream *hs;
};

int upd_stream_new(uint32_t shard_size, upd_stream **out, creto_err *e)
{
	*out = NULL;
	upd_stream *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	/* the statement bounds shard_size (CRETO_SHARD_MIN..MAX), far below
	 * the engine's limit; 0 only comes from a caller's mistake */
	int rc = creto_hash_stream_new(CRETO_HASH_SHA3_256, shard_size, 0, &s->hs, e);
	if (rc != CRETO_OK) {
		free(s);
		return rc;
	}
	*out = s;
	return CRETO_OK;
}

void upd_stream_free(upd_stream *s)
{
	if (s == NULL)
		return;
	creto_hash_stream_free(s->hs);
	free(s);
}

/* The engine's CRETO_EREJECT as the update rule it is; anything else (an
 * operational error: read, write, hashing) is passed on as it is. */
static int map_reject(upd_stream *s, int rc, creto_update_rule *rule, creto_err *e)
{
	if (rc != CRETO_EREJECT)
		return rc;
	creto_hash_stream_fail f = creto_hash_stream_failure(s->hs);
	const char *nm = f.name != NULL ? f.name : "(unnamed)";
	if (f.kind == CRETO_HASH_FAIL_SHORT)
		return upd_reject(e, rule, CRETO_RULE_TRUNCATED,
				  "truncated: package ends inside payload file %.200s", nm);
	if (f.nshards <= 1)
		return upd_reject(e, rule, CRETO_RULE_DIGEST,
				  "digest: payload file %.200s does not match the statement", nm);
	return upd_reject(e, rule, CRETO_RULE_DIGEST,
			  "digest: payload file %.200s shard %llu of %llu does not match the statement", nm,
			  (unsigned long long)f.shard + 1, (unsigned long long)f.nshards);
}

int upd_stream_file(upd_stream *s, const upd_file *f, int in_fd, int out_fd,
		    creto_update_rule *rule, creto_err *e)
{
	/* the statement's digests: one per shard, in order (f->shards is one
	 * contiguous array); a one-shard file has its digest only */
	const uint8_t *expect = f->nshards > 1 ? f->shards[0] : f->digest;
	int rc = creto_hash_stream_fd(s->hs, in_fd, f->size, out_fd, f->path, expect, NULL, e);
	return map_reject(s, rc, rule, e);
}

int upd_stream_flush(upd_stream *s, creto_err *e)
{
	return creto_hash_stream_flush(s->hs, e);
}

int upd_stream_finish(upd_stream *s, creto_update_rule *rule, creto_err *e)
{
	return map_reject(s, creto_hash_stream_finish(s->hs, e), rule, e);
}
