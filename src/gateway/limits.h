/*
 * limits.h - per-agent admission control (docs/gateway.md "Limits").
 */
#ifndef CRETO_GATEWAY_LIMITS_H
#define CRETO_GATEWAY_LIMITS_H

#include <stdint.h>

#include "gateway/internal.h"

typedef struct gw_limiter gw_limiter;
typedef struct gw_agent_state gw_agent_state;

enum { GW_ADMIT_OK = 0, GW_ADMIT_BURST, GW_ADMIT_QUOTA, GW_ADMIT_ERROR };

typedef struct gw_admission {
	gw_agent_state *state;  /* non-NULL once admitted: settle exactly once */
	int64_t reserved;
	int64_t retry_after_ms; /* for GW_ADMIT_BURST */
	const char *what;       /* which limit refused */
} gw_admission;

gw_limiter *gw_limiter_new(void);
void gw_limiter_free(gw_limiter *l);
/* Admit one request of agent id reserving `reserve` tokens at monotonic
 * time now (ms).  GW_ADMIT_OK fills out->state; BURST: retry after
 * out->retry_after_ms; QUOTA: the request can never fit (no retry). */
int gw_admit(gw_limiter *l, const char *id, const gw_limits *lim, int64_t reserve, int64_t now,
	     gw_admission *out);
/* Release the request; used = real tokens (prompt + completion), or -1 when
 * unknown (the reservation stands). */
void gw_settle(gw_limiter *l, gw_admission *a, const gw_limits *lim, int64_t used);

#endif
