/*
 * internal.h - what the gateway's files share: the parsed configuration and
 * policy, replicas and models, per-agent limits.  Not a public interface.
 */
#ifndef CRETO_GATEWAY_INTERNAL_H
#define CRETO_GATEWAY_INTERNAL_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "creto/gateway.h"
#include "creto/nhi.h"

#define GW_LISTEN_MAX 8
#define GW_MODELS_MAX 64
#define GW_REPLICAS_MAX 16     /* per model */
#define GW_MODEL_NAME_MAX 64
#define GW_URL_MAX 256
#define GW_AGENTS_MAX 4096     /* agents named in the policy file */
#define GW_POLICY_MAX (1u << 20)

/* Endpoints, as bits in a policy's allow mask. */
enum {
	GW_EP_CHAT = 1 << 0,
	GW_EP_COMPLETIONS = 1 << 1,
	GW_EP_EMBEDDINGS = 1 << 2,
	GW_EP_MODELS = 1 << 3,
	GW_EP_ALL = 0xf,
};

/* Limits of one agent; 0 = unlimited.  -1 in a parsed policy entry means
 * "not given" (inherit the default). */
typedef struct gw_limits {
	int64_t concurrency;
	int64_t requests_per_minute;
	int64_t tokens_per_minute;
	int64_t max_tokens;        /* cap on max_tokens / max_completion_tokens */
	int64_t max_request_bytes; /* body bytes */
	int64_t endpoints;         /* GW_EP_* mask */
} gw_limits;

typedef struct gw_policy_agent {
	char id[CRETO_NHI_ID_MAX + 1];
	gw_limits lim;
} gw_policy_agent;

typedef struct gw_listen {
	char text[GW_URL_MAX];        /* as configured */
	int is_unix;
	struct sockaddr_storage addr;
	socklen_t alen;
} gw_listen;

typedef struct gw_replica_cfg {
	char url[GW_URL_MAX];
	char hostport[GW_URL_MAX];     /* Host header */
	struct sockaddr_storage addr;
	socklen_t alen;
} gw_replica_cfg;

typedef struct gw_model_cfg {
	char name[GW_MODEL_NAME_MAX + 1];
	size_t nrep;
	gw_replica_cfg rep[GW_REPLICAS_MAX];
} gw_model_cfg;

struct creto_gateway_config {
	gw_listen listen[GW_LISTEN_MAX];
	size_t nlisten;
	gw_listen admin;              /* admin_listen: GET /metrics */
	int has_admin;
	int workers;
	char nhi_db[4096];
	char jwks[4096];
	char nhi_store_fb[4096];      /* [nhi] store and jwks of the same file: used when */
	char nhi_jwks_fb[4096];       /* [gateway] nhi_db / jwks are absent */
	char issuer[CRETO_NHI_ISSUER_MAX + 1];
	char audience[CRETO_NHI_ISSUER_MAX + 1];
	int64_t token_cache;
	char policy_path[4096];
	int64_t body_max, head_max, headers_max, line_max;
	int64_t header_timeout_ms, body_timeout_ms, idle_timeout_ms, drain_ms;
	int64_t busy_poll_us; /* 0: off; else spin this long after the last event */
	int64_t max_connections;
	int prompt_hash;
	int access_log;
	int64_t refusal_interval_ms;  /* 401 token refusals: one audit record per key per interval */
	/* the token endpoint (docs/gateway.md "Token endpoint") */
	int token_endpoint;
	char issuer_key[4096];        /* key file or pkcs11: URI */
	char issuer_module[4096];     /* PKCS#11 module when the URI names none */
	char issuer_pin_file[4096];
	char issuer_url[GW_URL_MAX];  /* "": http://<first TCP listener> */
	char token_url[GW_URL_MAX];   /* "": issuer_url + /oauth/token */
	int64_t token_ttl;            /* seconds */
	char replay_state[4096];      /* "": in memory */
	int64_t replay_capacity;
	int64_t token_rate_agent, token_rate_source, token_failure_weight;
	/* TLS on the TCP agent listeners (docs/gateway.md "TLS"); "": plain */
	char tls_cert[4096];          /* PEM chain, leaf first */
	char tls_key[4096];           /* PEM private key, mode 0600 */
	int tls_min;                  /* 12 or 13 */
	int tls_min_set;
	/* [upstream] */
	gw_model_cfg model[GW_MODELS_MAX];
	size_t nmodel;
	char key_file[4096];
	int64_t connect_timeout_ms, response_timeout_ms, stream_idle_ms;
	int64_t health_interval_ms, eject_ms, max_fails;
	int64_t stream_window;
	int64_t pool_idle;            /* idle connections kept per replica per worker */
	int inject_usage;
	int64_t saturated_waiting;    /* vllm:num_requests_waiting at or above: avoid (0 = off) */
	int64_t saturated_kv_pct;     /* kv cache usage percent at or above: avoid (0 = off) */
	int affinity;                 /* prefix affinity on */
	int64_t affinity_bytes;
	/* [limits] defaults and the policy file */
	gw_limits deflt;
	int64_t default_max_tokens;   /* reservation when a request names none */
	gw_policy_agent *agents;
	size_t nagents;
};

/* Limits for agent id: the policy entry merged over the defaults. */
void gw_config_limits(const creto_gateway_config *c, const char *id, gw_limits *out);
/* Parse "host:port", "[v6]:port" or "unix:/path" (listen) and
 * "http://host:port" (replica; literal IPs only: an air gap has no DNS to
 * trust).  0 or -1. */
int gw_parse_listen(const char *s, gw_listen *out);
int gw_parse_replica(const char *s, gw_replica_cfg *out);

#endif
