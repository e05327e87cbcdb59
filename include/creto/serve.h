/*
 * creto/serve.h - `creto serve`, the enclave's one daemon (docs/serve.md),
 * and the sections of the creto config file it reads (docs/config.md).
 *
 * serve composes components and supervises them; it holds no security rule
 * of its own: the diode watcher decides about packages (update), the
 * gateway about requests, isolation about routes, the audit log records.
 *
 *     creto_serve_config *cfg;
 *     creto_serve_config_load(path, &cfg, &e);          // syntax and types
 *     creto_serve_check(cfg, &copts, &rep, &e);         // files, keys, state, models
 *     creto_serve_new(cfg, &opts, &s, &e);              // open everything, bind listeners
 *     creto_serve_run(s, &e);                           // sandbox, threads, until stop
 *     creto_serve_free(s);
 *
 * Library code: never prints (lines go to opts.log), never exits.
 */
#ifndef CRETO_SERVE_H
#define CRETO_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "creto/clock.h"
#include "creto/error.h"
#include "creto/isolation.h"

#define CRETO_SERVE_PATH_MAX 4096
#define CRETO_SERVE_STR_MAX 256
#define CRETO_SERVE_ENDPOINTS_MAX 8

enum creto_serve_violation { CRETO_SERVE_ALERT = 0, CRETO_SERVE_REFUSE = 1 };

/* Everything serve reads from the config file, typed; the gateway's own
 * sections ([gateway], [upstream], [limits]) stay in `conf` and are handed
 * to the gateway as text (creto_serve_gateway_text).  Empty strings mean
 * "not set". */
typedef struct creto_serve_config {
	char path[CRETO_SERVE_PATH_MAX];
	/* [hsm] */
	char hsm_module[CRETO_SERVE_PATH_MAX];
	char hsm_token[CRETO_SERVE_STR_MAX];
	char hsm_pin_file[CRETO_SERVE_PATH_MAX];
	char hsm_endpoint[CRETO_SERVE_ENDPOINTS_MAX][CRETO_SERVE_STR_MAX];
	size_t n_hsm_endpoint;
	int64_t hsm_deadline_ms;      /* one call on an endpoint; 0: CRETO_HSM_DEADLINE_MS */
	/* [trust] */
	char trust_root[CRETO_SERVE_PATH_MAX];
	/* [state] */
	char state_dir[CRETO_SERVE_PATH_MAX];
	/* [diode] */
	char diode_drop[CRETO_SERVE_PATH_MAX];
	int64_t diode_settle_ms;
	/* [nhi] */
	char nhi_store[CRETO_SERVE_PATH_MAX];
	char nhi_backup[CRETO_SERVE_PATH_MAX];
	char nhi_wrap_key[CRETO_SERVE_PATH_MAX];
	char nhi_jwks[CRETO_SERVE_PATH_MAX];
	char nhi_issuer[CRETO_SERVE_STR_MAX];
	char nhi_audience[CRETO_SERVE_STR_MAX];
	/* [isolation] (the keys of the standalone isolation config) */
	creto_iso_config iso;
	/* [audit] */
	char audit_dir[CRETO_SERVE_PATH_MAX];
	char audit_checkpoint_key[CRETO_SERVE_PATH_MAX];
	int64_t audit_checkpoint_ms;
	int64_t audit_checkpoint_entries;
	int64_t audit_budget;
	/* [serve] */
	char user[CRETO_SERVE_STR_MAX];
	int on_violation;             /* enum creto_serve_violation */
	int64_t isolation_interval_ms;
	int active_probes;
	int log_json;
	char runtime_dir[CRETO_SERVE_PATH_MAX];
	char policy_update[CRETO_SERVE_STR_MAX];  /* policy update name carrying the gateway policy */
	char nhi_update[CRETO_SERVE_STR_MAX];     /* policy update name carrying an NHI backup */
	char jwks_update[CRETO_SERVE_STR_MAX];    /* policy update name carrying the issuer JWK Set */
	/* set by serve, not a config key: the JWKS file in force after a
	 * jwks_update replaced it ("" none); creto_serve_gateway_text writes it
	 * as the gateway's `jwks` in place of [gateway] jwks / [nhi] jwks */
	char jwks_override[CRETO_SERVE_PATH_MAX];
	int64_t stop_timeout_ms;
	int seccomp;                  /* enum creto_sandbox_seccomp (serve/sandbox.h) */
	int landlock;                 /* enum creto_sandbox_landlock */
	/* the file as parsed (util/conf.h), for the gateway's sections */
	struct creto_conf *conf;
	int has_gateway;              /* a [gateway] section is present */
} creto_serve_config;

/* Read and parse path against serve's schema (every section of
 * docs/config.md).  CRETO_EUSAGE "config PATH: line N: ..." on any error
 * (unknown key or section, bad value, [isolation] key rejected). */
int creto_serve_config_load(const char *path, creto_serve_config **out, creto_err *e) CRETO_WUR;
int creto_serve_config_parse(const char *text, size_t len, creto_serve_config **out,
			     creto_err *e) CRETO_WUR;
void creto_serve_config_free(creto_serve_config *c);

/* The text of the gateway's config built from cfg: its [gateway],
 * [upstream] and [limits] lines; nhi_db/jwks/issuer/audience taken from
 * [nhi] where [gateway] does not set them; `jwks` is cfg->jwks_override
 * when that is set; `policy` replaced by
 * policy_path when not NULL; `listen` replaced by listen[0..nlisten) when
 * nlisten > 0; and only the models in models[0..nmodels) (all when models
 * is NULL).  *out malloc'ed; *nrouted gets the models written. */
int creto_serve_gateway_text(const creto_serve_config *cfg, const char *policy_path,
			     const char *const *listen, size_t nlisten, const char *const *models,
			     size_t nmodels, char **out, size_t *nrouted, creto_err *e) CRETO_WUR;

/* ---- config check ---- */
enum creto_serve_severity { CRETO_SERVE_WARN = 0, CRETO_SERVE_ERROR = 1 };

typedef struct creto_serve_problem {
	int severity;           /* enum creto_serve_severity */
	int code;               /* CRETO_EUSAGE (config) or CRETO_EOP (I/O, HSM); 0 for a warning */
	char where[80];         /* "section.key", e.g. "hsm.pin_file" */
	char msg[CRETO_ERR_MSG_MAX];
} creto_serve_problem;

typedef struct creto_serve_report {
	creto_serve_problem *v;
	size_t n, cap;
	size_t errors, warnings;
	size_t checked;         /* checks run */
} creto_serve_report;

typedef struct creto_serve_check_opts {
	const creto_clock *clock;
	/* skip what needs the HSM (the checkpoint key; the NHI wrap key) */
	int no_keys;
	/* the gateway's issuer key, already open (serve's, on SIGHUP): the
	 * gateway is checked with it instead of opening [gateway] issuer_key */
	struct creto_signer *issuer;
} creto_serve_check_opts;

/* Check what cfg names: files exist with safe modes and owners (secret
 * files 0600 or stricter, owned by the running user or root), keys load,
 * the trust root parses and verifies, the state is initialised, the audit
 * log opens, the gateway config is valid (opened as by `gateway --check`),
 * and each model the gateway routes to has an installed version (a
 * warning: serve starts, the model is not routed until one is).  rep is
 * filled (creto_serve_report_clear frees it); returns CRETO_OK when no
 * problem is an error, else the worst code (CRETO_EUSAGE before
 * CRETO_EOP) with e naming the first error. */
int creto_serve_check(const creto_serve_config *cfg, const creto_serve_check_opts *o,
		      creto_serve_report *rep, creto_err *e) CRETO_WUR;
void creto_serve_report_clear(creto_serve_report *rep);

/* ---- the daemon ---- */
typedef struct creto_serve creto_serve;

enum creto_serve_level { CRETO_SERVE_LOG_INFO = 0, CRETO_SERVE_LOG_WARN, CRETO_SERVE_LOG_ERROR };

typedef struct creto_serve_opts {
	const creto_clock *clock;     /* NULL: the system clock */
	/* One line per event: component, level, message (already
	 * "key=value ..." fields, never a secret).  Called from any thread. */
	void (*log)(void *ctx, const char *component, int level, const char *msg);
	void *log_ctx;
	const char *user;             /* --user: overrides [serve] user */
	const char *notify_socket;    /* $NOTIFY_SOCKET; NULL: no sd_notify */
	uint64_t watchdog_usec;       /* from $WATCHDOG_USEC; 0: no watchdog pings */
	/* extra sandbox paths the caller knows of (the SoftHSM2 config file
	 * and token directory from SOFTHSM2_CONF): read-only, read-write */
	const char *const *sandbox_ro;
	size_t n_sandbox_ro;
	const char *const *sandbox_rw;
	size_t n_sandbox_rw;
	/* crash tests only (creto_update_opts.crash); NULL in the product */
	void (*crash)(void *arg, const char *point);
	void *crash_arg;
} creto_serve_opts;

/* Run the check (refusing on any error, the check's code), open the HSM
 * key, the audit log, the state (an update context with the audit sink),
 * the gateway (its listeners bound) and the notify socket.  cfg is owned
 * by s from now on (also on failure). */
int creto_serve_new(creto_serve_config *cfg, const creto_serve_opts *o, creto_serve **out,
		    creto_err *e) CRETO_WUR;

/* Apply the sandbox, start the components (each with its own stop handle),
 * supervise until creto_serve_stop, then stop them in order within
 * [serve] stop_timeout.  Must be called with no other thread running. */
int creto_serve_run(creto_serve *s, creto_err *e) CRETO_WUR;

/* Async-signal-safe requests (write an eventfd). */
void creto_serve_reload(creto_serve *s);
void creto_serve_stop(creto_serve *s);

void creto_serve_free(creto_serve *s);

#endif
