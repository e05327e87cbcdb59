/*
 * metrics.c - Prometheus counters for the gateway: requests by model,
 * endpoint and status; by agent and outcome; request and first-byte latency
 * histograms; in-flight requests; replica health and load.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/metrics.h"

static const int k_status[] = {200, 400, 401, 403, 404, 408, 413, 429, 499, 500, 502, 503, 504};
#define NSTATUS (sizeof(k_status) / sizeof(k_status[0]) + 1) /* + "other" */
#define NEP 5
static const double k_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
				   0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
#define NB (sizeof(k_buckets) / sizeof(k_buckets[0]))
#define AGENT_BUCKETS 256

struct agent_count {
	struct agent_count *next;
	char id[CRETO_NHI_ID_MAX + 1];
	uint64_t ok, refused;
};

struct hist {
	atomic_ullong b[NB + 1];
	atomic_ullong sum_us, count;
};

struct gw_metrics {
	size_t nmodels;
	atomic_ullong *req; /* [(nmodels + 1) * NEP * NSTATUS] */
	struct hist dur, ttfb;
	atomic_llong inflight;
	pthread_mutex_t mu;
	struct agent_count *agents[AGENT_BUCKETS];
	size_t nagents;
};

gw_metrics *gw_metrics_new(size_t nmodels)
{
	gw_metrics *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->nmodels = nmodels;
	m->req = calloc((nmodels + 1) * NEP * NSTATUS, sizeof(*m->req));
	if (m->req == NULL || pthread_mutex_init(&m->mu, NULL) != 0) {
		free(m->req);
		free(m);
		return NULL;
	}
	return m;
}

void gw_metrics_free(gw_metrics *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < AGENT_BUCKETS; i++)
		for (struct agent_count *a = m->agents[i], *n; a; a = n) {
			n = a->next;
			free(a);
		}
	pthread_mutex_destroy(&m->mu);
	free(m->req);
	free(m);
}

static void observe(struct hist *h, int64_t us)
{
	double s = (double)us / 1e6;
	size_t i = 0;
	while (i < NB && s > k_buckets[i])
		i++;
	atomic_fetch_add(&h->b[i], 1);
	atomic_fetch_add(&h->sum_us, (unsigned long long)(us > 0 ? us : 0));
	atomic_fetch_add(&h->count, 1);
}

void gw_metrics_request(gw_metrics *m, int model, int endpoint, int status, const char *agent,
			int64_t duration_us, int64_t ttfb_us)
{
	size_t si = NSTATUS - 1;
	for (size_t i = 0; i + 1 < NSTATUS; i++)
		if (k_status[i] == status)
			si = i;
	size_t mi = model >= 0 && (size_t)model < m->nmodels ? (size_t)model : m->nmodels;
	size_t ei = endpoint >= 0 && endpoint < NEP ? (size_t)endpoint : 0;
	atomic_fetch_add(&m->req[(mi * NEP + ei) * NSTATUS + si], 1);
	observe(&m->dur, duration_us);
	if (ttfb_us > 0)
		observe(&m->ttfb, ttfb_us);
	if (agent == NULL || agent[0] == '\0')
		return;
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = agent; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	pthread_mutex_lock(&m->mu);
	struct agent_count *a;
	for (a = m->agents[h % AGENT_BUCKETS]; a; a = a->next)
		if (strcmp(a->id, agent) == 0)
			break;
	if (a == NULL && (a = calloc(1, sizeof(*a))) != NULL) {
		snprintf(a->id, sizeof(a->id), "%s", agent);
		a->next = m->agents[h % AGENT_BUCKETS];
		m->agents[h % AGENT_BUCKETS] = a;
		m->nagents++;
	}
	if (a != NULL) {
		if (status < 400)
			a->ok++;
		else
			a->refused++;
	}
	pthread_mutex_unlock(&m->mu);
}

void gw_metrics_inflight(gw_metrics *m, int delta)
{
	atomic_fetch_add(&m->inflight, delta);
}

struct sb {
	char *p;
	size_t n, cap;
	int oom;
};

static void put(struct sb *b, const char *fmt, ...) CRETO_PRINTF(2, 3);
static void put(struct sb *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		if (k < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)k < b->cap - b->n) {
			b->n += (size_t)k;
			return;
		}
		size_t nc = b->cap * 2 + (size_t)k;
		char *q = realloc(b->p, nc);
		if (q == NULL) {
			b->oom = 1;
			return;
		}
		b->p = q;
		b->cap = nc;
	}
}

static void hist_out(struct sb *b, const char *name, const char *help, struct hist *h)
{
	put(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	unsigned long long cum = 0;
	for (size_t i = 0; i < NB; i++) {
		cum += atomic_load(&h->b[i]);
		put(b, "%s_bucket{le=\"%g\"} %llu\n", name, k_buckets[i], cum);
	}
	cum += atomic_load(&h->b[NB]);
	put(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, cum, name,
	    (double)atomic_load(&h->sum_us) / 1e6, name, (unsigned long long)atomic_load(&h->count));
}

int gw_metrics_render(gw_metrics *m, const gw_model *models, const char *const *model_names,
		      size_t nmodels, const char *const *endpoint_names, int connections, char **out,
		      size_t *len)
{
	struct sb b = {malloc(16384), 0, 16384, 0};
	if (b.p == NULL)
		return -1;
	put(&b, "# HELP creto_gateway_requests_total Requests by model, endpoint and HTTP status.\n"
		"# TYPE creto_gateway_requests_total counter\n");
	for (size_t mi = 0; mi <= m->nmodels; mi++)
		for (size_t ei = 0; ei < NEP; ei++)
			for (size_t si = 0; si < NSTATUS; si++) {
				unsigned long long v = atomic_load(&m->req[(mi * NEP + ei) * NSTATUS + si]);
				if (v == 0)
					continue;
				char st[8];
				if (si + 1 < NSTATUS)
					snprintf(st, sizeof(st), "%d", k_status[si]);
				else
					snprintf(st, sizeof(st), "other");
				put(&b, "creto_gateway_requests_total{model=\"%s\",endpoint=\"%s\",status=\"%s\"} %llu\n",
				    mi < nmodels ? model_names[mi] : "", endpoint_names[ei][0] ? endpoint_names[ei] : "other",
				    st, v);
			}
	put(&b, "# HELP creto_gateway_agent_requests_total Requests by agent: answered (status < 400) or refused.\n"
		"# TYPE creto_gateway_agent_requests_total counter\n");
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < AGENT_BUCKETS; i++)
		for (struct agent_count *a = m->agents[i]; a; a = a->next) {
			/* agent ids are [A-Za-z0-9._:@-]: no escaping needed */
			put(&b, "creto_gateway_agent_requests_total{agent=\"%s\",result=\"ok\"} %llu\n", a->id,
			    (unsigned long long)a->ok);
			put(&b, "creto_gateway_agent_requests_total{agent=\"%s\",result=\"refused\"} %llu\n", a->id,
			    (unsigned long long)a->refused);
		}
	pthread_mutex_unlock(&m->mu);
	hist_out(&b, "creto_gateway_request_duration_seconds", "Time from the request head to the end of the answer.",
		 &m->dur);
	hist_out(&b, "creto_gateway_upstream_first_byte_seconds", "Time from the request head to the replica's answer head.",
		 &m->ttfb);
	put(&b, "# HELP creto_gateway_in_flight Requests being answered.\n# TYPE creto_gateway_in_flight gauge\n"
		"creto_gateway_in_flight %lld\n",
	    (long long)atomic_load(&m->inflight));
	put(&b, "# HELP creto_gateway_connections Open client connections.\n# TYPE creto_gateway_connections gauge\n"
		"creto_gateway_connections %d\n",
	    connections);
	put(&b, "# HELP creto_gateway_upstream_healthy 1 when the replica passes its health check and is not ejected.\n"
		"# TYPE creto_gateway_upstream_healthy gauge\n");
	int64_t now = gw_now_ms();
	for (size_t i = 0; i < nmodels; i++)
		for (size_t j = 0; j < models[i].nrep; j++)
			put(&b, "creto_gateway_upstream_healthy{model=\"%s\",replica=\"%s\"} %d\n", model_names[i],
			    models[i].rep[j]->cfg->url, gw_replica_usable(models[i].rep[j], now));
	put(&b, "# HELP creto_gateway_upstream_outstanding Requests in flight to the replica.\n"
		"# TYPE creto_gateway_upstream_outstanding gauge\n");
	for (size_t i = 0; i < nmodels; i++)
		for (size_t j = 0; j < models[i].nrep; j++)
			put(&b, "creto_gateway_upstream_outstanding{model=\"%s\",replica=\"%s\"} %d\n", model_names[i],
			    models[i].rep[j]->cfg->url, atomic_load(&models[i].rep[j]->outstanding));
	put(&b, "# HELP creto_gateway_upstream_ejections_total Passive ejections of the replica.\n"
		"# TYPE creto_gateway_upstream_ejections_total counter\n");
	for (size_t i = 0; i < nmodels; i++)
		for (size_t j = 0; j < models[i].nrep; j++)
			put(&b, "creto_gateway_upstream_ejections_total{model=\"%s\",replica=\"%s\"} %lld\n",
			    model_names[i], models[i].rep[j]->cfg->url,
			    (long long)atomic_load(&models[i].rep[j]->ejections));
	put(&b, "# HELP creto_gateway_upstream_saturated 1 when the replica's /metrics says it is full.\n"
		"# TYPE creto_gateway_upstream_saturated gauge\n");
	for (size_t i = 0; i < nmodels; i++)
		for (size_t j = 0; j < models[i].nrep; j++)
			put(&b, "creto_gateway_upstream_saturated{model=\"%s\",replica=\"%s\"} %d\n", model_names[i],
			    models[i].rep[j]->cfg->url, atomic_load(&models[i].rep[j]->saturated));
	if (b.oom) {
		free(b.p);
		return -1;
	}
	*out = b.p;
	*len = b.n;
	return 0;
}

int gw_metrics_append(char **body, size_t *len, int (*extra)(void *ctx, char **out, size_t *len),
		      void *ctx)
{
	if (extra == NULL || *body == NULL)
		return 0;
	char *more = NULL;
	size_t ml = 0;
	if (extra(ctx, &more, &ml) != 0)
		return -1;
	char *n = realloc(*body, *len + ml + 1);
	if (n == NULL) {
		free(more);
		return -1;
	}
	memcpy(n + *len, more, ml);
	*len += ml;
	n[*len] = '\0';
	*body = n;
	free(more);
	return 0;
}
