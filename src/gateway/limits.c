/*
 * limits.c - per-agent admission: concurrent requests, requests per minute
 * and tokens per minute (token buckets refilled continuously; tokens are
 * reserved at admission and settled on the real usage).  One mutex: the
 * critical sections are a few arithmetic operations.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/limits.h"

#define BUCKETS 1024

struct gw_agent_state {
	struct gw_agent_state *next;
	char id[CRETO_NHI_ID_MAX + 1];
	int64_t inflight;
	double req, tok;       /* bucket contents */
	int64_t req_t, tok_t;  /* last refill, ms */
	int fresh;
};

struct gw_limiter {
	pthread_mutex_t mu;
	gw_agent_state *b[BUCKETS];
};

gw_limiter *gw_limiter_new(void)
{
	gw_limiter *l = calloc(1, sizeof(*l));
	if (l != NULL && pthread_mutex_init(&l->mu, NULL) != 0) {
		free(l);
		return NULL;
	}
	return l;
}

void gw_limiter_free(gw_limiter *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < BUCKETS; i++)
		for (gw_agent_state *s = l->b[i], *n; s; s = n) {
			n = s->next;
			free(s);
		}
	pthread_mutex_destroy(&l->mu);
	free(l);
}

static size_t h(const char *s)
{
	uint64_t x = 1469598103934665603ULL;
	for (; *s; s++)
		x = (x ^ (unsigned char)*s) * 1099511628211ULL;
	return (size_t)(x % BUCKETS);
}

static void refill(double *v, int64_t *t, int64_t cap, int64_t now)
{
	if (now > *t) {
		*v += (double)(now - *t) * (double)cap / 60000.0;
		*t = now;
	}
	if (*v > (double)cap)
		*v = (double)cap;
}

int gw_admit(gw_limiter *l, const char *id, const gw_limits *lim, int64_t reserve, int64_t now,
	     gw_admission *out)
{
	memset(out, 0, sizeof(*out));
	if (lim->concurrency <= 0 && lim->requests_per_minute <= 0 && lim->tokens_per_minute <= 0)
		return GW_ADMIT_OK; /* nothing to count: no lock on the hot path */
	pthread_mutex_lock(&l->mu);
	size_t k = h(id);
	gw_agent_state *s;
	for (s = l->b[k]; s; s = s->next)
		if (strcmp(s->id, id) == 0)
			break;
	if (s == NULL) {
		s = calloc(1, sizeof(*s));
		if (s == NULL) {
			pthread_mutex_unlock(&l->mu);
			return GW_ADMIT_ERROR;
		}
		memcpy(s->id, id, strnlen(id, CRETO_NHI_ID_MAX));
		s->req = (double)lim->requests_per_minute;
		s->tok = (double)lim->tokens_per_minute;
		s->req_t = s->tok_t = now;
		s->next = l->b[k];
		l->b[k] = s;
	}
	int rc = GW_ADMIT_OK;
	if (lim->concurrency > 0 && s->inflight >= lim->concurrency) {
		rc = GW_ADMIT_BURST;
		out->retry_after_ms = 1000;
		out->what = "concurrent requests";
		goto done;
	}
	if (lim->requests_per_minute > 0) {
		refill(&s->req, &s->req_t, lim->requests_per_minute, now);
		if (s->req < 1.0) {
			rc = GW_ADMIT_BURST;
			out->retry_after_ms =
				(int64_t)((1.0 - s->req) * 60000.0 / (double)lim->requests_per_minute) + 1;
			out->what = "requests per minute";
			goto done;
		}
	}
	if (lim->tokens_per_minute > 0) {
		if (reserve > lim->tokens_per_minute) {
			/* can never fit: waiting does not help */
			rc = GW_ADMIT_QUOTA;
			out->what = "tokens per minute";
			goto done;
		}
		refill(&s->tok, &s->tok_t, lim->tokens_per_minute, now);
		if (s->tok < (double)reserve) {
			rc = GW_ADMIT_BURST;
			out->retry_after_ms = (int64_t)(((double)reserve - s->tok) * 60000.0 /
							(double)lim->tokens_per_minute) + 1;
			out->what = "tokens per minute";
			goto done;
		}
		s->tok -= (double)reserve;
	}
	if (lim->requests_per_minute > 0)
		s->req -= 1.0;
	s->inflight++;
	out->state = s;
	out->reserved = reserve;
done:
	pthread_mutex_unlock(&l->mu);
	return rc;
}

void gw_settle(gw_limiter *l, gw_admission *a, const gw_limits *lim, int64_t used)
{
	if (a->state == NULL)
		return;
	pthread_mutex_lock(&l->mu);
	gw_agent_state *s = a->state;
	s->inflight--;
	if (lim->tokens_per_minute > 0 && used >= 0) {
		s->tok += (double)(a->reserved - used);
		if (s->tok > (double)lim->tokens_per_minute)
			s->tok = (double)lim->tokens_per_minute;
	}
	pthread_mutex_unlock(&l->mu);
	a->state = NULL;
}
