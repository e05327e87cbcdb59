/*
 * metrics.h - the gateway's Prometheus counters (docs/gateway.md
 * "Metrics"), served on the admin listener.  Updates are atomic adds; the
 * per-agent table takes one mutex and exists only with an admin listener.
 */
#ifndef CRETO_GATEWAY_METRICS_H
#define CRETO_GATEWAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/upstream.h"

typedef struct gw_metrics gw_metrics;

gw_metrics *gw_metrics_new(size_t nmodels);
void gw_metrics_free(gw_metrics *m);

/* One finished request: model index (-1: none), endpoint index 0..4, the
 * HTTP status, the agent id ("" when unauthenticated), durations in us
 * (ttfb_us 0: no answer head from a replica). */
void gw_metrics_request(gw_metrics *m, int model, int endpoint, int status, const char *agent,
			int64_t duration_us, int64_t ttfb_us);
void gw_metrics_inflight(gw_metrics *m, int delta);

/* The exposition text (Prometheus 0.0.4) into a malloc'ed *out. */
int gw_metrics_render(gw_metrics *m, const gw_model *models, const char *const *model_names,
		      size_t nmodels, const char *const *endpoint_names, int connections, char **out,
		      size_t *len);

/* Append what extra(ctx) renders (the caller's own gauges, e.g. `creto
 * serve`'s HSM endpoints) to *body (from gw_metrics_render); extra NULL
 * changes nothing.  -1 when out of memory or extra fails. */
int gw_metrics_append(char **body, size_t *len, int (*extra)(void *ctx, char **out, size_t *len),
		      void *ctx);

#endif
