/*
 * refusals.h - 401 token refusals, aggregated for the audit log
 * (docs/gateway.md "Audit").  A refused bearer token is not audited per
 * request: it is counted per (rule, claimed agent, client source) in a
 * bounded table: the first of a key in an interval is recorded at once,
 * and one record per key at the end of the interval carries the count of
 * the others and their first and last time.  A full table folds newcomers into one "other"
 * bucket: nothing is dropped and nothing grows.
 */
#ifndef CRETO_GATEWAY_REFUSALS_H
#define CRETO_GATEWAY_REFUSALS_H

#include <stddef.h>
#include <stdint.h>

#include "creto/event.h"
#include "creto/nhi.h"

#define GW_REFUSAL_SLOTS 1024    /* distinct keys per interval; then "other" */
#define GW_REFUSAL_SOURCE_MAX 63 /* an IP address or "unix:uid=N" */
#define GW_REFUSAL_DETAIL_MAX 159

typedef struct gw_refusals gw_refusals;

/* One aggregated record, as handed to the emitter. */
typedef struct gw_refusal_rec {
	const char *rule;   /* static rule name; "other" for the overflow bucket */
	const char *agent;  /* the claimed (unverified) sub, "" when none */
	const char *source; /* the client address, "" in the overflow bucket */
	const char *detail; /* the first refusal's message of this key */
	int64_t count;
	int64_t first_us, last_us; /* wall-clock times of the counted ones, microseconds */
	const char *request_id; /* the immediate record's request; NULL in an aggregated one */
} gw_refusal_rec;

/* Returns 0 when the record was written, non-zero otherwise. */
typedef int (*gw_refusal_emit_fn)(void *ctx, const gw_refusal_rec *rec);

/* interval_us: how long a key collects before it is reported (> 0). */
gw_refusals *gw_refusals_new(int64_t interval_us);
void gw_refusals_free(gw_refusals *r);

/* One refusal at wall-clock time now_us.  Returns 1 when it is the first of
 * its key in this interval: the caller records it at once (count 1) and it
 * is not counted again; later ones of the key are counted for the flush.
 * Refusals folded into "other" are never first.  Thread-safe, no allocation. */
int gw_refusals_add(gw_refusals *r, const char *rule, const char *agent, const char *source,
		     const char *detail, int64_t now_us);

/* Report every key if the interval that began at the first pending
 * refusal has ended (force: now, e.g. at shutdown), outside the lock.
 * Returns the number of records whose emit failed. */
size_t gw_refusals_flush(gw_refusals *r, int64_t now_us, int force, gw_refusal_emit_fn emit, void *ctx);


/* The claimed agent id of a token that failed verification: its payload's
 * sub, parsed without trusting it (out "" when unreadable). */
void gw_refusal_claimed_sub(const char *tok, size_t len, char *out, size_t n);

#endif
