/*
 * refusals.c - aggregation of 401 token refusals (see refusals.h).  One
 * mutex guards the table; a flush copies the due table out under it and
 * reports outside it, so request threads never wait on the audit log.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/refusals.h"

#define PROBES 64 /* open addressing; a key found no place within PROBES: "other" */

typedef struct slot {
	const char *rule; /* NULL: free */
	char agent[CRETO_NHI_ID_MAX + 1];
	char source[GW_REFUSAL_SOURCE_MAX + 1];
	char detail[GW_REFUSAL_DETAIL_MAX + 1];
	int64_t count, first_us, last_us;
} slot;

struct gw_refusals {
	pthread_mutex_t mu;    /* tab, window */
	pthread_mutex_t flush; /* out: one flusher at a time */
	int64_t interval_us;
	int64_t window;        /* wall time of the first pending refusal; 0 = none */
	slot *tab;             /* GW_REFUSAL_SLOTS + 1: the last is "other" */
	slot *out;             /* the flusher's copy */
};

gw_refusals *gw_refusals_new(int64_t interval_us)
{
	if (interval_us <= 0)
		return NULL;
	gw_refusals *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->tab = calloc(GW_REFUSAL_SLOTS + 1, sizeof(slot));
	r->out = calloc(GW_REFUSAL_SLOTS + 1, sizeof(slot));
	if (r->tab == NULL || r->out == NULL) {
		free(r->tab);
		free(r->out);
		free(r);
		return NULL;
	}
	r->interval_us = interval_us;
	pthread_mutex_init(&r->mu, NULL);
	pthread_mutex_init(&r->flush, NULL);
	return r;
}

void gw_refusals_free(gw_refusals *r)
{
	if (r == NULL)
		return;
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->flush);
	free(r->tab);
	free(r->out);
	free(r);
}

static uint64_t fnv(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (h ^ 0xff) * 1099511628211ULL;
}

static void bump(slot *s, int64_t now_us)
{
	if (s->count++ == 0 || now_us < s->first_us)
		s->first_us = now_us;
	if (now_us > s->last_us)
		s->last_us = now_us;
}

int gw_refusals_add(gw_refusals *r, const char *rule, const char *agent, const char *source,
		     const char *detail, int64_t now_us)
{
	if (r == NULL || rule == NULL)
		return 0;
	agent = agent ? agent : "";
	source = source ? source : "";
	detail = detail ? detail : "";
	uint64_t h = fnv(fnv(fnv(14695981039346656037ULL, rule), agent), source);
	pthread_mutex_lock(&r->mu);
	if (r->window == 0)
		r->window = now_us;
	slot *s = NULL;
	int first = 0;
	for (size_t p = 0; p < PROBES; p++) {
		slot *c = &r->tab[(h + p) % GW_REFUSAL_SLOTS];
		if (c->rule == NULL) {
			c->rule = rule;
			snprintf(c->agent, sizeof(c->agent), "%s", agent);
			snprintf(c->source, sizeof(c->source), "%s", source);
			snprintf(c->detail, sizeof(c->detail), "%s", detail);
			s = c;
			first = 1;
			break;
		}
		if (strcmp(c->rule, rule) == 0 && strcmp(c->agent, agent) == 0 && strcmp(c->source, source) == 0) {
			s = c;
			break;
		}
	}
	if (s == NULL) { /* the table is full around this key: fold it into "other" */
		s = &r->tab[GW_REFUSAL_SLOTS];
		if (s->rule == NULL) {
			s->rule = "other";
			snprintf(s->detail, sizeof(s->detail), "%s", detail);
		}
	}
	if (!first)
		bump(s, now_us);
	pthread_mutex_unlock(&r->mu);
	return first;
}

size_t gw_refusals_flush(gw_refusals *r, int64_t now_us, int force, gw_refusal_emit_fn emit, void *ctx)
{
	if (r == NULL)
		return 0;
	size_t failed = 0;
	pthread_mutex_lock(&r->flush);
	pthread_mutex_lock(&r->mu);
	int due = r->window != 0 && (force || now_us - r->window >= r->interval_us);
	if (due) {
		slot *t = r->out;
		r->out = r->tab;
		r->tab = t;
		memset(r->tab, 0, (GW_REFUSAL_SLOTS + 1) * sizeof(slot));
		r->window = 0;
	}
	pthread_mutex_unlock(&r->mu);
	if (due) {
		for (size_t i = 0; i <= GW_REFUSAL_SLOTS; i++) {
			const slot *s = &r->out[i];
			if (s->rule == NULL || s->count == 0)
				continue;
			gw_refusal_rec rec = {s->rule, s->agent, s->source, s->detail, s->count, s->first_us, s->last_us, NULL};
			if (emit == NULL || emit(ctx, &rec) != 0)
				failed++;
		}
	}
	pthread_mutex_unlock(&r->flush);
	return failed;
}

void gw_refusal_claimed_sub(const char *tok, size_t len, char *out, size_t n)
{
	if (n == 0)
		return;
	out[0] = '\0';
	creto_jws j;
	creto_err e;
	creto_err_clear(&e);
	if (creto_jws_parse(tok, len, &j, &e) != CRETO_OK)
		return;
	creto_jwt_claims c;
	if (creto_jwt_claims_parse(j.payload, j.payload_len, &c, &e) == CRETO_OK)
		snprintf(out, n, "%s", c.sub);
	creto_jws_clear(&j);
}
