/*
 * server.c - the gateway's event loop: epoll workers that accept clients,
 * parse requests strictly, authenticate and authorize them, and relay them
 * to replicas over pooled keep-alive connections, streaming the answer back
 * as it arrives (docs/gateway.md).
 *
 * Each worker owns its connections and its upstream pools: nothing of a
 * connection is touched by another thread.  Shared state (replica load and
 * health, agent limits, the token resolver) is atomic or locked.  Every
 * buffer is bounded: request heads and bodies by the config, the relay by
 * stream_window in each direction (a slow client stops the upstream reads).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "creto/keys.h"
#include "creto/nhi_oauth.h"
#include "creto/sig.h"
#include "gateway/body.h"
#include "gateway/http.h"
#include "gateway/internal.h"
#include "gateway/limits.h"
#include "gateway/refusals.h"
#include "gateway/tls.h"
#include "gateway/metrics.h"
#include "gateway/upstream.h"
#include "util/file.h"
#include "util/jsonscan.h"

#define KEY_MAX 512           /* bytes of the upstream key */
#define ACCT_MAX (1u << 20)   /* bytes of a non-streamed answer kept to read its usage */
#define SWEEP_MS 200
#define RETIRE_MS 5000
#define IN_MIN 4096

enum { K_LISTEN = 1, K_STOP, K_CLIENT, K_UP };
enum { CS_HEAD = 0, CS_BODY, CS_PROXY, CS_CLOSING };
enum { US_CONNECT = 0, US_SEND, US_HEAD, US_BODY };
enum { OUT_LENGTH = 0, OUT_CHUNKED, OUT_CLOSE };
enum { EP_NONE = 0, EP_CHAT, EP_COMPLETIONS, EP_EMBEDDINGS, EP_MODELS };

static const char *const k_ep_name[] = {"", "/v1/chat/completions", "/v1/completions", "/v1/embeddings",
					"/v1/models"};
static const int k_ep_bit[] = {0, GW_EP_CHAT, GW_EP_COMPLETIONS, GW_EP_EMBEDDINGS, GW_EP_MODELS};

struct worker;
struct conn;

struct listener {
	int kind;
	int fd;
	char text[GW_URL_MAX + 16];
	int is_unix;
	int admin;            /* the admin listener: GET /metrics only */
	int tls;              /* connections speak TLS (tls_cert) */
};

struct upc {
	int kind;
	int fd;
	struct upc *grave;
	struct worker *w;
	struct conn *c;       /* NULL while idle in the pool */
	gw_replica *rep;
	int state;
	int reused;
	int got_byte;
	int paused;
	uint32_t ev;
	int64_t deadline;
	char *buf;
	size_t len, cap;
	char *req;            /* request head */
	size_t req_len, sent; /* bytes of head + body sent */
	gw_http_resp resp;
	gw_chunked ck;
	int64_t body_left;
	int body_done;
};

struct conn {
	int kind;
	int fd;
	struct conn *grave;
	struct worker *w;
	struct conn *prev, *next;
	int state;
	int dead;
	int admin;
	int counted;          /* in the in-flight gauge */
	int cork;             /* pending output held for the next write */
	int deferred;         /* a gateway-made answer waits for the batch's end */
	int hold_final;       /* the answer's last bytes wait until the request is settled */
	struct conn *dnext;   /* the worker's deferred list */
	uint32_t ev;
	int64_t deadline;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off, out_cap;
	/* the current request */
	int in_req;
	gw_http_req req;
	int keep_alive;
	char rid[36];
	int64_t t0_us, tfirst_us;
	uint64_t bytes_in, bytes_out;
	int status;
	const char *end;      /* complete, client_gone, upstream_error, refused */
	char reason[160];
	char agent[CRETO_NHI_ID_MAX + 1];
	const char *token_rule;               /* a 401 token refusal: aggregated, not audited alone */
	char claimed[CRETO_NHI_ID_MAX + 1];   /* the refused token's sub, unverified */
	char jti[CRETO_JWS_JTI_MAX + 1];
	char model[GW_MODEL_NAME_MAX + 1];
	char prompt_sha[65];
	int endpoint;
	gw_limits lim;
	gw_admission adm;
	int stream, strip_usage;
	int64_t prompt_tokens, completion_tokens;
	char *fwd;            /* rewritten body, or NULL: forward the original */
	size_t fwd_len;
	gw_model *m;
	int has_aff;
	uint64_t aff;
	gw_replica *tried[GW_REPLICAS_MAX];
	size_t ntried;
	int no_pool;
	gw_replica *rep;      /* the replica that answered */
	struct upc *up;
	int out_mode;
	int head_sent;
	char *sse;
	size_t sse_len, sse_cap;
	char *acct;
	size_t acct_len;
	int acct_over;
	/* TLS (NULL: a plain connection; every TLS branch tests ssl) */
	SSL *ssl;
	uint8_t tls_hs;       /* handshake: 1 wants read, 2 wants write, 0 done */
	uint8_t tls_rww;      /* the last read wants the socket writable */
	uint8_t tls_wwr;      /* the last write wants the socket readable */
	uint8_t tls_fatal;    /* a TLS error: close without close_notify */
	uint8_t secret_out;   /* out may hold an access token: wiped when freed */
	char peer[INET6_ADDRSTRLEN + 16]; /* the client's address, once asked (conn_peer) */
};

struct pool {
	struct upc **idle;
	size_t n;
};

struct worker {
	creto_gateway *g;
	int ep;
	pthread_t th;
	struct conn *conns;
	size_t nconns;
	struct conn *sweep_next; /* the next connection a sliced sweep checks */
	struct conn *deferred;   /* answers written at the end of the batch */
	int ndeferred;
	int64_t defer_t0_us;
	int sweep_cycle;         /* a sliced sweep is part way down the list */
	struct pool *pool;    /* one per replica */
	uint64_t rng;
	int stopping;
	int64_t drain_until;
	/* closed during this epoll batch: freed after it, so a later event of
	 * the batch never touches freed memory (kind is 0 meanwhile) */
	struct upc *grave_up;
	struct conn *grave_c;
	/* this worker's own TCP listeners (SO_REUSEPORT: the kernel spreads
	 * new connections over the workers); Unix ones are shared */
	struct listener own[GW_LISTEN_MAX];
	creto_nhi_identity id; /* scratch for the resolver */
};

struct creto_gateway {
	creto_gateway_config cfg; /* copy; agents owned */
	creto_gateway_opts opts;
	creto_nhi_store *store;
	creto_jwks *jwks;
	creto_nhi_resolver *resolver;
	gw_limiter *lim;
	unsigned char key[KEY_MAX];
	size_t key_len;
	struct listener lis[GW_LISTEN_MAX];
	size_t nlis;
	struct listener admin;
	int has_admin;
	gw_metrics *metrics;  /* with an admin listener only */
	const char *model_names[GW_MODELS_MAX];
	int stopfd;
	struct worker *w;
	int nw;
	gw_model models[GW_MODELS_MAX];
	gw_replica *reps;
	size_t nreps;
	atomic_int conns;
	atomic_int reload;
	/* the limits and policy in force (replaced whole on reload; a replaced
	 * one is freed after RETIRE_MS, far longer than handle() reads it) */
	_Atomic(creto_gateway_config *) live;
	creto_gateway_config *retired[8];
	int64_t retired_at[8];
	atomic_int audit_failed;
	atomic_int stop;
	atomic_ullong seq;
	uint64_t boot;
	pthread_t health;
	int health_started;
	int64_t start_epoch;
	/* the token endpoint (token_endpoint = yes) */
	creto_signer *issuer;
	creto_nhi_replay *replay;
	creto_nhi_oauth *oauth;
	char *as_meta, *as_jwks;  /* RFC 8414 metadata and the issuer JWK Set */
	char issuer_url[GW_URL_MAX];
	gw_refusals *refusals; /* 401 token refusals awaiting their aggregated record */
	gw_tls *tls;           /* tls_cert set: the TCP agent listeners' TLS */
};

/* ---- logging and audit ---- */

static void glog(creto_gateway *g, const char *fmt, ...) CRETO_PRINTF(2, 3);
static void glog(creto_gateway *g, const char *fmt, ...)
{
	if (g->opts.log == NULL)
		return;
	char line[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < ' ')
			*p = ' ';
	g->opts.log(g->opts.log_ctx, line);
}

static int audit_ok(creto_gateway *g)
{
	if (atomic_load(&g->audit_failed)) {
		if (g->opts.audit_healthy == NULL || !g->opts.audit_healthy(g->opts.audit_healthy_ctx))
			return 0;
		atomic_store(&g->audit_failed, 0);
	}
	if (g->opts.audit_healthy != NULL && !g->opts.audit_healthy(g->opts.audit_healthy_ctx))
		return 0;
	return 1;
}

static void peer_text(int fd, char *out, size_t n);

/* The client's address (or unix:uid=N), read once per connection. */
static const char *conn_peer(struct conn *c)
{
	if (c->peer[0] == '\0')
		peer_text(c->fd, c->peer, sizeof(c->peer));
	return c->peer;
}


/* One aggregated record of 401 token refusals (docs/gateway.md "Audit"). */
static int refusal_emit(void *ctx, const gw_refusal_rec *r)
{
	creto_gateway *g = ctx;
	creto_event_field f[9];
	size_t n = 0;
	if (r->request_id != NULL)
		f[n++] = (creto_event_field){"request_id", r->request_id, 0};
	f[n++] = (creto_event_field){"status", NULL, 401};
	f[n++] = (creto_event_field){"count", NULL, r->count};
	f[n++] = (creto_event_field){"first_us", NULL, r->first_us};
	f[n++] = (creto_event_field){"last_us", NULL, r->last_us};
	if (r->source[0])
		f[n++] = (creto_event_field){"source", r->source, 0};
	if (r->agent[0])
		f[n++] = (creto_event_field){"claimed_agent", r->agent, 0};
	if (r->detail[0])
		f[n++] = (creto_event_field){"detail", r->detail, 0};
	creto_event ev = {
		.component = "gateway",
		.event = "token_refused",
		.outcome = "refused",
		.subject = r->agent[0] ? r->agent : NULL,
		.reason = r->rule,
		.fields = f,
		.nfields = n,
	};
	int rc = creto_event_emit(&g->opts.audit, &ev);
	if (rc != 0 && !atomic_exchange(&g->audit_failed, 1))
		glog(g, "level=error event=audit_failed msg=\"audit records cannot be written: refusing requests\"");
	return rc;
}

static void refusals_flush(creto_gateway *g, int force)
{
	(void)gw_refusals_flush(g->refusals, creto_clock_now_us(g->opts.clock), force, refusal_emit, g);
}

static void audit_request(struct conn *c)
{
	creto_gateway *g = c->w->g;
	int64_t now = gw_now_us();
	const char *outcome = "ok";
	if (strcmp(c->end, "refused") == 0)
		outcome = "refused";
	else if (strcmp(c->end, "client_gone") == 0)
		outcome = "aborted";
	else if (strcmp(c->end, "upstream_error") == 0)
		outcome = "failed";
	creto_event_field f[16];
	size_t n = 0;
	f[n++] = (creto_event_field){"request_id", c->rid, 0};
	if (c->jti[0])
		f[n++] = (creto_event_field){"jti", c->jti, 0};
	if (c->model[0])
		f[n++] = (creto_event_field){"model", c->model, 0};
	f[n++] = (creto_event_field){"endpoint", c->endpoint ? k_ep_name[c->endpoint] : "other", 0};
	if (c->rep)
		f[n++] = (creto_event_field){"replica", c->rep->cfg->url, 0};
	f[n++] = (creto_event_field){"status", NULL, c->status};
	f[n++] = (creto_event_field){"bytes_in", NULL, (int64_t)c->bytes_in};
	f[n++] = (creto_event_field){"bytes_out", NULL, (int64_t)c->bytes_out};
	if (c->prompt_tokens >= 0)
		f[n++] = (creto_event_field){"prompt_tokens", NULL, c->prompt_tokens};
	if (c->completion_tokens >= 0)
		f[n++] = (creto_event_field){"completion_tokens", NULL, c->completion_tokens};
	if (c->tfirst_us)
		f[n++] = (creto_event_field){"ttfb_us", NULL, c->tfirst_us - c->t0_us};
	f[n++] = (creto_event_field){"duration_us", NULL, now - c->t0_us};
	f[n++] = (creto_event_field){"end", c->end, 0};
	if (c->prompt_sha[0])
		f[n++] = (creto_event_field){"prompt_sha256", c->prompt_sha, 0};
	creto_event ev = {
		.component = "gateway",
		.event = "request",
		.outcome = outcome,
		.subject = c->model[0] ? c->model : NULL,
		.reason = c->reason[0] ? c->reason : NULL,
		.actor = c->agent[0] ? c->agent : NULL,
		.fields = f,
		.nfields = n,
	};
	if (g->metrics) {
		int mi = c->m ? (int)(c->m - g->models) : -1;
		gw_metrics_request(g->metrics, mi, c->endpoint, c->status, c->agent, now - c->t0_us,
				   c->tfirst_us ? c->tfirst_us - c->t0_us : 0);
	}
	if (c->token_rule != NULL) {
		/* the first of its key in an interval recorded now, the rest
		 * counted and recorded once at the interval's end (health thread) */
		const char *src = conn_peer(c);
		int64_t t = creto_clock_now_us(g->opts.clock);
		if (gw_refusals_add(g->refusals, c->token_rule, c->claimed, src, c->reason, t)) {
			gw_refusal_rec one = {c->token_rule, c->claimed, src, c->reason, 1, t, t, c->rid};
			(void)refusal_emit(g, &one);
		}
	} else if (creto_event_emit(&g->opts.audit, &ev) != 0 && !atomic_exchange(&g->audit_failed, 1)) {
		glog(g, "level=error event=audit_failed msg=\"audit records cannot be written: refusing requests\"");
	}
	if (g->cfg.access_log)
		glog(g, "level=info event=request id=%s agent=%s model=%s endpoint=%s status=%d end=%s "
			"bytes_out=%llu us=%lld",
		     c->rid, c->agent[0] ? c->agent : "-", c->model[0] ? c->model : "-",
		     c->endpoint ? k_ep_name[c->endpoint] : "other", c->status, c->end,
		     (unsigned long long)c->bytes_out, (long long)(now - c->t0_us));
}

/* ---- client output ---- */

static size_t pending(const struct conn *c)
{
	return c->out_len - c->out_off;
}

/* Free the output buffer; wiped first when it may hold an access token. */
static void out_free(struct conn *c)
{
	if (c->secret_out && c->out != NULL)
		OPENSSL_cleanse(c->out, c->out_cap);
	c->secret_out = 0;
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = c->out_cap = 0;
}

static void set_events(int ep, int fd, void *ptr, uint32_t *cur, uint32_t want)
{
	if (*cur == want)
		return;
	struct epoll_event ev = {.events = want, .data.ptr = ptr};
	(void)epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
	*cur = want;
}

static void c_events(struct conn *c)
{
	if (c->dead)
		return;
	uint32_t want = EPOLLRDHUP;
	if (pending(c) && !c->deferred)
		want |= EPOLLOUT;
	int room = c->in == NULL || c->in_len < c->in_cap ||
		   (c->state == CS_HEAD && c->in_cap < (size_t)c->w->g->cfg.head_max + 1);
	if (c->state != CS_CLOSING && room &&
	    (c->state != CS_HEAD || pending(c) < (size_t)c->w->g->cfg.stream_window))
		want |= EPOLLIN;
	if (c->ssl) {
		if (c->tls_hs)
			want = EPOLLRDHUP | (c->tls_hs == 2 ? EPOLLOUT : EPOLLIN);
		if (c->tls_wwr)
			want |= EPOLLIN;
		if (c->tls_rww)
			want |= EPOLLOUT;
	}
	set_events(c->w->ep, c->fd, c, &c->ev, want);
}

/* Append iov (minus its first skip bytes) to the pending output. */
static void c_append(struct conn *c, const struct iovec *iov, int n, size_t skip)
{
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (skip >= total)
		return;
	size_t need = pending(c) + total - skip;
	if (c->out_off > 0 && c->out_len + total - skip > c->out_cap) {
		memmove(c->out, c->out + c->out_off, pending(c));
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + total - skip > c->out_cap) {
		size_t nc = c->out_cap ? c->out_cap : 4096;
		while (nc < need)
			nc *= 2;
		char *p = realloc(c->out, nc);
		if (p == NULL) {
			c->dead = 1;
			return;
		}
		c->out = p;
		c->out_cap = nc;
	}
	for (int i = 0; i < n; i++) {
		size_t l = iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		memcpy(c->out + c->out_len, (const char *)iov[i].iov_base + skip, l - skip);
		c->out_len += l - skip;
		skip = 0;
	}
}

/* Send what is pending through TLS (partial writes: the rest stays).  A
 * retry after a want passes the same bytes again, perhaps moved and with
 * more after them (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER). */
static void tls_flush(struct conn *c)
{
	c->tls_wwr = 0;
	while (pending(c) > 0) {
		size_t k = 0;
		int r = gw_tls_write(c->ssl, c->out + c->out_off, pending(c), &k);
		if (r == GW_TLS_OK) {
			c->out_off += k;
			continue;
		}
		if (r == GW_TLS_WANT_READ) {
			c->tls_wwr = 1;
		} else if (r != GW_TLS_WANT_WRITE) {
			c->dead = 1;
			c->tls_fatal = 1;
		}
		break;
	}
	if (pending(c) == 0)
		c->out_len = c->out_off = 0;
}

/* TLS has no writev: the bytes join the pending output (after what
 * c_hold kept) and go out as records at once. */
static void tls_writev(struct conn *c, const struct iovec *iov, int n)
{
	c_append(c, iov, n, 0);
	c->cork = 0;
	if (!c->dead)
		tls_flush(c);
}

/* Queue iov for the client: written at once when nothing is pending (held
 * bytes, the answer's head, go out in the same writev), the rest kept (the
 * caller bounds what it queues). */
static void c_writev(struct conn *c, struct iovec *iov, int n)
{
	if (c->dead)
		return;
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	c->bytes_out += total;
	if (c->hold_final) { /* up_readable: written once the request is settled */
		c_append(c, iov, n, 0);
		c->cork = 1;
		return;
	}
	if (c->ssl) {
		tls_writev(c, iov, n);
		return;
	}
	size_t done = 0;
	if (c->cork && pending(c) > 0 && n <= 3) {
		struct iovec all[4];
		all[0].iov_base = c->out + c->out_off;
		all[0].iov_len = pending(c);
		memcpy(all + 1, iov, (size_t)n * sizeof(*iov));
		ssize_t k = writev(c->fd, all, n + 1);
		if (k < 0 && errno != EAGAIN && errno != EINTR) {
			c->dead = 1;
			return;
		}
		size_t kk = k > 0 ? (size_t)k : 0, p = pending(c);
		if (kk >= p) {
			c->out_len = c->out_off = 0;
			done = kk - p;
		} else {
			c->out_off += kk;
		}
	} else if (pending(c) == 0) {
		ssize_t k = writev(c->fd, iov, n);
		if (k < 0 && errno != EAGAIN && errno != EINTR) {
			c->dead = 1;
			return;
		}
		done = k > 0 ? (size_t)k : 0;
		c->out_len = c->out_off = 0;
	}
	c->cork = 0;
	c_append(c, iov, n, done);
}

/* One write of the pending output (plain TCP); what the socket does not
 * take stays pending. */
static void c_flush(struct conn *c)
{
	ssize_t k = write(c->fd, c->out + c->out_off, pending(c));
	if (k < 0 && errno != EAGAIN && errno != EINTR)
		c->dead = 1;
	else if (k > 0)
		c->out_off += (size_t)k;
	if (pending(c) == 0)
		c->out_len = c->out_off = 0;
}

/* Hold bytes to go out with the next write (or at the end of this event). */
static void c_hold(struct conn *c, const void *p, size_t n)
{
	struct iovec v = {(void *)p, n};
	c->bytes_out += n;
	c_append(c, &v, 1, 0);
	c->cork = 1;
}

static void c_write(struct conn *c, const void *p, size_t n)
{
	struct iovec v = {(void *)p, n};
	c_writev(c, &v, 1);
}

static const char *status_text(int s)
{
	switch (s) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Status";
	}
}

/* snprintf(dst, cap, "%s", src) without the format machinery (hot path) */
static void scopy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* v as 16 lowercase hex digits, most significant first */
static void hex_u64(char *out, uint64_t v)
{
	static const char hx[] = "0123456789abcdef";
	for (int i = 15; i >= 0; i--, v >>= 4)
		out[i] = hx[v & 15];
}

static void new_rid(struct conn *c)
{
	creto_gateway *g = c->w->g;
	_Static_assert(sizeof(c->rid) >= 33, "request id: 32 hex digits");
	hex_u64(c->rid, (uint64_t)g->boot);
	hex_u64(c->rid + 16, (uint64_t)atomic_fetch_add(&g->seq, 1));
	c->rid[32] = '\0';
}

/* ---- request lifecycle ---- */

/* The upstream request head holds vLLM's key: wiped before it is freed. */
static void req_free(struct upc *u)
{
	if (u->req != NULL)
		OPENSSL_cleanse(u->req, u->req_len);
	free(u->req);
	u->req = NULL;
	u->req_len = 0;
}

static void upc_free(struct upc *u)
{
	if (u == NULL)
		return;
	if (u->fd >= 0)
		close(u->fd);
	free(u->buf);
	req_free(u);
	free(u);
}

/* Close a registered upstream connection; freed after the batch. */
static void up_bury(struct worker *w, struct upc *u)
{
	(void)epoll_ctl(w->ep, EPOLL_CTL_DEL, u->fd, NULL);
	close(u->fd);
	u->fd = -1;
	u->kind = 0;
	u->c = NULL;
	u->grave = w->grave_up;
	w->grave_up = u;
}

static void reset_request(struct conn *c)
{
	c->in_req = 0;
	free(c->fwd);
	c->fwd = NULL;
	free(c->sse);
	c->sse = NULL;
	c->sse_len = c->sse_cap = 0;
	free(c->acct);
	c->acct = NULL;
	c->acct_len = 0;
	c->acct_over = 0;
}

/* Drop the bytes of the answered request: what follows is the next
 * pipelined one.  An empty connection gives its buffers back, so an idle
 * keep-alive connection costs only its struct. */
static void drop_request(struct conn *c)
{
	size_t used = c->req.head_len + (size_t)(c->req.content_length > 0 ? c->req.content_length : 0);
	if (used > c->in_len)
		used = c->in_len;
	OPENSSL_cleanse(c->in, used); /* the request's bearer token or client assertion */
	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
	if (c->in_len == 0) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
	if (pending(c) == 0) {
		out_free(c);
	}
}

/* The request is over (answer queued): release its limits, then (a relayed
 * answer's last bytes were held for that) write those bytes, then audit and
 * get ready for the next request on this connection.  The client's next
 * request finds its slot free, and it does not wait for its record to be
 * encoded and queued. */
static void finish_request(struct conn *c, const char *end, int64_t used_tokens)
{
	if (!c->in_req)
		return;
	c->end = end;
	gw_settle(c->w->g->lim, &c->adm, &c->lim, used_tokens);
	if (c->counted && c->w->g->metrics)
		gw_metrics_inflight(c->w->g->metrics, -1);
	c->counted = 0;
	if (c->hold_final) {
		c->hold_final = 0;
		c->cork = 0;
		if (!c->dead && c->ssl)
			tls_flush(c);
		else if (!c->dead)
			c_flush(c);
	}
	audit_request(c);
	drop_request(c);
	reset_request(c);
	c->state = c->keep_alive && !c->w->stopping ? CS_HEAD : CS_CLOSING;
	c->deadline = gw_now_ms() + (c->in_len ? c->w->g->cfg.header_timeout_ms : c->w->g->cfg.idle_timeout_ms);
}

static void begin_request(struct conn *c)
{
	c->in_req = 1;
	new_rid(c);
	c->t0_us = gw_now_us();
	c->tfirst_us = 0;
	c->bytes_in = c->bytes_out = 0;
	c->status = 0;
	c->reason[0] = c->agent[0] = c->jti[0] = c->model[0] = c->prompt_sha[0] = c->claimed[0] = '\0';
	c->token_rule = NULL;
	c->endpoint = EP_NONE;
	memset(&c->adm, 0, sizeof(c->adm));
	memset(&c->lim, 0, sizeof(c->lim));
	c->stream = c->strip_usage = 0;
	c->prompt_tokens = c->completion_tokens = -1;
	c->m = NULL;
	c->ntried = 0;
	c->no_pool = 0;
	c->rep = NULL;
	c->head_sent = 0;
	c->has_aff = 0;
}

/* A gateway-made JSON answer.  extra: more header lines (each ending CRLF). */
static void respond(struct conn *c, int status, const char *extra, const char *body)
{
	char head[1024];
	size_t bl = strlen(body);
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %zu\r\n"
			 "x-request-id: %s\r\n%s%s\r\n",
			 status, status_text(status), bl, c->rid, extra ? extra : "",
			 c->keep_alive && !c->w->stopping ? "" : "connection: close\r\n");
	if (n < 0 || (size_t)n >= sizeof(head))
		n = 0;
	struct iovec v[2] = {{head, (size_t)n}, {(void *)body, bl}};
	c->status = status;
	if (c->ssl == NULL && !c->dead && (pending(c) == 0 || c->deferred)) {
		/* Written with the other answers of this batch of events
		 * (defer_flush): a client woken once for several answers, not
		 * once each; in a VM each wake-up of an idle vCPU is an
		 * interrupt and an exit (docs/gateway.md "HTTP"). */
		c->bytes_out += (size_t)n + bl;
		c_append(c, v, 2, 0);
		if (!c->deferred) {
			struct worker *w = c->w;
			c->deferred = 1;
			c->dnext = w->deferred;
			w->deferred = c;
			if (w->ndeferred++ == 0)
				w->defer_t0_us = gw_now_us();
		}
		return;
	}
	c_writev(c, v, 2);
}

static const char *err_type(int status)
{
	switch (status) {
	case 401: return "authentication_error";
	case 403: return "permission_error";
	case 404: return "not_found_error";
	case 429: return "rate_limit_error";
	default: return status >= 500 ? "server_error" : "invalid_request_error";
	}
}

/* An OpenAI-shaped error {"error":{message,type,param,code}}; reason goes
 * only to the audit record. */
static void fail(struct conn *c, int status, const char *code, const char *param, const char *extra,
		 const char *reason, const char *fmt, ...) CRETO_PRINTF(7, 8);
static void fail(struct conn *c, int status, const char *code, const char *param, const char *extra,
		 const char *reason, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *o = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", msg, "type", err_type(status),
			      "param", param, "code", code);
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	respond(c, status, extra, body ? body : "{\"error\":{\"message\":\"error\"}}");
	free(body);
	snprintf(c->reason, sizeof(c->reason), "%s", reason ? reason : code ? code : "refused");
	finish_request(c, status >= 500 && strcmp(c->reason, "audit_unavailable") != 0 ? "upstream_error"
									       : "refused",
		       -1);
}

/* ---- upstream side ---- */

static void up_events(struct upc *u, uint32_t want)
{
	set_events(u->w->ep, u->fd, u, &u->ev, want);
}

static void up_release(struct conn *c, int reusable)
{
	struct upc *u = c->up;
	if (u == NULL)
		return;
	c->up = NULL;
	atomic_fetch_sub(&u->rep->outstanding, 1);
	struct worker *w = c->w;
	struct pool *p = &w->pool[u->rep->index];
	if (reusable && !w->stopping && u->len == 0 && p->n < (size_t)w->g->cfg.pool_idle) {
		u->c = NULL;
		u->state = US_HEAD;
		u->reused = 1;
		req_free(u);
		up_events(u, EPOLLIN | EPOLLRDHUP);
		p->idle[p->n++] = u;
		return;
	}
	up_bury(w, u);
}

static void pool_remove(struct worker *w, struct upc *u)
{
	struct pool *p = &w->pool[u->rep->index];
	for (size_t i = 0; i < p->n; i++)
		if (p->idle[i] == u) {
			p->idle[i] = p->idle[--p->n];
			break;
		}
	up_bury(w, u);
}

static void start_upstream(struct conn *c);

static int up_write(struct upc *u)
{
	struct conn *c = u->c;
	const char *body = c->fwd ? c->fwd : c->in + c->req.head_len;
	size_t blen = c->fwd ? c->fwd_len : (size_t)(c->req.content_length > 0 ? c->req.content_length : 0);
	size_t total = u->req_len + blen;
	while (u->sent < total) {
		struct iovec v[2];
		int n = 0;
		if (u->sent < u->req_len) {
			v[n++] = (struct iovec){u->req + u->sent, u->req_len - u->sent};
			if (blen)
				v[n++] = (struct iovec){(void *)body, blen};
		} else {
			v[n++] = (struct iovec){(void *)(body + (u->sent - u->req_len)), total - u->sent};
		}
		ssize_t k = writev(u->fd, v, n);
		if (k < 0) {
			if (errno == EAGAIN)
				return 0;
			if (errno == EINTR)
				continue;
			return -1;
		}
		u->sent += (size_t)k;
	}
	u->state = US_HEAD;
	u->deadline = gw_now_ms() + c->w->g->cfg.response_timeout_ms;
	up_events(u, EPOLLIN | EPOLLRDHUP);
	return 0;
}

/* Connect-level failure before any response byte: try another replica (or
 * a fresh connection after a stale pooled one), else answer 502/503. */
static void up_failed(struct conn *c, int connect_failure, const char *why)
{
	struct upc *u = c->up;
	creto_gateway *g = c->w->g;
	int reused = u ? u->reused : 0;
	gw_replica *rep = u ? u->rep : NULL;
	if (u) {
		up_release(c, 0);
	}
	if (rep && connect_failure && !reused) {
		gw_replica_result(rep, 0, g->cfg.eject_ms, g->cfg.max_fails, gw_now_ms());
		if (c->ntried < GW_REPLICAS_MAX)
			c->tried[c->ntried++] = rep;
		glog(g, "level=warn event=upstream_connect_failed replica=%s reason=\"%s\"", rep->cfg->url, why);
	}
	if (reused)
		c->no_pool = 1;
	if (connect_failure && c->ntried < c->m->nrep + 1) {
		start_upstream(c);
		return;
	}
	fail(c, 502, "upstream_error", NULL, NULL, why, "The model server could not be reached.");
}

static void start_upstream(struct conn *c)
{
	struct worker *w = c->w;
	creto_gateway *g = w->g;
	int64_t now = gw_now_ms();
	gw_replica *r = gw_pick(c->m, &w->rng, c->has_aff, c->aff, c->tried, c->ntried, now);
	if (r == NULL) {
		fail(c, 503, "no_replica", NULL, "retry-after: 1\r\n", "no healthy replica",
		     "No replica of model `%s` is available.", c->model);
		return;
	}
	struct upc *u = NULL;
	struct pool *p = &w->pool[r->index];
	/* a pooled connection the replica has closed meanwhile fails before
	 * any response byte and is retried on a fresh one (up_failed) */
	if (!c->no_pool && p->n > 0)
		u = p->idle[--p->n];
	int fresh = u == NULL;
	if (fresh) {
		u = calloc(1, sizeof(*u));
		if (u == NULL || (u->buf = malloc((size_t)g->cfg.stream_window)) == NULL) {
			free(u);
			fail(c, 500, "internal_error", NULL, NULL, "out of memory", "Out of memory.");
			return;
		}
		u->kind = K_UP;
		u->w = w;
		u->cap = (size_t)g->cfg.stream_window;
		u->fd = socket(r->cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (u->fd < 0) {
			upc_free(u);
			fail(c, 503, "overloaded", NULL, "retry-after: 1\r\n", "socket failed", "Out of sockets.");
			return;
		}
		int one = 1;
		(void)setsockopt(u->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		u->ev = EPOLLOUT;
		struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = u};
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, u->fd, &ev) != 0) {
			upc_free(u);
			fail(c, 503, "overloaded", NULL, "retry-after: 1\r\n", "epoll failed", "Overloaded.");
			return;
		}
	}
	u->c = c;
	u->rep = r;
	u->len = 0;
	u->got_byte = 0;
	u->paused = 0;
	u->sent = 0;
	u->body_done = 0;
	memset(&u->ck, 0, sizeof(u->ck));
	atomic_fetch_add(&r->outstanding, 1);
	c->up = u;
	c->rep = r;
	/* the request head: only what vLLM needs; the agent's Authorization
	 * and every other client header stay here */
	size_t blen = c->fwd ? c->fwd_len : (size_t)(c->req.content_length > 0 ? c->req.content_length : 0);
	char head[1024 + KEY_MAX];
	int n = snprintf(head, sizeof(head),
			 "POST %s HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\n"
			 "content-length: %zu\r\nx-request-id: %s\r\n%s%.*s%s\r\n",
			 k_ep_name[c->endpoint], r->cfg->hostport, blen, c->rid,
			 g->key_len ? "authorization: Bearer " : "", (int)g->key_len, (const char *)g->key,
			 g->key_len ? "\r\n" : "");
	u->req = malloc((size_t)n);
	if (n <= 0 || (size_t)n >= sizeof(head) || u->req == NULL) {
		OPENSSL_cleanse(head, sizeof(head));
		up_release(c, 0);
		fail(c, 500, "internal_error", NULL, NULL, "request head", "Internal error.");
		return;
	}
	memcpy(u->req, head, (size_t)n);
	OPENSSL_cleanse(head, sizeof(head));
	u->req_len = (size_t)n;
	if (fresh) {
		u->state = US_CONNECT;
		u->reused = 0;
		u->deadline = now + g->cfg.connect_timeout_ms;
		if (connect(u->fd, (const struct sockaddr *)&r->cfg->addr, r->cfg->alen) != 0 &&
		    errno != EINPROGRESS) {
			up_failed(c, 1, "connect refused");
			return;
		}
		return; /* EPOLLOUT says when it is connected */
	}
	u->state = US_SEND;
	u->deadline = now + g->cfg.response_timeout_ms;
	if (up_write(u) != 0)
		up_failed(c, 1, "write to pooled connection failed");
	else if (u->state == US_SEND)
		up_events(u, EPOLLOUT);
}

/* Frame n bytes for the client per out_mode. */
static void send_body(struct conn *c, const char *p, size_t n)
{
	if (n == 0)
		return;
	if (c->out_mode == OUT_CHUNKED) {
		char h[24];
		int hl = snprintf(h, sizeof(h), "%zx\r\n", n);
		struct iovec v[3] = {{h, (size_t)hl}, {(void *)p, n}, {"\r\n", 2}};
		c_writev(c, v, 3);
	} else {
		c_write(c, p, n);
	}
}

static void usage_from(struct conn *c, json_t *o)
{
	json_t *u = json_object_get(o, "usage");
	if (!json_is_object(u))
		return;
	json_t *pt = json_object_get(u, "prompt_tokens"), *ct = json_object_get(u, "completion_tokens");
	if (json_is_integer(pt))
		c->prompt_tokens = json_integer_value(pt);
	if (json_is_integer(ct))
		c->completion_tokens = json_integer_value(ct);
	else if (json_is_integer(pt))
		c->completion_tokens = 0;
}

/* The usage of a non-streamed answer: the whole body scanned strictly
 * (util/jsonscan, no allocation), then its "usage" member. */
static void usage_scan(struct conn *c)
{
	creto_json_object o, u;
	creto_err e;
	creto_err_clear(&e);
	if (creto_json_object_scan("answer", c->acct, c->acct_len, &o, &e) != CRETO_OK)
		return;
	const creto_json_value *v = creto_json_get(&o, "usage");
	if (v == NULL || v->type != CRETO_JSON_OBJECT ||
	    creto_json_object_scan("usage", v->p, v->n, &u, &e) != CRETO_OK)
		return;
	int64_t pt, ct;
	const creto_json_value *p = creto_json_get(&u, "prompt_tokens"), *q = creto_json_get(&u, "completion_tokens");
	if (p && creto_json_int64(p, &pt) == 0)
		c->prompt_tokens = pt;
	if (q && creto_json_int64(q, &ct) == 0)
		c->completion_tokens = ct;
	else if (c->prompt_tokens >= 0)
		c->completion_tokens = 0;
}

/* One SSE event [p, p+n) including its blank line: read the usage it
 * carries, and drop the usage-only chunk the gateway asked for itself. */
static int sse_keep(struct conn *c, const char *p, size_t n)
{
	if (n < 8 || memcmp(p, "data: {", 7) != 0 || memmem(p, n, "\"usage\"", 7) == NULL)
		return 1;
	json_t *o = json_loadb(p + 6, n - 6, JSON_DISABLE_EOF_CHECK, NULL);
	if (o == NULL)
		return 1;
	json_t *u = json_object_get(o, "usage");
	int keep = 1;
	if (json_is_object(u)) {
		usage_from(c, o);
		json_t *ch = json_object_get(o, "choices");
		if (c->strip_usage && json_is_array(ch) && json_array_size(ch) == 0)
			keep = 0;
	}
	json_decref(o);
	return keep;
}

static void deliver(struct conn *c, const char *p, size_t n)
{
	if (!c->stream) {
		if (!c->acct_over) {
			if (c->acct_len + n > ACCT_MAX) {
				c->acct_over = 1;
			} else {
				char *a = realloc(c->acct, c->acct_len + n + 1);
				if (a == NULL) {
					c->acct_over = 1;
				} else {
					c->acct = a;
					memcpy(c->acct + c->acct_len, p, n);
					c->acct_len += n;
				}
			}
		}
		send_body(c, p, n);
		return;
	}
	/* SSE: pass whole events through as soon as each is complete */
	size_t window = (size_t)c->w->g->cfg.stream_window;
	if (c->sse_len + n > c->sse_cap) {
		size_t nc = c->sse_cap ? c->sse_cap : 4096;
		while (nc < c->sse_len + n)
			nc *= 2;
		char *s = realloc(c->sse, nc);
		if (s == NULL) {
			c->dead = 1;
			return;
		}
		c->sse = s;
		c->sse_cap = nc;
	}
	memcpy(c->sse + c->sse_len, p, n);
	c->sse_len += n;
	size_t start = 0, keep_from = 0;
	for (;;) {
		const char *b = c->sse + start;
		size_t left = c->sse_len - start;
		const char *e = memmem(b, left, "\n\n", 2);
		const char *e2 = memmem(b, left, "\r\n\r\n", 4);
		size_t el;
		if (e2 && (!e || e2 < e))
			el = (size_t)(e2 - b) + 4;
		else if (e)
			el = (size_t)(e - b) + 2;
		else
			break;
		if (!sse_keep(c, b, el)) {
			send_body(c, c->sse + keep_from, start - keep_from);
			keep_from = start + el;
		}
		start += el;
	}
	send_body(c, c->sse + keep_from, start - keep_from);
	memmove(c->sse, c->sse + start, c->sse_len - start);
	c->sse_len -= start;
	if (c->sse_len > window) {
		/* one event larger than the window: pass it on unread */
		send_body(c, c->sse, c->sse_len);
		c->sse_len = 0;
	}
}

static void up_complete(struct conn *c, int reusable)
{
	struct upc *u = c->up;
	if (c->sse_len)
		send_body(c, c->sse, c->sse_len);
	c->sse_len = 0;
	if (c->out_mode == OUT_CHUNKED)
		c_write(c, "0\r\n\r\n", 5);
	if (!c->stream && c->acct_len && !c->acct_over)
		usage_scan(c);
	up_release(c, reusable && u->resp.keep_alive && u->body_done);
	if (c->out_mode == OUT_CLOSE)
		c->keep_alive = 0;
	int64_t used = c->prompt_tokens >= 0 ? c->prompt_tokens + (c->completion_tokens > 0 ? c->completion_tokens : 0) : -1;
	c->reason[0] = '\0';
	finish_request(c, "complete", used);
}

/* The replica failed after its answer began: end what the client has. */
static void up_broken(struct conn *c, const char *why)
{
	creto_gateway *g = c->w->g;
	if (c->up)
		gw_replica_result(c->up->rep, 0, g->cfg.eject_ms, g->cfg.max_fails, gw_now_ms());
	up_release(c, 0);
	snprintf(c->reason, sizeof(c->reason), "%s", why);
	if (c->stream && c->out_mode == OUT_CHUNKED) {
		static const char ev[] = "data: {\"error\":{\"message\":\"The model server failed during the "
					 "response.\",\"type\":\"server_error\",\"param\":null,\"code\":\"upstream_error\"}}\n\n";
		send_body(c, ev, sizeof(ev) - 1);
		c_write(c, "0\r\n\r\n", 5);
	}
	/* a length-framed body cannot be ended honestly: the close tells */
	c->keep_alive = 0;
	finish_request(c, "upstream_error", -1);
}

static void client_head(struct conn *c, struct upc *u)
{
	gw_http_resp *r = &u->resp;
	char head[1024];
	const char *framing;
	char clbuf[48];
	if (r->content_length >= 0 && !r->chunked && !c->stream) {
		c->out_mode = OUT_LENGTH;
		snprintf(clbuf, sizeof(clbuf), "content-length: %lld\r\n", (long long)r->content_length);
		framing = clbuf;
	} else if (c->req.minor == 1) {
		c->out_mode = OUT_CHUNKED;
		framing = "transfer-encoding: chunked\r\n";
	} else {
		c->out_mode = OUT_CLOSE;
		c->keep_alive = 0;
		framing = "";
	}
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\ncontent-type: %.*s\r\n%sx-request-id: %s\r\n%s%s\r\n",
			 r->status, status_text(r->status),
			 (int)(r->content_type ? r->content_type_len : 16),
			 r->content_type ? r->content_type : "application/json", framing, c->rid,
			 c->stream ? "cache-control: no-cache\r\n" : "",
			 c->keep_alive && !c->w->stopping ? "" : "connection: close\r\n");
	if (n > 0 && (size_t)n < sizeof(head))
		c_hold(c, head, (size_t)n);
	c->head_sent = 1;
	c->status = r->status;
}

/* Relay what the replica sent; stops reading when the client lags. */
static void up_readable(struct upc *u)
{
	struct conn *c = u->c;
	creto_gateway *g = c->w->g;
	size_t window = (size_t)g->cfg.stream_window;
	for (int rounds = 0; rounds < 16 && c->up == u && !c->dead; rounds++) {
		if (pending(c) > window) {
			u->paused = 1;
			up_events(u, EPOLLRDHUP);
			return;
		}
		if (u->len == u->cap) {
			up_failed(c, 0, "response head too large");
			return;
		}
		ssize_t k = recv(u->fd, u->buf + u->len, u->cap - u->len, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			return;
		if (k <= 0) {
			if (u->state == US_HEAD) {
				if (!u->got_byte && u->reused) {
					up_failed(c, 1, "pooled connection closed");
					return;
				}
				gw_replica_result(u->rep, 0, g->cfg.eject_ms, g->cfg.max_fails, gw_now_ms());
				up_release(c, 0);
				fail(c, 502, "upstream_error", NULL, NULL, "upstream closed before answering",
				     "The model server closed the connection.");
				return;
			}
			if (k == 0 && !u->resp.chunked && u->resp.content_length < 0) {
				u->body_done = 1;
				up_complete(c, 0);
			} else {
				up_broken(c, k == 0 ? "upstream closed mid-response" : "upstream reset mid-response");
			}
			return;
		}
		u->len += (size_t)k;
		u->got_byte = 1;
		u->deadline = gw_now_ms() + g->cfg.stream_idle_ms;
		if (u->state == US_HEAD) {
			int rc = gw_http_parse_response(u->buf, u->len, window, &u->resp);
			if (rc == GW_HTTP_AGAIN)
				continue;
			if (rc != 0 || u->resp.status < 200) {
				gw_replica_result(u->rep, 0, g->cfg.eject_ms, g->cfg.max_fails, gw_now_ms());
				up_release(c, 0);
				fail(c, 502, "upstream_error", NULL, NULL, "bad response from upstream",
				     "The model server sent a malformed response.");
				return;
			}
			gw_replica_result(u->rep, u->resp.status < 500, g->cfg.eject_ms, g->cfg.max_fails,
					  gw_now_ms());
			if (u->resp.status == 401 || u->resp.status == 403) {
				/* vLLM refused the gateway's key: not the agent's fault */
				up_release(c, 0);
				glog(g, "level=error event=upstream_auth replica=%s status=%d", c->rep->cfg->url,
				     u->resp.status);
				fail(c, 502, "upstream_error", NULL, NULL, "upstream refused the gateway's key",
				     "The model server refused the gateway.");
				return;
			}
			c->tfirst_us = gw_now_us();
			if (!u->resp.event_stream)
				c->stream = 0; /* an error answer to a stream request is plain JSON */
			client_head(c, u);
			u->body_left = u->resp.content_length;
			size_t hl = u->resp.head_len;
			memmove(u->buf, u->buf + hl, u->len - hl);
			u->len -= hl;
			u->state = US_BODY;
			if (u->resp.content_length == 0 && !u->resp.chunked) {
				u->body_done = 1;
				up_complete(c, 1);
				return;
			}
		}
		/* US_BODY */
		size_t data = u->len, used = u->len;
		if (u->resp.chunked) {
			if (gw_chunked_decode(&u->ck, u->buf, u->len, &data, &used) != 0) {
				up_broken(c, "bad chunked framing from upstream");
				return;
			}
			u->body_done = u->ck.done;
		} else if (u->resp.content_length >= 0) {
			if ((int64_t)data > u->body_left)
				data = used = (size_t)u->body_left;
			u->body_left -= (int64_t)data;
			u->body_done = u->body_left == 0;
		}
		int extra = used < u->len; /* bytes after the body: not reusable */
		/* The answer's last bytes go out after up_complete has released
		 * the agent's limits (concurrency, tokens): a client that sends
		 * its next request the moment it has the answer must find its
		 * slot free (held output: written by finish_request once they are) */
		c->hold_final = u->body_done;
		deliver(c, u->buf, data);
		u->len = 0;
		if (u->body_done) {
			up_complete(c, !extra);
			c->hold_final = 0;
			return;
		}
	}
}

static void up_event(struct upc *u, uint32_t ev)
{
	struct worker *w = u->w;
	if (u->c == NULL) { /* idle in the pool: closed by the replica? */
		char b;
		ssize_t k = recv(u->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (k < 0 && errno == EAGAIN && !(ev & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)))
			return;
		pool_remove(w, u);
		return;
	}
	struct conn *c = u->c;
	if (u->state == US_CONNECT) {
		int err = 0;
		socklen_t el = sizeof(err);
		if ((ev & (EPOLLERR | EPOLLHUP)) || getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 ||
		    err != 0) {
			up_failed(c, 1, "connect failed");
			return;
		}
		u->state = US_SEND;
	}
	if (u->state == US_SEND) {
		if (up_write(u) != 0) {
			up_failed(c, !u->reused ? 0 : 1, "write to upstream failed");
			return;
		}
		if (u->state == US_SEND) {
			up_events(u, EPOLLOUT);
			return;
		}
	}
	if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		up_readable(u);
}

/* ---- request handling ---- */

static int path_is(const gw_http_req *r, const char *p)
{
	return r->target_len == strlen(p) && memcmp(r->target, p, r->target_len) == 0;
}

static void models_list(struct conn *c, const char *scopes)
{
	creto_gateway *g = c->w->g;
	json_t *data = json_array();
	for (size_t i = 0; i < g->cfg.nmodel; i++) {
		char sc[GW_MODEL_NAME_MAX + 8];
		int n = snprintf(sc, sizeof(sc), "model:%s", g->cfg.model[i].name);
		if (!creto_nhi_scopes_has(scopes, sc, (size_t)n))
			continue;
		json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s}", "id", g->cfg.model[i].name, "object",
						      "model", "created", (json_int_t)g->start_epoch,
						      "owned_by", "creto"));
	}
	json_t *o = json_pack("{s:s, s:o}", "object", "list", "data", data);
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	respond(c, 200, NULL, body ? body : "{\"object\":\"list\",\"data\":[]}");
	free(body);
	finish_request(c, "complete", -1);
}

static void sha256_hex(const char *p, size_t n, char out[65])
{
	unsigned char d[32];
	unsigned int dl = 0;
	if (EVP_Digest(p, n, d, &dl, EVP_sha256(), NULL) != 1 || dl != 32) {
		out[0] = '\0';
		return;
	}
	static const char hx[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[64] = '\0';
}

static uint64_t fnv(const char *p, size_t n)
{
	uint64_t x = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		x = (x ^ (unsigned char)p[i]) * 1099511628211ULL;
	return x;
}

static const char *prompt_key(int ep)
{
	return ep == EP_CHAT ? "messages" : ep == EP_COMPLETIONS ? "prompt" : "input";
}

/* ---- the token endpoint (docs/gateway.md "Token endpoint") ---- */

#define TOKEN_PATH "/oauth/token"
#define META_PATH "/.well-known/oauth-authorization-server"
#define JWKS_PATH "/.well-known/jwks.json"

/* A request answered without an audit record of its own (health probes,
 * metadata; the token endpoint audits through the library, aggregated). */
static void done_unaudited(struct conn *c)
{
	creto_gateway *g = c->w->g;
	c->in_req = 0;
	drop_request(c);
	c->state = c->keep_alive && !c->w->stopping ? CS_HEAD : CS_CLOSING;
	c->deadline = gw_now_ms() + (c->in_len ? g->cfg.header_timeout_ms : g->cfg.idle_timeout_ms);
}

/* The client's address for the endpoint's per-source limit: the IP, or
 * "unix:uid=N" (SO_PEERCRED) on a Unix socket. */
static void peer_text(int fd, char *out, size_t n)
{
	struct sockaddr_storage a;
	socklen_t al = sizeof(a);
	snprintf(out, n, "-");
	if (getpeername(fd, (struct sockaddr *)&a, &al) != 0)
		return;
	if (a.ss_family == AF_INET)
		(void)inet_ntop(AF_INET, &((struct sockaddr_in *)&a)->sin_addr, out, (socklen_t)n);
	else if (a.ss_family == AF_INET6)
		(void)inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a)->sin6_addr, out, (socklen_t)n);
	else if (a.ss_family == AF_UNIX) {
		struct ucred uc;
		socklen_t ul = sizeof(uc);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == 0)
			snprintf(out, n, "unix:uid=%u", (unsigned)uc.uid);
		else
			snprintf(out, n, "unix");
	}
}

static const char k_nostore[] = "cache-control: no-store\r\npragma: no-cache\r\n";

/* POST /oauth/token: body_len bytes at body (NULL when the declared body
 * is over CRETO_OAUTH_FORM_MAX: refused unread, the connection closed). */
static void token_request(struct conn *c, const char *body, size_t body_len)
{
	creto_gateway *g = c->w->g;
	const gw_http_req *r = &c->req;
	char extra[160];
	if (!audit_ok(g)) {
		snprintf(extra, sizeof(extra), "%sretry-after: 1\r\n", k_nostore);
		respond(c, 503, extra,
			"{\"error\":\"temporarily_unavailable\",\"error_description\":\"the audit log cannot take "
			"records\"}");
		done_unaudited(c);
		return;
	}
	char ctype[256];
	const char *src = conn_peer(c);
	int have_ct = r->ctype != NULL && r->ctype_len < sizeof(ctype);
	if (have_ct) {
		memcpy(ctype, r->ctype, r->ctype_len);
		ctype[r->ctype_len] = '\0';
	} else if (r->ctype != NULL) {
		snprintf(ctype, sizeof(ctype), "(too long)");
		have_ct = 1;
	}
	creto_nhi_token_request rq = {
		.body = body,
		.len = body_len,
		.content_type = have_ct ? ctype : NULL,
		.source = src,
		.has_authorization = r->auth != NULL,
	};
	creto_nhi_token_response resp;
	creto_err e;
	creto_err_clear(&e);
	/* the answer says everything: resp is filled whatever the outcome */
	if (creto_nhi_token_endpoint(g->oauth, &rq, creto_clock_now(g->opts.clock), &resp, &e) == CRETO_EOP)
		glog(g, "level=error event=token_internal id=%s msg=\"%s\"", c->rid, e.msg);
	if (resp.retry_after > 0)
		snprintf(extra, sizeof(extra), "%sretry-after: %d\r\n", k_nostore, resp.retry_after);
	else
		snprintf(extra, sizeof(extra), "%s", k_nostore);
	if (resp.status == 200)
		c->secret_out = 1; /* the access token may stay in c->out until sent */
	respond(c, resp.status, extra, resp.body ? resp.body : "{\"error\":\"server_error\"}");
	if (g->cfg.access_log)
		glog(g, "level=info event=token id=%s source=%s status=%d error=%s rule=%s", c->rid, src,
		     resp.status, resp.error ? resp.error : "-", resp.reason ? resp.reason : "-");
	creto_nhi_token_response_clear(&resp);
	done_unaudited(c);
}

/* The endpoint's routes; 1 when the request was one of them. */
static int token_routes(struct conn *c)
{
	creto_gateway *g = c->w->g;
	const gw_http_req *r = &c->req;
	if (g->oauth == NULL || c->admin)
		return 0;
	if (r->method == GW_M_POST && path_is(r, TOKEN_PATH)) {
		token_request(c, c->in + r->head_len, (size_t)(r->content_length > 0 ? r->content_length : 0));
		return 1;
	}
	const char *doc = NULL;
	if (r->method == GW_M_GET && path_is(r, META_PATH))
		doc = g->as_meta;
	else if (r->method == GW_M_GET && path_is(r, JWKS_PATH))
		doc = g->as_jwks;
	if (doc == NULL)
		return 0;
	respond(c, 200, NULL, doc);
	done_unaudited(c);
	return 1;
}

/* process_input: a token request whose declared body is over the form
 * cap is answered from its head (the library refuses it by length and
 * counts it against the source) and the connection closed. */
static int token_oversized(struct conn *c)
{
	creto_gateway *g = c->w->g;
	gw_http_req *r = &c->req;
	if (g->oauth == NULL || c->admin || r->method != GW_M_POST || !path_is(r, TOKEN_PATH) ||
	    r->content_length <= CRETO_OAUTH_FORM_MAX)
		return 0;
	size_t len = (size_t)r->content_length;
	c->keep_alive = 0;
	r->head_len = c->in_len; /* drop whatever of the body came */
	r->content_length = -1;
	token_request(c, NULL, len);
	return 1;
}

static void handle(struct conn *c)
{
	struct worker *w = c->w;
	creto_gateway *g = w->g;
	gw_http_req *r = &c->req;
	c->bytes_in = r->head_len + (size_t)(r->content_length > 0 ? r->content_length : 0);
	if (c->admin || (r->method == GW_M_GET && (path_is(r, "/health") || path_is(r, "/ready")))) {
		/* health probes and the admin listener: no identity, not audited */
		char *body = NULL;
		size_t bl = 0;
		int st = 200;
		const char *txt = "{\"status\":\"ok\"}";
		if (c->admin && r->method == GW_M_GET && path_is(r, "/metrics") && g->metrics) {
			static const char *const epn[] = {"", "/v1/chat/completions", "/v1/completions",
							  "/v1/embeddings", "/v1/models"};
			int conns = atomic_load(&g->conns);
			if (gw_metrics_render(g->metrics, g->models, g->model_names, g->cfg.nmodel, epn, conns, &body,
					      &bl) != 0 ||
			    gw_metrics_append(&body, &bl, g->opts.metrics_extra, g->opts.metrics_extra_ctx) != 0)
				st = 500, txt = "out of memory\n";
		} else if (r->method == GW_M_GET && path_is(r, "/ready")) {
			int ready = audit_ok(g), any = 0;
			int64_t now = gw_now_ms();
			for (size_t i = 0; i < g->nreps && !any; i++)
				any = gw_replica_usable(&g->reps[i], now);
			if (!(ready && any && !w->stopping))
				st = 503, txt = "{\"status\":\"not ready\"}";
		} else if (!(r->method == GW_M_GET && path_is(r, "/health"))) {
			st = 404, txt = "{\"error\":{\"message\":\"Not found.\",\"type\":\"not_found_error\",\"param\":null,\"code\":\"not_found\"}}";
		}
		if (body != NULL) {
			char head[256];
			int n = snprintf(head, sizeof(head),
					 "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\n"
					 "content-length: %zu\r\nx-request-id: %s\r\n%s\r\n",
					 bl, c->rid, c->keep_alive ? "" : "connection: close\r\n");
			struct iovec v[2] = {{head, (size_t)n}, {body, bl}};
			c_writev(c, v, 2);
			free(body);
		} else {
			respond(c, st, NULL, txt);
		}
		c->in_req = 0;
		drop_request(c);
		c->state = c->keep_alive ? CS_HEAD : CS_CLOSING;
		c->deadline = gw_now_ms() + g->cfg.idle_timeout_ms;
		return;
	}
	if (token_routes(c))
		return;
	if (!audit_ok(g)) {
		fail(c, 503, "audit_unavailable", NULL, "retry-after: 1\r\n", "audit_unavailable",
		     "The gateway cannot record requests and refuses them.");
		return;
	}
	/* authentication: Bearer <agent JWS> */
	static const char www[] = "www-authenticate: Bearer error=\"invalid_token\"\r\n";
	if (r->auth == NULL || r->auth_len < 8 || strncasecmp(r->auth, "bearer ", 7) != 0) {
		c->token_rule = "no_bearer_token";
		fail(c, 401, "invalid_api_key", NULL, www, "no bearer token", "Invalid or missing token.");
		return;
	}
	const char *tok = r->auth + 7;
	size_t tl = r->auth_len - 7;
	while (tl && *tok == ' ') {
		tok++;
		tl--;
	}
	creto_err e;
	creto_err_clear(&e);
	int cached = 0;
	creto_nhi_identity *id = &w->id;
	if (creto_nhi_resolve(g->resolver, tok, tl, creto_clock_now(g->opts.clock), id, &cached, &e) !=
	    CRETO_OK) {
		char why[160];
		snprintf(why, sizeof(why), "token: %.140s", e.msg);
		c->token_rule = creto_nhi_rule_name(id->refused);
		gw_refusal_claimed_sub(tok, tl, c->claimed, sizeof(c->claimed));
		fail(c, 401, "invalid_api_key", NULL, www, why, "Invalid or missing token.");
		return;
	}
	scopy(c->agent, sizeof(c->agent), id->agent.id);
	scopy(c->jti, sizeof(c->jti), id->jti);
	creto_gateway_config *live = atomic_load(&g->live);
	gw_config_limits(live, c->agent, &c->lim);
	int64_t default_max_tokens = live->default_max_tokens;
	/* deny by default */
	if (r->method == GW_M_POST && path_is(r, "/v1/chat/completions"))
		c->endpoint = EP_CHAT;
	else if (r->method == GW_M_POST && path_is(r, "/v1/completions"))
		c->endpoint = EP_COMPLETIONS;
	else if (r->method == GW_M_POST && path_is(r, "/v1/embeddings"))
		c->endpoint = EP_EMBEDDINGS;
	else if (r->method == GW_M_GET && path_is(r, "/v1/models"))
		c->endpoint = EP_MODELS;
	if (c->endpoint == EP_NONE) {
		fail(c, 404, "not_found", NULL, NULL, "path not served", "Not found.");
		return;
	}
	if (!(c->lim.endpoints & k_ep_bit[c->endpoint])) {
		fail(c, 403, "endpoint_not_permitted", NULL, NULL, "endpoint not in policy",
		     "This agent may not use %s.", k_ep_name[c->endpoint]);
		return;
	}
	if (c->endpoint == EP_MODELS) {
		models_list(c, id->scopes);
		return;
	}
	size_t blen = (size_t)(r->content_length > 0 ? r->content_length : 0);
	if ((int64_t)blen > c->lim.max_request_bytes) {
		fail(c, 413, "request_too_large", NULL, NULL, "body over the agent's max_request_bytes",
		     "The request body is larger than this agent may send.");
		return;
	}
	const char *body = c->in + r->head_len;
	gw_body bi;
	char jerr[200];
	int br = gw_body_read(body, blen, prompt_key(c->endpoint), &bi, jerr, sizeof(jerr));
	if (br != 0) {
		fail(c, 400, "invalid_json", NULL, NULL, "body is not one JSON object without duplicate keys",
		     "The body must be one JSON object without duplicate keys: %s.", jerr);
		return;
	}
	if (!bi.model_ok) {
		fail(c, 400, "missing_model", "model", NULL, "model missing or not a string",
		     "You must provide a model parameter.");
		gw_body_clear(&bi);
		return;
	}
	scopy(c->model, sizeof(c->model), bi.model);
	char sc[GW_MODEL_NAME_MAX + 8];
	size_t scn = strnlen(bi.model, sizeof(sc) - 7);
	memcpy(sc, "model:", 6);
	memcpy(sc + 6, bi.model, scn);
	scn += 6;
	sc[scn] = '\0';
	if (!creto_nhi_scopes_has(id->scopes, sc, scn)) {
		fail(c, 403, "model_not_permitted", "model", NULL, "model not in the agent's scopes",
		     "This agent may not use the model `%s`.", c->model);
		gw_body_clear(&bi);
		return;
	}
	for (size_t i = 0; i < g->cfg.nmodel; i++)
		if (strcmp(g->cfg.model[i].name, bi.model) == 0)
			c->m = &g->models[i];
	if (c->m == NULL) {
		fail(c, 404, "model_not_found", "model", NULL, "no replica serves the model",
		     "The model `%s` does not exist.", c->model);
		gw_body_clear(&bi);
		return;
	}
	if (bi.mt_bad) {
		fail(c, 400, "invalid_value", bi.mt_key, NULL, "max_tokens not an integer",
		     "%s must be a non-negative integer.", bi.mt_key);
		gw_body_clear(&bi);
		return;
	}
	int64_t max_tokens = bi.mt;
	int add_cap = 0, add_usage = 0;
	if (c->lim.max_tokens > 0 && c->endpoint != EP_EMBEDDINGS) {
		if (max_tokens > c->lim.max_tokens) {
			fail(c, 400, "max_tokens_exceeded", bi.mt_key, NULL, "max_tokens over the agent's cap",
			     "%s may be at most %lld for this agent.", bi.mt_key, (long long)c->lim.max_tokens);
			gw_body_clear(&bi);
			return;
		}
		if (max_tokens < 0) {
			max_tokens = c->lim.max_tokens;
			add_cap = 1;
		}
	}
	c->stream = bi.stream && c->endpoint != EP_EMBEDDINGS;
	if (c->stream && g->cfg.inject_usage && !bi.include_usage && (bi.so_absent || bi.so_object))
		c->strip_usage = add_usage = 1;
	if (bi.prompt && (g->cfg.prompt_hash || g->cfg.affinity)) {
		if (g->cfg.prompt_hash)
			sha256_hex(bi.prompt, bi.prompt_len, c->prompt_sha);
		if (g->cfg.affinity && c->endpoint != EP_EMBEDDINGS) {
			c->has_aff = 1;
			c->aff = fnv(c->agent, strlen(c->agent)) ^
				 fnv(bi.prompt, bi.prompt_len < (size_t)g->cfg.affinity_bytes ? bi.prompt_len
											    : (size_t)g->cfg.affinity_bytes);
		}
	}
	gw_body_clear(&bi);
	if (add_cap || add_usage) {
		/* the body must change: re-serialise it from the parsed object */
		json_t *o = json_loadb(body, blen, JSON_REJECT_DUPLICATES, NULL);
		if (o != NULL && add_cap)
			json_object_set_new(o, "max_tokens", json_integer(max_tokens));
		if (o != NULL && add_usage) {
			json_t *so = json_object_get(o, "stream_options");
			if (json_is_object(so))
				json_object_set_new(so, "include_usage", json_true());
			else
				json_object_set_new(o, "stream_options", json_pack("{s:b}", "include_usage", 1));
		}
		c->fwd = o ? json_dumps(o, JSON_COMPACT) : NULL;
		c->fwd_len = c->fwd ? strlen(c->fwd) : 0;
		json_decref(o);
		if (c->fwd == NULL) {
			fail(c, 500, "internal_error", NULL, NULL, "out of memory", "Internal error.");
			return;
		}
	}
	/* limits: reserve a prompt estimate plus the completion budget */
	int64_t reserve = (int64_t)(blen / 4) + 1;
	if (c->endpoint != EP_EMBEDDINGS)
		reserve += max_tokens >= 0 ? max_tokens : default_max_tokens;
	int ar = gw_admit(g->lim, c->agent, &c->lim, reserve, gw_now_ms(), &c->adm);
	if (ar == GW_ADMIT_BURST) {
		char hdr[160];
		snprintf(hdr, sizeof(hdr), "retry-after: %lld\r\nretry-after-ms: %lld\r\nx-should-retry: true\r\n",
			 (long long)((c->adm.retry_after_ms + 999) / 1000), (long long)c->adm.retry_after_ms);
		char why[96];
		snprintf(why, sizeof(why), "rate limit: %s", c->adm.what);
		fail(c, 429, "rate_limit_exceeded", NULL, hdr, why, "Rate limit reached for %s.", c->adm.what);
		return;
	}
	if (ar == GW_ADMIT_QUOTA) {
		char why[96];
		snprintf(why, sizeof(why), "quota: %s", c->adm.what);
		fail(c, 429, "insufficient_quota", NULL, "x-should-retry: false\r\n", why,
		     "This request needs more %s than the agent's limit allows.", c->adm.what);
		return;
	}
	if (ar != GW_ADMIT_OK) {
		fail(c, 500, "internal_error", NULL, NULL, "limiter", "Internal error.");
		return;
	}
	c->state = CS_PROXY;
	if (g->metrics) {
		gw_metrics_inflight(g->metrics, 1);
		c->counted = 1;
	}
	start_upstream(c);
}

/* Parse what the client sent; run every complete request (pipelined ones
 * one after the other, each answered before the next is read). */
static void process_input(struct conn *c)
{
	creto_gateway *g = c->w->g;
	while (!c->dead && (c->state == CS_HEAD || c->state == CS_BODY) &&
	       pending(c) < (size_t)g->cfg.stream_window) {
		if (c->state == CS_HEAD) {
			if (c->in_len == 0)
				return;
			gw_http_limits lim = {(size_t)g->cfg.line_max, (size_t)g->cfg.head_max,
					      (size_t)g->cfg.headers_max, (uint64_t)g->cfg.body_max};
			int rc = gw_http_parse_request(c->in, c->in_len, &lim, &c->req);
			if (rc == GW_HTTP_AGAIN) {
				if (c->deadline > gw_now_ms() + g->cfg.header_timeout_ms)
					c->deadline = gw_now_ms() + g->cfg.header_timeout_ms;
				return;
			}
			begin_request(c);
			if (rc != 0) {
				c->keep_alive = 0;
				c->req.content_length = -1;
				c->req.head_len = c->in_len;
				fail(c, rc, "invalid_request", NULL, NULL, c->req.reason, "%s.", c->req.reason);
				return;
			}
			c->keep_alive = c->req.keep_alive;
			if (token_oversized(c))
				return;
			size_t need = c->req.head_len + (size_t)(c->req.content_length > 0 ? c->req.content_length : 0);
			if (need > c->in_cap) {
				char *p = realloc(c->in, need);
				if (p == NULL) {
					c->dead = 1;
					return;
				}
				c->in = p;
				c->in_cap = need;
			}
			c->state = CS_BODY;
			c->deadline = gw_now_ms() + g->cfg.body_timeout_ms;
			if (c->req.expect_continue && c->in_len < need && c->req.minor == 1)
				c_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		}
		size_t need = c->req.head_len + (size_t)(c->req.content_length > 0 ? c->req.content_length : 0);
		if (c->in_len < need)
			return;
		handle(c);
	}
}

static void client_close(struct conn *c)
{
	struct worker *w = c->w;
	if (c->kind != K_CLIENT)
		return;
	if (c->up) {
		/* the client went away: stop the replica's work at once */
		up_release(c, 0);
	}
	if (c->in_req) {
		snprintf(c->reason, sizeof(c->reason), "client disconnected");
		c->keep_alive = 0;
		finish_request(c, "client_gone", -1);
	}
	(void)epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->ssl) {
		gw_tls_close(c->ssl, !c->tls_fatal); /* close_notify unless TLS failed */
		c->ssl = NULL;
	}
	close(c->fd);
	if (w->sweep_next == c)
		w->sweep_next = c->next;
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	atomic_fetch_sub(&w->g->conns, 1);
	reset_request(c);
	c->kind = 0;
	c->grave = w->grave_c;
	w->grave_c = c;
}

static void bury_all(struct worker *w)
{
	while (w->grave_up) {
		struct upc *u = w->grave_up;
		w->grave_up = u->grave;
		upc_free(u);
	}
	while (w->grave_c) {
		struct conn *c = w->grave_c;
		w->grave_c = c->grave;
		if (c->in != NULL)
			OPENSSL_cleanse(c->in, c->in_len);
		free(c->in);
		out_free(c);
		free(c);
	}
}

/* Room to read into, for the plain and the TLS paths: idle connections
 * hold no input buffer, one is made now; a request head may grow to
 * head_max (+1 to tell "too large").  -1 when out of memory. */
static int in_room(struct conn *c)
{
	size_t hmax = (size_t)c->w->g->cfg.head_max + 1;
	if (c->in == NULL) {
		if ((c->in = malloc(IN_MIN)) == NULL)
			return -1;
		c->in_cap = IN_MIN;
	}
	if (c->state == CS_HEAD && c->in_len == c->in_cap && c->in_cap < hmax) {
		size_t nc = c->in_cap * 2 < hmax ? c->in_cap * 2 : hmax;
		char *p = malloc(nc); /* not realloc: the old buffer (a token) is wiped */
		if (p != NULL) {
			memcpy(p, c->in, c->in_len);
			OPENSSL_cleanse(c->in, c->in_cap);
			free(c->in);
			c->in = p;
			c->in_cap = nc;
		}
	}
	return 0;
}

static void client_event_tls(struct conn *c, uint32_t ev);

/* After an event: a closing connection with nothing left to send is done;
 * a dead one is closed, a live one gets its events updated. */
static void c_settle(struct conn *c)
{
	if (!c->dead && c->state == CS_CLOSING && pending(c) == 0)
		c->dead = 1;
	if (c->dead)
		client_close(c);
	else
		c_events(c);
}

static void client_event(struct conn *c, uint32_t ev)
{
	creto_gateway *g = c->w->g;
	if (c->kind != K_CLIENT)
		return;
	if (c->ssl) {
		client_event_tls(c, ev);
		return;
	}
	if (c->cork) { /* held output: send it now */
		c->cork = 0;
		ev |= EPOLLOUT;
	}
	if (ev & EPOLLERR)
		c->dead = 1;
	if (!c->dead && (ev & EPOLLOUT) && pending(c)) {
		c_flush(c);
		if (c->up && c->up->paused && pending(c) <= (size_t)g->cfg.stream_window / 2) {
			c->up->paused = 0;
			up_events(c->up, EPOLLIN | EPOLLRDHUP);
			up_readable(c->up);
		}
	}
	if (!c->dead && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) {
		if (in_room(c) != 0) {
			client_close(c);
			return;
		}
		if (c->in_len < c->in_cap) {
			ssize_t k = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
			if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
				c->dead = 1;
			else if (k > 0)
				c->in_len += (size_t)k;
		} else if (ev & (EPOLLRDHUP | EPOLLHUP)) {
			c->dead = 1;
		}
	}
	if (!c->dead)
		process_input(c);
	c_settle(c);
}

/* ---- TLS connections (docs/gateway.md "TLS") ---- */

/* Plain HTTP sent to a TLS listener: one plain answer, then the close. */
static void tls_plain_refusal(struct conn *c)
{
	static const char body[] = "{\"error\":{\"message\":\"This port speaks TLS: use https.\",\"type\":"
				   "\"invalid_request_error\",\"param\":null,\"code\":\"tls_required\"}}";
	char head[200];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: %zu\r\n"
			 "connection: close\r\n\r\n",
			 sizeof(body) - 1);
	struct iovec v[2] = {{head, (size_t)n}, {(void *)body, sizeof(body) - 1}};
	(void)!writev(c->fd, v, 2);
}

/* Whether the connection takes input now (as c_events decides EPOLLIN). */
static int tls_wants_input(const struct conn *c)
{
	const creto_gateway_config *cfg = &c->w->g->cfg;
	int room = c->in == NULL || c->in_len < c->in_cap ||
		   (c->state == CS_HEAD && c->in_cap < (size_t)cfg->head_max + 1);
	return c->state != CS_CLOSING && room && (c->state != CS_HEAD || pending(c) < (size_t)cfg->stream_window);
}

/* Read plaintext into the input buffer; the bytes read. */
static size_t tls_fill(struct conn *c, uint32_t ev)
{
	if (in_room(c) != 0) {
		c->dead = 1;
		return 0;
	}
	if (c->in_len == c->in_cap) {
		if (ev & (EPOLLRDHUP | EPOLLHUP))
			c->dead = 1;
		return 0;
	}
	size_t k = 0;
	int r = gw_tls_read(c->ssl, c->in + c->in_len, c->in_cap - c->in_len, &k);
	c->tls_rww = r == GW_TLS_WANT_WRITE;
	if (r == GW_TLS_OK) {
		c->in_len += k;
	} else if (r == GW_TLS_CLOSED) {
		c->dead = 1; /* close_notify: answered with ours */
	} else if (r != GW_TLS_WANT_READ && r != GW_TLS_WANT_WRITE) {
		c->dead = 1;
		c->tls_fatal = 1;
	}
	return r == GW_TLS_OK ? k : 0;
}

/* client_event for a TLS connection: the handshake, then the same steps
 * with SSL_read/SSL_write.  Plaintext OpenSSL already holds (the rest of a
 * record larger than the room there was) is read without waiting for the
 * socket: epoll cannot see it. */
static void client_event_tls(struct conn *c, uint32_t ev)
{
	creto_gateway *g = c->w->g;
	if (ev & EPOLLERR) {
		c->dead = 1;
		c->tls_fatal = 1;
	}
	int hs_now = 0;
	if (!c->dead && c->tls_hs) {
		int r = gw_tls_handshake(c->ssl);
		if (r == GW_TLS_OK) {
			hs_now = 1;
			/* no read now: a read that finds nothing keeps OpenSSL's
			 * 16 KiB record buffer; a request that came with the
			 * Finished is in the socket (epoll says so) or in OpenSSL
			 * (SSL_has_pending, below) */
			c->tls_hs = 0;
			c->deadline = gw_now_ms() + g->cfg.idle_timeout_ms;
		} else if (r == GW_TLS_WANT_READ || r == GW_TLS_WANT_WRITE) {
			c->tls_hs = r == GW_TLS_WANT_WRITE ? 2 : 1;
		} else {
			if (r == GW_TLS_PLAIN_HTTP)
				tls_plain_refusal(c);
			c->dead = 1;
			c->tls_fatal = 1;
		}
	}
	if (!c->dead && !c->tls_hs) {
		if (pending(c) && ((ev & EPOLLOUT) || c->cork || (c->tls_wwr && (ev & EPOLLIN))))
			tls_flush(c);
		c->cork = 0;
		if (!c->dead && c->up && c->up->paused && pending(c) <= (size_t)g->cfg.stream_window / 2) {
			c->up->paused = 0;
			up_events(c->up, EPOLLIN | EPOLLRDHUP);
			up_readable(c->up);
		}
		int rd = (!hs_now && ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) || (c->tls_rww && (ev & EPOLLOUT)))) ||
			 SSL_has_pending(c->ssl);
		/* each round takes plaintext from the record being read (at
		 * most 16 KiB) or the socket: bounded */
		for (int round = 0; !c->dead && round < 64; round++) {
			size_t got = rd && tls_wants_input(c) ? tls_fill(c, ev) : 0;
			if (!c->dead)
				process_input(c);
			rd = SSL_has_pending(c->ssl);
			if (!got || !rd || !tls_wants_input(c))
				break;
		}
	}
	if (!c->dead && !c->tls_hs && c->state == CS_CLOSING && pending(c) == 0)
		c->dead = 1;
	if (c->dead)
		client_close(c);
	else
		c_events(c);
}

static void accept_all(struct worker *w, struct listener *l)
{
	creto_gateway *g = w->g;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (atomic_fetch_add(&g->conns, 1) >= g->cfg.max_connections) {
			atomic_fetch_sub(&g->conns, 1);
			close(fd);
			continue;
		}
		if (!l->is_unix) {
			int one = 1;
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (c == NULL) {
			atomic_fetch_sub(&g->conns, 1);
			close(fd);
			continue;
		}
		c->kind = K_CLIENT;
		c->fd = fd;
		c->w = w;
		c->admin = l->admin;
		c->state = CS_HEAD;
		c->deadline = gw_now_ms() + g->cfg.idle_timeout_ms;
		c->ev = EPOLLIN | EPOLLRDHUP;
		if (l->tls) {
			/* the handshake must end within header_timeout (slowloris) */
			if ((c->ssl = gw_tls_conn(g->tls, fd)) == NULL) {
				free(c);
				atomic_fetch_sub(&g->conns, 1);
				close(fd);
				continue;
			}
			c->tls_hs = 1;
			c->deadline = gw_now_ms() + g->cfg.header_timeout_ms;
		}
		struct epoll_event ev = {.events = c->ev, .data.ptr = c};
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
			gw_tls_close(c->ssl, 0);
			free(c);
			atomic_fetch_sub(&g->conns, 1);
			close(fd);
			continue;
		}
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		w->nconns++;
	}
}

/* One connection's timeouts: slow request heads and bodies (408), idle
 * keep-alive (close), replicas that do not connect (retry), answer (504) or
 * keep streaming. */
static void sweep_one(struct worker *w, struct conn *c, int64_t now)
{
	if (w->stopping && !c->in_req && c->in_len == 0 && pending(c) == 0)
		c->dead = 1;
	else if (c->up && c->up->deadline <= now) {
		struct upc *u = c->up;
		if (u->state == US_CONNECT)
			up_failed(c, 1, "connect timeout");
		else if (u->state != US_BODY) {
			up_release(c, 0);
			fail(c, 504, "upstream_timeout", NULL, NULL, "upstream timeout",
			     "The model server did not answer in time.");
		} else
			up_broken(c, "upstream stream idle timeout");
	} else if (!c->up && c->deadline <= now) {
		if ((c->state == CS_HEAD && c->in_len > 0) || c->state == CS_BODY) {
			if (!c->in_req)
				begin_request(c);
			c->keep_alive = 0;
			c->req.head_len = c->in_len;
			c->req.content_length = -1;
			fail(c, 408, "request_timeout", NULL, NULL, "request not received in time",
			     "The request was not received in time.");
			c->state = CS_CLOSING;
			c->deadline = now + 1000;
		} else if (c->state == CS_CLOSING && pending(c)) {
			c->dead = 1; /* a client that does not read its answer */
		} else if (c->state != CS_PROXY) {
			c->dead = 1;
		}
	}
	if (w->drain_until && now >= w->drain_until)
		c->dead = 1;
	if (c->dead)
		client_close(c);
	else
		c_events(c);
}

/* Timeouts are checked by walking the worker's connections.  Up to
 * SWEEP_BATCH of them, the whole list every SWEEP_MS.  Beyond that the walk
 * is cut in SWEEP_SLICES slices, one every SWEEP_MS / SWEEP_SLICES, so each
 * connection is still seen every SWEEP_MS but no single walk holds up the
 * requests in flight (10,000 idle connections: 0.5 ms per full walk, a
 * visible p99 at concurrency 1).  Returns when the next call is due. */
#define SWEEP_BATCH 512
#define SWEEP_SLICES 10
static int64_t sweep(struct worker *w, int64_t now)
{
	if (w->stopping || (w->nconns <= SWEEP_BATCH && !w->sweep_cycle)) {
		for (struct conn *c = w->conns, *next; c; c = next) {
			next = c->next;
			sweep_one(w, c, now);
		}
		return now + SWEEP_MS;
	}
	if (!w->sweep_cycle) {
		w->sweep_cycle = 1;
		w->sweep_next = w->conns;
	}
	size_t budget = w->nconns / SWEEP_SLICES + 1;
	while (w->sweep_next != NULL && budget-- > 0) {
		struct conn *c = w->sweep_next;
		w->sweep_next = c->next; /* before: sweep_one may close c */
		sweep_one(w, c, now);
	}
	if (w->sweep_next == NULL)
		w->sweep_cycle = 0; /* the next slice starts a new walk from the head */
	return now + SWEEP_MS / SWEEP_SLICES;
}

/* Write the answers deferred by respond(): at the end of each batch of
 * events, or sooner once DEFER_MAX are waiting or the first has waited
 * DEFER_US (a batch of expensive requests, token issuances, must not hold
 * the first answer back for the whole batch). */
#define DEFER_MAX 8
#define DEFER_US 1000
static void defer_flush(struct worker *w)
{
	struct conn *c = w->deferred;
	w->deferred = NULL;
	w->ndeferred = 0;
	while (c != NULL) {
		struct conn *next = c->dnext;
		c->dnext = NULL;
		c->deferred = 0;
		if (c->kind == K_CLIENT && !c->dead) { /* else closed meanwhile */
			if (pending(c) > 0) {
				c_flush(c);
				if (pending(c) == 0)
					out_free(c); /* wiped first when it held an access token */
			}
			c_settle(c);
		}
		c = next;
	}
}

static void defer_check(struct worker *w)
{
	if (w->ndeferred >= DEFER_MAX || (w->ndeferred > 0 && gw_now_us() - w->defer_t0_us >= DEFER_US))
		defer_flush(w);
}

/* epoll_wait's timeout: until the next sweep, at most SWEEP_MS */
static int sweep_wait(int64_t next_sweep)
{
	int64_t to = next_sweep - gw_now_ms();
	return to < 0 ? 0 : to > SWEEP_MS ? SWEEP_MS : (int)to;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	creto_gateway *g = w->g;
	struct epoll_event evs[128];
	int64_t next_sweep = gw_now_ms() + SWEEP_MS, last_event_us = 0;
	for (;;) {
		/* busy_poll_us (docs/gateway.md "Busy polling"): for that long
		 * after the last event, poll without sleeping, so an answer that
		 * comes back soon costs no wake-up (in a VM, an inter-processor
		 * interrupt and a halted vCPU's exit); then sleep as usual */
		int64_t spin = g->cfg.busy_poll_us;
		int n;
		if (spin > 0 && gw_now_us() - last_event_us < spin)
			n = epoll_wait(w->ep, evs, 128, 0);
		else
			n = epoll_wait(w->ep, evs, 128, sweep_wait(next_sweep));
		if (n > 0 && spin > 0)
			last_event_us = gw_now_us();
		for (int i = 0; i < n; i++) {
			int kind = *(int *)evs[i].data.ptr;
			if (kind == 0)
				continue; /* closed earlier in this batch */
			if (kind == K_CLIENT)
				client_event(evs[i].data.ptr, evs[i].events);
			else if (kind == K_UP) {
				struct upc *u = evs[i].data.ptr;
				struct conn *c = u->c;
				up_event(u, evs[i].events);
				if (c && c->dead)
					client_close(c);
				else if (c)
					client_event(c, 0);
			} else if (kind == K_LISTEN && !w->stopping) {
				accept_all(w, evs[i].data.ptr);
			} else if (kind == K_STOP && !w->stopping) {
				w->stopping = 1;
				w->drain_until = gw_now_ms() + (g->cfg.drain_ms ? g->cfg.drain_ms : 1);
				for (size_t l = 0; l < g->nlis; l++) {
					(void)epoll_ctl(w->ep, EPOLL_CTL_DEL, g->lis[l].fd, NULL);
					if (w->own[l].fd > 0)
						(void)epoll_ctl(w->ep, EPOLL_CTL_DEL, w->own[l].fd, NULL);
				}
				if (g->has_admin)
					(void)epoll_ctl(w->ep, EPOLL_CTL_DEL, g->admin.fd, NULL);
				(void)epoll_ctl(w->ep, EPOLL_CTL_DEL, g->stopfd, NULL);
			}
			defer_check(w);
		}
		int64_t now = gw_now_ms();
		if (now >= next_sweep || w->stopping)
			next_sweep = sweep(w, now);
		defer_flush(w);
		bury_all(w);
		if (w->stopping && w->conns == NULL)
			break;
	}
	/* pooled connections */
	for (size_t i = 0; i < g->nreps; i++)
		while (w->pool[i].n > 0)
			pool_remove(w, w->pool[i].idle[w->pool[i].n - 1]);
	bury_all(w);
	return NULL;
}

/* ---- health thread ---- */

static int same_fixed(const creto_gateway_config *a, const creto_gateway_config *b)
{
	if (a->nlisten != b->nlisten || a->nmodel != b->nmodel || a->workers != b->workers ||
	    strcmp(a->nhi_db, b->nhi_db) || strcmp(a->jwks, b->jwks) || strcmp(a->key_file, b->key_file) ||
	    a->token_endpoint != b->token_endpoint || strcmp(a->issuer_key, b->issuer_key) ||
	    strcmp(a->issuer_url, b->issuer_url) || strcmp(a->token_url, b->token_url) ||
	    strcmp(a->replay_state, b->replay_state) || a->token_ttl != b->token_ttl ||
	    a->replay_capacity != b->replay_capacity || a->token_rate_agent != b->token_rate_agent ||
	    a->token_rate_source != b->token_rate_source || a->token_failure_weight != b->token_failure_weight ||
	    (a->tls_cert[0] != '\0') != (b->tls_cert[0] != '\0'))
		return 0;
	for (size_t i = 0; i < a->nlisten; i++)
		if (strcmp(a->listen[i].text, b->listen[i].text))
			return 0;
	for (size_t i = 0; i < a->nmodel; i++) {
		if (strcmp(a->model[i].name, b->model[i].name) || a->model[i].nrep != b->model[i].nrep)
			return 0;
		for (size_t j = 0; j < a->model[i].nrep; j++)
			if (strcmp(a->model[i].rep[j].url, b->model[i].rep[j].url))
				return 0;
	}
	return 1;
}

static void reload_now(creto_gateway *g, int64_t now)
{
	creto_err e;
	creto_err_clear(&e);
	creto_gateway_config *nc = NULL;
	if (creto_gateway_config_load(g->opts.config_path, &nc, &e) != CRETO_OK) {
		glog(g, "level=error event=reload_refused msg=\"%s\" (the old settings stay)", e.msg);
		return;
	}
	/* free what retired long enough ago; keep a slot for the one replaced now */
	int slot = -1;
	for (int i = 0; i < 8; i++) {
		if (g->retired[i] && now - g->retired_at[i] >= RETIRE_MS) {
			creto_gateway_config_free(g->retired[i]);
			g->retired[i] = NULL;
		}
		if (g->retired[i] == NULL && slot < 0)
			slot = i;
	}
	if (slot < 0) {
		creto_gateway_config_free(nc);
		glog(g, "level=error event=reload_refused msg=\"reloads too frequent; try again in 5 s\"");
		return;
	}
	/* TLS: a new context from the files for new connections; a bad pair
	 * refuses the whole reload (turning TLS on or off needs a restart) */
	if (g->tls != NULL && nc->tls_cert[0]) {
		if (gw_tls_reload(g->tls, nc->tls_cert, nc->tls_key, nc->tls_min, creto_clock_now(g->opts.clock), &e) !=
		    CRETO_OK) {
			glog(g, "level=error event=reload_refused msg=\"%s\" (the old settings stay)", e.msg);
			creto_gateway_config_free(nc);
			return;
		}
		glog(g, "level=info event=tls_reloaded cert=%s min_version=%s", nc->tls_cert,
		     nc->tls_min == 13 ? "1.3" : "1.2");
	}
	if (!same_fixed(&g->cfg, nc))
		glog(g, "level=warn event=reload_partial msg=\"listeners, models, store, JWK Set, key file, "
			"workers, the token endpoint and TLS on or off change only on restart\"");
	g->retired[slot] = atomic_exchange(&g->live, nc);
	g->retired_at[slot] = now;
	creto_nhi_resolver_flush(g->resolver);
	glog(g, "level=info event=reloaded agents_in_policy=%zu", nc->nagents);
}

static void *health_main(void *arg)
{
	creto_gateway *g = arg;
	int64_t next_refresh = 0;
	char *buf = malloc(1 << 20);
	if (buf == NULL)
		return NULL;
	while (!atomic_load(&g->stop)) {
		int64_t now = gw_now_ms();
		if (atomic_exchange(&g->reload, 0) && g->opts.config_path != NULL)
			reload_now(g, now);
		if (now >= next_refresh) {
			creto_err e;
			creto_err_clear(&e);
			if (creto_nhi_store_refresh(g->store, &e) != CRETO_OK)
				glog(g, "level=error event=nhi_refresh msg=\"%s\"", e.msg);
			next_refresh = now + 1000;
			if (g->oauth)
				creto_nhi_oauth_flush(g->oauth, creto_clock_now(g->opts.clock));
			refusals_flush(g, 0);
		}
		for (size_t i = 0; i < g->nreps && !atomic_load(&g->stop); i++) {
			gw_replica *r = &g->reps[i];
			if (now < r->next_check)
				continue;
			r->next_check = now + g->cfg.health_interval_ms;
			int st = 0;
			size_t bl = 0;
			int64_t to = g->cfg.health_interval_ms < 2000 ? g->cfg.health_interval_ms : 2000;
			int ok = gw_http_get(r->cfg, "/health", to, &st, buf, 4096, &bl) == 0 && st == 200;
			int was = atomic_exchange(&r->healthy, ok);
			if (ok && atomic_load(&r->ejected_until) > gw_now_ms() &&
			    atomic_load(&r->ejected_until) - gw_now_ms() > g->cfg.eject_ms / 2) {
				/* readmitted early only after half the ejection time */
			}
			if (was != ok)
				glog(g, "level=%s event=replica_%s replica=%s", ok ? "info" : "warn",
				     ok ? "up" : "down", r->cfg->url);
			if (ok && (g->cfg.saturated_waiting || g->cfg.saturated_kv_pct)) {
				int sat = 0;
				if (gw_http_get(r->cfg, "/metrics", to, &st, buf, 1 << 20, &bl) == 0 && st == 200) {
					double wq = gw_metric(buf, "vllm:num_requests_waiting", 0);
					double kv = gw_metric(buf, "vllm:kv_cache_usage_perc", 1);
					if (kv < 0)
						kv = gw_metric(buf, "vllm:gpu_cache_usage_perc", 1);
					sat = (g->cfg.saturated_waiting && wq >= (double)g->cfg.saturated_waiting) ||
					      (g->cfg.saturated_kv_pct && kv * 100.0 >= (double)g->cfg.saturated_kv_pct);
				}
				if (atomic_exchange(&r->saturated, sat) != sat)
					glog(g, "level=info event=replica_%s replica=%s", sat ? "saturated" : "unsaturated",
					     r->cfg->url);
			}
		}
		struct timespec ts = {0, 50 * 1000000};
		nanosleep(&ts, NULL);
	}
	free(buf);
	return NULL;
}

/* ---- lifecycle ---- */

static int bind_listener(creto_gateway *g, const gw_listen *l, struct listener *out, creto_err *e)
{
	out->kind = K_LISTEN;
	out->is_unix = l->is_unix;
	int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return creto_err_errno(e, errno, "listen %s: socket", l->text);
	int one = 1;
	if (!l->is_unix) {
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		if (l->addr.ss_family == AF_INET6)
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	} else {
		/* a stale socket file from a previous run is replaced; anything
		 * else at that path is refused */
		const struct sockaddr_un *un = (const struct sockaddr_un *)&l->addr;
		struct stat st;
		if (lstat(un->sun_path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode)) {
				close(fd);
				return creto_err_set(e, CRETO_EUSAGE, "listen %s: exists and is not a socket", l->text);
			}
			int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			int live = probe >= 0 && connect(probe, (const struct sockaddr *)un, l->alen) == 0;
			if (probe >= 0)
				close(probe);
			if (live) {
				close(fd);
				return creto_err_set(e, CRETO_EOP, "listen %s: another server is listening there",
						     l->text);
			}
			(void)unlink(un->sun_path);
		}
	}
	if (bind(fd, (const struct sockaddr *)&l->addr, l->alen) != 0 || listen(fd, 1024) != 0) {
		int err = errno;
		close(fd);
		return creto_err_errno(e, err, "listen %s", l->text);
	}
	if (l->is_unix) {
		(void)chmod(((const struct sockaddr_un *)&l->addr)->sun_path, 0660);
		snprintf(out->text, sizeof(out->text), "%s", l->text);
	} else {
		struct sockaddr_storage a;
		socklen_t al = sizeof(a);
		char ip[INET6_ADDRSTRLEN];
		(void)getsockname(fd, (struct sockaddr *)&a, &al);
		if (a.ss_family == AF_INET6) {
			struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&a;
			inet_ntop(AF_INET6, &a6->sin6_addr, ip, sizeof(ip));
			snprintf(out->text, sizeof(out->text), "[%s]:%u", ip, ntohs(a6->sin6_port));
		} else {
			struct sockaddr_in *a4 = (struct sockaddr_in *)&a;
			inet_ntop(AF_INET, &a4->sin_addr, ip, sizeof(ip));
			snprintf(out->text, sizeof(out->text), "%s:%u", ip, ntohs(a4->sin_port));
		}
	}
	out->fd = fd;
	(void)g;
	return CRETO_OK;
}

/* The token endpoint: the issuer key (which must be in the JWK Set the
 * gateway checks tokens with), the replay cache, the endpoint, and its two
 * documents.  After the listeners are bound: the default issuer URL names
 * the first TCP listener's real port. */
static int token_audit(void *ctx, const creto_event *ev);
static int token_setup(creto_gateway *g, creto_err *e)
{
	const creto_gateway_config *c = &g->cfg;
	creto_keys_opts ko = {.module_path = c->issuer_module[0] ? c->issuer_module : NULL,
			      .pin_file = c->issuer_pin_file[0] ? c->issuer_pin_file : NULL};
	int rc = g->opts.issuer != NULL ? CRETO_OK /* the caller's, borrowed (not freed here) */
					: creto_keys_open_signer(c->issuer_key, &ko, &g->issuer, e);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "issuer_key");
	if (g->opts.issuer != NULL)
		g->issuer = g->opts.issuer;
	const creto_pubkey *pk = creto_signer_pubkey(g->issuer);
	const creto_pubkey *in = creto_jwks_find(g->jwks, creto_pubkey_id(pk));
	if (in == NULL || !creto_pubkey_equal(in, pk))
		return creto_err_set(e, CRETO_EUSAGE,
				     "issuer_key %s is not in the JWK Set %s: the tokens it signs would be refused",
				     creto_pubkey_id(pk), c->jwks);
	if (c->issuer_url[0]) {
		snprintf(g->issuer_url, sizeof(g->issuer_url), "%s", c->issuer_url);
	} else {
		const char *hp = NULL;
		for (size_t i = 0; i < c->nlisten && hp == NULL; i++)
			if (!c->listen[i].is_unix)
				hp = g->nlis > i ? g->lis[i].text : c->listen[i].text;
		snprintf(g->issuer_url, sizeof(g->issuer_url), "%s://%s", g->tls ? "https" : "http",
			 hp ? hp : "localhost");
	}
	int64_t now = creto_clock_now(g->opts.clock);
	/* --check must not take the state file's lock from a running gateway */
	rc = creto_nhi_replay_open(g->opts.check_only || !c->replay_state[0] ? NULL : c->replay_state,
				   (size_t)c->replay_capacity, now, &g->replay, e);
	if (rc != CRETO_OK)
		return creto_err_ctx(e, "replay_state");
	creto_nhi_oauth_opts oo = {
		.issuer_url = g->issuer_url,
		.token_endpoint = c->token_url[0] ? c->token_url : NULL,
		.audience = c->audience,
		.token_ttl = c->token_ttl,
		.rate_agent = (int)c->token_rate_agent,
		.rate_source = (int)c->token_rate_source,
		.failure_weight = (int)c->token_failure_weight,
		.sink = {token_audit, g},
	};
	if ((rc = creto_nhi_oauth_new(g->store, g->issuer, g->replay, &oo, &g->oauth, e)) != CRETO_OK ||
	    (rc = creto_nhi_oauth_metadata(g->oauth, &g->as_meta, e)) != CRETO_OK ||
	    (rc = creto_nhi_oauth_jwks(g->oauth, &g->as_jwks, e)) != CRETO_OK)
		return creto_err_ctx(e, "token endpoint");
	int64_t nb = creto_nhi_replay_not_before(g->replay);
	if (!g->opts.check_only) {
		glog(g, "level=info event=token_endpoint issuer_url=%s kid=%s ttl=%lld replay_state=%s", g->issuer_url,
		     creto_pubkey_id(pk), (long long)c->token_ttl, c->replay_state[0] ? c->replay_state : "memory");
		if (nb > 0)
			glog(g, "level=warn event=replay_warmup msg=\"no saved replay state: assertions issued before "
				"%lld are refused\"",
			     (long long)nb);
	}
	return CRETO_OK;
}

/* The endpoint's audit sink: the gateway's, with the same fail-closed
 * tracking as request records. */
static int token_audit(void *ctx, const creto_event *ev)
{
	creto_gateway *g = ctx;
	int rc = creto_event_emit(&g->opts.audit, ev);
	if (rc != 0 && !atomic_exchange(&g->audit_failed, 1))
		glog(g, "level=error event=audit_failed msg=\"audit records cannot be written: refusing requests\"");
	return rc;
}

int creto_gateway_new(const creto_gateway_config *cfg, const creto_gateway_opts *o, creto_gateway **out,
		      creto_err *e)
{
	*out = NULL;
	creto_gateway *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return creto_err_set(e, CRETO_EOP, "out of memory");
	g->stopfd = -1;
	g->cfg = *cfg;
	g->cfg.agents = NULL;
	g->cfg.nagents = 0;
	if (cfg->nagents) {
		g->cfg.agents = malloc(cfg->nagents * sizeof(*cfg->agents));
		if (g->cfg.agents == NULL) {
			free(g);
			return creto_err_set(e, CRETO_EOP, "out of memory");
		}
		memcpy(g->cfg.agents, cfg->agents, cfg->nagents * sizeof(*cfg->agents));
		g->cfg.nagents = cfg->nagents;
	}
	if (o)
		g->opts = *o;
	int rc;
	{
		creto_gateway_config *live = malloc(sizeof(*live));
		if (live == NULL) {
			free(g->cfg.agents);
			free(g);
			return creto_err_set(e, CRETO_EOP, "out of memory");
		}
		*live = *cfg;
		live->agents = NULL;
		if (cfg->nagents && (live->agents = malloc(cfg->nagents * sizeof(*cfg->agents))) == NULL) {
			free(live);
			free(g->cfg.agents);
			free(g);
			return creto_err_set(e, CRETO_EOP, "out of memory");
		}
		if (cfg->nagents)
			memcpy(live->agents, cfg->agents, cfg->nagents * sizeof(*cfg->agents));
		atomic_store(&g->live, live);
	}
	(void)RAND_bytes((unsigned char *)&g->boot, sizeof(g->boot));
	g->start_epoch = creto_clock_now(g->opts.clock);
	if ((rc = creto_nhi_store_open(g->cfg.nhi_db, 1, &g->store, e)) != CRETO_OK ||
	    (rc = creto_jwks_load(g->cfg.jwks, &g->jwks, e)) != CRETO_OK)
		goto fail;
	creto_nhi_resolver_opts ro = {
		.issuer = g->cfg.issuer[0] ? g->cfg.issuer : NULL,
		.audience = g->cfg.audience,
		.cache_entries = (size_t)g->cfg.token_cache,
	};
	if ((rc = creto_nhi_resolver_new(g->store, g->jwks, &ro, &g->resolver, e)) != CRETO_OK)
		goto fail;
	if (g->cfg.key_file[0]) {
		rc = creto_file_read_fixed(g->cfg.key_file, g->key, sizeof(g->key), &g->key_len, e);
		if (rc == CRETO_OK) {
			while (g->key_len && (g->key[g->key_len - 1] == '\n' || g->key[g->key_len - 1] == '\r'))
				g->key_len--;
			for (size_t i = 0; i < g->key_len; i++)
				if (g->key[i] <= ' ' || g->key[i] > '~')
					rc = creto_err_set(e, CRETO_EUSAGE, "upstream key file %s: not one printable token",
							   g->cfg.key_file);
			if (g->key_len == 0)
				rc = creto_err_set(e, CRETO_EUSAGE, "upstream key file %s: empty", g->cfg.key_file);
		}
		if (rc != CRETO_OK)
			goto fail;
	}
	if ((g->lim = gw_limiter_new()) == NULL ||
	    (g->refusals = gw_refusals_new(g->cfg.refusal_interval_ms * 1000)) == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < g->cfg.nmodel; i++)
		g->nreps += g->cfg.model[i].nrep;
	g->reps = calloc(g->nreps ? g->nreps : 1, sizeof(*g->reps));
	if (g->reps == NULL) {
		rc = creto_err_set(e, CRETO_EOP, "out of memory");
		goto fail;
	}
	size_t k = 0;
	for (size_t i = 0; i < g->cfg.nmodel; i++) {
		gw_model *m = &g->models[i];
		m->cfg = &g->cfg.model[i];
		m->nrep = m->cfg->nrep;
		for (size_t j = 0; j < m->nrep; j++) {
			gw_replica *r = &g->reps[k];
			r->cfg = &m->cfg->rep[j];
			r->index = (int)k;
			atomic_store(&r->healthy, 1); /* until the first check says otherwise */
			m->rep[j] = r;
			k++;
		}
	}
	/* TLS: the files checked (also by --check) before anything is bound */
	if (g->cfg.tls_cert[0] &&
	    (rc = gw_tls_new(g->cfg.tls_cert, g->cfg.tls_key, g->cfg.tls_min, creto_clock_now(g->opts.clock), &g->tls,
			     e)) != CRETO_OK)
		goto fail;
	for (size_t i = 0; i < g->cfg.nlisten && !g->opts.check_only; i++) {
		if ((rc = bind_listener(g, &g->cfg.listen[i], &g->lis[i], e)) != CRETO_OK)
			goto fail;
		g->lis[i].tls = g->tls != NULL && !g->lis[i].is_unix;
		g->nlis++;
	}
	if (g->cfg.has_admin && !g->opts.check_only) {
		if ((rc = bind_listener(g, &g->cfg.admin, &g->admin, e)) != CRETO_OK)
			goto fail;
		g->admin.admin = 1;
		g->has_admin = 1;
		if ((g->metrics = gw_metrics_new(g->cfg.nmodel)) == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "out of memory");
			goto fail;
		}
	}
	if (g->cfg.token_endpoint && (rc = token_setup(g, e)) != CRETO_OK)
		goto fail;
	for (size_t i = 0; i < g->cfg.nmodel; i++)
		g->model_names[i] = g->cfg.model[i].name;
	g->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (g->stopfd < 0) {
		rc = creto_err_errno(e, errno, "eventfd");
		goto fail;
	}
	*out = g;
	return CRETO_OK;
fail:
	creto_gateway_free(g);
	return creto_err_ctx(e, "gateway");
}

size_t creto_gateway_listener_count(const creto_gateway *g)
{
	return g->nlis;
}

const char *creto_gateway_listener(const creto_gateway *g, size_t i)
{
	return i < g->nlis ? g->lis[i].text : NULL;
}

void creto_gateway_reload(creto_gateway *g)
{
	atomic_store(&g->reload, 1);
}

void creto_gateway_stop(creto_gateway *g)
{
	uint64_t one = 1;
	atomic_store(&g->stop, 1);
	if (g->stopfd >= 0)
		(void)!write(g->stopfd, &one, sizeof(one));
}

int creto_gateway_run(creto_gateway *g, creto_err *e)
{
	static struct {
		int kind;
	} stop_tag = {K_STOP};
	int nw = g->cfg.workers;
	g->w = calloc((size_t)nw, sizeof(*g->w));
	if (g->w == NULL)
		return creto_err_set(e, CRETO_EOP, "gateway: out of memory");
	int rc = CRETO_OK;
	int started = 0;
	for (int i = 0; i < nw; i++) {
		struct worker *w = &g->w[i];
		w->g = g;
		w->ep = epoll_create1(EPOLL_CLOEXEC);
		w->pool = calloc(g->nreps ? g->nreps : 1, sizeof(*w->pool));
		(void)RAND_bytes((unsigned char *)&w->rng, sizeof(w->rng));
		if (w->ep < 0 || w->pool == NULL) {
			rc = creto_err_set(e, CRETO_EOP, "gateway: worker setup failed");
			break;
		}
		for (size_t r = 0; r < g->nreps && rc == CRETO_OK; r++)
			if ((w->pool[r].idle = calloc((size_t)g->cfg.pool_idle + 1, sizeof(struct upc *))) == NULL)
				rc = creto_err_set(e, CRETO_EOP, "gateway: out of memory");
		for (size_t l = 0; l < g->nlis && rc == CRETO_OK; l++) {
			struct listener *lp = &g->lis[l];
			if (!lp->is_unix && i > 0) {
				/* a socket of its own on the same address */
				struct sockaddr_storage a;
				socklen_t al = sizeof(a);
				int one = 1, fd = -1;
				if (getsockname(lp->fd, (struct sockaddr *)&a, &al) == 0)
					fd = socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
				if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
						setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
						(a.ss_family == AF_INET6 &&
						 setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
						bind(fd, (struct sockaddr *)&a, al) != 0 || listen(fd, 1024) != 0)) {
					close(fd);
					fd = -1;
				}
				if (fd >= 0) {
					w->own[l] = *lp;
					w->own[l].fd = fd;
					lp = &w->own[l];
				}
			}
			struct epoll_event ev = {.events = EPOLLIN | (lp == &g->lis[l] ? EPOLLEXCLUSIVE : 0),
						 .data.ptr = lp};
			if (epoll_ctl(w->ep, EPOLL_CTL_ADD, lp->fd, &ev) != 0)
				rc = creto_err_errno(e, errno, "gateway: epoll");
		}
		if (rc == CRETO_OK && i == 0 && g->has_admin) {
			struct epoll_event aev = {.events = EPOLLIN, .data.ptr = &g->admin};
			if (epoll_ctl(w->ep, EPOLL_CTL_ADD, g->admin.fd, &aev) != 0)
				rc = creto_err_errno(e, errno, "gateway: epoll");
		}
		struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &stop_tag};
		if (rc == CRETO_OK && epoll_ctl(w->ep, EPOLL_CTL_ADD, g->stopfd, &sev) != 0)
			rc = creto_err_errno(e, errno, "gateway: epoll");
		if (rc != CRETO_OK)
			break;
	}
	if (rc == CRETO_OK && pthread_create(&g->health, NULL, health_main, g) == 0)
		g->health_started = 1;
	for (int i = 0; rc == CRETO_OK && i < nw; i++) {
		if (pthread_create(&g->w[i].th, NULL, worker_main, &g->w[i]) != 0) {
			rc = creto_err_set(e, CRETO_EOP, "gateway: cannot start worker %d", i);
			break;
		}
		started++;
	}
	g->nw = nw;
	if (rc == CRETO_OK) {
		for (size_t l = 0; l < g->nlis; l++)
			glog(g, "level=info event=listening addr=%s workers=%d tls=%s", g->lis[l].text, nw,
			     g->lis[l].tls ? (g->cfg.tls_min == 13 ? "1.3" : "1.2+") : "no");
		if (g->has_admin)
			glog(g, "level=info event=admin_listening addr=%s", g->admin.text);
	}
	if (rc != CRETO_OK)
		creto_gateway_stop(g);
	for (int i = 0; i < started; i++)
		pthread_join(g->w[i].th, NULL);
	atomic_store(&g->stop, 1);
	if (g->health_started)
		pthread_join(g->health, NULL);
	g->health_started = 0;
	refusals_flush(g, 1); /* pending refusal counts, before the caller closes the log */
	glog(g, "level=info event=stopped");
	return rc;
}

void creto_gateway_free(creto_gateway *g)
{
	if (g == NULL)
		return;
	if (g->w) {
		for (int i = 0; i < g->cfg.workers; i++) {
			if (g->w[i].ep > 0)
				close(g->w[i].ep);
			for (size_t l = 0; l < GW_LISTEN_MAX; l++)
				if (g->w[i].own[l].fd > 0)
					close(g->w[i].own[l].fd);
			if (g->w[i].pool)
				for (size_t r = 0; r < g->nreps; r++)
					free(g->w[i].pool[r].idle);
			free(g->w[i].pool);
		}
		free(g->w);
	}
	for (size_t i = 0; i < g->nlis; i++) {
		close(g->lis[i].fd);
		if (g->lis[i].is_unix)
			(void)unlink(((const struct sockaddr_un *)&g->cfg.listen[i].addr)->sun_path);
	}
	if (g->stopfd >= 0)
		close(g->stopfd);
	if (g->has_admin) {
		close(g->admin.fd);
		if (g->admin.is_unix)
			(void)unlink(((const struct sockaddr_un *)&g->cfg.admin.addr)->sun_path);
	}
	gw_metrics_free(g->metrics);
	creto_gateway_config_free(atomic_load(&g->live));
	for (int i = 0; i < 8; i++)
		creto_gateway_config_free(g->retired[i]);
	if (g->oauth != NULL || g->replay != NULL) {
		/* pending refusal counts to the audit sink, then the replay
		 * cache saved for the next start */
		int64_t now = creto_clock_now(g->opts.clock);
		creto_nhi_oauth_free(g->oauth, now);
		creto_err e;
		creto_err_clear(&e);
		if (creto_nhi_replay_close(g->replay, now, &e) != CRETO_OK)
			glog(g, "level=error event=replay_save msg=\"%s\"", e.msg);
	}
	free(g->as_meta);
	free(g->as_jwks);
	if (g->issuer != g->opts.issuer)
		creto_signer_free(g->issuer);
	creto_nhi_resolver_free(g->resolver);
	creto_jwks_free(g->jwks);
	creto_nhi_store_free(g->store);
	if (g->refusals != NULL) {
		refusals_flush(g, 1);
		gw_refusals_free(g->refusals);
	}
	gw_limiter_free(g->lim);
	gw_tls_free(g->tls);
	free(g->reps);
	free(g->cfg.agents);
	OPENSSL_cleanse(g->key, sizeof(g->key));
	free(g);
}
