/*
 * creto/gateway.h - the inference gateway (docs/gateway.md): agents reach
 * the local vLLM replicas only through creto, each with its own identity.
 *
 * An HTTP/1.1 server (TCP and Unix sockets, epoll, a few worker threads)
 * that authenticates every request with the agent's NHI token, checks the
 * model against the agent's scopes on a strictly parsed body, applies the
 * agent's limits, forwards to a healthy replica with vLLM's key injected,
 * streams the answer back event by event and reports one audit record per
 * request through a creto_event_sink.  Library code: never prints (log
 * lines go to a callback), never exits.
 */
#ifndef CRETO_GATEWAY_H
#define CRETO_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include "creto/clock.h"
#include "creto/error.h"
#include "creto/event.h"

typedef struct creto_gateway_config creto_gateway_config;
typedef struct creto_gateway creto_gateway;

/* Parse the gateway's sections of a creto config file (docs/config.md) and
 * the policy file it names (docs/gateway.md "Policy").  CRETO_EUSAGE with
 * "line N: ..." (or the policy file's reason) on any error. */
int creto_gateway_config_load(const char *path, creto_gateway_config **out, creto_err *e) CRETO_WUR;
int creto_gateway_config_parse(const char *text, size_t len, creto_gateway_config **out,
			       creto_err *e) CRETO_WUR;
/* Parse a policy file's text into cfg (replacing its policy). */
int creto_gateway_policy_parse(creto_gateway_config *cfg, const char *text, size_t len,
			       creto_err *e) CRETO_WUR;
void creto_gateway_config_free(creto_gateway_config *c);

typedef struct creto_gateway_opts {
	const creto_clock *clock;        /* token times; NULL: the system clock */
	creto_event_sink audit;          /* one record per request, component "gateway" */
	/* Whether the audit log can take records; 0 stops admission (503).
	 * NULL: a sink whose fn fails is the only signal. */
	int (*audit_healthy)(void *ctx);
	void *audit_healthy_ctx;
	/* One line per operational event (no newline).  NULL: silent. */
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
	/* Open and check everything but bind no listener (`--check`). */
	int check_only;
	/* The config file, re-read on creto_gateway_reload; NULL: no reload. */
	const char *config_path;
	/* The token endpoint's issuer key, already open, used in place of
	 * opening issuer_key (borrowed: it must outlive the gateway; `creto
	 * serve` opens it through its HSM failover endpoints).  NULL: the
	 * gateway opens issuer_key itself. */
	struct creto_signer *issuer;
	/* More exposition text for GET /metrics on the admin listener (`creto
	 * serve`'s HSM gauges): a malloc'ed *out of *len bytes, 0 on success.
	 * Called from a worker thread.  NULL: none. */
	int (*metrics_extra)(void *ctx, char **out, size_t *len);
	void *metrics_extra_ctx;
} creto_gateway_opts;

/* Open the NHI store and JWK Set, read the upstream key file and bind every
 * listener (port 0 picks a free port).  cfg is copied where needed and may
 * be freed after.  *out owned by the caller. */
int creto_gateway_new(const creto_gateway_config *cfg, const creto_gateway_opts *o,
		      creto_gateway **out, creto_err *e) CRETO_WUR;

/* Number of listeners, and listener i as "127.0.0.1:8080", "[::1]:8080" or
 * "unix:/path" with the port actually bound. */
size_t creto_gateway_listener_count(const creto_gateway *g);
const char *creto_gateway_listener(const creto_gateway *g, size_t i);

/* Serve until creto_gateway_stop; then stop accepting, let in-flight
 * requests finish for up to drain_ms (config), close everything. */
int creto_gateway_run(creto_gateway *g, creto_err *e) CRETO_WUR;

/* Ask for the config file (opts.config_path) and the policy file it names
 * to be read again (SIGHUP): the limits and the policy change for new
 * requests without dropping a connection; a bad file is refused (logged)
 * and the old settings kept; settings that need a restart (listeners,
 * models, store, keys) are kept and the log says so.  Async-signal-safe. */
void creto_gateway_reload(creto_gateway *g);

/* Ask run to return.  Async-signal-safe (writes an eventfd). */
void creto_gateway_stop(creto_gateway *g);

/* Free (after run returned, or without running).  NULL ok. */
void creto_gateway_free(creto_gateway *g);

#endif
