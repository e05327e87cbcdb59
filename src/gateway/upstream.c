/*
 * upstream.c - replicas: selection (least outstanding of two random
 * choices, or prefix affinity with bounded load), passive ejection, and the
 * health thread (GET /health, GET /metrics for saturation, and the NHI
 * store's revocation refresh).  Shared by all workers through atomics.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gateway/http.h"
#include "gateway/upstream.h"

int64_t gw_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t gw_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int gw_replica_usable(const gw_replica *r, int64_t now)
{
	return atomic_load(&r->healthy) && atomic_load(&r->ejected_until) <= now;
}

static int64_t load_of(const gw_replica *r)
{
	/* a saturated replica counts as heavily loaded, not as gone */
	return (int64_t)atomic_load(&r->outstanding) + (atomic_load(&r->saturated) ? 1000000 : 0);
}

static int excluded(const gw_replica *r, gw_replica *const *ex, size_t nex)
{
	for (size_t i = 0; i < nex; i++)
		if (ex[i] == r)
			return 1;
	return 0;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

gw_replica *gw_pick(gw_model *m, uint64_t *rng, int has_aff, uint64_t aff, gw_replica *const *ex,
		    size_t nex, int64_t now)
{
	gw_replica *cand[GW_REPLICAS_MAX];
	size_t n = 0;
	int64_t total = 0;
	for (size_t i = 0; i < m->nrep; i++)
		if (gw_replica_usable(m->rep[i], now) && !excluded(m->rep[i], ex, nex)) {
			cand[n++] = m->rep[i];
			total += atomic_load(&m->rep[i]->outstanding);
		}
	if (n == 0)
		return NULL;
	if (n == 1)
		return cand[0];
	if (has_aff) {
		/* Rendezvous hashing gives each prefix a stable order of replicas;
		 * take the first whose load stays under 1.25x the mean after this
		 * request (bounded-load consistent hashing). */
		int64_t bound = (125 * (total + 1) + 100 * (int64_t)n - 1) / (100 * (int64_t)n); /* ceil */
		gw_replica *order[GW_REPLICAS_MAX];
		uint64_t score[GW_REPLICAS_MAX];
		for (size_t i = 0; i < n; i++) {
			order[i] = cand[i];
			score[i] = mix(aff ^ mix((uint64_t)cand[i]->index + 1));
		}
		for (size_t i = 1; i < n; i++)
			for (size_t j = i; j > 0 && score[j] > score[j - 1]; j--) {
				uint64_t s = score[j];
				score[j] = score[j - 1];
				score[j - 1] = s;
				gw_replica *r = order[j];
				order[j] = order[j - 1];
				order[j - 1] = r;
			}
		for (size_t i = 0; i < n; i++)
			if (!atomic_load(&order[i]->saturated) &&
			    (int64_t)atomic_load(&order[i]->outstanding) + 1 <= bound)
				return order[i];
	}
	*rng = mix(*rng + 0x9e3779b97f4a7c15ULL);
	size_t a = (size_t)(*rng % n), b = (size_t)((*rng >> 32) % (n - 1));
	if (b >= a)
		b++;
	return load_of(cand[b]) < load_of(cand[a]) ? cand[b] : cand[a];
}

void gw_replica_result(gw_replica *r, int ok, int64_t eject_ms, int64_t max_fails, int64_t now)
{
	if (ok) {
		atomic_store(&r->fails, 0);
		return;
	}
	if (atomic_fetch_add(&r->fails, 1) + 1 >= max_fails) {
		atomic_store(&r->ejected_until, now + eject_ms);
		atomic_store(&r->fails, 0);
		atomic_store(&r->ejections, atomic_load(&r->ejections) + 1);
	}
}

/* ---- health checks: small blocking HTTP/1.1 GETs with a deadline ---- */

static int wait_fd(int fd, short ev, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - gw_now_ms();
		if (left <= 0)
			return -1;
		struct pollfd p = {.fd = fd, .events = ev};
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* GET path from r: status in *status, the body (at most cap-1 bytes, NUL
 * terminated) in buf.  0 or -1 (no answer in time). */
int gw_http_get(const gw_replica_cfg *r, const char *path, int64_t timeout_ms, int *status,
		char *buf, size_t cap, size_t *blen)
{
	int64_t deadline = gw_now_ms() + timeout_ms;
	int fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int rc = -1;
	if (connect(fd, (const struct sockaddr *)&r->addr, r->alen) != 0) {
		if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline) != 0)
			goto out;
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0)
			goto out;
	}
	char req[512];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
			 r->hostport);
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		goto out;
	size_t len = 0;
	for (;;) {
		if (len + 1 >= cap)
			break;
		if (wait_fd(fd, POLLIN, deadline) != 0)
			goto out;
		ssize_t k = recv(fd, buf + len, cap - 1 - len, 0);
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (k <= 0)
			break;
		len += (size_t)k;
		/* a server that ignores "Connection: close": stop at the end of a
		 * length-framed body */
		gw_http_resp hr;
		if (gw_http_parse_response(buf, len, len, &hr) == 0 && hr.content_length >= 0 && !hr.chunked &&
		    len >= hr.head_len + (size_t)hr.content_length)
			break;
	}
	buf[len] = '\0';
	gw_http_resp h;
	if (gw_http_parse_response(buf, len, len, &h) != 0)
		goto out;
	*status = h.status;
	/* the body as sent (chunked framing left in: only scanned for names) */
	memmove(buf, buf + h.head_len, len - h.head_len + 1);
	*blen = len - h.head_len;
	rc = 0;
out:
	close(fd);
	return rc;
}

/* Sum (waiting) or max (kv usage) of a metric over its label sets; -1 when
 * absent.  Label order is not relied upon. */
double gw_metric(const char *text, const char *name, int want_max)
{
	size_t nl = strlen(name);
	double acc = -1;
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, name, nl) != 0 || (p[nl] != '{' && p[nl] != ' '))
			continue;
		const char *e = strchr(p, '\n');
		size_t ll = e ? (size_t)(e - p) : strlen(p);
		const char *sp = NULL;
		/* value: after the closing brace (labels may hold spaces) */
		const char *q = p + nl;
		if (*q == '{') {
			const char *rb = memchr(q, '}', ll - nl);
			if (rb == NULL)
				continue;
			q = rb + 1;
		}
		sp = q;
		while (sp < p + ll && *sp == ' ')
			sp++;
		char num[64];
		size_t k = 0;
		while (sp + k < p + ll && sp[k] != ' ' && k < sizeof(num) - 1) {
			num[k] = sp[k];
			k++;
		}
		num[k] = '\0';
		char *end;
		double v = strtod(num, &end);
		if (end == num)
			continue;
		if (acc < 0)
			acc = 0;
		if (want_max)
			acc = v > acc ? v : acc;
		else
			acc += v;
	}
	return acc;
}
