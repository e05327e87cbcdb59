/*
 * upstream.h - replicas as the workers share them: load, health, ejection;
 * the balancer; the health checker's small blocking HTTP client.
 */
#ifndef CRETO_GATEWAY_UPSTREAM_H
#define CRETO_GATEWAY_UPSTREAM_H

#include <stdatomic.h>
#include <stdint.h>

#include "gateway/internal.h"

typedef struct gw_replica {
	const gw_replica_cfg *cfg;
	int index;                     /* global, into each worker's pool */
	atomic_int outstanding;        /* requests in flight */
	atomic_int healthy;            /* last active check passed */
	atomic_int fails;              /* consecutive passive failures */
	atomic_llong ejected_until;    /* monotonic ms */
	atomic_int saturated;          /* /metrics says it is full */
	atomic_llong ejections;
	int64_t next_check;            /* health thread only */
} gw_replica;

typedef struct gw_model {
	const gw_model_cfg *cfg;
	size_t nrep;
	gw_replica *rep[GW_REPLICAS_MAX];
} gw_model;

int64_t gw_now_ms(void);
int64_t gw_now_us(void);

int gw_replica_usable(const gw_replica *r, int64_t now);
/* Pick a replica of m not in ex[0..nex): affinity (when has_aff) with
 * bounded load, else the less loaded of two random choices.  NULL when none
 * is usable. */
gw_replica *gw_pick(gw_model *m, uint64_t *rng, int has_aff, uint64_t aff, gw_replica *const *ex,
		    size_t nex, int64_t now);
/* Passive health: a connect failure or 5xx (ok = 0) counts toward ejection. */
void gw_replica_result(gw_replica *r, int ok, int64_t eject_ms, int64_t max_fails, int64_t now);

int gw_http_get(const gw_replica_cfg *r, const char *path, int64_t timeout_ms, int *status,
		char *buf, size_t cap, size_t *blen);
double gw_metric(const char *text, const char *name, int want_max);

#endif
