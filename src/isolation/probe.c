/*
 * probe.c - the active probes: they try to get out, and succeeding is the
 * violation.  All probes start at once and share one deadline, so the whole
 * run takes about one timeout however many targets there are:
 *   - system resolver: getaddrinfo() of each configured name, one thread
 *     each (getaddrinfo cannot be given a timeout; a thread still blocked at
 *     the deadline is left behind and cleans up after itself);
 *   - direct DNS: a query for the first name, built here, sent over UDP to
 *     each configured resolver address;
 *   - TCP: a non-blocking connect to each canary.
 * Sockets are watched with one poll() loop.
 */
#include "iso_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DNS_QUERY_MAX 300
#define DNS_HDR 12

uint64_t iso_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- system resolver, one thread per name ------------------------------ */

struct gai_slot {
	char name[CRETO_ISO_NAME_MAX + 1];
	int done;
	int rc;                          /* getaddrinfo's return */
	int err;                         /* errno for EAI_SYSTEM */
	char first[INET6_ADDRSTRLEN];    /* first address on success */
	uint64_t ms;
};

/* Shared by the caller and the threads; freed by whoever drops the last
 * reference, so a thread that outlives the deadline stays safe. */
struct gai_group {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int refs;
	int pending;
	uint64_t start;
	struct gai_slot slot[CRETO_ISO_MAX_ITEMS];
};

struct gai_arg {
	struct gai_group *g;
	size_t i;
};

static void group_unref(struct gai_group *g)
{
	pthread_mutex_lock(&g->mu);
	int last = --g->refs == 0;
	pthread_mutex_unlock(&g->mu);
	if (last) {
		pthread_mutex_destroy(&g->mu);
		pthread_cond_destroy(&g->cv);
		free(g);
	}
}

static void *gai_thread(void *varg)
{
	struct gai_arg *arg = varg;
	struct gai_group *g = arg->g;
	size_t i = arg->i;
	free(arg);
	char name[CRETO_ISO_NAME_MAX + 1];
	pthread_mutex_lock(&g->mu);
	memcpy(name, g->slot[i].name, sizeof(name));
	pthread_mutex_unlock(&g->mu);

	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(name, NULL, &hints, &res);
	int err = errno;
	char first[INET6_ADDRSTRLEN] = "";
	if (rc == 0 && res != NULL) {
		const void *a = res->ai_family == AF_INET
				       ? (const void *)&((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr
				       : (const void *)&((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr;
		if (inet_ntop(res->ai_family, a, first, sizeof(first)) == NULL)
			snprintf(first, sizeof(first), "?");
	}
	if (res != NULL)
		freeaddrinfo(res);

	pthread_mutex_lock(&g->mu);
	g->slot[i].rc = rc;
	g->slot[i].err = err;
	memcpy(g->slot[i].first, first, sizeof(first));
	g->slot[i].ms = iso_now_ms() - g->start;
	g->slot[i].done = 1;
	g->pending--;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	group_unref(g);
	return NULL;
}

static int gai_start(const creto_iso_config *cfg, uint64_t start, struct gai_group **out, creto_err *e)
{
	*out = NULL;
	struct gai_group *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return creto_err_set(e, CRETO_EOP, "probes: out of memory");
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, &ca);
	pthread_condattr_destroy(&ca);
	g->refs = 1;
	g->start = start;
	for (size_t i = 0; i < cfg->n_dns_name; i++)
		memcpy(g->slot[i].name, cfg->dns_name[i], sizeof(g->slot[i].name));
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int rc = CRETO_OK;
	for (size_t i = 0; i < cfg->n_dns_name; i++) {
		struct gai_arg *arg = malloc(sizeof(*arg));
		if (arg == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "probes: out of memory");
			break;
		}
		arg->g = g;
		arg->i = i;
		pthread_mutex_lock(&g->mu);
		g->refs++;
		g->pending++;
		pthread_mutex_unlock(&g->mu);
		pthread_t t;
		int err = pthread_create(&t, &attr, gai_thread, arg);
		if (err != 0) {
			free(arg);
			pthread_mutex_lock(&g->mu);
			g->refs--;
			g->pending--;
			pthread_mutex_unlock(&g->mu);
			rc = creto_err_errno(e, err, "probes: starting resolver thread");
			break;
		}
	}
	pthread_attr_destroy(&attr);
	*out = g; /* even on error: started threads hold their references */
	return rc;
}

/* Wait until every thread is done or the deadline passes. */
static void gai_wait(struct gai_group *g, uint64_t deadline_ms)
{
	struct timespec ts;
	ts.tv_sec = (time_t)(deadline_ms / 1000);
	ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
	pthread_mutex_lock(&g->mu);
	while (g->pending > 0) {
		if (pthread_cond_timedwait(&g->cv, &g->mu, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&g->mu);
}

/* ---- direct DNS over UDP and TCP connects ------------------------------ */

/* A standard query (RD set) for name, type A, class IN.  Returns its length
 * or 0 when the name does not fit. */
static size_t dns_build_query(uint8_t out[DNS_QUERY_MAX], uint16_t id, const char *name)
{
	size_t n = 0;
	out[n++] = (uint8_t)(id >> 8);
	out[n++] = (uint8_t)id;
	out[n++] = 0x01; /* RD */
	out[n++] = 0x00;
	out[n++] = 0;
	out[n++] = 1; /* QDCOUNT */
	memset(out + n, 0, 6);
	n += 6;
	const char *p = name;
	while (*p != '\0') {
		const char *dot = strchr(p, '.');
		size_t l = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (l == 0 || l > 63 || n + 1 + l + 5 > DNS_QUERY_MAX)
			return 0;
		out[n++] = (uint8_t)l;
		memcpy(out + n, p, l);
		n += l;
		p += l;
		if (*p == '.')
			p++;
	}
	out[n++] = 0;
	out[n++] = 0;
	out[n++] = 1; /* A */
	out[n++] = 0;
	out[n++] = 1; /* IN */
	return n;
}

enum sock_kind { SK_UDP, SK_TCP };
enum sock_state { SS_WAIT, SS_DONE };

struct sock_probe {
	enum sock_kind kind;
	creto_iso_endpoint ep;
	int fd;
	enum sock_state state;
	int success;        /* answered / connected */
	int err;            /* errno of the failure, 0 for a timeout */
	char detail[96];
	uint16_t id;
	uint64_t ms;
};

static void sock_to_sa(const creto_iso_endpoint *ep, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (ep->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(ep->port);
		memcpy(&s4->sin_addr, ep->addr, 4);
		*len = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(ep->port);
		memcpy(&s6->sin6_addr, ep->addr, 16);
		*len = sizeof(*s6);
	}
}

static void sock_finish(struct sock_probe *p, int success, int err, uint64_t start)
{
	p->state = SS_DONE;
	p->success = success;
	p->err = err;
	p->ms = iso_now_ms() - start;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

static void sock_start(struct sock_probe *p, const uint8_t *query, size_t qlen, uint64_t start)
{
	p->fd = -1;
	p->state = SS_WAIT;
	int type = (p->kind == SK_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
	int fd = socket(p->ep.family, type, 0);
	if (fd < 0) {
		sock_finish(p, 0, errno, start);
		return;
	}
	p->fd = fd;
	struct sockaddr_storage ss;
	socklen_t sl;
	sock_to_sa(&p->ep, &ss, &sl);
	if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
		if (p->kind == SK_TCP && errno == EINPROGRESS)
			return;
		sock_finish(p, 0, errno, start);
		return;
	}
	if (p->kind == SK_TCP) { /* connected at once (local target) */
		sock_finish(p, 1, 0, start);
		return;
	}
	if (send(fd, query, qlen, MSG_NOSIGNAL) < 0)
		sock_finish(p, 0, errno, start);
}

static void sock_event(struct sock_probe *p, short revents, uint64_t start)
{
	if (p->kind == SK_TCP) {
		int soerr = 0;
		socklen_t l = sizeof(soerr);
		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &l) != 0)
			soerr = errno;
		if (soerr == 0 && (revents & POLLOUT))
			sock_finish(p, 1, 0, start);
		else
			sock_finish(p, 0, soerr ? soerr : EIO, start);
		return;
	}
	uint8_t buf[512];
	ssize_t n = recv(p->fd, buf, sizeof(buf), 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		sock_finish(p, 0, errno, start);
		return;
	}
	/* Any well-formed response to our id proves the resolver is reachable,
	 * whatever its rcode. */
	if ((size_t)n >= DNS_HDR && ((uint16_t)(buf[0] << 8 | buf[1])) == p->id && (buf[2] & 0x80)) {
		unsigned ancount = (unsigned)(buf[6] << 8 | buf[7]);
		snprintf(p->detail, sizeof(p->detail), "rcode %u, %u answers", buf[3] & 0x0fu, ancount);
		sock_finish(p, 1, 0, start);
	}
	/* otherwise: not our answer, keep waiting */
}

static int add_sock_item(creto_iso_report *r, const struct sock_probe *p, unsigned timeout_ms, const char *qname)
{
	char ep[CRETO_ISO_ADDRSTRLEN + 8];
	creto_iso_endpoint_format(&p->ep, ep);
	const char *what = p->kind == SK_TCP ? "tcp" : "dns-direct";
	char key[160];
	snprintf(key, sizeof(key), "probe %s %s", what, ep);
	if (p->success) {
		if (p->kind == SK_TCP)
			return iso_report_add(r, "probe", CRETO_ISO_FAIL, key,
					      "tcp connect to canary %s succeeded in %llu ms", ep,
					      (unsigned long long)p->ms);
		return iso_report_add(r, "probe", CRETO_ISO_FAIL, key,
				      "dns query for %s sent to %s was answered (%s) in %llu ms", qname, ep,
				      p->detail, (unsigned long long)p->ms);
	}
	const char *subject = p->kind == SK_TCP ? "tcp connect to canary" : "dns query to resolver";
	if (p->state != SS_DONE)
		return iso_report_add(r, "probe", CRETO_ISO_PASS, key, "%s %s: no answer within %u ms", subject, ep,
				      timeout_ms);
	return iso_report_add(r, "probe", CRETO_ISO_PASS, key, "%s %s failed in %llu ms: %s", subject, ep,
			      (unsigned long long)p->ms, strerror(p->err));
}

static int add_gai_item(creto_iso_report *r, const struct gai_slot *s, unsigned timeout_ms)
{
	char key[CRETO_ISO_NAME_MAX + 32];
	snprintf(key, sizeof(key), "probe dns-system %.253s", s->name);
	if (!s->done)
		return iso_report_add(r, "probe", CRETO_ISO_PASS, key,
				      "system resolver lookup of %s: no answer within %u ms", s->name, timeout_ms);
	if (s->rc == 0)
		return iso_report_add(r, "probe", CRETO_ISO_FAIL, key,
				      "system resolver resolved %s to %s in %llu ms", s->name, s->first,
				      (unsigned long long)s->ms);
	const char *why = s->rc == EAI_SYSTEM ? strerror(s->err) : gai_strerror(s->rc);
	return iso_report_add(r, "probe", CRETO_ISO_PASS, key, "system resolver lookup of %s failed in %llu ms: %s",
			      s->name, (unsigned long long)s->ms, why);
}

int iso_run_probes(const creto_iso_config *cfg, creto_iso_report *r, creto_err *e)
{
	uint64_t start = iso_now_ms();
	uint64_t deadline = start + cfg->timeout_ms;
	int rc = CRETO_OK;
	struct gai_group *g = NULL;
	size_t n = cfg->n_resolver + cfg->n_canary;
	struct sock_probe *ps = calloc(n ? n : 1, sizeof(*ps));
	struct pollfd *pfd = calloc(n ? n : 1, sizeof(*pfd));
	size_t *map = calloc(n ? n : 1, sizeof(*map));
	if (ps == NULL || pfd == NULL || map == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "probes: out of memory");
		goto out;
	}

	for (size_t i = 0; i < n; i++)
		ps[i].fd = -1;
	rc = gai_start(cfg, start, &g, e);
	if (rc != CRETO_OK)
		goto out;

	const char *qname = cfg->n_dns_name > 0 ? cfg->dns_name[0] : "example.com";
	uint8_t query[DNS_QUERY_MAX];
	for (size_t i = 0; i < n; i++) {
		struct sock_probe *p = &ps[i];
		p->fd = -1;
		if (i < cfg->n_resolver) {
			p->kind = SK_UDP;
			p->ep = cfg->resolver[i];
		} else {
			p->kind = SK_TCP;
			p->ep = cfg->canary[i - cfg->n_resolver];
		}
		size_t qlen = 0;
		if (p->kind == SK_UDP) {
			uint8_t rnd[2] = {0, 0};
			if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
				rnd[0] = (uint8_t)i; /* the id only matches answers to queries */
			p->id = (uint16_t)(rnd[0] << 8 | rnd[1]);
			qlen = dns_build_query(query, p->id, qname);
			if (qlen == 0) {
				rc = creto_err_set(e, CRETO_EUSAGE, "probes: name '%s' does not fit a query", qname);
				goto out;
			}
		}
		sock_start(p, query, qlen, start);
	}

	for (;;) {
		nfds_t np = 0;
		for (size_t i = 0; i < n; i++) {
			if (ps[i].state != SS_WAIT)
				continue;
			pfd[np].fd = ps[i].fd;
			pfd[np].events = ps[i].kind == SK_TCP ? POLLOUT : POLLIN;
			pfd[np].revents = 0;
			map[np++] = i;
		}
		uint64_t now = iso_now_ms();
		if (np == 0 || now >= deadline)
			break;
		int pr = poll(pfd, np, (int)(deadline - now));
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			rc = creto_err_errno(e, errno, "probes: poll");
			goto out;
		}
		for (nfds_t k = 0; k < np; k++)
			if (pfd[k].revents != 0)
				sock_event(&ps[map[k]], pfd[k].revents, start);
	}
	gai_wait(g, deadline);

	/* Report: system resolver, direct DNS, TCP, in config order. */
	pthread_mutex_lock(&g->mu);
	struct gai_slot slots[CRETO_ISO_MAX_ITEMS];
	memcpy(slots, g->slot, sizeof(slots));
	pthread_mutex_unlock(&g->mu);
	for (size_t i = 0; i < cfg->n_dns_name && rc == CRETO_OK; i++)
		if (add_gai_item(r, &slots[i], cfg->timeout_ms) != CRETO_OK)
			rc = creto_err_set(e, CRETO_EOP, "report: out of memory");
	for (size_t i = 0; i < n && rc == CRETO_OK; i++)
		if (add_sock_item(r, &ps[i], cfg->timeout_ms, qname) != CRETO_OK)
			rc = creto_err_set(e, CRETO_EOP, "report: out of memory");
out:
	if (ps != NULL)
		for (size_t i = 0; i < n; i++)
			if (ps[i].fd >= 0)
				close(ps[i].fd);
	if (g != NULL)
		group_unref(g);
	free(ps);
	free(pfd);
	free(map);
	r->probes_ms = iso_now_ms() - start;
	return rc;
}
